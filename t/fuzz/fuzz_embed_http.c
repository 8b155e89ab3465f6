/*
 * libFuzzer target: the http embedder's reading of an HTTP/1.1 answer
 * (status line, header fields, Content-Length, chunked transfer coding
 * with extensions and trailers, 1xx interim answers), fed in prefixes as
 * partial reads would deliver them. The first byte picks the read size.
 * Any bytes must be read or refused, never crash, and a body must lie
 * within the bytes after the head.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "search/embedder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t body_offset = 0, body_len = 0;
	int status = 0;

	if (size == 0)
		return 0;
	if (mk_embed_http_read_answer((const char *)data + 1, size - 1, 1 + data[0] % 64,
	    &status, &body_offset, &body_len) == MK_OK) {
		if (body_offset > size - 1 || body_len > size - 1 - body_offset ||
		    status < 100 || status > 999)
			abort();
	}
	return 0;
}
