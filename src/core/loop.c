/*
 * The worker's event loop for client libraries (core layer); see loop.h.
 * Watches are found by descriptor, never through a pointer kept in an
 * epoll event, so a callback that unwatches another descriptor of the
 * same batch cannot leave a dangling pointer behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/loop.h"

#define EVENTS_PER_RUN 32
#define TIMERS_PER_RUN 16

struct watch {
	int fd;
	unsigned events;
	mk_loop_io_fn fn;
	void *arg;
	struct watch *next;
};

struct mk_loop {
	int epfd;
	struct watch *watches;        /* few: a client's open connections */
	struct mk_loop_timer *timers; /* armed, unordered: few */
};

struct mk_loop *
mk_loop_new(void)
{
	struct mk_loop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

void
mk_loop_free(struct mk_loop *loop)
{
	if (loop == NULL)
		return;
	while (loop->watches != NULL) {
		struct watch *w = loop->watches;

		loop->watches = w->next;
		free(w);
	}
	for (struct mk_loop_timer *t = loop->timers; t != NULL; t = t->next)
		t->armed = false;
	(void)close(loop->epfd);
	free(loop);
}

int
mk_loop_fd(const struct mk_loop *loop)
{
	return loop->epfd;
}

static struct watch *
find_watch(const struct mk_loop *loop, int fd)
{
	for (struct watch *w = loop->watches; w != NULL; w = w->next)
		if (w->fd == fd)
			return w;
	return NULL;
}

static uint32_t
epoll_events(unsigned events)
{
	return ((events & MK_LOOP_IN) ? EPOLLIN : 0) |
	    ((events & MK_LOOP_OUT) ? EPOLLOUT : 0);
}

enum mk_err
mk_loop_watch(
    struct mk_loop *loop, int fd, unsigned events, mk_loop_io_fn fn, void *arg)
{
	struct epoll_event ev = { .events = epoll_events(events),
		.data.fd = fd };
	struct watch *w = find_watch(loop, fd);

	if (w != NULL) {
		/*
		 * A watched descriptor closed and its number reused (curl
		 * closes a socket and opens the next one): epoll forgot the
		 * old one, so the new one is added.
		 */
		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
		    (errno != ENOENT ||
			epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0))
			return MK_EINTERNAL;
	} else {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return MK_ENOMEM;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(w);
			return MK_EINTERNAL;
		}
		w->fd = fd;
		w->next = loop->watches;
		loop->watches = w;
	}
	w->events = events;
	w->fn = fn;
	w->arg = arg;
	return MK_OK;
}

void
mk_loop_unwatch(struct mk_loop *loop, int fd)
{
	struct watch **link = &loop->watches;

	for (; *link != NULL; link = &(*link)->next) {
		struct watch *w = *link;

		if (w->fd != fd)
			continue;
		/*
		 * The descriptor may already be closed: epoll then forgot it.
		 */
		(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		*link = w->next;
		free(w);
		return;
	}
}

void
mk_loop_timer_arm(
    struct mk_loop *loop, struct mk_loop_timer *timer, int64_t due_ms)
{
	if (!timer->armed) {
		timer->prev = NULL;
		timer->next = loop->timers;
		if (loop->timers != NULL)
			loop->timers->prev = timer;
		loop->timers = timer;
		timer->armed = true;
	}
	timer->due_ms = due_ms;
}

void
mk_loop_timer_disarm(struct mk_loop *loop, struct mk_loop_timer *timer)
{
	if (!timer->armed)
		return;
	if (timer->prev != NULL)
		timer->prev->next = timer->next;
	else
		loop->timers = timer->next;
	if (timer->next != NULL)
		timer->next->prev = timer->prev;
	timer->prev = timer->next = NULL;
	timer->armed = false;
}

int64_t
mk_loop_timeout(const struct mk_loop *loop, int64_t now_ms)
{
	int64_t best = -1;

	for (const struct mk_loop_timer *t = loop->timers; t != NULL;
	     t = t->next) {
		int64_t left = t->due_ms > now_ms ? t->due_ms - now_ms : 0;

		if (best < 0 || left < best)
			best = left;
	}
	return best;
}

void
mk_loop_run(struct mk_loop *loop, int64_t now_ms)
{
	struct epoll_event events[EVENTS_PER_RUN];
	int n;

	do {
		n = epoll_wait(loop->epfd, events, EVENTS_PER_RUN, 0);
	} while (n < 0 && errno == EINTR);
	for (int i = 0; i < n; i++) {
		struct watch *w = find_watch(loop, events[i].data.fd);
		unsigned what = 0;

		if (w == NULL)
			/* unwatched by an earlier callback of this batch */
			continue;
		if (events[i].events & EPOLLIN)
			what |= MK_LOOP_IN;
		if (events[i].events & EPOLLOUT)
			what |= MK_LOOP_OUT;
		if (events[i].events & (EPOLLERR | EPOLLHUP))
			what |= MK_LOOP_ERR;
		w->fn(w->arg, w->fd, what);
	}
	/*
	 * A fired timer may arm others: look again from the start each time,
	 * but a bounded number of times, so a timer re-armed for "now" cannot
	 * spin here (it fires on the worker's next turn).
	 */
	for (int fired = 0; fired < TIMERS_PER_RUN; fired++) {
		struct mk_loop_timer *t = loop->timers;

		while (t != NULL && t->due_ms > now_ms)
			t = t->next;
		if (t == NULL)
			break;
		mk_loop_timer_disarm(loop, t);
		t->fn(t->arg);
	}
}
