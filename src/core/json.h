/*
 * JSON output helpers (core layer). Responses and log lines are written
 * straight into a buffer rather than built as json-c trees: it is the hot
 * path and the shapes are fixed. json-c is for parsing input.
 */
#ifndef MK_JSON_H
#define MK_JSON_H

#include <stddef.h>

struct mk_buf;

/*
 * Appends s (len bytes) as a quoted JSON string. Control characters, '"'
 * and '\\' are escaped, as are U+2028/U+2029; bytes that are not valid
 * UTF-8 are replaced by U+FFFD so the output is always valid JSON.
 */
void mk_json_string(struct mk_buf *buf, const char *s, size_t len);

/* As mk_json_string() for a NUL-terminated string; NULL writes null. */
void mk_json_cstr(struct mk_buf *buf, const char *s);

/*
 * Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when
 * the bytes there are not one (overlong, surrogate, > U+10FFFF, cut).
 */
size_t mk_utf8_sequence_len(const unsigned char *s, size_t avail);

#endif
