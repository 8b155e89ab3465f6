/*
 * Unit tests for the router (src/http/router.c): route tables that must
 * be refused when compiled, and matching over a table shaped like the
 * markets API — a route found with its parameters, 404 for an unknown
 * path, 405 with the mask of methods that would do (HEAD riding on GET,
 * OPTIONS always in it), and the Allow header text. Routes are tried in
 * table order, so where a literal segment and a parameter both fit the
 * earlier entry wins; both orders are tested below.
 */
#include <stdio.h>
#include <string.h>

#include "http/router.h"
#include "tap.h"

#define M(m) (1u << MK_METHOD_##m)

static enum mk_err
dummy_handler(void *context, struct mk_request *req, struct mk_response *resp)
{
	(void)context;
	(void)req;
	(void)resp;
	return MK_OK;
}

/* Routes are told apart by their index in the table, not by handler. */
static const struct mk_route api_routes[] = {
	{ MK_METHOD_GET, "/api/markets", MK_PERM_NONE, 0, dummy_handler,
	    NULL }, /* 0 */
	{ MK_METHOD_POST, "/api/markets", MK_PERM_WRITE, 0, dummy_handler,
	    NULL }, /* 1 */
	{ MK_METHOD_GET, "/api/markets/search", MK_PERM_NONE, 0, dummy_handler,
	    NULL }, /* 2 */
	{ MK_METHOD_GET, "/api/markets/:id", MK_PERM_NONE, 0, dummy_handler,
	    NULL }, /* 3 */
	{ MK_METHOD_PUT, "/api/markets/:id", MK_PERM_WRITE, 0, dummy_handler,
	    NULL }, /* 4 */
	{ MK_METHOD_PATCH, "/api/markets/:id", MK_PERM_WRITE, 0, dummy_handler,
	    NULL }, /* 5 */
	{ MK_METHOD_DELETE, "/api/markets/:id", MK_PERM_DELETE, 0,
	    dummy_handler, NULL }, /* 6 */
	{ MK_METHOD_GET, "/api/markets/:id/positions", MK_PERM_READ, 0,
	    dummy_handler, NULL }, /* 7 */
	{ MK_METHOD_POST, "/api/markets/:id/positions", MK_PERM_WRITE, 0,
	    dummy_handler, NULL }, /* 8 */
	{ MK_METHOD_GET, "/healthz", MK_PERM_NONE, MK_ROUTE_UNLIMITED,
	    dummy_handler, NULL },                                    /* 9 */
	{ MK_METHOD_GET, "/", MK_PERM_NONE, 0, dummy_handler, NULL }, /* 10 */
	{ MK_METHOD_GET, "/api/users/:uid/markets/:mid", MK_PERM_READ, 0,
	    dummy_handler, NULL }, /* 11 */
};

struct match_case {
	enum mk_method method;
	/* split on '/' as the request layer would, undecoded */
	const char *path;
	enum mk_err rc;
	int route; /* index in api_routes when MK_OK */
	const char *params[2];
	unsigned allowed; /* when MK_EMETHOD */
};

static const struct match_case match_cases[] = {
	{ MK_METHOD_GET, "/api/markets", MK_OK, 0, { NULL }, 0 },
	{ MK_METHOD_POST, "/api/markets", MK_OK, 1, { NULL }, 0 },
	{ MK_METHOD_HEAD, "/api/markets", MK_OK, 0, { NULL }, 0 },
	{ MK_METHOD_DELETE, "/api/markets", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(POST) | M(OPTIONS) },
	{ MK_METHOD_OPTIONS, "/api/markets", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(POST) | M(OPTIONS) },
	{ MK_METHOD_OTHER, "/api/markets", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(POST) | M(OPTIONS) },
	{ MK_METHOD_GET, "/api/markets/42", MK_OK, 3, { "42" }, 0 },
	{ MK_METHOD_HEAD, "/api/markets/42", MK_OK, 3, { "42" }, 0 },
	{ MK_METHOD_PUT, "/api/markets/42", MK_OK, 4, { "42" }, 0 },
	{ MK_METHOD_PATCH, "/api/markets/abc", MK_OK, 5, { "abc" }, 0 },
	{ MK_METHOD_DELETE, "/api/markets/7", MK_OK, 6, { "7" }, 0 },
	{ MK_METHOD_POST, "/api/markets/42", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(PUT) | M(PATCH) | M(DELETE) | M(OPTIONS) },
	/*
	 * A literal segment is more specific than a parameter: GET takes
	 * "search".
	 */
	{ MK_METHOD_GET, "/api/markets/search", MK_OK, 2, { NULL }, 0 },
	/*
	 * And "search" is only served by its own route: no PUT there, a 405
	 * with its own methods — not ":id" with id "search".
	 */
	{ MK_METHOD_PUT, "/api/markets/search", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(OPTIONS) },
	{ MK_METHOD_GET, "/api/markets/42/positions", MK_OK, 7, { "42" }, 0 },
	{ MK_METHOD_POST, "/api/markets/42/positions", MK_OK, 8, { "42" }, 0 },
	{ MK_METHOD_DELETE, "/api/markets/42/positions", MK_EMETHOD, -1,
	    { NULL }, M(GET) | M(HEAD) | M(POST) | M(OPTIONS) },
	{ MK_METHOD_GET, "/api/users/5/markets/9", MK_OK, 11, { "5", "9" }, 0 },
	{ MK_METHOD_GET, "/healthz", MK_OK, 9, { NULL }, 0 },
	{ MK_METHOD_POST, "/healthz", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(OPTIONS) },
	{ MK_METHOD_OPTIONS, "/healthz", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(OPTIONS) },
	{ MK_METHOD_GET, "/", MK_OK, 10, { NULL }, 0 },
	{ MK_METHOD_DELETE, "/", MK_EMETHOD, -1, { NULL },
	    M(GET) | M(HEAD) | M(OPTIONS) },
	/* An empty segment never fills a parameter. */
	{ MK_METHOD_GET, "/api/markets/", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_DELETE, "/api/markets/", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/api/markets//positions", MK_ENOTFOUND, -1, { NULL },
	    0 },
	{ MK_METHOD_GET, "/api/users//markets/9", MK_ENOTFOUND, -1, { NULL },
	    0 },
	{ MK_METHOD_GET, "/nope", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/api", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/api/markets/1/positions/2", MK_ENOTFOUND, -1,
	    { NULL }, 0 },
	{ MK_METHOD_GET, "/API/markets", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/healthzz", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/health", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_GET, "/healthz/", MK_ENOTFOUND, -1, { NULL }, 0 },
	{ MK_METHOD_OPTIONS, "/nope", MK_ENOTFOUND, -1, { NULL }, 0 },
};

/* Splits path (after its leading '/') into segments in mem; "/" gives none. */
static size_t
split_path(
    const char *path, char *mem, size_t memsize, char **segments, size_t max)
{
	size_t n = 0;
	char *p;

	(void)snprintf(mem, memsize, "%s", path + 1);
	if (path[1] == '\0')
		return 0;
	p = mem;
	for (;;) {
		char *slash = strchr(p, '/');

		if (n == max)
			break;
		segments[n++] = p;
		if (slash == NULL)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return n;
}

static void
test_match(const struct mk_router *router)
{
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]);
	     i++) {
		const struct match_case *c = &match_cases[i];
		char mem[256], *segments[MK_PATH_MAX_SEGMENTS];
		const char *params[MK_ROUTE_MAX_PARAMS] = { NULL };
		/* must be overwritten */
		const struct mk_route *route = &api_routes[0];
		unsigned allowed = 0;
		size_t nsegments;
		enum mk_err rc;

		nsegments = split_path(
		    c->path, mem, sizeof(mem), segments, MK_PATH_MAX_SEGMENTS);
		rc = mk_router_match(router, c->method, segments, nsegments,
		    &route, params, &allowed);
		tap_is_int(
		    rc, c->rc, "%s %s: rc", mk_method_name(c->method), c->path);
		if (c->rc == MK_OK) {
			int same = 1;

			tap_is_int(route != NULL ? route - api_routes : -1,
			    c->route, "%s %s: route index",
			    mk_method_name(c->method), c->path);
			for (int p = 0; p < 2; p++) {
				if (c->params[p] == NULL)
					continue;
				if (params[p] == NULL ||
				    strcmp(params[p], c->params[p]) != 0)
					same = 0;
			}
			tap_ok(same, "%s %s: parameters %s %s",
			    mk_method_name(c->method), c->path,
			    c->params[0] ? c->params[0] : "-",
			    c->params[1] ? c->params[1] : "-");
		} else {
			tap_ok(route == NULL, "%s %s: no route on failure",
			    mk_method_name(c->method), c->path);
		}
		if (c->rc == MK_EMETHOD)
			tap_is_int(allowed, c->allowed, "%s %s: allowed mask",
			    mk_method_name(c->method), c->path);
	}
}

/*
 * The same path with ":id" listed before "search": the literal still wins
 * (the most specific pattern, whatever the table's order).
 */
static void
test_order(void)
{
	static const struct mk_route routes[] = {
		{ MK_METHOD_GET, "/api/markets/:id", MK_PERM_NONE, 0,
		    dummy_handler, NULL },
		{ MK_METHOD_GET, "/api/markets/search", MK_PERM_NONE, 0,
		    dummy_handler, NULL },
	};
	struct mk_router *router = mk_router_new(routes, 2);
	char api[] = "api", markets[] = "markets", search[] = "search";
	char *segments[] = { api, markets, search };
	const char *params[MK_ROUTE_MAX_PARAMS] = { NULL };
	const struct mk_route *route = NULL;
	unsigned allowed = 0;
	enum mk_err rc;

	rc = mk_router_match(
	    router, MK_METHOD_GET, segments, 3, &route, params, &allowed);
	tap_ok(rc == MK_OK && route == &routes[1],
	    "with ':id' listed first, GET /api/markets/search is still the "
	    "literal route");
	mk_router_free(router);
}

struct bad_table_case {
	const char *name;
	struct mk_route route;
};

static const struct bad_table_case bad_tables[] = {
	{ "pattern without a leading '/'",
	    { MK_METHOD_GET, "api/markets", MK_PERM_NONE, 0, dummy_handler,
		NULL } },
	{ "empty pattern",
	    { MK_METHOD_GET, "", MK_PERM_NONE, 0, dummy_handler, NULL } },
	{ "NULL pattern",
	    { MK_METHOD_GET, NULL, MK_PERM_NONE, 0, dummy_handler, NULL } },
	{ "five parameters (max 4)",
	    { MK_METHOD_GET, "/:a/:b/:c/:d/:e", MK_PERM_NONE, 0, dummy_handler,
		NULL } },
	{ "':' alone",
	    { MK_METHOD_GET, "/api/:", MK_PERM_NONE, 0, dummy_handler, NULL } },
	{ "':' alone in the middle",
	    { MK_METHOD_GET, "/api/:/x", MK_PERM_NONE, 0, dummy_handler,
		NULL } },
	{ "17 segments (max 16)",
	    { MK_METHOD_GET, "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17",
		MK_PERM_NONE, 0, dummy_handler, NULL } },
	{ "NULL handler",
	    { MK_METHOD_GET, "/x", MK_PERM_NONE, 0, NULL, NULL } },
	{ "method OTHER",
	    { MK_METHOD_OTHER, "/x", MK_PERM_NONE, 0, dummy_handler, NULL } },
};

static void
test_bad_tables(void)
{
	static const struct mk_route good[] = {
		{ MK_METHOD_GET, "/:a/:b/:c/:d", MK_PERM_NONE, 0, dummy_handler,
		    NULL },
		{ MK_METHOD_GET, "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16",
		    MK_PERM_NONE, 0, dummy_handler, NULL },
	};
	struct mk_router *router;

	for (size_t i = 0; i < sizeof(bad_tables) / sizeof(bad_tables[0]);
	     i++) {
		/*
		 * After a good route, so a half-built router must be freed too.
		 */
		struct mk_route table[2] = { good[0], bad_tables[i].route };

		router = mk_router_new(table, 2);
		tap_ok(router == NULL, "mk_router_new refuses: %s",
		    bad_tables[i].name);
		mk_router_free(router);
	}
	router = mk_router_new(good, 2);
	tap_ok(router != NULL, "4 parameters and 16 segments are accepted");
	mk_router_free(router);

	router = mk_router_new(NULL, 0);
	tap_ok(router != NULL, "an empty table makes a router");
	if (router != NULL) {
		char x[] = "x";
		char *segments[] = { x };
		const char *params[MK_ROUTE_MAX_PARAMS];
		const struct mk_route *route;
		unsigned allowed = 0;

		tap_is_int(mk_router_match(router, MK_METHOD_GET, segments, 1,
			       &route, params, &allowed),
		    MK_ENOTFOUND, "which finds nothing");
	}
	mk_router_free(router);
	mk_router_free(NULL);
}

struct allow_case {
	unsigned allowed;
	size_t size;
	const char *want;
};

static const struct allow_case allow_cases[] = {
	{ M(GET) | M(HEAD) | M(OPTIONS), 96, "GET, HEAD, OPTIONS" },
	{ M(OPTIONS) | M(HEAD) | M(GET), 96, "GET, HEAD, OPTIONS" },
	{ M(GET) | M(HEAD) | M(POST) | M(PUT) | M(PATCH) | M(DELETE) |
		M(OPTIONS),
	    96, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" },
	{ M(DELETE), 96, "DELETE" },
	{ 0, 96, "" },
	{ M(OTHER) | M(GET), 96, "GET" },
	/* Truncation keeps whole names only. */
	{ M(GET) | M(HEAD) | M(OPTIONS), 19, "GET, HEAD, OPTIONS" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 18, "GET, HEAD" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 10, "GET, HEAD" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 9, "GET" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 4, "GET" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 3, "" },
	{ M(GET) | M(HEAD) | M(OPTIONS), 1, "" },
};

static void
test_format_allow(void)
{
	char out[100];
	size_t n;

	for (size_t i = 0; i < sizeof(allow_cases) / sizeof(allow_cases[0]);
	     i++) {
		const struct allow_case *c = &allow_cases[i];

		memset(out, '#', sizeof(out));
		n = mk_router_format_allow(c->allowed, out, c->size);
		tap_is_str(out, c->want,
		    "format_allow mask 0x%x into %zu bytes", c->allowed,
		    c->size);
		tap_is_int(n, strlen(c->want),
		    "format_allow mask 0x%x into %zu bytes: length", c->allowed,
		    c->size);
		tap_ok(out[c->size] == '#',
		    "format_allow mask 0x%x: nothing written past %zu bytes",
		    c->allowed, c->size);
	}
	out[0] = '#';
	n = mk_router_format_allow(M(GET), out, 0);
	tap_ok(n == 0 && out[0] == '#',
	    "format_allow into 0 bytes writes nothing");
}

/* The flags a whole path shares: what a 405 on that path is counted by. */
static void
test_path_flags(const struct mk_router *router)
{
	static const struct {
		const char *path[4];
		size_t n;
		unsigned want;
		const char *name;
	} cases[] = {
		{ { "healthz" }, 1, MK_ROUTE_UNLIMITED,
		    "/healthz: its only route is unlimited" },
		{ { "api", "markets" }, 2, 0, "/api/markets: limited" },
		{ { "api", "markets", "7" }, 3, 0, "/api/markets/7: limited" },
		{ { "nope" }, 1, 0, "/nope: no route, no flags" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *segments[4];

		for (size_t k = 0; k < cases[i].n; k++)
			segments[k] = (char *)cases[i].path[k];
		tap_is_int(mk_router_path_flags(router, segments, cases[i].n),
		    cases[i].want, "mk_router_path_flags %s", cases[i].name);
	}
}

int
main(void)
{
	struct mk_router *router;

	router = mk_router_new(
	    api_routes, sizeof(api_routes) / sizeof(api_routes[0]));
	tap_ok(router != NULL, "the API route table compiles");
	if (router != NULL) {
		test_match(router);
		test_path_flags(router);
	}
	mk_router_free(router);
	test_order();
	test_bad_tables();
	test_format_allow();
	return tap_done();
}
