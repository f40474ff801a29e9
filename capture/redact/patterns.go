package redact

import (
	"regexp"
	"strings"
)

// pemPrivateKey matches the header of a PEM private key (RSA, EC,
// OPENSSH, ENCRYPTED, PGP … PRIVATE KEY BLOCK). Key material in an
// argument is redacted with the whole argument.
var pemPrivateKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----`)

// tokenPattern is a credential format recognisable by its shape alone.
// A match must not continue an alphanumeric run on either side, so
// "xAKIA…" or a longer run that merely contains a prefix is left alone.
type tokenPattern struct {
	hints []string // one of these must occur for re to match; a cheap prefilter
	re    *regexp.Regexp
	rule  string
	group int               // submatch to redact; 0 is the whole match
	check func(string) bool // extra test on the match, or nil
}

var tokenPatterns = []tokenPattern{
	// AWS access key ids: AKIA (long-term), ASIA (temporary, STS).
	{hints: []string{"AKIA", "ASIA"}, re: regexp.MustCompile(`(?:AKIA|ASIA)[A-Z0-9]{16}`), rule: RuleAWSAccessKey},
	// GitHub: personal, OAuth, user-to-server, server-to-server, refresh;
	// and fine-grained personal access tokens.
	{hints: []string{"gh"}, re: regexp.MustCompile(`(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}`), rule: RuleGitHubToken},
	{hints: []string{"github_pat_"}, re: regexp.MustCompile(`github_pat_[A-Za-z0-9_]{22,}`), rule: RuleGitHubToken},
	{hints: []string{"glpat-"}, re: regexp.MustCompile(`glpat-[A-Za-z0-9_-]{20,}`), rule: RuleGitLabToken},
	// Slack bot, user, app-level, refresh and config tokens.
	{hints: []string{"xox"}, re: regexp.MustCompile(`xox[abeoprs]-[A-Za-z0-9-]{10,}`), rule: RuleSlackToken},
	{hints: []string{"_live_", "_test_"}, re: regexp.MustCompile(`(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}`), rule: RuleStripeKey},
	{hints: []string{"AIza"}, re: regexp.MustCompile(`AIza[0-9A-Za-z_-]{35}`), rule: RuleGoogleAPIKey},
	{hints: []string{"npm_"}, re: regexp.MustCompile(`npm_[A-Za-z0-9]{36}`), rule: RuleNPMToken},
	// HashiCorp Vault service, batch and recovery tokens (1.10+ format).
	{hints: []string{"hvs.", "hvb.", "hvr."}, re: regexp.MustCompile(`hv[sbr]\.[A-Za-z0-9_-]{24,}`), rule: RuleVaultToken},
	// OpenAI/Anthropic-style keys. "sk-" also starts host and pod names,
	// so a key must mix upper case, lower case and digits.
	{hints: []string{"sk-"}, re: regexp.MustCompile(`sk-[A-Za-z0-9_-]{20,}`), rule: RuleSKAPIKey, check: func(m string) bool { return mixedCase(m[3:]) }},
	// JWT: base64url of {"… header, a payload, and a signature (possibly
	// empty, alg "none"); JWE has five parts.
	{hints: []string{"eyJ"}, re: regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}`), rule: RuleJWT},
	// Webhook URLs whose path is the credential.
	{hints: []string{"hooks.slack.com/"}, re: regexp.MustCompile(`hooks\.slack\.com/(?:services|workflows)/([A-Za-z0-9/_-]+)`), rule: RuleWebhookSecret, group: 1},
	{hints: []string{"/api/webhooks/"}, re: regexp.MustCompile(`discord(?:app)?\.com/api/webhooks/([0-9]+/[A-Za-z0-9_-]+)`), rule: RuleWebhookSecret, group: 1},
}

// scanPatterns redacts known credential formats anywhere in text.
func scanPatterns(d *doc, f, base int, text string) {
	for _, p := range tokenPatterns {
		if !containsAny(text, p.hints) {
			continue
		}
		for _, m := range p.re.FindAllStringSubmatchIndex(text, -1) {
			s, e := m[0], m[1]
			if (s > 0 && isAlnum(text[s-1])) || (e < len(text) && isAlnum(text[e])) {
				continue
			}
			if p.check != nil && !p.check(text[s:e]) {
				continue
			}
			if p.group > 0 {
				s, e = m[2*p.group], m[2*p.group+1]
			}
			d.add(f, base+s, base+e, p.rule)
			if p.rule == RuleAWSAccessKey {
				d.akia[f] = true
			}
		}
	}
}

func containsAny(text string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(text, sub) {
			return true
		}
	}
	return false
}

// mixedCase reports whether s has upper case, lower case and digits.
func mixedCase(s string) bool {
	var up, low, dig bool
	for i := 0; i < len(s); i++ {
		up = up || isUpper(s[i])
		low = low || isLower(s[i])
		dig = dig || isDigit(s[i])
	}
	return up && low && dig
}

// scanAWSSecrets redacts AWS secret access keys: 40 bytes of base64
// alphabet without padding. Alone such a string could be anything, so it
// counts only within near fields of a field holding an access key id
// (near 0: the same field; argv uses 2, for "AKIA… SECRET" pairs and
// aws configure style arguments). A 40-digit hex SHA-1 has no upper case
// and is never taken for a key.
func scanAWSSecrets(d *doc, near int) {
	for f, ok := range d.akia {
		if !ok {
			continue
		}
		for g := max(0, f-near); g <= min(len(d.fields)-1, f+near); g++ {
			t := d.fields[g]
			for i := 0; i < len(t); {
				j := i
				for j < len(t) && (isAlnum(t[j]) || t[j] == '/' || t[j] == '+') {
					j++
				}
				if j == i {
					i++
					continue
				}
				if j-i == 40 && (j == len(t) || t[j] != '=') && mixedCase(t[i:j]) {
					d.add(g, i, j, RuleAWSSecretKey)
				}
				i = j
			}
		}
	}
}
