/*
 * libFuzzer target: the JWT verifier (base64url, strict JSON, header and
 * claim checks, HMAC). The first byte picks a mode:
 *  - even: the rest is a token, verified as it comes (what an attacker
 *    controls end to end);
 *  - odd: the rest is "header JSON \n payload JSON", signed here with the
 *    verifier's own secret, so the fuzzer reaches the checks that only
 *    run behind a good signature (claims, types, ranges, roles).
 * Finds crashes, leaks, undefined behaviour, and a token that verifies
 * with a non-positive sub or an unknown role.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/roles.h"
#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

#define SECRET "fuzz-secret-0123456789abcdef0123456789"
#define NOW 1800000000

static struct mk_jwt_verifier *verifier;
static struct mk_arena *arena;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mk_config *config = mk_config_new();
	char err[256];

	(void)argc;
	(void)argv;
	mk_log_open("/dev/null", MK_LOG_ERROR);
	if (config == NULL)
		return -1;
	free(config->jwt_secret);
	config->jwt_secret = strdup(SECRET);
	verifier = config->jwt_secret != NULL
	    ? mk_jwt_verifier_new(config, err, sizeof(err))
	    : NULL;
	mk_config_free(config);
	arena = mk_arena_new(0);
	return verifier != NULL && arena != NULL ? 0 : -1;
}

/* Signs "header.payload" with the secret, the way an issuer would. */
static void
mint(struct mk_buf *token, const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t header_len = nl != NULL ? (size_t)(nl - data) : size;
	char *header = mk_arena_strndup(arena, (const char *)data, header_len);
	char *payload =
	    mk_arena_strndup(arena, nl != NULL ? (const char *)nl + 1 : "",
		nl != NULL ? size - header_len - 1 : 0);

	/*
	 * Strings with a NUL cannot go through the C-string signer: skip them.
	 */
	if (header == NULL || payload == NULL || strlen(header) != header_len ||
	    strlen(payload) != (nl != NULL ? size - header_len - 1 : 0))
		return;
	(void)mk_jwt_sign_hs256(token, header, payload, SECRET, strlen(SECRET));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_identity who = { 0 };
	struct mk_buf token;
	const char *why = NULL;

	if (size == 0)
		return 0;
	mk_buf_init(&token, arena);
	if (data[0] & 1)
		mint(&token, data + 1, size - 1);
	else
		mk_buf_append(&token, data + 1, size - 1);
	if (token.len > 0 && !token.oom &&
	    mk_jwt_verify(verifier, arena, token.data, token.len, NOW, &who,
		&why) == MK_OK) {
		if (who.user_id <= 0 || (unsigned)who.role >= MK_ROLE__MAX)
			__builtin_trap();
	}
	mk_arena_reset(arena);
	return 0;
}
