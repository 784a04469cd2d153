/*
 * metrics.h — Prometheus metrics: counted on the request path with atomics
 * only (never a lock, never an allocation), rendered in the text exposition
 * format (version 0.0.4) on GET /metrics.
 *
 * Every label value comes from the config (backend names) or from a fixed
 * table (paths, status codes), never from request data, so the number of
 * series is bounded whatever clients send.
 */
#ifndef LLMPROXY_METRICS_H
#define LLMPROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "balancer.h"
#include "config.h"

/* The path label: the OpenAI endpoints by name, everything else "other". */
enum metrics_path {
	MP_CHAT_COMPLETIONS,            /* /v1/chat/completions */
	MP_COMPLETIONS,                 /* /v1/completions */
	MP_EMBEDDINGS,                  /* /v1/embeddings */
	MP_MODELS,                      /* /v1/models */
	MP_OTHER,                       /* any other /v1/ path, and local ones */
	MP_COUNT
};

/* The label for a request path (no query). */
enum metrics_path metrics_path_of(const char *path, size_t len);

/* Sizes the tables for cfg's backends (names are label values) and notes the
 * start time.  Returns 0 or -1.  Call once, before any request. */
int metrics_init(const struct config *cfg);

/*
 * The metrics slot of the backend called `name` (its label value): the slot
 * it had, or a new one for a name not seen before (a reload added it).
 * Slots live as long as the process, up to CAP_BACKENDS names; past that, or
 * before metrics_init(), -1 (counted under "none").  The `backend` arguments
 * below are such slots.
 */
int metrics_backend(const char *name);

/* One request, counted when it is over. */
struct metrics_request {
	enum metrics_path path;
	int stream;                     /* relayed as an event stream */
	int backend;                    /* metrics_backend() slot, -1: none */
	int status;                     /* sent to the client; 0: nothing was */
	int64_t duration_us;            /* head received -> last byte */
	int64_t ttft_us;                /* -1: no first byte */
	int64_t prompt_tokens;          /* -1: not metered */
	int64_t completion_tokens;
	int client_abort;
};

/*
 * Counts it: llmproxy_requests_total{path,stream,backend,status},
 * llmproxy_request_duration_seconds{path,stream,backend} (and LLMProxy's
 * llmproxy_latency_ms when compat is on), llmproxy_ttft_seconds{backend},
 * llmproxy_usage_tokens_total{type,backend}, llmproxy_client_aborts_total.
 */
void metrics_request_done(const struct metrics_request *m);

/* The gap between two events of one stream, as they left for the client:
 * llmproxy_inter_token_seconds{backend}; `n` such gaps at once (events that
 * left in one write: the relay counts them with one call, not one set of
 * shared atomics per event). */
void metrics_inter_token(int backend, int64_t gap_us, uint64_t n);

/* A request left this backend for another (failover):
 * llmproxy_retries_total{backend}. */
void metrics_retry(int backend);

/* llmproxy_in_flight_requests: +1 when a request starts, -1 when it ends. */
void metrics_in_flight(int delta);

/*
 * Renders every family into *buf (grown with realloc as needed; the caller
 * frees it), reading the backend table (llmproxy_backend_up), the webhook
 * stats and /proc/self.  Never takes a lock a request holds.  Returns the
 * length, or 0 when out of memory.
 */
size_t metrics_render(char **buf, size_t *cap, struct backend_table *t);

/* ---- building blocks, exposed for the unit tests ---------------------------- */

/* A histogram: cumulative bucket counts are computed when rendered. */
struct histogram {
	const double *bounds;           /* upper bounds in seconds, ascending */
	size_t nbounds;
	_Atomic uint64_t *counts;       /* nbounds + 1 (the last is +Inf) */
	_Atomic uint64_t sum_us;        /* sum of observations, microseconds */
	_Atomic uint64_t count;
};

/* Records one observation of `us` microseconds. */
void histogram_observe(struct histogram *h, int64_t us);
/* The same observation n times, with one atomic add per counter. */
void histogram_observe_n(struct histogram *h, int64_t us, uint64_t n);

/*
 * Appends the _bucket, _sum and _count lines of one histogram series named
 * `name` with the label pairs `labels` (already formatted, e.g.
 * `backend="a"`, or "" for none) to *buf at *len (growing it).  With `ms`,
 * bounds and sum are written in milliseconds instead of seconds (LLMProxy's
 * llmproxy_latency_ms).  Returns 0 or -1 (memory).
 */
int histogram_render(char **buf, size_t *cap, size_t *len, const char *name,
    const char *labels, const struct histogram *h, int ms);

#endif
