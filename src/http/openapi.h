/*
 * GET /api/openapi.json (http layer): the OpenAPI 3.1 document of the
 * contract, docs/openapi.json, built into the binary
 * (scripts/embed-json writes openapi_doc.c from it), so that what a
 * server describes is what it was built with.
 */
#ifndef MK_OPENAPI_H
#define MK_OPENAPI_H

#include <stddef.h>

#include "core/err.h"

struct mk_request;
struct mk_response;

/* The document's bytes (openapi_doc.c, generated). */
extern const char mk_openapi_json[];
extern const size_t mk_openapi_json_len;

/* GET /api/openapi.json — the document itself, not in the envelope. */
enum mk_err mk_openapi_get(
    void *context, struct mk_request *req, struct mk_response *resp);

#endif
