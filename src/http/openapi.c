/*
 * GET /api/openapi.json (http layer); see openapi.h. The document is
 * built in with servers[0].url "/"; under a base path the answer says the
 * base instead, spliced in at that url's place (found once, by text, in
 * the built-in bytes), so no request parses the JSON.
 */
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "http/base_path.h"
#include "http/openapi.h"
#include "http/request.h"
#include "http/response.h"

/*
 * Where the '/' of servers[0].url sits in the document: 0 when not yet
 * looked for, SIZE_MAX when the document has no such url (it is then
 * served as it is).
 */
static size_t server_url_at;

static size_t
find_server_url(void)
{
	static const char servers[] = "\"servers\"", url[] = "\"url\": \"/\"";
	const char *doc = mk_openapi_json, *end = doc + mk_openapi_json_len;
	const char *at =
	    memmem(doc, mk_openapi_json_len, servers, sizeof(servers) - 1);
	const char *close;

	if (at == NULL)
		return SIZE_MAX;
	close = memchr(at, ']', (size_t)(end - at));
	at = memmem(at, (size_t)(end - at), url, sizeof(url) - 1);
	if (at == NULL || close == NULL || at > close)
		return SIZE_MAX;
	return (size_t)(at - doc) + sizeof(url) - 3;
}

enum mk_err
mk_openapi_get(void *context, struct mk_request *req, struct mk_response *resp)
{
	(void)context;
	/* It changes only with a new build: caches may keep it a while. */
	mk_response_header(resp, "Cache-Control", "public, max-age=3600");
	resp->status = 200;
	resp->has_body = true;
	if (server_url_at == 0)
		server_url_at = find_server_url();
	if (req->base_len == 0 || server_url_at == SIZE_MAX) {
		mk_buf_append(
		    &resp->body, mk_openapi_json, mk_openapi_json_len);
		return MK_OK;
	}
	/* The base replaces "/": escaped for a URI, so safe in a string. */
	mk_buf_append(&resp->body, mk_openapi_json, server_url_at);
	mk_base_path_put(&resp->body, req->base, req->base_len, false);
	mk_buf_append(&resp->body, mk_openapi_json + server_url_at + 1,
	    mk_openapi_json_len - server_url_at - 1);
	return MK_OK;
}
