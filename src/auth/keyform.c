/*
 * Public keys posing as secrets (auth layer); see keyform.h. Each check
 * is cheap and runs at start-up only (configuration and key files), so
 * clarity wins over speed here. OpenSSL's decoders leave errors on the
 * thread's queue when they fail; those are popped so that no later
 * ERR_get_error() reports ours.
 */
#include <ctype.h>
#include <limits.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keyform.h"
#include "core/base64url.h"

/* Longest input decoded from base64; key texts are far shorter. */
#define MAX_DECODED (64 * 1024)

static bool
contains(const unsigned char *bytes, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++) {
		if (memcmp(bytes + i, needle, n) == 0)
			return true;
	}
	return false;
}

static bool
starts_with(const unsigned char *bytes, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(bytes, prefix, n) == 0;
}

/*
 * A bare uncompressed EC point (0x04 || X || Y) on one of the NIST curves.
 * Not compressed ones: about half of all (0x02|0x03 || X) strings are on
 * the curve, so random secrets of that length would be refused too.
 */
static bool
is_ec_point(const unsigned char *bytes, size_t len)
{
	static const int curves[] = { NID_X9_62_prime256v1, NID_secp384r1,
		NID_secp521r1 };
	bool found = false;

	if ((len != 65 && len != 97 && len != 133) || bytes[0] != 4)
		return false;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]) && !found;
	     i++) {
		EC_GROUP *group = EC_GROUP_new_by_curve_name(curves[i]);
		EC_POINT *point = group != NULL ? EC_POINT_new(group) : NULL;

		if (point != NULL &&
		    EC_POINT_oct2point(group, point, bytes, len, NULL) == 1)
			found = true;
		EC_POINT_free(point);
		EC_GROUP_free(group);
	}
	return found;
}

/* DER of a public key (SPKI, PKCS#1), a certificate, or a bare EC point. */
static bool
is_der_public(const unsigned char *bytes, size_t len)
{
	const unsigned char *p;
	EVP_PKEY *pkey;
	X509 *cert;
	bool found = false;

	if (len < 2 || len > LONG_MAX)
		return false;
	(void)ERR_set_mark();
	if (bytes[0] == 0x30) {
		p = bytes;
		pkey = d2i_PUBKEY(NULL, &p, (long)len);
		found = pkey != NULL;
		EVP_PKEY_free(pkey);
		if (!found) {
			p = bytes;
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
			found = pkey != NULL;
			EVP_PKEY_free(pkey);
		}
		if (!found) {
			p = bytes;
			cert = d2i_X509(NULL, &p, (long)len);
			found = cert != NULL;
			X509_free(cert);
		}
	}
	if (!found)
		found = is_ec_point(bytes, len);
	(void)ERR_pop_to_mark();
	return found;
}

/* An OpenSSH key blob: string type name, then the key's fields. */
static bool
is_ssh_blob(const unsigned char *bytes, size_t len)
{
	uint32_t n;

	if (len < 4 + 7)
		return false;
	n = (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 |
	    (uint32_t)bytes[2] << 8 | bytes[3];
	if (n < 7 || n > 64 || n > len - 4)
		return false;
	return starts_with(bytes + 4, n, "ssh-") ||
	    starts_with(bytes + 4, n, "ecdsa-sha2-") ||
	    starts_with(bytes + 4, n, "sk-");
}

/*
 * Decodes base64 or base64url, lenient on purpose (line breaks, blanks,
 * padding or none): the question is whether a key hides in there, not
 * whether the text is canonical. Returns a malloc'd buffer (*out_len
 * bytes) the caller frees, or NULL when the text is not base64 or
 * decodes to fewer than 12 bytes (16 digits): too short to hide a key.
 */
static unsigned char *
base64_decode_lenient(const unsigned char *text, size_t len, size_t *out_len)
{
	unsigned char *out;

	if (len > MAX_DECODED)
		return NULL;
	out = malloc(MK_BASE64URL_DECODED_MAX(len));
	if (out == NULL)
		return NULL;
	if (mk_base64_decode_lenient((const char *)text, len, out, out_len) !=
		MK_OK ||
	    *out_len < 12) {
		free(out);
		return NULL;
	}
	return out;
}

const char *
mk_keyform_public(const void *bytes, size_t len)
{
	const unsigned char *b = bytes, *end = b + len;
	static const char *const ssh_types[] = { "ssh-", "ecdsa-sha2-",
		"sk-ssh-", "sk-ecdsa-" };
	unsigned char *decoded;
	size_t decoded_len = 0, trimmed;
	const char *form = NULL;

	if (contains(b, len, "-----BEGIN"))
		return "PEM text";
	if (contains(b, len, "BEGIN SSH2 PUBLIC KEY"))
		return "an OpenSSH public key";
	if (is_der_public(b, len))
		return "a DER public key";
	while (b < end && isspace(*b))
		b++;
	while (end > b && isspace(end[-1]))
		end--;
	trimmed = (size_t)(end - b);
	/* authorized_keys: "TYPE BASE64 [comment]"; the blob starts "AAAA". */
	for (size_t i = 0; i < sizeof(ssh_types) / sizeof(ssh_types[0]); i++) {
		if (starts_with(b, trimmed, ssh_types[i]) &&
		    contains(b, trimmed, " AAAA"))
			return "an OpenSSH public key";
	}
	if (trimmed > 0 && b[0] == '{' &&
	    (contains(b, trimmed, "\"kty\"") ||
		contains(b, trimmed, "\"keys\"")))
		return "a JWK (JSON Web Key)";
	decoded = base64_decode_lenient(b, trimmed, &decoded_len);
	if (decoded != NULL) {
		/*
		 * A PEM file in base64: how secrets stores and environments
		 * carry one.
		 */
		if (contains(decoded, decoded_len, "-----BEGIN"))
			form = "base64 of PEM text";
		else if (is_ssh_blob(decoded, decoded_len))
			form = "an OpenSSH public key";
		else if (is_der_public(decoded, decoded_len))
			form = "a base64 DER public key";
		free(decoded);
	}
	return form;
}
