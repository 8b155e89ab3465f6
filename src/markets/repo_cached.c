/*
 * The memcached cache-aside decorator (markets layer): a struct
 * mk_market_repo over an inner repository, which it owns. A market's
 * document — its whole JSON representation, rendered once by the
 * repository that read the row — is kept under "mk:m:<id>"; hits build
 * nothing, the handler copies the bytes into the envelope. Everything
 * else passes through to the inner repository, and writes invalidate.
 * Only src/app.c stacks it, and only when memcached is configured.
 *
 * Coherence: invalidation by delete, after the write committed and before
 * its response leaves, so the next read through any worker misses and
 * reads the new row. A delete alone has a well-known race: a reader that
 * missed, read the old row, and fills after the writer's delete would
 * put the old row back for a whole TTL. Version keys would close it too,
 * but cost a second round trip on every read (read the version, then the
 * document). So fills go through leases instead (the memcache paper's
 * scheme, NSDI '13): a reader that misses first adds a lease under the
 * key (an `add`, so only one reader wins it), then reads the row, then
 * swaps the lease for the document with compare-and-swap. A write that
 * commits meanwhile deletes the lease, the swap fails, and the stale row
 * is never stored. The same lease protects a hot key on expiry or after
 * a write (stampede): the readers that lose the `add` wait up to
 * lease_wait_ms for the winner's document, then read the row themselves
 * without filling.
 *
 * Failure: memcached down or slow (its timeouts are memcached_timeout)
 * never fails a request: reads go to the inner repository, the store
 * layer logs the outage once, and the decorator counts the errors. An
 * invalidation that cannot be sent is remembered and retried at the next
 * operation that reaches memcached, before anything is read, so a short
 * outage cannot leave a stale document behind once memcached is back. A
 * value under the key that is neither a document nor a lease of this
 * format, or whose checksum fails, is a miss (and is replaced).
 *
 * A pool that lost a server (mk_cache_degraded: its keys are on the
 * others meanwhile) owes more: every invalidation made then is sent again
 * once the pool is whole, to reach a server that comes back with what it
 * held (a partition rather than a restart); and documents filled then
 * live DEGRADED_TTL_S only, so a copy left on a stand-in server cannot
 * outlive the next loss of the server it stood in for by long.
 *
 * Results live in the caller's arena; the decorator is worker-lifetime.
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "markets/repo.h"
#include "store/cache.h"

/* "mk:m:" + 19 digits. */
#define KEY_SIZE 32
/* Invalidations kept for retry while memcached is unreachable. */
#define BACKLOG_MAX 512
/* A document's life when filled while the pool is degraded. */
#define DEGRADED_TTL_S 5

/*
 * A stored value: a 32-byte header, then the document's JSON. The magic
 * names the format and its version, so a layout change or a foreign value
 * reads as a miss, never as garbage.
 */
#define DOC_MAGIC "mkd1"
#define LEASE_MAGIC "mkl1"
#define HEADER_LEN 32
#define LEASE_LEN 16

struct repo_cached {
	struct mk_market_repo base;
	struct mk_market_repo *inner; /* owned */
	struct mk_cache *cache;       /* not owned */
	struct mk_market_cache_options options;
	/*
	 * A lease must be told apart from every other reader's, on every
	 * host: a random nonce per decorator plus a serial (pids repeat
	 * across hosts and containers).
	 */
	uint64_t lease_nonce;
	uint32_t lease_serial;
	int64_t backlog[BACKLOG_MAX]; /* ids whose invalidation is owed */
	size_t nbacklog;
	bool backlog_overflowed;
	/* ids invalidated while the pool was degraded: deleted again after */
	int64_t replay[BACKLOG_MAX];
	size_t nreplay;
	bool replay_overflowed;
};

static void
put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get_u32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t
get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* FNV-1a 64: catches a truncated or overwritten value, not an attacker. */
static uint64_t
checksum(const void *bytes, size_t len)
{
	return mk_fnv1a64(bytes, len);
}

static size_t
doc_key(int64_t id, char *key)
{
	int len = snprintf(key, KEY_SIZE, "mk:m:%lld", (long long)id);

	return len > 0 ? (size_t)len : 0;
}

/*
 * The stored form of doc: magic, JSON length, id, version, checksum of
 * the JSON, then the JSON. NULL when out of memory.
 */
static unsigned char *
encode_doc(struct mk_arena *arena, const struct mk_market_doc *doc, size_t *len)
{
	unsigned char *value;

	if (doc->json_len > UINT32_MAX - HEADER_LEN)
		return NULL;
	value = mk_arena_alloc(arena, HEADER_LEN + doc->json_len);
	if (value == NULL)
		return NULL;
	memcpy(value, DOC_MAGIC, 4);
	put_u32(value + 4, (uint32_t)doc->json_len);
	put_u64(value + 8, (uint64_t)doc->id);
	put_u64(value + 16, doc->version);
	put_u64(value + 24, checksum(doc->json, doc->json_len));
	memcpy(value + HEADER_LEN, doc->json, doc->json_len);
	*len = HEADER_LEN + doc->json_len;
	return value;
}

/* What a value under a document key turned out to be. */
enum stored_kind {
	STORED_DOC,
	STORED_LEASE,
	STORED_FOREIGN, /* corrupt, foreign, or another market's */
};

static enum stored_kind
decode(
    const struct mk_cache_value *value, int64_t id, struct mk_market_doc *out)
{
	const unsigned char *p = value->bytes;
	uint32_t json_len;

	if (value->len == LEASE_LEN && memcmp(p, LEASE_MAGIC, 4) == 0)
		return STORED_LEASE;
	if (value->len < HEADER_LEN || memcmp(p, DOC_MAGIC, 4) != 0)
		return STORED_FOREIGN;
	json_len = get_u32(p + 4);
	if ((size_t)json_len != value->len - HEADER_LEN || json_len < 2 ||
	    get_u64(p + 8) != (uint64_t)id ||
	    get_u64(p + 24) != checksum(p + HEADER_LEN, json_len) ||
	    p[HEADER_LEN] != '{' || p[HEADER_LEN + json_len - 1] != '}')
		return STORED_FOREIGN;
	out->id = id;
	out->version = get_u64(p + 16);
	out->json = (const char *)p + HEADER_LEN;
	out->json_len = json_len;
	out->stale = false;
	return STORED_DOC;
}

/*
 * Sends the invalidations owed since memcached was last unreachable.
 * Returns false while some are still owed (memcached is still down).
 */
static bool
pay_backlog(struct repo_cached *repo)
{
	char key[KEY_SIZE];

	while (repo->nbacklog > 0) {
		int64_t id = repo->backlog[repo->nbacklog - 1];

		if (mk_cache_delete(repo->cache, key, doc_key(id, key)) !=
		    MK_OK)
			return false;
		repo->nbacklog--;
	}
	if (repo->backlog_overflowed) {
		repo->backlog_overflowed = false;
		mk_log(MK_LOG_WARN,
		    "cache: more than %d invalidations were lost in a "
		    "memcached outage; "
		    "documents may be stale for up to cache_ttl",
		    BACKLOG_MAX);
	}
	return true;
}

/*
 * Remembers id in list (n of them, BACKLOG_MAX at most) unless it is
 * there; false when the list is full.
 */
static bool
remember_id(int64_t *list, size_t *n, int64_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (list[i] == id)
			return true;
	if (*n == BACKLOG_MAX)
		return false;
	list[(*n)++] = id;
	return true;
}

/*
 * Every second, once the pool is whole again: the invalidations made while
 * it was not go out once more, to the servers that hold their keys now.
 */
static void
replay_degraded(struct repo_cached *repo)
{
	char key[KEY_SIZE];

	if (mk_cache_degraded(repo->cache))
		return;
	while (repo->nreplay > 0) {
		if (mk_cache_delete(repo->cache, key,
			doc_key(repo->replay[repo->nreplay - 1], key)) != MK_OK)
			return;
		repo->nreplay--;
	}
	if (repo->replay_overflowed) {
		repo->replay_overflowed = false;
		mk_log(MK_LOG_WARN,
		    "cache: more than %d invalidations were made while a "
		    "memcached server was out; a server that kept its data "
		    "may serve stale documents for up to cache_ttl",
		    BACKLOG_MAX);
	}
}

/* Deletes market id's document after a write; owes it when that fails. */
static void
invalidate(struct repo_cached *repo, int64_t id)
{
	char key[KEY_SIZE];
	bool sent;

	mk_metrics_count(MK_COUNTER_CACHE_INVALIDATIONS);
	sent = pay_backlog(repo) &&
	    mk_cache_delete(repo->cache, key, doc_key(id, key)) == MK_OK;
	if (mk_cache_degraded(repo->cache) &&
	    !remember_id(repo->replay, &repo->nreplay, id))
		repo->replay_overflowed = true;
	if (sent)
		return;
	mk_metrics_count(MK_COUNTER_CACHE_ERRORS);
	for (size_t i = 0; i < repo->nbacklog; i++) {
		if (repo->backlog[i] == id)
			return;
	}
	if (repo->nbacklog == BACKLOG_MAX) {
		repo->backlog_overflowed = true;
		return;
	}
	repo->backlog[repo->nbacklog++] = id;
}

/*
 * A miss: takes the lease, reads the row, and swaps the lease for the
 * document unless a write deleted the lease meanwhile.
 */
static enum mk_err
fill(struct repo_cached *repo, struct mk_arena *arena, int64_t id,
    const char *key, size_t key_len, struct mk_market_doc *out,
    bool *lease_lost)
{
	unsigned char lease[LEASE_LEN], *value;
	struct mk_cache_value current;
	size_t value_len;
	enum mk_err rc;

	memcpy(lease, LEASE_MAGIC, 4);
	put_u32(lease + 4, ++repo->lease_serial);
	put_u64(lease + 8, repo->lease_nonce);
	rc = mk_cache_add(repo->cache, key, key_len, lease, sizeof(lease),
	    repo->options.lease_ttl_s);
	if (rc == MK_ECONFLICT) {
		*lease_lost = true;
		return MK_OK;
	}
	rc = mk_market_repo_get_document(repo->inner, arena, id, NULL, out);
	if (rc != MK_OK) {
		/*
		 * Give the lease back rather than make others wait on it:
		 * unknown ids are never cached (a create must not have to
		 * find them), and a failed read has nothing to store.
		 */
		(void)mk_cache_delete(repo->cache, key, key_len);
		return rc;
	}
	if (out->stale) {
		/* read from a lagging replica, the primary down: not stored */
		(void)mk_cache_delete(repo->cache, key, key_len);
		return MK_OK;
	}
	if (mk_cache_get(repo->cache, arena, key, key_len, NULL, &current) !=
		MK_OK ||
	    current.len != sizeof(lease) ||
	    memcmp(current.bytes, lease, sizeof(lease)) != 0)
		/* a write took the lease away: never store what we read */
		return MK_OK;
	value = encode_doc(arena, out, &value_len);
	if (value != NULL &&
	    mk_cache_cas(repo->cache, key, key_len, value, value_len,
		mk_cache_degraded(repo->cache) &&
			repo->options.ttl_s > DEGRADED_TTL_S
		    ? DEGRADED_TTL_S
		    : repo->options.ttl_s,
		current.cas) == MK_OK)
		mk_metrics_count(MK_COUNTER_CACHE_FILLS);
	return MK_OK;
}

static enum mk_err
cached_get_document(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t id, struct mk_cache_incr *ride, struct mk_market_doc *out)
{
	struct repo_cached *repo = (struct repo_cached *)base;
	struct mk_cache_value value;
	char key[KEY_SIZE];
	size_t key_len = doc_key(id, key);
	int waited = 0, step = 1;
	bool lease_lost;
	enum mk_err rc;

	if (repo->nbacklog > 0 && !pay_backlog(repo))
		goto read_through;
	for (;;) {
		/* The first lookup brings the rate-limit count back too. */
		rc = mk_cache_get(
		    repo->cache, arena, key, key_len, ride, &value);
		ride = NULL;
		if (rc == MK_ENOMEM)
			return rc;
		if (rc != MK_OK && rc != MK_ENOTFOUND)
			goto read_through;
		if (rc == MK_OK) {
			switch (decode(&value, id, out)) {
			case STORED_DOC:
				mk_metrics_count(MK_COUNTER_CACHE_HITS);
				return MK_OK;
			case STORED_LEASE:
				break;
			case STORED_FOREIGN:
				(void)mk_cache_delete(
				    repo->cache, key, key_len);
				rc = MK_ENOTFOUND;
				break;
			}
		}
		if (rc == MK_ENOTFOUND) {
			mk_metrics_count(MK_COUNTER_CACHE_MISSES);
			lease_lost = false;
			rc = fill(
			    repo, arena, id, key, key_len, out, &lease_lost);
			if (!lease_lost)
				return rc;
		}
		/* Another reader is filling: wait for its document a little. */
		if (waited >= repo->options.lease_wait_ms)
			break;
		if (waited == 0)
			mk_metrics_count(MK_COUNTER_CACHE_LEASE_WAITS);
		mk_clock_sleep_ms(step, 0);
		waited += step;
		step = step < 8 ? step * 2 : step;
	}
	return mk_market_repo_get_document(repo->inner, arena, id, NULL, out);

read_through:
	mk_metrics_count(MK_COUNTER_CACHE_ERRORS);
	return mk_market_repo_get_document(repo->inner, arena, id, NULL, out);
}

/*
 * Many documents (a search's results): one multi-get, then one query for
 * whatever missed. Misses are not filled here — a fill needs its lease
 * round trips per key; the next single read of each fills it.
 */
static enum mk_err
cached_get_documents(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_market_doc *out, size_t *found)
{
	struct repo_cached *repo = (struct repo_cached *)base;
	const char *keys[MK_MARKET_REPO_MAX_IDS];
	size_t lens[MK_MARKET_REPO_MAX_IDS], nmissing = 0, from_inner = 0;
	struct mk_cache_value values[MK_MARKET_REPO_MAX_IDS];
	int64_t missing[MK_MARKET_REPO_MAX_IDS];
	enum mk_err rc;

	*found = 0;
	if (n > MK_MARKET_REPO_MAX_IDS)
		return MK_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char *key = mk_arena_alloc(arena, KEY_SIZE);

		if (key == NULL)
			return MK_ENOMEM;
		lens[i] = doc_key(ids[i], key);
		keys[i] = key;
	}
	rc = repo->nbacklog > 0 && !pay_backlog(repo)
	    ? MK_EUNAVAIL
	    : mk_cache_get_many(repo->cache, arena, keys, lens, n, values);
	if (rc == MK_ENOMEM)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (rc == MK_OK && values[i].bytes != NULL &&
		    decode(&values[i], ids[i], &out[*found]) == STORED_DOC) {
			mk_metrics_count(MK_COUNTER_CACHE_HITS);
			(*found)++;
		} else {
			mk_metrics_count(rc == MK_OK ? MK_COUNTER_CACHE_MISSES
						     : MK_COUNTER_CACHE_ERRORS);
			missing[nmissing++] = ids[i];
		}
	}
	if (nmissing == 0)
		return MK_OK;
	rc = mk_market_repo_get_documents(
	    repo->inner, arena, missing, nmissing, out + *found, &from_inner);
	if (rc != MK_OK)
		return rc;
	*found += from_inner;
	return MK_OK;
}

static enum mk_err
cached_get(struct mk_market_repo *base, struct mk_arena *arena, int64_t id,
    unsigned fields, struct mk_market *out)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_get(repo->inner, arena, id, fields, out);
}

static enum mk_err
cached_users(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_user *out, size_t *found)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_users(repo->inner, arena, ids, n, out, found);
}

static enum mk_err
cached_list(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_market_query *q, struct mk_market_page *page)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_list(repo->inner, arena, q, page);
}

static enum mk_err
cached_position(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_position(repo->inner, arena, market_id, id, out);
}

static enum mk_err
cached_positions(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_positions(repo->inner, arena, market_id, limit,
	    offset, after_key, after_id, page);
}

/* A create adds a row nobody can have cached: unknown ids are never stored. */
static enum mk_err
cached_create(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, int64_t *id)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_create(repo->inner, arena, who, in, idem, id);
}

/* A buy changes the market's volume (and version). */
static enum mk_err
cached_buy(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, int64_t *id)
{
	struct repo_cached *repo = (struct repo_cached *)base;
	enum mk_err rc = mk_market_repo_buy(
	    repo->inner, arena, who, market_id, side, amount, idem, id);

	if (rc == MK_OK)
		invalidate(repo, market_id);
	return rc;
}

static enum mk_err
cached_update(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, bool may_edit_any, int64_t id,
    const struct mk_market_input *in, const char *if_match)
{
	struct repo_cached *repo = (struct repo_cached *)base;
	enum mk_err rc = mk_market_repo_update(
	    repo->inner, arena, who, may_edit_any, id, in, if_match);

	if (rc == MK_OK)
		invalidate(repo, id);
	return rc;
}

static enum mk_err
cached_remove(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	struct repo_cached *repo = (struct repo_cached *)base;
	enum mk_err rc = mk_market_repo_remove(repo->inner, arena, who, id);

	if (rc == MK_OK)
		invalidate(repo, id);
	return rc;
}

static enum mk_err
cached_idem_reserve(struct mk_market_repo *base, struct mk_arena *arena,
    struct mk_idempotency *idem, enum mk_idem_state *state)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_idem_reserve(repo->inner, arena, idem, state);
}

static enum mk_err
cached_idem_purge(struct mk_market_repo *base, unsigned limit, uint64_t *purged)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	return mk_market_repo_idem_purge(repo->inner, limit, purged);
}

/*
 * Every second: an owed invalidation goes out as soon as memcached is
 * back, not at this worker's next market request, which may be long in
 * coming while other workers serve the stale document.
 */
static void
cached_tick(struct mk_market_repo *base)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	if (repo->nbacklog > 0 || repo->backlog_overflowed)
		(void)pay_backlog(repo);
	if (repo->nreplay > 0 || repo->replay_overflowed)
		replay_degraded(repo);
	mk_market_repo_tick(repo->inner);
}

static void
cached_idem_release(
    struct mk_market_repo *base, const struct mk_idempotency *idem)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	mk_market_repo_idem_release(repo->inner, idem);
}

static void
cached_destroy(struct mk_market_repo *base)
{
	struct repo_cached *repo = (struct repo_cached *)base;

	/*
	 * A worker leaving (reload, stop) takes its owed invalidations with
	 * it: one last try, and the ids it could not send are logged, since
	 * other workers may serve those documents for up to cache_ttl.
	 */
	if (repo->nbacklog > 0 && !pay_backlog(repo)) {
		for (size_t i = 0; i < repo->nbacklog; i++)
			mk_log(MK_LOG_ERROR,
			    "cache: market %lld may be stale for up to "
			    "cache_ttl: "
			    "its invalidation could not be sent before this "
			    "worker exited",
			    (long long)repo->backlog[i]);
	}
	mk_market_repo_free(repo->inner);
	free(repo);
}

static const struct mk_market_repo_ops cached_ops = {
	.get_document = cached_get_document,
	.get_documents = cached_get_documents,
	.get = cached_get,
	.users = cached_users,
	.list = cached_list,
	.create = cached_create,
	.buy = cached_buy,
	.position = cached_position,
	.positions = cached_positions,
	.update = cached_update,
	.remove = cached_remove,
	.idem_reserve = cached_idem_reserve,
	.idem_purge = cached_idem_purge,
	.idem_release = cached_idem_release,
	.tick = cached_tick,
	.destroy = cached_destroy,
};

struct mk_market_repo *
mk_market_repo_cached_new(struct mk_market_repo *inner, struct mk_cache *cache,
    const struct mk_market_cache_options *options)
{
	struct repo_cached *repo = calloc(1, sizeof(*repo));

	if (repo == NULL ||
	    getrandom(&repo->lease_nonce, sizeof(repo->lease_nonce), 0) !=
		(ssize_t)sizeof(repo->lease_nonce)) {
		free(repo);
		mk_market_repo_free(inner);
		return NULL;
	}
	repo->base.ops = &cached_ops;
	repo->inner = inner;
	repo->cache = cache;
	repo->options = *options;
	return &repo->base;
}
