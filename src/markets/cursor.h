/*
 * List cursors (markets layer): the opaque `cursor` of keyset pagination.
 * A cursor carries the position (the last row's sort key and id) and the
 * query it belongs to (sort, status, creator_id), and a MAC over all of it
 * with the server's cursor key, so a client can neither forge a position
 * nor replay a cursor under another query. Its text is base64url.
 */
#ifndef MK_CURSOR_H
#define MK_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "markets/model.h"

struct mk_arena;
struct mk_buf;

#define MK_CURSOR_KEY_LEN 32
#define MK_CURSOR_MAX_LEN 1024 /* text; a sort key is at most a name */

struct mk_cursor {
	enum mk_market_sort sort;
	const char *status; /* NULL: any */
	int64_t creator_id; /* 0: any */
	/* the last row's sort key (cursor text of the column) */
	const char *key;
	int64_t id; /* the last row's id */
};

/* Appends the cursor's text. */
void mk_cursor_encode(struct mk_buf *out, const unsigned char *mac_key,
    const struct mk_cursor *cursor);

/*
 * Reads a cursor's text (len bytes) back into *out (strings in the arena).
 * Returns MK_OK, or MK_EBADREQUEST for anything but a cursor this server
 * made (bad encoding, bad MAC, wrong version, malformed fields), or
 * MK_ENOMEM.
 */
enum mk_err mk_cursor_decode(struct mk_arena *arena,
    const unsigned char *mac_key, const char *text, size_t len,
    struct mk_cursor *out);

#endif
