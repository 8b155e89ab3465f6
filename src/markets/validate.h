/*
 * Validation of market write bodies (markets layer): the rules of API.md
 * for each field, applied to a parsed JSON object. Every failing field is
 * reported (details), not only the first; unknown and read-only fields are
 * failures too (no mass assignment). Values come out canonical: names
 * trimmed, times as DATETIME text, amounts with two decimals.
 */
#ifndef MK_MARKET_VALIDATE_H
#define MK_MARKET_VALIDATE_H

#include <stdbool.h>

#include "core/err.h"

struct json_object;
struct mk_arena;
struct mk_buf;

/* What a body may hold: a new market, a whole replacement, a partial change. */
enum mk_market_write {
	MK_WRITE_CREATE,
	MK_WRITE_REPLACE,
	MK_WRITE_PATCH
};

#define MK_AMOUNT_TEXT_MAX 24

/*
 * A 400 lists at most this many failures; the rest are summed up in a
 * last entry {"field":"body","message":"and N more"}.
 */
#define MK_DETAILS_MAX 50

struct mk_market_input {
	unsigned present; /* MK_MARKET_FIELD_BIT of the fields to write */
	const char *name; /* trimmed, 1-200 characters */
	const char *description; /* 0-5000 characters */
	const char *status;      /* active, closed or resolved */
	const char *end_date;    /* "YYYY-MM-DD HH:MM:SS" (UTC) or NULL */
	bool has_position;
	const char *side;   /* yes | no */
	const char *amount; /* "12.50": > 0, <= 1e12, two decimals */
};

/*
 * Checks a create body. Returns MK_OK with *out filled (strings in the
 * arena), or MK_EINVAL with details appended to the JSON array text in
 * *details ("[{"field":…,"message":…},…]"), or MK_ENOMEM.
 */
enum mk_err mk_market_validate_create(struct mk_arena *arena,
    struct json_object *body, struct mk_market_input *out,
    struct mk_buf *details);

/*
 * As mk_market_validate_create() for kind: REPLACE (PUT) needs name and
 * resets what it omits to the defaults; PATCH writes only what it holds
 * (at least one field). Neither takes initial_position.
 */
enum mk_err mk_market_validate(struct mk_arena *arena, struct json_object *body,
    enum mk_market_write kind, struct mk_market_input *out,
    struct mk_buf *details);

/*
 * Checks a buy body {"side":"yes"|"no","amount":"12.50"}: both required,
 * nothing else. Same results as mk_market_validate_create (side and
 * amount in *out).
 */
enum mk_err mk_position_validate(struct mk_arena *arena,
    struct json_object *body, struct mk_market_input *out,
    struct mk_buf *details);

/*
 * Parses a decimal amount "d+(.d{1,2})?" in (0, 1e12] into canonical text
 * with two decimals (into out, MK_AMOUNT_TEXT_MAX bytes: "1000000000000.00"
 * and its NUL need 17). Returns false otherwise: signs, exponents, more
 * decimals, leading zeros, 0.
 */
bool mk_amount_parse(const char *text, char *out);

#endif
