/*
 * The application wiring: the one place that knows which parts are
 * stacked (router and route table, JWT verifier, memcached client, rate
 * limiter, database handle, and the market repositories: MariaDB, with
 * the memcached cache-aside decorator on top when memcached is
 * configured). A struct mk_app is worker-lifetime: made by
 * each worker after fork, freed when it exits; it never points into a
 * request arena. Handlers receive it and take what they need from it.
 */
#ifndef MK_APP_H
#define MK_APP_H

#include "core/cidr.h"
#include "http/health.h"
#include "http/middleware.h"

#include <stddef.h>

struct mk_cache;
struct mk_config;
struct mk_db;
struct mk_jwt_verifier;
struct mk_loop;
struct mk_market_repo;
struct mk_search;
struct mk_rate_limiter;
struct mk_router;

struct mk_app {
	const struct mk_config *config;
	struct mk_router *router;
	struct mk_jwt_verifier *verifier;
	struct mk_cache *cache;        /* NULL when no memcached is configured */
	struct mk_db *db;              /* NULL when no database is configured */
	struct mk_market_repo *repo;   /* the stack of market repositories; NULL without a database */
	struct mk_search *search;      /* embedder and vector index; NULL without a database */
	unsigned char cursor_key[32];  /* MAC key of list cursors (markets/cursor.h) */
	int64_t next_purge_ms;         /* when this worker next purges expired keys */
	struct mk_ready_probe ready_probe; /* /readyz's last answer (http/health.h) */
	struct mk_rate_limiter *limiter;
	struct mk_cidr_list metrics_allow; /* who may read /metrics */
	char route_labels[MK_METRICS_ROUTES_MAX][48];
	struct mk_http_service http;
};

/* Builds the worker's application. Returns NULL (and logs why) on failure. */
struct mk_app *mk_app_new(const struct mk_config *config);

/*
 * Checks what a worker will build from config (keys, server lists) without
 * keeping anything, so that a bad configuration stops a start or refuses
 * a reload in the master. Returns 0, or -1 with a reason in err.
 */
int mk_app_check_config(const struct mk_config *config, char *err, size_t errlen);

void mk_app_free(struct mk_app *app);

/*
 * Housekeeping between requests, called by the worker loop about once a
 * second: the repository stack's own (owed cache invalidations), the
 * search index's refresh, and a
 * purge of expired Idempotency-Key records every
 * idempotency_purge_interval (staggered across workers).
 */
void mk_app_tick(struct mk_app *app, int64_t now_ms);

/*
 * Lets requests wait on the worker's loop (which must outlive the app)
 * rather than block it: the http embedder's transfers run there. Returns
 * 0, or -1 (logged).
 */
int mk_app_attach_loop(struct mk_app *app, struct mk_loop *loop);

/* The middleware chain's state, for the server layer. */
struct mk_http_service *mk_app_http(struct mk_app *app);

#endif
