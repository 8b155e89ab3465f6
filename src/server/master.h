/*
 * The master (server layer): owns the listening socket and the
 * configuration, forks the workers and keeps their number up.
 */
#ifndef MK_MASTER_H
#define MK_MASTER_H

#include <stddef.h>

struct mk_config;

struct mk_master_options {
	const char *listen_spec;
	const char *const *config_paths; /* re-read on SIGHUP */
	size_t nconfig_paths;
	const char *pid_file; /* may be NULL */
};

/*
 * Runs the master until SIGTERM/SIGINT/SIGQUIT and every worker has
 * exited. Takes ownership of config (the one loaded at start). Returns
 * the process exit status.
 */
int mk_master_run(
    const struct mk_master_options *options, struct mk_config *config);

#endif
