/*
 * fuzz_request.c — the HTTP request head parser (http_parse_request) and what
 * the connection asks of a parsed head: framing, keep-alive, hop-by-hop.
 *
 * Properties: a complete head is n bytes and parses again from exactly
 * buf[0..n); every prefix of it is "need more" (errors are reported at the
 * offending byte, so a prefix of a valid head is never an error); every field
 * points inside the head; framing is decided or refused with a 4xx/5xx; the
 * path routed on (http_target_path) has no dot segment, fragment or
 * backslash.
 */
#include <string.h>

#include "fuzz.h"
#include "http.h"

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* What the proxy routes on and sends on: a path inside the target, that a
 * server behind it cannot read as another path. */
static void
check_target(const char *t, size_t n)
{
	const char *path, *q;
	size_t len, plen;

	if (http_target_path(t, n, &path, &len) != 0)
		return;
	FUZZ_CHECK(len > 0 && inside(path, len, t, n));
	FUZZ_CHECK(path[0] == '/');
	FUZZ_CHECK(memchr(path, '#', len) == NULL);
	q = memchr(path, '?', len);
	plen = q != NULL ? (size_t)(q - path) : len;
	FUZZ_CHECK(memchr(path, '\\', plen) == NULL);
	/* No dot segment: "/./", "/../", or one ending the path. */
	for (size_t i = 0; i < plen; i++) {
		size_t seg;

		if (path[i] != '/')
			continue;
		seg = i + 1;
		while (seg < plen && path[seg] != '/')
			seg++;
		seg -= i + 1;
		FUZZ_CHECK(!(seg == 1 && path[i + 1] == '.'));
		FUZZ_CHECK(!(seg == 2 && path[i + 1] == '.' && path[i + 2] == '.'));
	}
}

static void
check_head(const char *buf, size_t n, const struct http_request *req)
{
	struct http_framing f;
	size_t i, count;
	int status;

	FUZZ_CHECK(req->method_len > 0 && req->method_len <= CAP_METHOD_BYTES);
	FUZZ_CHECK(inside(req->method, req->method_len, buf, n));
	FUZZ_CHECK(req->target_len > 0 && req->target_len <= CAP_URI_BYTES);
	FUZZ_CHECK(inside(req->target, req->target_len, buf, n));
	FUZZ_CHECK(req->minor_version >= 0);
	FUZZ_CHECK(req->num_headers <= CAP_HEADERS);
	for (i = 0; i < req->num_headers; i++) {
		const struct http_header *h = &req->headers[i];

		FUZZ_CHECK(h->name_len > 0);
		FUZZ_CHECK(inside(h->name, h->name_len, buf, n));
		FUZZ_CHECK(inside(h->value, h->value_len, buf, n));
		FUZZ_CHECK(memchr(h->value, '\r', h->value_len) == NULL);
		FUZZ_CHECK(memchr(h->value, '\n', h->value_len) == NULL);
		(void)http_is_hop_by_hop(h, req->headers, req->num_headers);
		(void)http_list_has(h->value, h->value_len, "chunked");
	}

	status = http_request_check(req, &f);
	FUZZ_CHECK(status == 0 || (status >= 400 && status <= 599));
	if (status == 0) {
		FUZZ_CHECK(f.kind == HTTP_BODY_NONE || f.kind == HTTP_BODY_LENGTH ||
		    f.kind == HTTP_BODY_CHUNKED);
		/* Never both framings, never an ambiguous Host (smuggling). */
		FUZZ_CHECK(http_header_find(req->headers, req->num_headers,
		    "content-length", &count) == NULL || count == 1);
		if (f.kind == HTTP_BODY_CHUNKED)
			FUZZ_CHECK(http_header_find(req->headers,
			    req->num_headers, "content-length", NULL) == NULL);
		(void)http_header_find(req->headers, req->num_headers, "host",
		    &count);
		FUZZ_CHECK(count <= 1);
	}
	(void)http_keep_alive(req->minor_version, req->headers, req->num_headers);
	check_target(req->target, req->target_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request req, again;
	const char *buf = (const char *)data;
	int r, r2;
	size_t cut;

	r = http_parse_request(buf, size, &req);
	FUZZ_CHECK(r == 0 || r == -400 || r == -414 || r == -431 || r == -505 ||
	    (r > 0 && (size_t)r <= size));
	if (r > 0) {
		check_head(buf, (size_t)r, &req);
		/* The head alone parses to itself. */
		r2 = http_parse_request(buf, (size_t)r, &again);
		FUZZ_CHECK(r2 == r);
		FUZZ_CHECK(again.num_headers == req.num_headers);
	}
	/* A prefix of a valid prefix (or of a head) needs more bytes. */
	if (r >= 0 && size > 0) {
		size_t end = r > 0 ? (size_t)r : size;

		cut = (size * 2654435761u) % end;
		FUZZ_CHECK(http_parse_request(buf, cut, &again) == 0);
		FUZZ_CHECK(http_parse_request(buf, end - 1, &again) == 0);
	}
	/* An error stays an error however much follows; a prefix of an
	 * invalid head is need-more or an error, never a head. */
	if (r < 0 && size > 0)
		FUZZ_CHECK(http_parse_request(buf, size - 1, &again) <= 0);
	return 0;
}
