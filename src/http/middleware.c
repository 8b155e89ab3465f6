/*
 * The middleware chain (http layer); see middleware.h. It may call the
 * handlers (through the router) and writes responses only through
 * response.c; it never speaks SQL or memcached.
 */
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "http/middleware.h"
#include "http/response.h"
#include "http/router.h"

/*
 * A step returns MK_OK to go on, or an error to end the request with.
 * A step that answers by itself (OPTIONS) sets *done.
 */
typedef enum mk_err (*step_fn)(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done);

static enum mk_err
step_request_id(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	const char *incoming = mk_request_param(req, "HTTP_X_REQUEST_ID");
	char *id;

	(void)input;
	(void)resp;
	(void)done;
	if (incoming != NULL && mk_request_id_valid(incoming, strlen(incoming))) {
		req->request_id = incoming;
		return MK_OK;
	}
	id = mk_arena_alloc(req->arena, MK_REQUEST_ID_GENERATED_LEN + 1);
	if (id == NULL)
		return MK_ENOMEM;
	mk_request_id_next(&service->ids, id);
	req->request_id = id;
	return MK_OK;
}

static enum mk_err
step_early_error(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	(void)service;
	(void)resp;
	(void)done;
	if (input->early_error != MK_OK)
		req->log_error = input->early_reason;
	return input->early_error;
}

static enum mk_err
step_decode_target(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	(void)service;
	(void)input;
	(void)resp;
	(void)done;
	return mk_request_parse_target(req);
}

static enum mk_err
step_route(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	char allow[96];
	unsigned allowed = 0;
	enum mk_err rc;

	(void)input;
	rc = mk_router_match(service->router, req->method, req->segments,
	    req->nsegments, &req->route, req->path_params, &allowed);
	if (rc != MK_EMETHOD)
		return rc;
	mk_router_format_allow(allowed, allow, sizeof(allow));
	mk_response_header(resp, "Allow", allow);
	if (req->method == MK_METHOD_OPTIONS) {
		/* RFC 9110 9.3.7: a known path says which methods it takes. */
		mk_response_empty(resp, 204);
		*done = true;
		return MK_OK;
	}
	return MK_EMETHOD;
}

static enum mk_err
step_handler(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	(void)input;
	*done = true;
	return req->route->handler(service->app, req, resp);
}

static const step_fn chain[] = {
	step_request_id,
	step_early_error,
	step_decode_target,
	step_route,
	step_handler,
};

static void
log_request(const struct mk_request *req, const struct mk_response *resp,
    uint64_t started_us)
{
	struct mk_access_record rec = {
		.request_id = req->request_id,
		.method = req->method_name,
		.route = req->route != NULL ? req->route->pattern : NULL,
		.path = mk_request_param(req, "REQUEST_URI"),
		.status = resp->status,
		.duration_us = mk_clock_mono_us() - started_us,
		.user_id = req->user_id,
		.error = req->log_error,
	};

	if (rec.error == NULL && resp->error != MK_OK)
		rec.error = mk_err_name(resp->error);
	mk_log_access(&rec);
}

void
mk_http_handle(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_arena *arena,
    struct mk_buf *out)
{
	static const char fallback[] =
	    "Status: 500 Internal Server Error\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n\r\n"
	    "{\"success\":false,\"error\":\"Internal server error\",\"code\":\"internal\",\"request_id\":null}";
	uint64_t started_us = mk_clock_mono_us();
	struct mk_request req = {
		.arena = arena,
		.config = service->config,
		.params = input->params,
		.nparams = input->nparams,
		.body = input->body,
		.body_len = input->body_len,
	};
	struct mk_response resp;
	enum mk_err rc = MK_OK;
	bool done = false;
	size_t out_start = out->len;

	req.method_name = mk_request_param(&req, "REQUEST_METHOD");
	req.method = mk_method_parse(req.method_name);
	if (req.method_name == NULL)
		req.method_name = "-";
	mk_response_init(&resp, arena);
	for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]) && !done; i++) {
		rc = chain[i](service, input, &req, &resp, &done);
		if (rc != MK_OK)
			break;
	}
	if (rc == MK_OK && (resp.body.oom || resp.headers.oom)) {
		req.log_error = "response buffer out of memory";
		rc = MK_ENOMEM;
	}
	if (rc != MK_OK) {
		if (mk_http_error_for(rc)->status >= 500 && req.log_error == NULL)
			req.log_error = mk_err_name(rc);
		mk_response_error(&resp, rc, NULL, req.request_id);
	}
	mk_response_serialize(&resp, req.request_id, req.method == MK_METHOD_HEAD, out);
	if (out->oom || resp.body.oom) {
		/* Nothing more can be built: answer from static memory. */
		out->oom = false;
		out->len = out_start;
		mk_buf_append(out, fallback, sizeof(fallback) - 1);
		resp.status = 500;
	}
	log_request(&req, &resp, started_us);
}
