/*
 * libFuzzer target: the public-key form detector (auth/keyform.c), which
 * reads every configured secret (PEM armour, DER through OpenSSL's
 * decoders, base64 and base64url, OpenSSH lines and blobs, JWK JSON).
 * Arbitrary bytes must neither crash nor leak, and an answer is always
 * one of its names (a NUL-free static string) or NULL.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/keyform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *form = mk_keyform_public(data, size);

	if (form != NULL && (form[0] == '\0' || strlen(form) > 64))
		__builtin_trap();
	return 0;
}
