#!/bin/sh
# bearssl-source.sh DIR — unpacks Debian's BearSSL source package into
# DIR/bearssl (once; DIR/bearssl/.unpacked marks it done).
#
# Why from source: Debian's libbearssl.a was built with _FORTIFY_SOURCE and
# needs glibc's __memcpy_chk, so it does not link under musl.  The source
# package is the same code with Debian's changes, compiled here with the musl
# compiler of each architecture (see the Makefile, "static and cross builds").
#
# `apt-get source` needs a deb-src entry.  As root, one is added beside
# Debian's own (same URIs, Suites, Components, Signed-By) in
# /etc/apt/sources.list.d/llmproxy-deb-src.sources (or .list); otherwise the
# exact commands are printed and it fails.
set -eu

dir=${1:?usage: bearssl-source.sh DIR}
if [ -f "$dir/bearssl/.unpacked" ]; then
	exit 0
fi

have_src() {
	apt-cache showsrc bearssl 2>/dev/null | grep -q '^Package: bearssl'
}

srcdir=/etc/apt/sources.list.d
if ! have_src; then
	if [ -f "$srcdir/debian.sources" ]; then
		new=$srcdir/llmproxy-deb-src.sources
		make_entry() { sed 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$srcdir/debian.sources"; }
	elif [ -f /etc/apt/sources.list ]; then
		new=$srcdir/llmproxy-deb-src.list
		make_entry() { sed -n 's/^deb[[:space:]]/deb-src /p' /etc/apt/sources.list; }
	else
		echo "bearssl-source.sh: no Debian apt source found to add a deb-src entry for" >&2
		exit 1
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "bearssl-source.sh: apt-get source bearssl needs a deb-src entry; run:" >&2
		if [ "${new##*.}" = sources ]; then
			echo "  sed 's/^Types: deb\$/Types: deb-src/' $srcdir/debian.sources | sudo tee $new >/dev/null && sudo apt-get update" >&2
		else
			echo "  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | sudo tee $new >/dev/null && sudo apt-get update" >&2
		fi
		exit 1
	fi
	echo "adding $new (deb-src, for apt-get source bearssl)"
	make_entry > "$new"
	# A failing index of some other architecture or suite must not stop us:
	# whether bearssl's source is now known is what counts.
	apt-get update -q >/dev/null 2>&1 || true
	if ! have_src; then
		echo "bearssl-source.sh: apt-get update did not make bearssl's source known" >&2
		exit 1
	fi
fi

command -v dpkg-source >/dev/null || {
	echo "bearssl-source.sh: dpkg-source is missing (Debian package dpkg-dev)" >&2
	exit 1
}

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# _apt may not write into a directory of ours: let it (else apt warns that
# the download ran unsandboxed as root).
chmod 0777 "$tmp"
(cd "$tmp" && apt-get source -q --download-only bearssl >/dev/null)
rm -rf "$dir/bearssl"
# (gpgv cannot check the uploader's signature without debian-keyring; apt
# has already checked every file against the signed Sources index.)
if ! dpkg-source -x "$tmp"/bearssl_*.dsc "$dir/bearssl" >"$tmp/log" 2>&1; then
	cat "$tmp/log" >&2
	exit 1
fi
rm -f "$dir"/bearssl_*
for f in "$tmp"/bearssl_*.dsc; do basename "$f"; done > "$dir/bearssl/.unpacked"
echo "unpacked $(cat "$dir/bearssl/.unpacked") into $dir/bearssl"
