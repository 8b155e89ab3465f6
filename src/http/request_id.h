/*
 * Request ids (http layer). An incoming X-Request-Id is kept when it is a
 * token (core/token.h: 1-64 chars of [A-Za-z0-9._-]); anything else is
 * replaced by a new id, never cleaned up. New ids are 32 hex digits: a
 * random per-worker prefix and a scrambled counter, so they are unique
 * across workers and hosts without a syscall per request.
 */
#ifndef MK_REQUEST_ID_H
#define MK_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/token.h"

#define MK_REQUEST_ID_MAX MK_TOKEN_MAX
#define MK_REQUEST_ID_GENERATED_LEN 32

struct mk_request_id_gen {
	uint64_t prefix;
	uint64_t counter;
};

/* True when s (len bytes) is a sane incoming id. */
bool mk_request_id_valid(const char *s, size_t len);

/*
 * Seeds a generator from the kernel's random source. Call after fork so
 * workers differ. Returns 0, or -1 when no randomness could be had.
 */
int mk_request_id_seed(struct mk_request_id_gen *gen);

/*
 * Writes a new id and its NUL into out (MK_REQUEST_ID_GENERATED_LEN + 1 bytes).
 */
void mk_request_id_next(struct mk_request_id_gen *gen, char *out);

#endif
