/*
 * Names of the error codes (core layer), for log lines only, and the
 * reason formatter of start-up code. Statuses and client-facing codes
 * live in src/http/response.c.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/err.h"

static const char *const err_names[MK_ERR__MAX] = {
	[MK_OK] = "MK_OK",
	[MK_EBADREQUEST] = "MK_EBADREQUEST",
	[MK_EBADJSON] = "MK_EBADJSON",
	[MK_EINVAL] = "MK_EINVAL",
	[MK_EAUTH] = "MK_EAUTH",
	[MK_EFORBIDDEN] = "MK_EFORBIDDEN",
	[MK_ENOTFOUND] = "MK_ENOTFOUND",
	[MK_EMETHOD] = "MK_EMETHOD",
	[MK_ECONFLICT] = "MK_ECONFLICT",
	[MK_EPRECONDITION] = "MK_EPRECONDITION",
	[MK_ETOOLARGE] = "MK_ETOOLARGE",
	[MK_EMEDIATYPE] = "MK_EMEDIATYPE",
	[MK_EHEADERS] = "MK_EHEADERS",
	[MK_EIDEMPOTENCY] = "MK_EIDEMPOTENCY",
	[MK_EOVERFLOW] = "MK_EOVERFLOW",
	[MK_ERATELIMIT] = "MK_ERATELIMIT",
	[MK_EUNAVAIL] = "MK_EUNAVAIL",
	[MK_ENOMEM] = "MK_ENOMEM",
	[MK_EINTERNAL] = "MK_EINTERNAL",
	[MK_EPENDING] = "MK_EPENDING",
};

const char *
mk_err_name(enum mk_err err)
{
	if ((unsigned)err >= MK_ERR__MAX)
		return "MK_E?";
	return err_names[err];
}

void
mk_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
