/*
 * The market resource (markets layer): its fields as the contract names
 * them, and its JSON form. A struct mk_market is what a repository fills:
 * its strings live in the request arena, and `fields` says which members
 * were asked for and filled (sparse fieldsets).
 */
#ifndef MK_MARKET_MODEL_H
#define MK_MARKET_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_buf;

enum mk_market_field {
	MK_MARKET_ID,
	MK_MARKET_NAME,
	MK_MARKET_DESCRIPTION,
	MK_MARKET_STATUS,
	MK_MARKET_VOLUME,
	MK_MARKET_CREATOR_ID,
	MK_MARKET_END_DATE,
	MK_MARKET_CREATED_AT,
	MK_MARKET_UPDATED_AT,
	MK_MARKET_FIELD__MAX
};

#define MK_MARKET_FIELD_BIT(f) (1u << (f))
#define MK_MARKET_ALL_FIELDS ((1u << MK_MARKET_FIELD__MAX) - 1)

/* The largest volume DECIMAL(20,2) holds (sql/002): buys past it are a 409. */
#define MK_VOLUME_MAX "999999999999999999.99"

struct mk_user {
	int64_t id;
	const char *name;
	const char *email;  /* NULL when none */
	bool email_visible; /* the reader is this user or an admin (API.md) */
};

struct mk_market {
	unsigned fields; /* which members below were filled */
	int64_t id;
	const char *name;
	const char *description;
	const char *status; /* active | closed | resolved */
	const char *volume; /* decimal string, 2 places */
	int64_t creator_id;
	const char *end_date;   /* RFC 3339 UTC, NULL for none */
	const char *created_at; /* RFC 3339 UTC */
	const char *updated_at;
	/* embedded when include=creator, else NULL */
	const struct mk_user *creator;
	uint64_t version; /* the row's version (ETag), filled by get */
};

/*
 * Writes the strong ETag of a market version ("\"v12\"") into out (32 bytes).
 */
void mk_market_etag(uint64_t version, char *out);

/*
 * Matches an If-Match / If-None-Match value against etag (a quoted strong
 * tag): "*", or a comma-separated list of entity tags compared strongly (a
 * weak W/ tag never matches). Returns true on a match.
 */
bool mk_etag_matches(const char *header, const char *etag);

/*
 * The same with the weak comparison (RFC 9110 8.8.3.2) that
 * If-None-Match uses: W/"v3" matches "v3".
 */
bool mk_etag_matches_weak(const char *header, const char *etag);

/* mk_etag_matches() against the ETag of a market version. */
bool mk_market_etag_matches(const char *header, uint64_t version);

/* The list orders of the contract; the default is newest first. */
enum mk_market_sort {
	MK_SORT_CREATED_DESC,
	MK_SORT_CREATED_ASC,
	MK_SORT_VOLUME_DESC,
	MK_SORT_VOLUME_ASC,
	MK_SORT_NAME_DESC,
	MK_SORT_NAME_ASC,
	MK_SORT__MAX
};

/* Parses "-created_at", "volume", …; returns false for anything else. */
bool mk_market_sort_parse(const char *text, enum mk_market_sort *out);

const char *mk_market_sort_name(enum mk_market_sort sort);

/*
 * Parses "active", "closed", "resolved"; returns the canonical string or NULL.
 */
const char *mk_market_status_parse(const char *text);

/* What a list asks the repository for. */
struct mk_market_query {
	const char *status; /* NULL: any */
	int64_t creator_id; /* 0: any */
	enum mk_market_sort sort;
	unsigned limit;  /* 1..100 */
	uint64_t offset; /* rows to skip (0 with a cursor) */
	/* keyset: the sort key of the last row seen, or NULL */
	const char *after_key;
	int64_t after_id; /* and its id */
	unsigned fields;  /* MK_MARKET_FIELD_BIT mask */
	bool count;       /* also count every match */
};

/* One page of a list. */
struct mk_market_page {
	struct mk_market *items;
	size_t n;
	bool more; /* rows follow this page */
	/* sort key of the last item, for the next cursor */
	const char *last_key;
	int64_t last_id;
	int64_t total; /* every match, when counted; else -1 */
};

struct mk_position {
	int64_t id;
	int64_t market_id;
	int64_t user_id;
	const char *side;       /* yes | no */
	const char *amount;     /* decimal string, 2 places */
	const char *created_at; /* RFC 3339 UTC */
};

struct mk_position_page {
	struct mk_position *items;
	size_t n;
	bool more;
	const char *last_key; /* created_at with microseconds, for the cursor */
	int64_t last_id;
};

/*
 * Appends a position (a const struct mk_position *) as a JSON object;
 * an mk_json_write_fn.
 */
void mk_position_json(struct mk_buf *out, const void *position);

/* The contract's name of a field ("creator_id"). */
const char *mk_market_field_name(enum mk_market_field field);

/*
 * Parses a `fields` list ("name,volume"): comma-separated contract names,
 * repeats allowed. Returns MK_OK with the bit set in *fields, or
 * MK_EBADREQUEST with *bad pointing at the first unknown name (not
 * NUL-terminated: *bad_len bytes) — an empty list or name is unknown too.
 */
enum mk_err mk_market_fields_parse(
    const char *list, unsigned *fields, const char **bad, size_t *bad_len);

/*
 * Appends a market (a const struct mk_market *) as a JSON object with the
 * filled members only; an mk_json_write_fn.
 */
void mk_market_json(struct mk_buf *out, const void *market);

/* Appends a user as {"id","name"}, with "email" when email_visible. */
void mk_user_json(struct mk_buf *out, const struct mk_user *user);

/*
 * A market's whole JSON representation, rendered once by the repository
 * that read the row and kept as it is by caches: what a GET of the market
 * sends, and its version for the ETag.
 */
struct mk_market_doc {
	int64_t id;
	uint64_t version;
	const char *json; /* a JSON object, in the arena */
	size_t json_len;
	/*
	 * Read from a replica because the primary was down: served, never
	 * cached (it may lag writes whose invalidations already went out).
	 */
	bool stale;
};

struct mk_arena;

/*
 * doc with a "score" member appended (its cosine similarity, six
 * decimals), into *out in arena; doc is left as it is. MK_EINTERNAL
 * when doc is not a JSON object (documents are rendered by a repository:
 * never so), MK_ENOMEM.
 */
enum mk_err mk_market_doc_with_score(struct mk_arena *arena,
    const struct mk_market_doc *doc, float score, struct mk_market_doc *out);

/*
 * The job that (re)indexes a market for search, as every writer queues
 * it: the job reads the market when it runs, so one queued job per
 * market (its dedup key) covers every change made before it runs.
 */
#define MK_MARKET_INDEX_JOB "index_market"
#define MK_MARKET_INDEX_JOB_KEY_MAX 48

/* Writes market id's index job payload and dedup key (each of KEY_MAX). */
void mk_market_index_job(int64_t id, char *payload, char *dedup_key);

#endif
