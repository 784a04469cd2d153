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
	const char *w = name;

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

/*
 * Reads the members the proxy acts on.  Only direct members of the object at
 * index obj count (their parent is obj; each key's value is the next token).
 * A repeated member overwrites the earlier one: Python's and JavaScript's
 * parsers keep the last, and the backend is one of them.
 */
static void
read_stream_options(const char *body, const jsmntok_t *t, int n, int obj,
    struct json_request *out)
{
	int i;

	out->has_stream_options = 1;
	out->include_usage = 0;
	for (i = obj + 1; i < n && t[i].start < t[obj].end; i++)
		if (t[i].parent == obj && key_is(body, &t[i], "include_usage"))
			out->include_usage = is_true(body, &t[i + 1]);
}

static void
read_request(const char *body, const jsmntok_t *t, int n,
    struct json_request *out)
{
	int i;

	for (i = 1; i < n; i++) {
		const jsmntok_t *v;

		if (t[i].parent != 0)
			continue;
		v = &t[i + 1];		/* validate(): every key has a value */
		if (key_is(body, &t[i], "stream")) {
			out->stream = is_true(body, v);
		} else if (key_is(body, &t[i], "model")) {
			out->model = v->type == JSMN_STRING ? body + v->start : NULL;
			out->model_len = v->type == JSMN_STRING ?
			    (size_t)(v->end - v->start) : 0;
		} else if (key_is(body, &t[i], "stream_options")) {
			if (v->type == JSMN_OBJECT) {
				read_stream_options(body, t, n, i + 1, out);
			} else {
				out->has_stream_options = 0;
				out->include_usage = 0;
			}
		}
	}
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

int
json_inspect_request(const char *body, size_t len, struct json_request *out,
    void **scratch, size_t *scratch_bytes)
{
	size_t have;
	jsmn_parser parser;
	int n;

	memset(out, 0, sizeof *out);
	/* jsmn keeps offsets in int. */
	if (len > INT_MAX - 1)
		return JSON_TOO_BIG;
	if (too_deep(body, len))
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

	/* Most bodies fit the scratch left by the previous request: one pass.
	 * Otherwise count exactly (jsmn with no tokens), then parse again. */
	jsmn_init(&parser);
	n = jsmn_parse(&parser, body, len, *scratch, (unsigned)have);
	if (n == JSMN_ERROR_NOMEM) {
		jsmn_init(&parser);
		n = jsmn_parse(&parser, body, len, NULL, 0);
		if (n < 0)
			return JSON_INVALID;
		if ((size_t)n > CAP_JSON_TOKENS)
			return JSON_TOO_BIG;
		if (scratch_grow(scratch, scratch_bytes, (size_t)n) < 0)
			return JSON_NOMEM;
		/* The count skips only checks that fail earlier, so it is
		 * never short: no NOMEM a second time. */
		jsmn_init(&parser);
		n = jsmn_parse(&parser, body, len, *scratch, (unsigned)n);
	}
	/* n == 0: empty or all whitespace. */
	if (n <= 0 || !validate(body, len, *scratch, n))
		return JSON_INVALID;
	read_request(body, *scratch, n, out);
	return JSON_OK;
}

/* Short escapes for control bytes (RFC 8259 §7); 0: use \u00XX. */
static const char short_escape[0x20] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
};

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
