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
#include "core/config.h"
#include "http/request.h"
#include "store/cache.h"

#define MAX_PROXIES 64
#define LOCAL_SLOTS 4096 /* per-worker fallback table; collisions evict */

struct cidr {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct local_slot {
	uint64_t hash;
	int64_t window;
	unsigned count;
};

struct mk_rate_limiter {
	struct mk_cache *cache; /* not owned; NULL: local only */
	unsigned limit;
	int64_t window_s;
	struct cidr proxies[MAX_PROXIES];
	size_t nproxies;
	int64_t outage_since; /* seconds; 0: memcached answering */
	uint64_t failed_open;
	struct local_slot local[LOCAL_SLOTS];
};

/* Parses "192.0.2.0/24", "::1", "10.1.2.3". Returns 0 or -1. */
static int
parse_cidr(const char *text, size_t len, struct cidr *out)
{
	char buf[64], *slash;
	unsigned max;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		long prefix = strtol(slash + 1, &end, 10);

		if (slash[1] == '\0' || *end != '\0' || prefix < 0 || prefix > (long)max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	return 0;
}

static bool
cidr_contains(const struct cidr *net, const char *address)
{
	unsigned char addr[16];
	unsigned full, rest;

	if (inet_pton(net->family, address, addr) != 1)
		return false;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(addr, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((addr[full] ^ net->addr[full]) & (0xFF << (8 - rest))) == 0;
}

static bool
trusted(const struct mk_rate_limiter *limiter, const char *address)
{
	for (size_t i = 0; i < limiter->nproxies; i++) {
		if (cidr_contains(&limiter->proxies[i], address))
			return true;
	}
	return false;
}

struct mk_rate_limiter *
mk_ratelimit_new(const struct mk_config *config, struct mk_cache *cache,
    char *err, size_t errlen)
{
	struct mk_rate_limiter *limiter = calloc(1, sizeof(*limiter));
	size_t len;

	if (limiter == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	limiter->cache = cache;
	limiter->limit = (unsigned)config->rate_limit.limit;
	limiter->window_s = config->rate_limit.window_s;
	for (const char *p = config->trusted_proxies; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (limiter->nproxies == MAX_PROXIES ||
		    parse_cidr(p, len, &limiter->proxies[limiter->nproxies]) != 0) {
			mk_errf(err, errlen, "trusted_proxies: '%.*s' is not an address or CIDR block (or more than %d)",
			    (int)(len > 64 ? 64 : len), p, MAX_PROXIES);
			free(limiter);
			return NULL;
		}
		limiter->nproxies++;
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
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)client; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h | 1; /* 0 marks an empty slot */
}

static uint64_t
count_locally(struct mk_rate_limiter *limiter, const char *client, int64_t window)
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

void
mk_ratelimit_hit(struct mk_rate_limiter *limiter, const char *client,
    int64_t now, struct mk_rate_decision *out)
{
	int64_t window = now - now % limiter->window_s;
	uint64_t count = 0;
	char key[256];
	int key_len;

	out->limit = limiter->limit;
	out->reset_s = (unsigned)(window + limiter->window_s - now);
	if (limiter->cache != NULL) {
		key_len = snprintf(key, sizeof(key), "rl:%lld:%s", (long long)window, client);
		if (key_len > 0 && (size_t)key_len < sizeof(key) &&
		    mk_cache_incr(limiter->cache, key, (size_t)key_len,
		    (uint32_t)limiter->window_s + 5, &count) == MK_OK) {
			limiter->outage_since = 0;
		} else {
			if (limiter->outage_since == 0)
				limiter->outage_since = now;
			if (now - limiter->outage_since < limiter->window_s) {
				/* Fail open: memcached is down, not the clients' fault. */
				limiter->failed_open++;
				out->allowed = true;
				out->remaining = limiter->limit;
				return;
			}
			count = count_locally(limiter, client, window);
		}
	} else {
		count = count_locally(limiter, client, window);
	}
	out->allowed = count <= limiter->limit;
	out->remaining = count >= limiter->limit ? 0 : (unsigned)(limiter->limit - count);
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
    const struct mk_request *req, char *out, size_t size)
{
	const char *remote = mk_request_param(req, "REMOTE_ADDR");
	const char *forwarded;
	unsigned char scratch[16];
	char entry[64];
	size_t len;

	(void)snprintf(out, size, "%s", remote != NULL ? remote : "unknown");
	if (remote == NULL || !trusted(limiter, remote))
		return;
	/*
	 * Walk from the right: each hop appended the address it saw. The
	 * header may come as several lines (several parameters): the last
	 * line is the nearest hop's, so lines are walked last to first too.
	 */
	for (size_t i = req->nparams; i-- > 0;) {
		if (strcmp(req->params[i].name, "HTTP_X_FORWARDED_FOR") != 0)
			continue;
		forwarded = req->params[i].value;
		len = req->params[i].value_len;
		while (len > 0) {
			if (!pop_last(forwarded, &len, entry, sizeof(entry)) ||
			    (inet_pton(AF_INET, entry, scratch) != 1 &&
			    inet_pton(AF_INET6, entry, scratch) != 1))
				return; /* garbage from the client side: keep the last good hop */
			(void)snprintf(out, size, "%s", entry);
			if (!trusted(limiter, entry))
				return;
		}
	}
}

uint64_t
mk_ratelimit_failed_open(const struct mk_rate_limiter *limiter)
{
	return limiter->failed_open;
}
