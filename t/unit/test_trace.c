/*
 * Unit tests for a request's trace (src/core/trace.c): nothing is
 * measured or kept while no trace is current; phases add up and render is
 * what they leave of the total; statements are counted, the first eight
 * kept, a long one by its head and tail; the format replaces every literal
 * value with ? (table-driven) and prints milliseconds exactly.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/trace.h"
#include "tap.h"

/* The trace's format, in a static buffer. */
static const char *
format(const struct mk_trace *trace, uint64_t total_us)
{
	static char text[8192];
	struct mk_buf out;

	mk_buf_init_fixed(&out, text, sizeof(text) - 1);
	mk_trace_format(trace, total_us, &out);
	text[out.oom ? 0 : out.len] = '\0';
	return text;
}

static void
test_values(void)
{
	static const struct {
		const char *sql;
		const char *shown; /* as a JSON string */
	} cases[] = {
		{ "SELECT id FROM markets WHERE id = ?",
		    "\"SELECT id FROM markets WHERE id = ?\"" },
		{ "SELECT * FROM t WHERE name = 'bob' AND x = 42",
		    "\"SELECT * FROM t WHERE name = ? AND x = ?\"" },
		{ "UPDATE t SET v = v + 3.25 WHERE s = \"x\"",
		    "\"UPDATE t SET v = v + ? WHERE s = ?\"" },
		{ "SELECT col2, t1.x FROM t1 LIMIT 21",
		    "\"SELECT col2, t1.x FROM t1 LIMIT ?\"" },
		{ "SELECT CAST(? AS DECIMAL(20,2))",
		    "\"SELECT CAST(? AS DECIMAL(?,?))\"" },
		{ "SELECT 'it''s'", "\"SELECT ??\"" },
		{ "SELECT 'unterminated", "\"SELECT ?\"" },
		{ "INSERT INTO t VALUES (-7, 1e5, 0x1F)",
		    "\"INSERT INTO t VALUES (-?, ?, ?)\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mk_trace trace;
		const char *sql = cases[i].sql, *shown = cases[i].shown;
		char want[512];

		mk_trace_init(&trace);
		mk_trace_enter(&trace);
		mk_trace_statement(sql);
		mk_trace_leave();
		(void)snprintf(want, sizeof(want),
		    ",\"phases_ms\":{\"auth\":0.000,\"cache\":0.000,"
		    "\"database\":0.000,\"wait\":0.000,\"render\":0.000,"
		    "\"total\":0.000},\"statements\":[%s],"
		    "\"statements_run\":1",
		    shown);
		tap_is_str(format(&trace, 0), want, "values: %s", sql);
	}
}

static void
test_statements(void)
{
	struct mk_trace trace;
	char longer[600], want[64];
	const char *text;

	mk_trace_init(&trace);
	mk_trace_statement("SELECT 1");
	tap_is_int(trace.nstatements, 0, "no trace current: nothing kept");
	tap_is_int(mk_trace_begin(), 0, "no trace current: no clock read");
	mk_trace_end(MK_PHASE_DATABASE, 0);

	mk_trace_enter(&trace);
	for (int i = 0; i < 11; i++) {
		char sql[64];

		(void)snprintf(sql, sizeof(sql), "SELECT c%d FROM t", i);
		mk_trace_statement(sql);
	}
	mk_trace_leave();
	tap_is_int(trace.nstatements, 11, "every statement is counted");
	text = format(&trace, 0);
	tap_ok(strstr(text, "\"SELECT c7 FROM t\"]") != NULL &&
		strstr(text, "c8") == NULL,
	    "the first 8 are kept");
	tap_ok(strstr(text, "\"statements_run\":11") != NULL,
	    "statements_run says 11");

	memset(longer, 'x', sizeof(longer) - 1);
	memcpy(longer, "SELECT ", 7);
	memcpy(
	    longer + sizeof(longer) - 1 - 24, " FROM markets WHERE id=?", 24);
	longer[sizeof(longer) - 1] = '\0';
	mk_trace_init(&trace);
	mk_trace_enter(&trace);
	mk_trace_statement(longer);
	mk_trace_leave();
	tap_is_int(strlen(trace.statements[0]), MK_TRACE_SQL_MAX - 1,
	    "a long statement is cut to the room kept");
	tap_ok(strncmp(trace.statements[0], "SELECT xxx", 10) == 0,
	    "its head is kept");
	(void)snprintf(want, sizeof(want), "xxx ... xxx");
	tap_ok(strstr(trace.statements[0], want) != NULL, "the cut is marked");
	tap_ok(strcmp(trace.statements[0] + MK_TRACE_SQL_MAX - 1 - 24,
		   " FROM markets WHERE id=?") == 0,
	    "and its tail (the tables, the conditions)");
}

static void
test_phases(void)
{
	struct mk_trace trace;
	uint64_t began;

	mk_trace_init(&trace);
	trace.phase_us[MK_PHASE_AUTH] = 1500;
	trace.phase_us[MK_PHASE_CACHE] = 250;
	trace.phase_us[MK_PHASE_DATABASE] = 1234567;
	trace.phase_us[MK_PHASE_WAIT] = 0;
	tap_is_str(format(&trace, 1300001),
	    ",\"phases_ms\":{\"auth\":1.500,\"cache\":0.250,"
	    "\"database\":1234.567,\"wait\":0.000,\"render\":63.684,"
	    "\"total\":1300.001},\"statements\":[],\"statements_run\":0",
	    "phases in ms to the microsecond; render is the rest");
	tap_ok(strstr(format(&trace, 1000), "\"render\":0.000") != NULL,
	    "render is never negative");

	mk_trace_init(&trace);
	mk_trace_enter(&trace);
	began = mk_trace_begin();
	tap_ok(began != 0, "tracing: begin reads the clock");
	mk_trace_end(MK_PHASE_CACHE, began);
	mk_trace_end(MK_PHASE_CACHE, 0);
	mk_trace_leave();
	tap_ok(trace.phase_us[MK_PHASE_CACHE] < 1000000 &&
		trace.phase_us[MK_PHASE_DATABASE] == 0,
	    "end adds to its own phase only");
}

int
main(void)
{
	test_values();
	test_statements();
	test_phases();
	return tap_done();
}
