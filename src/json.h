/*
 * json.h — what the proxy needs to know from JSON bodies and events.  The only
 * user of jsmn; nothing is copied out of the caller's buffer.
 */
#ifndef LLMPROXY_JSON_H
#define LLMPROXY_JSON_H

#include <stddef.h>

/* What a /v1/chat/completions or /v1/completions request asks for. */
struct json_request {
	int stream;              /* "stream": true */
	const char *model;       /* the "model" string's contents, escapes not
	                            decoded; NULL when absent or not a string */
	size_t model_len;
	int has_stream_options;  /* "stream_options" is an object */
	int include_usage;       /* "stream_options": {"include_usage": true} */
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

/*
 * Writes s[0..n) as the contents of a JSON string (without the quotes) into
 * out[0..cap), escaping '"', '\\' and control bytes; bytes >= 0x80 are copied
 * (the caller's text is UTF-8).  Returns the length written (<= cap).  When
 * the text does not fit it is cut before the first escape sequence or UTF-8
 * character that would not fit, never in the middle of either.
 */
size_t json_escape(char *out, size_t cap, const char *s, size_t n);

#endif
