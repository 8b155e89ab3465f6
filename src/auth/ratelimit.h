/*
 * The rate limiter (auth layer): fixed windows of rate_limit.window_s
 * seconds aligned to the epoch, counted in memcached with one atomic
 * increment per request, so every worker and every host share the count.
 * A client is the token's sub when authenticated, else its address:
 * REMOTE_ADDR, or — only when REMOTE_ADDR is a trusted proxy — the
 * rightmost address of X-Forwarded-For that is not itself trusted.
 *
 * When memcached fails, the limiter fails open for at most one window
 * (memcached logs the outage once; the limiter counts the requests let
 * through), then counts per worker in memory until memcached answers
 * again, so an outage neither stops the service nor lifts the limit for
 * long. Without memcached configured, it counts per worker from the start.
 *
 * It calls core/ and store/cache; the http layer hands it the client's
 * address as text. A limiter is worker-lifetime; it does not own the
 * cache it is given.
 */
#ifndef MK_RATELIMIT_H
#define MK_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"

struct mk_arena;
struct mk_cache;
struct mk_config;
struct mk_rate_limiter;

struct mk_rate_decision {
	bool allowed;
	unsigned limit;
	unsigned remaining;
	unsigned reset_s; /* seconds until the window resets */
};

/*
 * Makes a limiter (cache may be NULL: per-worker counting). Returns NULL
 * with a reason in err for a malformed trusted_proxies.
 */
struct mk_rate_limiter *mk_ratelimit_new(const struct mk_config *config,
    struct mk_cache *cache, char *err, size_t errlen);

void mk_ratelimit_free(struct mk_rate_limiter *limiter);

/*
 * Counts one request of client (a short printable key such as "u:42" or
 * "a:192.0.2.1") at time now and decides, on the increment's own answer:
 * exact, at the cost of a round trip of its own. For requests with
 * effects (writes), which must be decided before they run.
 */
void mk_ratelimit_hit(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_rate_decision *out);

/*
 * mk_ratelimit_hit that also looks key up in memcached in the same round
 * trip (the increment rides the lookup): *found is false only when
 * memcached answered that key is absent; true when it is there, or when
 * there is no memcached to ask or it failed (callers that use it as a
 * reason for caution stay cautious). The value read lives in arena.
 */
void mk_ratelimit_hit_seeing(struct mk_rate_limiter *limiter,
    const char *client, int64_t now, struct mk_arena *arena, const char *key,
    size_t key_len, struct mk_rate_decision *out, bool *found);

/*
 * A decision whose count is still in flight: mk_ratelimit_begin sends the
 * increment without waiting, so that the count can come back in the same
 * memcached round trip as the request's own lookups (the cached market
 * read); mk_ratelimit_end then decides. Only for safe requests (GET,
 * HEAD), whose work may run before the decision without effect.
 *
 * The count read back is the counter after this request's increment and
 * after any increment of the same client that landed in between (a
 * concurrent request from the same client). It is never lower than this
 * request's own rank, so the limit is never exceeded; a burst of one
 * client's concurrent requests right at the limit may see a few of them
 * refused one request early, and two of them may report the same
 * X-RateLimit-Remaining. That is the price of not waiting for the
 * increment's answer (libmemcached reads a counting increment's answer
 * before it sends anything else).
 */
struct mk_rate_pending {
	bool in_flight; /* the count comes back in incr */
	struct mk_cache_incr incr;
	int64_t now;
	int64_t window;
	char client[96];
	struct mk_rate_decision decided; /* when not in flight */
};

void mk_ratelimit_begin(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_rate_pending *pending);

void mk_ratelimit_end(struct mk_rate_limiter *limiter,
    struct mk_rate_pending *pending, struct mk_rate_decision *out);

/*
 * The increment in flight of a begun decision, for the request's own
 * memcached lookup to collect (mk_cache_get's ride); NULL when there is
 * none (no memcached, or it could not be sent).
 */
struct mk_cache_incr *mk_ratelimit_in_flight(struct mk_rate_pending *pending);

/*
 * Writes the address a request comes from into out (size >= 64): remote,
 * its REMOTE_ADDR ("unknown" when NULL), or — when remote is a trusted
 * proxy — the rightmost entry of X-Forwarded-For that is not itself
 * trusted. forwarded[0..nforwarded) are the X-Forwarded-For header lines
 * in the order they came.
 */
void mk_ratelimit_client_address(const struct mk_rate_limiter *limiter,
    const char *remote, const char *const *forwarded, size_t nforwarded,
    char *out, size_t size);

/* Requests let through unchecked during memcached outages (for metrics). */
uint64_t mk_ratelimit_failed_open(const struct mk_rate_limiter *limiter);

#endif
