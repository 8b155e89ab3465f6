/*
 * markets-admin migrate (admin layer); see migrate.h. It speaks SQL, as
 * an operator tool may, but through store/db: a session of its own
 * (mk_db_session_new) made with every db_* setting, db_tls among them.
 * One struct migrate owns that session, the file list and the
 * schema_version rows (in its arena) until migrate_release().
 */
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
#include <unistd.h>

#include "admin/migrate.h"
#include "core/arena.h"
#include "core/config.h"
#include "store/db.h"

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

/* One schema_version row; the text is in the run's arena. */
struct applied_row {
	unsigned long version;
	const char *name;
	const char *applied_at;
};

/* Everything one migrate run holds; migrate_release() frees it all. */
struct migrate {
	const struct mk_config *config;
	const char *dir;
	struct migration *files; /* sorted by version */
	size_t nfiles;
	struct applied_row *rows; /* sorted by version, in arena */
	size_t nrows;
	struct mk_db *db;       /* a session (store/db.h) */
	struct mk_arena *arena; /* rows read from the database */
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
	*version = (unsigned)((name[0] - '0') * 100 + (name[1] - '0') * 10 +
	    (name[2] - '0'));
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
		fprintf(stderr,
		    "markets-admin: cannot open the migrations directory "
		    "%s: %s\n",
		    m->dir, strerror(errno));
		return MK_EINVAL;
	}
	for (;;) {
		errno = 0;
		if ((ent = readdir(dir)) == NULL) {
			if (errno == 0)
				break;
			fprintf(stderr, "markets-admin: cannot read %s: %s\n",
			    m->dir, strerror(errno));
			(void)closedir(dir);
			return MK_EINTERNAL;
		}
		if (!migration_name(ent->d_name, &version))
			continue;
		if (strlen(ent->d_name) > MIGRATION_NAME_MAX) {
			fprintf(stderr,
			    "markets-admin: %s/%s: the name is longer than "
			    "%d characters\n",
			    m->dir, ent->d_name, MIGRATION_NAME_MAX);
			(void)closedir(dir);
			return MK_EINVAL;
		}
		if (m->nfiles == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((grown = realloc(m->files, cap * sizeof(*grown))) ==
			    NULL) {
				fprintf(
				    stderr, "markets-admin: out of memory\n");
				(void)closedir(dir);
				return MK_ENOMEM;
			}
			m->files = grown;
		}
		m->files[m->nfiles].version = version;
		memcpy(m->files[m->nfiles].name, ent->d_name,
		    strlen(ent->d_name) + 1);
		m->nfiles++;
	}
	if (closedir(dir) != 0) {
		fprintf(stderr, "markets-admin: cannot close %s: %s\n", m->dir,
		    strerror(errno));
		return MK_EINTERNAL;
	}
	if (m->nfiles > 1)
		qsort(
		    m->files, m->nfiles, sizeof(*m->files), compare_migrations);
	for (i = 1; i < m->nfiles; i++) {
		if (m->files[i].version == m->files[i - 1].version) {
			fprintf(stderr,
			    "markets-admin: %s/%s and %s/%s have the same "
			    "number %03u;"
			    " renumber one of them\n",
			    m->dir, m->files[i - 1].name, m->dir,
			    m->files[i].name, m->files[i].version);
			return MK_ECONFLICT;
		}
	}
	return MK_OK;
}

/*
 * Opens m->db, a session with the db_* settings (store/db.h: db_tls
 * honoured, scripts of several statements allowed, no read timeout,
 * never connected again behind our back: a new session would not hold
 * the lock).
 */
static enum mk_err
migrate_connect(struct migrate *m)
{
	const struct mk_config *c = m->config;
	char err[512];

	if (!mk_db_configured(c)) {
		fprintf(stderr,
		    "markets-admin: no database configured: set "
		    "db_socket or db_host\n");
		return MK_EINVAL;
	}
	if (c->db_name[0] == '\0') {
		fprintf(stderr, "markets-admin: db_name is empty\n");
		return MK_EINVAL;
	}
	if ((m->arena = mk_arena_new(0)) == NULL) {
		fprintf(stderr, "markets-admin: out of memory\n");
		return MK_ENOMEM;
	}
	if ((m->db = mk_db_session_new(c, err, sizeof(err))) == NULL) {
		fprintf(stderr,
		    "markets-admin: cannot connect to the database (%s as "
		    "%s): %s\n",
		    c->db_socket[0] != '\0' ? c->db_socket : c->db_host,
		    c->db_user, err);
		return MK_EUNAVAIL;
	}
	return MK_OK;
}

/*
 * Runs sql, a SELECT of one value, with params, and reports whether that
 * value is 1: *one is true for 1, false for anything else or NULL. A
 * failure is reported as "what: the server's reason".
 */
static enum mk_err
query_is_one(struct migrate *m, const char *what, const char *sql,
    const struct mk_db_value *params, size_t nparams, bool *one)
{
	struct mk_db_rows rows;
	const char *value;

	*one = false;
	if (mk_db_select(m->db, m->arena, sql, params, nparams, &rows) !=
	    MK_OK) {
		fprintf(stderr, "markets-admin: %s: %s\n", what,
		    mk_db_error(m->db, NULL));
		return MK_EUNAVAIL;
	}
	value = rows.nrows == 1 && rows.ncols == 1
	    ? mk_db_cell_text(&rows, 0, 0)
	    : NULL;
	*one = value != NULL && strcmp(value, "1") == 0;
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
	struct mk_db_value params[] = {
		mk_db_text(MIGRATE_LOCK, strlen(MIGRATE_LOCK)),
		mk_db_int(MIGRATE_LOCK_WAIT_S),
	};
	enum mk_err err;
	bool got;

	char what[96];

	(void)snprintf(what, sizeof(what), "SELECT GET_LOCK('%s', %d)",
	    MIGRATE_LOCK, MIGRATE_LOCK_WAIT_S);
	if ((err = query_is_one(
		 m, what, "SELECT GET_LOCK(?, ?)", params, 2, &got)) != MK_OK)
		return err;
	if (!got) {
		fprintf(stderr,
		    "markets-admin: another migrate has held the lock '%s' "
		    "for %d s;"
		    " try again when it is done\n",
		    MIGRATE_LOCK, MIGRATE_LOCK_WAIT_S);
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
	struct mk_db_rows rows;
	bool exists;

	if (missing_ok) {
		if (query_is_one(m, "cannot read schema_version",
			"SELECT COUNT(*) FROM information_schema.TABLES"
			" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
			"'schema_version'",
			NULL, 0, &exists) != MK_OK)
			return MK_EUNAVAIL;
		if (!exists)
			return MK_OK;
	}
	if (mk_db_select(m->db, m->arena,
		"SELECT version, name, applied_at"
		" FROM schema_version ORDER BY version",
		NULL, 0, &rows) != MK_OK) {
		fprintf(stderr,
		    "markets-admin: cannot read schema_version: %s\n",
		    mk_db_error(m->db, NULL));
		return MK_EUNAVAIL;
	}
	m->rows = mk_arena_calloc(m->arena, rows.nrows + 1, sizeof(*m->rows));
	if (m->rows == NULL) {
		fprintf(stderr, "markets-admin: out of memory\n");
		return MK_ENOMEM;
	}
	for (m->nrows = 0; m->nrows < rows.nrows; m->nrows++) {
		struct applied_row *r = &m->rows[m->nrows];
		const char *applied_at = mk_db_cell_text(&rows, m->nrows, 2);

		r->version = (unsigned long)mk_db_cell_int(&rows, m->nrows, 0);
		r->name = mk_db_cell_text(&rows, m->nrows, 1);
		r->applied_at = applied_at != NULL ? applied_at : "?";
		if (mk_db_cell_text(&rows, m->nrows, 0) == NULL ||
		    r->name == NULL) {
			fprintf(stderr,
			    "markets-admin: schema_version holds a NULL\n");
			return MK_EINTERNAL;
		}
	}
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
		fprintf(stderr, "markets-admin: cannot open %s: %s\n", path,
		    strerror(errno));
		return MK_EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "markets-admin: cannot stat %s: %s\n", path,
		    strerror(errno));
		(void)close(fd);
		return MK_EINVAL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MIGRATION_MAX_BYTES) {
		fprintf(stderr, "markets-admin: %s: %s\n", path,
		    !S_ISREG(st.st_mode) ? "not a regular file"
					 : "larger than 1 MiB");
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
			fprintf(stderr, "markets-admin: cannot read %s: %s\n",
			    path, strerror(errno));
			(void)close(fd);
			free(buf);
			return MK_EINVAL;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	if (close(fd) != 0 || total > MIGRATION_MAX_BYTES) {
		fprintf(stderr, "markets-admin: %s: %s\n", path,
		    total > MIGRATION_MAX_BYTES ? "larger than 1 MiB"
						: strerror(errno));
		free(buf);
		return MK_EINVAL;
	}
	buf[total] = '\0';
	*text = buf;
	*len = total;
	return MK_OK;
}

/* Records mig in schema_version. */
static enum mk_err
record_migration(struct migrate *m, const struct migration *mig)
{
	struct mk_db_value params[] = {
		mk_db_int(mig->version),
		mk_db_text(mig->name, strlen(mig->name)),
	};

	if (mk_db_execute(m->db,
		"INSERT INTO schema_version (version, name) VALUES (?, ?)",
		params, 2, NULL, NULL) != MK_OK) {
		fprintf(stderr,
		    "markets-admin: %s applied but not recorded: %s\n",
		    mig->name, mk_db_error(m->db, NULL));
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
		fprintf(stderr, "markets-admin: %s/%s: path too long\n", m->dir,
		    mig->name);
		return MK_EINVAL;
	}
	if ((err = read_migration(path, &text, &len)) != MK_OK)
		return err;
	err = mk_db_script(m->db, text, len, &failed_at);
	free(text);
	if (err != MK_OK && failed_at == 0) {
		/* It ran and switched databases; ours could not come back. */
		fprintf(stderr,
		    "markets-admin: %s applied but not recorded: %s\n",
		    mig->name, mk_db_error(m->db, NULL));
		return err;
	}
	if (err != MK_OK) {
		unsigned code;
		const char *why = mk_db_error(m->db, &code);

		fprintf(stderr,
		    "markets-admin: migration %s failed at statement %u: "
		    "%s (error %u)\n",
		    mig->name, failed_at, why, code);
		return err;
	}
	if ((err = record_migration(m, mig)) != MK_OK)
		return err;
	printf("applied %s\n", mig->name);
	/* Progress shows as it happens, and survives a later failure. */
	if (fflush(stdout) != 0) {
		fprintf(stderr, "markets-admin: cannot write to stdout: %s\n",
		    strerror(errno));
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
	if (mk_db_execute(m->db,
		"CREATE TABLE IF NOT EXISTS schema_version ("
		" version INT UNSIGNED NOT NULL PRIMARY KEY,"
		" name VARCHAR(200) NOT NULL,"
		" applied_at TIMESTAMP NOT NULL DEFAULT "
		"CURRENT_TIMESTAMP) ENGINE=InnoDB",
		NULL, 0, NULL, NULL) != MK_OK) {
		fprintf(stderr,
		    "markets-admin: cannot create schema_version: %s\n",
		    mk_db_error(m->db, NULL));
		return MK_EUNAVAIL;
	}
	/* Read now, under the lock: a run we waited for may have applied. */
	if ((err = read_applied(m, false)) != MK_OK)
		return err;
	for (i = 0; i < m->nfiles; i++) {
		if (find_applied(m, m->files[i].version) != NULL) {
			skipped++;
			continue;
		}
		if ((err = apply_migration(m, &m->files[i])) != MK_OK) {
			fprintf(stderr,
			    "markets-admin: %zu applied before the "
			    "failure; fix %s and run"
			    " migrate again\n",
			    applied, m->files[i].name);
			return err;
		}
		applied++;
	}
	printf("%zu applied, %zu already applied\n", applied, skipped);
	return MK_OK;
}

/* migrate --status: each file applied or pending, then rows without one. */
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
			printf("applied  %s  %s UTC\n", row->name,
			    row->applied_at);
		else
			printf("applied  %s  %s UTC  (recorded as %s)\n",
			    m->files[i].name, row->applied_at, row->name);
	}
	for (i = 0; i < m->nrows; i++) {
		const struct migration *f = NULL;
		size_t j;

		for (j = 0; j < m->nfiles && f == NULL; j++)
			if (m->files[j].version == m->rows[i].version)
				f = &m->files[j];
		if (f == NULL) {
			printf("applied  %s  %s UTC  (no such file in %s)\n",
			    m->rows[i].name, m->rows[i].applied_at, m->dir);
			orphans++;
		}
	}
	if (orphans > 0)
		printf(
		    "%zu applied, %zu pending, %zu recorded without a file\n",
		    applied, pending, orphans);
	else
		printf("%zu applied, %zu pending\n", applied, pending);
	return MK_OK;
}

/* Releases the lock, closes the session, frees the lists. */
static void
migrate_release(struct migrate *m)
{
	struct mk_db_value lock =
	    mk_db_text(MIGRATE_LOCK, strlen(MIGRATE_LOCK));
	bool released;

	/* Closing the session would release it too; say so when that is all. */
	if (m->locked &&
	    (query_is_one(m, "SELECT RELEASE_LOCK('" MIGRATE_LOCK "')",
		 "SELECT RELEASE_LOCK(?)", &lock, 1, &released) != MK_OK ||
		!released))
		fprintf(stderr,
		    "markets-admin: the lock '%s' is released when the "
		    "connection"
		    " closes\n",
		    MIGRATE_LOCK);
	mk_db_free(m->db);
	mk_arena_free(m->arena);
	free(m->files);
}

int
mk_migrate_command(const struct mk_config *config, int argc, char **argv,
    void (*usage)(FILE *out))
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct migrate m = { .config = config, .dir = MK_MIGRATE_DIR };
	bool status_only = false;
	enum mk_err err;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			m.dir = optarg;
			break;
		case 's':
			status_only = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || m.dir[0] == '\0') {
		fprintf(stderr,
		    "markets-admin: migrate takes only --dir DIR "
		    "and --status\n");
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
		fprintf(stderr, "markets-admin: cannot write to stdout: %s\n",
		    strerror(errno));
		err = MK_EINTERNAL;
	}
	return err == MK_OK ? 0 : 1;
}
