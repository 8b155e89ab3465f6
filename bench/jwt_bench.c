/*
 * Micro-benchmark: the cost of one JWT verification (mk_jwt_verify, the
 * whole path: split, base64url, strict JSON of header and payload, claim
 * checks, signature) for HS256, RS256 (2048-bit) and ES256 (P-256), with
 * keys generated at start, over tokens the verifier has not seen (4,096
 * distinct ones in turn); then the cost of a token it remembers (jwt.c
 * keeps tokens that verified). Prints verifications per second and
 * microseconds per verification. Build and run: `bench/run jwt`.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/roles.h"
#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

#define SECRET "bench-secret-0123456789abcdef0123456789abcdef"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "jwt_bench: %s\n", what);
	exit(1);
}

/* Signs header.payload with pkey (RS256 or ES256, JWS form). */
static void
sign_pkey(struct mk_buf *token, EVP_PKEY *pkey, int es256)
{
	unsigned char sig[512], raw[64];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)token->data,
		token->len) != 1)
		die("signing failed");
	EVP_MD_CTX_free(ctx);
	mk_buf_putc(token, '.');
	if (es256) {
		const unsigned char *p = sig;
		ECDSA_SIG *ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);

		if (ecdsa == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), raw, 32) != 32 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), raw + 32, 32) != 32)
			die("ECDSA signature conversion failed");
		ECDSA_SIG_free(ecdsa);
		mk_base64url_encode(token, raw, 64);
	} else {
		mk_base64url_encode(token, sig, sig_len);
	}
}

static void
write_pem(const char *path, EVP_PKEY *pkey)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || PEM_write_PUBKEY(fp, pkey) != 1 || fclose(fp) != 0)
		die("cannot write a PEM file");
}

/*
 * Distinct tokens cycled through, more than the verifier remembers
 * (jwt.c keeps 256), so that every verification is a first sight.
 */
#define DISTINCT_TOKENS 4096

/* Mints token number i (its iat differs) into out. */
static void
mint(struct mk_buf *out, const char *alg, EVP_PKEY *pkey, int i)
{
	char header[64], payload[160];

	snprintf(
	    header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	snprintf(payload, sizeof(payload),
	    "{\"sub\":\"42\",\"role\":\"user\",\"email\":\"u42@example.org\","
	    "\"iat\":%d,\"exp\":1800003600}",
	    /* verified at 1800000000: within jwt_max_lifetime */
	    1800000000 - i);
	if (pkey == NULL) {
		if (mk_jwt_sign_hs256(
			out, header, payload, SECRET, strlen(SECRET)) != MK_OK)
			die("HS256 signing failed");
	} else {
		mk_base64url_encode(out, header, strlen(header));
		mk_buf_putc(out, '.');
		mk_base64url_encode(out, payload, strlen(payload));
		sign_pkey(out, pkey, strcmp(alg, "ES256") == 0);
	}
}

/*
 * Verifies tokens[i % ntokens] for seconds; returns verifications per second.
 */
static double
time_verify(struct mk_jwt_verifier *verifier, struct mk_arena *arena,
    struct mk_buf *tokens, int ntokens, double seconds)
{
	struct mk_identity who;
	const char *why;
	long n = 0;
	double start = now_s(), elapsed;

	do {
		for (int i = 0; i < 100; i++, n++) {
			struct mk_buf *t = &tokens[n % ntokens];

			if (mk_jwt_verify(verifier, arena, t->data, t->len,
				1800000000, &who, &why) != MK_OK)
				die(why);
			mk_arena_reset(arena);
		}
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	return (double)n / elapsed;
}

static void
run(const char *alg, const char *pem_path, EVP_PKEY *pkey, double seconds)
{
	static struct mk_buf tokens[DISTINCT_TOKENS];
	struct mk_config *config = mk_config_new();
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_jwt_verifier *verifier;
	char err[256];
	double fresh, known;

	if (config == NULL || arena == NULL)
		die("out of memory");
	free(config->jwt_alg);
	config->jwt_alg = strdup(alg);
	if (pkey == NULL) {
		free(config->jwt_secret);
		config->jwt_secret = strdup(SECRET);
	} else {
		free(config->jwt_public_key);
		config->jwt_public_key = strdup(pem_path);
	}
	verifier = mk_jwt_verifier_new(config, err, sizeof(err));
	if (verifier == NULL)
		die(err);
	for (int i = 0; i < DISTINCT_TOKENS; i++) {
		mk_buf_init(&tokens[i], NULL);
		mint(&tokens[i], alg, pkey, i);
	}
	fresh = time_verify(verifier, arena, tokens, DISTINCT_TOKENS, seconds);
	known = time_verify(verifier, arena, tokens, 1, seconds / 2);
	printf("%s  first sight %9.0f verifications/s  %7.2f us each;  a "
	       "remembered token %7.3f us  (token %zu bytes)\n",
	    alg, fresh, 1e6 / fresh, 1e6 / known, tokens[0].len);
	for (int i = 0; i < DISTINCT_TOKENS; i++)
		mk_buf_release(&tokens[i]);
	mk_jwt_verifier_free(verifier);
	mk_arena_free(arena);
	mk_config_free(config);
}

int
main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	char dir[] = "/tmp/jwt-bench-XXXXXX", rsa_path[64], ec_path[64];
	EVP_PKEY *rsa, *ec;

	mk_log_open("/dev/null", MK_LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (rsa == NULL || ec == NULL)
		die("key generation failed");
	snprintf(rsa_path, sizeof(rsa_path), "%s/rsa.pem", dir);
	snprintf(ec_path, sizeof(ec_path), "%s/ec.pem", dir);
	write_pem(rsa_path, rsa);
	write_pem(ec_path, ec);
	run("HS256", NULL, NULL, seconds);
	run("RS256", rsa_path, rsa, seconds);
	run("ES256", ec_path, ec, seconds);
	unlink(rsa_path);
	unlink(ec_path);
	rmdir(dir);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	mk_log_close();
	return 0;
}
