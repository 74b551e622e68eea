#!/usr/bin/env bash
# make bench: every Go benchmark in the module with allocation figures, then
# the side-by-side comparisons with keepalived (each prints medians and ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
# Micro-benchmarks (allocations per advert, per event, per parse): the
# packages whose benchmarks are short. The long, side-by-side ones (lab,
# kernel, checkers at scale, observability) run from deploy/bench.d.
echo "== go test -bench (micro-benchmarks)"
go test -run='^$' -bench=. -benchmem -count=1 \
	./engine/vrrp/... ./engine/netif ./engine/track ./engine/notify ./engine/lb ./metrics ./tracing/... 2>&1 |
	grep -vE '^(PASS|ok|\?|goos|goarch|pkg|cpu)' || true
for cmp in deploy/bench.d/*.sh; do
	[ -x "$cmp" ] || continue
	echo "== $cmp"
	"$cmp"
done
