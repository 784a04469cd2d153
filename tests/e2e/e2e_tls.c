/*
 * e2e_tls.c — TLS through the real llmproxy binary, against independent TLS
 * peers (OpenSSL in each):
 *
 *   https backends   stunnel in front of the mock, one service per
 *                    certificate (tests/tls/mkcerts.sh): RSA by the test CA
 *                    (reached by IP address: IP SAN), EC by the test CA
 *                    (reached as localhost: DNS SAN), one by an untrusted CA,
 *                    one for another name, an expired one;
 *   https webhook    stunnel in front of the webhook receiver;
 *   TLS listener     [server.tls] with an EC leaf under an intermediate CA
 *                    (a chain in cert_file), read by curl and by Python's ssl
 *                    (tests/tls/https_client.py), which reports each read.
 *
 * $TLS_CERTS is the certificate directory (the Makefile makes it).
 */
#define _GNU_SOURCE     /* memmem */
#include <check.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *certs;
static char dir[128];

static struct mock mock;
static struct receiver receiver;
static struct proc stunnel;
static struct proxy proxy;

/* stunnel services, in this order. */
enum { S_GOOD, S_EC, S_UNTRUSTED, S_WRONG, S_EXPIRED, S_WEBHOOK, NSERV };
static const char *const serv_cert[NSERV] = { "rsa", "ec", "untrusted",
    "wrongname", "expired", "rsa" };
static int serv_port[NSERV];

static int
can_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((unsigned short)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void
start_stunnel(void)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stunnel.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "foreground = yes\npid =\ndebug = 4\n");
	for (int i = 0; i < NSERV; i++) {
		serv_port[i] = dead_port();
		fprintf(f, "[s%d]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
		    "cert = %s/%s.pem\nkey = %s/%s.key\n", i, serv_port[i],
		    i == S_WEBHOOK ? receiver.port : mock.port, certs,
		    serv_cert[i], certs, serv_cert[i]);
	}
	fclose(f);
	snprintf(stunnel.out_path, sizeof(stunnel.out_path), "%s/stunnel.out", dir);
	snprintf(stunnel.err_path, sizeof(stunnel.err_path), "%s/stunnel.err", dir);
	char *argv[] = { "/usr/bin/stunnel4", path, NULL };
	proc_spawn(&stunnel, argv);
	int64_t deadline = now_ms() + 5000;
	for (int i = 0; i < NSERV; i++)
		while (!can_connect(serv_port[i])) {
			ck_assert_msg(now_ms() < deadline && !proc_exited(&stunnel),
			    "stunnel did not start (see %s)", stunnel.err_path);
			usleep(10000);
		}
}

static void
setup(void)
{
	char cfg[8192];

	certs = getenv("TLS_CERTS");
	ck_assert_msg(certs != NULL, "TLS_CERTS: the directory of tests/tls/mkcerts.sh");
	make_temp_dir(dir, sizeof(dir), "tls");
	mock_start(&mock);
	receiver_start(&receiver, 0, NULL);
	start_stunnel();
	snprintf(cfg, sizeof(cfg),
	    "[server]\nlisten = 127.0.0.1:0\nread_timeout = 1s\n"
	    "[server.tls]\nenabled = true\ncert_file = %s/chain.pem\nkey_file = %s/chain.key\n"
	    "[tls]\nca_file = %s/ca.pem\n"
	    "[routing.retry]\nenabled = false\n"
	    "[health_check]\nenabled = false\n"
	    "[backends.good]\nurl = https://127.0.0.1:%d\nmodels = good\n"
	    "[backends.ec]\nurl = https://localhost:%d/\nmodels = ec\n"
	    "[backends.untrusted]\nurl = https://127.0.0.1:%d\nmodels = untrusted\n"
	    "[backends.wrong]\nurl = https://127.0.0.1:%d\nmodels = wrong\n"
	    "[backends.expired]\nurl = https://localhost:%d\nmodels = expired\n"
	    "[backends.lab]\nurl = https://127.0.0.1:%d\nmodels = lab\ntls_verify = false\n"
	    "[usage.reporters.0]\nname = billing\n"
	    "[usage.reporters.0.webhook]\nurl = https://localhost:%d/usage\n",
	    certs, certs, certs, serv_port[S_GOOD], serv_port[S_EC],
	    serv_port[S_UNTRUSTED], serv_port[S_WRONG], serv_port[S_EXPIRED],
	    serv_port[S_UNTRUSTED], serv_port[S_WEBHOOK]);
	proxy_start_ok(&proxy, cfg);
}

static void
teardown(void)
{
	proxy_stop(&proxy);
	proc_stop(&stunnel);
	receiver_stop(&receiver);
	mock_stop(&mock);
	rm_rf_dir(dir);
}

/* ---- clients ---------------------------------------------------------------------- */

static char *
cert(const char *name)
{
	static char path[2][512];
	static int k;

	k ^= 1;
	snprintf(path[k], sizeof(path[k]), "%s/%s", certs, name);
	return path[k];
}

/*
 * curl to the TLS listener, verifying it against the test CA as localhost:
 * POST /v1/chat/completions with body.  Returns the status; the body in
 * out.
 */
static int
curl_chat(const char *body, char *out, size_t cap)
{
	char url[128], resolve[64], wfmt[] = "\n%{http_code}", data[512];
	char *argv[] = { "/usr/bin/curl", "-sS", "--max-time", "10",
	    "--cacert", cert("ca.pem"), "--resolve", resolve,
	    "-H", "Content-Type: application/json", "-d", data,
	    "-w", wfmt, url, NULL };

	snprintf(data, sizeof(data), "%s", body);
	snprintf(url, sizeof(url), "https://localhost:%d/v1/chat/completions",
	    proxy.port);
	snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", proxy.port);
	int rc = run_program(argv, NULL, 0, out, cap, 15000);
	ck_assert_msg(rc == 0, "curl exited %d: %s", rc, out);
	char *nl = strrchr(out, '\n');
	ck_assert_ptr_nonnull(nl);
	*nl = '\0';
	return atoi(nl + 1);
}

static const char *
chat_body(const char *model, int stream)
{
	static char b[256];

	snprintf(b, sizeof(b), "{\"model\":\"%s\",\"stream\":%s,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model,
	    stream ? "true" : "false");
	return b;
}

/* ---- https backends ------------------------------------------------------------------ */

START_TEST(plain_and_stream_through_https_backends)
{
	static char out[65536];
	static const char *const models[] = { "good", "ec", "lab" };

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(curl_chat(chat_body(models[i], 0), out,
		    sizeof(out)), 200);
		ck_assert_msg(strstr(out, "\"chat.completion\"") != NULL, "%s", out);
		ck_assert_int_eq(curl_chat(chat_body(models[i], 1), out,
		    sizeof(out)), 200);
		ck_assert_msg(strstr(out, " tok5") != NULL &&
		    strstr(out, "data: [DONE]\n\n") != NULL, "%s", out);
	}
	/* tls_verify = false is said at start. */
	ck_assert(wait_file_contains(proxy.proc.err_path,
	    "[backends.lab] tls_verify = false", 10, NULL, 0) == 0);
}
END_TEST

START_TEST(bad_certificates_refused_with_502)
{
	static const struct {
		const char *model, *reason;
	} bad[] = {
		{ "untrusted", "TLS with backend untrusted failed: certificate not trusted" },
		{ "wrong", "TLS with backend wrong failed: certificate does not match the host name" },
		{ "expired", "TLS with backend expired failed: certificate expired" },
	};
	static char out[8192];

	mock_clear(&mock);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(curl_chat(chat_body(bad[i].model, 1), out,
		    sizeof(out)), 502);
		ck_assert_msg(strstr(out, bad[i].reason) != NULL &&
		    strstr(out, "\"type\":\"upstream_error\"") != NULL, "%s", out);
	}
	/* Nothing of a request reached the backend. */
	ck_assert_int_eq(mock_stat(&mock, "requests"), 0);
}
END_TEST

/* The keep-alive cache keeps TLS connections: stunnel opens one backend
 * connection per TLS connection, so the mock's connection count is the
 * number of TLS connections. */
START_TEST(tls_connections_reused)
{
	static char out[65536];

	/* One warm-up, so a connection is parked. */
	ck_assert_int_eq(curl_chat(chat_body("good", 0), out, sizeof(out)), 200);
	mock_clear(&mock);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(curl_chat(chat_body("good", i & 1), out,
		    sizeof(out)), 200);
	ck_assert_int_eq(mock_stat(&mock, "requests"), 5);
	ck_assert_msg(mock_stat(&mock, "connections") == 1,
	    "5 requests used %ld TLS connections", mock_stat(&mock, "connections"));
}
END_TEST

/* ---- the TLS listener ------------------------------------------------------------------- */

/* Runs https_client.py with a streamed request carrying headers; its
 * output into out. */
static void
py_stream(const char *headers, int abort_after, char *out, size_t cap)
{
	char req[4096], reqfile[512], port[16], ab[16];
	char *argv[] = { "/usr/bin/env", "python3", "tests/tls/https_client.py",
	    port, cert("ca.pem"), reqfile, abort_after ? ab : NULL, NULL };
	FILE *f;

	chat_request(req, sizeof(req), headers, chat_body("good", 1));
	snprintf(reqfile, sizeof(reqfile), "%s/req", dir);
	f = fopen(reqfile, "w");
	ck_assert_ptr_nonnull(f);
	fputs(req, f);
	fclose(f);
	snprintf(port, sizeof(port), "%d", proxy.port);
	snprintf(ab, sizeof(ab), "%d", abort_after);
	int rc = run_program(argv, NULL, 0, out, cap, 20000);
	ck_assert_msg(rc == 0, "https_client.py exited %d: %s", rc, out);
}

START_TEST(listener_stream_one_read_per_event)
{
	static char out[65536];
	const int tokens = 10;

	py_stream("X-Mock-Tokens: 10\r\nX-Mock-Delay-Ms: 50\r\n"
	    "X-Mock-Timestamps: 1\r\n", 0, out, sizeof(out));
	ck_assert_msg(strncmp(out, "STATUS 200\n", 11) == 0, "%s", out);
	ck_assert_msg(strstr(out, "\nEND ") != NULL, "%s", out);

	int stamped = 0, events = 0;
	long long worst = 0, first = -1, last = -1;
	for (char *l = strstr(out, "READ "); l != NULL; l = strstr(l + 1, "\nREAD ")) {
		long long t, stamp, stamp0;
		int bytes, n;
		if (*l == '\n')
			l++;
		ck_assert_int_eq(sscanf(l, "READ %lld %d %d %lld %lld", &t, &bytes,
		    &n, &stamp, &stamp0), 5);
		events += n;
		if (stamp < 0)
			continue;
		/* One read per event: events the backend sent 50 ms apart never
		 * share a read (one TLS record each, flushed as it left); only
		 * what left the backend together may (the role event and the
		 * first token, the last token and [DONE]). */
		ck_assert_msg(stamp - stamp0 < 5000, "events sent %lld us apart "
		    "arrived in one read:\n%s", stamp - stamp0, out);
		stamped++;
		if (t - stamp > worst)
			worst = t - stamp;
		if (first < 0)
			first = t;
		last = t;
	}
	ck_assert_msg(stamped == tokens, "%d reads for %d tokens:\n%s", stamped,
	    tokens, out);
	ck_assert_int_ge(events, tokens + 1);
	ck_assert_msg(worst < 5000, "an event waited %lld us in transit", worst);
	ck_assert_msg(last - first >= (tokens - 1) * 50 * 1000 - 5000,
	    "events bunched: %lld us apart", last - first);
}
END_TEST

START_TEST(listener_client_abort_stops_backend)
{
	static char out[8192];
	char body[1024];

	py_stream("X-Request-Id: tls-abort\r\nX-Mock-Tokens: 100\r\n"
	    "X-Mock-Delay-Ms: 100\r\n", 3, out, sizeof(out));
	char *c = strstr(out, "CLOSED ");
	ck_assert_msg(c != NULL, "%s", out);
	long long closed = atoll(c + 7);
	ck_assert_msg(mock_wait_state(&mock, "tls-abort", "aborted", 2000) == 0,
	    "the backend was not told that the client left");
	ck_assert_int_eq(mock_get(&mock, "/mock/request?id=tls-abort", body,
	    sizeof(body)), 200);
	long gone = json_int(body, "client_gone_ms");
	ck_assert_msg(gone - closed < 100, "upstream closed %lld ms after the client",
	    (long long)(gone - closed));
}
END_TEST

START_TEST(listener_refuses_plain_http)
{
	struct response r;

	/* Plain HTTP on the TLS port: no HTTP answer, the connection ends. */
	int fd = tcp_connect(proxy.port);
	send_str(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(read_response(fd, &r, 3000, 0), -1);
	close(fd);
	/* And the listener still serves. */
	static char out[65536];
	ck_assert_int_eq(curl_chat(chat_body("good", 0), out, sizeof(out)), 200);
}
END_TEST

/* A client that never finishes its handshake is dropped at read_timeout
 * (1 s here), and meanwhile others are served: the handshake runs a step
 * at a time in the waiting room, never waiting there. */
START_TEST(listener_slow_handshake_dropped)
{
	static char out[65536];
	int silent = tcp_connect(proxy.port);
	int partial = tcp_connect(proxy.port);
	int64_t t0 = now_ms();

	/* A TLS record header announcing a ClientHello that never comes. */
	send_all(partial, "\x16\x03\x01\x02\x00\x01", 6);
	ck_assert_int_eq(curl_chat(chat_body("good", 0), out, sizeof(out)), 200);
	int64_t t1 = wait_closed(silent, 5000), t2 = wait_closed(partial, 5000);
	ck_assert_msg(t1 >= 0 && t2 >= 0, "a stalled handshake was not dropped");
	ck_assert_msg(t1 - t0 >= 900 && t1 - t0 < 2500, "dropped after %lld ms",
	    (long long)(t1 - t0));
	ck_assert_msg(t2 - t0 >= 900 && t2 - t0 < 2500, "dropped after %lld ms",
	    (long long)(t2 - t0));
	close(silent);
	close(partial);
}
END_TEST

/* Health probes speak https too: a backend whose certificate fails is down,
 * with the reason in the log; a good one stays up. */
START_TEST(health_probes_over_https)
{
	struct proxy px;
	char cfg[4096], line[1024];

	snprintf(cfg, sizeof(cfg),
	    "[server]\nlisten = 127.0.0.1:0\n"
	    "[tls]\nca_file = %s/ca.pem\n"
	    "[health_check]\nenabled = true\ninterval = 1s\ntimeout = 1s\n"
	    "unhealthy_threshold = 1\n"
	    "[backends.good]\nurl = https://127.0.0.1:%d\n"
	    "[backends.wrong]\nurl = https://127.0.0.1:%d\n",
	    certs, serv_port[S_GOOD], serv_port[S_WRONG]);
	proxy_start_ok(&px, cfg);
	ck_assert_msg(wait_file_contains(px.proc.err_path, "backend wrong is down",
	    8000, line, sizeof(line)) == 0, "the wrong-name backend stayed up");
	ck_assert_msg(strstr(line, "certificate does not match the host name") != NULL,
	    "%s", line);
	ck_assert_msg(mock_stat(&mock, "health_requests") > 0,
	    "no probe reached the good backend");
	ck_assert(wait_file_contains(px.proc.err_path, "backend good is down", 10,
	    NULL, 0) != 0);
	proxy_stop(&px);
}
END_TEST

/* A certificate that fails is a backend failure like a refused connection:
 * the request goes to the next backend.  (This listener has an RSA key,
 * certificate and key in one file: RSA signing on the waiting room's
 * stack.) */
START_TEST(bad_certificate_fails_over)
{
	struct proxy px;
	char cfg[4096];
	static char out[65536];
	struct proxy saved = proxy;

	snprintf(cfg, sizeof(cfg),
	    "[server]\nlisten = 127.0.0.1:0\n"
	    "[server.tls]\nenabled = true\ncert_file = %s/both.pem\nkey_file = %s/both.pem\n"
	    "[tls]\nca_file = %s/ca.pem\n"
	    "[health_check]\nenabled = false\n"
	    "[routing.retry]\nenabled = true\nmax_retries = 1\ninitial_wait = 0s\n"
	    "[backends.untrusted]\nurl = https://127.0.0.1:%d\n"
	    "[backends.good]\nurl = https://127.0.0.1:%d\n",
	    certs, certs, certs, serv_port[S_UNTRUSTED], serv_port[S_GOOD]);
	proxy_start_ok(&px, cfg);
	proxy = px;             /* curl_chat talks to `proxy` */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(curl_chat(chat_body("any", i & 1), out, sizeof(out)), 200);
	proxy = saved;
	ck_assert(wait_file_contains(px.proc.err_path,
	    "TLS with backend untrusted failed: certificate not trusted", 10, NULL, 0) == 0);
	ck_assert(wait_file_contains(px.proc.err_path,
	    "backend untrusted failed before answering; trying good", 10, NULL, 0) == 0);
	proxy_stop(&px);
}
END_TEST

/* `llmproxy --probe https://...` (the container's HEALTHCHECK) works on the
 * TLS listener. */
START_TEST(probe_over_https)
{
	char url[128], out[1024];
	char *argv[] = { "llmproxy", "--probe", url, NULL };

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/health", proxy.port);
	ck_assert_msg(run_llmproxy(argv, out, sizeof(out)) == 0, "%s", out);
	/* And against a plain listener it fails, saying so. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/health", mock.port);
	ck_assert_int_eq(run_llmproxy(argv, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "TLS with 127.0.0.1:") != NULL, "%s", out);
}
END_TEST

/* The subject CN of the certificate the listener at port serves (curl -v
 * says it), into cn. */
static void
served_cn(int port, char *cn, size_t cap)
{
	char url[128], resolve[64], out[16384];
	char *argv[] = { "/usr/bin/curl", "-sv", "--max-time", "10", "--cacert",
	    cert("ca.pem"), "--resolve", resolve, "-o", "/dev/null", url, NULL };

	snprintf(url, sizeof(url), "https://localhost:%d/health", port);
	snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", port);
	ck_assert_msg(run_program(argv, NULL, 0, out, sizeof(out), 15000) == 0,
	    "%s", out);
	char *p = strstr(out, "subject: CN=");
	ck_assert_msg(p != NULL, "%s", out);
	p += 12;
	size_t n = strcspn(p, "\r\n;,");
	snprintf(cn, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

/* Writes the proxy's config file anew, sends SIGHUP, waits for what the log
 * says (the n-th time). */
static void
reload_with(struct proxy *px, const char *text, const char *outcome)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", px->config_path);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, px->config_path), 0);
	proxy_signal(px, SIGHUP);
	ck_assert_msg(wait_file_contains(px->proc.err_path, outcome, 5000, NULL,
	    0) == 0, "no '%s' in the log after SIGHUP", outcome);
}

/* SIGHUP reads the PEM files again: a rotated certificate is served to new
 * connections; one that cannot be used keeps the configuration in force. */
START_TEST(reload_rotates_the_certificate)
{
	struct proxy px;
	char cfg[2048], cn[64];
	static const char fmt[] = "[server]\nlisten = 127.0.0.1:%d\n"
	    "[server.tls]\nenabled = true\ncert_file = %s/%s.pem\nkey_file = %s/%s.key\n"
	    "[backends.m]\nurl = http://127.0.0.1:%d\n";

	snprintf(cfg, sizeof(cfg), fmt, 0, certs, "rsa", certs, "rsa", mock.port);
	proxy_start_ok(&px, cfg);
	served_cn(px.port, cn, sizeof(cn));
	ck_assert_str_eq(cn, "rsa");
	snprintf(cfg, sizeof(cfg), fmt, px.port, certs, "ec", certs, "ec", mock.port);
	reload_with(&px, cfg, "configuration reloaded from");
	served_cn(px.port, cn, sizeof(cn));
	ck_assert_str_eq(cn, "ec");
	/* A key that does not match: refused, the EC certificate stays. */
	snprintf(cfg, sizeof(cfg), fmt, px.port, certs, "rsa", certs, "ec", mock.port);
	reload_with(&px, cfg, "private key does not match");
	ck_assert(wait_file_contains(px.proc.err_path,
	    "the configuration in force stays", 10, NULL, 0) == 0);
	served_cn(px.port, cn, sizeof(cn));
	ck_assert_str_eq(cn, "ec");
	proxy_stop(&px);
}
END_TEST

/* ---- https webhook ------------------------------------------------------------------------ */

START_TEST(https_webhook_receives_records)
{
	static char out[65536];
	char **lines, *block;

	size_t before = receiver_wait_records(&receiver, 0, 0);
	ck_assert_int_eq(curl_chat(chat_body("good", 1), out, sizeof(out)), 200);
	ck_assert_int_eq(curl_chat(chat_body("ec", 0), out, sizeof(out)), 200);
	ck_assert_uint_ge(receiver_wait_records(&receiver, before + 2, 5000),
	    before + 2);
	size_t n = receiver_records(&receiver, &lines, &block);
	ck_assert_uint_ge(n, 2);
	ck_assert_msg(strstr(lines[n - 1], "\"backend\":\"ec\"") != NULL ||
	    strstr(lines[n - 2], "\"backend\":\"ec\"") != NULL, "%s", lines[n - 1]);
	free(lines);
	free(block);
}
END_TEST

/* ---- bad files: configuration errors, -t too ---------------------------------------------- */

/* Copies tmpl into out with every '@' replaced by the certificate dir. */
static void
subst(char *out, size_t cap, const char *tmpl)
{
	size_t n = 0, cl = strlen(certs);

	for (; *tmpl != '\0' && n + cl + 1 < cap; tmpl++) {
		if (*tmpl == '@') {
			memcpy(out + n, certs, cl);
			n += cl;
		} else {
			out[n++] = *tmpl;
		}
	}
	out[n] = '\0';
}

START_TEST(bad_pem_files_are_config_errors)
{
	/* needle: the line in ini (the file has 2 lines before it), then
	 * the rest of the message after "FILE:LINE". */
	static const struct {
		const char *ini;
		int line;
		const char *needle;
	} cases[] = {
		{ "[server.tls]\nenabled = true\ncert_file = @/nope.pem\nkey_file = @/rsa.key\n",
		  3, ": [server.tls] cert_file: @/nope.pem: cannot open" },
		{ "[server.tls]\nenabled = true\ncert_file = @/rsa.pem\nkey_file = @/ec.key\n",
		  4, ": [server.tls] key_file: @/ec.key: private key does not match" },
		{ "[server.tls]\nenabled = true\ncert_file = @/rsa.key\nkey_file = @/rsa.key\n",
		  3, ": [server.tls] cert_file: @/rsa.key: no certificate" },
		{ "[tls]\nca_file = @/rsa.key\n[backends.x]\nurl = https://h\n",
		  2, ": [tls] ca_file: @/rsa.key: no certificate" },
		{ "[backends.x]\nurl = https://h\ntls_ca_file = @/none.pem\n",
		  3, ": [backends] x tls_ca_file: @/none.pem: cannot open" },
	};
	char ini[2048], path[256], out[4096], needle[512], want[800];

	snprintf(path, sizeof(path), "%s/bad.ini", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		subst(ini, sizeof(ini), cases[i].ini);
		fprintf(f, "[server]\nlisten = 127.0.0.1:0\n%s%s", ini,
		    strstr(ini, "[backends.") ? "" : "[backends.a]\nurl = http://a\n");
		fclose(f);
		subst(needle, sizeof(needle), cases[i].needle);
		snprintf(want, sizeof(want), "%s:%d%s", path, cases[i].line + 2, needle);
		for (int t = 0; t < 2; t++) {
			char *argv_t[] = { "llmproxy", "-t", "-c", path, NULL };
			char *argv_r[] = { "llmproxy", "-c", path, NULL };
			int rc = run_llmproxy(t ? argv_t : argv_r, out, sizeof(out));
			ck_assert_msg(rc == 1, "case %zu: exit %d: %s", i, rc, out);
			ck_assert_msg(strstr(out, want) != NULL, "case %zu: want\n%s\ngot\n%s",
			    i, want, out);
		}
	}
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("e2e_tls");
	TCase *tc = tcase_create("tls");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plain_and_stream_through_https_backends);
	tcase_add_test(tc, bad_certificates_refused_with_502);
	tcase_add_test(tc, tls_connections_reused);
	tcase_add_test(tc, bad_certificate_fails_over);
	tcase_add_test(tc, listener_stream_one_read_per_event);
	tcase_add_test(tc, listener_client_abort_stops_backend);
	tcase_add_test(tc, listener_refuses_plain_http);
	tcase_add_test(tc, listener_slow_handshake_dropped);
	tcase_add_test(tc, health_probes_over_https);
	tcase_add_test(tc, probe_over_https);
	tcase_add_test(tc, reload_rotates_the_certificate);
	tcase_add_test(tc, https_webhook_receives_records);
	tcase_add_test(tc, bad_pem_files_are_config_errors);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tls_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
