/*
 * Unit tests for configuration (src/core/config.c): the defaults, the
 * `key = value` syntax (comments, blanks, quotes, CRLF), every value type
 * with its units and bounds, the "origin:line: reason" error texts an
 * operator sees, the environment overrides and loading files from disk,
 * and the programs' load (mk_config_load_environ): this process's
 * environment over the files, then the program's own check. Secrets:
 * `@/path` reads one from a file (trailing newline stripped; errors name
 * the key and the path); the dump (--dump-config) never prints one, and
 * reads back as the configuration it came from.
 * The last test reads conf/markets.conf from the source tree, uncomments
 * every documented "# key = value" line and checks that the result is
 * accepted and equals the built-in defaults (dumped whole, and field by
 * field), so the shipped file cannot drift from the code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1
#define SECRET31 "0123456789abcdef0123456789abcde"
#define SECRET32 "0123456789abcdef0123456789abcdef"

enum field {
	F_NONE,
	F_WORKERS,
	F_WORKER_CONNECTIONS,
	F_MAX_BODY,
	F_SHUTDOWN_TIMEOUT,
	F_IDLE_TIMEOUT,
	F_REQUEST_TIMEOUT,
	F_SOCKET_MODE,
	F_LOG_LEVEL,
	F_LOG_FILE,   /* string */
	F_JWT_SECRET, /* string */
};

static long long
number_of(const struct mk_config *config, enum field field)
{
	switch (field) {
	case F_WORKERS:
		return config->workers;
	case F_WORKER_CONNECTIONS:
		return config->worker_connections;
	case F_MAX_BODY:
		return (long long)config->max_body;
	case F_SHUTDOWN_TIMEOUT:
		return config->shutdown_timeout_ms;
	case F_IDLE_TIMEOUT:
		return config->idle_timeout_ms;
	case F_REQUEST_TIMEOUT:
		return config->request_timeout_ms;
	case F_SOCKET_MODE:
		return config->socket_mode;
	case F_LOG_LEVEL:
		return config->log_level;
	default:
		return -1;
	}
}

static const char *
string_of(const struct mk_config *config, enum field field)
{
	return field == F_LOG_FILE  ? config->log_file
	    : field == F_JWT_SECRET ? config->jwt_secret
				    : NULL;
}

static void
test_defaults(void)
{
	struct mk_config *config = mk_config_new();

	tap_ok(config != NULL, "mk_config_new makes a configuration");
	if (config == NULL)
		return;
	tap_is_int(config->workers, 0, "default workers");
	tap_is_int(
	    config->worker_connections, 256, "default worker_connections");
	tap_is_int(config->max_body, 1048576, "default max_body");
	tap_is_int(
	    config->shutdown_timeout_ms, 10000, "default shutdown_timeout");
	tap_is_int(config->idle_timeout_ms, 75000, "default idle_timeout");
	tap_is_int(
	    config->request_timeout_ms, 30000, "default request_timeout");
	tap_is_int(config->socket_mode, 0660, "default socket_mode");
	tap_is_int(config->log_level, MK_LOG_INFO, "default log_level");
	tap_is_str(config->log_file, "", "default log_file");
	tap_is_str(config->jwt_secret, "", "default jwt_secret");
	tap_ok(mk_config_worker_count(config) >= 1,
	    "workers 0 means at least one worker");
	config->workers = 3;
	tap_is_int(mk_config_worker_count(config), 3,
	    "workers set is the worker count");
	mk_config_free(config);
	mk_config_free(NULL);
}

struct parse_case {
	const char *name;
	const char *text;
	size_t len;
	enum mk_err rc;
	const char *err_prefix; /* on error: "test.conf:N: " */
	const char *err_reason; /* on error: a substring of the rest */
	enum field field;       /* on success: what to look at */
	long long number;
	const char *string;
};

#define OK_NUM(name, text, field, n)                                           \
	{                                                                      \
		name, LIT(text), MK_OK, NULL, NULL, field, n, NULL             \
	}
#define OK_STR(name, text, field, s)                                           \
	{                                                                      \
		name, LIT(text), MK_OK, NULL, NULL, field, 0, s                \
	}
#define BAD(name, text, prefix, reason)                                        \
	{                                                                      \
		name, LIT(text), MK_EINVAL, prefix, reason, F_NONE, 0, NULL    \
	}

static const struct parse_case parse_cases[] = {
	OK_NUM("empty text", "", F_WORKERS, 0),
	OK_NUM("comments and blank lines",
	    "# a comment\n\n   \n\t# indented\n#workers = 9\n", F_WORKERS, 0),
	OK_NUM("no blanks around =", "workers=3\n", F_WORKERS, 3),
	OK_NUM("blanks around key and value", "  workers \t=\t 3  \n",
	    F_WORKERS, 3),
	OK_NUM("CRLF line ends", "# c\r\nworkers = 4\r\n", F_WORKERS, 4),
	OK_NUM("no final newline", "workers = 7", F_WORKERS, 7),
	OK_NUM("later line, other key",
	    "workers = 1\nworker_connections = 1024\n", F_WORKER_CONNECTIONS,
	    1024),
	OK_NUM("workers at its maximum", "workers = 256", F_WORKERS, 256),
	/* db_replicas: unix:/path or host:port, at most 8. */
	OK_NUM("replicas: socket and host:port",
	    "db_replicas = unix:/run/r1.sock, db2:3306, [::1]:3307\n",
	    F_WORKERS, 0),
	BAD("replicas: no port", "db_replicas = db2",
	    "test.conf:1: ", "unix:/path or host:port"),
	BAD("replicas: port 0", "db_replicas = db2:0",
	    "test.conf:1: ", "port must be 1-65535"),
	BAD("replicas: port junk", "db_replicas = db2:33x6",
	    "test.conf:1: ", "port must be 1-65535"),
	BAD("replicas: relative socket", "db_replicas = unix:r.sock",
	    "test.conf:1: ", "absolute socket path"),
	BAD("replicas: nine",
	    "db_replicas = a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1",
	    "test.conf:1: ", "more than 8"),
	BAD("replicas: empty host", "db_replicas = :3306",
	    "test.conf:1: ", "unix:/path or host:port"),
	OK_NUM("replica_max_lag", "replica_max_lag = 10s", F_WORKERS, 0),
	BAD("replica_max_lag under a second", "replica_max_lag = 500ms",
	    "test.conf:1: ", "replica_max_lag: "),
	BAD("workers over its maximum", "workers = 257",
	    "test.conf:1: ", "workers: out of range"),
	BAD("negative workers", "workers = -1", "test.conf:1: ", "workers: "),
	BAD("workers with junk", "workers = 3x", "test.conf:1: ", "workers: "),
	BAD("workers empty", "workers =", "test.conf:1: ", "workers: "),
	BAD("a trailing comment is not a comment", "workers = 1 # one",
	    "test.conf:1: ", "workers: "),
	BAD("worker_connections 0", "worker_connections = 0",
	    "test.conf:1: ", "worker_connections: out of range"),
	OK_STR("quoted value keeps blanks", "log_file = \"  spaced name  \"",
	    F_LOG_FILE, "  spaced name  "),
	OK_STR("quoted empty value", "log_file = \"\"", F_LOG_FILE, ""),
	OK_STR("inner blanks kept unquoted",
	    "log_file = /var/log/my markets.log  ", F_LOG_FILE,
	    "/var/log/my markets.log"),
	OK_STR("empty value", "log_file =", F_LOG_FILE, ""),
	OK_STR("a '#' inside a value", "log_file = /tmp/a#b", F_LOG_FILE,
	    "/tmp/a#b"),
	BAD("unterminated quote", "log_file = \"abc",
	    "test.conf:1: ", "unterminated quote"),
	BAD("a lone quote", "\n\nlog_file = \"",
	    "test.conf:3: ", "unterminated quote"),
	OK_NUM("size 512k", "max_body = 512k", F_MAX_BODY, 524288),
	OK_NUM("size 512K", "max_body = 512K", F_MAX_BODY, 524288),
	OK_NUM("size 1m", "max_body = 1m", F_MAX_BODY, 1048576),
	OK_NUM("size 1M", "max_body = 1M", F_MAX_BODY, 1048576),
	OK_NUM(
	    "size 1g (the maximum)", "max_body = 1g", F_MAX_BODY, 1073741824),
	OK_NUM("size in bytes", "max_body = 1000", F_MAX_BODY, 1000),
	BAD("size 2g out of range", "max_body = 2g",
	    "test.conf:1: ", "max_body: out of range"),
	BAD("size 0 out of range", "max_body = 0",
	    "test.conf:1: ", "max_body: out of range"),
	BAD("size with a bad unit", "max_body = 10x",
	    "test.conf:1: ", "max_body: not a size"),
	BAD("size 1kb", "max_body = 1kb",
	    "test.conf:1: ", "max_body: not a size"),
	BAD("size without digits", "max_body = k",
	    "test.conf:1: ", "max_body: not a size"),
	BAD("size that overflows", "max_body = 99999999999999999999g",
	    "test.conf:1: ", "max_body: "),
	OK_NUM("duration 250ms", "shutdown_timeout = 250ms", F_SHUTDOWN_TIMEOUT,
	    250),
	OK_NUM("duration 30s", "shutdown_timeout = 30s", F_SHUTDOWN_TIMEOUT,
	    30000),
	OK_NUM(
	    "duration 2m", "shutdown_timeout = 2m", F_SHUTDOWN_TIMEOUT, 120000),
	OK_NUM("bare duration 5 is seconds", "shutdown_timeout = 5",
	    F_SHUTDOWN_TIMEOUT, 5000),
	OK_NUM("duration 0", "shutdown_timeout = 0", F_SHUTDOWN_TIMEOUT, 0),
	OK_NUM("idle_timeout 60m (the maximum)", "idle_timeout = 60m",
	    F_IDLE_TIMEOUT, 3600000),
	OK_NUM("request_timeout 100ms (the minimum)", "request_timeout = 100ms",
	    F_REQUEST_TIMEOUT, 100),
	BAD("idle_timeout under its minimum", "idle_timeout = 50ms",
	    "test.conf:1: ", "idle_timeout: out of range"),
	BAD("request_timeout over its maximum", "request_timeout = 3601s",
	    "test.conf:1: ", "request_timeout: out of range"),
	BAD("duration in hours", "shutdown_timeout = 1h",
	    "test.conf:1: ", "shutdown_timeout: not a duration"),
	BAD("fractional duration", "shutdown_timeout = 1.5s",
	    "test.conf:1: ", "shutdown_timeout: not a duration"),
	OK_NUM("octal 0600", "socket_mode = 0600", F_SOCKET_MODE, 0600),
	OK_NUM("octal 0777", "socket_mode = 0777", F_SOCKET_MODE, 0777),
	OK_NUM("octal 0", "socket_mode = 0", F_SOCKET_MODE, 0),
	BAD("mode without the leading 0", "socket_mode = 600",
	    "test.conf:1: ", "socket_mode: not an octal mode"),
	BAD("mode with an 8", "socket_mode = 0800",
	    "test.conf:1: ", "socket_mode: not an octal mode"),
	BAD("mode over 0777", "socket_mode = 01777",
	    "test.conf:1: ", "socket_mode: out of range"),
	BAD("mode empty", "socket_mode =", "test.conf:1: ", "socket_mode: "),
	OK_NUM(
	    "log_level debug", "log_level = debug", F_LOG_LEVEL, MK_LOG_DEBUG),
	OK_NUM("log_level warn", "log_level = warn", F_LOG_LEVEL, MK_LOG_WARN),
	OK_NUM(
	    "log_level error", "log_level = error", F_LOG_LEVEL, MK_LOG_ERROR),
	BAD("log_level unknown", "log_level = verbose",
	    "test.conf:1: ", "log_level: must be one of"),
	OK_STR("jwt_secret of 32 bytes", "jwt_secret = " SECRET32, F_JWT_SECRET,
	    SECRET32),
	OK_STR("jwt_secret empty (unset)", "jwt_secret =", F_JWT_SECRET, ""),
	BAD("jwt_secret of 31 bytes", "jwt_secret = " SECRET31,
	    "test.conf:1: ", "jwt_secret: must be at least 32 bytes"),
	BAD("unknown key", "workers = 1\n# fine\nwokers = 2\n",
	    "test.conf:3: ", "unknown key 'wokers'"),
	BAD("key set twice", "workers = 1\nworkers = 2\n",
	    "test.conf:2: ", "'workers' is set twice"),
	BAD("missing '='", "\nworkers 3\n",
	    "test.conf:2: ", "expected 'key = value'"),
	BAD("empty key", "= 3", "test.conf:1: ", "unknown key ''"),
	BAD("key case matters", "Workers = 3",
	    "test.conf:1: ", "unknown key 'Workers'"),
	BAD("NUL byte in text", "workers = 1\nlog_file = a\0b\n",
	    "test.conf:2: ", "NUL byte"),
};

static void
test_parse(void)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]);
	     i++) {
		const struct parse_case *c = &parse_cases[i];
		struct mk_config *config = mk_config_new();
		char err[MK_CONFIG_ERR_MAX] = "";
		enum mk_err rc;

		rc = mk_config_parse(
		    config, "test.conf", c->text, c->len, err, sizeof(err));
		tap_is_int(rc, c->rc, "parse: %s: rc", c->name);
		if (rc != MK_OK && c->rc == MK_OK)
			printf("#   error: %s\n", err);
		if (c->rc != MK_OK) {
			size_t plen = strlen(c->err_prefix);

			tap_ok(strncmp(err, c->err_prefix, plen) == 0 &&
				strstr(err + plen, c->err_reason) != NULL,
			    "parse: %s: error '%s' is '%s…%s…'", c->name, err,
			    c->err_prefix, c->err_reason);
		} else if (c->field == F_LOG_FILE || c->field == F_JWT_SECRET) {
			tap_is_str(string_of(config, c->field), c->string,
			    "parse: %s: value", c->name);
		} else {
			tap_is_int(number_of(config, c->field), c->number,
			    "parse: %s: value", c->name);
		}
		mk_config_free(config);
	}
}

static void
test_parse_more(void)
{
	struct mk_config *config = mk_config_new();
	char err[MK_CONFIG_ERR_MAX] = "", small[16], *long_line;
	enum mk_err rc;

	rc = mk_config_parse(config, "test.conf",
	    LIT("workers = 1\n# c\nwokers = 2\n"), err, sizeof(err));
	tap_ok(rc == MK_EINVAL, "unknown key is MK_EINVAL");
	tap_is_str(err, "test.conf:3: unknown key 'wokers'",
	    "unknown key: the exact error text");
	rc = mk_config_parse(
	    config, "test.conf", LIT("max_body = 2g"), err, sizeof(err));
	tap_is_str(err, "test.conf:1: max_body: out of range",
	    "bad value: the exact error text");

	/* A later parse overrides an earlier one: "set twice" is per file. */
	mk_config_free(config);
	config = mk_config_new();
	rc = mk_config_parse(config, "a.conf",
	    LIT("workers = 1\nmax_body = 2m\n"), err, sizeof(err));
	rc |= mk_config_parse(
	    config, "b.conf", LIT("workers = 2\n"), err, sizeof(err));
	tap_ok(
	    rc == MK_OK && config->workers == 2 && config->max_body == 2097152,
	    "a later parse overrides what it sets and keeps the rest");
	rc = mk_config_parse(
	    config, "c.conf", LIT("log_file = /tmp/one\n"), err, sizeof(err));
	rc |= mk_config_parse(
	    config, "d.conf", LIT("log_file = /tmp/two\n"), err, sizeof(err));
	tap_ok(rc == MK_OK && strcmp(config->log_file, "/tmp/two") == 0,
	    "a later string value replaces the earlier one");

	/* The error text is cut to fit, never overflows. */
	memset(small, '#', sizeof(small));
	rc = mk_config_parse(config, "test.conf", LIT("bogus = 1"), small, 8);
	tap_ok(
	    rc == MK_EINVAL && strcmp(small, "test.co") == 0 && small[8] == '#',
	    "an error text is cut to the buffer given");
	rc = mk_config_parse(config, "test.conf", LIT("bogus = 1"), NULL, 0);
	tap_ok(rc == MK_EINVAL, "a NULL error buffer is allowed");

	/* Lines longer than the parser's buffer are refused, not truncated. */
	long_line = malloc(10000);
	memcpy(long_line, "log_file = ", 11);
	memset(long_line + 11, 'x', 10000 - 11);
	rc = mk_config_parse(
	    config, "test.conf", long_line, 10000, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strncmp(err, "test.conf:1: ", 13) == 0 &&
		strstr(err, "longer") != NULL,
	    "a 10000-byte line is refused (%s)", err);
	free(long_line);
	mk_config_free(config);
}

static void
test_env(void)
{
	struct mk_config *config = mk_config_new();
	char err[MK_CONFIG_ERR_MAX] = "";
	enum mk_err rc;
	char *good[] = {
		"PATH=/bin",
		"MARKETS_WORKERS=3",
		"MARKETS_PORT=8080",
		"MARKETS_MAX_BODY=2m",
		"MARKETS_LOG_LEVEL=debug",
		"MARKETSWORKERS=9",
		"MARKETS_WORKER_CONNECTIONS",
		"MARKETS_=1",
		"WORKERS=8",
		NULL,
	};
	char *bad[] = { "MARKETS_WORKERS=x", NULL };
	char *short_secret[] = { "MARKETS_JWT_SECRET=" SECRET31, NULL };
	char *ok_secret[] = { "MARKETS_JWT_SECRET=" SECRET32, NULL };

	rc = mk_config_apply_env(config, good, err, sizeof(err));
	tap_is_int(rc, MK_OK, "env: known keys apply, others are ignored");
	tap_is_int(config->workers, 3, "env: MARKETS_WORKERS=3 applies");
	tap_is_int(
	    config->max_body, 2097152, "env: MARKETS_MAX_BODY=2m applies");
	tap_is_int(config->log_level, MK_LOG_DEBUG,
	    "env: MARKETS_LOG_LEVEL=debug applies");
	tap_is_int(config->worker_connections, 256,
	    "env: a variable without '=' is ignored");
	rc = mk_config_apply_env(config, bad, err, sizeof(err));
	tap_is_int(rc, MK_EINVAL, "env: MARKETS_WORKERS=x is an error");
	tap_ok(strncmp(err, "environment MARKETS_WORKERS:", 28) == 0,
	    "env: the error starts with 'environment MARKETS_WORKERS:' (%s)",
	    err);
	tap_is_int(config->workers, 3, "env: a bad value leaves the old one");
	rc = mk_config_apply_env(config, short_secret, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, "at least 32 bytes") != NULL,
	    "env: a short jwt secret is refused");
	rc = mk_config_apply_env(config, ok_secret, err, sizeof(err));
	tap_ok(rc == MK_OK && strcmp(config->jwt_secret, SECRET32) == 0,
	    "env: a 32-byte jwt secret is taken");
	tap_is_int(mk_config_apply_env(config, NULL, err, sizeof(err)), MK_OK,
	    "env: a NULL environment is fine");
	mk_config_free(config);
}

/* Writes text to a new temporary file; returns its path in path (or ""). */
static void
temp_file(char *path, size_t size, const char *text)
{
	const char *dir = getenv("TMPDIR");
	ssize_t n;
	int fd;

	(void)snprintf(
	    path, size, "%s/mk-test-config-XXXXXX", dir != NULL ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		path[0] = '\0';
		return;
	}
	n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text))
		path[0] = '\0';
	close(fd);
}

static void
test_load(void)
{
	char first[256], second[256], broken[256], err[MK_CONFIG_ERR_MAX] = "";
	char *envp[] = { "MARKETS_WORKER_CONNECTIONS=10", "MARKETS_WORKERS=6",
		NULL };
	const char *paths[3];
	static struct mk_config sentinel;
	/* load must set it to NULL on failure */
	struct mk_config *config = &sentinel;
	enum mk_err rc;

	temp_file(first, sizeof(first),
	    "workers = 5\nmax_body = 64k\nlog_level = warn\n");
	temp_file(second, sizeof(second), "# second file\nmax_body = 128k\n");
	temp_file(broken, sizeof(broken), "workers = 1\nmax_body = lots\n");
	tap_ok(first[0] != '\0' && second[0] != '\0' && broken[0] != '\0',
	    "temporary config files written");

	paths[0] = first;
	paths[1] = second;
	rc = mk_config_load(paths, 2, envp, &config, err, sizeof(err));
	tap_is_int(rc, MK_OK, "load: two files and the environment");
	if (rc == MK_OK) {
		tap_is_int(config->max_body, 131072,
		    "load: the later file overrides the earlier");
		tap_is_int(config->log_level, MK_LOG_WARN,
		    "load: the earlier file's other keys stay");
		tap_is_int(config->workers, 6,
		    "load: the environment overrides the files");
		tap_is_int(config->worker_connections, 10,
		    "load: the environment applies");
		tap_is_int(config->idle_timeout_ms, 75000,
		    "load: untouched keys keep defaults");
		mk_config_free(config);
	}

	paths[1] = "/nonexistent/markets-test.conf";
	rc = mk_config_load(paths, 2, NULL, &config, err, sizeof(err));
	tap_ok(rc != MK_OK && config == NULL,
	    "load: a missing file fails with *out NULL");
	tap_ok(strstr(err, "/nonexistent/markets-test.conf") != NULL,
	    "load: the error names the missing path (%s)", err);

	paths[0] = broken;
	rc = mk_config_load(paths, 1, NULL, &config, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && config == NULL, "load: a bad file fails");
	tap_ok(strncmp(err, broken, strlen(broken)) == 0 &&
		strncmp(err + strlen(broken), ":2: max_body: ", 14) == 0,
	    "load: the error is 'path:2: max_body: …' (%s)", err);

	paths[0] = "/tmp";
	rc = mk_config_load(paths, 1, NULL, &config, err, sizeof(err));
	tap_ok(rc != MK_OK && config == NULL && strstr(err, "/tmp") != NULL,
	    "load: a directory is refused (%s)", err);

	rc = mk_config_load(NULL, 0, NULL, &config, err, sizeof(err));
	tap_ok(rc == MK_OK && config != NULL && config->workers == 0,
	    "load: no files and no environment gives the defaults");
	mk_config_free(config);

	unlink(first);
	unlink(second);
	unlink(broken);
}

/* The dump of config, in a static buffer (one at a time). */
static const char *
dump_of(const struct mk_config *config)
{
	static char text[16384];
	struct mk_buf out;

	mk_buf_init_fixed(&out, text, sizeof(text) - 1);
	mk_config_dump(config, &out);
	text[out.oom ? 0 : out.len] = '\0';
	return text;
}

/* The line "key = ..." of a dump, without its newline, or "". */
static const char *
dump_line(const char *dump, const char *key)
{
	static char line[512];
	size_t klen = strlen(key);

	for (const char *p = dump; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

		if (len > klen + 1 && strncmp(p, key, klen) == 0 &&
		    p[klen] == ' ' && len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			return line;
		}
		p = eol != NULL ? eol + 1 : NULL;
	}
	return "";
}

/* The key a "key = value" text sets, in a static buffer. */
static const char *
key_of(const char *setting)
{
	static char key[64];
	size_t len = strcspn(setting, " =");

	(void)snprintf(key, sizeof(key), "%.*s", (int)len, setting);
	return key;
}

static void
test_dump(void)
{
	static const struct {
		const char *setting; /* parsed */
		const char *line;    /* then dumped as */
	} cases[] = {
		{ "workers = 7", "workers = 7" },
		{ "max_body = 1536", "max_body = 1536" },
		{ "max_body = 2048k", "max_body = 2m" },
		{ "max_body = 1g", "max_body = 1g" },
		{ "request_timeout = 250ms", "request_timeout = 250ms" },
		{ "request_timeout = 90", "request_timeout = 90s" },
		{ "request_timeout = 120s", "request_timeout = 2m" },
		{ "shutdown_timeout = 0", "shutdown_timeout = 0" },
		{ "socket_mode = 0600", "socket_mode = 0600" },
		{ "log_level = warn", "log_level = warn" },
		{ "rate_limit = 10/1", "rate_limit = 10/1" },
		{ "db_host = db.example.org", "db_host = db.example.org" },
		{ "db_host = \" padded \"", "db_host = \" padded \"" },
		{ "log_file =", "log_file =" },
		{ "db_password =", "db_password =" },
		{ "db_password = hunter2", "db_password = <redacted>" },
		{ "jwt_secret = " SECRET32, "jwt_secret = <redacted>" },
		{ "cursor_secret = " SECRET32, "cursor_secret = <redacted>" },
	};
	static const char settings[] =
	    "workers = 3\nmax_body = 64k\nidle_timeout = 1500ms\n"
	    "log_level = debug\nrate_limit = 5/10\nsocket_mode = 0640\n"
	    "db_host = \" db \"\ncors_origins = https://a.example\n"
	    "memcached = unix:/tmp/mc.sock, 127.0.0.1:11211\n";
	char err[MK_CONFIG_ERR_MAX] = "", first[16384];
	struct mk_config *config, *again;
	enum mk_err rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *setting = cases[i].setting, *line = cases[i].line;

		config = mk_config_new();
		if (config == NULL)
			break;
		rc = mk_config_parse(config, "dump.conf", setting,
		    strlen(setting), err, sizeof(err));
		tap_is_str(dump_line(dump_of(config), key_of(setting)),
		    rc == MK_OK ? line : err, "dump: '%s' prints as '%s'",
		    setting, line);
		mk_config_free(config);
	}
	config = mk_config_new();
	tap_ok(strncmp(dump_of(config), "# ", 2) == 0,
	    "dump: a comment line first");
	mk_config_free(config);

	/* What it prints reads back as the same configuration. */
	config = mk_config_new();
	again = mk_config_new();
	rc = mk_config_parse(
	    config, "dump.conf", settings, strlen(settings), err, sizeof(err));
	(void)snprintf(first, sizeof(first), "%s", dump_of(config));
	tap_is_int(mk_config_parse(
		       again, "dumped", first, strlen(first), err, sizeof(err)),
	    MK_OK, "dump: the dump parses (%s)", err);
	tap_is_str(dump_of(again), first, "dump: and dumps the same again");
	tap_ok(rc == MK_OK && again->idle_timeout_ms == 1500 &&
		strcmp(again->db_host, " db ") == 0 &&
		again->rate_limit.window_s == 10,
	    "dump: the values read back are the ones dumped");
	mk_config_free(config);
	mk_config_free(again);
}

/* Writes text to a new temporary file; returns its path in path (or ""). */
static void temp_file(char *path, size_t size, const char *text);

static void
test_secret_files(void)
{
	char secret[256], crlf[256], shortfile[256], nul[256], big[256];
	char text[1024], err[MK_CONFIG_ERR_MAX] = "", *envp[2], env[300];
	char dumped[16384];
	struct mk_config *config = mk_config_new(), *again;
	enum mk_err rc;
	int fd;

	temp_file(secret, sizeof(secret), SECRET32 "\n");
	temp_file(crlf, sizeof(crlf), "hunter2\r\n");
	temp_file(shortfile, sizeof(shortfile), SECRET31 "\n");
	memset(text, 'x', 300);
	text[300] = '\0';
	temp_file(big, sizeof(big), text);
	temp_file(nul, sizeof(nul), "");
	fd = open(nul, O_WRONLY);
	tap_ok(fd >= 0 && write(fd, "ab\0cd", 5) == 5 && close(fd) == 0,
	    "secret files written");

	(void)snprintf(text, sizeof(text),
	    "jwt_secret = @%s\ndb_password = @%s\n", secret, crlf);
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_is_int(rc, MK_OK, "secret: '@path' reads the files (%s)", err);
	tap_is_str(config->jwt_secret, SECRET32,
	    "secret: the file's contents, without the trailing newline");
	tap_is_str(config->db_password, "hunter2",
	    "secret: a CRLF at the end is stripped too");
	(void)snprintf(text, sizeof(text), "jwt_secret = @%s", secret);
	tap_is_str(dump_line(dump_of(config), "jwt_secret"), text,
	    "secret: the dump shows the file, not the secret");
	tap_ok(strstr(dump_of(config), SECRET32) == NULL &&
		strstr(dump_of(config), "hunter2") == NULL,
	    "secret: neither secret is anywhere in the dump");
	again = mk_config_new();
	(void)snprintf(dumped, sizeof(dumped), "%s", dump_of(config));
	rc = mk_config_parse(
	    again, "dumped", dumped, strlen(dumped), err, sizeof(err));
	tap_ok(rc == MK_OK && strcmp(again->jwt_secret, SECRET32) == 0,
	    "secret: the dump reads back, the secret from its file (%s)", err);
	mk_config_free(again);

	/* Set inline again: the file is forgotten. */
	rc = mk_config_parse(config, "s.conf",
	    LIT("jwt_secret = " SECRET32 "x"), err, sizeof(err));
	tap_ok(rc == MK_OK &&
		strcmp(dump_line(dump_of(config), "jwt_secret"),
		    "jwt_secret = <redacted>") == 0,
	    "secret: set inline after a file, it is <redacted>");

	(void)snprintf(text, sizeof(text), "# x\ndb_password = @%s/none\n",
	    "/nonexistent");
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_EINVAL &&
		strcmp(err,
		    "s.conf:2: db_password: @/nonexistent/none: No such file "
		    "or directory") == 0,
	    "secret: a missing file names line, key and path (%s)", err);
	(void)snprintf(text, sizeof(text), "jwt_secret = @%s", shortfile);
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, shortfile) != NULL &&
		strstr(err, "jwt_secret") != NULL &&
		strstr(err, "at least 32 bytes") != NULL,
	    "secret: the key's own check runs on the contents (%s)", err);
	(void)snprintf(text, sizeof(text), "db_password = @%s", big);
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, big) != NULL,
	    "secret: a file longer than the key allows is refused (%s)", err);
	(void)snprintf(text, sizeof(text), "db_password = @%s", nul);
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, "NUL") != NULL,
	    "secret: a NUL byte in the file is refused (%s)", err);
	(void)snprintf(text, sizeof(text), "db_password = @/tmp");
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, "@/tmp: not a regular") != NULL,
	    "secret: a directory is refused (%s)", err);
	tap_is_str(config->db_password, "hunter2",
	    "secret: a refused file leaves the value as it was");
	(void)snprintf(text, sizeof(text), "db_host = @%s", crlf);
	rc = mk_config_parse(
	    config, "s.conf", text, strlen(text), err, sizeof(err));
	tap_ok(rc == MK_OK && config->db_host[0] == '@',
	    "secret: '@' means a file for secrets only");

	(void)snprintf(env, sizeof(env), "MARKETS_CURSOR_SECRET=@%s", secret);
	envp[0] = env;
	envp[1] = NULL;
	rc = mk_config_apply_env(config, envp, err, sizeof(err));
	tap_ok(rc == MK_OK && strcmp(config->cursor_secret, SECRET32) == 0,
	    "secret: MARKETS_CURSOR_SECRET=@path reads the file");
	(void)snprintf(env, sizeof(env), "MARKETS_CURSOR_SECRET=@%s/x", secret);
	rc = mk_config_apply_env(config, envp, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && strstr(err, "MARKETS_CURSOR_SECRET") &&
		strstr(err, secret) != NULL,
	    "secret: a bad file in the environment names the variable and "
	    "the path (%s)",
	    err);
	mk_config_free(config);
	unlink(secret);
	unlink(crlf);
	unlink(shortfile);
	unlink(nul);
	unlink(big);
}

/* What the check of mk_config_load_environ() was shown. */
static int check_calls;
static int checked_workers;

static int
accept_config(const struct mk_config *config, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	check_calls++;
	checked_workers = config->workers;
	return 0;
}

static int
refuse_config(const struct mk_config *config, char *err, size_t errlen)
{
	(void)accept_config(config, err, errlen);
	(void)snprintf(err, errlen, "refused by the check");
	return -1;
}

static void
test_load_environ(void)
{
	char file[256], err[MK_CONFIG_ERR_MAX] = "";
	const char *paths[1];
	struct mk_config *config = NULL;
	enum mk_err rc;

	temp_file(file, sizeof(file), "workers = 5\nmax_body = 64k\n");
	paths[0] = file;
	tap_ok(file[0] != '\0' && setenv("MARKETS_WORKERS", "7", 1) == 0,
	    "load_environ: a file written, MARKETS_WORKERS=7 set");
	rc = mk_config_load_environ(paths, 1, NULL, &config, err, sizeof(err));
	tap_ok(rc == MK_OK && config != NULL && config->workers == 7 &&
		config->max_body == 65536,
	    "load_environ: the file, then this process's environment");
	mk_config_free(config);

	rc = mk_config_load_environ(
	    paths, 1, accept_config, &config, err, sizeof(err));
	tap_ok(rc == MK_OK && config != NULL && check_calls == 1 &&
		checked_workers == 7,
	    "load_environ: the check is shown the loaded configuration");
	mk_config_free(config);

	config = NULL;
	rc = mk_config_load_environ(
	    paths, 1, refuse_config, &config, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && config == NULL,
	    "load_environ: a refusal by the check is MK_EINVAL, *out NULL");
	tap_is_str(
	    err, "refused by the check", "load_environ: err is the check's");

	check_calls = 0;
	(void)setenv("MARKETS_WORKERS", "many", 1);
	rc = mk_config_load_environ(
	    paths, 1, accept_config, &config, err, sizeof(err));
	tap_ok(rc == MK_EINVAL && config == NULL && check_calls == 0 &&
		strstr(err, "MARKETS_WORKERS") != NULL,
	    "load_environ: a bad environment fails before the check (%s)", err);
	(void)unsetenv("MARKETS_WORKERS");
	unlink(file);
}

/* True when line is "# key = value" or "# key =", the documented form. */
static int
is_commented_setting(const char *line, size_t len)
{
	size_t i = 2;

	if (len < 2 || line[0] != '#' || line[1] != ' ')
		return 0;
	while (
	    i < len && ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'))
		i++;
	if (i == 2 || len - i < 2 || line[i] != ' ' || line[i + 1] != '=')
		return 0;
	return len - i == 2 || line[i + 2] == ' ';
}

static void
test_shipped_conf(void)
{
	static const char *const keys[] = {
		"workers",
		"worker_connections",
		"shutdown_timeout",
		"idle_timeout",
		"request_timeout",
		"socket_mode",
		"max_body",
		"log_file",
		"log_level",
		"jwt_secret",
	};
	enum {
		NKEYS = sizeof(keys) / sizeof(keys[0])
	};
	int seen[NKEYS] = { 0 };
	const char *srcdir = getenv("MK_TEST_SRCDIR");
	struct mk_config *defaults, *documented;
	char path[4096], err[MK_CONFIG_ERR_MAX] = "", *text, *uncommented;
	size_t len = 0, out_len = 0, nsettings = 0, pos = 0;
	int all_keys = 1;
	enum mk_err rc;
	FILE *fp;

	(void)snprintf(path, sizeof(path), "%s/conf/markets.conf",
	    srcdir != NULL ? srcdir : ".");
	fp = fopen(path, "r");
	tap_ok(fp != NULL, "conf/markets.conf opens (%s)", path);
	if (fp == NULL)
		return;
	text = malloc(1 << 20);
	uncommented = malloc(1 << 20);
	len = fread(text, 1, (1 << 20) - 1, fp);
	fclose(fp);
	text[len] = '\0';

	/* Keep only the documented settings, uncommented. */
	while (pos < len) {
		char *line = text + pos, *eol = memchr(line, '\n', len - pos);
		size_t line_len =
		    eol != NULL ? (size_t)(eol - line) : len - pos;

		if (is_commented_setting(line, line_len)) {
			memcpy(uncommented + out_len, line + 2, line_len - 2);
			out_len += line_len - 2;
			uncommented[out_len++] = '\n';
			nsettings++;
			for (size_t i = 0; i < NKEYS; i++) {
				size_t n = strlen(keys[i]);

				if (line_len > n + 2 &&
				    memcmp(line + 2, keys[i], n) == 0 &&
				    line[2 + n] == ' ')
					seen[i]++;
			}
		}
		pos += line_len + 1;
	}
	uncommented[out_len] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		if (seen[i] != 1) {
			printf("#   %s is documented %d times\n", keys[i],
			    seen[i]);
			all_keys = 0;
		}
	}
	tap_ok(all_keys,
	    "conf/markets.conf documents every key once (%zu settings)",
	    nsettings);

	defaults = mk_config_new();
	documented = mk_config_new();
	/*
	 * Start from values unlike the defaults so that a missing line shows.
	 */
	documented->workers = 99;
	rc = mk_config_parse(
	    documented, path, uncommented, out_len, err, sizeof(err));
	tap_is_int(rc, MK_OK, "the documented settings parse");
	if (rc != MK_OK)
		printf("#   %s\n", err);
	tap_is_int(documented->workers, defaults->workers,
	    "documented workers is the default");
	tap_is_int(documented->worker_connections, defaults->worker_connections,
	    "documented worker_connections is the default");
	tap_is_int(documented->max_body, defaults->max_body,
	    "documented max_body is the default");
	tap_is_int(documented->shutdown_timeout_ms,
	    defaults->shutdown_timeout_ms,
	    "documented shutdown_timeout is the default");
	tap_is_int(documented->idle_timeout_ms, defaults->idle_timeout_ms,
	    "documented idle_timeout is the default");
	tap_is_int(documented->request_timeout_ms, defaults->request_timeout_ms,
	    "documented request_timeout is the default");
	tap_is_int(documented->socket_mode, defaults->socket_mode,
	    "documented socket_mode is the default");
	tap_is_int(documented->log_level, defaults->log_level,
	    "documented log_level is the default");
	tap_is_str(documented->log_file, defaults->log_file,
	    "documented log_file is the default");
	tap_is_str(documented->jwt_secret, defaults->jwt_secret,
	    "documented jwt_secret is the default");
	{
		char want[16384];

		(void)snprintf(want, sizeof(want), "%s", dump_of(defaults));
		tap_is_str(dump_of(documented), want,
		    "every documented setting is the default (the dumps are "
		    "equal)");
	}
	mk_config_free(defaults);
	mk_config_free(documented);
	free(text);
	free(uncommented);
}

int
main(void)
{
	test_defaults();
	test_parse();
	test_parse_more();
	test_env();
	test_dump();
	test_secret_files();
	test_load();
	test_load_environ();
	test_shipped_conf();
	return tap_done();
}
