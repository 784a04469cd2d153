/*
 * reply.h — responses the proxy makes itself: the OpenAI error JSON, the SSE
 * error event that ends a broken stream, and small JSON answers.
 *
 * Pure formatting into a caller's buffer; the caller writes it.
 */
#ifndef LLMPROXY_REPLY_H
#define LLMPROXY_REPLY_H

#include <stddef.h>

/* Room a caller should give reply_error (message and id included). */
#define REPLY_MAX 1024

/* Flags for reply_*(). */
#define REPLY_CLOSE        0x1   /* add "Connection: close" */
#define REPLY_KEEP_ALIVE   0x2   /* add "Connection: keep-alive" (an HTTP/1.0
                                    client that asked to keep the connection) */
#define REPLY_NO_BODY      0x4   /* the head alone, Content-Length as for the
                                    body: the answer to HEAD (RFC 9110 §9.3.2) */

/*
 * A whole response: status line, Content-Type: application/json,
 * Content-Length, X-Request-Id (when request_id is not NULL), the header
 * lines in `extra` as they are ("Retry-After: 1\r\n"; or NULL),
 * Connection: close (REPLY_CLOSE) and the body
 * {"error":{"message":"...","type":"...","code":...}}.  `code` is a string
 * code such as "model_not_found", or NULL for the numeric status.  Returns
 * the length written into out (at most cap; cap >= REPLY_MAX fits any
 * message that fits the body).
 */
size_t reply_error(char *out, size_t cap, int status, const char *message,
    const char *code, const char *request_id, const char *extra, int flags);

/* The error JSON alone: {"error":{...}} */
size_t reply_error_body(char *out, size_t cap, int status, const char *message,
    const char *code);

/* The OpenAI error "type" for a status ("invalid_request_error", ...). */
const char *reply_error_type(int status);

#endif
