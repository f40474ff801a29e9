// Package analyze reads a dashcam bundle offline and summarizes it.
//
// Load (or Open, for a file) extracts the bundle to a temporary
// directory and parses the raw kernel files there with procfs, as if the
// extracted proc/ were /proc; files procfs does not parse (the signal
// masks of proc/<pid>/status) have a small private parser. It never reads
// the machine it runs on: RSS is stat's rss pages × the manifest's
// host.page_size, CPU seconds are (utime+stime) / the manifest's
// host.clock_ticks.
//
// # Absent, zero and malformed
//
// A file may be missing from a bundle (the process exited, permission
// was denied, the kernel lacks the option). Whatever depends on it is
// unknown: null in JSON, "unknown" in text, never 0. A file that is
// present but does not parse is listed in Report.Problems; a process
// whose stat does not parse is left out of every list, while a bad
// status only makes its SIGCHLD disposition unknown. Bundles are treated
// as hostile: Load does not panic on any content, and the renderers
// escape control characters in comm and cmdline.
//
// # Report
//
// WriteText prints it for a terminal, WriteMarkdown for a ticket, and
// WriteJSON as the Report struct, indented, fields in the order below.
// The JSON schema is version 1 (schema_version); fields may be added
// without a new version, never removed or changed in meaning.
//
//	schema_version   1
//	host             hostname, kernel_release, boot_id, cpus, mem_total_bytes,
//	                 mem_available_bytes (proc/meminfo), page_size, clock_ticks,
//	                 cgroup_mode ("v1", "v2", "hybrid", "unavailable")
//	target           kind (host|cgroup|unit|pid), spec, cgroups [{hierarchy,
//	                 path, pids}], pid_count (processes it resolved to)
//	capture          tool, started (UTC), duration_seconds, trigger,
//	                 trigger_reason
//	load             {load1, load5, load15} from proc/loadavg, or null
//	pressure         [{resource (cpu|memory|io|irq), some, full}], each line
//	                 {avg10, avg60, avg300 (percent), total_us} or null
//	zombies          [{parent {pid, comm, state, sigchld}, zombies [{pid,
//	                 comm}], advice}], one entry per parent, by parent pid;
//	                 sigchld is "caught", "ignored", "default" or "unknown"
//	blocked          [{pid, tid, comm, wchan}]: processes and threads in
//	                 state D, by pid and tid; wchan "" when not captured
//	processes        number of processes parsed
//	states           [{state, name, count}], in the order R S D Z T t I X,
//	                 then any other letter found
//	top_cpu, top_rss up to 10 processes {pid, ppid, comm, state, threads,
//	                 cpu_ticks, cpu_seconds, rss_pages, rss_bytes, cmdline},
//	                 most first; processes with no CPU time (resp. no
//	                 resident pages) are left out; cmdline is argv as
//	                 captured (redacted), null when absent, [] for kernel
//	                 threads and zombies
//	fds              present when the bundle has the fds module's
//	                 proc/<pid>/fd.json: {processes, open, top [{pid, comm,
//	                 open, limit, use_percent, kinds {files, sockets,
//	                 pipes, anon_inodes, devices, memfds, other}}] (up to
//	                 10, most fds first), near_limit [same rows] (use above
//	                 80 %, highest first), deleted [{pid, comm, fd, path,
//	                 size_bytes, pos}] (files open under a deleted name,
//	                 up to 50, largest first), deleted_count, deleted_bytes
//	                 (sum of the known sizes), targets [{target, kind, fds,
//	                 processes}] (targets held by 2 fds or more, sockets and
//	                 pipes aside, up to 10)}; limit is the soft
//	                 RLIMIT_NOFILE of proc/<pid>/limits, null (and
//	                 use_percent null) when absent; size_bytes null when
//	                 the capture could not stat the file; pos is fdinfo's
//	                 offset, not the size, null without fdinfo; kind is
//	                 file, anon_inode, device, memfd or other
//	sockets          present when the bundle has the sockets module's
//	                 netns/<inode>/ members: {netns [{inode, pids, tcp
//	                 [{state, count}] (every TCP socket of the namespace,
//	                 states as in /proc/net/tcp in the kernel's order),
//	                 time_wait, udp, unix, listen_overflows, listen_drops
//	                 (TcpExt counters since the namespace was created),
//	                 sock_diag ("ok" or why the dumps are missing, "" when
//	                 netns.json is absent)}], processes [{pid, comm, netns,
//	                 tcp [{state, count}], udp, unix, other (sockets in no
//	                 table: netlink, packet, TCP reset into CLOSE)}]
//	                 (processes holding a socket, most first; a socket held
//	                 through several fds counts once), close_wait [{pid,
//	                 comm, netns, direction (inbound: local is the
//	                 listening address:port and peer an address; outbound:
//	                 local an address, peer address:port), local, peer,
//	                 count, not_read (the end of stream not read yet),
//	                 unread_bytes, advice}] (largest first), listeners
//	                 [{netns, pids, comm, local, queue (waiting for
//	                 accept()), backlog (its limit, from sock_diag), full
//	                 (queue > backlog), advice}] (non-empty accept queues,
//	                 longest first), unix_paths [{netns, path ("@…"
//	                 abstract), type, sockets, listening, pids, queue,
//	                 backlog}] (by path), stalled [{pid, comm, netns,
//	                 local, peer, state, why ("zero window": the peer does
//	                 not read; "retransmitting": it does not acknowledge),
//	                 send_q_bytes, rtt_us, rto_us, retransmits (in a row),
//	                 last_ack_ms, advice}] (most data waiting first; null
//	                 without a tcp_diag.json)}; only sockets the target's
//	                 processes hold are in processes, close_wait,
//	                 listeners, unix_paths and stalled; a count is null
//	                 when its file is absent, backlog and queue when
//	                 sock_diag was not captured or nothing listens
//	memory           present when the bundle has the memory module's
//	                 proc/<pid>/smaps_rollup, statm or smaps: {processes
//	                 [{pid, comm, rss_bytes, pss_bytes, anon_bytes,
//	                 private_dirty_bytes, swap_bytes, pss_anon_bytes,
//	                 pss_file_bytes, pss_shmem_bytes, mappings, by_kind
//	                 [{kind, mappings, size_bytes, rss_bytes,
//	                 private_dirty_bytes, swap_bytes}], largest [{start,
//	                 end, perms, kind, path, size_bytes, rss_bytes,
//	                 pss_bytes, private_dirty_bytes, swap_bytes}]}], total
//	                 {processes, rss_bytes, anon_bytes, file_bytes,
//	                 pss_bytes, pss_anon_bytes, pss_file_bytes,
//	                 pss_shmem_bytes, swap_bytes}}; processes largest RSS
//	                 first, zombies and kernel threads left out; a byte
//	                 field is null when the bundle does not say (rss from
//	                 statm alone; the pss split needs Linux 5.3); mappings
//	                 counts smaps, else maps; by_kind and largest (up to
//	                 10, most private dirty first) are null without smaps;
//	                 kind is heap, stack, anon, file, shm, memfd or special;
//	                 total sums processes with smaps_rollup or smaps: rss,
//	                 anon and file (rss − anon) count shared pages in each
//	                 process, pss shares them out
//	kstacks          present when the bundle has the kstacks module's
//	                 proc/<pid>/task/<tid>/stack or syscall: {threads (with
//	                 such files), stacks (non-empty stacks), blocked
//	                 [{frames, wchan, count, tasks [{pid, tid, comm}]}]
//	                 (threads in state D grouped by identical stack,
//	                 largest first), common [same] (all threads with a
//	                 stack, groups of 2 or more, up to 10)}; frames are
//	                 function names innermost first, addresses and offsets
//	                 removed ("func [module]" for a module); a D thread
//	                 without a stack is grouped by wchan instead (frames
//	                 null, wchan "unknown" when not captured either); tasks
//	                 lists the first 20, count them all
//	placement        present when a status has Cpus_allowed_list, the
//	                 bundle has NUMA node files, or a process has an
//	                 unusual policy or nice: {online_cpus, online_nodes
//	                 (the sys/devices/system lists, "" when absent), nodes
//	                 [{node, cpus, mem_total_bytes, mem_free_bytes}],
//	                 restricted [{cpus, cpu_count, mems, unusable_cpus,
//	                 processes, runnable, pids, comms [{comm, count}],
//	                 finding}] (processes allowed fewer CPUs than are
//	                 online or fewer memory nodes, grouped by allowed set,
//	                 largest first; pids the first 20), scheduling [{pid,
//	                 comm, policy, rt_priority, nice, state, cpus}]
//	                 (policy other than SCHED_OTHER, or nice <= -10 or
//	                 >= 10; realtime first, up to 50), processes,
//	                 kernel_threads (left out of all of it)}
//	kernel_log       present when the bundle has dev/kmsg: {records,
//	                 first_seq, last_seq, lost (seq gaps), boot_time and
//	                 suspended_seconds (from dashcam/kmsg.json, null
//	                 without it), oom_kills [{since_boot_seconds, time, pid,
//	                 comm, scope (cgroup|global), constraint, memcg,
//	                 oom_memcg, triggered_by, total_vm_bytes,
//	                 anon_rss_bytes, file_rss_bytes, shmem_rss_bytes, uid,
//	                 oom_score_adj}], hung_tasks [{since_boot_seconds, time,
//	                 pid, comm, blocked_seconds}], errors [{seq, level,
//	                 since_boot_seconds, time, message}] (the last 10 at
//	                 level err or worse outside those reports),
//	                 error_count}; time is boot_time + the record's own
//	                 timestamp, null when boot_time is
//	exec             present when the capture ran --exec commands: {runs
//	                 [{dir, index, command (redacted), pid (null: ran
//	                 once), comm, started, duration_seconds, exit_code
//	                 (null when killed or not started), signal, timed_out,
//	                 error, output_bytes, output_cap, truncated, head (first
//	                 5 non-empty output lines)}]}, by index then pid
//	modules          [{name, status (ok|partial|skipped|failed), reason,
//	                 duration_ms, errors}] as the manifest has them
//	counts           {processes_seen, processes_vanished, threads_seen}
//	redactions       number of secrets the capture replaced
//	notes            the manifest's notes
//	problems         [{path, error}]: bundle files the analyzer skipped
//
// Lists are [] when empty, so that null always means "not known".
//
// # Zombies
//
// A zombie has already exited; only its parent can remove it, by calling
// wait. Each group's advice says so in one sentence. The parent's SIGCHLD
// disposition (bit 16 of SigCgt and SigIgn in its status: signal 17 is
// bit 17-1) tells whether it has a handler that should have reaped them.
//
// # Findings
//
// "findings" comes first in every format: what an expert would write
// first on the ticket, ranked critical, warning, info (then by rule).
// Each has "rule" (zombies, d-state, fd-limit, close-wait, trigger,
// capture-quality), "severity", "title", "evidence" (numbers and the
// bundle members they come from), "why", "next" and "pids". Each rule is
// one file, rule_<name>.go, and is silent when its evidence is absent.
// This is the start of the findings engine: more rules (CPU and memory
// against limits with the history, OOM story, supervisors, placement)
// plug in the same way.
package analyze
