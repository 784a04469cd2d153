/*
 * conn.c — one client connection: routing, the request body, the proxy's own
 * endpoints and error replies, and handing the request to a backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "relay.h"
#include "reply.h"
#include "server.h"
#include "tls.h"
#include "tlsconf.h"
#include "upstream.h"
#include "usage.h"
#include "webhook.h"

/* What one request is, as far as the proxy is concerned. */
struct request {
	int64_t t0_us;              /* head complete */
	int64_t t0_wall_ms;         /* the same, wall clock, for the record */
	int64_t deadline_ms;        /* [routing] timeout, -1 for none */
	struct http_framing framing;
	const char *path;           /* origin-form target, query included */
	size_t path_len;
	size_t route_len;           /* path_len up to '?' */
	int keep;                   /* the client wants the connection kept */
	size_t consumed;            /* bytes of c->in this request used */

	/* For the access line and the metrics. */
	int status;
	const char *backend;
	int backend_index;          /* its metrics slot, -1: none */
	int stream;
	uint64_t bytes;
	int64_t ttft_us;
	const char *finish;
	char finish_reason[24];     /* the backend's, when finish points here */
	const char *model;          /* the body's "model", or NULL */
	size_t model_len;
	int64_t prompt_tokens;      /* -1: not metered */
	int64_t completion_tokens;
	const struct auth_key *key; /* the client's API key (auth on), or NULL;
	                               in the config this request was served
	                               with */
};

/* ---- life cycle --------------------------------------------------------------- */

struct conn *
conn_new(int fd, const struct sockaddr *peer, int tls)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	struct server *srv = server_acquire();
	size_t cap = CAP_HEAD_BUF_INIT;
	if (cap > srv->cfg->max_header_bytes)
		cap = srv->cfg->max_header_bytes;
	c->in = malloc(cap);
	if (c->in == NULL) {
		server_release(srv);
		free(c);
		return NULL;
	}
	c->in_cap = cap;
	c->srv = srv;
	io_init_plain(&c->io, fd);
	const struct tls_server_creds *creds = tls ? tlsconf_server(srv->tls) : NULL;
	if (creds != NULL) {
		/* BearSSL's context and its full-duplex record buffer: one
		 * allocation, freed by conn_free (tls.h has the size).  The
		 * credentials are those of this configuration, held for the
		 * connection's life (a reload may bring others). */
		if (tls_server_init(&c->io, fd, creds) < 0) {
			server_release(srv);
			free(c->in);
			free(c);
			return NULL;
		}
		c->tls = srv->tls;
		tlsconf_ref(c->tls);
	}
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)peer;
		inet_ntop(AF_INET, &s4->sin_addr, c->peer, sizeof(c->peer));
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)peer;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof(c->peer));
	} else {
		strcpy(c->peer, "unknown");
	}
	return c;
}

int
conn_reserve(char **buf, size_t *cap, size_t want)
{
	if (*cap >= want)
		return 0;
	char *p = realloc(*buf, want);
	if (p == NULL)
		return -1;
	*buf = p;
	*cap = want;
	return 0;
}

/* The per-request buffers, freed (conn_idle, conn_free). */
static void
free_request_buffers(struct conn *c)
{
	free(c->body);
	c->body = NULL;
	c->body_cap = c->body_len = c->carry_len = 0;
	free(c->json_scratch);
	c->json_scratch = NULL;
	c->json_scratch_bytes = 0;
	free(c->out);
	c->out = NULL;
	c->out_cap = 0;
	free(c->relay);
	c->relay = NULL;
	c->relay_cap = 0;
	free(c->tail);
	c->tail = NULL;
	c->tail_cap = c->tail_len = 0;
	free(c->rewrite);
	c->rewrite = NULL;
	c->rewrite_cap = 0;
}

/* Per-request buffers are dropped while a connection waits idle, so that
 * thousands of idle keep-alive clients cost little memory. */
void
conn_idle(struct conn *c)
{
	free_request_buffers(c);
	/* The input buffer shrinks back too once a large head or a collected
	 * body is gone (what a pipelining client sent after it stays). */
	if (c->in_cap > CAP_HEAD_BUF_INIT && c->in_len <= CAP_HEAD_BUF_INIT) {
		char *p = realloc(c->in, CAP_HEAD_BUF_INIT);
		if (p != NULL) {
			c->in = p;
			c->in_cap = CAP_HEAD_BUF_INIT;
		}
	}
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	io_close(&c->io);
	tlsconf_unref(c->tls);
	free_request_buffers(c);
	free(c->in);
	server_release(c->srv);
	free(c);
}

/* ---- the waiting room's side ------------------------------------------------ */

/* Whether [auth] skip_paths opens the path (route_len: up to its '?'). */
static int
auth_skipped(const struct config *cfg, const char *path, size_t route_len)
{
	for (size_t i = 0; i < cfg->nskip_paths; i++) {
		const char *sp = cfg->skip_paths[i];
		size_t n = strlen(sp);
		if (n > 0 && sp[n - 1] == '*' ? route_len >= n - 1 &&
		    memcmp(path, sp, n - 1) == 0 :
		    route_len == n && memcmp(path, sp, n) == 0)
			return 1;
	}
	return 0;
}

/* The key a request presents: in the first of [auth] header_names that
 * carries one.  Returns its length (0: none), *key into c->in. */
static size_t
presented_key(const struct conn *c, const char **key)
{
	const struct config *cfg = c->srv->cfg;
	size_t len = 0;

	*key = NULL;
	for (size_t i = 0; i < cfg->nauth_headers && len == 0; i++) {
		const struct http_header *h = http_header_find(c->req.headers,
		    c->req.num_headers, cfg->auth_headers[i], NULL);
		if (h != NULL)
			len = auth_extract(h->name, h->name_len, h->value,
			    h->value_len, key);
	}
	return len;
}

/* Whether authenticate() will refuse the request from its head: then it is
 * answered before its body is read, and its body costs no buffer in the
 * waiting room either. */
static int
refused_by_auth(const struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	const char *path, *key, *q;
	size_t path_len, len;
	const struct auth_key *k;

	if (!cfg->auth_enabled || http_target_path(c->req.target,
	    c->req.target_len, &path, &path_len) < 0)
		return 0;
	q = memchr(path, '?', path_len);
	if (auth_skipped(cfg, path, q != NULL ? (size_t)(q - path) : path_len))
		return 0;
	len = presented_key(c, &key);
	return auth_check(&cfg->keys, key, len, (int64_t)time(NULL), &k) !=
	    AUTH_OK;
}

/*
 * The body is collected in the waiting room too, when it is short enough
 * (CAP_BODY_PREREAD), so that a client trickling its body holds no worker:
 * without this, [server] threads slow POSTs would shut everyone else out
 * with 503 for a whole read_timeout.  A longer body, one announced with
 * "Expect: 100-continue" (the client waits for our go-ahead), and a request
 * the worker will refuse anyway go to a worker with the head alone.
 */
enum { PREREAD_NONE, PREREAD_LENGTH, PREREAD_CHUNKED };

static void
preread_start(struct conn *c)
{
	struct http_framing f;
	uint64_t max = c->srv->cfg->max_body_size;

	c->preread = PREREAD_NONE;
	if (http_request_check(&c->req, &f) != 0 ||
	    http_header_find(c->req.headers, c->req.num_headers, "Expect",
	    NULL) != NULL)
		return;
	if (refused_by_auth(c))
		return;
	if (f.kind == HTTP_BODY_LENGTH && f.length <= max &&
	    f.length <= CAP_BODY_PREREAD) {
		c->preread = PREREAD_LENGTH;
		c->preread_until = c->head_len + (size_t)f.length;
	} else if (f.kind == HTTP_BODY_CHUNKED) {
		c->preread = PREREAD_CHUNKED;
		memset(&c->scan, 0, sizeof(c->scan));
		c->scanned = c->head_len;
		c->scan_payload = 0;
	}
}

/* Whether the body is here, as far as the waiting room waits for it.  A
 * chunked body is scanned (decoded into a throwaway copy: the worker decodes
 * c->in itself) as its bytes come; it is done at its end, at an error (the
 * worker answers it), past max_body_size, or at CAP_BODY_PREREAD. */
static int
preread_done(struct conn *c)
{
	char scratch[4096];

	if (c->preread == PREREAD_LENGTH)
		return c->in_len >= c->preread_until;
	if (c->preread != PREREAD_CHUNKED)
		return 1;
	if (c->in_len >= c->head_len + CAP_BODY_PREREAD)
		return 1;
	while (c->scanned < c->in_len) {
		size_t n = c->in_len - c->scanned, out;
		if (n > sizeof(scratch))
			n = sizeof(scratch);
		memcpy(scratch, c->in + c->scanned, n);
		ssize_t used = http_chunked_decode(&c->scan, scratch, n, &out);
		c->scan_payload += out;
		/* A chunk announced past the limit is the worker's 413 now. */
		uint64_t max = c->srv->cfg->max_body_size;
		if (used < 0 || http_chunked_done(&c->scan) ||
		    c->scan_payload > max ||
		    c->scan.remaining > max - c->scan_payload) {
			c->preread = PREREAD_NONE;
			return 1;
		}
		c->scanned += (size_t)used;
	}
	return 0;
}

int
conn_parse_head(struct conn *c)
{
	if (c->in_len == 0)
		return 0;
	/* Parsed again at every call: c->in may have moved as it grew, and
	 * c->req points into it. */
	int r = http_parse_request(c->in, c->in_len, &c->req);
	if (r > 0) {
		if (c->head_len == 0) {
			c->head_len = (size_t)r;
			preread_start(c);
		}
		return preread_done(c);
	}
	if (r < 0)
		return -r;
	if (c->in_len >= c->srv->cfg->max_header_bytes)
		return 431;
	return 0;
}

int
conn_has_input(const struct conn *c)
{
	return io_pending(&c->io) > 0;
}

int
conn_read_head(struct conn *c)
{
	for (;;) {
		/* Room for a head; once it is complete, for a short body too. */
		size_t max = c->srv->cfg->max_header_bytes +
		    (c->head_len > 0 ? CAP_BODY_PREREAD : 0);
		if (c->in_len == c->in_cap) {
			if (c->in_cap >= max)
				break;
			size_t cap = c->in_cap * 2 < max ? c->in_cap * 2 : max;
			if (conn_reserve(&c->in, &c->in_cap, cap) < 0)
				break;
		}
		size_t room = c->in_cap - c->in_len;
		/* Through the transport: on a TLS connection this also runs
		 * the handshake, a step at a time, never waiting. */
		ssize_t n = c->io.ops->read(&c->io, c->in + c->in_len, room);
		if (n > 0) {
			if (c->in_len == 0)
				c->started_ms = io_now_ms();
			c->in_len += (size_t)n;
			/* A short read took all the socket had: with the head
			 * complete, another read would only say EAGAIN. */
			if ((size_t)n < room && conn_parse_head(c) == 1)
				return 1;
			continue;
		}
		if (n == 0) {
			/* A client may send its request and half-close (nc -N,
			 * some health checkers): answer what is complete. */
			return conn_parse_head(c) == 1 ? 1 : -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (c->tls && tls_last_error(&c->io) != 0)
			log_debug("%s: TLS: %s", c->peer,
			    tls_error_text(tls_last_error(&c->io)));
		return -1;
	}
	return conn_parse_head(c);
}

static const char *
head_error_message(int status)
{
	switch (status) {
	case 408: return "the request was not received in time (read_timeout)";
	case 414: return "the request-target is too long";
	case 431: return "the request head is too large (max_header_bytes)";
	case 503: return "the proxy is serving as many requests as it may; retry";
	case 505: return "only HTTP/1.0 and HTTP/1.1 are supported";
	default:  return "malformed HTTP request";
	}
}

/* ---- request ids -------------------------------------------------------------- */

static uint64_t id_prefix;
static _Atomic uint64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

/* A random prefix per process and a counter: unique across restarts without
 * a syscall per request. */
static void
id_init(void)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, &id_prefix, sizeof(id_prefix)) != sizeof(id_prefix)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		id_prefix = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		    (uint64_t)getpid();
	}
	if (fd >= 0)
		close(fd);
}

/* A client's X-Request-Id is kept when it is a sane token, so that one id
 * follows the request through every hop. */
static int
client_id_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == ':'))
			return 0;
	}
	return 1;
}

/* Our id is always generated, even when the client sent one: a client
 * choosing the record's request_id could make a receiver drop its records
 * (or another tenant's) as duplicates. */
static void
set_request_id(struct conn *c)
{
	const struct http_header *h = c->head_len == 0 ? NULL :
	    http_header_find(c->req.headers, c->req.num_headers, "X-Request-Id",
	    NULL);

	c->client_request_id[0] = '\0';
	if (h != NULL && client_id_ok(h->value, h->value_len)) {
		memcpy(c->client_request_id, h->value, h->value_len);
		c->client_request_id[h->value_len] = '\0';
	}
	pthread_once(&id_once, id_init);
	/* "%016llx%016llx", by hand: once per request. */
	static const char hex[] = "0123456789abcdef";
	uint64_t half[2] = { id_prefix, ++id_counter };
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 16; i++)
			c->request_id[k * 16 + i] = hex[(half[k] >> (60 - 4 * i)) & 0xf];
	c->request_id[32] = '\0';
}

const char *
conn_trace_id(const struct conn *c)
{
	return c->client_request_id[0] != '\0' ? c->client_request_id :
	    c->request_id;
}

/* The client's id for the access line and the record: NULL when none. */
static const char *
client_id_or_null(const struct conn *c)
{
	return c->client_request_id[0] != '\0' ? c->client_request_id : NULL;
}

void
conn_reply_now(struct conn *c, int status, const char *message,
    const char *extra_headers)
{
	char buf[REPLY_MAX];

	set_request_id(c);
	if (message == NULL)
		message = head_error_message(status);
	size_t n = reply_error(buf, sizeof(buf), status, message, NULL,
	    conn_trace_id(c), extra_headers, REPLY_CLOSE);
	/* One non-blocking write and a flush that does not wait (stall 0),
	 * through the transport: a TLS client gets a record it can read. */
	struct iovec iov = { buf, n };
	ssize_t sent = c->io.ops->writev(&c->io, &iov, 1);
	if (sent > 0 && c->io.ops->flush(&c->io, 0) < 0)
		sent = -1;

	/* Refusals are requests too: an operator must see saturation and bad
	 * clients in the access log. */
	int parsed = c->head_len > 0;
	struct access_entry e = {
		.request_id = c->request_id,
		.client_request_id = client_id_or_null(c),
		.client = c->peer,
		.method = parsed ? c->req.method : "-",
		.method_len = parsed ? c->req.method_len : 1,
		.target = parsed ? c->req.target : "-",
		.target_len = parsed ? c->req.target_len : 1,
		.status = sent > 0 ? status : 0,
		.backend = "-",
		.ttft_us = -1,
		.finish = "refused",
		.prompt_tokens = -1,
		.completion_tokens = -1,
	};
	log_access(&e);
}

/* ---- replies from the worker ---------------------------------------------------- */

static int method_is(const struct conn *c, const char *m);

static int
reply_flags(const struct conn *c, const struct request *rq)
{
	if (!rq->keep)
		return REPLY_CLOSE;
	return c->req.minor_version == 0 ? REPLY_KEEP_ALIVE : 0;
}

/* Answers with the error JSON: `code` a string code ("model_not_found") or
 * NULL for the status, plus `extra` header lines (or NULL).  `fatal`: the
 * connection cannot carry another request (framing broken, body not read):
 * close after the reply. */
static enum conn_next
reply_failure(struct conn *c, struct request *rq, int status,
    const char *message, const char *code, const char *extra, int fatal)
{
	char buf[REPLY_MAX];

	if (fatal)
		rq->keep = 0;
	size_t n = reply_error(buf, sizeof(buf), status, message, code,
	    conn_trace_id(c), extra, reply_flags(c, rq) |
	    (method_is(c, "HEAD") ? REPLY_NO_BODY : 0));
	rq->finish = "local";
	if (io_write_all(&c->io, buf, n, c->srv->cfg->write_timeout_ms) < 0)
		return CONN_CLOSE;
	rq->status = status;
	if (fatal)
		return CONN_LINGER;
	return rq->keep ? CONN_PARK : CONN_CLOSE;
}

static enum conn_next
fail(struct conn *c, struct request *rq, int status, const char *message,
    int fatal)
{
	return reply_failure(c, rq, status, message, NULL, NULL, fatal);
}

static enum conn_next
fail_with(struct conn *c, struct request *rq, int status, const char *message,
    const char *extra, int fatal)
{
	return reply_failure(c, rq, status, message, NULL, extra, fatal);
}


/* ---- the request target ------------------------------------------------------- */

/* The request-target as the path we route on and send (http.c decides). */
static int
parse_target(struct conn *c, struct request *rq)
{
	if (http_target_path(c->req.target, c->req.target_len, &rq->path,
	    &rq->path_len) < 0)
		return -1;
	const char *q = memchr(rq->path, '?', rq->path_len);
	rq->route_len = q != NULL ? (size_t)(q - rq->path) : rq->path_len;
	return 0;
}

static int
route_is(const struct request *rq, const char *path)
{
	size_t n = strlen(path);
	return rq->route_len == n && memcmp(rq->path, path, n) == 0;
}

static int
method_is(const struct conn *c, const char *m)
{
	size_t n = strlen(m);
	return c->req.method_len == n && memcmp(c->req.method, m, n) == 0;
}

/* ---- request body ----------------------------------------------------------------- */

static int
ensure_body(struct conn *c, size_t want)
{
	if (c->body_cap >= want)
		return 0;
	size_t cap = c->body_cap ? c->body_cap : 4096;
	while (cap < want)
		cap *= 2;
	return conn_reserve(&c->body, &c->body_cap, cap);
}

/*
 * An "Expect: 100-continue" client waits for our go-ahead before sending the
 * body (curl does for bodies over 1 KiB).  RFC 9110 §10.1.1.
 */
static int
handle_expect(struct conn *c, struct request *rq)
{
	const struct http_header *h = http_header_find(c->req.headers,
	    c->req.num_headers, "Expect", NULL);

	if (h == NULL)
		return 0;
	if (!http_token_eq(h->value, h->value_len, "100-continue"))
		return 417;
	if (c->req.minor_version >= 1 && rq->framing.kind != HTTP_BODY_NONE &&
	    c->in_len == c->head_len) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (io_write_all(&c->io, cont, sizeof(cont) - 1,
		    c->srv->cfg->write_timeout_ms) < 0)
			return -1;
	}
	return 0;
}

/* Reads a Content-Length body.  Returns 0, -1 (client gone) or a status. */
static int
read_length_body(struct conn *c, struct request *rq, int64_t deadline)
{
	size_t need = (size_t)rq->framing.length;
	size_t have = c->in_len - c->head_len;

	if (ensure_body(c, need) < 0)
		return 413;
	if (have > need)
		have = need;
	if (have > 0)
		memcpy(c->body, c->in + c->head_len, have);
	rq->consumed = c->head_len + have;
	c->body_len = have;
	while (c->body_len < need) {
		ssize_t n = io_read(&c->io, c->body + c->body_len,
		    need - c->body_len, deadline);
		if (n <= 0)
			return n < 0 && errno == ETIMEDOUT ? 408 : -1;
		c->body_len += (size_t)n;
	}
	return 0;
}

/*
 * Reads a chunked body, de-chunked, into c->body.  Bytes already in c->in are
 * decoded in place there; later reads land in c->body's spare room and are
 * decoded where they are.  Whatever follows the body in the last read (a
 * pipelined request) is kept after the body as the carry.
 */
static int
read_chunked_body(struct conn *c, struct request *rq, int64_t deadline)
{
	struct http_chunked d = { 0 };
	uint64_t max = c->srv->cfg->max_body_size;
	size_t have = c->in_len - c->head_len, out;

	ssize_t used = http_chunked_decode(&d, c->in + c->head_len, have, &out);
	if (used < 0)
		return 400;
	if (out > max || d.remaining > max - out)
		return 413;
	if (ensure_body(c, out) < 0)
		return 413;
	if (out > 0)
		memcpy(c->body, c->in + c->head_len, out);
	c->body_len = out;
	rq->consumed = c->head_len + (size_t)used;

	while (!http_chunked_done(&d)) {
		if (ensure_body(c, c->body_len + 16384) < 0)
			return 413;
		char *p = c->body + c->body_len;
		ssize_t n = io_read(&c->io, p, c->body_cap - c->body_len, deadline);
		if (n <= 0)
			return n < 0 && errno == ETIMEDOUT ? 408 : -1;
		used = http_chunked_decode(&d, p, (size_t)n, &out);
		if (used < 0)
			return 400;
		/* A chunk announced larger than what is left is refused now,
		 * not after its bytes (or a read_timeout) have come. */
		if (c->body_len + out > max ||
		    d.remaining > max - (c->body_len + out))
			return 413;
		/* The carry sits right after the payload: out <= used. */
		c->carry_len = (size_t)n - (size_t)used;
		memmove(p + out, p + used, c->carry_len);
		c->body_len += out;
	}
	return 0;
}

static int
read_body(struct conn *c, struct request *rq)
{
	int64_t deadline = c->started_ms + c->srv->cfg->read_timeout_ms;

	c->body_len = 0;
	c->carry_len = 0;
	rq->consumed = c->head_len;
	switch (rq->framing.kind) {
	case HTTP_BODY_LENGTH:
		return read_length_body(c, rq, deadline);
	case HTTP_BODY_CHUNKED:
		return read_chunked_body(c, rq, deadline);
	default:
		return 0;
	}
}

/* ---- to the backend ----------------------------------------------------------------- */

/*
 * Client fields that the upstream request does not carry as they are: the
 * hop-by-hop ones, and those we set ourselves.  The client's credentials
 * never reach a backend when the proxy checks keys (they are ours, not the
 * backend's), nor when the backend has an api_key of its own (which replaces
 * them).  A name spelt with "_" for "-" ("X_Forwarded_For", "X_API_Key")
 * counts as the field it imitates: a CGI-style server behind us reads both
 * as HTTP_X_FORWARDED_FOR, and the client's copy could win over ours (nginx
 * drops such names altogether).
 */
/* Whether a field name is `conf` but for case and "_" for "-" on either
 * side: a key header configured as "api_key" is also "Api-Key" to such a
 * server, and "X-Token" also "X_Token". */
static int
same_field_name(const char *name, size_t len, const char *conf)
{
	if (strlen(conf) != len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char a = (unsigned char)name[i], b = (unsigned char)conf[i];
		a = a == '_' ? '-' : a >= 'A' && a <= 'Z' ? (unsigned char)(a + 32) : a;
		b = b == '_' ? '-' : b >= 'A' && b <= 'Z' ? (unsigned char)(b + 32) : b;
		if (a != b)
			return 0;
	}
	return 1;
}

static int
forward_request_header(const struct conn *c, const struct http_header *h,
    const struct backend_conf *bc)
{
	static const char *const replaced[] = {
		"Host", "Content-Length", "Expect", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Request-Id",
	};
	const struct config *cfg = c->srv->cfg;
	char dashed[64];
	struct http_header as_dashed = *h;

	if (memchr(h->name, '_', h->name_len) != NULL &&
	    h->name_len <= sizeof(dashed)) {
		for (size_t i = 0; i < h->name_len; i++)
			dashed[i] = h->name[i] == '_' ? '-' : h->name[i];
		as_dashed.name = dashed;
	}
	if (http_is_hop_by_hop(&as_dashed, c->req.headers, c->req.num_headers))
		return 0;
	for (size_t i = 0; i < sizeof(replaced) / sizeof(replaced[0]); i++)
		if (http_token_eq(as_dashed.name, as_dashed.name_len, replaced[i]))
			return 0;
	if (cfg->auth_enabled || bc->api_key[0] != '\0') {
		if (http_token_eq(as_dashed.name, as_dashed.name_len, "Authorization") ||
		    http_token_eq(as_dashed.name, as_dashed.name_len, "X-API-Key"))
			return 0;
		for (size_t i = 0; cfg->auth_enabled && i < cfg->nauth_headers; i++)
			if (same_field_name(h->name, h->name_len, cfg->auth_headers[i]))
				return 0;
	}
	return 1;
}

static size_t
append(char *o, size_t n, const char *s, size_t len)
{
	memcpy(o + n, s, len);
	return n + len;
}

/* Appends v in decimal ("%zu" without printf: once per request). */
static size_t
append_size(char *o, size_t n, size_t v)
{
	char digits[24];
	size_t d = sizeof(digits);

	do {
		digits[--d] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return append(o, n, digits + d, sizeof(digits) - d);
}

/*
 * Builds the upstream request head in c->out: the client's method and target
 * (after the backend's path prefix), its end-to-end fields, and Host,
 * X-Forwarded-For, X-Forwarded-Proto, X-Request-Id and Content-Length set by
 * us.  Returns its length, or 0 when out of memory.
 */
static size_t
build_upstream_head(struct conn *c, const struct request *rq,
    const struct backend_conf *bc, size_t body_len)
{
	const struct http_request *req = &c->req;
	/* The client's head, re-written: each field may gain the space after
	 * its colon; the fields we add are bounded by the constant. */
	size_t need = c->head_len + 2 * req->num_headers +
	    strlen(bc->path_prefix) + strlen(bc->host) + sizeof(c->peer) +
	    sizeof(c->request_id) + strlen(bc->api_key) + 256;

	if (conn_reserve(&c->out, &c->out_cap, need) < 0)
		return 0;
	char *o = c->out;
	size_t n = 0;
	n = append(o, n, req->method, req->method_len);
	n = append(o, n, " ", 1);
	n = append(o, n, bc->path_prefix, strlen(bc->path_prefix));
	n = append(o, n, rq->path, rq->path_len);
	n = append(o, n, " HTTP/1.1\r\nHost: ", 17);
	int v6 = strchr(bc->host, ':') != NULL;
	if (v6)
		n = append(o, n, "[", 1);
	n = append(o, n, bc->host, strlen(bc->host));
	if (v6)
		n = append(o, n, "]", 1);
	if (strcmp(bc->port, "80") != 0) {
		n = append(o, n, ":", 1);
		n = append(o, n, bc->port, strlen(bc->port));
	}
	n = append(o, n, "\r\n", 2);

	/* X-Forwarded-For: the client's list, if any, then the client. */
	n = append(o, n, "X-Forwarded-For: ", 17);
	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->value_len > 0 &&
		    http_token_eq(h->name, h->name_len, "X-Forwarded-For")) {
			n = append(o, n, h->value, h->value_len);
			n = append(o, n, ", ", 2);
		}
	}
	n = append(o, n, c->peer, strlen(c->peer));
	/* By hand, not sprintf: this is on the way to the first token. */
	n = append(o, n, "\r\nX-Forwarded-Proto: ", 21);
	n = append(o, n, c->tls ? "https" : "http", c->tls ? 5 : 4);
	n = append(o, n, "\r\nX-Request-Id: ", 16);
	n = append(o, n, conn_trace_id(c), strlen(conn_trace_id(c)));
	n = append(o, n, "\r\n", 2);

	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];
		if (!forward_request_header(c, h, bc))
			continue;
		n = append(o, n, h->name, h->name_len);
		n = append(o, n, ": ", 2);
		n = append(o, n, h->value, h->value_len);
		n = append(o, n, "\r\n", 2);
	}
	if (bc->api_key[0] != '\0') {
		n = append(o, n, "Authorization: Bearer ", 22);
		n = append(o, n, bc->api_key, strlen(bc->api_key));
		n = append(o, n, "\r\n", 2);
	}
	/* The body goes with a length we counted ourselves, whatever framing
	 * the client used: the backend can read it only one way. */
	if (rq->framing.kind != HTTP_BODY_NONE || method_is(c, "POST") ||
	    method_is(c, "PUT") || method_is(c, "PATCH")) {
		n = append(o, n, "Content-Length: ", 16);
		n = append_size(o, n, body_len);
		n = append(o, n, "\r\n", 2);
	}
	n = append(o, n, "\r\n", 2);
	return n;
}

/*
 * One request's trips to backends: those it has tried, and — when a failure
 * before the first byte sends it elsewhere — the next one, already acquired,
 * and how long to pause before going there.
 */
struct trip {
	struct conn *c;
	struct request *rq;
	struct bal_request want;        /* its model, the backends tried */
	struct backend *tried[CAP_RETRIES + 1];
	int retries_left;
	int failovers;
	struct backend *next;
	int64_t pause_ms;
};

/* The pause before the n-th failover (n from 0): none before the first,
 * then initial_wait growing by multiplier, capped at max_wait. */
static int64_t
retry_pause(const struct config *cfg, int n)
{
	if (n == 0)
		return 0;
	double ms = cfg->retry_initial_wait_ms;
	for (int i = 1; i < n && ms < cfg->retry_max_wait_ms; i++)
		ms *= cfg->retry_multiplier;
	return ms > cfg->retry_max_wait_ms ? cfg->retry_max_wait_ms : (int64_t)ms;
}

/*
 * The failover decision (relay.h): the backend failed before anything
 * reached the client.  Another backend — one not tried yet for this request
 * — takes it, if retries are on, the failure is of a kind retry_on names,
 * retries are left and the request still has time.
 */
static int
failover(void *ctx, unsigned retry_on)
{
	struct trip *t = ctx;
	const struct config *cfg = t->c->srv->cfg;
	int64_t now = io_now_ms();
	enum bal_none why;

	if (!cfg->retry_enabled || !(cfg->retry_on & retry_on) ||
	    t->retries_left <= 0 || t->next != NULL ||
	    (t->rq->deadline_ms >= 0 && now >= t->rq->deadline_ms))
		return 0;
	struct backend *b = bal_acquire(&t->c->srv->backends, &t->want, now, &why);
	if (b == NULL)
		return 0;
	if (t->want.nexclude > 0)       /* the backend that failed */
		metrics_retry(t->tried[t->want.nexclude - 1]->metrics_id);
	t->next = b;
	t->pause_ms = retry_pause(cfg, t->failovers);
	t->retries_left--;
	t->failovers++;
	return 1;
}

/*
 * Sends the request to backend b and relays the answer.  A reused keep-alive
 * connection that turns out dead before answering is replaced by a fresh one
 * once.  A backend that cannot be reached may hand the request on (failover).
 * Fills rq's outcome fields and *res.
 */
static enum conn_next
exchange(struct conn *c, struct request *rq, struct backend *b,
    const char *body, size_t body_len, struct relay_request *rrq,
    struct relay_result *res)
{
	const struct config *cfg = c->srv->cfg;
	size_t head = build_upstream_head(c, rq, b->conf, body_len);

	*res = (struct relay_result){ .ttft_us = -1, .finish = "error" };
	if (head == 0)
		return fail(c, rq, 503, "out of memory", 0);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct upstream u;
		int64_t deadline = io_earliest(io_now_ms() +
		    cfg->connect_timeout_ms, rq->deadline_ms);
		if (upstream_connect(&u, b, deadline, attempt > 0) < 0) {
			int timed_out = errno == ETIMEDOUT;
			char msg[256];
			/* A certificate that fails is a backend that cannot be
			 * reached safely: another one may take the request, as
			 * for a refused connection, but the answer says why. */
			if (errno == EPROTO && u.tls_error != 0) {
				snprintf(msg, sizeof(msg), "TLS with backend %s failed: %s",
				    b->conf->name, tls_error_text(u.tls_error));
				log_warnx("%s: %s", c->request_id, msg);
			} else {
				snprintf(msg, sizeof(msg), "cannot connect to backend %s: %s",
				    b->conf->name, strerror(errno));
			}
			res->fault = FAULT_CONNECT;
			rq->finish = "upstream_error";
			if (rrq->failover != NULL && rrq->failover(rrq->failover_ctx,
			    timed_out ? RETRY_ON_TIMEOUT : RETRY_ON_CONNECT)) {
				res->failed_over = 1;
				return CONN_PARK;
			}
			enum conn_next next = fail(c, rq, timed_out ? 504 : 502, msg, 0);
			rq->finish = "upstream_error";
			return next;
		}
		struct iovec iov[2] = {
			{ c->out, head },
			{ (void *)(uintptr_t)body, body_len },
		};
		if (io_writev_all(&u.io, iov, body_len ? 2 : 1,
		    cfg->write_timeout_ms) < 0) {
			int reused = u.reused;
			upstream_release(&u, 0);
			if (reused)
				continue;   /* a stale keep-alive connection */
			res->fault = FAULT_NO_ANSWER;
			rq->finish = "upstream_error";
			if (rrq->failover != NULL &&
			    rrq->failover(rrq->failover_ctx, RETRY_ON_5XX)) {
				res->failed_over = 1;
				return CONN_PARK;
			}
			enum conn_next next = fail(c, rq, 502,
			    "sending the request to the backend failed", 0);
			rq->finish = "upstream_error";
			return next;
		}
		rrq->sent_us = io_now_us();
		relay_response(c, &u, rrq, res);
		if (!res->retry_fresh)
			break;
	}
	if (res->failed_over)
		return CONN_PARK;
	rq->status = res->status;
	rq->stream = res->stream;
	rq->bytes = res->bytes;
	rq->ttft_us = res->ttft_us;
	rq->finish = res->finish;
	if (res->status == 0)
		return CONN_CLOSE;
	return res->client_keep ? CONN_PARK : CONN_CLOSE;
}

/*
 * What the attempt on b says about b's health (passive checks): no
 * connection, no answer, no first token, a cut stream, or (eject_on_5xx) a
 * 5xx are failures; any other answer is a success; a client that left says
 * nothing.  Retry-After on a 429 / 503 keeps b out that long.
 */
static void
note_health(struct conn *c, struct backend *b, const struct relay_result *res)
{
	const struct config *cfg = c->srv->cfg;
	int64_t now = io_now_ms();
	int success;

	if (res->retry_after_ms > 0)     /* capped: one backend's word */
		bal_busy_until(b, now + (res->retry_after_ms < cfg->retry_max_wait_ms ?
		    res->retry_after_ms : cfg->retry_max_wait_ms));
	if (res->fault != FAULT_NONE)
		success = 0;
	else if (res->upstream_status >= 500)
		success = !cfg->hc_eject_on_5xx;
	else if (res->upstream_status > 0)
		success = 1;
	else
		return;
	if (bal_report(&c->srv->backends, b, success, now) < 0)
		log_warnx("backend %s ejected for %lld ms: requests to it fail",
		    b->conf->name, (long long)(b->out_until_ms - now));
}

/* A request whose usage is metered and reported. */
struct metered {
	struct json_request jr;
	struct usage_meter meter;
};

/*
 * A stream whose client did not ask for usage gets stream_options.
 * include_usage added (and continuous_usage_stats for a backend configured
 * so), in a copy of the body; the meter then hides from the client what the
 * addition caused.  Points *body at what is to be sent.
 */
static void
inject_usage(struct conn *c, struct metered *m, const struct backend *b,
    const char **body, size_t *body_len)
{
	int add_usage = !m->jr.include_usage;
	/* vLLM sends per-chunk usage only with include_usage too: a client's
	 * continuous_usage_stats alone would have brought it nothing. */
	int client_continuous = m->jr.include_usage && m->jr.continuous_usage;
	int add_continuous = !client_continuous &&
	    (b->conf->continuous_usage || m->jr.continuous_usage);

	usage_meter_init(&m->meter, 0, 0);
	if (!m->jr.stream || !c->srv->cfg->usage_inject ||
	    (!add_usage && !add_continuous))
		return;
	if (conn_reserve(&c->rewrite, &c->rewrite_cap,
	    c->body_len + JSON_INJECT_EXTRA) < 0)
		return;     /* out of memory: unmetered rather than refused */
	*body_len = json_inject_usage(c->body, c->body_len, &m->jr,
	    b->conf->continuous_usage, c->rewrite);
	*body = c->rewrite;
	usage_meter_init(&m->meter, add_usage, add_continuous);
}

/* The usage of a proxied request: into the access line and the metrics,
 * and as a record to the reporters when there are any. */
static void
report_usage(struct conn *c, struct request *rq, struct metered *m,
    const struct backend *b, const struct relay_result *res)
{
	char json[CAP_RECORD_BYTES];
	const char *finish = rq->finish;

	/* A stream that ended as framed finished the way the backend said. */
	if (strcmp(finish, "stop") == 0 && m->meter.finish_reason[0] != '\0') {
		snprintf(rq->finish_reason, sizeof(rq->finish_reason), "%s",
		    m->meter.finish_reason);
		finish = rq->finish = rq->finish_reason;
	}
	struct usage_record rec = {
		.request_id = c->request_id,
		.client_request_id = client_id_or_null(c),
		.timestamp_ms = rq->t0_wall_ms,
		.model = m->jr.model,
		.model_len = m->jr.model_len,
		.is_stream = res->stream,
		.endpoint = rq->path,
		.endpoint_len = rq->route_len,
		.backend_url = b->conf->url,
		.backend = b->conf->name,
		.status_code = rq->status,
		.latency_ms = (io_now_us() - rq->t0_us) / 1000,
		.ttft_ms = res->ttft_us >= 0 ? res->ttft_us / 1000 : -1,
		.finish = finish,
		.user_id = rq->key != NULL && rq->key->user_id[0] != '\0' ?
		    rq->key->user_id : NULL,
		.key_name = rq->key != NULL ? rq->key->name : NULL,
	};
	int generated = (rq->status >= 200 && rq->status < 300) ||
	    m->meter.reported;
	usage_result(&m->meter, m->jr.prompt_bytes, res->bytes, generated,
	    &rec.usage);
	rq->prompt_tokens = rec.usage.prompt_tokens;
	rq->completion_tokens = rec.usage.completion_tokens;
	if (!c->srv->cfg->usage_enabled || !webhook_active())
		return;
	size_t n = usage_record_json(&rec, json, sizeof(json));
	if (n == 0 && rec.model_len > CAP_MODEL_NAME) {
		/* The client chooses the model name, at any length: cut it
		 * rather than lose the record (a request nobody is billed
		 * for).  A cut escape is escaped in turn (put_model). */
		rec.model_len = CAP_MODEL_NAME;
		n = usage_record_json(&rec, json, sizeof(json));
	}
	if (n > 0)
		(void)webhook_submit(json, n);   /* a drop is counted there */
	else
		log_warnx("%s: usage record too large; not sent", c->request_id);
}

/* No backend for the request: 404 when none serves its model at all, else
 * 503 at once (never a wait). */
static enum conn_next
no_backend(struct conn *c, struct request *rq, enum bal_none why,
    const struct json_request *jr)
{
	char msg[256];

	if (why == BAL_NO_MODEL) {
		snprintf(msg, sizeof(msg), "no backend serves the model '%.*s'",
		    (int)(jr->model_len < 128 ? jr->model_len : 128), jr->model);
		return reply_failure(c, rq, 404, msg, "model_not_found", NULL, 0);
	}
	return fail_with(c, rq, 503, "no backend is available for this request",
	    "Retry-After: 1\r\n", 0);
}

static enum conn_next
proxy_request(struct conn *c, struct request *rq)
{
	const struct config *cfg = c->srv->cfg;
	int chat = method_is(c, "POST") && (route_is(rq, "/v1/chat/completions") ||
	    route_is(rq, "/v1/completions"));
	int embeddings = method_is(c, "POST") && route_is(rq, "/v1/embeddings");
	/* Usage is metered for the billing records and for the token
	 * metrics; records are made only when they have somewhere to go. */
	int metered = (chat || embeddings) && ((cfg->usage_enabled &&
	    webhook_active()) || cfg->metrics_enabled || rq->key != NULL);
	struct metered m = { 0 };

	/* Chat and completions bodies must be JSON objects; any other JSON
	 * body is read too, for its "model" (routing), but sent on whatever
	 * it is. */
	if (chat || (c->body_len > 0 && memchr("{ \t\r\n", c->body[0], 5))) {
		int j = json_inspect_request(c->body, c->body_len, &m.jr,
		    &c->json_scratch, &c->json_scratch_bytes);
		if (chat && j == JSON_TOO_BIG)
			return fail(c, rq, 413, "the request body has too many JSON tokens", 0);
		if (chat && j != JSON_OK)
			return fail(c, rq, 400, "the request body must be a JSON object", 0);
		if (j != JSON_OK)
			memset(&m.jr, 0, sizeof(m.jr));
	}

	struct trip t = {
		.c = c, .rq = rq,
		.want = { .model = m.jr.model, .model_len = m.jr.model_len },
		.retries_left = cfg->retry_enabled ? cfg->retry_max : 0,
	};
	t.want.exclude = t.tried;
	enum bal_none why;
	rq->model = m.jr.model;
	rq->model_len = m.jr.model_len;
	struct backend *b = bal_acquire(&c->srv->backends, &t.want, io_now_ms(),
	    &why);
	if (b == NULL)
		return no_backend(c, rq, why, &m.jr);

	struct relay_request rrq = {
		.head_request = method_is(c, "HEAD"),
		.client_minor = c->req.minor_version,
		.client_keep = rq->keep,
		.deadline_ms = rq->deadline_ms,
		.meter = metered ? &m.meter : NULL,
		.failover = failover,
		.failover_ctx = &t,
	};
	struct relay_result res;
	enum conn_next next;
	metrics_in_flight(1);
	for (;;) {
		const char *body = c->body;
		size_t body_len = c->body_len;
		if (t.want.nexclude < sizeof(t.tried) / sizeof(t.tried[0]))
			t.tried[t.want.nexclude++] = b;
		rq->backend = b->conf->name;
		rq->backend_index = b->metrics_id;
		rrq.backend_index = rq->backend_index;
		if (metered)
			inject_usage(c, &m, b, &body, &body_len);
		next = exchange(c, rq, b, body, body_len, &rrq, &res);
		note_health(c, b, &res);
		if (!res.failed_over)
			break;
		/* Nothing reached the client: the request goes to the next
		 * backend, the body replayed as it came. */
		log_info("%s: backend %s failed before answering; trying %s",
		    c->request_id, b->conf->name, t.next->conf->name);
		bal_release(b);
		b = t.next;
		t.next = NULL;
		if (metered)
			usage_meter_free(&m.meter);
		if (t.pause_ms > 0 &&
		    relay_client_wait(c, io_now_ms() + t.pause_ms) < 0) {
			rq->finish = "client_abort";
			next = CONN_CLOSE;
			res = (struct relay_result){ .ttft_us = -1 };
			if (metered)
				usage_meter_init(&m.meter, 0, 0);
			break;
		}
	}
	/* The label says what the client asked for, even when the answer
	 * never became a stream. */
	rq->stream = rq->stream || m.jr.stream;
	if (metered) {
		report_usage(c, rq, &m, b, &res);
		usage_meter_free(&m.meter);
	}
	bal_release(b);
	metrics_in_flight(-1);
	return next;
}

/*
 * A proxied request under the limits: admitted, or answered 429 with
 * Retry-After.  What it holds (a key's stream slot) is given back on every
 * way out, since there is only this one; its metered tokens are charged to
 * the key's budget when it is over.
 */
static enum conn_next
proxy(struct conn *c, struct request *rq)
{
	const struct config *cfg = c->srv->cfg;
	struct rl_ticket t;
	int64_t retry_ms;
	char extra[64];

	if (!cfg->rl_enabled && !cfg->auth_enabled)
		return proxy_request(c, rq);
	enum rl_verdict v = rl_admit(&cfg->rl_global, &cfg->rl_per_key,
	    rq->key != NULL ? rq->key->name : NULL, io_now_ms(), &t, &retry_ms);
	if (v != RL_OK) {
		snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n",
		    (long long)rl_retry_after_s(retry_ms));
		return reply_failure(c, rq, 429, rl_message(v), "rate_limit_exceeded",
		    extra, 0);
	}
	enum conn_next next = proxy_request(c, rq);
	rl_done(&cfg->rl_per_key, &t, rq->prompt_tokens, rq->completion_tokens,
	    io_now_ms());
	return next;
}

/* ---- one request ------------------------------------------------------------------- */

/* Writes a 200 with the body given (none for HEAD). */
static enum conn_next
reply_body(struct conn *c, struct request *rq, const char *type,
    const char *body, size_t len)
{
	char head[512];
	int flags = reply_flags(c, rq);
	int h = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "X-Request-Id: %s\r\n%s\r\n", type, len, conn_trace_id(c),
	    (flags & REPLY_CLOSE) ? "Connection: close\r\n" :
	    (flags & REPLY_KEEP_ALIVE) ? "Connection: keep-alive\r\n" : "");
	struct iovec iov[2] = {
		{ head, (size_t)h },
		{ (void *)(uintptr_t)body, method_is(c, "HEAD") ? 0 : len },
	};
	rq->finish = "local";
	if (io_writev_all(&c->io, iov, 2, c->srv->cfg->write_timeout_ms) < 0)
		return CONN_CLOSE;
	rq->status = 200;
	return rq->keep ? CONN_PARK : CONN_CLOSE;
}

/*
 * GET /v1/models, answered by the proxy: the models every available backend
 * serves (configured lists, or what the backend itself lists), each once.
 */
static enum conn_next
list_models(struct conn *c, struct request *rq)
{
	size_t cap = CAP_MODELS_RESPONSE_BYTES;

	if (conn_reserve(&c->rewrite, &c->rewrite_cap, cap) < 0)
		return fail(c, rq, 503, "out of memory", 0);
	size_t n = health_models_json(&c->srv->backends, c->rewrite, cap);
	if (n == 0)
		return fail(c, rq, 502, "the model list is too large", 0);
	return reply_body(c, rq, "application/json", c->rewrite, n);
}

/* GET /metrics: the Prometheus text exposition. */
static enum conn_next
serve_metrics(struct conn *c, struct request *rq)
{
	size_t n = metrics_render(&c->rewrite, &c->rewrite_cap,
	    &c->srv->backends);
	if (n == 0)
		return fail(c, rq, 503, "out of memory", 0);
	return reply_body(c, rq, "text/plain; version=0.0.4; charset=utf-8",
	    c->rewrite, n);
}

/*
 * [auth]: a request for a path not in skip_paths needs a key that is known,
 * enabled and not expired, from the first configured header that carries
 * one.  Returns 0 to go on (rq->key set), else 1 with the answer given.
 * Called before the body is read: a client without a key gets no
 * 100 Continue and costs no body buffer; its connection is closed after
 * the answer (lingering) when a body was on its way.
 */
static int
authenticate(struct conn *c, struct request *rq, enum conn_next *next)
{
	const struct config *cfg = c->srv->cfg;
	const char *key;

	if (!cfg->auth_enabled)
		return 0;
	if (auth_skipped(cfg, rq->path, rq->route_len))
		return 0;
	size_t len = presented_key(c, &key);
	enum auth_verdict v = auth_check(&cfg->keys, key, len,
	    (int64_t)time(NULL), &rq->key);
	if (v == AUTH_OK)
		return 0;
	rl_count_auth_failure((int)v - 1);
	/* A refused key's name is in the access line: the operator sees who
	 * was turned away; the key itself is nowhere. */
	*next = reply_failure(c, rq, auth_status(v), auth_message(v),
	    v == AUTH_DISABLED ? "api_key_disabled" : v == AUTH_EXPIRED ?
	    "api_key_expired" : "invalid_api_key",
	    auth_status(v) == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL,
	    rq->framing.kind != HTTP_BODY_NONE);
	return 1;
}

static enum conn_next
route(struct conn *c, struct request *rq)
{
	const struct config *cfg = c->srv->cfg;
	/* The metrics live on their own listener when [metrics] listen is set,
	 * else on the main one. */
	if (cfg->metrics_enabled &&
	    c->metrics_only == (cfg->metrics_listen_port[0] != '\0') &&
	    route_is(rq, cfg->metrics_path)) {
		if (!method_is(c, "GET") && !method_is(c, "HEAD"))
			return fail_with(c, rq, 405, "use GET for the metrics",
			    "Allow: GET, HEAD\r\n", 0);
		return serve_metrics(c, rq);
	}
	if (route_is(rq, "/health")) {
		static const char ok[] = "{\"status\":\"ok\"}";
		if (!method_is(c, "GET") && !method_is(c, "HEAD"))
			return fail_with(c, rq, 405, "use GET for /health",
			    "Allow: GET, HEAD\r\n", 0);
		return reply_body(c, rq, "application/json", ok, sizeof(ok) - 1);
	}
	if (route_is(rq, "/v1/models") && (method_is(c, "GET") ||
	    method_is(c, "HEAD")))
		return list_models(c, rq);
	if (c->metrics_only)
		return fail(c, rq, 404, "this address serves the metrics only", 0);
	if (rq->route_len >= 4 && memcmp(rq->path, "/v1/", 4) == 0) {
		if (method_is(c, "CONNECT") || method_is(c, "TRACE"))
			return fail_with(c, rq, 405, "method not allowed",
			    "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n", 0);
		/* A body goes to a backend only with a method that has one:
		 * cpp-httplib (llama.cpp's server) reads none for GET, HEAD,
		 * OPTIONS or DELETE whatever Content-Length says, and would
		 * take it for the next request on the connection. */
		if (c->body_len > 0 && !method_is(c, "POST") &&
		    !method_is(c, "PUT") && !method_is(c, "PATCH"))
			return fail(c, rq, 400, "a request body is accepted with "
			    "POST, PUT or PATCH only", 1);
		return proxy(c, rq);
	}
	return fail(c, rq, 404, "no such endpoint; the API is under /v1/", 0);
}

static enum conn_next
serve_one(struct conn *c, struct request *rq)
{
	const struct config *cfg = c->srv->cfg;

	rq->t0_us = io_now_us();
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	rq->t0_wall_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	rq->deadline_ms = cfg->request_timeout_ms > 0 ?
	    rq->t0_us / 1000 + cfg->request_timeout_ms : -1;
	rq->backend = "-";
	rq->backend_index = -1;
	rq->prompt_tokens = rq->completion_tokens = -1;
	rq->ttft_us = -1;
	rq->finish = "local";
	rq->consumed = c->head_len;
	set_request_id(c);
	rq->keep = http_keep_alive(c->req.minor_version, c->req.headers,
	    c->req.num_headers);

	int status = http_request_check(&c->req, &rq->framing);
	if (status != 0)
		return fail(c, rq, status, status == 501 ?
		    "unsupported transfer coding" :
		    "ambiguous or malformed request framing", 1);
	if (parse_target(c, rq) < 0) {
		rq->path = c->req.target;
		rq->path_len = rq->route_len = c->req.target_len;
		return fail(c, rq, 400, "unsupported request-target", 1);
	}
	if (rq->framing.kind == HTTP_BODY_LENGTH &&
	    rq->framing.length > cfg->max_body_size)
		return fail(c, rq, 413, "the request body is larger than max_body_size", 1);

	enum conn_next next;
	if (authenticate(c, rq, &next))
		return next;
	status = handle_expect(c, rq);
	if (status < 0)
		return CONN_CLOSE;
	if (status > 0)
		return fail(c, rq, status, "unsupported Expect", 1);
	status = read_body(c, rq);
	if (status < 0) {
		rq->finish = "client_abort";
		return CONN_CLOSE;
	}
	if (status > 0)
		return fail(c, rq, status, status == 408 ?
		    "the request body was not received in time (read_timeout)" :
		    status == 413 ? "the request body is larger than max_body_size" :
		    "malformed chunked request body", 1);
	return route(c, rq);
}

/* The request is over: its access line and its metrics. */
static void
log_request(const struct conn *c, const struct request *rq)
{
	int64_t duration = io_now_us() - rq->t0_us;
	struct metrics_request mr = {
		.path = rq->path != NULL ? metrics_path_of(rq->path, rq->route_len) :
		    MP_OTHER,
		.stream = rq->stream,
		.backend = rq->backend_index,
		.status = rq->status,
		.duration_us = duration,
		.ttft_us = rq->ttft_us,
		.prompt_tokens = rq->prompt_tokens,
		.completion_tokens = rq->completion_tokens,
		.client_abort = strcmp(rq->finish, "client_abort") == 0,
	};
	/* The proxy's own answers (/health, the metrics) are not traffic:
	 * a load balancer's probe or a scrape must not show as requests. */
	if (rq->path == NULL || (!route_is(rq, "/health") &&
	    !route_is(rq, c->srv->cfg->metrics_path)))
		metrics_request_done(&mr);

	struct access_entry e = {
		.request_id = c->request_id,
		.client_request_id = client_id_or_null(c),
		.client = c->peer,
		.method = c->req.method,
		.method_len = c->req.method_len,
		.target = c->req.target,
		.target_len = c->req.target_len,
		.status = rq->status,
		.backend = rq->backend,
		.stream = rq->stream,
		.bytes_out = rq->bytes,
		.ttft_us = rq->ttft_us,
		.duration_us = duration,
		.finish = rq->finish,
		.model = rq->model,
		.model_len = rq->model_len,
		.prompt_tokens = rq->prompt_tokens,
		.completion_tokens = rq->completion_tokens,
		.key_name = rq->key != NULL ? rq->key->name : NULL,
		.user_id = rq->key != NULL && rq->key->user_id[0] != '\0' ?
		    rq->key->user_id : NULL,
	};
	log_access(&e);
}

/* Drops the bytes of the request just served; what the client sent after it
 * (a pipelined request) moves to the front, the chunked-body carry first. */
static int
consume_request(struct conn *c, size_t consumed)
{
	memmove(c->in, c->in + consumed, c->in_len - consumed);
	c->in_len -= consumed;
	c->head_len = 0;
	if (c->carry_len > 0) {
		if (conn_reserve(&c->in, &c->in_cap, c->in_len + c->carry_len) < 0)
			return -1;
		memmove(c->in + c->carry_len, c->in, c->in_len);
		memcpy(c->in, c->body + c->body_len, c->carry_len);
		c->in_len += c->carry_len;
		c->carry_len = 0;
	}
	return 0;
}

/* A request starts with the configuration in force now; the one before
 * goes when its last request and connection let go of it. */
static void
follow_reload(struct conn *c)
{
	if (!server_stale(c->srv))
		return;
	struct server *now = server_acquire();
	server_release(c->srv);
	c->srv = now;
}

enum conn_next
conn_serve(struct conn *c)
{
	for (;;) {
		struct request rq = { 0 };
		follow_reload(c);
		enum conn_next next = serve_one(c, &rq);
		log_request(c, &rq);
		if (next != CONN_PARK || consume_request(c, rq.consumed) < 0)
			return next == CONN_PARK ? CONN_CLOSE : next;
		/* A pipelined request already here is served now, in order. */
		c->started_ms = io_now_ms();
		int h = conn_parse_head(c);
		if (h == 1)
			continue;
		if (h > 1) {
			conn_reply_now(c, h, NULL, NULL);
			return CONN_LINGER;
		}
		return CONN_PARK;
	}
}
