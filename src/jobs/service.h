/*
 * The job service (jobs layer): what the rest of a worker may do with the
 * durable queue (jobs/queue.h) — enqueue a job, read one, count them for
 * /metrics — over the worker's database handle, with the configured
 * number of attempts. The runner's side (claim, hold, finish, fail) is
 * jobs/runner.c's alone. Worker-lifetime; the db is not owned.
 *
 * The one other writer of jobs is the market repository's outbox
 * (markets/repo.h).
 */
#ifndef MK_JOBS_SERVICE_H
#define MK_JOBS_SERVICE_H

#include <stdint.h>

#include "core/err.h"

struct mk_arena;
struct mk_buf;
struct mk_db;
struct mk_job;
struct mk_job_service;

/* NULL when out of memory. */
struct mk_job_service *mk_job_service_new(
    struct mk_db *db, unsigned max_attempts);

void mk_job_service_free(struct mk_job_service *jobs);

/*
 * Queues a job of type with its JSON payload, or finds the queued one
 * with the same dedup_key (NULL: none): sets *id. Its own statement.
 */
enum mk_err mk_job_service_enqueue(struct mk_job_service *jobs,
    const char *type, const char *payload_json, const char *dedup_key,
    int64_t *id);

/* Job id (MK_ENOTFOUND when absent), in arena. */
enum mk_err mk_job_service_get(struct mk_job_service *jobs,
    struct mk_arena *arena, int64_t id, struct mk_job *out);

/*
 * Appends the markets_jobs gauge (jobs by status), counted now, to out;
 * nothing when the database does not answer. The signature of struct
 * mk_health_gauge's render: arg is the service, whose db handle says
 * what its statement counts as (the wiring gives it a background one).
 */
void mk_job_service_render_gauge(
    void *arg, struct mk_arena *arena, struct mk_buf *out);

#endif
