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
 */
#ifndef MK_MIDDLEWARE_H
#define MK_MIDDLEWARE_H

#include <stddef.h>

#include "core/err.h"
#include "http/request.h"
#include "http/request_id.h"

struct mk_app;
struct mk_arena;
struct mk_buf;
struct mk_config;
struct mk_router;

struct mk_jwt_verifier;
struct mk_rate_limiter;

/* Worker-lifetime state the chain runs with; owned by the wiring. */
struct mk_http_service {
	struct mk_app *app;
	const struct mk_config *config;
	const struct mk_router *router;
	struct mk_jwt_verifier *verifier;
	struct mk_rate_limiter *limiter;
	struct mk_request_id_gen ids;
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
};

/*
 * Runs the chain over one request and appends the CGI response to out.
 * All request memory comes from arena, which the caller resets after.
 */
void mk_http_handle(struct mk_http_service *service,
    const struct mk_http_input *input, struct mk_arena *arena,
    struct mk_buf *out);

#endif
