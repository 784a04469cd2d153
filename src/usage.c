/*
 * usage.c — token usage from what the backend sends, an estimate when it
 * sends nothing, and the record that goes to billing.
 *
 * The dialects (tests/data/sse/ holds a recorded stream of each):
 *
 *   vLLM, OpenAI   with include_usage, a last chunk with "choices": [] and
 *                  "usage"; OpenAI also puts "usage": null on every other
 *                  chunk.  vLLM's continuous_usage_stats puts cumulative
 *                  usage on every chunk: the last one seen wins.
 *   TGI Messages   the OpenAI shape, but "usage": null on every chunk whether
 *                  asked or not, and "id": "" — which is how we tell.
 *   TGI native     /generate_stream: details.generated_tokens and
 *                  details.input_length on the last event.
 *   llama.cpp      a usage chunk like vLLM's (with "timings"); older builds
 *                  put "usage" on the finish chunk, which still has choices.
 *
 * The meter reads one complete event at a time and keeps only counts, so
 * memory per stream does not grow with the answer.  What the proxy caused by
 * adding include_usage (the usage chunk, the nulls, continuous usage) is
 * taken out again, so that the client gets the bytes it would have had
 * without the proxy.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "sse.h"
#include "usage.h"

/* The largest "usage" object read from a body tail.  OpenAI's, with its
 * token details, is about 250 bytes; it is copied (see usage_body_tail). */
#define USAGE_OBJECT_MAX 1024

void
usage_meter_init(struct usage_meter *m, int injected, int injected_continuous)
{
	memset(m, 0, sizeof *m);
	m->injected = injected;
	m->injected_continuous = injected_continuous;
}

void
usage_meter_free(struct usage_meter *m)
{
	free(m->scratch);
	m->scratch = NULL;
	m->scratch_bytes = 0;
}

/* ---- streams ---------------------------------------------------------------- */

/* Whether a data value is meant as a JSON object (one leading space went with
 * "data: ", another may be left). */
static int
looks_like_object(const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && (data[i] == ' ' || data[i] == '\t'))
		i++;
	return i < len && data[i] == '{';
}

/*
 * An event whose data is not JSON (a backend streaming plain text) is
 * generated text as far as an estimate can tell: its data lines count, the
 * end marker does not.  A JSON object spread over several data lines is not
 * text, and not read either (no backend sends one).
 */
static void
count_text(struct usage_meter *m, const char *ev, size_t len)
{
	struct sse_field f;
	size_t pos = 0, bytes = 0;

	while (sse_next_field(ev, len, &pos, &f)) {
		if (f.name_len != 4 || memcmp(f.name, "data", 4) != 0 ||
		    sse_is_done(f.value, f.value_len))
			continue;
		if (looks_like_object(f.value, f.value_len))
			return;
		bytes += f.value_len;
	}
	if (bytes > 0) {
		m->content_events++;
		m->content_bytes += bytes;
	}
}

/* Counts the backend gave in this event: a usage object (the last one wins:
 * continuous usage is cumulative), or TGI's details. */
static void
record_counts(struct usage_meter *m, const struct json_usage *u)
{
	if (u->has_usage && (u->prompt_tokens >= 0 ||
	    u->completion_tokens >= 0 || u->total_tokens >= 0)) {
		m->reported = 1;
		m->prompt_tokens = u->prompt_tokens;
		m->completion_tokens = u->completion_tokens;
		m->total_tokens = u->total_tokens;
	} else if (u->generated_tokens >= 0 || u->input_length >= 0) {
		m->reported = 1;
		m->prompt_tokens = u->input_length;
		m->completion_tokens = u->generated_tokens;
		m->total_tokens = -1;
	}
}

/*
 * What the client gets of an event, given what we added to its request.  The
 * usage-only chunk exists because we asked (include_usage); so do OpenAI's
 * "usage": null members, unless the backend sends them anyway (TGI); and
 * usage on a chunk that carries choices exists only because we asked for
 * continuous usage.  Usage on a finish chunk from a backend we asked nothing
 * extra of (older llama.cpp) is the backend's own, and stays.
 */
static enum usage_action
decide(const struct usage_meter *m, const struct json_usage *u)
{
	if (m->injected && u->has_usage && u->has_choices && u->choices_empty)
		return USAGE_DROP;
	if (m->injected && u->usage_null && !m->own_nulls)
		return USAGE_CUT;
	if (m->injected_continuous && u->has_usage && u->has_choices &&
	    !u->choices_empty)
		return USAGE_CUT;
	return USAGE_FORWARD;
}

void
usage_event(struct usage_meter *m, const char *ev, size_t len,
    struct usage_verdict *v)
{
	struct json_usage u;
	const char *data;
	size_t data_len;

	v->action = USAGE_FORWARD;
	v->cut_at = 0;
	v->cut_len = 0;
	m->events++;

	/* Comments, [DONE], several data lines, plain text: not ours. */
	if (sse_event_data(ev, len, &data, &data_len) != 1 ||
	    !looks_like_object(data, data_len)) {
		count_text(m, ev, len);
		return;
	}
	/* Most events are text and nothing else: counted without the full
	 * parse, which is most of the relay's work per event otherwise. */
	struct json_plain plain;
	if (json_plain_chunk(data, data_len, &plain)) {
		if (plain.content_bytes > 0) {
			m->content_events++;
			m->content_bytes += plain.content_bytes;
		}
		if (plain.finish_reason[0] != '\0')
			memcpy(m->finish_reason, plain.finish_reason,
			    sizeof m->finish_reason);
		return;
	}
	/* The usage chunk, read in one pass too when it has the usual shape;
	 * anything else gets the full parse. */
	if (!json_usage_chunk(data, data_len, &u) &&
	    json_inspect_usage(data, data_len, &u, &m->scratch,
	    &m->scratch_bytes) != JSON_OK)
		return;		/* not JSON after all: passed on as it came */

	/* Before deciding: TGI's first chunk already has its own null. */
	if (u.empty_id)
		m->own_nulls = 1;
	record_counts(m, &u);
	v->action = decide(m, &u);
	if (v->action == USAGE_CUT) {
		v->cut_at = (size_t)(data - ev) + u.usage_member_at;
		v->cut_len = u.usage_member_len;
	}
	if (v->action != USAGE_DROP && u.content_bytes > 0) {
		m->content_events++;
		m->content_bytes += u.content_bytes;
	}
	if (u.finish_reason[0] != '\0')
		memcpy(m->finish_reason, u.finish_reason,
		    sizeof m->finish_reason);
}

int
usage_may_change(const struct usage_meter *m, const char *ev, size_t len)
{
	const char *p, *end = ev + len;

	if (!m->injected && !m->injected_continuous)
		return 0;	/* decide() forwards everything */
	/* A name spelled with an escape has a \u in it... */
	for (p = ev; (p = memchr(p, '\\', (size_t)(end - p))) != NULL; p++)
		if (p + 1 < end && p[1] == 'u')
			return 1;
	/* ...and one without has the word, found by its rarest letter. */
	for (p = ev; (p = memchr(p, 'g', (size_t)(end - p))) != NULL; p++)
		if (p - ev >= 3 && p + 1 < end && p[-3] == 'u' && p[-2] == 's' &&
		    p[-1] == 'a' && p[1] == 'e')
			return 1;
	return 0;
}

/* ---- bodies ------------------------------------------------------------------ */

/* Whether the byte at s[i] is escaped: an odd run of backslashes before it. */
static int
escaped(const char *s, size_t i)
{
	size_t k = i;

	while (k > 0 && s[k - 1] == '\\')
		k--;
	return (i - k) % 2 == 1;
}

static size_t
skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' ||
	    s[i] == '\r'))
		i++;
	return i;
}

/*
 * The '}' that closes the object opened at s[open], looking no further than
 * limit (strings skipped: braces in them are text).  Returns its offset, or
 * limit when there is none before it.
 */
static size_t
object_end(const char *s, size_t open, size_t limit)
{
	size_t i, depth = 0;
	int in_string = 0;

	for (i = open; i < limit; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
		} else if (s[i] == '"') {
			in_string = 1;
		} else if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if ((s[i] == '}' || s[i] == ']') && --depth == 0) {
			return i;
		}
	}
	return limit;
}

/*
 * Finds the last complete `"usage": {...}` in s[0..len): the key's opening
 * quote must not be escaped (a quote inside a string always is, so this holds
 * even when s starts in the middle of a string), and its object must close
 * within s.  Sets [*open, *close] to the object's braces; returns 0 if none.
 *
 * Linear: when an object does not close, every object opened before it that
 * reaches its '{' does not either, so later scans stop there.
 */
static int
last_usage_object(const char *s, size_t len, size_t *open, size_t *close)
{
	static const char key[] = "\"usage\"";
	size_t i = len, limit = len, j;

	while (i-- > 0) {
		if (s[i] != '"' || len - i < sizeof key - 1 ||
		    memcmp(s + i, key, sizeof key - 1) != 0 || escaped(s, i))
			continue;
		j = skip_ws(s, i + sizeof key - 1, len);
		if (j == len || s[j] != ':')
			continue;
		j = skip_ws(s, j + 1, len);
		if (j == len || s[j] != '{' || j >= limit)
			continue;
		*close = object_end(s, j, limit);
		if (*close < limit) {
			*open = j;
			return 1;
		}
		limit = j;
	}
	return 0;
}

/*
 * The usage object is read like an event's (json_usage_chunk(), else
 * json_inspect_usage()): copied
 * into a small object of its own, {"usage":{...}}, since the tail around it
 * is not JSON (it starts anywhere).  A body needs no verdict: the client gets
 * it whole, usage included — non-streamed responses carry usage anyway.
 */
void
usage_body_tail(struct usage_meter *m, const char *tail, size_t len)
{
	static const char head[] = "{\"usage\":";
	char obj[USAGE_OBJECT_MAX];
	struct json_usage u;
	size_t open, close, n;

	if (!last_usage_object(tail, len, &open, &close))
		return;
	n = close + 1 - open;
	if (n > sizeof obj - sizeof head)
		return;
	memcpy(obj, head, sizeof head - 1);
	memcpy(obj + sizeof head - 1, tail + open, n);
	obj[sizeof head - 1 + n] = '}';
	if (json_usage_chunk(obj, sizeof head + n, &u) ||
	    json_inspect_usage(obj, sizeof head + n, &u, &m->scratch,
	    &m->scratch_bytes) == JSON_OK)
		record_counts(m, &u);
}

/* ---- the numbers ---------------------------------------------------------------- */

/* Tokens for a byte count: about four bytes of English text per token. */
static int64_t
quarter_up(uint64_t bytes)
{
	uint64_t q = bytes / 4 + (bytes % 4 != 0);

	return q > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)q;
}

/*
 * The estimate of what was generated.  A stream: its content bytes / 4, but
 * at least one token per event that carried text (a token of CJK text is
 * fewer than 4 bytes of UTF-8).  A body: all of it / 4, JSON included — the
 * meter keeps no part of a body to tell the answer from the rest.
 */
static int64_t
completion_estimate(const struct usage_meter *m, uint64_t body_bytes)
{
	int64_t bytes = quarter_up(m->content_bytes), events;

	if (m->events == 0)
		return quarter_up(body_bytes);
	events = m->content_events > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)m->content_events;
	return events > bytes ? events : bytes;
}

/*
 * What the backend reported, with a member it left out derived from total
 * when it can be (embeddings give prompt and total only: completion is the
 * difference, 0), else estimated; the source stays "backend".
 */
void
usage_result(const struct usage_meter *m, size_t prompt_bytes,
    uint64_t body_bytes, int generated, struct usage_result *out)
{
	int64_t p, c, t;

	if (m->reported) {
		p = m->prompt_tokens;
		c = m->completion_tokens;
		t = m->total_tokens;
		if (p < 0 && c >= 0 && t >= c)
			p = t - c;
		if (p < 0)
			p = quarter_up(prompt_bytes);
		if (c < 0 && t >= p)
			c = t - p;
		if (c < 0)
			c = completion_estimate(m, body_bytes);
		if (t < 0)
			t = p + c;
		out->source = "backend";
	} else if (!generated) {
		p = c = t = 0;
		out->source = "none";
	} else {
		p = quarter_up(prompt_bytes);
		c = completion_estimate(m, body_bytes);
		t = p + c;
		out->source = "estimated";
	}
	out->prompt_tokens = p;
	out->completion_tokens = c;
	out->total_tokens = t;
}

/* ---- the record ------------------------------------------------------------------ */

/* Output into a fixed buffer: once something does not fit, nothing more is
 * written and the record is refused. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
	int full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/*
 * s[0..n) escaped, whole or not at all.  json_escape() stops before the first
 * unit that does not fit; whether it took all of s shows in what it wrote:
 * each escape there stands for one byte of s, every other byte for itself.
 */
static void
put_escaped(struct out *o, const char *s, size_t n)
{
	const char *w = o->buf + o->len;
	size_t wrote, i, took = 0;

	if (o->full)
		return;
	wrote = json_escape(o->buf + o->len, o->cap - o->len, s, n);
	for (i = 0; i < wrote; took++)
		i += w[i] != '\\' ? 1 : w[i + 1] == 'u' ? 6 : 2;
	if (took < n)
		o->full = 1;
	else
		o->len += wrote;
}

/* A JSON string, or null for NULL. */
static void
put_string(struct out *o, const char *s, size_t n)
{
	if (s == NULL) {
		put_str(o, "null");
		return;
	}
	put_str(o, "\"");
	put_escaped(o, s, n);
	put_str(o, "\"");
}

static void
put_cstring(struct out *o, const char *s)
{
	put_string(o, s, s != NULL ? strlen(s) : 0);
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* Whether s[0..n) can stand between quotes as it is: valid escapes, no
 * quote, no control byte (nor DEL, which json_escape() escapes too). */
static int
string_contents_ok(const char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '"')
			return 0;
		if (c != '\\')
			continue;
		if (++i == n)
			return 0;
		if (s[i] == 'u') {
			for (k = 1; k <= 4; k++)
				if (i + k >= n || !is_hex(s[i + k]))
					return 0;
			i += 4;
		} else if (memchr("\"\\/bfnrt", s[i], 8) == NULL) {
			return 0;
		}
	}
	return 1;
}

/* The model as the client wrote it (JSON string contents, escapes kept), or,
 * should it not be valid string contents, escaped like any text. */
static void
put_model(struct out *o, const char *s, size_t n)
{
	if (s == NULL || !string_contents_ok(s, n)) {
		put_string(o, s, n);
		return;
	}
	put_str(o, "\"");
	put(o, s, n);
	put_str(o, "\"");
}

static void
put_int(struct out *o, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%" PRId64, v);

	put(o, b, (size_t)n);
}

/* RFC 3339 UTC with milliseconds: "2026-11-26T02:18:46.123Z". */
static void
put_timestamp(struct out *o, int64_t ms)
{
	int64_t rem = ms % 1000;
	time_t sec = (time_t)(ms / 1000 - (rem < 0));
	struct tm tm;
	char b[48];
	int n;

	if (gmtime_r(&sec, &tm) == NULL) {
		put_str(o, "null");
		return;
	}
	n = snprintf(b, sizeof b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(rem < 0 ? rem + 1000 : rem));
	put(o, b, (size_t)n);
}

/* How a record member is written. */
enum field_kind {
	F_STRING,		/* const char *; NULL: null */
	F_STRING_N,		/* const char * and its length (len_at) */
	F_MODEL,		/* the same, JSON string contents kept */
	F_INT,
	F_INT64,
	F_INT64_OR_NULL,	/* negative: null */
	F_BOOL,
	F_TIME,			/* int64_t milliseconds since the epoch */
};

#define R(f) offsetof(struct usage_record, f)

/* The record's members, in the order DESIGN.md lists them. */
static const struct record_field {
	const char *key;
	enum field_kind kind;
	size_t at;		/* where the value is in struct usage_record */
	size_t len_at;		/* F_STRING_N, F_MODEL: where its length is */
} record_fields[] = {
	{ "request_id",         F_STRING,        R(request_id), 0 },
	{ "timestamp",          F_TIME,          R(timestamp_ms), 0 },
	{ "model",              F_MODEL,         R(model), R(model_len) },
	{ "prompt_tokens",      F_INT64,         R(usage.prompt_tokens), 0 },
	{ "completion_tokens",  F_INT64,         R(usage.completion_tokens), 0 },
	{ "total_tokens",       F_INT64,         R(usage.total_tokens), 0 },
	{ "usage_source",       F_STRING,        R(usage.source), 0 },
	{ "is_stream",          F_BOOL,          R(is_stream), 0 },
	{ "endpoint",           F_STRING_N,      R(endpoint), R(endpoint_len) },
	{ "backend_url",        F_STRING,        R(backend_url), 0 },
	{ "backend",            F_STRING,        R(backend), 0 },
	{ "status_code",        F_INT,           R(status_code), 0 },
	{ "latency_ms",         F_INT64,         R(latency_ms), 0 },
	{ "ttft_ms",            F_INT64_OR_NULL, R(ttft_ms), 0 },
	{ "finish",             F_STRING,        R(finish), 0 },
	{ "user_id",            F_STRING,        R(user_id), 0 },
	{ "key_name",           F_STRING,        R(key_name), 0 },
	{ "client_request_id",  F_STRING,        R(client_request_id), 0 },
};

#undef R

static void
put_field(struct out *o, const struct usage_record *r,
    const struct record_field *f)
{
	const char *base = (const char *)r;
	const char *s;
	size_t n = 0;
	int64_t v64;
	int v;

	switch (f->kind) {
	case F_STRING:
		memcpy(&s, base + f->at, sizeof s);
		put_cstring(o, s);
		break;
	case F_STRING_N:
	case F_MODEL:
		memcpy(&s, base + f->at, sizeof s);
		memcpy(&n, base + f->len_at, sizeof n);
		if (f->kind == F_MODEL)
			put_model(o, s, n);
		else
			put_string(o, s, n);
		break;
	case F_INT:
	case F_BOOL:
		memcpy(&v, base + f->at, sizeof v);
		if (f->kind == F_BOOL)
			put_str(o, v ? "true" : "false");
		else
			put_int(o, v);
		break;
	case F_INT64:
	case F_INT64_OR_NULL:
	case F_TIME:
		memcpy(&v64, base + f->at, sizeof v64);
		if (f->kind == F_TIME)
			put_timestamp(o, v64);
		else if (f->kind == F_INT64_OR_NULL && v64 < 0)
			put_str(o, "null");
		else
			put_int(o, v64);
		break;
	}
}

size_t
usage_record_json(const struct usage_record *r, char *out, size_t cap)
{
	struct out o = { out, cap, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof record_fields / sizeof record_fields[0]; i++) {
		put_str(&o, i == 0 ? "{\"" : ",\"");
		put_str(&o, record_fields[i].key);
		put_str(&o, "\":");
		put_field(&o, r, &record_fields[i]);
	}
	put_str(&o, "}");
	return o.full ? 0 : o.len;
}
