/*
 * The indexer (markets layer): what indexing a market means — its name
 * and description embedded, the vector stored with the market's version.
 * In two steps, so that a slow embedder (an HTTP call) never runs inside
 * a transaction: prepare reads and embeds, store writes inside the
 * caller's transaction (the job runner's, with the job's completion).
 * It lives with the markets because it reads them; search/ below it
 * embeds text and keeps vectors, and knows no market.
 */
#ifndef MK_MARKETS_INDEXER_H
#define MK_MARKETS_INDEXER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_db;
struct mk_embedder;
struct mk_market_repo;

struct mk_index_work {
	int64_t market_id;
	bool gone;            /* the market no longer exists: a tombstone */
	uint64_t version;     /* the market version embedded */
	const char *embedder; /* the embedder's name */
	unsigned dim;
	float *vector; /* dim floats, in the arena */
};

/*
 * Reads market_id through repo and embeds it (its name, a newline, its
 * description) into *out. A market that is gone is not an error: out->gone.
 */
enum mk_err mk_indexer_prepare(struct mk_market_repo *repo,
    struct mk_arena *arena, struct mk_embedder *embedder, int64_t market_id,
    struct mk_index_work *out);

/*
 * Inside the caller's transaction on db: stores what prepare made — or a
 * tombstone, when the market was deleted meanwhile.
 */
enum mk_err mk_indexer_store(
    struct mk_db *db, struct mk_arena *arena, const struct mk_index_work *work);

/*
 * Embeds every market (or, with only_missing, those without a vector of
 * this embedder for their current version) and stores the vectors, in
 * transactions of a few hundred; *count says how many were stored. For
 * `markets-admin reindex`: a seed, or a switch of embedder, needs no
 * queue of ten thousand jobs.
 */
enum mk_err mk_indexer_reindex_all(struct mk_db *db, struct mk_arena *arena,
    struct mk_embedder *embedder, bool only_missing, uint64_t *count);

#endif
