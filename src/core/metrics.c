/*
 * Metrics (core layer); see metrics.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/metrics.h"

#define SHARDS 16

/* The statuses counted by name; anything else counts as "other". */
static const int statuses[] = {
	200,
	201,
	202,
	204,
	304,
	400,
	401,
	403,
	404,
	405,
	409,
	412,
	413,
	414,
	415,
	422,
	429,
	431,
	500,
	502,
	503,
	504,
};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]) + 1)

/*
 * Histogram bounds in microseconds, as Prometheus's `le` in seconds: up to
 * 30 s, request_timeout's default and the longest a request may wait.
 */
static const uint64_t bounds_us[] = {
	500,
	1000,
	2500,
	5000,
	10000,
	25000,
	50000,
	100000,
	250000,
	500000,
	1000000,
	2500000,
	5000000,
	10000000,
	30000000,
};
#define NBOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))
#define NROUTES (MK_METRICS_ROUTES_MAX + 1)

struct shard {
	uint64_t counters[MK_COUNTER__MAX];
	uint64_t requests[NROUTES][NSTATUS];
	/* per route and bucket, not cumulative; last: +Inf */
	uint64_t latency[NROUTES][NBOUNDS + 1];
	uint64_t latency_sum_us[NROUTES];
} __attribute__((aligned(64)));

/* A worker slot's own gauges: written by its process, cleared by the master. */
struct slot_cell {
	uint64_t busy;        /* 0 or 1 */
	uint64_t connections; /* FastCGI connections open */
} __attribute__((aligned(64)));

struct region {
	uint64_t gauges[MK_GAUGE__MAX];
	/*
	 * Workers running a request now: the sum of the slots' busy, kept
	 * apart so that beginning a request reads one cell, not every slot.
	 */
	uint64_t busy_now;
	struct slot_cell slots[MK_METRICS_SLOTS];
	struct shard shards[SHARDS];
};

static struct region private_region;
static struct region *region = &private_region;
static size_t nshards = 1;
static struct shard *mine = &private_region.shards[0];
static struct slot_cell *my_cell = &private_region.slots[0];

/* This process's own: how it serves and when it started (Unix seconds). */
static enum mk_process_mode process_mode;
static uint64_t process_started;

static const char *const process_modes[MK_PROCESS__MAX] = {
	[MK_PROCESS_UNKNOWN] = "none",
	[MK_PROCESS_MASTER_WORKER] = "master-worker",
	[MK_PROCESS_FCGID] = "fcgid",
};

int
mk_metrics_setup(void)
{
	void *mem = mmap(NULL, sizeof(struct region), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return -1;
	region = mem;
	nshards = SHARDS;
	mine = &region->shards[0];
	my_cell = &region->slots[0];
	region->gauges[MK_GAUGE_START_TIME] = (uint64_t)time(NULL);
	return 0;
}

void
mk_metrics_process(enum mk_process_mode mode)
{
	process_mode = mode < MK_PROCESS__MAX ? mode : MK_PROCESS_UNKNOWN;
	process_started = (uint64_t)time(NULL);
	if (mode == MK_PROCESS_FCGID) {
		/* No master to set them: this process is the whole server. */
		region->gauges[MK_GAUGE_START_TIME] = process_started;
		region->gauges[MK_GAUGE_WORKERS] = 1;
	}
}

void
mk_metrics_bind(unsigned slot)
{
	mine = &region->shards[slot % nshards];
	my_cell = &region->slots[slot % MK_METRICS_SLOTS];
}

static void
add(uint64_t *cell, uint64_t n)
{
	(void)__atomic_fetch_add(cell, n, __ATOMIC_RELAXED);
}

static uint64_t
load(const uint64_t *cell)
{
	return __atomic_load_n(cell, __ATOMIC_RELAXED);
}

static void
store(uint64_t *cell, uint64_t value)
{
	__atomic_store_n(cell, value, __ATOMIC_RELAXED);
}

void
mk_metrics_slot_reset(unsigned slot)
{
	struct slot_cell *cell = &region->slots[slot % MK_METRICS_SLOTS];

	/* It died busy: what it added to busy_now goes with it. */
	if (__atomic_exchange_n(&cell->busy, 0, __ATOMIC_RELAXED) != 0)
		(void)__atomic_fetch_sub(
		    &region->busy_now, 1, __ATOMIC_RELAXED);
	store(&cell->connections, 0);
}

void
mk_metrics_busy(bool busy)
{
	uint64_t workers, now;

	if (!busy) {
		/* The cell first: a death in between leaves busy_now high. */
		store(&my_cell->busy, 0);
		(void)__atomic_fetch_sub(
		    &region->busy_now, 1, __ATOMIC_RELAXED);
		return;
	}
	now = __atomic_add_fetch(&region->busy_now, 1, __ATOMIC_RELAXED);
	store(&my_cell->busy, 1);
	workers = load(&region->gauges[MK_GAUGE_WORKERS]);
	if (workers > 0 && now >= workers)
		mk_metrics_count(MK_COUNTER_ALL_WORKERS_BUSY);
}

void
mk_metrics_connections(int delta)
{
	/* Only this process writes its cell: no other writer to race. */
	store(&my_cell->connections,
	    load(&my_cell->connections) + (uint64_t)(int64_t)delta);
}

void
mk_metrics_gauge_set(enum mk_gauge gauge, uint64_t value)
{
	store(&region->gauges[gauge], value);
}

void
mk_metrics_gauge_raise(enum mk_gauge gauge, uint64_t value)
{
	uint64_t old = load(&region->gauges[gauge]);

	while (old < value &&
	    !__atomic_compare_exchange_n(&region->gauges[gauge], &old, value,
		true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

uint64_t
mk_metrics_gauge(enum mk_gauge gauge)
{
	return load(&region->gauges[gauge]);
}

void
mk_metrics_count(enum mk_counter counter)
{
	add(&mine->counters[counter], 1);
}

static size_t
status_index(int status)
{
	for (size_t i = 0; i < NSTATUS - 1; i++) {
		if (statuses[i] == status)
			return i;
	}
	return NSTATUS - 1;
}

void
mk_metrics_request(unsigned route, int status, uint64_t duration_us)
{
	size_t bucket = 0;

	if (route > MK_METRICS_ROUTES_MAX)
		route = MK_METRICS_ROUTES_MAX;
	add(&mine->requests[route][status_index(status)], 1);
	while (bucket < NBOUNDS && duration_us > bounds_us[bucket])
		bucket++;
	add(&mine->latency[route][bucket], 1);
	add(&mine->latency_sum_us[route], duration_us);
}

uint64_t
mk_metrics_total(enum mk_counter counter)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < nshards; i++)
		sum += load(&region->shards[i].counters[counter]);
	return sum;
}

static void
put_u64(struct mk_buf *out, uint64_t v)
{
	mk_buf_put_u64(out, v);
}

/* Writes a label value, escaped as the text format asks. */
static void
put_label(struct mk_buf *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			mk_buf_putc(out, '\\');
		if (*p == '\n') {
			mk_buf_puts(out, "\\n");
			continue;
		}
		mk_buf_putc(out, *p);
	}
}

/* "# HELP name help" and "# TYPE name type". */
static void
put_family(
    struct mk_buf *out, const char *name, const char *help, const char *type)
{
	mk_buf_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
put_sample(struct mk_buf *out, const char *name, uint64_t value)
{
	mk_buf_puts(out, name);
	mk_buf_putc(out, ' ');
	put_u64(out, value);
	mk_buf_putc(out, '\n');
}

/*
 * Microseconds as seconds, exactly: integer arithmetic, no float. With
 * trim, the fraction loses its trailing zeros (a bucket's `le`, "0.0025",
 * "30", as before); without, it keeps all six (a sum).
 */
static void
put_seconds(struct mk_buf *out, uint64_t us, bool trim)
{
	char fraction[8];
	size_t len = 6;

	put_u64(out, us / 1000000);
	(void)snprintf(
	    fraction, sizeof(fraction), "%06u", (unsigned)(us % 1000000));
	while (trim && len > 0 && fraction[len - 1] == '0')
		len--;
	if (len == 0)
		return;
	mk_buf_putc(out, '.');
	mk_buf_append(out, fraction, len);
}

static const char *
route_label(const char *const *route_labels, size_t r)
{
	return r == MK_METRICS_ROUTES_MAX ? "none" : route_labels[r];
}

static void
render_requests(
    struct mk_buf *out, const char *const *route_labels, size_t nroutes)
{
	put_family(out, "markets_http_requests_total",
	    "Requests answered, by route and status.", "counter");
	for (size_t r = 0; r < NROUTES; r++) {
		if (r >= nroutes && r != MK_METRICS_ROUTES_MAX)
			continue;
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t sum = 0;

			for (size_t i = 0; i < nshards; i++)
				sum += load(&region->shards[i].requests[r][s]);
			if (sum == 0)
				continue;
			mk_buf_puts(
			    out, "markets_http_requests_total{route=\"");
			put_label(out, route_label(route_labels, r));
			mk_buf_puts(out, "\",status=\"");
			if (s == NSTATUS - 1)
				mk_buf_puts(out, "other");
			else
				put_u64(out, (uint64_t)statuses[s]);
			mk_buf_puts(out, "\"} ");
			put_u64(out, sum);
			mk_buf_putc(out, '\n');
		}
	}
}

/* One route's histogram series; nothing for a route never answered. */
static void
render_route_latency(struct mk_buf *out, const char *label, size_t r)
{
	static const char name[] = "markets_http_request_duration_seconds";
	uint64_t buckets[NBOUNDS + 1] = { 0 }, cumulative = 0, sum_us = 0;

	for (size_t i = 0; i < nshards; i++) {
		for (size_t b = 0; b <= NBOUNDS; b++)
			buckets[b] += load(&region->shards[i].latency[r][b]);
		sum_us += load(&region->shards[i].latency_sum_us[r]);
	}
	for (size_t b = 0; b <= NBOUNDS; b++)
		cumulative += buckets[b];
	if (cumulative == 0)
		return;
	cumulative = 0;
	for (size_t b = 0; b <= NBOUNDS; b++) {
		cumulative += buckets[b];
		mk_buf_printf(out, "%s_bucket{route=\"", name);
		put_label(out, label);
		mk_buf_puts(out, "\",le=\"");
		if (b == NBOUNDS)
			mk_buf_puts(out, "+Inf");
		else
			put_seconds(out, bounds_us[b], true);
		mk_buf_puts(out, "\"} ");
		put_u64(out, cumulative);
		mk_buf_putc(out, '\n');
	}
	mk_buf_printf(out, "%s_sum{route=\"", name);
	put_label(out, label);
	mk_buf_puts(out, "\"} ");
	put_seconds(out, sum_us, false);
	mk_buf_printf(out, "\n%s_count{route=\"", name);
	put_label(out, label);
	mk_buf_puts(out, "\"} ");
	put_u64(out, cumulative);
	mk_buf_putc(out, '\n');
}

static void
render_latency(
    struct mk_buf *out, const char *const *route_labels, size_t nroutes)
{
	put_family(out, "markets_http_request_duration_seconds",
	    "Time from a request's arrival in the app to its answer, by route.",
	    "histogram");
	for (size_t r = 0; r < NROUTES; r++) {
		if (r < nroutes || r == MK_METRICS_ROUTES_MAX)
			render_route_latency(
			    out, route_label(route_labels, r), r);
	}
}

/* The gauges of the processes: workers, connections, the listen queue. */
static void
render_processes(struct mk_buf *out, const char *version)
{
	uint64_t busy = 0, connections = 0, workers, started;

	for (size_t i = 0; i < MK_METRICS_SLOTS; i++) {
		busy += load(&region->slots[i].busy);
		connections += load(&region->slots[i].connections);
	}
	workers = mk_metrics_gauge(MK_GAUGE_WORKERS);
	put_family(out, "markets_workers",
	    "FastCGI worker processes, by state: busy (running a request, "
	    "this scrape's included) or idle.",
	    "gauge");
	mk_buf_printf(out,
	    "markets_workers{state=\"busy\"} %llu\n"
	    "markets_workers{state=\"idle\"} %llu\n",
	    (unsigned long long)busy,
	    (unsigned long long)(workers > busy ? workers - busy : 0));
	put_family(out, "markets_fastcgi_connections_open",
	    "FastCGI connections the workers hold open.", "gauge");
	put_sample(out, "markets_fastcgi_connections_open", connections);
	put_family(out, "markets_listen_queue_length",
	    "Connections waiting in the listening socket for a worker, at "
	    "the master's last look (every second).",
	    "gauge");
	put_sample(out, "markets_listen_queue_length",
	    mk_metrics_gauge(MK_GAUGE_LISTEN_QUEUE));
	put_family(out, "markets_listen_queue_max_length",
	    "The longest listen queue seen since the master started.", "gauge");
	put_sample(out, "markets_listen_queue_max_length",
	    mk_metrics_gauge(MK_GAUGE_LISTEN_QUEUE_MAX));
	put_family(out, "markets_listen_queue_limit",
	    "Connections the listen queue holds (the backlog).", "gauge");
	put_sample(out, "markets_listen_queue_limit",
	    mk_metrics_gauge(MK_GAUGE_LISTEN_QUEUE_LIMIT));
	started = mk_metrics_gauge(MK_GAUGE_START_TIME);
	put_family(out, "markets_start_time_seconds",
	    "When the master started, in seconds since the Unix epoch.",
	    "gauge");
	put_sample(out, "markets_start_time_seconds", started);
	put_family(out, "markets_uptime_seconds",
	    "Seconds since the master started.", "gauge");
	put_sample(out, "markets_uptime_seconds",
	    started > 0 && (uint64_t)time(NULL) > started
		? (uint64_t)time(NULL) - started
		: 0);
	put_family(out, "markets_process_info",
	    "The process that answered this scrape: its pid, how it serves "
	    "(master-worker: the counts are every worker's; fcgid: its own "
	    "alone) and its start (Unix seconds), value 1.",
	    "gauge");
	mk_buf_printf(out,
	    "markets_process_info{pid=\"%ld\",mode=\"%s\",started=\"%llu\"} "
	    "1\n",
	    (long)getpid(), process_modes[process_mode],
	    (unsigned long long)process_started);
	put_family(out, "markets_process_start_time_seconds",
	    "When the process that answered this scrape started, in seconds "
	    "since the Unix epoch.",
	    "gauge");
	put_sample(out, "markets_process_start_time_seconds", process_started);
	put_family(out, "markets_build_info",
	    "The running build: its version as a label, value 1.", "gauge");
	mk_buf_puts(out, "markets_build_info{version=\"");
	put_label(out, version);
	mk_buf_puts(out, "\"} 1\n");
}

/* A counter family with one label, one series per (value, counter). */
static void
render_labelled(struct mk_buf *out, const char *name, const char *help,
    const char *label, const char *const *values,
    const enum mk_counter *counters, size_t n)
{
	put_family(out, name, help, "counter");
	for (size_t i = 0; i < n; i++)
		mk_buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label,
		    values[i],
		    (unsigned long long)mk_metrics_total(counters[i]));
}

void
mk_metrics_render(struct mk_buf *out, const char *const *route_labels,
    size_t nroutes, const char *version)
{
	static const struct {
		const char *name;
		const char *help;
		enum mk_counter counter;
	} counters[] = {
		{ "markets_cache_hits_total",
		    "Market documents served from memcached.",
		    MK_COUNTER_CACHE_HITS },
		{ "markets_cache_misses_total",
		    "Market documents not found in memcached.",
		    MK_COUNTER_CACHE_MISSES },
		{ "markets_cache_fills_total",
		    "Market documents stored after a miss.",
		    MK_COUNTER_CACHE_FILLS },
		{ "markets_cache_invalidations_total",
		    "Market documents deleted after a write.",
		    MK_COUNTER_CACHE_INVALIDATIONS },
		{ "markets_cache_errors_total",
		    "Cache reads or invalidations memcached did not answer.",
		    MK_COUNTER_CACHE_ERRORS },
		{ "markets_cache_lease_waits_total",
		    "Reads that waited for another worker's fill.",
		    MK_COUNTER_CACHE_LEASE_WAITS },
		{ "markets_db_queries_total",
		    "Statements run on MariaDB while answering requests.",
		    MK_COUNTER_DB_QUERIES },
		{ "markets_db_background_queries_total",
		    "Statements run on MariaDB by background work (index "
		    "refresh, purges, job runners).",
		    MK_COUNTER_DB_BACKGROUND_QUERIES },
		{ "markets_db_transaction_retries_total",
		    "Transactions run again after a deadlock, a lock wait "
		    "timeout or a lost connection.",
		    MK_COUNTER_DB_RETRIES },
		{ "markets_rate_limit_rejections_total",
		    "Requests answered 429.", MK_COUNTER_RATELIMIT_REJECTED },
		{ "markets_rate_limit_failed_open_total",
		    "Requests let through unchecked while memcached was down.",
		    MK_COUNTER_RATELIMIT_FAILED_OPEN },
		{ "markets_memcached_outages_total",
		    "Times a worker lost memcached.",
		    MK_COUNTER_MEMCACHED_OUTAGES },
		{ "markets_worker_restarts_total",
		    "Workers that died and were replaced.",
		    MK_COUNTER_WORKER_RESTARTS },
		{ "markets_fastcgi_connections_accepted_total",
		    "FastCGI connections the workers accepted.",
		    MK_COUNTER_CONNECTIONS_ACCEPTED },
		{ "markets_http_requests_accepted_total",
		    "Requests received whole and handed to the application "
		    "(answered ones are markets_http_requests_total).",
		    MK_COUNTER_REQUESTS_ACCEPTED },
		{ "markets_workers_all_busy_total",
		    "Requests that began while every worker was busy "
		    "(PHP-FPM's "
		    "max children reached): more would queue.",
		    MK_COUNTER_ALL_WORKERS_BUSY },
		{ "markets_http_slow_requests_total",
		    "Requests slower than slow_request_threshold, each logged "
		    "with its phases.",
		    MK_COUNTER_SLOW_REQUESTS },
	};
	static const char *const outcomes[] = { "done", "failed", "dead" };
	static const enum mk_counter job_counters[] = {
		MK_COUNTER_JOBS_DONE,
		MK_COUNTER_JOBS_FAILED,
		MK_COUNTER_JOBS_DEAD,
	};

	/* A comment line (text format 0.0.4): who counted what follows. */
	if (process_mode == MK_PROCESS_FCGID)
		mk_buf_printf(out,
		    "# markets: mode fcgid (Apache mod_fcgid): every count "
		    "below is this process's own (pid %ld), as is its search "
		    "index; Apache runs several processes and a scrape reaches "
		    "one, so sum them by markets_process_info's pid\n",
		    (long)getpid());
	else if (process_mode == MK_PROCESS_MASTER_WORKER)
		mk_buf_printf(out,
		    "# markets: mode master-worker: the counts below are the "
		    "whole server's, every worker's of one master (pid %ld "
		    "answered)\n",
		    (long)getpid());
	render_requests(out, route_labels, nroutes);
	render_latency(out, route_labels, nroutes);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		put_family(out, counters[i].name, counters[i].help, "counter");
		put_sample(out, counters[i].name,
		    mk_metrics_total(counters[i].counter));
	}
	render_labelled(out, "markets_job_runs_total",
	    "Job runs by outcome: done, failed (to be retried), dead (failed "
	    "for the last time).",
	    "outcome", outcomes, job_counters, 3);
	render_processes(out, version);
}
