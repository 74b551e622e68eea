#!/usr/bin/env bash
# Memory side by side with the Debian keepalived (issue 12), in network
# namespaces (root): the agent binary's size and its package-init cost
# (GODEBUG=inittrace=1), then master and backup RSS at 1 and 250 VRRPv3
# instances every 0.05 s, split into anonymous memory (heap, stacks, GC
# headroom) and file pages (the binary's touched text and data), medians of
# three fresh starts each, interleaved with keepalived, with the ratio and
# the machine's load (deploy/lab/memory_linux_test.go). With
# KEEPWATCH_BENCH_HEAP_DIR=DIR, each keepwatch node's heap profile and
# goroutine dump are left in DIR (go tool pprof -top BINARY DIR/heap-…);
# with KEEPWATCH_BENCH_BASE_BIN=OLD, an earlier build is measured in the
# same rounds (before and after a change). Then BenchmarkMemoryDrift: the
# same 250-instance pair followed for 30 s with no scrape (RssFile creeps
# back after the start-up trim, so one reading at 5 s is not the steady
# state). deploy/bench.d/FOOTPRINT.md has figures.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin/keepwatch" ./cmd/keepwatch || exit 1
size=$(stat -c %s "$bin/keepwatch")
echo "keepwatch binary: $((size / 1024 / 1024)) MiB ($size bytes)"
# Package init before main: time, heap bytes and allocations, summed over
# every package, and the protobuf/gRPC/OpenTelemetry share of it.
GODEBUG=inittrace=1 "$bin/keepwatch" version 2>&1 >/dev/null | awk '
	/^init / { n++; ms += $5; b += $8; a += $10
		if ($2 ~ /^(google\.golang\.org\/(grpc|protobuf|genproto)|go\.opentelemetry\.io|github\.com\/grpc-ecosystem)/) { gn++; gms += $5; gb += $8 } }
	END { printf "package init: %d packages, %.1f ms, %d KiB heap, %d allocs; of which protobuf/grpc/otel: %d packages, %.1f ms, %d KiB\n", n, ms, b / 1024, a, gn, gms, gb / 1024 }'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(KEEPWATCH_BIN="$bin/keepwatch" KEEPWATCH_BENCH_VRRP=1 go test -run '^$' -bench '^BenchmarkMemory(Drift)?$' \
	-benchtime 1x -count 1 -timeout 20m -v ./deploy/lab/ 2>&1)
rc=$?
grep -E '^(Benchmark|    mem(ory|drift)_linux_test|ok|FAIL|--- )' <<<"$out" || true
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -40
exit "$rc"
