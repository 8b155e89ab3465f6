/*
 * The keys of a JWT verifier (auth layer); see jwt_keys.h. Every key is
 * read and checked here, once, at worker start or when the master checks
 * a configuration; a token only ever looks one up (mk_jwt_keys_find).
 * Key bytes read from files are wiped once their OpenSSL object is made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt_keys.h"
#include "auth/keyform.h"
#include "core/config.h"
#include "core/token.h"

#define MAX_PEM (64 * 1024)

const char *const mk_jwt_alg_names[MK_JWT_ALG__MAX] = {
	[MK_JWT_HS256] = "HS256",
	[MK_JWT_RS256] = "RS256",
	[MK_JWT_ES256] = "ES256",
};

static int
add_hmac_key(struct mk_jwt_keys *keys, const char *kid, const void *secret,
    size_t len, char *err, size_t errlen)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(
		    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	struct mk_jwt_key *key = &keys->keys[keys->nkeys];
	const char *form;

	if (len < 32) {
		mk_errf(err, errlen, "HS256 key %s is shorter than 32 bytes",
		    kid ? kid : "jwt_secret");
		return -1;
	}
	/*
	 * A public key is public: used as an HMAC secret it would let anyone
	 * mint tokens (the RS256→HS256 confusion, from our side). Whatever
	 * form it comes in: PEM, DER, OpenSSH, JWK, base64 of those.
	 */
	if ((form = mk_keyform_public(secret, len)) != NULL) {
		mk_errf(err, errlen, "HS256 key %s is %s, not a secret",
		    kid ? kid : "jwt_secret", form);
		return -1;
	}
	key->hmac = EVP_MAC_CTX_new(keys->mac);
	if (key->hmac == NULL ||
	    EVP_MAC_init(key->hmac, secret, len, params) != 1) {
		EVP_MAC_CTX_free(key->hmac);
		key->hmac = NULL;
		mk_errf(err, errlen, "OpenSSL cannot set up HMAC-SHA256");
		return -1;
	}
	key->signature_len = 32;
	return 0;
}

/* Checks that pkey fits the algorithm and sets the signature length. */
static int
add_public_key(struct mk_jwt_keys *keys, const char *origin, EVP_PKEY *pkey,
    char *err, size_t errlen)
{
	struct mk_jwt_key *key = &keys->keys[keys->nkeys];
	char group[64];
	size_t group_len = 0;

	if (keys->alg == MK_JWT_RS256) {
		if (!EVP_PKEY_is_a(pkey, "RSA") ||
		    EVP_PKEY_get_bits(pkey) < 2048) {
			mk_errf(err, errlen,
			    "%s: RS256 needs an RSA public "
			    "key of 2048 bits or more",
			    origin);
			return -1;
		}
		key->signature_len = (size_t)EVP_PKEY_get_size(pkey);
	} else {
		if (!EVP_PKEY_is_a(pkey, "EC") ||
		    EVP_PKEY_get_utf8_string_param(pkey,
			OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
			&group_len) != 1 ||
		    strcmp(group, "prime256v1") != 0) {
			mk_errf(err, errlen,
			    "%s: ES256 needs a P-256 "
			    "(prime256v1) EC public key",
			    origin);
			return -1;
		}
		/* r || s, 32 bytes each (RFC 7518 3.4) */
		key->signature_len = 64;
	}
	key->pkey = pkey;
	return 0;
}

static EVP_PKEY *
read_pem(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		mk_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (pkey == NULL)
		mk_errf(err, errlen, "%s: not a PEM public key", path);
	return pkey;
}

/* Reads a small regular file whole; returns its length or -1. */
static ssize_t
read_small_file(int dirfd, const char *name, char *buf, size_t size)
{
	struct stat st;
	ssize_t n, got = 0;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size >= (off_t)size) {
		close(fd);
		return -1;
	}
	while ((size_t)got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	return got == st.st_size ? got : -1;
}

/* Adds the key in file kid (len bytes of content), as jwt_alg reads it. */
static int
add_file_key(struct mk_jwt_keys *keys, const char *dir, const char *kid,
    const char *content, ssize_t len, char *err, size_t errlen)
{
	BIO *bio;
	EVP_PKEY *pkey;
	int rc;

	if (keys->alg == MK_JWT_HS256) {
		while (len > 0 &&
		    (content[len - 1] == '\n' || content[len - 1] == '\r'))
			len--;
		return add_hmac_key(
		    keys, kid, content, (size_t)len, err, errlen);
	}
	bio = BIO_new_mem_buf(content, (int)len);
	pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (pkey == NULL) {
		mk_errf(err, errlen,
		    "jwt_keys_dir: %s/%s is not a PEM "
		    "public key",
		    dir, kid);
		return -1;
	}
	if ((rc = add_public_key(keys, kid, pkey, err, errlen)) != 0)
		EVP_PKEY_free(pkey);
	return rc;
}

static int
load_keys_dir(
    struct mk_jwt_keys *keys, const char *dir, char *err, size_t errlen)
{
	static char content[MAX_PEM];
	struct dirent *entry;
	DIR *d = opendir(dir);
	int rc = 0;

	if (d == NULL) {
		mk_errf(
		    err, errlen, "jwt_keys_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (entry = readdir(d)) != NULL) {
		const char *kid = entry->d_name;
		ssize_t len;

		if (kid[0] == '.')
			continue;
		if (!mk_token_valid(kid, strlen(kid))) {
			mk_errf(err, errlen,
			    "jwt_keys_dir: '%s' is not a key "
			    "id ([A-Za-z0-9._-], 64 at most)",
			    kid);
			rc = -1;
			break;
		}
		if (keys->nkeys == MK_JWT_KEYS_MAX) {
			mk_errf(err, errlen, "jwt_keys_dir: more than %d keys",
			    MK_JWT_KEYS_MAX);
			rc = -1;
			break;
		}
		len = read_small_file(dirfd(d), kid, content, sizeof(content));
		if (len < 0) {
			mk_errf(err, errlen,
			    "jwt_keys_dir: cannot read %s/%s "
			    "(a regular file under 64 KiB)",
			    dir, kid);
			rc = -1;
			break;
		}
		rc = add_file_key(keys, dir, kid, content, len, err, errlen);
		OPENSSL_cleanse(content, sizeof(content));
		if (rc == 0) {
			keys->keys[keys->nkeys].kid = strdup(kid);
			/* Counted first so that clear releases this key too. */
			keys->nkeys++;
			if (keys->keys[keys->nkeys - 1].kid == NULL) {
				mk_errf(err, errlen, "out of memory");
				rc = -1;
			}
		}
	}
	closedir(d);
	return rc;
}

/* The key of jwt_secret (HS256) or jwt_public_key (RS256, ES256), if set. */
static int
load_configured_key(struct mk_jwt_keys *keys, const struct mk_config *config,
    char *err, size_t errlen)
{
	EVP_PKEY *pkey;

	if (keys->alg == MK_JWT_HS256) {
		if (config->jwt_public_key[0] != '\0') {
			mk_errf(err, errlen,
			    "jwt_public_key is for "
			    "RS256/ES256, but jwt_alg is HS256");
			return -1;
		}
		if (config->jwt_secret[0] == '\0')
			return 0;
		if (add_hmac_key(keys, NULL, config->jwt_secret,
			strlen(config->jwt_secret), err, errlen) != 0)
			return -1;
		keys->nkeys++;
		return 0;
	}
	if (config->jwt_secret[0] != '\0') {
		mk_errf(err, errlen,
		    "jwt_secret is for HS256, but jwt_alg "
		    "is %s",
		    mk_jwt_alg_names[keys->alg]);
		return -1;
	}
	if (config->jwt_public_key[0] == '\0')
		return 0;
	if ((pkey = read_pem(config->jwt_public_key, err, errlen)) == NULL)
		return -1;
	if (add_public_key(keys, config->jwt_public_key, pkey, err, errlen) !=
	    0) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	keys->nkeys++;
	return 0;
}

enum mk_err
mk_jwt_keys_load(struct mk_jwt_keys *keys, const struct mk_config *config,
    char *err, size_t errlen)
{
	size_t alg;

	for (alg = 0; alg < MK_JWT_ALG__MAX; alg++) {
		if (strcmp(config->jwt_alg, mk_jwt_alg_names[alg]) == 0)
			break;
	}
	if (alg == MK_JWT_ALG__MAX) {
		mk_errf(err, errlen, "jwt_alg must be HS256, RS256 or ES256");
		return MK_EINVAL;
	}
	keys->alg = (enum mk_jwt_alg)alg;
	keys->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (keys->mac == NULL) {
		mk_errf(err, errlen,
		    "OpenSSL or memory failure setting up "
		    "JWT verification");
		return MK_EINVAL;
	}
	if (load_configured_key(keys, config, err, errlen) != 0)
		return MK_EINVAL;
	if (config->jwt_keys_dir[0] != '\0' &&
	    load_keys_dir(keys, config->jwt_keys_dir, err, errlen) != 0)
		return MK_EINVAL;
	return MK_OK;
}

void
mk_jwt_keys_clear(struct mk_jwt_keys *keys)
{
	for (size_t i = 0; i < keys->nkeys; i++) {
		free(keys->keys[i].kid);
		EVP_MAC_CTX_free(keys->keys[i].hmac);
		EVP_PKEY_free(keys->keys[i].pkey);
	}
	EVP_MAC_free(keys->mac);
	memset(keys, 0, sizeof(*keys));
}

const struct mk_jwt_key *
mk_jwt_keys_find(const struct mk_jwt_keys *keys, const char *kid)
{
	for (size_t i = 0; i < keys->nkeys; i++) {
		const char *k = keys->keys[i].kid;

		if ((kid == NULL && k == NULL) ||
		    (kid != NULL && k != NULL && strcmp(kid, k) == 0))
			return &keys->keys[i];
	}
	return NULL;
}
