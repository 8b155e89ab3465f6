/*
 * markets-admin (admin layer): operator commands that run beside the
 * server with the same configuration (--config files, then MARKETS_<KEY>
 * from the environment).
 *
 *   markets-admin [--config FILE]... token --sub ID --role ROLE
 *                 [--email E] [--name N] [--ttl SECONDS]
 *       prints an HS256 token signed with jwt_secret
 *   markets-admin [--config FILE]... migrate [--dir DIR] [--status]
 *       applies the DIR/NNN_name.sql files (DIR defaults to ./sql) that
 *       schema_version does not record yet, in order; --status lists
 *       every file as applied or pending and changes nothing
 *   markets-admin [--config FILE]... reindex [--missing]
 *       embeds every market (or those without a current vector) with
 *       the configured embedder and stores the vectors for search
 *   markets-admin [--config FILE]... run-jobs [--drain]
 *       runs a job runner in the foreground (where no master runs one,
 *       e.g. under Apache mod_fcgid); --drain stops when none is ready
 *
 * Being an operator tool, migrate speaks SQL itself: it opens its own
 * MariaDB connection with the db_* settings (usually overridden to an
 * account with DDL rights, e.g. MARKETS_DB_USER=root) through Connector/C
 * directly, not through the server's store layer. One struct migrate owns
 * that connection, the file list and the schema_version rows until
 * migrate_release(). Exit status: 0 success, 1 failure, 2 usage error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>
#include <mysqld_error.h>

#include "auth/jwt.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/arena.h"
#include "core/json.h"
#include "core/log.h"
#include "jobs/runner.h"
#include "search/embedder.h"
#include "search/indexer.h"
#include "store/db.h"

#define MAX_CONFIG_FILES 16

extern char **environ;

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: markets-admin [--config FILE]... COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  token --sub ID --role admin|moderator|user [--email E] [--name N]\n"
	    "        [--ttl SECONDS]   print an HS256 token signed with jwt_secret\n"
	    "        (ttl: default 3600, at most jwt_max_lifetime)\n"
	    "  migrate [--dir DIR] [--status]\n"
	    "        apply DIR/NNN_name.sql (default DIR: ./sql) not yet recorded in\n"
	    "        schema_version, in order; --status lists applied and pending\n"
	    "        files and applies nothing. Connects with the db_* settings\n"
	    "        (MARKETS_DB_USER=root etc. override them).\n"
	    "  reindex [--missing]\n"
	    "        embed every market (--missing: only those without a vector of\n"
	    "        the configured embedder for their current version) for search\n"
	    "  run-jobs [--drain]\n"
	    "        run a job runner in the foreground; --drain: until none is ready\n");
}

static int
parse_positive(const char *s, long long max, long long *out)
{
	char *end;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_token(const struct mk_config *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sub", required_argument, NULL, 's' },
		{ "role", required_argument, NULL, 'r' },
		{ "email", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *email = NULL, *name = NULL;
	long long sub = 0, ttl = 3600;
	struct mk_buf payload, token;
	int opt, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_positive(optarg, (1LL << 53) - 1, &sub) != 0) {
				fprintf(stderr, "markets-admin: --sub must be a positive integer\n");
				return 2;
			}
			break;
		case 'r': role = optarg; break;
		case 'e': email = optarg; break;
		case 'n': name = optarg; break;
		case 't':
			if (parse_positive(optarg, 10LL * 365 * 86400, &ttl) != 0) {
				fprintf(stderr, "markets-admin: --ttl must be a positive number of seconds\n");
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sub == 0 || role == NULL || (strcmp(role, "admin") != 0 &&
	    strcmp(role, "moderator") != 0 && strcmp(role, "user") != 0)) {
		fprintf(stderr, "markets-admin: token needs --sub and --role admin|moderator|user\n");
		return 2;
	}
	if (config->jwt_secret[0] == '\0') {
		fprintf(stderr, "markets-admin: jwt_secret is not configured\n");
		return 1;
	}
	/* The server would refuse it (exp - iat above jwt_max_lifetime). */
	if (ttl > config->jwt_max_lifetime_ms / 1000) {
		fprintf(stderr, "markets-admin: --ttl %lld is longer than jwt_max_lifetime (%d s): the server would refuse the token\n",
		    ttl, config->jwt_max_lifetime_ms / 1000);
		return 2;
	}
	mk_buf_init(&payload, NULL);
	mk_buf_init(&token, NULL);
	mk_buf_printf(&payload, "{\"sub\":\"%lld\",\"role\":\"%s\",\"iat\":%lld,\"exp\":%lld",
	    sub, role, (long long)time(NULL), (long long)time(NULL) + ttl);
	if (email != NULL) {
		mk_buf_puts(&payload, ",\"email\":");
		mk_json_cstr(&payload, email);
	}
	if (name != NULL) {
		mk_buf_puts(&payload, ",\"name\":");
		mk_json_cstr(&payload, name);
	}
	mk_buf_putc(&payload, '}');
	if (!payload.oom &&
	    mk_jwt_sign_hs256(&token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload.data,
	    config->jwt_secret, strlen(config->jwt_secret)) == MK_OK) {
		printf("%s\n", token.data);
		status = fflush(stdout) == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "markets-admin: cannot sign the token\n");
	}
	mk_buf_release(&payload);
	mk_buf_release(&token);
	return status;
}

/* migrate: the lock that serialises concurrent runs, server-wide. */
#define MIGRATE_LOCK "markets-migrate"
#define MIGRATE_LOCK_WAIT_S 30
#define MIGRATION_MAX_BYTES (1024 * 1024)
#define MIGRATION_NAME_MAX 200 /* schema_version.name */

/* One DIR/NNN_name.sql file. */
struct migration {
	unsigned version;
	char name[MIGRATION_NAME_MAX + 1];
};

/* One schema_version row. */
struct applied_row {
	unsigned long version;
	char name[MIGRATION_NAME_MAX + 1];
	char applied_at[32];
};

/* Everything one migrate run holds; migrate_release() frees it all. */
struct migrate {
	const struct mk_config *config;
	const char *dir;
	struct migration *files; /* sorted by version */
	size_t nfiles;
	struct applied_row *rows; /* sorted by version */
	size_t nrows;
	MYSQL *conn;
	bool locked;
};

/* True when name is NNN_[A-Za-z0-9_-]+.sql; *version is then NNN. */
static bool
migration_name(const char *name, unsigned *version)
{
	size_t len = strlen(name), i;

	if (len < 9 || name[3] != '_' || strcmp(name + len - 4, ".sql") != 0)
		return false;
	for (i = 0; i < 3; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	for (i = 4; i < len - 4; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	*version = (unsigned)((name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0'));
	return true;
}

static int
compare_migrations(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Lists m->dir into m->files, sorted by version. Names that are not
 * NNN_name.sql are skipped; two files with one number are an error (which
 * of them would run is not the operator's choice to leave to chance).
 */
static enum mk_err
scan_migrations(struct migrate *m)
{
	struct migration *grown;
	struct dirent *ent;
	size_t cap = 0, i;
	unsigned version;
	DIR *dir;

	if ((dir = opendir(m->dir)) == NULL) {
		fprintf(stderr, "markets-admin: cannot open the migrations directory %s: %s\n",
		    m->dir, strerror(errno));
		return MK_EINVAL;
	}
	for (;;) {
		errno = 0;
		if ((ent = readdir(dir)) == NULL) {
			if (errno == 0)
				break;
			fprintf(stderr, "markets-admin: cannot read %s: %s\n", m->dir, strerror(errno));
			(void)closedir(dir);
			return MK_EINTERNAL;
		}
		if (!migration_name(ent->d_name, &version))
			continue;
		if (strlen(ent->d_name) > MIGRATION_NAME_MAX) {
			fprintf(stderr, "markets-admin: %s/%s: the name is longer than %d characters\n",
			    m->dir, ent->d_name, MIGRATION_NAME_MAX);
			(void)closedir(dir);
			return MK_EINVAL;
		}
		if (m->nfiles == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((grown = realloc(m->files, cap * sizeof(*grown))) == NULL) {
				fprintf(stderr, "markets-admin: out of memory\n");
				(void)closedir(dir);
				return MK_ENOMEM;
			}
			m->files = grown;
		}
		m->files[m->nfiles].version = version;
		memcpy(m->files[m->nfiles].name, ent->d_name, strlen(ent->d_name) + 1);
		m->nfiles++;
	}
	if (closedir(dir) != 0) {
		fprintf(stderr, "markets-admin: cannot close %s: %s\n", m->dir, strerror(errno));
		return MK_EINTERNAL;
	}
	if (m->nfiles > 1)
		qsort(m->files, m->nfiles, sizeof(*m->files), compare_migrations);
	for (i = 1; i < m->nfiles; i++) {
		if (m->files[i].version == m->files[i - 1].version) {
			fprintf(stderr, "markets-admin: %s/%s and %s/%s have the same number %03u;"
			    " renumber one of them\n", m->dir, m->files[i - 1].name,
			    m->dir, m->files[i].name, m->files[i].version);
			return MK_ECONFLICT;
		}
	}
	return MK_OK;
}

/*
 * Opens m->conn with the db_* settings and multi-statement batches on.
 * There is no read timeout, unlike the server's: a long ALTER TABLE must
 * not be abandoned by the client while the server carries on with it.
 * Auto-reconnect stays off: a new session would not hold the lock.
 */
static enum mk_err
migrate_connect(struct migrate *m)
{
	const struct mk_config *c = m->config;
	unsigned connect_s = (unsigned)((c->db_connect_timeout_ms + 999) / 1000);
	my_bool no = 0;

	if (c->db_socket[0] == '\0' && c->db_host[0] == '\0') {
		fprintf(stderr, "markets-admin: no database configured: set db_socket or db_host\n");
		return MK_EINVAL;
	}
	if (c->db_name[0] == '\0') {
		fprintf(stderr, "markets-admin: db_name is empty\n");
		return MK_EINVAL;
	}
	if ((m->conn = mysql_init(NULL)) == NULL) {
		fprintf(stderr, "markets-admin: out of memory\n");
		return MK_ENOMEM;
	}
	/* UTC, as the server's sessions: a TIMESTAMP literal means one instant. */
	if (mysql_optionsv(m->conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s) != 0 ||
	    mysql_optionsv(m->conn, MYSQL_OPT_RECONNECT, &no) != 0 ||
	    mysql_optionsv(m->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_optionsv(m->conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'") != 0) {
		fprintf(stderr, "markets-admin: cannot set the connection options: %s\n",
		    mysql_error(m->conn));
		return MK_EINTERNAL;
	}
	if (mysql_real_connect(m->conn,
	    c->db_socket[0] != '\0' ? NULL : c->db_host,
	    c->db_user, c->db_password[0] != '\0' ? c->db_password : NULL,
	    c->db_name, (unsigned)c->db_port,
	    c->db_socket[0] != '\0' ? c->db_socket : NULL, CLIENT_MULTI_STATEMENTS) == NULL) {
		fprintf(stderr, "markets-admin: cannot connect to the database (%s as %s): %s\n",
		    c->db_socket[0] != '\0' ? c->db_socket : c->db_host, c->db_user,
		    mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	return MK_OK;
}

/*
 * Runs sql, a SELECT of one value, and reports whether that value is 1:
 * *one is true for "1", false for anything else or NULL.
 */
static enum mk_err
query_is_one(MYSQL *conn, const char *sql, bool *one)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	*one = false;
	if (mysql_query(conn, sql) != 0 || (res = mysql_store_result(conn)) == NULL) {
		fprintf(stderr, "markets-admin: %s: %s\n", sql, mysql_error(conn));
		return MK_EUNAVAIL;
	}
	row = mysql_fetch_row(res);
	*one = row != NULL && mysql_num_fields(res) == 1 && row[0] != NULL &&
	    strcmp(row[0], "1") == 0;
	mysql_free_result(res);
	return MK_OK;
}

/*
 * Takes the server-wide lock MIGRATE_LOCK, waiting up to
 * MIGRATE_LOCK_WAIT_S for another run to finish, so that two runs never
 * apply one file twice. The lock belongs to the session: closing the
 * connection (or the process dying) releases it too.
 */
static enum mk_err
migrate_lock(struct migrate *m)
{
	char sql[96];
	enum mk_err err;
	bool got;

	snprintf(sql, sizeof(sql), "SELECT GET_LOCK('%s', %d)", MIGRATE_LOCK, MIGRATE_LOCK_WAIT_S);
	if ((err = query_is_one(m->conn, sql, &got)) != MK_OK)
		return err;
	if (!got) {
		fprintf(stderr, "markets-admin: another migrate has held the lock '%s' for %d s;"
		    " try again when it is done\n", MIGRATE_LOCK, MIGRATE_LOCK_WAIT_S);
		return MK_EUNAVAIL;
	}
	m->locked = true;
	return MK_OK;
}

/*
 * Reads schema_version into m->rows. With missing_ok, a database without
 * the table has applied nothing (--status creates nothing).
 */
static enum mk_err
read_applied(struct migrate *m, bool missing_ok)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	my_ulonglong nrows;

	if (mysql_query(m->conn, "SELECT version, name, applied_at FROM schema_version"
	    " ORDER BY version") != 0) {
		if (missing_ok && mysql_errno(m->conn) == ER_NO_SUCH_TABLE)
			return MK_OK;
		fprintf(stderr, "markets-admin: cannot read schema_version: %s\n", mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	if ((res = mysql_store_result(m->conn)) == NULL) {
		fprintf(stderr, "markets-admin: cannot read schema_version: %s\n", mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	nrows = mysql_num_rows(res);
	if ((m->rows = calloc(nrows > 0 ? (size_t)nrows : 1, sizeof(*m->rows))) == NULL) {
		mysql_free_result(res);
		fprintf(stderr, "markets-admin: out of memory\n");
		return MK_ENOMEM;
	}
	while (m->nrows < nrows && (row = mysql_fetch_row(res)) != NULL) {
		struct applied_row *r = &m->rows[m->nrows++];

		if (row[0] == NULL || row[1] == NULL) {
			mysql_free_result(res);
			fprintf(stderr, "markets-admin: schema_version holds a NULL\n");
			return MK_EINTERNAL;
		}
		r->version = strtoul(row[0], NULL, 10);
		snprintf(r->name, sizeof(r->name), "%s", row[1]);
		snprintf(r->applied_at, sizeof(r->applied_at), "%s", row[2] != NULL ? row[2] : "?");
	}
	if (m->nrows != nrows) {
		fprintf(stderr, "markets-admin: cannot read schema_version: %s\n", mysql_error(m->conn));
		mysql_free_result(res);
		return MK_EUNAVAIL;
	}
	mysql_free_result(res);
	return MK_OK;
}

/* The schema_version row of version, or NULL. */
static const struct applied_row *
find_applied(const struct migrate *m, unsigned long version)
{
	size_t i;

	for (i = 0; i < m->nrows; i++)
		if (m->rows[i].version == version)
			return &m->rows[i];
	return NULL;
}

/*
 * Reads path whole into a new heap buffer: *text (NUL-terminated, freed
 * by the caller) and *len. A file over MIGRATION_MAX_BYTES is refused.
 */
static enum mk_err
read_migration(const char *path, char **text, size_t *len)
{
	struct stat st;
	size_t total = 0;
	ssize_t n;
	char *buf;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "markets-admin: cannot open %s: %s\n", path, strerror(errno));
		return MK_EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "markets-admin: cannot stat %s: %s\n", path, strerror(errno));
		(void)close(fd);
		return MK_EINVAL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MIGRATION_MAX_BYTES) {
		fprintf(stderr, "markets-admin: %s: %s\n", path, !S_ISREG(st.st_mode) ?
		    "not a regular file" : "larger than 1 MiB");
		(void)close(fd);
		return MK_EINVAL;
	}
	if ((buf = malloc(MIGRATION_MAX_BYTES + 2)) == NULL) {
		(void)close(fd);
		fprintf(stderr, "markets-admin: out of memory\n");
		return MK_ENOMEM;
	}
	/* Read one byte past the cap: the file may have grown since fstat. */
	while (total <= MIGRATION_MAX_BYTES) {
		n = read(fd, buf + total, MIGRATION_MAX_BYTES + 1 - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "markets-admin: cannot read %s: %s\n", path, strerror(errno));
			(void)close(fd);
			free(buf);
			return MK_EINVAL;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	if (close(fd) != 0 || total > MIGRATION_MAX_BYTES) {
		fprintf(stderr, "markets-admin: %s: %s\n", path, total > MIGRATION_MAX_BYTES ?
		    "larger than 1 MiB" : strerror(errno));
		free(buf);
		return MK_EINVAL;
	}
	buf[total] = '\0';
	*text = buf;
	*len = total;
	return MK_OK;
}

/*
 * Runs text as one multi-statement batch and drains every result. The
 * server stops at the first statement that fails; *failed_at is then its
 * position (1-based) and the error is left on conn. Statements before it
 * stay applied: MariaDB commits DDL at once.
 */
static enum mk_err
run_batch(MYSQL *conn, const char *text, size_t len, unsigned *failed_at)
{
	MYSQL_RES *res;
	int next;

	*failed_at = 1;
	if (mysql_real_query(conn, text, (unsigned long)len) != 0)
		return MK_EINVAL;
	for (;;) {
		/* A SELECT in a migration has rows to drain; others have none. */
		if ((res = mysql_store_result(conn)) != NULL)
			mysql_free_result(res);
		else if (mysql_field_count(conn) != 0)
			return MK_EINVAL;
		if ((next = mysql_next_result(conn)) < 0)
			return MK_OK;
		(*failed_at)++;
		if (next > 0)
			return MK_EINVAL;
	}
}

/*
 * Records mig in schema_version. The file may have switched databases
 * (USE), so the configured one is selected again first.
 */
static enum mk_err
record_migration(struct migrate *m, const struct migration *mig)
{
	char escaped[2 * MIGRATION_NAME_MAX + 1];
	char sql[sizeof(escaped) + 96];

	if (mysql_select_db(m->conn, m->config->db_name) != 0 ||
	    mysql_real_escape_string(m->conn, escaped, mig->name,
	    (unsigned long)strlen(mig->name)) == (unsigned long)-1) {
		fprintf(stderr, "markets-admin: %s applied but not recorded: %s\n", mig->name,
		    mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version, name) VALUES (%u, '%s')",
	    mig->version, escaped);
	if (mysql_query(m->conn, sql) != 0) {
		fprintf(stderr, "markets-admin: %s applied but not recorded: %s\n", mig->name,
		    mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	return MK_OK;
}

/* Applies one file and records it; says which and why when it fails. */
static enum mk_err
apply_migration(struct migrate *m, const struct migration *mig)
{
	char path[PATH_MAX];
	unsigned failed_at;
	enum mk_err err;
	char *text;
	size_t len;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", m->dir, mig->name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "markets-admin: %s/%s: path too long\n", m->dir, mig->name);
		return MK_EINVAL;
	}
	if ((err = read_migration(path, &text, &len)) != MK_OK)
		return err;
	err = run_batch(m->conn, text, len, &failed_at);
	free(text);
	if (err != MK_OK) {
		fprintf(stderr, "markets-admin: migration %s failed at statement %u: %s (error %u)\n",
		    mig->name, failed_at, mysql_error(m->conn), mysql_errno(m->conn));
		return err;
	}
	if ((err = record_migration(m, mig)) != MK_OK)
		return err;
	printf("applied %s\n", mig->name);
	/* Progress shows as it happens, and survives a later failure. */
	if (fflush(stdout) != 0) {
		fprintf(stderr, "markets-admin: cannot write to stdout: %s\n", strerror(errno));
		return MK_EINTERNAL;
	}
	return MK_OK;
}

/* migrate: under the lock, every file not recorded, in order. */
static enum mk_err
migrate_apply(struct migrate *m)
{
	size_t i, applied = 0, skipped = 0;
	enum mk_err err;

	if ((err = migrate_lock(m)) != MK_OK)
		return err;
	if (mysql_query(m->conn, "CREATE TABLE IF NOT EXISTS schema_version ("
	    " version INT UNSIGNED NOT NULL PRIMARY KEY,"
	    " name VARCHAR(200) NOT NULL,"
	    " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB") != 0) {
		fprintf(stderr, "markets-admin: cannot create schema_version: %s\n",
		    mysql_error(m->conn));
		return MK_EUNAVAIL;
	}
	/* Read only now, under the lock: a run we waited for may have applied some. */
	if ((err = read_applied(m, false)) != MK_OK)
		return err;
	for (i = 0; i < m->nfiles; i++) {
		if (find_applied(m, m->files[i].version) != NULL) {
			skipped++;
			continue;
		}
		if ((err = apply_migration(m, &m->files[i])) != MK_OK) {
			fprintf(stderr, "markets-admin: %zu applied before the failure; fix %s and run"
			    " migrate again\n", applied, m->files[i].name);
			return err;
		}
		applied++;
	}
	printf("%zu applied, %zu already applied\n", applied, skipped);
	return MK_OK;
}

/* migrate --status: every file as applied or pending, then rows without files. */
static enum mk_err
migrate_status(struct migrate *m)
{
	const struct applied_row *row;
	size_t i, pending = 0, applied = 0, orphans = 0;
	enum mk_err err;

	if ((err = read_applied(m, true)) != MK_OK)
		return err;
	for (i = 0; i < m->nfiles; i++) {
		if ((row = find_applied(m, m->files[i].version)) == NULL) {
			printf("pending  %s\n", m->files[i].name);
			pending++;
			continue;
		}
		applied++;
		if (strcmp(row->name, m->files[i].name) == 0)
			printf("applied  %s  %s UTC\n", row->name, row->applied_at);
		else
			printf("applied  %s  %s UTC  (recorded as %s)\n", m->files[i].name,
			    row->applied_at, row->name);
	}
	for (i = 0; i < m->nrows; i++) {
		const struct migration *f = NULL;
		size_t j;

		for (j = 0; j < m->nfiles && f == NULL; j++)
			if (m->files[j].version == m->rows[i].version)
				f = &m->files[j];
		if (f == NULL) {
			printf("applied  %s  %s UTC  (no such file in %s)\n", m->rows[i].name,
			    m->rows[i].applied_at, m->dir);
			orphans++;
		}
	}
	if (orphans > 0)
		printf("%zu applied, %zu pending, %zu recorded without a file\n", applied,
		    pending, orphans);
	else
		printf("%zu applied, %zu pending\n", applied, pending);
	return MK_OK;
}

/* Releases the lock, closes the connection, frees the lists. */
static void
migrate_release(struct migrate *m)
{
	bool released;

	/* Closing the session would release it too; say so when that is all. */
	if (m->locked && (query_is_one(m->conn, "SELECT RELEASE_LOCK('" MIGRATE_LOCK "')",
	    &released) != MK_OK || !released))
		fprintf(stderr, "markets-admin: the lock '%s' is released when the connection"
		    " closes\n", MIGRATE_LOCK);
	if (m->conn != NULL)
		mysql_close(m->conn);
	mysql_library_end();
	free(m->files);
	free(m->rows);
}

static int
cmd_migrate(const struct mk_config *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct migrate m = { .config = config, .dir = "sql" };
	bool status_only = false;
	enum mk_err err;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': m.dir = optarg; break;
		case 's': status_only = true; break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || m.dir[0] == '\0') {
		fprintf(stderr, "markets-admin: migrate takes only --dir DIR and --status\n");
		return 2;
	}
	/* The directory first: a bad one costs no connection. */
	err = scan_migrations(&m);
	if (err == MK_OK)
		err = migrate_connect(&m);
	if (err == MK_OK)
		err = status_only ? migrate_status(&m) : migrate_apply(&m);
	migrate_release(&m);
	if (fflush(stdout) != 0 && err == MK_OK) {
		fprintf(stderr, "markets-admin: cannot write to stdout: %s\n", strerror(errno));
		err = MK_EINTERNAL;
	}
	return err == MK_OK ? 0 : 1;
}

static int
cmd_reindex(const struct mk_config *config, int argc, char **argv)
{
	struct mk_embedder *embedder = NULL;
	struct mk_arena *arena = NULL;
	struct mk_db *db = NULL;
	bool only_missing = false;
	uint64_t count = 0;
	char err[512] = "";
	enum mk_err rc = MK_EINTERNAL;

	if (argc == 2 && strcmp(argv[1], "--missing") == 0) {
		only_missing = true;
	} else if (argc != 1) {
		fprintf(stderr, "markets-admin: reindex takes only --missing\n");
		return 2;
	}
	if (!mk_db_configured(config)) {
		fprintf(stderr, "markets-admin: reindex: no database configured\n");
		return 1;
	}
	db = mk_db_new(config, err, sizeof(err));
	embedder = db != NULL ? mk_embedder_from_config(config, err, sizeof(err)) : NULL;
	arena = mk_arena_new(0);
	if (db != NULL && embedder != NULL && arena != NULL)
		rc = mk_indexer_reindex_all(db, arena, embedder, only_missing, &count);
	if (rc == MK_OK)
		printf("reindexed %llu market(s) with %s (%u dimensions)\n", (unsigned long long)count,
		    embedder->name, embedder->dim);
	else
		fprintf(stderr, "markets-admin: reindex failed after %llu market(s): %s\n",
		    (unsigned long long)count, err[0] != '\0' ? err : mk_err_name(rc));
	mk_arena_free(arena);
	mk_embedder_free(embedder);
	mk_db_free(db);
	return rc == MK_OK ? 0 : 1;
}

static int
cmd_run_jobs(const struct mk_config *config, int argc, char **argv)
{
	bool drain = argc == 2 && strcmp(argv[1], "--drain") == 0;

	if (argc > 2 || (argc == 2 && !drain)) {
		fprintf(stderr, "markets-admin: run-jobs takes only --drain\n");
		return 2;
	}
	if (mk_log_open(config->log_file, config->log_level) != 0) {
		fprintf(stderr, "markets-admin: cannot open log %s: %s\n", config->log_file, strerror(errno));
		return 1;
	}
	return mk_jobs_runner_run(config, 0, drain);
}

int
main(int argc, char **argv)
{
	const char *config_paths[MAX_CONFIG_FILES];
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *config;
	size_t nconfig = 0;
	int i = 1, status;

	/* Global options come before the command; getopt would mix them up. */
	while (i < argc && strcmp(argv[i], "--config") == 0) {
		if (i + 1 >= argc || nconfig == MAX_CONFIG_FILES) {
			usage(stderr);
			return 2;
		}
		config_paths[nconfig++] = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	if (mk_config_load(config_paths, nconfig, environ, &config, err, sizeof(err)) != MK_OK) {
		fprintf(stderr, "markets-admin: bad configuration: %s\n", err);
		return 1;
	}
	if (strcmp(argv[i], "token") == 0) {
		status = cmd_token(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "migrate") == 0) {
		status = cmd_migrate(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "reindex") == 0) {
		status = cmd_reindex(config, argc - i, argv + i);
	} else if (strcmp(argv[i], "run-jobs") == 0) {
		status = cmd_run_jobs(config, argc - i, argv + i);
	} else {
		fprintf(stderr, "markets-admin: unknown command '%s'\n", argv[i]);
		usage(stderr);
		status = 2;
	}
	mk_config_free(config);
	return status;
}
