/*
 * Unit tests of the write-body validators (src/markets/validate.c),
 * table-driven against the rules of API.md. mk_amount_parse() maps each
 * accepted decimal to its two-decimal canonical text and refuses signs,
 * exponents, extra decimals, leading zeros, 0, more than 1e12, spaces and
 * anything not ASCII. Each body case is JSON text parsed with the strict
 * parser, then validated as a create, replace (PUT), patch or position
 * body: an accepted body names the exact canonical values it must give
 * (trimmed name, defaults, end_date as DATETIME text, two-decimal amount,
 * and for PUT and PATCH the mask of fields to write); a refused body names
 * every field its details must list, each exactly once and nothing else,
 * so a case cannot pass by failing for some other reason or by reporting
 * a field twice. Length limits are counted in characters, not bytes, with
 * bodies built at run time from one- to four-byte characters.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json_parse.h"
#include "markets/model.h"
#include "markets/validate.h"
#include "tap.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- mk_amount_parse ------------------------------------------------ */

struct amount_case {
	const char *in;
	const char *want; /* canonical text, or NULL: refused */
};

static const struct amount_case amount_cases[] = {
	{ "1", "1.00" },
	{ "0.5", "0.50" },
	{ "0.05", "0.05" },
	{ "0.01", "0.01" },
	{ "12.5", "12.50" },
	{ "12.34", "12.34" },
	{ "100", "100.00" },
	{ "10.0", "10.00" },
	{ "999999999999.99", "999999999999.99" },
	{ "1000000000000", "1000000000000.00" },
	{ "1000000000000.0", "1000000000000.00" },
	{ "1000000000000.00", "1000000000000.00" },
	{ "0", NULL },
	{ "0.0", NULL },
	{ "0.00", NULL },
	{ "-1", NULL },
	{ "-0", NULL },
	{ "+1", NULL },
	{ "1e2", NULL },
	{ "1E2", NULL },
	{ "1e999", NULL },
	{ "1.", NULL },
	{ ".5", NULL },
	{ "1.234", NULL },
	{ "1.2.3", NULL },
	{ "01", NULL },
	{ "00.5", NULL },
	{ "1000000000000.01", NULL },
	{ "1000000000001", NULL },
	{ "9999999999999", NULL },
	{ "10000000000000", NULL },
	{ "1 ", NULL },
	{ " 1", NULL },
	{ "1\n", NULL },
	{ "\t1", NULL },
	{ "1,5", NULL },
	{ "1.5x", NULL },
	{ "", NULL },
	{ "abc", NULL },
	{ "\xd9\xa1", NULL }, /* ARABIC-INDIC DIGIT ONE */
	{ "1\xd9\xa1", NULL },
	{ "\xef\xbc\x91", NULL }, /* FULLWIDTH DIGIT ONE */
	{ "NaN", NULL },
	{ "Infinity", NULL },
	{ "-Infinity", NULL },
};

/*
 * Printable text of an amount for TAP lines (controls and non-ASCII as \xNN).
 */
static const char *
printable(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s != '\0' && n + 5 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch >= 0x7f)
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", ch);
		else
			out[n++] = (char)ch;
	}
	out[n] = '\0';
	return out;
}

static void
test_amount_parse(void)
{
	for (size_t i = 0; i < N_ELEMS(amount_cases); i++) {
		const struct amount_case *c = &amount_cases[i];
		/* the size validate.h promises is enough */
		char out[MK_AMOUNT_TEXT_MAX];
		char shown[64];
		const char *in = printable(c->in, shown, sizeof(shown));
		bool ok;

		memset(out, 'X', sizeof(out));
		out[sizeof(out) - 1] = '\0';
		ok = mk_amount_parse(c->in, out);
		if (c->want != NULL) {
			tap_ok(ok, "amount '%s' is accepted", in);
			tap_is_str(ok ? out : NULL, c->want,
			    "amount '%s' canonical text", in);
		} else {
			tap_ok(!ok, "amount '%s' is refused", in);
		}
	}
}

/* ---- body cases ----------------------------------------------------- */

enum kind {
	CREATE,
	REPLACE,
	PATCH,
	POSITION
};

static const char *const kind_names[] = { "create", "replace", "patch",
	"position" };

/* What an accepted body must give. */
struct want {
	const char *name, *description, *status, *end_date;
	bool has_position;
	const char *side, *amount;
	/* checked for REPLACE and PATCH (create writes everything) */
	unsigned present;
};

struct body_case {
	enum kind kind;
	const char *body; /* JSON text */
	enum mk_err rc;
	struct want want; /* when MK_OK */
	/* when MK_EINVAL: every field of details, once each */
	const char *fields[16];
	const char *message; /* when set: the message of fields[0] */
};

#define BIT(f) MK_MARKET_FIELD_BIT(MK_MARKET_##f)
#define WRITABLE (BIT(NAME) | BIT(DESCRIPTION) | BIT(STATUS) | BIT(END_DATE))

/* The defaults a create or PUT gets for what it omits. */
#define DEFAULTS(n)                                                            \
	.name = (n), .description = "", .status = "active", .end_date = NULL

static const struct body_case create_cases[] = {
	/* Minimal body and defaults. */
	{ CREATE, "{\"name\":\"x\"}", MK_OK, .want = { DEFAULTS("x") } },
	{ CREATE,
	    "{\"name\":\"x\",\"description\":\"\",\"status\":\"active\",\"end_"
	    "date\":null}",
	    MK_OK, .want = { DEFAULTS("x") } },
	{ CREATE,
	    "{\"name\":\"Will it rain?\",\"description\":\"In Paris, "
	    "tomorrow.\",\"status\":\"closed\","
	    "\"end_date\":\"2027-01-31T12:00:00Z\"}",
	    MK_OK,
	    .want = { .name = "Will it rain?",
		.description = "In Paris, tomorrow.",
		.status = "closed",
		.end_date = "2027-01-31 12:00:00" } },
	/* Trimming. */
	{ CREATE, "{\"name\":\"  a  \"}", MK_OK, .want = { DEFAULTS("a") } },
	{ CREATE, "{\"name\":\"\\t\\n a b \\r\\n\\t\"}", MK_OK,
	    .want = { DEFAULTS("a b") } },
	{ CREATE, "{\"name\":\"a  \\t b\"}", MK_OK,
	    .want = { DEFAULTS("a  \t b") } },
	{ CREATE, "{\"name\":\"caf\\u00e9\"}", MK_OK,
	    .want = { DEFAULTS("caf\xc3\xa9") } },
	{ CREATE, "{\"name\":\"\"}", MK_EINVAL, .fields = { "name" } },
	{ CREATE, "{\"name\":\"   \"}", MK_EINVAL, .fields = { "name" } },
	{ CREATE, "{\"name\":\" \\t\\n\\r \"}", MK_EINVAL,
	    .fields = { "name" } },
	{ CREATE, "{\"name\":5}", MK_EINVAL, .fields = { "name" } },
	{ CREATE, "{\"name\":null}", MK_EINVAL, .fields = { "name" } },
	{ CREATE, "{\"name\":[\"x\"]}", MK_EINVAL, .fields = { "name" } },
	/* name is required. */
	{ CREATE, "{}", MK_EINVAL, .fields = { "name" },
	    .message = "is required" },
	{ CREATE, "{\"description\":\"d\"}", MK_EINVAL, .fields = { "name" },
	    .message = "is required" },
	{ CREATE, "{\"status\":\"open\"}", MK_EINVAL,
	    .fields = { "status", "name" } },
	/* Description. */
	{ CREATE, "{\"name\":\"x\",\"description\":\"Some words.\"}", MK_OK,
	    .want = { .name = "x",
		.description = "Some words.",
		.status = "active" } },
	{ CREATE, "{\"name\":\"x\",\"description\":5}", MK_EINVAL,
	    .fields = { "description" } },
	{ CREATE, "{\"name\":\"x\",\"description\":null}", MK_EINVAL,
	    .fields = { "description" } },
	/* Status. */
	{ CREATE, "{\"name\":\"x\",\"status\":\"active\"}", MK_OK,
	    .want = { DEFAULTS("x") } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"closed\"}", MK_OK,
	    .want = { .name = "x", .description = "", .status = "closed" } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"resolved\"}", MK_OK,
	    .want = { .name = "x", .description = "", .status = "resolved" } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"ACTIVE\"}", MK_EINVAL,
	    .fields = { "status" } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"open\"}", MK_EINVAL,
	    .fields = { "status" } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"active \"}", MK_EINVAL,
	    .fields = { "status" } },
	{ CREATE, "{\"name\":\"x\",\"status\":\"\"}", MK_EINVAL,
	    .fields = { "status" } },
	{ CREATE, "{\"name\":\"x\",\"status\":5}", MK_EINVAL,
	    .fields = { "status" } },
	{ CREATE, "{\"name\":\"x\",\"status\":null}", MK_EINVAL,
	    .fields = { "status" } },
	/* end_date: accepted forms, canonical DATETIME text. */
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00Z\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "2027-01-31 12:00:00" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2028-02-29T00:00:00Z\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "2028-02-29 00:00:00" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2000-02-29T23:59:59Z\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "2000-02-29 23:59:59" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00.123Z\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "2027-01-31 12:00:00" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00+00:00\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "2027-01-31 12:00:00" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"1970-01-01T00:00:00Z\"}",
	    MK_OK,
	    .want = { .name = "x",
		.description = "",
		.status = "active",
		.end_date = "1970-01-01 00:00:00" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":null}", MK_OK,
	    .want = { DEFAULTS("x") } },
	/* end_date: refused. */
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-02-29T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2100-02-29T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-04-31T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-13-01T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-00-01T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-00T00:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T24:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:60:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:60Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31 12:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00+01:00\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00.Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31T12:00:00ZZ\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-1-31T12:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"+2027-01-31T12:00:00Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"2027-01-31\"}", MK_EINVAL,
	    .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"\"}", MK_EINVAL,
	    .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":1800000000}", MK_EINVAL,
	    .fields = { "end_date" } },
	{ CREATE, "{\"name\":\"x\",\"end_date\":\"1969-12-31T23:59:59Z\"}",
	    MK_EINVAL, .fields = { "end_date" } },
	/* Read-only fields: each named, with its own message. */
	{ CREATE, "{\"name\":\"x\",\"id\":1}", MK_EINVAL, .fields = { "id" },
	    .message = "is read-only" },
	{ CREATE, "{\"name\":\"x\",\"volume\":\"0.00\"}", MK_EINVAL,
	    .fields = { "volume" }, .message = "is read-only" },
	{ CREATE, "{\"name\":\"x\",\"creator_id\":7}", MK_EINVAL,
	    .fields = { "creator_id" }, .message = "is read-only" },
	{ CREATE, "{\"name\":\"x\",\"created_at\":\"2027-01-31T12:00:00Z\"}",
	    MK_EINVAL, .fields = { "created_at" }, .message = "is read-only" },
	{ CREATE, "{\"name\":\"x\",\"updated_at\":null}", MK_EINVAL,
	    .fields = { "updated_at" }, .message = "is read-only" },
	/* Unknown fields (no mass assignment). */
	{ CREATE, "{\"name\":\"x\",\"owner\":\"me\"}", MK_EINVAL,
	    .fields = { "owner" } },
	{ CREATE, "{\"name\":\"x\",\"Name\":\"y\"}", MK_EINVAL,
	    .fields = { "Name" } },
	{ CREATE, "{\"name\":\"x\",\"side\":\"yes\",\"amount\":\"1\"}",
	    MK_EINVAL, .fields = { "side", "amount" } },
	/* initial_position. */
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\",\"amount\":"
	    "\"12.5\"}}",
	    MK_OK,
	    .want = { DEFAULTS("x"), .has_position = true, .side = "yes",
		.amount = "12.50" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"amount\":\"1\",\"side\":"
	    "\"no\"}}",
	    MK_OK,
	    .want = { DEFAULTS("x"), .has_position = true, .side = "no",
		.amount = "1.00" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"maybe\","
	    "\"amount\":\"1\"}}",
	    MK_EINVAL, .fields = { "initial_position.side" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"YES\",\"amount\":"
	    "\"1\"}}",
	    MK_EINVAL, .fields = { "initial_position.side" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\",\"amount\":"
	    "\"0\"}}",
	    MK_EINVAL, .fields = { "initial_position.amount" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\",\"amount\":"
	    "1}}",
	    MK_EINVAL, .fields = { "initial_position.amount" } },
	{ CREATE, "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\"}}",
	    MK_EINVAL, .fields = { "initial_position.amount" } },
	{ CREATE, "{\"name\":\"x\",\"initial_position\":{}}", MK_EINVAL,
	    .fields = { "initial_position.side", "initial_position.amount" } },
	{ CREATE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\",\"amount\":"
	    "\"1\",\"price\":2}}",
	    MK_EINVAL, .fields = { "initial_position.price" } },
	{ CREATE, "{\"name\":\"x\",\"initial_position\":[]}", MK_EINVAL,
	    .fields = { "initial_position" } },
	{ CREATE, "{\"name\":\"x\",\"initial_position\":\"yes\"}", MK_EINVAL,
	    .fields = { "initial_position" } },
	{ CREATE, "{\"name\":\"x\",\"initial_position\":null}", MK_EINVAL,
	    .fields = { "initial_position" } },
	/* A body wrong everywhere lists every failing field, once. */
	{ CREATE,
	    "{\"id\":1,\"name\":\"  "
	    "\",\"description\":5,\"status\":\"open\",\"end_date\":"
	    "\"tomorrow\","
	    "\"volume\":\"1.00\",\"creator_id\":2,\"created_at\":3,\"updated_"
	    "at\":4,"
	    "\"initial_position\":{\"side\":\"maybe\",\"amount\":\"-1\",\"x\":"
	    "1},\"foo\":true}",
	    MK_EINVAL,
	    .fields = { "id", "name", "description", "status", "end_date",
		"volume", "creator_id", "created_at", "updated_at",
		"initial_position.x", "initial_position.side",
		"initial_position.amount", "foo" } },
	{ CREATE, "{\"id\":1,\"foo\":2,\"status\":3}", MK_EINVAL,
	    .fields = { "id", "foo", "status", "name" } },
	/* Not an object. */
	{ CREATE, "[]", MK_EINVAL, .fields = { "body" } },
	{ CREATE, "[{\"name\":\"x\"}]", MK_EINVAL, .fields = { "body" } },
	{ CREATE, "\"s\"", MK_EINVAL, .fields = { "body" } },
	{ CREATE, "5", MK_EINVAL, .fields = { "body" } },
	{ CREATE, "true", MK_EINVAL, .fields = { "body" } },
	{ CREATE, "null", MK_EINVAL, .fields = { "body" } },
};

static const struct body_case replace_cases[] = {
	{ REPLACE, "{\"name\":\"x\"}", MK_OK,
	    .want = { DEFAULTS("x"), .present = WRITABLE } },
	{ REPLACE,
	    "{\"name\":\" y \",\"description\":\"d\",\"status\":\"resolved\","
	    "\"end_date\":\"2027-01-31T12:00:00.5+00:00\"}",
	    MK_OK,
	    .want = { .name = "y",
		.description = "d",
		.status = "resolved",
		.end_date = "2027-01-31 12:00:00",
		.present = WRITABLE } },
	{ REPLACE, "{\"name\":\"x\",\"end_date\":null}", MK_OK,
	    .want = { DEFAULTS("x"), .present = WRITABLE } },
	{ REPLACE, "{}", MK_EINVAL, .fields = { "name" },
	    .message = "is required" },
	{ REPLACE, "{\"description\":\"d\",\"status\":\"closed\"}", MK_EINVAL,
	    .fields = { "name" } },
	{ REPLACE, "{\"name\":\"\"}", MK_EINVAL, .fields = { "name" } },
	{ REPLACE,
	    "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\",\"amount\":"
	    "\"1\"}}",
	    MK_EINVAL, .fields = { "initial_position" } },
	{ REPLACE, "{\"name\":\"x\",\"initial_position\":{\"side\":\"maybe\"}}",
	    MK_EINVAL, .fields = { "initial_position" } },
	{ REPLACE, "{\"name\":\"x\",\"id\":1,\"volume\":\"2.00\"}", MK_EINVAL,
	    .fields = { "id", "volume" } },
	{ REPLACE,
	    "{\"name\":\"x\",\"status\":\"open\",\"end_date\":\"2027-02-30T00:"
	    "00:00Z\"}",
	    MK_EINVAL, .fields = { "status", "end_date" } },
	{ REPLACE, "[]", MK_EINVAL, .fields = { "body" } },
	{ REPLACE, "null", MK_EINVAL, .fields = { "body" } },
};

static const struct body_case patch_cases[] = {
	{ PATCH, "{}", MK_EINVAL, .fields = { "body" } },
	{ PATCH, "{\"status\":\"closed\"}", MK_OK,
	    .want = { .name = NULL,
		.description = "",
		.status = "closed",
		.present = BIT(STATUS) } },
	{ PATCH, "{\"end_date\":null}", MK_OK,
	    .want = { .name = NULL,
		.description = "",
		.status = "active",
		.end_date = NULL,
		.present = BIT(END_DATE) } },
	{ PATCH, "{\"end_date\":\"2027-01-31T12:00:00Z\"}", MK_OK,
	    .want = { .description = "",
		.status = "active",
		.end_date = "2027-01-31 12:00:00",
		.present = BIT(END_DATE) } },
	{ PATCH, "{\"name\":\" b \"}", MK_OK,
	    .want = { .name = "b",
		.description = "",
		.status = "active",
		.present = BIT(NAME) } },
	{ PATCH, "{\"description\":\"\"}", MK_OK,
	    .want = { .description = "",
		.status = "active",
		.present = BIT(DESCRIPTION) } },
	{ PATCH,
	    "{\"name\":\"n\",\"description\":\"d\",\"status\":\"resolved\","
	    "\"end_date\":null}",
	    MK_OK,
	    .want = { .name = "n",
		.description = "d",
		.status = "resolved",
		.present = WRITABLE } },
	{ PATCH, "{\"name\":\"\"}", MK_EINVAL, .fields = { "name" } },
	{ PATCH, "{\"name\":\"  \"}", MK_EINVAL, .fields = { "name" } },
	{ PATCH, "{\"name\":null}", MK_EINVAL, .fields = { "name" } },
	{ PATCH, "{\"initial_position\":{\"side\":\"yes\",\"amount\":\"1\"}}",
	    MK_EINVAL, .fields = { "initial_position" } },
	{ PATCH,
	    "{\"status\":\"closed\",\"initial_position\":{\"side\":\"yes\","
	    "\"amount\":\"1\"}}",
	    MK_EINVAL, .fields = { "initial_position" } },
	{ PATCH, "{\"id\":1}", MK_EINVAL, .fields = { "id" },
	    .message = "is read-only" },
	{ PATCH, "{\"foo\":1}", MK_EINVAL, .fields = { "foo" } },
	{ PATCH, "{\"status\":\"Closed\",\"end_date\":\"2027-01-31\"}",
	    MK_EINVAL, .fields = { "status", "end_date" } },
	{ PATCH, "[]", MK_EINVAL, .fields = { "body" } },
	{ PATCH, "\"s\"", MK_EINVAL, .fields = { "body" } },
	{ PATCH, "null", MK_EINVAL, .fields = { "body" } },
};

#define BUY(s, a) .want = { .has_position = true, .side = (s), .amount = (a) }

static const struct body_case position_cases[] = {
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"1\"}", MK_OK,
	    BUY("yes", "1.00") },
	{ POSITION, "{\"side\":\"no\",\"amount\":\"0.01\"}", MK_OK,
	    BUY("no", "0.01") },
	{ POSITION, "{\"amount\":\"12.5\",\"side\":\"no\"}", MK_OK,
	    BUY("no", "12.50") },
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"999999999999.99\"}", MK_OK,
	    BUY("yes", "999999999999.99") },
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"1000000000000\"}", MK_OK,
	    BUY("yes", "1000000000000.00") },
	{ POSITION, "{\"amount\":\"1\"}", MK_EINVAL, .fields = { "side" } },
	{ POSITION, "{\"side\":\"yes\"}", MK_EINVAL, .fields = { "amount" } },
	{ POSITION, "{}", MK_EINVAL, .fields = { "side", "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"1\",\"market_id\":3}",
	    MK_EINVAL, .fields = { "market_id" } },
	{ POSITION,
	    "{\"side\":\"yes\",\"amount\":\"1\",\"user_id\":3,\"id\":4}",
	    MK_EINVAL, .fields = { "user_id", "id" } },
	{ POSITION, "{\"side\":\"maybe\",\"amount\":\"1\"}", MK_EINVAL,
	    .fields = { "side" } },
	{ POSITION, "{\"side\":\"Yes\",\"amount\":\"1\"}", MK_EINVAL,
	    .fields = { "side" } },
	{ POSITION, "{\"side\":true,\"amount\":\"1\"}", MK_EINVAL,
	    .fields = { "side" } },
	{ POSITION, "{\"side\":null,\"amount\":\"1\"}", MK_EINVAL,
	    .fields = { "side" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":1}", MK_EINVAL,
	    .fields = { "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":1.5}", MK_EINVAL,
	    .fields = { "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":1e2}", MK_EINVAL,
	    .fields = { "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":null}", MK_EINVAL,
	    .fields = { "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"1.234\"}", MK_EINVAL,
	    .fields = { "amount" } },
	{ POSITION, "{\"side\":\"yes\",\"amount\":\"1000000000000.01\"}",
	    MK_EINVAL, .fields = { "amount" } },
	{ POSITION, "{\"side\":\"maybe\",\"amount\":\"-5\",\"extra\":[]}",
	    MK_EINVAL, .fields = { "extra", "side", "amount" } },
	{ POSITION, "[]", MK_EINVAL, .fields = { "body" } },
	{ POSITION, "\"yes\"", MK_EINVAL, .fields = { "body" } },
	{ POSITION, "5", MK_EINVAL, .fields = { "body" } },
	{ POSITION, "true", MK_EINVAL, .fields = { "body" } },
	{ POSITION, "null", MK_EINVAL, .fields = { "body" } },
};

/* Checks details against the fields a refused case must list. */
static void
check_details(
    const struct body_case *c, const struct mk_buf *details, const char *label)
{
	struct json_object *list =
	    details->data != NULL ? json_tokener_parse(details->data) : NULL;
	size_t want_n = 0, n;
	bool messages = true;

	while (want_n < N_ELEMS(c->fields) && c->fields[want_n] != NULL)
		want_n++;
	tap_ok(list != NULL && json_object_is_type(list, json_type_array),
	    "%s: details is a JSON array", label);
	n = json_object_is_type(list, json_type_array)
	    ? json_object_array_length(list)
	    : 0;
	tap_is_int(n, want_n, "%s: %zu details", label, want_n);
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_array_get_idx(list, i),
				   *message = NULL;

		if (!json_object_object_get_ex(item, "message", &message) ||
		    !json_object_is_type(message, json_type_string) ||
		    json_object_get_string_len(message) == 0)
			messages = false;
	}
	tap_ok(messages, "%s: every detail has a message", label);
	for (size_t f = 0; f < want_n; f++) {
		const char *message = NULL;
		int seen = 0;

		for (size_t i = 0; i < n; i++) {
			struct json_object *item = json_object_array_get_idx(
					       list, i),
					   *field = NULL, *m = NULL;

			if (json_object_object_get_ex(item, "field", &field) &&
			    json_object_is_type(field, json_type_string) &&
			    strcmp(json_object_get_string(field),
				c->fields[f]) == 0) {
				seen++;
				if (json_object_object_get_ex(
					item, "message", &m))
					message = json_object_get_string(m);
			}
		}
		tap_is_int(
		    seen, 1, "%s: details list '%s' once", label, c->fields[f]);
		if (f == 0 && c->message != NULL)
			tap_is_str(message, c->message, "%s: message of '%s'",
			    label, c->fields[f]);
	}
	if (list != NULL)
		json_object_put(list);
}

/*
 * Parses and validates one case's body (text of len bytes) and checks every
 * expectation.
 */
static void
run_case(struct mk_arena *arena, const struct body_case *c, const char *text,
    size_t len, const char *label)
{
	static const enum mk_market_write writes[] = { MK_WRITE_CREATE,
		MK_WRITE_REPLACE, MK_WRITE_PATCH };
	struct json_object *body = NULL;
	struct mk_market_input out;
	struct mk_buf details;
	const char *why = NULL;
	enum mk_err rc;

	mk_arena_reset(arena);
	rc = mk_json_parse_in(arena, text, len, MK_JSON_MAX_DEPTH,
	    MK_JSON_BODY_MAX_VALUES, &body, &why);
	if (rc != MK_OK) {
		tap_ok(0, "%s: the test body parses (%s)", label,
		    why != NULL ? why : "?");
		return;
	}
	mk_buf_init(&details, arena);
	if (c->kind == POSITION)
		rc = mk_position_validate(arena, body, &out, &details);
	else if (c->kind == CREATE)
		rc = mk_market_validate_create(arena, body, &out, &details);
	else
		rc = mk_market_validate(
		    arena, body, writes[c->kind], &out, &details);
	tap_is_int(rc, c->rc, "%s: rc", label);
	if (rc != c->rc) {
		printf("#   details: %s\n",
		    details.data != NULL ? details.data : "(none)");
		return;
	}
	if (c->rc == MK_EINVAL) {
		check_details(c, &details, label);
		return;
	}
	tap_is_int(details.len, 0, "%s: no details", label);
	if (c->kind != POSITION) {
		tap_is_str(out.name, c->want.name, "%s: name", label);
		tap_is_str(out.description, c->want.description,
		    "%s: description", label);
		tap_is_str(out.status, c->want.status, "%s: status", label);
		tap_is_str(
		    out.end_date, c->want.end_date, "%s: end_date", label);
		if (c->kind != CREATE)
			tap_is_int(out.present, c->want.present,
			    "%s: present mask", label);
	}
	tap_is_int(
	    out.has_position, c->want.has_position, "%s: has_position", label);
	tap_is_str(out.side, c->want.side, "%s: side", label);
	tap_is_str(out.amount, c->want.amount, "%s: amount", label);
}

static void
run_table(struct mk_arena *arena, const struct body_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char label[160];

		(void)snprintf(label, sizeof(label), "%s %.100s%s",
		    kind_names[cases[i].kind], cases[i].body,
		    strlen(cases[i].body) > 100 ? "…" : "");
		run_case(arena, &cases[i], cases[i].body, strlen(cases[i].body),
		    label);
	}
}

/* ---- lengths, in characters ----------------------------------------- */

struct length_case {
	enum kind kind;
	const char *field; /* "name" or "description" */
	const char *unit;  /* one character, 1 to 4 bytes of UTF-8 */
	size_t count;      /* characters */
	bool padded;       /* name wrapped in spaces and tabs (trimmed away) */
	bool ok;
};

static const struct length_case length_cases[] = {
	{ CREATE, "name", "a", 1, false, true },
	{ CREATE, "name", "a", 200, false, true },
	{ CREATE, "name", "a", 201, false, false },
	{ CREATE, "name", "a", 200, true, true },
	{ CREATE, "name", "a", 201, true, false },
	{ CREATE, "name", "\xc3\xa9", 200, false, true }, /* é */
	{ CREATE, "name", "\xc3\xa9", 201, false, false },
	{ CREATE, "name", "\xe2\x82\xac", 200, false, true }, /* € */
	{ CREATE, "name", "\xe2\x82\xac", 201, false, false },
	{ CREATE, "name", "\xf0\x9f\x98\x80", 200, false, true }, /* 😀 */
	{ CREATE, "name", "\xf0\x9f\x98\x80", 201, false, false },
	{ REPLACE, "name", "a", 200, false, true },
	{ REPLACE, "name", "a", 201, false, false },
	{ PATCH, "name", "\xf0\x9f\x98\x80", 200, true, true },
	{ PATCH, "name", "\xf0\x9f\x98\x80", 201, true, false },
	{ CREATE, "description", "a", 5000, false, true },
	{ CREATE, "description", "a", 5001, false, false },
	{ CREATE, "description", "\xc3\xa9", 5000, false, true },
	{ CREATE, "description", "\xc3\xa9", 5001, false, false },
	{ CREATE, "description", "\xf0\x9f\x98\x80", 5000, false, true },
	{ CREATE, "description", "\xf0\x9f\x98\x80", 5001, false, false },
	{ PATCH, "description", "a", 5000, false, true },
	{ PATCH, "description", "a", 5001, false, false },
};

static void
test_lengths(struct mk_arena *arena)
{
	for (size_t i = 0; i < N_ELEMS(length_cases); i++) {
		const struct length_case *lc = &length_cases[i];
		bool is_name = strcmp(lc->field, "name") == 0;
		struct body_case c = { .kind = lc->kind,
			.rc = lc->ok ? MK_OK : MK_EINVAL };
		struct mk_buf value, body;
		char label[160];

		/* Heap buffers: run_case resets the arena. */
		mk_buf_init(&value, NULL);
		mk_buf_init(&body, NULL);
		for (size_t k = 0; k < lc->count; k++)
			mk_buf_puts(&value, lc->unit);
		mk_buf_puts(&body, "{");
		if (!is_name && lc->kind != PATCH)
			mk_buf_puts(&body, "\"name\":\"x\",");
		mk_buf_printf(&body, "\"%s\":\"%s%s%s\"}", lc->field,
		    lc->padded ? " \\t " : "", value.data,
		    lc->padded ? "\\n  " : "");
		if (value.oom || body.oom) {
			tap_ok(0,
			    "length case %zu: out of memory building the body",
			    i);
		} else {
			c.want.description = "";
			c.want.status = "active";
			if (lc->kind == CREATE || lc->kind == REPLACE)
				c.want.name = "x";
			if (is_name)
				c.want.name = value.data;
			else
				c.want.description = value.data;
			c.want.present = lc->kind == REPLACE ? WRITABLE
			    : is_name                        ? BIT(NAME)
							     : BIT(DESCRIPTION);
			if (!lc->ok)
				c.fields[0] = lc->field;
			(void)snprintf(label, sizeof(label),
			    "%s %s of %zu x '%s'%s", kind_names[lc->kind],
			    lc->field, lc->count, lc->unit,
			    lc->padded ? " padded" : "");
			run_case(arena, &c, body.data, body.len, label);
		}
		mk_buf_release(&value);
		mk_buf_release(&body);
	}
}

int
main(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	if (arena == NULL) {
		tap_ok(0, "an arena");
		return tap_done();
	}
	test_amount_parse();
	run_table(arena, create_cases, N_ELEMS(create_cases));
	run_table(arena, replace_cases, N_ELEMS(replace_cases));
	run_table(arena, patch_cases, N_ELEMS(patch_cases));
	run_table(arena, position_cases, N_ELEMS(position_cases));
	test_lengths(arena);
	mk_arena_free(arena);
	return tap_done();
}
