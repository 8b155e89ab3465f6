/*
 * Per-request arena (core layer); see arena.h for the ownership rules.
 *
 * Small allocations are carved from a chain of blocks by bumping a
 * pointer. Allocations bigger than a quarter block get a block of their
 * own at the end of the chain so that they do not waste the current one.
 * Reset keeps only the first block, which is allocated with the arena,
 * so a worker that resets its arena per request does not call malloc in
 * steady state.
 */
#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define ARENA_ALIGN alignof(max_align_t)
#define ARENA_DEFAULT_BLOCK 8192
/* Refuse single allocations past this: they are bugs or attacks. */
#define ARENA_MAX_ALLOC ((size_t)1 << 31)

struct arena_block {
	struct arena_block *next;
	char *pos;
	char *end;
	alignas(max_align_t) char mem[];
};

struct arena_cleanup {
	struct arena_cleanup *next;
	mk_arena_cleanup_fn fn;
	void *resource;
};

struct mk_arena {
	/* allocated with the arena, never freed by reset */
	struct arena_block *first;
	struct arena_block *current; /* where small allocations are carved */
	struct arena_block *last;
	struct arena_cleanup *cleanups;
	size_t block_size;
	size_t used;
	void *last_alloc; /* start of the most recent small allocation */
};

static size_t
align_up(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

static struct arena_block *
block_new(size_t capacity)
{
	struct arena_block *b;

	b = malloc(sizeof(*b) + capacity);
	if (b == NULL)
		return NULL;
	b->next = NULL;
	b->pos = b->mem;
	b->end = b->mem + capacity;
	return b;
}

struct mk_arena *
mk_arena_new(size_t block_size)
{
	struct mk_arena *arena;

	if (block_size == 0)
		block_size = ARENA_DEFAULT_BLOCK;
	block_size = align_up(block_size);
	arena = malloc(sizeof(*arena));
	if (arena == NULL)
		return NULL;
	arena->first = block_new(block_size);
	if (arena->first == NULL) {
		free(arena);
		return NULL;
	}
	arena->current = arena->last = arena->first;
	arena->cleanups = NULL;
	arena->block_size = block_size;
	arena->used = 0;
	arena->last_alloc = NULL;
	return arena;
}

static void
run_cleanups(struct mk_arena *arena)
{
	/* Cleanups live in the arena itself: take the list first. */
	struct arena_cleanup *c = arena->cleanups;

	arena->cleanups = NULL;
	for (; c != NULL; c = c->next)
		c->fn(c->resource);
}

void
mk_arena_reset(struct mk_arena *arena)
{
	struct arena_block *b, *next;

	run_cleanups(arena);
	for (b = arena->first->next; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	arena->first->next = NULL;
	arena->first->pos = arena->first->mem;
	arena->current = arena->last = arena->first;
	arena->used = 0;
	arena->last_alloc = NULL;
}

void
mk_arena_free(struct mk_arena *arena)
{
	if (arena == NULL)
		return;
	mk_arena_reset(arena);
	free(arena->first);
	free(arena);
}

static void
append_block(struct mk_arena *arena, struct arena_block *b)
{
	arena->last->next = b;
	arena->last = b;
}

void *
mk_arena_alloc(struct mk_arena *arena, size_t size)
{
	struct arena_block *b;
	size_t need;
	void *p;

	if (size > ARENA_MAX_ALLOC)
		return NULL;
	need = align_up(size == 0 ? 1 : size);
	if (need > arena->block_size / 4) {
		/* Large: a block of its own, filled completely. */
		b = block_new(need);
		if (b == NULL)
			return NULL;
		b->pos = b->end;
		append_block(arena, b);
		arena->used += need;
		arena->last_alloc = NULL;
		return b->mem;
	}
	for (b = arena->current; b != NULL; b = b->next) {
		if ((size_t)(b->end - b->pos) >= need)
			break;
		/*
		 * A block that cannot fit a small request is nearly full: skip
		 * it next time.
		 */
		if ((size_t)(b->end - b->pos) < ARENA_ALIGN * 4 &&
		    b->next != NULL)
			arena->current = b->next;
	}
	if (b == NULL) {
		b = block_new(arena->block_size);
		if (b == NULL)
			return NULL;
		append_block(arena, b);
	}
	p = b->pos;
	b->pos += need;
	arena->used += need;
	arena->last_alloc = p;
	return p;
}

void *
mk_arena_calloc(struct mk_arena *arena, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	p = mk_arena_alloc(arena, nmemb * size);
	if (p != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

char *
mk_arena_strndup(struct mk_arena *arena, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		return NULL;
	p = mk_arena_alloc(arena, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *
mk_arena_grow(
    struct mk_arena *arena, void *ptr, size_t old_size, size_t new_size)
{
	struct arena_block *b;
	void *p;

	if (new_size <= old_size)
		return ptr;
	if (ptr != NULL && ptr == arena->last_alloc) {
		/*
		 * Find the block holding it: it is the one whose pos follows
		 * it.
		 */
		for (b = arena->current; b != NULL; b = b->next) {
			if ((char *)ptr >= b->mem && (char *)ptr < b->end)
				break;
		}
		if (b != NULL && new_size <= ARENA_MAX_ALLOC &&
		    align_up(new_size) <= (size_t)(b->end - (char *)ptr)) {
			size_t before = (size_t)(b->pos - (char *)ptr);

			b->pos = (char *)ptr + align_up(new_size);
			arena->used += align_up(new_size) - before;
			return ptr;
		}
	}
	p = mk_arena_alloc(arena, new_size);
	if (p == NULL)
		return NULL;
	if (ptr != NULL && old_size > 0)
		memcpy(p, ptr, old_size);
	return p;
}

int
mk_arena_add_cleanup(
    struct mk_arena *arena, mk_arena_cleanup_fn fn, void *resource)
{
	struct arena_cleanup *c;

	assert(fn != NULL);
	c = mk_arena_alloc(arena, sizeof(*c));
	if (c == NULL)
		return -1;
	c->fn = fn;
	c->resource = resource;
	c->next = arena->cleanups;
	arena->cleanups = c;
	return 0;
}

size_t
mk_arena_used(const struct mk_arena *arena)
{
	return arena->used;
}
