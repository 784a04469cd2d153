/*
 * ratelimit.h — token buckets, and the per-key state that outlives a
 * config: request buckets, the token budget, streams in flight, and the
 * per-key counters the metrics show.
 *
 * The bucket functions are pure: the caller passes the time.  The state
 * table is shared (one small mutex) and keyed by the key's name, so a
 * reload that keeps a key keeps its buckets and its streams in flight; it
 * never points into a config.
 */
#ifndef LLMPROXY_RATELIMIT_H
#define LLMPROXY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* ---- token bucket (pure) ------------------------------------------------------ */

/* rate: tokens added per second; burst: the most it holds.  A zero
 * bucket (tokens 0, last_ms 0) is taken as full at its first use. */
struct tbucket {
	double tokens;
	int64_t last_ms;        /* time of the last refill; 0: never used */
};

/* Brings the bucket to time now (monotonic ms). */
void tb_refill(struct tbucket *b, double rate, double burst, int64_t now_ms);

/*
 * Takes `cost` tokens if the bucket has them: returns 0.  Otherwise takes
 * nothing and returns the milliseconds until it would have them (at least
 * 1; INT64_MAX when cost > burst or rate is 0, i.e. never).
 */
int64_t tb_take(struct tbucket *b, double rate, double burst, double cost,
    int64_t now_ms);

/*
 * Removes `cost` tokens whether there are enough or not: a debt, for a cost
 * known only afterwards (tokens generated).  The bucket goes negative and
 * refills from there.
 */
void tb_charge(struct tbucket *b, double rate, double burst, double cost,
    int64_t now_ms);

/* Milliseconds until the bucket holds at least `need` tokens (0: now). */
int64_t tb_wait_ms(struct tbucket *b, double rate, double burst, double need,
    int64_t now_ms);

/* Seconds for a Retry-After header: ms rounded up, at least 1. */
int64_t rl_retry_after_s(int64_t ms);

/* ---- limits ------------------------------------------------------------------ */

/* One [rate_limit.global] or [rate_limit.per_key]; 0 for "no such limit". */
struct rl_limits {
	double rps;             /* requests_per_second */
	double rps_burst;       /* burst_size */
	double rpm;             /* requests_per_minute (burst: the same) */
	double tpm;             /* tokens_per_minute (per key only) */
	int max_concurrent;     /* per key only */
};

enum rl_verdict {
	RL_OK,
	RL_GLOBAL,              /* the global request rate */
	RL_KEY_RATE,            /* the key's request rate */
	RL_KEY_CONCURRENCY,     /* the key's streams in flight */
	RL_KEY_TOKENS,          /* the key's tokens per minute */
	RL_COUNT
};

/* What the 429 says. */
const char *rl_message(enum rl_verdict v);
/* The metrics label of a refusal: "global", "rate", "concurrency", "tokens". */
const char *rl_label(enum rl_verdict v);

/* What one admitted request holds until rl_done. */
struct rl_ticket {
	char name[64];          /* the key's name; "" for no key */
	int holds_slot;         /* counted in the key's in-flight streams */
};

/*
 * Admits a request of key `name` (NULL: no key, only the global limits
 * apply) at now (monotonic ms), or not: RL_OK fills *t, anything else sets
 * *retry_ms.  Either limits pointer may be NULL (no such limits).  A key's
 * refusal never touches another key's state.
 */
enum rl_verdict rl_admit(const struct rl_limits *global,
    const struct rl_limits *per_key, const char *name, int64_t now_ms,
    struct rl_ticket *t, int64_t *retry_ms);

/*
 * The request is over: its slot is released and `tokens` (prompt +
 * completion; <= 0 for none metered) are charged to the key's budget and
 * counted for the metrics.  A second call is a no-op.
 */
void rl_done(const struct rl_limits *per_key, struct rl_ticket *t,
    int64_t tokens_in, int64_t tokens_out, int64_t now_ms);

/* A request refused by a limit, counted for the metrics (name NULL: no key). */
void rl_count_refusal(const char *name, enum rl_verdict v);

/* A request refused by auth: reason 0 missing, 1 unknown, 2 disabled,
 * 3 expired (auth.h's verdicts less one): llmproxy_auth_failures_total. */
void rl_count_auth_failure(int reason);

/* What the metrics show of one key (metrics.c renders it). */
struct rl_stat {
	char name[64];          /* "" for requests without a key */
	uint64_t requests;      /* admitted and answered */
	uint64_t tokens[2];     /* prompt, completion */
	int64_t in_flight;
	uint64_t limited[RL_COUNT];     /* refusals by verdict ([RL_OK] unused) */
};

/*
 * A copy of every key's counters (malloc'ed, *n entries; NULL with *n 0
 * when there are none or no memory) and of the auth refusals by reason.
 * Key names come from the config only, so the count is bounded.
 */
struct rl_stat *rl_snapshot(size_t *n, uint64_t auth_failures[4]);

/* Forgets every state (tests). */
void rl_reset(void);

#endif
