package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func init() {
	commands = append(commands,
		&command{
			name:    "help",
			summary: "show help for dashcam or one command",
			usage:   "dashcam help [COMMAND]",
			example: "dashcam help capture",
			flags: func(*pflag.FlagSet) func(context.Context, []string, io.Writer) error {
				return runHelp
			},
		},
		&command{
			name:    "version",
			summary: "print the version",
			usage:   "dashcam version",
			example: "dashcam version",
			flags: func(*pflag.FlagSet) func(context.Context, []string, io.Writer) error {
				return func(_ context.Context, args []string, out io.Writer) error {
					if len(args) > 0 {
						return usageErrorf("version takes no arguments")
					}
					fmt.Fprintf(out, "dashcam %s\n", toolVersion())
					return nil
				}
			},
		})
}

func runHelp(_ context.Context, args []string, out io.Writer) error {
	switch len(args) {
	case 0:
		printOverview(out)
		return nil
	case 1:
		cmd := lookup(args[0])
		if cmd == nil {
			return usageErrorf("unknown command %q", args[0]).hint("run 'dashcam help' for the list of commands")
		}
		fs := pflag.NewFlagSet("dashcam "+cmd.name, pflag.ContinueOnError)
		fs.SortFlags = false
		cmd.flags(fs)
		printUsage(out, cmd, fs)
		return nil
	}
	return usageErrorf("help takes at most one command")
}

func printOverview(w io.Writer) {
	fmt.Fprint(w, `dashcam captures the state of a misbehaving Linux service (its processes,
cgroup limits and host pressure) into one self-describing bundle, and
analyzes bundles offline.

Usage:
  dashcam COMMAND [FLAGS]

Commands:
`)
	for _, name := range []string{"capture", "arm", "fire", "analyze", "help", "version"} {
		if c := lookup(name); c != nil {
			fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, `
Examples:
  dashcam capture                         # the whole host, bundle in the current folder
  dashcam capture --unit payment.service  # one systemd unit and its sub-cgroups
  dashcam arm --unit payment.service --cpu 80% --for 30s --oom   # capture when it happens
  dashcam analyze dashcam-*.tar.zst

Run 'dashcam help COMMAND' for a command's flags.
`)
}

func printUsage(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n", capitalize(c.summary), c.usage)
	if u := fs.FlagUsages(); u != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", u)
	}
	fmt.Fprintf(w, "\nExamples:\n")
	for _, line := range strings.Split(c.example, "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// toolVersion is the -X version, else the module version or VCS revision
// recorded by the Go toolchain.
func toolVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
