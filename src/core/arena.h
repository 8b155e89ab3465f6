/*
 * Per-request arena (core layer), after nginx's ngx_palloc. A request's
 * memory comes from one arena made when the request begins and reset or
 * freed when its response has been handed to the connection; nothing
 * frees individual allocations. Resources that are not arena memory
 * (json-c roots, result sets) register a cleanup, run in reverse order of
 * registration on reset and free. Worker-lifetime objects must never keep
 * a pointer into an arena.
 */
#ifndef MK_ARENA_H
#define MK_ARENA_H

#include <stddef.h>

struct mk_arena;

/*
 * A cleanup run by mk_arena_reset() and mk_arena_free(), last registered
 * first.
 */
typedef void (*mk_arena_cleanup_fn)(void *resource);

/*
 * Makes an arena whose blocks hold block_size bytes (0 picks 8 KiB).
 * Returns NULL when out of memory; free with mk_arena_free().
 */
struct mk_arena *mk_arena_new(size_t block_size);

/* Runs the cleanups and frees the arena and all its memory. NULL is a no-op. */
void mk_arena_free(struct mk_arena *arena);

/*
 * Runs the cleanups and forgets every allocation, keeping the first block
 * for the next request so that a steady state allocates nothing.
 */
void mk_arena_reset(struct mk_arena *arena);

/*
 * Returns size bytes aligned for any type, or NULL when out of memory or
 * when size is absurd. The memory lives until the next reset or free.
 */
void *mk_arena_alloc(struct mk_arena *arena, size_t size);

/* As mk_arena_alloc(), zero-filled; NULL also when nmemb * size overflows. */
void *mk_arena_calloc(struct mk_arena *arena, size_t nmemb, size_t size);

/* A NUL-terminated copy of len bytes of s, or NULL when out of memory. */
char *mk_arena_strndup(struct mk_arena *arena, const char *s, size_t len);

/*
 * Grows the most recent allocation ptr from old_size to new_size in place
 * when it is the last thing allocated and its block has room, else moves
 * it. Returns the (possibly new) pointer or NULL when out of memory, in
 * which case ptr stays valid.
 */
void *mk_arena_grow(
    struct mk_arena *arena, void *ptr, size_t old_size, size_t new_size);

/*
 * Registers fn(resource) to run at reset or free. Returns 0, or -1 when
 * out of memory, in which case fn has not been registered and the caller
 * must release the resource itself.
 */
int mk_arena_add_cleanup(
    struct mk_arena *arena, mk_arena_cleanup_fn fn, void *resource);

/* Bytes handed out since the last reset (for tests and metrics). */
size_t mk_arena_used(const struct mk_arena *arena);

#endif
