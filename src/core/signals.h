/*
 * Signal flags (core layer), after nginx's ngx_process.c: a handler only
 * sets its flag; the process's loop takes it where nothing else runs.
 * Signals belong to a process, and so do these flags: the master, a
 * worker, a job runner (the master's child, or markets-admin run-jobs in
 * the foreground) each install them once, at start.
 *
 *   SIGTERM, SIGINT, SIGQUIT   MK_SIGNAL_STOP
 *   SIGUSR1                    MK_SIGNAL_REOPEN (reopen the log)
 *   SIGHUP                     MK_SIGNAL_RELOAD (the master; others ignore it)
 *   SIGUSR2                    MK_SIGNAL_UPGRADE (the master: run the binary
 *                              again; others ignore it)
 *   SIGCHLD                    MK_SIGNAL_CHILD (the master; others: default)
 *   SIGPIPE                    ignored: a write reports EPIPE instead
 */
#ifndef MK_SIGNALS_H
#define MK_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

enum mk_signal {
	MK_SIGNAL_STOP,
	MK_SIGNAL_REOPEN,
	MK_SIGNAL_RELOAD,
	MK_SIGNAL_UPGRADE,
	MK_SIGNAL_CHILD,
	MK_SIGNAL__MAX
};

/*
 * Installs the handlers (with master, for every flag; else for STOP and
 * REOPEN) and clears the flags, which a forked child inherits from
 * its parent. With wait_mask, the signals stay blocked but while the
 * process waits with *wait_mask (ppoll, epoll_pwait), so that no handler
 * interrupts its work; without, they are taken at any time, so that a
 * stop cuts a sleep short. Returns 0, or -1 with errno.
 */
int mk_signals_install(bool master, sigset_t *wait_mask);

/*
 * For a loop that lets its signals in only while it waits (epoll_pwait
 * with wait_mask): epoll_pwait() returns the events that are ready
 * without delivering a signal that is pending, so a loop that always
 * finds some ready (a worker under steady load) would never see SIGTERM.
 * Delivers the pending ones, after the wait. Costs one sigpending() when
 * none is.
 */
void mk_signals_let_in(const sigset_t *wait_mask);

/* Whether the signal came since the flag was last taken. */
bool mk_signals_pending(enum mk_signal which);

/* Whether the signal came, and clears its flag. */
bool mk_signals_take(enum mk_signal which);

/*
 * When SIGUSR1 came: takes it and reopens the log (a failure is logged
 * where the log still goes). Returns whether it came.
 */
bool mk_signals_reopen_log(void);

/*
 * For a loop between two pieces of work (a job runner's): reopens the
 * log when asked, and says whether to carry on (no stop came).
 */
bool mk_signals_carry_on(void);

#endif
