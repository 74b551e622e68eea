#!/usr/bin/env bash
# Captures keepalived's own VRRP adverts, gratuitous ARPs and unsolicited
# neighbour advertisements as the codec and announcer tests' golden input
# (`make vectors`). Needs root, the Debian keepalived, tcpdump and iproute2.
#
# Each capture: two network namespaces joined by a veth pair, node A
# (192.0.2.1, 2001:db8::1) runs keepalived as MASTER of VRID 42 at priority
# 150 with advert_int 1 for about three adverts as master and is then stopped with
# SIGTERM, so it sends one priority-0 advert; node B captures
# `ip proto 112 or ip proto 51 or ip6 proto 112 or arp or icmp6` (51 is
# IPsec AH, which carries keepalived's auth_type AH adverts). keepalived's IP ID counts
# from 1, so each capture starts before keepalived does.
#
# Usage: deploy/vectors/capture.sh [OUTDIR]   (default engine/vrrp/vrrptest/testdata)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-engine/vrrp/vrrptest/testdata}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in keepalived tcpdump ip; do
	command -v "$tool" >/dev/null || { echo "vectors: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "vectors: needs root (network namespaces)" >&2; exit 1; }

tag="kwvec$$"
nsA="${tag}a" nsB="${tag}b"
work=$(mktemp -d)
tcpdump_pid=""
ka_pid=""
cleanup() {
	[ -n "$ka_pid" ] && kill "$ka_pid" 2>/dev/null || true
	[ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null || true
	ip netns del "$nsA" 2>/dev/null || true
	ip netns del "$nsB" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

lab() {
	ip netns add "$nsA"
	ip netns add "$nsB"
	ip link add vA netns "$nsA" type veth peer name vB netns "$nsB"
	for n in "$nsA" "$nsB"; do
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
		ip -n "$n" link set lo up
	done
	ip -n "$nsA" addr add 192.0.2.1/24 dev vA
	ip -n "$nsA" addr add 2001:db8::1/64 dev vA nodad
	ip -n "$nsB" addr add 192.0.2.2/24 dev vB
	ip -n "$nsB" addr add 2001:db8::2/64 dev vB nodad
	ip -n "$nsA" link set vA up
	ip -n "$nsB" link set vB up
	sleep 1 # link-local addresses
}

# capture NAME: writes $out/NAME.pcap from the config on standard input.
capture() {
	local name=$1 conf="$work/$1.conf"
	cat > "$conf"
	lab
	ip netns exec "$nsB" tcpdump -q -U -i vB -w "$work/$name.pcap" \
		'ip proto 112 or ip proto 51 or ip6 proto 112 or arp or icmp6' 2>"$work/tcpdump.log" &
	tcpdump_pid=$!
	sleep 1
	# -P: VRRP only; pid files of our own so no other keepalived is touched.
	ip netns exec "$nsA" keepalived -n -l -P -f "$conf" \
		-p "$work/ka.pid" -r "$work/vrrp.pid" >"$work/ka.log" 2>&1 &
	ka_pid=$!
	# keepalived 2.2.7 starts even a MASTER in BACKUP and takes over after
	# Master_Down_Interval; let it send three adverts as master, then stop it.
	for _ in $(seq 100); do
		grep -q 'Entering MASTER STATE' "$work/ka.log" && break
		sleep 0.1
	done
	grep -q 'Entering MASTER STATE' "$work/ka.log" || { cat "$work/ka.log" >&2; echo "vectors: $name: keepalived never became master" >&2; exit 1; }
	sleep 2.6
	kill -TERM "$ka_pid"
	wait "$ka_pid" 2>/dev/null || true
	ka_pid=""
	sleep 1
	kill "$tcpdump_pid"
	wait "$tcpdump_pid" 2>/dev/null || true
	tcpdump_pid=""
	ip netns del "$nsA"
	ip netns del "$nsB"
	cp "$work/$name.pcap" "$out/$name.pcap"
	echo "vectors: $out/$name.pcap"
}

instance() { # version extra-lines vips...
	local version=$1 extra=$2
	shift 2
	cat <<CONF
global_defs {
	vrrp_version $version
}
vrrp_instance VI_1 {
	state MASTER
	interface vA
	virtual_router_id 42
	priority 150
	advert_int 1
$extra
	virtual_ipaddress {
$(printf '\t\t%s\n' "$@")
	}
}
CONF
}

instance 2 "" 192.0.2.100/24 | capture v2-ipv4-noauth
instance 2 "	authentication {
		auth_type PASS
		auth_pass s3cret
	}" 192.0.2.100/24 192.0.2.101/24 | capture v2-ipv4-pass
instance 2 "	authentication {
		auth_type AH
		auth_pass s3cret
	}" 192.0.2.100/24 192.0.2.101/24 | capture v2-ipv4-ah
instance 3 "" 192.0.2.100/24 192.0.2.101/24 192.0.2.102/24 | capture v3-ipv4
instance 3 "	unicast_src_ip 192.0.2.1
	unicast_peer {
		192.0.2.2
	}" 192.0.2.100/24 | capture v3-ipv4-unicast
instance 3 "" 2001:db8::100/64 2001:db8::101/64 | capture v3-ipv6
