/*
 * The rate limiter (auth layer); see ratelimit.h.
 *
 * Fixed windows: key "rl:<window start>:<client>", incremented with an
 * initial value and a lifetime of one window plus a margin, so keys
 * vanish by themselves. A fixed window lets a client send up to twice
 * the limit across a window boundary; the contract's numbers (100/60)
 * make that acceptable for one round trip per request, where a sliding
 * window would need two.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ratelimit.h"
#include "core/cidr.h"
#include "core/config.h"
#include "core/hash.h"
#include "core/metrics.h"
#include "store/cache.h"

#define LOCAL_SLOTS 4096 /* per-worker fallback table; collisions evict */

struct local_slot {
	uint64_t hash;
	int64_t window;
	unsigned count;
};

struct mk_rate_limiter {
	struct mk_cache *cache; /* not owned; NULL: local only */
	unsigned limit;
	int64_t window_s;
	struct mk_cidr_list proxies;
	int64_t outage_since; /* seconds; 0: memcached answering */
	uint64_t failed_open;
	struct local_slot local[LOCAL_SLOTS];
};

struct mk_rate_limiter *
mk_ratelimit_new(const struct mk_config *config, struct mk_cache *cache,
    char *err, size_t errlen)
{
	struct mk_rate_limiter *limiter = calloc(1, sizeof(*limiter));
	const char *bad;
	size_t bad_len;

	if (limiter == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	limiter->cache = cache;
	limiter->limit = (unsigned)config->rate_limit.limit;
	limiter->window_s = config->rate_limit.window_s;
	if (mk_cidr_list_parse(config->trusted_proxies, &limiter->proxies, &bad,
		&bad_len) != 0) {
		mk_errf(err, errlen,
		    "trusted_proxies: '%.*s' is not an address or CIDR block "
		    "(or more than %d)",
		    (int)(bad_len > 64 ? 64 : bad_len), bad, MK_CIDR_LIST_MAX);
		free(limiter);
		return NULL;
	}
	return limiter;
}

void
mk_ratelimit_free(struct mk_rate_limiter *limiter)
{
	free(limiter);
}

/* FNV-1a: the local table only needs a spread, not secrecy. */
static uint64_t
hash_client(const char *client)
{
	/* 0 marks an empty slot */
	return mk_fnv1a64(client, strlen(client)) | 1;
}

static uint64_t
count_locally(
    struct mk_rate_limiter *limiter, const char *client, int64_t window)
{
	uint64_t h = hash_client(client);
	struct local_slot *slot = &limiter->local[h % LOCAL_SLOTS];

	if (slot->hash != h || slot->window != window) {
		slot->hash = h;
		slot->window = window;
		slot->count = 0;
	}
	return ++slot->count;
}

/* The counter's key, "rl:<window start>:<client>"; 0 when it cannot be made. */
static size_t
counter_key(const char *client, int64_t window, char *key, size_t size)
{
	int len = snprintf(key, size, "rl:%lld:%s", (long long)window, client);

	return len > 0 && (size_t)len < size ? (size_t)len : 0;
}

/* Decides on count, the client's requests in this window so far. */
static void
decide(const struct mk_rate_limiter *limiter, uint64_t count,
    struct mk_rate_decision *out)
{
	out->allowed = count <= limiter->limit;
	out->remaining =
	    count >= limiter->limit ? 0 : (unsigned)(limiter->limit - count);
}

/* memcached did not count: fail open for a window, then count locally. */
static void
decide_without_cache(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, int64_t window, struct mk_rate_decision *out)
{
	if (limiter->outage_since == 0)
		limiter->outage_since = now;
	if (now - limiter->outage_since < limiter->window_s) {
		/* Fail open: memcached is down, not the clients' fault. */
		limiter->failed_open++;
		mk_metrics_count(MK_COUNTER_RATELIMIT_FAILED_OPEN);
		out->allowed = true;
		out->remaining = limiter->limit;
		return;
	}
	decide(limiter, count_locally(limiter, client, window), out);
}

void
mk_ratelimit_begin(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_rate_pending *pending)
{
	int64_t window = now - now % limiter->window_s;
	char key[256];
	size_t key_len;

	pending->in_flight = false;
	pending->now = now;
	pending->window = window;
	(void)snprintf(pending->client, sizeof(pending->client), "%s", client);
	pending->decided.limit = limiter->limit;
	pending->decided.reset_s = (unsigned)(window + limiter->window_s - now);
	if (limiter->cache == NULL) {
		decide(limiter, count_locally(limiter, client, window),
		    &pending->decided);
		return;
	}
	key_len = counter_key(client, window, key, sizeof(key));
	if (key_len > 0 &&
	    mk_cache_incr_send(limiter->cache, key, key_len,
		(uint32_t)limiter->window_s + 5, &pending->incr) == MK_OK) {
		pending->in_flight = true;
		return;
	}
	decide_without_cache(limiter, client, now, window, &pending->decided);
}

void
mk_ratelimit_end(struct mk_rate_limiter *limiter,
    struct mk_rate_pending *pending, struct mk_rate_decision *out)
{
	uint64_t count = 0;

	*out = pending->decided;
	if (!pending->in_flight)
		return;
	pending->in_flight = false;
	if (mk_cache_incr_finish(limiter->cache, &pending->incr, &count) ==
	    MK_OK) {
		limiter->outage_since = 0;
		decide(limiter, count, out);
		return;
	}
	decide_without_cache(
	    limiter, pending->client, pending->now, pending->window, out);
}

struct mk_cache_incr *
mk_ratelimit_in_flight(struct mk_rate_pending *pending)
{
	return pending->in_flight ? &pending->incr : NULL;
}

/* The exact count: the increment's own answer, one round trip. */
void
mk_ratelimit_hit(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_rate_decision *out)
{
	int64_t window = now - now % limiter->window_s;
	uint64_t count = 0;
	char key[256];
	size_t key_len;

	out->limit = limiter->limit;
	out->reset_s = (unsigned)(window + limiter->window_s - now);
	if (limiter->cache == NULL) {
		decide(limiter, count_locally(limiter, client, window), out);
		return;
	}
	key_len = counter_key(client, window, key, sizeof(key));
	if (key_len > 0 &&
	    mk_cache_incr(limiter->cache, key, key_len,
		(uint32_t)limiter->window_s + 5, &count) == MK_OK) {
		limiter->outage_since = 0;
		decide(limiter, count, out);
		return;
	}
	decide_without_cache(limiter, client, now, window, out);
}

void
mk_ratelimit_hit_seeing(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_arena *arena, const char *key, size_t key_len,
    struct mk_rate_decision *out, bool *found)
{
	struct mk_rate_pending pending;
	struct mk_cache_value value;

	*found = true;
	mk_ratelimit_begin(limiter, client, now, &pending);
	if (limiter->cache != NULL)
		switch (mk_cache_get(limiter->cache, arena, key, key_len,
		    mk_ratelimit_in_flight(&pending), &value)) {
		case MK_ENOTFOUND:
			*found = false;
			break;
		default:
			break;
		}
	mk_ratelimit_end(limiter, &pending, out);
}

/* Copies the last comma-separated entry of list[0, *len) into out, trimmed. */
static bool
pop_last(const char *list, size_t *len, char *out, size_t size)
{
	size_t end = *len, start;

	while (end > 0 && (list[end - 1] == ' ' || list[end - 1] == '\t'))
		end--;
	start = end;
	while (start > 0 && list[start - 1] != ',')
		start--;
	*len = start > 0 ? start - 1 : 0;
	while (start < end && (list[start] == ' ' || list[start] == '\t'))
		start++;
	if (end - start == 0 || end - start >= size)
		return false;
	memcpy(out, list + start, end - start);
	out[end - start] = '\0';
	return true;
}

void
mk_ratelimit_client_address(const struct mk_rate_limiter *limiter,
    const char *remote, const char *const *forwarded, size_t nforwarded,
    char *out, size_t size)
{
	const char *line;
	unsigned char scratch[16];
	char entry[64];
	size_t len;

	(void)snprintf(out, size, "%s", remote != NULL ? remote : "unknown");
	if (remote == NULL || !mk_cidr_list_contains(&limiter->proxies, remote))
		return;
	/*
	 * Walk from the right: each hop appended the address it saw. The
	 * header may come as several lines (a proxy may add its own): the last
	 * line is the nearest hop's, so lines are walked last to first too.
	 */
	for (size_t i = nforwarded; i-- > 0;) {
		line = forwarded[i];
		len = strlen(line);
		while (len > 0) {
			if (!pop_last(line, &len, entry, sizeof(entry)) ||
			    (inet_pton(AF_INET, entry, scratch) != 1 &&
				inet_pton(AF_INET6, entry, scratch) != 1))
				/*
				 * garbage from the client side: keep the last
				 * good hop
				 */
				return;
			(void)snprintf(out, size, "%s", entry);
			if (!mk_cidr_list_contains(&limiter->proxies, entry))
				return;
		}
	}
}

uint64_t
mk_ratelimit_failed_open(const struct mk_rate_limiter *limiter)
{
	return limiter->failed_open;
}
