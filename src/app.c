/*
 * The application wiring; see app.h. The route table is here so that one
 * screen shows every endpoint the server answers, what it requires and
 * which module's context its handler gets.
 */
#include "config.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth/jwt.h"
#include "auth/keyform.h"
#include "auth/ratelimit.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/cidr.h"
#include "http/health.h"
#include "http/me.h"
#include "http/middleware.h"
#include "http/openapi.h"
#include "http/router.h"
#include "jobs/handlers.h"
#include "jobs/service.h"
#include "markets/handlers.h"
#include "markets/repo.h"
#include "markets/runner.h"
#include "markets/service.h"
#include "search/search.h"
#include "store/cache.h"
#include "store/db.h"
#include "store/replicas.h"

/* How many routes the table below has. */
#define APP_ROUTES 17

struct mk_app {
	const struct mk_config *config;
	struct mk_route routes[APP_ROUTES];
	struct mk_router *router;
	struct mk_jwt_verifier *verifier;
	struct mk_cache *cache; /* NULL when no memcached is configured */
	struct mk_db *db;       /* NULL when no database is configured */
	/* db's connection again, its statements counted as background work */
	struct mk_db *background_db;
	/* db_replicas: where lag-tolerant reads go; NULL when none */
	struct mk_replicas *replicas;
	/* the stack of market repositories; NULL without a database */
	struct mk_market_repo *repo;
	/* MariaDB's, over background_db: the tick's purge */
	struct mk_market_repo *purge_repo;
	/* embedder and vector index; NULL without a database */
	struct mk_search *search;
	struct mk_job_service *jobs;       /* NULL without a database */
	struct mk_job_service *gauge_jobs; /* over background_db: /metrics */
	struct mk_market_service *service; /* NULL without a database */
	struct mk_rate_limiter *limiter;
	int64_t next_purge_ms; /* when this worker next purges expired keys */
	/* The routes' contexts. */
	struct mk_markets_context markets;
	struct mk_health_context health;
	char route_labels[APP_ROUTES][48];
	struct mk_http_service http;
};

/*
 * The route table, each route with its module's context: the markets'
 * (service, cursor key), the job service, the health endpoints' (probed
 * parts, metrics allow-list, route labels); /api/me and the OpenAPI
 * document need none.
 */
static void
fill_routes(struct mk_app *app)
{
	void *markets = &app->markets, *jobs = app->jobs,
	     *health = &app->health;
	const struct mk_route routes[] = {
		{ MK_METHOD_GET, "/healthz", MK_PERM_NONE, MK_ROUTE_UNLIMITED,
		    mk_health_live, health },
		{ MK_METHOD_GET, "/readyz", MK_PERM_NONE, MK_ROUTE_UNLIMITED,
		    mk_health_ready, health },
		{ MK_METHOD_GET, "/metrics", MK_PERM_NONE, MK_ROUTE_UNLIMITED,
		    mk_health_metrics, health },
		{ MK_METHOD_GET, "/api/me", MK_PERM_READ, 0, mk_me_get, NULL },
		{ MK_METHOD_GET, "/api/openapi.json", MK_PERM_NONE, 0,
		    mk_openapi_get, NULL },
		{ MK_METHOD_GET, "/api/markets", MK_PERM_NONE, 0,
		    mk_markets_list, markets },
		{ MK_METHOD_POST, "/api/markets", MK_PERM_WRITE, 0,
		    mk_markets_create, markets },
		/*
		 * Before /api/markets/:id: a literal segment wins over a
		 * parameter.
		 */
		{ MK_METHOD_GET, "/api/markets/search", MK_PERM_NONE, 0,
		    mk_markets_search, markets },
		{ MK_METHOD_GET, "/api/markets/:id", MK_PERM_NONE,
		    MK_ROUTE_LIMIT_AFTER, mk_markets_get, markets },
		{ MK_METHOD_PUT, "/api/markets/:id", MK_PERM_WRITE, 0,
		    mk_markets_replace, markets },
		{ MK_METHOD_PATCH, "/api/markets/:id", MK_PERM_WRITE, 0,
		    mk_markets_patch, markets },
		{ MK_METHOD_DELETE, "/api/markets/:id", MK_PERM_DELETE, 0,
		    mk_markets_delete, markets },
		{ MK_METHOD_GET, "/api/markets/:id/positions", MK_PERM_NONE, 0,
		    mk_positions_list, markets },
		{ MK_METHOD_POST, "/api/markets/:id/positions", MK_PERM_WRITE,
		    0, mk_positions_buy, markets },
		{ MK_METHOD_GET, "/api/markets/:id/positions/:pid",
		    MK_PERM_NONE, 0, mk_positions_get, markets },
		{ MK_METHOD_POST, "/api/markets/:id/index", MK_PERM_WRITE, 0,
		    mk_markets_index, markets },
		{ MK_METHOD_GET, "/api/jobs/:id", MK_PERM_ADMIN, 0,
		    mk_jobs_show, jobs },
	};

	_Static_assert(sizeof(routes) / sizeof(routes[0]) == APP_ROUTES,
	    "APP_ROUTES counts the route table");
	memcpy(app->routes, routes, sizeof(routes));
}

_Static_assert(APP_ROUTES <= MK_METRICS_ROUTES_MAX,
    "more routes than core/metrics.h counts");

/* Builds the parts that can fail on configuration; shared by the check. */
static int
build_parts(const struct mk_config *config, struct mk_app *app, char *err,
    size_t errlen)
{
	const char *bad, *form;
	size_t bad_len;

	/*
	 * A cursor MAC key everyone can read (a built-in constant, or a
	 * published key) makes cursors forgeable: refuse rather than start.
	 */
	if (config->cursor_secret[0] == '\0' && config->jwt_secret[0] == '\0') {
		mk_errf(err, errlen,
		    "cursor_secret is not set (nor jwt_secret, from which it "
		    "would be derived): "
		    "set cursor_secret to 32 or more random bytes, the same on "
		    "every host");
		return -1;
	}
	if ((form = mk_keyform_public(config->cursor_secret,
		 strlen(config->cursor_secret))) != NULL) {
		mk_errf(err, errlen, "cursor_secret is %s, not a secret", form);
		return -1;
	}
	app->verifier = mk_jwt_verifier_new(config, err, errlen);
	if (app->verifier == NULL)
		return -1;
	if (config->memcached[0] != '\0') {
		app->cache = mk_cache_new(config->memcached,
		    config->memcached_timeout_ms, err, errlen);
		if (app->cache == NULL)
			return -1;
	}
	app->limiter = mk_ratelimit_new(config, app->cache, err, errlen);
	if (app->limiter == NULL)
		return -1;
	if (mk_db_configured(config)) {
		/*
		 * No connection yet: a worker starts even while MariaDB is
		 * down.
		 */
		app->db = mk_db_new(config, err, errlen);
		if (app->db == NULL)
			return -1;
		app->background_db = mk_db_background(app->db, err, errlen);
		if (app->background_db == NULL)
			return -1;
		app->repo = mk_market_repo_mysql_new(
		    app->db, (unsigned)config->job_max_attempts);
		if (config->db_replicas[0] != '\0') {
			app->replicas = mk_replicas_new(
			    config, app->db, app->background_db, err, errlen);
			if (app->replicas == NULL)
				return -1;
			/* Documents only when no cache stores them. */
			if (app->repo != NULL)
				mk_market_repo_mysql_route_reads(app->repo,
				    app->replicas, app->cache == NULL);
		}
		if (app->repo != NULL && app->cache != NULL) {
			struct mk_market_cache_options options = {
				.ttl_s =
				    (uint32_t)(config->cache_ttl_ms / 1000),
				.lease_ttl_s = 3,
				.lease_wait_ms = config->cache_lease_wait_ms,
			};

			app->repo = mk_market_repo_cached_new(
			    app->repo, app->cache, &options);
		}
		/* The tick's purge: straight to MariaDB, as background work. */
		app->purge_repo = mk_market_repo_mysql_new(
		    app->background_db, (unsigned)config->job_max_attempts);
		if (app->repo == NULL || app->purge_repo == NULL) {
			(void)snprintf(err, errlen, "out of memory");
			return -1;
		}
		/* Its statements are the index refresh's: background work. */
		app->search = mk_search_new(config,
		    app->replicas != NULL
			? mk_replicas_background_reads(app->replicas)
			: app->background_db,
		    app->cache, err, errlen);
		if (app->search == NULL)
			return -1;
		app->jobs = mk_job_service_new(
		    app->db, (unsigned)config->job_max_attempts);
		/* A scrape must not move the requests' statement count. */
		app->gauge_jobs = mk_job_service_new(
		    app->background_db, (unsigned)config->job_max_attempts);
		if (app->jobs != NULL && app->gauge_jobs != NULL)
			app->service = mk_market_service_new(
			    app->repo, app->search, app->jobs);
		if (app->service == NULL) {
			(void)snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (mk_cidr_list_parse(config->metrics_allow,
		&app->health.metrics_allow, &bad, &bad_len) != 0) {
		mk_errf(err, errlen,
		    "metrics_allow: '%.*s' is not an address or CIDR block",
		    (int)(bad_len > 64 ? 64 : bad_len), bad);
		return -1;
	}
	return 0;
}

static void
free_parts(struct mk_app *app)
{
	mk_market_service_free(app->service);
	mk_job_service_free(app->jobs);
	mk_job_service_free(app->gauge_jobs);
	mk_search_free(app->search);
	mk_market_repo_free(app->repo);
	mk_market_repo_free(app->purge_repo);
	mk_replicas_free(app->replicas);
	mk_db_free(app->background_db);
	mk_db_free(app->db);
	mk_ratelimit_free(app->limiter);
	mk_cache_free(app->cache);
	mk_jwt_verifier_free(app->verifier);
}

/*
 * The cursor MAC key, the same in every worker and host that share the
 * configuration: from cursor_secret, else from jwt_secret (a different
 * key, by HMAC with a label). Never a built-in default: build_parts()
 * refuses a configuration with neither, and so does this.
 */
static int
derive_cursor_key(const struct mk_config *config, unsigned char *key)
{
	static const char label[] = "markets cursor key v1";
	const char *secret = config->cursor_secret[0] != '\0'
	    ? config->cursor_secret
	    : config->jwt_secret;
	size_t len = 0;

	if (secret[0] == '\0')
		return -1;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret,
		strlen(secret), (const unsigned char *)label, sizeof(label) - 1,
		key, 32, &len) == NULL ||
	    len != 32)
		return -1;
	return 0;
}

int
mk_app_check_config(const struct mk_config *config, char *err, size_t errlen)
{
	struct mk_app probe = { 0 };
	int rc = build_parts(config, &probe, err, errlen);

	free_parts(&probe);
	return rc;
}

struct mk_app *
mk_app_new(const struct mk_config *config)
{
	struct mk_app *app = calloc(1, sizeof(*app));
	char err[512];

	if (app == NULL) {
		mk_log(MK_LOG_ERROR, "out of memory building the application");
		return NULL;
	}
	app->config = config;
	if (build_parts(config, app, err, sizeof(err)) != 0) {
		mk_log(MK_LOG_ERROR, "worker start-up failed: %s", err);
		mk_app_free(app);
		return NULL;
	}
	fill_routes(app);
	app->router = mk_router_new(app->routes, APP_ROUTES);
	if (app->router == NULL) {
		mk_log(MK_LOG_ERROR,
		    "cannot build the router (bad route table or out of "
		    "memory)");
		mk_app_free(app);
		return NULL;
	}
	app->markets.service = app->service;
	app->health.db = app->db;
	app->health.cache = app->cache;
	app->health.replicas = app->replicas;
	app->http.consistency.replicas = app->replicas;
	app->http.consistency.cache = app->cache;
	app->http.consistency.window_s =
	    (uint32_t)(config->replica_max_lag_ms / 1000 + 2);
	if (app->gauge_jobs != NULL) {
		app->health.gauge.render = mk_job_service_render_gauge;
		app->health.gauge.arg = app->gauge_jobs;
	}
	if (derive_cursor_key(config, app->markets.cursor_key) != 0) {
		mk_log(MK_LOG_ERROR,
		    "worker start-up failed: cannot derive the cursor key");
		mk_app_free(app);
		return NULL;
	}
	app->http.config = config;
	app->http.router = app->router;
	app->http.routes = app->routes;
	app->http.nroutes = APP_ROUTES;
	for (size_t i = 0; i < APP_ROUTES; i++) {
		(void)snprintf(app->route_labels[i],
		    sizeof(app->route_labels[i]), "%s %s",
		    mk_method_name(app->routes[i].method),
		    app->routes[i].pattern);
		app->http.route_labels[i] = app->route_labels[i];
	}
	app->health.route_labels = app->http.route_labels;
	app->health.nroutes = APP_ROUTES;
	app->health.version = PACKAGE_VERSION;
	app->http.verifier = app->verifier;
	app->http.limiter = app->limiter;
	mk_http_cors_setup(&app->http, config);
	if (mk_request_id_seed(&app->http.ids) != 0) {
		mk_log(MK_LOG_ERROR, "no randomness for request ids");
		mk_app_free(app);
		return NULL;
	}
	return app;
}

void
mk_app_free(struct mk_app *app)
{
	if (app == NULL)
		return;
	free_parts(app);
	mk_router_free(app->router);
	free(app);
}

struct mk_http_service *
mk_app_http(struct mk_app *app)
{
	return &app->http;
}

/*
 * The statements of the tick's work count as background work: the
 * search index and the purge run on app->background_db.
 */
void
mk_app_tick(struct mk_app *app, int64_t now_ms)
{
	uint64_t purged = 0;

	if (app->repo == NULL)
		return;
	/* Each worker checks the replicas itself (store/replicas.h). */
	if (app->replicas != NULL)
		mk_replicas_tick(app->replicas, now_ms);
	mk_market_repo_tick(app->repo);
	/* New and changed markets become searchable within a second. */
	if (app->search != NULL)
		(void)mk_search_refresh(app->search);
	if (app->next_purge_ms == 0) {
		/* Spread the workers' purges over the interval. */
		app->next_purge_ms = now_ms +
		    app->config->idempotency_purge_interval_ms / 2 +
		    (int64_t)(app->http.ids.prefix %
			(uint64_t)(app->config->idempotency_purge_interval_ms /
				2 +
			    1));
		return;
	}
	if (now_ms < app->next_purge_ms)
		return;
	app->next_purge_ms =
	    now_ms + app->config->idempotency_purge_interval_ms;
	if (mk_market_repo_idem_purge(app->purge_repo, 1000, &purged) ==
		MK_OK &&
	    purged > 0)
		mk_log(MK_LOG_INFO,
		    "purged %llu expired Idempotency-Key record(s)",
		    (unsigned long long)purged);
}

int
mk_app_attach_loop(struct mk_app *app, struct mk_loop *loop)
{
	enum mk_err rc;

	if (app->search == NULL)
		return 0;
	rc = mk_search_attach(app->search, loop);
	if (rc != MK_OK) {
		mk_log(MK_LOG_ERROR,
		    "cannot attach the embedder to the worker's loop: %s",
		    mk_err_name(rc));
		return -1;
	}
	return 0;
}

/*
 * The job runner's wiring is markets/runner.c's, which markets-admin
 * run-jobs shares (admin/ cannot reach this file); the server's runners
 * come to it through here.
 */
int
mk_app_run_jobs(const struct mk_config *config, bool (*carry_on)(void))
{
	return mk_market_runner_run(config, carry_on, false, NULL);
}
