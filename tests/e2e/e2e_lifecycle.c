/*
 * e2e_lifecycle.c — the process's life as an operator drives it, through the
 * real binary: SIGTERM with a stream in flight (new connections refused at
 * once, the stream ends byte for byte, its usage record goes to the spool
 * when the webhook is down and is delivered once after a restart, exit 0),
 * and SIGHUP (new backends and weights for new requests, a stream in flight
 * untouched, backend state carried over, an invalid or unreadable file
 * logged with the old config kept, settings bound at start kept and named).
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock ma, mb;
static struct receiver rv;

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
static const char plain_body[] =
    "{\"model\":\"mock-model\","
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

/* A slow stream: 20 tokens 50 ms apart, so it is surely in flight when the
 * signal comes and surely not over. */
#define SLOW "X-Mock-Tokens: 20\r\nX-Mock-Delay-Ms: 50\r\n"

static void
setup(void)
{
	mock_start(&ma);
	mock_start(&mb);
	receiver_start(&rv, 0, NULL);
}

static void
teardown(void)
{
	receiver_stop(&rv);
	mock_stop(&mb);
	mock_stop(&ma);
}

/* ---- small tools ------------------------------------------------------------- */

/* Waits until the proxy's log holds needle n times. */
static void
wait_log_count(const struct proxy *px, const char *needle, int n)
{
	int64_t deadline = now_ms() + 5000;

	while (file_count(px->proc.err_path, needle) < n) {
		ck_assert_msg(now_ms() < deadline, "no '%s' (x%d) in the log", needle, n);
		usleep(10 * 1000);
	}
}

/* Replaces the proxy's config file whole (a rename, so the proxy never reads
 * half a file) and sends SIGHUP; waits for the log to say how it went. */
static void
reload(struct proxy *px, const char *text, const char *outcome)
{
	char tmp[300];
	int before = file_count(px->proc.err_path, outcome);

	snprintf(tmp, sizeof(tmp), "%s.new", px->config_path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, px->config_path), 0);
	proxy_signal(px, SIGHUP);
	wait_log_count(px, outcome, before + 1);
}

#define RELOADED "configuration reloaded from"
#define KEPT "the configuration in force stays"

/* [server] and one [backends.NAME] per mock, with weights, plus extra. */
static void
config2(char *out, size_t cap, const char *na, const struct mock *a, int wa,
    const char *nb, const struct mock *b, int wb, const char *extra)
{
	int n = snprintf(out, cap, "[server]\nlisten = 127.0.0.1:0\n"
	    "shutdown_timeout = 10s\n\n[backends.%s]\nurl = http://127.0.0.1:%d\n"
	    "weight = %d\n\n", na, a->port, wa);
	if (b != NULL)
		n += snprintf(out + n, cap - (size_t)n, "[backends.%s]\n"
		    "url = http://127.0.0.1:%d\nweight = %d\n\n", nb, b->port, wb);
	snprintf(out + n, cap - (size_t)n, "[routing]\nload_balance = round_robin\n"
	    "[routing.retry]\nenabled = false\n%s", extra);
}

static int
post(int port, const char *headers, const char *body, struct response *r)
{
	char req[4096];

	chat_request(req, sizeof(req), headers, body);
	if (http_exchange(port, req, r, 10000) < 0)
		return -1;
	return r->status;
}

static void
chat_ok(int port)
{
	struct response r;
	ck_assert_int_eq(post(port, "", plain_body, &r), 200);
	response_free(&r);
}

/* The stream as the mock sends it when asked directly: what the client must
 * get through the proxy, byte for byte.  The mock's records are cleared after,
 * so that waiting for the id's state sees the proxied request. */
static void
direct_stream(const struct mock *m, const char *headers, struct response *r)
{
	ck_assert_int_eq(post(m->port, headers, stream_body, r), 200);
	ck_assert(r->complete);
	mock_clear(m);
}

static void
assert_same_stream(const struct response *via, const struct response *direct)
{
	ck_assert_int_eq(via->status, 200);
	ck_assert_msg(via->complete, "the stream was cut");
	ck_assert_uint_eq(via->body_len, direct->body_len);
	ck_assert_msg(memcmp(via->body, direct->body, via->body_len) == 0,
	    "bytes differ:\n--- direct\n%s\n--- proxy\n%s", direct->body, via->body);
	ck_assert(memmem(via->body, via->body_len, "[DONE]", 6) != NULL);
}

/* A connect that may fail: 0, or the errno. */
static int
try_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), err = 0;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		err = errno;
	close(fd);
	return err;
}

static void
wait_delivered_once(const struct receiver *r, const char *id)
{
	int64_t deadline = now_ms() + 10000;

	while (receiver_count(r, id, NULL, 0) == 0)
		ck_assert_msg(now_ms() < deadline, "no usage record for %s", id);
	/* A little longer: a duplicate would come with the next retry. */
	int64_t settle = now_ms() + 500;
	while (now_ms() < settle)
		usleep(20 * 1000);
	ck_assert_uint_eq(receiver_count(r, id, NULL, 0), 1);
}

/* ---- SIGTERM -------------------------------------------------------------------- */

START_TEST(sigterm_refuses_new_connections_finishes_the_stream_spools_its_record)
{
	struct proxy px;
	struct response direct, via;
	char dir[128], extra[1024], cfg[4096], spool[256], line[64];
	const char *hdr = "X-Request-Id: term-1\r\n" SLOW;

	make_temp_dir(dir, sizeof(dir), "spool");
	snprintf(spool, sizeof(spool), "%s/usage.spool", dir);
	snprintf(extra, sizeof(extra), "[usage]\nspool = %s\nmax_wait = 200ms\n"
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n"
	    "timeout = 2s\n", spool, rv.port);
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, extra);
	/* The webhook refuses everything: the record can only be pending. */
	receiver_control(&rv, "status=503");
	direct_stream(&ma, hdr, &direct);
	proxy_start_ok(&px, cfg);

	char req[4096];
	chat_request(req, sizeof(req), hdr, stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&ma, "term-1", "running", 3000) == 0);
	proxy_signal(&px, SIGTERM);
	wait_log_count(&px, "SIGTERM: no new connections", 1);
	/* At once: the listening socket is closed, not merely unanswered. */
	int64_t deadline = now_ms() + 500;
	while (try_connect(px.port) != ECONNREFUSED)
		ck_assert_msg(now_ms() < deadline, "new connections still accepted");

	ck_assert_int_eq(read_response(fd, &via, 10000, 0), 0);
	close(fd);
	assert_same_stream(&via, &direct);
	ck_assert_int_eq(proxy_wait_exit(&px, 10000), 0);
	/* Not delivered, not lost: on disk. */
	ck_assert(wait_file_contains(spool, "term-1", 100, line, sizeof(line)) == 0);
	ck_assert_uint_eq(receiver_count(&rv, "term-1", NULL, 0), 0);
	proxy_stop(&px);

	/* The next run delivers it, once. */
	receiver_control(&rv, "reset=1");
	proxy_start_ok(&px, cfg);
	wait_delivered_once(&rv, "term-1");
	proxy_stop(&px);
	response_free(&direct);
	response_free(&via);
	rm_rf_dir(dir);
}
END_TEST

/* ---- SIGHUP --------------------------------------------------------------------- */

START_TEST(sighup_new_backend_for_new_requests_stream_in_flight_untouched)
{
	struct proxy px;
	struct response direct, via;
	char cfg[4096];
	const char *hdr = "X-Request-Id: hup-1\r\n" SLOW;

	direct_stream(&ma, hdr, &direct);
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, "[log]\nlevel = debug\n");
	proxy_start_ok(&px, cfg);

	char req[4096];
	chat_request(req, sizeof(req), hdr, stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&ma, "hup-1", "running", 3000) == 0);

	/* Backend a goes, backend b comes. */
	config2(cfg, sizeof(cfg), "b", &mb, 1, NULL, NULL, 0, "[log]\nlevel = debug\n");
	reload(&px, cfg, RELOADED);
	long a0 = mock_stat(&ma, "requests"), b0 = mock_stat(&mb, "requests");
	for (int k = 0; k < 3; k++)
		chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&mb, "requests") - b0, 3);
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 0);
	/* The new backend's series is there, the old one's stays. */
	struct response m;
	ck_assert_int_eq(http_get(px.port, "/metrics", &m, 3000), 200);
	ck_assert(strstr(m.body, "llmproxy_backend_up{backend=\"b\"} 1") != NULL);
	ck_assert(strstr(m.body, "backend=\"a\"") != NULL);
	response_free(&m);

	/* The stream that started on a ends on a, byte for byte. */
	ck_assert_int_eq(read_response(fd, &via, 10000, 0), 0);
	assert_same_stream(&via, &direct);
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 0);
	/* The old configuration lived exactly as long as the stream held it:
	 * released once its connection is gone, not before. */
	ck_assert_int_eq(file_count(px.proc.err_path, "configuration 1 released"), 0);
	close(fd);
	wait_log_count(&px, "configuration 1 released", 1);
	chat_ok(px.port);
	proxy_stop(&px);
	response_free(&direct);
	response_free(&via);
}
END_TEST

START_TEST(sighup_new_weights)
{
	struct proxy px;
	char cfg[4096];

	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 1, "");
	proxy_start_ok(&px, cfg);
	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 3, "");
	reload(&px, cfg, RELOADED);
	long a0 = mock_stat(&ma, "requests"), b0 = mock_stat(&mb, "requests");
	for (int k = 0; k < 8; k++)
		chat_ok(px.port);
	/* Smooth weighted round robin: exactly 2 and 6 in 8. */
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 2);
	ck_assert_int_eq(mock_stat(&mb, "requests") - b0, 6);
	proxy_stop(&px);
}
END_TEST

/*
 * An ejected backend stays out across a reload that keeps it: its state is
 * carried over by name and url (and were it not, the backend — healthy again
 * by now — would get traffic at once).
 */
START_TEST(sighup_carries_backend_state_over)
{
	struct proxy px;
	char cfg[4096];
	const char *hc = "[health_check]\nenabled = false\neject = true\n"
	    "unhealthy_threshold = 1\neject_cooldown = 60s\n";

	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 1, hc);
	proxy_start_ok(&px, cfg);
	mock_defaults(&mb, "X-Mock-Fail=503");
	for (int k = 0; file_count(px.proc.err_path, "backend b ejected") == 0; k++) {
		struct response r;
		ck_assert_msg(k < 6, "b never ejected");
		post(px.port, "", plain_body, &r);
		response_free(&r);
	}
	mock_defaults(&mb, "");

	config2(cfg, sizeof(cfg), "a", &ma, 2, "b", &mb, 1, hc);
	reload(&px, cfg, RELOADED);
	ck_assert_int_eq(file_count(px.proc.err_path,
	    "(2 with their state carried over)"), 1);
	long b0 = mock_stat(&mb, "requests");
	for (int k = 0; k < 6; k++)
		chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&mb, "requests") - b0, 0);

	/* The same name at another url is another backend: a fresh start. */
	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 1, hc);
	char *url = strstr(cfg, "[backends.b]\nurl = http://127.0.0.1");
	ck_assert_ptr_nonnull(url);
	memcpy(url + strlen("[backends.b]\nurl = http://"), "localhost", 9);
	reload(&px, cfg, RELOADED);
	ck_assert_int_eq(file_count(px.proc.err_path,
	    "(1 with their state carried over)"), 1);
	b0 = mock_stat(&mb, "requests");
	for (int k = 0; k < 4; k++)
		chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&mb, "requests") - b0, 2);
	proxy_stop(&px);
}
END_TEST

START_TEST(sighup_bad_or_unreadable_config_keeps_the_old_one)
{
	struct proxy px;
	char cfg[4096], want[512];

	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, "");
	proxy_start_ok(&px, cfg);

	/* Invalid: named with its file and line; a still serves. */
	reload(&px, "[server]\nlisten = 127.0.0.1:0\n\n[backends.x]\n"
	    "url = ftp://nowhere\n", KEPT);
	snprintf(want, sizeof(want), "%s:5:", px.config_path);
	ck_assert_msg(file_count(px.proc.err_path, want) == 1,
	    "no '%s' in the log", want);
	long a0 = mock_stat(&ma, "requests");
	chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 1);

	/* Gone (unreadable): named too; a still serves. */
	ck_assert_int_eq(unlink(px.config_path), 0);
	int before = file_count(px.proc.err_path, KEPT);
	proxy_signal(&px, SIGHUP);
	wait_log_count(&px, KEPT, before + 1);
	snprintf(want, sizeof(want), "reload: %s", px.config_path);
	ck_assert_msg(file_count(px.proc.err_path, want) == 2,
	    "the unreadable file is not named");
	chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 2);

	/* A directory where the file was: the same. */
	ck_assert_int_eq(mkdir(px.config_path, 0700), 0);
	before = file_count(px.proc.err_path, KEPT);
	proxy_signal(&px, SIGHUP);
	wait_log_count(&px, KEPT, before + 1);
	chat_ok(px.port);
	rmdir(px.config_path);
	proxy_stop(&px);
}
END_TEST

START_TEST(sighup_settings_bound_at_start_need_a_restart)
{
	struct proxy px;
	char cfg[4096];

	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, "");
	proxy_start_ok(&px, cfg);
	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 1, "");
	char *listen = strstr(cfg, "listen = 127.0.0.1:0");
	ck_assert_ptr_nonnull(listen);
	char text[4200];
	snprintf(text, sizeof(text), "%.*slisten = 127.0.0.1:%d\nthreads = 3\n%s",
	    (int)(listen - cfg), cfg, dead_port(), listen + strlen("listen = 127.0.0.1:0\n"));
	reload(&px, text, RELOADED);
	ck_assert_int_eq(file_count(px.proc.err_path,
	    "[server] listen changed: needs a restart"), 1);
	ck_assert_int_eq(file_count(px.proc.err_path,
	    "[server] threads changed: needs a restart"), 1);
	/* Still on its old port, and the rest of the file took effect. */
	long b0 = mock_stat(&mb, "requests");
	for (int k = 0; k < 4; k++)
		chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&mb, "requests") - b0, 2);
	proxy_stop(&px);
}
END_TEST

/* Keys and limits ([auth], [rate_limit]) are part of the config a reload
 * swaps: a key added works at once, a key removed is refused at once. */
#define KEY_A "sk-lifecycle-a-0123456789abcdef"
#define KEY_B "sk-lifecycle-b-0123456789abcdef"

static void
auth_extra(char *out, size_t cap, const char *key, const char *name,
    const char *limits)
{
	snprintf(out, cap, "[auth]\nenabled = true\n"
	    "[auth.pipeline.0]\nname = static_auth\ntype = static\nenabled = true\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = %s\nname = %s\nuser_id = u\n%s",
	    key, name, limits);
}

static int
status_with_key(int port, const char *key)
{
	char h[128];
	struct response r;

	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", key);
	int st = post(port, h, plain_body, &r);
	response_free(&r);
	return st;
}

START_TEST(sighup_keys_and_limits_take_effect)
{
	struct proxy px;
	char cfg[4096], extra[1024];

	auth_extra(extra, sizeof(extra), KEY_A, "ka", "");
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, extra);
	proxy_start_ok(&px, cfg);
	ck_assert_int_eq(status_with_key(px.port, KEY_A), 200);
	ck_assert_int_eq(status_with_key(px.port, KEY_B), 401);

	auth_extra(extra, sizeof(extra), KEY_B, "kb", "[rate_limit]\nenabled = true\n"
	    "[rate_limit.per_key]\nrequests_per_second = 0.01\nburst_size = 2\n");
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, extra);
	reload(&px, cfg, RELOADED);
	ck_assert_int_eq(status_with_key(px.port, KEY_A), 401);
	ck_assert_int_eq(status_with_key(px.port, KEY_B), 200);
	ck_assert_int_eq(status_with_key(px.port, KEY_B), 200);
	ck_assert_int_eq(status_with_key(px.port, KEY_B), 429);
	proxy_stop(&px);
}
END_TEST

/*
 * With auth on and skip_paths not given, the metrics path is open.  A reload
 * that changes [metrics] path keeps the path served (that needs a restart),
 * and the open path is still the one served, not the new config's.
 */
START_TEST(sighup_kept_metrics_path_stays_open_with_auth)
{
	struct proxy px;
	char cfg[4096], extra[1024];
	struct response r;

	auth_extra(extra, sizeof(extra), KEY_A, "ka", "");
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, extra);
	proxy_start_ok(&px, cfg);
	ck_assert_int_eq(http_get(px.port, "/metrics", &r, 5000), 200);
	response_free(&r);

	auth_extra(extra, sizeof(extra), KEY_A, "ka", "[metrics]\npath = /prom\n");
	config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, extra);
	reload(&px, cfg, RELOADED);
	ck_assert_int_eq(file_count(px.proc.err_path,
	    "[metrics] path changed: needs a restart"), 1);
	ck_assert_int_eq(http_get(px.port, "/metrics", &r, 5000), 200);
	ck_assert_msg(strstr(r.body, "llmproxy_requests_total") != NULL, "%s", r.body);
	response_free(&r);
	/* The path not served is not opened either. */
	ck_assert_int_eq(http_get(px.port, "/prom", &r, 5000), 401);
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

/*
 * Reloads in quick succession while requests keep coming and a stream runs
 * through all of them: no request fails, the stream is intact, and the last
 * config wins.  (Run against a sanitizer build, it is the race test of the
 * snapshot swap.)
 */
START_TEST(sighup_storm_under_traffic)
{
	struct proxy px;
	struct response direct, via;
	char cfg[4096], tmp[300];
	const char *hdr = "X-Request-Id: storm\r\nX-Mock-Tokens: 40\r\nX-Mock-Delay-Ms: 50\r\n";

	direct_stream(&ma, hdr, &direct);
	config2(cfg, sizeof(cfg), "a", &ma, 1, "b", &mb, 1, "");
	proxy_start_ok(&px, cfg);
	char req[4096];
	chat_request(req, sizeof(req), hdr, stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&ma, "storm", "running", 3000) == 0 ||
	    mock_wait_state(&mb, "storm", "running", 3000) == 0);

	snprintf(tmp, sizeof(tmp), "%s.new", px.config_path);
	for (int k = 0; k < 60; k++) {
		if (k % 3 == 0) {
			/* a alone, b alone, both with other weights, in turn. */
			int v = (k / 3) % 3;
			if (v == 0)
				config2(cfg, sizeof(cfg), "a", &ma, 1, NULL, NULL, 0, "");
			else if (v == 1)
				config2(cfg, sizeof(cfg), "b", &mb, 1, NULL, NULL, 0, "");
			else
				config2(cfg, sizeof(cfg), "a", &ma, 2, "b", &mb, 5, "");
			FILE *f = fopen(tmp, "w");
			ck_assert_ptr_nonnull(f);
			fputs(cfg, f);
			fclose(f);
			ck_assert_int_eq(rename(tmp, px.config_path), 0);
			proxy_signal(&px, SIGHUP);
		}
		chat_ok(px.port);
	}
	ck_assert_int_eq(read_response(fd, &via, 10000, 0), 0);
	close(fd);
	assert_same_stream(&via, &direct);

	config2(cfg, sizeof(cfg), "b", &mb, 1, NULL, NULL, 0, "");
	reload(&px, cfg, RELOADED);
	long a0 = mock_stat(&ma, "requests");
	for (int k = 0; k < 3; k++)
		chat_ok(px.port);
	ck_assert_int_eq(mock_stat(&ma, "requests") - a0, 0);
	proxy_stop(&px);
	response_free(&direct);
	response_free(&via);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
	Suite *s = suite_create("e2e_lifecycle");
	TCase *t = tcase_create("lifecycle");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, sigterm_refuses_new_connections_finishes_the_stream_spools_its_record);
	tcase_add_test(t, sighup_new_backend_for_new_requests_stream_in_flight_untouched);
	tcase_add_test(t, sighup_new_weights);
	tcase_add_test(t, sighup_carries_backend_state_over);
	tcase_add_test(t, sighup_bad_or_unreadable_config_keeps_the_old_one);
	tcase_add_test(t, sighup_settings_bound_at_start_need_a_restart);
	tcase_add_test(t, sighup_keys_and_limits_take_effect);
	tcase_add_test(t, sighup_kept_metrics_path_stays_open_with_auth);
	tcase_add_test(t, sighup_storm_under_traffic);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lifecycle_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
