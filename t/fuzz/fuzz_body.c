/*
 * libFuzzer target: request bodies — the strict JSON parser and the market
 * and position validators behind it. The first byte picks the validator
 * (create, replace, patch, position); the rest is the body. Finds crashes,
 * leaks, and a body that validates into values breaking the contract
 * (a name that is empty or over 200 characters, an unknown status, an
 * amount that is not canonical).
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json_parse.h"
#include "markets/model.h"
#include "markets/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
characters(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_arena *arena;
	struct json_object *body = NULL;
	struct mk_market_input in;
	struct mk_buf details;
	const char *why;
	enum mk_err rc;
	char canonical[MK_AMOUNT_TEXT_MAX];

	if (size == 0)
		return 0;
	arena = mk_arena_new(0);
	if (arena == NULL)
		return 0;
	if (mk_json_parse_in(arena, (const char *)data + 1, size - 1,
		MK_JSON_MAX_DEPTH, MK_JSON_BODY_MAX_VALUES, &body,
		&why) != MK_OK)
		goto out;
	mk_buf_init(&details, arena);
	if (data[0] % 4 == 3)
		rc = mk_position_validate(arena, body, &in, &details);
	else
		rc = mk_market_validate(arena, body,
		    (enum mk_market_write)(data[0] % 4), &in, &details);
	if (rc == MK_OK) {
		if (in.name != NULL &&
		    (in.name[0] == '\0' || characters(in.name) > 200))
			__builtin_trap();
		if (in.status != NULL &&
		    mk_market_status_parse(in.status) == NULL)
			__builtin_trap();
		if (in.amount != NULL &&
		    (!mk_amount_parse(in.amount, canonical) ||
			strcmp(canonical, in.amount) != 0))
			__builtin_trap(); /* amounts come out canonical */
	} else if (rc == MK_EINVAL &&
	    (details.data == NULL || details.data[0] != '[')) {
		__builtin_trap(); /* a refusal always says why */
	}
out:
	mk_arena_free(arena);
	return 0;
}
