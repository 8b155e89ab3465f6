/*
 * Semantic search (search layer); see search.h.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/log.h"
#include "search/embedder.h"
#include "search/index.h"
#include "search/search.h"
#include "search/vectors.h"

struct mk_search {
	struct mk_db *db;               /* not owned */
	struct mk_embedder *embedder;
	struct mk_vector_index *index;
	struct mk_arena *scratch;       /* the refresh's rows, reset per page */
	bool loaded;                    /* refreshed at least once */
};

struct mk_search *
mk_search_new(const struct mk_config *config, struct mk_db *db, char *err,
    size_t errlen)
{
	struct mk_search *search = calloc(1, sizeof(*search));

	if (search == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	search->db = db;
	search->embedder = mk_embedder_from_config(config, err, errlen);
	if (search->embedder == NULL) {
		mk_search_free(search);
		return NULL;
	}
	search->index = mk_vector_index_new(search->embedder->name, search->embedder->dim);
	search->scratch = mk_arena_new(0);
	if (search->index == NULL || search->scratch == NULL) {
		mk_errf(err, errlen, "out of memory");
		mk_search_free(search);
		return NULL;
	}
	return search;
}

void
mk_search_free(struct mk_search *search)
{
	if (search == NULL)
		return;
	mk_vector_index_free(search->index);
	mk_embedder_free(search->embedder);
	mk_arena_free(search->scratch);
	free(search);
}

enum mk_err
mk_search_refresh(struct mk_search *search)
{
	enum mk_err rc = mk_vectors_refresh(search->db, search->scratch, search->index);

	if (rc == MK_OK)
		search->loaded = true;
	return rc;
}

enum mk_err
mk_search_query(struct mk_search *search, struct mk_market_repo *repo,
    struct mk_arena *arena, const char *query, size_t len, size_t limit,
    struct mk_search_result *out, size_t *n)
{
	struct mk_vector_hit hits[MK_SEARCH_MAX_LIMIT];
	int64_t ids[MK_SEARCH_MAX_LIMIT];
	struct mk_market_doc *docs;
	float *vector;
	size_t nhits = 0, found = 0;
	enum mk_err rc;

	*n = 0;
	if (limit == 0 || limit > MK_SEARCH_MAX_LIMIT)
		return MK_EINVAL;
	/* Before the first tick: a worker's first query loads the index. */
	if (!search->loaded && (rc = mk_search_refresh(search)) != MK_OK)
		return rc;
	vector = mk_arena_alloc(arena, (size_t)search->embedder->dim * sizeof(float));
	docs = mk_arena_calloc(arena, limit, sizeof(*docs));
	if (vector == NULL || docs == NULL)
		return MK_ENOMEM;
	if ((rc = mk_embed(search->embedder, query, len, vector)) != MK_OK)
		return rc;
	/* Nothing to compare (only stopwords, say): nothing is similar. */
	{
		bool any = false;

		for (unsigned i = 0; i < search->embedder->dim && !any; i++)
			any = vector[i] != 0.0f;
		if (!any)
			return MK_OK;
	}
	mk_vector_index_search(search->index, vector, limit, hits, &nhits);
	if (nhits == 0)
		return MK_OK;
	for (size_t i = 0; i < nhits; i++)
		ids[i] = hits[i].id;
	rc = repo->ops->get_documents(repo, arena, ids, nhits, docs, &found);
	if (rc != MK_OK)
		return rc;
	/* Back into rank order; a market deleted meanwhile has no document. */
	for (size_t i = 0; i < nhits; i++) {
		for (size_t d = 0; d < found; d++) {
			if (docs[d].id == hits[i].id) {
				out[*n].doc = docs[d];
				out[*n].score = hits[i].score;
				(*n)++;
				break;
			}
		}
	}
	return MK_OK;
}

const char *
mk_search_embedder(const struct mk_search *search)
{
	return search->embedder->name;
}

size_t
mk_search_indexed(const struct mk_search *search)
{
	return mk_vector_index_size(search->index);
}
