/*
 * memcached access (store layer): the one place that speaks to memcached,
 * through libmemcached with the binary protocol, a pool of servers with
 * consistent hashing and short timeouts. Callers see enum mk_err, never a
 * libmemcached type.
 *
 * Outages: the first failed operation logs once ("memcached unreachable")
 * and starts an outage, which ends (logged once too) at the first
 * operation that works again (for a pool: once none failed for a few
 * seconds). A pool of servers ejects a failed one from its ketama ring,
 * so only that server's share of keys moves, and takes it back once it
 * answers again (see mk_cache_new). libmemcached retries a failed server by
 * itself after a second. Callers decide what a failure means for them
 * (the rate limiter fails open, a cache reads through).
 *
 * Pipelining: an increment may be sent without waiting for its answer
 * (mk_cache_incr_send, into a struct mk_cache_incr the caller owns); its
 * count then travels back with the lookup the caller hands that struct
 * to (mk_cache_get's ride), in the same round trip (a quiet increment,
 * then a multi-get of the counter and the looked-up key on the same
 * connections: memcached answers a connection's commands in order, so
 * the get sees the increment). mk_cache_incr_finish collects it, with a
 * round trip of its own only when no lookup carried it. Any other
 * command reads the increment's answer first (a quiet increment answers
 * only when it fails, and that answer must not be taken for the
 * command's own): the count always lands in the caller's struct.
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

struct mk_arena;
struct mk_cache;

/* Longest key memcached takes (its protocol's limit). */
#define MK_CACHE_KEY_MAX 250

/* A value read from memcached: bytes in the caller's arena. */
struct mk_cache_value {
	const unsigned char *bytes;
	size_t len;
	uint64_t cas; /* for mk_cache_cas() */
};

/*
 * Connects lazily to servers ("unix:/path/to.sock" or "host:port",
 * comma- or blank-separated). Returns NULL with a reason in err for a
 * malformed list or out of memory. Free with mk_cache_free().
 */
struct mk_cache *mk_cache_new(
    const char *servers, int timeout_ms, char *err, size_t errlen);

void mk_cache_free(struct mk_cache *cache);

/*
 * Adds 1 to the counter under key, creating it at 1 with a lifetime of
 * ttl_s seconds when absent, atomically across every client. Returns
 * MK_OK with *value the new count, or MK_EUNAVAIL when memcached did not
 * answer in time. One round trip of its own.
 */
enum mk_err mk_cache_incr(struct mk_cache *cache, const char *key,
    size_t key_len, uint32_t ttl_s, uint64_t *value);

/*
 * An increment sent without waiting for its answer, owned by the caller
 * (a request): the lookup it is handed to as a ride, or
 * mk_cache_incr_finish, collects its count into it.
 */
struct mk_cache_incr {
	bool answered;      /* its count (or failure) has been read */
	enum mk_err status; /* once answered: MK_OK, or MK_EUNAVAIL */
	uint64_t value;     /* the new count, when status is MK_OK */
	char key[MK_CACHE_KEY_MAX + 1];
	size_t key_len;
	uint32_t ttl_s;
};

/*
 * Sends an increment of the counter under key (created at 1 with a
 * lifetime of ttl_s when absent) into *incr without waiting for the
 * answer; the count comes back with the mk_cache_get() that is handed
 * incr, or with mk_cache_incr_finish(). One increment may be in flight
 * at a time, and incr must stay put until it is finished. MK_EUNAVAIL
 * when memcached cannot be reached (nothing is then in flight).
 */
enum mk_err mk_cache_incr_send(struct mk_cache *cache, const char *key,
    size_t key_len, uint32_t ttl_s, struct mk_cache_incr *incr);

/*
 * The count of the increment incr: MK_OK with *value, or MK_EUNAVAIL when
 * its answer could not be read. Nothing is in flight afterwards.
 */
enum mk_err mk_cache_incr_finish(
    struct mk_cache *cache, struct mk_cache_incr *incr, uint64_t *value);

/*
 * Looks key up: MK_OK with *out (bytes copied into arena), MK_ENOTFOUND,
 * MK_EUNAVAIL, or MK_ENOMEM. ride (NULL: none) is an increment in flight
 * whose count this lookup collects in its round trip.
 */
enum mk_err mk_cache_get(struct mk_cache *cache, struct mk_arena *arena,
    const char *key, size_t key_len, struct mk_cache_incr *ride,
    struct mk_cache_value *out);

/*
 * Looks n keys (at most 128) up in one round trip (one per server holding
 * some): out[i] gets key i's value, or bytes NULL when it is absent.
 * MK_OK, MK_EUNAVAIL, MK_EINVAL or MK_ENOMEM.
 */
enum mk_err mk_cache_get_many(struct mk_cache *cache, struct mk_arena *arena,
    const char *const *keys, const size_t *key_lens, size_t n,
    struct mk_cache_value *out);

/*
 * Stores value under key only when nothing is there: MK_OK, MK_ECONFLICT
 * when the key exists, MK_EUNAVAIL.
 */
enum mk_err mk_cache_add(struct mk_cache *cache, const char *key,
    size_t key_len, const void *value, size_t len, uint32_t ttl_s);

/*
 * Replaces the value under key only if it is still the one read with cas
 * (compare-and-swap): MK_OK; MK_ECONFLICT when it changed or went away;
 * MK_EUNAVAIL.
 */
enum mk_err mk_cache_cas(struct mk_cache *cache, const char *key,
    size_t key_len, const void *value, size_t len, uint32_t ttl_s,
    uint64_t cas);

/* Stores value under key unconditionally: MK_OK or MK_EUNAVAIL. */
enum mk_err mk_cache_set(struct mk_cache *cache, const char *key,
    size_t key_len, const void *value, size_t len, uint32_t ttl_s);

/* Deletes key: MK_OK (also when it was absent) or MK_EUNAVAIL. */
enum mk_err mk_cache_delete(
    struct mk_cache *cache, const char *key, size_t key_len);

/*
 * Checks that memcached answers (a lookup of a key nobody sets). Returns
 * MK_OK or MK_EUNAVAIL.
 */
enum mk_err mk_cache_ping(struct mk_cache *cache);

/*
 * True while an outage is going on: the last operation failed, or, for a
 * pool of servers, one failed within the last few seconds.
 */
bool mk_cache_down(const struct mk_cache *cache);

/*
 * True when an operation failed within the last few seconds: with a pool,
 * a server may be out of the ring, its keys served by the others. What is
 * deleted meanwhile may linger on the server that comes back (a partition
 * rather than a restart), so callers delete it again once this is false
 * (markets/repo_cached.c).
 */
bool mk_cache_degraded(const struct mk_cache *cache);

/* Outages seen since start (for metrics). */
uint64_t mk_cache_outages(const struct mk_cache *cache);

#endif
