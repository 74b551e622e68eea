#!/usr/bin/env bash
# VRRP side by side with the Debian keepalived, in network namespaces (root):
# failover time (master's link cut -> VIP on the backup) at v3 advert_int 0.1
# and v2 advert_int 1, and CPU/RSS of master and backup with 250 instances at
# 0.05 s. Each prints the medians or figures and the keepwatch/keepalived ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
KEEPWATCH_BENCH_VRRP=1 go test -run '^$' -bench 'BenchmarkFailover|BenchmarkFootprint' -benchtime 1x -count 1 -timeout 20m -v ./deploy/lab/ 2>&1 |
	grep -E '^(Benchmark|goos|goarch|cpu|    bench_linux_test|ok|FAIL|---)' || true
