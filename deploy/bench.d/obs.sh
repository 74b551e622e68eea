#!/usr/bin/env bash
# make bench, observability: the per-advert cost of the metrics, tracing and
# log sinks (allocations must be 0), /metrics at 250 VRRP instances and
# 10,000 real servers (budget 100 ms), and real agents, 250 instances at
# 0.05 s, with everything off, metrics only, and metrics + every advert as
# a span exported over OTLP: CPU ratios (metrics budget: +5%, spans: +25%).
# The OTLP receiver is in the test process: its CPU is not the agent's.
# Needs root (network namespaces) for the agent part.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "-- sinks on the advert path (allocs/op must be 0)"
go test -run '^$' -bench '^BenchmarkEmit([^C]|$)' -benchmem -count=1 ./metrics ./tracing ./tracing/logsink |
	grep -E '^Benchmark' | awk '{printf "  %-60s %10s ns/op %4s allocs/op\n", $1, $3, $(NF-1)}'
# With the instances' lines out of cache, as in a running agent (each
# round of 250 events follows a cache flush, so a fixed count keeps it short).
go test -run '^$' -bench '^BenchmarkEmitCold$' -benchmem -benchtime 250000x -count=1 ./metrics |
	grep -E '^Benchmark' | awk '{printf "  %-60s %10s ns/op %4s allocs/op\n", $1, $3, $(NF-1)}'

echo "-- advert spans end to end (Emit, span worker, batching, OTLP/HTTP), 250 x 0.05 s: process CPU per span"
go test -run '^$' -bench '^BenchmarkSpanPipeline$' -benchtime 3x -count=1 ./tracing |
	grep -E '^Benchmark' | awk '{
		for (i = 3; i < NF; i++) v[$(i+1)] = $i
		printf "  %-36s %8.1f us/span, %.1f allocs/span, %.0f B/span (dropped %d)\n", $1, v["cpu-ns/span"] / 1000, v["allocs/span"], v["B/span"], v["dropped"]
	}'

echo "-- an advert span's two halves, unpaced, GOGC 400 as the exporting agent: the worker's SDK span; the exporter's transform, marshal, request"
GOGC=400 go test -run '^$' -bench '^BenchmarkAdvertSpan(Build|Export)$' -benchtime 2s -count=3 ./tracing |
	grep -E '^Benchmark' | awk '{
		delete v
		for (i = 3; i < NF; i++) v[$(i+1)] = $i
		a = ("allocs/span" in v) ? v["allocs/span"] : v["allocs/op"]
		printf "  %-36s %8.2f us/span (process CPU), %.1f allocs/span\n", $1, v["cpu-ns/span"] / 1000, a
	}'

echo "-- /metrics: 250 instances, 10,000 real servers (budget 100 ms)"
go test -run '^$' -bench '^BenchmarkScrape' -benchmem -benchtime 10x -count=1 ./metrics |
	grep -E '^Benchmark' | awk '{
		ms = $3 / 1e6; bytes = ""
		for (i = 4; i < NF; i++) if ($(i+1) == "bytes") bytes = sprintf("%.1f MB", $i / 1e6)
		if ($1 ~ /ScrapeHTTP/) verdict = (ms <= 100 ? "ok" : "OVER 100 ms")
		else verdict = "(dto gather: protobuf scrapes and tests, not the text path)"
		printf "  %-36s %8.1f ms %s %s\n", $1, ms, bytes, verdict
	}'

runs=${KEEPWATCH_OBS_RUNS:-5}
echo "-- agents: 250 instances x 0.05 s, master + backup per mode, side by side; $runs runs, 4 interleaved rounds per mode and lab (load: $(cut -d' ' -f1-3 /proc/loadavg))"
# Each run prints its median ratios and logs every round's ("rounds
# MODE/off: X Y ..."); the budgets are judged on the median of the
# runs' ratios (issue 12: at least five interleaved runs). With
# KEEPWATCH_BENCH_BASE_BIN set, an earlier build runs metrics+spans in the
# same rounds ("base:metrics+spans"), or metrics only with
# KEEPWATCH_OBS_BASE_MODE=metrics ("base:metrics").
out=$(KEEPWATCH_OBS_BENCH=1 go test -run '^$' -bench '^BenchmarkAgentCPU$' -benchtime 1x -count="$runs" -timeout 60m ./deploy/obs 2>&1) || {
	echo "$out" | tail -40
	exit 1
}
echo "$out" | awk -v runs="$runs" '
	function med(a, n,   i, j, t, c) {
		for (i = 1; i <= n; i++) c[i] = a[i]
		for (i = 2; i <= n; i++) for (j = i; j > 1 && c[j-1] > c[j]; j--) { t = c[j]; c[j] = c[j-1]; c[j-1] = t }
		return n % 2 ? c[(n+1)/2] : (c[n/2] + c[n/2+1]) / 2
	}
	/ rounds [^ ]+\/off:/ {
		m = $0; sub(/.* rounds /, "", m); sub(/\/off:.*/, "", m); modes[m] = 1
		r = ++seen[m]
		for (i = 1; i <= NF; i++) if ($i ~ /\/off:$/) break
		for (i++; i <= NF; i++) {
			if (!((r, m) in lo) || $i + 0 < lo[r, m]) lo[r, m] = $i + 0
			if (!((r, m) in hi) || $i + 0 > hi[r, m]) hi[r, m] = $i + 0
			rounds[r, m] = rounds[r, m] sprintf(" %.2f", $i)
		}
	}
	/^BenchmarkAgentCPU/ {
		n++
		k = split($0, f, "\t")
		for (i = 2; i <= k; i++) {
			split(f[i], p, " ")
			if (p[2] != "") v[n, p[2]] = p[1]
			units[p[2]] = 1
		}
	}
	END {
		if (n == 0) { print "  no benchmark result"; exit 1 }
		nm = split("metrics metrics+spans base:metrics base:metrics+spans", order, " ")
		for (i = 1; i <= n; i++) {
			line = sprintf("  run %d:", i)
			for (j = 1; j <= nm; j++) if ((m = order[j]) in modes) line = line sprintf("  %s/off %.3f (rounds %.2f-%.2f)", m, v[i, m "/off_cpu_ratio"], lo[i, m], hi[i, m])
			print line
			for (j = 1; j <= nm; j++) if ((m = order[j]) in modes) printf "    %-22s rounds:%s\n", m "/off", rounds[i, m]
		}
		for (j = 0; j <= nm; j++) for (role = 1; role <= 2; role++) {
			u = (j ? order[j] : "off") (role == 1 ? "_master" : "_backup") "_cpu_%"
			if (!(u in units)) continue
			for (i = 1; i <= n; i++) a[i] = v[i, u]
			printf "  %-36s %6.2f %% CPU (median of runs)\n", u, med(a, n)
		}
		for (j = 1; j <= nm; j++) {
			if (!((m = order[j]) in modes)) continue
			for (i = 1; i <= n; i++) { a[i] = v[i, m "/off_cpu_ratio"]; b[i] = v[i, m "/off_cpu_ratio_of_medians"] }
			r = med(a, n)
			budget = (m == "metrics" ? 1.05 : 1.25)
			printf "  %-18s / off CPU ratio, median of %d runs %6.3f (of medians %.3f) %s\n", m, n, r, med(b, n),
				(m ~ /^base:/ ? "(the earlier build)" : r <= budget ? "ok" : sprintf("OVER +%d%%", (budget - 1) * 100 + 0.5))
		}
		line = ""
		for (j = 0; j <= nm; j++) {
			u = (j ? order[j] : "off") "_transitions"
			if (!(u in units)) continue
			t = 0
			for (i = 1; i <= n; i++) t += v[i, u]
			line = line sprintf(" %s %d", (j ? order[j] : "off"), t)
		}
		if (line != "") printf "  transitions inside the windows, all runs (a takeover under load skews its round):%s\n", line
		for (i = 1; i <= n; i++) { a[i] = v[i, "spans_received/s"]; b[i] = v[i, "span_queue_dropped"] + 0; c[i] = v[i, "scrape_ms_median"] }
		printf "  spans received by the OTLP receiver %6.0f /s (span queue drops, median: %d)\n", med(a, n), med(b, n)
		printf "  agent /metrics (250 instances)      %6.1f ms median, %.2f MB\n", med(c, n), v[n, "scrape_bytes"] / 1e6
	}'
