/*
 * check_ratelimit.c — token buckets with injected time, and the per-key
 * limiter (src/ratelimit.c): bursts, refill, Retry-After, concurrency held
 * until done, token budgets charged afterwards, and one key never holding
 * up another.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define T0 1000000          /* a monotonic time; 0 is "never used" */

/* ---- the bucket ------------------------------------------------------------------ */

START_TEST(test_burst_then_refill)
{
	struct tbucket b = { 0 };

	/* 2 per second, burst 5: five at once, then one every 500 ms. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0), 0);
	ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0), 500);
	ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0 + 499), 1);
	ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0 + 500), 0);
	ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0 + 500), 500);
	/* A long pause refills to the burst, not beyond. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tb_take(&b, 2, 5, 1, T0 + 100000), 0);
	ck_assert_int_gt(tb_take(&b, 2, 5, 1, T0 + 100000), 0);
}
END_TEST

START_TEST(test_time_backwards)
{
	struct tbucket b = { 0 };

	ck_assert_int_eq(tb_take(&b, 1, 1, 1, T0), 0);
	/* A clock that steps back adds nothing (and takes nothing away). */
	ck_assert_int_eq(tb_take(&b, 1, 1, 1, T0 - 5000), 1000);
	ck_assert_int_eq(tb_take(&b, 1, 1, 1, T0 + 1000), 0);
}
END_TEST

START_TEST(test_never)
{
	struct tbucket b = { 0 };

	ck_assert_int_eq(tb_take(&b, 1, 2, 3, T0), INT64_MAX);  /* cost > burst */
	ck_assert_int_eq(tb_take(&b, 0, 1, 1, T0), 0);
	ck_assert_int_eq(tb_take(&b, 0, 1, 1, T0 + 10000), INT64_MAX);  /* no refill */
}
END_TEST

START_TEST(test_charge_debt)
{
	struct tbucket b = { 0 };

	/* 60 per minute (1/s), burst 60: 150 charged leaves a debt of 90,
	 * so one more token is 91 s away. */
	tb_charge(&b, 1, 60, 150, T0);
	ck_assert_int_eq(tb_wait_ms(&b, 1, 60, 1, T0), 91000);
	ck_assert_int_eq(tb_wait_ms(&b, 1, 60, 1, T0 + 90999), 1);
	ck_assert_int_eq(tb_wait_ms(&b, 1, 60, 1, T0 + 91000), 0);
}
END_TEST

START_TEST(test_fractional_rate)
{
	struct tbucket b = { 0 };

	/* 0.5 per second: 2 s between requests, rounded up never early. */
	ck_assert_int_eq(tb_take(&b, 0.5, 1, 1, T0), 0);
	ck_assert_int_eq(tb_take(&b, 0.5, 1, 1, T0), 2000);
	ck_assert_int_eq(tb_take(&b, 3, 1, 1, T0 + 2000), 0);   /* rate changed */
	ck_assert_int_eq(tb_take(&b, 3, 1, 1, T0 + 2000), 334); /* 333.3 up */
}
END_TEST

static const struct { int64_t ms, s; } retry_after[] = {
	{ 0, 1 }, { 1, 1 }, { 999, 1 }, { 1000, 1 }, { 1001, 2 }, { 1999, 2 },
	{ 2000, 2 }, { 59001, 60 }, { INT64_MAX, 3600 }, { 10000000, 3600 },
};

START_TEST(test_retry_after)
{
	ck_assert_int_eq(rl_retry_after_s(retry_after[_i].ms), retry_after[_i].s);
}
END_TEST

/* ---- the limiter -------------------------------------------------------------------- */

static void
reset(void)
{
	rl_reset();
}

static int64_t
limited(const char *name, enum rl_verdict v)
{
	uint64_t af[4];
	size_t n;
	struct rl_stat *s = rl_snapshot(&n, af);
	int64_t got = -1;

	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0)
			got = (int64_t)s[i].limited[v];
	free(s);
	return got;
}

START_TEST(test_key_rate)
{
	struct rl_limits key = { .rps = 1, .rps_burst = 2 };
	struct rl_ticket t;
	int64_t retry;

	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t, &retry), RL_KEY_RATE);
	ck_assert_int_eq(retry, 1000);
	/* Another key has its own bucket. */
	ck_assert_int_eq(rl_admit(NULL, &key, "b", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0 + 1000, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(limited("a", RL_KEY_RATE), 1);
	ck_assert_int_eq(limited("b", RL_KEY_RATE), 0);
}
END_TEST

START_TEST(test_concurrency_held_until_done)
{
	struct rl_limits key = { .max_concurrent = 1 };
	struct rl_ticket t1, t2, t3;
	int64_t retry;

	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t1, &retry), RL_OK);
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t2, &retry), RL_KEY_CONCURRENCY);
	ck_assert_int_eq(rl_retry_after_s(retry), 1);
	ck_assert_int_eq(rl_admit(NULL, &key, "b", T0, &t3, &retry), RL_OK);
	rl_done(&key, &t1, 0, 0, T0 + 5);
	rl_done(&key, &t1, 0, 0, T0 + 5);     /* twice: no effect */
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0 + 6, &t2, &retry), RL_OK);
	rl_done(&key, &t2, 0, 0, T0 + 7);
	rl_done(&key, &t3, 0, 0, T0 + 7);
}
END_TEST

START_TEST(test_tokens_per_minute)
{
	struct rl_limits key = { .tpm = 600 };     /* 10 per second */
	struct rl_ticket t;
	int64_t retry;

	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 400, 300, T0);      /* 700: 100 over */
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0, &t, &retry), RL_KEY_TOKENS);
	ck_assert_int_eq(retry, 10100);            /* back to 1 token */
	ck_assert_int_eq(rl_admit(NULL, &key, "b", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 1, 1, T0);
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0 + 10100, &t, &retry), RL_OK);
	rl_done(&key, &t, -1, -1, T0);        /* not metered: no charge */
	ck_assert_int_eq(rl_admit(NULL, &key, "a", T0 + 10100, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
}
END_TEST

/* A key refused by its own limit takes nothing from the global budget. */
START_TEST(test_global_not_spent_by_refused_key)
{
	struct rl_limits global = { .rps = 1, .rps_burst = 3 };
	struct rl_limits key = { .rps = 1, .rps_burst = 1 };
	struct rl_ticket t;
	int64_t retry;

	ck_assert_int_eq(rl_admit(&global, &key, "a", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(rl_admit(&global, &key, "a", T0, &t, &retry), RL_KEY_RATE);
	ck_assert_int_eq(rl_admit(&global, &key, "b", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(rl_admit(&global, &key, "c", T0, &t, &retry), RL_OK);
	rl_done(&key, &t, 0, 0, T0);
	ck_assert_int_eq(rl_admit(&global, &key, "d", T0, &t, &retry), RL_GLOBAL);
	ck_assert_int_eq(retry, 1000);
}
END_TEST

START_TEST(test_no_key_global_only)
{
	struct rl_limits global = { .rpm = 2 };
	struct rl_limits key = { .max_concurrent = 1 };
	struct rl_ticket t1, t2;
	int64_t retry;

	/* Without a key the per-key limits do not apply. */
	ck_assert_int_eq(rl_admit(&global, &key, NULL, T0, &t1, &retry), RL_OK);
	ck_assert_int_eq(rl_admit(&global, &key, NULL, T0, &t2, &retry), RL_OK);
	ck_assert_int_eq(rl_admit(&global, &key, NULL, T0, &t2, &retry), RL_GLOBAL);
	ck_assert_int_eq(retry, 30000);
	rl_done(&key, &t1, 0, 0, T0);
	ck_assert_int_eq(limited("", RL_GLOBAL), 1);
}
END_TEST

START_TEST(test_counters)
{
	struct rl_ticket t;
	int64_t retry;
	uint64_t af[4];
	size_t n;

	ck_assert_int_eq(rl_admit(NULL, NULL, "k", T0, &t, &retry), RL_OK);
	rl_done(NULL, &t, 10, 20, T0);
	rl_count_auth_failure(1);
	rl_count_auth_failure(1);
	rl_count_auth_failure(7);   /* out of range: ignored */
	struct rl_stat *s = rl_snapshot(&n, af);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(s[0].name, "k");
	ck_assert_uint_eq(s[0].requests, 1);
	ck_assert_uint_eq(s[0].tokens[0], 10);
	ck_assert_uint_eq(s[0].tokens[1], 20);
	ck_assert_int_eq(s[0].in_flight, 0);
	ck_assert_uint_eq(af[1], 2);
	ck_assert_uint_eq(af[0], 0);
	free(s);
}
END_TEST

/* Many key names (reloads with new keys): the table grows, lookups stay
 * right, and every state keeps its own in-flight count. */
START_TEST(test_many_keys)
{
	struct rl_limits key = { .max_concurrent = 1 };
	static struct rl_ticket t[3000];
	int64_t retry;
	char name[32];

	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "key-%d", i);
		ck_assert_int_eq(rl_admit(NULL, &key, name, T0, &t[i], &retry), RL_OK);
	}
	for (int i = 0; i < 3000; i++) {
		struct rl_ticket x;
		snprintf(name, sizeof(name), "key-%d", i);
		ck_assert_int_eq(rl_admit(NULL, &key, name, T0, &x, &retry),
		    RL_KEY_CONCURRENCY);
	}
	for (int i = 0; i < 3000; i++)
		rl_done(&key, &t[i], 0, 0, T0);
	ck_assert_int_eq(rl_admit(NULL, &key, "key-2999", T0, &t[0], &retry), RL_OK);
	rl_done(&key, &t[0], 0, 0, T0);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc;

	tc = tcase_create("bucket");
	tcase_add_test(tc, test_burst_then_refill);
	tcase_add_test(tc, test_time_backwards);
	tcase_add_test(tc, test_never);
	tcase_add_test(tc, test_charge_debt);
	tcase_add_test(tc, test_fractional_rate);
	tcase_add_loop_test(tc, test_retry_after, 0, N(retry_after));
	suite_add_tcase(s, tc);

	tc = tcase_create("limiter");
	tcase_add_checked_fixture(tc, reset, reset);
	tcase_add_test(tc, test_key_rate);
	tcase_add_test(tc, test_concurrency_held_until_done);
	tcase_add_test(tc, test_tokens_per_minute);
	tcase_add_test(tc, test_global_not_spent_by_refused_key);
	tcase_add_test(tc, test_no_key_global_only);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_many_keys);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
