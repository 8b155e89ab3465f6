/*
 * Unit tests for the per-request arena (src/core/arena.c): alignment of
 * every allocation, small allocations spilling over many blocks without
 * overlapping, large allocations that get a block of their own, calloc
 * zeroing and overflow, strndup, growing in place versus moving, cleanups
 * running last-registered-first on reset and on free, and the arena being
 * reusable after a reset. Allocations are filled with patterns and read
 * back later, so an overlap or a lost copy shows up as a wrong byte.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "tap.h"

#define ALIGN alignof(max_align_t)

static size_t
round_up(size_t n)
{
	return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static int
aligned(const void *p)
{
	return (uintptr_t)p % ALIGN == 0;
}

/* True when all n bytes at p equal c. */
static int
all_bytes(const void *p, int c, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != (unsigned char)c)
			return 0;
	}
	return 1;
}

static void
test_alignment(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	int all_aligned = 1;

	tap_ok(arena != NULL, "mk_arena_new(0) makes an arena");
	/* Odd sizes would misalign the next allocation if not rounded. */
	for (size_t size = 0; size <= 100; size++) {
		void *p = mk_arena_alloc(arena, size);

		if (p == NULL || !aligned(p))
			all_aligned = 0;
	}
	tap_ok(all_aligned,
	    "allocations of 0..100 bytes are all aligned to %zu",
	    (size_t)ALIGN);
	mk_arena_free(arena);
}

static void
test_many_small(void)
{
	enum {
		COUNT = 1000,
		SIZE = 24
	};
	struct mk_arena *arena = mk_arena_new(256);
	unsigned char *ptrs[COUNT];
	int got_all = 1, intact = 1, all_aligned = 1;

	for (int i = 0; i < COUNT; i++) {
		ptrs[i] = mk_arena_alloc(arena, SIZE);
		if (ptrs[i] == NULL) {
			got_all = 0;
			break;
		}
		if (!aligned(ptrs[i]))
			all_aligned = 0;
		memset(ptrs[i], i & 0xff, SIZE);
	}
	tap_ok(got_all, "%d small allocations over 256-byte blocks succeed",
	    COUNT);
	tap_ok(all_aligned, "and are all aligned");
	/*
	 * Written in order, checked afterwards: an overlap corrupts an earlier
	 * one.
	 */
	for (int i = 0; got_all && i < COUNT; i++) {
		if (!all_bytes(ptrs[i], i & 0xff, SIZE))
			intact = 0;
	}
	tap_ok(got_all && intact, "no two small allocations overlap");
	tap_is_int(mk_arena_used(arena), COUNT * round_up(SIZE),
	    "mk_arena_used counts rounded small allocations");
	mk_arena_free(arena);
}

static void
test_large(void)
{
	struct mk_arena *arena = mk_arena_new(1024);
	unsigned char *small1, *big, *small2, *big2;

	small1 = mk_arena_alloc(arena, 16);
	memset(small1, 0x11, 16);
	/*
	 * A quarter block is 256 bytes: anything above goes to its own block.
	 */
	big = mk_arena_alloc(arena, 4096);
	tap_ok(big != NULL && aligned(big),
	    "a 4096-byte allocation in a 1024-byte-block arena");
	memset(big, 0x22, 4096);
	small2 = mk_arena_alloc(arena, 16);
	tap_ok(small2 != NULL && (small2 < big || small2 >= big + 4096),
	    "a small allocation after a large one lies outside it");
	memset(small2, 0x33, 16);
	big2 = mk_arena_alloc(arena, 300);
	tap_ok(
	    big2 != NULL && aligned(big2), "a 300-byte (> block/4) allocation");
	memset(big2, 0x44, 300);
	tap_ok(all_bytes(small1, 0x11, 16) && all_bytes(big, 0x22, 4096) &&
		all_bytes(small2, 0x33, 16) && all_bytes(big2, 0x44, 300),
	    "large and small allocations keep their contents");
	tap_is_int(mk_arena_used(arena),
	    round_up(16) + round_up(4096) + round_up(16) + round_up(300),
	    "mk_arena_used counts large allocations too");
	tap_ok(mk_arena_alloc(arena, ((size_t)1 << 31) + 1) == NULL,
	    "an absurd size (2 GiB + 1) is refused");
	mk_arena_free(arena);
}

static void
test_calloc(void)
{
	struct mk_arena *arena = mk_arena_new(1024);
	unsigned char *p;

	/*
	 * Dirty the first block, then reset: the next allocation reuses that
	 * memory, so calloc must zero it itself.
	 */
	p = mk_arena_alloc(arena, 200);
	memset(p, 0xAA, 200);
	mk_arena_reset(arena);
	p = mk_arena_calloc(arena, 25, 8);
	tap_ok(
	    p != NULL && all_bytes(p, 0, 200), "calloc zeroes reused memory");
	p = mk_arena_calloc(arena, 10, 100);
	tap_ok(p != NULL && all_bytes(p, 0, 1000),
	    "calloc zeroes a large allocation");
	tap_ok(mk_arena_calloc(arena, SIZE_MAX / 2, 3) == NULL,
	    "calloc with nmemb * size overflowing is NULL");
	tap_ok(mk_arena_calloc(arena, 3, SIZE_MAX / 2) == NULL,
	    "calloc with size * nmemb overflowing the other way is NULL");
	tap_ok(mk_arena_calloc(arena, 0, 8) != NULL,
	    "calloc of zero elements is not NULL");
	mk_arena_free(arena);
}

static void
test_strndup(void)
{
	struct mk_arena *arena = mk_arena_new(0);
	/* no NUL */
	const char source[] = { 'h', 'e', 'l', 'l', 'o', '!', '!' };
	char *s;

	s = mk_arena_strndup(arena, source, 5);
	tap_is_str(s, "hello", "strndup copies len bytes and adds the NUL");
	s = mk_arena_strndup(arena, source, 0);
	tap_is_str(s, "", "strndup of 0 bytes is the empty string");
	s = mk_arena_strndup(arena, "a\0b", 3);
	tap_ok(s != NULL && memcmp(s, "a\0b", 4) == 0,
	    "strndup copies an embedded NUL verbatim");
	tap_ok(mk_arena_strndup(arena, source, SIZE_MAX) == NULL,
	    "strndup of SIZE_MAX bytes is NULL, not a wrapped size");
	mk_arena_free(arena);
}

static void
test_grow(void)
{
	struct mk_arena *arena = mk_arena_new(1024);
	unsigned char *p, *q, *other;
	size_t used;

	p = mk_arena_alloc(arena, 32);
	memset(p, 0x5A, 32);
	used = mk_arena_used(arena);
	q = mk_arena_grow(arena, p, 32, 64);
	tap_ok(q == p,
	    "growing the last allocation with room left stays in place");
	tap_ok(q != NULL && all_bytes(q, 0x5A, 32), "in place: contents kept");
	tap_is_int(mk_arena_used(arena), used + 32,
	    "in place: used grows by the difference");
	memset(q + 32, 0x5A, 32);

	other = mk_arena_alloc(arena, 16);
	memset(other, 0x77, 16);
	p = q;
	q = mk_arena_grow(arena, p, 64, 128);
	tap_ok(q != NULL && q != p,
	    "growing an allocation that is not the last moves it");
	tap_ok(q != NULL && all_bytes(q, 0x5A, 64), "moved: contents copied");
	tap_ok(all_bytes(other, 0x77, 16),
	    "moved: the allocation in the way is untouched");

	/* The last allocation, but its block cannot hold the new size. */
	p = q;
	memset(p, 0x5B, 128);
	q = mk_arena_grow(arena, p, 128, 5000);
	tap_ok(q != NULL && q != p && all_bytes(q, 0x5B, 128),
	    "growing past the block moves it to a large block with contents");

	tap_ok(mk_arena_grow(arena, q, 5000, 100) == q,
	    "shrinking returns the same pointer");
	p = mk_arena_grow(arena, NULL, 0, 40);
	tap_ok(p != NULL && aligned(p), "growing NULL allocates");
	mk_arena_free(arena);
}

static char cleanup_log[32];

static void
record_cleanup(void *resource)
{
	size_t len = strlen(cleanup_log);

	if (len + 1 < sizeof(cleanup_log)) {
		cleanup_log[len] = *(const char *)resource;
		cleanup_log[len + 1] = '\0';
	}
}

static void
free_cleanup(void *resource)
{
	free(resource);
}

static void
test_cleanups(void)
{
	static const char names[] = "123";
	struct mk_arena *arena = mk_arena_new(256);
	int rc = 0;
	void *heap;

	cleanup_log[0] = '\0';
	for (int i = 0; i < 3; i++)
		rc |= mk_arena_add_cleanup(
		    arena, record_cleanup, (void *)&names[i]);
	tap_is_int(rc, 0, "three cleanups registered");
	/* Spill to other blocks so reset has something to free besides. */
	for (int i = 0; i < 50; i++)
		(void)mk_arena_alloc(arena, 48);
	tap_is_str(cleanup_log, "", "no cleanup runs before reset");
	mk_arena_reset(arena);
	tap_is_str(cleanup_log, "321",
	    "reset runs the cleanups last registered first");
	mk_arena_reset(arena);
	tap_is_str(
	    cleanup_log, "321", "a second reset does not run them again");

	cleanup_log[0] = '\0';
	(void)mk_arena_add_cleanup(arena, record_cleanup, (void *)&names[0]);
	(void)mk_arena_add_cleanup(arena, record_cleanup, (void *)&names[1]);
	/* A leak checker sees it if free skips the cleanups. */
	heap = malloc(10);
	(void)mk_arena_add_cleanup(arena, free_cleanup, heap);
	(void)mk_arena_add_cleanup(arena, record_cleanup, (void *)&names[2]);
	mk_arena_free(arena);
	tap_is_str(
	    cleanup_log, "321", "free runs the cleanups last registered first");
	mk_arena_free(NULL);
	tap_ok(1, "mk_arena_free(NULL) is a no-op");
}

static void
test_reset_reuse(void)
{
	struct mk_arena *arena = mk_arena_new(512);
	void *first, *again;
	int ok = 1;

	first = mk_arena_alloc(arena, 64);
	for (int i = 0; i < 40; i++)
		(void)mk_arena_alloc(arena, 100);
	(void)mk_arena_alloc(arena, 10000);
	tap_ok(mk_arena_used(arena) > 512,
	    "used spans several blocks before reset");
	mk_arena_reset(arena);
	tap_is_int(mk_arena_used(arena), 0, "used is 0 after reset");
	again = mk_arena_alloc(arena, 64);
	tap_ok(again == first,
	    "after reset the first block is reused (no malloc in steady "
	    "state)");
	mk_arena_reset(arena);
	/* Several rounds: reset must leave the block chain consistent. */
	for (int round = 0; round < 5; round++) {
		unsigned char *ptrs[30];

		for (int i = 0; i < 30; i++) {
			ptrs[i] = mk_arena_alloc(arena, 90);
			if (ptrs[i] == NULL) {
				ok = 0;
				break;
			}
			memset(ptrs[i], round * 30 + i, 90);
		}
		for (int i = 0; ok && i < 30; i++) {
			if (!all_bytes(ptrs[i], round * 30 + i, 90))
				ok = 0;
		}
		if (mk_arena_used(arena) != 30 * round_up(90))
			ok = 0;
		mk_arena_reset(arena);
	}
	tap_ok(ok, "five rounds of allocate, check and reset all work");
	mk_arena_free(arena);
}

static void
test_used(void)
{
	struct mk_arena *arena = mk_arena_new(0);

	tap_is_int(mk_arena_used(arena), 0, "a new arena has used nothing");
	(void)mk_arena_alloc(arena, 1);
	(void)mk_arena_alloc(arena, 17);
	(void)mk_arena_alloc(arena, 100);
	tap_is_int(mk_arena_used(arena),
	    round_up(1) + round_up(17) + round_up(100),
	    "used is the sum of the rounded sizes");
	(void)mk_arena_alloc(arena, 0);
	tap_is_int(mk_arena_used(arena),
	    round_up(1) + round_up(17) + round_up(100) + ALIGN,
	    "a 0-byte allocation takes one alignment unit");
	mk_arena_free(arena);
}

int
main(void)
{
	test_alignment();
	test_many_small();
	test_large();
	test_calloc();
	test_strndup();
	test_grow();
	test_cleanups();
	test_reset_reuse();
	test_used();
	return tap_done();
}
