/*
 * fuzz_auth.c — the pure parts of src/auth.c: the keys_file line parser
 * (auth_parse_line, over a whole file), expiry times (auth_parse_time), and
 * the key in a request header (auth_extract).
 *
 * Byte 0 chooses the header (Authorization or X-API-Key); the rest is a
 * keys file, and the header value.  Properties: a line's fields lie inside it
 * and hold no blank; an error always says why; a last line without its
 * newline at end of file reads as it would with one; a key taken from a
 * header lies inside the value, without surrounding whitespace.
 */
#include <string.h>

#include "auth.h"
#include "fuzz.h"

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static int
has_blank(const char *p, size_t n)
{
	return memchr(p, ' ', n) != NULL || memchr(p, '\t', n) != NULL;
}

static void
check_line(const char *buf, size_t used, const struct auth_line *l)
{
	if (l->blank)
		return;
	FUZZ_CHECK(l->key_len > 0 && inside(l->key, l->key_len, buf, used));
	FUZZ_CHECK(l->user_len > 0 && inside(l->user_id, l->user_len, buf, used));
	FUZZ_CHECK(l->name_len > 0 && inside(l->name, l->name_len, buf, used));
	FUZZ_CHECK(!has_blank(l->key, l->key_len));
	FUZZ_CHECK(!has_blank(l->user_id, l->user_len));
	FUZZ_CHECK(!has_blank(l->name, l->name_len));
	FUZZ_CHECK(l->user_len < CAP_AUTH_USER && l->name_len < CAP_AUTH_NAME);
}

/* The same line, ended by end of file rather than LF: the same reading. */
static void
check_unterminated(const char *line, size_t n, long r,
    const struct auth_line *l)
{
	struct auth_line again;
	size_t bare = n - 1;
	long r2;

	r2 = auth_parse_line(line, bare, 1, &again);
	if (bare == 0) {
		FUZZ_CHECK(r2 == 0);
		return;
	}
	FUZZ_CHECK((r2 < 0) == (r < 0));
	if (r < 0)
		return;
	FUZZ_CHECK(r2 == (long)bare);
	FUZZ_CHECK(again.blank == l->blank && again.disabled == l->disabled &&
	    again.expires_at == l->expires_at);
	FUZZ_CHECK(again.key_len == l->key_len && again.key == l->key);
	FUZZ_CHECK(again.name_len == l->name_len && again.name == l->name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_line l;
	const char *p, *key;
	size_t pos = 0, n, k;
	long r;
	int64_t t;

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	n = size - 1;

	/* The file, line by line, as config.c reads it. */
	while (pos < n) {
		r = auth_parse_line(p + pos, n - pos, 0, &l);
		if (r < 0) {
			FUZZ_CHECK(l.error != NULL && l.error[0] != '\0');
		} else if (r > 0) {
			FUZZ_CHECK((size_t)r <= n - pos && p[pos + (size_t)r - 1] == '\n');
			check_line(p + pos, (size_t)r, &l);
		}
		{
			const char *nl = memchr(p + pos, '\n', n - pos);

			if (nl != NULL && (size_t)(nl - (p + pos)) < CAP_AUTH_LINE)
				check_unterminated(p + pos,
				    (size_t)(nl - (p + pos)) + 1, r, &l);
		}
		if (r <= 0) {
			r = auth_parse_line(p + pos, n - pos, 1, &l);
			if (r > 0)
				check_line(p + pos, (size_t)r, &l);
			break;
		}
		pos += (size_t)r;
	}

	(void)auth_parse_time(p, n, &t);

	k = auth_extract(data[0] & 1 ? "Authorization" : "X-API-Key",
	    data[0] & 1 ? 13 : 9, p, n, &key);
	FUZZ_CHECK(k <= n);
	if (k > 0) {
		FUZZ_CHECK(inside(key, k, p, n));
		FUZZ_CHECK(key[0] != ' ' && key[0] != '\t');
		FUZZ_CHECK(key[k - 1] != ' ' && key[k - 1] != '\t');
	}
	return 0;
}
