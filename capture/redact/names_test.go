package redact

import (
	"reflect"
	"testing"
)

func TestIsSecretName(t *testing.T) {
	secret := []string{
		"password", "PASSWORD", "db-password", "DB_PASSWORD", "dbPassword", "pgpassword",
		"passwd", "pwd", "db_pwd", "pass", "DB_PASS", "pw", "passphrase",
		"secret", "client-secret", "clientSecret", "SECRET_KEY_BASE", "secret-id",
		"token", "auth-token", "authtoken", "GITHUB_TOKEN", "refresh_token", "hf-token",
		"api_key", "apikey", "ApiKey", "APIKey", "x-api-key", "access-key", "secret-access-key",
		"aws_access_key_id", "private-key", "privateKey", "encryption-key", "license_key",
		"credential", "credentials", "creds", "auth", "basic-auth", "authorization",
		"session", "session-id", "JSESSIONID", "cookie", "signature", "X-Amz-Signature",
		"sig", "bearer", "oauth2-bearer", "javax.net.ssl.keyStorePassword", "storepass", "passin",
		"password-hash", "jwt",
	}
	plain := []string{
		"", "port", "keepalive", "keyboard", "monkey", "key", "sort-key", "partition-key",
		"key-file", "keyfile", "ssl-key", "tls-key", "client-key", "kubelet-client-key",
		"password-file", "passwordfile", "token-file", "token-ttl", "auth-mode",
		"authorization-mode", "secret-name", "secretKeyRef", "passwordSecretRef",
		"max-tokens", "tokens", "tokenizer", "tokenizer-mode", "author", "authority", "XAUTHORITY",
		"private", "private-ip", "SSH_AUTH_SOCK", "XDG_SESSION_TYPE", "SESSION_MANAGER",
		"session-timeout", "GIT_ASKPASS", "pass-through", "bypass", "compass",
		"no-password", "disable-auth", "password-stdin", "CREDENTIALS_DIRECTORY",
		"auth-url", "cookie-jar", "config", "log-level", "keystore", "javax.net.ssl.keyStore",
		"signature-algorithm", "secrets-dir", "auth-user",
	}
	for _, n := range secret {
		if !isSecretName(n) {
			t.Errorf("isSecretName(%q) = false, want true", n)
		}
	}
	for _, n := range plain {
		if isSecretName(n) {
			t.Errorf("isSecretName(%q) = true, want false", n)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"keyStorePassword":      {"key", "store", "password"},
		"HTTPServerAPIKey":      {"http", "server", "api", "key"},
		"--db_password.v2":      {"db", "password", "v2"},
		"oauth2Token":           {"oauth2", "token"},
		"AWS_SECRET_ACCESS_KEY": {"aws", "secret", "access", "key"},
		"x-amz-security-token":  {"x", "amz", "security", "token"},
		"":                      nil,
		"--":                    nil,
	} {
		if got := splitWords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, want %q", in, got, want)
		}
	}
}
