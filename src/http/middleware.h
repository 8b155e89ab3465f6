/*
 * The middleware chain (http layer): every request goes through the same
 * small steps in order — request id, early errors from the server layer,
 * target decoding, routing, authentication, rate limiting, authorization,
 * then the handler — and the log step writes one line when it is over. A
 * step either lets the request go on or ends it with an error code; the
 * one error writer turns codes into the contract's envelope.
 *
 * Authentication runs before the rate limiter so that a client is counted
 * by its verified sub (never by a claim it could forge), but its verdict
 * is only enforced after counting: a flood of bad tokens is limited per
 * address like any other traffic.
 *
 * CORS (cors_origins) is no step of its own kind: a first step puts the
 * CORS headers on every answer, errors included, and the routing step
 * answers a preflight together with the plain OPTIONS it already answers,
 * before authentication and rate limiting (a browser sends a preflight
 * with no token, and it costs nothing to count).
 */
#ifndef MK_MIDDLEWARE_H
#define MK_MIDDLEWARE_H

#include <stddef.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/err.h"
#include "http/consistency.h"
#include "http/request.h"
#include "http/request_id.h"

struct mk_arena;
struct mk_buf;
struct mk_router;

struct mk_jwt_verifier;
struct mk_rate_limiter;

/* An origin allowed CORS: a span of the configuration's cors_origins. */
struct mk_http_origin {
	const char *text;
	size_t len;
};

/* Worker-lifetime state the chain runs with; owned by the wiring. */
struct mk_http_service {
	const struct mk_config *config;
	const struct mk_router *router;
	/* The route table the router was built from, for per-route metrics. */
	const struct mk_route *routes;
	size_t nroutes;
	const char *route_labels[MK_METRICS_ROUTES_MAX]; /* "GET /api/me" */
	struct mk_jwt_verifier *verifier;
	struct mk_rate_limiter *limiter;
	/* where reads go: replicas, or the primary in a write's window */
	struct mk_consistency consistency;
	struct mk_request_id_gen ids;
	/* cors_origins split once; none: no CORS headers at all. */
	struct mk_http_origin cors_origins[MK_CONFIG_CORS_ORIGINS_MAX];
	size_t ncors_origins;
};

/* One request as the server layer hands it over. */
struct mk_http_input {
	const struct mk_param *params;
	size_t nparams;
	const char *body;
	size_t body_len;
	/* Set when the server already knows the answer (413, 400, 431). */
	enum mk_err early_error;
	const char *early_reason;
	/*
	 * Called when a waiting request may go on (see mk_http_resume); NULL:
	 * none may wait.
	 */
	void (*wake)(void *arg);
	void *wake_arg;
};

/* A request whose handler waits: all its state, in its arena. */
struct mk_http_exchange;

/*
 * Splits config->cors_origins (checked when the configuration was loaded)
 * into service. The spans point into config, which must outlive the
 * service, as it does for service->config. Allocates nothing; cannot fail.
 */
void mk_http_cors_setup(
    struct mk_http_service *service, const struct mk_config *config);

/*
 * Runs the chain over one request and appends the CGI response to out;
 * returns NULL. All request memory comes from arena, which the caller
 * resets after. When the handler must wait (a search whose query is
 * being embedded), nothing is appended and the exchange is returned: the
 * caller keeps arena and the input's memory, and once input->wake was
 * called, calls mk_http_resume(); or gives up with mk_http_expire() or
 * mk_http_abandon(). Exactly one of those ends it, and with it the
 * request's one access log line.
 */
struct mk_http_exchange *mk_http_handle(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_arena *arena,
    struct mk_buf *out);

/*
 * Goes on with a woken exchange: appends the CGI response to out and
 * returns NULL, or returns the exchange when it waits again.
 */
struct mk_http_exchange *mk_http_resume(struct mk_http_service *service,
    struct mk_http_exchange *exchange, struct mk_buf *out);

/*
 * Gives up the wait and answers 503 with Retry-After (the request's time
 * is up, or the worker is stopping): appends the CGI response to out.
 */
void mk_http_expire(struct mk_http_service *service,
    struct mk_http_exchange *exchange, const char *why, struct mk_buf *out);

/*
 * Gives up the wait with no answer (the front aborted the request or
 * closed the connection): logs the request as status 499.
 */
void mk_http_abandon(struct mk_http_service *service,
    struct mk_http_exchange *exchange, const char *why);

#endif
