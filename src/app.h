/*
 * The application wiring: the one place that knows which parts are
 * stacked (router and route table now; repositories, cache decorator and
 * services as they arrive). A struct mk_app is worker-lifetime: made by
 * each worker after fork, freed when it exits; it never points into a
 * request arena. Handlers receive it and take what they need from it.
 */
#ifndef MK_APP_H
#define MK_APP_H

#include "http/middleware.h"

struct mk_config;
struct mk_router;

struct mk_app {
	const struct mk_config *config;
	struct mk_router *router;
	struct mk_http_service http;
};

/* Builds the worker's application. Returns NULL (and logs why) on failure. */
struct mk_app *mk_app_new(const struct mk_config *config);

void mk_app_free(struct mk_app *app);

/* The middleware chain's state, for the server layer. */
struct mk_http_service *mk_app_http(struct mk_app *app);

#endif
