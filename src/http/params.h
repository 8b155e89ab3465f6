/*
 * Query and path parameters as handlers read them (http layer): the
 * number forms the contract allows and the 400 that names a bad
 * parameter. Every module's handlers use these, so that an id or a limit
 * is read one way across the API. Messages live in the request arena.
 */
#ifndef MK_HTTP_PARAMS_H
#define MK_HTTP_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct mk_request;

/*
 * Parses a canonical decimal integer in [min, max]: digits only, no sign,
 * no leading zero, no exponent ("1e2" is not a number here).
 */
bool mk_param_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a path id: a canonical integer in 1..INT64_MAX. */
bool mk_param_id(const char *text, int64_t *out);

/* Sets a 400 message naming the parameter; returns MK_EBADREQUEST. */
enum mk_err mk_param_bad(
    struct mk_request *req, const char *name, const char *why);

/*
 * The value of a query parameter given at most once (*value NULL when
 * absent); a repeated one is a 400 naming it.
 */
enum mk_err mk_param_single(
    struct mk_request *req, const char *name, const char **value);

#endif
