/*
 * Health and metrics endpoints (http layer): answered by the worker
 * itself, never rate limited, cheap enough for a load balancer or a
 * Prometheus server to poll.
 */
#ifndef MK_HEALTH_H
#define MK_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cidr.h"
#include "core/err.h"

/*
 * A worker's last readiness probe. /readyz answers from it while it is
 * under MK_READY_PROBE_MAX_AGE_MS old, so that polling it (any client may:
 * it is not rate limited) costs the database and memcached at most one
 * ping each per worker per second.
 */
#define MK_READY_PROBE_MAX_AGE_MS 1000

struct mk_ready_probe {
	bool valid;
	int64_t at_ms; /* monotonic */
	enum mk_err database, memcached;
};

struct mk_arena;
struct mk_buf;
struct mk_cache;
struct mk_db;
struct mk_replicas;
struct mk_request;
struct mk_response;

/*
 * Lines a part outside http adds to /metrics at scrape time (the job
 * queue's counts, which live in MariaDB, not in any worker): render
 * appends Prometheus text to out, or nothing when it cannot tell.
 */
struct mk_health_gauge {
	void (*render)(void *arg, struct mk_arena *arena, struct mk_buf *out);
	void *arg;
};

/*
 * What the health routes see, made by the wiring (worker-lifetime): the
 * parts /readyz probes (NULL: not configured), who may read /metrics and
 * what it names, and the gauges other parts registered.
 */
struct mk_health_context {
	struct mk_db *db;
	struct mk_cache *cache;
	/* read replicas: shown by /readyz and /metrics, never fail them */
	struct mk_replicas *replicas;
	struct mk_cidr_list metrics_allow;
	const char *const *route_labels; /* "GET /api/me", one per route */
	size_t nroutes;
	const char *version;          /* the build's, for markets_build_info */
	struct mk_health_gauge gauge; /* render NULL: none */
	struct mk_ready_probe ready_probe;
};

/* GET /healthz: 200 while the worker answers. */
enum mk_err mk_health_live(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * GET /readyz: 200 when the database and memcached (when configured)
 * answer; else 503 unavailable naming the ones that did not, or "database
 * not configured" (no route but the health ones works without it, so a
 * load balancer must not send traffic there). A 200 also lists the read
 * replicas as this worker sees them ("replicas": address, state ok,
 * lagging or down, lag_seconds): a replica out of service never makes it
 * a 503, since reads then go to the primary. The answer is at most
 * MK_READY_PROBE_MAX_AGE_MS old (the context's ready_probe).
 */
enum mk_err mk_health_ready(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * GET /metrics: the Prometheus text of every worker's counts (see
 * core/metrics.h), for addresses in metrics_allow; 403 for others.
 */
enum mk_err mk_health_metrics(
    void *context, struct mk_request *req, struct mk_response *resp);

#endif
