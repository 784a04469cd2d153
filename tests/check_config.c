/*
 * check_config.c — config.c: what a user sees for good files, bad files and
 * LLMProxy files.  Table-driven; every message is compared whole, line
 * number included.
 *
 * Run from the repository root (the Makefile does): files are read from
 * tests/data/config/ and ./config.ini.example, or from $SRCDIR if set.
 */
#define _GNU_SOURCE     /* asprintf */
#include <check.h>
#include <ini.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define ERRLEN 2048

/* A valid backend, so that a case can be about something else. */
#define BK "[backends.a]\nurl = http://127.0.0.1:9000\n"

/* Auth on with one static provider and two keys: the first key's section
 * is on line 7, the second's on 8 + the first's lines. */
#define AK(k0, k1) BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n" \
    "[auth.pipeline.0.static.keys.0]\n" k0 "[auth.pipeline.0.static.keys.1]\n" k1
#define NO_KEYS "no API key is configured (an enabled [auth.pipeline.N] with type = static, " \
    "and [auth.pipeline.N.static.keys.M] or [auth.pipeline.N.static] keys_file); every " \
    "request would be refused"

static const char *srcdir(void)
{
	const char *d = getenv("SRCDIR");
	return d != NULL && *d != '\0' ? d : ".";
}

static char *path_of(const char *rel)
{
	static char buf[1024];
	snprintf(buf, sizeof buf, "%s/%s", srcdir(), rel);
	return buf;
}

/* The whole file, NUL-terminated (malloc'd). */
static char *slurp(const char *rel)
{
	FILE *fp = fopen(path_of(rel), "rb");
	char *buf;
	long n;

	ck_assert_msg(fp != NULL, "cannot open %s", path_of(rel));
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	ck_assert_int_ge(n, 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static struct config *load_ok(const char *text)
{
	char err[ERRLEN] = "";
	struct config *cfg = config_load_string(text, "t.ini", err, sizeof err);

	ck_assert_msg(cfg != NULL, "unexpected error: %s\n--- input:\n%s", err, text);
	return cfg;
}

/* ---- config_parse_duration -------------------------------------------------- */

static const struct { const char *s; int rc; int ms; } durations[] = {
	{ "0", 0, 0 },
	{ "0s", 0, 0 },
	{ "0ms", 0, 0 },
	{ "500ms", 0, 500 },
	{ "30s", 0, 30000 },
	{ "2m", 0, 120000 },
	{ "1h", 0, 3600000 },
	{ "1m30s", 0, 90000 },
	{ "1h2m3s4ms", 0, 3723004 },
	{ "30s1m", 0, 90000 },           /* Go takes any order */
	{ "1s1s", 0, 2000 },
	{ "1.5s", 0, 1500 },
	{ "1.5h", 0, 5400000 },
	{ ".5s", 0, 500 },
	{ "5.s", 0, 5000 },
	{ "0.001s", 0, 1 },
	{ "1500us", 0, 2 },               /* below 1 ms rounds up, never to 0 */
	{ "1us", 0, 1 },
	{ "1\xc2\xb5s", 0, 1 },          /* µs */
	{ "2000000ns", 0, 2 },
	{ "1ns", 0, 1 },
	{ "2147483647ms", 0, INT_MAX },
	{ "596h", 0, 596 * 3600000 },
	{ "2147483648ms", -1, 0 },        /* INT_MAX ms + 1 */
	{ "597h", -1, 0 },
	{ "596h31m24s", -1, 0 },
	{ "99999999999999999999999s", -1, 0 },
	{ "9223372036854775807h", -1, 0 },
	{ "", -1, 0 },
	{ "30", -1, 0 },                  /* needs a unit */
	{ "00", -1, 0 },
	{ "1m30", -1, 0 },
	{ "s", -1, 0 },
	{ ".s", -1, 0 },
	{ ".", -1, 0 },
	{ "-1s", -1, 0 },
	{ "+1s", -1, 0 },
	{ "1 s", -1, 0 },
	{ " 1s", -1, 0 },
	{ "1s ", -1, 0 },
	{ "1m 30s", -1, 0 },
	{ "1S", -1, 0 },
	{ "1sec", -1, 0 },
	{ "1d", -1, 0 },
	{ "1.5.5s", -1, 0 },
	{ "1e3ms", -1, 0 },
	{ "0x10s", -1, 0 },
};

START_TEST(test_duration)
{
	int ms = -12345;
	int rc = config_parse_duration(durations[_i].s, &ms);

	ck_assert_msg(rc == durations[_i].rc, "'%s': rc %d, want %d", durations[_i].s, rc,
	    durations[_i].rc);
	if (rc == 0)
		ck_assert_msg(ms == durations[_i].ms, "'%s': %d ms, want %d", durations[_i].s, ms,
		    durations[_i].ms);
	else
		ck_assert_int_eq(ms, -12345);  /* untouched on error */
}
END_TEST

/* ---- config_parse_size ------------------------------------------------------- */

static const struct { const char *s; int rc; uint64_t bytes; } sizes[] = {
	{ "0", 0, 0 },
	{ "1", 0, 1 },
	{ "10485760", 0, 10485760 },
	{ "1b", 0, 1 },
	{ "1B", 0, 1 },
	{ "16k", 0, 16384 },
	{ "16K", 0, 16384 },
	{ "16KB", 0, 16384 },
	{ "16kb", 0, 16384 },
	{ "16KiB", 0, 16384 },
	{ "16kib", 0, 16384 },
	{ "1m", 0, 1048576 },
	{ "1M", 0, 1048576 },
	{ "1MB", 0, 1048576 },
	{ "1MiB", 0, 1048576 },
	{ "10MB", 0, 10485760 },
	{ "1g", 0, 1073741824 },
	{ "1G", 0, 1073741824 },
	{ "1GB", 0, 1073741824 },
	{ "1GiB", 0, 1073741824 },
	{ "007k", 0, 7168 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "17179869183g", 0, UINT64_MAX - (1ull << 30) + 1 },
	{ "18446744073709551616", -1, 0 },  /* 2^64 */
	{ "99999999999999999999999", -1, 0 },
	{ "17179869184g", -1, 0 },          /* 2^34 GiB = 2^64 */
	{ "18014398509481984k", -1, 0 },    /* 2^54 KiB = 2^64 */
	{ "", -1, 0 },
	{ "k", -1, 0 },
	{ "KB", -1, 0 },
	{ "16 k", -1, 0 },
	{ " 16k", -1, 0 },
	{ "16k ", -1, 0 },
	{ "16kk", -1, 0 },
	{ "16KiBs", -1, 0 },
	{ "16Ki", -1, 0 },
	{ "1.5m", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ "1t", -1, 0 },
	{ "1TB", -1, 0 },
	{ "0x10", -1, 0 },
	{ "1e6", -1, 0 },
};

START_TEST(test_size)
{
	uint64_t b = 12345;
	int rc = config_parse_size(sizes[_i].s, &b);

	ck_assert_msg(rc == sizes[_i].rc, "'%s': rc %d, want %d", sizes[_i].s, rc, sizes[_i].rc);
	if (rc == 0)
		ck_assert_msg(b == sizes[_i].bytes, "'%s': %llu, want %llu", sizes[_i].s,
		    (unsigned long long)b, (unsigned long long)sizes[_i].bytes);
	else
		ck_assert_uint_eq(b, 12345);
}
END_TEST

/* ---- good configs: one field each ---------------------------------------------- */

enum field {
	LISTEN_HOST, LISTEN_PORT, THREADS, READ_TO, WRITE_TO, IDLE_TO, SHUTDOWN_TO, HEAD_BYTES,
	BODY_BYTES, CONNECT_TO, FIRST_TOKEN_TO, STREAM_IDLE_TO, REQUEST_TO, LOG_LEVEL,
	LOG_JSON, ACCESS_FILE, M_ENABLED, M_PATH, M_HOST, M_PORT, M_COMPAT,  /* [log], [metrics] */
	NBACKENDS, NNOTICES,
	U_ENABLED, U_INJECT, U_MAX_WAIT, U_BATCH, U_QUEUE, U_SPOOL, U_SPOOL_MAX, U_FSYNC,
	NREPORTERS,
	LB, RT_ENABLED, RT_MAX, RT_INIT, RT_MAXW, RT_ON,                      /* [routing.retry] */
	HC_ENABLED, HC_INTERVAL, HC_TIMEOUT, HC_PATH, HC_STATUS, HC_HEALTHY,  /* [health_check] */
	HC_UNHEALTHY, HC_EJECT, HC_EJECT5XX, HC_COOLDOWN,
	B_NAME, B_URL, B_HOST, B_PORT, B_PREFIX, B_WEIGHT, B_LINE, B_CONT,  /* backend `be` */
	B_NMODELS, B_MODELS /* "a|b" */, B_HPATH, B_MAXCONN,
	R_NAME, R_URL, R_HOST, R_PORT, R_PATH, R_HTTPS, R_TIMEOUT, R_LINE,  /* reporter `be` */
	R_NHEADERS, R_HEADERS,  /* "Name: value|Name: value" */
};

struct good {
	const char *ini;
	enum field f;
	int be;                 /* backend (B_*) or reporter (R_*) index */
	long long num;          /* numeric fields */
	const char *str;        /* string fields */
};

#define NUM(ini, f, n)        { ini, f, 0, n, NULL }
#define STR(ini, f, s)        { ini, f, 0, 0, s }
#define BNUM(ini, be, f, n)   { ini, f, be, n, NULL }
#define BSTR(ini, be, f, s)   { ini, f, be, 0, s }
#define RNUM(ini, r, f, n)    { ini, f, r, n, NULL }
#define RSTR(ini, r, f, s)    { ini, f, r, 0, s }

/* A reporter with every key, after BK (its header is line 3). */
#define RA "[usage.reporters.0]\nname = bill\ntype = webhook\nenabled = true\n" \
    "[usage.reporters.0.webhook]\nurl = http://127.0.0.1:3001/usage\ntimeout = 2s\n" \
    "method = POST\nretry = 3\n"
/* A webhook reporter url, alone. */
#define W_URL(u) BK "[usage.reporters.0.webhook]\nurl = " u "\n"
#define HDRS(h) BK "[usage.reporters.x.webhook]\nurl = http://h\n[usage.reporters.x.webhook.headers]\n" h
/* One key in [routing], [routing.retry], [health_check] (line 2), or in a
 * backend (line 3). */
#define RO(kv) "[routing]\n" kv "\n" BK
#define RT(kv) "[routing.retry]\n" kv "\n" BK
#define HC(kv) "[health_check]\n" kv "\n" BK
#define BE(kv) BK kv "\n"
/* One key in [log] or [metrics] (line 2). */
#define LG(kv) "[log]\n" kv "\n" BK
#define ME(kv) "[metrics]\n" kv "\n" BK
#define RETRY_ALL (RETRY_ON_5XX | RETRY_ON_CONNECT | RETRY_ON_TIMEOUT | RETRY_ON_429)

static const struct good goods[] = {
	/* defaults, from caps.h */
	STR(BK, LISTEN_HOST, ""),
	STR(BK, LISTEN_PORT, "8080"),
	NUM(BK, THREADS, CAP_THREADS_DEFAULT),
	NUM(BK, READ_TO, CAP_READ_TIMEOUT_MS),
	NUM(BK, WRITE_TO, CAP_WRITE_TIMEOUT_MS),
	NUM(BK, IDLE_TO, CAP_IDLE_TIMEOUT_MS),
	NUM(BK, SHUTDOWN_TO, CAP_SHUTDOWN_TIMEOUT_MS),
	NUM(BK, HEAD_BYTES, CAP_HEAD_BYTES_DEFAULT),
	NUM(BK, BODY_BYTES, CAP_BODY_BYTES_DEFAULT),
	NUM(BK, CONNECT_TO, CAP_CONNECT_TIMEOUT_MS),
	NUM(BK, FIRST_TOKEN_TO, CAP_FIRST_TOKEN_TIMEOUT_MS),
	NUM(BK, STREAM_IDLE_TO, CAP_STREAM_IDLE_TIMEOUT_MS),
	NUM(BK, REQUEST_TO, 0),
	NUM(BK, LOG_LEVEL, LOG_LEVEL_INFO),
	NUM(BK, NBACKENDS, 1),
	NUM(BK, NNOTICES, 0),
	BSTR("[backends.0]\nurl = http://127.0.0.1:9000\n", 0, B_NAME, "127.0.0.1:9000"),
	BSTR(BK, 0, B_NAME, "a"),
	BSTR(BK, 0, B_URL, "http://127.0.0.1:9000"),
	BSTR(BK, 0, B_HOST, "127.0.0.1"),
	BSTR(BK, 0, B_PORT, "9000"),
	BSTR(BK, 0, B_PREFIX, ""),
	BNUM(BK, 0, B_WEIGHT, 1),
	BNUM(BK, 0, B_LINE, 1),

	/* listen: top level (LLMProxy v0.1), [server], and which wins */
	STR("listen = :9999\n" BK, LISTEN_PORT, "9999"),
	STR("listen = :9999\n" BK, LISTEN_HOST, ""),
	STR("listen = 10.1.2.3:7\n" BK, LISTEN_HOST, "10.1.2.3"),
	STR("listen = :1\n[server]\nlisten = 127.0.0.1:2\n" BK, LISTEN_HOST, "127.0.0.1"),
	STR("listen = :1\n[server]\nlisten = 127.0.0.1:2\n" BK, LISTEN_PORT, "2"),
	STR("listen = :1\n[server]\nthreads = 2\n" BK, LISTEN_PORT, "1"),
	STR("[server]\nlisten = [::1]:8080\n" BK, LISTEN_HOST, "::1"),
	STR("[server]\nlisten = [::1]:8080\n" BK, LISTEN_PORT, "8080"),
	STR("[server]\nlisten = [::]:80\n" BK, LISTEN_HOST, "::"),
	STR("[server]\nlisten = localhost:0\n" BK, LISTEN_HOST, "localhost"),
	STR("[server]\nlisten = localhost:0\n" BK, LISTEN_PORT, "0"),
	STR("[server]\nlisten = :65535\n" BK, LISTEN_PORT, "65535"),
	STR("[server]\nlisten = 0.0.0.0:080\n" BK, LISTEN_PORT, "80"),
	STR("[server]\nlisten = \":8000\"\n" BK, LISTEN_PORT, "8000"),
	STR("[server]\nlisten = ':8001'\n" BK, LISTEN_PORT, "8001"),

	/* integers */
	NUM("[server]\nthreads = 1\n" BK, THREADS, 1),
	NUM("[server]\nthreads = 4096\n" BK, THREADS, 4096),
	NUM("[server]\nthreads = 007\n" BK, THREADS, 7),
	NUM("[server]\nthreads = 8 ; eight workers\n" BK, THREADS, 8),
	NUM("[server]\nthreads = \"9\"\n" BK, THREADS, 9),
	NUM("[server]\nthreads: 7\n" BK, THREADS, 7),  /* inih takes ':' too */

	/* every duration form, in each duration key */
	NUM("[server]\nread_timeout = 500ms\n" BK, READ_TO, 500),
	NUM("[server]\nread_timeout = 30s\n" BK, READ_TO, 30000),
	NUM("[server]\nread_timeout = 2m\n" BK, READ_TO, 120000),
	NUM("[server]\nread_timeout = 1h\n" BK, READ_TO, 3600000),
	NUM("[server]\nread_timeout = 1m30s\n" BK, READ_TO, 90000),
	NUM("[server]\nread_timeout = 1.5s\n" BK, READ_TO, 1500),
	NUM("[server]\nwrite_timeout = 61s\n" BK, WRITE_TO, 61000),
	NUM("[server]\nidle_timeout = 121s\n" BK, IDLE_TO, 121000),
	NUM("[server]\nshutdown_timeout = 0\n" BK, SHUTDOWN_TO, 0),
	NUM("[server]\nshutdown_timeout = 5s\n" BK, SHUTDOWN_TO, 5000),
	NUM("[routing]\nconnect_timeout = 250ms\n" BK, CONNECT_TO, 250),
	NUM("[routing]\nfirst_token_timeout = 10m\n" BK, FIRST_TOKEN_TO, 600000),
	NUM("[routing]\nidle_timeout = 45s\n" BK, STREAM_IDLE_TO, 45000),
	NUM("[routing]\ntimeout = 60s\n" BK, REQUEST_TO, 60000),
	NUM("[routing]\ntimeout = 0\n" BK, REQUEST_TO, 0),  /* 0 = none: allowed here */
	NUM("[routing]\ntimeout = 0s\n" BK, REQUEST_TO, 0),

	/* every size form */
	NUM("[server]\nmax_body_size = 10485760\n" BK, BODY_BYTES, 10485760),
	NUM("[server]\nmax_body_size = 16k\n" BK, BODY_BYTES, 16384),
	NUM("[server]\nmax_body_size = 16K\n" BK, BODY_BYTES, 16384),
	NUM("[server]\nmax_body_size = 16KB\n" BK, BODY_BYTES, 16384),
	NUM("[server]\nmax_body_size = 16KiB\n" BK, BODY_BYTES, 16384),
	NUM("[server]\nmax_body_size = 1m\n" BK, BODY_BYTES, 1048576),
	NUM("[server]\nmax_body_size = 1MB\n" BK, BODY_BYTES, 1048576),
	NUM("[server]\nmax_body_size = 1MiB\n" BK, BODY_BYTES, 1048576),
	NUM("[server]\nmax_body_size = 1g\n" BK, BODY_BYTES, 1073741824),
	NUM("[server]\nmax_body_size = 1GB\n" BK, BODY_BYTES, 1073741824),
	NUM("[server]\nmax_body_size = 1GiB\n" BK, BODY_BYTES, 1073741824),
	NUM("[server]\nmax_body_size = 1\n" BK, BODY_BYTES, 1),
	NUM("[server]\nmax_header_bytes = 1k\n" BK, HEAD_BYTES, 1024),
	NUM("[server]\nmax_header_bytes = 1048576\n" BK, HEAD_BYTES, 1048576),
	NUM("[server]\nmax_header_bytes = 64KiB\n" BK, HEAD_BYTES, 65536),

	/* every boolean form, where a boolean is read: a refused switch, off */
	NUM("[auth]\nenabled = false\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = FALSE\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = no\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = off\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = Off\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = 0\n" BK, NBACKENDS, 1),
	NUM("[auth]\nenabled = \"false\"\n" BK, NBACKENDS, 1),
	NUM("[server.tls]\nenabled = false\ncert_file = a.crt\n" BK, NBACKENDS, 1),
	NUM("[auth]\nmode = first_match\n" BK, NBACKENDS, 1),  /* absent = off */

	/* log levels */
	NUM("[log]\nlevel = debug\n" BK, LOG_LEVEL, LOG_LEVEL_DEBUG),
	NUM("[log]\nlevel = info\n" BK, LOG_LEVEL, LOG_LEVEL_INFO),
	NUM("[log]\nlevel = warn\n" BK, LOG_LEVEL, LOG_LEVEL_WARN),
	NUM("[log]\nlevel = error\n" BK, LOG_LEVEL, LOG_LEVEL_ERROR),
	NUM("[log]\nlevel = \"ERROR\"\n" BK, LOG_LEVEL, LOG_LEVEL_ERROR),

	/* [log] format, access_file, output, [log.file] path: defaults, then values */
	NUM(BK, LOG_JSON, 0),
	STR(BK, ACCESS_FILE, ""),
	NUM(LG("format = text"), LOG_JSON, 0),
	NUM(LG("format = json"), LOG_JSON, 1),
	NUM(LG("format = \"JSON\""), LOG_JSON, 1),
	NUM(LG("format = Text"), LOG_JSON, 0),
	STR(LG("access_file = /tmp/llmproxy-check-access.log"), ACCESS_FILE, "/tmp/llmproxy-check-access.log"),
	STR(LG("access_file = llmproxy-check-access.log"), ACCESS_FILE, "llmproxy-check-access.log"),
	STR(LG("access_file = ./llmproxy-check-access.log"), ACCESS_FILE, "./llmproxy-check-access.log"),
	STR(LG("access_file = /llmproxy-check-access.log"), ACCESS_FILE, "/llmproxy-check-access.log"),
	STR(LG("access_file = /dev/null"), ACCESS_FILE, "/dev/null"),      /* not only regular files */
	STR(LG("access_file = /dev/stdout"), ACCESS_FILE, "/dev/stdout"),
	STR(LG("access_file = "), ACCESS_FILE, ""),                         /* stderr */
	STR(LG("access_file = \"\""), ACCESS_FILE, ""),
	STR(LG("output = stderr"), ACCESS_FILE, ""),
	NUM(LG("output = stderr"), NNOTICES, 0),
	NUM(LG("output = STDERR"), NNOTICES, 0),
	STR(LG("output = stdout"), ACCESS_FILE, ""),
	STR("[log]\noutput = file\n[log.file]\npath = /tmp/llmproxy-check.log\n" BK, ACCESS_FILE,
	    "/tmp/llmproxy-check.log"),
	STR("[log.file]\npath = \"/tmp/llmproxy-check.log\"\n[log]\noutput = \"File\"\n" BK, ACCESS_FILE,
	    "/tmp/llmproxy-check.log"),
	STR("[log]\noutput = stdout\n[log.file]\npath = /nonexistent-llmproxy-check/x.log\n" BK, ACCESS_FILE, ""),
	STR("[log.file]\npath = /nonexistent-llmproxy-check/x.log\n" BK, ACCESS_FILE, ""),
	NUM("[log.file]\n" BK, NNOTICES, 0),

	/* [metrics]: defaults, then values */
	NUM(BK, M_ENABLED, 1),
	STR(BK, M_PATH, "/metrics"),
	STR(BK, M_HOST, ""),
	STR(BK, M_PORT, ""),
	NUM(BK, M_COMPAT, 0),
	NUM("[metrics]\n" BK, M_ENABLED, 1),
	NUM("[metrics]\n" BK, NNOTICES, 0),
	NUM(ME("enabled = false"), M_ENABLED, 0),
	NUM(ME("enabled = yes"), M_ENABLED, 1),
	NUM(ME("llmproxy_compat = true"), M_COMPAT, 1),
	NUM(ME("llmproxy_compat = off"), M_COMPAT, 0),
	STR(ME("path = /prometheus"), M_PATH, "/prometheus"),
	STR(ME("path = \"/metrics\""), M_PATH, "/metrics"),
	STR(ME("path = /"), M_PATH, "/"),
	STR(ME("path = /v1"), M_PATH, "/v1"),                 /* not under /v1/ */
	STR(ME("path = /V1/metrics"), M_PATH, "/V1/metrics"), /* routes are case-sensitive */
	STR(ME("path = /healthz"), M_PATH, "/healthz"),
	STR(ME("path = /a/b.c/..d/%41_~-"), M_PATH, "/a/b.c/..d/%41_~-"),
	STR(ME("path = /metrics/"), M_PATH, "/metrics/"),
	STR(ME("listen = :9100"), M_HOST, ""),
	STR(ME("listen = :9100"), M_PORT, "9100"),
	STR(ME("listen = 127.0.0.1:9100"), M_HOST, "127.0.0.1"),
	STR(ME("listen = 127.0.0.1:9100"), M_PORT, "9100"),
	STR(ME("listen = [::1]:09100"), M_HOST, "::1"),
	STR(ME("listen = [::1]:09100"), M_PORT, "9100"),
	STR(ME("listen = localhost:0"), M_PORT, "0"),
	STR(ME("listen = "), M_PORT, ""),                      /* the main listener */
	STR(ME("listen = \"\""), M_HOST, ""),
	STR(ME("listen = :9100") "[server]\nlisten = :9000\n", LISTEN_PORT, "9000"),  /* apart */
	/* the same port on another address of the host */
	STR("[server]\nlisten = 127.0.0.1:8080\n[metrics]\nlisten = 127.0.0.2:8080\n" BK, M_HOST, "127.0.0.2"),
	STR("[server]\nlisten = [::1]:8080\n[metrics]\nlisten = 0.0.0.0:8080\n" BK, M_HOST, "0.0.0.0"),
	STR("[server]\nlisten = 0.0.0.0:8080\n[metrics]\nlisten = [::1]:8080\n" BK, M_HOST, "::1"),
	STR("[server]\nlisten = localhost:8080\n[metrics]\nlisten = 127.0.0.1:8080\n" BK, M_HOST, "127.0.0.1"),
	STR("[server]\nlisten = :0\n[metrics]\nlisten = :0\n" BK, M_PORT, "0"),  /* any free port, twice */

	/* backends: any suffix, file order, header lines */
	NUM("[backends.gpu1]\nurl = http://a\n[backends.0]\nurl = http://b:81\n", NBACKENDS, 2),
	BSTR("[backends.gpu1]\nurl = http://a\n[backends.0]\nurl = http://b:81\n", 0, B_NAME, "gpu1"),
	BSTR("[backends.gpu1]\nurl = http://a\n[backends.0]\nurl = http://b:81\n", 1, B_NAME, "b:81"),
	BNUM("[backends.gpu1]\nurl = http://a\n[backends.0]\nurl = http://b:81\n", 1, B_LINE, 3),
	BSTR("[backends.gpu1]\nurl = http://a\n[backends.0]\nurl = http://b:81\n", 0, B_PORT, "80"),
	BNUM("[backends.a]\nurl = http://h\nweight = 1000\n", 0, B_WEIGHT, 1000),
	BNUM("[backends.a]\nweight = 3\nurl = http://h\n", 0, B_WEIGHT, 3),
	BSTR("[backends.a]\nname = gpu-1.local_2\nurl = http://h\n", 0, B_NAME, "gpu-1.local_2"),
	BSTR("[backends.a]\nname = 'gpu-1'\nurl = \"http://h\"\n", 0, B_NAME, "gpu-1"),
	BSTR("[backends.a]\nname = 'gpu-1'\nurl = \"http://h\"\n", 0, B_URL, "http://h"),
	BNUM("[ backends.a ]\nurl = http://h\n", 0, B_LINE, 1),
	/* a section may be opened again: same backend */
	NUM("[backends.a]\nurl = http://h\n[server]\n[backends.a]\nweight = 3\n", NBACKENDS, 1),
	BNUM("[backends.a]\nurl = http://h\n[server]\n[backends.a]\nweight = 3\n", 0, B_WEIGHT, 3),

	/* backend urls */
	BSTR("[backends.a]\nurl = http://[::1]:8000/v1/\n", 0, B_HOST, "::1"),
	BSTR("[backends.a]\nurl = http://[::1]:8000/v1/\n", 0, B_PORT, "8000"),
	BSTR("[backends.a]\nurl = http://[::1]:8000/v1/\n", 0, B_PREFIX, "/v1"),
	BSTR("[backends.0]\nurl = http://[::1]:8000/v1/\n", 0, B_NAME, "[::1]:8000"),
	BSTR("[backends.a]\nurl = http://[::1]:8000/v1/\n", 0, B_URL, "http://[::1]:8000/v1/"),
	BSTR("[backends.a]\nurl = http://[fe80::1:2]\n", 0, B_PORT, "80"),
	BSTR("[backends.a]\nurl = http://h/api/\n", 0, B_PREFIX, "/api"),
	BSTR("[backends.a]\nurl = http://h/a/b\n", 0, B_PREFIX, "/a/b"),
	BSTR("[backends.a]\nurl = http://h/\n", 0, B_PREFIX, ""),
	BSTR("[backends.a]\nurl = http://h//\n", 0, B_PREFIX, ""),
	BSTR("[backends.a]\nurl = http://h/a;b=1/%7Ex\n", 0, B_PREFIX, "/a;b=1/%7Ex"),
	BSTR("[backends.a]\nurl = HTTP://Gpu.Local:8080/X\n", 0, B_HOST, "Gpu.Local"),
	BSTR("[backends.a]\nurl = HTTP://Gpu.Local:8080/X\n", 0, B_PREFIX, "/X"),
	BSTR("[backends.a]\nurl = http://my_service:1\n", 0, B_HOST, "my_service"),
	BSTR("[backends.a]\nurl = http://h:00080\n", 0, B_PORT, "80"),
	BSTR("[backends.a]\nurl = http://h:65535\n", 0, B_PORT, "65535"),

	/* line handling */
	NUM("[server]\r\nthreads = 8\r\n" BK, THREADS, 8),                      /* CRLF */
	NUM("\xef\xbb\xbf[server]\nthreads = 3\n" BK, THREADS, 3),             /* BOM */
	NUM("[server]\n  threads = 4\n" BK, THREADS, 4),   /* indented: not a continuation */
	NUM("  [server]  ; the server\n\tthreads = 5\n" BK, THREADS, 5),
	NUM("# a comment\n; another\n\n[server]\n#threads = 1\nthreads = 6\n" BK, THREADS, 6),
	NUM("[server]\nthreads = 6" "\n" BK "[log]\nlevel = warn", LOG_LEVEL, LOG_LEVEL_WARN), /* no final newline */

	/* [usage]: defaults */
	NUM(BK, U_ENABLED, 1),
	NUM(BK, U_INJECT, 1),
	NUM(BK, U_MAX_WAIT, CAP_USAGE_MAX_WAIT_MS),
	NUM(BK, U_BATCH, 1),
	NUM(BK, U_QUEUE, CAP_USAGE_QUEUE_DEFAULT),
	STR(BK, U_SPOOL, ""),
	NUM(BK, U_SPOOL_MAX, (long long)CAP_SPOOL_BYTES_DEFAULT),
	NUM(BK, U_FSYNC, SPOOL_FSYNC_PERIODIC),
	NUM(BK, NREPORTERS, 0),
	NUM("[usage]\n" BK, U_ENABLED, 1),
	NUM("[usage]\n" BK, NNOTICES, 0),
	BNUM(BK, 0, B_CONT, 0),

	/* [usage]: every key */
	NUM("[usage]\nenabled = false\n" BK, U_ENABLED, 0),
	NUM("[usage]\nenabled = no\n" BK, U_ENABLED, 0),
	NUM("[usage]\nenabled = true\n" BK, U_ENABLED, 1),
	NUM("[usage]\ninject_include_usage = false\n" BK, U_INJECT, 0),
	NUM("[usage]\ninject_include_usage = on\n" BK, U_INJECT, 1),
	NUM("[usage]\nmax_wait = 1ms\n" BK, U_MAX_WAIT, 1),
	NUM("[usage]\nmax_wait = 500ms\n" BK, U_MAX_WAIT, 500),
	NUM("[usage]\nmax_wait = 2m\n" BK, U_MAX_WAIT, 120000),
	NUM("[usage]\nmax_wait = 1h\n" BK, U_MAX_WAIT, 3600000),
	NUM("[usage]\nbatch = 1\n" BK, U_BATCH, 1),
	NUM("[usage]\nbatch = 100\n" BK, U_BATCH, 100),
	NUM("[usage]\nbatch = 1000\n" BK, U_BATCH, 1000),
	NUM("[usage]\nqueue_max = 1\n" BK, U_QUEUE, 1),
	NUM("[usage]\nqueue_max = 500\n" BK, U_QUEUE, 500),
	NUM("[usage]\nqueue_max = 10000000\n" BK, U_QUEUE, 10000000),
	STR("[usage]\nspool = /tmp/llmproxy-check.spool\n" BK, U_SPOOL, "/tmp/llmproxy-check.spool"),
	STR("[usage]\nspool = \"/tmp/llmproxy-check.spool\"\n" BK, U_SPOOL, "/tmp/llmproxy-check.spool"),
	STR("[usage]\nspool = llmproxy-check.spool\n" BK, U_SPOOL, "llmproxy-check.spool"),  /* in . */
	STR("[usage]\nspool = /llmproxy-check.spool\n" BK, U_SPOOL, "/llmproxy-check.spool"),
	NUM("[usage]\nspool_max_bytes = 64k\n" BK, U_SPOOL_MAX, 65536),
	NUM("[usage]\nspool_max_bytes = 10MB\n" BK, U_SPOOL_MAX, 10485760),
	NUM("[usage]\nspool_max_bytes = 1024g\n" BK, U_SPOOL_MAX, 1LL << 40),
	NUM("[usage]\nspool_fsync = never\n" BK, U_FSYNC, SPOOL_FSYNC_NEVER),
	NUM("[usage]\nspool_fsync = periodic\n" BK, U_FSYNC, SPOOL_FSYNC_PERIODIC),
	NUM("[usage]\nspool_fsync = always\n" BK, U_FSYNC, SPOOL_FSYNC_ALWAYS),
	NUM("[usage]\nspool_fsync = \"ALWAYS\"\n" BK, U_FSYNC, SPOOL_FSYNC_ALWAYS),
	BNUM(BK "continuous_usage = true\n", 0, B_CONT, 1),
	BNUM(BK "continuous_usage = false\n", 0, B_CONT, 0),
	BNUM("[backends.a]\ncontinuous_usage = yes\nurl = http://h\n[backends.b]\nurl = http://g\n", 1, B_CONT, 0),

	/* a reporter with every key */
	NUM(BK RA, NREPORTERS, 1),
	NUM(BK RA, NNOTICES, 1),  /* retry */
	RSTR(BK RA, 0, R_NAME, "bill"),
	RSTR(BK RA, 0, R_URL, "http://127.0.0.1:3001/usage"),
	RSTR(BK RA, 0, R_HOST, "127.0.0.1"),
	RSTR(BK RA, 0, R_PORT, "3001"),
	RSTR(BK RA, 0, R_PATH, "/usage"),
	RNUM(BK RA, 0, R_HTTPS, 0),
	RNUM(BK RA, 0, R_TIMEOUT, 2000),
	RNUM(BK RA, 0, R_LINE, 3),
	RNUM(BK RA, 0, R_NHEADERS, 0),
	/* ...and its defaults: enabled, type webhook, the name from the url */
	RSTR("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_NAME, "h:80"),
	RSTR("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_PORT, "80"),
	RSTR("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_PATH, "/"),
	RNUM("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_TIMEOUT, CAP_WEBHOOK_TIMEOUT_MS),
	RNUM("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_LINE, 1),
	RNUM("[usage.reporters.0.webhook]\nurl = http://h\n" BK, 0, R_NHEADERS, 0),
	NUM("[usage.reporters.0.webhook]\nurl = http://h\n" BK, NNOTICES, 0),
	RSTR("[usage.reporters.billing.webhook]\nurl = http://h\n" BK, 0, R_NAME, "billing"),
	RSTR("[usage.reporters.1]\n[usage.reporters.1.webhook]\nurl = http://[::1]:9/u\n" BK, 0, R_NAME, "[::1]:9"),
	RSTR("[usage.reporters.1]\n[usage.reporters.1.webhook]\nurl = http://[::1]:9/u\n" BK, 0, R_HOST, "::1"),
	RSTR("[usage.reporters.0]\nname = 'billing-1'\n[usage.reporters.0.webhook]\nurl = http://h\n" BK,
	    0, R_NAME, "billing-1"),
	RSTR("[usage.reporters.0]\ntype = Webhook\nenabled = 1\n[usage.reporters.0.webhook]\nurl = http://h\n"
	    "method = post\n" BK, 0, R_NAME, "h:80"),
	/* a reporter's sections may come apart, in any order */
	RSTR("[usage.reporters.a.webhook]\nurl = http://h\n[server]\n[usage.reporters.a]\nname = x\n" BK,
	    0, R_NAME, "x"),
	NUM("[usage.reporters.a.webhook]\nurl = http://h\n[server]\n[usage.reporters.a]\nname = x\n" BK,
	    NREPORTERS, 1),

	/* webhook urls: path and query kept, "/" when empty */
	RSTR(W_URL("http://h?x=1"), 0, R_PATH, "/?x=1"),
	RSTR(W_URL("http://h/?x=1"), 0, R_PATH, "/?x=1"),
	RSTR(W_URL("http://h/a/b/?k=a/b?c&d=%20"), 0, R_PATH, "/a/b/?k=a/b?c&d=%20"),
	RSTR(W_URL("http://h/"), 0, R_PATH, "/"),
	RSTR(W_URL("HTTP://Hook.Local:1/X"), 0, R_HOST, "Hook.Local"),
	RSTR(W_URL("HTTP://Hook.Local:1/X"), 0, R_PORT, "1"),
	RSTR(W_URL("HTTP://Hook.Local:1/X"), 0, R_PATH, "/X"),
	RSTR(W_URL("\"http://h:65535/a;b\""), 0, R_URL, "http://h:65535/a;b"),
	/* https: accepted, marked, port 443 (see the notices) */
	RNUM(W_URL("https://h/u"), 0, R_HTTPS, 1),
	RSTR(W_URL("https://h/u"), 0, R_PORT, "443"),
	RSTR(W_URL("https://h/u"), 0, R_NAME, "h:443"),
	RSTR(W_URL("HTTPS://h:8443"), 0, R_PORT, "8443"),
	RSTR(W_URL("HTTPS://h:8443"), 0, R_PATH, "/"),

	/* headers */
	RNUM(HDRS("Authorization = Bearer xxx\nX-Tenant = \"a b\"\n"), 0, R_NHEADERS, 2),
	RSTR(HDRS("Authorization = Bearer xxx\nX-Tenant = \"a b\"\n"), 0, R_HEADERS,
	    "Authorization: Bearer xxx|X-Tenant: a b"),
	RSTR(HDRS("X-Empty = \"\"\nX_Odd!~ = a\tb\nX-Colon = a:b=c\n"), 0, R_HEADERS,
	    "X-Empty: |X_Odd!~: a\tb|X-Colon: a:b=c"),

	/* disabled reporters are left out, whatever they lack */
	NUM("[usage.reporters.0]\nenabled = false\n" BK, NREPORTERS, 0),
	NUM("[usage.reporters.0]\nenabled = false\n[usage.reporters.0.webhook]\nurl = https://h\n" BK,
	    NNOTICES, 0),
	NUM("[usage.reporters.0]\nenabled = off\ntype = database\n" BK, NREPORTERS, 0),
	NUM("[usage.reporters.0]\ntype = builtin\nenabled = false\n" BK, NREPORTERS, 0),
	RSTR("[usage.reporters.0]\nenabled = false\n[usage.reporters.1.webhook]\nurl = http://h\n" BK,
	    0, R_NAME, "h:80"),
	/* [usage] enabled = false: reporters are read, nothing is sent */
	NUM("[usage]\nenabled = false\n[usage.reporters.0.webhook]\nurl = http://h\n" BK, NREPORTERS, 1),
	NUM("[usage]\nenabled = false\n[usage.reporters.0.webhook]\nurl = http://h\n" BK, U_ENABLED, 0),
	NUM("[usage.reporters.0.webhook]\nurl = http://h\n[usage]\nenabled = false\n" BK, U_ENABLED, 0),

	/* [usage_hook] (LLMProxy v0.1): one more reporter, in file order */
	RSTR("[usage_hook]\nurl = http://h:81/hook\ntimeout = 1s\n" BK, 0, R_NAME, "usage_hook"),
	RSTR("[usage_hook]\nurl = http://h:81/hook\ntimeout = 1s\n" BK, 0, R_PATH, "/hook"),
	RNUM("[usage_hook]\nurl = http://h:81/hook\ntimeout = 1s\n" BK, 0, R_TIMEOUT, 1000),
	RNUM("[usage_hook]\nurl = http://h:81/hook\ntimeout = 1s\n" BK, 0, R_LINE, 1),
	RNUM("[usage_hook]\nenabled = \"true\"\nurl = http://h\n" BK, 0, R_TIMEOUT, CAP_WEBHOOK_TIMEOUT_MS),
	NUM("[usage_hook]\nenabled = true\nurl = http://h\n" BK, NREPORTERS, 1),
	NUM("[usage_hook]\nenabled = false\nurl = http://h\n" BK, NREPORTERS, 0),
	NUM("[usage_hook]\nenabled = false\n" BK, NREPORTERS, 0),
	NUM("[usage_hook]\n" BK, NREPORTERS, 0),
	NUM("[usage_hook]\ntimeout = 2s\n" BK, NREPORTERS, 0),
	NUM("[usage_hook]\nurl = http://a\n[usage.reporters.0.webhook]\nurl = http://b\n" BK, NREPORTERS, 2),
	RSTR("[usage_hook]\nurl = http://a\n[usage.reporters.0.webhook]\nurl = http://b\n" BK, 0, R_NAME, "usage_hook"),
	RSTR("[usage_hook]\nurl = http://a\n[usage.reporters.0.webhook]\nurl = http://b\n" BK, 1, R_NAME, "b:80"),
	RSTR("[usage.reporters.0.webhook]\nurl = http://b\n[usage_hook]\nurl = http://a\n" BK, 1, R_NAME, "usage_hook"),

	/* [routing] load_balance, [routing.retry], [health_check]: defaults */
	NUM(BK, LB, LB_ROUND_ROBIN),
	NUM(BK, RT_ENABLED, 1),
	NUM(BK, RT_MAX, 2),
	NUM(BK, RT_INIT, CAP_RETRY_INITIAL_WAIT_MS),
	NUM(BK, RT_MAXW, CAP_RETRY_MAX_WAIT_MS),
	NUM(BK, RT_ON, RETRY_ALL),
	NUM(BK, HC_ENABLED, 0),
	NUM(BK, HC_INTERVAL, CAP_HEALTH_INTERVAL_MS),
	NUM(BK, HC_TIMEOUT, CAP_HEALTH_TIMEOUT_MS),
	STR(BK, HC_PATH, "/health"),
	NUM(BK, HC_STATUS, 0),
	NUM(BK, HC_HEALTHY, 2),
	NUM(BK, HC_UNHEALTHY, 3),
	NUM(BK, HC_EJECT, 1),
	NUM(BK, HC_EJECT5XX, 1),
	NUM(BK, HC_COOLDOWN, CAP_EJECT_COOLDOWN_MS),
	BNUM(BK, 0, B_NMODELS, 0),
	BSTR(BK, 0, B_HPATH, ""),
	BNUM(BK, 0, B_MAXCONN, 0),
	/* the sections alone: used, no notice */
	NUM("[routing.retry]\n" BK, RT_ENABLED, 1),
	NUM("[routing.retry]\n" BK, RT_MAX, 2),
	NUM("[routing.retry]\n[health_check]\n" BK, NNOTICES, 0),
	NUM("[health_check]\n" BK, HC_INTERVAL, CAP_HEALTH_INTERVAL_MS),

	/* [health_check] enabled: no section, off; a section without it, on
	 * (LLMProxy v0.1 has no such key: the section turned probes on) */
	NUM("[health_check]\n" BK, HC_ENABLED, 1),
	NUM(HC("interval = 10s\npath = /health"), HC_ENABLED, 1),
	NUM(HC("enabled = true"), HC_ENABLED, 1),
	NUM(HC("enabled = false"), HC_ENABLED, 0),
	NUM(HC("enabled = off\ninterval = 5s"), HC_ENABLED, 0),
	NUM("[health_check]\nenabled = no\n[server]\n[health_check]\ninterval = 5s\n" BK, HC_ENABLED, 0),
	NUM("[health_check.script]\nenabled = true\n" BK, HC_ENABLED, 0),
	NUM("[routing]\n[routing.retry]\n[routing.fallback.0]\nprimary = x\n" BK, HC_ENABLED, 0),

	/* load_balance */
	NUM(RO("load_balance = round_robin"), LB, LB_ROUND_ROBIN),
	NUM(RO("load_balance = weighted"), LB, LB_ROUND_ROBIN),
	NUM(RO("load_balance = least_connections"), LB, LB_LEAST_CONNECTIONS),
	NUM(RO("load_balance = \"least_connections\""), LB, LB_LEAST_CONNECTIONS),
	NUM(RO("load_balance = Least_Connections"), LB, LB_LEAST_CONNECTIONS),
	NUM(RO("load_balance = \"round_robin\""), LB, LB_ROUND_ROBIN),
	NUM(RO("load_balance = weighted"), NNOTICES, 0),
	NUM(RO("enabled = false\nload_balance = least_connections"), LB, LB_LEAST_CONNECTIONS),

	/* [routing.retry] */
	NUM(RT("enabled = false"), RT_ENABLED, 0),
	NUM(RT("enabled = true"), RT_ENABLED, 1),
	NUM(RT("max_retries = 0"), RT_MAX, 0),
	NUM(RT("max_retries = 3"), RT_MAX, 3),
	NUM(RT("max_retries = 8"), RT_MAX, CAP_RETRIES),
	NUM(RT("initial_wait = 0"), RT_INIT, 0),
	NUM(RT("initial_wait = 250ms"), RT_INIT, 250),
	NUM(RT("initial_wait = 1s\nmax_wait = 10s"), RT_INIT, 1000),
	NUM(RT("initial_wait = 1s\nmax_wait = 10s"), RT_MAXW, 10000),
	NUM(RT("max_wait = 10m"), RT_MAXW, 600000),
	NUM(RT("initial_wait = 10m\nmax_wait = 10m"), RT_INIT, 600000),
	NUM(RT("initial_wait = 1s\nmax_wait = 1000ms"), RT_MAXW, 1000),   /* equal */
	NUM(RT("initial_wait = 0\nmax_wait = 0"), RT_MAXW, 0),
	/* a default gives way to what the file sets */
	NUM(RT("initial_wait = 5s"), RT_MAXW, 5000),
	NUM(RT("initial_wait = 5s"), RT_INIT, 5000),
	NUM(RT("initial_wait = 1s"), RT_MAXW, CAP_RETRY_MAX_WAIT_MS),
	NUM(RT("max_wait = 50ms"), RT_INIT, 50),
	NUM(RT("max_wait = 0"), RT_INIT, 0),
	NUM(RT("max_wait = 1s"), RT_INIT, CAP_RETRY_INITIAL_WAIT_MS),
	/* retry_on */
	NUM(RT("retry_on = 5xx"), RT_ON, RETRY_ON_5XX),
	NUM(RT("retry_on = connect_failure"), RT_ON, RETRY_ON_CONNECT),
	NUM(RT("retry_on = timeout"), RT_ON, RETRY_ON_TIMEOUT),
	NUM(RT("retry_on = 429"), RT_ON, RETRY_ON_429),
	NUM(RT("retry_on = 5xx, connect_failure, timeout"), RT_ON, RETRY_ON_5XX | RETRY_ON_CONNECT | RETRY_ON_TIMEOUT),
	NUM(RT("retry_on = 429,5xx"), RT_ON, RETRY_ON_429 | RETRY_ON_5XX),
	NUM(RT("retry_on = 5XX ,  Timeout\t, CONNECT_FAILURE"), RT_ON, RETRY_ON_5XX | RETRY_ON_TIMEOUT | RETRY_ON_CONNECT),
	NUM(RT("retry_on = \"5xx, 429\""), RT_ON, RETRY_ON_5XX | RETRY_ON_429),
	NUM(RT("retry_on = 5xx, 5xx"), RT_ON, RETRY_ON_5XX),
	NUM(RT("retry_on = 429, timeout, connect_failure, 5xx"), RT_ON, RETRY_ALL),
	NUM(RT("enabled = false\nretry_on = 429"), RT_ON, RETRY_ON_429),

	/* [health_check] */
	NUM(HC("interval = 100ms"), HC_INTERVAL, 100),
	NUM(HC("interval = 30s"), HC_INTERVAL, 30000),
	NUM(HC("interval = 1h"), HC_INTERVAL, 3600000),
	NUM(HC("timeout = 1ms"), HC_TIMEOUT, 1),
	NUM(HC("timeout = 2s"), HC_TIMEOUT, 2000),
	NUM(HC("interval = 5s\ntimeout = 5s"), HC_TIMEOUT, 5000),         /* equal */
	NUM(HC("timeout = 1s\ninterval = 1m"), HC_INTERVAL, 60000),
	/* a default gives way to what the file sets */
	NUM(HC("interval = 2s"), HC_TIMEOUT, 2000),
	NUM(HC("interval = 2s"), HC_INTERVAL, 2000),
	NUM(HC("interval = 1m"), HC_TIMEOUT, CAP_HEALTH_TIMEOUT_MS),
	NUM(HC("timeout = 20s"), HC_INTERVAL, 20000),
	NUM(HC("timeout = 20s"), HC_TIMEOUT, 20000),
	NUM(HC("timeout = 1s"), HC_INTERVAL, CAP_HEALTH_INTERVAL_MS),
	STR(HC("path = /api/tags"), HC_PATH, "/api/tags"),
	STR(HC("path = /"), HC_PATH, "/"),
	STR(HC("path = \"/health\""), HC_PATH, "/health"),
	STR(HC("path = /health?full=1&x=%20"), HC_PATH, "/health?full=1&x=%20"),
	STR(HC("path = /v1/models"), HC_PATH, "/v1/models"),
	NUM(HC("method = GET"), NNOTICES, 0),
	NUM(HC("method = \"get\""), HC_ENABLED, 1),
	NUM(HC("expected_status = 200"), HC_STATUS, 200),
	NUM(HC("expected_status = 100"), HC_STATUS, 100),
	NUM(HC("expected_status = 599"), HC_STATUS, 599),
	NUM(HC("expected_status = 204"), HC_STATUS, 204),
	NUM(HC("healthy_threshold = 1"), HC_HEALTHY, 1),
	NUM(HC("healthy_threshold = 100"), HC_HEALTHY, 100),
	NUM(HC("unhealthy_threshold = 1"), HC_UNHEALTHY, 1),
	NUM(HC("unhealthy_threshold = 100"), HC_UNHEALTHY, 100),
	NUM(HC("eject = false"), HC_EJECT, 0),
	NUM(HC("eject = yes"), HC_EJECT, 1),
	NUM(HC("eject_on_5xx = off"), HC_EJECT5XX, 0),
	NUM(HC("eject_on_5xx = on"), HC_EJECT5XX, 1),
	NUM(HC("eject_cooldown = 1ms"), HC_COOLDOWN, 1),
	NUM(HC("eject_cooldown = 30s"), HC_COOLDOWN, 30000),
	NUM(HC("eject_cooldown = 1h"), HC_COOLDOWN, 3600000),
	/* ejection is its own: a file without [health_check] may set it */
	NUM("[health_check]\nenabled = false\neject = false\n" BK, HC_EJECT, 0),

	/* [backends.X] models, health_path, max_connections */
	BNUM(BE("models = llama3"), 0, B_NMODELS, 1),
	BSTR(BE("models = llama3"), 0, B_MODELS, "llama3"),
	BNUM(BE("models = meta-llama/Llama-3.1-8B-Instruct, llama3:8b ,qwen2.5 coder"), 0, B_NMODELS, 3),
	BSTR(BE("models = meta-llama/Llama-3.1-8B-Instruct, llama3:8b ,qwen2.5 coder"), 0, B_MODELS,
	    "meta-llama/Llama-3.1-8B-Instruct|llama3:8b|qwen2.5 coder"),
	BSTR(BE("models = \"a, b\""), 0, B_MODELS, "a|b"),
	BSTR(BE("models = A, a"), 0, B_MODELS, "A|a"),               /* names are case-sensitive */
	BSTR(BE("models = \xe6\xa8\xa1\xe5\x9e\x8b, x@1"), 0, B_MODELS, "\xe6\xa8\xa1\xe5\x9e\x8b|x@1"),
	BNUM("[backends.a]\nurl = http://h\nmodels = m\n[backends.b]\nurl = http://g\n", 1, B_NMODELS, 0),
	BSTR("[backends.a]\nurl = http://h\nmodels = m\n[backends.b]\nurl = http://g\nmodels = m, n\n", 1,
	    B_MODELS, "m|n"),
	BSTR(BE("health_path = /"), 0, B_HPATH, "/"),
	BSTR(BE("health_path = /api/tags"), 0, B_HPATH, "/api/tags"),
	BSTR(BE("health_path = '/health'"), 0, B_HPATH, "/health"),
	STR(BE("health_path = /api/tags"), HC_PATH, "/health"),      /* the default is left alone */
	BNUM(BE("max_connections = 0"), 0, B_MAXCONN, 0),
	BNUM(BE("max_connections = 1"), 0, B_MAXCONN, 1),
	BNUM(BE("max_connections = 100000"), 0, B_MAXCONN, 100000),
};

START_TEST(test_good)
{
	const struct good *g = &goods[_i];
	const struct backend_conf *b = NULL;
	const struct reporter_conf *r = NULL;
	struct config *cfg;
	long long n = 0;
	const char *s = NULL;
	char hdrs[4096] = "";
	size_t i;

	cfg = load_ok(g->ini);
	if (g->f >= B_NAME && g->f < R_NAME) {
		ck_assert_msg((size_t)g->be < cfg->nbackends, "no backend %d", g->be);
		b = &cfg->backends[g->be];
	} else if (g->f >= R_NAME) {
		ck_assert_msg((size_t)g->be < cfg->nreporters, "no reporter %d\n--- input:\n%s", g->be, g->ini);
		r = &cfg->reporters[g->be];
	}
	switch (g->f) {
	case LISTEN_HOST: s = cfg->listen_host; break;
	case LISTEN_PORT: s = cfg->listen_port; break;
	case THREADS: n = cfg->threads; break;
	case READ_TO: n = cfg->read_timeout_ms; break;
	case WRITE_TO: n = cfg->write_timeout_ms; break;
	case IDLE_TO: n = cfg->idle_timeout_ms; break;
	case SHUTDOWN_TO: n = cfg->shutdown_timeout_ms; break;
	case HEAD_BYTES: n = (long long)cfg->max_header_bytes; break;
	case BODY_BYTES: n = (long long)cfg->max_body_size; break;
	case CONNECT_TO: n = cfg->connect_timeout_ms; break;
	case FIRST_TOKEN_TO: n = cfg->first_token_timeout_ms; break;
	case STREAM_IDLE_TO: n = cfg->stream_idle_timeout_ms; break;
	case REQUEST_TO: n = cfg->request_timeout_ms; break;
	case LOG_LEVEL: n = cfg->log_level; break;
	case LOG_JSON: n = cfg->log_json; break;
	case ACCESS_FILE: s = cfg->access_file; break;
	case M_ENABLED: n = cfg->metrics_enabled; break;
	case M_PATH: s = cfg->metrics_path; break;
	case M_HOST: s = cfg->metrics_listen_host; break;
	case M_PORT: s = cfg->metrics_listen_port; break;
	case M_COMPAT: n = cfg->metrics_compat; break;
	case NBACKENDS: n = (long long)cfg->nbackends; break;
	case NNOTICES: n = (long long)cfg->nnotices; break;
	case B_NAME: s = b->name; break;
	case B_URL: s = b->url; break;
	case B_HOST: s = b->host; break;
	case B_PORT: s = b->port; break;
	case B_PREFIX: s = b->path_prefix; break;
	case B_WEIGHT: n = b->weight; break;
	case B_LINE: n = b->line; break;
	case B_CONT: n = b->continuous_usage; break;
	case U_ENABLED: n = cfg->usage_enabled; break;
	case U_INJECT: n = cfg->usage_inject; break;
	case U_MAX_WAIT: n = cfg->usage_max_wait_ms; break;
	case U_BATCH: n = cfg->usage_batch; break;
	case U_QUEUE: n = (long long)cfg->usage_queue_max; break;
	case U_SPOOL: s = cfg->usage_spool; break;
	case U_SPOOL_MAX: n = (long long)cfg->usage_spool_max_bytes; break;
	case U_FSYNC: n = cfg->usage_spool_fsync; break;
	case NREPORTERS: n = (long long)cfg->nreporters; break;
	case LB: n = cfg->load_balance; break;
	case RT_ENABLED: n = cfg->retry_enabled; break;
	case RT_MAX: n = cfg->retry_max; break;
	case RT_INIT: n = cfg->retry_initial_wait_ms; break;
	case RT_MAXW: n = cfg->retry_max_wait_ms; break;
	case RT_ON: n = cfg->retry_on; break;
	case HC_ENABLED: n = cfg->hc_enabled; break;
	case HC_INTERVAL: n = cfg->hc_interval_ms; break;
	case HC_TIMEOUT: n = cfg->hc_timeout_ms; break;
	case HC_PATH: s = cfg->hc_path; break;
	case HC_STATUS: n = cfg->hc_expected_status; break;
	case HC_HEALTHY: n = cfg->hc_healthy_threshold; break;
	case HC_UNHEALTHY: n = cfg->hc_unhealthy_threshold; break;
	case HC_EJECT: n = cfg->hc_eject; break;
	case HC_EJECT5XX: n = cfg->hc_eject_on_5xx; break;
	case HC_COOLDOWN: n = cfg->hc_eject_cooldown_ms; break;
	case B_NMODELS: n = (long long)b->nmodels; break;
	case B_MODELS:
		for (i = 0; i < b->nmodels; i++)
			snprintf(hdrs + strlen(hdrs), sizeof hdrs - strlen(hdrs), "%s%s", i ? "|" : "",
			    b->models[i]);
		s = hdrs;
		break;
	case B_HPATH: s = b->health_path; break;
	case B_MAXCONN: n = b->max_connections; break;
	case R_NAME: s = r->name; break;
	case R_URL: s = r->url; break;
	case R_HOST: s = r->host; break;
	case R_PORT: s = r->port; break;
	case R_PATH: s = r->path; break;
	case R_HTTPS: n = r->https; break;
	case R_TIMEOUT: n = r->timeout_ms; break;
	case R_LINE: n = r->line; break;
	case R_NHEADERS: n = (long long)r->nheaders; break;
	case R_HEADERS:
		for (i = 0; i < r->nheaders; i++)
			snprintf(hdrs + strlen(hdrs), sizeof hdrs - strlen(hdrs), "%s%s: %s", i ? "|" : "",
			    r->headers[i].name, r->headers[i].value);
		s = hdrs;
		break;
	}
	if (g->str != NULL)
		ck_assert_msg(s != NULL && strcmp(s, g->str) == 0, "field %d: '%s', want '%s'\n--- input:\n%s",
		    (int)g->f, s ? s : "(null)", g->str, g->ini);
	else
		ck_assert_msg(n == g->num, "field %d: %lld, want %lld\n--- input:\n%s", (int)g->f, n,
		    g->num, g->ini);
	config_free(cfg);
}
END_TEST

/* [routing.retry] multiplier: the same double a C literal gives. */
static const struct { const char *ini; double want; } multipliers[] = {
	{ BK, 2.0 },
	{ RT("multiplier = 2"), 2.0 },
	{ RT("multiplier = 2.0"), 2.0 },
	{ RT("multiplier = 1"), 1.0 },
	{ RT("multiplier = 1.0"), 1.0 },
	{ RT("multiplier = 1.5"), 1.5 },
	{ RT("multiplier = 1.1"), 1.1 },
	{ RT("multiplier = 3.14159"), 3.14159 },
	{ RT("multiplier = 007.50"), 7.5 },
	{ RT("multiplier = 10"), 10.0 },
	{ RT("multiplier = 10.000000000000000000000"), 10.0 },
	{ RT("multiplier = 9.99999999999999"), 9.99999999999999 },
	{ RT("multiplier = 1.23456789012345678"), 1.23456789012345 },  /* 14 digits count */
	{ RT("multiplier = \"1.5\""), 1.5 },
};

START_TEST(test_multiplier)
{
	struct config *cfg = load_ok(multipliers[_i].ini);

	ck_assert_msg(cfg->retry_multiplier == multipliers[_i].want, "%.17g, want %.17g\n--- input:\n%s",
	    cfg->retry_multiplier, multipliers[_i].want, multipliers[_i].ini);
	config_free(cfg);
}
END_TEST

/* ---- errors: the whole message, line included --------------------------------- */

#define LISTEN_IS "listen is :PORT or HOST:PORT (e.g. :8080, 127.0.0.1:8080, [::1]:8080)"
#define A_URL(u) "[backends.a]\nurl = " u "\n"
#define URL_ERR(u, why) { A_URL(u), "t.ini:2: [backends.a] url = " u ": " why }
#define W_URL_ERR(u, why) { W_URL(u), "t.ini:4: [usage.reporters.0.webhook] url = " u ": " why }
#define W_SYNTAX "a webhook url is http://HOST[:PORT][/PATH][?QUERY]"
/* A webhook url with a query (a token, often) is never echoed. */
#define W_URL_SECRET(u, why) { W_URL(u), "t.ini:4: [usage.reporters.0.webhook] url: " why \
	" (the value is a secret and is not shown)" }
#define U_ERR(kv, why) { "[usage]\n" kv "\n" BK, "t.ini:2: [usage] " kv ": " why }
#define H_ERR(k, v, why) { HDRS(k " = " v "\n"), "t.ini:6: [usage.reporters.x.webhook.headers] " k ": " \
	why " (the value is a secret and is not shown)" }
#define NOT_AVAILABLE(t) "usage reporter type '" t "' is not available in llmproxy; records would be lost"
#define RO_ERR(kv, why) { RO(kv), "t.ini:2: [routing] " kv ": " why }
#define RT_ERR(kv, why) { RT(kv), "t.ini:2: [routing.retry] " kv ": " why }
#define HC_ERR(kv, why) { HC(kv), "t.ini:2: [health_check] " kv ": " why }
#define BE_ERR(kv, why) { BE(kv), "t.ini:3: [backends.a] " kv ": " why }
#define RETRY_ON_IS "retry_on lists some of 5xx, connect_failure, timeout, 429"
#define LG_ERR(kv, why) { LG(kv), "t.ini:2: [log] " kv ": " why }
#define ME_ERR(kv, why) { ME(kv), "t.ini:2: [metrics] " kv ": " why }
#define OUTPUT_IS "must be stderr, stdout or file (with [log.file] path); for a file of access lines, set access_file"
#define METRICS_PATH_CHARS "bad character (a path is visible ASCII, no spaces, '?', '#' or '\\')"
#define METRICS_THERE "leave listen out to serve the metrics there, or choose another address"

static const struct { const char *ini; const char *err; } errors[] = {
	/* unknown names: a typo never passes */
	{ "[server]\ntreads = 4\n" BK, "t.ini:2: unknown key 'treads' in [server]" },
	{ "lsiten = :80\n" BK, "t.ini:1: unknown key 'lsiten' before any [section]" },
	{ BK "[sever]\nlisten = :1\n", "t.ini:3: unknown section [sever]" },
	{ BK "[sever]\n", "t.ini:3: unknown section [sever]" },          /* even empty */
	{ BK "[Server]\n", "t.ini:3: unknown section [Server]" },
	{ BK "[server.foo]\n", "t.ini:3: unknown section [server.foo]" },
	{ BK "[backends]\n", "t.ini:3: unknown section [backends]" },
	{ BK "[backends.a.foo]\n", "t.ini:3: unknown section [backends.a.foo]" },
	{ "[backends.x_y-z.1]\nurl = http://a\n", "t.ini:1: unknown section [backends.x_y-z.1]" },
	{ BK "[log]\nlevel = info\nfromat = json\n", "t.ini:5: unknown key 'fromat' in [log]" },
	{ BK "[routing]\nretry = 3\n", "t.ini:4: unknown key 'retry' in [routing]" },
	{ "[backends.a]\nurll = http://h\n", "t.ini:2: unknown key 'urll' in [backends.a]" },
	{ "[server]\nthreads 4\n" BK,
	  "t.ini:2: malformed line: expected [section], key = value or a comment" },
	{ BK "[server\n", "t.ini:3: malformed line: expected [section], key = value or a comment" },
	{ BK "[]\n", "t.ini:3: empty section name" },
	{ BK "[a..b]\n", "t.ini:3: malformed section name [a..b]" },
	{ BK "[.server]\n", "t.ini:3: malformed section name [.server]" },
	{ BK "[server.]\n", "t.ini:3: malformed section name [server.]" },
	{ BK "[ser ver]\n", "t.ini:3: malformed section name [ser ver]" },
	{ BK "[server] threads = 4\n", "t.ini:3: text after ']'" },

	/* duplicates: both lines */
	{ "[server]\nlisten = :1\nthreads = 2\nlisten = :2\n" BK,
	  "t.ini:4: duplicate key 'listen' in [server] (first on line 2)" },
	{ "[server]\nthreads = 2\n" BK "[server]\nthreads = 3\n",
	  "t.ini:6: duplicate key 'threads' in [server] (first on line 2)" },
	{ "listen = :1\nlisten = :2\n" BK,
	  "t.ini:2: duplicate key 'listen' at top level (first on line 1)" },
	{ BK "[storage.databases.0]\nhost = a\nhost = b\n",
	  "t.ini:5: duplicate key 'host' in [storage.databases.0] (first on line 4)" },
	{ "[backends.a]\nurl = http://h\nurl = http://h\n",
	  "t.ini:3: duplicate key 'url' in [backends.a] (first on line 2)" },

	/* durations */
	{ "[server]\nread_timeout = 30x\n" BK,
	  "t.ini:2: [server] read_timeout = 30x: not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)" },
	{ "[server]\nread_timeout = \n" BK,
	  "t.ini:2: [server] read_timeout = : not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)" },
	{ "[routing]\nconnect_timeout = 30\n" BK,
	  "t.ini:2: [routing] connect_timeout = 30: a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)" },
	{ "[routing]\ntimeout = 60\n" BK,
	  "t.ini:2: [routing] timeout = 60: a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)" },
	{ "[server]\nidle_timeout = 0\n" BK, "t.ini:2: [server] idle_timeout = 0: must be more than 0" },
	{ "[server]\nwrite_timeout = 0s\n" BK, "t.ini:2: [server] write_timeout = 0s: must be more than 0" },
	{ "[routing]\nfirst_token_timeout = 597h\n" BK,
	  "t.ini:2: [routing] first_token_timeout = 597h: too long (at most 596h)" },
	{ "[routing]\nidle_timeout = -1s\n" BK,
	  "t.ini:2: [routing] idle_timeout = -1s: not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)" },

	/* sizes */
	{ "[server]\nmax_body_size = 10XB\n" BK,
	  "t.ini:2: [server] max_body_size = 10XB: not a size (e.g. 10485760, 16k, 16KiB, 10MB)" },
	{ "[server]\nmax_body_size = 1.5m\n" BK,
	  "t.ini:2: [server] max_body_size = 1.5m: not a size (e.g. 10485760, 16k, 16KiB, 10MB)" },
	{ "[server]\nmax_body_size = 18446744073709551616\n" BK,
	  "t.ini:2: [server] max_body_size = 18446744073709551616: too large" },
	{ "[server]\nmax_body_size = 17179869184g\n" BK,
	  "t.ini:2: [server] max_body_size = 17179869184g: too large" },
	{ "[server]\nmax_body_size = 2g\n" BK,
	  "t.ini:2: [server] max_body_size = 2g: must be 1 byte to 1GiB" },
	{ "[server]\nmax_body_size = 0\n" BK,
	  "t.ini:2: [server] max_body_size = 0: must be 1 byte to 1GiB" },
	{ "[server]\nmax_header_bytes = 512\n" BK,
	  "t.ini:2: [server] max_header_bytes = 512: must be 1KiB to 1MiB" },
	{ "[server]\nmax_header_bytes = 1025k\n" BK,
	  "t.ini:2: [server] max_header_bytes = 1025k: must be 1KiB to 1MiB" },

	/* booleans */
	{ "[auth]\nenabled = maybe\n" BK,
	  "t.ini:2: [auth] enabled = maybe: not a boolean (true/false, yes/no, on/off, 1/0)" },
	{ "[server.tls]\nenabled = 2\n" BK,
	  "t.ini:2: [server.tls] enabled = 2: not a boolean (true/false, yes/no, on/off, 1/0)" },

	/* integers */
	{ "[server]\nthreads = 4x\n" BK, "t.ini:2: [server] threads = 4x: not an integer" },
	{ "[server]\nthreads = \n" BK, "t.ini:2: [server] threads = : not an integer" },
	{ "[server]\nthreads = +4\n" BK, "t.ini:2: [server] threads = +4: not an integer" },
	{ "[server]\nthreads = 0x10\n" BK, "t.ini:2: [server] threads = 0x10: not an integer" },
	{ "[server]\nthreads = 4 4\n" BK, "t.ini:2: [server] threads = 4 4: not an integer" },
	{ "[server]\nthreads = 0\n" BK, "t.ini:2: [server] threads = 0: must be 1..4096" },
	{ "[server]\nthreads = -1\n" BK, "t.ini:2: [server] threads = -1: must be 1..4096" },
	{ "[server]\nthreads = 4097\n" BK, "t.ini:2: [server] threads = 4097: must be 1..4096" },
	{ "[server]\nthreads = 99999999999999999999\n" BK,
	  "t.ini:2: [server] threads = 99999999999999999999: must be 1..4096" },
	{ "[backends.a]\nurl = http://h\nweight = 0\n", "t.ini:3: [backends.a] weight = 0: must be 1..1000" },
	{ "[backends.a]\nurl = http://h\nweight = 1001\n",
	  "t.ini:3: [backends.a] weight = 1001: must be 1..1000" },

	/* quotes */
	{ "[server]\nlisten = \":8080\n" BK, "t.ini:2: [server] listen = \":8080: unbalanced quotes" },
	{ "[server]\nlisten = ':8080\"\n" BK, "t.ini:2: [server] listen = ':8080\": unbalanced quotes" },
	{ "[server]\nlisten = \"\n" BK, "t.ini:2: [server] listen = \": unbalanced quotes" },

	/* listen */
	{ "[server]\nlisten = 8080\n" BK, "t.ini:2: [server] listen = 8080: no port; " LISTEN_IS },
	{ "listen = 8080\n" BK, "t.ini:1: top-level listen = 8080: no port; " LISTEN_IS },
	{ "[server]\nlisten = [::1]\n" BK, "t.ini:2: [server] listen = [::1]: no port; " LISTEN_IS },
	{ "[server]\nlisten = ::1:8080\n" BK,
	  "t.ini:2: [server] listen = ::1:8080: an IPv6 address goes in brackets, e.g. [::1]:8080; " LISTEN_IS },
	{ "[server]\nlisten = :\n" BK, "t.ini:2: [server] listen = :: bad port; " LISTEN_IS },
	{ "[server]\nlisten = :65536\n" BK, "t.ini:2: [server] listen = :65536: bad port; " LISTEN_IS },
	{ "[server]\nlisten = :80a\n" BK, "t.ini:2: [server] listen = :80a: bad port; " LISTEN_IS },
	{ "[server]\nlisten = [zz]:80\n" BK, "t.ini:2: [server] listen = [zz]:80: bad IPv6 address; " LISTEN_IS },
	{ "[server]\nlisten = [::1:80\n" BK,
	  "t.ini:2: [server] listen = [::1:80: missing ']' after an IPv6 address; " LISTEN_IS },
	{ "[server]\nlisten = *:80\n" BK, "t.ini:2: [server] listen = *:80: bad host name; " LISTEN_IS },
	{ "[server]\nlisten = 1.2.3.256:80\n" BK,
	  "t.ini:2: [server] listen = 1.2.3.256:80: bad host name; " LISTEN_IS },

	/* backend urls */
	URL_ERR("ftp://h", "a backend url is http://HOST[:PORT][/PATH]"),
	URL_ERR("localhost:8000", "a backend url is http://HOST[:PORT][/PATH]"),
	URL_ERR("http:/h", "a backend url is http://HOST[:PORT][/PATH]"),
	URL_ERR("http://", "no host"),
	URL_ERR("http://:80", "no host"),
	URL_ERR("http:///v1", "no host"),
	/* a password is a secret: not shown */
	{ A_URL("http://u:p@h"), "t.ini:2: [backends.a] url: user:password@ is not allowed in a "
	  "backend url (the value is a secret and is not shown)" },
	{ A_URL("http://u@h:80/v1"), "t.ini:2: [backends.a] url: user:password@ is not allowed in a "
	  "backend url (the value is a secret and is not shown)" },
	URL_ERR("http://h/v1?x=1", "a query (?...) is not allowed in a backend url"),
	URL_ERR("http://h?x", "a query (?...) is not allowed in a backend url"),
	URL_ERR("http://h/#f", "a fragment (#...) is not allowed in a backend url"),
	URL_ERR("http://h:0", "bad port"),
	URL_ERR("http://h:65536", "bad port"),
	URL_ERR("http://h:", "bad port"),
	URL_ERR("http://h:80x", "bad port"),
	URL_ERR("http://h:123456", "bad port"),
	URL_ERR("http://h:-1", "bad port"),
	URL_ERR("http://[::1", "missing ']' after an IPv6 address"),
	URL_ERR("http://[zz]:80", "bad IPv6 address"),
	URL_ERR("http://[]:80", "bad IPv6 address"),
	URL_ERR("http://[fe80::1%eth0]:80", "bad IPv6 address"),
	URL_ERR("http://::1:80", "an IPv6 address goes in brackets, e.g. [::1]:8080"),
	URL_ERR("http://[::1]x", "text after ']'"),
	URL_ERR("http://999.1.1.1", "bad host name"),
	URL_ERR("http://bad!host", "bad host name"),
	URL_ERR("http://h/a b", "bad character in the path"),
	URL_ERR("http://h/a%zz", "bad character in the path"),
	URL_ERR("http://h/a%4", "bad character in the path"),
	URL_ERR("http://h/a\"b", "bad character in the path"),
	URL_ERR("http://h/\xc3\xa9", "bad character in the path"),

	/* backend names */
	{ "[backends.a]\nname = bad name\nurl = http://h\n",
	  "t.ini:2: [backends.a] name = bad name: a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[backends.a]\nname = a:b\nurl = http://h\n",
	  "t.ini:2: [backends.a] name = a:b: a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[backends.a]\nname = \"\"\nurl = http://h\n",
	  "t.ini:2: [backends.a] name = : a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[backends.a]\nname = a123456789b123456789c123456789d123456789e123456789f123456789g123\nurl = http://h\n",
	  "t.ini:2: [backends.a] name = a123456789b123456789c123456789d123456789e123456789f123456789g123: "
	  "a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[backends.a]\nname = x\nurl = http://h1\n[backends.b]\nname = x\nurl = http://h2\n",
	  "t.ini:5: backend name 'x' is used twice (first by [backends.a], line 2)" },
	{ "[backends.0]\nurl = http://h:80\n[backends.1]\nurl = http://h/v1\n",
	  "t.ini:3: backend name 'h:80' is used twice (first by [backends.0], line 1)" },
	{ "[backends.a]\nurl = http://h:81\n[backends.b]\nname = h:81\nurl = http://h/v1\n",
	  "t.ini:4: [backends.b] name = h:81: a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[backends.0]\nurl = http://a123456789b123456789c123456789d123456789e123456789f123456789g12:80\n",
	  "t.ini:1: [backends.0] needs a name: HOST:PORT of its url is longer than 63 characters" },

	/* backends missing */
	{ "[server]\nlisten = :1\n", "t.ini: no backend configured ([backends.NAME] with url = ...)" },
	{ "", "t.ini: no backend configured ([backends.NAME] with url = ...)" },
	{ "[backends.a.headers]\nX-A = 1\n", "t.ini: no backend configured ([backends.NAME] with url = ...)" },
	{ BK "[backends.b]\nweight = 2\n", "t.ini:3: [backends.b] has no url" },
	{ BK "\n[backends.b]\n\n[log]\n", "t.ini:4: [backends.b] has no url" },

	/* security switches: refused, not ignored */
	{ BK "[auth]\nenabled = true\n",
	  "t.ini:4: [auth] enabled = true: " NO_KEYS },
	{ BK "[auth]\nmode = all\nenabled = \"yes\"\n",
	  "t.ini:5: [auth] enabled = yes: " NO_KEYS },
	/* The provider that cannot be is named; a disabled one is not. */
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = builtin\nenabled = false\n"
	  "[auth.pipeline.1]\nname = r\ntype = redis\n",
	  "t.ini:10: [auth.pipeline.1] type = redis: LLMProxy's redis auth provider is not "
	  "available in llmproxy; refusing to run without the authentication asked for" },
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n",
	  "t.ini:4: [auth] enabled = true: " NO_KEYS },
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\nenabled = false\n"
	  "[auth.pipeline.0.static.keys.0]\nkey = k\nname = n\n",
	  "t.ini:4: [auth] enabled = true: " NO_KEYS },
	/* API keys: what a key in use must have, and must not ask for */
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\nenabled = true\n",
	  "t.ini:5: [auth.pipeline.0] has no type (static is the provider llmproxy has)" },
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0.static.keys.0]\nname = n\n",
	  "t.ini:5: [auth.pipeline.0] has no type (static is the provider llmproxy has)" },
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n[auth.pipeline.0.static.keys.0]\nname = n\n",
	  "t.ini:7: [auth.pipeline.0.static.keys.0] has no key" },
	{ BK "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n[auth.pipeline.0.static.keys.0]\nkey = k\n",
	  "t.ini:7: [auth.pipeline.0.static.keys.0] has no name (the name labels the key's metrics, "
	  "log lines and usage records; the key itself never appears there)" },
	{ AK("key = k1\nname = a\n", "key = k2\nname = a\n"),
	  "t.ini:10: key name 'a' is used twice (first by [auth.pipeline.0.static.keys.0], line 7); "
	  "names label metrics, logs and usage records" },
	{ AK("key = same\nname = a\n", "key = same\nname = b\n"),
	  "t.ini:10: the same API key as [auth.pipeline.0.static.keys.0], line 7; each key must be "
	  "different" },
	{ AK("key = k1\nname = a\ntotal_quota = 1000\n", "key = k2\nname = b\n"),
	  "t.ini:10: [auth.pipeline.0.static.keys.0] total_quota: llmproxy has no per-key quotas; "
	  "refusing to serve the key without the limit asked for ([rate_limit.per_key] has "
	  "llmproxy's limits)" },
	{ AK("key = k1\nname = a\n", "key = k2\nname = b\nallowed_ips = 10.0.0.1\n"),
	  "t.ini:13: [auth.pipeline.0.static.keys.1] allowed_ips: llmproxy has no per-key IP lists; "
	  "refusing to serve the key without the limit asked for ([rate_limit.per_key] has "
	  "llmproxy's limits)" },
	/* a secret is never echoed */
	{ AK("key = k 1\nname = a\n", "key = k2\nname = b\n"),
	  "t.ini:8: [auth.pipeline.0.static.keys.0] key: a key is visible ASCII without spaces "
	  "(the value is a secret and is not shown)" },
	{ AK("key = \"\"\nname = a\n", "key = k2\nname = b\n"),
	  "t.ini:8: [auth.pipeline.0.static.keys.0] key: empty (the value is a secret and is not shown)" },
	{ AK("key = \"sk-client-1\nname = a\n", "key = k2\nname = b\n"),
	  "t.ini:8: [auth.pipeline.0.static.keys.0] key: unbalanced quotes (the value is a secret "
	  "and is not shown)" },
	{ AK("key = k1\nname = a\n", "key = 'sk-client-2\nname = b\n"),
	  "t.ini:11: [auth.pipeline.0.static.keys.1] key: unbalanced quotes (the value is a secret "
	  "and is not shown)" },
	{ "[backends.a]\nurl = http://127.0.0.1:9000\napi_key = \"sk-backend-1\n",
	  "t.ini:3: [backends.a] api_key: unbalanced quotes (the value is a secret and is not shown)" },
	{ "[backends.a]\nurl = http://127.0.0.1:9000\napi_key = sk secret\n",
	  "t.ini:3: [backends.a] api_key: a key is visible ASCII without spaces (the value is a "
	  "secret and is not shown)" },
	{ AK("key = k1\nname = a\nstatus = paused\n", "key = k2\nname = b\n"),
	  "t.ini:10: [auth.pipeline.0.static.keys.0] status = paused: must be enabled or disabled" },
	{ AK("key = k1\nname = a\nexpires_at = 2026-02-30\n", "key = k2\nname = b\n"),
	  "t.ini:10: [auth.pipeline.0.static.keys.0] expires_at = 2026-02-30: not a time; use RFC 3339 "
	  "(2026-12-31T23:59:59Z, 2026-12-31T23:59:59+08:00) or a date (2026-12-31), or null" },
	{ AK("key = k1\nname = \"\"\n", "key = k2\nname = b\n"),
	  "t.ini:9: [auth.pipeline.0.static.keys.0] name = : empty; a key's name labels its metrics, "
	  "log lines and usage records" },
	{ AK("key = k1\nname = a\x01\n", "key = k2\nname = b\n"),
	  "t.ini:9: [auth.pipeline.0.static.keys.0] name = a\x01: control character" },
	{ BK "[auth]\nenabled = true\nmode = all\n[auth.pipeline.0]\ntype = static\n"
	  "[auth.pipeline.0.static.keys.0]\nkey = a\nname = a\n[auth.pipeline.1]\ntype = static\n"
	  "[auth.pipeline.1.static.keys.0]\nkey = b\nname = b\n",
	  "t.ini:5: [auth] mode = all: llmproxy accepts a key that any enabled provider lists "
	  "(first_match); with 2 static providers, all cannot be honoured" },
	{ BK "[auth]\nmode = any\n", "t.ini:4: [auth] mode = any: must be first_match or all" },
	{ BK "[auth]\nheader_names = X Key\n",
	  "t.ini:4: [auth] header_names = X Key: a header name is A-Z a-z 0-9 and !#$%&'*+-.^_`|~" },
	{ BK "[auth]\nheader_names = ,\n", "t.ini:4: [auth] header_names = ,: an empty header name" },
	{ BK "[auth]\nskip_paths = health\n", "t.ini:4: [auth] skip_paths = health: a path starts with '/'" },
	{ BK "[auth]\nskip_paths = /a*b\n",
	  "t.ini:4: [auth] skip_paths = /a*b: bad character in a path (visible ASCII, no '?' or '#'; "
	  "'*' only at the end)" },
	{ BK "[auth.pipeline.0.static]\nkeys_file = /nonexistent/keys\n[auth]\nenabled = true\n"
	  "[auth.pipeline.0]\ntype = static\n",
	  "t.ini:4: [auth.pipeline.0.static] keys_file = /nonexistent/keys: No such file or directory" },
	{ BK "[auth.pipeline.0.bogus]\nx = 1\n", "t.ini:3: unknown section [auth.pipeline.0.bogus]" },
	/* limits */
	{ BK "[rate_limit.global]\nrequests_per_second = fast\n",
	  "t.ini:4: [rate_limit.global] requests_per_second = fast: not a number (e.g. 10, 0.5)" },
	{ BK "[rate_limit.global]\nrequests_per_second = -1\n",
	  "t.ini:4: [rate_limit.global] requests_per_second = -1: not a number (e.g. 10, 0.5)" },
	{ BK "[rate_limit.global]\nrequests_per_second = 1.\n",
	  "t.ini:4: [rate_limit.global] requests_per_second = 1.: not a number (e.g. 10, 0.5)" },
	{ BK "[rate_limit.per_key]\nburst_size = 0\n",
	  "t.ini:4: [rate_limit.per_key] burst_size = 0: must be 1..1000000" },
	{ BK "[rate_limit.per_key]\nmax_concurrent = -1\n",
	  "t.ini:4: [rate_limit.per_key] max_concurrent = -1: must be 0..100000" },
	{ BK "[rate_limit]\nenabled = true\n[rate_limit.per_key]\ntokens_per_minute = 0.5\n",
	  "t.ini:6: [rate_limit.per_key] tokens_per_minute = 0.5: must be 0 (no limit) or at least 1" },
	{ BK "[rate_limit]\nenabled = true\n[rate_limit.global]\nrequests_per_minute = 0.9\n",
	  "t.ini:6: [rate_limit.global] requests_per_minute = 0.9: must be 0 (no limit) or at least 1" },
	{ BK "[rate_limit]\nstorage = disk\n",
	  "t.ini:4: [rate_limit] storage = disk: must be memory (or LLMProxy's redis, taken as memory)" },
	{ BK "[rate_limit.per_key]\nrequests_per_hour = 1\n",
	  "t.ini:4: unknown key 'requests_per_hour' in [rate_limit.per_key]" },
	/* TLS: the listener needs both files; client certificates are not
	 * asked for; a PEM path is never empty.  (The files themselves are
	 * read at start: tlsconf.c, e2e_tls.) */
	{ "[server.tls]\nenabled = on\n" BK,
	  "t.ini:2: [server.tls] enabled = true needs cert_file (the certificate chain, PEM)" },
	{ "[server.tls]\ncert_file = a\nenabled = 1\n" BK,
	  "t.ini:3: [server.tls] enabled = true needs key_file (the private key, PEM)" },
	{ "[server.tls]\nclient_auth = require\n" BK,
	  "t.ini:2: [server.tls] client_auth = require: llmproxy does not verify client "
	  "certificates; refusing to serve without the client authentication asked for" },
	{ "[server.tls]\nclient_auth = maybe\n" BK,
	  "t.ini:2: [server.tls] client_auth = maybe: none, request or require expected" },
	{ "[tls]\nca_file =\n" BK, "t.ini:2: [tls] ca_file = : the path of a PEM file is expected" },
	{ "[backends.a]\nurl = https://h\ntls_verify = maybe\n",
	  "t.ini:3: [backends.a] tls_verify = maybe: not a boolean (true/false, yes/no, on/off, 1/0)" },
	{ "[tls]\nfoo = 1\n" BK, "t.ini:2: unknown key 'foo' in [tls]" },

	/* log */
	{ "[log]\nlevel = verbose\n" BK, "t.ini:2: [log] level = verbose: must be debug, info, warn or error" },
	{ "[log]\nlevel = warning\n" BK, "t.ini:2: [log] level = warning: must be debug, info, warn or error" },
	LG_ERR("format = yaml", "must be text or json"),
	LG_ERR("format = ", "must be text or json"),
	LG_ERR("format = combined", "must be text or json"),        /* [logging.access]'s, not ours */
	LG_ERR("output = syslog", OUTPUT_IS),
	LG_ERR("output = ./logs/llmproxy.log", OUTPUT_IS),          /* config.yaml.example's "file path" */
	LG_ERR("output = ", OUTPUT_IS),
	LG_ERR("access_file = /nonexistent-llmproxy-check/access.log",
	    "directory /nonexistent-llmproxy-check does not exist"),
	LG_ERR("access_file = nonexistent-llmproxy-check/access.log",
	    "directory nonexistent-llmproxy-check does not exist"),
	LG_ERR("access_file = /etc/passwd/access.log", "/etc/passwd is not a directory"),
	LG_ERR("access_file = /tmp", "a directory; access_file is the path of a file"),
	LG_ERR("access_file = /tmp/", "a directory; access_file is the path of a file"),
	LG_ERR("access_file = /", "a directory; access_file is the path of a file"),
	{ LG("output = file"), "t.ini:2: [log] output = file: needs [log.file] path (the file access lines "
	  "go to), or [log] access_file instead" },
	{ LG("output = file") "[log.file]\nrotate = daily\n", "t.ini:2: [log] output = file: needs [log.file] "
	  "path (the file access lines go to), or [log] access_file instead" },
	{ "[log]\noutput = file\naccess_file = /tmp/a.log\n[log.file]\npath = /tmp/b.log\n" BK,
	  "t.ini:5: [log] access_file = /tmp/a.log (line 3) and [log] output = file with [log.file] path = "
	  "/tmp/b.log (line 5) both say where access lines go; keep one" },
	{ "[log.file]\npath = /tmp/b.log\n[log]\noutput = file\naccess_file = \"\"\n" BK,
	  "t.ini:5: [log] access_file =  (line 5) and [log] output = file with [log.file] path = "
	  "/tmp/b.log (line 2) both say where access lines go; keep one" },
	{ "[log]\noutput = file\n[log.file]\npath = /nonexistent-llmproxy-check/llmproxy.log\n" BK,
	  "t.ini:4: [log.file] path = /nonexistent-llmproxy-check/llmproxy.log: directory "
	  "/nonexistent-llmproxy-check does not exist" },
	/* LLMProxy's reference file: ./logs does not exist here */
	{ "[log]\noutput = file\n[log.file]\npath = \"./logs/llmproxy.log\"\nrotate = daily\n" BK,
	  "t.ini:4: [log.file] path = ./logs/llmproxy.log: directory ./logs does not exist" },
	{ "[log]\noutput = file\n[log.file]\npath = /tmp/\n" BK,
	  "t.ini:4: [log.file] path = /tmp/: a directory; path is the path of a file" },
	{ "[log]\noutput = file\n[log.file]\npath = \n" BK,
	  "t.ini:4: [log.file] path = : empty; [log] output = file needs the path of a file" },
	{ "[log.file]\nrotation = daily\n" BK, "t.ini:2: unknown key 'rotation' in [log.file]" },
	{ "[log]\nfile = x\n" BK, "t.ini:2: unknown key 'file' in [log]" },
	{ BK "[log.file.x]\n", "t.ini:3: unknown section [log.file.x]" },
	{ BK "[log.access]\n", "t.ini:3: unknown section [log.access]" },

	/* [metrics] */
	ME_ERR("enabled = maybe", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	ME_ERR("llmproxy_compat = 2", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	ME_ERR("path = metrics", "must start with '/'"),
	ME_ERR("path = ", "must start with '/'"),
	ME_ERR("path = http://h/metrics", "must start with '/'"),
	ME_ERR("path = /me trics", METRICS_PATH_CHARS),
	ME_ERR("path = /metrics?x=1", METRICS_PATH_CHARS),
	ME_ERR("path = /metrics#x", METRICS_PATH_CHARS),
	ME_ERR("path = /a\\b", METRICS_PATH_CHARS),
	ME_ERR("path = /a\tb", METRICS_PATH_CHARS),
	ME_ERR("path = /a\x7f", METRICS_PATH_CHARS),
	ME_ERR("path = /\xc3\xa9", METRICS_PATH_CHARS),
	ME_ERR("path = /v1/metrics", "paths under /v1/ go to the backends"),
	ME_ERR("path = /v1/", "paths under /v1/ go to the backends"),
	ME_ERR("path = /health", "/health is llmproxy's health endpoint"),
	ME_ERR("path = /a/../metrics", "a '.' or '..' segment (requests with one are refused)"),
	ME_ERR("path = /.", "a '.' or '..' segment (requests with one are refused)"),
	ME_ERR("path = /..", "a '.' or '..' segment (requests with one are refused)"),
	ME_ERR("path = /a/./b", "a '.' or '..' segment (requests with one are refused)"),
	ME_ERR("path = /a/.", "a '.' or '..' segment (requests with one are refused)"),
	ME_ERR("path = /%2e%2e/metrics", "an encoded '.', '/' or '\\' (requests with one are refused)"),
	ME_ERR("path = /a%2Fb", "an encoded '.', '/' or '\\' (requests with one are refused)"),
	ME_ERR("path = /a%5cb", "an encoded '.', '/' or '\\' (requests with one are refused)"),
	ME_ERR("listen = 9100", "no port; " LISTEN_IS),
	ME_ERR("listen = :99999", "bad port; " LISTEN_IS),
	ME_ERR("listen = ::1:9100", "an IPv6 address goes in brackets, e.g. [::1]:8080; " LISTEN_IS),
	ME_ERR("listen = [::1:9100", "missing ']' after an IPv6 address; " LISTEN_IS),
	ME_ERR("listen = *:9100", "bad host name; " LISTEN_IS),
	ME_ERR("listen = [::1]", "no port; " LISTEN_IS),
	/* not the proxy's own address (default :8080) */
	ME_ERR("listen = :8080", "the proxy listens on :8080 already; " METRICS_THERE),
	ME_ERR("listen = 127.0.0.1:8080", "the proxy listens on :8080 already; " METRICS_THERE),
	ME_ERR("listen = [::1]:8080", "the proxy listens on :8080 already; " METRICS_THERE),
	{ "[server]\nlisten = 127.0.0.1:9000\n[metrics]\nlisten = 127.0.0.1:9000\n" BK,
	  "t.ini:4: [metrics] listen = 127.0.0.1:9000: the proxy listens on 127.0.0.1:9000 already; " METRICS_THERE },
	{ "[server]\nlisten = Localhost:9000\n[metrics]\nlisten = localhost:9000\n" BK,
	  "t.ini:4: [metrics] listen = localhost:9000: the proxy listens on Localhost:9000 already; " METRICS_THERE },
	{ "[server]\nlisten = 0.0.0.0:9000\n[metrics]\nlisten = 127.0.0.1:9000\n" BK,
	  "t.ini:4: [metrics] listen = 127.0.0.1:9000: the proxy listens on 0.0.0.0:9000 already; " METRICS_THERE },
	{ "[server]\nlisten = 127.0.0.1:9000\n[metrics]\nlisten = 0.0.0.0:9000\n" BK,
	  "t.ini:4: [metrics] listen = 0.0.0.0:9000: the proxy listens on 127.0.0.1:9000 already; " METRICS_THERE },
	{ "[server]\nlisten = [::]:9000\n[metrics]\nlisten = 10.0.0.1:9000\n" BK,
	  "t.ini:4: [metrics] listen = 10.0.0.1:9000: the proxy listens on [::]:9000 already; " METRICS_THERE },
	{ "[server]\nlisten = [::1]:9000\n[metrics]\nlisten = [::]:9000\n" BK,
	  "t.ini:4: [metrics] listen = [::]:9000: the proxy listens on [::1]:9000 already; " METRICS_THERE },
	/* the [server] listen that comes later counts; the line is listen's */
	{ "[metrics]\nlisten = 127.0.0.1:9000\n[server]\nlisten = :9000\n" BK,
	  "t.ini:2: [metrics] listen = 127.0.0.1:9000: the proxy listens on :9000 already; " METRICS_THERE },
	{ "listen = :9000\n[metrics]\nlisten = \":9000\"\n" BK,
	  "t.ini:3: [metrics] listen = :9000: the proxy listens on :9000 already; " METRICS_THERE },
	/* checked when the metrics are off too */
	{ "[metrics]\nenabled = false\nlisten = :8080\n" BK,
	  "t.ini:3: [metrics] listen = :8080: the proxy listens on :8080 already; " METRICS_THERE },
	{ ME("enable = true"), "t.ini:2: unknown key 'enable' in [metrics]" },
	{ ME("port = 9100"), "t.ini:2: unknown key 'port' in [metrics]" },
	{ BK "[metrics.labels]\n", "t.ini:3: unknown section [metrics.labels]" },

	/* the first error is the one reported, whoever finds it */
	{ "[server]\nthreads = 0\nread_timeout = 1\n" BK, "t.ini:2: [server] threads = 0: must be 1..4096" },
	{ "[server]\nthreads 4\ntreads = 1\n" BK,
	  "t.ini:2: malformed line: expected [section], key = value or a comment" },
	{ "[server\n[sever]\n" BK, "t.ini:1: malformed line: expected [section], key = value or a comment" },

	/* [usage] */
	U_ERR("enabled = maybe", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	U_ERR("inject_include_usage = 2", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	U_ERR("max_wait = 0", "must be more than 0"),
	U_ERR("max_wait = 30", "a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)"),
	U_ERR("max_wait = 61m", "must be at most 1h"),
	U_ERR("max_wait = 1h1ms", "must be at most 1h"),
	U_ERR("batch = 0", "must be 1..1000"),
	U_ERR("batch = 1001", "must be 1..1000"),
	U_ERR("batch = many", "not an integer"),
	U_ERR("queue_max = 0", "must be 1..10000000"),
	U_ERR("queue_max = 10000001", "must be 1..10000000"),
	U_ERR("queue_max = 1k", "not an integer"),
	U_ERR("spool = ", "empty; leave spool out to keep records in memory"),
	{ "[usage]\nspool = \"\"\n" BK, "t.ini:2: [usage] spool = : empty; leave spool out to keep records in memory" },
	U_ERR("spool = /nonexistent-llmproxy-check/usage.spool",
	    "directory /nonexistent-llmproxy-check does not exist"),
	U_ERR("spool = /nonexistent-llmproxy-check/a/usage.spool",
	    "directory /nonexistent-llmproxy-check/a does not exist"),
	U_ERR("spool = nonexistent-llmproxy-check/usage.spool",
	    "directory nonexistent-llmproxy-check does not exist"),
	U_ERR("spool = /etc/passwd/usage.spool", "/etc/passwd is not a directory"),
	U_ERR("spool = /tmp", "a directory; spool is the path of a file"),
	U_ERR("spool = /tmp/", "a directory; spool is the path of a file"),
	U_ERR("spool = /nonexistent-llmproxy-check/", "a directory; spool is the path of a file"),
	U_ERR("spool = /dev/null", "not a regular file"),
	U_ERR("spool_max_bytes = 63k", "must be 64KiB to 1TiB"),
	U_ERR("spool_max_bytes = 1025g", "must be 64KiB to 1TiB"),
	U_ERR("spool_max_bytes = 0", "must be 64KiB to 1TiB"),
	U_ERR("spool_max_bytes = 1t", "not a size (e.g. 10485760, 16k, 16KiB, 10MB)"),
	U_ERR("spool_fsync = sometimes", "must be never, periodic or always"),
	U_ERR("spool_fsync = ", "must be never, periodic or always"),
	{ "[usage]\nspol = /tmp/x\n" BK, "t.ini:2: unknown key 'spol' in [usage]" },
	{ "[usage]\nreporters = a\n" BK, "t.ini:2: unknown key 'reporters' in [usage]" },
	{ BK "continuous_usage = maybe\n",
	  "t.ini:3: [backends.a] continuous_usage = maybe: not a boolean (true/false, yes/no, on/off, 1/0)" },

	/* usage sections that do not exist */
	{ BK "[usage.reporters]\n", "t.ini:3: unknown section [usage.reporters]" },
	{ BK "[usage.reporter.0]\n", "t.ini:3: unknown section [usage.reporter.0]" },
	{ BK "[usage.reporters.0.kafka]\n", "t.ini:3: unknown section [usage.reporters.0.kafka]" },
	{ BK "[usage.reporters.0.webhook.headers.x]\n",
	  "t.ini:3: unknown section [usage.reporters.0.webhook.headers.x]" },
	{ BK "[usage_hook.headers]\n", "t.ini:3: unknown section [usage_hook.headers]" },
	{ BK "[usage.foo]\n", "t.ini:3: unknown section [usage.foo]" },
	{ BK "[usage.reporters.0]\nurl = http://h\n", "t.ini:4: unknown key 'url' in [usage.reporters.0]" },
	{ BK "[usage.reporters.0.webhook]\nheaders = x\n",
	  "t.ini:4: unknown key 'headers' in [usage.reporters.0.webhook]" },
	{ BK "[usage_hook]\nmethod = POST\n", "t.ini:4: unknown key 'method' in [usage_hook]" },

	/* reporter types: an enabled one llmproxy lacks would lose records */
	{ "[usage.reporters.0]\ntype = builtin\n" BK,
	  "t.ini:2: [usage.reporters.0] type = builtin: " NOT_AVAILABLE("builtin") },
	{ "[usage.reporters.db]\nname = db\ntype = \"database\"\nenabled = true\n" BK,
	  "t.ini:3: [usage.reporters.db] type = database: " NOT_AVAILABLE("database") },
	{ "[usage.reporters.0]\ntype = webhok\n[usage.reporters.0.webhook]\nurl = http://h\n" BK,
	  "t.ini:2: [usage.reporters.0] type = webhok: " NOT_AVAILABLE("webhok") },
	{ "[usage]\nenabled = false\n[usage.reporters.0]\ntype = builtin\n" BK,
	  "t.ini:4: [usage.reporters.0] type = builtin: " NOT_AVAILABLE("builtin") },
	{ "[usage.reporters.0]\ntype = builtin\n[usage.reporters.0.builtin]\nretention_days = 30\n" BK,
	  "t.ini:2: [usage.reporters.0] type = builtin: " NOT_AVAILABLE("builtin") },
	{ "[usage.reporters.0]\nenabled = yes please\n" BK,
	  "t.ini:2: [usage.reporters.0] enabled = yes please: not a boolean (true/false, yes/no, on/off, 1/0)" },

	/* an enabled reporter needs a url: its header is cited */
	{ BK "[usage.reporters.0]\nname = x\n",
	  "t.ini:3: [usage.reporters.0] has no url ([usage.reporters.0.webhook] url = http://...)" },
	{ BK "[usage.reporters.0]\nenabled = true\ntype = webhook\n[usage.reporters.0.webhook]\ntimeout = 1s\n",
	  "t.ini:3: [usage.reporters.0] has no url ([usage.reporters.0.webhook] url = http://...)" },
	{ BK "\n[usage.reporters.b.webhook]\nmethod = POST\n",
	  "t.ini:4: [usage.reporters.b] has no url ([usage.reporters.b.webhook] url = http://...)" },
	{ BK "[usage_hook]\nenabled = true\ntimeout = 1s\n", "t.ini:3: [usage_hook] is enabled but has no url" },

	/* webhook urls */
	W_URL_ERR("ftp://h", W_SYNTAX),
	W_URL_ERR("h:80/x", W_SYNTAX),
	W_URL_ERR("http://", "no host"),
	W_URL_ERR("https://:443/x", "no host"),
	{ W_URL("http://u:p@h/x"), "t.ini:4: [usage.reporters.0.webhook] url: user:password@ is not "
	  "allowed in a webhook url (the value is a secret and is not shown)" },
	W_URL_ERR("http://h:0", "bad port"),
	W_URL_ERR("https://h:99999", "bad port"),
	W_URL_ERR("http://[::1/x", "missing ']' after an IPv6 address"),
	W_URL_ERR("http://::1/x", "an IPv6 address goes in brackets, e.g. [::1]:8080"),
	W_URL_ERR("http://bad!host", "bad host name"),
	W_URL_ERR("http://h/x#frag", "a fragment (#...) is not allowed in a webhook url"),
	W_URL_SECRET("http://h/x?a=1#frag", "a fragment (#...) is not allowed in a webhook url"),
	W_URL_ERR("http://h/a b", "bad character in the path"),
	W_URL_SECRET("http://h/a%zz?q", "bad character in the path"),
	W_URL_SECRET("http://h/a?b c", "bad character in the query"),
	W_URL_SECRET("http://h?a=%2", "bad character in the query"),
	W_URL_SECRET("http://h?a=\"b\"", "bad character in the query"),
	{ BK "[usage_hook]\nurl = ftp://x\n", "t.ini:4: [usage_hook] url = ftp://x: " W_SYNTAX },
	{ BK "[usage_hook]\nurl = http://h/#x\n",
	  "t.ini:4: [usage_hook] url = http://h/#x: a fragment (#...) is not allowed in a webhook url" },
	/* the backend parser says "backend" where it has to */
	URL_ERR("https://h?x", "a query (?...) is not allowed in a backend url"),

	/* webhook timeout and method */
	{ W_URL("http://h") "timeout = 0\n", "t.ini:5: [usage.reporters.0.webhook] timeout = 0: must be more than 0" },
	{ W_URL("http://h") "timeout = 5\n",
	  "t.ini:5: [usage.reporters.0.webhook] timeout = 5: a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)" },
	{ BK "[usage_hook]\nurl = http://h\ntimeout = 1x\n",
	  "t.ini:5: [usage_hook] timeout = 1x: not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)" },
	{ W_URL("http://h") "method = PUT\n",
	  "t.ini:5: [usage.reporters.0.webhook] method = PUT: llmproxy sends records with POST only" },
	{ W_URL("http://h") "method = \"GET\"\n",
	  "t.ini:5: [usage.reporters.0.webhook] method = GET: llmproxy sends records with POST only" },

	/* webhook headers */
	H_ERR("X Tenant", "a", "a header name is A-Z a-z 0-9 and !#$%&'*+-.^_`|~"),
	H_ERR("X(Tenant)", "a", "a header name is A-Z a-z 0-9 and !#$%&'*+-.^_`|~"),
	H_ERR("X-\xc3\xa9", "a", "a header name is A-Z a-z 0-9 and !#$%&'*+-.^_`|~"),
	H_ERR("X-a123456789b123456789c123456789d123456789e123456789f123456789g12", "a",
	    "a header name has at most 63 characters"),
	H_ERR("Content-Length", "5", "llmproxy sets Content-Length itself"),
	H_ERR("host", "evil", "llmproxy sets Host itself"),
	H_ERR("content-type", "text/plain", "llmproxy sets Content-Type itself"),
	H_ERR("Transfer-Encoding", "chunked", "llmproxy sets Transfer-Encoding itself"),
	H_ERR("Connection", "close", "llmproxy sets Connection itself"),
	H_ERR("X-A", "a\rX-Injected: 1", "control character in the value"),
	H_ERR("X-A", "a\x01", "control character in the value"),
	H_ERR("X-A", "a\x7f", "control character in the value"),
	{ HDRS("Authorization = a\nauthorization = b\n"),
	  "t.ini:7: [usage.reporters.x.webhook.headers] authorization: header Authorization is given twice "
	  "(first on line 6) (the value is a secret and is not shown)" },
	{ HDRS("X-A = a\nX-A = b\n"),
	  "t.ini:7: duplicate key 'X-A' in [usage.reporters.x.webhook.headers] (first on line 6)" },
	{ HDRS("X-A = \"a\n"), "t.ini:6: [usage.reporters.x.webhook.headers] X-A: unbalanced quotes "
	  "(the value is a secret and is not shown)" },
	/* A secret with a stray quote is not shown either. */
	{ HDRS("Authorization = \"Bearer whsec-1\n"), "t.ini:6: [usage.reporters.x.webhook.headers] "
	  "Authorization: unbalanced quotes (the value is a secret and is not shown)" },

	/* reporter names: labels, unique among reporters */
	{ "[usage.reporters.0]\nname = bad name\n" BK,
	  "t.ini:2: [usage.reporters.0] name = bad name: a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ "[usage.reporters.0]\nname = \"\"\n" BK,
	  "t.ini:2: [usage.reporters.0] name = : a name has 1 to 63 characters of A-Z a-z 0-9 . _ -" },
	{ BK "[usage.reporters.a]\nname = x\n[usage.reporters.a.webhook]\nurl = http://h1\n"
	  "[usage.reporters.b]\nname = x\n[usage.reporters.b.webhook]\nurl = http://h2\n",
	  "t.ini:8: reporter name 'x' is used twice (first by [usage.reporters.a], line 4)" },
	{ BK "[usage.reporters.0.webhook]\nurl = http://h/a\n[usage.reporters.1.webhook]\nurl = http://h:80/b\n",
	  "t.ini:5: reporter name 'h:80' is used twice (first by [usage.reporters.0], line 3)" },
	{ BK "[usage_hook]\nurl = http://a\n[usage.reporters.0]\nname = usage_hook\n"
	  "[usage.reporters.0.webhook]\nurl = http://b\n",
	  "t.ini:6: reporter name 'usage_hook' is used twice (first by [usage_hook], line 3)" },
	{ BK "[usage.reporters.usage_hook.webhook]\nurl = http://b\n[usage_hook]\nurl = http://a\n",
	  "t.ini:5: reporter name 'usage_hook' is used twice (first by [usage.reporters.usage_hook], line 3)" },
	{ BK "[usage.reporters.0.webhook]\n"
	  "url = http://a123456789b123456789c123456789d123456789e123456789f123456789g12:80\n",
	  "t.ini:3: [usage.reporters.0] needs a name: HOST:PORT of its url is longer than 63 characters" },
	/* a disabled reporter's values are still checked */
	{ "[usage.reporters.0]\nenabled = false\n[usage.reporters.0.webhook]\nurl = ftp://h\n" BK,
	  "t.ini:4: [usage.reporters.0.webhook] url = ftp://h: " W_SYNTAX },

	/* [routing] load_balance: latency_based is LLMProxy's, not ours */
	RO_ERR("load_balance = latency_based", "LLMProxy's latency_based is not available in llmproxy; "
	    "choose round_robin (weights honoured), weighted (the same) or least_connections"),
	{ RO("load_balance = \"Latency_Based\""), "t.ini:2: [routing] load_balance = Latency_Based: LLMProxy's "
	  "latency_based is not available in llmproxy; choose round_robin (weights honoured), weighted (the same) "
	  "or least_connections" },
	RO_ERR("load_balance = random", "must be round_robin, weighted or least_connections"),
	RO_ERR("load_balance = round robin", "must be round_robin, weighted or least_connections"),
	RO_ERR("load_balance = ", "must be round_robin, weighted or least_connections"),
	RO_ERR("load_balance = round_robin, least_connections", "must be round_robin, weighted or least_connections"),

	/* [routing.retry] */
	RT_ERR("enabled = maybe", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	RT_ERR("max_retries = 9", "must be 0..8"),
	RT_ERR("max_retries = -1", "must be 0..8"),
	RT_ERR("max_retries = three", "not an integer"),
	RT_ERR("initial_wait = 11m", "must be at most 10m"),
	RT_ERR("initial_wait = 1", "a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)"),
	RT_ERR("max_wait = 10m1ms", "must be at most 10m"),
	RT_ERR("max_wait = -1s", "not a duration (e.g. 500ms, 30s, 2m, 1h, 1m30s)"),
	{ RT("initial_wait = 2s\nmax_wait = 1s"),
	  "t.ini:3: [routing.retry] max_wait = 1s: less than initial_wait = 2s (line 2)" },
	{ RT("max_wait = 1000ms\ninitial_wait = 1.5s"),
	  "t.ini:2: [routing.retry] max_wait = 1000ms: less than initial_wait = 1.5s (line 3)" },
	{ "[routing.retry]\ninitial_wait = 1ms\n" BK "[routing.retry]\nmax_wait = 0\n",
	  "t.ini:6: [routing.retry] max_wait = 0: less than initial_wait = 1ms (line 2)" },
	RT_ERR("multiplier = 0.5", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 0.999999999999999999", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 0", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 10.5", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 10.000000000000000000001", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 11", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 99999999999999999999999", "must be 1.0 to 10.0"),
	RT_ERR("multiplier = 2.", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = .5", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = -2", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = +2", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 2e0", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 1,5", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 0x2", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = inf", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = nan", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 2.0.0", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 2 x", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = 2x", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	RT_ERR("multiplier = ", "not a decimal number (e.g. 2, 1.5, 2.0)"),
	{ RT("multiplier = \" 2\""), "t.ini:2: [routing.retry] multiplier =  2: not a decimal number (e.g. 2, 1.5, 2.0)" },
	RT_ERR("retry_on = 5xx, 503", "unknown condition '503'; " RETRY_ON_IS),
	RT_ERR("retry_on = connection_failure", "unknown condition 'connection_failure'; " RETRY_ON_IS),
	RT_ERR("retry_on = 5xx timeout", "unknown condition '5xx timeout'; " RETRY_ON_IS),
	{ RT("retry_on = \"5xx\", \"timeout\""), "t.ini:2: [routing.retry] retry_on = 5xx\", \"timeout: "
	  "quotes go around the whole list (\"a, b\"), not around each item" },
	RT_ERR("retry_on = 5xx, 'timeout'", "quotes go around the whole list (\"a, b\"), not around each item"),
	RT_ERR("retry_on = 5xx,,timeout", "an empty item; " RETRY_ON_IS " (to retry on nothing, set enabled = false)"),
	RT_ERR("retry_on = 5xx,", "an empty item; " RETRY_ON_IS " (to retry on nothing, set enabled = false)"),
	RT_ERR("retry_on = ", "an empty item; " RETRY_ON_IS " (to retry on nothing, set enabled = false)"),
	{ RT("retires = 3"), "t.ini:2: unknown key 'retires' in [routing.retry]" },
	{ RT("retry_on_status = 503"), "t.ini:2: unknown key 'retry_on_status' in [routing.retry]" },
	{ BK "[routing.retry.x]\n", "t.ini:3: unknown section [routing.retry.x]" },

	/* [health_check] */
	HC_ERR("enabled = maybe", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	HC_ERR("interval = 99ms", "must be at least 100ms"),
	HC_ERR("interval = 0", "must be at least 100ms"),
	HC_ERR("interval = 1h1ms", "must be at most 1h"),
	HC_ERR("interval = 10", "a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)"),
	HC_ERR("timeout = 0", "must be more than 0"),
	HC_ERR("timeout = 61m", "must be at most 1h"),
	{ HC("interval = 5s\ntimeout = 6s"), "t.ini:3: [health_check] timeout = 6s: longer than interval = 5s (line 2)" },
	{ HC("timeout = 1m\ninterval = 59999ms"),
	  "t.ini:2: [health_check] timeout = 1m: longer than interval = 59999ms (line 3)" },
	HC_ERR("method = POST", "llmproxy probes with GET only"),
	HC_ERR("method = HEAD", "llmproxy probes with GET only"),
	HC_ERR("method = ", "llmproxy probes with GET only"),
	HC_ERR("path = health", "must start with '/'"),
	HC_ERR("path = ", "must start with '/'"),
	HC_ERR("path = http://h/health", "must start with '/'"),
	HC_ERR("path = /he alth", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("path = /health#x", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("path = /a\tb", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("path = /a\x7f", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("path = /\xc3\xa9", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("path = /a\rb", "bad character (a path is visible ASCII, no spaces or '#')"),
	HC_ERR("expected_status = 99", "must be 100..599"),
	HC_ERR("expected_status = 600", "must be 100..599"),
	HC_ERR("expected_status = 0", "must be 100..599"),
	HC_ERR("expected_status = 2xx", "not an integer"),
	HC_ERR("healthy_threshold = 0", "must be 1..100"),
	HC_ERR("healthy_threshold = 101", "must be 1..100"),
	HC_ERR("unhealthy_threshold = 0", "must be 1..100"),
	HC_ERR("unhealthy_threshold = 101", "must be 1..100"),
	HC_ERR("eject = maybe", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	HC_ERR("eject_on_5xx = 2", "not a boolean (true/false, yes/no, on/off, 1/0)"),
	HC_ERR("eject_cooldown = 0", "must be more than 0"),
	HC_ERR("eject_cooldown = 2h", "must be at most 1h"),
	HC_ERR("eject_cooldown = 30", "a duration needs a unit (e.g. 30s, 500ms, 2m, 1h)"),
	{ HC("intervall = 5s"), "t.ini:2: unknown key 'intervall' in [health_check]" },
	{ HC("models = a"), "t.ini:2: unknown key 'models' in [health_check]" },
	{ BK "[health_check.foo]\n", "t.ini:3: unknown section [health_check.foo]" },
	/* a disabled check's values are still checked */
	{ HC("enabled = false\npath = x"), "t.ini:3: [health_check] path = x: must start with '/'" },

	/* [backends.X] models, health_path, max_connections */
	BE_ERR("models = ", "an empty model name; models is a list of names, a, b (leave it out to serve any model)"),
	{ BE("models = \"\""), "t.ini:3: [backends.a] models = : an empty model name; models is a list of names, "
	  "a, b (leave it out to serve any model)" },
	{ BE("models = \"llama3\", \"qwen\""), "t.ini:3: [backends.a] models = llama3\", \"qwen: "
	  "quotes go around the whole list (\"a, b\"), not around each item" },
	BE_ERR("models = a, it's", "quotes go around the whole list (\"a, b\"), not around each item"),
	BE_ERR("models = a,,b", "an empty model name; models is a list of names, a, b (leave it out to serve any model)"),
	BE_ERR("models = a, b,", "an empty model name; models is a list of names, a, b (leave it out to serve any model)"),
	BE_ERR("models = , a", "an empty model name; models is a list of names, a, b (leave it out to serve any model)"),
	BE_ERR("models = a, b, a", "model 'a' is listed twice"),
	BE_ERR("models = llama3 ,llama3", "model 'llama3' is listed twice"),
	BE_ERR("models = a\x01", "control character in a model name"),
	BE_ERR("models = a\tb", "control character in a model name"),
	BE_ERR("models = a\x7f", "control character in a model name"),
	{ "[backends.a]\nurl = http://h\nmodels = a\n[server]\n[backends.a]\nmodels = b\n",
	  "t.ini:6: duplicate key 'models' in [backends.a] (first on line 3)" },
	BE_ERR("health_path = health", "must start with '/'"),
	BE_ERR("health_path = ", "must start with '/'"),
	BE_ERR("health_path = /a b", "bad character (a path is visible ASCII, no spaces or '#')"),
	BE_ERR("max_connections = -1", "must be 0..100000"),
	BE_ERR("max_connections = 100001", "must be 0..100000"),
	BE_ERR("max_connections = lots", "not an integer"),
	BE_ERR("max_connections = 1k", "not an integer"),
};

START_TEST(test_error)
{
	char err[ERRLEN] = "";
	struct config *cfg = config_load_string(errors[_i].ini, "t.ini", err, sizeof err);

	ck_assert_msg(cfg == NULL, "loaded, want error '%s'\n--- input:\n%s", errors[_i].err,
	    errors[_i].ini);
	ck_assert_msg(strcmp(err, errors[_i].err) == 0, "error\n  '%s'\nwant\n  '%s'\n--- input:\n%s",
	    err, errors[_i].err, errors[_i].ini);
}
END_TEST

/* ---- errors that need built inputs ------------------------------------------- */

/* before, a comment line of exactly n characters ended by eol, after. */
static char *with_long_line(const char *before, size_t n, const char *eol, const char *after)
{
	size_t lb = strlen(before), le = strlen(eol), la = strlen(after);
	char *s = malloc(lb + n + le + la + 1);

	ck_assert_ptr_nonnull(s);
	memcpy(s, before, lb);
	s[lb] = ';';
	memset(s + lb + 1, 'x', n - 1);
	memcpy(s + lb + n, eol, le);
	memcpy(s + lb + n + le, after, la + 1);
	return s;
}

START_TEST(test_long_lines)
{
	char err[ERRLEN], want[ERRLEN];
	struct config *cfg;
	char *s;

	/* The longest line inih can take whole: CAP_CONFIG_LINE - 3. */
	s = with_long_line(BK, CAP_CONFIG_LINE - 3, "\n", "[server]\nthreads = 3\n");
	cfg = config_load_string(s, "t.ini", err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->threads, 3);
	config_free(cfg);
	free(s);

	/* One more: an error on its line, not a split line. */
	s = with_long_line(BK, CAP_CONFIG_LINE - 2, "\n", "[server]\nthreads = 3\n");
	ck_assert_ptr_null(config_load_string(s, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:3: line too long (more than %d characters)", CAP_CONFIG_LINE - 3);
	ck_assert_str_eq(err, want);
	free(s);

	/* Far longer, at the end without a newline. */
	s = with_long_line(BK, 3 * CAP_CONFIG_LINE, "", "");
	ck_assert_ptr_null(config_load_string(s, "t.ini", err, sizeof err));
	ck_assert_str_eq(err, want);
	free(s);

	/* The '\r' of a CRLF line does not count... */
	s = with_long_line(BK, CAP_CONFIG_LINE - 3, "\r\n", "[server]\r\nthreads = 4\r\n");
	cfg = config_load_string(s, "t.ini", err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->threads, 4);
	config_free(cfg);
	free(s);
	/* ...but the characters do. */
	s = with_long_line(BK, CAP_CONFIG_LINE - 2, "\r\n", "[server]\r\nthreads = 4\r\n");
	ck_assert_ptr_null(config_load_string(s, "t.ini", err, sizeof err));
	ck_assert_str_eq(err, want);
	free(s);

	/* Lines longer than inih's default 200 bytes count as one line each:
	 * the error after them names the right line. */
	s = with_long_line("", 1000, "\n", "");
	{
		char *t = malloc(strlen(s) * 3 + 64);
		ck_assert_ptr_nonnull(t);
		sprintf(t, "%s%s%s[server]\ntreads = 1\n", s, s, s);
		ck_assert_ptr_null(config_load_string(t, "t.ini", err, sizeof err));
		ck_assert_str_eq(err, "t.ini:5: unknown key 'treads' in [server]");
		free(t);
	}
	free(s);
}
END_TEST

START_TEST(test_long_values)
{
	char ini[2048], path[400], want[ERRLEN], err[ERRLEN];
	struct config *cfg;

	/* A 300-character path: longer than inih's default line buffer. */
	memset(path, 'p', 300);
	path[0] = '/';
	path[300] = '\0';
	snprintf(ini, sizeof ini, "[backends.a]\nurl = http://h%s/\nweight = 2\n", path);
	cfg = load_ok(ini);
	ck_assert_str_eq(cfg->backends[0].path_prefix, path);
	ck_assert_int_eq(cfg->backends[0].weight, 2);
	config_free(cfg);

	/* The path prefix has 511 characters at most. */
	memset(path, 'p', 399);
	path[0] = '/';
	path[399] = '\0';
	snprintf(ini, sizeof ini, "[backends.a]\nurl = http://h%s%s\n", path, path);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:2: [backends.a] url = http://h%s%s: path longer than 511 characters",
	    path, path);
	ck_assert_str_eq(err, want);

	/* The url has 1023 at most. */
	{
		char *big = malloc(3000), *e = malloc(4000);
		ck_assert_ptr_nonnull(big);
		ck_assert_ptr_nonnull(e);
		strcpy(big, "[backends.a]\nurl = http://h/");
		memset(big + strlen(big), 'q', 1100);
		strcpy(big + strlen("[backends.a]\nurl = http://h/") + 1100, "\n");
		ck_assert_ptr_null(config_load_string(big, "t.ini", e, 4000));
		ck_assert_msg(strstr(e, ": longer than 1023 characters") != NULL, "%s", e);
		ck_assert_msg(strncmp(e, "t.ini:2: [backends.a] url = http://h/qqq", 40) == 0, "%s", e);
		free(big);
		free(e);
	}

	/* access_file and [log.file] path have 1023 characters at most, the
	 * metrics path 255. */
	{
		char *big = malloc(1100), *in = malloc(1400), *e = malloc(3000), *w = malloc(3000);

		ck_assert(big != NULL && in != NULL && e != NULL && w != NULL);
		strcpy(big, "/tmp/");
		memset(big + 5, 'a', 1018);
		big[1023] = '\0';                       /* 1023: fits */
		snprintf(in, 1400, "[log]\naccess_file = %s\n" BK, big);
		cfg = load_ok(in);
		ck_assert_str_eq(cfg->access_file, big);
		config_free(cfg);
		snprintf(in, 1400, "[log]\noutput = file\n[log.file]\npath = %s\n" BK, big);
		cfg = load_ok(in);
		ck_assert_str_eq(cfg->access_file, big);
		config_free(cfg);
		strcat(big, "a");                       /* 1024: too long */
		snprintf(in, 1400, "[log]\naccess_file = %s\n" BK, big);
		ck_assert_ptr_null(config_load_string(in, "t.ini", e, 3000));
		snprintf(w, 3000, "t.ini:2: [log] access_file = %s: longer than 1023 characters", big);
		ck_assert_str_eq(e, w);
		snprintf(in, 1400, "[log]\noutput = file\n[log.file]\npath = %s\n" BK, big);
		ck_assert_ptr_null(config_load_string(in, "t.ini", e, 3000));
		snprintf(w, 3000, "t.ini:4: [log.file] path = %s: longer than 1023 characters", big);
		ck_assert_str_eq(e, w);

		memset(big, 'm', 255);
		big[0] = '/';
		big[255] = '\0';                        /* 255: fits */
		snprintf(in, 1400, "[metrics]\npath = %s\n" BK, big);
		cfg = load_ok(in);
		ck_assert_str_eq(cfg->metrics_path, big);
		config_free(cfg);
		strcat(big, "m");
		snprintf(in, 1400, "[metrics]\npath = %s\n" BK, big);
		ck_assert_ptr_null(config_load_string(in, "t.ini", e, 3000));
		snprintf(w, 3000, "t.ini:2: [metrics] path = %s: longer than 255 characters", big);
		ck_assert_str_eq(e, w);
		free(big);
		free(in);
		free(e);
		free(w);
	}

	/* Section names longer than inih's 49 bytes are kept whole. */
	cfg = load_ok("[storage.databases.a123456789b123456789c123456789d123456789e123456789]\n"
	    "host = x\n[server]\nthreads = 5\n" BK);
	ck_assert_int_eq(cfg->threads, 5);
	ck_assert_uint_eq(cfg->nnotices, 1);
	config_free(cfg);
	ck_assert_ptr_null(config_load_string(BK "[server.a123456789b123456789c123456789d123456789e123456789]\n",
	    "t.ini", err, sizeof err));
	ck_assert_str_eq(err, "t.ini:3: unknown section [server.a123456789b123456789c123456789d123456789e123456789]");
	cfg = load_ok("[backends.a123456789b123456789c123456789d123456789e123456789]\n"
	    "url = http://h\n[backends.a123456789b123456789c123456789d123456789e12345678Z]\nurl = http://g\n");
	ck_assert_uint_eq(cfg->nbackends, 2);  /* differ after byte 49 only */
	config_free(cfg);
}
END_TEST

START_TEST(test_too_many_backends)
{
	char *ini = malloc(64 * (CAP_BACKENDS + 1) + 1), want[ERRLEN], err[ERRLEN];
	struct config *cfg;
	size_t n = 0;
	int i;

	ck_assert_ptr_nonnull(ini);
	for (i = 0; i < CAP_BACKENDS; i++)
		n += (size_t)sprintf(ini + n, "[backends.b%d]\nurl = http://h:%d\n", i, 1000 + i);
	cfg = load_ok(ini);
	ck_assert_uint_eq(cfg->nbackends, CAP_BACKENDS);
	ck_assert_str_eq(cfg->backends[CAP_BACKENDS - 1].name, "b63");
	config_free(cfg);

	sprintf(ini + n, "[backends.b%d]\nurl = http://h:%d\n", i, 1000 + i);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:%d: more than %d backends", 2 * CAP_BACKENDS + 1, CAP_BACKENDS);
	ck_assert_str_eq(err, want);
	free(ini);
}
END_TEST

/* CAP_REPORTERS reporter sections, disabled ones and [usage_hook] included. */
START_TEST(test_too_many_reporters)
{
	char *ini = malloc(128 * (CAP_REPORTERS + 2) + 64), want[ERRLEN], err[ERRLEN];
	struct config *cfg;
	size_t n = 0;
	int i;

	ck_assert_ptr_nonnull(ini);
	n += (size_t)sprintf(ini + n, BK "[usage_hook]\nurl = http://hook\n");
	for (i = 1; i < CAP_REPORTERS - 1; i++)
		n += (size_t)sprintf(ini + n, "[usage.reporters.r%d.webhook]\nurl = http://h:%d\n", i, 1000 + i);
	n += (size_t)sprintf(ini + n, "[usage.reporters.off]\nenabled = false\n");
	cfg = load_ok(ini);
	ck_assert_uint_eq(cfg->nreporters, CAP_REPORTERS - 1);
	ck_assert_str_eq(cfg->reporters[0].name, "usage_hook");
	ck_assert_str_eq(cfg->reporters[1].name, "r1");
	config_free(cfg);

	/* One more section, a subsection of one already there: still fine. */
	n += (size_t)sprintf(ini + n, "[usage.reporters.r1.webhook.headers]\nX-A = 1\n");
	cfg = load_ok(ini);
	ck_assert_uint_eq(cfg->reporters[1].nheaders, 1);
	config_free(cfg);

	/* One more reporter: its header is cited. */
	sprintf(ini + n, "[usage.reporters.more.webhook]\nurl = http://more\n");
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:%d: more than %d usage reporters ([usage.reporters.*] and "
	    "[usage_hook], disabled ones included)", 2 + 2 * CAP_REPORTERS + 2 + 1, CAP_REPORTERS);
	ck_assert_str_eq(err, want);
	free(ini);
}
END_TEST

START_TEST(test_reporter_limits)
{
	char ini[8192], big[2048], want[8192], err[8192];
	struct config *cfg;
	size_t n;
	int i;

	/* CAP_REPORTER_HEADERS headers, then one more. */
	n = (size_t)snprintf(ini, sizeof ini, HDRS(""));
	for (i = 0; i < CAP_REPORTER_HEADERS; i++)
		n += (size_t)snprintf(ini + n, sizeof ini - n, "X-H%d = v%d\n", i, i);
	cfg = load_ok(ini);
	ck_assert_uint_eq(cfg->reporters[0].nheaders, CAP_REPORTER_HEADERS);
	ck_assert_str_eq(cfg->reporters[0].headers[CAP_REPORTER_HEADERS - 1].value, "v15");
	config_free(cfg);
	snprintf(ini + n, sizeof ini - n, "X-Last = v\n");
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:%d: [usage.reporters.x.webhook.headers] X-Last: more than %d "
	    "headers (the value is a secret and is not shown)", 6 + CAP_REPORTER_HEADERS,
	    CAP_REPORTER_HEADERS);
	ck_assert_str_eq(err, want);

	/* A header value has 511 characters at most. */
	memset(big, 'v', 511);
	big[511] = '\0';
	snprintf(ini, sizeof ini, HDRS("X-Big = %s\n"), big);
	cfg = load_ok(ini);
	ck_assert_str_eq(cfg->reporters[0].headers[0].value, big);
	config_free(cfg);
	strcat(big, "v");
	snprintf(ini, sizeof ini, HDRS("X-Big = %s\n"), big);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:6: [usage.reporters.x.webhook.headers] X-Big: a header "
	    "value has at most 511 characters (the value is a secret and is not shown)");
	ck_assert_str_eq(err, want);

	/* Path and query: 767 characters at most. */
	memset(big, 'q', 765);
	big[765] = '\0';
	snprintf(ini, sizeof ini, W_URL("http://h/?%s"), big);
	cfg = load_ok(ini);
	ck_assert_uint_eq(strlen(cfg->reporters[0].path), 767);
	config_free(cfg);
	snprintf(ini, sizeof ini, W_URL("http://h?%s"), big);  /* "/" is added */
	cfg = load_ok(ini);
	ck_assert_uint_eq(strlen(cfg->reporters[0].path), 767);
	ck_assert_int_eq(cfg->reporters[0].path[0], '/');
	config_free(cfg);
	snprintf(ini, sizeof ini, W_URL("http://h/?q%s"), big);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	/* a query may hold a token: not shown */
	ck_assert_str_eq(err, "t.ini:4: [usage.reporters.0.webhook] url: path and query longer than "
	    "767 characters (the value is a secret and is not shown)");

	/* The url: 1023 at most. */
	memset(big, 'p', 1100);
	big[1100] = '\0';
	snprintf(ini, sizeof ini, W_URL("http://h/%s"), big);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:4: [usage.reporters.0.webhook] url = http://h/%s: longer than "
	    "1023 characters", big);
	ck_assert_str_eq(err, want);

	/* The spool path: 1023 at most. */
	big[0] = '/';
	snprintf(ini, sizeof ini, "[usage]\nspool = %s\n" BK, big);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:2: [usage] spool = %s: longer than 1023 characters", big);
	ck_assert_str_eq(err, want);
}
END_TEST

/* models: CAP_BACKEND_MODELS names of CAP_MODEL_NAME - 1 bytes at most;
 * health paths: 255 characters. */
START_TEST(test_backend_limits)
{
	char *ini = malloc(CAP_BACKEND_MODELS * (CAP_MODEL_NAME + 2) + 1024), *err = malloc(ERRLEN * 8);
	char *want = malloc(ERRLEN * 8), name[CAP_MODEL_NAME + 1], path[300];
	struct config *cfg;
	size_t n;
	int i;

	ck_assert_ptr_nonnull(ini);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(want);
	n = (size_t)sprintf(ini, BK "models = ");
	for (i = 0; i < CAP_BACKEND_MODELS; i++)
		n += (size_t)sprintf(ini + n, "%sm%d", i ? ", " : "", i);
	strcpy(ini + n, "\n");
	cfg = load_ok(ini);
	ck_assert_uint_eq(cfg->backends[0].nmodels, CAP_BACKEND_MODELS);
	ck_assert_str_eq(cfg->backends[0].models[CAP_BACKEND_MODELS - 1], "m31");
	config_free(cfg);
	n += (size_t)sprintf(ini + n, ", more");
	strcpy(ini + n, "\n");
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, ERRLEN * 8));
	ini[n] = '\0';
	snprintf(want, ERRLEN * 8, "t.ini:3: [backends.a] %s: more than %d models", ini + strlen(BK),
	    CAP_BACKEND_MODELS);
	ck_assert_str_eq(err, want);

	/* The longest name, then one byte more. */
	memset(name, 'n', CAP_MODEL_NAME - 1);
	name[CAP_MODEL_NAME - 1] = '\0';
	snprintf(ini, ERRLEN, BE("models = a, %s"), name);
	cfg = load_ok(ini);
	ck_assert_str_eq(cfg->backends[0].models[1], name);
	config_free(cfg);
	strcat(name, "n");
	snprintf(ini, ERRLEN, BE("models = %s, a"), name);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, ERRLEN));
	snprintf(want, ERRLEN, "t.ini:3: [backends.a] models = %s, a: a model name has at most %d characters",
	    name, CAP_MODEL_NAME - 1);
	ck_assert_str_eq(err, want);

	/* Health paths: 255 characters, in [health_check] and in a backend. */
	memset(path, 'p', 255);
	path[0] = '/';
	path[255] = '\0';
	snprintf(ini, ERRLEN, "[health_check]\npath = %s\n" BK "health_path = %s\n", path, path);
	cfg = load_ok(ini);
	ck_assert_str_eq(cfg->hc_path, path);
	ck_assert_str_eq(cfg->backends[0].health_path, path);
	config_free(cfg);
	strcat(path, "p");
	snprintf(ini, ERRLEN, HC("path = %s"), path);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, ERRLEN));
	snprintf(want, ERRLEN, "t.ini:2: [health_check] path = %s: longer than 255 characters", path);
	ck_assert_str_eq(err, want);
	snprintf(ini, ERRLEN, BE("health_path = %s"), path);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, ERRLEN));
	snprintf(want, ERRLEN, "t.ini:3: [backends.a] health_path = %s: longer than 255 characters", path);
	ck_assert_str_eq(err, want);
	free(ini);
	free(err);
	free(want);
}
END_TEST

/* Loading checks the spool's directory and leaves the disk alone: the
 * file is made when the proxy starts, not by `llmproxy -t`. */
START_TEST(test_spool_untouched)
{
	char dir[] = "/tmp/check_config_spool_XXXXXX", ini[512], path[256], want[ERRLEN], err[ERRLEN];
	struct config *cfg;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/usage.spool", dir);
	snprintf(ini, sizeof ini, "[usage]\nspool = %s\n" BK, path);
	cfg = load_ok(ini);
	ck_assert_str_eq(cfg->usage_spool, path);
	config_free(cfg);
	ck_assert_int_eq(access(path, F_OK), -1);

	/* A spool left by an earlier run is fine (it is replayed). */
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("{\"request_id\":\"x\"}\n", fp);
	fclose(fp);
	cfg = load_ok(ini);
	config_free(cfg);
	ck_assert_int_eq(unlink(path), 0);

	/* A file where the directory should be. */
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	snprintf(ini, sizeof ini, "[usage]\nspool = %s/x\n" BK, path);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:2: [usage] spool = %s/x: %s is not a directory", path, path);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);

	/* The directory gone. */
	snprintf(ini, sizeof ini, "[usage]\nspool = %s\n" BK, path);
	ck_assert_ptr_null(config_load_string(ini, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "t.ini:2: [usage] spool = %s: directory %s does not exist", path, dir);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_files)
{
	char err[ERRLEN], want[ERRLEN], tmp[] = "/tmp/check_config_XXXXXX";
	const char *p;
	FILE *fp;
	int fd;

	p = path_of("tests/data/config/no-such-file.ini");
	ck_assert_ptr_null(config_load(p, err, sizeof err));
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
	ck_assert_str_eq(err, want);

	p = path_of("tests/data/config");
	ck_assert_ptr_null(config_load(p, err, sizeof err));
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", p);
	ck_assert_str_eq(err, want);

	/* A NUL byte would end inih's line early. */
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "wb");
	ck_assert_ptr_nonnull(fp);
	{
		static const char data[] = BK "[server]\nthreads = 4\0junk\n";
		ck_assert_uint_eq(fwrite(data, 1, sizeof data - 1, fp), sizeof data - 1);
	}
	fclose(fp);
	ck_assert_ptr_null(config_load(tmp, err, sizeof err));
	snprintf(want, sizeof want, "%s:4: NUL byte in the line", tmp);
	ck_assert_str_eq(err, want);
	unlink(tmp);

	/* A small error buffer gets a cut message, never an overflow. */
	{
		char small[12];
		memset(small, 'z', sizeof small);
		ck_assert_ptr_null(config_load_string("[sever]\n", "t.ini", small, 8));
		ck_assert_str_eq(small, "t.ini:1");
		ck_assert_int_eq(small[8], 'z');
		ck_assert_ptr_null(config_load_string("[sever]\n", "t.ini", NULL, 0));
	}
}
END_TEST

/* inih's switches are global: config.c sets its own each time. */
START_TEST(test_inih_switches)
{
	struct config *cfg;

	ini_allow_multiline = true;   /* would make line 3 a continuation */
	ini_use_stack = true;
	ini_max_line = 200;           /* would split the long line */
	ini_stop_on_first_error = false;
	{
		char ini[1024];
		char longname[300];
		memset(longname, 'n', 250);
		longname[250] = '\0';
		snprintf(ini, sizeof ini, "; %s\n[server]\nlisten = :1\n  threads = 2\n" BK, longname);
		cfg = load_ok(ini);
		ck_assert_int_eq(cfg->threads, 2);
		ck_assert_str_eq(cfg->listen_port, "1");
		config_free(cfg);
	}
}
END_TEST

/* ---- notices: what is ignored is named once ------------------------------------ */

#define MAXN 40
struct notice_case {
	const char *file;    /* under tests/data/config, or NULL: */
	const char *ini;     /* loaded as "t.ini" */
	const char *patch;   /* if set: replace this text in the file first, */
	const char *with;    /*   with this (same number of lines) */
	const char *patch2, *with2;  /* and this too */
	const char *notices[MAXN];
};

#define IGN_SEC(line, s)  "t.ini:" #line ": [" s "] is an LLMProxy section llmproxy does not use; ignored"
#define QUOTA(line, k) "t.ini:" #line ": [auth.pipeline.*.static.keys.*] " k " is an LLMProxy key " \
    "llmproxy does not use: without total_quota there is nothing to count against; " \
    "[rate_limit.per_key] tokens_per_minute limits tokens; ignored"
#define LATER_SEC(line, s) "t.ini:" #line ": [" s "] is an LLMProxy section llmproxy does not support yet; ignored"
#define RETRY(line, s) "t.ini:" #line ": [" s "] retry is an LLMProxy key llmproxy does not use: llmproxy " \
    "retries every record until it is delivered (backoff capped by [usage] max_wait); ignored"
#define NO_TYPE(line, s, t) "t.ini:" #line ": [" s "] type = " t " is an LLMProxy reporter type llmproxy " \
    "does not have; the reporter is disabled; ignored"
#define OUT_STDOUT(line) "t.ini:" #line ": [log] output = stdout: llmproxy logs to stderr (access lines " \
    "too, unless [log] access_file is set); ignored"
#define OUT_FILE(line, path) "t.ini:" #line ": [log] output = file: access lines go to [log.file] path (" \
    path "), other messages to stderr"
#define FILE_UNUSED(line) "t.ini:" #line ": [log.file] path is used only with [log] output = file; ignored"
#define ROTATE(line, k) "t.ini:" #line ": [log.file] " k " is an LLMProxy key llmproxy does not use: " \
    "llmproxy does not rotate its log file; use logrotate (copytruncate); ignored"
#define LABELS(line) "t.ini:" #line ": [metrics] custom_labels is an LLMProxy key llmproxy does not use: " \
    "label values come only from the config (backend and key names), never from requests, so that the " \
    "number of series stays bounded and no secret (an API key) becomes a label; ignored"
#define BUCKETS(line) "t.ini:" #line ": [metrics] latency_buckets is an LLMProxy key llmproxy does not " \
    "use: llmproxy's histogram buckets are fixed, to resolve milliseconds; ignored"
#define LOGGING(line) "t.ini:" #line ": [logging] is an LLMProxy section llmproxy does not use: " \
    "llmproxy's access log is [log] format and access_file; ignored"
static const struct notice_case notice_cases[] = {
	{ NULL, "[backends.a]\nurl = http://a\ntimeout = 1s\n[backends.b]\nurl = http://b\ntimeout = 2s\n"
	  "[backends.c]\ntimeout = 3s\nurl = http://c\nconnect_timeout = 1s\n", NULL, NULL, NULL, NULL,
	  { "t.ini:3: [backends.*] timeout is an LLMProxy key llmproxy does not support yet; ignored",
	    "t.ini:10: [backends.*] connect_timeout is an LLMProxy key llmproxy does not support yet; ignored" } },
	{ NULL, BK "[storage.databases.0]\nhost = a\n[storage.databases.1]\nhost = b\n"
	  "[storage.caches.0]\naddr = c\n[storage]\n", NULL, NULL, NULL, NULL,
	  { IGN_SEC(3, "storage") } },
	/* auth off: its providers are not looked at */
	{ NULL, BK "[auth]\nenabled = false\n[auth.pipeline.0]\nenabled = true\ntype = builtin\n", NULL, NULL, NULL, NULL,
	  { NULL } },
	/* what llmproxy leaves out of auth and limits */
	{ NULL, BK "[auth]\nenabled = true\n[auth.status_codes.disabled]\nhttp_code = 403\n"
	  "[auth.pipeline.0]\ntype = static\n[auth.pipeline.0.script]\nenabled = false\n"
	  "[auth.pipeline.0.static.keys.0]\nkey = k\nname = n\nused_quota = 0\nquota_reset_period = monthly\n"
	  "[auth.pipeline.1]\ntype = redis\nenabled = false\n[auth.pipeline.1.redis]\nstorage = x\n"
	  "[rate_limit]\nenabled = true\nstorage = redis\nredis = primary\n[rate_limit.script]\nenabled = false\n",
	  NULL, NULL, NULL, NULL,
	  { "t.ini:5: [auth.status_codes] is an LLMProxy section llmproxy does not use: llmproxy "
	    "answers 401 (no or unknown key), 403 (disabled or expired) and 429 (limits) in OpenAI's "
	    "error format; ignored",
	    IGN_SEC(9, "auth.pipeline.*.script"),
	    "t.ini:14: [auth.pipeline.*.static.keys.*] used_quota is an LLMProxy key llmproxy does not use: "
	    "without total_quota there is nothing to count against; [rate_limit.per_key] tokens_per_minute "
	    "limits tokens; ignored",
	    "t.ini:15: [auth.pipeline.*.static.keys.*] quota_reset_period is an LLMProxy key llmproxy does not "
	    "use: without total_quota there is nothing to count against; [rate_limit.per_key] "
	    "tokens_per_minute limits tokens; ignored",
	    IGN_SEC(19, "auth.pipeline.*.redis"),
	    "t.ini:23: [rate_limit] storage = redis: llmproxy keeps its limits in memory; each llmproxy "
	    "process limits on its own",
	    "t.ini:24: [rate_limit] redis is an LLMProxy key llmproxy does not use; ignored",
	    IGN_SEC(25, "rate_limit.script") } },
	{ NULL, BK "[rate_limit]\nenabled = true\n[rate_limit.per_key]\nmax_concurrent = 2\n",
	  NULL, NULL, NULL, NULL,
	  { "t.ini:4: [rate_limit.per_key] limits the requests of each API key and [auth] is off: "
	    "only [rate_limit.global] applies" } },
	{ NULL, "[server.tls]\nenabled = no\n[server]\nthreads = 2\n[server.cors]\nenabled = true\n" BK,
	  NULL, NULL, NULL, NULL,
	  { IGN_SEC(5, "server.cors") } },
	/* TLS: verification off is said at start; client_ca_file is not used */
	{ NULL, "[backends.a]\nurl = https://h\ntls_verify = false\n[backends.b]\nurl = http://g\n"
	  "tls_verify = false\n[server.tls]\nclient_ca_file = x\n", NULL, NULL, NULL, NULL,
	  { "t.ini:1: [backends.a] tls_verify = false: the certificate of backend a is not checked, "
	    "so anyone on the path can read and change its traffic; for lab use only",
	    "t.ini:8: [server.tls] client_ca_file is an LLMProxy key llmproxy does not use: client "
	    "certificates are not asked for (client_auth = none); ignored" } },
	{ NULL, BK "[backends.a.headers]\nX-A = 1\nAuthorization = Bearer x\n[log]\nformat = json\n"
	  "output = stdout\n[log.file]\npath = x\n[routing]\nenabled = true\nload_balance = weighted\n"
	  "[routing.retry]\nmax_retries = 3\n[routing.fallback.0]\nprimary = http://x\n[routing.script]\n",
	  NULL, NULL, NULL, NULL,
	  { LATER_SEC(3, "backends.*.headers"),
	    OUT_STDOUT(8),
	    FILE_UNUSED(10),
	    "t.ini:12: [routing] enabled is an LLMProxy key llmproxy does not use; ignored",
	    IGN_SEC(16, "routing.fallback"), IGN_SEC(18, "routing.script") } },
	/* [log] and [log.file]: LLMProxy's output and rotation */
	{ NULL, "[log]\nlevel = info\nformat = json\noutput = stdout\n[log.file]\npath = ./logs/x.log\n"
	  "rotate = daily\nmax_size = 100\nmax_age = 7\ncompress = true\n" BK, NULL, NULL, NULL, NULL,
	  { OUT_STDOUT(4), FILE_UNUSED(6), ROTATE(7, "rotate"), ROTATE(8, "max_size"),
	    ROTATE(9, "max_age"), ROTATE(10, "compress") } },
	{ NULL, "[log.file]\npath = /tmp/llmproxy-check.log\nmax_age = 7\n[log]\noutput = file\n" BK,
	  NULL, NULL, NULL, NULL,
	  { ROTATE(3, "max_age"), OUT_FILE(5, "/tmp/llmproxy-check.log") } },
	{ NULL, "[log]\noutput = stderr\nformat = text\naccess_file = /tmp/a.log\n[log.file]\n" BK,
	  NULL, NULL, NULL, NULL, { NULL } },
	/* [logging]: LLMProxy's request and access logs; ours is [log] */
	{ NULL, BK "[logging]\nenabled = true\n[logging.access]\nformat = json\n[logging.access.file]\n"
	  "path = ./logs/access.log\n", NULL, NULL, NULL, NULL, { LOGGING(3) } },
	/* [metrics]: labels come from the config, buckets are fixed */
	{ NULL, "[metrics]\nenabled = true\npath = /metrics\ncustom_labels = user_id, api_key\n"
	  "latency_buckets = 0.01, 0.05, 0.1\n" BK, NULL, NULL, NULL, NULL, { LABELS(4), BUCKETS(5) } },
	{ NULL, "[metrics]\nlatency_buckets = 1\ncustom_labels = \n" BK, NULL, NULL, NULL, NULL,
	  { BUCKETS(2), LABELS(3) } },

	/* [health_check]: its lua script is LLMProxy's */
	{ NULL, "[health_check]\nenabled = true\n[health_check.script]\nenabled = false\npath = x.lua\n" BK,
	  NULL, NULL, NULL, NULL, { IGN_SEC(3, "health_check.script") } },

	/* usage: what llmproxy leaves out of a reporter */
	{ NULL, "[usage.reporters.0]\nenabled = false\ntype = database\n[usage.reporters.0.database]\ntable = x\n"
	  "[usage.reporters.0.script]\npath = x\n[usage.reporters.1]\ntype = builtin\nenabled = no\n"
	  "[usage.reporters.1.builtin]\nretention_days = 3\n[usage.reporters.1.script]\npath = y\n"
	  "[usage.reporters.2.webhook]\nurl = http://h\nretry = 2\n[usage.reporters.3.webhook]\n"
	  "url = http://g\nretry = 5\n[usage_hook]\nretry = 1\n" BK, NULL, NULL, NULL, NULL,
	  { NO_TYPE(3, "usage.reporters.0", "database"), IGN_SEC(4, "usage.reporters.*.database"),
	    IGN_SEC(6, "usage.reporters.*.script"), NO_TYPE(9, "usage.reporters.1", "builtin"),
	    IGN_SEC(11, "usage.reporters.*.builtin"), RETRY(17, "usage.reporters.*.webhook"),
	    RETRY(22, "usage_hook") } },
	/* https reporters are delivered: nothing to say */
	{ NULL, BK "[usage.reporters.0.webhook]\nurl = https://h/u\n[usage_hook]\nurl = HTTPS://g:8443\n",
	  NULL, NULL, NULL, NULL, { NULL } },
	/* LLMProxy's own files, flattened by hand */
	{ "config-v0.1.0.ini", NULL, NULL, NULL, NULL, NULL,
	  { RETRY(16, "usage_hook") } },
	{ "config-minimal.ini", NULL, NULL, NULL, NULL, NULL,
	  { RETRY(22, "usage.reporters.*.webhook") } },
	{ "config-simple.ini", NULL, NULL, NULL, NULL, NULL,
	  { RETRY(22, "usage.reporters.*.webhook") } },
	{ "config-demo.ini", NULL, NULL, NULL, NULL, NULL,
	  { RETRY(22, "usage.reporters.*.webhook") } },
	/* With auth turned off (as is, it is refused: see test_fixtures_refused).
	 * [usage] enabled = false: its https reporter is not worth a word. */
	{ "config-reference.ini", NULL, "[auth]\nenabled = true", "[auth]\nenabled = false", NULL, NULL,
	  { IGN_SEC(11, "server.cors"),
	    OUT_STDOUT(28),
	    FILE_UNUSED(31),
	    ROTATE(32, "rotate"),
	    ROTATE(33, "max_size"),
	    ROTATE(34, "max_age"),
	    ROTATE(35, "compress"),
	    IGN_SEC(37, "storage"),
	    "t.ini:101: [backends.*] timeout is an LLMProxy key llmproxy does not support yet; ignored",
	    "t.ini:102: [backends.*] connect_timeout is an LLMProxy key llmproxy does not support yet; ignored",
	    "t.ini:103: [backends.*] max_idle_conns is an LLMProxy key llmproxy does not use; ignored",
	    LATER_SEC(105, "backends.*.headers"),
	    IGN_SEC(115, "discovery"),
	    IGN_SEC(233, "admin"),
	    IGN_SEC(255, "auth.pipeline.*.redis"),
	    IGN_SEC(259, "auth.pipeline.*.script"),
	    IGN_SEC(270, "auth.pipeline.*.database"),
	    IGN_SEC(287, "auth.pipeline.*.webhook"),
	    IGN_SEC(306, "auth.pipeline.*.lua"),
	    QUOTA(322, "used_quota"),
	    QUOTA(323, "quota_reset_period"),
	    LOGGING(334),
	    "t.ini:367: [rate_limit] redis is an LLMProxy key llmproxy does not use; ignored",
	    IGN_SEC(369, "rate_limit.script"),
	    "t.ini:390: [routing] enabled is an LLMProxy key llmproxy does not use; ignored",
	    IGN_SEC(395, "routing.script"),
	    IGN_SEC(409, "routing.fallback"),
	    IGN_SEC(423, "health_check.script"),
	    LABELS(432),
	    BUCKETS(433),
	    RETRY(447, "usage.reporters.*.webhook"),
	    IGN_SEC(452, "usage.reporters.*.script"),
	    NO_TYPE(460, "usage.reporters.1", "database"),
	    IGN_SEC(463, "usage.reporters.*.database"),
	    IGN_SEC(473, "hooks") } },
	/* With auth and the builtin reporter turned off (as is, both are refused). */
	{ "config-yaml-example.ini", NULL, "[auth]\nenabled = true", "[auth]\nenabled = false",
	  "type = builtin\nenabled = true\n\n[usage.reporters.0.builtin]",
	  "type = builtin\nenabled = false\n\n[usage.reporters.0.builtin]",
	  { OUT_STDOUT(11),
	    IGN_SEC(13, "storage"),
	    IGN_SEC(44, "admin"),
	    "t.ini:62: [routing] enabled is an LLMProxy key llmproxy does not use; ignored",
	    "t.ini:75: [rate_limit] redis is an LLMProxy key llmproxy does not use; ignored",
	    NO_TYPE(102, "usage.reporters.0", "builtin"),
	    IGN_SEC(105, "usage.reporters.*.builtin"),
	    LOGGING(108),
	    IGN_SEC(127, "hooks") } },
};

/* Replaces the one occurrence of `what` in s (malloc'd) with `with`. */
static char *patched(char *s, const char *what, const char *with)
{
	char *at = strstr(s, what), *out;

	ck_assert_msg(at != NULL, "'%s' not found", what);
	ck_assert_msg(strstr(at + 1, what) == NULL, "'%s' found twice", what);
	out = malloc(strlen(s) - strlen(what) + strlen(with) + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, s, (size_t)(at - s));
	strcpy(out + (at - s), with);
	strcat(out, at + strlen(what));
	free(s);
	return out;
}

START_TEST(test_notices)
{
	const struct notice_case *c = &notice_cases[_i];
	struct config *cfg;
	char *text = NULL;
	size_t i, n = 0;

	if (c->file != NULL) {
		char rel[256];
		snprintf(rel, sizeof rel, "tests/data/config/%s", c->file);
		text = slurp(rel);
		if (c->patch != NULL)
			text = patched(text, c->patch, c->with);
		if (c->patch2 != NULL)
			text = patched(text, c->patch2, c->with2);
	}
	cfg = load_ok(text != NULL ? text : c->ini);
	while (n < MAXN && c->notices[n] != NULL)
		n++;
	for (i = 0; i < cfg->nnotices && i < n; i++)
		ck_assert_msg(strcmp(cfg->notices[i], c->notices[i]) == 0, "notice %zu\n  '%s'\nwant\n  '%s'",
		    i, cfg->notices[i], c->notices[i]);
	if (cfg->nnotices != n) {
		for (i = 0; i < cfg->nnotices; i++)
			fprintf(stderr, "  got: %s\n", cfg->notices[i]);
	}
	ck_assert_uint_eq(cfg->nnotices, n);
	config_free(cfg);
	free(text);
}
END_TEST

/* The unpatched files: as LLMProxy ships them, they turn auth on. */
START_TEST(test_fixtures_refused)
{
	static const struct { const char *file; const char *err; } cases[] = {
		/* Both enable auth with LLMProxy's builtin provider first in
		 * the pipeline: that provider is named, at its line. */
		{ "config-reference.ini", ":247: [auth.pipeline.0] type = builtin: LLMProxy's "
		  "builtin auth provider is not available in llmproxy (it needs LLMProxy's "
		  "admin database); refusing to run without the authentication asked for" },
		{ "config-yaml-example.ini", ":58: [auth.pipeline.0] type = builtin: LLMProxy's "
		  "builtin auth provider is not available in llmproxy (it needs LLMProxy's "
		  "admin database); refusing to run without the authentication asked for" },
	};
	char rel[256], want[ERRLEN], err[ERRLEN];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(rel, sizeof rel, "tests/data/config/%s", cases[i].file);
		ck_assert_ptr_null(config_load(path_of(rel), err, sizeof err));
		snprintf(want, sizeof want, "%s%s", path_of(rel), cases[i].err);
		ck_assert_str_eq(err, want);
	}

	/* config.yaml.example with auth off: its usage reporter is the builtin
	 * kind (LLMProxy's own database), which would lose every record. */
	{
		char *text = patched(slurp("tests/data/config/config-yaml-example.ini"), "[auth]\nenabled = true",
		    "[auth]\nenabled = false");

		ck_assert_ptr_null(config_load_string(text, "t.ini", err, sizeof err));
		ck_assert_str_eq(err, "t.ini:102: [usage.reporters.0] type = builtin: usage reporter type "
		    "'builtin' is not available in llmproxy; records would be lost");
		free(text);
	}
}
END_TEST

/* What the fixture files configure, read from the files themselves. */
/* https backends and the listener's files: what the parser keeps for
 * tlsconf.c (which reads the files at start). */
START_TEST(test_tls_values)
{
	struct config *cfg = load_ok("[backends.a]\nurl = https://gpu.lan/v1\n"
	    "[backends.b]\nurl = HTTPS://[::1]:8443\ntls_ca_file = /etc/b.pem\ntls_verify = off\n"
	    "[backends.c]\nurl = http://c\n");

	ck_assert_str_eq(cfg->tls_ca_file, "/etc/ssl/certs/ca-certificates.crt");
	ck_assert_int_eq(cfg->tls_ca_line, 0);
	ck_assert_int_eq(cfg->server_tls, 0);
	ck_assert_int_eq(cfg->backends[0].https, 1);
	ck_assert_str_eq(cfg->backends[0].port, "443");
	ck_assert_str_eq(cfg->backends[0].host, "gpu.lan");
	ck_assert_str_eq(cfg->backends[0].path_prefix, "/v1");
	ck_assert_int_eq(cfg->backends[0].tls_verify, 1);
	ck_assert_str_eq(cfg->backends[0].tls_ca_file, "");
	ck_assert_int_eq(cfg->backends[1].https, 1);
	ck_assert_str_eq(cfg->backends[1].port, "8443");
	ck_assert_str_eq(cfg->backends[1].host, "::1");
	ck_assert_str_eq(cfg->backends[1].tls_ca_file, "/etc/b.pem");
	ck_assert_int_eq(cfg->backends[1].tls_ca_line, 5);
	ck_assert_int_eq(cfg->backends[1].tls_verify, 0);
	ck_assert_int_eq(cfg->backends[2].https, 0);
	ck_assert_str_eq(cfg->backends[2].port, "80");
	config_free(cfg);

	cfg = load_ok("[tls]\nca_file = my ca.pem\n[server.tls]\nenabled = true\n"
	    "cert_file = \"/etc/llmproxy/cert.pem\"\nkey_file = /etc/llmproxy/key.pem\n"
	    "client_auth = none\n" "[backends.a]\nurl = http://a\n");
	ck_assert_str_eq(cfg->tls_ca_file, "my ca.pem");
	ck_assert_int_eq(cfg->tls_ca_line, 2);
	ck_assert_int_eq(cfg->server_tls, 1);
	ck_assert_str_eq(cfg->server_cert_file, "/etc/llmproxy/cert.pem");
	ck_assert_int_eq(cfg->server_cert_line, 5);
	ck_assert_str_eq(cfg->server_key_file, "/etc/llmproxy/key.pem");
	ck_assert_int_eq(cfg->server_key_line, 6);
	ck_assert_uint_eq(cfg->nnotices, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_fixtures_values)
{
	char err[ERRLEN], want[ERRLEN];
	struct config *cfg;
	const char *p;

	p = path_of("tests/data/config/config-v0.1.0.ini");
	cfg = config_load(p, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->path, p);
	ck_assert_str_eq(cfg->listen_host, "");
	ck_assert_str_eq(cfg->listen_port, "8080");
	ck_assert_uint_eq(cfg->nbackends, 2);
	ck_assert_str_eq(cfg->backends[0].name, "localhost:8000");
	ck_assert_int_eq(cfg->backends[0].weight, 5);
	ck_assert_str_eq(cfg->backends[1].name, "localhost:8081");
	ck_assert_int_eq(cfg->backends[1].weight, 3);
	ck_assert_int_eq(cfg->backends[1].line, 8);
	ck_assert_int_eq(cfg->backends[0].continuous_usage, 0);
	/* [usage_hook]: one reporter, https, held (said at start); usage on
	 * with every default. */
	ck_assert_int_eq(cfg->usage_enabled, 1);
	ck_assert_int_eq(cfg->usage_inject, 1);
	ck_assert_str_eq(cfg->usage_spool, "");
	ck_assert_uint_eq(cfg->nreporters, 1);
	ck_assert_str_eq(cfg->reporters[0].name, "usage_hook");
	ck_assert_str_eq(cfg->reporters[0].url, "https://your-billing.com/llm-usage");
	ck_assert_str_eq(cfg->reporters[0].host, "your-billing.com");
	ck_assert_str_eq(cfg->reporters[0].port, "443");
	ck_assert_str_eq(cfg->reporters[0].path, "/llm-usage");
	ck_assert_int_eq(cfg->reporters[0].https, 1);
	ck_assert_int_eq(cfg->reporters[0].timeout_ms, 1000);
	ck_assert_int_eq(cfg->reporters[0].line, 12);
	ck_assert_uint_eq(cfg->reporters[0].nheaders, 0);
	/* [health_check] with interval and path but no enabled (v0.1 has no
	 * such key): on; the rest defaults; no [routing]: round robin, retries
	 * by default. */
	ck_assert_int_eq(cfg->hc_enabled, 1);
	ck_assert_int_eq(cfg->hc_interval_ms, 10000);
	ck_assert_int_eq(cfg->hc_timeout_ms, CAP_HEALTH_TIMEOUT_MS);
	ck_assert_str_eq(cfg->hc_path, "/health");
	ck_assert_int_eq(cfg->hc_expected_status, 0);
	ck_assert_int_eq(cfg->load_balance, LB_ROUND_ROBIN);
	ck_assert_int_eq(cfg->retry_enabled, 1);
	ck_assert_int_eq(cfg->retry_max, 2);
	ck_assert_uint_eq(cfg->backends[0].nmodels, 0);
	ck_assert_str_eq(cfg->backends[0].health_path, "");
	ck_assert_int_eq(cfg->backends[0].max_connections, 0);
	/* Messages name the file as given. */
	ck_assert_uint_eq(cfg->nnotices, 1);
	snprintf(want, sizeof want, "%s:16: [usage_hook] retry is an LLMProxy key", p);
	ck_assert_msg(strncmp(cfg->notices[0], want, strlen(want)) == 0, "%s", cfg->notices[0]);
	config_free(cfg);

	/* The usage.reporters form: one http webhook each. */
	{
		static const char *const files[] = {
			"tests/data/config/config-minimal.ini", "tests/data/config/config-simple.ini",
			"tests/data/config/config-demo.ini",
		};
		size_t i;

		for (i = 0; i < sizeof files / sizeof files[0]; i++) {
			cfg = config_load(path_of(files[i]), err, sizeof err);
			ck_assert_msg(cfg != NULL, "%s", err);
			ck_assert_str_eq(cfg->listen_port, "8000");
			ck_assert_uint_eq(cfg->nbackends, 1);
			ck_assert_int_eq(cfg->backends[0].weight, 5);
			ck_assert_int_eq(cfg->usage_enabled, 1);
			ck_assert_uint_eq(cfg->nreporters, 1);
			ck_assert_str_eq(cfg->reporters[0].name, "webhook");
			ck_assert_str_eq(cfg->reporters[0].url, "http://webhook-receiver:3001/llm-usage");
			ck_assert_str_eq(cfg->reporters[0].host, "webhook-receiver");
			ck_assert_str_eq(cfg->reporters[0].port, "3001");
			ck_assert_str_eq(cfg->reporters[0].path, "/llm-usage");
			ck_assert_int_eq(cfg->reporters[0].https, 0);
			ck_assert_int_eq(cfg->reporters[0].timeout_ms, 1000);
			ck_assert_int_eq(cfg->reporters[0].line, 14);
			ck_assert_uint_eq(cfg->reporters[0].nheaders, 0);
			/* health_check: enabled, interval 10s, a path */
			ck_assert_int_eq(cfg->hc_enabled, 1);
			ck_assert_int_eq(cfg->hc_interval_ms, 10000);
			ck_assert_int_eq(cfg->hc_timeout_ms, CAP_HEALTH_TIMEOUT_MS);
			ck_assert_str_eq(cfg->hc_path, i == 2 ? "/api/tags" : "/health");  /* demo: Ollama */
			config_free(cfg);
		}
	}

	p = path_of("tests/data/config/config-minimal.ini");
	cfg = config_load(p, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->backends[0].name, "default");
	ck_assert_str_eq(cfg->backends[0].host, "host.docker.internal");
	ck_assert_str_eq(cfg->backends[0].port, "8000");
	config_free(cfg);

	/* The reference, auth off: usage off, one webhook read all the same
	 * (https, a header), the disabled database reporter left out. */
	{
		char *text = patched(slurp("tests/data/config/config-reference.ini"), "[auth]\nenabled = true",
		    "[auth]\nenabled = false");

		cfg = load_ok(text);
		ck_assert_int_eq(cfg->usage_enabled, 0);
		ck_assert_uint_eq(cfg->nreporters, 1);
		ck_assert_str_eq(cfg->reporters[0].name, "billing_webhook");
		ck_assert_str_eq(cfg->reporters[0].host, "billing.example.com");
		ck_assert_str_eq(cfg->reporters[0].port, "443");
		ck_assert_str_eq(cfg->reporters[0].path, "/usage");
		ck_assert_int_eq(cfg->reporters[0].https, 1);
		ck_assert_int_eq(cfg->reporters[0].timeout_ms, 5000);
		ck_assert_int_eq(cfg->reporters[0].line, 438);
		ck_assert_uint_eq(cfg->reporters[0].nheaders, 1);
		ck_assert_str_eq(cfg->reporters[0].headers[0].name, "Authorization");
		ck_assert_str_eq(cfg->reporters[0].headers[0].value, "Bearer xxx");
		/* routing: round_robin, and its retry section as written (no 429) */
		ck_assert_int_eq(cfg->load_balance, LB_ROUND_ROBIN);
		ck_assert_int_eq(cfg->retry_enabled, 1);
		ck_assert_int_eq(cfg->retry_max, 3);
		ck_assert_int_eq(cfg->retry_initial_wait_ms, 1000);
		ck_assert_int_eq(cfg->retry_max_wait_ms, 10000);
		ck_assert(cfg->retry_multiplier == 2.0);
		ck_assert_uint_eq(cfg->retry_on, RETRY_ON_5XX | RETRY_ON_CONNECT | RETRY_ON_TIMEOUT);
		/* health_check: every key of LLMProxy's */
		ck_assert_int_eq(cfg->hc_enabled, 1);
		ck_assert_int_eq(cfg->hc_interval_ms, 30000);
		ck_assert_int_eq(cfg->hc_timeout_ms, 5000);
		ck_assert_str_eq(cfg->hc_path, "/health");
		ck_assert_int_eq(cfg->hc_expected_status, 200);
		ck_assert_int_eq(cfg->hc_unhealthy_threshold, 3);
		ck_assert_int_eq(cfg->hc_healthy_threshold, 2);
		ck_assert_int_eq(cfg->hc_eject, 1);
		ck_assert_int_eq(cfg->hc_eject_on_5xx, 1);
		ck_assert_int_eq(cfg->hc_eject_cooldown_ms, CAP_EJECT_COOLDOWN_MS);
		ck_assert_uint_eq(cfg->nbackends, 2);
		ck_assert_int_eq(cfg->backends[0].weight, 5);
		ck_assert_int_eq(cfg->backends[1].weight, 3);
		/* log: json, to stderr (output = stdout, [log.file] unused) */
		ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
		ck_assert_int_eq(cfg->log_json, 1);
		ck_assert_str_eq(cfg->access_file, "");
		/* metrics: on, at /metrics, on the main listener */
		ck_assert_int_eq(cfg->metrics_enabled, 1);
		ck_assert_str_eq(cfg->metrics_path, "/metrics");
		ck_assert_str_eq(cfg->metrics_listen_port, "");
		ck_assert_int_eq(cfg->metrics_compat, 0);
		config_free(cfg);
		free(text);
	}

	/* config.yaml.example, auth and its builtin reporter off. */
	{
		char *text = patched(slurp("tests/data/config/config-yaml-example.ini"), "[auth]\nenabled = true",
		    "[auth]\nenabled = false");

		text = patched(text, "type = builtin\nenabled = true\n\n[usage.reporters.0.builtin]",
		    "type = builtin\nenabled = false\n\n[usage.reporters.0.builtin]");
		cfg = load_ok(text);
		ck_assert_int_eq(cfg->load_balance, LB_ROUND_ROBIN);
		ck_assert_int_eq(cfg->retry_enabled, 1);
		ck_assert_int_eq(cfg->retry_max, 3);
		ck_assert_int_eq(cfg->retry_initial_wait_ms, 1000);
		ck_assert_int_eq(cfg->retry_max_wait_ms, 10000);
		ck_assert(cfg->retry_multiplier == 2.0);
		ck_assert_uint_eq(cfg->retry_on, RETRY_ON_5XX | RETRY_ON_CONNECT | RETRY_ON_TIMEOUT | RETRY_ON_429);
		ck_assert_int_eq(cfg->hc_enabled, 1);
		ck_assert_int_eq(cfg->hc_interval_ms, 30000);
		ck_assert_int_eq(cfg->hc_timeout_ms, 5000);
		ck_assert_str_eq(cfg->hc_path, "/health");
		ck_assert_int_eq(cfg->hc_expected_status, 0);
		ck_assert_int_eq(cfg->log_json, 1);
		ck_assert_str_eq(cfg->access_file, "");
		ck_assert_int_eq(cfg->metrics_enabled, 1);
		ck_assert_str_eq(cfg->metrics_path, "/metrics");
		config_free(cfg);
		free(text);
	}

	/* The others have neither [log] nor [metrics]: the defaults. */
	cfg = config_load(path_of("tests/data/config/config-v0.1.0.ini"), err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->log_json, 0);
	ck_assert_int_eq(cfg->metrics_enabled, 1);
	ck_assert_str_eq(cfg->metrics_path, "/metrics");
	config_free(cfg);
}
END_TEST

/* ---- config.ini.example ---------------------------------------------------- */

/* The whole example loads, and says what the defaults are. */
START_TEST(test_example)
{
	char err[ERRLEN];
	struct config *cfg = config_load(path_of("config.ini.example"), err, sizeof err);

	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_uint_eq(cfg->nnotices, 0);
	ck_assert_uint_eq(cfg->nbackends, 1);
	ck_assert_str_eq(cfg->backends[0].name, "local");  /* the section suffix */
	ck_assert_int_eq(cfg->hc_enabled, 0);  /* installed as is: no probes */
	config_free(cfg);
}
END_TEST

START_TEST(test_example_first_five_lines)
{
	char *text = slurp("config.ini.example"), *p = text;
	struct config *cfg;
	int i;

	for (i = 0; i < 5; i++) {
		p = strchr(p, '\n');
		ck_assert_ptr_nonnull(p);
		p++;
	}
	*p = '\0';
	cfg = load_ok(text);
	ck_assert_str_eq(cfg->listen_host, "");
	ck_assert_str_eq(cfg->listen_port, "8080");
	ck_assert_uint_eq(cfg->nbackends, 1);
	ck_assert_str_eq(cfg->backends[0].host, "127.0.0.1");
	ck_assert_str_eq(cfg->backends[0].port, "8000");
	ck_assert_uint_eq(cfg->nnotices, 0);
	config_free(cfg);
	free(text);
}
END_TEST

/* Every ";key = value" in the example, uncommented, gives the defaults: the
 * documented defaults are the real ones.  A ";[section]" is uncommented too
 * ([health_check], whose presence turns probes on). */
START_TEST(test_example_documented_defaults)
{
	char *text = slurp("config.ini.example"), *line, *save = NULL;
	char *out = malloc(strlen(text) + 1);
	struct config *cfg, *def, *hc;
	int uncommented = 0, headers = 0;

	ck_assert_ptr_nonnull(out);
	out[0] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == ';' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " = ") != NULL) {
			line++;
			uncommented++;
		} else if (line[0] == ';' && line[1] == '[') {
			line++;
			headers++;
		}
		strcat(out, line);
		strcat(out, "\n");
	}
	ck_assert_int_ge(uncommented, 41);
	ck_assert_int_eq(headers, 1);
	cfg = load_ok(out);
	def = load_ok("[backends.local]\nurl = http://127.0.0.1:8000\n");
	hc = load_ok("[backends.local]\nurl = http://127.0.0.1:8000\n[health_check]\n");
	ck_assert_int_eq(cfg->threads, def->threads);
	ck_assert_int_eq(cfg->read_timeout_ms, def->read_timeout_ms);
	ck_assert_int_eq(cfg->write_timeout_ms, def->write_timeout_ms);
	ck_assert_int_eq(cfg->idle_timeout_ms, def->idle_timeout_ms);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, def->shutdown_timeout_ms);
	ck_assert_uint_eq(cfg->max_header_bytes, def->max_header_bytes);
	ck_assert_uint_eq(cfg->max_body_size, def->max_body_size);
	ck_assert_int_eq(cfg->connect_timeout_ms, def->connect_timeout_ms);
	ck_assert_int_eq(cfg->first_token_timeout_ms, def->first_token_timeout_ms);
	ck_assert_int_eq(cfg->stream_idle_timeout_ms, def->stream_idle_timeout_ms);
	ck_assert_int_eq(cfg->request_timeout_ms, def->request_timeout_ms);
	ck_assert_int_eq(cfg->log_level, def->log_level);
	ck_assert_int_eq(cfg->log_json, def->log_json);
	ck_assert_str_eq(cfg->access_file, def->access_file);
	ck_assert_int_eq(cfg->metrics_enabled, def->metrics_enabled);
	ck_assert_str_eq(cfg->metrics_path, def->metrics_path);
	ck_assert_str_eq(cfg->metrics_listen_host, def->metrics_listen_host);
	ck_assert_str_eq(cfg->metrics_listen_port, def->metrics_listen_port);
	ck_assert_int_eq(cfg->metrics_compat, def->metrics_compat);
	ck_assert_int_eq(cfg->usage_enabled, def->usage_enabled);
	ck_assert_int_eq(cfg->usage_inject, def->usage_inject);
	ck_assert_int_eq(cfg->usage_max_wait_ms, def->usage_max_wait_ms);
	ck_assert_int_eq(cfg->usage_batch, def->usage_batch);
	ck_assert_uint_eq(cfg->usage_queue_max, def->usage_queue_max);
	ck_assert_str_eq(cfg->usage_spool, def->usage_spool);
	ck_assert_uint_eq(cfg->usage_spool_max_bytes, def->usage_spool_max_bytes);
	ck_assert_int_eq(cfg->usage_spool_fsync, def->usage_spool_fsync);
	ck_assert_int_eq(cfg->load_balance, def->load_balance);
	ck_assert_int_eq(cfg->retry_enabled, def->retry_enabled);
	ck_assert_int_eq(cfg->retry_max, def->retry_max);
	ck_assert_int_eq(cfg->retry_initial_wait_ms, def->retry_initial_wait_ms);
	ck_assert_int_eq(cfg->retry_max_wait_ms, def->retry_max_wait_ms);
	ck_assert(cfg->retry_multiplier == def->retry_multiplier);
	ck_assert_uint_eq(cfg->retry_on, def->retry_on);
	ck_assert_int_eq(cfg->hc_enabled, hc->hc_enabled);  /* with the section */
	ck_assert_int_eq(cfg->hc_enabled, 1);
	ck_assert_int_eq(def->hc_enabled, 0);               /* without */
	ck_assert_int_eq(cfg->hc_interval_ms, def->hc_interval_ms);
	ck_assert_int_eq(cfg->hc_timeout_ms, def->hc_timeout_ms);
	ck_assert_str_eq(cfg->hc_path, def->hc_path);
	ck_assert_int_eq(cfg->hc_expected_status, def->hc_expected_status);
	ck_assert_int_eq(cfg->hc_healthy_threshold, def->hc_healthy_threshold);
	ck_assert_int_eq(cfg->hc_unhealthy_threshold, def->hc_unhealthy_threshold);
	ck_assert_int_eq(cfg->hc_eject, def->hc_eject);
	ck_assert_int_eq(cfg->hc_eject_on_5xx, def->hc_eject_on_5xx);
	ck_assert_int_eq(cfg->hc_eject_cooldown_ms, def->hc_eject_cooldown_ms);
	ck_assert_uint_eq(cfg->nreporters, 0);
	ck_assert_uint_eq(cfg->nnotices, 0);
	config_free(cfg);
	config_free(def);
	config_free(hc);
	free(out);
	free(text);
}
END_TEST

/* ---- API keys and limits ------------------------------------------------------ */

static const char *key_name_of(const struct config *cfg, const char *secret,
    int64_t now, enum auth_verdict *v)
{
	const struct auth_key *k;

	*v = auth_check(&cfg->keys, secret, strlen(secret), now, &k);
	return k != NULL ? k->name : NULL;
}

START_TEST(test_auth_keys)
{
	char dir[] = "/tmp/llmproxy-check-keys.XXXXXX", path[512], *text;
	enum auth_verdict v;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/keys", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("# KEY USER NAME [status] [expiry]\nsk-file-1 carol file-one\r\n\n"
	    "sk-file-2 dave file-two disabled\nsk-file-3 erin file-three 2020-01-01T00:00:00Z", fp);
	fclose(fp);
	ck_assert_int_ge(asprintf(&text, BK "api_key = sk-backend\n"
	    "[auth]\nenabled = true\nheader_names = Authorization, X-Custom-Key\n"
	    "skip_paths = /health, /public/*\n"
	    "[auth.pipeline.0]\nname = static_auth\ntype = static\n"
	    "[auth.pipeline.0.static]\nkeys_file = %s\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = \"sk-one\"\nname = \xe6\xb5\x8b\xe8\xaf\x95 Key 1\n"
	    "user_id = user_001\nstatus = enabled\nexpires_at = 2030-01-01T00:00:00Z\n"
	    "total_quota = 0\nallowed_ips = \ndenied_ips = []\n"
	    "[auth.pipeline.0.static.keys.1]\nkey = sk-two\nname = two\nstatus = disabled\n"
	    "[auth.pipeline.1]\ntype = builtin\nenabled = false\n"
	    "[auth.pipeline.2]\ntype = static\nenabled = false\n"
	    "[auth.pipeline.2.static.keys.0]\nkey = sk-off\nname = off\n", path), 0);
	struct config *cfg = load_ok(text);

	ck_assert_str_eq(cfg->backends[0].api_key, "sk-backend");
	ck_assert_int_eq(cfg->auth_enabled, 1);
	ck_assert_uint_eq(cfg->nauth_headers, 2);
	ck_assert_str_eq(cfg->auth_headers[1], "X-Custom-Key");
	ck_assert_uint_eq(cfg->nskip_paths, 2);
	ck_assert_str_eq(cfg->skip_paths[1], "/public/*");
	ck_assert_uint_eq(cfg->keys.n, 5);
	ck_assert_str_eq(key_name_of(cfg, "sk-one", 1800000000, &v), "\xe6\xb5\x8b\xe8\xaf\x95 Key 1");
	ck_assert_int_eq(v, AUTH_OK);
	ck_assert_str_eq(key_name_of(cfg, "sk-one", 1893456000, &v), "\xe6\xb5\x8b\xe8\xaf\x95 Key 1");
	ck_assert_int_eq(v, AUTH_EXPIRED);
	ck_assert_str_eq(key_name_of(cfg, "sk-two", 0, &v), "two");
	ck_assert_int_eq(v, AUTH_DISABLED);
	ck_assert_str_eq(key_name_of(cfg, "sk-file-1", 1800000000, &v), "file-one");
	ck_assert_int_eq(v, AUTH_OK);
	ck_assert_str_eq(key_name_of(cfg, "sk-file-2", 0, &v), "file-two");
	ck_assert_int_eq(v, AUTH_DISABLED);
	ck_assert_str_eq(key_name_of(cfg, "sk-file-3", 1800000000, &v), "file-three");
	ck_assert_int_eq(v, AUTH_EXPIRED);
	ck_assert_ptr_null(key_name_of(cfg, "sk-off", 0, &v));     /* its provider is off */
	ck_assert_int_eq(v, AUTH_UNKNOWN);
	ck_assert_ptr_null(key_name_of(cfg, "sk-backend", 0, &v));
	config_free(cfg);

	/* A keys_file error is the keys_file's FILE:LINE. */
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("sk-a alice a\n\nsk-b bob\n", fp);
	fclose(fp);
	char err[ERRLEN], want[1024];
	ck_assert_ptr_null(config_load_string(text, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "%s:3: a line is KEY USER_ID NAME [enabled|disabled] [EXPIRES_AT]", path);
	ck_assert_str_eq(err, want);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("sk-a alice a\nsk-b bob two\n", fp);
	fclose(fp);
	ck_assert_ptr_null(config_load_string(text, "t.ini", err, sizeof err));
	snprintf(want, sizeof want, "%s:2: key name 'two' is used twice (first by "
	    "[auth.pipeline.0.static.keys.1], line 22); names label metrics, logs and usage records", path);
	ck_assert_str_eq(err, want);
	/* A reload reads it again: a new key, without a word in the config. */
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("sk-new zoe new-key\n", fp);
	fclose(fp);
	cfg = load_ok(text);
	ck_assert_str_eq(key_name_of(cfg, "sk-new", 0, &v), "new-key");
	ck_assert_int_eq(v, AUTH_OK);
	ck_assert_ptr_null(key_name_of(cfg, "sk-file-1", 0, &v));
	config_free(cfg);
	unlink(path);
	rmdir(dir);
	free(text);
}
END_TEST

START_TEST(test_auth_defaults)
{
	struct config *cfg = load_ok(BK);

	ck_assert_int_eq(cfg->auth_enabled, 0);
	ck_assert_uint_eq(cfg->nauth_headers, 2);
	ck_assert_str_eq(cfg->auth_headers[0], "Authorization");
	ck_assert_str_eq(cfg->auth_headers[1], "X-API-Key");
	ck_assert_uint_eq(cfg->nskip_paths, 2);
	ck_assert_str_eq(cfg->skip_paths[0], "/health");
	ck_assert_str_eq(cfg->skip_paths[1], "/metrics");
	ck_assert_str_eq(cfg->backends[0].api_key, "");
	ck_assert_uint_eq(cfg->keys.n, 0);
	ck_assert_int_eq(cfg->rl_enabled, 0);
	config_free(cfg);

	/* The metrics path moved: it is the one open by default. */
	cfg = load_ok("[metrics]\npath = /prom\n[auth]\nskip_paths = \n" BK);
	ck_assert_uint_eq(cfg->nskip_paths, 0);
	config_free(cfg);
	cfg = load_ok("[metrics]\npath = /prom\n" BK);
	ck_assert_str_eq(cfg->skip_paths[1], "/prom");
	config_free(cfg);
}
END_TEST

START_TEST(test_rate_limits)
{
	struct config *cfg = load_ok(BK "[rate_limit]\nenabled = true\nstorage = memory\n"
	    "[rate_limit.global]\nenabled = true\nrequests_per_second = 100\nburst_size = 200\n"
	    "requests_per_minute = 1000\n"
	    "[rate_limit.per_key]\nrequests_per_second = 2.5\nmax_concurrent = 5\n"
	    "tokens_per_minute = 100000\n"
	    "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = k\nname = n\n");

	ck_assert(cfg->rl_global.rps == 100);
	ck_assert(cfg->rl_global.rps_burst == 200);
	ck_assert(cfg->rl_global.rpm == 1000);
	ck_assert(cfg->rl_per_key.rps == 2.5);
	ck_assert(cfg->rl_per_key.rps_burst == 3);      /* default: the rate, up */
	ck_assert(cfg->rl_per_key.tpm == 100000);
	ck_assert_int_eq(cfg->rl_per_key.max_concurrent, 5);
	config_free(cfg);

	/* Off, or a part off: no limit at all. */
	cfg = load_ok(BK "[rate_limit]\nenabled = false\n[rate_limit.global]\nrequests_per_second = 1\n");
	ck_assert(cfg->rl_global.rps == 0);
	config_free(cfg);
	cfg = load_ok(BK "[rate_limit]\nenabled = true\n[rate_limit.global]\nenabled = false\n"
	    "requests_per_second = 1\n[rate_limit.per_key]\nrequests_per_second = 0.5\n"
	    "[auth]\nenabled = true\n[auth.pipeline.0]\ntype = static\n"
	    "[auth.pipeline.0.static.keys.0]\nkey = k\nname = n\n");
	ck_assert(cfg->rl_global.rps == 0);
	ck_assert(cfg->rl_per_key.rps == 0.5);
	ck_assert(cfg->rl_per_key.rps_burst == 1);
	config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_duration, 0, (int)(sizeof durations / sizeof durations[0]));
	tcase_add_loop_test(tc, test_size, 0, (int)(sizeof sizes / sizeof sizes[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_test(tc, test_auth_keys);
	tcase_add_test(tc, test_auth_defaults);
	tcase_add_test(tc, test_rate_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("good");
	tcase_add_loop_test(tc, test_good, 0, (int)(sizeof goods / sizeof goods[0]));
	tcase_add_loop_test(tc, test_multiplier, 0, (int)(sizeof multipliers / sizeof multipliers[0]));
	tcase_add_test(tc, test_inih_switches);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_error, 0, (int)(sizeof errors / sizeof errors[0]));
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_long_values);
	tcase_add_test(tc, test_too_many_backends);
	tcase_add_test(tc, test_too_many_reporters);
	tcase_add_test(tc, test_reporter_limits);
	tcase_add_test(tc, test_backend_limits);
	tcase_add_test(tc, test_spool_untouched);
	tcase_add_test(tc, test_files);
	suite_add_tcase(s, tc);

	tc = tcase_create("llmproxy");
	tcase_add_loop_test(tc, test_notices, 0, (int)(sizeof notice_cases / sizeof notice_cases[0]));
	tcase_add_test(tc, test_fixtures_refused);
	tcase_add_test(tc, test_fixtures_values);
	tcase_add_test(tc, test_tls_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("example");
	tcase_add_test(tc, test_example);
	tcase_add_test(tc, test_example_first_five_lines);
	tcase_add_test(tc, test_example_documented_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
