/*
 * Listening sockets (server layer); see listener.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/listener.h"

#define LISTEN_BACKLOG 1024

static int
set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static int
open_unix(const char *path, int socket_mode, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path) || path[0] == '\0') {
		snprintf(err, errlen, "unix socket path empty or longer than %zu bytes", sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		/* A socket someone still accepts on belongs to a running server. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int live = connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0;

			close(probe);
			if (live) {
				snprintf(err, errlen, "%s is in use by a running server", path);
				return -1;
			}
		}
		if (unlink(path) != 0) {
			snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, (mode_t)socket_mode) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

static int
open_tcp(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256];
	const char *colon, *port, *h = spec;
	size_t hlen;
	int fd, one = 1, rc;

	colon = strrchr(spec, ':');
	if (colon == NULL || colon[1] == '\0') {
		snprintf(err, errlen, "listen address '%s' is not unix:PATH or HOST:PORT", spec);
		return -1;
	}
	port = colon + 1;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "host name too long");
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen > 0 ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
mk_listener_open(const char *spec, int socket_mode, char *err, size_t errlen)
{
	int fd;

	if (strncmp(spec, "unix:", 5) == 0)
		fd = open_unix(spec + 5, socket_mode, err, errlen);
	else
		fd = open_tcp(spec, err, errlen);
	if (fd >= 0 && set_nonblocking(fd) != 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
mk_listener_unlink(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		(void)unlink(spec + 5);
}

int
mk_listener_is_listening(int fd)
{
	int accepting = 0;
	socklen_t len = sizeof(accepting);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0)
		return 0;
	return accepting != 0;
}

int
mk_listener_adopt(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -1;
	return set_nonblocking(fd);
}
