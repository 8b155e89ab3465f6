/*
 * Strict JSON input (core layer). RFC 8259 with the contract's extra
 * rules, checked while parsing rather than after: duplicate object keys,
 * a NUL in any string (\u0000 included), invalid UTF-8, lone surrogates
 * and nesting deeper than max_depth are all errors — json-c's own tokener
 * would silently keep the last duplicate and let NULs through. The result
 * is an ordinary json-c tree.
 *
 * Numbers: an integer literal that fits int64 becomes json_type_int;
 * anything else (fraction, exponent, out of range) becomes
 * json_type_double carrying its original text, so callers that need an
 * exact integer (JWT times) or an exact decimal (amounts) check the type
 * and never see a saturated value. A number literal of 64 characters or
 * more is refused (RFC 8259 §9 lets a parser limit numbers): no field of
 * the contract needs one, and it keeps the parser's memory fixed.
 *
 * Depth counts containers: with max_depth 32, thirty-two nested objects
 * (holding scalars) pass and a thirty-third is refused.
 *
 * Values are counted too (every scalar, array and object, members' values
 * included) and refused past max_values before json-c allocates them: the
 * size of a text bounds its bytes, not the memory its tree takes.
 */
#ifndef MK_JSON_PARSE_H
#define MK_JSON_PARSE_H

#include <stddef.h>

#include "core/err.h"

struct json_object;
struct mk_arena;

/* Nesting limit of request bodies (API.md: deeper than 32 is a 400). */
#define MK_JSON_MAX_DEPTH 32

/*
 * Values in a request body. A market with its initial position needs
 * eight; the room above that lets a client's mistakes (unknown fields)
 * still be listed one by one in a 400.
 */
#define MK_JSON_BODY_MAX_VALUES 256

/* The reason (*why) of a document refused for its number of values. */
#define MK_JSON_TOO_MANY_VALUES "too many values in the document"

/*
 * Parses len bytes of text as one JSON value of at most max_values values
 * nested at most max_depth deep. Returns MK_OK with *out a
 * new json-c tree (release with json_object_put(); NULL when the value is
 * JSON null, which is how json-c spells null), MK_EBADJSON with
 * *why (may be NULL; a static string) saying what was wrong, or MK_ENOMEM.
 */
enum mk_err mk_json_parse(const char *text, size_t len, unsigned max_depth,
    size_t max_values, struct json_object **out, const char **why);

/*
 * As mk_json_parse(), with the tree's release registered on arena: the
 * tree lives until the arena is reset.
 */
enum mk_err mk_json_parse_in(struct mk_arena *arena, const char *text,
    size_t len, unsigned max_depth, size_t max_values, struct json_object **out,
    const char **why);

#endif
