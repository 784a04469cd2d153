/*
 * json.c — the proxy's only JSON code, and the only user of jsmn.
 *
 * jsmn (strict mode, parent links) tokenises the body in the caller's buffer;
 * nothing is copied or decoded.  jsmn is a tokeniser, not a validator: even in
 * strict mode it accepts, among others, `{"a":}`, `{"a":1,}`, `[,]`,
 * `{"a"::1}`, `{"a":tru}`, `{"a":01}` and raw control bytes inside strings.
 * A request the proxy reads differently from the backend is a billing and
 * routing hazard, so validate() checks what jsmn leaves out (see there) and
 * the body is accepted only when it is exactly one RFC 8259 JSON object.
 * What is still not checked: that strings are valid UTF-8, and that \u
 * escapes pair their surrogates; both are the backend's business.
 *
 * jsmn's cost is quadratic in the nesting depth (closing a bracket walks up
 * the parent chain from the last token: 100 000 nested arrays, a 200 KB body,
 * take seconds), so the depth is capped before jsmn sees the body.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Private and strict: jsmn's functions become static to this file, strict
 * mode rejects unquoted keys and values no JSON primitive starts with, and
 * parent links make ',' O(1) instead of a scan back over earlier tokens. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "caps.h"
#include "json.h"

/* Tokens allocated on first use: a short chat request fits. */
#define SCRATCH_INIT_TOKENS 128

/* RFC 8259 §2: insignificant whitespace. */
static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Whether containers nest deeper than CAP_JSON_DEPTH, as jsmn will see them:
 * brackets inside strings do not count, and jsmn stops at a NUL.  Runs before
 * jsmn so that jsmn's depth-quadratic work stays bounded.
 */
static int
too_deep(const char *s, size_t len)
{
	size_t i, depth = 0;
	int in_string = 0;

	for (i = 0; i < len && s[i] != '\0'; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			in_string = 1;
			break;
		case '{':
		case '[':
			if (++depth > CAP_JSON_DEPTH)
				return 1;
			break;
		case '}':
		case ']':
			if (depth > 0)
				depth--;
			break;
		}
	}
	return 0;
}

/*
 * Whether s[0..len) has at most CAP_JSON_DEPTH opening brackets in all:
 * then it cannot nest deeper than that, and too_deep()'s walk is not needed
 * (brackets in strings, or after a NUL, only make the count larger).  A few
 * memchr() calls instead of a loop over every byte: an SSE event has a
 * handful of brackets.
 */
static int
few_brackets(const char *s, size_t len)
{
	static const char open[] = "{[";
	const char *end = s + len;
	size_t count = 0;

	for (int k = 0; k < 2; k++)
		for (const char *p = s; p < end &&
		    (p = memchr(p, open[k], (size_t)(end - p))) != NULL; p++)
			if (++count > CAP_JSON_DEPTH)
				return 0;
	return 1;
}

/* RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
valid_number(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0') {
		i++;
	} else if (i < n && is_digit(s[i])) {
		while (i < n && is_digit(s[i]))
			i++;
	} else {
		return 0;
	}
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	return i == n;
}

/* jsmn's strict mode only looks at a primitive's first byte: `tru`, `01`,
 * `1.`, `-`, `1a` all pass it. */
static int
valid_primitive(const char *s, size_t n)
{
	return (n == 4 && memcmp(s, "true", 4) == 0) ||
	    (n == 5 && memcmp(s, "false", 5) == 0) ||
	    (n == 4 && memcmp(s, "null", 4) == 0) ||
	    valid_number(s, n);
}

/* jsmn checks escapes but lets raw control bytes through; RFC 8259 §7 says
 * they must be escaped (and Python's json.loads, behind vLLM, refuses them). */
static int
valid_string(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

/*
 * Whether the bytes s[from..to) between two tokens are what JSON allows
 * there: whitespace, then (when closers is set) the '}' and ']' of containers
 * that end here, then the separator sep (or none when sep is 0), then
 * whitespace.  jsmn already matched every bracket to its container; the
 * separators are what it does not check (`[1,]`, `{"a"::1}`, `[1,,2]`).
 */
static int
gap_ok(const char *s, size_t from, size_t to, char sep, int closers)
{
	size_t i = from;

	if (from > to)		/* tokens out of order: not from jsmn */
		return 0;
	while (i < to && (is_ws(s[i]) ||
	    (closers && (s[i] == '}' || s[i] == ']'))))
		i++;
	if (sep != 0) {
		if (i == to || s[i] != sep)
			return 0;
		i++;
	}
	while (i < to && is_ws(s[i]))
		i++;
	return i == to;
}

/* Where a token's text starts and ends: jsmn leaves a string's quotes out. */
static size_t
text_start(const jsmntok_t *t)
{
	return (size_t)t->start - (t->type == JSMN_STRING);
}

static size_t
text_end(const jsmntok_t *t)
{
	return (size_t)t->end + (t->type == JSMN_STRING);
}

/*
 * Whether jsmn's n tokens for body[0..len) are exactly one JSON object.
 * Tokens come in document order, each with its parent, so one pass checks
 * each token's place (a key is a string with exactly one value; only keys
 * have a value; nothing hangs off a primitive), the separator before it, and
 * its own text.  An iterative walk: the depth could be CAP_JSON_DEPTH.
 */
static int
validate(const char *body, size_t len, const jsmntok_t *t, int n)
{
	size_t at;
	int i;

	if (t[0].type != JSMN_OBJECT)
		return 0;
	/* Nothing but whitespace around the root: this also catches a second
	 * top-level value, and bytes after a NUL, where jsmn stopped. */
	if (!gap_ok(body, 0, (size_t)t[0].start, 0, 0) ||
	    !gap_ok(body, (size_t)t[0].end, len, 0, 0))
		return 0;

	at = (size_t)t[0].start + 1;
	for (i = 1; i < n; i++) {
		const jsmntok_t *k = &t[i];
		int p = k->parent, key = 0, first = (i == p + 1);
		char sep;

		if (p < 0)
			return 0;
		switch (t[p].type) {
		case JSMN_OBJECT:		/* k is a member name */
			if (k->type != JSMN_STRING || k->size != 1)
				return 0;
			key = 1;
			sep = first ? 0 : ',';
			break;
		case JSMN_ARRAY:		/* k is an element */
			sep = first ? 0 : ',';
			break;
		case JSMN_STRING:		/* k is the value of member p */
			sep = ':';
			break;
		default:			/* `[1:2]` */
			return 0;
		}
		if (k->type == JSMN_STRING && !key && k->size != 0)
			return 0;		/* `{"a":"b":"c"}` */
		if (!gap_ok(body, at, text_start(k), sep, sep == ','))
			return 0;
		if (k->type == JSMN_STRING &&
		    !valid_string(body + k->start, (size_t)(k->end - k->start)))
			return 0;
		if (k->type == JSMN_PRIMITIVE &&
		    !valid_primitive(body + k->start, (size_t)(k->end - k->start)))
			return 0;
		/* The next gap starts inside a container, after a leaf. */
		if (k->type == JSMN_OBJECT || k->type == JSMN_ARRAY)
			at = (size_t)k->start + 1;
		else
			at = text_end(k);
	}
	/* After the last token only closing brackets, the root's included. */
	return gap_ok(body, at, (size_t)t[0].end, 0, 1);
}

static unsigned
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return (unsigned)(c - 'A' + 10);
}

/*
 * Whether a member name (a validated string token) is name, an ASCII string,
 * after decoding escapes.  Decoding matters: the backend's parser reads
 * {"str\u0065am":true} as "stream", and a proxy that did not would neither
 * meter nor inject usage for that stream.
 */
static int
key_is(const char *body, const jsmntok_t *k, const char *name)
{
	size_t i = (size_t)k->start, end = (size_t)k->end;
	size_t raw = end - i, want;
	const char *w = name;

	/* Cheap answers first.  The first byte as sent is the first character
	 * unless it starts an escape.  Every character decoded takes at least
	 * one byte as sent, an escape more than one: a name no longer than
	 * `name` matches only byte for byte, and a longer one only through
	 * escapes. */
	if (raw == 0)
		return name[0] == '\0';
	if (body[i] != '\\' && body[i] != name[0])
		return 0;
	want = strlen(name);
	if (raw <= want)
		return raw == want && memcmp(body + i, name, want) == 0;
	if (memchr(body + i, '\\', raw) == NULL)
		return 0;
	while (i < end) {
		unsigned c = (unsigned char)body[i++];

		if (c == '\\') {
			/* jsmn's strict string scan has checked the escape,
			 * and that \u has four hex digits before the end. */
			char e = body[i++];

			switch (e) {
			case 'u':
				c = hex_value(body[i]) << 12 |
				    hex_value(body[i + 1]) << 8 |
				    hex_value(body[i + 2]) << 4 |
				    hex_value(body[i + 3]);
				i += 4;
				break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			default:  c = (unsigned char)e; break;	/* " \ / */
			}
		}
		if (*w == '\0' || c != (unsigned char)*w)
			return 0;
		w++;
	}
	return *w == '\0';
}

static int
is_true(const char *body, const jsmntok_t *v)
{
	return v->type == JSMN_PRIMITIVE && v->end - v->start == 4 &&
	    memcmp(body + v->start, "true", 4) == 0;
}

static int
is_null(const char *body, const jsmntok_t *v)
{
	return v->type == JSMN_PRIMITIVE && body[v->start] == 'n';
}

/* A string's length as sent (between the quotes, escapes not decoded). */
static size_t
string_len(const jsmntok_t *v)
{
	return v->type == JSMN_STRING ? (size_t)(v->end - v->start) : 0;
}

/*
 * The next direct child of the container at index c after token k (start
 * with k = c), or -1: an object's member names (each name's value is the
 * token after it) or an array's elements.  Tokens come in document order, so
 * c's children are the tokens inside c's bytes whose parent is c, and going
 * through all of them is one pass over c's tokens.
 */
static int
next_child(const jsmntok_t *t, int n, int c, int k)
{
	for (k++; k < n && t[k].start < t[c].end; k++)
		if (t[k].parent == c)
			return k;
	return -1;
}

/*
 * Finds the members names[0..nn) of the object at index obj, in one pass:
 * found[i] is the index of the value of the last member called names[i] (a
 * repeated member overwrites the earlier one: Python's and JavaScript's
 * parsers keep the last, and the backend is one of them), or -1.  Only direct
 * members count.  obj need not be an object: then nothing is found.
 */
static void
find_members(const char *body, const jsmntok_t *t, int n, int obj,
    const char *const *names, int nn, int *found)
{
	int i, k;

	for (i = 0; i < nn; i++)
		found[i] = -1;
	if (obj < 0 || t[obj].type != JSMN_OBJECT)
		return;
	for (k = obj; (k = next_child(t, n, obj, k)) >= 0; )
		for (i = 0; i < nn; i++)
			if (key_is(body, &t[k], names[i])) {
				found[i] = k + 1;	/* validate(): one value */
				break;
			}
}

/* The value of one member, or -1. */
static int
find_member(const char *body, const jsmntok_t *t, int n, int obj,
    const char *name)
{
	int v;

	find_members(body, t, n, obj, &name, 1, &v);
	return v;
}

/* A boolean member of stream_options, and where its value's bytes are. */
static void
read_flag(const char *body, const jsmntok_t *t, int v, int *has, int *on,
    size_t *at, size_t *len)
{
	*has = v >= 0;
	*on = v >= 0 && is_true(body, &t[v]);
	*at = v >= 0 ? text_start(&t[v]) : 0;
	*len = v >= 0 ? text_end(&t[v]) - text_start(&t[v]) : 0;
}

enum { OPT_INCLUDE, OPT_CONTINUOUS, OPT_N };
static const char *const option_names[OPT_N] = {
	[OPT_INCLUDE] = "include_usage",
	[OPT_CONTINUOUS] = "continuous_usage_stats",
};

/* The stream_options value at index v (any type), for the rewrite. */
static void
read_stream_options(const char *body, const jsmntok_t *t, int n, int v,
    struct json_request *out)
{
	int f[OPT_N];

	out->opts_open = text_start(&t[v]);
	out->opts_len = text_end(&t[v]) - out->opts_open;
	out->has_stream_options = t[v].type == JSMN_OBJECT;
	out->opts_empty = t[v].type == JSMN_OBJECT && t[v].size == 0;
	find_members(body, t, n, v, option_names, OPT_N, f);
	read_flag(body, t, f[OPT_INCLUDE], &out->has_include_usage,
	    &out->include_usage, &out->include_usage_at,
	    &out->include_usage_len);
	read_flag(body, t, f[OPT_CONTINUOUS], &out->has_continuous,
	    &out->continuous_usage, &out->continuous_at, &out->continuous_len);
}

/* "prompt" and "input": a string, or an array of strings (an array of
 * token ids has no text to count). */
static size_t
strings_bytes(const jsmntok_t *t, int n, int v)
{
	size_t sum = 0;
	int k;

	if (t[v].type != JSMN_ARRAY)
		return string_len(&t[v]);
	for (k = v; (k = next_child(t, n, v, k)) >= 0; )
		sum += string_len(&t[k]);
	return sum;
}

/* messages[].content: a string, or content parts whose "text" is one
 * ({"type":"text","text":"..."}; an image part has none). */
static size_t
messages_bytes(const char *body, const jsmntok_t *t, int n, int v)
{
	size_t sum = 0;
	int m, c, p;

	if (t[v].type != JSMN_ARRAY)
		return 0;
	for (m = v; (m = next_child(t, n, v, m)) >= 0; ) {
		c = find_member(body, t, n, m, "content");
		if (c < 0)
			continue;
		if (t[c].type != JSMN_ARRAY) {
			sum += string_len(&t[c]);
			continue;
		}
		for (p = c; (p = next_child(t, n, c, p)) >= 0; ) {
			int x = find_member(body, t, n, p, "text");

			if (x >= 0)
				sum += string_len(&t[x]);
		}
	}
	return sum;
}

enum { RQ_STREAM, RQ_MODEL, RQ_OPTIONS, RQ_MESSAGES, RQ_PROMPT, RQ_INPUT,
    RQ_N };
static const char *const request_names[RQ_N] = {
	[RQ_STREAM] = "stream",
	[RQ_MODEL] = "model",
	[RQ_OPTIONS] = "stream_options",
	[RQ_MESSAGES] = "messages",	/* /v1/chat/completions */
	[RQ_PROMPT] = "prompt",		/* /v1/completions */
	[RQ_INPUT] = "input",		/* /v1/embeddings */
};

/*
 * Reads the members the proxy acts on: only the root's own members count
 * ("model" inside a message is not the request's model).  out is zeroed.
 */
static void
read_request(const char *body, const jsmntok_t *t, int n,
    struct json_request *out)
{
	int f[RQ_N];

	out->root_close = (size_t)t[0].end - 1;
	out->root_empty = t[0].size == 0;
	find_members(body, t, n, 0, request_names, RQ_N, f);
	if (f[RQ_STREAM] >= 0)
		out->stream = is_true(body, &t[f[RQ_STREAM]]);
	if (f[RQ_MODEL] >= 0 && t[f[RQ_MODEL]].type == JSMN_STRING) {
		out->model = body + t[f[RQ_MODEL]].start;
		out->model_len = string_len(&t[f[RQ_MODEL]]);
	}
	if (f[RQ_OPTIONS] >= 0)
		read_stream_options(body, t, n, f[RQ_OPTIONS], out);
	if (f[RQ_MESSAGES] >= 0)
		out->prompt_bytes += messages_bytes(body, t, n, f[RQ_MESSAGES]);
	if (f[RQ_PROMPT] >= 0)
		out->prompt_bytes += strings_bytes(t, n, f[RQ_PROMPT]);
	if (f[RQ_INPUT] >= 0)
		out->prompt_bytes += strings_bytes(t, n, f[RQ_INPUT]);
}

/* Makes room for want tokens in the caller's scratch; on failure the old
 * scratch stays as it was (the caller frees it). */
static int
scratch_grow(void **scratch, size_t *scratch_bytes, size_t want)
{
	void *p;

	if (want > SIZE_MAX / sizeof(jsmntok_t))
		return -1;
	p = realloc(*scratch, want * sizeof(jsmntok_t));
	if (p == NULL)
		return -1;
	*scratch = p;
	*scratch_bytes = want * sizeof(jsmntok_t);
	return 0;
}

/*
 * Tokenises buf[0..len) into the caller's scratch and checks that it is
 * exactly one JSON object.  Returns JSON_OK and the token count in *ntok, or
 * a negative JSON_ code.
 */
static int
parse(const char *buf, size_t len, void **scratch, size_t *scratch_bytes,
    int *ntok)
{
	size_t have;
	jsmn_parser parser;
	int n;

	/* jsmn keeps offsets in int. */
	if (len > INT_MAX - 1)
		return JSON_TOO_BIG;
	if (!few_brackets(buf, len) && too_deep(buf, len))
		return JSON_TOO_BIG;

	have = *scratch_bytes / sizeof(jsmntok_t);
	if (have == 0) {
		have = SCRATCH_INIT_TOKENS < CAP_JSON_TOKENS ?
		    SCRATCH_INIT_TOKENS : CAP_JSON_TOKENS;
		if (scratch_grow(scratch, scratch_bytes, have) < 0)
			return JSON_NOMEM;
	}
	if (have > CAP_JSON_TOKENS)
		have = CAP_JSON_TOKENS;

	/* Most bodies fit the scratch left by the previous one: one pass.
	 * Otherwise count exactly (jsmn with no tokens), then parse again. */
	jsmn_init(&parser);
	n = jsmn_parse(&parser, buf, len, *scratch, (unsigned)have);
	if (n == JSMN_ERROR_NOMEM) {
		jsmn_init(&parser);
		n = jsmn_parse(&parser, buf, len, NULL, 0);
		if (n < 0)
			return JSON_INVALID;
		if ((size_t)n > CAP_JSON_TOKENS)
			return JSON_TOO_BIG;
		if (scratch_grow(scratch, scratch_bytes, (size_t)n) < 0)
			return JSON_NOMEM;
		/* The count skips only checks that fail earlier, so it is
		 * never short: no NOMEM a second time. */
		jsmn_init(&parser);
		n = jsmn_parse(&parser, buf, len, *scratch, (unsigned)n);
	}
	/* n == 0: empty or all whitespace. */
	if (n <= 0 || !validate(buf, len, *scratch, n))
		return JSON_INVALID;
	*ntok = n;
	return JSON_OK;
}

int
json_inspect_request(const char *body, size_t len, struct json_request *out,
    void **scratch, size_t *scratch_bytes)
{
	int n, r;

	memset(out, 0, sizeof *out);
	r = parse(body, len, scratch, scratch_bytes, &n);
	if (r == JSON_OK)
		read_request(body, *scratch, n, out);
	return r;
}

/* ---- the usage rewrite ------------------------------------------------------ */

#define INCLUDE_USAGE "\"include_usage\":true"
#define CONTINUOUS "\"continuous_usage_stats\":true"

/* The longest insertion fits the room the header promises. */
_Static_assert(sizeof(",\"stream_options\":{" INCLUDE_USAGE "," CONTINUOUS "}")
    - 1 <= JSON_INJECT_EXTRA, "JSON_INJECT_EXTRA too small");

/* Bytes [at, at + del) of the body become text[0..len). */
struct edit {
	size_t at;
	size_t del;
	const char *text;
	size_t len;
};

static size_t
append(char *buf, size_t n, const char *s)
{
	size_t k = strlen(s);

	memcpy(buf + n, s, k);
	return n + k;
}

/*
 * The members to insert at the start of an existing stream_options object
 * (none, one or both), each followed by a comma unless the object was empty.
 * Returns their length in buf.
 */
static size_t
opts_insertion(const struct json_request *jr, int continuous, char *buf)
{
	size_t n = 0;

	if (!jr->has_include_usage)
		n = append(buf, n, INCLUDE_USAGE);
	if (continuous && !jr->has_continuous)
		n = append(buf, n, n > 0 ? "," CONTINUOUS : CONTINUOUS);
	if (n > 0 && !jr->opts_empty)
		n = append(buf, n, ",");
	return n;
}

size_t
json_inject_usage(const char *body, size_t len,
    const struct json_request *jr, int continuous, char *out)
{
	char text[JSON_INJECT_EXTRA];
	struct edit e[3], tmp;
	size_t ne = 0, tn = 0, o = 0, from = 0, i, j;

	if (jr->opts_len == 0) {
		/* No stream_options: a new last member of the root. */
		tn = append(text, tn, jr->root_empty ? "" : ",");
		tn = append(text, tn, "\"stream_options\":{" INCLUDE_USAGE);
		tn = append(text, tn, continuous ? "," CONTINUOUS "}" : "}");
		e[ne++] = (struct edit){ jr->root_close, 0, text, tn };
	} else if (!jr->has_stream_options) {
		/* null (or a value no backend accepts): an object in its place,
		 * rather than a second "stream_options" member, which a strict
		 * parser (serde, behind TGI) refuses as a duplicate. */
		tn = append(text, tn, "{" INCLUDE_USAGE);
		tn = append(text, tn, continuous ? "," CONTINUOUS "}" : "}");
		e[ne++] = (struct edit){ jr->opts_open, jr->opts_len, text, tn };
	} else {
		tn = opts_insertion(jr, continuous, text);
		if (tn > 0)
			e[ne++] = (struct edit){ jr->opts_open + 1, 0, text, tn };
		if (jr->has_include_usage && !jr->include_usage)
			e[ne++] = (struct edit){ jr->include_usage_at,
			    jr->include_usage_len, "true", 4 };
		if (continuous && jr->has_continuous && !jr->continuous_usage)
			e[ne++] = (struct edit){ jr->continuous_at,
			    jr->continuous_len, "true", 4 };
	}

	/* In body order (the two values may come either way round). */
	for (i = 1; i < ne; i++)
		for (j = i; j > 0 && e[j - 1].at > e[j].at; j--) {
			tmp = e[j];
			e[j] = e[j - 1];
			e[j - 1] = tmp;
		}
	for (i = 0; i < ne; i++) {
		memcpy(out + o, body + from, e[i].at - from);
		o += e[i].at - from;
		memcpy(out + o, e[i].text, e[i].len);
		o += e[i].len;
		from = e[i].at + e[i].del;
	}
	memcpy(out + o, body + from, len - from);
	return o + len - from;
}

/* ---- usage in responses ------------------------------------------------------ */

/* A token count: a non-negative integer that fits, else -1 (absent). */
static int64_t
count_value(const char *buf, const jsmntok_t *v)
{
	int64_t x = 0;
	int i;

	if (v->type != JSMN_PRIMITIVE || v->end - v->start > 18)
		return -1;
	for (i = v->start; i < v->end; i++) {
		if (!is_digit(buf[i]))
			return -1;
		x = x * 10 + (buf[i] - '0');
	}
	return x;
}

/*
 * The bytes to delete to remove the member whose name is token k: name,
 * value, and one comma next to it — the one before it, or, for the first
 * member, the one after it (none when it is the only member).  validate()
 * has made sure that what surrounds a member is whitespace and ',' or the
 * object's brackets.
 */
static void
member_span(const char *buf, const jsmntok_t *t, int k, size_t *at,
    size_t *len)
{
	size_t from = text_start(&t[k]), to = text_end(&t[k + 1]), i;

	for (i = from; is_ws(buf[i - 1]); i--)
		;
	if (buf[i - 1] == ',') {
		from = i - 1;
	} else {
		for (i = to; is_ws(buf[i]); i++)
			;
		if (buf[i] == ',')
			to = i + 1;
	}
	*at = from;
	*len = to - from;
}

/* A finish reason, as sent, cut to fit. */
static void
copy_reason(const char *buf, const jsmntok_t *v, char *out, size_t cap)
{
	size_t n = string_len(v);

	if (n == 0)
		return;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(out, buf + v->start, n);
	out[n] = '\0';
}

enum { US_PROMPT, US_COMPLETION, US_TOTAL, US_N };
static const char *const count_names[US_N] = {
	[US_PROMPT] = "prompt_tokens",
	[US_COMPLETION] = "completion_tokens",
	[US_TOTAL] = "total_tokens",
};

/* Where generated text is in a choice's delta (a stream) or message (a
 * body): the answer, and the reasoning models produce beside it, which is
 * billed as completion tokens too. */
static const char *const text_names[] = {
	"content", "reasoning_content", "reasoning",
};
#define TEXT_N ((int)(sizeof text_names / sizeof text_names[0]))

enum { CH_DELTA, CH_MESSAGE, CH_TEXT, CH_FINISH, CH_N };
static const char *const choice_names[CH_N] = {
	[CH_DELTA] = "delta",
	[CH_MESSAGE] = "message",
	[CH_TEXT] = "text",		/* /v1/completions */
	[CH_FINISH] = "finish_reason",
};

/* choices[]: text generated in each, finish reason of the first. */
static void
read_choices(const char *buf, const jsmntok_t *t, int n, int v,
    struct json_usage *out)
{
	int c, i, f[CH_N], x[TEXT_N];

	out->has_choices = 1;
	out->choices_empty = t[v].size == 0;
	for (c = v; (c = next_child(t, n, v, c)) >= 0; ) {
		find_members(buf, t, n, c, choice_names, CH_N, f);
		if (f[CH_TEXT] >= 0)
			out->content_bytes += string_len(&t[f[CH_TEXT]]);
		find_members(buf, t, n, f[CH_DELTA] >= 0 ? f[CH_DELTA] :
		    f[CH_MESSAGE], text_names, TEXT_N, x);
		for (i = 0; i < TEXT_N; i++)
			if (x[i] >= 0)
				out->content_bytes += string_len(&t[x[i]]);
		if (c == v + 1 && f[CH_FINISH] >= 0)
			copy_reason(buf, &t[f[CH_FINISH]], out->finish_reason,
			    sizeof out->finish_reason);
	}
}

enum { TG_GENERATED, TG_INPUT, TG_FINISH, TG_N };
static const char *const details_names[TG_N] = {
	[TG_GENERATED] = "generated_tokens",
	[TG_INPUT] = "input_length",
	[TG_FINISH] = "finish_reason",
};

enum { RS_USAGE, RS_CHOICES, RS_ID, RS_DETAILS, RS_TOKEN, RS_N };
static const char *const response_names[RS_N] = {
	[RS_USAGE] = "usage",
	[RS_CHOICES] = "choices",
	[RS_ID] = "id",
	[RS_DETAILS] = "details",	/* TGI /generate_stream, last event */
	[RS_TOKEN] = "token",		/* TGI /generate_stream */
};

static void
read_usage(const char *buf, const jsmntok_t *t, int n, struct json_usage *out)
{
	int f[RS_N], u[US_N], d[TG_N], v;

	find_members(buf, t, n, 0, response_names, RS_N, f);
	if ((v = f[RS_USAGE]) >= 0 && t[v].type == JSMN_OBJECT) {
		out->has_usage = 1;
		find_members(buf, t, n, v, count_names, US_N, u);
		out->prompt_tokens = u[US_PROMPT] < 0 ? -1 :
		    count_value(buf, &t[u[US_PROMPT]]);
		out->completion_tokens = u[US_COMPLETION] < 0 ? -1 :
		    count_value(buf, &t[u[US_COMPLETION]]);
		out->total_tokens = u[US_TOTAL] < 0 ? -1 :
		    count_value(buf, &t[u[US_TOTAL]]);
	} else if (v >= 0 && is_null(buf, &t[v])) {
		out->usage_null = 1;
	}
	if (out->has_usage || out->usage_null)
		member_span(buf, t, v - 1, &out->usage_member_at,
		    &out->usage_member_len);
	if ((v = f[RS_CHOICES]) >= 0 && t[v].type == JSMN_ARRAY)
		read_choices(buf, t, n, v, out);
	if ((v = f[RS_ID]) >= 0 && t[v].type == JSMN_STRING &&
	    string_len(&t[v]) == 0)
		out->empty_id = 1;
	find_members(buf, t, n, f[RS_DETAILS], details_names, TG_N, d);
	if (d[TG_GENERATED] >= 0)
		out->generated_tokens = count_value(buf, &t[d[TG_GENERATED]]);
	if (d[TG_INPUT] >= 0)
		out->input_length = count_value(buf, &t[d[TG_INPUT]]);
	if (d[TG_FINISH] >= 0 && out->finish_reason[0] == '\0')
		copy_reason(buf, &t[d[TG_FINISH]], out->finish_reason,
		    sizeof out->finish_reason);
	if ((v = find_member(buf, t, n, f[RS_TOKEN], "text")) >= 0)
		out->content_bytes += string_len(&t[v]);
}

int
json_inspect_usage(const char *buf, size_t len, struct json_usage *out,
    void **scratch, size_t *scratch_bytes)
{
	int n, r;

	memset(out, 0, sizeof *out);
	out->prompt_tokens = out->completion_tokens = out->total_tokens = -1;
	out->generated_tokens = out->input_length = -1;
	r = parse(buf, len, scratch, scratch_bytes, &n);
	if (r == JSON_OK)
		read_usage(buf, *scratch, n, out);
	return r;
}

/* ---- the plain chunk: text and nothing else ----------------------------------- */

/* What a container is, for json_plain_chunk(): only these places count. */
enum plain_place {
	PL_OTHER,
	PL_ROOT,
	PL_CHOICES,     /* the root's "choices" array */
	PL_CHOICE,      /* an object element of it */
	PL_DELTA,       /* a choice's "delta" object */
};

/* What a member name means there. */
enum plain_name {
	PN_OTHER, PN_CHOICES, PN_DELTA, PN_TEXT, PN_CONTENT, PN_REASONING_CONTENT,
	PN_REASONING, PN_FINISH, PN_ID, PN_REFUSE,
};

static enum plain_name
plain_name(const char *s, size_t n)
{
#define IS(name) (memcmp(s, name, sizeof(name) - 1) == 0)
	/* By length first: called for every member name of every event. */
	switch (n) {
	case 2:
		if (IS("id"))
			return PN_ID;
		break;
	case 4:
		if (IS("text"))
			return PN_TEXT;
		break;
	case 5:
		if (IS("delta"))
			return PN_DELTA;
		if (IS("usage") || IS("token"))
			return PN_REFUSE;
		break;
	case 7:
		if (IS("choices"))
			return PN_CHOICES;
		if (IS("content"))
			return PN_CONTENT;
		if (IS("details") || IS("message"))
			return PN_REFUSE;
		break;
	case 9:
		if (IS("reasoning"))
			return PN_REASONING;
		break;
	case 13:
		if (IS("finish_reason"))
			return PN_FINISH;
		break;
	case 17:
		if (IS("reasoning_content"))
			return PN_REASONING_CONTENT;
		break;
	}
#undef IS
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\\')
			return PN_REFUSE;
	return PN_OTHER;
}

/* The closing quote of the string opened at s[open], or len. */
static size_t
string_end(const char *s, size_t open, size_t len)
{
	size_t i = open + 1;
	const char *q;

	while (i < len && (q = memchr(s + i, '"', len - i)) != NULL) {
		size_t at = (size_t)(q - s), k = at;
		while (k > open + 1 && s[k - 1] == '\\')
			k--;
		if ((at - k) % 2 == 0)
			return at;
		i = at + 1;
	}
	return len;
}

/* Whether s[i..len) starts with `word` followed by a byte that ends a value. */
static int
starts_value(const char *s, size_t i, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len - i >= n && memcmp(s + i, word, n) == 0 &&
	    (i + n == len || is_ws(s[i + n]) || s[i + n] == ',' ||
	     s[i + n] == '}' || s[i + n] == ']');
}

/* Byte classes for json_plain_chunk's scan: one table look-up per byte
 * outside strings instead of a chain of comparisons. */
enum { PC_PRIM, PC_WS, PC_QUOTE, PC_OPEN, PC_CLOSE, PC_SEP };
static const unsigned char plain_class[256] = {
	[' '] = PC_WS, ['\t'] = PC_WS, ['\n'] = PC_WS, ['\r'] = PC_WS,
	['"'] = PC_QUOTE, ['{'] = PC_OPEN, ['['] = PC_OPEN,
	['}'] = PC_CLOSE, [']'] = PC_CLOSE, [','] = PC_SEP, [':'] = PC_SEP,
};
#define PCLASS(c) plain_class[(unsigned char)(c)]

/* The depth json_plain_chunk() follows; deeper data takes the full path. */
#define PLAIN_DEPTH 32

/* What the value after a member name is for (json_plain_chunk). */
enum plain_value { PV_NOTHING, PV_TEXT, PV_FINISH };

int
json_plain_chunk(const char *buf, size_t len, struct json_plain *out)
{
	struct {
		unsigned char place;
		char close;
		unsigned char first;    /* PL_CHOICE: the first element */
		unsigned char elements; /* PL_CHOICES: one has been seen */
		unsigned short seen;    /* names met in this object, 1 << name */
	} st[PLAIN_DEPTH];
	int depth = 0;
	enum plain_place next = PL_ROOT;  /* what the coming container is */
	enum plain_value value = PV_NOTHING;
	size_t i = 0;

	out->content_bytes = 0;
	out->finish_reason[0] = '\0';
	while (i < len && is_ws(buf[i]))
		i++;
	if (i == len || buf[i] != '{')
		return 0;
	while (i < len) {
		char ch = buf[i];
		if (ch == '"') {
			size_t end = string_end(buf, i, len), j;
			if (end == len)
				return 0;
			for (j = end + 1; j < len && PCLASS(buf[j]) == PC_WS; j++)
				;
			if (j == len || buf[j] != ':') {        /* a value */
				size_t n = end - i - 1;
				if (value == PV_TEXT) {
					out->content_bytes += n;
				} else if (value == PV_FINISH && n > 0) {
					/* As sent, cut to fit (copy_reason). */
					if (n > sizeof out->finish_reason - 1)
						n = sizeof out->finish_reason - 1;
					memcpy(out->finish_reason, buf + i + 1, n);
					out->finish_reason[n] = '\0';
				}
				if (depth > 0 && st[depth - 1].place == PL_CHOICES)
					st[depth - 1].elements = 1;
				value = PV_NOTHING;
				next = PL_OTHER;
				i = end + 1;
				continue;
			}
			/* A member name: what its value is, there. */
			if (depth == 0 || st[depth - 1].close != '}')
				return 0;
			enum plain_name nm = plain_name(buf + i + 1, end - i - 1);
			unsigned place = st[depth - 1].place;
			for (j++; j < len && PCLASS(buf[j]) == PC_WS; j++)
				;
			if (nm == PN_REFUSE ||
			    (nm == PN_ID && starts_value(buf, j, len, "\"\"")))
				return 0;
			next = PL_OTHER;
			value = PV_NOTHING;
			if ((place == PL_ROOT && nm == PN_CHOICES) ||
			    (place == PL_CHOICE && (nm == PN_DELTA || nm == PN_TEXT ||
			     (nm == PN_FINISH && st[depth - 1].first))) ||
			    (place == PL_DELTA && (nm == PN_CONTENT ||
			     nm == PN_REASONING_CONTENT || nm == PN_REASONING))) {
				/* json_inspect_usage() reads the last of repeated
				 * members: leave those to it. */
				if (st[depth - 1].seen & (1u << nm))
					return 0;
				st[depth - 1].seen |= (unsigned short)(1u << nm);
				if (nm == PN_CHOICES)
					next = PL_CHOICES;
				else if (nm == PN_DELTA)
					next = PL_DELTA;
				else if (nm == PN_FINISH)
					value = PV_FINISH;
				else
					value = PV_TEXT;
			}
			i = j;
			continue;
		}
		if (ch == '{' || ch == '[') {
			if (depth == PLAIN_DEPTH)
				return 0;
			enum plain_place place = next;
			int first = 0;
			if (depth > 0 && st[depth - 1].place == PL_CHOICES) {
				if (ch == '{') {
					place = PL_CHOICE;
					first = !st[depth - 1].elements;
				}
				st[depth - 1].elements = 1;
			}
			if ((place == PL_CHOICES && ch != '[') ||
			    ((place == PL_DELTA || place == PL_ROOT) && ch != '{'))
				place = PL_OTHER;
			st[depth].place = (unsigned char)place;
			st[depth].close = ch == '{' ? '}' : ']';
			st[depth].first = (unsigned char)first;
			st[depth].elements = 0;
			st[depth].seen = 0;
			depth++;
			next = PL_OTHER;
			value = PV_NOTHING;
			i++;
			continue;
		}
		if (ch == '}' || ch == ']') {
			if (depth == 0 || st[depth - 1].close != ch)
				return 0;
			if (--depth == 0) {
				for (i++; i < len && is_ws(buf[i]); i++)
					;
				return i == len;
			}
			i++;
			continue;
		}
		if (PCLASS(ch) == PC_PRIM) {
			/* A number or a literal: the pending value is not text. */
			if (depth > 0 && st[depth - 1].place == PL_CHOICES)
				st[depth - 1].elements = 1;
			next = PL_OTHER;
			value = PV_NOTHING;
			while (i + 1 < len && PCLASS(buf[i + 1]) == PC_PRIM)
				i++;
		}
		i++;
	}
	return 0;
}

/* ---- the usage chunk: counts and nothing else -------------------------------- */

/* The nesting json_usage_chunk() follows, and the values it reads: far below
 * CAP_JSON_DEPTH and CAP_JSON_TOKENS, so what it accepts the full parse
 * never refuses as too big. */
#define QUICK_DEPTH 4
#define QUICK_VALUES 256

/* A strict reader of a subset of JSON: no escapes, shallow, small. */
struct quick {
	const char *s;
	size_t len;
	size_t i;
	int values;
};

static void
quick_ws(struct quick *q)
{
	while (q->i < q->len && is_ws(q->s[q->i]))
		q->i++;
}

/* Whether s[i] is c; if so, steps over it and the whitespace after it. */
static int
quick_take(struct quick *q, char c)
{
	if (q->i >= q->len || q->s[q->i] != c)
		return 0;
	q->i++;
	quick_ws(q);
	return 1;
}

/* The string at s[i] (a quote): 1 and i after it, or 0 when it does not
 * close or holds a backslash (an escape could spell anything) or a control
 * byte (which the full parse refuses). */
static int
quick_string(struct quick *q)
{
	size_t from = q->i + 1, k;
	const char *e;

	if (from > q->len ||
	    (e = memchr(q->s + from, '"', q->len - from)) == NULL)
		return 0;
	for (k = from; q->s + k < e; k++)
		if ((unsigned char)q->s[k] < 0x20 || q->s[k] == '\\')
			return 0;
	q->i = (size_t)(e - q->s) + 1;
	return 1;
}

/*
 * One value at s[i]: its first byte ('"', '{', '[') or 'p' for a number or
 * literal, with i after it; 0 when it is not valid JSON or not in the subset.
 */
static int
quick_value(struct quick *q, int depth)
{
	if (q->i >= q->len || ++q->values > QUICK_VALUES)
		return 0;
	char c = q->s[q->i];
	if (c == '"')
		return quick_string(q) ? '"' : 0;
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		if (depth >= QUICK_DEPTH)
			return 0;
		q->i++;
		quick_ws(q);
		if (q->i < q->len && q->s[q->i] == close) {
			q->i++;
			return c;
		}
		for (;;) {
			if (c == '{' && (q->i >= q->len || q->s[q->i] != '"' ||
			    !quick_string(q) || (quick_ws(q), !quick_take(q, ':'))))
				return 0;
			if (!quick_value(q, depth + 1))
				return 0;
			quick_ws(q);
			if (q->i < q->len && q->s[q->i] == close) {
				q->i++;
				return c;
			}
			if (!quick_take(q, ','))
				return 0;
		}
	}
	size_t from = q->i;
	while (q->i < q->len && !is_ws(q->s[q->i]) && q->s[q->i] != ',' &&
	    q->s[q->i] != '}' && q->s[q->i] != ']')
		q->i++;
	return valid_primitive(q->s + from, q->i - from) ? 'p' : 0;
}

/* count_value() for the primitive s[0..n). */
static int64_t
quick_count(const char *s, size_t n)
{
	int64_t x = 0;

	if (n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	return x;
}

/* The members of the usage object at s[i] (its '{'), as read_usage() reads
 * them: the last of a repeated count wins. */
static int
quick_usage_object(struct quick *q, struct json_usage *out)
{
	q->i++;
	quick_ws(q);
	if (q->i < q->len && q->s[q->i] == '}') {
		q->i++;
		return 1;
	}
	for (;;) {
		size_t name = q->i + 1, v;
		if (q->i >= q->len || q->s[q->i] != '"' || !quick_string(q))
			return 0;
		size_t n = q->i - 1 - name;
		int64_t *to = NULL;
		if (n == 13 && memcmp(q->s + name, "prompt_tokens", 13) == 0)
			to = &out->prompt_tokens;
		else if (n == 17 &&
		    memcmp(q->s + name, "completion_tokens", 17) == 0)
			to = &out->completion_tokens;
		else if (n == 12 && memcmp(q->s + name, "total_tokens", 12) == 0)
			to = &out->total_tokens;
		quick_ws(q);
		if (!quick_take(q, ':'))
			return 0;
		v = q->i;
		int t = quick_value(q, 2);
		if (t == 0)
			return 0;
		if (to != NULL)
			*to = t == 'p' ? quick_count(q->s + v, q->i - v) : -1;
		quick_ws(q);
		if (q->i < q->len && q->s[q->i] == '}') {
			q->i++;
			return 1;
		}
		if (!quick_take(q, ','))
			return 0;
	}
}

/* What a top-level member name is to json_usage_chunk(). */
enum { QN_OTHER, QN_USAGE, QN_CHOICES, QN_ID, QN_REFUSE };

static int
quick_name(const char *s, size_t n)
{
	if (n == 5 && memcmp(s, "usage", 5) == 0)
		return QN_USAGE;
	if (n == 7 && memcmp(s, "choices", 7) == 0)
		return QN_CHOICES;
	if (n == 2 && memcmp(s, "id", 2) == 0)
		return QN_ID;
	if ((n == 7 && memcmp(s, "details", 7) == 0) ||
	    (n == 5 && memcmp(s, "token", 5) == 0))
		return QN_REFUSE;
	return QN_OTHER;
}

int
json_usage_chunk(const char *buf, size_t len, struct json_usage *out)
{
	struct quick q = { buf, len, 0, 0 };
	unsigned seen = 0;
	size_t key_at = 0, value_end = 0;

	memset(out, 0, sizeof *out);
	out->prompt_tokens = out->completion_tokens = out->total_tokens = -1;
	out->generated_tokens = out->input_length = -1;
	quick_ws(&q);
	if (!quick_take(&q, '{'))
		return 0;
	if (q.i < len && buf[q.i] == '}') {
		q.i++;
	} else {
		for (;;) {
			size_t at = q.i, v;
			if (at >= len || buf[at] != '"' || !quick_string(&q))
				return 0;
			int nm = quick_name(buf + at + 1, q.i - at - 2);
			/* The full parse reads the last of a repeated member:
			 * leave those to it, and TGI's members too. */
			if (nm == QN_REFUSE || (nm != QN_OTHER && (seen & (1u << nm))))
				return 0;
			seen |= 1u << nm;
			quick_ws(&q);
			if (!quick_take(&q, ':'))
				return 0;
			v = q.i;
			if (nm == QN_CHOICES && v < len && buf[v] == '[') {
				/* Only the usage chunk's "choices": []. */
				q.i++;
				quick_ws(&q);
				if (!quick_take(&q, ']'))
					return 0;
				out->has_choices = 1;
				out->choices_empty = 1;
			} else if (nm == QN_USAGE && v < len && buf[v] == '{') {
				if (!quick_usage_object(&q, out))
					return 0;
				out->has_usage = 1;
			} else {
				int t = quick_value(&q, 1);
				if (t == 0)
					return 0;
				if (nm == QN_USAGE && t == 'p' && q.i - v == 4 &&
				    memcmp(buf + v, "null", 4) == 0)
					out->usage_null = 1;
				if (nm == QN_ID && t == '"' && q.i - v == 2)
					out->empty_id = 1;
			}
			if (nm == QN_USAGE) {
				key_at = at;
				value_end = q.i;
			}
			quick_ws(&q);
			if (q.i < len && buf[q.i] == '}') {
				q.i++;
				break;
			}
			if (!quick_take(&q, ','))
				return 0;
		}
	}
	quick_ws(&q);
	if (q.i != len)
		return 0;
	if (out->has_usage || out->usage_null) {
		/* member_span(): the comma before it, or else the one after. */
		size_t from = key_at, to = value_end, i;
		for (i = from; is_ws(buf[i - 1]); i--)
			;
		if (buf[i - 1] == ',') {
			from = i - 1;
		} else {
			for (i = to; is_ws(buf[i]); i++)
				;
			if (buf[i] == ',')
				to = i + 1;
		}
		out->usage_member_at = from;
		out->usage_member_len = to - from;
	}
	return 1;
}

/* ---- model lists -------------------------------------------------------------- */

int
json_model_ids(const char *buf, size_t len,
    void (*fn)(void *arg, const char *id, size_t id_len), void *arg,
    void **scratch, size_t *scratch_bytes)
{
	const jsmntok_t *t;
	int n, r, data, c, id, count = 0;

	r = parse(buf, len, scratch, scratch_bytes, &n);
	if (r != JSON_OK)
		return r;
	t = *scratch;
	data = find_member(buf, t, n, 0, "data");
	if (data < 0 || t[data].type != JSMN_ARRAY)
		return JSON_INVALID;
	for (c = data; (c = next_child(t, n, data, c)) >= 0; ) {
		id = find_member(buf, t, n, c, "id");
		if (id < 0 || t[id].type != JSMN_STRING ||
		    string_len(&t[id]) == 0 ||
		    string_len(&t[id]) >= CAP_MODEL_NAME)
			continue;
		fn(arg, buf + t[id].start, string_len(&t[id]));
		count++;
	}
	return count;
}

/* Short escapes for control bytes (RFC 8259 §7); 0: use \u00XX. */
static const char short_escape[0x20] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
};

size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* How many bytes, from s[0] on, form one UTF-8 character: a lead byte and
 * the continuation bytes that follow it.  Malformed input is taken as it
 * comes (a stray byte is a unit of its own): copying it is the contract. */
static size_t
utf8_unit(const unsigned char *s, size_t n)
{
	size_t want, k;

	if (s[0] >= 0xf0 && s[0] < 0xf8)
		want = 3;
	else if (s[0] >= 0xe0 && s[0] < 0xf0)
		want = 2;
	else if (s[0] >= 0xc0 && s[0] < 0xe0)
		want = 1;
	else
		return 1;
	for (k = 1; k <= want && k < n && (s[k] & 0xc0) == 0x80; k++)
		;
	return k;
}

size_t
json_escape(char *out, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < n) {
		char esc[6];
		const char *src = esc;
		size_t len, take = 1;
		unsigned char c = u[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			len = 2;
		} else if (c < 0x20 && short_escape[c] != 0) {
			esc[0] = '\\';
			esc[1] = short_escape[c];
			len = 2;
		} else if (c < 0x20 || c == 0x7f) {
			/* DEL need not be escaped in JSON, but the text may end
			 * up in a log line or on a terminal. */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			len = 6;
		} else {
			/* A whole UTF-8 character or nothing: a cut one would
			 * make the document invalid UTF-8 for the receiver. */
			src = s + i;
			take = len = utf8_unit(u + i, n - i);
		}
		if (len > cap - o)
			break;
		memcpy(out + o, src, len);
		o += len;
		i += take;
	}
	return o;
}
