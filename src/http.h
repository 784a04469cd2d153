/*
 * http.h — pure HTTP/1.1 message parsing (RFC 9110, RFC 9112).
 *
 * No I/O, no allocation.  Parsed fields point into the caller's buffer, so the
 * buffer must outlive the parsed head.  Every function here can be fed any
 * byte sequence: the fuzz targets call them directly.
 */
#ifndef LLMPROXY_HTTP_H
#define LLMPROXY_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"

struct http_header {
	const char *name;
	size_t name_len;
	const char *value;     /* leading and trailing OWS removed */
	size_t value_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target;    /* request-target exactly as sent */
	size_t target_len;
	int minor_version;     /* 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.x > 1) */
	size_t num_headers;
	struct http_header headers[CAP_HEADERS];
};

struct http_response {
	int minor_version;
	int status;            /* 100..999 */
	const char *reason;
	size_t reason_len;
	size_t num_headers;
	struct http_header headers[CAP_HEADERS];
};

/*
 * Parses a request head in buf[0..len).
 *
 * Returns the length of the head (> 0, including the blank line that ends it,
 * and any empty lines before the request line, which RFC 9112 §2.2 lets a
 * server skip); 0 when the bytes so far are a valid prefix and more are
 * needed; or minus the status to answer when they can never become a valid
 * head: -400 (syntax: bad request line, bare CR, bare LF, whitespace before a
 * colon, obs-fold, control bytes or NUL in a field, ...), -414 (request-target
 * longer than CAP_URI_BYTES), -431 (more than CAP_HEADERS fields), -505
 * (an HTTP major version other than 1, e.g. the HTTP/2 preface).  Errors are
 * reported as soon as the offending byte is seen, before the head is complete.
 *
 * Whether the whole head fits the configured max_header_bytes is the caller's
 * decision (it owns the buffer).
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/*
 * Parses a response head (status line and fields) in buf[0..len).  Same
 * return convention as http_parse_request: > 0 head length, 0 need more,
 * -502 malformed (anything http_parse_request would reject, a bad status
 * line, more than CAP_HEADERS fields).
 */
int http_parse_response(const char *buf, size_t len, struct http_response *resp);

/* How a message body is delimited (RFC 9112 §6). */
enum http_body {
	HTTP_BODY_NONE,         /* no body */
	HTTP_BODY_LENGTH,       /* Content-Length bytes */
	HTTP_BODY_CHUNKED,      /* chunked transfer coding */
	HTTP_BODY_UNTIL_CLOSE,  /* response only: until the server closes */
};

struct http_framing {
	enum http_body kind;
	uint64_t length;        /* for HTTP_BODY_LENGTH */
};

/*
 * Decides the body framing of a parsed request and rejects every request that
 * a server behind us could read differently (request smuggling):
 *   - Content-Length together with Transfer-Encoding            -> 400
 *   - Content-Length that is not 1*DIGIT, overflows, or appears
 *     more than once (even with equal values, even as a list)   -> 400
 *   - Transfer-Encoding in an HTTP/1.0 request (§6.1)            -> 400
 *   - Transfer-Encoding whose final coding is not chunked, or
 *     chunked more than once, or the header repeated             -> 400
 *   - Transfer-Encoding with other codings before chunked       -> 501
 *   - no Host in HTTP/1.1, or more than one Host (§3.2)          -> 400
 * Returns 0 and fills *f, or the status to answer.
 */
int http_request_check(const struct http_request *req, struct http_framing *f);

/*
 * Decides the body framing of a response to a request whose method was HEAD
 * (head_request != 0) or anything else (RFC 9112 §6.3): 1xx, 204, 304 and
 * responses to HEAD have no body; Transfer-Encoding "chunked" is chunked; a
 * Transfer-Encoding whose final coding is not chunked runs until close; else
 * Content-Length; else until close.  Returns 0, or -1 for a response we will
 * not relay because its framing is ambiguous: Content-Length together with
 * Transfer-Encoding (§6.3 rule 3 calls it a sign of smuggling), a malformed or
 * repeated Content-Length, or transfer codings other than chunked before it.
 */
int http_response_framing(const struct http_response *resp, int head_request,
    struct http_framing *f);

/*
 * The path and query of a request-target (RFC 9112 §3.2) as the proxy routes
 * on it and sends it on: origin-form as it is, absolute-form
 * ("http://host/path?q", "https://...") reduced to its path and query.
 * Refused (-1), because a server behind us could read them as another path
 * than the one we routed on: asterisk- and authority-form, a fragment ("#"),
 * an absolute-form whose authority has userinfo, is empty, or is followed by
 * anything but "/"; and in the path (not the query) dot segments, percent-
 * encoded ".", "/", backslash or unreserved character (RFC 3986 §2.3), and
 * backslashes.  Returns 0 with *path, *path_len pointing into t.
 */
int http_target_path(const char *t, size_t n, const char **path,
    size_t *path_len);

/* ---- Field helpers --------------------------------------------------------- */

/* Case-insensitive comparison of s[0..n) with a NUL-terminated literal. */
int http_token_eq(const char *s, size_t n, const char *lit);

/*
 * The first field named `name` (case-insensitive), or NULL.  When count is
 * not NULL it receives how many fields have that name.
 */
const struct http_header *http_header_find(const struct http_header *h,
    size_t n, const char *name, size_t *count);

/* Whether a comma-separated field value contains `token` (case-insensitive,
 * OWS around elements ignored). */
int http_list_has(const char *value, size_t len, const char *token);

/*
 * Whether the field h is hop-by-hop and must not be forwarded (RFC 9110
 * §7.6.1): Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
 * Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade, and any
 * field named in a Connection field of the same message (all[0..n)).
 */
int http_is_hop_by_hop(const struct http_header *h,
    const struct http_header *all, size_t n);

/* Whether the connection stays open after this message: HTTP/1.1 unless
 * "Connection: close"; HTTP/1.0 only with "Connection: keep-alive". */
int http_keep_alive(int minor_version, const struct http_header *h, size_t n);

/* ---- Chunked transfer coding (RFC 9112 §7.1) -------------------------------- */

/*
 * Incremental chunked decoder.  Zero-initialise, then feed bytes as they
 * arrive.  It holds no bytes, only counters, so it needs no buffer of its own.
 * Chunk extensions are validated and dropped; trailer fields are validated
 * (no obs-fold, no control bytes) and dropped.  Caps: CAP_CHUNK_LINE_BYTES for
 * a size line with its extensions, CAP_TRAILER_BYTES for all trailers, and
 * chunk sizes that overflow 64 bits are malformed.
 */
struct http_chunked {
	int state;
	uint64_t remaining;     /* payload bytes left in the current chunk */
	size_t line_bytes;      /* bytes of the current size line / trailers */
	unsigned digits;        /* hex digits seen in the current size */
	char quote;             /* inside a quoted-string in an extension */
};

/*
 * Decodes buf[0..len) in place: payload bytes are moved to the front, and
 * *out receives how many there are (they are at buf[0..*out)).  Returns the
 * number of input bytes consumed — all of them unless the final chunk and its
 * trailers ended inside buf, in which case the bytes that follow the message
 * are left untouched at buf[ret..len) — or -1 when the framing is malformed.
 */
ssize_t http_chunked_decode(struct http_chunked *d, char *buf, size_t len,
    size_t *out);

/* Whether the last chunk and the trailer section have been seen. */
int http_chunked_done(const struct http_chunked *d);

/* Writes the chunk-size line for a chunk of n bytes ("1a\r\n") into out,
 * which must hold at least 19 bytes.  Returns its length. */
size_t http_chunk_size_line(char *out, size_t n);

/* ---- Status table ------------------------------------------------------------ */

/* The reason phrase for a status code ("Bad Gateway"), or "Unknown". */
const char *http_reason(int status);

#endif
