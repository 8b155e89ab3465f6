/*
 * libFuzzer target: the list cursor decoder. Arbitrary text must be
 * refused unless it is a cursor this server made, and a decoded cursor
 * must be well-formed (known sort, positive id, NUL-free key). The first
 * byte picks a mode: odd bytes build a real cursor from the rest (so the
 * fields behind the MAC are reached) and check the round trip.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "markets/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[MK_CURSOR_KEY_LEN] =
    "fuzz-cursor-key-0123456789abcdef";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_cursor c, back;
	struct mk_buf text;

	if (arena == NULL || size == 0) {
		mk_arena_free(arena);
		return 0;
	}
	if (data[0] & 1) {
		char *k =
		    mk_arena_strndup(arena, (const char *)data + 1, size - 1);

		c = (struct mk_cursor){
			.sort = (enum mk_market_sort)(data[0] % MK_SORT__MAX),
			.status = (data[0] & 2) ? "active" : NULL,
			.creator_id = (data[0] & 4) ? 42 : 0,
			.key = k,
			.id = 1 + (int64_t)size,
		};
		mk_buf_init(&text, arena);
		if (k != NULL && strlen(k) == size - 1) {
			mk_cursor_encode(&text, key, &c);
			if (!text.oom) {
				if (mk_cursor_decode(arena, key, text.data,
					text.len, &back) != MK_OK ||
				    back.sort != c.sort || back.id != c.id ||
				    back.creator_id != c.creator_id ||
				    strcmp(back.key, c.key) != 0)
					/* what we write we must read back */
					__builtin_trap();
			}
		}
	} else if (mk_cursor_decode(arena, key, (const char *)data + 1,
		       size - 1, &back) == MK_OK) {
		if ((unsigned)back.sort >= MK_SORT__MAX || back.id <= 0 ||
		    back.key == NULL)
			__builtin_trap();
	}
	mk_arena_free(arena);
	return 0;
}
