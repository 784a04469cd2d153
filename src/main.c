/*
 * main.c — flags, configuration, the listening socket, signals.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"
#include "httpc.h"
#include "io.h"
#include "llmproxy.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "server.h"
#include "tlsconf.h"
#include "webhook.h"

/* How long `--probe` waits for the whole answer (connect included). */
#ifndef PROBE_TIMEOUT_MS
#define PROBE_TIMEOUT_MS 2000
#endif

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: llmproxy [-t] [-c FILE]\n"
	    "       llmproxy --probe URL\n"
	    "  -c FILE      configuration file (default: config.ini)\n"
	    "  -t           check the configuration and exit\n"
	    "  -V           print the version and exit\n"
	    "  -h           this help\n"
	    "  --probe URL  GET http[s]://HOST[:PORT][/PATH] within %d s; exit 0 on a\n"
	    "               2xx answer, 1 otherwise (a container HEALTHCHECK; reads no\n"
	    "               configuration; https: the certificate is not checked)\n",
	    PROBE_TIMEOUT_MS / 1000);
}

/* ---- --probe URL: a health check where there is no shell and no curl ---------- */

struct probe_url {
	char host[256];             /* without the brackets of an IPv6 literal */
	char port[6];
	int v6;                     /* the host was [IPv6] */
	int https;
	const char *path;           /* into the url: "", or from its '/' or '?' on */
};

/* RFC 3986 §3.3/3.4 pchar, '/' and '?', as a path and query may hold them;
 * '%' must start a %XX escape. */
static int
probe_path_ok(const char *c)
{
	static const char other[] = "-._~!$&'()*+,;=:@/?";

	for (; *c != '\0'; c++) {
		unsigned char ch = (unsigned char)*c;
		if (ch == '%') {
			if (!isxdigit((unsigned char)c[1]) || !isxdigit((unsigned char)c[2]))
				return 0;
		} else if (!(ch < 0x80 && (isalnum(ch) || strchr(other, ch) != NULL))) {
			return 0;
		}
	}
	return 1;
}

/*
 * http[s]://HOST[:PORT][/PATH][?QUERY] -> u; HOST is a name, an IPv4 address
 * or [an IPv6 one], PORT 1..65535 (default 80, 443).  Deliberately smaller
 * than config.c's parser: no user@, no #fragment.  Returns NULL, or what is
 * wrong with the url.
 */
static const char *
probe_parse_url(const char *url, struct probe_url *u)
{
	const char *a, *end, *hs, *he, *p;

	memset(u, 0, sizeof(*u));
	u->https = strncasecmp(url, "https://", 8) == 0;
	if (!u->https && strncasecmp(url, "http://", 7) != 0)
		return "the url must be http[s]://HOST[:PORT][/PATH]";
	a = url + 7 + u->https;
	end = a + strcspn(a, "/?#");
	u->path = end;
	if (memchr(a, '@', (size_t)(end - a)) != NULL)
		return "user@ is not allowed in the url";
	if (*a == '[') {
		hs = a + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (he == NULL)
			return "no ']' after the IPv6 address";
		p = he + 1;
		if (p != end && *p != ':')
			return "bad character after ']'";
		u->v6 = 1;
	} else {
		hs = a;
		he = memchr(a, ':', (size_t)(end - a));
		if (he == NULL)
			he = end;
		p = he;
	}
	if (he == hs)
		return "no host in the url";
	if ((size_t)(he - hs) >= sizeof(u->host))
		return "the host name is too long";
	for (const char *c = hs; c < he; c++) {
		unsigned char ch = (unsigned char)*c;
		if (!(ch < 0x80 && (isalnum(ch) || ch == '.' || ch == '-' ||
		    ch == '_' || (u->v6 && ch == ':'))))
			return "bad character in the host";
	}
	memcpy(u->host, hs, (size_t)(he - hs));
	if (p == end) {
		strcpy(u->port, u->https ? "443" : "80");
	} else {
		long port = 0;
		if (++p == end || end - p > 5)
			return "bad port";
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return "bad port";
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return "bad port";
		snprintf(u->port, sizeof(u->port), "%ld", port);
	}
	if (strchr(u->path, '#') != NULL)
		return "a #fragment is not allowed in the url";
	if (!probe_path_ok(u->path))
		return "bad character in the path (spaces and the like must be %XX)";
	return NULL;
}

/* The line a probe cut short by SIGALRM writes (made before the alarm is
 * set: a signal handler may only write(2) and _exit). */
static char probe_late_line[1200];
static size_t probe_late_len;

static void
probe_late(int sig)
{
	(void)sig;
	if (write(2, probe_late_line, probe_late_len) < 0) {
		/* nothing more to say */
	}
	_exit(1);
}

/*
 * `llmproxy --probe URL`: one GET with Connection: close, through the same
 * client the proxy uses for health checks and webhooks, within
 * PROBE_TIMEOUT_MS.  Exit 0 on a complete 2xx answer; 1 on anything else,
 * with one line on stderr saying what; 2 for a url it cannot use.
 */
static int
probe(const char *url)
{
	static struct httpc h;
	struct probe_url u;
	char head[1024 + 512], body[256];
	const char *why = probe_parse_url(url, &u);
	int status = 0;
	size_t blen = 0;

	if (why != NULL) {
		fprintf(stderr, "llmproxy: --probe %s: %s\n", url, why);
		usage(stderr);
		return 2;
	}
	int n = snprintf(head, sizeof(head), "GET %s%s HTTP/1.1\r\n"
	    "Host: %s%s%s:%s\r\nUser-Agent: llmproxy/%s (probe)\r\n"
	    "Accept: */*\r\nConnection: close\r\n\r\n",
	    u.path[0] == '/' ? "" : "/", u.path, u.v6 ? "[" : "", u.host,
	    u.v6 ? "]" : "", u.port, LLMPROXY_VERSION);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		fprintf(stderr, "llmproxy: --probe %s: the url is too long\n", url);
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* The deadline bounds connecting and the exchange, not getaddrinfo(),
	 * which may wait for a DNS server for many seconds (a scratch image
	 * has no /etc/hosts of its own): the alarm is the hard limit. */
	int m = snprintf(probe_late_line, sizeof(probe_late_line),
	    "llmproxy: probe %s: no answer within %d s (resolving the name?)\n",
	    url, PROBE_TIMEOUT_MS / 1000 + 1);
	probe_late_len = m > 0 && (size_t)m < sizeof(probe_late_line) ? (size_t)m :
	    sizeof(probe_late_line) - 1;
	signal(SIGALRM, probe_late);
	alarm(PROBE_TIMEOUT_MS / 1000 + 1);
	httpc_init(&h, u.host, u.port);
	/* Unverified: the probe asks this machine's own listener whether it
	 * answers, sends no secret, and has no configuration to find anchors
	 * in; what it checks is liveness, not identity. */
	if (u.https)
		httpc_tls(&h, NULL, 0);
	int rc = httpc_request(&h, head, (size_t)n, NULL, 0,
	    io_now_ms() + PROBE_TIMEOUT_MS, &status, body, sizeof(body), &blen);
	httpc_close(&h);
	if (rc == 0 && status >= 200 && status <= 299)
		return 0;
	if (rc == 0)
		fprintf(stderr, "llmproxy: probe %s: status %d\n", url, status);
	else if (status > 0)
		fprintf(stderr, "llmproxy: probe %s: status %d, then %s\n", url,
		    status, h.why);
	else
		fprintf(stderr, "llmproxy: probe %s: %s\n", url, h.why);
	return 1;
}

/* Creates the listening socket.  An empty host means every address: IPv6
 * with IPv4 mapped when the system has IPv6, else IPv4.  Returns the fd or -1
 * with a message in err. */
static int
listen_on(const char *listen_host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	const char *host = listen_host[0] ? listen_host : NULL;

	if (host == NULL)
		hints.ai_family = AF_INET6;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0 && host == NULL) {
		hints.ai_family = AF_INET;
		gai = getaddrinfo(host, port, &hints, &res);
	}
	if (gai != 0) {
		snprintf(err, errlen, "listen %s:%s: %s", listen_host,
		    port, gai_strerror(gai));
		return -1;
	}
	int fd = -1, saved = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1, zero = 0;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && host == NULL)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, CAP_LISTEN_BACKLOG) == 0 && io_socket_setup(fd) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "listen %s:%s: %s", listen_host,
		    port, strerror(saved));
	return fd;
}

/* The address actually bound ("127.0.0.1:41234"), for the log: with port 0
 * the system picks it, and tests read it from this line. */
static void
bound_address(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
	    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, len, "?");
		return;
	}
	snprintf(out, len, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

int
main(int argc, char **argv)
{
	const char *path = "config.ini";
	int test_only = 0, ch;
	char err[1024];

	/* Before getopt, which knows no long options: a probe is a program of
	 * its own (no configuration, no log set-up). */
	if (argc >= 2 && strcmp(argv[1], "--probe") == 0) {
		if (argc != 3) {
			usage(stderr);
			return 2;
		}
		return probe(argv[2]);
	}
	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		case 'V':
			printf("llmproxy %s\n", LLMPROXY_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	struct config *cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "llmproxy: %s\n", err);
		return 1;
	}
	log_set_level(cfg->log_level);
	/* The format first, so that even the notices are in it; no access
	 * file is made for -t. */
	if (log_access_setup(test_only ? NULL : cfg->access_file,
	    cfg->log_json) < 0) {
		fprintf(stderr, "llmproxy: access_file %s: %s\n", cfg->access_file,
		    strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < cfg->nnotices; i++)
		log_warnx("%s", cfg->notices[i]);
	/* The PEM files are part of the configuration: a bad one stops the
	 * start, and -t reports it. */
	struct tlsconf *tls = tlsconf_load(cfg, err, sizeof(err));
	if (tls == NULL) {
		fprintf(stderr, "llmproxy: %s\n", err);
		return 1;
	}
	if (test_only) {
		printf("configuration OK\n");
		tlsconf_unref(tls);
		config_free(cfg);
		return 0;
	}

	/* Signals are taken by this thread alone, with sigwait(); every thread
	 * started after this inherits the mask.  A peer that goes away must
	 * never kill the process: SIGPIPE is ignored (sends use MSG_NOSIGNAL
	 * anyway). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The metrics first: the backend table takes its series from them. */
	if (metrics_init(cfg) < 0) {
		log_error("out of memory");
		return 1;
	}
	int fd = listen_on(cfg->listen_host, cfg->listen_port, err, sizeof(err));
	if (fd < 0) {
		log_error("%s", err);
		return 1;
	}
	int mfd = -1;
	if (cfg->metrics_enabled && cfg->metrics_listen_port[0] != '\0') {
		mfd = listen_on(cfg->metrics_listen_host, cfg->metrics_listen_port,
		    err, sizeof(err));
		if (mfd < 0) {
			log_error("[metrics] %s", err);
			return 1;
		}
	}
	/* Before the first request: records left in the spool by an earlier
	 * run are on their way again. */
	/* This first tlsconf is kept for the life of the process (this
	 * reference is never dropped): the webhook senders, bound at start,
	 * verify against its anchors. */
	webhook_set_trust(tlsconf_trust(tls, ""));
	if (webhook_start(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (server_start(cfg, tls) < 0)
		return 1;
	if (pool_start(cfg->threads, fd, cfg->server_tls, mfd) < 0) {
		log_warn("cannot start the waiting room thread");
		return 1;
	}
	char addr[128];
	if (mfd >= 0) {
		bound_address(mfd, addr, sizeof(addr));
		log_info("metrics on %s%s", addr, cfg->metrics_path);
	}
	bound_address(fd, addr, sizeof(addr));
	log_info("llmproxy %s listening on %s%s, %zu backend%s, %d threads",
	    LLMPROXY_VERSION, addr, cfg->server_tls ? " (TLS)" : "", cfg->nbackends,
	    cfg->nbackends == 1 ? "" : "s", cfg->threads);

	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: reloading %s", path);
			(void)server_reload(path);
			continue;
		}
		struct server *now = server_acquire();
		int timeout_ms = now->cfg->shutdown_timeout_ms;
		server_release(now);
		log_info("%s: no new connections; %d ms for requests in flight",
		    sig == SIGINT ? "SIGINT" : "SIGTERM", timeout_ms);
		int left = pool_drain(timeout_ms);
		if (left > 0)
			log_warnx("shutdown_timeout: %d request%s cut short", left,
			    left == 1 ? "" : "s");
		/* Pending usage records: a moment to deliver, then on disk. */
		webhook_stop(1000);
		health_stop();
		log_info("exiting");
		return 0;
	}
}
