/*
 * The job loop (jobs layer); see runner.h. It owns its arena (reset per
 * batch) and its name; the database handle and the handlers are its
 * caller's.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "jobs/queue.h"
#include "jobs/runner.h"
#include "store/db.h"

/* Jobs claimed at once: a short claim transaction, little lost to a crash. */
#define BATCH 8

/* Done jobs are deleted after this many days (dead ones are kept). */
#define KEEP_DONE_DAYS 7
/* How often a runner purges them, and how many at a time. */
#define PURGE_EVERY_MS 60000
#define PURGE_LIMIT 1000

struct runner {
	const struct mk_job_runner *parts;
	const struct mk_config *config;
	struct mk_db *db;
	struct mk_arena *arena;
	char name[96]; /* host:pid, as locked_by */
};

/* One job's effect and completion, committed together. */
struct finish_work {
	struct runner *runner;
	const struct mk_job *job;
	const struct mk_job_handler *handler;
	void *effect;
};

static enum mk_err
finish_in_transaction(struct mk_db *db, void *ctx)
{
	struct finish_work *w = ctx;
	enum mk_err rc;

	if ((rc = mk_jobs_hold(
		 db, w->runner->arena, w->job->id, w->runner->name)) != MK_OK)
		return rc;
	if ((rc = w->handler->store(
		 w->handler->ctx, db, w->runner->arena, w->effect)) != MK_OK)
		return rc;
	return mk_jobs_finish(db, w->job->id);
}

/* Runs one claimed job. Returns the reason it failed, or NULL. */
static const char *
run_job(struct runner *r, const struct mk_job *job)
{
	struct finish_work work = { .runner = r, .job = job };
	const char *failure;
	enum mk_err rc;

	for (size_t i = 0; i < r->parts->nhandlers && work.handler == NULL;
	     i++) {
		if (job->type != NULL &&
		    strcmp(job->type, r->parts->handlers[i].type) == 0)
			work.handler = &r->parts->handlers[i];
	}
	if (work.handler == NULL)
		return "unknown job type";
	failure = work.handler->prepare(
	    work.handler->ctx, r->arena, job->payload, &work.effect);
	if (failure != NULL)
		return failure;
	rc = mk_db_transaction(r->db, finish_in_transaction, &work);
	if (rc == MK_ECONFLICT) {
		/* Another runner took the job over: its run counts. */
		mk_log(MK_LOG_WARN, "job %lld: lease lost before it finished",
		    (long long)job->id);
		return NULL;
	}
	if (rc != MK_OK)
		return "storing the result failed";
	mk_metrics_count(MK_COUNTER_JOBS_DONE);
	return NULL;
}

/*
 * Claims a batch and runs it. Returns how many jobs were claimed, or -1
 * when the queue could not be read (logged by the store).
 */
static long
run_batch(struct runner *r, bool (*carry_on)(void))
{
	struct mk_job jobs[BATCH];
	size_t got = 0;
	enum mk_err rc;

	mk_arena_reset(r->arena);
	rc = mk_jobs_claim(r->db, r->arena, r->name, r->config->job_lease_ms,
	    BATCH, jobs, &got);
	if (rc != MK_OK)
		return -1;
	for (size_t i = 0; i < got; i++) {
		const char *failure;
		uint64_t random = 0;

		if (!carry_on()) {
			/* Not started: back to the queue, for another one. */
			(void)mk_jobs_release(r->db, &jobs[i], r->name);
			continue;
		}
		/*
		 * The batch runs one by one: each job gets its full lease;
		 * one taken over meanwhile (or the database gone) is passed.
		 */
		if (i > 0 &&
		    mk_jobs_renew(r->db, &jobs[i], r->name,
			r->config->job_lease_ms) != MK_OK)
			continue;
		failure = run_job(r, &jobs[i]);
		if (failure == NULL) {
			mk_log(MK_LOG_DEBUG, "job %lld (%s) done",
			    (long long)jobs[i].id, jobs[i].type);
			continue;
		}
		if (getrandom(&random, sizeof(random), 0) !=
		    (ssize_t)sizeof(random))
			random = (uint64_t)mk_clock_mono_us();
		mk_log(MK_LOG_WARN, "job %lld (%s) attempt %u of %u failed: %s",
		    (long long)jobs[i].id,
		    jobs[i].type != NULL ? jobs[i].type : "?", jobs[i].attempts,
		    jobs[i].max_attempts, failure);
		if (mk_jobs_fail(r->db, &jobs[i], r->name, failure,
			r->config->job_backoff_ms, random) == MK_OK)
			mk_metrics_count(
			    jobs[i].attempts >= jobs[i].max_attempts
				? MK_COUNTER_JOBS_DEAD
				: MK_COUNTER_JOBS_FAILED);
	}
	return (long)got;
}

/*
 * Takes the loop's lock, when it has one. Returns 1 to run, 0 when
 * another holds it, -1 when it could not be asked.
 */
static int
take_lock(struct runner *r)
{
	bool got = false;

	if (r->parts->lock == NULL)
		return 1;
	if (mk_jobs_lock(r->db, r->arena, r->parts->lock, &got) != MK_OK) {
		mk_log(MK_LOG_ERROR, "job runner: cannot ask for the lock '%s'",
		    r->parts->lock);
		return -1;
	}
	if (!got) {
		/* Not a failure: a cron drain that overlaps the one running. */
		mk_log(MK_LOG_INFO,
		    "another drain holds the lock '%s': nothing to do",
		    r->parts->lock);
		return 0;
	}
	return 1;
}

/* False when the loop's lock is no longer its connection's (logged). */
static bool
still_locked(struct runner *r)
{
	bool held = false;

	if (r->parts->lock == NULL)
		return true;
	mk_arena_reset(r->arena);
	if (mk_jobs_lock_held(r->db, r->arena, r->parts->lock, &held) ==
		MK_OK &&
	    held)
		return true;
	mk_log(MK_LOG_ERROR,
	    "job runner: the lock '%s' was lost (the database connection "
	    "dropped): stopping",
	    r->parts->lock);
	return false;
}

int
mk_job_runner_run(
    const struct mk_job_runner *parts, bool (*carry_on)(void), bool drain)
{
	struct runner r = {
		.parts = parts, .config = parts->config, .db = parts->db
	};
	char host[64] = "localhost";
	int64_t next_purge_ms = 0;
	int status = 0;

	if (gethostname(host, sizeof(host) - 1) != 0)
		(void)snprintf(host, sizeof(host), "localhost");
	/* Within jobs.locked_by's 64 characters, whatever the host name. */
	(void)snprintf(
	    r.name, sizeof(r.name), "%.50s:%ld", host, (long)getpid());
	if ((r.arena = mk_arena_new(0)) == NULL) {
		mk_log(
		    MK_LOG_ERROR, "job runner start-up failed: out of memory");
		return 1;
	}
	switch (take_lock(&r)) {
	case 0:
		mk_arena_free(r.arena);
		return 0;
	case -1:
		mk_arena_free(r.arena);
		return 1;
	default:
		break;
	}
	mk_log(MK_LOG_INFO, "job runner %s started (%s)%s", r.name,
	    parts->about, drain ? ", draining" : "");
	while (carry_on()) {
		long claimed;

		if (!still_locked(&r)) {
			status = 1;
			break;
		}

		if (mk_clock_mono_ms() >= next_purge_ms) {
			uint64_t purged = 0;

			next_purge_ms = mk_clock_mono_ms() + PURGE_EVERY_MS;
			if (mk_jobs_purge(r.db, KEEP_DONE_DAYS, PURGE_LIMIT,
				&purged) == MK_OK &&
			    purged > 0)
				mk_log(MK_LOG_INFO,
				    "purged %llu job(s) done more than %d "
				    "days ago",
				    (unsigned long long)purged, KEEP_DONE_DAYS);
		}
		claimed = run_batch(&r, carry_on);
		if (claimed < 0 && drain) {
			mk_log(MK_LOG_ERROR,
			    "job runner: the queue could not be read: the "
			    "drain stops");
			status = 1;
			break;
		}
		if (claimed <= 0) {
			if (drain)
				break;
			/* A signal (a stop) cuts it short. */
			mk_clock_sleep_ms(r.config->job_poll_ms, 1);
		}
	}
	if (parts->lock != NULL && status == 0) {
		mk_arena_reset(r.arena);
		mk_jobs_unlock(r.db, r.arena, parts->lock);
	}
	mk_arena_free(r.arena);
	return status;
}
