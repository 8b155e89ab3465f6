/*
 * Stored embeddings (search layer, MariaDB): the market_embeddings table
 * (sql/004_search.sql) and its change sequence. Writers put a market's
 * vector, or a tombstone for a deleted market, inside their own
 * transaction; each write takes the next search_state.seq under its row
 * lock, so changes commit in seq order. Workers bring their in-memory
 * index up to date by reading the rows past the seq they have loaded.
 *
 * Results live in the caller's arena.
 */
#ifndef MK_VECTORS_H
#define MK_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_db;
struct mk_vector_index;

/*
 * Inside the caller's transaction: stores market_id's vector (dim
 * floats from embedder, made from the market at market_version).
 */
enum mk_err mk_vectors_put(struct mk_db *db, struct mk_arena *arena,
    int64_t market_id, const char *embedder, unsigned dim, const float *vector,
    uint64_t market_version);

/*
 * Inside the caller's transaction: stores n vectors at once (ids[i],
 * versions[i], vectors + i·dim), with the same rules as mk_vectors_put.
 */
enum mk_err mk_vectors_put_batch(struct mk_db *db, struct mk_arena *arena,
    const char *embedder, unsigned dim, size_t n, const int64_t *ids,
    const uint64_t *versions, const float *vectors);

/* Inside the caller's transaction: market_id is gone (when it had a vector). */
enum mk_err mk_vectors_tombstone(
    struct mk_db *db, struct mk_arena *arena, int64_t market_id);

/*
 * Brings index up to date: one query when nothing changed, else the rows
 * changed since the index's seq, in pages of at most 2,000, using scratch
 * (reset per page) for the rows. Rows of another embedder or dimension
 * leave the index.
 */
enum mk_err mk_vectors_refresh(
    struct mk_db *db, struct mk_arena *scratch, struct mk_vector_index *index);

#endif
