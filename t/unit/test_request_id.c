/*
 * Unit tests for request ids (src/http/request_id.c): which incoming
 * X-Request-Id values are kept (1-64 bytes of [A-Za-z0-9._-], looked at
 * through the given length only) and what the generator makes — 32
 * lowercase hex digits, distinct over many consecutive ids, with a
 * per-generator random prefix so two workers do not collide.
 */
#include <stdlib.h>
#include <string.h>

#include "http/request_id.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1

struct valid_case {
	const char *name;
	const char *id;
	size_t len;
	bool valid;
};

static char id64[65], id65[66];

static void
test_valid(void)
{
	const struct valid_case cases[] = {
		{ "empty", LIT(""), false },
		{ "one char", LIT("a"), true },
		{ "64 chars", id64, 64, true },
		{ "65 chars", id65, 65, false },
		{ "lower case", LIT("abcdefghijklmnopqrstuvwxyz"), true },
		{ "upper case", LIT("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), true },
		{ "digits", LIT("0123456789"), true },
		{ "dot", LIT("."), true },
		{ "underscore", LIT("_"), true },
		{ "dash", LIT("-"), true },
		{ "a UUID", LIT("123e4567-e89b-12d3-a456-426614174000"), true },
		{ "mixed classes", LIT("Req_1.2-x"), true },
		{ "space", LIT("bad id"), false },
		{ "slash", LIT("a/b"), false },
		{ "plus", LIT("a+b"), false },
		{ "colon", LIT("a:b"), false },
		{ "equals", LIT("a=b"), false },
		{ "tilde", LIT("a~b"), false },
		{ "tab", LIT("a\tb"), false },
		{ "CR LF (header injection)", LIT("a\r\nX-Evil: 1"), false },
		{ "double quote", LIT("a\"b"), false },
		{ "DEL", LIT("a\x7f"), false },
		{ "unicode (e acute)", LIT("caf\xc3\xa9"), false },
		{ "NUL in the middle", LIT("ab\0cd"), false },
		{ "only len bytes are looked at", "abc def", 3, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_ok(mk_request_id_valid(cases[i].id, cases[i].len) ==
			cases[i].valid,
		    "valid: %s -> %s", cases[i].name,
		    cases[i].valid ? "kept" : "replaced");
	}
}

static int
is_lower_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static int
compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, MK_REQUEST_ID_GENERATED_LEN + 1);
}

static void
test_generate(void)
{
	enum {
		COUNT = 10000,
		STRIDE = MK_REQUEST_ID_GENERATED_LEN + 1
	};
	struct mk_request_id_gen gen, other;
	char *ids, id[STRIDE], id2[STRIDE];
	int all_hex = 1, distinct = 1, same_prefix = 1;

	tap_is_int(mk_request_id_seed(&gen), 0, "seed succeeds");
	memset(id, 'X', sizeof(id));
	mk_request_id_next(&gen, id);
	tap_ok(is_lower_hex(id, MK_REQUEST_ID_GENERATED_LEN),
	    "an id is %d lowercase hex digits and a NUL ('%s')",
	    MK_REQUEST_ID_GENERATED_LEN, id);
	tap_ok(mk_request_id_valid(id, strlen(id)),
	    "a generated id passes the incoming check");

	ids = malloc((size_t)COUNT * STRIDE);
	for (int i = 0; i < COUNT; i++) {
		char *p = ids + (size_t)i * STRIDE;

		mk_request_id_next(&gen, p);
		if (!is_lower_hex(p, MK_REQUEST_ID_GENERATED_LEN))
			all_hex = 0;
		if (memcmp(p, id, 16) != 0)
			same_prefix = 0;
	}
	tap_ok(all_hex, "%d consecutive ids are all 32 lowercase hex digits",
	    COUNT);
	tap_ok(same_prefix, "ids of one generator share its 16-digit prefix");
	qsort(ids, COUNT, STRIDE, compare_ids);
	for (int i = 1; i < COUNT; i++) {
		if (compare_ids(ids + (size_t)(i - 1) * STRIDE,
			ids + (size_t)i * STRIDE) == 0)
			distinct = 0;
	}
	tap_ok(distinct, "%d consecutive ids are distinct", COUNT);
	free(ids);

	/*
	 * The counter part must not simply count: ids should not look
	 * sequential.
	 */
	mk_request_id_next(&gen, id);
	mk_request_id_next(&gen, id2);
	tap_ok(strcmp(id + 16, id2 + 16) != 0 &&
		memcmp(id + 16, id2 + 16, 12) != 0,
	    "consecutive ids differ beyond their last digits");

	tap_is_int(mk_request_id_seed(&other), 0, "a second generator seeds");
	mk_request_id_next(&other, id2);
	tap_ok(strcmp(id, id2) != 0 && memcmp(id, id2, 16) != 0,
	    "two generators seeded separately have different prefixes");
}

int
main(void)
{
	memset(id64, 'a', 64);
	memset(id65, 'b', 65);
	test_valid();
	test_generate();
	return tap_done();
}
