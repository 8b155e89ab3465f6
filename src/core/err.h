/*
 * Error codes (core layer). One enum is returned by everything in the
 * project that can fail; results travel through out-parameters. Only
 * src/http/response.c maps these codes to HTTP statuses and contract codes.
 */
#ifndef MK_ERR_H
#define MK_ERR_H

enum mk_err {
	MK_OK = 0,
	MK_EBADREQUEST,   /* a malformed request or query parameter */
	MK_EBADJSON,      /* the body is not JSON */
	MK_EINVAL,        /* a field fails its rule (validation) */
	MK_EAUTH,         /* no, malformed, expired or badly signed token */
	MK_EFORBIDDEN,    /* authenticated but not allowed */
	MK_ENOTFOUND,     /* unknown id or route */
	MK_EMETHOD,       /* known path, wrong method */
	MK_ECONFLICT,     /* unique or state conflict */
	MK_EPRECONDITION, /* If-Match did not match */
	MK_ETOOLARGE,     /* body over the configured cap */
	MK_EMEDIATYPE,    /* body sent without application/json */
	MK_EHEADERS,      /* request header fields too large */
	MK_EIDEMPOTENCY,  /* Idempotency-Key reused with another body */
	/* a write would take a stored number past its type (a 409) */
	MK_EOVERFLOW,
	MK_ERATELIMIT, /* over the rate limit */
	MK_EUNAVAIL,   /* a backend is unreachable after retries */
	MK_ENOMEM,     /* out of memory */
	MK_EINTERNAL,  /* a bug */
	/* not failed: the answer comes later (a suspended request) */
	MK_EPENDING,
	MK_ERR__MAX
};

#include <stddef.h>

/*
 * Formats a reason into err (errlen bytes, always NUL-terminated when
 * errlen > 0): the one helper behind every "…, char *err, size_t errlen"
 * out-parameter of configuration and start-up code.
 */
void mk_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The symbolic name of an error code ("MK_ENOTFOUND"), for logs. */
const char *mk_err_name(enum mk_err err);

#endif
