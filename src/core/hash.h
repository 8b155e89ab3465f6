/*
 * FNV-1a, 64 bits (core layer): the one non-cryptographic hash of the
 * project — table slots, checksums against truncation, feature ids. It
 * spreads and detects accidents; it resists no attacker (use HMAC there).
 * Header-only: the loops are short and inlined where they run per byte.
 */
#ifndef MK_HASH_H
#define MK_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MK_FNV1A64_INIT 0xcbf29ce484222325ULL
#define MK_FNV1A64_PRIME 0x100000001b3ULL

/* Continues hash h over n bytes at p. */
static inline uint64_t
mk_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
	const unsigned char *bytes = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ bytes[i]) * MK_FNV1A64_PRIME;
	return h;
}

/* The hash of n bytes at p. */
static inline uint64_t
mk_fnv1a64(const void *p, size_t n)
{
	return mk_fnv1a64_update(MK_FNV1A64_INIT, p, n);
}

#endif
