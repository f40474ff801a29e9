package analyze

import "fmt"

func init() { registerRule("close-wait", ruleCloseWait) }

// closeWaitWarn is how many CLOSE_WAIT sockets of one process and peer
// make a finding: a few are in flight at any moment.
const closeWaitWarn = 5

// ruleCloseWait: CLOSE_WAIT means the peer closed and the application has
// not; they pile up when the application never closes its end.
func ruleCloseWait(r *Report) []Finding {
	if r.Sockets == nil {
		return nil
	}
	var out []Finding
	for _, g := range r.Sockets.CloseWait {
		if g.Count < closeWaitWarn {
			continue
		}
		sev := "warning"
		if g.Count >= 100 {
			sev = "critical"
		}
		out = append(out, Finding{
			Severity: sev,
			Title:    fmt.Sprintf("pid %d (%s) has %d connections in CLOSE_WAIT (%s %s ↔ %s)", g.Pid, clean(g.Comm), g.Count, g.Direction, g.Local, g.Peer),
			Evidence: []string{
				fmt.Sprintf("netns/%d/net/tcp state 08 (CLOSE_WAIT) owned via sockets.json; %d never read to EOF, %d bytes unread", g.Netns, g.NotRead, g.UnreadBytes),
			},
			Why:  "the peer has closed; the socket stays until the application calls close(). A pile of them is an fd and memory leak in the application, and a sign it stopped handling these connections",
			Next: "find the code path that stops reading or forgets to close (connection pools, error paths); the count grows without bound until the fd limit",
			Pids: []int{g.Pid},
		})
	}
	return out
}
