/*
 * conn.h — one client connection: its buffers, and serving its requests.
 *
 * A connection alternates between the waiting room (pool.c), which collects
 * a complete request head without holding a thread, and a worker, which
 * serves the request with blocking, deadline-bounded I/O.  It is owned by
 * exactly one of them at a time.
 */
#ifndef LLMPROXY_CONN_H
#define LLMPROXY_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "io.h"
#include "llmproxy.h"

/* What the owner does with the connection after a worker is done with it. */
enum conn_next {
	CONN_PARK,      /* keep-alive: wait in the waiting room for the next head */
	CONN_CLOSE,     /* close now */
	CONN_LINGER,    /* an error reply was sent: half-close, drain, close */
};

struct tlsconf;

struct conn {
	struct conn *next;          /* pool queues */
	struct server *srv;         /* a reference (server.h): the snapshot in
	                               force when its current or last request
	                               started */
	struct io io;
	char peer[64];              /* client address, for logs and XFF */

	/* Client input: the current request head, then whatever the client
	 * sent after it (body bytes, pipelined requests). */
	char *in;
	size_t in_len, in_cap;
	size_t head_len;            /* > 0 once a complete head is parsed */
	int64_t deadline_ms;        /* waiting room: give up at this time */
	int64_t started_ms;         /* first byte of the current request */
	int waiting_state;          /* pool.c's */
	int metrics_only;           /* accepted on [metrics] listen: serves
	                               the metrics (and /health) alone */
	struct tlsconf *tls;        /* io is TLS ([server.tls]): a reference to
	                               the credentials it was set up with; the
	                               handshake runs inside the first reads */
	size_t drained;             /* bytes dropped while lingering */
	struct http_request req;
	/* Waiting room: a short body is collected before a worker is given
	 * the request (conn.c, preread_start). */
	int preread;
	size_t preread_until;       /* Content-Length: c->in_len when whole */
	size_t scanned;             /* chunked: bytes of c->in scanned */
	uint64_t scan_payload;      /* chunked: payload bytes seen */
	struct http_chunked scan;

	/* Per request, reused across requests on the connection. */
	/* Ours, unique per request: the usage record's request_id, which
	 * receivers de-duplicate on, so never taken from the client. */
	char request_id[72];
	/* The client's X-Request-Id when it is a sane token, else "": kept
	 * for tracing (forwarded, echoed, logged, in the record as
	 * client_request_id). */
	char client_request_id[72];
	char *body;                 /* the request body, read whole (bounded) */
	size_t body_len, body_cap;
	size_t carry_len;           /* bytes after a chunked body, kept at
	                               body[body_len..body_len + carry_len) */
	void *json_scratch;
	size_t json_scratch_bytes;
	char *out;                  /* heads we build: upstream request, client
	                               response */
	size_t out_cap;
	char *relay;                /* upstream response bytes */
	size_t relay_cap;
	char *rewrite;              /* the body as sent, when usage injection
	                               rewrote it */
	size_t rewrite_cap;
	char *tail;                 /* the last CAP_USAGE_TAIL bytes of a
	                               non-streamed body, for its usage */
	size_t tail_len, tail_cap;
	struct http_response resp;
};

/* Grows one of a connection's buffers to hold at least `want` bytes (exactly
 * `want` when it grows; callers choose the growth step).  Returns 0, or -1
 * when out of memory (the buffer is then unchanged). */
int conn_reserve(char **buf, size_t *cap, size_t want);

/* A connection for an accepted socket (already set up non-blocking), with a
 * reference to the configuration in force; TLS when tls and that
 * configuration has [server.tls] (the handshake runs in conn_read_head).
 * NULL when out of memory. */
struct conn *conn_new(int fd, const struct sockaddr *peer, int tls);

/* Closes the socket and frees everything. */
void conn_free(struct conn *c);

/* Can conn_read_head make progress now?  For the waiting room, before it
 * polls: a TLS connection may hold decrypted bytes already read from the
 * socket, which poll() would never report. */
int conn_has_input(const struct conn *c);

/*
 * Waiting room: reads what the client has sent without blocking and tries
 * to parse a head.  Returns 1 when a complete head is ready (c->head_len)
 * with its body, when that is short enough to be collected here
 * (CAP_BODY_PREREAD), 0 when more is needed, -1 when the client closed or the
 * socket failed, or an HTTP status (> 1) to answer because the head is bad
 * or too large.
 */
int conn_read_head(struct conn *c);

/* Parses whatever is already buffered; same returns as conn_read_head. */
int conn_parse_head(struct conn *c);

/*
 * Worker: serves the parsed request and any complete pipelined ones.  The
 * per-request buffers stay allocated for the next request on the same
 * thread (no malloc per request); conn_idle() lets them go.
 */
enum conn_next conn_serve(struct conn *c);

/* Frees the per-request buffers of a connection that goes to wait idle, so
 * that thousands of idle keep-alive clients cost little memory. */
void conn_idle(struct conn *c);

/*
 * Answers with the OpenAI error JSON without waiting (the waiting room must
 * never block): best effort, a reply that does not fit the socket buffer is
 * cut.  Used for 408, 431, 503 and malformed heads.
 */
void conn_reply_now(struct conn *c, int status, const char *message,
    const char *extra_headers);

/* The X-Request-Id the request travels under (sent upstream, echoed to the
 * client): the client's own id when it gave a sane one, else ours. */
const char *conn_trace_id(const struct conn *c);

#endif
