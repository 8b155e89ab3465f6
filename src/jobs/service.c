/*
 * The job service (jobs layer); see service.h.
 */
#include <stdlib.h>

#include "core/buf.h"
#include "jobs/queue.h"
#include "jobs/service.h"

struct mk_job_service {
	struct mk_db *db; /* not owned */
	unsigned max_attempts;
};

struct mk_job_service *
mk_job_service_new(struct mk_db *db, unsigned max_attempts)
{
	struct mk_job_service *jobs = calloc(1, sizeof(*jobs));

	if (jobs == NULL)
		return NULL;
	jobs->db = db;
	jobs->max_attempts = max_attempts;
	return jobs;
}

void
mk_job_service_free(struct mk_job_service *jobs)
{
	free(jobs);
}

enum mk_err
mk_job_service_enqueue(struct mk_job_service *jobs, const char *type,
    const char *payload_json, const char *dedup_key, int64_t *id)
{
	return mk_jobs_enqueue(
	    jobs->db, type, payload_json, dedup_key, jobs->max_attempts, id);
}

enum mk_err
mk_job_service_get(struct mk_job_service *jobs, struct mk_arena *arena,
    int64_t id, struct mk_job *out)
{
	return mk_jobs_get(jobs->db, arena, id, out);
}

void
mk_job_service_render_gauge(
    void *arg, struct mk_arena *arena, struct mk_buf *out)
{
	struct mk_job_service *jobs = arg;
	uint64_t counts[MK_JOB_STATUS__MAX];

	if (mk_jobs_count(jobs->db, arena, counts) != MK_OK)
		return;
	mk_buf_puts(out,
	    "# HELP markets_jobs Jobs in the queue, by status.\n"
	    "# TYPE markets_jobs gauge\n");
	for (size_t i = 0; i < MK_JOB_STATUS__MAX; i++)
		mk_buf_printf(out, "markets_jobs{status=\"%s\"} %llu\n",
		    mk_job_statuses[i], (unsigned long long)counts[i]);
}
