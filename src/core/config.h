/*
 * Configuration (core layer). Settings come from `key = value` files
 * (later files override earlier ones) and then from the environment,
 * where MARKETS_<KEY> overrides key. Every key has a default, so an empty
 * configuration is a valid one. A struct mk_config is worker-lifetime:
 * heap-owned, made at start and on SIGHUP by mk_config_load_environ()
 * (mk_config_load() of the process's environment, and the program's
 * check), freed with mk_config_free(); nothing in it points into a
 * request arena.
 */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H

#include <stddef.h>

#include "core/err.h"
#include "core/log.h"

struct mk_buf;

/*
 * Keys whose value is a secret (jwt_secret, cursor_secret, db_password):
 * --dump-config never prints them, and each also takes `@/path/to/file`,
 * read at load (systemd's LoadCredential=, container secrets) with its
 * trailing newline stripped.
 */
#define MK_CONFIG_SECRET_KEYS 3

struct mk_config {
	int workers;             /* pre-forked workers; 0 = one per core */
	int worker_connections;  /* FastCGI connections one worker holds */
	size_t max_body;         /* request body cap in bytes */
	int shutdown_timeout_ms; /* drain bound on SIGTERM and reload */
	int idle_timeout_ms;     /* a kept-alive connection with no request */
	int request_timeout_ms;  /* a request must arrive whole within this */
	int socket_mode;         /* permissions of a unix listening socket */
	/* peers a TCP listener serves (addresses/CIDRs) */
	char *listen_allowed_clients;
	char *log_file; /* "" or "-": stderr */
	enum mk_log_level log_level;
	/* a request slower gets a log line with its phases; 0: none */
	int slow_request_threshold_ms;
	char *jwt_secret; /* HS256 secret, >= 32 bytes when set */
	char *jwt_alg;    /* HS256, RS256 or ES256: never taken from a token */
	char *jwt_public_key;    /* PEM public key file for RS256/ES256 */
	char *jwt_keys_dir;      /* more keys, one file per kid (rotation) */
	int jwt_leeway_ms;       /* clock skew allowed on exp, nbf, iat */
	int jwt_max_lifetime_ms; /* longest exp - iat (exp - now without iat) */
	char *jwt_issuer;        /* required iss when set */
	char *jwt_audience;      /* required in aud when set */
	/* MAC key of list cursors; default: from jwt_secret; one is required */
	char *cursor_secret;
	struct mk_rate {
		int limit;    /* requests ... */
		int window_s; /* ... per this many seconds */
	} rate_limit;
	/* addresses/CIDRs whose X-Forwarded-For counts */
	char *trusted_proxies;
	char *cors_origins; /* exact origins that get CORS headers; "": none */
	/* where the app is mounted: "" derives it per request, "/" the root */
	char *base_path;
	char *memcached; /* servers: unix:/path or host:port, comma-separated */
	int memcached_timeout_ms;
	int cache_ttl_ms; /* a cached market document's lifetime (<= 1 day) */
	int cache_lease_wait_ms; /* a reader's wait for another worker's fill */
	char *metrics_allow;     /* addresses/CIDRs that may read /metrics */
	char *embedder;          /* hash | http */
	/* dimensions of the hash embedder (and expected of http) */
	int embedding_dim;
	/* http: the OpenAI-compatible embeddings endpoint */
	char *embedder_url;
	char *embedder_model;    /* http: the model name sent */
	int embedder_timeout_ms; /* http: one embedding's time limit */
	/* http: a file holding the bearer key; "": none */
	char *embedder_api_key_file;
	/* http: a query embedding's life in memcached; 0: not cached */
	int embedder_cache_ttl_ms;
	int job_runners;      /* job runner processes the master keeps */
	int job_lease_ms;     /* how long a claimed job is a runner's own */
	int job_max_attempts; /* runs before a failing job is dead */
	int job_backoff_ms;   /* the first retry's delay; doubles per attempt */
	int job_poll_ms;      /* an idle runner looks for work this often */
	char *db_socket;      /* MariaDB unix socket (wins over db_host) */
	char *db_host;
	int db_port;
	char *db_user;
	char *db_password;
	char *db_name;
	int db_connect_timeout_ms;
	int db_io_timeout_ms;   /* read and write */
	char *db_tls;           /* off | required | verify */
	char *db_tls_ca;        /* CA file that verifies the server (verify) */
	int db_retries;         /* attempts of one transaction */
	int db_retry_time_ms;   /* and the time they may take in all */
	char *db_replicas;      /* replicas: unix:/path or host:port, listed */
	int replica_max_lag_ms; /* out of service past this lag */
	/* how often a worker purges expired keys */
	int idempotency_purge_interval_ms;
	/*
	 * The file each secret key was read from (`@/path`), in the order
	 * of the secret keys in the table; NULL: given inline, or unset.
	 * Only --dump-config shows them, in place of the secret.
	 */
	char *secret_files[MK_CONFIG_SECRET_KEYS];
};

/* The most origins cors_origins may list (checked at load). */
#define MK_CONFIG_CORS_ORIGINS_MAX 32

/* Size of the error text buffers the functions below fill. */
#define MK_CONFIG_ERR_MAX 512

/* A configuration holding every default. NULL when out of memory. */
struct mk_config *mk_config_new(void);

void mk_config_free(struct mk_config *config);

/*
 * Applies the settings in text (len bytes, the contents of a file named
 * origin) to config. On a bad line returns MK_EINVAL with
 * "origin:line: reason" in err; config may then be half-applied and
 * should be freed.
 */
enum mk_err mk_config_parse(struct mk_config *config, const char *origin,
    const char *text, size_t len, char *err, size_t errlen);

/* Reads path and applies it with mk_config_parse(). */
enum mk_err mk_config_parse_file(
    struct mk_config *config, const char *path, char *err, size_t errlen);

/*
 * Applies MARKETS_<KEY>=value entries of envp (NULL-terminated) for the
 * known keys. Any other MARKETS_* variable is logged as a warning that
 * names it (a misspelt key would else be silently without effect), but
 * for the few that belong to scripts and programs (MARKETS_CONFIG,
 * MARKETS_PORT, MARKETS_BUILD_DIR, ...: see config.c), which are ignored.
 * A bad value is MK_EINVAL with "environment MARKETS_KEY: reason" in err.
 */
enum mk_err mk_config_apply_env(
    struct mk_config *config, char *const *envp, char *err, size_t errlen);

/*
 * The whole start-up sequence: defaults, then each of the npaths files,
 * then the environment. On success *out is a new configuration owned by
 * the caller; on failure *out is NULL and err says why.
 */
enum mk_err mk_config_load(const char *const *paths, size_t npaths,
    char *const *envp, struct mk_config **out, char *err, size_t errlen);

/* The most --config files a program takes. */
#define MK_CONFIG_MAX_FILES 16

/* A program's own check of a loaded configuration: 0, or -1 and err. */
typedef int mk_config_check_fn(
    const struct mk_config *config, char *err, size_t errlen);

/*
 * mk_config_load() of paths and this process's environment, then check
 * (NULL: none): how the programs load theirs at start, and the master
 * again on SIGHUP. A refusal by check is MK_EINVAL with *out NULL.
 */
enum mk_err mk_config_load_environ(const char *const *paths, size_t npaths,
    mk_config_check_fn *check, struct mk_config **out, char *err,
    size_t errlen);

/*
 * Appends every setting of config to out, one `key = value` line each in
 * the syntax of conf/markets.conf (a file that reads back as config),
 * in the table's order, after a comment line. A secret prints as
 * `<redacted>` when set inline, as its `@/path` when read from a file,
 * and empty when unset.
 */
void mk_config_dump(const struct mk_config *config, struct mk_buf *out);

/* The number of workers to run: config->workers, or the core count. */
int mk_config_worker_count(const struct mk_config *config);

#endif
