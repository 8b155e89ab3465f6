/*
 * The HTTP embedder (search layer); see embedder.h. One POST of
 * {"model","input"} per embedding to an OpenAI-compatible endpoint,
 * through libcurl: http or https, connections kept alive between
 * embeddings, the answer's body handed to mk_embed_parse_response().
 * libcurl reads the HTTP answer; this file reads nothing off the wire.
 *
 * Two ways to run an embedding, one set of options (setup()):
 *  - blocking (mk_embed): one easy handle kept by the embedder, so its
 *    connection is reused; for the job runner, the admin command and a
 *    CGI worker, which serve no other requests meanwhile.
 *  - on the worker's loop (mk_embed_start, once attached): one multi
 *    handle per worker whose sockets and timer are registered with the
 *    loop (core/loop.h) through curl's socket interface; each embedding
 *    is an easy handle added to it, and its call's done callback runs
 *    from the loop when the transfer ends, fails or times out. The
 *    multi's connection cache keeps connections alive across them.
 *
 * It calls core/ (buffers, JSON string escaping, clock, log, loop) and
 * libcurl. The embedder owns its URL, headers, easy and multi handles,
 * and the transfers in flight (each with its request body and answer
 * buffer); a cancelled or finished transfer is freed at once. Failures
 * are logged at the edges of an outage, as store/cache.c does, so a dead
 * model server writes one line, not one per search.
 *
 * Codes: MK_EUNAVAIL for anything the network or the server did wrong
 * (resolve, refuse, time out, a status other than 200, a malformed,
 * truncated or oversized answer), MK_EINTERNAL for a 200 whose body is
 * not a vector of dim numbers (a misconfigured dim or model), MK_ENOMEM.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/loop.h"
#include "search/embedder.h"

#define TEXT_MAX (64 * 1024)         /* as the hash embedder reads */
#define ANSWER_MAX (4 * 1024 * 1024) /* an answer's body */
#define KEY_MAX 4096
/* Connections a worker keeps open to the model server. */
#define MAX_CONNECTS 8

/* After a failure, how long embeddings fail at once before one is tried. */
#define EMBED_RETRY_MS 1000

struct http_embedder;

/* One POST in flight (or being made, on the blocking path). */
struct transfer {
	struct http_embedder *e;
	CURL *easy;                 /* owned, except the blocking path's */
	struct mk_embed_call *call; /* NULL on the blocking path */
	struct mk_buf body;         /* the request's JSON */
	struct mk_buf answer;
	char errbuf[CURL_ERROR_SIZE];
	struct transfer *prev, *next;
};

struct http_embedder {
	struct mk_embedder base; /* first: the ops cast back to this */
	char url[1400];          /* as checked and given to libcurl */
	char host[256];
	char port[6];
	char host_header[264];
	char path[1025];
	char model[129]; /* "": no "model" member is sent */
	int timeout_ms;
	struct curl_slist *headers;
	CURL *easy;           /* the blocking path's, made on first use */
	CURLM *multi;         /* NULL until attached to a loop */
	struct mk_loop *loop; /* not owned */
	struct mk_loop_timer timer;
	struct transfer *transfers; /* in flight on the multi */
	char status_why[48];        /* the reason logged for a bad status */
	bool down;                  /* the last embedding failed */
	int64_t down_since_ms;
	int64_t retry_at_ms; /* while down, fail at once until then */
};

/* Logs the edges of an outage (the first failure, the recovery). */
static void
report(struct http_embedder *e, enum mk_err rc, const char *why)
{
	int64_t now_ms;

	if (rc == MK_OK && !e->down)
		return; /* the common case: no clock read */
	now_ms = mk_clock_mono_ms();
	if (rc == MK_OK) {
		mk_log(MK_LOG_WARN, "embedder %s is back after %lld ms",
		    e->base.name, (long long)(now_ms - e->down_since_ms));
		e->down = false;
		return;
	}
	mk_log(e->down ? MK_LOG_DEBUG : MK_LOG_ERROR,
	    "embedder %s at %s: %s (%s)", e->base.name, e->url, why,
	    mk_err_name(rc));
	if (!e->down) {
		e->down = true;
		e->down_since_ms = now_ms;
	}
	e->retry_at_ms = now_ms + EMBED_RETRY_MS;
}

/*
 * A circuit breaker: while the server is failing, one attempt a second,
 * not one per search each waiting out the timeout.
 */
static bool
breaker_open(const struct http_embedder *e)
{
	return e->down && mk_clock_mono_ms() < e->retry_at_ms;
}

/* The request's JSON body into t->body. False when out of memory. */
static bool
build_body(const struct http_embedder *e, struct transfer *t, const char *text,
    size_t len)
{
	/* Cut on a character boundary so the cut adds no U+FFFD. */
	if (len > TEXT_MAX) {
		len = TEXT_MAX;
		for (int k = 0;
		     k < 3 && ((unsigned char)text[len] & 0xC0) == 0x80; k++)
			len--;
	}
	mk_buf_puts(&t->body, "{");
	if (e->model[0] != '\0') {
		mk_buf_puts(&t->body, "\"model\":");
		mk_json_cstr(&t->body, e->model);
		mk_buf_putc(&t->body, ',');
	}
	mk_buf_puts(&t->body, "\"input\":");
	mk_json_string(&t->body, text, len);
	mk_buf_putc(&t->body, '}');
	return !t->body.oom;
}

/* libcurl's write callback: the answer, up to ANSWER_MAX. */
static size_t
on_answer_bytes(char *bytes, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;

	(void)size; /* always 1 */
	if (t->answer.len + n > ANSWER_MAX)
		return 0; /* CURLE_WRITE_ERROR: the transfer ends */
	mk_buf_append(&t->answer, bytes, n);
	return t->answer.oom ? 0 : n;
}

/* The options of one exchange on easy. MK_OK or MK_ENOMEM. */
static enum mk_err
setup(struct http_embedder *e, CURL *easy, struct transfer *t)
{
	CURLcode c = CURLE_OK;

#define SET(option, value)                                                     \
	do {                                                                   \
		if (c == CURLE_OK)                                             \
			c = curl_easy_setopt(easy, option, value);             \
	} while (0)
	SET(CURLOPT_URL, e->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* No SIGALRM for name resolution: the worker owns its signals. */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	SET(CURLOPT_HTTPHEADER, e->headers);
	SET(CURLOPT_USERAGENT, "markets");
	SET(CURLOPT_POSTFIELDS, t->body.data);
	SET(CURLOPT_POSTFIELDSIZE, (long)t->body.len);
	SET(CURLOPT_WRITEFUNCTION, on_answer_bytes);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ANSWER_MAX);
	SET(CURLOPT_ERRORBUFFER, t->errbuf);
	SET(CURLOPT_PRIVATE, t);
#undef SET
	return c == CURLE_OK ? MK_OK : MK_ENOMEM;
}

/*
 * Judges an ended exchange: its vector into out (zeroed on failure),
 * the outage's edges logged. Returns the embedding's code.
 */
static enum mk_err
judge(struct http_embedder *e, struct transfer *t, CURLcode res, float *out)
{
	const char *why = NULL;
	enum mk_err rc;
	long status = 0;

	if (res != CURLE_OK) {
		rc = res == CURLE_OUT_OF_MEMORY || t->answer.oom ? MK_ENOMEM
								 : MK_EUNAVAIL;
		if (res == CURLE_WRITE_ERROR || res == CURLE_FILESIZE_EXCEEDED)
			why = t->answer.oom ? "out of memory"
					    : "an answer over 4 MiB";
		else
			why = t->errbuf[0] != '\0' ? t->errbuf
						   : curl_easy_strerror(res);
	} else if (curl_easy_getinfo(
		       t->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status != 200) {
		(void)snprintf(e->status_why, sizeof(e->status_why),
		    "answered status %ld", status);
		why = e->status_why;
		rc = MK_EUNAVAIL;
	} else {
		rc = mk_embed_parse_response(
		    t->answer.data != NULL ? t->answer.data : "", t->answer.len,
		    e->base.dim, out);
		if (rc != MK_OK)
			why = "the answer is not an embedding of the expected "
			      "dimension";
		else
			mk_embed_normalize(out, e->base.dim);
	}
	if (rc != MK_OK)
		memset(out, 0, e->base.dim * sizeof(*out));
	report(e, rc, why);
	return rc;
}

static void
transfer_release(struct transfer *t)
{
	mk_buf_release(&t->body);
	mk_buf_release(&t->answer);
}

/* The blocking embedding (see embedder.h). */
static enum mk_err
http_embed(
    struct mk_embedder *embedder, const char *text, size_t len, float *out)
{
	struct http_embedder *e = (struct http_embedder *)embedder;
	struct transfer t = { .e = e };
	enum mk_err rc;

	memset(out, 0, embedder->dim * sizeof(*out));
	if (breaker_open(e))
		return MK_EUNAVAIL;
	mk_buf_init(&t.body, NULL);
	mk_buf_init(&t.answer, NULL);
	if (e->easy == NULL)
		e->easy = curl_easy_init();
	t.easy = e->easy;
	if (e->easy == NULL || !build_body(e, &t, text, len) ||
	    setup(e, e->easy, &t) != MK_OK) {
		report(e, MK_ENOMEM, "out of memory");
		transfer_release(&t);
		return MK_ENOMEM;
	}
	rc = judge(e, &t, curl_easy_perform(e->easy), out);
	/* The buffers go; the handle stays for its connection. */
	(void)curl_easy_setopt(e->easy, CURLOPT_ERRORBUFFER, NULL);
	transfer_release(&t);
	return rc;
}

static void
transfer_unlink(struct http_embedder *e, struct transfer *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		e->transfers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

/* Takes t off the multi and frees it. */
static void
transfer_free(struct http_embedder *e, struct transfer *t)
{
	(void)curl_multi_remove_handle(e->multi, t->easy);
	curl_easy_cleanup(t->easy);
	transfer_unlink(e, t);
	transfer_release(t);
	free(t);
}

/* Hands every ended transfer's outcome to its call. */
static void
collect(struct http_embedder *e)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
		struct transfer *t = NULL;
		struct mk_embed_call *call;
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			(char **)&t) != CURLE_OK ||
		    t == NULL)
			continue;
		call = t->call;
		call->rc = judge(e, t, res, call->out);
		call->transfer = NULL;
		transfer_free(e, t); /* msg is invalid from here on */
		call->done(call->arg);
	}
}

/*
 * Lets curl act on fd (or on its timeout), then hands out what finished.
 * A code other than OK is logged: curl has then failed the transfers it
 * concerns, which collect() answers.
 */
static void
socket_action(struct http_embedder *e, curl_socket_t fd, int mask)
{
	int running = 0;
	CURLMcode mc = curl_multi_socket_action(e->multi, fd, mask, &running);

	if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
		mk_log(MK_LOG_ERROR, "embedder %s: %s", e->base.name,
		    curl_multi_strerror(mc));
	collect(e);
}

static void
on_socket_ready(void *arg, int fd, unsigned events)
{
	struct http_embedder *e = arg;
	int mask = 0;

	if (events & MK_LOOP_IN)
		mask |= CURL_CSELECT_IN;
	if (events & MK_LOOP_OUT)
		mask |= CURL_CSELECT_OUT;
	if (events & MK_LOOP_ERR)
		mask |= CURL_CSELECT_ERR;
	socket_action(e, fd, mask);
}

static void
on_timer(void *arg)
{
	socket_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: what to wait for on a socket of curl's. */
static int
on_curl_socket(
    CURL *easy, curl_socket_t fd, int what, void *arg, void *socket_arg)
{
	struct http_embedder *e = arg;
	unsigned events = 0;

	(void)easy;
	(void)socket_arg;
	if (what == CURL_POLL_REMOVE) {
		mk_loop_unwatch(e->loop, fd);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= MK_LOOP_IN;
	if (what & CURL_POLL_OUT)
		events |= MK_LOOP_OUT;
	if (mk_loop_watch(e->loop, fd, events, on_socket_ready, e) != MK_OK) {
		mk_log(MK_LOG_ERROR, "embedder %s: cannot watch a socket: %s",
		    e->base.name, strerror(errno));
		return -1; /* curl fails every transfer of the multi handle */
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl next wants to be called without I/O. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct http_embedder *e = arg;

	(void)multi;
	if (timeout_ms < 0)
		mk_loop_timer_disarm(e->loop, &e->timer);
	else
		mk_loop_timer_arm(
		    e->loop, &e->timer, mk_clock_mono_ms() + timeout_ms);
	return 0;
}

static enum mk_err
http_attach(struct mk_embedder *embedder, struct mk_loop *loop)
{
	struct http_embedder *e = (struct http_embedder *)embedder;
	CURLMcode c = CURLM_OK;

	if (e->multi != NULL)
		return MK_EINTERNAL;
	if ((e->multi = curl_multi_init()) == NULL)
		return MK_ENOMEM;
	e->loop = loop;
	e->timer.fn = on_timer;
	e->timer.arg = e;
#define MSET(option, value)                                                    \
	do {                                                                   \
		if (c == CURLM_OK)                                             \
			c = curl_multi_setopt(e->multi, option, value);        \
	} while (0)
	MSET(CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	MSET(CURLMOPT_SOCKETDATA, e);
	MSET(CURLMOPT_TIMERFUNCTION, on_curl_timer);
	MSET(CURLMOPT_TIMERDATA, e);
	MSET(CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
#undef MSET
	if (c != CURLM_OK) {
		(void)curl_multi_cleanup(e->multi);
		e->multi = NULL;
		e->loop = NULL;
		return MK_ENOMEM;
	}
	return MK_OK;
}

static enum mk_err
http_start(struct mk_embedder *embedder, struct mk_embed_call *call,
    const char *text, size_t len)
{
	struct http_embedder *e = (struct http_embedder *)embedder;
	struct transfer *t;
	CURLMcode mc;

	if (e->multi == NULL)
		return call->rc = http_embed(embedder, text, len, call->out);
	memset(call->out, 0, embedder->dim * sizeof(*call->out));
	if (breaker_open(e))
		return call->rc = MK_EUNAVAIL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	t->e = e;
	t->call = call;
	mk_buf_init(&t->body, NULL);
	mk_buf_init(&t->answer, NULL);
	if ((t->easy = curl_easy_init()) == NULL ||
	    !build_body(e, t, text, len) || setup(e, t->easy, t) != MK_OK) {
		if (t->easy != NULL)
			curl_easy_cleanup(t->easy);
		transfer_release(t);
		free(t);
		goto oom;
	}
	if ((mc = curl_multi_add_handle(e->multi, t->easy)) != CURLM_OK) {
		/* A multi handle a callback failed refuses new transfers. */
		curl_easy_cleanup(t->easy);
		transfer_release(t);
		free(t);
		report(e, MK_EUNAVAIL, curl_multi_strerror(mc));
		return call->rc = MK_EUNAVAIL;
	}
	t->next = e->transfers;
	if (e->transfers != NULL)
		e->transfers->prev = t;
	e->transfers = t;
	call->transfer = t;
	return MK_EPENDING;
oom:
	report(e, MK_ENOMEM, "out of memory");
	return call->rc = MK_ENOMEM;
}

static void
http_cancel(struct mk_embedder *embedder, struct mk_embed_call *call)
{
	struct http_embedder *e = (struct http_embedder *)embedder;
	struct transfer *t = call->transfer;

	if (t == NULL || e->multi == NULL)
		return;
	call->transfer = NULL;
	transfer_free(e, t);
}

static void
http_destroy(struct mk_embedder *embedder)
{
	struct http_embedder *e = (struct http_embedder *)embedder;

	if (e->multi != NULL) {
		/*
		 * None are left: the worker frees its connections, which
		 * cancel their calls, before the app. A call lives in a
		 * request's arena, so nothing here may write to it.
		 */
		while (e->transfers != NULL)
			transfer_free(e, e->transfers);
		(void)curl_multi_cleanup(e->multi);
		mk_loop_timer_disarm(e->loop, &e->timer);
	}
	if (e->easy != NULL)
		curl_easy_cleanup(e->easy);
	curl_slist_free_all(e->headers);
	free(embedder);
	curl_global_cleanup();
}

static const struct mk_embedder_ops http_ops = {
	.embed = http_embed,
	.destroy = http_destroy,
	.attach = http_attach,
	.start = http_start,
	.cancel = http_cancel,
};

static bool
is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/*
 * Checks "http[s]://host[:port][/path]" (libcurl would take more: user
 * information, other schemes, spaces) and keeps its parts for the log.
 * Returns 0 or -1 with err.
 */
static int
parse_url(struct http_embedder *e, const char *url, char *err, size_t errlen)
{
	const char *p, *authority, *host, *host_end, *port = NULL, *path;
	bool https = strncasecmp(url, "https://", 8) == 0;
	long port_num = https ? 443 : 80, default_port = port_num;

	if (!https && strncasecmp(url, "http://", 7) != 0) {
		mk_errf(err, errlen,
		    "embedder_url must be http[s]://host[:port]/path");
		return -1;
	}
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '#') {
			mk_errf(err, errlen,
			    "embedder_url must be printable ASCII without "
			    "spaces or '#'");
			return -1;
		}
	}
	authority = url + (https ? 8 : 7);
	path = authority + strcspn(authority, "/?");
	if (memchr(authority, '@', (size_t)(path - authority)) != NULL) {
		mk_errf(
		    err, errlen, "embedder_url must not hold user information");
		return -1;
	}
	if (*authority == '[') {
		host = authority + 1;
		host_end = memchr(host, ']', (size_t)(path - host));
		if (host_end == NULL || host_end == host ||
		    strspn(host, "0123456789abcdefABCDEF:.") !=
			(size_t)(host_end - host)) {
			mk_errf(err, errlen,
			    "embedder_url has a malformed IPv6 address");
			return -1;
		}
		p = host_end + 1;
	} else {
		host = authority;
		for (p = host; p < path && *p != ':'; p++) {
			if (!is_host_char(*p)) {
				mk_errf(err, errlen,
				    "embedder_url has a malformed host");
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
			mk_errf(
			    err, errlen, "embedder_url has a malformed port");
			return -1;
		}
		port = p + 1;
		port_num = strtol(port, &end, 10);
		if (end != path || port_num < 1 || port_num > 65535) {
			mk_errf(err, errlen,
			    "embedder_url port must be 1 to 65535");
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
	(void)snprintf(
	    e->path, sizeof(e->path), "%s%s", *path == '/' ? "" : "/", path);
	(void)snprintf(e->host_header, sizeof(e->host_header), "%s%s%s%s%s",
	    *authority == '[' ? "[" : "", e->host, *authority == '[' ? "]" : "",
	    port_num == default_port ? "" : ":",
	    port_num == default_port ? "" : e->port);
	(void)snprintf(e->url, sizeof(e->url), "%s://%s%s",
	    https ? "https" : "http", e->host_header, e->path);
	return 0;
}

/* FNV-1a of s, for the name of a model too long to spell out. */
static uint64_t
name_hash(const char *s)
{
	return mk_fnv1a64(s, strlen(s));
}

/*
 * True when key is a non-empty run of printable ASCII without blanks at its
 * ends.
 */
static bool
key_ok(const char *key)
{
	size_t len = strlen(key);

	if (len == 0 || len > KEY_MAX || key[0] == ' ' || key[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 ||
		    (unsigned char)key[i] >= 0x7f)
			return false;
	return true;
}

/* The fixed request headers, and the key's. 0, or -1 when out of memory. */
static int
make_headers(struct http_embedder *e, const char *api_key)
{
	static const char *const fixed[] = {
		"Content-Type: application/json",
		"Accept: application/json",
		/* Never wait for a 100 Continue before sending the body. */
		"Expect:",
	};
	struct curl_slist *more;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if ((more = curl_slist_append(e->headers, fixed[i])) == NULL)
			return -1;
		e->headers = more;
	}
	if (api_key != NULL && api_key[0] != '\0') {
		char line[KEY_MAX + 32];

		(void)snprintf(
		    line, sizeof(line), "Authorization: Bearer %s", api_key);
		more = curl_slist_append(e->headers, line);
		explicit_bzero(line, sizeof(line));
		if (more == NULL)
			return -1;
		e->headers = more;
	}
	return 0;
}

/*
 * Makes an HTTP embedder. Returns it (free with mk_embedder_free()), or
 * NULL with a reason in err. Its name is "http:" and the model; a model
 * name too long for the 64-byte name keeps its first 40 bytes and a hash
 * of the whole, so two long names never share vectors.
 */
struct mk_embedder *
mk_embedder_http_new(const char *url, const char *model, unsigned dim,
    int timeout_ms, const char *api_key, char *err, size_t errlen)
{
	struct http_embedder *e;
	size_t model_len = strlen(model);

	if (dim < 8 || dim > MK_EMBED_MAX_DIM) {
		mk_errf(err, errlen, "embedding_dim must be 8 to %d",
		    MK_EMBED_MAX_DIM);
		return NULL;
	}
	if (timeout_ms <= 0) {
		mk_errf(err, errlen, "the embedder timeout must be positive");
		return NULL;
	}
	if (api_key != NULL && api_key[0] != '\0' && !key_ok(api_key)) {
		mk_errf(err, errlen,
		    "the embedder's API key must be printable ASCII, at most "
		    "%d bytes",
		    KEY_MAX);
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (model_len >= sizeof(e->model)) {
		mk_errf(err, errlen, "embedder_model is longer than %zu bytes",
		    sizeof(e->model) - 1);
		free(e);
		return NULL;
	}
	if (parse_url(e, url, err, errlen) != 0) {
		free(e);
		return NULL;
	}
	/* Reference-counted by libcurl: one per embedder, undone by destroy. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		mk_errf(err, errlen, "libcurl cannot start");
		free(e);
		return NULL;
	}
	memcpy(e->model, model, model_len + 1);
	e->base.ops = &http_ops;
	e->base.dim = dim;
	e->timeout_ms = timeout_ms;
	if (5 + model_len < sizeof(e->base.name))
		(void)snprintf(
		    e->base.name, sizeof(e->base.name), "http:%s", model);
	else
		(void)snprintf(e->base.name, sizeof(e->base.name),
		    "http:%.40s~%016llx", model,
		    (unsigned long long)name_hash(model));
	if (make_headers(e, api_key) != 0) {
		mk_errf(err, errlen, "out of memory");
		http_destroy(&e->base);
		return NULL;
	}
	return &e->base;
}

char *
mk_embedder_read_key(const char *path, char *err, size_t errlen)
{
	char buf[KEY_MAX + 2];
	size_t len, start = 0;
	FILE *f = fopen(path, "re");
	char *key;

	if (f == NULL) {
		mk_errf(err, errlen, "embedder_api_key_file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f)) {
		/* a part of the key may have been read */
		explicit_bzero(buf, sizeof(buf));
		mk_errf(err, errlen, "embedder_api_key_file %s: %s", path,
		    strerror(errno));
		(void)fclose(f);
		return NULL;
	}
	(void)fclose(f);
	buf[len] = '\0';
	len = strcspn(buf, "\r\n");
	while (start < len && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	while (len > start && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (!key_ok(buf + start)) {
		explicit_bzero(buf, sizeof(buf));
		mk_errf(err, errlen,
		    "embedder_api_key_file %s: the first line must be the key: "
		    "printable ASCII, 1 to %d bytes",
		    path, KEY_MAX);
		return NULL;
	}
	key = strdup(buf + start);
	explicit_bzero(buf, sizeof(buf));
	if (key == NULL)
		mk_errf(err, errlen, "out of memory");
	return key;
}
