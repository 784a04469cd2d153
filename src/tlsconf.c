/*
 * tlsconf.c — a configuration's PEM files, loaded (tlsconf.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tlsconf.h"

struct tlsconf {
	_Atomic int refs;
	/* One bundle per distinct path: the global one and each tls_ca_file
	 * (paths copied: the config may go first). */
	struct {
		char *path;
		struct tls_trust *ta;
	} bundles[CAP_BACKENDS + 1];
	size_t nbundles;
	char *default_ca;
	struct tls_server_creds *server;
};

static struct tls_trust *
find(const struct tlsconf *t, const char *path)
{
	for (size_t i = 0; i < t->nbundles; i++)
		if (strcmp(t->bundles[i].path, path) == 0)
			return t->bundles[i].ta;
	return NULL;
}

/* "CONFIG:LINE: [section] key: problem", where problem (tls.c's) names
 * the file, and its line where that helps. */
static void
load_error(char *err, size_t errlen, const struct config *cfg, int line,
    const char *what, const char *problem)
{
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s: %s", cfg->path, line, what,
		    problem);
	else
		snprintf(err, errlen, "%s: %s (the default): %s", cfg->path, what,
		    problem);
}

static int
load_bundle(struct tlsconf *t, const struct config *cfg, const char *path,
    int line, const char *what, char *err, size_t errlen)
{
	char why[1200];
	struct tls_trust *ta;
	size_t skipped;

	if (find(t, path) != NULL)
		return 0;
	ta = tls_trust_load(path, why, sizeof(why));
	if (ta == NULL) {
		load_error(err, errlen, cfg, line, what, why);
		return -1;
	}
	t->bundles[t->nbundles].path = strdup(path);
	if (t->bundles[t->nbundles].path == NULL) {
		tls_trust_free(ta);
		snprintf(err, errlen, "%s: out of memory", cfg->path);
		return -1;
	}
	t->bundles[t->nbundles].ta = ta;
	t->nbundles++;
	size_t n = tls_trust_count(ta, &skipped);
	log_debug("%s: %zu trust anchors%s", path, n,
	    skipped > 0 ? " (some with keys BearSSL cannot use skipped)" : "");
	return 0;
}

static void
tlsconf_free(struct tlsconf *t)
{
	for (size_t i = 0; i < t->nbundles; i++) {
		tls_trust_free(t->bundles[i].ta);
		free(t->bundles[i].path);
	}
	tls_server_free(t->server);
	free(t->default_ca);
	free(t);
}

struct tlsconf *
tlsconf_load(const struct config *cfg, char *err, size_t errlen)
{
	char what[128 + 64], why[1200];
	int need_default = 0;
	struct tlsconf *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "%s: out of memory", cfg->path);
		return NULL;
	}
	atomic_init(&t->refs, 1);
	t->default_ca = strdup(cfg->tls_ca_file);
	if (t->default_ca == NULL) {
		snprintf(err, errlen, "%s: out of memory", cfg->path);
		goto fail;
	}
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];

		if (!b->https || !b->tls_verify)
			continue;
		if (b->tls_ca_file[0] == '\0') {
			need_default = 1;
			continue;
		}
		snprintf(what, sizeof(what), "[backends] %s tls_ca_file", b->name);
		if (load_bundle(t, cfg, b->tls_ca_file, b->tls_ca_line, what, err,
		    errlen) < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->nreporters; i++)
		need_default |= cfg->reporters[i].https;
	if (need_default && load_bundle(t, cfg, cfg->tls_ca_file,
	    cfg->tls_ca_line, "[tls] ca_file", err, errlen) < 0)
		goto fail;
	if (cfg->server_tls) {
		t->server = tls_server_load(cfg->server_cert_file,
		    cfg->server_key_file, why, sizeof(why));
		if (t->server == NULL) {
			/* The message starts with the file at fault. */
			size_t kl = strlen(cfg->server_key_file);
			int key = strncmp(why, cfg->server_key_file, kl) == 0 &&
			    why[kl] == ':' &&
			    strcmp(cfg->server_key_file, cfg->server_cert_file) != 0;
			load_error(err, errlen, cfg, key ? cfg->server_key_line :
			    cfg->server_cert_line, key ? "[server.tls] key_file" :
			    "[server.tls] cert_file", why);
			goto fail;
		}
	}
	return t;
fail:
	tlsconf_free(t);
	return NULL;
}

void
tlsconf_ref(struct tlsconf *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
tlsconf_unref(struct tlsconf *t)
{
	if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
		tlsconf_free(t);
}

const struct tls_server_creds *
tlsconf_server(const struct tlsconf *t)
{
	return t != NULL ? t->server : NULL;
}

const struct tls_trust *
tlsconf_trust(const struct tlsconf *t, const char *ca_file)
{
	if (t == NULL)
		return NULL;
	return find(t, ca_file != NULL && ca_file[0] != '\0' ? ca_file :
	    t->default_ca);
}
