/*
 * The market service (markets layer); see service.h.
 */
#include "auth/roles.h"
#include "core/arena.h"
#include "markets/repo.h"
#include "markets/service.h"

/* API.md: an embedded user's email is for that user and for admins. */
static void
mark_email(struct mk_user *user, const struct mk_identity *reader)
{
	user->email_visible = reader->user_id > 0 &&
	    (reader->role == MK_ROLE_ADMIN || reader->user_id == user->id);
}

enum mk_err
mk_market_service_get(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *reader, int64_t id, unsigned fields,
    bool include_creator, struct mk_market *out)
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
		if (found == 1)
			mark_email(creator, reader);
		out->creator = found == 1 ? creator : NULL;
	}
	/* The creator's id was fetched to embed it, not because it was asked for. */
	out->fields = wanted | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	return MK_OK;
}

enum mk_err
mk_market_service_get_document(struct mk_market_repo *repo,
    struct mk_arena *arena, int64_t id, struct mk_market_doc *out)
{
	return mk_market_repo_get_document(repo, arena, id, out);
}

enum mk_err
mk_market_service_list(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *reader, const struct mk_market_query *q,
    bool include_creator, struct mk_market_page *page)
{
	struct mk_market_query fetch = *q;
	unsigned wanted = q->fields != 0 ? q->fields : MK_MARKET_ALL_FIELDS;
	int64_t ids[MK_MARKET_REPO_MAX_IDS];
	struct mk_user *users;
	size_t found = 0;
	enum mk_err rc;

	fetch.fields = wanted | (include_creator ? MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID) : 0);
	rc = mk_market_repo_list(repo, arena, &fetch, page);
	if (rc != MK_OK)
		return rc;
	if (include_creator && page->n > 0) {
		for (size_t i = 0; i < page->n; i++)
			ids[i] = page->items[i].creator_id;
		users = mk_arena_calloc(arena, page->n, sizeof(*users));
		if (users == NULL)
			return MK_ENOMEM;
		rc = mk_market_repo_users(repo, arena, ids, page->n, users, &found);
		if (rc != MK_OK)
			return rc;
		for (size_t u = 0; u < found; u++)
			mark_email(&users[u], reader);
		for (size_t i = 0; i < page->n; i++) {
			for (size_t u = 0; u < found; u++) {
				if (users[u].id == page->items[i].creator_id)
					page->items[i].creator = &users[u];
			}
		}
	}
	for (size_t i = 0; i < page->n; i++)
		page->items[i].fields = wanted | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	return MK_OK;
}

enum mk_err
mk_market_service_create(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_market *out)
{
	int64_t id = 0;
	enum mk_err rc = mk_market_repo_create(repo, arena, who, in, NULL, &id);

	if (rc != MK_OK)
		return rc;
	return mk_market_repo_get(repo, arena, id, MK_MARKET_ALL_FIELDS, out);
}

enum mk_err
mk_position_service_buy(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_position *out)
{
	int64_t id = 0;
	enum mk_err rc = repo->ops->buy(repo, arena, who, market_id, side, amount, NULL, &id);

	if (rc != MK_OK)
		return rc;
	return repo->ops->position(repo, arena, market_id, id, out);
}

enum mk_err
mk_position_service_get(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	return repo->ops->position(repo, arena, market_id, id, out);
}

enum mk_err
mk_position_service_list(struct mk_market_repo *repo, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	return repo->ops->positions(repo, arena, market_id, limit, offset, after_key, after_id, page);
}

enum mk_err
mk_market_service_update(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id, const struct mk_market_input *in,
    const char *if_match, struct mk_market *out)
{
	/* API.md: a user edits only what it created; moderators and admins any. */
	bool may_edit_any = who->role == MK_ROLE_MODERATOR || who->role == MK_ROLE_ADMIN;
	enum mk_err rc = repo->ops->update(repo, arena, who, may_edit_any, id, in, if_match);

	if (rc != MK_OK)
		return rc;
	return mk_market_repo_get(repo, arena, id, MK_MARKET_ALL_FIELDS, out);
}

enum mk_err
mk_market_service_index(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id, int64_t *job_id)
{
	struct mk_market market;
	enum mk_err rc;

	if (who->role != MK_ROLE_MODERATOR && who->role != MK_ROLE_ADMIN) {
		/* creator_id never changes: checking before queuing is not racy. */
		rc = mk_market_repo_get(repo, arena, id, MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID), &market);
		if (rc != MK_OK)
			return rc;
		if (market.creator_id != who->user_id)
			return MK_EFORBIDDEN;
	}
	return repo->ops->index(repo, arena, id, job_id);
}

enum mk_err
mk_market_service_remove(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	return repo->ops->remove(repo, arena, who, id);
}

/* Reserves the key; on REPLAY there is nothing left to do. */
static enum mk_err
idem_begin(struct mk_market_repo *repo, struct mk_arena *arena,
    struct mk_idempotency *idem, bool *replayed)
{
	enum mk_idem_state state;
	enum mk_err rc = repo->ops->idem_reserve(repo, arena, idem, &state);

	*replayed = rc == MK_OK && state == MK_IDEM_REPLAY;
	return rc;
}

enum mk_err
mk_market_service_create_once(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_idempotency *idem, bool *replayed)
{
	int64_t id = 0;
	enum mk_err rc = idem_begin(repo, arena, idem, replayed);

	if (rc != MK_OK || *replayed)
		return rc;
	rc = mk_market_repo_create(repo, arena, who, in, idem, &id);
	if (rc != MK_OK)
		repo->ops->idem_release(repo, idem);
	return rc;
}

enum mk_err
mk_position_service_buy_once(struct mk_market_repo *repo, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_idempotency *idem, bool *replayed)
{
	int64_t id = 0;
	enum mk_err rc = idem_begin(repo, arena, idem, replayed);

	if (rc != MK_OK || *replayed)
		return rc;
	rc = repo->ops->buy(repo, arena, who, market_id, side, amount, idem, &id);
	if (rc != MK_OK)
		repo->ops->idem_release(repo, idem);
	return rc;
}
