/*
 * The value types of settings (core layer); see config_types.h. It calls
 * core/ only.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/config_types.h"

/*
 * Parses an unsigned decimal prefix; returns chars used or 0 on none/overflow.
 */
static size_t
parse_digits(const char *s, long long *out)
{
	long long v = 0;
	size_t i = 0;

	while (isdigit((unsigned char)s[i])) {
		if (v > (LLONG_MAX - 9) / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
		i++;
	}
	*out = v;
	return i;
}

/* A unit a number may end in ("" for none), and what it multiplies by. */
struct conf_unit {
	const char *suffix;
	long long scale;
};

/*
 * Digits and a unit of units[] (which ends with a NULL suffix) into
 * *number, scaled. Returns NULL, "out of range" past LLONG_MAX, or
 * malformed (the caller's reason) for no digits or an unknown unit.
 */
static const char *
parse_scaled(const char *value, const struct conf_unit *units,
    const char *malformed, long long *number)
{
	size_t used = parse_digits(value, number);

	if (used == 0)
		return malformed;
	for (; units->suffix != NULL; units++) {
		if (strcmp(value + used, units->suffix) != 0)
			continue;
		if (*number > LLONG_MAX / units->scale)
			return "out of range";
		*number *= units->scale;
		return NULL;
	}
	return malformed;
}

/* Stores number, when it lies in the key's bounds, as an int. */
static const char *
store_int(const struct mk_conf_key *key, long long number, void *field)
{
	if (number < key->min || number > key->max)
		return "out of range";
	*(int *)field = (int)number;
	return NULL;
}

/*
 * The parsers, one per type: each converts value, checks it against the
 * key's bounds and stores it at field, its slot in struct mk_config.
 * Each returns NULL, or a reason and leaves the slot as it was.
 */
static const char *
parse_int(const struct mk_conf_key *key, const char *value, void *field)
{
	long long number;
	size_t used = parse_digits(value, &number);

	if (used == 0 || value[used] != '\0')
		return "not a non-negative integer";
	return store_int(key, number, field);
}

static const char *
parse_size(const struct mk_conf_key *key, const char *value, void *field)
{
	static const struct conf_unit units[] = {
		{ "", 1 },
		{ "k", 1024 },
		{ "K", 1024 },
		{ "m", 1024 * 1024 },
		{ "M", 1024 * 1024 },
		{ "g", 1024 * 1024 * 1024 },
		{ "G", 1024 * 1024 * 1024 },
		{ NULL, 0 },
	};
	long long number;
	const char *why;

	why = parse_scaled(value, units, "not a size (e.g. 512k, 1m)", &number);
	if (why != NULL)
		return why;
	if (number < key->min || number > key->max)
		return "out of range";
	*(size_t *)field = (size_t)number;
	return NULL;
}

static const char *
parse_duration(const struct mk_conf_key *key, const char *value, void *field)
{
	static const struct conf_unit units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "", 1000 },
		{ "m", 60000 },
		{ NULL, 0 },
	};
	long long number;
	const char *why;

	why = parse_scaled(
	    value, units, "not a duration (e.g. 250ms, 30s, 2m)", &number);
	return why != NULL ? why : store_int(key, number, field);
}

static const char *
parse_octal(const struct mk_conf_key *key, const char *value, void *field)
{
	long long number;
	char *end;

	if (value[0] != '0' || strspn(value, "01234567") != strlen(value))
		return "not an octal mode such as 0660";
	errno = 0;
	number = strtoll(value, &end, 8);
	if (errno != 0)
		return "out of range";
	return store_int(key, number, field);
}

static const char *
parse_string(const struct mk_conf_key *key, const char *value, void *field)
{
	char **slot = field, *copy;
	const char *why;

	if (strlen(value) > (size_t)key->max)
		return "too long";
	if (key->check != NULL && (why = key->check(value)) != NULL)
		return why;
	copy = strdup(value);
	if (copy == NULL)
		return "out of memory";
	free(*slot);
	*slot = copy;
	return NULL;
}

static const char *
parse_log_level(const struct mk_conf_key *key, const char *value, void *field)
{
	(void)key;
	if (mk_log_level_parse(value, field) != 0)
		return "must be one of debug, info, warn, error";
	return NULL;
}

/* requests/seconds: the requests within [min, max], 1 to 86400 seconds. */
static const char *
parse_rate(const struct mk_conf_key *key, const char *value, void *field)
{
	struct mk_rate *rate = field;
	long long number, window;
	const char *rest;
	size_t used;

	used = parse_digits(value, &number);
	if (used == 0 || value[used] != '/')
		return "not requests/seconds (e.g. 100/60)";
	rest = value + used + 1;
	used = parse_digits(rest, &window);
	if (used == 0 || rest[used] != '\0')
		return "not requests/seconds (e.g. 100/60)";
	if (number < key->min || number > key->max || window < 1 ||
	    window > 86400)
		return "out of range (1-1000000000 requests per 1-86400 "
		       "seconds)";
	rate->limit = (int)number;
	rate->window_s = (int)window;
	return NULL;
}

bool
mk_conf_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * The printers, one per type: each writes the value at field as its
 * parser reads it back, in the largest unit that keeps it exact.
 */
static void
print_int(struct mk_buf *out, const void *field)
{
	mk_buf_printf(out, "%d", *(const int *)field);
}

/* number with the first of units[] (largest first, NULL-ended) it fills. */
static void
print_scaled(
    struct mk_buf *out, long long number, const struct conf_unit *units)
{
	for (; units->suffix != NULL; units++) {
		if (number % units->scale == 0 &&
		    (number != 0 || units->suffix[0] == '\0')) {
			mk_buf_printf(out, "%lld%s", number / units->scale,
			    units->suffix);
			return;
		}
	}
}

static void
print_size(struct mk_buf *out, const void *field)
{
	static const struct conf_unit units[] = {
		{ "g", 1024 * 1024 * 1024 },
		{ "m", 1024 * 1024 },
		{ "k", 1024 },
		{ "", 1 },
		{ NULL, 0 },
	};

	print_scaled(out, (long long)*(const size_t *)field, units);
}

static void
print_duration(struct mk_buf *out, const void *field)
{
	static const struct conf_unit units[] = {
		{ "m", 60000 },
		{ "s", 1000 },
		{ "ms", 1 },
		{ NULL, 0 },
	};
	int ms = *(const int *)field;

	if (ms == 0)
		mk_buf_puts(out, "0");
	else
		print_scaled(out, ms, units);
}

static void
print_octal(struct mk_buf *out, const void *field)
{
	mk_buf_printf(out, "%04o", (unsigned)*(const int *)field);
}

/*
 * Quoted when blanks at either end (or a quote at the start) would
 * otherwise be lost; a control character, which no line can hold, as '?'.
 */
static void
print_string(struct mk_buf *out, const void *field)
{
	const char *value = *(char *const *)field;
	size_t len = strlen(value);
	bool quote = len > 0 &&
	    (mk_conf_blank(value[0]) || mk_conf_blank(value[len - 1]) ||
		value[0] == '"');

	if (quote)
		mk_buf_putc(out, '"');
	for (size_t i = 0; i < len; i++)
		mk_buf_putc(out,
		    (unsigned char)value[i] < 0x20 && value[i] != '\t'
			? '?'
			: value[i]);
	if (quote)
		mk_buf_putc(out, '"');
}

static void
print_log_level(struct mk_buf *out, const void *field)
{
	mk_buf_puts(out, mk_log_level_name(*(const enum mk_log_level *)field));
}

static void
print_rate(struct mk_buf *out, const void *field)
{
	const struct mk_rate *rate = field;

	mk_buf_printf(out, "%d/%d", rate->limit, rate->window_s);
}

const struct mk_conf_type_ops mk_conf_types[CONF__MAX] = {
	[CONF_INT] = { parse_int, print_int, false },
	[CONF_SIZE] = { parse_size, print_size, false },
	[CONF_DURATION] = { parse_duration, print_duration, false },
	[CONF_OCTAL] = { parse_octal, print_octal, false },
	[CONF_STRING] = { parse_string, print_string, true },
	[CONF_SECRET] = { parse_string, NULL, true },
	[CONF_LOG_LEVEL] = { parse_log_level, print_log_level, false },
	[CONF_RATE] = { parse_rate, print_rate, false },
};
