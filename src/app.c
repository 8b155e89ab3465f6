/*
 * The application wiring; see app.h. The route table is here so that one
 * screen shows every endpoint the server answers and what it requires.
 */
#include <stdlib.h>

#include "app.h"
#include "core/log.h"
#include "http/health.h"
#include "http/router.h"

static const struct mk_route routes[] = {
	{ MK_METHOD_GET, "/healthz", MK_PERM_NONE, MK_ROUTE_UNLIMITED, mk_health_live },
};

struct mk_app *
mk_app_new(const struct mk_config *config)
{
	struct mk_app *app = calloc(1, sizeof(*app));

	if (app == NULL) {
		mk_log(MK_LOG_ERROR, "out of memory building the application");
		return NULL;
	}
	app->config = config;
	app->router = mk_router_new(routes, sizeof(routes) / sizeof(routes[0]));
	if (app->router == NULL) {
		mk_log(MK_LOG_ERROR, "cannot build the router (bad route table or out of memory)");
		free(app);
		return NULL;
	}
	app->http.app = app;
	app->http.config = config;
	app->http.router = app->router;
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
	mk_router_free(app->router);
	free(app);
}

struct mk_http_service *
mk_app_http(struct mk_app *app)
{
	return &app->http;
}
