/*
 * JSON output helpers (core layer). Responses and log lines are written
 * straight into a buffer rather than built as json-c trees: it is the hot
 * path and the shapes are fixed. json-c is for parsing input.
 *
 * A struct that goes out as a JSON object describes its members once, in
 * a table of struct mk_json_member (MK_JSON_MEMBER() per member), and
 * mk_json_object() writes it: the commas, keys and escaping live here,
 * not in a writer per type.
 */
#ifndef MK_JSON_H
#define MK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_buf;

/*
 * Appends item (what it points to is the writer's to know) as one JSON
 * value: the form lists and responses take their items' writers in.
 */
typedef void mk_json_write_fn(struct mk_buf *out, const void *item);

/*
 * Appends s (len bytes) as a quoted JSON string. Control characters, '"'
 * and '\\' are escaped, as are U+2028/U+2029; bytes that are not valid
 * UTF-8 are replaced by U+FFFD so the output is always valid JSON.
 */
void mk_json_string(struct mk_buf *buf, const char *s, size_t len);

/* As mk_json_string() for a NUL-terminated string; NULL writes null. */
void mk_json_cstr(struct mk_buf *buf, const char *s);

/*
 * Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when
 * the bytes there are not one (overlong, surrogate, > U+10FFFF, cut).
 */
size_t mk_utf8_sequence_len(const unsigned char *s, size_t avail);

/* How a struct member is written. */
enum mk_json_kind {
	MK_JSON_INT,    /* int64_t */
	MK_JSON_UINT,   /* unsigned */
	MK_JSON_STRING, /* const char *, escaped; NULL writes null */
	MK_JSON_RAW,    /* const char * holding JSON text, as is; NULL: null */
};

/* One member of a JSON object: its key, and where its struct keeps it. */
struct mk_json_member {
	const char *name;
	enum mk_json_kind kind;
	size_t offset;
};

/*
 * The member of struct type named field, under the same key; its kind
 * follows the field's type (another type does not compile).
 */
#define MK_JSON_MEMBER(type, field)                                            \
	{                                                                      \
#field,                                                        \
	    _Generic(((type *)0)->field, int64_t: MK_JSON_INT,           \
		unsigned: MK_JSON_UINT, const char *: MK_JSON_STRING),   \
	    offsetof(type, field)               \
	}

/* As MK_JSON_MEMBER() for a const char * field that holds JSON text. */
#define MK_JSON_MEMBER_RAW(type, field)                                        \
	{                                                                      \
#field, _Generic(((type *)0)->field, const char *: MK_JSON_RAW), \
	    offsetof(type, field)             \
	}

/*
 * Appends the key of an object's next member: "name": after a comma,
 * or without one when *first, which it then clears.
 */
void mk_json_key(struct mk_buf *out, bool *first, const char *name);

/*
 * Appends, as with mk_json_key(), the members of obj (the struct the
 * table describes) that members[0..n) name and mask selects (bit i for
 * members[i]; n is at most 32), in table order.
 */
void mk_json_members(struct mk_buf *out, bool *first, const void *obj,
    const struct mk_json_member *members, size_t n, uint32_t mask);

/* Appends obj as a JSON object of members[0..n), in that order. */
void mk_json_object(struct mk_buf *out, const void *obj,
    const struct mk_json_member *members, size_t n);

/*
 * Appends n items as a JSON array: items is an array of n elements of
 * size bytes, each written by write.
 */
void mk_json_array(struct mk_buf *out, const void *items, size_t n, size_t size,
    mk_json_write_fn *write);

#endif
