/*
 * Unit tests for the byte buffer (src/core/buf.c) in its three modes —
 * heap, arena and fixed caller memory — and for the JSON string writer
 * (src/core/json.c). The buffer's contract is that the first failure sets
 * a sticky oom flag, that `max` and a fixed size are never exceeded, and
 * that the contents stay NUL-terminated; the JSON writer's is that any
 * byte string comes out as valid JSON, with invalid UTF-8 replaced byte
 * by byte with U+FFFD and U+2028/U+2029 escaped for JavaScript readers.
 * The object writer (mk_json_object, mk_json_members) must write each
 * member of a table by its kind, commas between, only the members a mask
 * selects; the array writer each item by its writer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "tap.h"

/* A string literal and its length without the final NUL. */
#define LIT(s) s, sizeof(s) - 1

static void
test_heap(void)
{
	struct mk_buf buf;

	mk_buf_init(&buf, NULL);
	mk_buf_append(&buf, "abc", 3);
	mk_buf_putc(&buf, 'd');
	mk_buf_puts(&buf, "ef");
	tap_is_str(buf.data, "abcdef", "heap: append, putc and puts");
	tap_is_int(buf.len, 6, "heap: len counts the bytes");
	mk_buf_append(&buf, "", 0);
	tap_is_int(buf.len, 6, "heap: an empty append changes nothing");
	mk_buf_consume(&buf, 2);
	tap_is_str(buf.data, "cdef", "consume drops the first bytes");
	tap_is_int(buf.len, 4, "consume shortens len");
	mk_buf_consume(&buf, 0);
	tap_is_str(buf.data, "cdef", "consume 0 keeps everything");
	mk_buf_consume(&buf, 100);
	tap_ok(buf.len == 0 && buf.data[0] == '\0',
	    "consume past len empties the buffer");
	mk_buf_append(&buf, "x", 1);
	mk_buf_clear(&buf);
	tap_ok(buf.len == 0 && buf.cap > 0 && buf.data[0] == '\0',
	    "clear empties but keeps the memory");
	mk_buf_release(&buf);
	tap_ok(buf.data == NULL && buf.len == 0 && buf.cap == 0,
	    "release empties the heap buffer");
	/*
	 * Shrink: only an empty heap buffer over the size kept gives its memory
	 * back.
	 */
	mk_buf_reserve(&buf, 100000);
	mk_buf_puts(&buf, "held");
	mk_buf_shrink(&buf, 4096);
	tap_ok(buf.cap > 4096 && strcmp(buf.data, "held") == 0,
	    "shrink keeps a buffer that holds bytes");
	mk_buf_clear(&buf);
	mk_buf_shrink(&buf, 200000);
	tap_ok(
	    buf.cap > 4096, "shrink keeps an empty buffer under the size kept");
	mk_buf_shrink(&buf, 4096);
	tap_ok(buf.data == NULL && buf.cap == 0,
	    "shrink frees an empty buffer over the size kept");
	mk_buf_puts(&buf, "again");
	tap_is_str(buf.data, "again", "a shrunk buffer grows again");
	mk_buf_release(&buf);
	/* An empty, never-grown buffer can be consumed and released too. */
	mk_buf_init(&buf, NULL);
	mk_buf_consume(&buf, 5);
	mk_buf_release(&buf);
	tap_ok(buf.len == 0,
	    "consume and release of a never-grown buffer are harmless");
}

static void
test_printf(void)
{
	struct mk_buf buf;
	char want[700];

	mk_buf_init(&buf, NULL);
	mk_buf_printf(&buf, "%d-%s", 42, "x");
	tap_is_str(buf.data, "42-x", "printf formats");
	memset(want, 'p', 600);
	want[600] = '\0';
	/* Past the first 256-byte allocation: the second vsnprintf path. */
	mk_buf_printf(&buf, "%s", want);
	tap_is_int(buf.len, 604, "printf growth past 256 bytes: len");
	tap_ok(buf.len == 604 && memcmp(buf.data, "42-x", 4) == 0 &&
		memcmp(buf.data + 4, want, 600) == 0 && buf.data[604] == '\0',
	    "printf growth past 256 bytes: contents and NUL");
	tap_ok(!buf.oom, "printf growth does not set oom");
	mk_buf_clear(&buf);
	/* Fill to just below a power of two so the next printf straddles it. */
	memset(want, 'q', 250);
	want[250] = '\0';
	mk_buf_puts(&buf, want);
	mk_buf_printf(&buf, "%s|%05d", "abcdefghij", 7);
	tap_ok(
	    buf.len == 266 && strcmp(buf.data + 250, "abcdefghij|00007") == 0,
	    "printf straddling the capacity");
	mk_buf_release(&buf);
}

static void
test_integers(void)
{
	static const struct {
		int64_t value;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ 7, "7" },
		{ -1, "-1" },
		{ 1234567890123LL, "1234567890123" },
		{ INT64_MAX, "9223372036854775807" },
		{ INT64_MIN, "-9223372036854775808" },
		{ INT64_MIN + 1, "-9223372036854775807" },
	};
	struct mk_buf buf;

	mk_buf_init(&buf, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mk_buf_clear(&buf);
		mk_buf_put_i64(&buf, cases[i].value);
		tap_is_str(buf.data, cases[i].want, "put_i64 case %zu", i);
	}
	mk_buf_clear(&buf);
	mk_buf_put_u64(&buf, UINT64_MAX);
	tap_is_str(buf.data, "18446744073709551615", "put_u64 UINT64_MAX");
	mk_buf_release(&buf);
}

static void
test_max(void)
{
	struct mk_buf buf;
	char big[200];

	mk_buf_init(&buf, NULL);
	buf.max = 10;
	mk_buf_append(&buf, "0123456789", 10);
	tap_ok(!buf.oom && buf.len == 10, "max: exactly max bytes fit");
	mk_buf_putc(&buf, 'x');
	tap_ok(buf.oom && buf.len == 10,
	    "max: one more byte sets oom and is not appended");
	mk_buf_append(&buf, "", 0);
	mk_buf_puts(&buf, "y");
	mk_buf_put_i64(&buf, 5);
	mk_buf_printf(&buf, "%d", 1);
	tap_ok(buf.oom && buf.len == 10 && strcmp(buf.data, "0123456789") == 0,
	    "max: oom is sticky, later appends are ignored");
	tap_ok(!mk_buf_reserve(&buf, 0), "max: reserve fails once oom");
	mk_buf_clear(&buf);
	tap_ok(!buf.oom && buf.len == 0, "clear forgets oom");
	mk_buf_release(&buf);

	/*
	 * printf must honour max like every other append; its first reserve
	 * is a guess, not the size of the output.
	 */
	mk_buf_init(&buf, NULL);
	buf.max = 100;
	memset(big, 'z', 150);
	big[150] = '\0';
	mk_buf_printf(&buf, "%s", big);
	tap_ok(buf.oom, "max: a printf of 150 bytes into max 100 sets oom");
	tap_ok(buf.len <= 100,
	    "max: a printf never makes len exceed max (len %zu)", buf.len);
	mk_buf_release(&buf);

	/* Output larger than the first allocation, refused by the max. */
	mk_buf_init(&buf, NULL);
	buf.max = 300;
	mk_buf_puts(&buf, "ab");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mk_buf_printf(&buf, "%s%s", big, big);
	tap_ok(buf.oom && buf.len == 2,
	    "max: a printf of 398 bytes into max 300 sets oom");
	tap_ok(buf.cap == 0 || buf.data[buf.len] == '\0',
	    "max: the contents stay NUL-terminated at len after a failed "
	    "printf");
	mk_buf_release(&buf);

	mk_buf_init(&buf, NULL);
	buf.max = 10;
	mk_buf_printf(&buf, "%d", 12345);
	tap_ok(!buf.oom && buf.len == 5 && strcmp(buf.data, "12345") == 0,
	    "max: a printf that fits in max succeeds");
	mk_buf_release(&buf);
}

static void
test_fixed(void)
{
	char mem[8], small[32];
	struct mk_buf buf;

	mk_buf_init_fixed(&buf, mem, sizeof(mem));
	tap_ok(buf.data == mem && buf.len == 0 && mem[0] == '\0',
	    "fixed: starts empty in the caller's memory");
	mk_buf_puts(&buf, "1234567");
	tap_ok(!buf.oom && strcmp(mem, "1234567") == 0,
	    "fixed: size - 1 bytes fit");
	mk_buf_putc(&buf, '8');
	tap_ok(buf.oom && buf.data == mem && strcmp(mem, "1234567") == 0,
	    "fixed: one more sets oom instead of growing");
	mk_buf_consume(&buf, 3);
	tap_is_str(mem, "4567", "fixed: consume moves the rest to the front");
	mk_buf_release(&buf);
	tap_ok(
	    buf.data == mem, "fixed: release leaves the caller's memory alone");

	/* A short printf must fit in a small fixed buffer. */
	mk_buf_init_fixed(&buf, small, sizeof(small));
	mk_buf_printf(&buf, "%d", 42);
	tap_ok(!buf.oom,
	    "fixed: printf of 2 bytes into a 32-byte buffer does not set oom");
	tap_is_str(small, "42",
	    "fixed: printf of 2 bytes into a 32-byte buffer writes them");
}

static void
test_arena_mode(void)
{
	struct mk_arena *arena = mk_arena_new(1024);
	struct mk_buf buf, other;
	char chunk[100];
	int same = 1;

	mk_buf_init(&buf, arena);
	memset(chunk, 'a', sizeof(chunk));
	for (int i = 0; i < 30; i++)
		mk_buf_append(&buf, chunk, sizeof(chunk));
	tap_ok(!buf.oom && buf.len == 3000, "arena: grows to 3000 bytes");
	for (size_t i = 0; i < buf.len; i++) {
		if (buf.data[i] != 'a')
			same = 0;
	}
	tap_ok(same && buf.data[3000] == '\0',
	    "arena: contents kept across growth");
	/* Another allocation in between: the next growth must move the data. */
	mk_buf_init(&other, arena);
	mk_buf_puts(&other, "interloper");
	mk_buf_append(&buf, "b", 1);
	mk_buf_printf(&buf, "%0600d", 0);
	tap_ok(buf.len == 3601 && buf.data[2999] == 'a' &&
		buf.data[3000] == 'b' && buf.data[3600] == '0',
	    "arena: contents kept when growth has to move");
	tap_is_str(
	    other.data, "interloper", "arena: the other buffer is intact");
	/*
	 * Release is a no-op for arena memory; the arena frees it (leak check).
	 */
	mk_buf_release(&buf);
	tap_ok(buf.data == NULL && buf.len == 0,
	    "arena: release forgets the memory");
	buf.max = 4;
	mk_buf_puts(&buf, "12345");
	tap_ok(buf.oom, "arena: max applies too");
	mk_arena_free(arena);
}

struct json_case {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
};

static const struct json_case json_cases[] = {
	{ "empty", LIT(""), "\"\"" },
	{ "plain", LIT("hello world"), "\"hello world\"" },
	{ "double quote", LIT("say \"hi\""), "\"say \\\"hi\\\"\"" },
	{ "backslash", LIT("a\\b"), "\"a\\\\b\"" },
	{ "slash is left alone", LIT("a/b"), "\"a/b\"" },
	{ "newline, return, tab", LIT("\n\r\t"), "\"\\n\\r\\t\"" },
	{ "control 0x01", LIT("\x01"), "\"\\u0001\"" },
	{ "control 0x1f", LIT("x\x1fy"), "\"x\\u001fy\"" },
	{ "backspace and form feed", LIT("\b\f"), "\"\\u0008\\u000c\"" },
	{ "DEL is legal JSON", LIT("\x7f"), "\"\x7f\"" },
	{ "embedded NUL counted in len", LIT("a\0b"), "\"a\\u0000b\"" },
	{ "valid 2-byte (U+00E9)", LIT("caf\xc3\xa9"), "\"caf\xc3\xa9\"" },
	{ "valid 3-byte (U+20AC)", LIT("\xe2\x82\xac"), "\"\xe2\x82\xac\"" },
	{ "valid 3-byte (U+D7FF, below surrogates)", LIT("\xed\x9f\xbf"),
	    "\"\xed\x9f\xbf\"" },
	{ "valid 3-byte (U+FFFF)", LIT("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"" },
	{ "valid 4-byte (U+1F600)", LIT("\xf0\x9f\x98\x80"),
	    "\"\xf0\x9f\x98\x80\"" },
	{ "valid 4-byte (U+10FFFF)", LIT("\xf4\x8f\xbf\xbf"),
	    "\"\xf4\x8f\xbf\xbf\"" },
	{ "U+2028 escaped", LIT("a\xe2\x80\xa8z"), "\"a\\u2028z\"" },
	{ "U+2029 escaped", LIT("\xe2\x80\xa9"), "\"\\u2029\"" },
	{ "U+2027 kept", LIT("\xe2\x80\xa7"), "\"\xe2\x80\xa7\"" },
	{ "0xff", LIT("\xff"), "\"\\ufffd\"" },
	{ "lone continuation byte", LIT("a\x80z"), "\"a\\ufffdz\"" },
	{ "2-byte lead cut at the end", LIT("ab\xc3"), "\"ab\\ufffd\"" },
	{ "2-byte lead before ASCII", LIT("\xc3("), "\"\\ufffd(\"" },
	{ "overlong 2-byte C0 AF", LIT("\xc0\xaf"), "\"\\ufffd\\ufffd\"" },
	{ "overlong 2-byte C1 BF", LIT("\xc1\xbf"), "\"\\ufffd\\ufffd\"" },
	{ "overlong 3-byte E0 80 AF", LIT("\xe0\x80\xaf"),
	    "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "overlong 4-byte F0 80 80 AF", LIT("\xf0\x80\x80\xaf"),
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "surrogate ED A0 80", LIT("\xed\xa0\x80"),
	    "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "surrogate ED BF BF", LIT("\xed\xbf\xbf"),
	    "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "beyond U+10FFFF: F4 90 80 80", LIT("\xf4\x90\x80\x80"),
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "beyond U+10FFFF: F5 80 80 80", LIT("\xf5\x80\x80\x80"),
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "3-byte cut short", LIT("\xe2\x82"), "\"\\ufffd\\ufffd\"" },
	{ "4-byte cut short then ASCII", LIT("\xf0\x9f\x98!"),
	    "\"\\ufffd\\ufffd\\ufffd!\"" },
	{ "mixed", LIT("\"\xc3\xa9\\\n\xff"),
	    "\"\\\"\xc3\xa9\\\\\\n\\ufffd\"" },
};

static void
test_json(void)
{
	struct mk_buf buf;

	mk_buf_init(&buf, NULL);
	for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]);
	     i++) {
		const struct json_case *c = &json_cases[i];

		mk_buf_clear(&buf);
		mk_json_string(&buf, c->in, c->len);
		tap_is_str(buf.data, c->want, "json: %s", c->name);
	}
	mk_buf_clear(&buf);
	mk_json_cstr(&buf, NULL);
	tap_is_str(buf.data, "null", "json: cstr NULL writes null");
	mk_buf_clear(&buf);
	mk_json_cstr(&buf, "a\"b\xe2\x80\xa8");
	tap_is_str(buf.data, "\"a\\\"b\\u2028\"",
	    "json: cstr escapes like mk_json_string");
	mk_buf_clear(&buf);
	mk_json_cstr(&buf, "");
	tap_is_str(buf.data, "\"\"", "json: cstr of empty string");
	mk_buf_clear(&buf);
	/* Only len bytes are read: the rest of the string is not there. */
	mk_json_string(&buf, "abcdef", 3);
	tap_is_str(buf.data, "\"abc\"", "json: only len bytes are written");
	mk_buf_release(&buf);
}

static void
test_utf8_len(void)
{
	static const struct {
		const char *bytes;
		size_t avail;
		size_t want;
	} cases[] = {
		{ "A", 1, 1 },
		{ "\xc3\xa9", 2, 2 },
		{ "\xc3\xa9", 1, 0 },
		{ "\xe2\x82\xac", 3, 3 },
		{ "\xe2\x82\xac", 2, 0 },
		{ "\xf0\x9f\x98\x80", 4, 4 },
		{ "\xf0\x9f\x98\x80", 3, 0 },
		{ "\xed\xa0\x80", 3, 0 },
		{ "\xc0\x80", 2, 0 },
		{ "\x80", 1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = mk_utf8_sequence_len(
		    (const unsigned char *)cases[i].bytes, cases[i].avail);

		tap_is_int(got, cases[i].want, "utf8_sequence_len case %zu", i);
	}
}

struct thing {
	int64_t id;
	unsigned count;
	const char *label;
	const char *extra; /* JSON text */
};

static const struct mk_json_member thing_members[] = {
	MK_JSON_MEMBER(struct thing, id),
	MK_JSON_MEMBER(struct thing, count),
	MK_JSON_MEMBER(struct thing, label),
	MK_JSON_MEMBER_RAW(struct thing, extra),
};

static void
thing_json(struct mk_buf *out, const void *item)
{
	mk_json_object(out, item, thing_members, 4);
}

static void
test_object(void)
{
	static const struct {
		const char *name;
		struct thing thing;
		uint32_t mask; /* 0: the whole object */
		const char *want;
	} cases[] = {
		{ "every kind", { -42, 7, "a\"b", "[1,2]" }, 0,
		    "{\"id\":-42,\"count\":7,\"label\":\"a\\\"b\","
		    "\"extra\":[1,2]}" },
		{ "NULL strings write null", { 0, 0, NULL, NULL }, 0,
		    "{\"id\":0,\"count\":0,\"label\":null,\"extra\":null}" },
		{ "extremes", { INT64_MIN, UINT32_MAX, "", "{}" }, 0,
		    "{\"id\":-9223372036854775808,\"count\":4294967295,"
		    "\"label\":\"\",\"extra\":{}}" },
		{ "mask: the second and fourth", { 1, 2, "x", "true" }, 0xa,
		    "\"count\":2,\"extra\":true" },
		{ "mask: the first only", { 1, 2, "x", "true" }, 0x1,
		    "\"id\":1" },
		{ "mask: none", { 1, 2, "x", "true" }, 0x10, "" },
	};
	struct mk_buf buf;

	mk_buf_init(&buf, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool first = true;

		mk_buf_clear(&buf);
		if (cases[i].mask == 0)
			thing_json(&buf, &cases[i].thing);
		else
			mk_json_members(&buf, &first, &cases[i].thing,
			    thing_members, 4, cases[i].mask);
		tap_is_str(
		    buf.data, cases[i].want, "object: %s", cases[i].name);
	}
	{
		bool first = true;

		mk_buf_clear(&buf);
		mk_json_key(&buf, &first, "a");
		mk_buf_putc(&buf, '1');
		mk_json_members(
		    &buf, &first, &cases[0].thing, thing_members, 4, 0x1);
		mk_json_key(&buf, &first, "b");
		mk_buf_putc(&buf, '2');
		tap_is_str(buf.data, "\"a\":1,\"id\":-42,\"b\":2",
		    "object: keys and members share the commas");
	}
	mk_buf_release(&buf);
}

static void
test_array(void)
{
	const struct thing things[] = {
		{ 1, 0, "one", NULL },
		{ 2, 0, "two", NULL },
		{ 3, 0, "three", NULL },
	};
	struct mk_buf buf;

	mk_buf_init(&buf, NULL);
	mk_json_array(&buf, things, 0, sizeof(things[0]), thing_json);
	tap_is_str(buf.data, "[]", "array: none");
	mk_buf_clear(&buf);
	mk_json_array(&buf, things, 1, sizeof(things[0]), thing_json);
	tap_is_str(buf.data,
	    "[{\"id\":1,\"count\":0,\"label\":\"one\","
	    "\"extra\":null}]",
	    "array: one");
	mk_buf_clear(&buf);
	mk_json_array(&buf, &things[1], 2, sizeof(things[0]), thing_json);
	tap_is_str(buf.data,
	    "[{\"id\":2,\"count\":0,\"label\":\"two\","
	    "\"extra\":null},{\"id\":3,\"count\":0,\"label\":\"three\","
	    "\"extra\":null}]",
	    "array: two, from the middle");
	mk_buf_release(&buf);
}

int
main(void)
{
	test_heap();
	test_printf();
	test_integers();
	test_max();
	test_fixed();
	test_arena_mode();
	test_json();
	test_utf8_len();
	test_object();
	test_array();
	return tap_done();
}
