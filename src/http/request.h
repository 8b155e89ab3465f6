/*
 * The request (http layer): what a handler sees of one HTTP request, built
 * from the FastCGI parameters and body that the server layer assembled.
 * Everything hangs off the request arena; nothing here outlives the
 * request.
 */
#ifndef MK_REQUEST_H
#define MK_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/roles.h"
#include "core/err.h"
#include "http/query.h"

struct mk_arena;
struct mk_config;
struct mk_route;

enum mk_method {
	MK_METHOD_GET,
	MK_METHOD_HEAD,
	MK_METHOD_POST,
	MK_METHOD_PUT,
	MK_METHOD_PATCH,
	MK_METHOD_DELETE,
	MK_METHOD_OPTIONS,
	MK_METHOD_OTHER, /* anything else: never routed */
	MK_METHOD__MAX
};

/* One FastCGI parameter (CGI variable); both strings NUL-terminated. */
struct mk_param {
	const char *name;
	const char *value;
	size_t name_len;
	size_t value_len;
};

/* Path segments past this many cannot match any route: 404. */
#define MK_PATH_MAX_SEGMENTS 16
#define MK_ROUTE_MAX_PARAMS 4

struct mk_cache_incr;
struct mk_rate_pending;
struct mk_request;
struct mk_response;

/*
 * A request whose handler waits (returns MK_EPENDING): the server layer
 * sets wake/wake_arg, which the handler hands to what it waits for; the
 * handler sets resume (run once woken: finishes the answer, or waits
 * again) and cancel (gives the wait up: the front went away, or the
 * request's time is up), and keeps what they need in state (its arena).
 */
struct mk_request_wait {
	void (*wake)(void *arg); /* NULL: the request may not wait */
	void *wake_arg;
	/* Both get the route's context, as its handler did. */
	enum mk_err (*resume)(
	    void *context, struct mk_request *req, struct mk_response *resp);
	void (*cancel)(void *context, struct mk_request *req);
	void *state;
};

struct mk_request {
	struct mk_arena *arena;
	const struct mk_config *config;
	enum mk_method method;
	const char *method_name;
	const char *raw_path; /* the path as sent, before decoding */
	/*
	 * Where the application is mounted (http/base_path.h): the first
	 * base_len bytes of raw_path, as sent ("" at the root).
	 */
	const char *base;
	size_t base_len;
	char *segments[MK_PATH_MAX_SEGMENTS]; /* decoded, split on '/' */
	size_t nsegments;
	struct mk_query query;
	const struct mk_param *params;
	size_t nparams;
	const char *body;
	size_t body_len;
	const char *request_id;
	const struct mk_route *route; /* NULL when the method did not match */
	unsigned route_flags; /* of the route, or of the path for a 405 */
	/* known path, wrong method: a 405 after auth */
	bool method_not_allowed;
	const char *path_params[MK_ROUTE_MAX_PARAMS];
	struct mk_identity identity; /* user_id 0: anonymous */
	bool bad_credentials;  /* an Authorization header that did not verify */
	const char *log_error; /* why it failed, for the log line only */
	/* the client-facing message, when not the default */
	const char *error_message;
	/* validation failures: a JSON array of {field, message} */
	const char *error_details;
	/*
	 * A safe request's rate-limit decision, made after its handler ran
	 * (see step_rate_limit): rate_deferred says it is.
	 */
	struct mk_rate_pending *rate_pending;
	bool rate_deferred;
	/*
	 * With a deferred decision, its count in flight: the handler hands
	 * it to its memcached lookup (mk_cache_get's ride), which brings the
	 * count back in the same round trip. NULL: nothing to collect.
	 */
	struct mk_cache_incr *rate_count;
	/* the response's headers before the handler's */
	size_t rate_headers_mark;
	struct mk_request_wait wait;
	/* the client's address (middleware.c); NULL until first asked */
	const char *client_address;
};

/* Room for a client's address, IPv6 included, with its NUL. */
#define MK_CLIENT_ADDRESS_MAX 64

/* The value of the FastCGI parameter name, or NULL when absent. */
const char *mk_request_param(const struct mk_request *req, const char *name);

/* Same, over a bare parameter array (before a request exists). */
const char *mk_params_find(
    const struct mk_param *params, size_t nparams, const char *name);

enum mk_method mk_method_parse(const char *name);
const char *mk_method_name(enum mk_method method);

/*
 * Splits REQUEST_URI into the base path (req->base, base_len), the
 * decoded segments of the path after it and the decoded query. A bad
 * escape or NUL anywhere is MK_EBADREQUEST (with req->log_error saying
 * where); a path that is not absolute too. A path with more segments
 * than any route, or outside a configured base_path, is MK_ENOTFOUND.
 */
enum mk_err mk_request_parse_target(struct mk_request *req);

/*
 * Checks what the parameters say of the body before any of it is read:
 * a malformed CONTENT_LENGTH is MK_EBADREQUEST, one over max_body is
 * MK_ETOOLARGE, a body in another media type than JSON is
 * MK_EMEDIATYPE. body_len is the declared length, or the length read
 * when none was declared. *reason (may be NULL) says why for the log.
 */
enum mk_err mk_request_check_body(const struct mk_param *params, size_t nparams,
    size_t max_body, uint64_t body_len, const char **reason);

/*
 * Parses CONTENT_LENGTH: returns 1 with *length set when present, 0 when
 * absent or empty, -1 when malformed (not all digits, or absurd).
 */
int mk_request_content_length(
    const struct mk_param *params, size_t nparams, uint64_t *length);

#endif
