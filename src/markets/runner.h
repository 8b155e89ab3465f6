/*
 * The markets' job runner (markets layer): the parts a job loop
 * (jobs/runner.h) needs to run the markets' jobs, built in this one
 * place for the server's job runner processes (through app.c) and for
 * markets-admin run-jobs: a database handle of its own, whose statements
 * count as background work; the MariaDB repository over it; the
 * configured embedder; and the handlers of the job types. All are made
 * after fork and freed when the loop ends.
 *
 * Job types:
 *   index_market {"market_id": N}   embed the market's name and
 *                                   description, store the vector (or a
 *                                   tombstone when the market is gone)
 */
#ifndef MK_MARKETS_RUNNER_H
#define MK_MARKETS_RUNNER_H

#include <stdbool.h>

struct mk_config;

/*
 * Builds the parts from config and runs the job loop until carry_on()
 * says no (or, with drain, until no job is ready), holding the named
 * lock on its database connection when lock is not NULL; see
 * mk_job_runner_run. Returns the exit status: 1 when there is no
 * database or a part cannot be made (logged), else the loop's.
 */
int mk_market_runner_run(const struct mk_config *config, bool (*carry_on)(void),
    bool drain, const char *lock);

#endif
