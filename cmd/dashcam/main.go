// Command dashcam captures the state of a misbehaving service into one
// self-describing bundle and analyzes bundles offline.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1   // capture or analysis failed
	exitUsage       = 2   // bad flags, unknown target or module
	exitInterrupted = 130 // SIGINT/SIGTERM during a capture; no bundle written
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // synopsis, flags are appended
	example string
	flags   func(*pflag.FlagSet) func(ctx context.Context, args []string, out io.Writer) error
}

var commands []*command

// memoryLimit is dashcam's soft heap limit: it runs during incidents,
// often on hosts short of memory, so the garbage collector works harder
// rather than letting the heap double. GOMEMLIMIT overrides it.
const memoryLimit = 64 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// Setting GOMAXPROCS explicitly stops the runtime from re-reading
	// its own cgroup's CPU limit every second (Go 1.25+), which was a
	// good part of an idle armed dashcam's CPU time.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one dashcam invocation and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printOverview(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		printOverview(stdout)
		return exitOK
	case "-v", "--version":
		name = "version"
	}
	cmd := lookup(name)
	if cmd == nil {
		return fail(stderr, usageErrorf("unknown command %q", name).hint("run 'dashcam help' for the list of commands"))
	}
	fs := pflag.NewFlagSet("dashcam "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	runFn := cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printUsage(stdout, cmd, fs)
			return exitOK
		}
		return fail(stderr, usageErrorf("%v", err).hint("run 'dashcam help %s' for usage", cmd.name))
	}
	if err := runFn(ctx, fs.Args(), stdout); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// cliError carries an exit code and hints along with the error.
type cliError struct {
	err   error
	code  int
	hints []string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func (e *cliError) hint(format string, args ...any) *cliError {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

func usageErrorf(format string, args ...any) *cliError {
	return &cliError{err: fmt.Errorf(format, args...), code: exitUsage}
}

func failure(err error) *cliError { return &cliError{err: err, code: exitFailed} }

// fail prints err as "dashcam: error: …" plus hints and returns its code.
func fail(stderr io.Writer, err error) int {
	code := exitFailed
	var ce *cliError
	if errors.As(err, &ce) {
		code = ce.code
	}
	fmt.Fprintf(stderr, "dashcam: error: %v\n", err)
	if ce != nil {
		for _, h := range ce.hints {
			fmt.Fprintf(stderr, "dashcam: hint: %s\n", h)
		}
	}
	return code
}
