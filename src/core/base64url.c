/*
 * base64url without padding (core layer); see base64url.h.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/base64url.h"
#include "core/buf.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
mk_base64url_encode(struct mk_buf *out, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	size_t i = 0;

	if (!mk_buf_reserve(out, (len + 2) / 3 * 4))
		return;
	for (; i + 3 <= len; i += 3) {
		uint32_t v =
		    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		char quad[4] = { alphabet[v >> 18], alphabet[(v >> 12) & 63],
			alphabet[(v >> 6) & 63], alphabet[v & 63] };

		mk_buf_append(out, quad, 4);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		char pair[2] = { alphabet[v >> 18], alphabet[(v >> 12) & 63] };

		mk_buf_append(out, pair, 2);
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		char triple[3] = { alphabet[v >> 18], alphabet[(v >> 12) & 63],
			alphabet[(v >> 6) & 63] };

		mk_buf_append(out, triple, 3);
	}
}

/* The 6-bit value of c, or -1 when c is not in the url-safe alphabet. */
static int
sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* The same in either alphabet: the standard one's '+' and '/' too. */
static int
sextet_any(unsigned char c)
{
	return c == '+' ? 62 : c == '/' ? 63 : sextet(c);
}

enum mk_err
mk_base64url_decode(
    const char *in, size_t len, unsigned char *out, size_t *out_len)
{
	size_t o = 0, i = 0, tail = len % 4;
	int v[4];

	if (tail == 1)
		return MK_EINVAL;
	for (; i + 4 <= len; i += 4) {
		for (int k = 0; k < 4; k++) {
			if ((v[k] = sextet((unsigned char)in[i + k])) < 0)
				return MK_EINVAL;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	if (tail > 0) {
		for (size_t k = 0; k < tail; k++) {
			if ((v[k] = sextet((unsigned char)in[i + k])) < 0)
				return MK_EINVAL;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (tail == 2) {
			if (v[1] & 15)
				/* non-zero pad bits: not canonical */
				return MK_EINVAL;
		} else {
			out[o++] =
			    (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
			if (v[2] & 3)
				return MK_EINVAL;
		}
	}
	*out_len = o;
	return MK_OK;
}

/* The blanks a lenient decode skips: isspace() of the C locale. */
static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

enum mk_err
mk_base64_decode_lenient(
    const char *in, size_t len, unsigned char *out, size_t *out_len)
{
	uint32_t acc = 0;
	size_t o = 0, bits = 0;
	bool padding = false;

	for (size_t i = 0; i < len; i++) {
		int v = sextet_any((unsigned char)in[i]);

		if (blank(in[i]))
			continue;
		if (in[i] == '=') {
			padding = true;
			continue;
		}
		if (v < 0 || padding)
			return MK_EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*out_len = o;
	return MK_OK;
}
