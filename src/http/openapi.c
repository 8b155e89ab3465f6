/*
 * GET /api/openapi.json (http layer); see openapi.h.
 */
#include "core/buf.h"
#include "http/openapi.h"
#include "http/request.h"
#include "http/response.h"

enum mk_err
mk_openapi_get(void *context, struct mk_request *req, struct mk_response *resp)
{
	(void)context;
	(void)req;
	/* It changes only with a new build: caches may keep it a while. */
	mk_response_header(resp, "Cache-Control", "public, max-age=3600");
	resp->status = 200;
	resp->has_body = true;
	mk_buf_append(&resp->body, mk_openapi_json, mk_openapi_json_len);
	return MK_OK;
}
