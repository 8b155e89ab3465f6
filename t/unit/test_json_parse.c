/*
 * Unit tests for the strict JSON parser (src/core/json_parse.c), which
 * reads request bodies and JWT headers and payloads. Valid documents are
 * checked by re-serialising the json-c tree; strings by their exact
 * decoded bytes; numbers by json-c type and value (an integer that fits
 * int64 is json_type_int, anything else json_type_double keeping its
 * text). Each invalid document names the reason the parser must give, so
 * a case cannot pass by failing for some other cause. Depth is counted in
 * containers from 1 at the top: max_depth nested empty arrays or objects
 * parse, one more does not, and a 1000-deep (or 100000-deep) input is
 * refused early instead of recursing. mk_json_parse_in() must hand the
 * tree to the arena: the tree is released by the arena's reset.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json_parse.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1
#define SERIALISE_FLAGS                                                        \
	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Printable text of a test input for TAP lines (NUL and controls escaped). */
static const char *
printable(const char *in, size_t len)
{
	static char out[256];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c >= 0x7f || c == '#')
			o += (size_t)snprintf(
			    out + o, sizeof(out) - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

struct valid_case {
	const char *in;
	size_t len;
	const char *want; /* json-c's plain serialisation; NULL for JSON null */
};

static const struct valid_case valid_cases[] = {
	{ LIT("null"), NULL },
	{ LIT(" \t\r\nnull \n"), NULL },
	{ LIT("true"), "true" },
	{ LIT("false"), "false" },
	{ LIT("\"s\""), "\"s\"" },
	{ LIT("0"), "0" },
	{ LIT("[]"), "[]" },
	{ LIT("{}"), "{}" },
	{ LIT("[null]"), "[null]" },
	{ LIT(" \t\r\n[ 1 , 2 ]\r\n "), "[1,2]" },
	{ LIT("{\"a\":[1,{\"b\":null},[],{}],\"c\":{\"d\":[true,false,\"x\"]},"
	      "\"\":0}"),
	    "{\"a\":[1,{\"b\":null},[],{}],\"c\":{\"d\":[true,false,\"x\"]},"
	    "\"\":0}" },
	{ LIT("[[[[\"deep\"]]],{\"k\":{\"k\":{\"k\":[]}}}]"),
	    "[[[[\"deep\"]]],{\"k\":{\"k\":{\"k\":[]}}}]" },
	{ LIT("{ \"a\" : 1 , \"b\" : [ ] }"), "{\"a\":1,\"b\":[]}" },
	{ LIT("{\"\xc3\xa9\":\"\\u00e9\",\"e\\u0301\":1}"),
	    "{\"\xc3\xa9\":\"\xc3\xa9\",\"e\xcc\x81\":1}" },
	{ LIT("{\"a\":1,\"A\":2,\"a \":3}"), "{\"a\":1,\"A\":2,\"a \":3}" },
	{ LIT("[1.5,-0,1e3,-2E-2]"), "[1.5,0,1e3,-2E-2]" },
	{ LIT("\"a/b\""), "\"a/b\"" },
};

static void
test_valid(void)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++) {
		const struct valid_case *c = &valid_cases[i];
		struct json_object *tree = (struct json_object *)&tree;
		const char *why = "unset";
		enum mk_err rc;

		rc = mk_json_parse(
		    c->in, c->len, MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
		tap_is_int(
		    rc, MK_OK, "valid '%s': MK_OK", printable(c->in, c->len));
		if (rc != MK_OK) {
			printf("#   why: %s\n", why ? why : "(null)");
			continue;
		}
		tap_ok(why == NULL, "valid '%s': no reason given",
		    printable(c->in, c->len));
		if (c->want == NULL)
			tap_ok(tree == NULL,
			    "valid '%s': *out is NULL for null",
			    printable(c->in, c->len));
		else
			tap_is_str(tree != NULL
				? json_object_to_json_string_ext(
				      tree, SERIALISE_FLAGS)
				: NULL,
			    c->want, "valid '%s': tree",
			    printable(c->in, c->len));
		json_object_put(tree);
	}
}

struct string_case {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
	size_t want_len;
};

static const struct string_case string_cases[] = {
	{ "empty", LIT("\"\""), LIT("") },
	{ "short escapes", LIT("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
	    LIT("\"\\/\b\f\n\r\t") },
	{ "\\u escapes, both cases",
	    LIT("\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\""),
	    LIT("A\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf") },
	{ "escaped control character", LIT("\"\\u0001\\u001f\""),
	    LIT("\x01\x1f") },
	{ "DEL raw and escaped", LIT("\"\x7f\\u007f\""), LIT("\x7f\x7f") },
	{ "escape amid text", LIT("\"a\\u0062c\""), LIT("abc") },
	{ "surrogate pair (U+1F600)", LIT("\"\\ud83d\\ude00\""),
	    LIT("\xf0\x9f\x98\x80") },
	{ "surrogate pair upper case", LIT("\"\\uD83D\\uDE00\""),
	    LIT("\xf0\x9f\x98\x80") },
	{ "first astral (U+10000)", LIT("\"\\ud800\\udc00\""),
	    LIT("\xf0\x90\x80\x80") },
	{ "last code point (U+10FFFF)", LIT("\"\\udbff\\udfff\""),
	    LIT("\xf4\x8f\xbf\xbf") },
	{ "raw UTF-8 of 2, 3 and 4 bytes",
	    LIT("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""),
	    LIT("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") },
	{ "raw U+10FFFF and U+FFFF", LIT("\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\""),
	    LIT("\xf4\x8f\xbf\xbf\xef\xbf\xbf") },
	{ "long string (scratch growth)",
	    LIT("\"012345678901234567890123456789012345678901234567890123456789"
		"0123"
		"45678901234567890123456789012345678901234567890123456789012345"
		"67"
		"89012345678901234567890123456789012345678901234567890123456789"
		"01"
		"2345678901234567890123456789012345678901234567890123456789\\u0"
		"0e9\""),
	    LIT("01234567890123456789012345678901234567890123456789012345678901"
		"23"
		"45678901234567890123456789012345678901234567890123456789012345"
		"67"
		"89012345678901234567890123456789012345678901234567890123456789"
		"01"
		"2345678901234567890123456789012345678901234567890123456789\xc3"
		"\xa9") },
};

static void
test_strings(void)
{
	for (size_t i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]);
	     i++) {
		const struct string_case *c = &string_cases[i];
		struct json_object *tree = NULL;
		const char *why = NULL;
		enum mk_err rc;

		rc = mk_json_parse(
		    c->in, c->len, MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
		tap_is_int(rc, MK_OK, "string %s: MK_OK", c->name);
		if (rc != MK_OK) {
			printf("#   why: %s\n", why ? why : "(null)");
			continue;
		}
		tap_ok(json_object_is_type(tree, json_type_string) &&
			(size_t)json_object_get_string_len(tree) ==
			    c->want_len &&
			memcmp(json_object_get_string(tree), c->want,
			    c->want_len) == 0,
		    "string %s: decoded bytes", c->name);
		json_object_put(tree);
	}
}

struct number_case {
	const char *in;
	enum json_type type;
	int64_t int_value;   /* json_type_int */
	double double_value; /* json_type_double (compared exactly) */
	const char *text;    /* serialisation */
};

static const struct number_case number_cases[] = {
	{ "0", json_type_int, 0, 0, "0" },
	{ "-0", json_type_int, 0, 0, "0" },
	{ "7", json_type_int, 7, 0, "7" },
	{ "-42", json_type_int, -42, 0, "-42" },
	{ "9007199254740993", json_type_int, 9007199254740993LL, 0,
	    "9007199254740993" },
	{ "9223372036854775807", json_type_int, INT64_MAX, 0,
	    "9223372036854775807" },
	{ "-9223372036854775808", json_type_int, INT64_MIN, 0,
	    "-9223372036854775808" },
	{ "9223372036854775808", json_type_double, 0, 9223372036854775808.0,
	    "9223372036854775808" },
	{ "-9223372036854775809", json_type_double, 0, -9223372036854775808.0,
	    "-9223372036854775809" },
	{ "18446744073709551616", json_type_double, 0, 18446744073709551616.0,
	    "18446744073709551616" },
	{ "100000000000000000000000000000000000000000000000000",
	    json_type_double, 0, 1e50,
	    "100000000000000000000000000000000000000000000000000" },
	{ "1.5", json_type_double, 0, 1.5, "1.5" },
	{ "1.0", json_type_double, 0, 1.0, "1.0" },
	{ "0.0", json_type_double, 0, 0.0, "0.0" },
	{ "-0.5", json_type_double, 0, -0.5, "-0.5" },
	{ "1e3", json_type_double, 0, 1000.0, "1e3" },
	{ "1E3", json_type_double, 0, 1000.0, "1E3" },
	{ "1e+3", json_type_double, 0, 1000.0, "1e+3" },
	{ "25e-2", json_type_double, 0, 0.25, "25e-2" },
	{ "0e0", json_type_double, 0, 0.0, "0e0" },
	{ "-1.5e-3", json_type_double, 0, -1.5e-3, "-1.5e-3" },
	{ "1e400", json_type_double, 0, HUGE_VAL, "1e400" },
};

static void
test_numbers(void)
{
	for (size_t i = 0; i < sizeof(number_cases) / sizeof(number_cases[0]);
	     i++) {
		const struct number_case *c = &number_cases[i];
		struct json_object *tree = NULL;
		const char *why = NULL;
		enum mk_err rc;

		rc = mk_json_parse(c->in, strlen(c->in), MK_JSON_MAX_DEPTH,
		    SIZE_MAX, &tree, &why);
		tap_is_int(rc, MK_OK, "number %s: MK_OK", c->in);
		if (rc != MK_OK) {
			printf("#   why: %s\n", why ? why : "(null)");
			continue;
		}
		tap_is_str(json_type_to_name(json_object_get_type(tree)),
		    json_type_to_name(c->type), "number %s: type", c->in);
		if (c->type == json_type_int)
			tap_is_int(json_object_get_int64(tree), c->int_value,
			    "number %s: value", c->in);
		else
			tap_ok(json_object_get_double(tree) == c->double_value,
			    "number %s: value %g", c->in, c->double_value);
		tap_is_str(
		    json_object_to_json_string_ext(tree, SERIALISE_FLAGS),
		    c->text, "number %s: keeps its text", c->in);
		json_object_put(tree);
	}
}

struct invalid_case {
	const char *name;
	const char *in;
	size_t len;
	const char *why;
};

static const struct invalid_case invalid_cases[] = {
	/* Empty input and structure. */
	{ "empty input", LIT(""), "unexpected end of input" },
	{ "whitespace only", LIT(" \t\r\n "), "unexpected end of input" },
	{ "form feed is not whitespace", LIT("\f1"), "unexpected character" },
	{ "vertical tab is not whitespace", LIT("[1,\v2]"),
	    "unexpected character" },
	{ "UTF-8 BOM", LIT("\xef\xbb\xbf{}"), "unexpected character" },
	{ "trailing comma in array", LIT("[1,2,]"), "unexpected character" },
	{ "trailing comma in object", LIT("{\"a\":1,}"),
	    "expected a string key in object" },
	{ "leading comma", LIT("[,1]"), "unexpected character" },
	{ "missing comma", LIT("[1 2]"), "expected ',' or ']' in array" },
	{ "missing colon", LIT("{\"a\" 1}"), "expected ':' in object" },
	{ "number as key", LIT("{1:2}"), "expected a string key in object" },
	{ "unclosed array", LIT("[1"), "expected ',' or ']' in array" },
	{ "unclosed object", LIT("{\"a\":1"), "expected ',' or '}' in object" },
	{ "lone [", LIT("["), "unexpected end of input" },
	{ "lone {", LIT("{"), "expected a string key in object" },
	{ "lone ]", LIT("]"), "unexpected character" },
	{ "mismatched brackets", LIT("[1}"), "expected ',' or ']' in array" },
	{ "block comment", LIT("[1 /* c */]"), "expected ',' or ']' in array" },
	{ "line comment", LIT("// c\n1"), "unexpected character" },
	{ "hash comment", LIT("# c\n1"), "unexpected character" },
	{ "single-quoted string", LIT("'a'"), "unexpected character" },
	{ "single-quoted key", LIT("{'a':1}"),
	    "expected a string key in object" },
	{ "bare key", LIT("{a:1}"), "expected a string key in object" },
	/* Literals. */
	{ "NaN", LIT("NaN"), "unexpected character" },
	{ "Infinity", LIT("Infinity"), "unexpected character" },
	{ "-Infinity", LIT("-Infinity"), "bad number" },
	{ "nan in array", LIT("[nan]"), "unexpected character" },
	{ "True", LIT("True"), "unexpected character" },
	{ "truncated null", LIT("nul"), "unexpected character" },
	{ "undefined", LIT("undefined"), "unexpected character" },
	/* Numbers. */
	{ "leading zero", LIT("01"), "leading zero in number" },
	{ "leading zero, negative", LIT("-01"), "leading zero in number" },
	{ "leading zeros", LIT("[007]"), "leading zero in number" },
	{ "plus sign", LIT("+1"), "unexpected character" },
	{ "lone minus", LIT("-"), "bad number" },
	{ "minus space", LIT("- 1"), "bad number" },
	{ "leading dot", LIT(".5"), "unexpected character" },
	{ "trailing dot", LIT("1."), "bad fraction in number" },
	{ "dot exponent", LIT("1.e3"), "bad fraction in number" },
	{ "bare exponent", LIT("1e"), "bad exponent in number" },
	{ "signed bare exponent", LIT("1e+"), "bad exponent in number" },
	{ "hex number", LIT("0x10"), "trailing characters after the value" },
	{ "two numbers", LIT("1 2"), "trailing characters after the value" },
	/* Strings. */
	{ "unterminated string", LIT("\"abc"), "unterminated string" },
	{ "unterminated after backslash", LIT("\"abc\\"),
	    "unterminated string" },
	{ "literal tab in string", LIT("\"a\tb\""),
	    "control character in string" },
	{ "literal newline in string", LIT("\"a\nb\""),
	    "control character in string" },
	{ "literal 0x1f in string", LIT("\"\x1f\""),
	    "control character in string" },
	{ "literal NUL in string", LIT("\"a\0b\""),
	    "control character in string" },
	{ "bad escape \\x", LIT("\"\\x41\""), "bad escape in string" },
	{ "bad escape \\U", LIT("\"\\U0041\""), "bad escape in string" },
	{ "bad escape \\'", LIT("\"\\'\""), "bad escape in string" },
	{ "bad escape \\0", LIT("\"\\0\""), "bad escape in string" },
	{ "short \\u", LIT("\"\\u12\""), "bad \\u escape" },
	{ "non-hex \\u", LIT("\"\\u12g4\""), "bad \\u escape" },
	{ "\\u at the end", LIT("\"\\u00"), "bad \\u escape" },
	{ "lone high surrogate", LIT("\"\\ud800\""),
	    "lone surrogate in string" },
	{ "lone low surrogate", LIT("\"\\udc00\""),
	    "lone surrogate in string" },
	{ "high surrogate + BMP", LIT("\"\\ud800\\u0041\""),
	    "lone surrogate in string" },
	{ "high surrogate + text", LIT("\"\\ud83dx\""),
	    "lone surrogate in string" },
	{ "two high surrogates", LIT("\"\\ud83d\\ud83d\""),
	    "lone surrogate in string" },
	{ "low then high surrogate", LIT("\"\\ude00\\ud83d\""),
	    "lone surrogate in string" },
	{ "high surrogate + bad \\u", LIT("\"\\ud83d\\uzzzz\""),
	    "lone surrogate in string" },
	{ "\\u0000 alone", LIT("\"\\u0000\""), "NUL in string" },
	{ "\\u0000 inside a value", LIT("{\"role\":\"admin\\u0000x\"}"),
	    "NUL in string" },
	{ "\\u0000 in a key", LIT("{\"a\\u0000\":1}"), "NUL in string" },
	{ "\\u0000 in a second key",
	    LIT("{\"role\":\"a\",\"role\\u0000x\":\"b\"}"), "NUL in string" },
	{ "\\u0000 in an array", LIT("[\"ok\",\"\\u0000\"]"), "NUL in string" },
	/* UTF-8. */
	{ "overlong NUL (C0 80)", LIT("\"\xc0\x80\""),
	    "invalid UTF-8 in string" },
	{ "overlong '/' (C1 AF)", LIT("\"\xc1\xaf\""),
	    "invalid UTF-8 in string" },
	{ "overlong 3 bytes (E0 80 AF)", LIT("\"\xe0\x80\xaf\""),
	    "invalid UTF-8 in string" },
	{ "overlong 4 bytes (F0 80 80 AF)", LIT("\"\xf0\x80\x80\xaf\""),
	    "invalid UTF-8 in string" },
	{ "UTF-8 surrogate (ED A0 80)", LIT("\"\xed\xa0\x80\""),
	    "invalid UTF-8 in string" },
	{ "UTF-8 low surrogate (ED B0 80)", LIT("\"\xed\xb0\x80\""),
	    "invalid UTF-8 in string" },
	{ "beyond U+10FFFF (F4 90 80 80)", LIT("\"\xf4\x90\x80\x80\""),
	    "invalid UTF-8 in string" },
	{ "F5 lead byte", LIT("\"\xf5\x80\x80\x80\""),
	    "invalid UTF-8 in string" },
	{ "FF byte", LIT("\"\xff\""), "invalid UTF-8 in string" },
	{ "lone continuation byte", LIT("\"\x80\""),
	    "invalid UTF-8 in string" },
	{ "truncated 2-byte sequence", LIT("\"\xc3\""),
	    "invalid UTF-8 in string" },
	{ "truncated 3-byte sequence", LIT("\"\xe2\x82\""),
	    "invalid UTF-8 in string" },
	{ "truncated 4-byte sequence", LIT("\"\xf0\x9f\x98\""),
	    "invalid UTF-8 in string" },
	{ "truncated at end of input", LIT("\"\xe2\x82"),
	    "invalid UTF-8 in string" },
	{ "invalid UTF-8 in a key", LIT("{\"\xc0\x80\":1}"),
	    "invalid UTF-8 in string" },
	{ "Latin-1 byte in a value", LIT("{\"name\":\"caf\xe9\"}"),
	    "invalid UTF-8 in string" },
	/* Duplicate keys. */
	{ "duplicate key at top level", LIT("{\"a\":1,\"a\":2}"),
	    "duplicate key in object" },
	{ "duplicate key, same value",
	    LIT("{\"role\":\"user\",\"role\":\"user\"}"),
	    "duplicate key in object" },
	{ "duplicate key nested", LIT("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}"),
	    "duplicate key in object" },
	{ "duplicate key in an array item", LIT("[{},{\"k\":1,\"k\":null}]"),
	    "duplicate key in object" },
	{ "duplicate key spelled with an escape",
	    LIT("{\"sub\":1,\"\\u0073ub\":2}"), "duplicate key in object" },
	{ "duplicate empty key", LIT("{\"\":1,\"\":2}"),
	    "duplicate key in object" },
	/* Trailing garbage and NUL bytes. */
	{ "garbage after object", LIT("{} x"),
	    "trailing characters after the value" },
	{ "second value", LIT("{}{}"), "trailing characters after the value" },
	{ "extra bracket", LIT("[]]"), "trailing characters after the value" },
	{ "null with suffix", LIT("nullx"),
	    "trailing characters after the value" },
	{ "string with suffix", LIT("\"a\"b"),
	    "trailing characters after the value" },
	{ "NUL after the value", LIT("{}\0"),
	    "trailing characters after the value" },
	{ "NUL before the value", LIT("\0{}"), "unexpected character" },
	{ "NUL between items", LIT("[1,\0 2]"), "unexpected character" },
	{ "NUL only", LIT("\0"), "unexpected character" },
};

static void
test_invalid(void)
{
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]);
	     i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct json_object *tree = (struct json_object *)&tree;
		const char *why = NULL;
		enum mk_err rc;

		rc = mk_json_parse(
		    c->in, c->len, MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
		tap_is_int(rc, MK_EBADJSON, "invalid: %s ('%s')", c->name,
		    printable(c->in, c->len));
		tap_ok(tree == NULL, "invalid: %s: *out is NULL", c->name);
		tap_is_str(why, c->why, "invalid: %s: reason", c->name);
		if (rc == MK_OK)
			json_object_put(tree);
	}
	/* why may be NULL. */
	{
		struct json_object *tree = NULL;

		tap_is_int(mk_json_parse(LIT("[1,]"), MK_JSON_MAX_DEPTH,
			       SIZE_MAX, &tree, NULL),
		    MK_EBADJSON, "a NULL why is allowed on failure");
		tap_is_int(mk_json_parse(LIT("[1]"), MK_JSON_MAX_DEPTH,
			       SIZE_MAX, &tree, NULL),
		    MK_OK, "a NULL why is allowed on success");
		json_object_put(tree);
	}
}

/* count levels of arrays (or objects {"a": ...}) around an empty one. */
static char *
nested(size_t count, bool objects)
{
	size_t unit = objects ? 5 : 1; /* {"a": */
	char *text = malloc(count * (unit + 1) + 1), *p = text;

	if (text == NULL)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		if (objects && i + 1 < count) {
			memcpy(p, "{\"a\":", 5);
			p += 5;
		} else {
			*p++ = objects ? '{' : '[';
		}
	}
	for (size_t i = 0; i < count; i++)
		*p++ = objects ? '}' : ']';
	*p = '\0';
	return text;
}

static void
check_depth(size_t count, unsigned max_depth, bool objects, bool want_ok)
{
	char *text = nested(count, objects);
	struct json_object *tree = NULL;
	const char *why = NULL;
	enum mk_err rc;

	if (text == NULL) {
		tap_ok(0, "out of memory");
		return;
	}
	rc =
	    mk_json_parse(text, strlen(text), max_depth, SIZE_MAX, &tree, &why);
	tap_is_int(rc, want_ok ? MK_OK : MK_EBADJSON,
	    "%zu nested %s, max_depth %u: %s", count,
	    objects ? "objects" : "arrays", max_depth,
	    want_ok ? "parsed" : "refused");
	if (!want_ok)
		tap_is_str(why, "nested too deep",
		    "%zu nested %s, max_depth %u: reason", count,
		    objects ? "objects" : "arrays", max_depth);
	json_object_put(tree);
	free(text);
}

static void
test_depth(void)
{
	static const unsigned depths[] = { 1, 2, 4, 8, MK_JSON_MAX_DEPTH };

	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		for (int objects = 0; objects <= 1; objects++) {
			check_depth(depths[i], depths[i], objects, true);
			check_depth(depths[i] + 1, depths[i], objects, false);
		}
	}
	check_depth(1000, MK_JSON_MAX_DEPTH, false, false);
	check_depth(1000, MK_JSON_MAX_DEPTH, true, false);

	/* 100000 unclosed brackets: refused at the limit, not by the stack. */
	{
		size_t len = 100000;
		char *text = malloc(len);
		struct json_object *tree = NULL;
		const char *why = NULL;

		if (text == NULL)
			return;
		memset(text, '[', len);
		tap_is_int(mk_json_parse(text, len, MK_JSON_MAX_DEPTH, SIZE_MAX,
			       &tree, &why),
		    MK_EBADJSON, "100000 unclosed '[' refused");
		tap_is_str(
		    why, "nested too deep", "100000 unclosed '[': reason");
		for (size_t i = 0; i + 5 <= len; i += 5)
			memcpy(text + i, "{\"a\":", 5);
		why = NULL;
		tap_is_int(mk_json_parse(text, len, MK_JSON_MAX_DEPTH, SIZE_MAX,
			       &tree, &why),
		    MK_EBADJSON, "20000 unclosed '{\"a\":' refused");
		tap_is_str(
		    why, "nested too deep", "20000 unclosed '{\"a\":': reason");
		free(text);
	}
}

/* Values are counted: exactly max_values pass, one more is refused. */
static void
test_values(void)
{
	static const struct {
		const char *in;
		size_t max_values;
		bool ok;
	} cases[] = {
		{ "1", 1, true },
		{ "1", 0, false },
		{ "[]", 1, true },
		{ "[1]", 1, false },
		{ "[1]", 2, true },
		{ "{\"a\":1,\"b\":[true,null]}", 5, true },
		{ "{\"a\":1,\"b\":[true,null]}", 4, false },
		{ "[{},{},{},{}]", 5, true },
		{ "[{},{},{},{}]", 4, false },
		{ "{\"name\":\"x\",\"initial_position\":{\"side\":\"yes\","
		  "\"amount\":\"1\"}}",
		    5, true },
	};
	struct json_object *tree;
	const char *why;
	enum mk_err rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tree = NULL;
		why = NULL;
		rc = mk_json_parse(cases[i].in, strlen(cases[i].in),
		    MK_JSON_MAX_DEPTH, cases[i].max_values, &tree, &why);
		tap_is_int(rc, cases[i].ok ? MK_OK : MK_EBADJSON,
		    "%s with at most %zu values: %s", cases[i].in,
		    cases[i].max_values, cases[i].ok ? "parsed" : "refused");
		if (!cases[i].ok)
			tap_is_str(why, "too many values in the document",
			    "%s: reason", cases[i].in);
		json_object_put(tree);
	}

	/*
	 * The amplification the cap exists for: 1 MiB of "{}," refused at once.
	 */
	{
		size_t len = 1 << 20;
		char *text = malloc(len);

		if (text == NULL) {
			tap_ok(0, "out of memory");
			return;
		}
		text[0] = '[';
		for (size_t i = 1; i + 3 <= len; i += 3)
			memcpy(text + i, "{},", 3);
		text[len - 1] = ']';
		tree = NULL;
		why = NULL;
		rc = mk_json_parse(text, len, MK_JSON_MAX_DEPTH,
		    MK_JSON_BODY_MAX_VALUES, &tree, &why);
		tap_is_int(
		    rc, MK_EBADJSON, "349,000 empty objects in 1 MiB: refused");
		tap_is_str(why, "too many values in the document",
		    "349,000 empty objects: reason");
		free(text);
	}
}

static void
test_parse_in(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	struct json_object *tree = NULL;
	const char *why = "unset";
	enum mk_err rc;

	if (arena == NULL) {
		tap_ok(0, "mk_arena_new");
		return;
	}
	rc = mk_json_parse_in(arena, LIT("{\"a\":[1,2,{\"b\":\"c\"}]}"),
	    MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
	tap_is_int(rc, MK_OK, "parse_in: MK_OK");
	tap_ok(tree != NULL && json_object_is_type(tree, json_type_object),
	    "parse_in: a tree");
	if (tree != NULL) {
		/*
		 * Hold an extra reference over the reset: if the arena released
		 * the tree, our put is the last one and frees it (returns 1).
		 */
		json_object_get(tree);
		mk_arena_reset(arena);
		tap_is_int(json_object_put(tree), 1,
		    "parse_in: the arena's reset released the tree");
	}

	tree = (struct json_object *)&tree;
	rc = mk_json_parse_in(
	    arena, LIT("null"), MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
	tap_ok(
	    rc == MK_OK && tree == NULL, "parse_in: null gives MK_OK and NULL");

	tree = (struct json_object *)&tree;
	why = NULL;
	rc = mk_json_parse_in(arena, LIT("{\"a\":1,\"a\":2}"),
	    MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
	tap_ok(rc == MK_EBADJSON && tree == NULL,
	    "parse_in: failure gives MK_EBADJSON and NULL");
	tap_is_str(why, "duplicate key in object", "parse_in: failure reason");

	/* Trees left in the arena are released by free (LSan checks). */
	for (int i = 0; i < 3; i++)
		rc = mk_json_parse_in(arena, LIT("[\"x\",{\"y\":[]}]"),
		    MK_JSON_MAX_DEPTH, SIZE_MAX, &tree, &why);
	tap_is_int(rc, MK_OK, "parse_in: several trees in one arena");
	mk_arena_free(arena);
}

int
main(void)
{
	test_valid();
	test_strings();
	test_numbers();
	test_invalid();
	test_depth();
	test_values();
	test_parse_in();
	return tap_done();
}
