package analyze

import "fmt"

func init() { registerRule("zombies", ruleZombies) }

// ruleZombies: zombies are already dead; only their parent can remove
// them, by reaping (wait). A parent that catches SIGCHLD but does not
// reap, or never waits, is the bug.
func ruleZombies(r *Report) []Finding {
	var out []Finding
	for _, g := range r.Zombies {
		sev := "warning"
		if len(g.Zombies) >= 100 {
			sev = "critical" // pid exhaustion is next
		}
		parent := fmt.Sprintf("pid %d", g.Parent.Pid)
		if g.Parent.Comm != "" {
			parent = fmt.Sprintf("pid %d (%s)", g.Parent.Pid, g.Parent.Comm)
		}
		f := Finding{
			Severity: sev,
			Title:    fmt.Sprintf("%d zombie processes: their parent %s does not reap them", len(g.Zombies), parent),
			Evidence: []string{
				fmt.Sprintf("zombies (state Z, proc/<pid>/stat) with parent %d: %s", g.Parent.Pid, zombieList(g)),
				fmt.Sprintf("parent state %s, SIGCHLD %s (proc/%d/status SigCgt/SigIgn)", orUnknown(g.Parent.State), g.Parent.SIGCHLD, g.Parent.Pid),
			},
			Why:  "a zombie has already exited and holds only a pid and its exit status; killing it does nothing. Left alone they accumulate until pid_max or the cgroup's pids.max is reached and fork fails",
			Next: fmt.Sprintf("fix the parent to wait() for its children (or set SIGCHLD to SIG_IGN); restarting %s makes init reap them now; a container's PID 1 must reap (use an init such as tini)", parent),
			Pids: []int{g.Parent.Pid},
		}
		for _, z := range g.Zombies {
			f.Pids = append(f.Pids, z.Pid)
		}
		out = append(out, f)
	}
	return out
}
