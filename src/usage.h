/*
 * usage.h — token usage: read from what the backend sends (every dialect),
 * estimated when it sends nothing, and the record that goes to billing.
 *
 * Pure apart from the meter the caller owns: no I/O, nothing global.
 */
#ifndef LLMPROXY_USAGE_H
#define LLMPROXY_USAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * What the proxy learns about one response's usage as it goes by.  Set the
 * request-side fields, leave the rest zero (usage_meter_init), feed events or
 * the body tail, then ask usage_result().  Holds no part of the answer.
 */
struct usage_meter {
	/* What the request was (set by the caller before the response). */
	int injected;           /* we added stream_options.include_usage */
	int injected_continuous;/* we added continuous_usage_stats */

	/* Learned from the response. */
	int reported;           /* the backend gave counts */
	int64_t prompt_tokens;  /* the last counts it gave (continuous usage is */
	int64_t completion_tokens;  /* cumulative: the last one wins) */
	int64_t total_tokens;
	int own_nulls;          /* the backend puts "usage":null on every chunk
	                           whether asked or not (TGI: "id":""), so those
	                           are not ours to remove */
	uint64_t events;        /* SSE events seen: the response is a stream */
	uint64_t content_events;/* events with generated text, as delivered */
	uint64_t content_bytes; /* generated text bytes, as delivered */
	char finish_reason[24];

	void *scratch;          /* JSON token space; usage_meter_free() */
	size_t scratch_bytes;
};

void usage_meter_init(struct usage_meter *m, int injected,
    int injected_continuous);
void usage_meter_free(struct usage_meter *m);

/* What the client gets of one event. */
enum usage_action {
	USAGE_FORWARD,          /* as it is */
	USAGE_DROP,             /* not at all: the usage chunk we asked for */
	USAGE_CUT,              /* without bytes [cut_at, cut_at + cut_len): a
	                           "usage" member we caused */
};

struct usage_verdict {
	enum usage_action action;
	size_t cut_at;          /* offsets into the event's bytes */
	size_t cut_len;
};

/*
 * Looks at one complete SSE event — its raw bytes as sse_scan() delimited
 * them, field lines and blank line included — records what it says about
 * usage, and decides what the client gets: when we injected include_usage,
 * the usage-only chunk (choices: []) is dropped and "usage" members we caused
 * on other chunks are cut; otherwise everything is forwarded.  An event the
 * backend would have sent anyway is never changed.
 */
void usage_event(struct usage_meter *m, const char *ev, size_t len,
    struct usage_verdict *v);

/*
 * Whether usage_event() could answer anything but USAGE_FORWARD for this
 * event, without reading it: only when we injected something, and only for
 * an event that could hold a member named "usage" — which takes the word
 * itself, or a \u escape to spell a letter of it.  When this returns 0 the
 * caller may send the event first and meter it afterwards (in order with the
 * others): the verdict is known to be USAGE_FORWARD.
 */
int usage_may_change(const struct usage_meter *m, const char *ev, size_t len);

/* A non-streamed response: the last bytes of its body (at most
 * CAP_USAGE_TAIL), where OpenAI-shaped bodies keep "usage". */
void usage_body_tail(struct usage_meter *m, const char *tail, size_t len);

/* The numbers for the record. */
struct usage_result {
	int64_t prompt_tokens;
	int64_t completion_tokens;
	int64_t total_tokens;
	const char *source;     /* "backend", "estimated" or "none" */
};

/*
 * Reported counts when there are any; otherwise an estimate from what was
 * delivered (completion: content bytes / 4, at least one per content event;
 * for a body, body_bytes / 4; body_bytes is ignored once the meter has seen
 * SSE events) and prompt_bytes / 4 — unless nothing was generated at all (no
 * response), which is "none" with zeros.  Counts the backend left out are
 * derived from the others or estimated; the source stays "backend".
 */
void usage_result(const struct usage_meter *m, size_t prompt_bytes,
    uint64_t body_bytes, int generated, struct usage_result *out);

/* One usage record, as DESIGN.md lists its fields. */
struct usage_record {
	const char *request_id;         /* ours: unique, what receivers
	                                   de-duplicate on */
	int64_t timestamp_ms;   /* wall clock, request start */
	const char *model;      /* as the client sent it (JSON string contents,
	                           escapes kept), or NULL */
	size_t model_len;
	struct usage_result usage;
	int is_stream;
	const char *endpoint;   /* the path, no query */
	size_t endpoint_len;
	const char *backend_url;
	const char *backend;
	int status_code;        /* sent to the client; 0 if nothing was */
	int64_t latency_ms;
	int64_t ttft_ms;        /* -1 when no byte reached the client */
	const char *finish;     /* "stop", "length", "client_abort",
	                           "upstream_error", "timeout", ... */
	const char *user_id;    /* from auth, NULL until it exists */
	const char *key_name;
	const char *client_request_id;  /* the client's X-Request-Id (for
	                                   tracing only), or NULL */
};

/* The record as one JSON object, no newline.  Returns its length, or 0 when
 * it does not fit cap (CAP_RECORD_BYTES always fits). */
size_t usage_record_json(const struct usage_record *r, char *out, size_t cap);

#endif
