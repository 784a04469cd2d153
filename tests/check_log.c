/*
 * check_log.c — the access line and messages (src/log.c): what an operator
 * and a log collector see.
 *
 * Every line is read back from the file it went to.  Text lines are compared
 * whole after their timestamp; every JSON line must be one valid JSON object
 * (a strict validator below, and json.c's own) and is compared whole too.
 * Hostile values (what a client controls: the request id, the path, the
 * model) must never break a line in two, break its quoting, or make the JSON
 * invalid; a line never exceeds CAP_LOG_LINE; threads writing at once never
 * interleave, not even while the file is being reopened.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "json.h"
#include "log.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- files -------------------------------------------------------------------- */

static char dir[64];

static void
make_dir(void)
{
	strcpy(dir, "/tmp/check_log.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* dir/name, in one of a few static buffers (a fifth call reuses the
 * first). */
static const char *
in_dir(const char *name)
{
	static char buf[4][256];
	static int next;
	char *b = buf[next++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
	return b;
}

/* The whole file, NUL-terminated (malloc'd), or NULL when there is none. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

/* The lines of a file: each ends in '\n' (replaced by NUL here). */
struct lines {
	char *text;
	char **line;
	size_t n;
};

static void
read_lines(const char *path, struct lines *l)
{
	size_t len, i, cap = 16;
	char *p;

	memset(l, 0, sizeof(*l));
	l->text = slurp(path, &len);
	ck_assert_msg(l->text != NULL, "no file %s", path);
	ck_assert_msg(len == 0 || l->text[len - 1] == '\n', "the last line has no newline");
	ck_assert_msg(strlen(l->text) == len, "a NUL byte in %s", path);
	l->line = malloc(cap * sizeof(*l->line));
	for (p = l->text, i = 0; i < len; ) {
		char *nl = strchr(p, '\n');

		if (l->n == cap) {
			cap *= 2;
			l->line = realloc(l->line, cap * sizeof(*l->line));
		}
		ck_assert_ptr_nonnull(l->line);
		l->line[l->n++] = p;
		*nl = '\0';
		ck_assert_msg(nl - p + 1 <= CAP_LOG_LINE, "a line of %zu bytes", (size_t)(nl - p + 1));
		i += (size_t)(nl - p) + 1;
		p = nl + 1;
	}
}

static void
free_lines(struct lines *l)
{
	free(l->text);
	free(l->line);
}

/* Sends fd 2 to a file (returns the old fd 2, to put back). */
static int
stderr_to(const char *path)
{
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	return saved;
}

static void
stderr_back(int saved)
{
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
}

/* ---- checking a line ------------------------------------------------------------ */

/* RFC 3339 UTC with milliseconds: 2026-11-26T02:18:46.123Z (24 bytes). */
static void
check_ts(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t i;

	for (i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd')
			ck_assert_msg(s[i] >= '0' && s[i] <= '9', "bad timestamp in: %s", s);
		else
			ck_assert_msg(s[i] == pat[i], "bad timestamp in: %s", s);
	}
}

/* A text line without its timestamp. */
static const char *
text_body(const char *line)
{
	check_ts(line);
	ck_assert_msg(line[24] == ' ', "no space after the timestamp: %s", line);
	return line + 25;
}

/* A strict JSON validator (RFC 8259, UTF-8 checked). */
struct jp {
	const unsigned char *s;
	size_t n, i;
	int depth;
};

static int jp_value(struct jp *p);

static void
jp_ws(struct jp *p)
{
	while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) != NULL && p->s[p->i] != '\0')
		p->i++;
}

/* Length of a valid UTF-8 character at s, 0 when invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 2;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 3;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	if (s[0] == 0xed)
		hi = 0x9f;
	if (s[0] == 0xf0)
		lo = 0x90;
	if (s[0] == 0xf4)
		hi = 0x8f;
	if (n <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k <= need; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

static int
jp_string(struct jp *p)
{
	if (p->i >= p->n || p->s[p->i] != '"')
		return -1;
	for (p->i++; p->i < p->n; ) {
		unsigned char c = p->s[p->i];
		size_t k;

		if (c == '"') {
			p->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (p->i + 1 >= p->n)
				return -1;
			c = p->s[p->i + 1];
			if (c == 'u') {
				for (k = 2; k < 6; k++)
					if (p->i + k >= p->n || strchr("0123456789abcdefABCDEF",
					    p->s[p->i + k]) == NULL || p->s[p->i + k] == '\0')
						return -1;
				p->i += 6;
			} else if (c != '\0' && strchr("\"\\/bfnrt", c) != NULL) {
				p->i += 2;
			} else {
				return -1;
			}
			continue;
		}
		if ((k = utf8_len(p->s + p->i, p->n - p->i)) == 0)
			return -1;
		p->i += k;
	}
	return -1;
}

static int
jp_digits(struct jp *p)
{
	size_t from = p->i;

	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > from ? 0 : -1;
}

static int
jp_number(struct jp *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0')
		p->i++;
	else if (jp_digits(p) < 0)
		return -1;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (jp_digits(p) < 0)
			return -1;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (jp_digits(p) < 0)
			return -1;
	}
	return 0;
}

static int
jp_word(struct jp *p, const char *w)
{
	size_t n = strlen(w);

	if (p->n - p->i < n || memcmp(p->s + p->i, w, n) != 0)
		return -1;
	p->i += n;
	return 0;
}

static int
jp_value(struct jp *p)
{
	int first = 1;

	jp_ws(p);
	if (p->i >= p->n || ++p->depth > 64)
		return -1;
	switch (p->s[p->i]) {
	case '{':
	case '[': {
		unsigned char close = p->s[p->i] == '{' ? '}' : ']';
		int obj = close == '}';

		p->i++;
		for (;;) {
			jp_ws(p);
			if (p->i < p->n && p->s[p->i] == close && first) {
				p->i++;
				break;
			}
			if (obj) {
				if (jp_string(p) < 0)
					return -1;
				jp_ws(p);
				if (p->i >= p->n || p->s[p->i++] != ':')
					return -1;
			}
			if (jp_value(p) < 0)
				return -1;
			jp_ws(p);
			first = 0;
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == close) {
				p->i++;
				break;
			}
			return -1;
		}
		break;
	}
	case '"':
		if (jp_string(p) < 0)
			return -1;
		break;
	case 't':
		if (jp_word(p, "true") < 0)
			return -1;
		break;
	case 'f':
		if (jp_word(p, "false") < 0)
			return -1;
		break;
	case 'n':
		if (jp_word(p, "null") < 0)
			return -1;
		break;
	default:
		if (jp_number(p) < 0)
			return -1;
	}
	p->depth--;
	return 0;
}

/* Asserts that line is exactly one JSON object, by both validators. */
static void
check_json(const char *line)
{
	struct jp p = { (const unsigned char *)line, strlen(line), 0, 0 };
	struct json_request jr;
	void *scratch = NULL;
	size_t scratch_bytes = 0;

	ck_assert_msg(line[0] == '{', "not an object: %s", line);
	ck_assert_msg(jp_value(&p) == 0 && p.i == p.n, "invalid JSON at byte %zu: %s", p.i, line);
	ck_assert_msg(json_inspect_request(line, strlen(line), &jr, &scratch, &scratch_bytes) == JSON_OK,
	    "json.c refuses: %s", line);
	free(scratch);
}

/* A JSON line: valid, with its "time"; returns what follows `"time":"...",`. */
static const char *
json_body(const char *line)
{
	check_json(line);
	ck_assert_msg(strncmp(line, "{\"time\":\"", 9) == 0, "no time first: %s", line);
	check_ts(line + 9);
	ck_assert_msg(strncmp(line + 33, "\",", 2) == 0, "bad time: %s", line);
	return line + 35;
}

/*
 * Asserts that a text line is well-formed logfmt: "access" or "LEVEL:", then
 * " key=value" pairs, a value bare (no space, '"', '=' or '\') or quoted with
 * \" \\ \xNN escapes only, bytes ' '..'~' only.  Returns the number of pairs.
 */
static int
check_logfmt(const char *body)
{
	const char *p = body;
	int pairs = 0;

	for (const char *c = body; *c != '\0'; c++)
		ck_assert_msg(*c >= ' ' && *c <= '~', "byte 0x%02x in: %s", (unsigned char)*c, body);
	ck_assert_msg(strncmp(p, "access", 6) == 0, "not an access line: %s", body);
	p += 6;
	while (*p != '\0') {
		ck_assert_msg(*p == ' ', "no space before a pair at '%s'", p);
		p++;
		while ((*p >= 'a' && *p <= 'z') || *p == '_')
			p++;
		ck_assert_msg(*p == '=', "no '=' at '%s'", p);
		p++;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				ck_assert_msg(*p != '\0', "an unterminated quote in: %s", body);
				if (*p != '\\')
					continue;
				p++;
				if (*p == 'x') {
					ck_assert(strchr("0123456789abcdef", p[1]) != NULL && p[1] != '\0');
					ck_assert(strchr("0123456789abcdef", p[2]) != NULL && p[2] != '\0');
					p += 2;
				} else {
					ck_assert_msg(*p == '"' || *p == '\\', "bad escape in: %s", body);
				}
			}
			p++;
		} else {
			const char *v = p;

			while (*p != '\0' && *p != ' ') {
				ck_assert_msg(*p != '"' && *p != '=' && *p != '\\', "a bare value with '%c': %s",
				    *p, body);
				p++;
			}
			ck_assert_msg(p > v, "an empty bare value in: %s", body);
		}
		pairs++;
	}
	return pairs;
}

/* ---- the access line, field by field ------------------------------------------------ */

struct access_case {
	const char *name;
	int normal;         /* e is what differs from normal_entry */
	struct access_entry e;
	const char *text;   /* after the timestamp */
	const char *json;   /* after "time" */
};

/* A request with every field set; each case changes some. */
#define NORMAL .request_id = "req-1", .client = "127.0.0.1", .method = "POST", .method_len = 4, \
    .target = "/v1/chat/completions", .target_len = 20, .status = 200, .backend = "gpu1", \
    .model = "llama3", .model_len = 6, .stream = 1, .bytes_out = 1234, .ttft_us = 12345, \
    .duration_us = 1500000, .prompt_tokens = 10, .completion_tokens = 20, .finish = "stop"
#define TEXT_NORMAL_HEAD "access id=req-1 client=127.0.0.1 method=POST path=/v1/chat/completions status=200 " \
    "backend=gpu1 "
#define TEXT_NORMAL_TAIL "stream=1 bytes=1234 ttft_ms=12.345 duration_ms=1500.000 prompt_tokens=10 " \
    "completion_tokens=20 finish=stop"
#define JSON_NORMAL_HEAD "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client\":\"127.0.0.1\"," \
    "\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"status\":200,\"backend\":\"gpu1\","
#define JSON_NORMAL_TAIL "\"stream\":true,\"bytes\":1234,\"ttft_ms\":12.345,\"duration_ms\":1500.000," \
    "\"prompt_tokens\":10,\"completion_tokens\":20,\"finish\":\"stop\",\"key\":null}"
static const struct access_entry normal_entry = { NORMAL };

/* normal_entry with what d sets (non-zero, non-NULL) instead. */
static struct access_entry
normal_but(const struct access_entry *d)
{
	struct access_entry e = normal_entry;

	if (d->request_id != NULL)
		e.request_id = d->request_id;
	if (d->client_request_id != NULL)
		e.client_request_id = d->client_request_id;
	if (d->target != NULL) {
		e.target = d->target;
		e.target_len = d->target_len;
	}
	if (d->model != NULL) {
		e.model = d->model;
		e.model_len = d->model_len;
	}
	if (d->key_name != NULL)
		e.key_name = d->key_name;
	if (d->bytes_out != 0)
		e.bytes_out = d->bytes_out;
	if (d->ttft_us != 0)
		e.ttft_us = d->ttft_us;
	if (d->duration_us != 0)
		e.duration_us = d->duration_us;
	if (d->prompt_tokens != 0)
		e.prompt_tokens = d->prompt_tokens;
	if (d->completion_tokens != 0)
		e.completion_tokens = d->completion_tokens;
	return e;
}

static struct access_entry
case_entry(const struct access_case *c)
{
	return c->normal ? normal_but(&c->e) : c->e;
}

/* The normal request with only its model changed. */
#define MODEL_CASE(name, m, t, j) { name, 1, { .model = m, .model_len = sizeof(m) - 1 }, \
    TEXT_NORMAL_HEAD "model=" t " " TEXT_NORMAL_TAIL, JSON_NORMAL_HEAD "\"model\":" j "," JSON_NORMAL_TAIL }

static const struct access_case access_cases[] = {
	{ "normal", 1, { 0 },
	  TEXT_NORMAL_HEAD "model=llama3 " TEXT_NORMAL_TAIL,
	  JSON_NORMAL_HEAD "\"model\":\"llama3\"," JSON_NORMAL_TAIL },
	{ "with a key name", 1, { .key_name = "team-a" },
	  TEXT_NORMAL_HEAD "model=llama3 " TEXT_NORMAL_TAIL " key=team-a",
	  JSON_NORMAL_HEAD "\"model\":\"llama3\",\"stream\":true,\"bytes\":1234,\"ttft_ms\":12.345,"
	  "\"duration_ms\":1500.000,\"prompt_tokens\":10,\"completion_tokens\":20,\"finish\":\"stop\","
	  "\"key\":\"team-a\"}" },
	/* ours, then the client's X-Request-Id (only when it sent one) */
	{ "with the client's id", 1, { .client_request_id = "trace-7:a.b" },
	  "access id=req-1 client_id=trace-7:a.b client=127.0.0.1 method=POST path=/v1/chat/completions "
	  "status=200 backend=gpu1 model=llama3 " TEXT_NORMAL_TAIL,
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client_id\":\"trace-7:a.b\","
	  "\"client\":\"127.0.0.1\",\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"status\":200,"
	  "\"backend\":\"gpu1\",\"model\":\"llama3\"," JSON_NORMAL_TAIL },
	{ "plain, usage metered as 0", 0, { .request_id = "0123456789abcdef", .client = "::1", .method = "GET",
	  .method_len = 3, .target = "/v1/models?x=1", .target_len = 14, .status = 404, .backend = "b.2_x",
	  .stream = 0, .bytes_out = 0, .ttft_us = 0, .duration_us = 999, .prompt_tokens = 0,
	  .completion_tokens = 0, .finish = "length" },
	  "access id=0123456789abcdef client=::1 method=GET path=\"/v1/models?x=1\" status=404 backend=b.2_x "
	  "model=- stream=0 bytes=0 ttft_ms=0.000 duration_ms=0.999 prompt_tokens=0 completion_tokens=0 "
	  "finish=length",
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"0123456789abcdef\",\"client\":\"::1\",\"method\":\"GET\","
	  "\"path\":\"/v1/models?x=1\",\"status\":404,\"backend\":\"b.2_x\",\"model\":null,\"stream\":false,"
	  "\"bytes\":0,\"ttft_ms\":0.000,\"duration_ms\":0.999,\"prompt_tokens\":0,\"completion_tokens\":0,"
	  "\"finish\":\"length\",\"key\":null}" },
	/* a refusal, as conn.c logs it: "-" for what it does not have */
	{ "refused", 0, { .request_id = "abc", .client = "10.0.0.1", .method = "-", .method_len = 1,
	  .target = "-", .target_len = 1, .status = 503, .backend = "-", .ttft_us = -1,
	  .prompt_tokens = -1, .completion_tokens = -1, .finish = "refused" },
	  "access id=abc client=10.0.0.1 method=- path=- status=503 backend=- model=- stream=0 bytes=0 "
	  "ttft_ms=- duration_ms=0.000 prompt_tokens=- completion_tokens=- finish=refused",
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"abc\",\"client\":\"10.0.0.1\",\"method\":null,"
	  "\"path\":null,\"status\":503,\"backend\":null,\"model\":null,\"stream\":false,\"bytes\":0,"
	  "\"ttft_ms\":null,\"duration_ms\":0.000,\"prompt_tokens\":null,\"completion_tokens\":null,"
	  "\"finish\":\"refused\",\"key\":null}" },
	/* NULL anywhere is absent too; nothing was sent: status 0 */
	{ "all absent", 0, { .ttft_us = -1, .prompt_tokens = -1, .completion_tokens = -1 },
	  "access id=- client=- method=- path=- status=0 backend=- model=- stream=0 bytes=0 ttft_ms=- "
	  "duration_ms=0.000 prompt_tokens=- completion_tokens=- finish=-",
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":null,\"client\":null,\"method\":null,\"path\":null,"
	  "\"status\":0,\"backend\":null,\"model\":null,\"stream\":false,\"bytes\":0,\"ttft_ms\":null,"
	  "\"duration_ms\":0.000,\"prompt_tokens\":null,\"completion_tokens\":null,\"finish\":null,\"key\":null}" },
	{ "big numbers", 1, { .bytes_out = 18446744073709551615ull, .ttft_us = 1, .duration_us = 86400000000,
	  .prompt_tokens = 9223372036854775807, .completion_tokens = 1 },
	  TEXT_NORMAL_HEAD "model=llama3 stream=1 bytes=9223372036854775807 ttft_ms=0.001 duration_ms=86400000.000 "
	  "prompt_tokens=9223372036854775807 completion_tokens=1 finish=stop",
	  JSON_NORMAL_HEAD "\"model\":\"llama3\",\"stream\":true,\"bytes\":9223372036854775807,\"ttft_ms\":0.001,"
	  "\"duration_ms\":86400000.000,\"prompt_tokens\":9223372036854775807,\"completion_tokens\":1,"
	  "\"finish\":\"stop\",\"key\":null}" },

	/* hostile: a client's X-Request-Id, an odd path */
	{ "hostile id", 1, { .request_id = "a b\"c\\d=e\nf\r\tg\x7f\xff" },
	  "access id=\"a b\\\"c\\\\d=e\\x0af\\x0d\\x09g\\x7f\\xff\" client=127.0.0.1 method=POST "
	  "path=/v1/chat/completions status=200 backend=gpu1 model=llama3 " TEXT_NORMAL_TAIL,
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"a b\\\"c\\\\d=e\\nf\\r\\tg\\u007f\\ufffd\","
	  "\"client\":\"127.0.0.1\",\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"status\":200,"
	  "\"backend\":\"gpu1\",\"model\":\"llama3\"," JSON_NORMAL_TAIL },
	{ "path with a backslash, quotes, '='", 1, { .target = "/v1/a\\b?q=\"x y\"", .target_len = 15 },
	  "access id=req-1 client=127.0.0.1 method=POST path=\"/v1/a\\\\b?q=\\\"x y\\\"\" status=200 "
	  "backend=gpu1 model=llama3 " TEXT_NORMAL_TAIL,
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client\":\"127.0.0.1\",\"method\":\"POST\","
	  "\"path\":\"/v1/a\\\\b?q=\\\"x y\\\"\",\"status\":200,\"backend\":\"gpu1\",\"model\":\"llama3\","
	  JSON_NORMAL_TAIL },
	/* only its first target_len bytes are the path */
	{ "path length", 1, { .target = "/v1/x HTTP/1.1\r\n", .target_len = 5 },
	  "access id=req-1 client=127.0.0.1 method=POST path=/v1/x status=200 backend=gpu1 model=llama3 "
	  TEXT_NORMAL_TAIL,
	  "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client\":\"127.0.0.1\",\"method\":\"POST\","
	  "\"path\":\"/v1/x\",\"status\":200,\"backend\":\"gpu1\",\"model\":\"llama3\"," JSON_NORMAL_TAIL },
	{ "UTF-8 in a key name", 1, { .key_name = "\xc3\xa9quipe" },
	  TEXT_NORMAL_HEAD "model=llama3 " TEXT_NORMAL_TAIL " key=\"\\xc3\\xa9quipe\"",
	  JSON_NORMAL_HEAD "\"model\":\"llama3\",\"stream\":true,\"bytes\":1234,\"ttft_ms\":12.345,"
	  "\"duration_ms\":1500.000,\"prompt_tokens\":10,\"completion_tokens\":20,\"finish\":\"stop\","
	  "\"key\":\"\xc3\xa9quipe\"}" },

	/* the model: JSON string contents as sent; the text line shows the
	 * value (escapes decoded), the JSON line the contents */
	MODEL_CASE("model with escapes", "gpt\\\"4\\\\x\\/y", "\"gpt\\\"4\\\\x/y\"", "\"gpt\\\"4\\\\x\\/y\""),
	MODEL_CASE("model \\u00e9", "caf\\u00e9", "\"caf\\xc3\\xa9\"", "\"caf\\u00e9\""),
	MODEL_CASE("model surrogate pair", "a\\ud83d\\ude00", "\"a\\xf0\\x9f\\x98\\x80\"", "\"a\\ud83d\\ude00\""),
	MODEL_CASE("model lone surrogate", "\\ud800x", "\"\\xef\\xbf\\xbdx\"", "\"\\ud800x\""),
	MODEL_CASE("model \\n \\t \\u0000", "a\\nb\\tc\\u0000", "\"a\\x0ab\\x09c\\x00\"", "\"a\\nb\\tc\\u0000\""),
	MODEL_CASE("model UTF-8", "\xe6\xa8\xa1\xe5\x9e\x8b", "\"\\xe6\\xa8\\xa1\\xe5\\x9e\\x8b\"",
	    "\"\xe6\xa8\xa1\xe5\x9e\x8b\""),
	MODEL_CASE("model '-'", "-", "\"-\"", "\"-\""),
	MODEL_CASE("model empty", "", "\"\"", "\"\""),
	MODEL_CASE("model with '=' and a space", "a=b c", "\"a=b c\"", "\"a=b c\""),
	MODEL_CASE("model with a slash and a colon", "meta-llama/Llama-3.1-8B:q4", "meta-llama/Llama-3.1-8B:q4",
	    "\"meta-llama/Llama-3.1-8B:q4\""),
	/* not valid contents: escaped as the bytes they are */
	MODEL_CASE("model with a raw newline and a bare quote", "m\n\"x", "\"m\\x0a\\\"x\"", "\"m\\n\\\"x\""),
	MODEL_CASE("model with a bad escape", "a\\qb", "\"a\\\\qb\"", "\"a\\\\qb\""),
	MODEL_CASE("model with a short \\u", "a\\u12", "\"a\\\\u12\"", "\"a\\\\u12\""),
	MODEL_CASE("model ending in a backslash", "a\\", "\"a\\\\\"", "\"a\\\\\""),
	MODEL_CASE("model with bad UTF-8", "a\xff\xc3(b\xed\xa0\x80", "\"a\\xff\\xc3(b\\xed\\xa0\\x80\"",
	    "\"a\\ufffd\\ufffd(b\\ufffd\\ufffd\\ufffd\""),
	MODEL_CASE("model with DEL", "a\x7f", "\"a\\x7f\"", "\"a\\u007f\""),
};

/* A fresh file for lines, set up in the format given. */
static const char *
fresh(const char *name, int json)
{
	const char *path = in_dir(name);

	unlink(path);
	ck_assert_int_eq(log_access_setup(path, json), 0);
	return path;
}

START_TEST(test_access_text)
{
	const struct access_case *c = &access_cases[_i];
	struct access_entry e = case_entry(c);
	struct lines l;
	const char *path;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	path = fresh("access.log", 0);
	log_access(&e);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_msg(strcmp(text_body(l.line[0]), c->text) == 0, "%s:\n  got  %s\n  want %s", c->name,
	    text_body(l.line[0]), c->text);
	check_logfmt(text_body(l.line[0]));
	free_lines(&l);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_access_json)
{
	const struct access_case *c = &access_cases[_i];
	struct access_entry e = case_entry(c);
	struct lines l;
	const char *path;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	path = fresh("access.log", 1);
	log_access(&e);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_msg(strcmp(json_body(l.line[0]), c->json) == 0, "%s:\n  got  %s\n  want %s", c->name,
	    json_body(l.line[0]), c->json);
	free_lines(&l);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- long values ------------------------------------------------------------------ */

/* n copies of s, NUL-terminated (malloc'd). */
static char *
repeat(const char *s, size_t n)
{
	size_t len = strlen(s), i;
	char *out = malloc(len * n + 1);

	ck_assert_ptr_nonnull(out);
	for (i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[len * n] = '\0';
	return out;
}

/*
 * A 30 KB path is cut (at 1024 bytes, with "..."), and every field after it
 * is still there: an attacker's path does not hide the status.  The same for
 * a long model, alone or with the path.
 */
START_TEST(test_long_path_keeps_fields)
{
	char *path = repeat("a", 30000), *model = repeat("m", 5000), *want = malloc(8192);
	struct access_entry e = normal_entry;
	struct lines l;
	const char *file;
	int json;

	ck_assert_ptr_nonnull(want);
	e.target = path;
	e.target_len = 30000;
	e.key_name = "k";
	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	for (json = 0; json <= 1; json++) {
		file = fresh("long.log", json);
		e.model = "llama3";
		e.model_len = 6;
		log_access(&e);
		e.model = model;
		e.model_len = 5000;
		log_access(&e);
		read_lines(file, &l);
		ck_assert_uint_eq(l.n, 2);
		if (!json) {
			snprintf(want, 8192, "access id=req-1 client=127.0.0.1 method=POST path=%.1024s... "
			    "status=200 backend=gpu1 model=llama3 " TEXT_NORMAL_TAIL " key=k", path);
			ck_assert_str_eq(text_body(l.line[0]), want);
			snprintf(want, 8192, "access id=req-1 client=127.0.0.1 method=POST path=%.1024s... "
			    "status=200 backend=gpu1 model=%.512s... " TEXT_NORMAL_TAIL " key=k", path, model);
			ck_assert_str_eq(text_body(l.line[1]), want);
		} else {
			snprintf(want, 8192, "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client\":"
			    "\"127.0.0.1\",\"method\":\"POST\",\"path\":\"%.1024s...\",\"status\":200,\"backend\":"
			    "\"gpu1\",\"model\":\"llama3\",\"stream\":true,\"bytes\":1234,\"ttft_ms\":12.345,"
			    "\"duration_ms\":1500.000,\"prompt_tokens\":10,\"completion_tokens\":20,\"finish\":"
			    "\"stop\",\"key\":\"k\"}", path);
			ck_assert_str_eq(json_body(l.line[0]), want);
			snprintf(want, 8192, "\"level\":\"info\",\"msg\":\"access\",\"id\":\"req-1\",\"client\":"
			    "\"127.0.0.1\",\"method\":\"POST\",\"path\":\"%.1024s...\",\"status\":200,\"backend\":"
			    "\"gpu1\",\"model\":\"%.512s...\",\"stream\":true,\"bytes\":1234,\"ttft_ms\":12.345,"
			    "\"duration_ms\":1500.000,\"prompt_tokens\":10,\"completion_tokens\":20,\"finish\":"
			    "\"stop\",\"key\":\"k\"}", path, model);
			ck_assert_str_eq(json_body(l.line[1]), want);
		}
		free_lines(&l);
		unlink(file);
	}

	/* The longest id and key name, an IPv6 client, the path and a model
	 * of quotes (each one escaped): every field still fits. */
	{
		char id[65], key[64];
		char *quotes = repeat("\"", 5000);

		memset(id, 'i', 64);
		id[64] = '\0';
		memset(key, 'k', 63);
		key[63] = '\0';
		e.request_id = id;
		e.key_name = key;
		e.client = "[2001:db8:1234:5678:9abc:def0:1234:5678]:65535";
		e.model = quotes;
		e.model_len = 5000;
		for (json = 0; json <= 1; json++) {
			file = fresh("long.log", json);
			log_access(&e);
			read_lines(file, &l);
			ck_assert_uint_eq(l.n, 1);
			snprintf(want, 8192, json ? ",\"finish\":\"stop\",\"key\":\"%s\"}" : " finish=stop key=%s", key);
			if (json)
				json_body(l.line[0]);
			else
				ck_assert_int_eq(check_logfmt(text_body(l.line[0])), 15);
			ck_assert_str_eq(l.line[0] + strlen(l.line[0]) - strlen(want), want);
			free_lines(&l);
			unlink(file);
		}
		free(quotes);
	}
	rmdir(dir);
	free(path);
	free(model);
	free(want);
}
END_TEST

/* The key set of a JSON access line, in order, as "id,client,..." */
static void
json_keys(const char *line, char *out, size_t cap)
{
	static const char *const names[] = { "time", "level", "msg", "id", "client", "method", "path",
	    "status", "backend", "model", "stream", "bytes", "ttft_ms", "duration_ms", "prompt_tokens",
	    "completion_tokens", "finish", "key" };
	const char *at = line;
	int i;

	out[0] = '\0';
	for (i = 0; i < N(names); i++) {
		char pat[32];
		const char *p;

		snprintf(pat, sizeof(pat), "%s\"%s\":", i == 0 ? "{" : ",", names[i]);
		if ((p = strstr(at, pat)) == NULL)
			break;
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", names[i]);
		at = p + strlen(pat);
	}
}

/*
 * Every string at its longest, and each byte one that needs escaping: more
 * than a line holds.  Fields are left out from the end, whole; what is left
 * is valid (JSON, logfmt) and within CAP_LOG_LINE.
 */
START_TEST(test_line_bound)
{
	static const char *const fills[] = { "\"", "\\", "\n", "\x01", "\xff", "a", "\xe6\xa8\xa1",
	    "\\\"" /* valid model contents: copied */ };
	struct lines l;
	const char *file;
	char keys[512];
	int f, json;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	for (f = 0; f < N(fills); f++) {
		char *s = repeat(fills[f], 4000);
		size_t n = strlen(s);
		struct access_entry e = { .request_id = s, .client = s, .method = s, .method_len = n,
		    .target = s, .target_len = n, .status = 200, .backend = s, .model = s, .model_len = n,
		    .stream = 1, .bytes_out = 1, .ttft_us = 1, .duration_us = 1, .prompt_tokens = 1,
		    .completion_tokens = 1, .finish = s, .key_name = s };

		for (json = 0; json <= 1; json++) {
			file = fresh("bound.log", json);
			log_access(&e);
			read_lines(file, &l);   /* asserts the bound */
			ck_assert_uint_eq(l.n, 1);
			if (json) {
				json_body(l.line[0]);
				json_keys(l.line[0], keys, sizeof(keys));
				/* the first fields are there; the last were left out */
				ck_assert_msg(strncmp(keys, "time,level,msg,id,client,method,path,status,", 44) == 0,
				    "fill %d: keys %s", f, keys);
				ck_assert_msg(strstr(keys, ",key") == NULL, "fill %d: keys %s", f, keys);
				ck_assert_msg(l.line[0][strlen(l.line[0]) - 1] == '}', "fill %d", f);
			} else {
				int pairs = check_logfmt(text_body(l.line[0]));
				ck_assert_msg(pairs >= 5 && pairs < 15, "fill %d: %d pairs", f, pairs);
				ck_assert_msg(strstr(l.line[0], " key=") == NULL, "fill %d", f);
			}
			ck_assert_uint_le(strlen(l.line[0]) + 1, CAP_LOG_LINE);
			ck_assert_uint_ge(strlen(l.line[0]) + 1, CAP_LOG_LINE - 600);
			free_lines(&l);
			unlink(file);
		}
		free(s);
	}
	rmdir(dir);
}
END_TEST

/* A value cut at its bound is cut between escapes and characters, never in
 * one: every prefix length of hostile text gives a valid line. */
START_TEST(test_cut_cleanly)
{
	char *s = repeat("\"\xe6\xa8\xa1\\\x01", 400);
	struct lines l;
	const char *file;
	size_t k;
	int json;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	for (json = 0; json <= 1; json++) {
		file = fresh("cut.log", json);
		for (k = 1000; k < 1040; k++) {
			struct access_entry e = normal_entry;

			e.target = s;
			e.target_len = k;
			e.model = s;
			e.model_len = k % 600;
			log_access(&e);
		}
		read_lines(file, &l);
		ck_assert_uint_eq(l.n, 40);
		for (k = 0; k < l.n; k++) {
			if (json)
				ck_assert_ptr_nonnull(strstr(json_body(l.line[k]), ",\"finish\":\"stop\",\"key\":null}"));
			else
				ck_assert_int_eq(check_logfmt(text_body(l.line[k])), 14);
		}
		free_lines(&l);
		unlink(file);
	}
	rmdir(dir);
	free(s);
}
END_TEST

/* ---- where lines go ------------------------------------------------------------------ */

START_TEST(test_setup_file)
{
	char file[256], moved[256];
	struct access_entry e = normal_entry;
	struct lines l;
	struct stat st;
	int fd;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	umask(022);
	snprintf(file, sizeof(file), "%s", in_dir("a.log"));
	snprintf(moved, sizeof(moved), "%s", in_dir("a.log.1"));

	/* Made with mode 0640; appended to, never truncated. */
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "old line\n", 9), 9);
	close(fd);
	ck_assert_int_eq(log_access_setup(file, 0), 0);
	log_access(&e);
	read_lines(file, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.line[0], "old line");
	ck_assert_str_eq(text_body(l.line[1]), TEXT_NORMAL_HEAD "model=llama3 " TEXT_NORMAL_TAIL);
	free_lines(&l);
	unlink(file);
	ck_assert_int_eq(log_access_setup(file, 0), 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);

	/* logrotate moves the file; a reopen makes a new one: the moved file
	 * keeps its lines, the new one gets the next. */
	log_access(&e);
	ck_assert_int_eq(rename(file, moved), 0);
	log_access(&e);                        /* still the old file */
	ck_assert_int_eq(log_access_setup(file, 1), 0);
	log_access(&e);
	read_lines(moved, &l);
	ck_assert_uint_eq(l.n, 2);
	text_body(l.line[0]);
	text_body(l.line[1]);
	free_lines(&l);
	read_lines(file, &l);
	ck_assert_uint_eq(l.n, 1);
	json_body(l.line[0]);
	free_lines(&l);

	/* A file that cannot be opened: -1, errno, and lines go on where they
	 * went, in the format they had. */
	errno = 0;
	ck_assert_int_eq(log_access_setup(in_dir("no/such/dir.log"), 0), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(log_access_setup(dir, 0), -1);   /* a directory */
	ck_assert_int_eq(errno, EISDIR);
	log_access(&e);
	read_lines(file, &l);
	ck_assert_uint_eq(l.n, 2);
	json_body(l.line[1]);
	free_lines(&l);

	/* A FIFO no one reads: an error at once, not a hang. */
	ck_assert_int_eq(mkfifo(in_dir("fifo"), 0600), 0);
	ck_assert_int_eq(log_access_setup(in_dir("fifo"), 0), -1);
	ck_assert_int_eq(errno, ENXIO);
	unlink(in_dir("fifo"));

	unlink(file);
	unlink(moved);
	rmdir(dir);
}
END_TEST

/* Back to stderr (NULL or ""), after a file and without one. */
START_TEST(test_setup_stderr)
{
	struct access_entry e = normal_entry;
	const char *err = NULL, *file;
	struct lines l;
	int saved, round;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	for (round = 0; round < 2; round++) {
		err = in_dir("stderr");
		saved = stderr_to(err);
		ck_assert_int_eq(log_access_setup(round ? "" : NULL, round), 0);
		log_access(&e);
		stderr_back(saved);
		read_lines(err, &l);
		ck_assert_uint_eq(l.n, 1);
		if (round)
			json_body(l.line[0]);
		else
			ck_assert_str_eq(text_body(l.line[0]), TEXT_NORMAL_HEAD "model=llama3 " TEXT_NORMAL_TAIL);
		free_lines(&l);

		file = fresh("f.log", 0);   /* then a file: nothing on stderr */
		saved = stderr_to(err);
		log_access(&e);
		stderr_back(saved);
		read_lines(err, &l);
		ck_assert_uint_eq(l.n, 0);
		free_lines(&l);
		unlink(file);
	}
	unlink(err);
	rmdir(dir);
}
END_TEST

/* Access lines on stderr are info lines; in a file of their own, every one
 * is written whatever the level. */
START_TEST(test_level)
{
	struct access_entry e = normal_entry;
	const char *err, *file;
	struct lines l;
	int saved;

	make_dir();
	err = in_dir("stderr");
	saved = stderr_to(err);
	ck_assert_int_eq(log_access_setup(NULL, 0), 0);
	log_set_level(LOG_LEVEL_WARN);
	log_access(&e);
	log_info("not shown");
	log_warnx("shown");
	log_set_level(LOG_LEVEL_ERROR);
	log_warnx("not shown");
	file = fresh("f.log", 0);
	log_access(&e);
	stderr_back(saved);
	log_set_level(LOG_LEVEL_INFO);
	read_lines(err, &l);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(text_body(l.line[0]), "warn: shown");
	free_lines(&l);
	read_lines(file, &l);
	ck_assert_uint_eq(l.n, 1);
	free_lines(&l);
	unlink(err);
	unlink(file);
	rmdir(dir);
}
END_TEST

/* ---- messages ---------------------------------------------------------------------- */

START_TEST(test_messages)
{
	const char *err;
	struct lines l;
	int saved;
	char *big = repeat("\"", 3000);

	make_dir();
	err = in_dir("stderr");
	log_set_level(LOG_LEVEL_DEBUG);
	saved = stderr_to(err);
	ck_assert_int_eq(log_access_setup(NULL, 0), 0);
	log_info("hello %s", "world");
	errno = ENOENT;
	log_warn("open %s", "x");
	ck_assert_int_eq(errno, ENOENT);       /* kept */
	log_error("bad");
	log_debug("dbg");
	ck_assert_int_eq(log_access_setup(NULL, 1), 0);
	log_info("hello \"%s\"\n\\", "world");
	errno = ENOENT;
	log_warn("open %s", "x");
	log_warnx("a\xff" "b");
	log_info("%s", big);
	stderr_back(saved);
	log_set_level(LOG_LEVEL_INFO);

	read_lines(err, &l);
	ck_assert_uint_eq(l.n, 8);
	ck_assert_str_eq(text_body(l.line[0]), "info: hello world");
	ck_assert_str_eq(text_body(l.line[1]), "warn: open x: No such file or directory");
	ck_assert_str_eq(text_body(l.line[2]), "error: bad");
	ck_assert_str_eq(text_body(l.line[3]), "debug: dbg");
	ck_assert_str_eq(json_body(l.line[4]), "\"level\":\"info\",\"msg\":\"hello \\\"world\\\"\\n\\\\\"}");
	ck_assert_str_eq(json_body(l.line[5]), "\"level\":\"warn\",\"msg\":\"open x: No such file or directory\"}");
	ck_assert_str_eq(json_body(l.line[6]), "\"level\":\"warn\",\"msg\":\"a\\ufffdb\"}");
	/* a message too long for a line is cut inside its string */
	ck_assert_str_eq(json_body(l.line[7]) + strlen(json_body(l.line[7])) - 7, "\\\"...\"}");
	ck_assert_uint_ge(strlen(l.line[7]) + 1, CAP_LOG_LINE - 20);
	free_lines(&l);
	unlink(err);
	rmdir(dir);
	free(big);
}
END_TEST

/* ---- threads -------------------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 1500

static const char hostile_path[] = "/v1/x?q=\"a b\"&k=\\\\v\n";

struct writer {
	pthread_t t;
	int n;
};

static void *
writer(void *arg)
{
	struct writer *w = arg;
	char id[32];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof(id), "t%d-%d", w->n, i);
		struct access_entry e = normal_entry;

		e.request_id = id;
		e.target = hostile_path;
		e.target_len = sizeof(hostile_path) - 1;
		e.model = "m\\\"x";
		e.model_len = 4;
		log_access(&e);
	}
	return NULL;
}

/* Checks every line of every file: exactly the line expected for its id,
 * each id once. */
static void
check_thread_lines(const char *const *files, int nfiles, int json)
{
	static unsigned char seen[THREADS][PER_THREAD];
	char want[1024];
	size_t total = 0, i;
	int f, t, k;

	memset(seen, 0, sizeof(seen));
	for (f = 0; f < nfiles; f++) {
		struct lines l;

		read_lines(files[f], &l);
		for (i = 0; i < l.n; i++) {
			const char *body = json ? json_body(l.line[i]) : text_body(l.line[i]);

			ck_assert_msg(sscanf(body, json ? "\"level\":\"info\",\"msg\":\"access\",\"id\":\"t%d-%d\""
			    : "access id=t%d-%d ", &t, &k) == 2, "no id in: %s", l.line[i]);
			ck_assert(t >= 0 && t < THREADS && k >= 0 && k < PER_THREAD);
			ck_assert_msg(!seen[t][k], "t%d-%d twice", t, k);
			seen[t][k] = 1;
			if (json)
				snprintf(want, sizeof(want), "\"level\":\"info\",\"msg\":\"access\",\"id\":\"t%d-%d\","
				    "\"client\":\"127.0.0.1\",\"method\":\"POST\",\"path\":\"/v1/x?q=\\\"a b\\\"&k=\\\\\\\\v\\n\","
				    "\"status\":200,\"backend\":\"gpu1\",\"model\":\"m\\\"x\"," JSON_NORMAL_TAIL, t, k);
			else
				snprintf(want, sizeof(want), "access id=t%d-%d client=127.0.0.1 method=POST "
				    "path=\"/v1/x?q=\\\"a b\\\"&k=\\\\\\\\v\\x0a\" status=200 backend=gpu1 "
				    "model=\"m\\\"x\" " TEXT_NORMAL_TAIL, t, k);
			ck_assert_str_eq(body, want);
			total++;
		}
		free_lines(&l);
	}
	ck_assert_uint_eq(total, THREADS * PER_THREAD);
}

/* Threads writing at once: every line whole, none lost. */
START_TEST(test_threads)
{
	struct writer w[THREADS];
	const char *file;
	int i, json;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	for (json = 0; json <= 1; json++) {
		file = fresh("threads.log", json);
		for (i = 0; i < THREADS; i++) {
			w[i].n = i;
			ck_assert_int_eq(pthread_create(&w[i].t, NULL, writer, &w[i]), 0);
		}
		for (i = 0; i < THREADS; i++)
			pthread_join(w[i].t, NULL);
		check_thread_lines(&file, 1, json);
		unlink(file);
	}
	rmdir(dir);
}
END_TEST

/* The same while the file is moved away and reopened again and again (a
 * reload after logrotate): every line whole, in one file or another, none
 * lost. */
START_TEST(test_threads_reopen)
{
	enum { ROTATIONS = 30 };
	static char names[ROTATIONS + 1][256];
	const char *files[ROTATIONS + 1];
	struct writer w[THREADS];
	const char *file;
	int i, r;

	make_dir();
	log_set_level(LOG_LEVEL_INFO);
	file = fresh("rot.log", 1);
	for (i = 0; i < THREADS; i++) {
		w[i].n = i;
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, writer, &w[i]), 0);
	}
	for (r = 0; r < ROTATIONS; r++) {
		snprintf(names[r], sizeof(names[r]), "%s.%d", file, r);
		ck_assert_int_eq(rename(file, names[r]), 0);
		ck_assert_int_eq(log_access_setup(file, 1), 0);
		usleep(1000);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(w[i].t, NULL);
	for (r = 0; r < ROTATIONS; r++)
		files[r] = names[r];
	files[ROTATIONS] = file;
	check_thread_lines(files, ROTATIONS + 1, 1);
	for (r = 0; r <= ROTATIONS; r++)
		unlink(files[r]);
	rmdir(dir);
}
END_TEST

/* ---- urls in messages ------------------------------------------------------------------- */

static const struct {
	const char *url, *shown;
} url_cases[] = {
	{ "http://127.0.0.1:9000", "http://127.0.0.1:9000" },
	{ "https://h/v1/usage", "https://h/v1/usage" },
	{ "http://h/usage?token=SECRET", "http://h/usage?token=..." },
	{ "http://h?token=SECRET&tenant=a&SECRETWORD&=x&k=", "http://h?token=...&tenant=...&...&=...&k=..." },
	{ "http://h/p?", "http://h/p?" },
	{ "http://h/p?a=1#SECRET", "http://h/p?a=...#..." },
	{ "http://h/p#SECRET", "http://h/p#..." },
	{ "http://user:SECRET@h:80/p", "http://...@h:80/p" },
	{ "https://SECRET@h?x=SECRET", "https://...@h?x=..." },
	{ "http://h/a@b", "http://h/a@b" },             /* '@' in the path: no userinfo */
	{ "/health?key=SECRET", "/health?key=..." },    /* a path alone */
	{ "", "" },
};

START_TEST(test_url)
{
	char out[256], cut[256];
	const char *want = url_cases[_i].shown;
	size_t len = strlen(want);

	ck_assert_ptr_eq(log_url(url_cases[_i].url, out, sizeof(out)), out);
	ck_assert_str_eq(out, want);
	ck_assert_ptr_null(strstr(out, "SECRET"));
	/* Every smaller buffer: the start of the same, always terminated,
	 * nothing written past its end. */
	for (size_t cap = 1; cap <= len + 1; cap++) {
		memset(cut, '#', sizeof(cut));
		log_url(url_cases[_i].url, cut, cap);
		ck_assert_uint_eq(strlen(cut), cap - 1);
		ck_assert_int_eq(memcmp(cut, want, cap - 1), 0);
		ck_assert_int_eq(cut[cap], '#');
	}
	memset(cut, '#', sizeof(cut));
	log_url(url_cases[_i].url, cut, 0);
	ck_assert_int_eq(cut[0], '#');
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("access");
	tcase_add_loop_test(tc, test_access_text, 0, N(access_cases));
	tcase_add_loop_test(tc, test_access_json, 0, N(access_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("urls");
	tcase_add_loop_test(tc, test_url, 0, N(url_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_test(tc, test_long_path_keeps_fields);
	tcase_add_test(tc, test_line_bound);
	tcase_add_test(tc, test_cut_cleanly);
	suite_add_tcase(s, tc);

	tc = tcase_create("setup");
	tcase_add_test(tc, test_setup_file);
	tcase_add_test(tc, test_setup_stderr);
	tcase_add_test(tc, test_level);
	tcase_add_test(tc, test_messages);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_threads_reopen);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
