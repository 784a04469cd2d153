/*
 * balancer.c — the backend table, backend selection and backend health
 * (balancer.h).
 *
 * Selection is bal_select(), a pure function over a snapshot of the table;
 * bal_acquire() only builds the snapshot under the table's lock, calls it,
 * and writes the round-robin state back.
 *
 * Health, one backend (fields under health_lock; `healthy`, `out_until_ms`
 * and `busy_until_ms` are atomics so the request path reads them without it):
 *
 *   available    healthy && now >= out_until_ms && now >= busy_until_ms
 *   ejected      a passive ejection: out_until_ms = now + cool-down, and
 *                with probes also healthy = 0
 *   probation    ejections > 0: it was ejected and has not served one
 *                request well since it came back
 *
 *   request fails, b available:  fail_streak++; eject when fail_streak
 *                                reaches unhealthy_threshold, or at once
 *                                on probation (see bal_report)
 *   request fails, b not available:  ignored (a request chosen before b
 *                                went out tells nothing new)
 *   request succeeds:            fail_streak = 0; ejections = 0 when b is
 *                                available (probation over)
 *   probe passes:  ok_streak++, fail_streak = 0; an unhealthy b comes back
 *                  when ok_streak >= healthy_threshold and the cool-down
 *                  is over (out_until_ms cleared; ejections kept: only a
 *                  request served well ends probation)
 *   probe fails:   ok_streak = 0, fail_streak++; a healthy b goes down at
 *                  unhealthy_threshold (not an ejection: no cool-down)
 *
 * Without probes `healthy` never changes: an ejected backend comes back by
 * itself when the time passes out_until_ms, and its first request decides.
 *
 * Lock order: the table's lock is never held while taking a health_lock and
 * the other way round; bal_acquire() reads health through the atomics only.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balancer.h"

/* Weights as bal_select() takes them (config.c enforces the same range). */
#define WEIGHT_MIN      1
#define WEIGHT_MAX      1000

/*
 * Smooth weighted round robin keeps every `current` within a few times the
 * sum of the weights (nginx relies on the same).  State beyond this bound
 * can only come from a caller's garbage or an overflow in the making; it is
 * reset to zero, which merely restarts the cycle.  Far below INT_MAX so that
 * adding a weight or subtracting a total (<= CAP_BACKENDS * WEIGHT_MAX) can
 * never overflow.
 */
#define SWRR_LIMIT      (1 << 28)

/* Streak and ejection counters stop here: they are compared with thresholds
 * of a few, and must not overflow on a backend that fails for months. */
#define COUNT_MAX       (INT_MAX / 2)

/* ---- selection, pure ------------------------------------------------------ */

static int
slot_weight(const struct bal_slot *s)
{
	if (s->weight < WEIGHT_MIN)
		return WEIGHT_MIN;
	if (s->weight > WEIGHT_MAX)
		return WEIGHT_MAX;
	return s->weight;
}

/*
 * nginx's ngx_http_upstream_get_peer(), without its effective_weight (our
 * failures are handled by ejection, not by lowering a weight).  Slots that
 * are not eligible are skipped as nginx skips a down peer: their current
 * neither grows nor shrinks, so they resume where they were.  Ties go to the
 * lower index, as in nginx (">" not ">=").
 */
static int
select_swrr(struct bal_slot *slots, size_t n)
{
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		if (slots[i].current > SWRR_LIMIT ||
		    slots[i].current < -SWRR_LIMIT) {
			for (size_t k = 0; k < n; k++)
				slots[k].current = 0;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!slots[i].eligible)
			continue;
		slots[i].current += slot_weight(&slots[i]);
		total += slot_weight(&slots[i]);
		if (best < 0 || slots[i].current > slots[best].current)
			best = (int)i;
	}
	if (best < 0)
		return -1;

	/* Only a table of millions of slots gets below the bound; the next
	 * call then resets the state. */
	int64_t c = (int64_t)slots[best].current - total;
	slots[best].current = c < -SWRR_LIMIT ? -SWRR_LIMIT - 1 : (int)c;
	return best;
}

/*
 * Whether a has fewer requests in flight per unit of weight than b:
 * a.in_flight / a.weight < b.in_flight / b.weight, cross-multiplied in 64
 * bits so that neither a division nor an int overflow can lie.
 */
static int
lc_less(const struct bal_slot *a, const struct bal_slot *b)
{
	return (int64_t)a->in_flight * slot_weight(b) <
	    (int64_t)b->in_flight * slot_weight(a);
}

/*
 * Walking from `rotate` and replacing the best only on a strict improvement
 * gives the tie-break for free: among equals, the first at or after rotate
 * stays.  A caller that moves rotate past each pick spreads idle load in
 * turns instead of piling it on the first backend.
 */
static int
select_lc(const struct bal_slot *slots, size_t n, unsigned rotate)
{
	int best = -1;

	for (size_t k = 0; k < n; k++) {
		size_t i = ((size_t)rotate + k) % n;
		const struct bal_slot *s = &slots[i];

		if (!s->eligible)
			continue;
		if (best < 0 || lc_less(s, &slots[best]) ||
		    (!lc_less(&slots[best], s) &&
		    slot_weight(s) > slot_weight(&slots[best])))
			best = (int)i;
	}
	return best;
}

int
bal_select(enum lb_strategy s, struct bal_slot *slots, size_t n,
    unsigned rotate)
{
	/* The index must fit the int returned. */
	if (n == 0 || n > INT_MAX)
		return -1;
	switch (s) {
	case LB_LEAST_CONNECTIONS:
		return select_lc(slots, n, rotate);
	case LB_ROUND_ROBIN:
	default:
		return select_swrr(slots, n);
	}
}

/* ---- the table ------------------------------------------------------------- */

static int
backend_init(struct backend *b, const struct backend_conf *bc)
{
	b->conf = bc;
	b->metrics_id = -1;
	atomic_init(&b->in_flight, 0);
	atomic_init(&b->healthy, 1);
	atomic_init(&b->out_until_ms, 0);
	atomic_init(&b->busy_until_ms, 0);
	if (pthread_mutex_init(&b->idle_lock, NULL) != 0)
		return -1;
	if (pthread_mutex_init(&b->health_lock, NULL) != 0)
		goto fail_idle;
	if (pthread_mutex_init(&b->models_lock, NULL) != 0)
		goto fail_health;
	return 0;

fail_health:
	pthread_mutex_destroy(&b->health_lock);
fail_idle:
	pthread_mutex_destroy(&b->idle_lock);
	return -1;
}

static void
backend_free(struct backend *b)
{
	for (size_t k = 0; k < b->nidle; k++)
		io_close(&b->idle_io[k]);
	b->nidle = 0;
	free(b->reported);
	b->reported = NULL;
	b->nreported = 0;
	pthread_mutex_destroy(&b->models_lock);
	pthread_mutex_destroy(&b->health_lock);
	pthread_mutex_destroy(&b->idle_lock);
}

int
bal_init(struct backend_table *t, const struct config *cfg)
{
	size_t i = 0;

	memset(t, 0, sizeof(*t));
	/* bal_acquire() takes its snapshot on the stack, sized by the cap
	 * config.c enforces. */
	if (cfg->nbackends > CAP_BACKENDS)
		return -1;
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		return -1;
	t->cfg = cfg;
	if (cfg->nbackends > 0) {
		t->backends = calloc(cfg->nbackends, sizeof(*t->backends));
		if (t->backends == NULL)
			goto fail;
	}
	for (i = 0; i < cfg->nbackends; i++)
		if (backend_init(&t->backends[i], &cfg->backends[i]) < 0)
			goto fail;
	t->n = cfg->nbackends;
	return 0;

fail:
	while (i-- > 0)
		backend_free(&t->backends[i]);
	free(t->backends);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
	return -1;
}

void
bal_free(struct backend_table *t)
{
	if (t->cfg == NULL)
		return;         /* never built, or freed already */
	for (size_t i = 0; i < t->n; i++)
		backend_free(&t->backends[i]);
	free(t->backends);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

/* The same backend in another config: the same name and the same url (a
 * name moved to another address is another backend). */
static struct backend *
same_backend(struct backend_table *t, const struct backend_conf *bc)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct backend_conf *o = t->backends[i].conf;
		if (strcmp(o->name, bc->name) == 0 && strcmp(o->url, bc->url) == 0)
			return &t->backends[i];
	}
	return NULL;
}

size_t
bal_carry_over(struct backend_table *to, struct backend_table *from)
{
	size_t kept = 0;

	for (size_t i = 0; i < to->n; i++) {
		struct backend *b = &to->backends[i];
		struct backend *o = same_backend(from, b->conf);
		if (o == NULL)
			continue;
		pthread_mutex_lock(&o->health_lock);
		atomic_store(&b->healthy, atomic_load(&o->healthy));
		atomic_store(&b->out_until_ms, atomic_load(&o->out_until_ms));
		atomic_store(&b->busy_until_ms, atomic_load(&o->busy_until_ms));
		b->fail_streak = o->fail_streak;
		b->ok_streak = o->ok_streak;
		b->ejections = o->ejections;
		pthread_mutex_unlock(&o->health_lock);

		pthread_mutex_lock(&o->models_lock);
		if (o->reported != NULL &&
		    (b->reported = calloc(CAP_BACKEND_MODELS,
		    sizeof(*b->reported))) != NULL) {
			memcpy(b->reported, o->reported,
			    o->nreported * sizeof(*b->reported));
			b->nreported = o->nreported;
			b->reported_at_ms = o->reported_at_ms;
		}
		pthread_mutex_unlock(&o->models_lock);
		kept++;
	}
	return kept;
}

/* ---- picking a backend ----------------------------------------------------- */

int
bal_serves(const struct backend_conf *bc, const char *model, size_t len)
{
	size_t n = bc->nmodels < CAP_BACKEND_MODELS ? bc->nmodels :
	    CAP_BACKEND_MODELS;

	if (n == 0 || model == NULL)
		return 1;
	/* Byte for byte: the request's model is JSON string contents with
	 * escapes not decoded, so a name spelled with escapes never matches,
	 * which is fine (nobody names a model "\u0061"). */
	for (size_t i = 0; i < n; i++) {
		const char *name = bc->models[i];

		if (strnlen(name, CAP_MODEL_NAME) == len &&
		    memcmp(name, model, len) == 0)
			return 1;
	}
	return 0;
}

int
bal_available(const struct backend *b, int64_t now_ms)
{
	return atomic_load(&b->healthy) &&
	    now_ms >= atomic_load(&b->out_until_ms) &&
	    now_ms >= atomic_load(&b->busy_until_ms);
}

static int
excluded(const struct bal_request *rq, const struct backend *b)
{
	for (size_t i = 0; i < rq->nexclude; i++)
		if (rq->exclude[i] == b)
			return 1;
	return 0;
}

struct backend *
bal_acquire(struct backend_table *t, const struct bal_request *rq,
    int64_t now_ms, enum bal_none *why)
{
	static const struct bal_request any;
	struct bal_slot slots[CAP_BACKENDS];
	struct backend *chosen = NULL;
	int serving = 0;

	if (rq == NULL)
		rq = &any;
	pthread_mutex_lock(&t->lock);
	int could[CAP_BACKENDS], panic = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct backend *b = &t->backends[i];
		int max = b->conf->max_connections;
		int in_flight = atomic_load(&b->in_flight);
		int serves = bal_serves(b->conf, rq->model, rq->model_len);

		serving |= serves;
		could[i] = serves && !excluded(rq, b) &&
		    (max <= 0 || in_flight < max) && atomic_load(&b->healthy) &&
		    now_ms >= atomic_load(&b->out_until_ms);
		slots[i].weight = b->conf->weight;
		slots[i].in_flight = in_flight;
		slots[i].current = b->current_weight;
		slots[i].eligible = could[i] && bal_available(b, now_ms);
		panic |= could[i];
	}
	int i = bal_select(t->cfg->load_balance, slots, t->n, t->rotate);
	if (i < 0 && panic) {
		/* Every backend that could take the request is out only for a
		 * Retry-After it sent: a busy backend beats refusing the request
		 * outright.  Ejected backends and those the probes found down
		 * stay out: then the answer is a fast 503. */
		for (size_t k = 0; k < t->n; k++)
			slots[k].eligible = could[k];
		i = bal_select(t->cfg->load_balance, slots, t->n, t->rotate);
	}
	for (size_t k = 0; k < t->n; k++)
		t->backends[k].current_weight = slots[k].current;
	if (i >= 0) {
		chosen = &t->backends[i];
		/* Counted before the lock goes, so that the next caller's
		 * snapshot sees it: least_connections and max_connections
		 * would otherwise both let a burst through to one backend. */
		atomic_fetch_add(&chosen->in_flight, 1);
		if (t->cfg->load_balance == LB_LEAST_CONNECTIONS)
			t->rotate = (unsigned)i + 1;
	}
	pthread_mutex_unlock(&t->lock);

	if (chosen == NULL && why != NULL)
		/* A request without a model never gets the 404: "no backend
		 * serves it" would be false, and the answer is a 503. */
		*why = !serving && rq->model != NULL ? BAL_NO_MODEL :
		    BAL_NONE_AVAILABLE;
	return chosen;
}

void
bal_release(struct backend *b)
{
	int v = atomic_load(&b->in_flight);

	/* Never below zero: an unbalanced release would make the backend look
	 * idle for good, so least_connections would flood it and its
	 * max_connections would no longer hold. */
	while (v > 0 && !atomic_compare_exchange_weak(&b->in_flight, &v, v - 1))
		;
}

/* ---- health ------------------------------------------------------------------ */

static int
threshold(int v)
{
	return v < 1 ? 1 : v;
}

static int
count_up(int v)
{
	return v < COUNT_MAX ? v + 1 : v;
}

/* eject_cooldown * 2^ejections, at most CAP_EJECT_COOLDOWN_GROWTH times the
 * first; `ejections` counts those before this one. */
static int64_t
cooldown_ms(const struct config *cfg, int ejections)
{
	int64_t growth = 1;
	int64_t base = cfg->hc_eject_cooldown_ms > 0 ?
	    cfg->hc_eject_cooldown_ms : 0;

	for (int k = 0; k < ejections && growth < CAP_EJECT_COOLDOWN_GROWTH; k++)
		growth *= 2;
	if (growth > CAP_EJECT_COOLDOWN_GROWTH)
		growth = CAP_EJECT_COOLDOWN_GROWTH;
	return base * growth;
}

/*
 * On probation (ejections > 0: ejected, and no request served well since) a
 * single failure ejects again, as nginx does after fail_timeout: a backend
 * that is still broken costs one request (retried elsewhere) per cool-down,
 * not unhealthy_threshold of them, and its cool-down keeps doubling.  This
 * also covers the backend whose health endpoint passes while inference
 * fails: the probes bring it back, the next request sends it out for twice
 * as long.
 */
int
bal_report(struct backend_table *t, struct backend *b, int success,
    int64_t now_ms)
{
	const struct config *cfg = t->cfg;
	int ejected = 0;

	if (!cfg->hc_eject)
		return 0;       /* passive health off: requests tell nothing */
	if (t->n == 1)
		return 0;       /* a lone backend is never ejected (nginx) */
	pthread_mutex_lock(&b->health_lock);
	if (success) {
		b->fail_streak = 0;
		/* A request that began before an ejection may finish well
		 * during the cool-down: that ends no probation. */
		if (bal_available(b, now_ms))
			b->ejections = 0;
	} else if (bal_available(b, now_ms)) {
		b->fail_streak = count_up(b->fail_streak);
		if (b->fail_streak >= threshold(cfg->hc_unhealthy_threshold) ||
		    b->ejections > 0) {
			atomic_store(&b->out_until_ms,
			    now_ms + cooldown_ms(cfg, b->ejections));
			b->ejections = count_up(b->ejections);
			b->fail_streak = 0;
			if (cfg->hc_enabled) {
				/* Back only through the probes. */
				atomic_store(&b->healthy, 0);
				b->ok_streak = 0;
			}
			ejected = 1;
		}
	}
	pthread_mutex_unlock(&b->health_lock);
	return ejected ? -1 : 0;
}

void
bal_busy_until(struct backend *b, int64_t until_ms)
{
	pthread_mutex_lock(&b->health_lock);
	if (until_ms > atomic_load(&b->busy_until_ms))
		atomic_store(&b->busy_until_ms, until_ms);
	pthread_mutex_unlock(&b->health_lock);
}

int
bal_probe_result(struct backend_table *t, struct backend *b, int ok,
    int64_t now_ms)
{
	const struct config *cfg = t->cfg;
	int ret = 0;

	pthread_mutex_lock(&b->health_lock);
	if (ok) {
		b->ok_streak = count_up(b->ok_streak);
		b->fail_streak = 0;
		/* Passes during a cool-down count towards the streak; the
		 * cool-down itself is the penalty.  A Retry-After window holds
		 * the return back the same way. */
		if (!atomic_load(&b->healthy) &&
		    b->ok_streak >= threshold(cfg->hc_healthy_threshold) &&
		    now_ms >= atomic_load(&b->out_until_ms)) {
			atomic_store(&b->out_until_ms, 0);
			atomic_store(&b->healthy, 1);
			ret = 1;
		}
	} else {
		b->ok_streak = 0;
		b->fail_streak = count_up(b->fail_streak);
		if (atomic_load(&b->healthy) &&
		    b->fail_streak >= threshold(cfg->hc_unhealthy_threshold)) {
			atomic_store(&b->healthy, 0);
			ret = -1;
		}
	}
	pthread_mutex_unlock(&b->health_lock);
	return ret;
}
