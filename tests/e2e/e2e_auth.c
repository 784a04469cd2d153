/*
 * e2e_auth.c — API keys and limits through the real binary: who gets in
 * (401 / 403 / 200 by both headers), what the backend sees (its own key,
 * never the client's), what billing sees (user and key name, never the
 * key), and the limits (burst then 429 with Retry-After, one stream at a
 * time per key while other keys are served, a token budget).
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"

#define GOOD     "sk-good-0123456789abcdef"
#define OTHER    "sk-other-0123456789abcdef"
#define DISABLED "sk-disabled-0123456789abcdef"
#define EXPIRED  "sk-expired-0123456789abcdef"
#define FILEKEY  "sk-file-0123456789abcdef"
#define BACKEND  "sk-backend-0123456789abcdef"

static struct mock mock;
static struct receiver rv;
static struct proxy proxy;
static char keys_dir[256];

/* Four keys in the config, one in a keys_file, the backend's own key, a
 * webhook for the records, plus `extra` (limits). */
static void
auth_config(char *out, size_t cap, const char *extra)
{
	char sections[4096], path[512];
	FILE *f;

	make_temp_dir(keys_dir, sizeof(keys_dir), "keys");
	snprintf(path, sizeof(path), "%s/keys.txt", keys_dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# KEY USER_ID NAME [enabled|disabled] [EXPIRES_AT]\n"
	    FILEKEY " erin from-file\n", f);
	fclose(f);
	snprintf(sections, sizeof(sections),
	    "[backends.mock]\napi_key = " BACKEND "\n"
	    "[auth]\nenabled = true\nheader_names = Authorization, X-API-Key\n"
	    "[auth.pipeline.0]\nname = static_auth\ntype = static\nenabled = true\n"
	    "[auth.pipeline.0.static]\nkeys_file = %s\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = " GOOD "\nname = good\nuser_id = alice\n"
	    "[auth.pipeline.0.static.keys.1]\nkey = " OTHER "\nname = other\nuser_id = dave\n"
	    "[auth.pipeline.0.static.keys.2]\nkey = " DISABLED "\nname = off\nuser_id = bob\n"
	    "status = disabled\n"
	    "[auth.pipeline.0.static.keys.3]\nkey = " EXPIRED "\nname = old\nuser_id = carol\n"
	    "expires_at = 2020-01-01T00:00:00Z\n"
	    "[usage.reporters.0]\nname = billing\ntype = webhook\n"
	    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:%d/usage\n"
	    "[usage]\nmax_wait = 200ms\n%s", path, rv.port, extra);
	proxy_config(out, cap, &mock, sections);
}

static void
start(const char *extra)
{
	char cfg[8192];

	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
	auth_config(cfg, sizeof(cfg), extra);
	proxy_start_ok(&proxy, cfg);
}

static void
setup(void)
{
	start("");
}

static void
teardown(void)
{
	proxy_stop(&proxy);
	receiver_stop(&rv);
	mock_stop(&mock);
	rm_rf_dir(keys_dir);
}

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

/* POST /v1/chat/completions with `headers` (lines ending in \r\n). */
static void
post_chat(const char *headers, struct response *r)
{
	char req[8192];

	snprintf(req, sizeof(req),
	    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
	    headers, strlen(stream_body), stream_body);
	ck_assert_int_eq(http_exchange(proxy.port, req, r, 10000), 0);
}

static void
assert_error(const struct response *r, int status, const char *code)
{
	char got[128];

	ck_assert_int_eq(r->status, status);
	ck_assert_msg(r->body != NULL && json_str(r->body, "code", got, sizeof(got)) &&
	    strcmp(got, code) == 0, "code %s in %s", code, r->body);
	ck_assert_msg(strstr(r->body, "{\"error\":{\"message\":") == r->body,
	    "not OpenAI's error shape: %s", r->body);
}

/* ---- who gets in -------------------------------------------------------------- */

static const struct {
	const char *what;
	const char *header;     /* "" for none */
	int status;
	const char *code;       /* of the error, or NULL */
} verdicts[] = {
	{ "no key", "", 401, "invalid_api_key" },
	{ "empty bearer", "Authorization: Bearer \r\n", 401, "invalid_api_key" },
	{ "wrong key, bearer", "Authorization: Bearer sk-wrong\r\n", 401, "invalid_api_key" },
	{ "wrong key, x-api-key", "X-API-Key: sk-wrong\r\n", 401, "invalid_api_key" },
	{ "a prefix of a key", "Authorization: Bearer sk-good-0123456789abcde\r\n", 401, "invalid_api_key" },
	{ "disabled, bearer", "Authorization: Bearer " DISABLED "\r\n", 403, "api_key_disabled" },
	{ "disabled, x-api-key", "X-API-Key: " DISABLED "\r\n", 403, "api_key_disabled" },
	{ "expired, bearer", "Authorization: Bearer " EXPIRED "\r\n", 403, "api_key_expired" },
	{ "expired, x-api-key", "x-api-key: " EXPIRED "\r\n", 403, "api_key_expired" },
	{ "good, bearer", "Authorization: Bearer " GOOD "\r\n", 200, NULL },
	{ "good, bearer in other case", "authorization: bearer " GOOD "\r\n", 200, NULL },
	{ "good, x-api-key", "X-API-Key: " GOOD "\r\n", 200, NULL },
	{ "good, X-Api-Key", "X-Api-Key: " GOOD "\r\n", 200, NULL },
	{ "keys_file key", "Authorization: Bearer " FILEKEY "\r\n", 200, NULL },
	/* The first configured header that carries a key decides. */
	{ "good bearer, wrong x-api-key", "Authorization: Bearer " GOOD "\r\nX-API-Key: sk-x\r\n", 200, NULL },
	{ "wrong bearer, good x-api-key", "Authorization: Bearer sk-x\r\nX-API-Key: " GOOD "\r\n", 401, "invalid_api_key" },
};

START_TEST(key_verdicts)
{
	struct response r;
	char www[128];

	post_chat(verdicts[_i].header, &r);
	if (verdicts[_i].code == NULL) {
		ck_assert_msg(r.status == 200 && r.complete, "%s: %d", verdicts[_i].what, r.status);
		ck_assert_ptr_nonnull(memmem(r.body, r.body_len, "[DONE]", 6));
	} else {
		assert_error(&r, verdicts[_i].status, verdicts[_i].code);
		ck_assert_int_eq(response_header(&r, "WWW-Authenticate", www, sizeof(www)),
		    verdicts[_i].status == 401);
	}
	response_free(&r);
}
END_TEST

/* No key, no body read: the answer comes at once, without 100 Continue,
 * and the connection is closed since the body never was read. */
START_TEST(refused_before_the_body)
{
	struct response r;
	int fd = tcp_connect(proxy.port);

	send_str(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\nExpect: 100-continue\r\n"
	    "Content-Length: 5000000\r\n\r\n");
	ck_assert_int_eq(read_response(fd, &r, 3000, 0), 0);
	assert_error(&r, 401, "invalid_api_key");
	response_free(&r);
	ck_assert_int_ge(wait_closed(fd, 5000), 0);
	close(fd);
}
END_TEST

/* The same without Expect, for a body short enough that the waiting room
 * would collect it: a client without a good key is answered from the head
 * at once, not after the body it trickles (nor held for read_timeout while
 * its body costs a buffer). */
START_TEST(refused_before_a_short_body_too)
{
	static const char *const keys[] = { "", "Authorization: Bearer sk-wrong\r\n",
	    "X-API-Key: " DISABLED "\r\n" };
	char head[512];
	struct response r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int fd = tcp_connect(proxy.port);
		snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
		    "%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\"",
		    keys[i]);
		send_str(fd, head);
		int64_t t0 = now_ms();
		ck_assert_int_eq(read_response(fd, &r, 3000, 0), 0);
		ck_assert_msg(r.status == (i == 2 ? 403 : 401), "case %zu: %d", i, r.status);
		ck_assert_msg(now_ms() - t0 < 2000, "case %zu: answered after %lld ms", i,
		    (long long)(now_ms() - t0));
		response_free(&r);
		ck_assert_int_ge(wait_closed(fd, 5000), 0);
		close(fd);
	}
}
END_TEST

START_TEST(skip_paths_are_open)
{
	struct response r;

	ck_assert_int_eq(http_get(proxy.port, "/health", &r, 5000), 200);
	response_free(&r);
	ck_assert_int_eq(http_get(proxy.port, "/health?probe=1", &r, 5000), 200);
	response_free(&r);
	ck_assert_int_eq(http_get(proxy.port, "/metrics", &r, 5000), 200);
	response_free(&r);
	/* Everything else needs a key, the proxy's own /v1/models too. */
	ck_assert_int_eq(http_get(proxy.port, "/v1/models", &r, 5000), 401);
	response_free(&r);
	ck_assert_int_eq(http_get(proxy.port, "/healthz", &r, 5000), 401);
	response_free(&r);
}
END_TEST

/* ---- what the backend sees ---------------------------------------------------- */

static void
assert_backend_saw(const char *id)
{
	char rec[4096], got[256];

	ck_assert_int_eq(mock_get(&mock, "/mock/last", rec, sizeof(rec)), 200);
	ck_assert_msg(json_str(rec, "id", got, sizeof(got)) && strcmp(got, id) == 0,
	    "last record is not %s: %s", id, rec);
	ck_assert(json_str(rec, "authorization", got, sizeof(got)));
	ck_assert_str_eq(got, "Bearer " BACKEND);
	ck_assert(json_str(rec, "x_api_key", got, sizeof(got)));
	ck_assert_str_eq(got, "");
	ck_assert_ptr_null(strstr(rec, "sk-good"));
}

START_TEST(backend_gets_its_own_key_never_the_clients)
{
	struct response r;
	char raw[1024];

	post_chat("X-Request-Id: via-bearer\r\nAuthorization: Bearer " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	assert_backend_saw("via-bearer");

	post_chat("X-Request-Id: via-x-api-key\r\nX-API-Key: " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	assert_backend_saw("via-x-api-key");

	/* Any other /v1/ path is passed through: the mock echoes every header
	 * it got, and the client's key is not among them. */
	snprintf(raw, sizeof(raw), "GET /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	    GOOD "\r\nX-API-Key: " GOOD "\r\nConnection: close\r\n\r\n");
	ck_assert_int_eq(http_exchange(proxy.port, raw, &r, 5000), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(memmem(r.body, r.body_len, GOOD, strlen(GOOD)));
	ck_assert_ptr_nonnull(memmem(r.body, r.body_len, "Bearer " BACKEND, strlen(BACKEND) + 7));
	response_free(&r);
}
END_TEST

/* A header name configured with "_" ("api_key"): the client's key came in
 * it, so it must not reach the backend in it, nor in the same name spelt
 * with "-" (a CGI-style server reads both as HTTP_API_KEY); nor, for a name
 * configured with "-", in its "_" spelling. */
START_TEST(custom_key_headers_never_forwarded_in_any_spelling)
{
	static const char *const sent[] = {
		"api_key: " GOOD "\r\n",
		"api_key: " GOOD "\r\nApi-Key: " GOOD "\r\nX_Token: " GOOD "\r\n",
		"X-Token: " GOOD "\r\nAPI-KEY: " GOOD "\r\n",
	};
	char cfg[8192], raw[1024];
	struct response r;

	teardown();
	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
	make_temp_dir(keys_dir, sizeof(keys_dir), "keys");
	proxy_config(cfg, sizeof(cfg), &mock,
	    "[auth]\nenabled = true\nheader_names = api_key, X-Token\n"
	    "[auth.pipeline.0]\nname = static_auth\ntype = static\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = " GOOD "\nname = good\n");
	proxy_start_ok(&proxy, cfg);
	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		snprintf(raw, sizeof(raw), "GET /v1/echo HTTP/1.1\r\nHost: x\r\n%s"
		    "Connection: close\r\n\r\n", sent[i]);
		ck_assert_int_eq(http_exchange(proxy.port, raw, &r, 5000), 0);
		ck_assert_msg(r.status == 200, "case %zu: %d", i, r.status);
		ck_assert_msg(memmem(r.body, r.body_len, GOOD, strlen(GOOD)) == NULL,
		    "case %zu: the backend got the client's key: %.*s", i,
		    (int)r.body_len, r.body);
		response_free(&r);
	}
}
END_TEST

/* ---- what billing, the log and the metrics see ---------------------------------- */

static int
file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	int found;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

START_TEST(records_log_and_metrics_name_the_key_never_show_it)
{
	struct response r;
	char rec[4096], got[128];

	post_chat("X-Request-Id: billed-1\r\nAuthorization: Bearer " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	post_chat("X-Request-Id: billed-2\r\nX-API-Key: " FILEKEY "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	post_chat("X-Request-Id: refused-1\r\nX-API-Key: " DISABLED "\r\n", &r);
	ck_assert_int_eq(r.status, 403);
	response_free(&r);

	receiver_wait_record(&rv, "billed-1", rec, sizeof(rec));
	ck_assert(json_str(rec, "user_id", got, sizeof(got)));
	ck_assert_str_eq(got, "alice");
	ck_assert(json_str(rec, "key_name", got, sizeof(got)));
	ck_assert_str_eq(got, "good");
	ck_assert_int_gt(json_int(rec, "completion_tokens"), 0);
	receiver_wait_record(&rv, "billed-2", rec, sizeof(rec));
	ck_assert(json_str(rec, "user_id", got, sizeof(got)));
	ck_assert_str_eq(got, "erin");
	ck_assert(json_str(rec, "key_name", got, sizeof(got)));
	ck_assert_str_eq(got, "from-file");

	/* No secret anywhere: not in what billing got, not in the log (the
	 * access lines carry the name), not in the metrics. */
	ck_assert_int_eq(receiver_wait_records(&rv, 2, 5000), 2);
	ck_assert(!file_has(rv.records_path, "sk-"));
	ck_assert_int_eq(wait_file_contains(proxy.proc.err_path, "id=billed-2", 5000, NULL, 0), 0);
	ck_assert_int_eq(wait_file_contains(proxy.proc.err_path, "id=refused-1", 5000, NULL, 0), 0);
	ck_assert(file_has(proxy.proc.err_path, "key=good"));
	ck_assert(file_has(proxy.proc.err_path, "user=alice"));
	ck_assert(file_has(proxy.proc.err_path, "key=off"));
	ck_assert(!file_has(proxy.proc.err_path, "sk-"));

	ck_assert_int_eq(http_get(proxy.port, "/metrics", &r, 5000), 200);
	ck_assert_msg(strstr(r.body, "llmproxy_key_requests_total{key=\"good\"} 1\n") != NULL,
	    "%s", r.body);
	ck_assert(strstr(r.body, "llmproxy_key_requests_total{key=\"from-file\"} 1\n") != NULL);
	ck_assert(strstr(r.body, "llmproxy_auth_failures_total{reason=\"disabled\"} 1\n") != NULL);
	ck_assert(strstr(r.body, "llmproxy_key_tokens_total{key=\"good\",type=\"completion\"} 5\n") != NULL);
	ck_assert_ptr_null(strstr(r.body, "sk-"));
	response_free(&r);
}
END_TEST

/*
 * A client's X-Request-Id never becomes the record's request_id, which
 * receivers de-duplicate on: the same id sent twice by one tenant and once
 * by another gives three records, each with its own request_id and the
 * client's id only as client_request_id (and still echoed for tracing).
 */
START_TEST(client_request_id_cannot_merge_records)
{
	static const char *const auth[] = {
		"Authorization: Bearer " GOOD, "Authorization: Bearer " GOOD,
		"X-API-Key: " OTHER,
	};
	static const char *const key[] = { "good", "good", "other" };
	enum { N = sizeof(auth) / sizeof(auth[0]) };
	struct response r;
	char headers[256], got[128], ids[N][128], **lines, *block;

	for (size_t i = 0; i < N; i++) {
		snprintf(headers, sizeof(headers), "X-Request-Id: same-id\r\n%s\r\n",
		    auth[i]);
		post_chat(headers, &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert(response_header(&r, "X-Request-Id", got, sizeof(got)));
		ck_assert_str_eq(got, "same-id");
		response_free(&r);
	}
	ck_assert_uint_eq(receiver_wait_records(&rv, N, 10000), N);
	size_t n = receiver_records(&rv, &lines, &block);
	ck_assert_uint_eq(n, N);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(json_str(lines[i], "client_request_id", got, sizeof(got)) &&
		    strcmp(got, "same-id") == 0, "no client_request_id in %s", lines[i]);
		ck_assert(json_str(lines[i], "request_id", ids[i], sizeof(ids[i])));
		ck_assert_msg(strcmp(ids[i], "same-id") != 0,
		    "the client chose the request_id: %s", lines[i]);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(ids[i], ids[j]) != 0,
			    "two records share request_id %s", ids[i]);
	}
	/* Records may arrive in any order: each key's count is checked. */
	for (size_t k = 0; k < N; k++) {
		size_t want = 0, have = 0;
		for (size_t i = 0; i < N; i++)
			want += strcmp(key[i], key[k]) == 0;
		for (size_t i = 0; i < n; i++)
			have += json_str(lines[i], "key_name", got, sizeof(got)) &&
			    strcmp(got, key[k]) == 0;
		ck_assert_msg(have == want, "%zu records for key %s, want %zu",
		    have, key[k], want);
	}
	free(lines);
	free(block);
}
END_TEST

/* ---- limits -------------------------------------------------------------------- */

/* Burst 2 at 0.2 per second: two at once, then 429 with Retry-After (the
 * next token is 5 s away); another key is not affected. */
START_TEST(burst_then_429_with_retry_after)
{
	struct response r;
	char ra[32];

	teardown();
	start("[rate_limit]\nenabled = true\n"
	    "[rate_limit.per_key]\nrequests_per_second = 0.2\nburst_size = 2\n");
	for (int i = 0; i < 2; i++) {
		post_chat("Authorization: Bearer " GOOD "\r\n", &r);
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
	}
	post_chat("Authorization: Bearer " GOOD "\r\n", &r);
	assert_error(&r, 429, "rate_limit_exceeded");
	ck_assert(response_header(&r, "Retry-After", ra, sizeof(ra)));
	ck_assert_msg(atoi(ra) >= 4 && atoi(ra) <= 5, "Retry-After: %s", ra);
	response_free(&r);
	post_chat("Authorization: Bearer " OTHER "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	ck_assert_int_eq(http_get(proxy.port, "/metrics", &r, 5000), 200);
	ck_assert(strstr(r.body, "llmproxy_rate_limited_total{key=\"good\",limit=\"rate\"} 1\n") != NULL);
	response_free(&r);
}
END_TEST

START_TEST(global_burst_then_429)
{
	struct response r;
	char ra[32];

	teardown();
	start("[rate_limit]\nenabled = true\n"
	    "[rate_limit.global]\nrequests_per_second = 0.5\nburst_size = 3\n");
	for (int i = 0; i < 3; i++) {
		post_chat(i % 2 ? "Authorization: Bearer " GOOD "\r\n" : "X-API-Key: " OTHER "\r\n", &r);
		ck_assert_int_eq(r.status, 200);
		response_free(&r);
	}
	post_chat("Authorization: Bearer " OTHER "\r\n", &r);
	assert_error(&r, 429, "rate_limit_exceeded");
	ck_assert(response_header(&r, "Retry-After", ra, sizeof(ra)));
	ck_assert_msg(atoi(ra) >= 1 && atoi(ra) <= 2, "Retry-After: %s", ra);
	response_free(&r);
}
END_TEST

/* Starts a stream of key GOOD, `tokens` tokens 100 ms apart, and waits
 * until the backend is generating it.  Returns the client's socket. */
static int
start_stream(const char *id, int tokens)
{
	char req[2048];
	int fd;

	snprintf(req, sizeof(req),
	    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " GOOD "\r\n"
	    "X-Request-Id: %s\r\nX-Mock-Tokens: %d\r\nX-Mock-Delay-Ms: 100\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    id, tokens, strlen(stream_body), stream_body);
	fd = tcp_connect(proxy.port);
	send_str(fd, req);
	ck_assert_int_eq(mock_wait_state(&mock, id, "running", 5000), 0);
	return fd;
}

/* max_concurrent = 1: while a stream of `good` runs, a second one of
 * `good` is refused and one of `other` is served; when the first ends,
 * `good` may stream again. */
START_TEST(second_concurrent_stream_refused_other_key_served)
{
	struct response r;

	teardown();
	start("[rate_limit]\nenabled = true\n[rate_limit.per_key]\nmax_concurrent = 1\n");
	int fd = start_stream("long-1", 20);

	post_chat("X-Request-Id: second\r\nAuthorization: Bearer " GOOD "\r\n", &r);
	assert_error(&r, 429, "rate_limit_exceeded");
	ck_assert_ptr_nonnull(strstr(r.body, "concurrent"));
	response_free(&r);
	post_chat("X-Request-Id: other-key\r\nX-API-Key: " OTHER "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(r.complete);
	response_free(&r);
	/* The first stream was running all along. */
	char st[1024], state[32];
	ck_assert_int_eq(mock_get(&mock, "/mock/request?id=long-1", st, sizeof(st)), 200);
	ck_assert(json_str(st, "state", state, sizeof(state)));
	ck_assert_str_eq(state, "running");

	ck_assert_int_eq(read_response(fd, &r, 10000, 0), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert(r.complete);
	response_free(&r);
	close(fd);
	/* Its slot is free again once its answer is over (the access line is
	 * written after the slot is given back). */
	ck_assert_int_eq(wait_file_contains(proxy.proc.err_path, "id=long-1", 5000, NULL, 0), 0);
	post_chat("Authorization: Bearer " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
}
END_TEST

/* A client that goes away mid-stream gives its slot back too. */
START_TEST(aborted_stream_releases_its_slot)
{
	struct response r;

	teardown();
	start("[rate_limit]\nenabled = true\n[rate_limit.per_key]\nmax_concurrent = 1\n");
	int fd = start_stream("gone-1", 100);
	close(fd);
	ck_assert_int_eq(mock_wait_state(&mock, "gone-1", "aborted", 5000), 0);
	ck_assert_int_eq(wait_file_contains(proxy.proc.err_path, "id=gone-1", 5000, NULL, 0), 0);
	post_chat("Authorization: Bearer " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
}
END_TEST

/* tokens_per_minute: a request's metered tokens are charged when it is
 * over; past the budget, 429 until it refills; other keys go on. */
START_TEST(tokens_per_minute_exhausted)
{
	struct response r;
	char ra[32];

	teardown();
	start("[rate_limit]\nenabled = true\n[rate_limit.per_key]\ntokens_per_minute = 30\n");
	post_chat("X-Request-Id: big-1\r\nX-Mock-Tokens: 40\r\nAuthorization: Bearer " GOOD "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	/* Charged when the request is over, before its access line. */
	ck_assert_int_eq(wait_file_contains(proxy.proc.err_path, "id=big-1", 5000, NULL, 0), 0);
	post_chat("Authorization: Bearer " GOOD "\r\n", &r);
	assert_error(&r, 429, "rate_limit_exceeded");
	ck_assert_ptr_nonnull(strstr(r.body, "token"));
	ck_assert(response_header(&r, "Retry-After", ra, sizeof(ra)));
	/* 40 completion tokens and the prompt's (the mock counts about 20)
	 * against 30 a minute (0.5 a second): at least 22 s until the budget
	 * is back above zero. */
	ck_assert_msg(atoi(ra) >= 22 && atoi(ra) <= 120, "Retry-After: %s", ra);
	response_free(&r);
	post_chat("Authorization: Bearer " OTHER "\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
}
END_TEST

/* Auth off, a backend with a key: the proxy's key replaces the client's. */
START_TEST(auth_off_backend_key_replaces_clients)
{
	char cfg[2048], rec[4096], got[256];
	struct response r;

	teardown();
	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
	make_temp_dir(keys_dir, sizeof(keys_dir), "keys");
	proxy_config(cfg, sizeof(cfg), &mock, "[backends.mock]\napi_key = " BACKEND "\n");
	proxy_start_ok(&proxy, cfg);
	post_chat("X-Request-Id: open-1\r\nAuthorization: Bearer sk-client\r\nX-API-Key: sk-client\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	ck_assert_int_eq(mock_get(&mock, "/mock/last", rec, sizeof(rec)), 200);
	ck_assert(json_str(rec, "authorization", got, sizeof(got)));
	ck_assert_str_eq(got, "Bearer " BACKEND);
	ck_assert(json_str(rec, "x_api_key", got, sizeof(got)));
	ck_assert_str_eq(got, "");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("e2e_auth");
	TCase *tc = tcase_create("auth");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, key_verdicts, 0, N(verdicts));
	tcase_add_test(tc, refused_before_the_body);
	tcase_add_test(tc, refused_before_a_short_body_too);
	tcase_add_test(tc, skip_paths_are_open);
	tcase_add_test(tc, backend_gets_its_own_key_never_the_clients);
	tcase_add_test(tc, custom_key_headers_never_forwarded_in_any_spelling);
	tcase_add_test(tc, records_log_and_metrics_name_the_key_never_show_it);
	tcase_add_test(tc, client_request_id_cannot_merge_records);
	tcase_add_test(tc, burst_then_429_with_retry_after);
	tcase_add_test(tc, global_burst_then_429);
	tcase_add_test(tc, second_concurrent_stream_refused_other_key_served);
	tcase_add_test(tc, aborted_stream_releases_its_slot);
	tcase_add_test(tc, tokens_per_minute_exhausted);
	tcase_add_test(tc, auth_off_backend_key_replaces_clients);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
