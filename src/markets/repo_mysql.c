/*
 * The market repository over MariaDB (markets layer); see repo.h. SQL is
 * assembled only from the constant column expressions below, chosen by a
 * field mask — never from input; every value is a bound parameter, and
 * each shape of statement is prepared once per connection (store/db.c
 * keeps them). Times come out of the database already in RFC 3339 UTC
 * (the session runs in UTC), volumes as DECIMAL text: never through a
 * float.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "jobs/queue.h"
#include "markets/repo.h"
#include "search/vectors.h"
#include "store/db.h"

struct repo_mysql {
	struct mk_market_repo base; /* first: the interface */
	struct mk_db *db;
	unsigned job_max_attempts;  /* of the index jobs writes enqueue */
};


static const char *const columns[MK_MARKET_FIELD__MAX] = {
	[MK_MARKET_ID] = "id",
	[MK_MARKET_NAME] = "name",
	[MK_MARKET_DESCRIPTION] = "description",
	[MK_MARKET_STATUS] = "status",
	[MK_MARKET_VOLUME] = "volume",
	[MK_MARKET_CREATOR_ID] = "creator_id",
	[MK_MARKET_END_DATE] = MK_DB_RFC3339("end_date"),
	[MK_MARKET_CREATED_AT] = MK_DB_RFC3339("created_at"),
	[MK_MARKET_UPDATED_AT] = MK_DB_RFC3339("updated_at"),
};

static int64_t
to_int(const struct mk_db_value *cell)
{
	return cell->type == MK_DB_TEXT ? strtoll(cell->text, NULL, 10) : 0;
}

static const char *
to_text(const struct mk_db_value *cell)
{
	return cell->type == MK_DB_TEXT ? cell->text : NULL;
}

/* Appends the column expressions of fields, id first. */
static void
select_list(struct mk_buf *sql, unsigned fields)
{
	mk_buf_puts(sql, "SELECT id");
	for (int f = MK_MARKET_ID + 1; f < MK_MARKET_FIELD__MAX; f++) {
		if (!(fields & MK_MARKET_FIELD_BIT(f)))
			continue;
		mk_buf_append(sql, ", ", 2);
		mk_buf_puts(sql, columns[f]);
	}
}

/* Reads one row laid out by select_list() into *out; returns the next column. */
static size_t
fill_market(const struct mk_db_rows *rows, size_t r, unsigned fields,
    struct mk_market *out)
{
	size_t col = 0;

	memset(out, 0, sizeof(*out));
	out->fields = fields;
	for (int f = 0; f < MK_MARKET_FIELD__MAX; f++) {
		const struct mk_db_value *cell;

		if (!(fields & MK_MARKET_FIELD_BIT(f)))
			continue;
		cell = mk_db_cell(rows, r, col++);
		switch ((enum mk_market_field)f) {
		case MK_MARKET_ID: out->id = to_int(cell); break;
		case MK_MARKET_NAME: out->name = to_text(cell); break;
		case MK_MARKET_DESCRIPTION: out->description = to_text(cell); break;
		case MK_MARKET_STATUS: out->status = to_text(cell); break;
		case MK_MARKET_VOLUME: out->volume = to_text(cell); break;
		case MK_MARKET_CREATOR_ID: out->creator_id = to_int(cell); break;
		case MK_MARKET_END_DATE: out->end_date = to_text(cell); break;
		case MK_MARKET_CREATED_AT: out->created_at = to_text(cell); break;
		case MK_MARKET_UPDATED_AT: out->updated_at = to_text(cell); break;
		case MK_MARKET_FIELD__MAX: break;
		}
	}
	return col;
}

static enum mk_err repo_get_on(struct mk_db *db, struct mk_arena *arena,
    int64_t id, unsigned fields, struct mk_market *out);

static enum mk_err
repo_get(struct mk_market_repo *base, struct mk_arena *arena, int64_t id,
    unsigned fields, struct mk_market *out)
{
	return repo_get_on(((struct repo_mysql *)base)->db, arena, id, fields, out);
}

static enum mk_err
repo_get_document(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t id, struct mk_market_doc *out)
{
	struct mk_market market;
	struct mk_buf json;
	enum mk_err rc;

	rc = repo_get_on(((struct repo_mysql *)base)->db, arena, id, MK_MARKET_ALL_FIELDS, &market);
	if (rc != MK_OK)
		return rc;
	mk_buf_init(&json, arena);
	mk_market_json(&json, &market);
	if (json.oom)
		return MK_ENOMEM;
	out->id = id;
	out->version = market.version;
	out->json = json.data;
	out->json_len = json.len;
	return MK_OK;
}

static enum mk_err
repo_get_documents(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_market_doc *out, size_t *found)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value params[MK_MARKET_REPO_MAX_IDS];
	struct mk_db_rows rows;
	struct mk_buf sql, json;
	enum mk_err rc;

	*found = 0;
	if (n == 0)
		return MK_OK;
	if (n > MK_MARKET_REPO_MAX_IDS)
		return MK_EINVAL;
	mk_buf_init(&sql, arena);
	select_list(&sql, MK_MARKET_ALL_FIELDS);
	mk_buf_puts(&sql, ", version FROM markets WHERE id IN (");
	for (size_t i = 0; i < n; i++) {
		mk_buf_puts(&sql, i == 0 ? "?" : ", ?");
		params[i] = (struct mk_db_value){ .type = MK_DB_INT, .integer = ids[i] };
	}
	mk_buf_putc(&sql, ')');
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(repo->db, arena, sql.data, params, n, &rows);
	if (rc != MK_OK)
		return rc;
	for (size_t r = 0; r < rows.nrows; r++) {
		struct mk_market market;
		size_t version_col = fill_market(&rows, r, MK_MARKET_ALL_FIELDS, &market);

		mk_buf_init(&json, arena);
		mk_market_json(&json, &market);
		if (json.oom)
			return MK_ENOMEM;
		out[*found].id = market.id;
		out[*found].version = (uint64_t)to_int(mk_db_cell(&rows, r, version_col));
		out[*found].json = json.data;
		out[*found].json_len = json.len;
		(*found)++;
	}
	return MK_OK;
}

/*
 * Queues the (re)indexing of market id for search, inside the write's
 * transaction: the job exists exactly when the write does.
 */
static enum mk_err
enqueue_index(struct mk_db *db, int64_t id, unsigned max_attempts, int64_t *job_id)
{
	char payload[MK_MARKET_INDEX_JOB_KEY_MAX];
	char dedup_key[MK_MARKET_INDEX_JOB_KEY_MAX];
	int64_t ignored;

	mk_market_index_job(id, payload, dedup_key);
	return mk_jobs_enqueue(db, MK_MARKET_INDEX_JOB, payload, dedup_key,
	    max_attempts, job_id != NULL ? job_id : &ignored);
}

/* The whole market on db (inside a transaction: what it will commit). */
static enum mk_err
fetch_market(struct mk_db *db, struct mk_arena *arena, int64_t id, struct mk_market *out)
{
	return repo_get_on(db, arena, id, MK_MARKET_ALL_FIELDS, out);
}

static enum mk_err
repo_get_on(struct mk_db *db, struct mk_arena *arena, int64_t id,
    unsigned fields, struct mk_market *out)
{
	struct mk_db_value param = { .type = MK_DB_INT, .integer = id };
	struct mk_db_rows rows;
	struct mk_buf sql;
	enum mk_err rc;

	size_t version_col;

	fields |= MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	mk_buf_init(&sql, arena);
	select_list(&sql, fields);
	mk_buf_puts(&sql, ", version FROM markets WHERE id = ?");
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(db, arena, sql.data, &param, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	version_col = fill_market(&rows, 0, fields, out);
	out->version = (uint64_t)to_int(mk_db_cell(&rows, 0, version_col));
	return MK_OK;
}

/*
 * The sort orders: the column, how its value is written into a cursor
 * (exact: microseconds, decimal text), how a cursor value is read back,
 * and the direction. Each has an index (…, column, id).
 */
static const struct {
	const char *column;
	const char *index;  /* (column, id): the order of an unfiltered list */
	const char *key;    /* the cursor's text of the column */
	const char *param;  /* a cursor value as a comparable of the column */
	bool desc;
} sorts[MK_SORT__MAX] = {
	[MK_SORT_CREATED_DESC] = { "created_at", "markets_created", "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')", "CAST(? AS DATETIME(6))", true },
	[MK_SORT_CREATED_ASC] = { "created_at", "markets_created", "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')", "CAST(? AS DATETIME(6))", false },
	[MK_SORT_VOLUME_DESC] = { "volume", "markets_volume", "volume", "CAST(? AS DECIMAL(20,2))", true },
	[MK_SORT_VOLUME_ASC] = { "volume", "markets_volume", "volume", "CAST(? AS DECIMAL(20,2))", false },
	[MK_SORT_NAME_DESC] = { "name", "markets_name", "name", "?", true },
	[MK_SORT_NAME_ASC] = { "name", "markets_name", "name", "?", false },
};

/*
 * Appends FROM and the WHERE clause of the filters and binds their values.
 * An unfiltered list names its order's index: MariaDB's cost model would
 * otherwise sort the whole table for a 20-row page (a status filter finds
 * (status, column, id) by itself).
 */
static void
where_filters(struct mk_buf *sql, const struct mk_market_query *q,
    struct mk_db_value *params, size_t *n, bool ordered)
{
	mk_buf_puts(sql, " FROM markets");
	if (ordered && q->status == NULL && q->creator_id == 0)
		mk_buf_printf(sql, " FORCE INDEX FOR ORDER BY (%s)", sorts[q->sort].index);
	mk_buf_puts(sql, " WHERE 1 = 1");
	if (q->status != NULL) {
		mk_buf_puts(sql, " AND status = ?");
		params[(*n)++] = (struct mk_db_value){ .type = MK_DB_TEXT, .text = q->status, .len = strlen(q->status) };
	}
	if (q->creator_id > 0) {
		mk_buf_puts(sql, " AND creator_id = ?");
		params[(*n)++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = q->creator_id };
	}
}

static enum mk_err
repo_list(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_market_query *q, struct mk_market_page *page)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	unsigned fields = q->fields | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	struct mk_db_value params[8];
	struct mk_db_rows rows;
	struct mk_buf sql;
	size_t n = 0, key_col;
	enum mk_err rc;
	const char *dir = sorts[q->sort].desc ? "DESC" : "ASC";

	memset(page, 0, sizeof(*page));
	page->total = -1;
	if (q->count) {
		mk_buf_init(&sql, arena);
		if (q->creator_id == 0) {
			/*
			 * Kept beside the data by triggers (sql/006): 16 rows
			 * per status instead of a scan of every market.
			 */
			mk_buf_puts(&sql, "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM market_counts");
			if (q->status != NULL) {
				mk_buf_puts(&sql, " WHERE status = ?");
				params[n++] = (struct mk_db_value){ .type = MK_DB_TEXT, .text = q->status,
					.len = strlen(q->status) };
			}
		} else {
			/* One creator's markets: a range of markets_creator_created. */
			mk_buf_puts(&sql, "SELECT COUNT(*)");
			where_filters(&sql, q, params, &n, false);
		}
		if (sql.oom)
			return MK_ENOMEM;
		rc = mk_db_select(repo->db, arena, sql.data, params, n, &rows);
		if (rc != MK_OK)
			return rc;
		page->total = rows.nrows == 1 ? to_int(mk_db_cell(&rows, 0, 0)) : 0;
		n = 0;
	}
	mk_buf_init(&sql, arena);
	select_list(&sql, fields);
	mk_buf_append(&sql, ", ", 2);
	mk_buf_puts(&sql, sorts[q->sort].key);
	where_filters(&sql, q, params, &n, true);
	if (q->after_key != NULL) {
		/* Keyset: the leading comparison lets the index range start there. */
		const char *op = sorts[q->sort].desc ? "<" : ">";
		struct mk_db_value key = { .type = MK_DB_TEXT, .text = q->after_key, .len = strlen(q->after_key) };

		mk_buf_printf(&sql, " AND %s %s= %s AND (%s %s %s OR id %s ?)",
		    sorts[q->sort].column, op, sorts[q->sort].param,
		    sorts[q->sort].column, op, sorts[q->sort].param, op);
		params[n++] = key;
		params[n++] = key;
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = q->after_id };
	}
	mk_buf_printf(&sql, " ORDER BY %s %s, id %s LIMIT ?", sorts[q->sort].column, dir, dir);
	/* One row more than asked: whether a next page exists, without a count. */
	params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = (int64_t)q->limit + 1 };
	if (q->offset > 0) {
		mk_buf_puts(&sql, " OFFSET ?");
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = (int64_t)q->offset };
	}
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(repo->db, arena, sql.data, params, n, &rows);
	if (rc != MK_OK)
		return rc;
	page->more = rows.nrows > q->limit;
	page->n = page->more ? q->limit : rows.nrows;
	page->items = mk_arena_calloc(arena, page->n + 1, sizeof(*page->items));
	if (page->items == NULL)
		return MK_ENOMEM;
	for (size_t r = 0; r < page->n; r++) {
		key_col = fill_market(&rows, r, fields, &page->items[r]);
		if (r + 1 == page->n) {
			page->last_key = to_text(mk_db_cell(&rows, r, key_col));
			page->last_id = page->items[r].id;
		}
	}
	return MK_OK;
}

static enum mk_err
repo_users(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_user *out, size_t *found)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value params[MK_MARKET_REPO_MAX_IDS];
	struct mk_db_rows rows;
	struct mk_buf sql;
	size_t unique = 0;
	enum mk_err rc;

	*found = 0;
	if (n == 0)
		return MK_OK;
	if (n > MK_MARKET_REPO_MAX_IDS)
		return MK_EINTERNAL;
	/* One placeholder per distinct id: a page often repeats creators. */
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (size_t k = 0; k < unique && !seen; k++)
			seen = params[k].integer == ids[i];
		if (!seen)
			params[unique++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = ids[i] };
	}
	mk_buf_init(&sql, arena);
	mk_buf_puts(&sql, "SELECT id, name, email FROM users WHERE id IN (?");
	for (size_t i = 1; i < unique; i++)
		mk_buf_append(&sql, ", ?", 3);
	mk_buf_putc(&sql, ')');
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(repo->db, arena, sql.data, params, unique, &rows);
	if (rc != MK_OK)
		return rc;
	for (size_t r = 0; r < rows.nrows && r < n; r++) {
		out[r].id = to_int(mk_db_cell(&rows, r, 0));
		out[r].name = to_text(mk_db_cell(&rows, r, 1));
		out[r].email = to_text(mk_db_cell(&rows, r, 2));
	}
	*found = rows.nrows < n ? rows.nrows : n;
	return MK_OK;
}

struct create_work {
	struct mk_arena *arena;
	const struct mk_identity *who;
	const struct mk_market_input *in;
	struct mk_idempotency *idem;
	unsigned job_max_attempts;
	int64_t id;
};


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
 * Which session a reservation is (owner_conn) decides who may drop it. One caveat: a session killed while it waits for
 * an InnoDB row lock is noticed by the server only when that wait ends, so
 * its lock lives until then (a lock wait timeout at most).
 *
 * The name is per database, user and key, hashed: user locks are global to
 * the server and their names are limited to 64 characters (the key alone
 * may have 64). GET_LOCK needs no privilege. A session may hold several.
 */
#define IDEM_LOCK_NAME "CONCAT('mk_idem_', SHA1(CONCAT(DATABASE(), '/', ?, '/', ?)))"

/* The first two parameters of a reservation's statements: user, key. */
#define IDEM_PARAMS(idem) \
	{ .type = MK_DB_INT, .integer = (idem)->user_id }, \
	{ .type = MK_DB_TEXT, .text = (idem)->key, .len = strlen((idem)->key) }

/* What GET_LOCK(name, 0) answered. */
enum idem_lock {
	IDEM_LOCK_TAKEN,   /* ours now: no live request has the key */
	IDEM_LOCK_BUSY,    /* another live session holds it */
	IDEM_LOCK_UNKNOWN, /* the server could not say (NULL) */
};

static enum mk_err
idem_lock(struct mk_db *db, struct mk_arena *arena, const struct mk_idempotency *idem,
    enum idem_lock *out)
{
	struct mk_db_value params[] = { IDEM_PARAMS(idem) };
	struct mk_db_rows rows;
	const char *answer;
	enum mk_err rc;

	rc = mk_db_select(db, arena, "SELECT GET_LOCK(" IDEM_LOCK_NAME ", 0)", params, 2, &rows);
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
		*out = strcmp(answer, "1") == 0 ? IDEM_LOCK_TAKEN : IDEM_LOCK_BUSY;
	return MK_OK;
}

/* Frees this session's lock on idem's key, if it has it. Best effort. */
static void
idem_unlock(struct mk_db *db, struct mk_arena *arena, const struct mk_idempotency *idem)
{
	struct mk_db_value params[] = { IDEM_PARAMS(idem) };
	struct mk_db_rows rows;

	(void)mk_db_select(db, arena, "SELECT RELEASE_LOCK(" IDEM_LOCK_NAME ")", params, 2, &rows);
}

/*
 * Records the response of an idempotent write, inside its transaction,
 * and is the one guard against a second effect: it flips the reservation
 * from running (status 0) to done, and a transaction that finds nothing to
 * flip — another runner of the key committed first, or the reservation is
 * gone — rolls back its effect and answers 409 (the client's retry then
 * replays what the other runner stored). Two runners of one key can exist:
 * a takeover (see repo_idem_reserve) while the first still runs on a
 * reconnected session. The row lock this UPDATE takes orders them; the
 * loser, waiting on it, re-reads the committed status and matches nothing.
 */
static enum mk_err
idem_store(struct mk_db *db, struct mk_idempotency *idem)
{
	struct mk_db_value params[] = {
		{ .type = MK_DB_INT, .integer = idem->status },
		{ .type = MK_DB_TEXT, .text = idem->location, .len = strlen(idem->location) },
		{ .type = MK_DB_TEXT, .text = idem->data_json, .len = strlen(idem->data_json) },
		{ .type = MK_DB_INT, .integer = idem->user_id },
		{ .type = MK_DB_TEXT, .text = idem->key, .len = strlen(idem->key) },
	};
	uint64_t affected = 0;
	enum mk_err rc;

	rc = mk_db_execute(db, "UPDATE idempotency_keys SET status = ?, location = ?, response = ? "
	    "WHERE user_id = ? AND idem_key = ? AND status = 0", params, 5, &affected, NULL);
	if (rc == MK_OK && affected != 1) {
		mk_log(MK_LOG_WARN, "idempotency: key of user %lld was completed by another request: "
		    "this run is rolled back", (long long)idem->user_id);
		return MK_ECONFLICT;
	}
	return rc;
}

/* Renders a JSON value into the arena; NULL when out of memory. */
static const char *
render_market(struct mk_arena *arena, const struct mk_market *market)
{
	struct mk_buf out;

	mk_buf_init(&out, arena);
	mk_market_json(&out, market);
	return out.oom ? NULL : out.data;
}

static const char *
render_position(struct mk_arena *arena, const struct mk_position *position)
{
	struct mk_buf out;

	mk_buf_init(&out, arena);
	mk_position_json(&out, position);
	return out.oom ? NULL : out.data;
}

static struct mk_db_value
text_value(const char *s)
{
	if (s == NULL)
		return (struct mk_db_value){ .type = MK_DB_NULL };
	return (struct mk_db_value){ .type = MK_DB_TEXT, .text = s, .len = strlen(s) };
}

/*
 * The caller's row from the token: a token without a name or email keeps
 * what the row has.
 */
static enum mk_err
upsert_user(struct mk_db *db, const struct mk_identity *who)
{
	struct mk_db_value params[] = {
		{ .type = MK_DB_INT, .integer = who->user_id },
		text_value(who->name != NULL ? who->name : ""),
		text_value(who->email),
	};

	return mk_db_execute(db,
	    "INSERT INTO users (id, name, email) VALUES (?, ?, ?) "
	    "ON DUPLICATE KEY UPDATE name = IF(VALUES(name) = '', name, VALUES(name)), "
	    "email = COALESCE(VALUES(email), email)", params, 3, NULL, NULL);
}

static enum mk_err
create_in_transaction(struct mk_db *db, void *ctx)
{
	struct create_work *w = ctx;
	const struct mk_market_input *in = w->in;
	uint64_t id = 0;
	struct mk_db_value market[] = {
		text_value(in->name),
		text_value(in->description),
		text_value(in->status),
		{ .type = MK_DB_INT, .integer = w->who->user_id },
		text_value(in->end_date),
		text_value(in->has_position ? in->amount : "0.00"),
	};
	enum mk_err rc;

	if ((rc = upsert_user(db, w->who)) != MK_OK)
		return rc;
	rc = mk_db_execute(db,
	    "INSERT INTO markets (name, description, status, creator_id, end_date, volume) "
	    "VALUES (?, ?, ?, ?, ?, CAST(? AS DECIMAL(20,2)))", market, 6, NULL, &id);
	if (rc != MK_OK)
		return rc;
	w->id = (int64_t)id;
	if (in->has_position) {
		struct mk_db_value position[] = {
			{ .type = MK_DB_INT, .integer = w->id },
			{ .type = MK_DB_INT, .integer = w->who->user_id },
			text_value(in->side),
			text_value(in->amount),
		};

		rc = mk_db_execute(db,
		    "INSERT INTO positions (market_id, user_id, side, amount) "
		    "VALUES (?, ?, ?, CAST(? AS DECIMAL(20,2)))", position, 4, NULL, NULL);
	}
	if (rc == MK_OK)
		rc = enqueue_index(db, w->id, w->job_max_attempts, NULL);
	if (rc == MK_OK && w->idem != NULL) {
		/* The response, as committed: a replay sends these very bytes. */
		struct mk_market created;
		char *location = mk_arena_alloc(w->arena, 48);

		rc = fetch_market(db, w->arena, w->id, &created);
		if (rc != MK_OK)
			return rc;
		if (location == NULL || (w->idem->data_json = render_market(w->arena, &created)) == NULL)
			return MK_ENOMEM;
		(void)snprintf(location, 48, "/api/markets/%lld", (long long)w->id);
		w->idem->status = 201;
		w->idem->location = location;
		rc = idem_store(db, w->idem);
	}
	return rc;
}

static enum mk_err
repo_create(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, int64_t *id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct create_work work = { .arena = arena, .who = who, .in = in, .idem = idem,
		.job_max_attempts = repo->job_max_attempts };
	enum mk_err rc;

	rc = mk_db_transaction(repo->db, create_in_transaction, &work);
	if (rc == MK_OK)
		*id = work.id;
	if (rc == MK_OK && idem != NULL)
		idem_unlock(repo->db, arena, idem); /* done: a failure keeps it for repo_idem_release */
	return rc;
}

static enum mk_err fetch_position(struct mk_db *db, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out);

struct buy_work {
	struct mk_arena *arena;
	struct mk_idempotency *idem;
	const struct mk_identity *who;
	int64_t market_id;
	const char *side;
	const char *amount;
	int64_t id;
};

static enum mk_err
buy_in_transaction(struct mk_db *db, void *ctx)
{
	struct buy_work *w = ctx;
	struct mk_db_value market = { .type = MK_DB_INT, .integer = w->market_id };
	struct mk_db_value position[] = {
		{ .type = MK_DB_INT, .integer = w->market_id },
		{ .type = MK_DB_INT, .integer = w->who->user_id },
		text_value(w->side),
		text_value(w->amount),
	};
	struct mk_db_value volume[] = { text_value(w->amount), market };
	struct mk_db_rows rows;
	uint64_t id = 0;
	enum mk_err rc;

	if ((rc = upsert_user(db, w->who)) != MK_OK)
		return rc;
	/*
	 * The row lock serialises buyers of one market: volume stays exact,
	 * and the room left under DECIMAL(20,2)'s largest value, read here,
	 * is still there at the UPDATE (which strict mode would refuse).
	 */
	rc = mk_db_select(db, w->arena, "SELECT status, volume <= " MK_VOLUME_MAX " - CAST(? AS DECIMAL(20,2)) "
	    "FROM markets WHERE id = ? FOR UPDATE", volume, 2, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	if (strcmp(to_text(mk_db_cell(&rows, 0, 0)), "active") != 0)
		return MK_ECONFLICT;
	if (to_int(mk_db_cell(&rows, 0, 1)) != 1)
		return MK_EOVERFLOW;
	rc = mk_db_execute(db, "INSERT INTO positions (market_id, user_id, side, amount) "
	    "VALUES (?, ?, ?, CAST(? AS DECIMAL(20,2)))", position, 4, NULL, &id);
	if (rc != MK_OK)
		return rc;
	w->id = (int64_t)id;
	rc = mk_db_execute(db, "UPDATE markets SET volume = volume + CAST(? AS DECIMAL(20,2)), "
	    "version = version + 1 WHERE id = ?", volume, 2, NULL, NULL);
	if (rc == MK_OK && w->idem != NULL) {
		struct mk_position bought;
		char *location = mk_arena_alloc(w->arena, 96);

		rc = fetch_position(db, w->arena, w->market_id, w->id, &bought);
		if (rc != MK_OK)
			return rc;
		if (location == NULL || (w->idem->data_json = render_position(w->arena, &bought)) == NULL)
			return MK_ENOMEM;
		(void)snprintf(location, 96, "/api/markets/%lld/positions/%lld",
		    (long long)w->market_id, (long long)w->id);
		w->idem->status = 201;
		w->idem->location = location;
		rc = idem_store(db, w->idem);
	}
	return rc;
}

static enum mk_err
repo_buy(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, int64_t *id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct buy_work work = { .arena = arena, .idem = idem, .who = who, .market_id = market_id,
		.side = side, .amount = amount };
	enum mk_err rc = mk_db_transaction(repo->db, buy_in_transaction, &work);

	if (rc == MK_OK)
		*id = work.id;
	if (rc == MK_OK && idem != NULL)
		idem_unlock(repo->db, arena, idem); /* done: a failure keeps it for repo_idem_release */
	return rc;
}

#define POSITION_COLUMNS "id, market_id, user_id, side, amount, " MK_DB_RFC3339("created_at") \
	", DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')"

static void
fill_position(const struct mk_db_rows *rows, size_t r, struct mk_position *out)
{
	out->id = to_int(mk_db_cell(rows, r, 0));
	out->market_id = to_int(mk_db_cell(rows, r, 1));
	out->user_id = to_int(mk_db_cell(rows, r, 2));
	out->side = to_text(mk_db_cell(rows, r, 3));
	out->amount = to_text(mk_db_cell(rows, r, 4));
	out->created_at = to_text(mk_db_cell(rows, r, 5));
}

static enum mk_err
fetch_position(struct mk_db *db, struct mk_arena *arena, int64_t market_id,
    int64_t id, struct mk_position *out)
{
	struct mk_db_value params[] = {
		{ .type = MK_DB_INT, .integer = id },
		{ .type = MK_DB_INT, .integer = market_id },
	};
	struct mk_db_rows rows;
	enum mk_err rc;

	rc = mk_db_select(db, arena, "SELECT " POSITION_COLUMNS
	    " FROM positions WHERE id = ? AND market_id = ?", params, 2, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	fill_position(&rows, 0, out);
	return MK_OK;
}

static enum mk_err
repo_position(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	return fetch_position(((struct repo_mysql *)base)->db, arena, market_id, id, out);
}

static enum mk_err
repo_positions(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value params[6];
	struct mk_db_rows rows;
	size_t n = 0;
	enum mk_err rc;
	const char *sql;

	memset(page, 0, sizeof(*page));
	params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = market_id };
	if (after_key != NULL) {
		struct mk_db_value key = text_value(after_key);

		params[n++] = key;
		params[n++] = key;
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = after_id };
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = (int64_t)limit + 1 };
		sql = "SELECT " POSITION_COLUMNS " FROM positions WHERE market_id = ?"
		    " AND created_at <= CAST(? AS DATETIME(6)) AND (created_at < CAST(? AS DATETIME(6)) OR id < ?)"
		    " ORDER BY created_at DESC, id DESC LIMIT ?";
	} else {
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = (int64_t)limit + 1 };
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT, .integer = (int64_t)offset };
		sql = "SELECT " POSITION_COLUMNS " FROM positions WHERE market_id = ?"
		    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?";
	}
	rc = mk_db_select(repo->db, arena, sql, params, n, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0) {
		/* An empty page, or no such market: only then ask which. */
		struct mk_market exists;

		rc = repo_get(base, arena, market_id, MK_MARKET_FIELD_BIT(MK_MARKET_ID), &exists);
		if (rc != MK_OK)
			return rc;
	}
	page->more = rows.nrows > limit;
	page->n = page->more ? limit : rows.nrows;
	page->items = mk_arena_calloc(arena, page->n + 1, sizeof(*page->items));
	if (page->items == NULL)
		return MK_ENOMEM;
	for (size_t r = 0; r < page->n; r++)
		fill_position(&rows, r, &page->items[r]);
	if (page->n > 0) {
		page->last_key = to_text(mk_db_cell(&rows, page->n - 1, 6));
		page->last_id = page->items[page->n - 1].id;
	}
	return MK_OK;
}

struct update_work {
	struct mk_arena *arena;
	const struct mk_identity *who;
	bool may_edit_any;
	int64_t id;
	const struct mk_market_input *in;
	const char *if_match;
	unsigned job_max_attempts;
};

static enum mk_err
update_in_transaction(struct mk_db *db, void *ctx)
{
	static const char *const assignments[MK_MARKET_FIELD__MAX] = {
		[MK_MARKET_NAME] = "name = ?",
		[MK_MARKET_DESCRIPTION] = "description = ?",
		[MK_MARKET_STATUS] = "status = ?",
		[MK_MARKET_END_DATE] = "end_date = ?",
	};
	struct update_work *w = ctx;
	struct mk_db_value key = { .type = MK_DB_INT, .integer = w->id }, params[8];
	struct mk_db_rows rows;
	struct mk_buf sql;
	size_t n = 0;
	enum mk_err rc;

	if ((rc = upsert_user(db, w->who)) != MK_OK)
		return rc;
	rc = mk_db_select(db, w->arena, "SELECT creator_id, version FROM markets WHERE id = ? FOR UPDATE", &key, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	if (!w->may_edit_any && to_int(mk_db_cell(&rows, 0, 0)) != w->who->user_id)
		return MK_EFORBIDDEN;
	if (w->if_match != NULL &&
	    !mk_market_etag_matches(w->if_match, (uint64_t)to_int(mk_db_cell(&rows, 0, 1))))
		return MK_EPRECONDITION;
	mk_buf_init(&sql, w->arena);
	mk_buf_puts(&sql, "UPDATE markets SET version = version + 1");
	for (int f = 0; f < MK_MARKET_FIELD__MAX; f++) {
		if (!(w->in->present & MK_MARKET_FIELD_BIT(f)) || assignments[f] == NULL)
			continue;
		mk_buf_append(&sql, ", ", 2);
		mk_buf_puts(&sql, assignments[f]);
		switch ((enum mk_market_field)f) {
		case MK_MARKET_NAME: params[n++] = text_value(w->in->name); break;
		case MK_MARKET_DESCRIPTION: params[n++] = text_value(w->in->description); break;
		case MK_MARKET_STATUS: params[n++] = text_value(w->in->status); break;
		case MK_MARKET_END_DATE: params[n++] = text_value(w->in->end_date); break;
		default: break;
		}
	}
	mk_buf_puts(&sql, " WHERE id = ?");
	params[n++] = key;
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_execute(db, sql.data, params, n, NULL, NULL);
	/* Only the text is embedded: a status or date change keeps the vector. */
	if (rc == MK_OK && (w->in->present & (MK_MARKET_FIELD_BIT(MK_MARKET_NAME) |
	    MK_MARKET_FIELD_BIT(MK_MARKET_DESCRIPTION))))
		rc = enqueue_index(db, w->id, w->job_max_attempts, NULL);
	return rc;
}

static enum mk_err
repo_update(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, bool may_edit_any, int64_t id,
    const struct mk_market_input *in, const char *if_match)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct update_work work = { .arena = arena, .who = who, .may_edit_any = may_edit_any,
		.id = id, .in = in, .if_match = if_match, .job_max_attempts = repo->job_max_attempts };

	return mk_db_transaction(repo->db, update_in_transaction, &work);
}

struct remove_work {
	struct mk_arena *arena;
	const struct mk_identity *who;
	int64_t id;
};

static enum mk_err
remove_in_transaction(struct mk_db *db, void *ctx)
{
	struct remove_work *w = ctx;
	struct mk_db_value key = { .type = MK_DB_INT, .integer = w->id };
	uint64_t affected = 0;
	enum mk_err rc;

	if ((rc = upsert_user(db, w->who)) != MK_OK)
		return rc;
	/* Positions go with the market (ON DELETE CASCADE). */
	rc = mk_db_execute(db, "DELETE FROM markets WHERE id = ?", &key, 1, &affected, NULL);
	if (rc == MK_OK && affected == 0)
		rc = MK_ENOTFOUND;
	/* Its vector leaves every worker's index with it. */
	if (rc == MK_OK)
		rc = mk_vectors_tombstone(db, w->arena, w->id);
	return rc;
}

static enum mk_err
repo_remove(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct remove_work work = { .arena = arena, .who = who, .id = id };

	return mk_db_transaction(repo->db, remove_in_transaction, &work);
}

/*
 * The reservation once the key's lock was tried (lock: what GET_LOCK said).
 * Drops the key when expired (24 h), inserts it, or reads what is there:
 * a stored response is replayed; a reservation still running is taken
 * over when no live request holds its lock, or when it is older than a
 * minute (the fallback: a hung holder, or no answer from GET_LOCK).
 */
static enum mk_err
idem_claim(struct mk_db *db, struct mk_arena *arena, struct mk_idempotency *idem,
    enum idem_lock lock, enum mk_idem_state *state)
{
	struct mk_db_value params[] = {
		IDEM_PARAMS(idem),
		{ .type = MK_DB_TEXT, .text = (const char *)idem->hash, .len = sizeof(idem->hash) },
	};
	struct mk_db_rows rows;
	uint64_t affected = 0;
	enum mk_err rc;

	if (lock != IDEM_LOCK_BUSY) {
		/* Keys live 24 hours: an expired one is as good as new. */
		rc = mk_db_execute(db, "DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? "
		    "AND created_at < NOW(6) - INTERVAL 24 HOUR", params, 2, NULL, NULL);
		if (rc != MK_OK)
			return rc;
		rc = mk_db_execute(db, "INSERT IGNORE INTO idempotency_keys (user_id, idem_key, request_hash, owner_conn) "
		    "VALUES (?, ?, ?, CONNECTION_ID())", params, 3, &affected, NULL);
		if (rc != MK_OK)
			return rc;
		if (affected == 1) {
			*state = MK_IDEM_RESERVED;
			return MK_OK;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		bool running, stale;

		rc = mk_db_select(db, arena, "SELECT request_hash, status, location, response, "
		    "created_at < NOW(6) - INTERVAL 60 SECOND FROM idempotency_keys WHERE user_id = ? AND idem_key = ? "
		    "AND created_at >= NOW(6) - INTERVAL 24 HOUR",
		    params, 2, &rows);
		if (rc != MK_OK)
			return rc;
		if (rows.nrows == 0)
			return MK_ECONFLICT; /* not there (yet, or any more): let the client retry */
		if (mk_db_cell(&rows, 0, 0)->len != sizeof(idem->hash) ||
		    memcmp(mk_db_cell(&rows, 0, 0)->text, idem->hash, sizeof(idem->hash)) != 0)
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
		rc = mk_db_execute(db, lock == IDEM_LOCK_TAKEN ?
		    "UPDATE idempotency_keys SET created_at = NOW(6), owner_conn = CONNECTION_ID() "
		    "WHERE user_id = ? AND idem_key = ? AND status = 0" :
		    "UPDATE idempotency_keys SET created_at = NOW(6), owner_conn = CONNECTION_ID() "
		    "WHERE user_id = ? AND idem_key = ? AND status = 0 AND created_at < NOW(6) - INTERVAL 60 SECOND",
		    params, 2, &affected, NULL);
		if (rc != MK_OK)
			return rc;
		if (affected == 1) {
			mk_log(MK_LOG_INFO, "idempotency: a reservation of user %lld left by a request that %s "
			    "is taken over", (long long)idem->user_id, lock == IDEM_LOCK_TAKEN ? "died" : "ran past a minute");
			*state = MK_IDEM_RESERVED;
			return MK_OK;
		}
	}
	return MK_ECONFLICT;
}

/*
 * Reserves a key (see above): on RESERVED this session holds the key's
 * lock until the effect commits (repo_create/repo_buy) or fails
 * (repo_idem_release); on any other outcome it is let go here.
 */
static enum mk_err
repo_idem_reserve(struct mk_market_repo *base, struct mk_arena *arena,
    struct mk_idempotency *idem, enum mk_idem_state *state)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	enum idem_lock lock;
	enum mk_err rc;

	if ((rc = idem_lock(repo->db, arena, idem, &lock)) != MK_OK)
		return rc;
	rc = idem_claim(repo->db, arena, idem, lock, state);
	if (lock == IDEM_LOCK_TAKEN && (rc != MK_OK || *state != MK_IDEM_RESERVED))
		idem_unlock(repo->db, arena, idem);
	return rc;
}

static enum mk_err
repo_idem_purge(struct mk_market_repo *base, unsigned limit, uint64_t *purged)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value param = { .type = MK_DB_INT, .integer = limit };

	/* Bounded: a purge never holds locks for long. */
	return mk_db_execute(repo->db, "DELETE FROM idempotency_keys "
	    "WHERE created_at < NOW(6) - INTERVAL 24 HOUR LIMIT ?", &param, 1, purged, NULL);
}

static void
repo_idem_release(struct mk_market_repo *base, const struct mk_idempotency *idem)
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
	(void)mk_db_execute(repo->db, "DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? "
	    "AND status = 0 AND owner_conn = CONNECTION_ID()", params, 2, NULL, NULL);
	if (arena != NULL) {
		idem_unlock(repo->db, arena, idem);
		mk_arena_free(arena);
	}
}

static void
repo_destroy(struct mk_market_repo *base)
{
	free(base);
}

static const struct mk_market_repo_ops mysql_ops = {
	.get_document = repo_get_document,
	.get_documents = repo_get_documents,
	.get = repo_get,
	.list = repo_list,
	.users = repo_users,
	.create = repo_create,
	.buy = repo_buy,
	.position = repo_position,
	.positions = repo_positions,
	.update = repo_update,
	.remove = repo_remove,
	.idem_reserve = repo_idem_reserve,
	.idem_release = repo_idem_release,
	.idem_purge = repo_idem_purge,
	.destroy = repo_destroy,
};

struct mk_market_repo *
mk_market_repo_mysql_new(struct mk_db *db, unsigned job_max_attempts)
{
	struct repo_mysql *repo = calloc(1, sizeof(*repo));

	if (repo == NULL)
		return NULL;
	repo->base.ops = &mysql_ops;
	repo->db = db;
	repo->job_max_attempts = job_max_attempts;
	return &repo->base;
}
