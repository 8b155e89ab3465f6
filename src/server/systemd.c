/*
 * The service manager's protocols (server layer); see systemd.h. With
 * libsystemd (HAVE_LIBSYSTEMD) both calls are the library's; without it
 * they are written out below, as sd_listen_fds(3) and sd_notify(3)
 * describe them. Both protocols are among systemd's documented stable
 * interfaces, so the copy stays right; writing it out rather than doing
 * nothing keeps a build without libsystemd able to take a socket from
 * systemd and from its own binary upgrade.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include "server/systemd.h"

/* The first passed descriptor (SD_LISTEN_FDS_START). */
#define FIRST_PASSED_FD 3

static void
set_name(struct mk_passed_fd *passed, const char *name, size_t len)
{
	if (len >= sizeof(passed->name))
		len = sizeof(passed->name) - 1;
	memcpy(passed->name, name, len);
	passed->name[len] = '\0';
}

#ifdef HAVE_LIBSYSTEMD

int
mk_systemd_listen_fds(
    struct mk_passed_fd *fds, int max, char *err, size_t errlen)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	if (n < 0) {
		snprintf(err, errlen, "LISTEN_FDS: %s", strerror(-n));
		return -1;
	}
	if (n > max)
		snprintf(err, errlen,
		    "LISTEN_FDS passes %d descriptors; at most %d are taken", n,
		    max);
	for (int i = 0; i < n && i < max; i++) {
		const char *name =
		    names != NULL && names[i] != NULL ? names[i] : "unknown";

		fds[i].fd = FIRST_PASSED_FD + i;
		set_name(&fds[i], name, strlen(name));
	}
	for (int i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
	return n > max ? -1 : n;
}

int
mk_systemd_notify(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc > 0 ? 1 : 0;
}

#else

/* A decimal number in [min, max], the whole text. Returns 0 or -1. */
static int
parse_number(const char *text, long min, long max, long *out)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < min ||
	    value > max)
		return -1;
	*out = value;
	return 0;
}

/* The passed descriptors, before the variables are removed. */
static int
take_passed(struct mk_passed_fd *fds, int max, char *err, size_t errlen)
{
	const char *pid_text = getenv("LISTEN_PID");
	const char *count_text = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long pid, count;

	if (pid_text == NULL || count_text == NULL)
		return 0;
	if (parse_number(pid_text, 1, 0x7fffffff, &pid) != 0) {
		snprintf(err, errlen, "LISTEN_PID is not a process id");
		return -1;
	}
	/* Passed to the process that ran before an exec: not ours. */
	if (pid != (long)getpid())
		return 0;
	if (parse_number(count_text, 0, 0x7fff, &count) != 0) {
		snprintf(err, errlen, "LISTEN_FDS is not a count");
		return -1;
	}
	if (count > max) {
		snprintf(err, errlen,
		    "LISTEN_FDS passes %ld descriptors; at most %d are taken",
		    count, max);
		return -1;
	}
	for (int i = 0; i < (int)count; i++) {
		int fd = FIRST_PASSED_FD + i, flags = fcntl(fd, F_GETFD);
		size_t len = 0;

		if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
			snprintf(err, errlen, "LISTEN_FDS: fd %d: %s", fd,
			    strerror(errno));
			return -1;
		}
		fds[i].fd = fd;
		if (names != NULL && *names != '\0') {
			len = strcspn(names, ":");
			set_name(&fds[i], names, len);
			names += names[len] == ':' ? len + 1 : len;
		} else {
			/* As sd_listen_fds_with_names(3) names them. */
			set_name(&fds[i], "unknown", strlen("unknown"));
		}
	}
	return (int)count;
}

int
mk_systemd_listen_fds(
    struct mk_passed_fd *fds, int max, char *err, size_t errlen)
{
	int n = take_passed(fds, max, err, errlen);

	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
	return n;
}

int
mk_systemd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len, state_len = strlen(state);
	ssize_t sent;
	int fd, saved;

	if (path == NULL || path[0] == '\0')
		return 0;
	len = strlen(path);
	/* A path, or "@name" for the abstract namespace; nothing else. */
	if ((path[0] != '/' && path[0] != '@') ||
	    len >= sizeof(addr.sun_path)) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sent =
	    sendto(fd, state, state_len, MSG_NOSIGNAL, (struct sockaddr *)&addr,
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	saved = errno;
	close(fd);
	errno = saved;
	return sent == (ssize_t)state_len ? 1 : -1;
}

#endif
