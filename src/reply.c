/*
 * reply.c — the proxy's own responses, formatted into the caller's buffer.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "reply.h"

/* OpenAI error types by status, as the OpenAI API and vLLM use them. */
static const struct {
	int status;
	const char *type;
} error_types[] = {
	{ 400, "invalid_request_error" },
	{ 401, "authentication_error" },
	{ 403, "permission_error" },
	{ 404, "not_found_error" },
	{ 405, "invalid_request_error" },
	{ 408, "timeout_error" },
	{ 411, "invalid_request_error" },
	{ 413, "invalid_request_error" },
	{ 414, "invalid_request_error" },
	{ 417, "invalid_request_error" },
	{ 429, "rate_limit_error" },
	{ 431, "invalid_request_error" },
	{ 501, "invalid_request_error" },
	{ 502, "upstream_error" },
	{ 503, "service_unavailable_error" },
	{ 504, "timeout_error" },
	{ 505, "invalid_request_error" },
};

const char *
reply_error_type(int status)
{
	for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]); i++)
		if (error_types[i].status == status)
			return error_types[i].type;
	return status >= 500 ? "server_error" : "invalid_request_error";
}

size_t
reply_error_body(char *out, size_t cap, int status, const char *message,
    const char *code)
{
	char msg[512], codebuf[96];
	size_t mlen = json_escape(msg, sizeof(msg) - 1, message, strlen(message));
	msg[mlen] = '\0';
	if (code != NULL) {
		size_t clen = json_escape(codebuf + 1, sizeof(codebuf) - 3, code,
		    strlen(code));
		codebuf[0] = '"';
		codebuf[clen + 1] = '"';
		codebuf[clen + 2] = '\0';
	} else {
		snprintf(codebuf, sizeof(codebuf), "%d", status);
	}
	int n = snprintf(out, cap,
	    "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":%s}}",
	    msg, reply_error_type(status), codebuf);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* Status line and common fields; returns the length written. */
static size_t
head(char *out, size_t cap, int status, size_t body_len,
    const char *request_id, const char *extra, int flags)
{
	char id[160] = "";

	if (request_id != NULL)
		snprintf(id, sizeof(id), "X-Request-Id: %s\r\n", request_id);
	int n = snprintf(out, cap,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "%s%s%s"
	    "\r\n",
	    status, http_reason(status),
	    body_len, id, extra != NULL ? extra : "",
	    (flags & REPLY_CLOSE) ? "Connection: close\r\n" :
	    (flags & REPLY_KEEP_ALIVE) ? "Connection: keep-alive\r\n" : "");
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static size_t
with_body(char *out, size_t cap, int status, const char *body, size_t blen,
    const char *request_id, const char *extra, int flags)
{
	size_t h = head(out, cap, status, blen, request_id, extra, flags);
	if (h + blen >= cap)
		return 0;
	if (flags & REPLY_NO_BODY)
		return h;
	memcpy(out + h, body, blen);
	return h + blen;
}

size_t
reply_error(char *out, size_t cap, int status, const char *message,
    const char *code, const char *request_id, const char *extra, int flags)
{
	char body[768];
	size_t blen = reply_error_body(body, sizeof(body), status, message, code);
	return with_body(out, cap, status, body, blen, request_id, extra, flags);
}
