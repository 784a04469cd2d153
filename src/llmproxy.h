/*
 * llmproxy.h — the program header: what the request path shares.
 * Leaf modules (http, sse, json, config, log, io, reply) do not include it.
 */
#ifndef LLMPROXY_H
#define LLMPROXY_H

#include "balancer.h"
#include "config.h"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "dev"
#endif

/* Everything a request needs that outlives it.  Read-only while serving. */
struct server {
	const struct config *cfg;
	struct backend_table backends;
};

#endif
