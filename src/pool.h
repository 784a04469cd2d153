/*
 * pool.h — accepting connections, the waiting room, and the worker threads.
 *
 * One thread (the waiting room) accepts connections and watches, with a
 * single poll(), every connection that is not being served: new ones whose
 * request head is still arriving, idle keep-alive ones, and ones lingering
 * after an error reply.  Only a connection with a complete request head is
 * handed to a worker, so slow or idle clients never pin a thread.  Workers
 * are started on demand up to [server] threads; when all are busy a new
 * request is answered 503 at once.
 */
#ifndef LLMPROXY_POOL_H
#define LLMPROXY_POOL_H

#include "llmproxy.h"

/* Starts serving connections accepted on listen_fd (TLS when tls:
 * [server.tls], bound at start), and on metrics_fd (or
 * -1) connections that get the metrics alone; both non-blocking; at most
 * `threads` requests at once.  Each connection serves each request with the
 * configuration in force when the request starts (server.h).  Returns 0, or
 * -1 when the waiting room thread cannot start. */
int pool_start(int threads, int listen_fd, int tls, int metrics_fd);

/*
 * Graceful stop: closes the listening socket at once (new connections are
 * refused), closes idle keep-alive connections and every connection whose
 * request is done, and waits up to timeout_ms for the requests in flight —
 * long streams included — to finish.  Returns how many were still running
 * when it gave up (0: all done).
 */
int pool_drain(int timeout_ms);

#endif
