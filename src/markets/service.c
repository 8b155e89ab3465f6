/*
 * The market service (markets layer); see service.h.
 */
#include "core/arena.h"
#include "markets/repo.h"
#include "markets/service.h"

enum mk_err
mk_market_service_get(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t id, unsigned fields, bool include_creator, struct mk_market *out)
{
	unsigned wanted = fields != 0 ? fields : MK_MARKET_ALL_FIELDS;
	unsigned fetch = wanted | (include_creator ? MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID) : 0);
	struct mk_user *creator;
	size_t found = 0;
	enum mk_err rc;

	rc = mk_market_repo_get(repo, arena, id, fetch, out);
	if (rc != MK_OK)
		return rc;
	if (include_creator) {
		creator = mk_arena_alloc(arena, sizeof(*creator));
		if (creator == NULL)
			return MK_ENOMEM;
		rc = mk_market_repo_users(repo, arena, &out->creator_id, 1, creator, &found);
		if (rc != MK_OK)
			return rc;
		out->creator = found == 1 ? creator : NULL;
	}
	/* The creator's id was fetched to embed it, not because it was asked for. */
	out->fields = wanted | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	return MK_OK;
}
