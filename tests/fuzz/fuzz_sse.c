/*
 * fuzz_sse.c — the incremental SSE scanner (sse_scan) and the field reader
 * (sse_next_field, sse_event_data).
 *
 * The first input byte chooses split points (fuzz.h); the rest is a stream.
 * Properties: fed in pieces, the scanner finds the same events, ending at the
 * same offsets, as fed at once — counting the lone LF it reports after an
 * event that ended on a CR at a piece's end (sse_scan_lf_tail) as part of
 * that event, as the relay does; every event ends with a line terminator;
 * every field of an event lies inside it and contains no line terminator.
 */
#include <string.h>

#include "fuzz.h"
#include "sse.h"

struct ends {
	size_t *at;             /* offset after each event */
	size_t n;
};

static void
add_end(struct ends *e, size_t end, int lf_tail)
{
	if (lf_tail) {
		/* The LF of the CRLF whose CR closed the previous event. */
		FUZZ_CHECK(e->n > 0 && e->at[e->n - 1] + 1 == end);
		e->at[e->n - 1] = end;
		return;
	}
	e->at[e->n++] = end;
}

/* Scans p[0..len) in pieces chosen by sp (NULL: one piece). */
static void
scan(const char *p, size_t len, struct fuzz_splits *sp, struct ends *e)
{
	struct sse_scanner s;
	size_t pos = 0;

	memset(&s, 0, sizeof s);
	e->n = 0;
	while (pos < len) {
		size_t piece = sp != NULL ? fuzz_splits_next(sp, len - pos) : len;
		size_t q = 0, r;

		do {
			r = sse_scan(&s, p + pos + q, piece - q);
			FUZZ_CHECK(r <= piece - q);
			if (r > 0) {
				q += r;
				add_end(e, pos + q, sse_scan_lf_tail(&s));
			}
		} while (r > 0 && q < piece);
		pos += piece;
	}
}

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void
check_event(const char *ev, size_t len)
{
	struct sse_field f;
	const char *d;
	size_t pos = 0, dl, fields = 0;
	int data_lines = 0;

	FUZZ_CHECK(len > 0 && (ev[len - 1] == '\n' || ev[len - 1] == '\r'));
	while (sse_next_field(ev, len, &pos, &f)) {
		FUZZ_CHECK(pos <= len);
		FUZZ_CHECK(inside(f.name, f.name_len, ev, len));
		FUZZ_CHECK(inside(f.value, f.value_len, ev, len));
		FUZZ_CHECK(memchr(f.name, '\n', f.name_len) == NULL);
		FUZZ_CHECK(memchr(f.name, '\r', f.name_len) == NULL);
		FUZZ_CHECK(memchr(f.name, ':', f.name_len) == NULL);
		FUZZ_CHECK(memchr(f.value, '\n', f.value_len) == NULL);
		FUZZ_CHECK(memchr(f.value, '\r', f.value_len) == NULL);
		if (f.name_len == 4 && memcmp(f.name, "data", 4) == 0)
			data_lines++;
		FUZZ_CHECK(++fields <= len);
	}
	FUZZ_CHECK(sse_event_data(ev, len, &d, &dl) == data_lines);
	if (data_lines == 1)
		FUZZ_CHECK(inside(d, dl, ev, len));
	else
		FUZZ_CHECK(d == NULL && dl == 0);
	(void)sse_is_done(d, dl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_splits sp;
	struct ends once, split;
	const char *p;
	size_t i, start;

	if (size < 1)
		return 0;
	fuzz_splits_init(&sp, data[0]);
	p = (const char *)data + 1;
	size--;

	once.at = malloc((size + 1) * sizeof *once.at);
	split.at = malloc((size + 1) * sizeof *split.at);
	FUZZ_CHECK(once.at != NULL && split.at != NULL);

	scan(p, size, NULL, &once);
	scan(p, size, &sp, &split);
	FUZZ_CHECK(once.n == split.n);
	FUZZ_CHECK(memcmp(once.at, split.at, once.n * sizeof *once.at) == 0);

	for (i = 0, start = 0; i < once.n; i++) {
		FUZZ_CHECK(once.at[i] > start && once.at[i] <= size);
		check_event(p + start, once.at[i] - start);
		start = once.at[i];
	}
	free(once.at);
	free(split.at);
	return 0;
}
