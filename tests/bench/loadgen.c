/*
 * loadgen.c — the benchmark's load generator: HTTP/1.1 keep-alive clients on
 * one epoll loop, against several targets in turn, so that machine noise
 * falls on all of them alike.
 *
 *   loadgen [options] --target NAME=HOST:PORT[@PID[,PID...]] ...
 *   loadgen --free-port          prints a free loopback port and exits
 *
 * Every round runs one batch against each target, the order rotated by one
 * target per round; a batch is `--conc` connections working through
 * `--requests` requests (or for `--duration-ms`).  The first target is the
 * baseline: "added" numbers are, per round, a quantile for a target minus the
 * same quantile for the baseline in that round; what is printed is the median
 * over the rounds.  A first `--warmup` round is run and not counted.
 *
 * Streams: `--stream` asks for an SSE chat completion with X-Mock-Tokens,
 * X-Mock-Delay-Ms, X-Mock-First-Delay-Ms and X-Mock-Timestamps (the mock
 * stamps each token event with "t_us", CLOCK_MONOTONIC µs when it was written:
 * the clock every process here reads).  Per request:
 *   ttft  = arrival of the first token event - the request's send;
 *   lag   = arrival of a token event - its t_us (every token event);
 * and a stream counts as ok only with status 200, every token event, the
 * final "data: [DONE]" and the end of the chunked body.  Without --stream,
 * small non-streamed completions (a 200 with a body) are counted.
 *
 * For targets given PIDs, each batch also reads their utime+stime from
 * /proc/PID/stat (CPU seconds per million events received), and with --rss
 * samples VmRSS every 10 ms (and VmHWM, after resetting it with clear_refs):
 * the peak, summed over the PIDs.  The load generator's own CPU time over
 * wall time is printed too (lg_busy), so a reader can see it was not the
 * bottleneck.
 *
 * Output: one line per target, key=value, for tests/bench/run.sh.  Exit 1
 * when any request failed (or a target could not be reached), 2 on bad usage;
 * never because of a timing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 8
#define MAX_PIDS    8
#define MAX_ROUNDS  1000
#define RBUF        (64 * 1024)
#define EVBUF       4096        /* bytes of the current SSE event kept */

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Bad usage or no resources: "loadgen: WHAT ARG", exit 2. */
static void die(const char *what, const char *arg) __attribute__((noreturn));
static void
die(const char *what, const char *arg)
{
	fprintf(stderr, "loadgen: %s%s\n", what, arg);
	exit(2);
}

/* ---- growable sample vectors ------------------------------------------------ */

struct vec {
	int64_t *v;
	size_t n, cap;
};

static void
vec_add(struct vec *s, int64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (s->v == NULL)
			die("out of memory", "");
	}
	s->v[s->n++] = x;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of s, sorted in place; NAN when empty. */
static double
quantile(struct vec *s, double q)
{
	if (s->n == 0)
		return NAN;
	qsort(s->v, s->n, sizeof(*s->v), cmp64);
	size_t k = (size_t)(q * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->v[k - 1];
}

static int
cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of the values that are not NAN; NAN when there are none. */
static double
median(double *in, int nin)
{
	double v[MAX_ROUNDS];
	int n = 0;

	for (int i = 0; i < nin; i++)
		if (!isnan(in[i]))
			v[n++] = in[i];
	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- targets and what is read about their processes -------------------------- */

struct target {
	char name[32];
	struct sockaddr_in addr;
	int pids[MAX_PIDS];
	int npids;

	/* Per counted round. */
	double ttft50[MAX_ROUNDS], ttft99[MAX_ROUNDS];
	double lag50[MAX_ROUNDS], lag99[MAX_ROUNDS];
	double rps[MAX_ROUNDS], cpu_per_mev[MAX_ROUNDS], busy[MAX_ROUNDS];
	double add_ttft50[MAX_ROUNDS], add_ttft99[MAX_ROUNDS];
	double add_lag50[MAX_ROUNDS], add_lag99[MAX_ROUNDS];
	int rounds;

	uint64_t ok, fail, events, tokens;
	double cpu_s;
	long peak_rss_kb;
	char why[128];          /* the first failure */
};

/* utime + stime of the PIDs, in seconds. */
static double
cpu_seconds(const struct target *t)
{
	double ticks = 0;

	for (int i = 0; i < t->npids; i++) {
		char path[64], buf[1024];
		snprintf(path, sizeof(path), "/proc/%d/stat", t->pids[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* Fields after the command, which is in parentheses and may
		 * hold spaces: state is field 3, utime 14, stime 15. */
		char *p = strrchr(buf, ')');
		if (p == NULL)
			continue;
		unsigned long ut = 0, st = 0;
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		    &ut, &st) == 2)
			ticks += (double)(ut + st);
	}
	return ticks / (double)sysconf(_SC_CLK_TCK);
}

/* A "Key:   N kB" line of /proc/PID/status, summed over the PIDs. */
static long
status_kb(const struct target *t, const char *key)
{
	long sum = 0;
	size_t klen = strlen(key);

	for (int i = 0; i < t->npids; i++) {
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%d/status", t->pids[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *l = buf; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
			if (strncmp(l, key, klen) == 0 && l[klen] == ':') {
				sum += strtol(l + klen + 1, NULL, 10);
				break;
			}
	}
	return sum;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0; we started the process). */
static void
reset_hwm(const struct target *t)
{
	for (int i = 0; i < t->npids; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/clear_refs", t->pids[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)!write(fd, "5", 1);
			close(fd);
		}
	}
}

/* ---- options ------------------------------------------------------------------- */

static struct {
	int stream;
	int conc;
	long requests;          /* per batch; 0 with duration */
	long duration_ms;
	int rounds, warmup;
	long tokens, delay_ms, first_delay_ms;
	int timestamps;
	int rss;
	long timeout_ms;        /* per batch */
	long stagger_ms;        /* connection i opens i * this after the first */
	const char *label;
	const char *extra_header;
} opt = {
	.conc = 1, .requests = 100, .rounds = 1, .tokens = 5,
	.timestamps = 1, .timeout_ms = 120000, .label = "bench",
};

static struct target targets[MAX_TARGETS];
static int ntargets;

static void
parse_target(const char *arg)
{
	struct target *t = &targets[ntargets];
	const char *eq = strchr(arg, '='), *colon, *at;
	char host[64];

	if (ntargets == MAX_TARGETS)
		die("too many targets", "");
	if (eq == NULL || (size_t)(eq - arg) >= sizeof(t->name))
		die("bad --target ", arg);
	memcpy(t->name, arg, (size_t)(eq - arg));
	colon = strchr(eq + 1, ':');
	if (colon == NULL || (size_t)(colon - eq - 1) >= sizeof(host))
		die("bad --target ", arg);
	memcpy(host, eq + 1, (size_t)(colon - eq - 1));
	host[colon - eq - 1] = '\0';
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &t->addr.sin_addr) != 1)
		die("bad --target host in ", arg);
	at = strchr(colon, '@');
	while (at != NULL && t->npids < MAX_PIDS) {
		t->pids[t->npids++] = atoi(at + 1);
		at = strchr(at + 1, ',');
	}
	ntargets++;
}

/* ---- one client connection -------------------------------------------------------- */

enum body { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum chunk_state { CS_SIZE, CS_DATA, CS_DATA_CR, CS_TRAILER };

struct conn {
	int fd;
	int connected;
	int active;             /* a request is in flight */
	int64_t t_send;
	size_t woff;

	/* The response being read. */
	char rbuf[RBUF];
	size_t rlen;
	int head_done, status, close_after;
	enum body body;
	uint64_t remaining;     /* B_LENGTH, or CS_DATA */
	enum chunk_state cs;
	char line[256];         /* a chunk-size or trailer line */
	size_t line_len;

	/* The SSE event being read. */
	char ev[EVBUF];
	size_t ev_len;
	int nl;                 /* newlines in a row (CRs ignored) */
	long token_events;
	int saw_done, got_first;
	long events;
};

static struct {
	struct target *t;
	const char *req;
	size_t req_len;
	long started, finished;     /* requests */
	int64_t deadline_us;        /* duration mode: no new request after */
	int open;                   /* connections open */
	struct vec ttft, lag;
	uint64_t ok, fail, events, tokens;
} run;

static void
fail_note(const char *why)
{
	if (run.t->why[0] == '\0')
		snprintf(run.t->why, sizeof(run.t->why), "%s", why);
}

static void
on_event(struct conn *c, int64_t arrival)
{
	c->events++;
	if (c->ev_len >= 12 && memcmp(c->ev, "data: [DONE]", 12) == 0)
		c->saw_done = 1;
	const char *t = memmem(c->ev, c->ev_len, "\"t_us\":", 7);
	if (t != NULL || (!opt.timestamps && memmem(c->ev, c->ev_len, " tok", 4) != NULL)) {
		c->token_events++;
		if (!c->got_first) {
			c->got_first = 1;
			vec_add(&run.ttft, arrival - c->t_send);
		}
		if (t != NULL) {
			char num[24];
			size_t k = 0;
			const char *p = t + 7, *end = c->ev + c->ev_len;
			while (p < end && k < sizeof(num) - 1 && *p >= '0' && *p <= '9')
				num[k++] = *p++;
			num[k] = '\0';
			if (k > 0)
				vec_add(&run.lag, arrival - strtoll(num, NULL, 10));
		}
	}
}

/* Body bytes of a stream: cut into events at blank lines. */
static void
sse_bytes(struct conn *c, const char *p, size_t n, int64_t arrival)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (c->ev_len < EVBUF)
			c->ev[c->ev_len++] = ch;
		if (ch == '\r')
			continue;
		if (ch != '\n') {
			c->nl = 0;
			continue;
		}
		if (++c->nl == 2) {
			on_event(c, arrival);
			c->ev_len = 0;
			c->nl = 0;
		}
	}
}

static void
body_bytes(struct conn *c, const char *p, size_t n, int64_t arrival)
{
	if (opt.stream)
		sse_bytes(c, p, n, arrival);
}

/* Feeds body bytes through the chunked decoder.  Returns bytes used; sets
 * *done at the end of the body; -1 when malformed. */
static long
dechunk(struct conn *c, const char *p, size_t n, int64_t arrival, int *done)
{
	size_t i = 0;

	while (i < n && !*done) {
		switch (c->cs) {
		case CS_SIZE:
		case CS_TRAILER:
			if (p[i] != '\n') {
				if (c->line_len < sizeof(c->line) - 1)
					c->line[c->line_len++] = p[i];
				i++;
				break;
			}
			i++;
			c->line[c->line_len] = '\0';
			if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
				c->line[--c->line_len] = '\0';
			if (c->cs == CS_TRAILER) {
				if (c->line_len == 0)
					*done = 1;
				c->line_len = 0;
				break;
			}
			if (c->line_len == 0)
				return -1;
			c->remaining = strtoull(c->line, NULL, 16);
			c->line_len = 0;
			c->cs = c->remaining == 0 ? CS_TRAILER : CS_DATA;
			break;
		case CS_DATA: {
			size_t k = n - i < c->remaining ? n - i : (size_t)c->remaining;
			body_bytes(c, p + i, k, arrival);
			i += k;
			c->remaining -= k;
			if (c->remaining == 0)
				c->cs = CS_DATA_CR;
			break;
		}
		case CS_DATA_CR:
			if (p[i] == '\n')
				c->cs = CS_SIZE;
			else if (p[i] != '\r')
				return -1;
			i++;
			break;
		}
	}
	return (long)i;
}

static void conn_close(int ep, struct conn *c);
static void conn_connect(int ep, struct conn *c);
static int conn_send_request(int ep, struct conn *c);
static int more_work(void);

/* A response is over (ok or not). */
static void
response_done(int ep, struct conn *c, int ok, const char *why)
{
	run.finished++;
	run.events += (uint64_t)c->events;
	run.tokens += (uint64_t)c->token_events;
	if (ok && opt.stream && (!c->saw_done || c->token_events != opt.tokens)) {
		ok = 0;
		why = c->saw_done ? "a stream had the wrong number of token events" :
		    "a stream ended without data: [DONE]";
	}
	if (ok) {
		run.ok++;
	} else {
		run.fail++;
		fail_note(why);
	}
	c->active = 0;
	if (!ok || c->close_after) {
		conn_close(ep, c);
		/* A server that ends keep-alive after so many requests: the
		 * client opens a new connection, as a browser or SDK would. */
		if (ok && more_work())
			conn_connect(ep, c);
		return;
	}
	/* The rest of the buffer would be a response nobody asked for. */
	c->rlen = 0;
	if (conn_send_request(ep, c) < 0)
		conn_close(ep, c);
}

/* Reads what the socket has; parses head and body. */
static void
conn_readable(int ep, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
		int64_t arrival = now_us();
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (c->active)
				response_done(ep, c, 0, strerror(errno));
			else
				conn_close(ep, c);
			return;
		}
		if (n == 0) {
			if (c->active && c->head_done && c->body == B_CLOSE)
				response_done(ep, c, c->status == 200, "status not 200");
			else if (c->active)
				response_done(ep, c, 0, "the connection closed mid-response");
			else
				conn_close(ep, c);
			return;
		}
		if (!c->active) {
			fail_note("bytes with no request in flight");
			conn_close(ep, c);
			return;
		}
		c->rlen += (size_t)n;
		size_t pos = 0;
		if (!c->head_done) {
			char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
			if (end == NULL) {
				if (c->rlen == RBUF)
					response_done(ep, c, 0, "response head too large");
				continue;
			}
			*end = '\0';
			c->head_done = 1;
			c->status = atoi(c->rbuf + 9);
			c->body = B_CLOSE;
			c->close_after = strncmp(c->rbuf, "HTTP/1.0", 8) == 0;
			for (char *l = strstr(c->rbuf, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
				l += 2;
				if (strncasecmp(l, "Content-Length:", 15) == 0) {
					c->body = B_LENGTH;
					c->remaining = strtoull(l + 15, NULL, 10);
				} else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0 &&
				    strcasestr(l, "chunked") != NULL) {
					c->body = B_CHUNKED;
					c->cs = CS_SIZE;
				} else if (strncasecmp(l, "Connection:", 11) == 0 &&
				    strcasestr(l, "close") != NULL) {
					c->close_after = 1;
				}
			}
			pos = (size_t)(end - c->rbuf) + 4;
		}
		const char *p = c->rbuf + pos;
		size_t avail = c->rlen - pos;
		int done = 0;
		if (c->body == B_LENGTH) {
			size_t k = avail < c->remaining ? avail : (size_t)c->remaining;
			body_bytes(c, p, k, arrival);
			c->remaining -= k;
			done = c->remaining == 0;
		} else if (c->body == B_CHUNKED) {
			if (dechunk(c, p, avail, arrival, &done) < 0) {
				response_done(ep, c, 0, "malformed chunked body");
				return;
			}
		} else {
			body_bytes(c, p, avail, arrival);
		}
		c->rlen = 0;
		if (done) {
			response_done(ep, c, c->status == 200, "status not 200");
			return;
		}
	}
}

static int
conn_send_request(int ep, struct conn *c)
{
	if (!more_work())
		return -1;
	run.started++;
	c->active = 1;
	c->head_done = 0;
	c->rlen = 0;
	c->ev_len = 0;
	c->nl = 0;
	c->token_events = 0;
	c->events = 0;
	c->saw_done = 0;
	c->got_first = 0;
	c->woff = 0;
	c->t_send = now_us();
	ssize_t w = send(c->fd, run.req, run.req_len, MSG_NOSIGNAL);
	if (w == (ssize_t)run.req_len)
		return 0;
	if (w < 0 && errno != EAGAIN) {
		response_done(ep, c, 0, strerror(errno));
		return 0;
	}
	c->woff = w > 0 ? (size_t)w : 0;
	struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
	return 0;
}

static void
conn_writable(int ep, struct conn *c)
{
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			run.started++;
			run.finished++;
			run.fail++;
			fail_note(strerror(err));
			conn_close(ep, c);
			return;
		}
		c->connected = 1;
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		if (conn_send_request(ep, c) < 0)
			conn_close(ep, c);
		return;
	}
	ssize_t w = send(c->fd, run.req + c->woff, run.req_len - c->woff, MSG_NOSIGNAL);
	if (w > 0)
		c->woff += (size_t)w;
	if (c->woff == run.req_len) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
	}
}

static void
conn_close(int ep, struct conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	run.open--;
}

/* Connects c (a fresh socket) to the batch's target. */
static void
conn_connect(int ep, struct conn *c)
{
	int one = 1;

	c->connected = 0;
	c->active = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: ", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&run.t->addr, sizeof(run.t->addr)) < 0 &&
	    errno != EINPROGRESS) {
		run.started++;
		run.finished++;
		run.fail++;
		fail_note(strerror(errno));
		close(c->fd);
		c->fd = -1;
		return;
	}
	run.open++;
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
}

static int
more_work(void)
{
	return opt.duration_ms > 0 ? now_us() < run.deadline_us :
	    run.started < opt.requests;
}

/* ---- one batch ---------------------------------------------------------------------- */

struct batch_result {
	double ttft50, ttft99, lag50, lag99, rps, cpu_per_mev, busy;
};

static void
build_request(char *buf, size_t cap, size_t *len)
{
	static const char stream_body[] =
	    "{\"model\":\"mock-model\",\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
	static const char plain_body[] =
	    "{\"model\":\"mock-model\","
	    "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
	const char *body = opt.stream ? stream_body : plain_body;
	char delays[128] = "";

	/* Steering headers only when they say something: each costs the mock
	 * a parse. */
	if (opt.delay_ms > 0 || opt.first_delay_ms > 0)
		snprintf(delays, sizeof(delays),
		    "X-Mock-Delay-Ms: %ld\r\nX-Mock-First-Delay-Ms: %ld\r\n",
		    opt.delay_ms, opt.first_delay_ms);
	int n = snprintf(buf, cap,
	    "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: bench\r\n"
	    "Content-Type: application/json\r\n"
	    "X-Mock-Tokens: %ld\r\n"
	    "%s%s%s%s"
	    "Content-Length: %zu\r\n\r\n%s",
	    opt.tokens, delays,
	    opt.stream && opt.timestamps ? "X-Mock-Timestamps: 1\r\n" : "",
	    opt.extra_header ? opt.extra_header : "",
	    opt.extra_header ? "\r\n" : "",
	    strlen(body), body);
	if (n < 0 || (size_t)n >= cap)
		die("request too large", "");
	*len = (size_t)n;
}

static double
cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
run_batch(struct target *t, struct batch_result *br)
{
	static char req[4096];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn **conns = calloc((size_t)opt.conc, sizeof(*conns));
	struct epoll_event evs[256];

	if (ep < 0 || conns == NULL)
		die("epoll/calloc failed", "");
	free(run.ttft.v);
	free(run.lag.v);
	memset(&run, 0, sizeof(run));
	run.t = t;
	build_request(req, sizeof(req), &run.req_len);
	run.req = req;

	if (opt.rss) {
		reset_hwm(t);
		long rss = status_kb(t, "VmRSS");
		if (rss > t->peak_rss_kb)
			t->peak_rss_kb = rss;
	}
	double cpu0 = cpu_seconds(t), self0 = cpu_self();
	int64_t t0 = now_us(), stop = t0 + opt.timeout_ms * 1000;
	run.deadline_us = opt.duration_ms > 0 ? t0 + opt.duration_ms * 1000 : 0;
	int64_t next_sample = t0;

	for (int i = 0; i < opt.conc; i++) {
		conns[i] = calloc(1, sizeof(**conns));
		if (conns[i] == NULL)
			die("out of memory", "");
		conns[i]->fd = -1;
	}
	int opened = 0;
	while (run.open > 0 || opened < opt.conc) {
		int64_t now = now_us();
		if (now >= stop)
			break;
		/* Staggered starts, so that streams' events do not coincide. */
		while (opened < opt.conc &&
		    now >= t0 + (int64_t)opened * opt.stagger_ms * 1000)
			conn_connect(ep, conns[opened++]);
		int timeout = opt.rss ? 10 : 100;
		if (opened < opt.conc && opt.stagger_ms < timeout)
			timeout = (int)opt.stagger_ms;
		if (opt.duration_ms > 0 && run.deadline_us > now &&
		    (run.deadline_us - now) / 1000 < timeout)
			timeout = (int)((run.deadline_us - now) / 1000) + 1;
		int n = epoll_wait(ep, evs, 256, timeout);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				conn_writable(ep, c);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				conn_readable(ep, c);
		}
		now = now_us();
		if (opt.rss && now >= next_sample) {
			long rss = status_kb(t, "VmRSS");
			if (rss > t->peak_rss_kb)
				t->peak_rss_kb = rss;
			next_sample = now + 10000;
		}
		/* Duration mode: idle connections past the deadline close. */
		if (opt.duration_ms > 0 && now >= run.deadline_us)
			for (int i = 0; i < opt.conc; i++)
				if (conns[i]->fd >= 0 && !conns[i]->active &&
				    conns[i]->connected)
					conn_close(ep, conns[i]);
	}
	int64_t wall = now_us() - t0;
	/* Whatever is still in flight at the batch timeout failed. */
	for (int i = 0; i < opt.conc; i++) {
		if (conns[i]->fd >= 0) {
			if (conns[i]->active || !conns[i]->connected) {
				run.fail++;
				fail_note("timed out");
			}
			conn_close(ep, conns[i]);
		}
		free(conns[i]);
	}
	free(conns);
	close(ep);
	if (opt.duration_ms <= 0 && run.started < opt.requests) {
		run.fail += (uint64_t)(opt.requests - run.started);
		fail_note("requests never sent (connections lost)");
	}

	double cpu1 = cpu_seconds(t), self1 = cpu_self();
	if (opt.rss) {
		long hwm = status_kb(t, "VmHWM");
		long rss = status_kb(t, "VmRSS");
		if (t->npids == 1 && hwm > t->peak_rss_kb)
			t->peak_rss_kb = hwm;
		if (rss > t->peak_rss_kb)
			t->peak_rss_kb = rss;
	}
	br->ttft50 = quantile(&run.ttft, 0.50);
	br->ttft99 = quantile(&run.ttft, 0.99);
	br->lag50 = quantile(&run.lag, 0.50);
	br->lag99 = quantile(&run.lag, 0.99);
	br->rps = wall > 0 ? (double)run.ok * 1e6 / (double)wall : 0;
	br->cpu_per_mev = run.events > 0 && t->npids > 0 ?
	    (cpu1 - cpu0) * 1e6 / (double)run.events : NAN;
	br->busy = wall > 0 ? (self1 - self0) * 1e6 / (double)wall : 0;
	t->ok += run.ok;
	t->fail += run.fail;
	t->events += run.events;
	t->tokens += run.tokens;
	t->cpu_s += cpu1 - cpu0;
}

/* ---- main ------------------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [--stream] [--conc N] [--requests N | --duration-ms MS]\n"
	    "               [--rounds N] [--warmup] [--tokens N] [--delay-ms MS]\n"
	    "               [--first-delay-ms MS] [--no-timestamps] [--rss]\n"
	    "               [--timeout-ms MS] [--stagger-ms MS] [--label L]\n"
	    "               [--header 'Name: value']\n"
	    "               --target NAME=HOST:PORT[@PID,...] ...\n"
	    "       loadgen --free-port | --wait-port PORT\n");
	exit(2);
}

static long
num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0)
		die("bad number ", s);
	return v;
}

static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return 1;
	printf("%u\n", (unsigned)ntohs(sa.sin_port));
	close(fd);
	return 0;
}

/* Waits up to 10 s until something accepts connections on the port. */
static int
wait_port(const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)num(port));
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "loadgen: nothing listens on 127.0.0.1:%s\n", port);
	return 1;
}

static void
put(const char *key, double v)
{
	if (isnan(v))
		printf(" %s=-", key);
	else
		printf(" %s=%.1f", key, v);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && (v != NULL || (usage(), 0)) && ++i)
		if (strcmp(a, "--free-port") == 0)
			return free_port();
		else if (ARG("--wait-port"))
			return wait_port(v);
		else if (strcmp(a, "--stream") == 0)
			opt.stream = 1;
		else if (strcmp(a, "--warmup") == 0)
			opt.warmup = 1;
		else if (strcmp(a, "--rss") == 0)
			opt.rss = 1;
		else if (strcmp(a, "--no-timestamps") == 0)
			opt.timestamps = 0;
		else if (ARG("--conc"))
			opt.conc = (int)num(v);
		else if (ARG("--requests"))
			opt.requests = num(v);
		else if (ARG("--duration-ms"))
			opt.duration_ms = num(v);
		else if (ARG("--rounds"))
			opt.rounds = (int)num(v);
		else if (ARG("--tokens"))
			opt.tokens = num(v);
		else if (ARG("--delay-ms"))
			opt.delay_ms = num(v);
		else if (ARG("--first-delay-ms"))
			opt.first_delay_ms = num(v);
		else if (ARG("--timeout-ms"))
			opt.timeout_ms = num(v);
		else if (ARG("--stagger-ms"))
			opt.stagger_ms = num(v);
		else if (ARG("--label"))
			opt.label = v;
		else if (ARG("--header"))
			opt.extra_header = v;
		else if (ARG("--target"))
			parse_target(v);
		else
			usage();
#undef ARG
	}
	if (ntargets == 0 || opt.conc < 1 || opt.rounds < 1 ||
	    opt.rounds > MAX_ROUNDS)
		usage();

	/* Many connections: as many descriptors as we may have. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	int total_rounds = opt.rounds + opt.warmup;
	for (int r = 0; r < total_rounds; r++) {
		struct batch_result br[MAX_TARGETS];
		for (int k = 0; k < ntargets; k++) {
			int i = (r + k) % ntargets;
			run_batch(&targets[i], &br[i]);
		}
		if (r < opt.warmup) {
			for (int i = 0; i < ntargets; i++) {
				targets[i].ok = targets[i].fail = 0;
				targets[i].events = targets[i].tokens = 0;
				targets[i].cpu_s = 0;
			}
			continue;
		}
		for (int i = 0; i < ntargets; i++) {
			struct target *t = &targets[i];
			int k = t->rounds++;
			t->ttft50[k] = br[i].ttft50;
			t->ttft99[k] = br[i].ttft99;
			t->lag50[k] = br[i].lag50;
			t->lag99[k] = br[i].lag99;
			t->rps[k] = br[i].rps;
			t->cpu_per_mev[k] = br[i].cpu_per_mev;
			t->busy[k] = br[i].busy;
			t->add_ttft50[k] = br[i].ttft50 - br[0].ttft50;
			t->add_ttft99[k] = br[i].ttft99 - br[0].ttft99;
			t->add_lag50[k] = br[i].lag50 - br[0].lag50;
			t->add_lag99[k] = br[i].lag99 - br[0].lag99;
		}
	}

	int failed = 0;
	for (int i = 0; i < ntargets; i++) {
		struct target *t = &targets[i];
		int n = t->rounds;
		int timed = opt.stream && t->tokens > 0;
		int lagged = timed && opt.timestamps && opt.delay_ms > 0;
		/* The busiest batch tells whether we could keep up. */
		double busy_max = 0;
		for (int k = 0; k < n; k++)
			if (t->busy[k] > busy_max)
				busy_max = t->busy[k];
		printf("label=%s target=%s ok=%llu fail=%llu events=%llu", opt.label,
		    t->name, (unsigned long long)t->ok, (unsigned long long)t->fail,
		    (unsigned long long)t->events);
		if (timed) {
			put("ttft_p50_us", median(t->ttft50, n));
			put("ttft_p99_us", median(t->ttft99, n));
			if (i > 0) {
				put("added_ttft_p50_us", median(t->add_ttft50, n));
				put("added_ttft_p99_us", median(t->add_ttft99, n));
			}
		}
		if (lagged) {
			put("lag_p50_us", median(t->lag50, n));
			put("lag_p99_us", median(t->lag99, n));
			if (i > 0) {
				put("added_lag_p50_us", median(t->add_lag50, n));
				put("added_lag_p99_us", median(t->add_lag99, n));
			}
		}
		if (!opt.stream)
			put("rps", median(t->rps, n));
		if (t->npids > 0) {
			printf(" cpu_s=%.2f", t->cpu_s);
			if (opt.stream)
				put("cpu_s_per_mev", median(t->cpu_per_mev, n));
		}
		if (opt.rss && t->npids > 0)
			printf(" peak_rss_kb=%ld", t->peak_rss_kb);
		printf(" lg_busy=%.2f", busy_max);
		printf("\n");
		if (t->fail > 0) {
			fprintf(stderr, "loadgen: %s/%s: %llu failed (first: %s)\n",
			    opt.label, t->name, (unsigned long long)t->fail, t->why);
			failed = 1;
		}
		if (t->ok == 0) {
			fprintf(stderr, "loadgen: %s/%s: no request succeeded\n",
			    opt.label, t->name);
			failed = 1;
		}
	}
	fflush(stdout);
	return failed;
}
