/*
 * e2e_cli.c — the command line of the real llmproxy binary: -V, -h, bad
 * flags, -t with good and bad configuration files (every error names the
 * file and the line), the default config.ini in the current directory, and
 * a start that must fail before it listens; `--probe URL`, the health check
 * a scratch container runs (exit 0 on 2xx, 1 otherwise, 2 for a bad url).
 *
 * Each run captures stdout and stderr apart, in its own temp dir, so that
 * "usage on stderr" and "configuration OK on stdout" are what is checked.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

/* ---- running the binary ---------------------------------------------------------- */

static char bin[PATH_MAX];

/* The binary as an absolute path: runs happen in other directories. */
static void
find_binary(void)
{
	const char *b = getenv("LLMPROXY_BIN");

	if (b == NULL || *b == '\0')
		b = "./llmproxy";
	ck_assert_msg(realpath(b, bin) != NULL, "%s: %s", b, strerror(errno));
}

static void
make_dir(char *out, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, cap, "%s/llmproxy-e2e-cli.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
remove_dir(const char *dir)
{
	static const char *const names[] = { "stdout", "stderr", "config.ini", "good.ini",
	    "bad.ini", "other.ini", "five.ini" };
	char path[512];

	if (getenv("E2E_KEEP") != NULL)
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

struct run {
	int status;             /* exit status; 128 + signal when killed */
	char out[16384];
	char err[16384];
};

static void
slurp(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f != NULL ? fread(out, 1, cap - 1, f) : 0;

	out[n] = '\0';
	if (f != NULL)
		fclose(f);
}

/*
 * Runs llmproxy with the given arguments (NULL-terminated) in directory dir,
 * stdout and stderr into dir/stdout and dir/stderr.  A run that has not
 * ended after 5 s is killed and fails the test: every run here must end on
 * its own.
 */
static void
run_in(const char *dir, struct run *r, ...)
{
	char *argv[16], outp[512], errp[512];
	size_t n = 0;
	va_list ap;

	argv[n++] = bin;
	va_start(ap, r);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 15; )
		argv[n++] = (char *)(uintptr_t)a;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/stdout", dir);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0 || chdir(dir) < 0)
			_exit(127);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, argv);
		_exit(127);
	}
	int status = 0;
	int64_t deadline = now_ms() + 5000;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			slurp(errp, r->err, sizeof(r->err));
			ck_abort_msg("llmproxy %s did not exit within 5 s; stderr:\n%s",
			    argv[1] != NULL ? argv[1] : "", r->err);
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	slurp(outp, r->out, sizeof(r->out));
	slurp(errp, r->err, sizeof(r->err));
}

static const char good_ini[] =
    "; a working configuration\n"
    "[server]\n"
    "listen = 127.0.0.1:0\n"
    "threads = 4\n"
    "read_timeout = 30s\n"
    "idle_timeout = 2m\n"
    "max_header_bytes = 16k\n"
    "max_body_size = 1MB\n"
    "\n"
    "[backends.gpu1]\n"
    "url = http://127.0.0.1:8000\n"
    "weight = 2\n"
    "\n"
    "[routing]\n"
    "connect_timeout = 500ms\n"
    "first_token_timeout = 1m30s\n"
    "idle_timeout = 30s\n"
    "timeout = 0\n";

/* A fixture per test: a fresh directory, the binary found. */
static char dir[256];

static void
setup(void)
{
	find_binary();
	make_dir(dir, sizeof(dir));
}

static void
teardown(void)
{
	remove_dir(dir);
}

/* ---- flags ------------------------------------------------------------------------- */

START_TEST(version)
{
	struct run r;

	run_in(dir, &r, "-V", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "llmproxy " LLMPROXY_VERSION "\n");
	ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(help)
{
	struct run r;

	run_in(dir, &r, "-h", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strncmp(r.out, "usage: llmproxy", 15) == 0, "%s", r.out);
	static const char *const flags[] = { "-c FILE", "-t", "-V", "-h", "config.ini",
	    "--probe URL" };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		ck_assert_msg(strstr(r.out, flags[i]) != NULL, "usage does not mention %s:\n%s",
		    flags[i], r.out);
	ck_assert_str_eq(r.err, "");
}
END_TEST

/* Anything the program does not understand: usage on stderr, exit 2, and
 * nothing else happens (no config is read: there is none here). */
static const char *const bad_args[][3] = {
	{ "-x", NULL, NULL },
	{ "--config", "x.ini", NULL },
	{ "-c", NULL, NULL },
	{ "extra-operand", NULL, NULL },
	{ "-t", "stray", NULL },
};

START_TEST(bad_arguments_give_usage_and_exit_2)
{
	const char *const *a = bad_args[_i];
	struct run r;

	run_in(dir, &r, a[0], a[1], a[2], NULL);
	ck_assert_msg(r.status == 2, "%s %s: exit %d", a[0], a[1] ? a[1] : "", r.status);
	ck_assert_msg(strstr(r.err, "usage: llmproxy") != NULL, "stderr:\n%s", r.err);
	ck_assert_str_eq(r.out, "");
}
END_TEST

/* ---- -t ------------------------------------------------------------------------------ */

START_TEST(check_good_config)
{
	struct run r;

	write_file(dir, "good.ini", good_ini);
	run_in(dir, &r, "-t", "-c", "good.ini", NULL);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");
}
END_TEST

/* -t checks; it does not bind: the listen address may be in use by the
 * instance being replaced. */
START_TEST(check_does_not_listen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char ini[512];
	struct run r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(ini, sizeof(ini), "[server]\nlisten = 127.0.0.1:%d\n[backends.a]\n"
	    "url = http://127.0.0.1:8000\n", ntohs(sa.sin_port));
	write_file(dir, "good.ini", ini);

	run_in(dir, &r, "-t", "-c", "good.ini", NULL);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");

	/* ...while a real start on it fails at once, saying why. */
	run_in(dir, &r, "-c", "good.ini", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "listening on") == NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "in use") != NULL, "no reason given:\n%s", r.err);
	close(fd);
}
END_TEST

/*
 * Every error names the file and the line to blame ("bad.ini:LINE:"), and
 * what is wrong with it (`needle`).  Line 1 is "[server]", line 2 the listen
 * key, line 3 "[backends.a]", line 4 its url; the text under test starts at
 * line 5 unless it says otherwise.
 */
static const char base_ini[] =
    "[server]\n"
    "listen = 127.0.0.1:0\n"
    "[backends.a]\n"
    "url = http://127.0.0.1:8000\n";

static const struct {
	const char *ini;        /* the whole file when full, else after base_ini */
	int full;
	int line;
	const char *needle;
} bad_configs[] = {
	/* the brief's case: an unknown key on line 4 */
	{ "[server]\nlisten = 127.0.0.1:0\n\nlisten_adress = :8080\n"
	  "[backends.a]\nurl = http://127.0.0.1:8000\n", 1, 4, "listen_adress" },
	{ "bogus_key = 1\n", 0, 5, "bogus_key" },
	{ "[backends.b]\nurl = http://127.0.0.1:8001\nwieght = 2\n", 0, 7, "wieght" },
	{ "[routing]\nfirst_token_timout = 1s\n", 0, 6, "first_token_timout" },
	{ "[nonsense]\nx = 1\n", 0, 5, "nonsense" },
	{ "[server]\nthreads = many\n", 0, 6, "threads" },
	{ "[server]\nthreads = 0\n", 0, 6, "threads" },
	{ "[server]\nread_timeout = 30\n", 0, 6, "read_timeout" },
	{ "[server]\nmax_body_size = lots\n", 0, 6, "max_body_size" },
	{ "[routing]\nconnect_timeout = -1s\n", 0, 6, "connect_timeout" },
	{ "[backends.b]\nurl = ftp://127.0.0.1/\n", 0, 6, "url" },
	{ "[server]\nlisten = 8080\n", 0, 6, "listen" },
	{ "[auth]\nenabled = true\n", 0, 6, "auth" },
	{ "[server.tls]\nenabled = true\n", 0, 6, "tls" },
};

START_TEST(check_bad_config_names_file_and_line)
{
	char ini[1024], want[64];
	struct run r;

	if (bad_configs[_i].full)
		snprintf(ini, sizeof(ini), "%s", bad_configs[_i].ini);
	else
		snprintf(ini, sizeof(ini), "%s%s", base_ini, bad_configs[_i].ini);
	write_file(dir, "bad.ini", ini);
	run_in(dir, &r, "-t", "-c", "bad.ini", NULL);
	ck_assert_msg(r.status != 0, "accepted:\n%s", ini);
	ck_assert_msg(strstr(r.out, "configuration OK") == NULL, "%s", r.out);
	snprintf(want, sizeof(want), "bad.ini:%d:", bad_configs[_i].line);
	ck_assert_msg(strstr(r.err, want) != NULL, "want %s in:\n%s", want, r.err);
	ck_assert_msg(strstr(r.err, bad_configs[_i].needle) != NULL, "want %s in:\n%s",
	    bad_configs[_i].needle, r.err);
}
END_TEST

START_TEST(check_missing_file)
{
	struct run r;

	run_in(dir, &r, "-t", "-c", "no-such-file.ini", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "no-such-file.ini") != NULL, "%s", r.err);
	ck_assert(strstr(r.out, "configuration OK") == NULL);
}
END_TEST

/* LLMProxy sections llmproxy does not use are named once as ignored; the
 * file is still fine. */
START_TEST(check_llmproxy_sections_ignored_with_notice)
{
	char ini[1024];
	struct run r;

	snprintf(ini, sizeof(ini), "%s[storage]\ntype = sqlite\npath = ./data.db\n"
	    "[admin]\nenabled = true\n", base_ini);
	write_file(dir, "good.ini", ini);
	run_in(dir, &r, "-t", "-c", "good.ini", NULL);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");
	ck_assert_msg(strstr(r.err, "good.ini:5:") != NULL && strstr(r.err, "[storage]") != NULL,
	    "no notice for [storage]:\n%s", r.err);
	ck_assert_msg(strstr(r.err, "ignored") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "[admin]") != NULL, "no notice for [admin]:\n%s", r.err);
	/* Named once, not once per key. */
	const char *first = strstr(r.err, "[storage]");
	ck_assert_msg(strstr(first + 1, "[storage]") == NULL, "named twice:\n%s", r.err);
}
END_TEST

/* ---- the default file: config.ini in the current directory ------------------------- */

START_TEST(default_config_is_config_ini_here)
{
	struct run r;

	run_in(dir, &r, "-t", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "config.ini") != NULL, "%s", r.err);

	write_file(dir, "config.ini", good_ini);
	run_in(dir, &r, "-t", NULL);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");

	char ini[1024];
	snprintf(ini, sizeof(ini), "%stypo = 1\n", base_ini);
	write_file(dir, "config.ini", ini);
	run_in(dir, &r, "-t", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "config.ini:5:") != NULL, "%s", r.err);
}
END_TEST

/* ---- starting with a bad configuration --------------------------------------------- */

START_TEST(start_with_bad_config_fails_before_listening)
{
	char ini[1024];
	struct run r;

	snprintf(ini, sizeof(ini), "%s[server]\nthreads = none\n", base_ini);
	write_file(dir, "bad.ini", ini);
	run_in(dir, &r, "-c", "bad.ini", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "bad.ini:6:") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "listening on") == NULL, "%s", r.err);

	/* No configuration at all is no default proxy either. */
	run_in(dir, &r, NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, "config.ini") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "listening on") == NULL, "%s", r.err);
}
END_TEST

/* ---- the shipped example ------------------------------------------------------------- */

/* config.ini.example documents every key; its first five lines alone make a
 * working proxy (the tests run from the top of the tree). */
START_TEST(example_config_checks)
{
	char cwd[PATH_MAX], path[PATH_MAX + 32], five[4096];
	struct run r;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	snprintf(path, sizeof(path), "%s/config.ini.example", cwd);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	size_t n = 0;
	for (int line = 0; line < 5 && fgets(five + n, (int)(sizeof(five) - n), f) != NULL;
	    line++)
		n += strlen(five + n);
	fclose(f);

	run_in(dir, &r, "-t", "-c", path, NULL);
	ck_assert_msg(r.status == 0, "config.ini.example: exit %d:\n%s", r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");

	write_file(dir, "five.ini", five);
	run_in(dir, &r, "-t", "-c", "five.ini", NULL);
	ck_assert_msg(r.status == 0, "the first five lines:\n%s\nexit %d:\n%s", five,
	    r.status, r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");
}
END_TEST

/* ---- --probe URL: the container's HEALTHCHECK -------------------------------------- */

/* Runs `llmproxy --probe URL` (in dir, where there is no config.ini: a probe
 * reads none). */
static void
probe_run(struct run *r, const char *url)
{
	run_in(dir, r, "--probe", url, NULL);
}

/* A healthy proxy: exit 0, nothing said; the same through the other forms
 * of a url the probe accepts. */
START_TEST(probe_healthy_proxy)
{
	struct mock m;
	struct proxy px;
	char cfg[1024], url[256];
	struct run r;

	mock_start(&m);
	proxy_config(cfg, sizeof(cfg), &m, "");
	proxy_start_ok(&px, cfg);

	static const char *const forms[][2] = {       /* before and after the port */
		{ "http://127.0.0.1:", "/health" },
		{ "HTTP://127.0.0.1:", "/health" },
		{ "http://127.0.0.1:", "/health?from=docker" },
		{ "http://localhost:", "/health" },
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(url, sizeof(url), "%s%d%s", forms[i][0], px.port, forms[i][1]);
		probe_run(&r, url);
		ck_assert_msg(r.status == 0, "%s: exit %d:\n%s", url, r.status, r.err);
		ck_assert_str_eq(r.out, "");
		ck_assert_str_eq(r.err, "");
	}

	/* A path the proxy does not serve: 404, exit 1, one line naming both. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", px.port);
	probe_run(&r, url);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, url) != NULL && strstr(r.err, "404") != NULL, "%s", r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line:\n%s",
	    r.err);
	/* No path at all is "/": also not served. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", px.port);
	probe_run(&r, url);
	ck_assert_msg(r.status == 1 && strstr(r.err, "404") != NULL, "exit %d: %s", r.status,
	    r.err);

	/* A stopped proxy: refused, exit 1. */
	proxy_stop(&px);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", px.port);
	probe_run(&r, url);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "refused") != NULL, "%s", r.err);
	mock_stop(&m);
}
END_TEST

START_TEST(probe_dead_port)
{
	char url[128];
	struct run r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", dead_port());
	probe_run(&r, url);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strncmp(r.err, "llmproxy: probe ", 16) == 0 &&
	    strstr(r.err, "refused") != NULL, "%s", r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line:\n%s",
	    r.err);
}
END_TEST

/* What the probe sends: a GET of exactly the path and query, and the answer
 * decides — 2xx is healthy, anything else is not, whatever the body. */
START_TEST(probe_status_decides)
{
	struct mock m;
	char url[256], last[4096], target[256];
	struct run r;

	mock_start(&m);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/probe-echo?a=1&b=%%20", m.port);
	probe_run(&r, url);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	ck_assert_int_eq(mock_get(&m, "/mock/last", last, sizeof(last)), 200);
	ck_assert_msg(json_str(last, "method", target, sizeof(target)) &&
	    strcmp(target, "GET") == 0, "%s", last);
	ck_assert_msg(json_str(last, "target", target, sizeof(target)) &&
	    strcmp(target, "/v1/probe-echo?a=1&b=%20") == 0, "%s", last);

	static const struct {
		const char *health;     /* X-Mock-Health for the mock's /health */
		int exit;
		const char *needle;
	} cases[] = {
		{ "200", 0, "" },
		{ "204", 0, "" },
		{ "503", 1, "status 503" },
		{ "500", 1, "status 500" },
		{ "301", 1, "status 301" },
		{ "close-before-head", 1, "llmproxy: probe" },
		{ "reset-before-head", 1, "llmproxy: probe" },
		{ "garbage", 1, "llmproxy: probe" },
	};
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", m.port);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char q[64];
		snprintf(q, sizeof(q), "X-Mock-Health=%s", cases[i].health);
		mock_defaults(&m, q);
		probe_run(&r, url);
		ck_assert_msg(r.status == cases[i].exit, "%s: exit %d:\n%s", cases[i].health,
		    r.status, r.err);
		ck_assert_msg(strstr(r.err, cases[i].needle) != NULL, "%s: %s", cases[i].health,
		    r.err);
		ck_assert_str_eq(r.out, "");
	}
	mock_stop(&m);
}
END_TEST

/* A server that accepts and never answers: exit 1 after about 2 s, not
 * Docker's own 30 s timeout. */
START_TEST(probe_times_out)
{
	struct mock m;
	char url[128];
	struct run r;

	mock_start(&m);
	mock_defaults(&m, "X-Mock-Health=stall-head");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", m.port);
	int64_t t0 = now_ms();
	probe_run(&r, url);
	int64_t took = now_ms() - t0;
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "timed out") != NULL || strstr(r.err, "deadline") != NULL ||
	    strstr(r.err, "time") != NULL, "%s", r.err);
	ck_assert_msg(took >= 1900 && took < 3500, "took %lld ms", (long long)took);
	mock_stop(&m);
}
END_TEST

/* [IPv6]:PORT, when this machine has ::1. */
START_TEST(probe_ipv6_literal)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return;         /* no IPv6 loopback here */
	}
	close(fd);

	struct mock m;
	struct proxy px;
	char cfg[1024], url[128];
	struct run r;

	mock_start(&m);
	snprintf(cfg, sizeof(cfg), "[server]\nlisten = [::1]:0\n[backends.a]\n"
	    "url = http://127.0.0.1:%d\n", m.port);
	proxy_start_ok(&px, cfg);
	snprintf(url, sizeof(url), "http://[::1]:%d/health", px.port);
	probe_run(&r, url);
	ck_assert_msg(r.status == 0, "%s: exit %d:\n%s", url, r.status, r.err);
	ck_assert_str_eq(r.err, "");
	proxy_stop(&px);
	mock_stop(&m);
}
END_TEST

/* A url the probe cannot use is a mistake in the HEALTHCHECK line, not an
 * unhealthy server: usage on stderr, exit 2, nothing connected to. */
static const struct {
	const char *url;
	const char *needle;
} bad_probe_urls[] = {
	{ "", "http[s]://HOST" },
	{ "127.0.0.1:8080/health", "http[s]://HOST" },
	{ "ftp://127.0.0.1/health", "http[s]://HOST" },
	{ "httpx://127.0.0.1:8443/health", "http[s]://HOST" },
	{ "http://", "no host" },
	{ "http:///health", "no host" },
	{ "http://:8080/health", "no host" },
	{ "http://127.0.0.1:/health", "bad port" },
	{ "http://127.0.0.1:0/health", "bad port" },
	{ "http://127.0.0.1:65536/health", "bad port" },
	{ "http://127.0.0.1:123456/health", "bad port" },
	{ "http://127.0.0.1:80x/health", "bad port" },
	{ "http://127.0.0.1:-1/health", "bad port" },
	{ "http://user:pw@127.0.0.1/health", "user@" },
	{ "http://[::1/health", "]" },
	{ "http://[::1]x/health", "]" },
	{ "http://[]:80/health", "no host" },
	{ "http://bad host/health", "host" },
	{ "http://127.0.0.1:8080/he alth", "path" },
	{ "http://127.0.0.1:8080/health\r\nX: y", "path" },
	{ "http://127.0.0.1:8080/%zz", "path" },
	{ "http://127.0.0.1:8080/health#top", "fragment" },
};

START_TEST(probe_bad_url_is_usage_error)
{
	struct run r;

	probe_run(&r, bad_probe_urls[_i].url);
	ck_assert_msg(r.status == 2, "\"%s\": exit %d:\n%s", bad_probe_urls[_i].url, r.status,
	    r.err);
	ck_assert_msg(strstr(r.err, "usage: llmproxy") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, bad_probe_urls[_i].needle) != NULL, "\"%s\": want %s in:\n%s",
	    bad_probe_urls[_i].url, bad_probe_urls[_i].needle, r.err);
	ck_assert_str_eq(r.out, "");
}
END_TEST

START_TEST(probe_needs_exactly_one_url)
{
	struct run r;

	run_in(dir, &r, "--probe", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "usage: llmproxy") != NULL, "%s", r.err);
	run_in(dir, &r, "--probe", "http://127.0.0.1:1/health", "extra", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "usage: llmproxy") != NULL, "%s", r.err);
	/* Only as the first argument; elsewhere it is an unknown flag. */
	run_in(dir, &r, "-t", "--probe", "http://127.0.0.1:1/health", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_str_eq(r.out, "");
}
END_TEST

static Suite *
cli_suite(void)
{
	Suite *s = suite_create("e2e_cli");
	TCase *t = tcase_create("cli");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, version);
	tcase_add_test(t, help);
	tcase_add_loop_test(t, bad_arguments_give_usage_and_exit_2, 0,
	    (int)(sizeof(bad_args) / sizeof(bad_args[0])));
	tcase_add_test(t, check_good_config);
	tcase_add_test(t, check_does_not_listen);
	tcase_add_loop_test(t, check_bad_config_names_file_and_line, 0,
	    (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
	tcase_add_test(t, check_missing_file);
	tcase_add_test(t, check_llmproxy_sections_ignored_with_notice);
	tcase_add_test(t, default_config_is_config_ini_here);
	tcase_add_test(t, start_with_bad_config_fails_before_listening);
	tcase_add_test(t, example_config_checks);
	tcase_add_test(t, probe_healthy_proxy);
	tcase_add_test(t, probe_dead_port);
	tcase_add_test(t, probe_status_decides);
	tcase_add_test(t, probe_times_out);
	tcase_add_test(t, probe_ipv6_literal);
	tcase_add_loop_test(t, probe_bad_url_is_usage_error, 0,
	    (int)(sizeof(bad_probe_urls) / sizeof(bad_probe_urls[0])));
	tcase_add_test(t, probe_needs_exactly_one_url);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
