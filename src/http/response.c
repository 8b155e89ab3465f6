/*
 * The response (http layer); see response.h. The error table below is the
 * only place that knows which status and contract code an mk_err becomes.
 */
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "http/response.h"

static const struct mk_http_error error_table[MK_ERR__MAX] = {
	[MK_OK] = { 200, "ok", "OK" },
	[MK_EBADREQUEST] = { 400, "bad_request", "Bad request" },
	[MK_EBADJSON] = { 400, "invalid_json",
	    "Request body is not valid JSON" },
	[MK_EINVAL] = { 400, "validation_failed", "Validation failed" },
	[MK_EAUTH] = { 401, "unauthorized", "Authentication required" },
	[MK_EFORBIDDEN] = { 403, "forbidden", "Forbidden" },
	[MK_ENOTFOUND] = { 404, "not_found", "Not found" },
	[MK_EMETHOD] = { 405, "method_not_allowed", "Method not allowed" },
	[MK_ECONFLICT] = { 409, "conflict", "Conflict" },
	[MK_EPRECONDITION] = { 412, "precondition_failed",
	    "Precondition failed" },
	[MK_ETOOLARGE] = { 413, "payload_too_large", "Request body too large" },
	[MK_EMEDIATYPE] = { 415, "unsupported_media_type",
	    "Request body must be application/json" },
	[MK_EHEADERS] = { 431, "headers_too_large",
	    "Request header fields too large" },
	[MK_EIDEMPOTENCY] = { 422, "idempotency_key_reused",
	    "Idempotency-Key reused with a different request" },
	/*
	 * A state conflict: the request is well formed, the market cannot take
	 * it.
	 */
	[MK_EOVERFLOW] = { 409, "conflict",
	    "Conflict: an amount would pass its largest value" },
	[MK_ERATELIMIT] = { 429, "rate_limited", "Too many requests" },
	[MK_EUNAVAIL] = { 503, "unavailable",
	    "Service temporarily unavailable" },
	[MK_ENOMEM] = { 500, "internal", "Internal server error" },
	[MK_EINTERNAL] = { 500, "internal", "Internal server error" },
	/* Never answered: the chain finishes a pending request later. */
	[MK_EPENDING] = { 500, "internal", "Internal server error" },
};

const struct mk_http_error *
mk_http_error_for(enum mk_err err)
{
	if ((unsigned)err >= MK_ERR__MAX || err == MK_OK)
		return &error_table[MK_EINTERNAL];
	return &error_table[err];
}

const char *
mk_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

void
mk_response_init(struct mk_response *resp, struct mk_arena *arena)
{
	resp->status = 500;
	mk_buf_init(&resp->headers, arena);
	mk_buf_init(&resp->body, arena);
	resp->has_body = true;
	resp->error = MK_OK;
	resp->content_type = NULL;
}

enum mk_err
mk_response_header(
    struct mk_response *resp, const char *name, const char *value)
{
	/*
	 * A CR or LF would end the header early and let what follows be read
	 * as another header or the body (response splitting). Values are
	 * built by us, but some from stored data (Location from an id, an
	 * idempotent replay's stored Location): a checked refusal, not an
	 * assert, so that a release build cannot be talked into one.
	 */
	if (name[0] == '\0' || strpbrk(name, "\r\n: \t") != NULL) {
		mk_log(MK_LOG_ERROR,
		    "response header dropped: the name '%.*s' is not a token",
		    (int)strcspn(name, "\r\n"), name);
		return MK_EINTERNAL;
	}
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0';
	     p++) {
		/* RFC 9110 5.5: field values hold no control byte but HTAB. */
		if ((*p < 0x20 && *p != '\t') || *p == 0x7F) {
			mk_log(MK_LOG_ERROR,
			    "response header %s dropped: its value holds a "
			    "control byte (0x%02X)",
			    name, *p);
			return MK_EINTERNAL;
		}
	}
	mk_buf_puts(&resp->headers, name);
	mk_buf_append(&resp->headers, ": ", 2);
	mk_buf_puts(&resp->headers, value);
	mk_buf_append(&resp->headers, "\r\n", 2);
	return MK_OK;
}

void
mk_response_begin_data(struct mk_response *resp, int status)
{
	resp->status = status;
	resp->has_body = true;
	mk_buf_clear(&resp->body);
	mk_buf_puts(&resp->body, "{\"success\":true,\"data\":");
}

void
mk_response_end_data(struct mk_response *resp, const char *meta_json)
{
	if (meta_json != NULL) {
		mk_buf_puts(&resp->body, ",\"meta\":");
		mk_buf_puts(&resp->body, meta_json);
	}
	mk_buf_putc(&resp->body, '}');
}

/* A success's caching (when the caller names it here) and its start. */
static void
begin_success(struct mk_response *resp, int status, const char *cache_control)
{
	if (cache_control != NULL)
		mk_response_header(resp, "Cache-Control", cache_control);
	mk_response_begin_data(resp, status);
}

enum mk_err
mk_response_item(struct mk_response *resp, int status,
    const char *cache_control, mk_json_write_fn *write, const void *item)
{
	begin_success(resp, status, cache_control);
	write(&resp->body, item);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_response_list(struct mk_response *resp, int status,
    const char *cache_control, mk_json_write_fn *write, const void *items,
    size_t n, size_t size, const char *meta_json)
{
	begin_success(resp, status, cache_control);
	mk_json_array(&resp->body, items, n, size, write);
	mk_response_end_data(resp, meta_json);
	return MK_OK;
}

void
mk_response_empty(struct mk_response *resp, int status)
{
	resp->status = status;
	resp->has_body = false;
	mk_buf_clear(&resp->body);
}

void
mk_response_error(struct mk_response *resp, enum mk_err err,
    const char *message, const char *request_id, const char *details_json)
{
	const struct mk_http_error *e = mk_http_error_for(err);

	resp->status = e->status;
	resp->error = err;
	resp->has_body = true;
	resp->content_type = NULL;
	/*
	 * API.md: a 503 carries Retry-After; a step that knows better set its
	 * own.
	 */
	if (err == MK_EUNAVAIL &&
	    (resp->headers.data == NULL ||
		strstr(resp->headers.data, "Retry-After:") == NULL))
		mk_response_header(resp, "Retry-After", "1");
	/*
	 * RFC 9111 4.2.2 lets caches keep a 404 or a 405 heuristically; an
	 * answer about this moment (a market not yet created, a rate limit)
	 * must not be replayed later.
	 */
	if (resp->headers.data == NULL ||
	    strstr(resp->headers.data, "Cache-Control:") == NULL)
		mk_response_header(resp, "Cache-Control", "no-store");
	mk_buf_clear(&resp->body);
	mk_buf_puts(&resp->body, "{\"success\":false,\"error\":");
	mk_json_cstr(&resp->body, message != NULL ? message : e->message);
	mk_buf_puts(&resp->body, ",\"code\":\"");
	mk_buf_puts(&resp->body, e->code);
	mk_buf_puts(&resp->body, "\",\"request_id\":");
	mk_json_cstr(&resp->body, request_id);
	if (details_json != NULL) {
		mk_buf_puts(&resp->body, ",\"details\":");
		mk_buf_puts(&resp->body, details_json);
	}
	mk_buf_putc(&resp->body, '}');
}

void
mk_response_serialize(const struct mk_response *resp, const char *request_id,
    bool head_only, struct mk_buf *out)
{
	mk_buf_printf(out, "Status: %d %s\r\n", resp->status,
	    mk_http_reason(resp->status));
	if (resp->has_body) {
		mk_buf_puts(out, "Content-Type: ");
		mk_buf_puts(out,
		    resp->content_type != NULL
			? resp->content_type
			: "application/json; charset=utf-8");
		mk_buf_puts(out, "\r\nContent-Length: ");
		mk_buf_put_u64(out, resp->body.len);
		mk_buf_append(out, "\r\n", 2);
	}
	if (request_id != NULL) {
		mk_buf_puts(out, "X-Request-Id: ");
		mk_buf_puts(out, request_id);
		mk_buf_append(out, "\r\n", 2);
	}
	mk_buf_append(out, resp->headers.data, resp->headers.len);
	mk_buf_append(out, "\r\n", 2);
	if (resp->has_body && !head_only)
		mk_buf_append(out, resp->body.data, resp->body.len);
}
