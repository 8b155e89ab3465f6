/*
 * markets-admin migrate (admin layer): applies the DIR/NNN_name.sql
 * files (DIR defaults to MK_MIGRATE_DIR, where `make install` put them)
 * that schema_version does not record yet, in order, each once, under a
 * server-wide lock so that two runs never apply one file twice; --status
 * lists every file as applied or pending and changes nothing. It connects
 * as the server does (store/db), with the db_* settings, usually
 * overridden to an account with DDL rights (e.g. MARKETS_DB_USER=root).
 */
#ifndef MK_ADMIN_MIGRATE_H
#define MK_ADMIN_MIGRATE_H

#include <stdio.h>

struct mk_config;

/*
 * The migrations `make install` (and the Debian package) put under the
 * configured datadir; the Makefile defines MK_PKGDATADIR from
 * $(pkgdatadir), so `make prefix=...` moves it too. --dir overrides it:
 * the dev stack and the tests name the source tree's sql/.
 */
#define MK_MIGRATE_DIR MK_PKGDATADIR "/sql"

/*
 * Runs `migrate [--dir DIR] [--status]`: argv[0] is "migrate". usage
 * prints the command's usage on a bad option. Progress goes to stdout,
 * reasons to stderr. Returns the exit status: 0 success, 1 failure, 2
 * usage error.
 */
int mk_migrate_command(const struct mk_config *config, int argc, char **argv,
    void (*usage)(FILE *out));

#endif
