/*
 * Unit tests of the rate limiter's client address (src/auth/ratelimit.c),
 * table-driven: REMOTE_ADDR and the X-Forwarded-For lines, as text, with
 * trusted_proxies = 127.0.0.1 and 10.0.0.0/8. An untrusted REMOTE_ADDR is
 * the client whatever the header says; behind a trusted one the header is
 * walked from its right, line by line from the last (the nearest hop's),
 * past trusted entries, to the first untrusted address; an entry that is
 * not an address stops the walk at the last good hop.
 */
#include <stdio.h>
#include <string.h>

#include "auth/ratelimit.h"
#include "core/config.h"
#include "tap.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct address_case {
	const char *name;
	const char *remote;
	const char *forwarded[3]; /* the lines, NULL-terminated */
	const char *want;
};

static const struct address_case cases[] = {
	{ "no REMOTE_ADDR", NULL, { "198.51.100.1" }, "unknown" },
	{ "untrusted REMOTE_ADDR: the header is not believed", "192.0.2.1",
	    { "198.51.100.1" }, "192.0.2.1" },
	{ "trusted proxy without the header", "127.0.0.1", { NULL },
	    "127.0.0.1" },
	{ "trusted proxy, one entry", "127.0.0.1", { "198.51.100.1" },
	    "198.51.100.1" },
	{ "the rightmost entry", "127.0.0.1", { "203.0.113.9, 198.51.100.1" },
	    "198.51.100.1" },
	{ "trusted entries are passed", "127.0.0.1",
	    { "203.0.113.9, 10.1.2.3" }, "203.0.113.9" },
	{ "blanks around entries", "127.0.0.1", { " 203.0.113.9 ,\t10.1.2.3 " },
	    "203.0.113.9" },
	{ "IPv6 entry", "10.0.0.1", { "2001:db8::1" }, "2001:db8::1" },
	{ "garbage stops at the last good hop", "127.0.0.1",
	    { "203.0.113.9, forged, 10.1.2.3" }, "10.1.2.3" },
	{ "an empty entry stops too", "127.0.0.1",
	    { "203.0.113.9, , 10.1.2.3" }, "10.1.2.3" },
	{ "an over-long entry stops too", "127.0.0.1",
	    { "203.0.113.9, 1111111111111111111111111111111111111111111111"
	      "111111111111111111111111, 10.1.2.3" },
	    "10.1.2.3" },
	{ "two lines: the last is the nearest hop's", "127.0.0.1",
	    { "198.51.100.8", "203.0.113.1" }, "203.0.113.1" },
	{ "two lines: a trusted last line leads to the one before", "127.0.0.1",
	    { "198.51.100.8", "10.0.0.5" }, "198.51.100.8" },
	{ "every entry trusted: the farthest", "127.0.0.1",
	    { "10.0.0.1", "10.0.0.2, 10.0.0.3" }, "10.0.0.1" },
};

int
main(void)
{
	static const char conf[] = "trusted_proxies = 127.0.0.1, 10.0.0.0/8\n";
	struct mk_config *config = mk_config_new();
	struct mk_rate_limiter *limiter = NULL;
	char err[MK_CONFIG_ERR_MAX], out[64];

	if (config == NULL ||
	    mk_config_parse(config, "test", conf, sizeof(conf) - 1, err,
		sizeof(err)) != MK_OK ||
	    (limiter = mk_ratelimit_new(config, NULL, err, sizeof(err))) ==
		NULL) {
		tap_ok(0, "a limiter with trusted proxies");
		mk_config_free(config);
		return tap_done();
	}
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t n = 0;

		while (n < N_ELEMS(cases[i].forwarded) &&
		    cases[i].forwarded[n] != NULL)
			n++;
		mk_ratelimit_client_address(limiter, cases[i].remote,
		    cases[i].forwarded, n, out, sizeof(out));
		tap_is_str(out, cases[i].want, "%s", cases[i].name);
	}
	mk_ratelimit_free(limiter);
	mk_config_free(config);
	return tap_done();
}
