/*
 * upstream.c — backend connections and the idle keep-alive cache.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caps.h"
#include "tls.h"
#include "upstream.h"

/*
 * A cached connection is usable only while the backend has said nothing on it:
 * readable means it was closed (EOF), reset, or sent stray bytes — none of
 * which a new request can follow.
 */
static int
idle_conn_alive(const struct io *io)
{
	struct pollfd p = { .fd = io->fd, .events = POLLIN };
	return io_pending(io) == 0 && poll(&p, 1, 0) == 0;
}

/* Takes the most recently parked live connection into *io, closing stale
 * ones (outside the lock: a TLS close may send close_notify).  Returns 0,
 * or -1 when there is none. */
static int
take_idle(struct backend *b, struct io *io)
{
	int64_t now = io_now_ms();
	struct io stale[CAP_UPSTREAM_IDLE_PER_BACKEND];
	size_t nstale = 0;
	int found = 0;

	pthread_mutex_lock(&b->idle_lock);
	while (b->nidle > 0 && !found) {
		b->nidle--;
		struct io *cand = &b->idle_io[b->nidle];
		if (now - b->idle_since_ms[b->nidle] < CAP_UPSTREAM_IDLE_MS &&
		    idle_conn_alive(cand)) {
			*io = *cand;
			found = 1;
		} else {
			stale[nstale++] = *cand;
		}
	}
	pthread_mutex_unlock(&b->idle_lock);
	for (size_t i = 0; i < nstale; i++)
		io_close(&stale[i]);
	return found ? 0 : -1;
}

/* Non-blocking connect to one address, waiting until deadline_ms. */
static int
connect_addr(const struct addrinfo *ai, int64_t deadline_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (io_socket_setup(fd) < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;

	struct pollfd p = { .fd = fd, .events = POLLOUT };
	for (;;) {
		int r = poll(&p, 1, io_poll_timeout(deadline_ms));
		if (r > 0)
			break;
		if (r == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (errno != EINTR)
			goto fail;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		goto fail;
	if (err != 0) {
		errno = err;
		goto fail;
	}
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
upstream_connect(struct upstream *u, struct backend *b, int64_t deadline_ms,
    int fresh_only)
{
	const struct backend_conf *bc = b->conf;

	u->backend = b;
	u->reused = 0;
	u->tls_error = 0;

	if (!fresh_only && take_idle(b, &u->io) == 0) {
		u->reused = 1;
		return 0;
	}
	int fd = upstream_dial(bc->host, bc->port, deadline_ms);
	if (fd < 0)
		return -1;
	if (!bc->https) {
		io_init_plain(&u->io, fd);
		return 0;
	}
	if (tls_client_init(&u->io, fd, bc->host, b->trust, bc->tls_verify) < 0) {
		int e = errno;
		close(fd);
		io_init_plain(&u->io, -1);
		errno = e;
		return -1;
	}
	/* The whole handshake now: a certificate that fails is known before
	 * a byte of the request leaves. */
	if (tls_handshake(&u->io, deadline_ms) < 0) {
		int e = errno;
		u->tls_error = tls_last_error(&u->io);
		io_close(&u->io);
		errno = e;
		return -1;
	}
	return 0;
}

int
upstream_dial(const char *host, const char *port, int64_t deadline_ms)
{
	/* Resolved on every new connection, so a DNS change is followed; the
	 * idle cache keeps this off the hot path. */
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		errno = gai == EAI_SYSTEM ? errno : EHOSTUNREACH;
		return -1;
	}
	int fd = -1, err = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = connect_addr(ai, deadline_ms);
		if (fd >= 0)
			break;
		err = errno;
		if (err == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = err;
	return fd;
}

void
upstream_release(struct upstream *u, int keep)
{
	struct backend *b = u->backend;

	if (u->io.fd < 0)
		return;
	if (keep) {
		pthread_mutex_lock(&b->idle_lock);
		if (b->nidle < CAP_UPSTREAM_IDLE_PER_BACKEND) {
			b->idle_io[b->nidle] = u->io;
			b->idle_since_ms[b->nidle] = io_now_ms();
			b->nidle++;
			io_init_plain(&u->io, -1);
		}
		pthread_mutex_unlock(&b->idle_lock);
	}
	io_close(&u->io);
}
