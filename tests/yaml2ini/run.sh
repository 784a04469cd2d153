#!/bin/sh
# tests/yaml2ini/run.sh -- golden-file tests for yaml2ini.sh.
#
#   sh tests/yaml2ini/run.sh        (LLMPROXY_BIN: the binary, default ./llmproxy
#                                    of this repository; YAML2INI_QUICK=1: one
#                                    shell and one awk instead of all of them)
#
#  cases/NAME.yaml    converts to exactly cases/NAME.ini, with cases/NAME.err
#                     (block-scalar warnings) or nothing on stderr, exit 0
#  errors/NAME.yaml   exit 1, nothing on stdout, exactly errors/NAME.err on stderr
#  crlf+bom           every case and error again with CRLF line ends and a
#                     UTF-8 BOM: the same output, the same messages
#  fixtures/NAME      LLMProxy's own files (copies of ../shared/fixtures/llmproxy,
#                     compared with it when it is there) convert to
#                     fixtures/NAME.ini, and `llmproxy -t` accepts each one
#                     ("configuration OK") -- but config.yaml.example and
#                     config-reference.yaml, which it refuses, naming the auth
#                     provider it cannot be (builtin) and its line in the
#                     converted file; with each refusal turned off in turn (the
#                     next provider, [auth] enabled = true itself, then
#                     config.yaml.example's builtin usage reporter), the rest
#                     loads
#  hand-made          each converted fixture and its hand-made conversion in
#                     tests/data/config give the loader the same messages, step
#                     by step through those refusals (line numbers aside)
#  round trip         values INI must quote, read back by the loader as the YAML
#                     meant them (its error messages echo the value it read)
#  command line       stdin, -, usage, unreadable files
#  shells, awks       every sh (dash, bash, busybox sh, posh, yash, ksh, mksh) and
#                     every awk (mawk, gawk, busybox awk, original-awk) installed
#                     here gives byte-identical results on cases, errors, fixtures
set -u

here=$(cd "$(dirname "$0")" && pwd) || exit 1
root=$(cd "$here/../.." && pwd) || exit 1
conv=$root/yaml2ini.sh
bin=${LLMPROXY_BIN:-$root/llmproxy}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "run.sh: $bin: no llmproxy binary (make llmproxy, or set LLMPROXY_BIN)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/yaml2ini.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

pass=0
failed=0
ok() { pass=$((pass + 1)); }
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}

# convert SH AWK FILE: stdout to $tmp/out, stderr to $tmp/err, status to $rc.
convert() {
	AWK=$2 $1 "$conv" "$3" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# The result of `convert` is what the golden files say.
#   expect_ok WHAT EXPECTED_INI EXPECTED_ERR_OR_EMPTY
#   expect_error WHAT EXPECTED_ERR
expect_ok() {
	if [ "$rc" -ne 0 ]; then
		bad "$1: exit $rc"; sed 's/^/  /' "$tmp/err"; return
	fi
	if ! cmp -s "$tmp/out" "$2"; then
		bad "$1: output differs from ${2#"$here"/}"; diff -u "$2" "$tmp/out" | head -20; return
	fi
	if [ -n "$3" ]; then
		cmp -s "$tmp/err" "$3" || { bad "$1: stderr differs from ${3#"$here"/}"; diff -u "$3" "$tmp/err"; return; }
	elif [ -s "$tmp/err" ]; then
		bad "$1: unexpected stderr"; cat "$tmp/err"; return
	fi
	ok
}
expect_error() {
	if [ "$rc" -ne 1 ]; then
		bad "$1: exit $rc, not 1"; return
	fi
	if [ -s "$tmp/out" ]; then
		bad "$1: partial output on stdout"; head -5 "$tmp/out"; return
	fi
	cmp -s "$tmp/err" "$2" || { bad "$1: stderr differs from ${2#"$here"/}"; diff -u "$2" "$tmp/err"; return; }
	ok
}

# All golden checks with one shell and one awk ($3: a tag for messages).
golden() {
	for y in "$here"/cases/*.yaml; do
		n=${y%.yaml}
		convert "$1" "$2" "$y"
		e=""; [ -f "$n.err" ] && e=$n.err
		expect_ok "$3cases/${n##*/}" "$n.ini" "$e"
	done
	for y in "$here"/errors/*.yaml; do
		n=${y%.yaml}
		convert "$1" "$2" "$y"
		expect_error "$3errors/${n##*/}" "$n.err"
	done
	for y in "$here"/fixtures/*.yaml "$here"/fixtures/config.yaml.example; do
		convert "$1" "$2" "$y"
		expect_ok "$3fixtures/${y##*/}" "${y%.yaml}.ini" ""
	done
}

# ---- golden files: the default sh and awk ---------------------------------------
golden sh awk ""

# ---- the same with CRLF line ends and a UTF-8 BOM -----------------------------------
mkdir "$tmp/crlf"
for y in "$here"/cases/*.yaml "$here"/errors/*.yaml; do
	n=${y%.yaml}
	c=$tmp/crlf/${y##*/}
	{ printf '\357\273\277'; awk '{ printf "%s\r\n", $0 }' "$y"; } >"$c"
	convert sh awk "$c"
	case $y in
	*/cases/*)
		e=""; [ -f "$n.err" ] && e=$n.err
		expect_ok "crlf+bom ${n##*/}" "$n.ini" "$e" ;;
	*)	expect_error "crlf+bom ${n##*/}" "$n.err" ;;
	esac
done

# ---- the fixtures -------------------------------------------------------------------
shared=$root/../shared/fixtures/llmproxy
if [ -d "$shared" ]; then
	for f in "$shared"/*; do
		if cmp -s "$f" "$here/fixtures/${f##*/}"; then ok
		else bad "fixtures/${f##*/} is not a copy of $f"; fi
	done
fi

# The line of `key = ...` in [section] of an INI file (0: none).
line_of() {
	awk -v s="$2" -v k="$3" '
	/^\[/ { sec = substr($0, 2, index($0, "]") - 2); next }
	sec == s && index($0, k " =") == 1 { print NR; found = 1; exit }
	END { if (!found) print 0 }' "$1"
}

# `llmproxy -t` on $1 (run in its directory, so that messages name the file
# alone), step by step: while it refuses a setting, record the refusal, set
# `enabled = false` in that section and try again.  $tmp/steps gets the
# messages (time stamps and FILE:LINE: removed), $tmp/refused one
# "[section] key = value LINE" per refusal; $loaded is 1 when it ended with
# "configuration OK".
load_steps() {
	f=$1
	: >"$tmp/steps"
	: >"$tmp/refused"
	loaded=0
	for _ in 1 2 3 4; do
		(cd "$(dirname "$f")" && "$bin" -t -c "$(basename "$f")") >"$tmp/t" 2>&1
		trc=$?
		sed -e 's/^[0-9][0-9-]*T[0-9:.]*Z //' -e 's/"time":"[^"]*",//' \
		    -e 's/[A-Za-z0-9_.-]*\.ini:[0-9][0-9]*: //' "$tmp/t" >>"$tmp/steps"
		if [ "$trc" -eq 0 ] && [ "$(tail -n 1 "$tmp/t")" = "configuration OK" ]; then
			loaded=1
			return
		fi
		# llmproxy: FILE:LINE: [SECTION] KEY = VALUE: why
		m=$(sed -n 's/^llmproxy: [^:]*:\([0-9][0-9]*\): \[\([^]]*\)\] \([^ ]*\) = \([^:]*\): .*/\2 \3 \4 \1/p' "$tmp/t")
		[ -n "$m" ] || return
		set -f
		# shellcheck disable=SC2086 # split on purpose
		set -- $m
		set +f
		echo "[$1] $2 = $3 $4" >>"$tmp/refused"
		awk -v s="$1" '
		/^\[/ { sec = substr($0, 2, index($0, "]") - 2) }
		sec == s && $1 == "enabled" && $2 == "=" { $0 = "enabled = false" }
		{ print }' "$f" >"$f.next" && mv "$f.next" "$f"
	done
}

mkdir "$tmp/fx" "$tmp/hand"
for y in "$here"/fixtures/*.yaml "$here"/fixtures/config.yaml.example; do
	base=${y##*/}
	ini=$tmp/fx/${base%.yaml}.ini
	sh "$conv" "$y" >"$ini" 2>/dev/null || { bad "$base: does not convert"; continue; }
	case $base in
	config.yaml.example)   want="[auth.pipeline.0] type = builtin|[auth] enabled = true|[usage.reporters.0] type = builtin"; hand=config-yaml-example ;;
	config-reference.yaml) want="[auth.pipeline.0] type = builtin|[auth.pipeline.1] type = redis|[auth] enabled = true"; hand=config-reference ;;
	*)                     want=""; hand=${base%.yaml} ;;
	esac
	# The lines the refused settings are on, before load_steps edits the file.
	lines=""
	old_ifs=$IFS; IFS='|'
	for w in $want; do
		IFS=$old_ifs
		set -f
		# shellcheck disable=SC2086 # split on purpose: [SECTION] KEY = VALUE
		set -- $w
		set +f
		s=${1#[}; s=${s%]}
		lines="$lines|$w $(line_of "$ini" "$s" "$2")"
	done
	IFS=$old_ifs
	lines=${lines#|}

	load_steps "$ini"
	cp "$tmp/steps" "$tmp/steps.fx"
	got=$(tr '\n' '|' <"$tmp/refused"); got=${got%|}
	if [ "$loaded" -ne 1 ]; then
		bad "$base: llmproxy -t does not accept the converted file:"; cat "$tmp/t"
	elif [ -z "$want" ] && [ -n "$got" ]; then
		bad "$base: refused ($got), but it must load as it is"
	elif [ "$got" != "$lines" ]; then
		bad "$base: refused '$got', expected '$lines'"
	else
		ok
	fi

	# The hand-made conversion: the same messages at every step.
	cp "$root/tests/data/config/$hand.ini" "$tmp/hand/$hand.ini"
	load_steps "$tmp/hand/$hand.ini"
	if cmp -s "$tmp/steps" "$tmp/steps.fx"; then ok
	else bad "$base: llmproxy -t says other things of tests/data/config/$hand.ini"; diff "$tmp/steps" "$tmp/steps.fx"; fi
done

# ---- round trip: what llmproxy reads is what the YAML says ------------------------
# [health_check] method takes GET only; its error echoes the value it read.
# Each row: the YAML value | the string it means.
tab=$(printf '\t')
mkdir "$tmp/rt"
while IFS='|' read -r yaml want; do
	[ -n "$yaml" ] || continue
	want=$(printf '%s' "$want" | sed "s/<TAB>/$tab/g")
	printf 'backends:\n  - url: http://127.0.0.1:1\nhealth_check:\n  method: %s\n' "$yaml" >"$tmp/rt/rt.yaml"
	if ! sh "$conv" "$tmp/rt/rt.yaml" >"$tmp/rt/rt.ini" 2>"$tmp/err"; then
		bad "round trip $yaml: does not convert: $(cat "$tmp/err")"; continue
	fi
	got=$(cd "$tmp/rt" && "$bin" -t -c rt.ini 2>&1 |
	    sed -n 's/^llmproxy: rt\.ini:[0-9]*: \[health_check\] method = \(.*\): llmproxy probes with GET only$/<\1>/p')
	if [ "$got" = "<$want>" ]; then ok
	else bad "round trip $yaml: llmproxy read '$got', not '$want'"; fi
done <<'EOF'
";x"|;x
";"|;
"#x"|#x
" a "| a 
"  "|  
""|
'"q"'|"q"
"'s'"|'s'
"\"a"|"a
a"|a"
a#b|a#b
"a #b"|a #b
"x: y"|x: y
'it''s'|it's
"tab\there"|tab<TAB>here
a	b|a<TAB>b
"caf\u00e9"|café
"a\\b"|a\b
a=b|a=b
"=x"|=x
"[x]"|[x]
a;b|a;b
EOF
# A list: quotes around the whole list, never around an item.
while IFS='|' read -r yaml want; do
	printf 'backends:\n  - url: http://127.0.0.1:1\nrouting:\n  retry:\n    retry_on: %s\n' "$yaml" >"$tmp/rt/rt.yaml"
	sh "$conv" "$tmp/rt/rt.yaml" >"$tmp/rt/rt.ini" 2>/dev/null || { bad "round trip $yaml: does not convert"; continue; }
	got=$(cd "$tmp/rt" && "$bin" -t -c rt.ini 2>&1 |
	    sed -n 's/^llmproxy: rt\.ini:[0-9]*: \[routing\.retry\] retry_on = \(.*\): [a-z].*/<\1>/p')
	if [ "$got" = "<$want>" ]; then ok
	else bad "round trip list $yaml: llmproxy read '$got', not '$want'"; fi
done <<'EOF'
[";x", b]|;x, b
['"a"', b]|"a", b
[x, "y z"]|x, y z
[]|
EOF

# ---- the command line -----------------------------------------------------------------
fx=$here/fixtures/config-v0.1.0.yaml
sed '1s/.*/; converted by yaml2ini.sh from standard input; edit that file and convert again/' \
    "$here/fixtures/config-v0.1.0.ini" >"$tmp/stdin.ini"
sh "$conv" <"$fx" >"$tmp/out" 2>"$tmp/err"; rc=$?
expect_ok "stdin" "$tmp/stdin.ini" ""
sh "$conv" - <"$fx" >"$tmp/out" 2>"$tmp/err"; rc=$?
expect_ok "stdin as -" "$tmp/stdin.ini" ""
cp "$fx" "$tmp/a=b.yaml"
sed '1s/.*/; converted by yaml2ini.sh from a=b.yaml; edit that file and convert again/' \
    "$here/fixtures/config-v0.1.0.ini" >"$tmp/eq.ini"
(cd "$tmp" && sh "$conv" a=b.yaml) >"$tmp/out" 2>"$tmp/err"; rc=$?
expect_ok "a file named a=b.yaml" "$tmp/eq.ini" ""
printf 'usage: sh yaml2ini.sh [config.yaml] > config.ini\n' >"$tmp/usage"
sh "$conv" a b >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] && cmp -s "$tmp/err" "$tmp/usage"; then ok
else bad "two arguments: exit $rc, $(cat "$tmp/err")"; fi
for f in "$tmp/no-such-file.yaml" "$tmp"; do
	sh "$conv" "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
	if [ "$rc" -eq 1 ] && [ ! -s "$tmp/out" ] &&
	    [ "$(cat "$tmp/err")" = "yaml2ini.sh: $f: cannot read (not a readable file)" ]; then ok
	else bad "reading $f: exit $rc, $(cat "$tmp/err")"; fi
done

# ---- every shell and awk ------------------------------------------------------------------
# The shell runs only the wrapper and the awk only the program: each shell
# with the default awk, and each awk (told apart by the file it resolves to)
# with the default shell.
if [ "${YAML2INI_QUICK:-0}" != 1 ]; then
	combos=""
	for s in dash bash posh yash ksh mksh; do
		command -v "$s" >/dev/null 2>&1 && combos="$combos $s+awk"
	done
	command -v busybox >/dev/null 2>&1 && combos="$combos busybox_sh+awk busybox_sh+busybox_awk"
	seen=""
	for a in mawk gawk original-awk nawk; do
		p=$(command -v "$a" 2>/dev/null) || continue
		r=$(readlink -f "$p" 2>/dev/null || echo "$p")
		case " $seen " in *" $r "*) continue ;; esac
		seen="$seen $r"
		combos="$combos sh+$a"
	done
	command -v busybox >/dev/null 2>&1 && combos="$combos sh+busybox_awk"
	tested=""
	for c in $combos; do
		S=${c%%+*}; [ "$S" = busybox_sh ] && S="busybox sh"
		A=${c#*+}; [ "$A" = busybox_awk ] && A="busybox awk"
		before=$failed
		golden "$S" "$A" "[$S + $A] "
		[ "$failed" -eq "$before" ] && tested="$tested, $S + $A"
	done
	echo "yaml2ini: every golden file passes with ${tested#, }"
fi

total=$((pass + failed))
if [ "$failed" -ne 0 ]; then
	echo "yaml2ini: $failed of $total checks FAILED"
	exit 1
fi
set -- "$here"/cases/*.yaml; ncases=$#
set -- "$here"/errors/*.yaml; nerrors=$#
set -- "$here"/fixtures/*.ini; nfixtures=$#
echo "yaml2ini: all $total checks passed ($ncases cases, $nerrors errors, $nfixtures fixtures)"
