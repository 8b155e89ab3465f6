/*
 * The middleware chain (http layer); see middleware.h. It may call the
 * handlers (through the router) and writes responses only through
 * response.c; it never speaks SQL or memcached.
 */
#include <assert.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "auth/ratelimit.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/trace.h"
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

/*
 * CORS (API.md "CORS", the Fetch standard). A listed origin may read the
 * contract's headers beyond the CORS-safelisted ones, and send the
 * request headers the contract knows. There is deliberately no
 * Access-Control-Allow-Credentials: clients authenticate with a bearer
 * token their script sets itself, never with cookies, so the browser's
 * own credentials (cookies, TLS client certificates) stay out of
 * cross-origin requests, and Authorization needs no wildcard.
 */
#define CORS_EXPOSE_HEADERS                                                    \
	"X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, "             \
	"X-RateLimit-Reset, Retry-After, Location, ETag, Link"
#define CORS_ALLOW_HEADERS                                                     \
	"Authorization, Content-Type, Idempotency-Key, If-Match, "             \
	"If-None-Match, X-Request-Id"
/* How long a browser may reuse a preflight's answer, in seconds. */
#define CORS_MAX_AGE "600"

void
mk_http_cors_setup(
    struct mk_http_service *service, const struct mk_config *config)
{
	size_t len;

	service->ncors_origins = 0;
	for (const char *p = config->cors_origins; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		/* The configuration refuses longer lists. */
		assert(service->ncors_origins < MK_CONFIG_CORS_ORIGINS_MAX);
		if (service->ncors_origins == MK_CONFIG_CORS_ORIGINS_MAX)
			break;
		service->cors_origins[service->ncors_origins].text = p;
		service->cors_origins[service->ncors_origins].len = len;
		service->ncors_origins++;
	}
}

/*
 * The request's Origin when cors_origins lists it, else NULL. Origins are
 * compared byte for byte as browsers serialize them (lower-case scheme and
 * host, no default port): https://APP.example.org is another origin.
 */
static const char *
cors_origin(const struct mk_http_service *service, const struct mk_request *req)
{
	const char *origin;
	size_t len;

	if (service->ncors_origins == 0)
		return NULL;
	origin = mk_request_param(req, "HTTP_ORIGIN");
	if (origin == NULL)
		return NULL;
	len = strlen(origin);
	for (size_t i = 0; i < service->ncors_origins; i++) {
		if (service->cors_origins[i].len == len &&
		    memcmp(service->cors_origins[i].text, origin, len) == 0)
			return origin;
	}
	return NULL;
}

/* A CORS preflight: an OPTIONS that asks for a method (Fetch 4.8). */
static bool
cors_preflight(const struct mk_request *req)
{
	const char *method =
	    mk_request_param(req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD");

	return req->method == MK_METHOD_OPTIONS && method != NULL &&
	    method[0] != '\0';
}

/*
 * Puts the CORS headers on every answer, errors included (a script reads
 * a 401 or a 429 like any other answer), so it runs first and only adds
 * headers. A preflight's own headers come with the routing step, which
 * answers it.
 */
static enum mk_err
step_cors(struct mk_http_service *service, const struct mk_http_input *input,
    struct mk_request *req, struct mk_response *resp, bool *done)
{
	const char *origin;

	(void)input;
	(void)done;
	if (service->ncors_origins == 0)
		return MK_OK;
	/*
	 * Answers differ by Origin, listed or not: caches must tell them apart.
	 */
	mk_response_header(resp, "Vary", "Origin");
	origin = cors_origin(service, req);
	if (origin == NULL)
		return MK_OK;
	mk_response_header(resp, "Access-Control-Allow-Origin", origin);
	/* No script ever reads a preflight's answer. */
	if (!cors_preflight(req))
		mk_response_header(
		    resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
	return MK_OK;
}

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
	if (incoming != NULL &&
	    mk_request_id_valid(incoming, strlen(incoming))) {
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
step_route(struct mk_http_service *service, const struct mk_http_input *input,
    struct mk_request *req, struct mk_response *resp, bool *done)
{
	char allow[96];
	unsigned allowed = 0;
	enum mk_err rc;

	(void)input;
	rc = mk_router_match(service->router, req->method, req->segments,
	    req->nsegments, &req->route, req->path_params, &allowed);
	if (rc == MK_OK)
		req->route_flags = req->route->flags;
	if (rc != MK_EMETHOD)
		return rc;
	mk_router_format_allow(allowed, allow, sizeof(allow));
	mk_response_header(resp, "Allow", allow);
	if (req->method == MK_METHOD_OPTIONS) {
		/* RFC 9110 9.3.7: a known path says which methods it takes. */
		if (cors_preflight(req) && cors_origin(service, req) != NULL) {
			/*
			 * The path's methods whatever was asked for: the
			 * browser decides whether its method is among them.
			 */
			mk_response_header(
			    resp, "Access-Control-Allow-Methods", allow);
			mk_response_header(resp, "Access-Control-Allow-Headers",
			    CORS_ALLOW_HEADERS);
			mk_response_header(
			    resp, "Access-Control-Max-Age", CORS_MAX_AGE);
		}
		mk_response_empty(resp, 204);
		*done = true;
		return MK_OK;
	}
	/*
	 * The 405 waits until the request is counted: every answer under a
	 * limited path carries the rate-limit headers (API.md).
	 */
	req->method_not_allowed = true;
	req->route_flags = mk_router_path_flags(
	    service->router, req->segments, req->nsegments);
	return MK_OK;
}

/*
 * Finds the bearer token: "Bearer" (any case), blanks, then the token.
 * Returns false for any other scheme or shape.
 */
static bool
bearer_token(const char *header, const char **token, size_t *len)
{
	const char *p;

	if (strncasecmp(header, "Bearer", 6) != 0 ||
	    (header[6] != ' ' && header[6] != '\t'))
		return false;
	p = header + 6;
	p += strspn(p, " \t");
	*token = p;
	*len = strlen(p);
	while (*len > 0 && (p[*len - 1] == ' ' || p[*len - 1] == '\t'))
		(*len)--;
	return *len > 0;
}

static enum mk_err
step_authenticate(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	const char *header = mk_request_param(req, "HTTP_AUTHORIZATION");
	const char *token, *why = NULL;
	uint64_t began;
	size_t len;
	enum mk_err rc;

	(void)input;
	(void)resp;
	(void)done;
	if (header == NULL)
		return MK_OK; /* anonymous */
	if (strncasecmp(header, "Bearer", 6) != 0 ||
	    (header[6] != '\0' && header[6] != ' ' && header[6] != '\t')) {
		/*
		 * Another scheme is no token: the caller stays anonymous (a
		 * front server's Basic auth must not lock everyone out), and a
		 * protected route answers a plain Bearer challenge.
		 */
		return MK_OK;
	}
	if (!bearer_token(header, &token, &len)) {
		req->bad_credentials = true;
		req->log_error = "Bearer without a token";
		return MK_OK;
	}
	if (service->verifier == NULL) {
		req->bad_credentials = true;
		req->log_error = "no JWT key configured";
		return MK_OK;
	}
	began = mk_trace_begin();
	rc = mk_jwt_verify(service->verifier, req->arena, token, len,
	    (int64_t)time(NULL), &req->identity, &why);
	mk_trace_end(MK_PHASE_AUTH, began);
	if (rc == MK_ENOMEM)
		return rc;
	if (rc != MK_OK) {
		req->identity.user_id = 0;
		req->bad_credentials = true;
		req->log_error = why;
	}
	return MK_OK;
}

/* Puts a decision's headers on the answer; a 429 also gets Retry-After. */
static void
rate_headers(struct mk_response *resp, const struct mk_rate_decision *decision)
{
	char number[24];

	(void)snprintf(number, sizeof(number), "%u", decision->limit);
	mk_response_header(resp, "X-RateLimit-Limit", number);
	(void)snprintf(number, sizeof(number), "%u", decision->remaining);
	mk_response_header(resp, "X-RateLimit-Remaining", number);
	(void)snprintf(number, sizeof(number), "%u", decision->reset_s);
	mk_response_header(resp, "X-RateLimit-Reset", number);
	if (!decision->allowed)
		mk_response_header(resp, "Retry-After", number);
}

/*
 * The client's address as the rate limiter counts it: REMOTE_ADDR, or
 * X-Forwarded-For's rightmost untrusted entry when REMOTE_ADDR is a
 * trusted proxy. Made once per request, in its arena, for the limiter
 * and the log line. NULL: out of memory.
 */
static const char *
client_address(struct mk_http_service *service, struct mk_request *req)
{
	const char *remote = mk_request_param(req, "REMOTE_ADDR");
	/*
	 * X-Forwarded-For lines, gathered in one pass: in lines[], or past
	 * its eight (a hostile front) in the arena.
	 */
	const char *lines[8], **forwarded = lines;
	size_t nforwarded = 0, max = sizeof(lines) / sizeof(lines[0]);
	char *address;

	if (req->client_address != NULL)
		return req->client_address;
	if (service->limiter == NULL)
		return req->client_address =
			   remote != NULL ? remote : "unknown";
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->params[i].name, "HTTP_X_FORWARDED_FOR"))
			continue;
		if (nforwarded == max) {
			max = req->nparams;
			forwarded = mk_arena_alloc(
			    req->arena, max * sizeof(*forwarded));
			if (forwarded == NULL)
				return NULL;
			memcpy(forwarded, lines, sizeof(lines));
		}
		forwarded[nforwarded++] = req->params[i].value;
	}
	address = mk_arena_alloc(req->arena, MK_CLIENT_ADDRESS_MAX);
	if (address == NULL)
		return NULL;
	mk_ratelimit_client_address(service->limiter, remote, forwarded,
	    nforwarded, address, MK_CLIENT_ADDRESS_MAX);
	return req->client_address = address;
}

/*
 * Counts the request. A GET or HEAD of a route marked
 * MK_ROUTE_LIMIT_AFTER (the single market: a cache lookup, at worst one
 * row) is decided after its handler: the increment goes out now without
 * waiting, and its count comes back with the handler's memcached lookup —
 * one round trip for both. A request over the limit then gets its 429 in
 * place of what the handler built, which, being a read, changed nothing.
 * Everything else — writes, and reads that cost more (lists, search) — is
 * decided here, before any work is done for a client over its limit.
 */
static enum mk_err
step_rate_limit(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	struct mk_rate_decision decision;
	char client[96];

	(void)input;
	(void)done;
	mk_consistency_begin(&service->consistency, req);
	if (service->limiter == NULL || (req->route_flags & MK_ROUTE_UNLIMITED))
		return MK_OK;
	if (req->identity.user_id > 0) {
		(void)snprintf(client, sizeof(client), "u:%lld",
		    (long long)req->identity.user_id);
	} else {
		const char *address = client_address(service, req);

		if (address == NULL)
			return MK_ENOMEM;
		(void)snprintf(client, sizeof(client), "a:%s", address);
	}
	if (!req->method_not_allowed &&
	    (req->route_flags & MK_ROUTE_LIMIT_AFTER) &&
	    (req->method == MK_METHOD_GET || req->method == MK_METHOD_HEAD)) {
		mk_ratelimit_begin(service->limiter, client,
		    (int64_t)time(NULL), req->rate_pending);
		req->rate_deferred = true;
		req->rate_count = mk_ratelimit_in_flight(req->rate_pending);
		req->rate_headers_mark = resp->headers.len;
		return MK_OK;
	}
	mk_consistency_hit(
	    &service->consistency, service->limiter, client, req, &decision);
	rate_headers(resp, &decision);
	if (decision.allowed)
		return MK_OK;
	req->log_error = "over the rate limit";
	return MK_ERATELIMIT;
}

/*
 * Decides a deferred count (see step_rate_limit). Returns MK_ERATELIMIT
 * when the request was over the limit: the handler's headers are dropped
 * and the caller answers 429 instead.
 */
static enum mk_err
finish_rate_limit(struct mk_http_service *service, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_rate_decision decision;

	mk_ratelimit_end(service->limiter, req->rate_pending, &decision);
	if (!decision.allowed)
		mk_buf_truncate(&resp->headers, req->rate_headers_mark);
	rate_headers(resp, &decision);
	if (decision.allowed)
		return MK_OK;
	req->log_error = "over the rate limit";
	req->error_message = NULL;
	return MK_ERATELIMIT;
}

static enum mk_err
step_authorize(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_request *req,
    struct mk_response *resp, bool *done)
{
	(void)service;
	(void)input;
	(void)done;
	if (req->bad_credentials) {
		/* Never say which check failed: the log line does. */
		mk_response_header(
		    resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		req->error_message = "Invalid token";
		return MK_EAUTH;
	}
	if (req->method_not_allowed)
		return MK_EMETHOD;
	if (req->route->permission == MK_PERM_NONE)
		return MK_OK;
	if (req->identity.user_id == 0) {
		mk_response_header(resp, "WWW-Authenticate", "Bearer");
		return MK_EAUTH;
	}
	if (!mk_role_allows(req->identity.role, req->route->permission)) {
		req->log_error = "role lacks the route's permission";
		return MK_EFORBIDDEN;
	}
	return MK_OK;
}

static enum mk_err
step_handler(struct mk_http_service *service, const struct mk_http_input *input,
    struct mk_request *req, struct mk_response *resp, bool *done)
{
	enum mk_err rc;

	(void)input;
	*done = true;
	rc = req->route->handler(req->route->context, req, resp);
	if (rc == MK_OK)
		mk_consistency_wrote(&service->consistency, req, resp);
	return rc;
}

static const step_fn chain[] = {
	step_cors,
	step_request_id,
	step_early_error,
	step_decode_target,
	step_route,
	step_authenticate,
	step_rate_limit,
	step_authorize,
	step_handler,
};

/*
 * The slow-request line (core/trace.h), when the request took
 * slow_request_threshold or more and was traced.
 */
static void
log_slow(const struct mk_http_service *service,
    const struct mk_access_record *rec, const struct mk_trace *trace)
{
	char detail[3072];
	struct mk_buf buf;

	if (trace == NULL || service->config == NULL ||
	    service->config->slow_request_threshold_ms <= 0 ||
	    rec->duration_us <
		(uint64_t)service->config->slow_request_threshold_ms * 1000)
		return;
	mk_metrics_count(MK_COUNTER_SLOW_REQUESTS);
	mk_buf_init_fixed(&buf, detail, sizeof(detail));
	mk_trace_format(trace, rec->duration_us, &buf);
	mk_buf_putc(&buf, '\0');
	mk_log_slow(rec, buf.oom ? NULL : detail);
}

/*
 * One access log line and the request's metrics; bytes: the body sent
 * (0 for HEAD, 304, or a client gone); trace: where its time went, or
 * NULL.
 */
static void
log_request(struct mk_http_service *service, struct mk_request *req,
    const struct mk_response *resp, uint64_t started_us, uint64_t bytes,
    const struct mk_trace *trace)
{
	uint64_t duration_us = mk_clock_mono_us() - started_us;
	unsigned route = MK_METRICS_ROUTES_MAX;
	const char *client = client_address(service, req);
	struct mk_access_record rec = {
		.request_id = req->request_id,
		.method = req->method_name,
		.route = req->route != NULL ? req->route->pattern : NULL,
		.path = mk_request_param(req, "REQUEST_URI"),
		.client = client != NULL ? client
					 : mk_request_param(req, "REMOTE_ADDR"),
		.status = resp->status,
		.bytes = bytes,
		.duration_us = duration_us,
		.user_id = req->identity.user_id,
		.error = req->log_error,
	};

	if (rec.error == NULL && resp->error != MK_OK)
		rec.error = mk_err_name(resp->error);
	mk_log_access(&rec);
	log_slow(service, &rec, trace);
	if (req->route != NULL && service->routes != NULL &&
	    req->route >= service->routes &&
	    req->route < service->routes + service->nroutes)
		route = (unsigned)(req->route - service->routes);
	mk_metrics_request(route, resp->status, duration_us);
}

/* A request's state across a wait (middleware.h). */
struct mk_http_exchange {
	struct mk_request req;
	struct mk_response resp;
	struct mk_rate_pending rate_pending;
	uint64_t started_us;
	/* where its time goes (slow_request_threshold set), in its arena */
	struct mk_trace *trace;
	uint64_t wait_began_us; /* while it waits, traced */
};

/* The answer when not even an error can be built: static memory only. */
static const char out_of_memory_answer[] =
    "Status: 500 Internal Server Error\r\n"
    "Content-Type: application/json; charset=utf-8\r\n\r\n"
    "{\"success\":false,\"error\":\"Internal server "
    "error\",\"code\":\"internal\",\"request_id\":null}";

/* Ends the request: the outcome rc into the answer, out, and the log line. */
static void
finish(struct mk_http_service *service, struct mk_http_exchange *ex,
    enum mk_err rc, struct mk_buf *out)
{
	struct mk_request *req = &ex->req;
	struct mk_response *resp = &ex->resp;
	size_t out_start = out->len;
	const char *blank;

	if (req->rate_deferred &&
	    finish_rate_limit(service, req, resp) != MK_OK)
		rc = MK_ERATELIMIT;
	if (rc == MK_ERATELIMIT)
		mk_metrics_count(MK_COUNTER_RATELIMIT_REJECTED);
	if (rc == MK_OK && (resp->body.oom || resp->headers.oom)) {
		req->log_error = "response buffer out of memory";
		rc = MK_ENOMEM;
	}
	if (rc != MK_OK) {
		if (mk_http_error_for(rc)->status >= 500 &&
		    req->log_error == NULL)
			req->log_error = mk_err_name(rc);
		mk_response_error(resp, rc, req->error_message, req->request_id,
		    rc == MK_EINVAL ? req->error_details : NULL);
	}
	mk_response_serialize(
	    resp, req->request_id, req->method == MK_METHOD_HEAD, out);
	if (out->oom || resp->body.oom) {
		/* Nothing more can be built: answer from static memory. */
		out->oom = false;
		out->len = out_start;
		mk_buf_append(out, out_of_memory_answer,
		    sizeof(out_of_memory_answer) - 1);
		resp->status = 500;
	}
	/* What follows the headers' blank line is the body that went out. */
	blank =
	    memmem(out->data + out_start, out->len - out_start, "\r\n\r\n", 4);
	log_request(service, req, resp, ex->started_us,
	    blank != NULL ? (uint64_t)(out->data + out->len - (blank + 4)) : 0,
	    ex->trace);
}

/*
 * A handler's outcome: MK_EPENDING keeps the exchange waiting (returned),
 * anything else ends it. A handler that cannot be woken may not wait.
 */
static struct mk_http_exchange *
settle(struct mk_http_service *service, struct mk_http_exchange *ex,
    enum mk_err rc, struct mk_buf *out)
{
	if (rc == MK_EPENDING) {
		assert(
		    ex->req.wait.wake != NULL && ex->req.wait.resume != NULL);
		if (ex->req.wait.wake != NULL && ex->req.wait.resume != NULL) {
			if (ex->trace != NULL)
				ex->wait_began_us = mk_clock_mono_us();
			return ex;
		}
		if (ex->req.wait.cancel != NULL)
			ex->req.wait.cancel(ex->req.route->context, &ex->req);
		ex->req.log_error = "a handler waited where it may not";
		rc = MK_EINTERNAL;
	}
	finish(service, ex, rc, out);
	return NULL;
}

struct mk_http_exchange *
mk_http_handle(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_arena *arena,
    struct mk_buf *out)
{
	struct mk_http_exchange *ex = mk_arena_calloc(arena, 1, sizeof(*ex));
	struct mk_request *req;
	enum mk_err rc = MK_OK;
	bool done = false;

	if (ex == NULL) {
		mk_buf_append(out, out_of_memory_answer,
		    sizeof(out_of_memory_answer) - 1);
		return NULL;
	}
	ex->started_us = mk_clock_mono_us();
	if (service->config != NULL &&
	    service->config->slow_request_threshold_ms > 0 &&
	    (ex->trace = mk_arena_alloc(arena, sizeof(*ex->trace))) != NULL) {
		mk_trace_init(ex->trace);
		mk_trace_enter(ex->trace);
	}
	req = &ex->req;
	req->arena = arena;
	req->config = service->config;
	req->params = input->params;
	req->nparams = input->nparams;
	req->body = input->body;
	req->body_len = input->body_len;
	req->wait.wake = input->wake;
	req->wait.wake_arg = input->wake_arg;
	req->rate_pending = &ex->rate_pending;
	req->method_name = mk_request_param(req, "REQUEST_METHOD");
	req->method = mk_method_parse(req->method_name);
	if (req->method_name == NULL)
		req->method_name = "-";
	mk_response_init(&ex->resp, arena);
	for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]) && !done; i++) {
		rc = chain[i](service, input, req, &ex->resp, &done);
		if (rc != MK_OK)
			break;
	}
	ex = settle(service, ex, rc, out);
	mk_trace_leave();
	return ex;
}

/* A traced request waited until now: that time is its wait phase. */
static void
end_wait(struct mk_http_exchange *exchange)
{
	if (exchange->trace != NULL)
		exchange->trace->phase_us[MK_PHASE_WAIT] +=
		    mk_clock_mono_us() - exchange->wait_began_us;
}

struct mk_http_exchange *
mk_http_resume(struct mk_http_service *service,
    struct mk_http_exchange *exchange, struct mk_buf *out)
{
	struct mk_request *req = &exchange->req;
	enum mk_err (*resume)(void *, struct mk_request *,
	    struct mk_response *) = req->wait.resume;

	/* The next wait, if any, sets its own. */
	req->wait.resume = NULL;
	req->wait.cancel = NULL;
	end_wait(exchange);
	if (exchange->trace != NULL)
		mk_trace_enter(exchange->trace);
	exchange = settle(service, exchange,
	    resume(req->route->context, req, &exchange->resp), out);
	mk_trace_leave();
	return exchange;
}

/* Ends a request's wait without its answer: what it waited for is cancelled. */
static void
cancel_wait(struct mk_request *req, const char *why)
{
	if (req->wait.cancel != NULL)
		req->wait.cancel(req->route->context, req);
	req->wait.resume = NULL;
	req->wait.cancel = NULL;
	req->log_error = why;
}

void
mk_http_expire(struct mk_http_service *service,
    struct mk_http_exchange *exchange, const char *why, struct mk_buf *out)
{
	cancel_wait(&exchange->req, why);
	end_wait(exchange);
	finish(service, exchange, MK_EUNAVAIL, out);
}

void
mk_http_abandon(struct mk_http_service *service,
    struct mk_http_exchange *exchange, const char *why)
{
	struct mk_request *req = &exchange->req;

	cancel_wait(req, why);
	/* nginx's number for a client that went away before the answer. */
	exchange->resp.status = 499;
	if (req->rate_deferred) {
		struct mk_rate_decision decision;

		mk_ratelimit_end(
		    service->limiter, req->rate_pending, &decision);
	}
	end_wait(exchange);
	log_request(service, req, &exchange->resp, exchange->started_us, 0,
	    exchange->trace);
}
