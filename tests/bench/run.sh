#!/bin/sh
# tests/bench/run.sh — `make bench` and `make bench-smoke`.
#
#   sh tests/bench/run.sh [--smoke] [--out FILE]
#
# Starts, on 127.0.0.1 only: the mock backend (--fast), llmproxy in three
# configurations (the default one; metering off; metering with a webhook and
# its receiver), the static build when dist/llmproxy-x86_64 exists, and
# Debian's nginx configured as its users do for SSE.  Then tests/bench/loadgen
# drives them all, target after target in every round (the order rotated each
# round), so that noise from the machine falls on all of them alike; every
# number printed is a median over rounds, and "added" means through the proxy
# minus directly to the backend, quantile by quantile, within each round.
# Everything started here is stopped at the end, failure or not.
#
# The table goes to stdout and to FILE (default $B/bench-results.txt; the
# smoke run: $B/bench-smoke.txt); loadgen's raw lines next to it (.raw).
# The exit status is non-zero when a request failed or something did not
# start — never because of a timing.
#
# Environment: B (build dir, default build), LLMPROXY_BIN, STATIC_BIN,
# MOCK_BIN, RECEIVER_BIN, LOADGEN_BIN, NGINX_BIN; BENCH_ONLY="ttft1 rps ..."
# runs only those measurements (labels as in the raw file; for profiling).
set -eu

smoke=0
B=${B:-build}
out=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--out) out=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--out FILE]" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$out" ]; then
	if [ $smoke = 1 ]; then out=$B/bench-smoke.txt; else out=$B/bench-results.txt; fi
fi

LLMPROXY_BIN=${LLMPROXY_BIN:-$B/llmproxy}
STATIC_BIN=${STATIC_BIN:-dist/llmproxy-x86_64}
MOCK_BIN=${MOCK_BIN:-$B/tests/mock_upstream}
RECEIVER_BIN=${RECEIVER_BIN:-$B/tests/webhook_receiver}
LOADGEN_BIN=${LOADGEN_BIN:-$B/tests/bench/loadgen}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
LG=$LOADGEN_BIN

dir=$(mktemp -d "${TMPDIR:-/tmp}/llmproxy-bench.XXXXXX")
raw=$out.raw
pids=
status=0

# ---- processes ---------------------------------------------------------------

cleanup() {
	trap - EXIT INT TERM HUP
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	# Up to 5 s for a clean exit, then SIGKILL.
	i=0
	while [ $i -lt 50 ]; do
		alive=
		for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$status" != 0 ]; then
		echo "bench: failed; the last lines of each log:" >&2
		for f in "$dir"/*.log "$dir"/*.err; do
			[ -s "$f" ] || continue
			echo "== $f" >&2
			tail -n 5 "$f" >&2
		done
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM HUP

fail() {
	echo "bench: $*" >&2
	status=1
	exit 1
}

# Waits (up to 10 s) for "... listening on ADDR" in file $1; prints ADDR.
wait_listening() {
	i=0
	while [ $i -lt 200 ]; do
		addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$1" | head -n 1)
		if [ -n "$addr" ]; then echo "$addr"; return 0; fi
		sleep 0.05
		i=$((i + 1))
	done
	cat "$1" >&2
	echo "bench: timed out waiting for $1" >&2
	return 1
}

# 1,000 streams: two descriptors each in the proxy, one in the mock, one in
# the load generator.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
	ulimit -n 65536
else
	ulimit -n "$hard"
fi

for f in "$LLMPROXY_BIN" "$MOCK_BIN" "$RECEIVER_BIN" "$LG" "$NGINX_BIN"; do
	[ -x "$f" ] || fail "missing $f (make bench builds it)"
done
have_static=0
[ -x "$STATIC_BIN" ] && have_static=1

# ---- the backend and the webhook ---------------------------------------------------

"$MOCK_BIN" --fast --listen 127.0.0.1:0 </dev/null >"$dir/mock.out" 2>"$dir/mock.err" &
mock_pid=$!
pids="$pids $mock_pid"
mock=$(wait_listening "$dir/mock.out") || fail "the mock did not start"

"$RECEIVER_BIN" --listen 127.0.0.1:0 --out "$dir/records.jsonl" </dev/null \
	>"$dir/receiver.out" 2>"$dir/receiver.err" &
pids="$pids $!"
receiver=$(wait_listening "$dir/receiver.out") || fail "the receiver did not start"

# ---- llmproxy ---------------------------------------------------------------------

# $1 name, $2 binary, $3 extra config.  Sets ${name}_addr and ${name}_pid.
# threads = 1100: the 1,000-stream run needs a worker per stream.
start_llmproxy() {
	cat >"$dir/$1.ini" <<CONF
[backends.mock]
url = http://$mock
[server]
listen = 127.0.0.1:0
threads = 1100
$3
CONF
	"$2" -c "$dir/$1.ini" </dev/null >/dev/null 2>"$dir/$1.log" &
	p=$!
	pids="$pids $p"
	a=$(wait_listening "$dir/$1.log") || fail "$1 did not start"
	eval "${1}_addr=\$a ${1}_pid=\$p"
}

start_llmproxy llmproxy "$LLMPROXY_BIN" ""
start_llmproxy nometer "$LLMPROXY_BIN" "[metrics]
enabled = false
[usage]
enabled = false"
start_llmproxy webhook "$LLMPROXY_BIN" "[usage.reporters.bench]
[usage.reporters.bench.webhook]
url = http://$receiver/usage"
if [ $have_static = 1 ]; then
	start_llmproxy static "$STATIC_BIN" ""
fi

# ---- nginx, as its users configure it for SSE ---------------------------------------

nginx_port=$("$LG" --free-port)
mkdir -p "$dir/nginx"
user_line=
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$dir/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx.log warn;
events {
    worker_connections 8192;
}
http {
    access_log $dir/nginx-access.log;
    client_body_temp_path $dir/nginx/client_body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    keepalive_requests 1000000;

    upstream llm {
        server $mock;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
CONF
"$NGINX_BIN" -p "$dir/nginx" -e "$dir/nginx.log" -c "$dir/nginx/nginx.conf" \
	-g 'daemon off;' </dev/null >/dev/null 2>>"$dir/nginx.log" &
nginx_pid=$!
pids="$pids $nginx_pid"
"$LG" --wait-port "$nginx_port" || fail "nginx did not start"
# The master and its workers: CPU and memory are theirs together.
nginx_pids=$nginx_pid
i=0
while [ $i -lt 50 ]; do
	w=$(pgrep -P "$nginx_pid" | tr '\n' ',' | sed 's/,$//')
	[ -n "$w" ] && break
	sleep 0.1
	i=$((i + 1))
done
[ -n "$w" ] && nginx_pids="$nginx_pid,$w"

# ---- measurements ------------------------------------------------------------------

direct="direct=$mock"
lp="llmproxy=$llmproxy_addr@$llmproxy_pid"
ng="nginx=127.0.0.1:$nginx_port@$nginx_pids"
nm="nometer=$nometer_addr@$nometer_pid"
wh="webhook=$webhook_addr@$webhook_pid"
st=
[ $have_static = 1 ] && st="static=$static_addr@$static_pid"

: >"$raw"
# loadgen ARGS...: appends its lines to $raw; a failed request fails the run
# (after the remaining measurements).
bench() {
	case " ${BENCH_ONLY:-$2} " in *" $2 "*) ;; *) return 0 ;; esac
	if ! "$LG" "$@" >>"$raw" 2>>"$dir/loadgen.err"; then
		echo "bench: $(tail -n 3 "$dir/loadgen.err")" >&2
		status=1
	fi
}
# t: the --target arguments for a list of target strings (empty ones skipped).
t() {
	for x in "$@"; do [ -n "$x" ] && printf ' --target %s' "$x"; done
}

if [ $smoke = 1 ]; then
	N1=20 R=2 C32=4 N32=16 LAGT=5 LAGC=2 CPUT=2000 CPUC=2 RPSD=300 RPSR=1
	LONGT=5 S1=1 S2=10 S3=50
else
	N1=200 R=10 C32=32 N32=640 LAGT=50 LAGC=4 CPUT=50000 CPUC=4 RPSD=2000 RPSR=5
	LONGT=100 S1=1 S2=100 S3=1000
fi
# The machine's load while we measure: numbers taken under load say so.
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
echo "bench: mock $mock, llmproxy $llmproxy_addr, nginx 127.0.0.1:$nginx_port" \
	"(raw lines: $raw)" >&2

echo "bench: time to first token, one stream at a time" >&2
bench --label ttft1 --stream --tokens 2 --conc 1 --requests $N1 --rounds $R --warmup \
	$(t "$direct" "$lp" "$ng" "$nm" "$wh" "$st")
echo "bench: time to first token, 32 at a time" >&2
bench --label ttft32 --stream --tokens 2 --conc $C32 --requests $N32 --rounds $R --warmup \
	$(t "$direct" "$lp" "$ng" "$st")
echo "bench: lag per event, events 20 ms apart" >&2
# Streams started 20/LAGC ms apart: their events take turns instead of
# arriving together, so that this is the relay's delay, not a queue.
bench --label lag --stream --tokens $LAGT --delay-ms 20 --conc $LAGC --requests $LAGC \
	--stagger-ms $((20 / LAGC)) --rounds $R --warmup $(t "$direct" "$lp" "$ng" "$st")
echo "bench: CPU per event, fast streams of small events" >&2
bench --label cpu --stream --tokens $CPUT --conc $CPUC --requests $CPUC \
	--rounds $((R < 5 ? R : 5)) --warmup \
	$(t "direct=$mock@$mock_pid" "$lp" "$ng" "$nm" "$wh" "$st")
echo "bench: small non-streamed requests, 32 keep-alive clients" >&2
bench --label rps --tokens 3 --conc $C32 --duration-ms $RPSD --rounds $RPSR --warmup \
	$(t "$direct" "$lp" "$ng" "$nm" "$wh" "$st")
for n in $S1 $S2 $S3; do
	echo "bench: $n concurrent long streams" >&2
	bench --label "streams$n" --stream --tokens $LONGT --delay-ms 20 --conc "$n" \
		--requests "$n" --rss --timeout-ms 120000 $(t "$direct" "$lp" "$st" "$ng")
done

# ---- idle memory with the default config (config.ini.example, 5 lines) ------------------

# $1 name, $2 binary: sets idle_$1 to its VmRSS in kB one second after its
# start, no traffic.  (Not in a $(...) subshell: the process is ours to stop.)
idle_rss() {
	port=$("$LG" --free-port)
	head -n 5 config.ini.example |
		sed "s|^url = .*|url = http://$mock|; s|^listen = .*|listen = 127.0.0.1:$port|" \
		>"$dir/idle-$1.ini"
	"$2" -c "$dir/idle-$1.ini" </dev/null >/dev/null 2>"$dir/idle-$1.log" &
	p=$!
	pids="$pids $p"
	wait_listening "$dir/idle-$1.log" >/dev/null || fail "idle $1 did not start"
	sleep 1
	eval "idle_$1=\$(awk '/^VmRSS:/ { print \$2 }' /proc/$p/status)"
	# RSS counts the shared C library's pages too (glibc's text is most
	# of a dynamic build's); RssAnon is the process's own memory.
	eval "anon_$1=\$(awk '/^RssAnon:/ { print \$2 }' /proc/$p/status)"
}
idle_dynamic=- idle_static=- anon_dynamic=- anon_static=-
idle_rss dynamic "$LLMPROXY_BIN"
[ $have_static = 1 ] && idle_rss static "$STATIC_BIN"
idle_dyn=$idle_dynamic

size_of() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo -; fi; }
stripped_size() {
	if [ -f "$1" ] && command -v strip >/dev/null; then
		strip -o "$dir/stripped" "$1" 2>/dev/null && size_of "$dir/stripped" && return
	fi
	echo -
}
size_dyn=$(size_of "$LLMPROXY_BIN")
size_dyn_stripped=$(stripped_size "$LLMPROXY_BIN")
size_static=$(size_of "$STATIC_BIN")
size_static_stripped=$(stripped_size "$STATIC_BIN")

# ---- the table -------------------------------------------------------------------------

cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
{
	echo "llmproxy benchmark ($( [ $smoke = 1 ] && echo "SMOKE: tiny counts, numbers mean nothing" || echo "make bench"))"
	echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $cpus cores, ${model:-unknown CPU}, $(uname -sr)"
	echo "nginx:   $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //'), worker_processes auto," \
		"proxy_buffering off, upstream keepalive 64"
	echo "command: $( [ $smoke = 1 ] && echo "make bench-smoke" || echo "make bench")"
	echo "load:    $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")" \
		"at the end (1, 5, 15 min load averages; $cpus cores)"
	echo
	awk -v idle_dyn="$idle_dyn" -v idle_static="$idle_static" \
	    -v anon_dyn="$anon_dynamic" -v anon_static="$anon_static" \
	    -v size_dyn="$size_dyn" -v size_dyn_s="$size_dyn_stripped" \
	    -v size_static="$size_static" -v size_static_s="$size_static_stripped" \
	    -v smoke=$smoke -v s1=$S1 -v s2=$S2 -v s3=$S3 -f tests/bench/table.awk "$raw"
} >"$out"
cat "$out"
[ "$status" = 0 ] || fail "some requests failed (see above)"
echo "bench: written to $out" >&2
