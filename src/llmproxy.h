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

/* Everything a request needs that outlives it: one snapshot of the
 * configuration (server.h).  Read-only while serving. */
struct server {
	const struct config *cfg;
	struct backend_table backends;
	_Atomic int refs;           /* requests and connections holding it, and
	                               1 while it is the one in force */
	unsigned generation;        /* 1 at start, +1 per reload */
	int owns_cfg;               /* frees cfg with it (not the first) */
	struct tlsconf *tls;        /* its PEM files, loaded (one reference) */
};

#endif
