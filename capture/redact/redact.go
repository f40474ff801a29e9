package redact

import (
	"bytes"
	"slices"
	"strings"
)

// Placeholder replaces every redacted value. It contains no NUL, so the
// NUL layout of /proc files survives, and no rule ever matches it, so
// redacting twice changes nothing.
const Placeholder = "<redacted>"

// Hit says one secret was replaced: which rule matched (never the value).
// Count is how many values that rule replaced in one call.
type Hit struct {
	Rule  string
	Count int
}

// Rule names, as they appear in Hit.Rule and in the bundle manifest.
const (
	RuleSecretFlag    = "secret-flag"      // --password=x, --token x, mysql -px
	RuleKeyValue      = "secret-key=value" // password=x anywhere in an arg, "password":"x"
	RuleSecretHeader  = "secret-header"    // X-Api-Key: x
	RuleSecretEnv     = "secret-env"       // DB_PASSWORD=x in environ
	RuleURL           = "url-credentials"  // scheme://user:x@host, user:x@tcp(host)
	RuleBearer        = "bearer-token"     // Bearer x
	RuleBasic         = "basic-auth"       // Basic base64(user:pass)
	RulePrivateKey    = "private-key"      // -----BEGIN … PRIVATE KEY-----
	RuleAWSAccessKey  = "aws-access-key"   // AKIA…, ASIA…
	RuleAWSSecretKey  = "aws-secret-key"   // 40-char secret next to an access key id
	RuleGitHubToken   = "github-token"     // ghp_…, github_pat_…
	RuleGitLabToken   = "gitlab-token"     // glpat-…
	RuleSlackToken    = "slack-token"      // xoxb-…
	RuleStripeKey     = "stripe-key"       // sk_live_…
	RuleGoogleAPIKey  = "google-api-key"   // AIza…
	RuleNPMToken      = "npm-token"        // npm_…
	RuleVaultToken    = "vault-token"      // hvs.…
	RuleSKAPIKey      = "sk-api-key"       // sk-… (OpenAI-style)
	RuleJWT           = "jwt"              // eyJ….eyJ….sig
	RuleWebhookSecret = "webhook-url"      // hooks.slack.com/services/<secret>
	RuleUnsettled     = "unsettled"        // redaction did not settle; whole field replaced
)

// Cmdline redacts the raw bytes of /proc/<pid>/cmdline: NUL-separated
// arguments, usually NUL-terminated, possibly without the final NUL, or a
// single string with spaces when the process rewrote its argv ("nginx:
// worker process"). It returns the redacted bytes in the same NUL layout
// and the hits, one per rule. When nothing is redacted the result is an
// identical copy of raw.
func Cmdline(raw []byte) ([]byte, []Hit) {
	fields := strings.Split(string(raw), "\x00")
	out, hits := redactFields(fields, scanCmdline)
	if hits == nil {
		return bytes.Clone(raw), nil
	}
	return []byte(strings.Join(out, "\x00")), hits
}

// Environ redacts raw /proc/<pid>/environ (NUL-separated KEY=VALUE). The
// value of a variable whose name looks secret is replaced whole; other
// values are still scanned like command-line text (URL credentials, bearer
// tokens, known token formats, -Dx.password=… in JAVA_OPTS).
func Environ(raw []byte) ([]byte, []Hit) {
	fields := strings.Split(string(raw), "\x00")
	out, hits := redactFields(fields, scanEnviron)
	if hits == nil {
		return bytes.Clone(raw), nil
	}
	return []byte(strings.Join(out, "\x00")), hits
}

// Args redacts an already split argv, with the same rules as Cmdline. It
// always returns a new slice.
func Args(args []string) ([]string, []Hit) {
	return redactFields(slices.Clone(args), scanCmdline)
}

// maxRounds bounds the scan-and-replace rounds of one call.
const maxRounds = 4

// redactFields runs scan and applies its spans until a round finds
// nothing. One round is almost always enough; a second one catches what a
// redaction uncovered, e.g. shell quoting that a replaced password had
// unbalanced. Rounds would end anyway (every span turns at least one byte
// outside a placeholder into a placeholder), but an input crafted to need
// many rounds would cost quadratic time, so after maxRounds every field
// that still holds more than placeholders is replaced whole (RuleUnsettled).
func redactFields(fields []string, scan func(*doc)) ([]string, []Hit) {
	counts := map[string]int{}
	for round := 1; ; round++ {
		d := newDoc(fields)
		scan(d)
		if round > maxRounds && d.found() {
			for f, t := range fields {
				if strings.ReplaceAll(t, Placeholder, "") != "" {
					fields[f] = Placeholder
					counts[RuleUnsettled]++
				}
			}
			break
		}
		if !d.apply(counts) {
			break
		}
		fields = d.fields
	}
	if len(counts) == 0 {
		return fields, nil
	}
	hits := make([]Hit, 0, len(counts))
	for rule, n := range counts {
		hits = append(hits, Hit{Rule: rule, Count: n})
	}
	slices.SortFunc(hits, func(a, b Hit) int { return strings.Compare(a.Rule, b.Rule) })
	return fields, hits
}

// span is a byte range [s, e) of one field to replace, and the rule that
// found it.
type span struct {
	s, e  int
	rule  string
	order int // when the span was found; the earliest rule names a merge
}

// doc holds the fields of one file during one round, the placeholders
// already in them, and the spans found so far.
type doc struct {
	fields []string
	spans  [][]span // per field, in the order found; merged by apply
	akia   []bool   // fields where an AWS access key id was found
	order  int      // spans added so far
	// holders are the placeholders already in a field, in order; free[i]
	// counts the bytes of fields[f][:i] outside them. Both stay nil for
	// the usual field without placeholders.
	holders [][]span
	free    [][]int32
}

func newDoc(fields []string) *doc {
	d := &doc{
		fields:  fields,
		spans:   make([][]span, len(fields)),
		akia:    make([]bool, len(fields)),
		holders: make([][]span, len(fields)),
		free:    make([][]int32, len(fields)),
	}
	for f, t := range fields {
		if !strings.Contains(t, Placeholder) {
			continue
		}
		free := make([]int32, len(t)+1)
		n := int32(0)
		for i := 0; i < len(t); {
			if strings.HasPrefix(t[i:], Placeholder) {
				d.holders[f] = append(d.holders[f], span{s: i, e: i + len(Placeholder)})
				for k := 0; k < len(Placeholder); k++ {
					free[i+k+1] = n
				}
				i += len(Placeholder)
				continue
			}
			n++
			free[i+1] = n
			i++
		}
		d.free[f] = free
	}
	return d
}

// add records that fields[f][s:e] is a secret found by rule. A span that
// cuts into a placeholder is widened to cover it, and a span made only of
// placeholders is dropped: a placeholder is never redacted again.
func (d *doc) add(f, s, e int, rule string) {
	s, e = max(s, 0), min(e, len(d.fields[f]))
	if s >= e {
		return
	}
	if hs := d.holders[f]; hs != nil {
		// Placeholders do not overlap one another, so only the ones
		// holding s and e-1 can cut the span.
		if h, ok := holderAt(hs, s); ok {
			s = h.s
		}
		if h, ok := holderAt(hs, e-1); ok {
			e = h.e
		}
		if d.free[f][e] == d.free[f][s] {
			return
		}
	}
	d.order++
	d.spans[f] = append(d.spans[f], span{s: s, e: e, rule: rule, order: d.order})
}

// holderAt returns the placeholder holding byte x, if any.
func holderAt(hs []span, x int) (span, bool) {
	i, _ := slices.BinarySearchFunc(hs, x, func(h span, x int) int { return h.e - 1 - x })
	if i < len(hs) && hs[i].s <= x {
		return hs[i], true
	}
	return span{}, false
}

// found reports whether the round found any span.
func (d *doc) found() bool {
	for _, s := range d.spans {
		if len(s) > 0 {
			return true
		}
	}
	return false
}

// apply merges each field's spans, replaces them by the placeholder, adds
// one count per merged span to counts, and reports whether anything
// changed. Overlapping or touching spans merge and keep the rule found
// first, so one secret found by two rules counts once.
func (d *doc) apply(counts map[string]int) bool {
	changed := false
	for f, spans := range d.spans {
		if len(spans) == 0 {
			continue
		}
		changed = true
		slices.SortFunc(spans, func(a, b span) int { return a.s - b.s })
		t := d.fields[f]
		var b strings.Builder
		b.Grow(len(t))
		prev := 0
		for i := 0; i < len(spans); {
			cur := spans[i]
			for i++; i < len(spans) && spans[i].s <= cur.e; i++ {
				cur.e = max(cur.e, spans[i].e)
				if spans[i].order < cur.order {
					cur.rule, cur.order = spans[i].rule, spans[i].order
				}
			}
			b.WriteString(t[prev:cur.s])
			b.WriteString(Placeholder)
			prev = cur.e
			counts[cur.rule]++
		}
		b.WriteString(t[prev:])
		d.fields[f] = b.String()
	}
	return changed
}
