/*
 * Semantic search (search layer): the worker's embedder and vector
 * index, kept up to date from MariaDB (vectors.h) every second by the
 * worker's tick and before the first query; a query is answered with the
 * ids of the most similar markets and their scores (the markets layer
 * fetches their documents). A struct mk_search is worker-lifetime; a
 * query under way lives in the request arena.
 *
 * A query is two halves: start embeds it, finish ranks. With
 * the http embedder, start looks the query's vector up in memcached
 * first (see query_key() in search.c) and, on a miss, begins the
 * embedding on the worker's loop and answers MK_EPENDING: the request
 * waits without holding the worker, and finish runs when the loop wakes
 * it. The hash embedder (a few microseconds) is never cached nor waited
 * for.
 */
#ifndef MK_SEARCH_H
#define MK_SEARCH_H

#include <stddef.h>

#include "core/err.h"
#include "search/index.h"

struct mk_arena;
struct mk_cache;
struct mk_config;
struct mk_db;
struct mk_loop;
struct mk_search;
struct mk_search_query;

/* Most results one query may ask for. */
#define MK_SEARCH_MAX_LIMIT 50

/*
 * Makes the worker's search over db and cache (not owned; cache may be
 * NULL: no cache of query embeddings) with the configured embedder. NULL
 * with a reason in err.
 */
struct mk_search *mk_search_new(const struct mk_config *config,
    struct mk_db *db, struct mk_cache *cache, char *err, size_t errlen);

/*
 * Lets queries wait for the embedder on loop (which must outlive the
 * search) instead of blocking. MK_OK, or MK_ENOMEM / MK_EINTERNAL.
 */
enum mk_err mk_search_attach(struct mk_search *search, struct mk_loop *loop);

void mk_search_free(struct mk_search *search);

/* Brings the index up to date (the worker's tick). */
enum mk_err mk_search_refresh(struct mk_search *search);

/*
 * Begins a query (len bytes of UTF-8): its state into *out (in arena).
 * MK_OK: the query's vector is ready, call mk_search_query_finish() now.
 * MK_EPENDING: wake(wake_arg) is called from the loop once it is (or the
 * embedding failed); then call mk_search_query_finish(), or
 * mk_search_query_cancel() to give up first. Else an error (MK_EUNAVAIL
 * when the embedder or the database is down, MK_ENOMEM).
 */
enum mk_err mk_search_query_start(struct mk_search *search,
    struct mk_arena *arena, const char *query, size_t len,
    void (*wake)(void *arg), void *wake_arg, struct mk_search_query **out);

/*
 * Ends a started query: the embedding's outcome, or the ids of the limit
 * (1..MK_SEARCH_MAX_LIMIT) markets most similar to it with their cosine
 * similarity, best first, equal scores by ascending id, into
 * out[0..*n). A market deleted since the index last refreshed may still
 * be among them: the caller leaves out what it cannot find.
 */
enum mk_err mk_search_query_finish(struct mk_search *search,
    struct mk_search_query *query, size_t limit, struct mk_vector_hit *out,
    size_t *n);

/*
 * Gives up a pending query (nothing when it is not pending): wake is not
 * called.
 */
void mk_search_query_cancel(
    struct mk_search *search, struct mk_search_query *query);

/* The embedder's name and the index's size, for a response's meta. */
const char *mk_search_embedder(const struct mk_search *search);
size_t mk_search_indexed(const struct mk_search *search);

#endif
