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
#include "markets/repo.h"
#include "store/db.h"

struct repo_mysql {
	struct mk_market_repo base; /* first: the interface */
	struct mk_db *db;
};

#define RFC3339(col) "DATE_FORMAT(" col ", '%Y-%m-%dT%H:%i:%sZ')"

static const char *const columns[MK_MARKET_FIELD__MAX] = {
	[MK_MARKET_ID] = "id",
	[MK_MARKET_NAME] = "name",
	[MK_MARKET_DESCRIPTION] = "description",
	[MK_MARKET_STATUS] = "status",
	[MK_MARKET_VOLUME] = "volume",
	[MK_MARKET_CREATOR_ID] = "creator_id",
	[MK_MARKET_END_DATE] = RFC3339("end_date"),
	[MK_MARKET_CREATED_AT] = RFC3339("created_at"),
	[MK_MARKET_UPDATED_AT] = RFC3339("updated_at"),
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

static enum mk_err
repo_get(struct mk_market_repo *base, struct mk_arena *arena, int64_t id,
    unsigned fields, struct mk_market *out)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;
	struct mk_db_value param = { .type = MK_DB_INT, .integer = id };
	struct mk_db_rows rows;
	struct mk_buf sql;
	enum mk_err rc;
	size_t col = 0;

	fields |= MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	mk_buf_init(&sql, arena);
	mk_buf_puts(&sql, "SELECT ");
	for (int f = 0; f < MK_MARKET_FIELD__MAX; f++) {
		if (!(fields & MK_MARKET_FIELD_BIT(f)))
			continue;
		if (f != MK_MARKET_ID)
			mk_buf_append(&sql, ", ", 2);
		mk_buf_puts(&sql, columns[f]);
	}
	mk_buf_puts(&sql, " FROM markets WHERE id = ?");
	if (sql.oom)
		return MK_ENOMEM;
	rc = mk_db_select(repo->db, arena, sql.data, &param, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	memset(out, 0, sizeof(*out));
	out->fields = fields;
	for (int f = 0; f < MK_MARKET_FIELD__MAX; f++) {
		const struct mk_db_value *cell;

		if (!(fields & MK_MARKET_FIELD_BIT(f)))
			continue;
		cell = mk_db_cell(&rows, 0, col++);
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

static void
repo_destroy(struct mk_market_repo *base)
{
	free(base);
}

static const struct mk_market_repo_ops mysql_ops = {
	.get = repo_get,
	.users = repo_users,
	.destroy = repo_destroy,
};

struct mk_market_repo *
mk_market_repo_mysql_new(struct mk_db *db)
{
	struct repo_mysql *repo = calloc(1, sizeof(*repo));

	if (repo == NULL)
		return NULL;
	repo->base.ops = &mysql_ops;
	repo->db = db;
	return &repo->base;
}
