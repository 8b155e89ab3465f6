/*
 * The job loop (jobs layer): claims jobs from the queue in small batches,
 * runs each one's handler, and records the outcome; idle, it looks for
 * work every job_poll. Done jobs older than a week are purged as it
 * goes. It is handed its parts — a database handle and the handlers of
 * the job types — and knows no process: whoever runs it (a job runner
 * forked by the master, server/child.h, or markets-admin run-jobs) says
 * when to stop through carry_on. On a stop the job in hand finishes and
 * the batch's unstarted jobs go back to the queue.
 *
 * Handlers are idempotent and commit their effect together with the
 * job's completion, after checking the lease is still theirs (queue.h).
 */
#ifndef MK_JOBS_RUNNER_H
#define MK_JOBS_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct mk_arena;
struct mk_config;
struct mk_db;

/*
 * What a job type does, in two steps so that a slow one (an embedder's
 * call) never runs inside a transaction. prepare reads the job's JSON
 * payload and makes its effect, in arena, into *effect; it returns NULL,
 * or why this attempt failed (logged and kept as the job's last_error).
 * store writes that effect on db inside the transaction that completes
 * the job, after the lease was checked.
 */
struct mk_job_handler {
	const char *type;
	const char *(*prepare)(void *ctx, struct mk_arena *arena,
	    const char *payload, void **effect);
	enum mk_err (*store)(
	    void *ctx, struct mk_db *db, struct mk_arena *arena, void *effect);
	void *ctx;
};

/* A job loop's parts; none is owned by the loop. */
struct mk_job_runner {
	const struct mk_config *config; /* job_lease, job_backoff, job_poll */
	struct mk_db *db;
	const struct mk_job_handler *handlers;
	size_t nhandlers;
	const char *about; /* said in its start line: what the handlers use */
	/*
	 * A named lock the loop must hold (queue.h's drain lock), or NULL.
	 * Taken first: when another connection holds it, the loop says so
	 * and returns 0 at once, having claimed nothing. Checked before
	 * each batch: lost (the connection was made again), the loop stops.
	 */
	const char *lock;
};

/*
 * Runs jobs until carry_on() says no (it is asked before each batch,
 * before each job and after each pause; a pause must end early when a
 * signal comes) or, with drain, until none is ready. Returns the exit
 * status of a process that does nothing else: 0, or 1 when it could not
 * start, when a drain could not read the queue, or when it lost its lock.
 */
int mk_job_runner_run(
    const struct mk_job_runner *runner, bool (*carry_on)(void), bool drain);

#endif
