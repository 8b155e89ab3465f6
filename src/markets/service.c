/*
 * The market service (markets layer); see service.h.
 */
#include <stdlib.h>

#include "auth/roles.h"
#include "core/arena.h"
#include "jobs/service.h"
#include "markets/repo.h"
#include "markets/service.h"
#include "search/search.h"

struct mk_market_service {
	struct mk_market_repo *repo; /* none of the three is owned */
	struct mk_search *search;    /* NULL: no search */
	struct mk_job_service *jobs; /* NULL: no queue */
};

struct mk_market_service *
mk_market_service_new(struct mk_market_repo *repo, struct mk_search *search,
    struct mk_job_service *jobs)
{
	struct mk_market_service *svc = calloc(1, sizeof(*svc));

	if (svc == NULL)
		return NULL;
	svc->repo = repo;
	svc->search = search;
	svc->jobs = jobs;
	return svc;
}

void
mk_market_service_free(struct mk_market_service *svc)
{
	free(svc);
}

/* API.md: an embedded user's email is for that user and for admins. */
static void
mark_email(struct mk_user *user, const struct mk_identity *reader)
{
	user->email_visible = reader->user_id > 0 &&
	    (reader->role == MK_ROLE_ADMIN || reader->user_id == user->id);
}

enum mk_err
mk_market_service_get(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *reader, int64_t id, unsigned fields,
    bool include_creator, struct mk_market *out)
{
	unsigned wanted = fields != 0 ? fields : MK_MARKET_ALL_FIELDS;
	unsigned fetch = wanted |
	    (include_creator ? MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID) : 0);
	struct mk_user *creator;
	size_t found = 0;
	enum mk_err rc;

	rc = mk_market_repo_get(svc->repo, arena, id, fetch, out);
	if (rc != MK_OK)
		return rc;
	if (include_creator) {
		creator = mk_arena_alloc(arena, sizeof(*creator));
		if (creator == NULL)
			return MK_ENOMEM;
		rc = mk_market_repo_users(
		    svc->repo, arena, &out->creator_id, 1, creator, &found);
		if (rc != MK_OK)
			return rc;
		if (found == 1)
			mark_email(creator, reader);
		out->creator = found == 1 ? creator : NULL;
	}
	/*
	 * The creator's id was fetched to embed it, not because it was asked
	 * for.
	 */
	out->fields = wanted | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	return MK_OK;
}

enum mk_err
mk_market_service_get_document(struct mk_market_service *svc,
    struct mk_arena *arena, int64_t id, struct mk_cache_incr *ride,
    struct mk_market_doc *out)
{
	return mk_market_repo_get_document(svc->repo, arena, id, ride, out);
}

enum mk_err
mk_market_service_list(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *reader, const struct mk_market_query *q,
    bool include_creator, struct mk_market_page *page)
{
	struct mk_market_query fetch = *q;
	unsigned wanted = q->fields != 0 ? q->fields : MK_MARKET_ALL_FIELDS;
	int64_t ids[MK_MARKET_REPO_MAX_IDS];
	struct mk_user *users;
	size_t found = 0;
	enum mk_err rc;

	fetch.fields = wanted |
	    (include_creator ? MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID) : 0);
	rc = mk_market_repo_list(svc->repo, arena, &fetch, page);
	if (rc != MK_OK)
		return rc;
	if (include_creator && page->n > 0) {
		for (size_t i = 0; i < page->n; i++)
			ids[i] = page->items[i].creator_id;
		users = mk_arena_calloc(arena, page->n, sizeof(*users));
		if (users == NULL)
			return MK_ENOMEM;
		rc = mk_market_repo_users(
		    svc->repo, arena, ids, page->n, users, &found);
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
		page->items[i].fields =
		    wanted | MK_MARKET_FIELD_BIT(MK_MARKET_ID);
	return MK_OK;
}

enum mk_err
mk_market_service_create(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *who, const struct mk_market_input *in,
    struct mk_market *out)
{
	int64_t id = 0;
	enum mk_err rc =
	    mk_market_repo_create(svc->repo, arena, who, in, NULL, &id);

	if (rc != MK_OK)
		return rc;
	return mk_market_repo_get(
	    svc->repo, arena, id, MK_MARKET_ALL_FIELDS, out);
}

enum mk_err
mk_position_service_buy(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *who, int64_t market_id, const char *side,
    const char *amount, struct mk_position *out)
{
	int64_t id = 0;
	enum mk_err rc = mk_market_repo_buy(
	    svc->repo, arena, who, market_id, side, amount, NULL, &id);

	if (rc != MK_OK)
		return rc;
	return mk_market_repo_position(svc->repo, arena, market_id, id, out);
}

enum mk_err
mk_position_service_get(struct mk_market_service *svc, struct mk_arena *arena,
    int64_t market_id, int64_t id, struct mk_position *out)
{
	return mk_market_repo_position(svc->repo, arena, market_id, id, out);
}

enum mk_err
mk_position_service_list(struct mk_market_service *svc, struct mk_arena *arena,
    int64_t market_id, unsigned limit, uint64_t offset, const char *after_key,
    int64_t after_id, struct mk_position_page *page)
{
	return mk_market_repo_positions(svc->repo, arena, market_id, limit,
	    offset, after_key, after_id, page);
}

enum mk_err
mk_market_service_update(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id, const struct mk_market_input *in,
    const char *if_match, struct mk_market *out)
{
	/*
	 * API.md: a user edits only what it created; moderators and admins any.
	 */
	bool may_edit_any =
	    who->role == MK_ROLE_MODERATOR || who->role == MK_ROLE_ADMIN;
	enum mk_err rc = mk_market_repo_update(
	    svc->repo, arena, who, may_edit_any, id, in, if_match);

	if (rc != MK_OK)
		return rc;
	return mk_market_repo_get(
	    svc->repo, arena, id, MK_MARKET_ALL_FIELDS, out);
}

enum mk_err
mk_market_service_index(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id, int64_t *job_id)
{
	char payload[MK_MARKET_INDEX_JOB_KEY_MAX];
	char dedup_key[MK_MARKET_INDEX_JOB_KEY_MAX];
	struct mk_market market;
	enum mk_err rc;

	if (svc->jobs == NULL)
		return MK_EUNAVAIL;
	/*
	 * creator_id never changes: checking before queuing is not racy. A
	 * market deleted between the check and the queuing is a re-index
	 * that came first: its job finds the market gone and leaves the
	 * delete's tombstone as it is.
	 */
	rc = mk_market_repo_get(svc->repo, arena, id,
	    MK_MARKET_FIELD_BIT(MK_MARKET_CREATOR_ID), &market);
	if (rc != MK_OK)
		return rc;
	if (who->role != MK_ROLE_MODERATOR && who->role != MK_ROLE_ADMIN &&
	    market.creator_id != who->user_id)
		return MK_EFORBIDDEN;
	mk_market_index_job(id, payload, dedup_key);
	return mk_job_service_enqueue(
	    svc->jobs, MK_MARKET_INDEX_JOB, payload, dedup_key, job_id);
}

enum mk_err
mk_market_service_remove(struct mk_market_service *svc, struct mk_arena *arena,
    const struct mk_identity *who, int64_t id)
{
	return mk_market_repo_remove(svc->repo, arena, who, id);
}

/* Reserves the key; on REPLAY there is nothing left to do. */
static enum mk_err
idem_begin(struct mk_market_repo *repo, struct mk_arena *arena,
    struct mk_idempotency *idem, bool *replayed)
{
	enum mk_idem_state state;
	enum mk_err rc = mk_market_repo_idem_reserve(repo, arena, idem, &state);

	*replayed = rc == MK_OK && state == MK_IDEM_REPLAY;
	return rc;
}

enum mk_err
mk_market_service_create_once(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who,
    const struct mk_market_input *in, struct mk_idempotency *idem,
    bool *replayed)
{
	int64_t id = 0;
	enum mk_err rc = idem_begin(svc->repo, arena, idem, replayed);

	if (rc != MK_OK || *replayed)
		return rc;
	rc = mk_market_repo_create(svc->repo, arena, who, in, idem, &id);
	if (rc != MK_OK)
		mk_market_repo_idem_release(svc->repo, idem);
	return rc;
}

enum mk_err
mk_position_service_buy_once(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t market_id,
    const char *side, const char *amount, struct mk_idempotency *idem,
    bool *replayed)
{
	int64_t id = 0;
	enum mk_err rc = idem_begin(svc->repo, arena, idem, replayed);

	if (rc != MK_OK || *replayed)
		return rc;
	rc = mk_market_repo_buy(
	    svc->repo, arena, who, market_id, side, amount, idem, &id);
	if (rc != MK_OK)
		mk_market_repo_idem_release(svc->repo, idem);
	return rc;
}

bool
mk_market_service_can_search(const struct mk_market_service *svc)
{
	return svc->search != NULL;
}

enum mk_err
mk_market_service_search_start(struct mk_market_service *svc,
    struct mk_arena *arena, const char *query, size_t len,
    void (*wake)(void *arg), void *wake_arg, struct mk_search_query **out)
{
	return mk_search_query_start(
	    svc->search, arena, query, len, wake, wake_arg, out);
}

void
mk_market_service_search_cancel(
    struct mk_market_service *svc, struct mk_search_query *query)
{
	mk_search_query_cancel(svc->search, query);
}

enum mk_err
mk_market_service_search_finish(struct mk_market_service *svc,
    struct mk_arena *arena, struct mk_search_query *query, size_t limit,
    struct mk_market_doc *out, size_t *n)
{
	struct mk_vector_hit hits[MK_SEARCH_MAX_LIMIT];
	int64_t ids[MK_SEARCH_MAX_LIMIT];
	struct mk_market_doc *docs;
	size_t nhits = 0, found = 0;
	enum mk_err rc;

	*n = 0;
	rc = mk_search_query_finish(svc->search, query, limit, hits, &nhits);
	if (rc != MK_OK || nhits == 0)
		return rc;
	docs = mk_arena_calloc(arena, nhits, sizeof(*docs));
	if (docs == NULL)
		return MK_ENOMEM;
	for (size_t i = 0; i < nhits; i++)
		ids[i] = hits[i].id;
	rc = mk_market_repo_get_documents(
	    svc->repo, arena, ids, nhits, docs, &found);
	if (rc != MK_OK)
		return rc;
	/* Back into rank order; a market deleted meanwhile has no document. */
	for (size_t i = 0; i < nhits; i++) {
		for (size_t d = 0; d < found; d++) {
			if (docs[d].id != hits[i].id)
				continue;
			rc = mk_market_doc_with_score(
			    arena, &docs[d], hits[i].score, &out[*n]);
			if (rc != MK_OK)
				return rc;
			(*n)++;
			break;
		}
	}
	return MK_OK;
}

const char *
mk_market_service_search_embedder(const struct mk_market_service *svc)
{
	return mk_search_embedder(svc->search);
}

size_t
mk_market_service_search_indexed(const struct mk_market_service *svc)
{
	return mk_search_indexed(svc->search);
}
