/*
 * server.h — the configuration in force: refcounted snapshots, and reload.
 *
 * A snapshot (struct server) is a config with the backend table built from
 * it.  Every request takes a reference to the snapshot current when it
 * starts and keeps it to its last byte, so a reload (SIGHUP) never changes
 * anything under a request in flight: a stream that started before it ends
 * with the backends, timeouts and limits it started with.  A snapshot is
 * freed when the last reference to it goes.
 */
#ifndef LLMPROXY_SERVER_H
#define LLMPROXY_SERVER_H

#include "llmproxy.h"

/* The first snapshot, from the config loaded at start and its TLS files
 * (tlsconf.h; the snapshot takes a reference of its own); that config is
 * kept for the life of the process (the settings that need a restart live in
 * it).  Also starts the health probes.  Returns 0 or -1. */
struct tlsconf;
int server_start(struct config *cfg, struct tlsconf *tls);

/* The snapshot in force, with a reference the caller gives back with
 * server_release(). */
struct server *server_acquire(void);
void server_release(struct server *s);

/* Whether a newer snapshot than s is in force (cheap: one atomic load). */
int server_stale(const struct server *s);

/*
 * SIGHUP: reads the config file again.  A file that cannot be read or is not
 * valid is logged with its file:line and the snapshot in force stays.
 * Otherwise the new config takes effect for new requests: backends (health,
 * ejection and reported models carried over for those with the same name and
 * url), weights, routing, timeouts, limits, the PEM files (certificates
 * rotate: new connections get the new ones), and whatever else requests read
 * from the config; a PEM file that cannot be used keeps the old config too.  Settings bound at start (listen addresses, threads,
 * [metrics], [usage] delivery, [log] format and access_file) keep their old
 * values, each logged as "needs a restart".  Returns 0 when the new config
 * is in force, -1 when the old one stayed.
 */
int server_reload(const char *path);

#endif
