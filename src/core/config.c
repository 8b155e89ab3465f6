/*
 * Configuration (core layer); see config.h. One table describes every key:
 * its type, where it lands in struct mk_config, its bounds, its default
 * as text (a secret is a type of its own), so defaults go through the same
 * parser as files do and conf/markets.conf can be checked against the
 * table. Each type has its parser and its printer (config_types.c); a
 * string key may add a rule of its own (check). It calls core/ only.
 */
#include <assert.h>
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

#include "core/buf.h"
#include "core/config.h"
#include "core/config_check.h"
#include "core/config_types.h"

#define OFF(field) offsetof(struct mk_config, field)

static const struct mk_conf_key conf_keys[] = {
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
	{ "slow_request_threshold", CONF_DURATION,
	    OFF(slow_request_threshold_ms), 0, 3600000, "1s", NULL },
	{ "jwt_secret", CONF_SECRET, OFF(jwt_secret), 0, 4096, "",
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
	{ "cursor_secret", CONF_SECRET, OFF(cursor_secret), 0, 4096, "",
	    mk_config_check_jwt_secret },
	{ "rate_limit", CONF_RATE, OFF(rate_limit), 1, 1000000000, "100/60",
	    NULL },
	{ "trusted_proxies", CONF_STRING, OFF(trusted_proxies), 0, 8192, "",
	    mk_config_check_cidrs },
	{ "cors_origins", CONF_STRING, OFF(cors_origins), 0, 8192, "",
	    mk_config_check_cors_origins },
	{ "base_path", CONF_STRING, OFF(base_path), 0, 1024, "",
	    mk_config_check_base_path },
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
	{ "db_password", CONF_SECRET, OFF(db_password), 0, 255, "", NULL },
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
	{ "db_replicas", CONF_STRING, OFF(db_replicas), 0, 4096, "",
	    mk_config_check_db_addresses },
	{ "replica_max_lag", CONF_DURATION, OFF(replica_max_lag_ms), 1000,
	    3600000, "5s", NULL },
	{ "idempotency_purge_interval", CONF_DURATION,
	    OFF(idempotency_purge_interval_ms), 1000, 86400000, "5m", NULL },
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))
#define CONF_LINE_MAX 8192

static const struct mk_conf_key *
find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (strlen(conf_keys[i].name) == len &&
		    memcmp(conf_keys[i].name, name, len) == 0)
			return &conf_keys[i];
	}
	return NULL;
}

static const char out_of_memory[] = "out of memory";

/*
 * Reads the regular file path whole, at most max bytes, into *text (heap,
 * NUL-terminated, the caller frees it) and *len. Returns NULL, or why not.
 */
static const char *
read_file(const char *path, size_t max, char **text, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	*text = NULL;
	/* Never blocks on a FIFO: anything but a regular file is refused. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return strerror(errno);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max) {
		close(fd);
		return max >= 1024 * 1024
		    ? "not a regular file of at most 1 MiB"
		    : "not a regular file, or too long";
	}
	*text = malloc((size_t)st.st_size + 1);
	if (*text == NULL) {
		close(fd);
		return out_of_memory;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(*text);
		*text = NULL;
		return "read failed";
	}
	(*text)[got] = '\0';
	*len = got;
	return NULL;
}

/* The place of a secret key among the secret keys, in table order. */
static size_t
secret_slot(const struct mk_conf_key *key)
{
	size_t slot = 0;

	for (const struct mk_conf_key *k = conf_keys; k < key; k++)
		slot += k->type == CONF_SECRET;
	assert(slot < MK_CONFIG_SECRET_KEYS);
	return slot;
}

/*
 * A secret key's value: inline, or `@/path`, the file's contents without
 * their trailing newline. A reason about the file names its path (one
 * static buffer: configurations load one at a time).
 */
static const char *
apply_secret(
    struct mk_config *config, const struct mk_conf_key *key, const char *value)
{
	static char reason[4096 + 128];
	char **source = &config->secret_files[secret_slot(key)], *path = NULL;
	void *field = (char *)config + key->offset;
	const char *why;
	char *text;
	size_t len;

	if (value[0] != '@') {
		why = mk_conf_types[key->type].parse(key, value, field);
		if (why == NULL) {
			free(*source);
			*source = NULL;
		}
		return why;
	}
	/* Room for the newline an editor or `echo` leaves. */
	why = read_file(value + 1, (size_t)key->max + 2, &text, &len);
	if (why == NULL) {
		while (
		    len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
			text[--len] = '\0';
		if (memchr(text, '\0', len) != NULL)
			why = "holds a NUL byte";
		else if ((path = strdup(value + 1)) == NULL)
			why = out_of_memory;
		else
			why = mk_conf_types[key->type].parse(key, text, field);
		explicit_bzero(text, len);
		free(text);
	}
	if (why != NULL) {
		free(path);
		(void)snprintf(reason, sizeof(reason), "%s: %s", value, why);
		return reason;
	}
	free(*source);
	*source = path;
	return NULL;
}

/* Converts value per key->type and stores it. Returns NULL or a reason. */
static const char *
apply_value(
    struct mk_config *config, const struct mk_conf_key *key, const char *value)
{
	if (key->type == CONF_SECRET)
		return apply_secret(config, key, value);
	return mk_conf_types[key->type].parse(
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
		if (mk_conf_types[conf_keys[i].type].owns_string)
			free(*(char **)(void *)((char *)config +
			    conf_keys[i].offset));
	}
	for (size_t i = 0; i < MK_CONFIG_SECRET_KEYS; i++)
		free(config->secret_files[i]);
	free(config);
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
		const struct mk_conf_key *ck;
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
		while (line_len > 0 && mk_conf_blank(line[line_len - 1]))
			line_len--;
		key = line;
		while (key < line + line_len && mk_conf_blank(*key))
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
		while (key_len > 0 && mk_conf_blank(key[key_len - 1]))
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
		while (v < vend && mk_conf_blank(*v))
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
	const char *why;
	enum mk_err rc;
	char *text;
	size_t len;

	if ((why = read_file(path, 1024 * 1024, &text, &len)) != NULL) {
		mk_errf(err, errlen, "%s: %s", path, why);
		return why == out_of_memory ? MK_ENOMEM : MK_EINVAL;
	}
	rc = mk_config_parse(config, path, text, len, err, errlen);
	free(text);
	return rc;
}

/*
 * MARKETS_* variables that are no setting and yet no typo: the server's
 * own (MARKETS_CONFIG, the file under Apache's FcgidWrapper) and those of
 * the scripts around it (scripts/dev, scripts/stack, bench/run, the
 * tests), which often run the app with them in its environment. Listed
 * in conf/markets.conf; any other is warned about.
 */
static const char *const env_not_settings[] = {
	"CONFIG",
	"PORT",
	"BUILD_DIR",
	"FUZZ_DIR",
	"FUZZ_SECONDS",
	"KEEP_TMP",
	"CACHE_DIR",
	"BENCH_BUILD_DIR",
	"SHARED_BENCH",
	"TOPOLOGY",
	"FRONT",
};

/* Warns about MARKETS_<name> (len bytes) unless it is a known non-setting. */
static void
warn_unknown_env(const char *name, size_t len)
{
	for (size_t i = 0;
	     i < sizeof(env_not_settings) / sizeof(env_not_settings[0]); i++) {
		if (strlen(env_not_settings[i]) == len &&
		    memcmp(env_not_settings[i], name, len) == 0)
			return;
	}
	mk_log(MK_LOG_WARN,
	    "environment variable MARKETS_%.*s is not a setting (misspelt?): "
	    "ignored",
	    (int)(len > 64 ? 64 : len), name);
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
		const struct mk_conf_key *ck;
		size_t name_len;

		if (strncmp(entry, prefix, sizeof(prefix) - 1) != 0)
			continue;
		entry += sizeof(prefix) - 1;
		eq = strchr(entry, '=');
		if (eq == NULL)
			continue;
		name_len = (size_t)(eq - entry);
		if (name_len >= sizeof(name)) {
			warn_unknown_env(entry, name_len);
			continue;
		}
		for (size_t i = 0; i < name_len; i++)
			name[i] = (char)tolower((unsigned char)entry[i]);
		name[name_len] = '\0';
		ck = find_key(name, name_len);
		if (ck == NULL) {
			warn_unknown_env(entry, name_len);
			continue;
		}
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

void
mk_config_dump(const struct mk_config *config, struct mk_buf *out)
{
	mk_buf_puts(out,
	    "# The effective settings: defaults, the --config files, then "
	    "MARKETS_* variables.\n");
	for (const struct mk_conf_key *key = conf_keys;
	     key < conf_keys + CONF_NKEYS; key++) {
		const char *field = (const char *)config + key->offset;

		mk_buf_puts(out, key->name);
		mk_buf_puts(out, " =");
		if (key->type == CONF_SECRET) {
			const char *source =
			    config->secret_files[secret_slot(key)];

			if (source != NULL)
				mk_buf_printf(out, " @%s", source);
			else if (**(char *const *)(const void *)field != '\0')
				mk_buf_puts(out, " <redacted>");
			mk_buf_putc(out, '\n');
			continue;
		}
		mk_buf_putc(out, ' ');
		mk_conf_types[key->type].print(out, field);
		/* "key = " would end in a blank: "key =" reads the same. */
		if (out->len > 0 && out->data[out->len - 1] == ' ')
			out->len--;
		mk_buf_putc(out, '\n');
	}
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
