/*
 * health.h — the probe thread: each backend's own health endpoint (never an
 * inference call), and the models each backend reports.
 */
#ifndef LLMPROXY_HEALTH_H
#define LLMPROXY_HEALTH_H

#include <stddef.h>

#include "balancer.h"

/*
 * Starts the probe thread when [health_check] enabled: every interval each
 * backend's health path (per-backend health_path, else [health_check] path)
 * gets a GET with the configured timeout; a pass is expected_status (or any
 * 2xx when that is 0).  Results go to bal_probe_result(); transitions are
 * logged.  The first round runs at once.  Returns 0, or -1 when the thread
 * cannot start.
 */
int health_start(struct backend_table *t);

/* Stops the thread (at exit). */
void health_stop(void);

/*
 * The answer to GET /v1/models: the OpenAI list
 * {"object":"list","data":[{"id":"...","object":"model","created":0,
 * "owned_by":"<backend>"},...]}, each id once, from every available
 * backend's configured models list or, for a backend without one, the ids it
 * reports on its own GET /v1/models (fetched now when the cached ones are
 * older than [health_check] interval, within [health_check] timeout).
 * Returns the length written into out, or 0 when it did not fit.
 */
size_t health_models_json(struct backend_table *t, char *out, size_t cap);

#endif
