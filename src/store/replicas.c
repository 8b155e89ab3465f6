/*
 * MariaDB replicas (store layer); see replicas.h. Each replica is a
 * handle of its own (mk_db_new over a copy of the configuration with the
 * replica's address), used for reads and for its checks; the two routes
 * hand it to the primary's routed handles. A replica's state changes are
 * logged once each way, like the primary's outages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "store/db.h"
#include "store/replicas.h"

/* How often a replica is asked, and the longest back-off of a slow one. */
#define CHECK_EVERY_MS 1000
#define CHECK_BACKOFF_MAX_MS 8000

struct replica {
	char address[300];
	char host[256];
	char socket[108];
	struct mk_config config; /* the primary's, with this address */
	struct mk_db *db;
	struct mk_db *checks; /* db's connection, counted as background work */
	struct mk_replica_state state;
	bool lag_unknown_usable; /* SQL thread running, IO not connected */
	int64_t next_check_ms;
	int64_t backoff_ms;
	const char *why_out; /* the reason logged, NULL while in service */
};

struct mk_replicas {
	struct mk_db *primary;
	struct mk_arena *arena; /* the checks' rows */
	int64_t max_lag_s;
	size_t n, next;
	bool pinned;
	struct replica replica[MK_REPLICAS_MAX];
	struct mk_db_route route, background_route, documents_route;
	struct mk_db *reads, *background_reads, *documents;
	bool documents_stale; /* the documents' last read was a replica's */
};

/* Splits an entry of db_replicas (checked when the config was loaded). */
static int
parse_address(struct replica *r, const char *entry, size_t len)
{
	const char *colon;
	size_t host_len;

	if (len >= sizeof(r->address))
		return -1;
	memcpy(r->address, entry, len);
	r->address[len] = '\0';
	if (len > 5 && strncmp(entry, "unix:", 5) == 0) {
		if (len - 5 >= sizeof(r->socket))
			return -1;
		memcpy(r->socket, entry + 5, len - 5);
		r->socket[len - 5] = '\0';
		return 0;
	}
	colon = memrchr(entry, ':', len);
	if (colon == NULL)
		return -1;
	host_len = (size_t)(colon - entry);
	if (host_len > 1 && entry[0] == '[' && entry[host_len - 1] == ']') {
		entry++; /* [::1]:3306 */
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(r->host))
		return -1;
	memcpy(r->host, entry, host_len);
	r->host[host_len] = '\0';
	r->config.db_port = atoi(colon + 1);
	return 0;
}

/* A replica that answers, while the primary is down; else NULL. */
static struct mk_db *
last_resort(struct mk_replicas *rs)
{
	if (!mk_db_down(rs->primary))
		return NULL;
	for (size_t k = 0; k < rs->n; k++)
		if (rs->replica[k].state.in_service)
			return rs->replica[k].db;
	/* A stale copy beats a primary that is down. */
	for (size_t k = 0; k < rs->n; k++)
		if (rs->replica[k].state.up &&
		    rs->replica[k].lag_unknown_usable)
			return rs->replica[k].db;
	return NULL;
}

/* The documents' route: the primary first (see mk_replicas_documents). */
static struct mk_db *
choose_documents(void *ctx)
{
	struct mk_replicas *rs = ctx;
	struct mk_db *chosen = last_resort(rs);

	rs->documents_stale = chosen != NULL;
	return chosen;
}

/* The next replica in service, in turn; else last_resort(). */
static struct mk_db *
next_in_service(struct mk_replicas *rs)
{
	for (size_t k = 0; k < rs->n; k++) {
		struct replica *r = &rs->replica[(rs->next + k) % rs->n];

		if (r->state.in_service) {
			rs->next = (rs->next + k + 1) % rs->n;
			return r->db;
		}
	}
	return last_resort(rs);
}

/* Background work (the search index) is nobody's read-your-writes. */
static struct mk_db *
choose_background(void *ctx)
{
	struct mk_replicas *rs = ctx;

	return rs->n == 0 ? NULL : next_in_service(rs);
}

/* Picks the replica for the next read, or NULL for the primary. */
static struct mk_db *
choose(void *ctx)
{
	struct mk_replicas *rs = ctx;

	/*
	 * A pinned read (a client's read-your-writes window) waits for no
	 * replica, unless the primary is down: then it is served however
	 * stale rather than refused (that client's writes fail meanwhile).
	 */
	if (rs->pinned || rs->n == 0)
		return rs->n == 0 ? NULL : last_resort(rs);
	return next_in_service(rs);
}

static void
take_out(struct replica *r, const char *why)
{
	r->state.in_service = false;
	if (r->why_out == NULL || strcmp(r->why_out, why) != 0)
		mk_log(MK_LOG_WARN, "replica %s out of service: %s", r->address,
		    why);
	r->why_out = why;
}

/* A read found the replica not answering: out until a check says so. */
static void
failed(void *ctx, struct mk_db *chosen)
{
	struct mk_replicas *rs = ctx;

	for (size_t i = 0; i < rs->n; i++) {
		struct replica *r = &rs->replica[i];

		if (r->db == chosen) {
			r->state.up = false;
			r->lag_unknown_usable = false;
			take_out(r, "it does not answer");
		}
	}
}

struct mk_replicas *
mk_replicas_new(const struct mk_config *config, struct mk_db *primary,
    struct mk_db *background, char *err, size_t errlen)
{
	struct mk_replicas *rs = calloc(1, sizeof(*rs));
	size_t len;

	if (rs == NULL || (rs->arena = mk_arena_new(16384)) == NULL) {
		free(rs);
		mk_errf(err, errlen, "out of memory");
		return NULL;
	}
	rs->primary = primary;
	rs->max_lag_s = config->replica_max_lag_ms / 1000;
	for (const char *p = config->db_replicas;
	     *(p += strspn(p, ", \t")) != '\0'; p += len) {
		struct replica *r = &rs->replica[rs->n];

		len = strcspn(p, ", \t");
		if (rs->n == MK_REPLICAS_MAX) {
			mk_errf(err, errlen, "db_replicas: more than %d",
			    MK_REPLICAS_MAX);
			goto fail;
		}
		r->config = *config;
		if (parse_address(r, p, len) != 0) {
			mk_errf(err, errlen, "db_replicas: bad entry '%.*s'",
			    (int)(len > 64 ? 64 : len), p);
			goto fail;
		}
		r->config.db_socket = r->socket;
		r->config.db_host = r->host;
		r->state.address = r->address;
		r->state.lag_s = -1;
		r->backoff_ms = CHECK_EVERY_MS;
		/* Out until its first check: requests never wait on one. */
		r->why_out = "not checked yet";
		if ((r->db = mk_db_new(&r->config, err, errlen)) == NULL)
			goto fail;
		rs->n++;
		if ((r->checks = mk_db_background(r->db, err, errlen)) == NULL)
			goto fail;
	}
	rs->route = (struct mk_db_route){
		.choose = choose, .failed = failed, .ctx = rs
	};
	rs->reads = mk_db_routed(primary, &rs->route, err, errlen);
	if (rs->reads == NULL)
		goto fail;
	rs->background_route = rs->route;
	rs->background_route.choose = choose_background;
	rs->background_reads =
	    mk_db_routed(background, &rs->background_route, err, errlen);
	if (rs->background_reads == NULL)
		goto fail;
	rs->documents_route = rs->route;
	rs->documents_route.choose = choose_documents;
	rs->documents =
	    mk_db_routed(primary, &rs->documents_route, err, errlen);
	if (rs->documents == NULL)
		goto fail;
	return rs;
fail:
	mk_replicas_free(rs);
	return NULL;
}

void
mk_replicas_free(struct mk_replicas *rs)
{
	if (rs == NULL)
		return;
	mk_db_free(rs->reads);
	mk_db_free(rs->background_reads);
	mk_db_free(rs->documents);
	for (size_t i = 0; i < rs->n; i++) {
		mk_db_free(rs->replica[i].checks);
		mk_db_free(rs->replica[i].db);
	}
	mk_arena_free(rs->arena);
	free(rs);
}

struct mk_db *
mk_replicas_reads(struct mk_replicas *rs)
{
	return rs->reads;
}

struct mk_db *
mk_replicas_background_reads(struct mk_replicas *rs)
{
	return rs->background_reads;
}

struct mk_db *
mk_replicas_documents(struct mk_replicas *rs)
{
	return rs->documents;
}

bool
mk_replicas_documents_stale(const struct mk_replicas *rs)
{
	return rs->documents_stale;
}

void
mk_replicas_pin(struct mk_replicas *rs, bool primary)
{
	rs->pinned = primary;
}

size_t
mk_replicas_count(const struct mk_replicas *rs)
{
	return rs->n;
}

void
mk_replicas_state(
    const struct mk_replicas *rs, size_t i, struct mk_replica_state *out)
{
	*out = rs->replica[i].state;
}

/* The cell of column name in the first row, or NULL. */
static const char *
column(const struct mk_db_rows *rows, const char *name)
{
	for (size_t c = 0; rows->nrows > 0 && c < rows->ncols; c++)
		if (strcmp(rows->names[c], name) == 0)
			return mk_db_cell_text(rows, 0, c);
	return NULL;
}

/* Asks one replica how it replicates, and decides whether it serves. */
static void
check(struct mk_replicas *rs, struct replica *r, int64_t now_ms)
{
	struct mk_db_rows rows;
	const char *sql_running, *io_running, *behind;
	enum mk_err rc;

	mk_arena_reset(rs->arena);
	rc = mk_db_select_named(
	    r->checks, rs->arena, "SHOW SLAVE STATUS", &rows);
	/*
	 * A check that found it dead quickly (a refused connection) comes
	 * again in a second; one that waited for a timeout backs off, so a
	 * hung replica does not stall the worker's tick every second.
	 */
	if (rc != MK_OK && mk_clock_mono_ms() - now_ms > 100 &&
	    r->backoff_ms < CHECK_BACKOFF_MAX_MS)
		r->backoff_ms *= 2;
	else if (rc == MK_OK)
		r->backoff_ms = CHECK_EVERY_MS;
	r->next_check_ms = now_ms + r->backoff_ms;
	r->state.up = rc == MK_OK;
	r->lag_unknown_usable = false;
	r->state.lag_s = -1;
	if (rc != MK_OK) {
		take_out(r,
		    rc == MK_EUNAVAIL ? "it does not answer"
				      : "SHOW SLAVE STATUS failed (the "
					"account needs SLAVE MONITOR)");
		return;
	}
	if (rows.nrows == 0) {
		take_out(r, "it does not replicate (no SHOW SLAVE STATUS)");
		return;
	}
	sql_running = column(&rows, "Slave_SQL_Running");
	io_running = column(&rows, "Slave_IO_Running");
	behind = column(&rows, "Seconds_Behind_Master");
	if (sql_running == NULL || strcmp(sql_running, "Yes") != 0) {
		take_out(r, "its SQL thread is stopped");
		return;
	}
	if (behind == NULL) {
		r->lag_unknown_usable = true;
		take_out(r,
		    io_running != NULL && strcmp(io_running, "Yes") == 0
			? "its lag is unknown"
			: "it is not connected to the primary (lag unknown)");
		return;
	}
	r->state.lag_s = strtoll(behind, NULL, 10);
	if (r->state.lag_s > rs->max_lag_s) {
		take_out(r, "it lags past replica_max_lag");
		return;
	}
	if (!r->state.in_service && r->why_out != NULL &&
	    strcmp(r->why_out, "not checked yet") != 0)
		mk_log(MK_LOG_WARN,
		    "replica %s back in service (%lld s behind)", r->address,
		    (long long)r->state.lag_s);
	r->state.in_service = true;
	r->why_out = NULL;
}

void
mk_replicas_tick(struct mk_replicas *rs, int64_t now_ms)
{
	for (size_t i = 0; i < rs->n; i++)
		if (now_ms >= rs->replica[i].next_check_ms)
			check(rs, &rs->replica[i], now_ms);
}
