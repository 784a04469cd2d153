/*
 * check_httpc.c — the proxy's own HTTP client (src/httpc.c) against the mock
 * backend and against small scripted servers.
 *
 * What its users see depends on it: a webhook delivery that is neither lost
 * nor stuck, a health probe whose status is read right and whose connection
 * stays open between probes, a /v1/models answer read whole or not at all.
 * The probe thread and GET /v1/models (src/health.c), its two users besides
 * the webhook, are tested here too, against the same mock: transitions and
 * what the log says of them, keep-alive between probes, a prompt stop, and
 * the model list.
 * The mock ($MOCK_BIN, default build/tests/mock_upstream) runs for the whole
 * suite on 127.0.0.1; each test resets its counters.  What the mock cannot be
 * told to do (a kept connection that dies after the liveness check, 1xx
 * heads, broken framing) a scripted server in the test does.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "balancer.h"
#include "caps.h"
#include "config.h"
#include "health.h"
#include "httpc.h"
#include "io.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static pid_t mock_pid;
static char mock_port[6];

/* ---- the mock ------------------------------------------------------------------ */

/* Starts the mock on an ephemeral port and reads its one "listening on"
 * line.  Returns 0 or -1 (with a message on stderr). */
static int
mock_start(void)
{
	const char *bin = getenv("MOCK_BIN");
	char line[256];
	int p[2];
	FILE *f;

	if (bin == NULL || bin[0] == '\0')
		bin = "build/tests/mock_upstream";
	if (pipe(p) < 0)
		return -1;
	mock_pid = fork();
	if (mock_pid < 0)
		return -1;
	if (mock_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(p[1], STDOUT_FILENO);
		if (null >= 0 && getenv("MOCK_LOG") == NULL)
			dup2(null, STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		execl(bin, bin, "--listen", "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "mock_upstream listening on 127.0.0.1:%5[0-9]",
	    mock_port) != 1) {
		fprintf(stderr, "check_httpc: %s did not start\n", bin);
		return -1;
	}
	fclose(f);
	return 0;
}

static void
mock_stop(void)
{
	kill(mock_pid, SIGTERM);
	waitpid(mock_pid, NULL, 0);
}

/* ---- requests -------------------------------------------------------------------- */

/* A response as the tests look at it. */
struct resp {
	int rc;
	int err;                /* errno when rc < 0 */
	int status;
	char body[256 * 1024];
	size_t len;
};

static struct resp r;        /* static: large, and tests run one at a time */

/* Sends `method path` with extra header lines (each ending in CRLF) and a
 * body, within timeout_ms, keeping cap bytes of the response body. */
static void
request(struct httpc *h, const char *method, const char *path,
    const char *fields, const char *body, size_t cap, int timeout_ms)
{
	char head[2048];
	size_t blen = body != NULL ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: "
	    "127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n", method, path,
	    fields != NULL ? fields : "", blen);

	ck_assert(n > 0 && (size_t)n < sizeof(head));
	ck_assert_uint_le(cap, sizeof(r.body));
	memset(r.body, 0, sizeof(r.body));
	errno = 0;
	r.rc = httpc_request(h, head, (size_t)n, body, blen,
	    io_now_ms() + timeout_ms, &r.status, r.body, cap, &r.len);
	r.err = errno;
}

/* A request to the mock's control endpoints that must succeed; the body is
 * in r.  On a connection of its own, kept alive, so that the mock's
 * "accepted" counts only the connections of the code under test. */
static void
control(const char *method, const char *path)
{
	static struct httpc h;

	if (h.host[0] == '\0')
		httpc_init(&h, "127.0.0.1", mock_port);
	request(&h, method, path, NULL, NULL, sizeof(r.body), 2000);
	ck_assert_msg(r.rc == 0 && r.status == 200, "%s %s: %d %d %s", method,
	    path, r.rc, r.status, h.why);
}

/* A counter from GET /mock/stats. */
static long
mock_stat(const char *name)
{
	char key[64];
	const char *p;

	control("GET", "/mock/stats");
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(r.body, key);
	ck_assert_msg(p != NULL, "no %s in %s", name, r.body);
	return strtol(p + strlen(key), NULL, 10);
}

static void
mock_reset(void)
{
	control("POST", "/mock/reset");
}

static void
setup(void)
{
	mock_reset();
}

/* ---- scripted servers ---------------------------------------------------------------- */

/* One answer: the bytes to send after a request head arrived (NULL: close
 * the connection without answering), and whether to close after them. */
struct step {
	const char *reply;
	int close;
};

struct script {
	const struct step *steps;
	size_t nsteps;
	int lfd;
	char port[6];
	_Atomic int accepted;
	_Atomic int requests;
	pthread_t tid;
};

/* Reads one request head (the tests send no bodies to scripts).  Returns 0,
 * or -1 at end of stream. */
static int
read_head(int fd)
{
	char buf[4096];
	size_t n = 0;

	while (n < sizeof(buf)) {
		ssize_t k = read(fd, buf + n, 1);
		if (k <= 0)
			return -1;
		n++;
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return 0;
	}
	return -1;
}

static void *
script_main(void *arg)
{
	struct script *s = arg;
	size_t i = 0;
	int fd = -1;

	while (i < s->nsteps) {
		if (fd < 0) {
			fd = accept(s->lfd, NULL, NULL);
			if (fd < 0)
				return NULL;
			s->accepted++;
		}
		if (read_head(fd) < 0) {
			/* The client left: the step waits for the next
			 * connection. */
			close(fd);
			fd = -1;
			continue;
		}
		s->requests++;
		const struct step *st = &s->steps[i++];
		if (st->reply != NULL &&
		    write(fd, st->reply, strlen(st->reply)) < 0)
			break;
		if (st->reply == NULL || st->close) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		/* Hold the connection until the client is done with it. */
		char c;
		while (read(fd, &c, 1) > 0)
			;
		close(fd);
	}
	return NULL;
}

static void
script_start(struct script *s, const struct step *steps, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	s->steps = steps;
	s->nsteps = n;
	s->accepted = 0;
	s->requests = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s->lfd, 0);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s->lfd, 8), 0);
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(s->port, sizeof(s->port), "%u", ntohs(sa.sin_port));
	ck_assert_int_eq(pthread_create(&s->tid, NULL, script_main, s), 0);
}

/* Waits for the server to finish its script (the client must have closed
 * its connection). */
static void
script_end(struct script *s)
{
	pthread_join(s->tid, NULL);
	close(s->lfd);
}

#define STEPS(...) (const struct step[]){ __VA_ARGS__ }, \
	sizeof((const struct step[]){ __VA_ARGS__ }) / sizeof(struct step)

#define OK3(body) "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" body

/* ---- keep-alive ----------------------------------------------------------------------- */

static struct httpc hc;      /* the client under test */

static void
client(const char *port)
{
	httpc_init(&hc, "127.0.0.1", port);
}

/* A request that must be answered `status`, its whole body in r. */
static void
expect(const char *method, const char *path, const char *fields, int status)
{
	request(&hc, method, path, fields, NULL, sizeof(r.body), 2000);
	ck_assert_msg(r.rc == 0 && r.status == status, "%s %s: %d, status %d "
	    "(%s)", method, path, r.rc, r.status, hc.why);
}

/* Whether the connection was kept for the next request. */
static int
kept(void)
{
	return hc.io.fd >= 0;
}

/* Requests on one httpc share one connection. */
START_TEST(test_keep_alive_reuse)
{
	client(mock_port);
	for (int i = 0; i < 3; i++) {
		expect("GET", "/v1/models", NULL, 200);
		ck_assert_ptr_nonnull(strstr(r.body, "\"id\":\"mock-model\""));
		ck_assert_uint_eq(r.len, strlen(r.body));
		ck_assert(kept());
	}
	httpc_close(&hc);
	ck_assert(!kept());
	ck_assert_int_eq(mock_stat("connections"), 1);
	ck_assert_int_eq(mock_stat("requests"), 3);
}
END_TEST

/* The mock closes the kept connection right after its answer: the next
 * request sees it is gone and goes out on a new one, without failing. */
START_TEST(test_idle_closed_replaced)
{
	client(mock_port);
	expect("GET", "/v1/models", "X-Mock-Idle-Close-Ms: 0\r\n", 200);
	/* Let the FIN arrive. */
	nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	expect("GET", "/v1/models", NULL, 200);
	ck_assert_int_eq(mock_stat("connections"), 2);
}
END_TEST

/* A kept connection that still looked alive but is closed when the request
 * arrives (the race every keep-alive client has): sent again, once, on a new
 * connection. */
START_TEST(test_dead_reused_retried_once)
{
	struct script s;

	script_start(&s, STEPS({ OK3("one"), 0 }, { NULL, 0 },
	    { OK3("two"), 0 }));
	client(s.port);
	expect("GET", "/a", NULL, 200);
	ck_assert_str_eq(r.body, "one");
	expect("GET", "/b", NULL, 200);
	ck_assert_str_eq(r.body, "two");
	ck_assert_int_eq(s.accepted, 2);
	httpc_close(&hc);
	script_end(&s);
}
END_TEST

/* Only once: when the new connection fails the same way, that is the
 * answer. */
START_TEST(test_retry_only_once)
{
	client(mock_port);
	expect("GET", "/v1/models", NULL, 200);
	request(&hc, "GET", "/v1/models", "X-Mock-Fail: close-before-head\r\n",
	    NULL, sizeof(r.body), 2000);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.err, ECONNRESET);
	ck_assert_str_eq(hc.why, "connection closed without a response");
	ck_assert_int_eq(mock_stat("requests"), 3);
	ck_assert_int_eq(mock_stat("connections"), 2);
}
END_TEST

/* A response read to the close, or one to a request that said
 * Connection: close, leaves no connection behind; the next request makes a
 * new one. */
START_TEST(test_close_delimited)
{
	static char first[sizeof(r.body)];

	client(mock_port);
	expect("GET", "/v1/models", NULL, 200);
	memcpy(first, r.body, sizeof(first));
	expect("GET", "/v1/models", "X-Mock-Framing: close\r\n", 200);
	ck_assert_str_eq(r.body, first);
	ck_assert(!kept());
	expect("GET", "/v1/models", "Connection: close\r\n", 200);
	ck_assert_str_eq(r.body, first);
	ck_assert(!kept());
	/* The first two shared one. */
	ck_assert_int_eq(mock_stat("connections"), 2);
}
END_TEST

/* ---- bodies ----------------------------------------------------------------------------- */

/* Chunked: the payload alone, and the connection stays usable. */
START_TEST(test_chunked)
{
	static char plain[sizeof(r.body)];

	client(mock_port);
	expect("GET", "/v1/models", "X-Mock-Models: a,b,c\r\n", 200);
	memcpy(plain, r.body, sizeof(plain));
	for (int i = 0; i < 2; i++) {
		expect("GET", "/v1/models", "X-Mock-Models: a,b,c\r\n"
		    "X-Mock-Framing: chunked\r\n", 200);
		ck_assert_str_eq(r.body, plain);
		ck_assert_uint_eq(r.len, strlen(plain));
	}
	ck_assert(kept());
	ck_assert_int_eq(mock_stat("connections"), 1);
}
END_TEST

/* A body larger than the cap: the first cap bytes are kept, the rest read
 * and dropped (here more than the read buffer), and the connection carries
 * the next request.  Cap 0 and no buffer (the webhook's case) keep
 * nothing. */
START_TEST(test_body_over_cap)
{
	static char body[100 * 1024 + 1];
	char head[] = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
	int status;
	size_t len = 99;

	memset(body, 'x', sizeof(body) - 1);
	client(mock_port);
	for (int framing = 0; framing < 2; framing++) {
		request(&hc, "POST", "/v1/echo", framing ?
		    "X-Mock-Framing: chunked\r\n" : NULL, body, 20, 5000);
		ck_assert_int_eq(r.rc, 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.len, 20);
		ck_assert_str_eq(r.body, "{\"method\":\"POST\",\"ta");
		ck_assert(kept());
	}
	ck_assert_int_eq(httpc_request(&hc, head, sizeof(head) - 1, NULL, 0,
	    io_now_ms() + 2000, &status, NULL, 0, &len), 0);
	ck_assert_int_eq(status, 200);
	ck_assert_uint_eq(len, 0);
	expect("GET", "/v1/models", NULL, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "mock-model"));
	ck_assert_int_eq(mock_stat("connections"), 1);
}
END_TEST

/* HEAD: no body whatever Content-Length says.  Error statuses are answers
 * like any other.  The connection stays through all of them. */
START_TEST(test_head_and_error_statuses)
{
	client(mock_port);
	expect("HEAD", "/v1/models", NULL, 200);
	ck_assert_uint_eq(r.len, 0);
	expect("GET", "/health", "X-Mock-Health: 503\r\n", 503);
	expect("GET", "/nope", NULL, 404);
	ck_assert_ptr_nonnull(strstr(r.body, "\"error\""));
	expect("GET", "/health", NULL, 200);
	ck_assert_uint_eq(r.len, 0);
	expect("GET", "/v1/models", NULL, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "mock-model"));
	ck_assert(kept());
	ck_assert_int_eq(mock_stat("connections"), 1);
}
END_TEST

/*
 * Scripted answers, each read whole: 1xx heads before the final one are
 * skipped (RFC 9110 §15.2); bytes after the body that nobody asked for
 * leave the body as it is, but the connection is not used again.
 */
static const struct script_case {
	const char *name;
	const char *reply;
	int status;
	const char *body;
	int kept;
} script_cases[] = {
	{ "interim heads", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early "
	  "Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" OK3("fin"), 200,
	  "fin", 1 },
	{ "chunked with extensions and trailers", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n2;x=\"y\"\r\nfi\r\n1\r\nn\r\n0\r\n"
	  "T: v\r\n\r\n", 200, "fin", 1 },
	{ "HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: "
	  "3\r\n\r\nfin", 200, "fin", 0 },
	{ "stray bytes after Content-Length", OK3("finEXTRA"), 200, "fin", 0 },
	{ "stray bytes after chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n3\r\nfin\r\n0\r\n\r\nEXTRA", 200, "fin", 0 },
	{ "stray bytes after 204", "HTTP/1.1 204 No Content\r\n\r\nfin", 204,
	  "", 0 },
};

START_TEST(test_scripted)
{
	const struct script_case *c = &script_cases[_i];
	struct script s;

	script_start(&s, STEPS({ c->reply, !c->kept }, { OK3("two"), 0 }));
	client(s.port);
	expect("GET", "/", NULL, c->status);
	ck_assert_msg(strcmp(r.body, c->body) == 0, "%s: body \"%s\"", c->name,
	    r.body);
	ck_assert_msg(kept() == c->kept, "%s: kept %d", c->name, kept());
	expect("GET", "/", NULL, 200);
	ck_assert_str_eq(r.body, "two");
	ck_assert_int_eq(s.accepted, c->kept ? 1 : 2);
	httpc_close(&hc);
	script_end(&s);
}
END_TEST

/* ---- failures ------------------------------------------------------------------------------ */

/*
 * What the mock can be told to do wrong.  Each ends in -1, the connection
 * closed, no retry (a new connection is not retried); the status is there
 * when its head arrived, and so are the body bytes that came.
 */
static const struct fail_case {
	const char *name;
	const char *fields;
	int timeout_ms;
	int err;
	int status;
	const char *why;        /* hc.why starts with it */
} fail_cases[] = {
	{ "head after the deadline", "X-Mock-Head-Delay-Ms: 3000\r\n", 200,
	  ETIMEDOUT, 0, "waiting for the response: timed out" },
	{ "head never comes", "X-Mock-Fail: stall-head\r\n", 200, ETIMEDOUT, 0,
	  "waiting for the response: timed out" },
	{ "not HTTP", "X-Mock-Fail: garbage\r\n", 2000, EPROTO, 0,
	  "malformed response" },
	{ "closed before the head", "X-Mock-Fail: close-before-head\r\n",
	  2000, ECONNRESET, 0, "connection closed without a response" },
	{ "reset before the head", "X-Mock-Fail: reset-before-head\r\n", 2000,
	  ECONNRESET, 0, "waiting for the response: " },
	{ "closed in the body", "X-Mock-Fail: close-mid\r\n", 2000,
	  ECONNRESET, 200, "connection closed in the response body" },
	{ "body stalls past the deadline", "X-Mock-Fail: stall-mid\r\n", 200,
	  ETIMEDOUT, 200, "reading the response body: timed out" },
};

START_TEST(test_mock_failures)
{
	const struct fail_case *c = &fail_cases[_i];
	int64_t t0 = io_now_ms(), took;

	client(mock_port);
	request(&hc, "GET", "/v1/models", c->fields, NULL, sizeof(r.body),
	    c->timeout_ms);
	took = io_now_ms() - t0;
	ck_assert_msg(r.rc == -1 && r.err == c->err, "%s: %d, errno %d", c->name,
	    r.rc, r.err);
	ck_assert_msg(r.status == c->status, "%s: status %d", c->name,
	    r.status);
	ck_assert_msg(strncmp(hc.why, c->why, strlen(c->why)) == 0,
	    "%s: \"%s\"", c->name, hc.why);
	ck_assert(!kept());
	if (c->status != 0)
		ck_assert_msg(r.len > 0 && strstr(r.body, "]}") == NULL,
		    "%s: %zu bytes \"%s\"", c->name, r.len, r.body);
	else
		ck_assert_uint_eq(r.len, 0);
	/* At the deadline, not at the mock's leisure. */
	ck_assert_msg(took < c->timeout_ms + 800, "%s: %lld ms", c->name,
	    (long long)took);
	if (c->err == ETIMEDOUT)
		ck_assert_int_ge(took, c->timeout_ms - 10);
	ck_assert_int_eq(mock_stat("requests"), 1);
}
END_TEST

/* Framing that could be read two ways, or that is broken, or a head too
 * large: the status is known when the head was, the body is not. */
START_TEST(test_bad_framing)
{
	static char big[CAP_RESPONSE_HEAD_BYTES + 2048];
	const char *const replies[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: "
		"chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
		"\r\nok!",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		big,
	};
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");

	while (n < CAP_RESPONSE_HEAD_BYTES)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		    "X-Pad: %01000d\r\n", 0);
	snprintf(big + n, sizeof(big) - n, "\r\n");
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		struct script s;

		script_start(&s, STEPS({ replies[i], 1 }));
		client(s.port);
		request(&hc, "GET", "/", NULL, NULL, 64, 2000);
		ck_assert_int_eq(r.rc, -1);
		ck_assert_int_eq(r.err, EPROTO);
		ck_assert_int_eq(r.status, replies[i] == big ? 0 : 200);
		ck_assert(!kept());
		script_end(&s);
	}
	ck_assert_ptr_nonnull(strstr(hc.why, "response head larger than"));
}
END_TEST

START_TEST(test_refused)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char port[6], want[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port bound and never listened on refuses connections. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
	client(port);
	request(&hc, "GET", "/", NULL, NULL, 64, 2000);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.err, ECONNREFUSED);
	snprintf(want, sizeof(want), "connecting to 127.0.0.1:%s: %s", port,
	    strerror(ECONNREFUSED));
	ck_assert_str_eq(hc.why, want);
	close(fd);
}
END_TEST

/* ---- httpc_abort ----------------------------------------------------------------------------- */

static void *
abort_main(void *arg)
{
	nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	httpc_abort(arg);
	return NULL;
}

/* Another thread ends a request in progress at once, and every one after
 * it. */
START_TEST(test_abort)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_t t;
	int64_t t0 = io_now_ms();

	client(mock_port);
	hc.lock = &mu;
	expect("GET", "/v1/models", NULL, 200);
	ck_assert_int_eq(pthread_create(&t, NULL, abort_main, &hc), 0);
	request(&hc, "GET", "/v1/models", "X-Mock-Head-Delay-Ms: 3000\r\n",
	    NULL, sizeof(r.body), 3000);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.err, ECANCELED);
	ck_assert_str_eq(hc.why, "cancelled");
	ck_assert_int_lt(io_now_ms() - t0, 1000);
	ck_assert(!kept());
	request(&hc, "GET", "/v1/models", NULL, NULL, sizeof(r.body), 2000);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.err, ECANCELED);
}
END_TEST

/* ---- health.c ----------------------------------------------------------------------------- */

static struct config cfg;
static struct backend_conf bconf[4];
static struct backend_table table;
static int refused_fd = -1;
static char refused_port[6];
static int log_fd = -1, saved_stderr = -1;

/* A loopback port bound and never listened on: connections are refused. */
static void
refused_port_open(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	refused_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(refused_fd, 0);
	ck_assert_int_eq(bind(refused_fd, (struct sockaddr *)&sa, sizeof(sa)),
	    0);
	ck_assert_int_eq(getsockname(refused_fd, (struct sockaddr *)&sa, &len),
	    0);
	snprintf(refused_port, sizeof(refused_port), "%u", ntohs(sa.sin_port));
}

/* Backend i: name, port on 127.0.0.1, health path ("" for [health_check]
 * path), configured models (NULL-terminated, or NULL). */
static struct backend_conf *
backend(size_t i, const char *name, const char *port, const char *path,
    const char *const *models)
{
	struct backend_conf *bc = &bconf[i];

	ck_assert_uint_lt(i, sizeof(bconf) / sizeof(bconf[0]));
	snprintf(bc->name, sizeof(bc->name), "%s", name);
	snprintf(bc->host, sizeof(bc->host), "127.0.0.1");
	snprintf(bc->port, sizeof(bc->port), "%s", port);
	snprintf(bc->health_path, sizeof(bc->health_path), "%s", path);
	bc->weight = 1;
	for (bc->nmodels = 0; models != NULL && models[bc->nmodels] != NULL;
	    bc->nmodels++)
		snprintf(bc->models[bc->nmodels], sizeof(bc->models[0]), "%s",
		    models[bc->nmodels]);
	if (i + 1 > cfg.nbackends)
		cfg.nbackends = i + 1;
	return bc;
}

static void
table_init(void)
{
	ck_assert_int_eq(bal_init(&table, &cfg), 0);
}

/* The log (stderr) goes to a file of the test's own. */
static void
health_setup(void)
{
	char path[] = "/tmp/check_httpc.XXXXXX";

	mock_reset();
	memset(&cfg, 0, sizeof(cfg));
	memset(bconf, 0, sizeof(bconf));
	cfg.backends = bconf;
	cfg.hc_enabled = 1;
	cfg.hc_interval_ms = 100;
	cfg.hc_timeout_ms = 1000;
	snprintf(cfg.hc_path, sizeof(cfg.hc_path), "/health");
	cfg.hc_healthy_threshold = 1;
	cfg.hc_unhealthy_threshold = 1;
	cfg.hc_eject = 1;
	cfg.log_level = LOG_LEVEL_INFO;
	refused_port_open();
	log_fd = mkstemp(path);
	ck_assert_int_ge(log_fd, 0);
	unlink(path);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(log_fd, STDERR_FILENO);
}

static void
health_teardown(void)
{
	health_stop();
	bal_free(&table);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(log_fd);
	close(refused_fd);
	/* The mock's defaults are for this test only. */
	control("POST", "/mock/defaults");
}

/* Whether the log so far has a line containing s. */
static int
logged(const char *s)
{
	static char text[64 * 1024];
	ssize_t n = pread(log_fd, text, sizeof(text) - 1, 0);

	text[n > 0 ? n : 0] = '\0';
	return strstr(text, s) != NULL;
}

/* Waits up to ms for cond(arg) (checked every 10 ms); returns whether it
 * held. */
static int
wait_until(int (*cond)(const void *), const void *arg, int ms)
{
	int64_t deadline = io_now_ms() + ms;

	for (;;) {
		if (cond(arg))
			return 1;
		if (io_now_ms() >= deadline)
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 },
		    NULL);
	}
}

static int
is_down(const void *arg)
{
	return !atomic_load(&((const struct backend *)arg)->healthy);
}

static int
is_up(const void *arg)
{
	return atomic_load(&((const struct backend *)arg)->healthy);
}

static int
has_logged(const void *arg)
{
	return logged(arg);
}

static int
reported(struct backend *b)
{
	int n;

	pthread_mutex_lock(&b->models_lock);
	n = (int)b->nreported;
	pthread_mutex_unlock(&b->models_lock);
	return n;
}

static int
has_reported(const void *arg)
{
	return reported((struct backend *)(uintptr_t)arg) > 0;
}

static int
probed_3_times(const void *arg)
{
	(void)arg;
	return mock_stat("health_requests") >= 3;
}

/* A backend that refuses connections goes down, one whose /health says 503
 * goes down and comes back when it says 200; each change is logged once, in
 * the words an operator greps for. */
START_TEST(test_probe_transitions)
{
	char want[256];

	backend(0, "gpu1", mock_port, "", NULL);
	backend(1, "gpu2", refused_port, "", NULL);
	table_init();
	ck_assert_int_eq(health_start(&table), 0);
	ck_assert(wait_until(is_down, &table.backends[1], 2000));
	snprintf(want, sizeof(want), "warn: backend gpu2 is down: /health: "
	    "connecting to 127.0.0.1:%s: %s", refused_port,
	    strerror(ECONNREFUSED));
	ck_assert_msg(wait_until(has_logged, want, 1000), "no \"%s\"", want);
	ck_assert(is_up(&table.backends[0]));

	control("POST", "/mock/defaults?X-Mock-Health=503");
	ck_assert(wait_until(is_down, &table.backends[0], 2000));
	ck_assert(wait_until(has_logged, "warn: backend gpu1 is down: /health "
	    "answered 503", 1000));
	control("POST", "/mock/defaults");
	ck_assert(wait_until(is_up, &table.backends[0], 2000));
	ck_assert(wait_until(has_logged, "info: backend gpu1 is up", 1000));
	ck_assert(!logged("backend gpu2 is up"));
}
END_TEST

/* The per-backend health_path (Ollama answers on "/"), and expected_status:
 * the mock answers "/" with 404. */
START_TEST(test_probe_path_and_expected_status)
{
	backend(0, "ollama", mock_port, "/", NULL);
	backend(1, "vllm", mock_port, "", (const char *const[]){ "m", NULL });
	table_init();
	ck_assert_int_eq(health_start(&table), 0);
	ck_assert(wait_until(is_down, &table.backends[0], 2000));
	ck_assert(wait_until(has_logged, "backend ollama is down: / answered "
	    "404", 1000));
	ck_assert(is_up(&table.backends[1]));
	health_stop();

	/* Expecting 404: "/" passes, and /health's 200 does not. */
	cfg.hc_expected_status = 404;
	ck_assert_int_eq(health_start(&table), 0);
	ck_assert(wait_until(is_up, &table.backends[0], 2000));
	ck_assert(wait_until(is_down, &table.backends[1], 2000));
	ck_assert(wait_until(has_logged, "backend vllm is down: /health "
	    "answered 200", 1000));
}
END_TEST

/* Probes (and the model refresh) use one kept connection per backend. */
START_TEST(test_probe_keeps_connection)
{
	backend(0, "gpu1", mock_port, "", NULL);
	table_init();
	ck_assert_int_eq(health_start(&table), 0);
	ck_assert(wait_until(probed_3_times, NULL, 3000));
	ck_assert_int_eq(mock_stat("accepted"), 1);
	ck_assert_int_eq(reported(&table.backends[0]), 1);
}
END_TEST

/* health_stop() cuts a probe short instead of waiting for its timeout. */
START_TEST(test_stop_is_prompt)
{
	int64_t t0;

	control("POST", "/mock/defaults?X-Mock-Health=stall-head");
	cfg.hc_timeout_ms = 5000;
	backend(0, "gpu1", mock_port, "", NULL);
	table_init();
	ck_assert_int_eq(health_start(&table), 0);
	nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
	t0 = io_now_ms();
	health_stop();
	ck_assert_int_lt(io_now_ms() - t0, 500);
	/* A cut probe says nothing of the backend. */
	ck_assert(is_up(&table.backends[0]));
	ck_assert(!logged("is down"));
}
END_TEST

/* The probe thread refreshes what a backend without a models list
 * reports; a backend with one is never asked. */
START_TEST(test_probe_refreshes_models)
{
	struct backend *b;

	control("POST", "/mock/defaults?X-Mock-Models=p1,p2,p1");
	backend(0, "listed", mock_port, "", (const char *const[]){ "m",
	    NULL });
	backend(1, "asked", mock_port, "", NULL);
	table_init();
	b = &table.backends[1];
	ck_assert_int_eq(health_start(&table), 0);
	ck_assert(wait_until(has_reported, b, 2000));
	pthread_mutex_lock(&b->models_lock);
	ck_assert_uint_eq(b->nreported, 2);
	ck_assert_str_eq(b->reported[0], "p1");
	ck_assert_str_eq(b->reported[1], "p2");
	pthread_mutex_unlock(&b->models_lock);
	ck_assert(wait_until(probed_3_times, NULL, 3000));
	ck_assert_int_eq(reported(&table.backends[0]), 0);
	/* /v1/models from "asked" once a round at most (each after its
	 * probe: read first), and never from "listed". */
	long asked = mock_stat("requests");
	ck_assert_int_le(asked, mock_stat("health_requests") / 2);
	ck_assert_int_ge(asked, 1);
}
END_TEST

#define LISTED(id, owner) "{\"id\":\"" id "\",\"object\":\"model\"," \
	"\"created\":0,\"owned_by\":\"" owner "\"}"

/* health_models_json() must answer exactly want. */
static void
expect_models(const char *want)
{
	static char out[4096];
	size_t n = health_models_json(&table, out, sizeof(out));

	ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0,
	    "got %.*s", (int)n, out);
}

/* GET /v1/models: the union over the available backends, each id once,
 * owned by the first backend that lists it; configured names escaped,
 * reported ids as the backend sent them. */
START_TEST(test_models_json)
{
	static const char want[] = "{\"object\":\"list\",\"data\":["
	    LISTED("shared", "a\\\"b") "," LISTED("q\\\"x", "a\\\"b") ","
	    LISTED("m2", "asked") "]}";
	static char out[4096];
	struct script s;

	cfg.hc_enabled = 0;
	cfg.hc_interval_ms = 60 * 1000;
	script_start(&s, STEPS({ "HTTP/1.1 200 OK\r\nContent-Length: 90\r\n"
	    "\r\n{\"object\":\"list\",\"data\":[{\"id\":\"shared\"},"
	    "{\"id\":\"q\\\"x\"},{\"id\":\"m2\"},{\"id\":\"shared\"}]}"
	    "      ", 1 },
	    { "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\n{}", 1 }));
	backend(0, "a\"b", refused_port, "", (const char *const[]){ "shared",
	    "q\"x", NULL });
	backend(1, "asked", s.port, "", NULL);
	backend(2, "down", mock_port, "", (const char *const[]){ "gone",
	    NULL });
	table_init();
	ck_assert_int_eq(bal_probe_result(&table, &table.backends[2], 0,
	    io_now_ms()), -1);

	expect_models(want);
	ck_assert_int_eq(s.requests, 1);
	/* Within the interval: from what was fetched, nothing asked. */
	expect_models(want);
	ck_assert_int_eq(s.requests, 1);

	/* Older than the interval: asked again.  An answer that is no list
	 * keeps the ids from before, and is not asked again at once. */
	table.backends[1].reported_at_ms = io_now_ms() - cfg.hc_interval_ms;
	expect_models(want);
	ck_assert_int_eq(s.requests, 2);
	expect_models(want);
	ck_assert_int_eq(s.requests, 2);
	script_end(&s);

	/* Too small a buffer: 0, and nothing written past it. */
	memset(out, '#', sizeof(out));
	ck_assert_uint_eq(health_models_json(&table, out, strlen(want) - 1), 0);
	ck_assert_int_eq(out[strlen(want) - 1], '#');
	ck_assert_uint_eq(health_models_json(&table, out, strlen(want)),
	    strlen(want));
}
END_TEST

/* No backend available: an empty list, which is valid JSON. */
START_TEST(test_models_json_none)
{
	backend(0, "down", refused_port, "", NULL);
	table_init();
	ck_assert_int_eq(bal_probe_result(&table, &table.backends[0], 0,
	    io_now_ms()), -1);
	expect_models("{\"object\":\"list\",\"data\":[]}");
}
END_TEST

static Suite *
httpc_suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc;

	tc = tcase_create("keep-alive");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_keep_alive_reuse);
	tcase_add_test(tc, test_idle_closed_replaced);
	tcase_add_test(tc, test_dead_reused_retried_once);
	tcase_add_test(tc, test_retry_only_once);
	tcase_add_test(tc, test_close_delimited);
	suite_add_tcase(s, tc);

	tc = tcase_create("bodies");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_chunked);
	tcase_add_test(tc, test_body_over_cap);
	tcase_add_test(tc, test_head_and_error_statuses);
	tcase_add_loop_test(tc, test_scripted, 0, N(script_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_mock_failures, 0, N(fail_cases));
	tcase_add_test(tc, test_bad_framing);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_abort);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_checked_fixture(tc, health_setup, health_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_probe_transitions);
	tcase_add_test(tc, test_probe_path_and_expected_status);
	tcase_add_test(tc, test_probe_keeps_connection);
	tcase_add_test(tc, test_stop_is_prompt);
	tcase_add_test(tc, test_probe_refreshes_models);
	tcase_add_test(tc, test_models_json);
	tcase_add_test(tc, test_models_json_none);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/* A test's server may be gone when the client writes. */
	signal(SIGPIPE, SIG_IGN);
	if (mock_start() < 0)
		return EXIT_FAILURE;
	sr = srunner_create(httpc_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mock_stop();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
