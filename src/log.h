/*
 * log.h — one line per message to stderr, each written with a single
 * write(2) so lines from concurrent threads never interleave.
 *
 * Only main() exits: there is no fatal() here on purpose.
 */
#ifndef LLMPROXY_LOG_H
#define LLMPROXY_LOG_H

#include <stdint.h>

#include "config.h"     /* enum log_level */

void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What the access line says about one request. */
struct access_entry {
	const char *request_id;
	const char *client;         /* peer address */
	const char *method;
	size_t method_len;
	const char *target;         /* path and query as the client sent them */
	size_t target_len;
	int status;                 /* sent to the client; 0 if nothing was */
	const char *backend;        /* backend name, or "-" */
	int stream;                 /* the response was relayed as SSE */
	uint64_t bytes_out;         /* body bytes sent to the client */
	int64_t ttft_us;            /* request sent -> first event; -1 if none */
	int64_t duration_us;        /* head complete -> response done */
	const char *finish;         /* "stop", "client_abort", "upstream_error",
	                               "timeout", "local", "error" */
};

/* One access line (logfmt): id, client, method, path, status, backend,
 * stream, bytes, ttft_ms, duration_ms, finish. */
void log_access(const struct access_entry *e);

#endif
