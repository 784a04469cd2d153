/*
 * ratelimit.c — token buckets (pure) and the shared per-key state: request
 * buckets, token budgets, streams in flight and counters.  See ratelimit.h.
 *
 * The state table is an open-addressing hash table of key names behind one
 * mutex, held for a few hundred nanoseconds per request (a lookup and some
 * arithmetic).  Nothing outside holds a pointer into it: every call looks
 * its key up again, so the table may grow (rehash) or drop states at any
 * time.
 */
#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"

/* ---- token bucket ---------------------------------------------------------------- */

void
tb_refill(struct tbucket *b, double rate, double burst, int64_t now_ms)
{
	if (b->last_ms == 0) {          /* first use: full */
		b->tokens = burst;
		b->last_ms = now_ms;
		return;
	}
	if (now_ms > b->last_ms) {
		b->tokens += rate * (double)(now_ms - b->last_ms) / 1000.0;
		b->last_ms = now_ms;
	}
	if (b->tokens > burst)
		b->tokens = burst;
}

int64_t
tb_wait_ms(struct tbucket *b, double rate, double burst, double need,
    int64_t now_ms)
{
	tb_refill(b, rate, burst, now_ms);
	/* Refills in many small steps add up to a hair less than the same
	 * time in one step; 1e-9 of a token is not worth a refusal. */
	if (b->tokens + 1e-9 >= need)
		return 0;
	if (rate <= 0 || need > burst)
		return INT64_MAX;
	double ms = (need - b->tokens) * 1000.0 / rate;
	if (ms > (double)(INT64_MAX / 2))
		return INT64_MAX;
	int64_t w = (int64_t)ms;
	/* Rounded up, never too early; 1e-6 forgives the error of rates
	 * such as 2/60 per second, which a double cannot hold exactly. */
	if ((double)w < ms - 1e-6)
		w++;
	return w < 1 ? 1 : w;
}

int64_t
tb_take(struct tbucket *b, double rate, double burst, double cost,
    int64_t now_ms)
{
	int64_t wait = tb_wait_ms(b, rate, burst, cost, now_ms);

	if (wait == 0)
		b->tokens -= cost;
	return wait;
}

void
tb_charge(struct tbucket *b, double rate, double burst, double cost,
    int64_t now_ms)
{
	tb_refill(b, rate, burst, now_ms);
	b->tokens -= cost;
}

int64_t
rl_retry_after_s(int64_t ms)
{
	if (ms <= 1000)
		return 1;
	if (ms >= INT64_MAX - 999)
		return 3600;    /* "never" would be a lie: ask again later */
	int64_t s = (ms + 999) / 1000;
	return s > 3600 ? 3600 : s;
}

/* ---- verdicts ------------------------------------------------------------------ */

const char *
rl_message(enum rl_verdict v)
{
	switch (v) {
	case RL_GLOBAL:          return "the proxy is receiving too many requests; retry later";
	case RL_KEY_RATE:        return "rate limit reached for this API key; retry later";
	case RL_KEY_CONCURRENCY: return "too many concurrent requests for this API key";
	case RL_KEY_TOKENS:      return "token budget per minute used up for this API key; retry later";
	default:                 return "ok";
	}
}

const char *
rl_label(enum rl_verdict v)
{
	static const char *const label[RL_COUNT] = {
		"none", "global", "rate", "concurrency", "tokens",
	};
	return v < RL_COUNT ? label[v] : "none";
}

/* ---- per-key state ------------------------------------------------------------- */

struct key_state {
	char name[64];                  /* "" : an empty slot */
	struct tbucket rps, rpm, tpm;
	int64_t in_flight;
	uint64_t requests, tokens[2], limited[RL_COUNT];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct key_state *slots;         /* size: nslots, a power of two */
static size_t nslots, nused;
static struct key_state anon;           /* requests without a key */
static struct tbucket global_rps, global_rpm;
static uint64_t auth_failures[4];

static uint64_t
name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct key_state *
slot_of(struct key_state *tab, size_t n, const char *name)
{
	size_t i = (size_t)name_hash(name) & (n - 1);

	while (tab[i].name[0] != '\0' && strcmp(tab[i].name, name) != 0)
		i = (i + 1) & (n - 1);
	return &tab[i];
}

/* A state that is the same as a new one (nothing in flight, buckets full
 * again by now) may be forgotten: only its counters go. */
static int
idle(struct key_state *k, const struct rl_limits *l, int64_t now)
{
	if (k->in_flight > 0)
		return 0;
	if (l == NULL)
		return 1;
	return tb_wait_ms(&k->rps, l->rps, l->rps_burst, l->rps_burst, now) == 0 &&
	    tb_wait_ms(&k->rpm, l->rpm / 60, l->rpm, l->rpm, now) == 0 &&
	    tb_wait_ms(&k->tpm, l->tpm / 60, l->tpm, l->tpm, now) == 0;
}

/* Rebuilds the table with room for `want` slots, leaving out idle states
 * when `purge`.  Returns 0 or -1 (memory). */
static int
rehash(size_t want, int purge, const struct rl_limits *l, int64_t now)
{
	struct key_state *tab = calloc(want, sizeof(*tab));
	size_t used = 0;

	if (tab == NULL)
		return -1;
	for (size_t i = 0; i < nslots; i++) {
		if (slots[i].name[0] == '\0' || (purge && idle(&slots[i], l, now)))
			continue;
		*slot_of(tab, want, slots[i].name) = slots[i];
		used++;
	}
	free(slots);
	slots = tab;
	nslots = want;
	nused = used;
	return 0;
}

/* The state of key `name`, made when new; NULL when there is no room. */
static struct key_state *
state_of(const char *name, const struct rl_limits *l, int64_t now)
{
	if (name == NULL || name[0] == '\0')
		return &anon;
	if (nslots > 0) {
		struct key_state *k = slot_of(slots, nslots, name);
		if (k->name[0] != '\0')
			return k;
	}
	/* Load at most 1/2: probes stay short. */
	if (2 * (nused + 1) > nslots) {
		size_t want = nslots ? 2 * nslots : 64;
		int full = want > 2 * (size_t)CAP_LIMIT_STATES;
		if (full)
			want = nslots;
		if (rehash(want, full, l, now) < 0 || 2 * (nused + 1) > nslots)
			return NULL;
	}
	struct key_state *k = slot_of(slots, nslots, name);
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	nused++;
	return k;
}

enum rl_verdict
rl_admit(const struct rl_limits *global, const struct rl_limits *per_key,
    const char *name, int64_t now_ms, struct rl_ticket *t, int64_t *retry_ms)
{
	enum rl_verdict v = RL_OK;
	int64_t wait = 0;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&lock);
	struct key_state *k = state_of(name, per_key, now_ms);
	const struct rl_limits *kl = k != &anon ? per_key : NULL;

	/* Every limit is looked at before any is taken from, so that a
	 * refusal costs no bucket anything: a key over its limit does not
	 * eat the global budget of the others. */
	if (k == NULL) {
		v = RL_KEY_RATE;        /* no room for its state: fail closed */
		wait = 1000;
	} else if (kl != NULL && kl->max_concurrent > 0 &&
	    k->in_flight >= kl->max_concurrent) {
		v = RL_KEY_CONCURRENCY;
		wait = 1000;
	} else if (kl != NULL && kl->tpm > 0 &&
	    (wait = tb_wait_ms(&k->tpm, kl->tpm / 60, kl->tpm, 1, now_ms)) > 0) {
		v = RL_KEY_TOKENS;
	} else if (kl != NULL && kl->rps > 0 &&
	    (wait = tb_wait_ms(&k->rps, kl->rps, kl->rps_burst, 1, now_ms)) > 0) {
		v = RL_KEY_RATE;
	} else if (kl != NULL && kl->rpm > 0 &&
	    (wait = tb_wait_ms(&k->rpm, kl->rpm / 60, kl->rpm, 1, now_ms)) > 0) {
		v = RL_KEY_RATE;
	} else if (global != NULL && global->rps > 0 &&
	    (wait = tb_wait_ms(&global_rps, global->rps, global->rps_burst, 1,
	    now_ms)) > 0) {
		v = RL_GLOBAL;
	} else if (global != NULL && global->rpm > 0 &&
	    (wait = tb_wait_ms(&global_rpm, global->rpm / 60, global->rpm, 1,
	    now_ms)) > 0) {
		v = RL_GLOBAL;
	}
	if (v == RL_OK) {
		if (kl != NULL && kl->rps > 0)
			(void)tb_take(&k->rps, kl->rps, kl->rps_burst, 1, now_ms);
		if (kl != NULL && kl->rpm > 0)
			(void)tb_take(&k->rpm, kl->rpm / 60, kl->rpm, 1, now_ms);
		if (global != NULL && global->rps > 0)
			(void)tb_take(&global_rps, global->rps, global->rps_burst, 1,
			    now_ms);
		if (global != NULL && global->rpm > 0)
			(void)tb_take(&global_rpm, global->rpm / 60, global->rpm, 1,
			    now_ms);
		k->in_flight++;
		t->holds_slot = 1;
		if (k != &anon)
			memcpy(t->name, k->name, sizeof(t->name));
	} else if (k != NULL) {
		k->limited[v]++;
	}
	pthread_mutex_unlock(&lock);
	*retry_ms = wait;
	return v;
}

void
rl_done(const struct rl_limits *per_key, struct rl_ticket *t,
    int64_t tokens_in, int64_t tokens_out, int64_t now_ms)
{
	if (!t->holds_slot)
		return;
	pthread_mutex_lock(&lock);
	struct key_state *k = t->name[0] == '\0' ? &anon :
	    nslots > 0 ? slot_of(slots, nslots, t->name) : NULL;
	if (k != NULL && (k == &anon || k->name[0] != '\0')) {
		if (k->in_flight > 0)
			k->in_flight--;
		k->requests++;
		if (tokens_in > 0)
			k->tokens[0] += (uint64_t)tokens_in;
		if (tokens_out > 0)
			k->tokens[1] += (uint64_t)tokens_out;
		int64_t all = (tokens_in > 0 ? tokens_in : 0) +
		    (tokens_out > 0 ? tokens_out : 0);
		if (k != &anon && per_key != NULL && per_key->tpm > 0 && all > 0)
			tb_charge(&k->tpm, per_key->tpm / 60, per_key->tpm,
			    (double)all, now_ms);
	}
	pthread_mutex_unlock(&lock);
	t->holds_slot = 0;
}

void
rl_count_auth_failure(int reason)
{
	if (reason < 0 || reason > 3)
		return;
	pthread_mutex_lock(&lock);
	auth_failures[reason]++;
	pthread_mutex_unlock(&lock);
}

struct rl_stat *
rl_snapshot(size_t *n, uint64_t failures[4])
{
	struct rl_stat *out;
	size_t j = 0;

	pthread_mutex_lock(&lock);
	memcpy(failures, auth_failures, sizeof(auth_failures));
	out = calloc(nused + 1, sizeof(*out));
	if (out != NULL) {
		for (size_t i = 0; i <= nslots; i++) {
			const struct key_state *k = i < nslots ? &slots[i] : &anon;
			if (i < nslots && k->name[0] == '\0')
				continue;
			if (k == &anon && k->requests == 0 && k->in_flight == 0 &&
			    k->limited[RL_GLOBAL] == 0)
				continue;
			memcpy(out[j].name, k->name, sizeof(out[j].name));
			out[j].requests = k->requests;
			out[j].tokens[0] = k->tokens[0];
			out[j].tokens[1] = k->tokens[1];
			out[j].in_flight = k->in_flight;
			memcpy(out[j].limited, k->limited, sizeof(k->limited));
			j++;
		}
	}
	pthread_mutex_unlock(&lock);
	*n = j;
	if (j == 0) {
		free(out);
		return NULL;
	}
	return out;
}

void
rl_reset(void)
{
	pthread_mutex_lock(&lock);
	free(slots);
	slots = NULL;
	nslots = nused = 0;
	memset(&anon, 0, sizeof(anon));
	memset(&global_rps, 0, sizeof(global_rps));
	memset(&global_rpm, 0, sizeof(global_rpm));
	memset(auth_failures, 0, sizeof(auth_failures));
	pthread_mutex_unlock(&lock);
}
