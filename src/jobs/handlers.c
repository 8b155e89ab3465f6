/*
 * Job handlers (jobs layer); see handlers.h.
 */
#include "http/params.h"
#include "http/request.h"
#include "http/response.h"
#include "jobs/handlers.h"
#include "jobs/queue.h"
#include "jobs/service.h"

enum mk_err
mk_jobs_show(void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_job_service *jobs = context;
	struct mk_job job;
	int64_t id;
	enum mk_err rc;

	if (!mk_param_id(req->path_params[0], &id))
		return MK_ENOTFOUND;
	if (jobs == NULL)
		return MK_EUNAVAIL;
	rc = mk_job_service_get(jobs, req->arena, id, &job);
	if (rc != MK_OK)
		return rc;
	return mk_response_item(resp, 200, "no-store", mk_job_json, &job);
}
