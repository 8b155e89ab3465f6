/*
 * The router (http layer): a table of routes, each a method, a path
 * pattern with `:name` parameters, the permission it needs and its
 * handler. Matching tells apart "no such path" (404) from "path known,
 * method not" (405 with the methods that would do). The router is
 * worker-lifetime and read-only once made.
 */
#ifndef MK_ROUTER_H
#define MK_ROUTER_H

#include <stddef.h>

#include "auth/roles.h"
#include "core/err.h"
#include "http/request.h"

struct mk_response;

/* Route flags. */
#define MK_ROUTE_UNLIMITED 0x1u /* not counted by the rate limiter */
/*
 * A cheap read whose rate-limit count may be decided after it ran, in the
 * same memcached round trip as its own lookup (the cached market read).
 */
#define MK_ROUTE_LIMIT_AFTER 0x2u

/*
 * A handler fills resp (status, headers, body) and returns MK_OK, or
 * returns an error code for the central error writer to answer. context
 * is its route's: the one struct its module declares for its handlers
 * (struct mk_markets_context, struct mk_health_context, ...), made by
 * the wiring; the handler takes it back as that type on its first line.
 * No handler sees more of the application than its context holds.
 */
typedef enum mk_err (*mk_handler_fn)(
    void *context, struct mk_request *req, struct mk_response *resp);

struct mk_route {
	enum mk_method method;
	const char *pattern; /* "/api/markets/:id" */
	enum mk_permission permission;
	unsigned flags;
	mk_handler_fn handler;
	void *context; /* handed to handler; NULL for one that needs none */
};

struct mk_router;

/*
 * Compiles a route table (which must outlive the router). Returns NULL
 * when out of memory or when a pattern is malformed (not absolute, too
 * many segments or parameters, an empty parameter name).
 */
struct mk_router *mk_router_new(const struct mk_route *routes, size_t nroutes);

void mk_router_free(struct mk_router *router);

/*
 * Finds the route for method and the decoded path segments. HEAD matches
 * GET routes. Returns MK_OK with *route set and params[] filled in
 * pattern order; MK_ENOTFOUND when no pattern matches the path;
 * MK_EMETHOD when some do, with *allowed set to a bit mask of the
 * methods (1u << enum mk_method) that would match.
 */
enum mk_err mk_router_match(const struct mk_router *router,
    enum mk_method method, char *const *segments, size_t nsegments,
    const struct mk_route **route, const char **params, unsigned *allowed);

/*
 * The flags every route at this path shares (bitwise AND), for answers
 * about the path itself such as a 405: a path whose routes are all
 * MK_ROUTE_UNLIMITED is unlimited whatever the method. 0 when no route
 * has this path.
 */
unsigned mk_router_path_flags(
    const struct mk_router *router, char *const *segments, size_t nsegments);

/* Writes an Allow header value ("GET, HEAD, OPTIONS") for a method mask. */
size_t mk_router_format_allow(unsigned allowed, char *out, size_t size);

#endif
