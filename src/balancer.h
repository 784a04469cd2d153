/*
 * balancer.h — the backend table and backend selection.
 *
 * The table is built once from the config; its entries carry the only shared
 * mutable per-backend state: the idle keep-alive connections (upstream.c)
 * and counters.
 */
#ifndef LLMPROXY_BALANCER_H
#define LLMPROXY_BALANCER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "config.h"

struct backend {
	const struct backend_conf *conf;

	/* Idle keep-alive connections, most recently used last (upstream.c). */
	pthread_mutex_t idle_lock;
	size_t nidle;
	int idle_fd[CAP_UPSTREAM_IDLE_PER_BACKEND];
	int64_t idle_since_ms[CAP_UPSTREAM_IDLE_PER_BACKEND];

	_Atomic int in_flight;          /* requests using this backend now */
};

struct backend_table {
	size_t n;
	struct backend *backends;
	_Atomic unsigned next;          /* round-robin cursor */
};

/* Builds the table for cfg (which must outlive it).  Returns 0 or -1. */
int bal_init(struct backend_table *t, const struct config *cfg);

/* Closes idle connections and frees the table. */
void bal_free(struct backend_table *t);

/*
 * The backend for the next request.  Plain round robin over the table;
 * `skip` (or NULL) is a backend the caller does not want again, e.g. one that
 * just failed.  Never returns NULL for a non-empty table.
 */
struct backend *bal_pick(struct backend_table *t, const struct backend *skip);

#endif
