/*
 * MariaDB access (store layer): one connection per worker through MariaDB
 * Connector/C, over a unix socket or TCP. The connection is made lazily
 * and made again after it drops; callers see enum mk_err, never a MYSQL
 * handle. Nothing above store/ speaks SQL.
 *
 * A struct mk_db is worker-lifetime: made after fork (a connection must
 * never be shared by two processes), not thread-safe.
 */
#ifndef MK_DB_H
#define MK_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct mk_config;
struct mk_db;

/* True when the configuration names a database (db_socket or db_host). */
bool mk_db_configured(const struct mk_config *config);

/*
 * Makes the handle from the db_* settings, without connecting. Returns
 * NULL with a reason in err when out of memory. Free with mk_db_free().
 */
struct mk_db *mk_db_new(const struct mk_config *config, char *err,
    size_t errlen);

void mk_db_free(struct mk_db *db);

/*
 * Checks that the database answers, connecting (again) when needed.
 * Returns MK_OK or MK_EUNAVAIL (the cause is logged once per outage).
 */
enum mk_err mk_db_ping(struct mk_db *db);

#endif
