/*
 * upstream.h — connections to backends: connect with a timeout, and a small
 * cache of idle keep-alive connections per backend.
 */
#ifndef LLMPROXY_UPSTREAM_H
#define LLMPROXY_UPSTREAM_H

#include "balancer.h"
#include "io.h"

struct upstream {
	struct io io;
	struct backend *backend;
	int reused;             /* taken from the idle cache */
	int tls_error;          /* the handshake's error (tls_last_error),
	                           when upstream_connect failed with EPROTO */
};

/*
 * Connects *u to backend b.  Unless fresh_only, a live idle connection from
 * the cache is taken first (u->reused = 1); otherwise each address of the
 * backend's host is tried until deadline_ms, and for an https backend the
 * TLS handshake completes (certificate verified) before this returns, so
 * nothing of a request goes to a server that failed it.  Returns 0, or -1
 * with errno (ETIMEDOUT when the deadline passed; EPROTO when TLS failed,
 * u->tls_error says why; the connect error otherwise).
 */
int upstream_connect(struct upstream *u, struct backend *b, int64_t deadline_ms,
    int fresh_only);

/*
 * A new TCP connection to host:port (each address in turn) within
 * deadline_ms, non-blocking with TCP_NODELAY.  Returns the fd, or -1 with
 * errno (ETIMEDOUT, the connect error, EHOSTUNREACH when the name does not
 * resolve).  For anything that talks to a server: backends, webhooks.
 */
int upstream_dial(const char *host, const char *port, int64_t deadline_ms);

/* Ends the use of *u: the connection goes back to the idle cache when keep
 * is set and there is room, else it is closed. */
void upstream_release(struct upstream *u, int keep);

#endif
