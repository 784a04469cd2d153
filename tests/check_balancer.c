/*
 * check_balancer.c — backend selection and backend health (src/balancer.c).
 *
 * What a user sees of the balancer is which backend each request lands on:
 * the exact sequence nginx would give for the same weights, the backend that
 * serves the model, none that is out, full, or already tried, and a backend
 * that failed coming back when it should and not before.  So the tests are
 * sequences and timelines: slots and configs built here by hand, the clock
 * passed in, the expected picks written as letters (a = slot 0, '-' = none).
 *
 * The expected round-robin sequences were computed independently with the
 * nginx algorithm (ngx_http_upstream_get_peer without effective_weight);
 * 5,1,1 -> "aabacaa" is the example in nginx's own commit message.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balancer.h"

#define MAXB    8
#define LETTERS "abcdefgh"

static char
letter(int i)
{
	return i < 0 ? '-' : LETTERS[i];
}

/* xorshift32: the same "random" runs on every libc and every run. */
static uint32_t
rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* ---- bal_select: smooth weighted round robin --------------------------------- */

/* While `eligible` (letters) are eligible, the picks are `picks`. */
struct phase {
	const char *eligible;
	const char *picks;
};

struct rr_case {
	const char *name;
	size_t n;
	int weight[MAXB];
	struct phase phase[4];
};

static const struct rr_case rr_cases[] = {
	{ "equal weights take plain turns", 3, { 1, 1, 1 },
	  { { "abc", "abcabcabc" } } },
	{ "equal weights other than 1", 2, { 7, 7 },
	  { { "ab", "abababab" } } },
	{ "5,1,1 as nginx", 3, { 5, 1, 1 },
	  { { "abc", "aabacaa" "aabacaa" } } },
	{ "5:3:2 interleaved, 30 picks", 3, { 5, 3, 2 },
	  { { "abc", "abcaabacba" "abcaabacba" "abcaabacba" } } },
	{ "2,3,5: the same shares, ties to the lower index", 3, { 2, 3, 5 },
	  { { "abc", "cbacbccabc" "cbacbccabc" } } },
	/* b goes, comes back: it neither gained nor lost while away, so the
	 * cycle resumes with its old state (nginx skips a down peer). */
	{ "equal weights, b out and back", 3, { 1, 1, 1 },
	  { { "abc", "ab" }, { "ac", "ccac" }, { "abc", "acbacb" } } },
	{ "5,1,1, b out and back", 3, { 5, 1, 1 },
	  { { "abc", "aab" }, { "ac", "aaca" }, { "abc", "aaacaaa" } } },
	{ "all ineligible, then all back", 3, { 1, 2, 3 },
	  { { "", "---" }, { "abc", "cbacbc" }, { "", "-" } } },
	{ "one eligible of three", 3, { 1, 2, 3 },
	  { { "b", "bbbb" } } },
	{ "single backend", 1, { 7 },
	  { { "a", "aaa" }, { "", "--" }, { "a", "aa" } } },
	{ "no slots at all", 0, { 0 },
	  { { "", "--" } } },
};

static int
has_letter(const char *set, size_t i)
{
	return strchr(set, LETTERS[i]) != NULL;
}

START_TEST(test_rr_sequences)
{
	const struct rr_case *tc = &rr_cases[_i];
	struct bal_slot slots[MAXB];
	char got[64];

	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < tc->n; i++)
		slots[i].weight = tc->weight[i];
	for (size_t p = 0; p < 4 && tc->phase[p].picks != NULL; p++) {
		const struct phase *ph = &tc->phase[p];
		size_t k;

		for (size_t i = 0; i < tc->n; i++)
			slots[i].eligible = has_letter(ph->eligible, i);
		for (k = 0; ph->picks[k] != '\0'; k++) {
			int before[MAXB];

			for (size_t i = 0; i < tc->n; i++)
				before[i] = slots[i].current;
			got[k] = letter(bal_select(LB_ROUND_ROBIN, slots,
			    tc->n, 0));
			/* Ineligible slots neither gain nor lose. */
			for (size_t i = 0; i < tc->n; i++)
				if (!slots[i].eligible)
					ck_assert_int_eq(slots[i].current,
					    before[i]);
		}
		got[k] = '\0';
		ck_assert_msg(strcmp(got, ph->picks) == 0,
		    "%s, phase %zu: got %s, want %s", tc->name, p, got,
		    ph->picks);
	}
}
END_TEST

/* Shares: every block of sum(weights) picks from a fresh start holds exactly
 * `weight` picks of each slot, and no slot runs longer than `max_run`. */
struct share_case {
	size_t n;
	int weight[MAXB];
	int picks;
	int count[MAXB];
	int max_run;            /* 0: not checked */
};

static const struct share_case share_cases[] = {
	{ 3, { 5, 3, 2 }, 30, { 15, 9, 6 }, 2 },
	{ 3, { 1, 1, 1 }, 30, { 10, 10, 10 }, 1 },
	{ 3, { 5, 1, 1 }, 70, { 50, 10, 10 }, 4 },    /* ..aa|aab.. */
	{ 4, { 4, 3, 2, 1 }, 100, { 40, 30, 20, 10 }, 2 },
	{ 2, { 1000, 1 }, 2002, { 2000, 2 }, 0 },
	{ 2, { 2, 1 }, 9, { 6, 3 }, 2 },
};

START_TEST(test_rr_shares)
{
	const struct share_case *tc = &share_cases[_i];
	struct bal_slot slots[MAXB];
	int count[MAXB] = { 0 }, block[MAXB] = { 0 };
	int total = 0, last = -1, run = 0, in_block = 0;

	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < tc->n; i++) {
		slots[i].weight = tc->weight[i];
		slots[i].eligible = 1;
		total += tc->weight[i];
	}
	for (int k = 0; k < tc->picks; k++) {
		int i = bal_select(LB_ROUND_ROBIN, slots, tc->n, 0);

		ck_assert_int_ge(i, 0);
		count[i]++;
		block[i]++;
		run = i == last ? run + 1 : 1;
		last = i;
		if (tc->max_run > 0)
			ck_assert_msg(run <= tc->max_run,
			    "case %d: %d picks of %c in a row", _i, run,
			    letter(i));
		if (++in_block == total) {
			for (size_t s = 0; s < tc->n; s++) {
				ck_assert_int_eq(block[s], tc->weight[s]);
				block[s] = 0;
			}
			in_block = 0;
		}
	}
	for (size_t s = 0; s < tc->n; s++)
		ck_assert_int_eq(count[s], tc->count[s]);
}
END_TEST

/* Random eligibility, random weights: only eligible slots are picked, -1
 * exactly when none is, the state stays small and its sum constant. */
START_TEST(test_rr_random_eligibility)
{
	uint32_t x = 0x9e3779b9u + (uint32_t)_i;

	for (int trial = 0; trial < 50; trial++) {
		struct bal_slot slots[MAXB];
		size_t n = 1 + rnd(&x) % MAXB;
		int64_t total = 0, worst = 0;
		int wrong = 0;

		memset(slots, 0, sizeof(slots));
		for (size_t i = 0; i < n; i++) {
			slots[i].weight = rnd(&x) % 3 == 0 ? 1000 :
			    1 + (int)(rnd(&x) % 1000);
			total += slots[i].weight;
		}
		/* ck_assert costs a write per call: count, assert once. */
		for (int k = 0; k < 2000; k++) {
			int any = 0;
			int64_t sum = 0;

			for (size_t i = 0; i < n; i++) {
				slots[i].eligible = rnd(&x) % 2;
				any |= slots[i].eligible;
			}
			int got = bal_select(LB_ROUND_ROBIN, slots, n, 0);
			if (any ? got < 0 || !slots[got].eligible : got != -1)
				wrong++;
			for (size_t i = 0; i < n; i++) {
				int64_t c = slots[i].current;

				if (c > worst || -c > worst)
					worst = c > 0 ? c : -c;
				sum += c;
			}
			if (sum != 0)
				wrong++;
		}
		ck_assert_int_eq(wrong, 0);
		ck_assert_msg(worst <= 2 * total, "|current| %lld, weights %lld",
		    (long long)worst, (long long)total);
	}
}
END_TEST

/* State a caller corrupted (or that was about to overflow) restarts the
 * cycle instead of overflowing; weights out of range count as 1 or 1000. */
START_TEST(test_rr_state_bounds)
{
	struct bal_slot slots[3] = {
		{ .weight = 1, .current = INT_MAX, .eligible = 1 },
		{ .weight = 1, .current = INT_MIN, .eligible = 1 },
		{ .weight = 1, .current = 0, .eligible = 1 },
	};
	char got[7];

	for (int k = 0; k < 6; k++)
		got[k] = letter(bal_select(LB_ROUND_ROBIN, slots, 3, 0));
	got[6] = '\0';
	ck_assert_str_eq(got, "abcabc");

	struct bal_slot w[2] = {
		{ .weight = 0, .eligible = 1 },         /* as 1 */
		{ .weight = INT_MAX, .eligible = 1 },   /* as 1000 */
	};
	int count[2] = { 0, 0 };

	for (int k = 0; k < 1001; k++)
		count[bal_select(LB_ROUND_ROBIN, w, 2, 0)]++;
	ck_assert_int_eq(count[0], 1);
	ck_assert_int_eq(count[1], 1000);
}
END_TEST

/* ---- bal_select: least connections ------------------------------------------- */

struct lc_case {
	const char *name;
	size_t n;
	int weight[MAXB];
	int in_flight[MAXB];
	const char *eligible;
	unsigned rotate;
	char want;
};

static const struct lc_case lc_cases[] = {
	{ "fewest in flight", 3, { 1, 1, 1 }, { 3, 1, 2 }, "abc", 0, 'b' },
	{ "fewest in flight, rotate irrelevant", 3, { 1, 1, 1 }, { 3, 1, 2 },
	  "abc", 2, 'b' },
	{ "per weight: 2/3 < 1/1", 2, { 1, 3 }, { 1, 2 }, "ab", 0, 'b' },
	{ "per weight: 1/1 < 4/3", 2, { 1, 3 }, { 1, 4 }, "ab", 0, 'a' },
	{ "equal ratio: larger weight", 2, { 2, 1 }, { 2, 1 }, "ab", 1, 'a' },
	{ "equal ratio: larger weight (b)", 3, { 1, 4, 2 }, { 1, 4, 2 }, "abc",
	  0, 'b' },
	{ "all idle, equal: rotate 0", 3, { 1, 1, 1 }, { 0 }, "abc", 0, 'a' },
	{ "all idle, equal: rotate 1", 3, { 1, 1, 1 }, { 0 }, "abc", 1, 'b' },
	{ "all idle, equal: rotate 2", 3, { 1, 1, 1 }, { 0 }, "abc", 2, 'c' },
	{ "all idle, equal: rotate wraps", 3, { 1, 1, 1 }, { 0 }, "abc", 4,
	  'b' },
	{ "all idle, equal: huge rotate", 3, { 1, 1, 1 }, { 0 }, "abc",
	  UINT_MAX, 'a' },      /* UINT_MAX % 3 == 0 */
	{ "tie on weight: first at rotate", 3, { 1, 2, 2 }, { 1, 2, 2 }, "abc",
	  0, 'b' },
	{ "tie on weight: rotate 2", 3, { 1, 2, 2 }, { 1, 2, 2 }, "abc", 2,
	  'c' },
	{ "tie on weight: rotate wraps to b", 3, { 1, 2, 2 }, { 1, 2, 2 },
	  "abc", 3, 'b' },
	{ "tie on weight: rotate past c wraps", 4, { 2, 1, 2, 1 }, { 0 },
	  "abcd", 3, 'a' },
	{ "idle but ineligible", 3, { 1, 1, 1 }, { 0, 5, 6 }, "bc", 0, 'b' },
	{ "only ineligible ones idle", 3, { 1, 5, 5 }, { 9, 0, 0 }, "a", 1,
	  'a' },
	{ "all ineligible", 3, { 1, 1, 1 }, { 0 }, "", 0, '-' },
	{ "no overflow: INT_MAX in flight", 2, { 1000, 999 },
	  { INT_MAX, INT_MAX }, "ab", 1, 'a' },
	{ "no overflow: near INT_MAX", 2, { 1000, 1000 },
	  { INT_MAX, INT_MAX - 1 }, "ab", 0, 'b' },
	{ "single", 1, { 3 }, { 100 }, "a", 7, 'a' },
};

START_TEST(test_lc)
{
	const struct lc_case *tc = &lc_cases[_i];
	struct bal_slot slots[MAXB];

	memset(slots, 0, sizeof(slots));
	for (size_t i = 0; i < tc->n; i++) {
		slots[i].weight = tc->weight[i];
		slots[i].in_flight = tc->in_flight[i];
		slots[i].current = 10 * (int)i + 1;
		slots[i].eligible = has_letter(tc->eligible, i);
	}
	char got = letter(bal_select(LB_LEAST_CONNECTIONS, slots, tc->n,
	    tc->rotate));
	ck_assert_msg(got == tc->want, "%s: got %c, want %c", tc->name, got,
	    tc->want);
	/* Round-robin state is not least_connections' business. */
	for (size_t i = 0; i < tc->n; i++)
		ck_assert_int_eq(slots[i].current, 10 * (int)i + 1);
}
END_TEST

/* ---- a table built from a config made here ------------------------------------- */

struct bdef {
	int weight;
	int max_connections;
	const char *models;     /* "x,y"; NULL: serves any */
};

static struct config cfg;
static struct backend_conf confs[MAXB];
static struct backend_table tbl;

static void
config_make(enum lb_strategy s, const struct bdef *defs, size_t n)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(confs, 0, sizeof(confs));
	cfg.load_balance = s;
	cfg.hc_enabled = 0;
	cfg.hc_healthy_threshold = 2;
	cfg.hc_unhealthy_threshold = 3;
	cfg.hc_eject = 1;
	cfg.hc_eject_on_5xx = 1;
	cfg.hc_eject_cooldown_ms = 1000;
	cfg.backends = confs;
	cfg.nbackends = n;
	for (size_t i = 0; i < n; i++) {
		struct backend_conf *bc = &confs[i];

		snprintf(bc->name, sizeof(bc->name), "%c", LETTERS[i]);
		bc->weight = defs[i].weight;
		bc->max_connections = defs[i].max_connections;
		for (const char *m = defs[i].models; m != NULL && *m != '\0';) {
			size_t len = strcspn(m, ",");

			ck_assert_uint_lt(len, CAP_MODEL_NAME);
			memcpy(bc->models[bc->nmodels++], m, len);
			m += len + (m[len] == ',');
		}
	}
}

static void
table_make(enum lb_strategy s, const struct bdef *defs, size_t n)
{
	config_make(s, defs, n);
	ck_assert_int_eq(bal_init(&tbl, &cfg), 0);
	ck_assert_uint_eq(tbl.n, n);
}

static int
index_of(const struct backend *b)
{
	return b == NULL ? -1 : (int)(b - tbl.backends);
}

static int
in_flight(size_t i)
{
	return atomic_load(&tbl.backends[i].in_flight);
}

/* Plain values, so that a failed assertion prints a readable line. */
static int64_t
out_until(struct backend *b)
{
	return atomic_load(&b->out_until_ms);
}

static int
healthy(struct backend *b)
{
	return atomic_load(&b->healthy);
}

/* One acquire; its letter, and *why when none. */
static char
acquire(const char *model, struct backend *const *exclude, size_t nexclude,
    int64_t now, enum bal_none *why)
{
	struct bal_request rq = {
		.model = model,
		.model_len = model != NULL ? strlen(model) : 0,
		.exclude = exclude,
		.nexclude = nexclude,
	};

	return letter(index_of(bal_acquire(&tbl, &rq, now, why)));
}

/* The letters picked over k acquire/release rounds. */
static void
picks(const char *model, struct backend *const *exclude, size_t nexclude,
    int k, char *out)
{
	enum bal_none why;

	for (int j = 0; j < k; j++) {
		out[j] = acquire(model, exclude, nexclude, 0, &why);
		if (out[j] != '-')
			bal_release(&tbl.backends[out[j] - 'a']);
	}
	out[k] = '\0';
}

/* ---- model routing ----------------------------------------------------------- */

struct serves_case {
	const char *models;     /* configured, "x,y"; NULL: none */
	const char *model;      /* the request's bytes */
	size_t len;
	int want;
};

static const struct serves_case serves_cases[] = {
	{ NULL, "anything", 8, 1 },
	{ NULL, "", 0, 1 },
	{ "llama3,qwen2", "llama3", 6, 1 },
	{ "llama3,qwen2", "qwen2", 5, 1 },
	{ "llama3,qwen2", "qwen", 4, 0 },               /* a prefix */
	{ "llama3,qwen2", "qwen2.5", 7, 0 },            /* longer */
	{ "llama3,qwen2", "LLAMA3", 6, 0 },             /* case matters */
	{ "llama3,qwen2", "llama3-8b", 6, 1 },          /* len, not NUL */
	{ "llama3,qwen2", "", 0, 0 },
	{ "meta/llama3", "meta\\/llama3", 12, 0 },      /* escapes: raw */
	{ "meta/llama3", "meta/llama3", 11, 1 },
	{ "a", "a\0b", 3, 0 },                          /* NUL inside */
};

START_TEST(test_serves)
{
	const struct serves_case *tc = &serves_cases[_i];
	struct bdef d = { 1, 0, tc->models };

	config_make(LB_ROUND_ROBIN, &d, 1);
	ck_assert_int_eq(bal_serves(&confs[0], tc->model, tc->len), tc->want);
	/* A request without a model goes anywhere. */
	ck_assert_int_eq(bal_serves(&confs[0], NULL, 0), 1);
}
END_TEST

struct model_case {
	const char *model;
	const char *picked;     /* over 6 rounds, equal weights */
};

static const struct model_case model_cases[] = {
	{ "x", "acacac" },
	{ "y", "abcabc" },
	{ "z", "cccccc" },
	{ "xy", "cccccc" },
	{ "", "cccccc" },
	{ NULL, "abcabc" },
};

START_TEST(test_acquire_model)
{
	static const struct bdef defs[] = {
		{ 1, 0, "x,y" }, { 1, 0, "y" }, { 1, 0, NULL },
	};
	const struct model_case *tc = &model_cases[_i];
	char got[8];

	table_make(LB_ROUND_ROBIN, defs, 3);
	picks(tc->model, NULL, 0, 6, got);
	ck_assert_msg(strcmp(got, tc->picked) == 0, "model %s: got %s, want %s",
	    tc->model != NULL ? tc->model : "(none)", got, tc->picked);
	bal_free(&tbl);
}
END_TEST

/* 404 only when no backend at all serves the model, whatever their health;
 * 503 when some would but none may now. */
START_TEST(test_acquire_no_model)
{
	static const struct bdef defs[] = { { 1, 0, "x" }, { 1, 0, "y" } };
	struct backend *a;
	enum bal_none why = 0;

	table_make(LB_ROUND_ROBIN, defs, 2);
	a = &tbl.backends[0];
	ck_assert_int_eq(acquire("z", NULL, 0, 0, &why), '-');
	ck_assert_int_eq(why, BAL_NO_MODEL);

	why = 0;
	ck_assert_int_eq(acquire("x", &a, 1, 0, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);

	/* Out on passive evidence only (Retry-After): rather than refuse, the
	 * one that serves the model is tried ("panic"). */
	bal_busy_until(&tbl.backends[0], 100);
	bal_busy_until(&tbl.backends[1], 100);
	ck_assert_int_eq(acquire("x", NULL, 0, 50, NULL), 'a');
	bal_release(&tbl.backends[0]);
	/* Down by the probes: refused. */
	atomic_store(&tbl.backends[0].healthy, 0);
	atomic_store(&tbl.backends[1].healthy, 0);
	why = 0;
	ck_assert_int_eq(acquire("x", NULL, 0, 50, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	why = 0;
	ck_assert_int_eq(acquire("z", NULL, 0, 50, &why), '-');
	ck_assert_int_eq(why, BAL_NO_MODEL);
	why = 0;
	ck_assert_int_eq(acquire(NULL, NULL, 0, 50, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	/* why may be NULL. */
	ck_assert_int_eq(acquire("x", NULL, 0, 50, NULL), '-');

	atomic_store(&tbl.backends[0].healthy, 1);
	ck_assert_int_eq(acquire("x", NULL, 0, 100, &why), 'a');
	ck_assert_int_eq(in_flight(0), 1);
	ck_assert_int_eq(in_flight(1), 0);
	bal_free(&tbl);
}
END_TEST

/* ---- exclusions, max_connections, in flight ----------------------------------- */

START_TEST(test_acquire_exclude)
{
	static const struct bdef defs[] = {
		{ 1, 0, NULL }, { 1, 0, NULL }, { 2, 0, NULL },
	};
	struct backend *ex[3];
	enum bal_none why = 0;
	char got[16];

	table_make(LB_ROUND_ROBIN, defs, 3);
	ex[0] = &tbl.backends[0];
	ex[1] = &tbl.backends[1];
	ex[2] = &tbl.backends[2];

	/* a excluded: b and c by weight 1:2; a's state untouched. */
	picks(NULL, ex, 1, 6, got);
	ck_assert_str_eq(got, "cbccbc");
	ck_assert_int_eq(tbl.backends[0].current_weight, 0);

	picks(NULL, ex, 2, 3, got);
	ck_assert_str_eq(got, "ccc");

	picks(NULL, ex + 1, 2, 3, got);
	ck_assert_str_eq(got, "aaa");

	ck_assert_int_eq(acquire(NULL, ex, 3, 0, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(in_flight(i), 0);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_acquire_max_connections)
{
	static const struct bdef defs[] = { { 1, 1, NULL }, { 1, 2, NULL } };
	enum bal_none why = 0;

	table_make(_i == 0 ? LB_ROUND_ROBIN : LB_LEAST_CONNECTIONS, defs, 2);
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), 'a');
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), 'b');
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), 'b');    /* a full */
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), '-');    /* both */
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	ck_assert_int_eq(in_flight(0), 1);
	ck_assert_int_eq(in_flight(1), 2);

	bal_release(&tbl.backends[1]);
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), 'b');
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), '-');
	bal_release(&tbl.backends[0]);
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), 'a');
	ck_assert_int_eq(in_flight(0), 1);
	ck_assert_int_eq(in_flight(1), 2);
	bal_free(&tbl);
}
END_TEST

/* Acquired and not yet released counts, in the nginx order (the round-robin
 * state goes back into the table); releases bring it to 0 and no further. */
START_TEST(test_acquire_in_flight)
{
	static const struct bdef defs[] = {
		{ 5, 0, NULL }, { 1, 0, NULL }, { 1, 0, NULL },
	};
	char got[8];
	enum bal_none why;

	table_make(LB_ROUND_ROBIN, defs, 3);
	for (int k = 0; k < 7; k++)
		got[k] = acquire(NULL, NULL, 0, 0, &why);
	got[7] = '\0';
	ck_assert_str_eq(got, "aabacaa");
	ck_assert_int_eq(in_flight(0), 5);
	ck_assert_int_eq(in_flight(1), 1);
	ck_assert_int_eq(in_flight(2), 1);

	for (int k = 0; k < 5; k++)
		bal_release(&tbl.backends[0]);
	bal_release(&tbl.backends[1]);
	bal_release(&tbl.backends[2]);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(in_flight(i), 0);
	bal_release(&tbl.backends[1]);          /* one too many */
	ck_assert_int_eq(in_flight(1), 0);
	bal_free(&tbl);
}
END_TEST

/* least_connections through the table: held requests count, weights break
 * ties, and idle backends are taken in turns (rotate moves past each pick). */
START_TEST(test_acquire_least_connections)
{
	static const struct bdef equal[] = { { 1, 0, NULL }, { 1, 0, NULL },
	    { 1, 0, NULL } };
	static const struct bdef weighted[] = { { 1, 0, NULL },
	    { 3, 0, NULL } };
	char got[16];
	enum bal_none why;

	table_make(LB_LEAST_CONNECTIONS, equal, 3);
	picks(NULL, NULL, 0, 7, got);
	ck_assert_str_eq(got, "abcabca");

	/* b holds two, c one: a, then c, then a and c alternate with b. */
	struct backend *b = &tbl.backends[1], *c = &tbl.backends[2];
	atomic_store(&b->in_flight, 2);
	atomic_store(&c->in_flight, 1);
	for (int k = 0; k < 6; k++)
		got[k] = acquire(NULL, NULL, 0, 0, &why);
	got[6] = '\0';
	ck_assert_str_eq(got, "acabca");
	bal_free(&tbl);

	table_make(LB_LEAST_CONNECTIONS, weighted, 2);
	for (int k = 0; k < 6; k++)
		got[k] = acquire(NULL, NULL, 0, 0, &why);
	got[6] = '\0';
	ck_assert_str_eq(got, "babbba");
	ck_assert_int_eq(in_flight(0), 2);
	ck_assert_int_eq(in_flight(1), 4);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_acquire_all_down)
{
	static const struct bdef defs[] = { { 1, 0, NULL }, { 3, 0, NULL } };
	enum bal_none why = 0;

	table_make(_i == 0 ? LB_ROUND_ROBIN : LB_LEAST_CONNECTIONS, defs, 2);
	cfg.hc_enabled = 1;
	for (int k = 0; k < 3; k++) {
		bal_probe_result(&tbl, &tbl.backends[0], 0, 0);
		bal_probe_result(&tbl, &tbl.backends[1], 0, 0);
	}
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	ck_assert_int_eq(in_flight(0), 0);
	ck_assert_int_eq(in_flight(1), 0);
	ck_assert_int_eq(tbl.backends[0].current_weight, 0);
	ck_assert_int_eq(tbl.backends[1].current_weight, 0);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_init_free)
{
	static const struct bdef defs[] = { { 1, 0, NULL }, { 1, 0, NULL } };
	int fds[2];

	config_make(LB_ROUND_ROBIN, defs, 2);
	cfg.nbackends = CAP_BACKENDS + 1;       /* the snapshot's size */
	ck_assert_int_eq(bal_init(&tbl, &cfg), -1);
	bal_free(&tbl);                         /* harmless */

	cfg.nbackends = 0;
	ck_assert_int_eq(bal_init(&tbl, &cfg), 0);
	enum bal_none why = 0;
	ck_assert_int_eq(acquire(NULL, NULL, 0, 0, &why), '-');
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	bal_free(&tbl);

	table_make(LB_ROUND_ROBIN, defs, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_ptr_eq(tbl.backends[i].conf, &confs[i]);
		ck_assert_int_eq(healthy(&tbl.backends[i]), 1);
		ck_assert(bal_available(&tbl.backends[i], 0));
	}
	/* Idle connections are closed, reported models freed (the
	 * sanitizer build finds a leak). */
	ck_assert_int_eq(pipe(fds), 0);
	io_init_plain(&tbl.backends[1].idle_io[0], fds[0]);
	io_init_plain(&tbl.backends[1].idle_io[1], fds[1]);
	tbl.backends[1].nidle = 2;
	tbl.backends[0].reported = calloc(4, CAP_MODEL_NAME);
	tbl.backends[0].nreported = 4;
	bal_free(&tbl);
	ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(fcntl(fds[1], F_GETFD), -1);
	ck_assert_ptr_null(tbl.backends);
	bal_free(&tbl);                         /* twice: harmless */
}
END_TEST

/* ---- passive ejection ----------------------------------------------------------- */

/* The backend under test, with a healthy peer beside it: the last backend
 * standing is never ejected (test_lone_backend_never_ejected). */
static struct backend *
one_backend(int probes)
{
	static const struct bdef d[2] = { { 1, 0, NULL }, { 1, 0, NULL } };

	table_make(LB_ROUND_ROBIN, d, 2);
	cfg.hc_enabled = probes;
	return &tbl.backends[0];
}

START_TEST(test_lone_backend_never_ejected)
{
	static const struct bdef d = { 1, 0, NULL };

	table_make(LB_ROUND_ROBIN, &d, 1);
	cfg.hc_unhealthy_threshold = 1;
	for (int k = 0; k < 10; k++)
		ck_assert_int_eq(bal_report(&tbl, &tbl.backends[0], 0, 100), 0);
	ck_assert(bal_available(&tbl.backends[0], 100));
	bal_free(&tbl);

	/* Two backends may both go: then requests get a fast 503 until a
	 * cool-down ends, rather than each waiting on a dead backend. */
	static const struct bdef two[2] = { { 1, 0, NULL }, { 1, 0, NULL } };
	enum bal_none why = 0;
	table_make(LB_ROUND_ROBIN, two, 2);
	cfg.hc_unhealthy_threshold = 1;
	ck_assert_int_eq(bal_report(&tbl, &tbl.backends[1], 0, 100), -1);
	ck_assert_int_eq(bal_report(&tbl, &tbl.backends[0], 0, 100), -1);
	ck_assert_ptr_null(bal_acquire(&tbl, NULL, 100, &why));
	ck_assert_int_eq(why, BAL_NONE_AVAILABLE);
	bal_free(&tbl);
}
END_TEST

/* Out for exactly [from, until): not at until - 1, back at until. */
static void
assert_out(struct backend *b, int64_t from, int64_t until)
{
	ck_assert_msg(!bal_available(b, from), "available at %lld",
	    (long long)from);
	ck_assert_msg(!bal_available(b, until - 1), "available at %lld",
	    (long long)(until - 1));
	ck_assert_msg(bal_available(b, until), "not available at %lld",
	    (long long)until);
}

static const int thresholds[] = { 1, 2, 3, 5 };

START_TEST(test_eject_threshold)
{
	struct backend *b = one_backend(0);
	int thr = thresholds[_i];

	cfg.hc_unhealthy_threshold = thr;
	for (int k = 1; k < thr; k++) {
		ck_assert_int_eq(bal_report(&tbl, b, 0, 100), 0);
		ck_assert(bal_available(b, 100));
	}
	ck_assert_int_eq(bal_report(&tbl, b, 0, 100), -1);
	assert_out(b, 100, 1100);
	/* Without probes, healthy never changes. */
	ck_assert_int_eq(healthy(b), 1);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_success_clears_streak)
{
	struct backend *b = one_backend(0);

	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 1, 0), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), 0);
	ck_assert(bal_available(b, 0));
	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), -1);
	ck_assert(!bal_available(b, 0));
	bal_free(&tbl);
}
END_TEST

/*
 * Ejected again and again without a request served well in between: the
 * cool-down doubles up to CAP_EJECT_COOLDOWN_GROWTH times the first, and
 * after the first ejection a single failure is enough (probation).  One
 * success ends it: threshold failures and the first cool-down again.
 */
START_TEST(test_cooldown_growth)
{
	static const int64_t want[] = {
		1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000,
	};
	struct backend *b = one_backend(0);
	int64_t now = 5000;

	ck_assert_int_eq(CAP_EJECT_COOLDOWN_GROWTH, 32);  /* the table's */
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		int fails = k == 0 ? cfg.hc_unhealthy_threshold : 1;

		for (int f = 1; f < fails; f++)
			ck_assert_int_eq(bal_report(&tbl, b, 0, now), 0);
		ck_assert_int_eq(bal_report(&tbl, b, 0, now), -1);
		ck_assert_int_eq(out_until(b), now + want[k]);
		assert_out(b, now, now + want[k]);
		ck_assert_int_eq(healthy(b), 1);
		now += want[k];
	}

	ck_assert_int_eq(bal_report(&tbl, b, 1, now), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, now), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, now), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, now), -1);
	assert_out(b, now, now + 1000);
	bal_free(&tbl);
}
END_TEST

/* A stream that began before the ejection and ends well during the
 * cool-down ends no probation; failures of requests that were already on b
 * when it went out neither extend the cool-down nor count. */
START_TEST(test_reports_while_out)
{
	struct backend *b = one_backend(0);

	for (int k = 0; k < 3; k++)
		bal_report(&tbl, b, 0, 0);
	ck_assert_int_eq(out_until(b), 1000);
	for (int64_t t = 1; t < 1000; t += 100)
		ck_assert_int_eq(bal_report(&tbl, b, 0, t), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 1, 500), 0);
	assert_out(b, 0, 1000);

	/* Still on probation at 1000: one failure, twice the cool-down. */
	ck_assert_int_eq(bal_report(&tbl, b, 0, 1000), -1);
	assert_out(b, 1000, 3000);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_eject_off)
{
	struct backend *b = one_backend(_i);

	cfg.hc_eject = 0;
	for (int k = 0; k < 100; k++)
		ck_assert_int_eq(bal_report(&tbl, b, 0, k), 0);
	ck_assert(bal_available(b, 100));
	ck_assert_int_eq(healthy(b), 1);
	ck_assert_int_eq(out_until(b), 0);
	bal_free(&tbl);
}
END_TEST

/* ---- active probes ------------------------------------------------------------- */

struct probe_step {
	int64_t at;
	int ok;
	int ret;                /* bal_probe_result() */
	int available;          /* afterwards, at `at` */
};

struct probe_case {
	const char *name;
	struct probe_step step[8];
	size_t n;
};

/* After a passive ejection at 0 (cool-down 1000, healthy_threshold 2). */
static const struct probe_case probe_cases[] = {
	{ "passes during the cool-down count, return at its end",
	  { { 100, 1, 0, 0 }, { 500, 1, 0, 0 }, { 999, 1, 0, 0 },
	    { 1000, 1, 1, 1 }, { 1100, 1, 0, 1 } }, 5 },
	{ "passes only after the cool-down",
	  { { 1000, 1, 0, 0 }, { 1500, 1, 1, 1 } }, 2 },
	{ "a failure restarts the passes",
	  { { 500, 1, 0, 0 }, { 900, 0, 0, 0 }, { 1000, 1, 0, 0 },
	    { 1100, 0, 0, 0 }, { 1200, 1, 0, 0 }, { 1300, 1, 1, 1 } }, 6 },
	{ "failing probes keep it out, never 'went down' twice",
	  { { 100, 0, 0, 0 }, { 200, 0, 0, 0 }, { 300, 0, 0, 0 },
	    { 2000, 0, 0, 0 }, { 3000, 1, 0, 0 }, { 4000, 1, 1, 1 } }, 6 },
};

START_TEST(test_probes_after_ejection)
{
	const struct probe_case *tc = &probe_cases[_i];
	struct backend *b = one_backend(1);

	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(bal_report(&tbl, b, 0, 0), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 0), -1);
	ck_assert_int_eq(healthy(b), 0);
	/* The cool-down alone does not bring it back. */
	ck_assert(!bal_available(b, 1000));
	ck_assert(!bal_available(b, 100000));

	for (size_t s = 0; s < tc->n; s++) {
		const struct probe_step *st = &tc->step[s];

		ck_assert_msg(bal_probe_result(&tbl, b, st->ok, st->at) ==
		    st->ret, "%s: step %zu", tc->name, s);
		ck_assert_msg(bal_available(b, st->at) == st->available,
		    "%s: step %zu", tc->name, s);
	}
	ck_assert_int_eq(out_until(b), 0);
	bal_free(&tbl);
}
END_TEST

/* Probes brought it back; requests have not yet: still on probation, so a
 * single failure sends it out for twice as long (a health endpoint that
 * passes while inference fails).  One success ends that. */
START_TEST(test_probation_after_probes)
{
	struct backend *b = one_backend(1);

	for (int k = 0; k < 3; k++)
		bal_report(&tbl, b, 0, 0);
	bal_probe_result(&tbl, b, 1, 1000);
	ck_assert_int_eq(bal_probe_result(&tbl, b, 1, 1000), 1);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 1500), -1);
	ck_assert_int_eq(out_until(b), 3500);
	ck_assert_int_eq(healthy(b), 0);

	bal_probe_result(&tbl, b, 1, 3500);
	ck_assert_int_eq(bal_probe_result(&tbl, b, 1, 3500), 1);
	ck_assert_int_eq(bal_report(&tbl, b, 1, 3600), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 3700), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 3700), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 3700), -1);
	ck_assert_int_eq(out_until(b), 4700);
	bal_free(&tbl);
}
END_TEST

/* Probes alone: unhealthy_threshold failures in a row take it down (no
 * cool-down: it is back as soon as healthy_threshold pass). */
START_TEST(test_probes_down_up)
{
	static const struct probe_step steps[] = {
		{ 0, 0, 0, 1 }, { 10, 0, 0, 1 }, { 20, 1, 0, 1 },
		{ 30, 0, 0, 1 }, { 40, 0, 0, 1 }, { 50, 0, -1, 0 },
		{ 60, 0, 0, 0 }, { 70, 1, 0, 0 }, { 80, 0, 0, 0 },
		{ 90, 1, 0, 0 }, { 100, 1, 1, 1 }, { 110, 1, 0, 1 },
	};
	struct backend *b = one_backend(1);

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		ck_assert_msg(bal_probe_result(&tbl, b, steps[s].ok,
		    steps[s].at) == steps[s].ret, "step %zu", s);
		ck_assert_msg(bal_available(b, steps[s].at) ==
		    steps[s].available, "step %zu", s);
	}
	ck_assert_int_eq(out_until(b), 0);
	/* Not an ejection: no probation, threshold failures to eject. */
	ck_assert_int_eq(bal_report(&tbl, b, 0, 200), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 200), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 200), -1);
	ck_assert_int_eq(out_until(b), 1200); /* the first */
	ck_assert_int_eq(healthy(b), 0);
	bal_free(&tbl);
}
END_TEST

/* ---- Retry-After ----------------------------------------------------------------- */

START_TEST(test_busy_until)
{
	struct backend *b = one_backend(_i);

	bal_busy_until(b, 500);
	assert_out(b, 0, 500);
	bal_busy_until(b, 300);         /* the later deadline stays */
	assert_out(b, 0, 500);
	bal_busy_until(b, 800);
	assert_out(b, 0, 800);
	ck_assert_int_eq(healthy(b), 1);

	/* Not an ejection, and what failed while b was busy does not count. */
	for (int k = 0; k < 5; k++)
		ck_assert_int_eq(bal_report(&tbl, b, 0, 400), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 800), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 800), 0);
	ck_assert_int_eq(bal_report(&tbl, b, 0, 800), -1);
	ck_assert_int_eq(out_until(b), 1800);

	/* A Retry-After past the cool-down holds the return back, with probes
	 * or without. */
	bal_busy_until(b, 2500);
	if (!cfg.hc_enabled) {
		ck_assert_int_eq(healthy(b), 1);
		assert_out(b, 1800, 2500);
	} else {
		ck_assert_int_eq(healthy(b), 0);
		ck_assert_int_eq(bal_probe_result(&tbl, b, 1, 1800), 0);
		/* healthy again after the cool-down ... */
		ck_assert_int_eq(bal_probe_result(&tbl, b, 1, 2000), 1);
		/* ... but busy until its Retry-After ends */
		ck_assert(!bal_available(b, 2499));
		ck_assert(bal_available(b, 2500));
	}
	bal_free(&tbl);
}
END_TEST

/* ---- many threads at once ---------------------------------------------------------- */

#define THREADS         8
#define ROUNDS          20000

struct worker {
	pthread_t tid;
	uint32_t seed;
	int bad;                /* what went wrong, for the main thread */
	long picked;
};

static _Atomic int64_t clock_ms;
static _Atomic int stop;

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct backend *held[4];
	size_t nheld = 0;

	for (int r = 0; r < ROUNDS && !w->bad; r++) {
		struct backend *ex = &tbl.backends[rnd(&w->seed) % tbl.n];
		struct bal_request rq = {
			.model = rnd(&w->seed) % 4 == 0 ? "m" : NULL,
			.model_len = 1,
			.exclude = &ex,
			.nexclude = rnd(&w->seed) % 2,
		};
		enum bal_none why;
		struct backend *b = bal_acquire(&tbl, &rq,
		    atomic_fetch_add(&clock_ms, 1), &why);

		if (b != NULL) {
			int v = atomic_load(&b->in_flight);
			int max = b->conf->max_connections;

			if (v < 1 || (max > 0 && v > max))
				w->bad = 1;
			if (rq.nexclude == 1 && b == ex)
				w->bad = 2;
			w->picked++;
			held[nheld++] = b;
		} else if (why != BAL_NONE_AVAILABLE) {
			w->bad = 3;
		}
		/* Hold up to four at once, so requests overlap. */
		while (nheld > 0 && (nheld == 4 || rnd(&w->seed) % 2))
			bal_release(held[--nheld]);
	}
	while (nheld > 0)
		bal_release(held[--nheld]);
	return NULL;
}

/* Health changes at the same time, and a watcher of the counters. */
static void *
chaos_run(void *arg)
{
	uint32_t seed = 12345;
	int *bad = arg;

	while (!atomic_load(&stop)) {
		/* Never a: something stays up for the count of picks. */
		struct backend *b = &tbl.backends[1 + rnd(&seed) % (tbl.n - 1)];
		int64_t now = atomic_load(&clock_ms);

		switch (rnd(&seed) % 4) {
		case 0:
			bal_report(&tbl, b, rnd(&seed) % 3 == 0, now);
			break;
		case 1:
			bal_probe_result(&tbl, b, rnd(&seed) % 3 != 0, now);
			break;
		case 2:
			bal_busy_until(b, now + 5);
			break;
		default:
			(void)bal_available(b, now);
			break;
		}
		for (size_t i = 0; i < tbl.n; i++)
			if (atomic_load(&tbl.backends[i].in_flight) < 0)
				*bad = 1;
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	static const struct bdef defs[] = {
		{ 5, 0, NULL }, { 3, 3, "m" }, { 2, 2, NULL }, { 1, 1, "m" },
	};
	struct worker w[THREADS];
	pthread_t chaos;
	int chaos_bad = 0;
	long picked = 0;

	table_make(_i == 0 ? LB_ROUND_ROBIN : LB_LEAST_CONNECTIONS, defs, 4);
	cfg.hc_enabled = 1;
	cfg.hc_eject_cooldown_ms = 3;
	atomic_store(&clock_ms, 0);
	atomic_store(&stop, 0);
	ck_assert_int_eq(pthread_create(&chaos, NULL, chaos_run, &chaos_bad),
	    0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .seed = 7919u * (uint32_t)(i + 1) };
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL, worker_run,
		    &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].tid, NULL);
		ck_assert_msg(w[i].bad == 0, "worker %d: %d", i, w[i].bad);
		picked += w[i].picked;
	}
	atomic_store(&stop, 1);
	pthread_join(chaos, NULL);
	ck_assert_int_eq(chaos_bad, 0);
	ck_assert_int_gt(picked, THREADS * ROUNDS / 2);
	for (size_t i = 0; i < tbl.n; i++)
		ck_assert_int_eq(in_flight(i), 0);
	bal_free(&tbl);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- reload: state carried over by name and url ------------------------------ */

START_TEST(test_carry_over)
{
	static const struct bdef defs[] = { { 1, 0, NULL }, { 1, 0, NULL }, { 1, 0, NULL } };
	static struct backend_conf newconfs[3];
	struct config newcfg;
	struct backend_table next;

	table_make(LB_ROUND_ROBIN, defs, 3);
	for (size_t i = 0; i < 3; i++)
		snprintf(confs[i].url, sizeof(confs[i].url), "http://h%zu", i);
	/* a: ejected with a streak; b: down by probes, with models; c: busy. */
	struct backend *a = &tbl.backends[0], *b = &tbl.backends[1], *c = &tbl.backends[2];
	for (int k = 0; k < 3; k++)
		bal_report(&tbl, a, 0, 100);
	ck_assert_int_gt(out_until(a), 100);
	atomic_store(&b->healthy, 0);
	b->reported = calloc(CAP_BACKEND_MODELS, sizeof(*b->reported));
	strcpy(b->reported[0], "m1");
	b->nreported = 1;
	b->reported_at_ms = 42;
	bal_busy_until(c, 5000);

	/* The next config: a as it was, b at another url, c gone, d new. */
	memcpy(&newcfg, &cfg, sizeof(cfg));
	memcpy(newconfs, confs, sizeof(newconfs));
	snprintf(newconfs[1].url, sizeof(newconfs[1].url), "http://elsewhere");
	snprintf(newconfs[2].name, sizeof(newconfs[2].name), "d");
	newcfg.backends = newconfs;
	ck_assert_int_eq(bal_init(&next, &newcfg), 0);
	ck_assert_uint_eq(bal_carry_over(&next, &tbl), 1);

	ck_assert_int_eq(atomic_load(&next.backends[0].out_until_ms), out_until(a));
	ck_assert_int_eq(next.backends[0].fail_streak, a->fail_streak);
	ck_assert_int_eq(next.backends[0].ejections, a->ejections);
	ck_assert_int_eq(healthy(&next.backends[1]), 1);     /* another backend */
	ck_assert_uint_eq(next.backends[1].nreported, 0);
	ck_assert_int_eq(atomic_load(&next.backends[2].busy_until_ms), 0);

	/* Models travel with the backend, in a copy of their own. */
	snprintf(newconfs[1].url, sizeof(newconfs[1].url), "http://h1");
	struct backend_table again;
	ck_assert_int_eq(bal_init(&again, &newcfg), 0);
	ck_assert_uint_eq(bal_carry_over(&again, &tbl), 2);
	ck_assert_int_eq(healthy(&again.backends[1]), 0);
	ck_assert_uint_eq(again.backends[1].nreported, 1);
	ck_assert_str_eq(again.backends[1].reported[0], "m1");
	ck_assert_ptr_ne(again.backends[1].reported, b->reported);
	ck_assert_int_eq(again.backends[1].reported_at_ms, 42);

	bal_free(&again);
	bal_free(&next);
	bal_free(&tbl);
}
END_TEST

static Suite *
balancer_suite(void)
{
	Suite *s = suite_create("balancer");
	TCase *tc;

	tc = tcase_create("select");
	tcase_add_loop_test(tc, test_rr_sequences, 0, N(rr_cases));
	tcase_add_loop_test(tc, test_rr_shares, 0, N(share_cases));
	tcase_add_loop_test(tc, test_rr_random_eligibility, 0, 4);
	tcase_add_test(tc, test_rr_state_bounds);
	tcase_add_loop_test(tc, test_lc, 0, N(lc_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("acquire");
	tcase_add_loop_test(tc, test_serves, 0, N(serves_cases));
	tcase_add_loop_test(tc, test_acquire_model, 0, N(model_cases));
	tcase_add_test(tc, test_acquire_no_model);
	tcase_add_test(tc, test_acquire_exclude);
	tcase_add_loop_test(tc, test_acquire_max_connections, 0, 2);
	tcase_add_test(tc, test_acquire_in_flight);
	tcase_add_test(tc, test_acquire_least_connections);
	tcase_add_loop_test(tc, test_acquire_all_down, 0, 2);
	tcase_add_test(tc, test_init_free);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_test(tc, test_lone_backend_never_ejected);
	tcase_add_loop_test(tc, test_eject_threshold, 0, N(thresholds));
	tcase_add_test(tc, test_success_clears_streak);
	tcase_add_test(tc, test_cooldown_growth);
	tcase_add_test(tc, test_reports_while_out);
	tcase_add_loop_test(tc, test_eject_off, 0, 2);
	tcase_add_loop_test(tc, test_probes_after_ejection, 0, N(probe_cases));
	tcase_add_test(tc, test_probation_after_probes);
	tcase_add_test(tc, test_probes_down_up);
	tcase_add_loop_test(tc, test_busy_until, 0, 2);
	tcase_add_test(tc, test_carry_over);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_concurrent, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(balancer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
