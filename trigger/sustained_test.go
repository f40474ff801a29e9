package trigger

import (
	"testing"
	"time"
)

func TestSustained(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	s := newSustained(5*time.Second, time.Second)
	// A burst of 3 s never fires a 5 s window.
	for i := range 3 {
		if fire, _ := s.update(at(i), true, 90); fire {
			t.Fatalf("fired after a %d s burst", i)
		}
	}
	s.update(at(3), false, 10)
	// Held from 4 s to 9 s: fires at 9 s, not before.
	for i := 4; i <= 9; i++ {
		fire, ev := s.update(at(i), true, 90)
		if fire != (i == 9) {
			t.Fatalf("at %d s: fire = %v", i, fire)
		}
		if fire && (len(ev) != 6 || !ev[0].T.Equal(at(4))) {
			t.Errorf("evidence = %+v, want the 6 samples from 4 s", ev)
		}
	}
	// Still true: no second fire until it clears (hysteresis).
	for i := 10; i <= 20; i++ {
		if fire, _ := s.update(at(i), true, 90); fire {
			t.Fatalf("fired again at %d s without clearing", i)
		}
	}
	s.update(at(21), false, 10)
	for i := 22; i <= 27; i++ {
		if fire, _ := s.update(at(i), true, 90); fire != (i == 27) {
			t.Fatalf("after clearing, at %d s: fire = %v", i, fire)
		}
	}
	// A stalled sampler (gap > 3 intervals) restarts the window.
	s = newSustained(5*time.Second, time.Second)
	s.update(at(0), true, 90)
	s.update(at(1), true, 90)
	if fire, _ := s.update(at(10), true, 90); fire {
		t.Fatal("fired across a 9 s gap")
	}
}
