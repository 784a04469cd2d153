/*
 * tlsconf.h — a configuration's TLS files, loaded: the trust anchors of
 * every PEM bundle its https urls use and the listener's certificate and
 * key.  Read-only once loaded, shared by every thread; refcounted, because
 * a reload (server.h) makes a new one while connections of the old
 * configuration may still use theirs.
 */
#ifndef LLMPROXY_TLSCONF_H
#define LLMPROXY_TLSCONF_H

#include <stddef.h>

#include "config.h"
#include "tls.h"

struct tlsconf;

/*
 * Loads what cfg needs: [tls] ca_file only when an https backend (with
 * tls_verify) or an https webhook uses it, each backend's tls_ca_file once,
 * and [server.tls] cert_file and key_file when enabled.  Returns it with
 * one reference, or NULL with err as "CONFIG:LINE: [section] key: what is
 * wrong" (tls.c's message names the file, and its line where that helps).
 * At start, by `llmproxy -t`, and at each reload.
 */
struct tlsconf *tlsconf_load(const struct config *cfg, char *err,
    size_t errlen);

void tlsconf_ref(struct tlsconf *t);
/* Drops a reference; the last frees (and wipes) everything.  NULL: no-op. */
void tlsconf_unref(struct tlsconf *t);

/* The listener's credentials, or NULL when [server.tls] is off. */
const struct tls_server_creds *tlsconf_server(const struct tlsconf *t);

/* The anchors of ca_file ("" or NULL: [tls] ca_file), or NULL when t did
 * not load them (nothing of cfg needed them). */
const struct tls_trust *tlsconf_trust(const struct tlsconf *t,
    const char *ca_file);

#endif
