/*
 * relay.h — the streaming loop: from the backend's response head to the last
 * byte the client receives.
 */
#ifndef LLMPROXY_RELAY_H
#define LLMPROXY_RELAY_H

#include <stdint.h>

#include "conn.h"
#include "upstream.h"
#include "usage.h"

struct relay_request {
	int head_request;       /* the method was HEAD: no response body */
	int client_minor;       /* HTTP/1.<minor> of the client */
	int client_keep;        /* the client wants the connection kept */
	int64_t sent_us;        /* when the request was fully sent upstream */
	int64_t deadline_ms;    /* [routing] timeout for the whole request; -1 */
	struct usage_meter *meter;  /* usage metering, or NULL: every event is
	                               shown to it and its verdict applied */
	int backend_index;          /* for the per-backend metrics */
	/*
	 * Failover: called when the backend failed before anything reached the
	 * client, with the RETRY_ON_* class of the failure.  Nonzero means
	 * another backend will get the request: nothing is said to the client
	 * (res->failed_over is set).  NULL: failures are answered here.
	 */
	int (*failover)(void *ctx, unsigned retry_on);
	void *failover_ctx;
};

/* How the backend failed, for passive health checks. */
enum upstream_fault {
	FAULT_NONE,
	FAULT_CONNECT,          /* no connection (refused, unreachable, timeout) */
	FAULT_NO_ANSWER,        /* reset, closed or garbage before the head */
	FAULT_TIMEOUT,          /* no first token in first_token_timeout */
	FAULT_BROKEN,           /* cut or stalled after it started */
};

struct relay_result {
	int status;             /* status sent to the client; 0 if nothing was */
	int stream;             /* the body was relayed as an event stream */
	uint64_t bytes;         /* body bytes sent to the client */
	int64_t ttft_us;        /* request sent -> first body byte; -1 if none */
	const char *finish;     /* "stop", "client_abort", "upstream_error",
	                           "timeout" */
	int client_keep;        /* the client connection can serve another
	                           request */
	int retry_fresh;        /* a reused idle connection turned out dead before
	                           answering; nothing went to the client, so the
	                           caller may send the request on a new one */
	int failed_over;        /* the failover callback took the request */
	enum upstream_fault fault;
	int upstream_status;    /* the status the backend sent; 0 if none */
	int64_t retry_after_ms; /* its Retry-After (429, 503), or 0 */
};

/*
 * Reads the backend's response on u and relays it to the client of c, event
 * by event for text/event-stream, as it arrives otherwise.  Watches the client
 * the whole time: when it goes away the upstream connection is closed at
 * once, so the backend stops generating.  Failures before anything reached
 * the client become a 502 or 504 with the OpenAI error JSON; after that, an
 * SSE error event (streams) and a cut connection.  Always releases u.
 */
void relay_response(struct conn *c, struct upstream *u,
    const struct relay_request *rq, struct relay_result *res);

/*
 * Waits until deadline_ms while watching the client of c (bytes it sends
 * are kept for its next request).  Returns 0 at the deadline, -1 when the
 * client went away.
 */
int relay_client_wait(struct conn *c, int64_t deadline_ms);

#endif
