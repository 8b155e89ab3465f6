/*
 * The indexer (markets layer); see indexer.h. It reads markets (through
 * the repository, and under a share lock where a delete must wait for
 * the vector's commit) and stores through search/vectors; what the
 * embedder makes of the text is search/embedder's.
 */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "markets/indexer.h"
#include "markets/repo.h"
#include "search/embedder.h"
#include "search/vectors.h"
#include "store/db.h"

enum mk_err
mk_indexer_prepare(struct mk_market_repo *repo, struct mk_arena *arena,
    struct mk_embedder *embedder, int64_t market_id, struct mk_index_work *out)
{
	struct mk_market market;
	size_t name_len, description_len;
	char *text;
	enum mk_err rc;

	memset(out, 0, sizeof(*out));
	out->market_id = market_id;
	out->embedder = embedder->name;
	out->dim = embedder->dim;
	rc = mk_market_repo_get(repo, arena, market_id,
	    MK_MARKET_FIELD_BIT(MK_MARKET_NAME) |
		MK_MARKET_FIELD_BIT(MK_MARKET_DESCRIPTION),
	    &market);
	if (rc == MK_ENOTFOUND) {
		out->gone = true;
		return MK_OK;
	}
	if (rc != MK_OK)
		return rc;
	name_len = strlen(market.name);
	description_len =
	    market.description != NULL ? strlen(market.description) : 0;
	text = mk_arena_alloc(arena, name_len + 1 + description_len + 1);
	out->vector =
	    mk_arena_alloc(arena, (size_t)embedder->dim * sizeof(float));
	if (text == NULL || out->vector == NULL)
		return MK_ENOMEM;
	memcpy(text, market.name, name_len);
	text[name_len] = '\n';
	if (description_len > 0)
		memcpy(
		    text + name_len + 1, market.description, description_len);
	text[name_len + 1 + description_len] = '\0';
	out->version = market.version;
	return mk_embed(
	    embedder, text, name_len + 1 + description_len, out->vector);
}

enum mk_err
mk_indexer_store(
    struct mk_db *db, struct mk_arena *arena, const struct mk_index_work *work)
{
	struct mk_db_value key = { .type = MK_DB_INT,
		.integer = work->market_id };
	struct mk_db_rows rows;
	enum mk_err rc;

	if (work->gone)
		return mk_vectors_tombstone(db, arena, work->market_id);
	/*
	 * The market may have been deleted since prepare read it: look again
	 * under a share lock (a delete now waits for this commit, and then
	 * writes its own tombstone). Gone: a tombstone, never a vector.
	 */
	rc = mk_db_select(db, arena,
	    "SELECT id FROM markets WHERE id = ? LOCK IN SHARE MODE", &key, 1,
	    &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return mk_vectors_tombstone(db, arena, work->market_id);
	return mk_vectors_put(db, arena, work->market_id, work->embedder,
	    work->dim, work->vector, work->version);
}

/* Markets embedded per transaction. */
#define REINDEX_PAGE 500

struct batch_work {
	struct mk_arena *arena;
	struct mk_embedder *embedder;
	size_t n;
	int64_t ids[REINDEX_PAGE];
	uint64_t versions[REINDEX_PAGE];
	float *vectors;
};

/*
 * Stores a page's vectors, except for markets deleted since the page was
 * read: those are looked up again under a share lock (as
 * mk_indexer_store does one by one) and left to their tombstones.
 */
static enum mk_err
store_batch(struct mk_db *db, void *ctx)
{
	struct batch_work *w = ctx;
	struct mk_db_value range[2];
	struct mk_db_rows rows;
	size_t kept = 0, r = 0;
	enum mk_err rc;

	if (w->n == 0)
		return MK_OK; /* a retry after every market of the page went */
	range[0] =
	    (struct mk_db_value){ .type = MK_DB_INT, .integer = w->ids[0] };
	range[1] = (struct mk_db_value){ .type = MK_DB_INT,
		.integer = w->ids[w->n - 1] };
	rc = mk_db_select(db, w->arena,
	    "SELECT id FROM markets WHERE id BETWEEN ? AND ? "
	    "ORDER BY id LOCK IN SHARE MODE",
	    range, 2, &rows);
	if (rc != MK_OK)
		return rc;
	/* Both lists ascend: keep the ids still there, in place. */
	for (size_t i = 0; i < w->n; i++) {
		while (
		    r < rows.nrows && mk_db_cell_int(&rows, r, 0) < w->ids[i])
			r++;
		if (r == rows.nrows || mk_db_cell_int(&rows, r, 0) != w->ids[i])
			continue;
		w->ids[kept] = w->ids[i];
		w->versions[kept] = w->versions[i];
		if (kept != i)
			memmove(w->vectors + kept * w->embedder->dim,
			    w->vectors + i * w->embedder->dim,
			    w->embedder->dim * sizeof(float));
		kept++;
	}
	w->n = kept;
	return mk_vectors_put_batch(db, w->arena, w->embedder->name,
	    w->embedder->dim, w->n, w->ids, w->versions, w->vectors);
}

enum mk_err
mk_indexer_reindex_all(struct mk_db *db, struct mk_arena *arena,
    struct mk_embedder *embedder, bool only_missing, uint64_t *count)
{
	struct batch_work work;
	int64_t after = 0;
	enum mk_err rc;

	memset(&work, 0, sizeof(work));
	*count = 0;
	work.embedder = embedder;
	for (;;) {
		struct mk_db_value params[] = {
			{ .type = MK_DB_TEXT,
			    .text = embedder->name,
			    .len = strlen(embedder->name) },
			{ .type = MK_DB_INT, .integer = only_missing },
			{ .type = MK_DB_INT, .integer = after },
			{ .type = MK_DB_INT, .integer = REINDEX_PAGE },
		};
		struct mk_db_rows rows;

		mk_arena_reset(arena);
		work.arena = arena;
		work.n = 0;
		rc = mk_db_select(db, arena,
		    "SELECT m.id, m.name, m.description, m.version FROM "
		    "markets m "
		    /*
		     * Missing: no vector of this embedder. Not "of this
		     * version": buys bump the version without touching the
		     * text, and text edits queue their own index job.
		     */
		    "LEFT JOIN market_embeddings e ON e.market_id = m.id AND "
		    "e.embedder = ? "
		    "AND e.vector IS NOT NULL "
		    "WHERE (? = 0 OR e.market_id IS NULL) AND m.id > ? ORDER "
		    "BY m.id LIMIT ?",
		    params, 4, &rows);
		if (rc != MK_OK)
			return rc;
		if (rows.nrows == 0)
			return MK_OK;
		work.vectors = mk_arena_alloc(
		    arena, rows.nrows * embedder->dim * sizeof(float));
		if (work.vectors == NULL)
			return MK_ENOMEM;
		for (size_t r = 0; r < rows.nrows; r++) {
			const struct mk_db_value *name =
			    mk_db_cell(&rows, r, 1);
			const struct mk_db_value *description =
			    mk_db_cell(&rows, r, 2);
			size_t name_len =
			    name->type == MK_DB_TEXT ? name->len : 0;
			size_t description_len = description->type == MK_DB_TEXT
			    ? description->len
			    : 0;
			char *text = mk_arena_alloc(
			    arena, name_len + description_len + 2);

			if (text == NULL)
				return MK_ENOMEM;
			memcpy(text, name_len > 0 ? name->text : "", name_len);
			text[name_len] = '\n';
			memcpy(text + name_len + 1,
			    description_len > 0 ? description->text : "",
			    description_len);
			text[name_len + 1 + description_len] = '\0';
			work.ids[r] = mk_db_cell_int(&rows, r, 0);
			work.versions[r] =
			    (uint64_t)mk_db_cell_int(&rows, r, 3);
			rc = mk_embed(embedder, text,
			    name_len + 1 + description_len,
			    work.vectors + r * embedder->dim);
			if (rc != MK_OK)
				return rc;
		}
		work.n = rows.nrows;
		after = work.ids[work.n - 1];
		if ((rc = mk_db_transaction(db, store_batch, &work)) != MK_OK)
			return rc;
		*count += work.n;
	}
}
