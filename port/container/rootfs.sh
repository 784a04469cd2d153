#!/bin/sh
# rootfs.sh OUT CONFIG BINARY — the whole filesystem of the llmproxy container
# image, assembled in OUT:
#
#   /llmproxy                            BINARY (static: `make static`)
#   /etc/llmproxy/config.ini             CONFIG, converted by yaml2ini.sh when it
#                                        is a .yaml/.yml, checked by BINARY -t
#   /etc/ssl/certs/ca-certificates.crt   the CA bundle, for https backends and
#                                        webhooks ($CA_BUNDLE, default Debian's)
#   /var/lib/llmproxy/                   for a `[usage] spool` (a volume)
#
# and nothing else: no shell, no /etc/passwd, no libc.  $LLMPROXY_RUN, if
# set, runs BINARY for the check (qemu-aarch64-static for an arm64 image).  The Dockerfile's build
# stage runs it, and so does tests/check_dockerfile.sh, which then runs the
# result in a chroot: the image it tests is made the way the real one is.
set -eu

die() { echo "rootfs.sh: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: rootfs.sh OUT CONFIG BINARY"
out=$1 config=$2 bin=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$config" ] || die "$config: no such file (CONFIG is a path in the build context)"
[ -x "$bin" ] || die "$bin: no such program (make static)"
[ -f "$ca" ] || die "$ca: no CA bundle (apt-get install ca-certificates)"

case $out in
''|/) die "OUT must be a new directory" ;;
esac
rm -rf "$out"
umask 022
mkdir -p "$out/etc/llmproxy" "$out/etc/ssl/certs" "$out/var/lib/llmproxy"
case $config in
*.yaml|*.yml) sh "$top/yaml2ini.sh" "$config" > "$out/etc/llmproxy/config.ini" ;;
*) cp "$config" "$out/etc/llmproxy/config.ini" ;;
esac
# A configuration the program refuses fails the build, not the container.
# LLMPROXY_RUN runs a binary of another architecture (qemu-aarch64-static).
rc=0
# shellcheck disable=SC2086
${LLMPROXY_RUN:-} "$bin" -t -c "$out/etc/llmproxy/config.ini" > /dev/null || rc=$?
[ $rc -lt 126 ] || die "cannot run $bin here (another architecture? LLMPROXY_RUN=qemu-ARCH-static)"
[ $rc -eq 0 ] || die "$config: refused by llmproxy -t (above)"
# The image EXPOSEs and probes (HEALTHCHECK) 8080: a config that listens
# elsewhere would make a container that is never healthy (LLMProxy's own
# default is :8000).  [server] listen wins over a top-level listen; neither
# means :8080.
port=$(awk '
	/^[ \t]*[;#]/ { next }
	/^[ \t]*\[/ { sec = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", sec); next }
	{
		k = $0; sub(/=.*/, "", k); gsub(/[ \t]/, "", k)
		if (k != "listen") next
		v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+[;#].*$/, "", v)
		sub(/[ \t]+$/, "", v); gsub(/^["\047]|["\047]$/, "", v)
		if (sec == "") top = v; else if (sec == "server") srv = v
	}
	END { v = srv != "" ? srv : top; if (v == "") v = ":8080"; sub(/.*:/, "", v); print v }
' "$out/etc/llmproxy/config.ini")
want=${IMAGE_PORT:-8080}
[ "$port" = "$want" ] || die "$config listens on port $port, but the image EXPOSEs and probes $want: set [server] listen = :$want (YAML: server: listen: \":$want\")"
cp "$bin" "$out/llmproxy"
cp "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
chmod 755 "$out/llmproxy"
chmod 644 "$out/etc/llmproxy/config.ini" "$out/etc/ssl/certs/ca-certificates.crt"
