/*
 * The listening socket's accept queue (server layer); see listen_queue.h.
 * Linux tells it two ways, measured on this project's kernels:
 *  - TCP: getsockopt(TCP_INFO) on the listening socket, whose
 *    tcpi_unacked is the accept queue and tcpi_sacked the backlog;
 *  - unix: no ioctl (SIOCINQ is EINVAL on a listener) and /proc/net/unix
 *    shows neither number, but sock_diag does: a NETLINK_SOCK_DIAG
 *    request for the socket's inode with UDIAG_SHOW_RQLEN answers the
 *    queue (udiag_rqueue) and the backlog (udiag_wqueue), as `ss -xl`
 *    prints them. One netlink socket per look, about 20 µs, once a second.
 * It calls nothing of the project's.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/listen_queue.h"

/* TCP_LISTEN of the kernel's socket states, as unix_diag's filter takes it. */
#define STATE_LISTEN 10

static int
tcp_queue(int fd, unsigned *queued, unsigned *limit)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
		return -1;
	*queued = info.tcpi_unacked;
	*limit = info.tcpi_sacked;
	return 0;
}

/* Finds UNIX_DIAG_RQLEN in the answer's attributes. */
static int
read_rqlen(
    const struct nlmsghdr *h, size_t got, unsigned *queued, unsigned *limit)
{
	const struct unix_diag_msg *msg;
	const struct rtattr *attr;
	int len;

	if (!NLMSG_OK(h, got) || h->nlmsg_type == NLMSG_ERROR ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(*msg))) {
		errno = EPROTO;
		return -1;
	}
	msg = NLMSG_DATA(h);
	attr = (const struct rtattr *)(msg + 1);
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
	for (; RTA_OK(attr, len); attr = RTA_NEXT(attr, len)) {
		const struct unix_diag_rqlen *rqlen = RTA_DATA(attr);

		if (attr->rta_type != UNIX_DIAG_RQLEN ||
		    RTA_PAYLOAD(attr) < sizeof(*rqlen))
			continue;
		*queued = rqlen->udiag_rqueue;
		*limit = rqlen->udiag_wqueue;
		return 0;
	}
	errno = EPROTO;
	return -1;
}

static int
unix_queue(int fd, unsigned *queued, unsigned *limit)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req req;
	} ask;
	/* The answer: one message with a few attributes. */
	union {
		struct nlmsghdr h;
		char bytes[1024];
	} answer;
	struct timeval timeout = { .tv_sec = 0, .tv_usec = 200000 };
	struct stat st;
	ssize_t got;
	int nl, rc = -1;

	if (fstat(fd, &st) != 0)
		return -1;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	memset(&ask, 0, sizeof(ask));
	ask.h.nlmsg_len = sizeof(ask);
	ask.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	ask.h.nlmsg_flags = NLM_F_REQUEST;
	ask.req.sdiag_family = AF_UNIX;
	ask.req.udiag_states = 1u << STATE_LISTEN;
	ask.req.udiag_ino = (unsigned)st.st_ino;
	ask.req.udiag_show = UDIAG_SHOW_RQLEN;
	/* No cookie: the inode alone names the socket. */
	ask.req.udiag_cookie[0] = ask.req.udiag_cookie[1] = ~0u;
	/* The kernel answers at once; the master must never hang on it. */
	if (setsockopt(
		nl, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) == 0 &&
	    send(nl, &ask, sizeof(ask), 0) == (ssize_t)sizeof(ask)) {
		do
			got = recv(nl, &answer, sizeof(answer), 0);
		while (got < 0 && errno == EINTR);
		if (got > 0)
			rc = read_rqlen(&answer.h, (size_t)got, queued, limit);
	}
	close(nl);
	return rc;
}

int
mk_listen_queue(int fd, unsigned *queued, unsigned *limit)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		return -1;
	if (addr.ss_family == AF_UNIX)
		return unix_queue(fd, queued, limit);
	if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)
		return tcp_queue(fd, queued, limit);
	errno = EAFNOSUPPORT;
	return -1;
}
