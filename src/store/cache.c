/*
 * memcached access (store layer); see cache.h.
 */
#include <assert.h>
#include <libmemcached/memcached.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "store/cache.h"

/*
 * A pool is "degraded" (mk_cache_degraded) while a server is out of the
 * ketama ring (libmemcached puts one of the probe keys elsewhere), and
 * for DEGRADED_MS after any failed operation: longer than DEAD_TIMEOUT_S,
 * after which libmemcached puts an ejected server back in the ring and,
 * while it is still dead, fails the next operation on its keys. And
 * longer than a client's write mark lives (replica_max_lag + 2 s, 7 s by
 * default; http/consistency.c): a mark stored on another server while
 * one was out is not found once it is back, and while the pool is
 * degraded every authenticated read stays on the primary instead.
 */
#define DEGRADED_MS 10000
#define DEAD_TIMEOUT_S 2
#define PROBES_MAX 32

struct mk_cache {
	memcached_st *memc;
	/* reused by every lookup: no malloc per get */
	memcached_result_st result;
	bool result_ready;
	/*
	 * The increment in flight on the connections (mk_cache_incr_send),
	 * until its answer is read: the caller's, not ours, and in a
	 * request's memory (the rate limiter's decision), which is why every
	 * end of a request finishes it first (mk_ratelimit_end). Kept because
	 * the connections are in a state until then (see settle()).
	 */
	struct mk_cache_incr *in_flight;
	bool down;
	int64_t down_since_ms;
	uint64_t outages;
	size_t nservers;
	int64_t failed_ms; /* the last failed operation's time; 0: none */
	/*
	 * A key that the whole ring puts on server i, for the first
	 * PROBES_MAX servers: where libmemcached hashes it now tells whether
	 * server i is out of the ring (no round trip). "" when none found.
	 */
	char probe[PROBES_MAX][16];
};

static int
add_server(
    memcached_st *memc, const char *spec, size_t len, char *err, size_t errlen)
{
	char item[256];
	memcached_return_t rc;

	if (len >= sizeof(item)) {
		mk_errf(
		    err, errlen, "memcached: server '%.40s…' too long", spec);
		return -1;
	}
	memcpy(item, spec, len);
	item[len] = '\0';
	if (strncmp(item, "unix:", 5) == 0) {
		rc = memcached_server_add_unix_socket(memc, item + 5);
	} else {
		char *colon = strrchr(item, ':'), *end;
		long port;

		if (colon == NULL || colon == item) {
			mk_errf(err, errlen,
			    "memcached: '%s' is not unix:PATH or HOST:PORT",
			    item);
			return -1;
		}
		*colon = '\0';
		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535) {
			mk_errf(err, errlen, "memcached: bad port in '%s:%s'",
			    item, colon + 1);
			return -1;
		}
		rc = memcached_server_add(memc, item, (in_port_t)port);
	}
	if (rc != MEMCACHED_SUCCESS) {
		mk_errf(err, errlen, "memcached: cannot add server '%s': %s",
		    item, memcached_strerror(memc, rc));
		return -1;
	}
	return 0;
}

struct mk_cache *
mk_cache_new(const char *servers, int timeout_ms, char *err, size_t errlen)
{
	struct mk_cache *cache = calloc(1, sizeof(*cache));
	size_t len, count = 0;

	if (cache == NULL || (cache->memc = memcached_create(NULL)) == NULL) {
		free(cache);
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	for (const char *p = servers; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (add_server(cache->memc, p, len, err, errlen) != 0) {
			mk_cache_free(cache);
			return NULL;
		}
		count++;
	}
	cache->nservers = count;

	if (count == 0) {
		mk_errf(err, errlen, "memcached: no server given");
		mk_cache_free(cache);
		return NULL;
	}
	/* Binary protocol: needed for increment-with-initial, and cheaper. */
	if (memcached_behavior_set(cache->memc,
		MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
		MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA) !=
		MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_NO_BLOCK,
		1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_TCP_NODELAY,
		1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc,
		MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
		(uint64_t)timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
		(uint64_t)timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT,
		(uint64_t)timeout_ms * 1000) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_SND_TIMEOUT,
		(uint64_t)timeout_ms * 1000) != MEMCACHED_SUCCESS ||
	    /* A failed server is left alone for a second, then tried again. */
	    memcached_behavior_set(cache->memc,
		MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1) != MEMCACHED_SUCCESS ||
	    /*
	     * A pool: a server that keeps failing leaves the ketama ring, so
	     * its keys (and only its) go to the others' points at once, instead
	     * of failing until it is back; every DEAD_TIMEOUT_S it is tried
	     * again, and once it answers it has its keys back.
	     */
	    (count > 1 &&
		(memcached_behavior_set(cache->memc,
		     MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS,
		     1) != MEMCACHED_SUCCESS ||
		    memcached_behavior_set(cache->memc,
			MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT,
			1) != MEMCACHED_SUCCESS ||
		    memcached_behavior_set(cache->memc,
			MEMCACHED_BEHAVIOR_DEAD_TIMEOUT,
			DEAD_TIMEOUT_S) != MEMCACHED_SUCCESS))) {
		mk_errf(err, errlen, "memcached: cannot set client behaviour");
		mk_cache_free(cache);
		return NULL;
	}
	for (unsigned i = 0; count > 1 && i < 4096; i++) {
		char key[16];
		int klen = snprintf(key, sizeof(key), "mk:probe:%u", i);
		uint32_t at =
		    memcached_generate_hash(cache->memc, key, (size_t)klen);

		if (klen > 0 && at < PROBES_MAX && cache->probe[at][0] == '\0')
			memcpy(cache->probe[at], key, (size_t)klen + 1);
	}
	if (memcached_result_create(cache->memc, &cache->result) == NULL) {
		mk_errf(err, errlen, "out of memory");
		mk_cache_free(cache);
		return NULL;
	}
	cache->result_ready = true;
	return cache;
}

void
mk_cache_free(struct mk_cache *cache)
{
	if (cache == NULL)
		return;
	if (cache->result_ready)
		memcached_result_free(&cache->result);
	memcached_free(cache->memc);
	free(cache);
}

/*
 * Records the outcome of one operation; logs the edges of an outage. A
 * pool's outage (one server lost while the others answer) ends only once
 * no operation failed for DEGRADED_MS, not at each success in between.
 */
static enum mk_err
outcome(struct mk_cache *cache, memcached_return_t rc)
{
	if (memcached_success(rc)) {
		if (cache->down &&
		    (cache->nservers < 2 || !mk_cache_degraded(cache))) {
			mk_log(MK_LOG_WARN, "memcached is back after %lld ms",
			    (long long)(mk_clock_mono_ms() -
				cache->down_since_ms));
			cache->down = false;
		}
		return MK_OK;
	}
	cache->failed_ms = mk_clock_mono_ms();
	if (!cache->down) {
		mk_log(MK_LOG_ERROR, "memcached unreachable: %s",
		    memcached_strerror(cache->memc, rc));
		cache->down = true;
		cache->down_since_ms = mk_clock_mono_ms();
		cache->outages++;
		mk_metrics_count(MK_COUNTER_MEMCACHED_OUTAGES);
	}
	return MK_EUNAVAIL;
}

static void settle(struct mk_cache *cache);
static bool parse_counter(const char *text, size_t len, uint64_t *out);
static enum mk_err lookup(struct mk_cache *cache, struct mk_arena *arena,
    const char *const *keys, const size_t *key_lens, size_t n,
    struct mk_cache_incr *ride, struct mk_cache_value *out);
static enum mk_err recover_counter(struct mk_cache *cache,
    struct mk_arena *arena, const char *const *keys, const size_t *key_lens,
    size_t n, struct mk_cache_incr *ride, struct mk_cache_value *out);

/*
 * After a failed increment: when memcached still answers (a delete of the
 * counter works), the failure was the value — not a number, written by
 * someone else — which is now gone, so the caller may count again. When
 * memcached does not answer, it is an outage. Returns true to retry.
 */
static bool
replace_foreign_counter(struct mk_cache *cache, const char *key, size_t key_len)
{
	memcached_return_t rc;
	uint32_t flags = 0;
	size_t len = 0;
	uint64_t ignored;
	char *value;
	bool foreign;

	/* Only a value memcached shows us, and not a number, is replaced. */
	value = memcached_get(cache->memc, key, key_len, &len, &flags, &rc);
	foreign = value != NULL && !parse_counter(value, len, &ignored);
	free(value);
	if (!foreign)
		return false;
	rc = memcached_delete(cache->memc, key, key_len, 0);
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_DELETED &&
	    rc != MEMCACHED_NOTFOUND)
		return false;
	mk_log(MK_LOG_WARN,
	    "memcached: counter %.*s held a value that is not a number; "
	    "replaced",
	    (int)key_len, key);
	return true;
}

/*
 * Outcomes that are answers, not failures: memcached said "absent",
 * "exists" or "changed".
 */
static bool
answered(memcached_return_t rc)
{
	return memcached_success(rc) || rc == MEMCACHED_NOTFOUND ||
	    rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS;
}

/*
 * Counts key up by one (from 1 when absent, living ttl_s), once more when
 * the first try met a value that is not a counter and replaced it.
 */
static memcached_return_t
increment(struct mk_cache *cache, const char *key, size_t key_len,
    uint32_t ttl_s, uint64_t *value)
{
	memcached_return_t rc;

	rc = memcached_increment_with_initial(
	    cache->memc, key, key_len, 1, 1, (time_t)ttl_s, value);
	if (!memcached_success(rc) &&
	    replace_foreign_counter(cache, key, key_len))
		rc = memcached_increment_with_initial(
		    cache->memc, key, key_len, 1, 1, (time_t)ttl_s, value);
	return rc;
}

enum mk_err
mk_cache_incr(struct mk_cache *cache, const char *key, size_t key_len,
    uint32_t ttl_s, uint64_t *value)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc;

	settle(cache);
	rc = outcome(cache, increment(cache, key, key_len, ttl_s, value));
	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

/* mk_cache_incr_send()'s work, untimed. */
static enum mk_err
incr_send(struct mk_cache *cache, const char *key, size_t key_len,
    uint32_t ttl_s, struct mk_cache_incr *incr)
{
	memcached_return_t rc, restore;
	uint64_t ignored;

	assert(cache->in_flight == NULL);
	if (key_len > MK_CACHE_KEY_MAX)
		return MK_EINVAL;
	/*
	 * No reply: libmemcached sends a quiet increment (INCREMENTQ), which
	 * memcached answers only on error, and returns at once.
	 */
	if (memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_NOREPLY,
		1) != MEMCACHED_SUCCESS)
		return outcome(cache, MEMCACHED_FAILURE);
	rc = memcached_increment_with_initial(
	    cache->memc, key, key_len, 1, 1, (time_t)ttl_s, &ignored);
	restore =
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
	if (restore != MEMCACHED_SUCCESS)
		return outcome(cache, restore);
	if (!memcached_success(rc))
		return outcome(cache, rc);
	memcpy(incr->key, key, key_len);
	incr->key[key_len] = '\0';
	incr->key_len = key_len;
	incr->ttl_s = ttl_s;
	incr->answered = false;
	incr->status = MK_EUNAVAIL;
	cache->in_flight = incr;
	return MK_OK;
}

enum mk_err
mk_cache_incr_send(struct mk_cache *cache, const char *key, size_t key_len,
    uint32_t ttl_s, struct mk_cache_incr *incr)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc = incr_send(cache, key, key_len, ttl_s, incr);

	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

/* Parses a counter's value (memcached keeps counters as decimal text). */
static bool
parse_counter(const char *text, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	*out = v;
	return true;
}

/* Most keys one lookup takes (a search's results are at most 50). */
#define LOOKUP_MAX 128

/*
 * One round trip: a multi-get of keys[0..n) (n may be 0) and, when ride
 * is the increment in flight, of its counter, whose count it records in
 * ride. out[i] gets key i's value (bytes NULL when absent). MK_OK when
 * memcached answered; MK_EUNAVAIL, MK_ENOMEM or MK_EINVAL otherwise.
 */
static enum mk_err
lookup(struct mk_cache *cache, struct mk_arena *arena, const char *const *keys,
    const size_t *key_lens, size_t n, struct mk_cache_incr *ride,
    struct mk_cache_value *out)
{
	const char *all[LOOKUP_MAX + 1];
	size_t lens[LOOKUP_MAX + 1], total = 0;
	bool want_counter;
	enum mk_err status = MK_OK;
	memcached_return_t rc;

	if (ride != cache->in_flight)
		settle(cache);
	want_counter = ride != NULL && ride == cache->in_flight;
	if (n > LOOKUP_MAX)
		return MK_EINVAL;
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct mk_cache_value){ .bytes = NULL };
		if (key_lens[i] > MK_CACHE_KEY_MAX)
			return MK_EINVAL;
		all[total] = keys[i];
		lens[total++] = key_lens[i];
	}
	if (want_counter) {
		all[total] = ride->key;
		lens[total++] = ride->key_len;
		/* Absent after an increment: it failed on the server. */
		cache->in_flight = NULL;
		ride->answered = true;
		ride->status = MK_EUNAVAIL;
	}
	if (total == 0)
		return MK_OK;
	rc = memcached_mget(cache->memc, all, lens, total);
	if (!memcached_success(rc))
		return outcome(cache, rc);
	for (;;) {
		memcached_result_st *result =
		    memcached_fetch_result(cache->memc, &cache->result, &rc);
		const char *result_key;
		size_t result_key_len, i;

		if (result == NULL)
			break;
		result_key = memcached_result_key_value(result);
		result_key_len = memcached_result_key_length(result);
		if (want_counter && result_key_len == ride->key_len &&
		    memcmp(result_key, ride->key, result_key_len) == 0) {
			if (parse_counter(memcached_result_value(result),
				memcached_result_length(result), &ride->value))
				ride->status = MK_OK;
			continue;
		}
		for (i = 0; i < n; i++) {
			if (out[i].bytes == NULL &&
			    key_lens[i] == result_key_len &&
			    memcmp(keys[i], result_key, result_key_len) == 0)
				break;
		}
		if (i < n) {
			size_t len = memcached_result_length(result);
			unsigned char *copy = mk_arena_alloc(arena, len + 1);

			if (copy == NULL) {
				status = MK_ENOMEM;
				/* drain the rest of the answer all the same */
				continue;
			}
			if (len > 0) /* an empty value may come as NULL */
				memcpy(
				    copy, memcached_result_value(result), len);
			copy[len] = '\0';
			out[i] = (struct mk_cache_value){ .bytes = copy,
				.len = len,
				.cas = memcached_result_cas(result) };
		}
	}
	/*
	 * The quiet increment's error reply (libmemcached stops there and
	 * says NOTFOUND); a timeout or a broken connection is an outage.
	 */
	if (want_counter && rc == MEMCACHED_NOTFOUND)
		return recover_counter(
		    cache, arena, keys, key_lens, n, ride, out);
	if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS &&
	    rc != MEMCACHED_NOTFOUND)
		return outcome(cache, rc);
	(void)outcome(cache, MEMCACHED_SUCCESS);
	return status;
}

/*
 * The quiet increment failed on the server (its counter held a value that
 * is not a number): memcached answered it with an error ahead of the
 * gets, and libmemcached stopped reading there, leaving the rest of the
 * answer on the connection. Start clean: drop the connections (they come
 * back at the next command), replace the counter and count with a plain
 * increment, and look key up again on its own.
 */
static enum mk_err
recover_counter(struct mk_cache *cache, struct mk_arena *arena,
    const char *const *keys, const size_t *key_lens, size_t n,
    struct mk_cache_incr *ride, struct mk_cache_value *out)
{
	memcached_quit(cache->memc);
	ride->status = outcome(cache,
	    increment(
		cache, ride->key, ride->key_len, ride->ttl_s, &ride->value));
	return lookup(cache, arena, keys, key_lens, n, NULL, out);
}

enum mk_err
mk_cache_incr_finish(
    struct mk_cache *cache, struct mk_cache_incr *incr, uint64_t *value)
{
	if (cache->in_flight == incr) {
		uint64_t began = mk_trace_begin();

		(void)lookup(cache, NULL, NULL, NULL, 0, incr, NULL);
		mk_trace_end(MK_PHASE_CACHE, began);
	}
	if (!incr->answered)
		return MK_EUNAVAIL;
	if (incr->status == MK_OK)
		*value = incr->value;
	return incr->status;
}

enum mk_err
mk_cache_get(struct mk_cache *cache, struct mk_arena *arena, const char *key,
    size_t key_len, struct mk_cache_incr *ride, struct mk_cache_value *out)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc = lookup(cache, arena, &key, &key_len, 1, ride, out);

	mk_trace_end(MK_PHASE_CACHE, began);
	return rc == MK_OK && out->bytes == NULL ? MK_ENOTFOUND : rc;
}

enum mk_err
mk_cache_get_many(struct mk_cache *cache, struct mk_arena *arena,
    const char *const *keys, const size_t *key_lens, size_t n,
    struct mk_cache_value *out)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc = lookup(cache, arena, keys, key_lens, n, NULL, out);

	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

/*
 * Reads the answer of an increment in flight before another command goes
 * out, so that no command can take the increment's answer (memcached
 * answers a quiet increment only when it fails) for its own.
 */
static void
settle(struct mk_cache *cache)
{
	if (cache->in_flight != NULL)
		(void)lookup(
		    cache, NULL, NULL, NULL, 0, cache->in_flight, NULL);
}

/*
 * Maps a command's answer: MK_OK, refused when memcached said "absent",
 * "exists" or "changed", the outage of outcome() when it did not answer.
 */
static enum mk_err
answer(struct mk_cache *cache, memcached_return_t rc, enum mk_err refused)
{
	if (!answered(rc))
		return outcome(cache, rc);
	(void)outcome(cache, MEMCACHED_SUCCESS);
	return memcached_success(rc) ? MK_OK : refused;
}

/* memcached_add or memcached_set: a storage command without a CAS. */
typedef memcached_return_t store_fn(memcached_st *memc, const char *key,
    size_t key_len, const char *value, size_t len, time_t ttl_s,
    uint32_t flags);

static enum mk_err
store(struct mk_cache *cache, store_fn *command, const char *key,
    size_t key_len, const void *value, size_t len, uint32_t ttl_s)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc;

	settle(cache);
	rc = answer(cache,
	    command(cache->memc, key, key_len, (const char *)value, len,
		(time_t)ttl_s, 0),
	    MK_ECONFLICT);
	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

enum mk_err
mk_cache_add(struct mk_cache *cache, const char *key, size_t key_len,
    const void *value, size_t len, uint32_t ttl_s)
{
	return store(cache, memcached_add, key, key_len, value, len, ttl_s);
}

enum mk_err
mk_cache_cas(struct mk_cache *cache, const char *key, size_t key_len,
    const void *value, size_t len, uint32_t ttl_s, uint64_t cas)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc;

	settle(cache);
	rc = answer(cache,
	    memcached_cas(cache->memc, key, key_len, (const char *)value, len,
		(time_t)ttl_s, 0, cas),
	    MK_ECONFLICT);
	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

enum mk_err
mk_cache_set(struct mk_cache *cache, const char *key, size_t key_len,
    const void *value, size_t len, uint32_t ttl_s)
{
	return store(cache, memcached_set, key, key_len, value, len, ttl_s);
}

enum mk_err
mk_cache_delete(struct mk_cache *cache, const char *key, size_t key_len)
{
	uint64_t began = mk_trace_begin();
	enum mk_err rc;

	settle(cache);
	/* Absent is as good as deleted. */
	rc = answer(
	    cache, memcached_delete(cache->memc, key, key_len, 0), MK_OK);
	mk_trace_end(MK_PHASE_CACHE, began);
	return rc;
}

enum mk_err
mk_cache_ping(struct mk_cache *cache)
{
	static const char key[] = "markets:readyz";
	memcached_return_t rc =
	    memcached_exist(cache->memc, key, sizeof(key) - 1);

	/* Absent is an answer too. */
	return outcome(
	    cache, rc == MEMCACHED_NOTFOUND ? MEMCACHED_SUCCESS : rc);
}

bool
mk_cache_degraded(const struct mk_cache *cache)
{
	if (cache->failed_ms != 0 &&
	    mk_clock_mono_ms() - cache->failed_ms < DEGRADED_MS)
		return true;
	/* A server out of the ring fails nothing: its keys went elsewhere. */
	for (uint32_t i = 0; i < PROBES_MAX && i < cache->nservers; i++)
		if (cache->probe[i][0] != '\0' &&
		    memcached_generate_hash(cache->memc, cache->probe[i],
			strlen(cache->probe[i])) != i)
			return true;
	return false;
}

bool
mk_cache_down(const struct mk_cache *cache)
{
	return cache->down;
}

uint64_t
mk_cache_outages(const struct mk_cache *cache)
{
	return cache->outages;
}
