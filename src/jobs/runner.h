/*
 * The job runner (jobs layer): a process of its own, started and kept
 * running by the master (job_runners of them) or by `markets-admin
 * run-jobs`. It claims jobs from the queue in small batches, runs each
 * one's handler, and records the outcome; idle, it looks for work every
 * job_poll. SIGTERM lets the job in hand finish, gives the batch's
 * unstarted jobs back to the queue, then it exits; SIGUSR1 reopens the
 * log. Done jobs older than a week are purged as it goes.
 *
 * Handlers are idempotent and commit their effect together with the
 * job's completion, after checking the lease is still theirs (queue.h).
 * Job types:
 *   index_market {"market_id": N}   embed the market's name and
 *                                   description, store the vector (or a
 *                                   tombstone when the market is gone)
 */
#ifndef MK_JOBS_RUNNER_H
#define MK_JOBS_RUNNER_H

#include <stdint.h>

#include "core/err.h"

struct mk_config;

/*
 * Runs jobs until SIGTERM/SIGINT (or, with drain, until none is ready).
 * under_master: die with the master. Returns the process exit status.
 */
int mk_jobs_runner_run(const struct mk_config *config, int under_master, int drain);

#endif
