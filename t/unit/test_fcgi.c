/*
 * Unit tests for the FastCGI layer: first the codec (src/server/fcgi.c)
 * on bytes — record framing, name-value pairs with 1- and 4-byte lengths,
 * the encoders and their round trips — then a whole connection
 * (src/server/conn.c) driven end to end without sockets. Each connection
 * test appends the records nginx would send to conn->in, runs
 * mk_conn_process(), parses the records queued in conn->out and checks
 * the CGI response a client would get: status, headers and body, plus
 * the FastCGI framing (END_REQUEST status, the state the connection is
 * left in). The application is the real one (mk_app_new), so the
 * middleware chain, router and error envelope are exercised as wired.
 */
#include <fastcgi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "http/request.h"
#include "server/conn.h"
#include "server/fcgi.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1
#define HEALTH_BODY "{\"success\":true,\"data\":{\"status\":\"ok\"}}"
#define MAX_BODY 1000
#define NOW_MS 1000

/* ---- The codec ---- */

static void
test_record_parse(void)
{
	struct mk_fcgi_record rec;
	struct mk_buf buf;
	uint8_t raw[300];
	int short_ok = 1;

	mk_buf_init(&buf, NULL);
	mk_fcgi_put_record(&buf, FCGI_STDIN, 0x0102, "hello", 5);
	mk_buf_append(&buf, "tail", 4);
	tap_is_int(
	    buf.len, 8 + 5 + 3 + 4, "put_record pads 5 bytes of content to 8");
	for (size_t len = 0; len < 16; len++) {
		if (mk_fcgi_record_parse((const uint8_t *)buf.data, len,
			&rec) != MK_FCGI_NEED_MORE)
			short_ok = 0;
	}
	tap_ok(short_ok,
	    "short header, short content or missing padding: need more");
	tap_is_int(
	    mk_fcgi_record_parse((const uint8_t *)buf.data, buf.len, &rec),
	    MK_FCGI_RECORD, "a whole record parses");
	tap_is_int(rec.type, FCGI_STDIN, "record type");
	tap_is_int(rec.request_id, 0x0102, "record request id (both bytes)");
	tap_is_int(rec.content_len, 5, "record content length");
	tap_ok(rec.content == (const uint8_t *)buf.data + 8 &&
		memcmp(rec.content, "hello", 5) == 0,
	    "record content points after the header");
	tap_is_int(rec.total_len, 16,
	    "total_len covers the padding, not what follows");
	mk_buf_release(&buf);

	/* Content 0, padding 255: all of it must be there and consumed. */
	memset(raw, 0, sizeof(raw));
	raw[0] = FCGI_VERSION_1;
	raw[1] = FCGI_PARAMS;
	raw[3] = 1;
	raw[6] = 255;
	tap_is_int(mk_fcgi_record_parse(raw, 262, &rec), MK_FCGI_NEED_MORE,
	    "a record missing one padding byte needs more");
	tap_ok(mk_fcgi_record_parse(raw, 263, &rec) == MK_FCGI_RECORD &&
		rec.total_len == 263 && rec.content_len == 0,
	    "255 bytes of padding are consumed");
	/* Content 65535: the length is big-endian over two bytes. */
	raw[4] = 0xff;
	raw[5] = 0xff;
	raw[6] = 0;
	tap_is_int(mk_fcgi_record_parse(raw, sizeof(raw), &rec),
	    MK_FCGI_NEED_MORE, "a 65535-byte record needs all its content");
	raw[0] = 2;
	tap_is_int(mk_fcgi_record_parse(raw, 8, &rec), MK_FCGI_BAD,
	    "version 2 is bad");
	raw[0] = 0;
	tap_is_int(mk_fcgi_record_parse(raw, sizeof(raw), &rec), MK_FCGI_BAD,
	    "version 0 is bad");
}

struct decode_case {
	const char *name;
	const char *bytes;
	size_t len;
	enum mk_err rc;
	size_t count;
	const char *first_name; /* when MK_OK and count > 0 */
	const char *first_value;
};

static const struct decode_case decode_cases[] = {
	{ "empty stream", LIT(""), MK_OK, 0, NULL, NULL },
	{ "1-byte lengths",
	    LIT("\x01\x01"
		"A1"),
	    MK_OK, 1, "A", "1" },
	{ "two pairs",
	    LIT("\x01\x01"
		"A1"
		"\x02\x03"
		"BBccc"),
	    MK_OK, 2, "A", "1" },
	{ "4-byte lengths",
	    LIT("\x80\x00\x00\x03\x80\x00\x00\x01"
		"abcx"),
	    MK_OK, 1, "abc", "x" },
	{ "mixed lengths",
	    LIT("\x03\x80\x00\x00\x02"
		"abcxy"),
	    MK_OK, 1, "abc", "xy" },
	{ "empty value",
	    LIT("\x04\x00"
		"NAME"),
	    MK_OK, 1, "NAME", "" },
	{ "truncated value",
	    LIT("\x01\x02"
		"A1"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "truncated name",
	    LIT("\x05\x00"
		"AB"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "only a name length", LIT("\x01"), MK_EBADREQUEST, 0, NULL, NULL },
	{ "cut 4-byte name length", LIT("\x80\x00\x00"), MK_EBADREQUEST, 0,
	    NULL, NULL },
	{ "cut 4-byte value length",
	    LIT("\x01\x80\x00"
		"A"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "huge length",
	    LIT("\xff\xff\xff\xff\x01"
		"A1"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "huge value length",
	    LIT("\x01\xff\xff\xff\xff"
		"A1"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "a good pair, then a cut one",
	    LIT("\x01\x01"
		"A1"
		"\x01\x01"
		"B"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "NUL in the name",
	    LIT("\x02\x01"
		"A\0"
		"1"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "NUL in the value",
	    LIT("\x01\x02"
		"A"
		"1\0"),
	    MK_EBADREQUEST, 0, NULL, NULL },
	{ "empty name",
	    LIT("\x00\x01"
		"x"),
	    MK_EBADREQUEST, 0, NULL, NULL },
};

static void
test_params_decode(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_param *params;
	struct mk_buf buf;
	size_t nparams;
	enum mk_err rc;
	char name[16];

	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]);
	     i++) {
		const struct decode_case *c = &decode_cases[i];

		rc = mk_fcgi_params_decode(arena, (const uint8_t *)c->bytes,
		    c->len, &params, &nparams);
		tap_is_int(rc, c->rc, "params_decode: %s: rc", c->name);
		if (c->rc == MK_OK) {
			tap_is_int(nparams, c->count,
			    "params_decode: %s: count", c->name);
			if (c->count > 0 && nparams > 0) {
				tap_ok(strcmp(params[0].name, c->first_name) ==
					    0 &&
					strcmp(params[0].value,
					    c->first_value) == 0 &&
					params[0].name_len ==
					    strlen(c->first_name) &&
					params[0].value_len ==
					    strlen(c->first_value),
				    "params_decode: %s: first pair", c->name);
			}
		} else {
			tap_ok(params == NULL && nparams == 0,
			    "params_decode: %s: no output", c->name);
		}
		mk_arena_reset(arena);
	}

	mk_buf_init(&buf, NULL);
	for (int i = 0; i < MK_FCGI_MAX_PARAMS; i++) {
		int n = snprintf(name, sizeof(name), "P%d", i);

		mk_fcgi_put_pair(&buf, name, (size_t)n, "v", 1);
	}
	rc = mk_fcgi_params_decode(
	    arena, (const uint8_t *)buf.data, buf.len, &params, &nparams);
	tap_ok(rc == MK_OK && nparams == MK_FCGI_MAX_PARAMS &&
		strcmp(params[MK_FCGI_MAX_PARAMS - 1].name, "P255") == 0,
	    "%d parameters (the maximum) decode", MK_FCGI_MAX_PARAMS);
	mk_arena_reset(arena);
	mk_fcgi_put_pair(&buf, "ONE_MORE", 8, "v", 1);
	rc = mk_fcgi_params_decode(
	    arena, (const uint8_t *)buf.data, buf.len, &params, &nparams);
	tap_is_int(rc, MK_EHEADERS, "%d parameters are MK_EHEADERS",
	    MK_FCGI_MAX_PARAMS + 1);
	mk_buf_release(&buf);
	mk_arena_free(arena);
}

static void
test_pair_round_trip(void)
{
	static const size_t lengths[] = { 0, 1, 127, 128, 255, 300, 70000 };
	struct mk_arena *arena = mk_arena_new(0);
	char *name = malloc(70000), *value = malloc(70000);
	struct mk_param *params;
	struct mk_buf buf;
	size_t nparams;

	for (size_t i = 0; i < 70000; i++) {
		name[i] = (char)('A' + i % 26);
		value[i] = (char)('a' + i % 23);
	}
	mk_buf_init(&buf, NULL);
	for (size_t n = 1; n < sizeof(lengths) / sizeof(lengths[0]); n++) {
		for (size_t v = 0; v < sizeof(lengths) / sizeof(lengths[0]);
		     v++) {
			size_t nl = lengths[n], vl = lengths[v];
			size_t want_len =
			    (nl < 128 ? 1 : 4) + (vl < 128 ? 1 : 4) + nl + vl;
			enum mk_err rc;

			mk_buf_clear(&buf);
			mk_fcgi_put_pair(&buf, name, nl, value, vl);
			rc = mk_fcgi_params_decode(arena,
			    (const uint8_t *)buf.data, buf.len, &params,
			    &nparams);
			tap_ok(buf.len == want_len && rc == MK_OK &&
				nparams == 1 && params[0].name_len == nl &&
				params[0].value_len == vl &&
				memcmp(params[0].name, name, nl) == 0 &&
				memcmp(params[0].value, value, vl) == 0 &&
				params[0].name[nl] == '\0' &&
				params[0].value[vl] == '\0',
			    "put_pair then decode: name %zu bytes, value %zu "
			    "bytes",
			    nl, vl);
			mk_arena_reset(arena);
		}
	}
	mk_buf_release(&buf);
	free(name);
	free(value);
	mk_arena_free(arena);
}

static void
test_put_stdout(void)
{
	enum {
		LEN = 200000
	};
	char *data = malloc(LEN);
	struct mk_buf out, joined;
	struct mk_fcgi_record rec;
	size_t pos = 0;
	int records = 0, sizes_ok = 1, types_ok = 1, framing_ok = 1;

	for (size_t i = 0; i < LEN; i++)
		data[i] = (char)(i * 7 % 251);
	mk_buf_init(&out, NULL);
	mk_buf_init(&joined, NULL);
	mk_fcgi_put_stdout(&out, 77, data, LEN);
	while (pos < out.len) {
		if (mk_fcgi_record_parse((const uint8_t *)out.data + pos,
			out.len - pos, &rec) != MK_FCGI_RECORD) {
			framing_ok = 0;
			break;
		}
		records++;
		/*
		 * content_len is 16 bits: a chunk over 65535 would be cut, and
		 * the reassembly check below would see it.
		 */
		if (rec.content_len == 0)
			sizes_ok = 0;
		if (rec.type != FCGI_STDOUT || rec.request_id != 77)
			types_ok = 0;
		if (rec.total_len % 8 != 0)
			framing_ok = 0;
		mk_buf_append(&joined, rec.content, rec.content_len);
		pos += rec.total_len;
	}
	tap_ok(framing_ok && pos == out.len,
	    "put_stdout of %d bytes: whole, 8-aligned records", LEN);
	tap_ok(records >= 4, "put_stdout of %d bytes: split into %d records",
	    LEN, records);
	tap_ok(sizes_ok,
	    "put_stdout: every record holds 1..65535 bytes (no empty one)");
	tap_ok(
	    types_ok, "put_stdout: every record is STDOUT for the request id");
	tap_ok(joined.len == LEN && memcmp(joined.data, data, LEN) == 0,
	    "put_stdout: the records reassemble to the data");
	mk_buf_clear(&out);
	mk_fcgi_put_stdout(&out, 77, data, 0);
	tap_is_int(out.len, 0,
	    "put_stdout of 0 bytes writes no (stream-ending) record");

	mk_fcgi_put_record(&out, FCGI_STDOUT, 1, data, FCGI_MAX_LENGTH);
	tap_ok(!out.oom && out.len == 8 + 65535 + 1,
	    "put_record of 65535 bytes, padded to 8");
	mk_fcgi_put_record(&out, FCGI_STDOUT, 1, data, FCGI_MAX_LENGTH + 1);
	tap_ok(out.oom, "put_record of 65536 bytes refuses (oom)");
	mk_buf_release(&out);
	mk_buf_release(&joined);
	free(data);
}

static void
test_put_end_and_values(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	const FCGI_EndRequestBody *end;
	struct mk_buf out, query;
	struct mk_fcgi_record rec;
	struct mk_param *params;
	size_t nparams;
	enum mk_err rc;

	mk_buf_init(&out, NULL);
	mk_fcgi_put_end(&out, 9, FCGI_OVERLOADED);
	tap_ok(mk_fcgi_record_parse((const uint8_t *)out.data, out.len, &rec) ==
		    MK_FCGI_RECORD &&
		rec.type == FCGI_STDOUT && rec.content_len == 0 &&
		rec.request_id == 9,
	    "put_end: an empty STDOUT first");
	tap_ok(mk_fcgi_record_parse((const uint8_t *)out.data + 8, out.len - 8,
		   &rec) == MK_FCGI_RECORD &&
		rec.type == FCGI_END_REQUEST && rec.request_id == 9 &&
		rec.content_len == sizeof(*end) && 16 + sizeof(*end) == out.len,
	    "put_end: then END_REQUEST");
	end = (const void *)rec.content;
	tap_ok(end->protocolStatus == FCGI_OVERLOADED &&
		end->appStatusB0 == 0 && end->appStatusB3 == 0,
	    "put_end: protocol status and app status 0");

	mk_buf_init(&query, NULL);
	mk_fcgi_put_pair(&query, LIT(FCGI_MPXS_CONNS), "", 0);
	mk_fcgi_put_pair(&query, LIT("FCGI_NO_SUCH_THING"), "", 0);
	mk_fcgi_put_pair(&query, LIT(FCGI_MAX_CONNS), "", 0);
	mk_fcgi_put_pair(&query, LIT(FCGI_MAX_REQS), "", 0);
	mk_buf_clear(&out);
	mk_fcgi_put_values(&out, (const uint8_t *)query.data, query.len, 16);
	tap_ok(mk_fcgi_record_parse((const uint8_t *)out.data, out.len, &rec) ==
		    MK_FCGI_RECORD &&
		rec.type == FCGI_GET_VALUES_RESULT &&
		rec.request_id == FCGI_NULL_REQUEST_ID &&
		rec.total_len == out.len,
	    "put_values: one GET_VALUES_RESULT for request 0");
	rc = mk_fcgi_params_decode(
	    arena, rec.content, rec.content_len, &params, &nparams);
	tap_ok(rc == MK_OK && nparams == 3,
	    "put_values: three known names answered, unknown left out");
	tap_is_str(mk_params_find(params, nparams, FCGI_MPXS_CONNS), "0",
	    "put_values: FCGI_MPXS_CONNS=0");
	tap_is_str(mk_params_find(params, nparams, FCGI_MAX_CONNS), "16",
	    "put_values: FCGI_MAX_CONNS");
	tap_is_str(mk_params_find(params, nparams, FCGI_MAX_REQS), "16",
	    "put_values: FCGI_MAX_REQS");
	tap_ok(mk_params_find(params, nparams, "FCGI_NO_SUCH_THING") == NULL,
	    "put_values: the unknown name is omitted");

	mk_buf_clear(&query);
	mk_fcgi_put_pair(&query, LIT("UNKNOWN"), "", 0);
	mk_buf_clear(&out);
	mk_fcgi_put_values(&out, (const uint8_t *)query.data, query.len, 16);
	tap_ok(mk_fcgi_record_parse((const uint8_t *)out.data, out.len, &rec) ==
		    MK_FCGI_RECORD &&
		rec.type == FCGI_GET_VALUES_RESULT && rec.content_len == 0,
	    "put_values: only unknown names give an empty result");

	mk_buf_clear(&out);
	mk_fcgi_put_unknown_type(&out, 42);
	tap_ok(mk_fcgi_record_parse((const uint8_t *)out.data, out.len, &rec) ==
		    MK_FCGI_RECORD &&
		rec.type == FCGI_UNKNOWN_TYPE && rec.content_len == 8 &&
		rec.content[0] == 42,
	    "put_unknown_type names the type");
	mk_buf_release(&query);
	mk_buf_release(&out);
	mk_arena_free(arena);
}

/* ---- A connection, end to end ---- */

struct kv {
	const char *name;
	const char *value;
};

static void
put_begin(struct mk_buf *in, uint16_t id, unsigned role, uint8_t flags)
{
	FCGI_BeginRequestBody body = {
		.roleB1 = (unsigned char)(role >> 8),
		.roleB0 = (unsigned char)role,
		.flags = flags,
	};

	mk_fcgi_put_record(in, FCGI_BEGIN_REQUEST, id, &body, sizeof(body));
}

/* Appends data as records of type (at most 65535 bytes each), no end marker. */
static void
put_stream(
    struct mk_buf *in, uint8_t type, uint16_t id, const char *data, size_t len)
{
	while (len > 0) {
		size_t chunk = len > FCGI_MAX_LENGTH ? FCGI_MAX_LENGTH : len;

		mk_fcgi_put_record(in, type, id, data, chunk);
		data += chunk;
		len -= chunk;
	}
}

/* Appends all PARAMS records and the empty one that ends them. */
static void
put_params(struct mk_buf *in, uint16_t id, const struct kv *kv, size_t n)
{
	struct mk_buf pairs;

	mk_buf_init(&pairs, NULL);
	for (size_t i = 0; i < n; i++)
		mk_fcgi_put_pair(&pairs, kv[i].name, strlen(kv[i].name),
		    kv[i].value, strlen(kv[i].value));
	put_stream(in, FCGI_PARAMS, id, pairs.data, pairs.len);
	mk_fcgi_put_record(in, FCGI_PARAMS, id, NULL, 0);
	mk_buf_release(&pairs);
}

/* A whole request as nginx sends it: BEGIN, PARAMS, STDIN, empty STDIN. */
static void
put_request(struct mk_buf *in, uint16_t id, bool keep, const struct kv *kv,
    size_t n, const char *body, size_t body_len)
{
	put_begin(in, id, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	put_params(in, id, kv, n);
	put_stream(in, FCGI_STDIN, id, body, body_len);
	mk_fcgi_put_record(in, FCGI_STDIN, id, NULL, 0);
}

/* What came back for one exchange, from the records in conn->out. */
struct reply {
	struct mk_buf text; /* STDOUT contents joined: the CGI response */
	int records;
	int stdout_records;
	int stdout_ended; /* an empty STDOUT was seen */
	int ends;
	struct {
		uint16_t id;
		uint8_t status;
	} end[4];
	int others;
	uint8_t other_type;
	int bad;          /* unparsable, or a partial record at the end */
	int status;       /* from "Status: NNN", 0 when none */
	const char *body; /* after the blank line, in text */
};

static void
reply_parse(struct reply *r, const struct mk_buf *out, size_t from)
{
	size_t pos = from;

	memset(r, 0, sizeof(*r));
	mk_buf_init(&r->text, NULL);
	while (pos < out->len) {
		struct mk_fcgi_record rec;

		if (mk_fcgi_record_parse((const uint8_t *)out->data + pos,
			out->len - pos, &rec) != MK_FCGI_RECORD) {
			r->bad = 1;
			break;
		}
		r->records++;
		if (rec.type == FCGI_STDOUT && rec.content_len > 0) {
			r->stdout_records++;
			if (r->stdout_ended)
				/* data after the end of the stream */
				r->bad = 1;
			mk_buf_append(&r->text, rec.content, rec.content_len);
		} else if (rec.type == FCGI_STDOUT) {
			r->stdout_ended++;
		} else if (rec.type == FCGI_END_REQUEST &&
		    rec.content_len == 8) {
			if (r->ends < 4) {
				r->end[r->ends].id = rec.request_id;
				r->end[r->ends].status = rec.content[4];
			}
			r->ends++;
		} else {
			r->others++;
			r->other_type = rec.type;
		}
		pos += rec.total_len;
	}
	mk_buf_putc(&r->text, '\0');
	r->text.len--;
	if (sscanf(r->text.data, "Status: %d", &r->status) != 1)
		r->status = 0;
	r->body = strstr(r->text.data, "\r\n\r\n");
	r->body = r->body != NULL ? r->body + 4 : NULL;
}

static void
reply_free(struct reply *r)
{
	mk_buf_release(&r->text);
}

/* The value of a response header (into out), or NULL when absent. */
static const char *
header(const struct reply *r, const char *name, char *out, size_t size)
{
	const char *line = r->text.data;
	size_t name_len = strlen(name);

	while (line != NULL && *line != '\0' && strncmp(line, "\r\n", 2) != 0) {
		const char *eol = strstr(line, "\r\n");

		if (eol == NULL)
			break;
		if (strncmp(line, name, name_len) == 0 &&
		    line[name_len] == ':' && line[name_len + 1] == ' ') {
			(void)snprintf(out, size, "%.*s",
			    (int)(eol - line - name_len - 2),
			    line + name_len + 2);
			return out;
		}
		line = eol + 2;
	}
	return NULL;
}

/* The request_id string of an error body, into out, or NULL. */
static const char *
body_request_id(const struct reply *r, char *out, size_t size)
{
	const char *p =
	    r->body != NULL ? strstr(r->body, "\"request_id\":\"") : NULL;
	const char *end;

	if (p == NULL)
		return NULL;
	p += strlen("\"request_id\":\"");
	end = strchr(p, '"');
	if (end == NULL)
		return NULL;
	(void)snprintf(out, size, "%.*s", (int)(end - p), p);
	return out;
}

static int
is_hex32(const char *s)
{
	if (s == NULL || strlen(s) != 32)
		return 0;
	return strspn(s, "0123456789abcdef") == 32;
}

/* Feeds in to the connection and parses what it queued in reply. */
static enum mk_err
exchange(struct mk_conn *conn, struct mk_buf *in, struct reply *r)
{
	size_t from = conn->out.len;
	enum mk_err rc;

	mk_buf_append(&conn->in, in->data, in->len);
	mk_buf_clear(in);
	rc = mk_conn_process(conn, NOW_MS);
	reply_parse(r, &conn->out, from);
	return rc;
}

struct fixture {
	struct mk_config *config;
	struct mk_app *app;
};

static struct mk_conn *
conn_new(struct fixture *fx)
{
	return mk_conn_new(-1, mk_app_http(fx->app), MAX_BODY, 16);
}

static const struct kv get_health[] = {
	{ "REQUEST_METHOD", "GET" },
	{ "REQUEST_URI", "/healthz" },
	{ "CONTENT_LENGTH", "" },
	{ "SERVER_PROTOCOL", "HTTP/1.1" },
};

static void
test_conn_health(struct fixture *fx)
{
	struct mk_conn *conn = conn_new(fx);
	struct mk_buf in;
	struct reply r;
	char value[128];
	enum mk_err rc;

	mk_buf_init(&in, NULL);
	put_request(&in, 258, true, get_health, 4, NULL, 0);
	rc = exchange(conn, &in, &r);
	tap_is_int(rc, MK_OK, "GET /healthz: process returns MK_OK");
	tap_is_int(r.status, 200, "GET /healthz: Status: 200");
	tap_ok(strncmp(r.text.data, "Status: 200 OK\r\n", 16) == 0,
	    "GET /healthz: the Status line");
	tap_is_str(r.body, HEALTH_BODY, "GET /healthz: body");
	tap_is_str(header(&r, "Content-Type", value, sizeof(value)),
	    "application/json; charset=utf-8", "GET /healthz: Content-Type");
	tap_is_int(
	    atoi(header(&r, "Content-Length", value, sizeof(value)) ? value
								    : "-1"),
	    strlen(HEALTH_BODY), "GET /healthz: Content-Length");
	tap_is_str(header(&r, "Cache-Control", value, sizeof(value)),
	    "no-store", "GET /healthz: Cache-Control from the handler");
	tap_ok(is_hex32(header(&r, "X-Request-Id", value, sizeof(value))),
	    "GET /healthz: a generated X-Request-Id of 32 hex digits");
	tap_ok(r.stdout_ended == 1 && r.ends == 1 && r.end[0].id == 258 &&
		r.end[0].status == FCGI_REQUEST_COMPLETE && !r.bad &&
		r.others == 0,
	    "GET /healthz: STDOUT ended, then END_REQUEST(258, "
	    "REQUEST_COMPLETE)");
	tap_is_int(conn->state, MK_CONN_IDLE,
	    "keep_conn: the connection is idle again");
	tap_is_int(conn->in.len, 0, "all input consumed");
	tap_is_int(conn->requests_served, 1, "requests_served counts it");
	tap_ok(mk_conn_busy(conn) && !mk_conn_flushed(conn),
	    "busy while the answer is unwritten");
	conn->out_sent = conn->out.len;
	tap_ok(!mk_conn_busy(conn) && mk_conn_flushed(conn),
	    "not busy once it is written");
	reply_free(&r);

	/* The same connection serves a second request. */
	put_request(&in, 1, true, get_health, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 200 && r.ends == 1 && r.end[0].id == 1 &&
		conn->state == MK_CONN_IDLE,
	    "a second request on the kept connection");
	reply_free(&r);

	/* HEAD: the same headers, no body, Content-Length still the GET one. */
	{
		const struct kv head[] = {
			{ "REQUEST_METHOD", "HEAD" },
			{ "REQUEST_URI", "/healthz" },
		};

		put_request(&in, 1, true, head, 2, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 200, "HEAD /healthz: 200");
		tap_is_str(r.body, "", "HEAD /healthz: no body");
		tap_is_int(
		    atoi(header(&r, "Content-Length", value, sizeof(value))
			    ? value
			    : "-1"),
		    strlen(HEALTH_BODY),
		    "HEAD /healthz: Content-Length of the GET body");
		reply_free(&r);
	}
	/* OPTIONS on a known path: 204 with Allow. */
	{
		const struct kv options[] = {
			{ "REQUEST_METHOD", "OPTIONS" },
			{ "REQUEST_URI", "/healthz" },
		};

		put_request(&in, 1, true, options, 2, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 204, "OPTIONS /healthz: 204");
		tap_is_str(header(&r, "Allow", value, sizeof(value)),
		    "GET, HEAD, OPTIONS", "OPTIONS /healthz: Allow");
		tap_is_str(r.body, "", "OPTIONS /healthz: no body");
		reply_free(&r);
	}
	mk_conn_free(conn);

	/* Without FCGI_KEEP_CONN the connection closes after the answer. */
	conn = conn_new(fx);
	put_request(&in, 1, false, get_health, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 200 && r.ends == 1, "no keep_conn: answered");
	tap_is_int(conn->state, MK_CONN_CLOSING,
	    "no keep_conn: the connection is closing");
	reply_free(&r);
	put_request(&in, 2, false, get_health, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_is_int(r.records, 0, "a closing connection answers nothing more");
	reply_free(&r);
	mk_conn_free(conn);
	mk_buf_release(&in);
}

static void
test_conn_errors(struct fixture *fx)
{
	struct mk_conn *conn = conn_new(fx);
	struct mk_buf in;
	struct reply r;
	char value[128], id[128];

	mk_buf_init(&in, NULL);
	{
		const struct kv nope[] = {
			{ "REQUEST_METHOD", "GET" },
			{ "REQUEST_URI", "/nope" },
		};

		put_request(&in, 1, true, nope, 2, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 404, "GET /nope: 404");
		tap_ok(r.body != NULL &&
			strstr(r.body, "\"success\":false") != NULL &&
			strstr(r.body, "\"code\":\"not_found\"") != NULL,
		    "GET /nope: error envelope with code not_found (%s)",
		    r.body);
		tap_ok(
		    header(&r, "X-Request-Id", value, sizeof(value)) != NULL &&
			body_request_id(&r, id, sizeof(id)) != NULL &&
			strcmp(value, id) == 0,
		    "GET /nope: the body's request_id is the X-Request-Id "
		    "header");
		tap_ok(conn->state == MK_CONN_IDLE && r.ends == 1 &&
			r.end[0].status == FCGI_REQUEST_COMPLETE,
		    "GET /nope: the request completes normally");
		reply_free(&r);
	}
	{
		const struct kv post[] = {
			{ "REQUEST_METHOD", "POST" },
			{ "REQUEST_URI", "/healthz" },
			{ "CONTENT_TYPE", "application/json" },
			{ "CONTENT_LENGTH", "2" },
		};

		put_request(&in, 1, true, post, 4, "{}", 2);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 405, "POST /healthz: 405");
		tap_is_str(header(&r, "Allow", value, sizeof(value)),
		    "GET, HEAD, OPTIONS",
		    "POST /healthz: Allow: GET, HEAD, OPTIONS");
		tap_ok(r.body != NULL &&
			strstr(r.body, "\"code\":\"method_not_allowed\"") !=
			    NULL,
		    "POST /healthz: code method_not_allowed");
		reply_free(&r);
	}
	{
		const struct kv short_body[] = {
			{ "REQUEST_METHOD", "POST" },
			{ "REQUEST_URI", "/healthz" },
			{ "CONTENT_TYPE", "application/json" },
			{ "CONTENT_LENGTH", "5" },
		};

		put_request(&in, 1, true, short_body, 4, "{} ", 3);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 400, "CONTENT_LENGTH 5 with 3 bytes: 400");
		tap_ok(r.body != NULL &&
			strstr(r.body, "\"code\":\"bad_request\"") != NULL,
		    "CONTENT_LENGTH 5 with 3 bytes: code bad_request");
		tap_ok(conn->state == MK_CONN_IDLE && r.ends == 1,
		    "CONTENT_LENGTH 5 with 3 bytes: request ended, connection "
		    "idle");
		reply_free(&r);

		/* Longer than declared: answered as soon as it overflows. */
		put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
		put_params(&in, 1, short_body, 4);
		put_stream(&in, FCGI_STDIN, 1, "{\"a\":1}", 7);
		(void)exchange(conn, &in, &r);
		tap_ok(r.status == 400 && r.ends == 1 &&
			conn->state == MK_CONN_DISCARD,
		    "a body longer than CONTENT_LENGTH: 400 before the body "
		    "ends");
		reply_free(&r);
		mk_fcgi_put_record(&in, FCGI_STDIN, 1, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_ok(r.records == 0 && conn->state == MK_CONN_IDLE,
		    "the rest of that body is skipped silently");
		reply_free(&r);
	}
	{
		const struct kv bad_length[] = {
			{ "REQUEST_METHOD", "POST" },
			{ "REQUEST_URI", "/healthz" },
			{ "CONTENT_TYPE", "application/json" },
			{ "CONTENT_LENGTH", "12a" },
		};

		put_request(&in, 1, true, bad_length, 4, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_ok(r.status == 400 && conn->state == MK_CONN_IDLE,
		    "a malformed CONTENT_LENGTH: 400");
		reply_free(&r);
	}
	{
		const struct kv plain[] = {
			{ "REQUEST_METHOD", "POST" },
			{ "REQUEST_URI", "/healthz" },
			{ "CONTENT_TYPE", "text/plain" },
			{ "CONTENT_LENGTH", "3" },
		};
		const struct kv plain_no_length[] = {
			{ "REQUEST_METHOD", "POST" },
			{ "REQUEST_URI", "/healthz" },
			{ "CONTENT_TYPE", "text/plain" },
		};

		put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
		put_params(&in, 1, plain, 4);
		(void)exchange(conn, &in, &r);
		tap_is_int(r.status, 415,
		    "text/plain body: 415 before the body is sent");
		tap_ok(r.body != NULL &&
			strstr(r.body, "\"code\":\"unsupported_media_type\"") !=
			    NULL,
		    "text/plain body: code unsupported_media_type");
		reply_free(&r);
		put_stream(&in, FCGI_STDIN, 1, "abc", 3);
		mk_fcgi_put_record(&in, FCGI_STDIN, 1, NULL, 0);
		(void)exchange(conn, &in, &r);
		tap_ok(r.records == 0 && conn->state == MK_CONN_IDLE,
		    "text/plain body: the body is skipped");
		reply_free(&r);

		put_request(&in, 1, true, plain_no_length, 3, "abc", 3);
		(void)exchange(conn, &in, &r);
		tap_ok(r.status == 415 && r.ends == 1 &&
			conn->state == MK_CONN_IDLE,
		    "text/plain body without CONTENT_LENGTH: 415 at the end of "
		    "the body");
		reply_free(&r);
	}
	mk_conn_free(conn);
	mk_buf_release(&in);
}

static void
test_conn_max_body(struct fixture *fx)
{
	const struct kv too_long[] = {
		{ "REQUEST_METHOD", "POST" },
		{ "REQUEST_URI", "/healthz" },
		{ "CONTENT_TYPE", "application/json" },
		{ "CONTENT_LENGTH", "2000" },
	};
	const struct kv no_length[] = {
		{ "REQUEST_METHOD", "POST" },
		{ "REQUEST_URI", "/healthz" },
		{ "CONTENT_TYPE", "application/json" },
	};
	struct mk_conn *conn = conn_new(fx);
	char chunk[MAX_BODY];
	struct mk_buf in;
	struct reply r;

	memset(chunk, ' ', sizeof(chunk));
	mk_buf_init(&in, NULL);
	put_begin(&in, 5, FCGI_RESPONDER, FCGI_KEEP_CONN);
	put_params(&in, 5, too_long, 4);
	(void)exchange(conn, &in, &r);
	tap_is_int(r.status, 413,
	    "CONTENT_LENGTH over max_body: 413 before any STDIN");
	tap_ok(r.body != NULL &&
		strstr(r.body, "\"code\":\"payload_too_large\"") != NULL,
	    "CONTENT_LENGTH over max_body: code payload_too_large");
	tap_ok(r.ends == 1 && r.end[0].id == 5 &&
		r.end[0].status == FCGI_REQUEST_COMPLETE,
	    "CONTENT_LENGTH over max_body: the request is ended");
	tap_is_int(conn->state, MK_CONN_DISCARD,
	    "CONTENT_LENGTH over max_body: discarding the body");
	reply_free(&r);
	put_stream(&in, FCGI_STDIN, 5, chunk, sizeof(chunk));
	put_stream(&in, FCGI_STDIN, 5, chunk, sizeof(chunk));
	(void)exchange(conn, &in, &r);
	tap_ok(r.records == 0 && conn->state == MK_CONN_DISCARD,
	    "further STDIN records are ignored");
	reply_free(&r);
	mk_fcgi_put_record(&in, FCGI_STDIN, 5, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.records == 0 && conn->state == MK_CONN_IDLE,
	    "the empty STDIN ends the discarded request silently");
	reply_free(&r);
	put_request(&in, 6, true, get_health, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 200 && r.body != NULL &&
		strcmp(r.body, HEALTH_BODY) == 0 && r.ends == 1 &&
		r.end[0].id == 6,
	    "the connection then serves a second request");
	reply_free(&r);

	/* No CONTENT_LENGTH: the body is counted as it arrives. */
	put_begin(&in, 7, FCGI_RESPONDER, FCGI_KEEP_CONN);
	put_params(&in, 7, no_length, 3);
	put_stream(&in, FCGI_STDIN, 7, chunk, 600);
	(void)exchange(conn, &in, &r);
	tap_ok(r.records == 0 && conn->state == MK_CONN_STDIN,
	    "600 bytes of 1000: still reading");
	reply_free(&r);
	put_stream(&in, FCGI_STDIN, 7, chunk, 600);
	(void)exchange(conn, &in, &r);
	tap_is_int(r.status, 413, "a body growing past max_body: 413 at once");
	tap_ok(r.ends == 1 && conn->state == MK_CONN_DISCARD,
	    "a body growing past max_body: ended, rest discarded");
	reply_free(&r);
	mk_fcgi_put_record(&in, FCGI_STDIN, 7, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(
	    r.records == 0 && conn->state == MK_CONN_IDLE, "then idle again");
	reply_free(&r);

	/*
	 * Exactly max_body is fine: it reaches the router (POST /healthz is
	 * 405).
	 */
	put_request(&in, 8, true, no_length, 3, chunk, MAX_BODY);
	(void)exchange(conn, &in, &r);
	tap_is_int(r.status, 405,
	    "a body of exactly max_body is read (405 from the router)");
	reply_free(&r);
	mk_conn_free(conn);
	mk_buf_release(&in);
}

static void
test_conn_protocol(struct fixture *fx)
{
	struct mk_conn *conn = conn_new(fx);
	struct mk_buf in, values;
	struct reply r;
	enum mk_err rc;

	mk_buf_init(&in, NULL);
	/*
	 * A second BEGIN_REQUEST while one is active is refused, not mixed in.
	 */
	put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	put_begin(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
	(void)exchange(conn, &in, &r);
	tap_ok(r.ends == 1 && r.end[0].id == 2 &&
		r.end[0].status == FCGI_CANT_MPX_CONN && r.stdout_records == 0,
	    "second BEGIN_REQUEST: END_REQUEST(2, CANT_MPX_CONN)");
	reply_free(&r);
	/* Records of a request id that is not active are ignored. */
	put_params(&in, 2, get_health, 1);
	put_params(&in, 1, get_health, 4);
	mk_fcgi_put_record(&in, FCGI_STDIN, 1, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 200 && r.ends == 1 && r.end[0].id == 1 &&
		r.end[0].status == FCGI_REQUEST_COMPLETE,
	    "the first request still completes (records of id 2 ignored)");
	reply_free(&r);

	put_begin(&in, 3, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
	(void)exchange(conn, &in, &r);
	tap_ok(r.ends == 1 && r.end[0].id == 3 &&
		r.end[0].status == FCGI_UNKNOWN_ROLE && r.stdout_records == 0 &&
		conn->state == MK_CONN_IDLE,
	    "role FCGI_AUTHORIZER: END_REQUEST(UNKNOWN_ROLE), still idle");
	reply_free(&r);
	mk_fcgi_put_record(&in, FCGI_BEGIN_REQUEST, 3, "\0\1", 2);
	(void)exchange(conn, &in, &r);
	tap_ok(r.ends == 1 && r.end[0].status == FCGI_UNKNOWN_ROLE,
	    "a short BEGIN_REQUEST body: UNKNOWN_ROLE");
	tap_is_int(conn->state, MK_CONN_CLOSING,
	    "a short BEGIN_REQUEST body (no KEEP_CONN flag): the connection "
	    "closes");
	reply_free(&r);
	mk_conn_free(conn);

	/* A refused role without KEEP_CONN closes too (FastCGI 1.0, 5.1). */
	conn = conn_new(fx);
	put_begin(&in, 3, FCGI_AUTHORIZER, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.ends == 1 && r.end[0].status == FCGI_UNKNOWN_ROLE &&
		conn->state == MK_CONN_CLOSING,
	    "role FCGI_AUTHORIZER without KEEP_CONN: UNKNOWN_ROLE, then close");
	reply_free(&r);
	mk_conn_free(conn);
	conn = conn_new(fx);

	/* Management records (request id 0). */
	mk_buf_init(&values, NULL);
	mk_fcgi_put_pair(&values, LIT(FCGI_MPXS_CONNS), "", 0);
	mk_fcgi_put_record(&in, FCGI_GET_VALUES, 0, values.data, values.len);
	mk_buf_release(&values);
	(void)exchange(conn, &in, &r);
	tap_ok(r.others == 1 && r.other_type == FCGI_GET_VALUES_RESULT &&
		r.ends == 0,
	    "GET_VALUES is answered with GET_VALUES_RESULT");
	reply_free(&r);
	mk_fcgi_put_record(&in, 42, 0, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.others == 1 && r.other_type == FCGI_UNKNOWN_TYPE,
	    "an unknown management type is answered with UNKNOWN_TYPE");
	reply_free(&r);

	/* ABORT_REQUEST ends the request. */
	put_begin(&in, 4, FCGI_RESPONDER, FCGI_KEEP_CONN);
	mk_fcgi_put_record(&in, FCGI_ABORT_REQUEST, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.ends == 1 && r.end[0].id == 4 && conn->state == MK_CONN_IDLE,
	    "ABORT_REQUEST: END_REQUEST and idle again");
	reply_free(&r);
	mk_conn_free(conn);

	/* A version other than 1 drops the connection. */
	conn = conn_new(fx);
	put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	in.data[0] = 2;
	rc = exchange(conn, &in, &r);
	tap_is_int(rc, MK_EBADREQUEST, "a version 2 record: MK_EBADREQUEST");
	tap_is_int(conn->state, MK_CONN_CLOSING, "a version 2 record: closing");
	reply_free(&r);
	mk_conn_free(conn);

	/* STDIN before the PARAMS end is a protocol violation. */
	conn = conn_new(fx);
	put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	mk_fcgi_put_record(&in, FCGI_STDIN, 1, "x", 1);
	rc = exchange(conn, &in, &r);
	tap_ok(rc == MK_EBADREQUEST && conn->state == MK_CONN_CLOSING,
	    "STDIN while PARAMS are still expected: MK_EBADREQUEST");
	reply_free(&r);
	mk_conn_free(conn);
	mk_buf_release(&in);
}

static void
test_conn_request_id(struct fixture *fx)
{
	const struct kv sane[] = {
		{ "REQUEST_METHOD", "GET" },
		{ "REQUEST_URI", "/nope" },
		{ "HTTP_X_REQUEST_ID", "abc-123" },
	};
	const struct kv insane[] = {
		{ "REQUEST_METHOD", "GET" },
		{ "REQUEST_URI", "/nope" },
		{ "HTTP_X_REQUEST_ID", "bad id!" },
	};
	struct mk_conn *conn = conn_new(fx);
	char value[128], id[128];
	struct mk_buf in;
	struct reply r;

	mk_buf_init(&in, NULL);
	put_request(&in, 1, true, sane, 3, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_is_str(header(&r, "X-Request-Id", value, sizeof(value)), "abc-123",
	    "a sane X-Request-Id is echoed in the header");
	tap_is_str(body_request_id(&r, id, sizeof(id)), "abc-123",
	    "a sane X-Request-Id is the error body's request_id");
	reply_free(&r);

	put_request(&in, 1, true, insane, 3, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(is_hex32(header(&r, "X-Request-Id", value, sizeof(value))),
	    "an insane X-Request-Id is replaced by 32 hex digits (%s)", value);
	tap_is_str(body_request_id(&r, id, sizeof(id)), value,
	    "the replacement is the error body's request_id");
	tap_ok(strstr(r.text.data, "bad id!") == NULL,
	    "the insane id appears nowhere");
	reply_free(&r);
	mk_conn_free(conn);
	mk_buf_release(&in);
}

static void
test_conn_byte_at_a_time(struct fixture *fx)
{
	const struct kv post[] = {
		{ "REQUEST_METHOD", "POST" },
		{ "REQUEST_URI", "/healthz" },
		{ "CONTENT_TYPE", "application/json" },
		{ "CONTENT_LENGTH", "15" },
	};
	struct mk_conn *conn = conn_new(fx);
	struct mk_buf whole, one;
	int early = 0, ok_rc = 1;
	struct reply r;
	char value[128];

	mk_buf_init(&whole, NULL);
	mk_buf_init(&one, NULL);
	put_request(&whole, 1, true, get_health, 4, NULL, 0);
	for (size_t i = 0; i < whole.len; i++) {
		mk_buf_append(&one, whole.data + i, 1);
		if (exchange(conn, &one, &r) != MK_OK)
			ok_rc = 0;
		if (i + 1 < whole.len && r.records > 0)
			early = 1;
		if (i + 1 < whole.len)
			reply_free(&r);
	}
	tap_ok(ok_rc && !early,
	    "fed one byte at a time: nothing until the last byte (%zu bytes)",
	    whole.len);
	tap_ok(r.status == 200 && r.body != NULL &&
		strcmp(r.body, HEALTH_BODY) == 0 && r.ends == 1,
	    "fed one byte at a time: the same 200 answer");
	tap_ok(conn->in.len == 0 && conn->state == MK_CONN_IDLE,
	    "fed one byte at a time: all consumed, idle");
	reply_free(&r);

	/* With a body, split across records and bytes. */
	mk_buf_clear(&whole);
	put_begin(&whole, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
	put_params(&whole, 2, post, 4);
	put_stream(&whole, FCGI_STDIN, 2, "{\"a\":", 5);
	put_stream(&whole, FCGI_STDIN, 2, "\"b\"", 3);
	put_stream(&whole, FCGI_STDIN, 2, ",\"c\":1}", 7);
	mk_fcgi_put_record(&whole, FCGI_STDIN, 2, NULL, 0);
	ok_rc = 1;
	early = 0;
	for (size_t i = 0; i < whole.len; i++) {
		mk_buf_append(&one, whole.data + i, 1);
		if (exchange(conn, &one, &r) != MK_OK)
			ok_rc = 0;
		if (i + 1 < whole.len && r.records > 0)
			early = 1;
		if (i + 1 < whole.len)
			reply_free(&r);
	}
	tap_ok(ok_rc && !early && r.status == 405 &&
		header(&r, "Allow", value, sizeof(value)) != NULL &&
		r.end[0].id == 2,
	    "a 15-byte body in three records, one byte at a time: routed "
	    "(405)");
	reply_free(&r);
	mk_buf_release(&whole);
	mk_buf_release(&one);
	mk_conn_free(conn);
}

static void
test_conn_big_params(struct fixture *fx)
{
	enum {
		COOKIE = MK_CONN_MAX_PARAMS_BYTES + 4000
	};
	char *cookie = malloc(COOKIE + 1);
	struct kv big[] = {
		{ "REQUEST_METHOD", "GET" },
		{ "REQUEST_URI", "/healthz" },
		{ "HTTP_COOKIE", cookie },
	};
	struct kv many[MK_FCGI_MAX_PARAMS + 3];
	char names[MK_FCGI_MAX_PARAMS + 1][16];
	struct mk_conn *conn = conn_new(fx);
	struct mk_buf in;
	struct reply r;

	memset(cookie, 'c', COOKIE);
	cookie[COOKIE] = '\0';
	mk_buf_init(&in, NULL);
	put_begin(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	put_params(&in, 1, big, 3);
	(void)exchange(conn, &in, &r);
	tap_is_int(r.status, 431, "PARAMS over MK_CONN_MAX_PARAMS_BYTES: 431");
	tap_ok(r.body != NULL &&
		strstr(r.body, "\"code\":\"headers_too_large\"") != NULL,
	    "PARAMS over the cap: code headers_too_large");
	tap_ok(r.ends == 1 && conn->state == MK_CONN_DISCARD,
	    "PARAMS over the cap: body skipped");
	reply_free(&r);
	mk_fcgi_put_record(&in, FCGI_STDIN, 1, NULL, 0);
	put_request(&in, 2, true, get_health, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 200 && r.ends == 1 && r.end[0].id == 2,
	    "after a 431 the connection serves the next request");
	reply_free(&r);

	/* Too many parameters, each small. */
	many[0] = (struct kv){ "REQUEST_METHOD", "GET" };
	many[1] = (struct kv){ "REQUEST_URI", "/healthz" };
	for (int i = 0; i < MK_FCGI_MAX_PARAMS + 1; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "HTTP_X_%d", i);
		many[2 + i] = (struct kv){ names[i], "1" };
	}
	put_request(&in, 3, true, many, MK_FCGI_MAX_PARAMS + 3, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_is_int(
	    r.status, 431, "more than MK_FCGI_MAX_PARAMS parameters: 431");
	tap_ok(conn->state == MK_CONN_IDLE,
	    "and the connection is idle after the empty STDIN");
	reply_free(&r);

	/* A malformed pair inside PARAMS. */
	put_begin(&in, 4, FCGI_RESPONDER, FCGI_KEEP_CONN);
	mk_fcgi_put_record(&in, FCGI_PARAMS, 4,
	    "\x05\x05"
	    "AB",
	    4);
	mk_fcgi_put_record(&in, FCGI_PARAMS, 4, NULL, 0);
	mk_fcgi_put_record(&in, FCGI_STDIN, 4, NULL, 0);
	(void)exchange(conn, &in, &r);
	tap_ok(r.status == 400 && r.ends == 1 && conn->state == MK_CONN_IDLE,
	    "a truncated FastCGI pair: 400");
	reply_free(&r);
	mk_conn_free(conn);
	mk_buf_release(&in);
	free(cookie);
}

int
main(void)
{
	struct fixture fx;

	/* Access lines would otherwise mix with the TAP output. */
	if (mk_log_open("/dev/null", MK_LOG_ERROR) != 0)
		tap_ok(0, "cannot open /dev/null for the log");
	test_record_parse();
	test_params_decode();
	test_pair_round_trip();
	test_put_stdout();
	test_put_end_and_values();

	fx.config = mk_config_new();
	{
		/*
		 * The defaults, and the one key with none: the cursor MAC key.
		 */
		static const char text[] =
		    "cursor_secret = "
		    "unit-test-cursor-secret-0123456789abcdef\n";
		char err[MK_CONFIG_ERR_MAX];

		if (fx.config != NULL &&
		    mk_config_parse(fx.config, "test", text, sizeof(text) - 1,
			err, sizeof(err)) != MK_OK)
			tap_ok(0, "cursor_secret applies: %s", err);
	}
	fx.app = fx.config != NULL ? mk_app_new(fx.config) : NULL;
	tap_ok(fx.app != NULL,
	    "the application builds from the default configuration");
	if (fx.app != NULL) {
		test_conn_health(&fx);
		test_conn_errors(&fx);
		test_conn_max_body(&fx);
		test_conn_protocol(&fx);
		test_conn_request_id(&fx);
		test_conn_byte_at_a_time(&fx);
		test_conn_big_params(&fx);
	}
	mk_app_free(fx.app);
	mk_config_free(fx.config);
	mk_log_close();
	return tap_done();
}
