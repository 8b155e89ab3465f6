/*
 * Read-your-writes over replicas (http layer); see consistency.h.
 */
#include <stdio.h>
#include <time.h>

#include "auth/ratelimit.h"
#include "http/consistency.h"
#include "http/request.h"
#include "http/response.h"
#include "store/cache.h"
#include "store/replicas.h"

/* "w:<sub>": the mark of a client's last write. */
static size_t
mark_key(int64_t user_id, char *key, size_t size)
{
	int len = snprintf(key, size, "w:%lld", (long long)user_id);

	return len > 0 && (size_t)len < size ? (size_t)len : 0;
}

void
mk_consistency_begin(
    const struct mk_consistency *c, const struct mk_request *req)
{
	if (c->replicas != NULL)
		mk_replicas_pin(c->replicas, req->identity.user_id > 0);
}

void
mk_consistency_hit(const struct mk_consistency *c,
    struct mk_rate_limiter *limiter, const char *client, struct mk_request *req,
    struct mk_rate_decision *out)
{
	char key[32];
	size_t key_len;
	bool wrote = true;

	if (c->replicas == NULL || req->identity.user_id <= 0 ||
	    (req->method != MK_METHOD_GET && req->method != MK_METHOD_HEAD) ||
	    (key_len = mark_key(req->identity.user_id, key, sizeof(key))) ==
		0) {
		mk_ratelimit_hit(limiter, client, (int64_t)time(NULL), out);
		return;
	}
	mk_ratelimit_hit_seeing(limiter, client, (int64_t)time(NULL),
	    req->arena, key, key_len, out, &wrote);
	/*
	 * With a server out of the ring (or just back), the mark may sit on
	 * a server this lookup did not ask: no answer is not "no write".
	 * Costs no round trip (store/cache.c, mk_cache_degraded).
	 */
	if (!wrote && c->cache != NULL && mk_cache_degraded(c->cache))
		wrote = true;
	mk_replicas_pin(c->replicas, wrote);
}

void
mk_consistency_wrote(const struct mk_consistency *c,
    const struct mk_request *req, const struct mk_response *resp)
{
	char key[32];
	size_t key_len;

	if (c->replicas == NULL || c->cache == NULL ||
	    req->identity.user_id <= 0 || req->method == MK_METHOD_GET ||
	    req->method == MK_METHOD_HEAD || req->method == MK_METHOD_OPTIONS ||
	    resp->status < 200 || resp->status > 299 ||
	    (key_len = mark_key(req->identity.user_id, key, sizeof(key))) == 0)
		return;
	/*
	 * A mark that cannot be stored (memcached down, a server out) costs
	 * nothing more: the failure leaves the pool degraded for longer than
	 * a mark lives, and the client's next read stays on the primary.
	 */
	(void)mk_cache_set(c->cache, key, key_len, "1", 1, c->window_s);
}
