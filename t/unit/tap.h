/*
 * A minimal TAP producer for the C unit tests (test support). Each test
 * program prints a plan when done (done_testing style) and exits non-zero
 * when anything failed, so both `make check` and prove judge it.
 */
#ifndef MK_TAP_H
#define MK_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static void tap_ok(int passed, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));

static void
tap_ok(int passed, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (!passed)
		tap_failed++;
	printf("%sok %d - ", passed ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Compares two strings (NULL-safe) and prints both when they differ. */
#define tap_is_str(got, want, ...)                                             \
	do {                                                                   \
		const char *tap_g_ = (got), *tap_w_ = (want);                  \
		int tap_same_ = (tap_g_ == NULL && tap_w_ == NULL) ||          \
		    (tap_g_ != NULL && tap_w_ != NULL &&                       \
			strcmp(tap_g_, tap_w_) == 0);                          \
		tap_ok(tap_same_, __VA_ARGS__);                                \
		if (!tap_same_)                                                \
			printf("#   got:  '%s'\n#   want: '%s'\n",             \
			    tap_g_ ? tap_g_ : "(null)",                        \
			    tap_w_ ? tap_w_ : "(null)");                       \
	} while (0)

#define tap_is_int(got, want, ...)                                             \
	do {                                                                   \
		long long tap_g_ = (long long)(got),                           \
			  tap_w_ = (long long)(want);                          \
		tap_ok(tap_g_ == tap_w_, __VA_ARGS__);                         \
		if (tap_g_ != tap_w_)                                          \
			printf("#   got:  %lld\n#   want: %lld\n", tap_g_,     \
			    tap_w_);                                           \
	} while (0)

static int tap_done(void) __attribute__((unused));

static int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed == 0 ? 0 : 1;
}

#endif
