/*
 * The job runner (jobs layer); see runner.h. It owns its process's
 * database handle, repository, embedder and arena, made after fork.
 */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json_parse.h"
#include "core/log.h"
#include "jobs/queue.h"
#include "jobs/runner.h"
#include "markets/repo.h"
#include "search/embedder.h"
#include "markets/indexer.h"
#include "store/db.h"

/* Jobs claimed at once: a short claim transaction, little lost to a crash. */
#define BATCH 8

/* Done jobs are deleted after this many days (dead ones are kept). */
#define KEEP_DONE_DAYS 7
/* How often a runner purges them, and how many at a time. */
#define PURGE_EVERY_MS 60000
#define PURGE_LIMIT 1000

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
on_reopen(int sig)
{
	(void)sig;
	reopen_requested = 1;
}

struct runner {
	const struct mk_config *config;
	struct mk_db *conn;           /* owns the connection */
	struct mk_db *db;             /* conn, counted as background work */
	struct mk_market_repo *repo;
	struct mk_embedder *embedder;
	struct mk_arena *arena;
	char name[96];    /* host:pid, as locked_by */
};

/* One job's effect and completion, committed together. */
struct finish_work {
	struct runner *runner;
	const struct mk_job *job;
	const struct mk_index_work *index;  /* NULL: completion only */
};

static enum mk_err
finish_in_transaction(struct mk_db *db, void *ctx)
{
	struct finish_work *w = ctx;
	enum mk_err rc;

	if ((rc = mk_jobs_hold(db, w->runner->arena, w->job->id, w->runner->name)) != MK_OK)
		return rc;
	if (w->index != NULL && (rc = mk_indexer_store(db, w->runner->arena, w->index)) != MK_OK)
		return rc;
	return mk_jobs_finish(db, w->job->id);
}

/* The market id of an index_market payload; false when it has none. */
static bool
payload_market_id(struct runner *r, const char *payload, int64_t *id)
{
	struct json_object *root, *value;
	const char *why = NULL;

	if (payload == NULL ||
	    mk_json_parse_in(r->arena, payload, strlen(payload), 4, 64, &root, &why) != MK_OK ||
	    !json_object_object_get_ex(root, "market_id", &value) ||
	    !json_object_is_type(value, json_type_int))
		return false;
	*id = json_object_get_int64(value);
	return *id > 0;
}

/* Runs one claimed job. Returns the reason it failed, or NULL. */
static const char *
run_job(struct runner *r, const struct mk_job *job)
{
	struct finish_work work = { .runner = r, .job = job };
	struct mk_index_work index;
	int64_t market_id = 0;
	enum mk_err rc;

	if (job->type == NULL || strcmp(job->type, "index_market") != 0)
		return "unknown job type";
	if (!payload_market_id(r, job->payload, &market_id))
		return "payload has no market_id";
	rc = mk_indexer_prepare(r->repo, r->arena, r->embedder, market_id, &index);
	if (rc == MK_EUNAVAIL)
		return "the embedder or the database did not answer";
	if (rc != MK_OK)
		return "the embedder's answer was not a vector";
	work.index = &index;
	rc = mk_db_transaction(r->db, finish_in_transaction, &work);
	if (rc == MK_ECONFLICT) {
		/* Another runner took the job over: its run counts, not ours. */
		mk_log(MK_LOG_WARN, "job %lld: lease lost before it finished", (long long)job->id);
		return NULL;
	}
	return rc == MK_OK ? NULL : "storing the result failed";
}

/* Claims a batch and runs it. Returns how many jobs were claimed. */
static size_t
run_batch(struct runner *r)
{
	struct mk_job jobs[BATCH];
	size_t got = 0;
	enum mk_err rc;

	mk_arena_reset(r->arena);
	rc = mk_jobs_claim(r->db, r->arena, r->name, r->config->job_lease_ms, BATCH, jobs, &got);
	if (rc != MK_OK)
		return 0; /* logged by the store; tried again after a pause */
	for (size_t i = 0; i < got; i++) {
		const char *failure;
		uint64_t random = 0;

		if (stop_requested) {
			/* Not started: back to the queue, for another runner now. */
			(void)mk_jobs_release(r->db, &jobs[i], r->name);
			continue;
		}
		/* The batch runs one by one: each job gets its full lease. */
		if (i > 0 && mk_jobs_renew(r->db, &jobs[i], r->name, r->config->job_lease_ms) != MK_OK)
			continue; /* taken over meanwhile (or the database is gone) */
		failure = run_job(r, &jobs[i]);
		if (failure == NULL) {
			mk_log(MK_LOG_DEBUG, "job %lld (%s) done", (long long)jobs[i].id, jobs[i].type);
			continue;
		}
		if (getrandom(&random, sizeof(random), 0) != (ssize_t)sizeof(random))
			random = (uint64_t)mk_clock_mono_us();
		mk_log(MK_LOG_WARN, "job %lld (%s) attempt %u of %u failed: %s", (long long)jobs[i].id,
		    jobs[i].type != NULL ? jobs[i].type : "?", jobs[i].attempts, jobs[i].max_attempts, failure);
		(void)mk_jobs_fail(r->db, &jobs[i], r->name, failure, r->config->job_backoff_ms, random);
	}
	return got;
}

static int
install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigset_t unblocked;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGQUIT, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = on_reopen;
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGHUP, &sa, NULL) != 0 || sigaction(SIGPIPE, &sa, NULL) != 0)
		return -1;
	/*
	 * The master forks with its signals blocked (it waits for them in
	 * ppoll); a runner takes them as they come, so that a stop cuts a
	 * pause short.
	 */
	sigemptyset(&unblocked);
	return sigprocmask(SIG_SETMASK, &unblocked, NULL);
}

int
mk_jobs_runner_run(const struct mk_config *config, int under_master, int drain)
{
	struct runner r = { .config = config };
	char host[64] = "localhost", err[512];
	int64_t next_purge_ms = 0;
	int status = 1;

	mk_log_set_role("runner");
	/* Told apart from the workers in ps and /proc (same binary, same parent). */
	if (prctl(PR_SET_NAME, "markets-runner", 0, 0, 0) != 0)
		mk_log(MK_LOG_WARN, "cannot name the runner process: %s", strerror(errno));
	if (install_signals() != 0) {
		mk_log(MK_LOG_ERROR, "cannot install signal handlers: %s", strerror(errno));
		return 1;
	}
	if (under_master && (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1))
		return 1;
	if (gethostname(host, sizeof(host) - 1) != 0)
		(void)snprintf(host, sizeof(host), "localhost");
	/* Within jobs.locked_by's 64 characters, whatever the host name. */
	(void)snprintf(r.name, sizeof(r.name), "%.50s:%ld", host, (long)getpid());
	if (!mk_db_configured(config)) {
		mk_log(MK_LOG_ERROR, "job runner: no database configured");
		return 1;
	}
	r.conn = mk_db_new(config, err, sizeof(err));
	r.db = r.conn != NULL ? mk_db_background(r.conn, err, sizeof(err)) : NULL;
	r.repo = r.db != NULL ? mk_market_repo_mysql_new(r.db, config->job_max_attempts) : NULL;
	r.embedder = mk_embedder_from_config(config, err, sizeof(err));
	r.arena = mk_arena_new(0);
	if (r.db == NULL || r.repo == NULL || r.embedder == NULL || r.arena == NULL) {
		mk_log(MK_LOG_ERROR, "job runner start-up failed: %s", err);
		goto out;
	}
	mk_log(MK_LOG_INFO, "job runner %s started (embedder %s, %u dimensions)", r.name,
	    r.embedder->name, r.embedder->dim);
	while (!stop_requested) {
		size_t claimed;

		if (reopen_requested) {
			reopen_requested = 0;
			if (mk_log_reopen() != 0)
				mk_log(MK_LOG_ERROR, "cannot reopen log: %s", strerror(errno));
		}
		if (mk_clock_mono_ms() >= next_purge_ms) {
			uint64_t purged = 0;

			next_purge_ms = mk_clock_mono_ms() + PURGE_EVERY_MS;
			if (mk_jobs_purge(r.db, KEEP_DONE_DAYS, PURGE_LIMIT, &purged) == MK_OK && purged > 0)
				mk_log(MK_LOG_INFO, "purged %llu job(s) done more than %d days ago",
				    (unsigned long long)purged, KEEP_DONE_DAYS);
		}
		claimed = run_batch(&r);
		if (claimed == 0) {
			if (drain)
				break;
			mk_clock_sleep_ms(config->job_poll_ms, 1); /* a stop cuts it short */
		}
	}
	status = 0;
out:
	mk_arena_free(r.arena);
	mk_embedder_free(r.embedder);
	mk_market_repo_free(r.repo);
	mk_db_free(r.db);
	mk_db_free(r.conn);
	return status;
}
