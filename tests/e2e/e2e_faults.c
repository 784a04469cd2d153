/*
 * e2e_faults.c — what breaks around the proxy, through the real binary: a
 * backend process killed (SIGKILL) in the middle of a stream, a webhook that
 * flaps between up and down while records keep coming, and a spool on a
 * full file system.  The faults that e2e_stream, e2e_http, e2e_usage and
 * e2e_lifecycle already show are listed in README's Tests section.
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;
static struct receiver rv;
static char mounted[128];       /* a tmpfs to take away at the end */

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

static void
setup(void)
{
	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
}

static void
teardown(void)
{
	if (mounted[0] != '\0') {
		umount2(mounted, MNT_DETACH);
		rm_rf_dir(mounted);
		mounted[0] = '\0';
	}
	receiver_stop(&rv);
	mock_stop(&mock);
}

/* [usage] to the receiver, plus extra. */
static void
usage_config(char *out, size_t cap, const char *extra)
{
	char sections[2048];

	snprintf(sections, sizeof(sections), "[usage]\nmax_wait = 200ms\n%s\n"
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n"
	    "timeout = 2s\n", extra, rv.port);
	proxy_config(out, cap, &mock, sections);
}

static void
wait_record(const char *id, char *out, size_t cap)
{
	int64_t deadline = now_ms() + 10000;

	while (receiver_count(&rv, id, out, cap) == 0) {
		ck_assert_msg(now_ms() < deadline, "no usage record for %s", id);
		usleep(20 * 1000);
	}
}

static int
post_stream(int port, const char *headers, struct response *r)
{
	char req[4096];

	chat_request(req, sizeof(req), headers, stream_body);
	ck_assert_int_eq(http_exchange(port, req, r, 10000), 0);
	return r->status;
}

/* ---- the backend killed mid-stream -------------------------------------------- */

START_TEST(backend_killed_mid_stream)
{
	struct proxy px;
	struct response r;
	char cfg[4096], req[4096], rec[4096];

	usage_config(cfg, sizeof(cfg), "");
	proxy_start_ok(&px, cfg);
	chat_request(req, sizeof(req), "X-Request-Id: killed\r\nX-Mock-Tokens: 50\r\n"
	    "X-Mock-Delay-Ms: 50\r\n", stream_body);
	int fd = tcp_connect(px.port);
	send_str(fd, req);
	ck_assert(mock_wait_state(&mock, "killed", "running", 3000) == 0);
	usleep(200 * 1000);                    /* a few tokens on their way */
	int port = mock.port;
	mock_kill9(&mock);

	int64_t t0 = now_ms();
	ck_assert_int_eq(read_response(fd, &r, 5000, 0), 0);
	close(fd);
	/* Promptly, and as a failure: the error event, no [DONE]. */
	ck_assert_int_lt(now_ms() - t0, 2000);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(!r.complete, "a killed backend's stream ended like a good one");
	ck_assert(memmem(r.body, r.body_len, " tok1", 5) != NULL);
	ck_assert(memmem(r.body, r.body_len, "[DONE]", 6) == NULL);
	ck_assert_msg(memmem(r.body, r.body_len, "data: {\"error\":", 15) != NULL,
	    "no error event:\n%s", r.body);
	response_free(&r);

	/* Billed for what was delivered, and marked as cut. */
	wait_record("killed", rec, sizeof(rec));
	ck_assert_msg(strstr(rec, "\"finish\":\"upstream_error\"") != NULL, "%s", rec);
	ck_assert_msg(strstr(rec, "\"completion_tokens\":0") == NULL, "%s", rec);

	/* The proxy is fine, and uses the backend again once it is back. */
	mock_start_on(&mock, port);
	ck_assert_int_eq(post_stream(px.port, "", &r), 200);
	ck_assert(r.complete);
	response_free(&r);
	proxy_stop(&px);
}
END_TEST

/* ---- the webhook flapping ------------------------------------------------------- */

#define FLAP_REQUESTS 24

START_TEST(webhook_flapping_delivers_each_record_once)
{
	struct proxy px;
	struct response r;
	char cfg[4096], id[32], h[128];

	usage_config(cfg, sizeof(cfg), "");
	proxy_start_ok(&px, cfg);
	/* Down, up, down, ... every fourth request, while records keep coming. */
	for (int i = 0; i < FLAP_REQUESTS; i++) {
		if (i % 4 == 0)
			receiver_control(&rv, (i / 4) % 2 == 0 ? "status=503" : "reset=1");
		snprintf(h, sizeof(h), "X-Request-Id: flap-%d\r\n", i);
		ck_assert_int_eq(post_stream(px.port, h, &r), 200);
		ck_assert(r.complete);
		response_free(&r);
		usleep(50 * 1000);
	}
	receiver_control(&rv, "reset=1");
	for (int i = 0; i < FLAP_REQUESTS; i++) {
		snprintf(id, sizeof(id), "flap-%d", i);
		wait_record(id, NULL, 0);
	}
	/* Past the next retry: no record twice. */
	usleep(600 * 1000);
	for (int i = 0; i < FLAP_REQUESTS; i++) {
		snprintf(id, sizeof(id), "flap-%d", i);
		ck_assert_msg(receiver_count(&rv, id, NULL, 0) == 1, "%s delivered %zu times", id,
		    receiver_count(&rv, id, NULL, 0));
	}
	struct response m;
	ck_assert_int_eq(http_get(px.port, "/metrics", &m, 3000), 200);
	ck_assert_msg(strstr(m.body, "llmproxy_webhook_failure_total 0\n") == NULL,
	    "the failed deliveries were not counted");
	ck_assert(strstr(m.body, "llmproxy_webhook_dropped_total 0\n") != NULL);
	response_free(&m);
	proxy_stop(&px);
}
END_TEST

/* ---- the spool's file system full ------------------------------------------------ */

/* Fills the file system holding dir until write() says ENOSPC. */
static void
fill(const char *dir)
{
	char path[256], buf[4096];
	snprintf(path, sizeof(path), "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	memset(buf, 'x', sizeof(buf));
	for (;;) {
		ssize_t w = write(fd, buf, sizeof(buf));
		if (w < 0) {
			ck_assert_int_eq(errno, ENOSPC);
			break;
		}
		if (w < (ssize_t)sizeof(buf) && write(fd, buf, 1) < 0) {
			ck_assert_int_eq(errno, ENOSPC);
			break;
		}
	}
	close(fd);
}

START_TEST(spool_on_a_full_disk)
{
	struct proxy px;
	struct response r, m;
	char dir[128], extra[512], cfg[4096], spool[256];

	/* A file system of its own, 64 KiB, to fill: tmpfs, as root. */
	make_temp_dir(dir, sizeof(dir), "fullfs");
	ck_assert_msg(mount("llmproxy-test", dir, "tmpfs", 0, "size=64k") == 0,
	    "mount tmpfs on %s: %s (this test needs root)", dir, strerror(errno));
	snprintf(mounted, sizeof(mounted), "%s", dir);
	snprintf(spool, sizeof(spool), "%s/usage.spool", dir);
	snprintf(extra, sizeof(extra), "spool = %s\n", spool);
	usage_config(cfg, sizeof(cfg), extra);
	/* The webhook is down: every record must stay in the spool. */
	receiver_control(&rv, "status=503");
	proxy_start_ok(&px, cfg);
	fill(dir);

	for (int i = 0; i < 5; i++) {
		char h[64];
		snprintf(h, sizeof(h), "X-Request-Id: full-%d\r\n", i);
		ck_assert_int_eq(post_stream(px.port, h, &r), 200);
		ck_assert_msg(r.complete, "a full spool broke the stream");
		ck_assert(memmem(r.body, r.body_len, "[DONE]", 6) != NULL);
		response_free(&r);
	}
	/* Counted, and said (once a second at most, with how many). */
	ck_assert_int_eq(http_get(px.port, "/metrics", &m, 3000), 200);
	ck_assert_msg(strstr(m.body, "llmproxy_webhook_dropped_total 5\n") != NULL,
	    "drops not counted:\n%s", strstr(m.body, "llmproxy_webhook"));
	response_free(&m);
	ck_assert(wait_file_contains(px.proc.err_path,
	    "usage: record dropped: No space left on device", 2000, NULL, 0) == 0);

	/* Room again: the next records are kept and delivered. */
	char filler[256];
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	ck_assert_int_eq(unlink(filler), 0);
	ck_assert_int_eq(post_stream(px.port, "X-Request-Id: room-again\r\n", &r), 200);
	response_free(&r);
	receiver_control(&rv, "reset=1");
	wait_record("room-again", NULL, 0);
	ck_assert_uint_eq(receiver_count(&rv, "full-0", NULL, 0), 0);
	proxy_stop(&px);
}
END_TEST

static Suite *
faults_suite(void)
{
	Suite *s = suite_create("e2e_faults");
	TCase *t = tcase_create("faults");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, backend_killed_mid_stream);
	tcase_add_test(t, webhook_flapping_delivers_each_record_once);
	tcase_add_test(t, spool_on_a_full_disk);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(faults_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
