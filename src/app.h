/*
 * The application wiring (above every module, below server/): the one
 * place that knows which parts are stacked — router and route table, JWT
 * verifier, memcached client, rate limiter, database handle, the market
 * repositories (MariaDB, with the memcached cache-aside decorator on top
 * when memcached is configured), search, the job service and the market
 * service — and hands each route the typed context of its module
 * (markets, jobs, health), holding only what that module needs. struct
 * mk_app is known here alone. An app is worker-lifetime: made by each
 * worker after fork, freed when it exits; it never points into a request
 * arena. A worker's requests and its background work (the tick, the
 * /metrics gauge) share its connection through two db handles, so that
 * each statement counts as what it is (store/db.h). A job runner process
 * gets its parts here too (mk_app_run_jobs).
 */
#ifndef MK_APP_H
#define MK_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_app;
struct mk_config;
struct mk_http_service;
struct mk_loop;

/* Builds the worker's application. Returns NULL (and logs why) on failure. */
struct mk_app *mk_app_new(const struct mk_config *config);

/*
 * Checks what a worker will build from config (keys, server lists) without
 * keeping anything, so that a bad configuration stops a start or refuses
 * a reload in the master. Returns 0, or -1 with a reason in err.
 */
int mk_app_check_config(
    const struct mk_config *config, char *err, size_t errlen);

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

/*
 * A job runner process's work, after its set-up (server/child.h): builds
 * the runner's parts (its own database handle, the repository, the
 * embedder, the job handlers) and runs the jobs until carry_on() says
 * no. Returns the exit status.
 */
int mk_app_run_jobs(const struct mk_config *config, bool (*carry_on)(void));

#endif
