/*
 * The market repository (markets layer): the interface services use to
 * read and write markets, as a table of operations in the manner of
 * redis's ConnectionType. Implementations embed struct mk_market_repo
 * first: repo_mysql.c over MariaDB, and repo_cached.c, the memcached
 * cache-aside decorator that owns an inner repository and stacks on it.
 * Only the wiring (src/app.c) knows which are stacked, and nothing but
 * this header writes `->ops->`: callers use the mk_market_repo_*
 * wrappers below.
 *
 * The repository keeps market persistence: markets, their positions and
 * creators, and the Idempotency-Key records of the writes it runs. What
 * it writes of other modules rides in a market's own transaction: the
 * outbox, a market write queuing its index job (jobs/queue.h), so that
 * the job exists exactly when the write does; and a delete's tombstone
 * in the search vectors (search/vectors.h), so that the market leaves
 * every index with it.
 *
 * Results live in the arena passed in; a repository is worker-lifetime.
 */
#ifndef MK_MARKET_REPO_H
#define MK_MARKET_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "auth/roles.h"
#include "core/err.h"
#include "markets/model.h"
#include "markets/validate.h"

struct mk_arena;
struct mk_cache_incr;
struct mk_db;
struct mk_market_repo;
struct mk_replicas;

/*
 * An Idempotency-Key in use: the caller's key, the hash of the request
 * (method, path, body), and — filled by a write that ran — the response it
 * stored in its own transaction, which is also what the client is sent.
 */
struct mk_idempotency {
	int64_t user_id;
	const char *key;
	unsigned char hash[32];
	int status; /* out: 201 */
	/* out: the application's path, without a base (http/links.h) */
	const char *location;
	const char *data_json; /* out: the "data" member of the response */
};

/* What a reservation found. */
enum mk_idem_state {
	MK_IDEM_RESERVED, /* the key is ours: run the effect */
	MK_IDEM_REPLAY,   /* done before: *replay holds the stored response */
};

struct mk_market_repo_ops {
	/*
	 * Fills *out with market id's whole representation. MK_ENOTFOUND
	 * when there is no such market. ride (may be NULL) is the request's
	 * rate-limit count in flight on memcached: a repository that looks
	 * the document up there collects it in the same round trip; one
	 * that does not leaves it to its owner.
	 */
	enum mk_err (*get_document)(struct mk_market_repo *repo,
	    struct mk_arena *arena, int64_t id, struct mk_cache_incr *ride,
	    struct mk_market_doc *out);
	/*
	 * The documents of the markets among ids (n at most 100, no
	 * repeats) in out[0..*found), in no particular order; unknown ids
	 * are left out. One query (or one memcached round trip and a query
	 * for the misses) whatever n is.
	 */
	enum mk_err (*get_documents)(struct mk_market_repo *repo,
	    struct mk_arena *arena, const int64_t *ids, size_t n,
	    struct mk_market_doc *out, size_t *found);
	/*
	 * Fills *out with market id's fields (a mask of MK_MARKET_FIELD_BIT;
	 * id is always filled). MK_ENOTFOUND when there is no such market.
	 */
	enum mk_err (*get)(struct mk_market_repo *repo, struct mk_arena *arena,
	    int64_t id, unsigned fields, struct mk_market *out);
	/*
	 * Fills out[] (room for n) with the users among ids (n at most 100,
	 * repeats allowed) in one query; *found says how many exist.
	 */
	enum mk_err (*users)(struct mk_market_repo *repo,
	    struct mk_arena *arena, const int64_t *ids, size_t n,
	    struct mk_user *out, size_t *found);
	/*
	 * Fills *page with at most q->limit markets matching q, in q->sort
	 * order with id as the tie-break, after the keyset position when
	 * q->after_key is set (else after q->offset rows); counts every match
	 * when q->count. One query per page, two with the count.
	 */
	enum mk_err (*list)(struct mk_market_repo *repo, struct mk_arena *arena,
	    const struct mk_market_query *q, struct mk_market_page *page);
	/*
	 * In one transaction: creates or refreshes the caller's user row from
	 * the token (who), inserts the market with who as creator and, when
	 * in->has_position, its initial position (the volume starts at its
	 * amount). Sets *id. MK_ECONFLICT when the token's email belongs to
	 * another user; MK_EUNAVAIL after the retries. With idem (may be NULL),
	 * the response is rendered and stored under its key in the same
	 * transaction.
	 */
	enum mk_err (*create)(struct mk_market_repo *repo,
	    struct mk_arena *arena, const struct mk_identity *who,
	    const struct mk_market_input *in, struct mk_idempotency *idem,
	    int64_t *id);
	/*
	 * Buys a position in one transaction: locks the market row, refuses
	 * (MK_ECONFLICT) a market that is not active, inserts the position,
	 * adds its amount to the market's volume, and creates or refreshes
	 * the buyer's user row. MK_ENOTFOUND for an unknown market. Sets *id.
	 */
	enum mk_err (*buy)(struct mk_market_repo *repo, struct mk_arena *arena,
	    const struct mk_identity *who, int64_t market_id, const char *side,
	    const char *amount, struct mk_idempotency *idem, int64_t *id);
	/* One position of a market; MK_ENOTFOUND when there is none. */
	enum mk_err (*position)(struct mk_market_repo *repo,
	    struct mk_arena *arena, int64_t market_id, int64_t id,
	    struct mk_position *out);
	/*
	 * A page of a market's positions, newest first (created_at, id), after
	 * the keyset position (after_key, after_id) when after_key is set,
	 * else after offset rows. MK_ENOTFOUND for an unknown market.
	 */
	enum mk_err (*positions)(struct mk_market_repo *repo,
	    struct mk_arena *arena, int64_t market_id, unsigned limit,
	    uint64_t offset, const char *after_key, int64_t after_id,
	    struct mk_position_page *page);
	/*
	 * Writes in->present fields of market id in one transaction, with the
	 * row locked: MK_ENOTFOUND for an unknown market; MK_EFORBIDDEN unless
	 * who created it or may_edit_any; MK_EPRECONDITION when if_match (an
	 * If-Match value, or NULL) does not match the row's version — checked
	 * on the locked row, so no write can slip in between. Bumps the
	 * version; refreshes who's user row.
	 */
	enum mk_err (*update)(struct mk_market_repo *repo,
	    struct mk_arena *arena, const struct mk_identity *who,
	    bool may_edit_any, int64_t id, const struct mk_market_input *in,
	    const char *if_match);
	/*
	 * Deletes market id and its positions (MK_ENOTFOUND when absent);
	 * its search vector becomes a tombstone in the same transaction.
	 */
	enum mk_err (*remove)(struct mk_market_repo *repo,
	    struct mk_arena *arena, const struct mk_identity *who, int64_t id);
	/*
	 * Reserves idem's key for this request (statements of its own).
	 * MK_OK with *state RESERVED, or REPLAY with idem's out fields filled
	 * from the stored response; MK_EIDEMPOTENCY when the key was used
	 * with another request; MK_ECONFLICT while the first request runs. A
	 * reservation whose request died (its worker or connection gone) is
	 * taken over at once; one older than a minute in any case. RESERVED
	 * binds the effect (create, buy) with idem, or idem_release, to follow
	 * on the same repository: they end the reservation's ownership.
	 */
	enum mk_err (*idem_reserve)(struct mk_market_repo *repo,
	    struct mk_arena *arena, struct mk_idempotency *idem,
	    enum mk_idem_state *state);
	/*
	 * Deletes Idempotency-Key records older than 24 hours, at most limit
	 * of them; *purged says how many went.
	 */
	enum mk_err (*idem_purge)(
	    struct mk_market_repo *repo, unsigned limit, uint64_t *purged);
	/*
	 * Housekeeping between requests, about once a second (the cache
	 * decorator sends the invalidations it owes). May be NULL.
	 */
	void (*tick)(struct mk_market_repo *repo);
	/* Drops a reservation whose effect failed, so the client may retry. */
	void (*idem_release)(
	    struct mk_market_repo *repo, const struct mk_idempotency *idem);
	void (*destroy)(struct mk_market_repo *repo);
};

struct mk_market_repo {
	const struct mk_market_repo_ops *ops;
};

/* Most ids one users() call takes: a page of markets. */
#define MK_MARKET_REPO_MAX_IDS 100

static inline enum mk_err
mk_market_repo_get_document(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t id, struct mk_cache_incr *ride, struct mk_market_doc *out)
{
	return repo->ops->get_document(repo, arena, id, ride, out);
}

static inline enum mk_err
mk_market_repo_get_documents(struct mk_market_repo *repo,
    struct mk_arena *arena, const int64_t *ids, size_t n,
    struct mk_market_doc *out, size_t *found)
{
	return repo->ops->get_documents(repo, arena, ids, n, out, found);
}

static inline enum mk_err
mk_market_repo_get(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t id, unsigned fields, struct mk_market *out)
{
	return repo->ops->get(repo, arena, id, fields, out);
}

static inline enum mk_err
mk_market_repo_users(struct mk_market_repo *repo, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_user *out, size_t *found)
{
	return repo->ops->users(repo, arena, ids, n, out, found);
}

static inline enum mk_err
mk_market_repo_list(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_market_query *q, struct mk_market_page *page)
{
	return repo->ops->list(repo, arena, q, page);
}

static inline enum mk_err
mk_market_repo_create(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, int64_t *id)
{
	return repo->ops->create(repo, arena, who, in, idem, id);
}

static inline enum mk_err
mk_market_repo_buy(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, int64_t *id)
{
	return repo->ops->buy(
	    repo, arena, who, market_id, side, amount, idem, id);
}

static inline enum mk_err
mk_market_repo_position(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	return repo->ops->position(repo, arena, market_id, id, out);
}

static inline enum mk_err
mk_market_repo_positions(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	return repo->ops->positions(
	    repo, arena, market_id, limit, offset, after_key, after_id, page);
}

static inline enum mk_err
mk_market_repo_update(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, bool may_edit_any, int64_t id,
    const struct mk_market_input *in, const char *if_match)
{
	return repo->ops->update(
	    repo, arena, who, may_edit_any, id, in, if_match);
}

static inline enum mk_err
mk_market_repo_remove(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	return repo->ops->remove(repo, arena, who, id);
}

static inline enum mk_err
mk_market_repo_idem_reserve(struct mk_market_repo *repo, struct mk_arena *arena,
    struct mk_idempotency *idem, enum mk_idem_state *state)
{
	return repo->ops->idem_reserve(repo, arena, idem, state);
}

static inline void
mk_market_repo_idem_release(
    struct mk_market_repo *repo, const struct mk_idempotency *idem)
{
	repo->ops->idem_release(repo, idem);
}

static inline enum mk_err
mk_market_repo_idem_purge(
    struct mk_market_repo *repo, unsigned limit, uint64_t *purged)
{
	return repo->ops->idem_purge(repo, limit, purged);
}

/* Housekeeping between requests (see the tick op); nothing when it has none. */
static inline void
mk_market_repo_tick(struct mk_market_repo *repo)
{
	if (repo->ops->tick != NULL)
		repo->ops->tick(repo);
}

static inline void
mk_market_repo_free(struct mk_market_repo *repo)
{
	if (repo != NULL)
		repo->ops->destroy(repo);
}

/*
 * The MariaDB repository over db (not owned); the index jobs its writes
 * queue may run job_max_attempts times. NULL when out of memory.
 */
struct mk_market_repo *mk_market_repo_mysql_new(
    struct mk_db *db, unsigned job_max_attempts);

/*
 * Sends the MariaDB repository repo's lag-tolerant reads (lists, users,
 * sparse reads of a market, positions) to replicas (store/replicas.h),
 * and its whole documents too when documents_too. Without a cache above
 * it they may: every read is then lag-tolerant. Under the cache
 * decorator they may not: a document read from a replica that lags a
 * write would be stored, and served, for cache_ttl after the write's
 * invalidation; documents then come from the primary, or while it is
 * down from a replica, marked stale (never cached). Writes stay on the
 * repository's db.
 */
void mk_market_repo_mysql_route_reads(struct mk_market_repo *repo,
    struct mk_replicas *replicas, bool documents_too);

struct mk_cache;

/* How the cache-aside decorator keeps documents. */
struct mk_market_cache_options {
	uint32_t ttl_s;       /* a document's lifetime in memcached */
	uint32_t lease_ttl_s; /* how long a filler's lease may block others */
	int lease_wait_ms;    /* how long a reader waits for another's fill */
};

/*
 * The memcached cache-aside decorator over inner, which it owns (destroys
 * it with itself, also when this fails: NULL when out of memory). cache
 * is not owned and must outlive the repository. See repo_cached.c.
 */
struct mk_market_repo *mk_market_repo_cached_new(struct mk_market_repo *inner,
    struct mk_cache *cache, const struct mk_market_cache_options *options);

#endif
