/*
 * Unit tests of the list cursor codec (markets/cursor.c), table-driven:
 * round trips of every sort with and without filters and awkward keys;
 * refusal of anything this server did not make — each byte of a good
 * cursor changed, another key, truncation, padding — and of well-MACed
 * plain texts whose fields are malformed.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "markets/cursor.h"
#include "tap.h"

static const unsigned char key[MK_CURSOR_KEY_LEN] =
    "test-cursor-key-0123456789abcdef";
static const unsigned char other_key[MK_CURSOR_KEY_LEN] =
    "another-cursor-key-0123456789abc";

static void
test_round_trips(struct mk_arena *arena)
{
	static const struct mk_cursor cases[] = {
		{ MK_SORT_CREATED_DESC, NULL, 0, "2026-01-07 22:39:00.000000",
		    9999 },
		{ MK_SORT_CREATED_ASC, "active", 0,
		    "2026-01-01 00:00:00.123456", 1 },
		{ MK_SORT_VOLUME_DESC, "closed", 42, "333220.33", 8208 },
		{ MK_SORT_VOLUME_ASC, "resolved", 0, "0.00",
		    9223372036854775807LL / 1000 },
		{ MK_SORT_NAME_DESC, NULL, 7, "Will \x1f it \x1f split?", 12 },
		{ MK_SORT_NAME_ASC, NULL, 0, "", 3 },
		{ MK_SORT_NAME_ASC, "active", 1,
		    "caf\xc3\xa9 \xf0\x9f\x98\x80 | pipes || and \"quotes\"",
		    77 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mk_cursor back;
		struct mk_buf text;
		enum mk_err rc;

		mk_buf_init(&text, arena);
		mk_cursor_encode(&text, key, &cases[i]);
		rc = mk_cursor_decode(arena, key, text.data, text.len, &back);
		tap_ok(!text.oom && rc == MK_OK && back.sort == cases[i].sort &&
			back.id == cases[i].id &&
			back.creator_id == cases[i].creator_id &&
			strcmp(back.key, cases[i].key) == 0 &&
			((back.status == NULL && cases[i].status == NULL) ||
			    (back.status != NULL && cases[i].status != NULL &&
				strcmp(back.status, cases[i].status) == 0)),
		    "round trip %zu (%s, key '%.12s')", i,
		    mk_market_sort_name(cases[i].sort), cases[i].key);
		tap_ok(strspn(text.data,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
			   "z0123456789-_") == text.len,
		    "round trip %zu: the text is URL-safe", i);
		tap_is_int(mk_cursor_decode(
			       arena, other_key, text.data, text.len, &back),
		    MK_EBADREQUEST,
		    "round trip %zu: another server's key refuses it", i);
	}
}

static void
test_tampering(struct mk_arena *arena)
{
	struct mk_cursor c = { MK_SORT_VOLUME_DESC, "active", 0, "1234.56",
		4242 },
			 back;
	struct mk_buf text;
	size_t refused = 0;

	mk_buf_init(&text, arena);
	mk_cursor_encode(&text, key, &c);
	for (size_t i = 0; i < text.len; i++) {
		char *copy = mk_arena_strndup(arena, text.data, text.len);

		copy[i] = copy[i] == 'A' ? 'B' : 'A';
		refused += mk_cursor_decode(arena, key, copy, text.len,
			       &back) == MK_EBADREQUEST;
	}
	tap_is_int(refused, text.len,
	    "every one-character change of a cursor is refused");
	for (size_t cut = 0; cut < text.len; cut += 3)
		refused += mk_cursor_decode(
			       arena, key, text.data, cut, &back) != MK_OK;
	tap_ok(refused == text.len + (text.len + 2) / 3,
	    "every truncation is refused");
	{
		char *padded = mk_arena_alloc(arena, text.len + 2);

		memcpy(padded, text.data, text.len);
		memcpy(padded + text.len, "==", 2);
		tap_is_int(
		    mk_cursor_decode(arena, key, padded, text.len + 2, &back),
		    MK_EBADREQUEST, "padding is refused");
	}
	tap_is_int(mk_cursor_decode(arena, key, "", 0, &back), MK_EBADREQUEST,
	    "an empty cursor is refused");
	tap_is_int(mk_cursor_decode(arena, key, "garbage", 7, &back),
	    MK_EBADREQUEST, "garbage is refused");
}

/* A plain text with a good MAC: only the field checks stand in the way. */
static enum mk_err
decode_plain(struct mk_arena *arena, const char *plain, size_t len,
    struct mk_cursor *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE], raw[512];
	size_t mac_len = 0;
	struct mk_buf text;

	EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key),
	    (const unsigned char *)plain, len, mac, sizeof(mac), &mac_len);
	memcpy(raw, plain, len);
	memcpy(raw + len, mac, 16);
	mk_buf_init(&text, arena);
	mk_base64url_encode(&text, raw, len + 16);
	return mk_cursor_decode(arena, key, text.data, text.len, out);
}

static void
test_malformed(struct mk_arena *arena)
{
	static const struct {
		const char *plain;
		size_t len;
		enum mk_err want;
		const char *name;
	} cases[] = {
#define P(s) s, sizeof(s) - 1
		{ P("1\x1f"
		    "2\x1f"
		    "active\x1f"
		    "0\x1f"
		    "42\x1f"
		    "9.99"),
		    MK_OK, "well-formed" },
		{ P("2\x1f"
		    "2\x1f"
		    "active\x1f"
		    "0\x1f"
		    "42\x1f"
		    "9.99"),
		    MK_EBADREQUEST, "version 2" },
		{ P("1\x1f"
		    "6\x1f"
		    "\x1f"
		    "0\x1f"
		    "42\x1f"
		    "x"),
		    MK_EBADREQUEST, "sort 6 (past the table)" },
		{ P("1\x1f"
		    "-1\x1f"
		    "\x1f"
		    "0\x1f"
		    "42\x1f"
		    "x"),
		    MK_EBADREQUEST, "sort -1" },
		{ P("1\x1f"
		    "2\x1f"
		    "open\x1f"
		    "0\x1f"
		    "42\x1f"
		    "x"),
		    MK_EBADREQUEST, "unknown status" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "0\x1f"
		    "x"),
		    MK_EBADREQUEST, "id 0" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "042\x1f"
		    "x"),
		    MK_EBADREQUEST, "id with a leading zero" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "99999999999999999999\x1f"
		    "x"),
		    MK_EBADREQUEST, "id past 64 bits" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "x\x1f"
		    "42\x1f"
		    "x"),
		    MK_EBADREQUEST, "creator not a number" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "42"),
		    MK_EBADREQUEST, "missing the key field" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "42\x1f"
		    "a\0b"),
		    MK_EBADREQUEST, "NUL in the key" },
		{ P("1\x1f"
		    "2\x1f"
		    "\x1f"
		    "0\x1f"
		    "42\x1f"
		    "a\x1f"
		    "b"),
		    MK_OK, "a separator inside the key" },
#undef P
	};
	struct mk_cursor out;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_is_int(
		    decode_plain(arena, cases[i].plain, cases[i].len, &out),
		    cases[i].want, "well-MACed plain text: %s", cases[i].name);
}

int
main(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	test_round_trips(arena);
	test_tampering(arena);
	test_malformed(arena);
	mk_arena_free(arena);
	return tap_done();
}
