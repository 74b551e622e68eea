#!/usr/bin/env bash
# Installs what keepwatch's test tiers need on a fresh Debian machine: the real
# keepalived (interop and config oracle), network tools for the lab tier, the
# kernel and qemu for the IPVS tier, Prometheus and Alertmanager for the
# observability tier, and staticcheck. Idempotent: installs only what is missing.
set -euo pipefail

pkgs=(keepalived nftables iproute2 tcpdump ipvsadm kmod busybox-static systemd
      qemu-system-x86 linux-image-amd64 prometheus prometheus-alertmanager)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "test-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "test-deps: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package may start a keepalived of its own; tests run their own,
# so stop the packaged one (by its pid file: end only what we started).
systemctl disable --now keepalived >/dev/null 2>&1 || true
if [ -s /run/keepalived.pid ]; then kill "$(cat /run/keepalived.pid)" 2>/dev/null || true; fi
go mod download
