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
	const char *request_id;     /* ours (the usage record's) */
	const char *client_request_id;  /* the client's X-Request-Id, or NULL */
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
	const char *finish;         /* "stop", "length", "client_abort",
	                               "upstream_error", "timeout", "local",
	                               "refused", "error" */
	const char *model;          /* the request's model (JSON string contents
	                               as sent), or NULL */
	size_t model_len;
	int64_t prompt_tokens;      /* -1: not metered */
	int64_t completion_tokens;
	const char *key_name;       /* the API key's name (auth), or NULL; never
	                               the key itself */
	const char *user_id;        /* the key's user id (auth), or NULL */
};

/*
 * Where access lines go and in which format: `file` (appended; NULL or ""
 * for stderr), one JSON object per line when `json`, else logfmt.  Returns 0,
 * or -1 with errno when the file cannot be opened (the old setting stays).
 */
int log_access_setup(const char *file, int json);

/* One access line: id (ours), client_id (the client's X-Request-Id, when it
 * sent one), client, method, path, status, backend, model, stream, bytes,
 * ttft_ms, duration_ms, prompt_tokens, completion_tokens, finish, key and
 * user (when set).  Strings from the request are escaped (JSON) or quoted
 * (logfmt) so one request is always exactly one line. */
void log_access(const struct access_entry *e);

/*
 * url as a message may show it: a user:password@ becomes "...@", each query
 * value (a webhook's ?token=...) "...", a fragment "#...".  Written into out
 * (cut to cap - 1 bytes, always NUL-terminated when cap > 0); returns out.
 */
const char *log_url(const char *url, char *out, size_t cap);

#endif
