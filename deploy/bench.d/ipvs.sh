#!/usr/bin/env bash
# IPVS programming time in the kernel tier (DESIGN.md §9): engine/ipvs's
# BenchmarkKernelIPVS boots the Debian kernel under qemu and times the
# reconciler beside `ipvsadm -R` on the same table (100 services x 100 real
# servers, then one weight changed), in guest time; it prints the medians
# and the keepwatch/ipvsadm ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench BenchmarkKernelIPVS -benchtime 1x ./engine/ipvs 2>&1) || {
	echo "$out"
	exit 1
}
lines=$(echo "$out" | grep -E '^ipvs ' || true)
if [ -z "$lines" ]; then
	echo "$out"
	echo "ipvs.sh: no figures from BenchmarkKernelIPVS" >&2
	exit 1
fi
echo "$lines"
echo "$lines" | awk '
	$2 == "full_ratio" { printf "IPVS programming, 100x100 real servers from empty: keepwatch/ipvsadm -R ratio %s\n", $3 }
	$2 == "one_weight_ratio" { printf "IPVS one weight changed: keepwatch/ipvsadm ratio %s\n", $3 }'
