/*
 * The rules of configuration values beyond their type (core layer): what
 * a JWT secret, an algorithm, a TLS mode, a list, an embedder name, a
 * list of addresses and a list of CORS origins must look like. The
 * settings table (config.c) names them per key; each returns a reason a
 * value is refused, or NULL. They keep nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/config_check.h"

const char *
mk_config_check_jwt_secret(const char *value)
{
	if (value[0] != '\0' && strlen(value) < 32)
		return "must be at least 32 bytes";
	return NULL;
}

const char *
mk_config_check_jwt_alg(const char *value)
{
	if (strcmp(value, "HS256") != 0 && strcmp(value, "RS256") != 0 &&
	    strcmp(value, "ES256") != 0)
		return "must be HS256, RS256 or ES256";
	return NULL;
}

const char *
mk_config_check_db_tls(const char *value)
{
	if (strcmp(value, "off") != 0 && strcmp(value, "required") != 0 &&
	    strcmp(value, "verify") != 0)
		return "must be off, required or verify";
	return NULL;
}

/* A comma- or blank-separated list of items, each at most 255 bytes. */
const char *
mk_config_check_list(const char *value)
{
	size_t len;

	for (const char *p = value; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len > 255)
			return "an item of the list is longer than 255 bytes";
	}
	return NULL;
}

/*
 * db_replicas: at most 8 addresses, each unix:/path (at most 107 bytes,
 * a socket path's limit) or host:port (port 1-65535; an IPv6 host in
 * brackets).
 */
const char *
mk_config_check_db_addresses(const char *value)
{
	size_t len, n = 0;

	for (const char *p = value; *(p += strspn(p, ", \t")) != '\0';
	     p += len) {
		const char *colon;
		char *end;
		long port;

		len = strcspn(p, ", \t");
		if (++n > 8)
			return "more than 8 replicas";
		if (len > 5 && strncmp(p, "unix:", 5) == 0) {
			if (p[5] != '/' || len - 5 > 107)
				return "unix: wants an absolute socket path of "
				       "at most 107 bytes";
			continue;
		}
		colon = p + len;
		while (colon > p && colon[-1] != ':')
			colon--;
		if (colon <= p + 1 || colon == p + len ||
		    len - (size_t)(colon - p) > 5)
			return "each replica must be unix:/path or host:port";
		port = strtol(colon, &end, 10);
		if (end != p + len || port < 1 || port > 65535 ||
		    !isdigit((unsigned char)*colon))
			return "a replica's port must be 1-65535";
		if (colon - p - 1 > 255)
			return "a replica's host is longer than 255 bytes";
	}
	return NULL;
}

const char *
mk_config_check_embedder(const char *value)
{
	return strcmp(value, "hash") == 0 || strcmp(value, "http") == 0
	    ? NULL
	    : "must be hash (built in) or http (an OpenAI-compatible endpoint)";
}

/*
 * A list of addresses and CIDR blocks (trusted_proxies, metrics_allow,
 * listen_allowed_clients).
 */
const char *
mk_config_check_cidrs(const char *value)
{
	static char reason[160];
	struct mk_cidr_list list;
	const char *bad;
	size_t bad_len;

	if (mk_cidr_list_parse(value, &list, &bad, &bad_len) == 0)
		return NULL;
	(void)snprintf(reason, sizeof(reason),
	    "'%.*s' is not an address or CIDR block (or the list has more than "
	    "%d)",
	    (int)(bad_len > 64 ? 64 : bad_len), bad, MK_CIDR_LIST_MAX);
	return reason;
}

/*
 * One entry of cors_origins. It is compared byte for byte with the Origin
 * header, so it must be written as browsers serialize an origin (RFC 6454
 * 6.2, the Fetch standard): "http" or "https", "://", a lower-case host
 * name or a bracketed IPv6 address, and a port only when it is not the
 * scheme's default; nothing after. An entry that could never match is a
 * mistake worth stopping the start for. Returns a reason or NULL.
 */
static const char *
check_origin(const char *origin, size_t len)
{
	size_t i, host, port_start;
	long port = 0;
	bool https, label_empty = true;

	if (len == 1 && origin[0] == '*')
		return "a wildcard is not allowed: requests carry credentials "
		       "(Authorization), so list each origin";
	if (len == 4 && memcmp(origin, "null", 4) == 0)
		return "not allowed: every sandboxed frame and file: page "
		       "sends it";
	if (len >= 8 && memcmp(origin, "https://", 8) == 0) {
		https = true;
		host = 8;
	} else if (len >= 7 && memcmp(origin, "http://", 7) == 0) {
		https = false;
		host = 7;
	} else if ((len >= 8 && strncasecmp(origin, "https://", 8) == 0) ||
	    (len >= 7 && strncasecmp(origin, "http://", 7) == 0)) {
		return "the scheme must be lower case, as browsers send it";
	} else {
		return "must be http://host or https://host, with an optional "
		       ":port";
	}
	i = host;
	if (i < len && origin[i] == '[') {
		/* Browsers write IPv6 compressed, in lower-case hex. */
		for (i++; i < len &&
		     (isdigit((unsigned char)origin[i]) ||
			 (origin[i] >= 'a' && origin[i] <= 'f') ||
			 origin[i] == ':' || origin[i] == '.');
		     i++)
			;
		if (i == len || origin[i] != ']' || i == host + 1)
			return "an IPv6 host must be lower-case hex in "
			       "brackets";
		i++;
	} else {
		for (; i < len; i++) {
			unsigned char c = (unsigned char)origin[i];

			if (c == '.') {
				if (label_empty)
					return "the host has an empty label";
				label_empty = true;
			} else if ((c >= 'a' && c <= 'z') || isdigit(c) ||
			    c == '-') {
				label_empty = false;
			} else {
				break;
			}
		}
		if (i < len && origin[i] >= 'A' && origin[i] <= 'Z')
			return "the host must be lower case, as browsers send "
			       "it";
		if (i < len && (unsigned char)origin[i] >= 0x80)
			return "the host must be ASCII (an international name "
			       "in its xn-- form)";
		if (i == host)
			return "has no host";
		if (label_empty)
			return "the host has an empty label";
	}
	if (i < len && origin[i] == ':') {
		port_start = ++i;
		for (; i < len && isdigit((unsigned char)origin[i]); i++) {
			if (port <= 65535)
				port = port * 10 + (origin[i] - '0');
		}
		if (i == port_start || origin[port_start] == '0' ||
		    port > 65535)
			return "the port must be 1-65535, without leading "
			       "zeros";
		if (port == (https ? 443 : 80))
			return "the scheme's default port must be left out, as "
			       "browsers leave it out";
	}
	if (i == len)
		return NULL;
	if (origin[i] == '/' || origin[i] == '?' || origin[i] == '#')
		return "must have no path, query or fragment (nor a trailing "
		       "slash)";
	if (origin[i] == '@')
		return "must have no user name";
	return "has a character browsers never send in an Origin";
}

/*
 * cors_origins: a comma- or blank-separated list of origins, each checked
 * by check_origin(). The reason names the bad entry, so it is formatted
 * into a static buffer: configurations are loaded by one thread only (at
 * start and on SIGHUP, in the master's loop).
 */
const char *
mk_config_check_cors_origins(const char *value)
{
	static char reason[384];
	const char *why;
	size_t len, count = 0;

	for (const char *p = value; *p != '\0'; p += len) {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (len > 255)
			return "an origin is longer than 255 bytes";
		if (++count > MK_CONFIG_CORS_ORIGINS_MAX) {
			(void)snprintf(reason, sizeof(reason),
			    "more than %d origins", MK_CONFIG_CORS_ORIGINS_MAX);
			return reason;
		}
		why = check_origin(p, len);
		if (why != NULL) {
			(void)snprintf(reason, sizeof(reason), "'%.*s': %s",
			    (int)len, p, why);
			return reason;
		}
	}
	return NULL;
}

/*
 * base_path: "" (derive it per request) or "/" (the root), else an
 * absolute path the application is mounted at, written as it is meant
 * (no percent-escapes: requests are matched against it escape-aware),
 * of URI path characters only, since it is written back into Location
 * and Link headers as it is.
 */
const char *
mk_config_check_base_path(const char *value)
{
	size_t len = strlen(value);

	if (len == 0 || strcmp(value, "/") == 0)
		return NULL;
	if (value[0] != '/')
		return "must start with '/' (or be empty: derived per request)";
	if (value[len - 1] == '/')
		return "must not end with '/' (write the root as '/')";
	for (const char *p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80)
			return "must be ASCII (leave it empty to derive a path "
			       "of other characters)";
		if (!isalnum(c) && strchr("-._~!$&'()*+,;=:@/", c) == NULL)
			return "may hold only letters, digits and "
			       "-._~!$&'()*+,;=:@/ (no '%', '?', '#', blank)";
	}
	for (const char *p = value; *p != '\0';) {
		size_t seg;

		p++;
		seg = strcspn(p, "/");
		if (seg == 0)
			return "has an empty segment ('//')";
		if ((seg == 1 && p[0] == '.') ||
		    (seg == 2 && p[0] == '.' && p[1] == '.'))
			return "has a '.' or '..' segment";
		p += seg;
	}
	return NULL;
}
