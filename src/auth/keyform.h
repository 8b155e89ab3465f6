/*
 * Public keys posing as secrets (auth layer). An HMAC secret must be
 * secret; a public key is published. Configured as an HS256 secret (or a
 * cursor MAC key) it would let anyone who has it mint tokens — the
 * RS256→HS256 confusion, from our side. This recognises the forms a
 * public key is commonly passed around in, so start-up can refuse them.
 * Pure function of its input; uses OpenSSL's DER decoders and core's
 * lenient base64 decoder.
 */
#ifndef MK_KEYFORM_H
#define MK_KEYFORM_H

#include <stddef.h>

/*
 * Looks at len bytes (binary allowed: key files may hold DER) and returns
 * a description of the public key form they are in, for an error
 * message — "PEM text", "a DER public key", "a base64 DER public key",
 * "an OpenSSH public key", "a JWK (JSON Web Key)" — or NULL when they are
 * none of these. Recognised:
 *  - PEM: any "-----BEGIN" armour (public key, certificate, anything);
 *  - DER: SubjectPublicKeyInfo, PKCS#1 RSAPublicKey, an X.509
 *    certificate, or a bare uncompressed EC point on P-256/P-384/P-521;
 *    the same in base64 or base64url, with or without padding and line
 *    breaks;
 *  - OpenSSH: an authorized_keys line ("ssh-ed25519 AAAA…",
 *    "ecdsa-sha2-…", "sk-…"), the RFC 4716 "BEGIN SSH2 PUBLIC KEY"
 *    block, or the base64 key blob alone;
 *  - JWK: a JSON object with a "kty" member, or a JWK Set ("keys").
 * Not recognisable, and so not refused: raw key bytes with no structure
 * (a 32-byte Ed25519 key, a compressed EC point) — as random as a secret.
 */
const char *mk_keyform_public(const void *bytes, size_t len);

#endif
