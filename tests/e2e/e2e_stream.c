/*
 * e2e_stream.c — streaming through the real llmproxy binary: the bytes are
 * the backend's, events leave as they arrive, a client that goes away stops
 * the backend, and every way a stream can fail ends visibly.
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;
static struct proxy proxy;

static void
setup(void)
{
	char cfg[1024];

	mock_start(&mock);
	proxy_config(cfg, sizeof(cfg), &mock, "");
	proxy_start_ok(&proxy, cfg);
}

static void
teardown(void)
{
	proxy_stop(&proxy);
	mock_stop(&mock);
}

static const char chat_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

/* One streamed chat completion on a new connection to port. */
static void
stream_once(int port, const char *headers, struct response *r)
{
	char req[4096];
	chat_request(req, sizeof(req), headers, chat_body);
	ck_assert_int_eq(http_exchange(port, req, r, 10000), 0);
}

static int
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ---- the bytes are the backend's ---------------------------------------------- */

static const char *const dialects[] = { "vllm", "openai", "tgi", "llamacpp",
    "llamacpp-old" };
static const char *const chunkings[] = { "event", "split", "coalesce", "byte" };

START_TEST(stream_identical_to_direct)
{
	const char *dialect = dialects[_i % 5];
	const char *chunking = chunkings[_i / 5];
	char headers[512];
	struct response direct, via;

	snprintf(headers, sizeof(headers),
	    "X-Request-Id: same-%d\r\nX-Mock-Dialect: %s\r\n"
	    "X-Mock-Chunking: %s\r\nX-Mock-Tokens: 7\r\n", _i, dialect, chunking);
	stream_once(mock.port, headers, &direct);
	stream_once(proxy.port, headers, &via);

	ck_assert_int_eq(via.status, 200);
	ck_assert_msg(via.complete, "stream did not end cleanly");
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert_msg(memcmp(via.body, direct.body, via.body_len) == 0,
	    "%s/%s: bytes differ:\n--- direct\n%s\n--- proxy\n%s", dialect,
	    chunking, direct.body, via.body);
	ck_assert_uint_ge(via.nevents, 8);
	ck_assert_uint_eq(via.nevents, direct.nevents);

	char v[128];
	ck_assert(response_header(&via, "Content-Type", v, sizeof(v)));
	ck_assert_msg(strncmp(v, "text/event-stream", 17) == 0, "%s", v);
	ck_assert(response_header(&via, "Cache-Control", v, sizeof(v)));
	ck_assert_str_eq(v, "no-cache");
	ck_assert(response_header(&via, "X-Accel-Buffering", v, sizeof(v)));
	ck_assert_str_eq(v, "no");
	ck_assert(via.chunked);
	char want[32];
	snprintf(want, sizeof(want), "same-%d", _i);
	ck_assert(response_header(&via, "X-Request-Id", v, sizeof(v)));
	ck_assert_str_eq(v, want);
	response_free(&direct);
	response_free(&via);
}
END_TEST

/* ---- no added delay ---------------------------------------------------------------- */

/*
 * The mock stamps each event with the CLOCK_MONOTONIC time it wrote it
 * ("t_us"), and that clock is the same for every process on the machine, so
 * arrival minus stamp is the whole delay the event saw: proxy included.
 */
static int64_t
event_stamp(const char *ev, size_t len)
{
	const char *p = memmem(ev, len, "\"t_us\":", 7);
	return p != NULL ? strtoll(p + 7, NULL, 10) : -1;
}

START_TEST(events_leave_as_they_arrive)
{
	struct response r;
	const int tokens = 10;

	stream_once(proxy.port, "X-Mock-Tokens: 10\r\nX-Mock-Delay-Ms: 50\r\n"
	    "X-Mock-Timestamps: 1\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	int64_t worst = 0;
	int stamped = 0;
	for (size_t i = 0; i < r.nevents; i++) {
		size_t start = i ? r.event_end[i - 1] : 0;
		int64_t t = event_stamp(r.body + start, r.event_end[i] - start);
		if (t < 0)
			continue;
		int64_t lag = r.event_us[i] - t;
		stamped++;
		if (lag > worst)
			worst = lag;
	}
	ck_assert_int_ge(stamped, tokens);
	ck_assert_msg(worst < time_bound(5000), "an event waited %lld us in transit",
	    (long long)worst);
	/* And they are spread as the backend spread them, 50 ms apart. */
	int64_t span = r.event_us[r.nevents - 1] - r.event_us[0];
	ck_assert_int_ge(span, (tokens - 1) * 50 * 1000 - 5000);
	response_free(&r);
}
END_TEST

/* ---- the client goes away ------------------------------------------------------------ */

/* Reads from fd until n SSE events have arrived. */
static void
read_events(int fd, int n)
{
	char buf[8192];
	int seen = 0;
	int64_t deadline = now_ms() + 5000;

	while (seen < n) {
		ck_assert_msg(now_ms() < deadline, "events did not arrive");
		ssize_t k = recv(fd, buf, sizeof(buf), 0);
		ck_assert_int_gt(k, 0);
		for (ssize_t i = 1; i < k; i++)
			if (buf[i] == '\n' && buf[i - 1] == '\n')
				seen++;
	}
}

static void
assert_backend_stopped(const char *id, int64_t closed_ms)
{
	char path[128], body[1024];

	ck_assert_msg(mock_wait_state(&mock, id, "aborted", 2000) == 0,
	    "the backend was not told that the client left");
	snprintf(path, sizeof(path), "/mock/request?id=%s", id);
	ck_assert_int_eq(mock_get(&mock, path, body, sizeof(body)), 200);
	long gone = json_int(body, "client_gone_ms");
	ck_assert_msg(gone - closed_ms < time_bound(100),
	    "upstream closed %ld ms after the client", gone - closed_ms);
}

START_TEST(client_abort_mid_stream_stops_backend)
{
	char req[4096];
	chat_request(req, sizeof(req), "X-Request-Id: abort-mid\r\n"
	    "X-Mock-Tokens: 100\r\nX-Mock-Delay-Ms: 100\r\n", chat_body);
	int fd = tcp_connect(proxy.port);
	send_str(fd, req);
	read_events(fd, 3);
	int64_t closed = now_ms();
	close(fd);
	assert_backend_stopped("abort-mid", closed);
}
END_TEST

START_TEST(client_abort_before_first_token_stops_backend)
{
	char req[4096];
	chat_request(req, sizeof(req), "X-Request-Id: abort-prefill\r\n"
	    "X-Mock-First-Delay-Ms: 10000\r\n", chat_body);
	int fd = tcp_connect(proxy.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&mock, "abort-prefill", "running", 3000) == 0);
	int64_t closed = now_ms();
	close(fd);
	assert_backend_stopped("abort-prefill", closed);
}
END_TEST

/* ---- failures after the stream started end visibly ------------------------------- */

static void
assert_cut_with_error_event(const struct response *r, const char *needle)
{
	ck_assert_int_eq(r->status, 200);
	ck_assert_msg(!r->complete, "a broken stream ended like a good one");
	ck_assert(r->eof);
	ck_assert_msg(memmem(r->body, r->body_len, "[DONE]", 6) == NULL,
	    "a broken stream carried [DONE]");
	const char *ev = memmem(r->body, r->body_len, "data: {\"error\":", 15);
	ck_assert_msg(ev != NULL, "no error event in:\n%s", r->body);
	ck_assert_msg(strstr(ev, needle) != NULL, "error event: %s", ev);
	ck_assert(ends_with(r->body, r->body_len, "}}\n\n"));
}

START_TEST(backend_closes_mid_stream)
{
	struct response r;
	stream_once(proxy.port, "X-Mock-Tokens: 10\r\nX-Mock-Fail: close-mid\r\n"
	    "X-Mock-Fail-After: 3\r\n", &r);
	assert_cut_with_error_event(&r, "\"code\":502");
	ck_assert(memmem(r.body, r.body_len, " tok2", 5) != NULL);
	response_free(&r);
}
END_TEST

START_TEST(backend_resets_mid_stream)
{
	struct response r;
	stream_once(proxy.port, "X-Mock-Tokens: 10\r\nX-Mock-Fail: reset-mid\r\n"
	    "X-Mock-Fail-After: 3\r\n", &r);
	assert_cut_with_error_event(&r, "\"code\":502");
	response_free(&r);
}
END_TEST

/* ---- timeouts ------------------------------------------------------------------------- */

static void
timeout_proxy(struct proxy *px, const char *routing)
{
	char cfg[1024];
	proxy_config(cfg, sizeof(cfg), &mock, routing);
	proxy_start_ok(px, cfg);
}

START_TEST(first_token_timeout_gives_504)
{
	struct proxy px;
	struct response r;

	timeout_proxy(&px, "[routing]\nfirst_token_timeout = 300ms\n");
	int64_t t0 = now_ms();
	stream_once(px.port, "X-Request-Id: ftt\r\nX-Mock-First-Delay-Ms: 5000\r\n", &r);
	int64_t took = now_ms() - t0;
	ck_assert_int_eq(r.status, 504);
	ck_assert_msg(strstr(r.body, "\"error\":{") && strstr(r.body, "first_token_timeout"),
	    "%s", r.body);
	ck_assert_msg(took >= 280 && took < 2000, "504 after %lld ms", (long long)took);
	/* and the backend was told to stop */
	ck_assert(mock_wait_state(&mock, "ftt", "aborted", 2000) == 0);
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

START_TEST(first_token_timeout_covers_a_held_head)
{
	struct proxy px;
	struct response r;

	/* The backend sends its head at once, then no token: the client must
	 * still get a clean 504, not a 200 followed by nothing. */
	timeout_proxy(&px, "[routing]\nfirst_token_timeout = 300ms\n");
	stream_once(px.port, "X-Mock-Fail: stall-first\r\n", &r);
	ck_assert_int_eq(r.status, 504);
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

START_TEST(idle_timeout_mid_stream_gives_error_event)
{
	struct proxy px;
	struct response r;

	timeout_proxy(&px, "[routing]\nidle_timeout = 300ms\n");
	int64_t t0 = now_ms();
	stream_once(px.port, "X-Mock-Tokens: 10\r\nX-Mock-Fail: stall-mid\r\n"
	    "X-Mock-Fail-After: 3\r\n", &r);
	int64_t took = now_ms() - t0;
	assert_cut_with_error_event(&r, "idle_timeout");
	ck_assert_msg(took >= 280 && took < 2000, "cut after %lld ms", (long long)took);
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

START_TEST(request_timeout_cuts_a_long_stream)
{
	struct proxy px;
	struct response r;

	timeout_proxy(&px, "[routing]\ntimeout = 400ms\n");
	stream_once(px.port, "X-Mock-Tokens: 100\r\nX-Mock-Delay-Ms: 50\r\n", &r);
	assert_cut_with_error_event(&r, "\"code\":504");
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

/* ---- framing for the client ------------------------------------------------------------ */

START_TEST(http10_client_gets_close_delimited_stream)
{
	char req[4096];
	struct response direct, via;

	stream_once(mock.port, "X-Request-Id: h10\r\n", &direct);
	snprintf(req, sizeof(req),
	    "POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nX-Request-Id: h10\r\n"
	    "Content-Length: %zu\r\n\r\n%s", strlen(chat_body), chat_body);
	ck_assert_int_eq(http_exchange(proxy.port, req, &via, 5000), 0);
	ck_assert_int_eq(via.status, 200);
	ck_assert(!via.chunked);
	ck_assert(via.eof);
	ck_assert(!response_header(&via, "Content-Length", NULL, 0));
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	response_free(&direct);
	response_free(&via);
}
END_TEST

START_TEST(oversized_event_passes_through_intact)
{
	struct response direct, via;
	/* Events larger than CAP_SSE_EVENT_BYTES (256 KiB) are not held whole:
	 * they flow through unexamined, and the client still gets every byte. */
	const char *h = "X-Request-Id: big\r\nX-Mock-Tokens: 3\r\n"
	    "X-Mock-Event-Pad: 600000\r\n";

	stream_once(mock.port, h, &direct);
	stream_once(proxy.port, h, &via);
	ck_assert_int_eq(via.status, 200);
	ck_assert(via.complete);
	ck_assert_uint_gt(via.body_len, 3 * 600000);
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	response_free(&direct);
	response_free(&via);
}
END_TEST

START_TEST(non_streaming_response_forwarded)
{
	char req[4096];
	struct response direct, via;
	const char *body = "{\"model\":\"m\",\"messages\":[]}";

	snprintf(req, sizeof(req),
	    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: ns\r\n"
	    "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	ck_assert_int_eq(http_exchange(mock.port, req, &direct, 5000), 0);
	ck_assert_int_eq(http_exchange(proxy.port, req, &via, 5000), 0);
	ck_assert_int_eq(via.status, 200);
	ck_assert(via.complete);
	ck_assert(response_header(&via, "Content-Length", NULL, 0));
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	ck_assert(strstr(via.body, "\"usage\"") != NULL);
	response_free(&direct);
	response_free(&via);
}
END_TEST

START_TEST(non_streaming_chunked_response_reframed)
{
	char req[4096];
	struct response direct, via;
	const char *body = "{\"model\":\"m\",\"messages\":[]}";

	snprintf(req, sizeof(req),
	    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: nsc\r\n"
	    "X-Mock-Framing: chunked\r\n"
	    "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	ck_assert_int_eq(http_exchange(mock.port, req, &direct, 5000), 0);
	ck_assert_int_eq(http_exchange(proxy.port, req, &via, 5000), 0);
	ck_assert_int_eq(via.status, 200);
	ck_assert(via.complete);
	ck_assert(via.chunked);
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	response_free(&direct);
	response_free(&via);
}
END_TEST

static Suite *
stream_suite(void)
{
	Suite *s = suite_create("e2e_stream");
	TCase *tc = tcase_create("stream");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, stream_identical_to_direct, 0, 20);
	tcase_add_test(tc, events_leave_as_they_arrive);
	tcase_add_test(tc, client_abort_mid_stream_stops_backend);
	tcase_add_test(tc, client_abort_before_first_token_stops_backend);
	tcase_add_test(tc, backend_closes_mid_stream);
	tcase_add_test(tc, backend_resets_mid_stream);
	tcase_add_test(tc, first_token_timeout_gives_504);
	tcase_add_test(tc, first_token_timeout_covers_a_held_head);
	tcase_add_test(tc, idle_timeout_mid_stream_gives_error_event);
	tcase_add_test(tc, request_timeout_cuts_a_long_stream);
	tcase_add_test(tc, http10_client_gets_close_delimited_stream);
	tcase_add_test(tc, oversized_event_passes_through_intact);
	tcase_add_test(tc, non_streaming_response_forwarded);
	tcase_add_test(tc, non_streaming_chunked_response_reframed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(stream_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
