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
#include "upstream.h"

/*
 * A cached connection is usable only while the backend has said nothing on it:
 * readable means it was closed (EOF), reset, or sent stray bytes — none of
 * which a new request can follow.
 */
static int
idle_conn_alive(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 0;
}

/* Takes the most recently parked live connection, closing stale ones. */
static int
take_idle(struct backend *b)
{
	int64_t now = io_now_ms();
	int fd = -1;

	pthread_mutex_lock(&b->idle_lock);
	while (b->nidle > 0 && fd < 0) {
		b->nidle--;
		int cand = b->idle_fd[b->nidle];
		if (now - b->idle_since_ms[b->nidle] < CAP_UPSTREAM_IDLE_MS &&
		    idle_conn_alive(cand))
			fd = cand;
		else
			close(cand);
	}
	pthread_mutex_unlock(&b->idle_lock);
	return fd;
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
	u->backend = b;
	u->reused = 0;

	int fd = fresh_only ? -1 : take_idle(b);
	if (fd >= 0) {
		u->reused = 1;
		io_init_plain(&u->io, fd);
		return 0;
	}
	fd = upstream_dial(b->conf->host, b->conf->port, deadline_ms);
	if (fd < 0)
		return -1;
	io_init_plain(&u->io, fd);
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
	int fd = u->io.fd;

	u->io.fd = -1;
	if (fd < 0)
		return;
	if (keep) {
		pthread_mutex_lock(&b->idle_lock);
		if (b->nidle < CAP_UPSTREAM_IDLE_PER_BACKEND) {
			b->idle_fd[b->nidle] = fd;
			b->idle_since_ms[b->nidle] = io_now_ms();
			b->nidle++;
			fd = -1;
		}
		pthread_mutex_unlock(&b->idle_lock);
	}
	if (fd >= 0)
		close(fd);
}
