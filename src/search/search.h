/*
 * Semantic search (search layer): the worker's embedder and vector
 * index, kept up to date from MariaDB (vectors.h) every second by the
 * worker's tick and before the first query, and queries answered with the
 * markets' documents through the repository stack (so from memcached when
 * cached). A struct mk_search is worker-lifetime; results live in the
 * request arena.
 */
#ifndef MK_SEARCH_H
#define MK_SEARCH_H

#include <stddef.h>

#include "core/err.h"
#include "markets/repo.h"

struct mk_arena;
struct mk_config;
struct mk_db;
struct mk_search;

/* Most results one query may ask for. */
#define MK_SEARCH_MAX_LIMIT 50

struct mk_search_result {
	struct mk_market_doc doc;
	float score; /* cosine similarity, in [-1, 1] */
};

/*
 * Makes the worker's search over db (not owned) with the configured
 * embedder. NULL with a reason in err.
 */
struct mk_search *mk_search_new(const struct mk_config *config, struct mk_db *db,
    char *err, size_t errlen);

void mk_search_free(struct mk_search *search);

/* Brings the index up to date (the worker's tick). */
enum mk_err mk_search_refresh(struct mk_search *search);

/*
 * The limit (1..MK_SEARCH_MAX_LIMIT) markets most similar to query
 * (len bytes of UTF-8), best first, equal scores by ascending id, into
 * out[0..*n). Markets deleted since the index last refreshed are left out.
 */
enum mk_err mk_search_query(struct mk_search *search, struct mk_market_repo *repo,
    struct mk_arena *arena, const char *query, size_t len, size_t limit,
    struct mk_search_result *out, size_t *n);

/* The embedder's name and the index's size, for a response's meta. */
const char *mk_search_embedder(const struct mk_search *search);
size_t mk_search_indexed(const struct mk_search *search);

#endif
