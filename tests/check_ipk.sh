#!/bin/sh
# shellcheck disable=SC2086,SC2016 # $ash is two words; the sh -c scripts are literal
# check_ipk.sh IPK ARCH BINARY NATIVE_LLMPROXY
#
# Unpacks an OpenWrt package made by `make ipk` with standard tools (tar,
# gzip) and checks what opkg and the router will see: the outer container
# and its members in order, debian-binary, every file of control.tar.gz and
# data.tar.gz with its mode and owner (root), the control fields, conffiles,
# that the binary inside is BINARY and a static executable for ARCH, that
# the config.ini inside passes `llmproxy -t` (the native build, and the
# packaged binary itself when it can run here: natively or under qemu-user),
# the init script under a stand-in for procd, postinst/prerm for an image
# build (IPKG_INSTROOT), and that packing again gives the same bytes.
set -eu

ipk=$1 arch=$2 bin=$3 native=$4
# OpenWrt's shell is busybox ash: the scripts run under it when this machine
# has busybox ($ash is one or two words, unquoted on purpose).
if command -v busybox >/dev/null && busybox sh -c : 2>/dev/null; then ash="busybox sh"; else ash="sh"; fi
top=$(cd "$(dirname "$0")/.." && pwd)
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() { # WHAT GOT WANT
	if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', want '$3'"; fi
}

[ -f "$ipk" ] || { echo "check_ipk.sh: $ipk: no such file" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_ipk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# ---- the name: llmproxy_VERSION-RELEASE_ARCH.ipk --------------------------------
version=$(sed -n 's/^VERSION *= *//p' "$top/Makefile")
release=$(sed -n 's/^PKG_RELEASE:=//p' "$top/port/openwrt/Makefile")
feedver=$(sed -n 's/^PKG_VERSION:=//p' "$top/port/openwrt/Makefile")
expect "port/openwrt/Makefile PKG_VERSION (the top Makefile's VERSION)" "$feedver" "$version"
name=$(basename "$ipk")
ipkarch=${name#llmproxy_"$version-$release"_}
ipkarch=${ipkarch%.ipk}
expect "package file name" "$name" "llmproxy_$version-${release}_$ipkarch.ipk"
case $arch:$ipkarch in
x86_64:x86_64|aarch64:aarch64_*|armhf:arm_*|mipsel:mipsel_*) ok ;;
*) fail "OpenWrt architecture $ipkarch for ARCH=$arch" ;;
esac

# ---- the outer container: a gzipped tar, as ipkg-build makes it -------------------
expect "outer container" "$(gzip -dc "$ipk" | head -c 262 | tail -c 5)" "ustar"
expect "outer members, in order" "$(tar -tzf "$ipk" | tr '\n' ' ')" \
    "./debian-binary ./data.tar.gz ./control.tar.gz "
tar -tvzf "$ipk" --numeric-owner | while read -r mode owner _; do
	[ "$owner" = 0/0 ] || echo "FAIL: outer member owned by $owner" >&2
	[ "$mode" = "-rw-r--r--" ] || echo "FAIL: outer member mode $mode" >&2
done 2>&1 | grep . >&2 && fail "outer members: owner/mode" || ok
mkdir "$tmp/outer"
tar -xzf "$ipk" -C "$tmp/outer"
expect "debian-binary" "$(od -An -c "$tmp/outer/debian-binary" | tr -s ' ')" " 2 . 0 \n"

# ---- listing: "MODE OWNER PATH" per member ---------------------------------------
listing() { # TARGZ
	tar -tvzf "$1" --numeric-owner | awk '{ print $1, $2, $6 }'
}

# ---- control.tar.gz ---------------------------------------------------------------
got=$(listing "$tmp/outer/control.tar.gz")
want="drwxr-xr-x 0/0 ./
-rw-r--r-- 0/0 ./conffiles
-rw-r--r-- 0/0 ./control
-rwxr-xr-x 0/0 ./postinst
-rwxr-xr-x 0/0 ./prerm"
expect "control.tar.gz members" "$got" "$want"
mkdir "$tmp/control"
tar -xzf "$tmp/outer/control.tar.gz" -C "$tmp/control"
ctl=$tmp/control/control
field() { sed -n "s/^$1: //p" "$ctl"; }
expect "Package" "$(field Package)" llmproxy
expect "Version" "$(field Version)" "$version-$release"
expect "Architecture" "$(field Architecture)" "$ipkarch"
expect "License" "$(field License)" MIT
expect "Section" "$(field Section)" net
[ -n "$(field Maintainer)" ] && ok || fail "no Maintainer"
[ -n "$(field Description)" ] && ok || fail "no Description"
grep -q '^Depends:' "$ctl" && fail "a static binary depends on nothing: $(grep '^Depends:' "$ctl")" || ok
# Every line is "Field: value" or a continuation (leading space); no blank one.
if awk '/^[A-Z][A-Za-z-]*: ./ || /^ ./ { next } { exit 1 }' "$ctl"; then ok; else
	fail "control has a malformed line:"; cat "$ctl" >&2; fi
expect "conffiles" "$(cat "$tmp/control/conffiles")" /etc/llmproxy/config.ini
for s in postinst prerm; do
	expect "$s interpreter" "$(head -n 1 "$tmp/control/$s")" "#!/bin/sh"
	$ash -n "$tmp/control/$s" 2>/dev/null && ok || fail "$s: syntax"
done

# ---- data.tar.gz -------------------------------------------------------------------
got=$(listing "$tmp/outer/data.tar.gz")
want="drwxr-xr-x 0/0 ./
drwxr-xr-x 0/0 ./etc/
drwxr-xr-x 0/0 ./etc/init.d/
-rwxr-xr-x 0/0 ./etc/init.d/llmproxy
drwxr-xr-x 0/0 ./etc/llmproxy/
-rw-r--r-- 0/0 ./etc/llmproxy/config.ini
drwxr-xr-x 0/0 ./usr/
drwxr-xr-x 0/0 ./usr/sbin/
-rwxr-xr-x 0/0 ./usr/sbin/llmproxy"
expect "data.tar.gz members" "$got" "$want"
expect "Installed-Size (bytes of data.tar)" "$(field Installed-Size)" \
    "$(gzip -dc "$tmp/outer/data.tar.gz" | wc -c | tr -d ' ')"
# One time stamp for all (reproducible): the control's SourceDateEpoch.
stamps() { TZ=UTC0 tar -tvzf "$1" --full-time | awk '{ print $4, $5 }' | sort -u; }
when=$(TZ=UTC0 date -d "@$(field SourceDateEpoch)" '+%Y-%m-%d %H:%M:%S')
for t in "$ipk" "$tmp/outer/control.tar.gz" "$tmp/outer/data.tar.gz"; do
	expect "time stamps in $(basename "$t")" "$(stamps "$t")" "$when"
done
mkdir "$tmp/data"
tar -xzf "$tmp/outer/data.tar.gz" -C "$tmp/data"
while read -r f; do
	[ -f "$tmp/data$f" ] && ok || fail "conffile $f is not in data.tar.gz"
done < "$tmp/control/conffiles"

# The binary: the one `make static` made, static, for ARCH.
pbin=$tmp/data/usr/sbin/llmproxy
cmp -s "$pbin" "$bin" && ok || fail "usr/sbin/llmproxy is not $bin"
info=$(file -b "$pbin")
case $arch in
x86_64)  isa="x86-64" ;;
aarch64) isa="ARM aarch64" ;;
armhf)   isa="ARM, EABI5" ;;
mipsel)  isa="MIPS" ;;
*)       isa="?" ;;
esac
case $info in
*"$isa"*) ok ;; *) fail "usr/sbin/llmproxy is not $isa: $info" ;;
esac
case $info in
*"statically linked"*|*"static-pie linked"*) ok ;; *) fail "usr/sbin/llmproxy is not static: $info" ;;
esac
case $info in
*"not stripped"*) fail "usr/sbin/llmproxy is not stripped: $info" ;; *) ok ;;
esac

# The config: accepted by the native build, and by the packaged binary where
# it runs.
cfg=$tmp/data/etc/llmproxy/config.ini
out=$("$native" -t -c "$cfg" 2>&1) && ok || fail "$native -t rejects the packaged config.ini: $out"
run=
case $arch in
"$(uname -m)") run=" " ;;
aarch64) command -v qemu-aarch64-static >/dev/null && run=qemu-aarch64-static ;;
armhf)   command -v qemu-arm-static >/dev/null && run=qemu-arm-static ;;
mipsel)  command -v qemu-mipsel-static >/dev/null && run=qemu-mipsel-static ;;
esac
if [ -n "$run" ]; then
	out=$($run "$pbin" -t -c "$cfg" 2>&1) && ok || fail "the packaged binary${run:+ ($run)} rejects its config.ini: $out"
	expect "packaged binary -V" "$($run "$pbin" -V)" "llmproxy $version"
else
	echo "note: no way to run an $arch binary here; the packaged binary was not run"
fi

# ---- the init script, under a stand-in for /etc/rc.common and procd ---------------
init=$tmp/data/etc/init.d/llmproxy
expect "init interpreter" "$(head -n 1 "$init")" "#!/bin/sh /etc/rc.common"
$ash -n "$init" && ok || fail "init script: syntax"
# Paths pointed at this machine; procd_* record their arguments.
sed -e "s|/usr/sbin/llmproxy|$native|g" -e "s|/etc/llmproxy/config.ini|$cfg|g" "$init" > "$tmp/init.sh"
params=$($ash -c '
	procd_open_instance() { echo "open"; }
	procd_set_param() { echo "param $*"; }
	procd_close_instance() { echo "close"; }
	logger() { :; }
	. "$1"
	echo "START=$START USE_PROCD=$USE_PROCD"
	start_service
	echo "rc=$?"
' sh "$tmp/init.sh" 2>&1)
has() { # WHAT LINE
	if printf '%s\n' "$params" | grep -qxF -- "$2"; then ok; else
		fail "init script: $1: no '$2' in:"; printf '%s\n' "$params" >&2; fi
}
has "procd service" "START=95 USE_PROCD=1"
has "instance" "open"
has "command" "param command $native -c $cfg"
has "respawn" "param respawn"
has "stderr to logd" "param stderr 1"
has "reload on a config change" "param file $cfg"
has "reload is SIGHUP, not a restart" "param reload_signal HUP"
has "instance" "close"
has "start_service" "rc=0"
# procd's SIGKILL must come after the program's own shutdown_timeout.
term=$(printf '%s\n' "$params" | sed -n 's/^param term_timeout //p')
grace=$(sed -n 's/^shutdown_timeout *= *\([0-9]*\)s$/\1/p' "$cfg")
if [ -n "$term" ] && [ -n "$grace" ] && [ "$term" -gt "$grace" ]; then ok; else
	fail "term_timeout '$term' must exceed shutdown_timeout '${grace}s'"; fi
# A config that does not check: start_service refuses, saying where.
printf '[server]\nthreads = many\n' > "$tmp/bad.ini"
sed -e "s|/usr/sbin/llmproxy|$native|g" -e "s|/etc/llmproxy/config.ini|$tmp/bad.ini|g" "$init" > "$tmp/init-bad.sh"
bad=$($ash -c '
	procd_open_instance() { echo "open"; }
	procd_set_param() { :; }
	procd_close_instance() { :; }
	logger() { :; }
	. "$1"
	start_service
	echo "rc=$?"
' sh "$tmp/init-bad.sh" 2>&1)
case $bad in
*"bad.ini:2:"*"rc=1"*) ok ;; *) fail "init script with a bad config: $bad" ;;
esac
case $bad in
*open*) fail "init script started a bad config" ;; *) ok ;;
esac

# ---- postinst / prerm in an image build: the rc.d links of `enable` ----------------
root=$tmp/instroot
mkdir -p "$root/etc/init.d"
cp "$init" "$root/etc/init.d/llmproxy"
IPKG_INSTROOT=$root $ash "$tmp/control/postinst" && ok || fail "postinst (IPKG_INSTROOT) failed"
start=$(sed -n 's/^START=//p' "$init") stop=$(sed -n 's/^STOP=//p' "$init")
for l in "S$start" "K$stop"; do
	expect "postinst: rc.d/${l}llmproxy" "$(readlink "$root/etc/rc.d/${l}llmproxy" || true)" ../init.d/llmproxy
done
IPKG_INSTROOT=$root $ash "$tmp/control/prerm" && ok || fail "prerm (IPKG_INSTROOT) failed"
expect "prerm: rc.d emptied" "$(ls -A "$root/etc/rc.d")" ""
IPKG_NO_SCRIPT=1 IPKG_INSTROOT=$root $ash "$tmp/control/postinst" && ok || fail "postinst (IPKG_NO_SCRIPT)"
expect "IPKG_NO_SCRIPT: nothing done" "$(ls -A "$root/etc/rc.d")" ""

# ---- reproducible: the same inputs, the same bytes --------------------------------
epoch=$(field SourceDateEpoch)
cfgsrc=$tmp/config-source.ini
cp "$cfg" "$cfgsrc"
again=$(SOURCE_DATE_EPOCH=$epoch sh "$top/port/openwrt/mkipk.sh" "$bin" "$ipkarch" "$version" "$cfgsrc" "$tmp/again")
cmp -s "$again" "$ipk" && ok || fail "packing again gave different bytes"

echo "check_ipk: $name: $checks checks, $fails failed"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
