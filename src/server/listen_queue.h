/*
 * The listening socket's accept queue (server layer): how many
 * connections wait for a worker's accept(), and how many it can hold —
 * PHP-FPM's "listen queue" and "listen queue len". The master looks every
 * second (workers cannot: when the queue grows they are all busy).
 */
#ifndef MK_LISTEN_QUEUE_H
#define MK_LISTEN_QUEUE_H

/*
 * Reads the queue of the listening socket fd (unix or TCP) into *queued
 * and its limit (the backlog) into *limit. Returns 0, or -1 with errno
 * set when the kernel does not say.
 */
int mk_listen_queue(int fd, unsigned *queued, unsigned *limit);

#endif
