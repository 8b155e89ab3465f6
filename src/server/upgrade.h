/*
 * The binary upgrade (server layer), as nginx does it on SIGUSR2: the
 * running master starts the binary again (argv[0], which a new build or
 * package has replaced) on the same listening socket. The socket goes to
 * the new master as fd 3 by the LISTEN_FDS protocol (systemd.h), so that
 * it is taken up as one from systemd would be; with it goes fd 4, a pipe
 * on which the new master says that its workers accept. Until then the
 * old master serves on; then it drains and exits. The master's loop
 * (master.c) decides when; this file starts the new binary, speaks the
 * pipe, and sorts what a starting master was passed. Holds no state.
 */
#ifndef MK_SERVER_UPGRADE_H
#define MK_SERVER_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The passed descriptors' names (LISTEN_FDNAMES). */
#define MK_UPGRADE_NAME_LISTEN "listen"
/* The master that passed it bound the socket: its file is ours to remove. */
#define MK_UPGRADE_NAME_LISTEN_OWNED "listen-owned"
#define MK_UPGRADE_NAME_READY "upgrade-ready"

/* What a starting master was passed; -1 for what it was not. */
struct mk_inherited {
	int listen_fd; /* non-blocking, close-on-exec */
	bool owned;    /* the socket file is ours to remove at stop */
	int ready_fd;  /* an upgrade's pipe back to the old master */
};

/*
 * Sorts the descriptors passed to this process (by systemd, or by an old
 * master) into *out: one listening stream socket, and the upgrade's
 * pipe. Returns 0 (nothing passed: both -1), or -1 with a reason in err
 * (a passed descriptor that is neither, or two listening sockets).
 */
int mk_upgrade_inherit(struct mk_inherited *out, char *err, size_t errlen);

/*
 * Starts argv (argv[0] looked up as execvp(3) does) in a child process
 * that gets listen_fd as fd 3, named listen-owned when owned, and the
 * write end of a new pipe as fd 4, with an empty signal mask. Returns the
 * child's pid and the pipe's read end in *ready_fd (non-blocking,
 * close-on-exec; the caller closes it), or -1 (logged). A child that
 * cannot run the binary logs why and exits 127.
 */
pid_t mk_upgrade_spawn(
    char *const argv[], int listen_fd, bool owned, int *ready_fd);

/* In the new master: says on fd that its workers accept, and closes fd. */
int mk_upgrade_report_ready(int fd);

/*
 * In the old master: reads the pipe. Returns 1 when the new master said
 * it is ready, 0 when it has said nothing yet, -1 when it closed the pipe
 * without a word (it exited, or could not start).
 */
int mk_upgrade_check_ready(int fd);

#endif
