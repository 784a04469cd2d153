/*
 * check_metrics.c — Prometheus metrics (src/metrics.c).
 *
 * What a user sees of the metrics is a scrape: the text GET /metrics
 * returns, read by Prometheus and by dashboards written for LLMProxy.  So
 * almost every test counts something through the API the request path uses,
 * renders, and reads the sample back from the text, by its exact name and
 * labels, as a dashboard query would.  Every rendering is also checked to be
 * well formed line by line (a name, optional labels with only the escapes
 * the format allows, one number), and the whole of it goes through
 * `promtool check metrics`, Prometheus's own parser and linter.
 *
 * Configs are built here by hand: config.c would refuse the backend names
 * the escaping tests need, and the rendering must be safe for them anyway.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "balancer.h"
#include "io.h"
#include "llmproxy.h"
#include "log.h"
#include "metrics.h"
#include "webhook.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAXB 70

#define CHAT    "/v1/chat/completions"

/* ---- fixture: a config built by hand, a render buffer ------------------------ */

static struct backend_conf bconf[MAXB];
static struct config cfg;
static char *text;
static size_t tcap;
static double main_started;     /* wall clock when main() began */

static void
use_config(const char *const *names, size_t n, int compat)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(bconf, 0, sizeof(bconf));
	for (size_t i = 0; i < n; i++) {
		snprintf(bconf[i].name, sizeof(bconf[i].name), "%s", names[i]);
		snprintf(bconf[i].host, sizeof(bconf[i].host), "127.0.0.1");
		snprintf(bconf[i].port, sizeof(bconf[i].port), "%zu", 9000 + i);
		bconf[i].weight = 1;
	}
	cfg.backends = bconf;
	cfg.nbackends = n;
	cfg.metrics_compat = compat;
	cfg.load_balance = LB_ROUND_ROBIN;
	ck_assert_int_eq(metrics_init(&cfg), 0);
}

static const char *const ab[] = { "a", "b" };

static void
teardown(void)
{
	free(text);
	text = NULL;
	tcap = 0;
}

/* A request as the request path reports it, with nothing metered. */
static struct metrics_request
req(enum metrics_path p, int stream, int backend, int status)
{
	struct metrics_request r = {
		.path = p, .stream = stream, .backend = backend,
		.status = status, .duration_us = 1000, .ttft_us = -1,
		.prompt_tokens = -1, .completion_tokens = -1,
	};
	return r;
}

static void
done(struct metrics_request r)
{
	metrics_request_done(&r);
}

/* ---- reading a scrape ------------------------------------------------------------ */

static int
name_char(int c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':' || (!first && c >= '0' && c <= '9');
}

/* Whether one sample line is well formed: name{l="v",...} value, where a
 * label value holds no raw newline and escapes only \\, \" and \n. */
static int
sample_ok(const char *s, const char *end)
{
	if (s == end || !name_char(*s, 1))
		return 0;
	while (s < end && name_char(*s, 0))
		s++;
	if (s < end && *s == '{') {
		s++;
		while (s < end && *s != '}') {
			if (!name_char(*s, 1))
				return 0;
			while (s < end && name_char(*s, 0))
				s++;
			if (end - s < 2 || s[0] != '=' || s[1] != '"')
				return 0;
			for (s += 2; s < end && *s != '"'; s++)
				if (*s == '\\') {
					if (s + 1 == end ||
					    strchr("\\\"n", s[1]) == NULL)
						return 0;
					s++;
				}
			if (s == end)
				return 0;
			s++;
			if (s < end && *s == ',')
				s++;
		}
		if (s == end)
			return 0;
		s++;
	}
	if (s == end || *s != ' ')
		return 0;
	s++;
	if (end - s == 4 && memcmp(s, "+Inf", 4) == 0)
		return 1;
	char num[64], *e;
	if (end - s <= 0 || end - s >= (long)sizeof(num))
		return 0;
	memcpy(num, s, (size_t)(end - s));
	num[end - s] = '\0';
	strtod(num, &e);
	return *e == '\0';
}

/* 0 when every line of t is a comment or a well-formed sample and t ends
 * with a newline; else the number of the first bad line. */
static int
well_formed(const char *t)
{
	int line = 1;

	if (*t == '\0' || t[strlen(t) - 1] != '\n')
		return -1;
	for (const char *s = t; *s != '\0'; line++) {
		const char *nl = strchr(s, '\n');
		if (strncmp(s, "# HELP ", 7) != 0 &&
		    strncmp(s, "# TYPE ", 7) != 0 && !sample_ok(s, nl))
			return line;
		s = nl + 1;
	}
	return 0;
}

/* Renders into `text`, checking the length and the form. */
static const char *
scrape(struct backend_table *t)
{
	size_t n = metrics_render(&text, &tcap, t);

	ck_assert_msg(n > 0, "metrics_render failed");
	ck_assert_uint_eq(strlen(text), n);
	int bad = well_formed(text);
	if (bad != 0) {
		const char *l = text;
		for (int i = 1; i < bad && strchr(l, '\n') != NULL; i++)
			l = strchr(l, '\n') + 1;
		ck_abort_msg("line %d of the render is malformed: %.200s", bad,
		    l);
	}
	return text;
}

/* The value of the sample `series` (name and labels exactly as rendered),
 * or NAN when it is absent.  A series rendered twice fails the test. */
static double
value(const char *t, const char *series)
{
	size_t n = strlen(series);
	double v = NAN;
	int seen = 0;

	for (const char *s = t; *s != '\0'; s = strchr(s, '\n') + 1)
		if (strncmp(s, series, n) == 0 && s[n] == ' ') {
			v = strtod(s + n + 1, NULL);
			seen++;
		}
	ck_assert_msg(seen <= 1, "%s rendered %d times", series, seen);
	return v;
}

static double
valuef(const char *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static double
valuef(const char *t, const char *fmt, ...)
{
	char series[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(series, sizeof(series), fmt, ap);
	va_end(ap);
	return value(t, series);
}

#define ck_value(t, want, ...) do {                                         \
	double v_ = valuef((t), __VA_ARGS__);                                \
	char s_[1024];                                                       \
	snprintf(s_, sizeof(s_), __VA_ARGS__);                               \
	ck_assert_msg(v_ == (double)(want), "%s: %g, want %g", s_, v_,       \
	    (double)(want));                                                 \
} while (0)

/* Samples of family `name`: lines starting with name{ or "name ". */
static int
samples(const char *t, const char *name)
{
	size_t n = strlen(name);
	int k = 0;

	for (const char *s = t; *s != '\0'; s = strchr(s, '\n') + 1)
		if (strncmp(s, name, n) == 0 && (s[n] == '{' || s[n] == ' '))
			k++;
	return k;
}

/* Whether the exact line (without its newline) is in t. */
static int
has_line(const char *t, const char *line)
{
	size_t n = strlen(line);

	for (const char *s = t; *s != '\0'; s = strchr(s, '\n') + 1)
		if (strncmp(s, line, n) == 0 && s[n] == '\n')
			return 1;
	return 0;
}

/* ---- histogram_observe: "le" is less or equal --------------------------------- */

static const double duration_b[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
static const double ttft_b[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
static const double itl_b[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5 };
/* Single microseconds and bounds whose doubles are inexact. */
static const double odd_b[] = { 0.000001, 0.000002, 0.000003, 0.1, 0.123456,
    0.3, 0.7, 1000 };

static const struct bounds_case {
	const char *name;
	const double *b;
	size_t n;
} bounds_cases[] = {
	{ "duration", duration_b, sizeof(duration_b) / sizeof(double) },
	{ "ttft", ttft_b, sizeof(ttft_b) / sizeof(double) },
	{ "inter-token", itl_b, sizeof(itl_b) / sizeof(double) },
	{ "odd", odd_b, sizeof(odd_b) / sizeof(double) },
};

struct hist {
	struct histogram h;
	_Atomic uint64_t counts[32];
};

static void
hist_init(struct hist *x, const double *b, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->h.bounds = b;
	x->h.nbounds = n;
	x->h.counts = x->counts;
}

/* The one bucket holding an observation, or -1 unless exactly one does. */
static int
only_bucket(const struct hist *x)
{
	int at = -1;

	for (size_t i = 0; i <= x->h.nbounds; i++) {
		if (x->counts[i] == 0)
			continue;
		if (at >= 0 || x->counts[i] != 1)
			return -1;
		at = (int)i;
	}
	return at;
}

static int
bucket_of(const double *b, size_t n, int64_t us)
{
	struct hist x;

	hist_init(&x, b, n);
	histogram_observe(&x.h, us);
	return only_bucket(&x);
}

START_TEST(test_observe_boundaries)
{
	const struct bounds_case *c = &bounds_cases[_i];

	for (size_t i = 0; i < c->n; i++) {
		int64_t us = llround(c->b[i] * 1e6);
		int64_t below = i > 0 ? llround(c->b[i - 1] * 1e6) : -1;

		ck_assert_msg(bucket_of(c->b, c->n, us) == (int)i,
		    "%s: %lld us equal to bound %g is not in its bucket %zu "
		    "(got %d)", c->name, (long long)us, c->b[i], i,
		    bucket_of(c->b, c->n, us));
		ck_assert_msg(bucket_of(c->b, c->n, us + 1) == (int)i + 1,
		    "%s: %lld us, just above %g, not in bucket %zu", c->name,
		    (long long)us + 1, c->b[i], i + 1);
		int want = us - 1 > below ? (int)i : (int)i - 1;
		ck_assert_msg(bucket_of(c->b, c->n, us - 1) == want,
		    "%s: %lld us, just below %g, not in bucket %d", c->name,
		    (long long)us - 1, c->b[i], want);
	}
	ck_assert_int_eq(bucket_of(c->b, c->n, 0), 0);
	ck_assert_int_eq(bucket_of(c->b, c->n, INT64_MAX), (int)c->n);
}
END_TEST

START_TEST(test_observe_sum_count)
{
	struct hist x;
	static const int64_t obs[] = { 0, 1, 4999, 5000, 5001, 300000000,
	    400000000, -7 };
	uint64_t sum = 0;

	hist_init(&x, duration_b, N(duration_b));
	for (int i = 0; i < N(obs); i++) {
		histogram_observe(&x.h, obs[i]);
		sum += obs[i] > 0 ? (uint64_t)obs[i] : 0;
	}
	/* A negative observation (a clock gone wrong) counts as 0. */
	ck_assert_uint_eq(x.h.count, N(obs));
	ck_assert_uint_eq(x.h.sum_us, sum);
	ck_assert_uint_eq(x.counts[0], 5);                 /* 0,1,4999,5000,-7 */
	ck_assert_uint_eq(x.counts[1], 1);                 /* 5001 */
	ck_assert_uint_eq(x.counts[N(duration_b) - 1], 1); /* 300 s exactly */
	ck_assert_uint_eq(x.counts[N(duration_b)], 1);     /* 400 s: +Inf */
}
END_TEST

/* ---- histogram_render: cumulative, exact text ------------------------------------ */

static const double small_b[] = { 0.005, 0.5, 2.5 };

static const struct render_case {
	const char *labels;
	int ms;
	const char *want;
} render_cases[] = {
	{ "k=\"v\"", 0,
	  "x_bucket{k=\"v\",le=\"0.005\"} 1\n"
	  "x_bucket{k=\"v\",le=\"0.5\"} 3\n"
	  "x_bucket{k=\"v\",le=\"2.5\"} 3\n"
	  "x_bucket{k=\"v\",le=\"+Inf\"} 4\n"
	  "x_sum{k=\"v\"} 3.510001\n"
	  "x_count{k=\"v\"} 4\n" },
	{ "", 0,
	  "x_bucket{le=\"0.005\"} 1\n"
	  "x_bucket{le=\"0.5\"} 3\n"
	  "x_bucket{le=\"2.5\"} 3\n"
	  "x_bucket{le=\"+Inf\"} 4\n"
	  "x_sum 3.510001\n"
	  "x_count 4\n" },
	{ "k=\"v\",j=\"w\"", 1,
	  "x_bucket{k=\"v\",j=\"w\",le=\"5\"} 1\n"
	  "x_bucket{k=\"v\",j=\"w\",le=\"500\"} 3\n"
	  "x_bucket{k=\"v\",j=\"w\",le=\"2500\"} 3\n"
	  "x_bucket{k=\"v\",j=\"w\",le=\"+Inf\"} 4\n"
	  "x_sum{k=\"v\",j=\"w\"} 3510.001\n"
	  "x_count{k=\"v\",j=\"w\"} 4\n" },
};

START_TEST(test_histogram_render)
{
	const struct render_case *c = &render_cases[_i];
	struct hist x;
	char *buf = NULL;
	size_t cap = 0, len = 0;

	hist_init(&x, small_b, N(small_b));
	histogram_observe(&x.h, 5000);          /* le 0.005: equal */
	histogram_observe(&x.h, 5001);
	histogram_observe(&x.h, 500000);        /* le 0.5: equal */
	histogram_observe(&x.h, 3000000);       /* +Inf */

	/* Appended after what the buffer already holds, twice. */
	for (int round = 1; round <= 2; round++) {
		ck_assert_int_eq(histogram_render(&buf, &cap, &len, "x",
		    c->labels, &x.h, c->ms), 0);
		ck_assert_uint_eq(len, round * strlen(c->want));
		ck_assert_msg(strncmp(buf + (round - 1) * strlen(c->want),
		    c->want, strlen(c->want)) == 0, "got:\n%.*s\nwant:\n%s",
		    (int)len, buf, c->want);
	}
	free(buf);
}
END_TEST

/* n observations at once count as n single ones: buckets, sum and count. */
START_TEST(test_histogram_observe_n)
{
	struct hist one, many;
	static const int64_t obs[] = { 0, 5000, 5001, 500000, 3000000 };

	hist_init(&one, small_b, N(small_b));
	hist_init(&many, small_b, N(small_b));
	for (size_t i = 0; i < N(obs); i++) {
		for (int k = 0; k < 7; k++)
			histogram_observe(&one.h, obs[i]);
		histogram_observe_n(&many.h, obs[i], 7);
	}
	histogram_observe_n(&many.h, 5000, 0);  /* nothing */
	for (size_t b = 0; b <= N(small_b); b++)
		ck_assert_uint_eq(atomic_load(&one.h.counts[b]),
		    atomic_load(&many.h.counts[b]));
	ck_assert_uint_eq(atomic_load(&one.h.sum_us), atomic_load(&many.h.sum_us));
	ck_assert_uint_eq(atomic_load(&one.h.count), atomic_load(&many.h.count));
	ck_assert_uint_eq(atomic_load(&many.h.count), 7 * N(obs));
}
END_TEST

START_TEST(test_histogram_render_empty)
{
	struct hist x;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	const char *want =
	    "e_bucket{le=\"0.005\"} 0\n"
	    "e_bucket{le=\"0.5\"} 0\n"
	    "e_bucket{le=\"2.5\"} 0\n"
	    "e_bucket{le=\"+Inf\"} 0\n"
	    "e_sum 0.000000\n"
	    "e_count 0\n";

	hist_init(&x, small_b, N(small_b));
	ck_assert_int_eq(histogram_render(&buf, &cap, &len, "e", "", &x.h, 0), 0);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_msg(memcmp(buf, want, len) == 0, "got:\n%.*s", (int)len, buf);
	free(buf);
}
END_TEST

/* ---- the families' buckets, as scraped ------------------------------------------- */

static const char *const duration_le[] = { "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300" };
static const char *const latency_le[] = { "5", "10", "25", "50", "100", "250",
    "500", "1000", "2500", "5000", "10000", "30000", "60000", "120000",
    "300000" };
static const char *const ttft_le[] = { "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60" };
static const char *const itl_le[] = { "0.0005", "0.001", "0.0025", "0.005",
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5" };

enum obs_kind { OBS_DURATION, OBS_TTFT, OBS_ITL };

static const struct family_case {
	const char *name;
	const char *labels;             /* of the observed series */
	const char *const *le;
	size_t nle;
	const double *b;                /* the bounds, to observe them */
	enum obs_kind kind;
	int compat;
} family_cases[] = {
	{ "llmproxy_request_duration_seconds",
	  "path=\"" CHAT "\",stream=\"true\",backend=\"b\"",
	  duration_le, 15, duration_b, OBS_DURATION, 0 },
	{ "llmproxy_latency_ms",
	  "path=\"" CHAT "\",stream=\"true\",backend=\"b\"",
	  latency_le, 15, duration_b, OBS_DURATION, 1 },
	{ "llmproxy_ttft_seconds", "backend=\"b\"",
	  ttft_le, 15, ttft_b, OBS_TTFT, 0 },
	{ "llmproxy_inter_token_seconds", "backend=\"b\"",
	  itl_le, 12, itl_b, OBS_ITL, 0 },
};

/* Each family's buckets are the ones documented, in order, and an
 * observation equal to a bound is counted in that bound's bucket: one
 * observation at each bound gives cumulative counts 1, 2, 3, ... */
START_TEST(test_family_buckets)
{
	const struct family_case *c = &family_cases[_i];
	uint64_t sum = 0;

	use_config(ab, 2, c->compat);
	for (size_t i = 0; i < c->nle; i++) {
		int64_t us = llround(c->b[i] * 1e6);
		struct metrics_request r = req(MP_CHAT_COMPLETIONS, 1, 1, 200);

		sum += (uint64_t)us;
		switch (c->kind) {
		case OBS_DURATION:
			r.duration_us = us;
			done(r);
			break;
		case OBS_TTFT:
			r.ttft_us = us;
			done(r);
			break;
		case OBS_ITL:
			metrics_inter_token(1, us, 1);
			break;
		}
	}
	const char *t = scrape(NULL);

	/* The bucket lines of the series, in order, are exactly these. */
	char prefix[512];
	snprintf(prefix, sizeof(prefix), "%s_bucket{%s,le=\"", c->name,
	    c->labels);
	size_t k = 0;
	for (const char *s = t; *s != '\0'; s = strchr(s, '\n') + 1) {
		if (strncmp(s, prefix, strlen(prefix)) != 0)
			continue;
		const char *le = s + strlen(prefix);
		const char *q = strchr(le, '"');
		if (k == c->nle) {
			ck_assert_msg(strncmp(le, "+Inf\"", 5) == 0,
			    "%s: bucket after the last bound is %.*s", c->name,
			    (int)(q - le), le);
		} else {
			ck_assert_msg(k < c->nle &&
			    (size_t)(q - le) == strlen(c->le[k]) &&
			    strncmp(le, c->le[k], strlen(c->le[k])) == 0,
			    "%s: bucket %zu is le=\"%.*s\", want \"%s\"",
			    c->name, k, (int)(q - le), le,
			    k < c->nle ? c->le[k] : "(none)");
		}
		k++;
	}
	ck_assert_msg(k == c->nle + 1, "%s: %zu buckets, want %zu", c->name,
	    k, c->nle + 1);
	for (size_t i = 0; i < c->nle; i++)
		ck_value(t, i + 1, "%s_bucket{%s,le=\"%s\"}", c->name,
		    c->labels, c->le[i]);
	ck_value(t, c->nle, "%s_bucket{%s,le=\"+Inf\"}", c->name, c->labels);
	ck_value(t, c->nle, "%s_count{%s}", c->name, c->labels);
	double want_sum = c->compat ? (double)sum / 1e3 : (double)sum / 1e6;
	double got = valuef(t, "%s_sum{%s}", c->name, c->labels);
	ck_assert_msg(fabs(got - want_sum) < 1e-9 * want_sum + 1e-9,
	    "%s_sum %.9f, want %.9f", c->name, got, want_sum);
}
END_TEST

/* ---- the path label -------------------------------------------------------------- */

static const struct path_case {
	const char *path;
	enum metrics_path want;
} path_cases[] = {
	{ "/v1/chat/completions", MP_CHAT_COMPLETIONS },
	{ "/v1/completions", MP_COMPLETIONS },
	{ "/v1/embeddings", MP_EMBEDDINGS },
	{ "/v1/models", MP_MODELS },
	{ "/v1/chat/completions?x=1", MP_CHAT_COMPLETIONS },
	{ "/v1/models?", MP_MODELS },
	{ "/v1/chat/completions/", MP_OTHER },
	{ "/v1/chat/completionsx", MP_OTHER },
	{ "/v1/chat", MP_OTHER },
	{ "/v1/models/llama-3", MP_OTHER },
	{ "/V1/models", MP_OTHER },
	{ "/v1/responses", MP_OTHER },
	{ "/health", MP_OTHER },
	{ "/metrics", MP_OTHER },
	{ "/", MP_OTHER },
	{ "", MP_OTHER },
};

START_TEST(test_path_of)
{
	const struct path_case *c = &path_cases[_i];

	ck_assert_msg(metrics_path_of(c->path, strlen(c->path)) == c->want,
	    "%s: %d, want %d", c->path,
	    (int)metrics_path_of(c->path, strlen(c->path)), (int)c->want);
	/* Only len bytes count: the path is not NUL-terminated in a head. */
	char buf[64];
	snprintf(buf, sizeof(buf), "%sGARBAGE", c->path);
	ck_assert(metrics_path_of(buf, strlen(c->path)) == c->want);
}
END_TEST

/* ---- llmproxy_requests_total ------------------------------------------------------ */

static const struct status_case {
	int status;
	const char *label;
} status_cases[] = {
	{ 0, "0" }, { 200, "200" }, { 201, "201" }, { 204, "204" },
	{ 400, "400" }, { 401, "401" }, { 403, "403" }, { 404, "404" },
	{ 405, "405" }, { 408, "408" }, { 413, "413" }, { 414, "414" },
	{ 422, "422" }, { 429, "429" }, { 431, "431" },
	{ 500, "500" }, { 501, "501" }, { 502, "502" }, { 503, "503" },
	{ 504, "504" }, { 505, "505" },
	{ 202, "2xx" }, { 206, "2xx" }, { 299, "2xx" },
	{ 301, "3xx" }, { 304, "3xx" }, { 399, "3xx" },
	{ 402, "4xx" }, { 418, "4xx" }, { 451, "4xx" }, { 499, "4xx" },
	{ 506, "5xx" }, { 529, "5xx" }, { 599, "5xx" },
	{ 100, "other" }, { 101, "other" }, { 199, "other" }, { 600, "other" },
	{ 999, "other" }, { -1, "other" }, { INT_MAX, "other" },
	{ INT_MIN, "other" },
};

START_TEST(test_status_label)
{
	const struct status_case *c = &status_cases[_i];

	use_config(ab, 2, 0);
	done(req(MP_CHAT_COMPLETIONS, 0, 0, c->status));
	done(req(MP_CHAT_COMPLETIONS, 0, 0, c->status));
	const char *t = scrape(NULL);
	ck_value(t, 2, "llmproxy_requests_total{path=\"" CHAT "\","
	    "stream=\"false\",backend=\"a\",status=\"%s\"}", c->label);
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"), 1);
}
END_TEST

/* Every path x stream x backend combination is its own series; a backend
 * index that is -1 or out of range is "none". */
START_TEST(test_request_labels)
{
	static const int backends[] = { -1, 0, 1 };
	static const char *const blabel[] = { "none", "a", "b" };
	static const char *const plabel[MP_COUNT] = { CHAT, "/v1/completions",
	    "/v1/embeddings", "/v1/models", "other" };
	int k = 0;

	use_config(ab, 2, 0);
	for (int p = 0; p < MP_COUNT; p++)
		for (int s = 0; s < 2; s++)
			for (int b = 0; b < 3; b++) {
				k++;    /* k requests: a mix-up shows */
				for (int i = 0; i < k; i++) {
					struct metrics_request r = req(
					    (enum metrics_path)p, s,
					    backends[b], 200);
					r.duration_us = 1000 * k;
					done(r);
				}
			}
	/* Out of range: counted as none, in the first none series. */
	done(req(MP_CHAT_COMPLETIONS, 0, 2, 200));
	done(req(MP_CHAT_COMPLETIONS, 0, 99, 200));
	done(req(MP_CHAT_COMPLETIONS, 0, -5, 200));
	/* A path value outside the enum: "other". */
	done(req((enum metrics_path)77, 0, 0, 200));

	const char *t = scrape(NULL);
	k = 0;
	for (int p = 0; p < MP_COUNT; p++)
		for (int s = 0; s < 2; s++)
			for (int b = 0; b < 3; b++) {
				k++;
				int want = k + (p == 0 && s == 0 && b == 0 ? 3 :
				    0) + (p == MP_OTHER && s == 0 && b == 1);
				ck_value(t, want, "llmproxy_requests_total{"
				    "path=\"%s\",stream=\"%s\",backend=\"%s\","
				    "status=\"200\"}", plabel[p],
				    s ? "true" : "false", blabel[b]);
				ck_value(t, want,
				    "llmproxy_request_duration_seconds_count{"
				    "path=\"%s\",stream=\"%s\",backend=\"%s\"}",
				    plabel[p], s ? "true" : "false", blabel[b]);
			}
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"),
	    MP_COUNT * 2 * 3);
	/* One duration series per combination: 15 bounds + Inf + sum + count. */
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_bucket"),
	    MP_COUNT * 2 * 3 * 16);
}
END_TEST

/* Nothing counted, no series: HELP and TYPE only. */
START_TEST(test_zero_series_omitted)
{
	use_config(ab, 2, 1);
	const char *t = scrape(NULL);

	ck_assert(has_line(t, "# TYPE llmproxy_requests_total counter"));
	ck_assert(has_line(t,
	    "# TYPE llmproxy_request_duration_seconds histogram"));
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"), 0);
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_bucket"), 0);
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_count"), 0);
	ck_assert_int_eq(samples(t, "llmproxy_latency_ms_count"), 0);

	done(req(MP_EMBEDDINGS, 0, 1, 200));
	t = scrape(NULL);
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"), 1);
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_bucket"), 16);
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_sum"), 1);
	ck_assert_int_eq(samples(t, "llmproxy_request_duration_seconds_count"), 1);
	ck_assert_int_eq(samples(t, "llmproxy_latency_ms_count"), 1);

	/* Per-backend families are there for every backend from the start,
	 * at 0, so rate() sees their first increase. */
	ck_value(t, 0, "llmproxy_ttft_seconds_count{backend=\"a\"}");
	ck_value(t, 0, "llmproxy_inter_token_seconds_count{backend=\"b\"}");
	ck_value(t, 0, "llmproxy_retries_total{backend=\"a\"}");
	ck_value(t, 0, "llmproxy_usage_tokens_total{type=\"completion\","
	    "backend=\"b\"}");
}
END_TEST

/* ---- label escaping ------------------------------------------------------------------ */

static const char *const odd_names[] = {
	"q\"uote", "back\\slash", "new\nline", "bad\377utf8", "caf\xc3\xa9",
	"\"\\\n",
};
static const char *const odd_labels[] = {
	"q\\\"uote", "back\\\\slash", "new\\nline", "bad?utf8", "caf\xc3\xa9",
	"\\\"\\\\\\n",
};

START_TEST(test_label_escaping)
{
	struct backend_table tbl;

	use_config(odd_names, N(odd_names), 0);
	ck_assert_int_eq(bal_init(&tbl, &cfg), 0);
	for (int i = 0; i < N(odd_names); i++) {
		for (int k = 0; k <= i; k++)
			metrics_retry(i);
		done(req(MP_CHAT_COMPLETIONS, 1, i, 200));
	}
	const char *t = scrape(&tbl);
	for (int i = 0; i < N(odd_names); i++) {
		ck_value(t, i + 1, "llmproxy_retries_total{backend=\"%s\"}",
		    odd_labels[i]);
		ck_value(t, 1, "llmproxy_backend_up{backend=\"%s\"}",
		    odd_labels[i]);
		ck_value(t, 1, "llmproxy_requests_total{path=\"" CHAT "\","
		    "stream=\"true\",backend=\"%s\",status=\"200\"}",
		    odd_labels[i]);
		ck_value(t, 0, "llmproxy_ttft_seconds_bucket{backend=\"%s\","
		    "le=\"+Inf\"}", odd_labels[i]);
	}
	bal_free(&tbl);
}
END_TEST

/* ---- the other families ------------------------------------------------------------------ */

START_TEST(test_tokens)
{
	struct metrics_request r;

	use_config(ab, 2, 0);
	r = req(MP_CHAT_COMPLETIONS, 1, 0, 200);
	r.prompt_tokens = 10;
	r.completion_tokens = 20;
	done(r);
	done(r);
	r = req(MP_COMPLETIONS, 0, 1, 200);
	r.prompt_tokens = -1;           /* not metered */
	r.completion_tokens = 5;
	done(r);
	r = req(MP_COMPLETIONS, 0, 1, 200);
	r.prompt_tokens = 0;
	r.completion_tokens = -1;
	done(r);
	r = req(MP_COMPLETIONS, 0, -1, 200);
	r.prompt_tokens = 1000;         /* no backend: not a backend's */
	r.completion_tokens = 1000;
	done(r);

	const char *t = scrape(NULL);
	ck_value(t, 20, "llmproxy_usage_tokens_total{type=\"prompt\",backend=\"a\"}");
	ck_value(t, 40, "llmproxy_usage_tokens_total{type=\"completion\",backend=\"a\"}");
	ck_value(t, 0, "llmproxy_usage_tokens_total{type=\"prompt\",backend=\"b\"}");
	ck_value(t, 5, "llmproxy_usage_tokens_total{type=\"completion\",backend=\"b\"}");
	ck_assert_int_eq(samples(t, "llmproxy_usage_tokens_total"), 4);
	ck_assert_ptr_null(strstr(t, "backend=\"none\"} 1000"));
}
END_TEST

START_TEST(test_ttft)
{
	struct metrics_request r;

	use_config(ab, 2, 0);
	r = req(MP_CHAT_COMPLETIONS, 1, 0, 200);
	r.ttft_us = 1000;               /* 1 ms: the first bucket */
	done(r);
	r.ttft_us = 1001;
	done(r);
	r.ttft_us = -1;                 /* no first byte: not observed */
	done(r);
	r.backend = -1;
	r.ttft_us = 5;                  /* no backend: not observed */
	done(r);
	r.backend = 1;
	r.ttft_us = 0;
	done(r);

	const char *t = scrape(NULL);
	ck_value(t, 1, "llmproxy_ttft_seconds_bucket{backend=\"a\",le=\"0.001\"}");
	ck_value(t, 2, "llmproxy_ttft_seconds_bucket{backend=\"a\",le=\"0.0025\"}");
	ck_value(t, 2, "llmproxy_ttft_seconds_count{backend=\"a\"}");
	ck_value(t, 0.002001, "llmproxy_ttft_seconds_sum{backend=\"a\"}");
	ck_value(t, 1, "llmproxy_ttft_seconds_bucket{backend=\"b\",le=\"0.001\"}");
	ck_value(t, 1, "llmproxy_ttft_seconds_count{backend=\"b\"}");
	ck_assert_int_eq(samples(t, "llmproxy_ttft_seconds_count"), 2);
}
END_TEST

START_TEST(test_inter_token)
{
	use_config(ab, 2, 0);
	metrics_inter_token(0, 500, 1);            /* 0.5 ms: the first bucket */
	metrics_inter_token(0, 501, 1);
	metrics_inter_token(1, 2500000, 1);        /* 2.5 s: the last bound */
	metrics_inter_token(1, 2500001, 1);        /* +Inf */
	metrics_inter_token(2, 1, 1);              /* out of range: ignored */
	metrics_inter_token(-1, 1, 1);

	const char *t = scrape(NULL);
	ck_value(t, 1, "llmproxy_inter_token_seconds_bucket{backend=\"a\",le=\"0.0005\"}");
	ck_value(t, 2, "llmproxy_inter_token_seconds_bucket{backend=\"a\",le=\"0.001\"}");
	ck_value(t, 0, "llmproxy_inter_token_seconds_bucket{backend=\"b\",le=\"1\"}");
	ck_value(t, 1, "llmproxy_inter_token_seconds_bucket{backend=\"b\",le=\"2.5\"}");
	ck_value(t, 2, "llmproxy_inter_token_seconds_bucket{backend=\"b\",le=\"+Inf\"}");
	ck_value(t, 5.000001, "llmproxy_inter_token_seconds_sum{backend=\"b\"}");
	ck_value(t, 2, "llmproxy_inter_token_seconds_count{backend=\"a\"}");
	ck_value(t, 2, "llmproxy_inter_token_seconds_count{backend=\"b\"}");
	ck_assert_int_eq(samples(t, "llmproxy_inter_token_seconds_count"), 2);
}
END_TEST

START_TEST(test_retries_in_flight_aborts)
{
	struct metrics_request r;

	use_config(ab, 2, 0);
	metrics_retry(0);
	metrics_retry(0);
	metrics_retry(1);
	metrics_retry(2);
	metrics_retry(-1);
	for (int i = 0; i < 5; i++)
		metrics_in_flight(1);
	metrics_in_flight(-1);
	r = req(MP_CHAT_COMPLETIONS, 1, 0, 200);
	r.client_abort = 1;
	done(r);
	r.backend = -1;
	r.status = 0;
	done(r);
	r.client_abort = 0;
	done(r);

	const char *t = scrape(NULL);
	ck_value(t, 2, "llmproxy_retries_total{backend=\"a\"}");
	ck_value(t, 1, "llmproxy_retries_total{backend=\"b\"}");
	ck_assert_int_eq(samples(t, "llmproxy_retries_total"), 2);
	ck_value(t, 4, "llmproxy_in_flight_requests");
	ck_value(t, 2, "llmproxy_client_aborts_total");
	ck_value(t, 2, "llmproxy_requests_total{path=\"" CHAT "\","
	    "stream=\"true\",backend=\"none\",status=\"0\"}");
}
END_TEST

START_TEST(test_backend_up)
{
	static const char *const abc[] = { "a", "b", "c", "d" };
	struct backend_table tbl;

	use_config(abc, 4, 0);
	ck_assert_int_eq(bal_init(&tbl, &cfg), 0);
	atomic_store(&tbl.backends[1].healthy, 0);
	atomic_store(&tbl.backends[2].busy_until_ms, io_now_ms() + 60000);
	atomic_store(&tbl.backends[3].out_until_ms, io_now_ms() + 60000);

	const char *t = scrape(&tbl);
	ck_value(t, 1, "llmproxy_backend_up{backend=\"a\"}");
	ck_value(t, 0, "llmproxy_backend_up{backend=\"b\"}");
	ck_value(t, 1, "llmproxy_backend_up{backend=\"c\"}");   /* busy, up */
	ck_value(t, 0, "llmproxy_backend_up{backend=\"d\"}");
	ck_assert_int_eq(samples(t, "llmproxy_backend_up"), 4);

	atomic_store(&tbl.backends[1].healthy, 1);
	atomic_store(&tbl.backends[2].busy_until_ms, io_now_ms() - 1);
	t = scrape(&tbl);
	ck_value(t, 1, "llmproxy_backend_up{backend=\"b\"}");
	ck_value(t, 1, "llmproxy_backend_up{backend=\"c\"}");
	ck_value(t, 0, "llmproxy_backend_up{backend=\"d\"}");

	/* No table: no family, and still a valid exposition. */
	t = scrape(NULL);
	ck_assert_int_eq(samples(t, "llmproxy_backend_up"), 0);
	bal_free(&tbl);
}
END_TEST

START_TEST(test_build_info)
{
	use_config(ab, 2, 0);
	const char *t = scrape(NULL);

	ck_assert(has_line(t, "# TYPE llmproxy_build_info gauge"));
	ck_value(t, 1, "llmproxy_build_info{version=\"%s\"}", LLMPROXY_VERSION);
	ck_assert_int_eq(samples(t, "llmproxy_build_info"), 1);
}
END_TEST

/* LLMProxy's llmproxy_latency_ms only with metrics_compat, in ms. */
START_TEST(test_compat)
{
	int compat = _i;
	struct metrics_request r = req(MP_COMPLETIONS, 0, 0, 200);

	use_config(ab, 2, compat);
	r.duration_us = 1500;
	done(r);
	const char *t = scrape(NULL);
	if (!compat) {
		ck_assert_ptr_null(strstr(t, "llmproxy_latency_ms"));
	} else {
		ck_assert(has_line(t, "# TYPE llmproxy_latency_ms histogram"));
		ck_value(t, 1, "llmproxy_latency_ms_bucket{path=\"/v1/completions\","
		    "stream=\"false\",backend=\"a\",le=\"5\"}");
		ck_value(t, 1.5, "llmproxy_latency_ms_sum{path=\"/v1/completions\","
		    "stream=\"false\",backend=\"a\"}");
		ck_value(t, 1, "llmproxy_latency_ms_count{path=\"/v1/completions\","
		    "stream=\"false\",backend=\"a\"}");
	}
	/* The seconds histogram is there either way. */
	ck_value(t, 0.0015, "llmproxy_request_duration_seconds_sum{path="
	    "\"/v1/completions\",stream=\"false\",backend=\"a\"}");
}
END_TEST

/* ---- process_* ------------------------------------------------------------------------- */

static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double
user_time(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return tv_sec(ru.ru_utime);
}

static double
sys_time(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return tv_sec(ru.ru_stime);
}

START_TEST(test_process)
{
	struct rlimit rl;
	int fds[3];

	use_config(ab, 2, 0);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	const char *t = scrape(NULL);
	static const char *const fams[] = { "process_resident_memory_bytes",
	    "process_cpu_seconds_total", "process_open_fds",
	    "process_start_time_seconds", "process_max_fds",
	    "process_virtual_memory_bytes" };
	for (int i = 0; i < N(fams); i++)
		ck_assert_msg(samples(t, fams[i]) == 1, "%s missing", fams[i]);
	ck_assert(has_line(t, "# TYPE process_cpu_seconds_total counter"));
	ck_assert(has_line(t, "# TYPE process_open_fds gauge"));

	double rss = value(t, "process_resident_memory_bytes");
	double vsz = value(t, "process_virtual_memory_bytes");
	double cpu = value(t, "process_cpu_seconds_total");
	double ofd = value(t, "process_open_fds");
	double start = value(t, "process_start_time_seconds");
	ck_assert_msg(rss > 1024 * 1024 && rss < 1e12, "rss %g", rss);
	ck_assert_msg(vsz >= rss, "virtual %g < resident %g", vsz, rss);
	ck_assert_msg(cpu >= 0 && cpu < 3600, "cpu %g", cpu);
	/* Exactly the descriptors this process has, as fcntl() finds them
	 * (the one that reads /proc/self/fd is not counted). */
	int have = 0;
	for (int fd = 0; fd < 65536 && (rlim_t)fd < rl.rlim_cur; fd++)
		have += fcntl(fd, F_GETFD) != -1;
	ck_assert_msg(ofd == have, "open fds %g, fcntl finds %d", ofd, have);
	/* This process (the test's fork, or main without one) started after
	 * main() did, give or take the second /proc/stat's btime has. */
	ck_assert_msg(start >= main_started - 2 && start <= now_real() + 1,
	    "start %.2f, main started %.2f, now %.2f", start, main_started,
	    now_real());
	ck_value(t, rl.rlim_cur, "process_max_fds");

	/* Three more descriptors, exactly three more. */
	ck_assert_int_eq(pipe(fds), 0);
	fds[2] = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(fds[2], 0);
	t = scrape(NULL);
	ck_value(t, ofd + 3, "process_open_fds");
	for (int i = 0; i < 3; i++)
		close(fds[i]);

	/* 64 MiB touched: resident grows by about that much. */
	size_t big = 64u << 20;
	char *p = malloc(big);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < big; i += 4096)
		p[i] = (char)i;
	t = scrape(NULL);
	double rss2 = value(t, "process_resident_memory_bytes");
	ck_assert_msg(rss2 - rss > 48.0 * (1 << 20) &&
	    rss2 - rss < 512.0 * (1 << 20),
	    "resident %g -> %g after touching 64 MiB", rss, rss2);
	free(p);

	/* Half a second of user time and a third of a second of system
	 * time show, and the total is what getrusage() says. */
	double c0 = cpu_now();
	volatile uint64_t x = 1;
	while (cpu_now() - c0 < 0.5)
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005u + 1;
	int devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	double s0 = sys_time(), w0 = now_real();
	while (sys_time() - s0 < 0.33 && now_real() - w0 < 10)
		for (int i = 0; i < 1000; i++)
			if (write(devnull, "x", 1) != 1)
				ck_abort_msg("write /dev/null: %s", strerror(errno));
	close(devnull);
	t = scrape(NULL);
	double cpu2 = value(t, "process_cpu_seconds_total");
	double ru = user_time() + sys_time();
	ck_assert_msg(cpu2 - cpu >= 0.75 && fabs(cpu2 - ru) < 0.1,
	    "cpu %g -> %g after burning 0.5 s user, 0.33 s system; "
	    "getrusage says %g", cpu, cpu2, ru);
}
END_TEST

/* ---- webhook stats ------------------------------------------------------------------------ */

static char dir[512];
static int lfd = -1;
static _Atomic int server_stop;
static pthread_t server_tid;

static void
tmpdir_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_metrics.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir,
	    strerror(errno));
}

static void
tmpdir_teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[1024];

	teardown();
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* A webhook that acknowledges everything: reads each request whole
 * (head, Content-Length body), answers 200 and closes. */
static void *
server_main(void *arg)
{
	(void)arg;
	while (!server_stop) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		char buf[8192];
		size_t got = 0;
		long need = -1;
		while (got < sizeof(buf) - 1) {
			ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			char *e = strstr(buf, "\r\n\r\n");
			if (e == NULL)
				continue;
			if (need < 0) {
				char *cl = strstr(buf, "Content-Length: ");
				need = (e + 4 - buf) +
				    (cl != NULL ? atol(cl + 16) : 0);
			}
			if ((long)got >= need)
				break;
		}
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n";
		if (write(c, ok, sizeof(ok) - 1) < 0)
			perror("write");
		close(c);
	}
	return NULL;
}

static int
listen_any(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	return fd;
}

static int
port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	return ntohs(sa.sin_port);
}

static uint64_t
wh(size_t off)
{
	struct webhook_stats ws;
	uint64_t v;

	webhook_get_stats(&ws);
	memcpy(&v, (const char *)&ws + off, sizeof(v));
	return v;
}

#define WH(field) wh(offsetof(struct webhook_stats, field))

/*
 * Three reporters: "held" is https to a closed port, so it never takes a
 * record and keeps every one in the spool (a stable queue depth);
 * "good" acknowledges (success); "down" is a closed port (failures).  The
 * spool has room for three records, so two more are dropped.
 */
START_TEST(test_webhook)
{
	static struct reporter_conf rep[3];
	char err[256], spool[600];
	const char rec[] = "{\"n\":1}";

	log_set_level(LOG_LEVEL_ERROR);         /* "down" would be named */
	use_config(ab, 2, 0);
	lfd = listen_any();
	int closed = listen_any();
	int down_port = port_of(closed);
	close(closed);
	ck_assert_int_eq(pthread_create(&server_tid, NULL, server_main, NULL), 0);

	memset(rep, 0, sizeof(rep));
	static const char *const rn[] = { "held", "good", "down" };
	for (int i = 0; i < 3; i++) {
		snprintf(rep[i].name, sizeof(rep[i].name), "%s", rn[i]);
		snprintf(rep[i].host, sizeof(rep[i].host), "127.0.0.1");
		snprintf(rep[i].path, sizeof(rep[i].path), "/usage");
		rep[i].timeout_ms = 2000;
	}
	rep[0].https = 1;
	snprintf(rep[0].port, sizeof(rep[0].port), "%d", down_port);
	snprintf(rep[1].port, sizeof(rep[1].port), "%d", port_of(lfd));
	snprintf(rep[2].port, sizeof(rep[2].port), "%d", down_port);
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	snprintf(cfg.usage_spool, sizeof(cfg.usage_spool), "%s", spool);
	cfg.usage_enabled = 1;
	cfg.usage_batch = 1;
	cfg.usage_max_wait_ms = 200;
	cfg.usage_spool_max_bytes = 3 * sizeof(rec);    /* 3 lines */
	cfg.usage_spool_fsync = SPOOL_FSYNC_NEVER;
	cfg.reporters = rep;
	cfg.nreporters = 3;
	ck_assert_msg(webhook_start(&cfg, err, sizeof(err)) == 0, "%s", err);

	for (int i = 0; i < 5; i++)
		webhook_submit(rec, sizeof(rec) - 1);
	int64_t deadline = io_now_ms() + 10000;
	while ((WH(delivered) < 3 || WH(failures) < 2) &&
	    io_now_ms() < deadline)
		usleep(10000);
	ck_assert_uint_eq(WH(delivered), 3);
	ck_assert_uint_ge(WH(failures), 2);

	uint64_t f0 = WH(failures);
	const char *t = scrape(NULL);
	uint64_t f1 = WH(failures);
	ck_value(t, 3, "llmproxy_webhook_success_total");
	ck_value(t, 2, "llmproxy_webhook_dropped_total");
	ck_value(t, 3, "llmproxy_webhook_queue_depth");
	ck_value(t, WH(spool_bytes), "llmproxy_webhook_spool_bytes");
	ck_assert_uint_gt(WH(spool_bytes), 0);
	double f = value(t, "llmproxy_webhook_failure_total");
	ck_assert_msg(f >= (double)f0 && f <= (double)f1,
	    "failures %g, stats said %llu then %llu", f,
	    (unsigned long long)f0, (unsigned long long)f1);
	ck_assert(has_line(t, "# TYPE llmproxy_webhook_success_total counter"));
	ck_assert(has_line(t, "# TYPE llmproxy_webhook_queue_depth gauge"));

	webhook_stop(0);
	server_stop = 1;
	pthread_join(server_tid, NULL);
	close(lfd);
}
END_TEST

/* ---- promtool -------------------------------------------------------------------------------- */

/* promtool from $PROMTOOL or $PATH into out, or 0 when there is none. */
static int
find_promtool(char *out, size_t len)
{
	const char *env = getenv("PROMTOOL");
	const char *path = getenv("PATH");

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s", env);
		return access(out, X_OK) == 0;
	}
	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path != '\0') {
		size_t n = strcspn(path, ":");
		snprintf(out, len, "%.*s/promtool", (int)n, path);
		if (n > 0 && access(out, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

/* Runs `promtool check metrics` on t.  Returns its exit status with its
 * output (stdout and stderr) in out, or -1 when promtool is missing. */
static int
promtool(const char *t, char *out, size_t outlen)
{
	char tool[1024], file[600], cmd[2048];
	const char *tmp = getenv("TMPDIR");

	if (!find_promtool(tool, sizeof(tool)))
		return -1;
	snprintf(file, sizeof(file), "%s/check_metrics.prom.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	int fd = mkstemp(file);
	ck_assert_int_ge(fd, 0);
	ck_assert(write(fd, t, strlen(t)) == (ssize_t)strlen(t));
	close(fd);

	snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", tool,
	    file);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(file);
	ck_assert_msg(st != -1 && WIFEXITED(st), "promtool did not exit");
	return WEXITSTATUS(st);
}

/* Something in every family, so every family is checked. */
static void
traffic(void)
{
	for (int p = 0; p < MP_COUNT; p++) {
		struct metrics_request r = req((enum metrics_path)p, p % 2,
		    p % 3 - 1, p == 0 ? 200 : 400 + p);
		r.duration_us = 123456 * (p + 1);
		r.ttft_us = 2345 * (p + 1);
		r.prompt_tokens = 10;
		r.completion_tokens = 200;
		r.client_abort = p == 2;
		done(r);
	}
	done(req(MP_CHAT_COMPLETIONS, 1, 0, 0));
	done(req(MP_CHAT_COMPLETIONS, 1, 0, 418));
	metrics_inter_token(0, 1500, 1);
	metrics_inter_token(1, 25000, 1);
	metrics_retry(1);
	metrics_in_flight(1);
}

/* 0: the usual config; 1: names that need escaping; 2: compat on, where
 * the only complaint may be about LLMProxy's llmproxy_latency_ms. */
START_TEST(test_promtool)
{
	char out[16384];
	struct backend_table tbl;

	if (_i == 1)
		use_config(odd_names, N(odd_names), 0);
	else
		use_config(ab, 2, _i == 2);
	ck_assert_int_eq(bal_init(&tbl, &cfg), 0);
	traffic();
	const char *t = scrape(&tbl);
	int st = promtool(t, out, sizeof(out));
	bal_free(&tbl);
	if (st < 0) {
		fprintf(stderr, "check_metrics: SKIPPED the promtool check: no "
		    "promtool in $PROMTOOL or $PATH (Debian: apt-get install "
		    "prometheus)\n");
		return;
	}
	if (_i < 2) {
		if (st != 0 || out[0] != '\0')
			fprintf(stderr, "--- promtool's input:\n%s---\n", t);
		ck_assert_msg(st == 0 && out[0] == '\0',
		    "promtool check metrics exited %d: %.2000s", st, out);
		return;
	}
	/* LLMProxy's name breaks the naming rules, which is why it sits
	 * behind a switch; nothing else may be wrong. */
	ck_assert_msg(strstr(out, "llmproxy_latency_ms") != NULL,
	    "promtool accepts llmproxy_latency_ms now? exit %d:\n%s", st, out);
	for (char *s = out; *s != '\0';) {
		char *nl = strchr(s, '\n');
		if (nl != NULL)
			*nl = '\0';
		ck_assert_msg(*s == '\0' || strstr(s, "llmproxy_latency_ms") !=
		    NULL, "promtool: %s", s);
		s += strlen(s) + (nl != NULL);
	}
}
END_TEST

/* ---- rendering: buffers and limits ------------------------------------------------------------ */

START_TEST(test_render_buffer)
{
	static const char *names[CAP_BACKENDS];
	static char store[CAP_BACKENDS][16];
	char *small;
	size_t cap = 1;

	for (int i = 0; i < CAP_BACKENDS; i++) {
		snprintf(store[i], sizeof(store[i]), "gpu%d", i);
		names[i] = store[i];
	}
	use_config(names, CAP_BACKENDS, 1);
	for (int i = 0; i < CAP_BACKENDS; i++)
		for (int p = 0; p < MP_COUNT; p++)
			done(req((enum metrics_path)p, i % 2, i, 200 + p));
	/* From nothing, and from a buffer of one byte: the same text (but
	 * for process_*, which change between two renders). */
	const char *t = scrape(NULL);
	char *copy = strdup(t);
	ck_assert_ptr_nonnull(copy);
	char *proc = strstr(copy, "# HELP process_");
	ck_assert_ptr_nonnull(proc);
	size_t stable = (size_t)(proc - copy);
	small = malloc(cap);
	ck_assert_ptr_nonnull(small);
	size_t n = metrics_render(&small, &cap, NULL);
	ck_assert_uint_eq(n, strlen(small));
	ck_assert_uint_gt(cap, n);
	ck_assert_msg(n > stable && memcmp(small, copy, stable) == 0,
	    "a render into a small buffer differs");
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"),
	    CAP_BACKENDS * MP_COUNT);
	/* A second render into the same buffer starts over. */
	n = metrics_render(&small, &cap, NULL);
	ck_assert_uint_eq(n, strlen(small));
	ck_assert_msg(memcmp(small, copy, stable) == 0,
	    "a second render differs");
	free(small);
	free(copy);
}
END_TEST

START_TEST(test_init_limits)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.backends = bconf;
	cfg.nbackends = CAP_BACKENDS + 1;
	ck_assert_int_eq(metrics_init(&cfg), -1);
	/* Nothing counted then, nothing crashes, and the scrape is valid. */
	done(req(MP_CHAT_COMPLETIONS, 1, 0, 200));
	metrics_inter_token(0, 1, 1);
	metrics_retry(0);
	const char *t = scrape(NULL);
	ck_assert_int_eq(samples(t, "llmproxy_requests_total"), 0);

	cfg.nbackends = 0;              /* no backend at all: valid too */
	ck_assert_int_eq(metrics_init(&cfg), 0);
	done(req(MP_MODELS, 0, 0, 200));
	t = scrape(NULL);
	ck_value(t, 1, "llmproxy_requests_total{path=\"/v1/models\","
	    "stream=\"false\",backend=\"none\",status=\"200\"}");
}
END_TEST

/* ---- concurrency: counting while rendering --------------------------------------------------- */

#define THREADS 4
#define ROUNDS  20000

static void *
counter_main(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < ROUNDS; i++) {
		struct metrics_request r = req(MP_CHAT_COMPLETIONS, 1, i % 2,
		    200);
		metrics_in_flight(1);
		r.duration_us = i % 1000;
		r.ttft_us = 1000;
		r.completion_tokens = id + 1;
		metrics_inter_token(i % 2, 700, 1);
		if (i % 10 < 2)
			metrics_retry(i % 2);   /* 1 in 10 on each */
		done(r);
		metrics_in_flight(-1);
	}
	return NULL;
}

static _Atomic int counters_done;

static void *
join_main(void *arg)
{
	pthread_t *tid = arg;

	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	counters_done = 1;
	return NULL;
}

START_TEST(test_concurrent)
{
	pthread_t tid[THREADS], joiner;
	const char *series = "llmproxy_requests_total{path=\"" CHAT "\","
	    "stream=\"true\",backend=\"a\",status=\"200\"}";
	const char *dcount = "llmproxy_request_duration_seconds_count{path=\""
	    CHAT "\",stream=\"true\",backend=\"a\"}";
	const char *dinf = "llmproxy_request_duration_seconds_bucket{path=\""
	    CHAT "\",stream=\"true\",backend=\"a\",le=\"+Inf\"}";
	double last = 0;
	int renders = 0;

	use_config(ab, 2, 1);
	counters_done = 0;
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, counter_main,
		    (void *)(intptr_t)i), 0);
	ck_assert_int_eq(pthread_create(&joiner, NULL, join_main, tid), 0);
	while (!counters_done || renders == 0) {
		const char *t = scrape(NULL);
		double v = value(t, series);
		if (!isnan(v)) {
			ck_assert_msg(v >= last, "%s went back: %g -> %g",
			    series, last, v);
			last = v;
			/* _count is the +Inf bucket in one scrape. */
			ck_assert(value(t, dcount) == value(t, dinf));
		}
		renders++;
	}
	pthread_join(joiner, NULL);

	const char *t = scrape(NULL);
	double half = THREADS * ROUNDS / 2;
	ck_value(t, half, "%s", series);
	ck_value(t, half, "llmproxy_requests_total{path=\"" CHAT "\","
	    "stream=\"true\",backend=\"b\",status=\"200\"}");
	ck_value(t, half, "%s", dcount);
	ck_value(t, half, "llmproxy_latency_ms_count{path=\"" CHAT "\","
	    "stream=\"true\",backend=\"b\"}");
	ck_value(t, half, "llmproxy_ttft_seconds_count{backend=\"a\"}");
	ck_value(t, half, "llmproxy_inter_token_seconds_count{backend=\"b\"}");
	ck_value(t, THREADS * ROUNDS / 10, "llmproxy_retries_total{backend=\"a\"}");
	ck_value(t, THREADS * ROUNDS / 10, "llmproxy_retries_total{backend=\"b\"}");
	ck_value(t, 0, "llmproxy_in_flight_requests");
	/* Each thread's completion tokens: (id + 1) per request. */
	ck_value(t, ROUNDS / 2 * (1 + 2 + 3 + 4),
	    "llmproxy_usage_tokens_total{type=\"completion\",backend=\"a\"}");
	/* The durations 0..999 us, THREADS * ROUNDS / 1000 times each, half
	 * of them (the even ones) on a. */
	double sum_a = THREADS * (ROUNDS / 1000) * (499.0 * 500) / 1e6;
	ck_value(t, sum_a, "llmproxy_request_duration_seconds_sum{path=\""
	    CHAT "\",stream=\"true\",backend=\"a\"}");
	fprintf(stderr, "check_metrics: %d renders while counting\n", renders);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------ */

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("histogram");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_observe_boundaries, 0, N(bounds_cases));
	tcase_add_test(tc, test_observe_sum_count);
	tcase_add_loop_test(tc, test_histogram_render, 0, N(render_cases));
	tcase_add_test(tc, test_histogram_render_empty);
	tcase_add_test(tc, test_histogram_observe_n);
	tcase_add_loop_test(tc, test_family_buckets, 0, N(family_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_path_of, 0, N(path_cases));
	tcase_add_loop_test(tc, test_status_label, 0, N(status_cases));
	tcase_add_test(tc, test_request_labels);
	tcase_add_test(tc, test_zero_series_omitted);
	tcase_add_test(tc, test_label_escaping);
	suite_add_tcase(s, tc);

	tc = tcase_create("families");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tokens);
	tcase_add_test(tc, test_ttft);
	tcase_add_test(tc, test_inter_token);
	tcase_add_test(tc, test_retries_in_flight_aborts);
	tcase_add_test(tc, test_backend_up);
	tcase_add_test(tc, test_build_info);
	tcase_add_loop_test(tc, test_compat, 0, 2);
	tcase_add_test(tc, test_process);
	tcase_add_test(tc, test_render_buffer);
	tcase_add_test(tc, test_init_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("webhook");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_webhook);
	suite_add_tcase(s, tc);

	tc = tcase_create("promtool");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_promtool, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	main_started = now_real();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
