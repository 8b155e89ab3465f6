/*
 * The rules of configuration values beyond their type (core layer),
 * private to the configuration (config.c's settings table): each takes a
 * value and returns why it is refused, or NULL when it is fine.
 */
#ifndef MK_CONFIG_CHECK_H
#define MK_CONFIG_CHECK_H

const char *mk_config_check_jwt_secret(const char *value);
const char *mk_config_check_jwt_alg(const char *value);
const char *mk_config_check_db_tls(const char *value);
const char *mk_config_check_list(const char *value);
const char *mk_config_check_db_addresses(const char *value);
const char *mk_config_check_embedder(const char *value);
const char *mk_config_check_cidrs(const char *value);
const char *mk_config_check_cors_origins(const char *value);
const char *mk_config_check_base_path(const char *value);

#endif
