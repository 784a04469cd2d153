/*
 * webhook.h — delivery of usage records to the configured reporters, off the
 * request path, never lost.
 *
 * Records go into a log: the spool file ([usage] spool) or, without one, a
 * bounded buffer in memory.  Each reporter has a sender thread and a cursor
 * into the log; a record leaves the log when every reporter has had a 2xx for
 * it.  Failed deliveries are retried with exponential backoff and jitter,
 * capped at [usage] max_wait, until they succeed.  With a spool, the cursors
 * are kept beside it, so records survive kill -9 and are replayed at start.
 */
#ifndef LLMPROXY_WEBHOOK_H
#define LLMPROXY_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Opens the spool (replaying what it holds) and starts one sender per
 * reporter.  With no reporter configured it does nothing.  Returns 0, or -1
 * with a message in err (the spool cannot be opened, say).
 */
int webhook_start(const struct config *cfg, char *err, size_t errlen);

/* The anchors https reporters are verified against ([tls] ca_file, loaded
 * at start; they must live as long as the senders).  Before webhook_start. */
struct tls_trust;
void webhook_set_trust(const struct tls_trust *trust);

/*
 * Hands over one record: a complete JSON object, no newline.  Never waits
 * for the network.  With a spool, the record is in the spool file when this
 * returns (and fsync()ed first under spool_fsync = always).  Returns 0, or -1
 * when the log is full and the record was dropped (counted and logged).
 */
int webhook_submit(const char *json, size_t len);

/* Whether any reporter is configured (records are worth making). */
int webhook_active(void);

/*
 * At exit: gives senders up to grace_ms to deliver what is pending, then
 * makes sure the spool and its cursors are on disk.  Records still in a
 * memory-only log are lost, and counted as dropped.
 */
void webhook_stop(int grace_ms);

struct webhook_stats {
	uint64_t delivered;     /* records acknowledged with a 2xx (per reporter) */
	uint64_t failures;      /* delivery attempts that failed */
	uint64_t dropped;       /* records that never made it into the log */
	uint64_t queued;        /* records not yet delivered to every reporter */
	uint64_t spool_bytes;   /* size of the spool file */
};

void webhook_get_stats(struct webhook_stats *out);

#endif
