/*
 * Where the application is mounted (http layer); see base_path.h. Raw
 * (percent-encoded) request bytes are compared with decoded text
 * (base_path, PATH_INFO) an escape at a time, so nothing is decoded into
 * memory: a request costs no allocation for its base. A '/' of the
 * decoded text matches only a literal '/', never %2F, so that the base
 * always ends where a segment does.
 */
#include <string.h>

#include "core/buf.h"
#include "http/base_path.h"
#include "http/query.h"

/* The byte of the escape at raw[i] ("%XX"), or -1 when there is none. */
static int
escape_at(const char *raw, size_t len, size_t i)
{
	int hi, lo;

	if (i + 3 > len || raw[i] != '%')
		return -1;
	hi = mk_hex_value((unsigned char)raw[i + 1]);
	lo = mk_hex_value((unsigned char)raw[i + 2]);
	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

/*
 * Matches the decoded text (text_len bytes) against the start of raw.
 * Returns the raw bytes it spans, or 0 when raw does not start with it
 * (text is never empty here). The span must end raw or be followed by
 * '/': a prefix of a segment ("/mark" of "/markets") is no match.
 */
static size_t
match_prefix(const char *raw, size_t len, const char *text, size_t text_len)
{
	size_t i = 0;

	for (size_t k = 0; k < text_len; k++) {
		int byte = escape_at(raw, len, i);

		if (i < len && raw[i] == text[k]) {
			i++;
		} else if (byte >= 0 && byte == (unsigned char)text[k] &&
		    text[k] != '/') {
			i += 3;
		} else {
			return 0;
		}
	}
	return i == len || raw[i] == '/' ? i : 0;
}

/*
 * Matches the decoded text against the end of raw, backwards. Returns
 * true with *start at the first raw byte of the match. In a valid path a
 * '%' always begins an escape and its two hex digits are never '%', so
 * an escape read backwards is the one read forwards.
 */
static bool
match_suffix(const char *raw, size_t len, const char *text, size_t text_len,
    size_t *start)
{
	size_t j = len, k = text_len;

	while (k > 0) {
		int byte = j >= 3 ? escape_at(raw, len, j - 3) : -1;

		if (byte >= 0) {
			if (byte != (unsigned char)text[k - 1] ||
			    text[k - 1] == '/')
				return false;
			j -= 3;
		} else if (j > 0 && raw[j - 1] == text[k - 1]) {
			j--;
		} else {
			return false;
		}
		k--;
	}
	*start = j;
	return true;
}

/* A bad escape or a NUL in raw's first len bytes: MK_EBADREQUEST. */
static enum mk_err
check_escapes(const char *raw, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\0')
			return MK_EBADREQUEST;
		if (raw[i] != '%')
			continue;
		if (escape_at(raw, len, i) <= 0)
			return MK_EBADREQUEST;
		i += 2;
	}
	return MK_OK;
}

enum mk_err
mk_base_path_find(const char *path, size_t path_len, const char *configured,
    const char *script_name, const char *path_info, size_t *base_len)
{
	size_t start;

	*base_len = 0;
	if (configured != NULL && configured[0] != '\0') {
		if (strcmp(configured, "/") == 0)
			return MK_OK;
		start = match_prefix(
		    path, path_len, configured, strlen(configured));
		if (start == 0)
			return MK_ENOTFOUND;
		*base_len = start;
		return check_escapes(path, start);
	}
	if (path_info == NULL || path_info[0] == '\0')
		return MK_OK;
	if (path_info[0] == '/' &&
	    match_suffix(
		path, path_len, path_info, strlen(path_info), &start)) {
		*base_len = start;
		return check_escapes(path, start);
	}
	if (script_name == NULL || script_name[0] != '/')
		return MK_OK;
	if (script_name[1] != '\0')
		*base_len = match_prefix(
		    path, path_len, script_name, strlen(script_name));
	if (*base_len == 0) {
		const char *slash = strrchr(script_name, '/');

		/* "/markets.fcgi": its directory is the root. */
		if (slash != script_name)
			*base_len = match_prefix(path, path_len, script_name,
			    (size_t)(slash - script_name));
	}
	return check_escapes(path, *base_len);
}

/* Bytes a URI path may hold as they are (RFC 3986 pchar and '/'). */
static bool
uri_byte(unsigned char c, bool query)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	if (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL)
		return true;
	return query && c == '?';
}

void
mk_base_path_put(struct mk_buf *out, const char *raw, size_t len, bool query)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0;

	/*
	 * A path that starts "//" is a network-path reference: a client
	 * would take what follows for a host ("//evil.example/../api", a
	 * derived base or raw path the front resolved). One '/' only.
	 */
	while (!query && i + 1 < len && raw[i] == '/' && raw[i + 1] == '/')
		i++;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (uri_byte(c, query)) {
			mk_buf_putc(out, (char)c);
		} else if (c == '%' && escape_at(raw, len, i) >= 0) {
			mk_buf_append(out, raw + i, 3);
			i += 2;
		} else {
			char escape[3] = { '%', hex[c >> 4], hex[c & 15] };

			mk_buf_append(out, escape, 3);
		}
	}
}
