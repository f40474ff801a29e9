package cpulist

import "testing"

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{"0-3,8,10-11": "0-3,8,10-11", "": "", "5,1-2,2": "1-2,5", "0": "0"} {
		l, err := Parse(in)
		if err != nil || Format(l) != want {
			t.Errorf("Parse(%q) = %v, %v; formats as %q, want %q", in, l, err, Format(l), want)
		}
	}
	for _, bad := range []string{"a", "1-", "-1", "3-1", "0-70000", "1,,2"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestCount(t *testing.T) {
	for in, want := range map[string]int{"0-3,8,10-11\n": 7, "0-1": 2, "": 0, "x": 0, "3-1": 0, "2,2": 1} {
		if got := Count(in); got != want {
			t.Errorf("Count(%q) = %d, want %d", in, got, want)
		}
	}
}
