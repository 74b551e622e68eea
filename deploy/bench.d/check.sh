#!/usr/bin/env bash
# Health checks at scale (DESIGN.md §9): engine/check's BenchmarkTCPCheck10k
# runs 10,000 real servers with a TCP_CHECK every second against real
# listeners and reports the checker's CPU, RSS, probes per second and probe
# lateness (scheduled start -> actual start). The checker and the listeners
# are processes in separate network namespaces whose veths receive in
# threaded NAPI, so the CPU is the checker's own (syscalls, packets sent);
# the kernel's receive work on its side is reported apart (rx). The NAPI
# threads run SCHED_FIFO (as a NIC's softirq preempts processes), and they
# and the listeners run on the last CPU, the checker on the others
# (KEEPWATCH_CHECK_NOPIN=1 to measure unpinned). KEEPWATCH_CHECK_FLOOR=1
# runs testdata/tcpfloor.c as the checker instead: the same probes with
# only their system calls, the kernel's floor on this host. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench '^BenchmarkTCPCheck10k$' -benchtime 1x ./engine/check 2>&1) || {
	echo "$out"
	exit 1
}
line=$(echo "$out" | grep -E '^BenchmarkTCPCheck10k' || true)
if [ -z "$line" ]; then
	echo "$out"
	echo "check.sh: no BenchmarkTCPCheck10k result" >&2
	exit 1
fi
echo "$line"
# The line is: name, iterations, then value/unit pairs.
echo "$line" | awk '{
	for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
	printf "TCP_CHECK x 10,000 at 1 s: CPU %s%% of a core (sys %s%%; kernel rx %s%% besides), %s us and %s waits per probe, RSS %s MiB, %s probes/s, lateness p50 %s ms, p99 %s ms\n",
		v["cpu_%_of_core"], v["sys_%_of_core"], v["rx_%_of_core"], v["cpu_µs/probe"], v["waits/probe"], v["rss_MiB"], v["probes/s"], v["lateness_p50_ms"], v["lateness_p99_ms"]
}'
