/*
 * memcached access (store layer); see cache.h.
 */
#include <libmemcached/memcached.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/cache.h"

struct mk_cache {
	memcached_st *memc;
	bool down;
	int64_t down_since_ms;
	uint64_t outages;
};

static int
add_server(memcached_st *memc, const char *spec, size_t len, char *err,
    size_t errlen)
{
	char item[256];
	memcached_return_t rc;

	if (len >= sizeof(item)) {
		mk_errf(err, errlen, "memcached: server '%.40s…' too long", spec);
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
			mk_errf(err, errlen, "memcached: '%s' is not unix:PATH or HOST:PORT", item);
			return -1;
		}
		*colon = '\0';
		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535) {
			mk_errf(err, errlen, "memcached: bad port in '%s:%s'", item, colon + 1);
			return -1;
		}
		rc = memcached_server_add(memc, item, (in_port_t)port);
	}
	if (rc != MEMCACHED_SUCCESS) {
		mk_errf(err, errlen, "memcached: cannot add server '%s': %s", item, memcached_strerror(memc, rc));
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
	if (count == 0) {
		mk_errf(err, errlen, "memcached: no server given");
		mk_cache_free(cache);
		return NULL;
	}
	/* Binary protocol: needed for increment-with-initial, and cheaper. */
	if (memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
	    MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_NO_BLOCK, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)timeout_ms) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)timeout_ms * 1000) != MEMCACHED_SUCCESS ||
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)timeout_ms * 1000) != MEMCACHED_SUCCESS ||
	    /* A failed server is left alone for a second, then tried again. */
	    memcached_behavior_set(cache->memc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1) != MEMCACHED_SUCCESS) {
		mk_errf(err, errlen, "memcached: cannot set client behaviour");
		mk_cache_free(cache);
		return NULL;
	}
	return cache;
}

void
mk_cache_free(struct mk_cache *cache)
{
	if (cache == NULL)
		return;
	memcached_free(cache->memc);
	free(cache);
}

/* Records the outcome of one operation; logs the edges of an outage. */
static enum mk_err
outcome(struct mk_cache *cache, memcached_return_t rc)
{
	if (memcached_success(rc)) {
		if (cache->down) {
			mk_log(MK_LOG_WARN, "memcached is back after %lld ms",
			    (long long)(mk_clock_mono_ms() - cache->down_since_ms));
			cache->down = false;
		}
		return MK_OK;
	}
	if (!cache->down) {
		mk_log(MK_LOG_ERROR, "memcached unreachable: %s", memcached_strerror(cache->memc, rc));
		cache->down = true;
		cache->down_since_ms = mk_clock_mono_ms();
		cache->outages++;
	}
	return MK_EUNAVAIL;
}

enum mk_err
mk_cache_incr(struct mk_cache *cache, const char *key, size_t key_len,
    uint32_t ttl_s, uint64_t *value)
{
	memcached_return_t rc;

	rc = memcached_increment_with_initial(cache->memc, key, key_len, 1, 1,
	    (time_t)ttl_s, value);
	return outcome(cache, rc);
}

enum mk_err
mk_cache_ping(struct mk_cache *cache)
{
	static const char key[] = "markets:readyz";
	memcached_return_t rc = memcached_exist(cache->memc, key, sizeof(key) - 1);

	/* Absent is an answer too. */
	return outcome(cache, rc == MEMCACHED_NOTFOUND ? MEMCACHED_SUCCESS : rc);
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
