/*
 * Growable byte buffer (core layer); see buf.h. Heap buffers own their
 * memory; arena buffers grow in place when they were the arena's last
 * allocation, which is the common case for a response body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"

void
mk_buf_init(struct mk_buf *buf, struct mk_arena *arena)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->max = 0;
	buf->arena = arena;
	buf->fixed = false;
	buf->oom = false;
}

void
mk_buf_init_fixed(struct mk_buf *buf, char *mem, size_t size)
{
	mk_buf_init(buf, NULL);
	buf->data = mem;
	buf->cap = size;
	buf->fixed = true;
	if (size > 0)
		mem[0] = '\0';
}

void
mk_buf_release(struct mk_buf *buf)
{
	if (buf->fixed)
		return;
	if (buf->arena == NULL)
		free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
	buf->oom = false;
}

bool
mk_buf_reserve(struct mk_buf *buf, size_t extra)
{
	size_t need, cap;
	char *p;

	if (buf->oom)
		return false;
	if (extra > SIZE_MAX / 2 - buf->len - 1)
		goto fail;
	need = buf->len + extra + 1;
	if (buf->max != 0 && need > buf->max + 1)
		goto fail;
	if (need <= buf->cap)
		return true;
	if (buf->fixed)
		goto fail;
	cap = buf->cap < 256 ? 256 : buf->cap;
	while (cap < need)
		cap *= 2;
	if (buf->arena != NULL)
		p = mk_arena_grow(buf->arena, buf->data, buf->cap, cap);
	else
		p = realloc(buf->data, cap);
	if (p == NULL)
		goto fail;
	buf->data = p;
	buf->cap = cap;
	return true;
fail:
	buf->oom = true;
	return false;
}

void
mk_buf_append(struct mk_buf *buf, const void *bytes, size_t len)
{
	if (!mk_buf_reserve(buf, len))
		return;
	if (len > 0)
		memcpy(buf->data + buf->len, bytes, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
mk_buf_puts(struct mk_buf *buf, const char *s)
{
	mk_buf_append(buf, s, strlen(s));
}

void
mk_buf_putc(struct mk_buf *buf, char c)
{
	if (!mk_buf_reserve(buf, 1))
		return;
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

void
mk_buf_vprintf(struct mk_buf *buf, const char *fmt, va_list ap)
{
	va_list again;
	size_t avail, first = 64;
	int n;

	/* Start small enough that a buffer with a low max can still print. */
	if (buf->max != 0 &&
	    (buf->max <= buf->len || buf->max - buf->len < first))
		first = buf->max > buf->len ? buf->max - buf->len : 0;
	if (buf->oom || (buf->cap == 0 && !mk_buf_reserve(buf, first)))
		return;
	va_copy(again, ap);
	avail = buf->cap - buf->len;
	n = vsnprintf(buf->data + buf->len, avail, fmt, ap);
	if (n < 0) {
		buf->data[buf->len] = '\0';
		buf->oom = true;
		goto out;
	}
	if ((size_t)n >= avail ||
	    (buf->max != 0 && buf->len + (size_t)n > buf->max)) {
		/*
		 * Did not fit (or broke max): undo the partial write, then
		 * grow.
		 */
		buf->data[buf->len] = '\0';
		if (!mk_buf_reserve(buf, (size_t)n))
			goto out;
		n = vsnprintf(
		    buf->data + buf->len, buf->cap - buf->len, fmt, again);
	}
	buf->len += (size_t)n;
out:
	va_end(again);
}

void
mk_buf_printf(struct mk_buf *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mk_buf_vprintf(buf, fmt, ap);
	va_end(ap);
}

void
mk_buf_put_u64(struct mk_buf *buf, uint64_t value)
{
	char digits[20];
	size_t n = 0;

	do {
		digits[sizeof(digits) - 1 - n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	mk_buf_append(buf, digits + sizeof(digits) - n, n);
}

void
mk_buf_put_i64(struct mk_buf *buf, int64_t value)
{
	if (value < 0) {
		mk_buf_putc(buf, '-');
		/*
		 * Negate in unsigned arithmetic: INT64_MIN has no positive
		 * twin.
		 */
		mk_buf_put_u64(buf, (uint64_t)0 - (uint64_t)value);
	} else {
		mk_buf_put_u64(buf, (uint64_t)value);
	}
}

void
mk_buf_consume(struct mk_buf *buf, size_t n)
{
	if (n >= buf->len) {
		buf->len = 0;
	} else {
		memmove(buf->data, buf->data + n, buf->len - n);
		buf->len -= n;
	}
	if (buf->cap > 0)
		buf->data[buf->len] = '\0';
}

void
mk_buf_clear(struct mk_buf *buf)
{
	buf->len = 0;
	buf->oom = false;
	if (buf->cap > 0)
		buf->data[0] = '\0';
}

void
mk_buf_shrink(struct mk_buf *buf, size_t keep)
{
	if (buf->fixed || buf->arena != NULL || buf->len > 0 ||
	    buf->cap <= keep)
		return;
	mk_buf_release(buf);
}

void
mk_buf_truncate(struct mk_buf *buf, size_t len)
{
	if (len >= buf->len)
		return;
	buf->len = len;
	if (buf->data != NULL)
		buf->data[len] = '\0';
}
