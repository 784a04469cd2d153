/*
 * check_usage.c — usage metering (src/usage.c, over json.c and sse.c).
 *
 * What a user sees: a bill with the right counts for every backend dialect,
 * however the stream was cut into reads; a client that did not ask for usage
 * gets exactly the bytes it would have had without the proxy, though the
 * proxy asked the backend for usage on its behalf; an honest estimate when
 * the backend says nothing or the client goes away; one valid JSON record.
 *
 * Streams are fed the way relay.c feeds them: sse_scan() finds each event,
 * usage_event() decides, and the verdict is applied (the lone LF owed to an
 * event reported at its CR goes where that event went).  The recorded
 * streams are read from $LLMPROXY_TEST_DATA (default tests/data, relative to
 * the repository root): sse/ as the backends send them with include_usage,
 * usage/ as they would be without (see usage/README.md).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "json.h"
#include "sse.h"
#include "usage.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define STREAM_MAX 4096
#define PROMPT_BYTES 40		/* a request's prompt text: 10 tokens */

/* ---- feeding a stream --------------------------------------------------------- */

/* Reads a file under the test data directory; the caller frees it. */
static char *
load(const char *rel, size_t *len)
{
	const char *dir = getenv("LLMPROXY_TEST_DATA");
	char path[4096];
	FILE *fp;
	char *buf;
	long n;

	snprintf(path, sizeof path, "%s/%s", dir != NULL && *dir != '\0' ?
	    dir : "tests/data", rel);
	fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "cannot open %s (run from the repository "
	    "root, or set LLMPROXY_TEST_DATA)", path);
	ck_assert(fseek(fp, 0, SEEK_END) == 0);
	n = ftell(fp);
	ck_assert(n >= 0 && n < STREAM_MAX);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

/* One stream through the meter, and what the client got of it. */
struct run {
	struct usage_meter m;
	char out[STREAM_MAX];
	size_t out_len;
	size_t drops, cuts;
	size_t lf_tails, lf_dropped;	/* owed LFs, and those dropped */
};

static void
out_add(struct run *r, const char *p, size_t n)
{
	ck_assert_uint_le(r->out_len + n, sizeof r->out);
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

/* What the relay does with one complete event. */
static int
deliver(struct run *r, const char *ev, size_t len)
{
	struct usage_verdict v;
	/* The relay sends an event that usage_may_change() clears before the
	 * meter reads it: the verdict must then be FORWARD, in every test
	 * that delivers an event. */
	int may = usage_may_change(&r->m, ev, len);

	memset(&v, 0x55, sizeof v);
	usage_event(&r->m, ev, len, &v);
	ck_assert_msg(may || v.action == USAGE_FORWARD,
	    "usage_may_change() cleared \"%.*s\", verdict %d", (int)len, ev,
	    (int)v.action);
	switch (v.action) {
	case USAGE_FORWARD:
		ck_assert(v.cut_at == 0 && v.cut_len == 0);
		out_add(r, ev, len);
		break;
	case USAGE_CUT:
		ck_assert_uint_gt(v.cut_len, 0);
		ck_assert_uint_le(v.cut_at + v.cut_len, len);
		out_add(r, ev, v.cut_at);
		out_add(r, ev + v.cut_at + v.cut_len, len - v.cut_at - v.cut_len);
		r->cuts++;
		break;
	case USAGE_DROP:
		r->drops++;
		break;
	default:
		ck_abort_msg("verdict %d", (int)v.action);
	}
	return v.action == USAGE_DROP;
}

/*
 * Feeds buf[0..len) in reads: two, cut at `at` (0 or len: one read), or one
 * byte each.  Bytes of an unfinished event wait, as in the relay, and are
 * never delivered if the stream ends first.
 */
static void
feed(struct run *r, const char *buf, size_t len, size_t at, int bytewise)
{
	struct sse_scanner s = {0};
	char ev[STREAM_MAX];
	size_t off = 0, ev_len = 0;
	int dropped_last = 0;

	while (off < len) {
		size_t n = bytewise ? 1 : off < at ? at - off : len - off;
		size_t pos = off, end = off + n, k;

		for (; pos < end; pos += k) {
			k = sse_scan(&s, buf + pos, end - pos);
			if (k == 0) {
				k = end - pos;
				memcpy(ev + ev_len, buf + pos, k);
				ev_len += k;
			} else if (sse_scan_lf_tail(&s)) {
				/* The LF of the CRLF that ended the event
				 * before: it goes where that event went. */
				ck_assert_uint_eq(ev_len, 0);
				r->lf_tails++;
				if (dropped_last)
					r->lf_dropped++;
				else
					out_add(r, buf + pos, 1);
			} else {
				memcpy(ev + ev_len, buf + pos, k);
				dropped_last = deliver(r, ev, ev_len + k);
				ev_len = 0;
			}
		}
		off = end;
	}
}

static void
run_stream(struct run *r, const char *buf, size_t len, size_t at,
    int bytewise, int injected, int injected_continuous)
{
	memset(r, 0, sizeof *r);
	usage_meter_init(&r->m, injected, injected_continuous);
	feed(r, buf, len, at, bytewise);
}

/* Two runs of the same stream ended the same: counts, bytes, verdicts. */
static void
assert_same_run(const struct run *want, const struct run *got,
    const char *name, const char *how, size_t arg)
{
	const struct usage_meter *a = &want->m, *b = &got->m;

	ck_assert_msg(a->reported == b->reported &&
	    a->prompt_tokens == b->prompt_tokens &&
	    a->completion_tokens == b->completion_tokens &&
	    a->total_tokens == b->total_tokens &&
	    a->own_nulls == b->own_nulls && a->events == b->events &&
	    a->content_events == b->content_events &&
	    a->content_bytes == b->content_bytes &&
	    strcmp(a->finish_reason, b->finish_reason) == 0,
	    "%s, %s %zu: the meter differs", name, how, arg);
	ck_assert_msg(want->drops == got->drops && want->cuts == got->cuts,
	    "%s, %s %zu: verdicts differ", name, how, arg);
	ck_assert_msg(want->out_len == got->out_len &&
	    memcmp(want->out, got->out, want->out_len) == 0,
	    "%s, %s %zu: the client got other bytes", name, how, arg);
}

/*
 * Runs buf whole into *ref, then split in two at every byte and byte by
 * byte: all must end as ref did.  Returns the byte-by-byte run's owed LFs
 * (all, and dropped) in *bytewise.
 */
static void
run_every_way(const char *buf, size_t len, int injected,
    int injected_continuous, const char *name, struct run *ref,
    struct run *bytewise)
{
	struct run got;
	size_t at;

	run_stream(ref, buf, len, len, 0, injected, injected_continuous);
	for (at = 1; at < len; at++) {
		run_stream(&got, buf, len, at, 0, injected,
		    injected_continuous);
		assert_same_run(ref, &got, name, "split at", at);
		usage_meter_free(&got.m);
	}
	run_stream(bytewise, buf, len, 0, 1, injected, injected_continuous);
	assert_same_run(ref, bytewise, name, "byte by byte", 0);
	usage_meter_free(&bytewise->m);
	usage_meter_free(&ref->m);
}

static void
assert_result(const struct usage_result *got, const struct usage_result *want,
    const char *name)
{
	ck_assert_msg(got->prompt_tokens == want->prompt_tokens &&
	    got->completion_tokens == want->completion_tokens &&
	    got->total_tokens == want->total_tokens &&
	    strcmp(got->source, want->source) == 0,
	    "%s: %lld/%lld/%lld %s, want %lld/%lld/%lld %s", name,
	    (long long)got->prompt_tokens, (long long)got->completion_tokens,
	    (long long)got->total_tokens, got->source,
	    (long long)want->prompt_tokens, (long long)want->completion_tokens,
	    (long long)want->total_tokens, want->source);
}

/* The counts a meter holds from the backend. */
static void
assert_counts(const struct usage_meter *m, int64_t prompt, int64_t completion,
    int64_t total, const char *name)
{
	ck_assert_msg(m->reported && m->prompt_tokens == prompt &&
	    m->completion_tokens == completion && m->total_tokens == total,
	    "%s: reported %d, %lld/%lld/%lld", name, m->reported,
	    (long long)m->prompt_tokens, (long long)m->completion_tokens,
	    (long long)m->total_tokens);
}

/* ---- every recorded stream: the counts ------------------------------------------- */

static const struct fixture {
	const char *file;
	uint64_t events;
	int reported;
	int64_t prompt, completion, total;	/* as the backend gave them */
	uint64_t content_events, content_bytes;
	const char *finish;
	int own_nulls;
	struct usage_result want;	/* with PROMPT_BYTES of prompt */
} fixtures[] = {
	{ "completions-comments-fields-no-usage.sse", 4, 0, 0, 0, 0,
	  1, 6, "stop", 0, { 10, 2, 12, "estimated" } },
	{ "llamacpp-chat-usage-chunk.sse", 4, 1, 28, 22, 50,
	  1, 3, "stop", 0, { 28, 22, 50, "backend" } },
	{ "llamacpp-old-usage-on-finish-crlf.sse", 3, 1, 11, 9, 20,
	  1, 3, "stop", 0, { 11, 9, 20, "backend" } },
	{ "openai-chat-include-usage.sse", 4, 1, 24, 58, 82,
	  1, 2, "stop", 0, { 24, 58, 82, "backend" } },
	/* TGI native: details, and no total. */
	{ "tgi-generate-stream.sse", 2, 1, 5, 2, -1,
	  2, 7, "length", 0, { 5, 2, 7, "backend" } },
	{ "tgi-messages-include-usage.sse", 4, 1, 7, 2, 9,
	  2, 13, "length", 1, { 7, 2, 9, "backend" } },
	/* "我是" is 6 bytes; the role chunk's "" is no content. */
	{ "vllm-chat-include-usage.sse", 5, 1, 24, 3, 27,
	  2, 9, "stop", 0, { 24, 3, 27, "backend" } },
	/* Cumulative usage on every chunk: the last one. */
	{ "vllm-continuous-usage.sse", 4, 1, 16, 2, 18,
	  2, 2, "length", 0, { 16, 2, 18, "backend" } },
};

/* Who asked for what: the counts must not depend on it. */
static const struct mode {
	int injected, injected_continuous;
} modes[] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 0, 1 } };

START_TEST(test_fixture)
{
	const struct fixture *fx = &fixtures[_i / N(modes)];
	const struct mode *md = &modes[_i % N(modes)];
	struct run ref, bytewise;
	struct usage_result res;
	size_t len;
	char *buf, rel[256];

	snprintf(rel, sizeof rel, "sse/%s", fx->file);
	buf = load(rel, &len);
	run_every_way(buf, len, md->injected, md->injected_continuous,
	    fx->file, &ref, &bytewise);

	ck_assert_uint_eq(ref.m.events, fx->events);
	ck_assert_int_eq(ref.m.reported, fx->reported);
	if (fx->reported)
		assert_counts(&ref.m, fx->prompt, fx->completion, fx->total,
		    fx->file);
	ck_assert_msg(ref.m.content_events == fx->content_events &&
	    ref.m.content_bytes == fx->content_bytes, "%s: content %llu/%llu",
	    fx->file, (unsigned long long)ref.m.content_events,
	    (unsigned long long)ref.m.content_bytes);
	ck_assert_str_eq(ref.m.finish_reason, fx->finish);
	ck_assert_int_eq(ref.m.own_nulls, fx->own_nulls);

	/* body_bytes is ignored for a stream. */
	usage_result(&ref.m, PROMPT_BYTES, 99999, 1, &res);
	assert_result(&res, &fx->want, fx->file);

	/* A client that asked for what it gets: every byte, untouched. */
	if (!md->injected && !md->injected_continuous) {
		ck_assert(ref.drops == 0 && ref.cuts == 0);
		ck_assert_uint_eq(ref.out_len, len);
		ck_assert_mem_eq(ref.out, buf, len);
	}
	free(buf);
}
END_TEST

/* ---- the stripping rewrite: byte-exact ---------------------------------------------- */

/* Line ends a stream can be rewritten to ("" keeps them as recorded). */
static const char *const eols[] = { "", "\n", "\r\n", "\r" };

/* buf with every line end (LF, CRLF or CR) made eol, into out. */
static size_t
relines(const char *buf, size_t len, const char *eol, char *out)
{
	size_t i, o = 0, k = strlen(eol);

	if (k == 0) {
		memcpy(out, buf, len);
		return len;
	}
	for (i = 0; i < len; i++) {
		if (buf[i] != '\r' && buf[i] != '\n') {
			out[o++] = buf[i];
			continue;
		}
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
			i++;
		memcpy(out + o, eol, k);
		o += k;
	}
	return o;
}

static const struct pair {
	const char *sent;	/* as the backend sends it, include_usage asked */
	const char *plain;	/* as it would have sent it for the client */
	int injected, injected_continuous;
	size_t drops, cuts;
} pairs[] = {
	{ "sse/vllm-chat-include-usage.sse", "usage/vllm-chat.plain.sse",
	  1, 0, 1, 0 },
	{ "sse/openai-chat-include-usage.sse", "usage/openai-chat.plain.sse",
	  1, 0, 1, 2 },
	{ "sse/vllm-continuous-usage.sse", "usage/vllm-continuous.plain.sse",
	  1, 1, 1, 2 },
	{ "sse/vllm-continuous-usage.sse",
	  "usage/vllm-continuous.client-usage.sse", 0, 1, 0, 2 },
	{ "sse/tgi-messages-include-usage.sse", "usage/tgi-messages.plain.sse",
	  1, 0, 1, 0 },
	{ "sse/llamacpp-chat-usage-chunk.sse", "usage/llamacpp-chat.plain.sse",
	  1, 0, 1, 0 },
	/* What the backend sends anyway stays: usage on a finish chunk we
	 * asked nothing for, TGI's details, a stream without usage. */
	{ "sse/llamacpp-old-usage-on-finish-crlf.sse",
	  "sse/llamacpp-old-usage-on-finish-crlf.sse", 1, 0, 0, 0 },
	{ "sse/tgi-generate-stream.sse", "sse/tgi-generate-stream.sse",
	  1, 1, 0, 0 },
	{ "sse/completions-comments-fields-no-usage.sse",
	  "sse/completions-comments-fields-no-usage.sse", 1, 1, 0, 0 },
};

START_TEST(test_strip)
{
	const struct pair *p = &pairs[_i / N(eols)];
	const char *eol = eols[_i % N(eols)];
	size_t sent_len, plain_len, len, want_len;
	char *sent = load(p->sent, &sent_len);
	char *plain = load(p->plain, &plain_len);
	char buf[2 * STREAM_MAX], want[2 * STREAM_MAX];
	struct run ref, bytewise;

	len = relines(sent, sent_len, eol, buf);
	want_len = relines(plain, plain_len, eol, want);
	run_every_way(buf, len, p->injected, p->injected_continuous, p->sent,
	    &ref, &bytewise);
	ck_assert_msg(ref.out_len == want_len &&
	    memcmp(ref.out, want, want_len) == 0,
	    "%s, eol %zu: the client got\n%.*s", p->sent, strlen(eol),
	    (int)ref.out_len, ref.out);
	ck_assert_uint_eq(ref.drops, p->drops);
	ck_assert_uint_eq(ref.cuts, p->cuts);

	/* CRLF fed byte by byte: each event is reported at its closing CR,
	 * and the LF owed to a dropped event was dropped with it. */
	if (strcmp(eol, "\r\n") == 0) {
		ck_assert_uint_eq(bytewise.lf_tails, ref.m.events);
		ck_assert_uint_eq(bytewise.lf_dropped, p->drops);
	} else if (strlen(eol) == 1) {
		ck_assert_uint_eq(bytewise.lf_tails, 0);
	}
	free(sent);
	free(plain);
}
END_TEST

/*
 * llama.cpp puts "timings" on the last chunk it sends: the usage chunk when
 * usage was asked for, the finish chunk otherwise.  The proxy cannot move it
 * back onto a finish chunk already forwarded, so that member is the one
 * difference from what llama.cpp sends a client directly: nothing else.
 */
START_TEST(test_llamacpp_timings)
{
	size_t sent_len, plain_len, direct_len, tlen, at;
	char *sent = load("sse/llamacpp-chat-usage-chunk.sse", &sent_len);
	char *plain = load("usage/llamacpp-chat.plain.sse", &plain_len);
	char *direct = load("usage/llamacpp-chat.direct.sse", &direct_len);
	const char *t, *fin;
	char want[STREAM_MAX];

	sent[sent_len] = plain[plain_len] = direct[direct_len] = '\0';
	t = strstr(sent, ",\"timings\":{");
	ck_assert_ptr_nonnull(t);
	tlen = (size_t)(strchr(t, '}') + 1 - t);
	fin = strstr(plain, "\"finish_reason\":\"stop\"");
	ck_assert_ptr_nonnull(fin);
	at = (size_t)(strchr(fin, '\n') - 1 - plain);	/* the data's '}' */
	ck_assert_int_eq(plain[at], '}');
	memcpy(want, plain, at);
	memcpy(want + at, t, tlen);
	memcpy(want + at + tlen, plain + at, plain_len - at);
	ck_assert_uint_eq(direct_len, plain_len + tlen);
	ck_assert_mem_eq(direct, want, direct_len);
	free(sent);
	free(plain);
	free(direct);
}
END_TEST

/* ---- one event at a time ------------------------------------------------------------ */

static const struct event_case {
	const char *name;
	const char *ev;
	int injected, injected_continuous, own_nulls;
	enum usage_action action;
	const char *delivered;	/* NULL: nothing */
	uint64_t content_events, content_bytes;
	int reported;
} event_cases[] = {
	{ "a null we caused, other fields first, CRLF, no space",
	  "id: 7\r\nevent: message\r\ndata:{\"choices\":[{\"delta\":"
	  "{\"content\":\"x\"}}],\"usage\":null}\r\n\r\n", 1, 0, 0, USAGE_CUT,
	  "id: 7\r\nevent: message\r\ndata:{\"choices\":[{\"delta\":"
	  "{\"content\":\"x\"}}]}\r\n\r\n", 1, 1, 0 },
	{ "the same null, the backend's own (TGI)",
	  "data:{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}"
	  "\n\n", 1, 0, 1, USAGE_FORWARD,
	  "data:{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}"
	  "\n\n", 1, 1, 0 },
	{ "a null on TGI's first chunk: \"id\":\"\" comes with it",
	  "data:{\"id\":\"\",\"choices\":[],\"usage\":null}\n\n", 1, 0, 0,
	  USAGE_FORWARD, "data:{\"id\":\"\",\"choices\":[],\"usage\":null}\n\n",
	  0, 0, 0 },
	{ "a null, not injected", "data: {\"usage\":null,\"choices\":[]}\n\n",
	  0, 1, 0, USAGE_FORWARD, "data: {\"usage\":null,\"choices\":[]}\n\n",
	  0, 0, 0 },
	{ "a null first, two spaces after data:, CR only",
	  "data:  {\"usage\":null, \"choices\":[]}\r\r", 1, 0, 0, USAGE_CUT,
	  "data:  { \"choices\":[]}\r\r", 0, 0, 0 },
	{ "the usage chunk we asked for",
	  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,"
	  "\"completion_tokens\":2,\"total_tokens\":3}}\n\n", 1, 0, 0,
	  USAGE_DROP, NULL, 0, 0, 1 },
	{ "what is dropped is not delivered content",
	  "data: {\"choices\":[],\"usage\":{\"total_tokens\":3},\"token\":"
	  "{\"text\":\"xy\"}}\n\n", 1, 0, 0, USAGE_DROP, NULL, 0, 0, 1 },
	{ "the usage chunk the client asked for",
	  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n", 0, 1, 0,
	  USAGE_FORWARD,
	  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n", 0, 0, 1 },
	{ "usage with no choices member is not the usage chunk",
	  "data: {\"usage\":{\"prompt_tokens\":1}}\n\n", 1, 1, 0, USAGE_FORWARD,
	  "data: {\"usage\":{\"prompt_tokens\":1}}\n\n", 0, 0, 1 },
	{ "continuous usage we asked for",
	  "data: {\"choices\":[{\"text\":\"ab\"}],\"usage\":{\"prompt_tokens\":"
	  "1,\"completion_tokens\":1,\"total_tokens\":2},\"x\":1}\n\n", 0, 1, 0,
	  USAGE_CUT, "data: {\"choices\":[{\"text\":\"ab\"}],\"x\":1}\n\n",
	  1, 2, 1 },
	{ "usage on a finish chunk, the backend's own",
	  "data: {\"choices\":[{\"finish_reason\":\"stop\"}],\"usage\":"
	  "{\"prompt_tokens\":1}}\n\n", 1, 0, 0, USAGE_FORWARD,
	  "data: {\"choices\":[{\"finish_reason\":\"stop\"}],\"usage\":"
	  "{\"prompt_tokens\":1}}\n\n", 0, 0, 1 },
	{ "a comment", ": ping\n\n", 1, 1, 0, USAGE_FORWARD, ": ping\n\n",
	  0, 0, 0 },
	{ "an empty line", "\n", 1, 1, 0, USAGE_FORWARD, "\n", 0, 0, 0 },
	{ "[DONE]", "data: [DONE]\n\n", 1, 1, 0, USAGE_FORWARD,
	  "data: [DONE]\n\n", 0, 0, 0 },
	{ "plain text is content", "data: hello world\n\n", 1, 1, 0,
	  USAGE_FORWARD, "data: hello world\n\n", 1, 11, 0 },
	{ "plain text on two lines",
	  "data: ab\ndata: c\n\n", 1, 1, 0, USAGE_FORWARD,
	  "data: ab\ndata: c\n\n", 1, 3, 0 },
	{ "an object on two lines is not read",
	  "data: {\"usage\":null,\ndata: \"choices\":[]}\n\n", 1, 1, 0,
	  USAGE_FORWARD, "data: {\"usage\":null,\ndata: \"choices\":[]}\n\n",
	  0, 0, 0 },
	{ "a null we caused, its name spelled with an escape",
	  "data: {\"choices\":[],\"\\u0075sage\":null}\n\n", 1, 0, 0,
	  USAGE_CUT, "data: {\"choices\":[]}\n\n", 0, 0, 0 },
	{ "the usage chunk, an escape in the middle of its name",
	  "data: {\"choices\":[],\"us\\u0061ge\":{\"total_tokens\":3}}\n\n",
	  1, 0, 0, USAGE_DROP, NULL, 0, 0, 1 },
	{ "invalid JSON passes as it is",
	  "data: {\"usage\":null,}\n\n", 1, 1, 0, USAGE_FORWARD,
	  "data: {\"usage\":null,}\n\n", 0, 0, 0 },
};

START_TEST(test_event)
{
	const struct event_case *c = &event_cases[_i];
	struct run r;
	size_t len = strlen(c->ev);

	memset(&r, 0, sizeof r);
	usage_meter_init(&r.m, c->injected, c->injected_continuous);
	r.m.own_nulls = c->own_nulls;
	deliver(&r, c->ev, len);
	ck_assert_msg((r.drops == 1) == (c->action == USAGE_DROP) &&
	    (r.cuts == 1) == (c->action == USAGE_CUT), "%s: verdict", c->name);
	if (c->delivered == NULL)
		ck_assert_uint_eq(r.out_len, 0);
	else
		ck_assert_msg(r.out_len == strlen(c->delivered) &&
		    memcmp(r.out, c->delivered, r.out_len) == 0,
		    "%s: delivered \"%.*s\"", c->name, (int)r.out_len, r.out);
	ck_assert_msg(r.m.content_events == c->content_events &&
	    r.m.content_bytes == c->content_bytes, "%s: content %llu/%llu",
	    c->name, (unsigned long long)r.m.content_events,
	    (unsigned long long)r.m.content_bytes);
	ck_assert_int_eq(r.m.reported, c->reported);
	ck_assert_uint_eq(r.m.events, 1);
	usage_meter_free(&r.m);
}
END_TEST

/* Which events the relay may send before the meter reads them: the check in
 * deliver() proves the cleared ones safe; these prove the clearing happens. */
static const struct may_case {
	const char *ev;
	int injected, injected_continuous, may;
} may_cases[] = {
	{ "data: {\"choices\":[{\"delta\":{\"content\":\"you\"}}]}\n\n",
	  1, 0, 0 },
	{ "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
	  1, 1, 0 },
	{ "data: [DONE]\n\n", 1, 0, 0 },
	{ "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
	  1, 0, 1 },
	{ "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
	  0, 1, 1 },
	/* Nothing injected: nothing is changed, whatever the event says. */
	{ "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
	  0, 0, 0 },
	{ "data: {\"\\u0075sage\":null}\n\n", 1, 0, 1 },
	{ "data: {\"x\":\"\\u00e9\"}\n\n", 1, 0, 1 },
	{ "data: {\"x\":\"usag\"}\n\n", 1, 0, 0 },
	{ "usage", 1, 0, 1 },
	{ "u", 1, 0, 0 },
	{ "\\u", 1, 0, 1 },
};

START_TEST(test_may_change)
{
	const struct may_case *c = &may_cases[_i];
	struct usage_meter m;

	usage_meter_init(&m, c->injected, c->injected_continuous);
	ck_assert_msg(usage_may_change(&m, c->ev, strlen(c->ev)) == c->may,
	    "\"%s\"", c->ev);
}
END_TEST

/* ---- a stream cut short ------------------------------------------------------------ */

static const struct abort_case {
	const char *file;
	int injected, injected_continuous;
	size_t events;		/* complete events the client got */
	int half;		/* and half of the next one */
	int generated;
	struct usage_result want;
} abort_cases[] = {
	/* Text delivered so far: "我是", one event: max(1, 6/4). */
	{ "sse/vllm-chat-include-usage.sse", 1, 0, 2, 1, 1,
	  { 10, 2, 12, "estimated" } },
	/* Only the role chunk: nothing generated yet, the prompt was read. */
	{ "sse/vllm-chat-include-usage.sse", 1, 0, 1, 0, 1,
	  { 10, 0, 10, "estimated" } },
	{ "sse/openai-chat-include-usage.sse", 1, 0, 1, 1, 1,
	  { 10, 1, 11, "estimated" } },
	{ "sse/tgi-messages-include-usage.sse", 1, 0, 2, 0, 1,
	  { 10, 4, 14, "estimated" } },
	/* Continuous usage: exact however early the client left. */
	{ "sse/vllm-continuous-usage.sse", 1, 1, 1, 1, 1,
	  { 16, 1, 17, "backend" } },
	{ "sse/vllm-continuous-usage.sse", 1, 1, 2, 0, 1,
	  { 16, 2, 18, "backend" } },
	/* No event complete, no response: nothing to bill. */
	{ "sse/vllm-chat-include-usage.sse", 1, 0, 0, 1, 0,
	  { 0, 0, 0, "none" } },
};

/* Where the n-th event of buf ends (n = 0: 0). */
static size_t
event_end(const char *buf, size_t len, size_t n)
{
	struct sse_scanner s = {0};
	size_t at = 0, i;

	for (i = 0; i < n; i++) {
		size_t k = sse_scan(&s, buf + at, len - at);

		ck_assert_uint_gt(k, 0);
		at += k;
	}
	return at;
}

START_TEST(test_abort)
{
	const struct abort_case *c = &abort_cases[_i];
	size_t len, upto, next;
	char *buf = load(c->file, &len);
	struct run r;
	struct usage_result res;

	upto = event_end(buf, len, c->events);
	next = event_end(buf, len, c->events + 1);
	if (c->half)
		upto += (next - upto) / 2;
	run_stream(&r, buf, upto, upto, 0, c->injected, c->injected_continuous);
	ck_assert_uint_eq(r.m.events, c->events);
	usage_result(&r.m, PROMPT_BYTES, upto, c->generated, &res);
	assert_result(&res, &c->want, c->file);
	usage_meter_free(&r.m);
	free(buf);
}
END_TEST

/* ---- the numbers, from a meter's state ----------------------------------------------- */

static const struct result_case {
	const char *name;
	struct usage_meter m;
	size_t prompt_bytes;
	uint64_t body_bytes;
	int generated;
	struct usage_result want;
} result_cases[] = {
	{ "all reported",
	  { .reported = 1, .prompt_tokens = 3, .completion_tokens = 4,
	    .total_tokens = 7 }, 1000, 1000, 1, { 3, 4, 7, "backend" } },
	{ "reported, though the response failed",
	  { .reported = 1, .prompt_tokens = 3, .completion_tokens = 4,
	    .total_tokens = 7 }, 1000, 0, 0, { 3, 4, 7, "backend" } },
	{ "a total that does not add up is the backend's",
	  { .reported = 1, .prompt_tokens = 3, .completion_tokens = 4,
	    .total_tokens = 9 }, 0, 0, 1, { 3, 4, 9, "backend" } },
	{ "embeddings: prompt and total, no completion",
	  { .reported = 1, .prompt_tokens = 8, .completion_tokens = -1,
	    .total_tokens = 8 }, 100, 5000, 1, { 8, 0, 8, "backend" } },
	{ "TGI: no total",
	  { .reported = 1, .prompt_tokens = 5, .completion_tokens = 2,
	    .total_tokens = -1 }, 0, 0, 1, { 5, 2, 7, "backend" } },
	{ "completion and total: the prompt is the difference",
	  { .reported = 1, .prompt_tokens = -1, .completion_tokens = 2,
	    .total_tokens = 9 }, 1000, 0, 1, { 7, 2, 9, "backend" } },
	{ "completion only: the prompt estimated",
	  { .reported = 1, .prompt_tokens = -1, .completion_tokens = 2,
	    .total_tokens = -1 }, 41, 0, 1, { 11, 2, 13, "backend" } },
	{ "total only: prompt estimated, completion the rest",
	  { .reported = 1, .prompt_tokens = -1, .completion_tokens = -1,
	    .total_tokens = 30 }, 40, 0, 1, { 10, 20, 30, "backend" } },
	{ "prompt only, a stream: completion estimated",
	  { .reported = 1, .prompt_tokens = 6, .completion_tokens = -1,
	    .total_tokens = -1, .events = 3, .content_events = 2,
	    .content_bytes = 9 }, 0, 0, 1, { 6, 3, 9, "backend" } },
	{ "nothing reported, nothing generated",
	  { .events = 2, .content_events = 2, .content_bytes = 8 }, 40, 0, 0,
	  { 0, 0, 0, "none" } },
	{ "a body without usage: all of it / 4",
	  { 0 }, 40, 401, 1, { 10, 101, 111, "estimated" } },
	{ "an empty body", { 0 }, 0, 0, 1, { 0, 0, 0, "estimated" } },
	{ "CJK: at least a token per event",
	  { .events = 6, .content_events = 5, .content_bytes = 9 }, 3, 0, 1,
	  { 1, 5, 6, "estimated" } },
	{ "English: bytes / 4, rounded up",
	  { .events = 3, .content_events = 2, .content_bytes = 33 }, 4, 777, 1,
	  { 1, 9, 10, "estimated" } },
	{ "a stream with no text: no completion, body_bytes ignored",
	  { .events = 2 }, 8, 4000, 1, { 2, 0, 2, "estimated" } },
};

START_TEST(test_result)
{
	const struct result_case *c = &result_cases[_i];
	struct usage_result res;

	memset(&res, 0x55, sizeof res);
	usage_result(&c->m, c->prompt_bytes, c->body_bytes, c->generated, &res);
	assert_result(&res, &c->want, c->name);
}
END_TEST

/* ---- non-streamed bodies ------------------------------------------------------------ */

static const struct tail_case {
	const char *name;
	const char *tail;
	int reported;
	int64_t prompt, completion, total;
} tail_cases[] = {
	{ "usage last",
	  "{\"id\":\"c\",\"choices\":[{\"message\":{\"content\":\"Hi\"}}],"
	  "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,"
	  "\"total_tokens\":12}}", 1, 5, 7, 12 },
	{ "usage in the middle",
	  "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"
	  "\"total_tokens\":3},\"system_fingerprint\":\"fp\"}", 1, 1, 2, 3 },
	{ "a string after it holds \"usage\":{ text",
	  "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
	  "\"total_tokens\":7},\"note\":\"see \\\"usage\\\":{\\\"prompt_tokens"
	  "\\\":99}\"}", 1, 3, 4, 7 },
	{ "the tail starts in the middle of a string",
	  "llo \\\"usage\\\":{\\\"prompt_tokens\\\":99} world\"}}],"
	  "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
	  "\"total_tokens\":7}}", 1, 3, 4, 7 },
	/* A member name that ends in a quoted word: "say \"usage". */
	{ "an escaped quote before usage",
	  "{\"say \\\"usage\":{\"prompt_tokens\":99}}", 0, 0, 0, 0 },
	{ "\"usage\" as a value, after an escaped backslash",
	  "{\"a\\\\\":{\"b\":\"usage\"},\"usage\":{\"prompt_tokens\":2}}",
	  1, 2, -1, -1 },
	{ "the tail starts in the middle of a number",
	  "5,\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}", 1, 2, -1, 2 },
	{ "a string ending in a backslash before it",
	  "{\"a\":\"q\\\\\",\"usage\":{\"prompt_tokens\":6}}", 1, 6, -1, -1 },
	{ "embeddings",
	  "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
	  "\"embedding\":[0.1,-0.2]}],\"model\":\"e5\",\"usage\":"
	  "{\"prompt_tokens\":8,\"total_tokens\":8}}", 1, 8, -1, 8 },
	{ "pretty-printed",
	  "{\n  \"usage\": {\n    \"prompt_tokens\": 5,\n    "
	  "\"completion_tokens\": 1,\n    \"total_tokens\": 6\n  }\n}\n",
	  1, 5, 1, 6 },
	{ "token details inside",
	  "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,"
	  "\"total_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":0},"
	  "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
	  1, 9, 1, 10 },
	{ "braces in a string inside",
	  "\"usage\":{\"note\":\"}{\\\"}\",\"prompt_tokens\":4}}", 1, 4, -1, -1 },
	{ "no usage", "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}",
	  0, 0, 0, 0 },
	{ "usage null", "{\"id\":\"x\",\"usage\":null}", 0, 0, 0, 0 },
	{ "usage a value", "\"usage\":\"{\"}", 0, 0, 0, 0 },
	{ "usage cut off", "{\"usage\":{\"prompt_tokens\":5,\"compl", 0, 0, 0,
	  0 },
	{ "an earlier complete one when the last is cut off",
	  "\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1},\"x\":{\"usage\":"
	  "{\"prompt_tokens\":2", 1, 1, -1, 1 },
	{ "usage without counts", "{\"usage\":{}}", 0, 0, 0, 0 },
	{ "usage not JSON", "{\"usage\":{\"prompt_tokens\":}}", 0, 0, 0, 0 },
	{ "a name ending in usage", "{\"xusage\":{\"prompt_tokens\":1}}",
	  0, 0, 0, 0 },
	{ "empty", "", 0, 0, 0, 0 },
};

START_TEST(test_body_tail)
{
	const struct tail_case *c = &tail_cases[_i];
	struct usage_meter m;

	usage_meter_init(&m, 0, 0);
	usage_body_tail(&m, c->tail, strlen(c->tail));
	ck_assert_msg(m.reported == c->reported, "%s: reported %d", c->name,
	    m.reported);
	if (c->reported)
		assert_counts(&m, c->prompt, c->completion, c->total, c->name);
	ck_assert_uint_eq(m.events, 0);
	usage_meter_free(&m);
}
END_TEST

/*
 * A tail is read only from what it holds: the last CAP_USAGE_TAIL bytes, cut
 * anywhere.  Every suffix of a body ending in its usage object either has
 * the whole object (and its counts) or none of it.
 */
START_TEST(test_body_tail_every_start)
{
	static const char body[] = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\""
	    ":0,\"message\":{\"role\":\"assistant\",\"content\":\"say \\\"usage\\\""
	    ":{\\\"prompt_tokens\\\":99}\"},\"finish_reason\":\"stop\"}],"
	    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
	    "\"total_tokens\":46}}";
	const char *key = strstr(body, ",\"usage\":{\"prompt_tokens\":12") + 1;
	size_t len = sizeof body - 1, from;

	for (from = 0; from < len; from++) {
		struct usage_meter m;

		usage_meter_init(&m, 0, 0);
		usage_body_tail(&m, body + from, len - from);
		if (body + from <= key)
			assert_counts(&m, 12, 34, 46, "a tail");
		else
			ck_assert_msg(!m.reported, "from %zu: read %lld", from,
			    (long long)m.prompt_tokens);
		usage_meter_free(&m);
	}
}
END_TEST

/* A tail of nothing but unclosed usage objects: read in linear time. */
START_TEST(test_body_tail_unclosed)
{
	static const char unit[] = "\"usage\":{";
	char *tail = malloc(64 * 1024);
	size_t len = 0, round;
	struct usage_meter m;

	ck_assert_ptr_nonnull(tail);
	while (len + sizeof unit - 1 <= 64 * 1024) {
		memcpy(tail + len, unit, sizeof unit - 1);
		len += sizeof unit - 1;
	}
	usage_meter_init(&m, 0, 0);
	for (round = 0; round < 50; round++)
		usage_body_tail(&m, tail, len);
	ck_assert_int_eq(m.reported, 0);
	usage_meter_free(&m);
	free(tail);
}
END_TEST

/* A usage object too large to copy is not read (the estimate stands). */
START_TEST(test_body_tail_too_large)
{
	char tail[2048];
	struct usage_meter m;
	int n;

	n = snprintf(tail, sizeof tail, "{\"usage\":{\"prompt_tokens\":1,"
	    "\"x\":\"%01100d\"}}", 0);
	ck_assert(n > 0 && (size_t)n < sizeof tail);
	usage_meter_init(&m, 0, 0);
	usage_body_tail(&m, tail, (size_t)n);
	ck_assert_int_eq(m.reported, 0);
	n = snprintf(tail, sizeof tail, "{\"usage\":{\"prompt_tokens\":1,"
	    "\"x\":\"%0900d\"}}", 0);
	usage_body_tail(&m, tail, (size_t)n);
	ck_assert(m.reported && m.prompt_tokens == 1);
	usage_meter_free(&m);
}
END_TEST

/* ---- the record --------------------------------------------------------------------- */

#define S(s) s, sizeof(s) - 1

static const struct record_case {
	const char *name;
	struct usage_record r;
	const char *json;
} record_cases[] = {
	{ "a stream, reported",
	  { .request_id = "req-1", .timestamp_ms = 1795660726123,
	    .model = S("Qwen/Qwen2.5-7B-Instruct"),
	    .usage = { 24, 3, 27, "backend" }, .is_stream = 1,
	    .endpoint = S("/v1/chat/completions"),
	    .backend_url = "http://10.0.0.5:8000", .backend = "gpu1",
	    .status_code = 200, .latency_ms = 1234, .ttft_ms = 56,
	    .finish = "stop" },
	  "{\"request_id\":\"req-1\",\"timestamp\":\"2026-11-26T02:38:46.123Z\","
	  "\"model\":\"Qwen/Qwen2.5-7B-Instruct\",\"prompt_tokens\":24,"
	  "\"completion_tokens\":3,\"total_tokens\":27,\"usage_source\":"
	  "\"backend\",\"is_stream\":true,\"endpoint\":\"/v1/chat/completions\","
	  "\"backend_url\":\"http://10.0.0.5:8000\",\"backend\":\"gpu1\","
	  "\"status_code\":200,\"latency_ms\":1234,\"ttft_ms\":56,\"finish\":"
	  "\"stop\",\"user_id\":null,\"key_name\":null,"
	  "\"client_request_id\":null}" },
	{ "nulls; the endpoint without its query; auth names; the client's id",
	  { .request_id = "r", .timestamp_ms = 0, .model = NULL,
	    .usage = { 0, 0, 0, "none" }, .is_stream = 0,
	    .endpoint = "/v1/embeddings?x=1", .endpoint_len = 14,
	    .backend_url = NULL, .backend = NULL, .status_code = 0,
	    .latency_ms = 0, .ttft_ms = -1, .finish = "upstream_error",
	    .user_id = "alice", .key_name = "team-a",
	    .client_request_id = "trace-7:a.b_c" },
	  "{\"request_id\":\"r\",\"timestamp\":\"1970-01-01T00:00:00.000Z\","
	  "\"model\":null,\"prompt_tokens\":0,\"completion_tokens\":0,"
	  "\"total_tokens\":0,\"usage_source\":\"none\",\"is_stream\":false,"
	  "\"endpoint\":\"/v1/embeddings\",\"backend_url\":null,\"backend\":null,"
	  "\"status_code\":0,\"latency_ms\":0,\"ttft_ms\":null,\"finish\":"
	  "\"upstream_error\",\"user_id\":\"alice\",\"key_name\":\"team-a\","
	  "\"client_request_id\":\"trace-7:a.b_c\"}" },
	{ "escaping; the model's escapes kept",
	  { .request_id = "a\"b", .timestamp_ms = -1,
	    .model = S("m\\\"x\\u00e9\\/"), .usage = { 1, 2, 3, "estimated" },
	    .endpoint = S("/v1/\x01"), .backend_url = "http://h/\\",
	    .backend = "gpu\xc3\xa9", .status_code = 502, .latency_ms = 7,
	    .ttft_ms = 0, .finish = "client_abort\n", .user_id = "",
	    .key_name = "k\x7f" },
	  "{\"request_id\":\"a\\\"b\",\"timestamp\":\"1969-12-31T23:59:59.999Z\","
	  "\"model\":\"m\\\"x\\u00e9\\/\",\"prompt_tokens\":1,"
	  "\"completion_tokens\":2,\"total_tokens\":3,\"usage_source\":"
	  "\"estimated\",\"is_stream\":false,\"endpoint\":\"/v1/\\u0001\","
	  "\"backend_url\":\"http://h/\\\\\",\"backend\":\"gpu\xc3\xa9\","
	  "\"status_code\":502,\"latency_ms\":7,\"ttft_ms\":0,\"finish\":"
	  "\"client_abort\\n\",\"user_id\":\"\",\"key_name\":\"k\\u007f\","
	  "\"client_request_id\":null}" },
	{ "a model that is not valid string contents is escaped",
	  { .request_id = "r", .timestamp_ms = 951868799999,
	    .model = S("a\"b\\q\x01\\"), .usage = { 1, 1, 2, "backend" },
	    .endpoint = S("/v1/completions"), .backend_url = "u",
	    .backend = "b", .status_code = 200, .latency_ms = 1,
	    .ttft_ms = 1, .finish = "length" },
	  "{\"request_id\":\"r\",\"timestamp\":\"2000-02-29T23:59:59.999Z\","
	  "\"model\":\"a\\\"b\\\\q\\u0001\\\\\",\"prompt_tokens\":1,"
	  "\"completion_tokens\":1,\"total_tokens\":2,\"usage_source\":"
	  "\"backend\",\"is_stream\":false,\"endpoint\":\"/v1/completions\","
	  "\"backend_url\":\"u\",\"backend\":\"b\",\"status_code\":200,"
	  "\"latency_ms\":1,\"ttft_ms\":1,\"finish\":\"length\",\"user_id\":null,"
	  "\"key_name\":null,\"client_request_id\":null}" },
	{ "a \\u escape cut short is escaped",
	  { .request_id = "r", .timestamp_ms = 253402300799999,
	    .model = S("x\\u00e"), .usage = { 1, 1, 2, "backend" },
	    .endpoint = S("/"), .backend_url = "u", .backend = "b",
	    .status_code = 200, .latency_ms = 1, .ttft_ms = 1,
	    .finish = "stop" },
	  "{\"request_id\":\"r\",\"timestamp\":\"9999-12-31T23:59:59.999Z\","
	  "\"model\":\"x\\\\u00e\",\"prompt_tokens\":1,\"completion_tokens\":1,"
	  "\"total_tokens\":2,\"usage_source\":\"backend\",\"is_stream\":false,"
	  "\"endpoint\":\"/\",\"backend_url\":\"u\",\"backend\":\"b\","
	  "\"status_code\":200,\"latency_ms\":1,\"ttft_ms\":1,\"finish\":"
	  "\"stop\",\"user_id\":null,\"key_name\":null,"
	  "\"client_request_id\":null}" },
};

START_TEST(test_record)
{
	const struct record_case *c = &record_cases[_i];
	size_t want = strlen(c->json), n, cap, i;
	char out[CAP_RECORD_BYTES + 16];
	struct json_request back;
	void *scratch = NULL;
	size_t scratch_bytes = 0;

	n = usage_record_json(&c->r, out, CAP_RECORD_BYTES);
	ck_assert_msg(n == want && memcmp(out, c->json, n) == 0,
	    "%s: got\n%.*s", c->name, (int)n, out);
	/* One valid JSON object, whose model reads back as given. */
	ck_assert_int_eq(json_inspect_request(out, n, &back, &scratch,
	    &scratch_bytes), JSON_OK);
	free(scratch);
	ck_assert_int_eq(back.model != NULL, c->r.model != NULL);

	/* Every cap too small: 0, and nothing written past the cap. */
	for (cap = 0; cap <= want; cap++) {
		memset(out, '#', sizeof out);
		n = usage_record_json(&c->r, out, cap);
		ck_assert_msg(n == (cap == want ? want : 0), "%s: cap %zu gave "
		    "%zu", c->name, cap, n);
		for (i = cap; i < sizeof out && out[i] == '#'; i++)
			;
		ck_assert_msg(i == sizeof out, "%s: cap %zu, wrote at %zu",
		    c->name, cap, i);
	}
}
END_TEST

static Suite *
usage_suite(void)
{
	Suite *s = suite_create("usage");
	TCase *tc;

	tc = tcase_create("streams");
	/* Every fixture split at every byte, four ways: slower under ASan. */
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_fixture, 0, N(fixtures) * N(modes));
	tcase_add_loop_test(tc, test_strip, 0, N(pairs) * N(eols));
	tcase_add_test(tc, test_llamacpp_timings);
	tcase_add_loop_test(tc, test_event, 0, N(event_cases));
	tcase_add_loop_test(tc, test_may_change, 0, N(may_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("estimates");
	tcase_add_loop_test(tc, test_abort, 0, N(abort_cases));
	tcase_add_loop_test(tc, test_result, 0, N(result_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("bodies");
	tcase_add_loop_test(tc, test_body_tail, 0, N(tail_cases));
	tcase_add_test(tc, test_body_tail_every_start);
	tcase_add_test(tc, test_body_tail_unclosed);
	tcase_add_test(tc, test_body_tail_too_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_add_loop_test(tc, test_record, 0, N(record_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(usage_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
