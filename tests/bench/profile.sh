#!/bin/sh
# tests/bench/profile.sh — `make bench-profile`: what a request and an event
# cost the proxy, in numbers that do not depend on how loaded the machine is.
#
#   sh tests/bench/profile.sh [--out FILE]
#
# Instructions: each proxy runs under valgrind --tool=callgrind while
# tests/bench/loadgen sends it N requests, and again with 1 request; the
# difference over N-1 is the cost of one request (or, for the long streams,
# of one relayed event), startup and shutdown cancelled out.  Instruction
# counts are repeatable to a few parts in a thousand whatever else the
# machine runs (valgrind serialises the proxy's threads).
#
# System calls: each proxy runs under strace -c -f while loadgen sends N
# requests one at a time; the calls per request are counted by name.
#
# Targets: llmproxy with the default config (metrics on, so usage is
# metered), llmproxy with metering off, and nginx (one worker process, the
# proxy settings of run.sh).  On 127.0.0.1 only; everything started here is
# stopped at the end.  Environment as run.sh: B, LLMPROXY_BIN, MOCK_BIN,
# LOADGEN_BIN, NGINX_BIN.
set -eu

B=${B:-build}
out=$B/bench-profile.txt
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift ;;
	*) echo "usage: $0 [--out FILE]" >&2; exit 2 ;;
	esac
	shift
done
LLMPROXY_BIN=${LLMPROXY_BIN:-$B/llmproxy}
MOCK_BIN=${MOCK_BIN:-$B/tests/mock_upstream}
LG=${LOADGEN_BIN:-$B/tests/bench/loadgen}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
for f in "$LLMPROXY_BIN" "$MOCK_BIN" "$LG" "$NGINX_BIN"; do
	[ -x "$f" ] || { echo "profile: missing $f" >&2; exit 1; }
done
for t in valgrind strace; do
	command -v $t >/dev/null || { echo "profile: $t is not installed" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/llmproxy-profile.XXXXXX")
pids=
wrapper=
cleanup() {
	[ -n "$wrapper" ] && pids="$pids $wrapper"
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM HUP

: >"$dir/mock.out"
"$MOCK_BIN" --fast --listen 127.0.0.1:0 </dev/null >"$dir/mock.out" 2>&1 &
pids="$pids $!"
i=0
while ! grep -q "listening on" "$dir/mock.out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mock=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$dir/mock.out" | head -n 1)
[ -n "$mock" ] || { echo "profile: the mock did not start" >&2; exit 1; }

# $1 name, $2 port, $3 extra config: writes $dir/$1.ini, or nginx's config.
config() {
	if [ "$1" = nginx ]; then
		mkdir -p "$dir/nginx"
		user_line=
		[ "$(id -u)" = 0 ] && user_line="user root;"
		cat >"$dir/nginx/nginx.conf" <<CONF
$user_line
worker_processes 1;
master_process off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/nginx-access.log;
    client_body_temp_path $dir/nginx/cb; proxy_temp_path $dir/nginx/px;
    fastcgi_temp_path $dir/nginx/fc; uwsgi_temp_path $dir/nginx/uw;
    scgi_temp_path $dir/nginx/sc;
    keepalive_requests 1000000;
    upstream llm { server $mock; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_cache off;
        }
    }
}
CONF
		return
	fi
	cat >"$dir/$1.ini" <<CONF
[backends.mock]
url = http://$mock
[server]
listen = 127.0.0.1:$2
$3
CONF
}

# $1 name, $2 port, then the wrapper command: starts the target under it.
start() {
	name=$1 port=$2
	shift 2
	if [ "$name" = nginx ]; then
		"$@" "$NGINX_BIN" -p "$dir/nginx" -e "$dir/nginx.log" \
		    -c "$dir/nginx/nginx.conf" -g 'daemon off;' </dev/null \
		    >/dev/null 2>"$dir/wrap.err" &
	else
		"$@" "$LLMPROXY_BIN" -c "$dir/$name.ini" </dev/null >/dev/null \
		    2>"$dir/wrap.err" &
	fi
	wrapper=$!
	"$LG" --wait-port "$port" >/dev/null 2>&1 || {
		echo "profile: $name did not start" >&2; cat "$dir/wrap.err" >&2; exit 1; }
}

# Stops what start() started and waits until the wrapper has written its
# report (callgrind and strace write theirs when the traced program exits).
stop() {
	if [ "$1" = nginx ]; then
		sig=QUIT
	else
		sig=TERM
	fi
	# The traced program is the wrapper's child (strace) or the wrapper
	# itself (valgrind).
	target=$(pgrep -P "$wrapper" | head -n 1)
	kill -$sig "${target:-$wrapper}" 2>/dev/null || true
	wait "$wrapper" 2>/dev/null || true
	wrapper=
}

# $1 name, $2 port, $3 requests, loadgen args...: instructions the target
# executed (all threads), from callgrind's summary line.
instructions() {
	name=$1 port=$2 n=$3
	shift 3
	rm -f "$dir/cg.log" "$dir/cg.out"
	start "$name" "$port" valgrind --tool=callgrind \
	    --callgrind-out-file="$dir/cg.out" --log-file="$dir/cg.log"
	"$LG" "$@" --requests "$n" --rounds 1 --target "p=127.0.0.1:$port" \
	    >/dev/null 2>>"$dir/loadgen.err" || { echo "profile: $name failed requests" >&2; exit 1; }
	stop "$name"
	c=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/cg.log" | tail -n 1)
	[ -n "$c" ] || { echo "profile: no callgrind total for $name" >&2;
		cat "$dir/cg.log" >&2; exit 1; }
	echo "$c"
}

# Cost of one unit: (instructions with n1 units - with n0) / (n1 - n0).
# $1 name, $2 port, $3 n0, $4 n1, $5 units per request, loadgen args...
per_unit() {
	name=$1 port=$2 n0=$3 n1=$4 k=$5
	shift 5
	a=$(instructions "$name" "$port" "$n0" "$@") || exit 1
	b=$(instructions "$name" "$port" "$n1" "$@") || exit 1
	echo "$a $b $n0 $n1 $k" | awk '{ printf "%.0f", ($2 - $1) / (($4 - $3) * $5) }'
}

# Syscalls per request, by name: $1 name, $2 port, $3 requests, loadgen args.
syscalls() {
	name=$1 port=$2 n=$3
	shift 3
	start "$name" "$port" strace -f -c -o "$dir/st.txt"
	sleep 0.2
	"$LG" "$@" --requests "$n" --rounds 1 --target "p=127.0.0.1:$port" \
	    >/dev/null 2>>"$dir/loadgen.err" || { echo "profile: $name failed requests" >&2; exit 1; }
	stop "$name"
	# Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / n >= 0.05 {
		printf "%s %.2f, ", $NF, $4 / n } ' "$dir/st.txt" | sed 's/, $//'
}

config llmproxy 18181 ""
config nometer 18182 "[metrics]
enabled = false
[usage]
enabled = false"
config nginx 18183 ""

STREAM="--stream --tokens 2 --conc 1"
PLAIN="--tokens 3 --conc 1"
LONG="--stream --tokens 20000 --conc 2"
{
	echo "llmproxy profile (make bench-profile): instructions and system calls"
	echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nginx:   $("$NGINX_BIN" -v 2>&1 | sed 's/.*version: //'), one worker, proxy_buffering off"
	echo
	echo "Instructions executed by the proxy (valgrind --tool=callgrind; all threads)"
	printf "  %-46s%12s%12s%12s\n" "" llmproxy "no metering" nginx
	for what in stream plain event; do
		case $what in
		stream) title="per streamed request (2 tokens, 5 events)"; n0=1 n1=501 k=1; args=$STREAM ;;
		plain)  title="per non-streamed request"; n0=1 n1=501 k=1; args=$PLAIN ;;
		# 2 and 4 streams of 20,000 tokens: 20,002 events each as
		# loadgen counts them (the role chunk and [DONE] besides).
		event)  title="per relayed event (long streams, 2 at once)"; n0=2 n1=4 k=20002; args=$LONG ;;
		esac
		l=$(per_unit llmproxy 18181 $n0 $n1 $k $args) || exit 1
		m=$(per_unit nometer 18182 $n0 $n1 $k $args) || exit 1
		g=$(per_unit nginx 18183 $n0 $n1 $k $args) || exit 1
		printf "  %-46s%12s%12s%12s\n" "$title" "$l" "$m" "$g"
	done
	echo
	echo "System calls per request, one client, keep-alive (strace -f -c)"
	for t in llmproxy nginx; do
		port=18181
		[ $t = nginx ] && port=18183
		echo "  $t, streamed:     $(syscalls $t $port 1000 $STREAM)"
		echo "  $t, non-streamed: $(syscalls $t $port 1000 $PLAIN)"
	done
} >"$out"
cat "$out"
echo "profile: written to $out" >&2
