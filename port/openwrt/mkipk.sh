#!/bin/sh
# mkipk.sh BINARY IPK_ARCH VERSION CONFIG OUTDIR
#
# An OpenWrt package (.ipk) without the OpenWrt SDK: BINARY (a static
# llmproxy, `make static`) as /usr/sbin/llmproxy, files/llmproxy.init as
# /etc/init.d/llmproxy, CONFIG (an INI file, or a config.yaml converted with
# yaml2ini.sh) as /etc/llmproxy/config.ini, the conffile list and the
# postinst/prerm of control/.  The layout is what OpenWrt's ipkg-build makes
# and opkg reads: a gzipped tar of ./debian-binary, ./data.tar.gz and
# ./control.tar.gz, every member owned by root (0:0), every time stamp
# SOURCE_DATE_EPOCH (default: the last commit's), so that the same input
# gives the same bytes.  Prints the path of the package.  `make ipk` runs it.
set -eu

die() { echo "mkipk.sh: $*" >&2; exit 1; }
[ $# -eq 5 ] || die "usage: mkipk.sh BINARY IPK_ARCH VERSION CONFIG OUTDIR"
bin=$1 arch=$2 version=$3 config=$4 outdir=$5
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

[ -f "$bin" ] || die "$bin: no such file (make static ARCH=...)"
[ -f "$config" ] || die "$config: no such file"
case $arch in
''|*[!a-z0-9_.+-]*) die "bad architecture name: '$arch'" ;;
esac
release=$(sed -n 's/^PKG_RELEASE:=//p' "$here/Makefile")
[ -n "$release" ] || die "no PKG_RELEASE in $here/Makefile"
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}
pkgver=$version-$release

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkipk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
umask 022

# ---- data: what lands on the router ----------------------------------------
d=$tmp/data
mkdir -p "$d/usr/sbin" "$d/etc/init.d" "$d/etc/llmproxy"
cp "$bin" "$d/usr/sbin/llmproxy"
cp "$here/files/llmproxy.init" "$d/etc/init.d/llmproxy"
case $config in
*.yaml|*.yml) sh "$top/yaml2ini.sh" "$config" > "$d/etc/llmproxy/config.ini" ;;
*) cp "$config" "$d/etc/llmproxy/config.ini" ;;
esac
chmod 755 "$d/usr/sbin/llmproxy" "$d/etc/init.d/llmproxy"
chmod 644 "$d/etc/llmproxy/config.ini"
find "$d" -type d -exec chmod 755 {} +

# GNU tar, as ipkg-build: sorted names, numeric root ownership, one mtime.
pack() { # DIR [MEMBERS...] > out.tar.gz
	dir=$1; shift
	[ $# -gt 0 ] || set -- .
	(cd "$dir" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
	    --sort=name --mtime="@$epoch" -cf - "$@") | gzip -n -9
}
pack "$d" > "$tmp/data.tar.gz"
installed_size=$(gzip -dc "$tmp/data.tar.gz" | wc -c | tr -d ' ')

# ---- control ---------------------------------------------------------------
c=$tmp/control
mkdir -p "$c"
# No Depends: the binary is static (no libc, no libinih on the router).
cat > "$c/control" <<CONTROL
Package: llmproxy
Version: $pkgver
Source: port/openwrt
SourceName: llmproxy
License: MIT
LicenseFiles: LICENSE
Section: net
SourceDateEpoch: $epoch
Maintainer: llmproxy developers
Architecture: $arch
Installed-Size: $installed_size
Description:  Gateway for LLM traffic (OpenAI API): streaming without buffering,
 load balancing with health checks and failover, per-request token usage for
 billing, Prometheus metrics.  One static binary, one INI file.
CONTROL
echo /etc/llmproxy/config.ini > "$c/conffiles"
cp "$here/control/postinst" "$here/control/prerm" "$c/"
chmod 644 "$c/control" "$c/conffiles"
chmod 755 "$c/postinst" "$c/prerm"
chmod 755 "$c"
pack "$c" > "$tmp/control.tar.gz"

# ---- the package -----------------------------------------------------------
printf '2.0\n' > "$tmp/debian-binary"
chmod 644 "$tmp/debian-binary" "$tmp/data.tar.gz" "$tmp/control.tar.gz"
mkdir -p "$outdir"
out=$outdir/llmproxy_${pkgver}_$arch.ipk
pack "$tmp" ./debian-binary ./data.tar.gz ./control.tar.gz > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
