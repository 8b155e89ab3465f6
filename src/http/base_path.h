/*
 * Where the application is mounted (http layer): the base path, the
 * prefix of every request path that belongs to the front, not to a route
 * ("/~alice/markets" on a shared host, "" at the root). Routes match the
 * path after it; everything the application writes that names one of its
 * own paths (Location, Link, the OpenAPI document's servers) carries it.
 *
 * The base is either configured (base_path) or derived per request from
 * the FastCGI parameters. Nothing here allocates: the base is a length,
 * a prefix of the raw REQUEST_URI path the request already holds, so it
 * stays in the client's own spelling ("/%7Ealice/markets" if that is what
 * was sent), which is what the client can follow back.
 */
#ifndef MK_BASE_PATH_H
#define MK_BASE_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct mk_buf;

/*
 * Finds the base of the raw request path (path_len bytes of REQUEST_URI
 * before any '?', as sent: percent-encoded) into *base_len, a prefix
 * length after which the rest is empty or starts with a literal '/'.
 *
 * configured (base_path; NULL or "": derive) that is "/" is the root.
 * Another must prefix the path at a segment boundary, byte for byte or
 * through a percent-escape of the same byte (a client may send %7E for
 * '~'), else MK_ENOTFOUND: the request is outside the application.
 *
 * Derived, from script_name and path_info (either may be NULL):
 *  - no PATH_INFO, or an empty one (nginx: SCRIPT_NAME is the whole
 *    path): the root;
 *  - else the part of the path before the suffix that decodes to
 *    PATH_INFO (Apache with mod_fcgid, behind an .htaccess rewrite to
 *    markets.fcgi/$1: REQUEST_URI /~a/m/api/x, PATH_INFO /api/x: base
 *    /~a/m; without the rewrite, /~a/m/markets.fcgi/api/x: base
 *    /~a/m/markets.fcgi);
 *  - when the path does not end in PATH_INFO (a front that normalized
 *    or decoded it differently), SCRIPT_NAME when it prefixes the path,
 *    else SCRIPT_NAME's directory when that does, else the root: a
 *    request is never refused for the way its front spelled it.
 *
 * A bad percent-escape (or %00) inside the base is MK_EBADREQUEST, as
 * anywhere else in a path. Returns MK_OK otherwise.
 */
enum mk_err mk_base_path_find(const char *path, size_t path_len,
    const char *configured, const char *script_name, const char *path_info,
    size_t *base_len);

/*
 * Appends len bytes of a raw path (or, with query, of a query string) to
 * out as a URI component: bytes a URI may hold as they are, and valid
 * percent-escapes, pass unchanged; anything else (a blank, a quote, '<',
 * '>', a byte over 0x7F, a control byte, a stray '%') is percent-encoded.
 * A path's leading run of '/' is written as one, so that the result is
 * never read as "//host". The result is safe inside a header value, a
 * Link's <...> and a JSON string.
 */
void mk_base_path_put(
    struct mk_buf *out, const char *raw, size_t len, bool query);

#endif
