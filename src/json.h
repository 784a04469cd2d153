/*
 * json.h — what the proxy needs to know from JSON bodies and events.  The only
 * user of jsmn; nothing is copied out of the caller's buffer.
 */
#ifndef LLMPROXY_JSON_H
#define LLMPROXY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* What a /v1/chat/completions or /v1/completions request asks for. */
struct json_request {
	int stream;              /* "stream": true */
	const char *model;       /* the "model" string's contents, escapes not
	                            decoded; NULL when absent or not a string */
	size_t model_len;
	int has_stream_options;  /* "stream_options" is an object */
	int include_usage;       /* "stream_options": {"include_usage": true} */
	int continuous_usage;    /* stream_options.continuous_usage_stats: true */

	/* Where json_inject_usage() writes (byte offsets into the body), for
	 * the last occurrence of each member, which is the one that counts. */
	size_t root_close;       /* the root object's closing '}' */
	int root_empty;          /* the root object has no members */
	size_t opts_open;        /* stream_options' value: its '{' when
	                            has_stream_options; a value of another type
	                            (null, say) is replaced by an object */
	size_t opts_len;         /* that value's length; 0: no stream_options */
	int opts_empty;          /* stream_options has no members */
	int has_include_usage;   /* stream_options has include_usage, any value */
	size_t include_usage_at; /* its value's bytes */
	size_t include_usage_len;
	int has_continuous;      /* stream_options has continuous_usage_stats */
	size_t continuous_at;    /* its value's bytes */
	size_t continuous_len;

	/* For an estimate when the backend reports nothing: the bytes of the
	 * prompt text — messages[].content (strings, and the "text" of content
	 * parts), "prompt" and "input" (strings or arrays of strings). */
	size_t prompt_bytes;
};

enum {
	JSON_OK = 0,
	JSON_INVALID = -1,       /* not one well-formed JSON object */
	JSON_TOO_BIG = -2,       /* more than CAP_JSON_TOKENS tokens, or
	                            containers nested deeper than
	                            CAP_JSON_DEPTH (json.c) */
	JSON_NOMEM = -3,         /* scratch could not be grown */
};

/*
 * Inspects a request body: it must be exactly one JSON object (whitespace
 * around it allowed).  Only top-level members count ("model" inside a nested
 * object is not the request's model).  *scratch / *scratch_bytes is token
 * space owned by the caller and reused across calls (start with NULL / 0, and
 * free(*scratch) at the end); it is grown as needed, up to CAP_JSON_TOKENS
 * tokens.  Returns JSON_OK and fills *out, or a negative JSON_ code.
 */
int json_inspect_request(const char *body, size_t len, struct json_request *out,
    void **scratch, size_t *scratch_bytes);

/* Room json_inject_usage() may add to a body. */
#define JSON_INJECT_EXTRA 96

/*
 * Rewrites an inspected request body so that a streaming backend reports
 * usage: stream_options.include_usage becomes true, and with `continuous`
 * stream_options.continuous_usage_stats too (vLLM).  The rewrite is minimal:
 * members are inserted (or a value other than true replaced); every other
 * byte stays as it was.  out must hold len + JSON_INJECT_EXTRA bytes.  Returns
 * the new length.
 */
size_t json_inject_usage(const char *body, size_t len,
    const struct json_request *jr, int continuous, char *out);

/* What one SSE event's data, or a response body, says about usage. */
struct json_usage {
	int has_usage;           /* a top-level "usage" object */
	int64_t prompt_tokens;   /* its members; -1 when absent */
	int64_t completion_tokens;
	int64_t total_tokens;
	int usage_null;          /* a top-level "usage": null */
	size_t usage_member_at;  /* has_usage or usage_null: the bytes to delete
	                            to remove the member (key, value and one
	                            comma next to it), leaving valid JSON */
	size_t usage_member_len;
	int has_choices;         /* a top-level "choices" array */
	int choices_empty;       /* ... and it is [] */
	int empty_id;            /* "id": "" (TGI's Messages API) */
	int64_t generated_tokens;/* TGI: details.generated_tokens, -1 absent */
	int64_t input_length;    /* TGI: details.input_length, -1 absent */
	size_t content_bytes;    /* generated text in it: choices[].delta.content,
	                            .text, .message.content (and the reasoning
	                            text beside content), TGI token.text;
	                            length as sent (escapes not decoded) */
	char finish_reason[24];  /* choices[0].finish_reason, TGI
	                            details.finish_reason; "" when none */
};

/*
 * Inspects one JSON object (an event's data, or a response body).  Only
 * top-level members count.  Scratch as for json_inspect_request.  Returns
 * JSON_OK and fills *out (zeroed, counts -1) or a negative JSON_ code.
 */
int json_inspect_usage(const char *buf, size_t len, struct json_usage *out,
    void **scratch, size_t *scratch_bytes);

/* What json_plain_chunk() reads from a plain chunk. */
struct json_plain {
	size_t content_bytes;    /* as json_usage's */
	char finish_reason[24];  /* as json_usage's: choices[0]'s, or "" */
};

/*
 * The cheap look at one SSE event's data, for the chunk that makes up almost
 * every stream: text, perhaps a finish reason, and nothing else the meter
 * acts on.  Returns 1 when the data is one JSON object (brackets matched,
 * strings closed, nothing after it) with no member named "usage",
 * "details", "token" or "message" at any depth, no "id" that is "", no
 * member name with an escape in it (an escape could spell any of those),
 * and no repeated member among those that are read; then *out holds what
 * json_inspect_usage() reports as content_bytes and finish_reason, and
 * everything else it would report is absent.  Returns 0 otherwise: the
 * caller must use json_inspect_usage().  For valid JSON the two agree;
 * unlike it, this does not validate separators, numbers or literals, so
 * malformed data of the right shape may count text that
 * json_inspect_usage() would refuse — an estimate's business only, since
 * such an event is passed on either way.  A fraction of
 * json_inspect_usage()'s work: no tokens, strings skipped with memchr().
 */
int json_plain_chunk(const char *buf, size_t len, struct json_plain *out);

/*
 * The cheap look at the usage chunk (and at any chunk whose top level is
 * flat apart from a "usage" object): returns 1 and fills *out exactly as
 * json_inspect_usage() would with JSON_OK, when the data is one JSON object
 * in a strict subset of JSON — no backslash anywhere, nesting at most 4
 * deep, at most 256 values, "choices" absent or [], no "details" or
 * "token", no repeated "usage", "choices" or "id".  Returns 0 otherwise:
 * the caller must use json_inspect_usage().  Unlike json_plain_chunk() it
 * validates everything it reads (separators, numbers, literals, control
 * bytes), so it never accepts what the full parse refuses.  One pass, no
 * tokens.
 */
int json_usage_chunk(const char *buf, size_t len, struct json_usage *out);

/*
 * The model ids in a GET /v1/models answer, the OpenAI list
 * {"object":"list","data":[{"id":"...",...},...]}: calls fn(arg, id, len)
 * for the "id" string of each element of the top-level "data" array, in
 * order, with the string's contents as sent (escapes not decoded, pointing
 * into buf).  Elements that are not objects, or have no "id" string, or an
 * empty one, or one of CAP_MODEL_NAME bytes or more (it could not be kept
 * whole), are skipped.  fn is called only once all of buf is known to be
 * such a list, so a caller may replace the ids it had as the new ones come.
 * Scratch as for json_inspect_request.  Returns how many ids fn got, or a
 * negative JSON_ code: JSON_INVALID too when buf is an object without a
 * "data" array.
 */
int json_model_ids(const char *buf, size_t len,
    void (*fn)(void *arg, const char *id, size_t id_len), void *arg,
    void **scratch, size_t *scratch_bytes);

/*
 * The length of the valid UTF-8 character at s[0..n) (RFC 3629 section 4:
 * no overlongs, no surrogates, nothing past U+10FFFF), or 0 when the bytes
 * there are not one.  For writers that must emit valid UTF-8 (log lines,
 * Prometheus label values).
 */
size_t json_utf8_len(const unsigned char *s, size_t n);

/*
 * Writes s[0..n) as the contents of a JSON string (without the quotes) into
 * out[0..cap), escaping '"', '\\' and control bytes; bytes >= 0x80 are copied
 * (the caller's text is UTF-8).  Returns the length written (<= cap).  When
 * the text does not fit it is cut before the first escape sequence or UTF-8
 * character that would not fit, never in the middle of either.
 */
size_t json_escape(char *out, size_t cap, const char *s, size_t n);

#endif
