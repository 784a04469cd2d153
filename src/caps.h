/*
 * caps.h — every size cap and default timeout in one place.
 *
 * Each value can be overridden at build time (-DCAP_...=N) for a router with
 * little memory or a server with much.  Limits that a user tunes per
 * deployment are config keys; their defaults live here too.  Exceeding a cap
 * always ends in a clean error status, never in unbounded growth.
 */
#ifndef LLMPROXY_CAPS_H
#define LLMPROXY_CAPS_H

/* ---- HTTP request head -------------------------------------------------- */

/* Default [server] max_header_bytes: the whole request head (request line and
 * headers).  Past it: 431.  The head buffer grows from CAP_HEAD_BUF_INIT up to
 * this, so a large limit costs nothing until a client uses it. */
#ifndef CAP_HEAD_BYTES_DEFAULT
#define CAP_HEAD_BYTES_DEFAULT (32 * 1024)
#endif
/* Upper bound a config may set for max_header_bytes (LLMProxy's example uses
 * 1 MiB, which we accept). */
#ifndef CAP_HEAD_BYTES_MAX
#define CAP_HEAD_BYTES_MAX (1024 * 1024)
#endif
#ifndef CAP_HEAD_BUF_INIT
#define CAP_HEAD_BUF_INIT (4 * 1024)
#endif
/* Request-target longer than this: 414. */
#ifndef CAP_URI_BYTES
#define CAP_URI_BYTES (8 * 1024)
#endif
/* Header fields in one request or response head: more gives 431 (request) or
 * 502 (response). */
#ifndef CAP_HEADERS
#define CAP_HEADERS 100
#endif
/* Method token length. */
#ifndef CAP_METHOD_BYTES
#define CAP_METHOD_BYTES 32
#endif

/* ---- Bodies -------------------------------------------------------------- */

/* Default [server] max_body_size (LLMProxy's default, 10 MiB): larger bodies
 * get 413, decided from Content-Length before a byte of the body is read. */
#ifndef CAP_BODY_BYTES_DEFAULT
#define CAP_BODY_BYTES_DEFAULT (10 * 1024 * 1024)
#endif
/* A request body up to this size is collected in the waiting room (which
 * holds no thread) before a worker gets the request, so that clients
 * trickling bodies (slow POST) cannot occupy every worker.  Each parked
 * connection may hold this much besides its head. */
#ifndef CAP_BODY_PREREAD
#define CAP_BODY_PREREAD (64 * 1024)
#endif
/* Chunked framing: a chunk-size line (size + extensions) longer than this,
 * or trailers larger than this, are malformed. */
#ifndef CAP_CHUNK_LINE_BYTES
#define CAP_CHUNK_LINE_BYTES 1024
#endif
#ifndef CAP_TRAILER_BYTES
#define CAP_TRAILER_BYTES (8 * 1024)
#endif
/* Largest [server] max_body_size a config may set. */
#ifndef CAP_BODY_BYTES_MAX
#define CAP_BODY_BYTES_MAX (1024 * 1024 * 1024)
#endif
/* JSON containers nested deeper than this are refused with 413: jsmn's work
 * grows with the square of the depth (100,000 nested arrays, a 200 KB body,
 * took 11 s).  serde_json's default recursion limit; real requests, JSON
 * Schemas in tools included, stay far below it. */
#ifndef CAP_JSON_DEPTH
#define CAP_JSON_DEPTH 128
#endif
/* JSON tokens in one request body (jsmn): more is refused with 413. */
#ifndef CAP_JSON_TOKENS
#define CAP_JSON_TOKENS (1024 * 1024)
#endif

/* ---- Upstream response --------------------------------------------------- */

/* Response head from a backend; larger is a 502. */
#ifndef CAP_RESPONSE_HEAD_BYTES
#define CAP_RESPONSE_HEAD_BYTES (16 * 1024)
#endif
/* The relay buffer starts at CAP_RELAY_BUF_INIT and doubles while one SSE
 * event does not fit, up to CAP_SSE_EVENT_BYTES.  An event larger than that is
 * passed through unexamined as its bytes arrive (see relay.c), so memory per
 * stream stays bounded and the client still gets every byte. */
#ifndef CAP_RELAY_BUF_INIT
#define CAP_RELAY_BUF_INIT (8 * 1024)
#endif
#ifndef CAP_SSE_EVENT_BYTES
#define CAP_SSE_EVENT_BYTES (256 * 1024)
#endif

/* ---- Connections and threads --------------------------------------------- */

/* Default [server] threads: requests served at once. */
#ifndef CAP_THREADS_DEFAULT
#define CAP_THREADS_DEFAULT 64
#endif
#ifndef CAP_THREADS_MAX
#define CAP_THREADS_MAX 4096
#endif
/* Worker stack.  Set explicitly: musl's default is 128 KiB, glibc's 8 MiB;
 * nothing large ever lives on a worker's stack. */
#ifndef CAP_THREAD_STACK
#define CAP_THREAD_STACK (128 * 1024)
#endif
/* A request whose head is complete waits at most this long for a worker
 * when every one is busy, then gets 503: long enough to bridge the moment
 * between a worker writing its last byte and taking the next request, far
 * below what a client would notice. */
#ifndef CAP_DISPATCH_WAIT_MS
#define CAP_DISPATCH_WAIT_MS 5
#endif
/* Client connections held open (in flight plus idle keep-alive plus heads
 * still arriving).  Beyond it a new connection is answered 503 and closed. */
#ifndef CAP_CONNECTIONS
#define CAP_CONNECTIONS 4096
#endif
/* listen(2) backlog. */
#ifndef CAP_LISTEN_BACKLOG
#define CAP_LISTEN_BACKLOG 511
#endif
/* Idle keep-alive connections kept per backend. */
#ifndef CAP_UPSTREAM_IDLE_PER_BACKEND
#define CAP_UPSTREAM_IDLE_PER_BACKEND 32
#endif
/* An idle upstream connection older than this is closed rather than reused. */
#ifndef CAP_UPSTREAM_IDLE_MS
#define CAP_UPSTREAM_IDLE_MS (30 * 1000)
#endif
/* Models a backend's `models` list may name, and the length of one name. */
#ifndef CAP_BACKEND_MODELS
#define CAP_BACKEND_MODELS 32
#endif
#ifndef CAP_MODEL_NAME
#define CAP_MODEL_NAME 128
#endif
/* [routing.retry] max_retries at most. */
#ifndef CAP_RETRIES
#define CAP_RETRIES 8
#endif
/* Defaults of [health_check] and [routing.retry]. */
#ifndef CAP_HEALTH_INTERVAL_MS
#define CAP_HEALTH_INTERVAL_MS (10 * 1000)
#endif
#ifndef CAP_HEALTH_TIMEOUT_MS
#define CAP_HEALTH_TIMEOUT_MS (5 * 1000)
#endif
#ifndef CAP_EJECT_COOLDOWN_MS
#define CAP_EJECT_COOLDOWN_MS (10 * 1000)
#endif
/* An ejected backend's cool-down doubles on each ejection in a row, up to
 * this many times the first. */
#ifndef CAP_EJECT_COOLDOWN_GROWTH
#define CAP_EJECT_COOLDOWN_GROWTH 32
#endif
#ifndef CAP_RETRY_INITIAL_WAIT_MS
#define CAP_RETRY_INITIAL_WAIT_MS 100
#endif
#ifndef CAP_RETRY_MAX_WAIT_MS
#define CAP_RETRY_MAX_WAIT_MS (2 * 1000)
#endif
/* A /v1/models answer from a backend: bytes read, and ids kept per backend. */
#ifndef CAP_MODELS_RESPONSE_BYTES
#define CAP_MODELS_RESPONSE_BYTES (64 * 1024)
#endif
/* [auth.pipeline.N] providers one config may list. */
#ifndef CAP_AUTH_PROVIDERS
#define CAP_AUTH_PROVIDERS 16
#endif
/* Backends in one config. */
#ifndef CAP_BACKENDS
#define CAP_BACKENDS 64
#endif
/* After an error reply the connection is half-closed and the rest of what the
 * client sends is read and dropped for at most this long (or this many bytes)
 * so that the reply is not destroyed by a TCP reset (lingering close). */
#ifndef CAP_LINGER_MS
#define CAP_LINGER_MS 2000
#endif
#ifndef CAP_LINGER_BYTES
#define CAP_LINGER_BYTES (256 * 1024)
#endif

/* ---- Default timeouts (milliseconds) -------------------------------------- */

/* [server] read_timeout: the whole request head and body must arrive within
 * this (slowloris). */
#ifndef CAP_READ_TIMEOUT_MS
#define CAP_READ_TIMEOUT_MS (30 * 1000)
#endif
/* [server] write_timeout: a write to a client that makes no progress for this
 * long ends the connection (a client that stopped reading). */
#ifndef CAP_WRITE_TIMEOUT_MS
#define CAP_WRITE_TIMEOUT_MS (60 * 1000)
#endif
/* [server] idle_timeout: keep-alive connection with no request. */
#ifndef CAP_IDLE_TIMEOUT_MS
#define CAP_IDLE_TIMEOUT_MS (120 * 1000)
#endif
/* [server] shutdown_timeout: on SIGTERM, requests in flight (long streams
 * included) get this long to finish before the process exits. */
#ifndef CAP_SHUTDOWN_TIMEOUT_MS
#define CAP_SHUTDOWN_TIMEOUT_MS (30 * 1000)
#endif
/* [routing] connect_timeout. */
#ifndef CAP_CONNECT_TIMEOUT_MS
#define CAP_CONNECT_TIMEOUT_MS (5 * 1000)
#endif
/* [routing] first_token_timeout: request sent -> first event or body byte.
 * Generous: prefill of a long prompt on a loaded edge GPU takes long, and for
 * a non-streamed completion this covers the whole generation. */
#ifndef CAP_FIRST_TOKEN_TIMEOUT_MS
#define CAP_FIRST_TOKEN_TIMEOUT_MS (120 * 1000)
#endif
/* [routing] idle_timeout: between two events (or body reads) of a response. */
#ifndef CAP_STREAM_IDLE_TIMEOUT_MS
#define CAP_STREAM_IDLE_TIMEOUT_MS (60 * 1000)
#endif

/* ---- Usage metering ---------------------------------------------------------- */

/* Usage records reporters ([usage.reporters.N] plus [usage_hook]). */
#ifndef CAP_REPORTERS
#define CAP_REPORTERS 8
#endif
/* Custom header fields per reporter. */
#ifndef CAP_REPORTER_HEADERS
#define CAP_REPORTER_HEADERS 16
#endif
/* One usage record as JSON. */
#ifndef CAP_RECORD_BYTES
#define CAP_RECORD_BYTES 2048
#endif
/* The last bytes of a non-streamed response body are kept to find its
 * "usage" object (it comes last in OpenAI-shaped bodies); never the body. */
#ifndef CAP_USAGE_TAIL
#define CAP_USAGE_TAIL 4096
#endif
/* Default [usage] queue_max (records in memory without a spool), max_wait,
 * spool_max_bytes. */
#ifndef CAP_USAGE_QUEUE_DEFAULT
#define CAP_USAGE_QUEUE_DEFAULT 10000
#endif
#ifndef CAP_USAGE_MAX_WAIT_MS
#define CAP_USAGE_MAX_WAIT_MS (30 * 1000)
#endif
#ifndef CAP_SPOOL_BYTES_DEFAULT
#define CAP_SPOOL_BYTES_DEFAULT (256ULL * 1024 * 1024)
#endif
/* First retry of a failed delivery waits this long; then it doubles, with
 * jitter, up to max_wait. */
#ifndef CAP_USAGE_FIRST_RETRY_MS
#define CAP_USAGE_FIRST_RETRY_MS 250
#endif
/* Webhook timeout when the config gives none. */
#ifndef CAP_WEBHOOK_TIMEOUT_MS
#define CAP_WEBHOOK_TIMEOUT_MS (5 * 1000)
#endif
/* Records per POST at most ([usage] batch). */
#ifndef CAP_USAGE_BATCH_MAX
#define CAP_USAGE_BATCH_MAX 1000
#endif

/* A spool file smaller than this is never rewritten to reclaim its head:
 * copying costs more than the space is worth. */
#ifndef CAP_SPOOL_REWRITE_BYTES
#define CAP_SPOOL_REWRITE_BYTES (1024 * 1024)
#endif
/* A spool cursor file larger than this is not ours (8 readers need < 1 KiB). */
#ifndef CAP_SPOOL_CURSOR_FILE
#define CAP_SPOOL_CURSOR_FILE (64 * 1024)
#endif

/* ---- Logging -------------------------------------------------------------- */

/* One log line, written with a single write(2); longer lines are cut. */
#ifndef CAP_LOG_LINE
#define CAP_LOG_LINE 2048
#endif

/* ---- Config --------------------------------------------------------------- */

/* One line of the INI file (inih's line buffer). */
#ifndef CAP_CONFIG_LINE
#define CAP_CONFIG_LINE 4096
#endif

/* ---- API keys and limits ---------------------------------------------------- */

/* Keys one config may hold (static keys and keys_file together). */
#ifndef CAP_AUTH_KEYS
#define CAP_AUTH_KEYS 65536
#endif
/* A key's secret, name (metrics label, log field) and user id, in bytes. */
#ifndef CAP_AUTH_KEY_BYTES
#define CAP_AUTH_KEY_BYTES 512
#endif
#ifndef CAP_AUTH_NAME
#define CAP_AUTH_NAME 64
#endif
#ifndef CAP_AUTH_USER
#define CAP_AUTH_USER 128
#endif
/* One line of a keys_file. */
#ifndef CAP_AUTH_LINE
#define CAP_AUTH_LINE 1024
#endif
/* [auth] header_names and skip_paths entries. */
#ifndef CAP_AUTH_HEADERS
#define CAP_AUTH_HEADERS 8
#endif
#ifndef CAP_AUTH_SKIP_PATHS
#define CAP_AUTH_SKIP_PATHS 16
#endif
/* Per-key limiter states kept across reloads (one per key name seen).  When
 * full, states that are idle and refilled (the same as new ones) are
 * dropped to make room. */
#ifndef CAP_LIMIT_STATES
#define CAP_LIMIT_STATES (2 * CAP_AUTH_KEYS)
#endif
/* A backend's api_key. */
#ifndef CAP_BACKEND_KEY_BYTES
#define CAP_BACKEND_KEY_BYTES 512
#endif

#endif
