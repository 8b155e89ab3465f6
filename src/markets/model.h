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

struct mk_user {
	int64_t id;
	const char *name;
	const char *email; /* NULL when none */
};

struct mk_market {
	unsigned fields;         /* which members below were filled */
	int64_t id;
	const char *name;
	const char *description;
	const char *status;      /* active | closed | resolved */
	const char *volume;      /* decimal string, 2 places */
	int64_t creator_id;
	const char *end_date;    /* RFC 3339 UTC, NULL for none */
	const char *created_at;  /* RFC 3339 UTC */
	const char *updated_at;
	const struct mk_user *creator; /* embedded when include=creator, else NULL */
};

/* The contract's name of a field ("creator_id"). */
const char *mk_market_field_name(enum mk_market_field field);

/*
 * Parses a `fields` list ("name,volume"): comma-separated contract names,
 * repeats allowed. Returns MK_OK with the bit set in *fields, or
 * MK_EBADREQUEST with *bad pointing at the first unknown name (not
 * NUL-terminated: *bad_len bytes) — an empty list or name is unknown too.
 */
enum mk_err mk_market_fields_parse(const char *list, unsigned *fields,
    const char **bad, size_t *bad_len);

/* Appends the market as a JSON object with the filled members only. */
void mk_market_json(struct mk_buf *out, const struct mk_market *market);

/* Appends a user as {"id","name","email"}. */
void mk_user_json(struct mk_buf *out, const struct mk_user *user);

#endif
