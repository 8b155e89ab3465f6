/*
 * The worker's event loop, as the layers below the server see it (core
 * layer): a set of file descriptors to watch and timers to fire, for a
 * client library that runs its own sockets inside the worker (libcurl's
 * multi interface today; a non-blocking database client later) without
 * the worker knowing which. It calls only the C library and epoll.
 *
 * The loop has an epoll descriptor of its own (mk_loop_fd()); the worker
 * puts it in its own epoll set, waits no longer than mk_loop_timeout(),
 * and calls mk_loop_run() when it is readable or a timer is due. So the
 * worker's loop does not change when the watched descriptors do.
 *
 * Ownership: the loop owns its epoll descriptor and its watch records;
 * callers own the descriptors they watch and the timers they arm (a
 * struct mk_loop_timer lives in the caller's memory and must be disarmed
 * before that memory goes). A loop is worker-lifetime and single-threaded;
 * it must outlive everything registered with it.
 */
#ifndef MK_LOOP_H
#define MK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct mk_loop;

/* What a watch waits for and what a callback is told. */
#define MK_LOOP_IN 1u
#define MK_LOOP_OUT 2u
#define MK_LOOP_ERR 4u

typedef void (*mk_loop_io_fn)(void *arg, int fd, unsigned events);
typedef void (*mk_loop_timer_fn)(void *arg);

struct mk_loop_timer {
	mk_loop_timer_fn fn;
	void *arg;
	int64_t due_ms; /* monotonic */
	bool armed;
	struct mk_loop_timer *prev, *next; /* the loop's armed timers */
};

/* Makes a loop. NULL when out of memory or epoll fails. */
struct mk_loop *mk_loop_new(void);

/* Frees the loop; whatever is still watched is forgotten, not closed. */
void mk_loop_free(struct mk_loop *loop);

/* The descriptor that is readable when a watched descriptor is ready. */
int mk_loop_fd(const struct mk_loop *loop);

/*
 * Watches fd for events (MK_LOOP_IN | MK_LOOP_OUT), calling fn(arg, fd,
 * what happened) from mk_loop_run(); a second call for the same fd
 * changes what it waits for. MK_OK, MK_ENOMEM, or MK_EINTERNAL (epoll
 * refused the descriptor).
 */
enum mk_err mk_loop_watch(
    struct mk_loop *loop, int fd, unsigned events, mk_loop_io_fn fn, void *arg);

/* Stops watching fd (nothing when it was not watched). */
void mk_loop_unwatch(struct mk_loop *loop, int fd);

/*
 * Arms timer (its fn and arg set by the caller) to fire at due_ms; re-arms an
 * armed one.
 */
void mk_loop_timer_arm(
    struct mk_loop *loop, struct mk_loop_timer *timer, int64_t due_ms);

void mk_loop_timer_disarm(struct mk_loop *loop, struct mk_loop_timer *timer);

/*
 * How long the worker may sleep before a timer is due: -1 when none is
 * armed, else 0.. milliseconds from now_ms.
 */
int64_t mk_loop_timeout(const struct mk_loop *loop, int64_t now_ms);

/*
 * Calls back every watch that is ready (without waiting) and every
 * timer due by now_ms. A callback may watch, unwatch, arm and disarm.
 */
void mk_loop_run(struct mk_loop *loop, int64_t now_ms);

#endif
