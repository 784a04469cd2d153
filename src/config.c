/*
 * config.c — an INI file (inih) -> an immutable struct config.
 *
 * The INI layout is LLMProxy's YAML layout flattened (DESIGN.md,
 * "Configuration"): `[server]`, `[server.tls]`, `[backends.0]`, ...  What
 * every section and key means is data, in the two tables below: `sections`
 * says which sections exist and whether llmproxy uses them; `keys` says which
 * keys exist, how a value is parsed and where it is stored.  When llmproxy
 * gains a feature, its rows move from LATER to SUPPORTED.
 *
 * Everything in a file ends in one of three ways:
 *   - used: parsed and validated; a bad value is an error with its line;
 *   - known to LLMProxy but not used here: named once, as a notice;
 *   - unknown (a typo, say): an error with its line.
 * A setting whose absence would weaken security (API-key auth, a TLS
 * listener) is an error, never a notice: running open when the user asked
 * for authentication is worse than not starting.
 *
 * inih runs over our own line reader (ini_parse_stream).  The reader counts
 * lines (Debian's inih passes the handler none), refuses over-long lines
 * (inih would split them silently), and sees every section header, so that a
 * section with no keys is checked too, a backend's errors can cite its
 * header, and section names are kept whole (inih cuts them at 49 bytes).
 *
 * Loading sets inih's global switches, so it is not thread-safe: main loads
 * the config (and a reload builds a new one) from one thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

/* [backends.X] ranges. */
#define WEIGHT_MAX          1000
#define MAX_CONNECTIONS_MAX 100000

/* [routing.retry] and [health_check] ranges. */
#define RETRY_WAIT_MAX_MS   (10 * 60 * 1000)
#define HC_INTERVAL_MIN_MS  100
#define HC_MAX_MS           (3600 * 1000)
#define HC_THRESHOLD_MAX    100

/* Defaults with no cap of their own in caps.h. */
#define RETRY_MAX_DEFAULT        2
#define RETRY_MULTIPLIER_DEFAULT 2.0
#define HC_HEALTHY_DEFAULT       2
#define HC_UNHEALTHY_DEFAULT     3

/* [rate_limit] ranges. */
#define RATE_MAX            1000000
#define TOKENS_MAX          1000000000000LL
#define CONCURRENT_MAX      100000

/* [usage] ranges. */
#define MAX_WAIT_MAX_MS     (3600 * 1000)
#define QUEUE_MAX_MAX       10000000
#define SPOOL_BYTES_MIN     (64ULL << 10)
#define SPOOL_BYTES_MAX     (1ULL << 40)

/* LLMProxy's webhook retry count: llmproxy has no count to honour. */
#define RETRY_WHY "llmproxy retries every record until it is delivered " \
    "(backoff capped by [usage] max_wait)"

/* LLMProxy's log rotation: a job for logrotate.  The access file is opened
 * with O_APPEND, so copytruncate works without a signal: lines go on at the
 * start of the emptied file. */
#define ROTATE_WHY "llmproxy does not rotate its log file; use logrotate " \
    "(copytruncate)"

/* [metrics]: label values come from the config alone. */
#define LABELS_WHY "label values come only from the config (backend and key " \
    "names), never from requests, so that the number of series stays bounded " \
    "and no secret (an API key) becomes a label"
#define BUCKETS_WHY "llmproxy's histogram buckets are fixed, to resolve " \
    "milliseconds"
#define LOGGING_WHY "llmproxy's access log is [log] format and access_file"
#define STATUS_CODES_WHY "llmproxy answers 401 (no or unknown key), 403 " \
    "(disabled or expired) and 429 (limits) in OpenAI's error format"
#define QUOTA_WHY "without total_quota there is nothing to count against; " \
    "[rate_limit.per_key] tokens_per_minute limits tokens"

#if defined(__GNUC__)
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF(f, a)
#endif

struct parse;

/* What llmproxy does with a section or key that LLMProxy documents. */
enum use {
	SUPPORTED,      /* parsed, validated and used */
	LATER,          /* a feature llmproxy does not have yet: notice, ignored */
	IGNORED,        /* an LLMProxy feature llmproxy leaves out: notice, ignored */
	REFUSE_IF_TRUE, /* a security switch llmproxy cannot honour yet: true is
	                   an error, false is ignored like its section */
};

/*
 * A section pattern matches a section name element by element; "*" matches
 * any one element (a list item: `backends.*` matches backends.0 and
 * backends.gpu1).
 *
 * SUPPORTED: the section's keys are looked up in `keys`; an unknown key is an
 * error.  Subsections need rows of their own.
 * LATER / IGNORED: the section and everything below it (list items, deeper
 * maps) is ignored, with one notice naming this row at the first header in
 * it.  Only REFUSE_IF_TRUE keys are still looked at.
 */
struct section_rule {
	const char *section;
	enum use use;
	int (*open)(struct parse *, const char *name);  /* at each header */
	const char *why;      /* LATER / IGNORED: more for the notice, or NULL */
};

static int open_backend(struct parse *p, const char *name);
static int open_reporter(struct parse *p, const char *name);
static int open_health_check(struct parse *p, const char *name);
static int open_auth_provider(struct parse *p, const char *name);
static int open_auth_key(struct parse *p, const char *name);

static const struct section_rule sections[] = {
	/* section              use        at each header  notice */
	{ "",                   SUPPORTED, NULL, NULL },  /* before any header: listen */
	{ "server",             SUPPORTED, NULL, NULL },
	{ "server.cors",        IGNORED,   NULL, NULL },
	{ "server.tls",         SUPPORTED, NULL, NULL },
	{ "tls",                SUPPORTED, NULL, NULL },  /* llmproxy's: ca_file */
	{ "log",                SUPPORTED, NULL, NULL },
	{ "log.file",           SUPPORTED, NULL, NULL },  /* with [log] output = file */
	{ "backends.*",         SUPPORTED, open_backend, NULL },
	{ "backends.*.headers", LATER,     NULL, NULL },  /* a map: any key */
	{ "routing",            SUPPORTED, NULL, NULL },
	{ "routing.retry",      SUPPORTED, NULL, NULL },
	{ "routing.script",     IGNORED,   NULL, NULL },
	{ "routing.fallback",   IGNORED,   NULL, NULL },
	{ "usage_hook",         SUPPORTED, open_reporter, NULL },  /* LLMProxy v0.1 */
	{ "usage",              SUPPORTED, NULL, NULL },
	{ "usage.reporters.*",  SUPPORTED, open_reporter, NULL },
	{ "usage.reporters.*.webhook", SUPPORTED, open_reporter, NULL },
	{ "usage.reporters.*.webhook.headers", SUPPORTED, open_reporter, NULL },  /* a map: any key */
	{ "usage.reporters.*.script",   IGNORED, NULL, NULL },
	{ "usage.reporters.*.database", IGNORED, NULL, NULL },
	{ "usage.reporters.*.builtin",  IGNORED, NULL, NULL },
	{ "health_check",       SUPPORTED, open_health_check, NULL },
	{ "health_check.script", IGNORED,  NULL, NULL },
	{ "metrics",            SUPPORTED, NULL, NULL },
	{ "rate_limit",         SUPPORTED, NULL, NULL },
	{ "rate_limit.global",  SUPPORTED, NULL, NULL },
	{ "rate_limit.per_key", SUPPORTED, NULL, NULL },
	{ "rate_limit.script",  IGNORED,   NULL, NULL },
	{ "auth",               SUPPORTED, NULL, NULL },
	{ "auth.status_codes",  IGNORED,   NULL, STATUS_CODES_WHY },
	/* Providers: static is llmproxy's; any other type enabled is refused
	 * at the end (finish_auth), its settings ignored here. */
	{ "auth.pipeline.*",    SUPPORTED, open_auth_provider, NULL },
	{ "auth.pipeline.*.static", SUPPORTED, open_auth_provider, NULL },
	{ "auth.pipeline.*.static.keys.*", SUPPORTED, open_auth_key, NULL },
	{ "auth.pipeline.*.redis",    IGNORED, NULL, NULL },
	{ "auth.pipeline.*.database", IGNORED, NULL, NULL },
	{ "auth.pipeline.*.webhook",  IGNORED, NULL, NULL },
	{ "auth.pipeline.*.lua",      IGNORED, NULL, NULL },
	{ "auth.pipeline.*.script",   IGNORED, NULL, NULL },
	{ "admin",              IGNORED,   NULL, NULL },
	{ "storage",            IGNORED,   NULL, NULL },
	{ "discovery",          IGNORED,   NULL, NULL },
	{ "logging",            IGNORED,   NULL, LOGGING_WHY },
	{ "hooks",              IGNORED,   NULL, NULL },
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* What a key rule's `off` is an offset into. */
enum where { NOWHERE, IN_CONFIG, IN_BACKEND, IN_REPORTER };

struct key_rule {
	const char *section;  /* a pattern, as in `sections` */
	const char *key;      /* "*": any key (a map, e.g. header fields) */
	enum use use;
	/* SUPPORTED, REFUSE_IF_TRUE: parses the value (quotes removed) and
	 * stores it; 0, or -1 with the error recorded. */
	int (*set)(struct parse *, const struct key_rule *, const char *value);
	enum where where;
	size_t off;
	long long min, max;   /* range, where the parser has one */
	const char *why;      /* REFUSE_IF_TRUE: the reason; IGNORED: why,
	                         for the notice (NULL: nothing to add) */
};

static int set_listen(struct parse *, const struct key_rule *, const char *);
static int set_int(struct parse *, const struct key_rule *, const char *);
static int set_count(struct parse *, const struct key_rule *, const char *);
static int set_bool(struct parse *, const struct key_rule *, const char *);
static int set_ms(struct parse *, const struct key_rule *, const char *);
static int set_size(struct parse *, const struct key_rule *, const char *);
static int set_size64(struct parse *, const struct key_rule *, const char *);
static int set_log_level(struct parse *, const struct key_rule *, const char *);
static int set_log_format(struct parse *, const struct key_rule *, const char *);
static int set_log_output(struct parse *, const struct key_rule *, const char *);
static int set_log_file(struct parse *, const struct key_rule *, const char *);
static int set_access_file(struct parse *, const struct key_rule *, const char *);
static int set_metrics_path(struct parse *, const struct key_rule *, const char *);
static int set_metrics_listen(struct parse *, const struct key_rule *, const char *);
static int set_name(struct parse *, const struct key_rule *, const char *);
static int set_url(struct parse *, const struct key_rule *, const char *);
static int set_spool(struct parse *, const struct key_rule *, const char *);
static int set_spool_fsync(struct parse *, const struct key_rule *, const char *);
static int set_rep_name(struct parse *, const struct key_rule *, const char *);
static int set_rep_type(struct parse *, const struct key_rule *, const char *);
static int set_rep_enabled(struct parse *, const struct key_rule *, const char *);
static int set_rep_url(struct parse *, const struct key_rule *, const char *);
static int set_method(struct parse *, const struct key_rule *, const char *);
static int set_header(struct parse *, const struct key_rule *, const char *);
static int set_load_balance(struct parse *, const struct key_rule *, const char *);
static int set_multiplier(struct parse *, const struct key_rule *, const char *);
static int set_retry_on(struct parse *, const struct key_rule *, const char *);
static int set_path(struct parse *, const struct key_rule *, const char *);
static int set_hc_method(struct parse *, const struct key_rule *, const char *);
static int set_models(struct parse *, const struct key_rule *, const char *);
static int set_pem_file(struct parse *, const struct key_rule *, const char *);
static int given(struct parse *p, const char *section, const char *key, const char **text);
static int set_client_auth(struct parse *, const struct key_rule *, const char *);
static int set_flag(struct parse *, const struct key_rule *, const char *);
static int set_api_key(struct parse *, const struct key_rule *, const char *);
static int set_rate(struct parse *, const struct key_rule *, const char *);
static int set_rl_storage(struct parse *, const struct key_rule *, const char *);
static int set_auth_mode(struct parse *, const struct key_rule *, const char *);
static int set_header_names(struct parse *, const struct key_rule *, const char *);
static int set_skip_paths(struct parse *, const struct key_rule *, const char *);
static int set_ap_name(struct parse *, const struct key_rule *, const char *);
static int set_ap_type(struct parse *, const struct key_rule *, const char *);
static int set_ap_enabled(struct parse *, const struct key_rule *, const char *);
static int set_keys_file(struct parse *, const struct key_rule *, const char *);
static int set_ak_key(struct parse *, const struct key_rule *, const char *);
static int bad_secret(struct parse *, const char *, ...) PRINTF(2, 3);
static int set_ak_text(struct parse *, const struct key_rule *, const char *);
static int set_ak_status(struct parse *, const struct key_rule *, const char *);
static int set_ak_expires(struct parse *, const struct key_rule *, const char *);
static int set_ak_refused(struct parse *, const struct key_rule *, const char *);

#define CFG(f)  IN_CONFIG, offsetof(struct config, f)
#define BE(f)   IN_BACKEND, offsetof(struct backend_conf, f)
#define REP(f)  IN_REPORTER, offsetof(struct reporter_conf, f)
#define NOFIELD NOWHERE, 0

/* A char array field's size, as a set_path rule's max. */
#define PATH_MAX_CFG ((long long)sizeof ((struct config *)0)->hc_path)
#define PATH_MAX_BE  ((long long)sizeof ((struct backend_conf *)0)->health_path)

/*
 * Every key of a SUPPORTED section, from LLMProxy's config-reference.yaml and
 * config.yaml.example (commented-out keys included: they are documented
 * options too), plus llmproxy's own (threads, first_token_timeout,
 * [routing] idle_timeout, [backends.X] continuous_usage, health_path and
 * max_connections, [health_check] eject, eject_on_5xx and eject_cooldown,
 * every [usage] key but enabled).  Keys of LATER / IGNORED sections are not
 * listed: those sections are ignored whole.
 */
static const struct key_rule keys[] = {
	/* section    key                    use        parser          field                          min   max */
	{ "",         "listen",              SUPPORTED, set_listen,     NOFIELD,                       0, 0, NULL },

	{ "server",   "listen",              SUPPORTED, set_listen,     NOFIELD,                       0, 0, NULL },
	{ "server",   "threads",             SUPPORTED, set_int,        CFG(threads),                  1, CAP_THREADS_MAX, NULL },
	{ "server",   "read_timeout",        SUPPORTED, set_ms,         CFG(read_timeout_ms),          1, INT_MAX, NULL },
	{ "server",   "write_timeout",       SUPPORTED, set_ms,         CFG(write_timeout_ms),         1, INT_MAX, NULL },
	{ "server",   "idle_timeout",        SUPPORTED, set_ms,         CFG(idle_timeout_ms),          1, INT_MAX, NULL },
	{ "server",   "shutdown_timeout",    SUPPORTED, set_ms,         CFG(shutdown_timeout_ms),      0, INT_MAX, NULL },
	{ "server",   "max_header_bytes",    SUPPORTED, set_size,       CFG(max_header_bytes),         1024, CAP_HEAD_BYTES_MAX, NULL },
	{ "server",   "max_body_size",       SUPPORTED, set_size64,     CFG(max_body_size),            1, CAP_BODY_BYTES_MAX, NULL },

	/* enabled without the files: see finish_tls(). */
	{ "server.tls", "enabled",           SUPPORTED, set_bool,       CFG(server_tls),               0, 0, NULL },
	{ "server.tls", "cert_file",         SUPPORTED, set_pem_file,   CFG(server_cert_file),         0, 0, NULL },
	{ "server.tls", "key_file",          SUPPORTED, set_pem_file,   CFG(server_key_file),          0, 0, NULL },
	{ "server.tls", "client_auth",       SUPPORTED, set_client_auth, NOFIELD,                      0, 0, NULL },
	{ "server.tls", "client_ca_file",    IGNORED,   NULL,           NOFIELD,                       0, 0,
	  "client certificates are not asked for (client_auth = none)" },
	{ "tls",      "ca_file",             SUPPORTED, set_pem_file,   CFG(tls_ca_file),              0, 0, NULL },

	/* output = file and [log.file] path: see finish_log(). */
	{ "log",      "level",               SUPPORTED, set_log_level,  CFG(log_level),                0, 0, NULL },
	{ "log",      "format",              SUPPORTED, set_log_format, CFG(log_json),                 0, 0, NULL },
	{ "log",      "output",              SUPPORTED, set_log_output, NOFIELD,                       0, 0, NULL },
	{ "log",      "access_file",         SUPPORTED, set_access_file, CFG(access_file),             0, 0, NULL },
	{ "log.file", "path",                SUPPORTED, set_log_file,   NOFIELD,                       0, 0, NULL },
	{ "log.file", "rotate",              IGNORED,   NULL,           NOFIELD,                       0, 0, ROTATE_WHY },
	{ "log.file", "max_size",            IGNORED,   NULL,           NOFIELD,                       0, 0, ROTATE_WHY },
	{ "log.file", "max_age",             IGNORED,   NULL,           NOFIELD,                       0, 0, ROTATE_WHY },
	{ "log.file", "compress",            IGNORED,   NULL,           NOFIELD,                       0, 0, ROTATE_WHY },

	/* listen differs from the proxy's own: see finish_metrics(). */
	{ "metrics",  "enabled",             SUPPORTED, set_bool,       CFG(metrics_enabled),          0, 0, NULL },
	{ "metrics",  "path",                SUPPORTED, set_metrics_path, CFG(metrics_path),           0, 0, NULL },
	{ "metrics",  "listen",              SUPPORTED, set_metrics_listen, CFG(metrics_listen_host),  0, 0, NULL },
	{ "metrics",  "llmproxy_compat",     SUPPORTED, set_bool,       CFG(metrics_compat),           0, 0, NULL },
	{ "metrics",  "custom_labels",       IGNORED,   NULL,           NOFIELD,                       0, 0, LABELS_WHY },
	{ "metrics",  "latency_buckets",     IGNORED,   NULL,           NOFIELD,                       0, 0, BUCKETS_WHY },

	{ "backends.*", "name",              SUPPORTED, set_name,       BE(name),                      0, 0, NULL },
	{ "backends.*", "url",               SUPPORTED, set_url,        NOFIELD,                       0, 0, NULL },
	{ "backends.*", "weight",            SUPPORTED, set_int,        BE(weight),                    1, WEIGHT_MAX, NULL },
	{ "backends.*", "timeout",           LATER,     NULL,           NOFIELD,                       0, 0, NULL },
	{ "backends.*", "connect_timeout",   LATER,     NULL,           NOFIELD,                       0, 0, NULL },
	{ "backends.*", "max_idle_conns",    IGNORED,   NULL,           NOFIELD,                       0, 0, NULL },
	{ "backends.*", "continuous_usage",  SUPPORTED, set_bool,       BE(continuous_usage),          0, 0, NULL },
	{ "backends.*", "models",            SUPPORTED, set_models,     NOFIELD,                       0, 0, NULL },
	{ "backends.*", "health_path",       SUPPORTED, set_path,       BE(health_path),               0, PATH_MAX_BE, NULL },
	{ "backends.*", "max_connections",   SUPPORTED, set_int,        BE(max_connections),           0, MAX_CONNECTIONS_MAX, NULL },
	{ "backends.*", "tls_ca_file",       SUPPORTED, set_pem_file,   BE(tls_ca_file),               0, 0, NULL },
	{ "backends.*", "tls_verify",        SUPPORTED, set_bool,       BE(tls_verify),                0, 0, NULL },
	{ "backends.*", "api_key",           SUPPORTED, set_api_key,    BE(api_key),                   0, 0, NULL },

	{ "routing",  "timeout",             SUPPORTED, set_ms,         CFG(request_timeout_ms),       0, INT_MAX, NULL },
	{ "routing",  "connect_timeout",     SUPPORTED, set_ms,         CFG(connect_timeout_ms),       1, INT_MAX, NULL },
	{ "routing",  "first_token_timeout", SUPPORTED, set_ms,         CFG(first_token_timeout_ms),   1, INT_MAX, NULL },
	{ "routing",  "idle_timeout",        SUPPORTED, set_ms,         CFG(stream_idle_timeout_ms),   1, INT_MAX, NULL },
	{ "routing",  "load_balance",        SUPPORTED, set_load_balance, CFG(load_balance),           0, 0, NULL },
	{ "routing",  "enabled",             IGNORED,   NULL,           NOFIELD,                       0, 0, NULL },

	/* Failover before the first byte.  initial_wait <= max_wait: see
	 * finish_retry_health(). */
	{ "routing.retry", "enabled",        SUPPORTED, set_bool,       CFG(retry_enabled),            0, 0, NULL },
	{ "routing.retry", "max_retries",    SUPPORTED, set_int,        CFG(retry_max),                0, CAP_RETRIES, NULL },
	{ "routing.retry", "initial_wait",   SUPPORTED, set_ms,         CFG(retry_initial_wait_ms),    0, RETRY_WAIT_MAX_MS, NULL },
	{ "routing.retry", "max_wait",       SUPPORTED, set_ms,         CFG(retry_max_wait_ms),        0, RETRY_WAIT_MAX_MS, NULL },
	{ "routing.retry", "multiplier",     SUPPORTED, set_multiplier, CFG(retry_multiplier),         0, 0, NULL },
	{ "routing.retry", "retry_on",       SUPPORTED, set_retry_on,   CFG(retry_on),                 0, 0, NULL },

	/* Active probes and passive ejection.  timeout <= interval, and
	 * enabled's default: see finish_retry_health(). */
	{ "health_check", "enabled",         SUPPORTED, set_bool,       CFG(hc_enabled),               0, 0, NULL },
	{ "health_check", "interval",        SUPPORTED, set_ms,         CFG(hc_interval_ms),           HC_INTERVAL_MIN_MS, HC_MAX_MS, NULL },
	{ "health_check", "timeout",         SUPPORTED, set_ms,         CFG(hc_timeout_ms),            1, HC_MAX_MS, NULL },
	{ "health_check", "method",          SUPPORTED, set_hc_method,  NOFIELD,                       0, 0, NULL },
	{ "health_check", "path",            SUPPORTED, set_path,       CFG(hc_path),                  0, PATH_MAX_CFG, NULL },
	{ "health_check", "expected_status", SUPPORTED, set_int,        CFG(hc_expected_status),       100, 599, NULL },
	{ "health_check", "healthy_threshold", SUPPORTED, set_int,      CFG(hc_healthy_threshold),     1, HC_THRESHOLD_MAX, NULL },
	{ "health_check", "unhealthy_threshold", SUPPORTED, set_int,    CFG(hc_unhealthy_threshold),   1, HC_THRESHOLD_MAX, NULL },
	{ "health_check", "eject",           SUPPORTED, set_bool,       CFG(hc_eject),                 0, 0, NULL },
	{ "health_check", "eject_on_5xx",    SUPPORTED, set_bool,       CFG(hc_eject_on_5xx),          0, 0, NULL },
	{ "health_check", "eject_cooldown",  SUPPORTED, set_ms,         CFG(hc_eject_cooldown_ms),     1, HC_MAX_MS, NULL },

	/* API keys.  Whether auth asked for can be given (provider types,
	 * keys at all) is decided at the end: finish_auth. */
	{ "auth",     "enabled",             SUPPORTED, set_bool,       CFG(auth_enabled),             0, 0, NULL },
	{ "auth",     "mode",                SUPPORTED, set_auth_mode,  NOFIELD,                       0, 0, NULL },
	{ "auth",     "header_names",        SUPPORTED, set_header_names, NOFIELD,                     0, 0, NULL },
	{ "auth",     "skip_paths",          SUPPORTED, set_skip_paths, NOFIELD,                       0, 0, NULL },
	{ "auth.pipeline.*", "name",         SUPPORTED, set_ap_name,    NOFIELD,                       0, 0, NULL },
	{ "auth.pipeline.*", "type",         SUPPORTED, set_ap_type,    NOFIELD,                       0, 0, NULL },
	{ "auth.pipeline.*", "enabled",      SUPPORTED, set_ap_enabled, NOFIELD,                       0, 0, NULL },
	{ "auth.pipeline.*.static", "keys_file", SUPPORTED, set_keys_file, NOFIELD,                    0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "key", SUPPORTED, set_ak_key, NOFIELD,                      0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "name", SUPPORTED, set_ak_text, NOFIELD,                    0, CAP_AUTH_NAME, NULL },
	{ "auth.pipeline.*.static.keys.*", "user_id", SUPPORTED, set_ak_text, NOFIELD,                 0, CAP_AUTH_USER, NULL },
	{ "auth.pipeline.*.static.keys.*", "status", SUPPORTED, set_ak_status, NOFIELD,                0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "expires_at", SUPPORTED, set_ak_expires, NOFIELD,           0, 0, NULL },
	/* Limits llmproxy does not have: refused on a key in use (finish_auth),
	 * since running without them would let the key do more than meant. */
	{ "auth.pipeline.*.static.keys.*", "total_quota", SUPPORTED, set_ak_refused, NOFIELD,          0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "allowed_ips", SUPPORTED, set_ak_refused, NOFIELD,          0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "denied_ips", SUPPORTED, set_ak_refused, NOFIELD,           0, 0, NULL },
	{ "auth.pipeline.*.static.keys.*", "used_quota", IGNORED, NULL, NOFIELD,                       0, 0, QUOTA_WHY },
	{ "auth.pipeline.*.static.keys.*", "quota_reset_period", IGNORED, NULL, NOFIELD,               0, 0, QUOTA_WHY },

	/* Token buckets in memory.  A zero rate is no limit. */
	{ "rate_limit", "enabled",           SUPPORTED, set_bool,       CFG(rl_enabled),               0, 0, NULL },
	{ "rate_limit", "storage",           SUPPORTED, set_rl_storage, NOFIELD,                       0, 0, NULL },
	{ "rate_limit", "redis",             IGNORED,   NULL,           NOFIELD,                       0, 0, NULL },
	{ "rate_limit.global", "enabled",    SUPPORTED, set_flag,       NOFIELD,                       0, 0, NULL },
	{ "rate_limit.global", "requests_per_second", SUPPORTED, set_rate, CFG(rl_global.rps),         0, RATE_MAX, NULL },
	{ "rate_limit.global", "requests_per_minute", SUPPORTED, set_rate, CFG(rl_global.rpm),         0, RATE_MAX, NULL },
	{ "rate_limit.global", "burst_size", SUPPORTED, set_rate,       CFG(rl_global.rps_burst),      1, RATE_MAX, NULL },
	{ "rate_limit.per_key", "enabled",   SUPPORTED, set_flag,       NOFIELD,                       0, 0, NULL },
	{ "rate_limit.per_key", "requests_per_second", SUPPORTED, set_rate, CFG(rl_per_key.rps),       0, RATE_MAX, NULL },
	{ "rate_limit.per_key", "requests_per_minute", SUPPORTED, set_rate, CFG(rl_per_key.rpm),       0, RATE_MAX, NULL },
	{ "rate_limit.per_key", "tokens_per_minute", SUPPORTED, set_rate, CFG(rl_per_key.tpm),         0, TOKENS_MAX, NULL },
	{ "rate_limit.per_key", "burst_size", SUPPORTED, set_rate,      CFG(rl_per_key.rps_burst),     1, RATE_MAX, NULL },
	{ "rate_limit.per_key", "max_concurrent", SUPPORTED, set_int,   CFG(rl_per_key.max_concurrent), 0, CONCURRENT_MAX, NULL },

	{ "usage",    "enabled",             SUPPORTED, set_bool,       CFG(usage_enabled),            0, 0, NULL },
	{ "usage",    "inject_include_usage", SUPPORTED, set_bool,      CFG(usage_inject),             0, 0, NULL },
	{ "usage",    "max_wait",            SUPPORTED, set_ms,         CFG(usage_max_wait_ms),        1, MAX_WAIT_MAX_MS, NULL },
	{ "usage",    "batch",               SUPPORTED, set_int,        CFG(usage_batch),              1, CAP_USAGE_BATCH_MAX, NULL },
	{ "usage",    "queue_max",           SUPPORTED, set_count,      CFG(usage_queue_max),          1, QUEUE_MAX_MAX, NULL },
	{ "usage",    "spool",               SUPPORTED, set_spool,      CFG(usage_spool),              0, 0, NULL },
	{ "usage",    "spool_max_bytes",     SUPPORTED, set_size64,     CFG(usage_spool_max_bytes),    SPOOL_BYTES_MIN, SPOOL_BYTES_MAX, NULL },
	{ "usage",    "spool_fsync",         SUPPORTED, set_spool_fsync, CFG(usage_spool_fsync),       0, 0, NULL },

	/* A list item; type = webhook is the one llmproxy has. */
	{ "usage.reporters.*", "name",       SUPPORTED, set_rep_name,   REP(name),                     0, 0, NULL },
	{ "usage.reporters.*", "type",       SUPPORTED, set_rep_type,   NOFIELD,                       0, 0, NULL },
	{ "usage.reporters.*", "enabled",    SUPPORTED, set_rep_enabled, NOFIELD,                      0, 0, NULL },
	{ "usage.reporters.*.webhook", "url", SUPPORTED, set_rep_url,   NOFIELD,                       0, 0, NULL },
	{ "usage.reporters.*.webhook", "timeout", SUPPORTED, set_ms,    REP(timeout_ms),               1, INT_MAX, NULL },
	{ "usage.reporters.*.webhook", "method", SUPPORTED, set_method, NOFIELD,                       0, 0, NULL },
	{ "usage.reporters.*.webhook", "retry", IGNORED,  NULL,         NOFIELD,                       0, 0, RETRY_WHY },
	{ "usage.reporters.*.webhook.headers", "*", SUPPORTED, set_header, NOFIELD,                    0, 0, NULL },

	/* LLMProxy v0.1's one webhook: a reporter named usage_hook. */
	{ "usage_hook", "enabled",           SUPPORTED, set_rep_enabled, NOFIELD,                      0, 0, NULL },
	{ "usage_hook", "url",               SUPPORTED, set_rep_url,    NOFIELD,                       0, 0, NULL },
	{ "usage_hook", "timeout",           SUPPORTED, set_ms,         REP(timeout_ms),               1, INT_MAX, NULL },
	{ "usage_hook", "retry",             IGNORED,   NULL,           NOFIELD,                       0, 0, RETRY_WHY },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* ---- parse state ---------------------------------------------------------- */

struct item {            /* a backend while its file is read */
	char *section;       /* "backends.X", for messages */
	int name_line;       /* 0: no name given */
	int url_line;        /* 0: no url given */
};

struct rep_item {        /* a usage reporter while its file is read */
	char *section;       /* "usage.reporters.X" or "usage_hook" */
	struct reporter_conf rc;
	bool hook;           /* [usage_hook] (LLMProxy v0.1) */
	int enabled;         /* -1: not given */
	char *type;          /* as written; NULL: not given (webhook) */
	int type_line;
	int name_line;       /* 0: no name given */
	int url_line;        /* 0: no url given */
	int header_line[CAP_REPORTER_HEADERS];
};

struct auth_provider {   /* [auth.pipeline.X] while its file is read */
	char *section;       /* "auth.pipeline.X" */
	int line;            /* of its first header */
	char name[64];
	char type[32];       /* as written; "" not given */
	int type_line;
	int enabled;         /* -1: not given (on) */
	char *keys_file;     /* [auth.pipeline.X.static] keys_file, or NULL */
	int keys_file_line;
};

struct key_item {        /* a static key while its file is read */
	char *section;       /* "auth.pipeline.X.static.keys.Y" */
	size_t provider;     /* index in parse.aps */
	int line;            /* of its header */
	char *key;           /* the secret (wiped when freed), or NULL */
	char name[CAP_AUTH_NAME];
	int name_line;
	char user_id[CAP_AUTH_USER];
	int disabled;
	int64_t expires_at;
	int refused_line;    /* total_quota / allowed_ips / denied_ips with a
	                        value: 0 none */
	char refused[64];    /* that key, for the message */
};

struct seen_key {        /* for duplicate keys */
	size_t section;      /* index into parse.names */
	char *key;
	int line;
};

struct parse {
	struct config *cfg;
	const char *file;              /* the name for messages */

	FILE *fp;                      /* the source: a file, */
	const char *text;              /* or a string */
	size_t pos;
	int read_errno;

	int line;                      /* the line inih is working on */
	char section[CAP_CONFIG_LINE]; /* the current section, whole */
	size_t section_id;             /* its index in names */
	bool ignoring;                 /* in a LATER / IGNORED subtree */
	bool in_backend;               /* in [backends.X]: */
	size_t backend;                /* its index */
	size_t rep;                    /* in a reporter's section: its index */
	const char *key;               /* the key being set, for messages */

	char **names;                  /* every section name seen, once */
	size_t nnames;
	struct seen_key *seen;
	size_t nseen, seen_cap;
	struct item *items;            /* parallel to cfg->backends */
	size_t backends_cap;
	struct rep_item *reps;         /* every reporter section, in file
	                                  order; cfg->reporters gets the
	                                  enabled ones at the end */
	size_t nreps;
	int *notice_lines;             /* parallel to cfg->notices */

	bool section_noticed[NSECTIONS];
	bool key_noticed[NKEYS];
	/* Keys of the config itself (IN_CONFIG, and NOWHERE: those judged at
	 * the end) that the file sets: their line (0: not given) and value, for
	 * the checks that need several keys. */
	int given_line[NKEYS];
	char *given_text[NKEYS];
	bool hc_section;               /* [health_check] is in the file */
	struct auth_provider *aps;     /* [auth.pipeline.X], in file order */
	size_t naps;
	size_t ap;                     /* in a provider's section: its index */
	struct key_item *kis;          /* [auth.pipeline.X.static.keys.Y] */
	size_t nkis;
	size_t ki;                     /* in a key's section: its index */

	char value[CAP_CONFIG_LINE];   /* the current value, quotes removed */
	bool failed;
	char err[CAP_LOG_LINE];        /* the first error */
};

/* ---- messages ------------------------------------------------------------- */

static int fail(struct parse *p, int line, const char *fmt, ...) PRINTF(3, 4);
static int fail_in(struct parse *p, const char *file, int line,
    const char *fmt, ...) PRINTF(4, 5);
static int vfail_in(struct parse *p, const char *file, int line,
    const char *fmt, va_list ap) PRINTF(4, 0);

static int
vfail_in(struct parse *p, const char *file, int line, const char *fmt,
    va_list ap)
{
	int n;

	if (p->failed)
		return -1;
	p->failed = true;
	if (line > 0)
		n = snprintf(p->err, sizeof p->err, "%s:%d: ", file, line);
	else
		n = snprintf(p->err, sizeof p->err, "%s: ", file);
	if (n < 0 || (size_t)n >= sizeof p->err)
		return -1;
	vsnprintf(p->err + n, sizeof p->err - (size_t)n, fmt, ap);
	return -1;
}

/* Records the first error as "FILE:LINE: message" ("FILE: message" when
 * line is 0).  Returns -1. */
static int
fail(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_in(p, p->file, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* The same for another file the config names (a keys_file). */
static int
fail_in(struct parse *p, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_in(p, file, line, fmt, ap);
	va_end(ap);
	return -1;
}

static int bad(struct parse *p, const struct key_rule *r, const char *v,
    const char *fmt, ...) PRINTF(4, 5);

/* A bad value: "FILE:LINE: [section] key = value: reason".  Returns -1.
 * The key is the one being set (a "*" rule stands for any key). */
static int
bad(struct parse *p, const struct key_rule *r, const char *v,
    const char *fmt, ...)
{
	const char *key = p->key != NULL ? p->key : r->key;
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (p->section[0] == '\0')
		return fail(p, p->line, "top-level %s = %s: %s", key, v, why);
	return fail(p, p->line, "[%s] %s = %s: %s", p->section, key, v, why);
}

static void notice_at(struct parse *p, int line, const char *fmt, ...) PRINTF(3, 4);

/*
 * Adds "FILE:LINE: message" to cfg->notices.  Notices are kept in line
 * order: those found at the end (in finish) go where their line is.
 */
static void
notice_at(struct parse *p, int line, const char *fmt, ...)
{
	struct config *cfg = p->cfg;
	char buf[CAP_LOG_LINE], *s;
	char **v;
	int *l, n;
	size_t at;
	va_list ap;

	n = snprintf(buf, sizeof buf, "%s:%d: ", p->file, line);
	if (n < 0 || (size_t)n >= sizeof buf)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);

	if ((v = realloc(cfg->notices, (cfg->nnotices + 1) * sizeof *v)) == NULL) {
		fail(p, 0, "out of memory");
		return;
	}
	cfg->notices = v;
	if ((l = realloc(p->notice_lines, (cfg->nnotices + 1) * sizeof *l)) == NULL) {
		fail(p, 0, "out of memory");
		return;
	}
	p->notice_lines = l;
	if ((s = strdup(buf)) == NULL) {
		fail(p, 0, "out of memory");
		return;
	}
	for (at = cfg->nnotices; at > 0 && l[at - 1] > line; at--)
		;
	memmove(v + at + 1, v + at, (cfg->nnotices - at) * sizeof *v);
	memmove(l + at + 1, l + at, (cfg->nnotices - at) * sizeof *l);
	v[at] = s;
	l[at] = line;
	cfg->nnotices++;
}

static const char *
not_used(enum use u)
{
	return u == LATER ? "does not support yet" : "does not use";
}

/* ---- value parsers (pure) -------------------------------------------------- */

/* Strict decimal integer, optional '-'.  0, -1 malformed, -2 out of range. */
static int
parse_ll(const char *s, long long *out)
{
	unsigned long long v = 0;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > ((unsigned long long)LLONG_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (*s != '\0')
		return -1;
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

static int
parse_bool(const char *s, bool *b)
{
	static const struct { const char *word; bool value; } words[] = {
		{ "true", true },  { "yes", true }, { "on", true },   { "1", true },
		{ "false", false }, { "no", false }, { "off", false }, { "0", false },
	};
	size_t i;

	for (i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strcasecmp(s, words[i].word) == 0) {
			*b = words[i].value;
			return 0;
		}
	}
	return -1;
}

/* The units of Go's time.ParseDuration, in nanoseconds. */
static const struct { const char *unit; uint64_t ns; } duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 },  /* µs, U+00B5 */
	{ "\xce\xbcs", 1000 },  /* μs, U+03BC */
	{ "ms", 1000 * 1000 },
	{ "s",  1000 * 1000 * 1000 },
	{ "m",  60ull * 1000 * 1000 * 1000 },
	{ "h",  3600ull * 1000 * 1000 * 1000 },
};

/*
 * Go's duration syntax: "0", or one or more DECIMAL UNIT ("1m30s", "1.5h",
 * "500ms").  Returns 0, -1 malformed, -2 longer than INT_MAX ms, -3 a number
 * without a unit.  A nonzero remainder below 1 ms rounds up, so a nonzero
 * duration never turns into 0 (which means "none" for some timeouts).
 */
static int
parse_duration(const char *s, int *ms)
{
	const uint64_t limit = (uint64_t)INT_MAX * 1000 * 1000;  /* ns */
	uint64_t total = 0;

	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		uint64_t whole = 0, v, scale, unit = 0;
		const char *frac = NULL;
		size_t nwhole = 0, nfrac = 0, ulen, i;

		for (; isdigit((unsigned char)*s); s++, nwhole++) {
			if (whole <= limit)  /* past it: stays past it */
				whole = whole * 10 + (uint64_t)(*s - '0');
		}
		if (*s == '.') {
			frac = ++s;
			for (; isdigit((unsigned char)*s); s++)
				nfrac++;
		}
		if (nwhole == 0 && nfrac == 0)
			return -1;
		ulen = strcspn(s, "0123456789.");
		if (ulen == 0)
			return *s == '\0' ? -3 : -1;
		for (i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
			if (strlen(duration_units[i].unit) == ulen &&
			    memcmp(duration_units[i].unit, s, ulen) == 0)
				unit = duration_units[i].ns;
		}
		if (unit == 0)
			return -1;
		s += ulen;
		if (whole > limit / unit)
			return -2;
		v = whole * unit;
		/* Each fraction digit is worth a tenth of the one before. */
		for (scale = unit, i = 0; i < nfrac; i++) {
			scale /= 10;
			v += (uint64_t)(frac[i] - '0') * scale;
		}
		total += v;
		if (total > limit)
			return -2;
	}
	*ms = (int)((total + 999999) / 1000000);
	return 0;
}

/* Size suffixes, all powers of 1024, matched without regard to case. */
static const struct { const char *suffix; uint64_t bytes; } size_units[] = {
	{ "", 1 }, { "b", 1 },
	{ "k", 1ull << 10 }, { "kb", 1ull << 10 }, { "kib", 1ull << 10 },
	{ "m", 1ull << 20 }, { "mb", 1ull << 20 }, { "mib", 1ull << 20 },
	{ "g", 1ull << 30 }, { "gb", 1ull << 30 }, { "gib", 1ull << 30 },
};

/* DIGITS[SUFFIX].  Returns 0, -1 malformed, -2 more than 2^64 - 1 bytes. */
static int
parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v = 0, unit = 0;
	bool over = false;
	size_t i;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	for (i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
		if (strcasecmp(s, size_units[i].suffix) == 0)
			unit = size_units[i].bytes;
	}
	if (unit == 0)
		return -1;
	if (over || v > UINT64_MAX / unit)
		return -2;
	*bytes = v * unit;
	return 0;
}

int
config_parse_duration(const char *s, int *ms)
{
	int v;

	if (s == NULL || parse_duration(s, &v) != 0)
		return -1;
	*ms = v;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v;

	if (s == NULL || parse_size(s, &v) != 0)
		return -1;
	*bytes = v;
	return 0;
}

/* A host name (letters, digits, '.', '-', '_': Docker service names have
 * '_') or a dotted IPv4 address. */
static bool
valid_host(const char *h)
{
	struct in_addr a4;
	const char *c;
	bool digits_dots = true;

	if (*h == '\0')
		return true;  /* no host: the caller decides */
	for (c = h; *c != '\0'; c++) {
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
			return false;
		if (!isdigit((unsigned char)*c) && *c != '.')
			digits_dots = false;
	}
	return !digits_dots || inet_pton(AF_INET, h, &a4) == 1;
}

/*
 * "HOST[:PORT]", "[IPV6][:PORT]" or ":PORT" in s[0..len) -> host (no
 * brackets; "" when none) and port (-1 when none).  Returns NULL or what is
 * wrong.
 */
static const char *
parse_hostport(const char *s, size_t len, char *host,
    size_t hostsz, long *port)
{
	const char *rest, *end = s + len;
	size_t hlen;

	*port = -1;
	if (len > 0 && s[0] == '[') {
		struct in6_addr a6;
		const char *rb = memchr(s, ']', len);

		if (rb == NULL)
			return "missing ']' after an IPv6 address";
		hlen = (size_t)(rb - s - 1);
		if (hlen == 0 || hlen >= hostsz)
			return "bad IPv6 address";
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return "bad IPv6 address";
		rest = rb + 1;
		if (rest < end && *rest != ':')
			return "text after ']'";
	} else {
		const char *colon = memchr(s, ':', len);

		rest = colon != NULL ? colon : end;
		hlen = (size_t)(rest - s);
		if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return "an IPv6 address goes in brackets, e.g. [::1]:8080";
		if (hlen >= hostsz)
			return "host name too long";
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (!valid_host(host))
			return "bad host name";
	}
	if (rest < end) {  /* at ':' */
		long v = 0;
		const char *d;

		if (end - rest - 1 < 1 || end - rest - 1 > 5)
			return "bad port";
		for (d = rest + 1; d < end; d++) {
			if (!isdigit((unsigned char)*d))
				return "bad port";
			v = v * 10 + (*d - '0');
		}
		if (v > 65535)
			return "bad port";
		*port = v;
	}
	return NULL;
}

/* RFC 3986 §3.3: pchar / "/" (pct-encoded checked by the caller). */
static bool
path_char(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@/%", c) != NULL);
}

/* ---- setters: one per kind of value ---------------------------------------- */

static void *
field(struct parse *p, const struct key_rule *r)
{
	char *base = r->where == IN_BACKEND ? (char *)&p->cfg->backends[p->backend]
	           : r->where == IN_REPORTER ? (char *)&p->reps[p->rep].rc
	           : (char *)p->cfg;
	return base + r->off;
}

static struct rep_item *
cur_rep(struct parse *p)
{
	return &p->reps[p->rep];
}

static struct backend_conf *
cur_backend(struct parse *p)
{
	return &p->cfg->backends[p->backend];
}

/* ":PORT", "HOST:PORT" or "[IPV6]:PORT" into host (no brackets) and port
 * (decimal). */
static int
get_listen(struct parse *p, const struct key_rule *r, const char *v,
    char *host, size_t hostsz, char *portbuf, size_t portsz)
{
	static const char *const usage = ":PORT or HOST:PORT (e.g. :8080, 127.0.0.1:8080, [::1]:8080)";
	char h[256];
	const char *why;
	long port;

	if (strchr(v, ':') == NULL)  /* "8080": Go's net.Listen wants ":8080" */
		return bad(p, r, v, "no port; listen is %s", usage);
	why = parse_hostport(v, strlen(v), h, hostsz < sizeof h ? hostsz : sizeof h, &port);
	if (why != NULL)
		return bad(p, r, v, "%s; listen is %s", why, usage);
	if (port < 0)
		return bad(p, r, v, "no port; listen is %s", usage);
	strcpy(host, h);
	snprintf(portbuf, portsz, "%hu", (unsigned short)port);
	return 0;
}

static int
set_listen(struct parse *p, const struct key_rule *r, const char *v)
{
	struct config *cfg = p->cfg;

	return get_listen(p, r, v, cfg->listen_host, sizeof cfg->listen_host,
	    cfg->listen_port, sizeof cfg->listen_port);
}

/* [metrics] listen: an address of their own, or "" for the proxy's. */
static int
set_metrics_listen(struct parse *p, const struct key_rule *r, const char *v)
{
	struct config *cfg = p->cfg;

	if (*v == '\0') {
		cfg->metrics_listen_host[0] = cfg->metrics_listen_port[0] = '\0';
		return 0;
	}
	return get_listen(p, r, v, cfg->metrics_listen_host, sizeof cfg->metrics_listen_host,
	    cfg->metrics_listen_port, sizeof cfg->metrics_listen_port);
}

static int
set_int(struct parse *p, const struct key_rule *r, const char *v)
{
	long long n;
	int rc = parse_ll(v, &n);

	if (rc == -1)
		return bad(p, r, v, "not an integer");
	if (rc == -2 || n < r->min || n > r->max)
		return bad(p, r, v, "must be %lld..%lld", r->min, r->max);
	*(int *)field(p, r) = (int)n;
	return 0;
}

/* "1h", "90s", "1500ms", for messages. */
static const char *
duration_text(char *buf, size_t len, long long ms)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lldh", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%lldm", ms / 60000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, len, "%llds", ms / 1000);
	else
		snprintf(buf, len, "%lldms", ms);
	return buf;
}

/* A count of things, into a size_t. */
static int
set_count(struct parse *p, const struct key_rule *r, const char *v)
{
	long long n;
	int rc = parse_ll(v, &n);

	if (rc == -1)
		return bad(p, r, v, "not an integer");
	if (rc == -2 || n < r->min || n > r->max)
		return bad(p, r, v, "must be %lld..%lld", r->min, r->max);
	*(size_t *)field(p, r) = (size_t)n;
	return 0;
}

static int
get_bool(struct parse *p, const struct key_rule *r, const char *v, bool *on)
{
	if (parse_bool(v, on) != 0)
		return bad(p, r, v, "not a boolean (true/false, yes/no, on/off, 1/0)");
	return 0;
}

static int
set_bool(struct parse *p, const struct key_rule *r, const char *v)
{
	bool on;

	if (get_bool(p, r, v, &on) != 0)
		return -1;
	*(int *)field(p, r) = on;
	return 0;
}

static int
set_ms(struct parse *p, const struct key_rule *r, const char *v)
{
	char lo[32], hi[32];
	int ms;

	switch (parse_duration(v, &ms)) {
	case 0:
		break;
	case -2:
		return bad(p, r, v, "too long (at most %dh)", INT_MAX / 3600000);
	case -3:
		return bad(p, r, v, "a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)");
	default:
		return bad(p, r, v, "not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)");
	}
	if (ms < r->min && r->min <= 1)
		return bad(p, r, v, "must be more than 0");
	if (ms < r->min)
		return bad(p, r, v, "must be at least %s", duration_text(lo, sizeof lo, r->min));
	if (ms > r->max)
		return bad(p, r, v, "must be at most %s", duration_text(hi, sizeof hi, r->max));
	*(int *)field(p, r) = ms;
	return 0;
}

/* "1GiB", "16KiB" or "1000 bytes", for messages. */
static const char *
size_text(char *buf, size_t len, unsigned long long n)
{
	if (n != 0 && n % (1ull << 40) == 0)
		snprintf(buf, len, "%lluTiB", n >> 40);
	else if (n != 0 && n % (1ull << 30) == 0)
		snprintf(buf, len, "%lluGiB", n >> 30);
	else if (n != 0 && n % (1ull << 20) == 0)
		snprintf(buf, len, "%lluMiB", n >> 20);
	else if (n != 0 && n % (1ull << 10) == 0)
		snprintf(buf, len, "%lluKiB", n >> 10);
	else
		snprintf(buf, len, "%llu byte%s", n, n == 1 ? "" : "s");
	return buf;
}

static int
get_size(struct parse *p, const struct key_rule *r, const char *v,
    uint64_t *n)
{
	char lo[32], hi[32];

	switch (parse_size(v, n)) {
	case 0:
		break;
	case -2:
		return bad(p, r, v, "too large");
	default:
		return bad(p, r, v, "not a size (e.g. 10485760, 16k, 16KiB, 10MB)");
	}
	if (*n < (uint64_t)r->min || *n > (uint64_t)r->max)
		return bad(p, r, v, "must be %s to %s",
		    size_text(lo, sizeof lo, (unsigned long long)r->min),
		    size_text(hi, sizeof hi, (unsigned long long)r->max));
	return 0;
}

static int
set_size(struct parse *p, const struct key_rule *r, const char *v)
{
	uint64_t n;

	if (get_size(p, r, v, &n) != 0)
		return -1;
	*(size_t *)field(p, r) = (size_t)n;
	return 0;
}

static int
set_size64(struct parse *p, const struct key_rule *r, const char *v)
{
	uint64_t n;

	if (get_size(p, r, v, &n) != 0)
		return -1;
	*(uint64_t *)field(p, r) = n;
	return 0;
}

static int
set_log_level(struct parse *p, const struct key_rule *r, const char *v)
{
	static const struct { const char *name; enum log_level level; } levels[] = {
		{ "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },
		{ "warn", LOG_LEVEL_WARN },   { "error", LOG_LEVEL_ERROR },
	};
	size_t i;

	for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		if (strcasecmp(v, levels[i].name) == 0) {
			*(enum log_level *)field(p, r) = levels[i].level;
			return 0;
		}
	}
	return bad(p, r, v, "must be debug, info, warn or error");
}

/* [log] format: LLMProxy's files say json. */
static int
set_log_format(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "text") == 0 || strcasecmp(v, "json") == 0) {
		*(int *)field(p, r) = strcasecmp(v, "json") == 0;
		return 0;
	}
	return bad(p, r, v, "must be text or json");
}

/* [log] output: LLMProxy's stdout, stderr or file.  What each means here
 * is decided at the end, with [log.file] path (finish_log). */
static int
set_log_output(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "stderr") == 0 || strcasecmp(v, "stdout") == 0 ||
	    strcasecmp(v, "file") == 0)
		return 0;
	return bad(p, r, v, "must be stderr, stdout or file (with [log.file] path); "
	    "for a file of access lines, set access_file");
}

/* Backend names become metrics label values and log fields: short, and
 * nothing that needs quoting. */
static bool
label_ok(const char *v)
{
	size_t len = strlen(v), i;

	if (len == 0 || len >= sizeof ((struct backend_conf *)0)->name)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static int
set_name(struct parse *p, const struct key_rule *r, const char *v)
{
	struct backend_conf *b = cur_backend(p);

	if (!label_ok(v))
		return bad(p, r, v, "a name has 1 to %zu characters of A-Z a-z 0-9 . _ -",
		    sizeof b->name - 1);
	strcpy(b->name, v);
	p->items[p->backend].name_line = p->line;
	return 0;
}

/* A url, split (see parse_url). */
struct url {
	bool https;
	char host[256];      /* without brackets for IPv6 literals */
	long port;           /* -1: none given */
	const char *path;    /* into the url: "" or from its '/' or '?' on */
	bool userinfo;       /* refused for a user:password@, which messages
	                        must not show */
};

/*
 * http[s]://HOST[:PORT][/PATH][?QUERY] -> u.  `kind` names the url in
 * messages ("backend", "webhook"); a query is allowed only with
 * query_ok, a fragment or user:password@ never.  Returns true, or false
 * with the reason in why.  Whether https is acceptable is the caller's
 * business.
 */
static bool
parse_url(const char *v, const char *kind, bool query_ok, struct url *u,
    char *why, size_t whysz)
{
	const char *auth, *w, *c, *q;
	size_t alen;

	memset(u, 0, sizeof *u);
	if (strncasecmp(v, "https://", 8) == 0) {
		u->https = true;
		auth = v + 8;
	} else if (strncasecmp(v, "http://", 7) == 0) {
		auth = v + 7;
	} else {
		snprintf(why, whysz, "a %s url is http://HOST[:PORT][/PATH]%s", kind,
		    query_ok ? "[?QUERY]" : "");
		return false;
	}
	alen = strcspn(auth, "/?#");
	u->path = auth + alen;
	if (memchr(auth, '@', alen) != NULL) {
		u->userinfo = true;
		snprintf(why, whysz, "user:password@ is not allowed in a %s url", kind);
		return false;
	}
	if ((w = parse_hostport(auth, alen, u->host, sizeof u->host, &u->port)) != NULL) {
		snprintf(why, whysz, "%s", w);
		return false;
	}
	if (u->host[0] == '\0' || u->port == 0) {
		snprintf(why, whysz, "%s", u->host[0] == '\0' ? "no host" : "bad port");
		return false;
	}
	q = strchr(u->path, '?');
	if (q != NULL && !query_ok) {
		snprintf(why, whysz, "a query (?...) is not allowed in a %s url", kind);
		return false;
	}
	if (strchr(u->path, '#') != NULL) {
		snprintf(why, whysz, "a fragment (#...) is not allowed in a %s url", kind);
		return false;
	}
	/* RFC 3986 §3.4: a query is pchar / "/" / "?". */
	for (c = u->path; *c != '\0'; c++) {
		if ((!path_char((unsigned char)*c) && !(q != NULL && c >= q && *c == '?')) ||
		    (*c == '%' && !(isxdigit((unsigned char)c[1]) && isxdigit((unsigned char)c[2])))) {
			snprintf(why, whysz, "bad character in the %s",
			    q != NULL && c > q ? "query" : "path");
			return false;
		}
	}
	return true;
}

/* HOST:PORT ([HOST]:PORT for IPv6) as a default name.  Returns 0, or -1
 * when it does not fit. */
static int
hostport_name(char *out, size_t len, const char *host, const char *port)
{
	int n = snprintf(out, len, strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s",
	    host, port);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* http://HOST[:PORT][/PATH] */
static int
set_url(struct parse *p, const struct key_rule *r, const char *v)
{
	struct backend_conf *b = cur_backend(p);
	char why[256];
	struct url u;
	size_t plen;

	if (strlen(v) >= sizeof b->url)
		return bad(p, r, v, "longer than %zu characters", sizeof b->url - 1);
	if (!parse_url(v, "backend", false, &u, why, sizeof why))
		return u.userinfo ? bad_secret(p, "%s", why) : bad(p, r, v, "%s", why);
	plen = strlen(u.path);
	while (plen > 0 && u.path[plen - 1] == '/')
		plen--;
	if (plen >= sizeof b->path_prefix)
		return bad(p, r, v, "path longer than %zu characters", sizeof b->path_prefix - 1);
	memcpy(b->host, u.host, sizeof b->host);
	memcpy(b->path_prefix, u.path, plen);
	b->path_prefix[plen] = '\0';
	snprintf(b->port, sizeof b->port, "%hu",
	    (unsigned short)(u.port >= 0 ? u.port : u.https ? 443 : 80));
	b->https = u.https;
	memcpy(b->url, v, strlen(v) + 1);
	p->items[p->backend].url_line = p->line;
	return 0;
}

/*
 * The path of a file llmproxy appends to (a spool, an access log), not
 * empty.  Its directory must exist now: a typo there would otherwise show
 * only when the first line is written.  The file itself is not made here
 * (`llmproxy -t` changes nothing on disk); it is made at start.  A relative
 * path is relative to the directory llmproxy runs in, as when the file is
 * opened.  `name` is the key, for messages; `regular`: a device or a FIFO
 * will not do.  Returns NULL, or what is wrong (in why).
 */
static const char *
file_problem(const char *v, const char *name, bool regular, char *why, size_t whysz)
{
	char dir[1024];
	size_t len = strlen(v);
	const char *slash;
	struct stat st;

	if (len >= sizeof dir) {
		snprintf(why, whysz, "longer than %zu characters", sizeof dir - 1);
		return why;
	}
	if (v[len - 1] == '/') {
		snprintf(why, whysz, "a directory; %s is the path of a file", name);
		return why;
	}
	if ((slash = strrchr(v, '/')) == NULL) {
		strcpy(dir, ".");
	} else if (slash == v) {
		strcpy(dir, "/");
	} else {
		memcpy(dir, v, (size_t)(slash - v));
		dir[slash - v] = '\0';
	}
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT)
			snprintf(why, whysz, "directory %s does not exist", dir);
		else
			snprintf(why, whysz, "directory %s: %s", dir, strerror(errno));
		return why;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whysz, "%s is not a directory", dir);
		return why;
	}
	if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(why, whysz, "a directory; %s is the path of a file", name);
		return why;
	}
	if (regular && stat(v, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "not a regular file");
		return why;
	}
	return NULL;
}

/* [usage] spool: a regular file (it is read back and truncated). */
static int
set_spool(struct parse *p, const struct key_rule *r, const char *v)
{
	char why[1200];
	size_t len = strlen(v);

	if (len == 0)
		return bad(p, r, v, "empty; leave spool out to keep records in memory");
	if (len >= sizeof p->cfg->usage_spool)
		return bad(p, r, v, "longer than %zu characters", sizeof p->cfg->usage_spool - 1);
	if (file_problem(v, "spool", true, why, sizeof why) != NULL)
		return bad(p, r, v, "%s", why);
	memcpy(field(p, r), v, len + 1);
	return 0;
}

/*
 * [log] access_file: "" for stderr.  Any file but a directory: /dev/stdout
 * or a FIFO a log shipper reads will do (llmproxy only appends lines).
 */
static int
set_access_file(struct parse *p, const struct key_rule *r, const char *v)
{
	char why[1200];
	size_t len = strlen(v);

	if (len >= sizeof p->cfg->access_file)
		return bad(p, r, v, "longer than %zu characters", sizeof p->cfg->access_file - 1);
	if (len > 0 && file_problem(v, "access_file", false, why, sizeof why) != NULL)
		return bad(p, r, v, "%s", why);
	memcpy(field(p, r), v, len + 1);
	return 0;
}

/* [log.file] path: judged at the end, with [log] output (finish_log). */
static int
set_log_file(struct parse *p, const struct key_rule *r, const char *v)
{
	(void)p;
	(void)r;
	(void)v;
	return 0;
}

static int
set_spool_fsync(struct parse *p, const struct key_rule *r, const char *v)
{
	static const struct { const char *name; enum spool_fsync value; } modes[] = {
		{ "never", SPOOL_FSYNC_NEVER }, { "periodic", SPOOL_FSYNC_PERIODIC },
		{ "always", SPOOL_FSYNC_ALWAYS },
	};
	size_t i;

	for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (strcasecmp(v, modes[i].name) == 0) {
			*(enum spool_fsync *)field(p, r) = modes[i].value;
			return 0;
		}
	}
	return bad(p, r, v, "must be never, periodic or always");
}

/* Reporter names label log lines, metrics and the spool's cursors. */
static int
set_rep_name(struct parse *p, const struct key_rule *r, const char *v)
{
	struct rep_item *it = cur_rep(p);

	if (!label_ok(v))
		return bad(p, r, v, "a name has 1 to %zu characters of A-Z a-z 0-9 . _ -",
		    sizeof it->rc.name - 1);
	strcpy(it->rc.name, v);
	it->name_line = p->line;
	return 0;
}

/* Judged at the end, when it is known whether the reporter is enabled. */
static int
set_rep_type(struct parse *p, const struct key_rule *r, const char *v)
{
	struct rep_item *it = cur_rep(p);

	(void)r;
	free(it->type);
	if ((it->type = strdup(v)) == NULL)
		return fail(p, 0, "out of memory");
	it->type_line = p->line;
	return 0;
}

static int
set_rep_enabled(struct parse *p, const struct key_rule *r, const char *v)
{
	bool on;

	if (get_bool(p, r, v, &on) != 0)
		return -1;
	cur_rep(p)->enabled = on;
	return 0;
}

/* http[s]://HOST[:PORT][/PATH][?QUERY]. */
static int
set_rep_url(struct parse *p, const struct key_rule *r, const char *v)
{
	struct rep_item *it = cur_rep(p);
	struct reporter_conf *rc = &it->rc;
	bool slash;
	char why[256];
	struct url u;

	/* A query often holds a token (?token=...): such a url is not shown. */
	bool secret = strchr(v, '?') != NULL;

	if (strlen(v) >= sizeof rc->url)
		return secret ? bad_secret(p, "longer than %zu characters",
		    sizeof rc->url - 1) : bad(p, r, v, "longer than %zu characters",
		    sizeof rc->url - 1);
	if (!parse_url(v, "webhook", true, &u, why, sizeof why))
		return u.userinfo || secret ? bad_secret(p, "%s", why) :
		    bad(p, r, v, "%s", why);
	slash = u.path[0] != '/';  /* "" or "?q": the path is "/" */
	if (strlen(u.path) + slash >= sizeof rc->path)
		return secret ? bad_secret(p, "path and query longer than %zu "
		    "characters", sizeof rc->path - 1) : bad(p, r, v, "path "
		    "longer than %zu characters", sizeof rc->path - 1);
	rc->path[0] = '/';
	strcpy(rc->path + slash, u.path);
	memcpy(rc->host, u.host, sizeof rc->host);
	snprintf(rc->port, sizeof rc->port, "%hu",
	    (unsigned short)(u.port >= 0 ? u.port : u.https ? 443 : 80));
	rc->https = u.https;
	memcpy(rc->url, v, strlen(v) + 1);
	it->url_line = p->line;
	return 0;
}

/* LLMProxy's webhook method: records are POSTed, nothing else makes sense. */
static int
set_method(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "POST") != 0)
		return bad(p, r, v, "llmproxy sends records with POST only");
	return 0;
}

/* RFC 9110 §5.6.2: tchar. */
static bool
token_char(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * [usage.reporters.X.webhook.headers] Name = value: a header field sent with
 * every delivery.  The fields that frame the message are llmproxy's.  The
 * value is usually the receiver's credential: messages never show it.
 */
static int
set_header(struct parse *p, const struct key_rule *r, const char *v)
{
	static const char *const own[] = {
		"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection",
		"Keep-Alive", "TE", "Trailer", "Upgrade", "Expect",
	};
	struct rep_item *it = cur_rep(p);
	struct reporter_conf *rc = &it->rc;
	const char *name = p->key, *c;
	size_t i;

	(void)r;
	for (c = name; *c != '\0'; c++) {
		if (!token_char((unsigned char)*c))
			return bad_secret(p, "a header name is A-Z a-z 0-9 and !#$%%&'*+-.^_`|~");
	}
	if (strlen(name) >= sizeof rc->headers[0].name)
		return bad_secret(p, "a header name has at most %zu characters",
		    sizeof rc->headers[0].name - 1);
	for (i = 0; i < sizeof own / sizeof own[0]; i++) {
		if (strcasecmp(name, own[i]) == 0)
			return bad_secret(p, "llmproxy sets %s itself", own[i]);
	}
	/* RFC 9110 §5.5: no control characters but HTAB (CR and LF above all:
	 * they would let a value add header fields of its own). */
	for (c = v; *c != '\0'; c++) {
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return bad_secret(p, "control character in the value");
	}
	if (strlen(v) >= sizeof rc->headers[0].value)
		return bad_secret(p, "a header value has at most %zu characters",
		    sizeof rc->headers[0].value - 1);
	for (i = 0; i < rc->nheaders; i++) {
		if (strcasecmp(rc->headers[i].name, name) == 0)
			return bad_secret(p, "header %s is given twice (first on line %d)",
			    rc->headers[i].name, it->header_line[i]);
	}
	if (rc->nheaders == CAP_REPORTER_HEADERS)
		return bad_secret(p, "more than %d headers", CAP_REPORTER_HEADERS);
	strcpy(rc->headers[rc->nheaders].name, name);
	strcpy(rc->headers[rc->nheaders].value, v);
	it->header_line[rc->nheaders++] = p->line;
	return 0;
}

/* [routing] load_balance.  LLMProxy's "weighted" is our round_robin, which
 * honours weights.  latency_based is refused: doing something else under
 * its name would mislead. */
static int
set_load_balance(struct parse *p, const struct key_rule *r, const char *v)
{
	static const struct { const char *name; enum lb_strategy lb; } names[] = {
		{ "round_robin", LB_ROUND_ROBIN }, { "weighted", LB_ROUND_ROBIN },
		{ "least_connections", LB_LEAST_CONNECTIONS },
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(v, names[i].name) == 0) {
			*(enum lb_strategy *)field(p, r) = names[i].lb;
			return 0;
		}
	}
	if (strcasecmp(v, "latency_based") == 0)
		return bad(p, r, v, "LLMProxy's latency_based is not available in llmproxy; "
		    "choose round_robin (weights honoured), weighted (the same) or least_connections");
	return bad(p, r, v, "must be round_robin, weighted or least_connections");
}

/*
 * [routing.retry] multiplier: DIGITS[.DIGITS], 1.0 to 10.0 (strict: no sign,
 * exponent, hex, and no locale: strtod would take "1,5" in some).  The value
 * is (whole * 10^n + fraction) / 10^n with at most 14 fraction digits: both
 * exact in a double, so one correctly rounded division gives what a C
 * literal would; later digits cannot matter.
 */
static int
set_multiplier(struct parse *p, const struct key_rule *r, const char *v)
{
	const char *c, *frac = "";
	unsigned long long mant = 0, scale = 1;
	size_t nwhole, used = 0;
	int whole = 0;
	bool more = false;  /* a nonzero fraction digit past those used */

	nwhole = strspn(v, "0123456789");
	c = v + nwhole;
	if (*c == '.') {
		frac = c + 1;
		c = frac + strspn(frac, "0123456789");
		if (c == frac)
			return bad(p, r, v, "not a decimal number (e.g. 2, 1.5, 2.0)");
	}
	if (nwhole == 0 || *c != '\0')
		return bad(p, r, v, "not a decimal number (e.g. 2, 1.5, 2.0)");
	for (c = v; c < v + nwhole; c++) {
		if (whole <= 10)  /* past it: stays past it */
			whole = whole * 10 + (*c - '0');
	}
	for (c = frac; *c != '\0'; c++) {
		if (used < 14) {
			mant = mant * 10 + (unsigned)(*c - '0');
			scale *= 10;
			used++;
		} else if (*c != '0') {
			more = true;
		}
	}
	if (whole < 1 || whole > 10 || (whole == 10 && (mant != 0 || more)))
		return bad(p, r, v, "must be 1.0 to 10.0");
	*(double *)field(p, r) = (double)((unsigned long long)whole * scale + mant) / (double)scale;
	return 0;
}

/* What to say of `name = "a", "b"`, which unquote() leaves as `a", "b`. */
#define LIST_QUOTES "quotes go around the whole list (\"a, b\"), not around each item"

/*
 * The next item of a comma list, trimmed: [*item, *item + *len).  *s moves
 * past it and its comma.  Returns false at the end of the list.
 */
static bool
list_item(const char **s, const char **item, size_t *len)
{
	const char *c = *s, *end;

	if (c == NULL)
		return false;
	end = c + strcspn(c, ",");
	*s = *end == ',' ? end + 1 : NULL;
	while (c < end && isspace((unsigned char)*c))
		c++;
	while (end > c && isspace((unsigned char)end[-1]))
		end--;
	*item = c;
	*len = (size_t)(end - c);
	return true;
}

/* [routing.retry] retry_on: which failures before the first byte send a
 * request to another backend. */
static int
set_retry_on(struct parse *p, const struct key_rule *r, const char *v)
{
	static const struct { const char *name; unsigned bit; } conds[] = {
		{ "5xx", RETRY_ON_5XX }, { "connect_failure", RETRY_ON_CONNECT },
		{ "timeout", RETRY_ON_TIMEOUT }, { "429", RETRY_ON_429 },
	};
	static const char list[] = "5xx, connect_failure, timeout, 429";
	const char *s = v, *item;
	unsigned bits = 0;
	size_t len, i;

	while (list_item(&s, &item, &len)) {
		for (i = 0; i < sizeof conds / sizeof conds[0]; i++) {
			if (strlen(conds[i].name) == len && strncasecmp(item, conds[i].name, len) == 0)
				break;
		}
		if (len == 0)
			return bad(p, r, v, "an empty item; retry_on lists some of %s "
			    "(to retry on nothing, set enabled = false)", list);
		if (i == sizeof conds / sizeof conds[0] && strcspn(item, "\"'") < len)
			return bad(p, r, v, "%s", LIST_QUOTES);
		if (i == sizeof conds / sizeof conds[0])
			return bad(p, r, v, "unknown condition '%.*s'; retry_on lists some of %s",
			    (int)len, item, list);
		bits |= conds[i].bit;
	}
	*(unsigned *)field(p, r) = bits;
	return 0;
}

/*
 * A health check path: "/" and visible ASCII, no '#' (it goes on a request
 * line as it is).  r->max is the size of the field.
 */
static int
set_path(struct parse *p, const struct key_rule *r, const char *v)
{
	const char *c;
	size_t len = strlen(v);

	if (v[0] != '/')
		return bad(p, r, v, "must start with '/'");
	for (c = v; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '#')
			return bad(p, r, v, "bad character (a path is visible ASCII, no spaces or '#')");
	}
	if (len >= (size_t)r->max)
		return bad(p, r, v, "longer than %lld characters", r->max - 1);
	memcpy(field(p, r), v, len + 1);
	return 0;
}

/*
 * [metrics] path: where GET returns the metrics.  It must be a path a
 * request can have and that is not taken: requests with dot segments or an
 * encoded '.', '/' or '\\' are refused (conn.c), a query is not part of the
 * path matched, /v1/ goes to the backends, /health is llmproxy's.
 */
static int
set_metrics_path(struct parse *p, const struct key_rule *r, const char *v)
{
	const char *c, *seg;
	size_t len = strlen(v);

	if (v[0] != '/')
		return bad(p, r, v, "must start with '/'");
	for (c = v; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '#' ||
		    *c == '?' || *c == '\\')
			return bad(p, r, v, "bad character (a path is visible ASCII, no spaces, "
			    "'?', '#' or '\\')");
		if (*c == '%' && (strncasecmp(c, "%2e", 3) == 0 || strncasecmp(c, "%2f", 3) == 0 ||
		    strncasecmp(c, "%5c", 3) == 0))
			return bad(p, r, v, "an encoded '.', '/' or '\\' (requests with one are refused)");
	}
	for (seg = v + 1; ; seg += strcspn(seg, "/") + 1) {
		size_t n = strcspn(seg, "/");

		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return bad(p, r, v, "a '.' or '..' segment (requests with one are refused)");
		if (seg[n] == '\0')
			break;
	}
	if (strncmp(v, "/v1/", 4) == 0)
		return bad(p, r, v, "paths under /v1/ go to the backends");
	if (strcmp(v, "/health") == 0)
		return bad(p, r, v, "/health is llmproxy's health endpoint");
	if (len >= sizeof p->cfg->metrics_path)
		return bad(p, r, v, "longer than %zu characters", sizeof p->cfg->metrics_path - 1);
	memcpy(field(p, r), v, len + 1);
	return 0;
}

/* LLMProxy's health check method: a probe is a GET. */
static int
set_hc_method(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "GET") != 0)
		return bad(p, r, v, "llmproxy probes with GET only");
	return 0;
}

/*
 * [backends.X] models = a, b: the models requests may ask this backend for.
 * A name is what a request's "model" says: any characters but control
 * ones, ',' and quotes (see LIST_QUOTES); each once.
 */
static int
set_models(struct parse *p, const struct key_rule *r, const char *v)
{
	struct backend_conf *b = cur_backend(p);
	const char *s = v, *item, *c;
	size_t len, n = 0, i;

	while (list_item(&s, &item, &len)) {
		if (len == 0)
			return bad(p, r, v, "an empty model name; models is a list of names, "
			    "a, b (leave it out to serve any model)");
		if (len >= CAP_MODEL_NAME)
			return bad(p, r, v, "a model name has at most %d characters", CAP_MODEL_NAME - 1);
		for (c = item; c < item + len; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				return bad(p, r, v, "control character in a model name");
			if (*c == '"' || *c == '\'')
				return bad(p, r, v, "%s", LIST_QUOTES);
		}
		for (i = 0; i < n; i++) {
			if (strlen(b->models[i]) == len && memcmp(b->models[i], item, len) == 0)
				return bad(p, r, v, "model '%s' is listed twice", b->models[i]);
		}
		if (n == CAP_BACKEND_MODELS)
			return bad(p, r, v, "more than %d models", CAP_BACKEND_MODELS);
		memcpy(b->models[n], item, len);
		b->models[n][len] = '\0';
		n++;
	}
	b->nmodels = n;
	return 0;
}

/* ---- [auth] and [rate_limit] ---------------------------------------------------- */

/*
 * A bad secret (a client key, a backend's api_key): the message names the
 * key but never shows the value, since error messages end up in logs.
 */
static int
bad_secret(struct parse *p, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return fail(p, p->line, "[%s] %s: %s (the value is a secret and is not "
	    "shown)", p->section, p->key, why);
}

/* Visible ASCII and nothing else: what may go into a header field (a
 * backend's key) or be typed in one (a client's). */
static const char *
secret_problem(const char *v, size_t max)
{
	size_t len = strlen(v);

	if (len == 0)
		return "empty";
	if (len > max)
		return "too long";
	for (const char *c = v; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return "a key is visible ASCII without spaces";
	}
	return NULL;
}

/* [backends.X] api_key: sent to that backend as Authorization: Bearer. */
static int
set_api_key(struct parse *p, const struct key_rule *r, const char *v)
{
	const char *why = secret_problem(v, CAP_BACKEND_KEY_BYTES - 1);

	if (why != NULL)
		return bad_secret(p, "%s", why);
	memcpy(field(p, r), v, strlen(v) + 1);
	return 0;
}

/* A boolean judged at the end, with the keys near it (given()). */
static int
set_flag(struct parse *p, const struct key_rule *r, const char *v)
{
	bool on;

	return get_bool(p, r, v, &on);
}

/* A rate, a burst or a token count: a decimal number (1.5 per second is a
 * rate), r->min..r->max; 0 is no limit where r->min allows it. */
static int
set_rate(struct parse *p, const struct key_rule *r, const char *v)
{
	size_t whole = strspn(v, "0123456789"), frac = 0;
	double d;

	if (v[whole] == '.')
		frac = strspn(v + whole + 1, "0123456789") + 1;
	if (whole == 0 || v[whole + frac] != '\0' || frac == 1 || whole > 15)
		return bad(p, r, v, "not a number (e.g. 10, 0.5)");
	d = strtod(v, NULL);    /* the C locale: '.' is the point */
	if (d < (double)r->min || d > (double)r->max)
		return bad(p, r, v, "must be %lld..%lld", r->min, r->max);
	*(double *)field(p, r) = d;
	return 0;
}

static int
set_rl_storage(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "memory") == 0)
		return 0;
	if (strcasecmp(v, "redis") == 0) {
		notice_at(p, p->line, "[rate_limit] storage = %s: llmproxy keeps its "
		    "limits in memory; each llmproxy process limits on its own", v);
		return p->failed ? -1 : 0;
	}
	return bad(p, r, v, "must be memory (or LLMProxy's redis, taken as memory)");
}

/* [auth] mode: with static keys only, first_match and all differ only when
 * several providers are enabled (finish_auth). */
static int
set_auth_mode(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "first_match") == 0 || strcasecmp(v, "all") == 0)
		return 0;
	return bad(p, r, v, "must be first_match or all");
}

/* [auth] header_names = Authorization, X-API-Key: where a key may come. */
static int
set_header_names(struct parse *p, const struct key_rule *r, const char *v)
{
	struct config *cfg = p->cfg;
	const char *s = v, *item;
	size_t len, n = 0;

	while (list_item(&s, &item, &len)) {
		if (len == 0)
			return bad(p, r, v, "an empty header name");
		for (size_t i = 0; i < len; i++) {
			if (!token_char((unsigned char)item[i]))
				return bad(p, r, v, "%s", strcspn(item, "\"'") < len ? LIST_QUOTES :
				    "a header name is A-Z a-z 0-9 and !#$%&'*+-.^_`|~");
		}
		if (len >= sizeof cfg->auth_headers[0])
			return bad(p, r, v, "a header name has at most %zu characters",
			    sizeof cfg->auth_headers[0] - 1);
		if (n == CAP_AUTH_HEADERS)
			return bad(p, r, v, "more than %d header names", CAP_AUTH_HEADERS);
		memcpy(cfg->auth_headers[n], item, len);
		cfg->auth_headers[n++][len] = '\0';
	}
	if (n == 0)
		return bad(p, r, v, "no header name; a key comes in Authorization: "
		    "Bearer KEY, X-API-Key: KEY or another header listed here");
	cfg->nauth_headers = n;
	return 0;
}

/* [auth] skip_paths = /health, /metrics: paths served without a key; a
 * trailing '*' makes a prefix.  Empty: every path needs a key. */
static int
set_skip_paths(struct parse *p, const struct key_rule *r, const char *v)
{
	struct config *cfg = p->cfg;
	const char *s = v, *item;
	size_t len, n = 0;

	while (list_item(&s, &item, &len)) {
		if (len == 0 && n == 0 && s == NULL)
			break;          /* skip_paths = (nothing): none */
		if (len == 0 || item[0] != '/')
			return bad(p, r, v, "%s", strcspn(item, "\"'") < len ? LIST_QUOTES :
			    "a path starts with '/'");
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)item[i];
			if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' ||
			    (c == '*' && i + 1 < len))
				return bad(p, r, v, "bad character in a path (visible ASCII, "
				    "no '?' or '#'; '*' only at the end)");
		}
		if (len >= sizeof cfg->skip_paths[0])
			return bad(p, r, v, "a path has at most %zu characters",
			    sizeof cfg->skip_paths[0] - 1);
		if (n == CAP_AUTH_SKIP_PATHS)
			return bad(p, r, v, "more than %d paths", CAP_AUTH_SKIP_PATHS);
		memcpy(cfg->skip_paths[n], item, len);
		cfg->skip_paths[n++][len] = '\0';
	}
	cfg->nskip_paths = n;
	return 0;
}

static struct auth_provider *
cur_ap(struct parse *p)
{
	return &p->aps[p->ap];
}

static struct key_item *
cur_ki(struct parse *p)
{
	return &p->kis[p->ki];
}

/* Text with no control characters, shorter than r->max bytes. */
static int
get_text(struct parse *p, const struct key_rule *r, const char *v,
    char *out)
{
	size_t len = strlen(v);

	for (const char *c = v; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return bad(p, r, v, "control character");
	}
	if (len >= (size_t)r->max)
		return bad(p, r, v, "longer than %lld bytes", r->max - 1);
	memcpy(out, v, len + 1);
	return 0;
}

static int
set_ap_name(struct parse *p, const struct key_rule *r, const char *v)
{
	struct key_rule rr = *r;

	rr.max = sizeof cur_ap(p)->name;
	return get_text(p, &rr, v, cur_ap(p)->name);
}

/* Judged at the end, when it is known whether auth and the provider are
 * on. */
static int
set_ap_type(struct parse *p, const struct key_rule *r, const char *v)
{
	struct auth_provider *a = cur_ap(p);
	struct key_rule rr = *r;

	rr.max = sizeof a->type;
	if (get_text(p, &rr, v, a->type) != 0)
		return -1;
	a->type_line = p->line;
	return 0;
}

static int
set_ap_enabled(struct parse *p, const struct key_rule *r, const char *v)
{
	bool on;

	if (get_bool(p, r, v, &on) != 0)
		return -1;
	cur_ap(p)->enabled = on;
	return 0;
}

/* [auth.pipeline.X.static] keys_file: read at the end (finish_auth), and
 * again at every reload, since a reload loads the whole config again. */
static int
set_keys_file(struct parse *p, const struct key_rule *r, const char *v)
{
	struct auth_provider *a = cur_ap(p);

	if (*v == '\0')
		return bad(p, r, v, "empty; keys_file is the path of a file of keys");
	if (strlen(v) >= 1024)
		return bad(p, r, v, "longer than 1023 characters");
	free(a->keys_file);
	if ((a->keys_file = strdup(v)) == NULL)
		return fail(p, 0, "out of memory");
	a->keys_file_line = p->line;
	return 0;
}

static int
set_ak_key(struct parse *p, const struct key_rule *r, const char *v)
{
	struct key_item *k = cur_ki(p);
	const char *why = secret_problem(v, CAP_AUTH_KEY_BYTES);

	(void)r;
	if (why != NULL)
		return bad_secret(p, "%s", why);
	if (k->key != NULL) {
		explicit_bzero(k->key, strlen(k->key));
		free(k->key);
	}
	if ((k->key = strdup(v)) == NULL)
		return fail(p, 0, "out of memory");
	return 0;
}

/* name (labels metrics, logs and records) or user_id (the tenant). */
static int
set_ak_text(struct parse *p, const struct key_rule *r, const char *v)
{
	struct key_item *k = cur_ki(p);
	bool name = strcmp(r->key, "name") == 0;

	if (name && *v == '\0')
		return bad(p, r, v, "empty; a key's name labels its metrics, log lines "
		    "and usage records");
	if (get_text(p, r, v, name ? k->name : k->user_id) != 0)
		return -1;
	if (name)
		k->name_line = p->line;
	return 0;
}

static int
set_ak_status(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "enabled") == 0 || strcasecmp(v, "disabled") == 0) {
		cur_ki(p)->disabled = strcasecmp(v, "disabled") == 0;
		return 0;
	}
	return bad(p, r, v, "must be enabled or disabled");
}

static int
set_ak_expires(struct parse *p, const struct key_rule *r, const char *v)
{
	if (auth_parse_time(v, strlen(v), &cur_ki(p)->expires_at) != 0)
		return bad(p, r, v, "not a time; use RFC 3339 (2026-12-31T23:59:59Z, "
		    "2026-12-31T23:59:59+08:00) or a date (2026-12-31), or null");
	return 0;
}

/* total_quota, allowed_ips, denied_ips: LLMProxy limits llmproxy does not
 * have.  Empty, 0 or [] asks for nothing; anything else is refused at the
 * end if the key is in use. */
static int
set_ak_refused(struct parse *p, const struct key_rule *r, const char *v)
{
	struct key_item *k = cur_ki(p);

	if (*v == '\0' || strcmp(v, "0") == 0 || strcmp(v, "[]") == 0)
		return 0;
	k->refused_line = p->line;
	snprintf(k->refused, sizeof k->refused, "%s", r->key);
	return 0;
}

/* A PEM file llmproxy reads at start ([server.tls] cert_file, key_file,
 * [tls] ca_file, tls_ca_file).  Only its name is judged here: the file
 * itself is read, and its errors reported with this line, at start and by
 * -t (tlsconf.c), so that the parser stays a pure function. */
static int
set_pem_file(struct parse *p, const struct key_rule *r, const char *v)
{
	size_t len = strlen(v), cap = 1024;
	int *line;

	if (len == 0)
		return bad(p, r, v, "the path of a PEM file is expected");
	if (len >= cap)
		return bad(p, r, v, "longer than %zu characters", cap - 1);
	memcpy(field(p, r), v, len + 1);
	if (p->in_backend)
		line = &cur_backend(p)->tls_ca_line;
	else if (strcmp(r->key, "cert_file") == 0)
		line = &p->cfg->server_cert_line;
	else if (strcmp(r->key, "key_file") == 0)
		line = &p->cfg->server_key_line;
	else
		line = &p->cfg->tls_ca_line;
	*line = p->line;
	return 0;
}

/* LLMProxy's client certificate modes: only none is served. */
static int
set_client_auth(struct parse *p, const struct key_rule *r, const char *v)
{
	if (strcasecmp(v, "none") == 0)
		return 0;
	if (strcasecmp(v, "request") == 0 || strcasecmp(v, "require") == 0)
		return bad(p, r, v, "llmproxy does not verify client certificates; "
		    "refusing to serve without the client authentication asked for");
	return bad(p, r, v, "none, request or require expected");
}

/*
 * [server.tls] enabled needs its two files; tls_verify = false is said out
 * loud at start.
 */
static int
finish_tls(struct parse *p)
{
	struct config *cfg = p->cfg;
	const char *text;
	int line = given(p, "server.tls", "enabled", &text);

	if (cfg->server_tls && cfg->server_cert_file[0] == '\0')
		return fail(p, line, "[server.tls] enabled = true needs cert_file "
		    "(the certificate chain, PEM)");
	if (cfg->server_tls && cfg->server_key_file[0] == '\0')
		return fail(p, line, "[server.tls] enabled = true needs key_file "
		    "(the private key, PEM)");
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];

		if (b->https && !b->tls_verify)
			notice_at(p, b->line, "[%s] tls_verify = false: the certificate of "
			    "backend %s is not checked, so anyone on the path can read and "
			    "change its traffic; for lab use only", p->items[i].section, b->name);
	}
	return 0;
}


/* ---- sections ------------------------------------------------------------ */

/*
 * Does section name s match pattern pat?  With prefix, pat may also match
 * s's first elements only (pat is an ancestor of s).  s has no empty
 * elements; "" (the top level) matches only "".
 */
static bool
section_match(const char *pat, const char *s, bool prefix)
{
	if (*pat == '\0' || *s == '\0')
		return *pat == '\0' && *s == '\0';
	for (;;) {
		size_t pn = strcspn(pat, "."), sn = strcspn(s, ".");

		if (!(pn == 1 && pat[0] == '*') && (pn != sn || memcmp(pat, s, sn) != 0))
			return false;
		pat += pn;
		s += sn;
		if (*pat == '\0')
			return *s == '\0' || (prefix && *s == '.');
		if (*s == '\0')
			return false;
		pat++;
		s++;
	}
}

static size_t
depth(const char *pat)
{
	size_t n = 0;

	for (; *pat != '\0'; pat++)
		n += *pat == '.';
	return n;
}

static const struct key_rule *
find_key(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if ((strcmp(keys[i].key, key) == 0 || strcmp(keys[i].key, "*") == 0) &&
		    section_match(keys[i].section, section, false))
			return &keys[i];
	}
	return NULL;
}

static int
open_backend(struct parse *p, const char *name)
{
	struct config *cfg = p->cfg;
	struct backend_conf *b;
	size_t i;

	for (i = 0; i < cfg->nbackends; i++) {
		if (strcmp(p->items[i].section, name) == 0) {  /* reopened */
			p->backend = i;
			p->in_backend = true;
			return 0;
		}
	}
	if (cfg->nbackends == CAP_BACKENDS)
		return fail(p, p->line, "more than %d backends", CAP_BACKENDS);
	if (cfg->nbackends == p->backends_cap) {
		size_t cap = p->backends_cap ? 2 * p->backends_cap : 4;
		struct backend_conf *nb;
		struct item *ni;

		if (cap > CAP_BACKENDS)
			cap = CAP_BACKENDS;
		if ((nb = realloc(cfg->backends, cap * sizeof *nb)) == NULL)
			return fail(p, 0, "out of memory");
		cfg->backends = nb;
		if ((ni = realloc(p->items, cap * sizeof *ni)) == NULL)
			return fail(p, 0, "out of memory");
		p->items = ni;
		p->backends_cap = cap;
	}
	i = cfg->nbackends;
	b = &cfg->backends[i];
	memset(b, 0, sizeof *b);
	memset(&p->items[i], 0, sizeof p->items[i]);
	if ((p->items[i].section = strdup(name)) == NULL)
		return fail(p, 0, "out of memory");
	cfg->nbackends++;
	b->weight = 1;
	b->tls_verify = 1;
	strcpy(b->port, "80");
	b->line = p->line;
	p->backend = i;
	p->in_backend = true;
	return 0;
}

/* [health_check]: its presence turns probes on (see finish_retry_health). */
static int
open_health_check(struct parse *p, const char *name)
{
	(void)name;
	p->hc_section = true;
	return 0;
}

/*
 * [usage_hook], [usage.reporters.X] and X's subsections: the reporter they
 * belong to, made at its first header.
 */
static int
open_reporter(struct parse *p, const char *name)
{
	static const char list[] = "usage.reporters.";
	struct rep_item *v, *it;
	size_t len, i;
	bool hook = strcmp(name, "usage_hook") == 0;

	len = hook ? strlen(name) : sizeof list - 1 + strcspn(name + sizeof list - 1, ".");
	for (i = 0; i < p->nreps; i++) {
		if (strncmp(p->reps[i].section, name, len) == 0 && p->reps[i].section[len] == '\0') {
			p->rep = i;  /* reopened, or a subsection */
			return 0;
		}
	}
	if (p->nreps == CAP_REPORTERS)
		return fail(p, p->line, "more than %d usage reporters ([usage.reporters.*] and "
		    "[usage_hook], disabled ones included)", CAP_REPORTERS);
	if ((v = realloc(p->reps, (p->nreps + 1) * sizeof *v)) == NULL)
		return fail(p, 0, "out of memory");
	p->reps = v;
	it = &v[p->nreps];
	memset(it, 0, sizeof *it);
	if ((it->section = strndup(name, len)) == NULL)
		return fail(p, 0, "out of memory");
	p->rep = p->nreps++;
	it->hook = hook;
	it->enabled = -1;
	it->rc.timeout_ms = CAP_WEBHOOK_TIMEOUT_MS;
	it->rc.line = p->line;
	if (hook)
		strcpy(it->rc.name, "usage_hook");
	return 0;
}

/*
 * [auth.pipeline.X] and its subsections: the provider they belong to, made
 * at its first header.
 */
static int
open_auth_provider(struct parse *p, const char *name)
{
	static const char list[] = "auth.pipeline.";
	size_t len = sizeof list - 1 + strcspn(name + sizeof list - 1, "."), i;
	struct auth_provider *v, *a;

	for (i = 0; i < p->naps; i++) {
		if (strncmp(p->aps[i].section, name, len) == 0 &&
		    p->aps[i].section[len] == '\0') {
			p->ap = i;  /* reopened, or a subsection */
			return 0;
		}
	}
	if (p->naps == CAP_AUTH_PROVIDERS)
		return fail(p, p->line, "more than %d auth providers", CAP_AUTH_PROVIDERS);
	if ((v = realloc(p->aps, (p->naps + 1) * sizeof *v)) == NULL)
		return fail(p, 0, "out of memory");
	p->aps = v;
	a = &v[p->naps];
	memset(a, 0, sizeof *a);
	if ((a->section = strndup(name, len)) == NULL)
		return fail(p, 0, "out of memory");
	a->enabled = -1;
	a->line = p->line;
	p->ap = p->naps++;
	return 0;
}

/* [auth.pipeline.X.static.keys.Y]: one static key. */
static int
open_auth_key(struct parse *p, const char *name)
{
	struct key_item *v, *k;
	size_t i;

	if (open_auth_provider(p, name) != 0)
		return -1;
	for (i = 0; i < p->nkis; i++) {
		if (strcmp(p->kis[i].section, name) == 0) {
			p->ki = i;
			return 0;
		}
	}
	if (p->nkis == CAP_AUTH_KEYS)
		return fail(p, p->line, "more than %d keys", CAP_AUTH_KEYS);
	if ((v = realloc(p->kis, (p->nkis + 1) * sizeof *v)) == NULL)
		return fail(p, 0, "out of memory");
	p->kis = v;
	k = &v[p->nkis];
	memset(k, 0, sizeof *k);
	if ((k->section = strdup(name)) == NULL)
		return fail(p, 0, "out of memory");
	k->provider = p->ap;
	k->line = p->line;
	p->ki = p->nkis++;
	return 0;
}

/* Keeps each distinct section name once; its index identifies it. */
static int
intern(struct parse *p, const char *name, size_t *id)
{
	char **v;
	size_t i;

	for (i = 0; i < p->nnames; i++) {
		if (strcmp(p->names[i], name) == 0) {
			*id = i;
			return 0;
		}
	}
	if ((v = realloc(p->names, (p->nnames + 1) * sizeof *v)) == NULL)
		return fail(p, 0, "out of memory");
	p->names = v;
	if ((v[p->nnames] = strdup(name)) == NULL)
		return fail(p, 0, "out of memory");
	*id = p->nnames++;
	return 0;
}

/* A section header: name is what is between the brackets, trimmed. */
static int
on_section(struct parse *p, const char *name)
{
	const struct section_rule *root = NULL, *rule = NULL;
	const char *c;
	size_t i;

	if (*name == '\0')
		return fail(p, p->line, "empty section name");
	for (c = name; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '[' ||
		    (*c == '.' && (c == name || c[1] == '.' || c[1] == '\0')))
			return fail(p, p->line, "malformed section name [%s]", name);
	}
	strcpy(p->section, name);  /* shorter than the line it came from */
	if (intern(p, name, &p->section_id) != 0)
		return -1;
	p->in_backend = false;

	/* The topmost ignored section at or above this one, if any. */
	for (i = 0; i < NSECTIONS; i++) {
		if (sections[i].use != SUPPORTED &&
		    section_match(sections[i].section, name, true) &&
		    (root == NULL || depth(sections[i].section) < depth(root->section)))
			root = &sections[i];
	}
	if (root != NULL) {
		p->ignoring = true;
		if (!p->section_noticed[root - sections]) {
			p->section_noticed[root - sections] = true;
			notice_at(p, p->line, "[%s] is an LLMProxy section llmproxy %s%s%s; ignored",
			    root->section, not_used(root->use), root->why != NULL ? ": " : "",
			    root->why != NULL ? root->why : "");
		}
		return p->failed ? -1 : 0;
	}
	p->ignoring = false;
	for (i = 0; i < NSECTIONS && rule == NULL; i++) {
		if (section_match(sections[i].section, name, false))
			rule = &sections[i];
	}
	if (rule == NULL)
		return fail(p, p->line, "unknown section [%s]", name);
	return rule->open != NULL ? rule->open(p, name) : 0;
}

/* ---- inih callbacks ------------------------------------------------------- */

static int
src_getc(struct parse *p)
{
	int c;

	if (p->fp == NULL)
		return p->text[p->pos] != '\0' ? (unsigned char)p->text[p->pos++] : EOF;
	c = getc(p->fp);
	if (c == EOF && ferror(p->fp))
		p->read_errno = errno;
	return c;
}

/* A line that is a section header goes to on_section before inih sees it.
 * Lines inih cannot parse (no ']') are left to inih to report. */
static int
header_line(struct parse *p, char *line)
{
	char *s = line, *end, *t, saved;
	int rc;

	if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)  /* UTF-8 BOM */
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '[' || (end = strchr(s + 1, ']')) == NULL)
		return 0;
	for (t = end + 1; isspace((unsigned char)*t); t++)
		;
	if (*t != '\0' && *t != ';' && *t != '#')
		return fail(p, p->line, "text after ']'");
	for (s++; isspace((unsigned char)*s); s++)
		;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	saved = *end;  /* inih parses this line next: leave it as it was */
	*end = '\0';
	rc = on_section(p, s);
	*end = saved;
	return rc;
}

/*
 * inih's line reader (fgets-like).  inih calls it exactly once per line it
 * counts, so p->line is the number of the line inih then hands the handler.
 * Returning NULL ends the parse: at the end, and after an error.
 */
static char *
read_line(char *buf, int num, void *user)
{
	struct parse *p = user;
	size_t len = 0, room;
	int c, last = 0;
	bool nul = false;

	if (p->failed || num < 4)
		return NULL;
	room = (size_t)num - 2;  /* the line, a '\r'; then '\n' and NUL */
	while ((c = src_getc(p)) != EOF && c != '\n') {
		if (len < room)
			buf[len] = (char)c;
		len++;
		nul |= c == '\0';
		last = c;
	}
	if (c == EOF && len == 0)
		return NULL;
	p->line++;
	/* Longer than inih's buffer allows ('\r', '\n' and NUL need room):
	 * inih would cut it into several lines. */
	if (len - (last == '\r') > (size_t)num - 3) {
		fail(p, p->line, "line too long (more than %d characters)", num - 3);
		return NULL;
	}
	if (nul) {
		fail(p, p->line, "NUL byte in the line");
		return NULL;
	}
	if (c == '\n')
		buf[len++] = '\n';
	buf[len] = '\0';
	return header_line(p, buf) == 0 ? buf : NULL;
}

/* Values that are secrets, never shown in a message: a client's key, a
 * backend's api_key, and webhook header values (Authorization = Bearer ...
 * is what they are for). */
static int
secret_rule(const struct key_rule *r)
{
	return r->set == set_ak_key || r->set == set_api_key || r->set == set_header;
}

/* A value may carry one pair of quotes, as YAML allows: "..." or '...'. */
static const char *
unquote(struct parse *p, const struct key_rule *r, const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || (v[0] != '"' && v[0] != '\''))
		return v;
	if (len < 2 || v[len - 1] != v[0]) {
		if (secret_rule(r))
			bad_secret(p, "unbalanced quotes");
		else
			bad(p, r, v, "unbalanced quotes");
		return NULL;
	}
	memcpy(p->value, v + 1, len - 2);
	p->value[len - 2] = '\0';
	return p->value;
}

static int
remember_key(struct parse *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->nseen; i++) {
		if (p->seen[i].section != p->section_id || strcmp(p->seen[i].key, key) != 0)
			continue;
		if (p->section[0] == '\0')
			return fail(p, p->line, "duplicate key '%s' at top level (first on line %d)",
			    key, p->seen[i].line);
		return fail(p, p->line, "duplicate key '%s' in [%s] (first on line %d)",
		    key, p->section, p->seen[i].line);
	}
	if (p->nseen == p->seen_cap) {
		size_t cap = p->seen_cap ? 2 * p->seen_cap : 32;
		struct seen_key *v = realloc(p->seen, cap * sizeof *v);

		if (v == NULL)
			return fail(p, 0, "out of memory");
		p->seen = v;
		p->seen_cap = cap;
	}
	if ((p->seen[p->nseen].key = strdup(key)) == NULL)
		return fail(p, 0, "out of memory");
	p->seen[p->nseen].section = p->section_id;
	p->seen[p->nseen].line = p->line;
	p->nseen++;
	return 0;
}

/* inih's handler: one key = value.  Returns 1 to go on, 0 on an error. */
static int
on_key(void *user, const char *inih_section, const char *key,
    const char *value)
{
	struct parse *p = user;
	const struct key_rule *r;
	const char *v;
	int ok;

	(void)inih_section;  /* cut at 49 bytes; p->section is whole */
	if (p->failed || remember_key(p, key) != 0)
		return 0;
	r = find_key(p->section, key);
	if (p->ignoring && (r == NULL || r->use != REFUSE_IF_TRUE))
		return 1;
	if (r == NULL) {
		if (p->section[0] == '\0')
			fail(p, p->line, "unknown key '%s' before any [section]", key);
		else
			fail(p, p->line, "unknown key '%s' in [%s]", key, p->section);
		return 0;
	}
	if (r->use == LATER || r->use == IGNORED) {
		if (!p->key_noticed[r - keys]) {
			p->key_noticed[r - keys] = true;
			notice_at(p, p->line, "[%s] %s is an LLMProxy key llmproxy %s%s%s; ignored",
			    r->section, r->key, not_used(r->use), r->why != NULL ? ": " : "",
			    r->why != NULL ? r->why : "");
		}
		return !p->failed;
	}
	p->key = key;  /* inih's buffer: valid during this call only */
	ok = (v = unquote(p, r, value)) != NULL && r->set(p, r, v) == 0;
	p->key = NULL;
	/* A secret is kept only where it is used (hashed at the end). */
	if (ok && (r->where == IN_CONFIG || r->where == NOWHERE) &&
	    r->set != set_ak_key) {
		size_t i = (size_t)(r - keys);

		free(p->given_text[i]);
		if ((p->given_text[i] = strdup(v)) == NULL) {
			fail(p, 0, "out of memory");
			return 0;
		}
		p->given_line[i] = p->line;
	}
	return ok;
}

/* ---- loading --------------------------------------------------------------- */

static void
set_defaults(struct config *cfg)
{
	strcpy(cfg->listen_host, "");
	strcpy(cfg->listen_port, "8080");
	strcpy(cfg->tls_ca_file, "/etc/ssl/certs/ca-certificates.crt");
	cfg->threads = CAP_THREADS_DEFAULT;
	cfg->read_timeout_ms = CAP_READ_TIMEOUT_MS;
	cfg->write_timeout_ms = CAP_WRITE_TIMEOUT_MS;
	cfg->idle_timeout_ms = CAP_IDLE_TIMEOUT_MS;
	cfg->shutdown_timeout_ms = CAP_SHUTDOWN_TIMEOUT_MS;
	cfg->max_header_bytes = CAP_HEAD_BYTES_DEFAULT;
	cfg->max_body_size = CAP_BODY_BYTES_DEFAULT;
	cfg->connect_timeout_ms = CAP_CONNECT_TIMEOUT_MS;
	cfg->first_token_timeout_ms = CAP_FIRST_TOKEN_TIMEOUT_MS;
	cfg->stream_idle_timeout_ms = CAP_STREAM_IDLE_TIMEOUT_MS;
	cfg->request_timeout_ms = 0;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->log_json = 0;
	strcpy(cfg->access_file, "");
	cfg->metrics_enabled = 1;
	strcpy(cfg->metrics_path, "/metrics");
	strcpy(cfg->metrics_listen_host, "");
	strcpy(cfg->metrics_listen_port, "");
	cfg->metrics_compat = 0;
	cfg->usage_enabled = 1;
	cfg->usage_inject = 1;
	cfg->usage_max_wait_ms = CAP_USAGE_MAX_WAIT_MS;
	cfg->usage_batch = 1;
	cfg->usage_queue_max = CAP_USAGE_QUEUE_DEFAULT;
	cfg->usage_spool_max_bytes = CAP_SPOOL_BYTES_DEFAULT;
	cfg->usage_spool_fsync = SPOOL_FSYNC_PERIODIC;
	cfg->load_balance = LB_ROUND_ROBIN;
	cfg->retry_enabled = 1;
	cfg->retry_max = RETRY_MAX_DEFAULT;
	cfg->retry_initial_wait_ms = CAP_RETRY_INITIAL_WAIT_MS;
	cfg->retry_max_wait_ms = CAP_RETRY_MAX_WAIT_MS;
	cfg->retry_multiplier = RETRY_MULTIPLIER_DEFAULT;
	cfg->retry_on = RETRY_ON_5XX | RETRY_ON_CONNECT | RETRY_ON_TIMEOUT | RETRY_ON_429;
	cfg->hc_enabled = 0;  /* but see finish_retry_health */
	cfg->hc_interval_ms = CAP_HEALTH_INTERVAL_MS;
	cfg->hc_timeout_ms = CAP_HEALTH_TIMEOUT_MS;
	strcpy(cfg->hc_path, "/health");
	cfg->hc_expected_status = 0;
	cfg->hc_healthy_threshold = HC_HEALTHY_DEFAULT;
	cfg->hc_unhealthy_threshold = HC_UNHEALTHY_DEFAULT;
	cfg->hc_eject = 1;
	cfg->hc_eject_on_5xx = 1;
	cfg->hc_eject_cooldown_ms = CAP_EJECT_COOLDOWN_MS;
}

/* inih's switches (Debian builds it with INI_RUNTIME_OPTIONS).  Its defaults
 * would split lines longer than 200 bytes and take an indented line for the
 * continuation of the previous value. */
static void
inih_setup(void)
{
	static char start_comment[] = ";#";
	static char inline_comment[] = ";";  /* after whitespace only */

	ini_use_stack = false;
	ini_max_line = CAP_CONFIG_LINE;
	ini_initial_alloc = CAP_CONFIG_LINE;
	ini_allow_realloc = false;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_no_value = false;
	ini_allow_inline_comments = true;
	ini_start_comment_prefixes = start_comment;
	ini_inline_comment_prefixes = inline_comment;
	ini_stop_on_first_error = true;
}

/*
 * The reporters that deliver go to cfg->reporters, in file order: a
 * disabled one is left out whole (its url may be missing); an enabled one
 * of a type llmproxy lacks is an error, since its records would be lost.
 * Reporters are judged even when [usage] enabled = false, so that turning
 * usage on later cannot reveal an error.
 */
static int
finish_reporters(struct parse *p)
{
	static const char list[] = "usage.reporters.";
	struct config *cfg = p->cfg;
	size_t from[CAP_REPORTERS];
	size_t i, j, n = 0;

	if (p->nreps > 0 && (cfg->reporters = calloc(p->nreps, sizeof *cfg->reporters)) == NULL)
		return fail(p, 0, "out of memory");
	for (i = 0; i < p->nreps; i++) {
		struct rep_item *it = &p->reps[i];
		struct reporter_conf *rc = &it->rc;
		const char *type = it->type != NULL ? it->type : "webhook";
		const char *suffix = it->section + sizeof list - 1;

		if (strcasecmp(type, "webhook") != 0) {
			if (it->enabled != 0)
				return fail(p, it->type_line, "[%s] type = %s: usage reporter type '%s' is "
				    "not available in llmproxy; records would be lost", it->section, type, type);
			notice_at(p, it->type_line, "[%s] type = %s is an LLMProxy reporter type "
			    "llmproxy does not have; the reporter is disabled; ignored", it->section, type);
			continue;
		}
		if (it->enabled == 0)
			continue;
		if (it->url_line == 0) {
			if (!it->hook)
				return fail(p, rc->line, "[%s] has no url ([%s.webhook] url = http://...)",
				    it->section, it->section);
			if (it->enabled == 1)
				return fail(p, rc->line, "[usage_hook] is enabled but has no url");
			continue;  /* an empty [usage_hook]: nothing to do */
		}
		/* [usage.reporters.billing] is named billing; [usage.reporters.0],
		 * converted from a YAML list, gets HOST:PORT, as a backend does. */
		if (!it->hook && it->name_line == 0) {
			if (label_ok(suffix) && strspn(suffix, "0123456789") != strlen(suffix))
				strcpy(rc->name, suffix);
			else if (hostport_name(rc->name, sizeof rc->name, rc->host, rc->port) != 0)
				return fail(p, rc->line, "[%s] needs a name: HOST:PORT of its url is "
				    "longer than %zu characters", it->section, sizeof rc->name - 1);
		}
		/* Names label log lines and metrics, and the spool keeps each
		 * reporter's place under its name. */
		for (j = 0; j < n; j++) {
			const struct rep_item *first = &p->reps[from[j]];

			if (strcmp(cfg->reporters[j].name, rc->name) != 0)
				continue;
			return fail(p, it->name_line ? it->name_line : rc->line,
			    "reporter name '%s' is used twice (first by [%s], line %d)", rc->name,
			    first->section, first->name_line ? first->name_line : first->rc.line);
		}
		from[n] = i;
		cfg->reporters[n++] = *rc;
	}
	cfg->nreporters = n;
	return p->failed ? -1 : 0;
}

/* The line a [section] key of the config was set on (0: not set), and its
 * value as written. */
static int
given(struct parse *p, const char *section, const char *key, const char **text)
{
	size_t i = (size_t)(find_key(section, key) - keys);

	*text = p->given_text[i];
	return p->given_line[i];
}

/*
 * [health_check] enabled: LLMProxy v0.1 files have no such key (the section
 * alone turned its probes on), so a [health_check] without it is on; no
 * [health_check] at all is off.
 *
 * Pairs of durations where one bounds the other: initial_wait <= max_wait,
 * timeout <= interval (a probe ends before the next one is due).  A default
 * gives way to what the file sets; two values the file sets must agree.
 */
static int
finish_retry_health(struct parse *p)
{
	struct config *cfg = p->cfg;
	const char *init, *max, *interval, *timeout, *enabled;
	int init_line = given(p, "routing.retry", "initial_wait", &init);
	int max_line = given(p, "routing.retry", "max_wait", &max);
	int interval_line = given(p, "health_check", "interval", &interval);
	int timeout_line = given(p, "health_check", "timeout", &timeout);

	if (p->hc_section && given(p, "health_check", "enabled", &enabled) == 0)
		cfg->hc_enabled = 1;

	if (cfg->retry_max_wait_ms < cfg->retry_initial_wait_ms) {
		if (max_line == 0)
			cfg->retry_max_wait_ms = cfg->retry_initial_wait_ms;
		else if (init_line == 0)
			cfg->retry_initial_wait_ms = cfg->retry_max_wait_ms;
		else
			return fail(p, max_line, "[routing.retry] max_wait = %s: less than "
			    "initial_wait = %s (line %d)", max, init, init_line);
	}
	if (cfg->hc_timeout_ms > cfg->hc_interval_ms) {
		if (timeout_line == 0)
			cfg->hc_timeout_ms = cfg->hc_interval_ms;
		else if (interval_line == 0)
			cfg->hc_interval_ms = cfg->hc_timeout_ms;
		else
			return fail(p, timeout_line, "[health_check] timeout = %s: longer than "
			    "interval = %s (line %d)", timeout, interval, interval_line);
	}
	return 0;
}

/*
 * [log] output, LLMProxy's: stderr is what llmproxy does; stdout is taken
 * as stderr (both reach the same journal or container log), with a notice;
 * file sends the access lines to [log.file] path (messages stay on stderr),
 * as access_file would.  [log.file] path means nothing without it.
 */
static int
finish_log(struct parse *p)
{
	struct config *cfg = p->cfg;
	const char *out, *path, *af;
	char why[1200];
	int out_line = given(p, "log", "output", &out);
	int path_line = given(p, "log.file", "path", &path);
	int af_line = given(p, "log", "access_file", &af);

	if (out_line != 0 && strcasecmp(out, "stdout") == 0)
		notice_at(p, out_line, "[log] output = %s: llmproxy logs to stderr (access lines "
		    "too, unless [log] access_file is set); ignored", out);
	if (out_line == 0 || strcasecmp(out, "file") != 0) {
		if (path_line != 0)
			notice_at(p, path_line, "[log.file] path is used only with [log] "
			    "output = file; ignored");
		return p->failed ? -1 : 0;
	}
	if (path_line == 0)
		return fail(p, out_line, "[log] output = %s: needs [log.file] path (the file "
		    "access lines go to), or [log] access_file instead", out);
	if (af_line != 0)
		return fail(p, af_line > path_line ? af_line : path_line, "[log] access_file = %s "
		    "(line %d) and [log] output = file with [log.file] path = %s (line %d) both "
		    "say where access lines go; keep one", af, af_line, path, path_line);
	if (*path == '\0')
		return fail(p, path_line, "[log.file] path = : empty; [log] output = file needs "
		    "the path of a file");
	if (strlen(path) >= sizeof cfg->access_file)
		return fail(p, path_line, "[log.file] path = %s: longer than %zu characters",
		    path, sizeof cfg->access_file - 1);
	if (file_problem(path, "path", false, why, sizeof why) != NULL)
		return fail(p, path_line, "[log.file] path = %s: %s", path, why);
	strcpy(cfg->access_file, path);
	notice_at(p, out_line, "[log] output = %s: access lines go to [log.file] path (%s), "
	    "other messages to stderr", out, path);
	return p->failed ? -1 : 0;
}

/* Does a listener on host w take host h's address too (same port)?  "" and
 * "::" are every address (Linux's IPv6 sockets take IPv4 too), 0.0.0.0 every
 * IPv4 one; a name is not resolved. */
static bool
covers(const char *w, const char *h)
{
	return strcasecmp(w, h) == 0 || *w == '\0' || strcmp(w, "::") == 0 ||
	    (strcmp(w, "0.0.0.0") == 0 && strchr(h, ':') == NULL);
}

/*
 * [metrics] listen must not be the proxy's own address: one of the two
 * could not bind.  Cheap and certain: the same port, and the same host or a
 * wildcard on either side.  Port 0 is any free port, never the same.
 */
static int
finish_metrics(struct parse *p)
{
	struct config *cfg = p->cfg;
	const char *mh = cfg->metrics_listen_host, *sh = cfg->listen_host, *ml;
	int line = given(p, "metrics", "listen", &ml);
	char addr[300];

	if (cfg->metrics_listen_port[0] == '\0' || strcmp(cfg->metrics_listen_port, "0") == 0 ||
	    strcmp(cfg->metrics_listen_port, cfg->listen_port) != 0)
		return 0;
	if (!covers(mh, sh) && !covers(sh, mh))
		return 0;
	if (*sh == '\0')
		snprintf(addr, sizeof addr, ":%s", cfg->listen_port);
	else
		(void)hostport_name(addr, sizeof addr, sh, cfg->listen_port);
	return fail(p, line, "[metrics] listen = %s: the proxy listens on %s already; leave "
	    "listen out to serve the metrics there, or choose another address", ml, addr);
}

/*
 * [rate_limit]: off, or a part turned off, is all zeros (no limit).
 * burst_size defaults to the rate per second (at least 1).
 */
static int
finish_rate_limit(struct parse *p)
{
	struct config *cfg = p->cfg;
	struct { const char *section; struct rl_limits *l; } parts[] = {
		{ "rate_limit.global", &cfg->rl_global },
		{ "rate_limit.per_key", &cfg->rl_per_key },
	};
	const char *t;
	bool on;

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		struct rl_limits *l = parts[i].l;

		if (!cfg->rl_enabled || (given(p, parts[i].section, "enabled", &t) != 0 &&
		    parse_bool(t, &on) == 0 && !on)) {
			memset(l, 0, sizeof *l);
			continue;
		}
		if (given(p, parts[i].section, "burst_size", &t) == 0)
			l->rps_burst = l->rps < 1 ? 1 : (double)(long long)(l->rps + 0.999999);
		/* A minute's budget is also its burst: below 1 no request (and
		 * no token) would ever fit. */
		static const char *const whole[] = { "requests_per_minute", "tokens_per_minute" };
		for (size_t w = 0; w < 2; w++) {
			double v = w == 0 ? l->rpm : l->tpm;    /* > 0: given */
			if (v > 0 && v < 1) {
				int line = given(p, parts[i].section, whole[w], &t);
				return fail(p, line, "[%s] %s = %s: must be 0 (no limit) "
				    "or at least 1", parts[i].section, whole[w], t);
			}
		}
	}
	struct rl_limits *k = &cfg->rl_per_key;
	int line = given(p, "rate_limit", "enabled", &t);
	if (!cfg->auth_enabled && (k->rps > 0 || k->rpm > 0 || k->tpm > 0 ||
	    k->max_concurrent > 0))
		notice_at(p, line, "[rate_limit.per_key] limits the requests of each API "
		    "key and [auth] is off: only [rate_limit.global] applies");
	return p->failed ? -1 : 0;
}

/* Where a key of the table came from, for messages. */
struct origin {
	const char *file;
	int line;
	const char *section;    /* a static key's, or NULL (keys_file) */
};

struct key_origins {
	struct origin *v;
	size_t n, cap;
};

static int
add_key(struct parse *p, struct key_origins *o, const char *key, size_t key_len,
    const char *name, const char *user_id, int disabled, int64_t expires_at,
    struct origin where)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct origin *v = realloc(o->v, cap * sizeof *v);
		if (v == NULL)
			return fail(p, 0, "out of memory");
		o->v = v;
		o->cap = cap;
	}
	if (auth_table_add(&p->cfg->keys, key, key_len, name, user_id, disabled,
	    expires_at) != 0)
		return fail_in(p, where.file, where.line, errno == E2BIG ?
		    "more than %d API keys" : "out of memory", CAP_AUTH_KEYS);
	o->v[o->n++] = where;
	return 0;
}

/* "[section], line N" or "FILE:N", for a message that points elsewhere. */
static const char *
origin_text(char *buf, size_t len, const struct origin *o)
{
	if (o->section != NULL)
		snprintf(buf, len, "[%s], line %d", o->section, o->line);
	else
		snprintf(buf, len, "%s:%d", o->file, o->line);
	return buf;
}

/* The keys of a keys_file (auth.h has the format), read a block at a time
 * through the pure line parser.  Errors are FILE:LINE of that file. */
static int
read_keys_file(struct parse *p, struct auth_provider *a, struct key_origins *o)
{
	const size_t cap = 2 * (CAP_AUTH_LINE + 2);
	char *buf = NULL, name[CAP_AUTH_NAME], user[CAP_AUTH_USER];
	size_t len = 0;
	int line = 0, eof = 0, rc = -1;
	FILE *fp = fopen(a->keys_file, "r");

	if (fp == NULL)
		return fail(p, a->keys_file_line, "[%s.static] keys_file = %s: %s",
		    a->section, a->keys_file, strerror(errno));
	if ((buf = malloc(cap)) == NULL) {
		fail(p, 0, "out of memory");
		goto done;
	}
	for (;;) {
		struct auth_line l;
		long used;

		if (!eof && len < cap) {
			size_t n = fread(buf + len, 1, cap - len, fp);
			len += n;
			if (n == 0 && ferror(fp)) {
				fail_in(p, a->keys_file, 0, "cannot read: %s", strerror(errno));
				goto done;
			}
			eof = n == 0 && feof(fp);
			if (!eof && n > 0 && len < cap)
				continue;
		}
		used = auth_parse_line(buf, len, eof, &l);
		if (used == 0 && eof)
			break;
		if (used == 0)
			continue;       /* room was made above: read on */
		line++;
		if (used < 0) {
			fail_in(p, a->keys_file, line, "%s", l.error);
			goto done;
		}
		if (!l.blank) {
			memcpy(name, l.name, l.name_len);
			name[l.name_len] = '\0';
			memcpy(user, l.user_id, l.user_len);
			user[l.user_len] = '\0';
			if (add_key(p, o, l.key, l.key_len, name, user, l.disabled,
			    l.expires_at, (struct origin){ a->keys_file, line, NULL }) != 0)
				goto done;
		}
		explicit_bzero(buf, (size_t)used);      /* a key was there */
		memmove(buf, buf + used, len - (size_t)used);
		len -= (size_t)used;
	}
	rc = 0;
done:
	if (buf != NULL) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	fclose(fp);
	return rc;
}

static const char *name_of_entry(const void *e);
static int by_name(const void *a, const void *b);

struct name_entry {
	const char *name;
	size_t origin;
};

static const char *
name_of_entry(const void *e)
{
	return ((const struct name_entry *)e)->name;
}

static int
by_name(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int c = strcmp(name_of_entry(x), name_of_entry(y));

	return c != 0 ? c : x->origin < y->origin ? -1 : x->origin > y->origin;
}

/*
 * Names identify keys: in metrics, logs, records, and for the limits that
 * outlive a reload.  Two keys may not share one, nor one secret.
 */
static int
check_key_identities(struct parse *p, const struct key_origins *o)
{
	struct auth_table *t = &p->cfg->keys;
	struct name_entry *e = calloc(t->n, sizeof *e);
	const struct auth_key *dup, *first;
	char where[1200];

	if (e == NULL)
		return fail(p, 0, "out of memory");
	for (size_t i = 0; i < t->n; i++)
		e[i] = (struct name_entry){ t->keys[i].name, t->keys[i].origin };
	qsort(e, t->n, sizeof *e, by_name);
	for (size_t i = 1; i < t->n; i++) {
		if (strcmp(e[i].name, e[i - 1].name) != 0)
			continue;
		const struct origin *later = &o->v[e[i].origin];
		origin_text(where, sizeof where, &o->v[e[i - 1].origin]);
		char name[CAP_AUTH_NAME];
		snprintf(name, sizeof name, "%s", e[i].name);
		free(e);
		return fail_in(p, later->file, later->line, "key name '%s' is used twice "
		    "(first by %s); names label metrics, logs and usage records", name, where);
	}
	free(e);
	if ((dup = auth_table_seal(t, &first)) != NULL) {
		const struct origin *a = &o->v[first->origin], *b = &o->v[dup->origin];
		if (first->origin > dup->origin) {
			const struct origin *x = a;
			a = b;
			b = x;
		}
		origin_text(where, sizeof where, a);
		return fail_in(p, b->file, b->line, "the same API key as %s; each key "
		    "must be different", where);
	}
	return 0;
}

void
config_default_skip_paths(struct config *cfg)
{
	if (!cfg->skip_paths_default)
		return;
	strcpy(cfg->skip_paths[0], "/health");
	strcpy(cfg->skip_paths[1], cfg->metrics_path);
	cfg->nskip_paths = 2;
}

/*
 * [auth] enabled = true: every enabled provider must be one llmproxy is
 * (static), every key in use complete and without limits llmproxy lacks,
 * and there must be at least one key.  Anything less is refused: running
 * open, or with less checking than asked for, is worse than not running.
 * Defaults: header_names Authorization, X-API-Key; skip_paths /health and
 * the metrics path.
 */
static int
finish_auth(struct parse *p)
{
	struct config *cfg = p->cfg;
	struct key_origins o = { 0 };
	const char *t, *mode, *en;
	int enabled_line = given(p, "auth", "enabled", &en);
	int mode_line = given(p, "auth", "mode", &mode);
	size_t nstatic = 0, i;
	int rc = -1;

	if (given(p, "auth", "header_names", &t) == 0) {
		strcpy(cfg->auth_headers[0], "Authorization");
		strcpy(cfg->auth_headers[1], "X-API-Key");
		cfg->nauth_headers = 2;
	}
	cfg->skip_paths_default = given(p, "auth", "skip_paths", &t) == 0;
	config_default_skip_paths(cfg);
	if (!cfg->auth_enabled)
		return 0;
	for (i = 0; i < p->naps; i++) {
		const struct auth_provider *a = &p->aps[i];

		if (a->enabled == 0)
			continue;
		if (a->type_line == 0)
			return fail(p, a->line, "[%s] has no type (static is the provider "
			    "llmproxy has)", a->section);
		if (strcasecmp(a->type, "static") != 0)
			return fail(p, a->type_line, "[%s] type = %s: LLMProxy's %s auth "
			    "provider is not available in llmproxy%s; refusing to run "
			    "without the authentication asked for", a->section,
			    a->type, a->type, strcasecmp(a->type, "builtin") == 0 ?
			    " (it needs LLMProxy's admin database)" : "");
		nstatic++;
	}
	if (mode_line != 0 && strcasecmp(mode, "all") == 0 && nstatic > 1)
		return fail(p, mode_line, "[auth] mode = %s: llmproxy accepts a key that "
		    "any enabled provider lists (first_match); with %zu static providers, "
		    "all cannot be honoured", mode, nstatic);
	for (i = 0; i < p->nkis; i++) {
		const struct key_item *k = &p->kis[i];
		const struct auth_provider *a = &p->aps[k->provider];

		if (a->enabled == 0)
			continue;
		if (k->key == NULL) {
			fail(p, k->line, "[%s] has no key", k->section);
			goto done;
		}
		if (k->name[0] == '\0') {
			fail(p, k->line, "[%s] has no name (the name labels the key's metrics, "
			    "log lines and usage records; the key itself never appears there)",
			    k->section);
			goto done;
		}
		if (k->refused_line != 0) {
			fail(p, k->refused_line, "[%s] %s: llmproxy has no per-key %s; refusing "
			    "to serve the key without the limit asked for ([rate_limit.per_key] "
			    "has llmproxy's limits)", k->section, k->refused,
			    strcmp(k->refused, "total_quota") == 0 ? "quotas" : "IP lists");
			goto done;
		}
		if (add_key(p, &o, k->key, strlen(k->key), k->name, k->user_id, k->disabled,
		    k->expires_at, (struct origin){ p->file, k->line, k->section }) != 0)
			goto done;
	}
	for (i = 0; i < p->naps; i++) {
		if (p->aps[i].enabled != 0 && p->aps[i].keys_file != NULL &&
		    read_keys_file(p, &p->aps[i], &o) != 0)
			goto done;
	}
	if (cfg->keys.n == 0) {
		fail(p, enabled_line, "[auth] enabled = %s: no API key is configured (an "
		    "enabled [auth.pipeline.N] with type = static, and "
		    "[auth.pipeline.N.static.keys.M] or [auth.pipeline.N.static] keys_file); "
		    "every request would be refused", en);
		goto done;
	}
	rc = check_key_identities(p, &o);
done:
	free(o.v);
	return rc;
}

/* Checks that need the whole file, and derived values. */
static int
finish(struct parse *p)
{
	struct config *cfg = p->cfg;
	size_t i, j;

	if (finish_auth(p) != 0 || finish_rate_limit(p) != 0)
		return -1;
	if (cfg->nbackends == 0)
		return fail(p, 0, "no backend configured ([backends.NAME] with url = ...)");
	for (i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];

		if (p->items[i].url_line == 0)
			return fail(p, b->line, "[%s] has no url", p->items[i].section);
		if (p->items[i].name_line != 0)
			continue;
		/* [backends.gpu1] is named gpu1; [backends.0], converted from a
		 * YAML list, gets HOST:PORT, which says more than "0". */
		const char *suffix = strchr(p->items[i].section, '.') + 1;
		if (label_ok(suffix) && strspn(suffix, "0123456789") != strlen(suffix)) {
			strcpy(b->name, suffix);
			continue;
		}
		if (hostport_name(b->name, sizeof b->name, b->host, b->port) != 0)
			return fail(p, b->line, "[%s] needs a name: HOST:PORT of its url is "
			    "longer than %zu characters", p->items[i].section, sizeof b->name - 1);
	}
	/* Names are metrics labels: two backends must not share one. */
	for (i = 1; i < cfg->nbackends; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(cfg->backends[i].name, cfg->backends[j].name) != 0)
				continue;
			return fail(p, p->items[i].name_line ? p->items[i].name_line
			                                     : cfg->backends[i].line,
			    "backend name '%s' is used twice (first by [%s], line %d)",
			    cfg->backends[i].name, p->items[j].section,
			    p->items[j].name_line ? p->items[j].name_line : cfg->backends[j].line);
		}
	}
	if (finish_retry_health(p) != 0 || finish_log(p) != 0 || finish_metrics(p) != 0 ||
	    finish_tls(p) != 0)
		return -1;
	return finish_reporters(p);
}

static struct config *
load(struct parse *p, char *err, size_t errlen)
{
	struct config *cfg;
	size_t i;
	int rc;

	if ((cfg = calloc(1, sizeof *cfg)) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", p->file);
		return NULL;
	}
	p->cfg = cfg;
	set_defaults(cfg);
	snprintf(cfg->path, sizeof cfg->path, "%s", p->file);

	if (intern(p, "", &p->section_id) == 0) {
		inih_setup();
		rc = ini_parse_stream(read_line, p, on_key, p);
		if (p->read_errno != 0)
			fail(p, 0, "cannot read: %s", strerror(p->read_errno));
		else if (rc == -2)
			fail(p, 0, "out of memory");
		else if (rc > 0)
			fail(p, rc, "malformed line: expected [section], key = value or a comment");
		if (!p->failed)
			finish(p);
	}

	for (i = 0; i < cfg->nbackends; i++)
		free(p->items[i].section);
	free(p->items);
	for (i = 0; i < p->nseen; i++)
		free(p->seen[i].key);
	free(p->seen);
	for (i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p->names);
	for (i = 0; i < p->nreps; i++) {
		free(p->reps[i].section);
		free(p->reps[i].type);
	}
	free(p->reps);
	for (i = 0; i < p->naps; i++) {
		free(p->aps[i].section);
		free(p->aps[i].keys_file);
	}
	free(p->aps);
	for (i = 0; i < p->nkis; i++) {
		free(p->kis[i].section);
		if (p->kis[i].key != NULL) {
			explicit_bzero(p->kis[i].key, strlen(p->kis[i].key));
			free(p->kis[i].key);
		}
	}
	free(p->kis);
	free(p->notice_lines);
	for (i = 0; i < NKEYS; i++)
		free(p->given_text[i]);

	if (p->failed) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", p->err);
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	struct parse *p;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if ((p = calloc(1, sizeof *p)) == NULL) {
		fclose(fp);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	p->file = path;
	p->fp = fp;
	cfg = load(p, err, errlen);
	free(p);
	fclose(fp);
	return cfg;
}

struct config *
config_load_string(const char *text, const char *name,
    char *err, size_t errlen)
{
	struct config *cfg;
	struct parse *p;

	if ((p = calloc(1, sizeof *p)) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	p->file = name;
	p->text = text != NULL ? text : "";
	cfg = load(p, err, errlen);
	free(p);
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nnotices; i++)
		free(cfg->notices[i]);
	free(cfg->notices);
	free(cfg->backends);
	free(cfg->reporters);
	auth_table_free(&cfg->keys);
	free(cfg);
}
