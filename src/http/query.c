/*
 * Percent-decoding and query strings (http layer); see query.h.
 */
#include <string.h>

#include "core/arena.h"
#include "http/query.h"

int
mk_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum mk_err
mk_percent_decode(
    const char *in, size_t len, bool plus_is_space, char *out, size_t *out_len)
{
	size_t i = 0, o = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return MK_EBADREQUEST;
			hi = mk_hex_value((unsigned char)in[i + 1]);
			lo = mk_hex_value((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return MK_EBADREQUEST;
			c = (unsigned char)(hi << 4 | lo);
			i += 3;
		} else {
			if (c == '+' && plus_is_space)
				c = ' ';
			i++;
		}
		if (c == '\0')
			return MK_EBADREQUEST;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*out_len = o;
	return MK_OK;
}

enum mk_err
mk_query_parse(
    struct mk_arena *arena, const char *raw, size_t len, struct mk_query *out)
{
	struct mk_query_pair *pairs;
	size_t npieces = 1, count = 0, pos = 0;

	out->pairs = NULL;
	out->count = 0;
	if (len == 0)
		return MK_OK;
	for (size_t i = 0; i < len; i++)
		npieces += raw[i] == '&';
	if (npieces > MK_QUERY_MAX_PAIRS * 4)
		/* do not even allocate for a flood of '&' */
		return MK_EBADREQUEST;
	pairs = mk_arena_alloc(arena, npieces * sizeof(*pairs));
	if (pairs == NULL)
		return MK_ENOMEM;
	while (pos <= len) {
		const char *piece = raw + pos, *amp, *eq;
		size_t piece_len, key_raw_len, value_raw_len;
		char *key, *value;
		enum mk_err rc;

		amp = memchr(piece, '&', len - pos);
		piece_len = amp != NULL ? (size_t)(amp - piece) : len - pos;
		pos += piece_len + 1;
		if (piece_len == 0)
			continue;
		if (count == MK_QUERY_MAX_PAIRS)
			return MK_EBADREQUEST;
		eq = memchr(piece, '=', piece_len);
		key_raw_len = eq != NULL ? (size_t)(eq - piece) : piece_len;
		value_raw_len = eq != NULL ? piece_len - key_raw_len - 1 : 0;
		key = mk_arena_alloc(arena, key_raw_len + 1);
		value = mk_arena_alloc(arena, value_raw_len + 1);
		if (key == NULL || value == NULL)
			return MK_ENOMEM;
		rc = mk_percent_decode(
		    piece, key_raw_len, true, key, &pairs[count].key_len);
		if (rc != MK_OK)
			return rc;
		if (pairs[count].key_len == 0)
			return MK_EBADREQUEST;
		rc = mk_percent_decode(eq != NULL ? eq + 1 : piece + piece_len,
		    value_raw_len, true, value, &pairs[count].value_len);
		if (rc != MK_OK)
			return rc;
		pairs[count].key = key;
		pairs[count].value = value;
		count++;
	}
	out->pairs = pairs;
	out->count = count;
	return MK_OK;
}

const struct mk_query_pair *
mk_query_find(const struct mk_query *query, const char *key, size_t *count)
{
	const struct mk_query_pair *first = NULL;
	size_t n = 0, key_len = strlen(key);

	for (size_t i = 0; i < query->count; i++) {
		const struct mk_query_pair *p = &query->pairs[i];

		if (p->key_len == key_len &&
		    memcmp(p->key, key, key_len) == 0) {
			if (first == NULL)
				first = p;
			n++;
		}
	}
	if (count != NULL)
		*count = n;
	return first;
}
