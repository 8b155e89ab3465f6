/*
 * JSON Web Tokens (auth layer); see jwt.h.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <limits.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/buf.h"

void
mk_base64url_encode(struct mk_buf *out, const void *bytes, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = bytes;
	size_t i = 0;

	if (!mk_buf_reserve(out, (len + 2) / 3 * 4))
		return;
	for (; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		char quad[4] = { alphabet[v >> 18], alphabet[(v >> 12) & 63],
			alphabet[(v >> 6) & 63], alphabet[v & 63] };

		mk_buf_append(out, quad, 4);
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		char pair[2] = { alphabet[v >> 18], alphabet[(v >> 12) & 63] };

		mk_buf_append(out, pair, 2);
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		char triple[3] = { alphabet[v >> 18], alphabet[(v >> 12) & 63],
			alphabet[(v >> 6) & 63] };

		mk_buf_append(out, triple, 3);
	}
}

enum mk_err
mk_jwt_sign_hs256(struct mk_buf *out, const char *header_json,
    const char *payload_json, const void *secret, size_t secret_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t start = out->len;

	mk_base64url_encode(out, header_json, strlen(header_json));
	mk_buf_putc(out, '.');
	mk_base64url_encode(out, payload_json, strlen(payload_json));
	if (out->oom)
		return MK_ENOMEM;
	if (secret_len > (size_t)INT_MAX ||
	    HMAC(EVP_sha256(), secret, (int)secret_len,
	    (const unsigned char *)out->data + start, out->len - start, mac, &mac_len) == NULL)
		return MK_EINTERNAL;
	mk_buf_putc(out, '.');
	mk_base64url_encode(out, mac, mac_len);
	return out->oom ? MK_ENOMEM : MK_OK;
}
