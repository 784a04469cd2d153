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

#endif
