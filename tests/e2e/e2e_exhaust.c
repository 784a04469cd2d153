/*
 * e2e_exhaust.c — clients that try to wear the proxy out, through the real
 * binary: 300 connections trickling a request head (or, after a complete
 * head, a body) a byte every 100 ms while a normal client is answered within
 * a second, each trickler refused with
 * 408 at its head deadline and closed, memory bounded meanwhile; and the
 * process out of file descriptors (a low RLIMIT_NOFILE): accept backs off
 * instead of spinning, says so once, and serves again when connections close.
 * (Idle keep-alive and a single slow head are in e2e_http's timeouts.)
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;

static void
setup(void)
{
	mock_start(&mock);
}

static void
teardown(void)
{
	mock_stop(&mock);
}

/* ---- the process, from /proc ------------------------------------------------ */

/* Resident set in KiB. */
static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* utime + stime in clock ticks (proc(5) fields 14 and 15). */
static long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');  /* the name may hold spaces */
	ck_assert_ptr_nonnull(p);
	/* After ") ": state(3) ... utime is the 12th field from there. */
	ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
	    "%*u %lu %lu", &ut, &st), 2);
	return (long)(ut + st);
}

/* A plain request through the proxy; returns how long it took (ms). */
static int64_t
timed_request(int port)
{
	struct response r;
	int64_t t0 = now_ms();

	ck_assert_int_eq(http_exchange(port, "GET /v1/echo/normal HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r, 3000), 0);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	return now_ms() - t0;
}

/* ---- slowloris ---------------------------------------------------------------- */

#define TRICKLERS 300
#define HEAD_DEADLINE_MS 3000

/* What the tricklers send: `at_once` in one go, then `slow` a byte every
 * 100 ms, never all of it.  A head, and (slow POST) a body of either framing
 * after a complete head: the waiting room holds all three without a thread. */
static const struct {
	const char *name;
	const char *at_once;
	const char *slow;
} trickle[] = {
	{ "head", "", "GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-Slow: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	{ "Content-Length body", "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 1000\r\n\r\n",
	    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaa" },
	{ "chunked body", "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n3e8\r\n",
	    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaa" },
};

START_TEST(slowloris_300_tricklers)
{
	const char *head = trickle[_i].slow;
	size_t head_len = strlen(head);
	struct proxy px;
	char cfg[1024];
	int fd[TRICKLERS], got408[TRICKLERS] = { 0 };
	int64_t closed_at[TRICKLERS] = { 0 };
	size_t sent[TRICKLERS] = { 0 };

	proxy_config(cfg, sizeof(cfg), &mock, "[server]\nread_timeout = 3s\n");
	proxy_start_ok(&px, cfg);
	timed_request(px.port);                         /* warm: one worker */
	long rss0 = rss_kib(px.proc.pid), rss_peak = rss0;

	int64_t t0 = now_ms();
	for (int i = 0; i < TRICKLERS; i++) {
		fd[i] = tcp_connect(px.port);
		send_str(fd[i], trickle[_i].at_once);
		fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
	}
	int open_fds = TRICKLERS, tick = 0;
	int64_t worst = 0;
	while (open_fds > 0) {
		ck_assert_msg(now_ms() - t0 < HEAD_DEADLINE_MS + 4000,
		    "%d trickling connections still open after %lld ms", open_fds,
		    (long long)(now_ms() - t0));
		for (int i = 0; i < TRICKLERS; i++) {
			if (closed_at[i] != 0)
				continue;
			/* One byte, never the whole head. */
			if (sent[i] < head_len &&
			    send(fd[i], head + sent[i], 1, MSG_NOSIGNAL) == 1)
				sent[i]++;
			char buf[512];
			ssize_t n = recv(fd[i], buf, sizeof(buf) - 1, 0);
			if (n > 0) {
				buf[n] = '\0';
				if (strncmp(buf, "HTTP/1.1 408 ", 13) == 0)
					got408[i] = 1;
				n = recv(fd[i], buf, sizeof(buf), 0);
			}
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				closed_at[i] = now_ms();
				close(fd[i]);
				open_fds--;
			}
		}
		if (tick % 5 == 2 && open_fds == TRICKLERS) {
			/* The waiting room holds them all: a normal client is
			 * served as if they were not there. */
			int64_t ms = timed_request(px.port);
			worst = ms > worst ? ms : worst;
			long rss = rss_kib(px.proc.pid);
			rss_peak = rss > rss_peak ? rss : rss_peak;
		}
		tick++;
		usleep(100 * 1000);
	}
	for (int i = 0; i < TRICKLERS; i++) {
		ck_assert_msg(got408[i], "trickler %d closed without a 408", i);
		ck_assert_msg(closed_at[i] - t0 >= HEAD_DEADLINE_MS - 200,
		    "trickler %d closed after %lld ms, before its deadline", i,
		    (long long)(closed_at[i] - t0));
	}
	ck_assert_msg(worst < 1000, "a normal request took %lld ms", (long long)worst);
	/* Each parked head costs its buffer and its connection, a few KiB: the
	 * bound is 300 x 32 KiB over the idle process. */
	fprintf(stderr, "slowloris (%s): %d tricklers, normal request worst %lld ms, "
	    "RSS %ld KiB idle, %ld KiB peak\n", trickle[_i].name, TRICKLERS,
	    (long long)worst, rss0, rss_peak);
	ck_assert_msg(rss_peak - rss0 < TRICKLERS * 32, "RSS grew by %ld KiB",
	    rss_peak - rss0);
	ck_assert(timed_request(px.port) < 1000);
	proxy_stop(&px);
}
END_TEST

/* ---- out of descriptors --------------------------------------------------------- */

#define NOFILE 48
#define HOGS 80

START_TEST(emfile_backs_off_and_recovers)
{
	struct proxy px;
	char cfg[1024];
	struct rlimit was, low;
	int hog[HOGS];

	/* The proxy alone gets the low limit: set for the spawn, then back. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &was), 0);
	low = was;
	low.rlim_cur = NOFILE;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	proxy_config(cfg, sizeof(cfg), &mock, "");
	int started = proxy_start(&px, cfg);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
	ck_assert_int_eq(started, 0);

	/* More idle connections than it has descriptors: the rest wait in the
	 * kernel's backlog. */
	for (int i = 0; i < HOGS; i++)
		hog[i] = tcp_connect(px.port);
	ck_assert(wait_file_contains(px.proc.err_path, "Too many open files", 3000,
	    NULL, 0) == 0);

	/* Out of descriptors with the listener still readable: a process that
	 * retried accept() at once would burn a core.  One second of its CPU
	 * time, from the kernel's own count. */
	usleep(200 * 1000);
	long ticks = sysconf(_SC_CLK_TCK);
	long c0 = cpu_ticks(px.proc.pid);
	int64_t w0 = now_ms();
	usleep(1000 * 1000);
	long used = cpu_ticks(px.proc.pid) - c0;
	int64_t wall = now_ms() - w0;
	fprintf(stderr, "EMFILE: %ld of %ld ticks in %lld ms\n", used, ticks,
	    (long long)wall);
	ck_assert_msg(used * 10 <= ticks, "the proxy used %ld/%ld s of CPU in %lld ms "
	    "while out of descriptors", used, ticks, (long long)wall);
	/* Said once, not at every retry. */
	ck_assert_int_eq(file_count(px.proc.err_path, "Too many open files"), 1);

	/* The clients go: it accepts again and serves. */
	for (int i = 0; i < HOGS; i++)
		close(hog[i]);
	ck_assert(wait_file_contains(px.proc.err_path, "accepting connections again",
	    3000, NULL, 0) == 0);
	int64_t deadline = now_ms() + 3000;
	for (;;) {
		struct response r;
		memset(&r, 0, sizeof(r));
		int rc = http_exchange(px.port, "GET /v1/echo HTTP/1.1\r\nHost: x\r\n"
		    "Connection: close\r\n\r\n", &r, 1000);
		int ok = rc == 0 && r.status == 200;
		response_free(&r);
		if (ok)
			break;
		ck_assert_msg(now_ms() < deadline, "not serving after the clients left");
	}
	proxy_stop(&px);
}
END_TEST

static Suite *
exhaust_suite(void)
{
	Suite *s = suite_create("e2e_exhaust");
	TCase *t = tcase_create("exhaust");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_loop_test(t, slowloris_300_tricklers, 0,
	    (int)(sizeof(trickle) / sizeof(trickle[0])));
	tcase_add_test(t, emfile_backs_off_and_recovers);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(exhaust_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
