/*
 * GET /api/me (http layer); see me.h. The route requires a token (read
 * permission, which every role has), so an identity is always present.
 */
#include "core/json.h"
#include "http/me.h"
#include "http/request.h"
#include "http/response.h"

enum mk_err
mk_me_get(void *context, struct mk_request *req, struct mk_response *resp)
{
	const struct mk_identity *who = &req->identity;
	bool first = true;

	(void)context;
	/* Per caller: no shared cache may keep it. */
	mk_response_header(resp, "Cache-Control", "private, no-store");
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"id\":");
	mk_buf_put_i64(&resp->body, who->user_id);
	mk_buf_puts(&resp->body, ",\"role\":");
	mk_json_cstr(&resp->body, mk_role_name(who->role));
	mk_buf_puts(&resp->body, ",\"email\":");
	mk_json_cstr(&resp->body, who->email);
	mk_buf_puts(&resp->body, ",\"permissions\":[");
	for (int p = MK_PERM_READ; p < MK_PERM__MAX; p++) {
		if (!mk_role_allows(who->role, (enum mk_permission)p))
			continue;
		if (!first)
			mk_buf_putc(&resp->body, ',');
		mk_json_cstr(
		    &resp->body, mk_permission_name((enum mk_permission)p));
		first = false;
	}
	mk_buf_puts(&resp->body, "]}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}
