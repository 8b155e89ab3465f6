/*
 * libFuzzer target: the whole request path behind the socket. Arbitrary
 * bytes are fed, in arbitrary chunks, to a FastCGI connection (record
 * parser, params decoder, body rules) wired to the real http layer
 * (request-id, target decoding, router, handlers, error writer). Finds:
 * crashes, leaks, undefined behaviour, and output that is not whole
 * FastCGI records.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "app.h"
#include "core/config.h"
#include "core/log.h"
#include "server/conn.h"
#include "server/fcgi.h"

static struct mk_config *config;
static struct mk_app *app;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] =
	    "cursor_secret = fuzz-cursor-secret-0123456789abcdef\n";
	char err[MK_CONFIG_ERR_MAX];

	(void)argc;
	(void)argv;
	mk_log_open("/dev/null", MK_LOG_ERROR);
	config = mk_config_new();
	if (config == NULL ||
	    mk_config_parse(config, "fuzz", text, sizeof(text) - 1, err,
		sizeof(err)) != MK_OK)
		return -1;
	config->max_body = 4096; /* small, so the fuzzer reaches the cap */
	app = mk_app_new(config);
	return config != NULL && app != NULL ? 0 : -1;
}

/* Every byte the connection queued must be whole, well-formed records. */
static void
check_output(const struct mk_conn *conn)
{
	size_t pos = 0;

	while (pos < conn->out.len) {
		struct mk_fcgi_record rec;

		if (mk_fcgi_record_parse((const uint8_t *)conn->out.data + pos,
			conn->out.len - pos, &rec) != MK_FCGI_RECORD)
			__builtin_trap();
		pos += rec.total_len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_conn *conn =
	    mk_conn_new(-1, mk_app_http(app), config->max_body, 16);
	size_t pos = 0;

	if (conn == NULL)
		return 0;
	/* The first byte picks the chunk size: records split anywhere. */
	while (pos < size) {
		size_t chunk = 1 + (size > 0 ? data[0] % 64 : 0) * 37;

		if (chunk > size - pos)
			chunk = size - pos;
		mk_buf_append(&conn->in, data + pos, chunk);
		pos += chunk;
		if (mk_conn_process(conn, (int64_t)pos) != MK_OK ||
		    conn->state == MK_CONN_CLOSING)
			break;
		check_output(conn);
		mk_buf_clear(&conn->out);
	}
	mk_conn_free(conn);
	return 0;
}
