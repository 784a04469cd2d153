/*
 * main.c — flags, configuration, the listening socket, signals.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"
#include "io.h"
#include "llmproxy.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "webhook.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: llmproxy [-t] [-c FILE]\n"
	    "  -c FILE  configuration file (default: config.ini)\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n");
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
	if (test_only) {
		printf("configuration OK\n");
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

	static struct server srv;
	srv.cfg = cfg;
	if (bal_init(&srv.backends, cfg) < 0) {
		log_error("out of memory");
		return 1;
	}
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
	if (webhook_start(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (health_start(&srv.backends) < 0) {
		log_warn("cannot start the health check thread");
		return 1;
	}
	if (pool_start(&srv, fd, mfd) < 0) {
		log_warn("cannot start the waiting room thread");
		return 1;
	}
	char addr[128];
	if (mfd >= 0) {
		bound_address(mfd, addr, sizeof(addr));
		log_info("metrics on %s%s", addr, cfg->metrics_path);
	}
	bound_address(fd, addr, sizeof(addr));
	log_info("llmproxy %s listening on %s, %zu backend%s, %d threads",
	    LLMPROXY_VERSION, addr, cfg->nbackends, cfg->nbackends == 1 ? "" : "s",
	    cfg->threads);

	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: configuration reload is not available yet");
			continue;
		}
		log_info("%s: no new connections; %d ms for requests in flight",
		    sig == SIGINT ? "SIGINT" : "SIGTERM", cfg->shutdown_timeout_ms);
		int left = pool_drain(cfg->shutdown_timeout_ms);
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
