/*
 * Configuration (core layer); see config.h. One table describes every key:
 * its type, where it lands in struct mk_config, its bounds and its default
 * as text, so defaults go through the same parser as files do and
 * conf/markets.conf can be checked against the table. One parser per type
 * (conf_types) reads a value, checks its bounds and stores it; a string
 * key may add a rule of its own (check). It calls core/ only.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_check.h"

enum conf_type {
	CONF_INT,  /* decimal integer in [min, max] */
	CONF_SIZE, /* bytes, with optional k/m/g suffix */
	/* milliseconds: 250ms, 30s, 2m; bare numbers are seconds */
	CONF_DURATION,
	CONF_OCTAL,  /* file mode such as 0660 */
	CONF_STRING, /* at most max bytes, then the key's check if any */
	CONF_LOG_LEVEL,
	CONF_RATE, /* requests/seconds, e.g. 100/60 */
	CONF__MAX
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	long long min;
	long long max;
	const char *default_value;
	/* Extra rule for a string; returns a reason or NULL when fine. */
	const char *(*check)(const char *value);
};

#define OFF(field) offsetof(struct mk_config, field)

static const struct conf_key conf_keys[] = {
	{ "workers", CONF_INT, OFF(workers), 0, 256, "0", NULL },
	{ "worker_connections", CONF_INT, OFF(worker_connections), 1, 65536,
	    "256", NULL },
	{ "max_body", CONF_SIZE, OFF(max_body), 1, (long long)1 << 30, "1m",
	    NULL },
	{ "shutdown_timeout", CONF_DURATION, OFF(shutdown_timeout_ms), 0,
	    3600000, "10s", NULL },
	{ "idle_timeout", CONF_DURATION, OFF(idle_timeout_ms), 100, 3600000,
	    "75s", NULL },
	{ "request_timeout", CONF_DURATION, OFF(request_timeout_ms), 100,
	    3600000, "30s", NULL },
	{ "socket_mode", CONF_OCTAL, OFF(socket_mode), 0, 0777, "0660", NULL },
	{ "listen_allowed_clients", CONF_STRING, OFF(listen_allowed_clients), 0,
	    8192, "", mk_config_check_cidrs },
	{ "log_file", CONF_STRING, OFF(log_file), 0, 4096, "", NULL },
	{ "log_level", CONF_LOG_LEVEL, OFF(log_level), 0, 0, "info", NULL },
	{ "jwt_secret", CONF_STRING, OFF(jwt_secret), 0, 4096, "",
	    mk_config_check_jwt_secret },
	{ "jwt_alg", CONF_STRING, OFF(jwt_alg), 0, 16, "HS256",
	    mk_config_check_jwt_alg },
	{ "jwt_public_key", CONF_STRING, OFF(jwt_public_key), 0, 4096, "",
	    NULL },
	{ "jwt_keys_dir", CONF_STRING, OFF(jwt_keys_dir), 0, 4096, "", NULL },
	{ "jwt_leeway", CONF_DURATION, OFF(jwt_leeway_ms), 0, 600000, "30s",
	    NULL },
	{ "jwt_max_lifetime", CONF_DURATION, OFF(jwt_max_lifetime_ms), 60000,
	    2073600000, "86400s", NULL },
	{ "jwt_issuer", CONF_STRING, OFF(jwt_issuer), 0, 1024, "", NULL },
	{ "jwt_audience", CONF_STRING, OFF(jwt_audience), 0, 1024, "", NULL },
	{ "cursor_secret", CONF_STRING, OFF(cursor_secret), 0, 4096, "",
	    mk_config_check_jwt_secret },
	{ "rate_limit", CONF_RATE, OFF(rate_limit), 1, 1000000000, "100/60",
	    NULL },
	{ "trusted_proxies", CONF_STRING, OFF(trusted_proxies), 0, 8192, "",
	    mk_config_check_cidrs },
	{ "cors_origins", CONF_STRING, OFF(cors_origins), 0, 8192, "",
	    mk_config_check_cors_origins },
	{ "memcached", CONF_STRING, OFF(memcached), 0, 8192, "",
	    mk_config_check_list },
	{ "memcached_timeout", CONF_DURATION, OFF(memcached_timeout_ms), 1,
	    10000, "50ms", NULL },
	{ "cache_ttl", CONF_DURATION, OFF(cache_ttl_ms), 1000, 86400000, "5m",
	    NULL },
	{ "cache_lease_wait", CONF_DURATION, OFF(cache_lease_wait_ms), 0, 1000,
	    "20ms", NULL },
	{ "metrics_allow", CONF_STRING, OFF(metrics_allow), 0, 8192,
	    "127.0.0.1, ::1", mk_config_check_cidrs },
	{ "embedder", CONF_STRING, OFF(embedder), 0, 16, "hash",
	    mk_config_check_embedder },
	{ "embedding_dim", CONF_INT, OFF(embedding_dim), 8, 4096, "512", NULL },
	{ "embedder_url", CONF_STRING, OFF(embedder_url), 0, 1024, "", NULL },
	{ "embedder_model", CONF_STRING, OFF(embedder_model), 0, 128, "",
	    NULL },
	{ "embedder_timeout", CONF_DURATION, OFF(embedder_timeout_ms), 100,
	    60000, "5s", NULL },
	{ "embedder_api_key_file", CONF_STRING, OFF(embedder_api_key_file), 0,
	    4096, "", NULL },
	{ "embedder_cache_ttl", CONF_DURATION, OFF(embedder_cache_ttl_ms), 0,
	    86400000, "60m", NULL },
	{ "job_runners", CONF_INT, OFF(job_runners), 0, 64, "1", NULL },
	{ "job_lease", CONF_DURATION, OFF(job_lease_ms), 1000, 3600000, "30s",
	    NULL },
	{ "job_max_attempts", CONF_INT, OFF(job_max_attempts), 1, 100, "5",
	    NULL },
	{ "job_backoff", CONF_DURATION, OFF(job_backoff_ms), 10, 3600000, "1s",
	    NULL },
	{ "job_poll", CONF_DURATION, OFF(job_poll_ms), 10, 60000, "200ms",
	    NULL },
	{ "db_socket", CONF_STRING, OFF(db_socket), 0, 107, "", NULL },
	{ "db_host", CONF_STRING, OFF(db_host), 0, 255, "", NULL },
	{ "db_port", CONF_INT, OFF(db_port), 1, 65535, "3306", NULL },
	{ "db_user", CONF_STRING, OFF(db_user), 0, 80, "markets", NULL },
	{ "db_password", CONF_STRING, OFF(db_password), 0, 255, "", NULL },
	{ "db_name", CONF_STRING, OFF(db_name), 0, 64, "markets", NULL },
	{ "db_connect_timeout", CONF_DURATION, OFF(db_connect_timeout_ms), 1000,
	    60000, "2s", NULL },
	{ "db_io_timeout", CONF_DURATION, OFF(db_io_timeout_ms), 1000, 300000,
	    "10s", NULL },
	{ "db_tls", CONF_STRING, OFF(db_tls), 0, 16, "off",
	    mk_config_check_db_tls },
	{ "db_tls_ca", CONF_STRING, OFF(db_tls_ca), 0, 4096, "", NULL },
	{ "db_retries", CONF_INT, OFF(db_retries), 1, 20, "4", NULL },
	{ "db_retry_time", CONF_DURATION, OFF(db_retry_time_ms), 0, 60000, "2s",
	    NULL },
	{ "idempotency_purge_interval", CONF_DURATION,
	    OFF(idempotency_purge_interval_ms), 1000, 86400000, "5m", NULL },
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))
#define CONF_LINE_MAX 8192

static const struct conf_key *
find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (strlen(conf_keys[i].name) == len &&
		    memcmp(conf_keys[i].name, name, len) == 0)
			return &conf_keys[i];
	}
	return NULL;
}

/*
 * Parses an unsigned decimal prefix; returns chars used or 0 on none/overflow.
 */
static size_t
parse_digits(const char *s, long long *out)
{
	long long v = 0;
	size_t i = 0;

	while (isdigit((unsigned char)s[i])) {
		if (v > (LLONG_MAX - 9) / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
		i++;
	}
	*out = v;
	return i;
}

/* A unit a number may end in ("" for none), and what it multiplies by. */
struct conf_unit {
	const char *suffix;
	long long scale;
};

/*
 * Digits and a unit of units[] (which ends with a NULL suffix) into
 * *number, scaled. Returns NULL, "out of range" past LLONG_MAX, or
 * malformed (the caller's reason) for no digits or an unknown unit.
 */
static const char *
parse_scaled(const char *value, const struct conf_unit *units,
    const char *malformed, long long *number)
{
	size_t used = parse_digits(value, number);

	if (used == 0)
		return malformed;
	for (; units->suffix != NULL; units++) {
		if (strcmp(value + used, units->suffix) != 0)
			continue;
		if (*number > LLONG_MAX / units->scale)
			return "out of range";
		*number *= units->scale;
		return NULL;
	}
	return malformed;
}

/* Stores number, when it lies in the key's bounds, as an int. */
static const char *
store_int(const struct conf_key *key, long long number, void *field)
{
	if (number < key->min || number > key->max)
		return "out of range";
	*(int *)field = (int)number;
	return NULL;
}

/*
 * The parsers, one per type: each converts value, checks it against the
 * key's bounds and stores it at field, its slot in struct mk_config.
 * Each returns NULL, or a reason and leaves the slot as it was.
 */
static const char *
parse_int(const struct conf_key *key, const char *value, void *field)
{
	long long number;
	size_t used = parse_digits(value, &number);

	if (used == 0 || value[used] != '\0')
		return "not a non-negative integer";
	return store_int(key, number, field);
}

static const char *
parse_size(const struct conf_key *key, const char *value, void *field)
{
	static const struct conf_unit units[] = {
		{ "", 1 },
		{ "k", 1024 },
		{ "K", 1024 },
		{ "m", 1024 * 1024 },
		{ "M", 1024 * 1024 },
		{ "g", 1024 * 1024 * 1024 },
		{ "G", 1024 * 1024 * 1024 },
		{ NULL, 0 },
	};
	long long number;
	const char *why;

	why = parse_scaled(value, units, "not a size (e.g. 512k, 1m)", &number);
	if (why != NULL)
		return why;
	if (number < key->min || number > key->max)
		return "out of range";
	*(size_t *)field = (size_t)number;
	return NULL;
}

static const char *
parse_duration(const struct conf_key *key, const char *value, void *field)
{
	static const struct conf_unit units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "", 1000 },
		{ "m", 60000 },
		{ NULL, 0 },
	};
	long long number;
	const char *why;

	why = parse_scaled(
	    value, units, "not a duration (e.g. 250ms, 30s, 2m)", &number);
	return why != NULL ? why : store_int(key, number, field);
}

static const char *
parse_octal(const struct conf_key *key, const char *value, void *field)
{
	long long number;
	char *end;

	if (value[0] != '0' || strspn(value, "01234567") != strlen(value))
		return "not an octal mode such as 0660";
	errno = 0;
	number = strtoll(value, &end, 8);
	if (errno != 0)
		return "out of range";
	return store_int(key, number, field);
}

static const char *
parse_string(const struct conf_key *key, const char *value, void *field)
{
	char **slot = field, *copy;
	const char *why;

	if (strlen(value) > (size_t)key->max)
		return "too long";
	if (key->check != NULL && (why = key->check(value)) != NULL)
		return why;
	copy = strdup(value);
	if (copy == NULL)
		return "out of memory";
	free(*slot);
	*slot = copy;
	return NULL;
}

static const char *
parse_log_level(const struct conf_key *key, const char *value, void *field)
{
	(void)key;
	if (mk_log_level_parse(value, field) != 0)
		return "must be one of debug, info, warn, error";
	return NULL;
}

/* requests/seconds: the requests within [min, max], 1 to 86400 seconds. */
static const char *
parse_rate(const struct conf_key *key, const char *value, void *field)
{
	struct mk_rate *rate = field;
	long long number, window;
	const char *rest;
	size_t used;

	used = parse_digits(value, &number);
	if (used == 0 || value[used] != '/')
		return "not requests/seconds (e.g. 100/60)";
	rest = value + used + 1;
	used = parse_digits(rest, &window);
	if (used == 0 || rest[used] != '\0')
		return "not requests/seconds (e.g. 100/60)";
	if (number < key->min || number > key->max || window < 1 ||
	    window > 86400)
		return "out of range (1-1000000000 requests per 1-86400 "
		       "seconds)";
	rate->limit = (int)number;
	rate->window_s = (int)window;
	return NULL;
}

static const struct conf_type_ops {
	const char *(*parse)(
	    const struct conf_key *key, const char *value, void *field);
	bool owns_string; /* the slot is a char * the config frees */
} conf_types[CONF__MAX] = {
	[CONF_INT] = { parse_int, false },
	[CONF_SIZE] = { parse_size, false },
	[CONF_DURATION] = { parse_duration, false },
	[CONF_OCTAL] = { parse_octal, false },
	[CONF_STRING] = { parse_string, true },
	[CONF_LOG_LEVEL] = { parse_log_level, false },
	[CONF_RATE] = { parse_rate, false },
};

/* Converts value per key->type and stores it. Returns NULL or a reason. */
static const char *
apply_value(
    struct mk_config *config, const struct conf_key *key, const char *value)
{
	return conf_types[key->type].parse(
	    key, value, (char *)config + key->offset);
}

struct mk_config *
mk_config_new(void)
{
	struct mk_config *config = calloc(1, sizeof(*config));

	if (config == NULL)
		return NULL;
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (apply_value(config, &conf_keys[i],
			conf_keys[i].default_value) != NULL) {
			/*
			 * Only out of memory can get here: the defaults are
			 * tested.
			 */
			mk_config_free(config);
			return NULL;
		}
	}
	return config;
}

void
mk_config_free(struct mk_config *config)
{
	if (config == NULL)
		return;
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (conf_types[conf_keys[i].type].owns_string)
			free(*(char **)(void *)((char *)config +
			    conf_keys[i].offset));
	}
	free(config);
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

enum mk_err
mk_config_parse(struct mk_config *config, const char *origin, const char *text,
    size_t len, char *err, size_t errlen)
{
	bool seen[CONF_NKEYS] = { false };
	char value[CONF_LINE_MAX];
	size_t pos = 0, lineno = 0;

	while (pos < len) {
		const char *line = text + pos, *eol, *key, *eq, *v, *vend;
		const struct conf_key *ck;
		const char *reason;
		size_t line_len, key_len;

		lineno++;
		eol = memchr(line, '\n', len - pos);
		line_len = eol != NULL ? (size_t)(eol - line) : len - pos;
		pos += line_len + (eol != NULL);
		if (memchr(line, '\0', line_len) != NULL) {
			mk_errf(err, errlen, "%s:%zu: NUL byte in line", origin,
			    lineno);
			return MK_EINVAL;
		}
		if (line_len >= CONF_LINE_MAX) {
			mk_errf(err, errlen,
			    "%s:%zu: line longer than %d bytes", origin, lineno,
			    CONF_LINE_MAX - 1);
			return MK_EINVAL;
		}
		while (line_len > 0 && is_blank(line[line_len - 1]))
			line_len--;
		key = line;
		while (key < line + line_len && is_blank(*key))
			key++;
		if (key == line + line_len || *key == '#')
			continue;
		eq = memchr(key, '=', (size_t)(line + line_len - key));
		if (eq == NULL) {
			mk_errf(err, errlen, "%s:%zu: expected 'key = value'",
			    origin, lineno);
			return MK_EINVAL;
		}
		key_len = (size_t)(eq - key);
		while (key_len > 0 && is_blank(key[key_len - 1]))
			key_len--;
		ck = find_key(key, key_len);
		if (ck == NULL) {
			mk_errf(err, errlen, "%s:%zu: unknown key '%.*s'",
			    origin, lineno, (int)(key_len > 64 ? 64 : key_len),
			    key);
			return MK_EINVAL;
		}
		if (seen[ck - conf_keys]) {
			mk_errf(err, errlen, "%s:%zu: '%s' is set twice",
			    origin, lineno, ck->name);
			return MK_EINVAL;
		}
		seen[ck - conf_keys] = true;
		v = eq + 1;
		vend = line + line_len;
		while (v < vend && is_blank(*v))
			v++;
		/*
		 * Double quotes keep surrounding blanks; there are no escapes.
		 */
		if (v < vend && *v == '"') {
			if (vend - v < 2 || vend[-1] != '"') {
				mk_errf(err, errlen,
				    "%s:%zu: unterminated quote", origin,
				    lineno);
				return MK_EINVAL;
			}
			v++;
			vend--;
		}
		memcpy(value, v, (size_t)(vend - v));
		value[vend - v] = '\0';
		reason = apply_value(config, ck, value);
		if (reason != NULL) {
			mk_errf(err, errlen, "%s:%zu: %s: %s", origin, lineno,
			    ck->name, reason);
			return MK_EINVAL;
		}
	}
	return MK_OK;
}

enum mk_err
mk_config_parse_file(
    struct mk_config *config, const char *path, char *err, size_t errlen)
{
	struct stat st;
	enum mk_err rc;
	char *text;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		mk_errf(err, errlen, "%s: %s", path, strerror(errno));
		return MK_EINVAL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 1024 * 1024) {
		mk_errf(err, errlen, "%s: not a regular file of at most 1 MiB",
		    path);
		close(fd);
		return MK_EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		close(fd);
		mk_errf(err, errlen, "%s: out of memory", path);
		return MK_ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(text);
		mk_errf(err, errlen, "%s: read failed", path);
		return MK_EINVAL;
	}
	rc = mk_config_parse(config, path, text, got, err, errlen);
	free(text);
	return rc;
}

enum mk_err
mk_config_apply_env(
    struct mk_config *config, char *const *envp, char *err, size_t errlen)
{
	static const char prefix[] = "MARKETS_";
	char name[64];

	if (envp == NULL)
		return MK_OK;
	for (char *const *e = envp; *e != NULL; e++) {
		const char *entry = *e, *eq, *reason;
		const struct conf_key *ck;
		size_t name_len;

		if (strncmp(entry, prefix, sizeof(prefix) - 1) != 0)
			continue;
		entry += sizeof(prefix) - 1;
		eq = strchr(entry, '=');
		if (eq == NULL ||
		    (name_len = (size_t)(eq - entry)) >= sizeof(name))
			continue;
		for (size_t i = 0; i < name_len; i++)
			name[i] = (char)tolower((unsigned char)entry[i]);
		name[name_len] = '\0';
		ck = find_key(name, name_len);
		if (ck == NULL)
			/* MARKETS_PORT and friends belong to scripts */
			continue;
		reason = apply_value(config, ck, eq + 1);
		if (reason != NULL) {
			mk_errf(err, errlen, "environment MARKETS_%.*s: %s",
			    (int)name_len, entry, reason);
			return MK_EINVAL;
		}
	}
	return MK_OK;
}

enum mk_err
mk_config_load(const char *const *paths, size_t npaths, char *const *envp,
    struct mk_config **out, char *err, size_t errlen)
{
	struct mk_config *config;
	enum mk_err rc = MK_OK;

	*out = NULL;
	config = mk_config_new();
	if (config == NULL) {
		mk_errf(err, errlen, "out of memory");
		return MK_ENOMEM;
	}
	for (size_t i = 0; i < npaths && rc == MK_OK; i++)
		rc = mk_config_parse_file(config, paths[i], err, errlen);
	if (rc == MK_OK)
		rc = mk_config_apply_env(config, envp, err, errlen);
	if (rc != MK_OK) {
		mk_config_free(config);
		return rc;
	}
	*out = config;
	return MK_OK;
}

enum mk_err
mk_config_load_environ(const char *const *paths, size_t npaths,
    mk_config_check_fn *check, struct mk_config **out, char *err, size_t errlen)
{
	enum mk_err rc;

	rc = mk_config_load(paths, npaths, environ, out, err, errlen);
	if (rc == MK_OK && check != NULL && check(*out, err, errlen) != 0) {
		mk_config_free(*out);
		*out = NULL;
		return MK_EINVAL;
	}
	return rc;
}

int
mk_config_worker_count(const struct mk_config *config)
{
	long cores;

	if (config->workers > 0)
		return config->workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
}
