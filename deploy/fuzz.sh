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
		log=$(mktemp)
		if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "./$dir" > "$log" 2>&1; then
			# The Go fuzzer sometimes reports the end of -fuzztime itself as
			# "context deadline exceeded" without any failing input; that is
			# not a finding. Anything else (a written failing input, a panic)
			# is.
			if grep -q "context deadline exceeded" "$log" && ! grep -qE "Failing input written|panic:|testdata/fuzz/" "$log"; then
				echo "fuzz: $target: the fuzzer's own deadline report at the end of the run, no failing input (ignored)"
			else
				cat "$log"
				status=1
			fi
		fi
		rm -f "$log"
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)
exit $status
