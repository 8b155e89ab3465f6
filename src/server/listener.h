/*
 * Listening sockets (server layer): opening the one the master shares
 * with its workers, and recognising the one a process manager (Apache
 * mod_fcgid) hands over on fd 0.
 */
#ifndef MK_LISTENER_H
#define MK_LISTENER_H

#include <stddef.h>

/*
 * Opens a non-blocking listening socket for spec, "unix:/path/to.sock" or
 * "HOST:PORT" ("[::1]:9000" for IPv6). A stale unix socket file that no
 * one accepts on is replaced; a live one is an error. The unix socket
 * gets mode socket_mode. Returns the fd, or -1 with a reason in err.
 */
int mk_listener_open(const char *spec, int socket_mode, char *err,
    size_t errlen);

/* Removes the socket file of a unix spec (at shutdown); no-op for TCP. */
void mk_listener_unlink(const char *spec);

/*
 * Makes an inherited listening socket (fd 0 under mod_fcgid) fit for the
 * worker loop: non-blocking, close-on-exec. Returns 0 or -1.
 */
int mk_listener_adopt(int fd);

/* True when fd is a listening socket (FastCGI's FCGI_LISTENSOCK_FILENO case). */
int mk_listener_is_listening(int fd);

#endif
