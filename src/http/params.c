/*
 * Query and path parameters (http layer); see params.h.
 */
#include <stdio.h>

#include "core/arena.h"
#include "http/params.h"
#include "http/request.h"

bool
mk_param_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (text[0] < '0' || text[0] > '9' ||
	    (text[0] == '0' && text[1] != '\0'))
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' ||
		    v > (max - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

bool
mk_param_id(const char *text, int64_t *out)
{
	uint64_t v;

	if (!mk_param_uint(text, 1, (uint64_t)INT64_MAX, &v))
		return false;
	*out = (int64_t)v;
	return true;
}

enum mk_err
mk_param_bad(struct mk_request *req, const char *name, const char *why)
{
	char *message = mk_arena_alloc(req->arena, 160);

	if (message != NULL) {
		(void)snprintf(message, 160, "Invalid query parameter '%s': %s",
		    name, why);
		req->error_message = message;
	}
	req->log_error = "bad query parameter";
	return MK_EBADREQUEST;
}

enum mk_err
mk_param_single(struct mk_request *req, const char *name, const char **value)
{
	size_t count = 0;
	const struct mk_query_pair *pair =
	    mk_query_find(&req->query, name, &count);

	*value = pair != NULL ? pair->value : NULL;
	return count > 1 ? mk_param_bad(req, name, "given more than once")
			 : MK_OK;
}
