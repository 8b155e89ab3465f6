/*
 * Links an answer carries to the application's own paths (http layer):
 * Location after a write and the RFC 8288 Link to a list's next page,
 * each under the request's base path (http/base_path.h), so that a client
 * of an application mounted at /~alice/markets is sent to
 * /~alice/markets/api/markets/7, not to the host's /api/markets/7. Both
 * write straight into the response's headers (its arena): nothing else
 * is allocated.
 */
#ifndef MK_LINKS_H
#define MK_LINKS_H

#include <stddef.h>

#include "core/err.h"

struct mk_request;
struct mk_response;

/*
 * Adds "Location: <base><path>", path being the application's own
 * ("/api/markets/7", or one stored before, without a base, such as an
 * idempotent replay's). A path that is not a header value (a control
 * byte; relative) is not added and MK_EINTERNAL is returned, as
 * mk_response_header() does.
 */
enum mk_err mk_links_location(
    struct mk_response *resp, const struct mk_request *req, const char *path);

/*
 * Adds `Link: <URL>; rel="next"`, URL being the request's own path as
 * sent (its base included) and its query with every parameter but
 * cursor and offset kept as sent, then cursor=cursor (cursor_len bytes of
 * a URL-safe cursor): the next page of the same list.
 */
void mk_links_next(struct mk_response *resp, const struct mk_request *req,
    const char *cursor, size_t cursor_len);

#endif
