/*
 * check_http.c — Check suite for src/http.c.
 *
 * Table-driven.  Every valid message is also fed cut at every byte: each
 * prefix is copied into a buffer of exactly its length, so that a parser
 * reading one byte too far is caught by AddressSanitizer.  Every invalid
 * message names its longest valid prefix: all shorter inputs must ask for
 * more, and the first byte after it must already give the error.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A byte string and its length (inputs may hold NUL). */
#define LIT(s) s, sizeof(s) - 1
/* An invalid input: `ok` is its longest valid prefix, so the first byte of
 * `bad` is the one that must be refused. */
#define BAD(ok, bad) ok bad, sizeof(ok bad) - 1, sizeof(ok) - 1

struct hdr {
	const char *name;
	const char *value;
};
/* An expected field list and its length, for table initialisers. */
#define HDRS(...) (const struct hdr[]){ __VA_ARGS__ }, \
	sizeof((const struct hdr[]){ __VA_ARGS__ }) / sizeof(struct hdr)
#define NO_HDRS NULL, 0

/* A copy of p[0..n) in a heap block of exactly n bytes. */
static char *dup_exact(const char *p, size_t n)
{
	char *b = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(b);
	if (n)
		memcpy(b, p, n);
	return b;
}

/* s[0..n) lies inside buf[0..len) and equals want. */
static void assert_span(const char *s, size_t n, const char *buf, size_t len,
    const char *want)
{
	ck_assert_ptr_nonnull(s);
	ck_assert(s >= buf && s + n <= buf + len);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(s, want, n);
}

static void assert_fields(const struct http_header *got, size_t ngot,
    const struct hdr *want, size_t nwant, const char *buf, size_t len)
{
	ck_assert_uint_eq(ngot, nwant);
	for (size_t i = 0; i < nwant; i++) {
		assert_span(got[i].name, got[i].name_len, buf, len, want[i].name);
		assert_span(got[i].value, got[i].value_len, buf, len, want[i].value);
	}
}

/* ---- Request heads ------------------------------------------------------------ */

struct req_expect {
	size_t skip;            /* empty lines before the request line */
	const char *method;
	const char *target;
	int minor;
	const struct hdr *h;
	size_t nh;
};

static int parse_req_copy(const char *raw, size_t len)
{
	struct http_request req;
	char *b = dup_exact(raw, len);
	int rc = http_parse_request(b, len, &req);

	free(b);
	return rc;
}

static void assert_request_ok(const char *raw, size_t len,
    const struct req_expect *e)
{
	struct http_request req;
	char *b = dup_exact(raw, len), *more;
	static const char body[] = "{\"model\":\"m\"}GET / HTTP/1.1\r\n\r\n";

	ck_assert_int_eq(http_parse_request(b, len, &req), (int)len);
	ck_assert_ptr_eq(req.method, b + e->skip);
	assert_span(req.method, req.method_len, b, len, e->method);
	assert_span(req.target, req.target_len, b, len, e->target);
	ck_assert_int_eq(req.minor_version, e->minor);
	assert_fields(req.headers, req.num_headers, e->h, e->nh, b, len);
	free(b);

	for (size_t k = 0; k < len; k++)
		ck_assert_msg(parse_req_copy(raw, k) == 0,
		    "prefix of %zu/%zu bytes did not ask for more", k, len);

	/* Pipelined: what follows the head is not part of it. */
	more = malloc(len + sizeof body - 1);
	ck_assert_ptr_nonnull(more);
	memcpy(more, raw, len);
	memcpy(more + len, body, sizeof body - 1);
	ck_assert_int_eq(http_parse_request(more, len + sizeof body - 1, &req),
	    (int)len);
	assert_fields(req.headers, req.num_headers, e->h, e->nh, more, len);
	free(more);
}

static const struct {
	const char *raw;
	size_t len;
	struct req_expect e;
} request_ok[] = {
	{ LIT("GET /v1/models?limit=10&order=desc HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	  { 0, "GET", "/v1/models?limit=10&order=desc", 1, HDRS({ "Host", "example.com" }) } },
	{ LIT("POST /v1/chat/completions HTTP/1.1\r\n"
	      "Host: gw:8080\r\n"
	      "Content-Type: application/json\r\n"
	      "Content-Length: 17\r\n"
	      "Authorization: Bearer sk-abc\r\n"
	      "Accept: text/event-stream\r\n\r\n"),
	  { 0, "POST", "/v1/chat/completions", 1,
	    HDRS({ "Host", "gw:8080" }, { "Content-Type", "application/json" },
		{ "Content-Length", "17" }, { "Authorization", "Bearer sk-abc" },
		{ "Accept", "text/event-stream" }) } },
	{ LIT("GET / HTTP/1.0\r\n\r\n"), { 0, "GET", "/", 0, NO_HDRS } },
	{ LIT("\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
	  { 4, "GET", "/x", 1, HDRS({ "Host", "a" }) } },
	{ LIT("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ows: \t \r\n"
	      "X-Trim: \t v a\tl \t\r\nX-Colon:a:b: c\r\n\r\n"),
	  { 0, "GET", "/", 1,
	    HDRS({ "Host", "a" }, { "X-Empty", "" }, { "X-Ows", "" },
		{ "X-Trim", "v a\tl" }, { "X-Colon", "a:b: c" }) } },
	{ LIT("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \x80\xff\r\n\r\n"),
	  { 0, "GET", "/", 1,
	    HDRS({ "Host", "a" }, { "X-Name", "caf\xc3\xa9 \x80\xff" }) } },
	{ LIT("OPTIONS * HTTP/1.9\r\nHost: a\r\n\r\n"),
	  { 0, "OPTIONS", "*", 1, HDRS({ "Host", "a" }) } },
	{ LIT("GET http://up:8000/v1/models HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"),
	  { 0, "GET", "http://up:8000/v1/models", 1, HDRS({ "Host", "[::1]:8000" }) } },
	{ LIT("M-._~!#$%&'*+^`|Z /~!$&'()*+,;=:@%20?/?#x HTTP/1.1\r\n"
	      "X!#$%&'*+-.^_`|~09az: v\r\n\r\n"),
	  { 0, "M-._~!#$%&'*+^`|Z", "/~!$&'()*+,;=:@%20?/?#x", 1,
	    HDRS({ "X!#$%&'*+-.^_`|~09az", "v" }) } },
	{ LIT("DELETE /v1/files/f-1 HTTP/1.1\r\nhOsT:a\r\nconnection: close\r\n\r\n"),
	  { 0, "DELETE", "/v1/files/f-1", 1,
	    HDRS({ "hOsT", "a" }, { "connection", "close" }) } },
};

START_TEST(request_valid)
{
	assert_request_ok(request_ok[_i].raw, request_ok[_i].len, &request_ok[_i].e);
}
END_TEST

/* Appends s to the buffer at *p. */
static void put(char **p, const char *s)
{
	size_t n = strlen(s);

	memcpy(*p, s, n);
	*p += n;
}

static void fill(char **p, int c, size_t n)
{
	memset(*p, c, n);
	*p += n;
}

START_TEST(request_max_method_and_target)
{
	static char raw[CAP_METHOD_BYTES + CAP_URI_BYTES + 64];
	static char method[CAP_METHOD_BYTES + 1], target[CAP_URI_BYTES + 1];
	char *p = raw;
	struct req_expect e = { 0, method, target, 1, HDRS({ "Host", "h" }) };

	memset(method, 'M', CAP_METHOD_BYTES);
	target[0] = '/';
	memset(target + 1, 't', CAP_URI_BYTES - 1);
	put(&p, method);
	put(&p, " ");
	put(&p, target);
	put(&p, " HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_request_ok(raw, (size_t)(p - raw), &e);
}
END_TEST

/* A start line and nfields fields "X-F<i>: v" (no blank line yet); their
 * expected values go to h.  Returns the length written. */
static size_t many_fields(char *raw, const char *start_line, size_t nfields,
    struct hdr *h)
{
	static char names[CAP_HEADERS + 1][16];
	char *p = raw;

	put(&p, start_line);
	for (size_t i = 0; i < nfields; i++) {
		snprintf(names[i], sizeof names[i], "X-F%zu", i);
		h[i].name = names[i];
		h[i].value = "v";
		put(&p, names[i]);
		put(&p, ": v\r\n");
	}
	return (size_t)(p - raw);
}

/* The length of the field line that many_fields() wrote past the cap. */
static size_t last_field_len(const struct hdr *h)
{
	return strlen(h[CAP_HEADERS].name) + strlen(": v\r\n");
}

START_TEST(request_max_fields)
{
	static char raw[(CAP_HEADERS + 2) * 32];
	static struct hdr h[CAP_HEADERS + 1];
	size_t n = many_fields(raw, "GET / HTTP/1.1\r\n", CAP_HEADERS, h);
	struct req_expect e = { 0, "GET", "/", 1, h, CAP_HEADERS };

	memcpy(raw + n, "\r\n", 2);
	assert_request_ok(raw, n + 2, &e);
}
END_TEST

/* A head of a megabyte in one call: no line-length cap inside the parser
 * (the caller caps the head). */
START_TEST(request_large_head)
{
	size_t vlen = 10000, len = 0;
	char *raw = malloc(CAP_HEADERS * (vlen + 16) + 64), *p = raw;
	struct http_request req;

	ck_assert_ptr_nonnull(raw);
	put(&p, "GET / HTTP/1.1\r\n");
	for (size_t i = 0; i < CAP_HEADERS; i++) {
		put(&p, "X-A: ");
		fill(&p, 'v', vlen);
		put(&p, "\r\n");
	}
	put(&p, "\r\n");
	len = (size_t)(p - raw);
	ck_assert_int_eq(http_parse_request(raw, len, &req), (int)len);
	ck_assert_uint_eq(req.num_headers, CAP_HEADERS);
	ck_assert_uint_eq(req.headers[CAP_HEADERS - 1].value_len, vlen);
	free(raw);
}
END_TEST

static void assert_request_bad(const char *raw, size_t len, size_t ok_len,
    int status)
{
	for (size_t k = 0; k <= len; k++) {
		int want = k <= ok_len ? 0 : -status, got = parse_req_copy(raw, k);

		ck_assert_msg(got == want, "prefix %zu/%zu (bad byte at %zu): got %d, want %d",
		    k, len, ok_len, got, want);
	}
}

static const struct {
	const char *name;
	const char *raw;
	size_t len, ok_len;
	int status;
} request_bad[] = {
	{ "bare LF after request line", BAD("GET / HTTP/1.1", "\nHost: a\r\n\r\n"), 400 },
	{ "bare LF after a field", BAD("GET / HTTP/1.1\r\nHost: a", "\n\r\n"), 400 },
	{ "bare LF ends head", BAD("GET / HTTP/1.1\r\nHost: a\r\n", "\n"), 400 },
	{ "bare LF empty line", BAD("", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400 },
	{ "bare CR request line", BAD("GET / HTTP/1.1\r", "Host: a\r\n\r\n"), 400 },
	{ "bare CR in field", BAD("GET / HTTP/1.1\r\nHost: a\r", "b\r\n\r\n"), 400 },
	{ "bare CR ends head", BAD("GET / HTTP/1.1\r\nHost: a\r\n\r", "\r\n"), 400 },
	{ "bare CR empty line", BAD("\r", "GET / HTTP/1.1\r\n\r\n"), 400 },
	{ "CR in method", BAD("GE", "\rT / HTTP/1.1\r\n\r\n"), 400 },
	{ "space before colon", BAD("GET / HTTP/1.1\r\nHost", " : a\r\n\r\n"), 400 },
	{ "tab before colon", BAD("GET / HTTP/1.1\r\nHost", "\t: a\r\n\r\n"), 400 },
	{ "obs-fold SP", BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n", " c\r\n\r\n"), 400 },
	{ "obs-fold HTAB", BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n", "\tc\r\n\r\n"), 400 },
	{ "space before first field", BAD("GET / HTTP/1.1\r\n", " Host: a\r\n\r\n"), 400 },
	{ "NUL in value", BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b", "\0c\r\n\r\n"), 400 },
	{ "NUL in name", BAD("GET / HTTP/1.1\r\nX-", "\0A: b\r\n\r\n"), 400 },
	{ "DEL in value", BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: b", "\x7f" "c\r\n\r\n"), 400 },
	{ "ESC in value", BAD("GET / HTTP/1.1\r\nHost: a\r\nX-A: ", "\x1b[0m\r\n\r\n"), 400 },
	{ "CTL in target", BAD("GET /a", "\x01" "b HTTP/1.1\r\n\r\n"), 400 },
	{ "DEL in target", BAD("GET /a", "\x7f HTTP/1.1\r\n\r\n"), 400 },
	{ "HTAB in target", BAD("GET /a", "\tb HTTP/1.1\r\n\r\n"), 400 },
	{ "obs-text in target", BAD("GET /caf", "\xc3\xa9 HTTP/1.1\r\n\r\n"), 400 },
	{ "two SP after method", BAD("GET ", " / HTTP/1.1\r\n\r\n"), 400 },
	{ "two SP after target", BAD("GET / ", " HTTP/1.1\r\n\r\n"), 400 },
	{ "HTAB as separator", BAD("GET", "\t/ HTTP/1.1\r\n\r\n"), 400 },
	{ "SP before method", BAD("", " GET / HTTP/1.1\r\n\r\n"), 400 },
	{ "missing version", BAD("GET /", "\r\nHost: a\r\n\r\n"), 400 },
	{ "missing version, SP", BAD("GET / ", "\r\nHost: a\r\n\r\n"), 400 },
	{ "HTTP/0.9 request", BAD("GET /index.html", "\r\n"), 400 },
	{ "HTTP/2 preface", BAD("PRI * HTTP/", "2.0\r\n\r\nSM\r\n\r\n"), 505 },
	{ "HTTP/3.0", BAD("GET / HTTP/", "3.0\r\nHost: a\r\n\r\n"), 505 },
	{ "HTTP/0.9 version", BAD("GET / HTTP/", "0.9\r\n\r\n"), 505 },
	{ "lowercase http", BAD("GET / ", "http/1.1\r\nHost: a\r\n\r\n"), 400 },
	{ "HTTPS name", BAD("GET / HTTP", "S/1.1\r\n\r\n"), 400 },
	{ "no minor", BAD("GET / HTTP/1", "\r\n\r\n"), 400 },
	{ "minor not digit", BAD("GET / HTTP/1.", "x\r\n\r\n"), 400 },
	{ "two-digit minor", BAD("GET / HTTP/1.1", "0\r\n\r\n"), 400 },
	{ "SP after version", BAD("GET / HTTP/1.1", " \r\n\r\n"), 400 },
	{ "'(' in method", BAD("GE", "(T / HTTP/1.1\r\n\r\n"), 400 },
	{ "'@' in method", BAD("G", "@T / HTTP/1.1\r\n\r\n"), 400 },
	{ "'/' in method", BAD("GET", "/ HTTP/1.1\r\n\r\n"), 400 },
	{ "obs-text in method", BAD("G", "\xc3\x89T / HTTP/1.1\r\n\r\n"), 400 },
	{ "empty field name", BAD("GET / HTTP/1.1\r\n", ":a\r\n\r\n"), 400 },
	{ "field without colon", BAD("GET / HTTP/1.1\r\nHost", "\r\n\r\n"), 400 },
	{ "'(' in field name", BAD("GET / HTTP/1.1\r\nX", "(A): b\r\n\r\n"), 400 },
	{ "'/' in field name", BAD("GET / HTTP/1.1\r\nX", "/A: b\r\n\r\n"), 400 },
	{ "obs-text in field name", BAD("GET / HTTP/1.1\r\nX", "\xc3\xa9: b\r\n\r\n"), 400 },
};

START_TEST(request_invalid)
{
	assert_request_bad(request_bad[_i].raw, request_bad[_i].len,
	    request_bad[_i].ok_len, request_bad[_i].status);
}
END_TEST

START_TEST(request_method_too_long)
{
	static char raw[CAP_METHOD_BYTES + 64];
	char *p = raw;

	fill(&p, 'M', CAP_METHOD_BYTES + 1);
	put(&p, " / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_request_bad(raw, (size_t)(p - raw), CAP_METHOD_BYTES, 400);
}
END_TEST

/* 414 at the first target byte past the cap, long before the head ends,
 * and even when a bad byte would follow. */
START_TEST(request_target_too_long)
{
	static char raw[CAP_URI_BYTES + 64];
	char *p = raw;

	put(&p, "GET /");
	fill(&p, 'a', CAP_URI_BYTES);
	put(&p, "\x01 HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_request_bad(raw, (size_t)(p - raw), 4 + CAP_URI_BYTES, 414);
}
END_TEST

START_TEST(request_too_many_fields)
{
	static char raw[(CAP_HEADERS + 2) * 32];
	static struct hdr h[CAP_HEADERS + 1];
	size_t n = many_fields(raw, "GET / HTTP/1.1\r\n", CAP_HEADERS + 1, h);

	memcpy(raw + n, "\r\n", 2);
	/* The field past the cap is refused at its first byte. */
	assert_request_bad(raw, n + 2, n - last_field_len(h), 431);
}
END_TEST

/* ---- Response heads ----------------------------------------------------------- */

static int parse_resp_copy(const char *raw, size_t len)
{
	struct http_response resp;
	char *b = dup_exact(raw, len);
	int rc = http_parse_response(b, len, &resp);

	free(b);
	return rc;
}

static const struct {
	const char *raw;
	size_t len;
	int minor, status;
	const char *reason;
	const struct hdr *h;
	size_t nh;
} response_ok[] = {
	{ LIT("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n"), 1, 200, "OK",
	  HDRS({ "Content-Type", "text/event-stream" }, { "Transfer-Encoding", "chunked" }) },
	{ LIT("HTTP/1.1 200\r\n\r\n"), 1, 200, "", NO_HDRS },
	{ LIT("HTTP/1.1 204 \r\nX-A: b\r\n\r\n"), 1, 204, "", HDRS({ "X-A", "b" }) },
	{ LIT("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"), 0, 404,
	  "Not Found", HDRS({ "Content-Length", "0" }) },
	{ LIT("HTTP/1.1 100 Continue\r\n\r\n"), 1, 100, "Continue", NO_HDRS },
	{ LIT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	      "Connection: Upgrade\r\n\r\n"), 1, 101, "Switching Protocols",
	  HDRS({ "Upgrade", "websocket" }, { "Connection", "Upgrade" }) },
	{ LIT("HTTP/1.2 999 \tWeird\x80 reason \r\n\r\n"), 1, 999,
	  "\tWeird\x80 reason ", NO_HDRS },
	{ LIT("HTTP/1.1 502 Bad Gateway\r\nX-Empty:\r\nServer:  uvicorn \r\n\r\n"),
	  1, 502, "Bad Gateway", HDRS({ "X-Empty", "" }, { "Server", "uvicorn" }) },
};

START_TEST(response_valid)
{
	const char *raw = response_ok[_i].raw;
	size_t len = response_ok[_i].len;
	struct http_response resp;
	char *b = dup_exact(raw, len), *more;

	ck_assert_int_eq(http_parse_response(b, len, &resp), (int)len);
	ck_assert_int_eq(resp.minor_version, response_ok[_i].minor);
	ck_assert_int_eq(resp.status, response_ok[_i].status);
	assert_span(resp.reason, resp.reason_len, b, len, response_ok[_i].reason);
	assert_fields(resp.headers, resp.num_headers, response_ok[_i].h,
	    response_ok[_i].nh, b, len);
	free(b);

	for (size_t k = 0; k < len; k++)
		ck_assert_msg(parse_resp_copy(raw, k) == 0,
		    "prefix of %zu/%zu bytes did not ask for more", k, len);

	more = malloc(len + 5);
	ck_assert_ptr_nonnull(more);
	memcpy(more, raw, len);
	memcpy(more + len, "data:", 5);
	ck_assert_int_eq(http_parse_response(more, len + 5, &resp), (int)len);
	free(more);
}
END_TEST

static void assert_response_bad(const char *raw, size_t len, size_t ok_len)
{
	for (size_t k = 0; k <= len; k++) {
		int want = k <= ok_len ? 0 : -502, got = parse_resp_copy(raw, k);

		ck_assert_msg(got == want, "prefix %zu/%zu (bad byte at %zu): got %d, want %d",
		    k, len, ok_len, got, want);
	}
}

static const struct {
	const char *name;
	const char *raw;
	size_t len, ok_len;
} response_bad[] = {
	{ "lowercase name", BAD("", "http/1.1 200 OK\r\n\r\n") },
	{ "empty line first", BAD("", "\r\nHTTP/1.1 200 OK\r\n\r\n") },
	{ "HTTP/2", BAD("HTTP/", "2 200 OK\r\n\r\n") },
	{ "HTTP/2.0", BAD("HTTP/", "2.0 200 OK\r\n\r\n") },
	{ "no SP after version", BAD("HTTP/1.1", "200 OK\r\n\r\n") },
	{ "two SP after version", BAD("HTTP/1.1 ", " 200 OK\r\n\r\n") },
	{ "two-digit status", BAD("HTTP/1.1 20", "\r\n\r\n") },
	{ "four-digit status", BAD("HTTP/1.1 200", "0 OK\r\n\r\n") },
	{ "status 099", BAD("HTTP/1.1 ", "099 X\r\n\r\n") },
	{ "status not digits", BAD("HTTP/1.1 ", "abc OK\r\n\r\n") },
	{ "no SP before reason", BAD("HTTP/1.1 200", "OK\r\n\r\n") },
	{ "CTL in reason", BAD("HTTP/1.1 200 O", "\x01K\r\n\r\n") },
	{ "bare LF status line", BAD("HTTP/1.1 200 OK", "\n\r\n") },
	{ "bare CR status line", BAD("HTTP/1.1 200 OK\r", "\r\n") },
	{ "bare LF ends head", BAD("HTTP/1.1 200 OK\r\nA: b\r\n", "\n") },
	{ "obs-fold", BAD("HTTP/1.1 200 OK\r\nA: b\r\n", " c\r\n\r\n") },
	{ "space before colon", BAD("HTTP/1.1 200 OK\r\nA", " : b\r\n\r\n") },
	{ "NUL in value", BAD("HTTP/1.1 200 OK\r\nA: b", "\0\r\n\r\n") },
	{ "no colon", BAD("HTTP/1.1 200 OK\r\nA", "\r\n\r\n") },
};

START_TEST(response_invalid)
{
	assert_response_bad(response_bad[_i].raw, response_bad[_i].len,
	    response_bad[_i].ok_len);
}
END_TEST

START_TEST(response_too_many_fields)
{
	static char raw[(CAP_HEADERS + 2) * 32];
	static struct hdr h[CAP_HEADERS + 1];
	size_t n = many_fields(raw, "HTTP/1.1 200 OK\r\n", CAP_HEADERS + 1, h);

	memcpy(raw + n, "\r\n", 2);
	assert_response_bad(raw, n + 2, n - last_field_len(h));
}
END_TEST

/* ---- Body framing ------------------------------------------------------------- */

static void set_fields(struct http_header *out, const struct hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i].name = h[i].name;
		out[i].name_len = strlen(h[i].name);
		out[i].value = h[i].value;
		out[i].value_len = strlen(h[i].value);
	}
}

static const struct {
	const char *name;
	int minor;
	const struct hdr *h;
	size_t nh;
	int status;
	enum http_body kind;
	uint64_t length;
} request_framing[] = {
	{ "no body", 1, HDRS({ "Host", "a" }), 0, HTTP_BODY_NONE, 0 },
	{ "CL", 1, HDRS({ "Host", "a" }, { "Content-Length", "17" }), 0, HTTP_BODY_LENGTH, 17 },
	{ "CL 0", 1, HDRS({ "Host", "a" }, { "Content-Length", "0" }), 0, HTTP_BODY_LENGTH, 0 },
	{ "CL leading zeros", 1, HDRS({ "Host", "a" }, { "content-length", "007" }), 0, HTTP_BODY_LENGTH, 7 },
	{ "CL 19 digits", 1, HDRS({ "Host", "a" }, { "Content-Length", "9999999999999999999" }),
	  0, HTTP_BODY_LENGTH, UINT64_C(9999999999999999999) },
	{ "CL 20 digits", 1, HDRS({ "Host", "a" }, { "Content-Length", "00000000000000000001" }), 400, 0, 0 },
	{ "CL UINT64_MAX", 1, HDRS({ "Host", "a" }, { "Content-Length", "18446744073709551615" }), 400, 0, 0 },
	{ "CL 2^64", 1, HDRS({ "Host", "a" }, { "Content-Length", "18446744073709551616" }), 400, 0, 0 },
	{ "CL +2", 1, HDRS({ "Host", "a" }, { "Content-Length", "+2" }), 400, 0, 0 },
	{ "CL -1", 1, HDRS({ "Host", "a" }, { "Content-Length", "-1" }), 400, 0, 0 },
	{ "CL 0x2", 1, HDRS({ "Host", "a" }, { "Content-Length", "0x2" }), 400, 0, 0 },
	{ "CL 2 2", 1, HDRS({ "Host", "a" }, { "Content-Length", "2 2" }), 400, 0, 0 },
	{ "CL 1,1", 1, HDRS({ "Host", "a" }, { "Content-Length", "1,1" }), 400, 0, 0 },
	{ "CL 1, 1", 1, HDRS({ "Host", "a" }, { "Content-Length", "1, 1" }), 400, 0, 0 },
	{ "CL empty", 1, HDRS({ "Host", "a" }, { "Content-Length", "" }), 400, 0, 0 },
	{ "CL 2a", 1, HDRS({ "Host", "a" }, { "Content-Length", "2a" }), 400, 0, 0 },
	{ "CL twice equal", 1, HDRS({ "Host", "a" }, { "Content-Length", "5" }, { "Content-Length", "5" }), 400, 0, 0 },
	{ "CL twice differ", 1, HDRS({ "Host", "a" }, { "Content-Length", "5" }, { "content-length", "6" }), 400, 0, 0 },
	{ "TE chunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked" }), 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE Chunked OWS", 1, HDRS({ "Host", "a" }, { "transfer-encoding", " \tChunked\t " }), 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE CHUNKED", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "CHUNKED" }), 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE empty element", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", ", chunked ," }), 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE chunked, identity", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked, identity" }), 400, 0, 0 },
	{ "TE identity, chunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "identity, chunked" }), 501, 0, 0 },
	{ "TE gzip, chunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "gzip, chunked" }), 501, 0, 0 },
	{ "TE gzip", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "gzip" }), 400, 0, 0 },
	{ "TE xchunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "xchunked" }), 400, 0, 0 },
	{ "TE chunkedx", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunkedx" }), 400, 0, 0 },
	{ "TE chunked, chunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked, chunked" }), 400, 0, 0 },
	{ "TE chunked;x=1", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked;x=1" }), 400, 0, 0 },
	{ "TE empty", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "" }), 400, 0, 0 },
	{ "TE only commas", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", " , ," }), 400, 0, 0 },
	{ "TE twice", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked" }, { "Transfer-Encoding", "chunked" }), 400, 0, 0 },
	{ "TE gzip + TE chunked", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "gzip" }, { "Transfer-Encoding", "chunked" }), 400, 0, 0 },
	{ "TE + CL", 1, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked" }, { "Content-Length", "5" }), 400, 0, 0 },
	{ "CL + TE gzip, chunked", 1, HDRS({ "Host", "a" }, { "Content-Length", "5" }, { "Transfer-Encoding", "gzip, chunked" }), 400, 0, 0 },
	{ "TE in HTTP/1.0", 0, HDRS({ "Host", "a" }, { "Transfer-Encoding", "chunked" }), 400, 0, 0 },
	{ "no Host in 1.1", 1, HDRS({ "X-Host", "a" }), 400, 0, 0 },
	{ "no fields in 1.1", 1, NO_HDRS, 400, 0, 0 },
	{ "two Hosts in 1.1", 1, HDRS({ "Host", "a" }, { "host", "a" }), 400, 0, 0 },
	{ "two Hosts in 1.0", 0, HDRS({ "Host", "a" }, { "Host", "b" }), 400, 0, 0 },
	{ "no Host in 1.0", 0, NO_HDRS, 0, HTTP_BODY_NONE, 0 },
	{ "no Host in 1.0, CL", 0, HDRS({ "Content-Length", "3" }), 0, HTTP_BODY_LENGTH, 3 },
	{ "empty Host in 1.1", 1, HDRS({ "Host", "" }), 0, HTTP_BODY_NONE, 0 },
	{ "no Host beats 501", 1, HDRS({ "Transfer-Encoding", "gzip, chunked" }), 400, 0, 0 },
	{ "Host name:port", 1, HDRS({ "Host", "api.example.com:8080" }), 0, HTTP_BODY_NONE, 0 },
	{ "Host IPv6 literal", 1, HDRS({ "Host", "[::1]:80" }), 0, HTTP_BODY_NONE, 0 },
	{ "Host with a space", 1, HDRS({ "Host", "a b" }), 400, 0, 0 },
	{ "Host with userinfo", 1, HDRS({ "Host", "u@a" }), 400, 0, 0 },
	{ "Host with a path", 1, HDRS({ "Host", "a/b" }), 400, 0, 0 },
	{ "Host with a query", 1, HDRS({ "Host", "a?b" }), 400, 0, 0 },
	{ "Host with a fragment", 1, HDRS({ "Host", "a#b" }), 400, 0, 0 },
	{ "Host with obs-text", 1, HDRS({ "Host", "caf\xc3\xa9" }), 400, 0, 0 },
	{ "Content_Length + CL", 1, HDRS({ "Host", "a" }, { "Content-Length", "5" }, { "Content_Length", "7" }), 400, 0, 0 },
	{ "Transfer_Encoding + CL", 1, HDRS({ "Host", "a" }, { "Content-Length", "5" }, { "transfer_encoding", "chunked" }), 400, 0, 0 },
	{ "Transfer_Encoding alone", 1, HDRS({ "Host", "a" }, { "Transfer_Encoding", "chunked" }), 400, 0, 0 },
	{ "Host_ second host", 1, HDRS({ "Host", "a" }, { "HOST_", "b" }), 0, HTTP_BODY_NONE, 0 },
	{ "_Host alias", 1, HDRS({ "Host", "a" }, { "X_Host", "b" }), 0, HTTP_BODY_NONE, 0 },
	{ "X_Forwarded_For kept", 1, HDRS({ "Host", "a" }, { "X_Forwarded_For", "b" }), 0, HTTP_BODY_NONE, 0 },
};

START_TEST(request_check)
{
	struct http_request req;
	struct http_framing f = { HTTP_BODY_UNTIL_CLOSE, 12345 };
	int rc;

	memset(&req, 0, sizeof req);
	req.minor_version = request_framing[_i].minor;
	req.num_headers = request_framing[_i].nh;
	set_fields(req.headers, request_framing[_i].h, request_framing[_i].nh);
	rc = http_request_check(&req, &f);
	ck_assert_msg(rc == request_framing[_i].status, "%s: got %d",
	    request_framing[_i].name, rc);
	if (rc == 0) {
		ck_assert_int_eq(f.kind, request_framing[_i].kind);
		ck_assert_uint_eq(f.length, request_framing[_i].length);
	}
}
END_TEST

/* ---- The request-target ----------------------------------------------------------- */

static const struct {
	const char *target;
	const char *path;       /* NULL: refused */
} targets[] = {
	{ "/v1/chat/completions", "/v1/chat/completions" },
	{ "/v1/x?a=1&b=/../c#", NULL },
	{ "/v1/x?a=/../c", "/v1/x?a=/../c" },
	{ "/v1/x?a=%2e%2e", "/v1/x?a=%2e%2e" },
	{ "/v1/chat/completions#x", NULL },
	{ "/v1/x#", NULL },
	{ "http://h/v1/x", "/v1/x" },
	{ "HTTPS://h:443/v1/x?q", "/v1/x?q" },
	{ "http://h", NULL },
	{ "http://h?/v1/x", NULL },
	{ "http://h#/v1/x", NULL },
	{ "http:///v1/x", NULL },
	{ "http://u@h/v1/x", NULL },
	{ "http://u:p@h/v1/x", NULL },
	{ "http:/v1/x", NULL },
	{ "ftp://h/v1/x", NULL },
	{ "*", NULL },
	{ "h:80", NULL },
	{ "", NULL },
	{ "/v1/../admin", NULL },
	{ "/v1/./x", NULL },
	{ "/v1/x/..", NULL },
	{ "/v1/x/.", NULL },
	{ "/v1/%2e%2e/admin", NULL },
	{ "/v1/.%2E/admin", NULL },
	{ "/v1%2fx", NULL },
	{ "/v1%5cx", NULL },
	{ "/v1\\x", NULL },
	{ "/v1/...", "/v1/..." },
	{ "/v1/.x/x.", "/v1/.x/x." },
	{ "http://h/v1/../x", NULL },
	{ "/v1/chat/completion%73", NULL },
	{ "/v1/chat%2Dcompletions", NULL },
	{ "/v1/%7euser", NULL },
	{ "/v1/x%5F", NULL },
	{ "/v1/x%30", NULL },
	{ "/v1/x%20y", "/v1/x%20y" },
	{ "/v1/x%3A%40", "/v1/x%3A%40" },
	{ "/v1/x%zz", "/v1/x%zz" },
	{ "/v1/x%7", "/v1/x%7" },
	{ "/v1/x?q=%73%2e%2F", "/v1/x?q=%73%2e%2F" },
};

START_TEST(target_path)
{
	const char *t = targets[_i].target, *path = NULL;
	size_t len = 0;
	int rc = http_target_path(t, strlen(t), &path, &len);

	if (targets[_i].path == NULL) {
		ck_assert_msg(rc == -1, "%s: accepted", t);
		return;
	}
	ck_assert_msg(rc == 0, "%s: refused", t);
	ck_assert_uint_eq(len, strlen(targets[_i].path));
	ck_assert(memcmp(path, targets[_i].path, len) == 0);
	ck_assert(path >= t && path + len == t + strlen(t));
}
END_TEST

/* The parser and the framing decision together, as conn.c uses them. */
START_TEST(request_check_parsed)
{
	static const char raw[] = "POST /v1/completions HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length:  42 \r\n\r\n";
	struct http_request req;
	struct http_framing f;

	ck_assert_int_eq(http_parse_request(raw, sizeof raw - 1, &req), (int)sizeof raw - 1);
	ck_assert_int_eq(http_request_check(&req, &f), 0);
	ck_assert_int_eq(f.kind, HTTP_BODY_LENGTH);
	ck_assert_uint_eq(f.length, 42);
}
END_TEST

static const struct {
	const char *name;
	int status, head, minor;
	const struct hdr *h;
	size_t nh;
	int rc;
	enum http_body kind;
	uint64_t length;
} response_framing[] = {
	{ "CL", 200, 0, 1, HDRS({ "Content-Length", "5" }), 0, HTTP_BODY_LENGTH, 5 },
	{ "CL 0", 200, 0, 1, HDRS({ "Content-Length", "0" }), 0, HTTP_BODY_LENGTH, 0 },
	{ "chunked", 200, 0, 1, HDRS({ "Transfer-Encoding", "chunked" }), 0, HTTP_BODY_CHUNKED, 0 },
	{ "neither", 200, 0, 1, NO_HDRS, 0, HTTP_BODY_UNTIL_CLOSE, 0 },
	{ "neither, 1.0", 200, 0, 0, NO_HDRS, 0, HTTP_BODY_UNTIL_CLOSE, 0 },
	{ "CL in 1.0", 200, 0, 0, HDRS({ "Content-Length", "9" }), 0, HTTP_BODY_LENGTH, 9 },
	{ "204 with CL", 204, 0, 1, HDRS({ "Content-Length", "5" }), 0, HTTP_BODY_NONE, 0 },
	{ "304 with TE", 304, 0, 1, HDRS({ "Transfer-Encoding", "chunked" }), 0, HTTP_BODY_NONE, 0 },
	{ "100", 100, 0, 1, NO_HDRS, 0, HTTP_BODY_NONE, 0 },
	{ "101", 101, 0, 1, HDRS({ "Upgrade", "websocket" }), 0, HTTP_BODY_NONE, 0 },
	{ "199", 199, 0, 1, NO_HDRS, 0, HTTP_BODY_NONE, 0 },
	{ "HEAD with CL", 200, 1, 1, HDRS({ "Content-Length", "100" }), 0, HTTP_BODY_NONE, 0 },
	{ "HEAD with TE", 200, 1, 1, HDRS({ "Transfer-Encoding", "chunked" }), 0, HTTP_BODY_NONE, 0 },
	{ "HEAD 404", 404, 1, 1, NO_HDRS, 0, HTTP_BODY_NONE, 0 },
	{ "CL + TE", 200, 0, 1, HDRS({ "Content-Length", "5" }, { "Transfer-Encoding", "chunked" }), -1, 0, 0 },
	{ "bad CL", 200, 0, 1, HDRS({ "Content-Length", "abc" }), -1, 0, 0 },
	{ "CL -1", 200, 0, 1, HDRS({ "Content-Length", "-1" }), -1, 0, 0 },
	{ "CL list", 200, 0, 1, HDRS({ "Content-Length", "5, 5" }), -1, 0, 0 },
	{ "CL 20 digits", 200, 0, 1, HDRS({ "Content-Length", "18446744073709551616" }), -1, 0, 0 },
	{ "CL twice", 200, 0, 1, HDRS({ "Content-Length", "5" }, { "Content-Length", "5" }), -1, 0, 0 },
	{ "TE gzip", 200, 0, 1, HDRS({ "Transfer-Encoding", "gzip" }), 0, HTTP_BODY_UNTIL_CLOSE, 0 },
	{ "TE chunked, gzip", 200, 0, 1, HDRS({ "Transfer-Encoding", "chunked, gzip" }), 0, HTTP_BODY_UNTIL_CLOSE, 0 },
	{ "TE gzip, chunked", 200, 0, 1, HDRS({ "Transfer-Encoding", "gzip, chunked" }), -1, 0, 0 },
	{ "TE gzip + chunked fields", 200, 0, 1, HDRS({ "Transfer-Encoding", "gzip" }, { "Transfer-Encoding", "chunked" }), -1, 0, 0 },
	{ "TE chunked, chunked", 200, 0, 1, HDRS({ "Transfer-Encoding", "chunked, chunked" }), -1, 0, 0 },
	{ "TE chunked twice", 200, 0, 1, HDRS({ "Transfer-Encoding", "chunked" }, { "Transfer-Encoding", "chunked" }), -1, 0, 0 },
	{ "TE empty", 200, 0, 1, HDRS({ "Transfer-Encoding", "" }), -1, 0, 0 },
	{ "TE in 1.0", 200, 0, 0, HDRS({ "Transfer-Encoding", "chunked" }), -1, 0, 0 },
};

START_TEST(response_check)
{
	struct http_response resp;
	struct http_framing f = { HTTP_BODY_UNTIL_CLOSE, 12345 };
	int rc;

	memset(&resp, 0, sizeof resp);
	resp.status = response_framing[_i].status;
	resp.minor_version = response_framing[_i].minor;
	resp.num_headers = response_framing[_i].nh;
	set_fields(resp.headers, response_framing[_i].h, response_framing[_i].nh);
	rc = http_response_framing(&resp, response_framing[_i].head, &f);
	ck_assert_msg(rc == response_framing[_i].rc, "%s: got %d",
	    response_framing[_i].name, rc);
	if (rc == 0) {
		ck_assert_int_eq(f.kind, response_framing[_i].kind);
		ck_assert_uint_eq(f.length, response_framing[_i].length);
	}
}
END_TEST

/* ---- Field helpers ------------------------------------------------------------ */

START_TEST(token_eq)
{
	ck_assert(http_token_eq("Content-Length", 14, "content-length"));
	ck_assert(http_token_eq("HOST", 4, "host"));
	ck_assert(http_token_eq("", 0, ""));
	ck_assert(!http_token_eq("Host", 4, "Hos"));
	ck_assert(!http_token_eq("Hos", 3, "Host"));
	ck_assert(!http_token_eq("Hosu", 4, "Host"));
	/* Only ASCII letters fold: '@' (0x40) is not '`' (0x60). */
	ck_assert(!http_token_eq("@", 1, "`"));
	ck_assert(http_token_eq("Hostname", 4, "host"));
}
END_TEST

START_TEST(header_find)
{
	struct http_header h[4];
	static const struct hdr in[] = {
		{ "Host", "a" }, { "X-A", "1" }, { "x-a", "2" }, { "X-AB", "3" },
	};
	const struct http_header *found;
	size_t count = 99;

	set_fields(h, in, 4);
	found = http_header_find(h, 4, "X-A", &count);
	ck_assert_ptr_eq(found, &h[1]);
	ck_assert_uint_eq(count, 2);
	ck_assert_ptr_eq(http_header_find(h, 4, "x-ab", &count), &h[3]);
	ck_assert_uint_eq(count, 1);
	ck_assert_ptr_null(http_header_find(h, 4, "X", &count));
	ck_assert_uint_eq(count, 0);
	ck_assert_ptr_eq(http_header_find(h, 4, "HOST", NULL), &h[0]);
	ck_assert_ptr_null(http_header_find(h, 0, "Host", &count));
	ck_assert_uint_eq(count, 0);
}
END_TEST

static const struct {
	const char *value, *token;
	int has;
} list_cases[] = {
	{ "close", "close", 1 },
	{ "Close", "close", 1 },
	{ " keep-alive , close ", "close", 1 },
	{ " keep-alive , close ", "keep-alive", 1 },
	{ "x,close", "close", 1 },
	{ "close,", "close", 1 },
	{ ",,\t close\t,,", "close", 1 },
	{ "closed", "close", 0 },
	{ "clos", "close", 0 },
	{ "x-close", "close", 0 },
	{ "keep-alive", "close", 0 },
	{ "", "close", 0 },
	{ " , ", "close", 0 },
	{ "a b, c", "a", 0 },
	{ "a b, c", "a b", 1 },
};

START_TEST(list_has)
{
	const char *v = list_cases[_i].value;

	ck_assert_msg(http_list_has(v, strlen(v), list_cases[_i].token) == list_cases[_i].has,
	    "\"%s\" has \"%s\"", v, list_cases[_i].token);
}
END_TEST

START_TEST(list_has_bounds)
{
	/* Only value[0..len) is the list. */
	ck_assert(!http_list_has("keep-alive, close", 10, "close"));
	ck_assert(http_list_has("keep-alive, close", 10, "keep-alive"));
	ck_assert(!http_list_has("close", 4, "close"));
}
END_TEST

START_TEST(hop_by_hop)
{
	static const char *const fixed[] = {
		"Connection", "keep-alive", "PROXY-CONNECTION", "Proxy-Authenticate",
		"proxy-authorization", "TE", "Trailer", "Transfer-Encoding", "upgrade",
	};
	static const char *const end_to_end[] = {
		"Host", "Content-Length", "Content-Type", "Authorization", "X-Foo",
		"Trailers", "Upgrade-Insecure-Requests", "X-Bar",
	};
	static const struct hdr in[] = {
		{ "Host", "a" }, { "Connection", "X-Foo , close" },
		{ "X-Foo", "1" }, { "X-Bar", "2" }, { "connection", "x-baz" },
	};
	struct http_header all[5], h;

	set_fields(all, in, 5);
	for (size_t i = 0; i < NELEMS(fixed); i++) {
		set_fields(&h, &(struct hdr){ fixed[i], "v" }, 1);
		ck_assert_msg(http_is_hop_by_hop(&h, NULL, 0), "%s", fixed[i]);
	}
	for (size_t i = 0; i < NELEMS(end_to_end); i++) {
		set_fields(&h, &(struct hdr){ end_to_end[i], "v" }, 1);
		ck_assert_msg(!http_is_hop_by_hop(&h, NULL, 0), "%s", end_to_end[i]);
	}
	/* Named by a Connection field of the message. */
	ck_assert(http_is_hop_by_hop(&all[2], all, 5));
	ck_assert(!http_is_hop_by_hop(&all[3], all, 5));
	ck_assert(!http_is_hop_by_hop(&all[0], all, 5));
	set_fields(&h, &(struct hdr){ "X-BAZ", "v" }, 1);
	ck_assert(http_is_hop_by_hop(&h, all, 5));
	ck_assert(!http_is_hop_by_hop(&h, all, 4));
}
END_TEST

static const struct {
	int minor;
	const struct hdr *h;
	size_t nh;
	int keep;
} keep_alive_cases[] = {
	{ 1, NO_HDRS, 1 },
	{ 1, HDRS({ "Connection", "close" }), 0 },
	{ 1, HDRS({ "connection", "CLOSE" }), 0 },
	{ 1, HDRS({ "Connection", "keep-alive, close" }), 0 },
	{ 1, HDRS({ "Connection", "keep-alive" }, { "Connection", "close" }), 0 },
	{ 1, HDRS({ "Connection", "Upgrade" }), 1 },
	{ 1, HDRS({ "X-Connection", "close" }), 1 },
	{ 1, HDRS({ "Connection", "closed" }), 1 },
	{ 0, NO_HDRS, 0 },
	{ 0, HDRS({ "Connection", "keep-alive" }), 1 },
	{ 0, HDRS({ "Connection", " Keep-Alive " }), 1 },
	{ 0, HDRS({ "Keep-Alive", "timeout=5" }), 0 },
	{ 0, HDRS({ "Connection", "keep-alive" }, { "Connection", "close" }), 0 },
	{ 0, HDRS({ "Connection", "close, keep-alive" }), 0 },
};

START_TEST(keep_alive)
{
	struct http_header h[4];

	set_fields(h, keep_alive_cases[_i].h, keep_alive_cases[_i].nh);
	ck_assert_int_eq(!!http_keep_alive(keep_alive_cases[_i].minor, h,
	    keep_alive_cases[_i].nh), keep_alive_cases[_i].keep);
}
END_TEST

/* ---- Chunked decoder ---------------------------------------------------------- */

/* A valid chunked body: the message, the payload it carries, and bytes after
 * it that the decoder must leave alone. */
#define CHUNK_OK(body, payload, after) body after, sizeof(body after) - 1, \
	sizeof(body) - 1, payload, sizeof(payload) - 1

struct chunk_result {
	char *payload;
	size_t payload_len;
	size_t consumed;
};

/* Feeds raw[0..len) to a fresh decoder in pieces that end at cuts[0..n),
 * each piece in its own exact-size buffer; collects the output. */
static void feed_pieces(const char *raw, size_t len, const size_t *cuts,
    size_t ncuts, struct chunk_result *r, size_t done_at)
{
	struct http_chunked d;
	size_t from = 0;

	memset(&d, 0, sizeof d);
	r->payload = malloc(len + 1);
	ck_assert_ptr_nonnull(r->payload);
	r->payload_len = r->consumed = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t to = c < ncuts ? cuts[c] : len, out = 99;
		char *piece = dup_exact(raw + from, to - from);
		ssize_t rc = http_chunked_decode(&d, piece, to - from, &out);

		ck_assert_int_ge(rc, 0);
		ck_assert_uint_le(out, (size_t)rc);
		memcpy(r->payload + r->payload_len, piece, out);
		r->payload_len += out;
		r->consumed += (size_t)rc;
		/* Done exactly once the last byte of the message is in. */
		ck_assert_int_eq(!!http_chunked_done(&d), to >= done_at);
		/* Bytes after the message stay where they were. */
		if ((size_t)rc < to - from)
			ck_assert_mem_eq(piece + rc, raw + from + (size_t)rc,
			    to - from - (size_t)rc);
		free(piece);
		from = to;
	}
}

static void assert_chunk_result(struct chunk_result *r, const char *payload,
    size_t plen, size_t consumed)
{
	ck_assert_uint_eq(r->consumed, consumed);
	ck_assert_uint_eq(r->payload_len, plen);
	ck_assert_mem_eq(r->payload, payload, plen);
	free(r->payload);
}

static void assert_chunked_ok(const char *raw, size_t len, size_t consumed,
    const char *payload, size_t plen)
{
	struct chunk_result r;
	size_t *cuts = malloc(len * sizeof *cuts);

	ck_assert_ptr_nonnull(cuts);
	/* In one piece. */
	feed_pieces(raw, len, NULL, 0, &r, consumed);
	assert_chunk_result(&r, payload, plen, consumed);
	/* In two pieces, cut at every byte. */
	for (size_t s = 1; s < len; s++) {
		feed_pieces(raw, len, &s, 1, &r, consumed);
		assert_chunk_result(&r, payload, plen, consumed);
	}
	/* One byte at a time. */
	for (size_t s = 1; s < len; s++)
		cuts[s - 1] = s;
	if (len > 1) {
		feed_pieces(raw, len, cuts, len - 1, &r, consumed);
		assert_chunk_result(&r, payload, plen, consumed);
	}
	free(cuts);
}

static const struct {
	const char *name;
	const char *raw;
	size_t len, consumed;
	const char *payload;
	size_t plen;
} chunked_ok[] = {
	{ "chunks", CHUNK_OK("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", "abcdefg", "") },
	{ "empty body", CHUNK_OK("0\r\n\r\n", "", "") },
	{ "bytes after", CHUNK_OK("0\r\n\r\n", "", "HTTP/1.1 200 OK\r\n") },
	{ "chunk then bytes after", CHUNK_OK("2\r\nhi\r\n0\r\n\r\n", "hi", "2\r\nno\r\n") },
	{ "hex both cases", CHUNK_OK("A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
	  "0123456789abcdefghijk", "") },
	{ "two-digit size", CHUNK_OK("1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
	  "0123456789abcdef0123456789abcde", "") },
	{ "leading zeros", CHUNK_OK("0003\r\nabc\r\n000\r\n\r\n", "abc", "") },
	{ "17 digits, zeros first", CHUNK_OK("00000000000000001\r\nx\r\n0\r\n\r\n", "x", "") },
	{ "extensions", CHUNK_OK("3;name=value\r\nabc\r\n2;flag\r\nde\r\n0;last=\"done\"\r\n\r\n",
	  "abcde", "") },
	{ "extension BWS", CHUNK_OK("3 ; a = b ; c\t;d=\"q\"  ; e\r\nabc\r\n0 ;z\r\n\r\n", "abc", "") },
	{ "quoted-string", CHUNK_OK("1;q=\"a;b=c, \\\"d\\\\ \\\t\x80\";r=\"\"\r\nZ\r\n0\r\n\r\n",
	  "Z", "") },
	{ "trailers", CHUNK_OK("2\r\nhi\r\n0\r\nX-Usage: 12\r\nX-Empty:\r\nX-Obs: \x80\xff\r\n\r\n",
	  "hi", "NEXT") },
	{ "CRLF in data", CHUNK_OK("5\r\n0\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n", "") },
	{ "sse", CHUNK_OK("f\r\ndata: {\"a\":1}\n\n\r\n6\r\ndata: \r\n8\r\n[DONE]\n\n\r\n0\r\n\r\n",
	  "data: {\"a\":1}\n\ndata: [DONE]\n\n", "") },
};

START_TEST(chunked_valid)
{
	assert_chunked_ok(chunked_ok[_i].raw, chunked_ok[_i].len,
	    chunked_ok[_i].consumed, chunked_ok[_i].payload, chunked_ok[_i].plen);
}
END_TEST

/* A size line of exactly CAP_CHUNK_LINE_BYTES (CRLF not counted), leading
 * zeros of that length, and trailers of exactly CAP_TRAILER_BYTES pass. */
START_TEST(chunked_at_caps)
{
	static char raw[CAP_TRAILER_BYTES + 2 * CAP_CHUNK_LINE_BYTES + 64];
	char *p = raw;
	size_t n;

	put(&p, "1;");
	fill(&p, 'e', CAP_CHUNK_LINE_BYTES - 2);
	put(&p, "\r\nX\r\n");
	fill(&p, '0', CAP_CHUNK_LINE_BYTES - 1);
	put(&p, "1\r\nY\r\n0\r\n");
	/* Trailer lines "T: vvvv\r\n" adding up to the cap. */
	n = CAP_TRAILER_BYTES;
	while (n > 0) {
		size_t line = n > 200 ? 100 : n;

		ck_assert_uint_ge(line, 5);
		put(&p, "T:");
		fill(&p, 'v', line - 4);
		put(&p, "\r\n");
		n -= line;
	}
	put(&p, "\r\n");
	n = (size_t)(p - raw);
	assert_chunked_ok(raw, n, n, "XY", 2);
}
END_TEST

static void assert_chunked_bad(const char *raw, size_t len, size_t ok_len)
{
	struct http_chunked d;
	size_t out;
	char *b = dup_exact(raw, len);
	char valid[] = "0\r\n\r\n";

	/* In one piece. */
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, b, len, &out), -1);
	ck_assert(!http_chunked_done(&d));
	/* Sticky: a valid end later does not revive it, nor does nothing. */
	ck_assert_int_eq(http_chunked_decode(&d, valid, 5, &out), -1);
	ck_assert_uint_eq(out, 0);
	ck_assert_int_eq(http_chunked_decode(&d, valid, 0, &out), -1);
	ck_assert(!http_chunked_done(&d));
	free(b);

	/* The valid prefix is consumed; the error is its next byte. */
	memset(&d, 0, sizeof d);
	b = dup_exact(raw, ok_len);
	ck_assert_int_eq(http_chunked_decode(&d, b, ok_len, &out), (ssize_t)ok_len);
	free(b);
	b = dup_exact(raw + ok_len, 1);
	ck_assert_int_eq(http_chunked_decode(&d, b, 1, &out), -1);
	free(b);

	/* Byte by byte. */
	memset(&d, 0, sizeof d);
	for (size_t i = 0; i <= ok_len; i++) {
		char c = raw[i];

		ck_assert_int_eq(http_chunked_decode(&d, &c, 1, &out), i < ok_len ? 1 : -1);
	}
}

static const struct {
	const char *name;
	const char *raw;
	size_t len, ok_len;
} chunked_bad[] = {
	{ "no CRLF after data", BAD("3\r\nabc", "X\r\n0\r\n\r\n") },
	{ "data longer than size", BAD("3\r\nabc", "d\r\n0\r\n\r\n") },
	{ "CR then no LF after data", BAD("3\r\nabc\r", "X0\r\n\r\n") },
	{ "bare LF after size", BAD("3", "\nabc\r\n0\r\n\r\n") },
	{ "bare LF after data", BAD("3\r\nabc", "\n0\r\n\r\n") },
	{ "bare LF after last chunk", BAD("0\r\n", "\n") },
	{ "bare LF after trailer", BAD("0\r\nA: b", "\n\r\n") },
	{ "bare CR after size", BAD("3\r", "abc\r\n0\r\n\r\n") },
	{ "empty size after a chunk", BAD("3\r\nabc\r\n", "\r\n\r\n") },
	{ "extension, no size, after a chunk", BAD("3\r\nabc\r\n", ";a\r\n\r\n") },
	{ "bare CR at end", BAD("0\r\n\r", "X") },
	{ "17 significant digits", BAD("1000000000000000", "0\r\n") },
	{ "more than UINT64", BAD("ffffffffffffffff", "f\r\n") },
	{ "UINT64 * 16", BAD("ffffffffffffffff", "0\r\n") },
	{ "non-hex size", BAD("", "g\r\n") },
	{ "non-hex after digit", BAD("1", "g\r\nx\r\n0\r\n\r\n") },
	{ "0x prefix", BAD("0", "x1\r\n") },
	{ "negative size", BAD("", "-1\r\n") },
	{ "plus sign", BAD("", "+1\r\n") },
	{ "empty size", BAD("", "\r\n\r\n") },
	{ "empty size, extension", BAD("", ";a\r\n") },
	{ "space before size", BAD("", " 1\r\nx\r\n") },
	{ "BWS then CR", BAD("1 ", "\r\nx\r\n0\r\n\r\n") },
	{ "CTL in ext-name", BAD("1;a", "\x01=b\r\n") },
	{ "DEL in ext-val", BAD("1;a=b", "\x7f\r\n") },
	{ "CTL in quoted-string", BAD("1;a=\"b", "\x01\"\r\n") },
	{ "DEL in quoted-string", BAD("1;a=\"b", "\x7f\"\r\n") },
	{ "LF in quoted-string", BAD("1;a=\"b", "\n\"\r\n") },
	{ "CR in quoted-string", BAD("1;a=\"b", "\r\n") },
	{ "escaped CTL", BAD("1;a=\"\\", "\x01\"\r\n") },
	{ "no ext-name", BAD("1;", "=b\r\n") },
	{ "empty ext", BAD("1;", "\r\nx\r\n") },
	{ "empty ext after BWS", BAD("1; ", "\r\nx\r\n") },
	{ "empty ext-val", BAD("1;a=", "\r\nx\r\n") },
	{ "empty ext-val then ;", BAD("1;a= ", ";b\r\n") },
	{ "token after quoted", BAD("1;a=\"b\"", "c\r\n") },
	{ "ext-name BWS then CR", BAD("1;a ", "\r\nx\r\n") },
	{ "'/' in ext-val", BAD("1;a=b", "/c\r\n") },
	{ "second '='", BAD("1;a=b", "=c\r\n") },
	{ "obs-fold in trailer", BAD("0\r\nA: b\r\n", " c\r\n\r\n") },
	{ "trailer without colon", BAD("0\r\nAbc", "\r\n\r\n") },
	{ "space before colon", BAD("0\r\nA", " : b\r\n\r\n") },
	{ "empty trailer name", BAD("0\r\n", ":b\r\n\r\n") },
	{ "NUL in trailer", BAD("0\r\nA: b", "\0\r\n\r\n") },
	{ "DEL in trailer", BAD("0\r\nA: b", "\x7f\r\n\r\n") },
	{ "bare CR in trailer", BAD("0\r\nA: b\r", "c\r\n\r\n") },
};

START_TEST(chunked_invalid)
{
	assert_chunked_bad(chunked_bad[_i].raw, chunked_bad[_i].len,
	    chunked_bad[_i].ok_len);
}
END_TEST

START_TEST(chunked_over_caps)
{
	static char raw[CAP_TRAILER_BYTES + 64];
	char *p;
	size_t n;

	/* A size line one byte over. */
	p = raw;
	put(&p, "1;");
	fill(&p, 'e', CAP_CHUNK_LINE_BYTES - 1);
	put(&p, "\r\nX\r\n0\r\n\r\n");
	assert_chunked_bad(raw, (size_t)(p - raw), CAP_CHUNK_LINE_BYTES);

	/* A quoted-string that never ends is stopped by the same cap. */
	p = raw;
	put(&p, "1;a=\"");
	fill(&p, 'q', CAP_CHUNK_LINE_BYTES);
	assert_chunked_bad(raw, (size_t)(p - raw), CAP_CHUNK_LINE_BYTES);

	/* Leading zeros count too. */
	p = raw;
	fill(&p, '0', CAP_CHUNK_LINE_BYTES);
	put(&p, "1\r\nX\r\n0\r\n\r\n");
	assert_chunked_bad(raw, (size_t)(p - raw), CAP_CHUNK_LINE_BYTES);

	/* Trailers one byte over: a single long line. */
	p = raw;
	put(&p, "0\r\nT: ");
	n = CAP_TRAILER_BYTES - strlen("T: ");
	fill(&p, 'v', n);
	put(&p, "\r\n\r\n");
	assert_chunked_bad(raw, (size_t)(p - raw), 3 + CAP_TRAILER_BYTES);
}
END_TEST

/* On an error, *out still tells how much well-framed payload came first. */
START_TEST(chunked_out_on_error)
{
	struct http_chunked d;
	char buf[] = "3\r\nabc\r\n2\r\nde!!";
	size_t out = 99;

	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, buf, sizeof buf - 1, &out), -1);
	ck_assert_uint_eq(out, 5);
	ck_assert_mem_eq(buf, "abcde", 5);
}
END_TEST

START_TEST(chunked_max_size)
{
	struct http_chunked d;
	char buf[] = "ffffffffffffffff\r\nabc";
	size_t out;

	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, buf, sizeof buf - 1, &out),
	    (ssize_t)sizeof buf - 1);
	ck_assert_uint_eq(out, 3);
	ck_assert(d.remaining == UINT64_MAX - 3);
	ck_assert(!http_chunked_done(&d));
}
END_TEST

START_TEST(chunked_after_done)
{
	struct http_chunked d;
	char buf[] = "0\r\n\r\n", more[] = "garbage";
	size_t out = 99;

	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, buf, 5, &out), 5);
	ck_assert(http_chunked_done(&d));
	ck_assert_int_eq(http_chunked_decode(&d, more, 7, &out), 0);
	ck_assert_uint_eq(out, 0);
	ck_assert_mem_eq(more, "garbage", 7);
	ck_assert(http_chunked_done(&d));
	/* An empty feed is harmless before the end too. */
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, buf, 0, &out), 0);
	ck_assert_uint_eq(out, 0);
	ck_assert(!http_chunked_done(&d));
}
END_TEST

static const struct {
	size_t n;
	const char *line;
} size_lines[] = {
	{ 0, "0\r\n" },
	{ 1, "1\r\n" },
	{ 15, "f\r\n" },
	{ 16, "10\r\n" },
	{ 26, "1a\r\n" },
	{ 4096, "1000\r\n" },
	{ 0xabcdef, "abcdef\r\n" },
};

START_TEST(chunk_size_line)
{
	char out[19];

	memset(out, 'x', sizeof out);
	ck_assert_uint_eq(http_chunk_size_line(out, size_lines[_i].n),
	    strlen(size_lines[_i].line));
	ck_assert_str_eq(out, size_lines[_i].line);
}
END_TEST

START_TEST(chunk_size_line_max)
{
	char out[19];

	memset(out, 'x', sizeof out);
	if (SIZE_MAX == UINT64_MAX) {
		ck_assert_uint_eq(http_chunk_size_line(out, SIZE_MAX), 18);
		ck_assert_str_eq(out, "ffffffffffffffff\r\n");
	} else {
		ck_assert_uint_eq(http_chunk_size_line(out, SIZE_MAX), 10);
		ck_assert_str_eq(out, "ffffffff\r\n");
	}
}
END_TEST

/* What the encoder writes, the decoder reads back. */
START_TEST(chunk_round_trip)
{
	static char raw[80000], payload[80000];
	static const size_t sizes[] = { 1, 9, 10, 15, 16, 255, 256, 4095, 65535 };
	char *p = raw;
	size_t plen = 0, out;
	struct http_chunked d;

	for (size_t i = 0; i < NELEMS(sizes); i++) {
		p += http_chunk_size_line(p, sizes[i]);
		for (size_t k = 0; k < sizes[i]; k++) {
			char c = (char)('a' + (plen + k) % 26);

			payload[plen + k] = *p++ = c;
		}
		plen += sizes[i];
		put(&p, "\r\n");
	}
	p += http_chunk_size_line(p, 0);
	put(&p, "\r\n");
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(http_chunked_decode(&d, raw, (size_t)(p - raw), &out),
	    (ssize_t)(p - raw));
	ck_assert(http_chunked_done(&d));
	ck_assert_uint_eq(out, plen);
	ck_assert_mem_eq(raw, payload, plen);
}
END_TEST

/* ---- Damaged inputs ----------------------------------------------------------- */

/*
 * Valid messages with a few bytes overwritten by bytes that matter to HTTP
 * syntax.  Whatever the result, it must not depend on how the bytes arrive:
 * a head parser asks for more until one length, and from there on gives one
 * answer; the chunked decoder gives the same payload, count and verdict fed
 * whole or byte by byte.
 */
static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static const char damage_bytes[] = "\r\n \t:;=\"\\,/0aF\x7f\x80\x01";

static char *damaged_copy(const char *raw, size_t len)
{
	char *b = dup_exact(raw, len);

	for (uint32_t n = 1 + rng() % 3; n > 0; n--)
		b[rng() % len] = damage_bytes[rng() % (sizeof damage_bytes - 1)];
	return b;
}

typedef int (*head_parser)(const char *, size_t);

/* Returns how many of the damaged inputs were still valid. */
static size_t assert_head_prefix_stable(const char *raw, size_t len,
    head_parser parse, size_t rounds)
{
	size_t valid = 0;

	for (size_t r = 0; r < rounds; r++) {
		char *b = damaged_copy(raw, len);
		int first = 0;
		size_t at = 0;

		for (size_t k = 0; k <= len; k++) {
			int got = parse(b, k);

			if (first == 0 && got != 0) {
				first = got;
				at = k;
			}
			ck_assert_msg(got == first, "round %zu: prefix %zu gave %d after %d at %zu",
			    r, k, got, first, at);
		}
		/* A head is complete exactly when its last byte arrives. */
		if (first > 0) {
			ck_assert_uint_eq((size_t)first, at);
			valid++;
		}
		free(b);
	}
	return valid;
}

START_TEST(request_damaged)
{
	size_t valid = 0;

	rng_state = 2463534242u + (uint32_t)_i;
	valid = assert_head_prefix_stable(request_ok[_i].raw, request_ok[_i].len,
	    parse_req_copy, 300);
	/* Not all damage is fatal (a byte inside a value may stay a value). */
	ck_assert_uint_lt(valid, 300);
}
END_TEST

START_TEST(response_damaged)
{
	rng_state = 88675123u + (uint32_t)_i;
	ck_assert_uint_lt(assert_head_prefix_stable(response_ok[_i].raw,
	    response_ok[_i].len, parse_resp_copy, 300), 300);
}
END_TEST

struct chunk_run {
	ssize_t rc;        /* -1, or bytes consumed */
	size_t out;        /* payload bytes produced before the end or error */
	int done;
};

static struct chunk_run decode_whole(const char *raw, size_t len, char *payload)
{
	struct http_chunked d;
	struct chunk_run run;
	char *b = dup_exact(raw, len);

	memset(&d, 0, sizeof d);
	run.rc = http_chunked_decode(&d, b, len, &run.out);
	memcpy(payload, b, run.out);
	run.done = http_chunked_done(&d);
	free(b);
	return run;
}

static struct chunk_run decode_bytes(const char *raw, size_t len, char *payload)
{
	struct http_chunked d;
	struct chunk_run run = { 0, 0, 0 };

	memset(&d, 0, sizeof d);
	for (size_t i = 0; i < len; i++) {
		char c = raw[i];
		size_t out;
		ssize_t rc = http_chunked_decode(&d, &c, 1, &out);

		if (rc < 0) {
			run.rc = -1;
			break;
		}
		if (out)
			payload[run.out++] = c;
		run.rc += rc;
	}
	run.done = http_chunked_done(&d);
	return run;
}

START_TEST(chunked_damaged)
{
	const char *raw = chunked_ok[_i].raw;
	size_t len = chunked_ok[_i].len, bad = 0;
	char *p1 = malloc(len), *p2 = malloc(len);

	ck_assert(p1 && p2);
	rng_state = 3141592653u + (uint32_t)_i;
	for (size_t r = 0; r < 300; r++) {
		char *b = damaged_copy(raw, len);
		struct chunk_run whole = decode_whole(b, len, p1);
		struct chunk_run bytes = decode_bytes(b, len, p2);

		ck_assert_int_eq(whole.rc, bytes.rc);
		ck_assert_uint_eq(whole.out, bytes.out);
		ck_assert_mem_eq(p1, p2, whole.out);
		ck_assert_int_eq(whole.done, bytes.done);
		bad += whole.rc < 0;
		free(b);
	}
	ck_assert_uint_gt(bad, 0);
	free(p1);
	free(p2);
}
END_TEST

/* ---- Status table ------------------------------------------------------------- */

START_TEST(reason)
{
	static const int required[] = {
		100, 101, 200, 201, 202, 203, 204, 205, 206, 301, 302, 303, 304,
		305, 306, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
		409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 425, 426,
		428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 511,
	};
	static const int unknown[] = { -200, 0, 99, 102, 199, 418, 499, 506, 600, 999 };

	for (size_t i = 0; i < NELEMS(required); i++)
		ck_assert_msg(strcmp(http_reason(required[i]), "Unknown") != 0,
		    "%d has no reason", required[i]);
	for (size_t i = 0; i < NELEMS(unknown); i++)
		ck_assert_str_eq(http_reason(unknown[i]), "Unknown");
	ck_assert_str_eq(http_reason(200), "OK");
	ck_assert_str_eq(http_reason(400), "Bad Request");
	ck_assert_str_eq(http_reason(413), "Content Too Large");
	ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
	ck_assert_str_eq(http_reason(502), "Bad Gateway");
	ck_assert_str_eq(http_reason(503), "Service Unavailable");
	ck_assert_str_eq(http_reason(504), "Gateway Timeout");
	ck_assert_str_eq(http_reason(511), "Network Authentication Required");
}
END_TEST

/* ---- Suite ------------------------------------------------------------------------ */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	/* Every-byte splits of the 8 KiB target take a while under ASan. */
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc;

	tc = tcase(s, "request");
	tcase_add_loop_test(tc, request_valid, 0, NELEMS(request_ok));
	tcase_add_test(tc, request_max_method_and_target);
	tcase_add_test(tc, request_max_fields);
	tcase_add_test(tc, request_large_head);
	tcase_add_loop_test(tc, request_invalid, 0, NELEMS(request_bad));
	tcase_add_test(tc, request_method_too_long);
	tcase_add_test(tc, request_target_too_long);
	tcase_add_test(tc, request_too_many_fields);

	tc = tcase(s, "response");
	tcase_add_loop_test(tc, response_valid, 0, NELEMS(response_ok));
	tcase_add_loop_test(tc, response_invalid, 0, NELEMS(response_bad));
	tcase_add_test(tc, response_too_many_fields);

	tc = tcase(s, "framing");
	tcase_add_loop_test(tc, request_check, 0, NELEMS(request_framing));
	tcase_add_test(tc, request_check_parsed);
	tcase_add_loop_test(tc, target_path, 0, NELEMS(targets));
	tcase_add_loop_test(tc, response_check, 0, NELEMS(response_framing));

	tc = tcase(s, "fields");
	tcase_add_test(tc, token_eq);
	tcase_add_test(tc, header_find);
	tcase_add_loop_test(tc, list_has, 0, NELEMS(list_cases));
	tcase_add_test(tc, list_has_bounds);
	tcase_add_test(tc, hop_by_hop);
	tcase_add_loop_test(tc, keep_alive, 0, NELEMS(keep_alive_cases));

	tc = tcase(s, "chunked");
	tcase_add_loop_test(tc, chunked_valid, 0, NELEMS(chunked_ok));
	tcase_add_test(tc, chunked_at_caps);
	tcase_add_loop_test(tc, chunked_invalid, 0, NELEMS(chunked_bad));
	tcase_add_test(tc, chunked_over_caps);
	tcase_add_test(tc, chunked_out_on_error);
	tcase_add_test(tc, chunked_max_size);
	tcase_add_test(tc, chunked_after_done);
	tcase_add_loop_test(tc, chunk_size_line, 0, NELEMS(size_lines));
	tcase_add_test(tc, chunk_size_line_max);
	tcase_add_test(tc, chunk_round_trip);

	tc = tcase(s, "status");
	tcase_add_test(tc, reason);

	tc = tcase(s, "damaged");
	tcase_add_loop_test(tc, request_damaged, 0, NELEMS(request_ok));
	tcase_add_loop_test(tc, response_damaged, 0, NELEMS(response_ok));
	tcase_add_loop_test(tc, chunked_damaged, 0, NELEMS(chunked_ok));
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
