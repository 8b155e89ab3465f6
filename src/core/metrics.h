/*
 * Metrics (core layer): counters and a latency histogram shared by the
 * master and every worker of one server, for GET /metrics. The master
 * maps one shared anonymous region before it forks (mk_metrics_setup);
 * each worker adds into the shard of its slot (mk_metrics_bind) with
 * relaxed atomic adds, so a worker of the old generation still draining
 * after a reload may share a shard without losing counts, and counts
 * outlive the worker that made them (Prometheus counters never go
 * back). Before setup — unit tests, markets-admin — counts go to a
 * private shard of the process. Reading sums every shard.
 *
 * Nothing here allocates after setup; the region lives until exit.
 */
#ifndef MK_METRICS_H
#define MK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_buf;

enum mk_counter {
	MK_COUNTER_CACHE_HITS,
	MK_COUNTER_CACHE_MISSES,
	MK_COUNTER_CACHE_FILLS,
	MK_COUNTER_CACHE_INVALIDATIONS,
	/* reads or invalidations memcached did not answer */
	MK_COUNTER_CACHE_ERRORS,
	/* readers that waited for another's fill */
	MK_COUNTER_CACHE_LEASE_WAITS,
	/* Which of the two: the statement's db handle says (store/db.h). */
	MK_COUNTER_DB_QUERIES,            /* run while answering a request */
	MK_COUNTER_DB_BACKGROUND_QUERIES, /* run by ticks and job runners */
	MK_COUNTER_RATELIMIT_REJECTED,
	MK_COUNTER_RATELIMIT_FAILED_OPEN,
	MK_COUNTER_MEMCACHED_OUTAGES,
	MK_COUNTER_WORKER_RESTARTS,
	MK_COUNTER__MAX
};

/* Routes a server may count requests for; the last index is "no route". */
#define MK_METRICS_ROUTES_MAX 32

/*
 * Maps the shared region (master, before forking). Returns 0, or -1 when
 * it cannot be mapped (counts then stay per process).
 */
int mk_metrics_setup(void);

/* Makes this process count into the shard of worker slot (after fork). */
void mk_metrics_bind(unsigned slot);

/* Adds one to a counter. */
void mk_metrics_count(enum mk_counter counter);

/*
 * Counts one answered request: route (0..MK_METRICS_ROUTES_MAX-1, or
 * MK_METRICS_ROUTES_MAX for none), its status and its duration.
 */
void mk_metrics_request(unsigned route, int status, uint64_t duration_us);

/* The sum of a counter over every shard. */
uint64_t mk_metrics_total(enum mk_counter counter);

/*
 * Appends every metric in the Prometheus text format (0.0.4);
 * route_labels[i] names route i ("GET /api/markets/:id"), nroutes of them.
 */
void mk_metrics_render(
    struct mk_buf *out, const char *const *route_labels, size_t nroutes);

#endif
