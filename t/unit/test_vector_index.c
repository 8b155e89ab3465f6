/*
 * The vector index (src/search/index.c): put, replace, remove (with the
 * last row moving into the hole and the id table's backward shift), and
 * top-k search checked against a sort of every row — best first, equal
 * scores by ascending id — over random data through thousands of random
 * operations, so probe chains, growth and removals all get exercised.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/index.h"
#include "tap.h"

#define DIM 8
#define MAX_IDS 5000

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
random_unit(float *v)
{
	float norm = 0;

	for (int i = 0; i < DIM; i++) {
		v[i] = (float)((int64_t)(rng() % 2001) - 1000) / 1000.0f;
		norm += v[i] * v[i];
	}
	norm = sqrtf(norm);
	for (int i = 0; i < DIM; i++)
		v[i] = norm > 0 ? v[i] / norm : 0;
}

/* The reference: what the index should hold. */
static float model[MAX_IDS + 1][DIM];
static int present[MAX_IDS + 1];

struct ref_hit {
	int64_t id;
	float score;
};

static int
by_rank(const void *pa, const void *pb)
{
	const struct ref_hit *a = pa, *b = pb;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static float
ref_dot(const float *a, const float *b)
{
	/* The same summation order as the index, so scores compare exactly. */
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;

	for (int i = 0; i + 4 <= DIM; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	return (s0 + s1) + (s2 + s3);
}

/* Checks a top-k against the reference; returns true when equal. */
static int
check_search(const struct mk_vector_index *index, const float *query, size_t k)
{
	static struct ref_hit all[MAX_IDS];
	struct mk_vector_hit got[64];
	size_t n = 0, nall = 0;

	for (int64_t id = 1; id <= MAX_IDS; id++) {
		if (present[id])
			all[nall++] = (struct ref_hit){ id,
				mk_vector_score(ref_dot(model[id], query)) };
	}
	qsort(all, nall, sizeof(all[0]), by_rank);
	mk_vector_index_search(index, query, k, got, &n);
	if (n != (nall < k ? nall : k))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (got[i].id != all[i].id || got[i].score != all[i].score)
			return 0;
	}
	return 1;
}

static void
test_basics(void)
{
	struct mk_vector_index *index = mk_vector_index_new("test-v1", DIM);
	float a[DIM] = { 1 }, b[DIM] = { 0, 1 }, c[DIM] = { 0.6f, 0.8f },
	      q[DIM] = { 1 };
	struct mk_vector_hit hits[4];
	size_t n = 0;

	tap_ok(index != NULL, "an index of %d dimensions", DIM);
	tap_is_str(mk_vector_index_embedder(index), "test-v1",
	    "it names its embedder");
	mk_vector_index_search(index, q, 3, hits, &n);
	tap_is_int(n, 0, "an empty index finds nothing");
	tap_is_int(mk_vector_index_put(index, 7, a), MK_OK, "put 7");
	tap_is_int(mk_vector_index_put(index, 3, b), MK_OK, "put 3");
	tap_is_int(mk_vector_index_put(index, 5, c), MK_OK, "put 5");
	tap_is_int(mk_vector_index_size(index), 3, "three rows");
	mk_vector_index_search(index, q, 3, hits, &n);
	tap_ok(n == 3 && hits[0].id == 7 && hits[1].id == 5 && hits[2].id == 3,
	    "best first: 7 (1.0), 5 (0.6), 3 (0.0)");
	tap_ok(hits[0].score == 1.0f &&
		hits[1].score == mk_vector_score(0.6f) && hits[2].score == 0.0f,
	    "scores are the dot products, to six decimals");
	tap_is_int(
	    mk_vector_index_put(index, 7, b), MK_OK, "put 7 again: replaced");
	tap_is_int(mk_vector_index_size(index), 3, "still three rows");
	mk_vector_index_search(index, q, 3, hits, &n);
	tap_ok(n == 3 && hits[0].id == 5 && hits[1].id == 3 && hits[2].id == 7,
	    "a tie (3 and 7 score 0) goes to the smaller id");
	mk_vector_index_search(index, q, 1, hits, &n);
	tap_ok(n == 1 && hits[0].id == 5, "k = 1: the best only");
	mk_vector_index_remove(index, 5);
	mk_vector_index_remove(index, 42);
	tap_is_int(mk_vector_index_size(index), 2,
	    "remove 5 (and 42, never there): two rows");
	mk_vector_index_search(index, q, 3, hits, &n);
	tap_ok(n == 2 && hits[0].id == 3 && hits[1].id == 7,
	    "5 is gone from results");
	mk_vector_index_set_seq(index, 99);
	tap_is_int(mk_vector_index_seq(index), 99, "the loaded seq is kept");
	mk_vector_index_free(index);
}

static void
test_random(void)
{
	struct mk_vector_index *index = mk_vector_index_new("test-v1", DIM);
	int mismatches = 0, searches = 0, puts = 0, removes = 0;
	float v[DIM];

	memset(present, 0, sizeof(present));
	for (int op = 0; op < 40000; op++) {
		int64_t id = 1 + (int64_t)(rng() % MAX_IDS);
		uint64_t what = rng() % 100;

		if (what < 60) {
			random_unit(v);
			if (mk_vector_index_put(index, id, v) != MK_OK) {
				mismatches++;
				break;
			}
			memcpy(model[id], v, sizeof(v));
			present[id] = 1;
			puts++;
		} else if (what < 95) {
			mk_vector_index_remove(index, id);
			present[id] = 0;
			removes++;
		} else {
			size_t expected = 0;

			random_unit(v);
			for (int64_t i = 1; i <= MAX_IDS; i++)
				expected += (size_t)present[i];
			if (mk_vector_index_size(index) != expected ||
			    !check_search(index, v, 1 + rng() % 50))
				mismatches++;
			searches++;
		}
	}
	tap_ok(mismatches == 0,
	    "40,000 random operations (%d puts, %d removes, %d searches): "
	    "size and top-k always match a full sort",
	    puts, removes, searches);
	random_unit(v);
	tap_ok(check_search(index, v, 50), "a last top-50 matches too");
	mk_vector_index_free(index);
}

int
main(void)
{
	test_basics();
	test_random();
	return tap_done();
}
