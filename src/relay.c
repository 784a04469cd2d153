/*
 * relay.c — backend response -> client, with no added delay.
 *
 * The upstream body is read into one buffer per connection, de-framed in
 * place, and (for text/event-stream) cut into events by the SSE scanner.
 * Every complete event is written to the client in the same loop iteration
 * in which its last byte arrived; only the current incomplete event is ever
 * held, so memory per stream does not grow with the length of the answer.
 *
 * The response head is held back until the first body byte is ready: until
 * then a failure can still be answered with a clean 502/504, and holding it
 * costs nothing, because the head and the first event leave in one write.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "reply.h"
#include "sse.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0     /* not Linux: a client half-close shows as EOF on read */
#endif

/* How the body goes to the client. */
enum out_framing {
	OUT_AS_IS,      /* same framing as upstream: Content-Length or no body */
	OUT_CHUNKED,    /* HTTP/1.1 client, length unknown or events re-framed */
	OUT_CLOSE,      /* HTTP/1.0 client: the body ends when we close */
};

/* Why the loop stopped. */
enum outcome {
	MORE,           /* go on reading */
	DONE,           /* the body ended as framed and is all at the client */
	CLIENT_GONE,
	UPSTREAM_CUT,   /* closed, reset or malformed before the end */
	TIMED_OUT,
};

struct relay {
	struct conn *c;
	struct upstream *u;
	const struct config *cfg;
	const struct relay_request *rq;
	struct relay_result *res;

	struct http_framing up;         /* upstream body framing */
	struct http_chunked dechunk;
	uint64_t remaining;             /* for HTTP_BODY_LENGTH */
	int upstream_reusable;          /* nothing odd seen on the connection */
	enum out_framing out;

	size_t head_len;                /* held client head in c->out */
	int head_sent;

	/* c->relay[0..pending) is the incomplete event (already scanned). */
	size_t pending;
	int spill;                      /* passing an oversized event through */
	struct sse_scanner scan;
	int64_t last_event_us;          /* when the last events left (metrics) */
	int dropped_last;               /* the meter dropped the last event, so
	                                   the LF that completes its CRLF goes
	                                   too */

	int64_t first_deadline_ms;      /* until the first body byte is out */
	int64_t idle_ms;                /* between body reads after that */
	const char *why;                /* what went wrong, for the client */
};

/* ---- watching the client ----------------------------------------------------- */

/* What to poll the client for: a hang-up always; readable bytes only while
 * there is room to keep them (they are the next pipelined request). */
static short
client_events(const struct conn *c)
{
	return (short)(POLLRDHUP | (c->in_len < c->in_cap ? POLLIN : 0));
}

/* The client socket reported something: is the client gone?  Bytes it sent
 * are kept for the next request. */
static int
client_gone(struct conn *c, short revents)
{
	if (revents & (POLLERR | POLLHUP | POLLRDHUP))
		return 1;
	if (!(revents & POLLIN) || c->in_len >= c->in_cap)
		return 0;
	/* Through the transport: on TLS, a close_notify is a goodbye too,
	 * and bytes are kept decrypted. */
	ssize_t n = c->io.ops->read(&c->io, c->in + c->in_len,
	    c->in_cap - c->in_len);
	if (n > 0) {
		c->in_len += (size_t)n;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return 1;
}

/*
 * Waits until the upstream has something to read, watching the client.
 * Returns 1 (upstream readable), 0 (deadline passed) or -1 (client gone).
 */
static int
wait_upstream(struct conn *c, struct upstream *u, int64_t deadline_ms)
{
	if (u->io.ops->pending(&u->io) > 0)
		return 1;
	struct pollfd p[2] = {
		{ .fd = u->io.fd, .events = u->io.want ? u->io.want : POLLIN },
		{ .fd = c->io.fd, .events = client_events(c) },
	};
	for (;;) {
		int n = poll(p, 2, io_poll_timeout(deadline_ms));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (p[1].revents) {
			if (client_gone(c, p[1].revents))
				return -1;
			p[1].events = client_events(c);
		}
		if (p[0].revents)
			return 1;
	}
}

/* ---- writing to the client --------------------------------------------------- */

/* Body bytes on their way to the client: pieces of the relay buffer (events
 * with what the meter removed left out), sent in one write as one chunk. */
#define OUT_PIECES 32

struct pieces {
	int n;
	int events;             /* complete events among them (metrics) */
	size_t total;
	struct iovec v[OUT_PIECES];
};

static void
pieces_reset(struct pieces *p)
{
	p->n = 0;
	p->events = 0;
	p->total = 0;
}

/* Adds data[0..len); adjacent pieces merge, so an unmetered stream is always
 * one piece. */
static void
piece_add(struct pieces *p, const char *data, size_t len)
{
	struct iovec *last = p->n > 0 ? &p->v[p->n - 1] : NULL;

	if (len == 0)
		return;
	if (last != NULL && (const char *)last->iov_base + last->iov_len == data)
		last->iov_len += len;
	else
		p->v[p->n++] = (struct iovec){ (void *)(uintptr_t)data, len };
	p->total += len;
}

/*
 * Sends the pieces as body bytes, preceded by the held head the first time
 * and followed by the end of the body when `last`.  One write for all of it.
 * Returns 0, or -1 when the client is gone or stalled past write_timeout.
 */
static int
send_pieces(struct relay *r, const struct pieces *p, int last)
{
	struct iovec iov[OUT_PIECES + 4];
	int n = 0;
	size_t len = p->total;
	char size_line[24];

	if (!r->head_sent)
		iov[n++] = (struct iovec){ r->c->out, r->head_len };
	if (len > 0) {
		if (r->out == OUT_CHUNKED) {
			size_t sl = http_chunk_size_line(size_line, len);
			iov[n++] = (struct iovec){ size_line, sl };
		}
		for (int i = 0; i < p->n; i++)
			iov[n++] = p->v[i];
		if (r->out == OUT_CHUNKED)
			iov[n++] = (struct iovec){ (void *)(uintptr_t)"\r\n", 2 };
	}
	if (last && r->out == OUT_CHUNKED)
		iov[n++] = (struct iovec){ (void *)(uintptr_t)"0\r\n\r\n", 5 };
	if (n == 0)
		return 0;
	if (io_writev_all(&r->c->io, iov, n, r->cfg->write_timeout_ms) < 0)
		return -1;
	if (!r->head_sent) {
		r->head_sent = 1;
		r->res->status = r->c->resp.status;
	}
	if (len > 0) {
		/* Gaps between events as the client gets them: the first of
		 * this write after the last one written, the rest at once. */
		int64_t now = io_now_us();
		int gaps = p->events;
		if (r->res->ttft_us < 0) {
			r->res->ttft_us = now - r->rq->sent_us;
			gaps--;
		} else if (r->res->stream && gaps > 0) {
			metrics_inter_token(r->rq->backend_index,
			    now - r->last_event_us, 1);
			gaps--;
		}
		if (r->res->stream && gaps > 0)
			metrics_inter_token(r->rq->backend_index, 0,
			    (uint64_t)gaps);
		r->last_event_us = now;
	}
	r->res->bytes += len;
	return 0;
}

static int
send_client(struct relay *r, const char *data, size_t len, int last)
{
	struct pieces p;

	pieces_reset(&p);
	piece_add(&p, data, len);
	return send_pieces(r, &p, last);
}

/* An error the client must see after the stream started: an SSE event in the
 * OpenAI error shape, never followed by [DONE] or by the end of the chunked
 * body, so neither an SSE client nor an HTTP client can take it for success. */
static void
send_stream_error(struct relay *r, int status, const char *message)
{
	char ev[REPLY_MAX];

	if (!r->res->stream || r->spill)
		return;     /* mid-event: any bytes now would corrupt that event */
	memcpy(ev, "data: ", 6);
	size_t n = 6 + reply_error_body(ev + 6, sizeof(ev) - 8, status, message,
	    NULL);
	ev[n++] = '\n';
	ev[n++] = '\n';
	(void)send_client(r, ev, n, 0);
}

/* A failure before any byte went to the client: a plain error reply. */
static void
send_error_reply(struct relay *r, int status, const char *message)
{
	if (r->res->failed_over)
		return;
	char buf[REPLY_MAX];
	int flags = 0;

	if (!r->rq->client_keep)
		flags |= REPLY_CLOSE;
	else if (r->rq->client_minor == 0)
		flags |= REPLY_KEEP_ALIVE;
	if (r->rq->head_request)
		flags |= REPLY_NO_BODY;
	size_t n = reply_error(buf, sizeof(buf), status, message, NULL,
	    conn_trace_id(r->c), NULL, flags);
	if (io_write_all(&r->c->io, buf, n, r->cfg->write_timeout_ms) == 0) {
		r->res->status = status;
		r->res->client_keep = r->rq->client_keep;
	}
}

/*
 * The backend failed and nothing has reached the client yet: another backend
 * may take the request (the caller's failover decides), or the client gets
 * `status` with `message`.
 */
static void
fail_early(struct relay *r, enum upstream_fault fault, unsigned retry_on,
    int status, const char *message)
{
	r->res->fault = fault;
	r->res->finish = fault == FAULT_TIMEOUT ? "timeout" : "upstream_error";
	if (r->rq->failover != NULL && r->rq->failover(r->rq->failover_ctx,
	    retry_on)) {
		r->res->failed_over = 1;
		return;
	}
	send_error_reply(r, status, message);
}

/* Retry-After in seconds (RFC 9110 §10.2.3); an HTTP-date is not worth the
 * parsing here: 0. */
static int64_t
retry_after_ms(const struct http_response *resp)
{
	const struct http_header *h = http_header_find(resp->headers,
	    resp->num_headers, "Retry-After", NULL);
	int64_t s = 0;

	if (h == NULL || h->value_len == 0 || h->value_len > 9)
		return 0;
	for (size_t i = 0; i < h->value_len; i++) {
		if (h->value[i] < '0' || h->value[i] > '9')
			return 0;
		s = s * 10 + (h->value[i] - '0');
	}
	return s * 1000;
}

/* ---- response head ----------------------------------------------------------- */

static int
grow_relay_buffer(struct conn *c, size_t want)
{
	return conn_reserve(&c->relay, &c->relay_cap, want);
}

/*
 * Reads the response head into c->relay and parses it into c->resp, skipping
 * interim 1xx responses.  Returns the head length, with any body bytes that
 * came with it after it in c->relay[head..*have); or 0 after setting
 * r->res->finish / retry_fresh and answering the client if it is still there.
 */
static size_t
read_response_head(struct relay *r, size_t *have)
{
	struct conn *c = r->c;
	size_t len = 0;
	int answered = 0;       /* the backend has sent something */

	for (;;) {
		int w = wait_upstream(c, r->u, io_earliest(r->first_deadline_ms,
		    r->rq->deadline_ms));
		if (w < 0) {
			r->res->finish = "client_abort";
			return 0;
		}
		if (w == 0) {
			fail_early(r, FAULT_TIMEOUT, RETRY_ON_TIMEOUT, 504,
			    "the backend did not answer in time (first_token_timeout)");
			return 0;
		}
		if (len == c->relay_cap) {
			if (len >= CAP_RESPONSE_HEAD_BYTES ||
			    grow_relay_buffer(c, c->relay_cap * 2) < 0) {
				r->res->finish = "upstream_error";
				send_error_reply(r, 502,
				    "the backend's response head is too large");
				return 0;
			}
		}
		ssize_t n = r->u->io.ops->read(&r->u->io, c->relay + len,
		    c->relay_cap - len);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			continue;
		if (n <= 0) {
			/* A kept-alive connection the backend closed just as we
			 * reused it: the request was not processed, so it may go
			 * again on a new connection. */
			if (r->u->reused && !answered) {
				r->res->retry_fresh = 1;
				return 0;
			}
			fail_early(r, FAULT_NO_ANSWER, RETRY_ON_5XX, 502, n == 0 ?
			    "the backend closed the connection without a response" :
			    "the backend connection failed before a response");
			return 0;
		}
		len += (size_t)n;
		answered = 1;

		/* Interim 1xx heads (100 Continue, 103 Early Hints) are not for
		 * our client; the final head may have come in the same read. */
		int h;
		while ((h = http_parse_response(c->relay, len, &c->resp)) > 0 &&
		    c->resp.status >= 100 && c->resp.status < 200 &&
		    c->resp.status != 101) {
			memmove(c->relay, c->relay + h, len - (size_t)h);
			len -= (size_t)h;
		}
		if (h == 0)
			continue;
		if (h < 0 || c->resp.status == 101) {
			fail_early(r, FAULT_NO_ANSWER, RETRY_ON_5XX, 502,
			    "the backend sent a malformed response");
			return 0;
		}
		*have = len;
		return (size_t)h;
	}
}

static int
is_event_stream(const struct http_response *resp)
{
	const struct http_header *ct = http_header_find(resp->headers,
	    resp->num_headers, "Content-Type", NULL);
	static const char sse[] = "text/event-stream";

	return ct != NULL && ct->value_len >= sizeof(sse) - 1 &&
	    http_token_eq(ct->value, sizeof(sse) - 1, sse) &&
	    (ct->value_len == sizeof(sse) - 1 ||
	     ct->value[sizeof(sse) - 1] == ';' ||
	     ct->value[sizeof(sse) - 1] == ' ');
}

/* Headers the client gets from the backend: all but hop-by-hop ones, and
 * those we set ourselves. */
static int
forward_response_header(const struct relay *r, const struct http_header *h)
{
	const struct http_response *resp = &r->c->resp;

	if (http_is_hop_by_hop(h, resp->headers, resp->num_headers))
		return 0;
	if (http_token_eq(h->name, h->name_len, "X-Request-Id"))
		return 0;
	if (r->out != OUT_AS_IS &&
	    http_token_eq(h->name, h->name_len, "Content-Length"))
		return 0;
	if (r->res->stream &&
	    (http_token_eq(h->name, h->name_len, "Cache-Control") ||
	     http_token_eq(h->name, h->name_len, "X-Accel-Buffering")))
		return 0;
	return 1;
}

/* Appends the string s at o + n; returns the new length. */
static size_t
put(char *o, size_t n, const char *s)
{
	size_t len = strlen(s);

	memcpy(o + n, s, len);
	return n + len;
}

/* Builds the client's response head in c->out.  Returns 0 or -1 (memory). */
static int
build_client_head(struct relay *r, size_t upstream_head_len)
{
	struct conn *c = r->c;
	const struct http_response *resp = &c->resp;
	size_t need = upstream_head_len + 256 + sizeof(c->client_request_id);

	if (conn_reserve(&c->out, &c->out_cap, need) < 0)
		return -1;
	char *o = c->out;
	size_t n = 0;
	/* By hand, not sprintf: this runs once per proxied request.  The
	 * status is three digits (http_parse_response checks). */
	n = put(o, n, "HTTP/1.1 ");
	o[n++] = (char)('0' + resp->status / 100 % 10);
	o[n++] = (char)('0' + resp->status / 10 % 10);
	o[n++] = (char)('0' + resp->status % 10);
	o[n++] = ' ';
	if (resp->reason_len > 0) {
		memcpy(o + n, resp->reason, resp->reason_len);
		n += resp->reason_len;
	} else {
		n = put(o, n, http_reason(resp->status));
	}
	n = put(o, n, "\r\n");
	for (size_t i = 0; i < resp->num_headers; i++) {
		const struct http_header *h = &resp->headers[i];
		if (!forward_response_header(r, h))
			continue;
		memcpy(o + n, h->name, h->name_len);
		n += h->name_len;
		memcpy(o + n, ": ", 2);
		n += 2;
		memcpy(o + n, h->value, h->value_len);
		n += h->value_len;
		memcpy(o + n, "\r\n", 2);
		n += 2;
	}
	n = put(o, n, "X-Request-Id: ");
	n = put(o, n, conn_trace_id(c));
	n = put(o, n, "\r\n");
	if (r->res->stream)
		n = put(o, n, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	if (r->out == OUT_CHUNKED)
		n = put(o, n, "Transfer-Encoding: chunked\r\n");
	if (r->out == OUT_CLOSE || !r->rq->client_keep)
		n = put(o, n, "Connection: close\r\n");
	else if (r->rq->client_minor == 0)
		n = put(o, n, "Connection: keep-alive\r\n");
	memcpy(o + n, "\r\n", 2);
	r->head_len = n + 2;
	return 0;
}

/* ---- body -------------------------------------------------------------------- */

/*
 * One complete event: what the client gets of it goes into `out`.  Without a
 * meter that is all of it; with one, the meter reads it and may drop it or
 * cut a member from it (the usage the proxy asked for, which the client did
 * not).  The lone LF that completes the CRLF of an event reported at its CR
 * shares that event's fate.
 */
static void
meter_event(struct relay *r, struct pieces *out, const char *ev, size_t len)
{
	struct usage_verdict v = { .action = USAGE_FORWARD };

	if (r->rq->meter != NULL) {
		if (sse_scan_lf_tail(&r->scan))
			v.action = r->dropped_last ? USAGE_DROP : USAGE_FORWARD;
		else
			usage_event(r->rq->meter, ev, len, &v);
		r->dropped_last = v.action == USAGE_DROP;
	}
	switch (v.action) {
	case USAGE_FORWARD:
		piece_add(out, ev, len);
		break;
	case USAGE_CUT:
		piece_add(out, ev, v.cut_at);
		piece_add(out, ev + v.cut_at + v.cut_len, len - v.cut_at - v.cut_len);
		break;
	case USAGE_DROP:
		return;
	}
	/* A lone LF completing a CRLF is not an event of its own. */
	if (!sse_scan_lf_tail(&r->scan))
		out->events++;
}

/* Keeps the last CAP_USAGE_TAIL bytes of a non-streamed body: OpenAI-shaped
 * bodies end with their "usage". */
static void
keep_tail(struct relay *r, const char *p, size_t n)
{
	struct conn *c = r->c;

	if (r->rq->meter == NULL || n == 0 ||
	    conn_reserve(&c->tail, &c->tail_cap, CAP_USAGE_TAIL) < 0)
		return;
	if (n >= CAP_USAGE_TAIL) {
		memcpy(c->tail, p + n - CAP_USAGE_TAIL, CAP_USAGE_TAIL);
		c->tail_len = CAP_USAGE_TAIL;
		return;
	}
	if (c->tail_len + n > CAP_USAGE_TAIL) {
		size_t drop = c->tail_len + n - CAP_USAGE_TAIL;
		memmove(c->tail, c->tail + drop, c->tail_len - drop);
		c->tail_len -= drop;
	}
	memcpy(c->tail + c->tail_len, p, n);
	c->tail_len += n;
}

/* Events sent before the meter read them (offsets into c->relay): it reads
 * them right after the write, in order, before any later event. */
#define UNREAD_MAX 128     /* a read of 8 KiB holds about 50 chunks */

struct unread {
	int n;
	uint32_t at[UNREAD_MAX];        /* the relay buffer is far smaller */
	uint32_t len[UNREAD_MAX];
};

/*
 * Sends what is collected, then lets the meter read the events that went out
 * unread.  They are metered even when the client is gone: the record counts
 * what the backend sent, as it did when they were metered first.
 */
static int
send_then_meter(struct relay *r, struct pieces *out, struct unread *u,
    int last)
{
	int rc = send_pieces(r, out, last);

	for (int i = 0; i < u->n; i++) {
		struct usage_verdict v;
		/* USAGE_FORWARD: usage_may_change() said so. */
		usage_event(r->rq->meter, r->c->relay + u->at[i], u->len[i], &v);
	}
	u->n = 0;
	pieces_reset(out);
	return rc;
}

/*
 * Forwards the complete events in c->relay[0..avail) — the scanner has already
 * seen [0..r->pending) — and keeps the incomplete rest at the front.  `last`:
 * the body ends here; the rest (a last event without its blank line) goes as
 * it is, with the end of the body, in the same write.
 *
 * The client gets its bytes before the meter reads them: an event the meter
 * cannot change (usage_may_change) is collected unread and metered after the
 * write.  Only an event the meter may drop or cut waits for its verdict; the
 * unread events before it are sent (and metered) first, so the meter still
 * reads every event in order.
 */
static int
forward_events(struct relay *r, size_t avail, int last)
{
	char *buf = r->c->relay;
	size_t pos = r->pending, complete = 0;
	struct usage_meter *meter = r->rq->meter;

	if (r->spill) {
		/* The oversized event's bytes go out as they come; once it ends
		 * the rest is scanned normally. */
		size_t k = sse_scan(&r->scan, buf, avail);
		size_t through = k > 0 ? k : avail;
		if (send_client(r, buf, through, 0) < 0)
			return -1;
		if (k > 0)
			r->spill = 0;
		memmove(buf, buf + through, avail - through);
		avail -= through;
		pos = 0;
	}
	/* Not zeroed whole: their arrays are filled before they are read,
	 * and this runs for every read of a stream. */
	struct pieces out;
	struct unread unread;
	pieces_reset(&out);
	unread.n = 0;
	while (pos < avail) {
		size_t k = sse_scan(&r->scan, buf + pos, avail - pos);
		if (k == 0)
			break;
		/* The event began where the last one ended, which may be
		 * bytes scanned in earlier reads. */
		pos += k;
		const char *ev = buf + complete;
		size_t len = pos - complete;
		if (meter != NULL && !sse_scan_lf_tail(&r->scan) &&
		    !usage_may_change(meter, ev, len)) {
			piece_add(&out, ev, len);
			out.events++;
			unread.at[unread.n] = (uint32_t)complete;
			unread.len[unread.n++] = (uint32_t)len;
			r->dropped_last = 0;
		} else {
			if (unread.n > 0 && !sse_scan_lf_tail(&r->scan) &&
			    send_then_meter(r, &out, &unread, 0) < 0)
				return -1;
			meter_event(r, &out, ev, len);
		}
		complete = pos;
		if ((out.n > OUT_PIECES - 2 || unread.n == UNREAD_MAX) &&
		    send_then_meter(r, &out, &unread, 0) < 0)
			return -1;
	}
	if (last) {
		/* Byte for byte as the backend sent it. */
		piece_add(&out, buf + complete, avail - complete);
		if (send_then_meter(r, &out, &unread, 1) < 0)
			return -1;
	} else if ((out.total > 0 || unread.n > 0) &&
	    send_then_meter(r, &out, &unread, 0) < 0) {
		return -1;
	}
	memmove(buf, buf + complete, avail - complete);
	r->pending = avail - complete;
	return 0;
}

/*
 * Makes room for more bytes of an incomplete event: the buffer doubles up to
 * CAP_SSE_EVENT_BYTES; an event larger than that is sent on unexamined as its
 * bytes arrive (the client still gets every byte; only we do not look at it).
 */
static int
make_room(struct relay *r)
{
	struct conn *c = r->c;

	if (r->pending < c->relay_cap)
		return 0;
	if (c->relay_cap < CAP_SSE_EVENT_BYTES &&
	    grow_relay_buffer(c, c->relay_cap * 2 > CAP_SSE_EVENT_BYTES ?
	    CAP_SSE_EVENT_BYTES : c->relay_cap * 2) == 0)
		return 0;
	log_debug("%s: event larger than %d bytes passed through unexamined",
	    c->request_id, CAP_SSE_EVENT_BYTES);
	if (send_client(r, c->relay, r->pending, 0) < 0)
		return -1;
	r->pending = 0;
	r->spill = 1;
	return 0;
}

/*
 * Takes `fresh` new raw bytes at c->relay[pending..), removes the transfer
 * framing, and sends on what is complete.  `eof`: the upstream closed.
 */
static enum outcome
consume(struct relay *r, size_t fresh, int eof)
{
	char *p = r->c->relay + r->pending;
	size_t n = fresh;
	int done = 0;

	switch (r->up.kind) {
	case HTTP_BODY_CHUNKED:
		if (n > 0) {
			size_t out;
			ssize_t used = http_chunked_decode(&r->dechunk, p, n, &out);
			if (used < 0) {
				r->why = "the backend sent malformed chunked framing";
				return UPSTREAM_CUT;
			}
			if ((size_t)used < n)
				r->upstream_reusable = 0;   /* bytes after the end */
			n = out;
		}
		done = http_chunked_done(&r->dechunk);
		break;
	case HTTP_BODY_LENGTH:
		if (n > r->remaining) {
			n = (size_t)r->remaining;
			r->upstream_reusable = 0;
		}
		r->remaining -= n;
		done = r->remaining == 0;
		break;
	case HTTP_BODY_UNTIL_CLOSE:
		done = eof;
		r->upstream_reusable = 0;
		break;
	case HTTP_BODY_NONE:
		/* Bytes after a head that has no body (HEAD, 204, 304) are not
		 * the client's: a backend that sends them cannot be trusted to
		 * frame the next response either. */
		if (n > 0)
			r->upstream_reusable = 0;
		n = 0;
		done = 1;
		break;
	}

	if (r->res->stream) {
		/* A last event without its blank line still goes out, byte for
		 * byte as the backend sent it, with the end of the body. */
		if (forward_events(r, r->pending + n, done) < 0)
			return CLIENT_GONE;
	} else {
		keep_tail(r, p, n);
		if ((n > 0 || done) && send_client(r, p, n, done) < 0)
			return CLIENT_GONE;
	}
	if (done)
		return DONE;
	if (eof) {
		r->why = "the backend closed the stream before it ended";
		return UPSTREAM_CUT;
	}
	return make_room(r) < 0 ? CLIENT_GONE : MORE;
}

/* Reads and relays the body until it ends, the client leaves, the backend
 * fails, or a deadline passes.  c->relay[0..have) holds body bytes that came
 * with the head. */
static enum outcome
relay_body(struct relay *r, size_t have)
{
	struct conn *c = r->c;
	size_t fresh = have;
	int eof = 0;
	int64_t idle_deadline = -1;

	for (;;) {
		enum outcome o = consume(r, fresh, eof);
		if (o != MORE)
			return o;

		/* Before the first byte reaches the client the first-token
		 * deadline applies; after it, the idle one, restarted by every
		 * read that brings body bytes. */
		if (fresh > 0 && r->idle_ms > 0)
			idle_deadline = io_now_ms() + r->idle_ms;
		int64_t deadline = r->res->bytes > 0 ? idle_deadline :
		    r->first_deadline_ms;
		int w = wait_upstream(c, r->u, io_earliest(deadline, r->rq->deadline_ms));
		if (w < 0)
			return CLIENT_GONE;
		if (w == 0) {
			r->why = r->res->bytes > 0 ?
			    "the backend sent nothing within idle_timeout" :
			    "the backend did not answer in time (first_token_timeout)";
			return TIMED_OUT;
		}
		ssize_t n = r->u->io.ops->read(&r->u->io, c->relay + r->pending,
		    c->relay_cap - r->pending);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				fresh = 0;
				continue;
			}
			r->why = "the backend connection failed mid-response";
			return UPSTREAM_CUT;
		}
		fresh = (size_t)n;
		eof = n == 0;
	}
}

void
relay_response(struct conn *c, struct upstream *u,
    const struct relay_request *rq, struct relay_result *res)
{
	const struct config *cfg = c->srv->cfg;
	struct relay r = {
		.c = c, .u = u, .cfg = cfg, .rq = rq, .res = res,
		.upstream_reusable = 1,
		.idle_ms = cfg->stream_idle_timeout_ms,
		.first_deadline_ms = cfg->first_token_timeout_ms > 0 ?
		    rq->sent_us / 1000 + cfg->first_token_timeout_ms : -1,
	};
	size_t have = 0;

	*res = (struct relay_result){ .ttft_us = -1, .finish = "stop" };
	if (grow_relay_buffer(c, CAP_RELAY_BUF_INIT) < 0) {
		res->finish = "error";
		send_error_reply(&r, 502, "out of memory");
		upstream_release(u, 0);
		return;
	}
	size_t head = read_response_head(&r, &have);
	if (head == 0) {
		upstream_release(u, 0);
		return;
	}
	res->upstream_status = c->resp.status;
	if (c->resp.status == 429 || c->resp.status == 503)
		res->retry_after_ms = retry_after_ms(&c->resp);
	/* A saturated or failing backend's answer may go unseen: another
	 * backend gets the request instead. */
	if ((c->resp.status == 429 || (c->resp.status >= 502 &&
	    c->resp.status <= 504)) &&
	    rq->failover != NULL && rq->failover(rq->failover_ctx,
	    c->resp.status == 429 ? RETRY_ON_429 : RETRY_ON_5XX)) {
		res->failed_over = 1;
		res->finish = "upstream_error";
		upstream_release(u, 0);
		return;
	}
	if (http_response_framing(&c->resp, rq->head_request, &r.up) < 0) {
		res->finish = "upstream_error";
		send_error_reply(&r, 502, "the backend's response framing is ambiguous");
		upstream_release(u, 0);
		return;
	}
	r.remaining = r.up.length;
	res->stream = r.up.kind != HTTP_BODY_NONE && is_event_stream(&c->resp);
	if (r.up.kind == HTTP_BODY_NONE ||
	    (r.up.kind == HTTP_BODY_LENGTH && !res->stream))
		r.out = OUT_AS_IS;
	else
		r.out = rq->client_minor >= 1 ? OUT_CHUNKED : OUT_CLOSE;
	if (build_client_head(&r, head) < 0) {
		res->finish = "error";
		send_error_reply(&r, 502, "out of memory");
		upstream_release(u, 0);
		return;
	}
	memmove(c->relay, c->relay + head, have - head);

	c->tail_len = 0;
	enum outcome o = relay_body(&r, have - head);
	if (rq->meter != NULL && !res->stream && c->tail_len > 0)
		usage_body_tail(rq->meter, c->tail, c->tail_len);
	switch (o) {
	case DONE:
		res->client_keep = rq->client_keep && r.out != OUT_CLOSE;
		break;
	case CLIENT_GONE:
		res->finish = "client_abort";
		break;
	case UPSTREAM_CUT:
	case TIMED_OUT:
		if (!r.head_sent) {
			/* The head was held: nothing reached the client yet. */
			if (o == TIMED_OUT)
				fail_early(&r, FAULT_TIMEOUT, RETRY_ON_TIMEOUT, 504, r.why);
			else
				fail_early(&r, FAULT_NO_ANSWER, RETRY_ON_5XX, 502, r.why);
			break;
		}
		res->fault = FAULT_BROKEN;
		res->finish = o == TIMED_OUT ? "timeout" : "upstream_error";
		send_stream_error(&r, o == TIMED_OUT ? 504 : 502, r.why);
		res->client_keep = 0;   /* the body was cut short */
		break;
	case MORE:
		break;
	}
	/* A backend connection is reused only after a response that ended
	 * exactly as framed; anything else and it is closed now, which is
	 * also what tells the backend to stop generating. */
	upstream_release(u, o == DONE && r.upstream_reusable &&
	    http_keep_alive(c->resp.minor_version, c->resp.headers,
	    c->resp.num_headers));
}

int
relay_client_wait(struct conn *c, int64_t deadline_ms)
{
	struct pollfd p = { .fd = c->io.fd, .events = client_events(c) };

	for (;;) {
		int n = poll(&p, 1, io_poll_timeout(deadline_ms));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (client_gone(c, p.revents))
			return -1;
		p.events = client_events(c);
	}
}
