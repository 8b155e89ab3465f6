/*
 * Unit tests for roles and permissions (src/auth/roles.c). The table below
 * is API.md's, written out cell by cell: admin may read, write, delete and
 * administer; a moderator may read, write and delete; a user may read and
 * write; MK_PERM_NONE (public routes) is allowed to everyone. Role names
 * in tokens match exactly: no case folding, no trimming, no prefixes, and
 * the length given is the length compared (an embedded NUL is a mismatch).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth/roles.h"
#include "tap.h"

#define LIT(s) s, sizeof(s) - 1

struct grant_case {
	enum mk_role role;
	enum mk_permission permission;
	bool allowed;
};

static const struct grant_case grant_cases[] = {
	{ MK_ROLE_ADMIN, MK_PERM_NONE, true },
	{ MK_ROLE_ADMIN, MK_PERM_READ, true },
	{ MK_ROLE_ADMIN, MK_PERM_WRITE, true },
	{ MK_ROLE_ADMIN, MK_PERM_DELETE, true },
	{ MK_ROLE_ADMIN, MK_PERM_ADMIN, true },
	{ MK_ROLE_MODERATOR, MK_PERM_NONE, true },
	{ MK_ROLE_MODERATOR, MK_PERM_READ, true },
	{ MK_ROLE_MODERATOR, MK_PERM_WRITE, true },
	{ MK_ROLE_MODERATOR, MK_PERM_DELETE, true },
	{ MK_ROLE_MODERATOR, MK_PERM_ADMIN, false },
	{ MK_ROLE_USER, MK_PERM_NONE, true },
	{ MK_ROLE_USER, MK_PERM_READ, true },
	{ MK_ROLE_USER, MK_PERM_WRITE, true },
	{ MK_ROLE_USER, MK_PERM_DELETE, false },
	{ MK_ROLE_USER, MK_PERM_ADMIN, false },
	/* Out of range: nothing but public routes. */
	{ MK_ROLE__MAX, MK_PERM_NONE, true },
	{ MK_ROLE__MAX, MK_PERM_READ, false },
	{ MK_ROLE_ADMIN, MK_PERM__MAX, false },
};

static void
test_grants(void)
{
	size_t n = sizeof(grant_cases) / sizeof(grant_cases[0]);
	int seen[MK_ROLE__MAX][MK_PERM__MAX] = { { 0 } };

	for (size_t i = 0; i < n; i++) {
		const struct grant_case *c = &grant_cases[i];

		tap_is_int(mk_role_allows(c->role, c->permission), c->allowed,
		    "%s %s %s", mk_role_name(c->role),
		    c->allowed ? "may" : "may not",
		    mk_permission_name(c->permission));
		if ((unsigned)c->role < MK_ROLE__MAX &&
		    (unsigned)c->permission < MK_PERM__MAX)
			seen[c->role][c->permission]++;
	}
	/* The table above must be the whole cross product, once each. */
	for (int r = 0; r < MK_ROLE__MAX; r++) {
		for (int p = 0; p < MK_PERM__MAX; p++) {
			tap_is_int(seen[r][p], 1, "the table has %s x %s once",
			    mk_role_name((enum mk_role)r),
			    mk_permission_name((enum mk_permission)p));
		}
	}
}

struct name_case {
	const char *text;
	size_t len;
	bool ok;
	enum mk_role role;
};

static const struct name_case name_cases[] = {
	{ LIT("admin"), true, MK_ROLE_ADMIN },
	{ LIT("moderator"), true, MK_ROLE_MODERATOR },
	{ LIT("user"), true, MK_ROLE_USER }, { LIT("Admin"), false, 0 },
	{ LIT("ADMIN"), false, 0 }, { LIT("User"), false, 0 },
	{ LIT("admin "), false, 0 }, { LIT(" admin"), false, 0 },
	{ LIT("admin\n"), false, 0 }, { LIT(""), false, 0 },
	{ LIT("adm"), false, 0 }, { LIT("administrator"), false, 0 },
	{ LIT("users"), false, 0 }, { LIT("mod"), false, 0 },
	{ LIT("root"), false, 0 }, { LIT("none"), false, 0 },
	{ LIT("admin\0"), false, 0 }, { LIT("user\0admin"), false, 0 },
	{ "useradmin", 4, true, MK_ROLE_USER }, /* the length is what counts */
};

static void
test_parse(void)
{
	size_t n = sizeof(name_cases) / sizeof(name_cases[0]);

	for (size_t i = 0; i < n; i++) {
		const struct name_case *c = &name_cases[i];
		enum mk_role got = MK_ROLE__MAX;
		bool ok = mk_role_parse(c->text, c->len, &got);

		tap_is_int(ok, c->ok, "parse case %zu ('%.*s', %zu bytes): %s",
		    i, (int)c->len, c->text, c->len,
		    c->ok ? "accepted" : "refused");
		if (c->ok)
			tap_is_int(got, c->role, "parse case %zu: role", i);
	}
}

static void
test_names(void)
{
	static const char *const role_names[MK_ROLE__MAX] = {
		[MK_ROLE_USER] = "user",
		[MK_ROLE_MODERATOR] = "moderator",
		[MK_ROLE_ADMIN] = "admin",
	};
	static const char *const permission_names[MK_PERM__MAX] = {
		[MK_PERM_NONE] = "none",
		[MK_PERM_READ] = "read",
		[MK_PERM_WRITE] = "write",
		[MK_PERM_DELETE] = "delete",
		[MK_PERM_ADMIN] = "admin",
	};

	for (int r = 0; r < MK_ROLE__MAX; r++) {
		const char *name = mk_role_name((enum mk_role)r);
		enum mk_role back = MK_ROLE__MAX;

		tap_is_str(name, role_names[r], "mk_role_name of role %d", r);
		tap_ok(name != NULL &&
			mk_role_parse(name, strlen(name), &back) &&
			back == (enum mk_role)r,
		    "the name of role %d parses back to it", r);
	}
	tap_is_str(
	    mk_role_name(MK_ROLE__MAX), "?", "an out-of-range role is named ?");
	for (int p = 0; p < MK_PERM__MAX; p++) {
		tap_is_str(mk_permission_name((enum mk_permission)p),
		    permission_names[p], "mk_permission_name of permission %d",
		    p);
	}
	tap_is_str(mk_permission_name(MK_PERM__MAX), "?",
	    "an out-of-range permission is named ?");
}

int
main(void)
{
	test_grants();
	test_parse();
	test_names();
	return tap_done();
}
