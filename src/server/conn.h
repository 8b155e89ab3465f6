/*
 * One FastCGI connection (server layer): the state machine that turns the
 * bytes a front server sends into requests for the http layer, and the
 * responses back into records. It does no I/O itself — the worker reads
 * into conn->in, calls mk_conn_process(), and writes conn->out — so the
 * whole protocol path can be driven by a fuzzer without sockets.
 *
 * Why not libfcgi's FCGX_Accept_r: it gives each process one connection
 * at a time, so with nginx's fastcgi_keep_conn every idle kept-alive
 * connection pins a worker while requests queue behind it. Here a worker
 * holds many connections and serves whichever has a whole request.
 *
 * Ownership: a connection owns its buffers and its arena; the arena is
 * reset after every response, so no request memory survives a request.
 *
 * A request whose handler waits (a search waiting for its query's
 * embedding) leaves the connection WAITING with the request's state in
 * its arena (the http layer's exchange). Whatever it waits for calls the
 * connection's wake, which only sets woken: the worker then calls
 * mk_conn_resume() from its loop, outside any library's callback. Every
 * other way out ends the wait once: mk_conn_expire() (request_timeout,
 * shutdown) answers 503, an FCGI_ABORT_REQUEST or mk_conn_free() (the
 * front closed) abandon it.
 */
#ifndef MK_CONN_H
#define MK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct mk_arena;
struct mk_http_exchange;
struct mk_http_service;

/* PARAMS bytes past this are a 431 (nginx's default header limit is 32 KiB). */
#define MK_CONN_MAX_PARAMS_BYTES (64 * 1024)

enum mk_conn_state {
	MK_CONN_IDLE,    /* between requests: expects FCGI_BEGIN_REQUEST */
	MK_CONN_PARAMS,  /* collecting FCGI_PARAMS */
	MK_CONN_STDIN,   /* collecting the body */
	MK_CONN_DISCARD, /* answered early: skipping the rest of the body */
	/* received whole; its handler waits (see mk_conn_resume) */
	MK_CONN_WAITING,
	MK_CONN_CLOSING, /* flush what is queued, then close */
};

struct mk_conn {
	int fd;
	enum mk_conn_state state;
	struct mk_buf in;  /* heap: bytes read, not yet parsed */
	struct mk_buf out; /* heap: records to write */
	size_t out_sent;   /* bytes of out already written */
	struct mk_arena *arena;
	struct mk_http_service *service;
	size_t max_body;
	unsigned max_conns; /* for FCGI_GET_VALUES */

	/* The request in progress (valid outside IDLE). */
	uint16_t request_id;
	bool keep_conn;
	struct mk_buf params_raw; /* arena */
	struct mk_buf body;       /* arena */
	struct mk_param *params;
	size_t nparams;
	bool has_length;
	uint64_t declared_length;
	enum mk_err early_error;
	const char *early_reason;

	struct mk_http_exchange *exchange; /* while WAITING */
	bool woken;                        /* WAITING, and may go on */

	int64_t last_activity_ms;
	int64_t request_started_ms;
	uint64_t requests_served;

	struct mk_conn *prev, *next; /* the worker's list */
};

/*
 * Makes a connection over fd (not owned: the worker closes it). Returns
 * NULL when out of memory; free with mk_conn_free().
 */
struct mk_conn *mk_conn_new(int fd, struct mk_http_service *service,
    size_t max_body, unsigned max_conns);

void mk_conn_free(struct mk_conn *conn);

/*
 * Parses every whole record in conn->in, consuming it, running complete
 * requests through the http layer and queuing records in conn->out.
 * Returns MK_OK, or MK_EBADREQUEST on a protocol violation after which
 * the connection must be closed (what is queued may still be flushed).
 */
enum mk_err mk_conn_process(struct mk_conn *conn, int64_t now_ms);

/*
 * Goes on with a woken WAITING request: queues its answer (or it waits
 * again). Nothing when the connection is not woken.
 */
void mk_conn_resume(struct mk_conn *conn);

/* Gives a WAITING request up with a 503 and Retry-After (why is logged). */
void mk_conn_expire(struct mk_conn *conn, const char *why);

/* True when a request is partly received or its answer not yet written. */
bool mk_conn_busy(const struct mk_conn *conn);

/* True when everything queued has been written. */
bool mk_conn_flushed(const struct mk_conn *conn);

#endif
