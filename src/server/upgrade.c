/*
 * The binary upgrade (server layer); see upgrade.h. The child between
 * fork() and exec() touches only its own copies of the descriptors and
 * its environment; it frees nothing, since exec() drops it all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "server/listener.h"
#include "server/systemd.h"
#include "server/upgrade.h"

/* Where the new master finds them: LISTEN_FDS' first two. */
#define PASSED_LISTEN_FD 3
#define PASSED_READY_FD 4
/* Above both, and above stdio, for the moves in between. */
#define SPARE_FD_MIN 10

int
mk_upgrade_inherit(struct mk_inherited *out, char *err, size_t errlen)
{
	struct mk_passed_fd passed[MK_PASSED_FDS_MAX];
	int n = mk_systemd_listen_fds(passed, MK_PASSED_FDS_MAX, err, errlen);

	out->listen_fd = -1;
	out->owned = false;
	out->ready_fd = -1;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		const struct mk_passed_fd *p = &passed[i];

		if (strcmp(p->name, MK_UPGRADE_NAME_READY) == 0) {
			out->ready_fd = p->fd;
		} else if (!mk_listener_is_listening(p->fd)) {
			snprintf(err, errlen,
			    "passed fd %d (%s) is not a listening socket",
			    p->fd, p->name);
			return -1;
		} else if (out->listen_fd >= 0) {
			/* One socket, one ListenStream= in markets.socket. */
			snprintf(err, errlen,
			    "passed more than one listening socket (fds %d "
			    "and %d); markets serves one",
			    out->listen_fd, p->fd);
			return -1;
		} else if (mk_listener_adopt(p->fd) != 0) {
			snprintf(err, errlen, "passed fd %d: %s", p->fd,
			    strerror(errno));
			return -1;
		} else {
			out->listen_fd = p->fd;
			out->owned =
			    strcmp(p->name, MK_UPGRADE_NAME_LISTEN_OWNED) == 0;
		}
	}
	return 0;
}

/* The child's side: descriptors and environment in place, then exec. */
static void
exec_new(char *const argv[], int listen_fd, bool owned, int ready_fd)
{
	int listen_copy = fcntl(listen_fd, F_DUPFD_CLOEXEC, SPARE_FD_MIN);
	int ready_copy = fcntl(ready_fd, F_DUPFD_CLOEXEC, SPARE_FD_MIN);
	char pid_text[32];
	sigset_t none;

	/* dup2() leaves the copies at 3 and 4 open across exec(). */
	if (listen_copy < 0 || ready_copy < 0 ||
	    dup2(listen_copy, PASSED_LISTEN_FD) < 0 ||
	    dup2(ready_copy, PASSED_READY_FD) < 0) {
		mk_log(MK_LOG_ERROR, "binary upgrade: cannot pass fds: %s",
		    strerror(errno));
		_exit(127);
	}
	snprintf(pid_text, sizeof(pid_text), "%ld", (long)getpid());
	if (setenv("LISTEN_PID", pid_text, 1) != 0 ||
	    setenv("LISTEN_FDS", "2", 1) != 0 ||
	    setenv("LISTEN_FDNAMES",
		owned ? MK_UPGRADE_NAME_LISTEN_OWNED ":" MK_UPGRADE_NAME_READY
		      : MK_UPGRADE_NAME_LISTEN ":" MK_UPGRADE_NAME_READY,
		1) != 0) {
		mk_log(MK_LOG_ERROR, "binary upgrade: setenv: %s",
		    strerror(errno));
		_exit(127);
	}
	/* Started as a service manager would: no signal blocked or ignored. */
	sigemptyset(&none);
	(void)signal(SIGPIPE, SIG_DFL);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(argv[0], argv);
	mk_log(MK_LOG_ERROR, "binary upgrade: cannot run %s: %s", argv[0],
	    strerror(errno));
	/* _exit(): the old master's memory is not this process's to check. */
	_exit(127);
}

pid_t
mk_upgrade_spawn(char *const argv[], int listen_fd, bool owned, int *ready_fd)
{
	int pipe_fds[2];
	pid_t pid;

	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		mk_log(
		    MK_LOG_ERROR, "binary upgrade: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		mk_log(
		    MK_LOG_ERROR, "binary upgrade: fork: %s", strerror(errno));
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return -1;
	}
	if (pid == 0)
		exec_new(argv, listen_fd, owned, pipe_fds[1]);
	close(pipe_fds[1]);
	*ready_fd = pipe_fds[0];
	return pid;
}

int
mk_upgrade_report_ready(int fd)
{
	static const char word[] = "ready\n";
	ssize_t n = write(fd, word, sizeof(word) - 1);
	int saved = errno;

	close(fd);
	errno = saved;
	return n == (ssize_t)(sizeof(word) - 1) ? 0 : -1;
}

int
mk_upgrade_check_ready(int fd)
{
	char word[16];
	ssize_t n = read(fd, word, sizeof(word));

	if (n > 0)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;
}
