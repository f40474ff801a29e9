#!/usr/bin/env bash
# Capture benchmark (part of `make bench`; needs root): N processes in a
# throwaway cgroup, each with ~64 fds (40 files, 5 pipes, 11 TCP sockets),
# 4 threads and 1 MiB of touched anonymous memory (scripts/bench/worker.c).
# Measures side by side, RUNS times each, median/min/max wall time:
#   rawread  the lower bound: a Go program reading every needed file once
#   dashcam  dashcam capture --cgroup (default modules), bundle written
#   by-hand  ps + lsof -p + ss -tanp + cat smaps + cat stack into a tar.gz
# and dashcam's peak RSS. Prints a Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
N="${N:-1000}"
RUNS="${RUNS:-5}"
[ "$(id -u)" = 0 ] || { echo "bench-capture: needs root (it creates a cgroup)" >&2; exit 1; }

work="$(mktemp -d /var/tmp/dashcam-bench.XXXXXX)"
# shellcheck source=bench/cgroup.sh
. scripts/bench/cgroup.sh
bench_cgroup "dashcam-bench-$$" memory pids
cleanup() {
	bench_cgroup_remove
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/dashcam" ./cmd/dashcam
go build -o "$work/rawread" ./scripts/bench/rawread
gcc -O2 -pthread -o "$work/worker" scripts/bench/worker.c

# Start the workers from a subshell placed in the cgroup: they inherit it.
(
	for d in "${dirs[@]}"; do echo "$BASHPID" > "$d/cgroup.procs"; done
	for _ in $(seq "$N"); do echo go | "$work/worker" > /dev/null & done
	wait
) &
disown $!
for _ in $(seq 100); do
	n=$(grep -c . "${dirs[0]}/cgroup.procs" || true)
	[ "$n" -ge $((N + 1)) ] && break
	sleep 0.2
done
sleep 2 # let every worker open its fds and threads
pids=$(for p in $(cat "${dirs[0]}/cgroup.procs"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = worker ] && echo "$p"; done | paste -sd, -)
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r), $(nproc) CPUs; $(tr , '\n' <<<"$pids" | grep -c .) workers (+1 waiting shell) in $cg"

byhand() {
	local out="$work/byhand"
	rm -rf "$out" && mkdir -p "$out"
	ps -eLf > "$out/ps.txt"
	lsof -n -P -p "$pids" > "$out/lsof.txt" 2>/dev/null || true
	ss -tanp > "$out/ss.txt"
	for p in ${pids//,/ }; do
		cat "/proc/$p/smaps" > "$out/$p.smaps" 2>/dev/null || true
		cat /proc/"$p"/task/*/stack > "$out/$p.stack" 2>/dev/null || true
	done
	tar czf "$work/byhand.tar.gz" -C "$out" .
}

measure() { # name command...: appends "wall maxrss_kb" to $work/t.name
	local name="$1"; shift
	/usr/bin/time -a -o "$work/t.$name" -f "%e %M" "$@" > /dev/null 2>&1
}
col() { awk -v c="$2" '{printf "%s ", $c}' "$work/t.$1"; } # name column
for r in $(seq "$RUNS"); do
	measure rawread "$work/rawread" -cgroup "${dirs[0]}"
	measure dashcam "$work/dashcam" capture -q --cgroup "$cg" -o "$work/out"
	measure byhand bash -c "$(declare -f byhand); work=$work pids=$pids byhand"
	echo "run $r: rawread $(tail -n1 "$work/t.rawread") dashcam $(tail -n1 "$work/t.dashcam") by-hand $(tail -n1 "$work/t.byhand") (s, KiB)" >&2
done
bundle=$(ls -S "$work"/out/*.tar.zst | head -n 1)

stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {printf "%.2f s | %.2f s | %.2f s", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lb=$(median "$(col rawread 1)")
echo
echo "| $N processes | median | min | max | vs lower bound |"
echo "| --- | --- | --- | --- | --- |"
for k in rawread dashcam byhand; do
	m=$(median "$(col "$k" 1)")
	echo "| $k | $(stats "$(col "$k" 1)") | $(awk -v a="$m" -v b="$lb" 'BEGIN {printf "%.2f×", a / b}') |"
done
echo
echo "dashcam peak RSS (KiB), per run: $(col dashcam 2)"
echo "bundle: $(stat -c %s "$bundle") bytes; $("$work/dashcam" analyze --format json "$bundle" | grep -m1 '"processes"' || true)"
echo "by-hand tar.gz: $(stat -c %s "$work/byhand.tar.gz") bytes"
