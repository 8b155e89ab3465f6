/*
 * Market handlers (markets layer, http side): parse the request, call the
 * market service, write the response. No SQL, no business rules here.
 * handlers.c has the reads (and search), write_handlers.c the writes.
 * Every handler's context is a struct mk_markets_context, made by the
 * wiring and worker-lifetime.
 */
#ifndef MK_MARKET_HANDLERS_H
#define MK_MARKET_HANDLERS_H

#include "core/err.h"

struct mk_market_service;
struct mk_request;
struct mk_response;

/* What the market routes see. */
struct mk_markets_context {
	struct mk_market_service *service; /* NULL: no database configured */
	unsigned char cursor_key[32]; /* MAC key of list cursors (cursor.h) */
};

/* GET /api/markets/:id — fields, include=creator. */
enum mk_err mk_markets_get(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * GET /api/markets — filters, sort, limit, offset or cursor, fields, include,
 * count.
 */
enum mk_err mk_markets_list(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * POST /api/markets — create (body: name, description, status, end_date,
 * initial_position).
 */
enum mk_err mk_markets_create(
    void *context, struct mk_request *req, struct mk_response *resp);

/* GET /api/markets/:id/positions — limit, offset or cursor; newest first. */
enum mk_err mk_positions_list(
    void *context, struct mk_request *req, struct mk_response *resp);

/* GET /api/markets/:id/positions/:pid */
enum mk_err mk_positions_get(
    void *context, struct mk_request *req, struct mk_response *resp);

/* POST /api/markets/:id/positions — buy: {side, amount}. */
enum mk_err mk_positions_buy(
    void *context, struct mk_request *req, struct mk_response *resp);

/* PUT /api/markets/:id — replace the writable fields; If-Match honoured. */
enum mk_err mk_markets_replace(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * PATCH /api/markets/:id — change the given writable fields; If-Match honoured.
 */
enum mk_err mk_markets_patch(
    void *context, struct mk_request *req, struct mk_response *resp);

/* DELETE /api/markets/:id — 204; its positions go with it. */
enum mk_err mk_markets_delete(
    void *context, struct mk_request *req, struct mk_response *resp);

/*
 * GET /api/markets/search?q=&limit= — the markets most similar to q
 * (1-500 characters, not blank), each with its score, best first; limit
 * 1-50, default 10.
 */
enum mk_err mk_markets_search(
    void *context, struct mk_request *req, struct mk_response *resp);

/* POST /api/markets/:id/index — 202 {job_id}: a re-index is queued. */
enum mk_err mk_markets_index(
    void *context, struct mk_request *req, struct mk_response *resp);

#endif
