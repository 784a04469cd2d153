#!/bin/sh
# check_dockerfile.sh BINARY [AARCH64_BINARY] — the Dockerfile, without a
# Docker engine.
#
# 1. The file itself: a debian:12 build stage that runs `make static` and
#    port/container/rootfs.sh with the CONFIG build arg (whose default is a
#    file in the tree); a final stage FROM scratch with no RUN (there is no
#    shell), a numeric non-root USER (there is no /etc/passwd), EXPOSE,
#    STOPSIGNAL, ENTRYPOINT and HEALTHCHECK in exec form, the HEALTHCHECK
#    being `--probe` of the EXPOSEd port by the ENTRYPOINT's binary; every
#    COPY source present (in the tree, or in the image filesystem below);
#    .dockerignore keeping local build output out of the build context.
# 2. The image, simulated: its filesystem made by the same rootfs.sh from
#    BINARY (CI's `make static` output), exactly the expected files, and its
#    size; then run as the image runs it — ENTRYPOINT in a chroot of that
#    filesystem, as USER, with an empty environment, in a network namespace
#    of its own (so 127.0.0.1:8080 is the container's) — and probed with the
#    HEALTHCHECK command, run the same way, until healthy; /metrics; then
#    STOPSIGNAL and a clean exit, after which the HEALTHCHECK fails.
#    Also: a config.yaml build arg converted, and one on another port refused;
#    with AARCH64_BINARY, the arm64 image's filesystem (its config checked
#    under qemu, as the build stage does).
# Part 2 needs root (chroot, unshare); without it, it is skipped and said so.
set -eu

bin=$1 arm64=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
df=$top/Dockerfile
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() { if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', want '$3'"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_dockerfile.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ---- 1. the Dockerfile --------------------------------------------------------------------
# One instruction per line: continuations joined, comments and blanks gone,
# each prefixed with its stage number.
awk '
	/^[ \t]*#/ && !cont { next }
	{ line = cont ? line " " $0 : $0 }
	/\\$/ { sub(/\\$/, "", line); cont = 1; next }
	{ cont = 0; if (line ~ /^[ \t]*$/) next
	  gsub(/[ \t]+/, " ", line); sub(/^ /, "", line)
	  if (toupper(line) ~ /^FROM /) stage++
	  print stage, line }
' "$df" > "$tmp/instr"
nstages=$(tail -n 1 "$tmp/instr" | cut -d' ' -f1)
stage() { sed -n "s/^$1 //p" "$tmp/instr"; }          # the instructions of stage N
instr() { stage "$1" | sed -n "s/^$2 //p"; }          # the arguments of INSTR in stage N
build=$(stage 1) final=$(stage "$nstages")

expect "stages" "$nstages" 2
case $(instr 1 FROM) in
*"debian:12 AS build") ok ;; *) fail "stage 1 is not FROM debian:12 AS build: $(instr 1 FROM)" ;;
esac
printf '%s\n' "$build" | grep -q '^RUN .*make static ARCH=' && ok || fail "the build stage does not run make static"
# shellcheck disable=SC2016 # $CONFIG as the Dockerfile writes it
printf '%s\n' "$build" | grep -qF 'port/container/rootfs.sh /rootfs "$CONFIG"' && ok ||
	fail "the build stage does not run port/container/rootfs.sh with \$CONFIG"
config=$(instr 1 ARG | sed -n 's/^CONFIG=//p')
[ -n "$config" ] && [ -f "$top/$config" ] && ok || fail "ARG CONFIG's default '$config' is not a file in the tree"
instr 1 COPY | while read -r line; do
	# shellcheck disable=SC2086 # the words of the instruction
	set -- $line
	case $1 in --from=*) continue ;; esac
	while [ $# -gt 1 ]; do [ -e "$top/$1" ] || echo "$1"; shift; done
done > "$tmp/missing"
[ -s "$tmp/missing" ] && fail "COPY sources missing from the tree: $(cat "$tmp/missing")" || ok

expect "final stage" "$(instr "$nstages" FROM)" scratch
printf '%s\n' "$final" | grep -q '^RUN ' && fail "the final stage has a RUN: scratch has no shell" || ok
user=$(instr "$nstages" USER)
case $user in
0|0:*|root|root:*|"") fail "USER '$user' is root or missing" ;;
*[!0-9:]*) fail "USER '$user' is not numeric: a scratch image has no /etc/passwd" ;;
*) ok ;;
esac
port=$(instr "$nstages" EXPOSE)
expect "EXPOSE" "$port" 8080
expect "STOPSIGNAL" "$(instr "$nstages" STOPSIGNAL)" SIGTERM
# exec form ["a", "b"] -> one argument per line
argv() { sed -e 's/^ *\[ *"//' -e 's/" *\] *$//' -e 's/" *, *"/\n/g'; }
entry=$(instr "$nstages" ENTRYPOINT)
case $entry in \[*\]) ok ;; *) fail "ENTRYPOINT is not in exec form: $entry" ;; esac
entry=$(printf '%s\n' "$entry" | argv)
health=$(instr "$nstages" HEALTHCHECK)
case $health in *" CMD ["*\]) ok ;; *) fail "HEALTHCHECK is not CMD in exec form: $health" ;; esac
hc=$(printf '%s\n' "${health#* CMD }" | argv)
expect "HEALTHCHECK program" "$(printf '%s\n' "$hc" | sed -n 1p)" "$(printf '%s\n' "$entry" | sed -n 1p)"
expect "HEALTHCHECK flag" "$(printf '%s\n' "$hc" | sed -n 2p)" --probe
expect "HEALTHCHECK url" "$(printf '%s\n' "$hc" | sed -n 3p)" "http://127.0.0.1:$port/health"
timeout=$(printf '%s\n' "$health" | sed -n 's/.*--timeout=\([0-9]*\)s.*/\1/p')
[ -n "$timeout" ] && [ "$timeout" -gt 2 ] && ok || fail "HEALTHCHECK --timeout=${timeout}s: the probe itself takes up to 3 s"
for p in build 'build-\*' dist llmproxy; do
	grep -qx "$p" "$top/.dockerignore" 2>/dev/null && ok || fail ".dockerignore does not leave out $p"
done

# ---- 2. the image filesystem ---------------------------------------------------------------------
root=$tmp/rootfs
if ! sh "$top/port/container/rootfs.sh" "$root" "$top/$config" "$bin" > "$tmp/rootfs.log" 2>&1; then
	cat "$tmp/rootfs.log" >&2
	fail "rootfs.sh failed"
fi
got=$(cd "$root" && find . -printf '%M %p\n' | LC_ALL=C sort -k 2)
want="drwxr-xr-x .
drwxr-xr-x ./etc
drwxr-xr-x ./etc/llmproxy
-rw-r--r-- ./etc/llmproxy/config.ini
drwxr-xr-x ./etc/ssl
drwxr-xr-x ./etc/ssl/certs
-rw-r--r-- ./etc/ssl/certs/ca-certificates.crt
-rwxr-xr-x ./llmproxy
drwxr-xr-x ./var
drwxr-xr-x ./var/lib
drwxr-xr-x ./var/lib/llmproxy"
expect "image files" "$got" "$want"
# Every COPY --from=build source of the final stage is in it (/rootfs/...).
instr "$nstages" COPY | while read -r line; do
	# shellcheck disable=SC2086 # the words of the instruction
	set -- $line
	while [ $# -gt 1 ]; do
		case $1 in
		--from=build) ;;
		--chown=*) ;;
		--*) echo "unexpected COPY flag $1" ;;
		/rootfs/*) [ -e "$root/${1#/rootfs/}" ] || echo "$1" ;;
		*) echo "$1 (not from the build stage's /rootfs)" ;;
		esac
		shift
	done
done > "$tmp/missing"
[ -s "$tmp/missing" ] && fail "final-stage COPY sources not made by rootfs.sh: $(cat "$tmp/missing")" || ok
case $(file -b "$root/llmproxy") in
*"statically linked"*) ok ;; *) fail "/llmproxy is not static: $(file -b "$root/llmproxy")" ;;
esac
sz() { wc -c < "$1" | tr -d ' '; }
b=$(sz "$root/llmproxy") c=$(sz "$root/etc/llmproxy/config.ini") a=$(sz "$root/etc/ssl/certs/ca-certificates.crt")
total=$((b + c + a))
echo "image size: $total bytes ($((total / 1024)) KiB) = binary $b + config.ini $c + CA bundle $a"
[ "$total" -lt 1048576 ] && ok || fail "the image is $total bytes, more than 1 MiB"

# A config.yaml as the build arg is converted; one listening elsewhere is refused.
if [ -f "$top/yaml2ini.sh" ]; then
	printf 'server:\n  listen: ":8080"\nbackends:\n  - url: "http://127.0.0.1:8000"\n    weight: 2\n' > "$tmp/config.yaml"
	if sh "$top/port/container/rootfs.sh" "$tmp/yamlroot" "$tmp/config.yaml" "$bin" > "$tmp/yaml.log" 2>&1 &&
	    grep -q '^url = http://127.0.0.1:8000' "$tmp/yamlroot/etc/llmproxy/config.ini"; then ok; else
		cat "$tmp/yaml.log" >&2; fail "CONFIG=config.yaml was not converted"; fi
	sed 's/:8080/:8000/' "$tmp/config.yaml" > "$tmp/other.yaml"
	if sh "$top/port/container/rootfs.sh" "$tmp/otherroot" "$tmp/other.yaml" "$bin" > "$tmp/other.log" 2>&1; then
		fail "a config on port 8000 was accepted for an image that probes 8080"
	else
		grep -q 'listens on port 8000' "$tmp/other.log" && ok || fail "no reason for refusing port 8000: $(cat "$tmp/other.log")"
	fi
fi

# The arm64 image's branch of the build stage: rootfs.sh checking the config
# with an aarch64 binary under qemu (LLMPROXY_RUN), when one is given.
if [ -n "$arm64" ]; then
	if ! command -v qemu-aarch64-static >/dev/null; then
		echo "note: no qemu-aarch64-static: the arm64 image was not assembled"
	elif LLMPROXY_RUN=qemu-aarch64-static sh "$top/port/container/rootfs.sh" "$tmp/arm64" \
	    "$top/$config" "$arm64" > "$tmp/arm64.log" 2>&1; then
		expect "arm64 image files" "$(cd "$tmp/arm64" && find . -printf '%M %p\n' | LC_ALL=C sort -k 2)" "$want"
		case $(file -b "$tmp/arm64/llmproxy") in
		*"ARM aarch64"*"statically linked"*) ok ;;
		*) fail "arm64 /llmproxy: $(file -b "$tmp/arm64/llmproxy")" ;;
		esac
		qemu-aarch64-static "$tmp/arm64/llmproxy" --probe "http://127.0.0.1:1/health" \
		    > /dev/null 2>&1 && fail "the arm64 probe of a dead port passed" || ok
		echo "arm64 image size: $(du -sb "$tmp/arm64" | cut -f1) bytes"
	else
		cat "$tmp/arm64.log" >&2; fail "rootfs.sh with LLMPROXY_RUN=qemu-aarch64-static failed"
	fi
fi

# ---- 2b. the image, running ----------------------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v chroot >/dev/null ||
    ! command -v ip >/dev/null || ! unshare -n true 2>/dev/null; then
	echo "note: not root, or no unshare/chroot/ip: the image was not run (skipped)"
else
	chroot=$(command -v chroot) ip=$(command -v ip)
	# Each line of $1 as one "word" of a command line.
	quoted() { printf '%s\n' "$1" | while IFS= read -r w; do printf ' "%s"' "$w"; done; }
	# The run, in a network namespace of its own: a script, since the
	# namespace lives as long as the shell in it.
	{
		echo 'set -u'
		echo "\"$ip\" link set lo up"
		printf 'run() { env -i "%s" --userspec=%s "%s" "$@"; }\n' "$chroot" "$user" "$root"
		# not through run(): $! must be the program itself (env and chroot exec)
		printf 'env -i "%s" --userspec=%s "%s"' "$chroot" "$user" "$root"
		quoted "$entry"; echo " > \"$tmp/stdout\" 2> \"$tmp/stderr\" &"
		echo 'pid=$!'
		printf 'health() { run'; quoted "$hc"; echo '; }'
		cat <<'SH'
i=0
until health 2> "$T/probe.err"; do
	i=$((i + 1))
	if [ $i -ge 50 ] || ! kill -0 $pid 2>/dev/null; then echo "never healthy: $(cat "$T/probe.err")"; break; fi
	sleep 0.1
done
[ $i -lt 50 ] && echo "healthy"
health > "$T/probe.out" 2>&1; echo "probe output: [$(cat "$T/probe.out")]"
run /llmproxy --probe http://127.0.0.1:8080/metrics > /dev/null 2>&1; echo "metrics: $?"
run /llmproxy --probe http://127.0.0.1:8081/health > /dev/null 2>&1; echo "wrong port: $?"
# no /etc/hosts and no DNS server here: the probe's own 3 s limit ends it
t0=$(date +%s)
run /llmproxy --probe http://localhost:8080/health > "$T/dns.err" 2>&1; r=$?
echo "unresolvable: $r in $(( $(date +%s) - t0 )) s"
kill -TERM $pid
wait $pid; echo "exit: $?"
health > /dev/null 2>&1; echo "after stop: $?"
kill -9 $pid 2>/dev/null
SH
	} > "$tmp/run.sh"
	T=$tmp unshare -n sh "$tmp/run.sh" > "$tmp/run.out" 2>&1 || true
	r=$(cat "$tmp/run.out")
	has() { if printf '%s\n' "$r" | grep -qxF -- "$2"; then ok; else fail "$1: no '$2' in:
$r
its stderr:
$(cat "$tmp/stderr" 2>/dev/null)"; fi; }
	has "HEALTHCHECK passes once started" "healthy"
	has "HEALTHCHECK says nothing when healthy" "probe output: []"
	has "/metrics in the image" "metrics: 0"
	has "a probe of a port nobody listens on" "wrong port: 1"
	has "SIGTERM (STOPSIGNAL) ends it cleanly" "exit: 0"
	has "HEALTHCHECK fails once stopped" "after stop: 1"
	u=$(printf '%s\n' "$r" | sed -n 's/^unresolvable: \([0-9]*\) in \([0-9]*\) s$/\1 \2/p')
	if [ "${u%% *}" = 1 ] && [ "${u#* }" -le 4 ]; then ok; else
		fail "a probe of a name that cannot be resolved: '$u' (want exit 1 within 4 s)"; fi
	grep -q "listening on \[::\]:8080\|listening on 0.0.0.0:8080" "$tmp/stderr" && ok ||
		fail "the image's llmproxy did not listen on :8080: $(cat "$tmp/stderr")"
	echo "image run: $(grep -c . "$tmp/stderr") log lines, $(printf '%s\n' "$r" | tr '\n' ';')"
fi

echo "check_dockerfile: $checks checks, $fails failed"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
