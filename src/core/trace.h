/*
 * A request's trace (core layer): where its time went, by phase, and the
 * statements it ran, for the slow-request log. A worker runs one
 * request's code at a time, so at most one trace is current: the http
 * layer makes it current while the request's code runs (mk_trace_enter)
 * and not otherwise (mk_trace_leave), so ticks and job runners are never
 * traced. The store layer adds its time and statements to the current
 * trace and reads the clock only when there is one: with
 * slow_request_threshold 0 nothing is ever current, and nothing measured.
 *
 * A trace is its request's (in its arena); nothing here allocates.
 */
#ifndef MK_TRACE_H
#define MK_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

struct mk_buf;

/* The phases measured; render is what is left of the total. */
enum mk_phase {
	MK_PHASE_AUTH,     /* verifying the bearer token */
	MK_PHASE_CACHE,    /* memcached round trips */
	MK_PHASE_DATABASE, /* MariaDB statements, transactions, retries */
	MK_PHASE_WAIT,     /* waiting off the worker (the embedder) */
	MK_PHASE__MAX
};

/* Statements a trace keeps (it counts them all), and their length kept. */
#define MK_TRACE_STATEMENTS 8
#define MK_TRACE_SQL_MAX 256

struct mk_trace {
	uint64_t phase_us[MK_PHASE__MAX];
	unsigned nstatements; /* run; the first MK_TRACE_STATEMENTS kept */
	char statements[MK_TRACE_STATEMENTS][MK_TRACE_SQL_MAX];
};

/* The trace of the request whose code runs now; NULL: none. */
extern struct mk_trace *mk_trace_current;

/* Empties trace (its statements' text is left as it is, unread). */
void mk_trace_init(struct mk_trace *trace);

static inline void
mk_trace_enter(struct mk_trace *trace)
{
	mk_trace_current = trace;
}

static inline void
mk_trace_leave(void)
{
	mk_trace_current = NULL;
}

/* When a phase's piece began: a clock read only while tracing, else 0. */
static inline uint64_t
mk_trace_begin(void)
{
	return mk_trace_current != NULL ? mk_clock_mono_us() : 0;
}

/* Adds the time since began (mk_trace_begin's) to phase. */
static inline void
mk_trace_end(enum mk_phase phase, uint64_t began)
{
	if (mk_trace_current != NULL && began != 0)
		mk_trace_current->phase_us[phase] += mk_clock_mono_us() - began;
}

/*
 * Records a statement's text; one longer than MK_TRACE_SQL_MAX - 1 bytes
 * keeps its head and its tail, " ... " between them.
 */
void mk_trace_statement(const char *sql);

/*
 * Appends `,"phases_ms":{...},"statements":[...],"statements_run":N` to
 * out: each phase and the total (total_us) in milliseconds to the
 * microsecond, render being what the others leave of the total; the
 * statements kept, with every literal value (quoted text, numbers)
 * replaced by ?.
 */
void mk_trace_format(
    const struct mk_trace *trace, uint64_t total_us, struct mk_buf *out);

#endif
