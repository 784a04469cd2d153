/*
 * httpc.h — a small HTTP/1.1 client for the proxy's own requests (webhook
 * deliveries, health probes, /v1/models): one connection to one server, kept
 * alive between requests, everything bounded by a deadline.
 */
#ifndef LLMPROXY_HTTPC_H
#define LLMPROXY_HTTPC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

struct httpc {
	char host[256];
	char port[6];
	struct io io;               /* fd -1 when not connected */
	int64_t idle_since_ms;
	char why[512];              /* what went wrong in the last request that
	                               failed, for the caller's log */
	int https;                  /* httpc_tls(): TLS to the server */
	const struct tls_trust *trust;
	int verify;
	pthread_mutex_t *lock;      /* NULL (httpc_init), or a mutex the caller
	                               owns, held here while io.fd changes: then
	                               another thread may httpc_abort() */
	_Atomic int aborted;
};

void httpc_init(struct httpc *h, const char *host, const char *port);

/* Speaks https to the server from now on: SNI and the certificate checked
 * against trust (tls.h; it must outlive h), unless verify is 0.  A failed
 * handshake fails the request with EPROTO, and h->why names the reason. */
struct tls_trust;
void httpc_tls(struct httpc *h, const struct tls_trust *trust, int verify);

/*
 * Sends one request — `head` is the complete request head the caller built
 * (request line, Host, Content-Length, ..., blank line), `body` may be empty
 * — and reads the response: *status, and up to cap bytes of its body into
 * body_out (the rest is read and dropped).  Skips 1xx heads.  A kept-alive
 * connection that fails before any response byte is replaced by a new one
 * once.  The connection is kept for the next request when the response
 * allows.  Returns 0, or -1 with errno (ETIMEDOUT at the deadline; EPROTO for
 * a malformed response; ECANCELED after httpc_abort()), h->why and the
 * connection closed.  *status is the final status whenever its head arrived,
 * even when the body then failed (-1: cut, malformed, past the deadline),
 * and 0 otherwise; *body_len_out is what body_out holds in either case.
 */
int httpc_request(struct httpc *h, const char *head, size_t head_len,
    const char *body, size_t body_len, int64_t deadline_ms, int *status,
    char *body_out, size_t cap, size_t *body_len_out);

/* Closes the connection, if any. */
void httpc_close(struct httpc *h);

/*
 * From another thread, with h->lock set: ends the request in progress on h at
 * once (its connection is shut down) and makes it and every later request
 * fail with ECANCELED.  For shutdown, so that nobody waits for a deadline.
 */
void httpc_abort(struct httpc *h);

#endif
