/*
 * Semantic search (search layer); see search.h. It calls the embedder,
 * the vector index and storage below it, and memcached (store/cache.h)
 * for the cache of query embeddings; the worker's loop only through the
 * embedder.
 */
#include <math.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/log.h"
#include "search/embedder.h"
#include "search/index.h"
#include "search/search.h"
#include "search/vectors.h"
#include "store/cache.h"

/* "mk:qemb:" and a SHA-256 in hex. */
#define QUERY_KEY_LEN (8 + 64)

struct mk_search {
	struct mk_db *db;       /* not owned */
	struct mk_cache *cache; /* not owned; NULL: no query cache */
	uint32_t cache_ttl_s;   /* 0: query embeddings are not cached */
	struct mk_embedder *embedder;
	struct mk_vector_index *index;
	struct mk_arena *scratch; /* the refresh's rows, reset per page */
	bool loaded;              /* refreshed at least once */
};

/* A query under way (search.h), in the request arena. */
struct mk_search_query {
	struct mk_embed_call call; /* its out is vector */
	float *vector;             /* dim floats */
	bool cacheable;            /* store the vector once embedded */
	bool embedded;             /* came from the embedder, not the cache */
	char key[QUERY_KEY_LEN + 1];
	void (*wake)(void *arg);
	void *wake_arg;
};

struct mk_search *
mk_search_new(const struct mk_config *config, struct mk_db *db,
    struct mk_cache *cache, char *err, size_t errlen)
{
	struct mk_search *search = calloc(1, sizeof(*search));

	if (search == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	search->db = db;
	search->cache = cache;
	/*
	 * memcached counts whole seconds: a positive TTL under one is rounded
	 * up, not off.
	 */
	search->cache_ttl_s =
	    (uint32_t)((config->embedder_cache_ttl_ms + 999) / 1000);
	search->embedder = mk_embedder_from_config(config, err, errlen);
	if (search->embedder == NULL) {
		mk_search_free(search);
		return NULL;
	}
	search->index =
	    mk_vector_index_new(search->embedder->name, search->embedder->dim);
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
	enum mk_err rc =
	    mk_vectors_refresh(search->db, search->scratch, search->index);

	if (rc == MK_OK)
		search->loaded = true;
	return rc;
}

enum mk_err
mk_search_attach(struct mk_search *search, struct mk_loop *loop)
{
	return mk_embedder_attach(search->embedder, loop);
}

/*
 * The query as embedded and cached: ASCII blanks trimmed and each run
 * collapsed to one space, ASCII letters lower-cased; other bytes (UTF-8
 * letters among them) as they are. So "  Will  Bitcoin\tHIT 100k " and
 * "will bitcoin hit 100k" are one query, and a cached vector is exactly
 * what the embedder would answer for it. Returns the text in arena, or
 * NULL when out of memory.
 */
static char *
normalise(
    struct mk_arena *arena, const char *query, size_t len, size_t *out_len)
{
	char *text = mk_arena_alloc(arena, len + 1);
	size_t n = 0;
	bool blank = false;

	if (text == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = query[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		    c == '\f' || c == '\v') {
			blank = n > 0;
			continue;
		}
		if (blank)
			text[n++] = ' ';
		blank = false;
		text[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	text[n] = '\0';
	*out_len = n;
	return text;
}

/*
 * The memcached key of a query's vector: "mk:qemb:" and the SHA-256 of
 * the embedder's name (which holds the model), the dimensions and the
 * normalised text, so no two embedders, models or sizes share a vector.
 * Returns 0, or -1 when out of memory.
 */
static int
query_key(const struct mk_search *search, struct mk_arena *arena,
    const char *text, size_t len, char *key)
{
	const char *name = search->embedder->name;
	size_t name_len = strlen(name), total = name_len + 1 + 12 + 1 + len;
	unsigned char md[32];
	size_t md_len = 0;
	char *input = mk_arena_alloc(arena, total);
	int head;

	if (input == NULL)
		return -1;
	head = snprintf(
	    input, total, "%s%c%u%c", name, '\0', search->embedder->dim, '\0');
	if (head < 0 || (size_t)head > total - len)
		return -1;
	memcpy(input + head, text, len);
	if (EVP_Q_digest(NULL, "SHA256", NULL, input, (size_t)head + len, md,
		&md_len) == 0 ||
	    md_len != sizeof(md))
		return -1;
	memcpy(key, "mk:qemb:", 8);
	for (size_t i = 0; i < sizeof(md); i++)
		(void)snprintf(key + 8 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/*
 * A cached vector: exactly dim finite floats. True when it is one, copied into
 * out.
 */
static bool
cached_vector(const struct mk_cache_value *value, unsigned dim, float *out)
{
	if (value->len != (size_t)dim * sizeof(float))
		return false;
	memcpy(out, value->bytes, value->len);
	for (unsigned i = 0; i < dim; i++)
		if (!isfinite(out[i]))
			return false;
	return true;
}

/* The embedder's done callback: the request may go on. */
static void
on_embedded(void *arg)
{
	struct mk_search_query *sq = arg;

	sq->wake(sq->wake_arg);
}

enum mk_err
mk_search_query_start(struct mk_search *search, struct mk_arena *arena,
    const char *query, size_t len, void (*wake)(void *arg), void *wake_arg,
    struct mk_search_query **out)
{
	struct mk_search_query *sq;
	struct mk_cache_value value;
	unsigned dim = search->embedder->dim;
	enum mk_err rc;

	*out = NULL;
	/* Before the first tick: a worker's first query loads the index. */
	if (!search->loaded && (rc = mk_search_refresh(search)) != MK_OK)
		return rc;
	sq = mk_arena_calloc(arena, 1, sizeof(*sq));
	if (sq == NULL ||
	    (sq->vector = mk_arena_alloc(arena, (size_t)dim * sizeof(float))) ==
		NULL)
		return MK_ENOMEM;
	sq->call.out = sq->vector;
	sq->call.done = on_embedded;
	sq->call.arg = sq;
	sq->wake = wake;
	sq->wake_arg = wake_arg;
	*out = sq;
	/*
	 * The hash embedder: a few microseconds, nothing to wait for or cache.
	 */
	if (search->embedder->ops->start == NULL)
		return sq->call.rc =
			   mk_embed(search->embedder, query, len, sq->vector);
	query = normalise(arena, query, len, &len);
	if (query == NULL)
		return MK_ENOMEM;
	if (search->cache != NULL && search->cache_ttl_s > 0) {
		if (query_key(search, arena, query, len, sq->key) != 0)
			return MK_ENOMEM;
		sq->cacheable = true;
		rc = mk_cache_get(
		    search->cache, arena, sq->key, QUERY_KEY_LEN, NULL, &value);
		if (rc == MK_OK && cached_vector(&value, dim, sq->vector))
			return sq->call.rc = MK_OK;
		/* A miss, or memcached down: the embedder it is. */
	}
	sq->embedded = true;
	/*
	 * Without a loop (a CGI worker) this blocks, and says MK_OK or why not.
	 */
	return mk_embed_start(search->embedder, &sq->call, query, len);
}

void
mk_search_query_cancel(struct mk_search *search, struct mk_search_query *query)
{
	if (query != NULL)
		mk_embed_cancel(search->embedder, &query->call);
}

enum mk_err
mk_search_query_finish(struct mk_search *search, struct mk_search_query *query,
    size_t limit, struct mk_vector_hit *out, size_t *n)
{
	const float *vector = query->vector;
	bool any = false;

	*n = 0;
	if (query->call.rc != MK_OK)
		return query->call.rc;
	if (limit == 0 || limit > MK_SEARCH_MAX_LIMIT)
		return MK_EINVAL;
	if (query->cacheable && query->embedded)
		(void)mk_cache_set(search->cache, query->key, QUERY_KEY_LEN,
		    vector, (size_t)search->embedder->dim * sizeof(float),
		    search->cache_ttl_s);
	/* Nothing to compare (only stopwords, say): nothing is similar. */
	for (unsigned i = 0; i < search->embedder->dim && !any; i++)
		any = vector[i] != 0.0f;
	if (any)
		mk_vector_index_search(search->index, vector, limit, out, n);
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
