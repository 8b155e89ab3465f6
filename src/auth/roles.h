/*
 * Roles and permissions (auth layer): the one table of what each role of
 * the contract may do, and the identity a verified token yields.
 */
#ifndef MK_ROLES_H
#define MK_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a caller must hold to use a route (a route table column). */
enum mk_permission {
	MK_PERM_NONE, /* anyone, anonymous included */
	MK_PERM_READ,
	MK_PERM_WRITE,
	MK_PERM_DELETE,
	MK_PERM_ADMIN,
	MK_PERM__MAX
};

enum mk_role {
	MK_ROLE_USER,
	MK_ROLE_MODERATOR,
	MK_ROLE_ADMIN,
	MK_ROLE__MAX
};

/*
 * Who is calling, as a verified token says. Strings live in the request arena.
 */
struct mk_identity {
	int64_t user_id; /* > 0 */
	enum mk_role role;
	const char *email; /* NULL when the token has none */
	const char *name;  /* NULL when the token has none */
};

/* Parses "admin", "moderator", "user" (exactly). Returns true on a match. */
bool mk_role_parse(const char *name, size_t len, enum mk_role *out);

const char *mk_role_name(enum mk_role role);

/* True when role holds permission (MK_PERM_NONE: always). */
bool mk_role_allows(enum mk_role role, enum mk_permission permission);

/* The name of a permission ("read"), for /api/me. */
const char *mk_permission_name(enum mk_permission permission);

#endif
