# Sourced by the benchmark scripts: a throwaway cgroup for the workload.
#
#   bench_cgroup NAME CONTROLLER…   creates /NAME in the unified tree (v2,
#                                   or hybrid's unified) and the v1
#                                   controllers given, where mounted;
#                                   sets cg (the path) and dirs (one per
#                                   hierarchy, unified first)
#   bench_cgroup_remove             kills what is left in it and removes it
bench_cgroup() {
	local name="$1" root
	shift
	cg="/$name"
	dirs=()
	for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
		if [ -f "$root/cgroup.controllers" ]; then
			mkdir "$root$cg" && dirs+=("$root$cg")
			break
		fi
	done
	for ctl in "$@"; do
		root="/sys/fs/cgroup/$ctl"
		if [ -f "$root/cgroup.procs" ] && [ ! -f "$root/cgroup.controllers" ]; then
			mkdir "$root$cg" && dirs+=("$root$cg")
		fi
	done
}

bench_cgroup_remove() {
	local d
	for d in "${dirs[@]}"; do
		for _ in 1 2 3 4 5; do
			xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null || true
			rmdir "$d" 2>/dev/null && break
			sleep 0.5
		done
	done
}
