/*
 * config.h — the program's configuration: an INI file (inih) whose layout is
 * LLMProxy's YAML layout flattened (see DESIGN.md, "Configuration").
 *
 * A loaded config is immutable.  A reload builds a new one and swaps a
 * pointer; nothing here is shared mutable state.
 */
#ifndef LLMPROXY_CONFIG_H
#define LLMPROXY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "caps.h"
#include "ratelimit.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* [routing] load_balance.  LLMProxy's "weighted" is round_robin: ours
 * honours weights (smooth weighted round robin, as nginx does). */
enum lb_strategy { LB_ROUND_ROBIN, LB_LEAST_CONNECTIONS };

/* [routing.retry] retry_on: what makes a request go to another backend,
 * before any byte of the answer has reached the client. */
#define RETRY_ON_CONNECT  0x1   /* connect_failure: refused, unreachable */
#define RETRY_ON_TIMEOUT  0x2   /* timeout: connect or first token */
#define RETRY_ON_5XX      0x4   /* 5xx: 502, 503 or 504 (a gateway or an
                                   overloaded server, not the request's
                                   fault), or a reset / close before the
                                   response head */
#define RETRY_ON_429      0x8   /* 429: the backend is saturated */

struct backend_conf {
	char name[64];          /* [backends.X] name; default: host:port of url */
	char url[1024];         /* as written */
	char host[256];         /* without brackets for IPv6 literals */
	char port[6];           /* decimal; default 80 */
	char path_prefix[512];  /* url path without trailing '/', "" for none:
	                           prepended to every request path */
	int weight;             /* 1..1000, default 1 */
	int continuous_usage;   /* ask for vLLM's continuous_usage_stats, so an
	                           aborted stream can be billed exactly */
	size_t nmodels;         /* models = a, b: requests for these go only to
	                           backends that list them; 0: any model */
	char models[CAP_BACKEND_MODELS][CAP_MODEL_NAME];
	char health_path[256];  /* "" for [health_check] path */
	int max_connections;    /* requests in flight at most; 0: no cap */
	int https;              /* url = https://: TLS, SNI = host */
	int tls_verify;         /* tls_verify, default on: chain, dates and
	                           name checked; off (lab use) warns at start */
	char tls_ca_file[1024]; /* tls_ca_file: trust anchors for this one;
	                           "" for [tls] ca_file */
	int tls_ca_line;        /* its line (0: not given), for messages */
	char api_key[CAP_BACKEND_KEY_BYTES];  /* sent as Authorization: Bearer
	                           to this backend; "" for none.  A secret:
	                           never logged */
	int line;               /* line of the section header, for messages */
};

/* One place usage records go: [usage.reporters.N] with type = webhook and
 * its [usage.reporters.N.webhook], or LLMProxy v0.1's [usage_hook]. */
struct reporter_conf {
	char name[64];          /* [usage.reporters.N] name; "usage_hook" for the
	                           v0.1 form; default: the section suffix */
	char url[1024];         /* as written */
	char host[256];
	char port[6];           /* default 80, or 443 with https */
	char path[768];         /* path and query of the url, "/" when empty */
	int https;              /* the url is https://: TLS, verified against
	                           [tls] ca_file */
	int timeout_ms;         /* one delivery attempt; default 5s */
	size_t nheaders;        /* [...webhook.headers] Name = value */
	struct {
		char name[64];
		char value[512];
	} headers[CAP_REPORTER_HEADERS];
	int line;               /* line of the section header */
};

/* When the usage spool is fsync()ed.  A record appended to the spool is in
 * the page cache at once, which survives a crash or kill -9 of the process;
 * only fsync() makes it survive a power loss. */
enum spool_fsync {
	SPOOL_FSYNC_NEVER,      /* the kernel writes back when it likes */
	SPOOL_FSYNC_PERIODIC,   /* a background fsync every second (default) */
	SPOOL_FSYNC_ALWAYS,     /* before the request's thread moves on */
};

struct config {
	char path[1024];        /* the file it came from */

	/* [server] (and a top-level `listen` from LLMProxy v0.1 configs) */
	char listen_host[256];  /* "" = every address */
	char listen_port[6];    /* "0" = any free port (tests) */
	int threads;            /* requests served at once */
	int read_timeout_ms;    /* whole request head + body */
	int write_timeout_ms;   /* a write to the client making no progress */
	int idle_timeout_ms;    /* client keep-alive idle */
	int shutdown_timeout_ms;/* SIGTERM: time for requests in flight */
	size_t max_header_bytes;
	uint64_t max_body_size;

	/* [server.tls]: the listener speaks TLS (PEM files, loaded at start) */
	int server_tls;
	char server_cert_file[1024];
	char server_key_file[1024];
	int server_cert_line, server_key_line;  /* for messages (0: not given) */

	/* [tls] ca_file: trust anchors for https backends and webhooks, loaded
	 * at start when some https url needs them */
	char tls_ca_file[1024];
	int tls_ca_line;

	/* [routing] */
	int connect_timeout_ms;
	int first_token_timeout_ms;  /* request sent -> first event / body byte */
	int stream_idle_timeout_ms;  /* [routing] idle_timeout: between events */
	int request_timeout_ms;      /* [routing] timeout: whole request, 0 none */
	enum lb_strategy load_balance;

	/* [routing.retry] */
	int retry_enabled;
	int retry_max;               /* max_retries: other backends tried */
	int retry_initial_wait_ms;   /* initial_wait: pause before a retry */
	int retry_max_wait_ms;       /* max_wait: the pause's cap, and the
	                                longest Retry-After we wait out */
	double retry_multiplier;     /* multiplier: pause growth, default 2 */
	unsigned retry_on;           /* RETRY_ON_* */

	/* [health_check] */
	int hc_enabled;              /* active probes of each backend */
	int hc_interval_ms;
	int hc_timeout_ms;
	char hc_path[256];           /* default /health */
	int hc_expected_status;      /* expected_status; 0: any 2xx */
	int hc_healthy_threshold;    /* passes in a row to come back */
	int hc_unhealthy_threshold;  /* failures in a row to go (probes, and
	                                requests when eject is on) */
	int hc_eject;                /* eject: passive ejection on failed
	                                requests, default on */
	int hc_eject_on_5xx;         /* eject_on_5xx: a 5xx answer counts as a
	                                failure too, default on */
	int hc_eject_cooldown_ms;    /* eject_cooldown: first time out */

	/* [log] */
	enum log_level log_level;
	int log_json;                   /* format = json (else text) */
	char access_file[1024];         /* access_file: "" for stderr */

	/* [metrics] */
	int metrics_enabled;            /* default on */
	char metrics_path[256];         /* default /metrics */
	char metrics_listen_host[256];  /* listen: a separate address for the
	                                   metrics alone; port "" for none (then
	                                   they are served on the main one) */
	char metrics_listen_port[6];
	int metrics_compat;             /* llmproxy_compat: also LLMProxy's
	                                   llmproxy_latency_ms histogram */

	/* [usage] */
	int usage_enabled;              /* enabled: records go to reporters */
	int usage_inject;               /* inject_include_usage, default on */
	int usage_max_wait_ms;          /* max_wait: cap of the retry backoff */
	int usage_batch;                /* batch: records per POST; 1 sends a
	                                   lone object, more a JSON array */
	size_t usage_queue_max;         /* queue_max: records held in memory
	                                   when there is no spool */
	char usage_spool[1024];         /* spool: "" for none */
	uint64_t usage_spool_max_bytes; /* spool_max_bytes */
	enum spool_fsync usage_spool_fsync;  /* spool_fsync */
	size_t nreporters;
	struct reporter_conf *reporters;

	size_t nbackends;
	struct backend_conf *backends;

	/* [auth]: API keys.  The key table is the config's own: a reload
	 * brings new keys (keys_file re-read) with the new config. */
	int auth_enabled;
	size_t nauth_headers;           /* header_names, matched without case */
	char auth_headers[CAP_AUTH_HEADERS][64];
	size_t nskip_paths;             /* skip_paths: no key needed; "/x*"
	                                   is a prefix */
	char skip_paths[CAP_AUTH_SKIP_PATHS][256];
	int skip_paths_default;         /* not given: /health and metrics_path
	                                   (config_default_skip_paths) */
	struct auth_table keys;         /* enabled static providers' keys */

	/* [rate_limit]: all zero when off (a zero limit is no limit). */
	int rl_enabled;
	struct rl_limits rl_global;     /* [rate_limit.global] */
	struct rl_limits rl_per_key;    /* [rate_limit.per_key] */

	/* Things the user should hear about once at start, as complete lines
	 * ("config.ini:12: [storage] is an LLMProxy section llmproxy does not
	 * use; ignored").  main logs them. */
	size_t nnotices;
	char **notices;
};

/*
 * Loads and validates an INI file.  Returns a new config, or NULL with the
 * first error in err as "FILE:LINE: message" (or "FILE: message" when no line
 * is to blame, e.g. a missing file or no backend at all).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* The same from a string; `name` stands for the file name in messages. */
struct config *config_load_string(const char *text, const char *name,
    char *err, size_t errlen);

void config_free(struct config *cfg);

/* When [auth] skip_paths was not given, sets it to /health and the
 * metrics path: again after a reload put back the metrics path in force
 * (server.c), so that the path open is the one served. */
void config_default_skip_paths(struct config *cfg);

/* Parses "500ms", "30s", "2m", "1h", "1m30s" or "0" into milliseconds.
 * Returns 0, or -1 when malformed or larger than INT_MAX ms. */
int config_parse_duration(const char *s, int *ms);

/* Parses "16k", "16KB", "16KiB", "1MB", "10485760" (bytes; k/m/g are powers of
 * 1024) into bytes.  Returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *bytes);

#endif
