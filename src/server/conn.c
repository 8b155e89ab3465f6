/*
 * One FastCGI connection (server layer); see conn.h. The rules a request
 * meets here, before the http layer sees it:
 *  - PARAMS over MK_CONN_MAX_PARAMS_BYTES → 431, answered as soon as the
 *    parameters end; the body is skipped.
 *  - CONTENT_LENGTH over max_body, or a body in another type than JSON →
 *    413 / 415 before reading the body, whose records are then skipped.
 *  - A body that grows past max_body while arriving → 413 at once.
 *  - A body whose length differs from CONTENT_LENGTH → 400.
 * Records of other request ids are ignored (FastCGI allows it), a second
 * BEGIN_REQUEST while one is active is refused with FCGI_CANT_MPX_CONN,
 * and a version other than 1 closes the connection.
 */
#include <fastcgi.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/metrics.h"
#include "http/middleware.h"
#include "server/conn.h"
#include "server/fcgi.h"

struct mk_conn *
mk_conn_new(int fd, struct mk_http_service *service, size_t max_body,
    unsigned max_conns)
{
	struct mk_conn *conn = calloc(1, sizeof(*conn));

	if (conn == NULL)
		return NULL;
	conn->arena = mk_arena_new(0);
	if (conn->arena == NULL) {
		free(conn);
		return NULL;
	}
	conn->fd = fd;
	conn->state = MK_CONN_IDLE;
	conn->service = service;
	conn->max_body = max_body;
	conn->max_conns = max_conns;
	mk_buf_init(&conn->in, NULL);
	mk_buf_init(&conn->out, NULL);
	return conn;
}

void
mk_conn_free(struct mk_conn *conn)
{
	if (conn == NULL)
		return;
	if (conn->state == MK_CONN_WAITING)
		mk_http_abandon(conn->service, conn->exchange,
		    "the front closed the connection");
	mk_buf_release(&conn->in);
	mk_buf_release(&conn->out);
	mk_arena_free(conn->arena);
	free(conn);
}

bool
mk_conn_busy(const struct mk_conn *conn)
{
	return conn->state != MK_CONN_IDLE || !mk_conn_flushed(conn);
}

bool
mk_conn_flushed(const struct mk_conn *conn)
{
	return conn->out_sent >= conn->out.len;
}

/* Forgets the finished request and its memory. */
static void
end_request(struct mk_conn *conn)
{
	conn->exchange = NULL;
	conn->woken = false;
	mk_arena_reset(conn->arena);
	conn->params = NULL;
	conn->nparams = 0;
	conn->early_error = MK_OK;
	conn->early_reason = NULL;
	conn->requests_served++;
	conn->state = conn->keep_conn ? MK_CONN_IDLE : MK_CONN_CLOSING;
}

/* The waited-for thing is ready: the worker resumes the request soon. */
static void
wake(void *arg)
{
	struct mk_conn *conn = arg;

	if (conn->state == MK_CONN_WAITING)
		conn->woken = true;
}

/* Queues a CGI answer as records. */
static void
queue_answer(struct mk_conn *conn, const struct mk_buf *cgi)
{
	if (cgi->oom) {
		/*
		 * Could not even build the fallback: end the request without
		 * output.
		 */
		mk_fcgi_put_end(&conn->out, conn->request_id, FCGI_OVERLOADED);
	} else {
		mk_fcgi_put_stdout(
		    &conn->out, conn->request_id, cgi->data, cgi->len);
		mk_fcgi_put_end(
		    &conn->out, conn->request_id, FCGI_REQUEST_COMPLETE);
	}
}

/*
 * Runs the request through the http layer and queues the answer; or,
 * when its handler waits, leaves the connection WAITING.
 */
static void
respond(struct mk_conn *conn)
{
	struct mk_http_input input = {
		.params = conn->params,
		.nparams = conn->nparams,
		.body = conn->body.data != NULL ? conn->body.data : "",
		.body_len = conn->body.len,
		.early_error = conn->early_error,
		.early_reason = conn->early_reason,
		.wake = wake,
		.wake_arg = conn,
	};
	struct mk_buf cgi;

	mk_buf_init(&cgi, conn->arena);
	mk_metrics_count(MK_COUNTER_REQUESTS_ACCEPTED);
	/* Busy while its code runs; a wait (WAITING) leaves the worker free. */
	mk_metrics_busy(true);
	conn->exchange =
	    mk_http_handle(conn->service, &input, conn->arena, &cgi);
	mk_metrics_busy(false);
	if (conn->exchange != NULL) {
		conn->state = MK_CONN_WAITING;
		conn->woken = false;
		return;
	}
	queue_answer(conn, &cgi);
}

void
mk_conn_resume(struct mk_conn *conn)
{
	struct mk_buf cgi;

	if (conn->state != MK_CONN_WAITING || !conn->woken)
		return;
	conn->woken = false;
	mk_buf_init(&cgi, conn->arena);
	mk_metrics_busy(true);
	conn->exchange = mk_http_resume(conn->service, conn->exchange, &cgi);
	mk_metrics_busy(false);
	if (conn->exchange != NULL)
		return; /* waits again */
	queue_answer(conn, &cgi);
	end_request(conn);
}

void
mk_conn_expire(struct mk_conn *conn, const char *why)
{
	struct mk_buf cgi;

	if (conn->state != MK_CONN_WAITING)
		return;
	mk_buf_init(&cgi, conn->arena);
	mk_http_expire(conn->service, conn->exchange, why, &cgi);
	queue_answer(conn, &cgi);
	end_request(conn);
}

/* Answers now with an early error; the rest of the body will be skipped. */
static void
respond_early(
    struct mk_conn *conn, enum mk_err err, const char *reason, bool body_done)
{
	conn->early_error = err;
	conn->early_reason = reason;
	respond(conn);
	if (body_done) {
		end_request(conn);
	} else {
		conn->state = MK_CONN_DISCARD;
	}
}

static void
begin_request(
    struct mk_conn *conn, const struct mk_fcgi_record *rec, int64_t now_ms)
{
	const FCGI_BeginRequestBody *begin = (const void *)rec->content;
	unsigned role;

	role = rec->content_len < sizeof(*begin)
	    ? 0
	    : (unsigned)begin->roleB1 << 8 | begin->roleB0;
	if (role != FCGI_RESPONDER) {
		mk_fcgi_put_end_only(
		    &conn->out, rec->request_id, FCGI_UNKNOWN_ROLE);
		/*
		 * Without FCGI_KEEP_CONN the application closes, refused or
		 * not.
		 */
		if (rec->content_len < sizeof(*begin) ||
		    !(begin->flags & FCGI_KEEP_CONN))
			conn->state = MK_CONN_CLOSING;
		return;
	}
	conn->request_id = rec->request_id;
	conn->keep_conn = (begin->flags & FCGI_KEEP_CONN) != 0;
	conn->state = MK_CONN_PARAMS;
	conn->request_started_ms = now_ms;
	conn->has_length = false;
	conn->declared_length = 0;
	conn->early_error = MK_OK;
	mk_buf_init(&conn->params_raw, conn->arena);
	mk_buf_init(&conn->body, conn->arena);
	conn->params_raw.max = MK_CONN_MAX_PARAMS_BYTES;
}

/* All PARAMS are in: decode them and decide whether the body is wanted. */
static void
params_done(struct mk_conn *conn)
{
	const char *reason = NULL;
	enum mk_err rc;
	int has_length;

	if (conn->params_raw.oom) {
		/* Either past the cap or out of memory: both mean "too big". */
		respond_early(
		    conn, MK_EHEADERS, "FastCGI params over the cap", false);
		return;
	}
	rc = mk_fcgi_params_decode(conn->arena,
	    (const uint8_t *)conn->params_raw.data, conn->params_raw.len,
	    &conn->params, &conn->nparams);
	if (rc != MK_OK) {
		respond_early(conn, rc, "malformed FastCGI params", false);
		return;
	}
	has_length = mk_request_content_length(
	    conn->params, conn->nparams, &conn->declared_length);
	if (has_length < 0) {
		respond_early(
		    conn, MK_EBADREQUEST, "malformed CONTENT_LENGTH", false);
		return;
	}
	conn->has_length = has_length == 1;
	if (conn->has_length) {
		rc = mk_request_check_body(conn->params, conn->nparams,
		    conn->max_body, conn->declared_length, &reason);
		if (rc != MK_OK) {
			respond_early(conn, rc, reason, false);
			return;
		}
	}
	conn->body.max = conn->max_body;
	conn->state = MK_CONN_STDIN;
}

static void
stdin_data(struct mk_conn *conn, const struct mk_fcgi_record *rec)
{
	if (conn->body.len + rec->content_len > conn->max_body) {
		respond_early(
		    conn, MK_ETOOLARGE, "body grew over max_body", false);
		return;
	}
	if (conn->has_length &&
	    conn->body.len + rec->content_len > conn->declared_length) {
		respond_early(conn, MK_EBADREQUEST,
		    "body longer than CONTENT_LENGTH", false);
		return;
	}
	mk_buf_append(&conn->body, rec->content, rec->content_len);
	if (conn->body.oom)
		respond_early(
		    conn, MK_ENOMEM, "out of memory for the body", false);
}

static void
stdin_done(struct mk_conn *conn)
{
	const char *reason = NULL;
	enum mk_err rc;

	if (conn->has_length && conn->body.len != conn->declared_length) {
		respond_early(conn, MK_EBADREQUEST,
		    "body shorter than CONTENT_LENGTH", true);
		return;
	}
	if (!conn->has_length) {
		rc = mk_request_check_body(conn->params, conn->nparams,
		    conn->max_body, conn->body.len, &reason);
		if (rc != MK_OK) {
			respond_early(conn, rc, reason, true);
			return;
		}
	}
	respond(conn);
	if (conn->state != MK_CONN_WAITING)
		end_request(conn);
}

/* Handles one record of the active request (or of none). */
static enum mk_err
on_record(
    struct mk_conn *conn, const struct mk_fcgi_record *rec, int64_t now_ms)
{
	if (rec->request_id == FCGI_NULL_REQUEST_ID) {
		if (rec->type == FCGI_GET_VALUES)
			mk_fcgi_put_values(&conn->out, rec->content,
			    rec->content_len, conn->max_conns);
		else
			mk_fcgi_put_unknown_type(&conn->out, rec->type);
		return MK_OK;
	}
	if (rec->type == FCGI_BEGIN_REQUEST) {
		if (conn->state == MK_CONN_IDLE)
			begin_request(conn, rec, now_ms);
		else
			mk_fcgi_put_end_only(
			    &conn->out, rec->request_id, FCGI_CANT_MPX_CONN);
		return MK_OK;
	}
	if (conn->state == MK_CONN_IDLE || rec->request_id != conn->request_id)
		/* a record of no active request: ignored, per spec */
		return MK_OK;
	switch (rec->type) {
	case FCGI_ABORT_REQUEST:
		/*
		 * The front gave up; it still wants the request ended — unless
		 * an early answer already ended it and only the body was left.
		 */
		if (conn->state == MK_CONN_WAITING)
			mk_http_abandon(conn->service, conn->exchange,
			    "the front aborted the request");
		if (conn->state != MK_CONN_DISCARD)
			mk_fcgi_put_end_only(&conn->out, conn->request_id,
			    FCGI_REQUEST_COMPLETE);
		end_request(conn);
		return MK_OK;
	case FCGI_PARAMS:
		if (conn->state != MK_CONN_PARAMS)
			return MK_EBADREQUEST;
		if (rec->content_len == 0)
			params_done(conn);
		else
			mk_buf_append(
			    &conn->params_raw, rec->content, rec->content_len);
		return MK_OK;
	case FCGI_STDIN:
		if (conn->state == MK_CONN_DISCARD) {
			if (rec->content_len == 0)
				end_request(conn);
			return MK_OK;
		}
		if (conn->state != MK_CONN_STDIN)
			return MK_EBADREQUEST;
		if (rec->content_len == 0)
			stdin_done(conn);
		else
			stdin_data(conn, rec);
		return MK_OK;
	case FCGI_DATA:
		return MK_OK; /* only for the filter role, which is refused */
	default:
		return MK_EBADREQUEST;
	}
}

enum mk_err
mk_conn_process(struct mk_conn *conn, int64_t now_ms)
{
	const uint8_t *p = (const uint8_t *)conn->in.data;
	size_t pos = 0;
	enum mk_err rc = MK_OK;

	if (conn->in.len > 0)
		conn->last_activity_ms = now_ms;
	while (conn->state != MK_CONN_CLOSING && pos < conn->in.len) {
		struct mk_fcgi_record rec;
		enum mk_fcgi_parse parsed;

		parsed =
		    mk_fcgi_record_parse(p + pos, conn->in.len - pos, &rec);
		if (parsed == MK_FCGI_NEED_MORE)
			break;
		if (parsed == MK_FCGI_BAD) {
			rc = MK_EBADREQUEST;
			break;
		}
		pos += rec.total_len;
		rc = on_record(conn, &rec, now_ms);
		if (rc != MK_OK)
			break;
	}
	mk_buf_consume(&conn->in, pos);
	if (rc != MK_OK) {
		/*
		 * Closing ends the wait here, while the arena still holds it.
		 */
		if (conn->state == MK_CONN_WAITING) {
			mk_http_abandon(conn->service, conn->exchange,
			    "a FastCGI protocol error");
			end_request(conn);
		}
		conn->state = MK_CONN_CLOSING;
	}
	return rc;
}
