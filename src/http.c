/*
 * http.c — pure HTTP/1.1 message parsing (RFC 9110, RFC 9112).
 *
 * Every parser here is one forward pass over (buf, len) with no state kept
 * between calls except what the caller holds (the chunked decoder's counters).
 * The head parsers are simply called again from the start when more bytes
 * arrive; each call is linear in len.  An error is returned at the first byte
 * that can never be part of a valid message, so a bad prefix is refused
 * without waiting for the rest of the head, and feeding a longer buffer never
 * changes an error into something else.
 */
#include <limits.h>
#include <string.h>

#include "http.h"

/* ---- Byte classes ------------------------------------------------------------ */

enum {
	C_TCHAR = 0x01, /* token character (RFC 9110 §5.6.2) */
	C_HEX = 0x02,   /* HEXDIG */
	C_FIELD = 0x04, /* field-value byte: VCHAR / obs-text / SP / HTAB (§5.5) */
	C_WS = 0x08,    /* SP / HTAB: the whitespace of OWS and BWS (§5.6.3) */
	C_VCHAR = 0x10, /* visible US-ASCII, %x21-7E */
	C_QDTEXT = 0x20 /* qdtext of a quoted-string (§5.6.4) */
};

#define T C_TCHAR
#define X C_HEX
#define F C_FIELD
#define W C_WS
#define V C_VCHAR
#define Q C_QDTEXT
static const unsigned char byte_class[256] = {
	/* 00 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 08 */ 0, F|W|Q, 0, 0, 0, 0, 0, 0,
	/* 10 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 18 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 20 */ F|W|Q, T|F|V|Q, F|V, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 28 */ F|V|Q, F|V|Q, T|F|V|Q, T|F|V|Q, F|V|Q, T|F|V|Q, T|F|V|Q, F|V|Q,
	/* 30 */ T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q,
	/* 38 */ T|X|F|V|Q, T|X|F|V|Q, F|V|Q, F|V|Q, F|V|Q, F|V|Q, F|V|Q, F|V|Q,
	/* 40 */ F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|F|V|Q,
	/* 48 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 50 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 58 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, F|V|Q, F|V, F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 60 */ T|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|X|F|V|Q, T|F|V|Q,
	/* 68 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 70 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q, T|F|V|Q,
	/* 78 */ T|F|V|Q, T|F|V|Q, T|F|V|Q, F|V|Q, T|F|V|Q, F|V|Q, T|F|V|Q, 0,
	/* 80 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* 88 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* 90 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* 98 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* a0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* a8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* b0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* b8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* c0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* c8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* d0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* d8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* e0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* e8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* f0 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
	/* f8 */ F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q, F|Q,
};
#undef T
#undef X
#undef F
#undef W
#undef V
#undef Q

static int is_tchar(unsigned char c) { return byte_class[c] & C_TCHAR; }
static int is_hex(unsigned char c) { return byte_class[c] & C_HEX; }
static int is_field_byte(unsigned char c) { return byte_class[c] & C_FIELD; }
static int is_ws(unsigned char c) { return byte_class[c] & C_WS; }
static int is_vchar(unsigned char c) { return byte_class[c] & C_VCHAR; }
static int is_qdtext(unsigned char c) { return byte_class[c] & C_QDTEXT; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static unsigned
hex_value(unsigned char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* ASCII only: field names and tokens are ASCII, and the C locale must not
 * matter (tolower() would consult it). */
static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int
ieq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* ---- Heads: request line, status line, field lines ------------------------------ */

/*
 * The head parsers return the head length as an int, so a head can be at
 * most INT_MAX bytes.  Real heads are capped far lower by the caller
 * (max_header_bytes); this only keeps the return value honest for any input.
 */
#define HEAD_LEN_MAX ((size_t)INT_MAX)

/* A read position in the buffer being parsed.  Every step function below
 * returns 1 when its piece is complete (s->i advanced past it), 0 when the
 * buffer ends first, or -status at the first byte that cannot belong to it. */
struct scan {
	const unsigned char *b;
	size_t len;
	size_t i;
};

static const char *
at(const struct scan *s, size_t i)
{
	return (const char *)s->b + i;
}

/* CRLF; a CR alone or an LF alone is an error (RFC 9112 §2.2: a bare CR must
 * be rejected or replaced; we are strict about LF too, because a server
 * behind us that is not would see different line boundaries). */
static int
expect_crlf(struct scan *s, int bad)
{
	if (s->i == s->len)
		return 0;
	if (s->b[s->i] != '\r')
		return bad;
	if (s->i + 1 == s->len)
		return 0;
	if (s->b[s->i + 1] != '\n')
		return bad;
	s->i += 2;
	return 1;
}

/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF)
 * received before the request-line (some clients send one after a POST). */
static int
skip_empty_lines(struct scan *s)
{
	int rc;

	while (s->i < s->len && s->b[s->i] == '\r')
		if ((rc = expect_crlf(s, -400)) <= 0)
			return rc;
	return s->i < s->len;
}

/*
 * method = token (RFC 9112 §3.1), at most CAP_METHOD_BYTES, then one SP.
 * §3 suggests 501 for a method longer than any we implement; a method past
 * the cap is far more likely garbage than a method, so it is a 400 like any
 * other malformed request line.
 */
static int
parse_method(struct scan *s, struct http_request *req)
{
	size_t start = s->i;

	for (; s->i < s->len; s->i++) {
		unsigned char c = s->b[s->i];

		if (c == ' ' && s->i > start) {
			req->method = at(s, start);
			req->method_len = s->i - start;
			s->i++;
			return 1;
		}
		if (!is_tchar(c) || s->i - start == CAP_METHOD_BYTES)
			return -400;
	}
	return 0;
}

/*
 * request-target (RFC 9112 §3.2) then one SP.  Every form of it is made of
 * visible ASCII; anything else, including a second SP, is a syntax error.
 * RFC 9112 §3: a target longer than the server wishes to parse must get a
 * 414; we say so at the first byte past the cap, not when the line ends.
 */
static int
parse_target(struct scan *s, struct http_request *req)
{
	size_t start = s->i;

	for (; s->i < s->len; s->i++) {
		unsigned char c = s->b[s->i];

		if (c == ' ' && s->i > start) {
			req->target = at(s, start);
			req->target_len = s->i - start;
			s->i++;
			return 1;
		}
		if (!is_vchar(c))
			return -400;
		if (s->i - start == CAP_URI_BYTES)
			return -414;
	}
	return 0;
}

/*
 * HTTP-version = HTTP-name "/" DIGIT "." DIGIT (RFC 9112 §2.3), matched
 * against a shape in which '#' is any DIGIT.  HTTP-name is case-sensitive.
 * Another digit where the shape has the major version 1 (the HTTP/2 preface,
 * an HTTP/0.9 guess) is `unsupported` as soon as it is seen.  Every 1.x with
 * x > 0 is read as 1.1: a recipient must accept higher minor versions of its
 * major version (§2.3).
 */
static const char version_shape[] = "HTTP/1.#";

static int
parse_version(struct scan *s, int *minor, int bad, int unsupported)
{
	size_t n = sizeof version_shape - 1;

	for (size_t k = 0; k < n; k++) {
		unsigned char want = (unsigned char)version_shape[k], c;

		if (s->i + k == s->len)
			return 0;
		c = s->b[s->i + k];
		if (want == '#' ? !is_digit(c) : c != want)
			return is_digit(want) && is_digit(c) ? unsupported : bad;
	}
	*minor = s->b[s->i + n - 1] == '0' ? 0 : 1;
	s->i += n;
	return 1;
}

/*
 * field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112 §5).  The
 * caller has checked that the line starts with a tchar.  No whitespace may
 * come between the name and the colon (§5.1: it must be rejected, because
 * recipients disagree on what it means).  The value may hold VCHAR, obs-text,
 * SP and HTAB; NUL, a lone CR, other controls and DEL are rejected (RFC 9110
 * §5.5).  OWS around the value is not part of it.
 */
static int
parse_field_line(struct scan *s, struct http_header *h)
{
	size_t start = s->i, vstart, vend;

	for (;; s->i++) {
		if (s->i == s->len)
			return 0;
		if (s->b[s->i] == ':')
			break;
		if (!is_tchar(s->b[s->i]))
			return -400;
	}
	h->name = at(s, start);
	h->name_len = s->i - start;
	s->i++;

	while (s->i < s->len && is_ws(s->b[s->i]))
		s->i++;
	vstart = vend = s->i;
	for (;; s->i++) {
		unsigned char c;

		if (s->i == s->len)
			return 0;
		c = s->b[s->i];
		if (c == '\r')
			break;
		if (!is_field_byte(c))
			return -400;
		if (!is_ws(c))
			vend = s->i + 1;
	}
	h->value = at(s, vstart);
	h->value_len = vend - vstart;
	return expect_crlf(s, -400);
}

/*
 * Field lines up to and including the empty line that ends the head.  A line
 * that starts with SP or HTAB is obs-fold (or whitespace after the start
 * line), which a server must reject (RFC 9112 §5.2, §2.2); a line that starts
 * with ":" has no name.  The field that would exceed CAP_HEADERS is refused
 * with `too_many` at its first byte.
 */
static int
parse_fields(struct scan *s, struct http_header *h, size_t *num,
    int too_many)
{
	int rc;

	*num = 0;
	for (;;) {
		if (s->i == s->len)
			return 0;
		if (s->b[s->i] == '\r')
			return expect_crlf(s, -400);
		if (!is_tchar(s->b[s->i]))
			return -400;
		if (*num == CAP_HEADERS)
			return too_many;
		if ((rc = parse_field_line(s, &h[*num])) <= 0)
			return rc;
		(*num)++;
	}
}

int
http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	struct scan s = { (const unsigned char *)buf, len, 0 };
	int rc;

	if (s.len > HEAD_LEN_MAX)
		s.len = HEAD_LEN_MAX;
	req->num_headers = 0;
	rc = skip_empty_lines(&s);
	if (rc > 0)
		rc = parse_method(&s, req);
	if (rc > 0)
		rc = parse_target(&s, req);
	if (rc > 0)
		rc = parse_version(&s, &req->minor_version, -400, -505);
	if (rc > 0)
		rc = expect_crlf(&s, -400);
	if (rc > 0)
		rc = parse_fields(&s, req->headers, &req->num_headers, -431);
	if (rc == 0 && len > HEAD_LEN_MAX)
		return -431;
	return rc > 0 ? (int)s.i : rc;
}

static int
expect_sp(struct scan *s)
{
	if (s->i == s->len)
		return 0;
	return s->b[s->i++] == ' ' ? 1 : -1;
}

/* status-code = 3DIGIT (RFC 9112 §4); a first digit of 0 is no status class
 * (RFC 9110 §15), so the code is 100..999. */
static int
parse_status(struct scan *s, int *status)
{
	int v = 0;

	for (size_t k = 0; k < 3; k++, s->i++) {
		unsigned char c;

		if (s->i == s->len)
			return 0;
		c = s->b[s->i];
		if (!is_digit(c) || (k == 0 && c == '0'))
			return -1;
		v = v * 10 + (c - '0');
	}
	*status = v;
	return 1;
}

/*
 * SP reason-phrase CRLF, reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
 * (RFC 9112 §4).  The reason is optional and the SP before an empty one is
 * tolerated when missing ("HTTP/1.1 200\r\n"): servers send both, and the
 * reason carries no meaning (§4: a client SHOULD ignore it).
 */
static int
parse_reason(struct scan *s, struct http_response *resp)
{
	size_t start;

	if (s->i == s->len)
		return 0;
	if (s->b[s->i] == ' ')
		s->i++;
	else if (s->b[s->i] != '\r')
		return -1;
	for (start = s->i; s->i < s->len && s->b[s->i] != '\r'; s->i++)
		if (!is_field_byte(s->b[s->i]))
			return -1;
	resp->reason = at(s, start);
	resp->reason_len = s->i - start;
	return expect_crlf(s, -1);
}

int
http_parse_response(const char *buf, size_t len, struct http_response *resp)
{
	struct scan s = { (const unsigned char *)buf, len, 0 };
	int rc;

	if (s.len > HEAD_LEN_MAX)
		s.len = HEAD_LEN_MAX;
	resp->num_headers = 0;
	rc = parse_version(&s, &resp->minor_version, -1, -1);
	if (rc > 0)
		rc = expect_sp(&s);
	if (rc > 0)
		rc = parse_status(&s, &resp->status);
	if (rc > 0)
		rc = parse_reason(&s, resp);
	if (rc > 0)
		rc = parse_fields(&s, resp->headers, &resp->num_headers, -1);
	/* A backend's malformed head is our 502 whatever was wrong with it. */
	if (rc < 0 || (rc == 0 && len > HEAD_LEN_MAX))
		return -502;
	return rc > 0 ? (int)s.i : 0;
}

/* ---- Field helpers ------------------------------------------------------------- */

int
http_token_eq(const char *s, size_t n, const char *lit)
{
	return ieq(s, n, lit, strlen(lit));
}

const struct http_header *
http_header_find(const struct http_header *h,
    size_t n, const char *name, size_t *count)
{
	const struct http_header *first = NULL;
	size_t name_len = strlen(name), found = 0;

	for (size_t i = 0; i < n; i++) {
		if (!ieq(h[i].name, h[i].name_len, name, name_len))
			continue;
		if (!first)
			first = &h[i];
		found++;
	}
	if (count)
		*count = found;
	return first;
}

/*
 * Steps through a comma-separated list (RFC 9110 §5.6.1): stores the next
 * element, OWS trimmed, in *el / *el_len and moves *p past it and its comma.
 * Returns 0 when the list is exhausted.  Empty elements are returned (empty),
 * so that each caller decides what they mean; a value with no bytes at all
 * is one empty element.
 */
static int
list_next(const char **p, const char *end, const char **el,
    size_t *el_len)
{
	const char *q = *p, *e;

	if (q == NULL)
		return 0;
	while (q < end && is_ws((unsigned char)*q))
		q++;
	for (e = q; e < end && *e != ','; e++)
		;
	*p = e < end ? e + 1 : NULL;  /* NULL: that was the last element */
	while (e > q && is_ws((unsigned char)e[-1]))
		e--;
	*el = q;
	*el_len = (size_t)(e - q);
	return 1;
}

static int
list_has_n(const char *value, size_t len, const char *tok,
    size_t tok_len)
{
	const char *p = value, *el;
	size_t el_len;

	while (list_next(&p, value + len, &el, &el_len))
		if (ieq(el, el_len, tok, tok_len))
			return 1;
	return 0;
}

int
http_list_has(const char *value, size_t len, const char *token)
{
	return list_has_n(value, len, token, strlen(token));
}

/* RFC 9110 §7.6.1 (Connection, Proxy-Connection, Keep-Alive, TE,
 * Transfer-Encoding, Upgrade) and §11.7.1-2 (Proxy-Authenticate,
 * Proxy-Authorization: for the proxy itself).  Trailer (RFC 9110 §6.6.2)
 * announces trailer fields of the chunked coding of this hop, which the
 * decoder drops; RFC 2616 §13.5.1 listed it as hop-by-hop too. */
static const char *const hop_by_hop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
};

int
http_is_hop_by_hop(const struct http_header *h,
    const struct http_header *all, size_t n)
{
	for (size_t i = 0; i < sizeof hop_by_hop / sizeof hop_by_hop[0]; i++)
		if (http_token_eq(h->name, h->name_len, hop_by_hop[i]))
			return 1;
	/* A sender lists in Connection the other fields meant for this hop only
	 * (RFC 9110 §7.6.1); a proxy must remove them too. */
	for (size_t i = 0; i < n; i++)
		if (http_token_eq(all[i].name, all[i].name_len, "Connection") &&
		    list_has_n(all[i].value, all[i].value_len, h->name, h->name_len))
			return 1;
	return 0;
}

/* RFC 9112 §9.3: HTTP/1.1 is persistent unless "close" is sent; HTTP/1.0 only
 * with "keep-alive" (§C.2.2).  "close" wins over "keep-alive". */
int
http_keep_alive(int minor_version, const struct http_header *h, size_t n)
{
	int keep = 0;

	for (size_t i = 0; i < n; i++) {
		if (!http_token_eq(h[i].name, h[i].name_len, "Connection"))
			continue;
		if (http_list_has(h[i].value, h[i].value_len, "close"))
			return 0;
		if (http_list_has(h[i].value, h[i].value_len, "keep-alive"))
			keep = 1;
	}
	return minor_version >= 1 || keep;
}

/* ---- The request-target ------------------------------------------------------ */

/* Whether t[0..n) starts with the literal, ASCII case-insensitive. */
static int
starts_with(const char *t, size_t n, const char *lit)
{
	size_t k = strlen(lit);
	return n >= k && ieq(t, k, lit, k);
}

int
http_target_path(const char *t, size_t n, const char **path, size_t *path_len)
{
	/* RFC 9112 §3.2: no form of request-target has a fragment.  A server
	 * behind us may drop one ("/v1/chat/completions#x" would then be a
	 * chat request we did not see as one) or keep it: either way we and
	 * it would disagree on the path. */
	if (memchr(t, '#', n) != NULL)
		return -1;
	if (starts_with(t, n, "http://") || starts_with(t, n, "https://")) {
		size_t skip = t[4] == ':' ? 7 : 8, a;
		/* The authority ends at the first "/", "?" (RFC 3986 §3.2);
		 * the path must follow it.  userinfo is an error for a
		 * recipient (RFC 9110 §4.2.4), and an empty host is no host. */
		for (a = skip; a < n && t[a] != '/' && t[a] != '?'; a++)
			if (t[a] == '@')
				return -1;
		if (a == skip || a == n || t[a] != '/')
			return -1;
		t += a;
		n -= a;
	}
	if (n == 0 || t[0] != '/')
		return -1;

	const char *q = memchr(t, '?', n);
	const char *end = q != NULL ? q : t + n;
	for (const char *p = t; p < end; p++) {
		if (*p == '\\')
			return -1;
		if (*p != '%' || end - p <= 2 || !is_hex((unsigned char)p[1]) ||
		    !is_hex((unsigned char)p[2]))
			continue;
		/* An encoded ".", "/" or "\" could make another path of it; an
		 * encoded unreserved character (RFC 3986 §2.3: ALPHA DIGIT
		 * "-" "." "_" "~") is the same path to a server that decodes it
		 * (§6.2.2.2) but not to our routing ("/v1/chat/completion%73"
		 * would escape metering).  No client needs to send either. */
		unsigned char d = (unsigned char)(hex_value((unsigned char)p[1]) << 4 |
		    hex_value((unsigned char)p[2]));
		if (d == '/' || d == '\\' || is_digit(d) ||
		    (lower(d) >= 'a' && lower(d) <= 'z') || d == '-' ||
		    d == '.' || d == '_' || d == '~')
			return -1;
	}
	for (const char *seg = t + 1; seg <= end; ) {
		const char *slash = memchr(seg, '/', (size_t)(end - seg));
		size_t len = (size_t)((slash != NULL ? slash : end) - seg);
		if ((len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return -1;
		if (slash == NULL)
			break;
		seg = slash + 1;
	}
	*path = t;
	*path_len = n;
	return 0;
}

/* ---- Body framing ---------------------------------------------------------------- */

/*
 * Content-Length = 1*DIGIT (RFC 9110 §8.6).  No sign, no spaces, no list:
 * anything a server behind us might read as another number is refused.  At
 * most 19 digits, leading zeros included, so the value always fits uint64_t
 * without an overflow check (a 20-digit length is no real body).
 */
#define CONTENT_LENGTH_DIGITS 19

static int
parse_content_length(const struct http_header *h, uint64_t *out)
{
	uint64_t v = 0;

	if (h->value_len == 0 || h->value_len > CONTENT_LENGTH_DIGITS)
		return -1;
	for (size_t i = 0; i < h->value_len; i++) {
		unsigned char c = (unsigned char)h->value[i];

		if (!is_digit(c))
			return -1;
		v = v * 10 + (unsigned)(c - '0');
	}
	*out = v;
	return 0;
}

/* What the transfer codings of a message say about its framing. */
enum te_kind {
	TE_CHUNKED,       /* exactly "chunked" */
	TE_CODED_CHUNKED, /* other codings, then a final "chunked" */
	TE_NOT_CHUNKED,   /* the final coding is not chunked */
	TE_BAD,           /* empty, not a list of tokens, or chunked twice */
};

/*
 * Reads every Transfer-Encoding field of h[0..n) as one list (RFC 9110 §5.3).
 * Empty list elements are ignored (RFC 9110 §5.6.1.2); a coding with
 * parameters is not accepted (chunked has none, and we decode no other).
 * RFC 9112 §6.1: chunked must be the final coding and applied only once.
 */
static enum te_kind
te_classify(const struct http_header *h, size_t n)
{
	size_t codings = 0, chunked = 0;
	int last_chunked = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = h[i].value, *el;
		size_t el_len;

		if (!http_token_eq(h[i].name, h[i].name_len, "Transfer-Encoding"))
			continue;
		while (list_next(&p, h[i].value + h[i].value_len, &el, &el_len)) {
			if (el_len == 0)
				continue;
			for (size_t k = 0; k < el_len; k++)
				if (!is_tchar((unsigned char)el[k]))
					return TE_BAD;
			codings++;
			last_chunked = http_token_eq(el, el_len, "chunked");
			chunked += (size_t)last_chunked;
		}
	}
	if (codings == 0)
		return TE_BAD;
	if (!last_chunked)
		return TE_NOT_CHUNKED;
	if (chunked > 1)
		return TE_BAD;
	return codings == 1 ? TE_CHUNKED : TE_CODED_CHUNKED;
}

/*
 * Host = uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name (unreserved,
 * pct-encoded, sub-delims), an IPv4 address or an [IP-literal], then digits.
 * Checked by bytes only: what matters is that nothing in it (a space, "@",
 * "/", "?", "#") can make a server behind us or a log reader see another
 * host or another target.  Empty is allowed (RFC 9112 §3.2).
 */
static int
host_value_ok(const char *v, size_t n)
{
	static const char other[] = "-._~!$&'()*+,;=%:[]";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!(is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') ||
		    (c != '\0' && strchr(other, c) != NULL)))
			return 0;
	}
	return 1;
}

/*
 * A field whose name is a framing field's with "_" for "-" ("Content_Length",
 * "transfer_encoding").  We would pass it on as an unknown field, but servers
 * behind a CGI-style gateway (HTTP_CONTENT_LENGTH) read "_" and "-" alike and
 * would see a second, different framing: refused, as nginx drops them.
 */
static int
framing_alias(const struct http_header *h)
{
	static const char *const framing[] = { "content-length",
	    "transfer-encoding" };

	if (memchr(h->name, '_', h->name_len) == NULL)
		return 0;
	for (size_t k = 0; k < sizeof framing / sizeof framing[0]; k++) {
		size_t len = strlen(framing[k]), i;
		if (len != h->name_len)
			continue;
		for (i = 0; i < len; i++) {
			unsigned char c = lower((unsigned char)h->name[i]);
			if (c != (unsigned char)framing[k][i] &&
			    !(c == '_' && framing[k][i] == '-'))
				break;
		}
		if (i == len)
			return 1;
	}
	return 0;
}

int
http_request_check(const struct http_request *req, struct http_framing *f)
{
	const struct http_header *h = req->headers, *cl, *host;
	size_t n = req->num_headers, hosts, cls, tes;
	uint64_t length = 0;

	f->kind = HTTP_BODY_NONE;
	f->length = 0;

	/* RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request
	 * without Host, to any request with more than one, and to one whose
	 * Host is not a valid host. */
	host = http_header_find(h, n, "Host", &hosts);
	if (hosts > 1 || (hosts == 0 && req->minor_version >= 1))
		return 400;
	if (host != NULL && !host_value_ok(host->value, host->value_len))
		return 400;
	for (size_t i = 0; i < n; i++)
		if (framing_alias(&h[i]))
			return 400;

	/* RFC 9112 §6.3 rule 5: an invalid Content-Length is unrecoverable. */
	cl = http_header_find(h, n, "Content-Length", &cls);
	if (cls > 1 || (cl && parse_content_length(cl, &length) < 0))
		return 400;

	http_header_find(h, n, "Transfer-Encoding", &tes);
	if (tes > 0) {
		/* §6.1: a server may reject CL with TE (it is the smuggling
		 * signature), and must treat TE in HTTP/1.0 as faulty framing.
		 * A repeated TE field is legal but never needed; refusing it
		 * leaves no room for two readers to combine it differently. */
		if (cl || req->minor_version == 0 || tes > 1)
			return 400;
		switch (te_classify(h, n)) {
		case TE_CHUNKED:
			f->kind = HTTP_BODY_CHUNKED;
			return 0;
		case TE_CODED_CHUNKED:
			/* §6.1: a coding we do not understand is 501. */
			return 501;
		case TE_NOT_CHUNKED:
		case TE_BAD:
			/* §6.3 rule 4: a request whose final coding is not
			 * chunked has no reliable length: 400.  Neither has
			 * one with chunked twice (§7.1 forbids it) or with no
			 * coding at all. */
			return 400;
		}
		return 400;
	}
	if (cl) {
		f->kind = HTTP_BODY_LENGTH;
		f->length = length;
	}
	return 0;
}

int
http_response_framing(const struct http_response *resp, int head_request,
    struct http_framing *f)
{
	const struct http_header *h = resp->headers, *cl;
	size_t n = resp->num_headers, cls;
	uint64_t length = 0;

	f->kind = HTTP_BODY_NONE;
	f->length = 0;

	/* RFC 9112 §6.3 rule 1: whatever the fields say. */
	if (head_request || resp->status < 200 || resp->status == 204 ||
	    resp->status == 304)
		return 0;

	cl = http_header_find(h, n, "Content-Length", &cls);
	if (http_header_find(h, n, "Transfer-Encoding", NULL)) {
		/* §6.3 rule 3: CL with TE may be an attempt at smuggling;
		 * §6.1: TE in an HTTP/1.0 message is faulty framing. */
		if (cl || resp->minor_version == 0)
			return -1;
		switch (te_classify(h, n)) {
		case TE_CHUNKED:
			f->kind = HTTP_BODY_CHUNKED;
			return 0;
		case TE_NOT_CHUNKED:
			/* §6.3 rule 4: read until the server closes. */
			f->kind = HTTP_BODY_UNTIL_CLOSE;
			return 0;
		case TE_CODED_CHUNKED:
			/* We would de-chunk and forward a body still in a
			 * coding the client is no longer told about. */
		case TE_BAD:
			return -1;
		}
		return -1;
	}
	if (cl) {
		/* §6.3 rule 5: a proxy must not relay an invalid length. */
		if (cls > 1 || parse_content_length(cl, &length) < 0)
			return -1;
		f->kind = HTTP_BODY_LENGTH;
		f->length = length;
		return 0;
	}
	/* §6.3 rule 8. */
	f->kind = HTTP_BODY_UNTIL_CLOSE;
	return 0;
}

/* ---- Chunked transfer coding (RFC 9112 §7.1) --------------------------------- */

/*
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val      = token / quoted-string
 *
 * One state per place in that grammar; a zero-initialised decoder is at the
 * start of a chunk-size.
 */
enum chunked_state {
	CH_SIZE = 0,     /* chunk-size digits */
	CH_EXT_BWS,      /* BWS that only ";" may follow */
	CH_EXT_NAME0,    /* after ";": BWS, then the first byte of ext-name */
	CH_EXT_NAME,     /* ext-name */
	CH_EXT_NAME_BWS, /* BWS after ext-name: "=" or ";" next */
	CH_EXT_VAL0,     /* after "=": BWS, then a token or a quoted-string */
	CH_EXT_VAL,      /* ext-val; d->quote is set inside a quoted-string */
	CH_EXT_VAL_END,  /* just after the closing DQUOTE */
	CH_SIZE_LF,      /* the CR of the size line was seen */
	CH_DATA,         /* d->remaining payload bytes to go */
	CH_DATA_CR,      /* CRLF after chunk-data */
	CH_DATA_LF,
	CH_TRAILER,      /* start of a trailer field line, or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,       /* the CR of the final CRLF was seen */
	CH_DONE,
	CH_ERROR,
};

/* Inside a quoted-string of an ext-val: d->quote is '"', or '\\' just after a
 * backslash.  quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) (RFC 9110
 * §5.6.4), which is exactly the field-byte class. */
static int
quoted_byte(struct http_chunked *d, unsigned char c)
{
	if (d->quote == '\\') {
		d->quote = '"';
		return is_field_byte(c) ? 0 : -1;
	}
	if (c == '\\')
		d->quote = '\\';
	else if (c == '"') {
		d->quote = 0;
		d->state = CH_EXT_VAL_END;
	} else if (!is_qdtext(c))
		return -1;
	return 0;
}

static int
size_digit(struct http_chunked *d, unsigned char c)
{
	/* 16 significant hex digits fill 64 bits; a 17th would overflow, and
	 * RFC 9112 §7.1 requires a recipient to guard against that.  Leading
	 * zeros are harmless and bounded by the line cap. */
	if (d->remaining >> 60)
		return -1;
	d->remaining = d->remaining << 4 | hex_value(c);
	d->digits++;
	return 0;
}

/* One byte of a chunk-size line other than its CR and LF. */
static int
size_line_byte(struct http_chunked *d, unsigned char c)
{
	int ws = is_ws(c), tchar = is_tchar(c);

	if (++d->line_bytes > CAP_CHUNK_LINE_BYTES)
		return -1;
	switch (d->state) {
	case CH_SIZE:
		if (is_hex(c))
			return size_digit(d, c);
		if (d->digits == 0)      /* chunk-size = 1*HEXDIG */
			return -1;
		d->state = ws ? CH_EXT_BWS : c == ';' ? CH_EXT_NAME0 : CH_ERROR;
		break;
	case CH_EXT_BWS:
	case CH_EXT_VAL_END:
		d->state = ws ? CH_EXT_BWS : c == ';' ? CH_EXT_NAME0 : CH_ERROR;
		break;
	case CH_EXT_NAME0:
		d->state = ws ? CH_EXT_NAME0 : tchar ? CH_EXT_NAME : CH_ERROR;
		break;
	case CH_EXT_NAME:
		d->state = tchar ? CH_EXT_NAME : ws ? CH_EXT_NAME_BWS :
		    c == '=' ? CH_EXT_VAL0 : c == ';' ? CH_EXT_NAME0 : CH_ERROR;
		break;
	case CH_EXT_NAME_BWS:
		d->state = ws ? CH_EXT_NAME_BWS : c == '=' ? CH_EXT_VAL0 :
		    c == ';' ? CH_EXT_NAME0 : CH_ERROR;
		break;
	case CH_EXT_VAL0:
		if (c == '"') {
			d->quote = '"';
			d->state = CH_EXT_VAL;
		} else
			d->state = ws ? CH_EXT_VAL0 : tchar ? CH_EXT_VAL : CH_ERROR;
		break;
	case CH_EXT_VAL:
		if (d->quote)
			return quoted_byte(d, c);
		d->state = tchar ? CH_EXT_VAL : ws ? CH_EXT_BWS :
		    c == ';' ? CH_EXT_NAME0 : CH_ERROR;
		break;
	}
	return d->state == CH_ERROR ? -1 : 0;
}

/* The CR that ends a size line: valid only where the line may end. */
static int
size_line_cr(struct http_chunked *d)
{
	switch (d->state) {
	case CH_SIZE:
		if (d->digits == 0)
			return -1;
		break;
	case CH_EXT_NAME:
	case CH_EXT_VAL_END:
		break;
	case CH_EXT_VAL:
		if (d->quote)   /* a CR inside a quoted-string is a control */
			return -1;
		break;
	default:
		return -1;
	}
	d->state = CH_SIZE_LF;
	return 0;
}

static int
size_line_lf(struct http_chunked *d, unsigned char c)
{
	if (c != '\n')
		return -1;
	d->digits = 0;
	d->line_bytes = 0;
	/* last-chunk = 1*("0") [ chunk-ext ] CRLF */
	d->state = d->remaining ? CH_DATA : CH_TRAILER;
	return 0;
}

/* The CRLF after chunk-data; the next chunk-size follows. */
static int
data_end_byte(struct http_chunked *d, unsigned char c)
{
	if (d->state == CH_DATA_CR) {
		if (c != '\r')
			return -1;
		d->state = CH_DATA_LF;
		return 0;
	}
	if (c != '\n')
		return -1;
	d->state = CH_SIZE;
	return 0;
}

/*
 * trailer-section = *( field-line CRLF ), checked like head fields (RFC 9112
 * §7.1.2, §5): token name, colon right after it, no obs-fold, no controls.
 * Every byte of the field lines counts toward CAP_TRAILER_BYTES; the final
 * CRLF does not.
 */
static int
trailer_byte(struct http_chunked *d, unsigned char c)
{
	if (d->state == CH_TRAILER && c == '\r') {
		d->state = CH_END_LF;
		return 0;
	}
	if (d->state == CH_END_LF) {
		if (c != '\n')
			return -1;
		d->state = CH_DONE;
		return 0;
	}
	if (++d->line_bytes > CAP_TRAILER_BYTES)
		return -1;
	switch (d->state) {
	case CH_TRAILER:
		d->state = is_tchar(c) ? CH_TRAILER_NAME : CH_ERROR;
		break;
	case CH_TRAILER_NAME:
		d->state = c == ':' ? CH_TRAILER_VALUE : is_tchar(c) ?
		    CH_TRAILER_NAME : CH_ERROR;
		break;
	case CH_TRAILER_VALUE:
		d->state = c == '\r' ? CH_TRAILER_LF : is_field_byte(c) ?
		    CH_TRAILER_VALUE : CH_ERROR;
		break;
	case CH_TRAILER_LF:
		d->state = c == '\n' ? CH_TRAILER : CH_ERROR;
		break;
	}
	return d->state == CH_ERROR ? -1 : 0;
}

/* One framing byte (anything but chunk-data). */
static int
chunked_byte(struct http_chunked *d, unsigned char c)
{
	switch (d->state) {
	case CH_SIZE:
	case CH_EXT_BWS:
	case CH_EXT_NAME0:
	case CH_EXT_NAME:
	case CH_EXT_NAME_BWS:
	case CH_EXT_VAL0:
	case CH_EXT_VAL:
	case CH_EXT_VAL_END:
		return c == '\r' ? size_line_cr(d) : size_line_byte(d, c);
	case CH_SIZE_LF:
		return size_line_lf(d, c);
	case CH_DATA_CR:
	case CH_DATA_LF:
		return data_end_byte(d, c);
	case CH_TRAILER:
	case CH_TRAILER_NAME:
	case CH_TRAILER_VALUE:
	case CH_TRAILER_LF:
	case CH_END_LF:
		return trailer_byte(d, c);
	default:
		return -1;
	}
}

ssize_t
http_chunked_decode(struct http_chunked *d, char *buf, size_t len,
    size_t *out)
{
	size_t i = 0, w = 0;

	*out = 0;
	if (d->state == CH_ERROR)
		return -1;
	/* The count consumed must fit the return type. */
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (i < len && d->state != CH_DONE) {
		if (d->state == CH_DATA) {
			size_t n = len - i;

			if (n > d->remaining)
				n = (size_t)d->remaining;
			if (w != i)
				memmove(buf + w, buf + i, n);
			w += n;
			i += n;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			continue;
		}
		if (chunked_byte(d, (unsigned char)buf[i]) < 0) {
			d->state = CH_ERROR;
			*out = w;  /* the payload before the error was well framed */
			return -1;
		}
		i++;
	}
	*out = w;
	return (ssize_t)i;
}

int
http_chunked_done(const struct http_chunked *d)
{
	return d->state == CH_DONE;
}

size_t
http_chunk_size_line(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char digits[sizeof n * 2];
	size_t k = 0, len = 0;

	do {
		digits[k++] = hex[n & 0xf];
		n >>= 4;
	} while (n);
	while (k)
		out[len++] = digits[--k];
	out[len++] = '\r';
	out[len++] = '\n';
	out[len] = '\0';  /* room for it: 16 digits + CRLF + NUL = 19 */
	return len;
}

/* ---- Status table ------------------------------------------------------------ */

/* Reason phrases as RFC 9110 §15 names them. */
static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 101, "Switching Protocols" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 203, "Non-Authoritative Information" },
	{ 204, "No Content" },
	{ 205, "Reset Content" },
	{ 206, "Partial Content" },
	{ 300, "Multiple Choices" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 305, "Use Proxy" },
	{ 306, "(Unused)" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 407, "Proxy Authentication Required" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" },
	{ 425, "Too Early" },            /* RFC 8470 */
	{ 426, "Upgrade Required" },
	{ 428, "Precondition Required" },  /* RFC 6585 */
	{ 429, "Too Many Requests" },      /* RFC 6585 */
	{ 431, "Request Header Fields Too Large" }, /* RFC 6585 */
	{ 451, "Unavailable For Legal Reasons" },  /* RFC 7725 */
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
	{ 511, "Network Authentication Required" }, /* RFC 6585 */
};

const char *
http_reason(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}
