/*
 * mock_upstream.c — a mock LLM backend for llmproxy's end-to-end tests, the
 * demo and the benchmarks.
 *
 * It speaks HTTP/1.1 (and 1.0) with its own small parser — deliberately NOT
 * src/http.c, so that a bug in the proxy's parser cannot hide behind the same
 * bug here — and streams the SSE shapes of vLLM, OpenAI, TGI and llama.cpp
 * (../shared/fixtures/sse/).  libc + pthreads only; Linux (POLLRDHUP, accept4).
 *
 *   mock_upstream [--listen 127.0.0.1:PORT] [--fast]   default 127.0.0.1:0 (ephemeral)
 *
 * After listening it prints exactly one line to stdout, then flushes:
 *     mock_upstream listening on 127.0.0.1:PORT
 * Logs go to stderr, one line per request.  SIGTERM/SIGINT: exit 0.
 *
 * --fast (the benchmarks): no log line per request, and no zero-time look at
 * the client before each event of a stream (a client that left is then seen
 * when a write fails, or during a delay); everything a client receives is
 * the same.
 *
 * ---- Steering headers (all optional; request headers win over the defaults
 *      set with POST /mock/defaults; an unknown X-Mock-* header or a bad value
 *      is answered 400, so a typo in a test cannot pass silently) ------------
 *   X-Mock-Tokens: N            tokens to generate (default 5); token i (1-based)
 *                               is " tok<i>", so 3 tokens read " tok1 tok2 tok3"
 *   X-Mock-First-Delay-Ms: ms   before the first event (prefill)
 *   X-Mock-Delay-Ms: ms         between tokens
 *   X-Mock-Head-Delay-Ms: ms    before the response head (every endpoint)
 *   X-Mock-Dialect: vllm|openai|tgi|llamacpp|llamacpp-old        (default vllm)
 *   X-Mock-Chunking: event|split|coalesce|byte                   (default event)
 *   X-Mock-Framing: chunked|close   (streams: default chunked; bodies: default
 *                               Content-Length, `chunked` sends 3 chunks)
 *   X-Mock-Event-Pad: N         N bytes of padding ("pad":"xxx…") per token event
 *   X-Mock-Fail: none|500|503|429|close-before-head|reset-before-head|garbage|
 *                stall-head|close-after-head|stall-first|close-mid|reset-mid|
 *                stall-mid
 *   X-Mock-Fail-After: k        for *-mid: after k tokens (default tokens/2)
 *   X-Mock-Finish-Reason: r     finish_reason, default "stop" (e.g. "length")
 *   X-Mock-Idle-Close-Ms: ms    after this response, close the keep-alive
 *                               connection (without announcing it) if no new
 *                               request arrived within ms (0 = right away)
 *   X-Mock-Health: status|close-before-head|reset-before-head|garbage|stall-head
 *                               what GET /health answers (default 200)
 *   X-Mock-Models: a,b          ids listed by GET /v1/models (default mock-model)
 *   X-Mock-No-Usage: 1          report no usage anywhere, whatever the request asks
 *   X-Mock-Timestamps: 1        each token event carries "t_us": CLOCK_MONOTONIC
 *                               microseconds when it was made (latency tests)
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions (streamed when
 * the body has "stream": true), POST /v1/embeddings, GET /v1/models,
 * GET /health (200, empty body); any other /v1/ path echoes the request as
 * JSON.  The control endpoints (/mock/...) are described at section 12.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifdef POLLRDHUP
#define RDHUP POLLRDHUP
#else
#define RDHUP 0
#endif

/* ========================================================================== */
/* 1. Limits                                                                  */
/* ========================================================================== */

#define HEAD_MAX        (64 * 1024)            /* request head; past it: 431 */
#define CONN_BUF_SIZE   (HEAD_MAX + 16 * 1024) /* per-connection read buffer */
#define HDR_MAX         256                    /* header fields per request */
#define CHUNK_LINE_MAX  4096                   /* chunk-size / trailer line */
#define BODY_MAX        ((size_t)64 * 1024 * 1024)
#define RING_N          4096 /* request records kept */
#define ID_MAX          128  /* X-Request-Id bytes kept */
#define TARGET_REC_MAX  128  /* target bytes kept per record */
#define DEFAULTS_MAX    32
#define DEFAULT_VAL_MAX 256
#define MODEL_MAX       200
#define THREAD_STACK    ((size_t)256 * 1024)
#define LINGER_MS       1000 /* lingering close: wait for FIN */
#define PAUSE_MS        2    /* between split halves/chunks */
#define MAX_DELAY_MS    3600000L
#define MAX_TOKENS      1000000L
#define MAX_PAD         (16L * 1024 * 1024)
#define COALESCE_FLUSH  ((size_t)8 * 1024 * 1024)
#define CREATED         1700000000L /* fixed "created": output is deterministic */

/* ========================================================================== */
/* 2. Small utilities: clock, log, string builder, JSON, numbers              */
/* ========================================================================== */

/* CLOCK_MONOTONIC in ms: the same clock every process on the host reads, so a
 * test may compare client_gone_ms with its own clock_gettime(CLOCK_MONOTONIC). */
static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One write(2) per line, so lines from concurrent threads never interleave. */
static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
logline(const char *fmt, ...)
{
	static const char pfx[] = "mock_upstream: ";
	char buf[1024];
	size_t len = sizeof pfx - 1;
	va_list ap;
	int n;

	memcpy(buf, pfx, len);
	va_start(ap, fmt);
	n = vsnprintf(buf + len, sizeof buf - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof buf - len - 1 ? (size_t)n : sizeof buf - len - 2;
	buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
}

static void die(const char *what) __attribute__((noreturn));
static void
die(const char *what)
{
	logline("fatal: %s", what);
	abort();
}

/* Growable byte string, always NUL-terminated.  Out of memory aborts: in a
 * test fixture that is a bug worth a loud stop, not a code path. */
struct sb {
	char *p;
	size_t len, cap;
};

static void
sb_grow(struct sb *b, size_t add)
{
	size_t cap;
	char *np;

	if (b->len + add + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + add + 1)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		die("out of memory");
	b->p = np;
	b->cap = cap;
}

static void
sb_put(struct sb *b, const void *s, size_t n)
{
	sb_grow(b, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}
static void
sb_putc(struct sb *b, char ch)
{
	sb_put(b, &ch, 1);
}

static void
sb_fill(struct sb *b, char ch, size_t n)
{
	sb_grow(b, n);
	memset(b->p + b->len, ch, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	sb_grow(b, 128);
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->cap - b->len) { /* did not fit: grow, format again */
		sb_grow(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void
sb_reset(struct sb *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

static void
sb_free(struct sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0 if the bytes there are not one. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp, min;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* A JSON string literal (with quotes).  Valid UTF-8 passes through unchanged
 * so a test can compare bytes; a byte that is not valid UTF-8 becomes
 * \u00XX (the only lossy case; body_len still tells the true length). */
static void
sb_json_str(struct sb *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	sb_putc(b, '"');
	while (i < n) {
		unsigned ch = u[i];
		if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
			run = i;
			while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' &&
			    u[run] != '\\')
				run++;
			sb_put(b, s + i, run - i);
			i = run;
		} else if (ch == '"' || ch == '\\') {
			sb_putc(b, '\\');
			sb_putc(b, (char)ch);
			i++;
		} else if (ch < 0x20) {
			switch (ch) {
			case '\n':
				sb_puts(b, "\\n");
				break;
			case '\r':
				sb_puts(b, "\\r");
				break;
			case '\t':
				sb_puts(b, "\\t");
				break;
			case '\b':
				sb_puts(b, "\\b");
				break;
			case '\f':
				sb_puts(b, "\\f");
				break;
			default:
				sb_printf(b, "\\u%04x", ch);
				break;
			}
			i++;
		} else {
			size_t k = utf8_seq(u + i, n - i);
			if (k) {
				sb_put(b, s + i, k);
				i += k;
			} else {
				sb_printf(b, "\\u%04x", ch);
				i++;
			}
		}
	}
	sb_putc(b, '"');
}

static void
sb_json_cstr(struct sb *b, const char *s)
{
	sb_json_str(b, s, strlen(s));
}

/* Decimal digits only (no sign, no spaces), within [lo, hi]. */
static int
parse_num(const char *s, long lo, long hi, long *out)
{
	long v = 0;
	int digits = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || ++digits > 18 || v > (LONG_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (cap bytes incl. NUL).  '+' stays '+'. */
static int
pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

/* Value of query parameter `name` in q ("a=1&b=2"), percent-decoded.
 * Returns 1 found, 0 absent, -1 malformed or too long. */
static int
query_param(const char *q, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len > nl && q[nl] == '=' && !memcmp(q, name, nl))
			return pct_decode(q + nl + 1, len - nl - 1, out, cap) < 0 ? -1 : 1;
		if (len == nl && !memcmp(q, name, nl)) {
			out[0] = '\0';
			return 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

/* ---- minimal JSON peeking into request bodies (strstr-level, a mock) ----- */

static size_t
skip_ws(const char *s, size_t n, size_t j)
{
	while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n'))
		j++;
	return j;
}

/* Position just after `"key" :` (whitespace-tolerant), or 0 if absent. */
static size_t
json_key(const char *s, size_t n, const char *key)
{
	size_t kl = strlen(key), i, j;

	for (i = 0; i + kl + 2 <= n; i++) {
		if (s[i] != '"' || memcmp(s + i + 1, key, kl) != 0 || s[i + 1 + kl] != '"')
			continue;
		j = skip_ws(s, n, i + kl + 2);
		if (j >= n || s[j] != ':')
			continue;
		return skip_ws(s, n, j + 1);
	}
	return 0;
}

/* 1 if the body has `"key": true`, else 0. */
static int
json_true(const char *s, size_t n, const char *key)
{
	size_t j = json_key(s, n, key);
	return j && n - j >= 4 && !memcmp(s + j, "true", 4);
}

/* `"model": "name"` when name is plain (no escapes, no control bytes). */
static void
json_model(const char *s, size_t n, char *out, size_t cap)
{
	size_t j = json_key(s, n, "model"), k;

	snprintf(out, cap, "mock-model");
	if (!j || j >= n || s[j] != '"')
		return;
	for (k = j + 1; k < n && s[k] != '"'; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == '\\' || k - j > MODEL_MAX)
			return;
	if (k >= n || k == j + 1 || k - j - 1 >= cap)
		return;
	memcpy(out, s + j + 1, k - j - 1);
	out[k - j - 1] = '\0';
}

/* ========================================================================== */
/* 3. Shared state: counters, request records, defaults (one mutex)          */
/* ========================================================================== */

enum state { ST_RUNNING, ST_DONE, ST_ABORTED, ST_FAILED };
static const char *const state_names[] = {"running", "done", "aborted", "failed"};

struct rec {
	uint64_t seq; /* 0: empty slot */
	char id[ID_MAX];
	char method[16];
	char target[TARGET_REC_MAX];
	char detail[32];
	char authorization[160];  /* the request's credentials as received, ""  */
	char x_api_key[160];      /* when absent (auth tests: what a backend sees) */
	int state, status;
	long tokens_sent;
	long long start_ms, end_ms, gone_ms;
};

struct defv {
	char name[32];
	char value[DEFAULT_VAL_MAX];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fast; /* --fast: see the top of the file */
static struct {
	unsigned long accepted;            /* connections accepted (since reset) */
	unsigned long connections;         /* connections that carried a traffic request */
	unsigned long requests;            /* traffic requests (not /mock/..., not /health) */
	unsigned long health;              /* GET /health requests */
	long active;                       /* traffic requests in progress */
	unsigned long reset_gen;           /* bumped by /mock/reset */
	uint64_t next_seq;                 /* record sequence, never reset */
	unsigned long next_req, next_conn; /* log numbering, never reset */
} gs = {.reset_gen = 1};
static struct rec g_ring[RING_N];
static struct defv g_defs[DEFAULTS_MAX];
static int g_ndefs;

/* With g_mu held. */
static struct rec *
rec_at(uint64_t seq)
{
	struct rec *r;

	if (!seq)
		return NULL;
	r = &g_ring[seq % RING_N];
	return r->seq == seq ? r : NULL;
}

static void
copy_trunc(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* With g_mu held. */
static uint64_t
rec_open(const char *id, const char *method, const char *target, long long t0)
{
	uint64_t seq = ++gs.next_seq;
	struct rec *r = &g_ring[seq % RING_N];

	memset(r, 0, sizeof *r);
	r->seq = seq;
	copy_trunc(r->id, sizeof r->id, id);
	copy_trunc(r->method, sizeof r->method, method);
	copy_trunc(r->target, sizeof r->target, target);
	r->state = ST_RUNNING;
	r->start_ms = t0;
	return seq;
}

static void
rec_json(struct sb *b, const struct rec *r, int matches)
{
	sb_puts(b, "{\"id\":");
	sb_json_cstr(b, r->id);
	sb_printf(b, ",\"state\":\"%s\",\"tokens_sent\":%ld,\"client_gone_ms\":%lld,\"method\":",
	    state_names[r->state], r->tokens_sent, r->gone_ms);
	sb_json_cstr(b, r->method);
	sb_puts(b, ",\"target\":");
	sb_json_cstr(b, r->target);
	sb_printf(b, ",\"status\":%d,\"detail\":", r->status);
	sb_json_cstr(b, r->detail);
	sb_puts(b, ",\"authorization\":");
	sb_json_cstr(b, r->authorization);
	sb_puts(b, ",\"x_api_key\":");
	sb_json_cstr(b, r->x_api_key);
	sb_printf(b, ",\"start_ms\":%lld,\"end_ms\":%lld,\"matches\":%d}", r->start_ms, r->end_ms,
	    matches);
}

/* ========================================================================== */
/* 4. Connection I/O: buffered reads, watching the client, writes, closes    */
/* ========================================================================== */

struct hdr {
	const char *name, *value;
};

struct req {
	const char *method, *target, *query; /* query: after '?', or "" */
	size_t path_len;                     /* target up to '?' */
	int minor;                           /* HTTP/1.<minor> */
	struct hdr h[HDR_MAX];
	int nh;
	const char *body;
	size_t body_len;
	int keep_alive, is_head;
};

enum dialect { D_VLLM, D_OPENAI, D_TGI, D_LLAMACPP, D_LLAMACPP_OLD };
enum chunking { CH_EVENT, CH_SPLIT, CH_COALESCE, CH_BYTE };
enum framing { FR_AUTO, FR_CHUNKED, FR_CLOSE };
enum fail {
	F_NONE,
	F_500,
	F_503,
	F_429,
	F_CLOSE_BEFORE_HEAD,
	F_RESET_BEFORE_HEAD,
	F_GARBAGE,
	F_STALL_HEAD,
	F_CLOSE_AFTER_HEAD,
	F_STALL_FIRST,
	F_CLOSE_MID,
	F_RESET_MID,
	F_STALL_MID,
	F_COUNT
};

struct steer {
	long tokens, first_delay, delay, head_delay, pad, fail_after, idle_close, timestamps;
	long no_usage;
	int dialect, chunking, framing, fail;
	long health_status;
	int health_fail;
	char finish[32];
	const char *models;
};

/* One traffic request in progress. */
struct ctx {
	struct conn *c;
	const struct req *r;
	struct steer st;
	struct defv defs[DEFAULTS_MAX]; /* snapshot of the defaults */
	int ndefs;
	uint64_t seq;     /* record; 0 for /health */
	unsigned long no; /* log number */
	int in_active;
	long long t0;
	long tokens_sent;
	int gone, finished, state, status;
	const char *detail;
	char model[MODEL_MAX + 1];
};

struct conn {
	int fd;
	unsigned long id;
	unsigned long counted_gen; /* reset_gen it was counted in, 0 = no */
	size_t off, len;           /* unread bytes: buf[off..len) */
	long idle_next;            /* idle limit before the next request */
	char buf[CONN_BUF_SIZE];
	char head[HEAD_MAX + 1]; /* copy of the current request head */
	char *body;
	size_t body_cap;
	struct req req;
	struct ctx ctx;
};

static void
conn_compact(struct conn *c)
{
	if (c->off == 0)
		return;
	memmove(c->buf, c->buf + c->off, c->len - c->off);
	c->len -= c->off;
	c->off = 0;
}

/* Read more into c->buf.  timeout_ms < 0: block.  Returns bytes read, 0 on
 * EOF, -1 on error, -2 on timeout, -3 when the buffer is full. */
static int
conn_fill(struct conn *c, long timeout_ms)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof c->buf)
		conn_compact(c);
	if (c->len == sizeof c->buf)
		return -3;
	if (timeout_ms >= 0) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		for (;;) {
			int k = poll(&p, 1, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
			if (k < 0 && errno == EINTR)
				continue;
			if (k == 0)
				return -2;
			if (k < 0)
				return -1;
			break;
		}
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			return (int)n;
		}
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * Wait ms milliseconds (ms < 0: until the client goes away) while watching
 * the client.  Never a blind sleep: the tests measure how fast the proxy
 * closes us, so we must notice a FIN/RST within a poll() wake-up.  Gone means
 * POLLHUP/POLLERR/POLLRDHUP, or recv() returning 0 or an error.  Bytes the
 * client sends meanwhile (a pipelined request) are kept in c->buf.  A client
 * that half-closes (shutdown(SHUT_WR)) counts as gone, as with vLLM.
 * Returns 0 when the time is up, -1 when the client is gone.
 */
static int
conn_watch(struct conn *c, long long ms)
{
	long long deadline = ms >= 0 ? now_ms() + ms : 0;

	for (;;) {
		int timeout = -1, k;
		int room = c->len < sizeof c->buf || c->off > 0;
		struct pollfd p = {.fd = c->fd, .events = (short)(RDHUP | (room ? POLLIN : 0))};

		if (ms >= 0) {
			long long rem = deadline - now_ms();
			if (rem < 0)
				rem = 0;
			timeout = rem > INT_MAX ? INT_MAX : (int)rem;
		}
		k = poll(&p, 1, timeout);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0) {
			if (ms >= 0 && now_ms() >= deadline)
				return 0;
			continue;
		}
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL | RDHUP))
			return -1;
		if (p.revents & POLLIN) {
			ssize_t n;
			if (c->len == sizeof c->buf)
				conn_compact(c);
			n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
			if (n > 0) {
				c->len += (size_t)n;
				continue;
			}
			if (n == 0)
				return -1;
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
	}
}

/* Write all of p[0..n).  A client that goes away while we wait for room in
 * the socket buffer is noticed too.  Returns 0, or -1 when the client is gone. */
static int
conn_send(struct conn *c, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd q = {.fd = c->fd, .events = POLLOUT | RDHUP};
			int k = poll(&q, 1, -1);
			if (k < 0 && errno != EINTR)
				return -1;
			if (k > 0 && (q.revents & (POLLERR | POLLHUP | POLLNVAL | RDHUP)))
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* Close with a FIN.  Unread input would turn close() into an RST, so it is
 * drained first. */
static void
close_fin(struct conn *c)
{
	char tmp[4096];

	while (recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT) > 0)
		;
	close(c->fd);
	c->fd = -1;
}

/* Close with an RST (SO_LINGER 0). */
static void
close_rst(struct conn *c)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(c->fd);
	c->fd = -1;
}

/* Lingering close: FIN first, then read until the client closes too (bounded),
 * so that input still in flight cannot make our close an RST that destroys
 * the tail of a close-delimited response before the client read it. */
static void
close_linger(struct conn *c)
{
	char tmp[4096];
	long long deadline = now_ms() + LINGER_MS;

	shutdown(c->fd, SHUT_WR);
	for (;;) {
		long long rem = deadline - now_ms();
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		if (rem <= 0 || poll(&p, 1, (int)rem) <= 0)
			break;
		n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			break;
	}
	close(c->fd);
	c->fd = -1;
}

/* ========================================================================== */
/* 5. HTTP request reading (independent of src/http.c)                        */
/* ========================================================================== */

static int
is_tchar(int ch)
{
	/* RFC 9110 §5.6.2 token characters */
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static const char *
req_hdr(const struct req *r, const char *name)
{
	int i;

	for (i = 0; i < r->nh; i++)
		if (!strcasecmp(r->h[i].name, name))
			return r->h[i].value;
	return NULL;
}

/* Does the comma-separated list v contain tok (case-insensitive)? */
static int
list_has(const char *v, const char *tok)
{
	size_t tl = strlen(tok);

	while (*v) {
		size_t n;
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && !strncasecmp(v, tok, tl))
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

static int
parse_request_line(struct req *r, char *line)
{
	char *sp1 = strchr(line, ' '), *tgt, *sp2, *p;

	if (!sp1 || sp1 == line || sp1 - line > 15)
		return -1;
	*sp1 = '\0';
	for (p = line; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return -1;
	tgt = sp1 + 1;
	sp2 = strchr(tgt, ' ');
	if (!sp2 || sp2 == tgt)
		return -1;
	*sp2 = '\0';
	if (!strcmp(sp2 + 1, "HTTP/1.1"))
		r->minor = 1;
	else if (!strcmp(sp2 + 1, "HTTP/1.0"))
		r->minor = 0;
	else
		return -1;
	for (p = tgt; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -1;
	r->method = line;
	r->target = tgt;
	r->path_len = strcspn(tgt, "?");
	r->query = tgt[r->path_len] == '?' ? tgt + r->path_len + 1 : "";
	return 0;
}

/* Split the head (hlen bytes at c->buf + c->off, ending in an empty line)
 * into c->req.  Returns 0 or the status to refuse it with. */
static int
parse_head(struct conn *c, size_t hlen)
{
	struct req *r = &c->req;
	char *p = c->head, *end = c->head + hlen;
	int first = 1;

	memcpy(c->head, c->buf + c->off, hlen);
	c->head[hlen] = '\0';
	c->off += hlen;
	memset(r, 0, sizeof *r);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *line = p, *le, *colon, *v, *ve, *q;
		if (!nl)
			break;
		le = nl;
		if (le > line && le[-1] == '\r')
			le--;
		*le = '\0';
		p = nl + 1;
		/* bare CR or NUL inside a line: RFC 9112 §2.2 lets us reject */
		if (strlen(line) != (size_t)(le - line) || memchr(line, '\r', (size_t)(le - line)))
			return 400;
		if (first) {
			first = 0;
			if (parse_request_line(r, line) < 0)
				return 400;
			continue;
		}
		if (*line == '\0')
			break;
		if (*line == ' ' || *line == '\t') /* obs-fold, RFC 9112 §5.2 */
			return 400;
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		for (q = line; q < colon; q++) /* no space before ':', §5.1 */
			if (!is_tchar((unsigned char)*q))
				return 400;
		*colon = '\0';
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		ve = v + strlen(v);
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			*--ve = '\0';
		if (r->nh == HDR_MAX)
			return 431;
		r->h[r->nh].name = line;
		r->h[r->nh].value = v;
		r->nh++;
	}
	return first ? 400 : 0;
}

/* Copy n bytes of body into dst: first what is buffered, then straight from
 * the socket.  Returns 0, or -1 if the client closed first. */
static int
conn_read_exact(struct conn *c, char *dst, size_t n)
{
	size_t avail = c->len - c->off, take = avail < n ? avail : n;

	memcpy(dst, c->buf + c->off, take);
	c->off += take;
	dst += take;
	n -= take;
	while (n > 0) {
		ssize_t k = recv(c->fd, dst, n, 0);
		if (k > 0) {
			dst += k;
			n -= (size_t)k;
		} else if (k == 0 || errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* Next line from the connection without its LF / CRLF, NUL-terminated in
 * place.  Returns its length, -1 on EOF/error, -2 if longer than max. */
static long
conn_line(struct conn *c, char **line, size_t max)
{
	size_t scanned = 0;

	for (;;) {
		char *start = c->buf + c->off, *nl;
		size_t avail = c->len - c->off, n;
		int k;

		nl = memchr(start + scanned, '\n', avail - scanned);
		if (nl) {
			n = (size_t)(nl - start);
			c->off += n + 1;
			if (n && start[n - 1] == '\r')
				n--;
			start[n] = '\0';
			*line = start;
			return (long)n;
		}
		scanned = avail;
		if (avail > max)
			return -2;
		k = conn_fill(c, -1);
		if (k == -3)
			return -2;
		if (k <= 0)
			return -1;
	}
}

static void
body_reserve(struct conn *c, size_t need)
{
	char *nb;
	size_t cap;

	if (need + 1 <= c->body_cap)
		return;
	cap = c->body_cap ? c->body_cap : 4096;
	while (cap < need + 1)
		cap *= 2;
	nb = realloc(c->body, cap);
	if (!nb)
		die("out of memory");
	c->body = nb;
	c->body_cap = cap;
}

/* Chunked request body, RFC 9112 §7.1.  Returns 1, 0 on EOF, or a status. */
static int
read_chunked(struct conn *c, size_t *len)
{
	char *line;
	long n;

	*len = 0;
	for (;;) {
		size_t sz = 0;
		int digits = 0;
		char *p;

		n = conn_line(c, &line, CHUNK_LINE_MAX);
		if (n == -1)
			return 0;
		if (n < 0)
			return 400;
		for (p = line; hexval((unsigned char)*p) >= 0; p++) {
			digits++;
			sz = sz * 16 + (size_t)hexval((unsigned char)*p);
			if (sz > BODY_MAX) /* checked per digit: no overflow */
				return 413;
		}
		if (!digits || (*p && *p != ';' && *p != ' ' && *p != '\t'))
			return 400;
		if (sz == 0)
			break;
		if (*len + sz > BODY_MAX)
			return 413;
		body_reserve(c, *len + sz);
		if (conn_read_exact(c, c->body + *len, sz) < 0)
			return 0;
		*len += sz;
		n = conn_line(c, &line, CHUNK_LINE_MAX);
		if (n == -1)
			return 0;
		if (n != 0)
			return 400;
	}
	for (;;) { /* trailer section */
		n = conn_line(c, &line, CHUNK_LINE_MAX);
		if (n == -1)
			return 0;
		if (n < 0)
			return 400;
		if (n == 0)
			return 1;
	}
}

/*
 * Read one request (head and body) into c->req.  idle_ms bounds the wait for
 * the first byte (< 0: forever).  Returns 1, 0 when the connection should just
 * be closed (EOF, idle timeout, I/O error), or a status (>= 400) to refuse
 * the request with before closing.
 */
static int
read_request(struct conn *c, long idle_ms)
{
	struct req *r = &c->req;
	size_t scanned = 0, hlen = 0, blen = 0;
	long long cl = -1;
	int te = 0, i, st;
	const char *ex;

	for (;;) {
		size_t avail, k;
		const char *b;
		int n;

		if (scanned == 0) /* RFC 9112 §2.2: ignore empty lines before the request-line */
			while (
			    c->off < c->len && (c->buf[c->off] == '\r' || c->buf[c->off] == '\n'))
				c->off++;
		avail = c->len - c->off;
		b = c->buf + c->off;
		for (k = scanned; k < avail; k++) {
			if (b[k] != '\n')
				continue;
			if (k + 1 >= avail)
				break;
			if (b[k + 1] == '\n') {
				hlen = k + 2;
				break;
			}
			if (b[k + 1] == '\r') {
				if (k + 2 >= avail)
					break;
				if (b[k + 2] == '\n') {
					hlen = k + 3;
					break;
				}
			}
		}
		if (hlen)
			break;
		scanned = k;
		if (avail >= HEAD_MAX)
			return 431;
		n = conn_fill(c, avail == 0 ? idle_ms : -1);
		if (n <= 0)
			return 0;
	}
	if (hlen > HEAD_MAX)
		return 431;
	st = parse_head(c, hlen);
	if (st)
		return st;

	/* Body framing, RFC 9112 §6.  Ambiguity is refused, never guessed. */
	for (i = 0; i < r->nh; i++) {
		if (!strcasecmp(r->h[i].name, "Content-Length")) {
			long v;
			if (parse_num(r->h[i].value, 0, (long)BODY_MAX * 4, &v) < 0)
				return strspn(r->h[i].value, "0123456789") ==
				            strlen(r->h[i].value) &&
				        *r->h[i].value
				    ? 413
				    : 400;
			if (cl >= 0 && v != cl)
				return 400;
			cl = v;
		} else if (!strcasecmp(r->h[i].name, "Transfer-Encoding")) {
			if (te || strcasecmp(r->h[i].value, "chunked"))
				return 501;
			te = 1;
		}
	}
	if (te && cl >= 0)
		return 400;
	if (cl > (long long)BODY_MAX)
		return 413;

	r->keep_alive = r->minor == 1;
	for (i = 0; i < r->nh; i++) {
		if (strcasecmp(r->h[i].name, "Connection"))
			continue;
		if (list_has(r->h[i].value, "close"))
			r->keep_alive = 0;
		else if (r->minor == 0 && list_has(r->h[i].value, "keep-alive"))
			r->keep_alive = 1;
	}
	r->is_head = !strcmp(r->method, "HEAD");

	/* curl waits a second for "100 Continue" on big bodies; do not make it. */
	ex = req_hdr(r, "Expect");
	if (ex && r->minor == 1 && !strcasecmp(ex, "100-continue") && (te || cl > 0) &&
	    c->off == c->len) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_send(c, cont, sizeof cont - 1) < 0)
			return 0;
	}

	if (te) {
		st = read_chunked(c, &blen);
		if (st != 1)
			return st;
	} else if (cl > 0) {
		blen = (size_t)cl;
		body_reserve(c, blen);
		if (conn_read_exact(c, c->body, blen) < 0)
			return 0;
	}
	body_reserve(c, blen);
	c->body[blen] = '\0';
	r->body = c->body;
	r->body_len = blen;
	return 1;
}

/* ========================================================================== */
/* 6. Steering: X-Mock-* headers and defaults -> struct steer                  */
/* ========================================================================== */

static const char *const knob_names[] = {
    "X-Mock-Tokens",
    "X-Mock-First-Delay-Ms",
    "X-Mock-Delay-Ms",
    "X-Mock-Head-Delay-Ms",
    "X-Mock-Dialect",
    "X-Mock-Chunking",
    "X-Mock-Framing",
    "X-Mock-Event-Pad",
    "X-Mock-Fail",
    "X-Mock-Fail-After",
    "X-Mock-Finish-Reason",
    "X-Mock-Idle-Close-Ms",
    "X-Mock-Health",
    "X-Mock-Models",
    "X-Mock-Timestamps",
    "X-Mock-No-Usage",
};
#define NKNOBS ((int)(sizeof knob_names / sizeof knob_names[0]))

static const char *const dialect_names[] = {"vllm", "openai", "tgi", "llamacpp", "llamacpp-old"};
static const char *const chunking_names[] = {"event", "split", "coalesce", "byte"};
static const char *const framing_names[] = {"", "chunked", "close"};
static const char *const fail_names[F_COUNT] = {
    "none",
    "500",
    "503",
    "429",
    "close-before-head",
    "reset-before-head",
    "garbage",
    "stall-head",
    "close-after-head",
    "stall-first",
    "close-mid",
    "reset-mid",
    "stall-mid",
};

static int
name_index(const char *v, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (names[i][0] && !strcasecmp(v, names[i]))
			return i;
	return -1;
}

static const char *
knob(const struct req *r, const struct defv *d, int nd, const char *name)
{
	int i;

	if (r) {
		const char *v = req_hdr(r, name);
		if (v)
			return v;
	}
	for (i = 0; i < nd; i++)
		if (!strcasecmp(d[i].name, name))
			return d[i].value;
	return NULL;
}

static int
plain_chars(const char *v, const char *extra)
{
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		        (*v >= '0' && *v <= '9') || strchr(extra, *v)))
			return 0;
	return 1;
}

/* Fill st from the request's headers (r may be NULL) and the defaults d.
 * Returns 0, or -1 with a message in err. */
static int
steer_parse(
    const struct req *r, const struct defv *d, int nd, struct steer *st, char *err, size_t errcap)
{
	static const struct {
		const char *name;
		size_t off;
		long lo, hi;
	} nums[] = {
	    {"X-Mock-Tokens", offsetof(struct steer, tokens), 0, MAX_TOKENS},
	    {"X-Mock-First-Delay-Ms", offsetof(struct steer, first_delay), 0, MAX_DELAY_MS},
	    {"X-Mock-Delay-Ms", offsetof(struct steer, delay), 0, MAX_DELAY_MS},
	    {"X-Mock-Head-Delay-Ms", offsetof(struct steer, head_delay), 0, MAX_DELAY_MS},
	    {"X-Mock-Event-Pad", offsetof(struct steer, pad), 0, MAX_PAD},
	    {"X-Mock-Fail-After", offsetof(struct steer, fail_after), 0, MAX_TOKENS},
	    {"X-Mock-Idle-Close-Ms", offsetof(struct steer, idle_close), 0, MAX_DELAY_MS},
	    {"X-Mock-Timestamps", offsetof(struct steer, timestamps), 0, 1},
	    {"X-Mock-No-Usage", offsetof(struct steer, no_usage), 0, 1},
	};
	const char *v;
	int i, k;

	memset(st, 0, sizeof *st);
	st->tokens = 5;
	st->fail_after = -1;
	st->idle_close = -1;
	st->health_status = 200;
	snprintf(st->finish, sizeof st->finish, "stop");
	st->models = "mock-model";

	if (r) {
		for (i = 0; i < r->nh; i++)
			if (!strncasecmp(r->h[i].name, "X-Mock-", 7) &&
			    name_index(r->h[i].name, knob_names, NKNOBS) < 0) {
				snprintf(
				    err, errcap, "mock: unknown steering header %s", r->h[i].name);
				return -1;
			}
	}
	for (i = 0; i < (int)(sizeof nums / sizeof nums[0]); i++) {
		v = knob(r, d, nd, nums[i].name);
		if (v &&
		    parse_num(v, nums[i].lo, nums[i].hi, (long *)((char *)st + nums[i].off)) < 0)
			goto bad;
	}
	v = knob(r, d, nd, "X-Mock-Dialect");
	if (v && (st->dialect = name_index(v, dialect_names, 5)) < 0)
		goto bad;
	v = knob(r, d, nd, "X-Mock-Chunking");
	if (v && (st->chunking = name_index(v, chunking_names, 4)) < 0)
		goto bad;
	v = knob(r, d, nd, "X-Mock-Framing");
	if (v && (st->framing = name_index(v, framing_names, 3)) < 0)
		goto bad;
	v = knob(r, d, nd, "X-Mock-Fail");
	if (v && (st->fail = name_index(v, fail_names, F_COUNT)) < 0)
		goto bad;
	v = knob(r, d, nd, "X-Mock-Finish-Reason");
	if (v) {
		if (!*v || strlen(v) >= sizeof st->finish || !plain_chars(v, "_-"))
			goto bad;
		snprintf(st->finish, sizeof st->finish, "%s", v);
	}
	v = knob(r, d, nd, "X-Mock-Health");
	if (v && parse_num(v, 100, 599, &st->health_status) < 0) {
		k = name_index(v, fail_names, F_COUNT);
		if (k != F_CLOSE_BEFORE_HEAD && k != F_RESET_BEFORE_HEAD && k != F_GARBAGE &&
		    k != F_STALL_HEAD)
			goto bad;
		st->health_fail = k;
	}
	v = knob(r, d, nd, "X-Mock-Models");
	if (v) {
		if (!*v || strlen(v) > 512 || !plain_chars(v, ",._-:/@+ "))
			goto bad;
		st->models = v;
	}
	return 0;
bad:
	for (i = 0; i < NKNOBS; i++)
		if (knob(r, d, nd, knob_names[i]) == v)
			break;
	snprintf(
	    err, errcap, "mock: bad value for %s: %.200s", i < NKNOBS ? knob_names[i] : "?", v);
	return -1;
}

/* ========================================================================== */
/* 7. Request context: accounting that the control endpoints report           */
/* ========================================================================== */

/* The client went away: remember when (first time only).  If the response
 * had already been accounted as done, it was not delivered: aborted. */
static void
x_gone(struct ctx *x)
{
	long long t;
	struct rec *rc;

	if (x->gone)
		return;
	x->gone = 1;
	t = now_ms();
	if (!x->finished || x->state == ST_DONE)
		x->detail = "client gone";
	if (x->finished && x->state == ST_DONE)
		x->state = ST_ABORTED;
	pthread_mutex_lock(&g_mu);
	rc = rec_at(x->seq);
	if (rc) {
		rc->gone_ms = t;
		if (rc->state == ST_DONE)
			rc->state = ST_ABORTED;
		if (x->detail)
			copy_trunc(rc->detail, sizeof rc->detail, x->detail);
	}
	pthread_mutex_unlock(&g_mu);
}

static void
x_tokens(struct ctx *x, long n)
{
	struct rec *rc;

	x->tokens_sent = n;
	pthread_mutex_lock(&g_mu);
	rc = rec_at(x->seq);
	if (rc)
		rc->tokens_sent = n;
	pthread_mutex_unlock(&g_mu);
}

/*
 * The request's outcome, once.  Called just BEFORE the last bytes are written,
 * so that a test which has read the whole response never sees "running" or a
 * non-zero "active" afterwards; a write failing after this turns "done" into
 * "aborted" (x_gone).
 */
static void
x_finish(struct ctx *x, int state, int status, const char *detail)
{
	struct rec *rc;

	if (x->finished)
		return;
	x->finished = 1;
	x->state = state;
	x->status = status;
	if (detail)
		x->detail = detail;
	pthread_mutex_lock(&g_mu);
	if (x->in_active)
		gs.active--;
	x->in_active = 0;
	rc = rec_at(x->seq);
	if (rc) {
		rc->state = state;
		rc->status = status;
		rc->tokens_sent = x->tokens_sent;
		rc->end_ms = now_ms();
		if (x->detail)
			copy_trunc(rc->detail, sizeof rc->detail, x->detail);
	}
	pthread_mutex_unlock(&g_mu);
}

static int
x_send(struct ctx *x, const void *p, size_t n)
{
	if (x->gone)
		return -1;
	if (conn_send(x->c, p, n) < 0) {
		x_gone(x);
		return -1;
	}
	return 0;
}

/* Wait ms (< 0: until the client goes away; 0: just check).  -1 = gone. */
static int
x_wait(struct ctx *x, long long ms)
{
	if (x->gone)
		return -1;
	if (conn_watch(x->c, ms) < 0) {
		x_gone(x);
		return -1;
	}
	return 0;
}

/* ========================================================================== */
/* 8. Response helpers                                                        */
/* ========================================================================== */

/* What the connection loop does after a response. */
enum next { N_CONTINUE = -1, N_KEEP, N_LINGER, N_DROP, N_RST };

static const struct {
	int code;
	const char *text;
} reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {204, "No Content"},
    {400, "Bad Request"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {413, "Content Too Large"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

static const char *
reason(int code)
{
	size_t i;

	for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].code == code)
			return reasons[i].text;
	return "Status";
}

static void
head_start(struct sb *b, int status)
{
	sb_printf(b, "HTTP/1.1 %d %s\r\n", status, reason(status));
}

/* vLLM (uvicorn) and TGI (hyper) send lower-case field names; OpenAI and
 * llama.cpp Title-Case.  The proxy must not care; we make sure it cannot. */
static void
hfield(struct sb *b, int lower, const char *name, const char *value)
{
	for (; *name; name++)
		sb_putc(b, lower && *name >= 'A' && *name <= 'Z' ? (char)(*name + 32) : *name);
	sb_puts(b, ": ");
	sb_puts(b, value);
	sb_puts(b, "\r\n");
}

static void
hfield_num(struct sb *b, int lower, const char *name, size_t v)
{
	char num[32];

	snprintf(num, sizeof num, "%zu", v);
	hfield(b, lower, name, num);
}

static void
conn_field(struct sb *b, int lower, const struct req *r, int will_close)
{
	if (will_close)
		hfield(b, lower, "Connection", "close");
	else if (r && r->minor == 0)
		hfield(b, lower, "Connection", "keep-alive");
}

static int
lower_style(int dialect)
{
	return dialect == D_VLLM || dialect == D_TGI;
}

static int
after(const struct req *r)
{
	return r->keep_alive ? N_KEEP : N_LINGER;
}

/* A complete Content-Length response.  Returns 0, or -1 if the client is gone. */
static int
send_plain(struct conn *c, const struct req *r, int status, int lower, const char *ctype,
    const char *extra, const char *body, size_t len, int will_close)
{
	struct sb b = {0};
	int rc;

	head_start(&b, status);
	if (ctype)
		hfield(&b, lower, "Content-Type", ctype);
	if (extra)
		sb_puts(&b, extra);
	hfield_num(&b, lower, "Content-Length", len);
	conn_field(&b, lower, r, will_close);
	sb_puts(&b, "\r\n");
	if (!(r && r->is_head))
		sb_put(&b, body, len);
	rc = conn_send(c, b.p, b.len);
	sb_free(&b);
	return rc;
}

static void
error_json(struct sb *b, const char *msg, const char *type, int code)
{
	sb_puts(b, "{\"error\":{\"message\":");
	sb_json_cstr(b, msg);
	sb_puts(b, ",\"type\":");
	sb_json_cstr(b, type);
	sb_printf(b, ",\"code\":%d}}", code);
}

/* An OpenAI-shaped error as this request's (failed) answer. */
static int
send_error(struct ctx *x, int status, const char *msg, const char *type, const char *detail)
{
	struct sb b = {0};
	int lower = lower_style(x->st.dialect);
	const char *extra = NULL;

	error_json(&b, msg, type, status);
	if (status == 429)
		extra = lower ? "retry-after: 1\r\n" : "Retry-After: 1\r\n";
	x_finish(x, ST_FAILED, status, detail);
	if (send_plain(x->c, x->r, status, lower, "application/json", extra, b.p, b.len,
	        !x->r->keep_alive) < 0)
		x_gone(x);
	sb_free(&b);
	return x->gone ? N_DROP : after(x->r);
}

/* The client went away while we waited or wrote. */
static int
x_abort(struct ctx *x)
{
	x_finish(x, ST_ABORTED, x->status, "client gone");
	return N_DROP;
}

/* Append one HTTP chunk (RFC 9112 §7.1); a zero-size one would end the body. */
static void
chunk_frame(struct sb *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	sb_printf(b, "%zx\r\n", n);
	sb_put(b, p, n);
	sb_puts(b, "\r\n");
}

/* Head delay, then the failures that happen before any response byte.
 * Returns N_CONTINUE when the request should be answered normally. */
static int
prehead(struct ctx *x, int fail)
{
	static const char garbage[] = "GARBAGE\x01\x02\x03 this is not an HTTP response\r\n\r\n";

	if (x->st.head_delay > 0 && x_wait(x, x->st.head_delay) < 0)
		return x_abort(x);
	switch (fail) {
	case F_500:
		return send_error(
		    x, 500, "mock: injected internal server error", "server_error", "fail 500");
	case F_503:
		return send_error(x, 503, "mock: injected service unavailable",
		    "service_unavailable", "fail 503");
	case F_429:
		return send_error(
		    x, 429, "mock: injected rate limit", "rate_limit_exceeded", "fail 429");
	case F_CLOSE_BEFORE_HEAD:
		x_finish(x, ST_FAILED, 0, "close-before-head");
		return N_DROP;
	case F_RESET_BEFORE_HEAD:
		x_finish(x, ST_FAILED, 0, "reset-before-head");
		return N_RST;
	case F_GARBAGE:
		x_finish(x, ST_FAILED, 0, "garbage");
		x_send(x, garbage, sizeof garbage - 1);
		return N_DROP;
	case F_STALL_HEAD:
		x_wait(x, -1);
		return x_abort(x);
	default:
		return N_CONTINUE;
	}
}

/*
 * A complete body (non-streamed completion, embeddings, models, echo), with
 * the framing and the after-head failures the steering asks for:
 * Content-Length (default), chunked in three chunks, or close-delimited.
 */
static int
send_body(struct ctx *x, const char *ctype, const char *body, size_t len)
{
	const struct req *r = x->r;
	int fr = x->st.framing, fail = x->st.fail, lower = lower_style(x->st.dialect);
	int will_close, rc;
	struct sb h = {0};

	if (fr == FR_CHUNKED && r->minor == 0)
		fr = FR_CLOSE; /* no chunked for an HTTP/1.0 client */
	will_close = fr == FR_CLOSE || !r->keep_alive;
	head_start(&h, 200);
	hfield(&h, lower, "Content-Type", ctype);
	if (fr == FR_AUTO)
		hfield_num(&h, lower, "Content-Length", len);
	else if (fr == FR_CHUNKED)
		hfield(&h, lower, "Transfer-Encoding", "chunked");
	conn_field(&h, lower, r, will_close);
	sb_puts(&h, "\r\n");
	x->status = 200;

	switch (fail) {
	case F_CLOSE_AFTER_HEAD:
		x_finish(x, ST_FAILED, 200, "close-after-head");
		x_send(x, h.p, h.len);
		rc = N_DROP;
		break;
	case F_STALL_FIRST:
		if (x_send(x, h.p, h.len) == 0)
			x_wait(x, -1);
		rc = x_abort(x);
		break;
	case F_CLOSE_MID:
	case F_RESET_MID:
	case F_STALL_MID:
		if (fr == FR_CHUNKED)
			chunk_frame(&h, body, len / 2);
		else
			sb_put(&h, body, len / 2);
		if (fail == F_STALL_MID) {
			if (x_send(x, h.p, h.len) == 0)
				x_wait(x, -1);
			rc = x_abort(x);
		} else {
			x_finish(x, ST_FAILED, 200, fail_names[fail]);
			x_send(x, h.p, h.len);
			rc = fail == F_RESET_MID ? N_RST : N_DROP;
		}
		break;
	default:
		if (fr != FR_CHUNKED || r->is_head) {
			if (!r->is_head)
				sb_put(&h, body, len);
			x_finish(x, ST_DONE, 200, NULL);
			x_send(x, h.p, h.len);
		} else {
			/* three chunks, a short pause between them so that they arrive in
             * separate reads: the proxy's de-chunker must cope */
			size_t a = len / 3, b = 2 * len / 3;
			chunk_frame(&h, body, a);
			if (x_send(x, h.p, h.len) == 0 && x_wait(x, PAUSE_MS) == 0) {
				sb_reset(&h);
				chunk_frame(&h, body + a, b - a);
				if (x_send(x, h.p, h.len) == 0 && x_wait(x, PAUSE_MS) == 0) {
					sb_reset(&h);
					chunk_frame(&h, body + b, len - b);
					sb_puts(&h, "0\r\n\r\n");
					x_finish(x, ST_DONE, 200, NULL);
					x_send(x, h.p, h.len);
				}
			}
			if (x->gone)
				x_abort(x);
		}
		rc = x->gone ? N_DROP : will_close ? N_LINGER : N_KEEP;
		break;
	}
	sb_free(&h);
	return rc;
}

/* ========================================================================== */
/* 9. SSE generation, one dialect per backend (see ../shared/fixtures/sse/)    */
/* ========================================================================== */

/*
 * Event order per stream (role chunk only for chat):
 *   vllm      : role{"role":"assistant","content":""} · tokens (the last one carries
 *               finish_reason and "stop_reason":null) · [usage chunk, choices:[]] · [DONE]
 *               continuous_usage_stats (with include_usage): cumulative usage on every chunk
 *   openai    : role · tokens · finish {delta:{}} · [usage chunk]; with include_usage
 *               every other chunk has "usage":null
 *   tgi       : `data:` without space, "id":"", every chunk has the role in its delta and
 *               "usage":null, the last token carries finish_reason · [usage chunk] · data:[DONE]
 *   llamacpp  : choices first; tokens · finish {delta:{}} · [usage chunk with "timings"]
 *   llamacpp-old: tokens · finish chunk WITH usage and timings (always: old servers did not
 *               know stream_options) · [DONE]; CRLF line ends
 * [x] = only when the body asks for "include_usage": true.
 * With 0 tokens, the dialects that put finish_reason on the last token send a
 * finish chunk with empty content instead.
 */
enum ev { EV_ROLE, EV_TOKEN, EV_FINISH, EV_USAGE, EV_DONE };

struct gen {
	int dialect, chat, include_usage, continuous, no_usage;
	long n, prompt, pad, first_delay, delay, timestamps;
	const char *finish, *model, *data, *eol;
	char id[96];
};

static int
is_llama(const struct gen *g)
{
	return g->dialect == D_LLAMACPP || g->dialect == D_LLAMACPP_OLD;
}

/* finish_reason travels on the last token chunk (vLLM, TGI) */
static int
finish_on_token(const struct gen *g)
{
	return g->dialect == D_VLLM || g->dialect == D_TGI;
}

static int
has_role_chunk(const struct gen *g)
{
	return g->chat && (g->dialect == D_VLLM || g->dialect == D_OPENAI);
}

static long
prompt_tokens(const struct req *r)
{
	/* Not counting "stream_options": a proxy that adds it must not change
	 * what the prompt costs, or the stream it relays would differ. */
	size_t len = r->body_len;
	const char *so = r->body ? memmem(r->body, r->body_len, "\"stream_options\"", 16) : NULL;
	if (so != NULL) {
		const char *end = memchr(so, '}', r->body_len - (size_t)(so - r->body));
		if (end != NULL)
			len -= (size_t)(end + 1 - so) + (so > r->body && so[-1] == ',');
	}
	long p = (long)(len / 4);
	return p < 1 ? 1 : p;
}

static void
gen_init(struct gen *g, struct ctx *x, int chat)
{
	const struct req *r = x->r;

	memset(g, 0, sizeof *g);
	g->dialect = x->st.dialect;
	g->chat = chat;
	/* A backend that reports no usage at all ignores what it is asked. */
	g->no_usage = x->st.no_usage;
	g->include_usage = !g->no_usage && json_true(r->body, r->body_len, "include_usage");
	/* vLLM sends continuous usage only together with include_usage */
	g->continuous = g->dialect == D_VLLM && g->include_usage &&
	    json_true(r->body, r->body_len, "continuous_usage_stats");
	g->n = x->st.tokens;
	g->prompt = prompt_tokens(r);
	g->pad = x->st.pad;
	g->timestamps = x->st.timestamps;
	g->first_delay = x->st.first_delay;
	g->delay = x->st.delay;
	g->finish = x->st.finish;
	json_model(r->body, r->body_len, x->model, sizeof x->model);
	g->model = x->model;
	g->data = g->dialect == D_TGI ? "data:" : "data: ";
	g->eol = g->dialect == D_LLAMACPP_OLD ? "\r\n" : "\n";
	/* The id follows the request's X-Request-Id when there is one, so that the
     * same request sent directly and through the proxy gives the same bytes. */
	const char *rid = req_hdr(r, "X-Request-Id");
	if (g->dialect != D_TGI && rid && *rid && strlen(rid) <= 64 && !strpbrk(rid, "\"\\"))
		snprintf(g->id, sizeof g->id, "%s-%s", chat ? "chatcmpl" : "cmpl", rid);
	else if (g->dialect != D_TGI)
		snprintf(g->id, sizeof g->id, "%s-mock-%lu", chat ? "chatcmpl" : "cmpl", x->no);
}

static void
usage_obj(struct sb *b, int dialect, long p, long c)
{
	if (dialect == D_VLLM)
		sb_printf(b,
		    "{\"prompt_tokens\":%ld,\"total_tokens\":%ld,\"completion_tokens\":%ld}", p,
		    p + c, c);
	else if (dialect == D_LLAMACPP || dialect == D_LLAMACPP_OLD)
		sb_printf(b,
		    "{\"completion_tokens\":%ld,\"prompt_tokens\":%ld,\"total_tokens\":%ld}", c, p,
		    p + c);
	else
		sb_printf(b,
		    "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld}", p, c,
		    p + c);
}

/* Deterministic llama.cpp timings, derived from the configured delays. */
static void
timings_obj(struct sb *b, const struct gen *g, long c)
{
	double pms = g->first_delay > 0 ? (double)g->first_delay : 1.0;
	double dms = g->delay * c > 0 ? (double)(g->delay * c) : 1.0;

	sb_printf(b,
	    "{\"prompt_n\":%ld,\"prompt_ms\":%.3f,\"prompt_per_token_ms\":%.3f,"
	    "\"prompt_per_second\":%.3f,\"predicted_n\":%ld,\"predicted_ms\":%.3f,"
	    "\"predicted_per_token_ms\":%.3f,\"predicted_per_second\":%.3f}",
	    g->prompt, pms, pms / (double)g->prompt, (double)g->prompt * 1000.0 / pms, c, dms,
	    c ? dms / (double)c : 0.0, c ? (double)c * 1000.0 / dms : 0.0);
}

static void
gen_choice(struct sb *b, const struct gen *g, enum ev kind, long tok, int fin)
{
	char text[32] = "", fr[40], delta[96];

	if (kind == EV_TOKEN)
		snprintf(text, sizeof text, " tok%ld", tok);
	if (fin)
		snprintf(fr, sizeof fr, "\"%s\"", g->finish);
	else
		snprintf(fr, sizeof fr, "null");

	if (!g->chat) {
		switch (g->dialect) {
		case D_VLLM:
			sb_printf(b,
			    "{\"index\":0,\"text\":\"%s\",\"logprobs\":null,\"finish_reason\":%s,"
			    "\"stop_reason\":null}",
			    text, fr);
			break;
		case D_TGI:
			sb_printf(b,
			    "{\"index\":0,\"text\":\"%s\",\"logprobs\":null,\"finish_reason\":%s}",
			    text, fr);
			break;
		default:
			sb_printf(b,
			    "{\"text\":\"%s\",\"index\":0,\"logprobs\":null,\"finish_reason\":%s}",
			    text, fr);
			break;
		}
		return;
	}
	if (kind == EV_ROLE)
		snprintf(delta, sizeof delta, "{\"role\":\"assistant\",\"content\":\"\"}");
	else if (g->dialect == D_TGI)
		snprintf(delta, sizeof delta, "{\"role\":\"assistant\",\"content\":\"%s\"}", text);
	else if (kind == EV_TOKEN || g->dialect == D_VLLM)
		snprintf(delta, sizeof delta, "{\"content\":\"%s\"}", text);
	else
		snprintf(delta, sizeof delta, "{}");

	switch (g->dialect) {
	case D_VLLM:
		sb_printf(b, "{\"index\":0,\"delta\":%s,\"logprobs\":null,\"finish_reason\":%s%s}",
		    delta, fr, fin ? ",\"stop_reason\":null" : "");
		break;
	case D_OPENAI:
	case D_TGI:
		sb_printf(b, "{\"index\":0,\"delta\":%s,\"logprobs\":null,\"finish_reason\":%s}",
		    delta, fr);
		break;
	default:
		sb_printf(b, "{\"finish_reason\":%s,\"index\":0,\"delta\":%s}", fr, delta);
		break;
	}
}

/* One complete SSE event into b (replacing its content).  tok: 1-based token
 * number for EV_TOKEN; cum: completion tokens so far (for usage). */
static void
gen_event(struct sb *b, const struct gen *g, enum ev kind, long tok, long cum)
{
	const char *obj = g->chat ? "chat.completion.chunk" : "text_completion";
	int fin = kind == EV_FINISH || (kind == EV_TOKEN && finish_on_token(g) && tok == g->n);

	sb_reset(b);
	sb_puts(b, g->data);
	if (kind == EV_DONE) {
		sb_puts(b, "[DONE]");
	} else {
		sb_putc(b, '{');
		if (!is_llama(g)) {
			sb_printf(b,
			    "\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":\"%s\",",
			    g->id, obj, CREATED, g->model);
			if (g->dialect == D_OPENAI)
				sb_puts(b, "\"system_fingerprint\":null,");
			else if (g->dialect == D_TGI)
				sb_puts(b, "\"system_fingerprint\":\"3.0.1-native\",");
		}
		sb_puts(b, "\"choices\":[");
		if (kind != EV_USAGE)
			gen_choice(b, g, kind, tok, fin);
		sb_putc(b, ']');
		if (is_llama(g)) {
			sb_printf(b, ",\"created\":%ld,\"id\":\"%s\",\"model\":\"%s\",", CREATED,
			    g->id, g->model);
			if (g->dialect == D_LLAMACPP)
				sb_puts(b, "\"system_fingerprint\":\"b6290-mock\",");
			sb_printf(b, "\"object\":\"%s\"", obj);
		}
		if (kind == EV_USAGE) {
			sb_puts(b, ",\"usage\":");
			usage_obj(b, g->dialect, g->prompt, cum);
			if (g->dialect == D_LLAMACPP) {
				sb_puts(b, ",\"timings\":");
				timings_obj(b, g, cum);
			}
		} else if (g->dialect == D_LLAMACPP_OLD && fin && !g->no_usage) {
			sb_puts(b, ",\"usage\":");
			usage_obj(b, g->dialect, g->prompt, cum);
			sb_printf(b, ",\"timings\":{\"prompt_n\":%ld,\"predicted_n\":%ld}",
			    g->prompt, cum);
		} else if (g->continuous) {
			sb_puts(b, ",\"usage\":");
			usage_obj(b, g->dialect, g->prompt, cum);
		} else if ((g->dialect == D_TGI && g->chat) ||
		    (g->dialect == D_OPENAI && g->include_usage)) {
			sb_puts(b, ",\"usage\":null");
		}
		/* When it was written, on the system-wide monotonic clock: a test
         * subtracts this from the arrival time to get the delay in transit. */
		if (kind == EV_TOKEN && g->timestamps)
			sb_printf(b, ",\"t_us\":%lld", now_us());
		if (kind == EV_TOKEN && g->pad > 0) {
			sb_puts(b, ",\"pad\":\"");
			sb_fill(b, 'x', (size_t)g->pad);
			sb_putc(b, '"');
		}
		sb_putc(b, '}');
	}
	sb_puts(b, g->eol);
	sb_puts(b, g->eol);
}

static void
stream_head(struct sb *b, const struct gen *g, int chunked)
{
	int lower = lower_style(g->dialect);

	head_start(b, 200);
	switch (g->dialect) {
	case D_VLLM:
		hfield(b, 1, "server", "uvicorn");
		hfield(b, 1, "content-type", "text/event-stream; charset=utf-8");
		break;
	case D_OPENAI:
		hfield(b, 0, "Content-Type", "text/event-stream; charset=utf-8");
		hfield(b, 0, "Cache-Control", "no-cache, must-revalidate");
		break;
	case D_TGI:
		hfield(b, 1, "content-type", "text/event-stream");
		hfield(b, 1, "cache-control", "no-cache");
		hfield(b, 1, "x-compute-type", "gpu+optimized");
		hfield(b, 1, "access-control-allow-origin", "*");
		break;
	default:
		hfield(b, 0, "Server", "llama.cpp");
		hfield(b, 0, "Access-Control-Allow-Origin", "");
		hfield(b, 0, "Content-Type", "text/event-stream");
		if (chunked)
			hfield(b, 0, "Keep-Alive", "timeout=5, max=100");
		break;
	}
	if (chunked)
		hfield(b, lower, "Transfer-Encoding", "chunked");
	else
		hfield(b, lower, "Connection", "close");
	sb_puts(b, "\r\n");
}

/* ========================================================================== */
/* 10. Stream output: how event bytes are cut into chunks / writes            */
/* ========================================================================== */

struct out {
	struct ctx *x;
	int chunked, mode;
	struct sb wb; /* one framed write */
	struct sb co; /* coalesce: events not yet written */
};

/* One write: one HTTP chunk when chunked, the raw bytes otherwise. */
static int
out_write(struct out *o, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (!o->chunked)
		return x_send(o->x, p, n);
	sb_reset(&o->wb);
	chunk_frame(&o->wb, p, n);
	return x_send(o->x, o->wb.p, o->wb.len);
}

static int
out_flush(struct out *o)
{
	int rc = out_write(o, o->co.p, o->co.len);
	sb_reset(&o->co);
	return rc;
}

static int
out_event(struct out *o, const struct sb *ev)
{
	size_t i, h;

	/* a zero-time look at the client before each event: with no delays a
     * vanished client would otherwise only be seen when a write fails */
	if (!g_fast && x_wait(o->x, 0) < 0)
		return -1;
	switch (o->mode) {
	case CH_SPLIT:
		h = ev->len / 2;
		if (out_write(o, ev->p, h) < 0 || x_wait(o->x, PAUSE_MS) < 0)
			return -1;
		return out_write(o, ev->p + h, ev->len - h);
	case CH_COALESCE:
		sb_put(&o->co, ev->p, ev->len);
		return o->co.len >= COALESCE_FLUSH ? out_flush(o) : 0;
	case CH_BYTE:
		for (i = 0; i < ev->len; i++)
			if (out_write(o, ev->p + i, 1) < 0)
				return -1;
		return 0;
	default:
		return out_write(o, ev->p, ev->len);
	}
}

/* End of a complete stream: what is coalesced and the last chunk go out in
 * one write. */
static int
out_end(struct out *o)
{
	if (!o->chunked)
		return out_flush(o);
	sb_reset(&o->wb);
	chunk_frame(&o->wb, o->co.p, o->co.len);
	sb_reset(&o->co);
	sb_puts(&o->wb, "0\r\n\r\n");
	return x_send(o->x, o->wb.p, o->wb.len);
}

static void
out_free(struct out *o)
{
	sb_free(&o->wb);
	sb_free(&o->co);
}

/* ========================================================================== */
/* 11. Endpoints                                                              */
/* ========================================================================== */

static int
is_mid_fail(int f)
{
	return f == F_CLOSE_MID || f == F_RESET_MID || f == F_STALL_MID;
}

/* Where a *-mid failure strikes: after k tokens (k <= n). */
static long
fail_point(const struct steer *st)
{
	long k = st->fail_after < 0 ? st->tokens / 2 : st->fail_after;
	return k > st->tokens ? st->tokens : k;
}

/* A mid-stream failure: what was generated so far goes out, then the end. */
static int
stream_fail(struct ctx *x, struct out *o)
{
	int fail = x->st.fail;

	if (out_flush(o) < 0)
		return x_abort(x);
	if (fail == F_STALL_MID) {
		x_wait(x, -1);
		return x_abort(x);
	}
	/* close-mid: FIN without the last chunk; reset-mid: RST */
	x_finish(x, ST_FAILED, 200, fail_names[fail]);
	return fail == F_RESET_MID ? N_RST : N_DROP;
}

/* POST /v1/chat/completions or /v1/completions with "stream": true. */
static int
do_stream(struct ctx *x, int chat)
{
	struct gen g;
	struct out o = {0};
	struct sb h = {0}, ev = {0};
	int chunked = x->st.framing != FR_CLOSE && x->r->minor == 1;
	int mid = is_mid_fail(x->st.fail), rc;
	long k = fail_point(&x->st), i;

	gen_init(&g, x, chat);
	o.x = x;
	o.chunked = chunked;
	o.mode = x->st.chunking;
	x->status = 200;
	stream_head(&h, &g, chunked);

	if (x->st.fail == F_CLOSE_AFTER_HEAD) {
		x_finish(x, ST_FAILED, 200, "close-after-head");
		x_send(x, h.p, h.len);
		rc = N_DROP;
		goto out;
	}
	if (x_send(x, h.p, h.len) < 0)
		goto gone;
	if (x->st.fail == F_STALL_FIRST) {
		x_wait(x, -1);
		goto gone;
	}
	if (x_wait(x, g.first_delay) < 0)
		goto gone;
	for (i = 0;; i++) {
		if (mid && i == k) {
			rc = stream_fail(x, &o);
			goto out;
		}
		if (i == g.n)
			break;
		if (i > 0 && x_wait(x, g.delay) < 0)
			goto gone;
		if (i == 0 && has_role_chunk(&g)) {
			gen_event(&ev, &g, EV_ROLE, 0, 0);
			if (out_event(&o, &ev) < 0)
				goto gone;
		}
		gen_event(&ev, &g, EV_TOKEN, i + 1, i + 1);
		if (out_event(&o, &ev) < 0)
			goto gone;
		x_tokens(x, i + 1);
	}
	if (g.n == 0 && has_role_chunk(&g)) {
		gen_event(&ev, &g, EV_ROLE, 0, 0);
		if (out_event(&o, &ev) < 0)
			goto gone;
	}
	if (!finish_on_token(&g) || g.n == 0) {
		gen_event(&ev, &g, EV_FINISH, 0, g.n);
		if (out_event(&o, &ev) < 0)
			goto gone;
	}
	if (g.include_usage && g.dialect != D_LLAMACPP_OLD) {
		gen_event(&ev, &g, EV_USAGE, 0, g.n);
		if (out_event(&o, &ev) < 0)
			goto gone;
	}
	x_finish(x, ST_DONE, 200, NULL);
	gen_event(&ev, &g, EV_DONE, 0, 0);
	if (out_event(&o, &ev) < 0 || out_end(&o) < 0)
		goto gone;
	rc = !chunked ? N_LINGER : after(x->r);
	goto out;
gone:
	rc = x_abort(x);
out:
	sb_free(&h);
	sb_free(&ev);
	out_free(&o);
	return rc;
}

/* Non-streamed completion: generation time passes first, then one JSON. */
static int
do_complete(struct ctx *x, int chat)
{
	struct gen g;
	struct sb b = {0}, text = {0};
	long n, i, gen_n;
	long long wait;
	int rc;

	gen_init(&g, x, chat);
	n = g.n;
	gen_n = is_mid_fail(x->st.fail)                                       ? fail_point(&x->st)
	    : x->st.fail == F_STALL_FIRST || x->st.fail == F_CLOSE_AFTER_HEAD ? 0
	                                                                      : n;
	wait = g.first_delay + (gen_n > 1 ? (long long)(gen_n - 1) * g.delay : 0);
	if (x_wait(x, wait) < 0)
		return x_abort(x);
	for (i = 1; i <= n; i++)
		sb_printf(&text, " tok%ld", i);
	sb_printf(&b,
	    "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":\"%s\",\"choices\":[", g.id,
	    chat ? "chat.completion" : "text_completion", CREATED, g.model);
	if (chat)
		sb_printf(&b,
		    "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},"
		    "\"logprobs\":null,\"finish_reason\":\"%s\"}",
		    text.len ? text.p : "", g.finish);
	else
		sb_printf(&b,
		    "{\"index\":0,\"text\":\"%s\",\"logprobs\":null,\"finish_reason\":\"%s\"}",
		    text.len ? text.p : "", g.finish);
	sb_putc(&b, ']');
	if (!g.no_usage) {
		sb_puts(&b, ",\"usage\":");
		usage_obj(&b, g.dialect, g.prompt, n);
	}
	sb_putc(&b, '}');
	x_tokens(x, gen_n);
	rc = send_body(x, "application/json", b.p, b.len);
	sb_free(&b);
	sb_free(&text);
	return rc;
}

static int
do_embeddings(struct ctx *x)
{
	struct sb b = {0};
	long p = prompt_tokens(x->r);
	int rc;

	json_model(x->r->body, x->r->body_len, x->model, sizeof x->model);
	if (x_wait(x, x->st.first_delay) < 0)
		return x_abort(x);
	sb_printf(&b,
	    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
	    "\"embedding\":[0.125,0.25,0.375,0.5,0.625,0.75,0.875,1.0]}],\"model\":\"%s\"",
	    x->model);
	if (!x->st.no_usage)
		sb_printf(&b, ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}", p, p);
	sb_putc(&b, '}');
	rc = send_body(x, "application/json", b.p, b.len);
	sb_free(&b);
	return rc;
}

static int
do_models(struct ctx *x)
{
	struct sb b = {0};
	const char *m = x->st.models;
	int rc, first = 1;

	sb_puts(&b, "{\"object\":\"list\",\"data\":[");
	while (*m) {
		size_t n = strcspn(m, ",");
		const char *s = m;
		m += n;
		if (*m)
			m++;
		while (n && *s == ' ')
			s++, n--;
		while (n && s[n - 1] == ' ')
			n--;
		if (!n)
			continue;
		if (!first)
			sb_putc(&b, ',');
		first = 0;
		sb_puts(&b, "{\"id\":");
		sb_json_str(&b, s, n);
		sb_printf(
		    &b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"mock\"}", CREATED);
	}
	sb_puts(&b, "]}");
	rc = send_body(x, "application/json", b.p, b.len);
	sb_free(&b);
	return rc;
}

/* Any other /v1/ path: what exactly arrived. */
static int
do_echo(struct ctx *x)
{
	const struct req *r = x->r;
	struct sb b = {0};
	int i, rc;

	sb_puts(&b, "{\"method\":");
	sb_json_cstr(&b, r->method);
	sb_puts(&b, ",\"target\":");
	sb_json_cstr(&b, r->target);
	sb_puts(&b, ",\"headers\":[");
	for (i = 0; i < r->nh; i++) {
		sb_puts(&b, i ? ",[" : "[");
		sb_json_cstr(&b, r->h[i].name);
		sb_putc(&b, ',');
		sb_json_cstr(&b, r->h[i].value);
		sb_putc(&b, ']');
	}
	sb_puts(&b, "],\"body\":");
	sb_json_str(&b, r->body, r->body_len);
	sb_printf(&b, ",\"body_len\":%zu}", r->body_len);
	rc = send_body(x, "application/json", b.p, b.len);
	sb_free(&b);
	return rc;
}

/* GET /health: 200 with an empty body, as vLLM; X-Mock-Health changes it. */
static int
do_health(struct ctx *x)
{
	int rc = prehead(x, x->st.health_fail), status = (int)x->st.health_status;

	if (rc != N_CONTINUE)
		return rc;
	x_finish(x, status < 400 ? ST_DONE : ST_FAILED, status, NULL);
	if (send_plain(x->c, x->r, status, 1, NULL, NULL, "", 0, !x->r->keep_alive) < 0) {
		x_gone(x);
		return N_DROP;
	}
	return after(x->r);
}

static int
path_is(const struct req *r, const char *p)
{
	size_t n = strlen(p);
	return r->path_len == n && !memcmp(r->target, p, n);
}

static int
path_under(const struct req *r, const char *p)
{
	size_t n = strlen(p);
	return r->path_len >= n && !memcmp(r->target, p, n);
}

static int
do_traffic(struct ctx *x)
{
	const struct req *r = x->r;
	int rc = prehead(x, x->st.fail), chat;
	const char *m = r->method;

	if (rc != N_CONTINUE)
		return rc;
	if ((chat = path_is(r, "/v1/chat/completions")) || path_is(r, "/v1/completions")) {
		if (strcmp(m, "POST"))
			return send_error(x, 405, "mock: use POST", "invalid_request_error", "405");
		return json_true(r->body, r->body_len, "stream") ? do_stream(x, chat)
		                                                 : do_complete(x, chat);
	}
	if (path_is(r, "/v1/embeddings")) {
		if (strcmp(m, "POST"))
			return send_error(x, 405, "mock: use POST", "invalid_request_error", "405");
		return do_embeddings(x);
	}
	if (path_is(r, "/v1/models")) {
		if (strcmp(m, "GET") && strcmp(m, "HEAD"))
			return send_error(x, 405, "mock: use GET", "invalid_request_error", "405");
		return do_models(x);
	}
	if (path_under(r, "/v1/"))
		return do_echo(x);
	return send_error(x, 404, "mock: no such path", "not_found_error", "404");
}

/* ========================================================================== */
/* 12. Control endpoints (tests talk to the mock directly, never via proxy)  */
/* ========================================================================== */
/*
 *  GET  /mock/stats    {"connections":N,"requests":M,"active":K,"accepted":A,"health_requests":H}
 *       connections: connections that carried at least one traffic request (not
 *       /mock/..., not /health) since the last reset; accepted: all accepted.
 *  GET  /mock/now      {"now_ms":T}   CLOCK_MONOTONIC, ms
 *  GET  /mock/request?id=ID   the latest record whose X-Request-Id was ID, or 404 {}:
 *       {"id","state":"running|done|aborted|failed","tokens_sent","client_gone_ms"
 *        (0 = not gone),"method","target","status","detail","authorization",
 *        "x_api_key" (those request headers as received, "" when absent),
 *        "start_ms","end_ms","matches" (records with that id)}
 *  GET  /mock/last     the latest record (any id), or 404 {}
 *  POST /mock/reset    counters, records and defaults cleared -> {"ok":true}
 *  POST /mock/defaults?X-Mock-Fail=503&X-Mock-Tokens=3   replaces the defaults
 *       (steering for requests without the header), POST with no query clears;
 *       GET shows them: {"X-Mock-Fail":"503",...}
 */

static void
defaults_json(struct sb *b, const struct defv *d, int n)
{
	int i;

	sb_putc(b, '{');
	for (i = 0; i < n; i++) {
		if (i)
			sb_putc(b, ',');
		sb_json_cstr(b, d[i].name);
		sb_putc(b, ':');
		sb_json_cstr(b, d[i].value);
	}
	sb_putc(b, '}');
}

/* Parse "Name=value&..." into d; returns the count, or -1 with err set. */
static int
defaults_parse(const char *q, struct defv *d, char *err, size_t errcap)
{
	int n = 0, k;

	while (*q) {
		const char *amp = strchr(q, '&'), *eq;
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		char name[64];

		eq = memchr(q, '=', len);
		if (len == 0)
			goto next;
		if (!eq || pct_decode(q, (size_t)(eq - q), name, sizeof name) < 0 ||
		    (k = name_index(name, knob_names, NKNOBS)) < 0) {
			snprintf(
			    err, errcap, "mock: bad default %.*s", (int)(len > 64 ? 64 : len), q);
			return -1;
		}
		if (n == DEFAULTS_MAX) {
			snprintf(err, errcap, "mock: too many defaults");
			return -1;
		}
		snprintf(d[n].name, sizeof d[n].name, "%s", knob_names[k]);
		if (pct_decode(eq + 1, len - (size_t)(eq + 1 - q), d[n].value, sizeof d[n].value) <
		    0) {
			snprintf(err, errcap, "mock: bad value for %s", d[n].name);
			return -1;
		}
		n++;
	next:
		q += len;
		if (*q == '&')
			q++;
	}
	return n;
}

static int
do_control(struct conn *c)
{
	const struct req *r = &c->req;
	struct sb b = {0};
	int status = 200, get = !strcmp(r->method, "GET") || r->is_head;
	int post = !strcmp(r->method, "POST");
	char err[200];

	if (path_is(r, "/mock/stats") && get) {
		pthread_mutex_lock(&g_mu);
		sb_printf(&b,
		    "{\"connections\":%lu,\"requests\":%lu,\"active\":%ld,\"accepted\":%lu,"
		    "\"health_requests\":%lu}",
		    gs.connections, gs.requests, gs.active, gs.accepted, gs.health);
		pthread_mutex_unlock(&g_mu);
	} else if (path_is(r, "/mock/now") && get) {
		sb_printf(&b, "{\"now_ms\":%lld}", now_ms());
	} else if ((path_is(r, "/mock/request") || path_is(r, "/mock/last")) && get) {
		char id[ID_MAX * 3 + 1] = "";
		const struct rec *best = NULL;
		struct rec copy;
		int i, matches = 0, last = path_is(r, "/mock/last");

		if (!last && query_param(r->query, "id", id, sizeof id) != 1)
			id[0] = '\0';
		id[ID_MAX - 1] = '\0'; /* ids are kept truncated like this */
		pthread_mutex_lock(&g_mu);
		for (i = 0; i < RING_N; i++) {
			const struct rec *rc = &g_ring[i];
			if (!rc->seq || (!last && (!id[0] || strcmp(rc->id, id))))
				continue;
			matches++;
			if (!best || rc->seq > best->seq)
				best = rc;
		}
		if (best)
			copy = *best;
		pthread_mutex_unlock(&g_mu);
		if (best)
			rec_json(&b, &copy, matches);
		else {
			status = 404;
			sb_puts(&b, "{}");
		}
	} else if (path_is(r, "/mock/reset") && post) {
		pthread_mutex_lock(&g_mu);
		gs.accepted = gs.connections = gs.requests = gs.health = 0;
		gs.reset_gen++;
		memset(g_ring, 0, sizeof g_ring);
		g_ndefs = 0;
		pthread_mutex_unlock(&g_mu);
		sb_puts(&b, "{\"ok\":true}");
	} else if (path_is(r, "/mock/defaults") && (get || post)) {
		if (post) {
			struct defv nd[DEFAULTS_MAX];
			struct steer tmp;
			int n = defaults_parse(r->query, nd, err, sizeof err);
			if (n >= 0 && steer_parse(NULL, nd, n, &tmp, err, sizeof err) == 0) {
				pthread_mutex_lock(&g_mu);
				memcpy(g_defs, nd, sizeof nd[0] * (size_t)n);
				g_ndefs = n;
				pthread_mutex_unlock(&g_mu);
			} else {
				status = 400;
				error_json(&b, err, "invalid_request_error", 400);
			}
		}
		if (status == 200) {
			pthread_mutex_lock(&g_mu);
			defaults_json(&b, g_defs, g_ndefs);
			pthread_mutex_unlock(&g_mu);
		}
	} else if (path_is(r, "/mock/stats") || path_is(r, "/mock/now") ||
	    path_is(r, "/mock/request") || path_is(r, "/mock/last") || path_is(r, "/mock/reset") ||
	    path_is(r, "/mock/defaults")) {
		status = 405;
		sb_puts(&b, "{}");
	} else {
		status = 404;
		sb_puts(&b, "{}");
	}
	logline("conn=%lu %s %.200s -> control %d", c->id, r->method, r->target, status);
	if (send_plain(c, r, status, 0, "application/json", NULL, b.p, b.len, !r->keep_alive) < 0) {
		sb_free(&b);
		return N_DROP;
	}
	sb_free(&b);
	return after(r);
}

/* ========================================================================== */
/* 13. Dispatch and the connection thread                                     */
/* ========================================================================== */

static int
handle(struct conn *c)
{
	const struct req *r = &c->req;
	struct ctx *x = &c->ctx;
	const char *rid;
	char err[300];
	int rc, health;

	c->idle_next = -1;
	if (path_is(r, "/mock") || path_under(r, "/mock/"))
		return do_control(c);

	memset(x, 0, sizeof *x);
	x->c = c;
	x->r = r;
	x->t0 = now_ms();
	x->state = ST_RUNNING;
	health = path_is(r, "/health");
	rid = req_hdr(r, "X-Request-Id");
	if (!rid)
		rid = "";

	pthread_mutex_lock(&g_mu);
	x->no = ++gs.next_req;
	memcpy(x->defs, g_defs, sizeof g_defs[0] * (size_t)g_ndefs);
	x->ndefs = g_ndefs;
	if (health) {
		gs.health++;
	} else {
		gs.requests++;
		gs.active++;
		x->in_active = 1;
		if (c->counted_gen != gs.reset_gen) {
			c->counted_gen = gs.reset_gen;
			gs.connections++;
		}
		x->seq = rec_open(rid, r->method, r->target, x->t0);
		struct rec *nr = rec_at(x->seq);
		const char *a = req_hdr(r, "Authorization"), *k = req_hdr(r, "X-API-Key");
		copy_trunc(nr->authorization, sizeof nr->authorization, a ? a : "");
		copy_trunc(nr->x_api_key, sizeof nr->x_api_key, k ? k : "");
	}
	pthread_mutex_unlock(&g_mu);

	if (steer_parse(r, x->defs, x->ndefs, &x->st, err, sizeof err) < 0)
		rc = send_error(x, 400, err, "invalid_request_error", "bad steering");
	else if (health)
		rc = do_health(x);
	else
		rc = do_traffic(x);
	/* a path that forgot to account: it ended normally or the client left */
	x_finish(x, x->gone ? ST_ABORTED : ST_DONE, x->status, NULL);
	c->idle_next = x->st.idle_close;

	if (!g_fast)
		logline("#%lu conn=%lu %s %.200s id=%.64s -> %s%s%s status=%d tokens=%ld %lldms", x->no,
	    c->id, r->method, r->target, rid[0] ? rid : "-", state_names[x->state],
	    x->detail ? ": " : "", x->detail ? x->detail : "", x->status, x->tokens_sent,
	    now_ms() - x->t0);
	return rc;
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	int how = N_DROP;
	long idle = -1;

	for (;;) {
		int rc = read_request(c, idle);
		if (rc == 0) { /* EOF, idle timeout, I/O error */
			how = N_DROP;
			break;
		}
		if (rc > 1) { /* a request we refuse */
			struct sb b = {0};
			error_json(&b, "mock: malformed request", "invalid_request_error", rc);
			logline("conn=%lu malformed request -> %d", c->id, rc);
			send_plain(c, NULL, rc, 0, "application/json", NULL, b.p, b.len, 1);
			sb_free(&b);
			how = N_LINGER;
			break;
		}
		how = handle(c);
		if (how != N_KEEP)
			break;
		idle = c->idle_next;
		if (c->body_cap > 1024 * 1024) { /* do not keep a huge body buffer around */
			free(c->body);
			c->body = NULL;
			c->body_cap = 0;
		}
	}
	if (how == N_RST)
		close_rst(c);
	else if (how == N_LINGER)
		close_linger(c);
	else
		close_fin(c);
	free(c->body);
	free(c);
	return NULL;
}

/* ========================================================================== */
/* 14. main: arguments, listening socket, accept loop, signals                */
/* ========================================================================== */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mock_upstream [--listen 127.0.0.1:PORT] [--fast]   (default 127.0.0.1:0)\n"
	    "A mock LLM backend for llmproxy's tests; see the comment at the top of\n"
	    "tests/mock_upstream.c for the X-Mock-* steering headers and /mock/*.\n");
}

static int
parse_listen(const char *s, struct sockaddr_in *sa)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	long port;

	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	if (!colon) {
		snprintf(host, sizeof host, "127.0.0.1");
		colon = s - 1;
	} else {
		size_t n = (size_t)(colon - s);
		if (n >= sizeof host)
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
		if (!n || !strcmp(host, "localhost"))
			snprintf(host, sizeof host, "127.0.0.1");
	}
	if (parse_num(colon + 1, 0, 65535, &port) < 0 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

static void *
signal_main(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	logline("signal %d, exiting", sig);
	fflush(stdout);
	_exit(0);
}

int
main(int argc, char **argv)
{
	static sigset_t sigs;
	struct sockaddr_in sa;
	socklen_t salen = sizeof sa;
	const char *listen_at = "127.0.0.1:0";
	pthread_attr_t attr;
	pthread_t tid;
	struct sigaction ign;
	char addr[INET_ADDRSTRLEN];
	int lfd, one = 1, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			listen_at = argv[++i];
		} else if (!strncmp(argv[i], "--listen=", 9)) {
			listen_at = argv[i] + 9;
		} else if (!strcmp(argv[i], "--fast")) {
			g_fast = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (parse_listen(listen_at, &sa) < 0) {
		fprintf(stderr, "mock_upstream: bad --listen address %s\n", listen_at);
		return 2;
	}

	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, NULL);
	/* SIGTERM/SIGINT are taken by one thread with sigwait(); every other
     * thread inherits the mask, so no system call is ever interrupted. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
		fprintf(
		    stderr, "mock_upstream: cannot listen on %s: %s\n", listen_at, strerror(errno));
		return 1;
	}

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (pthread_create(&tid, &attr, signal_main, &sigs) != 0) {
		fprintf(stderr, "mock_upstream: cannot start the signal thread\n");
		return 1;
	}

	inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
	printf("mock_upstream listening on %s:%u\n", addr, (unsigned)ntohs(sa.sin_port));
	fflush(stdout);

	for (;;) {
		struct conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
				logline("accept: %s", strerror(errno));
				poll(NULL, 0, 10); /* EMFILE and friends: let others finish */
			}
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = calloc(1, sizeof *c);
		if (!c) {
			logline("out of memory for a connection");
			close(fd);
			continue;
		}
		c->fd = fd;
		c->idle_next = -1;
		pthread_mutex_lock(&g_mu);
		gs.accepted++;
		c->id = ++gs.next_conn;
		pthread_mutex_unlock(&g_mu);
		if (pthread_create(&tid, &attr, conn_main, c) != 0) {
			logline("cannot start a connection thread");
			close(fd);
			free(c);
		}
	}
}
