package redact

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzSeeds are the table cases as raw NUL-separated bytes, plus a few
// shapes the tables do not have.
func fuzzSeeds(f *testing.F) {
	for _, tc := range cmdlineCases {
		f.Add([]byte(strings.Join(tc.in, "\x00") + "\x00"))
	}
	for _, s := range []string{
		"", "\x00", "\x00\x00", "nginx: worker process\x00\x00\x00",
		"a\x00--password\x00", "sh\x00-c\x00x --token 'a b\x00",
		"curl\x00https://u:p'x@h --token 'q r' z\x00",
		"Authorization: Basic\x00<redacted>\x00",
		"password=<redacted>x<redacted\x00",
	} {
		f.Add([]byte(s))
	}
}

// FuzzCmdline checks, for any bytes: no panic, the same number of
// NUL-separated fields, no redaction means identical bytes, and a second
// pass over the output changes nothing and finds nothing, so a
// placeholder is never redacted again.
func FuzzCmdline(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, hits := Cmdline(raw)
		checkRedaction(t, raw, out, hits)
		again, hits2 := Cmdline(out)
		if !bytes.Equal(again, out) || hits2 != nil {
			t.Fatalf("second pass over %q:\n first  %q\n second %q, hits %v", raw, out, again, hits2)
		}
		// Args must agree with Cmdline.
		args, _ := Args(strings.Split(string(raw), "\x00"))
		if a := strings.Join(args, "\x00"); a != string(out) {
			t.Fatalf("Args and Cmdline differ on %q:\n Args    %q\n Cmdline %q", raw, a, out)
		}
	})
}

// FuzzEnviron checks the same properties for Environ.
func FuzzEnviron(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte("DB_PASSWORD=x\x00JAVA_OPTS=-Dpassword=y -Xmx1g\x00U=https://a:b@c\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, hits := Environ(raw)
		checkRedaction(t, raw, out, hits)
		again, hits2 := Environ(out)
		if !bytes.Equal(again, out) || hits2 != nil {
			t.Fatalf("second pass over %q:\n first  %q\n second %q, hits %v", raw, out, again, hits2)
		}
	})
}

func checkRedaction(t *testing.T, raw, out []byte, hits []Hit) {
	t.Helper()
	if bytes.Count(out, []byte{0}) != bytes.Count(raw, []byte{0}) {
		t.Fatalf("field count changed: %q -> %q", raw, out)
	}
	if hits == nil && !bytes.Equal(out, raw) {
		t.Fatalf("changed without hits: %q -> %q", raw, out)
	}
	if hits != nil && bytes.Equal(out, raw) {
		t.Fatalf("hits %v without change in %q", hits, raw)
	}
	for _, h := range hits {
		if h.Count <= 0 || h.Rule == "" {
			t.Fatalf("bad hit %+v", h)
		}
	}
	// A field that is exactly the placeholder stays exactly that.
	in, o := bytes.Split(raw, []byte{0}), bytes.Split(out, []byte{0})
	for i := range in {
		if string(in[i]) == Placeholder && string(o[i]) != Placeholder {
			t.Fatalf("placeholder field %d redacted again: %q -> %q", i, raw, out)
		}
	}
}
