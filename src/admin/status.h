/*
 * markets-admin status (admin layer): the server's state as a page for a
 * person, like PHP-FPM's status page, made of the numbers GET /metrics
 * gives Prometheus (core/metrics.h), fetched over HTTP through the front
 * server:
 *
 *   markets-admin status [--url URL] [--timeout SECONDS]
 *
 * URL defaults to the dev stack's, http://127.0.0.1:8080/metrics.
 *
 * Why /metrics over HTTP, rather than the FastCGI socket or a shared
 * file: it is the very text Prometheus reads, so the page cannot drift
 * from the metrics; it works from any host metrics_allow lists, with the
 * same access rule, and needs neither the socket's group nor a FastCGI
 * client here (the codec is the server layer's, which admin/ may not
 * include); and the counters live in anonymous shared memory that only
 * the server's processes map — a file-backed region would add a layout
 * to keep in step across binary upgrades, and permissions. Its one limit
 * is PHP-FPM's too: with every worker busy the request waits in the listen
 * queue like any other (--timeout, then the page says so); the listen
 * queue's maximum and markets_workers_all_busy_total tell the tale after.
 */
#ifndef MK_ADMIN_STATUS_H
#define MK_ADMIN_STATUS_H

/*
 * Runs the command with its arguments (argv[0] is "status"); prints the
 * page to stdout. Returns the exit status: 0, 1 (no answer, or not the
 * metrics), 2 (usage).
 */
int mk_status_command(int argc, char **argv);

#endif
