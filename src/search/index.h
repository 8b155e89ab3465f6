/*
 * The vector index (search layer): every market's embedding in one
 * contiguous float32 matrix per worker, searched by brute force — a dot
 * product per row (vectors are unit length, so it is the cosine) and a
 * bounded min-heap for the top k. Rows are added, replaced and removed
 * in place as the worker learns of changes (see vectors.h); the order of
 * rows means nothing.
 *
 * An index is worker-lifetime, made for one embedder (name, dim): rows of
 * another embedder are never put in it. Its memory is its own (malloc),
 * grown by doubling; not thread-safe.
 */
#ifndef MK_VECTOR_INDEX_H
#define MK_VECTOR_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mk_vector_index;

struct mk_vector_hit {
	int64_t id;
	float score; /* in [-1, 1] */
};

/* An empty index of dim-dimensional vectors. NULL when out of memory. */
struct mk_vector_index *mk_vector_index_new(const char *embedder, unsigned dim);

void mk_vector_index_free(struct mk_vector_index *index);

const char *mk_vector_index_embedder(const struct mk_vector_index *index);
unsigned mk_vector_index_dim(const struct mk_vector_index *index);
size_t mk_vector_index_size(const struct mk_vector_index *index);

/* The change sequence the index has loaded up to (vectors.h). */
uint64_t mk_vector_index_seq(const struct mk_vector_index *index);
void mk_vector_index_set_seq(struct mk_vector_index *index, uint64_t seq);

/* Adds or replaces id's vector (dim floats, copied). MK_ENOMEM. */
enum mk_err mk_vector_index_put(
    struct mk_vector_index *index, int64_t id, const float *vector);

/* Removes id's vector, if any. */
void mk_vector_index_remove(struct mk_vector_index *index, int64_t id);

/*
 * A dot product as a score: within [-1, 1], rounded to six decimals (what
 * answers print), so that equal-looking scores rank by id.
 */
float mk_vector_score(float dot_product);

/*
 * The k best rows for query (dim floats, unit length) into out[0..*n),
 * best first; equal scores by ascending id. k is at most 1000.
 */
void mk_vector_index_search(const struct mk_vector_index *index,
    const float *query, size_t k, struct mk_vector_hit *out, size_t *n);

#endif
