/*
 * Unit tests of the memcached cache-aside decorator (markets/repo_cached.c)
 * over a fake in-memory repository, against a private memcached started
 * by the test on a unix socket in a temporary directory (skipped when
 * memcached is not installed): miss then fill, invalidation by writes,
 * the stale-fill race closed by leases, stampedes waiting on a lease,
 * corrupt or foreign values, backend errors, memcached unreachable, owed
 * invalidations paid after an outage; and the store layer's pipelined
 * increment (store/cache.c).
 *
 * Forked helpers end with an exec of /bin/true rather than exit, so that
 * valgrind (which does not follow exec by default) does not report the
 * parent's heap as theirs.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "markets/repo.h"
#include "store/cache.h"
#include "tap.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define TIMEOUT_MS 50

/* The stored format of repo_cached.c (its header comment and encode_doc). */
#define DOC_MAGIC "mkd1"
#define LEASE_MAGIC "mkl1"
#define HEADER_LEN 32
#define LEASE_LEN 16

/* ---------------------------------------------------------------- memcached */

static pid_t owner_pid; /* the test process: only it cleans up */
static pid_t mc_pid;    /* the private memcached, 0 when none */
static char mc_dir[64]; /* "" when none */
static char mc_sock[96];
static char mc_servers[160]; /* "unix:DIR/mc.sock" */

static void
pause_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sends sig to the private memcached, never to anything else. */
static void
mc_signal(int sig)
{
	if (mc_pid > 0)
		(void)kill(mc_pid, sig);
}

/* Stops memcached and waits until it really is stopped. */
static void
mc_freeze(void)
{
	int status;

	if (mc_pid <= 0)
		return;
	mc_signal(SIGSTOP);
	while (waitpid(mc_pid, &status, WUNTRACED) < 0 && errno == EINTR)
		;
}

static void
mc_thaw(void)
{
	int status;

	if (mc_pid <= 0)
		return;
	mc_signal(SIGCONT);
	while (waitpid(mc_pid, &status, WCONTINUED) < 0 && errno == EINTR)
		;
}

static void
mc_stop(void)
{
	if (getpid() != owner_pid)
		return;
	if (mc_pid > 0) {
		pid_t pid = mc_pid;

		mc_signal(SIGCONT);
		mc_signal(SIGTERM);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		mc_pid = 0;
	}
	if (mc_dir[0] != '\0') {
		char away[sizeof(mc_sock) + 8];

		snprintf(away, sizeof(away), "%s.away", mc_sock);
		(void)unlink(away);
		(void)unlink(mc_sock);
		(void)rmdir(mc_dir);
		mc_dir[0] = '\0';
	}
}

/* True once something accepts connections on path. */
static bool
socket_answers(const char *path)
{
	struct sockaddr_un addr;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return ok;
}

/* Starts memcached on DIR/mc.sock. Returns 0, or -1 with a reason printed. */
static int
mc_start(void)
{
	char tmpl[] = "/tmp/mk-test-repo-cached.XXXXXX";
	pid_t parent = getpid();

	if (mkdtemp(tmpl) == NULL) {
		printf("# mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	snprintf(mc_dir, sizeof(mc_dir), "%s", tmpl);
	snprintf(mc_sock, sizeof(mc_sock), "%s/mc.sock", mc_dir);
	snprintf(mc_servers, sizeof(mc_servers), "unix:%s", mc_sock);
	fflush(stdout);
	mc_pid = fork();
	if (mc_pid < 0) {
		mc_pid = 0;
		printf("# fork: %s\n", strerror(errno));
		return -1;
	}
	if (mc_pid == 0) {
		/* Dies with the test, however the test ends. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		if (geteuid() == 0)
			execl(MEMCACHED_BIN, "memcached", "-s", mc_sock, "-a",
			    "0600", "-U", "0", "-m", "16", "-u", "root",
			    (char *)NULL);
		else
			execl(MEMCACHED_BIN, "memcached", "-s", mc_sock, "-a",
			    "0600", "-U", "0", "-m", "16", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;
		int status;

		if (waitpid(mc_pid, &status, WNOHANG) == mc_pid) {
			mc_pid = 0;
			printf("# memcached exited at start (status %d)\n",
			    status);
			return -1;
		}
		if (stat(mc_sock, &st) == 0 && socket_answers(mc_sock))
			return 0;
		pause_ms(10);
	}
	printf("# memcached did not open %s in 5 s\n", mc_sock);
	return -1;
}

/*
 * ----------------------------------------------------------- fake repository
 */

enum fake_op {
	OP_GET_DOCUMENT,
	OP_GET,
	OP_USERS,
	OP_LIST,
	OP_CREATE,
	OP_BUY,
	OP_POSITION,
	OP_POSITIONS,
	OP_UPDATE,
	OP_REMOVE,
	OP_IDEM_RESERVE,
	OP_IDEM_PURGE,
	OP_IDEM_RELEASE,
	OP__MAX
};

struct fake_market {
	int64_t id;
	uint64_t version;
	bool exists;
	char json[160];
};

/* The "database": shared by every fake repository of a test. */
struct fake_store {
	struct fake_market markets[32];
	size_t n;
};

struct fake_repo {
	struct mk_market_repo base;
	struct fake_store *store;
	unsigned calls[OP__MAX];
	enum mk_err get_error;   /* get_document returns it when not MK_OK */
	enum mk_err write_error; /* writes return it when not MK_OK */
	int sleep_ms;            /* get_document sleeps this long first */
	/* Run once, inside get_document, after the row was read. */
	void (*hook)(void *arg);
	void *hook_arg;
	int *destroyed; /* counts destroys, when set */
};

static struct fake_store store;

static void
render_json(char *out, size_t size, int64_t id, uint64_t version)
{
	snprintf(out, size,
	    "{\"id\":%lld,\"version\":%llu,\"name\":\"Market %lld\"}",
	    (long long)id, (unsigned long long)version, (long long)id);
}

static struct fake_market *
store_find(int64_t id)
{
	for (size_t i = 0; i < store.n; i++) {
		if (store.markets[i].id == id)
			return store.markets[i].exists ? &store.markets[i]
						       : NULL;
	}
	return NULL;
}

static void
store_put(int64_t id, uint64_t version)
{
	struct fake_market *m = NULL;

	for (size_t i = 0; i < store.n; i++) {
		if (store.markets[i].id == id)
			m = &store.markets[i];
	}
	if (m == NULL) {
		if (store.n == sizeof(store.markets) / sizeof(store.markets[0]))
			abort();
		m = &store.markets[store.n++];
	}
	m->id = id;
	m->version = version;
	m->exists = true;
	render_json(m->json, sizeof(m->json), id, version);
}

/* A committed write: the row's version moves on. */
static enum mk_err
fake_write(struct fake_repo *repo, enum fake_op op, int64_t id, bool removes)
{
	struct fake_market *m;

	repo->calls[op]++;
	if (repo->write_error != MK_OK)
		return repo->write_error;
	m = store_find(id);
	if (m == NULL)
		return MK_ENOTFOUND;
	m->version++;
	render_json(m->json, sizeof(m->json), m->id, m->version);
	if (removes)
		m->exists = false;
	return MK_OK;
}

static enum mk_err
fake_get_document(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t id, struct mk_cache_incr *ride, struct mk_market_doc *out)
{
	(void)ride;
	struct fake_repo *repo = (struct fake_repo *)base;
	struct fake_market *m;
	char *json;

	repo->calls[OP_GET_DOCUMENT]++;
	if (repo->sleep_ms > 0)
		pause_ms(repo->sleep_ms);
	if (repo->get_error != MK_OK)
		return repo->get_error;
	m = store_find(id);
	if (m == NULL)
		return MK_ENOTFOUND;
	json = mk_arena_strndup(arena, m->json, strlen(m->json));
	if (json == NULL)
		return MK_ENOMEM;
	out->id = m->id;
	out->version = m->version;
	out->json = json;
	out->json_len = strlen(json);
	if (repo->hook != NULL) {
		void (*hook)(void *) = repo->hook;

		repo->hook = NULL;
		hook(repo->hook_arg);
	}
	return MK_OK;
}

static enum mk_err
fake_get(struct mk_market_repo *base, struct mk_arena *arena, int64_t id,
    unsigned fields, struct mk_market *out)
{
	struct fake_repo *repo = (struct fake_repo *)base;
	struct fake_market *m = store_find(id);

	(void)arena;
	repo->calls[OP_GET]++;
	if (m == NULL)
		return MK_ENOTFOUND;
	memset(out, 0, sizeof(*out));
	out->fields = fields;
	out->id = id;
	out->version = m->version;
	return MK_OK;
}

static enum mk_err
fake_users(struct mk_market_repo *base, struct mk_arena *arena,
    const int64_t *ids, size_t n, struct mk_user *out, size_t *found)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)arena, (void)ids, (void)n, (void)out;
	repo->calls[OP_USERS]++;
	*found = 0;
	return MK_OK;
}

static enum mk_err
fake_list(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_market_query *q, struct mk_market_page *page)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)arena, (void)q;
	repo->calls[OP_LIST]++;
	memset(page, 0, sizeof(*page));
	page->total = -1;
	return MK_OK;
}

static enum mk_err
fake_create(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, int64_t *id)
{
	struct fake_repo *repo = (struct fake_repo *)base;
	int64_t next = 1000;

	(void)arena, (void)who, (void)in, (void)idem;
	repo->calls[OP_CREATE]++;
	if (repo->write_error != MK_OK)
		return repo->write_error;
	for (size_t i = 0; i < store.n; i++) {
		if (store.markets[i].id >= next)
			next = store.markets[i].id + 1;
	}
	store_put(next, 1);
	*id = next;
	return MK_OK;
}

static enum mk_err
fake_buy(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, int64_t *id)
{
	struct fake_repo *repo = (struct fake_repo *)base;
	enum mk_err rc;

	(void)arena, (void)who, (void)side, (void)amount, (void)idem;
	rc = fake_write(repo, OP_BUY, market_id, false);
	if (rc == MK_OK)
		*id = 77;
	return rc;
}

static enum mk_err
fake_position(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)arena, (void)market_id, (void)id, (void)out;
	repo->calls[OP_POSITION]++;
	return MK_ENOTFOUND;
}

static enum mk_err
fake_positions(struct mk_market_repo *base, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)arena, (void)market_id, (void)limit, (void)offset,
	    (void)after_key, (void)after_id;
	repo->calls[OP_POSITIONS]++;
	memset(page, 0, sizeof(*page));
	return MK_OK;
}

static enum mk_err
fake_update(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, bool may_edit_any, int64_t id,
    const struct mk_market_input *in, const char *if_match)
{
	(void)arena, (void)who, (void)may_edit_any, (void)in, (void)if_match;
	return fake_write((struct fake_repo *)base, OP_UPDATE, id, false);
}

static enum mk_err
fake_remove(struct mk_market_repo *base, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	(void)arena, (void)who;
	return fake_write((struct fake_repo *)base, OP_REMOVE, id, true);
}

static enum mk_err
fake_idem_reserve(struct mk_market_repo *base, struct mk_arena *arena,
    struct mk_idempotency *idem, enum mk_idem_state *state)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)arena, (void)idem;
	repo->calls[OP_IDEM_RESERVE]++;
	*state = MK_IDEM_RESERVED;
	return MK_OK;
}

static enum mk_err
fake_idem_purge(struct mk_market_repo *base, unsigned limit, uint64_t *purged)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)limit;
	repo->calls[OP_IDEM_PURGE]++;
	*purged = 3;
	return MK_OK;
}

static void
fake_idem_release(
    struct mk_market_repo *base, const struct mk_idempotency *idem)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	(void)idem;
	repo->calls[OP_IDEM_RELEASE]++;
}

static void
fake_destroy(struct mk_market_repo *base)
{
	struct fake_repo *repo = (struct fake_repo *)base;

	if (repo->destroyed != NULL)
		(*repo->destroyed)++;
	free(repo);
}

static const struct mk_market_repo_ops fake_ops = {
	.get_document = fake_get_document,
	.get = fake_get,
	.users = fake_users,
	.list = fake_list,
	.create = fake_create,
	.buy = fake_buy,
	.position = fake_position,
	.positions = fake_positions,
	.update = fake_update,
	.remove = fake_remove,
	.idem_reserve = fake_idem_reserve,
	.idem_purge = fake_idem_purge,
	.idem_release = fake_idem_release,
	.destroy = fake_destroy,
};

static struct fake_repo *
fake_new(void)
{
	struct fake_repo *repo = calloc(1, sizeof(*repo));

	if (repo == NULL)
		abort();
	repo->base.ops = &fake_ops;
	repo->store = &store;
	return repo;
}

/* ------------------------------------------------------------------ helpers */

/* A decorator and the pieces it stands on. */
struct stack {
	struct mk_cache *cache; /* the decorator's own */
	struct fake_repo *fake; /* owned by repo */
	struct mk_market_repo *repo;
};

static void
stack_open(struct stack *s, const char *servers, int lease_wait_ms)
{
	struct mk_market_cache_options options = {
		.ttl_s = 300,
		.lease_ttl_s = 10,
		.lease_wait_ms = lease_wait_ms,
	};
	char err[256];

	s->cache = mk_cache_new(servers, TIMEOUT_MS, err, sizeof(err));
	if (s->cache == NULL) {
		printf("# mk_cache_new: %s\n", err);
		abort();
	}
	s->fake = fake_new();
	s->repo = mk_market_repo_cached_new(&s->fake->base, s->cache, &options);
	if (s->repo == NULL)
		abort();
}

static void
stack_close(struct stack *s)
{
	mk_market_repo_free(s->repo);
	mk_cache_free(s->cache);
	memset(s, 0, sizeof(*s));
}

static struct mk_cache *peek_cache; /* the test's own view of memcached */
static struct mk_arena *peek_arena;

static size_t
doc_key(int64_t id, char *key, size_t size)
{
	return (size_t)snprintf(key, size, "mk:m:%lld", (long long)id);
}

static void
put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t
fnv1a64(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The stored form of a document, as encode_doc makes it. Returns its length. */
static size_t
encode_doc(unsigned char *out, size_t size, int64_t id, uint64_t version,
    const char *json)
{
	size_t json_len = strlen(json);

	if (HEADER_LEN + json_len > size)
		abort();
	memcpy(out, DOC_MAGIC, 4);
	put_le(out + 4, json_len, 4);
	put_le(out + 8, (uint64_t)id, 8);
	put_le(out + 16, version, 8);
	put_le(out + 24, fnv1a64(json, json_len), 8);
	memcpy(out + HEADER_LEN, json, json_len);
	return HEADER_LEN + json_len;
}

enum peek_kind {
	PEEK_ABSENT,
	PEEK_LEASE,
	PEEK_DOC,
	PEEK_OTHER,
	PEEK_ERROR
};

static const char *const peek_names[] = { "absent", "a lease", "a document",
	"something else", "an error" };

struct peeked {
	enum peek_kind kind;
	uint64_t version;
	char json[256];
	unsigned char raw[64]; /* the first bytes as stored */
	size_t len;
};

/* What memcached holds under market id's key, decoded independently. */
static enum peek_kind
peek(int64_t id, struct peeked *p)
{
	struct mk_cache_value value;
	char key[32];
	size_t key_len = doc_key(id, key, sizeof(key));
	enum mk_err rc;
	size_t json_len;

	memset(p, 0, sizeof(*p));
	mk_arena_reset(peek_arena);
	rc = mk_cache_get(peek_cache, peek_arena, key, key_len, NULL, &value);
	if (rc == MK_ENOTFOUND)
		return p->kind = PEEK_ABSENT;
	if (rc != MK_OK)
		return p->kind = PEEK_ERROR;
	p->len = value.len;
	memcpy(p->raw, value.bytes,
	    value.len < sizeof(p->raw) ? value.len : sizeof(p->raw));
	if (value.len == LEASE_LEN && memcmp(value.bytes, LEASE_MAGIC, 4) == 0)
		return p->kind = PEEK_LEASE;
	if (value.len < HEADER_LEN || memcmp(value.bytes, DOC_MAGIC, 4) != 0)
		return p->kind = PEEK_OTHER;
	json_len = (size_t)get_le(value.bytes + 4, 4);
	if (json_len != value.len - HEADER_LEN || json_len >= sizeof(p->json) ||
	    get_le(value.bytes + 8, 8) != (uint64_t)id ||
	    get_le(value.bytes + 24, 8) !=
		fnv1a64(value.bytes + HEADER_LEN, json_len))
		return p->kind = PEEK_OTHER;
	p->version = get_le(value.bytes + 16, 8);
	memcpy(p->json, value.bytes + HEADER_LEN, json_len);
	p->json[json_len] = '\0';
	return p->kind = PEEK_DOC;
}

static void
poke(int64_t id, const void *bytes, size_t len)
{
	char key[32];
	size_t key_len = doc_key(id, key, sizeof(key));

	if (mk_cache_set(peek_cache, key, key_len, bytes, len, 60) != MK_OK)
		printf("# could not set %s by hand\n", key);
}

static void
forget(int64_t id)
{
	char key[32];
	size_t key_len = doc_key(id, key, sizeof(key));

	(void)mk_cache_delete(peek_cache, key, key_len);
}

/* memcached holds market id's document at version, with the fake's JSON. */
static void
expect_cached(int64_t id, uint64_t version, const char *what)
{
	struct peeked p;
	char want[160];

	render_json(want, sizeof(want), id, version);
	peek(id, &p);
	tap_ok(p.kind == PEEK_DOC && p.version == version &&
		strcmp(p.json, want) == 0,
	    "%s: memcached holds market %lld's document v%llu", what,
	    (long long)id, (unsigned long long)version);
	if (p.kind != PEEK_DOC)
		printf("#   memcached holds %s (%zu bytes)\n",
		    peek_names[p.kind], p.len);
	else if (p.version != version || strcmp(p.json, want) != 0)
		printf("#   got v%llu '%s'\n#   want v%llu '%s'\n",
		    (unsigned long long)p.version, p.json,
		    (unsigned long long)version, want);
}

static void
expect_peek(int64_t id, enum peek_kind kind, const char *what)
{
	struct peeked p;

	peek(id, &p);
	tap_ok(p.kind == kind, "%s: memcached holds %s under mk:m:%lld", what,
	    peek_names[kind], (long long)id);
	if (p.kind != kind)
		printf("#   it holds %s (%zu bytes, version %llu)\n",
		    peek_names[p.kind], p.len, (unsigned long long)p.version);
}

/* A read returned market id's document at version, as the fake renders it. */
static void
expect_doc(enum mk_err rc, const struct mk_market_doc *doc, int64_t id,
    uint64_t version, const char *what)
{
	char want[160];
	bool same;

	render_json(want, sizeof(want), id, version);
	same = rc == MK_OK && doc->id == id && doc->version == version &&
	    doc->json_len == strlen(want) &&
	    memcmp(doc->json, want, doc->json_len) == 0;
	tap_ok(same, "%s: returns market %lld v%llu", what, (long long)id,
	    (unsigned long long)version);
	if (!same && rc != MK_OK)
		printf("#   got %s\n", mk_err_name(rc));
	else if (!same)
		printf("#   got id %lld v%llu '%.*s'\n#   want '%s'\n",
		    (long long)doc->id, (unsigned long long)doc->version,
		    (int)doc->json_len, doc->json, want);
}

static enum mk_err
read_doc(struct mk_market_repo *repo, struct mk_arena *arena, int64_t id,
    struct mk_market_doc *doc)
{
	memset(doc, 0, sizeof(*doc));
	return mk_market_repo_get_document(repo, arena, id, NULL, doc);
}

/* Counter values at some moment, to measure what a step added. */
struct snap {
	uint64_t v[MK_COUNTER__MAX];
};

static void
snap_take(struct snap *s)
{
	for (int i = 0; i < MK_COUNTER__MAX; i++)
		s->v[i] = mk_metrics_total((enum mk_counter)i);
}

static long long
moved(const struct snap *s, enum mk_counter c)
{
	return (long long)(mk_metrics_total(c) - s->v[c]);
}

static const struct mk_identity who = { .user_id = 1, .role = MK_ROLE_USER };

/*
 * --------------------------------------------------------------------- cases
 */

/* 0. Everything but reads of whole documents goes to the inner repository. */
static void
test_pass_through(struct mk_arena *arena)
{
	struct stack s;
	struct mk_market market;
	struct mk_user users[2];
	struct mk_market_query q = { .limit = 10 };
	struct mk_market_page page;
	struct mk_position position;
	struct mk_position_page ppage;
	struct mk_idempotency idem = { .user_id = 1, .key = "k" };
	enum mk_idem_state state;
	int64_t ids[1] = { 1 }, created = 0;
	size_t found = 9;
	uint64_t purged = 0;
	int destroyed = 0;
	struct snap before;

	stack_open(&s, mc_servers, 20);
	s.fake->destroyed = &destroyed;
	store_put(1, 1);
	snap_take(&before);
	tap_is_int(s.repo->ops->get(s.repo, arena, 1, 3, &market), MK_OK,
	    "pass-through: get");
	tap_is_int(s.repo->ops->users(s.repo, arena, ids, 1, users, &found),
	    MK_OK, "pass-through: users");
	tap_is_int(found, 0,
	    "pass-through: users' count comes from the inner repository");
	tap_is_int(s.repo->ops->list(s.repo, arena, &q, &page), MK_OK,
	    "pass-through: list");
	tap_is_int(s.repo->ops->position(s.repo, arena, 1, 2, &position),
	    MK_ENOTFOUND, "pass-through: position (its error too)");
	tap_is_int(
	    s.repo->ops->positions(s.repo, arena, 1, 10, 0, NULL, 0, &ppage),
	    MK_OK, "pass-through: positions");
	tap_is_int(s.repo->ops->idem_reserve(s.repo, arena, &idem, &state),
	    MK_OK, "pass-through: idem_reserve");
	tap_is_int(s.repo->ops->idem_purge(s.repo, 100, &purged), MK_OK,
	    "pass-through: idem_purge");
	tap_is_int(purged, 3,
	    "pass-through: idem_purge's count comes from the inner repository");
	s.repo->ops->idem_release(s.repo, &idem);
	tap_is_int(
	    s.repo->ops->create(s.repo, arena, &who, NULL, NULL, &created),
	    MK_OK, "pass-through: create");
	tap_ok(created >= 1000,
	    "pass-through: create's id comes from the inner repository");
	{
		static const enum fake_op once[] = {
			OP_GET,
			OP_USERS,
			OP_LIST,
			OP_POSITION,
			OP_POSITIONS,
			OP_IDEM_RESERVE,
			OP_IDEM_PURGE,
			OP_IDEM_RELEASE,
			OP_CREATE,
		};
		bool each_once = true;

		for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
			each_once = each_once && s.fake->calls[once[i]] == 1;
		tap_ok(each_once && s.fake->calls[OP_GET_DOCUMENT] == 0,
		    "pass-through: each op reached the inner repository "
		    "exactly once");
	}
	tap_is_int(moved(&before, MK_COUNTER_CACHE_INVALIDATIONS), 0,
	    "pass-through: a create invalidates nothing");
	expect_peek(created, PEEK_ABSENT, "pass-through: create");
	stack_close(&s);
	tap_is_int(destroyed, 1,
	    "destroying the decorator destroys the inner repository once");
	mk_arena_reset(arena);
}

/* 1. A miss reads the inner repository once and fills; the next read hits. */
static void
test_miss_then_fill(struct mk_arena *arena)
{
	struct stack s;
	struct mk_market_doc doc;
	struct snap before;
	enum mk_err rc;

	stack_open(&s, mc_servers, 20);
	store_put(11, 4);
	forget(11);
	snap_take(&before);
	rc = read_doc(s.repo, arena, 11, &doc);
	expect_doc(rc, &doc, 11, 4, "miss");
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
	    "miss: the inner repository was read once");
	expect_cached(11, 4, "miss");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_MISSES), 1,
	    "miss: counted as a miss");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 1,
	    "miss: counted as a fill");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_HITS), 0,
	    "miss: not counted as a hit");

	snap_take(&before);
	rc = read_doc(s.repo, arena, 11, &doc);
	expect_doc(rc, &doc, 11, 4, "hit");
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
	    "hit: the inner repository was not read");
	tap_is_int(
	    moved(&before, MK_COUNTER_CACHE_HITS), 1, "hit: counted as a hit");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_MISSES) +
		moved(&before, MK_COUNTER_CACHE_FILLS),
	    0, "hit: neither a miss nor a fill");
	stack_close(&s);
	mk_arena_reset(arena);
}

enum write_kind {
	W_UPDATE,
	W_BUY,
	W_REMOVE
};

static enum mk_err
do_write(struct mk_market_repo *repo, struct mk_arena *arena,
    enum write_kind kind, int64_t id)
{
	int64_t position_id = 0;

	switch (kind) {
	case W_UPDATE:
		return repo->ops->update(
		    repo, arena, &who, false, id, NULL, NULL);
	case W_BUY:
		return repo->ops->buy(
		    repo, arena, &who, id, "yes", "10.00", NULL, &position_id);
	case W_REMOVE:
		return repo->ops->remove(repo, arena, &who, id);
	}
	return MK_EINTERNAL;
}

/* 2. Writes that commit invalidate; writes that fail do not. */
static void
test_invalidate(struct mk_arena *arena)
{
	static const struct {
		const char *name;
		enum write_kind kind;
		enum mk_err inner_error; /* what the inner write returns */
	} cases[] = {
		{ "update", W_UPDATE, MK_OK },
		{ "buy", W_BUY, MK_OK },
		{ "remove", W_REMOVE, MK_OK },
		{ "update refused (MK_EPRECONDITION)", W_UPDATE,
		    MK_EPRECONDITION },
		{ "buy refused (MK_ECONFLICT)", W_BUY, MK_ECONFLICT },
		{ "remove refused (MK_EFORBIDDEN)", W_REMOVE, MK_EFORBIDDEN },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = 21 + (int64_t)i;
		char what[96];
		struct stack s;
		struct mk_market_doc doc;
		struct snap before;
		enum mk_err rc;
		bool commits = cases[i].inner_error == MK_OK;

		snprintf(what, sizeof(what), "invalidate: %s", cases[i].name);
		stack_open(&s, mc_servers, 20);
		store_put(id, 1);
		forget(id);
		(void)read_doc(s.repo, arena, id, &doc);
		expect_cached(id, 1, what);
		s.fake->write_error = cases[i].inner_error;
		snap_take(&before);
		rc = do_write(s.repo, arena, cases[i].kind, id);
		tap_is_int(rc, cases[i].inner_error,
		    "%s: returns the inner repository's answer", what);
		s.fake->write_error = MK_OK;
		tap_is_int(moved(&before, MK_COUNTER_CACHE_INVALIDATIONS),
		    commits ? 1 : 0, "%s: %s", what,
		    commits ? "counted as an invalidation"
			    : "invalidates nothing");
		if (commits) {
			expect_peek(id, PEEK_ABSENT, what);
		} else {
			expect_cached(id, 1, what);
		}
		rc = read_doc(s.repo, arena, id, &doc);
		if (!commits) {
			expect_doc(rc, &doc, id, 1, what);
			tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
			    "%s: the next read hits", what);
		} else if (cases[i].kind == W_REMOVE) {
			tap_is_int(rc, MK_ENOTFOUND,
			    "%s: the next read finds no market", what);
			tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 2,
			    "%s: it asked the inner repository", what);
			expect_peek(id, PEEK_ABSENT, what);
		} else {
			expect_doc(rc, &doc, id, 2, what);
			tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 2,
			    "%s: the next read went to the inner repository",
			    what);
			expect_cached(id, 2, what);
		}
		stack_close(&s);
		mk_arena_reset(arena);
	}
}

/* 3. A write committing while a reader fills: the reader must not store. */
enum race_mode {
	RACE_WRITE,      /* a write commits */
	RACE_WRITE_FILL, /* a write commits, then another reader fills */
	/*
	 * A write commits, then a reader on another host takes the lease:
	 * its worker has the same pid as ours (pids are per host, and
	 * identical containers start their workers with identical pids) and
	 * has missed as often, so its lease has the same bytes as ours.
	 */
	RACE_WRITE_TWIN_LEASE,
};

struct race {
	struct stack *writer; /* the second decorator */
	struct mk_arena *arena;
	int64_t id;
	enum race_mode mode;
	enum mk_err write_rc;
	enum mk_err read_rc;
	uint64_t read_version;
	enum mk_err lease_rc;
};

/* The lease a fresh decorator of this process takes at its first miss. */
static void
first_lease(unsigned char *lease)
{
	memcpy(lease, LEASE_MAGIC, 4);
	put_le(lease + 4, (uint32_t)getpid(), 4);
	put_le(lease + 8, 1, 8);
}

static void
race_hook(void *arg)
{
	struct race *race = arg;
	struct mk_market_doc doc;
	unsigned char lease[LEASE_LEN];
	char key[32];
	size_t key_len;

	race->write_rc =
	    do_write(race->writer->repo, race->arena, W_UPDATE, race->id);
	switch (race->mode) {
	case RACE_WRITE:
		break;
	case RACE_WRITE_FILL:
		race->read_rc =
		    read_doc(race->writer->repo, race->arena, race->id, &doc);
		race->read_version = doc.version;
		break;
	case RACE_WRITE_TWIN_LEASE:
		first_lease(lease);
		key_len = doc_key(race->id, key, sizeof(key));
		race->lease_rc = mk_cache_add(
		    peek_cache, key, key_len, lease, sizeof(lease), 10);
		break;
	}
}

static void
test_stale_fill_race(struct mk_arena *arena)
{
	static const struct {
		const char *name;
		enum race_mode mode;
	} cases[] = {
		{ "a write commits during the fill", RACE_WRITE },
		{ "a write commits, then another reader fills, during the fill",
		    RACE_WRITE_FILL },
		{ "a write commits, then another host's reader with our pid "
		  "and serial leases, "
		  "during the fill",
		    RACE_WRITE_TWIN_LEASE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = 31 + (int64_t)i;
		char what[112];
		struct stack reader, writer;
		struct mk_market_doc doc;
		struct race race = { .writer = &writer,
			.arena = arena,
			.id = id,
			.mode = cases[i].mode };
		struct snap before;
		enum mk_err rc;

		snprintf(what, sizeof(what), "race: %s", cases[i].name);
		stack_open(&reader, mc_servers, 20);
		stack_open(&writer, mc_servers, 20);
		store_put(id, 1);
		forget(id);
		reader.fake->hook = race_hook;
		reader.fake->hook_arg = &race;
		snap_take(&before);
		rc = read_doc(reader.repo, arena, id, &doc);
		expect_doc(rc, &doc, id, 1, what);
		tap_is_int(
		    race.write_rc, MK_OK, "%s: the write went through", what);
		tap_is_int(reader.fake->calls[OP_GET_DOCUMENT], 1,
		    "%s: the reader read the row once", what);
		tap_is_int(writer.fake->calls[OP_UPDATE], 1,
		    "%s: the writer wrote once", what);
		switch (cases[i].mode) {
		case RACE_WRITE:
			expect_peek(id, PEEK_ABSENT, what);
			tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 0,
			    "%s: nothing was filled", what);
			break;
		case RACE_WRITE_FILL:
			tap_ok(race.read_rc == MK_OK && race.read_version == 2,
			    "%s: the other reader saw v2", what);
			expect_cached(id, 2, what);
			tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 1,
			    "%s: only the other reader filled", what);
			break;
		case RACE_WRITE_TWIN_LEASE:
			tap_is_int(race.lease_rc, MK_OK,
			    "%s: the other host took the lease", what);
			/* Its lease, not our v1 read before the write. */
			expect_peek(id, PEEK_LEASE, what);
			tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 0,
			    "%s: nothing was filled", what);
			/*
			 * The next read (it waits on that lease) must not serve
			 * v1.
			 */
			rc = read_doc(reader.repo, arena, id, &doc);
			expect_doc(rc, &doc, id, 2,
			    "race: the next read, after the other host's "
			    "lease");
			forget(id); /* the other host's fill, never to come */
			break;
		}
		rc = read_doc(reader.repo, arena, id, &doc);
		expect_doc(rc, &doc, id, 2, "race: the next read");
		expect_cached(id, 2, what);
		stack_close(&reader);
		stack_close(&writer);
		mk_arena_reset(arena);
	}
}

/*
 * Forks a helper that runs fn(arg) and ends by exec'ing /bin/true (exit
 * status 0) or exits 1 when fn fails. Returns its pid.
 */
static pid_t
spawn_helper(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		printf("# fork: %s\n", strerror(errno));
		abort();
	}
	if (pid == 0) {
		if (fn(arg) != 0)
			_exit(1);
		execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	return pid;
}

static int
reap(pid_t pid)
{
	int status = -1;

	if (pid <= 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Helper: after 5 ms, replaces the lease with a document (v7) of its own. */
struct writer_job {
	int64_t id;
	uint64_t version;
	int delay_ms;
};

static int
writer_job_run(void *arg)
{
	const struct writer_job *job = arg;
	unsigned char value[256];
	char key[32], err[256], json[160];
	size_t key_len = doc_key(job->id, key, sizeof(key)), len;
	struct mk_cache *cache;
	enum mk_err rc;

	pause_ms(job->delay_ms);
	cache = mk_cache_new(mc_servers, 2000, err, sizeof(err));
	if (cache == NULL)
		return -1;
	render_json(json, sizeof(json), job->id, job->version);
	len = encode_doc(value, sizeof(value), job->id, job->version, json);
	rc = mk_cache_set(cache, key, key_len, value, len, 60);
	mk_cache_free(cache);
	return rc == MK_OK ? 0 : -1;
}

/* Helper: a reader on another worker whose row read is slow (it fills). */
struct reader_job {
	int64_t id;
	int sleep_ms;
};

static int
reader_job_run(void *arg)
{
	const struct reader_job *job = arg;
	struct stack s;
	struct mk_arena *arena = mk_arena_new(0);
	struct mk_market_doc doc;
	enum mk_err rc;

	if (arena == NULL)
		return -1;
	stack_open(&s, mc_servers, 20);
	s.fake->sleep_ms = job->sleep_ms;
	rc = read_doc(s.repo, arena, job->id, &doc);
	stack_close(&s);
	mk_arena_free(arena);
	return rc == MK_OK ? 0 : -1;
}

/* 4. Readers that find a lease wait for the filler's document. */
static void
test_stampede(struct mk_arena *arena)
{
	static const unsigned char lease[LEASE_LEN] =
	    "mkl1"
	    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
	struct stack s;
	struct mk_market_doc doc;
	struct snap before;
	struct peeked p;
	int64_t start, elapsed;
	enum mk_err rc;
	pid_t pid;

	/*
	 * A lease nobody will swap: wait lease_wait_ms, then read without
	 * filling.
	 */
	stack_open(&s, mc_servers, 20);
	store_put(41, 3);
	poke(41, lease, sizeof(lease));
	snap_take(&before);
	start = mk_clock_mono_ms();
	rc = read_doc(s.repo, arena, 41, &doc);
	elapsed = mk_clock_mono_ms() - start;
	expect_doc(rc, &doc, 41, 3, "stampede: a lease that stays");
	tap_ok(elapsed >= 20,
	    "stampede: the reader waited lease_wait_ms (%lld ms)",
	    (long long)elapsed);
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
	    "stampede: then read the inner repository once");
	peek(41, &p);
	tap_ok(p.kind == PEEK_LEASE && memcmp(p.raw, lease, sizeof(lease)) == 0,
	    "stampede: the other's lease is left alone (nothing filled)");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_LEASE_WAITS), 1,
	    "stampede: counted as one lease wait");
	tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 0,
	    "stampede: not counted as a fill");
	stack_close(&s);
	mk_arena_reset(arena);

	/*
	 * A filler (a helper process) swaps the lease for a document after
	 * about 5 ms. The wait is long here only so that a slow machine or
	 * valgrind cannot make the helper late; a hit returns at once.
	 */
	{
		struct writer_job job = {
			.id = 42, .version = 7, .delay_ms = 5
		};

		stack_open(&s, mc_servers, 3000);
		store_put(42, 3);
		poke(42, lease, sizeof(lease));
		snap_take(&before);
		pid = spawn_helper(writer_job_run, &job);
		rc = read_doc(s.repo, arena, 42, &doc);
		tap_is_int(
		    reap(pid), 0, "stampede: the filling helper succeeded");
		expect_doc(rc, &doc, 42, 7, "stampede: the filler's document");
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 0,
		    "stampede: the inner repository was not read");
		tap_is_int(moved(&before, MK_COUNTER_CACHE_HITS), 1,
		    "stampede: counted as a hit");
		tap_is_int(moved(&before, MK_COUNTER_CACHE_LEASE_WAITS), 1,
		    "stampede: after one lease wait");
		stack_close(&s);
		mk_arena_reset(arena);
	}

	/*
	 * Two decorators for real: a helper process misses and fills with a
	 * slow row read (200 ms); a reader arriving meanwhile waits for its
	 * document instead of reading the row too.
	 */
	{
		struct reader_job job = { .id = 43, .sleep_ms = 200 };
		bool leased = false;

		stack_open(&s, mc_servers, 5000);
		store_put(43, 5);
		forget(43);
		pid = spawn_helper(reader_job_run, &job);
		for (int i = 0; i < 500 && !leased; i++) {
			leased = peek(43, &p) == PEEK_LEASE;
			if (!leased)
				pause_ms(2);
		}
		tap_ok(leased, "stampede: the first reader took the lease");
		snap_take(&before);
		rc = read_doc(s.repo, arena, 43, &doc);
		tap_is_int(
		    reap(pid), 0, "stampede: the first reader succeeded");
		expect_doc(rc, &doc, 43, 5, "stampede: the second reader");
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 0,
		    "stampede: the second reader did not read the row");
		tap_is_int(moved(&before, MK_COUNTER_CACHE_HITS), 1,
		    "stampede: the second reader hit");
		expect_cached(43, 5, "stampede");
		stack_close(&s);
		mk_arena_reset(arena);
	}
}

/* 5. Values that are not this market's document are misses, and replaced. */
static void
test_corrupt(struct mk_arena *arena)
{
	enum {
		GARBAGE,
		EMPTY,
		TRUNCATED,
		BAD_CHECKSUM,
		OTHER_ID,
		FUTURE_MAGIC,
		NOT_AN_OBJECT,
		LONGER
	};
	static const struct {
		const char *name;
		int kind;
	} cases[] = {
		{ "garbage bytes", GARBAGE },
		{ "an empty value", EMPTY },
		{ "a truncated document", TRUNCATED },
		{ "a document with a wrong checksum", BAD_CHECKSUM },
		{ "another market's valid document", OTHER_ID },
		{ "a document of another format version", FUTURE_MAGIC },
		{ "a well-summed document that is not a JSON object",
		    NOT_AN_OBJECT },
		{ "a document with bytes after it", LONGER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = 51 + (int64_t)i;
		char what[96], json[160];
		unsigned char value[256];
		size_t len = 0;
		struct stack s;
		struct mk_market_doc doc;
		struct snap before;
		enum mk_err rc;

		snprintf(what, sizeof(what), "corrupt: %s", cases[i].name);
		stack_open(&s, mc_servers, 20);
		store_put(id, 2);
		render_json(json, sizeof(json), id, 9);
		switch (cases[i].kind) {
		case GARBAGE:
			memcpy(value,
			    "hello, world: not a document at all, certainly",
			    46);
			len = 46;
			break;
		case EMPTY:
			len = 0;
			break;
		case TRUNCATED:
			len = encode_doc(value, sizeof(value), id, 9, json) - 5;
			break;
		case BAD_CHECKSUM:
			len = encode_doc(value, sizeof(value), id, 9, json);
			value[24] ^= 0x40;
			break;
		case OTHER_ID:
			render_json(json, sizeof(json), id + 100, 9);
			len =
			    encode_doc(value, sizeof(value), id + 100, 9, json);
			break;
		case FUTURE_MAGIC:
			len = encode_doc(value, sizeof(value), id, 9, json);
			value[3] = '2';
			break;
		case NOT_AN_OBJECT:
			len =
			    encode_doc(value, sizeof(value), id, 9, "[1,2,3]");
			break;
		case LONGER:
			len = encode_doc(value, sizeof(value), id, 9, json);
			memcpy(value + len, "xyz", 3);
			len += 3;
			break;
		}
		poke(id, value, len);
		snap_take(&before);
		rc = read_doc(s.repo, arena, id, &doc);
		expect_doc(rc, &doc, id, 2, what);
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
		    "%s: the inner repository was read", what);
		tap_is_int(moved(&before, MK_COUNTER_CACHE_MISSES), 1,
		    "%s: counted as a miss", what);
		expect_cached(id, 2, what);
		stack_close(&s);
		mk_arena_reset(arena);
	}
}

/* 6. A failed or empty row read leaves nothing behind. */
static void
test_backend_error(struct mk_arena *arena)
{
	static const struct {
		const char *name;
		int64_t id;
		bool exists;
		enum mk_err inner_error;
		enum mk_err want;
	} cases[] = {
		{ "inner MK_EUNAVAIL", 61, true, MK_EUNAVAIL, MK_EUNAVAIL },
		{ "inner MK_EINTERNAL", 62, true, MK_EINTERNAL, MK_EINTERNAL },
		{ "unknown market", 63, false, MK_OK, MK_ENOTFOUND },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t id = cases[i].id;
		char what[96];
		struct stack s;
		struct mk_market_doc doc;
		struct snap before;
		enum mk_err rc;

		snprintf(
		    what, sizeof(what), "backend error: %s", cases[i].name);
		stack_open(&s, mc_servers, 20);
		if (cases[i].exists)
			store_put(id, 1);
		forget(id);
		s.fake->get_error = cases[i].inner_error;
		snap_take(&before);
		rc = read_doc(s.repo, arena, id, &doc);
		tap_is_int(rc, cases[i].want, "%s: returns %s", what,
		    mk_err_name(cases[i].want));
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 1,
		    "%s: the inner repository was read once", what);
		expect_peek(id, PEEK_ABSENT, what);
		tap_is_int(moved(&before, MK_COUNTER_CACHE_FILLS), 0,
		    "%s: nothing filled", what);
		/*
		 * The lease was given back: the next reader fills at once, no
		 * wait.
		 */
		s.fake->get_error = MK_OK;
		if (!cases[i].exists)
			store_put(id, 1);
		snap_take(&before);
		rc = read_doc(s.repo, arena, id, &doc);
		expect_doc(rc, &doc, id, 1, what);
		tap_is_int(moved(&before, MK_COUNTER_CACHE_LEASE_WAITS), 0,
		    "%s: the next reader did not wait on a lease", what);
		expect_cached(id, 1, what);
		stack_close(&s);
		mk_arena_reset(arena);
	}
}

/* 7. memcached unreachable: reads go to the inner repository, writes work. */
static void
test_unreachable(struct mk_arena *arena)
{
	char servers[192];
	struct stack s;
	struct mk_market_doc doc;
	struct snap before;
	bool all_ok = true;
	enum mk_err rc;

	snprintf(
	    servers, sizeof(servers), "unix:%s/nobody-listens.sock", mc_dir);
	stack_open(&s, servers, 20);
	store_put(71, 1);
	snap_take(&before);
	for (int i = 0; i < 3; i++) {
		rc = read_doc(s.repo, arena, 71, &doc);
		all_ok = all_ok && rc == MK_OK && doc.version == 1;
	}
	tap_ok(all_ok,
	    "unreachable: three reads answered from the inner repository");
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 3,
	    "unreachable: each read reached it");
	tap_ok(moved(&before, MK_COUNTER_CACHE_ERRORS) >= 3,
	    "unreachable: counted as cache errors");
	tap_is_int(do_write(s.repo, arena, W_UPDATE, 71), MK_OK,
	    "unreachable: an update succeeds");
	tap_is_int(do_write(s.repo, arena, W_BUY, 71), MK_OK,
	    "unreachable: a buy succeeds");
	rc = read_doc(s.repo, arena, 71, &doc);
	expect_doc(rc, &doc, 71, 3, "unreachable: a read after the writes");
	tap_is_int(do_write(s.repo, arena, W_REMOVE, 71), MK_OK,
	    "unreachable: a remove succeeds");
	tap_is_int(read_doc(s.repo, arena, 71, &doc), MK_ENOTFOUND,
	    "unreachable: a read after the remove finds nothing");
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 5,
	    "unreachable: every read reached the inner repository");
	stack_close(&s);
	mk_arena_reset(arena);
}

/* 8. An invalidation memcached missed is paid before anything is read. */
static void
test_owed_invalidation(struct mk_arena *arena)
{
	struct stack s;
	struct mk_market_doc doc;
	struct snap before;
	int64_t start, elapsed;
	enum mk_err rc;

	/* memcached frozen while a write commits. */
	stack_open(&s, mc_servers, 20);
	store_put(81, 1);
	forget(81);
	(void)read_doc(s.repo, arena, 81, &doc);
	expect_cached(81, 1, "owed (frozen)");
	mc_freeze();
	snap_take(&before);
	start = mk_clock_mono_ms();
	rc = do_write(s.repo, arena, W_UPDATE, 81);
	elapsed = mk_clock_mono_ms() - start;
	mc_thaw();
	tap_is_int(rc, MK_OK,
	    "owed (frozen): the update succeeds while memcached is frozen");
	tap_ok(elapsed < 1000, "owed (frozen): without hanging (%lld ms)",
	    (long long)elapsed);
	tap_is_int(moved(&before, MK_COUNTER_CACHE_ERRORS), 1,
	    "owed (frozen): the delete failed");
	pause_ms(1100);
	rc = read_doc(s.repo, arena, 81, &doc);
	expect_doc(rc, &doc, 81, 2, "owed (frozen): the read after the outage");
	tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 2,
	    "owed (frozen): it read the inner repository");
	expect_cached(81, 2, "owed (frozen)");
	stack_close(&s);
	mk_arena_reset(arena);

	/*
	 * The same where the delete never reaches memcached: this worker
	 * cannot connect (its socket is renamed away; the test's own
	 * connection stays up), so the stale document really is still there
	 * for the other workers. Reads meanwhile go to the inner repository;
	 * once memcached is reachable again, the first read pays the backlog
	 * before it looks.
	 */
	{
		char away[sizeof(mc_sock) + 8];
		unsigned char value[256];
		char json[160];
		struct peeked p;

		snprintf(away, sizeof(away), "%s.away", mc_sock);
		store_put(82, 1);
		render_json(json, sizeof(json), 82, 1);
		poke(82, value, encode_doc(value, sizeof(value), 82, 1, json));
		if (rename(mc_sock, away) != 0)
			printf("# rename %s: %s\n", mc_sock, strerror(errno));
		stack_open(&s, mc_servers, 20);
		snap_take(&before);
		rc = do_write(s.repo, arena, W_UPDATE, 82);
		tap_is_int(
		    rc, MK_OK, "owed (unreachable): the update succeeds");
		tap_is_int(moved(&before, MK_COUNTER_CACHE_ERRORS), 1,
		    "owed (unreachable): its delete failed");
		peek(82, &p);
		tap_ok(p.kind == PEEK_DOC && p.version == 1,
		    "owed (unreachable): the stale v1 document is still in "
		    "memcached");
		rc = read_doc(s.repo, arena, 82, &doc);
		expect_doc(rc, &doc, 82, 2,
		    "owed (unreachable): a read while the delete is owed");
		if (rename(away, mc_sock) != 0)
			printf("# rename %s: %s\n", away, strerror(errno));
		/*
		 * libmemcached leaves a server it could not connect to alone
		 * until time() passes the failure's second + 1: up to 2 s.
		 */
		pause_ms(2100);
		rc = read_doc(s.repo, arena, 82, &doc);
		expect_doc(rc, &doc, 82, 2,
		    "owed (unreachable): the read once memcached is back");
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 2,
		    "owed (unreachable): both reads went to the inner "
		    "repository");
		expect_cached(82, 2,
		    "owed (unreachable): the backlog was paid, then filled");
		rc = read_doc(s.repo, arena, 82, &doc);
		expect_doc(
		    rc, &doc, 82, 2, "owed (unreachable): the next read hits");
		tap_is_int(s.fake->calls[OP_GET_DOCUMENT], 2,
		    "owed (unreachable): without the inner repository");
		stack_close(&s);
		mk_arena_reset(arena);
	}
}

/* 9. The store layer's pipelined increment. */
static void
test_pipelined_incr(struct mk_arena *arena)
{
	static const char counter[] = "rl:test";
	static const char doc_key_text[] = "mk:m:91";
	static const char value[] = "the looked-up value";
	struct mk_cache_value got;
	char err[256];
	struct mk_cache *cache =
	    mk_cache_new(mc_servers, TIMEOUT_MS, err, sizeof(err));
	struct mk_cache_incr incr;
	uint64_t count;
	enum mk_err rc;

	if (cache == NULL) {
		tap_ok(0, "incr: mk_cache_new: %s", err);
		return;
	}
	(void)mk_cache_delete(cache, counter, sizeof(counter) - 1);
	(void)mk_cache_set(cache, doc_key_text, sizeof(doc_key_text) - 1, value,
	    sizeof(value) - 1, 60);
	for (uint64_t round = 1; round <= 3; round++) {
		bool got_value;

		tap_is_int(mk_cache_incr_send(
			       cache, counter, sizeof(counter) - 1, 60, &incr),
		    MK_OK, "incr round %llu: sent", (unsigned long long)round);
		tap_ok(!incr.answered, "incr round %llu: in flight",
		    (unsigned long long)round);
		rc = mk_cache_get(cache, arena, doc_key_text,
		    sizeof(doc_key_text) - 1, &incr, &got);
		got_value = rc == MK_OK && got.len == sizeof(value) - 1 &&
		    memcmp(got.bytes, value, got.len) == 0;
		tap_ok(got_value,
		    "incr round %llu: the lookup it rode on found its value",
		    (unsigned long long)round);
		count = 0;
		rc = mk_cache_incr_finish(cache, &incr, &count);
		tap_ok(rc == MK_OK && count == round,
		    "incr round %llu: counts %llu (got %s, %llu)",
		    (unsigned long long)round, (unsigned long long)round,
		    mk_err_name(rc), (unsigned long long)count);
		tap_ok(incr.answered,
		    "incr round %llu: the lookup it rode on brought its count",
		    (unsigned long long)round);
		mk_arena_reset(arena);
	}
	tap_is_int(
	    mk_cache_incr_send(cache, counter, sizeof(counter) - 1, 60, &incr),
	    MK_OK, "incr without a lookup: sent");
	count = 0;
	rc = mk_cache_incr_finish(cache, &incr, &count);
	tap_ok(rc == MK_OK && count == 4,
	    "incr without a lookup: counts 4 (got %s, %llu)", mk_err_name(rc),
	    (unsigned long long)count);
	rc = mk_cache_get(
	    cache, arena, doc_key_text, sizeof(doc_key_text) - 1, &incr, &got);
	tap_ok(rc == MK_OK && got.len == sizeof(value) - 1 &&
		memcmp(got.bytes, value, got.len) == 0,
	    "incr without a lookup: the next lookup is not confused");

	/*
	 * A lookup that is not handed the increment does not take its
	 * answer for its own: the count lands in the caller's struct first.
	 */
	tap_is_int(
	    mk_cache_incr_send(cache, counter, sizeof(counter) - 1, 60, &incr),
	    MK_OK, "incr beside a lookup not handed it: sent");
	rc = mk_cache_get(
	    cache, arena, doc_key_text, sizeof(doc_key_text) - 1, NULL, &got);
	tap_ok(rc == MK_OK && got.len == sizeof(value) - 1 &&
		memcmp(got.bytes, value, got.len) == 0,
	    "incr beside a lookup not handed it: the lookup found its value");
	tap_ok(incr.answered && incr.status == MK_OK && incr.value == 5,
	    "incr beside a lookup not handed it: the count (5) is in the "
	    "increment's struct (got %d, %s, %llu)",
	    incr.answered, mk_err_name(incr.status),
	    (unsigned long long)incr.value);
	count = 0;
	rc = mk_cache_incr_finish(cache, &incr, &count);
	tap_ok(rc == MK_OK && count == 5,
	    "incr beside a lookup not handed it: finish says 5 (got %s, %llu)",
	    mk_err_name(rc), (unsigned long long)count);

	/*
	 * Not a counter (a foreign value): the increment is answered with an
	 * error ahead of the lookup's replies; the cache starts its
	 * connections afresh, replaces the value and counts 1, and the
	 * lookup it rode on still finds its value. The next round counts 2.
	 */
	(void)mk_cache_set(cache, counter, sizeof(counter) - 1, "abc", 3, 60);
	tap_is_int(
	    mk_cache_incr_send(cache, counter, sizeof(counter) - 1, 60, &incr),
	    MK_OK, "incr on a non-number: sent");
	rc = mk_cache_get(
	    cache, arena, doc_key_text, sizeof(doc_key_text) - 1, &incr, &got);
	tap_ok(rc == MK_OK && got.len == sizeof(value) - 1 &&
		memcmp(got.bytes, value, got.len) == 0,
	    "incr on a non-number: the lookup it rode on still found its value "
	    "(got %s)",
	    mk_err_name(rc));
	count = 0;
	rc = mk_cache_incr_finish(cache, &incr, &count);
	tap_ok(rc == MK_OK && count == 1,
	    "incr on a non-number: the value is replaced, counts 1 (got %s, "
	    "%llu)",
	    mk_err_name(rc), (unsigned long long)count);
	mk_arena_reset(arena);
	tap_is_int(
	    mk_cache_incr_send(cache, counter, sizeof(counter) - 1, 60, &incr),
	    MK_OK, "incr after a non-number: sent");
	rc = mk_cache_get(
	    cache, arena, doc_key_text, sizeof(doc_key_text) - 1, &incr, &got);
	tap_ok(rc == MK_OK && got.len == sizeof(value) - 1 &&
		memcmp(got.bytes, value, got.len) == 0,
	    "incr after a non-number: the lookup found its value (got %s)",
	    mk_err_name(rc));
	count = 0;
	rc = mk_cache_incr_finish(cache, &incr, &count);
	tap_ok(rc == MK_OK && count == 2,
	    "incr after a non-number: counts 2 (got %s, %llu)", mk_err_name(rc),
	    (unsigned long long)count);
	/*
	 * ...and the same with no lookup in between, and with the exact
	 * increment.
	 */
	(void)mk_cache_set(cache, counter, sizeof(counter) - 1, "xyz", 3, 60);
	tap_is_int(
	    mk_cache_incr_send(cache, counter, sizeof(counter) - 1, 60, &incr),
	    MK_OK, "incr on a non-number, no lookup: sent");
	count = 0;
	rc = mk_cache_incr_finish(cache, &incr, &count);
	tap_ok(rc == MK_OK && count == 1,
	    "incr on a non-number, no lookup: replaced, counts 1 (got %s, "
	    "%llu)",
	    mk_err_name(rc), (unsigned long long)count);
	(void)mk_cache_set(cache, counter, sizeof(counter) - 1, "xyz", 3, 60);
	count = 0;
	rc = mk_cache_incr(cache, counter, sizeof(counter) - 1, 60, &count);
	tap_ok(rc == MK_OK && count == 1,
	    "exact incr on a non-number: replaced, counts 1 (got %s, %llu)",
	    mk_err_name(rc), (unsigned long long)count);
	rc = mk_cache_get(
	    cache, arena, doc_key_text, sizeof(doc_key_text) - 1, &incr, &got);
	tap_ok(rc == MK_OK && got.len == sizeof(value) - 1 &&
		memcmp(got.bytes, value, got.len) == 0,
	    "after the replacements, lookups are not confused");
	(void)mk_cache_delete(cache, counter, sizeof(counter) - 1);
	mk_cache_free(cache);
	mk_arena_reset(arena);
}

int
main(void)
{
	struct mk_arena *arena;
	char err[256];
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access(MEMCACHED_BIN, X_OK) != 0) {
		printf("1..0 # SKIP memcached not installed\n");
		return 0;
	}
	owner_pid = getpid();
	atexit(mc_stop);
	if (mc_start() != 0) {
		printf("Bail out! cannot start memcached\n");
		return 1;
	}
	peek_cache = mk_cache_new(mc_servers, 1000, err, sizeof(err));
	arena = mk_arena_new(0);
	peek_arena = mk_arena_new(0);
	if (peek_cache == NULL || arena == NULL || peek_arena == NULL) {
		printf("Bail out! %s\n",
		    peek_cache == NULL ? err : "out of memory");
		return 1;
	}

	test_pass_through(arena);
	test_miss_then_fill(arena);
	test_invalidate(arena);
	test_stale_fill_race(arena);
	test_stampede(arena);
	test_corrupt(arena);
	test_backend_error(arena);
	test_unreachable(arena);
	test_owed_invalidation(arena);
	test_pipelined_incr(arena);

	mk_cache_free(peek_cache);
	mk_arena_free(peek_arena);
	mk_arena_free(arena);
	rc = tap_done();
	mc_stop();
	return rc;
}
