/*
 * Health and metrics endpoints (http layer): answered by the worker
 * itself, never rate limited, cheap enough for a load balancer or a
 * Prometheus server to poll.
 */
#ifndef MK_HEALTH_H
#define MK_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

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

struct mk_app;
struct mk_request;
struct mk_response;

/* GET /healthz: 200 while the worker answers. */
enum mk_err mk_health_live(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp);

/*
 * GET /readyz: 200 when the database and memcached (each when configured)
 * answer; else 503 unavailable naming the ones that did not. The answer
 * is at most MK_READY_PROBE_MAX_AGE_MS old (app->ready_probe).
 */
enum mk_err mk_health_ready(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp);

/*
 * GET /metrics: the Prometheus text of every worker's counts (see
 * core/metrics.h), for addresses in metrics_allow; 403 for others.
 */
enum mk_err mk_health_metrics(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp);

#endif
