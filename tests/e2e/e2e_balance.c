/*
 * e2e_balance.c — several backends behind the real llmproxy binary: how
 * requests are spread (round robin by weight, least connections with long
 * streams open), routing by model, active health checks, passive ejection,
 * failover before the first byte (never after it), max_connections, and a
 * fast 503 when nothing is left.
 *
 * Every test starts its own mocks and proxy (the configs differ).  Who served
 * what is read from each mock: the test's own requests by their X-Request-Id
 * (served()), everything but /health probes from /mock/stats "requests"
 * (traffic()), streams in progress from "active"; what the proxy decided about
 * a backend's health is read from its log.  Waits have deadlines; a pause in
 * a loop only paces requests.
 */
#define _GNU_SOURCE     /* memmem */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

#define NMOCK 4

static struct mock mocks[NMOCK];
static struct proxy px;

static void
setup(void)
{
	memset(mocks, 0, sizeof(mocks));
	memset(&px, 0, sizeof(px));
}

static void
teardown(void)
{
	proxy_stop(&px);
	for (size_t i = 0; i < NMOCK; i++)
		mock_stop(&mocks[i]);
}

/* A short pause inside a wait loop that has its own deadline. */
static void
pause_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- the proxy's configuration ---------------------------------------------------- */

/* Retries on, with small pauses (10 ms, then 20: max_wait, 2 s, caps only
 * the growth of a few pauses here, and a Retry-After). */
#define RETRY "[routing.retry]\nenabled = true\nmax_retries = 2\n" \
	"initial_wait = 10ms\nmax_wait = 2s\n"
#define RETRY_OFF "[routing.retry]\nenabled = false\n"
/* No active probes (passive ejection stays at its default unless said). */
#define NO_HC "[health_check]\nenabled = false\n"
/* Probes every 100 ms; one failed probe takes a backend out, one good one
 * brings it back. */
#define FAST_HC "[health_check]\nenabled = true\ninterval = 100ms\n" \
	"timeout = 100ms\nunhealthy_threshold = 1\nhealthy_threshold = 1\n" \
	"eject_cooldown = 200ms\n"

/*
 * Starts the proxy with `extra` (its own sections) and n backends, b<i> at
 * 127.0.0.1:ports[i] with the lines be[i] (NULL or "" for none).
 */
static void
start_proxy_at(size_t n, const int *ports, const char *const *be,
    const char *extra)
{
	char cfg[8192];
	size_t len = 0;

	len += (size_t)snprintf(cfg + len, sizeof(cfg) - len,
	    "[server]\nlisten = 127.0.0.1:0\n\n%s\n", extra);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(len, sizeof(cfg));
		len += (size_t)snprintf(cfg + len, sizeof(cfg) - len,
		    "[backends.b%zu]\nname = b%zu\nurl = http://127.0.0.1:%d\n%s\n",
		    i, i, ports[i], be != NULL && be[i] != NULL ? be[i] : "");
	}
	ck_assert_uint_lt(len, sizeof(cfg));
	proxy_start_ok(&px, cfg);
}

/* Starts n mocks and the proxy in front of them. */
static void
start_all(size_t n, const char *const *be, const char *extra)
{
	int ports[NMOCK] = { 0 };

	ck_assert_uint_le(n, NMOCK);
	for (size_t i = 0; i < n; i++) {
		mock_start(&mocks[i]);
		ports[i] = mocks[i].port;
	}
	start_proxy_at(n, ports, be, extra);
}

/* ---- requests ----------------------------------------------------------------------- */

/*
 * The requests a test sends carry this X-Request-Id (unless they name their
 * own), so that a mock can count them apart from what the proxy asks on its
 * own (probes of a health path that is not /health, and GET /v1/models from
 * the health thread both count as traffic at the mock).
 */
#define TAG "e2e-balance"

/*
 * Sends a raw request (with "Connection: close") to the proxy, reads the
 * answer, and waits until the proxy has closed the connection: it closes
 * only after it is done with the request (no longer in flight on its
 * backend, its outcome noted), so the next request sees that.
 */
static void
exchange_closed(const char *req, struct response *r)
{
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert_msg(read_response(fd, r, 10000, 0) == 0,
	    "no answer from the proxy");
	ck_assert_msg(r->eof || wait_closed(fd, 3000) >= 0,
	    "the proxy kept a Connection: close connection open");
	close(fd);
}

/* A chat completion for `model` (NULL: mock-model) through the proxy, on a
 * new connection; extra header lines in `headers` (may be ""). */
static void
chat(const char *model, int stream, const char *headers, struct response *r)
{
	char body[512], req[4096], hdrs[1024];

	snprintf(body, sizeof(body), "{\"model\":\"%s\",%s\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"hello\"}]}",
	    model != NULL ? model : "mock-model", stream ? "\"stream\":true," : "");
	snprintf(hdrs, sizeof(hdrs), "Connection: close\r\n%s%s",
	    strstr(headers, "X-Request-Id:") ? "" : "X-Request-Id: " TAG "\r\n",
	    headers);
	chat_request(req, sizeof(req), hdrs, body);
	exchange_closed(req, r);
}

/* The whole answer (`tokens` tokens) arrived, cleanly ended. */
static void
assert_full(const struct response *r, int stream, int tokens)
{
	ck_assert_msg(r->status == 200, "status %d: %s", r->status, r->body);
	ck_assert_msg(r->complete, "the answer did not end cleanly: %s", r->body);
	if (!stream) {
		char want[512] = "\"content\":\"";
		for (int i = 1; i <= tokens; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want),
			    " tok%d", i);
		strcat(want, "\"");
		ck_assert_msg(strstr(r->body, want) != NULL, "no %s in %s", want,
		    r->body);
		return;
	}
	for (int i = 1; i <= tokens; i++) {
		char want[64];
		snprintf(want, sizeof(want), "\"content\":\" tok%d\"", i);
		ck_assert_msg(strstr(r->body, want) != NULL, "no %s in %s", want,
		    r->body);
	}
	ck_assert_msg(strstr(r->body, "data: [DONE]") != NULL, "no [DONE]: %s",
	    r->body);
}

/* One non-streamed chat completion that must succeed in full. */
static void
chat_ok(const char *model)
{
	struct response r;
	chat(model, 0, "", &r);
	assert_full(&r, 0, 5);
	response_free(&r);
}

/* The proxy's own error: status, the OpenAI JSON shape, and `code` (a
 * fragment such as "\"code\":\"model_not_found\"", or NULL). */
static void
assert_error(const struct response *r, int status, const char *code)
{
	char v[128];

	ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status,
	    status, r->body);
	ck_assert(response_header(r, "Content-Type", v, sizeof(v)));
	ck_assert_msg(strncmp(v, "application/json", 16) == 0, "%s", v);
	ck_assert_msg(strncmp(r->body, "{\"error\":{", 10) == 0 &&
	    strstr(r->body, "\"message\":\"") != NULL &&
	    strstr(r->body, "\"type\":\"") != NULL &&
	    strstr(r->body, "\"code\":") != NULL, "not the OpenAI error shape: %s",
	    r->body);
	if (code != NULL)
		ck_assert_msg(strstr(r->body, code) != NULL, "no %s in %s", code,
		    r->body);
}

/* ---- what the mocks saw -------------------------------------------------------------- */

/* Requests with X-Request-Id `id` mock i received. */
static long
served_id(size_t i, const char *id)
{
	char path[256], body[4096];

	snprintf(path, sizeof(path), "/mock/request?id=%s", id);
	int status = mock_get(&mocks[i], path, body, sizeof(body));
	ck_assert_msg(status == 200 || status == 404, "mock %zu: %d", i, status);
	return status == 404 ? 0 : json_int(body, "matches");
}

/* The test's requests mock i received. */
static long
served(size_t i)
{
	return served_id(i, TAG);
}

/* Everything mock i received but health probes at /health (its /mock/stats
 * "requests"): for "nobody was asked". */
static long
traffic(size_t i)
{
	long n = mock_stat(&mocks[i], "requests");
	ck_assert_msg(n >= 0, "no stats from mock %zu", i);
	return n;
}

static long
active(size_t i)
{
	long n = mock_stat(&mocks[i], "active");
	ck_assert_msg(n >= 0, "no stats from mock %zu", i);
	return n;
}

static void
snapshot(size_t n, long *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = served(i);
}

/* Opens a long stream through the proxy and returns the client socket; the
 * stream runs until the socket is closed. */
static int
open_stream(const char *id)
{
	char headers[256], req[4096];
	const char *body = "{\"model\":\"mock-model\",\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

	snprintf(headers, sizeof(headers), "X-Request-Id: %s\r\n"
	    "X-Mock-Tokens: 200\r\nX-Mock-Delay-Ms: 50\r\n", id);
	chat_request(req, sizeof(req), headers, body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	return fd;
}

/* Which of the first n mocks runs request `id`: waits until one does. */
static size_t
running_at(size_t n, const char *id)
{
	int64_t deadline = now_ms() + 5000;
	char path[256], body[4096], state[64];

	snprintf(path, sizeof(path), "/mock/request?id=%s", id);
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (mock_get(&mocks[i], path, body, sizeof(body)) == 200 &&
			    json_str(body, "state", state, sizeof(state)) &&
			    strcmp(state, "running") == 0)
				return i;
		}
		ck_assert_msg(now_ms() < deadline, "stream %s runs nowhere", id);
		pause_ms(2);
	}
}

/* Waits until no mock has a request in progress. */
static void
wait_all_idle(size_t n)
{
	int64_t deadline = now_ms() + 5000;

	for (size_t i = 0; i < n; i++) {
		while (active(i) != 0) {
			ck_assert_msg(now_ms() < deadline,
			    "mock %zu still has %ld requests in progress", i, active(i));
			pause_ms(5);
		}
	}
}

/* ---- what the proxy said ----------------------------------------------------------- */

/* How often needle occurs in the proxy's log so far. */
static size_t
log_count(const char *needle)
{
	static char buf[1 << 20];
	size_t n = 0;

	FILE *f = fopen(px.proc.err_path, "r");
	if (f == NULL)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void
wait_log(const char *needle, int timeout_ms)
{
	ck_assert_msg(wait_file_contains(px.proc.err_path, needle, timeout_ms,
	    NULL, 0) == 0, "the proxy never logged \"%s\"", needle);
}

/* The health thread's words for a backend's transitions (health.c). */
static void
down_line(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "backend %s is down", name);
}

static void
up_line(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "backend %s is up", name);
}

/* ---- 1. round robin by weight ----------------------------------------------------- */

static const struct {
	const char *strategy;
	int w[3];
} rr_cases[] = {
	{ "round_robin", { 1, 1, 1 } },
	{ "round_robin", { 5, 3, 2 } },
	{ "weighted", { 5, 3, 2 } },
	{ "weighted", { 1, 1, 1 } },
};

START_TEST(round_robin_spreads_by_weight)
{
	const int *w = rr_cases[_i].w;
	char extra[512], be[3][32];
	const char *bes[3] = { be[0], be[1], be[2] };
	int seq[30], sum = w[0] + w[1] + w[2];
	long before[3], after[3];

	for (size_t i = 0; i < 3; i++)
		snprintf(be[i], sizeof(be[i]), "weight = %d\n", w[i]);
	snprintf(extra, sizeof(extra), "[routing]\nload_balance = %s\n" NO_HC
	    RETRY_OFF, rr_cases[_i].strategy);
	start_all(3, bes, extra);

	/* Who served each request, in order. */
	snapshot(3, before);
	for (int k = 0; k < 30; k++) {
		chat_ok(NULL);
		snapshot(3, after);
		seq[k] = -1;
		for (int i = 0; i < 3; i++) {
			long d = after[i] - before[i];
			ck_assert_msg(d == 0 || (d == 1 && seq[k] < 0),
			    "request %d reached more than one backend", k);
			if (d == 1)
				seq[k] = i;
			before[i] = after[i];
		}
		ck_assert_msg(seq[k] >= 0, "request %d reached no backend", k);
	}
	/* Exact shares: 30 requests are 30 / sum whole rounds. */
	for (int i = 0; i < 3; i++)
		ck_assert_msg(served((size_t)i) == 30 * w[i] / sum,
		    "%s %d:%d:%d: b%d served %ld of 30, want %d",
		    rr_cases[_i].strategy, w[0], w[1], w[2], i, served((size_t)i),
		    30 * w[i] / sum);
	/* And every round is exact too, interleaved: smooth, never a backend's
	 * whole share in one run. */
	for (int start = 0; start < 30; start += sum) {
		int got[3] = { 0, 0, 0 };
		for (int k = start; k < start + sum; k++)
			got[seq[k]]++;
		for (int i = 0; i < 3; i++)
			ck_assert_msg(got[i] == w[i], "round at %d: b%d served %d, want %d",
			    start, i, got[i], w[i]);
	}
	int run = 1, longest = 1;
	for (int k = 1; k < 30; k++) {
		run = seq[k] == seq[k - 1] ? run + 1 : 1;
		if (run > longest)
			longest = run;
	}
	ck_assert_msg(longest <= (w[0] == 1 ? 1 : 2),
	    "b%d served %d requests in a row: not interleaved", seq[0], longest);
}
END_TEST

/* ---- 2. least connections: streams count for as long as they run ------------------ */

START_TEST(least_connections_counts_open_streams)
{
	const char *extra = "[routing]\nload_balance = least_connections\n"
	    NO_HC RETRY_OFF;
	int fd[3];
	size_t at[3];
	long before[3];

	start_all(3, NULL, extra);

	/* Two streams run: the third backend has none. */
	fd[0] = open_stream("lc-1");
	at[0] = running_at(3, "lc-1");
	fd[1] = open_stream("lc-2");
	at[1] = running_at(3, "lc-2");
	ck_assert_msg(at[1] != at[0], "two streams on b%zu, b%zu is idle", at[0],
	    3 - at[0] - at[1]);
	size_t idle = 3 - at[0] - at[1];

	/* Short requests meanwhile all go to the idle one (round robin would
	 * give each backend one). */
	snapshot(3, before);
	for (int k = 0; k < 3; k++)
		chat_ok(NULL);
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(served(i) - before[i] == (i == idle ? 3 : 0),
		    "b%zu served %ld of the 3 short requests (streams on b%zu, b%zu)",
		    i, served(i) - before[i], at[0], at[1]);

	/* The third stream goes there too: one stream each. */
	fd[2] = open_stream("lc-3");
	at[2] = running_at(3, "lc-3");
	ck_assert_uint_eq(at[2], idle);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(active(i), 1);

	for (int k = 0; k < 3; k++)
		close(fd[k]);
	wait_all_idle(3);
}
END_TEST

START_TEST(least_connections_weights_break_ties)
{
	const char *extra = "[routing]\nload_balance = least_connections\n"
	    NO_HC RETRY_OFF;
	const char *be[3] = { "weight = 2\n", "weight = 1\n", "weight = 1\n" };
	int fd[5];
	size_t at[5];
	char id[16];

	start_all(3, be, extra);
	for (int k = 0; k < 5; k++) {
		snprintf(id, sizeof(id), "lcw-%d", k);
		fd[k] = open_stream(id);
		at[k] = running_at(3, id);
	}
	/* In flight per weight: 0 0 0 -> b0 (the larger weight breaks the tie);
	 * .5 0 0 -> b1 or b2; then the other; .5 1 1 -> b0; 1 1 1 -> b0. */
	ck_assert_msg(at[0] == 0, "first stream on b%zu, not the weight-2 b0",
	    at[0]);
	ck_assert_msg(at[1] != 0 && at[2] != 0 && at[1] != at[2],
	    "streams 2 and 3 on b%zu and b%zu", at[1], at[2]);
	ck_assert_msg(at[3] == 0, "4th stream on b%zu, not the weight-2 b0", at[3]);
	ck_assert_msg(at[4] == 0, "5th stream (a tie) on b%zu, not the weight-2 b0",
	    at[4]);
	ck_assert_int_eq(active(0), 3);
	ck_assert_int_eq(active(1), 1);
	ck_assert_int_eq(active(2), 1);

	for (int k = 0; k < 5; k++)
		close(fd[k]);
	wait_all_idle(3);
}
END_TEST

/* ---- 3. a backend dies mid-run: no request fails -------------------------------- */

START_TEST(killed_backend_costs_no_request)
{
	struct response r;
	long early = 0;

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n" RETRY FAST_HC);
	for (int k = 0; k < 36; k++) {
		if (k == 10) {
			early = served(1);
			ck_assert_int_gt(early, 0);
			mock_kill9(&mocks[1]);
		}
		chat(NULL, 1, "", &r);
		assert_full(&r, 1, 5);
		response_free(&r);
	}
	/* Each request was served exactly once. */
	ck_assert_int_eq(early + served(0) + served(2), 36);

	/* Back on the same port: it gets traffic again, and still nothing
	 * fails. */
	int port = mocks[1].port;
	mock_start_on(&mocks[1], port);
	int64_t deadline = now_ms() + 5000;
	while (served(1) == 0) {
		ck_assert_msg(now_ms() < deadline,
		    "the restarted backend got no traffic in 5 s");
		chat(NULL, 1, "", &r);
		assert_full(&r, 1, 5);
		response_free(&r);
	}
}
END_TEST

/* ---- 4. a backend whose /health says 503 gets no traffic ------------------------- */

START_TEST(unhealthy_backend_gets_no_traffic)
{
	char line[128];
	long before[3];

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n" RETRY_OFF
	    FAST_HC);
	mock_defaults(&mocks[1], "X-Mock-Health=503");
	down_line(line, sizeof(line), "b1");
	wait_log(line, 3000);

	snapshot(3, before);
	for (int k = 0; k < 20; k++)
		chat_ok(NULL);
	ck_assert_int_eq(served(1) - before[1], 0);
	ck_assert_int_eq(served(0) - before[0] + served(2) - before[2], 20);
	ck_assert_int_gt(served(0) - before[0], 0);
	ck_assert_int_gt(served(2) - before[2], 0);
	/* It was asked, at its health endpoint, never with a real request. */
	ck_assert_int_gt(mock_stat(&mocks[1], "health_requests"), 0);

	/* Healthy again: traffic again. */
	mock_defaults(&mocks[1], "");
	up_line(line, sizeof(line), "b1");
	wait_log(line, 3000);
	int64_t deadline = now_ms() + 3000;
	while (served(1) == before[1]) {
		ck_assert_msg(now_ms() < deadline,
		    "b1 got no traffic after it was healthy again");
		chat_ok(NULL);
	}
}
END_TEST

START_TEST(health_path_per_backend)
{
	char line[128];

	/* The common path does not exist on these backends (404), but b0 has
	 * its own that does: only b0 is up. */
	const char *be[2] = { "health_path = /health\n", NULL };
	start_all(2, be, "[routing]\nload_balance = round_robin\n" RETRY_OFF
	    "[health_check]\nenabled = true\ninterval = 100ms\ntimeout = 100ms\n"
	    "unhealthy_threshold = 1\nhealthy_threshold = 1\npath = /nothing-here\n");
	down_line(line, sizeof(line), "b1");
	wait_log(line, 3000);
	for (int k = 0; k < 6; k++)
		chat_ok(NULL);
	ck_assert_int_eq(served(0), 6);
	ck_assert_int_eq(served(1), 0);
	ck_assert_int_gt(mock_stat(&mocks[0], "health_requests"), 0);
	down_line(line, sizeof(line), "b0");
	ck_assert_msg(log_count(line) == 0, "b0 went down: its health_path "
	    "was not used");
}
END_TEST

/* ---- 5. routing by model ------------------------------------------------------------ */

/* How often `needle` occurs in s. */
static int
occurrences(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(model_routing_with_an_any_model_backend)
{
	const char *be[3] = { "models = alpha\n", "models = beta\n", NULL };
	long before[3];

	start_all(3, be, "[routing]\nload_balance = round_robin\n" NO_HC RETRY_OFF);
	/* What b2 (no models list) reports: mock-model, and alpha again — the
	 * union names each model once. */
	mock_defaults(&mocks[2], "X-Mock-Models=mock-model,alpha");

	snapshot(3, before);
	for (int k = 0; k < 10; k++)
		chat_ok("alpha");
	long a0 = served(0) - before[0], a1 = served(1) - before[1],
	    a2 = served(2) - before[2];
	ck_assert_msg(a1 == 0 && a0 + a2 == 10 && a0 > 0 && a2 > 0,
	    "alpha requests: b0 %ld, b1 %ld, b2 %ld", a0, a1, a2);

	snapshot(3, before);
	for (int k = 0; k < 10; k++)
		chat_ok("beta");
	a0 = served(0) - before[0], a1 = served(1) - before[1],
	a2 = served(2) - before[2];
	ck_assert_msg(a0 == 0 && a1 + a2 == 10 && a1 > 0 && a2 > 0,
	    "beta requests: b0 %ld, b1 %ld, b2 %ld", a0, a1, a2);

	/* A model nobody lists: the any-model backend. */
	snapshot(3, before);
	for (int k = 0; k < 4; k++)
		chat_ok("gamma");
	ck_assert_int_eq(served(0) - before[0], 0);
	ck_assert_int_eq(served(1) - before[1], 0);
	ck_assert_int_eq(served(2) - before[2], 4);

	/* GET /v1/models: the union, each once, in the OpenAI list shape. */
	struct response r;
	exchange_closed("GET /v1/models HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
	ck_assert(r.complete);
	char v[128];
	ck_assert(response_header(&r, "Content-Type", v, sizeof(v)));
	ck_assert_msg(strncmp(v, "application/json", 16) == 0, "%s", v);
	ck_assert_msg(strncmp(r.body, "{\"object\":\"list\",\"data\":[", 25) == 0,
	    "%s", r.body);
	ck_assert_msg(occurrences(r.body, "\"id\":\"alpha\"") == 1 &&
	    occurrences(r.body, "\"id\":\"beta\"") == 1 &&
	    occurrences(r.body, "\"id\":\"mock-model\"") == 1 &&
	    occurrences(r.body, "\"id\":") == 3 &&
	    occurrences(r.body, "\"object\":\"model\"") == 3, "%s", r.body);
	response_free(&r);
}
END_TEST

START_TEST(unknown_model_is_404_and_reaches_no_backend)
{
	const char *be[2] = { "models = alpha\n", "models = beta, delta\n" };
	struct response r;

	start_all(2, be, "[routing]\nload_balance = round_robin\n" NO_HC RETRY);
	for (int stream = 0; stream < 2; stream++) {
		chat("gamma", stream, "", &r);
		assert_error(&r, 404, "\"code\":\"model_not_found\"");
		ck_assert_msg(strstr(r.body, "gamma") != NULL, "%s", r.body);
		response_free(&r);
	}
	ck_assert_int_eq(traffic(0), 0);
	ck_assert_int_eq(traffic(1), 0);

	/* Listed models go where they are listed, on any /v1 path. */
	for (int k = 0; k < 4; k++)
		chat_ok("alpha");
	chat_ok("delta");
	ck_assert_int_eq(served(0), 4);
	ck_assert_int_eq(served(1), 1);
	const char *emb = "{\"model\":\"beta\",\"input\":\"hello\"}";
	char req[512];
	snprintf(req, sizeof(req), "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n"
	    "X-Request-Id: " TAG "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", strlen(emb), emb);
	exchange_closed(req, &r);
	ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
	response_free(&r);
	ck_assert_int_eq(served(0), 4);
	ck_assert_int_eq(served(1), 2);
}
END_TEST

/* ---- 6. everything down: a fast 503, never a hang ---------------------------------- */

START_TEST(all_down_by_health_checks_is_a_fast_503)
{
	int ports[2] = { dead_port(), dead_port() };
	char line[128];
	struct response r;

	start_proxy_at(2, ports, NULL, "[routing]\nload_balance = round_robin\n"
	    RETRY FAST_HC);
	down_line(line, sizeof(line), "b0");
	wait_log(line, 3000);
	down_line(line, sizeof(line), "b1");
	wait_log(line, 3000);
	for (int stream = 0; stream < 2; stream++) {
		int64_t t0 = now_us();
		chat(NULL, stream, "", &r);
		int64_t took = now_us() - t0;
		assert_error(&r, 503, NULL);
		ck_assert_msg(took < time_bound(50000), "503 after %lld us", (long long)took);
		response_free(&r);
	}
}
END_TEST

START_TEST(all_refused_without_health_checks_never_hangs)
{
	int ports[3] = { dead_port(), dead_port(), dead_port() };
	struct response r;

	start_proxy_at(3, ports, NULL, "[routing]\nload_balance = round_robin\n"
	    "[routing.retry]\nenabled = true\nmax_retries = 3\ninitial_wait = 10ms\n"
	    "max_wait = 50ms\n" NO_HC);
	for (int k = 0; k < 8; k++) {
		int64_t t0 = now_ms();
		chat(NULL, k % 2, "", &r);
		int64_t took = now_ms() - t0;
		ck_assert_msg(r.status == 502 || r.status == 503,
		    "request %d: status %d", k, r.status);
		assert_error(&r, r.status, NULL);
		ck_assert_msg(took < time_bound(1000), "request %d answered after %lld ms", k,
		    (long long)took);
		response_free(&r);
	}
}
END_TEST

/* ---- 7. max_connections --------------------------------------------------------------- */

START_TEST(max_connections_caps_each_backend)
{
	const char *one = "max_connections = 1\n";
	const char *be[3] = { one, one, one };
	int fd[3];
	size_t at[3];
	long before[3];
	struct response r;

	start_all(3, be, "[routing]\nload_balance = round_robin\n" NO_HC RETRY);

	/* A long stream holds one backend: the others take the rest (round
	 * robin alone would give it 2 of 6). */
	fd[0] = open_stream("mc-1");
	at[0] = running_at(3, "mc-1");
	snapshot(3, before);
	for (int k = 0; k < 6; k++)
		chat_ok(NULL);
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(i == at[0] ? served(i) == before[i] :
		    served(i) - before[i] >= 1 && served(i) - before[i] <= 5,
		    "b%zu served %ld of 6 (b%zu is full)", i, served(i) - before[i],
		    at[0]);
	ck_assert_int_eq(served(0) + served(1) + served(2),
	    before[0] + before[1] + before[2] + 6);

	/* One stream each: all full, 503 at once, and nobody is asked. */
	fd[1] = open_stream("mc-2");
	at[1] = running_at(3, "mc-2");
	fd[2] = open_stream("mc-3");
	at[2] = running_at(3, "mc-3");
	ck_assert_msg(at[0] != at[1] && at[1] != at[2] && at[0] != at[2],
	    "streams on b%zu, b%zu, b%zu", at[0], at[1], at[2]);
	for (size_t i = 0; i < 3; i++)
		before[i] = traffic(i);
	for (int stream = 0; stream < 2; stream++) {
		int64_t t0 = now_us();
		chat(NULL, stream, "", &r);
		int64_t took = now_us() - t0;
		assert_error(&r, 503, NULL);
		ck_assert_msg(took < time_bound(50000), "503 after %lld us", (long long)took);
		response_free(&r);
	}
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(traffic(i), before[i]);
		ck_assert_int_eq(active(i), 1);
	}
	snapshot(3, before);

	/* One stream ends: its backend takes requests again. */
	close(fd[0]);
	int64_t deadline = now_ms() + 3000;
	for (;;) {
		chat(NULL, 0, "", &r);
		if (r.status == 200)
			break;
		assert_error(&r, 503, NULL);
		response_free(&r);
		ck_assert_msg(now_ms() < deadline, "still 503 after a stream ended");
		pause_ms(5);
	}
	assert_full(&r, 0, 5);
	response_free(&r);
	ck_assert_int_eq(served(at[0]), before[at[0]] + 1);
	close(fd[1]);
	close(fd[2]);
	wait_all_idle(3);
}
END_TEST

/* ---- 8. failover before the first byte ------------------------------------------------ */

static const char *const early_failures[] = {
	"X-Mock-Fail=503",
	"X-Mock-Fail=429",              /* with Retry-After: 1 */
	"X-Mock-Fail=close-before-head",
	"X-Mock-Fail=reset-before-head",
	"X-Mock-Fail=garbage",
	"X-Mock-Fail=close-after-head", /* the head is held: nothing sent yet */
};

/* JSON string contents for s, as the mock escapes it (s has no control
 * bytes or backslashes; UTF-8 passes unchanged). */
static void
json_escape(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < cap; s++) {
		if (*s == '"')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
}

/* POST body to an echo path through the proxy; the answer must be the
 * request as it arrived at a backend: same method, target and body. */
static void
echo_ok(const char *body)
{
	static char req[16384], want[16384];
	char tail[64];
	struct response r;

	snprintf(req, sizeof(req), "POST /v1/responses?trip=1 HTTP/1.1\r\nHost: x\r\n"
	    "X-Request-Id: " TAG "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", strlen(body), body);
	exchange_closed(req, &r);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	ck_assert(r.complete);
	static const char start[] = "{\"method\":\"POST\",\"target\":"
	    "\"/v1/responses?trip=1\",";
	ck_assert_msg(strncmp(r.body, start, strlen(start)) == 0, "%s", r.body);
	snprintf(want, sizeof(want), "\"body\":\"");
	json_escape(want + strlen(want), sizeof(want) - strlen(want), body);
	snprintf(tail, sizeof(tail), "\",\"body_len\":%zu}", strlen(body));
	strcat(want, tail);
	ck_assert_msg(strstr(r.body, want) != NULL,
	    "the body did not arrive intact: %s", r.body);
	response_free(&r);
}

START_TEST(failover_before_first_byte)
{
	char body[4096], pad[2049];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"model\":\"mock-model\",\"input\":"
	    "\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 %d\",\"pad\":\"%s\"}", _i, pad);

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n" RETRY NO_HC);
	mock_defaults(&mocks[0], early_failures[_i]);

	/* Until the failing backend has been tried, then some more. */
	int64_t deadline = now_ms() + 5000;
	long sent = 0;
	while (served(0) == 0) {
		ck_assert_msg(now_ms() < deadline, "b0 was never tried");
		echo_ok(body);
		sent++;
	}
	int64_t seen = now_ms();
	for (int k = 0; k < 9; k++, sent++)
		echo_ok(body);
	if (strcmp(early_failures[_i], "X-Mock-Fail=429") == 0) {
		/* Retry-After: 1 — not asked again within that second. */
		ck_assert_msg(now_ms() - seen < 700, "too slow to tell");
		ck_assert_int_eq(served(0), 1);
	}
	/* The others served every request, each once. */
	ck_assert_int_eq(served(1) + served(2), sent);
}
END_TEST

/*
 * Retry-After is honoured within one request too: when every backend has
 * said 429 with Retry-After: 1, none is asked again for that request (one
 * backend, then two); the client gets the answer at once.
 */
START_TEST(retry_after_holds_within_a_request)
{
	struct response r;
	size_t n = (size_t)_i + 1;

	start_all(n, NULL, "[routing]\nload_balance = round_robin\n" RETRY NO_HC);
	for (size_t i = 0; i < n; i++)
		mock_defaults(&mocks[i], "X-Mock-Fail=429");
	int64_t t0 = now_ms();
	chat(NULL, 0, "", &r);
	int64_t took = now_ms() - t0;
	ck_assert_msg(r.status == 429 || r.status == 503, "status %d: %s",
	    r.status, r.body);
	response_free(&r);
	ck_assert_msg(took < time_bound(500), "answered after %lld ms", (long long)took);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(traffic(i) == 1, "b%zu asked %ld times within its "
		    "Retry-After: 1, for one request", i, traffic(i));
}
END_TEST

/* ---- a backend of our own, for answers the mock cannot give ------------------------ */

static int
listen_any(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ck_assert(listen(fd, 16) == 0);
	ck_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * Serves one request that arrives at lfd within timeout_ms: reads its head
 * and Content-Length body, answers `response`, closes.  Returns 0, or -1
 * when none came.
 */
static int
serve_one(int lfd, const char *response, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	char buf[16384];
	size_t len = 0;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	int fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	int64_t deadline = now_ms() + 3000;
	char *end = NULL;
	long want = -1;
	for (;;) {
		buf[len] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			want = (long)(end + 4 - buf) + (cl != NULL && cl < end ?
			    atol(cl + 17) : 0);
		}
		if (want >= 0 && (long)len >= want)
			break;
		struct pollfd q = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ck_assert_msg(left > 0 && poll(&q, 1, (int)left) == 1,
		    "the request did not arrive whole");
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		ck_assert_msg(n > 0, "the proxy closed before the request was whole");
		len += (size_t)n;
	}
	send_str(fd, response);
	close(fd);
	return 0;
}

/*
 * Sends req to the proxy, serving our own backend at lfd with `answer` if
 * the request lands there.  Returns 1 when it did (the client's answer is in
 * *r either way).
 */
static int
via_own_backend(int lfd, const char *req, const char *answer,
    struct response *r)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
	    { .fd = -1, .events = POLLIN } };
	int ours = 0;

	int fd = tcp_connect(px.port);
	send_str(fd, req);
	p[1].fd = fd;
	ck_assert_msg(poll(p, 2, 5000) > 0, "no answer and no request");
	if (p[0].revents & POLLIN) {
		ck_assert_int_eq(serve_one(lfd, answer, 0), 0);
		ours = 1;
	}
	ck_assert_int_eq(read_response(fd, r, 5000, 0), 0);
	close(fd);
	return ours;
}

/*
 * A Retry-After longer than [routing.retry] max_wait keeps a backend out for
 * max_wait at most (config.ini.example: "max_wait also caps the Retry-After
 * of a backend that answers 429 or 503").  b0 is ours and says 429 with
 * Retry-After: 3600 once; b1, a mock, takes the requests meanwhile.  (One
 * "Retry-After: 3600" once kept a backend out of rotation for an hour.)
 */
START_TEST(retry_after_is_capped_by_max_wait)
{
	static const char busy[] = "HTTP/1.1 429 Too Many Requests\r\n"
	    "Retry-After: 3600\r\nContent-Type: application/json\r\n"
	    "Content-Length: 53\r\nConnection: close\r\n\r\n"
	    "{\"error\":{\"message\":\"busy\",\"type\":\"busy\",\"code\":429}}";
	static const char ok[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 2\r\n"
	    "Connection: close\r\n\r\n{}";
	char req[1024];
	int ports[2];
	struct response r;

	ck_assert_uint_eq(strlen(strstr(busy, "\r\n\r\n") + 4), 53);
	int lfd = listen_any(&ports[0]);
	mock_start(&mocks[1]);
	ports[1] = mocks[1].port;
	start_proxy_at(2, ports, NULL, "[routing]\nload_balance = round_robin\n"
	    "[routing.retry]\nenabled = true\nmax_retries = 2\n"
	    "initial_wait = 10ms\nmax_wait = 50ms\n" NO_HC);
	chat_request(req, sizeof(req), "", "{\"model\":\"mock-model\","
	    "\"messages\":[]}");

	/* b0: busy for an hour, it says; the request goes to b1. */
	int64_t deadline = now_ms() + 3000;
	while (!via_own_backend(lfd, req, busy, &r)) {
		ck_assert_msg(now_ms() < deadline, "b0 never asked");
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
	}
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	response_free(&r);

	/* Asked again after max_wait (50 ms), not after an hour. */
	deadline = now_ms() + 2000;
	while (!via_own_backend(lfd, req, ok, &r)) {
		ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
		response_free(&r);
		ck_assert_msg(now_ms() < deadline, "b0 was kept out for its "
		    "Retry-After: 3600 (max_wait is 50 ms)");
		pause_ms(10);
	}
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	close(lfd);
}
END_TEST

START_TEST(failover_on_first_token_timeout)
{
	struct response r;

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n"
	    "first_token_timeout = 300ms\n" RETRY NO_HC);
	mock_defaults(&mocks[0], "X-Mock-First-Delay-Ms=5000");

	int64_t worst = 0;
	for (int k = 0; k < 6; k++) {
		int64_t t0 = now_ms();
		chat(NULL, 1, "", &r);
		int64_t took = now_ms() - t0;
		assert_full(&r, 1, 5);
		response_free(&r);
		if (took > worst)
			worst = took;
	}
	ck_assert_int_ge(served(0), 1);
	ck_assert_msg(worst >= 250 && worst < 900,
	    "slowest request %lld ms (first_token_timeout 300 ms)", (long long)worst);
	/* The slow backend was told to stop. */
	ck_assert_msg(mock_wait_state(&mocks[0], TAG, "aborted", 2000) == 0,
	    "b0 was left generating");
}
END_TEST

/* ---- 9. never after the first byte ------------------------------------------------------ */

static const char *const mid_failures[] = { "close-mid", "reset-mid" };

START_TEST(no_failover_after_first_byte)
{
	char headers[256];
	struct response r;

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n" RETRY NO_HC);
	snprintf(headers, sizeof(headers), "X-Mock-Tokens: 10\r\n"
	    "X-Mock-Fail: %s\r\nX-Mock-Fail-After: 3\r\n", mid_failures[_i]);
	chat(NULL, 1, headers, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(!r.complete, "a broken stream ended like a good one");
	ck_assert(r.eof);
	ck_assert_msg(memmem(r.body, r.body_len, "[DONE]", 6) == NULL,
	    "a broken stream carried [DONE]: %s", r.body);
	ck_assert_msg(strstr(r.body, " tok3") != NULL, "%s", r.body);
	ck_assert_msg(strstr(r.body, "data: {\"error\":") != NULL,
	    "no error event: %s", r.body);
	/* Once only: the stream was not started again elsewhere. */
	ck_assert_int_eq(occurrences(r.body, " tok1\""), 1);
	response_free(&r);
	ck_assert_int_eq(traffic(0) + traffic(1) + traffic(2), 1);
}
END_TEST

/* ---- 10. passive ejection without health checks ---------------------------------------- */

START_TEST(passive_ejection_and_return)
{
	const char *ejected = "backend b0 ejected";
	const char *tried = "backend b0 failed before answering";

	start_all(3, NULL, "[routing]\nload_balance = round_robin\n" RETRY
	    "[health_check]\nenabled = false\neject = true\n"
	    "unhealthy_threshold = 2\neject_cooldown = 500ms\n");
	int port = mocks[0].port;
	mock_kill9(&mocks[0]);

	/* Two failed tries (each request still served elsewhere)... */
	int k = 0;
	while (log_count(ejected) == 0) {
		ck_assert_msg(k++ < 12, "b0 not ejected after %d requests", k);
		chat_ok(NULL);
	}
	int64_t seen = now_ms();
	ck_assert_int_eq(log_count(tried), 2);

	/* ...then no try at all during the cool-down. */
	int sent = 0;
	while (now_ms() < seen + 300 && sent < 15) {
		chat_ok(NULL);
		sent++;
	}
	ck_assert_msg(sent >= 6, "only %d requests in 300 ms", sent);
	ck_assert_msg(log_count(tried) == 2, "b0 was tried %zu times in its "
	    "cool-down", log_count(tried) - 2);

	/* After the cool-down it is tried again, fails again, and is out
	 * again — for longer: the cool-down grows on repeated failure. */
	int64_t deadline = seen + 3000, retried = 0;
	while (log_count(ejected) < 2) {
		ck_assert_msg(now_ms() < deadline,
		    "b0 not tried and ejected again after its cool-down");
		chat_ok(NULL);
		if (retried == 0 && log_count(tried) > 2)
			retried = now_ms();
		pause_ms(5);
	}
	int64_t again = now_ms();
	ck_assert_msg(retried - seen >= 400, "b0 tried %lld ms after its "
	    "ejection, within its cool-down of 500 ms", (long long)(retried - seen));
	size_t tries = log_count(tried);
	ck_assert_msg(tries == 3 || tries == 4, "b0 tried %zu times", tries);
	while (now_ms() < again + 800) {
		chat_ok(NULL);
		pause_ms(10);
	}
	ck_assert_msg(log_count(tried) == tries, "b0 tried again within 800 ms "
	    "of its second ejection: the cool-down did not grow");

	/* Back on its port: after the cool-down it is tried, and serves. */
	mock_start_on(&mocks[0], port);
	deadline = now_ms() + 5000;
	while (served(0) == 0) {
		ck_assert_msg(now_ms() < deadline,
		    "b0 got no traffic after its cool-down");
		chat_ok(NULL);
		pause_ms(10);
	}
}
END_TEST

static Suite *
balance_suite(void)
{
	Suite *s = suite_create("e2e_balance");
	TCase *tc = tcase_create("balance");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, round_robin_spreads_by_weight, 0,
	    sizeof(rr_cases) / sizeof(rr_cases[0]));
	tcase_add_test(tc, least_connections_counts_open_streams);
	tcase_add_test(tc, least_connections_weights_break_ties);
	tcase_add_test(tc, killed_backend_costs_no_request);
	tcase_add_test(tc, unhealthy_backend_gets_no_traffic);
	tcase_add_test(tc, health_path_per_backend);
	tcase_add_test(tc, model_routing_with_an_any_model_backend);
	tcase_add_test(tc, unknown_model_is_404_and_reaches_no_backend);
	tcase_add_test(tc, all_down_by_health_checks_is_a_fast_503);
	tcase_add_test(tc, all_refused_without_health_checks_never_hangs);
	tcase_add_test(tc, max_connections_caps_each_backend);
	tcase_add_loop_test(tc, failover_before_first_byte, 0,
	    sizeof(early_failures) / sizeof(early_failures[0]));
	tcase_add_loop_test(tc, retry_after_holds_within_a_request, 0, 2);
	tcase_add_test(tc, retry_after_is_capped_by_max_wait);
	tcase_add_test(tc, failover_on_first_token_timeout);
	tcase_add_loop_test(tc, no_failover_after_first_byte, 0,
	    sizeof(mid_failures) / sizeof(mid_failures[0]));
	tcase_add_test(tc, passive_ejection_and_return);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(balance_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
