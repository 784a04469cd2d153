/*
 * sse.c — pure, incremental Server-Sent Events scanner.
 *
 * WHATWG HTML §9.2.6 "Interpreting an event stream": lines end with CRLF, LF
 * or a lone CR, and an empty line dispatches the event.  The scanner only
 * finds where events end; the relay keeps the bytes.  Because it keeps no
 * bytes, all it needs to carry from one read to the next are the few flags in
 * struct sse_scanner, and an event split at any byte is found exactly once.
 */
#include <limits.h>
#include <string.h>

#include "sse.h"

/* The index of the first CR or LF in p[from..n), or n.  Lines are long and
 * terminators few: two memchr() calls beat a loop over every byte. */
static size_t
line_end(const char *p, size_t from, size_t n)
{
	const char *lf = memchr(p + from, '\n', n - from);
	size_t end = lf != NULL ? (size_t)(lf - p) : n;
	const char *cr = memchr(p + from, '\r', end - from);

	return cr != NULL ? (size_t)(cr - p) : end;
}

size_t
sse_scan(struct sse_scanner *s, const char *p, size_t n)
{
	size_t i;

	s->lf_tail = 0;
	if (n == 0)
		return 0;	/* an empty read changes nothing, lf_owed included */

	/*
	 * The previous call reported an event at the CR of its closing CRLF
	 * because that CR was the last byte it had.  The LF, arriving now, is
	 * part of that event's terminator, not an empty line of its own.
	 */
	if (s->lf_owed) {
		s->lf_owed = 0;
		if (p[0] == '\n') {
			s->lf_tail = 1;
			return 1;
		}
	}

	for (i = 0; i < n; i++) {
		char c = p[i];

		/* The LF of a CRLF whose CR already ended a line. */
		if (c == '\n' && s->after_cr) {
			s->after_cr = 0;
			continue;
		}
		s->after_cr = 0;

		if (c != '\r' && c != '\n') {
			/* The rest of the line changes nothing but this: go
			 * straight to its terminator. */
			s->in_line = 1;
			i = line_end(p, i + 1, n) - 1;
			continue;
		}

		/* A terminator ending a non-empty line: the event goes on. */
		if (s->in_line) {
			s->in_line = 0;
			s->after_cr = (c == '\r');
			continue;
		}

		/*
		 * A terminator ending an empty line: the event is complete (an
		 * empty line with no fields before it is an "event" too, so
		 * that every byte reaches the client).
		 */
		if (c == '\n')
			return i + 1;
		if (i + 1 < n)
			return p[i + 1] == '\n' ? i + 2 : i + 1;
		/*
		 * A CR that is the last byte we have: whether an LF follows is
		 * unknown until the next read, which may be a long way off (the
		 * backend is generating).  The event is complete either way, so
		 * report it now, and owe the LF to it if one comes.
		 */
		s->lf_owed = 1;
		return i + 1;
	}
	return 0;
}

int
sse_scan_lf_tail(const struct sse_scanner *s)
{
	return s->lf_tail;
}

static int
is_eol(char c)
{
	return c == '\r' || c == '\n';
}

int
sse_next_field(const char *ev, size_t len, size_t *pos, struct sse_field *f)
{
	size_t i = *pos, start, end;
	const char *colon;

	/* Empty lines (and the terminator of the previous line) carry nothing:
	 * skipping every CR and LF here handles LF, CRLF and CR alike. */
	while (i < len && is_eol(ev[i]))
		i++;
	if (i >= len) {
		*pos = len;
		return 0;
	}
	start = i;
	end = line_end(ev, i, len);
	*pos = end;

	colon = memchr(ev + start, ':', end - start);
	f->name = ev + start;
	if (colon == NULL) {
		/* "If a line does not contain a colon, process the field using
		 * the whole line as the field name, and the empty string as the
		 * field value."  value points at the line end, never NULL. */
		f->name_len = end - start;
		f->value = ev + end;
		f->value_len = 0;
		return 1;
	}
	f->name_len = (size_t)(colon - f->name);
	f->value = colon + 1;
	f->value_len = (size_t)(ev + end - f->value);
	/* A comment keeps its text as sent; a field loses one leading space. */
	if (f->name_len > 0 && f->value_len > 0 && f->value[0] == ' ') {
		f->value++;
		f->value_len--;
	}
	return 1;
}

int
sse_event_data(const char *ev, size_t len, const char **data,
    size_t *data_len)
{
	struct sse_field f;
	size_t pos = 0;
	int count = 0;

	*data = NULL;
	*data_len = 0;
	/* The usual event, one "data:" line and its blank line: the same
	 * answer as the walk below, without it (this runs for every event). */
	if (len > 5 && memcmp(ev, "data:", 5) == 0) {
		size_t end = line_end(ev, 5, len), k = end;
		while (k < len && is_eol(ev[k]))
			k++;
		if (k == len) {
			size_t skip = end > 5 && ev[5] == ' ';
			*data = ev + 5 + skip;
			*data_len = end - 5 - skip;
			return 1;
		}
	}
	while (sse_next_field(ev, len, &pos, &f)) {
		if (f.name_len != 4 || memcmp(f.name, "data", 4) != 0)
			continue;
		if (count == 0) {
			*data = f.value;
			*data_len = f.value_len;
		}
		if (count < INT_MAX)
			count++;
	}
	if (count != 1) {
		*data = NULL;
		*data_len = 0;
	}
	return count;
}

int
sse_is_done(const char *data, size_t len)
{
	return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}
