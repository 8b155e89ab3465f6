/*
 * The keys of a JWT verifier (auth layer): the algorithm jwt_alg names,
 * and every key the jwt_* settings point at — jwt_secret (HS256),
 * jwt_public_key (a PEM file, RS256 or ES256) and jwt_keys_dir (one file
 * per key id, for rotation) — each checked against the algorithm when
 * loaded, so a token never meets a key that does not fit it. A public
 * key offered as an HS256 secret is refused (auth/keyform.h).
 *
 * It calls core/ (config, token) and auth/keyform, and OpenSSL. A key set
 * lives inside its verifier (auth/jwt.c), worker-lifetime: it owns its
 * key ids, HMAC contexts and public keys until mk_jwt_keys_clear().
 */
#ifndef MK_JWT_KEYS_H
#define MK_JWT_KEYS_H

#include <openssl/types.h>
#include <stddef.h>

#include "core/err.h"

struct mk_config;

enum mk_jwt_alg {
	MK_JWT_HS256,
	MK_JWT_RS256,
	MK_JWT_ES256,
	MK_JWT_ALG__MAX
};

/* Their names, as jwt_alg and a token's "alg" spell them. */
extern const char *const mk_jwt_alg_names[MK_JWT_ALG__MAX];

/* The most keys a verifier holds. */
#define MK_JWT_KEYS_MAX 64

struct mk_jwt_key {
	char *kid;            /* NULL: the key for tokens without a kid */
	EVP_MAC_CTX *hmac;    /* HS256 */
	EVP_PKEY *pkey;       /* RS256, ES256 */
	size_t signature_len; /* exact length a signature must have */
};

struct mk_jwt_keys {
	enum mk_jwt_alg alg;
	struct mk_jwt_key keys[MK_JWT_KEYS_MAX];
	size_t nkeys;
	EVP_MAC *mac; /* HMAC, fetched once */
};

/*
 * Fills keys (zeroed by the caller) from the jwt_alg, jwt_secret,
 * jwt_public_key and jwt_keys_dir settings. Returns MK_OK, or MK_EINVAL
 * with a reason in err (a key that cannot be read, does not fit jwt_alg,
 * or OpenSSL or memory failing); call mk_jwt_keys_clear() either way.
 */
enum mk_err mk_jwt_keys_load(struct mk_jwt_keys *keys,
    const struct mk_config *config, char *err, size_t errlen);

/* Frees what keys owns and leaves it empty. */
void mk_jwt_keys_clear(struct mk_jwt_keys *keys);

/* The key named kid (NULL: the key for tokens without one), or NULL. */
const struct mk_jwt_key *mk_jwt_keys_find(
    const struct mk_jwt_keys *keys, const char *kid);

#endif
