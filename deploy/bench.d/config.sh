#!/usr/bin/env bash
# Config loading: keepwatch's Load of 10,000 instances on 40 interfaces
# (written with ~SEQ) beside `keepalived -t` on the same file, same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run='^$' -bench='^Benchmark(Load10k|KeepalivedCheck10k)$' -benchmem -benchtime=5x -count=3 ./engine/config/kaconf)
echo "$out" | grep -E '^Benchmark'
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
kw=$(echo "$out" | awk '/^BenchmarkLoad10k/ {print $3}' | median)
ka=$(echo "$out" | awk '/^BenchmarkKeepalivedCheck10k/ {print $3}' | median)
awk -v kw="$kw" -v ka="$ka" 'BEGIN {
	printf "config load, 10,000 instances: keepwatch %.0f ms, keepalived -t %.0f ms (medians of 3), ratio keepwatch/keepalived %.2f\n", kw/1e6, ka/1e6, kw/ka
}'
