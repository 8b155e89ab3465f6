/*
 * Clocks (core layer): monotonic time for durations and timeouts, wall
 * time in RFC 3339 UTC for logs and resources.
 */
#ifndef MK_CLOCK_H
#define MK_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic microseconds, for durations only. */
uint64_t mk_clock_mono_us(void);

/* Monotonic milliseconds, for timeouts. */
int64_t mk_clock_mono_ms(void);

/*
 * Sleeps ms milliseconds; a signal cuts the sleep short only when
 * interruptible (a loop that must notice a stop request).
 */
void mk_clock_sleep_ms(int ms, int interruptible);

/*
 * Writes the wall-clock time as "2026-11-25T06:18:29.123Z" (millis when
 * with_millis, else whole seconds) into out, which must hold 25 bytes.
 * Returns the length written, without the NUL.
 */
size_t mk_clock_rfc3339(
    char *out, size_t size, const struct timespec *when, int with_millis);

#endif
