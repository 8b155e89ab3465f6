/*
 * FastCGI protocol codec (server layer): pure functions over bytes, no
 * I/O and no state, so they can be fuzzed alone. Record layouts and
 * constants come from libfcgi's fastcgi.h.
 */
#ifndef MK_FCGI_H
#define MK_FCGI_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_buf;
struct mk_param;

/* Parameters past this many are a 431: a request has a few dozen. */
#define MK_FCGI_MAX_PARAMS 256

struct mk_fcgi_record {
	uint8_t type;
	uint16_t request_id;
	const uint8_t *content;
	uint16_t content_len;
	size_t total_len; /* header + content + padding: what to consume */
};

enum mk_fcgi_parse {
	MK_FCGI_RECORD,    /* *rec holds a whole record */
	MK_FCGI_NEED_MORE, /* the buffer ends inside a record */
	MK_FCGI_BAD,       /* not FastCGI version 1: drop the connection */
};

/* Parses the record at the start of buf. */
enum mk_fcgi_parse mk_fcgi_record_parse(
    const uint8_t *buf, size_t len, struct mk_fcgi_record *rec);

/*
 * Decodes a complete PARAMS stream (all PARAMS records of a request
 * joined) into NUL-terminated name/value copies in the arena. Returns
 * MK_OK, MK_EBADREQUEST (a truncated pair, a NUL inside a name or value,
 * an empty name), MK_EHEADERS (more than MK_FCGI_MAX_PARAMS) or
 * MK_ENOMEM.
 */
enum mk_err mk_fcgi_params_decode(struct mk_arena *arena, const uint8_t *data,
    size_t len, struct mk_param **params, size_t *nparams);

/* Appends data as FCGI_STDOUT records (split as needed) for request id. */
void mk_fcgi_put_stdout(
    struct mk_buf *out, uint16_t id, const char *data, size_t len);

/* Appends the empty FCGI_STDOUT that closes the stream and FCGI_END_REQUEST. */
void mk_fcgi_put_end(struct mk_buf *out, uint16_t id, uint8_t protocol_status);

/* Appends an FCGI_END_REQUEST alone (refusing a request: role, mpx). */
void mk_fcgi_put_end_only(
    struct mk_buf *out, uint16_t id, uint8_t protocol_status);

/*
 * Answers an FCGI_GET_VALUES record (content, len) with the values this
 * server knows: FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS.
 */
void mk_fcgi_put_values(
    struct mk_buf *out, const uint8_t *content, size_t len, unsigned max_conns);

/* Answers a management record of a type this server does not know. */
void mk_fcgi_put_unknown_type(struct mk_buf *out, uint8_t type);

/*
 * Appends one name-value pair in FastCGI's length-prefixed encoding (tests,
 * clients).
 */
void mk_fcgi_put_pair(struct mk_buf *out, const char *name, size_t name_len,
    const char *value, size_t value_len);

/* Appends one record with content (len <= 65535) for request id. */
void mk_fcgi_put_record(struct mk_buf *out, uint8_t type, uint16_t id,
    const void *content, size_t len);

#endif
