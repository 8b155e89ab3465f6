/*
 * Listening sockets (server layer); see listener.h. Also the peer check
 * of a TCP listener: whoever connects to the FastCGI socket sets
 * REMOTE_ADDR, which /metrics and the rate limiter believe, so only the
 * front servers may.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
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
		snprintf(err, errlen,
		    "unix socket path empty or longer than %zu bytes",
		    sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			snprintf(
			    err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		/*
		 * A socket someone still accepts on belongs to a running
		 * server.
		 */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int live = connect(probe, (struct sockaddr *)&addr,
				       sizeof(addr)) == 0;

			close(probe);
			if (live) {
				snprintf(err, errlen,
				    "%s is in use by a running server", path);
				return -1;
			}
		}
		if (unlink(path) != 0) {
			snprintf(err, errlen, "cannot remove stale %s: %s",
			    path, strerror(errno));
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
	if (chmod(path, (mode_t)socket_mode) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
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
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256];
	const char *colon, *port, *h = spec;
	size_t hlen;
	int fd, one = 1, rc;

	colon = strrchr(spec, ':');
	if (colon == NULL && spec[0] != '\0' &&
	    strspn(spec, "0123456789") == strlen(spec)) {
		/* A bare port, "9000": loopback, as ":9000". */
		port = spec;
		h = spec;
		hlen = 0;
		goto resolve;
	}
	if (colon == NULL || colon[1] == '\0') {
		snprintf(err, errlen,
		    "listen address '%s' is not unix:PATH or HOST:PORT", spec);
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
resolve:
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	/* No host named: loopback, never every interface by accident. */
	if (hlen == 0)
		memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "resolve %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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

int
mk_listener_obtain(const struct mk_listen_source *source, char *name,
    size_t name_size, bool *owns_file, char *err, size_t errlen)
{
	int fd;

	if (source->passed_fd >= 0) {
		*owns_file = source->passed_owned;
		if (mk_listener_describe(source->passed_fd, name, name_size) !=
		    0) {
			/* Named for the log only: there is no file to remove.
			 */
			snprintf(
			    name, name_size, "passed fd %d", source->passed_fd);
			*owns_file = false;
		}
		return source->passed_fd;
	}
	if (source->spec == NULL || strlen(source->spec) >= name_size) {
		snprintf(err, errlen,
		    "no listening socket: --listen missing or too long, and "
		    "none passed");
		return -1;
	}
	fd = mk_listener_open(source->spec, source->socket_mode, err, errlen);
	if (fd < 0)
		return -1;
	snprintf(name, name_size, "%s", source->spec);
	*owns_file = true;
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

/*
 * The address of sa as text, an IPv4-mapped IPv6 address as plain IPv4
 * (a dual-stack listener sees IPv4 peers that way; lists name them
 * plainly). Returns 0 or -1 (not an IP address).
 */
static int
address_text(const struct sockaddr *sa, char *text, size_t size)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in =
		    (const struct sockaddr_in *)(const void *)sa;

		return inet_ntop(AF_INET, &in->sin_addr, text,
			   (socklen_t)size) != NULL
		    ? 0
		    : -1;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)(const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12],
				   text, (socklen_t)size) != NULL
			    ? 0
			    : -1;
		return inet_ntop(AF_INET6, &in6->sin6_addr, text,
			   (socklen_t)size) != NULL
		    ? 0
		    : -1;
	}
	return -1;
}

int
mk_listener_describe(int fd, char *spec, size_t size)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	char address[INET6_ADDRSTRLEN];
	int n;

	if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0)
		return -1;
	if (bound.ss_family == AF_UNIX) {
		const struct sockaddr_un *un =
		    (const struct sockaddr_un *)(const void *)&bound;
		size_t path_len = len > offsetof(struct sockaddr_un, sun_path)
		    ? strnlen(un->sun_path,
			  len - offsetof(struct sockaddr_un, sun_path))
		    : 0;

		/* An abstract or unnamed socket has no file to name. */
		if (path_len == 0)
			return -1;
		n = snprintf(
		    spec, size, "unix:%.*s", (int)path_len, un->sun_path);
	} else if (address_text((const struct sockaddr *)&bound, address,
		       sizeof(address)) == 0) {
		in_port_t port = bound.ss_family == AF_INET
		    ? ((const struct sockaddr_in *)(const void *)&bound)
			  ->sin_port
		    : ((const struct sockaddr_in6 *)(const void *)&bound)
			  ->sin6_port;

		if (strchr(address, ':') != NULL)
			n = snprintf(spec, size, "[%s]:%u", address,
			    (unsigned)ntohs(port));
		else
			n = snprintf(spec, size, "%s:%u", address,
			    (unsigned)ntohs(port));
	} else {
		return -1;
	}
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static bool
is_loopback(const char *address)
{
	static struct mk_cidr_list loopback;
	const char *bad;
	size_t bad_len;

	if (loopback.n == 0 &&
	    mk_cidr_list_parse("127.0.0.0/8, ::1", &loopback, &bad, &bad_len) !=
		0)
		return false;
	return mk_cidr_list_contains(&loopback, address);
}

/* Appends the entries of text (a list named origin) to *list. */
static int
add_allowed(struct mk_cidr_list *list, const char *text, const char *origin,
    char *err, size_t errlen)
{
	struct mk_cidr_list more;
	const char *bad;
	size_t bad_len;

	if (mk_cidr_list_parse(text, &more, &bad, &bad_len) != 0) {
		snprintf(err, errlen,
		    "%s: '%.*s' is not an address or CIDR block (or the list "
		    "has more than %d)",
		    origin, (int)(bad_len > 64 ? 64 : bad_len), bad,
		    MK_CIDR_LIST_MAX);
		return -1;
	}
	if (list->n + more.n > MK_CIDR_LIST_MAX) {
		snprintf(err, errlen,
		    "FCGI_WEB_SERVER_ADDRS and listen_allowed_clients together "
		    "name more than %d entries",
		    MK_CIDR_LIST_MAX);
		return -1;
	}
	memcpy(&list->blocks[list->n], more.blocks,
	    more.n * sizeof(more.blocks[0]));
	list->n += more.n;
	return 0;
}

int
mk_listener_peer_policy(int fd, const struct mk_config *config,
    struct mk_peer_policy *policy, char *err, size_t errlen)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	const char *env = getenv("FCGI_WEB_SERVER_ADDRS");
	char address[INET6_ADDRSTRLEN];

	memset(policy, 0, sizeof(*policy));
	policy->last_log_ms = INT64_MIN / 2;
	if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
		snprintf(err, errlen, "getsockname: %s", strerror(errno));
		return -1;
	}
	/* A unix socket: its file's permissions say who may connect. */
	if (bound.ss_family != AF_INET && bound.ss_family != AF_INET6)
		return 0;
	policy->check = true;
	if (address_text((const struct sockaddr *)&bound, address,
		sizeof(address)) != 0) {
		snprintf(err, errlen, "cannot read the listening address");
		return -1;
	}
	if ((env != NULL &&
		add_allowed(&policy->allow, env,
		    "environment FCGI_WEB_SERVER_ADDRS", err, errlen) != 0) ||
	    add_allowed(&policy->allow, config->listen_allowed_clients,
		"listen_allowed_clients", err, errlen) != 0)
		return -1;
	if (policy->allow.n > 0)
		return 0;
	if (!is_loopback(address)) {
		snprintf(err, errlen,
		    "listening on %s (not loopback) with no allowed clients: "
		    "set listen_allowed_clients "
		    "(or the environment's FCGI_WEB_SERVER_ADDRS) to the front "
		    "servers' addresses",
		    address);
		return -1;
	}
	/* Loopback listener, no list: the hosts' own front servers only. */
	policy->loopback_only = true;
	return 0;
}

bool
mk_listener_peer_admit(struct mk_peer_policy *policy,
    const struct sockaddr *peer, socklen_t peer_len, int64_t now_ms)
{
	char address[INET6_ADDRSTRLEN] = "?";
	bool known;

	if (!policy->check)
		return true;
	known = peer_len >= sizeof(struct sockaddr_in) &&
	    address_text(peer, address, sizeof(address)) == 0;
	if (known &&
	    (policy->loopback_only
		    ? is_loopback(address)
		    : mk_cidr_list_contains(&policy->allow, address)))
		return true;
	/*
	 * One line a second at most, with a count: a flood cannot fill the
	 * disk.
	 */
	if (now_ms - policy->last_log_ms < 1000) {
		policy->suppressed++;
		return false;
	}
	if (policy->suppressed > 0)
		mk_log(MK_LOG_WARN,
		    "refused a FastCGI connection from %s (%s); %u more "
		    "refused since the last such line",
		    address,
		    policy->loopback_only ? "not loopback"
					  : "not in listen_allowed_clients or "
					    "FCGI_WEB_SERVER_ADDRS",
		    policy->suppressed);
	else
		mk_log(MK_LOG_WARN, "refused a FastCGI connection from %s (%s)",
		    address,
		    policy->loopback_only ? "not loopback"
					  : "not in listen_allowed_clients or "
					    "FCGI_WEB_SERVER_ADDRS");
	policy->last_log_ms = now_ms;
	policy->suppressed = 0;
	return false;
}
