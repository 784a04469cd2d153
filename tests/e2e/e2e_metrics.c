/*
 * e2e_metrics.c — observability through the real binary: GET /metrics has
 * every family with the values the requests sent make (counted here, not
 * guessed), `promtool check metrics` finds nothing to say about it, a real
 * Prometheus scrapes it and answers PromQL over it, [metrics] listen / path /
 * enabled / llmproxy_compat do what config.ini.example says, and the access
 * log has one line per request, as text, as JSON, or in its own file.
 *
 * Every test starts its own proxy (counters start at zero; configs differ)
 * in front of one shared mock.  A request is sent with "Connection: close"
 * and the test waits until the proxy closes: the proxy closes only after the
 * request's access line and metrics are done, so the next scrape counts it.
 * What the proxy does in the background (webhook deliveries, a client that
 * left) is waited for by scraping until the value is there, with a deadline.
 * The exposition is parsed here by a small parser of the text format 0.0.4
 * that shares nothing with src/metrics.c.
 *
 * Prometheus and promtool come from the Debian prometheus package (make
 * test-deps); $PROMETHEUS_BIN and $PROMTOOL_BIN override /usr/bin.  The
 * Prometheus the test starts listens on 127.0.0.1 only, keeps its data in a
 * temp dir, and is configured with one scrape target, the proxy: no remote
 * write, no alerting, nothing else to reach.
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;

/* Every temp dir of the suite (mock, proxies, Prometheus, spools) is made
 * under this one ($TMPDIR while the suite runs), removed at the end even
 * when a test failed halfway. */
static char suite_dir[128];
static char *saved_tmpdir;

static void
setup(void)
{
	char *t = getenv("TMPDIR");
	saved_tmpdir = t != NULL ? strdup(t) : NULL;
	make_temp_dir(suite_dir, sizeof(suite_dir), "metrics");
	setenv("TMPDIR", suite_dir, 1);
	mock_start(&mock);
}

static void
teardown(void)
{
	mock_stop(&mock);
	if (saved_tmpdir != NULL)
		setenv("TMPDIR", saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(saved_tmpdir);
	rm_rf_dir(suite_dir);
}

/* A short pause inside a wait loop that has its own deadline. */
static void
pause_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

static double
wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char default_promtool[] = "/usr/bin/promtool";
static char default_prometheus[] = "/usr/bin/prometheus";

static char *
tool(const char *env, char *fallback)
{
	char *v = getenv(env);
	char *path = v != NULL && *v ? v : fallback;
	ck_assert_msg(access(path, X_OK) == 0, "%s not found (install the Debian "
	    "prometheus package: make test-deps; or set $%s)", path, env);
	return path;
}

/* ---- the exposition: a small parser of the text format ----------------------- */

#define MAX_PAIRS 8

struct sample {
	char name[128];
	size_t npairs;
	char key[MAX_PAIRS][64];
	char val[MAX_PAIRS][256];
	double value;
};

struct family_type {
	char name[128];
	char type[16];
};

struct expo {
	char *text;             /* as scraped */
	struct sample *s;
	size_t n, cap;
	struct family_type t[64];
	size_t ntypes;
};

static int
name_start(char c)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int
name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/*
 * Label pairs `k="v",...` at p up to the closing '}' (or the end of the
 * string for a query).  Returns the position after them, or NULL when they
 * are malformed.
 */
static const char *
parse_pairs(const char *p, struct sample *s, int query)
{
	s->npairs = 0;
	for (;;) {
		if (*p == '}' || (query && *p == '\0'))
			return p;
		if (s->npairs == MAX_PAIRS || !name_start(*p))
			return NULL;
		size_t k = 0;
		while (name_char(*p) && k < sizeof(s->key[0]) - 1)
			s->key[s->npairs][k++] = *p++;
		s->key[s->npairs][k] = '\0';
		if (*p++ != '=' || *p++ != '"')
			return NULL;
		size_t v = 0;
		while (*p != '"') {
			char c = *p++;
			if (c == '\0' || c == '\n')
				return NULL;
			if (c == '\\') {
				c = *p++;
				if (c == 'n')
					c = '\n';
				else if (c != '\\' && c != '"')
					return NULL;
			}
			if (v < sizeof(s->val[0]) - 1)
				s->val[s->npairs][v++] = c;
		}
		s->val[s->npairs][v] = '\0';
		p++;
		s->npairs++;
		if (*p == ',')
			p++;
	}
}

static void
expo_parse(struct expo *e, const char *text)
{
	memset(e, 0, sizeof(*e));
	e->text = strdup(text);
	ck_assert_ptr_nonnull(e->text);
	for (const char *line = text; *line != '\0';) {
		const char *nl = strchr(line, '\n');
		ck_assert_msg(nl != NULL, "the exposition does not end with a "
		    "line feed: \"%s\"", line);
		char buf[2048];
		size_t len = (size_t)(nl - line);
		ck_assert_msg(len < sizeof(buf), "line too long: %.200s", line);
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl + 1;
		if (len == 0)
			continue;
		if (buf[0] == '#') {
			char name[128], type[16];
			if (sscanf(buf, "# TYPE %127s %15s", name, type) == 2) {
				ck_assert_uint_lt(e->ntypes, 64);
				snprintf(e->t[e->ntypes].name, sizeof(e->t[0].name),
				    "%s", name);
				snprintf(e->t[e->ntypes].type, sizeof(e->t[0].type),
				    "%s", type);
				e->ntypes++;
			}
			continue;
		}
		if (e->n == e->cap) {
			e->cap = e->cap ? e->cap * 2 : 256;
			e->s = realloc(e->s, e->cap * sizeof(*e->s));
			ck_assert_ptr_nonnull(e->s);
		}
		struct sample *s = &e->s[e->n];
		const char *p = buf;
		size_t k = 0;
		ck_assert_msg(name_start(*p), "bad sample line: %s", buf);
		while (name_char(*p) && k < sizeof(s->name) - 1)
			s->name[k++] = *p++;
		s->name[k] = '\0';
		s->npairs = 0;
		if (*p == '{') {
			p = parse_pairs(p + 1, s, 0);
			ck_assert_msg(p != NULL && *p == '}', "bad labels: %s", buf);
			p++;
		}
		ck_assert_msg(*p == ' ', "no value: %s", buf);
		char *end;
		s->value = strtod(p + 1, &end);
		ck_assert_msg(end != p + 1 && (*end == '\0' || *end == ' '),
		    "bad value: %s", buf);
		e->n++;
	}
}

static void
expo_free(struct expo *e)
{
	free(e->text);
	free(e->s);
	memset(e, 0, sizeof(*e));
}

static const char *
pair(const struct sample *s, const char *key)
{
	for (size_t i = 0; i < s->npairs; i++)
		if (strcmp(s->key[i], key) == 0)
			return s->val[i];
	return NULL;
}

/* Every pair of q is in s (and, when exact, nothing else; `except` is a
 * label of s to leave out of that, or NULL). */
static int
pairs_match(const struct sample *s, const struct sample *q, int exact,
    const char *except)
{
	size_t extra = 0;
	for (size_t i = 0; i < s->npairs; i++)
		if (except == NULL || strcmp(s->key[i], except) != 0)
			extra++;
	for (size_t i = 0; i < q->npairs; i++) {
		const char *v = pair(s, q->key[i]);
		if (v == NULL || strcmp(v, q->val[i]) != 0)
			return 0;
	}
	return !exact || extra == q->npairs;
}

static void
query(struct sample *q, const char *labels)
{
	ck_assert_msg(parse_pairs(labels, q, 1) != NULL, "bad query labels %s",
	    labels);
}

/* The lines of family `name` (its _bucket, _sum, _count too), for a
 * failure message. */
static const char *
family_text(const struct expo *e, const char *name)
{
	static char out[8192];
	size_t o = 0, nl = strlen(name);

	out[0] = '\0';
	for (const char *line = e->text; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (strncmp(line, name, nl) == 0 && o + len + 2 < sizeof(out)) {
			memcpy(out + o, line, len);
			o += len;
			out[o++] = '\n';
			out[o] = '\0';
		}
		line += len + (end != NULL);
	}
	return o > 0 ? out : "(no such series)\n";
}

static const struct sample *
find(const struct expo *e, const char *name, const char *labels)
{
	struct sample q;

	query(&q, labels);
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->s[i].name, name) == 0 &&
		    pairs_match(&e->s[i], &q, 1, NULL))
			return &e->s[i];
	return NULL;
}

/* name{labels} (exactly those labels); fails when there is no such
 * sample. */
static double
value(const struct expo *e, const char *name, const char *labels)
{
	const struct sample *s = find(e, name, labels);
	ck_assert_msg(s != NULL, "no sample %s{%s} in:\n%s", name, labels,
	    family_text(e, name));
	return s->value;
}

/* The sum of name over every series whose labels include `subset`. */
static double
sum(const struct expo *e, const char *name, const char *subset)
{
	struct sample q;
	double total = 0;

	query(&q, subset);
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->s[i].name, name) == 0 &&
		    pairs_match(&e->s[i], &q, 0, NULL))
			total += e->s[i].value;
	return total;
}

static const char *
type_of(const struct expo *e, const char *name)
{
	for (size_t i = 0; i < e->ntypes; i++)
		if (strcmp(e->t[i].name, name) == 0)
			return e->t[i].type;
	return NULL;
}

static int
has_family(const struct expo *e, const char *name)
{
	return type_of(e, name) != NULL;
}

#define ASSERT_VALUE(e, name, labels, want) do {                              \
	double got_ = value((e), (name), (labels));                           \
	ck_assert_msg(got_ == (double)(want), "%s{%s} is %g, want %g:\n%s",  \
	    (name), (labels), got_, (double)(want), family_text((e), (name))); \
} while (0)

/*
 * Every histogram is well formed: per series, buckets by ascending le,
 * cumulative counts that never fall, a +Inf bucket equal to _count, a _sum.
 */
static void
assert_histograms_consistent(const struct expo *e)
{
	for (size_t f = 0; f < e->ntypes; f++) {
		if (strcmp(e->t[f].type, "histogram") != 0)
			continue;
		char bucket[160], count[160], sumn[160];
		snprintf(bucket, sizeof(bucket), "%s_bucket", e->t[f].name);
		snprintf(count, sizeof(count), "%s_count", e->t[f].name);
		snprintf(sumn, sizeof(sumn), "%s_sum", e->t[f].name);
		const struct sample *prev = NULL;
		for (size_t i = 0; i < e->n; i++) {
			const struct sample *s = &e->s[i];
			if (strcmp(s->name, bucket) != 0)
				continue;
			const char *le = pair(s, "le");
			ck_assert_msg(le != NULL, "%s without le", bucket);
			/* Same series as the bucket before it? */
			int same = prev != NULL && prev->npairs == s->npairs;
			for (size_t k = 0; same && k < s->npairs; k++)
				if (strcmp(s->key[k], "le") != 0) {
					const char *v = pair(prev, s->key[k]);
					same = v != NULL && strcmp(v, s->val[k]) == 0;
				}
			if (same) {
				double a = strtod(pair(prev, "le"), NULL);
				double b = strtod(le, NULL);
				ck_assert_msg(a < b, "%s: le %s after le %s", bucket,
				    le, pair(prev, "le"));
				ck_assert_msg(prev->value <= s->value,
				    "%s: not cumulative at le=%s:\n%s", bucket, le,
				    family_text(e, e->t[f].name));
			} else {
				ck_assert_msg(prev == NULL || strcmp(pair(prev, "le"),
				    "+Inf") == 0, "%s: a series without +Inf",
				    bucket);
			}
			if (strcmp(le, "+Inf") == 0) {
				/* The _count and _sum of this series. */
				struct sample q = *s;
				size_t w = 0;
				for (size_t k = 0; k < q.npairs; k++)
					if (strcmp(q.key[k], "le") != 0) {
						memmove(q.key[w], q.key[k], sizeof(q.key[0]));
						memmove(q.val[w], q.val[k], sizeof(q.val[0]));
						w++;
					}
				q.npairs = w;
				int found_count = 0, found_sum = 0;
				for (size_t j = 0; j < e->n; j++) {
					if (!pairs_match(&e->s[j], &q, 1, NULL))
						continue;
					if (strcmp(e->s[j].name, count) == 0) {
						found_count = 1;
						ck_assert_msg(e->s[j].value == s->value,
						    "%s: +Inf bucket %g, _count %g",
						    e->t[f].name, s->value, e->s[j].value);
					} else if (strcmp(e->s[j].name, sumn) == 0) {
						found_sum = 1;
						ck_assert_msg(e->s[j].value >= 0,
						    "%s: negative sum", e->t[f].name);
					}
				}
				ck_assert_msg(found_count && found_sum,
				    "%s: a series without _count or _sum:\n%s",
				    e->t[f].name, family_text(e, e->t[f].name));
			}
			prev = s;
		}
		ck_assert_msg(prev == NULL || strcmp(pair(prev, "le"), "+Inf") == 0,
		    "%s: the last series has no +Inf bucket", bucket);
	}
}

/* ---- scraping ------------------------------------------------------------------ */

/* GET path on port: 200, the text format's content type, parsed into e. */
static void
scrape_at(int port, const char *path, struct expo *e)
{
	struct response r;
	char type[128];

	ck_assert_msg(http_get(port, path, &r, 5000) == 200,
	    "GET %s on port %d: status %d %s", path, port, r.status, r.body);
	ck_assert(response_header(&r, "Content-Type", type, sizeof(type)));
	ck_assert_msg(strncmp(type, "text/plain", 10) == 0 &&
	    strstr(type, "version=0.0.4") != NULL, "Content-Type: %s", type);
	ck_assert_msg(r.complete, "the exposition was cut");
	ck_assert_uint_eq(strlen(r.body), r.body_len);
	expo_parse(e, r.body);
	response_free(&r);
}

static void
scrape(const struct proxy *px, struct expo *e)
{
	scrape_at(px->port, "/metrics", e);
}

/* Scrapes until name{labels} (exactly) is `want`; fails at the deadline
 * with what it saw last. */
static void
wait_value(int port, const char *name, const char *labels, double want,
    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct expo e;

	for (;;) {
		scrape_at(port, "/metrics", &e);
		const struct sample *s = find(&e, name, labels);
		if (s != NULL && s->value == want) {
			expo_free(&e);
			return;
		}
		ck_assert_msg(now_ms() < deadline, "%s{%s} never became %g "
		    "within %d ms:\n%s", name, labels, want, timeout_ms,
		    family_text(&e, name));
		expo_free(&e);
		pause_ms(5);
	}
}

/* ---- requests --------------------------------------------------------------------- */

/*
 * Sends a raw request (it must say "Connection: close") on a new connection,
 * reads the answer, and waits until the proxy closes: it does only once the
 * request is over, its metrics counted and its access line written.
 */
static void
exchange(int port, const char *req, struct response *r)
{
	ck_assert(strstr(req, "Connection: close\r\n") != NULL);
	int fd = tcp_connect(port);
	send_str(fd, req);
	ck_assert_msg(read_response(fd, r, 10000, strncmp(req, "HEAD ", 5) == 0)
	    == 0, "no answer from the proxy");
	ck_assert_msg(r->eof || wait_closed(fd, 5000) >= 0,
	    "the proxy kept a Connection: close connection open");
	close(fd);
}

/* POST body to path with extra header lines (each ending in \r\n). */
static void
post(int port, const char *path, const char *headers, const char *body,
    struct response *r)
{
	char req[8192];

	snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\nConnection: close\r\n%s"
	    "Content-Length: %zu\r\n\r\n%s", path, headers, strlen(body), body);
	exchange(port, req, r);
}

static void
get(int port, const char *path, struct response *r)
{
	char req[1024];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Connection: close\r\n\r\n", path);
	exchange(port, req, r);
}

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
static const char plain_body[] =
    "{\"model\":\"mock-model\","
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}";
static const char embed_body[] =
    "{\"model\":\"e5\",\"input\":\"some text to embed, a little longer\"}";

/* A streamed chat completion of `tokens` tokens, 20 ms apart; returns the
 * events the client got (asserting the stream ended properly). */
static size_t
stream_ok(int port, const char *id, int tokens)
{
	char h[256];
	struct response r;

	snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Tokens: %d\r\n"
	    "X-Mock-Delay-Ms: 20\r\n", id, tokens);
	post(port, "/v1/chat/completions", h, stream_body, &r);
	ck_assert_msg(r.status == 200, "%s: status %d %s", id, r.status, r.body);
	ck_assert_msg(r.complete && memmem(r.body, r.body_len, "[DONE]", 6),
	    "%s: the stream did not end: %s", id, r.body);
	size_t n = r.nevents;
	ck_assert_uint_ge(n, (size_t)tokens);
	response_free(&r);
	return n;
}

static void
plain_ok(int port, const char *id, int tokens)
{
	char h[256];
	struct response r;

	snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Tokens: %d\r\n", id,
	    tokens);
	post(port, "/v1/chat/completions", h, plain_body, &r);
	ck_assert_msg(r.status == 200, "%s: status %d %s", id, r.status, r.body);
	response_free(&r);
}

/* What the mock charges for a prompt: a token per 4 bytes of body, at
 * least 1 (tests/mock_upstream.c, prompt_tokens()). */
static long
mock_prompt_tokens(const char *body)
{
	long p = (long)strlen(body) / 4;
	return p < 1 ? 1 : p;
}

/* The llmproxy version, from llmproxy -V. */
static void
proxy_version(char *out, size_t cap)
{
	char buf[256];
	char *argv[] = { "llmproxy", "-V", NULL };

	ck_assert_int_eq(run_llmproxy(argv, buf, sizeof(buf)), 0);
	ck_assert_msg(sscanf(buf, "llmproxy %63s", out) == 1 && cap > 63,
	    "llmproxy -V said %s", buf);
}

/* A proxy in front of the shared mock with `extra` sections. */
static void
start(struct proxy *px, const char *extra)
{
	char cfg[4096];

	proxy_config(cfg, sizeof(cfg), &mock, extra);
	proxy_start_ok(px, cfg);
}

#define CHAT "path=\"/v1/chat/completions\""

/* ---- 1. every family, with the values the requests made ----------------------------- */

static const struct {
	const char *name;
	const char *type;
} families[] = {
	{ "llmproxy_requests_total", "counter" },
	{ "llmproxy_webhook_success_total", "counter" },
	{ "llmproxy_webhook_failure_total", "counter" },
	{ "llmproxy_usage_tokens_total", "counter" },
	{ "llmproxy_request_duration_seconds", "histogram" },
	{ "llmproxy_ttft_seconds", "histogram" },
	{ "llmproxy_inter_token_seconds", "histogram" },
	{ "llmproxy_in_flight_requests", "gauge" },
	{ "llmproxy_backend_up", "gauge" },
	{ "llmproxy_retries_total", "counter" },
	{ "llmproxy_client_aborts_total", "counter" },
	{ "llmproxy_webhook_queue_depth", "gauge" },
	{ "llmproxy_webhook_spool_bytes", "gauge" },
	{ "llmproxy_webhook_dropped_total", "counter" },
	{ "llmproxy_build_info", "gauge" },
	{ "process_resident_memory_bytes", "gauge" },
	{ "process_cpu_seconds_total", "counter" },
	{ "process_open_fds", "gauge" },
	{ "process_start_time_seconds", "gauge" },
};

START_TEST(every_family_with_the_right_values)
{
	struct proxy px;
	struct receiver rv;
	struct response r;
	struct expo e;
	char extra[1024], ver[64], labels[256];

	proxy_version(ver, sizeof(ver));
	receiver_start(&rv, 0, NULL);
	snprintf(extra, sizeof(extra), "[usage]\nmax_wait = 200ms\n"
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n",
	    rv.port);
	double t_start = wall_seconds();
	start(&px, extra);

	/* Idle: nothing in flight (the scrape itself is not a request). */
	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_in_flight_requests", "", 0);
	expo_free(&e);

	/* Three streams, two plain answers, an embedding. */
	static const int stream_tokens[] = { 3, 4, 5 };
	size_t gaps = 0;
	long completion = 0, prompt = 0;
	for (int i = 0; i < 3; i++) {
		char id[32];
		snprintf(id, sizeof(id), "fam-s%d", i);
		gaps += stream_ok(px.port, id, stream_tokens[i]) - 1;
		completion += stream_tokens[i];
		prompt += mock_prompt_tokens(stream_body);
	}
	plain_ok(px.port, "fam-p0", 7);
	plain_ok(px.port, "fam-p1", 2);
	completion += 7 + 2;
	prompt += 2 * mock_prompt_tokens(plain_body);
	post(px.port, "/v1/embeddings", "X-Request-Id: fam-e\r\n", embed_body, &r);
	ck_assert_int_eq(r.status, 200);
	prompt += mock_prompt_tokens(embed_body);
	response_free(&r);

	/* One the proxy answers itself (404), one the backend fails before
	 * its head (502), one the backend answers 500. */
	get(px.port, "/no/such/thing", &r);
	ck_assert_int_eq(r.status, 404);
	response_free(&r);
	post(px.port, "/v1/chat/completions", "X-Request-Id: fam-cut\r\n"
	    "X-Mock-Fail: close-before-head\r\n", plain_body, &r);
	ck_assert_int_eq(r.status, 502);
	response_free(&r);
	post(px.port, "/v1/chat/completions", "X-Request-Id: fam-500\r\n"
	    "X-Mock-Fail: 500\r\n", plain_body, &r);
	ck_assert_int_eq(r.status, 500);
	response_free(&r);

	/* Records: one per chat and embeddings request (8), all delivered. */
	wait_value(px.port, "llmproxy_webhook_success_total", "", 8, 10000);
	ck_assert_uint_eq(receiver_wait_records(&rv, 8, 1000), 8);

	scrape(&px, &e);
	/* Every family, with its type. */
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const char *t = type_of(&e, families[i].name);
		ck_assert_msg(t != NULL, "no family %s in:\n%s", families[i].name,
		    e.text);
		ck_assert_msg(strcmp(t, families[i].type) == 0, "%s is a %s, "
		    "want a %s", families[i].name, t, families[i].type);
	}
	ck_assert_msg(!has_family(&e, "llmproxy_latency_ms") &&
	    strstr(e.text, "llmproxy_latency_ms") == NULL,
	    "llmproxy_latency_ms without [metrics] llmproxy_compat");
	assert_histograms_consistent(&e);

	/* Requests, by exactly the labels they should have. */
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"true\","
	    "backend=\"mock\",status=\"200\"", 3);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"false\","
	    "backend=\"mock\",status=\"200\"", 2);
	ASSERT_VALUE(&e, "llmproxy_requests_total", "path=\"/v1/embeddings\","
	    "stream=\"false\",backend=\"mock\",status=\"200\"", 1);
	ASSERT_VALUE(&e, "llmproxy_requests_total", "path=\"other\","
	    "stream=\"false\",backend=\"none\",status=\"404\"", 1);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"false\","
	    "backend=\"mock\",status=\"502\"", 1);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"false\","
	    "backend=\"mock\",status=\"500\"", 1);
	/* ... and nothing else (the scrapes are not requests). */
	ck_assert_msg(sum(&e, "llmproxy_requests_total", "") == 9,
	    "%g requests counted, 9 sent:\n%s",
	    sum(&e, "llmproxy_requests_total", ""),
	    family_text(&e, "llmproxy_requests_total"));
	ck_assert_msg(sum(&e, "llmproxy_request_duration_seconds_count", CHAT
	    ",backend=\"mock\"") == 7, "durations:\n%s",
	    family_text(&e, "llmproxy_request_duration_seconds_count"));
	ASSERT_VALUE(&e, "llmproxy_request_duration_seconds_count", CHAT
	    ",stream=\"true\",backend=\"mock\"", 3);

	/* Tokens: exactly what the mock generated and charged. */
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"mock\"", completion);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"prompt\",backend=\"mock\"", prompt);

	/* A first byte reached the client for the three streams, the two
	 * plain answers, the embedding and the relayed 500; not for the 502
	 * nor the 404. */
	ASSERT_VALUE(&e, "llmproxy_ttft_seconds_count", "backend=\"mock\"", 7);
	ck_assert_msg(value(&e, "llmproxy_ttft_seconds_sum", "backend=\"mock\"")
	    > 0, "ttft sum 0");
	/* One gap between each two events the client got of a stream. */
	ASSERT_VALUE(&e, "llmproxy_inter_token_seconds_count", "backend=\"mock\"",
	    gaps);
	/* 20 ms apart, by the mock's clock: the gaps add up to about that. */
	double itl_sum = value(&e, "llmproxy_inter_token_seconds_sum",
	    "backend=\"mock\"");
	ck_assert_msg(itl_sum >= 0.15 && itl_sum < 5, "inter-token sum %g s "
	    "with 9 gaps of 20 ms between tokens", itl_sum);

	ASSERT_VALUE(&e, "llmproxy_in_flight_requests", "", 0);
	ASSERT_VALUE(&e, "llmproxy_backend_up", "backend=\"mock\"", 1);
	ASSERT_VALUE(&e, "llmproxy_retries_total", "backend=\"mock\"", 0);
	ASSERT_VALUE(&e, "llmproxy_client_aborts_total", "", 0);

	ASSERT_VALUE(&e, "llmproxy_webhook_success_total", "", 8);
	ASSERT_VALUE(&e, "llmproxy_webhook_failure_total", "", 0);
	ASSERT_VALUE(&e, "llmproxy_webhook_dropped_total", "", 0);
	ASSERT_VALUE(&e, "llmproxy_webhook_queue_depth", "", 0);
	ASSERT_VALUE(&e, "llmproxy_webhook_spool_bytes", "", 0);

	snprintf(labels, sizeof(labels), "version=\"%s\"", ver);
	ASSERT_VALUE(&e, "llmproxy_build_info", labels, 1);

	/* The process, from /proc: plausible values of this very process. */
	double rss = value(&e, "process_resident_memory_bytes", "");
	ck_assert_msg(rss > 100 * 1024 && rss < 4.0 * 1024 * 1024 * 1024,
	    "resident memory %g", rss);
	double fds = value(&e, "process_open_fds", "");
	ck_assert_msg(fds >= 4 && fds < 1000, "open fds %g", fds);
	double cpu = value(&e, "process_cpu_seconds_total", "");
	ck_assert_msg(cpu >= 0 && cpu < 60, "cpu seconds %g", cpu);
	double started = value(&e, "process_start_time_seconds", "");
	ck_assert_msg(started >= t_start - 2 && started <= wall_seconds() + 1,
	    "start time %.2f, the test started it at %.2f", started, t_start);
	expo_free(&e);

	/* Counters only grow; the CPU time too. */
	scrape(&px, &e);
	ck_assert(value(&e, "process_cpu_seconds_total", "") >= cpu);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"mock\"", completion);
	expo_free(&e);

	proxy_stop(&px);
	receiver_stop(&rv);
}
END_TEST

/* ---- 2. promtool ---------------------------------------------------------------------- */

/* Runs promtool check metrics on text; fails with what it said. */
static void
assert_promtool_clean(const char *text)
{
	static char out[65536];
	char *argv[] = { tool("PROMTOOL_BIN", default_promtool), "check",
	    "metrics", NULL };

	int rc = run_program(argv, text, strlen(text), out, sizeof(out), 20000);
	ck_assert_msg(rc != 127, "could not run %s", argv[0]);
	ck_assert_msg(rc == 0 && out[0] == '\0', "promtool check metrics "
	    "exited %d:\n%s\n--- on:\n%s", rc, out, text);
}

START_TEST(promtool_finds_nothing_to_say)
{
	struct proxy px;
	struct response r;
	struct expo e;
	char extra[512];

	/* Two backends, one of them down, and every kind of request. */
	snprintf(extra, sizeof(extra), "[backends.second]\n"
	    "url = http://127.0.0.1:%d\n", dead_port());
	start(&px, extra);
	/* An idle proxy first: empty families must lint clean too. */
	scrape(&px, &e);
	assert_promtool_clean(e.text);
	expo_free(&e);

	for (int i = 0; i < 4; i++) {
		char id[32];
		snprintf(id, sizeof(id), "lint-%d", i);
		stream_ok(px.port, id, 3);
		plain_ok(px.port, id, 2);
	}
	get(px.port, "/nope", &r);
	response_free(&r);
	post(px.port, "/v1/chat/completions", "X-Mock-Fail: 503\r\n", plain_body,
	    &r);
	response_free(&r);
	post(px.port, "/v1/embeddings", "", embed_body, &r);
	response_free(&r);
	post(px.port, "/v1/something/else", "", "{}", &r);
	response_free(&r);
	scrape(&px, &e);
	assert_promtool_clean(e.text);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 3. [metrics] llmproxy_compat --------------------------------------------------------- */

START_TEST(latency_ms_only_with_llmproxy_compat)
{
	struct proxy px;
	struct expo e;

	start(&px, "[metrics]\nllmproxy_compat = true\n");
	stream_ok(px.port, "compat-1", 3);
	plain_ok(px.port, "compat-2", 3);
	scrape(&px, &e);
	ck_assert_str_eq(type_of(&e, "llmproxy_latency_ms"), "histogram");
	ck_assert_str_eq(type_of(&e, "llmproxy_request_duration_seconds"),
	    "histogram");
	assert_histograms_consistent(&e);
	/* The same observations, in milliseconds. */
	const char *s = CHAT ",stream=\"true\",backend=\"mock\"";
	ASSERT_VALUE(&e, "llmproxy_latency_ms_count", s, 1);
	ASSERT_VALUE(&e, "llmproxy_request_duration_seconds_count", s, 1);
	ASSERT_VALUE(&e, "llmproxy_latency_ms_count", CHAT ",stream=\"false\","
	    "backend=\"mock\"", 1);
	double ms = value(&e, "llmproxy_latency_ms_sum", s);
	double sec = value(&e, "llmproxy_request_duration_seconds_sum", s);
	ck_assert_msg(fabs(ms - sec * 1000) < 0.01, "%g ms vs %g s", ms, sec);
	/* Bounds in milliseconds: 5 ms is le="5", not le="0.005". */
	char labels[256];
	snprintf(labels, sizeof(labels), "%s,le=\"5\"", s);
	ck_assert_ptr_nonnull(find(&e, "llmproxy_latency_ms_bucket", labels));
	snprintf(labels, sizeof(labels), "%s,le=\"0.005\"", s);
	ck_assert_ptr_null(find(&e, "llmproxy_latency_ms_bucket", labels));
	ck_assert_ptr_nonnull(find(&e, "llmproxy_request_duration_seconds_bucket",
	    labels));
	expo_free(&e);
	proxy_stop(&px);

	start(&px, "[metrics]\nllmproxy_compat = false\n");
	plain_ok(px.port, "compat-3", 3);
	scrape(&px, &e);
	ck_assert_ptr_null(strstr(e.text, "llmproxy_latency_ms"));
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 4. a client that leaves mid-stream ---------------------------------------------------- */

START_TEST(client_abort_is_counted_and_in_flight_returns)
{
	struct proxy px;
	struct expo e;
	char req[4096], buf[8192];

	start(&px, "");
	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_in_flight_requests", "", 0);
	expo_free(&e);

	chat_request(req, sizeof(req), "X-Request-Id: leaver\r\n"
	    "X-Mock-Tokens: 200\r\nX-Mock-Delay-Ms: 20\r\n", stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	/* The stream is running: the head and an event or two are here. */
	int64_t deadline = now_ms() + 5000;
	size_t got = 0;
	while (memmem(buf, got, "tok2", 4) == NULL) {
		ck_assert_msg(now_ms() < deadline, "the stream did not start");
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	wait_value(px.port, "llmproxy_in_flight_requests", "", 1, 3000);
	close(fd);

	wait_value(px.port, "llmproxy_client_aborts_total", "", 1, 5000);
	wait_value(px.port, "llmproxy_in_flight_requests", "", 0, 3000);
	scrape(&px, &e);
	/* It was answered 200 and had its first token. */
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"true\","
	    "backend=\"mock\",status=\"200\"", 1);
	ASSERT_VALUE(&e, "llmproxy_ttft_seconds_count", "backend=\"mock\"", 1);
	double itl = value(&e, "llmproxy_inter_token_seconds_count",
	    "backend=\"mock\"");
	ck_assert_msg(itl >= 1 && itl < 200, "inter-token count %g", itl);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 5. failover and a backend that is down ------------------------------------------------ */

START_TEST(retries_and_backend_up_per_backend)
{
	struct proxy px;
	struct response r;
	struct expo e;
	char cfg[2048];

	/* b0 refuses connections and has the larger weight, so it is picked
	 * first; one failure ejects it (no probes) for a minute. */
	snprintf(cfg, sizeof(cfg), "[server]\nlisten = 127.0.0.1:0\n\n"
	    "[routing]\nload_balance = round_robin\n"
	    "[routing.retry]\nenabled = true\nmax_retries = 2\n"
	    "initial_wait = 10ms\n"
	    "[health_check]\nenabled = false\nunhealthy_threshold = 1\n"
	    "eject_cooldown = 60s\n\n"
	    "[backends.b0]\nurl = http://127.0.0.1:%d\nweight = 10\n\n"
	    "[backends.b1]\nurl = http://127.0.0.1:%d\nweight = 1\n",
	    dead_port(), mock.port);
	proxy_start_ok(&px, cfg);
	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_backend_up", "backend=\"b0\"", 1);
	ASSERT_VALUE(&e, "llmproxy_backend_up", "backend=\"b1\"", 1);
	ASSERT_VALUE(&e, "llmproxy_retries_total", "backend=\"b0\"", 0);
	ASSERT_VALUE(&e, "llmproxy_ttft_seconds_count", "backend=\"b0\"", 0);
	expo_free(&e);

	post(px.port, "/v1/chat/completions", "X-Request-Id: failover\r\n",
	    plain_body, &r);
	ck_assert_msg(r.status == 200, "status %d %s", r.status, r.body);
	response_free(&r);

	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_retries_total", "backend=\"b0\"", 1);
	ASSERT_VALUE(&e, "llmproxy_retries_total", "backend=\"b1\"", 0);
	ASSERT_VALUE(&e, "llmproxy_backend_up", "backend=\"b0\"", 0);
	ASSERT_VALUE(&e, "llmproxy_backend_up", "backend=\"b1\"", 1);
	/* Counted once, for the backend that answered. */
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"false\","
	    "backend=\"b1\",status=\"200\"", 1);
	ck_assert_msg(sum(&e, "llmproxy_requests_total", "backend=\"b0\"") == 0,
	    "%s", family_text(&e, "llmproxy_requests_total"));
	ASSERT_VALUE(&e, "llmproxy_ttft_seconds_count", "backend=\"b1\"", 1);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"b1\"", 5);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"b0\"", 0);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 6. webhook delivery: failures, the queue, the spool ----------------------------------- */

START_TEST(webhook_failures_queue_and_spool)
{
	struct proxy px;
	struct receiver rv;
	struct expo e;
	char extra[1024], dir[128];

	receiver_start(&rv, 0, NULL);
	receiver_control(&rv, "status=503");
	make_temp_dir(dir, sizeof(dir), "spool");
	snprintf(extra, sizeof(extra), "[usage]\nmax_wait = 100ms\n"
	    "spool = %s/usage.spool\n"
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n",
	    dir, rv.port);
	start(&px, extra);
	for (int i = 0; i < 3; i++) {
		char id[32];
		snprintf(id, sizeof(id), "hook-%d", i);
		plain_ok(px.port, id, 2);
	}
	/* Refused: the three wait, in the spool, and failures are counted. */
	wait_value(px.port, "llmproxy_webhook_queue_depth", "", 3, 5000);
	int64_t deadline = now_ms() + 5000;
	for (;;) {
		scrape(&px, &e);
		if (value(&e, "llmproxy_webhook_failure_total", "") >= 2)
			break;
		ck_assert_msg(now_ms() < deadline, "no delivery failures counted "
		    "while the webhook answers 503:\n%s",
		    family_text(&e, "llmproxy_webhook"));
		expo_free(&e);
		pause_ms(5);
	}
	ASSERT_VALUE(&e, "llmproxy_webhook_success_total", "", 0);
	ASSERT_VALUE(&e, "llmproxy_webhook_dropped_total", "", 0);
	double spooled = value(&e, "llmproxy_webhook_spool_bytes", "");
	ck_assert_msg(spooled > 3 * 100, "spool bytes %g with three records "
	    "waiting", spooled);
	expo_free(&e);

	/* Back: all three delivered, nothing waits. */
	receiver_control(&rv, "reset=1");
	wait_value(px.port, "llmproxy_webhook_success_total", "", 3, 10000);
	wait_value(px.port, "llmproxy_webhook_queue_depth", "", 0, 5000);
	ck_assert_uint_eq(receiver_wait_records(&rv, 3, 1000), 3);
	proxy_stop(&px);
	receiver_stop(&rv);
	rm_rf_dir(dir);
}
END_TEST

/* ---- 7. [metrics] listen, enabled, path ---------------------------------------------------- */

/* The port of "metrics on 127.0.0.1:PORT/path" in the proxy's log. */
static int
metrics_port(const struct proxy *px)
{
	char line[512];

	ck_assert_msg(wait_file_contains(px->proc.err_path, "metrics on ", 2000,
	    line, sizeof(line)) == 0, "no \"metrics on\" line in the log");
	const char *p = strstr(line, "metrics on ") + strlen("metrics on ");
	const char *colon = NULL;
	for (; *p != '\0' && *p != '/' && *p != ' '; p++)
		if (*p == ':')
			colon = p;
	ck_assert_msg(colon != NULL, "no port in: %s", line);
	return atoi(colon + 1);
}

static int
status_of_get(int port, const char *path)
{
	struct response r;
	int status = http_get(port, path, &r, 5000);
	response_free(&r);
	return status;
}

START_TEST(separate_metrics_listener)
{
	struct proxy px;
	struct response r;
	struct expo e;

	start(&px, "[metrics]\nlisten = 127.0.0.1:0\n");
	int mport = metrics_port(&px);
	ck_assert_int_ne(mport, px.port);

	plain_ok(px.port, "sep-1", 3);
	/* The metrics are there, with what the main listener served ... */
	scrape_at(mport, "/metrics", &e);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"false\","
	    "backend=\"mock\",status=\"200\"", 1);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"mock\"", 3);
	expo_free(&e);
	/* ... and not on the main listener, which proxies the rest ... */
	ck_assert_int_eq(status_of_get(px.port, "/metrics"), 404);
	plain_ok(px.port, "sep-2", 1);
	/* ... while the metrics address serves nothing else. */
	post(mport, "/v1/chat/completions", "", plain_body, &r);
	ck_assert_int_eq(r.status, 404);
	response_free(&r);
	ck_assert_int_eq(status_of_get(mport, "/no/such/thing"), 404);
	proxy_stop(&px);
}
END_TEST

START_TEST(disabled_metrics_are_404)
{
	struct proxy px;

	start(&px, "[metrics]\nenabled = false\n");
	ck_assert_int_eq(status_of_get(px.port, "/metrics"), 404);
	plain_ok(px.port, "off-1", 1);
	ck_assert_int_eq(status_of_get(px.port, "/metrics"), 404);
	proxy_stop(&px);
}
END_TEST

START_TEST(custom_metrics_path)
{
	struct proxy px;
	struct response r;
	struct expo e;

	start(&px, "[metrics]\npath = /internal/prometheus\n");
	plain_ok(px.port, "path-1", 2);
	scrape_at(px.port, "/internal/prometheus", &e);
	ASSERT_VALUE(&e, "llmproxy_usage_tokens_total",
	    "type=\"completion\",backend=\"mock\"", 2);
	expo_free(&e);
	ck_assert_int_eq(status_of_get(px.port, "/metrics"), 404);
	/* GET and HEAD only. */
	post(px.port, "/internal/prometheus", "", "{}", &r);
	ck_assert_int_eq(r.status, 405);
	response_free(&r);
	/* A query string does not change the path. */
	scrape_at(px.port, "/internal/prometheus?x=1", &e);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 8. label values never come from requests ---------------------------------------------- */

START_TEST(label_values_come_from_the_config_only)
{
	struct proxy px;
	struct response r;
	struct expo e;

	start(&px, "");
	for (int i = 0; i < 5; i++) {
		char path[64], body[128], h[128];
		snprintf(path, sizeof(path), "/v1/zz-path-%d?q=zz-query", i);
		snprintf(body, sizeof(body), "{\"model\":\"zz-model-%d\"}", i);
		snprintf(h, sizeof(h), "X-Request-Id: zz-id-%d\r\n", i);
		post(px.port, path, h, body, &r);
		response_free(&r);
	}
	get(px.port, "/zz-local", &r);
	response_free(&r);
	scrape(&px, &e);
	ck_assert_msg(strstr(e.text, "zz-") == NULL, "request data in a label:\n%s",
	    e.text);
	ck_assert_msg(sum(&e, "llmproxy_requests_total", "path=\"other\","
	    "backend=\"mock\"") == 5, "%s",
	    family_text(&e, "llmproxy_requests_total"));
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/* ---- 9. the access log ------------------------------------------------------------------------ */

/* A logfmt field (key=value or key="quoted value") of line into out. */
static int
logfmt_field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[80];
	size_t o = 0;

	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(line, pat);
	if (p == NULL)
		return 0;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (o < cap - 1)
				out[o++] = *p;
		}
	} else {
		while (*p != '\0' && *p != ' ' && o < cap - 1)
			out[o++] = *p++;
	}
	out[o] = '\0';
	return 1;
}

/* A tiny JSON parser: validates, and finds top-level members. */
struct jp {
	const char *p;
};

static int j_value(struct jp *j);

static void
j_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int
j_string(struct jp *j)
{
	if (*j->p != '"')
		return 0;
	for (j->p++;; j->p++) {
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			return 1;
		}
		if (c < 0x20)
			return 0;       /* also the end of the text */
		if (c == '\\') {
			j->p++;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)j->p[i]))
						return 0;
				j->p += 4;
			} else if (strchr("\"\\/bfnrt", *j->p) == NULL ||
			    *j->p == '\0') {
				return 0;
			}
		}
	}
}

static int
j_number(struct jp *j)
{
	const char *p = j->p;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return 0;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	j->p = p;
	return 1;
}

static int
j_members(struct jp *j, char close, int object)
{
	j->p++;
	j_ws(j);
	if (*j->p == close) {
		j->p++;
		return 1;
	}
	for (;;) {
		j_ws(j);
		if (object) {
			if (!j_string(j))
				return 0;
			j_ws(j);
			if (*j->p++ != ':')
				return 0;
		}
		if (!j_value(j))
			return 0;
		j_ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close)
			return 0;
		return 1;
	}
}

static int
j_value(struct jp *j)
{
	j_ws(j);
	switch (*j->p) {
	case '{':
		return j_members(j, '}', 1);
	case '[':
		return j_members(j, ']', 0);
	case '"':
		return j_string(j);
	case 't':
		return strncmp(j->p, "true", 4) == 0 ? (j->p += 4, 1) : 0;
	case 'f':
		return strncmp(j->p, "false", 5) == 0 ? (j->p += 5, 1) : 0;
	case 'n':
		return strncmp(j->p, "null", 4) == 0 ? (j->p += 4, 1) : 0;
	default:
		return j_number(j);
	}
}

/* Whether line is exactly one JSON object. */
static int
json_object_line(const char *line)
{
	struct jp j = { line };
	j_ws(&j);
	if (*j.p != '{' || !j_value(&j))
		return 0;
	j_ws(&j);
	return *j.p == '\0';
}

/* A top-level member of a JSON object line: a string's contents (escapes
 * kept as they are), or a scalar's text.  Returns 1 if found. */
static int
json_field(const char *line, const char *key, char *out, size_t cap)
{
	struct jp j = { line };
	size_t klen = strlen(key);

	j_ws(&j);
	if (*j.p++ != '{')
		return 0;
	for (;;) {
		j_ws(&j);
		const char *k = j.p;
		if (!j_string(&j))
			return 0;
		int hit = (size_t)(j.p - k) == klen + 2 &&
		    strncmp(k + 1, key, klen) == 0;
		j_ws(&j);
		if (*j.p++ != ':')
			return 0;
		j_ws(&j);
		const char *v = j.p;
		if (!j_value(&j))
			return 0;
		if (hit) {
			size_t len = (size_t)(j.p - v);
			if (*v == '"') {
				v++;
				len -= 2;
			}
			if (len >= cap)
				len = cap - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return 1;
		}
		j_ws(&j);
		if (*j.p++ != ',')
			return 0;
	}
}

typedef int (*field_fn)(const char *, const char *, char *, size_t);

static void
assert_field(field_fn f, const char *line, const char *key, const char *want)
{
	char got[512];
	ck_assert_msg(f(line, key, got, sizeof(got)), "no %s in: %s", key, line);
	ck_assert_msg(strcmp(got, want) == 0, "%s is \"%s\", want \"%s\" in: %s",
	    key, got, want, line);
}

/* What the access line of a streamed chat completion of 4 tokens says,
 * whatever the format; stream_true: how the format writes stream = true. */
static void
assert_access_line(field_fn f, const char *line, const char *id,
    const char *stream_true)
{
	char v[128];

	assert_field(f, line, "client_id", id);
	/* id is ours, as in the usage record: never the client's. */
	ck_assert(f(line, "id", v, sizeof(v)));
	ck_assert_msg(strlen(v) == 32 && strcmp(v, id) != 0, "id %s in: %s", v, line);
	assert_field(f, line, "model", "mock-model");
	assert_field(f, line, "completion_tokens", "4");
	char prompt[32];
	snprintf(prompt, sizeof(prompt), "%ld", mock_prompt_tokens(stream_body));
	assert_field(f, line, "prompt_tokens", prompt);
	assert_field(f, line, "status", "200");
	assert_field(f, line, "backend", "mock");
	assert_field(f, line, "method", "POST");
	assert_field(f, line, "path", "/v1/chat/completions");
	assert_field(f, line, "stream", stream_true);
	assert_field(f, line, "client", "127.0.0.1");
	ck_assert_msg(f(line, "ttft_ms", v, sizeof(v)) && atof(v) > 0,
	    "ttft_ms in: %s", line);
	ck_assert_msg(f(line, "duration_ms", v, sizeof(v)) && atof(v) >= 60,
	    "duration_ms (4 tokens 20 ms apart) in: %s", line);
	/* The backend's finish reason, kept past proxy()'s return (it once
	 * pointed into proxy()'s stack frame, and the line showed whatever
	 * overwrote it). */
	assert_field(f, line, "finish", "stop");
}

/* The access line's request: a secret in Authorization that must never
 * be logged. */
static void
logged_stream(int port, const char *id)
{
	char h[256];
	struct response r;

	snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Tokens: 4\r\n"
	    "X-Mock-Delay-Ms: 20\r\nAuthorization: Bearer sk-e2e-SECRET-42\r\n",
	    id);
	post(port, "/v1/chat/completions", h, stream_body, &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
}

/* The whole of a file (NUL-terminated; free it). */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(access_log_text)
{
	struct proxy px;
	char line[4096];

	start(&px, "");
	logged_stream(px.port, "acc-text-1");
	ck_assert_msg(wait_file_contains(px.proc.err_path, "id=acc-text-1 ", 3000,
	    line, sizeof(line)) == 0, "no access line for acc-text-1");
	assert_access_line(logfmt_field, line, "acc-text-1", "1");
	char *log = slurp(px.proc.err_path);
	ck_assert_msg(strstr(log, "SECRET") == NULL, "a credential in the log:\n%s",
	    log);
	/* Exactly one line for it. */
	ck_assert_ptr_null(strstr(strstr(log, "id=acc-text-1 ") + 1,
	    "id=acc-text-1 "));
	free(log);
	proxy_stop(&px);
}
END_TEST

START_TEST(access_log_json)
{
	struct proxy px;
	char line[4096];

	start(&px, "[log]\nformat = json\n");
	logged_stream(px.port, "acc-json-1");
	ck_assert_msg(wait_file_contains(px.proc.err_path, "\"acc-json-1\"", 3000,
	    line, sizeof(line)) == 0, "no access line for acc-json-1");
	assert_access_line(json_field, line, "acc-json-1", "true");
	/* A model name that needs escaping stays one valid line. */
	struct response r;
	post(px.port, "/v1/chat/completions", "X-Request-Id: acc-json-2\r\n",
	    "{\"model\":\"we\\\"ird\\\\mo{del}\\u00e9\",\"messages\":[]}", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	ck_assert_msg(wait_file_contains(px.proc.err_path, "\"acc-json-2\"", 3000,
	    line, sizeof(line)) == 0, "no access line for acc-json-2");
	ck_assert_msg(json_object_line(line), "not a JSON object: %s", line);
	proxy_signal(&px, SIGTERM);
	ck_assert_int_eq(proxy_wait_exit(&px, 10000), 0);

	/* Every line the proxy wrote, from its start to its exit, is one JSON
	 * object. */
	char *log = slurp(px.proc.err_path);
	ck_assert_msg(strstr(log, "SECRET") == NULL, "a credential in the log");
	size_t lines = 0;
	for (char *p = log, *nl; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		ck_assert_msg(nl != NULL, "a last line without its LF: %s", p);
		*nl = '\0';
		ck_assert_msg(json_object_line(p), "not a JSON object: %s", p);
		lines++;
	}
	free(log);
	ck_assert_uint_ge(lines, 3);
	proxy_stop(&px);
}
END_TEST

START_TEST(access_log_to_its_own_file)
{
	struct proxy px;
	char dir[128], extra[512], file[256], line[4096];

	make_temp_dir(dir, sizeof(dir), "access");
	snprintf(file, sizeof(file), "%s/access.log", dir);
	snprintf(extra, sizeof(extra), "[log]\naccess_file = %s\n", file);
	start(&px, extra);
	logged_stream(px.port, "acc-file-1");
	ck_assert_msg(wait_file_contains(file, "id=acc-file-1 ", 3000, line,
	    sizeof(line)) == 0, "no access line for acc-file-1 in %s", file);
	proxy_signal(&px, SIGTERM);
	ck_assert_int_eq(proxy_wait_exit(&px, 10000), 0);
	/* Not on stderr, which still has the rest of the log. */
	char *log = slurp(px.proc.err_path);
	ck_assert_msg(strstr(log, "acc-file-1") == NULL, "the access line went to "
	    "stderr too:\n%s", log);
	ck_assert_ptr_nonnull(strstr(log, "listening on"));
	free(log);
	proxy_stop(&px);
	assert_access_line(logfmt_field, line, "acc-file-1", "1");
	rm_rf_dir(dir);
}
END_TEST

/* ---- 10. a real Prometheus --------------------------------------------------------------------- */

struct prom {
	struct proc proc;
	int port;
	char dir[128];
};

static void
prom_start(struct prom *pm, int target_port)
{
	char path[256], line[1024], cfgarg[320], tsdbarg[320];

	memset(pm, 0, sizeof(*pm));
	make_temp_dir(pm->dir, sizeof(pm->dir), "prometheus");
	snprintf(path, sizeof(path), "%s/prometheus.yml", pm->dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	/* One target, the proxy; nothing else to reach. */
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
	    "  evaluation_interval: 1s\n"
	    "scrape_configs:\n  - job_name: llmproxy\n    metrics_path: /metrics\n"
	    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
	    target_port);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", path);
	snprintf(tsdbarg, sizeof(tsdbarg), "--storage.tsdb.path=%s/data", pm->dir);
	char *argv[] = { tool("PROMETHEUS_BIN", default_prometheus), cfgarg,
	    tsdbarg, "--web.listen-address=127.0.0.1:0", "--log.level=info",
	    NULL };
	snprintf(pm->proc.out_path, sizeof(pm->proc.out_path), "%s/out", pm->dir);
	snprintf(pm->proc.err_path, sizeof(pm->proc.err_path), "%s/err", pm->dir);
	proc_spawn(&pm->proc, argv);
	/* It logs the port it got: msg="Listening on" address=127.0.0.1:N */
	if (wait_file_contains(pm->proc.err_path, "msg=\"Listening on\" address=",
	    10000, line, sizeof(line)) != 0) {
		char *log = slurp(pm->proc.err_path);
		ck_abort_msg("prometheus did not start:\n%s", log);
	}
	const char *a = strstr(line, "address=") + strlen("address=");
	ck_assert_msg(strncmp(a, "127.0.0.1:", 10) == 0, "prometheus listens on "
	    "%s, not on loopback", a);
	pm->port = atoi(a + 10);
	ck_assert_int_gt(pm->port, 0);
	ck_assert(wait_file_contains(pm->proc.err_path,
	    "Server is ready to receive web requests", 10000, NULL, 0) == 0);
}

static void
prom_stop(struct prom *pm)
{
	proc_stop(&pm->proc);
	rm_rf_dir(pm->dir);
}

static void
url_encode(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s != '\0' && o + 4 < cap; s++) {
		if (isalnum((unsigned char)*s) || strchr("-_.~", *s) != NULL)
			out[o++] = *s;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X",
			    (unsigned char)*s);
	}
	out[o] = '\0';
}

/* The value of an instant query that gives one sample, or NAN when it
 * gives none (yet). */
static double
prom_query(const struct prom *pm, const char *promql)
{
	char enc[1024], path[1200];
	struct response r;

	url_encode(enc, sizeof(enc), promql);
	snprintf(path, sizeof(path), "/api/v1/query?query=%s", enc);
	ck_assert_msg(http_get(pm->port, path, &r, 5000) == 200,
	    "prometheus: %s: %d %s", promql, r.status, r.body);
	ck_assert_msg(strstr(r.body, "\"status\":\"success\"") != NULL, "%s: %s",
	    promql, r.body);
	double v = NAN;
	const char *val = strstr(r.body, "\"value\":[");
	if (val != NULL) {
		const char *q = strstr(val, ",\"");
		ck_assert_ptr_nonnull(q);
		v = strtod(q + 2, NULL);
		ck_assert_msg(strstr(q, "\"value\":[") == NULL, "%s gives more than "
		    "one sample: %s", promql, r.body);
	}
	response_free(&r);
	return v;
}

/* Queries until the value is `want`. */
static void
prom_wait(const struct prom *pm, const char *promql, double want,
    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	double v;

	while ((v = prom_query(pm, promql)) != want) {
		ck_assert_msg(now_ms() < deadline, "%s is %g after %d ms, want %g",
		    promql, v, timeout_ms, want);
		pause_ms(50);
	}
}

START_TEST(prometheus_scrapes_and_answers_promql)
{
	struct proxy px;
	struct prom pm;
	struct response r;
	char want[128];

	start(&px, "");
	prom_start(&pm, px.port);

	/* The proxy is its one target, and it is up (the target shows once
	 * Prometheus' discovery has run, then "up" after a scrape). */
	snprintf(want, sizeof(want), "\"scrapeUrl\":\"http://127.0.0.1:%d/metrics\"",
	    px.port);
	int64_t deadline = now_ms() + 15000;
	for (;;) {
		ck_assert_int_eq(http_get(pm.port, "/api/v1/targets?state=active",
		    &r, 5000), 200);
		const char *url = strstr(r.body, "\"scrapeUrl\"");
		ck_assert_msg(url == NULL || strstr(url + 1, "\"scrapeUrl\"") == NULL,
		    "more than one target: %s", r.body);
		ck_assert_msg(url == NULL || strstr(r.body, want) != NULL,
		    "a target that is not the proxy: %s", r.body);
		int up = url != NULL && strstr(r.body, "\"health\":\"up\"") != NULL;
		ck_assert_msg(up || now_ms() < deadline, "the target is not up "
		    "after 15 s: %s", r.body);
		response_free(&r);
		if (up)
			break;
		pause_ms(50);
	}
	prom_wait(&pm, "up{job=\"llmproxy\"}", 1, 5000);

	for (int i = 0; i < 4; i++) {
		char id[32];
		snprintf(id, sizeof(id), "prom-s%d", i);
		stream_ok(px.port, id, 3);
	}
	for (int i = 0; i < 3; i++) {
		char id[32];
		snprintf(id, sizeof(id), "prom-p%d", i);
		plain_ok(px.port, id, 2);
	}
	/* What the proxy served, as PromQL sees it on the next scrapes (and
	 * nothing more: the scrapes are not requests). */
	prom_wait(&pm, "sum(llmproxy_requests_total)", 7, 15000);
	prom_wait(&pm, "sum(llmproxy_usage_tokens_total{type=\"completion\"})",
	    4 * 3 + 3 * 2, 5000);
	prom_wait(&pm, "sum by (backend) (llmproxy_ttft_seconds_count)", 7, 5000);
	prom_wait(&pm, "llmproxy_backend_up{backend=\"mock\"}", 1, 5000);
	/* The dashboard's kind of query evaluates to a number. */
	double p95 = prom_query(&pm, "histogram_quantile(0.95, sum by (le) "
	    "(llmproxy_ttft_seconds_bucket))");
	ck_assert_msg(p95 > 0 && p95 < 10, "ttft p95 %g", p95);

	prom_stop(&pm);
	proxy_stop(&px);
}
END_TEST

/* ---- 11. what the numbers mean ------------------------------------------------------------------ */

/*
 * A scrape (and a load balancer's GET /health) is not traffic: an idle
 * proxy shows 0 in flight and no requests, however often it is scraped, so
 * sum(llmproxy_requests_total) counts clients alone.
 */
START_TEST(a_scrape_is_not_a_request)
{
	struct proxy px;
	struct expo e;

	start(&px, "");
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(status_of_get(px.port, "/health"), 200);
		scrape(&px, &e);
		ASSERT_VALUE(&e, "llmproxy_in_flight_requests", "", 0);
		ck_assert_msg(sum(&e, "llmproxy_requests_total", "") == 0,
		    "scrapes or probes counted as requests:\n%s",
		    family_text(&e, "llmproxy_requests_total"));
		ck_assert_msg(strstr(e.text, "llmproxy_request_duration_seconds_count")
		    == NULL, "scrapes or probes timed as requests:\n%s",
		    family_text(&e, "llmproxy_request_duration_seconds"));
		expo_free(&e);
	}
	/* A request is counted; the scrapes around it still are not. */
	plain_ok(px.port, "between-scrapes", 1);
	scrape(&px, &e);
	ck_assert_msg(sum(&e, "llmproxy_requests_total", "") == 1, "%s",
	    family_text(&e, "llmproxy_requests_total"));
	ASSERT_VALUE(&e, "llmproxy_in_flight_requests", "", 0);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/*
 * One inter-token gap per event the client gets, also when events reach the
 * proxy together (a fast backend, a coalescing network) and leave in one
 * write: the first after the gap since the last write, the others at 0.
 */
START_TEST(inter_token_gaps_for_coalesced_events)
{
	struct proxy px;
	struct response r;
	struct expo e;

	start(&px, "");
	post(px.port, "/v1/chat/completions", "X-Mock-Tokens: 6\r\n"
	    "X-Mock-Chunking: coalesce\r\n", stream_body, &r);
	ck_assert_int_eq(r.status, 200);
	size_t events = r.nevents;
	response_free(&r);
	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_inter_token_seconds_count", "backend=\"mock\"",
	    events - 1);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

/*
 * The stream label says what the client asked for ("stream": true), not
 * whether an event stream came back: a streamed request that failed before
 * its head (502) or got a JSON 500 is still stream="true", so the error
 * ratio of streamed requests sees its errors.
 */
START_TEST(a_failed_stream_is_still_a_stream)
{
	struct proxy px;
	struct response r;
	struct expo e;

	start(&px, "");
	post(px.port, "/v1/chat/completions", "X-Mock-Fail: close-before-head\r\n",
	    stream_body, &r);
	ck_assert_int_eq(r.status, 502);
	response_free(&r);
	post(px.port, "/v1/chat/completions", "X-Mock-Fail: 500\r\n",
	    stream_body, &r);
	ck_assert_int_eq(r.status, 500);
	response_free(&r);
	scrape(&px, &e);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"true\","
	    "backend=\"mock\",status=\"502\"", 1);
	ASSERT_VALUE(&e, "llmproxy_requests_total", CHAT ",stream=\"true\","
	    "backend=\"mock\",status=\"500\"", 1);
	expo_free(&e);
	proxy_stop(&px);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("e2e_metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, every_family_with_the_right_values);
	tcase_add_test(tc, promtool_finds_nothing_to_say);
	tcase_add_test(tc, latency_ms_only_with_llmproxy_compat);
	tcase_add_test(tc, client_abort_is_counted_and_in_flight_returns);
	tcase_add_test(tc, retries_and_backend_up_per_backend);
	tcase_add_test(tc, webhook_failures_queue_and_spool);
	tcase_add_test(tc, separate_metrics_listener);
	tcase_add_test(tc, disabled_metrics_are_404);
	tcase_add_test(tc, custom_metrics_path);
	tcase_add_test(tc, label_values_come_from_the_config_only);
	tcase_add_test(tc, access_log_text);
	tcase_add_test(tc, access_log_json);
	tcase_add_test(tc, access_log_to_its_own_file);
	tcase_add_test(tc, prometheus_scrapes_and_answers_promql);
	tcase_add_test(tc, a_scrape_is_not_a_request);
	tcase_add_test(tc, inter_token_gaps_for_coalesced_events);
	tcase_add_test(tc, a_failed_stream_is_still_a_stream);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
