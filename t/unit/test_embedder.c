/*
 * Unit tests of the embedders (search/embedder.c, search/embed_http.c).
 * The hash embedder: determinism, unit length, zero vectors for text
 * with no features, case, punctuation and inflection insensitivity, the
 * 64 KiB cap, and a table of (query, relevant, unrelated) triples where
 * the relevant text must be the nearer. The HTTP embedder against stub
 * servers this program forks on 127.0.0.1 (each checks the request it
 * gets and answers one canned way): Content-Length, chunked, close-
 * delimited and 100-continue answers; a 500, a wrong dimension, a silent
 * and a trickling server, truncation, a refused connection and the
 * recovery, logged once each. Then URL
 * parsing, the choice by configuration and a table of answer bodies for
 * mk_embed_parse_response(). A timing of the hash embedder is printed as
 * a TAP comment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "search/embedder.h"
#include "tap.h"

#define DIM 256
#define LIT(s) s, sizeof(s) - 1

static float
dot(const float *a, const float *b, unsigned dim)
{
	double sum = 0.0;

	for (unsigned i = 0; i < dim; i++)
		sum += (double)a[i] * b[i];
	return (float)sum;
}

static double
norm(const float *v, unsigned dim)
{
	return sqrt((double)dot(v, v, dim));
}

static enum mk_err
embed_str(struct mk_embedder *e, const char *text, float *out)
{
	return mk_embed(e, text, strlen(text), out);
}

/* Cosine of two texts: the vectors are unit (or zero) vectors. */
static float
cosine(struct mk_embedder *e, const char *a, const char *b)
{
	float va[DIM], vb[DIM];

	if (embed_str(e, a, va) != MK_OK || embed_str(e, b, vb) != MK_OK)
		return -2.0f;
	return dot(va, vb, DIM);
}

static void
test_hash_basics(void)
{
	static const unsigned dims[] = { 0, 7, 4097, 100000 };
	struct mk_embedder *e = mk_embedder_hash_new(DIM), *small, *large;

	tap_ok(e != NULL, "hash embedder made");
	tap_is_str(e->name, "hash-v1", "its name is hash-v1");
	tap_is_int(e->dim, DIM, "its dim is the one asked for");
	for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
		struct mk_embedder *bad = mk_embedder_hash_new(dims[i]);

		tap_ok(bad == NULL, "dim %u is refused", dims[i]);
		mk_embedder_free(bad);
	}
	small = mk_embedder_hash_new(8);
	large = mk_embedder_hash_new(MK_EMBED_MAX_DIM);
	tap_ok(small != NULL && large != NULL, "dims 8 and %d are accepted",
	    MK_EMBED_MAX_DIM);
	if (small != NULL && large != NULL) {
		float v8[8], *vbig = calloc(MK_EMBED_MAX_DIM, sizeof(float));

		tap_ok(vbig != NULL &&
			embed_str(small, "prediction markets", v8) == MK_OK &&
			fabs(norm(v8, 8) - 1.0) < 1e-5 &&
			embed_str(large, "prediction markets", vbig) == MK_OK &&
			fabs(norm(vbig, MK_EMBED_MAX_DIM) - 1.0) < 1e-5,
		    "the smallest and largest dims give unit vectors");
		free(vbig);
	}
	mk_embedder_free(small);
	mk_embedder_free(large);
	mk_embedder_free(NULL); /* a no-op, as free(NULL) */
	mk_embedder_free(e);
}

static void
test_hash_determinism(void)
{
	static const char *const texts[] = {
		"Will Bitcoin close above $150,000 in 2027?",
		"who wins the 2028 US presidential election",
		"Zürich, Genève & São Paulo: 3 cities — “quoted” text…",
		"x",
		"Rates, rates, rates: the Fed cuts rates again and again",
		"\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80 surrogates",
	};
	struct mk_embedder *e = mk_embedder_hash_new(DIM),
			   *other = mk_embedder_hash_new(DIM);

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		float a[DIM], b[DIM], c[DIM];
		double n;

		tap_ok(embed_str(e, texts[i], a) == MK_OK &&
			embed_str(e, texts[i], b) == MK_OK &&
			embed_str(other, texts[i], c) == MK_OK &&
			memcmp(a, b, sizeof(a)) == 0 &&
			memcmp(a, c, sizeof(a)) == 0,
		    "text %zu: the same vector twice and from another embedder",
		    i);
		n = norm(a, DIM);
		tap_ok(i == 3 ? n == 0.0 : fabs(n - 1.0) < 1e-5,
		    "text %zu: norm %.6f", i, n);
	}
	mk_embedder_free(e);
	mk_embedder_free(other);
}

static void
test_hash_zero(void)
{
	static const char *const texts[] = {
		"",
		"   \t\n",
		"!!! ??? ... --- ///",
		"a I",
		"the of and will be is it",
		"\xe2\x80\x94 \xe2\x80\xa6 \xe2\x80\x9c\xe2\x80\x9d "
		"\xc2\xab\xc2\xbb \xf0\x9f\x98\x80",
		"\xff\xfe\xfd",
		"é ß",
	};
	struct mk_embedder *e = mk_embedder_hash_new(DIM);

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		float v[DIM];
		size_t nonzero = 0;

		memset(v, 0x7f, sizeof(v));
		tap_is_int(embed_str(e, texts[i], v), MK_OK,
		    "no-feature text %zu embeds", i);
		for (size_t k = 0; k < DIM; k++)
			nonzero += v[k] != 0.0f;
		tap_is_int(
		    nonzero, 0, "no-feature text %zu gives the zero vector", i);
	}
	mk_embedder_free(e);
}

static void
test_hash_equivalences(void)
{
	static const struct {
		const char *a, *b;
		float min;
	} cases[] = {
		{ "Bitcoin!", "bitcoin", 0.9999f },
		{ "BITCOIN", "...bitcoin...", 0.9999f },
		{ "Will the Fed cut rates?", "will THE fed, cut; rates",
		    0.9999f },
		{ "ZÜRICH", "Zürich", 0.9999f },
		{ "$150,000", "150000", 0.9999f },
		{ "elections", "election", 0.999f },
		{ "wins", "win", 0.999f },
		{ "winning", "win", 0.999f },
		{ "rates", "rate", 0.999f },
		{ "rating", "rates", 0.999f },
		{ "rated", "rate", 0.999f },
		{ "cuts", "cutting", 0.999f },
		{ "parties", "party", 0.999f },
		{ "tried", "tries", 0.999f },
		{ "closing", "closes", 0.999f },
		{ "Democrats win elections", "democrat winning election",
		    0.999f },
		{ "presidential elections", "Presidential Election!", 0.999f },
		{ "the congress", "congress", 0.999f },
	};
	struct mk_embedder *e = mk_embedder_hash_new(DIM);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		float c = cosine(e, cases[i].a, cases[i].b);

		tap_ok(c >= cases[i].min, "'%s' ~ '%s' (cosine %.4f)",
		    cases[i].a, cases[i].b, c);
	}
	tap_ok(cosine(e, "Zürich", "rich") < 0.5f,
	    "'Zürich' is one token, not z + rich (cosine %.3f)",
	    cosine(e, "Zürich", "rich"));
	tap_ok(cosine(e, "2027", "2028") < 0.1f,
	    "years do not half-match (cosine %.3f)", cosine(e, "2027", "2028"));
	/* Trigrams share 0.25 of a word's weight: a weak pull, but a pull. */
	tap_ok(cosine(e, "congress", "congres") > 0.004f &&
		cosine(e, "congress", "congres") >
		    2 * fabsf(cosine(e, "congress", "senate")),
	    "a misspelling is nearer than another word through trigrams (%.4f "
	    "vs %.4f)",
	    cosine(e, "congress", "congres"), cosine(e, "congress", "senate"));
	tap_ok(cosine(e, "democrat win", "win democrat") < 0.99f,
	    "word order counts through bigrams (cosine %.3f)",
	    cosine(e, "democrat win", "win democrat"));
	mk_embedder_free(e);
}

static void
test_hash_relevance(void)
{
	static const struct {
		const char *query, *relevant, *unrelated;
	} cases[] = {
		{ "who wins the 2028 US presidential election",
		    "Will a Democrat win the 2028 United States presidential "
		    "election?",
		    "Will Bitcoin close above $150,000 in 2027?" },
		{ "bitcoin above 150000",
		    "Will Bitcoin close above $150,000 in 2027?",
		    "Will the Fed cut interest rates in March 2026?" },
		{ "fed rate cut",
		    "Will the Federal Reserve (Fed) cut interest rates in "
		    "March 2026?",
		    "Will Real Madrid win the 2026 UEFA Champions League?" },
		{ "champions league winner",
		    "Will Real Madrid win the 2026 UEFA Champions League?",
		    "Will Ethereum flip Bitcoin by market cap?" },
		{ "ethereum etf approval",
		    "Will the SEC approve a spot Ethereum ETF by June?",
		    "Will it snow in London on Christmas Day?" },
		{ "snow in london christmas",
		    "Will it snow in London on Christmas Day 2026?",
		    "Will SpaceX land humans on Mars before 2030?" },
		{ "spacex mars landing",
		    "Will SpaceX land humans on Mars before 2030?",
		    "Will the UK rejoin the European Union by 2035?" },
		{ "uk rejoin eu",
		    "Will the UK rejoin the European Union (EU) by 2035?",
		    "Who will win the Super Bowl in 2027?" },
		{ "super bowl 2027 winner",
		    "Who will win Super Bowl LXI in 2027?",
		    "Will eurozone inflation fall below 2% by December?" },
		{ "eurozone inflation below 2%",
		    "Will eurozone inflation fall below 2% by December?",
		    "Will Taylor Swift release a new studio album in 2026?" },
		{ "taylor swift new album",
		    "Will Taylor Swift release a new studio album in 2026?",
		    "Will OpenAI release GPT-6 before 2027?" },
		{ "openai gpt-6 release",
		    "Will OpenAI release GPT-6 before 2027?",
		    "Will house prices in Zürich rise more than 5% this "
		    "year?" },
		{ "zürich housing prices",
		    "Will house prices in Zürich rise more than 5% this year?",
		    "Will Apple stock close above $300 in 2026?" },
		{ "apple stock above 300",
		    "Will Apple (AAPL) stock close above $300 in 2026?",
		    "Will the 2028 presidential election be won by a "
		    "Republican?" },
		{ "oil price $100 barrel",
		    "Will crude oil prices exceed $100 per barrel?",
		    "Will Novak Djokovic win another Wimbledon title?" },
		{ "djokovic wimbledon",
		    "Will Novak Djokovic win another Wimbledon title?",
		    "Will the Bank of Japan raise interest rates in 2026?" },
		{ "bank of japan rate hike",
		    "Will the Bank of Japan raise interest rates in 2026?",
		    "Will Elon Musk step down as CEO of Tesla?" },
		{ "musk leaves tesla",
		    "Will Elon Musk step down as CEO of Tesla?",
		    "Will the next iPhone have a foldable screen?" },
		{ "french election le pen",
		    "Will Marine Le Pen win the 2027 French presidential "
		    "election?",
		    "Will Bitcoin close above $150,000 in 2027?" },
		{ "ukraine russia ceasefire",
		    "Will Russia and Ukraine sign a ceasefire agreement in "
		    "2026?",
		    "Will Manchester City win the Premier League?" },
		{ "Republican wins 2028 presidency",
		    "Will the 2028 presidential election be won by a "
		    "Republican?",
		    "Will a Democrat win the 2027 governor race in Kentucky?" },
	};
	struct mk_embedder *e = mk_embedder_hash_new(DIM);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		float rel = cosine(e, cases[i].query, cases[i].relevant);
		float unrel = cosine(e, cases[i].query, cases[i].unrelated);

		tap_ok(rel > unrel + 0.05f,
		    "'%s': relevant %.3f > unrelated %.3f", cases[i].query, rel,
		    unrel);
	}
	mk_embedder_free(e);
}

/* Appends distinct lower-case words ("aaa", "aab", ...) up to len bytes. */
static size_t
fill_words(char *buf, size_t len, unsigned first)
{
	size_t at = 0;

	for (unsigned n = first; at + 6 <= len; n++) {
		unsigned k = n;

		for (int c = 0; c < 4; c++) {
			buf[at++] = (char)('a' + k % 26);
			k /= 26;
		}
		buf[at++] = ' ';
	}
	while (at < len)
		buf[at++] = ' ';
	return at;
}

static void
test_hash_long(void)
{
	struct mk_embedder *e = mk_embedder_hash_new(DIM);
	size_t big = 200 * 1024;
	char *text = malloc(big);
	float a[DIM], b[DIM];
	uint64_t t0;

	if (text == NULL) {
		tap_ok(0, "out of memory");
		mk_embedder_free(e);
		return;
	}
	(void)fill_words(text, big, 0);
	t0 = mk_clock_mono_us();
	tap_ok(mk_embed(e, text, big, a) == MK_OK &&
		fabs(norm(a, DIM) - 1.0) < 1e-4,
	    "200 KiB of distinct words embed to a unit vector");
	printf("# 200 KiB text: %llu us\n",
	    (unsigned long long)(mk_clock_mono_us() - t0));
	tap_ok(mk_embed(e, text, 64 * 1024, b) == MK_OK &&
		memcmp(a, b, sizeof(a)) == 0,
	    "text past 64 KiB is ignored");
	tap_ok(mk_embed(e, text, 64 * 1024, b) == MK_OK &&
		memcmp(a, b, sizeof(a)) == 0,
	    "the table is left empty: a long text embeds the same again");
	tap_ok(mk_embed(e, text, 64 * 1024 - 100, b) == MK_OK &&
		memcmp(a, b, sizeof(a)) != 0,
	    "text up to 64 KiB counts");
	memset(text, 'q', 1000);
	tap_ok(mk_embed(e, text, 1000, a) == MK_OK &&
		fabs(norm(a, DIM) - 1.0) < 1e-5 &&
		mk_embed(e, text, 64, b) == MK_OK &&
		memcmp(a, b, sizeof(a)) == 0,
	    "a token keeps its first 64 bytes");
	free(text);
	mk_embedder_free(e);
}

static void
test_hash_speed(void)
{
	/* 200 characters of a typical market question and description. */
	static const char text[] =
	    "Will the Federal Reserve cut interest rates at its March 2026 "
	    "meeting? Resolves YES if the FOMC announces a lower target range "
	    "for the federal funds rate; NO if rates are held or raised. "
	    "Zürich";
	struct mk_embedder *e = mk_embedder_hash_new(DIM);
	float v[DIM];
	int rounds = 20000, ok = 1;
	uint64_t t0 = mk_clock_mono_us(), us;

	for (int i = 0; i < rounds; i++)
		ok &= mk_embed(e, text, sizeof(text) - 1, v) == MK_OK;
	us = mk_clock_mono_us() - t0;
	tap_ok(
	    ok, "%d embeddings of a %zu-byte text", rounds, sizeof(text) - 1);
	printf("# hash-v1, dim %d: %.2f us per embedding of a %zu-byte text\n",
	    DIM, (double)us / rounds, sizeof(text) - 1);
	mk_embedder_free(e);
}

static void
test_normalize(void)
{
	float v[8] = { 3, 4, 0, 0, 0, 0, 0, 0 }, z[8] = { 0 };

	mk_embed_normalize(v, 8);
	tap_ok(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f &&
		v[2] == 0.0f,
	    "normalize (3,4) -> (0.6,0.8)");
	mk_embed_normalize(z, 8);
	tap_ok(z[0] == 0.0f && z[7] == 0.0f && !isnan(z[3]),
	    "normalize leaves zeros alone");
}

/* -- HTTP: stub servers --------------------------------------------- */

enum stub_mode {
	STUB_LENGTH,   /* Content-Length, then holds the connection open */
	STUB_CHUNKED,  /* chunked in small writes, then holds it open */
	STUB_CLOSE,    /* HTTP/1.0, body up to the close */
	STUB_CONTINUE, /* a 100 Continue first */
	STUB_500,
	STUB_WRONG_DIM,
	STUB_NOT_JSON,
	STUB_SILENT,    /* reads the request, never answers */
	STUB_TRICKLE,   /* one byte of the body every 20 ms */
	STUB_TRUNCATED, /* closes halfway through the body */
	STUB_BAD_CHUNK,
	STUB_HUGE,    /* announces 5 MB */
	STUB_GARBAGE, /* not HTTP */
};

static const char good_answer[] =
    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
    "\"embedding\":[3,4,0,0,0,0,0,0.0]}],\"model\":\"test-model\","
    "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}";
static const char short_answer[] =
    "{\"data\":[{\"embedding\":[3,4,0,0,0,0,0]}]}";

/* What the request must carry (set before each fork). */
static const char *stub_expect_body;
static char stub_expect_host[64];

static void
stub_write(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);
		p += n;
		len -= (size_t)n;
	}
}

static void
stub_puts(int fd, const char *s)
{
	stub_write(fd, s, strlen(s));
}

/* Reads one request; returns whether it is the one expected. */
static int
stub_read_request(int fd)
{
	static char req[256 * 1024];
	size_t len = 0;
	char *end = NULL, *cl;
	size_t body_len;

	for (;;) {
		ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		len += (size_t)n;
		req[len] = '\0';
		if (end == NULL && (end = strstr(req, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(req, "\r\nContent-Length: ");
		if (cl == NULL || cl > end)
			return 0;
		body_len = strtoul(cl + 18, NULL, 10);
		if (len >= (size_t)(end + 4 - req) + body_len)
			break;
	}
	*end = '\0';
	return strncmp(req, "POST /v1/embeddings HTTP/1.1\r\n", 30) == 0 &&
	    strstr(req, stub_expect_host) != NULL &&
	    strstr(req, "\r\nContent-Type: application/json") != NULL &&
	    strstr(req, "\r\nAccept: application/json") != NULL &&
	    strcmp(end + 4, stub_expect_body) == 0;
}

static void
stub_answer(int fd, enum stub_mode mode, const char *body)
{
	char head[256];

	switch (mode) {
	case STUB_CONTINUE:
		stub_puts(fd, "HTTP/1.1 100 Continue\r\n\r\n");
		usleep(20000);
		/* FALLTHROUGH */
	case STUB_LENGTH:
	case STUB_WRONG_DIM:
	case STUB_NOT_JSON:
		(void)snprintf(head, sizeof(head),
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "content-length:  %zu \r\n\r\n",
		    strlen(body));
		stub_puts(fd, head);
		stub_puts(fd, body);
		sleep(5); /* the client must not wait for the close */
		break;
	case STUB_CHUNKED: {
		size_t len = strlen(body);

		stub_puts(fd,
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
		    "chunked\r\nContent-Length: 3\r\n\r\n");
		for (size_t at = 0, k = 0; at < len; k++) {
			size_t n = len - at < 7 + k % 5 ? len - at : 7 + k % 5;

			(void)snprintf(head, sizeof(head),
			    k % 3 == 0 ? "%zX;ext=1\r\n" : "%zx\r\n", n);
			stub_puts(fd, head);
			stub_write(fd, body + at, n);
			stub_puts(fd, "\r\n");
			at += n;
			if (k % 4 == 0)
				usleep(2000);
		}
		stub_puts(fd, "0\r\nX-Trailer: y\r");
		usleep(5000);
		stub_puts(fd, "\n\r\n");
		sleep(5);
		break;
	}
	case STUB_CLOSE:
		stub_puts(fd,
		    "HTTP/1.0 200 OK\r\nContent-Type: "
		    "application/json\r\n\r\n");
		stub_puts(fd, body);
		break;
	case STUB_500:
		stub_puts(fd,
		    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: "
		    "5\r\n\r\noops!");
		sleep(5);
		break;
	case STUB_SILENT:
		sleep(10);
		break;
	case STUB_TRICKLE:
		stub_puts(
		    fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
		for (int i = 0; i < 500; i++) {
			stub_puts(fd, " ");
			usleep(20000);
		}
		break;
	case STUB_TRUNCATED:
		stub_puts(fd,
		    "HTTP/1.1 200 OK\r\nContent-Length: "
		    "500\r\n\r\n{\"data\":[{\"embedding\":[3,");
		break;
	case STUB_BAD_CHUNK:
		stub_puts(fd,
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
		    "chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
		sleep(5);
		break;
	case STUB_HUGE:
		stub_puts(fd,
		    "HTTP/1.1 200 OK\r\nContent-Length: "
		    "5000000\r\n\r\n{\"data\":");
		sleep(5);
		break;
	case STUB_GARBAGE:
		stub_puts(fd, "SSH-2.0-OpenSSH_9.6\r\n\r\n");
		sleep(5);
		break;
	}
}

static void
stub_serve(int listener, enum stub_mode mode)
{
	const char *body = mode == STUB_WRONG_DIM ? short_answer
	    : mode == STUB_NOT_JSON               ? "<html>hello</html>"
						  : good_answer;
	int fd;

	alarm(15); /* never outlive a test that lost track of us */
	while ((fd = accept(listener, NULL, NULL)) < 0 && errno == EINTR)
		;
	if (fd < 0)
		_exit(2);
	if (!stub_read_request(fd)) {
		stub_puts(fd,
		    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		_exit(1);
	}
	stub_answer(fd, mode, body);
	_exit(0);
}

/* A socket bound to 127.0.0.1 with an ephemeral port, not listening. */
static int
bind_local(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
		(void)close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Forks a stub serving the listening fd. Returns its pid (> 0), or -1. */
static pid_t
stub_start_on(int fd, enum stub_mode mode, int port)
{
	pid_t pid;

	(void)snprintf(stub_expect_host, sizeof(stub_expect_host),
	    "\r\nHost: 127.0.0.1:%d\r\n", port);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		stub_serve(fd, mode);
	return pid;
}

/* Forks a stub in mode on a new port. Returns its pid (> 0), or -1. */
static pid_t
stub_start(enum stub_mode mode, int *port)
{
	int fd = bind_local(port);
	pid_t pid;

	if (fd < 0)
		return -1;
	if (listen(fd, 4) != 0) {
		(void)close(fd);
		return -1;
	}
	pid = stub_start_on(fd, mode, *port);
	(void)close(fd);
	return pid;
}

/* Stops a stub by its exact pid and reaps it. */
static void
stub_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

#define INPUT "Say \"hi\" to Z\xc3\xbcrich\n\tnow"
#define INPUT_JSON "\"input\":\"Say \\\"hi\\\" to Z\xc3\xbcrich\\n\\tnow\""

static void
test_http_exchanges(void)
{
	static const struct {
		enum stub_mode mode;
		int timeout_ms;
		const char *model;
		enum mk_err want;
		const char *what;
	} cases[] = {
		{ STUB_LENGTH, 2000, "test-model", MK_OK,
		    "Content-Length answer, connection held open" },
		{ STUB_LENGTH, 2000, "", MK_OK,
		    "no model: the request has no \"model\"" },
		{ STUB_CHUNKED, 2000, "test-model", MK_OK,
		    "chunked answer in small writes, trailer" },
		{ STUB_CLOSE, 2000, "test-model", MK_OK,
		    "HTTP/1.0 answer up to the close" },
		{ STUB_CONTINUE, 2000, "test-model", MK_OK,
		    "100 Continue, then the answer" },
		{ STUB_500, 2000, "test-model", MK_EUNAVAIL, "status 500" },
		{ STUB_WRONG_DIM, 2000, "test-model", MK_EINTERNAL,
		    "7 numbers for dim 8" },
		{ STUB_NOT_JSON, 2000, "test-model", MK_EINTERNAL,
		    "a 200 that is not JSON" },
		{ STUB_SILENT, 200, "test-model", MK_EUNAVAIL,
		    "a server that never answers" },
		{ STUB_TRICKLE, 200, "test-model", MK_EUNAVAIL,
		    "a body trickling past the timeout" },
		{ STUB_TRUNCATED, 2000, "test-model", MK_EUNAVAIL,
		    "a body cut short by the close" },
		{ STUB_BAD_CHUNK, 2000, "test-model", MK_EUNAVAIL,
		    "a malformed chunk size" },
		{ STUB_HUGE, 2000, "test-model", MK_EUNAVAIL,
		    "an answer announced over 4 MiB" },
		{ STUB_GARBAGE, 2000, "test-model", MK_EUNAVAIL,
		    "a server that does not speak HTTP" },
	};
	static const char with_model[] =
	    "{\"model\":\"test-model\"," INPUT_JSON "}";
	static const char without_model[] = "{" INPUT_JSON "}";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char url[128], err[256] = "";
		struct mk_embedder *e;
		float v[8];
		enum mk_err rc;
		int port = 0;
		pid_t pid;
		int64_t t0, took;

		stub_expect_body =
		    cases[i].model[0] != '\0' ? with_model : without_model;
		pid = stub_start(cases[i].mode, &port);
		if (pid < 0) {
			tap_ok(0, "%s: cannot start a stub: %s", cases[i].what,
			    strerror(errno));
			continue;
		}
		(void)snprintf(url, sizeof(url),
		    "http://127.0.0.1:%d/v1/embeddings", port);
		e = mk_embedder_http_new(url, cases[i].model, 8,
		    cases[i].timeout_ms, NULL, err, sizeof(err));
		if (e == NULL) {
			tap_ok(0, "%s: embedder: %s", cases[i].what, err);
			stub_stop(pid);
			continue;
		}
		memset(v, 0x7f, sizeof(v));
		t0 = mk_clock_mono_ms();
		rc = mk_embed(e, LIT(INPUT), v);
		took = mk_clock_mono_ms() - t0;
		tap_ok(rc == cases[i].want, "%s: %s (want %s), %lld ms",
		    cases[i].what, mk_err_name(rc), mk_err_name(cases[i].want),
		    (long long)took);
		if (cases[i].want == MK_OK)
			tap_ok(fabsf(v[0] - 0.6f) < 1e-6f &&
				fabsf(v[1] - 0.8f) < 1e-6f && v[2] == 0.0f &&
				v[7] == 0.0f,
			    "%s: the vector arrives normalised", cases[i].what);
		else
			tap_ok(v[0] == 0.0f && v[1] == 0.0f && v[7] == 0.0f,
			    "%s: the vector is zeroed on failure",
			    cases[i].what);
		if (cases[i].timeout_ms == 200)
			tap_ok(took >= 150 && took < 1000,
			    "%s: gave up after about the timeout (%lld ms)",
			    cases[i].what, (long long)took);
		else
			tap_ok(took < 1000,
			    "%s: did not wait for the server to close (%lld "
			    "ms)",
			    cases[i].what, (long long)took);
		mk_embedder_free(e);
		stub_stop(pid);
	}
}

/* Counts the lines of the file at path that hold needle. */
static int
count_lines(const char *path, const char *needle)
{
	char line[2048];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	(void)fclose(f);
	return n;
}

/*
 * A refused connection (a port bound but not listening), twice, then the
 * server comes up on that port: two MK_EUNAVAIL, then MK_OK; the log has
 * one error line for the outage and one line for the recovery.
 */
static void
test_http_outage(void)
{
	static const char with_model[] =
	    "{\"model\":\"test-model\"," INPUT_JSON "}";
	char url[128], err[256] = "", log_path[] = "/tmp/test_embedder.XXXXXX";
	struct mk_embedder *e;
	int port = 0, fd = bind_local(&port), log_fd = mkstemp(log_path);
	pid_t pid = -1;
	float v[8];
	int64_t t0;
	enum mk_err rc1, rc2, rc3 = MK_EINTERNAL;

	if (fd < 0 || log_fd < 0 || mk_log_open(log_path, MK_LOG_INFO) != 0) {
		tap_ok(0, "cannot set up the outage test: %s", strerror(errno));
		goto out;
	}
	(void)snprintf(
	    url, sizeof(url), "http://127.0.0.1:%d/v1/embeddings", port);
	e = mk_embedder_http_new(
	    url, "test-model", 8, 2000, NULL, err, sizeof(err));
	if (e == NULL) {
		tap_ok(0, "embedder: %s", err);
		goto out;
	}
	t0 = mk_clock_mono_ms();
	rc1 = mk_embed(e, LIT(INPUT), v);
	rc2 = mk_embed(e, LIT(INPUT), v);
	tap_ok(rc1 == MK_EUNAVAIL && rc2 == MK_EUNAVAIL &&
		mk_clock_mono_ms() - t0 < 1000,
	    "connection refused: %s, %s, at once", mk_err_name(rc1),
	    mk_err_name(rc2));
	stub_expect_body = with_model;
	if (listen(fd, 4) == 0 &&
	    (pid = stub_start_on(fd, STUB_CLOSE, port)) > 0) {
		/*
		 * The circuit breaker: within a second of a failure, no
		 * attempt.
		 */
		tap_is_int(mk_embed(e, LIT(INPUT), v), MK_EUNAVAIL,
		    "the server is up, but within a second of the failure: "
		    "MK_EUNAVAIL at once");
		usleep(1100 * 1000);
		rc3 = mk_embed(e, LIT(INPUT), v);
	}
	tap_is_int(rc3, MK_OK,
	    "a second later, the server up on the same port: MK_OK");
	mk_embedder_free(e);
	tap_is_int(count_lines(log_path, "Failed to connect"), 1,
	    "one log line for the outage, not one per failure");
	tap_is_int(count_lines(log_path, "\"level\":\"error\""), 1,
	    "it is an error line");
	tap_is_int(count_lines(log_path, "is back after"), 1,
	    "one log line for the recovery");
out:
	stub_stop(pid);
	if (fd >= 0)
		(void)close(fd);
	if (log_fd >= 0) {
		(void)close(log_fd);
		(void)unlink(log_path);
	}
	if (getenv("MK_TEST_VERBOSE") != NULL)
		mk_log_close();
	else
		(void)mk_log_open("/dev/null", MK_LOG_ERROR);
}

static void
test_http_urls(void)
{
	static const struct {
		const char *url;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ "http://127.0.0.1:8080/v1/embeddings", NULL },
		{ "HTTP://localhost/v1/embeddings", NULL },
		{ "http://[::1]:11434/api/embed", NULL },
		{ "http://model-server.local", NULL },
		{ "http://host:80/x?api-version=1", NULL },
		{ "https://api.openai.com/v1/embeddings", NULL },
		{ "https://[::1]:8443/v1/embeddings", NULL },
		{ "ftp://host/x",
		    "embedder_url must be http[s]://host[:port]/path" },
		{ "127.0.0.1:8080/v1/embeddings",
		    "embedder_url must be http[s]://host[:port]/path" },
		{ "http:///v1/embeddings", "embedder_url has no host" },
		{ "http://host:0/x", "embedder_url port must be 1 to 65535" },
		{ "http://host:65536/x",
		    "embedder_url port must be 1 to 65535" },
		{ "http://host:12a/x", "embedder_url has a malformed port" },
		{ "http://host:/x", "embedder_url has a malformed port" },
		{ "http://user:pw@host/x",
		    "embedder_url must not hold user information" },
		{ "http://a:b:c/x", "embedder_url has a malformed port" },
		{ "http://ho st/x",
		    "embedder_url must be printable ASCII without spaces or "
		    "'#'" },
		{ "http://host/x\r\nX-Evil: 1",
		    "embedder_url must be printable ASCII without spaces or "
		    "'#'" },
		{ "http://host/x#frag",
		    "embedder_url must be printable ASCII without spaces or "
		    "'#'" },
		{ "http://[::1/x",
		    "embedder_url has a malformed IPv6 address" },
		{ "http://[zz]/x",
		    "embedder_url has a malformed IPv6 address" },
		{ "http://h*st/x", "embedder_url has a malformed host" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mk_embedder *e;
		char shown[64];

		/* A CR or LF in a test name would break the TAP line. */
		(void)snprintf(shown, sizeof(shown), "%s", cases[i].url);
		for (char *c = shown; *c != '\0'; c++)
			if (*c == '\r' || *c == '\n')
				*c = '~';
		err[0] = '\0';
		e = mk_embedder_http_new(
		    cases[i].url, "m", 16, 1000, NULL, err, sizeof(err));
		if (cases[i].err == NULL)
			tap_ok(e != NULL && strcmp(e->name, "http:m") == 0 &&
				e->dim == 16,
			    "'%s' accepted (%s)", shown, err);
		else
			tap_ok(e == NULL && strcmp(err, cases[i].err) == 0,
			    "'%s' refused: '%s'", shown, err);
		mk_embedder_free(e);
	}
}

static void
test_http_names(void)
{
	static const char long_a[] =
	    "sentence-transformers/"
	    "all-MiniLM-L6-v2-finetuned-for-prediction-markets-a";
	static const char long_b[] =
	    "sentence-transformers/"
	    "all-MiniLM-L6-v2-finetuned-for-prediction-markets-b";
	char err[256] = "", too_long[200];
	struct mk_embedder *a = mk_embedder_http_new(
	    "http://h/", long_a, 384, 1000, NULL, err, sizeof(err));
	struct mk_embedder *b = mk_embedder_http_new(
	    "http://h/", long_b, 384, 1000, NULL, err, sizeof(err));
	struct mk_embedder *c = mk_embedder_http_new(
	    "http://h/", "", 384, 1000, NULL, err, sizeof(err));

	tap_ok(a != NULL && b != NULL && strlen(a->name) < sizeof(a->name) &&
		strncmp(a->name, "http:sentence-transformers/", 27) == 0 &&
		strcmp(a->name, b->name) != 0,
	    "long model names stay distinct in 64 bytes ('%s')",
	    a != NULL ? a->name : "");
	tap_ok(c != NULL && strcmp(c->name, "http:") == 0,
	    "an empty model is named 'http:'");
	mk_embedder_free(a);
	mk_embedder_free(b);
	mk_embedder_free(c);
	memset(too_long, 'm', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	a = mk_embedder_http_new(
	    "http://h/", too_long, 384, 1000, NULL, err, sizeof(err));
	tap_ok(a == NULL && strstr(err, "embedder_model is longer") != NULL,
	    "a 199-byte model is refused: %s", err);
	a = mk_embedder_http_new(
	    "http://h/", "m", 7, 1000, NULL, err, sizeof(err));
	tap_ok(a == NULL && strstr(err, "embedding_dim") != NULL,
	    "dim 7 is refused: %s", err);
	a = mk_embedder_http_new(
	    "http://h/", "m", 8, 0, NULL, err, sizeof(err));
	tap_ok(a == NULL && strstr(err, "timeout") != NULL,
	    "timeout 0 is refused: %s", err);
}

static void
test_from_config(void)
{
	static const struct {
		const char *conf;
		const char *name; /* NULL: refused */
		const char *err;
		unsigned dim;
	} cases[] = {
		{ "", "hash-v1", NULL, 512 }, /* the default embedding_dim */
		{ "embedding_dim = 64\n", "hash-v1", NULL, 64 },
		{ "embedder = http\n", NULL,
		    "embedder = http needs embedder_url", 0 },
		{ "embedder = http\nembedder_url = "
		  "http://127.0.0.1:1/v1/embeddings\n"
		  "embedder_model = nomic-embed-text\nembedding_dim = 768\n",
		    "http:nomic-embed-text", NULL, 768 },
		{ "embedder = http\nembedder_url = "
		  "https://api.openai.com/v1/embeddings\n",
		    "http:", NULL, 512 },
		{ "embedder = http\nembedder_url = "
		  "http://127.0.0.1:1/\nembedder_api_key_file = "
		  "/nonexistent/key\n",
		    NULL,
		    "embedder_api_key_file /nonexistent/key: No such file or "
		    "directory",
		    0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mk_config *config = mk_config_new();
		char err[MK_CONFIG_ERR_MAX] = "";
		struct mk_embedder *e = NULL;

		if (config == NULL ||
		    mk_config_parse(config, "test", cases[i].conf,
			strlen(cases[i].conf), err, sizeof(err)) != MK_OK) {
			tap_ok(0, "config %zu: %s", i, err);
			mk_config_free(config);
			continue;
		}
		e = mk_embedder_from_config(config, err, sizeof(err));
		if (cases[i].name != NULL)
			tap_ok(e != NULL &&
				strcmp(e->name, cases[i].name) == 0 &&
				e->dim == cases[i].dim,
			    "config %zu: %s, dim %u (%s)", i, cases[i].name,
			    cases[i].dim, err);
		else
			tap_ok(e == NULL && strcmp(err, cases[i].err) == 0,
			    "config %zu refused: '%s'", i, err);
		mk_embedder_free(e);
		mk_config_free(config);
	}
}

/* -- Answer bodies ----------------------------------------------------- */

#define NUL_BODY "{\"data\":[{\"embedding\":[1,2,3,4],\"x\":\"a\0b\"}]}"

static void
test_parse_response(void)
{
	static const struct {
		const char *body;
		size_t len; /* 0: strlen(body) */
		enum mk_err want;
		float first; /* out[0] when MK_OK */
		const char *what;
	} cases[] = {
		{ "{\"data\":[{\"embedding\":[1,2.5,-3e-2,0]}]}", 0, MK_OK,
		    1.0f, "good" },
		{ "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
		  "\"embedding\":[-0.5,0,0,1],"
		  "\"index\":0}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":"
		  "1,\"total_tokens\":1}}",
		    0, MK_OK, -0.5f, "good with every OpenAI member" },
		{ " \n{\"data\" : [ { \"embedding\" : [ 1 , 2 , 3 , 4 ] } ] "
		  "}\n",
		    0, MK_OK, 1.0f, "good with spaces" },
		{ "{\"data\":[{\"embedding\":[3.4e38,-3.4e38,1e-50,"
		  "12345678901234567890]}]}",
		    0, MK_OK, 3.4e38f,
		    "large, tiny and past-int64 numbers that fit a float" },
		{ "{\"embedding\":[1,2,3,4]}", 0, MK_EINTERNAL, 0,
		    "missing data" },
		{ "{\"data\":{\"embedding\":[1,2,3,4]}}", 0, MK_EINTERNAL, 0,
		    "data not an array" },
		{ "{\"data\":[]}", 0, MK_EINTERNAL, 0, "empty data" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4]},{\"embedding\":[1,2,3,"
		  "4]}]}",
		    0, MK_EINTERNAL, 0, "two items for one input" },
		{ "{\"data\":[[1,2,3,4]]}", 0, MK_EINTERNAL, 0,
		    "item not an object" },
		{ "{\"data\":[{\"vector\":[1,2,3,4]}]}", 0, MK_EINTERNAL, 0,
		    "missing embedding" },
		{ "{\"data\":[{\"embedding\":[]}]}", 0, MK_EINTERNAL, 0,
		    "empty embedding" },
		{ "{\"data\":[{\"embedding\":[1,2,3]}]}", 0, MK_EINTERNAL, 0,
		    "too few numbers" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4,5]}]}", 0, MK_EINTERNAL,
		    0, "too many numbers" },
		{ "{\"data\":[{\"embedding\":[1,\"2\",3,4]}]}", 0, MK_EINTERNAL,
		    0, "a string" },
		{ "{\"data\":[{\"embedding\":[1,true,3,4]}]}", 0, MK_EINTERNAL,
		    0, "a boolean" },
		{ "{\"data\":[{\"embedding\":[1,null,3,4]}]}", 0, MK_EINTERNAL,
		    0, "a null" },
		{ "{\"data\":[{\"embedding\":[1,[2],3,4]}]}", 0, MK_EINTERNAL,
		    0, "a nested array" },
		{ "{\"data\":[{\"embedding\":[1,{},3,4]}]}", 0, MK_EINTERNAL, 0,
		    "an object" },
		{ "{\"data\":[{\"embedding\":[NaN,1,2,3]}]}", 0, MK_EINTERNAL,
		    0, "NaN" },
		{ "{\"data\":[{\"embedding\":[Infinity,1,2,3]}]}", 0,
		    MK_EINTERNAL, 0, "Infinity" },
		{ "{\"data\":[{\"embedding\":[-Infinity,1,2,3]}]}", 0,
		    MK_EINTERNAL, 0, "-Infinity" },
		{ "{\"data\":[{\"embedding\":[1e39,1,2,3]}]}", 0, MK_EINTERNAL,
		    0, "1e39 overflows a float" },
		{ "{\"data\":[{\"embedding\":[-1e39,1,2,3]}]}", 0, MK_EINTERNAL,
		    0, "-1e39 overflows a float" },
		{ "{\"data\":[{\"embedding\":[1e400,1,2,3]}]}", 0, MK_EINTERNAL,
		    0, "1e400 overflows a double" },
		{ "{\"data\":[{\"embedding\":\"AACAPwAAAEAAAEBAAACAQA==\"}]}",
		    0, MK_EINTERNAL, 0, "base64" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4]}],\"data\":[]}", 0,
		    MK_EINTERNAL, 0, "duplicate key" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4]}]} x", 0, MK_EINTERNAL,
		    0, "trailing garbage" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4]}]", 0, MK_EINTERNAL, 0,
		    "cut short" },
		{ "{\"data\":[{\"embedding\":[1,2,3,4],\"x\":\"\xff\"}]}", 0,
		    MK_EINTERNAL, 0, "bad UTF-8" },
		{ NUL_BODY, sizeof(NUL_BODY) - 1, MK_EINTERNAL, 0,
		    "a raw NUL" },
		{ "{\"data\":[{\"embedding\":[[[[[[[[[[[[1]]]]]]]]]]]]}]}", 0,
		    MK_EINTERNAL, 0, "nested garbage" },
		{ "{\"data\":[{\"embedding\":[01,2,3,4]}]}", 0, MK_EINTERNAL, 0,
		    "a leading zero" },
		{ "", 0, MK_EINTERNAL, 0, "empty body" },
		{ "null", 0, MK_EINTERNAL, 0, "null" },
		{ "[1,2,3,4]", 0, MK_EINTERNAL, 0, "a bare array" },
		{ "<html>502 Bad Gateway</html>", 0, MK_EINTERNAL, 0, "HTML" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len =
		    cases[i].len != 0 ? cases[i].len : strlen(cases[i].body);
		float v[5] = { 9, 9, 9, 9, 9 };
		enum mk_err rc =
		    mk_embed_parse_response(cases[i].body, len, 4, v);

		if (cases[i].want == MK_OK)
			tap_ok(rc == MK_OK && v[0] == cases[i].first &&
				v[4] == 9.0f,
			    "parse: %s (%s, first %g)", cases[i].what,
			    mk_err_name(rc), (double)v[0]);
		else
			tap_ok(rc == cases[i].want && v[0] == 0.0f &&
				v[3] == 0.0f && v[4] == 9.0f,
			    "parse: %s refused (%s), vector zeroed",
			    cases[i].what, mk_err_name(rc));
	}
	{
		float v[4];

		tap_ok(mk_embed_parse_response(
			   LIT("{\"data\":[{\"embedding\":[]}]}"), 0, v) ==
			MK_EINTERNAL,
		    "parse: dim 0 is refused");
	}
}

int
main(void)
{
	/* The HTTP failures are logged; keep the TAP output readable. */
	if (getenv("MK_TEST_VERBOSE") == NULL &&
	    mk_log_open("/dev/null", MK_LOG_ERROR) != 0) {
		printf("# cannot open /dev/null: %s\n", strerror(errno));
		return 1;
	}
	test_hash_basics();
	test_hash_determinism();
	test_hash_zero();
	test_hash_equivalences();
	test_hash_relevance();
	test_hash_long();
	test_hash_speed();
	test_normalize();
	test_http_exchanges();
	test_http_outage();
	test_http_urls();
	test_http_names();
	test_from_config();
	test_parse_response();
	mk_log_close();
	return tap_done();
}
