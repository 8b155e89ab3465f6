/*
 * Structured logging (core layer); see log.h. Lines are assembled in a
 * fixed stack buffer (long messages are cut, never split) and written
 * with one write(2); a failed write is dropped, since there is nowhere
 * better to report it and serving must go on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#define LOG_LINE_MAX 4096

static int log_fd = STDERR_FILENO;
static char *log_path; /* NULL: stderr */
static enum mk_log_level log_min = MK_LOG_INFO;
static const char *log_role = "main";

static const char *const level_names[MK_LOG_LEVEL__MAX] = {
	[MK_LOG_DEBUG] = "debug",
	[MK_LOG_INFO] = "info",
	[MK_LOG_WARN] = "warn",
	[MK_LOG_ERROR] = "error",
};

const char *
mk_log_level_name(enum mk_log_level level)
{
	return (unsigned)level < MK_LOG_LEVEL__MAX ? level_names[level] : "?";
}

int
mk_log_level_parse(const char *name, enum mk_log_level *out)
{
	for (int i = 0; i < MK_LOG_LEVEL__MAX; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum mk_log_level)i;
			return 0;
		}
	}
	return -1;
}

static int
open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
mk_log_open(const char *path, enum mk_log_level min_level)
{
	char *copy = NULL;
	int fd = STDERR_FILENO;

	if (path != NULL && path[0] != '\0' && strcmp(path, "-") != 0) {
		copy = strdup(path);
		if (copy == NULL)
			return -1;
		fd = open_path(path);
		if (fd < 0) {
			int saved = errno;

			free(copy);
			errno = saved;
			return -1;
		}
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	free(log_path);
	log_fd = fd;
	log_path = copy;
	log_min = min_level;
	return 0;
}

int
mk_log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return 0;
	fd = open_path(log_path);
	if (fd < 0)
		return -1;
	close(log_fd);
	log_fd = fd;
	return 0;
}

void
mk_log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	free(log_path);
	log_path = NULL;
}

void
mk_log_set_role(const char *role)
{
	log_role = role;
}

/* Starts a line in buf: {"time":"…","level":"…","pid":N,"role":"…" */
static void
line_begin(struct mk_buf *buf, enum mk_log_level level)
{
	char when[40];
	size_t n = mk_clock_rfc3339(when, sizeof(when), NULL, 1);

	mk_buf_append(buf, "{\"time\":\"", 9);
	mk_buf_append(buf, when, n);
	mk_buf_printf(buf, "\",\"level\":\"%s\",\"pid\":%ld,\"role\":\"%s\"",
	    mk_log_level_name(level), (long)getpid(), log_role);
}

static void
line_write(struct mk_buf *buf)
{
	ssize_t n;

	if (buf->oom) {
		/* Cut, but keep it one valid JSON line. */
		static const char cut[] =
		    "{\"level\":\"warn\",\"msg\":\"log line too long\"}\n";

		n = write(log_fd, cut, sizeof(cut) - 1);
	} else {
		/* The buffer was made 2 bytes short to keep room for these. */
		buf->cap += 2;
		mk_buf_append(buf, "}\n", 2);
		n = write(log_fd, buf->data, buf->len);
	}
	(void)n;
}

void
mk_log(enum mk_log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX / 2];
	struct mk_buf buf;
	va_list ap;
	int n;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* A stack buffer: logging must work when malloc does not. */
	mk_buf_init_fixed(&buf, line, sizeof(line) - 2);
	line_begin(&buf, level);
	mk_buf_append(&buf, ",\"msg\":", 7);
	mk_json_string(&buf, msg, (size_t)n);
	line_write(&buf);
}

/*
 * A line about one request at level: msg (NULL: none), the request's
 * fields, then extra (NULL, or JSON members each after a comma).
 */
static void
request_line(enum mk_log_level level, const char *msg,
    const struct mk_access_record *rec, const char *extra)
{
	char line[LOG_LINE_MAX];
	struct mk_buf buf;

	if (level < log_min)
		return;
	mk_buf_init_fixed(&buf, line, sizeof(line) - 2);
	line_begin(&buf, level);
	if (msg != NULL) {
		mk_buf_append(&buf, ",\"msg\":", 7);
		mk_json_cstr(&buf, msg);
	}
	mk_buf_append(&buf, ",\"request_id\":", 14);
	mk_json_cstr(&buf, rec->request_id);
	mk_buf_append(&buf, ",\"method\":", 10);
	mk_json_cstr(&buf, rec->method);
	mk_buf_append(&buf, ",\"route\":", 9);
	mk_json_cstr(&buf, rec->route);
	mk_buf_append(&buf, ",\"path\":", 8);
	/* Paths can be long: keep the line bounded. */
	if (rec->path != NULL) {
		size_t len = strlen(rec->path);

		mk_json_string(&buf, rec->path, len > 512 ? 512 : len);
	} else {
		mk_buf_append(&buf, "null", 4);
	}
	mk_buf_append(&buf, ",\"client\":", 10);
	mk_json_cstr(&buf, rec->client);
	mk_buf_printf(&buf,
	    ",\"status\":%d,\"bytes\":%llu,\"duration_us\":%llu", rec->status,
	    (unsigned long long)rec->bytes,
	    (unsigned long long)rec->duration_us);
	if (rec->user_id > 0)
		mk_buf_printf(&buf, ",\"user\":%lld", (long long)rec->user_id);
	if (rec->error != NULL) {
		mk_buf_append(&buf, ",\"error\":", 9);
		mk_json_cstr(&buf, rec->error);
	}
	if (extra != NULL)
		mk_buf_puts(&buf, extra);
	line_write(&buf);
}

void
mk_log_access(const struct mk_access_record *rec)
{
	request_line(
	    rec->status >= 500 ? MK_LOG_ERROR : MK_LOG_INFO, NULL, rec, NULL);
}

void
mk_log_slow(const struct mk_access_record *rec, const char *detail)
{
	request_line(MK_LOG_WARN, "slow request", rec, detail);
}
