/*
 * metrics.c — counters, gauges and histograms, and their Prometheus text
 * exposition (metrics.h).
 *
 * Counting happens on the request path, so it is a handful of relaxed atomic
 * additions into tables sized once by metrics_init(): no lock, no allocation,
 * nothing a request can wait on.  Relaxed order is enough because nothing is
 * published through a counter; a scrape that sees one request half counted
 * (its requests_total but not yet its duration) is the next scrape's to
 * correct.
 *
 * Every label value comes from the config or from the fixed tables below, so
 * the number of series is bounded by the config: paths x stream x (backends
 * + "none") x status labels for llmproxy_requests_total, a few per backend
 * for the rest.  Series of the first kind are rendered only once they count
 * something (most combinations never happen); per-backend series are always
 * rendered, so a dashboard sees a 0 rather than no data for a backend that
 * has served nothing yet.
 *
 * Rendering (GET /metrics) reads the atomics, the backend table's atomics,
 * webhook_get_stats() (which never waits for a request) and /proc/self, and
 * writes the text exposition format, version 0.0.4:
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "llmproxy.h"
#include "json.h"
#include "metrics.h"
#include "ratelimit.h"
#include "webhook.h"

#if defined(__GNUC__)
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF(f, a)
#endif

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A rendering starts with room for a scrape of a small config; realloc
 * doubles it from there. */
#define RENDER_BUF_INIT (16 * 1024)

/* One escaped label value of a backend name: every byte may double. */
#define LABEL_BYTES     (2 * sizeof(((struct backend_conf *)NULL)->name) + 1)

/* path="...",stream="...",backend="..." */
#define SERIES_BYTES    (LABEL_BYTES + 96)

/* /proc/self/stat up to field 24 (rss): 22 numbers of at most 20 digits and
 * a command name of at most 16 bytes fit with room to spare. */
#define PROC_STAT_BYTES 1024

/* ---- label tables --------------------------------------------------------- */

static const char *const path_label[MP_COUNT] = {
	[MP_CHAT_COMPLETIONS] = "/v1/chat/completions",
	[MP_COMPLETIONS] = "/v1/completions",
	[MP_EMBEDDINGS] = "/v1/embeddings",
	[MP_MODELS] = "/v1/models",
	[MP_OTHER] = "other",
};

static const char *const stream_label[2] = { "false", "true" };

/*
 * Status codes that get a series of their own: what the proxy itself answers
 * (DESIGN.md, "Behaviour") and what backends commonly send.  Anything else is
 * counted under its class, so a backend inventing codes cannot add series.
 * 0 means that nothing was sent (the client left first, say).
 */
static const int status_code[] = {
	0, 200, 201, 204,
	400, 401, 403, 404, 405, 408, 413, 414, 422, 429, 431,
	500, 501, 502, 503, 504, 505,
};

/* After the exact codes: the classes, "other" last (1xx, >= 600, < 0). */
static const char *const status_class[] = { "2xx", "3xx", "4xx", "5xx",
    "other" };

#define NCODES          N(status_code)
#define NSTATUS         (NCODES + N(status_class))

static const char *const token_type[2] = { "prompt", "completion" };

/* ---- bucket bounds (seconds) ------------------------------------------------ */

/* Whole requests: a health check in milliseconds to a long generation in
 * minutes. */
static const double duration_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
	300,
};

/* Time to first token: resolves single milliseconds (a warm cache) and
 * still separates a long prefill from a stuck one. */
static const double ttft_bounds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	30, 60,
};

/* Between two tokens: a fast GPU emits one every millisecond or less. */
static const double itl_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5,
};

/* ---- families --------------------------------------------------------------- */

enum fam {
	F_BUILD_INFO,
	F_REQUESTS,
	F_DURATION,
	F_LATENCY_MS,
	F_TTFT,
	F_INTER_TOKEN,
	F_TOKENS,
	F_IN_FLIGHT,
	F_BACKEND_UP,
	F_RETRIES,
	F_CLIENT_ABORTS,
	F_KEY_REQUESTS,
	F_KEY_TOKENS,
	F_KEY_IN_FLIGHT,
	F_RATE_LIMITED,
	F_AUTH_FAILURES,
	F_WH_SUCCESS,
	F_WH_FAILURE,
	F_WH_DROPPED,
	F_WH_QUEUE,
	F_WH_SPOOL,
	F_CPU,
	F_OPEN_FDS,
	F_MAX_FDS,
	F_VIRTUAL,
	F_RESIDENT,
	F_START,
	F_COUNT
};

/* HELP texts must not contain a backslash or a newline (they would need
 * escaping); none does. */
static const struct family {
	const char *name;
	const char *type;
	const char *help;
} fam[F_COUNT] = {
	[F_BUILD_INFO] = { "llmproxy_build_info", "gauge",
	    "Always 1; the version of the running llmproxy is in the label." },
	[F_REQUESTS] = { "llmproxy_requests_total", "counter",
	    "Requests answered, by path, streaming, backend and status "
	    "(status 0: nothing was sent)." },
	[F_DURATION] = { "llmproxy_request_duration_seconds", "histogram",
	    "Time from the request head received to the last byte sent." },
	[F_LATENCY_MS] = { "llmproxy_latency_ms", "histogram",
	    "LLMProxy's name for llmproxy_request_duration_seconds, in "
	    "milliseconds (metrics llmproxy_compat)." },
	[F_TTFT] = { "llmproxy_ttft_seconds", "histogram",
	    "Time to the first token (first event or body byte) of an answer." },
	[F_INTER_TOKEN] = { "llmproxy_inter_token_seconds", "histogram",
	    "Gap between two events of one stream as they left for the client." },
	[F_TOKENS] = { "llmproxy_usage_tokens_total", "counter",
	    "Tokens metered, by type (prompt, completion) and backend." },
	[F_IN_FLIGHT] = { "llmproxy_in_flight_requests", "gauge",
	    "Requests being served now." },
	[F_BACKEND_UP] = { "llmproxy_backend_up", "gauge",
	    "1 when the backend may be picked now (healthy, not ejected, not "
	    "busy), else 0." },
	[F_RETRIES] = { "llmproxy_retries_total", "counter",
	    "Requests that left this backend for another before any byte "
	    "reached the client." },
	[F_CLIENT_ABORTS] = { "llmproxy_client_aborts_total", "counter",
	    "Requests whose client went away before the answer was complete." },
	[F_KEY_REQUESTS] = { "llmproxy_key_requests_total", "counter",
	    "Proxied requests answered, by API key name (auth on)." },
	[F_KEY_TOKENS] = { "llmproxy_key_tokens_total", "counter",
	    "Tokens metered, by API key name and type (prompt, completion)." },
	[F_KEY_IN_FLIGHT] = { "llmproxy_key_in_flight_requests", "gauge",
	    "Requests of an API key being served now (max_concurrent counts "
	    "these)." },
	[F_RATE_LIMITED] = { "llmproxy_rate_limited_total", "counter",
	    "Requests answered 429 by a limit (global, rate, concurrency, "
	    "tokens), by API key name (empty: no key)." },
	[F_AUTH_FAILURES] = { "llmproxy_auth_failures_total", "counter",
	    "Requests refused by auth, by reason (missing, unknown: 401; "
	    "disabled, expired: 403)." },
	[F_WH_SUCCESS] = { "llmproxy_webhook_success_total", "counter",
	    "Usage records acknowledged with a 2xx, once per record and "
	    "reporter." },
	[F_WH_FAILURE] = { "llmproxy_webhook_failure_total", "counter",
	    "Usage record deliveries that failed (they are retried)." },
	[F_WH_DROPPED] = { "llmproxy_webhook_dropped_total", "counter",
	    "Usage records that never made it into the spool or queue (full)." },
	[F_WH_QUEUE] = { "llmproxy_webhook_queue_depth", "gauge",
	    "Usage records not yet delivered to every reporter." },
	[F_WH_SPOOL] = { "llmproxy_webhook_spool_bytes", "gauge",
	    "Size of the usage spool file in bytes (0 without one)." },
	[F_CPU] = { "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds." },
	[F_OPEN_FDS] = { "process_open_fds", "gauge",
	    "Number of open file descriptors." },
	[F_MAX_FDS] = { "process_max_fds", "gauge",
	    "Maximum number of open file descriptors." },
	[F_VIRTUAL] = { "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes." },
	[F_RESIDENT] = { "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes." },
	[F_START] = { "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds." },
};

/* The webhook families are its stats as they are. */
static const struct {
	enum fam f;
	size_t off;                     /* a uint64_t in struct webhook_stats */
} webhook_fam[] = {
	{ F_WH_SUCCESS, offsetof(struct webhook_stats, delivered) },
	{ F_WH_FAILURE, offsetof(struct webhook_stats, failures) },
	{ F_WH_DROPPED, offsetof(struct webhook_stats, dropped) },
	{ F_WH_QUEUE, offsetof(struct webhook_stats, queued) },
	{ F_WH_SPOOL, offsetof(struct webhook_stats, spool_bytes) },
};

/* ---- state ------------------------------------------------------------------ */

static struct {
	/* Backends by name, in the order they were first seen (the config at
	 * start, then each reload): a slot per name for the life of the
	 * process, so a reload adds series and never renumbers them. */
	size_t cap;                     /* slots: CAP_BACKENDS */
	_Atomic size_t nb;              /* slots in use */
	char (*names)[sizeof(((struct backend_conf *)NULL)->name)];
	int compat;                     /* also llmproxy_latency_ms */
	char (*label)[LABEL_BYTES];     /* escaped backend label values,
	                                   [0] "none", [b + 1] backend b */

	/* [((path * 2 + stream) * (cap + 1) + backend + 1) * NSTATUS + status] */
	_Atomic uint64_t *requests;
	/* [(path * 2 + stream) * (cap + 1) + backend + 1] */
	struct histogram *duration;
	struct histogram *latency;      /* NULL without compat */
	/* [backend] */
	struct histogram *ttft;
	struct histogram *itl;
	_Atomic uint64_t *tokens;       /* [backend * 2 + type] */
	_Atomic uint64_t *retries;

	_Atomic int64_t in_flight;
	_Atomic uint64_t aborts;

	long ticks;                     /* sysconf(_SC_CLK_TCK) */
	long page;
	double start_time;              /* seconds since the epoch */
} m;

/* ---- labels ----------------------------------------------------------------- */

/*
 * A label value as the exposition format wants it: backslash, double quote
 * and line feed escaped.  Bytes that are not UTF-8 become '?': Prometheus
 * rejects a whole scrape for one invalid label value, and config.c's rules
 * for names may not be the only source forever.  out has room for 2 * n + 1.
 */
static void
label_escape(char *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;

	for (size_t i = 0; i < n && u[i] != '\0';) {
		size_t len = json_utf8_len(u + i, n - i);

		if (len == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (u[i] == '\\' || u[i] == '"' || u[i] == '\n') {
			out[o++] = '\\';
			out[o++] = u[i] == '\n' ? 'n' : (char)u[i];
			i++;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
}

enum metrics_path
metrics_path_of(const char *path, size_t len)
{
	if (path == NULL)
		return MP_OTHER;
	/* The query is not part of the endpoint, should a caller leave it. */
	const char *q = memchr(path, '?', len);
	if (q != NULL)
		len = (size_t)(q - path);
	for (int p = 0; p < MP_OTHER; p++)
		if (strlen(path_label[p]) == len &&
		    memcmp(path_label[p], path, len) == 0)
			return (enum metrics_path)p;
	return MP_OTHER;
}

static size_t
status_index(int status)
{
	for (size_t i = 0; i < NCODES; i++)
		if (status_code[i] == status)
			return i;
	if (status >= 200 && status <= 599)
		return NCODES + (size_t)(status / 100 - 2);
	return NSTATUS - 1;
}

/* ---- histograms ------------------------------------------------------------- */

/*
 * The bucket is the first whose bound is >= the observation ("le": less or
 * equal).  Comparing us / 1e6 with a bound in seconds is exact for bounds
 * with at most six decimals: the division is correctly rounded, so an
 * observation equal to a bound gives the very double the bound's literal
 * gives, and neighbouring microseconds are ~1e-6 apart where doubles are
 * ~1e-14 apart.  One division per observation; no integer table to keep in
 * step with the one in seconds.
 */
void
histogram_observe(struct histogram *h, int64_t us)
{
	histogram_observe_n(h, us, 1);
}

void
histogram_observe_n(struct histogram *h, int64_t us, uint64_t n)
{
	if (n == 0)
		return;
	if (us < 0)
		us = 0;         /* a monotonic clock does not go back */
	double s = (double)us / 1e6;
	size_t lo = 0, hi = h->nbounds;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s <= h->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&h->counts[lo], n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us * n,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, n, memory_order_relaxed);
}

/* n histograms over the same bounds, with their counts, in one block
 * (freed with free()). */
static struct histogram *
histograms_new(size_t n, const double *bounds, size_t nbounds)
{
	size_t per = nbounds + 1;
	struct histogram *h;

	if (n == 0)
		n = 1;          /* calloc(0) may return NULL */
	h = calloc(1, n * sizeof(*h) + n * per * sizeof(_Atomic uint64_t));
	if (h == NULL)
		return NULL;
	/* struct histogram holds 64-bit atomics, so the counts that follow
	 * the array are aligned for them too. */
	_Atomic uint64_t *c = (_Atomic uint64_t *)(void *)(h + n);
	for (size_t i = 0; i < n; i++) {
		h[i].bounds = bounds;
		h[i].nbounds = nbounds;
		h[i].counts = c + i * per;
	}
	return h;
}

/* ---- output ----------------------------------------------------------------- */

/* The caller's buffer, grown as needed; after a failed allocation every
 * further write is a no-op and `failed` says so. */
struct out {
	char **buf;
	size_t *cap;
	size_t *len;
	int failed;
};

static int
reserve(struct out *o, size_t more)
{
	if (o->failed)
		return -1;
	if (*o->len + more < *o->cap && *o->buf != NULL)
		return 0;
	size_t cap = *o->cap > 0 ? *o->cap : RENDER_BUF_INIT;
	while (cap <= *o->len + more) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	char *nb = realloc(*o->buf, cap);
	if (nb == NULL)
		goto fail;
	*o->buf = nb;
	*o->cap = cap;
	return 0;
fail:
	o->failed = 1;
	return -1;
}

static void put(struct out *o, const char *fmt, ...) PRINTF(2, 3);

/* Appends like printf; the buffer stays NUL-terminated. */
static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (reserve(o, 256) < 0)
		return;
	for (;;) {
		size_t room = *o->cap - *o->len;
		va_start(ap, fmt);
		n = vsnprintf(*o->buf + *o->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < room)
			break;
		if (reserve(o, (size_t)n + 1) < 0)
			return;
	}
	*o->len += (size_t)n;
}

static void
head(struct out *o, enum fam f)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help,
	    fam[f].name, fam[f].type);
}

/* A bound as an "le" value: %.15g gives the shortest form for the decimal
 * bounds we use (0.005, not 0.005000000000000001), and the same text on
 * every scrape, which Prometheus needs to keep a bucket one series. */
static void
put_bound(struct out *o, double b)
{
	put(o, "%.15g", b);
}

int
histogram_render(char **buf, size_t *cap, size_t *len, const char *name,
    const char *labels, const struct histogram *h, int ms)
{
	struct out o = { buf, cap, len, 0 };
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;

	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		put(&o, "%s_bucket{%s%sle=\"", name, labels, sep);
		if (i == h->nbounds)
			put(&o, "+Inf");
		else
			put_bound(&o, ms ? h->bounds[i] * 1000 : h->bounds[i]);
		put(&o, "\"} %" PRIu64 "\n", cum);
	}

	/* The sum in integer arithmetic: exact, whatever its size.  The count
	 * is the +Inf bucket rather than h->count, so the two always agree
	 * even while observations arrive. */
	uint64_t sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
	const char *lb = labels[0] != '\0' ? "{" : "";
	const char *rb = labels[0] != '\0' ? "}" : "";
	if (ms)
		put(&o, "%s_sum%s%s%s %" PRIu64 ".%03" PRIu64 "\n", name, lb,
		    labels, rb, sum / 1000, sum % 1000);
	else
		put(&o, "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n", name, lb,
		    labels, rb, sum / 1000000, sum % 1000000);
	put(&o, "%s_count%s%s%s %" PRIu64 "\n", name, lb, labels, rb, cum);
	return o.failed ? -1 : 0;
}

/* ---- /proc ------------------------------------------------------------------ */

/* Fields 3.. of /proc/self/stat (proc(5)), by their number there. */
#define STAT_UTIME      14
#define STAT_STIME      15
#define STAT_STARTTIME  22
#define STAT_VSIZE      23
#define STAT_RSS        24

/* Reads /proc/self/stat fields up to STAT_RSS into f[] (indexed by field
 * number).  Returns 0 or -1 (no /proc). */
static int
proc_stat(long long f[STAT_RSS + 1])
{
	char b[PROC_STAT_BYTES];
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	do
		n = read(fd, b, sizeof(b) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	b[n] = '\0';

	/* The command name (field 2) is in parentheses and may itself hold
	 * spaces and parentheses: the fields resume after the last ')'. */
	char *p = strrchr(b, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0')
		return -1;
	p += 3;                 /* field 3, the state: a letter */
	for (int i = 4; i <= STAT_RSS; i++) {
		char *end;
		p = strchr(p, ' ');
		if (p == NULL)
			return -1;
		f[i] = strtoll(p + 1, &end, 10);
		if (end == p + 1)
			return -1;
		p = end;
	}
	return 0;
}

/* The boot time (/proc/stat "btime"), in seconds since the epoch, or -1. */
static long long
boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char *line = NULL;
	size_t cap = 0;
	long long bt = -1;

	if (f == NULL)
		return -1;
	/* getline(): the "intr" line before btime runs to kilobytes. */
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtoll(line + 6, NULL, 10);
			break;
		}
	free(line);
	fclose(f);
	return bt;
}

/* The process's start: boot time + its start in ticks after boot, as the
 * Prometheus client libraries compute it; the time of metrics_init() where
 * /proc cannot tell. */
static double
start_time(void)
{
	long long f[STAT_RSS + 1];
	long long bt = boot_time();
	struct timespec ts;

	if (bt > 0 && m.ticks > 0 && proc_stat(f) == 0)
		return (double)bt + (double)f[STAT_STARTTIME] / (double)m.ticks;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open descriptors: the entries of /proc/self/fd but the one reading it. */
static long
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (d == NULL)
		return -1;
	int self = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (atoi(de->d_name) != self)
			n++;
	}
	closedir(d);
	return n;
}

static void
render_process(struct out *o)
{
	long long f[STAT_RSS + 1];
	struct rlimit rl;
	int have_stat = proc_stat(f) == 0;

	if (have_stat && m.ticks > 0) {
		head(o, F_CPU);
		put(o, "%s %.3f\n", fam[F_CPU].name,
		    (double)(f[STAT_UTIME] + f[STAT_STIME]) / (double)m.ticks);
	}
	long fds = open_fds();
	if (fds >= 0) {
		head(o, F_OPEN_FDS);
		put(o, "%s %ld\n", fam[F_OPEN_FDS].name, fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		head(o, F_MAX_FDS);
		put(o, "%s %llu\n", fam[F_MAX_FDS].name,
		    (unsigned long long)rl.rlim_cur);
	}
	if (have_stat) {
		head(o, F_VIRTUAL);
		put(o, "%s %lld\n", fam[F_VIRTUAL].name, f[STAT_VSIZE]);
		head(o, F_RESIDENT);
		put(o, "%s %lld\n", fam[F_RESIDENT].name,
		    f[STAT_RSS] * (long long)m.page);
	}
	head(o, F_START);
	put(o, "%s %.2f\n", fam[F_START].name, m.start_time);
}

/* ---- init ------------------------------------------------------------------- */

/* Registration of backend names (main thread, at start and reloads). */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;

static void
release(void)
{
	free(m.names);
	free(m.label);
	free(m.requests);
	free(m.duration);
	free(m.latency);
	free(m.ttft);
	free(m.itl);
	free(m.tokens);
	free(m.retries);
	memset(&m, 0, sizeof(m));
}

int
metrics_init(const struct config *cfg)
{
	/* A second call (the unit tests) starts from nothing. */
	release();
	if (cfg->nbackends > CAP_BACKENDS)
		return -1;
	m.cap = CAP_BACKENDS;
	m.compat = cfg->metrics_compat;
	m.ticks = sysconf(_SC_CLK_TCK);
	m.page = sysconf(_SC_PAGESIZE);

	size_t nser = MP_COUNT * 2 * (m.cap + 1);

	m.label = calloc(m.cap + 1, sizeof(*m.label));
	m.names = calloc(m.cap, sizeof(*m.names));
	m.requests = calloc(nser * NSTATUS, sizeof(*m.requests));
	m.duration = histograms_new(nser, duration_bounds, N(duration_bounds));
	if (m.compat)
		m.latency = histograms_new(nser, duration_bounds,
		    N(duration_bounds));
	m.ttft = histograms_new(m.cap, ttft_bounds, N(ttft_bounds));
	m.itl = histograms_new(m.cap, itl_bounds, N(itl_bounds));
	m.tokens = calloc(m.cap * 2, sizeof(*m.tokens));
	m.retries = calloc(m.cap, sizeof(*m.retries));
	if (m.label == NULL || m.names == NULL || m.requests == NULL || m.duration == NULL ||
	    (m.compat && m.latency == NULL) || m.ttft == NULL ||
	    m.itl == NULL || m.tokens == NULL || m.retries == NULL)
		goto fail;

	strcpy(m.label[0], "none");
	for (size_t b = 0; b < cfg->nbackends; b++)
		if (metrics_backend(cfg->backends[b].name) != (int)b)
			goto fail;
	m.start_time = start_time();
	return 0;

fail:
	release();
	return -1;
}

int
metrics_backend(const char *name)
{
	size_t n;
	int slot = -1;

	if (m.label == NULL)
		return -1;
	pthread_mutex_lock(&names_lock);
	n = atomic_load(&m.nb);
	for (size_t b = 0; b < n && slot < 0; b++)
		if (strcmp(m.names[b], name) == 0)
			slot = (int)b;
	if (slot < 0 && n < m.cap) {
		snprintf(m.names[n], sizeof(m.names[n]), "%s", name);
		label_escape(m.label[n + 1], name, strlen(name));
		/* The label is written before the slot is counted: a scrape
		 * that sees the count sees the label. */
		atomic_store(&m.nb, n + 1);
		slot = (int)n;
	}
	pthread_mutex_unlock(&names_lock);
	return slot;
}

/* ---- counting ----------------------------------------------------------------- */

static void
inc(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A backend index as a per-backend slot, or -1 (none, out of range). */
static long
backend_of(int backend)
{
	return backend >= 0 && (size_t)backend < m.nb ? backend : -1;
}

void
metrics_request_done(const struct metrics_request *r)
{
	if (r->client_abort)
		inc(&m.aborts, 1);
	if (m.requests == NULL)
		return;         /* metrics_init() failed or was not called */

	size_t p = (unsigned)r->path < MP_COUNT ? (size_t)r->path : MP_OTHER;
	long b = backend_of(r->backend);
	size_t series = (p * 2 + (r->stream != 0)) * (m.cap + 1) +
	    (size_t)(b + 1);

	inc(&m.requests[series * NSTATUS + status_index(r->status)], 1);
	histogram_observe(&m.duration[series], r->duration_us);
	if (m.latency != NULL)
		histogram_observe(&m.latency[series], r->duration_us);
	if (b < 0)
		return;
	if (r->ttft_us >= 0)
		histogram_observe(&m.ttft[b], r->ttft_us);
	if (r->prompt_tokens >= 0)
		inc(&m.tokens[b * 2], (uint64_t)r->prompt_tokens);
	if (r->completion_tokens >= 0)
		inc(&m.tokens[b * 2 + 1], (uint64_t)r->completion_tokens);
}

void
metrics_inter_token(int backend, int64_t gap_us, uint64_t n)
{
	long b = backend_of(backend);

	if (b >= 0 && m.itl != NULL)
		histogram_observe_n(&m.itl[b], gap_us, n);
}

void
metrics_retry(int backend)
{
	long b = backend_of(backend);

	if (b >= 0 && m.retries != NULL)
		inc(&m.retries[b], 1);
}

void
metrics_in_flight(int delta)
{
	atomic_fetch_add_explicit(&m.in_flight, delta, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------------ */

static void
series_labels(char *out, size_t p, size_t s, size_t b)
{
	snprintf(out, SERIES_BYTES, "path=\"%s\",stream=\"%s\",backend=\"%s\"",
	    path_label[p], stream_label[s], m.label[b]);
}

static void
render_requests(struct out *o)
{
	char lab[SERIES_BYTES];

	head(o, F_REQUESTS);
	for (size_t p = 0; p < MP_COUNT; p++)
		for (size_t s = 0; s < 2; s++)
			for (size_t b = 0; b <= m.nb; b++) {
				size_t series = (p * 2 + s) * (m.cap + 1) + b;
				for (size_t st = 0; st < NSTATUS; st++) {
					uint64_t v = atomic_load_explicit(
					    &m.requests[series * NSTATUS + st],
					    memory_order_relaxed);
					if (v == 0)
						continue;
					series_labels(lab, p, s, b);
					if (st < NCODES)
						put(o, "%s{%s,status=\"%d\"} %"
						    PRIu64 "\n",
						    fam[F_REQUESTS].name, lab,
						    status_code[st], v);
					else
						put(o, "%s{%s,status=\"%s\"} %"
						    PRIu64 "\n",
						    fam[F_REQUESTS].name, lab,
						    status_class[st - NCODES], v);
				}
			}
}

/* A {path,stream,backend} histogram family: the series that observed
 * anything. */
static void
render_series_hist(struct out *o, enum fam f, const struct histogram *h,
    int ms)
{
	char lab[SERIES_BYTES];

	head(o, f);
	for (size_t p = 0; p < MP_COUNT; p++)
		for (size_t s = 0; s < 2; s++)
			for (size_t b = 0; b <= m.nb; b++) {
				const struct histogram *x =
				    &h[(p * 2 + s) * (m.cap + 1) + b];
				if (atomic_load_explicit(&x->count,
				    memory_order_relaxed) == 0)
					continue;
				series_labels(lab, p, s, b);
				if (histogram_render(o->buf, o->cap, o->len,
				    fam[f].name, lab, x, ms) < 0)
					o->failed = 1;
			}
}

/* A {backend} histogram family: every backend. */
static void
render_backend_hist(struct out *o, enum fam f, const struct histogram *h)
{
	char lab[LABEL_BYTES + 16];

	head(o, f);
	for (size_t b = 0; b < m.nb; b++) {
		snprintf(lab, sizeof(lab), "backend=\"%s\"", m.label[b + 1]);
		if (histogram_render(o->buf, o->cap, o->len, fam[f].name, lab,
		    &h[b], 0) < 0)
			o->failed = 1;
	}
}

static void
render_tables(struct out *o)
{
	render_requests(o);
	render_series_hist(o, F_DURATION, m.duration, 0);
	if (m.latency != NULL)
		render_series_hist(o, F_LATENCY_MS, m.latency, 1);
	render_backend_hist(o, F_TTFT, m.ttft);
	render_backend_hist(o, F_INTER_TOKEN, m.itl);

	head(o, F_TOKENS);
	for (size_t b = 0; b < m.nb; b++)
		for (size_t k = 0; k < 2; k++)
			put(o, "%s{type=\"%s\",backend=\"%s\"} %" PRIu64 "\n",
			    fam[F_TOKENS].name, token_type[k], m.label[b + 1],
			    atomic_load_explicit(&m.tokens[b * 2 + k],
			    memory_order_relaxed));
}

static void
render_backend_up(struct out *o, struct backend_table *t)
{
	char lab[LABEL_BYTES];
	int64_t now = io_now_ms();

	head(o, F_BACKEND_UP);
	for (size_t i = 0; i < t->n; i++) {
		const struct backend_conf *bc = t->backends[i].conf;
		/* Escaped from the table's own config, which need not be the
		 * one metrics_init() saw. */
		label_escape(lab, bc->name, sizeof(bc->name));
		/* Up means healthy and not ejected: a backend holding off
		 * after a Retry-After is busy, not down. */
		const struct backend *b = &t->backends[i];
		put(o, "%s{backend=\"%s\"} %d\n", fam[F_BACKEND_UP].name, lab,
		    atomic_load(&b->healthy) &&
		    now >= atomic_load(&b->out_until_ms) ? 1 : 0);
	}
}

/*
 * The per-key families.  Key names come from the config, so the series
 * are bounded; the key itself is never a label.  Shown only when there is
 * something to show (auth or limits in use).
 */
static void
render_keys(struct out *o)
{
	static const char *const reasons[4] = { "missing", "unknown", "disabled",
	    "expired" };
	static const enum rl_verdict limits[] = { RL_GLOBAL, RL_KEY_RATE,
	    RL_KEY_CONCURRENCY, RL_KEY_TOKENS };
	uint64_t failures[4];
	size_t n, i, j;
	struct rl_stat *st = rl_snapshot(&n, failures);
	char (*lab)[2 * sizeof(st->name) + 1];

	if (n > 0 && (lab = malloc(n * sizeof(*lab))) == NULL) {
		free(st);
		o->failed = 1;
		return;
	}
	if (n > 0) {
		for (i = 0; i < n; i++)
			label_escape(lab[i], st[i].name, sizeof(st[i].name));
		head(o, F_KEY_REQUESTS);
		for (i = 0; i < n; i++)
			if (st[i].name[0] != '\0')
				put(o, "%s{key=\"%s\"} %" PRIu64 "\n",
				    fam[F_KEY_REQUESTS].name, lab[i], st[i].requests);
		head(o, F_KEY_TOKENS);
		for (i = 0; i < n; i++)
			for (j = 0; j < 2 && st[i].name[0] != '\0'; j++)
				put(o, "%s{key=\"%s\",type=\"%s\"} %" PRIu64 "\n",
				    fam[F_KEY_TOKENS].name, lab[i], token_type[j],
				    st[i].tokens[j]);
		head(o, F_KEY_IN_FLIGHT);
		for (i = 0; i < n; i++)
			if (st[i].name[0] != '\0')
				put(o, "%s{key=\"%s\"} %" PRId64 "\n",
				    fam[F_KEY_IN_FLIGHT].name, lab[i], st[i].in_flight);
		head(o, F_RATE_LIMITED);
		for (i = 0; i < n; i++)
			for (j = 0; j < sizeof(limits) / sizeof(limits[0]); j++)
				put(o, "%s{key=\"%s\",limit=\"%s\"} %" PRIu64 "\n",
				    fam[F_RATE_LIMITED].name, lab[i],
				    rl_label(limits[j]), st[i].limited[limits[j]]);
		free(lab);
	}
	free(st);
	if (n == 0 && failures[0] + failures[1] + failures[2] + failures[3] == 0)
		return;
	head(o, F_AUTH_FAILURES);
	for (i = 0; i < 4; i++)
		put(o, "%s{reason=\"%s\"} %" PRIu64 "\n",
		    fam[F_AUTH_FAILURES].name, reasons[i], failures[i]);
}

size_t
metrics_render(char **buf, size_t *cap, struct backend_table *t)
{
	size_t len = 0;
	struct out o = { buf, cap, &len, 0 };
	struct webhook_stats ws;
	char ver[2 * sizeof(LLMPROXY_VERSION) + 1];

	if (reserve(&o, 1) < 0)
		return 0;
	(*buf)[0] = '\0';

	label_escape(ver, LLMPROXY_VERSION, sizeof(LLMPROXY_VERSION));
	head(&o, F_BUILD_INFO);
	put(&o, "%s{version=\"%s\"} 1\n", fam[F_BUILD_INFO].name, ver);

	if (m.requests != NULL)
		render_tables(&o);

	head(&o, F_IN_FLIGHT);
	put(&o, "%s %" PRId64 "\n", fam[F_IN_FLIGHT].name,
	    atomic_load_explicit(&m.in_flight, memory_order_relaxed));
	if (t != NULL && t->n > 0)
		render_backend_up(&o, t);
	if (m.retries != NULL) {
		head(&o, F_RETRIES);
		for (size_t b = 0; b < m.nb; b++)
			put(&o, "%s{backend=\"%s\"} %" PRIu64 "\n",
			    fam[F_RETRIES].name, m.label[b + 1],
			    atomic_load_explicit(&m.retries[b],
			    memory_order_relaxed));
	}
	head(&o, F_CLIENT_ABORTS);
	put(&o, "%s %" PRIu64 "\n", fam[F_CLIENT_ABORTS].name,
	    atomic_load_explicit(&m.aborts, memory_order_relaxed));
	render_keys(&o);

	webhook_get_stats(&ws);
	for (size_t i = 0; i < N(webhook_fam); i++) {
		uint64_t v;
		memcpy(&v, (const char *)&ws + webhook_fam[i].off, sizeof(v));
		head(&o, webhook_fam[i].f);
		put(&o, "%s %" PRIu64 "\n", fam[webhook_fam[i].f].name, v);
	}

	render_process(&o);
	return o.failed ? 0 : len;
}
