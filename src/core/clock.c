/*
 * Clocks (core layer); see clock.h.
 */
#include <errno.h>
#include <stdio.h>

#include "core/clock.h"

uint64_t
mk_clock_mono_us(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t
mk_clock_mono_ms(void)
{
	return (int64_t)(mk_clock_mono_us() / 1000u);
}

size_t
mk_clock_rfc3339(
    char *out, size_t size, const struct timespec *when, int with_millis)
{
	struct timespec now;
	struct tm tm;
	int n;

	if (when == NULL) {
		(void)clock_gettime(CLOCK_REALTIME, &now);
		when = &now;
	}
	if (gmtime_r(&when->tv_sec, &tm) == NULL) {
		n = snprintf(out, size, "1970-01-01T00:00:00Z");
		return n < 0 ? 0 : (size_t)n;
	}
	if (with_millis)
		n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, when->tv_nsec / 1000000L);
	else
		n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

void
mk_clock_sleep_ms(int ms, int interruptible)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !interruptible)
		;
}
