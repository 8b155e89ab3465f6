/*
 * The market repository over MariaDB (markets layer); see repo.h. This
 * file assembles it: the ops table, over the three files that implement
 * the ops (repo_mysql_markets.c, repo_mysql_positions.c,
 * repo_mysql_idem.c, which share repo_mysql_internal.h), and the
 * constructor. The repository owns nothing but itself: db is the
 * wiring's.
 */
#include <stdlib.h>

#include "markets/repo_mysql_internal.h"
#include "store/replicas.h"

static void
repo_destroy(struct mk_market_repo *base)
{
	free(base);
}

static const struct mk_market_repo_ops mysql_ops = {
	.get_document = mk_repo_mysql_get_document,
	.get_documents = mk_repo_mysql_get_documents,
	.get = mk_repo_mysql_get,
	.list = mk_repo_mysql_list,
	.users = mk_repo_mysql_users,
	.create = mk_repo_mysql_create,
	.buy = mk_repo_mysql_buy,
	.position = mk_repo_mysql_position,
	.positions = mk_repo_mysql_positions,
	.update = mk_repo_mysql_update,
	.remove = mk_repo_mysql_remove,
	.idem_reserve = mk_repo_mysql_idem_reserve,
	.idem_release = mk_repo_mysql_idem_release,
	.idem_purge = mk_repo_mysql_idem_purge,
	.destroy = repo_destroy,
};

struct mk_market_repo *
mk_market_repo_mysql_new(struct mk_db *db, unsigned job_max_attempts)
{
	struct repo_mysql *repo = calloc(1, sizeof(*repo));

	if (repo == NULL)
		return NULL;
	repo->base.ops = &mysql_ops;
	repo->db = repo->reads = repo->documents = db;
	repo->job_max_attempts = job_max_attempts;
	return &repo->base;
}

void
mk_market_repo_mysql_route_reads(struct mk_market_repo *base,
    struct mk_replicas *replicas, bool documents_too)
{
	struct repo_mysql *repo = (struct repo_mysql *)base;

	repo->reads = mk_replicas_reads(replicas);
	repo->documents =
	    documents_too ? repo->reads : mk_replicas_documents(replicas);
	repo->replicas = documents_too ? NULL : replicas;
}
