#!/usr/bin/env bash
# VRRP side by side with the Debian keepalived, in network namespaces (root):
# failover time (master's link cut -> VIP on the backup, and -> first
# gratuitous ARP) at v3 advert_int 0.1 and v2 advert_int 1; how cost grows:
# CPU/RSS of master and backup with 1, 50, 250 and 1,000 instances at 1 s
# and 0.05 s, each daemon alone on the machine while measured, medians of
# three, printed as a table (BenchmarkFootprint); start-up to the first
# advert and reload time for 1,000 instances (BenchmarkLifecycle). Each
# prints the medians and the keepwatch/keepalived ratio
# (deploy/lab/bench_linux_test.go, growth_linux_test.go); about 30 minutes.
# KEEPWATCH_BENCH_SIZES=1,250 and KEEPWATCH_BENCH_ROUNDS=1 shorten it.
# The agent's own takeover latency
# (engine/vrrp/router BenchmarkTakeover) runs in make bench's micro pass.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(KEEPWATCH_BENCH_VRRP=1 go test -run '^$' -bench 'BenchmarkFailover|BenchmarkFootprint|BenchmarkLifecycle' \
	-benchtime 1x -count 1 -timeout 60m -v ./deploy/lab/ 2>&1)
rc=$?
grep -E '^(Benchmark|goos|goarch|cpu:|    (bench|growth)_linux_test|        \||ok|FAIL|--- )' <<<"$out" || true
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -40
exit "$rc"
