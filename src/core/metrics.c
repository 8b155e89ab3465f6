/*
 * Metrics (core layer); see metrics.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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

/* Histogram bounds in microseconds, as Prometheus's `le` in seconds. */
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
};
#define NBOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct shard {
	uint64_t counters[MK_COUNTER__MAX];
	uint64_t requests[MK_METRICS_ROUTES_MAX + 1][NSTATUS];
	/* per bucket, not cumulative; last: +Inf */
	uint64_t latency[NBOUNDS + 1];
	uint64_t latency_sum_us;
	uint64_t latency_count;
} __attribute__((aligned(64)));

static struct shard private_shard;
static struct shard *shards = &private_shard;
static size_t nshards = 1;
static struct shard *mine = &private_shard;

int
mk_metrics_setup(void)
{
	void *region = mmap(NULL, sizeof(struct shard) * SHARDS,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (region == MAP_FAILED)
		return -1;
	shards = region;
	nshards = SHARDS;
	mine = &shards[0];
	return 0;
}

void
mk_metrics_bind(unsigned slot)
{
	mine = &shards[slot % nshards];
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
	add(&mine->latency[bucket], 1);
	add(&mine->latency_sum_us, duration_us);
	add(&mine->latency_count, 1);
}

uint64_t
mk_metrics_total(enum mk_counter counter)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < nshards; i++)
		sum += load(&shards[i].counters[counter]);
	return sum;
}

static void
put_u64(struct mk_buf *out, uint64_t v)
{
	char digits[24];

	(void)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	mk_buf_puts(out, digits);
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

static void
put_counter(struct mk_buf *out, const char *name, const char *help,
    enum mk_counter counter)
{
	mk_buf_puts(out, "# HELP ");
	mk_buf_puts(out, name);
	mk_buf_putc(out, ' ');
	mk_buf_puts(out, help);
	mk_buf_puts(out, "\n# TYPE ");
	mk_buf_puts(out, name);
	mk_buf_puts(out, " counter\n");
	mk_buf_puts(out, name);
	mk_buf_putc(out, ' ');
	put_u64(out, mk_metrics_total(counter));
	mk_buf_putc(out, '\n');
}

static void
put_seconds(struct mk_buf *out, uint64_t us)
{
	char text[32];

	(void)snprintf(text, sizeof(text), "%.6g", (double)us / 1e6);
	mk_buf_puts(out, text);
}

static void
render_requests(
    struct mk_buf *out, const char *const *route_labels, size_t nroutes)
{
	mk_buf_puts(out,
	    "# HELP markets_http_requests_total Requests answered, by route "
	    "and status.\n"
	    "# TYPE markets_http_requests_total counter\n");
	for (size_t r = 0; r <= MK_METRICS_ROUTES_MAX; r++) {
		if (r >= nroutes && r != MK_METRICS_ROUTES_MAX)
			continue;
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t sum = 0;

			for (size_t i = 0; i < nshards; i++)
				sum += load(&shards[i].requests[r][s]);
			if (sum == 0)
				continue;
			mk_buf_puts(
			    out, "markets_http_requests_total{route=\"");
			put_label(out,
			    r == MK_METRICS_ROUTES_MAX ? "none"
						       : route_labels[r]);
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

static void
render_latency(struct mk_buf *out)
{
	uint64_t cumulative = 0, sum_us = 0, count = 0;

	mk_buf_puts(out,
	    "# HELP markets_http_request_duration_seconds Time from a "
	    "request's arrival in the app to its answer.\n"
	    "# TYPE markets_http_request_duration_seconds histogram\n");
	for (size_t b = 0; b <= NBOUNDS; b++) {
		for (size_t i = 0; i < nshards; i++)
			cumulative += load(&shards[i].latency[b]);
		mk_buf_puts(
		    out, "markets_http_request_duration_seconds_bucket{le=\"");
		if (b == NBOUNDS)
			mk_buf_puts(out, "+Inf");
		else
			put_seconds(out, bounds_us[b]);
		mk_buf_puts(out, "\"} ");
		put_u64(out, cumulative);
		mk_buf_putc(out, '\n');
	}
	for (size_t i = 0; i < nshards; i++) {
		sum_us += load(&shards[i].latency_sum_us);
		count += load(&shards[i].latency_count);
	}
	mk_buf_puts(out, "markets_http_request_duration_seconds_sum ");
	put_seconds(out, sum_us);
	mk_buf_puts(out, "\nmarkets_http_request_duration_seconds_count ");
	put_u64(out, count);
	mk_buf_putc(out, '\n');
}

void
mk_metrics_render(
    struct mk_buf *out, const char *const *route_labels, size_t nroutes)
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
	};

	render_requests(out, route_labels, nroutes);
	render_latency(out);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		put_counter(out, counters[i].name, counters[i].help,
		    counters[i].counter);
}
