/*
 * The MariaDB repository's idempotency (markets layer): reserving an
 * Idempotency-Key (idem_reserve), dropping a failed request's reservation
 * (idem_release), purging expired keys (idem_purge), and, inside a
 * write's transaction, storing the response a replay sends (the one guard
 * against a second effect). It owns the rows of idempotency_keys and the
 * session locks named after them; it speaks SQL through store/db and
 * shares the repository's private parts through repo_mysql_internal.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "markets/repo_mysql_internal.h"
#include "store/db.h"

/*
 * Whether the request that reserved a key still lives, told by MariaDB
 * itself: the reserving request holds a named user lock (GET_LOCK) on its
 * own session from the reservation until its effect commits or fails.
 * Such a lock belongs to the connection: when the worker dies (SIGKILL,
 * a crash) the server closes its session and frees the lock at once, and
 * a retry that finds the reservation still "running" but its lock free
 * takes it over — within a round trip, not after the minute a reservation
 * of a dead request used to block its key for. (The alternative, the
 * master telling the database which worker died, needs a connection and
 * the workers' session ids in the master; the session lock needs neither.)
 *
 * The lock is a hint, the row is the truth. A worker whose connection
 * dropped and was made again (MariaDB restarted) lost its lock but may
 * still run its effect, and a retry may then take the key over: two
 * runners. idem_store() lets only one of them commit — the effect and the
 * flip of the row from 0 to done share one transaction — and the other
 * rolls back. A live holder that has run past a minute (hung) is still
 * taken over on the row's age, as before; so is every reservation when
 * GET_LOCK cannot answer (NULL, or an error: Galera refuses user locks).
 * Which session a reservation is (owner_conn) decides who may drop it. One
 * caveat: a session killed while it waits for an InnoDB row lock is noticed by
 * the server only when that wait ends, so its lock lives until then (a lock
 * wait timeout at most).
 *
 * The name is per database, user and key, hashed: user locks are global to
 * the server and their names are limited to 64 characters (the key alone
 * may have 64). GET_LOCK needs no privilege. A session may hold several.
 */
#define IDEM_LOCK_NAME                                                         \
	"CONCAT('mk_idem_', SHA1(CONCAT(DATABASE(), '/', ?, '/', ?)))"

/* The first two parameters of a reservation's statements: user, key. */
#define IDEM_PARAMS(idem)                                                      \
	{ .type = MK_DB_INT, .integer = (idem)->user_id },                     \
	{                                                                      \
		.type = MK_DB_TEXT, .text = (idem)->key,                       \
		.len = strlen((idem)->key)                                     \
	}

/* Makes a running reservation this session's (user, key as params). */
#define IDEM_TAKE_OVER                                                         \
	"UPDATE idempotency_keys SET created_at = NOW(6), "                    \
	"owner_conn = CONNECTION_ID() "                                        \
	"WHERE user_id = ? AND idem_key = ? AND status = 0"

/* What GET_LOCK(name, 0) answered. */
enum idem_lock {
	IDEM_LOCK_TAKEN,   /* ours now: no live request has the key */
	IDEM_LOCK_BUSY,    /* another live session holds it */
	IDEM_LOCK_UNKNOWN, /* the server could not say (NULL) */
};

static enum mk_err
idem_lock(struct mk_db *db, struct mk_arena *arena,
    const struct mk_idempotency *idem, enum idem_lock *out)
{
	struct mk_db_value params[] = { IDEM_PARAMS(idem) };
	struct mk_db_rows rows;
	const char *answer;
	enum mk_err rc;

	rc = mk_db_select(db, arena, "SELECT GET_LOCK(" IDEM_LOCK_NAME ", 0)",
	    params, 2, &rows);
	if (rc == MK_EINTERNAL) {
		/*
		 * A server that refuses user locks (Galera under wsrep) still
		 * serves the key: the age rule decides, as for a NULL answer.
		 */
		*out = IDEM_LOCK_UNKNOWN;
		return MK_OK;
	}
	if (rc != MK_OK)
		return rc;
	answer = rows.nrows == 1 ? mk_db_cell_text(&rows, 0, 0) : NULL;
	if (answer == NULL)
		*out = IDEM_LOCK_UNKNOWN;
	else
		*out =
		    strcmp(answer, "1") == 0 ? IDEM_LOCK_TAKEN : IDEM_LOCK_BUSY;
	return MK_OK;
}

/* Frees this session's lock on idem's key, if it has it. Best effort. */
static void
idem_unlock(
    struct mk_db *db, struct mk_arena *arena, const struct mk_idempotency *idem)
{
	struct mk_db_value params[] = { IDEM_PARAMS(idem) };
	struct mk_db_rows rows;

	(void)mk_db_select(db, arena, "SELECT RELEASE_LOCK(" IDEM_LOCK_NAME ")",
	    params, 2, &rows);
}

/*
 * Records the response of an idempotent write, inside its transaction,
 * and is the one guard against a second effect: it flips the reservation
 * from running (status 0) to done, and a transaction that finds nothing to
 * flip — another runner of the key committed first, or the reservation is
 * gone — rolls back its effect and answers 409 (the client's retry then
 * replays what the other runner stored). Two runners of one key can exist:
 * a takeover (see mk_repo_mysql_idem_reserve) while the first still runs on a
 * reconnected session. The row lock this UPDATE takes orders them; the
 * loser, waiting on it, re-reads the committed status and matches nothing.
 */
static enum mk_err
idem_store(struct mk_db *db, struct mk_idempotency *idem)
{
	struct mk_db_value params[] = {
		{ .type = MK_DB_INT, .integer = idem->status },
		{ .type = MK_DB_TEXT,
		    .text = idem->location,
		    .len = strlen(idem->location) },
		{ .type = MK_DB_TEXT,
		    .text = idem->data_json,
		    .len = strlen(idem->data_json) },
		{ .type = MK_DB_INT, .integer = idem->user_id },
		{ .type = MK_DB_TEXT,
		    .text = idem->key,
		    .len = strlen(idem->key) },
	};
	uint64_t affected = 0;
	enum mk_err rc;

	rc = mk_db_execute(db,
	    "UPDATE idempotency_keys SET status = ?, location = "
	    "?, response = ? "
	    "WHERE user_id = ? AND idem_key = ? AND status = 0",
	    params, 5, &affected, NULL);
	if (rc == MK_OK && affected != 1) {
		mk_log(MK_LOG_WARN,
		    "idempotency: key of user %lld was completed by another "
		    "request: "
		    "this run is rolled back",
		    (long long)idem->user_id);
		return MK_ECONFLICT;
	}
	return rc;
}

/* The response, as committed: a replay sends these very bytes. */
enum mk_err
mk_repo_mysql_idem_created(struct mk_db *db, struct mk_arena *arena,
    struct mk_idempotency *idem, const struct mk_market *market,
    const struct mk_position *position)
{
	struct mk_buf json, location;

	mk_buf_init(&json, arena);
	mk_buf_init(&location, arena);
	if (position != NULL) {
		mk_position_json(&json, position);
		mk_buf_printf(&location, "/api/markets/%lld/positions/%lld",
		    (long long)position->market_id, (long long)position->id);
	} else {
		mk_market_json(&json, market);
		mk_buf_printf(
		    &location, "/api/markets/%lld", (long long)market->id);
	}
	if (json.oom || location.oom)
		return MK_ENOMEM;
	idem->status = 201;
	idem->location = location.data;
	idem->data_json = json.data;
	return idem_store(db, idem);
}

enum mk_err
mk_repo_mysql_write(struct repo_mysql *repo, struct mk_arena *arena,
    struct mk_idempotency *idem, mk_db_txn_fn fn, void *ctx)
{
	enum mk_err rc = mk_db_transaction(repo->db, fn, ctx);

	if (rc == MK_OK && idem != NULL)
		idem_unlock(repo->db, arena, idem); /* done */
	return rc;
}

/*
 * The reservation once the key's lock was tried (lock: what GET_LOCK said).
 * Drops the key when expired (24 h), inserts it, or reads what is there:
 * a stored response is replayed; a reservation still running is taken
 * over when no live request holds its lock, or when it is older than a
 * minute (the fallback: a hung holder, or no answer from GET_LOCK).
 */
static enum mk_err
idem_claim(struct mk_db *db, struct mk_arena *arena,
    struct mk_idempotency *idem, enum idem_lock lock, enum mk_idem_state *state)
{
	struct mk_db_value params[] = {
		IDEM_PARAMS(idem),
		{ .type = MK_DB_TEXT,
		    .text = (const char *)idem->hash,
		    .len = sizeof(idem->hash) },
	};
	struct mk_db_rows rows;
	uint64_t affected = 0;
	enum mk_err rc;

	if (lock != IDEM_LOCK_BUSY) {
		/* Keys live 24 hours: an expired one is as good as new. */
		rc = mk_db_execute(db,
		    "DELETE FROM idempotency_keys WHERE user_id "
		    "= ? AND idem_key = ? "
		    "AND created_at < NOW(6) - INTERVAL 24 HOUR",
		    params, 2, NULL, NULL);
		if (rc != MK_OK)
			return rc;
		rc = mk_db_execute(db,
		    "INSERT IGNORE INTO idempotency_keys (user_id, idem_key, "
		    "request_hash, owner_conn) "
		    "VALUES (?, ?, ?, CONNECTION_ID())",
		    params, 3, &affected, NULL);
		if (rc != MK_OK)
			return rc;
		if (affected == 1) {
			*state = MK_IDEM_RESERVED;
			return MK_OK;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		bool running, stale;

		rc = mk_db_select(db, arena,
		    "SELECT request_hash, status, location, response, "
		    "created_at < NOW(6) - INTERVAL 60 SECOND FROM "
		    "idempotency_keys WHERE user_id = ? AND idem_key = ? "
		    "AND created_at >= NOW(6) - INTERVAL 24 HOUR",
		    params, 2, &rows);
		if (rc != MK_OK)
			return rc;
		/* Not there (yet, or any more): let the client retry. */
		if (rows.nrows == 0)
			return MK_ECONFLICT;
		if (mk_db_cell(&rows, 0, 0)->len != sizeof(idem->hash) ||
		    memcmp(mk_db_cell(&rows, 0, 0)->text, idem->hash,
			sizeof(idem->hash)) != 0)
			return MK_EIDEMPOTENCY;
		running = to_int(mk_db_cell(&rows, 0, 1)) == 0;
		if (!running) {
			idem->status = (int)to_int(mk_db_cell(&rows, 0, 1));
			idem->location = to_text(mk_db_cell(&rows, 0, 2));
			idem->data_json = to_text(mk_db_cell(&rows, 0, 3));
			*state = MK_IDEM_REPLAY;
			return idem->data_json != NULL ? MK_OK : MK_EINTERNAL;
		}
		stale = to_int(mk_db_cell(&rows, 0, 4)) == 1;
		if (pass > 0 || (lock != IDEM_LOCK_TAKEN && !stale))
			return MK_ECONFLICT; /* its request still runs */
		/*
		 * Its request died (or hung past a minute): take it over. The
		 * UPDATE waits for a runner that is storing its response right
		 * now and then matches nothing: read again, and replay that.
		 */
		rc = mk_db_execute(db,
		    lock == IDEM_LOCK_TAKEN ? IDEM_TAKE_OVER
					    : IDEM_TAKE_OVER
			" AND created_at < NOW(6) - INTERVAL 60 SECOND",
		    params, 2, &affected, NULL);
		if (rc != MK_OK)
			return rc;
		if (affected == 1) {
			mk_log(MK_LOG_INFO,
			    "idempotency: a reservation of user %lld left "
			    "by a request that %s "
			    "is taken over",
			    (long long)idem->user_id,
			    lock == IDEM_LOCK_TAKEN ? "died"
						    : "ran past a minute");
			*state = MK_IDEM_RESERVED;
			return MK_OK;
		}
	}
	return MK_ECONFLICT;
}

/*
 * Reserves a key (see above): on RESERVED this session holds the key's
 * lock until the effect commits (mk_repo_mysql_write) or fails
 * (mk_repo_mysql_idem_release); on any other outcome it is let go here.
 */
enum mk_err
mk_repo_mysql_idem_reserve(struct mk_market_repo *base, struct mk_arena *arena,
    struct mk_idempotency *idem, enum mk_idem_state *state)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	enum idem_lock lock;
	enum mk_err rc;

	if ((rc = idem_lock(repo->db, arena, idem, &lock)) != MK_OK)
		return rc;
	rc = idem_claim(repo->db, arena, idem, lock, state);
	if (lock == IDEM_LOCK_TAKEN &&
	    (rc != MK_OK || *state != MK_IDEM_RESERVED))
		idem_unlock(repo->db, arena, idem);
	return rc;
}

enum mk_err
mk_repo_mysql_idem_purge(
    struct mk_market_repo *base, unsigned limit, uint64_t *purged)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value param = { .type = MK_DB_INT, .integer = limit };

	/* Bounded: a purge never holds locks for long. */
	return mk_db_execute(repo->db,
	    "DELETE FROM idempotency_keys "
	    "WHERE created_at < NOW(6) - INTERVAL 24 HOUR LIMIT ?",
	    &param, 1, purged, NULL);
}

void
mk_repo_mysql_idem_release(
    struct mk_market_repo *base, const struct mk_idempotency *idem)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value params[] = { IDEM_PARAMS(idem) };
	/* Its own small arena: the interface gives this call none. */
	struct mk_arena *arena = mk_arena_new(256);

	/*
	 * The reservation goes only while it is this session's own
	 * (owner_conn, sql/008): after a reconnect, or once a request took it
	 * over from this one (past a minute), it belongs to another request,
	 * whose effect needs its row. Left behind, ours is taken over at once
	 * (its lock is free). The lock is let go whatever happened: a lock
	 * kept by mistake would answer 409 for the key on every other worker.
	 * Best effort.
	 */
	(void)mk_db_execute(repo->db,
	    "DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? "
	    "AND status = 0 AND owner_conn = CONNECTION_ID()",
	    params, 2, NULL, NULL);
	if (arena != NULL) {
		idem_unlock(repo->db, arena, idem);
		mk_arena_free(arena);
	}
}
