/*
 * The durable job queue (jobs layer); see queue.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "jobs/queue.h"
#include "store/db.h"

/* The columns as a SELECT of jobs names them, kept as written here. */
/* clang-format off */
#define JOB_COLUMNS \
	"id, type, payload, status, attempts, max_attempts, " \
	MK_DB_RFC3339("run_at") ", last_error, " \
	MK_DB_RFC3339("created_at") ", " \
	MK_DB_RFC3339("updated_at") ", " \
	MK_DB_RFC3339("finished_at")
/* clang-format on */
/* The longest back-off: an hour. */
#define BACKOFF_MAX_MS 3600000LL

const char *const mk_job_statuses[MK_JOB_STATUS__MAX] = {
	[MK_JOB_QUEUED] = "queued",
	[MK_JOB_RUNNING] = "running",
	[MK_JOB_DONE] = "done",
	[MK_JOB_FAILED] = "failed",
	[MK_JOB_DEAD] = "dead",
};

/* Fills *job from row of a SELECT of JOB_COLUMNS. */
static void
read_job(const struct mk_db_rows *rows, size_t row, struct mk_job *job)
{
	job->id = mk_db_cell_int(rows, row, 0);
	job->type = mk_db_cell_text(rows, row, 1);
	job->payload = mk_db_cell_text(rows, row, 2);
	job->status = mk_db_cell_text(rows, row, 3);
	job->attempts = (unsigned)mk_db_cell_int(rows, row, 4);
	job->max_attempts = (unsigned)mk_db_cell_int(rows, row, 5);
	job->run_at = mk_db_cell_text(rows, row, 6);
	job->last_error = mk_db_cell_text(rows, row, 7);
	job->created_at = mk_db_cell_text(rows, row, 8);
	job->updated_at = mk_db_cell_text(rows, row, 9);
	job->finished_at = mk_db_cell_text(rows, row, 10);
}

enum mk_err
mk_jobs_enqueue(struct mk_db *db, const char *type, const char *payload_json,
    const char *dedup_key, unsigned max_attempts, int64_t *id)
{
	struct mk_db_value params[] = {
		mk_db_text(type, strlen(type)),
		mk_db_text(payload_json, strlen(payload_json)),
		mk_db_int(max_attempts),
		dedup_key != NULL ? mk_db_text(dedup_key, strlen(dedup_key))
				  : (struct mk_db_value){ .type = MK_DB_NULL },
	};
	uint64_t insert_id = 0;
	enum mk_err rc;

	/*
	 * On a queued duplicate, LAST_INSERT_ID(id) hands back the existing
	 * job.
	 */
	rc = mk_db_execute(db,
	    "INSERT INTO jobs (type, payload, max_attempts, dedup_key) VALUES "
	    "(?, ?, ?, ?) "
	    "ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
	    params, 4, NULL, &insert_id);
	if (rc == MK_OK)
		*id = (int64_t)insert_id;
	return rc;
}

enum mk_err
mk_jobs_get(
    struct mk_db *db, struct mk_arena *arena, int64_t id, struct mk_job *out)
{
	struct mk_db_value key = mk_db_int(id);
	struct mk_db_rows rows;
	enum mk_err rc;

	rc = mk_db_select(db, arena,
	    "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", &key, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows == 0)
		return MK_ENOTFOUND;
	read_job(&rows, 0, out);
	return MK_OK;
}

struct claim_work {
	struct mk_arena *arena;
	const char *runner;
	int lease_ms;
	size_t n;
	struct mk_job *out;
	size_t got;
};

/* Takes job row (locked by the caller's SELECT) for the runner. */
static enum mk_err
take(struct mk_db *db, struct claim_work *w, const struct mk_db_rows *rows,
    size_t row)
{
	struct mk_db_value params[] = {
		mk_db_text(w->runner, strlen(w->runner)),
		mk_db_int((int64_t)w->lease_ms * 1000),
		mk_db_int(mk_db_cell_int(rows, row, 0)),
	};
	struct mk_job *job = &w->out[w->got];
	enum mk_err rc;

	rc = mk_db_execute(db,
	    "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
	    "locked_by = ?, "
	    "locked_until = NOW(6) + INTERVAL ? MICROSECOND, updated_at = "
	    "NOW(6) WHERE id = ?",
	    params, 3, NULL, NULL);
	if (rc != MK_OK)
		return rc;
	read_job(rows, row, job);
	job->status = mk_job_statuses[MK_JOB_RUNNING];
	job->attempts++;
	w->got++;
	return MK_OK;
}

static enum mk_err
claim_in_transaction(struct mk_db *db, void *ctx)
{
	struct claim_work *w = ctx;
	struct mk_db_value limit = mk_db_int((int64_t)w->n);
	struct mk_db_rows rows;
	enum mk_err rc;

	w->got = 0;
	/*
	 * One status per query, so that the (status, run_at, id) index gives
	 * the order and InnoDB locks only the rows it returns, not every
	 * ready row of a long backlog.
	 */
	for (int s = 0; s < 2 && w->got < w->n; s++) {
		limit = mk_db_int((int64_t)(w->n - w->got));
		rc = mk_db_select(db, w->arena,
		    s == 0
			? "SELECT " JOB_COLUMNS " FROM jobs WHERE status = "
			  "'queued' AND run_at <= NOW(6) "
			  "ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED"
			: "SELECT " JOB_COLUMNS " FROM jobs WHERE status = "
			  "'failed' AND run_at <= NOW(6) "
			  "ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED",
		    &limit, 1, &rows);
		if (rc != MK_OK)
			return rc;
		for (size_t i = 0; i < rows.nrows; i++) {
			if ((rc = take(db, w, &rows, i)) != MK_OK)
				return rc;
		}
	}
	if (w->got == w->n)
		return MK_OK;
	/* Leases that ran out: their runner died or hung. */
	limit = mk_db_int((int64_t)(w->n - w->got));
	rc = mk_db_select(db, w->arena,
	    "SELECT " JOB_COLUMNS
	    " FROM jobs WHERE status = 'running' AND locked_until < NOW(6) "
	    "ORDER BY locked_until, id LIMIT ? FOR UPDATE SKIP LOCKED",
	    &limit, 1, &rows);
	if (rc != MK_OK)
		return rc;
	for (size_t i = 0; i < rows.nrows; i++) {
		if (mk_db_cell_int(&rows, i, 4) < mk_db_cell_int(&rows, i, 5)) {
			rc = take(db, w, &rows, i);
		} else {
			struct mk_db_value key =
			    mk_db_int(mk_db_cell_int(&rows, i, 0));

			rc = mk_db_execute(db,
			    "UPDATE jobs SET status = 'dead', locked_by = "
			    "NULL, locked_until = NULL, "
			    "last_error = 'the lease of its last attempt ran "
			    "out (the runner died or hung)', "
			    "updated_at = NOW(6), finished_at = NOW(6) WHERE "
			    "id = ?",
			    &key, 1, NULL, NULL);
		}
		if (rc != MK_OK)
			return rc;
	}
	return MK_OK;
}

enum mk_err
mk_jobs_claim(struct mk_db *db, struct mk_arena *arena, const char *runner,
    int lease_ms, size_t n, struct mk_job *out, size_t *got)
{
	struct claim_work work = { .arena = arena,
		.runner = runner,
		.lease_ms = lease_ms,
		.n = n,
		.out = out };
	enum mk_err rc;

	*got = 0;
	if (n == 0)
		return MK_OK;
	rc = mk_db_transaction(db, claim_in_transaction, &work);
	if (rc == MK_OK)
		*got = work.got;
	return rc;
}

enum mk_err
mk_jobs_hold(
    struct mk_db *db, struct mk_arena *arena, int64_t id, const char *runner)
{
	struct mk_db_value params[] = { mk_db_int(id),
		mk_db_text(runner, strlen(runner)) };
	struct mk_db_rows rows;
	enum mk_err rc;

	/*
	 * Still its runner's: running under its name. A lease that ran out
	 * but that nobody took over is still good (a take-over rewrites
	 * locked_by).
	 */
	rc = mk_db_select(db, arena,
	    "SELECT id FROM jobs WHERE id = ? AND status = 'running' AND "
	    "locked_by = ? FOR UPDATE",
	    params, 2, &rows);
	if (rc != MK_OK)
		return rc;
	return rows.nrows == 1 ? MK_OK : MK_ECONFLICT;
}

enum mk_err
mk_jobs_renew(struct mk_db *db, const struct mk_job *job, const char *runner,
    int lease_ms)
{
	struct mk_db_value params[] = {
		mk_db_int((int64_t)lease_ms * 1000),
		mk_db_int(job->id),
		mk_db_text(runner, strlen(runner)),
	};
	uint64_t affected = 0;
	enum mk_err rc;

	rc = mk_db_execute(db,
	    "UPDATE jobs SET locked_until = NOW(6) + INTERVAL ? MICROSECOND, "
	    "updated_at = NOW(6) "
	    "WHERE id = ? AND status = 'running' AND locked_by = ?",
	    params, 3, &affected, NULL);
	if (rc == MK_OK && affected == 0)
		rc = MK_ECONFLICT;
	return rc;
}

enum mk_err
mk_jobs_release(struct mk_db *db, const struct mk_job *job, const char *runner)
{
	struct mk_db_value params[] = { mk_db_int(job->id),
		mk_db_text(runner, strlen(runner)) };

	return mk_db_execute(db,
	    "UPDATE jobs SET status = IF(attempts > 1, 'failed', 'queued'), "
	    "attempts = attempts - 1, "
	    "locked_by = NULL, locked_until = NULL, updated_at = NOW(6) "
	    "WHERE id = ? AND status = 'running' AND locked_by = ?",
	    params, 2, NULL, NULL);
}

enum mk_err
mk_jobs_purge(struct mk_db *db, int keep_days, unsigned limit, uint64_t *purged)
{
	struct mk_db_value params[] = { mk_db_int(keep_days),
		mk_db_int(limit) };

	return mk_db_execute(db,
	    "DELETE FROM jobs WHERE status = 'done' AND finished_at < NOW(6) - "
	    "INTERVAL ? DAY LIMIT ?",
	    params, 2, purged, NULL);
}

enum mk_err
mk_jobs_finish(struct mk_db *db, int64_t id)
{
	struct mk_db_value key = mk_db_int(id);

	return mk_db_execute(db,
	    "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = "
	    "NULL, "
	    "updated_at = NOW(6), finished_at = NOW(6) WHERE id = ?",
	    &key, 1, NULL, NULL);
}

enum mk_err
mk_jobs_fail(struct mk_db *db, const struct mk_job *job, const char *runner,
    const char *error, int backoff_ms, uint64_t random)
{
	int64_t delay_ms = backoff_ms;
	size_t error_len = strlen(error);
	bool dead = job->attempts >= job->max_attempts;
	const char *status =
	    mk_job_statuses[dead ? MK_JOB_DEAD : MK_JOB_FAILED];

	for (unsigned i = 1; i < job->attempts && delay_ms < BACKOFF_MAX_MS;
	     i++)
		delay_ms *= 2;
	if (delay_ms > BACKOFF_MAX_MS)
		delay_ms = BACKOFF_MAX_MS;
	/*
	 * Jitter: anywhere in [delay/2, delay] ("equal jitter"), so retries
	 * spread out.
	 */
	delay_ms =
	    delay_ms / 2 + (int64_t)(random % (uint64_t)(delay_ms / 2 + 1));
	if (error_len > MK_JOB_ERROR_MAX)
		error_len = MK_JOB_ERROR_MAX;
	{
		struct mk_db_value params[] = {
			mk_db_text(status, strlen(status)),
			mk_db_int(delay_ms * 1000),
			mk_db_text(error, error_len),
			mk_db_int(dead ? 1 : 0),
			mk_db_int(job->id),
			mk_db_text(runner, strlen(runner)),
		};

		return mk_db_execute(db,
		    "UPDATE jobs SET status = ?, run_at = NOW(6) + INTERVAL ? "
		    "MICROSECOND, last_error = ?, "
		    "finished_at = IF(?, NOW(6), NULL), locked_by = NULL, "
		    "locked_until = NULL, "
		    "updated_at = NOW(6) WHERE id = ? AND status = 'running' "
		    "AND locked_by = ?",
		    params, 6, NULL, NULL);
	}
}

/* A job's JSON: its columns; payload is JSON already (JSON_VALID). */
static const struct mk_json_member job_members[] = {
	MK_JSON_MEMBER(struct mk_job, id),
	MK_JSON_MEMBER(struct mk_job, type),
	MK_JSON_MEMBER(struct mk_job, status),
	MK_JSON_MEMBER(struct mk_job, attempts),
	MK_JSON_MEMBER(struct mk_job, max_attempts),
	MK_JSON_MEMBER_RAW(struct mk_job, payload),
	MK_JSON_MEMBER(struct mk_job, last_error),
	MK_JSON_MEMBER(struct mk_job, run_at),
	MK_JSON_MEMBER(struct mk_job, created_at),
	MK_JSON_MEMBER(struct mk_job, updated_at),
	MK_JSON_MEMBER(struct mk_job, finished_at),
};

void
mk_job_json(struct mk_buf *out, const void *job)
{
	mk_json_object(out, job, job_members,
	    sizeof(job_members) / sizeof(job_members[0]));
}

enum mk_err
mk_jobs_count(struct mk_db *db, struct mk_arena *arena,
    uint64_t counts[MK_JOB_STATUS__MAX])
{
	struct mk_db_rows rows;
	enum mk_err rc;

	memset(counts, 0, MK_JOB_STATUS__MAX * sizeof(counts[0]));
	rc = mk_db_select(db, arena,
	    "SELECT status, COUNT(*) FROM jobs GROUP BY status", NULL, 0,
	    &rows);
	if (rc != MK_OK)
		return rc;
	for (size_t r = 0; r < rows.nrows; r++) {
		const char *status = mk_db_cell_text(&rows, r, 0);

		for (size_t s = 0; s < MK_JOB_STATUS__MAX; s++) {
			if (status != NULL &&
			    strcmp(status, mk_job_statuses[s]) == 0)
				counts[s] =
				    (uint64_t)mk_db_cell_int(&rows, r, 1);
		}
	}
	return MK_OK;
}

/* One row, one integer cell that is 1: true; 0 or NULL: false. */
static enum mk_err
lock_query(struct mk_db *db, struct mk_arena *arena, const char *sql,
    const char *name, bool *yes)
{
	struct mk_db_value param = mk_db_text(name, strlen(name));
	struct mk_db_rows rows;
	enum mk_err rc;

	*yes = false;
	rc = mk_db_select(db, arena, sql, &param, 1, &rows);
	if (rc != MK_OK)
		return rc;
	if (rows.nrows != 1 || rows.ncols != 1)
		return MK_EINTERNAL;
	*yes = mk_db_cell_int(&rows, 0, 0) == 1;
	return MK_OK;
}

/*
 * MariaDB's named locks are the server's, not a database's: the name
 * carries the database's (hashed, to stay within 64 characters), so that
 * installs sharing a server (shared hosting) drain each their own queue.
 */
#define SCOPED_LOCK "CONCAT(?, ':', MD5(DATABASE()))"

enum mk_err
mk_jobs_lock(
    struct mk_db *db, struct mk_arena *arena, const char *name, bool *got)
{
	/* NULL (an error, such as a kill) counts as not got. */
	return lock_query(
	    db, arena, "SELECT GET_LOCK(" SCOPED_LOCK ", 0)", name, got);
}

enum mk_err
mk_jobs_lock_held(
    struct mk_db *db, struct mk_arena *arena, const char *name, bool *held)
{
	return lock_query(db, arena,
	    "SELECT IS_USED_LOCK(" SCOPED_LOCK ") = CONNECTION_ID()", name,
	    held);
}

void
mk_jobs_unlock(struct mk_db *db, struct mk_arena *arena, const char *name)
{
	bool released;

	/* Closing the connection lets it go too: a failure here is no harm. */
	(void)lock_query(
	    db, arena, "SELECT RELEASE_LOCK(" SCOPED_LOCK ")", name, &released);
}
