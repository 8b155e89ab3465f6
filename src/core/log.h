/*
 * Structured logging (core layer). Every line is one JSON object written
 * with a single write(2) to a file opened O_APPEND (or stderr), so lines
 * from the master and all workers interleave whole. The log is process
 * state: opened at start, reopened on SIGUSR1 (after logrotate moved the
 * file) and on reload when the path changes.
 */
#ifndef MK_LOG_H
#define MK_LOG_H

#include <stdint.h>

enum mk_log_level {
	MK_LOG_DEBUG,
	MK_LOG_INFO,
	MK_LOG_WARN,
	MK_LOG_ERROR,
	MK_LOG_LEVEL__MAX
};

/* One request's line: everything the log middleware knows at the end. */
struct mk_access_record {
	const char *request_id;
	const char *method;
	const char *route;  /* the route's pattern, or NULL when none matched */
	const char *path;   /* as the client sent it, before decoding */
	const char *client; /* the client's address; NULL: unknown */
	int status;
	uint64_t bytes; /* the response body's size as sent */
	uint64_t duration_us;
	int64_t user_id;   /* 0 when anonymous */
	const char *error; /* internal reason, for the log only; may be NULL */
};

/*
 * Opens path for appending ("" or "-" means stderr) and sets the lowest
 * level written. Returns 0, or -1 with errno set (the old log stays).
 */
int mk_log_open(const char *path, enum mk_log_level min_level);

/* Reopens the current path (for log rotation). Returns 0 or -1. */
int mk_log_reopen(void);

void mk_log_close(void);

/* Tags lines with the process role ("master", "worker", "admin"). */
void mk_log_set_role(const char *role);

/* Writes {"time","level","pid","role","msg"} when level is enabled. */
void mk_log(enum mk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes one access line for a finished request. */
void mk_log_access(const struct mk_access_record *rec);

/*
 * Writes the slow-request line of a request slower than
 * slow_request_threshold: a warning, "msg":"slow request", the access
 * line's fields, then detail (JSON members, each after a comma: its
 * phases and statements, core/trace.h).
 */
void mk_log_slow(const struct mk_access_record *rec, const char *detail);

/* Parses "debug", "info", "warn", "error". Returns 0 or -1. */
int mk_log_level_parse(const char *name, enum mk_log_level *out);

const char *mk_log_level_name(enum mk_log_level level);

#endif
