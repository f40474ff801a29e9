package analyze

import "fmt"

func init() { registerRule("fd-limit", ruleFDLimit) }

// ruleFDLimit: a process near its RLIMIT_NOFILE soft limit is about to
// fail every open, socket and accept with EMFILE.
func ruleFDLimit(r *Report) []Finding {
	if r.FDs == nil {
		return nil
	}
	var out []Finding
	for _, p := range r.FDs.NearLimit {
		if p.Limit == nil || p.UsePercent == nil {
			continue
		}
		sev := "warning"
		if *p.UsePercent >= 95 {
			sev = "critical"
		}
		k := p.Kinds
		out = append(out, Finding{
			Severity: sev,
			Title:    fmt.Sprintf("pid %d (%s) holds %d fds, %.0f%% of its limit %d", p.Pid, clean(p.Comm), p.Open, *p.UsePercent, *p.Limit),
			Evidence: []string{
				fmt.Sprintf("proc/%d/fd.json: %d files, %d sockets, %d pipes, %d anon inodes; proc/%d/limits: Max open files %d", p.Pid, k.Files, k.Sockets, k.Pipes, k.AnonInodes, p.Pid, *p.Limit),
			},
			Why:  "at the limit every open(), socket() and accept() fails with EMFILE: requests fail while the process looks healthy",
			Next: "find what dominates the fd table (the fds section below) and whether it grows (an fd leak); raise LimitNOFILE only once the leak is ruled out",
			Pids: []int{p.Pid},
		})
	}
	return out
}
