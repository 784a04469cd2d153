/*
 * check_auth.c — API keys (src/auth.c): lookup by hash with status and
 * expiry, the key in a header, expiry times, and the keys_file line parser
 * fed whole and split at every byte.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- lookup --------------------------------------------------------------------- */

static struct auth_table table;

static void
setup(void)
{
	memset(&table, 0, sizeof(table));
	ck_assert_int_eq(auth_table_add(&table, "sk-good", 7, "good", "alice", 0, 0), 0);
	ck_assert_int_eq(auth_table_add(&table, "sk-off", 6, "off", "bob", 1, 0), 0);
	ck_assert_int_eq(auth_table_add(&table, "sk-old", 6, "old", "carol", 0, 1000), 0);
	for (int i = 0; i < 200; i++) {
		char k[32], n[32];
		snprintf(k, sizeof(k), "sk-many-%d", i);
		snprintf(n, sizeof(n), "many-%d", i);
		ck_assert_int_eq(auth_table_add(&table, k, strlen(k), n, "u", 0, 0), 0);
	}
	const struct auth_key *dup = NULL;
	ck_assert_ptr_null(auth_table_seal(&table, &dup));
}

static void
teardown(void)
{
	auth_table_free(&table);
}

static const struct {
	const char *key;
	int64_t now;
	enum auth_verdict want;
	const char *name;
} lookups[] = {
	{ "sk-good", 5000, AUTH_OK, "good" },
	{ "", 5000, AUTH_MISSING, NULL },
	{ "sk-goo", 5000, AUTH_UNKNOWN, NULL },          /* a prefix */
	{ "sk-goodx", 5000, AUTH_UNKNOWN, NULL },        /* longer */
	{ "SK-GOOD", 5000, AUTH_UNKNOWN, NULL },         /* keys are case-sensitive */
	{ "sk-off", 5000, AUTH_DISABLED, "off" },
	{ "sk-old", 999, AUTH_OK, "old" },               /* before its expiry */
	{ "sk-old", 1000, AUTH_EXPIRED, "old" },         /* at it */
	{ "sk-old", 5000, AUTH_EXPIRED, "old" },
	{ "sk-many-0", 5000, AUTH_OK, "many-0" },
	{ "sk-many-199", 5000, AUTH_OK, "many-199" },
	{ "sk-many-200", 5000, AUTH_UNKNOWN, NULL },
};

START_TEST(test_lookup)
{
	const struct auth_key *k;
	enum auth_verdict v = auth_check(&table, lookups[_i].key,
	    strlen(lookups[_i].key), lookups[_i].now, &k);

	ck_assert_int_eq(v, lookups[_i].want);
	if (lookups[_i].name == NULL) {
		ck_assert_ptr_null(k);
	} else {
		ck_assert_ptr_nonnull(k);
		ck_assert_str_eq(k->name, lookups[_i].name);
	}
}
END_TEST

START_TEST(test_statuses)
{
	ck_assert_int_eq(auth_status(AUTH_MISSING), 401);
	ck_assert_int_eq(auth_status(AUTH_UNKNOWN), 401);
	ck_assert_int_eq(auth_status(AUTH_DISABLED), 403);
	ck_assert_int_eq(auth_status(AUTH_EXPIRED), 403);
}
END_TEST

static int
contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

/* The secret itself is nowhere in the table: only its hash. */
START_TEST(test_no_secret_stored)
{
	const char *raw = (const char *)table.keys;
	size_t len = table.n * sizeof(table.keys[0]);

	ck_assert(!contains(raw, len, "sk-good"));
	ck_assert(!contains(raw, len, "sk-many-1"));
}
END_TEST

START_TEST(test_duplicate_secret)
{
	struct auth_table t = { 0 };
	const struct auth_key *dup = NULL, *k;

	ck_assert_int_eq(auth_table_add(&t, "a", 1, "one", "u", 0, 0), 0);
	ck_assert_int_eq(auth_table_add(&t, "b", 1, "two", "u", 0, 0), 0);
	ck_assert_int_eq(auth_table_add(&t, "a", 1, "three", "u", 0, 0), 0);
	k = auth_table_seal(&t, &dup);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(dup);
	ck_assert(strcmp(k->name, "one") == 0 || strcmp(k->name, "three") == 0);
	ck_assert(strcmp(dup->name, "one") == 0 || strcmp(dup->name, "three") == 0);
	auth_table_free(&t);
}
END_TEST

START_TEST(test_empty_table)
{
	struct auth_table t = { 0 };
	const struct auth_key *k;

	ck_assert_int_eq(auth_check(&t, "x", 1, 0, &k), AUTH_UNKNOWN);
	ck_assert_int_eq(auth_check(NULL, "x", 1, 0, &k), AUTH_UNKNOWN);
}
END_TEST

/* ---- headers ---------------------------------------------------------------------- */

static const struct {
	const char *name, *value, *want;
} extracts[] = {
	{ "Authorization", "Bearer sk-1", "sk-1" },
	{ "authorization", "bearer sk-1", "sk-1" },
	{ "AUTHORIZATION", "BEARER   sk-1  ", "sk-1" },
	{ "Authorization", "\tBearer\tsk-1", "sk-1" },
	{ "Authorization", "sk-1", "sk-1" },                  /* no scheme */
	{ "Authorization", "Bearer", "Bearer" },              /* a scheme alone: a key */
	{ "Authorization", "Bearer ", "Bearer" },
	{ "Authorization", "Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz" },
	{ "Authorization", "", "" },
	{ "X-API-Key", "sk-1", "sk-1" },
	{ "x-api-key", " sk-1 ", "sk-1" },
	{ "X-API-Key", "Bearer sk-1", "Bearer sk-1" },        /* only Authorization has a scheme */
	{ "api-key", "sk-1", "sk-1" },
};

START_TEST(test_extract)
{
	const char *k;
	size_t n = auth_extract(extracts[_i].name, strlen(extracts[_i].name),
	    extracts[_i].value, strlen(extracts[_i].value), &k);

	ck_assert_uint_eq(n, strlen(extracts[_i].want));
	ck_assert(memcmp(k, extracts[_i].want, n) == 0);
}
END_TEST

/* ---- expiry times ------------------------------------------------------------------ */

static const struct {
	const char *s;
	int ok;
	int64_t t;
} times[] = {
	{ "", 1, 0 },
	{ "null", 1, 0 },
	{ "~", 1, 0 },
	{ "never", 1, 0 },
	{ "1970-01-02", 1, 86400 },
	{ "2026-12-31T23:59:59Z", 1, 1798761599 },
	{ "2026-12-31 23:59:59Z", 1, 1798761599 },
	{ "2026-12-31t23:59:59z", 1, 1798761599 },
	{ "2026-12-31T23:59:59.123Z", 1, 1798761599 },
	{ "2027-01-01T07:59:59+08:00", 1, 1798761599 },
	{ "2026-12-31T22:59:59-01:00", 1, 1798761599 },
	{ "2024-02-29", 1, 1709164800 },
	{ "1970-01-01T00:00:00Z", 1, 1 },       /* 0 would mean never */
	{ "2023-02-29", 0, 0 },
	{ "2026-13-01", 0, 0 },
	{ "2026-12-31T23:59:59", 0, 0 },        /* no offset */
	{ "2026-12-31T24:00:00Z", 0, 0 },
	{ "2026-12-31T23:59Z", 0, 0 },
	{ "2026-12-31Z", 0, 0 },
	{ "1969-12-31", 0, 0 },
	{ "tomorrow", 0, 0 },
	{ "2026-12-31T23:59:59.Z", 0, 0 },
	{ "2026-12-31T23:59:59Zjunk", 0, 0 },
	{ "1798761599", 0, 0 },
};

START_TEST(test_time)
{
	int64_t t = -1;
	int r = auth_parse_time(times[_i].s, strlen(times[_i].s), &t);

	ck_assert_msg((r == 0) == times[_i].ok, "%s: %d", times[_i].s, r);
	if (times[_i].ok)
		ck_assert_int_eq(t, times[_i].t);
}
END_TEST

/* ---- keys_file lines --------------------------------------------------------------- */

static const struct {
	const char *in;         /* one line, or the last one without '\n' */
	int ok;
	int blank;
	const char *key, *user, *name;
	int disabled;
	int64_t expires;
	const char *error;      /* a part of the message */
} lines[] = {
	{ "sk-1 alice team-a\n", 1, 0, "sk-1", "alice", "team-a", 0, 0, NULL },
	{ "sk-1\talice\tteam-a\r\n", 1, 0, "sk-1", "alice", "team-a", 0, 0, NULL },
	{ "  sk-1   alice  team-a  \n", 1, 0, "sk-1", "alice", "team-a", 0, 0, NULL },
	{ "sk-1 alice team-a disabled\n", 1, 0, "sk-1", "alice", "team-a", 1, 0, NULL },
	{ "sk-1 alice team-a enabled 1970-01-02\n", 1, 0, "sk-1", "alice", "team-a", 0, 86400, NULL },
	{ "sk-1 alice team-a 1970-01-02 DISABLED\n", 1, 0, "sk-1", "alice", "team-a", 1, 86400, NULL },
	{ "sk-1 alice team-a", 1, 0, "sk-1", "alice", "team-a", 0, 0, NULL },
	{ "\n", 1, 1, NULL, NULL, NULL, 0, 0, NULL },
	{ "   \r\n", 1, 1, NULL, NULL, NULL, 0, 0, NULL },
	{ "# a comment sk-x\n", 1, 1, NULL, NULL, NULL, 0, 0, NULL },
	{ "  # indented comment\n", 1, 1, NULL, NULL, NULL, 0, 0, NULL },
	{ "sk-1 alice\n", 0, 0, NULL, NULL, NULL, 0, 0, "KEY USER_ID NAME" },
	{ "sk-1\n", 0, 0, NULL, NULL, NULL, 0, 0, "KEY USER_ID NAME" },
	{ "sk-1 alice team-a maybe\n", 0, 0, NULL, NULL, NULL, 0, 0, "bad expiry" },
	{ "sk-1 alice team-a enabled disabled\n", 0, 0, NULL, NULL, NULL, 0, 0, "twice" },
	{ "sk-1 alice team-a 1970-01-02 1970-01-03\n", 0, 0, NULL, NULL, NULL, 0, 0, "unknown field" },
	{ "sk-1 alice team-a enabled 1970-01-02 x\n", 0, 0, NULL, NULL, NULL, 0, 0, "too many" },
	{ "sk-1 alice te\x01m\n", 0, 0, NULL, NULL, NULL, 0, 0, "control" },
	{ "sk-1 alice team-a\r\r\n", 0, 0, NULL, NULL, NULL, 0, 0, "control" },
};

static void
check_line(int i, long r, const struct auth_line *l, size_t len)
{
	if (!lines[i].ok) {
		ck_assert_int_eq(r, -1);
		ck_assert_ptr_nonnull(strstr(l->error, lines[i].error));
		return;
	}
	ck_assert_int_eq(r, (long)len);
	ck_assert_int_eq(l->blank, lines[i].blank);
	if (lines[i].blank)
		return;
	ck_assert_uint_eq(l->key_len, strlen(lines[i].key));
	ck_assert(memcmp(l->key, lines[i].key, l->key_len) == 0);
	ck_assert_uint_eq(l->user_len, strlen(lines[i].user));
	ck_assert(memcmp(l->user_id, lines[i].user, l->user_len) == 0);
	ck_assert_uint_eq(l->name_len, strlen(lines[i].name));
	ck_assert(memcmp(l->name, lines[i].name, l->name_len) == 0);
	ck_assert_int_eq(l->disabled, lines[i].disabled);
	ck_assert_int_eq(l->expires_at, lines[i].expires);
}

START_TEST(test_line)
{
	struct auth_line l;
	size_t len = strlen(lines[_i].in);

	check_line(_i, auth_parse_line(lines[_i].in, len, 1, &l), &l, len);
}
END_TEST

/*
 * Fed as it would arrive: every prefix before the newline asks for more
 * (a line is judged only whole), then the whole line gives the same result.
 */
START_TEST(test_line_split)
{
	const char *in = lines[_i].in;
	size_t len = strlen(in);
	int has_nl = in[len - 1] == '\n';
	struct auth_line l;

	for (size_t cut = 0; cut < len; cut++) {
		char *part = malloc(cut + 1);
		memcpy(part, in, cut);
		long r = auth_parse_line(part, cut, 0, &l);
		free(part);
		ck_assert_msg(r == 0, "%s: prefix of %zu gives %ld", in, cut, r);
	}
	if (!has_nl) {
		ck_assert_int_eq(auth_parse_line(in, len, 0, &l), 0);
	}
	check_line(_i, auth_parse_line(in, len, 1, &l), &l, len);
}
END_TEST

/* A file of several lines, parsed from the front: each line is consumed
 * exactly, what follows it is left alone. */
START_TEST(test_lines_in_sequence)
{
	static const char file[] = "# keys\nsk-a alice a\n\nsk-b bob b disabled\r\nsk-c carol c";
	const char *names[] = { "a", "b", "c" };
	size_t off = 0, len = sizeof(file) - 1;
	int n = 0;
	struct auth_line l;

	while (off < len) {
		long r = auth_parse_line(file + off, len - off, 1, &l);
		ck_assert_int_gt(r, 0);
		if (!l.blank) {
			ck_assert_int_lt(n, 3);
			ck_assert_uint_eq(l.name_len, 1);
			ck_assert(l.name[0] == names[n][0]);
			n++;
		}
		off += (size_t)r;
	}
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(auth_parse_line(file + off, 0, 1, &l), 0);
}
END_TEST

START_TEST(test_line_too_long)
{
	char *buf = malloc(CAP_AUTH_LINE + 10);
	struct auth_line l;

	memset(buf, 'x', CAP_AUTH_LINE + 10);
	ck_assert_int_eq(auth_parse_line(buf, CAP_AUTH_LINE, 0, &l), 0);
	ck_assert_int_eq(auth_parse_line(buf, CAP_AUTH_LINE + 1, 0, &l), -1);
	ck_assert_ptr_nonnull(strstr(l.error, "too long"));
	free(buf);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("lookup");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_lookup, 0, N(lookups));
	tcase_add_test(tc, test_statuses);
	tcase_add_test(tc, test_no_secret_stored);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_duplicate_secret);
	tcase_add_test(tc, test_empty_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("headers and times");
	tcase_add_loop_test(tc, test_extract, 0, N(extracts));
	tcase_add_loop_test(tc, test_time, 0, N(times));
	suite_add_tcase(s, tc);

	tc = tcase_create("keys_file");
	tcase_add_loop_test(tc, test_line, 0, N(lines));
	tcase_add_loop_test(tc, test_line_split, 0, N(lines));
	tcase_add_test(tc, test_lines_in_sequence);
	tcase_add_test(tc, test_line_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
