/*
 * Unit tests for the base path (src/http/base_path.c): where the
 * application is mounted, configured or derived from the FastCGI
 * parameters. The derived cases are the parameters a real Apache 2.4 with
 * mod_fcgid gave behind the shared-hosting .htaccess rewrite
 * (RewriteRule ^(.*)$ markets.fcgi/$1 [QSA,L], mounted at /~demo/markets)
 * and those nginx gives; each case is one request with the base it must
 * get. Then the writer that puts request bytes back into headers, and
 * the configuration's rule for base_path.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config_check.h"
#include "http/base_path.h"
#include "tap.h"

struct find_case {
	const char *name;
	const char *path; /* REQUEST_URI without its query, as sent */
	const char *configured;
	const char *script_name;
	const char *path_info;
	enum mk_err rc;
	const char *base; /* when MK_OK */
};

#define SN "/~demo/markets/markets.fcgi"

static const struct find_case find_cases[] = {
	/* nginx: SCRIPT_NAME is the whole path, PATH_INFO empty. */
	{ "nginx", "/api/markets", NULL, "/api/markets", "", MK_OK, "" },
	{ "nginx, no PATH_INFO", "/api/markets", "", "/api/markets", NULL,
	    MK_OK, "" },
	{ "no parameters at all", "/healthz", NULL, NULL, NULL, MK_OK, "" },
	/* Apache mod_fcgid behind the .htaccess rewrite, as observed. */
	{ "apache rewrite", "/~demo/markets/api/markets", NULL, SN,
	    "/api/markets", MK_OK, "/~demo/markets" },
	{ "apache rewrite, escapes in the route",
	    "/~demo/markets/api/mar%6Bets/%7E1", NULL, SN, "/api/markets/~1",
	    MK_OK, "/~demo/markets" },
	{ "apache rewrite, an escape in the base",
	    "/%7Edemo/markets/api/markets", NULL, SN, "/api/markets", MK_OK,
	    "/%7Edemo/markets" },
	{ "apache rewrite, UTF-8", "/~demo/markets/api/%C3%A9", NULL, SN,
	    "/api/\xc3\xa9", MK_OK, "/~demo/markets" },
	{ "apache rewrite, blank and plus", "/~demo/markets/api/a%20b+c", NULL,
	    SN, "/api/a b+c", MK_OK, "/~demo/markets" },
	{ "apache rewrite, the root", "/~demo/markets/", NULL, SN, "/", MK_OK,
	    "/~demo/markets" },
	/* With [B=%?#] on the rule, Apache passes %25, %3F, %23 through. */
	{ "apache rewrite [B=%?#], %25", "/~demo/markets/api/x%25y", NULL, SN,
	    "/api/x%y", MK_OK, "/~demo/markets" },
	{ "apache rewrite [B=%?#], %3F %23", "/~demo/markets/api/x%3Fy%23z",
	    NULL, SN, "/api/x?y#z", MK_OK, "/~demo/markets" },
	/* Apache merged "//" in PATH_INFO: SCRIPT_NAME's directory. */
	{ "apache merged slashes", "/~demo/markets/api//markets/", NULL, SN,
	    "/api/markets/", MK_OK, "/~demo/markets" },
	/* The wrapper named in the URL: it is part of the base. */
	{ "apache, no rewrite", "/~demo/markets/markets.fcgi/api/markets", NULL,
	    SN, "/api/markets", MK_OK, "/~demo/markets/markets.fcgi" },
	{ "apache, no rewrite, PATH_INFO unlike",
	    "/~demo/markets/markets.fcgi/x//y", NULL, SN, "/x/y", MK_OK,
	    "/~demo/markets/markets.fcgi" },
	/*
	 * Apache resolved dot segments in PATH_INFO: the base keeps them, as
	 * sent, and what a client resolves from it is the same place.
	 */
	{ "apache resolved dot segments", "/~demo/markets/./api/../api/markets",
	    NULL, SN, "/api/markets", MK_OK, "/~demo/markets/./api/.." },
	/* Apache merged and resolved "//evil.example/..": kept as sent. */
	{ "apache, a host-like base", "//evil.example/../~demo/markets/api/x",
	    NULL, SN, "/api/x", MK_OK, "//evil.example/../~demo/markets" },
	{ "PATH_INFO is the whole path", "/api/markets", NULL, "",
	    "/api/markets", MK_OK, "" },
	{ "nothing matches: the root", "/elsewhere/api", NULL, SN, "/api/x",
	    MK_OK, "" },
	{ "SCRIPT_NAME at the root", "/x/api", NULL, "/markets.fcgi", "/y",
	    MK_OK, "" },
	{ "a prefix of a segment is no base", "/~demo/marketsX/api", NULL, SN,
	    "/zzz", MK_OK, "" },
	{ "PATH_INFO's '/' is not %2F", "/a%2Fapi/markets", NULL, "/a/x.fcgi",
	    "/api/markets", MK_OK, "" },
	{ "PATH_INFO without a leading '/'", "/b/api", NULL, "/b/m.fcgi", "api",
	    MK_OK, "/b" },
	{ "longer PATH_INFO than the path", "/a", NULL, NULL, "/a/b/c", MK_OK,
	    "" },
	{ "a bad escape in the base", "/%zz/api/markets", NULL, SN,
	    "/api/markets", MK_EBADREQUEST, NULL },
	{ "%00 in the base", "/%00/api/markets", NULL, SN, "/api/markets",
	    MK_EBADREQUEST, NULL },
	/* Configured. */
	{ "configured root", "/api/markets", "/", SN, "/x", MK_OK, "" },
	{ "configured", "/~demo/markets/api/markets", "/~demo/markets", NULL,
	    NULL, MK_OK, "/~demo/markets" },
	{ "configured, whatever PATH_INFO says", "/~demo/markets/api",
	    "/~demo/markets", SN, "/nothing/alike", MK_OK, "/~demo/markets" },
	{ "configured, an escape sent", "/%7edemo/mark%65ts/api",
	    "/~demo/markets", NULL, NULL, MK_OK, "/%7edemo/mark%65ts" },
	{ "configured, the base alone", "/~demo/markets", "/~demo/markets",
	    NULL, NULL, MK_OK, "/~demo/markets" },
	{ "configured, outside", "/api/markets", "/~demo/markets", NULL, NULL,
	    MK_ENOTFOUND, NULL },
	{ "configured, a longer segment", "/~demo/marketsX/api",
	    "/~demo/markets", NULL, NULL, MK_ENOTFOUND, NULL },
	{ "configured, shorter path", "/~demo", "/~demo/markets", NULL, NULL,
	    MK_ENOTFOUND, NULL },
	{ "configured, %2F is not '/'", "/a%2Fb/api", "/a/b", NULL, NULL,
	    MK_ENOTFOUND, NULL },
	{ "configured, case matters", "/Base/api", "/base", NULL, NULL,
	    MK_ENOTFOUND, NULL },
};

static void
test_find(void)
{
	for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]);
	     i++) {
		const struct find_case *c = &find_cases[i];
		size_t base_len = 99;
		enum mk_err rc = mk_base_path_find(c->path, strlen(c->path),
		    c->configured, c->script_name, c->path_info, &base_len);
		char base[128];

		tap_ok(rc == c->rc, "%s: %s (got %s)", c->name,
		    mk_err_name(c->rc), mk_err_name(rc));
		if (c->rc != MK_OK || rc != MK_OK)
			continue;
		(void)snprintf(
		    base, sizeof(base), "%.*s", (int)base_len, c->path);
		tap_is_str(base, c->base, "%s: base '%s'", c->name,
		    c->base != NULL ? c->base : "(none)");
	}
}

struct put_case {
	const char *in;
	bool query;
	const char *want;
};

static const struct put_case put_cases[] = {
	{ "/~demo/markets", false, "/~demo/markets" },
	{ "/%7Edemo/a%20b", false, "/%7Edemo/a%20b" },
	{ "/a b\"<>\\^`{|}", false, "/a%20b%22%3C%3E%5C%5E%60%7B%7C%7D" },
	{ "/\xc3\xa9", false, "/%C3%A9" },
	{ "/100%", false, "/100%25" },
	{ "/%zz%4", false, "/%25zz%254" },
	{ "/a?b#c", false, "/a%3Fb%23c" },
	{ "a=1&b=?/x#", true, "a=1&b=?/x%23" },
	{ "\r\n\t\x7f", true, "%0D%0A%09%7F" },
	{ "!$&'()*+,;=:@-._~", false, "!$&'()*+,;=:@-._~" },
	/* Never "//host": a derived base Apache resolved, or its raw path. */
	{ "//evil.example/../~demo/markets", false,
	    "/evil.example/../~demo/markets" },
	{ "///evil.example/api", false, "/evil.example/api" },
	{ "/a//b", false, "/a//b" },
	{ "//x", true, "//x" },
};

static void
test_put(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	for (size_t i = 0; i < sizeof(put_cases) / sizeof(put_cases[0]); i++) {
		struct mk_buf out;

		mk_buf_init(&out, arena);
		mk_base_path_put(&out, put_cases[i].in, strlen(put_cases[i].in),
		    put_cases[i].query);
		mk_buf_putc(&out, '\0');
		tap_is_str(out.data, put_cases[i].want, "put case %zu", i);
	}
	mk_arena_free(arena);
}

struct check_case {
	const char *value;
	bool ok;
};

static const struct check_case check_cases[] = {
	{ "", true },
	{ "/", true },
	{ "/~demo/markets", true },
	{ "/a/b-c_d.e/f~g", true },
	{ "/api:v1@x", true },
	{ "markets", false },
	{ "/markets/", false },
	{ "//", false },
	{ "/a//b", false },
	{ "/a/../b", false },
	{ "/a/./b", false },
	{ "/..", false },
	{ "/.", false },
	{ "/a%20b", false },
	{ "/a?b", false },
	{ "/a#b", false },
	{ "/a b", false },
	{ "/a\"b", false },
	{ "/\xc3\xa9", false },
	{ "/a\tb", false },
	{ "/...", true },
	{ "/.well", true },
};

static void
test_check(void)
{
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]);
	     i++) {
		const char *why =
		    mk_config_check_base_path(check_cases[i].value);

		tap_ok((why == NULL) == check_cases[i].ok,
		    "base_path '%s' %s%s%s", check_cases[i].value,
		    check_cases[i].ok ? "accepted" : "refused",
		    why != NULL ? ": " : "", why != NULL ? why : "");
	}
}

int
main(void)
{
	test_find();
	test_put();
	test_check();
	return tap_done();
}
