#!/bin/sh
# record.sh runs the real keepalived's config test on every oracle config and
# stores what it said in NAME.out: the exit code, then its stderr/stdout as is.
# keepalived prints each problem once per parsing pass (the parent reads the
# files, then the VRRP, checker and BFD parts read the parent's copy), so the
# first pass is the part up to the first line naming the top file.
# Usage: ./record.sh [keepalived binary]   (run as root; needs keepalived 2.2.7)
set -eu
ka=${1:-keepalived}
cd "$(dirname "$0")"
version=$("$ka" -v 2>&1 | head -n 1)
for conf in *.conf; do
	out=${conf%.conf}.out
	set +e
	# -i fixes the config-id for @id lines; unshare -n keeps the test away
	# from the host's interfaces.
	log=$(timeout 10 unshare -n "$ka" -t -l -D -i kw1 -f "$conf" 2>&1)
	rc=$?
	set -e
	{
		echo "# $version: keepalived -t -l -D -i kw1 -f $conf"
		echo "exit $rc"
		printf '%s\n' "$log"
	} > "$out"
done
