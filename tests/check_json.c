/*
 * check_json.c — request inspection, model lists and string escaping
 * (src/json.c).
 *
 * What a user sees depends on json_inspect_request reading a body the way the
 * backend does: a stream the proxy does not recognise is neither metered nor
 * given usage, and a body the backend would refuse should get the proxy's own
 * 400.  So the tables below hold what real clients send, what only the
 * backend's parser would make of an odd body (nested or repeated members,
 * escaped member names), and invalid JSON that jsmn alone lets through.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "json.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* One inspection with a scratch of its own. */
static int
inspect(const char *body, size_t len, struct json_request *out)
{
	void *scratch = NULL;
	size_t scratch_bytes = 0;
	int r = json_inspect_request(body, len, out, &scratch, &scratch_bytes);

	free(scratch);
	return r;
}

/* ---- valid requests -------------------------------------------------------- */

static const struct valid_case {
	const char *name;
	const char *body;
	int stream;
	const char *model;	/* NULL: no model string */
	int has_stream_options;
	int include_usage;
} valid_cases[] = {
	{ "chat request",
	  "{\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"messages\":[{\"role\":"
	  "\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
	  "\"Hi\"}],\"temperature\":0.7,\"max_tokens\":64,\"stream\":true,"
	  "\"stream_options\":{\"include_usage\":true}}",
	  1, "Qwen/Qwen2.5-7B-Instruct", 1, 1 },
	{ "stream true", "{\"stream\":true}", 1, NULL, 0, 0 },
	{ "stream false", "{\"stream\":false}", 0, NULL, 0, 0 },
	{ "stream absent", "{\"model\":\"m\"}", 0, "m", 0, 0 },
	{ "stream as a string", "{\"stream\":\"true\"}", 0, NULL, 0, 0 },
	{ "stream as a number", "{\"stream\":1}", 0, NULL, 0, 0 },
	{ "stream null", "{\"stream\":null}", 0, NULL, 0, 0 },
	{ "empty object", "{}", 0, NULL, 0, 0 },
	{ "model a number", "{\"model\":5}", 0, NULL, 0, 0 },
	{ "model null", "{\"model\":null}", 0, NULL, 0, 0 },
	{ "model an object", "{\"model\":{\"model\":\"x\"}}", 0, NULL, 0, 0 },
	{ "model empty", "{\"model\":\"\"}", 0, "", 0, 0 },
	{ "model with escapes, not decoded",
	  "{\"model\":\"a\\\"b\\\\c\\u00e9\\/\"}", 0,
	  "a\\\"b\\\\c\\u00e9\\/", 0, 0 },
	{ "model UTF-8", "{\"model\":\"\xe6\xa8\xa1\xe5\x9e\x8b\"}", 0,
	  "\xe6\xa8\xa1\xe5\x9e\x8b", 0, 0 },
	{ "nested model and stream ignored",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":"
	  "\"evil\",\"stream\":true}],\"metadata\":{\"model\":\"x\","
	  "\"stream\":true,\"stream_options\":{\"include_usage\":true}}}",
	  0, NULL, 0, 0 },
	{ "nested after the top-level ones",
	  "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"model\":\"evil\","
	  "\"stream\":true}],\"x\":{\"y\":{\"model\":\"deep\"}}}",
	  0, "m", 0, 0 },
	{ "names as values do not count",
	  "{\"user\":\"model\",\"stop\":[\"stream\",\"model\"],\"x\":\"stream\","
	  "\"y\":true}", 0, NULL, 0, 0 },
	{ "stream_options empty", "{\"stream\":true,\"stream_options\":{}}",
	  1, NULL, 1, 0 },
	{ "include_usage true", "{\"stream_options\":{\"include_usage\":true}}",
	  0, NULL, 1, 1 },
	{ "include_usage false",
	  "{\"stream_options\":{\"include_usage\":false}}", 0, NULL, 1, 0 },
	{ "include_usage a string",
	  "{\"stream_options\":{\"include_usage\":\"true\"}}", 0, NULL, 1, 0 },
	{ "include_usage with other options",
	  "{\"stream_options\":{\"continuous_usage_stats\":true,"
	  "\"include_usage\":true}}", 0, NULL, 1, 1 },
	{ "include_usage nested deeper",
	  "{\"stream_options\":{\"x\":{\"include_usage\":true}}}",
	  0, NULL, 1, 0 },
	{ "include_usage at the top level", "{\"include_usage\":true}",
	  0, NULL, 0, 0 },
	{ "stream_options null", "{\"stream_options\":null}", 0, NULL, 0, 0 },
	{ "stream_options an array",
	  "{\"stream_options\":[{\"include_usage\":true}]}", 0, NULL, 0, 0 },
	{ "duplicate stream, last true", "{\"stream\":false,\"stream\":true}",
	  1, NULL, 0, 0 },
	{ "duplicate stream, last false", "{\"stream\":true,\"stream\":false}",
	  0, NULL, 0, 0 },
	{ "duplicate model", "{\"model\":\"a\",\"model\":\"b\"}", 0, "b", 0, 0 },
	{ "duplicate model, last not a string",
	  "{\"model\":\"a\",\"model\":null}", 0, NULL, 0, 0 },
	{ "duplicate stream_options, last null",
	  "{\"stream_options\":{\"include_usage\":true},"
	  "\"stream_options\":null}", 0, NULL, 0, 0 },
	{ "duplicate stream_options, last without include_usage",
	  "{\"stream_options\":{\"include_usage\":true},\"stream_options\":{}}",
	  0, NULL, 1, 0 },
	{ "duplicate stream_options, last with include_usage",
	  "{\"stream_options\":null,\"stream_options\":{\"include_usage\":"
	  "true}}", 0, NULL, 1, 1 },
	{ "duplicate include_usage",
	  "{\"stream_options\":{\"include_usage\":true,\"include_usage\":"
	  "false}}", 0, NULL, 1, 0 },
	{ "escaped member names",
	  "{\"str\\u0065am\":true,\"\\u006dodel\":\"m\",\"stream_\\u006Fptions\""
	  ":{\"include\\u005fusage\":true}}", 1, "m", 1, 1 },
	{ "escaped name repeated, last wins",
	  "{\"stream\":true,\"str\\u0065am\":false}", 0, NULL, 0, 0 },
	{ "names that only start the same",
	  "{\"streaming\":true,\"strea\":true,\"modelx\":\"m\","
	  "\"stream_options_\":{\"include_usage\":true},\"str\\u00e9am\":true}",
	  0, NULL, 0, 0 },
	{ "whitespace everywhere",
	  " \t\r\n{ \"stream\" : true ,\n\t\"model\" :\"m\" , \"stream_options\""
	  " : { \"include_usage\" : true } } \r\n\t ", 1, "m", 1, 1 },
	{ "unicode in the body",
	  "{\"messages\":[{\"content\":\"h\xc3\xa9llo \\ud83d\\ude00 "
	  "\xf0\x9f\x98\x80\"}],\"stream\":true}", 1, NULL, 0, 0 },
	{ "every kind of value",
	  "{\"a\":[0,-0,1.5,-1e10,2E+3,1e-2,0.0,10,true,false,null,\"\","
	  "{},[],[[]],{\"b\":{}}],\"stream\":true}", 1, NULL, 0, 0 },
};

static void
assert_request(const struct valid_case *c, const struct json_request *rq)
{
	size_t len = strlen(c->body);

	ck_assert_msg(rq->stream == c->stream, "%s: stream %d", c->name,
	    rq->stream);
	ck_assert_msg(rq->has_stream_options == c->has_stream_options,
	    "%s: has_stream_options %d", c->name, rq->has_stream_options);
	ck_assert_msg(rq->include_usage == c->include_usage,
	    "%s: include_usage %d", c->name, rq->include_usage);
	if (c->model == NULL) {
		ck_assert_msg(rq->model == NULL, "%s: model %.*s", c->name,
		    (int)rq->model_len, rq->model);
		ck_assert_uint_eq(rq->model_len, 0);
		return;
	}
	ck_assert_msg(rq->model != NULL, "%s: no model", c->name);
	/* Not a copy: it points into the body. */
	ck_assert(rq->model >= c->body && rq->model + rq->model_len <=
	    c->body + len);
	ck_assert_msg(rq->model_len == strlen(c->model) &&
	    memcmp(rq->model, c->model, rq->model_len) == 0,
	    "%s: model %.*s", c->name, (int)rq->model_len, rq->model);
}

START_TEST(test_valid)
{
	const struct valid_case *c = &valid_cases[_i];
	struct json_request rq;

	memset(&rq, 0x55, sizeof rq);	/* every field must be written */
	ck_assert_msg(inspect(c->body, strlen(c->body), &rq) == JSON_OK,
	    "%s: not accepted", c->name);
	assert_request(c, &rq);
}
END_TEST

/* Every body cut short is truncated JSON. */
START_TEST(test_valid_truncated)
{
	const struct valid_case *c = &valid_cases[_i];
	size_t len = strlen(c->body), cut;
	struct json_request rq;

	while (len > 0 && strchr(" \t\r\n", c->body[len - 1]) != NULL)
		len--;
	for (cut = 0; cut < len; cut++)
		ck_assert_msg(inspect(c->body, cut, &rq) == JSON_INVALID,
		    "%s: accepted cut at %zu", c->name, cut);
}
END_TEST

/* ---- invalid bodies -------------------------------------------------------- */

static const struct invalid_case {
	const char *body;
	size_t len;		/* 0: strlen(body) */
} invalid_cases[] = {
#define B(s) { s, sizeof(s) - 1 }
	/* Not one object. */
	B(""), B(" \r\n"), B("[]"), B("[{\"stream\":true}]"), B("\"x\""),
	B("1"), B("1 "), B("true"), B("null"), B("{}{}"), B("{} {}"),
	B("{\"a\":1}x"), B("{\"a\":1} 1"), B("{\"a\":1}}"), B("\xef\xbb\xbf{}"),
	B(",{}"), B("{}:"), B("{}\x0b"),
	/* Truncated or unbalanced. */
	B("{"), B("}"), B("{\"a\":1"), B("{\"a\":\"x}"), B("{\"a\":[}"),
	B("{\"a\":1]}"), B("{{}}"), B("{\"a\":\"\\"), B("{\"a\":\"\\u12"),
	/* Member syntax. */
	B("{\"a\" 1}"), B("{a:1}"), B("{'a':1}"), B("{\"a\",1}"), B("{:1}"),
	B("{1:2}"), B("{\"a\":1,\"b\"}"),
	/* Bad strings and primitives. */
	B("{\"a\":\"\\x\"}"), B("{\"a\":\"\\u12g4\"}"), B("{\"a\":+1}"),
	B("{\"a\":.5}"), B("{\"a\":NaN}"), B("{\"a\":Infinity}"),
	B("{\"a\":'x'}"), B("{\"a\":True}"),
	/* NUL bytes: jsmn stops at a NUL as if the body ended there. */
	B("{\"a\":1}\0"), B("{\"a\":1\0}"), B("{\"a\":\"x\0y\"}"),
	B("{}\0{}"), B("\0{}"),
	/* jsmn's strict mode accepts all of these. */
	B("{\"a\":}"), B("{\"a\":1,}"), B("{\"a\":1 , }"), B("{\"a\":[1,]}"),
	B("{\"a\":[1,,2]}"), B("{\"a\":1,,\"b\":2}"), B("{,}"), B("{,\"a\":1}"),
	B("{\"a\":[,]}"), B("{\"a\":[,1]}"), B("{\"a\":{,}}"), B("{\"a\"::1}"),
	B("{\"a\":1 \"b\":2}"), B("{\"a\":[1 2]}"), B("{\"a\":[\"x\" \"y\"]}"),
	B("{\"a\":{}\"b\":1}"), B("{\"a\":\"b\":\"c\"}"), B("{\"a\":[\"x\":1]}"),
	B("{\"a\":[1:2]}"), B("{\"a\":1:2}"), B("{\"a\":1,:2}"),
	B("{\"a\":{\"b\"}}"), B("{\"a\":{\"x\":{\"b\"}:1}}"),
	B("{\"a\":tru}"), B("{\"a\":truee}"), B("{\"a\":nul}"),
	B("{\"a\":fals}"), B("{\"a\":t\"x}"), B("{\"a\":01}"),
	B("{\"a\":-01}"), B("{\"a\":1.}"), B("{\"a\":-}"), B("{\"a\":1e}"),
	B("{\"a\":1e+}"), B("{\"a\":1a}"), B("{\"a\":1.2.3}"), B("{\"a\":--1}"),
	B("{\"a\":\"x\ny\"}"), B("{\"a\":\"\x01\"}"), B("{\"a\x1f\":1}"),
#undef B
};

START_TEST(test_invalid)
{
	const struct invalid_case *c = &invalid_cases[_i];
	struct json_request rq;
	int r = inspect(c->body, c->len, &rq);

	ck_assert_msg(r == JSON_INVALID, "case %d \"%.*s\": %d", _i,
	    (int)c->len, c->body, r);
	/* Nothing half-filled is left behind. */
	ck_assert(rq.stream == 0 && rq.model == NULL && rq.model_len == 0 &&
	    rq.has_stream_options == 0 && rq.include_usage == 0);
}
END_TEST

/* ---- token space ------------------------------------------------------------- */

/* {"model":"m","messages":[n small messages],"stream":true}: 5 tokens per
 * message, the members that matter after the big array. */
static char *
many_messages(size_t n, size_t *len)
{
	static const char head[] = "{\"model\":\"m\",\"messages\":[";
	static const char msg[] = "{\"role\":\"user\",\"content\":\"hi\"},";
	static const char tail[] = "],\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true}}";
	size_t i, at;
	char *b = malloc(sizeof head + n * (sizeof msg - 1) + sizeof tail);

	ck_assert_ptr_nonnull(b);
	memcpy(b, head, sizeof head - 1);
	at = sizeof head - 1;
	for (i = 0; i < n; i++, at += sizeof msg - 1)
		memcpy(b + at, msg, sizeof msg - 1);
	if (n > 0)
		at--;		/* no comma after the last message */
	memcpy(b + at, tail, sizeof tail);
	*len = at + sizeof tail - 1;
	return b;
}

START_TEST(test_scratch_growth_and_reuse)
{
	static const char small[] = "{\"model\":\"s\",\"stream\":false}";
	void *scratch = NULL, *grown;
	size_t scratch_bytes = 0, first_bytes, grown_bytes, len;
	struct json_request rq;
	char *big = many_messages(5000, &len);

	/* A small body gets the initial allocation. */
	ck_assert_int_eq(json_inspect_request(small, sizeof small - 1, &rq,
	    &scratch, &scratch_bytes), JSON_OK);
	ck_assert_ptr_nonnull(scratch);
	ck_assert_uint_gt(scratch_bytes, 0);
	ck_assert(rq.model_len == 1 && rq.model[0] == 's' && !rq.stream);
	first_bytes = scratch_bytes;

	/* 25 000 tokens do not fit: counted, grown, parsed again. */
	ck_assert_int_eq(json_inspect_request(big, len, &rq, &scratch,
	    &scratch_bytes), JSON_OK);
	ck_assert(rq.stream && rq.has_stream_options && rq.include_usage);
	ck_assert(rq.model_len == 1 && rq.model == big + 10);
	ck_assert_uint_ge(scratch_bytes, first_bytes * (5000 * 5 / 128));
	grown = scratch;
	grown_bytes = scratch_bytes;

	/* The same body again, then small ones, an invalid one, the big one
	 * again: the scratch is reused as it is, and no result leaks into the
	 * next. */
	ck_assert_int_eq(json_inspect_request(big, len, &rq, &scratch,
	    &scratch_bytes), JSON_OK);
	ck_assert(rq.stream && rq.include_usage);
	ck_assert_int_eq(json_inspect_request(small, sizeof small - 1, &rq,
	    &scratch, &scratch_bytes), JSON_OK);
	ck_assert(!rq.stream && !rq.include_usage && rq.model[0] == 's');
	ck_assert_int_eq(json_inspect_request("{\"stream\":true,}", 16, &rq,
	    &scratch, &scratch_bytes), JSON_INVALID);
	ck_assert(!rq.stream);
	ck_assert_int_eq(json_inspect_request(big, len, &rq, &scratch,
	    &scratch_bytes), JSON_OK);
	ck_assert(rq.stream && rq.include_usage);
	ck_assert_ptr_eq(scratch, grown);
	ck_assert_uint_eq(scratch_bytes, grown_bytes);

	free(scratch);
	free(big);
}
END_TEST

/* {"a":[0,0,...]} with exactly `tokens` tokens (the object, "a", the array
 * and its elements). */
static char *
flat_body(size_t tokens, size_t *len)
{
	size_t k = tokens - 3, i, at = 6;
	char *b = malloc(6 + 2 * k + 2);

	ck_assert_ptr_nonnull(b);
	memcpy(b, "{\"a\":[", 6);
	for (i = 0; i < k; i++, at += 2)
		memcpy(b + at, "0,", 2);
	if (k > 0)
		at--;
	memcpy(b + at, "]}", 2);
	*len = at + 2;
	return b;
}

START_TEST(test_token_cap)
{
	void *scratch = NULL;
	size_t scratch_bytes = 0, len;
	struct json_request rq;
	char *at_cap = flat_body(CAP_JSON_TOKENS, &len);
	char *over;

	/* The cap itself is allowed... */
	ck_assert_int_eq(json_inspect_request(at_cap, len, &rq, &scratch,
	    &scratch_bytes), JSON_OK);
	free(at_cap);

	/* ...one more token is not: with a scratch already at the cap, and
	 * with a fresh one (refused after counting, before allocating). */
	over = flat_body(CAP_JSON_TOKENS + 1, &len);
	ck_assert_int_eq(json_inspect_request(over, len, &rq, &scratch,
	    &scratch_bytes), JSON_TOO_BIG);
	free(scratch);
	scratch = NULL;
	scratch_bytes = 0;
	ck_assert_int_eq(json_inspect_request(over, len, &rq, &scratch,
	    &scratch_bytes), JSON_TOO_BIG);
	ck_assert_uint_le(scratch_bytes, 128 * 64);
	free(scratch);
	free(over);
}
END_TEST

/* {"a":[[[...0...]]]} with containers nested `depth` deep, the root included. */
static char *
nested_body(size_t depth, size_t *len)
{
	size_t k = depth - 1;
	char *b = malloc(5 + 2 * k + 2);

	ck_assert_ptr_nonnull(b);
	memcpy(b, "{\"a\":", 5);
	memset(b + 5, '[', k);
	b[5 + k] = '0';
	memset(b + 6 + k, ']', k);
	b[6 + 2 * k] = '}';
	*len = 7 + 2 * k;
	return b;
}

START_TEST(test_depth_cap)
{
	size_t len;
	struct json_request rq;
	char *b = nested_body(CAP_JSON_DEPTH, &len);

	ck_assert_int_eq(inspect(b, len, &rq), JSON_OK);
	free(b);
	b = nested_body(CAP_JSON_DEPTH + 1, &len);
	ck_assert_int_eq(inspect(b, len, &rq), JSON_TOO_BIG);
	free(b);

	/* Brackets inside strings are text, not nesting, and an escaped
	 * quote does not end the string. */
	b = malloc(CAP_JSON_DEPTH * 2 + 16);
	ck_assert_ptr_nonnull(b);
	memcpy(b, "{\"a\":\"\\\"", 8);
	memset(b + 8, '[', CAP_JSON_DEPTH * 2);
	memcpy(b + 8 + CAP_JSON_DEPTH * 2, "\"}", 2);
	ck_assert_int_eq(inspect(b, 10 + CAP_JSON_DEPTH * 2, &rq), JSON_OK);
	free(b);
}
END_TEST

/*
 * jsmn's work is quadratic in the nesting depth: 200 000 nested arrays (a
 * 400 KB body, well under the token cap) take jsmn about 45 s.  The depth cap
 * must refuse it at once; without it this test hits Check's timeout.
 */
START_TEST(test_deep_body_refused_fast)
{
	size_t len;
	struct json_request rq;
	char *b = nested_body(200000, &len);

	ck_assert_int_eq(inspect(b, len, &rq), JSON_TOO_BIG);
	free(b);
}
END_TEST

/* ---- where the rewrite writes ------------------------------------------------ */

/*
 * json_inject_usage() writes at these offsets without looking at the body
 * again, so each must be exact.  The numbers were worked out apart from
 * json.c (Python's json module, which keeps the last of repeated members as
 * the backend does).
 */
static const struct offset_case {
	const char *name;
	const char *body;
	size_t root_close;
	int root_empty, has_stream_options;
	size_t opts_open, opts_len;
	int opts_empty;
	int has_include_usage, include_usage;
	size_t include_usage_at, include_usage_len;
	int has_continuous, continuous_usage;
	size_t continuous_at, continuous_len;
} offset_cases[] = {
	{ "empty root",
	  "{}",
	  1, 1, 0, 0, 0, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "no stream_options",
	  "{\"model\":\"m\",\"stream\":true}",
	  26, 0, 0, 0, 0, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "empty stream_options",
	  "{\"stream\":true,\"stream_options\":{}}",
	  34, 0, 1, 32, 2, 1,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "include_usage false",
	  "{\"stream_options\":{\"include_usage\":false}}",
	  41, 0, 1, 18, 23, 0,
	  1, 0, 35, 5, 0, 0, 0, 0 },
	{ "both, string value",
	  "{\"stream_options\":{\"continuous_usage_stats\":true,\"include_usage\":\"yes\"}}",
	  71, 0, 1, 18, 53, 0,
	  1, 0, 65, 5, 1, 1, 44, 4 },
	{ "stream_options null",
	  "{\"stream_options\":null}",
	  22, 0, 0, 18, 4, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "stream_options an array",
	  "{\"stream_options\":[1, 2]}",
	  24, 0, 0, 18, 6, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "stream_options a string",
	  "{\"stream_options\":\"x\",\"n\":1}",
	  27, 0, 0, 18, 3, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "last stream_options counts",
	  "{\"stream_options\":{\"include_usage\":true},\"stream_options\":{ \"include_usage\" : 0 }}",
	  81, 0, 1, 58, 23, 0,
	  1, 0, 78, 1, 0, 0, 0, 0 },
	{ "last stream_options null",
	  "{\"stream_options\":{\"include_usage\":true},\"stream_options\":null}",
	  62, 0, 0, 58, 4, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "last include_usage counts",
	  "{\"stream_options\":{\"include_usage\":false,\"include_usage\":true}}",
	  62, 0, 1, 18, 44, 0,
	  1, 1, 57, 4, 0, 0, 0, 0 },
	{ "whitespace",
	  " {\"a\":1 , \"stream_options\" : { } } \n",
	  33, 0, 1, 29, 3, 1,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "nested stream_options ignored",
	  "{\"x\":{\"stream_options\":{\"include_usage\":false}}}",
	  47, 0, 0, 0, 0, 0,
	  0, 0, 0, 0, 0, 0, 0, 0 },
	{ "continuous false",
	  "{\"stream_options\":{\"continuous_usage_stats\":false}}",
	  50, 0, 1, 18, 32, 0,
	  0, 0, 0, 0, 1, 0, 44, 5 },
};

/* What every inspected body must satisfy, whatever it is. */
static void
assert_offsets_sane(const char *name, const char *body, size_t len,
    const struct json_request *rq)
{
	ck_assert_msg(rq->root_close < len && body[rq->root_close] == '}',
	    "%s: root_close %zu", name, rq->root_close);
	ck_assert(rq->opts_open + rq->opts_len <= len);
	if (rq->has_stream_options)
		ck_assert_msg(body[rq->opts_open] == '{' &&
		    body[rq->opts_open + rq->opts_len - 1] == '}',
		    "%s: opts at %zu", name, rq->opts_open);
	ck_assert(rq->has_stream_options || (!rq->has_include_usage &&
	    !rq->has_continuous && !rq->include_usage &&
	    !rq->continuous_usage));
	ck_assert(!rq->include_usage || rq->has_include_usage);
	ck_assert(!rq->continuous_usage || rq->has_continuous);
	ck_assert(rq->include_usage_at + rq->include_usage_len <= len);
	ck_assert(rq->continuous_at + rq->continuous_len <= len);
}

START_TEST(test_offsets)
{
	const struct offset_case *c = &offset_cases[_i];
	size_t len = strlen(c->body);
	struct json_request rq;

	memset(&rq, 0x55, sizeof rq);
	ck_assert_msg(inspect(c->body, len, &rq) == JSON_OK, "%s", c->name);
	assert_offsets_sane(c->name, c->body, len, &rq);
#define EQ(f) ck_assert_msg(rq.f == c->f, "%s: " #f " %zu, want %zu", \
	    c->name, (size_t)rq.f, (size_t)c->f)
	EQ(root_close);
	EQ(root_empty);
	EQ(has_stream_options);
	EQ(opts_open);
	EQ(opts_len);
	EQ(opts_empty);
	EQ(has_include_usage);
	EQ(include_usage);
	EQ(include_usage_at);
	EQ(include_usage_len);
	EQ(has_continuous);
	EQ(continuous_usage);
	EQ(continuous_at);
	EQ(continuous_len);
#undef EQ
}
END_TEST

/* Every existing valid body: offsets that point where they say. */
START_TEST(test_valid_offsets)
{
	const struct valid_case *c = &valid_cases[_i];
	struct json_request rq;

	ck_assert_int_eq(inspect(c->body, strlen(c->body), &rq), JSON_OK);
	assert_offsets_sane(c->name, c->body, strlen(c->body), &rq);
}
END_TEST

/* ---- prompt bytes ------------------------------------------------------------- */

static const struct prompt_case {
	const char *name;
	const char *body;
	size_t prompt_bytes;
} prompt_cases[] = {
	{ "chat, string contents",
	  "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
	  "\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]}", 9 + 2 },
	{ "content parts: text only",
	  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
	  "\"text\":\"What is\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
	  "\"data:image/png;base64,AAAA\"}},{\"type\":\"text\",\"text\":"
	  "\" this?\"}]}]}", 7 + 6 },
	{ "escapes counted as sent",
	  "{\"messages\":[{\"content\":\"a\\nb\\u00e9\\\"\"}]}", 12 },
	{ "UTF-8 counted in bytes",
	  "{\"messages\":[{\"content\":\"\xe6\x88\x91\xe6\x98\xaf\"}]}", 6 },
	{ "no text: null, missing, a number, an image",
	  "{\"messages\":[{\"role\":\"assistant\",\"content\":null,"
	  "\"tool_calls\":[]},{\"role\":\"user\"},{\"content\":5},{\"content\":"
	  "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 0 },
	{ "part text not a string, part not an object",
	  "{\"messages\":[{\"content\":[{\"type\":\"text\",\"text\":5},\"raw\","
	  "[\"x\"]]}]}", 0 },
	{ "text beside content does not count",
	  "{\"messages\":[{\"content\":\"ab\",\"text\":\"zzzz\"}]}", 2 },
	{ "completions: prompt string", "{\"prompt\":\"Once upon\"}", 9 },
	{ "completions: prompt strings", "{\"prompt\":[\"ab\",\"cde\"]}", 5 },
	{ "completions: token ids have no text", "{\"prompt\":[1,2,3]}", 0 },
	{ "embeddings: input string", "{\"input\":\"hello world\"}", 11 },
	{ "embeddings: input strings, nested arrays skipped",
	  "{\"input\":[\"a\",\"bc\",[\"zz\"],{\"t\":\"zz\"}]}", 3 },
	{ "only top-level members start it",
	  "{\"metadata\":{\"prompt\":\"xxxx\",\"messages\":[{\"content\":\"yyyy\"}]},"
	  "\"messages\":[{\"content\":\"z\",\"messages\":[{\"content\":\"q\"}]}]}",
	  1 },
	{ "repeated messages: the last counts",
	  "{\"messages\":[{\"content\":\"aaaa\"}],\"messages\":[{\"content\":"
	  "\"b\"}]}", 1 },
	{ "repeated content: the last counts",
	  "{\"messages\":[{\"content\":\"aaaa\",\"content\":\"b\"}]}", 1 },
	{ "messages not an array", "{\"messages\":{\"content\":\"x\"}}", 0 },
	{ "all three together",
	  "{\"prompt\":\"ab\",\"messages\":[{\"content\":\"c\"}],\"input\":"
	  "\"de\"}", 5 },
	{ "escaped member names",
	  "{\"m\\u0065ssages\":[{\"c\\u006fntent\":\"abc\"}]}", 3 },
	{ "none", "{\"model\":\"m\"}", 0 },
};

START_TEST(test_prompt_bytes)
{
	const struct prompt_case *c = &prompt_cases[_i];
	struct json_request rq;

	ck_assert_msg(inspect(c->body, strlen(c->body), &rq) == JSON_OK,
	    "%s", c->name);
	ck_assert_msg(rq.prompt_bytes == c->prompt_bytes, "%s: %zu, want %zu",
	    c->name, rq.prompt_bytes, c->prompt_bytes);
}
END_TEST

/* ---- the include_usage rewrite ------------------------------------------------- */

static const struct inject_case {
	const char *name;
	const char *body;
	int continuous;
	const char *out;
} inject_cases[] = {
	{ "no stream_options", "{\"model\":\"m\",\"stream\":true}", 0,
	  "{\"model\":\"m\",\"stream\":true,\"stream_options\":"
	  "{\"include_usage\":true}}" },
	{ "no stream_options, continuous", "{\"model\":\"m\",\"stream\":true}", 1,
	  "{\"model\":\"m\",\"stream\":true,\"stream_options\":"
	  "{\"include_usage\":true,\"continuous_usage_stats\":true}}" },
	{ "empty root", "{}", 0, "{\"stream_options\":{\"include_usage\":true}}" },
	{ "empty root with whitespace, continuous", " { } ", 1,
	  " { \"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":true}} " },
	{ "whitespace kept, insertion before the root's '}'",
	  " { \"stream\" : true }\r\n", 0,
	  " { \"stream\" : true ,\"stream_options\":{\"include_usage\":true}}"
	  "\r\n" },
	{ "a '}' in a string is not the root's",
	  "{\"messages\":[{\"content\":\"}\"}],\"stream\":true}", 0,
	  "{\"messages\":[{\"content\":\"}\"}],\"stream\":true,"
	  "\"stream_options\":{\"include_usage\":true}}" },
	{ "empty stream_options", "{\"stream\":true,\"stream_options\":{}}", 0,
	  "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}" },
	{ "empty stream_options, continuous",
	  "{\"stream\":true,\"stream_options\":{}}", 1,
	  "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":true}}" },
	{ "empty stream_options with whitespace", "{\"stream_options\":{ }}", 0,
	  "{\"stream_options\":{\"include_usage\":true }}" },
	{ "other options kept", "{\"stream_options\":{\"foo\":1}}", 0,
	  "{\"stream_options\":{\"include_usage\":true,\"foo\":1}}" },
	{ "include_usage false", "{\"stream_options\":{\"include_usage\":false}}",
	  0, "{\"stream_options\":{\"include_usage\":true}}" },
	{ "include_usage a string, continuous 0",
	  "{\"stream_options\":{\"include_usage\":\"yes\","
	  "\"continuous_usage_stats\":0}}", 1,
	  "{\"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":true}}" },
	{ "both replaced, in the other order",
	  "{\"stream_options\":{\"continuous_usage_stats\":false,"
	  "\"include_usage\":null}}", 1,
	  "{\"stream_options\":{\"continuous_usage_stats\":true,"
	  "\"include_usage\":true}}" },
	{ "one inserted, one replaced",
	  "{\"stream_options\":{\"include_usage\":false}}", 1,
	  "{\"stream_options\":{\"continuous_usage_stats\":true,"
	  "\"include_usage\":true}}" },
	{ "include_usage already true, continuous added",
	  "{\"stream_options\":{\"include_usage\":true}}", 1,
	  "{\"stream_options\":{\"continuous_usage_stats\":true,"
	  "\"include_usage\":true}}" },
	{ "nothing to do", "{\"stream_options\":{\"include_usage\":true}}", 0,
	  "{\"stream_options\":{\"include_usage\":true}}" },
	{ "continuous already true",
	  "{\"stream_options\":{\"continuous_usage_stats\":true}}", 1,
	  "{\"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":true}}" },
	{ "continuous not asked for: left as it is",
	  "{\"stream_options\":{\"continuous_usage_stats\":false}}", 0,
	  "{\"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":false}}" },
	{ "stream_options null: replaced by an object",
	  "{\"stream_options\":null}", 0,
	  "{\"stream_options\":{\"include_usage\":true}}" },
	{ "stream_options null, continuous, members after",
	  "{\"stream_options\":null,\"stream\":true}", 1,
	  "{\"stream_options\":{\"include_usage\":true,"
	  "\"continuous_usage_stats\":true},\"stream\":true}" },
	{ "stream_options an array", "{\"stream_options\":[],\"x\":1}", 0,
	  "{\"stream_options\":{\"include_usage\":true},\"x\":1}" },
	{ "stream_options a string", "{\"stream_options\":\"on\"}", 0,
	  "{\"stream_options\":{\"include_usage\":true}}" },
	{ "repeated stream_options: the last is written",
	  "{\"stream_options\":{\"include_usage\":true},\"stream_options\":{}}",
	  0, "{\"stream_options\":{\"include_usage\":true},\"stream_options\":"
	  "{\"include_usage\":true}}" },
	{ "repeated stream_options, the last null",
	  "{\"stream_options\":{\"include_usage\":true},"
	  "\"stream_options\":null}", 0,
	  "{\"stream_options\":{\"include_usage\":true},\"stream_options\":"
	  "{\"include_usage\":true}}" },
	{ "repeated include_usage: the last is replaced",
	  "{\"stream_options\":{\"include_usage\":true,\"include_usage\":0}}", 0,
	  "{\"stream_options\":{\"include_usage\":true,\"include_usage\":true}}" },
	{ "whitespace inside stream_options",
	  "{\"stream_options\": { \"include_usage\" : false , \"x\" : 1 } }", 1,
	  "{\"stream_options\": {\"continuous_usage_stats\":true, "
	  "\"include_usage\" : true , \"x\" : 1 } }" },
	{ "escaped member names",
	  "{\"stream_\\u006fptions\":{\"include\\u005fusage\":false}}", 0,
	  "{\"stream_\\u006fptions\":{\"include\\u005fusage\":true}}" },
	{ "nested include_usage does not count",
	  "{\"stream_options\":{\"x\":{\"include_usage\":false}}}", 0,
	  "{\"stream_options\":{\"include_usage\":true,\"x\":"
	  "{\"include_usage\":false}}}" },
};

/*
 * The rewrite of body, into a buffer of exactly len + JSON_INJECT_EXTRA
 * bytes (and a guard after it), read back: the backend sees include_usage,
 * and (with continuous) continuous_usage_stats, and nothing else changed.
 */
static size_t
inject_round_trip(const char *name, const char *body, int continuous,
    char *out)
{
	size_t len = strlen(body), n, i;
	struct json_request before, after;

	ck_assert_msg(inspect(body, len, &before) == JSON_OK, "%s", name);
	memset(out, '#', len + JSON_INJECT_EXTRA + 16);
	n = json_inject_usage(body, len, &before, continuous, out);
	ck_assert_uint_le(n, len + JSON_INJECT_EXTRA);
	for (i = len + JSON_INJECT_EXTRA; i < len + JSON_INJECT_EXTRA + 16; i++)
		ck_assert_msg(out[i] == '#', "%s: wrote past the room", name);
	ck_assert_msg(inspect(out, n, &after) == JSON_OK, "%s: \"%.*s\" is not "
	    "valid", name, (int)n, out);
	assert_offsets_sane(name, out, n, &after);
	ck_assert_msg(after.include_usage && after.has_stream_options,
	    "%s: include_usage not read back from \"%.*s\"", name, (int)n, out);
	ck_assert_msg(!continuous || after.continuous_usage,
	    "%s: continuous_usage_stats not read back", name);
	ck_assert(after.continuous_usage == (continuous ||
	    before.continuous_usage));
	ck_assert_int_eq(after.stream, before.stream);
	ck_assert_uint_eq(after.model_len, before.model_len);
	ck_assert_mem_eq(after.model != NULL ? after.model : "",
	    before.model != NULL ? before.model : "", before.model_len);
	ck_assert_uint_eq(after.prompt_bytes, before.prompt_bytes);
	/* Done once, there is nothing left to do. */
	{
		char again[1024];
		size_t m;

		ck_assert_uint_lt(n, sizeof again);
		m = json_inject_usage(out, n, &after, continuous, again);
		ck_assert_msg(m == n && memcmp(again, out, n) == 0,
		    "%s: a second rewrite changed \"%.*s\"", name, (int)n, out);
	}
	return n;
}

START_TEST(test_inject)
{
	const struct inject_case *c = &inject_cases[_i];
	char out[1024];
	size_t n = inject_round_trip(c->name, c->body, c->continuous, out);

	ck_assert_msg(n == strlen(c->out) && memcmp(out, c->out, n) == 0,
	    "%s: got \"%.*s\"", c->name, (int)n, out);
}
END_TEST

/* Every valid request of the first table, with and without continuous. */
START_TEST(test_inject_valid_cases)
{
	const struct valid_case *c = &valid_cases[_i];
	char out[1024];

	ck_assert_uint_lt(strlen(c->body) + JSON_INJECT_EXTRA + 16, sizeof out);
	inject_round_trip(c->name, c->body, 0, out);
	inject_round_trip(c->name, c->body, 1, out);
}
END_TEST

/* ---- usage in events and bodies ------------------------------------------------ */

static const struct usage_case {
	const char *name;
	const char *data;
	int has_usage;
	int64_t prompt, completion, total;
	int usage_null;
	const char *cut;	/* data without the usage member; NULL: none */
	int has_choices, choices_empty, empty_id;
	int64_t generated, input_length;
	size_t content_bytes;
	const char *finish;
} usage_cases[] = {
	{ "vLLM usage chunk",
	  "{\"id\":\"chatcmpl-a1\",\"object\":\"chat.completion.chunk\","
	  "\"created\":1719969577,\"model\":\"Qwen-v\",\"choices\":[],"
	  "\"usage\":{\"prompt_tokens\":24,\"total_tokens\":27,"
	  "\"completion_tokens\":3}}",
	  1, 24, 3, 27, 0,
	  "{\"id\":\"chatcmpl-a1\",\"object\":\"chat.completion.chunk\","
	  "\"created\":1719969577,\"model\":\"Qwen-v\",\"choices\":[]}",
	  1, 1, 0, -1, -1, 0, "" },
	{ "OpenAI content chunk with a null",
	  "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
	  "\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,"
	  "\"finish_reason\":null}],\"usage\":null}",
	  0, -1, -1, -1, 1,
	  "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
	  "\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,"
	  "\"finish_reason\":null}]}",
	  1, 0, 0, -1, -1, 2, "" },
	{ "usage first: the comma after it goes",
	  "{\"usage\":null,\"id\":\"x\",\"choices\":[]}",
	  0, -1, -1, -1, 1, "{\"id\":\"x\",\"choices\":[]}",
	  1, 1, 0, -1, -1, 0, "" },
	{ "usage the only member",
	  "{\"usage\":{\"prompt_tokens\":1}}",
	  1, 1, -1, -1, 0, "{}", 0, 0, 0, -1, -1, 0, "" },
	{ "whitespace: the comma before and what is between",
	  "{ \"a\" : 1 ,\n \"usage\" : null , \"b\":2 }",
	  0, -1, -1, -1, 1, "{ \"a\" : 1  , \"b\":2 }",
	  0, 0, 0, -1, -1, 0, "" },
	{ "whitespace, first member",
	  "{ \"usage\":null , \"a\":1}",
	  0, -1, -1, -1, 1, "{  \"a\":1}", 0, 0, 0, -1, -1, 0, "" },
	{ "continuous usage on a content chunk",
	  "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	  "\"a\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":16,"
	  "\"total_tokens\":17,\"completion_tokens\":1}}",
	  1, 16, 1, 17, 0,
	  "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	  "\"a\"},\"finish_reason\":null}]}",
	  1, 0, 0, -1, -1, 1, "" },
	{ "TGI Messages chunk",
	  "{\"id\":\"\",\"choices\":[{\"delta\":{\"role\":\"assistant\","
	  "\"content\":\"Deep\"},\"finish_reason\":\"length\"}],\"usage\":null}",
	  0, -1, -1, -1, 1,
	  "{\"id\":\"\",\"choices\":[{\"delta\":{\"role\":\"assistant\","
	  "\"content\":\"Deep\"},\"finish_reason\":\"length\"}]}",
	  1, 0, 1, -1, -1, 4, "length" },
	{ "TGI generate_stream, last event",
	  "{\"index\":2,\"token\":{\"id\":349,\"text\":\" is\",\"logprob\":-0.2,"
	  "\"special\":false},\"generated_text\":\"This is\",\"details\":"
	  "{\"finish_reason\":\"length\",\"generated_tokens\":2,\"seed\":42,"
	  "\"input_length\":5}}",
	  0, -1, -1, -1, 0, NULL, 0, 0, 0, 2, 5, 3, "length" },
	{ "TGI generate_stream, details null",
	  "{\"index\":1,\"token\":{\"id\":1,\"text\":\"This\"},"
	  "\"generated_text\":null,\"details\":null}",
	  0, -1, -1, -1, 0, NULL, 0, 0, 0, -1, -1, 4, "" },
	{ "completions text",
	  "{\"choices\":[{\"index\":0,\"text\":\" hello\",\"logprobs\":null,"
	  "\"finish_reason\":null}]}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 6, "" },
	{ "a body: message content, usage",
	  "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
	  "\"Hello there\"},\"finish_reason\":\"stop\"}],\"usage\":"
	  "{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}",
	  1, 5, 2, 7, 0,
	  "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
	  "\"Hello there\"},\"finish_reason\":\"stop\"}]}",
	  1, 0, 0, -1, -1, 11, "stop" },
	{ "two choices: all text, the first one's finish",
	  "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ab\"},"
	  "\"finish_reason\":null},{\"index\":1,\"delta\":{\"content\":\"cde\"},"
	  "\"finish_reason\":\"stop\"}]}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 5, "" },
	{ "reasoning text counts",
	  "{\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}},"
	  "{\"delta\":{\"reasoning\":\"ok\",\"content\":\"!\"}}]}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 6, "" },
	{ "tool call: no content",
	  "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]},"
	  "\"finish_reason\":\"tool_calls\"}]}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 0, "tool_calls" },
	{ "nested usage and id do not count",
	  "{\"choices\":[{\"delta\":{\"usage\":{\"prompt_tokens\":1},"
	  "\"id\":\"\"}}],\"x\":{\"usage\":null,\"details\":"
	  "{\"generated_tokens\":3}}}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 0, "" },
	{ "usage neither an object nor null", "{\"usage\":5,\"a\":\"null\"}",
	  0, -1, -1, -1, 0, NULL, 0, 0, 0, -1, -1, 0, "" },
	{ "counts that are not counts",
	  "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":1.5,"
	  "\"total_tokens\":\"3\"}}",
	  1, -1, -1, -1, 0, "{}", 0, 0, 0, -1, -1, 0, "" },
	{ "a count too large",
	  "{\"usage\":{\"prompt_tokens\":1234567890123456789,"
	  "\"total_tokens\":123456789012345678}}",
	  1, -1, -1, 123456789012345678, 0, "{}", 0, 0, 0, -1, -1, 0, "" },
	{ "escaped member names",
	  "{\"us\\u0061ge\":{\"prompt_t\\u006fkens\":2}}",
	  1, 2, -1, -1, 0, "{}", 0, 0, 0, -1, -1, 0, "" },
	{ "repeated usage: the last counts and is cut",
	  "{\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":2}}",
	  1, 2, -1, -1, 0, "{\"usage\":{\"prompt_tokens\":1}}",
	  0, 0, 0, -1, -1, 0, "" },
	{ "a long finish reason is cut",
	  "{\"choices\":[{\"finish_reason\":\"abcdefghijklmnopqrstuvwxyz\"}]}",
	  0, -1, -1, -1, 0, NULL, 1, 0, 0, -1, -1, 0,
	  "abcdefghijklmnopqrstuvw" },
	{ "id null is not empty", "{\"id\":null,\"choices\":null}",
	  0, -1, -1, -1, 0, NULL, 0, 0, 0, -1, -1, 0, "" },
	{ "llama.cpp usage chunk with timings",
	  "{\"choices\":[],\"id\":\"chatcmpl-abvo\",\"usage\":"
	  "{\"completion_tokens\":22,\"prompt_tokens\":28,\"total_tokens\":50},"
	  "\"timings\":{\"prompt_n\":28,\"predicted_n\":22}}",
	  1, 28, 22, 50, 0,
	  "{\"choices\":[],\"id\":\"chatcmpl-abvo\",\"timings\":"
	  "{\"prompt_n\":28,\"predicted_n\":22}}",
	  1, 1, 0, -1, -1, 0, "" },
};

static int
inspect_usage(const char *buf, size_t len, struct json_usage *u)
{
	void *scratch = NULL;
	size_t scratch_bytes = 0;
	int r = json_inspect_usage(buf, len, u, &scratch, &scratch_bytes);

	free(scratch);
	return r;
}

START_TEST(test_usage)
{
	const struct usage_case *c = &usage_cases[_i];
	size_t len = strlen(c->data), cut_len;
	struct json_usage u, after;
	char cut[1024];

	memset(&u, 0x55, sizeof u);
	ck_assert_msg(inspect_usage(c->data, len, &u) == JSON_OK, "%s",
	    c->name);
#define EQ(f, w) ck_assert_msg(u.f == (w), "%s: " #f " %lld, want %lld", \
	    c->name, (long long)u.f, (long long)(w))
	EQ(has_usage, c->has_usage);
	EQ(prompt_tokens, c->prompt);
	EQ(completion_tokens, c->completion);
	EQ(total_tokens, c->total);
	EQ(usage_null, c->usage_null);
	EQ(has_choices, c->has_choices);
	EQ(choices_empty, c->choices_empty);
	EQ(empty_id, c->empty_id);
	EQ(generated_tokens, c->generated);
	EQ(input_length, c->input_length);
	EQ(content_bytes, c->content_bytes);
#undef EQ
	ck_assert_msg(strcmp(u.finish_reason, c->finish) == 0,
	    "%s: finish_reason \"%s\"", c->name, u.finish_reason);
	if (c->cut == NULL) {
		ck_assert(!u.has_usage && !u.usage_null);
		ck_assert_uint_eq(u.usage_member_at, 0);
		ck_assert_uint_eq(u.usage_member_len, 0);
		return;
	}
	/* Deleting the member leaves exactly the expected JSON... */
	ck_assert(u.usage_member_at + u.usage_member_len <= len);
	cut_len = len - u.usage_member_len;
	memcpy(cut, c->data, u.usage_member_at);
	memcpy(cut + u.usage_member_at, c->data + u.usage_member_at +
	    u.usage_member_len, cut_len - u.usage_member_at);
	ck_assert_msg(cut_len == strlen(c->cut) &&
	    memcmp(cut, c->cut, cut_len) == 0, "%s: cut to \"%.*s\"", c->name,
	    (int)cut_len, cut);
	/* ...which is valid, and has no usage member left (one repeated
	 * member aside). */
	ck_assert_int_eq(inspect_usage(cut, cut_len, &after), JSON_OK);
	ck_assert_int_eq(after.usage_null, 0);
	ck_assert_int_eq(after.content_bytes, u.content_bytes);
}
END_TEST

/* Every event cut short is invalid, and leaves nothing behind. */
START_TEST(test_usage_truncated)
{
	const struct usage_case *c = &usage_cases[_i];
	size_t len = strlen(c->data), cut;
	struct json_usage u;

	for (cut = 0; cut < len; cut++) {
		ck_assert_msg(inspect_usage(c->data, cut, &u) == JSON_INVALID,
		    "%s: accepted cut at %zu", c->name, cut);
		ck_assert(!u.has_usage && !u.usage_null && !u.has_choices &&
		    u.content_bytes == 0 && u.prompt_tokens == -1 &&
		    u.generated_tokens == -1 && u.finish_reason[0] == '\0');
	}
}
END_TEST

/* What jsmn alone would take, as event data: refused, so that a cut is
 * never made in bytes the proxy misread. */
START_TEST(test_usage_invalid)
{
	static const char *const bad[] = {
		"{\"usage\":}", "{\"usage\":null,}", "[{\"usage\":null}]",
		"{\"usage\":null}x", "{\"usage\":nul}", "{\"usage\"::null}",
		"{\"choices\":[,],\"usage\":null}", "", "[DONE]",
	};
	struct json_usage u;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(inspect_usage(bad[i], strlen(bad[i]), &u) ==
		    JSON_INVALID, "\"%s\" accepted", bad[i]);
}
END_TEST

/* ---- json_plain_chunk: the meter's quick look -------------------------------- */

static const struct plain_case {
	const char *name;
	const char *data;
	int plain;              /* json_plain_chunk's answer */
	size_t content_bytes;   /* when plain */
	const char *finish;     /* when plain; NULL: "" */
} plain_cases[] = {
	{ "vLLM content chunk",
	  "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
	  "\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
	  "\"delta\":{\"content\":\" tok1\"},\"logprobs\":null,"
	  "\"finish_reason\":null}]}", 1, 5, NULL },
	{ "role chunk, empty content",
	  "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	  "\"finish_reason\":null}]}", 1, 0, NULL },
	{ "escapes in text count as sent",
	  "{\"choices\":[{\"delta\":{\"content\":\"\\u6211\\\"x\\\\\"}}]}", 1, 11, NULL },
	{ "whitespace everywhere",
	  " {\n \"choices\" : [ { \"delta\" : { \"content\" : \"ab\" } } ] }\r\n",
	  1, 2, NULL },
	{ "completions text", "{\"choices\":[{\"text\":\" hello\"}]}", 1, 6, NULL },
	{ "two choices and reasoning",
	  "{\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}},"
	  "{\"delta\":{\"reasoning\":\"ok\",\"content\":\"!\"}}]}", 1, 6, NULL },
	{ "text elsewhere does not count",
	  "{\"content\":\"no\",\"x\":{\"choices\":[{\"text\":\"no\"}]},"
	  "\"choices\":[{\"delta\":{\"tool_calls\":[{\"content\":\"no\"}]}}]}",
	  1, 0, NULL },
	{ "text that is not a string",
	  "{\"choices\":[{\"text\":null,\"delta\":{\"content\":[\"x\"]}}]}", 1, 0, NULL },
	{ "choices not an array", "{\"choices\":{\"text\":\"x\"}}", 1, 0, NULL },
	{ "a finish reason", "{\"choices\":[{\"delta\":{\"content\":\"!\"},"
	  "\"finish_reason\":\"stop\",\"stop_reason\":null}]}", 1, 1, "stop" },
	{ "the first choice's finish reason only",
	  "{\"choices\":[{\"finish_reason\":null},{\"finish_reason\":\"length\"}],"
	  "\"finish_reason\":\"x\"}", 1, 0, NULL },
	{ "the first element is not a choice",
	  "{\"choices\":[1,{\"finish_reason\":\"length\"}]}", 1, 0, NULL },
	{ "a finish reason that is not a string",
	  "{\"choices\":[{\"finish_reason\":7}]}", 1, 0, NULL },
	{ "a long finish reason is cut",
	  "{\"choices\":[{\"finish_reason\":\"abcdefghijklmnopqrstuvwxyz\"}]}", 1, 0,
	  "abcdefghijklmnopqrstuvw" },
	{ "a repeated finish reason",
	  "{\"choices\":[{\"finish_reason\":\"a\",\"finish_reason\":\"b\"}]}",
	  0, 0, NULL },
	{ "usage null", "{\"choices\":[],\"usage\":null}", 0, 0, NULL },
	{ "usage anywhere", "{\"a\":{\"usage\":1}}", 0, 0, NULL },
	{ "TGI", "{\"token\":{\"text\":\"a\"}}", 0, 0, NULL },
	{ "details", "{\"details\":null}", 0, 0, NULL },
	{ "a body's message", "{\"choices\":[{\"message\":{\"content\":\"a\"}}]}",
	  0, 0, NULL },
	{ "empty id", "{\"id\":\"\",\"choices\":[]}", 0, 0, NULL },
	{ "escaped name", "{\"us\\u0061ge\":null}", 0, 0, NULL },
	{ "escaped name that is harmless", "{\"a\\n\":1}", 0, 0, NULL },
	{ "repeated content",
	  "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"bc\"}}]}",
	  0, 0, NULL },
	{ "repeated choices", "{\"choices\":[],\"choices\":[]}", 0, 0, NULL },
	{ "not an object", "[{\"choices\":[]}]", 0, 0, NULL },
	{ "bytes after it", "{\"a\":1} {}", 0, 0, NULL },
	{ "unclosed string", "{\"a\":\"x}", 0, 0, NULL },
	{ "mismatched brackets", "{\"a\":[1}}", 0, 0, NULL },
	{ "unclosed", "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]", 0, 0, NULL },
	{ "too deep for the quick look",
	  "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	  0, 0, NULL },
	{ "[DONE]", "[DONE]", 0, 0, NULL },
	{ "empty", "", 0, 0, NULL },
};

/* When json_plain_chunk() says plain, json_inspect_usage() must say the same
 * of valid data: text only, as much of it, nothing else. */
static void
assert_plain_agrees(const char *name, const char *data, size_t len)
{
	struct json_plain p;
	struct json_usage u;

	if (!json_plain_chunk(data, len, &p))
		return;
	if (inspect_usage(data, len, &u) != JSON_OK)
		return;         /* malformed: the quick look may count it */
	ck_assert_msg(!u.has_usage && !u.usage_null && !u.empty_id &&
	    u.generated_tokens == -1 && u.input_length == -1,
	    "%s: plain, but it is not", name);
	ck_assert_msg(u.content_bytes == p.content_bytes,
	    "%s: content %zu, full parse %zu", name, p.content_bytes,
	    u.content_bytes);
	ck_assert_msg(strcmp(u.finish_reason, p.finish_reason) == 0,
	    "%s: finish \"%s\", full parse \"%s\"", name, p.finish_reason,
	    u.finish_reason);
}

START_TEST(test_plain)
{
	const struct plain_case *c = &plain_cases[_i];
	size_t len = strlen(c->data);
	struct json_plain p;

	ck_assert_msg(json_plain_chunk(c->data, len, &p) == c->plain,
	    "%s: plain %d", c->name, !c->plain);
	if (c->plain) {
		ck_assert_msg(p.content_bytes == c->content_bytes,
		    "%s: content %zu", c->name, p.content_bytes);
		ck_assert_msg(strcmp(p.finish_reason, c->finish != NULL ?
		    c->finish : "") == 0, "%s: finish \"%s\"", c->name,
		    p.finish_reason);
	}
	assert_plain_agrees(c->name, c->data, len);
	/* Cut short anywhere: plain or not, never at odds with the parse. */
	for (size_t cut = 0; cut < len; cut++)
		assert_plain_agrees(c->name, c->data, cut);
}
END_TEST

/* Every usage case, and every prefix of one: the quick look agrees with the
 * full parse whenever it answers. */
START_TEST(test_plain_agrees_with_usage_cases)
{
	const struct usage_case *c = &usage_cases[_i];
	size_t len = strlen(c->data);

	for (size_t cut = 0; cut <= len; cut++)
		assert_plain_agrees(c->name, c->data, cut);
}
END_TEST

/* Every byte of every case replaced by each byte that matters to the shape
 * of JSON: wherever the mutant is still valid and the quick look answers,
 * it agrees with the full parse. */
START_TEST(test_plain_agrees_with_mutants)
{
	static const char subst[] = "\"{}[],:\\ n0a";
	const char *data = _i < (int)N(plain_cases) ? plain_cases[_i].data :
	    usage_cases[_i - (int)N(plain_cases)].data;
	size_t len = strlen(data);
	char m[1024];

	ck_assert_uint_lt(len, sizeof m);
	for (size_t at = 0; at < len; at++)
		for (size_t k = 0; k < sizeof subst - 1; k++) {
			memcpy(m, data, len);
			m[at] = subst[k];
			assert_plain_agrees(data, m, len);
		}
}
END_TEST

/* ---- json_usage_chunk: the usage chunk in one pass ---------------------------- */

/* When json_usage_chunk() answers, the full parse must accept the data and
 * report exactly the same, member span included. */
static void
assert_quick_agrees(const char *name, const char *data, size_t len)
{
	struct json_usage q, u;

	memset(&q, 0x55, sizeof q);
	if (!json_usage_chunk(data, len, &q))
		return;
	ck_assert_msg(inspect_usage(data, len, &u) == JSON_OK,
	    "%s: quick accepts \"%.*s\", the full parse does not", name,
	    (int)len, data);
#define SAME(f) ck_assert_msg(q.f == u.f, "%s: \"%.*s\": " #f " %lld, " \
	    "full parse %lld", name, (int)len, data, (long long)q.f, \
	    (long long)u.f)
	SAME(has_usage);
	SAME(prompt_tokens);
	SAME(completion_tokens);
	SAME(total_tokens);
	SAME(usage_null);
	SAME(usage_member_at);
	SAME(usage_member_len);
	SAME(has_choices);
	SAME(choices_empty);
	SAME(empty_id);
	SAME(generated_tokens);
	SAME(input_length);
	SAME(content_bytes);
#undef SAME
	ck_assert_msg(strcmp(q.finish_reason, u.finish_reason) == 0,
	    "%s: finish \"%s\", full parse \"%s\"", name, q.finish_reason,
	    u.finish_reason);
}

/* The shapes the quick look exists for answer; the rest is left to the
 * full parse.  Either way it agrees with it (and with every prefix). */
static const struct quick_case {
	const char *name;
	const char *data;
	int quick;
} quick_cases[] = {
	{ "vLLM usage chunk",
	  "{\"id\":\"chatcmpl-a1\",\"object\":\"chat.completion.chunk\","
	  "\"created\":1719969577,\"model\":\"Qwen-v\",\"choices\":[],"
	  "\"usage\":{\"prompt_tokens\":24,\"total_tokens\":27,"
	  "\"completion_tokens\":3}}", 1 },
	{ "OpenAI usage chunk with details",
	  "{\"id\":\"chatcmpl-B\",\"object\":\"chat.completion.chunk\","
	  "\"created\":1,\"model\":\"gpt-4o\",\"service_tier\":\"default\","
	  "\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":"
	  "{\"prompt_tokens\":24,\"completion_tokens\":58,\"total_tokens\":82,"
	  "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
	  "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}", 1 },
	{ "llama.cpp usage chunk with timings",
	  "{\"choices\":[],\"created\":1,\"id\":\"chatcmpl-abvo\",\"usage\":"
	  "{\"completion_tokens\":22,\"prompt_tokens\":28,\"total_tokens\":50},"
	  "\"timings\":{\"prompt_n\":28,\"prompt_ms\":1.5e1,\"predicted_n\":22,"
	  "\"predicted_per_second\":-0.25}}", 1 },
	{ "TGI usage chunk: id empty",
	  "{\"object\":\"chat.completion.chunk\",\"id\":\"\",\"created\":1,"
	  "\"model\":\"tgi\",\"system_fingerprint\":\"3.0-native\","
	  "\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
	  "\"completion_tokens\":2,\"total_tokens\":9}}", 1 },
	{ "whitespace everywhere, usage first",
	  " \t{ \"usage\" : { \"prompt_tokens\" : 1 , \"x\" : [ ] } ,\r\n"
	  "\"choices\" : [ ] } \n", 1 },
	{ "usage null, no choices", "{\"id\":\"x\",\"usage\":null}", 1 },
	{ "usage neither an object nor null", "{\"usage\":[1],\"a\":true}", 1 },
	{ "counts that are not counts",
	  "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":1.5,"
	  "\"total_tokens\":\"3\"}}", 1 },
	{ "a count too large",
	  "{\"usage\":{\"prompt_tokens\":1234567890123456789,"
	  "\"total_tokens\":123456789012345678}}", 1 },
	{ "a repeated count: the last", "{\"usage\":{\"prompt_tokens\":1,"
	  "\"prompt_tokens\":2}}", 1 },
	{ "empty", "{}", 1 },
	{ "choices with a choice", "{\"choices\":[{}],\"usage\":null}", 0 },
	{ "an escape", "{\"id\":\"a\\\"b\",\"choices\":[],\"usage\":null}", 0 },
	{ "an escaped name",
	  "{\"us\\u0061ge\":{\"prompt_tokens\":2}}", 0 },
	{ "repeated usage",
	  "{\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":2}}", 0 },
	{ "TGI details", "{\"details\":{\"generated_tokens\":2}}", 0 },
	{ "too deep for it", "{\"a\":[[[[1]]]],\"usage\":null}", 0 },
	{ "a trailing comma", "{\"usage\":null,}", 0 },
	{ "a missing comma", "{\"usage\":null \"a\":1}", 0 },
	{ "a bad number", "{\"usage\":{\"prompt_tokens\":01}}", 0 },
	{ "a bad literal", "{\"usage\":nul}", 0 },
	{ "a control byte", "{\"id\":\"a\tb\",\"usage\":null}", 0 },
	{ "two objects", "{\"usage\":null}{}", 0 },
	{ "an array", "[{\"usage\":null}]", 0 },
};

START_TEST(test_quick)
{
	const struct quick_case *c = &quick_cases[_i];
	size_t len = strlen(c->data);
	struct json_usage q;

	ck_assert_msg(json_usage_chunk(c->data, len, &q) == c->quick,
	    "%s: quick %d", c->name, !c->quick);
	for (size_t cut = 0; cut <= len; cut++)
		assert_quick_agrees(c->name, c->data, cut);
}
END_TEST

/* Every usage and plain case, and every prefix of one. */
START_TEST(test_quick_agrees_with_cases)
{
	const char *name = _i < (int)N(plain_cases) ? plain_cases[_i].name :
	    usage_cases[_i - (int)N(plain_cases)].name;
	const char *data = _i < (int)N(plain_cases) ? plain_cases[_i].data :
	    usage_cases[_i - (int)N(plain_cases)].data;
	size_t len = strlen(data);

	for (size_t cut = 0; cut <= len; cut++)
		assert_quick_agrees(name, data, cut);
}
END_TEST

/* Every byte of every case replaced by each byte that matters to JSON's
 * shape, numbers and literals, deleted, or with one of them inserted before
 * it: wherever the quick look answers, the full parse agrees. */
START_TEST(test_quick_agrees_with_mutants)
{
	static const char subst[] = "\"{}[],:\\ n0a-.e1\t\x01u";
	const char *data = _i < (int)N(quick_cases) ? quick_cases[_i].data :
	    usage_cases[_i - (int)N(quick_cases)].data;
	size_t len = strlen(data);
	char m[1024];

	ck_assert_uint_lt(len + 1, sizeof m);
	for (size_t at = 0; at < len; at++) {
		for (size_t k = 0; k < sizeof subst - 1; k++) {
			memcpy(m, data, len);
			m[at] = subst[k];
			assert_quick_agrees(data, m, len);
			memcpy(m, data, at);
			m[at] = subst[k];
			memcpy(m + at + 1, data + at, len - at);
			assert_quick_agrees(data, m, len + 1);
		}
		memcpy(m, data, at);
		memcpy(m + at, data + at + 1, len - at - 1);
		assert_quick_agrees(data, m, len - 1);
	}
}
END_TEST

/* ---- json_model_ids ----------------------------------------------------------- */

/* A 127-byte id (the longest that is kept) and a 128-byte one. */
#define ID16 "0123456789abcdef"
#define ID127 ID16 ID16 ID16 ID16 ID16 ID16 ID16 "0123456789abcde"
#define ID128 ID127 "x"
_Static_assert(sizeof(ID127) - 1 == CAP_MODEL_NAME - 1, "ID127");

static const struct models_case {
	const char *name;
	const char *body;
	int ret;		/* ids passed on, or a JSON_ code */
	const char *ids;	/* what fn got, each followed by '\n' */
} models_cases[] = {
	{ "vLLM",
	  "{\"object\":\"list\",\"data\":[{\"id\":\"Qwen/Qwen2.5-7B-Instruct\","
	  "\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"vllm\","
	  "\"root\":\"Qwen/Qwen2.5-7B-Instruct\",\"parent\":null,"
	  "\"max_model_len\":32768,\"permission\":[{\"id\":\"modelperm-1\","
	  "\"object\":\"model_permission\"}]}]}",
	  1, "Qwen/Qwen2.5-7B-Instruct\n" },
	{ "Ollama, several",
	  "{\"object\":\"list\",\"data\":[{\"id\":\"llama3.2:latest\",\"object\":"
	  "\"model\",\"created\":1730000000,\"owned_by\":\"library\"},{\"id\":"
	  "\"qwen2.5:7b\",\"object\":\"model\",\"created\":1730000001,"
	  "\"owned_by\":\"library\"}]}",
	  2, "llama3.2:latest\nqwen2.5:7b\n" },
	{ "llama.cpp, with its own models list",
	  "{\"models\":[{\"name\":\"m.gguf\",\"model\":\"m.gguf\"}],\"object\":"
	  "\"list\",\"data\":[{\"id\":\"m.gguf\",\"object\":\"model\","
	  "\"owned_by\":\"llamacpp\",\"meta\":{\"n_ctx_train\":4096}}]}",
	  1, "m.gguf\n" },
	{ "whitespace everywhere",
	  " \r\n{ \"data\" : [ { \"id\" : \"a\" } ,\n\t{ \"id\":\"b\" } ] }\n",
	  2, "a\nb\n" },
	{ "no object member needed", "{\"data\":[{\"id\":\"a\"}]}", 1, "a\n" },
	{ "empty list", "{\"object\":\"list\",\"data\":[]}", 0, "" },
	{ "ids with escapes, not decoded",
	  "{\"data\":[{\"id\":\"a\\\"b\"},{\"id\":\"c\\\\d\\/e\"},"
	  "{\"id\":\"\\u00e9t\\u00e9\"}]}",
	  3, "a\\\"b\nc\\\\d\\/e\n\\u00e9t\\u00e9\n" },
	{ "UTF-8 id", "{\"data\":[{\"id\":\"\xe6\xa8\xa1\xe5\x9e\x8b\"}]}",
	  1, "\xe6\xa8\xa1\xe5\x9e\x8b\n" },
	{ "missing ids skipped",
	  "{\"data\":[{\"object\":\"model\"},{\"id\":\"a\"},{}]}", 1, "a\n" },
	{ "ids not strings skipped",
	  "{\"data\":[{\"id\":7},{\"id\":null},{\"id\":[\"x\"]},{\"id\":"
	  "{\"id\":\"x\"}},{\"id\":\"b\"}]}", 1, "b\n" },
	{ "empty id skipped", "{\"data\":[{\"id\":\"\"},{\"id\":\"c\"}]}",
	  1, "c\n" },
	{ "elements not objects skipped",
	  "{\"data\":[\"a\",1,null,[{\"id\":\"x\"}],{\"id\":\"d\"}]}", 1,
	  "d\n" },
	{ "nested ids do not count",
	  "{\"data\":[{\"meta\":{\"id\":\"x\"},\"id\":\"e\"}],\"x\":{\"data\":"
	  "[{\"id\":\"y\"}]}}", 1, "e\n" },
	{ "repeated id member: the last counts",
	  "{\"data\":[{\"id\":\"x\",\"id\":\"f\"}]}", 1, "f\n" },
	{ "repeated data member: the last counts",
	  "{\"data\":[{\"id\":\"x\"}],\"data\":[{\"id\":\"g\"}]}", 1, "g\n" },
	{ "escaped member names",
	  "{\"d\\u0061ta\":[{\"\\u0069d\":\"h\"}]}", 1, "h\n" },
	{ "duplicates passed on as they come",
	  "{\"data\":[{\"id\":\"a\"},{\"id\":\"a\"}]}", 2, "a\na\n" },
	{ "longest id kept", "{\"data\":[{\"id\":\"" ID127 "\"}]}", 1,
	  ID127 "\n" },
	{ "too long id skipped",
	  "{\"data\":[{\"id\":\"" ID128 "\"},{\"id\":\"i\"}]}", 1, "i\n" },
	{ "not a list: data an object", "{\"data\":{\"id\":\"a\"}}",
	  JSON_INVALID, "" },
	{ "not a list: data a string", "{\"data\":\"a\"}", JSON_INVALID, "" },
	{ "not a list: data null", "{\"object\":\"list\",\"data\":null}",
	  JSON_INVALID, "" },
	{ "not a list: no data",
	  "{\"object\":\"model\",\"id\":\"a\",\"owned_by\":\"x\"}",
	  JSON_INVALID, "" },
	{ "not a list: an error body",
	  "{\"error\":{\"message\":\"Not Found\",\"type\":\"not_found\"}}",
	  JSON_INVALID, "" },
	{ "not a list: a bare array", "[{\"id\":\"a\"}]", JSON_INVALID, "" },
	{ "not JSON", "Not Found", JSON_INVALID, "" },
	{ "empty body", "", JSON_INVALID, "" },
	{ "trailing comma", "{\"data\":[{\"id\":\"a\"},]}", JSON_INVALID, "" },
	{ "two documents", "{\"data\":[]}{\"data\":[]}", JSON_INVALID, "" },
	{ "raw control byte in an id", "{\"data\":[{\"id\":\"a\nb\"}]}",
	  JSON_INVALID, "" },
};

struct collected {
	char ids[4096];
	size_t len;
};

static void
collect(void *arg, const char *id, size_t len)
{
	struct collected *c = arg;

	ck_assert_uint_lt(len, CAP_MODEL_NAME);
	ck_assert_uint_le(c->len + len + 1, sizeof c->ids);
	memcpy(c->ids + c->len, id, len);
	c->len += len;
	c->ids[c->len++] = '\n';
}

static int
model_ids(const char *body, size_t len, struct collected *c)
{
	void *scratch = NULL;
	size_t scratch_bytes = 0;
	int r;

	c->len = 0;
	r = json_model_ids(body, len, collect, c, &scratch, &scratch_bytes);
	free(scratch);
	return r;
}

START_TEST(test_model_ids)
{
	const struct models_case *c = &models_cases[_i];
	struct collected got;
	int r = model_ids(c->body, strlen(c->body), &got);

	ck_assert_msg(r == c->ret, "%s: returned %d, want %d", c->name, r,
	    c->ret);
	ck_assert_msg(got.len == strlen(c->ids) &&
	    memcmp(got.ids, c->ids, got.len) == 0, "%s: got \"%.*s\"", c->name,
	    (int)got.len, got.ids);
}
END_TEST

/* An answer cut short (a backend that died mid-body, a body larger than what
 * was read) is invalid, and gives no ids at all rather than some. */
START_TEST(test_model_ids_truncated)
{
	const struct models_case *c = &models_cases[_i];
	size_t len = strlen(c->body), cut;
	struct collected got;

	if (c->ret < 0)
		return;
	for (cut = 0; cut < len; cut++) {
		/* Whitespace after the root is not part of the document. */
		if (strspn(c->body + cut, " \r\n\t") == len - cut)
			break;
		ck_assert_msg(model_ids(c->body, cut, &got) == JSON_INVALID,
		    "%s: accepted cut at %zu", c->name, cut);
		ck_assert_uint_eq(got.len, 0);
	}
}
END_TEST

static void
collect_count(void *arg, const char *id, size_t len)
{
	struct collected *c = arg;

	(void)id;
	ck_assert_uint_gt(len, 0);
	c->len++;
}

/* A long list: the scratch grows as needed, and every id is passed on. */
START_TEST(test_model_ids_many)
{
	enum { IDS = 2000 };
	size_t cap = 32 + IDS * 32, len = 0, i;
	char *body = malloc(cap);
	void *scratch = NULL;
	size_t scratch_bytes = 0;
	struct collected got;
	int r;

	ck_assert_ptr_nonnull(body);
	len += (size_t)snprintf(body + len, cap - len, "{\"data\":[");
	for (i = 0; i < IDS; i++)
		len += (size_t)snprintf(body + len, cap - len,
		    "%s{\"id\":\"m%zu\"}", i > 0 ? "," : "", i);
	len += (size_t)snprintf(body + len, cap - len, "]}");
	ck_assert_uint_lt(len, cap);
	got.len = 0;
	r = json_model_ids(body, len, collect_count, &got, &scratch,
	    &scratch_bytes);
	ck_assert_int_eq(r, IDS);
	ck_assert_uint_eq(got.len, IDS);
	free(scratch);
	free(body);
}
END_TEST

/* ---- json_escape ---------------------------------------------------------------- */

static const struct escape_case {
	const char *name;
	const char *in;
	size_t n;
	size_t cap;
	const char *out;
} escape_cases[] = {
#define IN(s) s, sizeof(s) - 1
	{ "plain", IN("hello"), 16, "hello" },
	{ "empty", IN(""), 16, "" },
	{ "quote and backslash", IN("a\"b\\c"), 16, "a\\\"b\\\\c" },
	{ "short escapes", IN("\b\f\n\r\t"), 16, "\\b\\f\\n\\r\\t" },
	{ "other control bytes", IN("\x01\x1f"), 16, "\\u0001\\u001f" },
	{ "NUL", IN("\0"), 16, "\\u0000" },
	{ "DEL", IN("\x7f"), 16, "\\u007f" },
	{ "slash not escaped", IN("a/b"), 16, "a/b" },
	{ "UTF-8 copied", IN("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 32,
	  "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "malformed UTF-8 copied", IN("\xff\x80\xc3(\xe2\x82"), 16,
	  "\xff\x80\xc3(\xe2\x82" },
	{ "cap 0", IN("abc"), 0, "" },
	{ "cut plain text", IN("abcdef"), 3, "abc" },
	{ "cut before a 2-byte escape", IN("ab\""), 3, "ab" },
	{ "2-byte escape fits exactly", IN("ab\""), 4, "ab\\\"" },
	{ "cut before a \\u escape", IN("a\x01"), 6, "a" },
	{ "\\u escape fits exactly", IN("a\x01"), 7, "a\\u0001" },
	{ "no skipping ahead past a cut", IN("\"a"), 1, "" },
	{ "cut before a 2-byte character", IN("a\xc3\xa9"), 2, "a" },
	{ "cut before a 3-byte character", IN("a\xe2\x82\xac"), 3, "a" },
	{ "cut before a 4-byte character", IN("a\xf0\x9f\x98\x80"), 4, "a" },
	{ "4-byte character fits exactly", IN("a\xf0\x9f\x98\x80"), 5,
	  "a\xf0\x9f\x98\x80" },
	{ "ASCII after a lead byte is its own", IN("\xc3" "a"), 1, "\xc3" },
#undef IN
};

START_TEST(test_escape)
{
	const struct escape_case *c = &escape_cases[_i];
	char out[64];
	size_t r, want = strlen(c->out);

	ck_assert_uint_lt(c->cap + 8, sizeof out);
	memset(out, '#', sizeof out);
	r = json_escape(out, c->cap, c->in, c->n);
	ck_assert_msg(r == want && memcmp(out, c->out, want) == 0,
	    "%s: got \"%.*s\"", c->name, (int)r, out);
	for (r = c->cap; r < sizeof out; r++)
		ck_assert_msg(out[r] == '#', "%s: wrote past cap", c->name);
}
END_TEST

/*
 * Every cap from 0 past the full length: the result is the longest run of
 * whole output units (a byte, an escape, a UTF-8 character) that fits, and
 * nothing is written past the cap.
 */
START_TEST(test_escape_every_cap)
{
	static const char in[] = "a\"\xc3\xa9\x01" "b\xe2\x82\xac\n\\\x7f"
	    "\xf0\x9f\x98\x80z";
	static const char full[] = "a\\\"\xc3\xa9\\u0001b\xe2\x82\xac\\n\\\\"
	    "\\u007f\xf0\x9f\x98\x80z";
	static const size_t unit[] = { 1, 2, 2, 6, 1, 3, 2, 2, 6, 4, 1 };
	char out[sizeof full + 8];
	size_t cap, i, fits = 0, r;

	for (cap = 0; cap <= sizeof full + 1; cap++) {
		for (i = 0, fits = 0; i < sizeof unit / sizeof unit[0] &&
		    fits + unit[i] <= cap; i++)
			fits += unit[i];
		memset(out, '#', sizeof out);
		r = json_escape(out, cap, in, sizeof in - 1);
		ck_assert_msg(r == fits, "cap %zu: %zu bytes, want %zu", cap, r,
		    fits);
		ck_assert_mem_eq(out, full, r);
		for (i = cap; i < sizeof out; i++)
			ck_assert_msg(out[i] == '#', "cap %zu: wrote at %zu",
			    cap, i);
	}
	ck_assert_uint_eq(fits, sizeof full - 1);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("inspect");
	tcase_add_loop_test(tc, test_valid, 0, N(valid_cases));
	tcase_add_loop_test(tc, test_valid_truncated, 0, N(valid_cases));
	tcase_add_loop_test(tc, test_invalid, 0, N(invalid_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("rewrite");
	tcase_add_loop_test(tc, test_offsets, 0, N(offset_cases));
	tcase_add_loop_test(tc, test_valid_offsets, 0, N(valid_cases));
	tcase_add_loop_test(tc, test_prompt_bytes, 0, N(prompt_cases));
	tcase_add_loop_test(tc, test_inject, 0, N(inject_cases));
	tcase_add_loop_test(tc, test_inject_valid_cases, 0, N(valid_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("usage");
	tcase_add_loop_test(tc, test_usage, 0, N(usage_cases));
	tcase_add_loop_test(tc, test_usage_truncated, 0, N(usage_cases));
	tcase_add_test(tc, test_usage_invalid);
	tcase_add_loop_test(tc, test_plain, 0, N(plain_cases));
	tcase_add_loop_test(tc, test_plain_agrees_with_usage_cases, 0,
	    N(usage_cases));
	tcase_add_loop_test(tc, test_plain_agrees_with_mutants, 0,
	    N(plain_cases) + N(usage_cases));
	tcase_add_loop_test(tc, test_quick, 0, N(quick_cases));
	tcase_add_loop_test(tc, test_quick_agrees_with_cases, 0,
	    N(plain_cases) + N(usage_cases));
	tcase_add_loop_test(tc, test_quick_agrees_with_mutants, 0,
	    N(quick_cases) + N(usage_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	/* The token cap test parses a million tokens (slower under ASan). */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_scratch_growth_and_reuse);
	tcase_add_test(tc, test_token_cap);
	tcase_add_test(tc, test_depth_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("depth attack");
	tcase_set_timeout(tc, 4);
	tcase_add_test(tc, test_deep_body_refused_fast);
	suite_add_tcase(s, tc);

	tc = tcase_create("model ids");
	tcase_add_loop_test(tc, test_model_ids, 0, N(models_cases));
	tcase_add_loop_test(tc, test_model_ids_truncated, 0, N(models_cases));
	tcase_add_test(tc, test_model_ids_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape");
	tcase_add_loop_test(tc, test_escape, 0, N(escape_cases));
	tcase_add_test(tc, test_escape_every_cap);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
