package redact

import "strings"

// Secret-looking names. A name (flag, key of key=value, environment
// variable, header, JSON key) is split into lowercase words at - _ . : and
// camelCase boundaries ("keyStorePassword" → key store password), then the
// word lists below decide. See doc.go for the reasoning.
var (
	// secretSuffixes match a word that ends with them, so compounds written
	// as one word count too: "pgpassword", "authtoken", "clientsecret".
	// "tokens" is deliberately absent: --max-tokens counts words.
	secretSuffixes = []string{
		"password", "passwords", "passwd", "passphrase", "passcode",
		"secret", "secrets", "token", "credential", "credentials",
		"pwd", "cookie", "cookies", "signature", "authorization",
		"auth", "sessionid", "sessid",
	}

	// secretWords match whole words only.
	secretWords = set(
		"creds", "cred", "bearer", "jwt", "psk",
		// openssl -passin/-passout, keytool -storepass/-keypass.
		"passin", "passout", "storepass", "keypass",
		"srcstorepass", "deststorepass", "srckeypass", "destkeypass",
	)

	// lastOnlyWords are secret only as the head (last) word: "--pass",
	// "DB_PW", "--session", "sig" (Azure SAS), but not --pass-through or
	// XDG_SESSION_TYPE.
	lastOnlyWords = set("pass", "pw", "session", "sig")

	// keyQualifiers turn a following "key" into a secret: api-key, apiKey,
	// ACCESS_KEY, privatekey. A bare "key" is not secret (curl --key takes a
	// file, --sort-key and routing keys are data), and neither are
	// client/ssl/tls keys, which are by convention paths to PEM files.
	keyQualifiers = set(
		"api", "access", "secret", "private", "priv", "signing", "sign",
		"encryption", "encrypt", "decryption", "master", "app",
		"application", "account", "license", "licence", "subscription",
		"shared", "hmac", "auth", "session", "storage", "consumer",
		"webhook", "cipher", "crypt", "crypto", "aes", "deploy", "admin",
		"recovery", "unlock", "wallet",
	)

	// refHeads end names that refer to a secret or describe it without
	// being it: --password-file, --token-ttl, --auth-mode, secretKeyRef,
	// SSH_AUTH_SOCK, CREDENTIALS_DIRECTORY. Their values stay visible (and
	// are still scanned for URL credentials and known token formats).
	refHeads = set(
		"file", "files", "path", "paths", "dir", "dirs", "directory",
		"folder", "location", "url", "uri", "urls", "endpoint", "host",
		"hostname", "port", "addr", "address", "server", "domain", "realm",
		"issuer", "audience", "scope", "scopes", "provider", "providers",
		"backend", "type", "kind", "mode", "method", "methods", "scheme",
		"algorithm", "algo", "alg", "format", "encoding", "length", "len",
		"size", "bits", "count", "limit", "max", "min", "ttl", "timeout",
		"expiry", "expiration", "expires", "lifetime", "duration",
		"interval", "refresh", "rotation", "period", "header", "field",
		"param", "name", "names", "env", "var", "stdin", "fd", "cmd",
		"command", "prompt", "helper", "manager", "required", "enabled",
		"enable", "disabled", "disable", "policy", "version", "level",
		"strength", "pattern", "regex", "label", "labels", "namespace",
		"mount", "volume", "jar", "store", "sock", "socket", "user",
		"username", "login", "source", "plugin", "cache", "check",
		"verify", "reset", "bucket", "table", "column", "ref", "arn",
		"config", "conf", "cfg", "kubeconfig", "secure", "samesite", "httponly",
	)

	// negations start boolean switches: --no-auth, --disable-password.
	negations = set("no", "skip", "disable", "enable", "without", "allow", "require")

	// envExceptions are environment variables whose names look secret but
	// whose values never are: the shell's working directories, the logind
	// session number, and a variable defined to hold a file path.
	envExceptions = set("PWD", "OLDPWD", "XDG_SESSION_ID", "GOOGLE_APPLICATION_CREDENTIALS")

	// notSecretValues are values that cannot be a meaningful secret; they
	// show up as --anonymous-auth=false or --cookie-secure=true.
	notSecretValues = set("true", "false", "yes", "no", "none", "null")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// isSecretName reports whether a flag, key or variable name looks like it
// names a secret.
func isSecretName(name string) bool {
	words := splitWords(name)
	n := len(words)
	if n == 0 {
		return false
	}
	if n > 1 && (negations[words[0]] || refHeads[words[n-1]]) {
		return false
	}
	for i, w := range words {
		if secretWords[w] || (i == n-1 && lastOnlyWords[w]) {
			return true
		}
		for _, s := range secretSuffixes {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
		if w == "session" && i+1 < n && words[i+1] == "id" {
			return true
		}
		if isQualifiedKey(words, i) {
			return true
		}
	}
	return false
}

// isQualifiedKey reports whether words[i] is a key made secret by its
// qualifier: "api","key" or a single word such as "apikey".
func isQualifiedKey(words []string, i int) bool {
	w := strings.TrimSuffix(words[i], "s")
	if w == "key" {
		return i > 0 && keyQualifiers[words[i-1]]
	}
	prefix, ok := strings.CutSuffix(w, "key")
	return ok && keyQualifiers[prefix]
}

// isSecretQueryName is isSecretName for URL query parameters, where a bare
// "key" is almost always an API key (?key=AIza…).
func isSecretQueryName(name string) bool {
	return strings.EqualFold(name, "key") || isSecretName(name)
}

// splitWords splits name into lowercase words at non-alphanumeric bytes
// and camelCase boundaries: "HTTPServerAPIKey" → http server api key.
// Digits stay with the word before them ("oauth2").
func splitWords(name string) []string {
	var words []string
	start := -1
	flush := func(end int) {
		if start >= 0 {
			words = append(words, strings.ToLower(name[start:end]))
			start = -1
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) {
			flush(i)
			continue
		}
		if start >= 0 && isUpper(c) {
			prev := name[i-1]
			if isLower(prev) || isDigit(prev) ||
				(isUpper(prev) && i+1 < len(name) && isLower(name[i+1])) {
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(name))
	return words
}

// exempt reports whether a value found under a secret name is not worth
// redacting: empty, already redacted, or a boolean-like word.
func exempt(v string) bool {
	if v == "" || v == Placeholder {
		return true
	}
	return len(v) <= 5 && notSecretValues[strings.ToLower(v)]
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return isLower(c) || isUpper(c) }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

// isNameChar reports whether c can be part of a key name in key=value.
func isNameChar(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '-' }

// isSpace is ASCII whitespace; /proc files carry bytes, not runes.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
