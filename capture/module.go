package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Module captures one kind of evidence. Run copies what it finds into the
// sink and returns nil, or an error that says why it could not:
// ErrNotSupported (wrapped) makes the module "skipped"; any other error
// makes it "failed". Problems with single files (a vanished process, a
// denied read) are told to the sink instead and make the module "partial".
// Run must return promptly once ctx is done.
type Module interface {
	Run(ctx context.Context, t *Target, s *Sink) error
}

// Config is what modules are built from.
type Config struct {
	Paths Paths
	// Environ enables capture of /proc/<pid>/environ (redacted).
	Environ bool
	// MemoryTop is how many processes, largest RSS first, get full smaps,
	// maps and numa_maps (memory module); the rest get smaps_rollup.
	MemoryTop int
	// MemoryBudget bounds the bytes of full smaps/maps/numa_maps copied.
	MemoryBudget int64
	// ThreadBudget bounds the threads whose kernel stacks are copied
	// (kstacks module).
	ThreadBudget int
	// KmsgRecords is how many of the newest kernel log records the host
	// module copies from /dev/kmsg.
	KmsgRecords int
	// Exec are user commands run by the exec module.
	Exec []ExecSpec
}

// ExecSpec is one --exec command: run once, or once per target process
// whose comm or cmdline matches Match ({pid} in Command is replaced).
type ExecSpec struct {
	Command   string
	Match     string // regexp; empty: run once, not per process
	Timeout   time.Duration
	OutputCap int64 // bytes of stdout+stderr kept
}

// DefaultConfig is the live system with every budget at its default.
func DefaultConfig() Config {
	return Config{
		Paths:        DefaultPaths(),
		MemoryTop:    10,
		MemoryBudget: 64 << 20,
		ThreadBudget: 10000,
		KmsgRecords:  1000,
	}
}

type registration struct {
	name    string
	enabled bool
	factory func(*Config) Module
}

var registry = map[string]registration{}

// register adds a module; modules call it from init. It panics on a
// duplicate name, which is a programming error.
func register(name string, enabledByDefault bool, factory func(*Config) Module) {
	if _, dup := registry[name]; dup {
		panic("capture: module registered twice: " + name)
	}
	registry[name] = registration{name, enabledByDefault, factory}
}

// ModuleNames lists every registered module, sorted.
func ModuleNames() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultModules lists the modules enabled by default, sorted.
func DefaultModules() []string {
	var names []string
	for _, n := range ModuleNames() {
		if registry[n].enabled {
			names = append(names, n)
		}
	}
	return names
}

// ErrUnknownModule is returned by SelectModules for a name nobody registered.
var ErrUnknownModule = errors.New("unknown module")

// SelectModules turns a --modules list into module names. An empty list
// means the defaults; "all" means every module; "-name" removes one from
// the defaults ("-host"); "+name" adds one to them.
func SelectModules(list []string) ([]string, error) {
	if len(list) == 0 {
		return DefaultModules(), nil
	}
	var (
		out      []string
		relative = strings.HasPrefix(list[0], "-") || strings.HasPrefix(list[0], "+")
	)
	if relative {
		out = DefaultModules()
	}
	for _, item := range list {
		name := strings.TrimLeft(item, "+-")
		if name == "all" {
			out = ModuleNames()
			continue
		}
		if _, ok := registry[name]; !ok {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownModule, name, strings.Join(ModuleNames(), ", "))
		}
		if strings.HasPrefix(item, "-") {
			out = slices.DeleteFunc(out, func(n string) bool { return n == name })
		} else if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
