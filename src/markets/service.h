/*
 * The market service (markets layer): business rules between handlers and
 * what lies below them — the market repository stack, the search index
 * and the job service. Reads assemble what a response embeds with a fixed
 * number of repository calls, whatever the page size (no N+1). A struct
 * mk_market_service is worker-lifetime and owns none of its parts (the
 * wiring does); results live in the arena passed in.
 */
#ifndef MK_MARKET_SERVICE_H
#define MK_MARKET_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "markets/model.h"
#include "search/search.h"

/* Most results one search may ask for. */
#define MK_MARKET_SEARCH_MAX_LIMIT MK_SEARCH_MAX_LIMIT

struct mk_arena;
struct mk_cache_incr;
struct mk_identity;
struct mk_job_service;
struct mk_market_repo;
struct mk_market_service;

/*
 * The service over repo; search and jobs may be NULL (no search, no
 * queue: those calls then answer MK_EUNAVAIL). None is owned. NULL when
 * out of memory.
 */
struct mk_market_service *mk_market_service_new(struct mk_market_repo *repo,
    struct mk_search *search, struct mk_job_service *jobs);

void mk_market_service_free(struct mk_market_service *svc);

/*
 * One market with the fields asked for (0: all) and, with
 * include_creator, its creator embedded — two repository calls at most.
 * The creator's email is marked visible only to that user and to admins
 * (reader; user_id 0 when anonymous). MK_ENOTFOUND for an unknown id.
 */
enum mk_err mk_market_service_get(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *reader, int64_t id,
    unsigned fields, bool include_creator, struct mk_market *out);

/*
 * One market's whole representation, as rendered once by the repository
 * stack (from memcached when the decorator has it). ride (may be NULL):
 * the request's rate-limit count in flight, which the memcached lookup
 * collects on its way (see mk_market_repo_ops.get_document). MK_ENOTFOUND
 * for an unknown id.
 */
enum mk_err mk_market_service_get_document(struct mk_market_service *svc,
    struct mk_arena *arena, int64_t id, struct mk_cache_incr *ride,
    struct mk_market_doc *out);

/*
 * One page of markets for q; with include_creator, the page's creators are
 * embedded with one more repository call for the whole page (never one
 * per market), emails as for mk_market_service_get(). q->fields 0 means
 * all.
 */
enum mk_err mk_market_service_list(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *reader,
    const struct mk_market_query *q, bool include_creator,
    struct mk_market_page *page);
struct mk_market_input;

/*
 * Creates a market for the caller (creator_id is who, never the body) and
 * reads it back whole into *out for the response.
 */
enum mk_err mk_market_service_create(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who,
    const struct mk_market_input *in, struct mk_market *out);

struct mk_idempotency;

/*
 * An idempotent create: the response is rendered and stored with the
 * effect (idem's out fields), or replayed from an earlier run (*replayed).
 * MK_EIDEMPOTENCY for the key reused with another body, MK_ECONFLICT while
 * the first request runs. A failed effect releases the key.
 */
enum mk_err mk_market_service_create_once(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who,
    const struct mk_market_input *in, struct mk_idempotency *idem,
    bool *replayed);

/* The same for a buy. */
enum mk_err mk_position_service_buy_once(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t market_id,
    const char *side, const char *amount, struct mk_idempotency *idem,
    bool *replayed);

/*
 * Buys a position for the caller and reads it back. MK_ENOTFOUND for an
 * unknown market, MK_ECONFLICT for one that is not active.
 */
enum mk_err mk_position_service_buy(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t market_id,
    const char *side, const char *amount, struct mk_position *out);

/* One position of a market. */
enum mk_err mk_position_service_get(struct mk_market_service *svc,
    struct mk_arena *arena, int64_t market_id, int64_t id,
    struct mk_position *out);

/* A page of a market's positions (see the repository's positions op). */
enum mk_err mk_position_service_list(struct mk_market_service *svc,
    struct mk_arena *arena, int64_t market_id, unsigned limit, uint64_t offset,
    const char *after_key, int64_t after_id, struct mk_position_page *page);

/*
 * Changes market id (in->present fields) for who: its creator may, and
 * moderators and admins may edit any (MK_EFORBIDDEN otherwise); if_match
 * (NULL: none) must match its current version (MK_EPRECONDITION). Reads
 * the result back into *out.
 */
enum mk_err mk_market_service_update(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t id,
    const struct mk_market_input *in, const char *if_match,
    struct mk_market *out);

/*
 * Queues a re-index of market id for search and sets *job_id: a job
 * already queued for it is reused. Only its creator, a moderator or an
 * admin may ask (MK_EFORBIDDEN otherwise); MK_ENOTFOUND for an unknown id.
 */
enum mk_err mk_market_service_index(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t id,
    int64_t *job_id);

/*
 * Deletes market id with its positions (the route demands the delete
 * permission).
 */
enum mk_err mk_market_service_remove(struct mk_market_service *svc,
    struct mk_arena *arena, const struct mk_identity *who, int64_t id);

/* Whether searches can be answered (a search index is wired). */
bool mk_market_service_can_search(const struct mk_market_service *svc);

/*
 * A semantic search in two halves (search/search.h): start embeds the
 * query (len bytes of UTF-8) — MK_OK: call finish now; MK_EPENDING:
 * wake(wake_arg) is called from the worker's loop once the vector is
 * ready, then call finish, or cancel to give up. Finish writes the
 * documents of the limit (1..MK_MARKET_SEARCH_MAX_LIMIT) most similar markets,
 * best first, each with its "score" member, into out[0..*n), in arena.
 */
enum mk_err mk_market_service_search_start(struct mk_market_service *svc,
    struct mk_arena *arena, const char *query, size_t len,
    void (*wake)(void *arg), void *wake_arg, struct mk_search_query **out);

enum mk_err mk_market_service_search_finish(struct mk_market_service *svc,
    struct mk_arena *arena, struct mk_search_query *query, size_t limit,
    struct mk_market_doc *out, size_t *n);

void mk_market_service_search_cancel(
    struct mk_market_service *svc, struct mk_search_query *query);

/* The embedder's name and the index's size, for a search's meta. */
const char *mk_market_service_search_embedder(
    const struct mk_market_service *svc);
size_t mk_market_service_search_indexed(const struct mk_market_service *svc);

#endif
