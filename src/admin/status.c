/*
 * markets-admin status (admin layer); see status.h. It fetches the
 * metrics with libcurl into a buffer it owns, reads the samples it shows
 * out of the Prometheus text, and prints them; nothing outlives the
 * command.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/status.h"
#include "core/buf.h"

#define DEFAULT_URL "http://127.0.0.1:8080/metrics"
/* The metrics of a server are a few kilobytes; more is not them. */
#define TEXT_MAX (4 * 1024 * 1024)

static size_t
on_bytes(char *bytes, size_t size, size_t n, void *arg)
{
	struct mk_buf *text = arg;

	if (text->len + size * n > TEXT_MAX)
		return 0;
	mk_buf_append(text, bytes, size * n);
	return text->oom ? 0 : size * n;
}

/*
 * GETs url into text (NUL-terminated). Returns 0, or -1 after printing
 * why to stderr.
 */
static int
fetch(const char *url, long timeout_s, struct mk_buf *text)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *curl = curl_easy_init();
	const char *type = NULL;
	long status = 0;
	CURLcode rc;
	bool ok;

	if (curl == NULL) {
		fprintf(
		    stderr, "markets-admin: status: cannot start libcurl\n");
		return -1;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") !=
		CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT, "markets-admin") !=
		CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_bytes) !=
		CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, text) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
		fprintf(stderr, "markets-admin: status: bad URL %s\n", url);
		curl_easy_cleanup(curl);
		return -1;
	}
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK) {
		(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		(void)curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
	}
	/* type is the handle's: read before the cleanup below. */
	ok = rc == CURLE_OK && status == 200 && type != NULL &&
	    strncmp(type, "text/plain", 10) == 0;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		fprintf(stderr,
		    "markets-admin: status: %s did not answer within %ld s "
		    "(every worker busy? the listen queue holds the request)\n",
		    url, timeout_s);
	else if (rc != CURLE_OK)
		fprintf(stderr, "markets-admin: status: %s: %s\n", url,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	else if (status == 403)
		fprintf(stderr,
		    "markets-admin: status: %s: 403, this address is not in "
		    "metrics_allow\n",
		    url);
	else if (!ok)
		fprintf(stderr,
		    "markets-admin: status: %s: HTTP %ld (%s), not the "
		    "metrics\n",
		    url, status, type != NULL ? type : "no content type");
	curl_easy_cleanup(curl);
	if (!ok)
		return -1;
	mk_buf_putc(text, '\0');
	return text->oom ? -1 : 0;
}

/*
 * Calls each() for every sample of text whose name is family, with its
 * labels ("" or `{...}`, len bytes) and value. Comments are skipped.
 */
static void
each_sample(const char *text, const char *family,
    void (*each)(void *arg, const char *labels, size_t len, uint64_t value),
    void *arg)
{
	size_t flen = strlen(family);

	for (const char *line = text; *line != '\0';) {
		const char *eol = strchr(line, '\n'), *p = line + flen;
		const char *labels = p, *space;

		if (eol == NULL)
			eol = line + strlen(line);
		if (strncmp(line, family, flen) == 0 &&
		    (*p == '{' || *p == ' ')) {
			space = *p == '{' ? strstr(p, "} ") : p;
			if (space != NULL && space < eol) {
				if (*p == '{')
					space++;
				each(arg, labels, (size_t)(space - labels),
				    strtoull(space + 1, NULL, 10));
			}
		}
		line = *eol == '\n' ? eol + 1 : eol;
	}
}

struct pick {
	const char *labels; /* the exact labels wanted, "" for none */
	uint64_t value;
};

static void
pick_one(void *arg, const char *labels, size_t len, uint64_t value)
{
	struct pick *pick = arg;

	if (strlen(pick->labels) == len &&
	    strncmp(labels, pick->labels, len) == 0) {
		pick->value = value;
	}
}

/* The value of the series family+labels, or 0 when absent. */
static uint64_t
sample(const char *text, const char *family, const char *labels)
{
	struct pick pick = { .labels = labels };

	each_sample(text, family, pick_one, &pick);
	return pick.value;
}

/* Answered requests by status class: [0] all, [1..5] 1xx..5xx. */
static void
count_classes(void *arg, const char *labels, size_t len, uint64_t value)
{
	uint64_t *classes = arg;
	const char *status = strstr(labels, "status=\"");

	classes[0] += value;
	if (status != NULL && status < labels + len && status[8] >= '1' &&
	    status[8] <= '5')
		classes[status[8] - '0'] += value;
}

/* The version label of markets_build_info, into out. */
static void
take_version(void *arg, const char *labels, size_t len, uint64_t value)
{
	char *out = arg;
	const char *start = strstr(labels, "version=\"");
	const char *end;

	(void)value;
	if (start == NULL || start >= labels + len)
		return;
	start += 9;
	end = memchr(start, '"', (size_t)(labels + len - start));
	if (end != NULL)
		(void)snprintf(out, 64, "%.*s", (int)(end - start), start);
}

static void
print_page(const char *url, const char *text)
{
	uint64_t classes[6] = { 0 }, started, uptime, busy, idle;
	char version[64] = "unknown", when[32] = "unknown";
	time_t start_time;
	struct tm tm;

	each_sample(text, "markets_build_info", take_version, version);
	each_sample(
	    text, "markets_http_requests_total", count_classes, classes);
	started = sample(text, "markets_start_time_seconds", "");
	uptime = sample(text, "markets_uptime_seconds", "");
	start_time = (time_t)started;
	if (started > 0 && gmtime_r(&start_time, &tm) != NULL)
		(void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	busy = sample(text, "markets_workers", "{state=\"busy\"}");
	idle = sample(text, "markets_workers", "{state=\"idle\"}");
	printf("url:                  %s\n", url);
	printf("version:              %s\n", version);
	printf("start time:           %s\n", when);
	printf("uptime:               %" PRIu64 " s (%" PRIu64 "d %" PRIu64
	       "h %" PRIu64 "m %" PRIu64 "s)\n",
	    uptime, uptime / 86400, uptime / 3600 % 24, uptime / 60 % 60,
	    uptime % 60);
	printf("accepted requests:    %" PRIu64 "\n",
	    sample(text, "markets_http_requests_accepted_total", ""));
	printf("answered requests:    %" PRIu64 " (2xx %" PRIu64
	       ", 3xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 ")\n",
	    classes[0], classes[2], classes[3], classes[4], classes[5]);
	printf("slow requests:        %" PRIu64 "\n",
	    sample(text, "markets_http_slow_requests_total", ""));
	printf("listen queue:         %" PRIu64 "\n",
	    sample(text, "markets_listen_queue_length", ""));
	printf("max listen queue:     %" PRIu64 "\n",
	    sample(text, "markets_listen_queue_max_length", ""));
	printf("listen queue limit:   %" PRIu64 "\n",
	    sample(text, "markets_listen_queue_limit", ""));
	printf("idle workers:         %" PRIu64 "\n", idle);
	printf("busy workers:         %" PRIu64 " (this request's included)\n",
	    busy);
	printf("total workers:        %" PRIu64 "\n", busy + idle);
	printf("all workers busy:     %" PRIu64 " times\n",
	    sample(text, "markets_workers_all_busy_total", ""));
	printf("worker restarts:      %" PRIu64 "\n",
	    sample(text, "markets_worker_restarts_total", ""));
	printf("connections open:     %" PRIu64 "\n",
	    sample(text, "markets_fastcgi_connections_open", ""));
	printf("connections accepted: %" PRIu64 "\n",
	    sample(text, "markets_fastcgi_connections_accepted_total", ""));
	printf("db retries:           %" PRIu64 "\n",
	    sample(text, "markets_db_transaction_retries_total", ""));
	printf("job runs:             done %" PRIu64 ", failed %" PRIu64
	       ", dead %" PRIu64 "\n",
	    sample(text, "markets_job_runs_total", "{outcome=\"done\"}"),
	    sample(text, "markets_job_runs_total", "{outcome=\"failed\"}"),
	    sample(text, "markets_job_runs_total", "{outcome=\"dead\"}"));
}

int
mk_status_command(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = DEFAULT_URL;
	struct mk_buf text;
	long timeout_s = 10;
	char *end;
	int opt, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 't':
			timeout_s = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout_s < 1 || timeout_s > 3600) {
				fprintf(stderr,
				    "markets-admin: --timeout takes 1 to 3600 "
				    "seconds\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr,
			    "usage: markets-admin status [--url URL] "
			    "[--timeout SECONDS]\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
		    "usage: markets-admin status [--url URL] "
		    "[--timeout SECONDS]\n");
		return 2;
	}
	mk_buf_init(&text, NULL);
	if (fetch(url, timeout_s, &text) == 0) {
		if (strstr(text.data, "markets_workers{") == NULL) {
			fprintf(stderr,
			    "markets-admin: status: %s has no markets_workers: "
			    "not this server's metrics\n",
			    url);
		} else {
			print_page(url, text.data);
			status = fflush(stdout) == 0 ? 0 : 1;
		}
	}
	mk_buf_release(&text);
	return status;
}
