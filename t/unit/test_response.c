/*
 * Unit tests for response headers (src/http/response.c): a header whose
 * name or value could split the response (CR, LF; a name with ':' or a
 * blank, or empty) or a value with another control byte (RFC 9110 5.5:
 * only HTAB) is refused with MK_EINTERNAL, left out of the
 * serialized answer, and logged by name; a fine one is added. Table-
 * driven; the log goes to a temporary file that is read back. A success
 * answered with mk_response_item() or mk_response_list() is the answer
 * the header, begin, data and end calls write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/log.h"
#include "http/response.h"
#include "tap.h"

struct header_case {
	const char *name;   /* of the case */
	const char *header; /* header name */
	const char *value;
	bool added;
};

static const struct header_case cases[] = {
	{ "plain", "Location", "/api/markets/7", true },
	{ "empty value", "X-Empty", "", true },
	{ "value with blanks and colons", "Retry-After", "a: b c", true },
	{ "value with LF", "Location", "/api/markets/7\nSet-Cookie: a=b",
	    false },
	{ "value with CR", "Location", "/api/markets/7\rSet-Cookie: a=b",
	    false },
	{ "value with CRLF", "Location", "/x\r\n\r\n{\"injected\":true}",
	    false },
	{ "value ending in LF", "Location", "/api/markets/7\n", false },
	{ "value that is only CR", "X-A", "\r", false },
	{ "value with a tab", "X-A", "a\tb", true },
	{ "value with a vertical tab", "X-A", "a\vb", false },
	{ "value with a form feed", "X-A", "a\fb", false },
	{ "value with 0x01", "X-A", "a\001b", false },
	{ "value with DEL", "X-A", "a\177b", false },
	{ "value with UTF-8", "X-A", "caf\303\251", true },
	{ "name with LF", "X-A\nSet-Cookie", "1", false },
	{ "name with CR", "X-A\r", "1", false },
	{ "name with colon", "X-A: evil", "1", false },
	{ "name with a blank", "X A", "1", false },
	{ "empty name", "", "1", false },
};

static char log_path[] = "/tmp/mk-test-response-XXXXXX";

/* The answer serialized, with the header of c (NULL: none) added first. */
static enum mk_err
answer(struct mk_arena *arena, const struct header_case *c, struct mk_buf *out)
{
	struct mk_response resp;
	enum mk_err rc = MK_OK;

	mk_response_init(&resp, arena);
	mk_buf_init(out, arena);
	if (c != NULL)
		rc = mk_response_header(&resp, c->header, c->value);
	mk_response_header(&resp, "Cache-Control", "no-store");
	mk_response_begin_data(&resp, 201);
	mk_buf_puts(&resp.body, "{}");
	mk_response_end_data(&resp, NULL);
	mk_response_serialize(&resp, "rid", false, out);
	mk_buf_putc(out, '\0');
	return rc;
}

/* An item that is JSON text already; an element of an array of them. */
static void
text_json(struct mk_buf *out, const void *item)
{
	mk_buf_puts(out, item);
}

static void
element_json(struct mk_buf *out, const void *item)
{
	mk_buf_puts(out, *(const char *const *)item);
}

static void
test_success(struct mk_arena *arena)
{
	static const char *const items[] = { "1", "{\"a\":2}", "null" };
	struct mk_response resp;
	struct mk_buf out, plain;
	enum mk_err rc;

	mk_response_init(&resp, arena);
	rc = mk_response_item(&resp, 201, "no-store", text_json, "{}");
	mk_buf_init(&out, arena);
	mk_response_serialize(&resp, "rid", false, &out);
	mk_buf_putc(&out, '\0');
	(void)answer(arena, NULL, &plain);
	tap_is_int(rc, MK_OK, "item: MK_OK");
	tap_is_str(out.data, plain.data,
	    "item: the answer of header, begin, data and end");

	mk_response_init(&resp, arena);
	rc = mk_response_list(&resp, 200, NULL, element_json, items, 3,
	    sizeof(items[0]), "{\"n\":3}");
	mk_buf_putc(&resp.body, '\0');
	tap_ok(rc == MK_OK && resp.status == 200 && resp.headers.len == 0,
	    "list: MK_OK, 200, no Cache-Control when none is named");
	tap_is_str(resp.body.data,
	    "{\"success\":true,\"data\":[1,{\"a\":2},null],\"meta\":{\"n\":3}}",
	    "list: the items as an array, and meta");
	mk_arena_reset(arena);
}

static char *
read_log(void)
{
	FILE *fp = fopen(log_path, "re");
	static char text[16384];
	size_t n;

	text[0] = '\0';
	if (fp == NULL)
		return text;
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	return text;
}

int
main(void)
{
	struct mk_arena *arena = mk_arena_new(4096);
	int fd = mkstemp(log_path);

	if (arena == NULL || fd < 0)
		abort();
	close(fd);
	if (mk_log_open(log_path, MK_LOG_DEBUG) != 0)
		abort();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct header_case *c = &cases[i];
		struct mk_buf out, plain;
		enum mk_err rc;
		const char *log;

		if (truncate(log_path, 0) != 0)
			abort();
		rc = answer(arena, c, &out);
		log = read_log();
		(void)answer(arena, NULL, &plain);
		if (c->added) {
			char line[256];

			(void)snprintf(line, sizeof(line), "\r\n%s: %s\r\n",
			    c->header, c->value);
			tap_is_int(rc, MK_OK, "%s: added", c->name);
			tap_ok(strstr(out.data, line) != NULL,
			    "%s: in the answer", c->name);
			tap_ok(log[0] == '\0', "%s: nothing logged", c->name);
		} else {
			tap_is_int(rc, MK_EINTERNAL, "%s: refused", c->name);
			/*
			 * Byte for byte the answer without it: the next header
			 * is there.
			 */
			tap_is_str(out.data, plain.data,
			    "%s: not in the answer, the next header is",
			    c->name);
			tap_ok(strstr(log, "response header") != NULL &&
				strstr(log, "dropped") != NULL,
			    "%s: the log says a header was dropped", c->name);
			if (strstr(log, "dropped") == NULL)
				printf("#   log: %s\n", log);
		}
		mk_arena_reset(arena);
	}
	test_success(arena);
	mk_log_close();
	unlink(log_path);
	mk_arena_free(arena);
	return tap_done();
}
