/*
 * MariaDB access (store layer); see db.h. The connection is opened on first
 * use, with connect/read/write timeouts from the configuration so that a
 * dead server costs a bounded wait, utf8mb4 and UTC for the session. A
 * failure closes the handle: the next use connects afresh (Connector/C's
 * own auto-reconnect is off — it would silently lose session state and
 * prepared statements). Outages are logged once, when they start and when
 * they end.
 */
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "store/db.h"

struct mk_db {
	MYSQL *conn;            /* NULL while disconnected */
	const struct mk_config *config;
	bool down;
	int64_t down_since_ms;
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
	db->config = config;
	return db;
}

static void
disconnect(struct mk_db *db)
{
	if (db->conn != NULL) {
		mysql_close(db->conn);
		db->conn = NULL;
	}
}

void
mk_db_free(struct mk_db *db)
{
	if (db == NULL)
		return;
	disconnect(db);
	free(db);
}

/* Logs the start of an outage once, with the cause. */
static enum mk_err
outage(struct mk_db *db, const char *what, const char *cause)
{
	if (!db->down) {
		mk_log(MK_LOG_ERROR, "database unavailable: %s: %s", what, cause);
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
	unsigned connect_s = (unsigned)((c->db_connect_timeout_ms + 999) / 1000);
	unsigned io_s = (unsigned)((c->db_io_timeout_ms + 999) / 1000);
	my_bool no = 0;
	MYSQL *conn = mysql_init(NULL);

	if (conn == NULL)
		return outage(db, "connect", "out of memory");
	db->conn = conn;
	if (mysql_optionsv(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s) != 0 ||
	    mysql_optionsv(conn, MYSQL_OPT_READ_TIMEOUT, &io_s) != 0 ||
	    mysql_optionsv(conn, MYSQL_OPT_WRITE_TIMEOUT, &io_s) != 0 ||
	    mysql_optionsv(conn, MYSQL_OPT_RECONNECT, &no) != 0 ||
	    mysql_optionsv(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_optionsv(conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'") != 0)
		return outage(db, "connect", "cannot set connection options");
	if (mysql_real_connect(conn,
	    c->db_socket[0] != '\0' ? NULL : c->db_host,
	    c->db_user, c->db_password[0] != '\0' ? c->db_password : NULL,
	    c->db_name, (unsigned)c->db_port,
	    c->db_socket[0] != '\0' ? c->db_socket : NULL, 0) == NULL)
		return outage(db, "connect", mysql_error(conn));
	return MK_OK;
}

enum mk_err
mk_db_ping(struct mk_db *db)
{
	if (db->conn == NULL && connect_db(db) != MK_OK)
		return MK_EUNAVAIL;
	if (mysql_ping(db->conn) != 0) {
		/* A connection that dropped since its last use: one fresh try. */
		disconnect(db);
		if (connect_db(db) != MK_OK)
			return MK_EUNAVAIL;
		if (mysql_ping(db->conn) != 0)
			return outage(db, "ping", mysql_error(db->conn));
	}
	recovered(db);
	return MK_OK;
}
