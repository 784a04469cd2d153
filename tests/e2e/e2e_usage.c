/*
 * e2e_usage.c — usage metering through the real binary: one exact record per
 * request, delivered to a webhook, never lost; and a client that did not ask
 * for usage sees exactly the stream it would have had without the proxy.
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;
static struct receiver rv;
static struct proxy proxy;

/* [usage] and a webhook reporter at the receiver, plus `extra`. */
static void
usage_config(char *out, size_t cap, int receiver_port, const char *extra)
{
	char sections[2048];

	snprintf(sections, sizeof(sections),
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n"
	    "timeout = 5s\n\n%s", receiver_port, extra);
	proxy_config(out, cap, &mock, sections);
}

static void
setup(void)
{
	char cfg[4096];

	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
	usage_config(cfg, sizeof(cfg), rv.port, "[usage]\nmax_wait = 200ms\n");
	proxy_start_ok(&proxy, cfg);
}

static void
teardown(void)
{
	proxy_stop(&proxy);
	receiver_stop(&rv);
	mock_stop(&mock);
}

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
static const char plain_body[] =
    "{\"model\":\"mock-model\","
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

static void
post(int port, const char *path, const char *headers, const char *body,
    struct response *r)
{
	char req[8192];
	snprintf(req, sizeof(req),
	    "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	    "%sContent-Length: %zu\r\n\r\n%s", path, headers, strlen(body), body);
	ck_assert_int_eq(http_exchange(port, req, r, 10000), 0);
}

static void
assert_str(const char *rec, const char *key, const char *want)
{
	char got[256];
	ck_assert_msg(json_str(rec, key, got, sizeof(got)), "no %s in %s", key, rec);
	ck_assert_msg(strcmp(got, want) == 0, "%s is \"%s\", want \"%s\" in %s",
	    key, got, want, rec);
}

/* ---- a client that did not ask sees the stream it would have had ------------- */

static const char *const dialects[] = { "vllm", "openai", "tgi", "llamacpp",
    "llamacpp-old" };

START_TEST(stream_record_and_identical_bytes)
{
	const char *dialect = dialects[_i % 5];
	const char *chunking = _i < 5 ? "event" : "byte";
	char headers[512], id[64], rec[4096];
	struct response direct, via;

	snprintf(id, sizeof(id), "strm-%s-%d", dialect, _i);
	snprintf(headers, sizeof(headers), "X-Request-Id: %s\r\nX-Mock-Dialect: %s\r\n"
	    "X-Mock-Chunking: %s\r\n", id, dialect, chunking);
	post(mock.port, "/v1/chat/completions", headers, stream_body, &direct);
	post(proxy.port, "/v1/chat/completions", headers, stream_body, &via);

	ck_assert_int_eq(via.status, 200);
	ck_assert(via.complete);
	ck_assert_msg(via.body_len == direct.body_len &&
	    memcmp(via.body, direct.body, via.body_len) == 0,
	    "%s: the client saw what it did not ask for:\n--- direct\n%s\n--- proxy\n%s",
	    dialect, direct.body, via.body);

	receiver_wait_record(&rv, id, rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	assert_str(rec, "model", "mock-model");
	assert_str(rec, "endpoint", "/v1/chat/completions");
	assert_str(rec, "backend", "mock");
	assert_str(rec, "finish", "stop");
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 5);
	long prompt = json_int(rec, "prompt_tokens");
	ck_assert_int_gt(prompt, 0);
	ck_assert_int_eq(json_int(rec, "total_tokens"), prompt + 5);
	ck_assert_int_eq(json_int(rec, "status_code"), 200);
	ck_assert(strstr(rec, "\"is_stream\":true") != NULL);
	ck_assert_int_ge(json_int(rec, "ttft_ms"), 0);
	ck_assert_int_ge(json_int(rec, "latency_ms"), 0);
	response_free(&direct);
	response_free(&via);
}
END_TEST

START_TEST(client_that_asked_gets_the_usage_chunk)
{
	char rec[4096];
	struct response direct, via;
	const char *body = "{\"model\":\"m\",\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":true},\"messages\":[]}";
	const char *h = "X-Request-Id: asked\r\nX-Mock-Dialect: openai\r\n";

	post(mock.port, "/v1/chat/completions", h, body, &direct);
	post(proxy.port, "/v1/chat/completions", h, body, &via);
	ck_assert(memmem(via.body, via.body_len, "\"usage\":{", 9) != NULL);
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	receiver_wait_record(&rv, "asked", rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 5);
	response_free(&direct);
	response_free(&via);
}
END_TEST

/* ---- records for every kind of request ------------------------------------------ */

START_TEST(non_stream_record)
{
	char rec[4096];
	struct response r;

	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: plain\r\nX-Mock-Tokens: 7\r\n", plain_body, &r);
	ck_assert_int_eq(r.status, 200);
	receiver_wait_record(&rv, "plain", rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 7);
	ck_assert(strstr(rec, "\"is_stream\":false") != NULL);
	response_free(&r);
}
END_TEST

/* A model name is the client's to choose, at any length: a long one must
 * not make the record too large to send (a request nobody is billed for).
 * The record names the model cut to CAP_MODEL_NAME bytes. */
START_TEST(long_model_name_still_gives_a_record)
{
	enum { LEN = 3000 };
	char *body = malloc(LEN + 256), rec[8192];
	struct response r;

	int n = snprintf(body, LEN + 256, "{\"model\":\"");
	memset(body + n, 'm', LEN);
	snprintf(body + n + LEN, 256, "\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hello\"}]}");
	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: long-model\r\nX-Mock-Tokens: 3\r\n", body, &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	receiver_wait_record(&rv, "long-model", rec, sizeof(rec));
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 3);
	char want[160] = "\"model\":\"";
	memset(want + strlen(want), 'm', 128);
	strcat(want, "\",");
	ck_assert_msg(strstr(rec, want) != NULL, "model not cut to 128 bytes: %s", rec);
	free(body);
}
END_TEST

START_TEST(embeddings_record)
{
	char rec[4096];
	struct response r;

	post(proxy.port, "/v1/embeddings", "X-Request-Id: emb\r\n",
	    "{\"model\":\"e5\",\"input\":\"some text to embed\"}", &r);
	ck_assert_int_eq(r.status, 200);
	receiver_wait_record(&rv, "emb", rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	assert_str(rec, "model", "e5");
	assert_str(rec, "endpoint", "/v1/embeddings");
	ck_assert_int_gt(json_int(rec, "prompt_tokens"), 0);
	response_free(&r);
}
END_TEST

START_TEST(backend_without_usage_is_estimated)
{
	char rec[4096];
	struct response r;

	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: est-stream\r\nX-Mock-No-Usage: 1\r\n", stream_body, &r);
	ck_assert_int_eq(r.status, 200);
	receiver_wait_record(&rv, "est-stream", rec, sizeof(rec));
	assert_str(rec, "usage_source", "estimated");
	/* five tokens " tok1".." tok5" were delivered: at least one per event */
	ck_assert_int_ge(json_int(rec, "completion_tokens"), 5);
	ck_assert_int_le(json_int(rec, "completion_tokens"), 10);
	/* "hello": five bytes of prompt text */
	ck_assert_int_eq(json_int(rec, "prompt_tokens"), 2);
	response_free(&r);

	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: est-plain\r\nX-Mock-No-Usage: 1\r\n", plain_body, &r);
	receiver_wait_record(&rv, "est-plain", rec, sizeof(rec));
	assert_str(rec, "usage_source", "estimated");
	ck_assert_int_gt(json_int(rec, "completion_tokens"), 0);
	response_free(&r);
}
END_TEST

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
abort_after(int port, const char *id, int events)
{
	char req[4096], h[256];

	snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Tokens: 100\r\n"
	    "X-Mock-Delay-Ms: 50\r\n", id);
	chat_request(req, sizeof(req), h, stream_body);
	int fd = tcp_connect(port);
	send_str(fd, req);
	read_events(fd, events);
	close(fd);
}

START_TEST(client_abort_record_estimates_what_was_delivered)
{
	char rec[4096];

	abort_after(proxy.port, "abort-est", 4);
	receiver_wait_record(&rv, "abort-est", rec, sizeof(rec));
	assert_str(rec, "finish", "client_abort");
	assert_str(rec, "usage_source", "estimated");
	long c = json_int(rec, "completion_tokens");
	ck_assert_msg(c >= 3 && c < 20, "completion_tokens %ld", c);
}
END_TEST

START_TEST(client_abort_with_continuous_usage_is_exact)
{
	struct proxy px;
	char cfg[4096], rec[4096];
	struct response direct, via;

	usage_config(cfg, sizeof(cfg), rv.port, "");
	/* continuous_usage on the backend section, which proxy_config wrote */
	char *at = strstr(cfg, "[backends.mock]\n");
	ck_assert_ptr_nonnull(at);
	char with[4096];
	snprintf(with, sizeof(with), "%.*s[backends.mock]\ncontinuous_usage = true\n%s",
	    (int)(at - cfg), cfg, at + strlen("[backends.mock]\n"));
	proxy_start_ok(&px, with);

	/* The client sees no per-chunk usage it did not ask for ... */
	const char *h = "X-Request-Id: cont-full\r\nX-Mock-Tokens: 6\r\n";
	post(mock.port, "/v1/chat/completions", h, stream_body, &direct);
	post(px.port, "/v1/chat/completions", h, stream_body, &via);
	ck_assert(memmem(via.body, via.body_len, "usage", 5) == NULL);
	ck_assert_uint_eq(via.body_len, direct.body_len);
	ck_assert(memcmp(via.body, direct.body, via.body_len) == 0);
	receiver_wait_record(&rv, "cont-full", rec, sizeof(rec));
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 6);

	/* ... and an aborted stream is billed from the backend's own count. */
	abort_after(px.port, "cont-abort", 4);
	receiver_wait_record(&rv, "cont-abort", rec, sizeof(rec));
	assert_str(rec, "finish", "client_abort");
	assert_str(rec, "usage_source", "backend");
	long c = json_int(rec, "completion_tokens");
	ck_assert_msg(c >= 3 && c < 20, "completion_tokens %ld", c);
	response_free(&direct);
	response_free(&via);
	proxy_stop(&px);
}
END_TEST

START_TEST(backend_cut_record)
{
	char rec[4096];
	struct response r;

	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: cut\r\nX-Mock-Tokens: 10\r\nX-Mock-Fail: close-mid\r\n"
	    "X-Mock-Fail-After: 3\r\n", stream_body, &r);
	receiver_wait_record(&rv, "cut", rec, sizeof(rec));
	assert_str(rec, "finish", "upstream_error");
	ck_assert_int_eq(json_int(rec, "status_code"), 200);
	response_free(&r);

	post(proxy.port, "/v1/chat/completions",
	    "X-Request-Id: refused\r\nX-Mock-Fail: close-before-head\r\n",
	    stream_body, &r);
	ck_assert_int_eq(r.status, 502);
	receiver_wait_record(&rv, "refused", rec, sizeof(rec));
	assert_str(rec, "finish", "upstream_error");
	assert_str(rec, "usage_source", "none");
	ck_assert_int_eq(json_int(rec, "status_code"), 502);
	ck_assert_int_eq(json_int(rec, "total_tokens"), 0);
	response_free(&r);
}
END_TEST

START_TEST(n_requests_n_records_n_ids)
{
	enum { N = 30 };
	char id[N][32], rec[4096];
	struct response r;

	for (int i = 0; i < N; i++) {
		char h[1100];
		snprintf(id[i], sizeof(id[i]), "mix-%02d", i);
		switch (i % 5) {
		case 0:
			snprintf(h, sizeof(h), "X-Request-Id: %s\r\n", id[i]);
			post(proxy.port, "/v1/chat/completions", h, stream_body, &r);
			break;
		case 1:
			snprintf(h, sizeof(h), "X-Request-Id: %s\r\n", id[i]);
			post(proxy.port, "/v1/chat/completions", h, plain_body, &r);
			break;
		case 2:
			snprintf(h, sizeof(h), "X-Request-Id: %s\r\n", id[i]);
			post(proxy.port, "/v1/embeddings", h, "{\"input\":\"x\"}", &r);
			break;
		case 3:
			snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Fail: 500\r\n", id[i]);
			post(proxy.port, "/v1/completions", h,
			    "{\"prompt\":\"x\",\"stream\":true}", &r);
			break;
		case 4:
			snprintf(h, sizeof(h), "X-Request-Id: %s\r\nX-Mock-Dialect: tgi\r\n",
			    id[i]);
			post(proxy.port, "/v1/completions", h,
			    "{\"prompt\":\"x\",\"stream\":true}", &r);
			break;
		}
		response_free(&r);
	}
	for (int i = 0; i < N; i++)
		receiver_wait_record(&rv, id[i], rec, sizeof(rec));  /* each exactly once */
}
END_TEST

/* ---- delivery: off the request path, retried, durable ------------------------------ */

START_TEST(slow_webhook_adds_no_latency)
{
	struct response r;
	char id[32], rec[4096];

	receiver_control(&rv, "delay_ms=3000");
	int64_t worst = 0;
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "slowhook-%d", i);
		char h[128];
		snprintf(h, sizeof(h), "X-Request-Id: %s\r\n", id);
		int64_t t0 = now_us();
		post(proxy.port, "/v1/chat/completions", h, stream_body, &r);
		int64_t first = r.nevents > 0 ? r.event_us[0] - t0 : 1000000;
		if (first > worst)
			worst = first;
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
	}
	ck_assert_msg(worst < 100000, "first event after %lld us while the webhook "
	    "takes 3 s", (long long)worst);
	receiver_control(&rv, "reset=1");
	receiver_wait_record(&rv, "slowhook-4", rec, sizeof(rec));
}
END_TEST

START_TEST(webhook_down_then_up_loses_nothing)
{
	struct response r;
	char rec[4096];

	receiver_control(&rv, "status=503");
	for (int i = 0; i < 5; i++) {
		char h[128];
		snprintf(h, sizeof(h), "X-Request-Id: flap-%d\r\n", i);
		post(proxy.port, "/v1/chat/completions", h, stream_body, &r);
		response_free(&r);
	}
	/* Let it fail a few times, then come back. */
	char stats[512];
	int64_t deadline = now_ms() + 5000;
	for (;;) {
		char req[] = "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		struct response s;
		ck_assert_int_eq(http_exchange(rv.port, req, &s, 2000), 0);
		snprintf(stats, sizeof(stats), "%s", s.body);
		response_free(&s);
		if (json_int(stats, "posts") >= 2)
			break;
		ck_assert_msg(now_ms() < deadline, "the proxy never tried: %s", stats);
	}
	receiver_control(&rv, "reset=1");
	for (int i = 0; i < 5; i++) {
		char id[32];
		snprintf(id, sizeof(id), "flap-%d", i);
		receiver_wait_record(&rv, id, rec, sizeof(rec));
	}
}
END_TEST

/* A webhook's url may carry its token in the query: the message about a
 * failing delivery names the url without it. */
START_TEST(failing_webhook_message_hides_the_token)
{
	struct proxy px;
	char sections[1024], cfg[4096], line[1024];
	struct response r;

	snprintf(sections, sizeof(sections),
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\n"
	    "url = http://127.0.0.1:%d/usage?token=SECRET-7f3a&tenant=SECRET-b\n"
	    "timeout = 1s\n[usage]\nmax_wait = 100ms\n", dead_port());
	proxy_config(cfg, sizeof(cfg), &mock, sections);
	proxy_start_ok(&px, cfg);
	post(px.port, "/v1/chat/completions", "X-Request-Id: hidden-token\r\n",
	    stream_body, &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	ck_assert_msg(wait_file_contains(px.proc.err_path, "will retry", 10000,
	    line, sizeof(line)) == 0, "no message about the failing webhook");
	ck_assert_msg(strstr(line, "/usage?token=...&tenant=...") != NULL,
	    "the url is not named: %s", line);
	/* Nor at shutdown, with the record still undelivered. */
	proc_stop(&px.proc);
	ck_assert_int_eq(file_count(px.proc.err_path, "SECRET"), 0);
	proxy_stop(&px);
}
END_TEST

START_TEST(kill9_then_restart_replays_the_spool)
{
	struct proxy px;
	struct receiver down;
	char dir[128], extra[512], cfg[4096], rec[4096];
	struct response r;

	/* A receiver that is down: start it to learn a free port, stop it. */
	receiver_start(&down, 0, NULL);
	int port = down.port;
	receiver_stop(&down);

	make_temp_dir(dir, sizeof(dir), "spool");
	snprintf(extra, sizeof(extra), "[usage]\nspool = %s/usage.spool\n"
	    "max_wait = 200ms\n", dir);
	usage_config(cfg, sizeof(cfg), port, extra);
	proxy_start_ok(&px, cfg);
	for (int i = 0; i < 5; i++) {
		char h[128];
		snprintf(h, sizeof(h), "X-Request-Id: crash-%d\r\n", i);
		post(px.port, "/v1/chat/completions", h, stream_body, &r);
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
	}
	/* Every record is in the spool once its request is answered. */
	char spool[256], line[64];
	snprintf(spool, sizeof(spool), "%s/usage.spool", dir);
	ck_assert(wait_file_contains(spool, "crash-4", 2000, line, sizeof(line)) == 0);
	proxy_kill9(&px);

	proxy_start_ok(&px, cfg);
	receiver_start(&down, port, NULL);
	for (int i = 0; i < 5; i++) {
		char id[32];
		snprintf(id, sizeof(id), "crash-%d", i);
		receiver_wait_record(&down, id, rec, sizeof(rec));
	}
	proxy_stop(&px);
	receiver_stop(&down);
	rm_rf_dir(dir);
}
END_TEST

START_TEST(usage_hook_v01_form)
{
	struct proxy px;
	char extra[256], cfg[2048], rec[4096];
	struct response r;

	snprintf(extra, sizeof(extra), "[usage_hook]\nenabled = true\n"
	    "url = http://127.0.0.1:%d/llm-usage\ntimeout = 1s\nretry = 2\n", rv.port);
	proxy_config(cfg, sizeof(cfg), &mock, extra);
	proxy_start_ok(&px, cfg);
	post(px.port, "/v1/chat/completions", "X-Request-Id: v01\r\n", stream_body, &r);
	receiver_wait_record(&rv, "v01", rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

START_TEST(every_reporter_gets_every_record_in_batches)
{
	struct proxy px;
	struct receiver second;
	char extra[1024], cfg[4096], rec[4096], id[32];
	struct response r;

	receiver_start(&second, 0, NULL);
	snprintf(extra, sizeof(extra), "[usage]\nbatch = 3\nmax_wait = 200ms\n"
	    "[usage.reporters.audit]\n[usage.reporters.audit.webhook]\n"
	    "url = http://127.0.0.1:%d/audit\n", second.port);
	usage_config(cfg, sizeof(cfg), rv.port, extra);
	proxy_start_ok(&px, cfg);
	for (int i = 0; i < 7; i++) {
		char h[128];
		snprintf(h, sizeof(h), "X-Request-Id: both-%d\r\n", i);
		post(px.port, "/v1/chat/completions", h, stream_body, &r);
		response_free(&r);
	}
	for (int i = 0; i < 7; i++) {
		snprintf(id, sizeof(id), "both-%d", i);
		receiver_wait_record(&rv, id, rec, sizeof(rec));
		receiver_wait_record(&second, id, rec, sizeof(rec));
	}
	proxy_stop(&px);
	receiver_stop(&second);
}
END_TEST

/*
 * SIGTERM: no new connections, but a stream in flight runs to its end, and
 * its record is delivered before the process exits 0.
 */
START_TEST(sigterm_lets_streams_finish_and_reports_them)
{
	struct proxy px;
	char cfg[4096], req[4096], rec[4096];
	struct response r;

	usage_config(cfg, sizeof(cfg), rv.port, "[server]\nshutdown_timeout = 10s\n");
	proxy_start_ok(&px, cfg);
	chat_request(req, sizeof(req), "X-Request-Id: drain\r\nX-Mock-Tokens: 20\r\n"
	    "X-Mock-Delay-Ms: 50\r\n", stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&mock, "drain", "running", 3000) == 0);
	proxy_signal(&px, SIGTERM);
	ck_assert_int_eq(read_response(fd, &r, 10000, 0), 0);
	close(fd);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(r.complete, "the stream was cut at shutdown");
	ck_assert(memmem(r.body, r.body_len, " tok20", 6) != NULL);
	ck_assert(memmem(r.body, r.body_len, "[DONE]", 6) != NULL);
	response_free(&r);
	ck_assert_int_eq(proxy_wait_exit(&px, 10000), 0);
	receiver_wait_record(&rv, "drain", rec, sizeof(rec));
	assert_str(rec, "finish", "stop");
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 20);
	proxy_stop(&px);
}
END_TEST

static Suite *
usage_suite(void)
{
	Suite *s = suite_create("e2e_usage");
	TCase *tc = tcase_create("usage");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, stream_record_and_identical_bytes, 0, 10);
	tcase_add_test(tc, client_that_asked_gets_the_usage_chunk);
	tcase_add_test(tc, non_stream_record);
	tcase_add_test(tc, embeddings_record);
	tcase_add_test(tc, long_model_name_still_gives_a_record);
	tcase_add_test(tc, backend_without_usage_is_estimated);
	tcase_add_test(tc, client_abort_record_estimates_what_was_delivered);
	tcase_add_test(tc, client_abort_with_continuous_usage_is_exact);
	tcase_add_test(tc, backend_cut_record);
	tcase_add_test(tc, n_requests_n_records_n_ids);
	tcase_add_test(tc, slow_webhook_adds_no_latency);
	tcase_add_test(tc, webhook_down_then_up_loses_nothing);
	tcase_add_test(tc, failing_webhook_message_hides_the_token);
	tcase_add_test(tc, kill9_then_restart_replays_the_spool);
	tcase_add_test(tc, usage_hook_v01_form);
	tcase_add_test(tc, every_reporter_gets_every_record_in_batches);
	tcase_add_test(tc, sigterm_lets_streams_finish_and_reports_them);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(usage_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
