/*
 * server.c — the configuration in force, as refcounted snapshots; SIGHUP.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "tlsconf.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct server *current;          /* under lock */
static _Atomic unsigned generation;     /* current->generation */

/* Takes over one reference to tls. */
static struct server *
snapshot_new(const struct config *cfg, int owns_cfg, unsigned gen,
    struct tlsconf *tls)
{
	struct server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (bal_init(&s->backends, cfg) < 0) {
		free(s);
		return NULL;
	}
	/* Metrics series are per backend name: a backend that stays keeps
	 * its series, a new one gets its own. */
	for (size_t i = 0; i < s->backends.n; i++)
		s->backends.backends[i].metrics_id =
		    metrics_backend(cfg->backends[i].name);
	/* Each https backend's anchors, once for all its connections. */
	for (size_t i = 0; i < s->backends.n; i++)
		s->backends.backends[i].trust = tlsconf_trust(tls,
		    cfg->backends[i].tls_ca_file);
	s->tls = tls;
	s->cfg = cfg;
	s->owns_cfg = owns_cfg;
	s->generation = gen;
	atomic_init(&s->refs, 1);
	return s;
}

static void
snapshot_free(struct server *s)
{
	log_debug("configuration %u released: nothing uses it any more",
	    s->generation);
	bal_free(&s->backends);
	tlsconf_unref(s->tls);
	if (s->owns_cfg)
		config_free((struct config *)(uintptr_t)s->cfg);
	free(s);
}

struct server *
server_acquire(void)
{
	pthread_mutex_lock(&lock);
	struct server *s = current;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&lock);
	return s;
}

void
server_release(struct server *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		snapshot_free(s);
}

int
server_stale(const struct server *s)
{
	return s->generation != atomic_load_explicit(&generation,
	    memory_order_relaxed);
}

int
server_start(struct config *cfg, struct tlsconf *tls)
{
	tlsconf_ref(tls);
	current = snapshot_new(cfg, 0, 1, tls);
	if (current == NULL)
		return -1;
	atomic_store(&generation, 1);
	if (health_start(&current->backends) < 0) {
		log_warn("cannot start the health check thread");
		return -1;
	}
	return 0;
}

/* ---- what a reload may not change ------------------------------------------------ */

/* Settings bound at start: the listening sockets, the pool's size, the
 * metrics listener and families, the webhook thread and its spool, the log's
 * format and file.  A reload that changes one keeps the old value (so that
 * every request reads the same thing as the part of the program that was set
 * up with it) and says so. */
static const struct {
	const char *what;
	size_t off, size;
	int str;
} fixed[] = {
#define FIELD(what, f, str) { what, offsetof(struct config, f), \
	sizeof(((struct config *)NULL)->f), str }
	FIELD("[server] listen", listen_host, 1),
	FIELD("[server] listen", listen_port, 1),
	FIELD("[server] threads", threads, 0),
	FIELD("[server.tls] enabled", server_tls, 0),
	FIELD("[metrics] enabled", metrics_enabled, 0),
	FIELD("[metrics] path", metrics_path, 1),
	FIELD("[metrics] listen", metrics_listen_host, 1),
	FIELD("[metrics] listen", metrics_listen_port, 1),
	FIELD("[metrics] llmproxy_compat", metrics_compat, 0),
	FIELD("[usage] enabled", usage_enabled, 0),
	FIELD("[usage] max_wait", usage_max_wait_ms, 0),
	FIELD("[usage] batch", usage_batch, 0),
	FIELD("[usage] queue_max", usage_queue_max, 0),
	FIELD("[usage] spool", usage_spool, 1),
	FIELD("[usage] spool_max_bytes", usage_spool_max_bytes, 0),
	FIELD("[usage] spool_fsync", usage_spool_fsync, 0),
	FIELD("[log] format", log_json, 0),
	FIELD("[log] access_file", access_file, 1),
#undef FIELD
};

static int
reporters_equal(const struct config *a, const struct config *b)
{
	if (a->nreporters != b->nreporters)
		return 0;
	for (size_t i = 0; i < a->nreporters; i++) {
		const struct reporter_conf *x = &a->reporters[i], *y = &b->reporters[i];
		if (strcmp(x->name, y->name) != 0 || strcmp(x->url, y->url) != 0 ||
		    x->timeout_ms != y->timeout_ms || x->nheaders != y->nheaders)
			return 0;
		for (size_t h = 0; h < x->nheaders; h++)
			if (strcmp(x->headers[h].name, y->headers[h].name) != 0 ||
			    strcmp(x->headers[h].value, y->headers[h].value) != 0)
				return 0;
	}
	return 1;
}

/* Puts back in `cfg` every bound setting that `old` has otherwise. */
static void
keep_bound_settings(struct config *cfg, const struct config *old)
{
	const char *said = "";

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		char *now = (char *)cfg + fixed[i].off;
		const char *was = (const char *)old + fixed[i].off;
		int same = fixed[i].str ? strcmp(now, was) == 0 :
		    memcmp(now, was, fixed[i].size) == 0;
		if (same)
			continue;
		memcpy(now, was, fixed[i].size);
		if (strcmp(said, fixed[i].what) != 0)  /* listen is two fields */
			log_warnx("%s: %s changed: needs a restart; kept as it was",
			    cfg->path, fixed[i].what);
		said = fixed[i].what;
	}
	/* The default skip_paths name the metrics path: the one served. */
	config_default_skip_paths(cfg);
	/* The webhook thread delivers with the reporters it started with. */
	if (!reporters_equal(cfg, old))
		log_warnx("%s: [usage.reporters] changed: needs a restart; kept as "
		    "they were", cfg->path);
}

int
server_reload(const char *path)
{
	char err[1024];
	struct config *cfg = config_load(path, err, sizeof(err));

	if (cfg == NULL) {
		log_warnx("reload: %s; the configuration in force stays", err);
		return -1;
	}
	struct server *old = server_acquire();
	keep_bound_settings(cfg, old->cfg);
	/* The PEM files again: a rotated certificate is the usual reason to
	 * reload. */
	struct tlsconf *tls = tlsconf_load(cfg, err, sizeof(err));
	if (tls == NULL) {
		log_warnx("reload: %s; the configuration in force stays", err);
		config_free(cfg);
		server_release(old);
		return -1;
	}
	struct server *s = snapshot_new(cfg, 1, old->generation + 1, tls);
	if (s == NULL) {
		log_warnx("reload: out of memory; the configuration in force stays");
		tlsconf_unref(tls);
		config_free(cfg);
		server_release(old);
		return -1;
	}
	/* The probes stop before their state is copied, and start again on
	 * the new table, so that no result lands in the old one afterwards. */
	health_stop();
	size_t kept = bal_carry_over(&s->backends, &old->backends);

	pthread_mutex_lock(&lock);
	struct server *prev = current;
	current = s;
	atomic_store(&generation, s->generation);
	pthread_mutex_unlock(&lock);
	server_release(prev);           /* it is no longer in force */

	if (health_start(&s->backends) < 0)
		log_warn("reload: cannot start the health check thread");
	log_set_level(cfg->log_level);
	for (size_t i = 0; i < cfg->nnotices; i++)
		log_warnx("%s", cfg->notices[i]);
	log_info("configuration reloaded from %s: %zu backend%s (%zu with their "
	    "state carried over); requests in flight finish as they started",
	    path, cfg->nbackends, cfg->nbackends == 1 ? "" : "s", kept);
	server_release(old);
	return 0;
}
