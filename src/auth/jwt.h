/*
 * JSON Web Tokens (auth layer), with OpenSSL 3 EVP only. This part signs
 * HS256 tokens (for markets-admin and tests); verification arrives with
 * the auth middleware.
 */
#ifndef MK_JWT_H
#define MK_JWT_H

#include <stddef.h>

#include "core/err.h"

struct mk_buf;

/* Appends base64url without padding (RFC 7515 §2) of len bytes. */
void mk_base64url_encode(struct mk_buf *out, const void *bytes, size_t len);

/*
 * Appends a compact HS256 JWS of the given JSON header and payload,
 * signed with secret. Returns MK_OK, or MK_EINTERNAL when OpenSSL fails
 * or MK_ENOMEM when out is out of memory.
 */
enum mk_err mk_jwt_sign_hs256(struct mk_buf *out, const char *header_json,
    const char *payload_json, const void *secret, size_t secret_len);

#endif
