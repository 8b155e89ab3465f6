/*
 * Signal flags (core layer); see signals.h. The flags are the process's
 * only state here; the handlers touch nothing else.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/signals.h"

static volatile sig_atomic_t flags[MK_SIGNAL__MAX];

static const struct {
	int sig;
	enum mk_signal flag;
	bool master_only;
} handled[] = {
	{ SIGTERM, MK_SIGNAL_STOP, false },
	{ SIGINT, MK_SIGNAL_STOP, false },
	{ SIGQUIT, MK_SIGNAL_STOP, false },
	{ SIGUSR1, MK_SIGNAL_REOPEN, false },
	{ SIGHUP, MK_SIGNAL_RELOAD, true },
	{ SIGUSR2, MK_SIGNAL_UPGRADE, true },
	{ SIGCHLD, MK_SIGNAL_CHILD, true },
};

#define NHANDLED (sizeof(handled) / sizeof(handled[0]))

static void
on_signal(int sig)
{
	for (size_t i = 0; i < NHANDLED; i++) {
		if (handled[i].sig == sig)
			flags[handled[i].flag] = 1;
	}
}

int
mk_signals_install(bool master, sigset_t *wait_mask)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ignore = { .sa_handler = SIG_IGN };
	struct sigaction fallback = { .sa_handler = SIG_DFL };
	sigset_t block, none;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&ignore.sa_mask);
	sigemptyset(&fallback.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < MK_SIGNAL__MAX; i++)
		flags[i] = 0;
	for (size_t i = 0; i < NHANDLED; i++) {
		const struct sigaction *action = &sa;

		/*
		 * SIGHUP and SIGUSR2 are the master's to act on; SIGCHLD its
		 * to reap.
		 */
		if (handled[i].master_only && !master)
			action =
			    handled[i].sig == SIGCHLD ? &fallback : &ignore;
		if (sigaction(handled[i].sig, action, NULL) != 0)
			return -1;
		if (action == &sa)
			sigaddset(&block, handled[i].sig);
	}
	if (sigaction(SIGPIPE, &ignore, NULL) != 0)
		return -1;
	if (wait_mask == NULL) {
		/*
		 * The master forks with its signals blocked (it waits for them
		 * in ppoll): let them all in.
		 */
		sigemptyset(&none);
		return sigprocmask(SIG_SETMASK, &none, NULL);
	}
	if (sigprocmask(SIG_BLOCK, &block, wait_mask) != 0)
		return -1;
	for (size_t i = 0; i < NHANDLED; i++) {
		if (sigismember(&block, handled[i].sig) == 1)
			sigdelset(wait_mask, handled[i].sig);
	}
	return 0;
}

void
mk_signals_let_in(const sigset_t *wait_mask)
{
	sigset_t pending, saved;
	bool any = false;

	if (sigpending(&pending) != 0)
		return;
	for (size_t i = 0; i < NHANDLED; i++)
		any |= sigismember(&pending, handled[i].sig) == 1 &&
		    sigismember(wait_mask, handled[i].sig) == 0;
	/*
	 * Unblocked, a pending signal is delivered before sigprocmask()
	 * returns; the handler only sets its flag.
	 */
	if (any && sigprocmask(SIG_SETMASK, wait_mask, &saved) == 0)
		(void)sigprocmask(SIG_SETMASK, &saved, NULL);
}

bool
mk_signals_pending(enum mk_signal which)
{
	return flags[which] != 0;
}

bool
mk_signals_take(enum mk_signal which)
{
	if (flags[which] == 0)
		return false;
	flags[which] = 0;
	return true;
}

bool
mk_signals_reopen_log(void)
{
	if (!mk_signals_take(MK_SIGNAL_REOPEN))
		return false;
	if (mk_log_reopen() != 0)
		mk_log(MK_LOG_ERROR, "cannot reopen log: %s", strerror(errno));
	return true;
}

bool
mk_signals_carry_on(void)
{
	(void)mk_signals_reopen_log();
	return !mk_signals_pending(MK_SIGNAL_STOP);
}
