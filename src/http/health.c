/*
 * Health endpoints (http layer); see health.h.
 */
#include "http/health.h"
#include "http/response.h"

enum mk_err
mk_health_live(struct mk_app *app, struct mk_request *req,
    struct mk_response *resp)
{
	(void)app;
	(void)req;
	mk_response_header(resp, "Cache-Control", "no-store");
	mk_response_begin_data(resp, 200);
	mk_buf_puts(&resp->body, "{\"status\":\"ok\"}");
	mk_response_end_data(resp, NULL);
	return MK_OK;
}
