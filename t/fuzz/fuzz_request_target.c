/*
 * libFuzzer target: the query-string parser and the request target
 * decoder (percent-decoding, segment split, query pairs). The input is a
 * REQUEST_URI. Finds crashes and decoding that lets a NUL through.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "http/query.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_param param;
	struct mk_request req = { 0 };
	struct mk_query query;
	char *uri;

	if (arena == NULL)
		return 0;
	uri = mk_arena_strndup(arena, (const char *)data, size);
	if (uri == NULL || memchr(data, '\0', size) != NULL)
		/* FastCGI params never hold a NUL: the decoder refuses them */
		goto out;
	param = (struct mk_param){ "REQUEST_URI", uri, 11, size };
	req.arena = arena;
	req.params = &param;
	req.nparams = 1;
	if (mk_request_parse_target(&req) == MK_OK) {
		for (size_t i = 0; i < req.nsegments; i++) {
			if (memchr(req.segments[i], '\0',
				strlen(req.segments[i]) + 1) !=
			    req.segments[i] + strlen(req.segments[i]))
				__builtin_trap();
		}
		for (size_t i = 0; i < req.query.count; i++) {
			if (strlen(req.query.pairs[i].key) !=
				req.query.pairs[i].key_len ||
			    strlen(req.query.pairs[i].value) !=
				req.query.pairs[i].value_len)
				/* a NUL slipped through decoding */
				__builtin_trap();
		}
	}
	/* The raw query parser on the whole input too. */
	(void)mk_query_parse(arena, (const char *)data, size, &query);
out:
	mk_arena_free(arena);
	return 0;
}
