#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 5s).
# Targets are discovered with `go test -list`, so a new one is never missed.
set -euo pipefail
fuzztime="${1:-5s}"
cd "$(dirname "$0")/.."
count=0
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in $targets; do
		echo "== fuzz $pkg $target ($fuzztime)"
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
		count=$((count + 1))
	done
done
if [ "$count" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz.sh: $count targets fuzzed for $fuzztime each"
