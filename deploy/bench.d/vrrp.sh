#!/usr/bin/env bash
# VRRP side by side with the Debian keepalived, in network namespaces (root):
# failover time (master's link cut -> VIP on the backup, and -> first
# gratuitous ARP) at v3 advert_int 0.1 and v2 advert_int 1, and CPU/RSS of
# master and backup with 1, 50 and 250 instances at 1 s and 0.05 s (about
# 90 s). Each prints the medians or figures and the keepwatch/keepalived
# ratio (deploy/lab/bench_linux_test.go). The agent's own takeover latency
# (engine/vrrp/router BenchmarkTakeover) runs in make bench's micro pass.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(KEEPWATCH_BENCH_VRRP=1 go test -run '^$' -bench 'BenchmarkFailover|BenchmarkFootprint' \
	-benchtime 1x -count 1 -timeout 20m -v ./deploy/lab/ 2>&1)
rc=$?
grep -E '^(Benchmark|goos|goarch|cpu:|    bench_linux_test|ok|FAIL|--- )' <<<"$out" || true
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -40
exit "$rc"
