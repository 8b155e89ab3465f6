/*
 * The markets server's entry point: options, configuration, then either
 * the pre-forking master (--listen, or a socket passed in by systemd's
 * LISTEN_FDS or by the master this one upgrades) or, under a FastCGI
 * process manager such as Apache mod_fcgid that passes a listening socket
 * on fd 0, a single worker. Exits non-zero at start-up only: on a bad
 * option, a bad configuration (with file, line and reason) or a socket it
 * cannot open.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "server/listener.h"
#include "server/master.h"
#include "server/upgrade.h"
#include "server/worker.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: markets [--config FILE]... [--listen "
	    "unix:PATH|[HOST]:PORT]\n"
	    "               [--pid-file FILE] [--test-config] [--dump-config]\n"
	    "               [--version]\n"
	    "\n"
	    "  --config FILE    read settings from FILE; later files override "
	    "earlier\n"
	    "                   ones, MARKETS_<KEY> variables override them "
	    "all;\n"
	    "                   without any, $MARKETS_CONFIG names the one "
	    "file\n"
	    "  --listen ADDR    run the pre-forking master on ADDR; without it "
	    "the\n"
	    "                   process serves the FastCGI socket passed as fd "
	    "0\n"
	    "                   (Apache mod_fcgid). ADDR without a host "
	    "(:9000, or\n"
	    "                   9000) binds 127.0.0.1; name 0.0.0.0:9000 or "
	    "[::]:9000\n"
	    "                   for every interface. A TCP socket serves only "
	    "the\n"
	    "                   peers in listen_allowed_clients / "
	    "FCGI_WEB_SERVER_ADDRS\n"
	    "                   (none set: loopback peers, and a non-loopback "
	    "address\n"
	    "                   refuses to start). A socket passed by "
	    "systemd\n"
	    "                   (LISTEN_FDS, markets.socket) is used "
	    "instead\n"
	    "  --pid-file FILE  write the master's pid to FILE (rewritten by "
	    "the new\n"
	    "                   master after SIGUSR2, the binary upgrade)\n"
	    "  --test-config    check the configuration and exit\n"

	    "  --dump-config    check it, print the effective settings "
	    "(secrets\n"
	    "                   redacted) in markets.conf's syntax, and "
	    "exit\n");
}

/* --dump-config: the settings to stdout; frees config. */
static int
dump_config(struct mk_config *config)
{
	struct mk_buf out;
	int status;

	mk_buf_init(&out, NULL);
	mk_config_dump(config, &out);
	mk_config_free(config);
	status = !out.oom && fwrite(out.data, 1, out.len, stdout) == out.len &&
		fflush(stdout) == 0
	    ? 0
	    : 1;
	mk_buf_release(&out);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "test-config", no_argument, NULL, 't' },
		{ "dump-config", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_paths[MK_CONFIG_MAX_FILES];
	struct mk_master_options options = { 0 };
	char err[MK_CONFIG_ERR_MAX];
	struct mk_config *config;
	size_t nconfig = 0;
	int opt, test_only = 0, dump = 0, status;

	while ((opt = getopt_long(
		    argc, argv, "c:l:p:tVh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (nconfig == MK_CONFIG_MAX_FILES) {
				fprintf(stderr,
				    "markets: at most %d --config files\n",
				    MK_CONFIG_MAX_FILES);
				return 2;
			}
			config_paths[nconfig++] = optarg;
			break;
		case 'l':
			options.listen_spec = optarg;
			break;
		case 'p':
			options.pid_file = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		case 'D':
			dump = 1;
			break;
		case 'V':
			printf("markets %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Taken before anything opens a descriptor of its own. */
	if (mk_upgrade_inherit(&options.inherited, err, sizeof(err)) != 0) {
		fprintf(stderr, "markets: %s\n", err);
		return 1;
	}
	if (nconfig == 0 && getenv("MARKETS_CONFIG") != NULL &&
	    getenv("MARKETS_CONFIG")[0] != '\0') {
		/*
		 * A process manager that starts us with no arguments (Apache's
		 * FcgidWrapper) names the file in the environment instead.
		 */
		config_paths[nconfig++] = getenv("MARKETS_CONFIG");
	}
	if (mk_config_load_environ(config_paths, nconfig, mk_app_check_config,
		&config, err, sizeof(err)) != MK_OK) {
		fprintf(stderr, "markets: bad configuration: %s\n", err);
		return 1;
	}
	if (test_only) {
		printf("markets: configuration ok\n");
		mk_config_free(config);
		return 0;
	}
	if (dump)
		return dump_config(config);
	if (mk_log_open(config->log_file, config->log_level) != 0) {
		fprintf(stderr, "markets: cannot open log file %s\n",
		    config->log_file);
		mk_config_free(config);
		return 1;
	}
	if (config->jwt_secret[0] == '\0' &&
	    config->jwt_public_key[0] == '\0' &&
	    config->jwt_keys_dir[0] == '\0')
		mk_log(MK_LOG_WARN,
		    "no JWT key configured: every bearer token will be "
		    "refused");
	if (config->memcached[0] == '\0')
		mk_log(MK_LOG_WARN,
		    "no memcached configured: the rate limit counts per "
		    "worker, not shared");
	if (options.listen_spec != NULL || options.inherited.listen_fd >= 0) {
		options.config_paths = config_paths;
		options.nconfig_paths = nconfig;
		options.argv = argv;
		status = mk_master_run(&options, config);
	} else if (mk_listener_is_listening(STDIN_FILENO)) {
		/*
		 * Apache mod_fcgid: one process per socket, managed from
		 * outside.
		 */
		status = 1;
		if (mk_listener_adopt(STDIN_FILENO) == 0)
			status = mk_worker_run(STDIN_FILENO, config, 0, -1);
		else
			mk_log(MK_LOG_ERROR,
			    "cannot prepare the inherited FastCGI socket");
		mk_config_free(config);
	} else {
		fprintf(stderr,
		    "markets: no --listen given and fd 0 is not a FastCGI "
		    "listening socket\n");
		usage(stderr);
		mk_config_free(config);
		status = 2;
	}
	mk_log_close();
	return status;
}
