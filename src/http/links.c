/*
 * Links to the application's own paths (http layer); see links.h. The
 * request's bytes (its base, its path, its query) are written back
 * through mk_base_path_put(), which percent-encodes whatever a URI may
 * not hold as it is: a front that passed a blank or a '>' through cannot
 * break the header or the Link's <...>.
 */
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/base_path.h"
#include "http/links.h"
#include "http/query.h"
#include "http/request.h"
#include "http/response.h"

enum mk_err
mk_links_location(
    struct mk_response *resp, const struct mk_request *req, const char *path)
{
	if (path[0] != '/') {
		mk_log(MK_LOG_ERROR, "Location dropped: '%.*s' is not a path",
		    (int)strcspn(path, "\r\n"), path);
		return MK_EINTERNAL;
	}
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0';
	     p++) {
		if (*p < 0x20 || *p == 0x7F) {
			mk_log(MK_LOG_ERROR,
			    "Location dropped: its path holds a control byte "
			    "(0x%02X)",
			    *p);
			return MK_EINTERNAL;
		}
	}
	mk_buf_puts(&resp->headers, "Location: ");
	/* A base of slashes only ("//api/..." merged) is the root. */
	if (req->base_len > 0 && strspn(req->base, "/") < req->base_len)
		mk_base_path_put(
		    &resp->headers, req->base, req->base_len, false);
	mk_buf_puts(&resp->headers, path);
	mk_buf_append(&resp->headers, "\r\n", 2);
	return MK_OK;
}

/*
 * True when the raw query key (len bytes, as sent) decodes to name: a
 * client may write "curs%6Fr" or, in a query, '+' for a blank.
 */
static bool
key_is(const char *raw, size_t len, const char *name)
{
	char decoded[16];
	size_t decoded_len;

	/* An escape decodes 3 bytes into 1: longer keys cannot be name. */
	if (len >= sizeof(decoded) || len > 3 * strlen(name))
		return false;
	return mk_percent_decode(raw, len, true, decoded, &decoded_len) ==
	    MK_OK &&
	    decoded_len == strlen(name) &&
	    memcmp(decoded, name, decoded_len) == 0;
}

void
mk_links_next(struct mk_response *resp, const struct mk_request *req,
    const char *cursor, size_t cursor_len)
{
	const char *uri = mk_request_param(req, "REQUEST_URI");
	const char *query = uri != NULL ? strchr(uri, '?') : NULL;
	struct mk_buf *out = &resp->headers;

	if (req->raw_path == NULL)
		return;
	mk_buf_puts(out, "Link: <");
	mk_base_path_put(out, req->raw_path, strlen(req->raw_path), false);
	mk_buf_putc(out, '?');
	for (const char *p = query != NULL ? query + 1 : ""; *p != '\0';) {
		size_t len = strcspn(p, "&");
		size_t key_len = strcspn(p, "=&");

		if (len > 0 && !key_is(p, key_len, "cursor") &&
		    !key_is(p, key_len, "offset")) {
			mk_base_path_put(out, p, len, true);
			mk_buf_putc(out, '&');
		}
		p += len;
		if (*p == '&')
			p++;
	}
	mk_buf_puts(out, "cursor=");
	mk_base_path_put(out, cursor, cursor_len, true);
	mk_buf_puts(out, ">; rel=\"next\"\r\n");
}
