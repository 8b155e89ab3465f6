/*
 * The router (http layer); see router.h. Patterns are split into segments
 * once, at start; a match compares segments in order. The tables are a
 * few dozen routes, so a linear scan beats anything cleverer.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

struct compiled_route {
	const struct mk_route *route;
	const char *segments[MK_PATH_MAX_SEGMENTS]; /* NULL = a parameter */
	size_t segment_len[MK_PATH_MAX_SEGMENTS];
	size_t nsegments;
	size_t nliterals; /* segments that are not parameters */
};

struct mk_router {
	struct compiled_route *routes;
	size_t nroutes;
};

static int
compile(const struct mk_route *route, struct compiled_route *out)
{
	const char *p = route->pattern;
	size_t nparams = 0;

	out->route = route;
	out->nsegments = 0;
	if (p == NULL || p[0] != '/' || route->handler == NULL ||
	    route->method >= MK_METHOD_OTHER)
		return -1;
	p++;
	if (*p == '\0')
		return 0; /* "/" */
	for (;;) {
		size_t len = strcspn(p, "/");

		if (out->nsegments == MK_PATH_MAX_SEGMENTS)
			return -1;
		if (p[0] == ':') {
			if (len < 2 || nparams == MK_ROUTE_MAX_PARAMS)
				return -1;
			out->segments[out->nsegments] = NULL;
			nparams++;
		} else {
			out->segments[out->nsegments] = p;
			out->nliterals++;
		}
		out->segment_len[out->nsegments++] = len;
		p += len;
		if (*p == '\0')
			break;
		p++;
	}
	return 0;
}

struct mk_router *
mk_router_new(const struct mk_route *routes, size_t nroutes)
{
	struct mk_router *router = calloc(1, sizeof(*router));

	if (router == NULL)
		return NULL;
	router->routes =
	    calloc(nroutes == 0 ? 1 : nroutes, sizeof(*router->routes));
	if (router->routes == NULL) {
		free(router);
		return NULL;
	}
	for (size_t i = 0; i < nroutes; i++) {
		if (compile(&routes[i], &router->routes[i]) != 0) {
			mk_router_free(router);
			return NULL;
		}
	}
	router->nroutes = nroutes;
	return router;
}

void
mk_router_free(struct mk_router *router)
{
	if (router == NULL)
		return;
	free(router->routes);
	free(router);
}

/* Fills params when the path fits the pattern; returns 1 on a fit. */
static int
path_fits(const struct compiled_route *cr, char *const *segments,
    size_t nsegments, const char **params)
{
	size_t nparams = 0;

	if (cr->nsegments != nsegments)
		return 0;
	for (size_t i = 0; i < nsegments; i++) {
		if (cr->segments[i] == NULL) {
			/*
			 * A parameter never matches an empty segment
			 * ("/api/markets/").
			 */
			if (segments[i][0] == '\0')
				return 0;
			params[nparams++] = segments[i];
		} else if (strlen(segments[i]) != cr->segment_len[i] ||
		    memcmp(segments[i], cr->segments[i], cr->segment_len[i]) !=
			0) {
			return 0;
		}
	}
	return 1;
}

/*
 * The most literal segments among the patterns the path fits: a path is
 * served by its most specific patterns only ("/api/markets/search" by its
 * own route, not also by "/api/markets/:id"), so that its methods, its
 * Allow header and its 405s are its own.
 */
static size_t
most_literal(
    const struct mk_router *router, char *const *segments, size_t nsegments)
{
	const char *scratch[MK_ROUTE_MAX_PARAMS];
	size_t best = 0;

	for (size_t i = 0; i < router->nroutes; i++) {
		if (router->routes[i].nliterals > best &&
		    path_fits(&router->routes[i], segments, nsegments, scratch))
			best = router->routes[i].nliterals;
	}
	return best;
}

enum mk_err
mk_router_match(const struct mk_router *router, enum mk_method method,
    char *const *segments, size_t nsegments, const struct mk_route **route,
    const char **params, unsigned *allowed)
{
	const char *scratch[MK_ROUTE_MAX_PARAMS];
	enum mk_method want = method == MK_METHOD_HEAD ? MK_METHOD_GET : method;
	unsigned mask = 0;

	size_t best = most_literal(router, segments, nsegments);

	*route = NULL;
	for (size_t i = 0; i < router->nroutes; i++) {
		const struct compiled_route *cr = &router->routes[i];

		if (cr->nliterals != best ||
		    !path_fits(cr, segments, nsegments, scratch))
			continue;
		if (cr->route->method == want) {
			*route = cr->route;
			memcpy(params, scratch, sizeof(scratch));
			return MK_OK;
		}
		mask |= 1u << cr->route->method;
		if (cr->route->method == MK_METHOD_GET)
			mask |= 1u << MK_METHOD_HEAD;
	}
	if (mask == 0)
		return MK_ENOTFOUND;
	/* Every known path answers OPTIONS itself. */
	*allowed = mask | 1u << MK_METHOD_OPTIONS;
	return MK_EMETHOD;
}

unsigned
mk_router_path_flags(
    const struct mk_router *router, char *const *segments, size_t nsegments)
{
	const char *scratch[MK_ROUTE_MAX_PARAMS];
	size_t best = most_literal(router, segments, nsegments);
	unsigned flags = ~0u;
	bool any = false;

	for (size_t i = 0; i < router->nroutes; i++) {
		if (router->routes[i].nliterals == best &&
		    path_fits(
			&router->routes[i], segments, nsegments, scratch)) {
			flags &= router->routes[i].route->flags;
			any = true;
		}
	}
	return any ? flags : 0;
}

size_t
mk_router_format_allow(unsigned allowed, char *out, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return 0;
	out[0] = '\0';
	for (int m = 0; m < MK_METHOD_OTHER; m++) {
		const char *name = mk_method_name((enum mk_method)m);
		size_t n = strlen(name);

		if (!(allowed & (1u << m)))
			continue;
		if (len + n + (len ? 2 : 0) + 1 > size)
			break;
		if (len > 0) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		memcpy(out + len, name, n);
		len += n;
		out[len] = '\0';
	}
	return len;
}
