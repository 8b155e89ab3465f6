/*
 * Health and metrics endpoints (http layer); see health.h.
 */
#include <stdio.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "http/middleware.h"
#include "jobs/queue.h"

#include "app.h"
#include "http/health.h"
#include "http/request.h"
#include "http/response.h"
#include "store/cache.h"
#include "store/db.h"

enum mk_err
mk_health_live(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	(void)app;
	(void)req;
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"status\":\"ok\"}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

/* "ok", "unavailable" or "not configured", and whether it counts as ready. */
static const char *
probe(bool configured, enum mk_err rc, bool *ready)
{
	if (!configured)
		return "not configured";
	if (rc != MK_OK) {
		*ready = false;
		return "unavailable";
	}
	return "ok";
}

enum mk_err
mk_health_ready(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	struct mk_ready_probe *last = &app->ready_probe;
	int64_t now_ms = mk_clock_mono_ms();
	const char *database, *memcached;
	bool ready = true;

	if (!last->valid || now_ms - last->at_ms >= MK_READY_PROBE_MAX_AGE_MS) {
		last->database = app->db != NULL ? mk_db_ping(app->db) : MK_OK;
		last->memcached = app->cache != NULL ? mk_cache_ping(app->cache) : MK_OK;
		last->at_ms = now_ms;
		last->valid = true;
	}
	database = probe(app->db != NULL, last->database, &ready);
	memcached = probe(app->cache != NULL, last->memcached, &ready);

	mk_response_header(resp, "Cache-Control", "no-store");
	if (!ready) {
		static char message[96];

		mk_response_header(resp, "Retry-After", "5");
		(void)snprintf(message, sizeof(message), "Not ready:%s%s",
		    database[0] == 'u' ? " database" : "", memcached[0] == 'u' ? " memcached" : "");
		req->error_message = message;
		req->log_error = message;
		return MK_EUNAVAIL;
	}
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"status\":\"ready\",\"database\":\"");
	mk_buf_puts(&resp->body, database);
	mk_buf_puts(&resp->body, "\",\"memcached\":\"");
	mk_buf_puts(&resp->body, memcached);
	mk_buf_puts(&resp->body, "\"}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_health_metrics(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	const char *remote = mk_request_param(req, "REMOTE_ADDR");
	const struct mk_http_service *http = mk_app_http(app);

	if (remote == NULL || !mk_cidr_list_contains(&app->metrics_allow, remote)) {
		req->log_error = "address not in metrics_allow";
		return MK_EFORBIDDEN;
	}
	mk_response_header(resp, "Cache-Control", "no-store");
	resp->status = 200;
	resp->has_body = true;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	mk_metrics_render(&resp->body, http->route_labels, http->nroutes);
	/*
	 * Jobs live in MariaDB, not in any worker: counted at scrape time,
	 * as background work (a scrape must not move the requests' count).
	 */
	if (app->db != NULL) {
		uint64_t counts[MK_JOB_STATUS__MAX];
		enum mk_err rc;

		mk_metrics_set_background(true);
		rc = mk_jobs_count(app->db, req->arena, counts);
		mk_metrics_set_background(false);
		if (rc == MK_OK) {
			mk_buf_puts(&resp->body, "# HELP markets_jobs Jobs in the queue, by status.\n"
			    "# TYPE markets_jobs gauge\n");
			for (size_t i = 0; i < MK_JOB_STATUS__MAX; i++)
				mk_buf_printf(&resp->body, "markets_jobs{status=\"%s\"} %llu\n",
				    mk_job_statuses[i], (unsigned long long)counts[i]);
		}
	}
	return MK_OK;
}
