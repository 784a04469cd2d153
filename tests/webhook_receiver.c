/*
 * webhook_receiver.c — a usage webhook for llmproxy's end-to-end tests: it
 * takes the records the proxy POSTs and writes down the ones it
 * acknowledged, and it can be told to fail, stall or hang up.
 *
 * libc + pthreads only, and its own small HTTP parser — deliberately nothing
 * from src/, so a bug in the proxy's HTTP code cannot hide behind the same
 * bug here.
 *
 *   webhook_receiver --listen 127.0.0.1:PORT --out FILE     (PORT 0: ephemeral)
 *
 * After listening it prints exactly one line to stdout, then flushes:
 *     webhook_receiver listening on 127.0.0.1:PORT
 * It binds with SO_REUSEADDR, so a test can stop it and start it again on
 * the same port ("webhook down, then up").  FILE is appended to, never
 * truncated: records from before a restart stay.
 *
 * Every POST to a path other than /control is a delivery.  Its body must be a
 * JSON object (one record) or a JSON array of them (a batch); anything else
 * is answered 400.  When the answer is a 2xx, the records are appended to
 * FILE, one per line (an array's elements each on their own line, whitespace
 * outside strings removed), in one write(2), before the answer is sent — so
 * FILE holds exactly what was acknowledged (plus, as with any real receiver,
 * what was acknowledged to a client that had already given up).
 *
 * Control (answered 200 {"ok":true}; parameters may be combined with '&'):
 *   POST /control?status=503     answer every delivery with 503 from now on
 *                                (any 100..599; 200 is the default)
 *   POST /control?delay_ms=3000  wait that long before answering a delivery
 *   POST /control?close=1        close deliveries' connections unanswered
 *   POST /control?reset=1        back to the defaults
 *   GET /stats                   {"posts":N,"records":M,"last_status":S}
 *       posts: deliveries received, whatever the answer; records: records
 *       written to FILE; last_status: the last delivery's answer (0 when the
 *       connection was closed unanswered).
 *
 * HTTP/1.1 keep-alive (HTTP/1.0 with "Connection: keep-alive"),
 * Content-Length and chunked request bodies, "Expect: 100-continue".  One
 * line per request on stderr.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX        (64 * 1024)             /* request head; past it 431 */
#define BODY_MAX        (64 * 1024 * 1024)      /* request body; past it 413 */
#define IDLE_MS         (60 * 1000)             /* keep-alive idle */
#define THREAD_STACK    (256 * 1024)

/* ---- shared state --------------------------------------------------------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int status;             /* answer to deliveries */
	long delay_ms;
	int close;
	unsigned long long posts, records;
	int last_status;
	int out_fd;
} g = { .status = 200, .out_fd = -1 };

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
logline(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* ---- a connection ---------------------------------------------------------------- */

struct conn {
	int fd;
	char *buf;              /* bytes read, [off, len) not yet used */
	size_t len, off, cap;
	char *body;             /* the request body, decoded */
	size_t blen, bcap;
};

static int
reserve(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *q = realloc(*p, n);
	if (q == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

/* Reads more bytes; 1 read, 0 EOF or idle timeout, -1 error. */
static int
fill(struct conn *c)
{
	if (c->off > 0 && c->off == c->len)
		c->off = c->len = 0;
	if (reserve(&c->buf, &c->cap, c->len + 16384) < 0)
		return -1;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int r = poll(&p, 1, IDLE_MS);
	if (r <= 0)
		return r;
	ssize_t n;
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	c->len += (size_t)n;
	return 1;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One line ending in CRLF (or LF) at c->off; *line points to it, without
 * its end.  Returns its length, -1 at EOF or an error, -2 when it is longer
 * than max. */
static long
get_line(struct conn *c, char **line, size_t max)
{
	for (;;) {
		char *s = c->buf + c->off;
		char *nl = c->off < c->len ? memchr(s, '\n', c->len - c->off) :
		    NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - s);
			c->off += n + 1;
			if (n > 0 && s[n - 1] == '\r')
				n--;
			s[n] = '\0';
			*line = s;
			return (long)n;
		}
		if (c->len - c->off > max)
			return -2;
		if (fill(c) <= 0)
			return -1;
	}
}

/* ---- the request ------------------------------------------------------------------- */

struct req {
	char method[16];
	char target[2048];
	int minor;
	long long clen;         /* -1 none */
	int chunked;
	int keep;
	int expect_continue;
};

static int
header_has(const char *v, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = v; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, tok, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* Reads a request head.  Returns 0, 1 when the client went away (EOF), or
 * the status to answer (400, 431, 505) before closing. */
static int
read_head(struct conn *c, struct req *r)
{
	char *line;
	long n;

	memset(r, 0, sizeof(*r));
	r->clen = -1;
	do {    /* empty lines before a request are allowed (RFC 9112 §2.2) */
		n = get_line(c, &line, HEAD_MAX);
		if (n < 0)
			return n == -2 ? 431 : 1;       /* EOF: just close */
	} while (n == 0);
	char version[16];
	if (sscanf(line, "%15s %2047s %15s", r->method, r->target, version) != 3)
		return 400;
	if (strcmp(version, "HTTP/1.1") == 0)
		r->minor = 1;
	else if (strcmp(version, "HTTP/1.0") == 0)
		r->minor = 0;
	else
		return 505;
	r->keep = r->minor == 1;
	size_t total = (size_t)n;
	for (;;) {
		n = get_line(c, &line, HEAD_MAX);
		if (n == -1)
			return 1;
		if (n < 0)
			return 431;
		total += (size_t)n;
		if (total > HEAD_MAX)
			return 431;
		if (n == 0)
			break;
		char *colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			return 400;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Content-Length") == 0) {
			char *end;
			errno = 0;
			long long x = strtoll(v, &end, 10);
			if (errno || end == v || *end != '\0' || x < 0 || r->clen >= 0)
				return 400;
			r->clen = x;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			if (!header_has(v, "chunked"))
				return 400;
			r->chunked = 1;
		} else if (strcasecmp(line, "Connection") == 0) {
			if (header_has(v, "close"))
				r->keep = 0;
			else if (header_has(v, "keep-alive"))
				r->keep = 1;
		} else if (strcasecmp(line, "Expect") == 0) {
			r->expect_continue = header_has(v, "100-continue");
		}
	}
	if (r->chunked && r->clen >= 0)
		return 400;     /* RFC 9112 §6.3: ambiguous, refuse */
	return 0;
}

static int
body_put(struct conn *c, const char *p, size_t n)
{
	if (c->blen + n > BODY_MAX ||
	    reserve(&c->body, &c->bcap, c->blen + n + 1) < 0)
		return -1;
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
	c->body[c->blen] = '\0';
	return 0;
}

/* Takes n body bytes from the connection. */
static int
read_exact(struct conn *c, size_t n)
{
	while (n > 0) {
		if (c->off == c->len && fill(c) <= 0)
			return -1;
		size_t k = c->len - c->off < n ? c->len - c->off : n;
		if (body_put(c, c->buf + c->off, k) < 0)
			return -1;
		c->off += k;
		n -= k;
	}
	return 0;
}

/* Returns 0, or the status to answer before closing. */
static int
read_body(struct conn *c, const struct req *r)
{
	c->blen = 0;
	if (reserve(&c->body, &c->bcap, 1) < 0)
		return 500;
	c->body[0] = '\0';
	if (!r->chunked)
		return r->clen <= 0 ? 0 : r->clen > BODY_MAX ? 413 :
		    read_exact(c, (size_t)r->clen) < 0 ? 400 : 0;
	for (;;) {
		char *line, *end;
		if (get_line(c, &line, 1024) < 0)
			return 400;
		errno = 0;
		unsigned long long size = strtoull(line, &end, 16);
		if (end == line || errno || (*end != '\0' && *end != ';' &&
		    *end != ' ' && *end != '\t'))
			return 400;
		if (size > BODY_MAX)
			return 413;
		if (size == 0)
			break;
		if (read_exact(c, (size_t)size) < 0)
			return 400;
		if (get_line(c, &line, 2) != 0)
			return 400;     /* the CRLF after the data */
	}
	for (;;) {              /* trailers, up to the empty line */
		char *line;
		long n = get_line(c, &line, HEAD_MAX);
		if (n < 0)
			return 400;
		if (n == 0)
			return 0;
	}
}

/* ---- the records ------------------------------------------------------------------- */

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/*
 * Scans one JSON value that starts with '{' or '[' at p, appending it to out
 * without whitespace outside strings.  Returns the end of the value, or NULL
 * if it is unbalanced or broken.  (A structural check, not a full parser:
 * what is between the brackets is the proxy's business.)
 */
static const char *
scan_value(const char *p, const char *end, char *out, size_t *olen)
{
	char stack[256];
	size_t depth = 0;
	int in_str = 0, esc = 0;

	if (p >= end || (*p != '{' && *p != '['))
		return NULL;
	for (; p < end; p++) {
		char ch = *p;
		if (in_str) {
			if ((unsigned char)ch < 0x20)
				return NULL;
			if (esc)
				esc = 0;
			else if (ch == '\\')
				esc = 1;
			else if (ch == '"')
				in_str = 0;
		} else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			continue;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '{' || ch == '[') {
			if (depth == sizeof(stack))
				return NULL;
			stack[depth++] = ch == '{' ? '}' : ']';
		} else if (ch == '}' || ch == ']') {
			if (depth == 0 || stack[depth - 1] != ch)
				return NULL;
			depth--;
		}
		out[(*olen)++] = ch;
		if (depth == 0)
			return p + 1;
	}
	return NULL;
}

/*
 * Turns a delivery body into lines: one per record.  Returns how many records
 * (lines) are in out[0..*olen), or -1 when the body is not an object or an
 * array of objects.
 */
static long
records_of(const char *body, size_t n, char *out, size_t *olen)
{
	const char *p = skip_ws(body, body + n), *end = body + n;
	long count = 0;

	*olen = 0;
	if (p < end && *p == '{') {
		p = scan_value(p, end, out, olen);
		if (p == NULL || skip_ws(p, end) != end)
			return -1;
		out[(*olen)++] = '\n';
		return 1;
	}
	if (p >= end || *p != '[')
		return -1;
	p = skip_ws(p + 1, end);
	if (p < end && *p == ']')
		return skip_ws(p + 1, end) == end ? 0 : -1;
	for (;;) {
		p = scan_value(skip_ws(p, end), end, out, olen);
		if (p == NULL)
			return -1;
		out[(*olen)++] = '\n';
		count++;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == ']' && skip_ws(p + 1, end) == end)
			return count;
		return -1;
	}
}

/* ---- answering ---------------------------------------------------------------------- */

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

static int
answer(struct conn *c, int status, const char *json, int keep)
{
	char head[256];
	/* 1xx, 204 and 304 carry no body (RFC 9112 §6.3). */
	int nobody = status < 200 || status == 204 || status == 304;
	size_t blen = nobody ? 0 : strlen(json);
	const char *conn = keep ? "" : "Connection: close\r\n";
	int n;

	if (nobody)
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s\r\n",
		    status, reason(status), conn);
	else
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		    "%s\r\n", status, reason(status), blen, conn);
	if (send_all(c->fd, head, (size_t)n) < 0)
		return -1;
	return blen > 0 ? send_all(c->fd, json, blen) : 0;
}

static int
query_num(const char *q, const char *name, long lo, long hi, long *out)
{
	size_t n = strlen(name);

	for (const char *p = q; p != NULL && *p != '\0';) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			char *end;
			errno = 0;
			long v = strtol(p + n + 1, &end, 10);
			if (errno || end == p + n + 1 || (*end != '\0' && *end != '&') ||
			    v < lo || v > hi)
				return -1;
			*out = v;
			return 1;
		}
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	return 0;
}

/* POST /control?...: returns the status to answer. */
static int
control(const char *target)
{
	const char *q = strchr(target, '?');
	long status = 0, delay = 0, cl = 0, reset = 0;
	int has_s, has_d, has_c, has_r;

	if (q == NULL)
		return 400;
	q++;
	if ((has_s = query_num(q, "status", 100, 599, &status)) < 0 ||
	    (has_d = query_num(q, "delay_ms", 0, 3600 * 1000, &delay)) < 0 ||
	    (has_c = query_num(q, "close", 0, 1, &cl)) < 0 ||
	    (has_r = query_num(q, "reset", 0, 1, &reset)) < 0 ||
	    has_s + has_d + has_c + has_r == 0)
		return 400;
	pthread_mutex_lock(&g_mu);
	if (has_r && reset) {
		g.status = 200;
		g.delay_ms = 0;
		g.close = 0;
	}
	if (has_s)
		g.status = (int)status;
	if (has_d)
		g.delay_ms = delay;
	if (has_c)
		g.close = (int)cl;
	pthread_mutex_unlock(&g_mu);
	logline("control %s", q);
	return 200;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A delivery.  Returns whether the connection stays open. */
static int
delivery(struct conn *c, const struct req *r)
{
	char *lines = malloc(c->blen + 2);
	size_t olen = 0;
	long n = lines == NULL ? -1 : records_of(c->body, c->blen, lines, &olen);

	pthread_mutex_lock(&g_mu);
	int status = g.status, hangup = g.close;
	long delay = g.delay_ms;
	g.posts++;
	pthread_mutex_unlock(&g_mu);

	if (delay > 0)
		sleep_ms(delay);
	if (n < 0 && !hangup)
		status = 400;
	if (hangup) {
		pthread_mutex_lock(&g_mu);
		g.last_status = 0;
		pthread_mutex_unlock(&g_mu);
		logline("POST %s: %zu bytes, closed unanswered", r->target, c->blen);
		free(lines);
		return 0;
	}
	pthread_mutex_lock(&g_mu);
	if (status >= 200 && status <= 299 && olen > 0) {
		/* One write for the batch: lines of concurrent deliveries never
		 * interleave. */
		ssize_t w = write(g.out_fd, lines, olen);
		if (w != (ssize_t)olen) {
			logline("writing the records: %s", w < 0 ? strerror(errno) :
			    "short write");
			status = 500;
		} else {
			g.records += (unsigned long long)n;
		}
	}
	g.last_status = status;
	pthread_mutex_unlock(&g_mu);
	free(lines);
	if (n < 0)
		logline("POST %s: %zu bytes, not a JSON object or array, answered %d",
		    r->target, c->blen, status);
	else
		logline("POST %s: %zu bytes, %ld record%s, answered %d", r->target,
		    c->blen, n, n == 1 ? "" : "s", status);
	int keep = r->keep;
	if (answer(c, status, status >= 200 && status <= 299 ? "{\"ok\":true}" :
	    n < 0 ? "{\"error\":\"not a JSON object or array\"}" :
	    "{\"error\":\"as configured\"}", keep) < 0)
		return 0;
	return keep;
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct req r;

	for (;;) {
		int st = read_head(c, &r);
		if (st == 1)
			break;
		if (st != 0) {
			answer(c, st, "{\"error\":\"bad request head\"}", 0);
			break;
		}
		if (r.expect_continue && r.minor == 1 &&
		    send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
			break;
		st = read_body(c, &r);
		if (st != 0) {
			answer(c, st, "{\"error\":\"bad request body\"}", 0);
			break;
		}
		int keep = r.keep;
		if (strcmp(r.method, "POST") == 0 &&
		    (strcmp(r.target, "/control") == 0 ||
		    strncmp(r.target, "/control?", 9) == 0)) {
			st = control(r.target);
			keep = answer(c, st, st == 200 ? "{\"ok\":true}" :
			    "{\"error\":\"bad control\"}", keep) == 0 && keep;
		} else if (strcmp(r.method, "POST") == 0) {
			keep = delivery(c, &r);
		} else if (strcmp(r.method, "GET") == 0 &&
		    strcmp(r.target, "/stats") == 0) {
			char json[160];
			pthread_mutex_lock(&g_mu);
			snprintf(json, sizeof(json),
			    "{\"posts\":%llu,\"records\":%llu,\"last_status\":%d}",
			    g.posts, g.records, g.last_status);
			pthread_mutex_unlock(&g_mu);
			keep = answer(c, 200, json, keep) == 0 && keep;
		} else {
			keep = answer(c, strcmp(r.method, "GET") == 0 ? 404 : 405,
			    "{\"error\":\"no such endpoint\"}", keep) == 0 && keep;
		}
		if (!keep)
			break;
		/* Compact what the next request has already sent. */
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	close(c->fd);
	free(c->buf);
	free(c->body);
	free(c);
	return NULL;
}

/* ---- main ---------------------------------------------------------------------------- */

static int
parse_listen(const char *s, struct sockaddr_in *sa)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	char *end;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '\0' || strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end != '\0' || port < 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: webhook_receiver --listen 127.0.0.1:PORT --out FILE\n"
	    "A usage webhook for llmproxy's tests; see the comment at the top of\n"
	    "tests/webhook_receiver.c for /control and /stats.\n");
}

int
main(int argc, char **argv)
{
	const char *listen_at = NULL, *out = NULL;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	pthread_attr_t attr;
	char addr[INET_ADDRSTRLEN];
	int one = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			listen_at = argv[++i];
		} else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (listen_at == NULL || out == NULL) {
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen_at, &sa) < 0) {
		fprintf(stderr, "webhook_receiver: bad --listen address %s\n", listen_at);
		return 2;
	}
	g.out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (g.out_fd < 0) {
		fprintf(stderr, "webhook_receiver: %s: %s\n", out, strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
		fprintf(stderr, "webhook_receiver: cannot listen on %s: %s\n",
		    listen_at, strerror(errno));
		return 1;
	}
	inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
	printf("webhook_receiver listening on %s:%u\n", addr,
	    (unsigned)ntohs(sa.sin_port));
	fflush(stdout);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED) {
				logline("accept: %s", strerror(errno));
				sleep_ms(10);   /* EMFILE and friends */
			}
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t t;
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			logline("cannot start a connection thread");
			close(fd);
			free(c);
		}
	}
}
