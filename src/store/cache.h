/*
 * memcached access (store layer): the one place that speaks to memcached,
 * through libmemcached with the binary protocol, a pool of servers with
 * consistent hashing and short timeouts. Callers see enum mk_err, never a
 * libmemcached type.
 *
 * Outages: the first failed operation logs once ("memcached unreachable")
 * and starts an outage, which ends (logged once too) at the first
 * operation that works again; libmemcached retries a failed server by
 * itself after a second. Callers decide what a failure means for them
 * (the rate limiter fails open, a cache reads through).
 *
 * A struct mk_cache is worker-lifetime: made after fork, never shared
 * between processes, not thread-safe.
 */
#ifndef MK_CACHE_H
#define MK_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_cache;

/*
 * Connects lazily to servers ("unix:/path/to.sock" or "host:port",
 * comma- or blank-separated). Returns NULL with a reason in err for a
 * malformed list or out of memory. Free with mk_cache_free().
 */
struct mk_cache *mk_cache_new(const char *servers, int timeout_ms, char *err,
    size_t errlen);

void mk_cache_free(struct mk_cache *cache);

/*
 * Adds 1 to the counter under key, creating it at 1 with a lifetime of
 * ttl_s seconds when absent, atomically across every client. Returns
 * MK_OK with *value the new count, or MK_EUNAVAIL when memcached did not
 * answer in time.
 */
enum mk_err mk_cache_incr(struct mk_cache *cache, const char *key,
    size_t key_len, uint32_t ttl_s, uint64_t *value);

/*
 * Checks that memcached answers (a lookup of a key nobody sets). Returns
 * MK_OK or MK_EUNAVAIL.
 */
enum mk_err mk_cache_ping(struct mk_cache *cache);

/* True while an outage is going on (the last operation failed). */
bool mk_cache_down(const struct mk_cache *cache);

/* Outages seen since start (for metrics). */
uint64_t mk_cache_outages(const struct mk_cache *cache);

#endif
