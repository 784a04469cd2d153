/*
 * log.c — messages on stderr and one access line per request (stderr, or a
 * file of their own), every line written with a single write(2).
 *
 * Formats.  Text (the default): messages are "TIME LEVEL: message", access
 * lines "TIME access key=value ..." (logfmt).  JSON (log_access_setup(...,
 * 1), from [log] format = json): every line is one JSON object, messages
 * {"time","level","msg"}, access lines the same three ("msg":"access") and
 * then their fields.  Messages follow the format too, so that a stream a log
 * collector reads as JSON never has a text line in it; they still go to
 * stderr, whatever access_file says.
 *
 * Access lines are info lines on stderr (level warn or error leaves them
 * out); when they have a file of their own, every one is written, whatever
 * the level, as a web server's access log is.
 *
 * Hostile values.  The request id, the path and the model come from the
 * client: every string is quoted and escaped (logfmt) or escaped (JSON), so
 * that one request is always exactly one line that parses.  Each string is
 * cut to a bound of its own (ending in "..."), so that a 30 KB path still
 * leaves room for the status and the rest; if the line is still too long, the
 * fields that do not fit are left out from the end, whole: a JSON line is
 * always a complete object.
 *
 * The access file.  log_access_setup() opens the new file first (an error
 * leaves everything as it was).  The first file's descriptor becomes the
 * "slot" that access lines are written to from then on, and is never closed;
 * a later file (a reload after logrotate moved the old one away) is dup3()ed
 * onto the slot.  dup3 replaces the open file behind the number atomically: a
 * write in progress finishes in the old file (the kernel holds a reference to
 * it), the next one goes to the new file, and no line is lost, split, or
 * written to a descriptor number that closing the old file would have freed
 * for a socket.
 */
#define _GNU_SOURCE     /* dup3 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "json.h"
#include "log.h"

static _Atomic int current_level = LOG_LEVEL_INFO;
static _Atomic int json_lines;          /* [log] format = json */
static _Atomic int access_fd = STDERR_FILENO;
static _Atomic int access_own_file;     /* access_fd is not stderr */

static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static int slot = -1;                   /* under setup_lock */

/* How much of each string an access line keeps (bytes written, escapes
 * included).  All of them at once overflow the line: then fields are left
 * out from the end.  A long path and a long model alone do not. */
#define MAX_ID      128
#define MAX_CLIENT  64
#define MAX_METHOD  32
#define MAX_PATH    1024
#define MAX_BACKEND 64
#define MAX_MODEL   512
#define MAX_FINISH  32
#define MAX_KEY     64
#define MAX_USER    128

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
	current_level = level;
}

int
log_enabled(enum log_level level)
{
	return (int)level <= current_level;
}

int
log_access_setup(const char *file, int json)
{
	int fd = STDERR_FILENO, rc = 0, saved, fl;
	int own = file != NULL && *file != '\0';

	if (own) {
		/* O_NONBLOCK only so that opening a FIFO no one reads fails
		 * (ENXIO) instead of hanging; lines are written blocking. */
		fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		    O_NOCTTY | O_NONBLOCK, 0640);
		if (fd < 0)
			return -1;
		if ((fl = fcntl(fd, F_GETFL)) < 0 ||
		    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
	}
	pthread_mutex_lock(&setup_lock);
	if (slot < 0 && own) {
		slot = fd;              /* the first file: the slot itself */
		fd = -1;
	} else if (slot >= 0 && fd != slot && dup3(fd, slot, O_CLOEXEC) < 0) {
		rc = -1;
	}
	saved = errno;
	if (rc == 0) {
		json_lines = json != 0;
		access_own_file = own;
		if (slot >= 0)
			access_fd = slot;
	}
	pthread_mutex_unlock(&setup_lock);
	if (fd >= 0 && fd != STDERR_FILENO)
		close(fd);
	errno = saved;
	return rc;
}

/* Writes v as exactly `width` decimal digits (v < 10^width). */
static void
digits(char *out, unsigned long v, int width)
{
	while (width-- > 0) {
		out[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * RFC 3339 UTC with milliseconds: 2026-11-26T02:18:46.123Z (24 bytes).  By
 * hand, not strftime/snprintf: this runs for every access line, and the
 * date part is computed once per second per thread.
 */
static size_t
timestamp(char *out, size_t cap)
{
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[20];   /* 2026-11-26T02:18:46 */
	struct timespec ts;

	if (cap < 25)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		digits(cached, (unsigned long)(tm.tm_year + 1900) % 10000, 4);
		cached[4] = '-';
		digits(cached + 5, (unsigned long)tm.tm_mon + 1, 2);
		cached[7] = '-';
		digits(cached + 8, (unsigned long)tm.tm_mday, 2);
		cached[10] = 'T';
		digits(cached + 11, (unsigned long)tm.tm_hour, 2);
		cached[13] = ':';
		digits(cached + 14, (unsigned long)tm.tm_min, 2);
		cached[16] = ':';
		digits(cached + 17, (unsigned long)tm.tm_sec, 2);
		cached_sec = ts.tv_sec;
	}
	memcpy(out, cached, 19);
	out[19] = '.';
	digits(out + 20, (unsigned long)(ts.tv_nsec / 1000000), 3);
	out[23] = 'Z';
	out[24] = '\0';
	return 24;
}

/* Writes one whole line to fd: a line longer than CAP_LOG_LINE is cut,
 * never split over two writes.  line has room for the '\n'. */
static void
emit(int fd, char *line, size_t len)
{
	if (len >= CAP_LOG_LINE)
		len = CAP_LOG_LINE - 1;
	line[len++] = '\n';
	while (write(fd, line, len) < 0 && errno == EINTR)
		;
}

/* ---- a line under construction ------------------------------------------------- */

struct line {
	char buf[CAP_LOG_LINE + 1];  /* + the NUL of snprintf */
	size_t len;
	size_t end;                  /* fields end before this: room stays for
	                                '}' (JSON) and '\n' */
	int json;
	int nfields;
	int full;                    /* a field was left out: so are the rest */
};

static int putf(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int put(struct line *l, const char *s, size_t n);

static void
line_start(struct line *l, int json)
{
	char ts[40];
	size_t n = timestamp(ts, sizeof(ts));

	l->json = json;
	l->nfields = 0;
	l->full = 0;
	l->end = CAP_LOG_LINE - 1 - (json != 0);
	l->len = 0;
	if (json) {
		(void)put(l, "{\"time\":\"", 9);
		(void)put(l, ts, n);
		(void)put(l, "\"", 1);
		l->nfields = 1;
	} else {
		memcpy(l->buf, ts, n);
		l->len = n;
	}
}

static int
put(struct line *l, const char *s, size_t n)
{
	if (n > l->end - l->len)
		return -1;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

static int
putf(struct line *l, const char *fmt, ...)
{
	size_t room = l->end - l->len;
	va_list ap;
	int m;

	va_start(ap, fmt);
	m = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m > room)
		return -1;
	l->len += (size_t)m;
	return 0;
}

/* " name=" or ",\"name\":" */
static int
key(struct line *l, const char *name)
{
	size_t n = strlen(name);

	if (l->json) {
		if (l->nfields > 0 && put(l, ",", 1) < 0)
			return -1;
		if (put(l, "\"", 1) < 0 || put(l, name, n) < 0)
			return -1;
		return put(l, "\":", 2);
	}
	if (put(l, " ", 1) < 0 || put(l, name, n) < 0)
		return -1;
	return put(l, "=", 1);
}

/* A decimal integer, without printf (once per field of every access line). */
static int
put_int(struct line *l, int64_t v)
{
	char d[24];
	size_t i = sizeof(d);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		d[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		d[--i] = '-';
	return put(l, d + i, sizeof(d) - i);
}

/* Microseconds as milliseconds with three decimals: what "%.3f" of
 * us / 1000.0 prints, in integers. */
static int
put_ms(struct line *l, int64_t us)
{
	char frac[4] = { '.', 0, 0, 0 };
	uint64_t u = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;

	if (us < 0 && put(l, "-", 1) < 0)
		return -1;
	if (put_int(l, (int64_t)(u / 1000)) < 0)
		return -1;
	digits(frac + 1, (unsigned long)(u % 1000), 3);
	return put(l, frac, 4);
}

/* Ends a field begun at `from`: kept when ok, else taken back, and the line
 * takes no more fields. */
static void
field_end(struct line *l, size_t from, int ok)
{
	if (ok && !l->full) {
		l->nfields++;
		return;
	}
	l->len = from;
	l->full = 1;
}

/*
 * A JSON string: s[0..n) escaped with json_escape, a byte that is not valid
 * UTF-8 as U+FFFD (a JSON text is UTF-8), at most max bytes of it, or cut
 * with "..." after it.
 */
static int
json_str(struct line *l, const char *s, size_t n, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	if (put(l, "\"", 1) < 0)
		return -1;
	while (i < n) {
		char esc[8];
		size_t k = json_utf8_len(u + i, n - i), w;

		if (k == 0) {
			memcpy(esc, "\\ufffd", 6);
			w = 6;
			k = 1;
		} else {
			w = json_escape(esc, sizeof(esc), s + i, k);
		}
		if (o + w > max)
			break;
		if (put(l, esc, w) < 0)
			return -1;
		o += w;
		i += k;
	}
	if (i < n && put(l, "...", 3) < 0)
		return -1;
	return put(l, "\"", 1);
}

static int
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * The length of the unit of JSON string contents at s: an escape sequence,
 * a UTF-8 character or one byte; 0 when s is not valid contents there (a
 * control byte or DEL, a bare '"', a bad escape, bad UTF-8).
 */
static size_t
json_unit(const unsigned char *s, size_t n)
{
	if (s[0] < 0x20 || s[0] == 0x7f || s[0] == '"')
		return 0;
	if (s[0] != '\\')
		return json_utf8_len(s, n);
	if (n >= 2 && strchr("\"\\/bfnrt", s[1]) != NULL && s[1] != '\0')
		return 2;
	if (n >= 6 && s[1] == 'u' && is_hex(s[2]) && is_hex(s[3]) &&
	    is_hex(s[4]) && is_hex(s[5]))
		return 6;
	return 0;
}

/* Is s[0..n) valid JSON string contents (as a request's "model" is)? */
static int
json_contents(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, k;

	for (i = 0; i < n; i += k) {
		if ((k = json_unit(u + i, n - i)) == 0)
			return 0;
	}
	return 1;
}

/* The model as a JSON string: its contents copied when they are valid
 * (cut between units only), else escaped like any other string. */
static int
json_model(struct line *l, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	if (!json_contents(s, n))
		return json_str(l, s, n, MAX_MODEL);
	if (put(l, "\"", 1) < 0)
		return -1;
	for (; i < n; i += k) {
		k = json_unit(u + i, n - i);
		if (i + k > MAX_MODEL)
			break;
		if (put(l, s + i, k) < 0)
			return -1;
	}
	if (i < n && put(l, "...", 3) < 0)
		return -1;
	return put(l, "\"", 1);
}

/*
 * A logfmt value: bare when it is made of '!'..'~' only, has none of
 * " = \, is not empty and is not "-" (which stands for absent); else quoted,
 * with \" \\ and \xNN for a byte outside ' '..'~'.  At most max bytes of it,
 * or cut with "..." after it.
 */
static int
text_str(struct line *l, const char *s, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i, o = 0;
	int quote = n == 0 || (n == 1 && s[0] == '-');

	for (i = 0; i < n && !quote; i++)
		quote = u[i] <= ' ' || u[i] >= 0x7f || u[i] == '"' ||
		    u[i] == '=' || u[i] == '\\';
	if (!quote) {
		/* Nothing to escape: the bytes as they are, cut at max. */
		if (put(l, s, n < max ? n : max) < 0)
			return -1;
		return n > max ? put(l, "...", 3) : 0;
	}
	if (put(l, "\"", 1) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		char esc[4];
		size_t w = 1;

		esc[0] = (char)u[i];
		if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			w = 2;
		} else if (u[i] < ' ' || u[i] >= 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[u[i] >> 4];
			esc[3] = hex[u[i] & 0xf];
			w = 4;
		}
		if (o + w > max)
			break;
		if (put(l, esc, w) < 0)
			return -1;
		o += w;
	}
	if (i < n && put(l, "...", 3) < 0)
		return -1;
	return put(l, "\"", 1);
}

/* Appends code point cp as UTF-8 to out; returns its length. */
static size_t
utf8_put(unsigned char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static unsigned
hex4(const unsigned char *s)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++)
		v = v << 4 | (unsigned)(s[i] <= '9' ? s[i] - '0' :
		    (s[i] | 0x20) - 'a' + 10);
	return v;
}

/*
 * Decodes valid JSON string contents s[0..n) into out[0..cap): the value
 * the text line shows.  A lone surrogate becomes U+FFFD.  Returns the
 * length; stops early when out is full (a decoded value is never longer than
 * its contents, so cap > MAX_MODEL is enough to know a cut is needed).
 */
static size_t
json_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, k;

	for (; i < n && o + 4 <= cap; i += k) {
		k = json_unit(u + i, n - i);
		if (u[i] != '\\') {
			memcpy(out + o, u + i, k);
			o += k;
		} else if (k == 2) {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			out[o++] = (unsigned char)to[strchr(from, u[i + 1]) - from];
		} else {
			unsigned cp = hex4(u + i + 2);

			if (cp >= 0xd800 && cp <= 0xdbff && i + 12 <= n &&
			    u[i + 6] == '\\' && u[i + 7] == 'u' &&
			    json_unit(u + i + 6, n - i - 6) == 6) {
				unsigned lo = hex4(u + i + 8);

				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					k = 12;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			o += utf8_put(out + o, cp);
		}
	}
	return o;
}

/* conn.c's "-" for a value it does not have: absent. */
static const char *
undash(const char *s, size_t n)
{
	return s != NULL && n == 1 && s[0] == '-' ? NULL : s;
}

/* A string field; NULL is absent ("-" / null). */
static void
field_str(struct line *l, const char *name, const char *s, size_t n,
    size_t max)
{
	size_t from = l->len;
	int ok = !l->full && key(l, name) == 0;

	if (ok && s == NULL)
		ok = l->json ? put(l, "null", 4) == 0 : put(l, "-", 1) == 0;
	else if (ok)
		ok = (l->json ? json_str(l, s, n, max) : text_str(l, s, n, max)) == 0;
	field_end(l, from, ok);
}

static void
field_cstr(struct line *l, const char *name, const char *s, size_t max)
{
	field_str(l, name, s, s != NULL ? strlen(s) : 0, max);
}

static void
field_model(struct line *l, const char *s, size_t n)
{
	unsigned char dec[MAX_MODEL + 8];
	size_t from = l->len;
	int ok;

	if (s == NULL || !json_contents(s, n)) {
		field_str(l, "model", s, n, MAX_MODEL);
		return;
	}
	ok = !l->full && key(l, "model") == 0;
	if (ok && l->json)
		ok = json_model(l, s, n) == 0;
	else if (ok)
		ok = text_str(l, (const char *)dec, json_decode(s, n, dec, sizeof(dec)),
		    MAX_MODEL) == 0;
	field_end(l, from, ok);
}

/* A count; negative is absent. */
static void
field_count(struct line *l, const char *name, int64_t v)
{
	size_t from = l->len;
	int ok = !l->full && key(l, name) == 0;

	if (ok && v < 0)
		ok = l->json ? put(l, "null", 4) == 0 : put(l, "-", 1) == 0;
	else if (ok)
		ok = put_int(l, v) == 0;
	field_end(l, from, ok);
}

/* Microseconds as milliseconds; negative is absent when `absent_ok`. */
static void
field_ms(struct line *l, const char *name, int64_t us, int absent_ok)
{
	size_t from = l->len;
	int ok = !l->full && key(l, name) == 0;

	if (ok && us < 0 && absent_ok)
		ok = l->json ? put(l, "null", 4) == 0 : put(l, "-", 1) == 0;
	else if (ok)
		ok = put_ms(l, us) == 0;
	field_end(l, from, ok);
}

static void
field_raw(struct line *l, const char *name, const char *text)
{
	size_t from = l->len;
	int ok = !l->full && key(l, name) == 0 && put(l, text, strlen(text)) == 0;

	field_end(l, from, ok);
}

/* Closes a JSON object (room was kept for it) and writes the line. */
static void
line_emit(struct line *l, int fd)
{
	if (l->json)
		l->buf[l->len++] = '}';
	emit(fd, l->buf, l->len);
}

/* ---- messages -------------------------------------------------------------------- */

static void vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char text[CAP_LOG_LINE];
	struct line l;
	int saved_errno = errno, m;
	size_t n = 0;

	if (!log_enabled(level))
		return;
	m = vsnprintf(text, sizeof(text), fmt, ap);
	n = m < 0 ? 0 : (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
	if (with_errno && n < sizeof(text) - 1) {
		m = snprintf(text + n, sizeof(text) - n, ": %s", strerror(saved_errno));
		n += m < 0 ? 0 : (size_t)m < sizeof(text) - n ? (size_t)m : sizeof(text) - n - 1;
	}
	line_start(&l, json_lines);
	if (l.json) {
		field_cstr(&l, "level", level_names[level], 8);
		/* The message takes what is left: "msg", quotes and "...". */
		size_t left = l.end - l.len;
		field_str(&l, "msg", text, n, left > 16 ? left - 16 : 0);
	} else {
		(void)put(&l, " ", 1);
		(void)putf(&l, "%s: ", level_names[level]);
		size_t room = l.end - l.len;
		(void)put(&l, text, n < room ? n : room);
	}
	line_emit(&l, STDERR_FILENO);
	errno = saved_errno;
}

#define LOG_FN(fn, level, with_errno)			\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	vlog(level, with_errno, fmt, ap);		\
	va_end(ap);					\
}

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

/* ---- the access line ------------------------------------------------------------- */

void
log_access(const struct access_entry *e)
{
	struct line l;
	int fd = access_fd, saved_errno = errno;

	if (!access_own_file && !log_enabled(LOG_LEVEL_INFO))
		return;
	line_start(&l, json_lines);
	if (l.json) {
		field_raw(&l, "level", "\"info\"");
		field_raw(&l, "msg", "\"access\"");
	} else {
		(void)put(&l, " access", 7);
	}
	field_cstr(&l, "id", e->request_id, MAX_ID);
	if (e->client_request_id != NULL)
		field_cstr(&l, "client_id", e->client_request_id, MAX_ID);
	field_cstr(&l, "client", e->client, MAX_CLIENT);
	field_str(&l, "method", undash(e->method, e->method_len), e->method_len,
	    MAX_METHOD);
	field_str(&l, "path", undash(e->target, e->target_len), e->target_len,
	    MAX_PATH);
	field_count(&l, "status", e->status);
	field_cstr(&l, "backend", e->backend != NULL ? undash(e->backend,
	    strlen(e->backend)) : NULL, MAX_BACKEND);
	field_model(&l, e->model, e->model_len);
	field_raw(&l, "stream", l.json ? (e->stream ? "true" : "false") :
	    (e->stream ? "1" : "0"));
	field_count(&l, "bytes", (int64_t)(e->bytes_out > INT64_MAX ? INT64_MAX :
	    e->bytes_out));
	field_ms(&l, "ttft_ms", e->ttft_us, 1);
	field_ms(&l, "duration_ms", e->duration_us, 0);
	field_count(&l, "prompt_tokens", e->prompt_tokens);
	field_count(&l, "completion_tokens", e->completion_tokens);
	field_cstr(&l, "finish", e->finish, MAX_FINISH);
	if (e->key_name != NULL || l.json)
		field_cstr(&l, "key", e->key_name, MAX_KEY);
	if (e->user_id != NULL)
		field_cstr(&l, "user", e->user_id, MAX_USER);
	line_emit(&l, fd);
	errno = saved_errno;
}

/* ---- urls in messages -------------------------------------------------------------- */

/* Appends n bytes of s at out[*len], as far as cap leaves room for the NUL. */
static void
url_put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
}

const char *
log_url(const char *url, char *out, size_t cap)
{
	size_t len = 0;
	const char *p = url, *scheme = strstr(url, "://");

	if (cap == 0)
		return out;
	out[0] = '\0';
	/* A user:password@ before the host: only "...@" shows there was one. */
	if (scheme != NULL) {
		const char *auth = scheme + 3;
		size_t alen = strcspn(auth, "/?#");
		const char *at = memchr(auth, '@', alen);
		url_put(out, cap, &len, url, (size_t)(auth - url));
		if (at != NULL) {
			url_put(out, cap, &len, "...@", 4);
			auth = at + 1;
		}
		p = auth;
	}
	size_t plen = strcspn(p, "?#");
	url_put(out, cap, &len, p, plen);
	p += plen;
	/* The query: each name stays, each value (and a bare word, which may
	 * be a key itself) becomes "...". */
	if (*p == '?') {
		url_put(out, cap, &len, "?", 1);
		for (p++; *p != '\0' && *p != '#'; ) {
			size_t item = strcspn(p, "&#"), name = strcspn(p, "=&#");
			if (name < item)
				url_put(out, cap, &len, p, name + 1);
			url_put(out, cap, &len, "...", 3);
			p += item;
			if (*p == '&') {
				url_put(out, cap, &len, "&", 1);
				p++;
			}
		}
	}
	if (*p == '#')
		url_put(out, cap, &len, "#...", 4);
	return out;
}
