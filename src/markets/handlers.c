/*
 * Market handlers (markets layer); see handlers.h. A bad query parameter
 * is a 400 bad_request whose message names the parameter; an id that
 * cannot exist (not a canonical positive 64-bit integer) is a 404, as an
 * unknown one is.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "core/arena.h"
#include "http/request.h"
#include "http/response.h"
#include "core/buf.h"
#include "core/json_parse.h"
#include "markets/validate.h"
#include "markets/cursor.h"
#include "http/request_id.h"
#include "markets/handlers.h"
#include "markets/repo.h"
#include "markets/service.h"
#include "jobs/queue.h"
#include "search/search.h"
#include "core/json.h"

/*
 * Parses a canonical decimal integer in [min, max]: digits only, no sign,
 * no leading zero, no exponent ("1e2" is not a number here).
 */
static bool
parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (text[0] < '0' || text[0] > '9' || (text[0] == '0' && text[1] != '\0'))
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

/* Parses a path id: a canonical integer in 1..INT64_MAX. */
static bool
parse_id(const char *text, int64_t *out)
{
	uint64_t v;

	if (!parse_uint(text, 1, (uint64_t)INT64_MAX, &v))
		return false;
	*out = (int64_t)v;
	return true;
}

/* Sets a 400 message naming the parameter; returns MK_EBADREQUEST. */
static enum mk_err
bad_param(struct mk_request *req, const char *name, const char *why)
{
	char *message = mk_arena_alloc(req->arena, 160);

	if (message != NULL) {
		(void)snprintf(message, 160, "Invalid query parameter '%s': %s", name, why);
		req->error_message = message;
	}
	req->log_error = "bad query parameter";
	return MK_EBADREQUEST;
}

/* The value of a parameter given at most once; NULL when absent. */
static enum mk_err
single_param(struct mk_request *req, const char *name, const char **value)
{
	size_t count = 0;
	const struct mk_query_pair *pair = mk_query_find(&req->query, name, &count);

	*value = pair != NULL ? pair->value : NULL;
	return count > 1 ? bad_param(req, name, "given more than once") : MK_OK;
}

/* `fields` and `include`, shared by the single and the list reads. */
static enum mk_err
parse_shape(struct mk_request *req, unsigned *fields, bool *include_creator)
{
	const char *fields_text, *include, *bad;
	size_t bad_len;
	enum mk_err rc;

	*fields = 0;
	if ((rc = single_param(req, "fields", &fields_text)) != MK_OK ||
	    (rc = single_param(req, "include", &include)) != MK_OK)
		return rc;
	if (fields_text != NULL &&
	    mk_market_fields_parse(fields_text, fields, &bad, &bad_len) != MK_OK) {
		char why[96];

		(void)snprintf(why, sizeof(why), "unknown field '%.*s'", (int)(bad_len > 40 ? 40 : bad_len), bad);
		return bad_param(req, "fields", why);
	}
	if (include != NULL && strcmp(include, "creator") != 0)
		return bad_param(req, "include", "only 'creator' can be included");
	*include_creator = include != NULL;
	return MK_OK;
}

enum mk_err
mk_markets_get(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_market market;
	struct mk_market_doc doc;
	const char *if_none_match;
	bool include_creator;
	unsigned fields;
	char etag[48];
	int64_t id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if ((rc = parse_shape(req, &fields, &include_creator)) != MK_OK)
		return rc;
	if (app->repo == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	if (fields == 0 && !include_creator) {
		/*
		 * The whole market: its document as the repository stack
		 * rendered it once (from memcached on a hit), copied as is.
		 */
		rc = mk_market_service_get_document(app->repo, req->arena, id, &doc);
		if (rc != MK_OK)
			return rc;
		mk_market_etag(doc.version, etag);
	} else {
		rc = mk_market_service_get(app->repo, req->arena, &req->identity, id, fields,
		    include_creator, &market);
		if (rc != MK_OK)
			return rc;
		/*
		 * The strong ETag names the version and, for a partial or
		 * embedded representation, its shape: each representation
		 * has its own tag (an embedded creator with its email is
		 * another one than without).
		 */
		(void)snprintf(etag, sizeof(etag), "\"v%llu-%x%s\"", (unsigned long long)market.version,
		    fields, !include_creator ? "" : market.creator != NULL && market.creator->email_visible ? "ce" : "c");
	}
	mk_response_header(resp, "ETag", etag);
	/*
	 * Any cache may keep it (the data is public) but must revalidate
	 * before each use: volume moves with every buy. A revalidation is a
	 * cheap 304.
	 */
	mk_response_header(resp, "Cache-Control", "no-cache");
	if_none_match = mk_request_param(req, "HTTP_IF_NONE_MATCH");
	/* RFC 9110 13.1.2: If-None-Match compares weakly, If-Match strongly. */
	if (if_none_match != NULL && mk_etag_matches_weak(if_none_match, etag)) {
		mk_response_empty(resp, 304);
		return MK_OK;
	}
	mk_response_begin_data(resp, 200);
	if (fields == 0 && !include_creator)
		mk_buf_append(&resp->body, doc.json, doc.json_len);
	else
		mk_market_json(&resp->body, &market);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

/* A page's window: limit, and offset or a keyset cursor. */
struct page_params {
	unsigned limit;
	uint64_t offset;
	bool has_cursor;
	struct mk_cursor cursor;  /* decoded and verified; the list checks it is its own */
};

/*
 * Deepest offset a page may start at (API.md). An offset page reads every
 * row it skips, so a deep one costs a scan whoever asks: deeper pages use
 * the keyset cursor, which costs the same at any depth.
 */
#define PAGE_MAX_OFFSET 10000

/*
 * Reads limit (1-100, default 20), offset (0-PAGE_MAX_OFFSET) and cursor
 * (a MAC'd position, not with offset) — the same for every paginated list.
 */
static enum mk_err
parse_page_params(struct mk_app *app, struct mk_request *req, struct page_params *p)
{
	const char *limit, *offset, *cursor;
	uint64_t number;
	enum mk_err rc;

	memset(p, 0, sizeof(*p));
	p->limit = 20;
	if ((rc = single_param(req, "limit", &limit)) != MK_OK ||
	    (rc = single_param(req, "offset", &offset)) != MK_OK ||
	    (rc = single_param(req, "cursor", &cursor)) != MK_OK)
		return rc;
	if (limit != NULL) {
		if (!parse_uint(limit, 1, 100, &number))
			return bad_param(req, "limit", "must be an integer from 1 to 100");
		p->limit = (unsigned)number;
	}
	if (offset != NULL && !parse_uint(offset, 0, PAGE_MAX_OFFSET, &p->offset))
		return bad_param(req, "offset",
		    "must be an integer from 0 to 10000; deeper pages follow meta.next_cursor with cursor=");
	if (cursor == NULL)
		return MK_OK;
	if (offset != NULL)
		return bad_param(req, "cursor", "give offset or cursor, not both");
	rc = mk_cursor_decode(req->arena, app->cursor_key, cursor, strlen(cursor), &p->cursor);
	if (rc == MK_ENOMEM)
		return rc;
	if (rc != MK_OK)
		return bad_param(req, "cursor", "not a cursor of this server");
	p->has_cursor = true;
	return MK_OK;
}

/*
 * Answers a page: items (n of them, size bytes each, each written by
 * item_json) as "data", and "meta" with limit, offset, total (when
 * total >= 0) and next_cursor — next encoded when more rows follow, else
 * null.
 */
static enum mk_err
respond_page(struct mk_app *app, struct mk_request *req, struct mk_response *resp,
    const struct page_params *p, int64_t total, bool more,
    const struct mk_cursor *next, const void *items, size_t n, size_t size,
    void (*item_json)(struct mk_buf *, const void *))
{
	struct mk_buf meta;

	mk_buf_init(&meta, req->arena);
	mk_buf_printf(&meta, "{\"limit\":%u,\"offset\":%llu", p->limit, (unsigned long long)p->offset);
	if (total >= 0)
		mk_buf_printf(&meta, ",\"total\":%lld", (long long)total);
	mk_buf_puts(&meta, ",\"next_cursor\":");
	if (more && next->key != NULL) {
		mk_buf_putc(&meta, '"');
		mk_cursor_encode(&meta, app->cursor_key, next);
		mk_buf_putc(&meta, '"');
	} else {
		mk_buf_puts(&meta, "null");
	}
	mk_buf_putc(&meta, '}');
	if (meta.oom)
		return MK_ENOMEM;
	mk_response_header(resp, "Cache-Control", "no-cache");
	mk_response_begin_data(resp, 200);
	mk_buf_putc(&resp->body, '[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			mk_buf_putc(&resp->body, ',');
		item_json(&resp->body, (const char *)items + i * size);
	}
	mk_buf_putc(&resp->body, ']');
	mk_response_end_data(resp, meta.data);
	return MK_OK;
}

static void
market_item_json(struct mk_buf *out, const void *item)
{
	mk_market_json(out, item);
}

static void
position_item_json(struct mk_buf *out, const void *item)
{
	mk_position_json(out, item);
}

/* Reads the list's query parameters into *q; a 400 names the bad one. */
static enum mk_err
parse_list_query(struct mk_app *app, struct mk_request *req,
    struct mk_market_query *q, struct page_params *page, bool *include_creator)
{
	const char *status, *creator, *sort, *count;
	uint64_t number;
	enum mk_err rc;

	memset(q, 0, sizeof(*q));
	q->sort = MK_SORT_CREATED_DESC;
	if ((rc = parse_shape(req, &q->fields, include_creator)) != MK_OK ||
	    (rc = single_param(req, "status", &status)) != MK_OK ||
	    (rc = single_param(req, "creator_id", &creator)) != MK_OK ||
	    (rc = single_param(req, "sort", &sort)) != MK_OK ||
	    (rc = single_param(req, "count", &count)) != MK_OK ||
	    (rc = parse_page_params(app, req, page)) != MK_OK)
		return rc;
	q->limit = page->limit;
	q->offset = page->offset;
	if (status != NULL && (q->status = mk_market_status_parse(status)) == NULL)
		return bad_param(req, "status", "must be active, closed or resolved");
	if (creator != NULL) {
		if (!parse_uint(creator, 1, (uint64_t)INT64_MAX, &number))
			return bad_param(req, "creator_id", "must be a positive integer");
		q->creator_id = (int64_t)number;
	}
	if (sort != NULL && !mk_market_sort_parse(sort, &q->sort))
		return bad_param(req, "sort", "must be one of volume, -volume, created_at, -created_at, name, -name");
	if (count != NULL) {
		if (strcmp(count, "exact") != 0)
			return bad_param(req, "count", "the only count is 'exact'");
		q->count = true;
	}
	if (page->has_cursor) {
		const struct mk_cursor *position = &page->cursor;

		if (position->sort != q->sort || position->creator_id != q->creator_id ||
		    (position->status == NULL) != (q->status == NULL) ||
		    (q->status != NULL && strcmp(position->status, q->status) != 0))
			return bad_param(req, "cursor", "belongs to another query (sort or filters changed)");
		q->after_key = position->key;
		q->after_id = position->id;
	}
	return MK_OK;
}

enum mk_err
mk_markets_list(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_market_query q;
	struct mk_market_page page;
	struct page_params window;
	bool include_creator = false;
	enum mk_err rc;

	if ((rc = parse_list_query(app, req, &q, &window, &include_creator)) != MK_OK)
		return rc;
	if (app->repo == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	rc = mk_market_service_list(app->repo, req->arena, &req->identity, &q, include_creator, &page);
	if (rc != MK_OK)
		return rc;
	{
		struct mk_cursor next = {
			.sort = q.sort, .status = q.status, .creator_id = q.creator_id,
			.key = page.last_key, .id = page.last_id,
		};

		return respond_page(app, req, resp, &window, page.total, page.more, &next,
		    page.items, page.n, sizeof(page.items[0]), market_item_json);
	}
}

_Static_assert(MK_JSON_BODY_MAX_VALUES == 256, "parse_body's message names the cap");

/* Parses and validates a JSON body with check; a 400 carries the details. */
static enum mk_err
parse_body(struct mk_request *req, struct mk_market_input *input,
    enum mk_err (*check)(struct mk_arena *, struct json_object *,
    struct mk_market_input *, struct mk_buf *))
{
	struct json_object *body = NULL;
	struct mk_buf details;
	const char *why = NULL;
	enum mk_err rc;

	rc = mk_json_parse_in(req->arena, req->body, req->body_len, MK_JSON_MAX_DEPTH,
	    MK_JSON_BODY_MAX_VALUES, &body, &why);
	if (rc == MK_EBADJSON) {
		req->log_error = why;
		/* Valid JSON past the cap is refused for its size, and says so. */
		if (why != NULL && strcmp(why, MK_JSON_TOO_MANY_VALUES) == 0)
			req->error_message = "Request body holds more JSON values than a write takes (256)";
	}
	if (rc != MK_OK)
		return rc;
	mk_buf_init(&details, req->arena);
	rc = check(req->arena, body, input, &details);
	if (rc == MK_EINVAL) {
		req->error_details = details.data;
		req->log_error = "validation failed";
	}
	return rc;
}

/*
 * Reads Idempotency-Key: 0 when absent, 1 when present and sane (idem
 * filled: the caller, the key, a hash of method, path and body), or a 400.
 */
static enum mk_err
idempotency_key(struct mk_request *req, struct mk_idempotency *idem, bool *present)
{
	const char *key = mk_request_param(req, "HTTP_IDEMPOTENCY_KEY");
	const char *uri = mk_request_param(req, "REQUEST_URI");
	EVP_MD_CTX *ctx;
	unsigned len = 0;
	int ok;

	*present = key != NULL;
	if (key == NULL)
		return MK_OK;
	if (!mk_request_id_valid(key, strlen(key))) {
		req->error_message = "Idempotency-Key must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
		return MK_EBADREQUEST;
	}
	memset(idem, 0, sizeof(*idem));
	idem->user_id = req->identity.user_id;
	idem->key = key;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, req->method_name, strlen(req->method_name) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, uri != NULL ? uri : "", (uri != NULL ? strlen(uri) : 0) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, req->body, req->body_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, idem->hash, &len) == 1 && len == sizeof(idem->hash);
	EVP_MD_CTX_free(ctx);
	return ok ? MK_OK : MK_EINTERNAL;
}

/* Answers an idempotent write from what it stored (first run or replay). */
static enum mk_err
idempotent_answer(struct mk_request *req, struct mk_response *resp,
    enum mk_err rc, const struct mk_idempotency *idem, bool replayed)
{
	if (rc == MK_ECONFLICT && replayed == false && req->error_message == NULL)
		req->error_message = "A request with this Idempotency-Key is still running, or conflicts";
	if (rc == MK_EIDEMPOTENCY)
		req->error_message = "This Idempotency-Key was used with a different request";
	if (rc != MK_OK)
		return rc;
	/* Stored data: a value the guard refuses is a broken record, not a 201 without Location. */
	if (idem->location != NULL && mk_response_header(resp, "Location", idem->location) != MK_OK) {
		req->log_error = "an idempotent replay's stored Location is not a header value";
		return MK_EINTERNAL;
	}
	if (replayed)
		mk_response_header(resp, "Idempotent-Replayed", "true");
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, idem->status);
	mk_buf_puts(&resp->body, idem->data_json);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_markets_create(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_market_input input;
	struct mk_idempotency idem;
	struct mk_market market;
	bool has_key, replayed = false;
	char location[48];
	enum mk_err rc;

	if ((rc = parse_body(req, &input, mk_market_validate_create)) != MK_OK)
		return rc;
	if (app->repo == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	if ((rc = idempotency_key(req, &idem, &has_key)) != MK_OK)
		return rc;
	if (has_key) {
		rc = mk_market_service_create_once(app->repo, req->arena, &req->identity, &input, &idem, &replayed);
		return idempotent_answer(req, resp, rc, &idem, replayed);
	}
	rc = mk_market_service_create(app->repo, req->arena, &req->identity, &input, &market);
	if (rc == MK_ECONFLICT) {
		req->error_message = "The token's email belongs to another user";
		return rc;
	}
	if (rc != MK_OK)
		return rc;
	(void)snprintf(location, sizeof(location), "/api/markets/%lld", (long long)market.id);
	mk_response_header(resp, "Location", location);
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 201);
	mk_market_json(&resp->body, &market);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_positions_buy(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_market_input input;
	struct mk_position position;
	struct mk_idempotency idem;
	bool has_key, replayed = false;
	char location[96];
	int64_t market_id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &market_id))
		return MK_ENOTFOUND;
	if ((rc = parse_body(req, &input, mk_position_validate)) != MK_OK)
		return rc;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	if ((rc = idempotency_key(req, &idem, &has_key)) != MK_OK)
		return rc;
	if (has_key) {
		rc = mk_position_service_buy_once(app->repo, req->arena, &req->identity, market_id,
		    input.side, input.amount, &idem, &replayed);
		if (rc == MK_ECONFLICT && req->error_message == NULL)
			req->error_message = "The market is not active, or a request with this Idempotency-Key is still running";
		if (rc == MK_EOVERFLOW)
			req->error_message = "The market's volume would exceed its largest value (" MK_VOLUME_MAX ")";
		return idempotent_answer(req, resp, rc, &idem, replayed);
	}
	rc = mk_position_service_buy(app->repo, req->arena, &req->identity, market_id,
	    input.side, input.amount, &position);
	if (rc == MK_ECONFLICT && req->error_message == NULL)
		req->error_message = "The market is not active";
	if (rc == MK_EOVERFLOW)
		req->error_message = "The market's volume would exceed its largest value (" MK_VOLUME_MAX ")";
	if (rc != MK_OK)
		return rc;
	(void)snprintf(location, sizeof(location), "/api/markets/%lld/positions/%lld",
	    (long long)market_id, (long long)position.id);
	mk_response_header(resp, "Location", location);
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 201);
	mk_position_json(&resp->body, &position);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_positions_get(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_position position;
	int64_t market_id, id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &market_id) || !parse_id(req->path_params[1], &id))
		return MK_ENOTFOUND;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = mk_position_service_get(app->repo, req->arena, market_id, id, &position);
	if (rc != MK_OK)
		return rc;
	mk_response_header(resp, "Cache-Control", "no-cache");
	mk_response_begin_data(resp, 200);
	mk_position_json(&resp->body, &position);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_positions_list(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_position_page page;
	struct page_params window;
	int64_t market_id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &market_id))
		return MK_ENOTFOUND;
	if ((rc = parse_page_params(app, req, &window)) != MK_OK)
		return rc;
	/* A positions cursor is bound to its market (creator_id carries it). */
	if (window.has_cursor && (window.cursor.sort != MK_SORT_CREATED_DESC ||
	    window.cursor.status != NULL || window.cursor.creator_id != market_id))
		return bad_param(req, "cursor", "not a cursor of this list");
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = mk_position_service_list(app->repo, req->arena, market_id, window.limit, window.offset,
	    window.has_cursor ? window.cursor.key : NULL, window.cursor.id, &page);
	if (rc != MK_OK)
		return rc;
	{
		struct mk_cursor next = { .sort = MK_SORT_CREATED_DESC, .creator_id = market_id,
			.key = page.last_key, .id = page.last_id };

		return respond_page(app, req, resp, &window, -1, page.more, &next,
		    page.items, page.n, sizeof(page.items[0]), position_item_json);
	}
}

static enum mk_err
validate_replace(struct mk_arena *arena, struct json_object *body,
    struct mk_market_input *out, struct mk_buf *details)
{
	return mk_market_validate(arena, body, MK_WRITE_REPLACE, out, details);
}

static enum mk_err
validate_patch(struct mk_arena *arena, struct json_object *body,
    struct mk_market_input *out, struct mk_buf *details)
{
	return mk_market_validate(arena, body, MK_WRITE_PATCH, out, details);
}

static enum mk_err
write_market(struct mk_app *app, struct mk_request *req, struct mk_response *resp,
    enum mk_market_write kind)
{
	struct mk_market_input input;
	struct mk_market market;
	char etag[32];
	int64_t id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	rc = parse_body(req, &input, kind == MK_WRITE_REPLACE ? validate_replace : validate_patch);
	if (rc != MK_OK)
		return rc;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_update(app->repo, req->arena, &req->identity, id, &input,
	    mk_request_param(req, "HTTP_IF_MATCH"), &market);
	if (rc == MK_EFORBIDDEN)
		req->error_message = "Only the market's creator, a moderator or an admin may change it";
	if (rc == MK_EPRECONDITION)
		req->error_message = "The market changed since that ETag";
	if (rc != MK_OK)
		return rc;
	mk_market_etag(market.version, etag);
	mk_response_header(resp, "ETag", etag);
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 200);
	mk_market_json(&resp->body, &market);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_markets_replace(struct mk_app *app, struct mk_request *req, struct mk_response *resp)
{
	return write_market(app, req, resp, MK_WRITE_REPLACE);
}

enum mk_err
mk_markets_patch(struct mk_app *app, struct mk_request *req, struct mk_response *resp)
{
	return write_market(app, req, resp, MK_WRITE_PATCH);
}

enum mk_err
mk_markets_delete(struct mk_app *app, struct mk_request *req, struct mk_response *resp)
{
	int64_t id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_remove(app->repo, req->arena, &req->identity, id);
	if (rc != MK_OK)
		return rc;
	mk_response_empty(resp, 204);
	return MK_OK;
}

/* A search between its two halves (search.h), in the request arena. */
struct search_state {
	struct mk_search_query *query;
	size_t limit;
};

/* The log line says which part of a search was unavailable. */
static enum mk_err
search_failed(struct mk_request *req, enum mk_err rc)
{
	if (rc == MK_EUNAVAIL && req->log_error == NULL)
		req->log_error = "the embedder or the database did not answer";
	return rc;
}

/* Ranks, fetches and writes the answer of a query whose vector is ready. */
static enum mk_err
search_answer(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp, struct search_state *state)
{
	struct mk_search_result results[MK_SEARCH_MAX_LIMIT];
	size_t n = 0;
	enum mk_err rc;

	rc = mk_search_query_finish(app->search, state->query, app->repo, req->arena,
	    state->limit, results, &n);
	if (rc != MK_OK)
		return search_failed(req, rc);
	mk_response_header(resp, "Cache-Control", "no-cache");
	mk_response_begin_data(resp, 200);
	mk_buf_putc(&resp->body, '[');
	for (size_t i = 0; i < n; i++) {
		/* The cached document, with the score as its last member. */
		if (i > 0)
			mk_buf_putc(&resp->body, ',');
		mk_buf_append(&resp->body, results[i].doc.json, results[i].doc.json_len - 1);
		mk_buf_printf(&resp->body, ",\"score\":%.6f}", (double)results[i].score);
	}
	mk_buf_putc(&resp->body, ']');
	{
		char meta[160];

		(void)snprintf(meta, sizeof(meta), "{\"limit\":%zu,\"count\":%zu,\"embedder\":\"%s\",\"indexed\":%zu}",
		    state->limit, n, mk_search_embedder(app->search), mk_search_indexed(app->search));
		mk_response_end_data(resp, meta);
	}
	return MK_OK;
}

/* The embedding arrived (or failed): the second half. */
static enum mk_err
search_resume(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	return search_answer(app, req, resp, req->wait.state);
}

static void
search_cancel(struct mk_app *app, struct mk_request *req)
{
	struct search_state *state = req->wait.state;

	mk_search_query_cancel(app->search, state->query);
}

/* Search queries longer than this many characters are a 400 (issue 6). */
#define SEARCH_QUERY_MAX_CHARS 500

enum mk_err
mk_markets_search(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct search_state *state;
	const char *q, *limit_text;
	size_t len, chars = 0;
	bool blank = true;
	uint64_t limit = 10;
	enum mk_err rc;

	if ((rc = single_param(req, "q", &q)) != MK_OK ||
	    (rc = single_param(req, "limit", &limit_text)) != MK_OK)
		return rc;
	if (q == NULL)
		return bad_param(req, "q", "is required");
	len = strlen(q);
	for (size_t i = 0; i < len; chars++) {
		size_t step = mk_utf8_sequence_len((const unsigned char *)q + i, len - i);

		if (step == 0)
			return bad_param(req, "q", "is not valid UTF-8");
		if (step > 1 || (q[i] != ' ' && q[i] != '\t' && q[i] != '\n' && q[i] != '\r'))
			blank = false;
		i += step;
	}
	if (blank)
		return bad_param(req, "q", "must not be empty");
	if (chars > SEARCH_QUERY_MAX_CHARS)
		return bad_param(req, "q", "is longer than 500 characters");
	if (limit_text != NULL && !parse_uint(limit_text, 1, MK_SEARCH_MAX_LIMIT, &limit))
		return bad_param(req, "limit", "must be an integer from 1 to 50");
	if (app->repo == NULL || app->search == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	state = mk_arena_calloc(req->arena, 1, sizeof(*state));
	if (state == NULL)
		return MK_ENOMEM;
	state->limit = (size_t)limit;
	rc = mk_search_query_start(app->search, req->arena, q, len, req->wait.wake,
	    req->wait.wake_arg, &state->query);
	if (rc == MK_EPENDING) {
		/* The embedder is asked: the worker serves others until it answers. */
		req->wait.state = state;
		req->wait.resume = search_resume;
		req->wait.cancel = search_cancel;
		return MK_EPENDING;
	}
	if (rc != MK_OK)
		return search_failed(req, rc);
	return search_answer(app, req, resp, state);
}

enum mk_err
mk_markets_index(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	int64_t id, job_id = 0;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_index(app->repo, req->arena, &req->identity, id, &job_id);
	if (rc == MK_EFORBIDDEN)
		req->error_message = "Only the market's creator, a moderator or an admin may re-index it";
	if (rc != MK_OK)
		return rc;
	{
		char location[48];

		(void)snprintf(location, sizeof(location), "/api/jobs/%lld", (long long)job_id);
		mk_response_header(resp, "Location", location);
	}
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 202);
	mk_buf_printf(&resp->body, "{\"job_id\":%lld}", (long long)job_id);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_jobs_show(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_job job;
	int64_t id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (app->repo == NULL)
		return MK_EUNAVAIL;
	rc = app->repo->ops->job(app->repo, req->arena, id, &job);
	if (rc != MK_OK)
		return rc;
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 200);
	mk_job_json(&resp->body, &job);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}
