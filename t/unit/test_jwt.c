/*
 * Unit tests for the JWT verifier (src/auth/jwt.c), driven by the case
 * file t/unit/cases/jwt.txt (found through MK_TEST_SRCDIR). Each line
 * there is one token: the configuration to verify it with, its header and
 * payload JSON, how to sign it (and how to damage it afterwards), and the
 * expected outcome: `ok` with the identity it must yield, or `401` with a
 * piece of the reason the verifier must give, so that a token meant to
 * test one rule cannot pass by failing another. The file's own header
 * comment documents the format and every keyword.
 *
 * At start the test makes two RSA-2048 and two P-256 key pairs (a main
 * key and a rotation key of each), an RSA-1024 and a P-384 one with
 * OpenSSL, writes the public halves (and HS256 key files for rotation)
 * under a mkdtemp() directory and removes it all at the end. Tokens are
 * minted here, independently of src/: base64url of the JSON texts as
 * written, signed with EVP. After the case file come the checks that are
 * not one token: mk_jwt_verifier_new() refusing bad key material with a
 * reason naming it, raw input that is no token at all, a verifier reused
 * across tokens, and mk_jwt_sign_hs256() output verifying.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/roles.h"
#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "core/config.h"
#include "tap.h"

/* The fixed "now" of every case: 2023-11-14T22:13:20Z. */
#define NOW INT64_C(1700000000)

#define SECRET "markets-unit-test-secret-0123456789abcdef"
#define SECRET_K1 "rotation-key-one-0123456789abcdef"
#define SECRET_K2 "rotation-key-two-0123456789abcdef"
#define SECRET_K3 "rotation-key-three-0123456789abcdef"
#define SECRET_WRONG "some-other-secret-0123456789abcdef"

#define P256_ORDER                                                             \
	"FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"

#define MAX_WORDS 16
#define MAX_CREATED 64

/* Key material made at start. */
static EVP_PKEY *rsa_key, *rsa2_key, *rsa1024_key, *ec_key, *ec2_key,
    *ec384_key;
static struct mk_buf rsa_pem, ec_pem, rsa_der;
static char fixture_dir[] = "/tmp/mk-test-jwt-XXXXXX";
static char *created[MAX_CREATED]; /* paths to remove, in creation order */
static size_t ncreated;

/* One line of the case file. */
struct jwt_case {
	int line;
	char *name;
	char *config;
	char *header;
	char *payload;
	char *signing;
	char *expect;
};

/* ---------------------------------------------------------------- fixture */

static char *
fixture_path(const char *name)
{
	size_t len = strlen(fixture_dir) + 1 + strlen(name) + 1;
	char *path = malloc(len);

	if (path == NULL)
		abort();
	snprintf(path, len, "%s/%s", fixture_dir, name);
	return path;
}

static void
remember(char *path)
{
	if (ncreated == MAX_CREATED)
		abort();
	created[ncreated++] = path;
}

static bool
make_dir(const char *name)
{
	char *path = fixture_path(name);

	if (mkdir(path, 0700) != 0) {
		printf("# mkdir %s: %s\n", path, strerror(errno));
		free(path);
		return false;
	}
	remember(path);
	return true;
}

static bool
write_file(const char *name, const void *bytes, size_t len)
{
	char *path = fixture_path(name);
	FILE *fp = fopen(path, "we");
	bool ok;

	if (fp == NULL) {
		printf("# fopen %s: %s\n", path, strerror(errno));
		free(path);
		return false;
	}
	remember(path);
	ok = fwrite(bytes, 1, len, fp) == len;
	return fclose(fp) == 0 && ok;
}

static bool
make_symlink(const char *target, const char *name)
{
	char *path = fixture_path(name);

	if (symlink(target, path) != 0) {
		free(path);
		return false;
	}
	remember(path);
	return true;
}

static bool
pem_of(EVP_PKEY *key, bool private_key, struct mk_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	bool ok;

	if (bio == NULL)
		return false;
	ok = private_key
	    ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1
	    : PEM_write_bio_PUBKEY(bio, key) == 1;
	len = BIO_get_mem_data(bio, &data);
	if (ok && len > 0)
		mk_buf_append(out, data, (size_t)len);
	BIO_free(bio);
	return ok && len > 0 && !out->oom;
}

static bool
write_pem(const char *name, EVP_PKEY *key, bool private_key)
{
	struct mk_buf pem;
	bool ok;

	mk_buf_init(&pem, NULL);
	ok = pem_of(key, private_key, &pem) &&
	    write_file(name, pem.data, pem.len);
	mk_buf_release(&pem);
	return ok;
}

/* A file holding the standard base64 of bytes (as `base64 key.der` writes). */
static bool
write_b64(const char *name, const struct mk_buf *bytes)
{
	struct mk_buf text;
	bool ok;

	mk_buf_init(&text, NULL);
	mk_base64url_encode(&text, bytes->data, bytes->len);
	for (size_t i = 0; i < text.len; i++)
		text.data[i] = text.data[i] == '-' ? '+'
		    : text.data[i] == '_'          ? '/'
						   : text.data[i];
	while (text.len % 4 != 0)
		mk_buf_putc(&text, '=');
	mk_buf_putc(&text, '\n');
	ok = !text.oom && write_file(name, text.data, text.len);
	mk_buf_release(&text);
	return ok;
}

static bool
setup_fixture(void)
{
	unsigned char *der = NULL;
	char long_name[128];
	int der_len;

	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa2_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1024_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec2_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec384_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (rsa_key == NULL || rsa2_key == NULL || rsa1024_key == NULL ||
	    ec_key == NULL || ec2_key == NULL || ec384_key == NULL)
		return false;
	mk_buf_init(&rsa_pem, NULL);
	mk_buf_init(&ec_pem, NULL);
	mk_buf_init(&rsa_der, NULL);
	if (!pem_of(rsa_key, false, &rsa_pem) ||
	    !pem_of(ec_key, false, &ec_pem))
		return false;
	der_len = i2d_PUBKEY(rsa_key, &der);
	if (der_len <= 0)
		return false;
	mk_buf_append(&rsa_der, der, (size_t)der_len);
	OPENSSL_free(der);

	if (mkdtemp(fixture_dir) == NULL)
		return false;
	snprintf(long_name, sizeof(long_name), "bad-longname/%065d", 0);
	return write_file("rsa.pem", rsa_pem.data, rsa_pem.len) &&
	    write_file("ec.pem", ec_pem.data, ec_pem.len) &&
	    write_pem("rsa1024.pem", rsa1024_key, false) &&
	    write_pem("ec384.pem", ec384_key, false) &&
	    write_pem("rsa-private.pem", rsa_key, true) &&
	    write_file("notpem.pem", "hello\n", 6) &&
	    /*
	     * Rotation: trailing newlines in HS256 key files are not key bytes.
	     */
	    make_dir("keys-hs") &&
	    write_file("keys-hs/k1", SECRET_K1 "\n", strlen(SECRET_K1) + 1) &&
	    write_file("keys-hs/k2", SECRET_K2 "\r\n", strlen(SECRET_K2) + 2) &&
	    make_dir("keys-rs") && write_pem("keys-rs/r2", rsa2_key, false) &&
	    make_dir("keys-es") && write_pem("keys-es/e2", ec2_key, false) &&
	    make_dir("keys-empty") && make_dir("ok-32") &&
	    write_file(
		"ok-32/exact32", "0123456789abcdef0123456789abcdef\n", 33) &&
	    /* Key directories that must be refused, one fault each. */
	    make_dir("bad-short") &&
	    write_file(
		"bad-short/short31", "0123456789abcdef0123456789abcde\n", 32) &&
	    make_dir("bad-name") &&
	    write_file("bad-name/bad name", SECRET_K1, strlen(SECRET_K1)) &&
	    make_dir("bad-longname") &&
	    write_file(long_name, SECRET_K1, strlen(SECRET_K1)) &&
	    make_dir("bad-subdir") && make_dir("bad-subdir/sub") &&
	    make_dir("bad-symlink") &&
	    make_symlink("../keys-hs/k1", "bad-symlink/link") &&
	    make_dir("bad-notpem") &&
	    write_file("bad-notpem/notpem", "hello\n", 6) &&
	    make_dir("bad-rs-ec") &&
	    write_pem("bad-rs-ec/ecfile", ec_key, false) &&
	    make_dir("bad-der") &&
	    write_file("bad-der/d1", rsa_der.data, rsa_der.len) &&
	    make_dir("bad-b64der") && write_b64("bad-b64der/b1", &rsa_der);
}

/* Removes what setup made, newest first (files before their directories). */
static void
teardown_fixture(void)
{
	while (ncreated > 0) {
		char *path = created[--ncreated];

		if (remove(path) != 0)
			printf(
			    "# cannot remove %s: %s\n", path, strerror(errno));
		free(path);
	}
	if (fixture_dir[strlen(fixture_dir) - 1] != 'X' &&
	    rmdir(fixture_dir) != 0)
		printf(
		    "# cannot remove %s: %s\n", fixture_dir, strerror(errno));
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa2_key);
	EVP_PKEY_free(rsa1024_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec2_key);
	EVP_PKEY_free(ec384_key);
	mk_buf_release(&rsa_pem);
	mk_buf_release(&ec_pem);
	mk_buf_release(&rsa_der);
}

/* ---------------------------------------------------------------- parsing */

/* Splits s in place on blanks into at most max words; returns the count. */
static int
split_words(char *s, char **words, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *w = strtok_r(s, " \t", &save); w != NULL;
	     w = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		words[n++] = w;
	}
	return n;
}

static char *
trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (
	    end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static bool
set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return false;
	free(*field);
	*field = copy;
	return true;
}

/*
 * Builds the configuration a case's config column describes (see the case
 * file) and copies its algorithm into alg. Returns NULL, with a diagnostic,
 * when the column is not understood.
 */
static struct mk_config *
config_from(const char *column, char alg[8])
{
	struct mk_config *config = mk_config_new();
	char *copy = strdup(column), *words[MAX_WORDS];
	bool default_key = true, keys = false, ok = true;
	int n;

	if (config == NULL || copy == NULL)
		abort();
	n = split_words(copy, words, MAX_WORDS);
	if (n < 1 ||
	    (strcmp(words[0], "HS256") != 0 && strcmp(words[0], "RS256") != 0 &&
		strcmp(words[0], "ES256") != 0)) {
		printf("# config column must start with HS256, RS256 or ES256: "
		       "'%s'\n",
		    column);
		ok = false;
		n = 0;
	} else {
		snprintf(alg, 8, "%s", words[0]);
		ok = set_string(&config->jwt_alg, alg);
	}
	for (int i = 1; i < n && ok; i++) {
		const char *w = words[i];

		if (strcmp(w, "nosecret") == 0 || strcmp(w, "nokey") == 0)
			default_key = false;
		else if (strcmp(w, "keys") == 0)
			keys = true;
		else if (strncmp(w, "iss=", 4) == 0)
			ok = set_string(&config->jwt_issuer, w + 4);
		else if (strncmp(w, "aud=", 4) == 0)
			ok = set_string(&config->jwt_audience, w + 4);
		else if (strncmp(w, "leeway=", 7) == 0)
			config->jwt_leeway_ms = atoi(w + 7) * 1000;
		else if (strncmp(w, "maxlife=", 8) == 0)
			config->jwt_max_lifetime_ms = atoi(w + 8) * 1000;
		else {
			printf("# unknown config word '%s'\n", w);
			ok = false;
		}
	}
	if (ok && default_key) {
		if (strcmp(alg, "HS256") == 0) {
			ok = set_string(&config->jwt_secret, SECRET);
		} else {
			char *path = fixture_path(
			    strcmp(alg, "RS256") == 0 ? "rsa.pem" : "ec.pem");

			ok = set_string(&config->jwt_public_key, path);
			free(path);
		}
	}
	if (ok && keys) {
		char *path = fixture_path(strcmp(alg, "HS256") == 0 ? "keys-hs"
			: strcmp(alg, "RS256") == 0                 ? "keys-rs"
						    : "keys-es");

		ok = set_string(&config->jwt_keys_dir, path);
		free(path);
	}
	free(copy);
	if (!ok) {
		mk_config_free(config);
		return NULL;
	}
	return config;
}

/*
 * Appends in to out with the case file's placeholders replaced: ${NOW},
 * ${NOW+N}, ${NOW-N}, ${ALG}, ${0xHH} (one raw byte) and ${REPEAT:N}
 * (N letters 'a'). Returns false on an unknown placeholder.
 */
static bool
substitute(const char *in, const char *alg, struct mk_buf *out)
{
	while (*in != '\0') {
		const char *end;
		char key[64];
		size_t len;
		char *rest;

		if (in[0] != '$' || in[1] != '{') {
			mk_buf_putc(out, *in++);
			continue;
		}
		end = strchr(in, '}');
		if (end == NULL ||
		    (len = (size_t)(end - in - 2)) >= sizeof(key))
			return false;
		memcpy(key, in + 2, len);
		key[len] = '\0';
		in = end + 1;
		if (strcmp(key, "NOW") == 0) {
			mk_buf_put_i64(out, NOW);
		} else if (strncmp(key, "NOW+", 4) == 0 ||
		    strncmp(key, "NOW-", 4) == 0) {
			long long delta = strtoll(key + 4, &rest, 10);

			if (*rest != '\0' || rest == key + 4)
				return false;
			mk_buf_put_i64(
			    out, key[3] == '+' ? NOW + delta : NOW - delta);
		} else if (strcmp(key, "ALG") == 0) {
			mk_buf_puts(out, alg);
		} else if (strncmp(key, "0x", 2) == 0 && len == 4) {
			unsigned long byte = strtoul(key + 2, &rest, 16);

			if (*rest != '\0')
				return false;
			mk_buf_putc(out, (char)byte);
		} else if (strncmp(key, "REPEAT:", 7) == 0) {
			unsigned long count = strtoul(key + 7, &rest, 10);

			if (*rest != '\0' || count > 100000)
				return false;
			for (unsigned long i = 0; i < count; i++)
				mk_buf_putc(out, 'a');
		} else {
			return false;
		}
	}
	return !out->oom;
}

/* ---------------------------------------------------------------- signing */

struct signature {
	unsigned char bytes[1024];
	size_t len;
	const char *text; /* raw:<text>: the segment as written, not encoded */
};

static bool
hmac(const char *digest, const void *key, size_t key_len, const char *msg,
    size_t len, struct signature *sig)
{
	size_t out_len = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, key_len,
		(const unsigned char *)msg, len, sig->bytes, sizeof(sig->bytes),
		&out_len) == NULL)
		return false;
	sig->len = out_len;
	return true;
}

/* SHA-256 with key: PKCS#1 v1.5 or PSS for RSA, DER ECDSA for EC. */
static bool
digest_sign(EVP_PKEY *key, bool pss, const char *msg, size_t len,
    unsigned char *out, size_t *out_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok;

	ok = ctx != NULL &&
	    EVP_DigestSignInit_ex(
		ctx, &pctx, "SHA256", NULL, NULL, key, NULL) == 1 &&
	    (!pss ||
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ==
		    1) &&
	    EVP_DigestSign(
		ctx, out, out_len, (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static bool
rsa_sign(
    EVP_PKEY *key, bool pss, const char *msg, size_t len, struct signature *sig)
{
	sig->len = sizeof(sig->bytes);
	return digest_sign(key, pss, msg, len, sig->bytes, &sig->len);
}

/* ES256 as JWS wants it: r || s, 32 bytes each; high_s uses n - s. */
static bool
es256_sign(EVP_PKEY *key, bool high_s, const char *msg, size_t len,
    struct signature *sig)
{
	unsigned char der[256];
	const unsigned char *p = der;
	size_t der_len = sizeof(der);
	const BIGNUM *r, *s;
	BIGNUM *n = NULL, *other_s = NULL;
	ECDSA_SIG *ecdsa;
	bool ok;

	if (!digest_sign(key, false, msg, len, der, &der_len))
		return false;
	ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (ecdsa == NULL)
		return false;
	ECDSA_SIG_get0(ecdsa, &r, &s);
	if (high_s) {
		other_s = BN_new();
		if (other_s == NULL || BN_hex2bn(&n, P256_ORDER) == 0 ||
		    BN_sub(other_s, n, s) != 1)
			s = NULL;
		else
			s = other_s;
	}
	ok = s != NULL && BN_bn2binpad(r, sig->bytes, 32) == 32 &&
	    BN_bn2binpad(s, sig->bytes + 32, 32) == 32;
	sig->len = 64;
	BN_free(n);
	BN_free(other_s);
	ECDSA_SIG_free(ecdsa);
	return ok;
}

static bool
hex_bytes(const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned int byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return false;
		out[i] = (unsigned char)byte;
	}
	return true;
}

/*
 * Signs msg the way kind says (the signing keywords of the case file).
 * Returns false, with a diagnostic, for an unknown kind or an OpenSSL
 * failure.
 */
static bool
sign(const char *kind, const char *msg, size_t len, struct signature *sig)
{
	bool ok;

	memset(sig, 0, sizeof(*sig));
	if (strcmp(kind, "hs256") == 0)
		ok = hmac("SHA256", SECRET, strlen(SECRET), msg, len, sig);
	else if (strcmp(kind, "hs256:k1") == 0)
		ok =
		    hmac("SHA256", SECRET_K1, strlen(SECRET_K1), msg, len, sig);
	else if (strcmp(kind, "hs256:k2") == 0)
		ok =
		    hmac("SHA256", SECRET_K2, strlen(SECRET_K2), msg, len, sig);
	else if (strcmp(kind, "hs256:k3") == 0)
		ok =
		    hmac("SHA256", SECRET_K3, strlen(SECRET_K3), msg, len, sig);
	else if (strcmp(kind, "hs256-wrong") == 0)
		ok = hmac("SHA256", SECRET_WRONG, strlen(SECRET_WRONG), msg,
		    len, sig);
	else if (strcmp(kind, "hs384") == 0)
		ok = hmac("SHA384", SECRET, strlen(SECRET), msg, len, sig);
	else if (strcmp(kind, "hs512") == 0)
		ok = hmac("SHA512", SECRET, strlen(SECRET), msg, len, sig);
	else if (strcmp(kind, "hs256-pubpem") == 0)
		ok = hmac("SHA256", rsa_pem.data, rsa_pem.len, msg, len, sig);
	else if (strcmp(kind, "hs256-pubpem-nonl") == 0)
		ok = hmac(
		    "SHA256", rsa_pem.data, rsa_pem.len - 1, msg, len, sig);
	else if (strcmp(kind, "hs256-pubder") == 0)
		ok = hmac("SHA256", rsa_der.data, rsa_der.len, msg, len, sig);
	else if (strcmp(kind, "hs256-ecpem") == 0)
		ok = hmac("SHA256", ec_pem.data, ec_pem.len, msg, len, sig);
	else if (strcmp(kind, "rs256") == 0)
		ok = rsa_sign(rsa_key, false, msg, len, sig);
	else if (strcmp(kind, "rs256:r2") == 0)
		ok = rsa_sign(rsa2_key, false, msg, len, sig);
	else if (strcmp(kind, "rs256-1024") == 0)
		ok = rsa_sign(rsa1024_key, false, msg, len, sig);
	else if (strcmp(kind, "ps256") == 0)
		ok = rsa_sign(rsa_key, true, msg, len, sig);
	else if (strcmp(kind, "rs256-short") == 0)
		ok = rsa_sign(rsa_key, false, msg, len, sig) && sig->len-- > 0;
	else if (strcmp(kind, "rs256-long") == 0)
		ok = rsa_sign(rsa_key, false, msg, len, sig) &&
		    (sig->bytes[sig->len++] = 0, true);
	else if (strcmp(kind, "rs256-zero") == 0)
		ok = (sig->len = 256, true);
	else if (strcmp(kind, "es256") == 0)
		ok = es256_sign(ec_key, false, msg, len, sig);
	else if (strcmp(kind, "es256:e2") == 0)
		ok = es256_sign(ec2_key, false, msg, len, sig);
	else if (strcmp(kind, "es256-highs") == 0)
		ok = es256_sign(ec_key, true, msg, len, sig);
	else if (strcmp(kind, "es256-zero") == 0)
		ok = (sig->len = 64, true);
	else if (strcmp(kind, "es256-rn") == 0)
		ok = hex_bytes(P256_ORDER, sig->bytes, 32) &&
		    hex_bytes(P256_ORDER, sig->bytes + 32, 32) &&
		    (sig->len = 64, true);
	else if (strcmp(kind, "es256-r0") == 0)
		ok = es256_sign(ec_key, false, msg, len, sig) &&
		    (memset(sig->bytes, 0, 32), true);
	else if (strcmp(kind, "es256-s0") == 0)
		ok = es256_sign(ec_key, false, msg, len, sig) &&
		    (memset(sig->bytes + 32, 0, 32), true);
	else if (strcmp(kind, "es256-der") == 0)
		ok = (sig->len = sizeof(sig->bytes),
		    digest_sign(
			ec_key, false, msg, len, sig->bytes, &sig->len));
	else if (strcmp(kind, "es256-63") == 0)
		ok = es256_sign(ec_key, false, msg, len, sig) &&
		    (sig->len = 63, true);
	else if (strcmp(kind, "es256-65") == 0)
		ok = es256_sign(ec_key, false, msg, len, sig) &&
		    (sig->bytes[sig->len++] = 0, true);
	else if (strcmp(kind, "none") == 0)
		ok = true;
	else if (strncmp(kind, "raw:", 4) == 0)
		ok = (sig->text = kind + 4, true);
	else {
		printf("# unknown signing keyword '%s'\n", kind);
		return false;
	}
	if (!ok)
		printf("# signing '%s' failed in OpenSSL\n", kind);
	return ok;
}

/* ---------------------------------------------------------------- minting */

#define DEFAULT_HEADER "{\"alg\":\"${ALG}\",\"typ\":\"JWT\"}"
#define DEFAULT_PAYLOAD "{\"sub\":42,\"role\":\"user\",\"exp\":${NOW+3600}}"
/* What swap-payload puts under another payload's signature. */
#define SWAPPED_PAYLOAD "{\"sub\":1,\"role\":\"admin\",\"exp\":${NOW+3600}}"

enum segment {
	SEG_HEADER,
	SEG_PAYLOAD,
	SEG_SIG,
	SEG__MAX
};

static const char *const segment_names[SEG__MAX] = { "header", "payload",
	"sig" };

/* Damage done to one segment: <op>-<segment> in the case file. */
static const char *const segment_ops[] = {
	"pad",
	"plus",
	"slash",
	"ws",
	"nl",
	"tab",
	"badbits",
	"empty",
};

/* Damage done to the whole token. */
static const char *const token_ops[] = {
	"swap-payload",
	"2seg",
	"4seg",
	"dot-end",
	"lead-ws",
	"trail-nl",
	"nul",
	"8k",
	"8k-exact",
};

struct mutation {
	const char *op;
	enum segment segment; /* segment ops only */
	bool whole_token;
};

static bool
parse_mutation(const char *word, struct mutation *m)
{
	for (size_t i = 0; i < sizeof(token_ops) / sizeof(token_ops[0]); i++) {
		if (strcmp(word, token_ops[i]) == 0) {
			m->op = token_ops[i];
			m->whole_token = true;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(segment_ops) / sizeof(segment_ops[0]);
	     i++) {
		size_t n = strlen(segment_ops[i]);

		if (strncmp(word, segment_ops[i], n) != 0 || word[n] != '-')
			continue;
		for (int s = 0; s < SEG__MAX; s++) {
			if (strcmp(word + n + 1, segment_names[s]) == 0) {
				m->op = segment_ops[i];
				m->segment = (enum segment)s;
				m->whole_token = false;
				return true;
			}
		}
	}
	return false;
}

static int
sextet(char c)
{
	const char *alphabet =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *at = c != '\0' ? strchr(alphabet, c) : NULL;

	return at != NULL ? (int)(at - alphabet) : -1;
}

static void
insert_at(struct mk_buf *buf, size_t pos, char c)
{
	mk_buf_putc(buf, '\0');
	if (buf->oom)
		return;
	memmove(buf->data + pos + 1, buf->data + pos, buf->len - 1 - pos);
	buf->data[pos] = c;
}

/* Applies one segment op to seg; returns whether it changed anything. */
static bool
damage_segment(const char *op, struct mk_buf *seg)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	bool changed = false;

	if (strcmp(op, "pad") == 0) {
		while (seg->len % 4 != 0) {
			mk_buf_putc(seg, '=');
			changed = true;
		}
	} else if (strcmp(op, "plus") == 0 || strcmp(op, "slash") == 0) {
		char from = op[0] == 'p' ? '-' : '_',
		     to = op[0] == 'p' ? '+' : '/';

		for (size_t i = 0; i < seg->len; i++) {
			if (seg->data[i] == from) {
				seg->data[i] = to;
				changed = true;
			}
		}
	} else if (strcmp(op, "ws") == 0 || strcmp(op, "nl") == 0 ||
	    strcmp(op, "tab") == 0) {
		if (seg->len >= 2) {
			insert_at(seg, seg->len / 2,
			    op[0] == 'w'       ? ' '
				: op[0] == 'n' ? '\n'
					       : '\t');
			changed = true;
		}
	} else if (strcmp(op, "badbits") == 0) {
		/*
		 * The last character of a 2- or 3-character tail has unused low
		 * bits.
		 */
		if (seg->len % 4 == 2 || seg->len % 4 == 3) {
			int v = sextet(seg->data[seg->len - 1]);

			if (v >= 0 && (v & 1) == 0) {
				seg->data[seg->len - 1] = alphabet[v | 1];
				changed = true;
			}
		}
	} else if (strcmp(op, "empty") == 0) {
		changed = seg->len > 0;
		mk_buf_clear(seg);
	}
	return changed;
}

static void
encode_text(struct mk_buf *out, const struct mk_buf *text)
{
	mk_buf_clear(out);
	mk_base64url_encode(out, text->len > 0 ? text->data : "", text->len);
}

/*
 * Builds the token of a case: hjson and pjson (placeholders already
 * replaced) encoded, segment damage done before signing so that the
 * signature covers it, signed by kind, then signature and whole-token
 * damage. Returns false, with a diagnostic, when something does not apply.
 */
static bool
assemble(struct mk_buf *hjson, struct mk_buf *pjson, const char *kind,
    const struct mutation *mutations, int nmutations, const char *alg,
    struct mk_buf *token)
{
	struct mk_buf seg[SEG__MAX];
	struct signature sig;
	bool ok = true;

	/* Padding and pad bits need a segment whose length is not 0 mod 4. */
	for (int i = 0; i < nmutations; i++) {
		const struct mutation *m = &mutations[i];

		if (!m->whole_token && m->segment != SEG_SIG &&
		    (strcmp(m->op, "pad") == 0 ||
			strcmp(m->op, "badbits") == 0)) {
			struct mk_buf *json =
			    m->segment == SEG_HEADER ? hjson : pjson;

			while (json->len % 3 == 0)
				mk_buf_putc(json, ' ');
		}
	}
	for (int s = 0; s < SEG__MAX; s++)
		mk_buf_init(&seg[s], NULL);
	encode_text(&seg[SEG_HEADER], hjson);
	encode_text(&seg[SEG_PAYLOAD], pjson);
	for (int i = 0; i < nmutations && ok; i++) {
		const struct mutation *m = &mutations[i];

		if (!m->whole_token && m->segment != SEG_SIG &&
		    !damage_segment(m->op, &seg[m->segment])) {
			printf("# %s-%s changes nothing in '%s'\n", m->op,
			    segment_names[m->segment],
			    seg[m->segment].len > 0 ? seg[m->segment].data
						    : "");
			ok = false;
		}
	}
	if (ok) {
		struct mk_buf input;

		mk_buf_init(&input, NULL);
		mk_buf_printf(&input, "%s.%s",
		    seg[SEG_HEADER].len > 0 ? seg[SEG_HEADER].data : "",
		    seg[SEG_PAYLOAD].len > 0 ? seg[SEG_PAYLOAD].data : "");
		ok = sign(kind, input.data, input.len, &sig);
		mk_buf_release(&input);
	}
	if (ok) {
		if (sig.text != NULL)
			mk_buf_puts(&seg[SEG_SIG], sig.text);
		else
			mk_base64url_encode(&seg[SEG_SIG], sig.bytes, sig.len);
	}
	for (int i = 0; i < nmutations && ok; i++) {
		const struct mutation *m = &mutations[i];

		if (!m->whole_token && m->segment == SEG_SIG &&
		    !damage_segment(m->op, &seg[SEG_SIG])) {
			printf("# %s-sig changes nothing\n", m->op);
			ok = false;
		} else if (m->whole_token &&
		    strcmp(m->op, "swap-payload") == 0) {
			struct mk_buf swapped;

			mk_buf_init(&swapped, NULL);
			ok = substitute(SWAPPED_PAYLOAD, alg, &swapped);
			encode_text(&seg[SEG_PAYLOAD], &swapped);
			mk_buf_release(&swapped);
		}
	}
	mk_buf_clear(token);
	for (int i = 0; i < nmutations && ok; i++) {
		if (mutations[i].whole_token &&
		    strcmp(mutations[i].op, "lead-ws") == 0)
			mk_buf_putc(token, ' ');
	}
	for (int s = 0; s < SEG__MAX && ok; s++) {
		bool drop = false, twice = false;

		for (int i = 0; i < nmutations; i++) {
			drop = drop ||
			    (s == SEG_SIG &&
				strcmp(mutations[i].op, "2seg") == 0);
			twice = twice ||
			    (s == SEG_SIG &&
				strcmp(mutations[i].op, "4seg") == 0);
		}
		if (drop)
			continue;
		if (s > 0)
			mk_buf_putc(token, '.');
		mk_buf_append(
		    token, seg[s].data != NULL ? seg[s].data : "", seg[s].len);
		if (twice) {
			mk_buf_putc(token, '.');
			mk_buf_append(token,
			    seg[s].data != NULL ? seg[s].data : "", seg[s].len);
		}
	}
	for (int i = 0; i < nmutations && ok; i++) {
		if (strcmp(mutations[i].op, "dot-end") == 0)
			mk_buf_putc(token, '.');
		else if (strcmp(mutations[i].op, "trail-nl") == 0)
			mk_buf_putc(token, '\n');
		else if (strcmp(mutations[i].op, "nul") == 0)
			mk_buf_putc(token, '\0');
	}
	for (int s = 0; s < SEG__MAX; s++)
		mk_buf_release(&seg[s]);
	return ok && !token->oom;
}

static size_t
encoded_len(size_t len)
{
	return (len * 4 + 2) / 3;
}

/*
 * Makes the payload (and, when needed, the header) longer so that the
 * token is exactly target bytes: a "pad" claim before the closing brace,
 * and up to three blanks after the header's closing brace for the token
 * lengths that the payload alone cannot reach.
 */
static bool
grow_to(struct mk_buf *hjson, struct mk_buf *pjson, const char *kind,
    const struct mutation *mutations, int nmutations, const char *alg,
    size_t target, struct mk_buf *token)
{
	size_t fixed_len, pad;

	if (!assemble(hjson, pjson, kind, mutations, nmutations, alg, token))
		return false;
	/* Everything but the two JSON segments: dots and the signature. */
	fixed_len =
	    token->len - encoded_len(hjson->len) - encoded_len(pjson->len);
	if (pjson->len == 0 || pjson->data[pjson->len - 1] != '}')
		return false;
	for (int blanks = 0; blanks < 4; blanks++) {
		size_t hlen = encoded_len(hjson->len + (size_t)blanks);

		for (pad = 0; pad < target; pad++) {
			/* ,"pad":"<pad letters>" */
			size_t total = fixed_len + hlen +
			    encoded_len(pjson->len + 9 + pad);

			if (total >= target)
				break;
		}
		if (fixed_len + hlen + encoded_len(pjson->len + 9 + pad) !=
		    target)
			continue;
		for (int b = 0; b < blanks; b++)
			mk_buf_putc(hjson, ' ');
		pjson->len--;
		mk_buf_puts(pjson, ",\"pad\":\"");
		for (size_t i = 0; i < pad; i++)
			mk_buf_putc(pjson, 'a');
		mk_buf_puts(pjson, "\"}");
		return assemble(hjson, pjson, kind, mutations, nmutations, alg,
			   token) &&
		    token->len == target;
	}
	return false;
}

/* Mints the token of case c into token. */
static bool
mint(const struct jwt_case *c, const char *alg, struct mk_buf *token)
{
	struct mk_buf hjson, pjson;
	struct mutation mutations[MAX_WORDS];
	char *copy = strdup(c->signing), *words[MAX_WORDS];
	size_t target = 0;
	int n, nmutations = 0;
	bool ok = true;

	if (copy == NULL)
		abort();
	mk_buf_init(&hjson, NULL);
	mk_buf_init(&pjson, NULL);
	n = split_words(copy, words, MAX_WORDS);
	if (n < 1) {
		printf("# empty signing column\n");
		ok = false;
	}
	for (int i = 1; i < n && ok; i++) {
		if (!parse_mutation(words[i], &mutations[nmutations])) {
			printf("# unknown mutation '%s'\n", words[i]);
			ok = false;
		} else if (strcmp(words[i], "8k") == 0) {
			target = MK_JWT_MAX_LEN + 1;
		} else if (strcmp(words[i], "8k-exact") == 0) {
			target = MK_JWT_MAX_LEN;
		} else {
			nmutations++;
		}
	}
	if (ok &&
	    (!substitute(
		 strcmp(c->header, "-") == 0 ? DEFAULT_HEADER : c->header, alg,
		 &hjson) ||
		!substitute(
		    strcmp(c->payload, "-") == 0 ? DEFAULT_PAYLOAD : c->payload,
		    alg, &pjson))) {
		printf("# bad placeholder in header or payload\n");
		ok = false;
	}
	if (ok && target > 0) {
		ok = grow_to(&hjson, &pjson, words[0], mutations, nmutations,
		    alg, target, token);
		if (!ok)
			printf("# cannot make a token of exactly %zu bytes\n",
			    target);
	} else if (ok) {
		ok = assemble(&hjson, &pjson, words[0], mutations, nmutations,
		    alg, token);
	}
	mk_buf_release(&hjson);
	mk_buf_release(&pjson);
	free(copy);
	return ok;
}

/* ---------------------------------------------------------------- running */

/* Prints a token for a failing case, NUL and controls escaped. */
static void
show_token(const struct mk_buf *token)
{
	printf("#   token (%zu bytes): ", token->len);
	for (size_t i = 0; i < token->len && i < 400; i++) {
		unsigned char c = (unsigned char)token->data[i];

		if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("%s\n", token->len > 400 ? "..." : "");
}

/* Checks one ok-field (sub=42, role=admin, email=a@b, email=-, name=...). */
static void
check_field(
    const struct jwt_case *c, const char *field, const struct mk_identity *who)
{
	const char *value = strchr(field, '=');
	size_t key_len = value != NULL ? (size_t)(value - field) : 0;

	if (value == NULL) {
		tap_ok(0, "%s: expect word '%s' is key=value", c->name, field);
		return;
	}
	value++;
	if (key_len == 3 && strncmp(field, "sub", 3) == 0)
		tap_is_int(who->user_id, strtoll(value, NULL, 10), "%s: %s",
		    c->name, field);
	else if (key_len == 4 && strncmp(field, "role", 4) == 0)
		tap_is_str(
		    mk_role_name(who->role), value, "%s: %s", c->name, field);
	else if (key_len == 5 && strncmp(field, "email", 5) == 0)
		tap_is_str(who->email, strcmp(value, "-") == 0 ? NULL : value,
		    "%s: %s", c->name, field);
	else if (key_len == 4 && strncmp(field, "name", 4) == 0)
		tap_is_str(who->name, strcmp(value, "-") == 0 ? NULL : value,
		    "%s: %s", c->name, field);
	else
		tap_ok(0, "%s: unknown expect field '%s'", c->name, field);
}

/*
 * A token that verified is remembered (jwt.c): the same bytes again give
 * the same identity, its time claims are still checked against the clock
 * on every use, and a token that differs in its last byte is verified
 * afresh (and refused).
 */
static void
check_remembered(const struct jwt_case *c, struct mk_jwt_verifier *verifier,
    struct mk_arena *arena, struct mk_buf *token)
{
	struct mk_identity first, again;
	const char *why = NULL;
	enum mk_err rc;
	char last;

	memset(&first, 0, sizeof(first));
	memset(&again, 0, sizeof(again));
	(void)mk_jwt_verify(
	    verifier, arena, token->data, token->len, NOW, &first, &why);
	rc = mk_jwt_verify(
	    verifier, arena, token->data, token->len, NOW, &again, &why);
	tap_ok(rc == MK_OK && again.user_id == first.user_id &&
		again.role == first.role &&
		((again.email == NULL && first.email == NULL) ||
		    (again.email != NULL && first.email != NULL &&
			strcmp(again.email, first.email) == 0)) &&
		((again.name == NULL && first.name == NULL) ||
		    (again.name != NULL && first.name != NULL &&
			strcmp(again.name, first.name) == 0)),
	    "%s: verified again from memory, the same identity", c->name);
	rc = mk_jwt_verify(verifier, arena, token->data, token->len,
	    (int64_t)1 << 54, &again, &why);
	tap_ok(rc == MK_EAUTH && why != NULL && strstr(why, "expired") != NULL,
	    "%s: remembered, but expired once the clock passes exp (%s)",
	    c->name, why != NULL ? why : "ok");
	last = token->data[token->len - 1];
	token->data[token->len - 1] = last == 'A' ? 'B' : 'A';
	rc = mk_jwt_verify(
	    verifier, arena, token->data, token->len, NOW, &again, &why);
	token->data[token->len - 1] = last;
	tap_ok(rc == MK_EAUTH,
	    "%s: its last byte changed: verified afresh and refused (%s)",
	    c->name, why != NULL ? why : "accepted");
}

static void
run_case(const struct jwt_case *c, struct mk_arena *arena)
{
	struct mk_jwt_verifier *verifier = NULL;
	struct mk_config *config;
	struct mk_identity who;
	struct mk_buf token;
	char alg[8] = "", err[MK_CONFIG_ERR_MAX] = "";
	char *expect = strdup(c->expect), *words[MAX_WORDS];
	const char *why = NULL;
	enum mk_err rc;
	int n;

	if (expect == NULL)
		abort();
	mk_buf_init(&token, NULL);
	config = config_from(c->config, alg);
	if (config == NULL) {
		tap_ok(0, "%s (line %d): config column understood", c->name,
		    c->line);
		goto out;
	}
	verifier = mk_jwt_verifier_new(config, err, sizeof(err));
	if (verifier == NULL) {
		tap_ok(0, "%s (line %d): verifier made", c->name, c->line);
		printf("#   %s\n", err);
		goto out;
	}
	if (!mint(c, alg, &token)) {
		tap_ok(0, "%s (line %d): token minted", c->name, c->line);
		goto out;
	}
	memset(&who, 0, sizeof(who));
	rc = mk_jwt_verify(
	    verifier, arena, token.data, token.len, NOW, &who, &why);
	n = split_words(expect, words, MAX_WORDS);
	if (n >= 1 && strcmp(words[0], "ok") == 0) {
		tap_is_int(rc, MK_OK, "%s: ok", c->name);
		if (rc != MK_OK) {
			printf("#   refused: %s\n",
			    why != NULL ? why : "(no reason)");
			show_token(&token);
		} else {
			for (int i = 1; i < n; i++)
				check_field(c, words[i], &who);
			check_remembered(c, verifier, arena, &token);
		}
	} else if (n >= 1 && strcmp(words[0], "401") == 0) {
		/*
		 * The rest of the column, as written, is a piece of the reason.
		 */
		const char *reason = trim(c->expect + 3);

		tap_is_int(rc, MK_EAUTH, "%s: 401", c->name);
		if (rc != MK_EAUTH)
			show_token(&token);
		else if (reason[0] != '\0') {
			bool same = why != NULL && strstr(why, reason) != NULL;

			tap_ok(same, "%s: refused for '%s'", c->name, reason);
			if (!same)
				printf("#   reason was: %s\n",
				    why != NULL ? why : "(none)");
		}
	} else {
		tap_ok(0, "%s (line %d): expect column is ok or 401", c->name,
		    c->line);
	}
out:
	mk_arena_reset(arena);
	mk_buf_release(&token);
	mk_jwt_verifier_free(verifier);
	mk_config_free(config);
	free(expect);
}

static char *
read_whole(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "re");
	struct mk_buf buf;
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return NULL;
	mk_buf_init(&buf, NULL);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		mk_buf_append(&buf, chunk, n);
	fclose(fp);
	*len = buf.len;
	return buf.data; /* heap memory of a heap buffer: the caller frees */
}

/*
 * Runs every case of the file: `name | config | header | payload |
 * signing | expect`, '#' comments and blank lines skipped.
 */
static void
test_case_file(void)
{
	const char *srcdir = getenv("MK_TEST_SRCDIR");
	struct jwt_case cases[512];
	struct mk_arena *arena = mk_arena_new(0);
	char path[PATH_MAX];
	size_t ncases = 0, len = 0;
	char *text, *line, *save = NULL;
	int lineno = 0;
	bool unique = true;

	snprintf(path, sizeof(path), "%s/t/unit/cases/jwt.txt",
	    srcdir != NULL && srcdir[0] != '\0' ? srcdir : ".");
	text = read_whole(path, &len);
	tap_ok(text != NULL && arena != NULL, "read %s", path);
	if (text == NULL || arena == NULL) {
		mk_arena_free(arena);
		return;
	}
	/* strtok_r would merge blank lines, so lines are counted by hand. */
	for (line = text; line != NULL && *line != '\0'; line = save) {
		char *fields[6], *p = line;
		int nfields = 0;

		save = strchr(line, '\n');
		if (save != NULL)
			*save++ = '\0';
		lineno++;
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		fields[nfields++] = p;
		for (char *bar = strchr(p, '|'); bar != NULL;
		     bar = strchr(bar + 1, '|')) {
			*bar = '\0';
			if (nfields < 6)
				fields[nfields] = bar + 1;
			nfields++;
		}
		if (nfields != 6 ||
		    ncases == sizeof(cases) / sizeof(cases[0])) {
			tap_ok(
			    0, "line %d has 6 fields separated by '|'", lineno);
			continue;
		}
		cases[ncases] = (struct jwt_case){ .line = lineno,
			.name = trim(fields[0]),
			.config = trim(fields[1]),
			.header = trim(fields[2]),
			.payload = trim(fields[3]),
			.signing = trim(fields[4]),
			.expect = trim(fields[5]) };
		ncases++;
	}
	tap_ok(ncases >= 100, "the case file has %zu cases", ncases);
	for (size_t i = 0; i < ncases; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cases[i].name, cases[j].name) == 0) {
				printf("# line %d repeats the name %s\n",
				    cases[i].line, cases[i].name);
				unique = false;
			}
		}
	}
	tap_ok(unique, "case names are unique");
	for (size_t i = 0; i < ncases; i++)
		run_case(&cases[i], arena);
	mk_arena_free(arena);
	free(text);
}

/* ------------------------------------------------------- verifier set-up */

struct new_case {
	const char *name;
	const char *alg;
	const char *secret;     /* NULL: none */
	const char *public_key; /* a fixture file name; NULL: none */
	const char *keys_dir;   /* a fixture directory name; NULL: none */
	const char *want;       /* a piece of the error; NULL: success */
	const char *want_also;  /* another piece (the file it names) */
	size_t keys;            /* on success, the key count */
};

static const struct new_case new_cases[] = {
	{ "keys dir secret of 31 bytes (and a newline)", "HS256", NULL, NULL,
	    "bad-short", "shorter than 32 bytes", "short31", 0 },
	{ "jwt_secret of 31 bytes", "HS256", "0123456789abcdef0123456789abcde",
	    NULL, NULL, "shorter than 32 bytes", "jwt_secret", 0 },
	{ "RS256 with an EC key", "RS256", NULL, "ec.pem", NULL,
	    "RS256 needs an RSA public key", "ec.pem", 0 },
	{ "ES256 with an RSA key", "ES256", NULL, "rsa.pem", NULL,
	    "ES256 needs a P-256", "rsa.pem", 0 },
	{ "RS256 with a 1024-bit RSA key", "RS256", NULL, "rsa1024.pem", NULL,
	    "2048 bits", "rsa1024.pem", 0 },
	{ "ES256 with a P-384 key", "ES256", NULL, "ec384.pem", NULL, "P-256",
	    "ec384.pem", 0 },
	{ "missing jwt_public_key file", "RS256", NULL, "missing.pem", NULL,
	    "missing.pem", "No such file", 0 },
	{ "jwt_public_key that is not PEM", "RS256", NULL, "notpem.pem", NULL,
	    "not a PEM public key", "notpem.pem", 0 },
	{ "jwt_public_key holding a private key", "RS256", NULL,
	    "rsa-private.pem", NULL, "not a PEM public key", "rsa-private.pem",
	    0 },
	{ "jwt_public_key with HS256", "HS256", SECRET, "rsa.pem", NULL,
	    "jwt_public_key is for RS256/ES256", "HS256", 0 },
	{ "jwt_public_key with HS256 and no secret", "HS256", NULL, "rsa.pem",
	    NULL, "jwt_public_key is for RS256/ES256", "HS256", 0 },
	{ "jwt_secret with RS256", "RS256", SECRET, "rsa.pem", NULL,
	    "jwt_secret is for HS256", "RS256", 0 },
	{ "jwt_secret with ES256", "ES256", SECRET, NULL, NULL,
	    "jwt_secret is for HS256", "ES256", 0 },
	{ "keys dir file named 'bad name'", "HS256", SECRET, NULL, "bad-name",
	    "'bad name' is not a key id", NULL, 0 },
	{ "keys dir file name of 65 characters", "HS256", SECRET, NULL,
	    "bad-longname", "is not a key id", "00000000", 0 },
	{ "missing keys dir", "HS256", SECRET, NULL, "no-such-dir",
	    "jwt_keys_dir", "No such file", 0 },
	{ "keys dir holding a directory", "HS256", SECRET, NULL, "bad-subdir",
	    "cannot read", "sub", 0 },
	{ "keys dir holding a symlink", "HS256", SECRET, NULL, "bad-symlink",
	    "cannot read", "link", 0 },
	{ "RS256 keys dir file that is not PEM", "RS256", NULL, "rsa.pem",
	    "bad-notpem", "is not a PEM public key", "notpem", 0 },
	{ "RS256 keys dir holding an EC key", "RS256", NULL, "rsa.pem",
	    "bad-rs-ec", "RS256 needs an RSA public key", "ecfile", 0 },
	{ "ES256 keys dir holding an RSA key", "ES256", NULL, "ec.pem",
	    "keys-rs", "ES256 needs a P-256", "r2", 0 },
	{ "HS256 keys dir holding public keys (PEM is no secret)", "HS256",
	    SECRET, NULL, "keys-rs", "is PEM text, not a secret", NULL, 0 },
	{ "HS256 jwt_secret that is PEM text", "HS256",
	    "-----BEGIN PUBLIC "
	    "KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
	    NULL, NULL, "is PEM text, not a secret", "jwt_secret", 0 },
	{ "HS256 jwt_secret that is an OpenSSH public key", "HS256",
	    "ssh-ed25519 "
	    "AAAAC3NzaC1lZDI1NTE5AAAAILNaGghIv+DWCS/"
	    "wLL+8q0o+6yfcHL3H8OHgEa2N+W5m ops@example",
	    NULL, NULL, "is an OpenSSH public key, not a secret", "jwt_secret",
	    0 },
	{ "HS256 jwt_secret that is a JWK", "HS256",
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
	    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"}",
	    NULL, NULL, "is a JWK (JSON Web Key), not a secret", "jwt_secret",
	    0 },
	{ "HS256 keys dir holding a DER public key", "HS256", SECRET, NULL,
	    "bad-der", "is a DER public key, not a secret", "d1", 0 },
	{ "HS256 keys dir holding a base64 DER public key", "HS256", SECRET,
	    NULL, "bad-b64der", "is a base64 DER public key, not a secret",
	    "b1", 0 },
	{ "HS256 secret and two rotation keys", "HS256", SECRET, NULL,
	    "keys-hs", NULL, NULL, 3 },
	{ "HS256 without any key", "HS256", NULL, NULL, NULL, NULL, NULL, 0 },
	{ "HS256 key file of 32 bytes and a newline", "HS256", NULL, NULL,
	    "ok-32", NULL, NULL, 1 },
	{ "HS256 empty keys dir", "HS256", SECRET, NULL, "keys-empty", NULL,
	    NULL, 1 },
	{ "RS256 public key and keys dir", "RS256", NULL, "rsa.pem", "keys-rs",
	    NULL, NULL, 2 },
	{ "RS256 keys dir only", "RS256", NULL, NULL, "keys-rs", NULL, NULL,
	    1 },
	{ "ES256 public key and keys dir", "ES256", NULL, "ec.pem", "keys-es",
	    NULL, NULL, 2 },
	{ "ES256 without any key", "ES256", NULL, NULL, NULL, NULL, NULL, 0 },
};

static void
test_verifier_new(void)
{
	for (size_t i = 0; i < sizeof(new_cases) / sizeof(new_cases[0]); i++) {
		const struct new_case *c = &new_cases[i];
		struct mk_config *config = mk_config_new();
		struct mk_jwt_verifier *verifier;
		char err[MK_CONFIG_ERR_MAX] = "";
		bool ok;

		if (config == NULL)
			abort();
		ok = set_string(&config->jwt_alg, c->alg) &&
		    (c->secret == NULL ||
			set_string(&config->jwt_secret, c->secret));
		if (ok && c->public_key != NULL) {
			char *path = fixture_path(c->public_key);

			ok = set_string(&config->jwt_public_key, path);
			free(path);
		}
		if (ok && c->keys_dir != NULL) {
			char *path = fixture_path(c->keys_dir);

			ok = set_string(&config->jwt_keys_dir, path);
			free(path);
		}
		if (!ok)
			abort();
		verifier = mk_jwt_verifier_new(config, err, sizeof(err));
		if (c->want == NULL) {
			tap_ok(verifier != NULL, "verifier_new: %s: made",
			    c->name);
			if (verifier == NULL)
				printf("#   %s\n", err);
			else
				tap_is_int(mk_jwt_verifier_key_count(verifier),
				    c->keys, "verifier_new: %s: %zu keys",
				    c->name, c->keys);
		} else {
			tap_ok(verifier == NULL, "verifier_new: %s: refused",
			    c->name);
			tap_ok(strstr(err, c->want) != NULL &&
				(c->want_also == NULL ||
				    strstr(err, c->want_also) != NULL),
			    "verifier_new: %s: the error says '%s'%s%s%s",
			    c->name, c->want,
			    c->want_also != NULL ? " and '" : "",
			    c->want_also != NULL ? c->want_also : "",
			    c->want_also != NULL ? "'" : "");
			printf("#   error: %s\n", err);
		}
		mk_jwt_verifier_free(verifier);
		mk_config_free(config);
	}
}

/* ------------------------------------------------------- odd raw input */

/* A case made in code, for the checks below. */
static struct jwt_case
code_case(const char *name, const char *config, const char *signing)
{
	return (struct jwt_case){ .name = (char *)name,
		.config = (char *)config,
		.header = (char *)"-",
		.payload = (char *)"-",
		.signing = (char *)signing,
		.expect = (char *)"" };
}

struct raw_case {
	const char *name;
	const char *prefix; /* before the valid token; NULL: no token */
	const char *text;   /* after it, or the whole input */
	size_t repeat;      /* text repeated this many times */
	const char *why;
};

static const struct raw_case raw_cases[] = {
	{ "empty input", NULL, "", 1, "not three segments" },
	{ "one dot", NULL, ".", 1, "not three segments" },
	{ "two dots", NULL, "..", 1, "empty segment" },
	{ "three dots", NULL, "...", 1, "not three segments" },
	{ "two segments", NULL, "e30.e30", 1, "not three segments" },
	{ "empty header object", NULL, "e30.e30.AAAA", 1, "alg" },
	{ "8193 bytes", NULL, "A", MK_JWT_MAX_LEN + 1, "longer than 8 KiB" },
	{ "'Bearer ' kept in front", "Bearer ", "", 1,
	    "header is not canonical" },
	{ "a space after", "", " ", 1, "signature is not canonical" },
	{ "CRLF after", "", "\r\n", 1, "signature is not canonical" },
	{ "a second token after", "", ".", 1, "not three segments" },
};

static void
test_raw_input(void)
{
	struct jwt_case valid = code_case("raw", "HS256", "hs256");
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_config *config;
	struct mk_jwt_verifier *verifier = NULL;
	struct mk_buf token, input;
	char alg[8], err[MK_CONFIG_ERR_MAX];

	mk_buf_init(&token, NULL);
	mk_buf_init(&input, NULL);
	config = config_from("HS256", alg);
	if (config != NULL)
		verifier = mk_jwt_verifier_new(config, err, sizeof(err));
	if (verifier == NULL || arena == NULL || !mint(&valid, alg, &token)) {
		tap_ok(0, "raw input: a verifier and a token");
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *c = &raw_cases[i];
		struct mk_identity who;
		const char *why = NULL;
		enum mk_err rc;

		mk_buf_clear(&input);
		if (c->prefix != NULL) {
			mk_buf_puts(&input, c->prefix);
			mk_buf_append(&input, token.data, token.len);
		}
		for (size_t k = 0; k < c->repeat; k++)
			mk_buf_puts(&input, c->text);
		rc = mk_jwt_verify(verifier, arena,
		    input.len > 0 ? input.data : "", input.len, NOW, &who,
		    &why);
		tap_ok(rc == MK_EAUTH && why != NULL &&
			strstr(why, c->why) != NULL,
		    "raw input: %s: 401 for '%s'", c->name, c->why);
		if (rc != MK_EAUTH || why == NULL ||
		    strstr(why, c->why) == NULL)
			printf("#   rc %d, reason: %s\n", (int)rc,
			    why != NULL ? why : "(none)");
		mk_arena_reset(arena);
	}
out:
	mk_buf_release(&token);
	mk_buf_release(&input);
	mk_jwt_verifier_free(verifier);
	mk_config_free(config);
	mk_arena_free(arena);
}

/* --------------------------------------------- reuse and HS256 signing */

/*
 * One verifier, tokens in turn good, bad, good...: the per-token state
 * (HMAC re-initialisation, the digest context) must not leak between them.
 */
static void
test_reuse(void)
{
	static const char *const configs[][3] = {
		{ "HS256 keys", "hs256", "hs256-wrong" },
		{ "RS256", "rs256", "rs256:r2" },
		{ "ES256", "es256", "es256:e2" },
	};
	struct mk_arena *arena = mk_arena_new(0);

	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		struct jwt_case good =
		    code_case("reuse-good", configs[i][0], configs[i][1]);
		struct jwt_case bad =
		    code_case("reuse-bad", configs[i][0], configs[i][2]);
		struct mk_config *config;
		struct mk_jwt_verifier *verifier;
		struct mk_buf good_token, bad_token;
		char alg[8], err[MK_CONFIG_ERR_MAX];
		int right = 0;

		config = config_from(configs[i][0], alg);
		verifier = config != NULL
		    ? mk_jwt_verifier_new(config, err, sizeof(err))
		    : NULL;
		mk_buf_init(&good_token, NULL);
		mk_buf_init(&bad_token, NULL);
		if (verifier != NULL && mint(&good, alg, &good_token) &&
		    mint(&bad, alg, &bad_token)) {
			for (int round = 0; round < 6; round++) {
				const struct mk_buf *t =
				    round % 2 == 0 ? &good_token : &bad_token;
				struct mk_identity who;
				const char *why;
				enum mk_err rc = mk_jwt_verify(verifier, arena,
				    t->data, t->len, NOW, &who, &why);

				right +=
				    rc == (round % 2 == 0 ? MK_OK : MK_EAUTH);
				mk_arena_reset(arena);
			}
		}
		tap_is_int(right, 6,
		    "%s: one verifier, good and bad tokens alternating", alg);
		mk_buf_release(&good_token);
		mk_buf_release(&bad_token);
		mk_jwt_verifier_free(verifier);
		mk_config_free(config);
	}
	mk_arena_free(arena);
}

/*
 * The lifetime rule holds for a remembered token too: one without iat
 * that verified at NOW (exp a day ahead) is refused from memory when the
 * clock reads an hour earlier (stepped back), where exp lies more than
 * jwt_max_lifetime ahead; and again accepted at NOW.
 */
static void
test_lifetime_remembered(void)
{
	struct jwt_case c = code_case("lifetime-remembered", "HS256", "hs256");
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_jwt_verifier *verifier = NULL;
	struct mk_config *config;
	struct mk_identity who;
	struct mk_buf token;
	char alg[8], err[MK_CONFIG_ERR_MAX];
	const char *why = NULL;
	enum mk_err first = MK_EINTERNAL, earlier = MK_OK, again = MK_EINTERNAL;

	c.payload =
	    (char *)"{\"sub\":5,\"role\":\"user\",\"exp\":${NOW+86400}}";
	mk_buf_init(&token, NULL);
	config = config_from(c.config, alg);
	if (config != NULL)
		verifier = mk_jwt_verifier_new(config, err, sizeof(err));
	if (verifier != NULL && mint(&c, alg, &token)) {
		first = mk_jwt_verify(
		    verifier, arena, token.data, token.len, NOW, &who, &why);
		earlier = mk_jwt_verify(verifier, arena, token.data, token.len,
		    NOW - 3600, &who, &why);
		tap_ok(earlier == MK_EAUTH && why != NULL &&
			strstr(why, "without iat") != NULL,
		    "lifetime: a remembered token without iat, an hour before: "
		    "refused (%s)",
		    why != NULL ? why : "accepted");
		again = mk_jwt_verify(
		    verifier, arena, token.data, token.len, NOW, &who, &why);
	} else {
		tap_ok(0, "lifetime: verifier and token made");
	}
	tap_ok(first == MK_OK && again == MK_OK,
	    "lifetime: the same token at NOW: accepted, before and after");
	mk_buf_release(&token);
	mk_jwt_verifier_free(verifier);
	mk_config_free(config);
	mk_arena_free(arena);
}

static void
test_sign_hs256(void)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct jwt_case mine = code_case("sign", "HS256", "hs256");
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_config *config;
	struct mk_jwt_verifier *verifier = NULL;
	struct mk_buf payload, out, reference;
	struct mk_identity who;
	char alg[8], err[MK_CONFIG_ERR_MAX];
	const char *why = NULL;
	enum mk_err rc;

	mk_buf_init(&payload, NULL);
	mk_buf_init(&out, NULL);
	mk_buf_init(&reference, NULL);
	config = config_from("HS256", alg);
	if (config != NULL)
		verifier = mk_jwt_verifier_new(config, err, sizeof(err));
	if (verifier == NULL || arena == NULL) {
		tap_ok(0, "sign_hs256: a verifier");
		goto out;
	}
	mine.payload =
	    (char *)"{\"sub\":\"7\",\"role\":\"moderator\",\"exp\":${NOW+60},"
		    "\"email\":\"mod@example.com\",\"name\":\"Mo\"}";
	substitute(mine.payload, alg, &payload);

	mk_buf_puts(&out, "Bearer ");
	rc = mk_jwt_sign_hs256(
	    &out, header, payload.data, SECRET, strlen(SECRET));
	tap_is_int(rc, MK_OK, "sign_hs256: MK_OK");
	tap_ok(strncmp(out.data, "Bearer ", 7) == 0,
	    "sign_hs256: appends to the buffer");
	rc = mk_jwt_verify(
	    verifier, arena, out.data + 7, out.len - 7, NOW, &who, &why);
	tap_is_int(rc, MK_OK, "sign_hs256: the token verifies");
	if (rc == MK_OK) {
		tap_is_int(who.user_id, 7, "sign_hs256: sub");
		tap_is_int(who.role, MK_ROLE_MODERATOR, "sign_hs256: role");
		tap_is_str(who.email, "mod@example.com", "sign_hs256: email");
		tap_is_str(who.name, "Mo", "sign_hs256: name");
	} else {
		printf("#   refused: %s\n", why);
	}
	mk_arena_reset(arena);
	tap_ok(mint(&mine, alg, &reference) &&
		strcmp(reference.data, out.data + 7) == 0,
	    "sign_hs256: the same token as this test mints");

	mk_buf_clear(&out);
	rc = mk_jwt_sign_hs256(
	    &out, header, payload.data, SECRET_WRONG, strlen(SECRET_WRONG));
	tap_is_int(rc, MK_OK, "sign_hs256 with another secret: MK_OK");
	rc = mk_jwt_verify(verifier, arena, out.data, out.len, NOW, &who, &why);
	tap_ok(rc == MK_EAUTH && why != NULL &&
		strstr(why, "bad signature") != NULL,
	    "sign_hs256 with another secret: refused for a bad signature");
	mk_arena_reset(arena);
out:
	mk_buf_release(&payload);
	mk_buf_release(&out);
	mk_buf_release(&reference);
	mk_jwt_verifier_free(verifier);
	mk_config_free(config);
	mk_arena_free(arena);
}

int
main(void)
{
	bool ready = setup_fixture();

	tap_ok(ready, "keys generated and written under %s", fixture_dir);
	if (ready) {
		test_case_file();
		test_verifier_new();
		test_raw_input();
		test_reuse();
		test_lifetime_remembered();
		test_sign_hs256();
	}
	teardown_fixture();
	return tap_done();
}
