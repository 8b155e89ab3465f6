/*
 * Job handlers (jobs layer, http side): a job's status for its
 * submitter's polling. The route's context is the worker's struct
 * mk_job_service.
 */
#ifndef MK_JOBS_HANDLERS_H
#define MK_JOBS_HANDLERS_H

#include "core/err.h"

struct mk_request;
struct mk_response;

/* GET /api/jobs/:id — context: struct mk_job_service *. */
enum mk_err mk_jobs_show(
    void *context, struct mk_request *req, struct mk_response *resp);

#endif
