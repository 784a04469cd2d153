#!/bin/sh
# check_systemd.sh LLMPROXY MOCK — port/systemd/llmproxy.service:
#   - `systemd-analyze verify` finds nothing to say about it;
#   - the hardening the unit promises is there, and `systemd-analyze security
#     --offline` rates its exposure at most 2.0;
#   - TimeoutStopSec leaves the default shutdown_timeout room, the
#     StateDirectory is where config.ini.example puts the spool;
#   - every system call the program makes — start, proxied requests
#     (streamed and not), health probes, a usage record through the spool
#     to a webhook, /metrics, SIGHUP, SIGTERM — traced with strace, is one
#     the unit's SystemCallFilter lets through (a call outside it would fail
#     with EPERM in production and nowhere else).
# No systemd runs here (no PID 1 systemd), so the unit itself is not started.
set -eu

bin=$1 mock=$2
top=$(cd "$(dirname "$0")/.." && pwd)
unit=$top/port/systemd/llmproxy.service
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() { if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', want '$3'"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_systemd.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mock=$(cd "$(dirname "$mock")" && pwd)/$(basename "$mock")

# ---- the directives ---------------------------------------------------------------------
# The last assignment of a key in [Service].
key() { awk -v k="$1" '/^\[/ { s = $0 } s == "[Service]" && index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print v }' "$unit"; }
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
for kv in DynamicUser=yes ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes \
    PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
    ProtectControlGroups=yes RestrictNamespaces=yes LockPersonality=yes \
    MemoryDenyWriteExecute=yes SystemCallArchitectures=native CapabilityBoundingSet= \
    StateDirectory=llmproxy Restart=on-failure KillSignal=SIGTERM \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    "ExecStart=/usr/local/sbin/llmproxy -c /etc/llmproxy/config.ini" \
    'ExecReload=/bin/kill -HUP $MAINPID'; do
	expect "unit: ${kv%%=*}" "${kv%%=*}=$(key "${kv%%=*}")" "$kv"
done
grep -q '^spool = /var/lib/llmproxy/\|^; *spool = /var/lib/llmproxy/' "$top/config.ini.example" && ok ||
	fail "config.ini.example's spool is not under the StateDirectory /var/lib/llmproxy"
# TimeoutStopSec > shutdown_timeout (default 30s) + the 1 s for usage records.
stop=$(key TimeoutStopSec); stop=${stop%s}
grace=$(sed -n 's/^;shutdown_timeout = \([0-9]*\)s$/\1/p' "$top/config.ini.example")
if [ -n "$grace" ] && [ "$stop" -gt $((grace + 1)) ]; then ok; else
	fail "TimeoutStopSec=${stop}s leaves no room after shutdown_timeout=${grace}s"; fi

# ---- systemd-analyze ------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/units"
	sed "s|/usr/local/sbin/llmproxy|$bin|g" "$unit" > "$tmp/units/llmproxy.service"
	out=$(systemd-analyze verify "$tmp/units/llmproxy.service" 2>&1) && [ -z "$out" ] && ok ||
		fail "systemd-analyze verify: $out"
	score=$(systemd-analyze security --offline=yes "$tmp/units/llmproxy.service" 2>/dev/null |
	    sed -n 's/.*Overall exposure level for llmproxy.service: \([0-9.]*\).*/\1/p')
	if [ -z "$score" ]; then
		echo "note: this systemd-analyze has no security --offline; exposure not rated"
	elif awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
		ok; echo "systemd-analyze security: exposure $score"
	else
		fail "systemd-analyze security: exposure $score (more than 2.0)"
	fi
else
	echo "note: no systemd-analyze here; the unit was checked by the rules above only"
fi

# ---- the system calls against SystemCallFilter ------------------------------------------
if ! command -v strace >/dev/null || ! command -v systemd-analyze >/dev/null ||
    ! command -v curl >/dev/null; then
	echo "note: strace, systemd-analyze or curl missing: SystemCallFilter not checked"
else
	# Expands @groups recursively into system call names.
	expand() {
		for g in "$@"; do
			systemd-analyze syscall-filter "$g" 2>/dev/null |
			    sed -n 's/^    \([@a-z0-9_-]*\)$/\1/p' | while read -r n; do
				case $n in @*) expand "$n" ;; *) echo "$n" ;; esac
			done
		done
	}
	filters=$(sed -n 's/^SystemCallFilter=//p' "$unit")
	allow='' deny=''
	for f in $(printf '%s\n' "$filters" | grep -v '^~'); do allow="$allow $f"; done
	for f in $(printf '%s\n' "$filters" | sed -n 's/^~//p'); do deny="$deny $f"; done
	# shellcheck disable=SC2086
	expand $allow | sort -u > "$tmp/allow"
	# shellcheck disable=SC2086
	expand $deny | sort -u > "$tmp/deny"
	comm -23 "$tmp/allow" "$tmp/deny" > "$tmp/permitted"
	[ -s "$tmp/permitted" ] && ok || fail "could not expand SystemCallFilter"

	"$mock" > "$tmp/mock.out" 2> "$tmp/mock.err" &
	pids="$pids $!"
	i=0
	until grep -q "listening on" "$tmp/mock.out" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { fail "the mock did not start"; break; }
		sleep 0.05
	done
	mport=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$tmp/mock.out")
	cat > "$tmp/config.ini" <<INI
[server]
listen = 127.0.0.1:0
threads = 4
shutdown_timeout = 2s
[backends.mock]
url = http://127.0.0.1:$mport
[health_check]
interval = 200ms
[usage]
spool = $tmp/usage.spool
spool_fsync = always
[usage.reporters.sink.webhook]
url = http://127.0.0.1:$mport/v1/usage-sink
INI
	strace -f -qq -c -U name -o "$tmp/calls" "$bin" -c "$tmp/config.ini" 2> "$tmp/proxy.err" &
	spid=$!
	pids="$pids $spid"
	i=0
	until grep -q "listening on" "$tmp/proxy.err" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 200 ] || { fail "llmproxy did not start under strace"; cat "$tmp/proxy.err" >&2; break; }
		sleep 0.05
	done
	port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\),.*/\1/p' "$tmp/proxy.err")
	u=http://127.0.0.1:$port
	curl -fsS "$u/health" > /dev/null && ok || fail "GET /health"
	curl -fsS -N "$u/v1/chat/completions" -H 'Content-Type: application/json' \
	    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' > "$tmp/stream" &&
	    grep -q '\[DONE\]' "$tmp/stream" && ok || fail "a streamed chat completion"
	curl -fsS "$u/v1/completions" -H 'Content-Type: application/json' \
	    -d '{"model":"m","prompt":"hi"}' > /dev/null && ok || fail "a completion"
	curl -fsS "$u/v1/models" > /dev/null && ok || fail "GET /v1/models"
	sleep 0.5       # a few health probes, the webhook deliveries
	curl -fsS "$u/metrics" > "$tmp/metrics" && ok || fail "GET /metrics"
	grep -q '^llmproxy_webhook_success_total[ {].* [1-9]\|^llmproxy_webhook_success_total [1-9]' "$tmp/metrics" && ok ||
		echo "note: no webhook delivery counted yet"
	# strace's pid is the proxy's until exec; signal the traced program.
	ppid=$(pgrep -P "$spid" -x llmproxy || true)
	[ -n "$ppid" ] || ppid=$(pgrep -P "$spid" | head -n 1)
	kill -HUP "$ppid"
	sleep 0.1
	kill -TERM "$ppid"
	wait "$spid" && ok || fail "llmproxy did not exit 0 on SIGTERM under strace"
	grep -x '[a-z_0-9]*' "$tmp/calls" | grep -vx 'syscall\|total' | sort -u > "$tmp/used"
	n=$(wc -l < "$tmp/used" | tr -d ' ')
	[ "$n" -gt 20 ] && ok || fail "only $n system calls traced"
	outside=$(comm -23 "$tmp/used" "$tmp/permitted" | tr '\n' ' ')
	expect "system calls outside SystemCallFilter" "$outside" ""
	echo "system calls used: $n, all within SystemCallFilter${outside:+ except: $outside}"
fi

echo "check_systemd: $checks checks, $fails failed"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
