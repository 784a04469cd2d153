/*
 * fuzz_chunked.c — the incremental chunked decoder (http_chunked_decode).
 *
 * The first input byte chooses split points (fuzz.h); the rest is a body as
 * a backend or a client might send it.  Properties: fed in pieces it decodes
 * exactly as fed at once (same payload, same end, same verdict), since reads
 * split a body anywhere; it never writes more payload than it was given; and
 * a body written by http_chunk_size_line decodes back to its payload.
 */
#include <string.h>

#include "fuzz.h"
#include "http.h"

struct result {
	int failed;             /* -1 seen */
	int done;
	size_t consumed;        /* input bytes up to the end of the message */
	size_t payload;         /* payload bytes, at out[0..payload) */
};

/* Decodes in[0..len) in pieces chosen by sp (NULL: one piece). */
static void
decode(const char *in, size_t len, struct fuzz_splits *sp, char *work,
    char *out, struct result *res)
{
	struct http_chunked d;
	size_t pos = 0;

	memset(&d, 0, sizeof d);
	memset(res, 0, sizeof *res);
	memcpy(work, in, len);
	while (pos < len) {
		size_t piece = sp != NULL ? fuzz_splits_next(sp, len - pos) : len;
		size_t got = 0;
		ssize_t used = http_chunked_decode(&d, work + pos, piece, &got);

		if (used < 0) {
			res->failed = 1;
			return;
		}
		FUZZ_CHECK((size_t)used <= piece);
		FUZZ_CHECK(got <= (size_t)used);
		memcpy(out + res->payload, work + pos, got);
		res->payload += got;
		pos += (size_t)used;
		if ((size_t)used < piece) {
			/* Only the end of the message stops it early. */
			FUZZ_CHECK(http_chunked_done(&d));
			break;
		}
	}
	res->done = http_chunked_done(&d);
	res->consumed = pos;
}

/* n payload bytes framed as one chunk and the last chunk. */
static void
roundtrip(const char *payload, size_t n, char *work)
{
	struct http_chunked d;
	size_t len, got = 0;
	ssize_t used;

	len = http_chunk_size_line(work, n);
	FUZZ_CHECK(len > 2 && len <= 19);
	memcpy(work + len, payload, n);
	len += n;
	memcpy(work + len, "\r\n0\r\n\r\n", 7);
	len += 7;
	memset(&d, 0, sizeof d);
	used = http_chunked_decode(&d, work, len, &got);
	FUZZ_CHECK(used == (ssize_t)len);
	FUZZ_CHECK(http_chunked_done(&d));
	FUZZ_CHECK(got == n && memcmp(work, payload, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_splits sp;
	struct result once, split;
	const char *in;
	char *work, *out1, *out2;

	if (size < 1)
		return 0;
	fuzz_splits_init(&sp, data[0]);
	in = (const char *)data + 1;
	size--;

	work = malloc(size + 32);
	out1 = malloc(size + 1);
	out2 = malloc(size + 1);
	FUZZ_CHECK(work != NULL && out1 != NULL && out2 != NULL);

	decode(in, size, NULL, work, out1, &once);
	decode(in, size, &sp, work, out2, &split);
	FUZZ_CHECK(once.failed == split.failed);
	if (!once.failed) {
		FUZZ_CHECK(once.done == split.done);
		FUZZ_CHECK(once.consumed == split.consumed);
		FUZZ_CHECK(once.payload == split.payload);
		FUZZ_CHECK(memcmp(out1, out2, once.payload) == 0);
		FUZZ_CHECK(once.payload <= once.consumed);
	}

	if (size > 0)	/* a chunk of 0 bytes would be the last one */
		roundtrip(in, size, work);
	free(work);
	free(out1);
	free(out2);
	return 0;
}
