/*
 * pool.c — the waiting room and the workers.
 */
#define _GNU_SOURCE     /* accept4, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "reply.h"

/*
 * After a response on a keep-alive connection its worker waits this long for
 * the client's next request before handing the connection to the waiting
 * room.  A client that sends requests back to back (an agent's loop, a batch
 * job) is then served by the thread that served it last, without the waiting
 * room's wake-up and a second thread's; an idle client costs a thread only
 * this moment, during which the thread does not count as busy.  20 ms, not
 * 2: with 32 clients on 2 loaded cores a client's next request often comes
 * later than 2 ms, and each miss costs the round trip through the waiting
 * room (measured: CPU per small request -20%, context switches per request
 * 2.5 -> 2.3; tests/bench, rps).
 */
#ifndef CAP_KEEPALIVE_HOLD_MS
#define CAP_KEEPALIVE_HOLD_MS 20
#endif

/* After accept() fails for want of descriptors (EMFILE, ENFILE) or memory,
 * the listener is not polled for this long. */
#ifndef ACCEPT_PAUSE_MS
#define ACCEPT_PAUSE_MS 100
#endif

/* Where a connection is in the waiting room. */
enum waiting {
	WAIT_REQUEST,   /* for (the rest of) a request head */
	WAIT_LINGER,    /* error reply sent and write side shut: draining */
};

static struct {
	int listen_fd;
	int tls;                    /* listen_fd speaks TLS ([server.tls]) */
	int metrics_fd;             /* [metrics] listen, or -1 */
	int wake[2];                /* workers hand connections back */
	int64_t accept_paused_until;
	int accept_failing;         /* out of descriptors: said once, until an
	                               accept works again */

	/* Owned by the waiting room thread alone. */
	int closing;                /* it has seen `draining` */
	struct conn *waitq_head;    /* complete heads waiting for a worker, */
	struct conn *waitq_tail;    /* oldest first */
	_Atomic int waiters;        /* how many: workers wake the room for them */
	struct conn **parked;
	size_t nparked, cap;
	struct pollfd *pfd;

	_Atomic int nconns;         /* open client connections, anywhere */
	_Atomic int wake_pending;   /* a byte is in the wake pipe, or will be */

	/* Shared with workers, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct conn *jobs_head, *jobs_tail;
	struct conn *returned;      /* back from workers; next state in
	                               c->waiting_state */
	int busy;                   /* requests queued or being served */
	int holding;                /* workers waiting a moment for a next
	                               request (see CAP_KEEPALIVE_HOLD_MS) */
	int nworkers;
	int max_workers;
	int draining;               /* pool_drain() was called */
	pthread_cond_t all_done;    /* busy fell to 0 (CLOCK_MONOTONIC) */
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
};

/* ---- workers ------------------------------------------------------------------ */

/* Wakes the waiting room: one byte in the pipe does for any number of
 * returned connections (see take_returned). */
static void
wake_room(void)
{
	if (!atomic_exchange(&pool.wake_pending, 1))
		(void)!write(pool.wake[1], "", 1);
}

static void
hand_back(struct conn *c, enum conn_next next)
{
	conn_idle(c);
	c->waiting_state = next == CONN_LINGER ? WAIT_LINGER : WAIT_REQUEST;
	pthread_mutex_lock(&pool.lock);
	c->next = pool.returned;
	pool.returned = c;
	pthread_mutex_unlock(&pool.lock);
	wake_room();
}

/*
 * Waits CAP_KEEPALIVE_HOLD_MS for c's next request (see there).  Returns 1
 * when its head is complete and it has a slot (busy counts it), -1 when the
 * client is gone, 0 otherwise: then the connection goes to the waiting room
 * with what it sent so far, as it would have without the wait.
 */
static int
hold(struct conn *c)
{
	int got = 0, r = 0;

	pthread_mutex_lock(&pool.lock);
	if (pool.draining || c->in_len > 0 || pool.holding >= pool.max_workers) {
		pthread_mutex_unlock(&pool.lock);
		return 0;
	}
	pool.holding++;
	pthread_mutex_unlock(&pool.lock);

	/* Bytes a TLS record brought along are there already: no poll. */
	struct pollfd p = { .fd = c->io.fd, .events = POLLIN };
	if (conn_has_input(c) || poll(&p, 1, CAP_KEEPALIVE_HOLD_MS) > 0)
		r = conn_read_head(c);

	pthread_mutex_lock(&pool.lock);
	pool.holding--;
	/* A request waiting in line for a slot goes first. */
	if (r == 1 && !pool.draining && pool.busy < pool.max_workers &&
	    pool.waiters == 0) {
		pool.busy++;
		got = 1;
	}
	pthread_mutex_unlock(&pool.lock);
	return got ? 1 : r < 0 ? -1 : 0;
}

static void *
worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		while (pool.jobs_head == NULL)
			pthread_cond_wait(&pool.work, &pool.lock);
		struct conn *c = pool.jobs_head;
		pool.jobs_head = c->next;
		if (pool.jobs_head == NULL)
			pool.jobs_tail = NULL;
		pthread_mutex_unlock(&pool.lock);

		for (;;) {
			enum conn_next next = conn_serve(c);
			/* The slot is free before the connection can come back
			 * with its next request, or that request could find every
			 * thread busy. */
			pthread_mutex_lock(&pool.lock);
			if (--pool.busy == 0)
				pthread_cond_broadcast(&pool.all_done);
			pthread_mutex_unlock(&pool.lock);
			if (pool.waiters > 0)   /* a request waits for this slot */
				wake_room();
			int h = next == CONN_PARK ? hold(c) : 0;
			if (h == 1)
				continue;       /* its next request, at once */
			if (next == CONN_CLOSE || h < 0) {
				conn_free(c);
				pool.nconns--;
			} else {
				hand_back(c, next);
			}
			break;
		}
		pthread_mutex_lock(&pool.lock);
	}
	return NULL;
}

/* A detached thread with an explicit stack size: musl's default is 128 KiB,
 * glibc's 8 MiB, and neither is a decision we leave to the libc. */
static int
start_thread(void *(*fn)(void *))
{
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CAP_THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&t, &attr, fn, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/*
 * Gives a connection with a complete head to a worker, starting one if every
 * started worker is spoken for.  Returns 0, or -1 when all [server] threads
 * are busy (the caller answers 503).
 */
static int
dispatch(struct conn *c)
{
	int spawn = 0;

	pthread_mutex_lock(&pool.lock);
	if (pool.busy >= pool.max_workers) {
		pthread_mutex_unlock(&pool.lock);
		return -1;
	}
	pool.busy++;
	/* Holding workers are not available to jobs. */
	if (pool.nworkers - pool.holding < pool.busy) {
		pool.nworkers++;
		spawn = 1;
	}
	c->next = NULL;
	if (pool.jobs_tail != NULL)
		pool.jobs_tail->next = c;
	else
		pool.jobs_head = c;
	pool.jobs_tail = c;
	pthread_cond_signal(&pool.work);
	pthread_mutex_unlock(&pool.lock);

	if (spawn && start_thread(worker_main) < 0) {
		log_warn("cannot start a worker thread");
		/* The job stays queued for a running worker, if there is one;
		 * with none it would wait forever, so take it back. */
		pthread_mutex_lock(&pool.lock);
		pool.nworkers--;
		int orphan = pool.nworkers == 0;
		if (orphan) {
			pool.jobs_head = pool.jobs_tail = NULL;
			pool.busy--;
		}
		pthread_mutex_unlock(&pool.lock);
		if (orphan)
			return -1;
	}
	return 0;
}

/* ---- the waiting room --------------------------------------------------------- */

/* pool.pfd: the main listener, the wake-up pipe and the metrics listener,
 * then one slot per parked connection. */
#define FIXED 3

static int
park(struct conn *c)
{
	if (pool.nparked == pool.cap) {
		size_t cap = pool.cap ? pool.cap * 2 : 64;
		struct conn **p = realloc(pool.parked, cap * sizeof(*p));
		struct pollfd *f = realloc(pool.pfd, (cap + FIXED) * sizeof(*f));
		if (p != NULL)
			pool.parked = p;
		if (f != NULL)
			pool.pfd = f;
		if (p == NULL || f == NULL)
			return -1;
		pool.cap = cap;
	}
	pool.parked[pool.nparked++] = c;
	return 0;
}

static void
close_conn(struct conn *c)
{
	conn_free(c);
	pool.nconns--;
}

/* Waits for the next request on c: idle keep-alive, or a head in progress. */
static void
wait_for_request(struct conn *c, int64_t now)
{
	const struct config *cfg = c->srv->cfg;

	c->waiting_state = WAIT_REQUEST;
	c->deadline_ms = c->in_len > 0 ? c->started_ms + cfg->read_timeout_ms :
	    now + cfg->idle_timeout_ms;
	if (park(c) < 0)
		close_conn(c);
}

/*
 * After an error reply: shut our side, then read and drop what the client
 * still sends for a while, so that the reply is not destroyed by the reset a
 * close with unread data would send (nginx's lingering close).
 */
static void
linger(struct conn *c, int64_t now)
{
	shutdown(c->io.fd, SHUT_WR);
	c->waiting_state = WAIT_LINGER;
	c->deadline_ms = now + CAP_LINGER_MS;
	c->drained = 0;
	if (park(c) < 0)
		close_conn(c);
}

static void
refuse(struct conn *c, int status, int64_t now)
{
	conn_reply_now(c, status, NULL, status == 503 ? "Retry-After: 1\r\n" : NULL);
	linger(c, now);
}

/* A head is complete: to a worker; when every thread is busy it waits a
 * moment (CAP_DISPATCH_WAIT_MS) in line, behind any that wait already. */
static void
ready(struct conn *c, int64_t now)
{
	if (pool.waitq_head == NULL && dispatch(c) == 0)
		return;
	c->next = NULL;
	c->deadline_ms = now + CAP_DISPATCH_WAIT_MS;
	if (pool.waitq_tail != NULL)
		pool.waitq_tail->next = c;
	else
		pool.waitq_head = c;
	pool.waitq_tail = c;
	pool.waiters++;
}

/* Requests in line get the slots that came free, oldest first; those whose
 * moment is over get 503. */
static void
serve_waiting(int64_t now)
{
	while (pool.waitq_head != NULL) {
		struct conn *c = pool.waitq_head;
		struct conn *next = c->next;    /* dispatch() relinks c */
		int served = dispatch(c) == 0;
		if (!served && now < c->deadline_ms)
			break;
		pool.waitq_head = next;
		if (pool.waitq_head == NULL)
			pool.waitq_tail = NULL;
		pool.waiters--;
		if (!served)
			refuse(c, 503, now);
	}
}

/* The connection came back from a worker. */
static void
returned(struct conn *c, int64_t now)
{
	int h;

	if (pool.closing && c->waiting_state != WAIT_LINGER)
		close_conn(c);          /* its request is done; no next one */
	else if (c->waiting_state == WAIT_LINGER)
		linger(c, now);
	else if ((h = conn_parse_head(c)) == 1)
		ready(c, now);          /* came whole while its worker held it */
	else if (h > 1)
		refuse(c, h, now);
	else
		wait_for_request(c, now);
}

/* Something happened on a parked connection.  Returns 1 to keep it parked. */
static int
on_parked_event(struct conn *c, int64_t now)
{
	if (c->waiting_state == WAIT_LINGER) {
		char sink[4096];
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 1;
		if (n <= 0 || (c->drained += (size_t)n) > CAP_LINGER_BYTES) {
			close_conn(c);
			return 0;
		}
		return 1;
	}

	int was_idle = c->in_len == 0;
	int r = conn_read_head(c);
	if (r == 0) {
		if (was_idle && c->in_len > 0)
			c->deadline_ms = c->started_ms + c->srv->cfg->read_timeout_ms;
		return 1;
	}
	if (r < 0)
		close_conn(c);
	else if (r == 1)
		ready(c, now);
	else
		refuse(c, r, now);
	return 0;
}

/* A parked connection's time is up.  Returns 1 to keep it parked. */
static int
on_parked_deadline(struct conn *c, int64_t now)
{
	if (c->waiting_state == WAIT_REQUEST && c->in_len > 0) {
		refuse(c, 408, now);     /* a head that never completed */
		return 0;
	}
	close_conn(c);                   /* idle keep-alive, or done lingering */
	return 0;
}

/* Accepts what is waiting on lfd; metrics_only for the metrics listener. */
static void
accept_new(int lfd, int metrics_only, int64_t now)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment
				 * instead of spinning on a listener that stays
				 * readable (the clients wait in the backlog).  Said
				 * once per episode, not ten times a second. */
				if (!pool.accept_failing)
					log_warn("accept (pausing accepts, %d connections "
					    "open)", (int)pool.nconns);
				pool.accept_failing = 1;
				pool.accept_paused_until = now + ACCEPT_PAUSE_MS;
			}
			return;
		}
		if (pool.accept_failing) {
			log_info("accepting connections again");
			pool.accept_failing = 0;
		}
		io_socket_setup(fd);
		/* The metrics listener stays plain: Prometheus scrapes it on
		 * an address of its own. */
		int tls_listener = !metrics_only && pool.tls;
		struct conn *c = NULL;
		if (pool.nconns < CAP_CONNECTIONS)
			c = conn_new(fd, (struct sockaddr *)&ss, tls_listener);
		if (c == NULL && tls_listener) {
			close(fd);      /* a reply in clear would not be read */
			continue;
		}
		if (c == NULL) {
			/* No room for a connection object: answer from the
			 * stack, then close (the client has rarely sent anything
			 * yet, so there is nothing unread to turn the close into
			 * a reset). */
			char buf[REPLY_MAX];
			size_t n = reply_error(buf, sizeof(buf), 503,
			    "too many connections", NULL, NULL, "Retry-After: 1\r\n",
			    REPLY_CLOSE);
			(void)send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			shutdown(fd, SHUT_WR);
			close(fd);
			continue;
		}
		pool.nconns++;
		c->metrics_only = metrics_only;
		c->deadline_ms = now + c->srv->cfg->read_timeout_ms;
		c->waiting_state = WAIT_REQUEST;
		if (park(c) < 0)
			close_conn(c);
	}
}

static void
take_returned(int64_t now)
{
	char sink[256];

	/* The pipe is emptied, then the flag cleared, then the list taken: a
	 * worker that saw the flag set had pushed its connection before, so it
	 * is in this list; one that finds it clear writes a byte that this
	 * drain cannot have eaten. */
	while (read(pool.wake[0], sink, sizeof(sink)) > 0)
		;
	atomic_store(&pool.wake_pending, 0);
	pthread_mutex_lock(&pool.lock);
	struct conn *list = pool.returned;
	pool.returned = NULL;
	pthread_mutex_unlock(&pool.lock);
	while (list != NULL) {
		struct conn *c = list;
		list = c->next;
		returned(c, now);
	}
}

/* Draining: stop accepting, and let go of every connection that is only
 * waiting for a request (one that lingers after an error keeps lingering). */
static void
start_draining(void)
{
	size_t kept = 0;

	pool.closing = 1;
	close(pool.listen_fd);
	pool.listen_fd = -1;
	if (pool.metrics_fd >= 0) {
		close(pool.metrics_fd);
		pool.metrics_fd = -1;
	}
	for (size_t i = 0; i < pool.nparked; i++) {
		struct conn *c = pool.parked[i];
		if (c->waiting_state == WAIT_LINGER)
			pool.parked[kept++] = c;
		else
			close_conn(c);
	}
	pool.nparked = kept;
}

static void *
waiting_room_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		int draining = pool.draining;
		pthread_mutex_unlock(&pool.lock);
		if (draining && !pool.closing)
			start_draining();

		int64_t now = io_now_ms();
		int64_t next_deadline = -1;
		int listening = now >= pool.accept_paused_until;

		pool.pfd[0] = (struct pollfd){ .fd = listening ? pool.listen_fd : -1,
		    .events = POLLIN };
		pool.pfd[1] = (struct pollfd){ .fd = pool.wake[0], .events = POLLIN };
		pool.pfd[2] = (struct pollfd){ .fd = listening ? pool.metrics_fd : -1,
		    .events = POLLIN };
		for (size_t i = 0; i < pool.nparked; i++) {
			struct conn *c = pool.parked[i];
			/* POLLOUT too while a TLS handshake waits to send. */
			pool.pfd[i + FIXED] = (struct pollfd){ .fd = c->io.fd,
			    .events = (short)(POLLIN | (c->io.want & POLLOUT)) };
			if (next_deadline < 0 || c->deadline_ms < next_deadline)
				next_deadline = c->deadline_ms;
			/* Decrypted bytes already held: no waiting at all. */
			if (c->waiting_state == WAIT_REQUEST && conn_has_input(c))
				next_deadline = now;
		}
		if (!listening && (next_deadline < 0 ||
		    pool.accept_paused_until < next_deadline))
			next_deadline = pool.accept_paused_until;
		if (pool.waitq_head != NULL)
			next_deadline = io_earliest(next_deadline,
			    pool.waitq_head->deadline_ms);

		size_t n = pool.nparked;
		if (poll(pool.pfd, n + FIXED, io_poll_timeout(next_deadline)) < 0 &&
		    errno != EINTR) {
			log_warn("poll");
			continue;
		}
		now = io_now_ms();

		/* Parked connections first: their slots are compacted in place,
		 * and new arrivals are appended after them. */
		size_t kept = 0;
		for (size_t i = 0; i < n; i++) {
			struct conn *c = pool.parked[i];
			int stay;
			if (pool.pfd[i + FIXED].revents ||
			    (c->waiting_state == WAIT_REQUEST && conn_has_input(c)))
				stay = on_parked_event(c, now);
			else if (now >= c->deadline_ms)
				stay = on_parked_deadline(c, now);
			else
				stay = 1;
			if (stay)
				pool.parked[kept++] = c;
		}
		/* Anything parked during the loop (lingering refusals) sits at
		 * [n, nparked): keep it after the survivors. */
		if (pool.nparked > n)
			memmove(pool.parked + kept, pool.parked + n,
			    (pool.nparked - n) * sizeof(*pool.parked));
		pool.nparked = kept + (pool.nparked - n);

		if (pool.pfd[1].revents)
			take_returned(now);
		serve_waiting(now);
		if (pool.pfd[0].revents && pool.listen_fd >= 0)
			accept_new(pool.listen_fd, 0, now);
		if (pool.pfd[2].revents && pool.metrics_fd >= 0)
			accept_new(pool.metrics_fd, 1, now);
	}
	return NULL;
}

int
pool_start(int threads, int listen_fd, int tls, int metrics_fd)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.all_done, &ca);
	pthread_condattr_destroy(&ca);
	pool.listen_fd = listen_fd;
	pool.tls = tls;
	pool.metrics_fd = metrics_fd;
	pool.max_workers = threads;
	if (pipe2(pool.wake, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	pool.pfd = calloc(FIXED, sizeof(*pool.pfd));
	if (pool.pfd == NULL)
		return -1;
	return start_thread(waiting_room_main);
}

int
pool_drain(int timeout_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&pool.lock);
	pool.draining = 1;
	pthread_mutex_unlock(&pool.lock);
	(void)!write(pool.wake[1], "", 1);

	pthread_mutex_lock(&pool.lock);
	while (pool.busy > 0 &&
	    pthread_cond_timedwait(&pool.all_done, &pool.lock, &until) == 0)
		;
	int left = pool.busy;
	pthread_mutex_unlock(&pool.lock);
	return left;
}
