/*
 * MariaDB access (store layer); see db.h. The connection is opened on first
 * use, with connect/read/write timeouts from the configuration so that a
 * dead server costs a bounded wait, utf8mb4 and UTC for the session. A
 * failure closes the handle: the next use connects afresh (Connector/C's
 * own auto-reconnect is off — it would silently lose session state and
 * prepared statements). Outages are logged once, when they start and when
 * they end.
 *
 * A background handle (mk_db_background) is a second struct mk_db whose
 * link points at the handle that owns the connection: every entry point
 * works on db->link's connection, statements and transaction state, and
 * only the count of each statement (core/metrics.h) reads the handle it
 * was given. A migration session (mk_db_session_new) is an owner with
 * two differences: it connects once, with multi-statement scripts and no
 * read timeout, and it logs nothing (its caller reports mk_db_error()).
 */
#include <assert.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "store/db.h"

/* Prepared statements kept per connection, found by their SQL text. */
#define STMT_CACHE 64

struct cached_stmt {
	char *sql;
	MYSQL_STMT *stmt;
	uint64_t last_used;
};

struct mk_db {
	/*
	 * Owns the connection: this handle, or the one it shares (background)
	 */
	struct mk_db *link;
	bool background; /* its statements count as background work */
	const struct mk_db_route *route; /* a routed handle's (mk_db_routed) */
	bool session; /* a migration session (mk_db_session_new) */
	MYSQL *conn;  /* NULL while disconnected */
	const struct mk_config *config;
	bool down;
	int64_t down_since_ms;
	struct cached_stmt stmts[STMT_CACHE];
	uint64_t uses;
	bool in_txn;         /* statements must not retry on their own */
	bool retryable;      /* the last failure can be cured by a retry */
	uint64_t jitter;     /* xorshift state for back-off jitter */
	bool connected;      /* a session connects once only */
	unsigned error_code; /* the last failure's server number, or 0 */
	char error[MYSQL_ERRMSG_SIZE]; /* and its reason, for mk_db_error() */
};

bool
mk_db_configured(const struct mk_config *config)
{
	return config->db_socket[0] != '\0' || config->db_host[0] != '\0';
}

struct mk_db *
mk_db_new(const struct mk_config *config, char *err, size_t errlen)
{
	struct mk_db *db = calloc(1, sizeof(*db));

	if (db == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->link = db;
	db->config = config;
	if (getrandom(&db->jitter, sizeof(db->jitter), 0) !=
	    (ssize_t)sizeof(db->jitter))
		db->jitter = (uint64_t)mk_clock_mono_us();
	db->jitter |= 1;
	return db;
}

static void
forget_stmt(struct cached_stmt *c)
{
	if (c->stmt != NULL)
		(void)mysql_stmt_close(c->stmt);
	free(c->sql);
	c->sql = NULL;
	c->stmt = NULL;
}

/* Statements belong to a connection: they go with it. */
static void
disconnect(struct mk_db *db)
{
	for (int i = 0; i < STMT_CACHE; i++)
		forget_stmt(&db->stmts[i]);
	if (db->conn != NULL) {
		mysql_close(db->conn);
		db->conn = NULL;
	}
}

struct mk_db *
mk_db_background(struct mk_db *db, char *err, size_t errlen)
{
	struct mk_db *view = calloc(1, sizeof(*view));

	if (view == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	view->link = db->link;
	view->config = db->config;
	view->background = true;
	return view;
}

struct mk_db *
mk_db_routed(struct mk_db *primary, const struct mk_db_route *route, char *err,
    size_t errlen)
{
	struct mk_db *view = mk_db_background(primary, err, errlen);

	if (view != NULL) {
		view->background = primary->background;
		view->route = route;
	}
	return view;
}

bool
mk_db_down(const struct mk_db *db)
{
	return db->link->down;
}

void
mk_db_free(struct mk_db *db)
{
	if (db == NULL)
		return;
	if (db->link == db)
		disconnect(db);
	free(db);
}

/* Keeps why the last call failed, for mk_db_error(). */
static void
remember(struct mk_db *db, unsigned code, const char *why)
{
	db->error_code = code;
	(void)snprintf(db->error, sizeof(db->error), "%s", why);
}

const char *
mk_db_error(const struct mk_db *db, unsigned *code)
{
	if (code != NULL)
		*code = db->link->error_code;
	return db->link->error;
}

/* Logs the start of an outage once, with the cause. */
static enum mk_err
outage(struct mk_db *db, const char *what, const char *cause)
{
	remember(db, db->conn != NULL ? mysql_errno(db->conn) : 0, cause);
	if (!db->down) {
		if (!db->session)
			mk_log(MK_LOG_ERROR, "database unavailable: %s: %s",
			    what, cause);
		db->down = true;
		db->down_since_ms = mk_clock_mono_ms();
	}
	disconnect(db);
	return MK_EUNAVAIL;
}

static void
recovered(struct mk_db *db)
{
	if (db->down) {
		mk_log(MK_LOG_WARN, "database is back after %lld ms",
		    (long long)(mk_clock_mono_ms() - db->down_since_ms));
		db->down = false;
	}
}

static enum mk_err
connect_db(struct mk_db *db)
{
	const struct mk_config *c = db->config;
	unsigned connect_s =
	    (unsigned)((c->db_connect_timeout_ms + 999) / 1000);
	unsigned io_s = (unsigned)((c->db_io_timeout_ms + 999) / 1000);
	my_bool no = 0;
	MYSQL *conn;

	/* What a session holds (a GET_LOCK) would not survive a new one. */
	if (db->session && db->connected)
		return outage(db, "connect", "the session was lost");
	if ((conn = mysql_init(NULL)) == NULL)
		return outage(db, "connect", "out of memory");
	db->conn = conn;
	/*
	 * A session has no read or write timeout: a long ALTER TABLE must not
	 * be abandoned by the client while the server carries on with it.
	 */
	if (mysql_optionsv(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s) != 0 ||
	    (!db->session &&
		(mysql_optionsv(conn, MYSQL_OPT_READ_TIMEOUT, &io_s) != 0 ||
		    mysql_optionsv(conn, MYSQL_OPT_WRITE_TIMEOUT, &io_s) !=
			0)) ||
	    mysql_optionsv(conn, MYSQL_OPT_RECONNECT, &no) != 0 ||
	    mysql_optionsv(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_optionsv(
		conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'") != 0)
		return outage(db, "connect", "cannot set connection options");
	if (strcmp(c->db_tls, "off") != 0) {
		/*
		 * required: encrypted or nothing; verify: and the server proves
		 * who it is.
		 */
		my_bool yes = 1, verify = strcmp(c->db_tls, "verify") == 0;

		if (mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &yes) != 0 ||
		    mysql_optionsv(
			conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify) != 0 ||
		    (c->db_tls_ca[0] != '\0' &&
			mysql_optionsv(conn, MYSQL_OPT_SSL_CA, c->db_tls_ca) !=
			    0))
			return outage(db, "connect", "cannot set TLS options");
	}
	if (mysql_real_connect(conn,
		c->db_socket[0] != '\0' ? NULL : c->db_host, c->db_user,
		c->db_password[0] != '\0' ? c->db_password : NULL, c->db_name,
		(unsigned)c->db_port,
		c->db_socket[0] != '\0' ? c->db_socket : NULL,
		db->session ? CLIENT_MULTI_STATEMENTS : 0) == NULL)
		return outage(db, "connect", mysql_error(conn));
	db->connected = true;
	return MK_OK;
}

struct mk_db *
mk_db_session_new(const struct mk_config *config, char *err, size_t errlen)
{
	struct mk_db *db = mk_db_new(config, err, errlen);

	if (db == NULL)
		return NULL;
	db->session = true;
	if (connect_db(db) != MK_OK) {
		(void)snprintf(err, errlen, "%s", db->error);
		mk_db_free(db);
		return NULL;
	}
	return db;
}

enum mk_err
mk_db_ping(struct mk_db *db)
{
	db = db->link;
	if (db->conn == NULL && connect_db(db) != MK_OK)
		return MK_EUNAVAIL;
	if (mysql_ping(db->conn) != 0) {
		/*
		 * A connection that dropped since its last use: one fresh try.
		 */
		disconnect(db);
		if (connect_db(db) != MK_OK)
			return MK_EUNAVAIL;
		if (mysql_ping(db->conn) != 0)
			return outage(db, "ping", mysql_error(db->conn));
	}
	recovered(db);
	return MK_OK;
}

/* True for the errors after which the connection is gone. */
static bool
connection_lost(unsigned err)
{
	return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST ||
	    err == CR_CONNECTION_ERROR || err == ER_CONNECTION_KILLED ||
	    err == CR_CONN_HOST_ERROR;
}

/*
 * Finds or prepares sql on the current connection; NULL on failure (*err set).
 */
static MYSQL_STMT *
prepared(struct mk_db *db, const char *sql, unsigned *err)
{
	struct cached_stmt *slot = NULL;
	my_bool update_max_length = 1;
	MYSQL_STMT *stmt;

	for (int i = 0; i < STMT_CACHE; i++) {
		struct cached_stmt *c = &db->stmts[i];

		if (c->sql != NULL && strcmp(c->sql, sql) == 0) {
			c->last_used = ++db->uses;
			return c->stmt;
		}
		/*
		 * Where a new one goes: an empty slot, else the least recently
		 * used.
		 */
		if (slot == NULL ||
		    (slot->sql != NULL &&
			(c->sql == NULL || c->last_used < slot->last_used)))
			slot = c;
	}
	forget_stmt(slot);
	stmt = mysql_stmt_init(db->conn);
	if (stmt == NULL) {
		*err = CR_OUT_OF_MEMORY;
		return NULL;
	}
	if (mysql_stmt_prepare(stmt, sql, (unsigned long)strlen(sql)) != 0 ||
	    mysql_stmt_attr_set(
		stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length) != 0) {
		*err = mysql_stmt_errno(stmt);
		remember(db, *err, mysql_stmt_error(stmt));
		if (!db->session)
			mk_log(MK_LOG_ERROR, "database: cannot prepare: %s",
			    mysql_stmt_error(stmt));
		(void)mysql_stmt_close(stmt);
		return NULL;
	}
	slot->sql = strdup(sql);
	if (slot->sql == NULL) {
		(void)mysql_stmt_close(stmt);
		*err = CR_OUT_OF_MEMORY;
		return NULL;
	}
	slot->stmt = stmt;
	slot->last_used = ++db->uses;
	return stmt;
}

static void
bind_params(MYSQL_BIND *binds, const struct mk_db_value *params, size_t n)
{
	memset(binds, 0, n * sizeof(*binds));
	for (size_t i = 0; i < n; i++) {
		switch (params[i].type) {
		case MK_DB_INT:
			binds[i].buffer_type = MYSQL_TYPE_LONGLONG;
			binds[i].buffer = (void *)&params[i].integer;
			break;
		case MK_DB_TEXT:
			binds[i].buffer_type = MYSQL_TYPE_STRING;
			binds[i].buffer = (void *)params[i].text;
			binds[i].buffer_length = (unsigned long)params[i].len;
			break;
		case MK_DB_BLOB:
			binds[i].buffer_type = MYSQL_TYPE_BLOB;
			binds[i].buffer = (void *)params[i].text;
			binds[i].buffer_length = (unsigned long)params[i].len;
			break;
		case MK_DB_NULL:
			binds[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		}
	}
}

/*
 * Copies the stored result of stmt into out; returns a mysql error code or 0.
 */
static unsigned
fetch_rows(MYSQL_STMT *stmt, struct mk_arena *arena, struct mk_db_rows *out)
{
	MYSQL_RES *meta = mysql_stmt_result_metadata(stmt);
	MYSQL_FIELD *fields;
	MYSQL_BIND *binds = NULL;
	unsigned long *lengths;
	my_bool *nulls;
	size_t ncols, nrows, row = 0;
	unsigned err = 0;
	int rc;

	if (meta == NULL)
		return mysql_stmt_errno(stmt) != 0 ? mysql_stmt_errno(stmt)
						   : CR_UNKNOWN_ERROR;
	if (mysql_stmt_store_result(stmt) != 0) {
		err = mysql_stmt_errno(stmt);
		goto out;
	}
	ncols = mysql_num_fields(meta);
	nrows = (size_t)mysql_stmt_num_rows(stmt);
	fields = mysql_fetch_fields(meta);
	binds = mk_arena_calloc(arena, ncols, sizeof(*binds));
	lengths = mk_arena_calloc(arena, ncols, sizeof(*lengths));
	nulls = mk_arena_calloc(arena, ncols, sizeof(*nulls));
	out->cells =
	    mk_arena_calloc(arena, nrows * ncols + 1, sizeof(*out->cells));
	if (binds == NULL || lengths == NULL || nulls == NULL ||
	    out->cells == NULL) {
		err = CR_OUT_OF_MEMORY;
		goto out;
	}
	for (size_t c = 0; c < ncols; c++) {
		binds[c].buffer_type = MYSQL_TYPE_STRING;
		binds[c].buffer_length = fields[c].max_length + 1;
		binds[c].buffer = mk_arena_alloc(arena, binds[c].buffer_length);
		binds[c].length = &lengths[c];
		binds[c].is_null = &nulls[c];
		if (binds[c].buffer == NULL) {
			err = CR_OUT_OF_MEMORY;
			goto out;
		}
	}
	if (out->names != NULL) { /* mk_db_select_named's */
		out->names = mk_arena_calloc(arena, ncols + 1, sizeof(char *));
		for (size_t c = 0; out->names != NULL && c < ncols; c++)
			out->names[c] = mk_arena_strndup(
			    arena, fields[c].name, fields[c].name_length);
		if (out->names == NULL) {
			err = CR_OUT_OF_MEMORY;
			goto out;
		}
	}
	if (mysql_stmt_bind_result(stmt, binds) != 0) {
		err = mysql_stmt_errno(stmt);
		goto out;
	}
	while ((rc = mysql_stmt_fetch(stmt)) == 0 && row < nrows) {
		for (size_t c = 0; c < ncols; c++) {
			struct mk_db_value *cell = &out->cells[row * ncols + c];

			if (nulls[c]) {
				cell->type = MK_DB_NULL;
				continue;
			}
			cell->type = MK_DB_TEXT;
			cell->len = lengths[c];
			cell->text = mk_arena_strndup(
			    arena, binds[c].buffer, lengths[c]);
			if (cell->text == NULL) {
				err = CR_OUT_OF_MEMORY;
				goto out;
			}
		}
		row++;
	}
	if (rc == 1)
		err = mysql_stmt_errno(stmt);
	else if (rc == MYSQL_DATA_TRUNCATED)
		err = CR_UNKNOWN_ERROR; /* max_length said otherwise: a bug */
	out->nrows = row;
	out->ncols = ncols;
out:
	(void)mysql_stmt_free_result(stmt);
	mysql_free_result(meta);
	return err;
}

static bool
lock_conflict(unsigned err)
{
	return err == ER_LOCK_DEADLOCK || err == ER_LOCK_WAIT_TIMEOUT;
}

/*
 * Runs one prepared statement on the connection db, counted as counter:
 * rows into *rows (a SELECT) or the changed
 * count and new id (anything else). One policy for every statement:
 * duplicate or foreign-key refusals are MK_ECONFLICT; a deadlock or lock
 * wait inside a transaction, and a dropped connection, are retryable
 * (the transaction helper runs the whole transaction again); outside a
 * transaction a dropped connection is made again and the statement run
 * once more.
 */
static enum mk_err
run_once(struct mk_db *db, struct mk_arena *arena, const char *sql,
    const struct mk_db_value *params, size_t nparams, struct mk_db_rows *rows,
    uint64_t *affected, uint64_t *insert_id, enum mk_counter counter)
{
	MYSQL_BIND binds[MK_DB_MAX_PARAMS];

	if (nparams > MK_DB_MAX_PARAMS)
		return MK_EINTERNAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		MYSQL_STMT *stmt;
		unsigned err = 0;

		if (db->conn == NULL && connect_db(db) != MK_OK)
			return MK_EUNAVAIL;
		stmt = prepared(db, sql, &err);
		if (stmt != NULL && mysql_stmt_param_count(stmt) != nparams) {
			mk_log(MK_LOG_ERROR,
			    "database: statement wants %lu parameters, got %zu",
			    mysql_stmt_param_count(stmt), nparams);
			return MK_EINTERNAL;
		}
		if (stmt != NULL) {
			bind_params(binds, params, nparams);
			mk_metrics_count(counter);
			if (mysql_stmt_bind_param(stmt, binds) != 0 ||
			    mysql_stmt_execute(stmt) != 0)
				err = mysql_stmt_errno(stmt);
			else if (rows != NULL)
				err = fetch_rows(stmt, arena, rows);
		}
		if (err == 0) {
			if (affected != NULL)
				*affected =
				    (uint64_t)mysql_stmt_affected_rows(stmt);
			if (insert_id != NULL)
				*insert_id =
				    (uint64_t)mysql_stmt_insert_id(stmt);
			recovered(db);
			return MK_OK;
		}
		if (err == CR_OUT_OF_MEMORY) {
			remember(db, err, "out of memory");
			return MK_ENOMEM;
		}
		if (err == ER_DUP_ENTRY || err == ER_NO_REFERENCED_ROW_2 ||
		    err == ER_ROW_IS_REFERENCED_2) {
			remember(db, err,
			    stmt != NULL ? mysql_stmt_error(stmt)
					 : mysql_error(db->conn));
			return MK_ECONFLICT;
		}
		if (lock_conflict(err) && db->in_txn) {
			db->retryable = true;
			return MK_EUNAVAIL;
		}
		if (!connection_lost(err)) {
			const char *why = stmt != NULL ? mysql_stmt_error(stmt)
						       : mysql_error(db->conn);

			remember(db, err, why);
			if (!db->session)
				mk_log(MK_LOG_ERROR,
				    "database: statement failed: %u %s", err,
				    why);
			return MK_EINTERNAL;
		}
		/* The connection dropped under us. */
		disconnect(db);
		if (db->in_txn) {
			db->retryable = true; /* the transaction went with it */
			return MK_EUNAVAIL;
		}
	}
	return outage(db, "statement", "connection lost twice");
}

/* run_once() where the route sends a SELECT (see mk_db_route in db.h). */
static enum mk_err
run_routed(struct mk_db *db, struct mk_arena *arena, const char *sql,
    const struct mk_db_value *params, size_t nparams, struct mk_db_rows *rows,
    uint64_t *affected, uint64_t *insert_id, enum mk_counter counter)
{
	const struct mk_db_route *route = db->route;
	struct mk_db *chosen;
	enum mk_err rc;

	if (route == NULL || rows == NULL || db->link->in_txn)
		return run_once(db->link, arena, sql, params, nparams, rows,
		    affected, insert_id, counter);
	if ((chosen = route->choose(route->ctx)) != NULL) {
		rc = run_once(chosen->link, arena, sql, params, nparams, rows,
		    NULL, NULL, counter);
		if (rc != MK_EUNAVAIL)
			return rc;
		route->failed(route->ctx, chosen);
	}
	rc = run_once(
	    db->link, arena, sql, params, nparams, rows, NULL, NULL, counter);
	if (rc == MK_EUNAVAIL && (chosen = route->choose(route->ctx)) != NULL) {
		rc = run_once(chosen->link, arena, sql, params, nparams, rows,
		    NULL, NULL, counter);
		if (rc == MK_EUNAVAIL)
			route->failed(route->ctx, chosen);
	}
	return rc;
}

/*
 * run_once() on the handle's connection, counted as the handle's kind of
 * work (request or background), its time and text added to the trace of
 * the request running (core/trace.h).
 */
static enum mk_err
run_statement(struct mk_db *db, struct mk_arena *arena, const char *sql,
    const struct mk_db_value *params, size_t nparams, struct mk_db_rows *rows,
    uint64_t *affected, uint64_t *insert_id)
{
	enum mk_counter counter = db->background
	    ? MK_COUNTER_DB_BACKGROUND_QUERIES
	    : MK_COUNTER_DB_QUERIES;
	uint64_t began = mk_trace_begin();
	enum mk_err rc;

	mk_trace_statement(sql);
	rc = run_routed(db, arena, sql, params, nparams, rows, affected,
	    insert_id, counter);
	mk_trace_end(MK_PHASE_DATABASE, began);
	return rc;
}

enum mk_err
mk_db_select(struct mk_db *db, struct mk_arena *arena, const char *sql,
    const struct mk_db_value *params, size_t nparams, struct mk_db_rows *out)
{
	out->nrows = out->ncols = 0;
	out->cells = NULL;
	out->names = NULL;
	return run_statement(db, arena, sql, params, nparams, out, NULL, NULL);
}

enum mk_err
mk_db_select_named(struct mk_db *db, struct mk_arena *arena, const char *sql,
    struct mk_db_rows *out)
{
	static const char *asks; /* fetch_rows fills names when not NULL */

	out->nrows = out->ncols = 0;
	out->cells = NULL;
	out->names = &asks;
	return run_statement(db, arena, sql, NULL, 0, out, NULL, NULL);
}

enum mk_err
mk_db_execute(struct mk_db *db, const char *sql,
    const struct mk_db_value *params, size_t nparams, uint64_t *affected,
    uint64_t *insert_id)
{
	return run_statement(
	    db, NULL, sql, params, nparams, NULL, affected, insert_id);
}

/* Runs a statement with no parameters (BEGIN, COMMIT, ROLLBACK). */
static unsigned
simple(struct mk_db *db, const char *sql)
{
	uint64_t began = mk_trace_begin();
	unsigned err;

	if (db->conn == NULL)
		return CR_SERVER_GONE_ERROR;
	err = mysql_real_query(db->conn, sql, (unsigned long)strlen(sql)) == 0
	    ? 0
	    : mysql_errno(db->conn);
	mk_trace_end(MK_PHASE_DATABASE, began);
	return err;
}

/*
 * Sleeps the attempt's back-off: base * 2^attempt, up to a quarter more of
 * jitter.
 */
static void
back_off(struct mk_db *db, int attempt)
{
	int64_t delay_ms = 20LL << attempt;
	uint64_t began = mk_trace_begin();
	struct timespec ts;

	db->jitter ^= db->jitter << 13;
	db->jitter ^= db->jitter >> 7;
	db->jitter ^= db->jitter << 17;
	delay_ms += (int64_t)(db->jitter % (uint64_t)(delay_ms / 4 + 1));
	ts.tv_sec = delay_ms / 1000;
	ts.tv_nsec = (delay_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
	/* A retry's wait is the database's time too. */
	mk_trace_end(MK_PHASE_DATABASE, began);
}

enum mk_err
mk_db_transaction(struct mk_db *handle, mk_db_txn_fn fn, void *ctx)
{
	/* fn gets the caller's handle: its statements count as the caller's. */
	struct mk_db *db = handle->link;
	int64_t deadline = mk_clock_mono_ms() + db->config->db_retry_time_ms;
	enum mk_err rc = MK_EUNAVAIL;

	for (int attempt = 0; attempt < db->config->db_retries; attempt++) {
		unsigned err;

		if (attempt > 0) {
			if (mk_clock_mono_ms() >= deadline)
				break;
			back_off(db, attempt - 1);
			mk_metrics_count(MK_COUNTER_DB_RETRIES);
		}
		db->retryable = false;
		if (db->conn == NULL) {
			uint64_t began = mk_trace_begin();
			enum mk_err connected = connect_db(db);

			mk_trace_end(MK_PHASE_DATABASE, began);
			if (connected != MK_OK) /* the next one tries again */
				continue;
		}
		if ((err = simple(db, "START TRANSACTION")) != 0) {
			if (connection_lost(err)) {
				disconnect(db);
				continue;
			}
			mk_log(MK_LOG_ERROR,
			    "database: cannot start a transaction: %u", err);
			return MK_EINTERNAL;
		}
		db->in_txn = true;
		rc = fn(handle, ctx);
		db->in_txn = false;
		if (rc == MK_OK) {
			err = simple(db, "COMMIT");
			if (err == 0) {
				recovered(db);
				return MK_OK;
			}
			if (lock_conflict(err)) {
				(void)simple(db, "ROLLBACK");
				/* refused before it landed: run it again */
				continue;
			}
			/*
			 * A commit whose connection dropped may have landed or
			 * not: running it again could write twice, so the
			 * client hears 503 (and retries with its
			 * Idempotency-Key).
			 */
			mk_log(
			    MK_LOG_ERROR, "database: commit failed: %u", err);
			disconnect(db);
			return connection_lost(err) ? MK_EUNAVAIL
						    : MK_EINTERNAL;
		}
		if (db->conn != NULL && simple(db, "ROLLBACK") != 0)
			disconnect(db);
		if (!db->retryable)
			return rc;
		mk_log(MK_LOG_WARN,
		    "database: transaction attempt %d failed (deadlock, lock "
		    "wait or lost connection): retrying",
		    attempt + 1);
	}
	return outage(db, "transaction", "retries exhausted");
}

enum mk_err
mk_db_script(
    struct mk_db *db, const char *script, size_t len, unsigned *failed_at)
{
	MYSQL_RES *res;
	int next;

	db = db->link;
	*failed_at = 1;
	assert(db->session);
	if (db->conn == NULL)
		return outage(db, "script", "the session was lost");
	if (mysql_real_query(db->conn, script, (unsigned long)len) != 0)
		goto failed;
	for (;;) {
		/* A SELECT in a script has rows to drain; others have none. */
		if ((res = mysql_store_result(db->conn)) != NULL)
			mysql_free_result(res);
		else if (mysql_field_count(db->conn) != 0)
			goto failed;
		if ((next = mysql_next_result(db->conn)) < 0)
			break;
		(*failed_at)++;
		if (next > 0)
			goto failed;
	}
	/* The script may have switched databases (USE): back to ours. */
	if (mysql_select_db(db->conn, db->config->db_name) != 0) {
		*failed_at = 0;
		goto failed;
	}
	return MK_OK;
failed:
	remember(db, mysql_errno(db->conn), mysql_error(db->conn));
	return MK_EINVAL;
}
