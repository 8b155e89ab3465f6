/*
 * JSON Web Tokens (auth layer); see jwt.h for the rules. It calls core/
 * and auth/ only. Keys and the OpenSSL objects that use them are made
 * once per worker, by jwt_keys.c: an HMAC context per secret
 * (re-initialised per token, keeping its key), a parsed public key per
 * RS256/ES256 key; this file adds one digest context reset per token, and
 * checks tokens. Nothing is keyed on the raw signature (ECDSA signatures
 * are malleable).
 *
 * Verified tokens are remembered per worker (a small direct-mapped table
 * keyed by the whole token, compared in constant time): a client sends
 * the same token with every request until it expires, and a token that
 * is byte for byte one that verified needs no second verification — only
 * its time claims, which are checked against the clock again on every
 * use. This spares the JSON parse (json-c allocates per member) and the
 * HMAC (OpenSSL's EVP re-initialisation allocates), so a request with a
 * known token allocates nothing outside its arena. A token that differs
 * in any byte, a malleated ECDSA signature included, is a miss and goes
 * through every check. Keys change only with a reload, which starts new
 * workers with empty tables.
 */
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/jwt_keys.h"
#include "auth/roles.h"
#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/hash.h"
#include "core/json_parse.h"
#include "core/token.h"

#define MAX_SAFE_INT ((int64_t)1 << 53) /* exp, nbf, iat are below this */
#define TOKEN_CACHE_SLOTS 256
#define TOKEN_CACHE_MAX_LEN 1024 /* longer tokens are verified every time */
#define MAX_EMAIL 320
#define MAX_NAME 200
/*
 * A header or payload: a token needs a dozen claims; aud may be a short list.
 */
#define JWT_MAX_VALUES 128

/* A token's claims that depend on the clock; -1: absent (exp never is). */
struct token_times {
	int64_t exp, nbf, iat;
};

/* A token that verified, and what it said. */
struct verified_token {
	size_t len; /* 0: an empty slot */
	char token[TOKEN_CACHE_MAX_LEN];
	struct token_times times;
	int64_t user_id;
	enum mk_role role;
	bool has_email, has_name;
	char email[MAX_EMAIL + 1];
	char name[MAX_NAME + 1];
};

struct mk_jwt_verifier {
	struct mk_jwt_keys keys; /* the algorithm and its keys */
	EVP_MD *sha256;          /* fetched once */
	EVP_MD_CTX *md_ctx;      /* reset per token */
	BIGNUM *p256_order;      /* n, for the ES256 range check */
	int64_t leeway_s;
	int64_t max_lifetime_s;          /* jwt_max_lifetime */
	char *issuer;                    /* NULL: not checked */
	char *audience;                  /* NULL: tokens with aud are refused */
	struct verified_token *verified; /* TOKEN_CACHE_SLOTS of them */
};

void
mk_jwt_verifier_free(struct mk_jwt_verifier *v)
{
	if (v == NULL)
		return;
	mk_jwt_keys_clear(&v->keys);
	EVP_MD_free(v->sha256);
	EVP_MD_CTX_free(v->md_ctx);
	BN_free(v->p256_order);
	free(v->issuer);
	free(v->audience);
	free(v->verified);
	free(v);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

struct mk_jwt_verifier *
mk_jwt_verifier_new(const struct mk_config *config, char *err, size_t errlen)
{
	struct mk_jwt_verifier *v = calloc(1, sizeof(*v));

	if (v != NULL &&
	    (v->verified = calloc(TOKEN_CACHE_SLOTS, sizeof(*v->verified))) ==
		NULL) {
		free(v);
		v = NULL;
	}
	if (v == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (mk_jwt_keys_load(&v->keys, config, err, errlen) != MK_OK)
		goto fail;
	v->leeway_s = config->jwt_leeway_ms / 1000;
	v->max_lifetime_s = config->jwt_max_lifetime_ms / 1000;
	v->issuer = dup_or_null(config->jwt_issuer);
	v->audience = dup_or_null(config->jwt_audience);
	v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	v->md_ctx = EVP_MD_CTX_new();
	if (v->sha256 == NULL || v->md_ctx == NULL ||
	    BN_hex2bn(&v->p256_order,
		"FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC6325"
		"51") == 0 ||
	    (config->jwt_issuer[0] != '\0' && v->issuer == NULL) ||
	    (config->jwt_audience[0] != '\0' && v->audience == NULL)) {
		mk_errf(err, errlen,
		    "OpenSSL or memory failure setting up JWT verification");
		goto fail;
	}
	return v;
fail:
	mk_jwt_verifier_free(v);
	return NULL;
}

size_t
mk_jwt_verifier_key_count(const struct mk_jwt_verifier *v)
{
	return v->keys.nkeys;
}

/* Decodes one segment into the arena; NULL when not canonical base64url. */
static unsigned char *
decode_segment(
    struct mk_arena *arena, const char *seg, size_t len, size_t *out_len)
{
	unsigned char *out =
	    mk_arena_alloc(arena, MK_BASE64URL_DECODED_MAX(len) + 1);

	if (out == NULL || mk_base64url_decode(seg, len, out, out_len) != MK_OK)
		return NULL;
	return out;
}

static bool
verify_hmac(const struct mk_jwt_key *key, const char *signed_part, size_t len,
    const unsigned char *sig)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;

	/* A NULL key re-initialises with the key set at start. */
	if (EVP_MAC_init(key->hmac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(
		key->hmac, (const unsigned char *)signed_part, len) != 1 ||
	    EVP_MAC_final(key->hmac, mac, &mac_len, sizeof(mac)) != 1 ||
	    mac_len != 32)
		return false;
	return CRYPTO_memcmp(mac, sig, 32) == 0;
}

/* Turns a JWS r||s into DER, refusing r or s outside [1, n-1]. */
static unsigned char *
es256_der(
    const struct mk_jwt_verifier *v, const unsigned char *sig, int *der_len)
{
	BIGNUM *r = BN_bin2bn(sig, 32, NULL),
	       *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	ECDSA_SIG *ecdsa = NULL;

	if (r == NULL || s == NULL || BN_is_zero(r) || BN_is_zero(s) ||
	    BN_cmp(r, v->p256_order) >= 0 || BN_cmp(s, v->p256_order) >= 0)
		goto out;
	ecdsa = ECDSA_SIG_new();
	if (ecdsa == NULL || ECDSA_SIG_set0(ecdsa, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by ecdsa now */
	*der_len = i2d_ECDSA_SIG(ecdsa, &der);
	if (*der_len <= 0) {
		OPENSSL_free(der);
		der = NULL;
	}
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(ecdsa);
	return der;
}

static bool
verify_pkey(struct mk_jwt_verifier *v, const struct mk_jwt_key *key,
    const char *signed_part, size_t len, const unsigned char *sig,
    size_t sig_len)
{
	unsigned char *der = NULL;
	int der_len = 0, ok;

	if (v->keys.alg == MK_JWT_ES256) {
		der = es256_der(v, sig, &der_len);
		if (der == NULL)
			return false;
		sig = der;
		sig_len = (size_t)der_len;
	}
	ok = EVP_MD_CTX_reset(v->md_ctx) == 1 &&
	    EVP_DigestVerifyInit_ex(
		v->md_ctx, NULL, "SHA256", NULL, NULL, key->pkey, NULL) == 1 &&
	    EVP_DigestVerify(v->md_ctx, sig, sig_len,
		(const unsigned char *)signed_part, len) == 1;
	OPENSSL_free(der);
	return ok;
}

/* An integer claim (exp, nbf, iat): a JSON integer in [0, 2^53). */
static bool
time_claim(struct json_object *payload, const char *name, bool required,
    int64_t *out, const char **why)
{
	struct json_object *value;

	if (!json_object_object_get_ex(payload, name, &value)) {
		if (required)
			*why = "exp missing";
		*out = -1;
		return !required;
	}
	if (!json_object_is_type(value, json_type_int)) {
		*why = "a time claim is not an integer";
		return false;
	}
	*out = json_object_get_int64(value);
	if (*out < 0 || *out >= MAX_SAFE_INT) {
		*why = "a time claim is out of range";
		return false;
	}
	return true;
}

/* sub: a positive integer, as a JSON integer or a canonical digit string. */
static bool
subject_claim(struct json_object *payload, int64_t *out)
{
	struct json_object *value;

	if (!json_object_object_get_ex(payload, "sub", &value))
		return false;
	if (json_object_is_type(value, json_type_int)) {
		*out = json_object_get_int64(value);
		return *out > 0 && *out < MAX_SAFE_INT;
	}
	if (json_object_is_type(value, json_type_string)) {
		const char *s = json_object_get_string(value);
		size_t len = (size_t)json_object_get_string_len(value);
		int64_t n = 0;

		if (len == 0 || len > 16 || s[0] == '0')
			return false;
		for (size_t i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return false;
			n = n * 10 + (s[i] - '0');
		}
		*out = n;
		/*
		 * The same bound as the number form: ids survive JavaScript
		 * clients.
		 */
		return n > 0 && n < MAX_SAFE_INT;
	}
	return false;
}

/*
 * An optional string member; false when present but not a string or too long.
 */
static bool
optional_string(struct json_object *object, const char *name, size_t max,
    struct json_object **out)
{
	*out = NULL;
	if (!json_object_object_get_ex(object, name, out))
		return true;
	return json_object_is_type(*out, json_type_string) &&
	    (size_t)json_object_get_string_len(*out) <= max;
}

static bool
audience_ok(const char *audience, struct json_object *aud)
{
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), audience) == 0;
	if (json_object_is_type(aud, json_type_array)) {
		size_t n = json_object_array_length(aud);
		bool found = false;

		for (size_t i = 0; i < n; i++) {
			struct json_object *item =
			    json_object_array_get_idx(aud, i);

			if (!json_object_is_type(item, json_type_string))
				return false;
			found = found ||
			    strcmp(json_object_get_string(item), audience) == 0;
		}
		return found;
	}
	return false;
}

static const char *
check_header(const struct mk_jwt_verifier *v, struct json_object *header,
    const char **kid)
{
	static const char *const refused[] = { "crit", "b64", "cty", "jku",
		"jwk", "x5u", "x5c" };
	struct json_object *value;

	if (!json_object_is_type(header, json_type_object))
		return "header is not a JSON object";
	if (!json_object_object_get_ex(header, "alg", &value) ||
	    !json_object_is_type(value, json_type_string) ||
	    strcmp(json_object_get_string(value),
		mk_jwt_alg_names[v->keys.alg]) != 0)
		return "alg is not the configured algorithm";
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (json_object_object_get_ex(header, refused[i], NULL))
			return "header has a refused member (crit, b64, cty, "
			       "jku, jwk, x5u, x5c)";
	}
	if (json_object_object_get_ex(header, "typ", &value) &&
	    (!json_object_is_type(value, json_type_string) ||
		(strcasecmp(json_object_get_string(value), "JWT") != 0 &&
		    strcasecmp(json_object_get_string(value), "at+jwt") != 0)))
		return "typ is not JWT";
	*kid = NULL;
	if (json_object_object_get_ex(header, "kid", &value)) {
		if (!json_object_is_type(value, json_type_string) ||
		    !mk_token_valid(json_object_get_string(value),
			(size_t)json_object_get_string_len(value)))
			return "kid is not a key id";
		*kid = json_object_get_string(value);
	}
	return NULL;
}

/*
 * The claims that depend on the clock, checked on every use of a token
 * (a remembered one too). A stolen token is good until exp, so exp may
 * lie at most jwt_max_lifetime after iat; a token without iat may lie at
 * most that far ahead of now (plus the leeway, for the issuer's clock).
 */
static const char *
check_times(const struct mk_jwt_verifier *v, const struct token_times *times,
    int64_t now)
{
	if (now >= times->exp + v->leeway_s)
		return "token expired";
	if (times->nbf >= 0 && now + v->leeway_s < times->nbf)
		return "token not valid yet (nbf)";
	if (times->iat >= 0 && now + v->leeway_s < times->iat)
		return "token issued in the future (iat)";
	if (times->iat >= 0 && times->exp - times->iat > v->max_lifetime_s)
		return "token lifetime (exp - iat) longer than "
		       "jwt_max_lifetime";
	if (times->iat < 0 &&
	    times->exp - now > v->max_lifetime_s + v->leeway_s)
		return "token without iat expires later than jwt_max_lifetime "
		       "from now";
	return NULL;
}

static const char *
check_claims(const struct mk_jwt_verifier *v, struct mk_arena *arena,
    struct json_object *payload, int64_t now, struct mk_identity *who,
    struct token_times *times)
{
	struct json_object *value, *email, *name;
	int64_t exp, nbf, iat;
	const char *why = NULL;

	if (!json_object_is_type(payload, json_type_object))
		return "payload is not a JSON object";
	if (!time_claim(payload, "exp", true, &exp, &why) ||
	    !time_claim(payload, "nbf", false, &nbf, &why) ||
	    !time_claim(payload, "iat", false, &iat, &why))
		return why;
	times->exp = exp;
	times->nbf = nbf;
	times->iat = iat;
	if ((why = check_times(v, times, now)) != NULL)
		return why;
	if (!subject_claim(payload, &who->user_id))
		return "sub is not a positive integer";
	if (!json_object_object_get_ex(payload, "role", &value) ||
	    !json_object_is_type(value, json_type_string) ||
	    !mk_role_parse(json_object_get_string(value),
		(size_t)json_object_get_string_len(value), &who->role))
		return "role is not admin, moderator or user";
	if (v->issuer != NULL &&
	    (!json_object_object_get_ex(payload, "iss", &value) ||
		!json_object_is_type(value, json_type_string) ||
		strcmp(json_object_get_string(value), v->issuer) != 0))
		return "iss is not the configured issuer";
	if (json_object_object_get_ex(payload, "aud", &value) &&
	    (v->audience == NULL || !audience_ok(v->audience, value)))
		return "aud does not name this service";
	if (v->audience != NULL && value == NULL)
		return "aud missing";
	if (!optional_string(payload, "email", MAX_EMAIL, &email) ||
	    !optional_string(payload, "name", MAX_NAME, &name))
		return "email or name is not a string of sane length";
	who->email = email != NULL
	    ? mk_arena_strndup(arena, json_object_get_string(email),
		  (size_t)json_object_get_string_len(email))
	    : NULL;
	who->name = name != NULL
	    ? mk_arena_strndup(arena, json_object_get_string(name),
		  (size_t)json_object_get_string_len(name))
	    : NULL;
	if ((email != NULL && who->email == NULL) ||
	    (name != NULL && who->name == NULL))
		return "out of memory";
	return NULL;
}

/* The slot of a token in the table: FNV-1a, a spread, not a secret. */
static size_t
token_slot(const char *token, size_t len)
{
	return (size_t)(mk_fnv1a64(token, len) % TOKEN_CACHE_SLOTS);
}

/* Keeps a token that just verified, with its claims. */
static void
remember_token(struct verified_token *slot, const char *token, size_t len,
    const struct token_times *times, const struct mk_identity *who)
{
	size_t email_len = who->email != NULL ? strlen(who->email) : 0;
	size_t name_len = who->name != NULL ? strlen(who->name) : 0;

	/* optional_string bounds them; a longer one is simply not kept. */
	if (email_len > MAX_EMAIL || name_len > MAX_NAME)
		return;
	memcpy(slot->token, token, len);
	slot->len = len;
	slot->times = *times;
	slot->user_id = who->user_id;
	slot->role = who->role;
	slot->has_email = who->email != NULL;
	slot->has_name = who->name != NULL;
	memcpy(slot->email, slot->has_email ? who->email : "", email_len + 1);
	memcpy(slot->name, slot->has_name ? who->name : "", name_len + 1);
}

/* A known token: its time claims against now, then its identity. */
static enum mk_err
recall_token(const struct mk_jwt_verifier *v, struct mk_arena *arena,
    const struct verified_token *seen, int64_t now, struct mk_identity *who,
    const char **why)
{
	if ((*why = check_times(v, &seen->times, now)) != NULL)
		return MK_EAUTH;
	who->user_id = seen->user_id;
	who->role = seen->role;
	who->email = seen->has_email
	    ? mk_arena_strndup(arena, seen->email, strlen(seen->email))
	    : NULL;
	who->name = seen->has_name
	    ? mk_arena_strndup(arena, seen->name, strlen(seen->name))
	    : NULL;
	if ((seen->has_email && who->email == NULL) ||
	    (seen->has_name && who->name == NULL))
		return MK_ENOMEM;
	return MK_OK;
}

enum mk_err
mk_jwt_verify(struct mk_jwt_verifier *v, struct mk_arena *arena,
    const char *token, size_t len, int64_t now, struct mk_identity *who,
    const char **why)
{
	const char *dot1, *dot2, *kid = NULL;
	struct json_object *header, *payload;
	const struct mk_jwt_key *key;
	struct token_times times = { .exp = 0, .nbf = -1, .iat = -1 };
	struct verified_token *seen;
	unsigned char *raw, *sig;
	size_t raw_len, sig_len, signed_len;
	enum mk_err rc;
	bool ok;

	*why = NULL;
	if (len > MK_JWT_MAX_LEN)
		return *why = "token longer than 8 KiB", MK_EAUTH;
	seen = &v->verified[token_slot(token, len)];
	if (len > 0 && len <= TOKEN_CACHE_MAX_LEN && seen->len == len &&
	    CRYPTO_memcmp(seen->token, token, len) == 0)
		return recall_token(v, arena, seen, now, who, why);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL
	    ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
	    : NULL;
	if (dot2 == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return *why = "not three segments", MK_EAUTH;
	signed_len = (size_t)(dot2 - token);
	if (dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len)
		return *why = "an empty segment", MK_EAUTH;

	raw = decode_segment(arena, token, (size_t)(dot1 - token), &raw_len);
	if (raw == NULL)
		return *why = "header is not canonical base64url", MK_EAUTH;
	rc = mk_json_parse_in(
	    arena, (const char *)raw, raw_len, 4, JWT_MAX_VALUES, &header, why);
	if (rc == MK_ENOMEM)
		return rc;
	if (rc != MK_OK)
		return *why = "header is not strict JSON", MK_EAUTH;
	if ((*why = check_header(v, header, &kid)) != NULL)
		return MK_EAUTH;
	key = mk_jwt_keys_find(&v->keys, kid);
	if (key == NULL)
		return *why = kid != NULL ? "kid names no key"
					  : "no key for tokens without kid",
		       MK_EAUTH;

	sig = decode_segment(arena, dot2 + 1, len - signed_len - 1, &sig_len);
	if (sig == NULL)
		return *why = "signature is not canonical base64url", MK_EAUTH;
	if (sig_len != key->signature_len)
		return *why = "signature has the wrong length", MK_EAUTH;
	if (v->keys.alg == MK_JWT_HS256)
		ok = verify_hmac(key, token, signed_len, sig);
	else
		ok = verify_pkey(v, key, token, signed_len, sig, sig_len);
	if (!ok)
		return *why = "bad signature", MK_EAUTH;

	/* Only a signed payload is looked at. */
	raw = decode_segment(
	    arena, dot1 + 1, (size_t)(dot2 - dot1 - 1), &raw_len);
	if (raw == NULL)
		return *why = "payload is not canonical base64url", MK_EAUTH;
	rc = mk_json_parse_in(arena, (const char *)raw, raw_len, 8,
	    JWT_MAX_VALUES, &payload, why);
	if (rc == MK_ENOMEM)
		return rc;
	if (rc != MK_OK)
		return *why = "payload is not strict JSON", MK_EAUTH;
	if ((*why = check_claims(v, arena, payload, now, who, &times)) != NULL)
		return MK_EAUTH;
	if (len <= TOKEN_CACHE_MAX_LEN)
		remember_token(seen, token, len, &times, who);
	return MK_OK;
}

enum mk_err
mk_jwt_sign_hs256(struct mk_buf *out, const char *header_json,
    const char *payload_json, const void *secret, size_t secret_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0, start = out->len;

	mk_base64url_encode(out, header_json, strlen(header_json));
	mk_buf_putc(out, '.');
	mk_base64url_encode(out, payload_json, strlen(payload_json));
	if (out->oom)
		return MK_ENOMEM;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
		(const unsigned char *)out->data + start, out->len - start, mac,
		sizeof(mac), &mac_len) == NULL)
		return MK_EINTERNAL;
	mk_buf_putc(out, '.');
	mk_base64url_encode(out, mac, mac_len);
	return out->oom ? MK_ENOMEM : MK_OK;
}
