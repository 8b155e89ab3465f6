/*
 * A child process of the server (server layer): what a FastCGI worker
 * and a job runner share as processes — how the master forks one (its
 * share of the metrics, its exit path), how one sets itself up (log
 * role, process name, signal flags from core/signals.h, death with the
 * master), and the job runner's whole body. The worker's body is
 * worker.c's; the master (master.c) keeps the table of children.
 */
#ifndef MK_SERVER_CHILD_H
#define MK_SERVER_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct mk_config;

enum mk_child_kind {
	MK_CHILD_WORKER, /* serves FastCGI connections (worker.h) */
	MK_CHILD_RUNNER, /* runs jobs (mk_child_run_jobs) */
	MK_CHILD__MAX
};

/* A child to fork: what it runs, and what it inherited to free. */
struct mk_child {
	unsigned slot;         /* its shard of the metrics (core/metrics.h) */
	int (*run)(void *arg); /* its body; returns its exit status */
	void (*release)(void *arg); /* frees the parent's memory it inherited */
	void *arg;
};

/*
 * Forks child. The child counts into its metrics slot, runs its body,
 * frees what it inherited (so that LeakSanitizer checks children too),
 * closes the log and exits with the body's status; it never returns.
 * Returns the child's pid to the parent, or -1 (logged).
 */
pid_t mk_child_spawn(const struct mk_child *child);

/*
 * Sets this process up as a child of kind: its log role, its name in ps
 * (a runner is told apart from the workers), its signal flags, and, with
 * under_master, its death with the master (a child that finds the master
 * gone already fails). wait_mask as for mk_signals_install(): a worker
 * waits for signals in epoll_pwait; NULL takes them at any time (a
 * runner's pause). Returns 0, or -1 (logged unless the master is gone).
 */
int mk_child_setup(
    enum mk_child_kind kind, bool under_master, sigset_t *wait_mask);

/*
 * A job runner's body: sets itself up, then runs the application's jobs
 * (app.h) until SIGTERM/SIGINT/SIGQUIT. Returns the exit status.
 */
int mk_child_run_jobs(const struct mk_config *config, bool under_master);

#endif
