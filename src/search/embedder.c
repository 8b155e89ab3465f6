/*
 * Embedders (search layer); see embedder.h. This file holds the built-in
 * hashing embedder, and the answer parser and the normaliser the HTTP
 * embedder (embed_http.c) shares; the choice by configuration is in
 * embedder_config.c. It calls only core/ (the strict JSON parser, the
 * UTF-8 decoder) and no other embedder. A hash embedder allocates once,
 * when made: its feature table is scratch owned by the embedder and freed
 * by destroy, so an embedding costs no malloc.
 *
 * hash-v1, exactly. Any change to a rule below changes the vectors, and
 * stored vectors are only compared with vectors of the same name: bump
 * the version in HASH_NAME with it.
 *
 * Text: the first 64 KiB (TEXT_MAX) are read, the rest ignored.
 * Tokens: runs of ASCII letters and digits (letters lower-cased) and of
 *   valid UTF-8 multibyte characters, so "Zürich" is one token; Latin-1
 *   capitals (U+00C0-U+00DE but U+00D7) are lower-cased too. Everything
 *   else separates tokens: ASCII punctuation and space, invalid UTF-8,
 *   and the multibyte punctuation a pasted text brings (U+0080-U+00BF,
 *   U+00D7, U+00F7, U+2000-U+206F, U+20A0-U+20CF, U+2E00-U+2E7F,
 *   U+3000-U+303F, U+FEFF, U+FF01-U+FF0F, U+1F000-U+1FAFF). Between two
 *   digits a ',' is dropped and a '.' kept ("$150,000" is "150000",
 *   "2.5%" is "2.5"). A token keeps its first 64 bytes (TOKEN_MAX, whole
 *   characters); the rest of a longer one is ignored.
 * Dropped: tokens of one character, and the stopwords below (checked on
 *   tokens of ASCII letters before stemming). "us", "may", "not", "no",
 *   "over", "under", "before", "after" are not stopwords here: in
 *   prediction markets they are a country, a month and the question.
 * Stemming, only of tokens made of ASCII letters, in three steps:
 *   1. "-ies" -> "-y" when 5+ letters ("parties" -> "party"); else a
 *      final "s" goes when 4+ letters and not after s, u or i ("wins" ->
 *      "win", "elections" -> "election"; "congress", "bonus", "crisis"
 *      stay).
 *   2. "-ied" -> "-y" when 5+ letters ("tried" -> "try"); else "-ing"
 *      goes when 6+ letters, "-ed" when 5+ letters, and then a doubled
 *      final consonant other than l, s, z loses one letter when 4+ are
 *      left ("winning" -> "win", "cutting" -> "cut", "falling" -> "fall").
 *   3. A final "e" goes when 4+ letters: "rate", "rates", "rating" and
 *      "rated" all meet at "rat"; "close", "closing" at "clos".
 *   So every stem keeps at least 3 letters.
 * Features of each kept token, its stem s:
 *   unigram "U" s                               weight 1.0
 *   bigram  "B" prev " " s  (previous kept token) weight 0.5
 *   character trigrams "T" of "^" s "$", by characters, not bytes
 *     ("rat": "^ra", "rat", "at$"), sharing 0.25 among them so long words
 *     do not outweigh short ones; none for tokens holding a digit (years
 *     and amounts are exact: 2027 must not half-match 2028).
 * Weighting: a feature seen tf times with weights w1..wtf counts
 *   mean(w) * (1 + ln tf). A feature's id is the 64-bit FNV-1a of its
 *   namespace byte and bytes, finished with MurmurHash3's fmix64; it adds
 *   to bucket id % dim, negated when bit 63 is set. The vector is then
 *   L2-normalised; no features give all zeros.
 *   Features are counted in a table of TABLE_SLOTS; when it holds
 *   TABLE_LOAD distinct features (only in very long texts) it is added
 *   to the vector and emptied, and counting starts again.
 */
#include <assert.h>
#include <float.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/json_parse.h"
#include "core/hash.h"
#include "search/embedder.h"

#define HASH_NAME "hash-v1"
#define TEXT_MAX (64 * 1024)
#define TOKEN_MAX 64
#define TABLE_SLOTS 4096 /* a power of two */
#define TABLE_LOAD 3072  /* 3/4 full: probes stay short */

#define WEIGHT_UNIGRAM 1.0f
#define WEIGHT_BIGRAM 0.5f
/* Per token occurrence, shared by its trigrams. */
#define WEIGHT_TRIGRAMS 0.25f

/* Nesting an embeddings answer needs is 4; a little room for extras. */
#define ANSWER_MAX_DEPTH 8
/* One vector of up to MK_EMBED_MAX_DIM numbers, and room for the envelope. */
#define ANSWER_MAX_VALUES (MK_EMBED_MAX_DIM + 256)

/* One distinct feature of the text being embedded. */
struct feature {
	uint64_t id;    /* 0: empty slot */
	float weight;   /* sum of its occurrences' weights */
	uint32_t count; /* its occurrences */
};

struct hash_embedder {
	struct mk_embedder base; /* first: the ops cast back to this */
	float *out;              /* the caller's vector, during embed */
	size_t used_count;
	uint16_t used[TABLE_LOAD]; /* occupied slots in insertion order */
	struct feature table[TABLE_SLOTS];
};

/* The token being read, and what the features of the next one need. */
struct scan {
	unsigned char bytes[TOKEN_MAX];
	uint8_t starts[TOKEN_MAX]; /* byte offset of each character */
	size_t len;                /* bytes kept */
	size_t chars;              /* characters kept */
	bool full;                 /* TOKEN_MAX reached: ignore the rest */
	bool digit;                /* holds a digit */
	bool multibyte;            /* holds a non-ASCII character */
	bool have_prev;
	uint64_t prev_state; /* FNV state after "B" prev " " */
};

/* Sorted (strcmp order) for bsearch; checked by an assert at creation. */
static const char *const stopwords[] = {
	"about",
	"all",
	"am",
	"an",
	"and",
	"any",
	"are",
	"as",
	"at",
	"be",
	"been",
	"being",
	"both",
	"but",
	"by",
	"can",
	"could",
	"did",
	"do",
	"does",
	"doing",
	"each",
	"for",
	"from",
	"had",
	"has",
	"have",
	"having",
	"he",
	"her",
	"here",
	"hers",
	"him",
	"his",
	"how",
	"if",
	"in",
	"into",
	"is",
	"it",
	"its",
	"itself",
	"just",
	"me",
	"might",
	"must",
	"my",
	"of",
	"on",
	"or",
	"other",
	"our",
	"ours",
	"own",
	"shall",
	"she",
	"should",
	"so",
	"some",
	"such",
	"than",
	"that",
	"the",
	"their",
	"theirs",
	"them",
	"then",
	"there",
	"these",
	"they",
	"this",
	"those",
	"to",
	"too",
	"very",
	"was",
	"we",
	"were",
	"what",
	"when",
	"where",
	"which",
	"while",
	"who",
	"whom",
	"whose",
	"why",
	"will",
	"with",
	"would",
	"you",
	"your",
	"yours",
};

static inline uint64_t
fnv_byte(uint64_t h, unsigned char c)
{
	return mk_fnv1a64_update(h, &c, 1);
}

/* FNV-1a alone leaves the low bits (the bucket) weakly mixed. */
static inline uint64_t
fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Adds the counted features to the vector and empties the table. */
static void
flush(struct hash_embedder *e)
{
	unsigned dim = e->base.dim;

	for (size_t k = 0; k < e->used_count; k++) {
		struct feature *f = &e->table[e->used[k]];
		float v = f->weight;

		if (f->count > 1)
			v = v / (float)f->count *
			    (float)(1.0 + log((double)f->count));
		e->out[f->id % dim] += (f->id >> 63) ? -v : v;
		*f = (struct feature){ 0 };
	}
	e->used_count = 0;
}

static void
add_feature(struct hash_embedder *e, uint64_t state, float weight)
{
	uint64_t id = fmix64(state);
	size_t home, i;

	if (id == 0)
		id = 1; /* 0 marks an empty slot */
	/* Bits apart from the bucket's, so a bucket's features spread here. */
	home = i = (size_t)(id >> 40) & (TABLE_SLOTS - 1);
	for (;;) {
		struct feature *f = &e->table[i];

		if (f->id == id) {
			f->weight += weight;
			f->count++;
			return;
		}
		if (f->id == 0)
			break;
		i = (i + 1) & (TABLE_SLOTS - 1);
	}
	if (e->used_count == TABLE_LOAD) {
		flush(e);
		i = home;
	}
	e->table[i] =
	    (struct feature){ .id = id, .weight = weight, .count = 1 };
	e->used[e->used_count++] = (uint16_t)i;
}

static int
stopword_cmp(const void *key, const void *member)
{
	const struct scan *s = key;
	const char *word = *(const char *const *)member;
	int c = strncmp((const char *)s->bytes, word, s->len);

	if (c != 0)
		return c;
	return word[s->len] == '\0' ? 0 : -1;
}

static bool
is_stopword(const struct scan *s)
{
	if (s->len > 6) /* the longest are "itself", "theirs" */
		return false;
	return bsearch(s, stopwords, sizeof(stopwords) / sizeof(stopwords[0]),
		   sizeof(stopwords[0]), stopword_cmp) != NULL;
}

static bool
ends_with(const unsigned char *w, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(w + n - k, suffix, k) == 0;
}

static bool
is_vowel(unsigned char c)
{
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* The stemming rules of the file header; w is lower-case ASCII letters. */
static size_t
stem(unsigned char *w, size_t n)
{
	if (n >= 5 && ends_with(w, n, "ies")) {
		w[n - 3] = 'y';
		n -= 2;
	} else if (n >= 4 && w[n - 1] == 's' && w[n - 2] != 's' &&
	    w[n - 2] != 'u' && w[n - 2] != 'i') {
		n--;
	}
	if (n >= 5 && ends_with(w, n, "ied")) {
		w[n - 3] = 'y';
		n -= 2;
	} else if ((n >= 6 && ends_with(w, n, "ing")) ||
	    (n >= 5 && ends_with(w, n, "ed"))) {
		n -= w[n - 1] == 'g' ? 3 : 2;
		if (n >= 4 && w[n - 1] == w[n - 2] && !is_vowel(w[n - 1]) &&
		    w[n - 1] != 'l' && w[n - 1] != 's' && w[n - 1] != 'z')
			n--;
	}
	if (n >= 4 && w[n - 1] == 'e')
		n--;
	return n;
}

static void
add_trigrams(struct hash_embedder *e, const struct scan *s)
{
	/* Symbols: '^', the characters, '$'; trigram k is symbols k..k+2. */
	size_t m = s->chars;
	float weight = WEIGHT_TRIGRAMS / (float)m;

	for (size_t k = 0; k < m; k++) {
		uint64_t h = fnv_byte(MK_FNV1A64_INIT, 'T');

		for (size_t sym = k; sym < k + 3; sym++) {
			if (sym == 0) {
				h = fnv_byte(h, '^');
			} else if (sym == m + 1) {
				h = fnv_byte(h, '$');
			} else {
				size_t from = s->starts[sym - 1];
				size_t to = sym < m ? s->starts[sym] : s->len;

				h = mk_fnv1a64_update(
				    h, s->bytes + from, to - from);
			}
		}
		add_feature(e, h, weight);
	}
}

/* Turns the token read so far into features and starts the next one. */
static void
end_token(struct hash_embedder *e, struct scan *s)
{
	uint64_t h;

	if (s->chars < 2)
		goto reset;
	if (!s->digit && !s->multibyte) {
		if (is_stopword(s))
			goto reset;
		s->len = s->chars = stem(s->bytes, s->len);
	}
	add_feature(e,
	    mk_fnv1a64_update(fnv_byte(MK_FNV1A64_INIT, 'U'), s->bytes, s->len),
	    WEIGHT_UNIGRAM);
	if (s->have_prev)
		add_feature(e,
		    mk_fnv1a64_update(s->prev_state, s->bytes, s->len),
		    WEIGHT_BIGRAM);
	h = mk_fnv1a64_update(fnv_byte(MK_FNV1A64_INIT, 'B'), s->bytes, s->len);
	s->prev_state = fnv_byte(h, ' ');
	s->have_prev = true;
	if (!s->digit)
		add_trigrams(e, s);
reset:
	s->len = s->chars = 0;
	s->full = s->digit = s->multibyte = false;
}

static void
push_ascii(struct scan *s, unsigned char c)
{
	if (s->full || s->len == TOKEN_MAX) {
		s->full = true;
		return;
	}
	s->starts[s->chars++] = (uint8_t)s->len;
	s->bytes[s->len++] = c;
	if (c >= '0' && c <= '9')
		s->digit = true;
}

static void
push_multibyte(struct scan *s, const unsigned char *p, size_t n)
{
	if (s->full || s->len + n > TOKEN_MAX) {
		s->full = true;
		return;
	}
	s->starts[s->chars++] = (uint8_t)s->len;
	memcpy(s->bytes + s->len, p, n);
	/* Latin-1 capitals (À..Þ but ×) fold like ASCII ones. */
	if (n == 2 && p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0x9E &&
	    p[1] != 0x97)
		s->bytes[s->len + 1] = (unsigned char)(p[1] + 0x20);
	s->len += n;
	s->multibyte = true;
}

/* Whether the valid UTF-8 character at p (n bytes) is punctuation here. */
static bool
is_separator(const unsigned char *p, size_t n)
{
	uint32_t cp;

	if (n == 2) {
		cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
		return cp <= 0xBF || cp == 0xD7 || cp == 0xF7;
	}
	if (n == 3) {
		cp = (uint32_t)(p[0] & 0x0F) << 12 |
		    (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
		return (cp >= 0x2000 && cp <= 0x206F) ||
		    (cp >= 0x20A0 && cp <= 0x20CF) ||
		    (cp >= 0x2E00 && cp <= 0x2E7F) ||
		    (cp >= 0x3000 && cp <= 0x303F) || cp == 0xFEFF ||
		    (cp >= 0xFF01 && cp <= 0xFF0F);
	}
	cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
	    (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
	return cp >= 0x1F000 && cp <= 0x1FAFF;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static enum mk_err
hash_embed(
    struct mk_embedder *embedder, const char *text, size_t len, float *out)
{
	struct hash_embedder *e = (struct hash_embedder *)embedder;
	const unsigned char *p = (const unsigned char *)text;
	struct scan s;
	size_t i = 0;

	memset(out, 0, embedder->dim * sizeof(*out));
	s.len = s.chars = 0;
	s.full = s.digit = s.multibyte = s.have_prev = false;
	s.prev_state = 0;
	e->out = out;
	if (len > TEXT_MAX)
		len = TEXT_MAX;
	while (i < len) {
		unsigned char c = p[i];
		size_t n;

		if (c < 0x80) {
			if ((c >= 'a' && c <= 'z') || is_digit(c))
				push_ascii(&s, c);
			else if (c >= 'A' && c <= 'Z')
				push_ascii(
				    &s, (unsigned char)(c + ('a' - 'A')));
			else if ((c == ',' || c == '.') && s.len > 0 && i > 0 &&
			    is_digit(p[i - 1]) && i + 1 < len &&
			    is_digit(p[i + 1])) {
				if (c == '.')
					push_ascii(&s, c);
			} else {
				end_token(e, &s);
			}
			i++;
			continue;
		}
		n = mk_utf8_sequence_len(p + i, len - i);
		if (n == 0 || is_separator(p + i, n)) {
			end_token(e, &s);
			i += n == 0 ? 1 : n;
			continue;
		}
		push_multibyte(&s, p + i, n);
		i += n;
	}
	end_token(e, &s);
	flush(e);
	e->out = NULL;
	mk_embed_normalize(out, embedder->dim);
	return MK_OK;
}

static void
hash_destroy(struct mk_embedder *embedder)
{
	free(embedder);
}

static const struct mk_embedder_ops hash_ops = {
	.embed = hash_embed,
	.destroy = hash_destroy,
};

static bool
stopwords_sorted(void)
{
	for (size_t i = 1; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
		if (strcmp(stopwords[i - 1], stopwords[i]) >= 0)
			return false;
	return true;
}

/*
 * Makes a hash embedder of dim buckets. Returns it (free with
 * mk_embedder_free()), or NULL when out of memory or dim is out of range.
 */
struct mk_embedder *
mk_embedder_hash_new(unsigned dim)
{
	struct hash_embedder *e;

	assert(stopwords_sorted());
	if (dim < 8 || dim > MK_EMBED_MAX_DIM)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->base.ops = &hash_ops;
	e->base.dim = dim;
	memcpy(e->base.name, HASH_NAME, sizeof(HASH_NAME));
	return &e->base;
}

/*
 * Scales v[dim] to unit length, in double so 4096 small components keep
 * their precision; an all-zero vector stays as it is. The sum of squares
 * of floats is a normal double (at least 1e-90, at most 1e80).
 */
void
mk_embed_normalize(float *v, unsigned dim)
{
	double sum = 0.0, scale;

	for (unsigned i = 0; i < dim; i++)
		sum += (double)v[i] * (double)v[i];
	if (sum == 0.0 || !isfinite(sum))
		return;
	scale = 1.0 / sqrt(sum);
	for (unsigned i = 0; i < dim; i++)
		v[i] = (float)((double)v[i] * scale);
}

/* One element of "embedding": a JSON number that is a finite float. */
static bool
float_of(struct json_object *item, float *out)
{
	double d;

	if (!json_object_is_type(item, json_type_int) &&
	    !json_object_is_type(item, json_type_double))
		return false;
	d = json_object_get_double(item);
	if (!isfinite(d) || d > FLT_MAX || d < -FLT_MAX)
		return false;
	*out = (float)d;
	return true;
}

/*
 * Parses an embeddings answer (see embedder.h). "data" must hold exactly
 * one item, as one input was sent; other members are ignored. On failure
 * out is zeroed, so a caller that ignores the code still gets no garbage.
 */
enum mk_err
mk_embed_parse_response(const char *body, size_t len, unsigned dim, float *out)
{
	struct json_object *root = NULL, *data, *item, *embedding;
	const char *why;
	enum mk_err rc = MK_EINTERNAL;

	if (dim == 0 || dim > MK_EMBED_MAX_DIM)
		return MK_EINTERNAL;
	if (mk_json_parse(body, len, ANSWER_MAX_DEPTH, ANSWER_MAX_VALUES, &root,
		&why) != MK_OK)
		goto done;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "data", &data) ||
	    !json_object_is_type(data, json_type_array) ||
	    json_object_array_length(data) != 1)
		goto done;
	item = json_object_array_get_idx(data, 0);
	if (!json_object_is_type(item, json_type_object) ||
	    !json_object_object_get_ex(item, "embedding", &embedding) ||
	    !json_object_is_type(embedding, json_type_array) ||
	    json_object_array_length(embedding) != dim)
		goto done;
	for (unsigned i = 0; i < dim; i++)
		if (!float_of(json_object_array_get_idx(embedding, i), &out[i]))
			goto done;
	rc = MK_OK;
done:
	if (root != NULL)
		json_object_put(root);
	if (rc != MK_OK)
		memset(out, 0, dim * sizeof(*out));
	return rc;
}
