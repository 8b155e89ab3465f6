/*
 * Address blocks (core layer): lists of IPv4/IPv6 addresses and CIDR
 * blocks from the configuration (trusted_proxies, metrics_allow), and the
 * test of an address against them. Plain values: no allocation.
 */
#ifndef MK_CIDR_H
#define MK_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#define MK_CIDR_LIST_MAX 64

struct mk_cidr {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct mk_cidr_list {
	struct mk_cidr blocks[MK_CIDR_LIST_MAX];
	size_t n;
};

/*
 * Parses "192.0.2.0/24, ::1 10.1.2.3" (comma- or blank-separated) into
 * *out. Returns 0, or -1 with the bad entry at *bad (*bad_len bytes) —
 * also for more than MK_CIDR_LIST_MAX entries.
 */
int mk_cidr_list_parse(const char *text, struct mk_cidr_list *out,
    const char **bad, size_t *bad_len);

/* True when address (text) lies in one of the list's blocks. */
bool mk_cidr_list_contains(
    const struct mk_cidr_list *list, const char *address);

#endif
