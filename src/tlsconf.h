/*
 * tlsconf.h — the configuration's TLS files, loaded once at start: the trust
 * anchors of every PEM bundle an https url uses and the listener's
 * certificate and key.  Read-only afterwards, shared by every thread.
 */
#ifndef LLMPROXY_TLSCONF_H
#define LLMPROXY_TLSCONF_H

#include <stddef.h>

#include "config.h"
#include "io.h"
#include "tls.h"

/*
 * Loads what cfg needs: [tls] ca_file only when an https backend (with
 * tls_verify) or an https webhook uses it, each backend's tls_ca_file, and
 * [server.tls] cert_file and key_file when enabled.  Returns 0, or -1 with
 * err as "CONFIG:LINE: [section] key = PATH: what is wrong" (the path and
 * the problem from tls.c).  Called by `llmproxy -t` too.
 */
int tlsconf_load(const struct config *cfg, char *err, size_t errlen);

/* The listener's credentials, or NULL when [server.tls] is off. */
const struct tls_server_creds *tlsconf_server(void);

/*
 * Makes io a TLS client over fd for host (tls_client_init), verifying
 * against the anchors of ca_file ("" for [tls] ca_file), which
 * tlsconf_load() loaded.  Returns 0, or -1 with errno.
 */
int tlsconf_client(struct io *io, int fd, const char *host,
    const char *ca_file, int verify);

/* Frees everything (at exit, for leak checkers). */
void tlsconf_free(void);

#endif
