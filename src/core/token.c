/*
 * Tokens (core layer); see token.h.
 */
#include "core/token.h"

bool
mk_token_valid(const char *s, size_t len)
{
	if (len == 0 || len > MK_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' ||
			c == '-'))
			return false;
	}
	return true;
}
