/*
 * tls_bench.c — what TLS costs through llmproxy (tests/bench/tls.sh runs it):
 *
 *   tls_bench TLS_PORT PLAIN_PORT CA_FILE ROUNDS
 *
 * Two llmproxy instances in front of the same mock: one with [server.tls],
 * one plain.  Printed, one line each (microseconds):
 *
 *   handshake  connect + full TLS handshake with the TLS listener, p50 p99
 *              (a new connection each time; BearSSL client, src/tls.c);
 *   ttft       request sent -> first event received on a kept-alive
 *              connection, for the TLS and the plain listener, interleaved
 *              request by request so that machine noise falls on both,
 *              p50 p99 each, and TLS minus plain.
 *
 * A request that fails ends the program with status 1; timings never do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "tls.h"

/* strlen(BODY), checked in main. */
#define BODY_LEN 71

static int
dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((unsigned short)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    io_socket_setup(fd) < 0) {
		perror("tls_bench: connect");
		exit(1);
	}
	return fd;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t
quantile(int64_t *v, int n, double q)
{
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	return v[(int)(q * (n - 1) + 0.5)];
}

#define BODY "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\"," \
    "\"content\":\"hi\"}]}"
#define STR(x) #x
#define XSTR(x) STR(x)
static const char request[] =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
    "Content-Type: application/json\r\nX-Mock-Tokens: 1\r\n"
    "Content-Length: " XSTR(BODY_LEN) "\r\n\r\n" BODY;

/* One streamed request on io: the time to its first event; the rest of the
 * response is read (to its final chunk) before returning. */
static int64_t
ttft_once(struct io *io)
{
	static char buf[65536];
	size_t len = 0;
	int64_t t0 = io_now_us(), first = -1;

	if (io_write_all(io, request, sizeof(request) - 1, 5000) < 0) {
		perror("tls_bench: write");
		exit(1);
	}
	for (;;) {
		ssize_t n = io_read(io, buf + len, sizeof(buf) - 1 - len,
		    io_now_ms() + 5000);
		if (n <= 0) {
			fprintf(stderr, "tls_bench: the response ended early\n");
			exit(1);
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (first < 0 && strstr(buf, "data: ") != NULL)
			first = io_now_us() - t0;
		if (len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0)
			break;
		if (len == sizeof(buf) - 1) {
			fprintf(stderr, "tls_bench: response too large\n");
			exit(1);
		}
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "tls_bench: %.40s\n", buf);
		exit(1);
	}
	return first;
}

int
main(int argc, char **argv)
{
	char err[512];
	struct tls_trust *ta;
	struct io tls_io, plain_io;
	int rounds;

	if (argc != 5) {
		fprintf(stderr, "usage: tls_bench TLS_PORT PLAIN_PORT CA_FILE ROUNDS\n");
		return 2;
	}
	if (strlen(BODY) != BODY_LEN) {
		fprintf(stderr, "tls_bench: BODY_LEN is %zu\n", strlen(BODY));
		return 2;
	}
	int tls_port = atoi(argv[1]), plain_port = atoi(argv[2]);
	rounds = atoi(argv[4]);
	if (rounds < 2)
		rounds = 2;
	ta = tls_trust_load(argv[3], err, sizeof(err));
	if (ta == NULL) {
		fprintf(stderr, "tls_bench: %s\n", err);
		return 1;
	}
	int64_t *hs = calloc((size_t)rounds, sizeof(*hs));
	int64_t *tt = calloc((size_t)rounds, sizeof(*tt));
	int64_t *pt = calloc((size_t)rounds, sizeof(*pt));

	for (int i = 0; i < rounds; i++) {
		int64_t t0 = io_now_us();
		int fd = dial(tls_port);
		struct io io;
		if (tls_client_init(&io, fd, "localhost", ta, 1) < 0 ||
		    tls_handshake(&io, io_now_ms() + 5000) < 0) {
			fprintf(stderr, "tls_bench: handshake: %s\n",
			    tls_error_text(tls_last_error(&io)));
			return 1;
		}
		hs[i] = io_now_us() - t0;
		io_close(&io);
	}

	int tfd = dial(tls_port);
	if (tls_client_init(&tls_io, tfd, "localhost", ta, 1) < 0 ||
	    tls_handshake(&tls_io, io_now_ms() + 5000) < 0) {
		fprintf(stderr, "tls_bench: handshake failed\n");
		return 1;
	}
	io_init_plain(&plain_io, dial(plain_port));
	(void)ttft_once(&tls_io);      /* warm: backend connections parked */
	(void)ttft_once(&plain_io);
	for (int i = 0; i < rounds; i++) {
		if (i & 1) {
			tt[i] = ttft_once(&tls_io);
			pt[i] = ttft_once(&plain_io);
		} else {
			pt[i] = ttft_once(&plain_io);
			tt[i] = ttft_once(&tls_io);
		}
	}
	int64_t hs50 = quantile(hs, rounds, 0.5), hs99 = quantile(hs, rounds, 0.99);
	int64_t t50 = quantile(tt, rounds, 0.5), t99 = quantile(tt, rounds, 0.99);
	int64_t p50 = quantile(pt, rounds, 0.5), p99 = quantile(pt, rounds, 0.99);
	printf("handshake  p50 %lld us  p99 %lld us  (%d new connections)\n",
	    (long long)hs50, (long long)hs99, rounds);
	printf("ttft       tls p50 %lld us p99 %lld us; plain p50 %lld us p99 %lld us; "
	    "TLS adds p50 %lld us p99 %lld us\n", (long long)t50, (long long)t99,
	    (long long)p50, (long long)p99, (long long)(t50 - p50),
	    (long long)(t99 - p99));
	io_close(&tls_io);
	io_close(&plain_io);
	tls_trust_free(ta);
	free(hs);
	free(tt);
	free(pt);
	return 0;
}
