/*
 * fuzz.h — what the fuzz targets share.
 *
 * Each tests/fuzz/fuzz_*.c defines LLVMFuzzerTestOneInput over one pure
 * parser.  Built with clang -fsanitize=fuzzer,address,undefined they are
 * libFuzzer targets (make fuzz); linked with replay_main.c under any compiler
 * they replay a corpus (make fuzz-replay, part of make check).
 *
 * A target asserts properties a caller relies on, not only "does not crash":
 * FUZZ_CHECK aborts with the failed condition, which libFuzzer reports as a
 * crash and saves the input.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: fuzz check failed: %s\n", \
		    __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/*
 * Split points chosen by the input: the first byte seeds a small generator,
 * the rest is the data.  Seed 0 feeds one byte at a time; otherwise pieces
 * are 0..16 bytes mostly, now and then up to 4 KiB, so that both byte-wise
 * and read-sized splits occur.
 */
struct fuzz_splits {
	uint32_t state;
	int bytewise;
};

static inline void
fuzz_splits_init(struct fuzz_splits *s, uint8_t seed)
{
	s->bytewise = (seed == 0);
	s->state = 0x9e3779b9u ^ ((uint32_t)seed * 0x01000193u);
}

/* The length of the next piece, at most left. */
static inline size_t
fuzz_splits_next(struct fuzz_splits *s, size_t left)
{
	uint32_t x = s->state, n;

	if (s->bytewise)
		return left < 1 ? left : 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	s->state = x;
	n = (x & 0xf0) == 0 ? (x >> 8) % 4096 : (x >> 8) % 17;
	return n < left ? n : left;
}

#endif
