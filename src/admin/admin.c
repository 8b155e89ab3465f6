/*
 * markets-admin (admin layer): operator commands that run beside the
 * server with the same configuration.
 *
 *   markets-admin [--config FILE]... token --sub ID --role ROLE
 *                 [--email E] [--name N] [--ttl SECONDS]
 *       prints an HS256 token signed with jwt_secret
 */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"

#define MAX_CONFIG_FILES 16

extern char **environ;

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: markets-admin [--config FILE]... COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  token --sub ID --role admin|moderator|user [--email E] [--name N]\n"
	    "        [--ttl SECONDS]   print an HS256 token signed with jwt_secret\n");
}

static int
parse_positive(const char *s, long long max, long long *out)
{
	char *end;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_token(const struct mk_config *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sub", required_argument, NULL, 's' },
		{ "role", required_argument, NULL, 'r' },
		{ "email", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *email = NULL, *name = NULL;
	long long sub = 0, ttl = 3600;
	struct mk_buf payload, token;
	int opt, status = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_positive(optarg, (1LL << 53) - 1, &sub) != 0) {
				fprintf(stderr, "markets-admin: --sub must be a positive integer\n");
				return 2;
			}
			break;
		case 'r': role = optarg; break;
		case 'e': email = optarg; break;
		case 'n': name = optarg; break;
		case 't':
			if (parse_positive(optarg, 10LL * 365 * 86400, &ttl) != 0) {
				fprintf(stderr, "markets-admin: --ttl must be a positive number of seconds\n");
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sub == 0 || role == NULL || (strcmp(role, "admin") != 0 &&
	    strcmp(role, "moderator") != 0 && strcmp(role, "user") != 0)) {
		fprintf(stderr, "markets-admin: token needs --sub and --role admin|moderator|user\n");
		return 2;
	}
	if (config->jwt_secret[0] == '\0') {
		fprintf(stderr, "markets-admin: jwt_secret is not configured\n");
		return 1;
	}
	mk_buf_init(&payload, NULL);
	mk_buf_init(&token, NULL);
	mk_buf_printf(&payload, "{\"sub\":\"%lld\",\"role\":\"%s\",\"iat\":%lld,\"exp\":%lld",
	    sub, role, (long long)time(NULL), (long long)time(NULL) + ttl);
	if (email != NULL) {
		mk_buf_puts(&payload, ",\"email\":");
		mk_json_cstr(&payload, email);
	}
	if (name != NULL) {
		mk_buf_puts(&payload, ",\"name\":");
		mk_json_cstr(&payload, name);
	}
	mk_buf_putc(&payload, '}');
	if (!payload.oom &&
	    mk_jwt_sign_hs256(&token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload.data,
	    config->jwt_secret, strlen(config->jwt_secret)) == MK_OK) {
		printf("%s\n", token.data);
		status = fflush(stdout) == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "markets-admin: cannot sign the token\n");
	}
	mk_buf_release(&payload);
	mk_buf_release(&token);
	return status;
}

int
main(int argc, char **argv)
{
	const char *config_paths[MAX_CONFIG_FILES];
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *config;
	size_t nconfig = 0;
	int i = 1, status;

	/* Global options come before the command; getopt would mix them up. */
	while (i < argc && strcmp(argv[i], "--config") == 0) {
		if (i + 1 >= argc || nconfig == MAX_CONFIG_FILES) {
			usage(stderr);
			return 2;
		}
		config_paths[nconfig++] = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	if (mk_config_load(config_paths, nconfig, environ, &config, err, sizeof(err)) != MK_OK) {
		fprintf(stderr, "markets-admin: bad configuration: %s\n", err);
		return 1;
	}
	if (strcmp(argv[i], "token") == 0) {
		status = cmd_token(config, argc - i, argv + i);
	} else {
		fprintf(stderr, "markets-admin: unknown command '%s'\n", argv[i]);
		usage(stderr);
		status = 2;
	}
	mk_config_free(config);
	return status;
}
