/*
 * balancer.h — the backend table, backend selection and backend health.
 *
 * The table is built once from the config; its entries carry the only shared
 * mutable per-backend state: the idle keep-alive connections (upstream.c),
 * requests in flight, health (passive ejection here, active probes in
 * health.c), and the models a backend reported (health.c).
 *
 * Selection itself is a pure function, bal_select(), over a snapshot of the
 * table: unit-tested sequences, no I/O.  Everything that depends on the time
 * takes `now_ms` (io_now_ms() clock) so tests can drive it.
 */
#ifndef LLMPROXY_BALANCER_H
#define LLMPROXY_BALANCER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "config.h"
#include "io.h"

struct tls_trust;

struct backend {
	const struct backend_conf *conf;
	const struct tls_trust *trust;  /* https: its anchors (tlsconf.h), of
	                                   the snapshot the table belongs to */

	/* Idle keep-alive connections, most recently used last (upstream.c):
	 * the whole transport, so a TLS connection keeps its session. */
	pthread_mutex_t idle_lock;
	size_t nidle;
	struct io idle_io[CAP_UPSTREAM_IDLE_PER_BACKEND];
	int64_t idle_since_ms[CAP_UPSTREAM_IDLE_PER_BACKEND];

	_Atomic int in_flight;          /* requests using it now, streams until
	                                   their last byte */

	/* Health.  `healthy` is what the probes (or, without probes, the
	 * passive checks) say; `out_until_ms` keeps it out of rotation until
	 * an ejection's cool-down ends; `busy_until_ms` until the end of a
	 * Retry-After it sent.  Readers use the atomics; changes happen under
	 * health_lock. */
	_Atomic int healthy;            /* 1 at start */
	_Atomic int64_t out_until_ms;   /* 0: not out */
	_Atomic int64_t busy_until_ms;  /* 0: not busy */
	pthread_mutex_t health_lock;
	int fail_streak;                /* failures in a row (requests, probes) */
	int ok_streak;                  /* probe passes in a row */
	int ejections;                  /* ejections in a row: the cool-down
	                                   doubles with each */

	int current_weight;             /* smooth weighted round robin, under
	                                   the table's lock */
	int metrics_id;                 /* metrics_backend() slot, -1: none */

	/* Models it reported on GET /v1/models (health.c), under models_lock. */
	pthread_mutex_t models_lock;
	size_t nreported;
	char (*reported)[CAP_MODEL_NAME];
	int64_t reported_at_ms;         /* 0: never */
};

struct backend_table {
	const struct config *cfg;
	size_t n;
	struct backend *backends;
	pthread_mutex_t lock;           /* selection state */
	unsigned rotate;                /* least_connections tie-breaking */
};

/* Builds the table for cfg (which must outlive it).  Returns 0 or -1. */
int bal_init(struct backend_table *t, const struct config *cfg);

/* Closes idle connections and frees the table. */
void bal_free(struct backend_table *t);

/*
 * After a reload: each backend of `to` that `from` has too (the same name and
 * url) starts with what `from` knows of it — health, ejection and its
 * cool-down, Retry-After, failure streaks, the models it reported — so that a
 * reload neither revives a dead backend nor forgets a slow one.  Requests in
 * flight keep counting on `from`.  Returns how many were carried over.
 */
size_t bal_carry_over(struct backend_table *to, struct backend_table *from);

/* What one request needs of a backend. */
struct bal_request {
	const char *model;              /* as in the request body (JSON string
	                                   contents); NULL: any backend */
	size_t model_len;
	struct backend *const *exclude; /* backends already tried for it */
	size_t nexclude;
};

enum bal_none {
	BAL_NO_MODEL = 1,               /* no backend serves the model: 404 */
	BAL_NONE_AVAILABLE,             /* some would, none may now: 503 */
};

/*
 * Picks a backend for the request by [routing] load_balance among those that
 * serve its model, are available (healthy, not ejected, not busy), are not
 * excluded, and are under their max_connections; counts the request in
 * flight on it.  When only a Retry-After keeps them all out, one of them is
 * picked anyway: a busy backend beats refusing the request.  Returns it, or
 * NULL with *why.
 */
struct backend *bal_acquire(struct backend_table *t,
    const struct bal_request *rq, int64_t now_ms, enum bal_none *why);

/* The request is over (its last byte is gone): no longer in flight. */
void bal_release(struct backend *b);

/* Whether bc serves `model` (a backend without a models list serves all). */
int bal_serves(const struct backend_conf *bc, const char *model, size_t len);

/* Whether b may be picked now (healthy, not ejected, not busy). */
int bal_available(const struct backend *b, int64_t now_ms);

/*
 * Passive health: how a request went on b.  A failure is a connect failure, a
 * reset or close before the response head, a first-token timeout, or (with
 * [health_check] eject_on_5xx) a 5xx.  After unhealthy_threshold failures in
 * a row (with [health_check] eject on) b is out for eject_cooldown, doubled
 * for each ejection in a row (up to CAP_EJECT_COOLDOWN_GROWTH times); with
 * active probes it is also marked unhealthy, so it comes back only through
 * healthy_threshold passing probes after the cool-down; without probes it
 * comes back when the cool-down ends.  A success clears the failure streak.
 * A lone backend (a table of one) is never ejected, as nginx ignores
 * max_fails for a single server: out of rotation, a bad moment of the only
 * backend would fail every request.
 * Returns -1 when this report ejected b, else 0 (the caller logs).
 */
int bal_report(struct backend_table *t, struct backend *b, int success,
    int64_t now_ms);

/* b answered 429 or 503 with Retry-After: no new requests before until_ms. */
void bal_busy_until(struct backend *b, int64_t until_ms);

/*
 * Active health: one probe of b.  Returns +1 when b came back (healthy, and
 * any cool-down over), -1 when it went down (unhealthy_threshold failures in
 * a row), 0 otherwise.
 */
int bal_probe_result(struct backend_table *t, struct backend *b, int ok,
    int64_t now_ms);

/* ---- selection, pure --------------------------------------------------------- */

/* One backend as bal_select() sees it. */
struct bal_slot {
	int weight;                     /* 1..1000 */
	int in_flight;
	int current;                    /* smooth WRR state, in and out */
	int eligible;
};

/*
 * The index of the chosen slot, or -1 when none is eligible.
 * round_robin: smooth weighted round robin, as nginx does it — every eligible
 * slot's current grows by its weight, the largest current wins and gives back
 * the sum of the eligible weights (equal weights: plain turns; 5:3:2 gives
 * 5, 3 and 2 picks in every 10, interleaved).
 * least_connections: the smallest in_flight / weight; ties go to the larger
 * weight, then to the first index at or after `rotate` (mod n).
 */
int bal_select(enum lb_strategy s, struct bal_slot *slots, size_t n,
    unsigned rotate);

#endif
