/*
 * libFuzzer target: the embeddings answer parser (the body a model
 * server sends). Any bytes must be refused or give exactly dim finite
 * floats; a refusal must leave the vector zeroed. The first byte picks
 * dim (8..39), so the dimension check is reached from both sides; the
 * vector is then normalised, which must keep it finite.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "search/embedder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	float out[64];
	unsigned dim;
	double norm = 0.0;

	if (size == 0)
		return 0;
	dim = 8 + data[0] % 32;
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		out[i] = 1.0f;
	if (mk_embed_parse_response(
		(const char *)data + 1, size - 1, dim, out) != MK_OK) {
		for (unsigned i = 0; i < dim; i++)
			if (out[i] != 0.0f)
				__builtin_trap(); /* a refusal leaves zeros */
		return 0;
	}
	for (unsigned i = 0; i < dim; i++)
		if (!isfinite(out[i]))
			__builtin_trap();
	if (out[dim] != 1.0f)
		__builtin_trap(); /* nothing past dim is written */
	mk_embed_normalize(out, dim);
	for (unsigned i = 0; i < dim; i++) {
		if (!isfinite(out[i]))
			__builtin_trap();
		norm += (double)out[i] * out[i];
	}
	if (norm != 0.0 && (norm < 1.0 - 1e-3 || norm > 1.0 + 1e-3))
		__builtin_trap(); /* unit length, or all zeros */
	return 0;
}
