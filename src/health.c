/*
 * health.c — active health checks and the models the backends report
 * (health.h).
 *
 * One probe thread asks each backend in turn, every [health_check] interval,
 * for its own health endpoint: vLLM and TGI answer /health with 200 (empty)
 * or 503 (JSON), llama.cpp's /health says 503 while the model loads, Ollama
 * answers on "/" (a per-backend health_path).  Only the status counts, never
 * the body, and never an inference call: a probe must cost the GPU nothing.
 * What a probe says goes to the balancer (bal_probe_result), which owns the
 * thresholds; a backend going down or coming back is logged here.
 *
 * Each backend has its own connection (struct httpc), kept alive between
 * probes, so a probe is one small request on an open socket.  A backend that
 * has no configured models list is also asked, at most once per interval,
 * which models it serves (GET /v1/models): GET /v1/models on the proxy answers
 * from those lists without waiting for the backends.
 *
 * Probes never outlive health_stop(): it wakes the thread from its wait
 * (a condition variable on the monotonic clock) and cuts a probe in progress
 * short (httpc_abort) instead of waiting for its timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caps.h"
#include "health.h"
#include "httpc.h"
#include "io.h"
#include "json.h"
#include "log.h"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "dev"
#endif

/* A GET head: request line (path prefix and path), Host, two more fields. */
#define GET_HEAD_BYTES  (1024 + 512 + 256 + 128 + CAP_BACKEND_KEY_BYTES + 32)

static struct {
	struct backend_table *t;
	pthread_t tid;
	int running;
	_Atomic int stop;

	pthread_mutex_t mu;             /* the wait, with cv */
	pthread_cond_t cv;              /* on CLOCK_MONOTONIC */

	/* The probe thread's: a connection per backend (conn_mu is their
	 * httpc lock, for health_stop), a buffer for /v1/models answers and
	 * JSON token space. */
	pthread_mutex_t conn_mu;
	struct httpc *conns;
	char *buf;
	void *scratch;
	size_t scratch_bytes;
} hs = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.conn_mu = PTHREAD_MUTEX_INITIALIZER,
};

static int
interval_ms(const struct config *cfg)
{
	return cfg->hc_interval_ms > 0 ? cfg->hc_interval_ms :
	    CAP_HEALTH_INTERVAL_MS;
}

static int
timeout_ms(const struct config *cfg)
{
	return cfg->hc_timeout_ms > 0 ? cfg->hc_timeout_ms :
	    CAP_HEALTH_TIMEOUT_MS;
}

/* The path a backend's health is asked on (without its path prefix). */
static const char *
health_path(const struct config *cfg, const struct backend_conf *bc)
{
	if (bc->health_path[0] != '\0')
		return bc->health_path;
	return cfg->hc_path[0] != '\0' ? cfg->hc_path : "/health";
}

/*
 * The head of GET path on backend bc, below its path prefix (the backend
 * lives there: every proxied request path gets it too).  Returns its length,
 * or 0 when it does not fit.
 */
static size_t
get_head(const struct backend_conf *bc, const char *path, char *out,
    size_t cap)
{
	int v6 = strchr(bc->host, ':') != NULL;
	/* The backend's key, if it has one: vLLM's --api-key guards
	 * /v1/models too. */
	int n = snprintf(out, cap, "GET %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
	    "User-Agent: llmproxy/%s\r\nAccept: */*\r\n%s%s%s\r\n",
	    bc->path_prefix, path, v6 ? "[" : "", bc->host, v6 ? "]" : "",
	    bc->port, LLMPROXY_VERSION,
	    bc->api_key[0] != '\0' ? "Authorization: Bearer " : "", bc->api_key,
	    bc->api_key[0] != '\0' ? "\r\n" : "");

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- the models a backend reports ------------------------------------------------ */

/* Adds one id from a /v1/models answer to b->reported (under models_lock):
 * each once, CAP_BACKEND_MODELS at most. */
static void
keep_id(void *arg, const char *id, size_t len)
{
	struct backend *b = arg;
	size_t i;

	if (b->nreported == CAP_BACKEND_MODELS)
		return;
	for (i = 0; i < b->nreported; i++)
		if (strlen(b->reported[i]) == len &&
		    memcmp(b->reported[i], id, len) == 0)
			return;
	memcpy(b->reported[b->nreported], id, len);   /* len < CAP_MODEL_NAME */
	b->reported[b->nreported][len] = '\0';
	b->nreported++;
}

/*
 * Asks b for its models on connection hc (buf: CAP_MODELS_RESPONSE_BYTES) and
 * keeps the ids it lists.  An answer that is not such a list leaves the ids
 * from before; either way b is not asked again before the next interval, so
 * a backend without /v1/models is not asked for every request.
 */
static void
refresh_models(const struct config *cfg, struct backend *b, struct httpc *hc,
    char *buf, void **scratch, size_t *scratch_bytes)
{
	char head[GET_HEAD_BYTES];
	size_t head_len = get_head(b->conf, "/v1/models", head, sizeof(head));
	size_t got = 0, before;
	int status = 0, r = -1;

	if (head_len > 0)
		r = httpc_request(hc, head, head_len, NULL, 0,
		    io_now_ms() + timeout_ms(cfg), &status, buf,
		    CAP_MODELS_RESPONSE_BYTES, &got);
	pthread_mutex_lock(&b->models_lock);
	b->reported_at_ms = io_now_ms();
	if (b->reported == NULL)
		b->reported = calloc(CAP_BACKEND_MODELS,
		    sizeof(*b->reported));
	if (r == 0 && status >= 200 && status <= 299 && b->reported != NULL) {
		/* json_model_ids() passes ids on only once the whole answer
		 * is known to be a valid list: nothing to undo on failure. */
		before = b->nreported;
		b->nreported = 0;
		r = json_model_ids(buf, got, keep_id, b, scratch,
		    scratch_bytes);
		if (r < 0)
			b->nreported = before;
	} else {
		r = -1;
	}
	pthread_mutex_unlock(&b->models_lock);
	if (r < 0)
		log_debug("backend %s: GET /v1/models: %s", b->conf->name,
		    status != 0 ? "not a model list" : hc->why);
}

/* Whether b's reported models are max_age_ms old or older. */
static int
models_stale(struct backend *b, int64_t now, int max_age_ms)
{
	int stale;

	pthread_mutex_lock(&b->models_lock);
	stale = b->reported_at_ms == 0 || now - b->reported_at_ms >= max_age_ms;
	pthread_mutex_unlock(&b->models_lock);
	return stale;
}

/* ---- probes ---------------------------------------------------------------------------- */

static void
probe(struct backend_table *t, size_t i)
{
	const struct config *cfg = t->cfg;
	struct backend *b = &t->backends[i];
	struct httpc *hc = &hs.conns[i];
	const char *path = health_path(cfg, b->conf);
	char head[GET_HEAD_BYTES];
	size_t head_len = get_head(b->conf, path, head, sizeof(head)), got;
	int status = 0, ok, change;

	if (head_len == 0) {
		snprintf(hc->why, sizeof(hc->why), "request head too long");
	} else if (httpc_request(hc, head, head_len, NULL, 0,
	    io_now_ms() + timeout_ms(cfg), &status, NULL, 0, &got) < 0 &&
	    errno == ECANCELED) {
		return;         /* health_stop(): says nothing of b */
	}
	/* The status decides, whatever the body (vLLM's is empty, TGI's 503
	 * JSON) and even when it was cut. */
	ok = cfg->hc_expected_status != 0 ? status == cfg->hc_expected_status :
	    status >= 200 && status <= 299;
	change = bal_probe_result(t, b, ok, io_now_ms());
	/* The path as messages show it: a query may hold a key. */
	char shown[sizeof(cfg->hc_path) + 64];
	if (change != 0 || !ok)
		path = log_url(path, shown, sizeof(shown));
	if (change > 0)
		log_info("backend %s is up", b->conf->name);
	else if (change < 0 && status != 0)
		log_warnx("backend %s is down: %s answered %d", b->conf->name,
		    path, status);
	else if (change < 0)
		log_warnx("backend %s is down: %s: %s", b->conf->name, path,
		    hc->why);
	else if (!ok)
		log_debug("backend %s: probe of %s failed: %s", b->conf->name,
		    path, status != 0 ? "unexpected status" : hc->why);
}

/* One round: every backend in turn, and the models of those that need it. */
static void
probe_round(struct backend_table *t)
{
	for (size_t i = 0; i < t->n && !hs.stop; i++) {
		struct backend *b = &t->backends[i];
		probe(t, i);
		if (hs.stop || b->conf->nmodels > 0)
			continue;
		/* Once a round: "older than half an interval" absorbs the
		 * jitter of the rounds, so that GET /v1/models finds the ids
		 * fresh and never waits for a backend itself. */
		int64_t now = io_now_ms();
		if (bal_available(b, now) &&
		    models_stale(b, now, interval_ms(t->cfg) / 2))
			refresh_models(t->cfg, b, &hs.conns[i], hs.buf,
			    &hs.scratch, &hs.scratch_bytes);
	}
}

static void *
probe_main(void *arg)
{
	struct backend_table *t = arg;
	int64_t next = io_now_ms();

	while (!hs.stop) {
		probe_round(t);
		/* Rounds start an interval apart; one that took longer is
		 * followed at once. */
		next += interval_ms(t->cfg);
		if (next < io_now_ms())
			next = io_now_ms();
		struct timespec ts = { .tv_sec = (time_t)(next / 1000),
		    .tv_nsec = (long)(next % 1000) * 1000000 };
		pthread_mutex_lock(&hs.mu);
		while (!hs.stop && io_now_ms() < next)
			if (pthread_cond_timedwait(&hs.cv, &hs.mu, &ts) ==
			    ETIMEDOUT)
				break;
		pthread_mutex_unlock(&hs.mu);
	}
	return NULL;
}

/* ---- starting and stopping ----------------------------------------------------------- */

static void
free_state(void)
{
	if (hs.conns != NULL)
		for (size_t i = 0; i < hs.t->n; i++)
			httpc_close(&hs.conns[i]);
	free(hs.conns);
	free(hs.buf);
	free(hs.scratch);
	hs.conns = NULL;
	hs.buf = NULL;
	hs.scratch = NULL;
	hs.scratch_bytes = 0;
}

int
health_start(struct backend_table *t)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	int err;

	if (!t->cfg->hc_enabled || t->n == 0)
		return 0;
	if (hs.running) {
		errno = EALREADY;
		return -1;
	}
	hs.t = t;
	hs.stop = 0;
	hs.conns = calloc(t->n, sizeof(*hs.conns));
	hs.buf = malloc(CAP_MODELS_RESPONSE_BYTES);
	if (hs.conns == NULL || hs.buf == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct backend_conf *bc = t->backends[i].conf;

		httpc_init(&hs.conns[i], bc->host, bc->port);
		if (bc->https)
			httpc_tls(&hs.conns[i], t->backends[i].trust,
			    bc->tls_verify);
		hs.conns[i].lock = &hs.conn_mu;
	}
	if ((err = pthread_condattr_init(&ca)) != 0)
		goto fail_err;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&hs.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0)
		goto fail_err;

	/* musl's default stack is 128 KiB, glibc's 8 MiB: say it. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CAP_THREAD_STACK);
	err = pthread_create(&hs.tid, &attr, probe_main, t);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		pthread_cond_destroy(&hs.cv);
		goto fail_err;
	}
	hs.running = 1;
	return 0;

fail_err:
	errno = err;
fail:
	err = errno;
	free_state();
	errno = err;
	return -1;
}

void
health_stop(void)
{
	if (!hs.running)
		return;
	pthread_mutex_lock(&hs.mu);
	hs.stop = 1;
	pthread_cond_broadcast(&hs.cv);
	pthread_mutex_unlock(&hs.mu);
	for (size_t i = 0; i < hs.t->n; i++)
		httpc_abort(&hs.conns[i]);
	pthread_join(hs.tid, NULL);
	pthread_cond_destroy(&hs.cv);
	free_state();
	hs.running = 0;
}

/* ---- GET /v1/models ---------------------------------------------------------------------- */

/* Where an id listed so far is in the answer. */
struct seen {
	size_t at;
	size_t len;
};

/* The answer being written, and the ids in it so far (to list each once). */
struct listing {
	char *out;
	size_t cap;                     /* room for the entries */
	size_t len;
	int full;                       /* an entry did not fit */
	size_t nseen;
	struct seen *seen;
};

#define LIST_OPEN       "{\"object\":\"list\",\"data\":["
#define LIST_CLOSE      "]}"

/* One model, id[0..n) as JSON string contents, owned by the first backend
 * that lists it. */
static void
put_model(struct listing *l, const char *id, size_t n,
    const struct backend *b)
{
	char owner[6 * sizeof(b->conf->name)];
	char entry[6 * CAP_MODEL_NAME + sizeof(owner) + 64];
	size_t i, k, pre;

	for (i = 0; i < l->nseen; i++)
		if (l->seen[i].len == n &&
		    memcmp(l->out + l->seen[i].at, id, n) == 0)
			return;
	k = json_escape(owner, sizeof(owner) - 1, b->conf->name,
	    strlen(b->conf->name));
	owner[k] = '\0';
	/* The id is at `pre` in the entry: the seen list points there. */
	pre = (size_t)snprintf(entry, sizeof(entry), "%s{\"id\":\"",
	    l->nseen > 0 ? "," : "");
	k = pre + (size_t)snprintf(entry + pre, sizeof(entry) - pre, "%.*s\","
	    "\"object\":\"model\",\"created\":0,\"owned_by\":\"%s\"}", (int)n, id,
	    owner);
	if (l->full || k >= sizeof(entry) || k > l->cap - l->len) {
		l->full = 1;
		return;
	}
	memcpy(l->out + l->len, entry, k);
	l->seen[l->nseen++] = (struct seen){ l->len + pre, n };
	l->len += k;
}

size_t
health_models_json(struct backend_table *t, char *out, size_t cap)
{
	const struct config *cfg = t->cfg;
	struct listing l = { .out = out };
	char id[6 * CAP_MODEL_NAME];
	struct httpc hc;
	char *buf = NULL;
	void *scratch = NULL;
	size_t scratch_bytes = 0;

	/* The list's brackets first; the entries get what is left. */
	if (cap < sizeof(LIST_OPEN LIST_CLOSE) - 1)
		return 0;
	l.seen = calloc(t->n * CAP_BACKEND_MODELS + 1, sizeof(*l.seen));
	if (l.seen == NULL)
		return 0;
	memcpy(out, LIST_OPEN, sizeof(LIST_OPEN) - 1);
	l.len = sizeof(LIST_OPEN) - 1;
	l.cap = cap - (sizeof(LIST_CLOSE) - 1);
	for (size_t i = 0; i < t->n; i++) {
		struct backend *b = &t->backends[i];
		const struct backend_conf *bc = b->conf;
		int64_t now = io_now_ms();

		if (!bal_available(b, now))
			continue;
		/* The configured names are plain text; reported ids are
		 * JSON string contents already. */
		for (size_t k = 0; k < bc->nmodels; k++)
			put_model(&l, id, json_escape(id, sizeof(id),
			    bc->models[k], strlen(bc->models[k])), b);
		if (bc->nmodels > 0)
			continue;
		if (models_stale(b, now, interval_ms(cfg)) && (buf != NULL ||
		    (buf = malloc(CAP_MODELS_RESPONSE_BYTES)) != NULL)) {
			httpc_init(&hc, bc->host, bc->port);
			if (bc->https)
				httpc_tls(&hc, b->trust, bc->tls_verify);
			refresh_models(cfg, b, &hc, buf, &scratch,
			    &scratch_bytes);
			httpc_close(&hc);
		}
		pthread_mutex_lock(&b->models_lock);
		for (size_t k = 0; k < b->nreported; k++)
			put_model(&l, b->reported[k], strlen(b->reported[k]),
			    b);
		pthread_mutex_unlock(&b->models_lock);
	}
	memcpy(out + l.len, LIST_CLOSE, sizeof(LIST_CLOSE) - 1);
	free(buf);
	free(scratch);
	free(l.seen);
	return l.full ? 0 : l.len + sizeof(LIST_CLOSE) - 1;
}
