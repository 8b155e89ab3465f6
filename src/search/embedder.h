/*
 * Embedders (search layer): text in, a unit vector of float32 out, behind
 * an ops table in the manner of the repository (markets/repo.h). Two
 * implementations:
 *
 *   hash  built in, offline, deterministic: hashed word unigrams and
 *         bigrams and character trigrams, sublinear TF weights, signed
 *         feature hashing into `dim` buckets, L2-normalised. Its name
 *         ("hash-v1") goes into every stored vector, so vectors made by
 *         another embedder or version are never compared with its own.
 *   http  an OpenAI-compatible POST {url} {"model","input"} answering
 *         {"data":[{"embedding":[...]}]}, over plain HTTP/1.1 (a local
 *         model server); the vector is L2-normalised on arrival.
 *
 * An embedder is worker-lifetime (each worker and job runner makes its
 * own after fork) and not thread-safe. Vectors are written into caller
 * memory of dim floats.
 */
#ifndef MK_EMBEDDER_H
#define MK_EMBEDDER_H

#include <stddef.h>

#include "core/err.h"

struct mk_config;
struct mk_embedder;

/* The most dimensions an embedder may have (a vector is then 16 KiB). */
#define MK_EMBED_MAX_DIM 4096

struct mk_embedder_ops {
	/*
	 * Embeds text (len bytes of UTF-8, not NUL-terminated) into out[dim]
	 * as a unit vector (all zeros for text with no features). MK_EUNAVAIL
	 * when a remote embedder failed or timed out, MK_EINTERNAL for an
	 * answer that is not a vector of dim numbers.
	 */
	enum mk_err (*embed)(struct mk_embedder *embedder, const char *text,
	    size_t len, float *out);
	void (*destroy)(struct mk_embedder *embedder);
};

struct mk_embedder {
	const struct mk_embedder_ops *ops;
	char name[64];   /* "hash-v1", or "http:<model>" */
	unsigned dim;
};

static inline enum mk_err
mk_embed(struct mk_embedder *embedder, const char *text, size_t len, float *out)
{
	return embedder->ops->embed(embedder, text, len, out);
}

static inline void
mk_embedder_free(struct mk_embedder *embedder)
{
	if (embedder != NULL)
		embedder->ops->destroy(embedder);
}

/* The built-in hashing embedder with dim buckets (8..MK_EMBED_MAX_DIM). NULL when out of memory. */
struct mk_embedder *mk_embedder_hash_new(unsigned dim);

/*
 * The HTTP embedder: url "http://host[:port]/path", model name, dim
 * expected dimensions, timeout for the whole exchange. NULL with a reason
 * in err for a malformed URL or out of memory.
 */
struct mk_embedder *mk_embedder_http_new(const char *url, const char *model,
    unsigned dim, int timeout_ms, char *err, size_t errlen);

/*
 * The embedder the configuration names (embedder = hash | http, with
 * embedding_dim, embedder_url, embedder_model, embedder_timeout). NULL
 * with a reason in err.
 */
struct mk_embedder *mk_embedder_from_config(const struct mk_config *config,
    char *err, size_t errlen);

/*
 * Parses an OpenAI-compatible embeddings answer body (len bytes) into
 * out[dim]: {"data":[{"embedding":[n, ...], ...}], ...} with exactly dim
 * finite numbers. Returns MK_OK, or MK_EINTERNAL for anything else.
 * Exposed for its fuzz target.
 */
enum mk_err mk_embed_parse_response(const char *body, size_t len, unsigned dim,
    float *out);

/*
 * Reads an HTTP/1.1 answer (len bytes, as a server sent them before it
 * closed the connection) the way the http embedder does, over prefixes
 * growing by step bytes (partial reads). MK_OK with the status, where the
 * body starts (*body_offset) and its length once decoded (*body_len;
 * never more than the bytes after the head); MK_EUNAVAIL when malformed
 * or cut short. Exposed for its fuzz target.
 */
enum mk_err mk_embed_http_read_answer(const char *bytes, size_t len, size_t step,
    int *status, size_t *body_offset, size_t *body_len);

/* Scales v[dim] to unit length (leaves an all-zero vector alone). */
void mk_embed_normalize(float *v, unsigned dim);

#endif
