/*
 * Stored embeddings (search layer, MariaDB); see vectors.h. A vector is
 * stored as dim little-endian IEEE-754 float32s.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "search/index.h"
#include "search/vectors.h"
#include "store/db.h"

#define PAGE_ROWS 2000

/*
 * Takes count change sequence numbers, *seq being the first (locks
 * search_state until commit).
 */
static enum mk_err
next_seqs(struct mk_db *db, struct mk_arena *arena, size_t count, int64_t *seq)
{
	struct mk_db_rows rows;
	struct mk_db_value value;
	enum mk_err rc;

	rc = mk_db_select(db, arena,
	    "SELECT seq FROM search_state WHERE id = 1 FOR UPDATE", NULL, 0,
	    &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows != 1)
		return MK_EINTERNAL;
	*seq = mk_db_cell_int(&rows, 0, 0) + 1;
	value = mk_db_int(*seq + (int64_t)count - 1);
	return mk_db_execute(db, "UPDATE search_state SET seq = ? WHERE id = 1",
	    &value, 1, NULL, NULL);
}

/* The stored form of a vector: dim little-endian float32s, in the arena. */
static unsigned char *
encode_vector(struct mk_arena *arena, const float *vector, unsigned dim)
{
	unsigned char *bytes = mk_arena_alloc(arena, (size_t)dim * 4);

	if (bytes == NULL)
		return NULL;
	for (unsigned i = 0; i < dim; i++) {
		uint32_t u;

		memcpy(&u, &vector[i], 4);
		for (int b = 0; b < 4; b++)
			bytes[4 * i + (unsigned)b] =
			    (unsigned char)(u >> (8 * b));
	}
	return bytes;
}

/* Rows per INSERT: six parameters each, within MK_DB_MAX_PARAMS. */
#define ROWS_PER_INSERT (MK_DB_MAX_PARAMS / 6)

enum mk_err
mk_vectors_put(struct mk_db *db, struct mk_arena *arena, int64_t market_id,
    const char *embedder, unsigned dim, const float *vector,
    uint64_t market_version)
{
	return mk_vectors_put_batch(
	    db, arena, embedder, dim, 1, &market_id, &market_version, vector);
}

enum mk_err
mk_vectors_put_batch(struct mk_db *db, struct mk_arena *arena,
    const char *embedder, unsigned dim, size_t n, const int64_t *ids,
    const uint64_t *versions, const float *vectors)
{
	struct mk_db_value params[ROWS_PER_INSERT * 6];
	int64_t seq = 0;
	enum mk_err rc;

	if (n == 0)
		return MK_OK;
	if ((rc = next_seqs(db, arena, n, &seq)) != MK_OK)
		return rc;
	for (size_t start = 0; start < n; start += ROWS_PER_INSERT) {
		size_t rows =
		    n - start < ROWS_PER_INSERT ? n - start : ROWS_PER_INSERT;
		struct mk_buf sql;

		mk_buf_init(&sql, arena);
		mk_buf_puts(&sql,
		    "INSERT INTO market_embeddings "
		    "(market_id, embedder, dim, vector, market_version, seq) "
		    "VALUES ");
		for (size_t r = 0; r < rows; r++) {
			size_t i = start + r;
			unsigned char *bytes =
			    encode_vector(arena, vectors + i * dim, dim);

			if (bytes == NULL)
				return MK_ENOMEM;
			mk_buf_puts(&sql,
			    r == 0 ? "(?, ?, ?, ?, ?, ?)"
				   : ", (?, ?, ?, ?, ?, ?)");
			params[6 * r] = mk_db_int(ids[i]);
			params[6 * r + 1] =
			    (struct mk_db_value){ .type = MK_DB_TEXT,
				    .text = embedder,
				    .len = strlen(embedder) };
			params[6 * r + 2] = mk_db_int(dim);
			params[6 * r + 3] =
			    (struct mk_db_value){ .type = MK_DB_BLOB,
				    .text = (const char *)bytes,
				    .len = (size_t)dim * 4 };
			params[6 * r + 4] = mk_db_int((int64_t)versions[i]);
			params[6 * r + 5] = mk_db_int(seq + (int64_t)i);
		}
		mk_buf_puts(&sql,
		    " ON DUPLICATE KEY UPDATE "
		    /*
		     * Jobs may finish out of order (one retried, a newer one
		     * not): an older version of the market never replaces a
		     * newer one. market_version is assigned last, so every IF
		     * still sees the stored one.
		     */
		    "embedder = IF(VALUES(market_version) >= market_version, "
		    "VALUES(embedder), embedder), "
		    "dim = IF(VALUES(market_version) >= market_version, "
		    "VALUES(dim), dim), "
		    "vector = IF(VALUES(market_version) >= market_version, "
		    "VALUES(vector), vector), "
		    "seq = IF(VALUES(market_version) >= market_version, "
		    "VALUES(seq), seq), "
		    "market_version = GREATEST(market_version, "
		    "VALUES(market_version))");
		if (sql.oom)
			return MK_ENOMEM;
		rc = mk_db_execute(db, sql.data, params, rows * 6, NULL, NULL);
		if (rc != MK_OK)
			return rc;
	}
	return MK_OK;
}

enum mk_err
mk_vectors_tombstone(
    struct mk_db *db, struct mk_arena *arena, int64_t market_id)
{
	struct mk_db_value key = mk_db_int(market_id);
	struct mk_db_rows rows;
	int64_t seq = 0;
	enum mk_err rc;

	rc = mk_db_select(db, arena,
	    "SELECT market_id FROM market_embeddings WHERE market_id = ? AND "
	    "vector IS NOT NULL FOR UPDATE",
	    &key, 1, &rows);
	if (rc != MK_OK || rows.nrows == 0)
		return rc;
	if ((rc = next_seqs(db, arena, 1, &seq)) != MK_OK)
		return rc;
	{
		struct mk_db_value params[] = { mk_db_int(seq), key };

		return mk_db_execute(db,
		    "UPDATE market_embeddings SET vector = NULL, seq = ? WHERE "
		    "market_id = ?",
		    params, 2, NULL, NULL);
	}
}

/* Reads a stored vector into out (dim floats); false when it is not one. */
static bool
decode_vector(const struct mk_db_value *cell, unsigned dim, float *out)
{
	const unsigned char *p = (const unsigned char *)cell->text;

	if (cell->type != MK_DB_TEXT || cell->len != (size_t)dim * 4)
		return false;
	for (unsigned i = 0; i < dim; i++) {
		uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		    (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;

		memcpy(&out[i], &u, 4);
		/* A NaN would print as "nan": not JSON, and no score. */
		if (!isfinite(out[i]))
			return false;
	}
	return true;
}

enum mk_err
mk_vectors_refresh(
    struct mk_db *db, struct mk_arena *scratch, struct mk_vector_index *index)
{
	const char *embedder = mk_vector_index_embedder(index);
	unsigned dim = mk_vector_index_dim(index);
	struct mk_db_rows rows;
	uint64_t target;
	float *vector;
	enum mk_err rc;

	mk_arena_reset(scratch);
	rc = mk_db_select(db, scratch,
	    "SELECT seq FROM search_state WHERE id = 1", NULL, 0, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows != 1)
		return MK_EINTERNAL;
	target = (uint64_t)mk_db_cell_int(&rows, 0, 0);
	while (mk_vector_index_seq(index) < target) {
		struct mk_db_value params[] = {
			mk_db_int((int64_t)mk_vector_index_seq(index)),
			mk_db_int(PAGE_ROWS),
		};

		mk_arena_reset(scratch);
		vector = mk_arena_alloc(scratch, (size_t)dim * sizeof(float));
		if (vector == NULL)
			return MK_ENOMEM;
		/*
		 * The page and search_state's seq in one statement, so one
		 * snapshot of one server: with replicas, two statements may
		 * be answered by two servers, and an empty page from a
		 * lagging one must not move the index to a fresher one's seq.
		 * An empty page is one row of NULLs beside the seq.
		 */
		rc = mk_db_select(db, scratch,
		    "SELECT s.seq, e.market_id, e.embedder, e.dim, e.vector, "
		    "e.seq FROM search_state s LEFT JOIN "
		    "(SELECT market_id, embedder, dim, vector, seq FROM "
		    "market_embeddings WHERE seq > ? ORDER BY seq LIMIT ?) e "
		    "ON TRUE WHERE s.id = 1 ORDER BY e.seq",
		    params, 2, &rows);
		if (rc != MK_OK)
			return rc;
		if (rows.nrows == 0)
			return MK_EINTERNAL;
		if (mk_db_cell(&rows, 0, 1)->type == MK_DB_NULL) {
			/*
			 * search_state.seq is read committed, and seqs are
			 * taken under its row lock until commit: every change
			 * up to the seq this snapshot shows is in it, so none
			 * is left (a write that changed nothing took a seq
			 * too).
			 */
			mk_vector_index_set_seq(
			    index, (uint64_t)mk_db_cell_int(&rows, 0, 0));
			break;
		}
		for (size_t r = 0; r < rows.nrows; r++) {
			int64_t id = mk_db_cell_int(&rows, r, 1);
			const struct mk_db_value *name =
			    mk_db_cell(&rows, r, 2);

			if (name->type == MK_DB_TEXT &&
			    strcmp(name->text, embedder) == 0 &&
			    mk_db_cell_int(&rows, r, 3) == (int64_t)dim &&
			    decode_vector(
				mk_db_cell(&rows, r, 4), dim, vector)) {
				if ((rc = mk_vector_index_put(
					 index, id, vector)) != MK_OK)
					return rc;
			} else {
				mk_vector_index_remove(index, id);
			}
			mk_vector_index_set_seq(
			    index, (uint64_t)mk_db_cell_int(&rows, r, 5));
		}
	}
	mk_arena_reset(scratch);
	return MK_OK;
}
