#!/usr/bin/env bash
# make bench: the benchmark suite. Speed and memory targets live here, not in
# tests. Prints the raw `go test -bench` output and a median/min/max table
# per benchmark; copy both, with this command, into docs/BENCHMARKS.md.
#
# The capture benchmarks start real processes in a throwaway cgroup and so
# need root (as do the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
COUNT="${COUNT:-5}"
BENCHTIME="${BENCHTIME:-20x}"
PKGS="${PKGS:-./bundle ./capture ./capture/redact}"

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r), $(nproc) CPUs, $(go version | cut -d' ' -f3)"
echo "# go test -run '^\$' -bench . -benchmem -count $COUNT -benchtime $BENCHTIME $PKGS"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
go test -run '^$' -bench . -benchmem -count "$COUNT" -benchtime "$BENCHTIME" $PKGS | tee "$out"

# The arm's sampling cost and trigger latency: each latency iteration
# waits for a real trigger, so fewer runs.
echo "# go test -run '^\$' -bench . -benchmem -count 1 -benchtime 5x ./trigger"
go test -run '^$' -bench . -benchmem -count 1 -benchtime 5x ./trigger | tee -a "$out"

echo
echo "| benchmark | median | min | max | B/op (median) |"
echo "| --- | --- | --- | --- | --- |"
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
		if ($(i+1) == "B/op") by[name] = by[name] " " $i
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
# sorted splits list into a, sorted numerically (insertion sort: mawk has no asort).
function sorted(list, a,   k, i, j, v) {
	k = split(list, a, " ")
	for (i = 2; i <= k; i++) { v = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j+1] = a[j]; a[j+1] = v }
	return k
}
function med(list,   a, k) { k = sorted(list, a); return a[int((k + 1) / 2)] }
function lo(list,    a, k) { k = sorted(list, a); return a[1] }
function hi(list,    a, k) { k = sorted(list, a); return a[k] }
function dur(ns) {
	if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
	if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6)
	if (ns >= 1e3) return sprintf("%.1f µs", ns / 1e3)
	return sprintf("%d ns", ns)
}
END {
	for (i = 1; i <= n; i++) {
		k = order[i]
		printf "| %s | %s | %s | %s | %s |\n", k, dur(med(ns[k])), dur(lo(ns[k])), dur(hi(ns[k])), (k in by) ? med(by[k]) : "-"
	}
}' "$out"
