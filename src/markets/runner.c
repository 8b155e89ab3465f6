/*
 * The markets' job runner (markets layer); see runner.h. One struct
 * market_runner owns the parts for the length of the loop; the handlers
 * reach the repository and the embedder through it.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/json_parse.h"
#include "core/log.h"
#include "jobs/runner.h"
#include "markets/indexer.h"
#include "markets/repo.h"
#include "markets/runner.h"
#include "search/embedder.h"
#include "store/db.h"

struct market_runner {
	struct mk_db *conn;          /* owns the connection */
	struct mk_db *db;            /* conn, counted as background work */
	struct mk_market_repo *repo; /* MariaDB's, over db */
	struct mk_embedder *embedder;
};

/* The market id of an index_market payload; false when it has none. */
static bool
payload_market_id(struct mk_arena *arena, const char *payload, int64_t *id)
{
	struct json_object *root, *value;
	const char *why = NULL;

	if (payload == NULL ||
	    mk_json_parse_in(
		arena, payload, strlen(payload), 4, 64, &root, &why) != MK_OK ||
	    !json_object_object_get_ex(root, "market_id", &value) ||
	    !json_object_is_type(value, json_type_int))
		return false;
	*id = json_object_get_int64(value);
	return *id > 0;
}

/* index_market: reads and embeds the market (markets/indexer.h). */
static const char *
index_prepare(
    void *ctx, struct mk_arena *arena, const char *payload, void **effect)
{
	struct market_runner *r = ctx;
	struct mk_index_work *work;
	int64_t market_id = 0;
	enum mk_err rc;

	if (!payload_market_id(arena, payload, &market_id))
		return "payload has no market_id";
	if ((work = mk_arena_alloc(arena, sizeof(*work))) == NULL)
		return "out of memory";
	rc = mk_indexer_prepare(r->repo, arena, r->embedder, market_id, work);
	if (rc == MK_EUNAVAIL)
		return "the embedder or the database did not answer";
	if (rc != MK_OK)
		return "the embedder's answer was not a vector";
	*effect = work;
	return NULL;
}

/* index_market: stores the vector, or a tombstone. */
static enum mk_err
index_store(void *ctx, struct mk_db *db, struct mk_arena *arena, void *effect)
{
	(void)ctx;
	return mk_indexer_store(db, arena, effect);
}

int
mk_market_runner_run(const struct mk_config *config, bool (*carry_on)(void),
    bool drain, const char *lock)
{
	struct market_runner r = { 0 };
	const struct mk_job_handler handlers[] = {
		{ "index_market", index_prepare, index_store, &r },
	};
	struct mk_job_runner loop = {
		.config = config,
		.handlers = handlers,
		.nhandlers = sizeof(handlers) / sizeof(handlers[0]),
	};
	char err[512] = "out of memory", about[96];
	int status = 1;

	if (!mk_db_configured(config)) {
		mk_log(MK_LOG_ERROR, "job runner: no database configured");
		return 1;
	}
	r.conn = mk_db_new(config, err, sizeof(err));
	r.db =
	    r.conn != NULL ? mk_db_background(r.conn, err, sizeof(err)) : NULL;
	r.repo = r.db != NULL
	    ? mk_market_repo_mysql_new(r.db, (unsigned)config->job_max_attempts)
	    : NULL;
	r.embedder = mk_embedder_from_config(config, err, sizeof(err));
	if (r.db == NULL || r.repo == NULL || r.embedder == NULL) {
		mk_log(MK_LOG_ERROR, "job runner start-up failed: %s", err);
		goto out;
	}
	(void)snprintf(about, sizeof(about), "embedder %s, %u dimensions",
	    r.embedder->name, r.embedder->dim);
	loop.db = r.db;
	loop.about = about;
	loop.lock = lock;
	status = mk_job_runner_run(&loop, carry_on, drain);
out:
	mk_embedder_free(r.embedder);
	mk_market_repo_free(r.repo);
	mk_db_free(r.db);
	mk_db_free(r.conn);
	return status;
}
