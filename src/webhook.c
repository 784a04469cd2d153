/*
 * webhook.c — usage records to the reporters, off the request path
 * (webhook.h).
 *
 * A request thread appends its record to the spool (spool.c) and moves on:
 * it never waits for the network, and when the spool is full the record is
 * counted and logged as dropped instead of blocking anybody.  One sender
 * thread per reporter follows its own cursor through the spool: it peeks at
 * up to [usage] batch records, POSTs them, and advances the cursor only after
 * a 2xx, so a record leaves the spool when every reporter has acknowledged
 * it.  Anything else — no connection, a timeout, a non-2xx status, a
 * response that is not HTTP — is retried, the same records again, after an
 * exponential backoff with jitter (so many proxies that lost the same webhook
 * do not come back in lockstep), capped at [usage] max_wait.
 *
 * Each sender keeps its connection alive between POSTs when the webhook
 * allows it (httpc.c).  A kept connection the server closed while it sat idle
 * fails before any byte of a response arrives; httpc retries that one case at
 * once on a new connection, and it is not a failure of the webhook.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caps.h"
#include "httpc.h"
#include "io.h"
#include "log.h"
#include "spool.h"
#include "webhook.h"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "dev"
#endif

/* A failing reporter is named in the log at most this often, with the count
 * of attempts since; drops at most once a second.  Enough to see that
 * something is wrong without a line per record. */
#define FAIL_LOG_MS     (10 * 1000)
#define DROP_LOG_MS     1000
/* With spool_fsync = periodic: the background fsync's period. */
#define SYNC_PERIOD_MS  1000
/* Room after the fixed head for "Content-Length: N\r\n\r\n". */
#define CL_FIELD_BYTES  48

struct sender {
	const struct reporter_conf *rc;
	size_t idx;                     /* its reader in the spool */
	pthread_t tid;
	int started;
	int mu_ready;
	_Atomic int exited;

	/* The connection.  fd_mu is its httpc lock, so that webhook_stop()
	 * can end an exchange in progress (httpc_abort). */
	pthread_mutex_t fd_mu;
	struct httpc hc;

	char *head;                     /* the head but for Content-Length,
	                                   with CL_FIELD_BYTES to spare */
	size_t head_len;
	char *body;                     /* '[' + batch records */
	size_t body_cap;

	uint64_t rnd;                   /* xorshift state for the jitter */
	char why[512];                  /* what went wrong, for the log */
	int64_t last_log_ms;
	uint64_t fails_unlogged;
	uint64_t fails_streak;
	int64_t cursor_log_ms;
};

/* [tls] ca_file's anchors, for https reporters (webhook_set_trust). */
static const struct tls_trust *wh_trust;

void
webhook_set_trust(const struct tls_trust *trust)
{
	wh_trust = trust;
}

static struct {
	const struct config *cfg;
	struct spool *spool;            /* NULL once webhook_stop() closed it */
	pthread_rwlock_t spool_lock;    /* submit/stats (read) vs close (write) */
	struct sender *senders;
	size_t n;
	size_t batch;
	int fsync_always;
	int max_wait_ms;

	_Atomic int active;             /* started with reporters */
	_Atomic int stopped;
	_Atomic int draining;           /* webhook_stop() called */
	_Atomic int halt;               /* senders must end now */
	_Atomic int64_t drain_deadline_ms;

	/* Naps, the drain wait and the syncer sleep on cv (monotonic). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t syncer;
	int has_syncer;
	_Atomic int dirty;              /* appended or advanced since a sync */

	_Atomic uint64_t delivered;
	_Atomic uint64_t failures;
	_Atomic uint64_t dropped;
	_Atomic uint64_t drops_unlogged;
	_Atomic int64_t drop_log_ms;
	_Atomic uint64_t final_queued;  /* stats once the spool is closed */
	_Atomic uint64_t final_bytes;
} wh = {
	.spool_lock = PTHREAD_RWLOCK_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.drop_log_ms = -DROP_LOG_MS,
};

/* ---- waiting ------------------------------------------------------------------ */

static void
deadline_ts(int64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

/* Sleeps ms, or less if webhook_stop() halts the senders. */
static void
nap(int64_t ms)
{
	int64_t deadline = io_now_ms() + ms;
	struct timespec ts;

	deadline_ts(deadline, &ts);
	pthread_mutex_lock(&wh.mu);
	while (!wh.halt && io_now_ms() < deadline)
		if (pthread_cond_timedwait(&wh.cv, &wh.mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&wh.mu);
}

/* The wait after the k-th failure in a row: d = 250 ms * 2^(k-1), at most
 * max_wait, then a uniform pick in [d/2, d], so that proxies which lost the
 * same webhook together do not all come back in the same millisecond. */
static int64_t
backoff_ms(struct sender *sd, uint64_t failures)
{
	int64_t d = CAP_USAGE_FIRST_RETRY_MS;

	for (uint64_t i = 1; i < failures && d < wh.max_wait_ms; i++)
		d *= 2;
	if (d > wh.max_wait_ms)
		d = wh.max_wait_ms;
	sd->rnd ^= sd->rnd << 13;
	sd->rnd ^= sd->rnd >> 7;
	sd->rnd ^= sd->rnd << 17;
	return d / 2 + (int64_t)(sd->rnd % (uint64_t)(d / 2 + 1));
}

/* ---- one delivery ------------------------------------------------------------------ */

/*
 * POSTs body once: the whole attempt, connecting included, within the
 * reporter's timeout.  Returns 0 on a 2xx, -1 otherwise (sd->why says why).
 */
static int
deliver(struct sender *sd, const char *body, size_t len)
{
	int timeout = sd->rc->timeout_ms > 0 ? sd->rc->timeout_ms :
	    CAP_WEBHOOK_TIMEOUT_MS;
	int64_t deadline_ms = io_now_ms() + timeout;
	size_t head_len, got;
	int status;

	if (wh.draining)
		deadline_ms = io_earliest(deadline_ms, wh.drain_deadline_ms);
	if (wh.halt)
		return -1;
	head_len = sd->head_len + (size_t)snprintf(sd->head + sd->head_len,
	    CL_FIELD_BYTES, "Content-Length: %zu\r\n\r\n", len);
	/* The status decides, even when the body after it was cut: a 2xx
	 * head is the receiver's acknowledgement. */
	if (httpc_request(&sd->hc, sd->head, head_len, body, len, deadline_ms,
	    &status, NULL, 0, &got) < 0 && status == 0) {
		snprintf(sd->why, sizeof(sd->why), "%s", sd->hc.why);
		return -1;
	}
	if (status >= 200 && status <= 299)
		return 0;
	snprintf(sd->why, sizeof(sd->why), "answered %d", status);
	return -1;
}

/* ---- the sender ------------------------------------------------------------------------ */

static void
note_failure(struct sender *sd)
{
	int64_t now = io_now_ms();

	sd->fails_unlogged++;
	sd->fails_streak++;
	if (sd->last_log_ms != 0 && now - sd->last_log_ms < FAIL_LOG_MS)
		return;
	char url[sizeof(sd->rc->url) + 64];
	/* Not the url as configured: its query may hold a token. */
	log_warnx("usage: reporter %s (%s): %s; will retry (%llu failed "
	    "attempt%s since the last message)", sd->rc->name,
	    log_url(sd->rc->url, url, sizeof(url)), sd->why, (unsigned long long)sd->fails_unlogged,
	    sd->fails_unlogged == 1 ? "" : "s");
	sd->last_log_ms = now;
	sd->fails_unlogged = 0;
}

/* The records were delivered but the cursor could not be saved: after a
 * restart they would be sent again (same request_id).  Said at most every
 * FAIL_LOG_MS, since it repeats with every delivery while the disk is bad. */
static void
note_cursor_failure(struct sender *sd)
{
	int64_t now = io_now_ms();

	if (sd->cursor_log_ms != 0 && now - sd->cursor_log_ms < FAIL_LOG_MS)
		return;
	log_warn("usage: reporter %s: saving its cursor in the spool %s",
	    sd->rc->name, wh.cfg->usage_spool);
	sd->cursor_log_ms = now;
}

static void
note_success(struct sender *sd, size_t n)
{
	wh.delivered += n;
	wh.dirty = 1;
	if (sd->fails_streak > 0)
		log_info("usage: reporter %s: delivering again after %llu "
		    "failed attempt%s", sd->rc->name,
		    (unsigned long long)sd->fails_streak,
		    sd->fails_streak == 1 ? "" : "s");
	sd->fails_streak = 0;
	sd->fails_unlogged = 0;
	sd->last_log_ms = 0;
}

/* Makes the records in body[1..1+len) (each ending in '\n') the POST body:
 * with batch 1 the lone object, otherwise a JSON array.  Returns where the
 * body starts and sets *blen. */
static const char *
frame(struct sender *sd, size_t len, size_t *blen)
{
	char *b = sd->body;

	if (wh.batch == 1) {
		*blen = len - 1;                /* without its '\n' */
		return b + 1;
	}
	b[0] = '[';
	for (size_t i = 1; i < len; i++)
		if (b[i] == '\n')
			b[i] = ',';
	b[len] = ']';                         /* the last '\n' */
	*blen = len + 1;
	return b;
}

static void *
sender_main(void *arg)
{
	struct sender *sd = arg;
	uint64_t failures = 0;

	while (!wh.halt) {
		int pending = spool_wait(wh.spool, sd->idx, -1);
		if (wh.halt || (!pending && wh.draining))
			break;
		if (!pending)
			continue;
		size_t len;
		size_t n = spool_peek(wh.spool, sd->idx, wh.batch, sd->body + 1,
		    sd->body_cap - 1, &len);
		if (n == 0) {
			/* Still pending yet nothing to read: the spool cannot be
			 * read just now.  Do not spin. */
			if (spool_wait(wh.spool, sd->idx, 0))
				nap(CAP_USAGE_FIRST_RETRY_MS);
			continue;
		}
		size_t blen;
		const char *body = frame(sd, len, &blen);
		if (deliver(sd, body, blen) == 0) {
			if (spool_advance(wh.spool, sd->idx, n,
			    wh.fsync_always) < 0)
				note_cursor_failure(sd);
			note_success(sd, n);
			failures = 0;
			continue;
		}
		if (wh.halt)
			break;  /* cut short by webhook_stop(): no failure */
		wh.failures++;
		failures++;
		note_failure(sd);
		nap(backoff_ms(sd, failures));
	}
	httpc_close(&sd->hc);
	pthread_mutex_lock(&wh.mu);
	sd->exited = 1;
	pthread_cond_broadcast(&wh.cv);
	pthread_mutex_unlock(&wh.mu);
	return NULL;
}

/* With spool_fsync = periodic: what was appended or acknowledged reaches the
 * disk within about a second, without a request ever waiting for it. */
static void *
syncer_main(void *arg)
{
	int64_t last_log = 0;

	(void)arg;
	pthread_mutex_lock(&wh.mu);
	while (!wh.halt) {
		struct timespec ts;
		deadline_ts(io_now_ms() + SYNC_PERIOD_MS, &ts);
		pthread_cond_timedwait(&wh.cv, &wh.mu, &ts);
		if (wh.halt)
			break;
		pthread_mutex_unlock(&wh.mu);
		if (atomic_exchange(&wh.dirty, 0) && spool_sync(wh.spool) < 0) {
			int64_t now = io_now_ms();
			wh.dirty = 1;   /* again next time */
			if (last_log == 0 || now - last_log >= FAIL_LOG_MS) {
				log_warn("usage: fsync of the spool %s",
				    wh.cfg->usage_spool);
				last_log = now;
			}
		}
		pthread_mutex_lock(&wh.mu);
	}
	pthread_mutex_unlock(&wh.mu);
	return NULL;
}

/* ---- starting ---------------------------------------------------------------------- */

/* The request head but its Content-Length, the same for every POST. */
static int
build_head(struct sender *sd)
{
	const struct reporter_conf *rc = sd->rc;
	int has_ua = 0, has_ct = 0;
	size_t cap = 256 + CL_FIELD_BYTES + strlen(rc->path) + strlen(rc->host);

	for (size_t i = 0; i < rc->nheaders; i++)
		cap += strlen(rc->headers[i].name) +
		    strlen(rc->headers[i].value) + 4;
	sd->head = malloc(cap);
	if (sd->head == NULL)
		return -1;

	int v6 = strchr(rc->host, ':') != NULL;
	int port80 = strcmp(rc->port, "80") == 0 || rc->port[0] == '\0';
	size_t n = (size_t)snprintf(sd->head, cap,
	    "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n",
	    rc->path[0] != '\0' ? rc->path : "/", v6 ? "[" : "", rc->host,
	    v6 ? "]" : "", port80 ? "" : ":", port80 ? "" : rc->port);
	for (size_t i = 0; i < rc->nheaders; i++) {
		const char *name = rc->headers[i].name;
		/* Framing and routing are ours to say; the rest the user may
		 * override. */
		if (strcasecmp(name, "Host") == 0 ||
		    strcasecmp(name, "Content-Length") == 0 ||
		    strcasecmp(name, "Transfer-Encoding") == 0 ||
		    strcasecmp(name, "Connection") == 0)
			continue;
		has_ua |= strcasecmp(name, "User-Agent") == 0;
		has_ct |= strcasecmp(name, "Content-Type") == 0;
		n += (size_t)snprintf(sd->head + n, cap - n, "%s: %s\r\n", name,
		    rc->headers[i].value);
	}
	if (!has_ua)
		n += (size_t)snprintf(sd->head + n, cap - n,
		    "User-Agent: llmproxy/%s\r\n", LLMPROXY_VERSION);
	if (!has_ct)
		n += (size_t)snprintf(sd->head + n, cap - n,
		    "Content-Type: application/json\r\n");
	sd->head_len = n;
	return 0;
}

static int
sender_init(struct sender *sd, const struct reporter_conf *rc, size_t idx)
{
	sd->rc = rc;
	sd->idx = idx;
	httpc_init(&sd->hc, rc->host, rc->port);
	if (rc->https)
		httpc_tls(&sd->hc, wh_trust, 1);   /* always verified */
	if (pthread_mutex_init(&sd->fd_mu, NULL) != 0)
		return -1;
	sd->mu_ready = 1;
	sd->hc.lock = &sd->fd_mu;
	sd->rnd = (uint64_t)io_now_us() * 2654435761u + idx * 0x9e3779b97f4a7c15u;
	if (sd->rnd == 0)
		sd->rnd = 1;
	sd->body_cap = wh.batch * CAP_RECORD_BYTES + 1;
	sd->body = malloc(sd->body_cap);
	if (sd->body == NULL)
		return -1;
	return build_head(sd);
}

static void
senders_free(void)
{
	for (size_t i = 0; i < wh.n; i++) {
		struct sender *sd = &wh.senders[i];
		free(sd->head);
		free(sd->body);
		if (sd->mu_ready)
			pthread_mutex_destroy(&sd->fd_mu);
	}
	free(wh.senders);
	wh.senders = NULL;
	wh.n = 0;
}

static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CAP_THREAD_STACK);
	int err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Ends every sender and the syncer now and waits for them. */
static void
halt_threads(void)
{
	pthread_mutex_lock(&wh.mu);
	wh.halt = 1;
	pthread_cond_broadcast(&wh.cv);
	pthread_mutex_unlock(&wh.mu);
	spool_wake_all(wh.spool);
	for (size_t i = 0; i < wh.n; i++) {
		struct sender *sd = &wh.senders[i];
		if (!sd->started)
			continue;
		/* An exchange in progress ends at once instead of at its
		 * timeout. */
		httpc_abort(&sd->hc);
	}
	for (size_t i = 0; i < wh.n; i++) {
		if (wh.senders[i].started)
			pthread_join(wh.senders[i].tid, NULL);
		wh.senders[i].started = 0;
	}
	if (wh.has_syncer)
		pthread_join(wh.syncer, NULL);
	wh.has_syncer = 0;
}

static int
open_spool(const struct config *cfg, char *err, size_t errlen)
{
	const char *names[CAP_REPORTERS];
	char e[512];

	for (size_t i = 0; i < cfg->nreporters; i++)
		names[i] = cfg->reporters[i].name;
	if (cfg->usage_spool[0] != '\0') {
		uint64_t max = cfg->usage_spool_max_bytes > 0 ?
		    cfg->usage_spool_max_bytes : CAP_SPOOL_BYTES_DEFAULT;
		wh.spool = spool_open(cfg->usage_spool, max, 0, cfg->nreporters,
		    names, e, sizeof(e));
	} else {
		size_t q = cfg->usage_queue_max > 0 ? cfg->usage_queue_max :
		    CAP_USAGE_QUEUE_DEFAULT;
		wh.spool = spool_open(NULL, (uint64_t)q * CAP_RECORD_BYTES, q,
		    cfg->nreporters, names, e, sizeof(e));
	}
	if (wh.spool == NULL) {
		snprintf(err, errlen, "[usage] %s", e);
		return -1;
	}
	return 0;
}

int
webhook_start(const struct config *cfg, char *err, size_t errlen)
{
	pthread_condattr_t ca;

	if (!cfg->usage_enabled || cfg->nreporters == 0)
		return 0;       /* records are not made; a spool stays as it is */
	if (wh.active || wh.stopped) {
		snprintf(err, errlen, "usage delivery was already started");
		return -1;
	}
	if (cfg->nreporters > CAP_REPORTERS) {
		snprintf(err, errlen, "more than %d usage reporters",
		    CAP_REPORTERS);
		return -1;
	}
	if (pthread_condattr_init(&ca) != 0)
		goto nomem;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&wh.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto nomem;

	wh.cfg = cfg;
	wh.batch = cfg->usage_batch < 1 ? 1 :
	    cfg->usage_batch > CAP_USAGE_BATCH_MAX ? CAP_USAGE_BATCH_MAX :
	    (size_t)cfg->usage_batch;
	wh.max_wait_ms = cfg->usage_max_wait_ms > 0 ? cfg->usage_max_wait_ms :
	    CAP_USAGE_MAX_WAIT_MS;
	wh.fsync_always = cfg->usage_spool_fsync == SPOOL_FSYNC_ALWAYS;
	if (open_spool(cfg, err, errlen) < 0)
		goto fail_cv;

	wh.senders = calloc(cfg->nreporters, sizeof(*wh.senders));
	if (wh.senders == NULL)
		goto fail;
	wh.n = cfg->nreporters;
	for (size_t i = 0; i < wh.n; i++)
		if (sender_init(&wh.senders[i], &cfg->reporters[i], i) < 0)
			goto fail;
	for (size_t i = 0; i < wh.n; i++) {
		struct sender *sd = &wh.senders[i];
		if (start_thread(&sd->tid, sender_main, sd) < 0) {
			snprintf(err, errlen, "usage sender thread: %s",
			    strerror(errno));
			goto fail_threads;
		}
		sd->started = 1;
	}
	if (cfg->usage_spool[0] != '\0' &&
	    cfg->usage_spool_fsync == SPOOL_FSYNC_PERIODIC) {
		if (start_thread(&wh.syncer, syncer_main, NULL) < 0) {
			snprintf(err, errlen, "usage fsync thread: %s",
			    strerror(errno));
			goto fail_threads;
		}
		wh.has_syncer = 1;
	}
	wh.active = 1;
	uint64_t pending = spool_pending(wh.spool);
	if (pending > 0)
		log_info("usage: %llu record%s left in the spool %s from before; "
		    "delivering", (unsigned long long)pending,
		    pending == 1 ? "" : "s", cfg->usage_spool);
	return 0;

fail_threads:
	halt_threads();
	wh.halt = 0;
	goto fail_spool;
nomem:
	snprintf(err, errlen, "usage delivery: out of memory");
	return -1;
fail:
	snprintf(err, errlen, "usage delivery: out of memory");
fail_spool:
	senders_free();
	spool_close(wh.spool);
	wh.spool = NULL;
fail_cv:
	pthread_cond_destroy(&wh.cv);
	return -1;
}

/* ---- the request side ------------------------------------------------------------ */

/* Counts a drop, and says so at most once a second, with how many. */
static void
note_drop(int rc, int err)
{
	int64_t now = io_now_ms();
	int64_t last = wh.drop_log_ms;

	uint64_t total = ++wh.dropped;
	wh.drops_unlogged++;
	if (now - last < DROP_LOG_MS ||
	    !atomic_compare_exchange_strong(&wh.drop_log_ms, &last, now))
		return;
	uint64_t k = atomic_exchange(&wh.drops_unlogged, 0);
	const char *why = rc == SPOOL_FULL ? (wh.cfg->usage_spool[0] != '\0' ?
	    "the spool is full ([usage] spool_max_bytes)" :
	    "the queue is full ([usage] queue_max)") : rc == 1 ?
	    "delivery has stopped" : strerror(err);
	log_warnx("usage: record dropped: %s (%llu since the last message, "
	    "%llu in all)", why, (unsigned long long)k,
	    (unsigned long long)total);
}

int
webhook_submit(const char *json, size_t len)
{
	if (!wh.active)
		return 0;       /* no reporter: nobody to deliver to */
	pthread_rwlock_rdlock(&wh.spool_lock);
	int rc = wh.spool == NULL ? 1 :
	    spool_append(wh.spool, json, len, wh.fsync_always);
	int e = errno;
	pthread_rwlock_unlock(&wh.spool_lock);
	if (rc == SPOOL_OK) {
		wh.dirty = 1;
		return 0;
	}
	note_drop(rc, e);
	return -1;
}

int
webhook_active(void)
{
	return wh.active;
}

/* ---- stopping ------------------------------------------------------------------------ */

static int
all_exited(void)
{
	for (size_t i = 0; i < wh.n; i++)
		if (!wh.senders[i].exited)
			return 0;
	return 1;
}

void
webhook_stop(int grace_ms)
{
	if (!wh.active || wh.stopped)
		return;
	int64_t deadline = io_now_ms() + (grace_ms > 0 ? grace_ms : 0);
	struct timespec ts;

	/* Senders finish what is pending, then leave; past the deadline they
	 * are stopped wherever they are. */
	wh.drain_deadline_ms = deadline;
	wh.draining = 1;
	spool_wake_all(wh.spool);
	deadline_ts(deadline, &ts);
	pthread_mutex_lock(&wh.mu);
	while (!all_exited() && io_now_ms() < deadline)
		if (pthread_cond_timedwait(&wh.cv, &wh.mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&wh.mu);
	halt_threads();

	pthread_rwlock_wrlock(&wh.spool_lock);
	uint64_t k = atomic_exchange(&wh.drops_unlogged, 0);
	if (k > 0)
		log_warnx("usage: %llu more record%s dropped (%llu in all)",
		    (unsigned long long)k, k == 1 ? "" : "s",
		    (unsigned long long)wh.dropped);
	uint64_t pending = spool_pending(wh.spool);
	if (pending > 0 && wh.cfg->usage_spool[0] == '\0') {
		wh.dropped += pending;
		log_warnx("usage: %llu record%s not delivered to every reporter "
		    "lost at exit (no [usage] spool to keep them)",
		    (unsigned long long)pending, pending == 1 ? "" : "s");
		pending = 0;
	} else if (pending > 0) {
		log_info("usage: %llu record%s kept in the spool %s for the next "
		    "start", (unsigned long long)pending, pending == 1 ? "" : "s",
		    wh.cfg->usage_spool);
	}
	wh.final_queued = pending;
	wh.final_bytes = spool_bytes(wh.spool);
	spool_close(wh.spool);          /* syncs the file and the cursors */
	wh.spool = NULL;
	pthread_rwlock_unlock(&wh.spool_lock);
	senders_free();
	wh.stopped = 1;
}

void
webhook_get_stats(struct webhook_stats *out)
{
	out->delivered = wh.delivered;
	out->failures = wh.failures;
	out->dropped = wh.dropped;
	out->queued = wh.final_queued;
	out->spool_bytes = wh.final_bytes;
	/* Only webhook_stop() takes the write side; a scrape during it gets
	 * the last numbers rather than waiting. */
	if (pthread_rwlock_tryrdlock(&wh.spool_lock) == 0) {
		if (wh.spool != NULL) {
			out->queued = spool_pending(wh.spool);
			out->spool_bytes = spool_bytes(wh.spool);
		}
		pthread_rwlock_unlock(&wh.spool_lock);
	}
}
