/*
 * Market read handlers (markets layer, http side): one market, lists of
 * markets and of a market's positions (sparse fields, embedding, keyset
 * pages), and semantic search. Each parses the request, calls the
 * market service and writes the response; a handler's context is the
 * struct mk_markets_context of handlers.h. A bad query parameter is a 400
 * bad_request whose message names the parameter; an id that cannot exist
 * (not a canonical positive 64-bit integer) is a 404, as an unknown one
 * is.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "http/links.h"
#include "http/params.h"
#include "http/request.h"
#include "http/response.h"
#include "markets/cursor.h"
#include "markets/handlers.h"
#include "markets/service.h"

/* `fields` and `include`, shared by the single and the list reads. */
static enum mk_err
parse_shape(struct mk_request *req, unsigned *fields, bool *include_creator)
{
	const char *fields_text, *include, *bad;
	size_t bad_len;
	enum mk_err rc;

	*fields = 0;
	if ((rc = mk_param_single(req, "fields", &fields_text)) != MK_OK ||
	    (rc = mk_param_single(req, "include", &include)) != MK_OK)
		return rc;
	if (fields_text != NULL &&
	    mk_market_fields_parse(fields_text, fields, &bad, &bad_len) !=
		MK_OK) {
		char why[96];

		(void)snprintf(why, sizeof(why), "unknown field '%.*s'",
		    (int)(bad_len > 40 ? 40 : bad_len), bad);
		return mk_param_bad(req, "fields", why);
	}
	if (include != NULL && strcmp(include, "creator") != 0)
		return mk_param_bad(
		    req, "include", "only 'creator' can be included");
	*include_creator = include != NULL;
	return MK_OK;
}

/* A market's document (struct mk_market_doc) as rendered: its JSON. */
static void
doc_json(struct mk_buf *out, const void *item)
{
	const struct mk_market_doc *doc = item;

	mk_buf_append(out, doc->json, doc->json_len);
}

enum mk_err
mk_markets_get(void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_market market;
	struct mk_market_doc doc;
	const char *if_none_match;
	bool include_creator;
	unsigned fields;
	char etag[48];
	int64_t id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if ((rc = parse_shape(req, &fields, &include_creator)) != MK_OK)
		return rc;
	if (markets->service == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	if (fields == 0 && !include_creator) {
		/*
		 * The whole market: its document as the repository stack
		 * rendered it once (from memcached on a hit), copied as is.
		 */
		rc = mk_market_service_get_document(
		    markets->service, req->arena, id, req->rate_count, &doc);
		if (rc != MK_OK)
			return rc;
		mk_market_etag(doc.version, etag);
	} else {
		rc = mk_market_service_get(markets->service, req->arena,
		    &req->identity, id, fields, include_creator, &market);
		if (rc != MK_OK)
			return rc;
		/*
		 * The strong ETag names the version and, for a partial or
		 * embedded representation, its shape: each representation
		 * has its own tag (an embedded creator with its email is
		 * another one than without).
		 */
		(void)snprintf(etag, sizeof(etag), "\"v%llu-%x%s\"",
		    (unsigned long long)market.version, fields,
		    !include_creator ? ""
			: market.creator != NULL &&
			    market.creator->email_visible
			? "ce"
			: "c");
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
	if (if_none_match != NULL &&
	    mk_etag_matches_weak(if_none_match, etag)) {
		mk_response_empty(resp, 304);
		return MK_OK;
	}
	if (fields == 0 && !include_creator)
		return mk_response_item(resp, 200, NULL, doc_json, &doc);
	return mk_response_item(resp, 200, NULL, mk_market_json, &market);
}

/* A page's window: limit, and offset or a keyset cursor. */
struct page_params {
	unsigned limit;
	uint64_t offset;
	bool has_cursor;
	/* decoded and verified; the list checks it is its own */
	struct mk_cursor cursor;
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
parse_page_params(struct mk_markets_context *markets, struct mk_request *req,
    struct page_params *p)
{
	const char *limit, *offset, *cursor;
	uint64_t number;
	enum mk_err rc;

	memset(p, 0, sizeof(*p));
	p->limit = 20;
	if ((rc = mk_param_single(req, "limit", &limit)) != MK_OK ||
	    (rc = mk_param_single(req, "offset", &offset)) != MK_OK ||
	    (rc = mk_param_single(req, "cursor", &cursor)) != MK_OK)
		return rc;
	if (limit != NULL) {
		if (!mk_param_uint(limit, 1, 100, &number))
			return mk_param_bad(
			    req, "limit", "must be an integer from 1 to 100");
		p->limit = (unsigned)number;
	}
	if (offset != NULL &&
	    !mk_param_uint(offset, 0, PAGE_MAX_OFFSET, &p->offset))
		return mk_param_bad(req, "offset",
		    "must be an integer from 0 to 10000; deeper pages follow "
		    "meta.next_cursor with cursor=");
	if (cursor == NULL)
		return MK_OK;
	if (offset != NULL)
		return mk_param_bad(
		    req, "cursor", "give offset or cursor, not both");
	rc = mk_cursor_decode(req->arena, markets->cursor_key, cursor,
	    strlen(cursor), &p->cursor);
	if (rc == MK_ENOMEM)
		return rc;
	if (rc != MK_OK)
		return mk_param_bad(
		    req, "cursor", "not a cursor of this server");
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
respond_page(struct mk_markets_context *markets, struct mk_request *req,
    struct mk_response *resp, const struct page_params *p, int64_t total,
    bool more, const struct mk_cursor *next, const void *items, size_t n,
    size_t size, mk_json_write_fn *item_json)
{
	struct mk_buf meta;
	size_t cursor_at = 0;

	mk_buf_init(&meta, req->arena);
	mk_buf_printf(&meta, "{\"limit\":%u,\"offset\":%llu", p->limit,
	    (unsigned long long)p->offset);
	if (total >= 0)
		mk_buf_printf(&meta, ",\"total\":%lld", (long long)total);
	mk_buf_puts(&meta, ",\"next_cursor\":");
	if (more && next->key != NULL) {
		mk_buf_putc(&meta, '"');
		cursor_at = meta.len;
		mk_cursor_encode(&meta, markets->cursor_key, next);
		mk_buf_putc(&meta, '"');
	} else {
		mk_buf_puts(&meta, "null");
	}
	mk_buf_putc(&meta, '}');
	if (meta.oom)
		return MK_ENOMEM;
	/* The same cursor as an RFC 8288 link: the page after this one. */
	if (cursor_at > 0)
		mk_links_next(
		    resp, req, meta.data + cursor_at, meta.len - 2 - cursor_at);
	return mk_response_list(
	    resp, 200, "no-cache", item_json, items, n, size, meta.data);
}

/* Reads the list's query parameters into *q; a 400 names the bad one. */
static enum mk_err
parse_list_query(struct mk_markets_context *markets, struct mk_request *req,
    struct mk_market_query *q, struct page_params *page, bool *include_creator)
{
	const char *status, *creator, *sort, *count;
	uint64_t number;
	enum mk_err rc;

	memset(q, 0, sizeof(*q));
	q->sort = MK_SORT_CREATED_DESC;
	if ((rc = parse_shape(req, &q->fields, include_creator)) != MK_OK ||
	    (rc = mk_param_single(req, "status", &status)) != MK_OK ||
	    (rc = mk_param_single(req, "creator_id", &creator)) != MK_OK ||
	    (rc = mk_param_single(req, "sort", &sort)) != MK_OK ||
	    (rc = mk_param_single(req, "count", &count)) != MK_OK ||
	    (rc = parse_page_params(markets, req, page)) != MK_OK)
		return rc;
	q->limit = page->limit;
	q->offset = page->offset;
	if (status != NULL &&
	    (q->status = mk_market_status_parse(status)) == NULL)
		return mk_param_bad(
		    req, "status", "must be active, closed or resolved");
	if (creator != NULL) {
		if (!mk_param_uint(creator, 1, (uint64_t)INT64_MAX, &number))
			return mk_param_bad(
			    req, "creator_id", "must be a positive integer");
		q->creator_id = (int64_t)number;
	}
	if (sort != NULL && !mk_market_sort_parse(sort, &q->sort))
		return mk_param_bad(req, "sort",
		    "must be one of volume, -volume, created_at, -created_at, "
		    "name, -name");
	if (count != NULL) {
		if (strcmp(count, "exact") != 0)
			return mk_param_bad(
			    req, "count", "the only count is 'exact'");
		q->count = true;
	}
	if (page->has_cursor) {
		const struct mk_cursor *position = &page->cursor;

		if (position->sort != q->sort ||
		    position->creator_id != q->creator_id ||
		    (position->status == NULL) != (q->status == NULL) ||
		    (q->status != NULL &&
			strcmp(position->status, q->status) != 0))
			return mk_param_bad(req, "cursor",
			    "belongs to another query (sort or filters "
			    "changed)");
		q->after_key = position->key;
		q->after_id = position->id;
	}
	return MK_OK;
}

enum mk_err
mk_markets_list(void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_market_query q;
	struct mk_market_page page;
	struct page_params window;
	bool include_creator = false;
	enum mk_err rc;

	if ((rc = parse_list_query(
		 markets, req, &q, &window, &include_creator)) != MK_OK)
		return rc;
	if (markets->service == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	rc = mk_market_service_list(markets->service, req->arena,
	    &req->identity, &q, include_creator, &page);
	if (rc != MK_OK)
		return rc;
	{
		struct mk_cursor next = {
			.sort = q.sort,
			.status = q.status,
			.creator_id = q.creator_id,
			.key = page.last_key,
			.id = page.last_id,
		};

		return respond_page(markets, req, resp, &window, page.total,
		    page.more, &next, page.items, page.n, sizeof(page.items[0]),
		    mk_market_json);
	}
}

enum mk_err
mk_positions_get(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_position position;
	int64_t market_id, id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &market_id) ||
	    !mk_param_id(req->path_params[1], &id))
		return MK_ENOTFOUND;
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	rc = mk_position_service_get(
	    markets->service, req->arena, market_id, id, &position);
	if (rc != MK_OK)
		return rc;
	return mk_response_item(
	    resp, 200, "no-cache", mk_position_json, &position);
}

enum mk_err
mk_positions_list(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_position_page page;
	struct page_params window;
	int64_t market_id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &market_id))
		return MK_ENOTFOUND;
	if ((rc = parse_page_params(markets, req, &window)) != MK_OK)
		return rc;
	/* A positions cursor is bound to its market (creator_id carries it). */
	if (window.has_cursor &&
	    (window.cursor.sort != MK_SORT_CREATED_DESC ||
		window.cursor.status != NULL ||
		window.cursor.creator_id != market_id))
		return mk_param_bad(req, "cursor", "not a cursor of this list");
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	rc = mk_position_service_list(markets->service, req->arena, market_id,
	    window.limit, window.offset,
	    window.has_cursor ? window.cursor.key : NULL, window.cursor.id,
	    &page);
	if (rc != MK_OK)
		return rc;
	{
		struct mk_cursor next = { .sort = MK_SORT_CREATED_DESC,
			.creator_id = market_id,
			.key = page.last_key,
			.id = page.last_id };

		return respond_page(markets, req, resp, &window, -1, page.more,
		    &next, page.items, page.n, sizeof(page.items[0]),
		    mk_position_json);
	}
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
	if (rc == MK_EINTERNAL && req->log_error == NULL)
		req->log_error = "a result's document could not take its score";
	return rc;
}

/* Ranks, fetches and writes the answer of a query whose vector is ready. */
static enum mk_err
search_answer(struct mk_markets_context *markets, struct mk_request *req,
    struct mk_response *resp, struct search_state *state)
{
	struct mk_market_doc results[MK_MARKET_SEARCH_MAX_LIMIT];
	size_t n = 0;
	char meta[160];
	enum mk_err rc;

	rc = mk_market_service_search_finish(markets->service, req->arena,
	    state->query, state->limit, results, &n);
	if (rc != MK_OK)
		return search_failed(req, rc);
	(void)snprintf(meta, sizeof(meta),
	    "{\"limit\":%zu,\"count\":%zu,\"embedder\":\"%s\","
	    "\"indexed\":%zu}",
	    state->limit, n,
	    mk_market_service_search_embedder(markets->service),
	    mk_market_service_search_indexed(markets->service));
	return mk_response_list(resp, 200, "no-cache", doc_json, results, n,
	    sizeof(results[0]), meta);
}

/* The embedding arrived (or failed): the second half. */
static enum mk_err
search_resume(void *context, struct mk_request *req, struct mk_response *resp)
{
	return search_answer(context, req, resp, req->wait.state);
}

static void
search_cancel(void *context, struct mk_request *req)
{
	struct mk_markets_context *markets = context;
	struct search_state *state = req->wait.state;

	mk_market_service_search_cancel(markets->service, state->query);
}

/* Search queries longer than this many characters are a 400 (issue 6). */
#define SEARCH_QUERY_MAX_CHARS 500

enum mk_err
mk_markets_search(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct search_state *state;
	const char *q, *limit_text;
	size_t len, chars = 0;
	bool blank = true;
	uint64_t limit = 10;
	enum mk_err rc;

	if ((rc = mk_param_single(req, "q", &q)) != MK_OK ||
	    (rc = mk_param_single(req, "limit", &limit_text)) != MK_OK)
		return rc;
	if (q == NULL)
		return mk_param_bad(req, "q", "is required");
	len = strlen(q);
	for (size_t i = 0; i < len; chars++) {
		size_t step =
		    mk_utf8_sequence_len((const unsigned char *)q + i, len - i);

		if (step == 0)
			return mk_param_bad(req, "q", "is not valid UTF-8");
		if (step > 1 ||
		    (q[i] != ' ' && q[i] != '\t' && q[i] != '\n' &&
			q[i] != '\r'))
			blank = false;
		i += step;
	}
	if (blank)
		return mk_param_bad(req, "q", "must not be empty");
	if (chars > SEARCH_QUERY_MAX_CHARS)
		return mk_param_bad(req, "q", "is longer than 500 characters");
	if (limit_text != NULL &&
	    !mk_param_uint(limit_text, 1, MK_MARKET_SEARCH_MAX_LIMIT, &limit))
		return mk_param_bad(
		    req, "limit", "must be an integer from 1 to 50");
	if (markets->service == NULL ||
	    !mk_market_service_can_search(markets->service)) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	state = mk_arena_calloc(req->arena, 1, sizeof(*state));
	if (state == NULL)
		return MK_ENOMEM;
	state->limit = (size_t)limit;
	rc = mk_market_service_search_start(markets->service, req->arena, q,
	    len, req->wait.wake, req->wait.wake_arg, &state->query);
	if (rc == MK_EPENDING) {
		/*
		 * The embedder is asked: the worker serves others until it
		 * answers.
		 */
		req->wait.state = state;
		req->wait.resume = search_resume;
		req->wait.cancel = search_cancel;
		return MK_EPENDING;
	}
	if (rc != MK_OK)
		return search_failed(req, rc);
	return search_answer(markets, req, resp, state);
}
