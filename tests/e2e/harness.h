/*
 * harness.h — what the end-to-end suites share: starting the real llmproxy
 * binary and the mock backend on loopback ports, a raw HTTP client that
 * records when each byte arrived, and waiting on conditions with deadlines
 * (never a bare sleep).
 *
 * Binaries come from $LLMPROXY_BIN and $MOCK_BIN (the Makefile sets them).
 * Every failure is a Check assertion.
 */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- time and waiting ------------------------------------------------------ */

/* CLOCK_MONOTONIC: system-wide, so the mock's timestamps compare with ours. */
int64_t now_us(void);
int64_t now_ms(void);

/* An upper bound on a latency (any unit): `bound` times $E2E_TIME_SCALE,
 * 1 when unset.  The instrumented runs (make check-tsan, check-valgrind) set
 * it, since everything there is several times slower; a plain run keeps the
 * bound the test states. */
int64_t time_bound(int64_t bound);

/* ---- processes -------------------------------------------------------------- */

struct proc {
	pid_t pid;
	char out_path[256];     /* its stdout */
	char err_path[256];     /* its stderr */
};

/* The mock backend, listening on 127.0.0.1:port. */
struct mock {
	struct proc proc;
	int port;
};

/* llmproxy, with its config file and stderr (the log) in a temp dir. */
struct proxy {
	struct proc proc;
	int port;
	char dir[128];
	char config_path[256];
};

void mock_start(struct mock *m);
/* Starts it on `port` (0: any free one; the port of a mock stopped earlier
 * to bring that backend back at the same address). */
void mock_start_on(struct mock *m, int port);
void mock_stop(struct mock *m);
/* SIGKILL, no goodbye (a backend that crashed); m->port is kept, so
 * mock_start_on(m, m->port) brings it back. */
void mock_kill9(struct mock *m);

/* A loopback port nobody listens on (bound, then closed): connections to it
 * are refused. */
int dead_port(void);

/* The webhook receiver ($RECEIVER_BIN): records what it acknowledged, one
 * per line, in its out file. */
struct receiver {
	struct proc proc;
	int port;
	char records_path[256];
};

/* Starts it on `port` (0: any free one; a port of an earlier run to come
 * back "up" on the same address), keeping records_path if given (NULL: a new
 * file). */
void receiver_start(struct receiver *rv, int port, const char *records_path);
void receiver_stop(struct receiver *rv);
/* POST /control?query ("status=503", "delay_ms=3000", "reset=1"). */
void receiver_control(const struct receiver *rv, const char *query);
/* The acknowledged records, each a NUL-terminated line in one malloc'd
 * block: *lines[i]; returns the count (free(*lines) and free(*block)). */
size_t receiver_records(const struct receiver *rv, char ***lines, char **block);
/* Waits until at least n records were acknowledged; returns the count seen
 * (less than n at the deadline). */
size_t receiver_wait_records(const struct receiver *rv, size_t n, int timeout_ms);

/* Waits (10 s at most) for the one record of the request sent with
 * X-Request-Id `id` (its client_request_id: the record's request_id is the
 * proxy's own) and copies it into out; fails the test if it does not come,
 * or comes twice. */
void receiver_wait_record(const struct receiver *rv, const char *id, char *out,
    size_t cap);

/* SIGKILL, no goodbye: for tests of what survives a crash. */
void proxy_kill9(struct proxy *px);

/* Sends sig to the proxy without waiting. */
void proxy_signal(struct proxy *px, int sig);
/* Waits for the proxy to exit; returns its exit status, or -1 if it was still
 * running at the deadline. */
int proxy_wait_exit(struct proxy *px, int timeout_ms);

/* Writes config_text to a file and starts `llmproxy -c FILE`, waiting for its
 * "listening on" line.  Returns 0, or -1 if it exited instead (its stderr is
 * then in px->proc.err_path). */
int proxy_start(struct proxy *px, const char *config_text);
/* proxy_start, asserting success. */
void proxy_start_ok(struct proxy *px, const char *config_text);
void proxy_stop(struct proxy *px);

/* A temp dir for a test's own files (a spool, say); removed by rm_rf_dir. */
void make_temp_dir(char *out, size_t cap, const char *what);
void rm_rf_dir(const char *dir);

/* A minimal config: listen on 127.0.0.1:0, one backend at the mock, plus
 * `extra` (more sections / keys, may be ""). */
void proxy_config(char *out, size_t cap, const struct mock *m, const char *extra);

/* Runs llmproxy with argv (NULL-terminated, argv[0] ignored) to completion,
 * capturing stdout+stderr into out.  Returns the exit status. */
int run_llmproxy(char *const argv[], char *out, size_t cap);

/* Waits until the file contains needle; copies the line into line (if not
 * NULL).  Returns 0, or -1 at the deadline. */
int wait_file_contains(const char *path, const char *needle, int timeout_ms,
    char *line, size_t line_cap);

/* How many times needle occurs in the file (0 when it cannot be read; the
 * first MiB is read). */
int file_count(const char *path, const char *needle);

/* How many acknowledged records the receiver holds for the request sent
 * with X-Request-Id client_id, the first copied into out when out is not
 * NULL. */
size_t receiver_count(const struct receiver *rv, const char *client_id,
    char *out, size_t cap);

/* ---- other programs ------------------------------------------------------------ */

/* Starts argv[0] (a path) with stdout into p->out_path and stderr into
 * p->err_path, which the caller sets; it is killed when the test ends. */
void proc_spawn(struct proc *p, char *const argv[]);
/* SIGTERM, SIGKILL after 3 s if need be; reaps it.  A no-op once stopped. */
void proc_stop(struct proc *p);
/* Whether it has exited (reaped then; p->pid is 0 after). */
int proc_exited(struct proc *p);

/*
 * Runs argv (argv[0] a path) to completion with in[0..in_len) on its stdin,
 * its stdout and stderr together into out (NUL-terminated, cut at cap - 1).
 * Returns the exit status: 127 when it could not be executed, 128 + signal
 * when killed; killed and failed at the deadline.
 */
int run_program(char *const argv[], const char *in, size_t in_len, char *out,
    size_t cap, int timeout_ms);

/* ---- client ------------------------------------------------------------------- */

int tcp_connect(int port);
void send_all(int fd, const void *buf, size_t n);
void send_str(int fd, const char *s);

#define MAX_ARRIVALS 4096

struct response {
	int status;
	char head[16384];
	size_t head_len;
	char *body;             /* de-chunked */
	size_t body_len;
	int chunked;
	int complete;           /* ended as framed: final chunk, or Content-Length
	                           bytes, or (close-delimited) EOF */
	int eof;                /* the server closed the connection */
	int64_t head_us;        /* when the head was complete */
	/* When each complete SSE event (ending in a blank line) arrived. */
	size_t nevents;
	int64_t event_us[MAX_ARRIVALS];
	size_t event_end[MAX_ARRIVALS];   /* body offset after the event */
	/* Raw bytes after the head as received (chunk framing included). */
	char *raw;
	size_t raw_len;
};

/*
 * Reads one response from fd: head, then the body by its framing.  For a
 * response to HEAD pass head_request.  Stops at the end of the message, at EOF
 * or at the deadline (timeout_ms from now).  Returns 0 when a head was read,
 * -1 when none arrived (EOF or timeout before a complete head).
 */
int read_response(int fd, struct response *r, int timeout_ms, int head_request);
void response_free(struct response *r);

/* The value of a response header (first match, case-insensitive) copied into
 * out; returns 1 if present. */
int response_header(const struct response *r, const char *name, char *out,
    size_t cap);

/* Sends a raw request on a new connection, reads one response, closes. */
int http_exchange(int port, const char *raw, struct response *r, int timeout_ms);

/* GET path on 127.0.0.1:port with "Connection: close" into r; returns the
 * status, or -1 when no response head came before the deadline. */
int http_get(int port, const char *path, struct response *r, int timeout_ms);

/* Builds a streaming chat completion request with extra header lines
 * (each ending in \r\n, may be "") and the given JSON body. */
void chat_request(char *out, size_t cap, const char *extra_headers,
    const char *body);

/* Waits until the peer closes fd (read returns 0 or an error).  Returns the
 * time it happened, or -1 at the deadline. */
int64_t wait_closed(int fd, int timeout_ms);

/* ---- the mock's control endpoints ------------------------------------------- */

/* GET path on the mock (direct, not through the proxy) into out; returns the
 * status. */
int mock_get(const struct mock *m, const char *path, char *out, size_t cap);
/* An integer member of a flat JSON object ("connections"), or -1. */
long json_int(const char *json, const char *key);
/* A string member into out; returns 1 if found. */
int json_str(const char *json, const char *key, char *out, size_t cap);

/* Waits until the mock reports request `id` in `state` ("running", "done",
 * "aborted").  Returns 0, or -1 at the deadline. */
int mock_wait_state(const struct mock *m, const char *id, const char *state,
    int timeout_ms);
long mock_stat(const struct mock *m, const char *key);
/* What a mock has seen so far: its traffic requests, and the requests it
 * refused as malformed (from its log).  A request smuggled past the proxy
 * would show up as either. */
struct mock_seen {
	long requests;
	int malformed;
};
struct mock_seen mock_seen(const struct mock *m);
/* Asserts that m has seen nothing since `before`; `what` names the case. */
void mock_assert_saw_nothing(const struct mock *m, struct mock_seen before,
    const char *what);
/* POST /mock/reset: counters, records and defaults cleared.  (Not
 * mock_reset: e2e_http has its own of that name.) */
void mock_clear(const struct mock *m);
/* POST /mock/defaults?query ("X-Mock-Fail=503&X-Mock-Tokens=3"): steering
 * for every request to that mock without the header; "" clears them. */
void mock_defaults(const struct mock *m, const char *query);

#endif
