/*
 * Market handlers (markets layer); see handlers.h. A bad query parameter
 * is a 400 bad_request whose message names the parameter; an id that
 * cannot exist (not a canonical positive 64-bit integer) is a 404, as an
 * unknown one is.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "core/arena.h"
#include "http/request.h"
#include "http/response.h"
#include "markets/handlers.h"
#include "markets/service.h"

/* Parses a path id: digits only, no leading zero, 1..INT64_MAX. */
static bool
parse_id(const char *text, int64_t *out)
{
	uint64_t v = 0;

	if (text[0] < '1' || text[0] > '9')
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
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

enum mk_err
mk_markets_get(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	const char *fields_text, *include, *bad;
	struct mk_market market;
	unsigned fields = 0;
	size_t bad_len;
	int64_t id;
	enum mk_err rc;

	if (!parse_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if ((rc = single_param(req, "fields", &fields_text)) != MK_OK ||
	    (rc = single_param(req, "include", &include)) != MK_OK)
		return rc;
	if (fields_text != NULL &&
	    mk_market_fields_parse(fields_text, &fields, &bad, &bad_len) != MK_OK) {
		char why[96];

		(void)snprintf(why, sizeof(why), "unknown field '%.*s'", (int)(bad_len > 40 ? 40 : bad_len), bad);
		return bad_param(req, "fields", why);
	}
	if (include != NULL && strcmp(include, "creator") != 0)
		return bad_param(req, "include", "only 'creator' can be included");
	if (app->repo == NULL) {
		req->log_error = "no database configured";
		return MK_EUNAVAIL;
	}
	rc = mk_market_service_get(app->repo, req->arena, id, fields, include != NULL, &market);
	if (rc != MK_OK)
		return rc;
	mk_response_header(resp, "Cache-Control", "no-cache");
	mk_response_begin_data(resp, 200);
	mk_market_json(&resp->body, &market);
	mk_response_end_data(resp, NULL);
	return MK_OK;
}
