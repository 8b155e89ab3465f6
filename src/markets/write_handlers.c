/*
 * Market write handlers (markets layer, http side): create, replace,
 * patch and delete a market, buy a position, queue a re-index. Each
 * parses and validates the body, reads Idempotency-Key where the contract
 * takes one, calls the market service and writes the response; a
 * handler's context is the struct mk_markets_context of handlers.h.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json_parse.h"
#include "http/links.h"
#include "http/params.h"
#include "http/request.h"
#include "http/request_id.h"
#include "http/response.h"
#include "markets/handlers.h"
#include "markets/repo.h"
#include "markets/service.h"
#include "markets/validate.h"

_Static_assert(
    MK_JSON_BODY_MAX_VALUES == 256, "parse_body's message names the cap");

/*
 * The write has committed: a Location that cannot be added (it cannot
 * happen for the paths built here) is logged, and the 201 or 202 still
 * goes out, rather than an error that would invite a retry of a write
 * that is done.
 */
static void
add_location(
    struct mk_response *resp, struct mk_request *req, const char *location)
{
	if (mk_links_location(resp, req, location) != MK_OK)
		req->log_error = "the Location header could not be added";
}

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

	rc = mk_json_parse_in(req->arena, req->body, req->body_len,
	    MK_JSON_MAX_DEPTH, MK_JSON_BODY_MAX_VALUES, &body, &why);
	if (rc == MK_EBADJSON) {
		req->log_error = why;
		/*
		 * Valid JSON past the cap is refused for its size, and says so.
		 */
		if (why != NULL && strcmp(why, MK_JSON_TOO_MANY_VALUES) == 0)
			req->error_message = "Request body holds more JSON "
					     "values than a write takes (256)";
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
 * The path is the one after the base (REQUEST_URI, query included, less
 * its first base_len bytes): the same request through another mount
 * point is the same request, as its stored Location is base-free.
 */
static enum mk_err
idempotency_key(
    struct mk_request *req, struct mk_idempotency *idem, bool *present)
{
	const char *key = mk_request_param(req, "HTTP_IDEMPOTENCY_KEY");
	const char *uri = mk_request_param(req, "REQUEST_URI");
	EVP_MD_CTX *ctx;
	unsigned len = 0;
	int ok;

	/* Parsed already: REQUEST_URI starts with the base. */
	if (uri != NULL && strlen(uri) >= req->base_len)
		uri += req->base_len;

	*present = key != NULL;
	if (key == NULL)
		return MK_OK;
	if (!mk_request_id_valid(key, strlen(key))) {
		req->error_message = "Idempotency-Key must be 1 to 64 "
				     "characters of A-Z a-z 0-9 . _ -";
		return MK_EBADREQUEST;
	}
	memset(idem, 0, sizeof(*idem));
	idem->user_id = req->identity.user_id;
	idem->key = key;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(
		ctx, req->method_name, strlen(req->method_name) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, uri != NULL ? uri : "",
		(uri != NULL ? strlen(uri) : 0) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, req->body, req->body_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, idem->hash, &len) == 1 &&
	    len == sizeof(idem->hash);
	EVP_MD_CTX_free(ctx);
	return ok ? MK_OK : MK_EINTERNAL;
}

/* A stored response's data: JSON text (a NUL-terminated string). */
static void
stored_json(struct mk_buf *out, const void *text)
{
	mk_buf_puts(out, text);
}

/* Answers an idempotent write from what it stored (first run or replay). */
static enum mk_err
idempotent_answer(struct mk_request *req, struct mk_response *resp,
    enum mk_err rc, const struct mk_idempotency *idem, bool replayed)
{
	if (rc == MK_ECONFLICT && replayed == false &&
	    req->error_message == NULL)
		req->error_message = "A request with this Idempotency-Key is "
				     "still running, or conflicts";
	if (rc == MK_EIDEMPOTENCY)
		req->error_message =
		    "This Idempotency-Key was used with a different request";
	if (rc != MK_OK)
		return rc;
	/*
	 * Stored data: a value the guard refuses is a broken record, not a 201
	 * without Location. It was stored without a base, and gets this
	 * request's: a replay through another mount point (a host that moved
	 * the application) is sent where it can follow.
	 */
	if (idem->location != NULL &&
	    mk_links_location(resp, req, idem->location) != MK_OK) {
		req->log_error = "an idempotent replay's stored Location is "
				 "not a header value";
		return MK_EINTERNAL;
	}
	if (replayed)
		mk_response_header(resp, "Idempotent-Replayed", "true");
	return mk_response_item(
	    resp, idem->status, "no-store", stored_json, idem->data_json);
}

enum mk_err
mk_markets_create(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_market_input input;
	struct mk_idempotency idem;
	struct mk_market market;
	bool has_key, replayed = false;
	char location[48];
	enum mk_err rc;

	if ((rc = parse_body(req, &input, mk_market_validate_create)) != MK_OK)
		return rc;
	if (markets->service == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	if ((rc = idempotency_key(req, &idem, &has_key)) != MK_OK)
		return rc;
	if (has_key) {
		rc = mk_market_service_create_once(markets->service, req->arena,
		    &req->identity, &input, &idem, &replayed);
		return idempotent_answer(req, resp, rc, &idem, replayed);
	}
	rc = mk_market_service_create(
	    markets->service, req->arena, &req->identity, &input, &market);
	if (rc == MK_ECONFLICT) {
		req->error_message =
		    "The token's email belongs to another user";
		return rc;
	}
	if (rc != MK_OK)
		return rc;
	(void)snprintf(location, sizeof(location), "/api/markets/%lld",
	    (long long)market.id);
	add_location(resp, req, location);
	return mk_response_item(resp, 201, "no-store", mk_market_json, &market);
}

enum mk_err
mk_positions_buy(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	struct mk_market_input input;
	struct mk_position position;
	struct mk_idempotency idem;
	bool has_key, replayed = false;
	char location[96];
	int64_t market_id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &market_id))
		return MK_ENOTFOUND;
	if ((rc = parse_body(req, &input, mk_position_validate)) != MK_OK)
		return rc;
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	if ((rc = idempotency_key(req, &idem, &has_key)) != MK_OK)
		return rc;
	if (has_key) {
		rc = mk_position_service_buy_once(markets->service, req->arena,
		    &req->identity, market_id, input.side, input.amount, &idem,
		    &replayed);
		if (rc == MK_ECONFLICT && req->error_message == NULL)
			req->error_message =
			    "The market is not active, or a request with this "
			    "Idempotency-Key is still running";
		if (rc == MK_EOVERFLOW)
			req->error_message =
			    "The market's volume would exceed its largest "
			    "value (" MK_VOLUME_MAX ")";
		return idempotent_answer(req, resp, rc, &idem, replayed);
	}
	rc = mk_position_service_buy(markets->service, req->arena,
	    &req->identity, market_id, input.side, input.amount, &position);
	if (rc == MK_ECONFLICT && req->error_message == NULL)
		req->error_message = "The market is not active";
	if (rc == MK_EOVERFLOW)
		req->error_message = "The market's volume would exceed its "
				     "largest value (" MK_VOLUME_MAX ")";
	if (rc != MK_OK)
		return rc;
	(void)snprintf(location, sizeof(location),
	    "/api/markets/%lld/positions/%lld", (long long)market_id,
	    (long long)position.id);
	add_location(resp, req, location);
	return mk_response_item(
	    resp, 201, "no-store", mk_position_json, &position);
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
write_market(struct mk_markets_context *markets, struct mk_request *req,
    struct mk_response *resp, enum mk_market_write kind)
{
	struct mk_market_input input;
	struct mk_market market;
	char etag[32];
	int64_t id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	rc = parse_body(req, &input,
	    kind == MK_WRITE_REPLACE ? validate_replace : validate_patch);
	if (rc != MK_OK)
		return rc;
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_update(markets->service, req->arena,
	    &req->identity, id, &input, mk_request_param(req, "HTTP_IF_MATCH"),
	    &market);
	if (rc == MK_EFORBIDDEN)
		req->error_message = "Only the market's creator, a moderator "
				     "or an admin may change it";
	if (rc == MK_EPRECONDITION)
		req->error_message = "The market changed since that ETag";
	if (rc != MK_OK)
		return rc;
	mk_market_etag(market.version, etag);
	mk_response_header(resp, "ETag", etag);
	return mk_response_item(resp, 200, "no-store", mk_market_json, &market);
}

enum mk_err
mk_markets_replace(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	return write_market(context, req, resp, MK_WRITE_REPLACE);
}

enum mk_err
mk_markets_patch(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	return write_market(context, req, resp, MK_WRITE_PATCH);
}

enum mk_err
mk_markets_delete(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	int64_t id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_remove(
	    markets->service, req->arena, &req->identity, id);
	if (rc != MK_OK)
		return rc;
	mk_response_empty(resp, 204);
	return MK_OK;
}

enum mk_err
mk_markets_index(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_markets_context *markets = context;
	int64_t id, job_id = 0;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (markets->service == NULL)
		return MK_EUNAVAIL;
	rc = mk_market_service_index(
	    markets->service, req->arena, &req->identity, id, &job_id);
	if (rc == MK_EFORBIDDEN)
		req->error_message = "Only the market's creator, a moderator "
				     "or an admin may re-index it";
	if (rc != MK_OK)
		return rc;
	{
		char location[48];

		(void)snprintf(location, sizeof(location), "/api/jobs/%lld",
		    (long long)job_id);
		add_location(resp, req, location);
	}
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 202);
	mk_buf_printf(&resp->body, "{\"job_id\":%lld}", (long long)job_id);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}
