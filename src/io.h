/*
 * io.h — reads and writes with deadlines over a transport.
 *
 * Every socket is non-blocking; waiting is a poll() bounded by a deadline, so
 * code above this reads like blocking I/O but can never hang.  The transport
 * is behind callbacks (plain fd now, TLS later), so the relay never knows
 * whether TLS is in use (DESIGN.md rule 6).
 */
#ifndef LLMPROXY_IO_H
#define LLMPROXY_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct io;

struct io_ops {
	/* Like read(2): > 0 bytes, 0 at end of stream, -1 with errno (EAGAIN
	 * when it would block; io->want then says what to poll for). */
	ssize_t (*read)(struct io *io, void *buf, size_t n);
	ssize_t (*writev)(struct io *io, const struct iovec *iov, int iovcnt);
	/* Pushes out anything the transport buffers (TLS records). */
	int (*flush)(struct io *io, int stall_ms);
	/* Bytes readable now without waiting on the socket (TLS buffers). */
	size_t (*pending)(const struct io *io);
	/* Frees the transport's own state (TLS: close_notify if the socket
	 * takes it at once, keys wiped); the fd is left to io_close(). */
	void (*close)(struct io *io);
};

struct io {
	int fd;
	short want;                 /* POLLIN / POLLOUT after EAGAIN */
	const struct io_ops *ops;
	void *transport;            /* the transport's own state, if any */
};

/* A plain socket transport over fd (already non-blocking). */
void io_init_plain(struct io *io, int fd);

/* Ends a connection of any transport: its state freed, its fd (if >= 0)
 * closed; io is then a plain io with fd -1. */
void io_close(struct io *io);

/* Bytes the transport already holds for reading (0 for a plain socket):
 * whoever polls the fd must look here first, or it waits for bytes that
 * have already arrived. */
size_t io_pending(const struct io *io);

/* Monotonic clock. */
int64_t io_now_ms(void);
int64_t io_now_us(void);

/* The earlier of two deadlines, where < 0 means none. */
int64_t io_earliest(int64_t a, int64_t b);

/* Milliseconds until deadline for poll(): -1 when deadline < 0 (none),
 * 0 when it has passed. */
int io_poll_timeout(int64_t deadline_ms);

/* Polls fd for events until deadline_ms (< 0: none).  Returns 0 when ready
 * (or in error), -1 with errno ETIMEDOUT or poll's error. */
int io_wait(int fd, short events, int64_t deadline_ms);

/*
 * Reads up to n bytes, waiting until deadline_ms (io_now_ms() clock; -1 for
 * none).  Returns bytes read (> 0), 0 at end of stream, or -1 with errno
 * (ETIMEDOUT when the deadline passed).
 */
ssize_t io_read(struct io *io, void *buf, size_t n, int64_t deadline_ms);

/*
 * Writes everything.  Each wait for the peer to accept more is bounded by
 * stall_ms, so a slow but reading client is served and one that stopped
 * reading is dropped.  Returns 0, or -1 with errno (ETIMEDOUT on a stall).
 */
int io_writev_all(struct io *io, struct iovec *iov, int iovcnt, int stall_ms);
int io_write_all(struct io *io, const void *buf, size_t n, int stall_ms);

/* Sets O_NONBLOCK and, for TCP, TCP_NODELAY.  Returns 0 or -1. */
int io_socket_setup(int fd);

#endif
