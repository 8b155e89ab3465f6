/*
 * The service manager's two protocols (server layer), as systemd defines
 * them: descriptors passed in with LISTEN_FDS (sd_listen_fds(3)) and
 * state sent to NOTIFY_SOCKET (sd_notify(3)). Built on libsystemd when
 * configure found it; without it the same two protocols are spoken here,
 * because the binary upgrade (upgrade.h) passes its socket the same way
 * whether or not systemd runs the service. Holds no state.
 */
#ifndef MK_SERVER_SYSTEMD_H
#define MK_SERVER_SYSTEMD_H

#include <stddef.h>

/* Descriptors a process takes in at once; systemd's own limit is higher. */
#define MK_PASSED_FDS_MAX 8
/* Longer names are cut; ours (upgrade.h) and systemd's defaults fit. */
#define MK_PASSED_NAME_MAX 64

/* A descriptor passed in, with its name (LISTEN_FDNAMES, or "unknown"). */
struct mk_passed_fd {
	int fd;
	char name[MK_PASSED_NAME_MAX];
};

/*
 * Takes the descriptors passed to this process (when LISTEN_PID is its
 * pid) from fd 3 on, makes them close-on-exec, and removes LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES from the environment, so that no process
 * started later takes them for its own. Returns how many (0: none passed,
 * or passed to another process), or -1 with a reason in err (a malformed
 * variable, more than max descriptors).
 */
int mk_systemd_listen_fds(
    struct mk_passed_fd *fds, int max, char *err, size_t errlen);

/*
 * Sends state (assignments such as "READY=1", one a line) to the service
 * manager when NOTIFY_SOCKET names one. Returns 1 when sent, 0 when no
 * manager listens, -1 on failure (errno set); the caller logs it.
 */
int mk_systemd_notify(const char *state);

#endif
