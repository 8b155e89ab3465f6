/*
 * Strict JSON input (core layer); see json_parse.h. A recursive-descent
 * parser whose recursion is bounded by max_depth. It builds json-c objects
 * as it goes and releases everything it built on any error.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/json_parse.h"

struct parser {
	const unsigned char *p;
	const unsigned char *end;
	unsigned max_depth;
	size_t values_left; /* values (members' included) still allowed */
	const char *why;
	bool oom;
	char *scratch; /* decoded strings; grows as needed */
	size_t scratch_cap;
};

static bool parse_value(
    struct parser *ps, unsigned depth, struct json_object **out);

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	    (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
		*ps->p == '\r'))
		ps->p++;
}

static struct json_object *
fail(struct parser *ps, const char *why)
{
	if (ps->why == NULL)
		ps->why = why;
	return NULL;
}

static bool
scratch_reserve(struct parser *ps, size_t need)
{
	char *grown;
	size_t cap;

	if (need <= ps->scratch_cap)
		return true;
	cap = ps->scratch_cap < 256 ? 256 : ps->scratch_cap;
	while (cap < need)
		cap *= 2;
	grown = realloc(ps->scratch, cap);
	if (grown == NULL) {
		ps->oom = true;
		return false;
	}
	ps->scratch = grown;
	ps->scratch_cap = cap;
	return true;
}

static int
hex4(const unsigned char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static size_t
put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Decodes the string at ps->p (just past its opening quote) into
 * ps->scratch; sets *len. Returns false (with why set) on a bad string.
 */
static bool
parse_string_raw(struct parser *ps, size_t *len)
{
	size_t n = 0;

	for (;;) {
		unsigned char c;

		if (ps->p >= ps->end)
			return fail(ps, "unterminated string"), false;
		/* Room for the longest thing one step appends, and the NUL. */
		if (!scratch_reserve(ps, n + 5))
			return false;
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			ps->scratch[n] = '\0';
			*len = n;
			return true;
		}
		if (c < 0x20)
			return fail(ps, "control character in string"), false;
		if (c == '\\') {
			int cp;

			if (ps->end - ps->p < 2)
				return fail(ps, "unterminated string"), false;
			c = ps->p[1];
			ps->p += 2;
			switch (c) {
			case '"':
				ps->scratch[n++] = '"';
				continue;
			case '\\':
				ps->scratch[n++] = '\\';
				continue;
			case '/':
				ps->scratch[n++] = '/';
				continue;
			case 'b':
				ps->scratch[n++] = '\b';
				continue;
			case 'f':
				ps->scratch[n++] = '\f';
				continue;
			case 'n':
				ps->scratch[n++] = '\n';
				continue;
			case 'r':
				ps->scratch[n++] = '\r';
				continue;
			case 't':
				ps->scratch[n++] = '\t';
				continue;
			case 'u':
				break;
			default:
				return fail(ps, "bad escape in string"), false;
			}
			if (ps->end - ps->p < 4 || (cp = hex4(ps->p)) < 0)
				return fail(ps, "bad \\u escape"), false;
			ps->p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				int lo;

				if (ps->end - ps->p < 6 || ps->p[0] != '\\' ||
				    ps->p[1] != 'u' ||
				    (lo = hex4(ps->p + 2)) < 0xDC00 ||
				    lo > 0xDFFF)
					return fail(ps,
						   "lone surrogate in string"),
					       false;
				ps->p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				    (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return fail(ps, "lone surrogate in string"),
				       false;
			}
			if (cp == 0)
				return fail(ps, "NUL in string"), false;
			n += put_utf8(ps->scratch + n, (unsigned)cp);
			continue;
		}
		if (c < 0x80) {
			ps->scratch[n++] = (char)c;
			ps->p++;
			continue;
		}
		{
			size_t seq = mk_utf8_sequence_len(
			    ps->p, (size_t)(ps->end - ps->p));

			if (seq == 0)
				return fail(ps, "invalid UTF-8 in string"),
				       false;
			memcpy(ps->scratch + n, ps->p, seq);
			n += seq;
			ps->p += seq;
		}
	}
}

static struct json_object *
parse_string(struct parser *ps)
{
	struct json_object *s;
	size_t len;

	ps->p++; /* the quote */
	if (!parse_string_raw(ps, &len))
		return NULL;
	s = json_object_new_string_len(ps->scratch, (int)len);
	if (s == NULL)
		ps->oom = true;
	return s;
}

static struct json_object *
parse_number(struct parser *ps)
{
	const unsigned char *start = ps->p;
	bool integer = true;
	struct json_object *num;
	char text[64];
	size_t len;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
		return fail(ps, "bad number");
	if (*ps->p == '0') {
		ps->p++;
		if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			return fail(ps, "leading zero in number");
	} else {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		integer = false;
		ps->p++;
		if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
			return fail(ps, "bad fraction in number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integer = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
			return fail(ps, "bad exponent in number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	len = (size_t)(ps->p - start);
	if (len >= sizeof(text))
		return fail(ps, "number too long");
	memcpy(text, start, len);
	text[len] = '\0';
	if (integer) {
		char *endp;
		long long v;

		errno = 0;
		v = strtoll(text, &endp, 10);
		if (errno == 0 && *endp == '\0') {
			num = json_object_new_int64(v);
			if (num == NULL)
				ps->oom = true;
			return num;
		}
		/*
		 * Out of int64: falls through to a double that keeps the text.
		 */
	}
	num = json_object_new_double_s(strtod(text, NULL), text);
	if (num == NULL)
		ps->oom = true;
	return num;
}

static bool
literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static struct json_object *
parse_array(struct parser *ps, unsigned depth)
{
	struct json_object *array = json_object_new_array();

	if (array == NULL) {
		ps->oom = true;
		return NULL;
	}
	ps->p++; /* [ */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return array;
	}
	for (;;) {
		struct json_object *item;

		if (!parse_value(ps, depth + 1, &item))
			goto bad;
		if (json_object_array_add(array, item) != 0) {
			json_object_put(item);
			ps->oom = true;
			goto bad;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return array;
		}
		fail(ps, "expected ',' or ']' in array");
		goto bad;
	}
bad:
	json_object_put(array);
	return NULL;
}

static struct json_object *
parse_object(struct parser *ps, unsigned depth)
{
	struct json_object *object = json_object_new_object();

	if (object == NULL) {
		ps->oom = true;
		return NULL;
	}
	ps->p++; /* { */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return object;
	}
	for (;;) {
		struct json_object *value;
		size_t key_len;
		char *key;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail(ps, "expected a string key in object");
			goto bad;
		}
		ps->p++;
		if (!parse_string_raw(ps, &key_len))
			goto bad;
		/*
		 * Keys are NUL-free here, so json-c's C-string keys are exact.
		 */
		if (json_object_object_get_ex(object, ps->scratch, NULL)) {
			fail(ps, "duplicate key in object");
			goto bad;
		}
		key = strdup(ps->scratch);
		if (key == NULL) {
			ps->oom = true;
			goto bad;
		}
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(key);
			fail(ps, "expected ':' in object");
			goto bad;
		}
		ps->p++;
		if (!parse_value(ps, depth + 1, &value)) {
			free(key);
			goto bad;
		}
		if (json_object_object_add(object, key, value) != 0) {
			free(key);
			json_object_put(value);
			ps->oom = true;
			goto bad;
		}
		free(key);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return object;
		}
		fail(ps, "expected ',' or '}' in object");
		goto bad;
	}
bad:
	json_object_put(object);
	return NULL;
}

/*
 * Parses one value into *out. JSON null is json-c's NULL pointer, so the
 * outcome is the return value: true with *out set (NULL for null), or
 * false with why (or oom) set.
 */
static bool
parse_value(struct parser *ps, unsigned depth, struct json_object **out)
{
	*out = NULL;
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of input"), false;
	/*
	 * Counted before anything is built: json-c spends hundreds of bytes
	 * on each object, so "[{},{},…]" in a 1 MiB body would cost a worker
	 * hundreds of megabytes if only the body's size were bounded.
	 */
	if (ps->values_left == 0)
		return fail(ps, MK_JSON_TOO_MANY_VALUES), false;
	ps->values_left--;
	/*
	 * Depth counts containers: 32 nested objects with a value inside pass.
	 */
	if ((*ps->p == '{' || *ps->p == '[') && depth > ps->max_depth)
		return fail(ps, "nested too deep"), false;
	switch (*ps->p) {
	case '{':
		*out = parse_object(ps, depth);
		return *out != NULL;
	case '[':
		*out = parse_array(ps, depth);
		return *out != NULL;
	case '"':
		*out = parse_string(ps);
		return *out != NULL;
	case 't':
		if (literal(ps, "true"))
			return (*out = json_object_new_boolean(1)) != NULL ||
			    (ps->oom = true, false);
		break;
	case 'f':
		if (literal(ps, "false"))
			return (*out = json_object_new_boolean(0)) != NULL ||
			    (ps->oom = true, false);
		break;
	case 'n':
		if (literal(ps, "null"))
			return true;
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
			*out = parse_number(ps);
			return *out != NULL;
		}
	}
	return fail(ps, "unexpected character"), false;
}

enum mk_err
mk_json_parse(const char *text, size_t len, unsigned max_depth,
    size_t max_values, struct json_object **out, const char **why)
{
	struct parser ps = {
		.p = (const unsigned char *)text,
		.end = (const unsigned char *)text + len,
		.max_depth = max_depth,
		.values_left = max_values,
	};
	struct json_object *root = NULL;
	bool ok;

	*out = NULL;
	ok = parse_value(&ps, 1, &root);
	if (ok) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			ok = false;
			fail(&ps, "trailing characters after the value");
		}
	}
	free(ps.scratch);
	if (why != NULL)
		*why = ps.oom ? "out of memory" : ps.why;
	if (!ok || ps.oom) {
		json_object_put(root);
		return ps.oom ? MK_ENOMEM : MK_EBADJSON;
	}
	*out = root;
	return MK_OK;
}

static void
put_tree(void *tree)
{
	json_object_put(tree);
}

enum mk_err
mk_json_parse_in(struct mk_arena *arena, const char *text, size_t len,
    unsigned max_depth, size_t max_values, struct json_object **out,
    const char **why)
{
	enum mk_err rc =
	    mk_json_parse(text, len, max_depth, max_values, out, why);

	if (rc != MK_OK || *out == NULL)
		return rc;
	if (mk_arena_add_cleanup(arena, put_tree, *out) != 0) {
		json_object_put(*out);
		*out = NULL;
		return MK_ENOMEM;
	}
	return MK_OK;
}
