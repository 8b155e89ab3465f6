/*
 * Tokens (core layer): the one alphabet for names a client or an operator
 * hands us that end up in logs, headers and file names — request ids
 * (http/request_id.c), JWT key ids (auth/jwt_keys.c, auth/jwt.c),
 * Idempotency-Keys. A token is 1 to MK_TOKEN_MAX bytes of [A-Za-z0-9._-]:
 * nothing to escape, nothing to inject, no path separator. Plain values:
 * no allocation.
 */
#ifndef MK_TOKEN_H
#define MK_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define MK_TOKEN_MAX 64

/* True when s (len bytes, looked at through len only) is a token. */
bool mk_token_valid(const char *s, size_t len);

#endif
