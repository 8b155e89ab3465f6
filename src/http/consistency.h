/*
 * Read-your-writes over replicas (http layer): which database a
 * request's lag-tolerant reads may use. A client that wrote (a write
 * answered 2xx to a token's sub) has a window of replica_max_lag + 2 s
 * during which its reads go to the primary: the mark "w:<sub>" lives that
 * long in memcached, so every worker and host sees it. Looking it up
 * rides the rate limiter's increment, a round trip the request makes
 * anyway. Anonymous clients cannot write, so they never wait for a
 * window; without memcached to keep the marks, every authenticated read
 * goes to the primary. docs/scaling.md argues the choice.
 *
 * The context is the wiring's (worker-lifetime); replicas NULL: no
 * routing, and these calls change nothing but the rate limit.
 */
#ifndef MK_HTTP_CONSISTENCY_H
#define MK_HTTP_CONSISTENCY_H

#include <stdint.h>

struct mk_cache;
struct mk_rate_decision;
struct mk_rate_limiter;
struct mk_replicas;
struct mk_request;
struct mk_response;

struct mk_consistency {
	struct mk_replicas *replicas; /* NULL: none configured */
	struct mk_cache *cache;       /* where the marks live; may be NULL */
	uint32_t window_s;            /* a mark's life */
};

/*
 * Before a request's rate limit: pins its reads to the primary when it
 * carries a token (until told otherwise), else lets them go to replicas.
 */
void mk_consistency_begin(
    const struct mk_consistency *c, const struct mk_request *req);

/*
 * Counts the request against the limiter (mk_ratelimit_hit) and, for an
 * authenticated GET or HEAD, learns in the same round trip whether its
 * client is within a write's window: the reads of a client who did not
 * write lately go to replicas.
 */
void mk_consistency_hit(const struct mk_consistency *c,
    struct mk_rate_limiter *limiter, const char *client, struct mk_request *req,
    struct mk_rate_decision *out);

/*
 * After a handler: a write answered 2xx opens its client's window before
 * the answer leaves.
 */
void mk_consistency_wrote(const struct mk_consistency *c,
    const struct mk_request *req, const struct mk_response *resp);

#endif
