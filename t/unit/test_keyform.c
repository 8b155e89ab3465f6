/*
 * Unit tests for src/auth/keyform.c: which byte strings are public keys
 * posing as secrets. One table: each case is a literal (OpenSSH keys made
 * once with ssh-keygen, JWKs, secrets) or a form made here from keys
 * OpenSSL generates at start (PEM, DER, base64 of DER, EC points, a
 * certificate), with the form the checker must name, or none. The
 * near-misses matter as much: real secrets that look a little like keys
 * (a base64 random string, a password starting "ssh-", 0x04 and 64
 * random bytes) must pass.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keyform.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "tap.h"

#define SSH_ED25519                                                            \
	"ssh-ed25519 "                                                         \
	"AAAAC3NzaC1lZDI1NTE5AAAAILNaGghIv+DWCS/wLL+8q0o+6yfcHL3H8OHgEa2N+W5m"
#define SSH_ED25519_BLOB                                                       \
	"AAAAC3NzaC1lZDI1NTE5AAAAILNaGghIv+DWCS/wLL+8q0o+6yfcHL3H8OHgEa2N+W5m"
#define SSH_ECDSA                                                              \
	"ecdsa-sha2-nistp256 "                                                 \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLvsV6cw+cjzdOTc" \
	"BLKx3IV06ivsHjWDmBUED9AcznoXARjhokGzsbilha++LV7FMMlC/"                \
	"EUv6iZ7xVttWActplE="
#define SSH_RSA                                                                \
	"ssh-rsa "                                                             \
	"AAAAB3NzaC1yc2EAAAADAQABAAAAgQCvFfbZu7SNZe4wLQ8d15heVy5VbA51oKNPMfwI" \
	"Il7NZmqNQQt6Yh"                                                       \
	"LMfvXXhMJSZ/"                                                         \
	"6JDdbXfDf92bRwCXPkdqYy9YMgSWi6EHwI0mQ7Dv5Cz5amOaPKDXw2q9xQ/lU7Gr6Xr/" \
	"bhp/TR6wuWJDbYk"                                                      \
	"sFoqa7VSSiULg5Xw04ieWdp6Q=="

/* How a case's input is made. */
enum source {
	LITERAL,
	PEM_RSA,       /* SubjectPublicKeyInfo PEM */
	PEM_RSA_PKCS1, /* "BEGIN RSA PUBLIC KEY" */
	DER_RSA,       /* SPKI DER */
	DER_RSA_PKCS1, /* RSAPublicKey DER */
	DER_EC,
	DER_ED25519,
	DER_CERT,       /* a self-signed X.509 certificate */
	EC_POINT_FULL,  /* 0x04 || X || Y */
	EC_POINT_SHORT, /* 0x02/0x03 || X */
	B64_DER_RSA,    /* base64 with '=' and a line break every 64 */
	B64URL_DER_EC,  /* base64url, no padding */
	B64_CERT,
	B64_EC_POINT,
	RANDOM_32,    /* 32 fixed pseudo-random bytes */
	RANDOM_04_65, /* 0x04 and 64 such bytes: no point on a curve */
	RANDOM_30_80, /* 0x30 and 79 such bytes: no DER */
};

struct keyform_case {
	const char *name;
	enum source source;
	/* LITERAL: the input; else what goes around the made input */
	const char *text;
	/* a piece of the form named; NULL: not a public key */
	const char *want;
};

static const struct keyform_case cases[] = {
	/* PEM */
	{ "PEM SPKI (RSA)", PEM_RSA, NULL, "PEM" },
	{ "PEM after blank lines", PEM_RSA, "\n\n  ", "PEM" },
	{ "PEM PKCS#1 RSA PUBLIC KEY", PEM_RSA_PKCS1, NULL, "PEM" },
	{ "PEM armour alone", LITERAL,
	    "-----BEGIN PUBLIC "
	    "KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
	    "PEM" },
	{ "PEM certificate armour", LITERAL,
	    "-----BEGIN CERTIFICATE-----\nMIIC", "PEM" },
	{ "base64 of a PEM file", LITERAL,
	    "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUlJQklqQU5CZ2txaGtpRzl3MEJBUU"
	    "VGQUFPQ0FROEFNSUlC"
	    "Q2dLQ0FRRUEKLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==",
	    "PEM" },
	/* DER */
	{ "DER SPKI (RSA)", DER_RSA, NULL, "DER" },
	{ "DER PKCS#1 RSAPublicKey", DER_RSA_PKCS1, NULL, "DER" },
	{ "DER SPKI (P-256)", DER_EC, NULL, "DER" },
	{ "DER SPKI (Ed25519)", DER_ED25519, NULL, "DER" },
	{ "DER X.509 certificate", DER_CERT, NULL, "DER" },
	{ "EC point, uncompressed", EC_POINT_FULL, NULL, "DER" },
	{ "EC point, compressed (as random as a secret: passes)",
	    EC_POINT_SHORT, NULL, NULL },
	{ "base64 DER SPKI, padded, wrapped", B64_DER_RSA, NULL, "base64 DER" },
	{ "base64url DER SPKI, unpadded", B64URL_DER_EC, NULL, "base64 DER" },
	{ "base64 DER with a trailing newline", B64_DER_RSA, "\n",
	    "base64 DER" },
	{ "base64 certificate", B64_CERT, NULL, "base64 DER" },
	{ "base64 EC point", B64_EC_POINT, NULL, "base64 DER" },
	/* OpenSSH */
	{ "ssh-ed25519 line", LITERAL, SSH_ED25519, "OpenSSH" },
	{ "ssh-ed25519 line with a comment and newline", LITERAL,
	    SSH_ED25519 " ops@example\n", "OpenSSH" },
	{ "ssh-rsa line", LITERAL, SSH_RSA " x", "OpenSSH" },
	{ "ecdsa-sha2-nistp256 line", LITERAL, SSH_ECDSA, "OpenSSH" },
	{ "sk-ssh-ed25519 line", LITERAL,
	    "sk-ssh-ed25519@openssh.com "
	    "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
	    "OpenSSH" },
	{ "OpenSSH blob alone", LITERAL, SSH_ED25519_BLOB, "OpenSSH" },
	{ "OpenSSH RSA blob alone", LITERAL, SSH_RSA + 8, "OpenSSH" },
	{ "RFC 4716 block", LITERAL,
	    "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"x\"\n" SSH_ED25519_BLOB
	    "\n---- END SSH2 PUBLIC KEY ----\n",
	    "OpenSSH" },
	/* JWK */
	{ "JWK RSA", LITERAL,
	    "{\"kty\":\"RSA\",\"n\":"
	    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAt\","
	    "\"e\":\"AQAB\"}",
	    "JWK" },
	{ "JWK EC, pretty-printed", LITERAL,
	    "  {\n  \"crv\": \"P-256\",\n  \"kty\": \"EC\",\n  \"x\": "
	    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\n  \"y\": "
	    "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"\n}\n",
	    "JWK" },
	{ "JWK Set", LITERAL,
	    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	    "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
	    "JWK" },
	{ "JWK, not strict JSON", LITERAL, "{'kty':'RSA', \"kty\" : 1,}",
	    "JWK" },
	/* Secrets that must pass */
	{ "a plain secret", LITERAL,
	    "markets-unit-test-secret-0123456789abcdef", NULL },
	{ "openssl rand -base64 48", LITERAL,
	    "q0Vf3Ui9kR2mD8x6ZcN1yT4pLw7sJbHe5aGoQvMnXiUtYr0lKzPdFcBjWgE8hA2s",
	    NULL },
	{ "openssl rand -hex 32", LITERAL,
	    "3f9a1c0e7b2d4f6a8c9e0b1d2f3a4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e",
	    NULL },
	{ "base64url of 32 random bytes", LITERAL,
	    "hJtXIZ2uSN5kbQfbtTMWjgYXyWeXfBs1wnM6oWIVTe0", NULL },
	{ "32 random bytes", RANDOM_32, NULL, NULL },
	{ "0x04 and 64 random bytes", RANDOM_04_65, NULL, NULL },
	{ "0x30 and 79 random bytes", RANDOM_30_80, NULL, NULL },
	{ "a password starting ssh-", LITERAL,
	    "ssh-deploy-password-0123456789abcdef", NULL },
	{ "a secret mentioning BEGIN", LITERAL,
	    "BEGIN-the-rotation-secret-0123456789abcdef", NULL },
	{ "JSON without kty", LITERAL,
	    "{\"secret\":\"0123456789abcdef0123456789abcdef\"}", NULL },
	{ "empty", LITERAL, "", NULL },
};

static EVP_PKEY *rsa, *ec, *ed;

static void
put_der(struct mk_buf *out, int len, unsigned char *der)
{
	if (len <= 0)
		abort();
	mk_buf_append(out, der, (size_t)len);
	OPENSSL_free(der);
}

/* The DER a key encoder (i2d_PUBKEY, i2d_PublicKey) makes of key. */
static void
put_key_der(struct mk_buf *out,
    int (*encode)(const EVP_PKEY *, unsigned char **), EVP_PKEY *key)
{
	unsigned char *der = NULL;
	int len = encode(key, &der);

	put_der(out, len, der);
}

static void
put_cert(struct mk_buf *out)
{
	X509 *cert = X509_new();
	unsigned char *der = NULL;
	int len;

	if (cert == NULL || X509_set_version(cert, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 3600) == NULL ||
	    X509_set_pubkey(cert, ec) != 1 ||
	    X509_sign(cert, ec, EVP_sha256()) == 0)
		abort();
	len = i2d_X509(cert, &der);
	put_der(out, len, der);
	X509_free(cert);
}

static void
put_point(struct mk_buf *out, bool compressed)
{
	unsigned char point[133];
	size_t len = 0;

	if (EVP_PKEY_get_octet_string_param(ec,
		OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
		&len) != 1 ||
	    len != 65)
		abort();
	if (compressed) {
		point[32] = (unsigned char)(2 + (point[64] & 1));
		mk_buf_append(out, point + 32, 33);
		return;
	}
	mk_buf_append(out, point, len);
}

static void
put_pem(struct mk_buf *out, bool pkcs1)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	if (bio == NULL)
		abort();
	if (pkcs1) {
		unsigned char *der = NULL;
		int n = i2d_PublicKey(rsa, &der);

		if (n <= 0 ||
		    PEM_write_bio(bio, "RSA PUBLIC KEY", "", der, n) <= 0)
			abort();
		OPENSSL_free(der);
	} else if (PEM_write_bio_PUBKEY(bio, rsa) != 1) {
		abort();
	}
	len = BIO_get_mem_data(bio, &data);
	mk_buf_append(out, data, (size_t)len);
	BIO_free(bio);
}

/* Standard base64, '=' padded, a newline every 64 characters. */
static void
put_base64(struct mk_buf *out, const unsigned char *bytes, size_t len)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t col = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)bytes[i] << 16 |
		    (i + 1 < len ? (unsigned)bytes[i + 1] << 8 : 0) |
		    (i + 2 < len ? bytes[i + 2] : 0);
		char quad[4] = { digits[v >> 18 & 63], digits[v >> 12 & 63],
			i + 1 < len ? digits[v >> 6 & 63] : '=',
			i + 2 < len ? digits[v & 63] : '=' };

		mk_buf_append(out, quad, 4);
		if ((col += 4) == 64) {
			mk_buf_putc(out, '\n');
			col = 0;
		}
	}
}

static void
put_random(struct mk_buf *out, unsigned char first, size_t len)
{
	unsigned x = 2463534242u;

	if (first != 0) {
		mk_buf_putc(out, (char)first);
		len--;
	}
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		mk_buf_putc(out, (char)(x & 0xff));
	}
}

static void
make_input(const struct keyform_case *c, struct mk_buf *out)
{
	struct mk_buf der;

	mk_buf_init(&der, NULL);
	if (c->source != LITERAL && c->text != NULL && c->source != B64_DER_RSA)
		mk_buf_puts(out, c->text);
	switch (c->source) {
	case LITERAL:
		mk_buf_puts(out, c->text);
		break;
	case PEM_RSA:
		put_pem(out, false);
		break;
	case PEM_RSA_PKCS1:
		put_pem(out, true);
		break;
	case DER_RSA:
		put_key_der(out, i2d_PUBKEY, rsa);
		break;
	case DER_RSA_PKCS1:
		put_key_der(out, i2d_PublicKey, rsa);
		break;
	case DER_EC:
		put_key_der(out, i2d_PUBKEY, ec);
		break;
	case DER_ED25519:
		put_key_der(out, i2d_PUBKEY, ed);
		break;
	case DER_CERT:
		put_cert(out);
		break;
	case EC_POINT_FULL:
		put_point(out, false);
		break;
	case EC_POINT_SHORT:
		put_point(out, true);
		break;
	case B64_DER_RSA:
		put_key_der(&der, i2d_PUBKEY, rsa);
		put_base64(out, (unsigned char *)der.data, der.len);
		if (c->text != NULL)
			mk_buf_puts(out, c->text);
		break;
	case B64URL_DER_EC:
		put_key_der(&der, i2d_PUBKEY, ec);
		mk_base64url_encode(out, der.data, der.len);
		break;
	case B64_CERT:
		put_cert(&der);
		put_base64(out, (unsigned char *)der.data, der.len);
		break;
	case B64_EC_POINT:
		put_point(&der, false);
		put_base64(out, (unsigned char *)der.data, der.len);
		break;
	case RANDOM_32:
		put_random(out, 0, 32);
		break;
	case RANDOM_04_65:
		put_random(out, 4, 65);
		break;
	case RANDOM_30_80:
		put_random(out, 0x30, 80);
		break;
	}
	mk_buf_release(&der);
	if (out->oom)
		abort();
}

int
main(void)
{
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (rsa == NULL || ec == NULL || ed == NULL)
		abort();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct keyform_case *c = &cases[i];
		struct mk_buf input;
		const char *form;

		mk_buf_init(&input, NULL);
		make_input(c, &input);
		form = mk_keyform_public(input.data, input.len);
		if (c->want == NULL) {
			tap_ok(form == NULL, "%s: not a public key", c->name);
			if (form != NULL)
				printf("#   taken for %s\n", form);
		} else {
			tap_ok(form != NULL && strstr(form, c->want) != NULL,
			    "%s: %s", c->name, c->want);
			if (form == NULL || strstr(form, c->want) == NULL)
				printf("#   got: %s\n",
				    form != NULL ? form : "(none)");
		}
		mk_buf_release(&input);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	return tap_done();
}
