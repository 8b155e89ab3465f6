/*
 * The master (server layer): owns the listening socket and the
 * configuration, forks the workers and keeps their number up, and runs
 * the binary again on SIGUSR2 (upgrade.h).
 */
#ifndef MK_MASTER_H
#define MK_MASTER_H

#include <stddef.h>

#include "server/upgrade.h"

struct mk_config;

struct mk_master_options {
	const char *listen_spec; /* bound when no socket was passed in */
	const char *const *config_paths; /* re-read on SIGHUP */
	size_t nconfig_paths;
	const char *pid_file; /* may be NULL */
	char *const *argv;    /* run again on SIGUSR2; NULL: no upgrade */
	struct mk_inherited inherited; /* passed by systemd or an old master */
};

/*
 * Runs the master until SIGTERM/SIGINT/SIGQUIT, or a binary upgrade's
 * hand-over, and every worker has exited. Takes ownership of config (the one
 * loaded at start). Returns the process exit status.
 */
int mk_master_run(
    const struct mk_master_options *options, struct mk_config *config);

#endif
