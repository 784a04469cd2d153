#!/bin/sh
# check_openwrt_feed.sh — builds port/openwrt/Makefile the way an OpenWrt
# buildroot or SDK would, with a stand-in for the SDK (the real one is not
# available here): a rules.mk and include/package.mk of a few lines that give
# the variables and macros the package uses (TARGET_CC = musl-gcc, INSTALL_*,
# Download, BuildPackage), a staging dir holding libinih.a and ini.h (as the
# libinih package's InstallDev does) and, in dl/, the jsmn and BearSSL
# tarballs the Download/s name, made from Debian's jsmn.h and BearSSL's
# Debian source (port/cross/bearssl-source.sh, as `make static` uses it).
# Then Build/Prepare,
# Build/Compile and Package/llmproxy/install run as the SDK runs them, and
# the installed tree must be the data.tar.gz of `make ipk`: the same paths and
# modes, a static binary that starts, the config.ini that checks, and the
# conffiles and description defined.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() { if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', want '$3'"; fi; }

for t in musl-gcc make tar gzip; do
	command -v "$t" >/dev/null || { echo "check_openwrt_feed: needs $t" >&2; exit 1; }
done
inih=/usr/lib/$(uname -m)-linux-gnu/libinih.a
[ -f "$inih" ] && [ -f /usr/include/ini.h ] && [ -f /usr/include/jsmn.h ] || {
	echo "check_openwrt_feed: needs libinih-dev and libjsmn-dev" >&2; exit 1; }

sdk=$(mktemp -d "${TMPDIR:-/tmp}/check_openwrt_feed.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$sdk"' EXIT INT TERM
mkdir -p "$sdk/include" "$sdk/staging/usr/lib" "$sdk/staging/usr/include" "$sdk/dl" \
    "$sdk/build_dir" "$sdk/ipkg"

# ---- the stand-in SDK ----------------------------------------------------------------
cat > "$sdk/rules.mk" <<'MK'
INCLUDE_DIR := $(TOPDIR)/include
BUILD_DIR   := $(TOPDIR)/build_dir
DL_DIR      := $(TOPDIR)/dl
STAGING_DIR := $(TOPDIR)/staging
TARGET_CC       := musl-gcc
TARGET_CROSS    :=
TARGET_CFLAGS   := -Os -pipe
TARGET_CPPFLAGS := -I$(STAGING_DIR)/usr/include
TARGET_LDFLAGS  := -L$(STAGING_DIR)/usr/lib
CP    := cp -fpR
TAR   := tar
INSTALL_DIR  := install -d -m0755
INSTALL_BIN  := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
MK
cat > "$sdk/include/package.mk" <<'MK'
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
# Download/NAME: the file must be in DL_DIR (it is fetched by the real SDK).
define Download
DOWNLOADS += $$(DL_DIR)/$$(FILE)
endef
# BuildPackage: prepare, compile, install into IPKG_DIR, and write out what
# the package declares.
define BuildPackage
.PHONY: package
package: $$(DOWNLOADS)
	rm -rf $$(PKG_BUILD_DIR) $$(IPKG_DIR)
	$$(Build/Prepare)
	$$(Build/Compile)
	$$(call Package/$(1)/install,$$(IPKG_DIR))
	printf '%s\n' '$$(strip $$(Package/$(1)/conffiles))' > $$(IPKG_DIR).conffiles
	printf '%s\n' '$$(SECTION)|$$(CATEGORY)|$$(TITLE)' > $$(IPKG_DIR).meta
	printf '%s\n' "$$$$DESCRIPTION" > $$(IPKG_DIR).description
package: export DESCRIPTION=$$(Package/$(1)/description)
$$(eval $$(Package/$(1)))
endef
MK
cp "$inih" "$sdk/staging/usr/lib/"
cp /usr/include/ini.h "$sdk/staging/usr/include/"
jsmnver=$(sed -n 's/^JSMN_VERSION:=//p' "$top/port/openwrt/Makefile")
mkdir -p "$sdk/jsmn-src/jsmn-$jsmnver"
cp /usr/include/jsmn.h "$sdk/jsmn-src/jsmn-$jsmnver/"
tar -czf "$sdk/dl/jsmn-$jsmnver.tar.gz" -C "$sdk/jsmn-src" "jsmn-$jsmnver"
sh "$top/port/cross/bearssl-source.sh" "$top/build-static-src" >/dev/null
sslver=$(sed -n 's/^BEARSSL_VERSION:=//p' "$top/port/openwrt/Makefile")
mkdir -p "$sdk/bearssl-src"
cp -R "$top/build-static-src/bearssl" "$sdk/bearssl-src/bearssl-$sslver"
rm -rf "$sdk/bearssl-src/bearssl-$sslver/build" "$sdk/bearssl-src/bearssl-$sslver/debian" \
    "$sdk/bearssl-src/bearssl-$sslver/.unpacked"
tar -czf "$sdk/dl/bearssl-$sslver.tar.gz" -C "$sdk/bearssl-src" "bearssl-$sslver"

# ---- build it --------------------------------------------------------------------------
if ! make -C "$top/port/openwrt" TOPDIR="$sdk" IPKG_DIR="$sdk/ipkg/llmproxy" \
    package > "$sdk/build.log" 2>&1; then
	tail -n 40 "$sdk/build.log" >&2
	echo "check_openwrt_feed: the package did not build" >&2
	exit 1
fi
root=$sdk/ipkg/llmproxy

# ---- what it installed: the data.tar.gz of `make ipk` ----------------------------------
got=$(cd "$root" && find . -printf '%M %p\n' | LC_ALL=C sort -k 2)
want="drwxr-xr-x .
drwxr-xr-x ./etc
drwxr-xr-x ./etc/init.d
-rwxr-xr-x ./etc/init.d/llmproxy
drwxr-xr-x ./etc/llmproxy
-rw-r--r-- ./etc/llmproxy/config.ini
drwxr-xr-x ./usr
drwxr-xr-x ./usr/sbin
-rwxr-xr-x ./usr/sbin/llmproxy"
expect "installed files" "$got" "$want"
cmp -s "$root/etc/init.d/llmproxy" "$top/port/openwrt/files/llmproxy.init" && ok ||
	fail "etc/init.d/llmproxy is not files/llmproxy.init"
cmp -s "$root/etc/llmproxy/config.ini" "$top/port/openwrt/files/config.ini" && ok ||
	fail "etc/llmproxy/config.ini is not files/config.ini"
case $(file -b "$root/usr/sbin/llmproxy") in
*"statically linked"*) ok ;;
*) fail "usr/sbin/llmproxy is not static: $(file -b "$root/usr/sbin/llmproxy")" ;;
esac
version=$(sed -n 's/^PKG_VERSION:=//p' "$top/port/openwrt/Makefile")
expect "llmproxy -V" "$("$root/usr/sbin/llmproxy" -V)" "llmproxy $version"
out=$("$root/usr/sbin/llmproxy" -t -c "$root/etc/llmproxy/config.ini" 2>&1) && ok ||
	fail "llmproxy -t rejects the installed config.ini: $out"
expect "conffiles" "$(cat "$root.conffiles")" /etc/llmproxy/config.ini
expect "section|category" "$(cut -d'|' -f1,2 "$root.meta")" "net|Network"
[ -n "$(cut -d'|' -f3 "$root.meta")" ] && ok || fail "no TITLE"
grep -q 'vLLM' "$root.description" && ok || fail "no description"

echo "check_openwrt_feed: $checks checks, $fails failed"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
