/*
 * A worker (server layer): one process serving FastCGI connections from a
 * shared listening socket with an epoll loop until told to stop. Under the
 * master it is one of N pre-forked children; under Apache mod_fcgid it is
 * the whole server, listening on fd 0.
 */
#ifndef MK_WORKER_H
#define MK_WORKER_H

struct mk_config;

/*
 * Serves until SIGTERM/SIGINT/SIGQUIT, then stops accepting and lets the
 * requests in flight finish within config->shutdown_timeout_ms. With
 * under_master, it also exits when the master dies. Once it accepts, it
 * writes its pid to ready_fd and closes it (-1: tells no one). Returns
 * the process exit status.
 */
int mk_worker_run(int listen_fd, const struct mk_config *config,
    int under_master, int ready_fd);

#endif
