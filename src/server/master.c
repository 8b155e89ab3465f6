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
 *  SIGTERM/INT/QUIT  forward SIGTERM, wait up to shutdown_timeout, then
 *                  SIGKILL stragglers; remove the socket and pid file
 *  SIGUSR1         reopen the log, and have the workers do the same
 *
 * The signals' flags are core/signals.h's. The master owns the
 * configuration, the listening socket and the table of children (FastCGI
 * workers and job runners); it forks them through child.h, and they get
 * copies of all three, which they free before they exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include "server/worker.h"
#include "store/db.h"

/* A worker that dies sooner than this after start counts as a failed start. */
#define YOUNG_DEATH_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define MAX_SLOTS 512

struct worker_slot {
	pid_t pid;   /* 0: free */
	bool runner; /* a job runner, not a FastCGI worker */
	unsigned generation;
	int64_t started_ms;
};

struct master {
	const struct mk_master_options *options;
	struct mk_config *config;
	int listen_fd;
	unsigned generation;
	struct worker_slot slots[MAX_SLOTS];
	unsigned young_deaths; /* consecutive; drives the back-off */
	int64_t next_spawn_ms; /* no spawning before this */
	unsigned long restarts;
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

/* A child's bodies, and what it frees of the master's before it exits. */
static int
run_worker(void *arg)
{
	struct master *m = arg;

	return mk_worker_run(m->listen_fd, m->config, 1);
}

static int
run_runner(void *arg)
{
	struct master *m = arg;

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

static void
reap(struct master *m, int stopping)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker_slot *slot = NULL;
		int64_t lived;

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

static void
reload(struct master *m)
{
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *fresh;

	if (mk_config_load_environ(m->options->config_paths,
		m->options->nconfig_paths, mk_app_check_config, &fresh, err,
		sizeof(err)) != MK_OK) {
		mk_log(MK_LOG_ERROR,
		    "reload refused, keeping the running configuration: %s",
		    err);
		return;
	}
	if (check_peers(m, fresh, err, sizeof(err)) != 0) {
		mk_log(MK_LOG_ERROR,
		    "reload refused, keeping the running configuration: %s",
		    err);
		mk_config_free(fresh);
		return;
	}
	if (mk_log_open(fresh->log_file, fresh->log_level) != 0) {
		mk_log(MK_LOG_ERROR, "reload refused: cannot open log %s: %s",
		    fresh->log_file, strerror(errno));
		mk_config_free(fresh);
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

/* Waits for a signal or timeout_ms (-1: forever) with the signals let in. */
static void
wait_event(struct master *m, int64_t timeout_ms)
{
	struct timespec ts, *tsp = NULL;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	(void)ppoll(NULL, 0, tsp, &m->wait_mask);
}

static void
stop(struct master *m)
{
	int64_t deadline =
	    mk_clock_mono_ms() + m->config->shutdown_timeout_ms + 1000;

	mk_log(MK_LOG_INFO, "stopping: draining %u worker(s)", count_all(m));
	/*
	 * Refuse new connections at once (the front fails over or answers 502
	 * now) instead of letting them queue in a backlog nobody will accept.
	 */
	close(m->listen_fd);
	m->listen_fd = -1;
	mk_listener_unlink(m->options->listen_spec);
	signal_workers(m, SIGTERM, 0);
	while (count_all(m) > 0) {
		int64_t left = deadline - mk_clock_mono_ms();

		if (left <= 0) {
			mk_log(MK_LOG_WARN,
			    "workers still busy after the shutdown timeout: "
			    "killing them");
			signal_workers(m, SIGKILL, 0);
			deadline = mk_clock_mono_ms() + 5000;
			left = 5000;
		}
		(void)mk_signals_take(MK_SIGNAL_CHILD);
		reap(m, 1);
		if (count_all(m) == 0)
			break;
		wait_event(m, left < 100 ? left : 100);
	}
}

int
mk_master_run(const struct mk_master_options *options, struct mk_config *config)
{
	struct master *m;
	char err[256];
	int status = 0;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		mk_config_free(config);
		return 1;
	}
	m->options = options;
	m->config = config;
	m->listen_fd = -1;
	mk_log_set_role("master");
	if (mk_signals_install(true, &m->wait_mask) != 0) {
		mk_log(MK_LOG_ERROR, "cannot install signal handlers: %s",
		    strerror(errno));
		status = 1;
		goto out;
	}
	m->listen_fd = mk_listener_open(
	    options->listen_spec, config->socket_mode, err, sizeof(err));
	if (m->listen_fd < 0 || check_peers(m, config, err, sizeof(err)) != 0) {
		mk_log(MK_LOG_ERROR, "%s", err);
		status = 1;
		goto out;
	}
	if (options->pid_file != NULL &&
	    write_pid_file(options->pid_file) != 0) {
		mk_log(MK_LOG_ERROR, "cannot write pid file %s: %s",
		    options->pid_file, strerror(errno));
		status = 1;
		goto out;
	}
	mk_log(MK_LOG_INFO, "listening on %s with %d workers",
	    options->listen_spec, mk_config_worker_count(config));
	/* Before the first fork: every worker inherits the shared counters. */
	if (mk_metrics_setup() != 0)
		mk_log(MK_LOG_WARN,
		    "metrics: no shared memory (%s); /metrics shows one "
		    "worker's counts",
		    strerror(errno));
	spawn_missing(m);
	while (!mk_signals_pending(MK_SIGNAL_STOP)) {
		int64_t timeout = -1, status_in;

		if (mk_signals_take(MK_SIGNAL_CHILD))
			reap(m, 0);
		if (mk_signals_take(MK_SIGNAL_RELOAD))
			reload(m);
		if (mk_signals_reopen_log())
			signal_workers(m, SIGUSR1, 0);
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
		if (signalled())
			continue;
		wait_event(m, timeout);
	}
	stop(m);
	mk_log(MK_LOG_INFO, "stopped");
out:
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		mk_listener_unlink(options->listen_spec);
	}
	if (options->pid_file != NULL && status == 0)
		(void)unlink(options->pid_file);
	mk_config_free(m->config);
	free(m);
	return status;
}
