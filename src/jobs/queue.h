/*
 * The durable job queue (jobs layer): jobs live in MariaDB's `jobs` table
 * (sql/005_jobs.sql), so a job enqueued in a write's transaction exists
 * exactly when the write does, and nothing is lost when a process or the
 * database dies. This file is the only one that speaks SQL about jobs.
 *
 * A job's life: queued → running (claimed with a lease) → done; or, when
 * an attempt fails, failed (run_at pushed out by a back-off) → running
 * again … → dead after max_attempts. A lease that expires (its runner
 * died or hung) makes the job claimable again; on its last attempt it is
 * dead instead. A runner commits a job's effect and its completion in one
 * transaction, after checking it still holds the lease (mk_jobs_hold), so
 * an effect commits at most once per job even when two runners ran it.
 *
 * Results live in the caller's arena.
 */
#ifndef MK_JOBS_QUEUE_H
#define MK_JOBS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_buf;
struct mk_db;

/*
 * A job's states, as the jobs.status column names them; also the order
 * in which mk_jobs_count() counts them.
 */
enum mk_job_status {
	MK_JOB_QUEUED,
	MK_JOB_RUNNING,
	MK_JOB_DONE,
	MK_JOB_FAILED,
	MK_JOB_DEAD,
	MK_JOB_STATUS__MAX
};

/* The column's text of each state ("queued", …). */
extern const char *const mk_job_statuses[MK_JOB_STATUS__MAX];

struct mk_job {
	int64_t id;
	const char *type;
	const char *payload; /* JSON text */
	const char *status;  /* the column's text: mk_job_statuses[] */
	unsigned attempts;
	unsigned max_attempts;
	const char *run_at;     /* RFC 3339 UTC */
	const char *last_error; /* NULL when none */
	const char *created_at;
	const char *updated_at;
	const char *finished_at; /* NULL until done or dead */
};

/* The longest last_error kept (the column's size). */
#define MK_JOB_ERROR_MAX 1000

/*
 * Inside the caller's transaction on db: adds a queued job of type with
 * payload (JSON text), runnable now. Sets *id. With a dedup_key (at most
 * 64 ASCII characters naming the work), a job with that key still queued
 * is reused: *id is that job's and nothing is added (sql/007).
 */
enum mk_err mk_jobs_enqueue(struct mk_db *db, const char *type,
    const char *payload_json, const char *dedup_key, unsigned max_attempts,
    int64_t *id);

/* Reads job id. MK_ENOTFOUND when there is none. */
enum mk_err mk_jobs_get(
    struct mk_db *db, struct mk_arena *arena, int64_t id, struct mk_job *out);

/*
 * Claims up to n runnable jobs for runner (its name, ≤ 64 bytes) with a
 * lease of lease_ms, in one short transaction: ready jobs (queued, or
 * failed with run_at passed) first, then jobs whose lease expired — those
 * on their last attempt become dead. Skips rows other runners hold
 * (SKIP LOCKED), so runners never wait on each other. Fills out[0..*got).
 */
enum mk_err mk_jobs_claim(struct mk_db *db, struct mk_arena *arena,
    const char *runner, int lease_ms, size_t n, struct mk_job *out,
    size_t *got);

/*
 * Inside the transaction of a job's effect: locks the job's row and
 * checks that runner still holds it (status running, under its name).
 * MK_ECONFLICT when another runner took it over: roll back.
 */
enum mk_err mk_jobs_hold(
    struct mk_db *db, struct mk_arena *arena, int64_t id, const char *runner);

/*
 * Extends a claimed job's lease by lease_ms before its runner starts it
 * (a batch is run one job after another). MK_ECONFLICT when it is no
 * longer the runner's.
 */
enum mk_err mk_jobs_renew(struct mk_db *db, const struct mk_job *job,
    const char *runner, int lease_ms);

/*
 * Gives a claimed job the runner will not start (it is stopping) back to
 * the queue, its attempt not counted.
 */
enum mk_err mk_jobs_release(
    struct mk_db *db, const struct mk_job *job, const char *runner);

/*
 * Deletes at most limit jobs done more than keep_days ago (dead ones are
 * kept for their errors); *purged says how many went.
 */
enum mk_err mk_jobs_purge(
    struct mk_db *db, int keep_days, unsigned limit, uint64_t *purged);

/* Inside the same transaction: the job is done. */
enum mk_err mk_jobs_finish(struct mk_db *db, int64_t id);

/*
 * Records a failed attempt of job (as claimed: its attempts count this
 * one) if runner still holds it: failed, runnable again after a delay
 * drawn from [d/2, d] with random, d = backoff_ms · 2^(attempts−1)
 * (capped at an hour), or dead once attempts reached max_attempts. error is
 * kept (truncated to MK_JOB_ERROR_MAX bytes).
 */
enum mk_err mk_jobs_fail(struct mk_db *db, const struct mk_job *job,
    const char *runner, const char *error, int backoff_ms, uint64_t random);

/*
 * Appends a job (a const struct mk_job *) as the contract's JSON object;
 * an mk_json_write_fn.
 */
void mk_job_json(struct mk_buf *out, const void *job);

/*
 * The drain lock: a MariaDB named lock (GET_LOCK), held by db's
 * connection, so that one drain runs at a time whatever host it runs on
 * (markets-admin run-jobs --drain from cron). The server lets it go when
 * the connection ends, a killed drain's included.
 *
 * mk_jobs_lock tries it without waiting: *got false when another
 * connection holds it. mk_jobs_lock_held says whether this connection
 * still does: false once the connection was made again after a drop (the
 * store does that silently), when another drain may have started.
 * mk_jobs_unlock lets it go. The lock is the database's: NAME:md5 of
 * the database's name; name is at most 30 characters.
 */
enum mk_err mk_jobs_lock(
    struct mk_db *db, struct mk_arena *arena, const char *name, bool *got);
enum mk_err mk_jobs_lock_held(
    struct mk_db *db, struct mk_arena *arena, const char *name, bool *held);
void mk_jobs_unlock(struct mk_db *db, struct mk_arena *arena, const char *name);

/* Counts jobs by status into counts[], indexed by state, for /metrics. */
enum mk_err mk_jobs_count(struct mk_db *db, struct mk_arena *arena,
    uint64_t counts[MK_JOB_STATUS__MAX]);

#endif
