/*
 * Validation of market write bodies (markets layer); see validate.h. It
 * calls core/ and markets/model only. Each kind of body is a table of
 * the members it may hold, each with its validator (market_fields,
 * position_fields), in the manner of kcgi's struct kvalid. A market's
 * members are checked in the order the body gives them, so its details
 * follow that order; a position's two members, both required, are
 * checked after its walk, side then amount.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "markets/model.h"
#include "markets/validate.h"

/*
 * The failures of one body as they are found. Past MK_DETAILS_MAX they are
 * counted, not written: a body of hundreds of unknown members gets a 400
 * of bounded size that ends with "and N more".
 */
struct detail_list {
	struct mk_buf *json; /* the caller's: "[{…},…]" once closed */
	size_t count;        /* failures found, written or not */
};

static void
detail(struct detail_list *list, const char *field, const char *message)
{
	struct mk_buf *out = list->json;

	if (++list->count > MK_DETAILS_MAX)
		return;
	/* The first item opens the array. */
	mk_buf_putc(out, list->count == 1 ? '[' : ',');
	mk_buf_puts(out, "{\"field\":");
	mk_json_cstr(out, field);
	mk_buf_puts(out, ",\"message\":");
	mk_json_cstr(out, message);
	mk_buf_putc(out, '}');
}

/* Closes the array (with "and N more" past the cap); the validator's result. */
static enum mk_err
close_details(struct detail_list *list)
{
	struct mk_buf *out = list->json;

	if (list->count > MK_DETAILS_MAX)
		mk_buf_printf(out,
		    ",{\"field\":\"body\",\"message\":\"and %zu more\"}",
		    list->count - MK_DETAILS_MAX);
	if (list->count > 0)
		mk_buf_putc(out, ']');
	if (out->oom)
		return MK_ENOMEM;
	return list->count > 0 ? MK_EINVAL : MK_OK;
}

/* Unicode characters in valid UTF-8 text (the strict parser checked it). */
static size_t
characters(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool
mk_amount_parse(const char *text, char *out)
{
	size_t int_len = strspn(text, "0123456789"), frac_len = 0;
	const char *frac = "";
	unsigned long long whole = 0;

	if (int_len == 0 || int_len > 13 || (int_len > 1 && text[0] == '0'))
		return false;
	if (text[int_len] == '.') {
		frac = text + int_len + 1;
		frac_len = strspn(frac, "0123456789");
		if (frac_len == 0 || frac_len > 2 || frac[frac_len] != '\0')
			return false;
	} else if (text[int_len] != '\0') {
		return false;
	}
	for (size_t i = 0; i < int_len; i++)
		whole = whole * 10 + (unsigned long long)(text[i] - '0');
	{
		unsigned cents = frac_len == 0 ? 0
		    : frac_len == 1            ? (unsigned)(frac[0] - '0') * 10
				    : (unsigned)(frac[0] - '0') * 10 +
			(unsigned)(frac[1] - '0');

		if ((whole == 0 && cents == 0) || whole > 1000000000000ULL ||
		    (whole == 1000000000000ULL && cents > 0))
			return false;
		(void)snprintf(
		    out, MK_AMOUNT_TEXT_MAX, "%llu.%02u", whole, cents);
	}
	return true;
}

static int
days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * RFC 3339 in UTC ("…Z" or "…+00:00", optional fraction) → "YYYY-MM-DD
 * HH:MM:SS" (out: 32 bytes).
 */
static bool
parse_utc_time(const char *s, char *out)
{
	int y, mo, d, h, mi, sec, n = 0;
	const char *rest;

	if (strlen(s) < 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
		&n) != 6 ||
	    n != 19)
		return false;
	for (int i = 0; i < 19; i++) {
		if ((i == 4 || i == 7)         ? s[i] != '-'
			: i == 10              ? s[i] != 'T'
			: (i == 13 || i == 16) ? s[i] != ':'
					       : (s[i] < '0' || s[i] > '9'))
			return false;
	}
	rest = s + 19;
	if (*rest == '.') {
		size_t digits = strspn(rest + 1, "0123456789");

		if (digits == 0 || digits > 9)
			return false;
		rest += 1 + digits;
	}
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
		return false;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return false;
	/* The remainders only tell the compiler the ranges checked above. */
	(void)snprintf(out, 32, "%04u-%02u-%02u %02u:%02u:%02u",
	    (unsigned)y % 10000u, (unsigned)mo % 100u, (unsigned)d % 100u,
	    (unsigned)h % 100u, (unsigned)mi % 100u, (unsigned)sec % 100u);
	return true;
}

static const char *
copy_text(struct mk_arena *arena, struct json_object *value, size_t skip_front,
    size_t len)
{
	return mk_arena_strndup(
	    arena, json_object_get_string(value) + skip_front, len);
}

/* What the validators of one body share: where values go, and failures. */
struct body_check {
	struct mk_arena *arena;
	enum mk_market_write kind;
	struct mk_market_input *out;
	struct detail_list *details;
};

/*
 * A member a body may hold and its validator, in the manner of kcgi's
 * struct kvalid: check(c, field, value) reads value (NULL for JSON null
 * or, in a position, a missing member), stores its canonical form in
 * c->out or adds a detail naming field. A market member that names a
 * column (field >= 0) marks it present even when its value fails.
 */
struct field_check {
	const char *name;
	void (*check)(
	    struct body_check *c, const char *field, struct json_object *value);
	int field; /* enum mk_market_field, or -1 */
};

static const struct field_check *
find_field(const struct field_check *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	}
	return NULL;
}

static void
check_side(struct body_check *c, const char *field, struct json_object *value)
{
	const char *side = json_object_is_type(value, json_type_string)
	    ? json_object_get_string(value)
	    : "";

	if (strcmp(side, "yes") != 0 && strcmp(side, "no") != 0)
		detail(c->details, field, "must be \"yes\" or \"no\"");
	else
		c->out->side = strcmp(side, "yes") == 0 ? "yes" : "no";
}

static void
check_amount(struct body_check *c, const char *field, struct json_object *value)
{
	char canonical[MK_AMOUNT_TEXT_MAX];

	if (!json_object_is_type(value, json_type_string) ||
	    !mk_amount_parse(json_object_get_string(value), canonical))
		detail(c->details, field,
		    "must be a decimal string above 0 "
		    "and at most 1000000000000, two decimals at most");
	else
		c->out->amount =
		    mk_arena_strndup(c->arena, canonical, strlen(canonical));
}

/* Both members are required: they are checked after the walk, in order. */
static const struct field_check position_fields[] = {
	{ "side", check_side, -1 },
	{ "amount", check_amount, -1 },
};

#define NPOSITION_FIELDS (sizeof(position_fields) / sizeof(position_fields[0]))

/*
 * Checks a position object; prefix names its fields in details
 * ("initial_position." inside a market, "" for a buy body).
 */
static void
check_position(
    struct body_check *c, struct json_object *pos, const char *prefix)
{
	struct json_object *values[NPOSITION_FIELDS] = { NULL };
	const struct field_check *f;
	char field[96];

	if (!json_object_is_type(pos, json_type_object)) {
		detail(c->details,
		    prefix[0] != '\0' ? "initial_position" : "body",
		    "must be an object with side and amount");
		return;
	}
	json_object_object_foreach(pos, key, value)
	{
		f = find_field(position_fields, NPOSITION_FIELDS, key);
		if (f != NULL) {
			values[f - position_fields] = value;
			continue;
		}
		(void)snprintf(field, sizeof(field), "%s%.60s", prefix, key);
		detail(c->details, field, "is not a field of a position");
	}
	for (size_t i = 0; i < NPOSITION_FIELDS; i++) {
		f = &position_fields[i];
		(void)snprintf(field, sizeof(field), "%s%s", prefix, f->name);
		f->check(c, field, values[i]);
	}
	c->out->has_position = true;
}

static void
check_read_only(
    struct body_check *c, const char *field, struct json_object *value)
{
	(void)value;
	detail(c->details, field, "is read-only");
}

static void
check_name(struct body_check *c, const char *field, struct json_object *value)
{
	const char *s;
	size_t len, front = 0;

	if (!json_object_is_type(value, json_type_string)) {
		detail(c->details, field, "must be a string");
		return;
	}
	s = json_object_get_string(value);
	len = (size_t)json_object_get_string_len(value);
	while (front < len && is_space(s[front]))
		front++;
	while (len > front && is_space(s[len - 1]))
		len--;
	if (len == front || characters(s + front, len - front) > 200)
		detail(c->details, field,
		    "must be 1 to 200 characters after trimming");
	else
		c->out->name = copy_text(c->arena, value, front, len - front);
}

static void
check_description(
    struct body_check *c, const char *field, struct json_object *value)
{
	size_t len = (size_t)json_object_get_string_len(value);

	if (!json_object_is_type(value, json_type_string) ||
	    characters(json_object_get_string(value), len) > 5000)
		detail(c->details, field,
		    "must be a string of at most 5000 characters");
	else
		c->out->description = copy_text(c->arena, value, 0, len);
}

static void
check_status(struct body_check *c, const char *field, struct json_object *value)
{
	const char *status = json_object_is_type(value, json_type_string)
	    ? mk_market_status_parse(json_object_get_string(value))
	    : NULL;

	if (status == NULL)
		detail(c->details, field, "must be active, closed or resolved");
	else
		c->out->status = status;
}

static void
check_end_date(
    struct body_check *c, const char *field, struct json_object *value)
{
	char when[32];

	if (value == NULL)
		c->out->end_date = NULL;
	else if (!json_object_is_type(value, json_type_string) ||
	    !parse_utc_time(json_object_get_string(value), when))
		detail(c->details, field,
		    "must be an RFC 3339 UTC time "
		    "(2027-01-31T12:00:00Z) or null");
	else
		c->out->end_date =
		    mk_arena_strndup(c->arena, when, strlen(when));
}

static void
check_initial_position(
    struct body_check *c, const char *field, struct json_object *value)
{
	if (c->kind == MK_WRITE_CREATE)
		check_position(c, value, "initial_position.");
	else
		detail(c->details, field,
		    "only when creating a market "
		    "(buy with POST …/positions)");
}

/* The members of a market body; any other is a failure of its own. */
static const struct field_check market_fields[] = {
	{ "id", check_read_only, -1 },
	{ "volume", check_read_only, -1 },
	{ "creator_id", check_read_only, -1 },
	{ "created_at", check_read_only, -1 },
	{ "updated_at", check_read_only, -1 },
	{ "name", check_name, MK_MARKET_NAME },
	{ "description", check_description, MK_MARKET_DESCRIPTION },
	{ "status", check_status, MK_MARKET_STATUS },
	{ "end_date", check_end_date, MK_MARKET_END_DATE },
	{ "initial_position", check_initial_position, -1 },
};

enum mk_err
mk_position_validate(struct mk_arena *arena, struct json_object *body,
    struct mk_market_input *out, struct mk_buf *details)
{
	struct detail_list list = { .json = details };
	struct body_check c = { arena, MK_WRITE_CREATE, out, &list };

	memset(out, 0, sizeof(*out));
	check_position(&c, body, "");
	return close_details(&list);
}

enum mk_err
mk_market_validate_create(struct mk_arena *arena, struct json_object *body,
    struct mk_market_input *out, struct mk_buf *details)
{
	return mk_market_validate(arena, body, MK_WRITE_CREATE, out, details);
}

enum mk_err
mk_market_validate(struct mk_arena *arena, struct json_object *body,
    enum mk_market_write kind, struct mk_market_input *out,
    struct mk_buf *details)
{
	struct detail_list list = { .json = details };
	struct body_check c = { arena, kind, out, &list };
	const unsigned name = MK_MARKET_FIELD_BIT(MK_MARKET_NAME);
	const struct field_check *f;
	char field[80];

	memset(out, 0, sizeof(*out));
	out->description = "";
	out->status = "active";
	if (!json_object_is_type(body, json_type_object)) {
		detail(&list, "body", "must be a JSON object");
		goto done;
	}
	json_object_object_foreach(body, key, value)
	{
		f = find_field(market_fields,
		    sizeof(market_fields) / sizeof(market_fields[0]), key);
		if (f == NULL) {
			(void)snprintf(field, sizeof(field), "%.64s", key);
			detail(&list, field, "is not a field of a market");
			continue;
		}
		if (f->field >= 0)
			out->present |= MK_MARKET_FIELD_BIT(f->field);
		f->check(&c, key, value);
	}
	if (!(out->present & name) && kind != MK_WRITE_PATCH)
		detail(&list, "name", "is required");
	if (kind == MK_WRITE_PATCH && out->present == 0 && list.count == 0)
		detail(&list, "body", "names no field to change");
	/*
	 * A replacement writes every field: what it omits goes back to the
	 * default.
	 */
	if (kind == MK_WRITE_REPLACE)
		out->present = MK_MARKET_FIELD_BIT(MK_MARKET_NAME) |
		    MK_MARKET_FIELD_BIT(MK_MARKET_DESCRIPTION) |
		    MK_MARKET_FIELD_BIT(MK_MARKET_STATUS) |
		    MK_MARKET_FIELD_BIT(MK_MARKET_END_DATE);
done:
	return close_details(&list);
}
