/*
 * Growable byte buffer (core layer). A buffer draws its memory either from
 * an arena (request-lifetime output: response bodies, log lines) or from
 * the heap (connection-lifetime I/O buffers), chosen at init. Appends
 * never fail loudly: the first allocation failure sets the sticky `oom`
 * flag and later appends are ignored, so a writer checks once, at the end.
 * The contents are always NUL-terminated when cap > 0.
 */
#ifndef MK_BUF_H
#define MK_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_arena;

struct mk_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;             /* appends past this set oom; 0 = no limit */
	struct mk_arena *arena; /* NULL: heap, freed by mk_buf_release() */
	bool fixed;             /* caller's memory: never grown or freed */
	bool oom;
};

/* Starts an empty buffer drawing from arena, or from the heap when NULL. */
void mk_buf_init(struct mk_buf *buf, struct mk_arena *arena);

/*
 * Starts an empty buffer over the caller's size bytes at mem (a stack
 * array, say); appends past size - 1 set oom instead of growing.
 */
void mk_buf_init_fixed(struct mk_buf *buf, char *mem, size_t size);

/* Frees a heap buffer's memory (no-op for arena buffers) and empties it. */
void mk_buf_release(struct mk_buf *buf);

/* Ensures room for extra more bytes (plus the NUL). Returns false on oom. */
bool mk_buf_reserve(struct mk_buf *buf, size_t extra);

void mk_buf_append(struct mk_buf *buf, const void *bytes, size_t len);
void mk_buf_puts(struct mk_buf *buf, const char *s);
void mk_buf_putc(struct mk_buf *buf, char c);
void mk_buf_printf(struct mk_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mk_buf_vprintf(struct mk_buf *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void mk_buf_put_u64(struct mk_buf *buf, uint64_t value);
void mk_buf_put_i64(struct mk_buf *buf, int64_t value);

/* Drops the first n bytes, moving the rest to the front. */
void mk_buf_consume(struct mk_buf *buf, size_t n);

/* Empties the buffer, keeping its memory. */
void mk_buf_clear(struct mk_buf *buf);

/*
 * Frees an empty heap buffer's memory when it holds more than keep bytes,
 * so that one large answer does not pin its peak for a connection's life.
 * No-op for arena, fixed or non-empty buffers.
 */
void mk_buf_shrink(struct mk_buf *buf, size_t keep);

/* Drops everything past the first len bytes (no-op when shorter). */
void mk_buf_truncate(struct mk_buf *buf, size_t len);

#endif
