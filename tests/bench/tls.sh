#!/bin/sh
# tests/bench/tls.sh — the TLS line of `make bench` (and `make bench-smoke`):
# what a TLS handshake with llmproxy's listener costs, and what TLS adds to
# the time to first token, against the same llmproxy without TLS.
#
#   sh tests/bench/tls.sh [--smoke] [--out FILE]
#
# Starts on 127.0.0.1: the mock (--fast) and llmproxy twice (plain, and with
# [server.tls] and an EC P-256 certificate from tests/tls/mkcerts.sh); then
# tests/bench/tls_bench (tls_bench.c says what it measures).  The lines go to
# stdout and to FILE (default $B/bench-tls.txt).  Everything started is
# stopped at the end.  Non-zero exit only when something fails, never for a
# timing.
set -eu

smoke=0
B=${B:-build}
out=$B/bench-tls.txt
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--out) out=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--out FILE]" >&2; exit 2 ;;
	esac
	shift
done
LLMPROXY_BIN=${LLMPROXY_BIN:-$B/llmproxy}
MOCK_BIN=${MOCK_BIN:-$B/tests/mock_upstream}
BENCH_BIN=${TLS_BENCH_BIN:-$B/tests/bench/tls_bench}
CERTS=${TLS_CERTS:-$B/tests/certs}
rounds=2000
[ $smoke = 1 ] && rounds=20

dir=$(mktemp -d "${TMPDIR:-/tmp}/llmproxy-bench-tls.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_port() {
	i=0
	while [ $i -lt 200 ]; do
		p=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$1" | head -n 1)
		if [ -n "$p" ]; then echo "$p"; return 0; fi
		sleep 0.05
		i=$((i + 1))
	done
	cat "$1" >&2
	return 1
}

"$MOCK_BIN" --fast --listen 127.0.0.1:0 </dev/null >"$dir/mock.out" 2>"$dir/mock.err" &
pids="$pids $!"
mock=$(wait_port "$dir/mock.out") || { echo "bench-tls: the mock did not start" >&2; exit 1; }

for mode in plain tls; do
	{
		printf '[server]\nlisten = 127.0.0.1:0\n[usage]\nenabled = false\n'
		printf '[backends.mock]\nurl = http://127.0.0.1:%s\n' "$mock"
		if [ $mode = tls ]; then
			printf '[server.tls]\nenabled = true\ncert_file = %s/ec.pem\n' "$CERTS"
			printf 'key_file = %s/ec.key\n' "$CERTS"
		fi
	} >"$dir/$mode.ini"
	"$LLMPROXY_BIN" -c "$dir/$mode.ini" </dev/null >/dev/null 2>"$dir/$mode.log" &
	pids="$pids $!"
done
plain=$(wait_port "$dir/plain.log") || { echo "bench-tls: llmproxy did not start" >&2; exit 1; }
tls=$(wait_port "$dir/tls.log") || { echo "bench-tls: llmproxy (TLS) did not start" >&2; exit 1; }

{
	echo "TLS ($(date -u +%Y-%m-%d), $(getconf _NPROCESSORS_ONLN) cores; EC P-256 certificate," \
	    "TLS 1.2 ECDHE; $rounds rounds; microseconds):"
	"$BENCH_BIN" "$tls" "$plain" "$CERTS/ca.pem" "$rounds"
} >"$dir/result" || { cat "$dir/result" >&2; echo "bench-tls: failed" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cp "$dir/result" "$out"
cat "$out"
