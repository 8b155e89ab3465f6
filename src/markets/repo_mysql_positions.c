/*
 * The MariaDB repository's positions (markets layer): buying a position
 * (the buy op: the position row and the market's volume, in one
 * transaction with its idempotency record) and reading one or a page of a
 * market's positions (the position and positions ops). It speaks SQL
 * through store/db and shares the repository's private parts through
 * repo_mysql_internal.h; the Idempotency-Key side of a buy is
 * repo_mysql_idem.c's.
 */
#include <string.h>

#include "core/arena.h"
#include "markets/repo_mysql_internal.h"
#include "store/db.h"

#define POSITION_COLUMNS                                                       \
	"id, market_id, user_id, side, amount, " MK_DB_RFC3339(                \
	    "created_at") ", DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')"

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

	rc = mk_db_select(db, arena,
	    "SELECT " POSITION_COLUMNS
	    " FROM positions WHERE id = ? AND market_id = ?",
	    params, 2, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	fill_position(&rows, 0, out);
	return MK_OK;
}

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
	struct mk_db_value market = { .type = MK_DB_INT,
		.integer = w->market_id };
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

	if ((rc = mk_repo_mysql_upsert_user(db, w->who)) != MK_OK)
		return rc;
	/*
	 * The row lock serialises buyers of one market: volume stays exact,
	 * and the room left under DECIMAL(20,2)'s largest value, read here,
	 * is still there at the UPDATE (which strict mode would refuse).
	 */
	rc = mk_db_select(db, w->arena,
	    "SELECT status, volume <= " MK_VOLUME_MAX
	    " - CAST(? AS DECIMAL(20,2)) "
	    "FROM markets WHERE id = ? FOR UPDATE",
	    volume, 2, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	if (strcmp(to_text(mk_db_cell(&rows, 0, 0)), "active") != 0)
		return MK_ECONFLICT;
	if (to_int(mk_db_cell(&rows, 0, 1)) != 1)
		return MK_EOVERFLOW;
	rc = mk_db_execute(db,
	    "INSERT INTO positions (market_id, user_id, side, amount) "
	    "VALUES (?, ?, ?, CAST(? AS DECIMAL(20,2)))",
	    position, 4, NULL, &id);
	if (rc != MK_OK)
		return rc;
	w->id = (int64_t)id;
	rc = mk_db_execute(db,
	    "UPDATE markets SET volume = volume + CAST(? AS DECIMAL(20,2)), "
	    "version = version + 1 WHERE id = ?",
	    volume, 2, NULL, NULL);
	if (rc == MK_OK && w->idem != NULL) {
		struct mk_position bought;

		rc = fetch_position(db, w->arena, w->market_id, w->id, &bought);
		if (rc != MK_OK)
			return rc;
		rc = mk_repo_mysql_idem_created(
		    db, w->arena, w->idem, NULL, &bought);
	}
	return rc;
}

enum mk_err
mk_repo_mysql_buy(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, int64_t *id)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct buy_work work = { .arena = arena,
		.idem = idem,
		.who = who,
		.market_id = market_id,
		.side = side,
		.amount = amount };
	enum mk_err rc;

	rc = mk_repo_mysql_write(repo, arena, idem, buy_in_transaction, &work);
	if (rc == MK_OK)
		*id = work.id;
	return rc;
}

enum mk_err
mk_repo_mysql_position(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	return fetch_position(
	    ((struct repo_mysql *)base)->reads, arena, market_id, id, out);
}

enum mk_err
mk_repo_mysql_positions(struct mk_market_repo *base, struct mk_arena *arena,
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
	params[n++] =
	    (struct mk_db_value){ .type = MK_DB_INT, .integer = market_id };
	if (after_key != NULL) {
		struct mk_db_value key = text_value(after_key);

		params[n++] = key;
		params[n++] = key;
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = after_id };
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = (int64_t)limit + 1 };
		sql = "SELECT " POSITION_COLUMNS
		      " FROM positions WHERE market_id = ?"
		      " AND created_at <= CAST(? AS DATETIME(6)) AND "
		      "(created_at < CAST(? AS DATETIME(6)) OR id < ?)"
		      " ORDER BY created_at DESC, id DESC LIMIT ?";
	} else {
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = (int64_t)limit + 1 };
		params[n++] = (struct mk_db_value){ .type = MK_DB_INT,
			.integer = (int64_t)offset };
		sql = "SELECT " POSITION_COLUMNS
		      " FROM positions WHERE market_id = ?"
		      " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?";
	}
	rc = mk_db_select(repo->reads, arena, sql, params, n, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0) {
		/* An empty page, or no such market: only then ask which. */
		struct mk_market exists;

		rc = mk_repo_mysql_read_market(repo->reads, arena, market_id,
		    MK_MARKET_FIELD_BIT(MK_MARKET_ID), &exists);
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
