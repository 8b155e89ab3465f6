/*
 * List cursors (markets layer); see cursor.h. The plain form is
 * "1␟sort␟status␟creator_id␟id␟key" (␟ = 0x1F), the key last so that it
 * may hold anything; the text is base64url(plain ‖ first 16 bytes of
 * HMAC-SHA256(mac_key, plain)). The MAC is checked, in constant time,
 * before anything in the plain form is believed.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/base64url.h"
#include "core/buf.h"
#include "markets/cursor.h"

#define SEP '\x1f'
#define MAC_LEN 16

static int
mac(const unsigned char *key, const void *data, size_t len, unsigned char *out)
{
	unsigned char full[EVP_MAX_MD_SIZE];
	size_t full_len = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key,
		MK_CURSOR_KEY_LEN, data, len, full, sizeof(full),
		&full_len) == NULL ||
	    full_len < MAC_LEN)
		return -1;
	memcpy(out, full, MAC_LEN);
	return 0;
}

void
mk_cursor_encode(
    struct mk_buf *out, const unsigned char *mac_key, const struct mk_cursor *c)
{
	char plain[MK_CURSOR_MAX_LEN];
	unsigned char tag[MAC_LEN];
	struct mk_buf p;

	mk_buf_init_fixed(&p, plain, sizeof(plain) - MAC_LEN);
	mk_buf_printf(&p, "1%c%d%c%s%c%lld%c%lld%c", SEP, (int)c->sort, SEP,
	    c->status != NULL ? c->status : "", SEP, (long long)c->creator_id,
	    SEP, (long long)c->id, SEP);
	mk_buf_puts(&p, c->key != NULL ? c->key : "");
	if (p.oom || mac(mac_key, p.data, p.len, tag) != 0) {
		out->oom = true;
		return;
	}
	memcpy(plain + p.len, tag, MAC_LEN);
	mk_base64url_encode(out, plain, p.len + MAC_LEN);
}

/* Reads a canonical decimal integer >= 0 from [s, end). */
static bool
read_int(const char *s, const char *end, int64_t *out)
{
	int64_t v = 0;

	if (s == end || (end - s > 1 && s[0] == '0') || end - s > 18)
		return false;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

enum mk_err
mk_cursor_decode(struct mk_arena *arena, const unsigned char *mac_key,
    const char *text, size_t len, struct mk_cursor *out)
{
	unsigned char *raw, tag[MAC_LEN];
	const char *fields[5], *p, *end;
	size_t raw_len;
	int64_t sort;

	if (len == 0 || len > MK_CURSOR_MAX_LEN * 2)
		return MK_EBADREQUEST;
	raw = mk_arena_alloc(arena, MK_BASE64URL_DECODED_MAX(len) + 1);
	if (raw == NULL)
		return MK_ENOMEM;
	if (mk_base64url_decode(text, len, raw, &raw_len) != MK_OK ||
	    raw_len <= MAC_LEN)
		return MK_EBADREQUEST;
	raw_len -= MAC_LEN;
	if (mac(mac_key, raw, raw_len, tag) != 0)
		return MK_EINTERNAL;
	if (CRYPTO_memcmp(tag, raw + raw_len, MAC_LEN) != 0)
		return MK_EBADREQUEST;
	raw[raw_len] = '\0';
	if (memchr(raw, '\0', raw_len) != NULL)
		return MK_EBADREQUEST;
	/* Split off version, sort, status, creator, id; the key is the rest. */
	p = (const char *)raw;
	end = p + raw_len;
	for (int i = 0; i < 5; i++) {
		const char *sep = memchr(p, SEP, (size_t)(end - p));

		if (sep == NULL)
			return MK_EBADREQUEST;
		fields[i] = p;
		p = sep + 1;
	}
	if (fields[1] - fields[0] != 2 || fields[0][0] != '1')
		return MK_EBADREQUEST;
	if (!read_int(fields[1], fields[2] - 1, &sort) ||
	    sort >= MK_SORT__MAX ||
	    !read_int(fields[3], fields[4] - 1, &out->creator_id) ||
	    !read_int(fields[4], p - 1, &out->id) || out->id <= 0)
		return MK_EBADREQUEST;
	out->sort = (enum mk_market_sort)sort;
	out->status = NULL;
	if (fields[3] - 1 > fields[2]) {
		char *status = mk_arena_strndup(
		    arena, fields[2], (size_t)(fields[3] - 1 - fields[2]));

		if (status == NULL)
			return MK_ENOMEM;
		out->status = mk_market_status_parse(status);
		if (out->status == NULL)
			return MK_EBADREQUEST;
	}
	out->key = mk_arena_strndup(arena, p, (size_t)(end - p));
	return out->key != NULL ? MK_OK : MK_ENOMEM;
}
