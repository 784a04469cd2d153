/*
 * sse.h — pure, incremental Server-Sent Events scanner (WHATWG HTML
 * "Server-sent events", §9.2.6 interpreting an event stream).
 *
 * The relay feeds it the de-framed response body as bytes arrive and learns
 * where each event ends, so that every complete event can be written to the
 * client in the same loop iteration in which its last byte arrived.  The
 * scanner holds no bytes (the caller keeps the pending, incomplete event), so
 * an event split across reads at any byte is found exactly once.
 *
 * Lines end with LF, CRLF or a lone CR; an event ends with an empty line.
 */
#ifndef LLMPROXY_SSE_H
#define LLMPROXY_SSE_H

#include <stddef.h>

/* Zero-initialise before the first byte of a stream. */
struct sse_scanner {
	unsigned char in_line;   /* a non-empty line has started */
	unsigned char after_cr;  /* the previous byte was a CR ending a line */
	unsigned char lf_owed;   /* an event ended on a CR that was the last byte
	                            fed; a following LF belongs to that event */
	unsigned char lf_tail;   /* the last result was only that LF */
};

/*
 * Scans the next n bytes of the stream, p[0..n).  Returns how many of them
 * complete the current event (1..n: the event ends with p[ret - 1]), or 0
 * when all n bytes belong to an event that is not complete yet.  Call again
 * with the rest, p + ret, to find the following events.
 *
 * An event whose closing empty line ends with a CR is reported at that CR, not
 * one read later: when the LF of that CRLF then arrives on its own, the next
 * call returns 1 for it and sse_scan_lf_tail() is nonzero, so the caller can
 * treat that byte like the event it closes (forward it, or drop it with it).
 */
size_t sse_scan(struct sse_scanner *s, const char *p, size_t n);

/* Whether the bytes returned by the last sse_scan() call were only the LF
 * completing the CRLF that ended the previous event. */
int sse_scan_lf_tail(const struct sse_scanner *s);

/* One line of a complete event. */
struct sse_field {
	const char *name;        /* "data", "event", "id", "retry", ...; empty
	                            (name_len 0) for a comment line ":..." */
	size_t name_len;
	const char *value;       /* after the colon, one leading space removed;
	                            for a comment, the text after the colon */
	size_t value_len;
};

/*
 * Iterates the lines of one complete event ev[0..len) (as delimited by
 * sse_scan).  Set *pos to 0 before the first call.  Returns 1 and fills *f for
 * each non-empty line, 0 when there are no more.  A line without a colon is a
 * field with an empty value, as the standard says.
 */
int sse_next_field(const char *ev, size_t len, size_t *pos,
    struct sse_field *f);

/*
 * The value of the event's only "data" line.  Returns the number of data lines
 * in the event; when it is 1, *data and *data_len point at that value.
 */
int sse_event_data(const char *ev, size_t len, const char **data,
    size_t *data_len);

/* Whether a data value is the OpenAI end marker "[DONE]". */
int sse_is_done(const char *data, size_t len);

#endif
