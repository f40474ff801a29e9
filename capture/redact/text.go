package redact

import (
	"encoding/base64"
	"strings"
)

// scanText applies the rules that work inside one piece of text: an
// argument, or the value of an environment variable, found at
// fields[f][base:]. whole says the text is one argv element, so a value
// that starts the text may contain spaces (PASSWORD=correct horse).
func scanText(d *doc, f, base int, text string, whole bool) {
	if pemPrivateKey.MatchString(text) {
		d.add(f, base, base+len(text), RulePrivateKey)
		return
	}
	if strings.ContainsAny(text, " \t\n\r\v\f") {
		// Shell text (sh -c scripts, JAVA_OPTS, rewritten argv): apply the
		// flag rules to its words, and the header rule to each word and to
		// the value of each --flag=word (curl -H 'X-Api-Key: …',
		// --header='…').
		fields := shellFields(text)
		toks := make([]tok, len(fields))
		for i, fl := range fields {
			toks[i] = tok{f: f, s: base + fl[0], e: base + fl[1]}
			s, e := unquote(text, fl[0], fl[1])
			scanHeader(d, f, base+s, text[s:e])
			if k := strings.IndexByte(text[s:e], '='); k > 0 {
				vs, ve := unquote(text, s+k+1, e)
				scanHeader(d, f, base+vs, text[vs:ve])
			}
		}
		scanArgv(d, toks, false)
	}
	// "Name: value" at the start of each line: curl -H arguments, and YAML
	// or INI text in a variable.
	for off := 0; off < len(text); {
		end := strings.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text) - off
		}
		scanHeader(d, f, base+off, text[off:off+end])
		off += end + 1
	}
	scanAuthSchemes(d, f, base, text)
	scanPairs(d, f, base, text, whole)
	scanJSONPairs(d, f, base, text)
	scanURLs(d, f, base, text)
	scanGoDSN(d, f, base, text)
	scanPatterns(d, f, base, text)
}

// valueEnd returns where the value starting at text[vs] ends. A quoted
// value ('…', "…", `…`, ODBC {…}) runs to its closing quote. Otherwise
// the value ends before ; & , when another key= follows (ADO strings,
// query strings), and at whitespace: always in shell text, and in a whole
// argument only when another key= follows ("host=db password=x dbname=y"
// but "PASSWORD=correct horse battery").
func valueEnd(text string, vs int, whole bool) int {
	if vs >= len(text) {
		return vs
	}
	switch text[vs] {
	case '\'', '"', '`':
		return closeQuote(text, vs)
	case '{':
		if k := strings.IndexByte(text[vs:], '}'); k >= 0 {
			return vs + k + 1
		}
		return len(text)
	}
	for k := vs; k < len(text); k++ {
		switch c := text[k]; {
		case isSpace(c):
			if !whole || startsPair(text, k+1) {
				return k
			}
		case c == ';' || c == '&' || c == ',':
			if startsPair(text, k+1) {
				return k
			}
		case !whole && (c == '\'' || c == '"'):
			// A closing shell quote: psql 'host=db password=x'.
			if k+1 == len(text) || isSpace(text[k+1]) {
				return k
			}
		}
	}
	return len(text)
}

// startsPair reports whether text[i:] starts (after blanks) with a key=
// or --flag=, as in "; User ID=app" or " --port=5432". It looks at most
// 64 bytes ahead.
func startsPair(text string, i int) bool {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	for n := 0; n < 2 && i < len(text) && text[i] == '-'; n++ {
		i++
	}
	if i >= len(text) || !(isAlpha(text[i]) || text[i] == '_') {
		return false
	}
	for end := min(len(text), i+64); i < end; i++ {
		switch c := text[i]; {
		case c == '=':
			return true
		case !isNameChar(c) && c != ' ':
			return false
		}
	}
	return false
}

// scanPairs finds key=value pairs anywhere in text whose key looks secret:
// password=x, DB_PASSWORD=x, --set db.password=x, ;Password=x; and
// ?token=x&. A pair that starts a whole argument may have spaces in its
// value (see valueEnd).
func scanPairs(d *doc, f, base int, text string, whole bool) {
	for i := 0; i < len(text); i++ {
		if text[i] != '=' {
			continue
		}
		j := i
		for j > 0 && isNameChar(text[j-1]) {
			j--
		}
		name := strings.TrimLeft(text[j:i], "-")
		if strings.HasPrefix(text[j:i], "-D") {
			name = text[j+2 : i] // Java system property
		}
		inQuery := j > 0 && (text[j-1] == '?' || text[j-1] == '&')
		if name == "" || !(isSecretName(name) || inQuery && isSecretQueryName(name)) {
			if j == 0 {
				// git -c http.extraHeader=X-Api-Key: …
				scanHeader(d, f, base+i+1, text[i+1:])
			}
			continue
		}
		ve := valueEnd(text, i+1, whole && j == 0)
		if !exempt(text[i+1 : ve]) {
			d.add(f, base+i+1, base+ve, RuleKeyValue)
		}
		// A pair inside this value is part of the secret already; going on
		// after it keeps the scan linear.
		i = max(i, ve-1)
	}
}

// scanJSONPairs finds "name": "value" (or 'name': 'value', or the
// backslash-escaped \"name\":\"value\" of JSON inside shell text) whose
// name looks secret, and redacts the string value between its quotes.
// Non-string values are left alone.
func scanJSONPairs(d *doc, f, base int, text string) {
	for i := 0; i < len(text); i++ {
		if text[i] != ':' {
			continue
		}
		// Left side: a quoted name ending just before the colon.
		l := i - 1
		for l >= 0 && (text[l] == ' ' || text[l] == '\t') {
			l--
		}
		if l < 1 || (text[l] != '"' && text[l] != '\'') {
			continue
		}
		q := text[l]
		escaped := text[l-1] == '\\'
		ne := l
		if escaped {
			ne--
		}
		ns := ne
		for ns > 0 && (isNameChar(text[ns-1]) || text[ns-1] == ' ') {
			ns--
		}
		if ns == 0 || text[ns-1] != q || !isSecretName(text[ns:ne]) {
			continue
		}
		// Right side: a string value in the same quoting.
		r := i + 1
		for r < len(text) && (text[r] == ' ' || text[r] == '\t') {
			r++
		}
		if escaped {
			if !strings.HasPrefix(text[r:], `\`+string(q)) {
				continue
			}
			r++
		}
		if r >= len(text) || text[r] != q {
			continue
		}
		vs, ve := r+1, len(text)
		if escaped {
			if k := strings.Index(text[vs:], `\`+string(q)); k >= 0 {
				ve = vs + k
			}
		} else if k := closeQuote(text, r); k > r+1 && text[k-1] == q {
			ve = k - 1
		}
		if !exempt(text[vs:ve]) {
			d.add(f, base+vs, base+ve, RuleKeyValue)
		}
		i = max(i, ve-1)
	}
}

// scanHeader finds a header-style "Name: value" at the start of text whose
// name looks secret, as passed to curl -H or wget --header. For
// Authorization headers the scheme word stays: "Authorization: token x"
// becomes "Authorization: token <redacted>".
func scanHeader(d *doc, f, base int, text string) {
	i := 0
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	j := i
	for j < len(text) && (isAlnum(text[j]) || text[j] == '-' || text[j] == '_') {
		j++
	}
	if j == i || j >= len(text) || text[j] != ':' || !isSecretName(text[i:j]) {
		return
	}
	v := j + 1
	for v < len(text) && (text[v] == ' ' || text[v] == '\t') {
		v++
	}
	rule := RuleSecretHeader
	if strings.Contains(strings.ToLower(text[i:j]), "authorization") {
		k := v
		for k < len(text) && isAlpha(text[k]) {
			k++
		}
		if k > v && k < len(text) && text[k] == ' ' {
			switch strings.ToLower(text[v:k]) {
			case "bearer":
				rule = RuleBearer
			case "basic":
				rule = RuleBasic
			}
			for v = k; v < len(text) && text[v] == ' '; v++ {
			}
		}
	}
	ve := len(text)
	for ve > v && isSpace(text[ve-1]) {
		ve--
	}
	if !exempt(text[v:ve]) {
		d.add(f, base+v, base+ve, rule)
	}
}

// scanAuthSchemes finds HTTP credentials after the scheme words Bearer
// and Basic, wherever they appear. After "Basic" only base64 that decodes
// to user:password counts, so prose such as "Basic authentication" stays.
func scanAuthSchemes(d *doc, f, base int, text string) {
	for _, scheme := range [...]string{"bearer", "basic"} {
		for i := 0; i+len(scheme) < len(text); i++ {
			if text[i]|0x20 != 'b' || !strings.EqualFold(text[i:i+len(scheme)], scheme) || (i > 0 && isAlnum(text[i-1])) {
				continue
			}
			vs := i + len(scheme)
			if !isSpace(text[vs]) {
				continue
			}
			for vs < len(text) && (text[vs] == ' ' || text[vs] == '\t') {
				vs++
			}
			ve := vs
			if scheme == "bearer" {
				for ve < len(text) && !isSpace(text[ve]) && !strings.ContainsRune("'\"`<>;,\\", rune(text[ve])) {
					ve++
				}
				d.add(f, base+vs, base+ve, RuleBearer)
				continue
			}
			for ve < len(text) && (isAlnum(text[ve]) || text[ve] == '+' || text[ve] == '/' || text[ve] == '=') {
				ve++
			}
			if isBasicCredential(text[vs:ve]) {
				d.add(f, base+vs, base+ve, RuleBasic)
			}
		}
	}
}

// isBasicCredential reports whether s is base64 of "user:password".
func isBasicCredential(s string) bool {
	if len(s) < 4 {
		return false
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return strings.IndexByte(string(b), ':') > 0
}

// scanURLs finds credentials in URLs: scheme://user:password@host keeps
// the user and host and redacts the password. Userinfo without a colon is
// a user name (git@, app@) and stays, unless it looks like a token
// (https://ghp_…@github.com, Sentry DSNs), then all of it is redacted.
func scanURLs(d *doc, f, base int, text string) {
	// The ends found for one "://" serve the next one in the same word
	// too, which keeps a crafted "a://a://a://…" linear.
	end, at1, stop, at := -1, -1, -1, -1
	for off := 0; ; {
		p := strings.Index(text[off:], "://")
		if p < 0 {
			return
		}
		p += off
		off = p + 3
		k := p
		for k > 0 && (isAlnum(text[k-1]) || text[k-1] == '+' || text[k-1] == '.' || text[k-1] == '-') {
			k--
		}
		if k == p || !isAlpha(text[k]) {
			continue // no scheme
		}
		a := p + 3
		if end < a {
			for end = a; end < len(text) && !isSpace(text[end]); end++ {
			}
		}
		if at1 < a {
			if at1 = strings.IndexByte(text[a:end], '@'); at1 >= 0 {
				at1 += a
			} else {
				at1 = end // none in this word
			}
		}
		if at1 == end {
			continue
		}
		// Passwords hold unescaped '@' and '/' more often than paths hold
		// '@', so the userinfo ends at the last '@' before any query or
		// fragment: u:p@ss/w@host keeps nothing of "p@ss/w". A path '@'
		// (npm's /@scope) then hides the host too, which is the safe error.
		if stop <= at1 { // else the stop found before is still the first after at1
			if stop = strings.IndexAny(text[at1+1:end], "?#"); stop >= 0 {
				stop += at1 + 1
			} else {
				stop = end
			}
			at = strings.LastIndexByte(text[:stop], '@')
		}
		userinfo := text[a:at]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		if strings.ContainsAny(user, "/?#@\"'`,;<>{}[]\\") {
			continue
		}
		switch {
		case hasPass && pass != "":
			d.add(f, base+a+len(user)+1, base+at, RuleURL)
		case !hasPass && looksLikeToken(user):
			d.add(f, base+a, base+at, RuleURL)
		}
	}
}

// looksLikeToken reports whether s, found where a user name could be, is
// more likely a token: at least 20 bytes of token characters with letters
// and digits and no dot (dots make host and e-mail-like names).
func looksLikeToken(s string) bool {
	if len(s) < 20 {
		return false
	}
	var letter, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			letter = true
		case isDigit(c):
			digit = true
		case c == '_' || c == '-' || c == '~' || c == '+' || c == '=' || c == '%':
		default:
			return false
		}
	}
	return letter && digit
}

// scanGoDSN finds the password in Go MySQL driver DSNs, which have no
// scheme: user:password@tcp(host:3306)/db. The password runs from the
// first ':' of the word to the '@' of the protocol.
func scanGoDSN(d *doc, f, base int, text string) {
	if !strings.Contains(text, "@tcp") && !strings.Contains(text, "@u") {
		return
	}
	for ws := 0; ws < len(text); {
		we := ws
		for we < len(text) && !isSpace(text[we]) && text[we] != '"' && text[we] != '\'' {
			we++
		}
		word := text[ws:we]
		colon := strings.IndexByte(word, ':')
		if colon >= 0 && !strings.Contains(word[:colon], "/") {
			for off := colon; ; {
				at := strings.IndexByte(word[off:], '@')
				if at < 0 {
					break
				}
				at += off
				off = at + 1
				for _, proto := range [...]string{"tcp(", "tcp6(", "unix(", "udp("} {
					if strings.HasPrefix(word[at+1:], proto) {
						d.add(f, base+ws+colon+1, base+ws+at, RuleURL)
					}
				}
			}
		}
		ws = we + 1
	}
}
