#!/usr/bin/env bash
# make bench: every Go benchmark in the module with allocation figures, then
# the side-by-side comparisons with keepalived (each prints medians and ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== go test -bench (all packages)"
go test -run='^$' -bench=. -benchmem -count=1 ./... 2>&1 | grep -vE '^(PASS|ok|\?)' || true
for cmp in deploy/bench.d/*.sh; do
	[ -x "$cmp" ] || continue
	echo "== $cmp"
	"$cmp"
done
