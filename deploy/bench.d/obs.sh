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
go test -run '^$' -bench '^BenchmarkEmit' -benchmem -count=1 ./metrics ./tracing ./tracing/logsink |
	grep -E '^Benchmark' | awk '{printf "  %-60s %10s ns/op %4s allocs/op\n", $1, $3, $(NF-1)}'

echo "-- advert spans end to end (Emit, span worker, batching, OTLP/HTTP), 250 x 0.05 s: process CPU per span"
go test -run '^$' -bench '^BenchmarkSpanPipeline$' -benchtime 3x -count=1 ./tracing |
	grep -E '^Benchmark' | awk '{printf "  %-36s %8.1f us/span (dropped %d)\n", $1, $5 / 1000, $7}'

echo "-- /metrics: 250 instances, 10,000 real servers (budget 100 ms)"
go test -run '^$' -bench '^BenchmarkScrape' -benchmem -benchtime 10x -count=1 ./metrics |
	grep -E '^Benchmark' | awk '{
		ms = $3 / 1e6; bytes = ""
		for (i = 4; i < NF; i++) if ($(i+1) == "bytes") bytes = sprintf("%.1f MB", $i / 1e6)
		if ($1 ~ /ScrapeHTTP/) verdict = (ms <= 100 ? "ok" : "OVER 100 ms")
		else verdict = "(dto gather: protobuf scrapes and tests, not the text path)"
		printf "  %-36s %8.1f ms %s %s\n", $1, ms, bytes, verdict
	}'

echo "-- agents: 250 instances x 0.05 s, master + backup per mode, side by side"
out=$(KEEPWATCH_OBS_BENCH=1 go test -run '^$' -bench '^BenchmarkAgentCPU$' -benchtime 1x -count=1 -timeout 10m ./deploy/obs 2>&1) || {
	echo "$out" | tail -40
	exit 1
}
echo "$out" | grep -E '^BenchmarkAgentCPU' | tr '\t' '\n' | awk '
	NF == 2 { v[$2] = $1 }
	END {
		for (m in v) if (m ~ /_cpu_%$/) printf "  %-34s %6.2f %% CPU\n", m, v[m]
		r = v["metrics/off_cpu_ratio"]; rm = v["metrics/off_cpu_ratio_of_medians"]
		printf "  metrics / off CPU ratio             %6.3f (of medians %.3f) %s\n", r, rm, (r <= 1.05 ? "ok" : "OVER +5%")
		rs = v["metrics+spans/off_cpu_ratio"]
		printf "  metrics+spans / off CPU ratio       %6.3f (of medians %.3f) %s\n", rs, v["metrics+spans/off_cpu_ratio_of_medians"], (rs <= 1.25 ? "ok" : "OVER +25%")
		printf "  spans received by the OTLP receiver %6.0f /s (span queue drops: %d)\n", v["spans_received/s"], v["span_queue_dropped"]
		printf "  agent /metrics (250 instances)      %6.1f ms median, %.2f MB\n", v["scrape_ms_median"], v["scrape_bytes"] / 1e6
	}' | sort
