/*
 * The vector index (search layer); see index.h.
 *
 * Rows live in a dense matrix (row r at vectors + r * dim) with their ids
 * beside them; an open-addressing table maps an id to its row. Removal
 * moves the last row into the hole, so the matrix stays dense and a scan
 * touches nothing but live rows.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "search/index.h"

#define EMPTY_SLOT INT64_MIN

struct mk_vector_index {
	char embedder[64];
	unsigned dim;
	float *vectors; /* cap rows of dim floats */
	int64_t *ids;   /* cap */
	size_t n, cap;
	int64_t *slot_ids;   /* nslots: an id, or EMPTY_SLOT */
	uint32_t *slot_rows; /* its row */
	size_t nslots;       /* a power of two, at least twice cap */
	uint64_t seq;
};

struct mk_vector_index *
mk_vector_index_new(const char *embedder, unsigned dim)
{
	struct mk_vector_index *index = calloc(1, sizeof(*index));
	size_t len = strlen(embedder);

	if (index == NULL || dim == 0 || len >= sizeof(index->embedder)) {
		free(index);
		return NULL;
	}
	memcpy(index->embedder, embedder, len + 1);
	index->dim = dim;
	return index;
}

void
mk_vector_index_free(struct mk_vector_index *index)
{
	if (index == NULL)
		return;
	free(index->vectors);
	free(index->ids);
	free(index->slot_ids);
	free(index->slot_rows);
	free(index);
}

const char *
mk_vector_index_embedder(const struct mk_vector_index *index)
{
	return index->embedder;
}

unsigned
mk_vector_index_dim(const struct mk_vector_index *index)
{
	return index->dim;
}

size_t
mk_vector_index_size(const struct mk_vector_index *index)
{
	return index->n;
}

uint64_t
mk_vector_index_seq(const struct mk_vector_index *index)
{
	return index->seq;
}

void
mk_vector_index_set_seq(struct mk_vector_index *index, uint64_t seq)
{
	index->seq = seq;
}

static size_t
slot_of(const struct mk_vector_index *index, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 16) & (index->nslots - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t
find_slot(const struct mk_vector_index *index, int64_t id)
{
	size_t s = slot_of(index, id);

	while (index->slot_ids[s] != EMPTY_SLOT && index->slot_ids[s] != id)
		s = (s + 1) & (index->nslots - 1);
	return s;
}

/* Rebuilds the id table at nslots (rows unchanged). */
static bool
rehash(struct mk_vector_index *index, size_t nslots)
{
	int64_t *slot_ids = malloc(nslots * sizeof(*slot_ids));
	uint32_t *slot_rows = malloc(nslots * sizeof(*slot_rows));

	if (slot_ids == NULL || slot_rows == NULL) {
		free(slot_ids);
		free(slot_rows);
		return false;
	}
	for (size_t s = 0; s < nslots; s++)
		slot_ids[s] = EMPTY_SLOT;
	free(index->slot_ids);
	free(index->slot_rows);
	index->slot_ids = slot_ids;
	index->slot_rows = slot_rows;
	index->nslots = nslots;
	for (size_t r = 0; r < index->n; r++) {
		size_t s = find_slot(index, index->ids[r]);

		index->slot_ids[s] = index->ids[r];
		index->slot_rows[s] = (uint32_t)r;
	}
	return true;
}

static bool
grow(struct mk_vector_index *index)
{
	size_t cap = index->cap == 0 ? 1024 : index->cap * 2;
	float *vectors;
	int64_t *ids;

	if (cap > UINT32_MAX || cap > SIZE_MAX / sizeof(float) / index->dim)
		return false;
	vectors = realloc(index->vectors, cap * index->dim * sizeof(float));
	if (vectors == NULL)
		return false;
	index->vectors = vectors;
	ids = realloc(index->ids, cap * sizeof(*ids));
	if (ids == NULL)
		return false;
	index->ids = ids;
	if (!rehash(index, cap * 2))
		return false;
	index->cap = cap;
	return true;
}

enum mk_err
mk_vector_index_put(
    struct mk_vector_index *index, int64_t id, const float *vector)
{
	size_t s, row;

	if (id == EMPTY_SLOT)
		return MK_EINVAL;
	if (index->nslots > 0) {
		s = find_slot(index, id);
		if (index->slot_ids[s] == id) {
			memcpy(index->vectors +
				(size_t)index->slot_rows[s] * index->dim,
			    vector, index->dim * sizeof(float));
			return MK_OK;
		}
	}
	if (index->n == index->cap && !grow(index))
		return MK_ENOMEM;
	row = index->n++;
	index->ids[row] = id;
	memcpy(index->vectors + row * index->dim, vector,
	    index->dim * sizeof(float));
	s = find_slot(index, id);
	index->slot_ids[s] = id;
	index->slot_rows[s] = (uint32_t)row;
	return MK_OK;
}

void
mk_vector_index_remove(struct mk_vector_index *index, int64_t id)
{
	size_t s, hole, last, next;

	if (index->nslots == 0)
		return;
	s = find_slot(index, id);
	if (index->slot_ids[s] != id)
		return;
	hole = index->slot_rows[s];
	last = index->n - 1;
	if (hole != last) {
		/* The last row fills the hole. */
		size_t ls = find_slot(index, index->ids[last]);

		index->ids[hole] = index->ids[last];
		memcpy(index->vectors + hole * index->dim,
		    index->vectors + last * index->dim,
		    index->dim * sizeof(float));
		index->slot_rows[ls] = (uint32_t)hole;
	}
	index->n--;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	index->slot_ids[s] = EMPTY_SLOT;
	next = (s + 1) & (index->nslots - 1);
	while (index->slot_ids[next] != EMPTY_SLOT) {
		int64_t moving = index->slot_ids[next];
		uint32_t row = index->slot_rows[next];
		size_t to;

		index->slot_ids[next] = EMPTY_SLOT;
		to = find_slot(index, moving);
		index->slot_ids[to] = moving;
		index->slot_rows[to] = row;
		next = (next + 1) & (index->nslots - 1);
	}
}

/* a ranks below b: lower score, or the same score and a larger id. */
static bool
worse(const struct mk_vector_hit *a, const struct mk_vector_hit *b)
{
	return a->score < b->score || (a->score == b->score && a->id > b->id);
}

/* Restores the min-heap (worst at the root) below i. */
static void
sift_down(struct mk_vector_hit *heap, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct mk_vector_hit t;

		if (l < n && worse(&heap[l], &heap[m]))
			m = l;
		if (r < n && worse(&heap[r], &heap[m]))
			m = r;
		if (m == i)
			return;
		t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

static void
sift_up(struct mk_vector_hit *heap, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		struct mk_vector_hit t;

		if (!worse(&heap[i], &heap[parent]))
			return;
		t = heap[i];
		heap[i] = heap[parent];
		heap[parent] = t;
		i = parent;
	}
}

static float
dot(const float *a, const float *b, unsigned dim)
{
	/* Four sums: the compiler vectorises this without -ffast-math. */
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	unsigned i = 0;

	for (; i + 4 <= dim; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < dim; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

float
mk_vector_score(float dot_product)
{
	/* Rounding may step just outside [-1, 1]. */
	if (dot_product > 1.0f)
		return 1.0f;
	if (dot_product < -1.0f)
		return -1.0f;
	/*
	 * Six decimals, as answers print them: two scores that print alike
	 * are equal, so their order (ascending id) is the one clients see.
	 */
	return (float)(nearbyint((double)dot_product * 1e6) / 1e6);
}

void
mk_vector_index_search(const struct mk_vector_index *index, const float *query,
    size_t k, struct mk_vector_hit *out, size_t *n)
{
	size_t count = 0;

	if (k > 1000)
		k = 1000;
	for (size_t r = 0; r < index->n && k > 0; r++) {
		struct mk_vector_hit hit = {
			.id = index->ids[r],
			.score = dot(
			    index->vectors + r * index->dim, query, index->dim),
		};

		hit.score = mk_vector_score(hit.score);
		if (count < k) {
			out[count] = hit;
			sift_up(out, count++);
		} else if (worse(&out[0], &hit)) {
			out[0] = hit;
			sift_down(out, count, 0);
		}
	}
	/* Heap order to best first: pop the worst to the end, repeatedly. */
	for (size_t end = count; end > 1; end--) {
		struct mk_vector_hit t = out[0];

		out[0] = out[end - 1];
		out[end - 1] = t;
		sift_down(out, end - 1, 0);
	}
	*n = count;
}
