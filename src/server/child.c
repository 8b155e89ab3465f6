/*
 * A child process of the server (server layer); see child.h. It calls
 * the application (app.h) for the runner's parts, and core for the rest;
 * it knows neither the master's table nor the worker's loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "app.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/signals.h"
#include "server/child.h"

static const struct {
	const char *role;  /* its log lines' "role" */
	const char *title; /* its name in ps and /proc; NULL: the binary's */
} kinds[MK_CHILD__MAX] = {
	[MK_CHILD_WORKER] = { "worker", NULL },
	/* Same binary, same parent as the workers: told apart by name. */
	[MK_CHILD_RUNNER] = { "runner", "markets-runner" },
};

pid_t
mk_child_spawn(const struct mk_child *child)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		mk_log(MK_LOG_ERROR, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return pid;
	mk_metrics_bind(child->slot);
	status = child->run(child->arg);
	child->release(child->arg);
	mk_log_close();
	/* exit(), not _exit(): LeakSanitizer checks children too. */
	exit(status);
}

int
mk_child_setup(enum mk_child_kind kind, bool under_master, sigset_t *wait_mask)
{
	mk_log_set_role(kinds[kind].role);
	if (kinds[kind].title != NULL &&
	    prctl(PR_SET_NAME, kinds[kind].title, 0, 0, 0) != 0)
		mk_log(MK_LOG_WARN, "cannot name the %s process: %s",
		    kinds[kind].role, strerror(errno));
	if (mk_signals_install(false, wait_mask) != 0) {
		mk_log(MK_LOG_ERROR, "cannot install signal handlers: %s",
		    strerror(errno));
		return -1;
	}
	/* Die with the master rather than run on unsupervised. */
	if (under_master &&
	    (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1))
		return -1;
	return 0;
}

int
mk_child_run_jobs(const struct mk_config *config, bool under_master)
{
	if (mk_child_setup(MK_CHILD_RUNNER, under_master, NULL) != 0)
		return 1;
	return mk_app_run_jobs(config, mk_signals_carry_on);
}
