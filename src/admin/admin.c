/*
 * markets-admin (admin layer): operator commands that run beside the
 * server with the same configuration (--config files, then MARKETS_<KEY>
 * from the environment).
 *
 *   markets-admin [--config FILE]... token --sub ID --role ROLE
 *                 [--email E] [--name N] [--ttl SECONDS]
 *       prints an HS256 token signed with jwt_secret
 *   markets-admin [--config FILE]... migrate [--dir DIR] [--status]
 *       applies the DIR/NNN_name.sql files (DIR defaults to the
 *       installed ones, MK_MIGRATE_DIR) that schema_version does not
 *       record yet, in order; --status lists every file as applied or
 *       pending and changes nothing
 *   markets-admin [--config FILE]... reindex [--missing]
 *       embeds every market (or those without a current vector) with
 *       the configured embedder and stores the vectors for search
 *   markets-admin [--config FILE]... run-jobs [--drain] [--max-time S]
 *       runs a job runner in the foreground (where no master runs one,
 *       e.g. under Apache mod_fcgid); --drain stops when none is ready
 *       or after --max-time seconds (default 50, for a cron line every
 *       minute), and runs only when no other drain does (a MariaDB
 *       named lock: another one running is exit 0 at once)
 *   markets-admin status [--url URL] [--timeout SECONDS]
 *       prints the server's state (workers, queue, requests) read from
 *       its /metrics
 *
 * migrate lives in migrate.c, status in status.c. Exit status: 0 success, 1
 * failure, 2 usage error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "admin/migrate.h"
#include "admin/status.h"
#include "auth/jwt.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "core/signals.h"
#include "markets/indexer.h"
#include "markets/runner.h"
#include "search/embedder.h"
#include "store/db.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: markets-admin [--config FILE]... COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  token --sub ID --role admin|moderator|user [--email E] [--name "
	    "N]\n"
	    "        [--ttl SECONDS]   print an HS256 token signed with "
	    "jwt_secret\n"
	    "        (ttl: default 3600, at most jwt_max_lifetime)\n"
	    "  migrate [--dir DIR] [--status]\n"
	    "        apply DIR/NNN_name.sql (default DIR: " MK_MIGRATE_DIR ")\n"
	    "        not yet recorded in\n"
	    "        schema_version, in order; --status lists applied and "
	    "pending\n"
	    "        files and applies nothing. Connects with the db_* "
	    "settings\n"
	    "        (MARKETS_DB_USER=root etc. override them).\n"
	    "  reindex [--missing]\n"
	    "        embed every market (--missing: only those without a "
	    "vector of\n"
	    "        the configured embedder for their current version) for "
	    "search\n"
	    "  run-jobs [--drain] [--max-time SECONDS]\n"
	    "        run a job runner in the foreground; --drain: until none "
	    "is ready\n"
	    "        or for --max-time seconds (default 50; 0: no bound), "
	    "one drain\n"
	    "        at a time (another one running: exit 0 at once)\n"
	    "  status [--url URL] [--timeout SECONDS]\n"
	    "        the server's state (workers busy and idle, listen queue, "
	    "requests,\n"
	    "        restarts), read from its /metrics (default URL: "
	    "http://127.0.0.1:8080/metrics)\n");
}

static int
parse_positive(const char *s, long long max, long long *out)
{
	char *end;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_token(const struct mk_config *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sub", required_argument, NULL, 's' },
		{ "role", required_argument, NULL, 'r' },
		{ "email", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *email = NULL, *name = NULL;
	long long sub = 0, ttl = 3600;
	struct mk_buf payload, token;
	int opt, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_positive(optarg, (1LL << 53) - 1, &sub) !=
			    0) {
				fprintf(stderr,
				    "markets-admin: --sub must be a positive "
				    "integer\n");
				return 2;
			}
			break;
		case 'r':
			role = optarg;
			break;
		case 'e':
			email = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 't':
			if (parse_positive(optarg, 10LL * 365 * 86400, &ttl) !=
			    0) {
				fprintf(stderr,
				    "markets-admin: --ttl must be a positive "
				    "number of seconds\n");
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sub == 0 || role == NULL ||
	    (strcmp(role, "admin") != 0 && strcmp(role, "moderator") != 0 &&
		strcmp(role, "user") != 0)) {
		fprintf(stderr,
		    "markets-admin: token needs --sub and --role "
		    "admin|moderator|user\n");
		return 2;
	}
	if (config->jwt_secret[0] == '\0') {
		fprintf(
		    stderr, "markets-admin: jwt_secret is not configured\n");
		return 1;
	}
	/* The server would refuse it (exp - iat above jwt_max_lifetime). */
	if (ttl > config->jwt_max_lifetime_ms / 1000) {
		fprintf(stderr,
		    "markets-admin: --ttl %lld is longer than jwt_max_lifetime "
		    "(%d s): the server would refuse the token\n",
		    ttl, config->jwt_max_lifetime_ms / 1000);
		return 2;
	}
	mk_buf_init(&payload, NULL);
	mk_buf_init(&token, NULL);
	mk_buf_printf(&payload,
	    "{\"sub\":\"%lld\",\"role\":\"%s\",\"iat\":%lld,\"exp\":%lld", sub,
	    role, (long long)time(NULL), (long long)time(NULL) + ttl);
	if (email != NULL) {
		mk_buf_puts(&payload, ",\"email\":");
		mk_json_cstr(&payload, email);
	}
	if (name != NULL) {
		mk_buf_puts(&payload, ",\"name\":");
		mk_json_cstr(&payload, name);
	}
	mk_buf_putc(&payload, '}');
	if (!payload.oom &&
	    mk_jwt_sign_hs256(&token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		payload.data, config->jwt_secret,
		strlen(config->jwt_secret)) == MK_OK) {
		printf("%s\n", token.data);
		status = fflush(stdout) == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "markets-admin: cannot sign the token\n");
	}
	mk_buf_release(&payload);
	mk_buf_release(&token);
	return status;
}

static int
cmd_reindex(const struct mk_config *config, int argc, char **argv)
{
	struct mk_embedder *embedder = NULL;
	struct mk_arena *arena = NULL;
	struct mk_db *db = NULL;
	bool only_missing = false;
	uint64_t count = 0;
	char err[512] = "";
	enum mk_err rc = MK_EINTERNAL;

	if (argc == 2 && strcmp(argv[1], "--missing") == 0) {
		only_missing = true;
	} else if (argc != 1) {
		fprintf(
		    stderr, "markets-admin: reindex takes only --missing\n");
		return 2;
	}
	if (!mk_db_configured(config)) {
		fprintf(
		    stderr, "markets-admin: reindex: no database configured\n");
		return 1;
	}
	db = mk_db_new(config, err, sizeof(err));
	embedder = db != NULL
	    ? mk_embedder_from_config(config, err, sizeof(err))
	    : NULL;
	arena = mk_arena_new(0);
	if (db != NULL && embedder != NULL && arena != NULL)
		rc = mk_indexer_reindex_all(
		    db, arena, embedder, only_missing, &count);
	if (rc == MK_OK)
		printf("reindexed %llu market(s) with %s (%u dimensions)\n",
		    (unsigned long long)count, embedder->name, embedder->dim);
	else
		fprintf(stderr,
		    "markets-admin: reindex failed after %llu market(s): %s\n",
		    (unsigned long long)count,
		    err[0] != '\0' ? err : mk_err_name(rc));
	mk_arena_free(arena);
	mk_embedder_free(embedder);
	mk_db_free(db);
	return rc == MK_OK ? 0 : 1;
}

/* The drain lock's name (jobs/queue.h): one drain at a time. */
#define DRAIN_LOCK "markets.run-jobs"
/* A drain's default bound: under a minute, for a cron line every minute. */
#define DRAIN_MAX_TIME_S 50

/* When a bounded run stops claiming (monotonic ms); 0: never. */
static int64_t run_deadline_ms;

/* Signals, then the deadline: a job in hand still finishes. */
static bool
run_carry_on(void)
{
	return mk_signals_carry_on() &&
	    (run_deadline_ms == 0 || mk_clock_mono_ms() < run_deadline_ms);
}

static int
cmd_run_jobs(const struct mk_config *config, int argc, char **argv)
{
	long long max_time = -1;
	bool drain = false;
	int status;

	for (int i = 1; i < argc; i++) {
		const char *value = NULL;

		if (strcmp(argv[i], "--drain") == 0) {
			drain = true;
			continue;
		}
		if (strcmp(argv[i], "--max-time") == 0 && i + 1 < argc)
			value = argv[++i];
		else if (strncmp(argv[i], "--max-time=", 11) == 0)
			value = argv[i] + 11;
		if (value == NULL ||
		    (strcmp(value, "0") != 0 &&
			parse_positive(value, 86400, &max_time) != 0)) {
			fprintf(stderr,
			    "markets-admin: run-jobs takes --drain and "
			    "--max-time SECONDS (0 to 86400)\n");
			return 2;
		}
		if (strcmp(value, "0") == 0)
			max_time = 0;
	}
	if (max_time < 0)
		max_time = drain ? DRAIN_MAX_TIME_S : 0;
	if (mk_log_open(config->log_file, config->log_level) != 0) {
		fprintf(stderr, "markets-admin: cannot open log %s: %s\n",
		    config->log_file, strerror(errno));
		return 1;
	}
	/* As the master's runners do (server/child.c), in the foreground. */
	mk_log_set_role("runner");
	if (prctl(PR_SET_NAME, "markets-runner", 0, 0, 0) != 0)
		mk_log(MK_LOG_WARN, "cannot name the runner process: %s",
		    strerror(errno));
	if (mk_signals_install(false, NULL) != 0) {
		mk_log(MK_LOG_ERROR, "cannot install signal handlers: %s",
		    strerror(errno));
		return 1;
	}
	if (max_time > 0)
		run_deadline_ms = mk_clock_mono_ms() + max_time * 1000;
	/* Only drains lock: a foreground runner is one runner among others. */
	status = mk_market_runner_run(
	    config, run_carry_on, drain, drain ? DRAIN_LOCK : NULL);
	if (status == 0 && run_deadline_ms != 0 &&
	    mk_clock_mono_ms() >= run_deadline_ms && mk_signals_carry_on())
		mk_log(MK_LOG_INFO,
		    "run-jobs: stopped after --max-time %lld s; jobs left "
		    "wait for the next run",
		    max_time);
	return status;
}

int
main(int argc, char **argv)
{
	const char *config_paths[MK_CONFIG_MAX_FILES];
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *config;
	size_t nconfig = 0;
	int i = 1, status;

	/* Global options come before the command; getopt would mix them up. */
	while (i < argc && strcmp(argv[i], "--config") == 0) {
		if (i + 1 >= argc || nconfig == MK_CONFIG_MAX_FILES) {
			usage(stderr);
			return 2;
		}
		config_paths[nconfig++] = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	if (mk_config_load_environ(config_paths, nconfig, NULL, &config, err,
		sizeof(err)) != MK_OK) {
		fprintf(stderr, "markets-admin: bad configuration: %s\n", err);
		return 1;
	}
	if (strcmp(argv[i], "token") == 0) {
		status = cmd_token(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "migrate") == 0) {
		status = mk_migrate_command(config, argc - i, argv + i, usage);
	} else if (strcmp(argv[i], "reindex") == 0) {
		status = cmd_reindex(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "run-jobs") == 0) {
		status = cmd_run_jobs(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "status") == 0) {
		status = mk_status_command(argc - i, argv + i);
	} else {
		fprintf(
		    stderr, "markets-admin: unknown command '%s'\n", argv[i]);
		usage(stderr);
		status = 2;
	}
	mk_config_free(config);
	return status;
}
