/*
 * FastCGI protocol codec (server layer); see fcgi.h. Everything here
 * reads only within the lengths it is given: the input is whatever the
 * peer sent.
 */
#include <fastcgi.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "http/request.h"
#include "server/fcgi.h"

/* Stream chunks stay 8-byte multiples, so records need no padding. */
#define STDOUT_CHUNK 65528

enum mk_fcgi_parse
mk_fcgi_record_parse(const uint8_t *buf, size_t len, struct mk_fcgi_record *rec)
{
	size_t content_len, padding;

	if (len < FCGI_HEADER_LEN)
		return MK_FCGI_NEED_MORE;
	if (buf[0] != FCGI_VERSION_1)
		return MK_FCGI_BAD;
	content_len = (size_t)buf[4] << 8 | buf[5];
	padding = buf[6];
	if (len < FCGI_HEADER_LEN + content_len + padding)
		return MK_FCGI_NEED_MORE;
	rec->type = buf[1];
	rec->request_id = (uint16_t)(buf[2] << 8 | buf[3]);
	rec->content = buf + FCGI_HEADER_LEN;
	rec->content_len = (uint16_t)content_len;
	rec->total_len = FCGI_HEADER_LEN + content_len + padding;
	return MK_FCGI_RECORD;
}

/* Reads one length (1 or 4 bytes); returns bytes used, 0 when cut short. */
static size_t
read_length(const uint8_t *p, size_t avail, size_t *out)
{
	if (avail < 1)
		return 0;
	if (!(p[0] & 0x80)) {
		*out = p[0];
		return 1;
	}
	if (avail < 4)
		return 0;
	*out = ((size_t)(p[0] & 0x7f) << 24) | ((size_t)p[1] << 16) |
	    ((size_t)p[2] << 8) | p[3];
	return 4;
}

/* Walks the pairs; with params == NULL it only counts and validates. */
static enum mk_err
walk_pairs(struct mk_arena *arena, const uint8_t *data, size_t len,
    struct mk_param *params, size_t *count)
{
	size_t pos = 0, n = 0;

	while (pos < len) {
		size_t name_len, value_len, used;

		used = read_length(data + pos, len - pos, &name_len);
		if (used == 0)
			return MK_EBADREQUEST;
		pos += used;
		used = read_length(data + pos, len - pos, &value_len);
		if (used == 0)
			return MK_EBADREQUEST;
		pos += used;
		if (name_len > len - pos || value_len > len - pos - name_len)
			return MK_EBADREQUEST;
		if (params == NULL) {
			if (name_len == 0 ||
			    memchr(data + pos, '\0', name_len + value_len) !=
				NULL)
				return MK_EBADREQUEST;
			if (n == MK_FCGI_MAX_PARAMS)
				return MK_EHEADERS;
		} else {
			params[n].name = mk_arena_strndup(
			    arena, (const char *)data + pos, name_len);
			params[n].value = mk_arena_strndup(arena,
			    (const char *)data + pos + name_len, value_len);
			if (params[n].name == NULL || params[n].value == NULL)
				return MK_ENOMEM;
			params[n].name_len = name_len;
			params[n].value_len = value_len;
		}
		pos += name_len + value_len;
		n++;
	}
	*count = n;
	return MK_OK;
}

enum mk_err
mk_fcgi_params_decode(struct mk_arena *arena, const uint8_t *data, size_t len,
    struct mk_param **params, size_t *nparams)
{
	struct mk_param *list;
	size_t count;
	enum mk_err rc;

	*params = NULL;
	*nparams = 0;
	rc = walk_pairs(arena, data, len, NULL, &count);
	if (rc != MK_OK)
		return rc;
	list = mk_arena_alloc(arena, (count == 0 ? 1 : count) * sizeof(*list));
	if (list == NULL)
		return MK_ENOMEM;
	rc = walk_pairs(arena, data, len, list, &count);
	if (rc != MK_OK)
		return rc;
	*params = list;
	*nparams = count;
	return MK_OK;
}

static void
put_header(
    struct mk_buf *out, uint8_t type, uint16_t id, size_t len, uint8_t padding)
{
	uint8_t h[FCGI_HEADER_LEN] = {
		FCGI_VERSION_1,
		type,
		(uint8_t)(id >> 8),
		(uint8_t)id,
		(uint8_t)(len >> 8),
		(uint8_t)len,
		padding,
		0,
	};

	mk_buf_append(out, h, sizeof(h));
}

void
mk_fcgi_put_record(struct mk_buf *out, uint8_t type, uint16_t id,
    const void *content, size_t len)
{
	static const uint8_t zeros[8];
	uint8_t padding = (uint8_t)((8 - len % 8) % 8);

	if (len > FCGI_MAX_LENGTH) {
		out->oom = true;
		return;
	}
	put_header(out, type, id, len, padding);
	mk_buf_append(out, content, len);
	mk_buf_append(out, zeros, padding);
}

void
mk_fcgi_put_stdout(
    struct mk_buf *out, uint16_t id, const char *data, size_t len)
{
	while (len > 0) {
		size_t chunk = len > STDOUT_CHUNK ? STDOUT_CHUNK : len;

		mk_fcgi_put_record(out, FCGI_STDOUT, id, data, chunk);
		data += chunk;
		len -= chunk;
	}
}

void
mk_fcgi_put_end_only(struct mk_buf *out, uint16_t id, uint8_t protocol_status)
{
	FCGI_EndRequestBody body = { .protocolStatus = protocol_status };

	mk_fcgi_put_record(out, FCGI_END_REQUEST, id, &body, sizeof(body));
}

void
mk_fcgi_put_end(struct mk_buf *out, uint16_t id, uint8_t protocol_status)
{
	put_header(out, FCGI_STDOUT, id, 0, 0);
	mk_fcgi_put_end_only(out, id, protocol_status);
}

void
mk_fcgi_put_pair(struct mk_buf *out, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
	size_t lens[2] = { name_len, value_len };

	for (int i = 0; i < 2; i++) {
		if (lens[i] < 128) {
			uint8_t b = (uint8_t)lens[i];

			mk_buf_append(out, &b, 1);
		} else {
			uint8_t b[4] = { (uint8_t)(0x80 | (lens[i] >> 24)),
				(uint8_t)(lens[i] >> 16),
				(uint8_t)(lens[i] >> 8), (uint8_t)lens[i] };

			mk_buf_append(out, b, 4);
		}
	}
	mk_buf_append(out, name, name_len);
	mk_buf_append(out, value, value_len);
}

void
mk_fcgi_put_values(
    struct mk_buf *out, const uint8_t *content, size_t len, unsigned max_conns)
{
	uint8_t mem[256];
	struct mk_buf reply;
	char conns[16];
	size_t pos = 0;

	mk_buf_init_fixed(&reply, (char *)mem, sizeof(mem));
	(void)snprintf(conns, sizeof(conns), "%u", max_conns);
	while (pos < len) {
		size_t name_len, value_len, used;
		const char *name;

		used = read_length(content + pos, len - pos, &name_len);
		if (used == 0)
			break;
		pos += used;
		used = read_length(content + pos, len - pos, &value_len);
		if (used == 0 || name_len > len - pos - used ||
		    value_len > len - pos - used - name_len)
			break;
		pos += used;
		name = (const char *)content + pos;
		pos += name_len + value_len;
		/* Unknown names are left out of the reply, as the spec says. */
		if (name_len == strlen(FCGI_MAX_CONNS) &&
		    memcmp(name, FCGI_MAX_CONNS, name_len) == 0)
			mk_fcgi_put_pair(
			    &reply, name, name_len, conns, strlen(conns));
		else if (name_len == strlen(FCGI_MAX_REQS) &&
		    memcmp(name, FCGI_MAX_REQS, name_len) == 0)
			mk_fcgi_put_pair(
			    &reply, name, name_len, conns, strlen(conns));
		else if (name_len == strlen(FCGI_MPXS_CONNS) &&
		    memcmp(name, FCGI_MPXS_CONNS, name_len) == 0)
			mk_fcgi_put_pair(&reply, name, name_len, "0", 1);
	}
	if (reply.oom)
		reply.len = 0;
	mk_fcgi_put_record(
	    out, FCGI_GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, mem, reply.len);
}

void
mk_fcgi_put_unknown_type(struct mk_buf *out, uint8_t type)
{
	FCGI_UnknownTypeBody body = { .type = type };

	mk_fcgi_put_record(
	    out, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, &body, sizeof(body));
}
