/*
 * The MariaDB market repository's private parts (markets layer): internal
 * to the MariaDB repository; nothing outside src/markets/repo_mysql*.c
 * includes it. The repository is repo_mysql.c (the ops table and the
 * constructor) over three files of ops: repo_mysql_markets.c (markets:
 * read, list, create, update, remove), repo_mysql_positions.c (buying,
 * and reading positions) and repo_mysql_idem.c (Idempotency-Key
 * reservations and the responses they store). They share the struct, the
 * cell readers, the user-row refresh, the market read and the write
 * runner declared here.
 */
#ifndef MK_REPO_MYSQL_INTERNAL_H
#define MK_REPO_MYSQL_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "markets/repo.h"
#include "store/db.h"

struct repo_mysql {
	struct mk_market_repo base; /* first: the interface */
	struct mk_db *db;
	/*
	 * Lag-tolerant reads (lists, users, sparse reads, positions), and
	 * whole documents, which a cache above may store: db unless
	 * mk_market_repo_mysql_route_reads() says otherwise.
	 */
	struct mk_db *reads, *documents;
	/* documents' replicas, to tell a stale read; NULL: none, or no cache */
	struct mk_replicas *replicas;
	unsigned job_max_attempts; /* of the index jobs writes enqueue */
};

static inline int64_t
to_int(const struct mk_db_value *cell)
{
	return cell->type == MK_DB_TEXT ? strtoll(cell->text, NULL, 10) : 0;
}

static inline const char *
to_text(const struct mk_db_value *cell)
{
	return cell->type == MK_DB_TEXT ? cell->text : NULL;
}

static inline struct mk_db_value
text_value(const char *s)
{
	if (s == NULL)
		return (struct mk_db_value){ .type = MK_DB_NULL };
	return (struct mk_db_value){
		.type = MK_DB_TEXT, .text = s, .len = strlen(s)
	};
}

/* repo_mysql_markets.c: the ops of markets, and what the others use. */

enum mk_err mk_repo_mysql_get_document(struct mk_market_repo *base,
    struct mk_arena *arena, int64_t id, struct mk_cache_incr *ride,
    struct mk_market_doc *out);
enum mk_err mk_repo_mysql_get_documents(struct mk_market_repo *base,
    struct mk_arena *arena, const int64_t *ids, size_t n,
    struct mk_market_doc *out, size_t *found);
enum mk_err mk_repo_mysql_get(struct mk_market_repo *base,
    struct mk_arena *arena, int64_t id, unsigned fields, struct mk_market *out);
enum mk_err mk_repo_mysql_list(struct mk_market_repo *base,
    struct mk_arena *arena, const struct mk_market_query *q,
    struct mk_market_page *page);
enum mk_err mk_repo_mysql_users(struct mk_market_repo *base,
    struct mk_arena *arena, const int64_t *ids, size_t n, struct mk_user *out,
    size_t *found);
enum mk_err mk_repo_mysql_create(struct mk_market_repo *base,
    struct mk_arena *arena, const struct mk_identity *who,
    const struct mk_market_input *in, struct mk_idempotency *idem, int64_t *id);
enum mk_err mk_repo_mysql_update(struct mk_market_repo *base,
    struct mk_arena *arena, const struct mk_identity *who, bool may_edit_any,
    int64_t id, const struct mk_market_input *in, const char *if_match);
enum mk_err mk_repo_mysql_remove(struct mk_market_repo *base,
    struct mk_arena *arena, const struct mk_identity *who, int64_t id);

/*
 * Reads market id's fields (and its version) on db into *out, in arena;
 * MK_ENOTFOUND when there is none. Inside a transaction it sees what the
 * transaction will commit.
 */
enum mk_err mk_repo_mysql_read_market(struct mk_db *db, struct mk_arena *arena,
    int64_t id, unsigned fields, struct mk_market *out);

/*
 * Writes the caller's row from the token, inside a write's transaction: a
 * token without a name or email keeps what the row has.
 */
enum mk_err mk_repo_mysql_upsert_user(
    struct mk_db *db, const struct mk_identity *who);

/* repo_mysql_positions.c: the ops of positions. */

enum mk_err mk_repo_mysql_buy(struct mk_market_repo *base,
    struct mk_arena *arena, const struct mk_identity *who, int64_t market_id,
    const char *side, const char *amount, struct mk_idempotency *idem,
    int64_t *id);
enum mk_err mk_repo_mysql_position(struct mk_market_repo *base,
    struct mk_arena *arena, int64_t market_id, int64_t id,
    struct mk_position *out);
enum mk_err mk_repo_mysql_positions(struct mk_market_repo *base,
    struct mk_arena *arena, int64_t market_id, unsigned limit, uint64_t offset,
    const char *after_key, int64_t after_id, struct mk_position_page *page);

/* repo_mysql_idem.c: the ops of idempotency, and what writes use of it. */

enum mk_err mk_repo_mysql_idem_reserve(struct mk_market_repo *base,
    struct mk_arena *arena, struct mk_idempotency *idem,
    enum mk_idem_state *state);
void mk_repo_mysql_idem_release(
    struct mk_market_repo *base, const struct mk_idempotency *idem);
enum mk_err mk_repo_mysql_idem_purge(
    struct mk_market_repo *base, unsigned limit, uint64_t *purged);

/*
 * Runs a write's transaction fn(ctx) on repo's connection. An idempotent
 * one (idem not NULL) lets its key's lock go once committed; a failure
 * keeps it for mk_repo_mysql_idem_release.
 */
enum mk_err mk_repo_mysql_write(struct repo_mysql *repo, struct mk_arena *arena,
    struct mk_idempotency *idem, mk_db_txn_fn fn, void *ctx);

/*
 * Records, inside the write's transaction, the 201 response of the
 * position (or, when position is NULL, the market) just created, rendered
 * into arena, as idem's stored answer: what the client is sent and what a
 * replay sends. MK_ECONFLICT when another runner of the key committed
 * first (the write must roll back).
 */
enum mk_err mk_repo_mysql_idem_created(struct mk_db *db, struct mk_arena *arena,
    struct mk_idempotency *idem, const struct mk_market *market,
    const struct mk_position *position);

#endif
