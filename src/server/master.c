/*
 * The master (server layer), after nginx's ngx_process_cycle.c: signal
 * handlers only set flags; one loop waits for a signal or a timer with
 * ppoll(), then reaps, respawns, reloads or stops.
 *
 *  SIGCHLD         reap; a worker of the current generation that died is
 *                  replaced, after a back-off when workers die young
 *  SIGHUP          re-read the configuration; on success fork a new
 *                  generation and ask the old one to drain (SIGTERM); on
 *                  failure log why and keep the old one
 *  SIGUSR2         binary upgrade (upgrade.h): run the binary again on
 *                  the same socket; once the new master's workers accept,
 *                  drain this one as on SIGTERM and exit, leaving the
 *                  socket and the pid file (rewritten by the new master)
 *                  to it; should it fail, log why and serve on
 *  SIGTERM/INT/QUIT  forward SIGTERM, wait up to shutdown_timeout, then
 *                  SIGKILL stragglers; remove the socket (unless a
 *                  service manager passed it in, or it is still the old
 *                  master's) and the pid file
 *  SIGUSR1         reopen the log, and have the workers do the same
 *
 * Each worker says on a pipe when it accepts; once every worker of the
 * current generation has, the master tells the service manager
 * (systemd.h: READY=1, and RELOADING=1 and STOPPING=1 around a reload and
 * a stop) or, started by a binary upgrade, the old master.
 *
 * The signals' flags are core/signals.h's. The master owns the
 * configuration, the listening socket, the workers' pipe and the table of
 * children (FastCGI workers and job runners); it forks them through
 * child.h, and they get copies of all, which they free before they exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/signals.h"
#include "server/child.h"
#include "server/listen_queue.h"
#include "server/listener.h"
#include "server/master.h"
#include "server/systemd.h"
#include "server/upgrade.h"
#include "server/worker.h"
#include "store/db.h"

/* A worker that dies sooner than this after start counts as a failed start. */
#define YOUNG_DEATH_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define MAX_SLOTS 512
/* A new binary whose workers do not all accept by then is given up. */
#define UPGRADE_TIMEOUT_MS 60000
/* "unix:" and a sun_path, or an address and port. */
#define LISTEN_NAME_MAX 160

struct worker_slot {
	pid_t pid;      /* 0: free */
	bool runner;    /* a job runner, not a FastCGI worker */
	bool accepting; /* the worker said it accepts */
	unsigned generation;
	int64_t started_ms;
};

struct master {
	const struct mk_master_options *options;
	struct mk_config *config;
	int listen_fd;
	char listen_name[LISTEN_NAME_MAX]; /* as a --listen spec */
	bool owns_socket_file;             /* removed at stop */
	int ready_pipe[2]; /* workers write their pid once they accept */
	unsigned generation;
	unsigned announced; /* the generation last announced ready, plus 1 */
	struct worker_slot slots[MAX_SLOTS];
	unsigned young_deaths; /* consecutive; drives the back-off */
	int64_t next_spawn_ms; /* no spawning before this */
	unsigned long restarts;
	pid_t upgrade_pid; /* a new master that does not serve yet; 0: none */
	int upgrade_fd;    /* its pipe's read end, or -1 */
	int64_t upgrade_deadline_ms;
	bool handed_over; /* the new master serves: drain and leave */
	int parent_fd;    /* started by an upgrade: the old master's pipe */
	int exit_status;
	sigset_t wait_mask;
	int64_t next_status_ms; /* the next look at the listen queue */
	bool queue_unknown;     /* the kernel would not say: warned once */
};

/* Live processes of the current generation: job runners, or workers. */
static unsigned
count_current(const struct master *m, bool runners)
{
	unsigned n = 0;

	for (int i = 0; i < MAX_SLOTS; i++)
		n += m->slots[i].pid != 0 &&
		    m->slots[i].generation == m->generation &&
		    m->slots[i].runner == runners;
	return n;
}

/* Job runners wanted: job_runners, when there is a database to run them on. */
static unsigned
runners_wanted(const struct master *m)
{
	return mk_db_configured(m->config) ? (unsigned)m->config->job_runners
					   : 0;
}

static unsigned
count_all(const struct master *m)
{
	unsigned n = 0;

	for (int i = 0; i < MAX_SLOTS; i++)
		n += m->slots[i].pid != 0;
	return n;
}

static void
signal_workers(struct master *m, int sig, int only_old)
{
	for (int i = 0; i < MAX_SLOTS; i++) {
		/* Never 0 or -1: kill() would reach the group, or everyone. */
		if (m->slots[i].pid <= 0)
			continue;
		if (only_old && m->slots[i].generation == m->generation)
			continue;
		(void)kill(m->slots[i].pid, sig);
	}
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * The master's pipes, in a child: not its to read, nor to keep open (a
 * pipe's reader sees its end only once every copy of the writer is shut).
 */
static void
close_master_pipes(struct master *m)
{
	close_fd(&m->ready_pipe[0]);
	close_fd(&m->upgrade_fd);
	close_fd(&m->parent_fd);
}

/* A child's bodies, and what it frees of the master's before it exits. */
static int
run_worker(void *arg)
{
	struct master *m = arg;

	close_master_pipes(m);
	return mk_worker_run(m->listen_fd, m->config, 1, m->ready_pipe[1]);
}

static int
run_runner(void *arg)
{
	struct master *m = arg;

	close_master_pipes(m);
	close_fd(&m->ready_pipe[1]);
	/* A runner serves no requests: the socket is the workers'. */
	close(m->listen_fd);
	return mk_child_run_jobs(m->config, true);
}

static void
release_master(void *arg)
{
	struct master *m = arg;

	mk_config_free(m->config);
	free(m);
}

static int
spawn_one(struct master *m, bool runner)
{
	struct worker_slot *slot = NULL;
	struct mk_child child = {
		.run = runner ? run_runner : run_worker,
		.release = release_master,
		.arg = m,
	};
	pid_t pid;

	for (int i = 0; i < MAX_SLOTS && slot == NULL; i++) {
		if (m->slots[i].pid == 0)
			slot = &m->slots[i];
	}
	if (slot == NULL)
		return -1;
	child.slot = (unsigned)(slot - m->slots);
	if ((pid = mk_child_spawn(&child)) < 0)
		return -1;
	slot->pid = pid;
	slot->runner = runner;
	slot->accepting = false;
	slot->generation = m->generation;
	slot->started_ms = mk_clock_mono_ms();
	return 0;
}

/*
 * Starts workers until the current generation is complete, unless backing off.
 */
static void
spawn_missing(struct master *m)
{
	unsigned want = (unsigned)mk_config_worker_count(m->config);

	if (mk_clock_mono_ms() < m->next_spawn_ms)
		return;
	while (count_current(m, false) < want ||
	    count_current(m, true) < runners_wanted(m)) {
		if (spawn_one(m, count_current(m, false) >= want) != 0) {
			m->next_spawn_ms = mk_clock_mono_ms() + BACKOFF_MAX_MS;
			return;
		}
	}
}

/*
 * Tells the service manager (systemd.h) the master's state, printf-style;
 * a new master says nothing until it has taken over from the old one,
 * which speaks for the service until then.
 */
static void notify(const struct master *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
notify(const struct master *m, const char *fmt, ...)
{
	char state[512];
	va_list ap;
	int len;

	if (m->handed_over || m->parent_fd >= 0)
		return;
	va_start(ap, fmt);
	len = vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(state) ||
	    mk_systemd_notify(state) < 0)
		mk_log(MK_LOG_WARN, "cannot notify the service manager: %s",
		    len < 0 || (size_t)len >= sizeof(state) ? "state too long"
							    : strerror(errno));
}

/* A new master that ended before it served: the upgrade failed. */
static void
upgrade_ended(struct master *m, int status)
{
	m->upgrade_pid = 0;
	close_fd(&m->upgrade_fd);
	if (WIFSIGNALED(status))
		mk_log(MK_LOG_ERROR,
		    "binary upgrade failed: the new master died by signal %d "
		    "before its workers accepted; serving on",
		    WTERMSIG(status));
	else
		mk_log(MK_LOG_ERROR,
		    "binary upgrade failed: the new master exited with status "
		    "%d before its workers accepted (its reason is logged "
		    "before this line, or on stderr); serving on",
		    WEXITSTATUS(status));
	notify(m, "READY=1\nSTATUS=binary upgrade failed; serving on");
}

static void
reap(struct master *m, int stopping)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker_slot *slot = NULL;
		int64_t lived;

		if (pid == m->upgrade_pid) {
			if (!m->handed_over)
				upgrade_ended(m, status);
			continue;
		}
		for (int i = 0; i < MAX_SLOTS && slot == NULL; i++) {
			if (m->slots[i].pid == pid)
				slot = &m->slots[i];
		}
		if (slot == NULL)
			continue;
		lived = mk_clock_mono_ms() - slot->started_ms;
		slot->pid = 0;
		mk_metrics_slot_reset((unsigned)(slot - m->slots));
		if (slot->generation != m->generation || stopping) {
			if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
				mk_log(MK_LOG_WARN,
				    "worker %ld ended by signal %d while "
				    "draining",
				    (long)pid, WTERMSIG(status));
			continue;
		}
		if (WIFSIGNALED(status))
			mk_log(MK_LOG_ERROR,
			    "%s %ld died by signal %d; replacing it",
			    slot->runner ? "job runner" : "worker", (long)pid,
			    WTERMSIG(status));
		else
			mk_log(MK_LOG_ERROR,
			    "%s %ld exited with status %d; replacing it",
			    slot->runner ? "job runner" : "worker", (long)pid,
			    WEXITSTATUS(status));
		m->restarts++;
		mk_metrics_count(MK_COUNTER_WORKER_RESTARTS);
		if (lived < YOUNG_DEATH_MS) {
			int64_t delay = BACKOFF_MIN_MS;

			for (unsigned i = 0;
			     i < m->young_deaths && delay < BACKOFF_MAX_MS; i++)
				delay *= 2;
			if (delay > BACKOFF_MAX_MS)
				delay = BACKOFF_MAX_MS;
			m->young_deaths++;
			m->next_spawn_ms = mk_clock_mono_ms() + delay;
			mk_log(MK_LOG_WARN,
			    "workers are dying at start: next spawn in %lld ms",
			    (long long)delay);
		} else {
			m->young_deaths = 0;
		}
	}
}

/*
 * Whether config gives the listening socket a peer policy (a TCP listener
 * on a non-loopback address needs an allow list): checked here, before
 * any worker, so that a bad one stops the start or the reload.
 */
static int
check_peers(const struct master *m, const struct mk_config *config, char *err,
    size_t errlen)
{
	struct mk_peer_policy policy;

	return mk_listener_peer_policy(
	    m->listen_fd, config, &policy, err, errlen);
}

/*
 * Tells the service manager that a reload began; READY=1 ends it, sent
 * by announce_ready() or, when nothing changed, by reload_refused().
 */
static void
notify_reloading(const struct master *m)
{
	notify(m, "RELOADING=1\nMONOTONIC_USEC=%lld",
	    (long long)mk_clock_mono_ms() * 1000);
}

static void
reload_refused(const struct master *m)
{
	notify(m,
	    "READY=1\nSTATUS=reload refused; serving on the running "
	    "configuration");
}

static void
reload(struct master *m)
{
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *fresh;

	notify_reloading(m);
	if (mk_config_load_environ(m->options->config_paths,
		m->options->nconfig_paths, mk_app_check_config, &fresh, err,
		sizeof(err)) != MK_OK) {
		mk_log(MK_LOG_ERROR,
		    "reload refused, keeping the running configuration: %s",
		    err);
		reload_refused(m);
		return;
	}
	if (check_peers(m, fresh, err, sizeof(err)) != 0) {
		mk_log(MK_LOG_ERROR,
		    "reload refused, keeping the running configuration: %s",
		    err);
		mk_config_free(fresh);
		reload_refused(m);
		return;
	}
	if (mk_log_open(fresh->log_file, fresh->log_level) != 0) {
		mk_log(MK_LOG_ERROR, "reload refused: cannot open log %s: %s",
		    fresh->log_file, strerror(errno));
		mk_config_free(fresh);
		reload_refused(m);
		return;
	}
	mk_config_free(m->config);
	m->config = fresh;
	m->generation++;
	m->young_deaths = 0;
	m->next_spawn_ms = 0;
	spawn_missing(m);
	signal_workers(m, SIGTERM, 1);
	mk_log(MK_LOG_INFO,
	    "configuration reloaded: generation %u with %d workers",
	    m->generation, mk_config_worker_count(m->config));
}

static int
write_pid_file(const char *path)
{
	char text[32];
	int fd, len, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	ok = len > 0 && write(fd, text, (size_t)len) == len;
	if (close(fd) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

#define STATUS_EVERY_MS 1000

/*
 * The gauges only the master can fill (core/metrics.h): the live workers
 * of every generation, and each second the listen queue, which only the
 * master can watch while every worker is busy. Returns the ms until the
 * next look.
 */
static int64_t
publish_status(struct master *m)
{
	int64_t now = mk_clock_mono_ms();
	unsigned workers = 0, queued, limit;

	for (int i = 0; i < MAX_SLOTS; i++)
		workers += m->slots[i].pid != 0 && !m->slots[i].runner;
	mk_metrics_gauge_set(MK_GAUGE_WORKERS, workers);
	if (now < m->next_status_ms)
		return m->next_status_ms - now;
	m->next_status_ms = now + STATUS_EVERY_MS;
	if (m->listen_fd >= 0 &&
	    mk_listen_queue(m->listen_fd, &queued, &limit) == 0) {
		mk_metrics_gauge_set(MK_GAUGE_LISTEN_QUEUE, queued);
		mk_metrics_gauge_raise(MK_GAUGE_LISTEN_QUEUE_MAX, queued);
		mk_metrics_gauge_set(MK_GAUGE_LISTEN_QUEUE_LIMIT, limit);
	} else if (m->listen_fd >= 0 && !m->queue_unknown) {
		m->queue_unknown = true;
		mk_log(MK_LOG_WARN,
		    "cannot read the listen queue (%s): its metrics stay 0",
		    strerror(errno));
	}
	return STATUS_EVERY_MS;
}

/* Records the workers that said they accept (their pids, on the pipe). */
static void
take_ready_reports(struct master *m)
{
	pid_t pids[64];
	ssize_t n;

	/* Writes of one pid are atomic: the pipe holds whole records. */
	while ((n = read(m->ready_pipe[0], pids, sizeof(pids))) > 0) {
		for (size_t k = 0; k < (size_t)n / sizeof(pids[0]); k++) {
			for (int i = 0; i < MAX_SLOTS; i++) {
				if (m->slots[i].pid == pids[k])
					m->slots[i].accepting = true;
			}
		}
	}
}

static unsigned
count_accepting(const struct master *m)
{
	unsigned n = 0;

	for (int i = 0; i < MAX_SLOTS; i++)
		n += m->slots[i].pid != 0 && !m->slots[i].runner &&
		    m->slots[i].accepting &&
		    m->slots[i].generation == m->generation;
	return n;
}

/*
 * Once every worker of the current generation accepts, says so, once a
 * generation: to the old master when a binary upgrade started this one
 * (after the pid file names this master), else to the service manager.
 */
static void
announce_ready(struct master *m)
{
	unsigned want = (unsigned)mk_config_worker_count(m->config);

	if (m->announced == m->generation + 1 || count_accepting(m) < want)
		return;
	m->announced = m->generation + 1;
	if (m->parent_fd >= 0) {
		if (m->options->pid_file != NULL &&
		    write_pid_file(m->options->pid_file) != 0) {
			mk_log(MK_LOG_ERROR,
			    "binary upgrade: cannot write pid file %s: %s; "
			    "stopping, the old master serves on",
			    m->options->pid_file, strerror(errno));
			m->exit_status = 1;
			return;
		}
		if (mk_upgrade_report_ready(m->parent_fd) != 0)
			mk_log(MK_LOG_WARN,
			    "binary upgrade: cannot tell the old master: %s",
			    strerror(errno));
		m->parent_fd = -1;
		mk_log(MK_LOG_INFO,
		    "binary upgrade: %u workers accept; the old master drains",
		    want);
		return;
	}
	notify(m,
	    "READY=1\nMAINPID=%ld\nSTATUS=generation %u: %u workers accept",
	    (long)getpid(), m->generation, want);
}

/* SIGUSR2: starts the binary again on the socket (upgrade.h). */
static void
start_upgrade(struct master *m)
{
	if (m->upgrade_pid > 0) {
		mk_log(MK_LOG_WARN,
		    "binary upgrade already under way (new master %ld)",
		    (long)m->upgrade_pid);
		return;
	}
	if (m->parent_fd >= 0 || m->options->argv == NULL) {
		mk_log(MK_LOG_WARN,
		    "binary upgrade refused: this master does not serve yet");
		return;
	}
	notify_reloading(m);
	m->upgrade_pid = mk_upgrade_spawn(m->options->argv, m->listen_fd,
	    m->owns_socket_file, &m->upgrade_fd);
	if (m->upgrade_pid < 0) {
		m->upgrade_pid = 0;
		notify(m, "READY=1");
		return;
	}
	m->upgrade_deadline_ms = mk_clock_mono_ms() + UPGRADE_TIMEOUT_MS;
	mk_log(MK_LOG_INFO,
	    "binary upgrade: started %s as pid %ld; serving until its "
	    "workers accept",
	    m->options->argv[0], (long)m->upgrade_pid);
}

/*
 * Hands over once the new master said it is ready: the service manager
 * learns its pid, and this master's loop ends. A new master that takes
 * too long is stopped; reap() logs its end.
 */
static void
check_upgrade(struct master *m)
{
	int ready;

	if (m->upgrade_fd < 0)
		return;
	ready = mk_upgrade_check_ready(m->upgrade_fd);
	if (ready == 1) {
		close_fd(&m->upgrade_fd);
		mk_log(MK_LOG_INFO,
		    "binary upgrade: new master %ld serves; draining this one",
		    (long)m->upgrade_pid);
		notify(m, "MAINPID=%ld\nREADY=1\nSTATUS=binary upgrade done",
		    (long)m->upgrade_pid);
		m->handed_over = true;
	} else if (ready < 0) {
		/* It is exiting: reap() says how. */
		close_fd(&m->upgrade_fd);
	} else if (mk_clock_mono_ms() >= m->upgrade_deadline_ms) {
		mk_log(MK_LOG_ERROR,
		    "binary upgrade: the new master's workers do not all "
		    "accept after %d s; stopping it",
		    UPGRADE_TIMEOUT_MS / 1000);
		close_fd(&m->upgrade_fd);
		(void)kill(m->upgrade_pid, SIGTERM);
	}
}

/* Whether a signal came while the loop was busy: it is seen to first. */
static bool
signalled(void)
{
	for (int i = 0; i < MK_SIGNAL__MAX; i++) {
		if (mk_signals_pending((enum mk_signal)i))
			return true;
	}
	return false;
}

/*
 * Waits for a signal, a word on the pipes or timeout_ms (-1: forever)
 * with the signals let in.
 */
static void
wait_event(struct master *m, int64_t timeout_ms)
{
	struct pollfd fds[2] = {
		{ .fd = m->ready_pipe[0], .events = POLLIN },
		{ .fd = m->upgrade_fd, .events = POLLIN },
	};
	struct timespec ts, *tsp = NULL;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	/* A negative fd is skipped by ppoll(). */
	(void)ppoll(fds, 2, tsp, &m->wait_mask);
}

/*
 * Whether to remove the socket file when this master stops: when it made
 * it (or the master it took over from did), unless it handed the socket
 * over, or it is a new master that never took over: the file is then
 * another master's.
 */
static bool
socket_file_ours(const struct master *m)
{
	return m->owns_socket_file && !m->handed_over && m->parent_fd < 0;
}

/* Children still to wait for: workers, runners, a new master not serving. */
static bool
children_left(const struct master *m)
{
	return count_all(m) > 0 || (m->upgrade_pid > 0 && !m->handed_over);
}

static void
stop(struct master *m)
{
	int64_t deadline =
	    mk_clock_mono_ms() + m->config->shutdown_timeout_ms + 1000;

	mk_log(MK_LOG_INFO, "stopping: draining %u worker(s)", count_all(m));
	notify(m, "STOPPING=1");
	/*
	 * Refuse new connections at once (the front fails over or answers 502
	 * now) instead of letting them queue in a backlog nobody will accept;
	 * unless the socket is the new master's, or the service manager's,
	 * which keeps it for the next start.
	 */
	close(m->listen_fd);
	m->listen_fd = -1;
	if (socket_file_ours(m))
		mk_listener_unlink(m->listen_name);
	signal_workers(m, SIGTERM, 0);
	if (m->upgrade_pid > 0 && !m->handed_over)
		(void)kill(m->upgrade_pid, SIGTERM);
	while (children_left(m)) {
		int64_t left = deadline - mk_clock_mono_ms();

		if (left <= 0) {
			mk_log(MK_LOG_WARN,
			    "workers still busy after the shutdown timeout: "
			    "killing them");
			signal_workers(m, SIGKILL, 0);
			if (m->upgrade_pid > 0 && !m->handed_over)
				(void)kill(m->upgrade_pid, SIGKILL);
			deadline = mk_clock_mono_ms() + 5000;
			left = 5000;
		}
		(void)mk_signals_take(MK_SIGNAL_CHILD);
		reap(m, 1);
		take_ready_reports(m);
		if (!children_left(m))
			break;
		wait_event(m, left < 100 ? left : 100);
	}
}

int
mk_master_run(const struct mk_master_options *options, struct mk_config *config)
{
	struct master *m;
	char err[256];

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		mk_config_free(config);
		return 1;
	}
	m->options = options;
	m->config = config;
	m->listen_fd = -1;
	m->ready_pipe[0] = m->ready_pipe[1] = -1;
	m->upgrade_fd = -1;
	m->parent_fd = options->inherited.ready_fd;
	mk_log_set_role("master");
	if (mk_signals_install(true, &m->wait_mask) != 0 ||
	    pipe2(m->ready_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		mk_log(MK_LOG_ERROR, "cannot set up the master: %s",
		    strerror(errno));
		m->exit_status = 1;
		goto out;
	}
	m->listen_fd = mk_listener_obtain(
	    &(struct mk_listen_source){
		.passed_fd = options->inherited.listen_fd,
		.passed_owned = options->inherited.owned,
		.spec = options->listen_spec,
		.socket_mode = config->socket_mode,
	    },
	    m->listen_name, sizeof(m->listen_name), &m->owns_socket_file, err,
	    sizeof(err));
	if (m->listen_fd < 0 || check_peers(m, config, err, sizeof(err)) != 0) {
		mk_log(MK_LOG_ERROR, "%s", err);
		m->exit_status = 1;
		goto out;
	}
	/* Started by an upgrade: written once the workers accept. */
	if (options->pid_file != NULL && m->parent_fd < 0 &&
	    write_pid_file(options->pid_file) != 0) {
		mk_log(MK_LOG_ERROR, "cannot write pid file %s: %s",
		    options->pid_file, strerror(errno));
		m->exit_status = 1;
		goto out;
	}
	mk_log(MK_LOG_INFO, "listening on %s%s with %d workers", m->listen_name,
	    options->inherited.listen_fd >= 0 ? " (passed in)" : "",
	    mk_config_worker_count(config));
	/* Before the first fork: every worker inherits the shared counters. */
	if (mk_metrics_setup() != 0)
		mk_log(MK_LOG_WARN,
		    "metrics: no shared memory (%s); /metrics shows one "
		    "worker's counts",
		    strerror(errno));
	spawn_missing(m);
	while (!mk_signals_pending(MK_SIGNAL_STOP) && !m->handed_over &&
	    m->exit_status == 0) {
		int64_t timeout = -1, status_in;

		if (mk_signals_take(MK_SIGNAL_CHILD))
			reap(m, 0);
		if (mk_signals_take(MK_SIGNAL_RELOAD))
			reload(m);
		if (mk_signals_take(MK_SIGNAL_UPGRADE))
			start_upgrade(m);
		if (mk_signals_reopen_log())
			signal_workers(m, SIGUSR1, 0);
		take_ready_reports(m);
		announce_ready(m);
		check_upgrade(m);
		if (m->handed_over || m->exit_status != 0)
			break;
		spawn_missing(m);
		if (count_current(m, false) <
			(unsigned)mk_config_worker_count(m->config) ||
		    count_current(m, true) < runners_wanted(m)) {
			timeout = m->next_spawn_ms - mk_clock_mono_ms();
			if (timeout < 0)
				timeout = 0;
		}
		status_in = publish_status(m);
		if (timeout < 0 || timeout > status_in)
			timeout = status_in;
		if (m->upgrade_fd >= 0) {
			int64_t left =
			    m->upgrade_deadline_ms - mk_clock_mono_ms();

			if (left < 0)
				left = 0;
			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		if (signalled())
			continue;
		wait_event(m, timeout);
	}
	stop(m);
	mk_log(MK_LOG_INFO, "stopped");
out:
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		if (socket_file_ours(m))
			mk_listener_unlink(m->listen_name);
	}
	/* After a hand-over the file names the new master. */
	if (options->pid_file != NULL && m->exit_status == 0 && !m->handed_over)
		(void)unlink(options->pid_file);
	close_fd(&m->ready_pipe[0]);
	close_fd(&m->ready_pipe[1]);
	close_fd(&m->upgrade_fd);
	close_fd(&m->parent_fd);
	{
		int status = m->exit_status;

		mk_config_free(m->config);
		free(m);
		return status;
	}
}
