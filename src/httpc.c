/*
 * httpc.c — the proxy's own HTTP/1.1 client (httpc.h): webhook deliveries,
 * health probes, /v1/models.
 *
 * One struct httpc is one connection to one server.  It is kept alive between
 * requests when the response allows, so that a probe every few seconds or a
 * POST per usage batch does not cost a TCP handshake each.  A kept connection
 * is tried only while it is young (CAP_UPSTREAM_IDLE_MS) and the server has
 * said nothing on it; one the server closed while it sat idle can still fail
 * before any byte of a response arrives, and that one case is sent again, once,
 * on a new connection (RFC 9112 §9.3.1) — not a failure of the server.
 *
 * Parsing is http.c's: the response head, the body framing decision (RFC 9112
 * §6.3) and the chunked decoder.  Memory per request is one allocation of
 * CAP_RESPONSE_HEAD_BYTES and a parsed head, whatever the size of the body:
 * bytes past the caller's cap are read into the same buffer and dropped.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caps.h"
#include "http.h"
#include "httpc.h"
#include "tls.h"
#include "upstream.h"

/* One request's buffers and what it has read so far. */
struct exchange {
	char buf[CAP_RESPONSE_HEAD_BYTES];  /* the head, then body bytes */
	struct http_response resp;
	size_t have;                        /* bytes in buf */
	int answered;                       /* a byte of a response arrived */
	char *out;                          /* the caller's body buffer */
	size_t cap;
	size_t len;                         /* body bytes kept in out */
};

void
httpc_init(struct httpc *h, const char *host, const char *port)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->host, sizeof(h->host), "%s", host);
	snprintf(h->port, sizeof(h->port), "%s", port);
	io_init_plain(&h->io, -1);
}

void
httpc_tls(struct httpc *h, const struct tls_trust *trust, int verify)
{
	h->https = 1;
	h->trust = trust;
	h->verify = verify;
}

/* ---- the connection ------------------------------------------------------------- */

/*
 * Makes *io (NULL: none) the connection, closing the old one.  Under
 * h->lock, so that httpc_abort() never shuts down a descriptor number that
 * was closed and handed out again elsewhere; and a connection made after an
 * abort is refused here (ECANCELED), since the abort could not reach it.
 */
static int
set_io(struct httpc *h, struct io *io)
{
	int rc = 0;

	if (h->lock != NULL)
		pthread_mutex_lock(h->lock);
	io_close(&h->io);
	if (io != NULL && h->aborted) {
		io_close(io);
		io = NULL;
		rc = -1;
	}
	if (io != NULL)
		h->io = *io;
	if (h->lock != NULL)
		pthread_mutex_unlock(h->lock);
	if (rc < 0) {
		snprintf(h->why, sizeof(h->why), "cancelled");
		errno = ECANCELED;
	}
	return rc;
}

void
httpc_close(struct httpc *h)
{
	(void)set_io(h, NULL);
}

void
httpc_abort(struct httpc *h)
{
	pthread_mutex_lock(h->lock);
	h->aborted = 1;
	if (h->io.fd >= 0)
		shutdown(h->io.fd, SHUT_RDWR);
	pthread_mutex_unlock(h->lock);
}

/* A kept connection is worth trying while it is young and the server has
 * said nothing on it: readable means closed, reset or stray bytes. */
static int
usable(const struct httpc *h)
{
	struct pollfd p = { .fd = h->io.fd, .events = POLLIN };

	if (io_now_ms() - h->idle_since_ms >= CAP_UPSTREAM_IDLE_MS)
		return 0;
	return io_pending(&h->io) == 0 && poll(&p, 1, 0) == 0;
}

static int
dial(struct httpc *h, int64_t deadline_ms)
{
	int fd = upstream_dial(h->host, h->port, deadline_ms);
	struct io io;

	if (fd < 0) {
		snprintf(h->why, sizeof(h->why), "connecting to %s:%s: %s",
		    h->host, h->port, errno == ETIMEDOUT ? "timed out" :
		    strerror(errno));
		return -1;
	}
	if (!h->https) {
		io_init_plain(&io, fd);
		return set_io(h, &io);
	}
	if (tls_client_init(&io, fd, h->host, h->trust, h->verify) < 0) {
		snprintf(h->why, sizeof(h->why), "TLS with %s:%s: %s", h->host,
		    h->port, strerror(errno));
		close(fd);
		return -1;
	}
	/* Published first, so that httpc_abort() can cut a slow handshake. */
	if (set_io(h, &io) < 0)
		return -1;
	if (tls_handshake(&h->io, deadline_ms) < 0) {
		int e = errno;

		snprintf(h->why, sizeof(h->why), "TLS with %s:%s: %s", h->host,
		    h->port, e == EPROTO ? tls_error_text(tls_last_error(&h->io)) :
		    e == ETIMEDOUT ? "handshake timed out" : strerror(e));
		httpc_close(h);
		errno = e;
		return -1;
	}
	return 0;
}

/* ---- one exchange ------------------------------------------------------------------- */

/* How long a write may stall: what is left of the deadline (at least 1 ms,
 * so that a write that can go at once still goes). */
static int
stall_ms(int64_t deadline_ms)
{
	int left = io_poll_timeout(deadline_ms);

	if (left < 0)
		return INT_MAX;
	return left > 0 ? left : 1;
}

/* Reads more into x->buf[have..want).  Returns bytes read, 0 at end of
 * stream, -1 with errno. */
static ssize_t
fill(struct httpc *h, struct exchange *x, size_t want, int64_t deadline_ms)
{
	ssize_t r = io_read(&h->io, x->buf + x->have, want - x->have,
	    deadline_ms);

	if (r > 0) {
		x->have += (size_t)r;
		x->answered = 1;
	}
	return r;
}

/* Reads until a final response head is in x->buf; 1xx heads before it are
 * dropped.  Returns the head's length, or -1 with errno and h->why. */
static int
read_head(struct httpc *h, struct exchange *x, int64_t deadline_ms)
{
	int hlen;

	for (;;) {
		if (x->have == sizeof(x->buf)) {
			snprintf(h->why, sizeof(h->why), "response head larger "
			    "than %d bytes", CAP_RESPONSE_HEAD_BYTES);
			errno = EPROTO;
			return -1;
		}
		ssize_t r = fill(h, x, sizeof(x->buf), deadline_ms);
		if (r < 0) {
			snprintf(h->why, sizeof(h->why), "waiting for the "
			    "response: %s", errno == ETIMEDOUT ? "timed out" :
			    strerror(errno));
			return -1;
		}
		if (r == 0) {
			snprintf(h->why, sizeof(h->why), "connection closed %s",
			    x->have == 0 ? "without a response" :
			    "in the response head");
			errno = ECONNRESET;
			return -1;
		}
		while ((hlen = http_parse_response(x->buf, x->have,
		    &x->resp)) > 0 && x->resp.status < 200 &&
		    x->resp.status != 101) {
			/* An interim response (100 Continue unasked, 103): the
			 * final one follows (RFC 9110 §15.2). */
			memmove(x->buf, x->buf + hlen, x->have - (size_t)hlen);
			x->have -= (size_t)hlen;
		}
		if (hlen < 0) {
			snprintf(h->why, sizeof(h->why), "malformed response");
			errno = EPROTO;
			return -1;
		}
		if (hlen > 0)
			return hlen;
	}
}

/* Body bytes p[0..n): kept while the caller's buffer has room, dropped
 * after. */
static void
keep(struct exchange *x, const char *p, size_t n)
{
	size_t room = x->cap - x->len;

	if (room == 0)
		return;
	if (n > room)
		n = room;
	memcpy(x->out + x->len, p, n);
	x->len += n;
}

/* Reads the next body bytes over x->buf.  Returns their count, or -1 with
 * errno and h->why (a close before the framing's end is ECONNRESET). */
static ssize_t
body_read(struct httpc *h, struct exchange *x, size_t want,
    int64_t deadline_ms)
{
	ssize_t r;

	x->have = 0;
	r = fill(h, x, want, deadline_ms);
	if (r > 0)
		return r;
	if (r == 0) {
		snprintf(h->why, sizeof(h->why), "connection closed in the "
		    "response body");
		errno = ECONNRESET;
	} else {
		snprintf(h->why, sizeof(h->why), "reading the response body: "
		    "%s", errno == ETIMEDOUT ? "timed out" : strerror(errno));
	}
	return -1;
}

/* Content-Length bytes, the first n of them already at x->buf[0..n).
 * Returns 0, 1 (complete, but bytes we never asked for followed: the
 * connection cannot carry another request), or -1. */
static int
body_length(struct httpc *h, struct exchange *x, size_t n, uint64_t left,
    int64_t deadline_ms)
{
	ssize_t r;

	if (n > left) {
		keep(x, x->buf, (size_t)left);
		return 1;
	}
	keep(x, x->buf, n);
	left -= n;
	while (left > 0) {
		size_t want = left < sizeof(x->buf) ? (size_t)left :
		    sizeof(x->buf);
		if ((r = body_read(h, x, want, deadline_ms)) < 0)
			return -1;
		keep(x, x->buf, (size_t)r);
		left -= (uint64_t)r;
	}
	return 0;
}

/* The chunked transfer coding (RFC 9112 §7.1), the first n bytes already at
 * x->buf[0..n).  Returns as body_length(). */
static int
body_chunked(struct httpc *h, struct exchange *x, size_t n,
    int64_t deadline_ms)
{
	struct http_chunked d = { 0 };
	ssize_t used, r;
	size_t out;

	for (;;) {
		if (n > 0) {
			used = http_chunked_decode(&d, x->buf, n, &out);
			if (used < 0) {
				snprintf(h->why, sizeof(h->why), "malformed "
				    "chunked response body");
				errno = EPROTO;
				return -1;
			}
			keep(x, x->buf, out);
			if (http_chunked_done(&d))
				return (size_t)used == n ? 0 : 1;
		}
		if ((r = body_read(h, x, sizeof(x->buf), deadline_ms)) < 0)
			return -1;
		n = (size_t)r;
	}
}

/* Until the server closes (RFC 9112 §6.3 rule 8).  Returns 1 (complete; the
 * connection is done) or -1. */
static int
body_until_close(struct httpc *h, struct exchange *x, size_t n,
    int64_t deadline_ms)
{
	ssize_t r;

	keep(x, x->buf, n);
	for (;;) {
		x->have = 0;
		r = fill(h, x, sizeof(x->buf), deadline_ms);
		if (r == 0)
			return 1;
		if (r < 0) {
			snprintf(h->why, sizeof(h->why), "reading the response "
			    "body: %s", errno == ETIMEDOUT ? "timed out" :
			    strerror(errno));
			return -1;
		}
		keep(x, x->buf, (size_t)r);
	}
}

/*
 * The body after a head of hlen bytes; buffered bytes after the head are at
 * x->buf[hlen..have).  Returns 0 when it ended exactly where its framing
 * says, 1 when it is complete but the connection cannot carry another
 * request, -1 when it failed.
 */
static int
read_body(struct httpc *h, struct exchange *x, const struct http_framing *f,
    size_t hlen, int64_t deadline_ms)
{
	size_t n = x->have - hlen;

	memmove(x->buf, x->buf + hlen, n);
	x->have = n;
	switch (f->kind) {
	case HTTP_BODY_NONE:
		return n == 0 ? 0 : 1;
	case HTTP_BODY_LENGTH:
		return body_length(h, x, n, f->length, deadline_ms);
	case HTTP_BODY_CHUNKED:
		return body_chunked(h, x, n, deadline_ms);
	case HTTP_BODY_UNTIL_CLOSE:
		return body_until_close(h, x, n, deadline_ms);
	}
	return -1;
}

/*
 * Sends the request and reads the response on the connection there is.
 * Returns 0 (the connection is closed unless the response left it reusable),
 * or -1 with errno and h->why; *status is set once a final head arrived.
 */
static int
exchange(struct httpc *h, struct exchange *x, const char *head,
    size_t head_len, const char *body, size_t body_len, int64_t deadline_ms,
    int *status)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)(uintptr_t)head, .iov_len = head_len },
		{ .iov_base = (void *)(uintptr_t)body, .iov_len = body_len },
	};
	struct http_framing f;
	int hlen, reuse, rc;

	x->have = 0;
	x->answered = 0;
	x->len = 0;
	if (io_writev_all(&h->io, iov, 2, stall_ms(deadline_ms)) < 0) {
		snprintf(h->why, sizeof(h->why), "sending: %s",
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		return -1;
	}
	if ((hlen = read_head(h, x, deadline_ms)) < 0)
		return -1;
	*status = x->resp.status;
	/* The head decides whether the connection can carry another request;
	 * the framing is taken before read_body() overwrites the head.  A
	 * response to HEAD has no body whatever its fields say. */
	reuse = http_keep_alive(x->resp.minor_version, x->resp.headers,
	    x->resp.num_headers);
	if (http_response_framing(&x->resp, head_len >= 5 &&
	    memcmp(head, "HEAD ", 5) == 0, &f) < 0) {
		/* The status has been said, but where the body ends is not:
		 * nothing after the head can be trusted. */
		snprintf(h->why, sizeof(h->why), "ambiguous response framing");
		errno = EPROTO;
		return -1;
	}
	if (x->resp.status == 101) {
		/* Switching protocols: what follows is not HTTP. */
		httpc_close(h);
		return 0;
	}
	if ((rc = read_body(h, x, &f, (size_t)hlen, deadline_ms)) < 0)
		return -1;
	if (rc == 0 && reuse)
		h->idle_since_ms = io_now_ms();
	else
		httpc_close(h);
	return 0;
}

int
httpc_request(struct httpc *h, const char *head, size_t head_len,
    const char *body, size_t body_len, int64_t deadline_ms, int *status,
    char *body_out, size_t cap, size_t *body_len_out)
{
	struct exchange *x;
	int reused, e;

	*status = 0;
	*body_len_out = 0;
	x = malloc(sizeof(*x));
	if (x == NULL) {
		snprintf(h->why, sizeof(h->why), "out of memory");
		goto fail;
	}
	x->out = body_out;
	x->cap = body_out != NULL ? cap : 0;
	for (int tries = 0;; tries++) {
		if (h->aborted) {
			snprintf(h->why, sizeof(h->why), "cancelled");
			errno = ECANCELED;
			goto fail;
		}
		reused = h->io.fd >= 0;
		if (reused && !usable(h)) {
			httpc_close(h);
			reused = 0;
		}
		if (!reused && dial(h, deadline_ms) < 0)
			goto fail;
		if (exchange(h, x, head, head_len, body, body_len, deadline_ms,
		    status) == 0)
			break;
		/* A kept connection the server closed while it sat idle: no
		 * byte came back, so say it again on a new connection, once,
		 * as RFC 9112 §9.3.1 allows.  The caller's requests are
		 * idempotent or de-duplicated (a webhook's request_id). */
		if (reused && !x->answered && tries == 0 && errno != ETIMEDOUT &&
		    !h->aborted) {
			httpc_close(h);
			continue;
		}
		*body_len_out = x->len;
		goto fail;
	}
	*body_len_out = x->len;
	free(x);
	return 0;
fail:
	e = errno;
	if (h->aborted) {
		/* Whatever the shut-down socket made of it. */
		snprintf(h->why, sizeof(h->why), "cancelled");
		e = ECANCELED;
	}
	httpc_close(h);
	free(x);
	errno = e;
	return -1;
}
