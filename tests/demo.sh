#!/bin/sh
# make demo: the mock backend and llmproxy on loopback ports, one streamed chat
# completion through the proxy with curl -N (tokens appear as they are made),
# then both are stopped.
set -eu

LLMPROXY_BIN=${LLMPROXY_BIN:-./llmproxy}
MOCK_BIN=${MOCK_BIN:-build/tests/mock_upstream}
dir=$(mktemp -d "${TMPDIR:-/tmp}/llmproxy-demo.XXXXXX")
mock_pid= proxy_pid=
cleanup() {
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
	[ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Waits (up to 5 s) for a line matching $2 in file $1 and prints its address.
wait_listening() {
	i=0
	while [ $i -lt 100 ]; do
		addr=$(sed -n "s/.*$2 \([0-9.:]*\).*/\1/p" "$1" | head -n 1)
		[ -n "$addr" ] && { echo "$addr"; return 0; }
		sleep 0.05
		i=$((i + 1))
	done
	echo "demo: timed out waiting for $1" >&2
	cat "$1" >&2
	return 1
}

"$MOCK_BIN" --listen 127.0.0.1:0 >"$dir/mock.out" 2>"$dir/mock.err" &
mock_pid=$!
mock=$(wait_listening "$dir/mock.out" "listening on")

cat >"$dir/config.ini" <<CONF
[server]
listen = 127.0.0.1:0

[backends.mock]
url = http://$mock
CONF
"$LLMPROXY_BIN" -c "$dir/config.ini" 2>"$dir/proxy.log" &
proxy_pid=$!
proxy=$(wait_listening "$dir/proxy.log" "listening on")

echo "mock backend (vLLM dialect) on $mock, llmproxy on $proxy"
echo "streaming a chat completion through llmproxy, one token every 150 ms:"
echo
curl -sN "http://$proxy/v1/chat/completions" \
	-H 'Content-Type: application/json' \
	-H 'X-Mock-Tokens: 12' -H 'X-Mock-Delay-Ms: 150' -H 'X-Mock-First-Delay-Ms: 300' \
	-d '{"model":"mock-model","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
echo
echo "access log line:"
grep ' access ' "$dir/proxy.log" || true
