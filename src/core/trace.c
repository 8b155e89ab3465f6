/*
 * A request's trace (core layer); see trace.h.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/trace.h"

struct mk_trace *mk_trace_current;

/* A statement too long to keep whole keeps HEAD bytes, CUT, TAIL bytes. */
#define CUT " ... "
#define TAIL 96
#define HEAD (MK_TRACE_SQL_MAX - 1 - TAIL - (sizeof(CUT) - 1))

void
mk_trace_init(struct mk_trace *trace)
{
	memset(trace->phase_us, 0, sizeof(trace->phase_us));
	trace->nstatements = 0;
}

void
mk_trace_statement(const char *sql)
{
	struct mk_trace *trace = mk_trace_current;
	size_t len;

	if (trace == NULL)
		return;
	if (trace->nstatements < MK_TRACE_STATEMENTS) {
		char *kept = trace->statements[trace->nstatements];

		len = strlen(sql);
		if (len < MK_TRACE_SQL_MAX) {
			memcpy(kept, sql, len + 1);
		} else {
			/*
			 * Its head and its tail: the columns come first, the
			 * tables and conditions last.
			 */
			memcpy(kept, sql, HEAD);
			memcpy(kept + HEAD, CUT, sizeof(CUT) - 1);
			memcpy(kept + HEAD + sizeof(CUT) - 1, sql + len - TAIL,
			    TAIL + 1);
		}
	}
	trace->nstatements++;
}

static bool
word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/*
 * A statement's text with its literal values replaced by ?: quoted text
 * ('…', "…") and numbers that are no part of a name. The app binds its
 * values as parameters, but a constant written into the text would show.
 */
static void
put_without_values(struct mk_buf *out, const char *sql)
{
	char text[MK_TRACE_SQL_MAX + 1];
	size_t n = 0;

	for (const char *p = sql; *p != '\0' && n < sizeof(text) - 1; p++) {
		if (*p == '\'' || *p == '"') {
			char quote = *p;

			while (p[1] != '\0' && p[1] != quote)
				p++;
			if (p[1] == quote)
				p++;
			text[n++] = '?';
		} else if (isdigit((unsigned char)*p) &&
		    (p == sql || !word_char(p[-1]))) {
			/* 3.25, 1e5, 0x1f: the rest of it too */
			while (word_char(p[1]) || p[1] == '.')
				p++;
			text[n++] = '?';
		} else {
			text[n++] = *p;
		}
	}
	text[n] = '\0';
	mk_json_cstr(out, text);
}

/* Microseconds as milliseconds with three decimals, exactly. */
static void
put_ms(struct mk_buf *out, const char *name, uint64_t us)
{
	mk_buf_printf(out, "\"%s\":%llu.%03llu", name,
	    (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
}

void
mk_trace_format(
    const struct mk_trace *trace, uint64_t total_us, struct mk_buf *out)
{
	static const char *const names[MK_PHASE__MAX] = {
		[MK_PHASE_AUTH] = "auth",
		[MK_PHASE_CACHE] = "cache",
		[MK_PHASE_DATABASE] = "database",
		[MK_PHASE_WAIT] = "wait",
	};
	uint64_t measured = 0;
	unsigned kept = trace->nstatements < MK_TRACE_STATEMENTS
	    ? trace->nstatements
	    : MK_TRACE_STATEMENTS;

	mk_buf_puts(out, ",\"phases_ms\":{");
	for (int i = 0; i < MK_PHASE__MAX; i++) {
		put_ms(out, names[i], trace->phase_us[i]);
		mk_buf_putc(out, ',');
		measured += trace->phase_us[i];
	}
	put_ms(out, "render", total_us > measured ? total_us - measured : 0);
	mk_buf_putc(out, ',');
	put_ms(out, "total", total_us);
	mk_buf_puts(out, "},\"statements\":[");
	for (unsigned i = 0; i < kept; i++) {
		if (i > 0)
			mk_buf_putc(out, ',');
		put_without_values(out, trace->statements[i]);
	}
	mk_buf_printf(out, "],\"statements_run\":%u", trace->nstatements);
}
