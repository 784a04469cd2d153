/*
 * auth.c — the key table (SHA-256 of each key, never the key), lookup in
 * constant time, header extraction, expiry times and the keys_file line
 * parser.  See auth.h.
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bearssl.h>

static void
sha256(const char *s, size_t len, unsigned char out[AUTH_HASH_BYTES])
{
	br_sha256_context ctx;

	br_sha256_init(&ctx);
	br_sha256_update(&ctx, s, len);
	br_sha256_out(&ctx, out);
}

/* 1 when equal; the time taken does not depend on where they differ. */
static int
equal_ct(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int
auth_table_add(struct auth_table *t, const char *key, size_t key_len,
    const char *name, const char *user_id, int disabled, int64_t expires_at)
{
	struct auth_key *k;

	if (t->n == CAP_AUTH_KEYS) {
		errno = E2BIG;
		return -1;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		if (cap > CAP_AUTH_KEYS)
			cap = CAP_AUTH_KEYS;
		if ((k = realloc(t->keys, cap * sizeof(*k))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		t->keys = k;
		t->cap = cap;
	}
	k = &t->keys[t->n++];
	memset(k, 0, sizeof(*k));
	sha256(key, key_len, k->hash);
	snprintf(k->name, sizeof(k->name), "%s", name);
	snprintf(k->user_id, sizeof(k->user_id), "%s", user_id);
	k->disabled = disabled;
	k->expires_at = expires_at;
	k->origin = (uint32_t)(t->n - 1);
	return 0;
}

static int
by_hash(const void *a, const void *b)
{
	return memcmp(((const struct auth_key *)a)->hash,
	    ((const struct auth_key *)b)->hash, AUTH_HASH_BYTES);
}

const struct auth_key *
auth_table_seal(struct auth_table *t, const struct auth_key **dup_of)
{
	if (t->n == 0)
		return NULL;
	qsort(t->keys, t->n, sizeof(t->keys[0]), by_hash);
	for (size_t i = 1; i < t->n; i++) {
		if (memcmp(t->keys[i].hash, t->keys[i - 1].hash,
		    AUTH_HASH_BYTES) == 0) {
			*dup_of = &t->keys[i - 1];
			return &t->keys[i];
		}
	}
	return NULL;
}

void
auth_table_free(struct auth_table *t)
{
	if (t == NULL)
		return;
	free(t->keys);
	t->keys = NULL;
	t->n = t->cap = 0;
}

/*
 * The presented key is hashed first and the search runs over hashes: what
 * its timing reveals is where the key's SHA-256 falls among the stored
 * ones, which says nothing usable about any stored key (finding a key from
 * its hash is the preimage problem).  The final comparison is constant-time
 * all the same.
 */
enum auth_verdict
auth_check(const struct auth_table *t, const char *presented, size_t len,
    int64_t now, const struct auth_key **key)
{
	unsigned char h[AUTH_HASH_BYTES];
	size_t lo = 0, hi = t != NULL ? t->n : 0;
	const struct auth_key *found = NULL;

	*key = NULL;
	if (len == 0)
		return AUTH_MISSING;
	sha256(presented, len, h);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(h, t->keys[mid].hash, AUTH_HASH_BYTES);
		if (c == 0) {
			found = &t->keys[mid];
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (found == NULL || !equal_ct(h, found->hash, AUTH_HASH_BYTES))
		return AUTH_UNKNOWN;
	*key = found;
	if (found->disabled)
		return AUTH_DISABLED;
	if (found->expires_at != 0 && now >= found->expires_at)
		return AUTH_EXPIRED;
	return AUTH_OK;
}

int
auth_status(enum auth_verdict v)
{
	switch (v) {
	case AUTH_OK:       return 200;
	case AUTH_DISABLED:
	case AUTH_EXPIRED:  return 403;
	default:            return 401;
	}
}

const char *
auth_message(enum auth_verdict v)
{
	switch (v) {
	case AUTH_OK:       return "ok";
	case AUTH_MISSING:  return "no API key; send it as Authorization: Bearer KEY";
	case AUTH_UNKNOWN:  return "invalid API key";
	case AUTH_DISABLED: return "this API key is disabled";
	default:            return "this API key has expired";
	}
}

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

size_t
auth_extract(const char *name, size_t name_len, const char *value,
    size_t value_len, const char **key)
{
	const char *v = value, *end = value + value_len;

	while (v < end && is_blank(*v))
		v++;
	while (end > v && is_blank(end[-1]))
		end--;
	if (name_len == 13 && strncasecmp(name, "Authorization", 13) == 0 &&
	    end - v > 6 && strncasecmp(v, "Bearer", 6) == 0 && is_blank(v[6])) {
		v += 7;
		while (v < end && is_blank(*v))
			v++;
	}
	*key = v;
	return (size_t)(end - v);
}

/* n decimal digits at s, or -1. */
static int
digits(const char *s, const char *end, int n)
{
	int v = 0;

	if (end - s < n)
		return -1;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
month_days(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

int
auth_parse_time(const char *s, size_t len, int64_t *t)
{
	const char *p = s, *end = s + len;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t off = 0;

	if (len == 0 || (len == 4 && strncasecmp(s, "null", 4) == 0) ||
	    (len == 1 && s[0] == '~') || (len == 5 && strncasecmp(s, "never", 5) == 0)) {
		*t = 0;
		return 0;
	}
	if ((y = digits(p, end, 4)) < 1970 || end - p < 10 || p[4] != '-' ||
	    (mo = digits(p + 5, end, 2)) < 1 || mo > 12 || p[7] != '-' ||
	    (d = digits(p + 8, end, 2)) < 1 || d > month_days(y, mo))
		return -1;
	p += 10;
	if (p < end) {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -1;
		p++;
		if ((h = digits(p, end, 2)) < 0 || h > 23 || end - p < 8 ||
		    p[2] != ':' || (mi = digits(p + 3, end, 2)) < 0 || mi > 59 ||
		    p[5] != ':' || (sec = digits(p + 6, end, 2)) < 0 || sec > 60)
			return -1;
		p += 8;
		if (p < end && *p == '.') {     /* fractions: ignored */
			p++;
			if (p == end || *p < '0' || *p > '9')
				return -1;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
		}
		if (p < end && (*p == 'Z' || *p == 'z')) {
			p++;
		} else if (p < end && (*p == '+' || *p == '-')) {
			int oh = digits(p + 1, end, 2), om;
			if (oh < 0 || oh > 23 || end - p < 6 || p[3] != ':' ||
			    (om = digits(p + 4, end, 2)) < 0 || om > 59)
				return -1;
			off = (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
			p += 6;
		} else {
			return -1;      /* RFC 3339: the offset is not optional */
		}
		if (p != end)
			return -1;
	}
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (*t <= 0)
		*t = 1;         /* 0 means never; an instant that early has passed */
	return 0;
}

/* ---- keys_file lines ------------------------------------------------------------ */

static long
line_error(struct auth_line *out, const char *why)
{
	out->error = why;
	return -1;
}

long
auth_parse_line(const char *buf, size_t len, int eof, struct auth_line *out)
{
	const char *nl = memchr(buf, '\n', len < CAP_AUTH_LINE + 1 ? len :
	    CAP_AUTH_LINE + 1);
	const char *end, *p, *f[5];
	size_t flen[5], nf = 0;
	long used;

	memset(out, 0, sizeof(*out));
	if (nl == NULL) {
		if (len > CAP_AUTH_LINE)
			return line_error(out, "line too long");
		if (!eof || len == 0)
			return 0;
		end = buf + len;
		used = (long)len;
	} else {
		end = nl;
		used = (long)(nl - buf) + 1;
	}
	if (end > buf && end[-1] == '\r')
		end--;
	for (p = buf; p < end; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return line_error(out, "control character in the line");
	}
	for (p = buf; p < end; ) {
		while (p < end && is_blank(*p))
			p++;
		if (p == end)
			break;
		if (nf == 0 && *p == '#')
			break;
		if (nf == 5)
			return line_error(out, "too many fields; a line is KEY USER_ID "
			    "NAME [enabled|disabled] [EXPIRES_AT]");
		f[nf] = p;
		while (p < end && !is_blank(*p))
			p++;
		flen[nf] = (size_t)(p - f[nf]);
		nf++;
	}
	if (nf == 0) {
		out->blank = 1;
		return used;
	}
	if (nf < 3)
		return line_error(out, "a line is KEY USER_ID NAME [enabled|disabled] "
		    "[EXPIRES_AT]");
	if (flen[0] > CAP_AUTH_KEY_BYTES)
		return line_error(out, "key too long");
	if (flen[1] >= CAP_AUTH_USER)
		return line_error(out, "user id too long");
	if (flen[2] >= CAP_AUTH_NAME)
		return line_error(out, "name too long");
	out->key = f[0];
	out->key_len = flen[0];
	out->user_id = f[1];
	out->user_len = flen[1];
	out->name = f[2];
	out->name_len = flen[2];
	int have_status = 0, have_time = 0;
	for (size_t i = 3; i < nf; i++) {
		if ((flen[i] == 7 && strncasecmp(f[i], "enabled", 7) == 0) ||
		    (flen[i] == 8 && strncasecmp(f[i], "disabled", 8) == 0)) {
			if (have_status++)
				return line_error(out, "the status is given twice");
			out->disabled = flen[i] == 8;
		} else {
			if (have_time++)
				return line_error(out, "unknown field; a status is enabled "
				    "or disabled");
			if (auth_parse_time(f[i], flen[i], &out->expires_at) != 0)
				return line_error(out, "bad expiry; use RFC 3339 "
				    "(2026-12-31T23:59:59Z) or a date (2026-12-31)");
		}
	}
	return used;
}
