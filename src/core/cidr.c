/*
 * Address blocks (core layer); see cidr.h.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"

/* Parses "192.0.2.0/24", "::1", "10.1.2.3". Returns 0 or -1. */
static int
parse_one(const char *text, size_t len, struct mk_cidr *out)
{
	char buf[64], *slash;
	unsigned max;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		long prefix = strtol(slash + 1, &end, 10);

		if (slash[1] == '\0' || *end != '\0' || prefix < 0 ||
		    prefix > (long)max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	return 0;
}

int
mk_cidr_list_parse(const char *text, struct mk_cidr_list *out, const char **bad,
    size_t *bad_len)
{
	size_t len;

	out->n = 0;
	for (const char *p = text; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (out->n == MK_CIDR_LIST_MAX ||
		    parse_one(p, len, &out->blocks[out->n]) != 0) {
			*bad = p;
			*bad_len = len;
			return -1;
		}
		out->n++;
	}
	return 0;
}

static bool
contains(const struct mk_cidr *net, const char *address)
{
	unsigned char addr[16];
	unsigned full, rest;

	if (inet_pton(net->family, address, addr) != 1)
		return false;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(addr, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((addr[full] ^ net->addr[full]) & (0xFF << (8 - rest))) == 0;
}

bool
mk_cidr_list_contains(const struct mk_cidr_list *list, const char *address)
{
	for (size_t i = 0; i < list->n; i++) {
		if (contains(&list->blocks[i], address))
			return true;
	}
	return false;
}
