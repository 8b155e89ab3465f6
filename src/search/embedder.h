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
 *         {"data":[{"embedding":[...]}]}, over http or https through
 *         libcurl, with kept-alive connections and an optional bearer
 *         key; the vector is L2-normalised on arrival.
 *
 * An embedding is either a blocking call (mk_embed: the job runner, the
 * admin command, a CGI worker) or, once the embedder is attached to a
 * worker's event loop (mk_embedder_attach), a call that may end later
 * (mk_embed_start): the http embedder then runs its transfers on the
 * loop and the worker serves other requests meanwhile.
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
struct mk_loop;

/*
 * One embedding that may end later, in the caller's memory, which must
 * stay put until the call is done or cancelled. The caller sets out and
 * done/arg; the embedder sets rc and uses transfer while it is pending.
 */
struct mk_embed_call {
	float *out;              /* dim floats */
	void (*done)(void *arg); /* a pending call ended: rc is set */
	void *arg;
	enum mk_err rc;
	void *transfer; /* the embedder's, while pending */
};

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
	/*
	 * Optional (NULL: every embedding is the blocking embed). attach
	 * hands the embedder the worker's loop; start begins call and
	 * returns MK_EPENDING (done is then called from the loop, once), or
	 * ends it at once with its code; cancel forgets a pending call
	 * without calling done.
	 */
	enum mk_err (*attach)(
	    struct mk_embedder *embedder, struct mk_loop *loop);
	enum mk_err (*start)(struct mk_embedder *embedder,
	    struct mk_embed_call *call, const char *text, size_t len);
	void (*cancel)(
	    struct mk_embedder *embedder, struct mk_embed_call *call);
};

struct mk_embedder {
	const struct mk_embedder_ops *ops;
	char name[64]; /* "hash-v1", or "http:<model>" */
	unsigned dim;
};

static inline enum mk_err
mk_embed(struct mk_embedder *embedder, const char *text, size_t len, float *out)
{
	return embedder->ops->embed(embedder, text, len, out);
}

/*
 * Attaches the embedder to loop (which must outlive it). MK_OK (also for
 * an embedder that never waits), MK_ENOMEM or MK_EINTERNAL.
 */
static inline enum mk_err
mk_embedder_attach(struct mk_embedder *embedder, struct mk_loop *loop)
{
	return embedder->ops->attach != NULL
	    ? embedder->ops->attach(embedder, loop)
	    : MK_OK;
}

/*
 * Begins an embedding of text into call->out. MK_EPENDING: call->done
 * will be called from the loop with call->rc set; anything else: the
 * embedding ended now with that code (also in call->rc). The text is
 * copied: the caller need not keep it.
 */
static inline enum mk_err
mk_embed_start(struct mk_embedder *embedder, struct mk_embed_call *call,
    const char *text, size_t len)
{
	call->transfer = NULL;
	if (embedder->ops->start == NULL)
		return call->rc =
			   embedder->ops->embed(embedder, text, len, call->out);
	return embedder->ops->start(embedder, call, text, len);
}

/*
 * Forgets a pending call (nothing when it is not pending); done is not called.
 */
static inline void
mk_embed_cancel(struct mk_embedder *embedder, struct mk_embed_call *call)
{
	if (call->transfer != NULL && embedder->ops->cancel != NULL)
		embedder->ops->cancel(embedder, call);
}

static inline void
mk_embedder_free(struct mk_embedder *embedder)
{
	if (embedder != NULL)
		embedder->ops->destroy(embedder);
}

/*
 * The built-in hashing embedder with dim buckets (8..MK_EMBED_MAX_DIM). NULL
 * when out of memory.
 */
struct mk_embedder *mk_embedder_hash_new(unsigned dim);

/*
 * The HTTP embedder: url "http[s]://host[:port]/path", model name, dim
 * expected dimensions, timeout for the whole exchange, api_key sent as
 * "Authorization: Bearer <api_key>" (NULL or "": none). NULL with a reason
 * in err for a malformed URL or key, or out of memory.
 */
struct mk_embedder *mk_embedder_http_new(const char *url, const char *model,
    unsigned dim, int timeout_ms, const char *api_key, char *err,
    size_t errlen);

/*
 * Reads the API key file at path: its first line, blanks trimmed, at
 * most 4 KiB of printable ASCII. Returns a heap string (free()), or NULL
 * with a reason in err.
 */
char *mk_embedder_read_key(const char *path, char *err, size_t errlen);

/*
 * The embedder the configuration names (embedder = hash | http, with
 * embedding_dim, embedder_url, embedder_model, embedder_timeout,
 * embedder_api_key_file, read now). NULL with a reason in err.
 */
struct mk_embedder *mk_embedder_from_config(
    const struct mk_config *config, char *err, size_t errlen);

/*
 * Parses an OpenAI-compatible embeddings answer body (len bytes) into
 * out[dim]: {"data":[{"embedding":[n, ...], ...}], ...} with exactly dim
 * finite numbers. Returns MK_OK, or MK_EINTERNAL for anything else.
 * Exposed for its fuzz target.
 */
enum mk_err mk_embed_parse_response(
    const char *body, size_t len, unsigned dim, float *out);

/* Scales v[dim] to unit length (leaves an all-zero vector alone). */
void mk_embed_normalize(float *v, unsigned dim);

#endif
