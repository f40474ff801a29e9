#!/usr/bin/env bash
# Armed-idle overhead (part of `make bench`; needs root): dashcam arm on a
# cgroup of N sleeping processes for DURATION seconds, at default settings
# (history ring included). Reports the armed process's CPU (utime+stime over
# the measured window, in % of one CPU) and peak RSS (VmHWM), for polled
# triggers and for event-driven ones only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
N="${N:-1000}"
DURATION="${DURATION:-60}"
# Event-driven arms sample processes every 5 min: measure at least that
# long so the window includes one.
EVENT_DURATION="${EVENT_DURATION:-310}"
[ "$(id -u)" = 0 ] || { echo "bench-arm: needs root (it creates a cgroup)" >&2; exit 1; }

work="$(mktemp -d /var/tmp/dashcam-bench-arm.XXXXXX)"
# shellcheck source=bench/cgroup.sh
. scripts/bench/cgroup.sh
bench_cgroup "dashcam-bench-arm-$$" memory pids cpu cpuacct
cleanup() {
	pkill -INT -f "dashcam-bench-arm-$$" 2>/dev/null || true
	bench_cgroup_remove
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/dashcam" ./cmd/dashcam
(
	for d in "${dirs[@]}"; do echo "$BASHPID" > "$d/cgroup.procs"; done
	for _ in $(seq "$N"); do sleep 100000 & done
	wait
) &
disown $!
for _ in $(seq 150); do
	[ "$(grep -c . "${dirs[0]}/cgroup.procs" || true)" -gt "$N" ] && break
	sleep 0.2
done
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r), $(nproc) CPUs; $(grep -c . "${dirs[0]}/cgroup.procs") processes in $cg; polled ${DURATION}s, event-driven ${EVENT_DURATION}s"

# cpu_ns: nanoseconds on CPU of every thread of pid (the first field of
# /proc/<pid>/task/*/schedstat): exact, where utime+stime counts 10 ms
# ticks, too coarse for a process that runs ~1 ms a second.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
run_case() { # name, seconds, arm flags...
	local name="$1" duration="$2"; shift 2
	"$work/dashcam" arm --cgroup "$cg" -o "$work/out-$name" "$@" 2> "$work/$name.log" &
	local pid=$!
	sleep 5 # start-up and the first process sample are not "idle"
	local t0 s0
	t0=$(date +%s.%N); s0=$(cpu_ns $pid)
	sleep "$duration"
	local t1 s1 hwm
	t1=$(date +%s.%N); s1=$(cpu_ns $pid)
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	kill -INT $pid; wait $pid || true
	awk -v n="$name" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v h="$hwm" \
		'BEGIN {printf "| %s | %.3f%% | %.1f MiB |\n", n, 100 * (s1 - s0) / 1e9 / (t1 - t0), h / 1024}'
}
echo
echo "| armed, idle, $N processes | CPU (% of one CPU) | peak RSS |"
echo "| --- | --- | --- |"
[ "${CASES:-all}" = event ] || run_case polled "$DURATION" --cpu 95% --throttle 95% --mem 95% --psi memory.full.avg10\>50 --for 30s
run_case event-driven "$EVENT_DURATION" --oom --psi-trigger memory:some:500ms/2s
grep -h -m1 "armed" "$work"/*.log | cut -c1-200 >&2 || true
