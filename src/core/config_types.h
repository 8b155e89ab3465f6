/*
 * The value types of settings (core layer, private to the configuration:
 * config.c and config_types.c include it, nothing else). A key of the
 * settings table (config.c) names its type; each type has one parser,
 * which reads a value, checks the key's bounds and stores it, and one
 * printer, which writes a stored value back as its parser reads it
 * (--dump-config).
 */
#ifndef MK_CONFIG_TYPES_H
#define MK_CONFIG_TYPES_H

#include <stdbool.h>
#include <stddef.h>

struct mk_buf;

enum mk_conf_type {
	CONF_INT,  /* decimal integer in [min, max] */
	CONF_SIZE, /* bytes, with optional k/m/g suffix */
	/* milliseconds: 250ms, 30s, 2m; bare numbers are seconds */
	CONF_DURATION,
	CONF_OCTAL,  /* file mode such as 0660 */
	CONF_STRING, /* at most max bytes, then the key's check if any */
	/*
	 * a string that is a secret: never printed, and `@/path` reads it
	 * from a file (config.h)
	 */
	CONF_SECRET,
	CONF_LOG_LEVEL,
	CONF_RATE, /* requests/seconds, e.g. 100/60 */
	CONF__MAX
};

struct mk_conf_key {
	const char *name;
	enum mk_conf_type type;
	size_t offset;
	long long min;
	long long max;
	const char *default_value;
	/* Extra rule for a string; returns a reason or NULL when fine. */
	const char *(*check)(const char *value);
};

struct mk_conf_type_ops {
	/*
	 * Converts value, checks it against the key's bounds and stores it
	 * at field, its slot in struct mk_config. Returns NULL, or a reason
	 * and leaves the slot as it was.
	 */
	const char *(*parse)(
	    const struct mk_conf_key *key, const char *value, void *field);
	/*
	 * Appends the value at field, in the largest unit that is exact
	 * (NULL for secrets: config.c prints what stands in for one).
	 */
	void (*print)(struct mk_buf *out, const void *field);
	bool owns_string; /* the slot is a char * the config frees */
};

extern const struct mk_conf_type_ops mk_conf_types[CONF__MAX];

/* The blanks around keys and values: space, tab, CR. */
bool mk_conf_blank(char c);

#endif
