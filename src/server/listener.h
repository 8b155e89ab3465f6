/*
 * Listening sockets (server layer): opening the one the master shares
 * with its workers, and recognising the one a process manager (Apache
 * mod_fcgid) hands over on fd 0.
 */
#ifndef MK_LISTENER_H
#define MK_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/cidr.h"

struct mk_config;

/*
 * Opens a non-blocking listening socket for spec, "unix:/path/to.sock" or
 * "HOST:PORT" ("[::1]:9000" for IPv6). Without a host (":9000", or a
 * bare "9000") it binds 127.0.0.1, not every interface: all interfaces
 * must be asked for ("0.0.0.0:9000", "[::]:9000"). A stale unix socket
 * file that no one accepts on is replaced; a live one is an error. The
 * unix socket gets mode socket_mode. Returns the fd, or -1 with a reason
 * in err.
 */
int mk_listener_open(
    const char *spec, int socket_mode, char *err, size_t errlen);

/* Where the master's listening socket comes from. */
struct mk_listen_source {
	int passed_fd;     /* passed in (LISTEN_FDS), or -1 */
	bool passed_owned; /* its file is ours to remove at stop */
	const char *spec; /* else opened here (mk_listener_open); may be NULL */
	int socket_mode;
};

/*
 * The master's listening socket: the one passed in, else a new one on
 * source->spec. Writes what it is as a spec into name (for the log, and
 * mk_listener_unlink) and whether its file is ours to remove into
 * *owns_file. Returns the fd, or -1 with a reason in err.
 */
int mk_listener_obtain(const struct mk_listen_source *source, char *name,
    size_t name_size, bool *owns_file, char *err, size_t errlen);

/* Removes the socket file of a unix spec (at shutdown); no-op for TCP. */
void mk_listener_unlink(const char *spec);

/*
 * Makes an inherited listening socket (fd 0 under mod_fcgid) fit for the
 * worker loop: non-blocking, close-on-exec. Returns 0 or -1.
 */
int mk_listener_adopt(int fd);

/*
 * Writes the address fd is bound to as a --listen spec into spec
 * ("unix:/path", "127.0.0.1:9000", "[::1]:9000"): what a passed socket
 * is, for the log and for removing its file. Returns 0, or -1 (not a
 * named unix or IP socket, or spec too small).
 */
int mk_listener_describe(int fd, char *spec, size_t size);

/*
 * True when fd is a listening socket (FastCGI's FCGI_LISTENSOCK_FILENO case).
 */
int mk_listener_is_listening(int fd);

/*
 * Who may connect to a listening socket. A TCP peer sets REMOTE_ADDR,
 * which /metrics and the rate limiter believe, so it must be a front
 * server: one of FCGI_WEB_SERVER_ADDRS (libfcgi's convention: the
 * environment, comma-separated) or listen_allowed_clients (addresses or
 * CIDR blocks). Worker-lifetime, one per worker; plain value.
 */
struct mk_peer_policy {
	bool check;         /* false: a unix socket, not checked */
	bool loopback_only; /* a loopback listener with no list */
	struct mk_cidr_list allow;
	int64_t last_log_ms; /* refusals are logged once a second */
	unsigned suppressed; /* refusals not logged since */
};

/*
 * Makes the policy for listening socket fd under config. A unix socket is
 * not checked. A TCP one admits the listed peers; with no list, a
 * loopback listener admits loopback peers, and any other is an error
 * (it would serve whoever reaches it). Returns 0, or -1 with err naming
 * the bad entry or both settings.
 */
int mk_listener_peer_policy(int fd, const struct mk_config *config,
    struct mk_peer_policy *policy, char *err, size_t errlen);

/*
 * True when the peer (as accept() returned it) may be served; else false,
 * logged with its address (once a second at most, with a count of the
 * ones left out). The caller closes a refused connection at once.
 */
bool mk_listener_peer_admit(struct mk_peer_policy *policy,
    const struct sockaddr *peer, socklen_t peer_len, int64_t now_ms);

#endif
