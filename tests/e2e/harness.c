/*
 * harness.c — processes, a recording HTTP client, and condition waits for
 * the end-to-end suites.  See harness.h.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
now_ms(void)
{
	return now_us() / 1000;
}

/* A short pause inside a wait loop; every loop also has a deadline. */
static void
pause_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

int64_t
time_bound(int64_t bound)
{
	const char *s = getenv("E2E_TIME_SCALE");
	long scale = s != NULL ? strtol(s, NULL, 10) : 1;

	return bound * (scale >= 1 && scale <= 100 ? scale : 1);
}

/* Program paths for argv, which wants char *. */
static char default_llmproxy[] = "./llmproxy";
static char default_mock[] = "build/tests/mock_upstream";
static char default_tmp[] = "/tmp";

static char *
env_or(const char *name, char *fallback)
{
	char *v = getenv(name);
	return v != NULL && *v ? v : fallback;
}

/* ---- processes ------------------------------------------------------------------ */

void
make_temp_dir(char *out, size_t cap, const char *what)
{
	snprintf(out, cap, "%s/llmproxy-e2e-%s.XXXXXX", env_or("TMPDIR", default_tmp), what);
	ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

static void
spawn(struct proc *p, char *const argv[])
{
	pid_t parent = getpid();
	p->pid = fork();
	ck_assert_msg(p->pid >= 0, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		/* Never outlive the test that started us. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int err = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0 || err < 0)
			_exit(127);
		dup2(out, 1);
		dup2(err, 2);
		/* execvp: a wrapper (LLMPROXY_WRAPPER) may be named without
		 * its path; a path is used as it is. */
		execvp(argv[0], argv);
		_exit(127);
	}
}

void
proc_spawn(struct proc *p, char *const argv[])
{
	spawn(p, argv);
}

int
proc_exited(struct proc *p)
{
	if (p->pid <= 0)
		return 1;
	if (waitpid(p->pid, NULL, WNOHANG) != p->pid)
		return 0;
	p->pid = 0;
	return 1;
}

void
proc_stop(struct proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	int64_t deadline = now_ms() + 3000;
	while (now_ms() < deadline) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			return;
		}
		pause_ms(5);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

/* Removes a process's temp dir (its files are one level deep), unless
 * E2E_KEEP is set: then the logs stay for a post-mortem. */
static void
remove_dir_of(const char *file)
{
	char dir[256], path[512];

	if (getenv("E2E_KEEP") != NULL)
		return;
	snprintf(dir, sizeof(dir), "%s", file);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	static const char *const files[] = { "out", "err", "log", "config.ini" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int
exited(const struct proc *p)
{
	int status;
	return waitpid(p->pid, &status, WNOHANG) == p->pid;
}

int
file_count(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

size_t
receiver_count(const struct receiver *rv, const char *client_id, char *out,
    size_t cap)
{
	char want[256], **lines, *block;
	size_t n, hits = 0;

	snprintf(want, sizeof(want), "\"client_request_id\":\"%s\"", client_id);
	n = receiver_records(rv, &lines, &block);
	for (size_t i = 0; i < n; i++)
		if (strstr(lines[i], want) != NULL && hits++ == 0 && out != NULL)
			snprintf(out, cap, "%s", lines[i]);
	free(lines);
	free(block);
	return hits;
}

int
wait_file_contains(const char *path, const char *needle, int timeout_ms,
    char *line, size_t line_cap)
{
	int64_t deadline = now_ms() + timeout_ms;
	static char buf[1 << 20];

	for (;;) {
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			char *hit = strstr(buf, needle);
			if (hit != NULL) {
				if (line != NULL) {
					char *start = hit;
					while (start > buf && start[-1] != '\n')
						start--;
					size_t len = strcspn(start, "\n");
					if (len >= line_cap)
						len = line_cap - 1;
					memcpy(line, start, len);
					line[len] = '\0';
				}
				return 0;
			}
		}
		if (now_ms() >= deadline)
			return -1;
		pause_ms(5);
	}
}

/* The port at the end of "... listening on 127.0.0.1:PORT ...". */
static int
port_of(const char *line)
{
	const char *p = strstr(line, "listening on ");
	if (p == NULL)
		return -1;
	p += strlen("listening on ");
	const char *colon = NULL;
	for (; *p && *p != ' ' && *p != ','; p++)
		if (*p == ':')
			colon = p;
	return colon ? atoi(colon + 1) : -1;
}

void
mock_start(struct mock *m)
{
	mock_start_on(m, 0);
}

void
mock_start_on(struct mock *m, int port)
{
	char dir[128], line[512], listen[64];

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	char *argv[] = { env_or("MOCK_BIN", default_mock),
	    "--listen", listen, NULL };

	memset(m, 0, sizeof(*m));
	make_temp_dir(dir, sizeof(dir), "mock");
	snprintf(m->proc.out_path, sizeof(m->proc.out_path), "%s/out", dir);
	snprintf(m->proc.err_path, sizeof(m->proc.err_path), "%s/err", dir);
	spawn(&m->proc, argv);
	ck_assert_msg(wait_file_contains(m->proc.out_path, "listening on", 5000,
	    line, sizeof(line)) == 0, "mock_upstream did not start");
	m->port = port_of(line);
	ck_assert_int_gt(m->port, 0);
	if (port != 0)
		ck_assert_int_eq(m->port, port);
}

void
mock_kill9(struct mock *m)
{
	if (m->proc.pid > 0) {
		kill(m->proc.pid, SIGKILL);
		waitpid(m->proc.pid, NULL, 0);
		m->proc.pid = 0;
	}
	remove_dir_of(m->proc.out_path);
}

int
dead_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ck_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	return ntohs(sa.sin_port);
}

void
rm_rf_dir(const char *dir)
{
	char cmd[512];

	if (getenv("E2E_KEEP") != NULL || strstr(dir, "llmproxy-e2e-") == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- the webhook receiver ------------------------------------------------------ */

static char default_receiver[] = "build/tests/webhook_receiver";

void
receiver_start(struct receiver *rv, int port, const char *records_path)
{
	char dir[128], line[512], listen[64];

	memset(&rv->proc, 0, sizeof(rv->proc));
	make_temp_dir(dir, sizeof(dir), "receiver");
	snprintf(rv->proc.out_path, sizeof(rv->proc.out_path), "%s/out", dir);
	snprintf(rv->proc.err_path, sizeof(rv->proc.err_path), "%s/err", dir);
	if (records_path != rv->records_path) {
		if (records_path != NULL)
			snprintf(rv->records_path, sizeof(rv->records_path), "%s",
			    records_path);
		else
			snprintf(rv->records_path, sizeof(rv->records_path),
			    "%s/records", dir);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	char *argv[] = { env_or("RECEIVER_BIN", default_receiver), "--listen",
	    listen, "--out", rv->records_path, NULL };
	spawn(&rv->proc, argv);
	ck_assert_msg(wait_file_contains(rv->proc.out_path, "listening on", 5000,
	    line, sizeof(line)) == 0, "webhook_receiver did not start");
	rv->port = port_of(line);
	ck_assert_int_gt(rv->port, 0);
}

void
receiver_stop(struct receiver *rv)
{
	proc_stop(&rv->proc);
}

void
receiver_control(const struct receiver *rv, const char *query)
{
	char req[512];
	struct response r;

	snprintf(req, sizeof(req), "POST /control?%s HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", query);
	ck_assert_int_eq(http_exchange(rv->port, req, &r, 3000), 0);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
}

size_t
receiver_records(const struct receiver *rv, char ***lines, char **block)
{
	FILE *f = fopen(rv->records_path, "r");
	size_t n = 0, len = 0, cap = 0;
	char *buf = NULL;

	*lines = NULL;
	*block = NULL;
	if (f == NULL)
		return 0;
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + got + 1 > cap) {
			cap = (len + got + 1) * 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		memcpy(buf + len, chunk, got);
		len += got;
	}
	fclose(f);
	if (buf == NULL)
		return 0;
	buf[len] = '\0';
	/* Only whole lines: the receiver may be writing the last one. */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n')
			n++;
	*lines = calloc(n + 1, sizeof(char *));
	ck_assert_ptr_nonnull(*lines);
	size_t k = 0;
	char *p = buf;
	for (size_t i = 0; i < n; i++) {
		char *nl = strchr(p, '\n');
		*nl = '\0';
		(*lines)[k++] = p;
		p = nl + 1;
	}
	*block = buf;
	return n;
}

size_t
receiver_wait_records(const struct receiver *rv, size_t n, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t got;

	for (;;) {
		char **lines, *block;
		got = receiver_records(rv, &lines, &block);
		free(lines);
		free(block);
		if (got >= n || now_ms() >= deadline)
			return got;
		pause_ms(5);
	}
}

void
receiver_wait_record(const struct receiver *rv, const char *id, char *out,
    size_t cap)
{
	char want[160];
	int64_t deadline = now_ms() + 10000;

	snprintf(want, sizeof(want), "\"client_request_id\":\"%s\"", id);
	for (;;) {
		char **lines, *block;
		size_t n = receiver_records(rv, &lines, &block), hits = 0;
		for (size_t i = 0; i < n; i++)
			if (strstr(lines[i], want) != NULL && hits++ == 0)
				snprintf(out, cap, "%s", lines[i]);
		free(lines);
		free(block);
		ck_assert_msg(hits <= 1, "record %s delivered %zu times", id, hits);
		if (hits == 1)
			return;
		ck_assert_msg(now_ms() < deadline, "no usage record for %s", id);
		pause_ms(5);
	}
}

void
proxy_kill9(struct proxy *px)
{
	if (px->proc.pid > 0) {
		kill(px->proc.pid, SIGKILL);
		waitpid(px->proc.pid, NULL, 0);
		px->proc.pid = 0;
	}
}

void
proxy_signal(struct proxy *px, int sig)
{
	ck_assert_int_gt(px->proc.pid, 0);
	kill(px->proc.pid, sig);
}

int
proxy_wait_exit(struct proxy *px, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;

	while (waitpid(px->proc.pid, &status, WNOHANG) != px->proc.pid) {
		if (now_ms() >= deadline)
			return -1;
		pause_ms(5);
	}
	px->proc.pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
mock_stop(struct mock *m)
{
	proc_stop(&m->proc);
	remove_dir_of(m->proc.out_path);
}

void
proxy_config(char *out, size_t cap, const struct mock *m, const char *extra)
{
	snprintf(out, cap,
	    "[server]\nlisten = 127.0.0.1:0\n\n"
	    "[backends.mock]\nurl = http://127.0.0.1:%d\n\n%s\n",
	    m->port, extra);
}

/*
 * $LLMPROXY_WRAPPER: words put before the proxy's command line, e.g.
 * "valgrind --error-exitcode=99 --leak-check=full" (make check-valgrind).
 * Split at spaces (no quoting); the first word is looked up in PATH.  Fills argv[0..) with the wrapper's words and
 * returns how many; 0 without a wrapper.
 */
#define WRAPPER_WORDS 24
static int
wrapper_argv(char **argv)
{
	static char words[1024];
	const char *w = getenv("LLMPROXY_WRAPPER");
	int n = 0;

	if (w == NULL || *w == '\0')
		return 0;
	ck_assert_msg(strlen(w) < sizeof(words), "LLMPROXY_WRAPPER too long");
	strcpy(words, w);
	for (char *save = NULL, *t = strtok_r(words, " ", &save); t != NULL;
	    t = strtok_r(NULL, " ", &save)) {
		ck_assert_msg(n < WRAPPER_WORDS, "LLMPROXY_WRAPPER: too many words");
		argv[n++] = t;
	}
	return n;
}

/* A wrapped proxy starts and stops slowly (valgrind: seconds). */
static int
wrapped(void)
{
	const char *w = getenv("LLMPROXY_WRAPPER");
	return w != NULL && *w != '\0';
}

int
proxy_start(struct proxy *px, const char *config_text)
{
	char line[512];
	char *argv[WRAPPER_WORDS + 4];
	int n;

	memset(px, 0, sizeof(*px));
	make_temp_dir(px->dir, sizeof(px->dir), "proxy");
	snprintf(px->config_path, sizeof(px->config_path), "%s/config.ini", px->dir);
	snprintf(px->proc.out_path, sizeof(px->proc.out_path), "%s/out", px->dir);
	snprintf(px->proc.err_path, sizeof(px->proc.err_path), "%s/log", px->dir);
	FILE *f = fopen(px->config_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(config_text, f);
	fclose(f);

	n = wrapper_argv(argv);
	argv[n++] = env_or("LLMPROXY_BIN", default_llmproxy);
	argv[n++] = "-c";
	argv[n++] = px->config_path;
	argv[n] = NULL;
	spawn(&px->proc, argv);
	int64_t deadline = now_ms() + (wrapped() ? 30000 : 5000);
	while (now_ms() < deadline) {
		if (wait_file_contains(px->proc.err_path, "listening on", 20,
		    line, sizeof(line)) == 0) {
			px->port = port_of(line);
			return px->port > 0 ? 0 : -1;
		}
		if (exited(&px->proc)) {
			px->proc.pid = 0;
			return -1;
		}
	}
	return -1;
}

void
proxy_start_ok(struct proxy *px, const char *config_text)
{
	if (proxy_start(px, config_text) == 0)
		return;
	char log[4096] = "";
	FILE *f = fopen(px->proc.err_path, "r");
	if (f != NULL) {
		size_t n = fread(log, 1, sizeof(log) - 1, f);
		log[n] = '\0';
		fclose(f);
	}
	ck_abort_msg("llmproxy did not start:\n%s", log);
}

void
proxy_stop(struct proxy *px)
{
	/*
	 * Under a wrapper the proxy must end on SIGTERM by itself, with
	 * status 0: valgrind reports errors and leaks at exit, through its
	 * exit status (--error-exitcode), and a SIGKILL would hide them.
	 */
	if (wrapped() && px->proc.pid > 0) {
		kill(px->proc.pid, SIGTERM);
		int status = proxy_wait_exit(px, 60000);
		ck_assert_msg(status == 0, "proxy under LLMPROXY_WRAPPER ended "
		    "with %d (see its log files)", status);
	}
	proc_stop(&px->proc);
	remove_dir_of(px->config_path);
}

int
run_llmproxy(char *const argv[], char *out, size_t cap)
{
	char dir[128];
	struct proc p;
	char *args[16];
	size_t n = 0;

	make_temp_dir(dir, sizeof(dir), "run");
	snprintf(p.out_path, sizeof(p.out_path), "%s/out", dir);
	snprintf(p.err_path, sizeof(p.err_path), "%s/out", dir);
	args[n++] = env_or("LLMPROXY_BIN", default_llmproxy);
	for (size_t i = 1; argv[i] != NULL && n < 15; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	/* stdout and stderr into one file: open it once, share it. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(p.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(args[0], args);
		_exit(127);
	}
	int status = 0;
	int64_t deadline = now_ms() + 10000;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("llmproxy did not exit");
		}
		pause_ms(2);
	}
	FILE *f = fopen(p.out_path, "r");
	size_t got = f ? fread(out, 1, cap - 1, f) : 0;
	out[got] = '\0';
	if (f)
		fclose(f);
	remove_dir_of(p.out_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- other programs ------------------------------------------------------------------ */

int
run_program(char *const argv[], const char *in, size_t in_len, char *out,
    size_t cap, int timeout_ms)
{
	char dir[128], in_path[256], out_path[256];

	make_temp_dir(dir, sizeof(dir), "run");
	snprintf(in_path, sizeof(in_path), "%s/in", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	FILE *f = fopen(in_path, "w");
	ck_assert_ptr_nonnull(f);
	/* fwrite's buffer must not be NULL, even for no bytes. */
	if (in_len > 0)
		ck_assert_uint_eq(fwrite(in, 1, in_len, f), in_len);
	ck_assert_int_eq(fclose(f), 0);

	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int i = open(in_path, O_RDONLY);
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (i < 0 || o < 0)
			_exit(127);
		dup2(i, 0);
		dup2(o, 1);
		dup2(o, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int status = 0;
	int64_t deadline = now_ms() + timeout_ms;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("%s did not exit within %d ms", argv[0],
			    timeout_ms);
		}
		pause_ms(2);
	}
	f = fopen(out_path, "r");
	size_t got = f != NULL ? fread(out, 1, cap - 1, f) : 0;
	out[got] = '\0';
	if (f != NULL)
		fclose(f);
	unlink(in_path);
	unlink(out_path);
	rmdir(dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- client ------------------------------------------------------------------------- */

int
tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	    "connect 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void
send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

void
send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

static void
append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	ck_assert_ptr_nonnull(*buf);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

int
response_header(const struct response *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = strstr(r->head, "\r\n");

	while (p != NULL && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t len = strcspn(v, "\r");
			if (out != NULL) {
				if (len >= cap)
					len = cap - 1;
				memcpy(out, v, len);
				out[len] = '\0';
			}
			return 1;
		}
		p = strstr(p, "\r\n");
	}
	return 0;
}

/* An independent little chunked decoder and SSE event-end finder: the
 * harness must not share the proxy's code. */
struct body_state {
	int stage;          /* 0 size line, 1 data, 2 data CRLF, 3 trailers, 4 done */
	size_t chunk_left;
	char line[256];
	size_t line_len;
	int at_line_start;  /* SSE: the current line is empty so far */
	char prev;
};

static void
note_events(struct response *r, struct body_state *st, size_t from, int64_t t)
{
	for (size_t i = from; i < r->body_len; i++) {
		char ch = r->body[i];
		if (ch == '\n' && st->prev == '\r') {
			st->prev = ch;
			if (r->nevents > 0 && r->event_end[r->nevents - 1] == i)
				r->event_end[r->nevents - 1] = i + 1;
			continue;
		}
		if (ch == '\r' || ch == '\n') {
			if (st->at_line_start && r->nevents < MAX_ARRIVALS) {
				r->event_us[r->nevents] = t;
				r->event_end[r->nevents++] = i + 1;
			}
			st->at_line_start = 1;
		} else {
			st->at_line_start = 0;
		}
		st->prev = ch;
	}
}

static void
add_body(struct response *r, struct body_state *st, const char *data, size_t n,
    int64_t t)
{
	size_t from = r->body_len;
	append(&r->body, &r->body_len, data, n);
	note_events(r, st, from, t);
}

static void
feed_chunked(struct response *r, struct body_state *st, const char *p, size_t n,
    int64_t t)
{
	size_t i = 0;
	while (i < n && st->stage != 4) {
		if (st->stage == 1) {
			size_t take = n - i < st->chunk_left ? n - i : st->chunk_left;
			add_body(r, st, p + i, take, t);
			st->chunk_left -= take;
			i += take;
			if (st->chunk_left == 0)
				st->stage = 2;
			continue;
		}
		char ch = p[i++];
		if (st->line_len < sizeof(st->line) - 1)
			st->line[st->line_len++] = ch;
		if (ch != '\n')
			continue;
		st->line[st->line_len] = '\0';
		if (st->stage == 0) {
			st->chunk_left = strtoul(st->line, NULL, 16);
			st->stage = st->chunk_left ? 1 : 3;
		} else if (st->stage == 2) {
			st->stage = 0;
		} else if (st->stage == 3 && st->line_len <= 2) {
			st->stage = 4;
			r->complete = 1;
		}
		st->line_len = 0;
	}
}

int
read_response(int fd, struct response *r, int timeout_ms, int head_request)
{
	int64_t deadline = now_ms() + timeout_ms;
	char buf[65536];
	char *acc = NULL;
	size_t acc_len = 0;
	struct body_state st = { .at_line_start = 1 };
	long long content_length = -1;
	int have_head = 0, no_body = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if (have_head) {
			if (r->complete)
				break;
			if (!r->chunked && content_length >= 0 &&
			    r->body_len >= (size_t)content_length) {
				r->complete = 1;
				break;
			}
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		int64_t t = now_us();
		if (n <= 0) {
			r->eof = 1;
			if (have_head && !r->chunked && content_length < 0 && !no_body)
				r->complete = 1;
			break;
		}
		if (have_head) {
			append(&r->raw, &r->raw_len, buf, (size_t)n);
			if (r->chunked)
				feed_chunked(r, &st, buf, (size_t)n, t);
			else
				add_body(r, &st, buf, (size_t)n, t);
			continue;
		}
		append(&acc, &acc_len, buf, (size_t)n);
		char *end;
		while (!have_head && (end = strstr(acc, "\r\n\r\n")) != NULL) {
			size_t hl = (size_t)(end - acc) + 4;
			int status = atoi(acc + 9);
			if (status >= 100 && status < 200) {
				/* interim response: skip it */
				memmove(acc, acc + hl, acc_len - hl + 1);
				acc_len -= hl;
				continue;
			}
			ck_assert_msg(hl < sizeof(r->head), "response head too large");
			memcpy(r->head, acc, hl);
			r->head[hl] = '\0';
			r->head_len = hl;
			r->head_us = t;
			r->status = status;
			have_head = 1;
			char v[64];
			r->chunked = response_header(r, "Transfer-Encoding", v, sizeof(v)) &&
			    strcasecmp(v, "chunked") == 0;
			if (response_header(r, "Content-Length", v, sizeof(v)))
				content_length = atoll(v);
			no_body = head_request || status == 204 || status == 304;
			if (no_body) {
				r->complete = 1;
				content_length = 0;
				r->chunked = 0;
			}
			size_t rest = acc_len - hl;
			if (rest > 0) {
				append(&r->raw, &r->raw_len, acc + hl, rest);
				if (r->chunked)
					feed_chunked(r, &st, acc + hl, rest, t);
				else
					add_body(r, &st, acc + hl, rest, t);
			}
		}
	}
	free(acc);
	if (!have_head) {
		/* Nothing for the caller to free when there is no response. */
		response_free(r);
		return -1;
	}
	if (r->body == NULL)
		append(&r->body, &r->body_len, "", 0);
	return 0;
}

void
response_free(struct response *r)
{
	free(r->body);
	free(r->raw);
	r->body = r->raw = NULL;
}

int
http_exchange(int port, const char *raw, struct response *r, int timeout_ms)
{
	int fd = tcp_connect(port);
	send_str(fd, raw);
	int rc = read_response(fd, r, timeout_ms, strncmp(raw, "HEAD ", 5) == 0);
	close(fd);
	return rc;
}

int
http_get(int port, const char *path, struct response *r, int timeout_ms)
{
	char req[2048];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Connection: close\r\n\r\n", path);
	if (http_exchange(port, req, r, timeout_ms) < 0)
		return -1;
	return r->status;
}

void
chat_request(char *out, size_t cap, const char *extra_headers, const char *body)
{
	snprintf(out, cap,
	    "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\n"
	    "%s"
	    "Content-Length: %zu\r\n\r\n%s",
	    extra_headers, strlen(body), body);
}

int64_t
wait_closed(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return now_ms();
	}
}

/* ---- mock control ------------------------------------------------------------------- */

int
mock_get(const struct mock *m, const char *path, char *out, size_t cap)
{
	char req[512];
	struct response r;

	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (http_exchange(m->port, req, &r, 3000) < 0)
		return -1;
	size_t n = r.body_len < cap - 1 ? r.body_len : cap - 1;
	memcpy(out, r.body, n);
	out[n] = '\0';
	int status = r.status;
	response_free(&r);
	return status;
}

long
json_int(const char *json, const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return strtol(p, NULL, 10);
}

int
json_str(const char *json, const char *key, char *out, size_t cap)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (p == NULL)
		return 0;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p++ != '"')
		return 0;
	size_t n = strcspn(p, "\"");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 1;
}

int
mock_wait_state(const struct mock *m, const char *id, const char *state,
    int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char path[256], body[4096], got[64];

	snprintf(path, sizeof(path), "/mock/request?id=%s", id);
	for (;;) {
		if (mock_get(m, path, body, sizeof(body)) == 200 &&
		    json_str(body, "state", got, sizeof(got)) &&
		    strcmp(got, state) == 0)
			return 0;
		if (now_ms() >= deadline)
			return -1;
		pause_ms(2);
	}
}

/* POST path on the mock; asserts 200. */
static void
mock_post(const struct mock *m, const char *path)
{
	char req[1024];
	struct response r;

	snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", path);
	ck_assert_int_eq(http_exchange(m->port, req, &r, 3000), 0);
	ck_assert_msg(r.status == 200, "POST %s: %d %s", path, r.status, r.body);
	response_free(&r);
}

void
mock_clear(const struct mock *m)
{
	mock_post(m, "/mock/reset");
}

void
mock_defaults(const struct mock *m, const char *query)
{
	char path[768];

	snprintf(path, sizeof(path), "/mock/defaults%s%s", *query ? "?" : "",
	    query);
	mock_post(m, path);
}

long
mock_stat(const struct mock *m, const char *key)
{
	char body[4096];
	if (mock_get(m, "/mock/stats", body, sizeof(body)) != 200)
		return -1;
	return json_int(body, key);
}

struct mock_seen
mock_seen(const struct mock *m)
{
	struct mock_seen s = { mock_stat(m, "requests"),
	    file_count(m->proc.err_path, "malformed request") };
	ck_assert_int_ge(s.requests, 0);
	return s;
}

void
mock_assert_saw_nothing(const struct mock *m, struct mock_seen before,
    const char *what)
{
	struct mock_seen now = mock_seen(m);
	ck_assert_msg(now.requests == before.requests,
	    "%s: the backend received %ld request(s)", what,
	    now.requests - before.requests);
	ck_assert_msg(now.malformed == before.malformed,
	    "%s: the backend received a request it found malformed", what);
}
