/*
 * e2e_smuggle.c — request smuggling and framing ambiguity, the whole class,
 * through the real binary: every case of tests/data/smuggle/requests.txt is
 * sent on its own connection.
 *
 * A refused case must get its status with the OpenAI error JSON and
 * "Connection: close", the connection must be closed, and the mock backend
 * must have received nothing at all (its request counter and its log of
 * malformed requests unchanged) — not the request, and not the request
 * smuggled behind it.
 *
 * An accepted case must reach the backend as exactly one request carrying
 * the expected body with one Content-Length we counted and no
 * Transfer-Encoding (so no server behind us can frame it another way), and
 * the connection must then carry a second request normally: the proxy and
 * the client still agree where each request ends.
 */
#define _GNU_SOURCE     /* strcasestr */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"

#define CORPUS "tests/data/smuggle/requests.txt"
#define MAX_CASES 256
#define RAW_MAX 4096

struct smuggle_case {
	char name[160];
	int status;             /* 0: accepted */
	char body[256];         /* accepted: what the backend must receive */
	size_t body_len;
	char raw[RAW_MAX];
	size_t raw_len;
	int line;
};

static struct smuggle_case cases[MAX_CASES];
static size_t ncases;
static struct mock mock;
static struct proxy proxy;

static const char prefix[] = "POST /v1/echo HTTP/1.1\r\nHost: x\r\n";
static const char smuggled[] = "GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/* ---- the corpus ------------------------------------------------------------- */

/* The corpus is read before Check runs anything: a mistake in it ends the
 * program with its line. */
#define corpus_check(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		exit(1); \
	} \
} while (0)

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Appends s[0..n) to out with C escapes and $P / $S expanded.  Returns the
 * new length; aborts on a corpus error. */
static size_t
unescape(char *out, size_t cap, size_t len, const char *s, size_t n, int line)
{
	for (size_t i = 0; i < n; i++) {
		const char *add = NULL;
		size_t add_len = 1;
		char ch = s[i];

		if (ch == '$' && i + 1 < n && (s[i + 1] == 'P' || s[i + 1] == 'S')) {
			add = s[i + 1] == 'P' ? prefix : smuggled;
			add_len = strlen(add);
			i++;
		} else if (ch == '\\' && i + 1 < n) {
			char e = s[++i];
			switch (e) {
			case 'r': ch = '\r'; break;
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case '0': ch = '\0'; break;
			case '\\': ch = '\\'; break;
			case 'x':
				corpus_check(i + 2 < n && hexval(s[i + 1]) >= 0 &&
				    hexval(s[i + 2]) >= 0, CORPUS ":%d: bad \\x", line);
				ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
				i += 2;
				break;
			default:
				corpus_check(0, CORPUS ":%d: unknown escape \\%c", line, e);
			}
		}
		corpus_check(len + add_len <= cap, CORPUS ":%d: too long", line);
		if (add != NULL)
			memcpy(out + len, add, add_len);
		else
			out[len] = ch;
		len += add_len;
	}
	return len;
}

static char *
trim(char *s)
{
	while (*s == ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static void
load_corpus(void)
{
	FILE *f = fopen(CORPUS, "r");
	char line[RAW_MAX];
	int lineno = 0;

	corpus_check(f != NULL, "cannot open " CORPUS " (run from the source tree)");
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *a = strstr(line, " | "), *b = a ? strstr(a + 3, " | ") : NULL;
		corpus_check(b != NULL, CORPUS ":%d: want EXPECT | NAME | RAW", lineno);
		corpus_check(ncases < MAX_CASES, "too many cases");
		*a = *b = '\0';
		struct smuggle_case *c = &cases[ncases++];
		char *expect = trim(line), *raw = b + 3;
		c->line = lineno;
		snprintf(c->name, sizeof(c->name), "%s", trim(a + 3));
		if (strncmp(expect, "ok", 2) == 0) {
			char *body = trim(expect + 2);
			c->body_len = unescape(c->body, sizeof(c->body) - 1, 0, body,
			    strlen(body), lineno);
		} else {
			c->status = atoi(expect);
			corpus_check(c->status >= 400 && c->status <= 599,
			    CORPUS ":%d: bad EXPECT '%s'", lineno, expect);
		}
		size_t n = strlen(raw);
		if (n > 0 && raw[n - 1] == '\n')
			n--;
		c->raw_len = unescape(c->raw, sizeof(c->raw), 0, raw, n, lineno);
	}
	fclose(f);
}

/* ---- fixtures ------------------------------------------------------------------ */

static void
setup(void)
{
	char cfg[2048];

	mock_start(&mock);
	/* A small max_body_size so that "too large" is decided at once; a
	 * read_timeout longer than any answer may take, so that a 408 can never
	 * stand in for the refusal a case expects. */
	proxy_config(cfg, sizeof(cfg), &mock,
	    "[server]\nmax_body_size = 1k\nread_timeout = 10s\n");
	proxy_start_ok(&proxy, cfg);
}

static void
teardown(void)
{
	proxy_stop(&proxy);
	mock_stop(&mock);
}

/* ---- what the backend saw ------------------------------------------------------ */

/* How many of the echoed header fields are called name (any case). */
static int
echoed_fields(const char *echo, const char *name, char *value, size_t cap)
{
	char pat[96];
	int n = 0;

	snprintf(pat, sizeof(pat), "[\"%s\",\"", name);
	for (const char *p = echo; (p = strcasestr(p, pat)) != NULL; p += strlen(pat)) {
		if (n++ == 0 && value != NULL) {
			const char *v = p + strlen(pat), *e = strchr(v, '"');
			snprintf(value, cap, "%.*s", e ? (int)(e - v) : 0, v);
		}
	}
	return n;
}

/* ---- the cases ---------------------------------------------------------------- */

static void
refused(const struct smuggle_case *c)
{
	struct mock_seen before = mock_seen(&mock);
	struct response r;
	char v[64];
	int fd = tcp_connect(proxy.port);

	/* The answer to HEAD is the head alone (RFC 9110 §9.3.2). */
	int head = c->raw_len >= 5 && memcmp(c->raw, "HEAD ", 5) == 0;

	int64_t t0 = now_ms();
	send_all(fd, c->raw, c->raw_len);
	ck_assert_msg(read_response(fd, &r, 5000, head) == 0, "line %d %s: no response",
	    c->line, c->name);
	ck_assert_msg(r.status == c->status, "line %d %s: status %d, want %d\n%s%s",
	    c->line, c->name, r.status, c->status, r.head, r.body ? r.body : "");
	/* Refused when its bytes are seen, not at a timeout. */
	ck_assert_msg(now_ms() - t0 < 2000, "%s: answered after %lld ms", c->name,
	    (long long)(now_ms() - t0));
	if (head)
		ck_assert_msg(r.body_len == 0, "%s: %zu body bytes after the head",
		    c->name, r.body_len);
	else
		ck_assert_msg(strncmp(r.body, "{\"error\":{\"message\":\"", 21) == 0,
		    "%s: not the OpenAI error shape: %s", c->name, r.body);
	ck_assert_msg(response_header(&r, "Connection", v, sizeof(v)) &&
	    strcmp(v, "close") == 0, "%s: no Connection: close", c->name);
	ck_assert_msg(r.eof || wait_closed(fd, 3000) >= 0,
	    "%s: the proxy kept the connection open", c->name);
	close(fd);

	mock_assert_saw_nothing(&mock, before, c->name);
	response_free(&r);
}

static void
accepted(const struct smuggle_case *c)
{
	static const char after[] = "GET /v1/echo/after HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct mock_seen before = mock_seen(&mock);
	struct response r;
	char v[64], want[320];
	int fd = tcp_connect(proxy.port);

	send_all(fd, c->raw, c->raw_len);
	ck_assert_msg(read_response(fd, &r, 5000, 0) == 0, "%s: no response", c->name);
	ck_assert_msg(r.status == 200, "line %d %s: status %d\n%s%s", c->line, c->name,
	    r.status, r.head, r.body ? r.body : "");
	const char *echo = r.body;
	ck_assert_msg(echoed_fields(echo, "Transfer-Encoding", NULL, 0) == 0 &&
	    echoed_fields(echo, "Transfer_Encoding", NULL, 0) == 0 &&
	    echoed_fields(echo, "Content_Length", NULL, 0) == 0 &&
	    echoed_fields(echo, "Trailer", NULL, 0) == 0,
	    "%s: framing fields reached the backend: %s", c->name, echo);
	/* Fields we set ourselves, imitated with "_": a CGI-style server reads
	 * them as ours. */
	ck_assert_msg(echoed_fields(echo, "X_Forwarded_For", NULL, 0) == 0 &&
	    echoed_fields(echo, "X_Forwarded_Proto", NULL, 0) == 0 &&
	    echoed_fields(echo, "X_Request_Id", NULL, 0) == 0 &&
	    strstr(echo, "6.6.6.6") == NULL,
	    "%s: an imitation of our fields reached the backend: %s", c->name, echo);
	int cls = echoed_fields(echo, "Content-Length", v, sizeof(v));
	ck_assert_msg(cls == 1 || (cls == 0 && c->body_len == 0),
	    "%s: %d Content-Length fields reached the backend: %s", c->name, cls, echo);
	/* Our own count, in its plain form: digits, no leading zero. */
	if (cls == 1)
		ck_assert_msg(strspn(v, "0123456789") == strlen(v) &&
		    strtoul(v, NULL, 10) == c->body_len &&
		    (v[0] != '0' || strcmp(v, "0") == 0),
		    "%s: Content-Length %s for a %zu-byte body", c->name, v, c->body_len);
	snprintf(want, sizeof(want), "\"body\":\"%.*s\",\"body_len\":%zu",
	    (int)c->body_len, c->body, c->body_len);
	ck_assert_msg(strstr(echo, want) != NULL, "%s: want %s in %s", c->name, want,
	    echo);
	ck_assert_msg(strstr(echo, "\"target\":\"/v1/echo\"") != NULL,
	    "%s: the backend saw another target: %s", c->name, echo);
	response_free(&r);

	/* The same connection goes on in step. */
	send_str(fd, after);
	ck_assert_msg(read_response(fd, &r, 5000, 0) == 0, "%s: no second response",
	    c->name);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strstr(r.body, "\"target\":\"/v1/echo/after\"") != NULL,
	    "%s: second request seen as %s", c->name, r.body);
	response_free(&r);
	close(fd);

	struct mock_seen now = mock_seen(&mock);
	ck_assert_msg(now.requests == before.requests + 2,
	    "%s: the backend received %ld requests, want 2", c->name,
	    now.requests - before.requests);
	ck_assert_int_eq(now.malformed, before.malformed);
}

START_TEST(smuggling_case)
{
	const struct smuggle_case *c = &cases[_i];

	if (c->status != 0)
		refused(c);
	else
		accepted(c);
}
END_TEST

/* The corpus covers each part of the class the issue names, so that a line
 * deleted by mistake is noticed. */
START_TEST(corpus_covers_the_class)
{
	static const char *const must[] = {
		"CL.TE", "TE.CL", "TE space before colon", "TE tab before colon",
		"TE header twice", "TE xchunked", "TE chunked, identity",
		"CL twice", "CL +5", "CL 5,5", "CL with OWS", "CL hex", "CL past 2^64",
		"chunk size overflow", "extension quoted with a control byte",
		"bare CR", "bare LF", "obs-fold in a trailer", "obs-fold with a space",
		"two Host fields", "HTTP/2 preface", "NUL in", "absolute-form",
		"no version",
	};
	for (size_t k = 0; k < sizeof(must) / sizeof(must[0]); k++) {
		size_t i;
		for (i = 0; i < ncases; i++)
			if (strstr(cases[i].name, must[k]) != NULL)
				break;
		ck_assert_msg(i < ncases, "no case named like '%s'", must[k]);
	}
	size_t ok = 0;
	for (size_t i = 0; i < ncases; i++) {
		ok += cases[i].status == 0;
		if (cases[i].status != 0)
			ck_assert_msg(cases[i].status < 500 || cases[i].status == 501 ||
			    cases[i].status == 505, "%s: refused with %d",
			    cases[i].name, cases[i].status);
	}
	ck_assert_uint_ge(ncases - ok, 100);
	ck_assert_uint_ge(ok, 8);
}
END_TEST

int
main(void)
{
	load_corpus();
	Suite *s = suite_create("e2e_smuggle");
	TCase *t = tcase_create("corpus");
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, corpus_covers_the_class);
	tcase_add_loop_test(t, smuggling_case, 0, (int)ncases);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
