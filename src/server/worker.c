/*
 * A worker (server layer); see worker.h. Owns its epoll set, its
 * connections (each with buffers and an arena) and the application
 * wiring; all are made here and freed before the worker exits, so the
 * sanitizers and valgrind see a clean exit.
 *
 * Signals only set flags (core/signals.h; the process is set up as a
 * child by child.h). They stay blocked except inside epoll_pwait(), and
 * right after it when one came while events were ready (which
 * epoll_pwait() returns without letting the signal in), so no handler
 * ever interrupts request code, and a busy worker still sees SIGTERM.
 *
 * Accepting: the listening socket is in every worker's epoll set with
 * EPOLLEXCLUSIVE, so a new connection wakes one idle worker rather than
 * all of them; a busy worker is not waiting and so is not woken.
 *
 * Waiting requests: the worker owns a core/loop.h loop, whose descriptor
 * is in its epoll set and whose timers bound its sleep; the app's client
 * libraries (the http embedder's libcurl multi handle) run their sockets
 * there. After running it, the worker resumes the connections that were
 * woken and writes their answers. The loop outlives the app, which
 * outlives the connections: each is freed in that order.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/signals.h"
#include "server/child.h"
#include "server/conn.h"
#include "server/listener.h"
#include "server/worker.h"

#define MAX_EVENTS 64
#define ACCEPTS_PER_WAKEUP 8
#define READ_CHUNK 16384
/* Reading stops for a turn after this much, so one peer cannot hog the loop. */
#define READ_BUDGET (256 * 1024)
/*
 * A peer that sends requests without reading the answers gets no more of
 * its input read while this much output waits: memory stays bounded.
 */
#define OUT_HIGH_WATER (256 * 1024)
/* A connection's buffers give back memory past this once they are empty. */
#define CONN_BUF_KEEP (64 * 1024)
#define TICK_MS 1000
/* See close_idle_draining(). */
#define DRAIN_IDLE_MS 1000

struct worker {
	int epfd;
	int listen_fd; /* -1 once draining */
	const struct mk_config *config;
	struct mk_app *app;
	struct mk_conn *conns; /* doubly linked */
	unsigned nconns;
	unsigned max_conns;
	int accepting; /* listen fd is in the epoll set */
	struct mk_loop *loop;
	struct mk_peer_policy peers; /* who may connect (TCP) */
};

/*
 * The loop's descriptor's epoll data: neither NULL (listener) nor a connection.
 */
static char loop_marker;

static void
close_conn(struct worker *w, struct mk_conn *conn)
{
	(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
	close(conn->fd);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		w->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	mk_conn_free(conn);
	w->nconns--;
	mk_metrics_connections(-1);
}

static void
set_accepting(struct worker *w, int on)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
		.data.ptr = NULL };

	if (w->listen_fd < 0 || on == w->accepting)
		return;
	if (on) {
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &ev) == 0)
			w->accepting = 1;
		else
			mk_log(MK_LOG_ERROR, "epoll_ctl add listener: %s",
			    strerror(errno));
	} else {
		(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_fd, NULL);
		w->accepting = 0;
	}
}

/*
 * Writes what is queued. Returns 0 when the connection lives on, -1 when
 * it was closed.
 */
static int
flush_conn(struct worker *w, struct mk_conn *conn)
{
	struct epoll_event ev = { .data.ptr = conn };

	while (!mk_conn_flushed(conn)) {
		ssize_t n = write(conn->fd, conn->out.data + conn->out_sent,
		    conn->out.len - conn->out_sent);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/*
			 * The answer's progress, for reap_timeouts(): only a
			 * partly written answer needs it, so a whole write
			 * costs no clock read.
			 */
			conn->last_activity_ms = mk_clock_mono_ms();
			/* Not reading meanwhile: see OUT_HIGH_WATER. */
			ev.events = EPOLLOUT | EPOLLRDHUP;
			if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, conn->fd, &ev) !=
			    0) {
				close_conn(w, conn);
				return -1;
			}
			return 0;
		}
		if (n <= 0) {
			/*
			 * The front went away mid-answer: nothing to tell
			 * anyone.
			 */
			close_conn(w, conn);
			return -1;
		}
		conn->out_sent += (size_t)n;
	}
	if (conn->out.len > 0) {
		mk_buf_clear(&conn->out);
		mk_buf_shrink(&conn->out, CONN_BUF_KEEP);
		conn->out_sent = 0;
		ev.events = EPOLLIN | EPOLLRDHUP;
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, conn->fd, &ev) != 0) {
			close_conn(w, conn);
			return -1;
		}
	}
	if (conn->state == MK_CONN_CLOSING) {
		close_conn(w, conn);
		return -1;
	}
	return 0;
}

static void
read_conn(struct worker *w, struct mk_conn *conn)
{
	size_t total = 0;
	int peer_closed = 0;

	while (total < READ_BUDGET) {
		ssize_t n;

		if (!mk_buf_reserve(&conn->in, READ_CHUNK)) {
			mk_log(MK_LOG_ERROR,
			    "out of memory for a connection's input");
			close_conn(w, conn);
			return;
		}
		n = read(conn->fd, conn->in.data + conn->in.len,
		    conn->in.cap - conn->in.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			peer_closed = 1;
			break;
		}
		conn->in.len += (size_t)n;
		total += (size_t)n;
		/*
		 * Parse as we go so the buffer holds at most a record or two.
		 */
		if (mk_conn_process(conn, mk_clock_mono_ms()) != MK_OK) {
			mk_log(MK_LOG_WARN,
			    "FastCGI protocol error: closing connection");
			break;
		}
		if (conn->state == MK_CONN_CLOSING)
			break;
		if (conn->out.len - conn->out_sent > OUT_HIGH_WATER) {
			if (flush_conn(w, conn) != 0)
				return;
			if (!mk_conn_flushed(conn))
				/* resumed by EPOLLOUT once the peer reads */
				return;
		}
	}
	mk_buf_shrink(&conn->in, CONN_BUF_KEEP);
	if (flush_conn(w, conn) != 0)
		return;
	if (peer_closed)
		close_conn(w, conn);
}

static void
accept_conns(struct worker *w)
{
	for (int i = 0; i < ACCEPTS_PER_WAKEUP && w->nconns < w->max_conns;
	     i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		struct mk_conn *conn;
		int fd;

		fd = accept4(w->listen_fd, (struct sockaddr *)&peer, &peer_len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				mk_log(MK_LOG_ERROR, "accept: %s",
				    strerror(errno));
			break;
		}
		/*
		 * Not a front server: closed before a byte is read or written.
		 */
		if (!mk_listener_peer_admit(&w->peers, (struct sockaddr *)&peer,
			peer_len, mk_clock_mono_ms())) {
			close(fd);
			continue;
		}
		conn = mk_conn_new(
		    fd, mk_app_http(w->app), w->config->max_body, w->max_conns);
		if (conn == NULL) {
			mk_log(
			    MK_LOG_ERROR, "out of memory for a new connection");
			close(fd);
			break;
		}
		conn->last_activity_ms = mk_clock_mono_ms();
		ev.data.ptr = conn;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			mk_log(MK_LOG_ERROR, "epoll_ctl add connection: %s",
			    strerror(errno));
			close(fd);
			mk_conn_free(conn);
			break;
		}
		conn->next = w->conns;
		if (w->conns != NULL)
			w->conns->prev = conn;
		w->conns = conn;
		w->nconns++;
		mk_metrics_count(MK_COUNTER_CONNECTIONS_ACCEPTED);
		mk_metrics_connections(1);
	}
	if (w->nconns >= w->max_conns)
		set_accepting(w, 0);
}

/* Answers and writes out the requests that were woken. */
static void
resume_woken(struct worker *w)
{
	struct mk_conn *conn = w->conns, *next;

	for (; conn != NULL; conn = next) {
		next = conn->next;
		if (conn->state != MK_CONN_WAITING || !conn->woken)
			continue;
		mk_conn_resume(conn);
		if (flush_conn(w, conn) == 0 && mk_conn_flushed(conn) &&
		    conn->in.len > 0)
			read_conn(w, conn); /* what arrived while it waited */
	}
}

/*
 * Closes connections idle too long, requests that do not arrive whole
 * within request_timeout, and answers nobody reads for as long; answers
 * a request still waiting (MK_CONN_WAITING) then with a 503.
 *
 * An arriving request is timed from its first record, not from its last:
 * a peer that trickles a byte every few seconds is still arriving, and
 * would otherwise hold the connection (and its arena) for ever.
 */
static void
reap_timeouts(struct worker *w, int64_t now_ms)
{
	struct mk_conn *conn = w->conns, *next;

	for (; conn != NULL; conn = next) {
		next = conn->next;
		if (conn->state == MK_CONN_WAITING) {
			/*
			 * Received whole: it gets an answer, not a closed
			 * socket.
			 */
			if (now_ms - conn->request_started_ms >
			    w->config->request_timeout_ms) {
				mk_log(MK_LOG_WARN,
				    "request timed out while waiting: "
				    "answering 503");
				mk_conn_expire(
				    conn, "request_timeout while waiting");
				(void)flush_conn(w, conn);
			}
		} else if (conn->state == MK_CONN_IDLE &&
		    mk_conn_flushed(conn)) {
			if (now_ms - conn->last_activity_ms >
			    w->config->idle_timeout_ms)
				close_conn(w, conn);
		} else if (conn->state != MK_CONN_IDLE &&
		    conn->state != MK_CONN_CLOSING) {
			if (now_ms - conn->request_started_ms >
			    w->config->request_timeout_ms) {
				mk_log(MK_LOG_WARN,
				    "request did not arrive whole within "
				    "request_timeout "
				    "(%llu bytes of body so far): closing "
				    "connection",
				    (unsigned long long)conn->body.len);
				close_conn(w, conn);
			}
		} else if (now_ms - conn->last_activity_ms >
		    w->config->request_timeout_ms) {
			mk_log(MK_LOG_WARN,
			    "answer unread for request_timeout: closing "
			    "connection");
			close_conn(w, conn);
		}
	}
}

/*
 * Stops accepting. The connections stay open, answering whatever arrives
 * on them, until they have been idle for DRAIN_IDLE_MS (or the front
 * closes them, or the deadline comes): closing one right after an answer
 * races nginx, which may already have taken it from its cache and sent
 * the next request on it, and FastCGI has no way to tell nginx to stop
 * reusing a connection. nginx resends such a request on another
 * connection only for the methods it deems idempotent, so a POST would
 * fail. A connection nginx keeps busy is closed by nginx itself after
 * its upstream keepalive_requests (conf/nginx-markets.conf).
 */
static void
begin_drain(struct worker *w)
{
	set_accepting(w, 0);
	if (w->listen_fd >= 0) {
		close(w->listen_fd);
		w->listen_fd = -1;
	}
}

/*
 * While draining, closes the connections with no request that have been
 * idle for DRAIN_IDLE_MS. nginx takes the most recently used connection
 * from its cache first, so one idle that long is at the back of the
 * cache: nginx reaches it only when every newer one is busy.
 */
static void
close_idle_draining(struct worker *w, int64_t now_ms)
{
	struct mk_conn *conn = w->conns, *next;

	for (; conn != NULL; conn = next) {
		next = conn->next;
		if (!mk_conn_busy(conn) && conn->in.len == 0 &&
		    now_ms - conn->last_activity_ms >= DRAIN_IDLE_MS)
			close_conn(w, conn);
	}
}

static int
serve(struct worker *w, const sigset_t *wait_mask)
{
	struct epoll_event events[MAX_EVENTS];
	int64_t drain_deadline = 0, next_tick = mk_clock_mono_ms() + TICK_MS;
	int draining = 0;

	for (;;) {
		int64_t now = mk_clock_mono_ms();
		int n, timeout = (int)(next_tick > now ? next_tick - now : 0),
		       loop_ready = 0;

		if (mk_signals_pending(MK_SIGNAL_STOP) && !draining) {
			draining = 1;
			drain_deadline = now + w->config->shutdown_timeout_ms;
			begin_drain(w);
		}
		if (draining) {
			struct mk_conn *conn, *next;

			/*
			 * Requests on open connections are answered; idle
			 * connections close.
			 */
			close_idle_draining(w, now);
			if (w->nconns == 0)
				return 0;
			if (now >= drain_deadline) {
				mk_log(MK_LOG_WARN,
				    "shutdown timeout: dropping %u "
				    "connection(s)",
				    w->nconns);
				/*
				 * A waiting request still gets its 503, if the
				 * front reads it now.
				 */
				for (conn = w->conns; conn != NULL;
				     conn = next) {
					next = conn->next;
					if (conn->state == MK_CONN_WAITING) {
						mk_conn_expire(conn,
						    "the worker is stopping");
						(void)flush_conn(w, conn);
					}
				}
				return 0;
			}
			if (drain_deadline - now < timeout)
				timeout = (int)(drain_deadline - now);
			/* Idle connections are looked at again soon. */
			if (timeout > DRAIN_IDLE_MS / 10)
				timeout = DRAIN_IDLE_MS / 10;
		}
		{
			int64_t due = mk_loop_timeout(w->loop, now);

			if (due >= 0 && due < timeout)
				timeout = (int)due;
		}
		(void)mk_signals_reopen_log();
		n = epoll_pwait(
		    w->epfd, events, MAX_EVENTS, timeout, wait_mask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mk_log(
			    MK_LOG_ERROR, "epoll_pwait: %s", strerror(errno));
			return 1;
		}
		mk_signals_let_in(wait_mask);
		for (int i = 0; i < n; i++) {
			struct mk_conn *conn = events[i].data.ptr;

			if ((void *)conn == &loop_marker) {
				loop_ready = 1; /* run below, with the timers */
				continue;
			}
			if (conn == NULL) {
				if (w->accepting)
					accept_conns(w);
				continue;
			}
			if (events[i].events & EPOLLOUT) {
				if (flush_conn(w, conn) != 0 ||
				    !mk_conn_flushed(conn))
					continue;
				/*
				 * Drained: take up the input left waiting, if
				 * any.
				 */
				read_conn(w, conn);
				continue;
			}
			if (events[i].events &
			    (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				read_conn(w, conn);
		}
		now = mk_clock_mono_ms();
		if (loop_ready || mk_loop_timeout(w->loop, now) == 0) {
			mk_loop_run(w->loop, now);
			resume_woken(w);
		}
		if (now >= next_tick) {
			reap_timeouts(w, now);
			if (!draining)
				mk_app_tick(w->app, now);
			next_tick = now + TICK_MS;
		}
		if (!draining && !w->accepting && w->nconns < w->max_conns)
			set_accepting(w, 1);
	}
}

/*
 * Tells the master that this worker accepts: its pid, one write (atomic
 * on a pipe), on ready_fd, which is then closed.
 */
static void
report_accepting(int ready_fd)
{
	pid_t pid = getpid();

	if (ready_fd < 0)
		return;
	if (write(ready_fd, &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
		mk_log(MK_LOG_WARN, "cannot tell the master it accepts: %s",
		    strerror(errno));
	close(ready_fd);
}

int
mk_worker_run(int listen_fd, const struct mk_config *config, int under_master,
    int ready_fd)
{
	struct worker w = {
		.epfd = -1, .listen_fd = listen_fd, .config = config
	};
	sigset_t wait_mask;
	int status = 1;

	if (mk_child_setup(MK_CHILD_WORKER, under_master, &wait_mask) != 0)
		return 1;
	/* /metrics says which process answered, and whose counts they are. */
	mk_metrics_process(
	    under_master ? MK_PROCESS_MASTER_WORKER : MK_PROCESS_FCGID);
	w.max_conns = (unsigned)config->worker_connections;
	{
		char err[512];

		/* Checked by the master already; under mod_fcgid, only here. */
		if (mk_listener_peer_policy(
			listen_fd, config, &w.peers, err, sizeof(err)) != 0) {
			mk_log(MK_LOG_ERROR, "worker start-up failed: %s", err);
			return 1;
		}
	}
	w.loop = mk_loop_new();
	if (w.loop == NULL) {
		mk_log(MK_LOG_ERROR, "cannot make the worker's loop: %s",
		    strerror(errno));
		return 1;
	}
	w.app = mk_app_new(config);
	if (w.app == NULL) {
		mk_log(MK_LOG_ERROR, "worker start-up failed");
		mk_loop_free(w.loop);
		return 1;
	}
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.epfd < 0) {
		mk_log(MK_LOG_ERROR, "epoll_create1: %s", strerror(errno));
		goto out;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN,
			.data.ptr = &loop_marker };

		if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, mk_loop_fd(w.loop), &ev) !=
		    0) {
			mk_log(MK_LOG_ERROR, "epoll_ctl add loop: %s",
			    strerror(errno));
			goto out;
		}
	}
	if (mk_app_attach_loop(w.app, w.loop) != 0)
		goto out;
	set_accepting(&w, 1);
	if (!w.accepting)
		goto out;
	report_accepting(ready_fd);
	ready_fd = -1;
	status = serve(&w, &wait_mask);
out:
	if (ready_fd >= 0)
		close(ready_fd);
	while (w.conns != NULL)
		close_conn(&w, w.conns);
	if (w.listen_fd >= 0)
		close(w.listen_fd);
	if (w.epfd >= 0)
		close(w.epfd);
	mk_app_free(w.app);
	mk_loop_free(w.loop);
	return status;
}
