/*
 * The choice of embedder by configuration (search layer); see
 * mk_embedder_from_config() in embedder.h. The one file that knows every
 * embedder: it makes the built-in hash embedder (embedder.c) or the HTTP
 * embedder (embed_http.c, with the key its file holds), so neither of
 * those needs the other. It calls core/ (config) and those two.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "search/embedder.h"

/*
 * Makes the embedder config names. Returns it (free with
 * mk_embedder_free()), or NULL with a reason in err. An empty
 * embedder_model is allowed: the request then carries no "model" member,
 * which a server holding one model accepts.
 */
struct mk_embedder *
mk_embedder_from_config(
    const struct mk_config *config, char *err, size_t errlen)
{
	struct mk_embedder *embedder;
	int dim = config->embedding_dim;
	const char *key_file = config->embedder_api_key_file;
	char *key = NULL;

	if (dim < 8 || dim > MK_EMBED_MAX_DIM) {
		mk_errf(err, errlen, "embedding_dim must be 8 to %d, not %d",
		    MK_EMBED_MAX_DIM, dim);
		return NULL;
	}
	if (config->embedder == NULL || strcmp(config->embedder, "hash") == 0) {
		if ((embedder = mk_embedder_hash_new((unsigned)dim)) == NULL)
			mk_errf(err, errlen, "out of memory");
		return embedder;
	}
	if (strcmp(config->embedder, "http") != 0) {
		mk_errf(err, errlen,
		    "embedder must be hash or http, not '%.32s'",
		    config->embedder);
		return NULL;
	}
	if (config->embedder_url == NULL || config->embedder_url[0] == '\0') {
		mk_errf(err, errlen, "embedder = http needs embedder_url");
		return NULL;
	}
	if (key_file != NULL && key_file[0] != '\0' &&
	    (key = mk_embedder_read_key(key_file, err, errlen)) == NULL)
		return NULL;
	embedder = mk_embedder_http_new(config->embedder_url,
	    config->embedder_model != NULL ? config->embedder_model : "",
	    (unsigned)dim, config->embedder_timeout_ms, key, err, errlen);
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return embedder;
}
