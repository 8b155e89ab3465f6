/*
 * Percent-decoding and query strings (http layer). Decoding is strict:
 * a '%' not followed by two hex digits, or a NUL byte (literal or %00),
 * is an error, never silently repaired. Decoded strings live in the
 * request arena.
 */
#ifndef MK_QUERY_H
#define MK_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct mk_arena;

/* Query parameters past this many are a 400: no handler needs more. */
#define MK_QUERY_MAX_PAIRS 64

struct mk_query_pair {
	const char *key;   /* decoded, NUL-terminated */
	const char *value; /* decoded, NUL-terminated; "" for a bare key */
	size_t key_len;
	size_t value_len;
};

struct mk_query {
	struct mk_query_pair *pairs;
	size_t count;
};

/* The value of a hex digit, or -1 when c is none. */
int mk_hex_value(unsigned char c);

/*
 * Decodes len bytes of in into out (which must hold len + 1 bytes) and
 * NUL-terminates it; '+' becomes a space when plus_is_space (query
 * strings), stays '+' otherwise (paths). Returns MK_OK with *out_len set,
 * or MK_EBADREQUEST on a bad escape or a NUL.
 */
enum mk_err mk_percent_decode(
    const char *in, size_t len, bool plus_is_space, char *out, size_t *out_len);

/*
 * Splits a raw query string (no leading '?') on '&', decodes each
 * key=value pair into the arena and keeps them in order, repeats
 * included. Empty pieces ("a=1&&b=2") are skipped. Returns MK_OK,
 * MK_EBADREQUEST (bad escape, NUL, empty key, more than
 * MK_QUERY_MAX_PAIRS pairs) or MK_ENOMEM.
 */
enum mk_err mk_query_parse(
    struct mk_arena *arena, const char *raw, size_t len, struct mk_query *out);

/*
 * Returns the first pair named key, or NULL; *count (when not NULL) gets
 * how many pairs carry that name, so callers can refuse repeats.
 */
const struct mk_query_pair *mk_query_find(
    const struct mk_query *query, const char *key, size_t *count);

#endif
