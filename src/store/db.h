/*
 * MariaDB access (store layer): one connection per worker through MariaDB
 * Connector/C, over a unix socket or TCP. The connection is made lazily
 * and made again after it drops; callers see enum mk_err, never a MYSQL
 * handle. Nothing above store/ speaks SQL.
 *
 * A struct mk_db is worker-lifetime: made after fork (a connection must
 * never be shared by two processes), not thread-safe.
 *
 * What a handle's statements count as in /metrics (core/metrics.h) is a
 * property of the handle, fixed when it is made: a request's, or
 * background work's (a worker's tick and its search index's refreshes,
 * the first of which may run inside a request; a /metrics scrape; a job
 * runner).
 * A worker's requests and its background work share one connection
 * through two handles (mk_db_background) rather than one handle whose
 * flag is switched around calls: a switch forgotten on an error path
 * would miscount, and a per-statement argument would run through every
 * repository call for the sake of one counter.
 *
 * markets-admin migrate gets a session of its own (mk_db_session_new):
 * the same db_* settings, TLS included, and scripts of several
 * statements.
 */
#ifndef MK_DB_H
#define MK_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"

struct mk_config;
struct mk_db;

/* True when the configuration names a database (db_socket or db_host). */
bool mk_db_configured(const struct mk_config *config);

/*
 * Makes the handle from the db_* settings, without connecting. Returns
 * NULL with a reason in err when out of memory. Free with mk_db_free().
 */
struct mk_db *mk_db_new(
    const struct mk_config *config, char *err, size_t errlen);

/*
 * A second handle on db's connection (and its prepared statements and
 * transaction state) whose statements count as background work. It
 * must not outlive db, and is freed with mk_db_free() (which leaves the
 * connection to db). NULL with a reason in err when out of memory.
 */
struct mk_db *mk_db_background(struct mk_db *db, char *err, size_t errlen);

/*
 * A session for schema migrations (markets-admin migrate), connected at
 * once with every db_* setting (db_tls and db_tls_ca among them) except
 * db_io_timeout: a long ALTER TABLE must not be abandoned by the client
 * while the server carries on with it. mk_db_script() runs scripts of
 * several statements on it. It is never connected again (what the
 * session holds, a GET_LOCK, would not survive a new one): after a drop
 * every call is MK_EUNAVAIL. It logs nothing; its caller reports each
 * failure with mk_db_error(). Returns NULL with the server's reason in
 * err. Free with mk_db_free().
 */
struct mk_db *mk_db_session_new(
    const struct mk_config *config, char *err, size_t errlen);

/*
 * Where a routed handle's reads go (store/replicas.h makes one): choose
 * names the handle for a SELECT outside a transaction, or NULL for the
 * primary's own connection; failed hears of a chosen handle that did
 * not answer (the SELECT then runs on the primary, or, when the primary
 * fails too, on whatever choose names next). Statements that write, and
 * every statement inside a transaction, run on the primary.
 */
struct mk_db_route {
	struct mk_db *(*choose)(void *ctx);
	void (*failed)(void *ctx, struct mk_db *chosen);
	void *ctx;
};

/*
 * A handle on primary's connection (like mk_db_background, with its
 * kind of work: background when primary is a background handle) whose
 * SELECTs go where route says. It must not outlive primary or route's
 * context. NULL with a reason in err when out of memory.
 */
struct mk_db *mk_db_routed(struct mk_db *primary,
    const struct mk_db_route *route, char *err, size_t errlen);

/* True while the handle's connection is in an outage (see mk_db_ping). */
bool mk_db_down(const struct mk_db *db);

/* Frees a handle; a handle that owns its connection closes it. */
void mk_db_free(struct mk_db *db);

/*
 * Why the handle's last call failed ("" before any failure), and in
 * *code (when not NULL) the server's error number, 0 when it was not
 * the server's. Valid until the next call on the handle.
 */
const char *mk_db_error(const struct mk_db *db, unsigned *code);

/*
 * Checks that the database answers, connecting (again) when needed.
 * Returns MK_OK or MK_EUNAVAIL (the cause is logged once per outage).
 */
enum mk_err mk_db_ping(struct mk_db *db);

struct mk_arena;

/* A statement parameter, or a result cell. */
enum mk_db_type {
	MK_DB_NULL,
	MK_DB_INT,
	MK_DB_TEXT,
	MK_DB_BLOB /* parameters: bytes, no charset */
};

struct mk_db_value {
	enum mk_db_type type;
	int64_t integer; /* MK_DB_INT parameters */
	/* MK_DB_TEXT: parameters, and every non-NULL result cell */
	const char *text;
	size_t len;
};

/*
 * Rows of a SELECT; cells are row-major and live in the request arena.
 * names: the columns' names, filled by mk_db_select_named() only.
 */
struct mk_db_rows {
	size_t nrows;
	size_t ncols;
	struct mk_db_value *cells;
	const char **names;
};

/* Statements with more parameters than this are refused (a bug). */
#define MK_DB_MAX_PARAMS 128

/*
 * Runs a SELECT as a prepared statement (prepared once per connection and
 * kept) with params bound, and copies every row into the arena, each cell
 * as text (MK_DB_TEXT) or MK_DB_NULL. sql is trusted text from the store's
 * callers, never built from input; every value travels as a parameter. A
 * connection that dropped is made again and the statement run once more;
 * inside a transaction a dropped connection, a deadlock or a lock wait is
 * MK_EUNAVAIL marked retryable for the transaction helper. Returns MK_OK,
 * MK_EUNAVAIL, MK_ECONFLICT or MK_EINTERNAL (logged with the server's
 * message; never shown to a client).
 */
enum mk_err mk_db_select(struct mk_db *db, struct mk_arena *arena,
    const char *sql, const struct mk_db_value *params, size_t nparams,
    struct mk_db_rows *out);

/*
 * mk_db_select() on the handle's own connection (never routed) that also
 * fills out->names: for statements whose columns are known by name only
 * (SHOW SLAVE STATUS).
 */
enum mk_err mk_db_select_named(struct mk_db *db, struct mk_arena *arena,
    const char *sql, struct mk_db_rows *out);

/*
 * Runs an INSERT/UPDATE/DELETE as a prepared statement. *affected and
 * *insert_id (either may be NULL) get the rows changed and the new
 * AUTO_INCREMENT id. Returns MK_OK, MK_ECONFLICT (a unique key or foreign
 * key refused the row), MK_EUNAVAIL (the connection dropped, or a
 * deadlock/lock wait inside a transaction: the transaction helper retries
 * those) or MK_EINTERNAL. Outside a transaction a dropped connection is
 * made again and the statement run once more.
 */
enum mk_err mk_db_execute(struct mk_db *db, const char *sql,
    const struct mk_db_value *params, size_t nparams, uint64_t *affected,
    uint64_t *insert_id);

/* The work of one transaction; it calls mk_db_select/execute on db. */
typedef enum mk_err (*mk_db_txn_fn)(struct mk_db *db, void *ctx);

/*
 * Runs fn inside one transaction and commits. When the transaction fails
 * for a reason a retry can cure (deadlock, lock wait timeout, lost
 * connection), the whole of it runs again, after an exponential back-off
 * with jitter, up to db_retries attempts within db_retry_time; then
 * MK_EUNAVAIL. Any other error of fn rolls back and is returned as is, so
 * fn must leave nothing behind but what the database holds (it may run
 * again). Nothing is half-written: the commit is the only way out.
 */
enum mk_err mk_db_transaction(struct mk_db *db, mk_db_txn_fn fn, void *ctx);

/*
 * On a session (mk_db_session_new): runs script, len bytes of
 * statements separated by ';', as one batch and drains every result.
 * The server stops at the first statement that fails: MK_EINVAL with
 * *failed_at its position (1-based) and its reason in mk_db_error();
 * the statements before it stay (MariaDB commits DDL at once). A
 * script may switch databases (USE): db_name is selected again after
 * it, and when that fails the result is MK_EINVAL with *failed_at 0.
 */
enum mk_err mk_db_script(
    struct mk_db *db, const char *script, size_t len, unsigned *failed_at);

/* The cell at row, col of rows. */
static inline const struct mk_db_value *
mk_db_cell(const struct mk_db_rows *rows, size_t row, size_t col)
{
	return &rows->cells[row * rows->ncols + col];
}

/* A cell's text, or NULL for SQL NULL. */
static inline const char *
mk_db_cell_text(const struct mk_db_rows *rows, size_t row, size_t col)
{
	const struct mk_db_value *cell = mk_db_cell(rows, row, col);

	return cell->type == MK_DB_TEXT ? cell->text : NULL;
}

/* A cell as an integer (0 for SQL NULL). */
static inline int64_t
mk_db_cell_int(const struct mk_db_rows *rows, size_t row, size_t col)
{
	const char *text = mk_db_cell_text(rows, row, col);

	return text != NULL ? strtoll(text, NULL, 10) : 0;
}

/* An integer parameter. */
static inline struct mk_db_value
mk_db_int(int64_t v)
{
	return (struct mk_db_value){ .type = MK_DB_INT, .integer = v };
}

/* A text parameter of len bytes. */
static inline struct mk_db_value
mk_db_text(const char *s, size_t len)
{
	return (
	    struct mk_db_value){ .type = MK_DB_TEXT, .text = s, .len = len };
}

/* A DATETIME column as the contract's RFC 3339 UTC text, in SQL. */
#define MK_DB_RFC3339(col) "DATE_FORMAT(" col ", '%Y-%m-%dT%H:%i:%sZ')"

#endif
