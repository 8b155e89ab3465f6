/*
 * The response (http layer): status, headers and body of one answer,
 * built in the request arena and serialized as a CGI response for the
 * server layer to wrap in FastCGI records. Only this layer writes
 * responses; errors all go through mk_response_error() and its one table
 * of statuses. A handler answers a success with mk_response_item() or
 * mk_response_list() and its items' writer (core/json.h), or writes the
 * data itself between mk_response_begin_data() and _end_data().
 */
#ifndef MK_RESPONSE_H
#define MK_RESPONSE_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

struct mk_arena;
struct mk_request;

struct mk_response {
	int status;
	/* "Name: value\r\n" lines, extra to the standard ones */
	struct mk_buf headers;
	struct mk_buf body;
	bool has_body;            /* false for 204, 304 */
	const char *content_type; /* NULL: the contract's JSON */
	enum mk_err error; /* what an error response reports, MK_OK otherwise */
};

/* The contract's view of an error: status, machine code, default message. */
struct mk_http_error {
	int status;
	const char *code;
	const char *message;
};

/* The single mapping from error codes to HTTP (never NULL). */
const struct mk_http_error *mk_http_error_for(enum mk_err err);

/* The reason phrase of a status ("Not Found"), for the Status line. */
const char *mk_http_reason(int status);

void mk_response_init(struct mk_response *resp, struct mk_arena *arena);

/*
 * Adds a header. A name that is empty or holds CR, LF, ':' or a blank, or
 * a value that holds CR or LF (a NUL ends the C string, so cannot reach
 * the output), is not added: the header is dropped, the log says which,
 * and MK_EINTERNAL is returned (MK_OK otherwise). The response goes out
 * without it; callers whose answer is wrong without the header check.
 */
enum mk_err mk_response_header(
    struct mk_response *resp, const char *name, const char *value);

/* Starts a success body: {"success":true,"data": — the caller writes data. */
void mk_response_begin_data(struct mk_response *resp, int status);

/*
 * Closes a success body; meta_json (may be NULL) is a JSON object written
 * verbatim as "meta".
 */
void mk_response_end_data(struct mk_response *resp, const char *meta_json);

/*
 * A whole success answer: Cache-Control: cache_control (NULL: the caller
 * set its own), status, and data written by write from item. Returns
 * MK_OK, for the handler to return.
 */
enum mk_err mk_response_item(struct mk_response *resp, int status,
    const char *cache_control, mk_json_write_fn *write, const void *item);

/*
 * The same with data an array of n items (size bytes each) written by
 * write, and meta_json (may be NULL) as meta.
 */
enum mk_err mk_response_list(struct mk_response *resp, int status,
    const char *cache_control, mk_json_write_fn *write, const void *items,
    size_t n, size_t size, const char *meta_json);

/* A status with no body (204, 304). */
void mk_response_empty(struct mk_response *resp, int status);

/*
 * Replaces whatever the response held by the contract's error envelope
 * for err, with message (NULL: the table's default) and request_id.
 * Headers already added (Allow, WWW-Authenticate, Retry-After) stay.
 * details_json (may be NULL) is a JSON array of {"field","message"},
 * written verbatim as "details" (validation failures only).
 */
void mk_response_error(struct mk_response *resp, enum mk_err err,
    const char *message, const char *request_id, const char *details_json);

/*
 * Writes the CGI form ("Status: …\r\nheaders\r\n\r\nbody") into out; the
 * body is left out for HEAD (head_only) but Content-Length still says
 * how long it would be.
 */
void mk_response_serialize(const struct mk_response *resp,
    const char *request_id, bool head_only, struct mk_buf *out);

#endif
