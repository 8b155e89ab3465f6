/*
 * The MariaDB repository's market ops (markets layer); see repo.h and
 * repo_mysql.c. This file owns the markets themselves (read, list,
 * create, update, remove) and the users they name; positions are
 * repo_mysql_positions.c's, Idempotency-Key reservations
 * repo_mysql_idem.c's, and the three share repo_mysql_internal.h. SQL is
 * assembled only from the constant column expressions below, chosen by a
 * field mask — never from input; every value is a bound parameter, and
 * each shape of statement is prepared once per connection (store/db.c
 * keeps them). Times come out of the database already in RFC 3339 UTC
 * (the session runs in UTC), volumes as DECIMAL text: never through a
 * float.
 *
 * The outbox rows (repo.h) are written by enqueue_index() below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "jobs/queue.h"
#include "markets/repo_mysql_internal.h"
#include "search/vectors.h"
#include "store/db.h"
#include "store/replicas.h"

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

/*
 * Reads one row laid out by select_list() into *out; returns the next column.
 */
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
		case MK_MARKET_ID:
			out->id = to_int(cell);
			break;
		case MK_MARKET_NAME:
			out->name = to_text(cell);
			break;
		case MK_MARKET_DESCRIPTION:
			out->description = to_text(cell);
			break;
		case MK_MARKET_STATUS:
			out->status = to_text(cell);
			break;
		case MK_MARKET_VOLUME:
			out->volume = to_text(cell);
			break;
		case MK_MARKET_CREATOR_ID:
			out->creator_id = to_int(cell);
			break;
		case MK_MARKET_END_DATE:
			out->end_date = to_text(cell);
			break;
		case MK_MARKET_CREATED_AT:
			out->created_at = to_text(cell);
			break;
		case MK_MARKET_UPDATED_AT:
			out->updated_at = to_text(cell);
			break;
		case MK_MARKET_FIELD__MAX:
			break;
		}
	}
	return col;
}

/*
 * Runs sql, a SELECT that ends in a column, with " IN (?, …)" of the n
 * (at least one) values of params appended.
 */
static enum mk_err
select_in(struct mk_db *db, struct mk_arena *arena, struct mk_buf *sql,
    const struct mk_db_value *params, size_t n, struct mk_db_rows *rows)
{
	mk_buf_puts(sql, " IN (?");
	for (size_t i = 1; i < n; i++)
		mk_buf_append(sql, ", ?", 3);
	mk_buf_putc(sql, ')');
	if (sql->oom)
		return MK_ENOMEM;
	return mk_db_select(db, arena, sql->data, params, n, rows);
}

enum mk_err
mk_repo_mysql_get(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t id, unsigned fields, struct mk_market *out)
{
	return mk_repo_mysql_read_market(
	    ((struct repo_mysql *)base)->reads, arena, id, fields, out);
}

/* The document of a whole market (its version read), in arena. */
static enum mk_err
render_document(struct mk_arena *arena, const struct mk_market *market,
    struct mk_market_doc *out)
{
	struct mk_buf json;

	mk_buf_init(&json, arena);
	mk_market_json(&json, market);
	if (json.oom)
		return MK_ENOMEM;
	out->id = market->id;
	out->version = market->version;
	out->json = json.data;
	out->json_len = json.len;
	out->stale = false;
	return MK_OK;
}

enum mk_err
mk_repo_mysql_get_document(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t id, struct mk_cache_incr *ride, struct mk_market_doc *out)
{
	struct mk_market market;
	enum mk_err rc;

	(void)ride; /* not on memcached: the limiter collects its own count */
	struct repo_mysql *repo = (struct repo_mysql *)base;

	rc = mk_repo_mysql_read_market(
	    repo->documents, arena, id, MK_MARKET_ALL_FIELDS, &market);
	if (rc != MK_OK)
		return rc;
	rc = render_document(arena, &market, out);
	out->stale = repo->replicas != NULL &&
	    mk_replicas_documents_stale(repo->replicas);
	return rc;
}

enum mk_err
mk_repo_mysql_get_documents(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_market_doc *out, size_t *found)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value params[MK_MARKET_REPO_MAX_IDS];
	struct mk_db_rows rows;
	struct mk_buf sql;
	enum mk_err rc;

	*found = 0;
	if (n == 0)
		return MK_OK;
	if (n > MK_MARKET_REPO_MAX_IDS)
		return MK_EINVAL;
	mk_buf_init(&sql, arena);
	select_list(&sql, MK_MARKET_ALL_FIELDS);
	mk_buf_puts(&sql, ", version FROM markets WHERE id");
	for (size_t i = 0; i < n; i++)
		params[i] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = ids[i] };
	rc = select_in(repo->documents, arena, &sql, params, n, &rows);
	if (rc != MK_OK)
		return rc;
	for (size_t r = 0; r < rows.nrows; r++) {
		struct mk_market market;
		size_t version_col =
		    fill_market(&rows, r, MK_MARKET_ALL_FIELDS, &market);

		market.version =
		    (uint64_t)to_int(mk_db_cell(&rows, r, version_col));
		rc = render_document(arena, &market, &out[*found]);
		if (rc != MK_OK)
			return rc;
		(*found)++;
	}
	return MK_OK;
}

/*
 * Queues the (re)indexing of market id for search, inside the write's
 * transaction: the outbox row of repo.h.
 */
static enum mk_err
enqueue_index(struct mk_db *db, int64_t id, unsigned max_attempts)
{
	char payload[MK_MARKET_INDEX_JOB_KEY_MAX];
	char dedup_key[MK_MARKET_INDEX_JOB_KEY_MAX];
	int64_t job_id;

	mk_market_index_job(id, payload, dedup_key);
	return mk_jobs_enqueue(
	    db, MK_MARKET_INDEX_JOB, payload, dedup_key, max_attempts, &job_id);
}

/* The whole market on db (inside a transaction: what it will commit). */
static enum mk_err
fetch_market(
    struct mk_db *db, struct mk_arena *arena, int64_t id, struct mk_market *out)
{
	return mk_repo_mysql_read_market(
	    db, arena, id, MK_MARKET_ALL_FIELDS, out);
}

enum mk_err
mk_repo_mysql_read_market(struct mk_db *db, struct mk_arena *arena, int64_t id,
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
	const char *index; /* (column, id): the order of an unfiltered list */
	const char *key;   /* the cursor's text of the column */
	const char *param; /* a cursor value as a comparable of the column */
	bool desc;
} sorts[MK_SORT__MAX] = {
	[MK_SORT_CREATED_DESC] = { "created_at", "markets_created",
	    "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')",
	    "CAST(? AS DATETIME(6))", true },
	[MK_SORT_CREATED_ASC] = { "created_at", "markets_created",
	    "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')",
	    "CAST(? AS DATETIME(6))", false },
	[MK_SORT_VOLUME_DESC] = { "volume", "markets_volume", "volume",
	    "CAST(? AS DECIMAL(20,2))", true },
	[MK_SORT_VOLUME_ASC] = { "volume", "markets_volume", "volume",
	    "CAST(? AS DECIMAL(20,2))", false },
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
		mk_buf_printf(sql, " FORCE INDEX FOR ORDER BY (%s)",
		    sorts[q->sort].index);
	mk_buf_puts(sql, " WHERE 1 = 1");
	if (q->status != NULL) {
		mk_buf_puts(sql, " AND status = ?");
		params[(*n)++] = (struct mk_db_value){ .type = MK_DB_TEXT,
			.text = q->status,
			.len = strlen(q->status) };
	}
	if (q->creator_id > 0) {
		mk_buf_puts(sql, " AND creator_id = ?");
		params[(*n)++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = q->creator_id };
	}
}

enum mk_err
mk_repo_mysql_list(struct mk_market_repo *base, struct mk_arena *arena,
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
			mk_buf_puts(&sql,
			    "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM "
			    "market_counts");
			if (q->status != NULL) {
				mk_buf_puts(&sql, " WHERE status = ?");
				params[n++] =
				    (struct mk_db_value){ .type = MK_DB_TEXT,
					    .text = q->status,
					    .len = strlen(q->status) };
			}
		} else {
			/*
			 * One creator's markets: a range of
			 * markets_creator_created.
			 */
			mk_buf_puts(&sql, "SELECT COUNT(*)");
			where_filters(&sql, q, params, &n, false);
		}
		if (sql.oom)
			return MK_ENOMEM;
		rc = mk_db_select(
		    repo->reads, arena, sql.data, params, n, &rows);
		if (rc != MK_OK)
			return rc;
		page->total =
		    rows.nrows == 1 ? to_int(mk_db_cell(&rows, 0, 0)) : 0;
		n = 0;
	}
	mk_buf_init(&sql, arena);
	select_list(&sql, fields);
	mk_buf_append(&sql, ", ", 2);
	mk_buf_puts(&sql, sorts[q->sort].key);
	where_filters(&sql, q, params, &n, true);
	if (q->after_key != NULL) {
		/*
		 * Keyset: the leading comparison lets the index range start
		 * there.
		 */
		const char *op = sorts[q->sort].desc ? "<" : ">";
		struct mk_db_value key = { .type = MK_DB_TEXT,
			.text = q->after_key,
			.len = strlen(q->after_key) };

		mk_buf_printf(&sql, " AND %s %s= %s AND (%s %s %s OR id %s ?)",
		    sorts[q->sort].column, op, sorts[q->sort].param,
		    sorts[q->sort].column, op, sorts[q->sort].param, op);
		params[n++] = key;
		params[n++] = key;
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = q->after_id };
	}
	mk_buf_printf(&sql, " ORDER BY %s %s, id %s LIMIT ?",
	    sorts[q->sort].column, dir, dir);
	/*
	 * One row more than asked: whether a next page exists, without a count.
	 */
	params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
		.integer = (int64_t)q->limit + 1 };
	if (q->offset > 0) {
		mk_buf_puts(&sql, " OFFSET ?");
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = (int64_t)q->offset };
	}
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(repo->reads, arena, sql.data, params, n, &rows);
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

enum mk_err
mk_repo_mysql_users(struct mk_market_repo *base, struct mk_arena *arena,
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
			params[unique++] =
			    (struct mk_db_value){ .type = MK_DB_INT,
				    .integer = ids[i] };
	}
	mk_buf_init(&sql, arena);
	mk_buf_puts(&sql, "SELECT id, name, email FROM users WHERE id");
	rc = select_in(repo->reads, arena, &sql, params, unique, &rows);
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
 * The caller's row from the token: a token without a name or email keeps
 * what the row has.
 */
enum mk_err
mk_repo_mysql_upsert_user(struct mk_db *db, const struct mk_identity *who)
{
	struct mk_db_value params[] = {
		{ .type = MK_DB_INT, .integer = who->user_id },
		text_value(who->name != NULL ? who->name : ""),
		text_value(who->email),
	};

	return mk_db_execute(db,
	    "INSERT INTO users (id, name, email) VALUES (?, ?, ?) "
	    "ON DUPLICATE KEY UPDATE name = IF(VALUES(name) = '', name, "
	    "VALUES(name)), "
	    "email = COALESCE(VALUES(email), email)",
	    params, 3, NULL, NULL);
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

	if ((rc = mk_repo_mysql_upsert_user(db, w->who)) != MK_OK)
		return rc;
	rc = mk_db_execute(db,
	    "INSERT INTO markets (name, description, status, creator_id, "
	    "end_date, volume) "
	    "VALUES (?, ?, ?, ?, ?, CAST(? AS DECIMAL(20,2)))",
	    market, 6, NULL, &id);
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
		    "VALUES (?, ?, ?, CAST(? AS DECIMAL(20,2)))",
		    position, 4, NULL, NULL);
	}
	if (rc == MK_OK)
		rc = enqueue_index(db, w->id, w->job_max_attempts);
	if (rc == MK_OK && w->idem != NULL) {
		struct mk_market created;

		rc = fetch_market(db, w->arena, w->id, &created);
		if (rc != MK_OK)
			return rc;
		rc = mk_repo_mysql_idem_created(
		    db, w->arena, w->idem, &created, NULL);
	}
	return rc;
}

enum mk_err
mk_repo_mysql_create(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, int64_t *id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct create_work work = { .arena = arena,
		.who = who,
		.in = in,
		.idem = idem,
		.job_max_attempts = repo->job_max_attempts };
	enum mk_err rc;

	rc = mk_repo_mysql_write(
	    repo, arena, idem, create_in_transaction, &work);
	if (rc == MK_OK)
		*id = work.id;
	return rc;
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
	struct mk_db_value key = { .type = MK_DB_INT, .integer = w->id },
			   params[8];
	struct mk_db_rows rows;
	struct mk_buf sql;
	size_t n = 0;
	enum mk_err rc;

	if ((rc = mk_repo_mysql_upsert_user(db, w->who)) != MK_OK)
		return rc;
	rc = mk_db_select(db, w->arena,
	    "SELECT creator_id, version FROM markets WHERE id = ? FOR UPDATE",
	    &key, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	if (!w->may_edit_any &&
	    to_int(mk_db_cell(&rows, 0, 0)) != w->who->user_id)
		return MK_EFORBIDDEN;
	if (w->if_match != NULL &&
	    !mk_market_etag_matches(
		w->if_match, (uint64_t)to_int(mk_db_cell(&rows, 0, 1))))
		return MK_EPRECONDITION;
	mk_buf_init(&sql, w->arena);
	mk_buf_puts(&sql, "UPDATE markets SET version = version + 1");
	for (int f = 0; f < MK_MARKET_FIELD__MAX; f++) {
		if (!(w->in->present & MK_MARKET_FIELD_BIT(f)) ||
		    assignments[f] == NULL)
			continue;
		mk_buf_append(&sql, ", ", 2);
		mk_buf_puts(&sql, assignments[f]);
		switch ((enum mk_market_field)f) {
		case MK_MARKET_NAME:
			params[n++] = text_value(w->in->name);
			break;
		case MK_MARKET_DESCRIPTION:
			params[n++] = text_value(w->in->description);
			break;
		case MK_MARKET_STATUS:
			params[n++] = text_value(w->in->status);
			break;
		case MK_MARKET_END_DATE:
			params[n++] = text_value(w->in->end_date);
			break;
		default:
			break;
		}
	}
	mk_buf_puts(&sql, " WHERE id = ?");
	params[n++] = key;
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_execute(db, sql.data, params, n, NULL, NULL);
	/*
	 * Only the text is embedded: a status or date change keeps the vector.
	 */
	if (rc == MK_OK &&
	    (w->in->present &
		(MK_MARKET_FIELD_BIT(MK_MARKET_NAME) |
		    MK_MARKET_FIELD_BIT(MK_MARKET_DESCRIPTION))))
		rc = enqueue_index(db, w->id, w->job_max_attempts);
	return rc;
}

enum mk_err
mk_repo_mysql_update(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, bool may_edit_any, int64_t id,
    const struct mk_market_input *in, const char *if_match)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct update_work work = { .arena = arena,
		.who = who,
		.may_edit_any = may_edit_any,
		.id = id,
		.in = in,
		.if_match = if_match,
		.job_max_attempts = repo->job_max_attempts };

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

	if ((rc = mk_repo_mysql_upsert_user(db, w->who)) != MK_OK)
		return rc;
	/* Positions go with the market (ON DELETE CASCADE). */
	rc = mk_db_execute(
	    db, "DELETE FROM markets WHERE id = ?", &key, 1, &affected, NULL);
	if (rc == MK_OK && affected == 0)
		rc = MK_ENOTFOUND;
	/* Its vector leaves every worker's index with it. */
	if (rc == MK_OK)
		rc = mk_vectors_tombstone(db, w->arena, w->id);
	return rc;
}

enum mk_err
mk_repo_mysql_remove(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct remove_work work = { .arena = arena, .who = who, .id = id };

	return mk_db_transaction(repo->db, remove_in_transaction, &work);
}
