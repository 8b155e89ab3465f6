/*
 * The request (http layer); see request.h. REQUEST_URI is used rather than
 * nginx's already-decoded DOCUMENT_URI so that decoding is done once, here,
 * strictly, and the same way behind nginx and Apache; segments are split
 * before decoding so an encoded '/' stays inside its segment.
 */
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/config.h"
#include "http/base_path.h"
#include "http/request.h"

static const char *const method_names[MK_METHOD__MAX] = {
	[MK_METHOD_GET] = "GET",
	[MK_METHOD_HEAD] = "HEAD",
	[MK_METHOD_POST] = "POST",
	[MK_METHOD_PUT] = "PUT",
	[MK_METHOD_PATCH] = "PATCH",
	[MK_METHOD_DELETE] = "DELETE",
	[MK_METHOD_OPTIONS] = "OPTIONS",
	[MK_METHOD_OTHER] = "OTHER",
};

enum mk_method
mk_method_parse(const char *name)
{
	if (name == NULL)
		return MK_METHOD_OTHER;
	for (int m = 0; m < MK_METHOD_OTHER; m++) {
		if (strcmp(name, method_names[m]) == 0)
			return (enum mk_method)m;
	}
	return MK_METHOD_OTHER;
}

const char *
mk_method_name(enum mk_method method)
{
	return (unsigned)method < MK_METHOD__MAX ? method_names[method]
						 : "OTHER";
}

const char *
mk_params_find(const struct mk_param *params, size_t nparams, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < nparams; i++) {
		if (params[i].name_len == len &&
		    memcmp(params[i].name, name, len) == 0)
			return params[i].value;
	}
	return NULL;
}

const char *
mk_request_param(const struct mk_request *req, const char *name)
{
	return mk_params_find(req->params, req->nparams, name);
}

enum mk_err
mk_request_parse_target(struct mk_request *req)
{
	const char *uri = mk_request_param(req, "REQUEST_URI");
	const char *qmark, *seg_start, *configured;
	const char *script_name = NULL, *path_info = NULL;
	size_t path_len, pos;
	enum mk_err rc;

	if (uri == NULL || uri[0] != '/') {
		req->log_error = "REQUEST_URI missing or not absolute";
		return MK_EBADREQUEST;
	}
	qmark = strchr(uri, '?');
	path_len = qmark != NULL ? (size_t)(qmark - uri) : strlen(uri);
	req->raw_path = mk_arena_strndup(req->arena, uri, path_len);
	if (req->raw_path == NULL)
		return MK_ENOMEM;

	/* Decode the query first: a bad escape is a 400 on any path. */
	if (qmark != NULL) {
		rc = mk_query_parse(
		    req->arena, qmark + 1, strlen(qmark + 1), &req->query);
		if (rc != MK_OK) {
			req->log_error = "bad query string";
			return rc;
		}
	}

	/*
	 * Routes see the path after the base (http/base_path.h). The
	 * parameters are looked up only when they count: not with a
	 * configured base, and SCRIPT_NAME not without a PATH_INFO (nginx).
	 */
	configured = req->config != NULL ? req->config->base_path : NULL;
	if (configured == NULL || configured[0] == '\0') {
		path_info = mk_request_param(req, "PATH_INFO");
		if (path_info != NULL && path_info[0] != '\0')
			script_name = mk_request_param(req, "SCRIPT_NAME");
	}
	rc = mk_base_path_find(req->raw_path, path_len, configured, script_name,
	    path_info, &req->base_len);
	if (rc != MK_OK) {
		req->log_error = rc == MK_ENOTFOUND ? "outside base_path"
						    : "bad escape in path";
		return rc;
	}
	req->base = req->raw_path;
	uri += req->base_len;
	path_len -= req->base_len;
	if (path_len == 0) {
		/* The base itself: the application's root. */
		uri = "/";
		path_len = 1;
	}

	req->nsegments = 0;
	pos = 1;
	seg_start = uri + 1;
	/* "/" alone has no segments; "/a/" has "a" and "". */
	if (path_len == 1)
		return MK_OK;
	for (;;) {
		const char *slash = memchr(seg_start, '/', path_len - pos);
		size_t raw_len = slash != NULL ? (size_t)(slash - seg_start)
					       : path_len - pos;
		size_t decoded_len;
		char *seg;

		if (req->nsegments == MK_PATH_MAX_SEGMENTS) {
			/*
			 * Still decode the rest: a bad escape must be a 400
			 * first.
			 */
			char *scratch =
			    mk_arena_alloc(req->arena, path_len + 1);

			if (scratch == NULL)
				return MK_ENOMEM;
			if (mk_percent_decode(seg_start, path_len - pos, false,
				scratch, &decoded_len) != MK_OK) {
				req->log_error = "bad escape in path";
				return MK_EBADREQUEST;
			}
			req->log_error = "too many path segments";
			return MK_ENOTFOUND;
		}
		seg = mk_arena_alloc(req->arena, raw_len + 1);
		if (seg == NULL)
			return MK_ENOMEM;
		if (mk_percent_decode(seg_start, raw_len, false, seg,
			&decoded_len) != MK_OK) {
			req->log_error = "bad escape in path";
			return MK_EBADREQUEST;
		}
		req->segments[req->nsegments++] = seg;
		if (slash == NULL)
			break;
		pos += raw_len + 1;
		seg_start = slash + 1;
	}
	return MK_OK;
}

int
mk_request_content_length(
    const struct mk_param *params, size_t nparams, uint64_t *length)
{
	const char *value = mk_params_find(params, nparams, "CONTENT_LENGTH");
	uint64_t n = 0;

	if (value == NULL || value[0] == '\0')
		return 0;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	*length = n;
	return 1;
}

/*
 * True when the media type is JSON: application/json (or the JSON merge
 * patch type), parameters allowed, a charset only when it is UTF-8.
 */
static bool
is_json_media_type(const char *value)
{
	static const char *const types[] = { "application/json",
		"application/merge-patch+json" };
	const char *p = NULL;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = strlen(types[i]);

		if (strncasecmp(value, types[i], n) == 0 &&
		    (value[n] == '\0' || value[n] == ';' || value[n] == ' ' ||
			value[n] == '\t')) {
			p = value + n;
			break;
		}
	}
	if (p == NULL)
		return false;
	while (*p != '\0') {
		const char *name, *val;
		size_t name_len, val_len;

		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		if (*p != ';')
			return false;
		p++;
		p += strspn(p, " \t");
		if (*p == '\0')
			/*
			 * "application/json;" — an empty parameter list is
			 * allowed
			 */
			break;
		name = p;
		name_len = strcspn(p, "=; \t");
		p += name_len;
		if (*p != '=')
			return false;
		p++;
		val = p;
		if (*val == '"') {
			const char *close = strchr(val + 1, '"');

			if (close == NULL)
				return false;
			val++;
			val_len = (size_t)(close - val);
			p = close + 1;
		} else {
			val_len = strcspn(p, "; \t");
			p += val_len;
		}
		if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    !(val_len == 5 && strncasecmp(val, "utf-8", 5) == 0))
			return false;
	}
	return true;
}

enum mk_err
mk_request_check_body(const struct mk_param *params, size_t nparams,
    size_t max_body, uint64_t body_len, const char **reason)
{
	const char *type;
	const char *why = NULL;
	enum mk_err rc = MK_OK;

	if (body_len > max_body) {
		why = "body over max_body";
		rc = MK_ETOOLARGE;
	} else if (body_len > 0) {
		type = mk_params_find(params, nparams, "CONTENT_TYPE");
		if (type == NULL || !is_json_media_type(type)) {
			why = "body is not application/json";
			rc = MK_EMEDIATYPE;
		}
	}
	if (reason != NULL)
		*reason = why;
	return rc;
}
