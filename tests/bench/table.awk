# tests/bench/table.awk — loadgen's key=value lines -> the benchmark table.
# Variables from run.sh: idle_dyn idle_static anon_dyn anon_static (kB), size_dyn size_dyn_s
# size_static size_static_s (bytes), smoke, s1 s2 s3 (stream counts).

{
	label = ""; target = ""
	for (i = 1; i <= NF; i++) {
		eq = index($i, "=")
		k = substr($i, 1, eq - 1); val = substr($i, eq + 1)
		if (k == "label") label = val
		else if (k == "target") target = val
		else kv[k] = val
	}
	for (k in kv) { v[label, target, k] = kv[k]; delete kv[k] }
	seen[label, target] = 1
}

function has(l, t, k) { return ((l, t, k) in v) && v[l, t, k] != "-" }
function get(l, t, k) { return has(l, t, k) ? v[l, t, k] + 0 : "" }

# One row: a title, then one cell per column target, format fmt ("" -> "-").
function row(title, l, k, fmt, scale,    i, t, s) {
	s = sprintf("  %-34s", title)
	for (i = 1; i <= ncol; i++) {
		t = col[i]
		if (has(l, t, k))
			s = s sprintf("%12s", sprintf(fmt, get(l, t, k) / scale))
		else
			s = s sprintf("%12s", "-")
	}
	print s
}

function header(title,    i, s) {
	print ""
	print title
}

function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
function us(x) { return x == "" ? "-" : sprintf("%.0f us", x) }
function ms(x) { return x == "" ? "-" : sprintf("%.3f ms", x / 1000) }
function mib(kb) { return (kb == "" || kb == "-") ? "-" : sprintf("%.1f MiB", kb / 1024) }
function verdict(ok) { return ok ? "met   " : "MISSED" }

END {
	# Columns: the targets that were measured, in this order.
	n = split("direct llmproxy static nginx nometer webhook", order, " ")
	split("direct|llmproxy|static|nginx|no metering|+webhook", names, "|")
	ncol = 0
	for (i = 1; i <= n; i++)
		if (("ttft1", order[i]) in seen || ("cpu", order[i]) in seen) {
			col[++ncol] = order[i]; colname[ncol] = names[i]
		}
	s = sprintf("  %-34s", "")
	for (i = 1; i <= ncol; i++) s = s sprintf("%12s", colname[i])
	print s

	header("Time to first token, short streams one at a time (us; medians over rounds)")
	row("p50", "ttft1", "ttft_p50_us", "%.0f", 1)
	row("p99", "ttft1", "ttft_p99_us", "%.0f", 1)
	row("added p50 (vs direct)", "ttft1", "added_ttft_p50_us", "%.0f", 1)
	row("added p99 (vs direct)", "ttft1", "added_ttft_p99_us", "%.0f", 1)
	header("Time to first token, 32 streams at a time (us)")
	row("p50", "ttft32", "ttft_p50_us", "%.0f", 1)
	row("p99", "ttft32", "ttft_p99_us", "%.0f", 1)
	row("added p50 (vs direct)", "ttft32", "added_ttft_p50_us", "%.0f", 1)
	row("added p99 (vs direct)", "ttft32", "added_ttft_p99_us", "%.0f", 1)
	header("Lag per event, 4 streams, events 20 ms apart, interleaved (us; arrival - t_us)")
	row("p50", "lag", "lag_p50_us", "%.0f", 1)
	row("p99", "lag", "lag_p99_us", "%.0f", 1)
	row("added p50 (vs direct)", "lag", "added_lag_p50_us", "%.0f", 1)
	row("added p99 (vs direct)", "lag", "added_lag_p99_us", "%.0f", 1)
	header("CPU, fast streams of small events (direct: the mock's own)")
	row("CPU s per 1 M events", "cpu", "cpu_s_per_mev", "%.2f", 1)
	row("events relayed", "cpu", "events", "%.0f", 1)
	header("Small non-streamed requests, 32 keep-alive clients")
	row("requests per second", "rps", "rps", "%.0f", 1)
	split(s1 " " s2 " " s3, sc, " ")
	for (j = 1; j <= 3; j++) {
		l = "streams" sc[j]
		header(sprintf("%d concurrent long streams (20 ms between events)", sc[j]))
		row("completed", l, "ok", "%.0f", 1)
		row("failed", l, "fail", "%.0f", 1)
		row("peak RSS of the proxy (MiB)", l, "peak_rss_kb", "%.1f", 1024)
	}
	print ""
	print "Memory and size"
	printf "  %-34s%12s%12s\n", "", "dynamic", "static"
	printf "  %-34s%12s%12s\n", "idle RSS, default config (MiB)",
	    idle_dyn == "-" ? "-" : sprintf("%.2f", idle_dyn / 1024),
	    idle_static == "-" ? "-" : sprintf("%.2f", idle_static / 1024)
	printf "  %-34s%12s%12s\n", "  of which its own (RssAnon, MiB)",
	    anon_dyn == "-" ? "-" : sprintf("%.2f", anon_dyn / 1024),
	    anon_static == "-" ? "-" : sprintf("%.2f", anon_static / 1024)
	printf "  %-34s%12s%12s\n", "binary size (KiB)",
	    size_dyn == "-" ? "-" : sprintf("%.0f", size_dyn / 1024),
	    size_static == "-" ? "-" : sprintf("%.0f", size_static / 1024)
	printf "  %-34s%12s%12s\n", "binary size, stripped (KiB)",
	    size_dyn_s == "-" ? "-" : sprintf("%.0f", size_dyn_s / 1024),
	    size_static_s == "-" ? "-" : sprintf("%.0f", size_static_s / 1024)
	printf "  %-34s%12s\n", "load generator busy, max (of 1 core)",
	    sprintf("%.0f%%", maxbusy() * 100)

	# ---- ratios --------------------------------------------------------------
	lt1 = get("ttft1", "llmproxy", "added_ttft_p50_us"); nt1 = get("ttft1", "nginx", "added_ttft_p50_us")
	lt9 = get("ttft1", "llmproxy", "added_ttft_p99_us"); nt9 = get("ttft1", "nginx", "added_ttft_p99_us")
	l32 = get("ttft32", "llmproxy", "added_ttft_p50_us"); n32 = get("ttft32", "nginx", "added_ttft_p50_us")
	l329 = get("ttft32", "llmproxy", "added_ttft_p99_us"); n329 = get("ttft32", "nginx", "added_ttft_p99_us")
	ll9 = get("lag", "llmproxy", "added_lag_p99_us"); nl9 = get("lag", "nginx", "added_lag_p99_us")
	ll5 = get("lag", "llmproxy", "added_lag_p50_us"); nl5 = get("lag", "nginx", "added_lag_p50_us")
	lc = get("cpu", "llmproxy", "cpu_s_per_mev"); nc = get("cpu", "nginx", "cpu_s_per_mev")
	oc = get("cpu", "nometer", "cpu_s_per_mev"); wc = get("cpu", "webhook", "cpu_s_per_mev")
	lr = get("rps", "llmproxy", "rps"); nr = get("rps", "nginx", "rps"); dr = get("rps", "direct", "rps")
	offr = get("rps", "nometer", "rps"); wr = get("rps", "webhook", "rps")
	ot1 = get("ttft1", "nometer", "added_ttft_p50_us"); wt1 = get("ttft1", "webhook", "added_ttft_p50_us")
	dt1 = get("ttft1", "direct", "ttft_p50_us"); ltt = get("ttft1", "llmproxy", "ttft_p50_us")
	ntt = get("ttft1", "nginx", "ttft_p50_us")

	print ""
	print "Summary (llmproxy = the default config: metrics on, so usage is metered)"
	printf "  TTFT p50, 1 at a time:   %s of direct through llmproxy, %s through nginx\n",
	    ratio(ltt, dt1), ratio(ntt, dt1)
	printf "  added TTFT p50 / p99:    %s / %s  (nginx %s / %s: llmproxy adds %s / %s of nginx's)\n",
	    ms(lt1), ms(lt9), ms(nt1), ms(nt9), ratio(lt1, nt1), ratio(lt9, nt9)
	printf "  added TTFT, 32 at once:  %s / %s  (nginx %s / %s: %s / %s)\n",
	    ms(l32), ms(l329), ms(n32), ms(n329), ratio(l32, n32), ratio(l329, n329)
	printf "  added lag p50 / p99:     %s / %s  (nginx %s / %s)\n", ms(ll5), ms(ll9), ms(nl5), ms(nl9)
	printf "  CPU per event:           %s of nginx's (%.2f vs %.2f s per 1 M events)\n", ratio(lc, nc), lc, nc
	printf "  non-streamed req/s:      %s of nginx's, %s of direct\n", ratio(lr, nr), ratio(lr, dr)
	printf "  usage metering:          CPU per event %s of metering off, %s with the webhook;\n", ratio(lc, oc), ratio(wc, oc)
	printf "                           req/s %s of metering off, %s with the webhook;\n", ratio(lr, offr), ratio(wr, offr)
	printf "                           added TTFT p50 %s off, %s default, %s with the webhook\n", ms(ot1), ms(lt1), ms(wt1)

	# ---- targets (issue 7) ---------------------------------------------------------
	print ""
	if (smoke) { print "Targets: not judged in a smoke run"; exit }
	sfail = get("streams" s3, "llmproxy", "fail"); srss = get("streams" s3, "llmproxy", "peak_rss_kb")
	sok = get("streams" s3, "llmproxy", "ok")
	ssrss = get("streams" s3, "static", "peak_rss_kb")
	print "Targets"
	printf "  %s added TTFT p50 <= 0.05 ms and <= nginx's   %s (nginx %s)\n", verdict(lt1 != "" && lt1 <= 50 && lt1 <= nt1), ms(lt1), ms(nt1)
	printf "  %s added TTFT p99 <= 0.3 ms                   %s\n", verdict(lt9 != "" && lt9 <= 300), ms(lt9)
	printf "  %s added lag p99 <= 0.2 ms                    %s\n", verdict(ll9 != "" && ll9 <= 200), ms(ll9)
	printf "  %s CPU per event <= nginx's                   %s\n", verdict(lc != "" && lc <= nc), ratio(lc, nc)
	printf "  %s %d streams, none failed, RSS <= 48 MiB   %s ok, %s failed, %s (static build: %s)\n", verdict(sok == s3 && sfail == 0 && srss != "" && srss <= 48 * 1024), s3, sok, sfail, mib(srss), mib(ssrss)
	printf "  %s idle RSS <= 1 MiB, dynamic (glibc)         %s (own memory %s; the rest is libc's shared pages)\n", verdict(idle_dyn != "-" && idle_dyn <= 1024), mib(idle_dyn), mib(anon_dyn)
	printf "  %s idle RSS <= 1 MiB, static (musl)           %s\n", verdict(idle_static != "-" && idle_static <= 1024), mib(idle_static)
	printf "  %s non-streamed req/s >= 0.8x nginx           %s\n", verdict(lr != "" && nr != "" && lr >= 0.8 * nr), ratio(lr, nr)
}

function maxbusy(    k, m, parts) {
	m = 0
	for (k in v) {
		split(k, parts, SUBSEP)
		if (parts[3] == "lg_busy" && v[k] + 0 > m) m = v[k] + 0
	}
	return m
}
