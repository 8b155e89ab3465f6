/*
 * The market resource (markets layer); see model.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "markets/model.h"

/*
 * The fields by enum mk_market_field: their keys (the contract's names)
 * and where struct mk_market keeps them.
 */
static const struct mk_json_member market_members[MK_MARKET_FIELD__MAX] = {
	[MK_MARKET_ID] = MK_JSON_MEMBER(struct mk_market, id),
	[MK_MARKET_NAME] = MK_JSON_MEMBER(struct mk_market, name),
	[MK_MARKET_DESCRIPTION] = MK_JSON_MEMBER(struct mk_market, description),
	[MK_MARKET_STATUS] = MK_JSON_MEMBER(struct mk_market, status),
	[MK_MARKET_VOLUME] = MK_JSON_MEMBER(struct mk_market, volume),
	[MK_MARKET_CREATOR_ID] = MK_JSON_MEMBER(struct mk_market, creator_id),
	[MK_MARKET_END_DATE] = MK_JSON_MEMBER(struct mk_market, end_date),
	[MK_MARKET_CREATED_AT] = MK_JSON_MEMBER(struct mk_market, created_at),
	[MK_MARKET_UPDATED_AT] = MK_JSON_MEMBER(struct mk_market, updated_at),
};

/* "email" last: when the reader may not see it, the first two go out. */
static const struct mk_json_member user_members[] = {
	MK_JSON_MEMBER(struct mk_user, id),
	MK_JSON_MEMBER(struct mk_user, name),
	MK_JSON_MEMBER(struct mk_user, email),
};

static const struct mk_json_member position_members[] = {
	MK_JSON_MEMBER(struct mk_position, id),
	MK_JSON_MEMBER(struct mk_position, market_id),
	MK_JSON_MEMBER(struct mk_position, user_id),
	MK_JSON_MEMBER(struct mk_position, side),
	MK_JSON_MEMBER(struct mk_position, amount),
	MK_JSON_MEMBER(struct mk_position, created_at),
};

const char *
mk_market_field_name(enum mk_market_field field)
{
	return (unsigned)field < MK_MARKET_FIELD__MAX
	    ? market_members[field].name
	    : "?";
}

enum mk_err
mk_market_fields_parse(
    const char *list, unsigned *fields, const char **bad, size_t *bad_len)
{
	const char *p = list;

	*fields = 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		int found = -1;

		for (int f = 0; f < MK_MARKET_FIELD__MAX && len > 0; f++) {
			const char *name = market_members[f].name;

			if (strlen(name) == len && memcmp(name, p, len) == 0)
				found = f;
		}
		if (found < 0) {
			*bad = p;
			*bad_len = len;
			return MK_EBADREQUEST;
		}
		*fields |= MK_MARKET_FIELD_BIT(found);
		if (p[len] == '\0')
			return MK_OK;
		p += len + 1;
	}
}

void
mk_user_json(struct mk_buf *out, const struct mk_user *user)
{
	mk_json_object(out, user, user_members, user->email_visible ? 3 : 2);
}

void
mk_market_json(struct mk_buf *out, const void *item)
{
	const struct mk_market *m = item;
	bool first = true;

	mk_buf_putc(out, '{');
	mk_json_members(
	    out, &first, m, market_members, MK_MARKET_FIELD__MAX, m->fields);
	if (m->creator != NULL) {
		mk_json_key(out, &first, "creator");
		mk_user_json(out, m->creator);
	}
	mk_buf_putc(out, '}');
}

static const char *const sort_names[MK_SORT__MAX] = {
	[MK_SORT_CREATED_DESC] = "-created_at",
	[MK_SORT_CREATED_ASC] = "created_at",
	[MK_SORT_VOLUME_DESC] = "-volume",
	[MK_SORT_VOLUME_ASC] = "volume",
	[MK_SORT_NAME_DESC] = "-name",
	[MK_SORT_NAME_ASC] = "name",
};

bool
mk_market_sort_parse(const char *text, enum mk_market_sort *out)
{
	for (int s = 0; s < MK_SORT__MAX; s++) {
		if (strcmp(text, sort_names[s]) == 0) {
			*out = (enum mk_market_sort)s;
			return true;
		}
	}
	return false;
}

const char *
mk_market_sort_name(enum mk_market_sort sort)
{
	return (unsigned)sort < MK_SORT__MAX ? sort_names[sort] : "?";
}

const char *
mk_market_status_parse(const char *text)
{
	static const char *const statuses[] = { "active", "closed",
		"resolved" };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (strcmp(text, statuses[i]) == 0)
			return statuses[i];
	}
	return NULL;
}

void
mk_position_json(struct mk_buf *out, const void *position)
{
	mk_json_object(out, position, position_members,
	    sizeof(position_members) / sizeof(position_members[0]));
}

void
mk_market_etag(uint64_t version, char *out)
{
	(void)snprintf(out, 32, "\"v%llu\"", (unsigned long long)version);
}

/*
 * Scans a list of entity tags for etag; weak lets a W/ tag match its
 * opaque part (RFC 9110 8.8.3.2's weak comparison).
 */
static bool
etag_list_matches(const char *header, const char *etag, bool weak)
{
	size_t etag_len = strlen(etag);
	const char *p = header;

	for (;;) {
		size_t len;
		const char *tag;

		p += strspn(p, " \t,");
		if (*p == '\0')
			return false;
		len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		tag = p;
		p += len;
		if (len == 1 && tag[0] == '*')
			return true;
		if (weak && len > 2 && tag[0] == 'W' && tag[1] == '/') {
			tag += 2;
			len -= 2;
		}
		if (len == etag_len && memcmp(tag, etag, len) == 0)
			return true;
	}
}

bool
mk_etag_matches(const char *header, const char *etag)
{
	return etag_list_matches(header, etag, false);
}

bool
mk_etag_matches_weak(const char *header, const char *etag)
{
	return etag_list_matches(header, etag, true);
}

bool
mk_market_etag_matches(const char *header, uint64_t version)
{
	char mine[32];

	mk_market_etag(version, mine);
	return mk_etag_matches(header, mine);
}

enum mk_err
mk_market_doc_with_score(struct mk_arena *arena,
    const struct mk_market_doc *doc, float score, struct mk_market_doc *out)
{
	char member[40];
	int len;
	char *json;

	if (doc->json_len < 2 || doc->json[doc->json_len - 1] != '}')
		return MK_EINTERNAL;
	len = snprintf(member, sizeof(member), "%s\"score\":%.6f}",
	    doc->json_len > 2 ? "," : "", (double)score);
	if (len < 0 || (size_t)len >= sizeof(member))
		return MK_EINTERNAL;
	json = mk_arena_alloc(arena, doc->json_len - 1 + (size_t)len + 1);
	if (json == NULL)
		return MK_ENOMEM;
	memcpy(json, doc->json, doc->json_len - 1);
	memcpy(json + doc->json_len - 1, member, (size_t)len + 1);
	*out = *doc;
	out->json = json;
	out->json_len = doc->json_len - 1 + (size_t)len;
	return MK_OK;
}

void
mk_market_index_job(int64_t id, char *payload, char *dedup_key)
{
	(void)snprintf(payload, MK_MARKET_INDEX_JOB_KEY_MAX,
	    "{\"market_id\":%lld}", (long long)id);
	(void)snprintf(dedup_key, MK_MARKET_INDEX_JOB_KEY_MAX,
	    MK_MARKET_INDEX_JOB ":%lld", (long long)id);
}
