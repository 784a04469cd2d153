#!/bin/sh
# yaml2ini.sh -- an LLMProxy config.yaml -> llmproxy's config.ini.
#
#   sh yaml2ini.sh config.yaml > config.ini      (no file, or -, reads stdin)
#
# POSIX sh and awk only (tested with dash, bash, busybox sh, posh and yash;
# mawk, gawk, busybox awk and the one-true-awk); $AWK picks the awk (a
# command with arguments, such as "busybox awk", will do).  Exit status: 0
# converted, 1 refused (or unreadable), 2 usage.
#
# The INI layout is the YAML layout flattened mechanically (DESIGN.md,
# "Configuration"):
#   top-level `key: value`         key = value, before any [section]
#   nested maps  a: b: c: 1        [a.b]  c = 1  (every map gets its header,
#                                  even one holding only deeper maps)
#   lists of maps  a: - k: v       [a.0]  k = v,  [a.1] ...  (at any depth:
#                                  [auth.pipeline.5.static.keys.0])
#   lists of values, - x or [x, y] key = x, y;   [] gives `key =`
#   "..." and '...' values         unquoted ('' and \-escapes, \uXXXX, ...)
#   null, ~, or `key:` with nothing under it
#                                  left out: INI has no null, and a key that
#                                  is absent is what null means to LLMProxy
# Keys of one section are written together (INI cannot go back to the top
# level after a [section]); sections in the order their maps open.
#
# A value is written as is, or in "..." when INI would read it otherwise
# (empty, leading/trailing blanks, starting with a quote, ';' or '#'):
# llmproxy removes one pair of quotes around a value.
#
# Skipped, with a warning on stderr: block scalars (| and >, e.g. inline Lua
# scripts), which one INI line cannot hold.
#
# Refused, with `yaml2ini.sh: LINE: message` on stderr, exit status 1 and
# nothing on stdout: anchors, aliases, merge keys (<<), tags, flow maps {},
# complex keys (?), lists inside lists, tabs in indentation, bad
# indentation, duplicate keys, values continued on another line, more than
# one document, control characters and line breaks in values, a blank then
# ';' in a value (INI's inline comment), ',' in an item of a list of values,
# and keys INI cannot hold (empty; '=', ':', '[', ']'; leading ';' or '#';
# blanks at either end; blanks or '.' in a key that names a section).
set -u

me=yaml2ini.sh
case $# in
0) src=- ;;
1) src=$1 ;;
*) echo "usage: sh $me [config.yaml] > config.ini" >&2; exit 2 ;;
esac
if [ "$src" = - ]; then
	name="standard input"
else
	if [ -d "$src" ] || [ ! -r "$src" ]; then
		echo "$me: $src: cannot read (not a readable file)" >&2
		exit 1
	fi
	name=${src##*/}
	exec <"$src"
fi

# shellcheck disable=SC2016 # the awk program is in single quotes on purpose
Y2I_NAME=$name LC_ALL=C ${AWK:-awk} '
function failat(ln, msg) {
	print "yaml2ini.sh: " ln ": " msg | "cat 1>&2"
	err = 1
	exit 1
}
function fail(msg) { failat(NR, msg) }
function warn(msg) { print "yaml2ini.sh: " NR ": " msg | "cat 1>&2" }

function join(a, b) { return a == "" ? b : a "." b }
function rtrim(s) { sub(/[ \t]+$/, "", s); return s }
function ltrim(s) { sub(/^[ \t]+/, "", s); return s }
# The text after a quoted scalar or a flow list: blanks, then a comment.
function tail_ok(s) { return s ~ /^([ \t]+(#.*)?)?$/ }

# ---- output: one body per section, printed at the end --------------------
function secid(path) {
	if (!(path in SECIX)) {
		SECIX[path] = nsec
		SECNAME[nsec] = path
		SECBODY[nsec] = ""
		nsec++
	}
	return SECIX[path]
}
function emit(path, key, val, ln,   id) {
	inikey(key, ln)
	id = secid(path)
	SECBODY[id] = SECBODY[id] key (val == "" ? " =" : " = " val) "\n"
}
# A key written as an INI key.
function inikey(k, ln) {
	if (k == "")
		failat(ln, "an empty key cannot be written in INI")
	if (k ~ CTLRE)
		failat(ln, "key \047" k "\047 has a control character")
	if (k ~ /^[ \t]/ || k ~ /[ \t]$/)
		failat(ln, "key \047" k "\047 starts or ends with a blank, which INI drops")
	if (index(k, "=") || index(k, ":"))
		failat(ln, "key \047" k "\047 contains \047" (index(k, "=") ? "=" : ":") \
		    "\047, where INI would end the key")
	if (index(k, "[") || index(k, "]"))
		failat(ln, "key \047" k "\047 contains \047[\047 or \047]\047, which INI reserves for sections")
	if (k ~ /^[;#]/)
		failat(ln, "key \047" k "\047 starts with \047" substr(k, 1, 1) "\047, which INI reads as a comment")
	if (k ~ /[ \t];/)
		failat(ln, "key \047" k "\047 contains \047 ;\047, which INI reads as a comment")
}
# A key that names a section (a map, or a list of maps).
function seckey(k, ln) {
	if (k == "")
		failat(ln, "an empty key cannot name an INI section")
	if (k ~ CTLRE || k ~ /[ \t]/)
		failat(ln, "key \047" k "\047 has blanks, which an INI section name cannot")
	if (k ~ /\./)
		failat(ln, "key \047" k "\047 contains \047.\047, which would read as a deeper section in INI")
	if (index(k, "[") || index(k, "]"))
		failat(ln, "key \047" k "\047 contains \047[\047 or \047]\047, which an INI section name cannot")
}
# A value as INI writes it (llmproxy strips one pair of quotes).
function inival(v, ln) {
	if (v ~ /[ \t];/)
		failat(ln, "the value contains \047 ;\047, which INI reads as the start of a comment")
	if (v == "" || v ~ /^[ \t"\047;#]/ || v ~ /[ \t]$/)
		return "\"" v "\""
	return v
}
function ctl(v) {
	if (v ~ CTLRE)
		fail("the value contains a control character, which INI cannot hold")
}

# ---- scalars ------------------------------------------------------------------
function hexval(h,   i, v, d) {
	v = 0
	for (i = 1; i <= length(h); i++) {
		d = index("0123456789abcdef", tolower(substr(h, i, 1)))
		if (d == 0)
			return -1
		v = v * 16 + d - 1
	}
	return v
}
function utf8(cp) {
	if (cp < 128)
		return sprintf("%c", cp)
	if (cp < 2048)
		return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
	if (cp < 65536)
		return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
	return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64,
	    128 + int(cp / 64) % 64, 128 + cp % 64)
}
# s starts with a quote: QVAL gets the value, QEND the index after the
# closing quote.
function quoted(s,   q, i, n, c, e, out, len, h, cp) {
	q = substr(s, 1, 1)
	n = length(s)
	out = ""
	for (i = 2; i <= n; i++) {
		c = substr(s, i, 1)
		if (c == q) {
			if (q == "\047" && substr(s, i + 1, 1) == "\047") {
				out = out "\047"
				i++
				continue
			}
			QVAL = out
			QEND = i + 1
			return
		}
		if (c != "\\" || q == "\047") {
			out = out c
			continue
		}
		if (i == n)
			break
		e = substr(s, ++i, 1)
		len = 0
		if (e == "\"" || e == "\\" || e == "/" || e == " ")
			out = out e
		else if (e == "t" || e == "\t")
			out = out "\t"
		else if (e == "_")
			out = out utf8(160)
		else if (index("0abefnrvNLP", e))
			fail("the value contains a line break or control character (\\" e "), which INI cannot hold")
		else if (e == "x")
			len = 2
		else if (e == "u")
			len = 4
		else if (e == "U")
			len = 8
		else
			fail("unknown escape \\" e " in a double-quoted value")
		if (len > 0) {
			h = substr(s, i + 1, len)
			cp = length(h) == len ? hexval(h) : -1
			if (cp < 0)
				fail("\\" e " needs " len " hex digits")
			if (cp >= 55296 && cp <= 57343 || cp > 1114111)
				fail("\\" e h " is not a Unicode character")
			if (cp < 32 && cp != 9 || cp >= 127 && cp < 160 || cp == 8232 || cp == 8233)
				fail("the value contains a line break or control character (\\" e h "), which INI cannot hold")
			out = out utf8(cp)
			i += len
		}
	}
	fail("the quoted value does not end on this line (multi-line values are not supported)")
}

# A flow list "[a, b]" at the start of s: FJOIN = "a, b", FCNT items.
function flowlist(s,   i, j, n, c, item) {
	n = length(s)
	i = 2
	FJOIN = ""
	FCNT = 0
	for (;;) {
		while (i <= n && substr(s, i, 1) ~ /[ \t]/)
			i++
		if (i > n)
			fail("the flow list does not end on this line (\047[\047 and \047]\047 must be on one line)")
		c = substr(s, i, 1)
		if (c == "]")
			break
		if (c == "[")
			fail("a list inside a list is not supported")
		if (c == "{")
			fail("flow maps (\047{...}\047) are not supported; write the map as indented \047key: value\047 lines")
		if (c == ",")
			fail("an empty item in the flow list")
		if (c == "#")
			fail("the flow list does not end on this line (\047[\047 and \047]\047 must be on one line)")
		indicators(c)
		if (c == "\"" || c == "\047") {
			quoted(substr(s, i))
			item = QVAL
			ctl(item)
			i += QEND - 1
		} else {
			# up to , [ ] { or }  (a bracket expression with "]" in it
			# is read differently by different awks)
			for (j = i; j <= n && index(",[]{}", substr(s, j, 1)) == 0; j++)
				;
			item = substr(s, i, j - i)
			if (match(item, /[ \t]#/))
				fail("the flow list does not end on this line (\047[\047 and \047]\047 must be on one line)")
			item = rtrim(item)
			i = j
			if (item ~ /:([ \t]|$)/)
				fail("flow maps (\047key: value\047 inside [...]) are not supported")
			if (item ~ /^(null|Null|NULL|~)$/)
				fail("a null item in a list cannot be written in INI")
			ctl(item)
		}
		listitem(item)
		FJOIN = FCNT == 0 ? item : FJOIN ", " item
		FCNT++
		while (i <= n && substr(s, i, 1) ~ /[ \t]/)
			i++
		c = substr(s, i, 1)
		if (c == "]")
			break
		if (c == "")
			fail("the flow list does not end on this line (\047[\047 and \047]\047 must be on one line)")
		if (c != ",")
			fail("expected \047,\047 or \047]\047 in the flow list")
		i++
	}
	if (!tail_ok(substr(s, i + 1)))
		fail("unexpected text after \047]\047")
}
function listitem(v) {
	if (v ~ /,/)
		fail("the list item \047" v "\047 contains \047,\047, which INI would read as two items")
	if (v ~ /^[ \t]/ || v ~ /[ \t]$/)
		fail("the list item \047" v "\047 starts or ends with a blank, which INI drops")
}
function indicators(c) {
	if (c == "&")
		fail("anchors (\047&\047) are not supported")
	if (c == "*")
		fail("aliases (\047*\047) are not supported")
	if (c == "!")
		fail("tags (\047!\047) are not supported")
	if (c == "{")
		fail("flow maps (\047{...}\047) are not supported; write the map as indented \047key: value\047 lines")
	if (c == "@" || c == "`" || c == "%")
		fail("a value cannot start with \047" c "\047 (quote it)")
	if (c == "|" || c == ">" || c == "]" || c == "}" || c == ",")
		fail("unexpected \047" c "\047")
}

# The value after "key:" or "- ".  Returns "none" (nothing, or a comment),
# "block", "flow" (FJOIN, FCNT), "null" or "str" (VAL; PLAIN when unquoted).
function value(s,   c) {
	s = ltrim(s)
	PLAIN = 0
	if (s == "" || s ~ /^#/)
		return "none"
	c = substr(s, 1, 1)
	if (c == "|" || c == ">") {
		if (s !~ /^[|>]([1-9][-+]?|[-+][1-9]?)?([ \t]+(#.*)?)?$/)
			fail("bad block scalar header \047" s "\047")
		return "block"
	}
	if (c == "[") {
		flowlist(s)
		return "flow"
	}
	if (c == "-" && (s == "-" || substr(s, 2, 1) ~ /[ \t]/))
		fail("a list cannot start on the line of its key; put its items on the lines below")
	if (c == "?" && (s == "?" || substr(s, 2, 1) ~ /[ \t]/))
		fail("complex keys (\047?\047) are not supported")
	if (c == "\"" || c == "\047") {
		quoted(s)
		if (!tail_ok(substr(s, QEND)))
			fail("unexpected text after the quoted value")
		VAL = QVAL
		ctl(VAL)
		return "str"
	}
	indicators(c)
	if (match(s, /[ \t]#/))
		s = substr(s, 1, RSTART - 1)
	s = rtrim(s)
	if (s ~ /:([ \t]|$)/)
		fail("a plain value cannot contain \047: \047 or end in \047:\047 (a map on one line?); quote the value")
	if (s ~ /^(null|Null|NULL|~)$/)
		return "null"
	ctl(s)
	VAL = s
	PLAIN = 1
	return "str"
}

# Is s "key: ..."?  Sets KEY, KEYQ (it was quoted), REST.
function splitkey(s,   c, r) {
	c = substr(s, 1, 1)
	if (c == "\"" || c == "\047") {
		if (index(substr(s, 2), c) == 0)
			return 0
		quoted(s)
		r = ltrim(substr(s, QEND))
		if (r !~ /^:([ \t]|$)/)
			return 0
		KEY = QVAL
		KEYQ = 1
		REST = substr(r, 2)
		return 1
	}
	if (!match(s, /:([ \t]|$)/))
		return 0
	if (substr(s, 1, RSTART - 1) ~ /[ \t]#/)
		return 0
	KEY = rtrim(substr(s, 1, RSTART - 1))
	KEYQ = 0
	REST = substr(s, RSTART + 1)
	return 1
}
function isdash(s) {
	if (substr(s, 1, 2) == "-\t")
		fail("a tab after \047-\047; use spaces")
	return s == "-" || substr(s, 1, 2) == "- "
}

# ---- the frames: the maps and lists open at this line -----------------------
function pushmap(ind, path) {
	nf++
	FK[nf] = "map"
	FI[nf] = ind
	FP[nf] = path
	FID[nf] = ++nfid
	secid(path)
}
function pushseq(ind, path, key, sec, ln) {
	nf++
	FK[nf] = "seq"
	FI[nf] = ind
	FP[nf] = path
	FKEY[nf] = key
	FSEC[nf] = sec
	FLN[nf] = ln
	FN[nf] = 0
	FT[nf] = ""
	FJ[nf] = ""
	FC[nf] = 0
}
function popframe() {
	if (FK[nf] == "seq" && FT[nf] == "scalar")
		emit(FSEC[nf], FKEY[nf], inival(FJ[nf], FLN[nf]), FLN[nf])
	nf--
}
function settype(t) {
	if (FT[nf] != "" && FT[nf] != t)
		fail("the list \047" FKEY[nf] "\047 mixes maps and values")
	if (FT[nf] == "" && t == "map")
		seckey(FKEY[nf], FLN[nf])
	FT[nf] = t
}

# "key: rest" in the map on top.
function map_entry(ind, key, keyq, rest,   t, id) {
	if (!keyq && key == "<<")
		fail("merge keys (\047<<\047) are not supported")
	id = FID[nf] SUBSEP key
	if (id in SEEN)
		fail("duplicate key \047" key "\047 (first on line " SEEN[id] ")")
	SEEN[id] = NR
	t = value(rest)
	VALLINE = t == "str" || t == "null" || t == "flow"
	VALPLAIN = PLAIN
	if (t == "none") {
		pend = 1
		PKEY = key
		PIND = ind
		PSEC = FP[nf]
		PLN = NR
	} else if (t == "block") {
		warn("block scalar for \047" key "\047 skipped")
		skip = ind
	} else if (t == "flow") {
		emit(FP[nf], key, FCNT == 0 ? "" : inival(FJOIN, NR), NR)
	} else if (t == "str") {
		emit(FP[nf], key, inival(VAL, NR), NR)
	}
}

# "- rest" in the list on top, its dash at column ind.
function dash_item(ind, body,   r, sp, col, n, t) {
	r = substr(body, 2)
	match(r, /^ */)
	sp = RLENGTH
	r = substr(r, sp + 1)
	col = ind + 1 + sp
	n = FN[nf]++
	if (r == "" || r ~ /^#/) {
		pend = 2
		PIND = ind
		PLN = NR
		PN = n
		return
	}
	if (substr(r, 1, 1) == "\t")
		fail("a tab after \047-\047; use spaces")
	if (isdash(r))
		fail("a list inside a list is not supported")
	if (index("&*!{[", substr(r, 1, 1)) == 0 && splitkey(r)) {
		settype("map")
		pushmap(col, FP[nf] "." n)
		map_entry(col, KEY, KEYQ, REST)
		return
	}
	t = value(r)
	VALLINE = 1
	VALPLAIN = PLAIN
	if (t == "block") {
		warn("block scalar in the list \047" FKEY[nf] "\047 skipped")
		skip = ind
		return
	}
	if (t == "flow")
		fail("a list inside a list is not supported")
	if (t == "null")
		fail("a null item in a list cannot be written in INI")
	settype("scalar")
	listitem(VAL)
	FJ[nf] = FC[nf]++ == 0 ? VAL : FJ[nf] ", " VAL
}

# A line that starts with an anchor, alias, tag, flow map or "? ": refused.
function badstart(body) {
	if (substr(body, 1, 1) ~ /[&*!{]/)
		indicators(substr(body, 1, 1))
	if (substr(body, 1, 1) == "?" && (body == "?" || substr(body, 2, 1) ~ /[ \t]/))
		fail("complex keys (\047?\047) are not supported")
}

function content(ind, body) {
	if (pend == 1) {
		if (isdash(body) && ind >= PIND) {
			pend = 0
			pushseq(ind, join(PSEC, PKEY), PKEY, PSEC, PLN)
		} else if (ind > PIND) {
			badstart(body)
			if (!splitkey(body))
				fail("a value on the line below \047" PKEY ":\047 is not supported; write it after the colon")
			pend = 0
			seckey(PKEY, PLN)
			pushmap(ind, join(PSEC, PKEY))
		} else {
			pend = 0  # null: left out
		}
	} else if (pend == 2) {
		if (ind <= PIND)
			failat(PLN, "an empty list item cannot be written in INI")
		if (isdash(body))
			fail("a list inside a list is not supported")
		badstart(body)
		if (!splitkey(body))
			fail("a value on the line below \047-\047 is not supported; write it after the \047- \047")
		pend = 0
		settype("map")
		pushmap(ind, FP[nf] "." PN)
	}

	while (nf > 0 && FI[nf] > ind)
		popframe()
	if (nf == 0) {
		if (root)
			fail("bad indentation: less indented than the top level")
		root = 1
		if (isdash(body))
			fail("the top level is a list; a config file is a map of \047key: value\047 lines")
		badstart(body)
		if (!splitkey(body))
			fail("expected \047key: value\047 (the top level must be a map)")
		pushmap(ind, "")
	}
	if (FI[nf] < ind) {
		if (PREVPLAIN && ind > PREVIND && !isdash(body) && !splitkey(body))
			fail("the value of line " PREVLN " continues here: multi-line values are not supported")
		if (ind < PREVIND)
			fail("bad indentation: less indented than the line before, but not as a key or item above")
		fail("bad indentation: more indented than the line before, which has a value")
	}
	if (FK[nf] == "seq") {
		if (isdash(body)) {
			dash_item(ind, body)
			return
		}
		if (nf > 1 && FK[nf - 1] == "map" && FI[nf - 1] == ind)
			popframe()  # a list at the indentation of its key ends
		else
			fail("bad indentation: a list item (\047- ...\047) was expected here")
	}
	if (isdash(body))
		fail("bad indentation: a list item where \047key: value\047 was expected")
	badstart(body)
	if (!splitkey(body))
		fail("expected \047key: value\047 here")
	map_entry(ind, KEY, KEYQ, REST)
}

BEGIN {
	bom = sprintf("%c%c%c", 239, 187, 191)
	CTLRE = "[" sprintf("%c", 1) "-" sprintf("%c", 8) sprintf("%c", 10) "-" \
	    sprintf("%c", 31) sprintf("%c", 127) "]"
	skip = -1
	nsec = nf = nfid = pend = root = err = 0
	started = docstart = ended = PREVPLAIN = PREVIND = PREVLN = 0
	secid("")
}

{
	line = $0
	if (NR == 1 && substr(line, 1, 3) == bom)
		line = substr(line, 4)
	sub(/\r$/, "", line)
	match(line, /^ */)
	lind = RLENGTH
	lbody = substr(line, lind + 1)
	if (skip >= 0) {
		if (lbody ~ /^[ \t]*$/ || lind > skip)
			next
		skip = -1
	}
	if (lbody ~ /^[ \t]*$/ || lbody ~ /^[ \t]*#/)
		next
	if (substr(lbody, 1, 1) == "\t")
		fail("a tab in the indentation; YAML indents with spaces")
	if (lind == 0 && lbody ~ /^(---|\.\.\.)([ \t]|$)/) {
		if (!tail_ok(substr(lbody, 4)))
			fail("text after \047" substr(lbody, 1, 3) "\047 is not supported")
		if (substr(lbody, 1, 3) == "...")
			ended = 1
		else if (started || ended || docstart)
			fail("a second YAML document: one document per file is supported")
		docstart = 1
		next
	}
	if (ended)
		fail("a second YAML document: one document per file is supported")
	if (lind == 0 && !started && lbody ~ /^%/)
		fail("YAML directives (\047%...\047) are not supported")
	started = 1
	VALLINE = VALPLAIN = 0
	content(lind, lbody)
	PREVPLAIN = VALLINE && VALPLAIN
	PREVIND = lind
	PREVLN = NR
}

END {
	if (err)
		exit 1
	if (pend == 2)
		failat(PLN, "an empty list item cannot be written in INI")
	while (nf > 0)
		popframe()
	name = ENVIRON["Y2I_NAME"]
	print "; converted by yaml2ini.sh from " name "; edit that file and convert again"
	printf "%s", SECBODY[0]
	for (sx = 1; sx < nsec; sx++)
		printf "\n[%s]\n%s", SECNAME[sx], SECBODY[sx]
}
'
