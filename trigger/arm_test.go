package trigger

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// flapper fires on every other sample: a condition that flaps on and off.
type flapper struct{ n int }

func (f *flapper) Name() string { return "flap" }
func (f *flapper) Observe(s *Sample) *Event {
	f.n++
	if f.n%2 == 0 {
		return &Event{Kind: "flap", Reason: "flapping", Time: s.Time}
	}
	return nil
}

// fakeCapture records the captures Arm asks for.
type fakeCapture struct {
	mu      sync.Mutex
	events  []Event
	history [][]*Sample
}

func (f *fakeCapture) capture(_ context.Context, ev Event, history func() []*Sample) (string, error) {
	h := history()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	f.history = append(f.history, h)
	return "/dev/null/bundle-" + ev.Kind, nil
}

func (f *fakeCapture) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

func armFor(t *testing.T, d time.Duration, c Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := Arm(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// TestArmEnvelopeFlapping: a condition flapping every 20 ms for 1.5 s
// yields at most --max-bundles bundles, spaced by the cooldown, and a
// restart (a new arm on the same state) writes no more.
func TestArmEnvelopeFlapping(t *testing.T) {
	dir := t.TempDir()
	limits := Limits{Cooldown: 400 * time.Millisecond, MaxBundles: 3}
	env, err := OpenEnvelope(dir, "test", limits)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCapture{}
	armFor(t, 1500*time.Millisecond, Config{
		Group: fixtureGroup(t, "v2", "/system.slice/payment.service"), Pollers: []Poller{&flapper{}},
		Interval: 10 * time.Millisecond, Envelope: env, Capture: fc.capture,
	})
	if n := fc.count(); n != 3 {
		t.Fatalf("%d captures, want exactly --max-bundles 3 (cooldown 400ms over 1.5s)", n)
	}
	for i := 1; i < len(fc.events); i++ {
		if gap := fc.events[i].Time.Sub(fc.events[i-1].Time); gap < limits.Cooldown {
			t.Errorf("captures %d and %d only %v apart, cooldown %v", i-1, i, gap, limits.Cooldown)
		}
	}
	// Restart: the state next to the bundles keeps the count.
	env2, err := OpenEnvelope(dir, "test", limits)
	if err != nil {
		t.Fatal(err)
	}
	if env2.Count() != 3 {
		t.Errorf("after restart Count() = %d, want 3", env2.Count())
	}
	fc2 := &fakeCapture{}
	armFor(t, 300*time.Millisecond, Config{
		Group: fixtureGroup(t, "v2", "/system.slice/payment.service"), Pollers: []Poller{&flapper{}},
		Interval: 10 * time.Millisecond, Envelope: env2, Capture: fc2.capture,
	})
	if n := fc2.count(); n != 0 {
		t.Errorf("restarted arm wrote %d bundles past --max-bundles", n)
	}
}

func TestArmDryRunWritesNothing(t *testing.T) {
	fc := &fakeCapture{}
	armFor(t, 200*time.Millisecond, Config{
		Group: fixtureGroup(t, "v2", "/system.slice/payment.service"), Pollers: []Poller{&flapper{}},
		Interval: 10 * time.Millisecond, DryRun: true, Capture: fc.capture,
	})
	if n := fc.count(); n != 0 {
		t.Errorf("dry run captured %d times", n)
	}
}

// TestArmManualFireWithHistory: a manual fire captures, and the bundle's
// history holds the samples before it and --after samples after it.
func TestArmManualFireWithHistory(t *testing.T) {
	fire := make(chan string, 1)
	fc := &fakeCapture{}
	go func() {
		time.Sleep(200 * time.Millisecond)
		fire <- "test"
	}()
	armFor(t, 600*time.Millisecond, Config{
		Group: fixtureGroup(t, "v2", "/system.slice/payment.service"), Interval: 10 * time.Millisecond,
		After: 100 * time.Millisecond, Fire: fire, Capture: fc.capture,
	})
	if fc.count() != 1 || fc.events[0].Kind != "manual" || fc.events[0].Reason != "test" {
		t.Fatalf("events = %+v, want one manual capture", fc.events)
	}
	h, at := fc.history[0], fc.events[0].Time
	var before, after int
	for _, s := range h {
		if s.Time.Before(at) {
			before++
		} else {
			after++
		}
	}
	if before < 10 || after < 5 {
		t.Errorf("history has %d samples before and %d after the trigger, want the past and --after", before, after)
	}
	if h[0].MemBytes == nil || *h[0].MemBytes != 900000000 {
		t.Errorf("sample = %+v, want memory.current of the fixture", h[0])
	}
}

func TestEnvelopeLimits(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	env, _ := OpenEnvelope(dir, "k", Limits{RateCount: 2, RateWindow: time.Hour})
	for i := range 2 {
		if ok, why := env.Check(now); !ok {
			t.Fatalf("capture %d refused: %s", i, why)
		}
		env.Record(Record{Path: "x", Trigger: "cpu", Time: now})
	}
	if ok, why := env.Check(now.Add(time.Minute)); ok || why == "" {
		t.Error("third capture within the hour allowed by --rate 2/1h")
	}
	if ok, _ := env.Check(now.Add(61 * time.Minute)); !ok {
		t.Error("capture refused after the rate window passed")
	}
	// keep-free 100% can never be met: the reason names the flag.
	env2, _ := OpenEnvelope(t.TempDir(), "k", Limits{KeepFree: 100})
	if ok, why := env2.Check(now); ok || !contains(why, "--keep-free") {
		t.Errorf("keep-free: ok=%v why=%q", ok, why)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
