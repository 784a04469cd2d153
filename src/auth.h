/*
 * auth.h — API keys -> tenants, in memory, from the config file.
 *
 * A key table holds, for each key, the SHA-256 of the key (never the key),
 * its name, the tenant's user id, its status and its expiry.  A presented key
 * is hashed and looked up; the final comparison is constant-time.  The table
 * belongs to the loaded config (config.c builds it, config_free frees it), so
 * a reload brings new keys with the new config.
 *
 * Also here, pure: taking the key out of a request header, parsing an
 * expiry time, and the keys_file line parser.  A leaf module.
 */
#ifndef LLMPROXY_AUTH_H
#define LLMPROXY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "caps.h"

#define AUTH_HASH_BYTES 32      /* SHA-256 */

struct auth_key {
	unsigned char hash[AUTH_HASH_BYTES];
	char name[CAP_AUTH_NAME];       /* labels metrics, logs and records */
	char user_id[CAP_AUTH_USER];    /* the tenant, for the usage record */
	int disabled;                   /* status = disabled */
	int64_t expires_at;             /* unix seconds; 0: never */
	uint32_t origin;                /* its place in the order added, for
	                                   the caller's messages */
};

struct auth_table {
	struct auth_key *keys;          /* sorted by hash after auth_table_seal */
	size_t n, cap;
};

/* Adds a key (hashed at once; the caller's copy may then be wiped).  Returns
 * 0, -1 out of memory or more than CAP_AUTH_KEYS keys (errno ENOMEM / E2BIG). */
int auth_table_add(struct auth_table *t, const char *key, size_t key_len,
    const char *name, const char *user_id, int disabled, int64_t expires_at);

/* Sorts the table for lookups.  Returns NULL, or the name of a key whose
 * secret is already in the table under another entry (*dup_of: the first). */
const struct auth_key *auth_table_seal(struct auth_table *t,
    const struct auth_key **dup_of);

void auth_table_free(struct auth_table *t);

enum auth_verdict {
	AUTH_OK,
	AUTH_MISSING,           /* no key presented: 401 */
	AUTH_UNKNOWN,           /* not in the table: 401 */
	AUTH_DISABLED,          /* status = disabled: 403 */
	AUTH_EXPIRED,           /* expires_at has passed: 403 */
};

/*
 * Looks up a presented key (len 0: none) at time now (unix seconds).
 * *key is set for every verdict but MISSING and UNKNOWN.  Timing does not
 * depend on the key's bytes beyond what its SHA-256 reveals.
 */
enum auth_verdict auth_check(const struct auth_table *t, const char *presented,
    size_t len, int64_t now, const struct auth_key **key);

/* The status and the message a verdict is answered with. */
int auth_status(enum auth_verdict v);
const char *auth_message(enum auth_verdict v);

/*
 * The key in one header field's value: for Authorization, the credentials
 * after the "Bearer" scheme (RFC 6750 §2.1; the scheme's case is ignored)
 * or, without a scheme, the whole value; any other header: the whole value.
 * Surrounding whitespace is dropped.  Returns the key's length (0: none) and
 * points *key into value.
 */
size_t auth_extract(const char *name, size_t name_len, const char *value,
    size_t value_len, const char **key);

/*
 * expires_at: RFC 3339 ("2026-12-31T23:59:59Z", "...+08:00", fractions
 * ignored; a space for 'T' accepted), or a date "2026-12-31" (its start,
 * UTC).  "", "null", "~" and "never": never.  Returns 0 with *t (0 for
 * never), or -1.
 */
int auth_parse_time(const char *s, size_t len, int64_t *t);

/*
 * The keys_file format, one key per line:
 *
 *     KEY  USER_ID  NAME  [enabled|disabled]  [EXPIRES_AT]
 *
 * Fields are separated by spaces or tabs, so none of them contains one (a
 * name with spaces goes in the config file).  After NAME, a status word and
 * an expiry (auth_parse_time, without spaces) may follow, in either order;
 * the default is enabled, never expiring.  Empty lines and lines whose first
 * non-blank character is '#' are skipped.  Lines end with LF or CRLF and
 * have at most CAP_AUTH_LINE bytes.
 */
struct auth_line {
	int blank;                      /* an empty or comment line */
	const char *key;                /* fields, into the buffer */
	size_t key_len;
	const char *user_id;
	size_t user_len;
	const char *name;
	size_t name_len;
	int disabled;
	int64_t expires_at;
	const char *error;              /* when -1 is returned: why */
};

/*
 * Parses the first line of buf[0..len).  `eof`: no more bytes will come, so
 * a last line without a newline is complete.  Returns the bytes the line
 * takes (its newline included), 0 when more bytes are needed, or -1 when
 * the line is malformed (out->error says why).
 */
long auth_parse_line(const char *buf, size_t len, int eof,
    struct auth_line *out);

#endif
