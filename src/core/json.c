/*
 * JSON output helpers (core layer); see json.h.
 */
#include <assert.h>
#include <stdbool.h>

#include "core/buf.h"
#include "core/json.h"

size_t
mk_utf8_sequence_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		if (avail >= 2 && (s[1] & 0xC0) == 0x80)
			return 2;
		return 0;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (avail < 4 || (s[1] & 0xC0) != 0x80 ||
		    (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0; /* beyond U+10FFFF */
		return 4;
	}
	return 0;
}

void
mk_json_string(struct mk_buf *buf, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, seq;

	mk_buf_putc(buf, '"');
	while (i < len) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		/* Flush the plain run before the byte that needs care. */
		mk_buf_append(buf, p + i - run, run);
		run = 0;
		if (c >= 0x80) {
			seq = mk_utf8_sequence_len(p + i, len - i);
			if (seq == 0) {
				mk_buf_append(buf, "\\ufffd", 6);
				i++;
			} else if (seq == 3 && c == 0xE2 && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
				/*
				 * Line separators break JavaScript consumers of
				 * JSON.
				 */
				mk_buf_append(buf,
				    p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029",
				    6);
				i += 3;
			} else {
				mk_buf_append(buf, p + i, seq);
				i += seq;
			}
			continue;
		}
		switch (c) {
		case '"':
			mk_buf_append(buf, "\\\"", 2);
			break;
		case '\\':
			mk_buf_append(buf, "\\\\", 2);
			break;
		case '\n':
			mk_buf_append(buf, "\\n", 2);
			break;
		case '\r':
			mk_buf_append(buf, "\\r", 2);
			break;
		case '\t':
			mk_buf_append(buf, "\\t", 2);
			break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4],
				hex[c & 15] };

			mk_buf_append(buf, esc, sizeof(esc));
		}
		}
		i++;
	}
	mk_buf_append(buf, p + i - run, run);
	mk_buf_putc(buf, '"');
}

void
mk_json_cstr(struct mk_buf *buf, const char *s)
{
	size_t len = 0;

	if (s == NULL) {
		mk_buf_append(buf, "null", 4);
		return;
	}
	while (s[len] != '\0')
		len++;
	mk_json_string(buf, s, len);
}

void
mk_json_key(struct mk_buf *out, bool *first, const char *name)
{
	if (!*first)
		mk_buf_putc(out, ',');
	*first = false;
	mk_buf_putc(out, '"');
	mk_buf_puts(out, name);
	mk_buf_append(out, "\":", 2);
}

void
mk_json_members(struct mk_buf *out, bool *first, const void *obj,
    const struct mk_json_member *members, size_t n, uint32_t mask)
{
	const char *base = obj;

	assert(n <= 32);
	for (size_t i = 0; i < n; i++) {
		const struct mk_json_member *m = &members[i];
		const void *at = base + m->offset;
		const char *text;

		if (!(mask & (uint32_t)1 << i))
			continue;
		mk_json_key(out, first, m->name);
		switch (m->kind) {
		case MK_JSON_INT:
			mk_buf_put_i64(out, *(const int64_t *)at);
			break;
		case MK_JSON_UINT:
			mk_buf_put_u64(out, *(const unsigned *)at);
			break;
		case MK_JSON_STRING:
			mk_json_cstr(out, *(const char *const *)at);
			break;
		case MK_JSON_RAW:
			text = *(const char *const *)at;
			mk_buf_puts(out, text != NULL ? text : "null");
			break;
		}
	}
}

void
mk_json_object(struct mk_buf *out, const void *obj,
    const struct mk_json_member *members, size_t n)
{
	bool first = true;

	mk_buf_putc(out, '{');
	mk_json_members(out, &first, obj, members, n, UINT32_MAX);
	mk_buf_putc(out, '}');
}

void
mk_json_array(struct mk_buf *out, const void *items, size_t n, size_t size,
    mk_json_write_fn *write)
{
	mk_buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			mk_buf_putc(out, ',');
		write(out, (const char *)items + i * size);
	}
	mk_buf_putc(out, ']');
}
