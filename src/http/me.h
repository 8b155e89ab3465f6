/*
 * GET /api/me (http layer): the caller as its token says — id, role,
 * email and the permissions the role grants.
 */
#ifndef MK_ME_H
#define MK_ME_H

#include "core/err.h"

struct mk_request;
struct mk_response;

enum mk_err mk_me_get(
    void *context, struct mk_request *req, struct mk_response *resp);

#endif
