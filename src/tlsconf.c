/*
 * tlsconf.c — the configuration's PEM files, loaded once (tlsconf.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "tlsconf.h"

/* One bundle per distinct path: the global one and each tls_ca_file. */
static struct {
	const char *path;
	struct tls_trust *ta;
} bundles[CAP_BACKENDS + 1];
static size_t nbundles;
static const char *default_ca;
static struct tls_server_creds *server_creds;

static struct tls_trust *
find(const char *path)
{
	for (size_t i = 0; i < nbundles; i++)
		if (strcmp(bundles[i].path, path) == 0)
			return bundles[i].ta;
	return NULL;
}

/* "CONFIG:LINE: [section] key: problem", where problem (tls.c's) names
 * the file, and its line where that helps. */
static int
load_error(char *err, size_t errlen, const struct config *cfg, int line,
    const char *what, const char *problem)
{
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s: %s", cfg->path, line, what,
		    problem);
	else
		snprintf(err, errlen, "%s: %s (the default): %s", cfg->path, what,
		    problem);
	return -1;
}

static int
load_bundle(const struct config *cfg, const char *path, int line,
    const char *what, char *err, size_t errlen)
{
	char why[1200];
	struct tls_trust *ta;
	size_t skipped;

	if (find(path) != NULL)
		return 0;
	ta = tls_trust_load(path, why, sizeof(why));
	if (ta == NULL)
		return load_error(err, errlen, cfg, line, what, why);
	bundles[nbundles].path = path;
	bundles[nbundles].ta = ta;
	nbundles++;
	size_t n = tls_trust_count(ta, &skipped);
	log_debug("%s: %zu trust anchors%s", path, n,
	    skipped > 0 ? " (some with keys BearSSL cannot use skipped)" : "");
	return 0;
}

int
tlsconf_load(const struct config *cfg, char *err, size_t errlen)
{
	char what[128 + 64], why[1200];
	int need_default = 0;

	tlsconf_free();
	default_ca = cfg->tls_ca_file;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];

		if (!b->https || !b->tls_verify)
			continue;
		if (b->tls_ca_file[0] == '\0') {
			need_default = 1;
			continue;
		}
		snprintf(what, sizeof(what), "[backends] %s tls_ca_file", b->name);
		if (load_bundle(cfg, b->tls_ca_file, b->tls_ca_line, what, err,
		    errlen) < 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->nreporters; i++)
		need_default |= cfg->reporters[i].https;
	if (need_default && load_bundle(cfg, cfg->tls_ca_file, cfg->tls_ca_line,
	    "[tls] ca_file", err, errlen) < 0)
		return -1;
	if (cfg->server_tls) {
		server_creds = tls_server_load(cfg->server_cert_file,
		    cfg->server_key_file, why, sizeof(why));
		if (server_creds == NULL) {
			/* The message starts with the file at fault. */
			size_t kl = strlen(cfg->server_key_file);
			int key = strncmp(why, cfg->server_key_file, kl) == 0 &&
			    why[kl] == ':' &&
			    strcmp(cfg->server_key_file, cfg->server_cert_file) != 0;
			return load_error(err, errlen, cfg, key ?
			    cfg->server_key_line : cfg->server_cert_line,
			    key ? "[server.tls] key_file" : "[server.tls] cert_file",
			    why);
		}
	}
	return 0;
}

const struct tls_server_creds *
tlsconf_server(void)
{
	return server_creds;
}

int
tlsconf_client(struct io *io, int fd, const char *host, const char *ca_file,
    int verify)
{
	const struct tls_trust *ta = NULL;

	if (verify) {
		ta = find(ca_file != NULL && ca_file[0] != '\0' ? ca_file :
		    default_ca != NULL ? default_ca : "");
		if (ta == NULL) {
			errno = EINVAL;         /* tlsconf_load() was not asked */
			return -1;
		}
	}
	return tls_client_init(io, fd, host, ta, verify);
}

void
tlsconf_free(void)
{
	for (size_t i = 0; i < nbundles; i++)
		tls_trust_free(bundles[i].ta);
	nbundles = 0;
	tls_server_free(server_creds);
	server_creds = NULL;
}
