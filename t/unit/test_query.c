/*
 * Unit tests for percent-decoding and query strings (src/http/query.c).
 * Decoding is strict by contract: a '%' without two hex digits after it,
 * a literal NUL and %00 are all MK_EBADREQUEST, never repaired. Query
 * parsing keeps pairs in order with repeats, skips empty pieces, refuses
 * an empty key and caps the number of pairs; each case here is one input
 * with the exact pairs (or error) it must give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "http/query.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1

struct decode_case {
	const char *in;
	size_t len;
	bool plus_is_space;
	enum mk_err rc;
	const char *want; /* when MK_OK */
	size_t want_len;
};

static const struct decode_case decode_cases[] = {
	{ LIT(""), false, MK_OK, LIT("") },
	{ LIT("plain"), false, MK_OK, LIT("plain") },
	{ LIT("a%20b"), false, MK_OK, LIT("a b") },
	{ LIT("%2F%2f"), false, MK_OK, LIT("//") },
	{ LIT("%C3%A9%c3%a9"), false, MK_OK, LIT("\xc3\xa9\xc3\xa9") },
	{ LIT("%7e%7E"), false, MK_OK, LIT("~~") },
	{ LIT("%25"), false, MK_OK, LIT("%") },
	{ LIT("%2525"), false, MK_OK, LIT("%25") },
	{ LIT("%ff"), false, MK_OK, LIT("\xff") },
	{ LIT("a+b"), false, MK_OK, LIT("a+b") },
	{ LIT("a+b"), true, MK_OK, LIT("a b") },
	{ LIT("%2B"), true, MK_OK, LIT("+") },
	{ LIT("++"), true, MK_OK, LIT("  ") },
	{ LIT("\xc3\xa9"), true, MK_OK, LIT("\xc3\xa9") },
	{ LIT("%"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("a%"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("%4"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("ab%4"), true, MK_EBADREQUEST, NULL, 0 },
	{ LIT("%zz"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("%g0"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("%0g"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("% 1"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("%00"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("a%00b"), true, MK_EBADREQUEST, NULL, 0 },
	{ LIT("a\0b"), false, MK_EBADREQUEST, NULL, 0 },
	{ LIT("\0"), true, MK_EBADREQUEST, NULL, 0 },
};

static void
test_percent_decode(void)
{
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]);
	     i++) {
		const struct decode_case *c = &decode_cases[i];
		char out[64];
		size_t out_len = 12345;
		enum mk_err rc;

		memset(out, 'X', sizeof(out));
		rc = mk_percent_decode(
		    c->in, c->len, c->plus_is_space, out, &out_len);
		tap_is_int(rc, c->rc,
		    "decode case %zu (%s, plus_is_space=%d): rc", i,
		    c->len > 0 && c->in[0] == '\0' ? "NUL" : c->in,
		    c->plus_is_space);
		if (c->rc == MK_OK) {
			tap_ok(out_len == c->want_len &&
				memcmp(out, c->want, c->want_len) == 0 &&
				out[out_len] == '\0',
			    "decode case %zu: bytes and NUL", i);
		}
	}
}

/* Up to four expected pairs per case. */
struct query_case {
	const char *raw;
	size_t len;
	enum mk_err rc;
	size_t count;
	const char *pairs[4][2];
};

static const struct query_case query_cases[] = {
	{ LIT(""), MK_OK, 0, { { NULL } } },
	{ LIT("a=1"), MK_OK, 1, { { "a", "1" } } },
	{ LIT("a=1&b=2"), MK_OK, 2, { { "a", "1" }, { "b", "2" } } },
	{ LIT("a=1&&b=2&"), MK_OK, 2, { { "a", "1" }, { "b", "2" } } },
	{ LIT("&&&"), MK_OK, 0, { { NULL } } },
	{ LIT("&a=1"), MK_OK, 1, { { "a", "1" } } },
	{ LIT("flag"), MK_OK, 1, { { "flag", "" } } },
	{ LIT("flag&x=1"), MK_OK, 2, { { "flag", "" }, { "x", "1" } } },
	{ LIT("empty="), MK_OK, 1, { { "empty", "" } } },
	{ LIT("a=b=c"), MK_OK, 1, { { "a", "b=c" } } },
	{ LIT("q=a+b&r=a%20b&s=a%2Bb"), MK_OK, 3,
	    { { "q", "a b" }, { "r", "a b" }, { "s", "a+b" } } },
	{ LIT("a%3Db=c%26d"), MK_OK, 1, { { "a=b", "c&d" } } },
	{ LIT("+=+"), MK_OK, 1, { { " ", " " } } },
	{ LIT("tag=x&tag=y&other=1&tag=z"), MK_OK, 4,
	    { { "tag", "x" }, { "tag", "y" }, { "other", "1" },
		{ "tag", "z" } } },
	{ LIT("name=%C3%A9t%C3%A9&raw=\xc3\xa9"), MK_OK, 2,
	    { { "name", "\xc3\xa9t\xc3\xa9" }, { "raw", "\xc3\xa9" } } },
	{ LIT("emoji=%F0%9F%98%80"), MK_OK, 1,
	    { { "emoji", "\xf0\x9f\x98\x80" } } },
	{ LIT("=x"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=1&=x"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("="), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=%"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=%4"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=%zz"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("%g0=1"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=%00"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a%00=1"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("a=x\0y"), MK_EBADREQUEST, 0, { { NULL } } },
	{ LIT("ok=1&bad=%"), MK_EBADREQUEST, 0, { { NULL } } },
};

static void
test_query_parse(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]);
	     i++) {
		const struct query_case *c = &query_cases[i];
		struct mk_query query;
		enum mk_err rc;
		int same = 1;

		rc = mk_query_parse(arena, c->raw, c->len, &query);
		tap_is_int(rc, c->rc, "query case %zu ('%s'): rc", i, c->raw);
		if (c->rc != MK_OK)
			continue;
		tap_is_int(
		    query.count, c->count, "query case %zu: pair count", i);
		for (size_t p = 0; p < c->count && p < query.count && p < 4;
		     p++) {
			const struct mk_query_pair *got = &query.pairs[p];

			if (strcmp(got->key, c->pairs[p][0]) != 0 ||
			    strcmp(got->value, c->pairs[p][1]) != 0 ||
			    got->key_len != strlen(c->pairs[p][0]) ||
			    got->value_len != strlen(c->pairs[p][1])) {
				same = 0;
				printf("#   pair %zu: got '%s'='%s', want "
				       "'%s'='%s'\n",
				    p, got->key, got->value, c->pairs[p][0],
				    c->pairs[p][1]);
			}
		}
		tap_ok(same, "query case %zu: pairs in order", i);
		mk_arena_reset(arena);
	}
	mk_arena_free(arena);
}

static void
test_query_find(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	const struct mk_query_pair *pair;
	struct mk_query query;
	size_t count = 99;

	(void)mk_query_parse(arena, LIT("a=1&b=2&a=3&ab=4"), &query);
	pair = mk_query_find(&query, "a", &count);
	tap_ok(pair != NULL && strcmp(pair->value, "1") == 0,
	    "find returns the first of repeated keys");
	tap_is_int(count, 2, "find counts the repeats");
	pair = mk_query_find(&query, "ab", &count);
	tap_ok(pair != NULL && strcmp(pair->value, "4") == 0 && count == 1,
	    "find matches the whole key, not a prefix");
	pair = mk_query_find(&query, "c", &count);
	tap_ok(pair == NULL && count == 0,
	    "find of a missing key is NULL with count 0");
	pair = mk_query_find(&query, "b", NULL);
	tap_ok(pair != NULL && strcmp(pair->value, "2") == 0,
	    "find with a NULL count");
	(void)mk_query_parse(arena, "", 0, &query);
	pair = mk_query_find(&query, "a", &count);
	tap_ok(pair == NULL && count == 0, "find in an empty query");
	mk_arena_free(arena);
}

static void
test_limits(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_query query;
	char raw[4096];
	size_t len = 0;
	enum mk_err rc;

	/* Exactly MK_QUERY_MAX_PAIRS pairs, with empty pieces between them. */
	for (int i = 0; i < MK_QUERY_MAX_PAIRS; i++)
		len += (size_t)snprintf(raw + len, sizeof(raw) - len,
		    "%sk%d=%d", i ? "&&" : "", i, i);
	rc = mk_query_parse(arena, raw, len, &query);
	tap_is_int(
	    rc, MK_OK, "%d pairs (the maximum) parse", MK_QUERY_MAX_PAIRS);
	tap_is_int(query.count, MK_QUERY_MAX_PAIRS, "and all are kept");
	tap_ok(query.count == MK_QUERY_MAX_PAIRS &&
		strcmp(query.pairs[MK_QUERY_MAX_PAIRS - 1].key, "k63") == 0 &&
		strcmp(query.pairs[MK_QUERY_MAX_PAIRS - 1].value, "63") == 0,
	    "the last pair is intact");
	mk_arena_reset(arena);

	len += (size_t)snprintf(raw + len, sizeof(raw) - len, "&one=more");
	rc = mk_query_parse(arena, raw, len, &query);
	tap_is_int(rc, MK_EBADREQUEST, "%d pairs are one too many",
	    MK_QUERY_MAX_PAIRS + 1);
	mk_arena_reset(arena);

	/*
	 * A flood of separators is refused before anything is allocated per
	 * piece.
	 */
	memset(raw, '&', 3000);
	memcpy(raw + 3000, "a=1", 3);
	rc = mk_query_parse(arena, raw, 3003, &query);
	tap_is_int(rc, MK_EBADREQUEST, "a flood of 3000 '&' is refused");
	tap_ok(mk_arena_used(arena) < 1024,
	    "and allocates (almost) nothing (%zu bytes)", mk_arena_used(arena));
	mk_arena_free(arena);
}

int
main(void)
{
	test_percent_decode();
	test_query_parse();
	test_query_find();
	test_limits();
	return tap_done();
}
