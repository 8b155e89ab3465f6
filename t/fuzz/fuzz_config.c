/*
 * libFuzzer target: the configuration parser over arbitrary file text.
 * Finds crashes, leaks of replaced string values, and error messages that
 * are not NUL-terminated.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_config *config = mk_config_new();
	char err[MK_CONFIG_ERR_MAX];

	if (config == NULL)
		return 0;
	err[0] = '\0';
	if (mk_config_parse(config, "fuzz.conf", (const char *)data, size, err,
		sizeof(err)) != MK_OK) {
		if (strnlen(err, sizeof(err)) == sizeof(err) ||
		    strncmp(err, "fuzz.conf:", 10) != 0)
			__builtin_trap();
	} else if (config->max_body == 0 || config->worker_connections < 1) {
		__builtin_trap(); /* a value out of its declared range got in */
	}
	mk_config_free(config);
	return 0;
}
