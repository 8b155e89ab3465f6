/*
 * Roles and permissions (auth layer); see roles.h. API.md: admin → read,
 * write, delete, admin; moderator → read, write, delete; user → read, write.
 */
#include <string.h>

#include "auth/roles.h"

#define P(perm) (1u << (perm))

static const struct {
	const char *name;
	unsigned permissions;
} roles[MK_ROLE__MAX] = {
	[MK_ROLE_USER] = { "user", P(MK_PERM_READ) | P(MK_PERM_WRITE) },
	[MK_ROLE_MODERATOR] = { "moderator",
	    P(MK_PERM_READ) | P(MK_PERM_WRITE) | P(MK_PERM_DELETE) },
	[MK_ROLE_ADMIN] = { "admin",
	    P(MK_PERM_READ) | P(MK_PERM_WRITE) | P(MK_PERM_DELETE) |
		P(MK_PERM_ADMIN) },
};

static const char *const permission_names[MK_PERM__MAX] = {
	[MK_PERM_NONE] = "none",
	[MK_PERM_READ] = "read",
	[MK_PERM_WRITE] = "write",
	[MK_PERM_DELETE] = "delete",
	[MK_PERM_ADMIN] = "admin",
};

bool
mk_role_parse(const char *name, size_t len, enum mk_role *out)
{
	for (int r = 0; r < MK_ROLE__MAX; r++) {
		if (strlen(roles[r].name) == len &&
		    memcmp(roles[r].name, name, len) == 0) {
			*out = (enum mk_role)r;
			return true;
		}
	}
	return false;
}

const char *
mk_role_name(enum mk_role role)
{
	return (unsigned)role < MK_ROLE__MAX ? roles[role].name : "?";
}

bool
mk_role_allows(enum mk_role role, enum mk_permission permission)
{
	if (permission == MK_PERM_NONE)
		return true;
	if ((unsigned)role >= MK_ROLE__MAX ||
	    (unsigned)permission >= MK_PERM__MAX)
		return false;
	return (roles[role].permissions & P(permission)) != 0;
}

const char *
mk_permission_name(enum mk_permission permission)
{
	return (unsigned)permission < MK_PERM__MAX
	    ? permission_names[permission]
	    : "?";
}
