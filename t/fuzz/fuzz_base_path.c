/*
 * libFuzzer target: the base path (src/http/base_path.c) and the links
 * written from it (src/http/links.c). The input is four lines: base_path
 * (used only when the configuration's rule accepts it), SCRIPT_NAME,
 * PATH_INFO, REQUEST_URI. Finds crashes, a base that does not end at a
 * segment or runs past the path, and written links holding bytes a
 * header or a URI may not.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/config_check.h"
#include "http/base_path.h"
#include "http/links.h"
#include "http/request.h"
#include "http/response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of the input (NUL-terminated in arena), or "". */
static char *
next_line(struct mk_arena *arena, const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t len = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *line = mk_arena_strndup(arena, *p, len);

	*p = nl != NULL ? nl + 1 : end;
	return line;
}

/* Traps on a byte no header value or URI reference may hold. */
static void
check_uri_bytes(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c <= 0x20 || c >= 0x7F || c == '"' || c == '<' ||
		    c == '>' || c == '\\' || c == '#')
			__builtin_trap();
		if (c == '%' &&
		    (i + 2 >= len ||
			!strchr("0123456789ABCDEFabcdef", text[i + 1]) ||
			!strchr("0123456789ABCDEFabcdef", text[i + 2]) ||
			text[i + 1] == '\0' || text[i + 2] == '\0'))
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_arena *arena;
	const char *p = (const char *)data, *end = p + size;
	char *configured, *script_name, *path_info, *uri;
	struct mk_param params[3];
	struct mk_config config = { 0 };
	struct mk_request req = { 0 };
	struct mk_response resp;
	size_t base_len, path_len;

	if (memchr(data, '\0', size) != NULL)
		return 0; /* FastCGI params never hold a NUL */
	if ((arena = mk_arena_new(0)) == NULL)
		return 0;
	configured = next_line(arena, &p, end);
	script_name = next_line(arena, &p, end);
	path_info = next_line(arena, &p, end);
	uri = next_line(arena, &p, end);
	if (configured == NULL || script_name == NULL || path_info == NULL ||
	    uri == NULL)
		goto out;
	if (mk_config_check_base_path(configured) != NULL)
		configured = "";
	path_len = strcspn(uri, "?");
	if (mk_base_path_find(uri, path_len, configured, script_name, path_info,
		&base_len) == MK_OK &&
	    base_len > 0 &&
	    (base_len > path_len ||
		(base_len < path_len && uri[base_len] != '/')))
		__builtin_trap();

	/* The whole request target, then the links written from it. */
	config.base_path = configured;
	params[0] = (struct mk_param){ "REQUEST_URI", uri, 11, strlen(uri) };
	params[1] = (struct mk_param){ "SCRIPT_NAME", script_name, 11,
		strlen(script_name) };
	params[2] =
	    (struct mk_param){ "PATH_INFO", path_info, 9, strlen(path_info) };
	req.arena = arena;
	req.config = &config;
	req.params = params;
	req.nparams = 3;
	if (mk_request_parse_target(&req) != MK_OK)
		goto out;
	mk_response_init(&resp, arena);
	if (mk_links_location(&resp, &req, "/api/markets/7") != MK_OK)
		__builtin_trap();
	mk_links_next(&resp, &req, "c_U-r", 5);
	if (resp.headers.oom)
		goto out;
	{
		const char *h = resp.headers.data, *hend = h + resp.headers.len;
		const char *crlf = memmem(h, resp.headers.len, "\r\n", 2);
		const char *link;

		/* Two header lines exactly: nothing split them. */
		if (crlf == NULL || strncmp(h, "Location: ", 10) != 0)
			__builtin_trap();
		check_uri_bytes(h + 10, (size_t)(crlf - h - 10));
		link = crlf + 2;
		if (hend - link < 9 || strncmp(link, "Link: <", 7) != 0 ||
		    memmem(link, (size_t)(hend - link), ">; rel=\"next\"\r\n",
			15) != hend - 15)
			__builtin_trap();
		check_uri_bytes(link + 7, (size_t)(hend - 15 - link - 7));
	}
out:
	mk_arena_free(arena);
	return 0;
}
