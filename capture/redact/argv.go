package redact

import (
	"path"
	"strings"
)

// scanCmdline finds the secrets of an argv: flag rules across arguments
// first, then the text rules inside each argument.
func scanCmdline(d *doc) {
	toks := make([]tok, len(d.fields))
	for f, t := range d.fields {
		toks[f] = tok{f: f, s: 0, e: len(t)}
	}
	scanArgv(d, toks, true)
	for f, t := range d.fields {
		// The script of sh -c / bash -lc is shell text, not one value:
		// there whitespace ends a password=… value.
		whole := f == 0 || !isDashC(d.fields[f-1])
		scanText(d, f, 0, t, whole)
	}
	scanAWSSecrets(d, 2)
}

// scanEnviron finds the secrets of an environment block.
func scanEnviron(d *doc) {
	for f, t := range d.fields {
		key, val, ok := strings.Cut(t, "=")
		if !ok || key == "" {
			scanText(d, f, 0, t, false)
			continue
		}
		if !envExceptions[key] && isSecretName(key) {
			if !exempt(val) {
				d.add(f, len(key)+1, len(t), RuleSecretEnv)
			}
			continue
		}
		scanText(d, f, len(key)+1, val, false)
	}
	scanAWSSecrets(d, 0)
}

// isDashC reports whether a is a shell's -c option, possibly in a cluster
// such as -lc or -ec.
func isDashC(a string) bool {
	if len(a) < 2 || a[0] != '-' || a[len(a)-1] != 'c' {
		return false
	}
	for i := 1; i < len(a); i++ {
		if !isAlpha(a[i]) {
			return false
		}
	}
	return true
}

// tok is one argument: bytes [s, e) of field f. Top-level arguments are
// whole fields; arguments split out of shell text are parts of one field.
type tok struct{ f, s, e int }

func (d *doc) text(t tok) string { return d.fields[t.f][t.s:t.e] }

// scanArgv applies the flag rules to a list of arguments. top says the
// arguments are real argv elements, so a --flag=value runs to the end of
// the element (see valueEnd).
func scanArgv(d *doc, toks []tok, top bool) {
	var prog string // a program from the programs table seen in this list
	var seen progState
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		a := d.text(t)
		if isShellSep(a) {
			prog = ""
			continue
		}
		if isProgram(a) {
			prog, seen = path.Base(a), progState{}
			continue
		}
		if prog != "" {
			if n, ok := scanProgramArg(d, toks, i, prog, &seen); ok {
				i += n
				continue
			}
			seen.push(a)
		}
		name, eq, ok := parseFlag(a)
		if !ok {
			continue
		}
		if !isSecretName(name) {
			continue
		}
		if eq >= 0 {
			end := len(a)
			if top {
				end = valueEnd(a, eq+1, true)
			}
			if v := a[eq+1 : end]; !exempt(v) {
				d.add(t.f, t.s+eq+1, t.s+end, RuleSecretFlag)
			}
			continue
		}
		// --password VALUE: the next argument is the value, unless it is
		// another long option, "--", "-" or a shell operator.
		if i+1 < len(toks) {
			nt := toks[i+1]
			if v := d.text(nt); takesValue(v) {
				if !exempt(v) {
					d.add(nt.f, nt.s, nt.e, RuleSecretFlag)
				}
				i++
			}
		}
	}
}

// isProgram reports whether argument a names a program of the programs
// table, by itself or as a path.
func isProgram(a string) bool {
	if a == "" || a[0] == '-' || strings.IndexByte(a, '=') >= 0 {
		return false
	}
	base := path.Base(a)
	return programs[base] != nil || oracleTools[base]
}

// takesValue reports whether argument v can be the value of the flag
// before it. A single-dash argument can: "-x7!" is a fine password.
func takesValue(v string) bool {
	return v != "" && v != "-" && !strings.HasPrefix(v, "--") && !isShellSep(v)
}

// parseFlag splits an option into its name and the index of '='
// (-1 without one). It accepts --name[=v], single-dash long options as Go
// programs use them (-password=v, lowercase only, so mysql's -pSecret is
// not read as a flag named "pSecret"), and Java system properties
// -Dname=v. Short options (-p) and bare -Dname are not flags here.
func parseFlag(a string) (name string, eq int, ok bool) {
	if len(a) < 3 || a[0] != '-' {
		return "", -1, false
	}
	k := 1
	if a[1] == '-' {
		k = 2
	}
	if k >= len(a) || !isAlpha(a[k]) {
		return "", -1, false
	}
	eq = strings.IndexByte(a, '=')
	name = a[k:]
	if eq >= 0 {
		name = a[k:eq]
	}
	if k == 1 {
		switch {
		case name[0] == 'D' && eq > 2:
			name = name[1:]
		case len(name) < 2 || strings.ToLower(name) != name:
			return "", -1, false
		}
	}
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return "", -1, false
		}
	}
	return name, eq, true
}

// isShellSep reports whether a is a shell control operator, after which a
// new command starts.
func isShellSep(a string) bool {
	switch a {
	case ";", "&&", "||", "|", "&", "(", ")", "{", "}", "then", "do", "else":
		return true
	}
	return false
}

// progFlag is a short option that carries a secret for one program only.
// Short options are ambiguous in general (-p is a port for most tools), so
// they count only after the program's own name.
type progFlag struct {
	flags    []string // option spellings, e.g. "-u", "--user"
	attached bool     // the value may follow without a space: -pSECRET
	separate bool     // the value may be the next argument: -a SECRET
	sep      byte     // if set, only what follows the first sep is secret (user:pass)
	login    bool     // only after the subcommand "login" (docker login -p)
	posit    bool     // the first plain argument after "login" is the secret
}

var (
	mysqlPass = []progFlag{{flags: []string{"-p"}, attached: true}}
	pPass     = []progFlag{{flags: []string{"-p"}, attached: true, separate: true}}
	ldapPass  = []progFlag{{flags: []string{"-w"}, attached: true, separate: true}}
	loginPass = []progFlag{{flags: []string{"-p"}, attached: true, separate: true, login: true}}
	smbPass   = []progFlag{{flags: []string{"-U", "--user"}, attached: true, separate: true, sep: '%'}}
	msSQLPass = []progFlag{{flags: []string{"-P"}, attached: true, separate: true}}
)

// programs maps a program's base name to its secret-carrying options.
var programs = map[string][]progFlag{
	// mysql -pSECRET; a separate "-p db" prompts, and db is not secret.
	"mysql": mysqlPass, "mysqldump": mysqlPass, "mysqladmin": mysqlPass,
	"mysqlimport": mysqlPass, "mysqlcheck": mysqlPass, "mysqlshow": mysqlPass,
	"mysqlslap": mysqlPass, "mysqlpump": mysqlPass, "mysqlbinlog": mysqlPass,
	"mariadb": mysqlPass, "mariadb-dump": mysqlPass, "mariadb-admin": mysqlPass,
	"mariadb-import": mysqlPass, "mariadb-check": mysqlPass,

	"redis-cli": {{flags: []string{"-a"}, attached: true, separate: true}},
	"sshpass":   pPass,
	"mongo":     pPass, "mongosh": pPass, "mongodump": pPass,
	"mongorestore": pPass, "mongoexport": pPass, "mongoimport": pPass,
	"mongostat": pPass, "mongotop": pPass, "mongofiles": pPass,

	"ldapsearch": ldapPass, "ldapadd": ldapPass, "ldapmodify": ldapPass,
	"ldapdelete": ldapPass, "ldapmodrdn": ldapPass, "ldapcompare": ldapPass,
	"ldapwhoami": ldapPass, "ldapexop": ldapPass,
	"ldappasswd": {ldapPass[0], {flags: []string{"-s"}, attached: true, separate: true}},

	"sqlcmd": msSQLPass, "bcp": msSQLPass,

	// curl -u user:pass keeps the user; -b/--cookie sends cookies.
	"curl": {
		{flags: []string{"-u", "--user", "-U", "--proxy-user"}, attached: true, separate: true, sep: ':'},
		{flags: []string{"-b", "--cookie"}, attached: true, separate: true},
	},
	"smbclient": smbPass, "rpcclient": smbPass,
	"openssl": {{flags: []string{"-k"}, separate: true}},

	// docker run -p is a port; only docker login -p is a password.
	"docker": loginPass, "podman": loginPass, "nerdctl": loginPass,
	"vault": {{login: true, posit: true}},
	"aws":   {}, // aws configure set NAME VALUE, see scanProgramArg
}

// oracleTools take user/password@db as their first plain argument.
var oracleTools = set("sqlplus", "sqlldr", "expdp", "impdp", "exp", "imp", "rman", "dgmgrl")

// progState is what scanProgramArg needs to know about the arguments
// since the program name: the last two, and whether "login" came.
type progState struct {
	prev  [2]string // prev[1] is the argument just before
	login bool
}

func (p *progState) push(a string) {
	p.prev[0], p.prev[1] = p.prev[1], a
	p.login = p.login || a == "login"
}

// scanProgramArg applies the rules of prog to toks[i]. It reports how many
// following arguments it consumed and whether toks[i] was one of prog's
// options.
func scanProgramArg(d *doc, toks []tok, i int, prog string, seen *progState) (int, bool) {
	t := toks[i]
	a := d.text(t)
	if oracleTools[prog] {
		if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "@") {
			return 0, false
		}
		v, off := a, 0
		if k := strings.IndexByte(a, '='); k >= 0 && strings.EqualFold(a[:k], "userid") {
			v, off = a[k+1:], k+1
		}
		// user/password@db: the password runs to the last '@'.
		slash := strings.IndexByte(v, '/')
		if slash <= 0 || strings.ContainsAny(v[:slash], ":=") {
			return 0, false
		}
		end := len(v)
		if at := strings.LastIndexByte(v, '@'); at > slash {
			end = at
		}
		if !exempt(v[slash+1 : end]) {
			d.add(t.f, t.s+off+slash+1, t.s+off+end, RuleSecretFlag)
		}
		return 0, true
	}
	if prog == "aws" && seen.prev == [2]string{"configure", "set"} {
		// aws configure set aws_secret_access_key VALUE
		if isSecretName(a) && i+1 < len(toks) {
			nt := toks[i+1]
			if v := d.text(nt); !exempt(v) {
				d.add(nt.f, nt.s, nt.e, RuleSecretFlag)
			}
			return 1, true
		}
		return 0, false
	}
	for _, pf := range programs[prog] {
		if pf.login && !seen.login {
			continue
		}
		if pf.posit {
			if seen.prev[1] == "login" && !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && !exempt(a) {
				d.add(t.f, t.s, t.e, RuleSecretFlag)
				return 0, true
			}
			continue
		}
		for _, fl := range pf.flags {
			var vs, ve int // value bounds within a
			n := 0
			switch {
			case a == fl && pf.separate && i+1 < len(toks) && takesValue(d.text(toks[i+1])):
				t, n = toks[i+1], 1
				vs, ve = 0, t.e-t.s
			case len(fl) == 2 && pf.attached && len(a) > 2 && strings.HasPrefix(a, fl):
				vs, ve = 2, len(a)
			case len(fl) > 2 && strings.HasPrefix(a, fl+"="):
				vs, ve = len(fl)+1, len(a)
			default:
				continue
			}
			v := d.fields[t.f][t.s+vs : t.s+ve]
			if pf.sep != 0 {
				k := strings.IndexByte(v, pf.sep)
				if k < 0 {
					return n, true // curl -u user: no password given
				}
				vs += k + 1
				v = v[k+1:]
			}
			if !exempt(v) {
				d.add(t.f, t.s+vs, t.s+ve, RuleSecretFlag)
			}
			return n, true
		}
	}
	return 0, false
}

// shellFields splits text at unquoted ASCII whitespace the way a shell
// would split a command line, keeping the quotes inside the tokens. An
// unclosed quote runs to the end of the text.
func shellFields(text string) [][2]int {
	var out [][2]int
	i, n := 0, len(text)
	for {
		for i < n && isSpace(text[i]) {
			i++
		}
		if i >= n {
			return out
		}
		start := i
		for i < n && !isSpace(text[i]) {
			switch c := text[i]; c {
			case '\'', '"':
				i = closeQuote(text, i)
			case '\\':
				i = min(i+2, n)
			default:
				i++
			}
		}
		out = append(out, [2]int{start, i})
	}
}

// closeQuote returns the index just past the quote that closes the one at
// text[i], honouring backslash escapes inside double quotes, or len(text).
func closeQuote(text string, i int) int {
	q := text[i]
	for k := i + 1; k < len(text); k++ {
		switch text[k] {
		case '\\':
			if q != '\'' {
				k++
			}
		case q:
			return k + 1
		}
	}
	return len(text)
}

// unquote returns the bounds of a token without one layer of matching
// outer quotes.
func unquote(text string, s, e int) (int, int) {
	if e-s >= 2 && (text[s] == '\'' || text[s] == '"') && text[e-1] == text[s] {
		return s + 1, e - 1
	}
	return s, e
}
