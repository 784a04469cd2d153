#!/bin/sh
# check_install.sh — `make install` into a DESTDIR, as a distribution package
# or a person would run it: with PREFIX=/usr and with the default
# /usr/local, every file and its mode, the unit's paths following PREFIX,
# the installed program checking the installed config, a second install
# keeping a config someone edited, and uninstall leaving the config.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
make=${MAKE:-make}
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() { if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', want '$3'"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# Relative DESTDIR, as the brief's "make install DESTDIR=tmp" would be too.
inst() { "$make" -s -C "$top" --no-print-directory install "$@" >> "$tmp/make.log" 2>&1 ||
	{ cat "$tmp/make.log" >&2; echo "check_install: make install $* failed" >&2; exit 1; }; }
tree() { (cd "$1" && find . -printf '%M %p\n' | LC_ALL=C sort -k 2); }

# ---- PREFIX=/usr ----------------------------------------------------------------------
d=$tmp/usr
inst DESTDIR="$d" PREFIX=/usr
want="drwxr-xr-x .
drwxr-xr-x ./etc
drwxr-xr-x ./etc/llmproxy
-rw-r--r-- ./etc/llmproxy/config.ini
drwxr-xr-x ./usr
drwxr-xr-x ./usr/lib
drwxr-xr-x ./usr/lib/systemd
drwxr-xr-x ./usr/lib/systemd/system
-rw-r--r-- ./usr/lib/systemd/system/llmproxy.service
drwxr-xr-x ./usr/sbin
-rwxr-xr-x ./usr/sbin/llmproxy"
expect "PREFIX=/usr: files" "$(tree "$d")" "$want"
unit=$d/usr/lib/systemd/system/llmproxy.service
expect "PREFIX=/usr: ExecStart" "$(sed -n 's/^ExecStart=//p' "$unit")" \
    "/usr/sbin/llmproxy -c /etc/llmproxy/config.ini"
expect "PREFIX=/usr: ExecStartPre" "$(sed -n 's/^ExecStartPre=//p' "$unit")" \
    "/usr/sbin/llmproxy -t -c /etc/llmproxy/config.ini"
grep -q /usr/local "$unit" && fail "PREFIX=/usr: the unit still names /usr/local" || ok
cmp -s "$d/etc/llmproxy/config.ini" "$top/config.ini.example" && ok ||
	fail "config.ini is not config.ini.example"
cmp -s "$d/usr/sbin/llmproxy" "$top/llmproxy" && ok || fail "usr/sbin/llmproxy is not ./llmproxy"
expect "installed program -V" "$("$d/usr/sbin/llmproxy" -V)" \
    "llmproxy $(sed -n 's/^VERSION *= *//p' "$top/Makefile")"
out=$("$d/usr/sbin/llmproxy" -t -c "$d/etc/llmproxy/config.ini" 2>&1) && ok ||
	fail "the installed program rejects the installed config: $out"

# ---- again, over an edited config -----------------------------------------------------
printf '\n; edited by the operator\n[server]\nthreads = 8\n' >> "$d/etc/llmproxy/config.ini"
chmod 600 "$d/etc/llmproxy/config.ini"
cp -p "$d/etc/llmproxy/config.ini" "$tmp/edited.ini"
echo "stale" > "$d/usr/sbin/llmproxy"
inst DESTDIR="$d" PREFIX=/usr
cmp -s "$d/etc/llmproxy/config.ini" "$tmp/edited.ini" && ok || fail "a second install replaced an edited config"
expect "edited config's mode kept" "$(stat -c %a "$d/etc/llmproxy/config.ini")" 600
cmp -s "$d/usr/sbin/llmproxy" "$top/llmproxy" && ok || fail "a second install did not replace the program"
grep -q "config.ini exists: kept" "$tmp/make.log" && ok || fail "make install did not say the config was kept"

# ---- uninstall: the program and the unit go, the config stays -------------------------
"$make" -s -C "$top" --no-print-directory uninstall DESTDIR="$d" PREFIX=/usr >> "$tmp/make.log" 2>&1 ||
	fail "make uninstall failed"
[ -e "$d/usr/sbin/llmproxy" ] && fail "uninstall left usr/sbin/llmproxy" || ok
[ -e "$unit" ] && fail "uninstall left the unit" || ok
cmp -s "$d/etc/llmproxy/config.ini" "$tmp/edited.ini" && ok || fail "uninstall touched the config"

# ---- the default PREFIX: /usr/local -------------------------------------------------
(cd "$tmp" && "$make" -s -C "$top" --no-print-directory install DESTDIR="$tmp/local" >> "$tmp/make.log" 2>&1) ||
	fail "make install (default PREFIX) failed"
want="-rw-r--r-- ./etc/llmproxy/config.ini
-rw-r--r-- ./usr/local/lib/systemd/system/llmproxy.service
-rwxr-xr-x ./usr/local/sbin/llmproxy"
expect "default PREFIX: files" "$(tree "$tmp/local" | grep -v '^d')" "$want"
cmp -s "$tmp/local/usr/local/lib/systemd/system/llmproxy.service" "$top/port/systemd/llmproxy.service" && ok ||
	fail "default PREFIX: the unit differs from port/systemd/llmproxy.service"

echo "check_install: $checks checks, $fails failed"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
