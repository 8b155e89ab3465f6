/*
 * base64url without padding (RFC 7515 §2, RFC 4648 §5), the encoding of
 * every JWT segment (core layer). Decoding is canonical-only: one input
 * has one accepted spelling, so a token cannot be re-encoded into another
 * string that verifies the same. Beside it, a lenient decoder of either
 * alphabet (RFC 4648 §4 base64 too), for recognising what a text holds.
 */
#ifndef MK_BASE64URL_H
#define MK_BASE64URL_H

#include <stddef.h>

#include "core/err.h"

struct mk_buf;

/* Appends the encoding of len bytes. */
void mk_base64url_encode(struct mk_buf *out, const void *bytes, size_t len);

/* Bytes that decoding len characters can produce (an upper bound). */
#define MK_BASE64URL_DECODED_MAX(len) ((len) / 4 * 3 + 2)

/*
 * Decodes len characters of in into out (room for
 * MK_BASE64URL_DECODED_MAX(len) bytes) and sets *out_len. Refuses, with
 * MK_EINVAL: '=' padding, '+', '/', whitespace or any other character
 * outside [A-Za-z0-9_-], a length of 1 mod 4, and non-zero bits in the
 * last character's unused low bits.
 */
enum mk_err mk_base64url_decode(
    const char *in, size_t len, unsigned char *out, size_t *out_len);

/*
 * Decodes len characters of base64 in either alphabet ('+' '/' or '-'
 * '_', mixed too), leniently: blanks and line breaks anywhere, '='
 * padding or none, unused low bits ignored — for asking what a text
 * holds, never for a value that must have one spelling. Writes at most
 * MK_BASE64URL_DECODED_MAX(len) bytes to out and sets *out_len; refuses,
 * with MK_EINVAL, any other character and anything but '=' and blanks
 * after an '='.
 */
enum mk_err mk_base64_decode_lenient(
    const char *in, size_t len, unsigned char *out, size_t *out_len);

#endif
