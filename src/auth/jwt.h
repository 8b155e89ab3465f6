/*
 * JSON Web Tokens (auth layer), with OpenSSL 3 EVP only: compact JWS
 * verification for the bearer tokens of API.md, and HS256 signing for
 * markets-admin and tests.
 *
 * What a token must be to pass (RFC 8725 is the reference):
 *  - three non-empty canonical base64url segments, 8 KiB at most;
 *  - header and payload strict JSON objects (no duplicate members, no
 *    NUL in any string);
 *  - header "alg" equal to the configured algorithm, never chosen by the
 *    token; no "crit", "b64", "cty", "jku", "jwk", "x5u" or "x5c" (key
 *    sources in a token are never fetched nor trusted); "kid", when
 *    present, naming a configured key;
 *  - a signature of the algorithm's exact length that verifies (HMAC
 *    compared in constant time; ES256 r and s in [1, n-1]);
 *  - "exp" an integer below 2^53 not past (with leeway); "nbf"/"iat" the
 *    same kind, not in the future; exp - iat at most jwt_max_lifetime
 *    (without iat: exp - now at most that plus the leeway, on every
 *    use); "sub" a positive integer (number or
 *    canonical digit string); "role" admin, moderator or user; "iss" and
 *    "aud" as configured.
 * Every failure is MK_EAUTH; only the log learns which check failed.
 *
 * A verifier is worker-lifetime: made from the configuration at worker
 * start (and by the master to validate a configuration), it owns its
 * keys and OpenSSL contexts and is not thread-safe.
 */
#ifndef MK_JWT_H
#define MK_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_buf;
struct mk_config;
struct mk_identity;
struct mk_jwt_verifier;

/* Longest token accepted, in bytes. */
#define MK_JWT_MAX_LEN 8192

/*
 * Makes a verifier from the jwt_* settings, loading every key (the
 * secret, the public key file, the keys directory). Returns NULL with a
 * reason in err when a key cannot be loaded or does not fit jwt_alg.
 * Free with mk_jwt_verifier_free().
 */
struct mk_jwt_verifier *mk_jwt_verifier_new(
    const struct mk_config *config, char *err, size_t errlen);

void mk_jwt_verifier_free(struct mk_jwt_verifier *verifier);

/* How many keys the verifier holds (0: every token will be refused). */
size_t mk_jwt_verifier_key_count(const struct mk_jwt_verifier *verifier);

/*
 * Verifies token (len bytes) at time now (seconds since the epoch). On
 * MK_OK fills *who (strings in arena). On failure returns MK_EAUTH (or
 * MK_ENOMEM) and sets *why to the failed check, for the log only.
 */
enum mk_err mk_jwt_verify(struct mk_jwt_verifier *verifier,
    struct mk_arena *arena, const char *token, size_t len, int64_t now,
    struct mk_identity *who, const char **why);

/*
 * Appends a compact HS256 JWS of the given JSON header and payload,
 * signed with secret. Returns MK_OK, MK_EINTERNAL when OpenSSL fails or
 * MK_ENOMEM when out is out of memory.
 */
enum mk_err mk_jwt_sign_hs256(struct mk_buf *out, const char *header_json,
    const char *payload_json, const void *secret, size_t secret_len);

#endif
