/*
 * The HTTP embedder (search layer); see embedder.h. A minimal HTTP/1.1
 * client for one exchange per embedding with a local model server:
 * resolve, connect without blocking, send one POST with
 * "Connection: close", read the answer whole (Content-Length, chunked,
 * or up to the close) under one deadline for the whole exchange, then
 * hand the body to mk_embed_parse_response(). http only: a TLS client
 * does not belong in a worker that a local server or a proxy can serve.
 *
 * It calls core/ (buffers, JSON string escaping, clock, log). The
 * embedder owns its parsed URL and model name; each embedding owns its
 * socket and two heap buffers, released on every path before it returns.
 * Failures are logged at the edges of an outage, as store/cache.c does,
 * so a dead model server writes one line, not one per search.
 *
 * Codes: MK_EUNAVAIL for anything the network or the server did wrong
 * (resolve, refuse, time out, a status other than 200, a malformed or
 * truncated or oversized answer), MK_EINTERNAL for a 200 whose body is
 * not a vector of dim numbers (a misconfigured dim or model), MK_ENOMEM.
 * getaddrinfo() cannot be bounded by the deadline: use an address or a
 * name in /etc/hosts.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/hash.h"
#include "search/embedder.h"

#define TEXT_MAX (64 * 1024)          /* as the hash embedder reads */
#define ANSWER_MAX (4 * 1024 * 1024)  /* whole answer, head and body */
#define HEAD_MAX (64 * 1024)
#define LINE_MAX_CHUNKED 1024         /* a chunk-size or trailer line */
#define READ_SIZE (16 * 1024)

/* After a failure, how long embeddings fail at once before one is tried. */
#define EMBED_RETRY_MS 1000

struct http_embedder {
	struct mk_embedder base;   /* first: the ops cast back to this */
	char host[256];            /* for getaddrinfo: no brackets */
	char port[6];
	char host_header[264];     /* as sent in Host: */
	char path[1025];
	char model[129];           /* "": no "model" member is sent */
	int timeout_ms;
	char status_why[48];       /* the reason logged for a bad status */
	bool down;                 /* the last embedding failed */
	int64_t down_since_ms;
	int64_t retry_at_ms;       /* while down, fail at once until then */
};

/* How the answer's body ends. */
enum framing {
	FRAME_LENGTH,   /* Content-Length */
	FRAME_CHUNKED,  /* Transfer-Encoding: chunked */
	FRAME_CLOSE,    /* neither: the server closes */
};

enum chunk_state {
	CHUNK_SIZE,     /* reading a chunk-size line */
	CHUNK_DATA,
	CHUNK_DATA_END, /* the CRLF after a chunk's data */
	CHUNK_TRAILER,  /* trailer lines up to the empty one */
};

/*
 * Reading state of one answer in buf (offsets, as buf moves when it
 * grows). A chunked body is decoded in place: decoded bytes are written
 * at body + body_len, never ahead of the raw byte being read.
 */
struct answer {
	size_t head_start;   /* where the current status line starts */
	size_t scan_from;    /* where to look for the end of the head next */
	size_t body;         /* offset of the body; 0 until the head is read */
	int status;
	enum framing framing;
	size_t content_length;
	size_t body_len;     /* body bytes ready (decoded when chunked) */
	size_t read_at;      /* chunked: next raw byte */
	size_t chunk_left;
	enum chunk_state chunk_state;
	bool complete;
};

/* Finds '\n' in buf[from, to). */
static const char *
find_newline(const char *buf, size_t from, size_t to)
{
	return to > from ? memchr(buf + from, '\n', to - from) : NULL;
}

static bool
header_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* Parses the header fields of buf[from, to) (lines ending CRLF). */
static int
parse_fields(struct answer *a, const char *buf, size_t from, size_t to,
    const char **why)
{
	bool have_length = false;

	a->framing = FRAME_CLOSE;
	while (from < to) {
		const char *line = buf + from, *end = memchr(line, '\r', to - from);
		const char *colon, *value, *value_end;
		size_t name_len;

		if (end == NULL || (size_t)(end - buf) + 1 >= to || end[1] != '\n') {
			*why = "a header line without CRLF";
			return -1;
		}
		from = (size_t)(end - buf) + 2;
		colon = memchr(line, ':', (size_t)(end - line));
		if (colon == NULL || colon == line || line[0] == ' ' || line[0] == '\t') {
			*why = "a malformed header line";
			return -1;
		}
		name_len = (size_t)(colon - line);
		value = colon + 1;
		while (value < end && (*value == ' ' || *value == '\t'))
			value++;
		value_end = end;
		while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
			value_end--;
		if (header_is(line, name_len, "transfer-encoding")) {
			if ((size_t)(value_end - value) != 7 || strncasecmp(value, "chunked", 7) != 0) {
				*why = "a transfer coding other than chunked";
				return -1;
			}
			a->framing = FRAME_CHUNKED;
		} else if (header_is(line, name_len, "content-length")) {
			size_t n = 0;

			if (value == value_end) {
				*why = "an empty Content-Length";
				return -1;
			}
			for (const char *p = value; p < value_end; p++) {
				if (*p < '0' || *p > '9' || n > ANSWER_MAX) {
					*why = "a bad or too large Content-Length";
					return -1;
				}
				n = n * 10 + (size_t)(*p - '0');
			}
			if (n > ANSWER_MAX || (have_length && n != a->content_length)) {
				*why = "a bad or too large Content-Length";
				return -1;
			}
			a->content_length = n;
			have_length = true;
		}
	}
	/* RFC 9112 6.3: chunked wins over a Content-Length. */
	if (have_length && a->framing != FRAME_CHUNKED)
		a->framing = FRAME_LENGTH;
	return 0;
}

/*
 * Reads the status line and the fields once the head is whole. Returns
 * 1 when a head was read, 0 when more bytes are needed, -1 when bad.
 * Interim 1xx heads are skipped.
 */
static int
read_head(struct answer *a, const char *buf, size_t len, const char **why)
{
	for (;;) {
		const char *start = buf + a->head_start, *blank, *eol;
		size_t from = a->scan_from > a->head_start + 3 ? a->scan_from - 3 : a->head_start;
		size_t end;

		blank = len > from ? memmem(buf + from, len - from, "\r\n\r\n", 4) : NULL;
		if (blank == NULL) {
			a->scan_from = len;
			if (len - a->head_start > HEAD_MAX) {
				*why = "a header block over 64 KiB";
				return -1;
			}
			return 0;
		}
		end = (size_t)(blank - buf) + 4;
		eol = memchr(start, '\r', (size_t)(blank - start) + 1);
		if (eol - start < 12 || memcmp(start, "HTTP/1.", 7) != 0 ||
		    (start[7] != '0' && start[7] != '1') || start[8] != ' ' ||
		    start[9] < '1' || start[9] > '5' || start[10] < '0' ||
		    start[10] > '9' || start[11] < '0' || start[11] > '9' ||
		    (eol - start > 12 && start[12] != ' ')) {
			*why = "a malformed status line";
			return -1;
		}
		a->status = (start[9] - '0') * 100 + (start[10] - '0') * 10 + (start[11] - '0');
		if (a->status >= 100 && a->status < 200 && a->status != 101) {
			a->head_start = a->scan_from = end;
			continue;
		}
		if (parse_fields(a, buf, (size_t)(eol - buf) + 2, end - 2, why) != 0)
			return -1;
		a->body = a->read_at = end;
		a->chunk_state = CHUNK_SIZE;
		return 1;
	}
}

/* Parses a chunk-size line buf[from, nl). Returns 0 or -1. */
static int
chunk_size(const char *buf, size_t from, size_t nl, size_t *size)
{
	size_t n = 0, i = from;

	for (; i < nl; i++) {
		char c = buf[i];
		unsigned digit;

		if (c >= '0' && c <= '9')
			digit = (unsigned)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			digit = (unsigned)((c | 0x20) - 'a' + 10);
		else
			break;
		if (n > ANSWER_MAX)
			return -1;
		n = n * 16 + digit;
	}
	if (i == from || n > ANSWER_MAX)
		return -1;
	/* Then optional whitespace and extensions, up to CRLF. */
	if (buf[nl - 1] != '\r')
		return -1;
	if (i < nl - 1 && buf[i] != ';' && buf[i] != ' ' && buf[i] != '\t')
		return -1;
	*size = n;
	return 0;
}

/*
 * Decodes as much of a chunked body as has arrived. Returns 1 when the
 * last chunk and trailers are read, 0 when more is needed, -1 when bad.
 */
static int
read_chunked(struct answer *a, char *buf, size_t len, const char **why)
{
	const char *nl;
	size_t n;

	for (;;) {
		switch (a->chunk_state) {
		case CHUNK_SIZE:
		case CHUNK_TRAILER:
			nl = find_newline(buf, a->read_at, len);
			if (nl == NULL) {
				if (len - a->read_at > LINE_MAX_CHUNKED) {
					*why = "a chunk line over 1 KiB";
					return -1;
				}
				return 0;
			}
			n = (size_t)(nl - buf);
			if (a->chunk_state == CHUNK_TRAILER) {
				if (n > a->read_at && buf[n - 1] != '\r') {
					*why = "a trailer line without CRLF";
					return -1;
				}
				if (n == a->read_at + 1) /* the empty line */
					return 1;
				if (n == a->read_at) {
					*why = "a trailer line without CRLF";
					return -1;
				}
				a->read_at = n + 1;
				break;
			}
			if (n == a->read_at || chunk_size(buf, a->read_at, n, &a->chunk_left) != 0) {
				*why = "a malformed chunk size";
				return -1;
			}
			a->read_at = n + 1;
			if (a->chunk_left > ANSWER_MAX - a->body_len) {
				*why = "a chunked body over 4 MiB";
				return -1;
			}
			a->chunk_state = a->chunk_left == 0 ? CHUNK_TRAILER : CHUNK_DATA;
			break;
		case CHUNK_DATA:
			n = len - a->read_at < a->chunk_left ? len - a->read_at : a->chunk_left;
			memmove(buf + a->body + a->body_len, buf + a->read_at, n);
			a->body_len += n;
			a->read_at += n;
			a->chunk_left -= n;
			if (a->chunk_left > 0)
				return 0;
			a->chunk_state = CHUNK_DATA_END;
			break;
		case CHUNK_DATA_END:
			if (len - a->read_at < 2)
				return 0;
			if (buf[a->read_at] != '\r' || buf[a->read_at + 1] != '\n') {
				*why = "chunk data not followed by CRLF";
				return -1;
			}
			a->read_at += 2;
			a->chunk_state = CHUNK_SIZE;
			break;
		}
	}
}

/*
 * Advances the reading of the answer over the len bytes in buf. Returns
 * 1 when it is complete (or its status is not 200: the body is then not
 * wanted), 0 when more is needed, -1 when malformed.
 */
static int
answer_progress(struct answer *a, char *buf, size_t len, const char **why)
{
	int rc;

	if (a->body == 0) {
		if ((rc = read_head(a, buf, len, why)) <= 0)
			return rc;
		if (a->status != 200)
			return 1;
	}
	switch (a->framing) {
	case FRAME_LENGTH:
		a->body_len = len - a->body < a->content_length ? len - a->body : a->content_length;
		return a->body_len == a->content_length;
	case FRAME_CHUNKED:
		return read_chunked(a, buf, len, why);
	case FRAME_CLOSE:
		a->body_len = len - a->body;
		return 0;
	}
	return -1;
}

/* Milliseconds left before deadline; 0 when it has passed. */
static int
remaining_ms(int64_t deadline)
{
	int64_t left = deadline - mk_clock_mono_ms();

	return left > 0 ? (int)left : 0;
}

/* Waits for events on fd until deadline. Returns 1, 0 on timeout, -1. */
static int
wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int left = remaining_ms(deadline), n;

		if (left == 0)
			return 0;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* One non-blocking connect to ai. Returns the socket, or -1 with *why. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline, const char **why)
{
	int fd, one = 1, soerr = 0, w;
	socklen_t soerr_len = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	/* One request, one answer: no reason to wait for Nagle. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		*why = strerror(errno);
		goto fail;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		*why = strerror(errno);
		goto fail;
	}
	w = wait_for(fd, POLLOUT, deadline);
	if (w <= 0) {
		*why = w == 0 ? "connect timed out" : strerror(errno);
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0) {
		*why = strerror(errno);
		goto fail;
	}
	if (soerr != 0) {
		*why = strerror(soerr);
		goto fail;
	}
	return fd;
fail:
	(void)close(fd);
	return -1;
}

/* Connects to the first address of the host that answers. */
static int
connect_host(const struct http_embedder *e, int64_t deadline, const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *list, *ai;
	int fd = -1, rc;

	rc = getaddrinfo(e->host, e->port, &hints, &list);
	if (rc != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	for (ai = list; ai != NULL && fd < 0 && remaining_ms(deadline) > 0; ai = ai->ai_next)
		fd = connect_one(ai, deadline, why);
	if (fd < 0 && remaining_ms(deadline) == 0)
		*why = "connect timed out";
	freeaddrinfo(list);
	return fd;
}

static int
send_all(int fd, const char *p, size_t len, int64_t deadline, const char **why)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_for(fd, POLLOUT, deadline);

			if (w > 0)
				continue;
			*why = w == 0 ? "sending timed out" : strerror(errno);
			return -1;
		}
		*why = n < 0 ? strerror(errno) : "send wrote nothing";
		return -1;
	}
	return 0;
}

/*
 * Reads the answer into buf until it is complete. Returns MK_OK with a
 * complete answer in *a, MK_EUNAVAIL with *why, or MK_ENOMEM.
 */
static enum mk_err
receive(int fd, struct mk_buf *buf, struct answer *a, int64_t deadline,
    const char **why)
{
	for (;;) {
		size_t room = ANSWER_MAX - buf->len;
		ssize_t n;
		int w, rc;

		if (room == 0) {
			*why = "an answer over 4 MiB";
			return MK_EUNAVAIL;
		}
		if (room > READ_SIZE)
			room = READ_SIZE;
		if (!mk_buf_reserve(buf, room))
			return MK_ENOMEM;
		n = recv(fd, buf->data + buf->len, room, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*why = strerror(errno);
				return MK_EUNAVAIL;
			}
			w = wait_for(fd, POLLIN, deadline);
			if (w <= 0) {
				*why = w == 0 ? "no whole answer within the timeout" : strerror(errno);
				return MK_EUNAVAIL;
			}
			continue;
		}
		if (n == 0) {
			if (a->body != 0 && (a->status != 200 || a->framing == FRAME_CLOSE))
				return MK_OK;
			*why = "the connection closed before the answer was whole";
			return MK_EUNAVAIL;
		}
		buf->len += (size_t)n;
		buf->data[buf->len] = '\0';
		rc = answer_progress(a, buf->data, buf->len, why);
		if (rc < 0)
			return MK_EUNAVAIL;
		if (rc > 0)
			return MK_OK;
		if (remaining_ms(deadline) == 0) {
			*why = "no whole answer within the timeout";
			return MK_EUNAVAIL;
		}
	}
}

/* The request, whole: head and JSON body. */
static void
build_request(const struct http_embedder *e, const char *text, size_t len,
    struct mk_buf *request, struct mk_buf *body)
{
	/* Cut on a character boundary so the cut adds no U+FFFD. */
	if (len > TEXT_MAX) {
		len = TEXT_MAX;
		for (int k = 0; k < 3 && ((unsigned char)text[len] & 0xC0) == 0x80; k++)
			len--;
	}
	mk_buf_puts(body, "{");
	if (e->model[0] != '\0') {
		mk_buf_puts(body, "\"model\":");
		mk_json_cstr(body, e->model);
		mk_buf_putc(body, ',');
	}
	mk_buf_puts(body, "\"input\":");
	mk_json_string(body, text, len);
	mk_buf_putc(body, '}');
	mk_buf_printf(request, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nAccept: application/json\r\n"
	    "User-Agent: markets\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	    e->path, e->host_header, body->len);
	mk_buf_append(request, body->data, body->len);
}

/* Logs the edges of an outage (the first failure, the recovery). */
static void
report(struct http_embedder *e, enum mk_err rc, const char *why)
{
	if (rc == MK_OK) {
		if (e->down) {
			mk_log(MK_LOG_WARN, "embedder %s is back after %lld ms", e->base.name,
			    (long long)(mk_clock_mono_ms() - e->down_since_ms));
			e->down = false;
		}
		return;
	}
	mk_log(e->down ? MK_LOG_DEBUG : MK_LOG_ERROR, "embedder %s at http://%s%s: %s (%s)",
	    e->base.name, e->host_header, e->path, why, mk_err_name(rc));
	if (!e->down) {
		e->down = true;
		e->down_since_ms = mk_clock_mono_ms();
	}
	e->retry_at_ms = mk_clock_mono_ms() + EMBED_RETRY_MS;
}

static enum mk_err
http_embed(struct mk_embedder *embedder, const char *text, size_t len,
    float *out)
{
	struct http_embedder *e = (struct http_embedder *)embedder;
	int64_t deadline = mk_clock_mono_ms() + e->timeout_ms;
	struct mk_buf request, body, answer_buf;
	struct answer a = { 0 };
	const char *why = "out of memory";
	enum mk_err rc = MK_ENOMEM;
	int fd = -1;

	memset(out, 0, embedder->dim * sizeof(*out));
	/*
	 * A circuit breaker: while the server is failing, one attempt a
	 * second, not one per request each waiting out the timeout (a search
	 * would hold its worker for embedder_timeout).
	 */
	if (e->down && mk_clock_mono_ms() < e->retry_at_ms)
		return MK_EUNAVAIL;
	mk_buf_init(&request, NULL);
	mk_buf_init(&body, NULL);
	mk_buf_init(&answer_buf, NULL);
	build_request(e, text, len, &request, &body);
	if (request.oom || body.oom)
		goto done;
	rc = MK_EUNAVAIL;
	if ((fd = connect_host(e, deadline, &why)) < 0)
		goto done;
	if (send_all(fd, request.data, request.len, deadline, &why) != 0)
		goto done;
	if ((rc = receive(fd, &answer_buf, &a, deadline, &why)) != MK_OK)
		goto done;
	if (a.status != 200) {
		(void)snprintf(e->status_why, sizeof(e->status_why),
		    "answered status %d", a.status);
		why = e->status_why;
		rc = MK_EUNAVAIL;
		goto done;
	}
	rc = mk_embed_parse_response(answer_buf.data + a.body, a.body_len,
	    embedder->dim, out);
	if (rc != MK_OK) {
		why = "the answer is not an embedding of the expected dimension";
		goto done;
	}
	mk_embed_normalize(out, embedder->dim);
done:
	if (rc == MK_ENOMEM)
		why = "out of memory";
	if (fd >= 0)
		(void)close(fd);
	mk_buf_release(&request);
	mk_buf_release(&body);
	mk_buf_release(&answer_buf);
	report(e, rc, why);
	return rc;
}

static void
http_destroy(struct mk_embedder *embedder)
{
	free(embedder);
}

static const struct mk_embedder_ops http_ops = {
	.embed = http_embed,
	.destroy = http_destroy,
};

static bool
is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Splits "http://host[:port][/path]" into e. Returns 0 or -1 with err. */
static int
parse_url(struct http_embedder *e, const char *url, char *err, size_t errlen)
{
	const char *p, *authority, *host, *host_end, *port = NULL, *path;
	long port_num = 80;

	if (strncasecmp(url, "https://", 8) == 0) {
		mk_errf(err, errlen, "https is not supported: use a local model server or a TLS-terminating proxy");
		return -1;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		mk_errf(err, errlen, "embedder_url must be http://host[:port]/path");
		return -1;
	}
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#') {
			mk_errf(err, errlen, "embedder_url must be printable ASCII without spaces or '#'");
			return -1;
		}
	}
	authority = url + 7;
	path = authority + strcspn(authority, "/?");
	if (memchr(authority, '@', (size_t)(path - authority)) != NULL) {
		mk_errf(err, errlen, "embedder_url must not hold user information");
		return -1;
	}
	if (*authority == '[') {
		host = authority + 1;
		host_end = memchr(host, ']', (size_t)(path - host));
		if (host_end == NULL || host_end == host ||
		    strspn(host, "0123456789abcdefABCDEF:.") != (size_t)(host_end - host)) {
			mk_errf(err, errlen, "embedder_url has a malformed IPv6 address");
			return -1;
		}
		p = host_end + 1;
	} else {
		host = authority;
		for (p = host; p < path && *p != ':'; p++) {
			if (!is_host_char(*p)) {
				mk_errf(err, errlen, "embedder_url has a malformed host");
				return -1;
			}
		}
		host_end = p;
		if (host_end == host) {
			mk_errf(err, errlen, "embedder_url has no host");
			return -1;
		}
	}
	if (p < path) {
		char *end;

		if (*p != ':' || p + 1 == path || path - (p + 1) > 5 ||
		    strspn(p + 1, "0123456789") < (size_t)(path - (p + 1))) {
			mk_errf(err, errlen, "embedder_url has a malformed port");
			return -1;
		}
		port = p + 1;
		port_num = strtol(port, &end, 10);
		if (end != path || port_num < 1 || port_num > 65535) {
			mk_errf(err, errlen, "embedder_url port must be 1 to 65535");
			return -1;
		}
	}
	if ((size_t)(host_end - host) >= sizeof(e->host) ||
	    strlen(path) + 1 >= sizeof(e->path)) {
		mk_errf(err, errlen, "embedder_url is too long");
		return -1;
	}
	memcpy(e->host, host, (size_t)(host_end - host));
	e->host[host_end - host] = '\0';
	(void)snprintf(e->port, sizeof(e->port), "%ld", port_num);
	/* A bare host or a query without a path asks for "/". */
	(void)snprintf(e->path, sizeof(e->path), "%s%s", *path == '/' ? "" : "/", path);
	(void)snprintf(e->host_header, sizeof(e->host_header), "%s%s%s%s%s",
	    *authority == '[' ? "[" : "", e->host, *authority == '[' ? "]" : "",
	    port_num == 80 ? "" : ":", port_num == 80 ? "" : e->port);
	return 0;
}

/* FNV-1a of s, for the name of a model too long to spell out. */
static uint64_t
name_hash(const char *s)
{
	return mk_fnv1a64(s, strlen(s));
}

/*
 * Makes an HTTP embedder. Returns it (free with mk_embedder_free()), or
 * NULL with a reason in err. Its name is "http:" and the model; a model
 * name too long for the 64-byte name keeps its first 40 bytes and a hash
 * of the whole, so two long names never share vectors.
 */
struct mk_embedder *
mk_embedder_http_new(const char *url, const char *model, unsigned dim,
    int timeout_ms, char *err, size_t errlen)
{
	struct http_embedder *e;
	size_t model_len = strlen(model);

	if (dim < 8 || dim > MK_EMBED_MAX_DIM) {
		mk_errf(err, errlen, "embedding_dim must be 8 to %d", MK_EMBED_MAX_DIM);
		return NULL;
	}
	if (timeout_ms <= 0) {
		mk_errf(err, errlen, "the embedder timeout must be positive");
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (model_len >= sizeof(e->model)) {
		mk_errf(err, errlen, "embedder_model is longer than %zu bytes", sizeof(e->model) - 1);
		free(e);
		return NULL;
	}
	if (parse_url(e, url, err, errlen) != 0) {
		free(e);
		return NULL;
	}
	memcpy(e->model, model, model_len + 1);
	e->base.ops = &http_ops;
	e->base.dim = dim;
	e->timeout_ms = timeout_ms;
	if (5 + model_len < sizeof(e->base.name))
		(void)snprintf(e->base.name, sizeof(e->base.name), "http:%s", model);
	else
		(void)snprintf(e->base.name, sizeof(e->base.name), "http:%.40s~%016llx",
		    model, (unsigned long long)name_hash(model));
	return &e->base;
}

enum mk_err
mk_embed_http_read_answer(const char *bytes, size_t len, size_t step,
    int *status, size_t *body_offset, size_t *body_len)
{
	struct answer a = { 0 };
	const char *why = NULL;
	char *buf;
	size_t have = 0;
	int rc = 0;

	if (len > ANSWER_MAX)
		return MK_EUNAVAIL;
	buf = malloc(len + 1);
	if (buf == NULL)
		return MK_ENOMEM;
	if (step == 0)
		step = 1;
	/* As receive() sees them: growing prefixes, NUL-terminated. */
	while (have < len && rc == 0) {
		size_t n = len - have < step ? len - have : step;

		memcpy(buf + have, bytes + have, n);
		have += n;
		buf[have] = '\0';
		rc = answer_progress(&a, buf, have, &why);
	}
	free(buf);
	/* The peer closing ends a head that is whole and a body framed by it. */
	if (rc == 0 && a.body != 0 && (a.status != 200 || a.framing == FRAME_CLOSE))
		rc = 1;
	if (rc <= 0)
		return MK_EUNAVAIL;
	*status = a.status;
	*body_offset = a.body;
	*body_len = a.body_len;
	return MK_OK;
}
