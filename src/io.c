/*
 * io.c — deadline-bounded I/O over non-blocking sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#ifndef IOV_MAX
#define IOV_MAX 16     /* POSIX minimum; callers pass a handful */
#endif

int64_t
io_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
io_now_ms(void)
{
	return io_now_us() / 1000;
}

int64_t
io_earliest(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int
io_poll_timeout(int64_t deadline_ms)
{
	if (deadline_ms < 0)
		return -1;
	int64_t left = deadline_ms - io_now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- plain sockets ---------------------------------------------------------- */

static ssize_t
plain_read(struct io *io, void *buf, size_t n)
{
	ssize_t r = recv(io->fd, buf, n, 0);
	if (r < 0)
		io->want = POLLIN;
	return r;
}

static ssize_t
plain_writev(struct io *io, const struct iovec *iov, int iovcnt)
{
	/* sendmsg rather than writev for MSG_NOSIGNAL: a peer that went away
	 * must give EPIPE, not kill the process with SIGPIPE. */
	struct msghdr msg = { 0 };
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	ssize_t r = sendmsg(io->fd, &msg, MSG_NOSIGNAL);
	if (r < 0)
		io->want = POLLOUT;
	return r;
}

static int
plain_flush(struct io *io, int stall_ms)
{
	(void)io;
	(void)stall_ms;
	return 0;
}

static size_t
plain_pending(const struct io *io)
{
	(void)io;
	return 0;
}

static const struct io_ops plain_ops = {
	.read = plain_read,
	.writev = plain_writev,
	.flush = plain_flush,
	.pending = plain_pending,
	.close = NULL,
};

void
io_init_plain(struct io *io, int fd)
{
	io->fd = fd;
	io->want = 0;
	io->ops = &plain_ops;
	io->transport = NULL;
}

void
io_close(struct io *io)
{
	int fd = io->fd;

	if (io->ops != NULL && io->ops->close != NULL)
		io->ops->close(io);
	if (fd >= 0)
		close(fd);
	io_init_plain(io, -1);
}

size_t
io_pending(const struct io *io)
{
	return io->ops != NULL ? io->ops->pending(io) : 0;
}

int
io_socket_setup(int fd)
{
	int one = 1;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	/* Every event must leave in its own segment at once: no Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* ---- waiting ------------------------------------------------------------------ */

int
io_wait(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int r = poll(&p, 1, io_poll_timeout(deadline_ms));
		if (r > 0)
			return 0;   /* ready, or an error to read */
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* Waits for io->want (POLLIN when unset) until the deadline. */
static int
wait_ready(struct io *io, int64_t deadline_ms)
{
	return io_wait(io->fd, io->want ? io->want : POLLIN, deadline_ms);
}

ssize_t
io_read(struct io *io, void *buf, size_t n, int64_t deadline_ms)
{
	for (;;) {
		ssize_t r = io->ops->read(io, buf, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_ready(io, deadline_ms) < 0)
			return -1;
	}
}

int
io_writev_all(struct io *io, struct iovec *iov, int iovcnt, int stall_ms)
{
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		ssize_t w = io->ops->writev(io, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (wait_ready(io, io_now_ms() + stall_ms) < 0)
				return -1;
			continue;
		}
		size_t done = (size_t)w;
		while (iovcnt > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return io->ops->flush(io, stall_ms);
}

int
io_write_all(struct io *io, const void *buf, size_t n, int stall_ms)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = n };
	return io_writev_all(io, &iov, 1, stall_ms);
}
