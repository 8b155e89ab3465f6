/*
 * Health and metrics endpoints (http layer); see health.h.
 */
#include <stdio.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/metrics.h"
#include "http/health.h"
#include "http/request.h"
#include "http/response.h"
#include "store/cache.h"
#include "store/db.h"
#include "store/replicas.h"

enum mk_err
mk_health_live(void *context, struct mk_request *req, struct mk_response *resp)
{
	(void)context;
	(void)req;
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"status\":\"ok\"}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

/*
 * "ok", "unavailable" or "not configured", and whether it counts as
 * ready: a missing part does when it is optional (memcached), not when
 * every route of the API needs it (the database).
 */
static const char *
probe(bool configured, bool required, enum mk_err rc, bool *ready)
{
	if (!configured) {
		*ready = *ready && !required;
		return "not configured";
	}
	if (rc != MK_OK) {
		*ready = false;
		return "unavailable";
	}
	return "ok";
}

/* A replica's state in a word: ok (in service), lagging, or down. */
static const char *
replica_word(const struct mk_replica_state *state)
{
	return state->in_service ? "ok" : state->up ? "lagging" : "down";
}

/* ,"replicas":[{...},...] for the /readyz body. */
static void
render_replicas(const struct mk_replicas *replicas, struct mk_buf *out)
{
	struct mk_replica_state state;

	mk_buf_puts(out, ",\"replicas\":[");
	for (size_t i = 0; i < mk_replicas_count(replicas); i++) {
		mk_replicas_state(replicas, i, &state);
		mk_buf_puts(out, i > 0 ? ",{\"address\":" : "{\"address\":");
		mk_json_cstr(out, state.address);
		mk_buf_printf(out,
		    ",\"state\":\"%s\",\"lag_seconds\":", replica_word(&state));
		if (state.lag_s >= 0)
			mk_buf_printf(out, "%lld}", (long long)state.lag_s);
		else
			mk_buf_puts(out, "null}");
	}
	mk_buf_puts(out, "]");
}

/*
 * Gauges of the replicas as the answering worker sees them (each worker
 * checks them on its own).
 */
static void
metrics_replicas(const struct mk_replicas *replicas, struct mk_buf *out)
{
	static const char *const gauges[] = {
		"markets_db_replica_up",
		"markets_db_replica_in_service",
		"markets_db_replica_lag_seconds",
	};
	static const char *const help[] = {
		"1 when the replica answered this worker's last check",
		"1 while lag-tolerant reads go to the replica",
		"Seconds_Behind_Master at the last check; -1 when unknown",
	};
	struct mk_replica_state state;

	for (size_t g = 0; g < 3; g++) {
		mk_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g],
		    help[g], gauges[g]);
		for (size_t i = 0; i < mk_replicas_count(replicas); i++) {
			mk_replicas_state(replicas, i, &state);
			mk_buf_printf(out, "%s{replica=", gauges[g]);
			mk_json_cstr(out, state.address);
			mk_buf_printf(out, "} %lld\n",
			    g == 0       ? (long long)state.up
				: g == 1 ? (long long)state.in_service
					 : (long long)state.lag_s);
		}
	}
}

enum mk_err
mk_health_ready(void *context, struct mk_request *req, struct mk_response *resp)
{
	struct mk_health_context *health = context;
	struct mk_ready_probe *last = &health->ready_probe;
	int64_t now_ms = mk_clock_mono_ms();
	const char *database, *memcached;
	bool ready = true;

	if (!last->valid || now_ms - last->at_ms >= MK_READY_PROBE_MAX_AGE_MS) {
		last->database =
		    health->db != NULL ? mk_db_ping(health->db) : MK_OK;
		last->memcached = health->cache != NULL
		    ? mk_cache_ping(health->cache)
		    : MK_OK;
		last->at_ms = now_ms;
		last->valid = true;
	}
	database = probe(health->db != NULL, true, last->database, &ready);
	memcached =
	    probe(health->cache != NULL, false, last->memcached, &ready);

	mk_response_header(resp, "Cache-Control", "no-store");
	if (!ready) {
		static char message[96];

		mk_response_header(resp, "Retry-After", "5");
		(void)snprintf(message, sizeof(message), "Not ready:%s%s",
		    database[0] == 'u'       ? " database"
			: database[0] == 'n' ? " database not configured"
					     : "",
		    memcached[0] == 'u' ? " memcached" : "");
		req->error_message = message;
		req->log_error = message;
		return MK_EUNAVAIL;
	}
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"status\":\"ready\",\"database\":\"");
	mk_buf_puts(&resp->body, database);
	mk_buf_puts(&resp->body, "\",\"memcached\":\"");
	mk_buf_puts(&resp->body, memcached);
	mk_buf_puts(&resp->body, "\"");
	if (health->replicas != NULL)
		render_replicas(health->replicas, &resp->body);
	mk_buf_puts(&resp->body, "}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}

enum mk_err
mk_health_metrics(
    void *context, struct mk_request *req, struct mk_response *resp)
{
	const struct mk_health_context *health = context;
	const char *remote = mk_request_param(req, "REMOTE_ADDR");

	if (remote == NULL ||
	    !mk_cidr_list_contains(&health->metrics_allow, remote)) {
		req->log_error = "address not in metrics_allow";
		return MK_EFORBIDDEN;
	}
	mk_response_header(resp, "Cache-Control", "no-store");
	resp->status = 200;
	resp->has_body = true;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	mk_metrics_render(&resp->body, health->route_labels, health->nroutes,
	    health->version != NULL ? health->version : "unknown");
	if (health->replicas != NULL)
		metrics_replicas(health->replicas, &resp->body);
	if (health->gauge.render != NULL)
		health->gauge.render(
		    health->gauge.arg, req->arena, &resp->body);
	return MK_OK;
}
