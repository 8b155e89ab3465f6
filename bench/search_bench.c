/*
 * Micro-benchmark: brute-force vector search (src/search/index.c), the
 * same top-k scan a worker does for GET /api/markets/search, over 10,000,
 * 100,000 and 1,000,000 random unit vectors of DIM dimensions (default
 * 512, the default embedding_dim), one core. Prints queries per second
 * and milliseconds per query for top-10, and the matrix's memory. Build
 * and run: `bench/run search-index [DIM]`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "search/index.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static float
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)(rng_state % 20001) / 10000.0f - 1.0f;
}

static void
random_unit(float *v, unsigned dim)
{
	float norm = 0;

	for (unsigned i = 0; i < dim; i++) {
		v[i] = rnd();
		norm += v[i] * v[i];
	}
	norm = sqrtf(norm);
	for (unsigned i = 0; i < dim; i++)
		v[i] /= norm;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = { 10000, 100000, 1000000 };
	unsigned dim = argc > 1 ? (unsigned)atoi(argv[1]) : 512;
	float *v = malloc(sizeof(float) * (dim > 0 ? dim : 1));

	if (dim < 8 || dim > 4096 || v == NULL) {
		fprintf(stderr, "usage: search_bench [DIM (8-4096)]\n");
		return 2;
	}
	printf("%-10s %5s %12s %12s %10s\n", "vectors", "dim", "queries/s",
	    "ms/query", "matrix MB");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct mk_vector_index *index =
		    mk_vector_index_new("bench", dim);
		struct mk_vector_hit hits[10];
		size_t n = 0, queries = 0;
		double start, elapsed;

		if (index == NULL)
			return 1;
		for (size_t i = 0; i < sizes[s]; i++) {
			random_unit(v, dim);
			if (mk_vector_index_put(index, (int64_t)i + 1, v) !=
			    MK_OK) {
				fprintf(stderr,
				    "out of memory at %zu vectors\n", i);
				return 1;
			}
		}
		start = now_s();
		do {
			random_unit(v, dim);
			mk_vector_index_search(index, v, 10, hits, &n);
			queries++;
			elapsed = now_s() - start;
		} while (elapsed < 2.0 || queries < 5);
		printf("%-10zu %5u %12.1f %12.3f %10.1f\n", sizes[s], dim,
		    (double)queries / elapsed,
		    elapsed * 1000.0 / (double)queries,
		    (double)sizes[s] * dim * 4 / 1e6);
		fflush(stdout);
		mk_vector_index_free(index);
	}
	free(v);
	return 0;
}
