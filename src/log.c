/*
 * log.c — timestamped lines on stderr, one write(2) each.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "log.h"

static _Atomic int current_level = LOG_LEVEL_INFO;

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

/* RFC 3339 UTC with milliseconds: 2026-11-26T02:18:46.123Z */
static size_t
timestamp(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = snprintf(out + n, cap - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	return n + (m > 0 ? (size_t)m : 0);
}

/* Writes one whole line; a line longer than CAP_LOG_LINE is cut, never split
 * over two writes. */
static void
emit(char *line, size_t len)
{
	if (len >= CAP_LOG_LINE)
		len = CAP_LOG_LINE - 1;
	line[len++] = '\n';
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
}

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char line[CAP_LOG_LINE + 1];
	int saved_errno = errno;

	if (!log_enabled(level))
		return;
	size_t n = timestamp(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ",
	    level_names[level]);
	if (n < CAP_LOG_LINE) {
		int m = vsnprintf(line + n, CAP_LOG_LINE - n, fmt, ap);
		n += m > 0 ? (size_t)m : 0;
	}
	if (with_errno && n < CAP_LOG_LINE) {
		int m = snprintf(line + n, CAP_LOG_LINE - n, ": %s",
		    strerror(saved_errno));
		n += m > 0 ? (size_t)m : 0;
	}
	emit(line, n);
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

void
log_access(const struct access_entry *e)
{
	char line[CAP_LOG_LINE + 1];
	char ttft[32] = "-";

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	if (e->ttft_us >= 0)
		snprintf(ttft, sizeof(ttft), "%.3f", (double)e->ttft_us / 1000.0);
	size_t n = timestamp(line, sizeof(line));
	/* The target holds only visible ASCII (http.c refuses anything else),
	 * so it needs no quoting in logfmt. */
	int m = snprintf(line + n, CAP_LOG_LINE - n,
	    "access id=%s client=%s method=%.*s path=%.*s status=%d backend=%s "
	    "stream=%d bytes=%llu ttft_ms=%s duration_ms=%.3f finish=%s",
	    e->request_id, e->client, (int)e->method_len, e->method,
	    (int)e->target_len, e->target, e->status, e->backend, e->stream,
	    (unsigned long long)e->bytes_out, ttft,
	    (double)e->duration_us / 1000.0, e->finish);
	n += m > 0 ? (size_t)m : 0;
	emit(line, n);
}
