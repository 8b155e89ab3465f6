/*
 * Unit tests for base64url (src/core/base64url.c), the encoding of every
 * JWT segment. Encoding is RFC 4648 §5 without padding; decoding accepts
 * exactly the strings the encoder produces and nothing else, so a signed
 * token has one spelling: '=' padding, the standard alphabet's '+' and
 * '/', whitespace, bytes >= 0x80, NUL, a length of 1 mod 4 and set bits
 * in the last character's unused low bits are all refused. Round trips
 * cover every length from 0 to 64 of pseudo-random bytes; the decoder is
 * also checked never to write past MK_BASE64URL_DECODED_MAX(len). The
 * lenient decoder (mk_base64_decode_lenient) takes either alphabet,
 * blanks, padding or none, and refuses other characters and digits
 * after '=', within the same bound.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/base64url.h"
#include "core/buf.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1
#define GUARD 16

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Decodes in into a buffer with guard bytes after the documented bound;
 * returns the rc and fails a test when the guard was touched.
 */
static enum mk_err
decode_guarded(const char *in, size_t len, unsigned char *out, size_t out_size,
    size_t *out_len, const char *label)
{
	size_t bound = MK_BASE64URL_DECODED_MAX(len);
	enum mk_err rc;
	bool intact = true;

	if (bound + GUARD > out_size) {
		tap_ok(0, "%s: test buffer too small", label);
		return MK_EINTERNAL;
	}
	memset(out, 0xA5, bound + GUARD);
	rc = mk_base64url_decode(in, len, out, out_len);
	for (size_t i = bound; i < bound + GUARD; i++)
		intact = intact && out[i] == 0xA5;
	if (!intact)
		tap_ok(
		    0, "%s: decode wrote past MK_BASE64URL_DECODED_MAX", label);
	return rc;
}

struct vector {
	const char *bytes;
	size_t len;
	const char *text;
};

/* RFC 4648 §10 and the §9 example, in the url-safe alphabet. */
static const struct vector vectors[] = {
	{ LIT(""), "" },
	{ LIT("f"), "Zg" },
	{ LIT("fo"), "Zm8" },
	{ LIT("foo"), "Zm9v" },
	{ LIT("foob"), "Zm9vYg" },
	{ LIT("fooba"), "Zm9vYmE" },
	{ LIT("foobar"), "Zm9vYmFy" },
	{ LIT("\x14\xfb\x9c\x03\xd9\x7e"), "FPucA9l-" },
	{ LIT("\x14\xfb\x9c\x03\xd9"), "FPucA9k" },
	{ LIT("\x14\xfb\x9c\x03"), "FPucAw" },
	{ LIT("\xfb\xff"), "-_8" },
	{ LIT("\xff"), "_w" },
	{ LIT("\xff\xff\xff"), "____" },
	{ LIT("\xfb\xef\xbe"), "----" },
	{ LIT("\0"), "AA" },
	{ LIT("\0\0"), "AAA" },
	{ LIT("\0\0\0"), "AAAA" },
	{ LIT("{\"alg\":\"HS256\"}"), "eyJhbGciOiJIUzI1NiJ9" },
};

static void
test_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		unsigned char out[72 + GUARD];
		size_t out_len = 9999;
		struct mk_buf buf;
		enum mk_err rc;

		mk_buf_init(&buf, NULL);
		mk_base64url_encode(&buf, v->bytes, v->len);
		tap_ok(strcmp(buf.len > 0 ? buf.data : "", v->text) == 0,
		    "vector '%s': encode", v->text);
		mk_buf_release(&buf);
		rc = decode_guarded(v->text, strlen(v->text), out, sizeof(out),
		    &out_len, v->text);
		tap_is_int(rc, MK_OK, "vector '%s': decode rc", v->text);
		tap_ok(rc == MK_OK && out_len == v->len &&
			memcmp(out, v->bytes, v->len) == 0,
		    "vector '%s': decoded bytes", v->text);
	}
}

/* The whole alphabet decodes to 48 bytes that encode back to it. */
static void
test_alphabet(void)
{
	unsigned char out[72 + GUARD];
	size_t out_len = 0;
	struct mk_buf buf;
	enum mk_err rc;

	rc = decode_guarded(
	    alphabet, 64, out, sizeof(out), &out_len, "alphabet");
	tap_ok(rc == MK_OK && out_len == 48,
	    "all 64 characters decode to 48 bytes");
	mk_buf_init(&buf, NULL);
	mk_base64url_encode(&buf, out, out_len);
	tap_is_str(
	    buf.data, alphabet, "and encode back to the alphabet in order");
	mk_buf_release(&buf);

	/* Encoding appends: earlier contents stay. */
	mk_buf_init(&buf, NULL);
	mk_buf_puts(&buf, "x.");
	mk_base64url_encode(&buf, "foo", 3);
	tap_is_str(
	    buf.data, "x.Zm9v", "encode appends to what the buffer holds");
	mk_buf_release(&buf);
}

/* A fixed xorshift generator: the same bytes on every run. */
static uint32_t
next_random(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

static void
test_round_trips(void)
{
	uint32_t state = 0x2545F491;

	for (size_t len = 0; len <= 64; len++) {
		unsigned char bytes[64], out[72 + GUARD];
		size_t out_len = 9999, want_chars = (len * 4 + 2) / 3;
		struct mk_buf buf;
		bool in_alphabet = true;
		enum mk_err rc;
		char label[32];

		for (size_t i = 0; i < len; i++)
			bytes[i] = (unsigned char)next_random(&state);
		mk_buf_init(&buf, NULL);
		mk_base64url_encode(&buf, bytes, len);
		for (size_t i = 0; i < buf.len; i++)
			in_alphabet = in_alphabet && buf.data[i] != '\0' &&
			    strchr(alphabet, buf.data[i]) != NULL;
		tap_ok(buf.len == want_chars && in_alphabet && !buf.oom,
		    "round trip %zu bytes: %zu url-safe characters, no padding",
		    len, want_chars);
		snprintf(label, sizeof(label), "round trip %zu", len);
		rc = decode_guarded(buf.len > 0 ? buf.data : "", buf.len, out,
		    sizeof(out), &out_len, label);
		tap_ok(rc == MK_OK && out_len == len &&
			memcmp(out, bytes, len) == 0,
		    "round trip %zu bytes: decodes to the same bytes", len);
		mk_buf_release(&buf);
	}
}

struct refused_case {
	const char *name;
	const char *in;
	size_t len;
};

static const struct refused_case refused_cases[] = {
	{ "padding ==", LIT("Zg==") },
	{ "padding =", LIT("Zm8=") },
	{ "padding on 2 chars", LIT("Zg=") },
	{ "padding only", LIT("====") },
	{ "padding after a quad", LIT("Zm9v====") },
	{ "'+' (standard alphabet)", LIT("FPucA9l+") },
	{ "'/' (standard alphabet)", LIT("__8/") },
	{ "space inside", LIT("Zm9v YmFy") },
	{ "leading space", LIT(" Zm9v") },
	{ "trailing newline", LIT("Zm9v\n") },
	{ "CRLF inside", LIT("Zm9v\r\nYmFy") },
	{ "tab", LIT("Zm\t9v") },
	{ "'.'", LIT("Zm9.") },
	{ "'*'", LIT("Zm*v") },
	{ "length 1", LIT("A") },
	{ "length 5", LIT("Zm9vY") },
	{ "length 9", LIT("Zm9vYmFyA") },
	{ "pad bits set, 2 chars (AB)", LIT("AB") },
	{ "pad bits set, 2 chars (Zh)", LIT("Zh") },
	{ "pad bits set, 2 chars (__)", LIT("__") },
	{ "pad bits set, 3 chars (AAB)", LIT("AAB") },
	{ "pad bits set, 3 chars (Zm9)", LIT("Zm9") },
	{ "pad bits set after a quad", LIT("Zm9vYh") },
	{ "byte 0x80",
	    LIT("\x80"
		"AAA") },
	{ "byte 0xff", LIT("AA\xff") },
	{ "UTF-8 letter",
	    LIT("\xc3\xa9"
		"AA") },
	{ "NUL inside", LIT("AA\0A") },
	{ "NUL at the end", LIT("Zm9v\0") },
	{ "NUL only", LIT("\0\0\0\0") },
};

static void
test_refused(void)
{
	for (size_t i = 0; i < sizeof(refused_cases) / sizeof(refused_cases[0]);
	     i++) {
		const struct refused_case *c = &refused_cases[i];
		unsigned char out[72 + GUARD];
		size_t out_len = 0;

		tap_is_int(decode_guarded(c->in, c->len, out, sizeof(out),
			       &out_len, c->name),
		    MK_EINVAL, "refused: %s", c->name);
	}
}

/* The canonical neighbours of the pad-bit cases are accepted. */
static const struct vector canonical_twins[] = {
	{ LIT("\0"), "AA" },
	{ LIT("\0\0"), "AAA" },
	{ LIT("f"), "Zg" },
	{ LIT("fo"), "Zm8" },
	{ LIT("\xff"), "_w" },
	{ LIT("foo\x66"), "Zm9vZg" },
};

static void
test_canonical_twins(void)
{
	for (size_t i = 0;
	     i < sizeof(canonical_twins) / sizeof(canonical_twins[0]); i++) {
		const struct vector *v = &canonical_twins[i];
		unsigned char out[72 + GUARD];
		size_t out_len = 0;
		enum mk_err rc;

		rc = decode_guarded(v->text, strlen(v->text), out, sizeof(out),
		    &out_len, v->text);
		tap_ok(rc == MK_OK && out_len == v->len &&
			memcmp(out, v->bytes, v->len) == 0,
		    "accepted: '%s' (zero pad bits)", v->text);
	}
}

/* Only one of the 4 (or 16) spellings of a 3-char (2-char) tail decodes. */
static void
test_one_spelling(void)
{
	int accepted2 = 0, accepted3 = 0;

	for (int k = 0; k < 64; k++) {
		char two[2] = { 'Z', alphabet[k] },
		     three[3] = { 'Z', 'm', alphabet[k] };
		unsigned char out[8];
		size_t out_len;

		accepted2 +=
		    mk_base64url_decode(two, 2, out, &out_len) == MK_OK;
		accepted3 +=
		    mk_base64url_decode(three, 3, out, &out_len) == MK_OK;
	}
	tap_is_int(accepted2, 4,
	    "2-char tails: 4 of 64 last characters are canonical");
	tap_is_int(accepted3, 16,
	    "3-char tails: 16 of 64 last characters are canonical");
}

/* RFC 4648 §10 in the standard alphabet, and what leniency lets by. */
static const struct {
	const char *text;
	size_t text_len;
	enum mk_err rc;
	const char *bytes;
	size_t len;
} lenient_cases[] = {
	{ LIT(""), MK_OK, LIT("") },
	{ LIT("Zg=="), MK_OK, LIT("f") },
	{ LIT("Zm8="), MK_OK, LIT("fo") },
	{ LIT("Zm9v"), MK_OK, LIT("foo") },
	{ LIT("Zm9vYg=="), MK_OK, LIT("foob") },
	{ LIT("Zm9vYmE="), MK_OK, LIT("fooba") },
	{ LIT("Zm9vYmFy"), MK_OK, LIT("foobar") },
	{ LIT("Zm9vYg"), MK_OK, LIT("foob") },
	{ LIT("+/+/"), MK_OK, LIT("\xfb\xff\xbf") },
	{ LIT("-_-_"), MK_OK, LIT("\xfb\xff\xbf") },
	{ LIT("+_-/"), MK_OK, LIT("\xfb\xff\xbf") },
	{ LIT("Zm9v\r\nYmFy\n"), MK_OK, LIT("foobar") },
	{ LIT(" \tZm 9v\vYm\fFy "), MK_OK, LIT("foobar") },
	{ LIT("Zg== \n"), MK_OK, LIT("f") },
	{ LIT("Zg"), MK_OK, LIT("f") },
	{ LIT("Zh"), MK_OK, LIT("f") },
	{ LIT("Z"), MK_OK, LIT("") },
	{ LIT("===="), MK_OK, LIT("") },
	{ LIT("Zg==Zg=="), MK_EINVAL, NULL, 0 },
	{ LIT("Zm9v!"), MK_EINVAL, NULL, 0 },
	{ LIT("Zm9v.YmFy"), MK_EINVAL, NULL, 0 },
	{ LIT("Zm\xc3\xa9"), MK_EINVAL, NULL, 0 },
	{ LIT("Zm\0v"), MK_EINVAL, NULL, 0 },
};

static void
test_lenient(void)
{
	for (size_t i = 0; i < sizeof(lenient_cases) / sizeof(lenient_cases[0]);
	     i++) {
		size_t text_len = lenient_cases[i].text_len, out_len = 9999;
		size_t bound = MK_BASE64URL_DECODED_MAX(text_len);
		unsigned char out[16 + GUARD];
		bool intact = true;
		enum mk_err rc;

		memset(out, 0xA5, sizeof(out));
		rc = mk_base64_decode_lenient(
		    lenient_cases[i].text, text_len, out, &out_len);
		for (size_t k = bound; k < sizeof(out); k++)
			intact = intact && out[k] == 0xA5;
		tap_is_int(rc, lenient_cases[i].rc, "lenient case %zu: rc", i);
		tap_ok(intact, "lenient case %zu: within the bound", i);
		if (rc != MK_OK || lenient_cases[i].rc != MK_OK)
			continue;
		tap_ok(out_len == lenient_cases[i].len &&
			memcmp(out, lenient_cases[i].bytes, out_len) == 0,
		    "lenient case %zu: decoded bytes", i);
	}
}

int
main(void)
{
	test_vectors();
	test_alphabet();
	test_round_trips();
	test_refused();
	test_canonical_twins();
	test_one_spelling();
	test_lenient();
	return tap_done();
}
