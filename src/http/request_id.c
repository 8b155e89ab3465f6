/*
 * Request ids (http layer); see request_id.h.
 */
#include <errno.h>
#include <sys/random.h>

#include "core/token.h"
#include "http/request_id.h"

bool
mk_request_id_valid(const char *s, size_t len)
{
	return mk_token_valid(s, len);
}

int
mk_request_id_seed(struct mk_request_id_gen *gen)
{
	uint64_t seed[2];
	size_t got = 0;

	while (got < sizeof(seed)) {
		ssize_t n =
		    getrandom((char *)seed + got, sizeof(seed) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	gen->prefix = seed[0];
	gen->counter = seed[1];
	return 0;
}

/*
 * splitmix64's finalizer: a bijection, so distinct counters give distinct ids.
 */
static uint64_t
scramble(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void
mk_request_id_next(struct mk_request_id_gen *gen, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t parts[2] = { gen->prefix, scramble(gen->counter++) };

	for (int p = 0; p < 2; p++) {
		for (int i = 0; i < 16; i++)
			out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 15];
	}
	out[MK_REQUEST_ID_GENERATED_LEN] = '\0';
}
