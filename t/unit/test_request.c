/*
 * Unit tests for the request layer (src/http/request.c): turning
 * REQUEST_URI into decoded path segments and query pairs (segments are
 * split before decoding, so %2F stays inside one), parsing
 * CONTENT_LENGTH, the body checks made before any of the body is read
 * (size cap, JSON media type, charset) and method names. Every case is a
 * row: the input as the front server would pass it and what must come
 * out.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "http/request.h"
#include "tap.h"

static struct mk_param
param(const char *name, const char *value)
{
	struct mk_param p = { name, value, strlen(name), strlen(value) };

	return p;
}

struct target_case {
	const char *uri; /* NULL: no REQUEST_URI at all */
	enum mk_err rc;
	const char *segments; /* when MK_OK: decoded segments joined by " | " */
	/* when MK_OK: decoded pairs as "k=v" joined by " & " */
	const char *query;
	const char *raw_path; /* when MK_OK */
};

static const struct target_case target_cases[] = {
	{ "/", MK_OK, "", "", "/" },
	{ "/a/", MK_OK, "a | ", "", "/a/" },
	{ "//", MK_OK, " | ", "", "//" },
	{ "/api/markets/42", MK_OK, "api | markets | 42", "",
	    "/api/markets/42" },
	{ "/a%2Fb/c", MK_OK, "a/b | c", "", "/a%2Fb/c" },
	{ "/a%2fb", MK_OK, "a/b", "", "/a%2fb" },
	{ "/a%20b/%C3%A9", MK_OK, "a b | \xc3\xa9", "", "/a%20b/%C3%A9" },
	{ "/a+b", MK_OK, "a+b", "", "/a+b" },
	{ "/a%3Fb", MK_OK, "a?b", "", "/a%3Fb" },
	{ "/x?q=a+b&n=%C3%A9", MK_OK, "x", "q=a b & n=\xc3\xa9", "/x" },
	{ "/x?q=%2F&q=2", MK_OK, "x", "q=/ & q=2", "/x" },
	{ "/x?", MK_OK, "x", "", "/x" },
	{ "/?a=1", MK_OK, "", "a=1", "/" },
	{ "/x?a=b?c", MK_OK, "x", "a=b?c", "/x" },
	{ "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", MK_OK,
	    "1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | "
	    "16",
	    "", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16" },
	{ "/a%zz", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a%2", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a/b%/c", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a%00", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a?q=%zz", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a?q=%00", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "/a?=x", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "a/b", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "http://example.com/a", MK_EBADREQUEST, NULL, NULL, NULL },
	{ "?a=1", MK_EBADREQUEST, NULL, NULL, NULL },
	{ NULL, MK_EBADREQUEST, NULL, NULL, NULL },
	/* More segments than any route can have: a 404 … */
	{ "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", MK_ENOTFOUND, NULL,
	    NULL, NULL },
	{ "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/", MK_ENOTFOUND, NULL, NULL,
	    NULL },
	/* … unless a bad escape makes it a 400, wherever it is. */
	{ "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/%zz", MK_EBADREQUEST,
	    NULL, NULL, NULL },
	{ "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17?a=%", MK_EBADREQUEST,
	    NULL, NULL, NULL },
};

static void
join_segments(const struct mk_request *req, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < req->nsegments; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s",
		    i ? " | " : "", req->segments[i]);
}

static void
join_query(const struct mk_query *query, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < query->count; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s=%s",
		    i ? " & " : "", query->pairs[i].key, query->pairs[i].value);
}

static void
test_parse_target(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	for (size_t i = 0; i < sizeof(target_cases) / sizeof(target_cases[0]);
	     i++) {
		const struct target_case *c = &target_cases[i];
		struct mk_param params[2];
		struct mk_request req;
		char got[512];
		enum mk_err rc;

		params[0] = param("REQUEST_METHOD", "GET");
		params[1] = param("REQUEST_URI", c->uri != NULL ? c->uri : "");
		memset(&req, 0, sizeof(req));
		req.arena = arena;
		req.params = params;
		req.nparams = c->uri != NULL ? 2 : 1;
		rc = mk_request_parse_target(&req);
		tap_is_int(
		    rc, c->rc, "target '%s': rc", c->uri ? c->uri : "(none)");
		if (c->rc == MK_OK) {
			join_segments(&req, got, sizeof(got));
			tap_is_str(
			    got, c->segments, "target '%s': segments", c->uri);
			join_query(&req.query, got, sizeof(got));
			tap_is_str(got, c->query, "target '%s': query", c->uri);
			tap_is_str(req.raw_path, c->raw_path,
			    "target '%s': raw path", c->uri);
		} else if (c->rc == MK_EBADREQUEST) {
			tap_ok(req.log_error != NULL,
			    "target '%s': log_error says why",
			    c->uri ? c->uri : "(none)");
		}
		mk_arena_reset(arena);
	}
	mk_arena_free(arena);
}

struct length_case {
	const char *value; /* NULL: no CONTENT_LENGTH */
	int rc;
	uint64_t length;
};

static const struct length_case length_cases[] = {
	{ NULL, 0, 0 }, { "", 0, 0 }, { "0", 1, 0 }, { "5", 1, 5 },
	{ "1048576", 1, 1048576 }, { "007", 1, 7 },
	{ "1000000000000", 1, 1000000000000ULL }, { "12a", -1, 0 },
	{ "a12", -1, 0 }, { "-1", -1, 0 }, { "+1", -1, 0 }, { " 12", -1, 0 },
	{ "12 ", -1, 0 }, { "1.5", -1, 0 }, { "0x10", -1, 0 },
	{ "99999999999999999999999", -1, 0 },
	{ "18446744073709551616", -1, 0 }, /* UINT64_MAX + 1 */
};

static void
test_content_length(void)
{
	for (size_t i = 0; i < sizeof(length_cases) / sizeof(length_cases[0]);
	     i++) {
		const struct length_case *c = &length_cases[i];
		struct mk_param params[2];
		uint64_t length = 424242;
		int rc;

		params[0] = param("CONTENT_TYPE", "application/json");
		params[1] =
		    param("CONTENT_LENGTH", c->value != NULL ? c->value : "");
		rc = mk_request_content_length(
		    params, c->value != NULL ? 2 : 1, &length);
		tap_is_int(rc, c->rc, "CONTENT_LENGTH '%s': result",
		    c->value != NULL ? c->value : "(absent)");
		if (c->rc == 1)
			tap_is_int(length, c->length,
			    "CONTENT_LENGTH '%s': value", c->value);
	}
}

struct body_case {
	const char *type; /* NULL: no CONTENT_TYPE */
	size_t max_body;
	uint64_t body_len;
	enum mk_err rc;
};

static const struct body_case body_cases[] = {
	{ "application/json", 1000, 1001, MK_ETOOLARGE },
	{ NULL, 1000, 5000, MK_ETOOLARGE },
	{ "text/plain", 1000, 5000, MK_ETOOLARGE },
	{ "application/json", 1000, 1000, MK_OK },
	{ NULL, 1000, 10, MK_EMEDIATYPE },
	{ "", 1000, 10, MK_EMEDIATYPE },
	{ "application/json", 1000, 10, MK_OK },
	{ "APPLICATION/JSON", 1000, 10, MK_OK },
	{ "Application/JSON; charset=UTF-8", 1000, 10, MK_OK },
	{ "application/json;charset=utf-8", 1000, 10, MK_OK },
	{ "application/json;charset=\"utf-8\"", 1000, 10, MK_OK },
	{ "application/json ; charset=utf-8", 1000, 10, MK_OK },
	{ "application/json; foo=bar; charset=utf-8", 1000, 10, MK_OK },
	{ "application/json; charset=latin1", 1000, 10, MK_EMEDIATYPE },
	{ "application/json; charset=\"latin1\"", 1000, 10, MK_EMEDIATYPE },
	{ "application/json; charset=utf-16", 1000, 10, MK_EMEDIATYPE },
	{ "application/json; charset=\"utf-8", 1000, 10, MK_EMEDIATYPE },
	{ "application/json; charset", 1000, 10, MK_EMEDIATYPE },
	{ "application/json garbage", 1000, 10, MK_EMEDIATYPE },
	{ "text/plain", 1000, 10, MK_EMEDIATYPE },
	{ "text/json", 1000, 10, MK_EMEDIATYPE },
	{ "application/jsonx", 1000, 10, MK_EMEDIATYPE },
	{ "application/json-patch+json", 1000, 10, MK_EMEDIATYPE },
	{ "application/x-www-form-urlencoded", 1000, 10, MK_EMEDIATYPE },
	{ "application/merge-patch+json", 1000, 10, MK_OK },
	{ "application/merge-patch+json; charset=utf-8", 1000, 10, MK_OK },
	/* No body: the type does not matter. */
	{ "text/plain", 1000, 0, MK_OK },
	{ NULL, 1000, 0, MK_OK },
	{ "application/json", 0, 0, MK_OK },
};

static void
test_check_body(void)
{
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]);
	     i++) {
		const struct body_case *c = &body_cases[i];
		struct mk_param params[2];
		const char *reason = "unset";
		enum mk_err rc;

		params[0] = param("CONTENT_LENGTH", "10");
		params[1] =
		    param("CONTENT_TYPE", c->type != NULL ? c->type : "");
		rc = mk_request_check_body(params, c->type != NULL ? 2 : 1,
		    c->max_body, c->body_len, &reason);
		tap_is_int(rc, c->rc,
		    "check_body type '%s', %llu of max %zu: rc",
		    c->type != NULL ? c->type : "(absent)",
		    (unsigned long long)c->body_len, c->max_body);
		tap_ok(c->rc == MK_OK ? reason == NULL : reason != NULL,
		    "check_body case %zu: reason %s", i,
		    c->rc == MK_OK ? "NULL" : "set");
	}
	tap_is_int(mk_request_check_body(NULL, 0, 10, 20, NULL), MK_ETOOLARGE,
	    "check_body with a NULL reason");
}

static void
test_methods(void)
{
	static const struct {
		const char *name;
		enum mk_method method;
	} cases[] = {
		{ "GET", MK_METHOD_GET },
		{ "HEAD", MK_METHOD_HEAD },
		{ "POST", MK_METHOD_POST },
		{ "PUT", MK_METHOD_PUT },
		{ "PATCH", MK_METHOD_PATCH },
		{ "DELETE", MK_METHOD_DELETE },
		{ "OPTIONS", MK_METHOD_OPTIONS },
		{ "get", MK_METHOD_OTHER },
		{ "Get", MK_METHOD_OTHER },
		{ "GETX", MK_METHOD_OTHER },
		{ "GE", MK_METHOD_OTHER },
		{ "TRACE", MK_METHOD_OTHER },
		{ "CONNECT", MK_METHOD_OTHER },
		{ "OTHER", MK_METHOD_OTHER },
		{ "", MK_METHOD_OTHER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_is_int(mk_method_parse(cases[i].name), cases[i].method,
		    "mk_method_parse case %zu", i);
	}
	tap_is_int(
	    mk_method_parse(NULL), MK_METHOD_OTHER, "mk_method_parse(NULL)");
	for (int m = 0; m < MK_METHOD_OTHER; m++) {
		tap_is_int(mk_method_parse(mk_method_name((enum mk_method)m)),
		    m, "mk_method_name(%d) parses back", m);
	}
	tap_is_str(mk_method_name(MK_METHOD__MAX), "OTHER",
	    "an out-of-range method is OTHER");
}

static void
test_params_find(void)
{
	struct mk_param params[3];
	struct mk_request req;

	params[0] = param("HTTP_X", "1");
	params[1] = param("HTTP_X_REQUEST_ID", "abc");
	params[2] = param("HTTP_X", "2");
	memset(&req, 0, sizeof(req));
	req.params = params;
	req.nparams = 3;
	tap_is_str(mk_request_param(&req, "HTTP_X_REQUEST_ID"), "abc",
	    "param found by name");
	tap_is_str(mk_request_param(&req, "HTTP_X"), "1",
	    "the first of repeated params wins");
	tap_ok(mk_request_param(&req, "HTTP") == NULL,
	    "a prefix of a name is not that name");
	tap_ok(mk_params_find(params, 0, "HTTP_X") == NULL,
	    "nothing in an empty list");
}

int
main(void)
{
	test_parse_target();
	test_content_length();
	test_check_body();
	test_methods();
	test_params_find();
	return tap_done();
}
