/*
 * Metrics (core layer): counters, latency histograms by route and the
 * process gauges (workers busy and idle, connections open, the listen
 * queue) shared by the master and every worker of one server, for GET
 * /metrics. The master maps one shared anonymous region before it forks
 * (mk_metrics_setup); each worker adds into the shard of its slot
 * (mk_metrics_bind) with relaxed atomic adds, so a worker of the old
 * generation still draining after a reload may share a shard without
 * losing counts, and counts outlive the worker that made them
 * (Prometheus counters never go back). Before setup — unit tests,
 * markets-admin — counts go to a private region of the process. Reading
 * sums every shard.
 *
 * Gauges of a worker's own state (busy, its connections) live in its
 * slot's cell, which only it writes and the master clears when it reaps
 * it, so a worker that dies mid-request does not stay busy for ever.
 * Gauges of the whole server (live workers, the listen queue, the start
 * time) are the master's to set.
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
	/* FastCGI connections accepted, and requests handed to the app */
	MK_COUNTER_CONNECTIONS_ACCEPTED,
	MK_COUNTER_REQUESTS_ACCEPTED,
	/* a request began while every worker was busy (PHP-FPM's max children)
	 */
	MK_COUNTER_ALL_WORKERS_BUSY,
	/* transactions run again after a deadlock, lock wait or lost link */
	MK_COUNTER_DB_RETRIES,
	/* job runs, by outcome: done, failed (to be retried), dead */
	MK_COUNTER_JOBS_DONE,
	MK_COUNTER_JOBS_FAILED,
	MK_COUNTER_JOBS_DEAD,
	/* requests slower than slow_request_threshold (one log line each) */
	MK_COUNTER_SLOW_REQUESTS,
	MK_COUNTER__MAX
};

/* What the master knows of the whole server, as gauges. */
enum mk_gauge {
	MK_GAUGE_WORKERS, /* live FastCGI worker processes */
	/* connections waiting in the listening socket for an accept() */
	MK_GAUGE_LISTEN_QUEUE,
	MK_GAUGE_LISTEN_QUEUE_MAX,   /* the most seen since start */
	MK_GAUGE_LISTEN_QUEUE_LIMIT, /* the backlog: the most it can hold */
	MK_GAUGE_START_TIME,         /* when the master started, Unix seconds */
	MK_GAUGE__MAX
};

/*
 * How the process answering a scrape serves: one of a master's workers
 * (counts summed over the whole server), or alone under a process
 * manager that starts several (Apache mod_fcgid: every process counts,
 * and holds its search index, apart).
 */
enum mk_process_mode {
	MK_PROCESS_UNKNOWN, /* not serving: unit tests, markets-admin */
	MK_PROCESS_MASTER_WORKER,
	MK_PROCESS_FCGID,
	MK_PROCESS__MAX
};

/* Worker slots with a cell of their own (the master's table has as many). */
#define MK_METRICS_SLOTS 512

/* Routes a server may count requests for; the last index is "no route". */
#define MK_METRICS_ROUTES_MAX 32

/*
 * Maps the shared region (master, before forking). Returns 0, or -1 when
 * it cannot be mapped (counts then stay per process).
 */
int mk_metrics_setup(void);

/*
 * A serving process says how it serves, at its start: /metrics then says
 * which process answered (markets_process_info) and since when. Under
 * MK_PROCESS_FCGID, with no master, it also sets the server gauges a
 * master would (start time, one worker).
 */
void mk_metrics_process(enum mk_process_mode mode);

/* Makes this process count into the shard of worker slot (after fork). */
void mk_metrics_bind(unsigned slot);

/*
 * The master, after reaping the process of slot: its cell no longer
 * counts as busy or as holding connections.
 */
void mk_metrics_slot_reset(unsigned slot);

/*
 * A worker begins (true) or ends (false) running a request's code.
 * Beginning while every other worker is busy too counts
 * MK_COUNTER_ALL_WORKERS_BUSY.
 */
void mk_metrics_busy(bool busy);

/* A worker opened (+1) or closed (-1) a FastCGI connection. */
void mk_metrics_connections(int delta);

/* Sets a gauge (the master); raise keeps the larger of old and value. */
void mk_metrics_gauge_set(enum mk_gauge gauge, uint64_t value);
void mk_metrics_gauge_raise(enum mk_gauge gauge, uint64_t value);
uint64_t mk_metrics_gauge(enum mk_gauge gauge);

/* Adds one to a counter. */
void mk_metrics_count(enum mk_counter counter);

/*
 * Counts one answered request: route (0..MK_METRICS_ROUTES_MAX-1, or
 * MK_METRICS_ROUTES_MAX for none), its status and its duration, into
 * the route's histogram (buckets up to 30 s, the longest timeout; the
 * sum kept in microseconds, so it prints exactly).
 */
void mk_metrics_request(unsigned route, int status, uint64_t duration_us);

/* The sum of a counter over every shard. */
uint64_t mk_metrics_total(enum mk_counter counter);

/*
 * Appends every metric in the Prometheus text format (0.0.4);
 * route_labels[i] names route i ("GET /api/markets/:id"), nroutes of them;
 * version is the build's, for markets_build_info.
 */
void mk_metrics_render(struct mk_buf *out, const char *const *route_labels,
    size_t nroutes, const char *version);

#endif
