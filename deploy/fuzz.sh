#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 60s).
# `make fuzz` runs the long pass; `make test` a short one.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
status=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/'); do
		echo "fuzz: ./$dir $target ($fuzztime)"
		if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "./$dir" > /tmp/keepwatch-fuzz.log 2>&1; then
			cat /tmp/keepwatch-fuzz.log
			status=1
		fi
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)
exit $status
