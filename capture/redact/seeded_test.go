package redact

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// seeded is one command line or environment with secrets planted in it.
type seeded struct {
	environ bool
	fields  []string
	secrets []string
	// want is the expected output; nil means fields with every secret
	// replaced by the placeholder.
	want []string
}

// TestSeededSecrets plants distinct random secrets in varied command lines
// and environments and checks that none of them survives anywhere in the
// output, while every other argument comes back byte for byte.
func TestSeededSecrets(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240611, 7))
	used := map[string]bool{}
	gen := func(alphabet string, n int) string {
		for {
			b := make([]byte, n)
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			if s := string(b); !used[s] {
				used[s] = true
				return s
			}
		}
	}
	const (
		alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		hex   = "0123456789abcdef"
		b64   = alnum + "/+"
	)
	s := func() string { return gen(alnum, 24) }

	var cases []seeded
	one := func(env bool, secret string, fields ...string) {
		cases = append(cases, seeded{environ: env, fields: fields, secrets: []string{secret}})
	}
	// Flags.
	x := s()
	one(false, x, "/usr/bin/app", "--port=5432", "--password="+x, "--log-level=debug")
	x = s()
	one(false, x, "/usr/bin/app", "--password", x, "--keepalive")
	x = s()
	one(false, x, "app", "--db-password="+x, "--config=/etc/app/secret.yaml")
	x = s()
	one(false, x, "app", "--api_key", x, "serve")
	x = s()
	one(false, x, "app", "--token="+x)
	x = s()
	one(false, x, "app", "--client-secret", x, "--client-id=web")
	x = s()
	one(false, x, "app", "--auth-token="+x, "--auth-mode=token")
	x = s()
	one(false, x, "app", "--private-key", x, "--key-file=/etc/tls.key")
	x = s()
	one(false, x, "app", "--secret-access-key="+x, "--region=eu-west-1")
	x = s()
	one(false, x, "java", "-Xmx1g", "-Djavax.net.ssl.keyStorePassword="+x, "-jar", "app.jar")
	x = s()
	one(false, x, "app", "--passwd", x)
	// Program-specific options.
	x = s()
	one(false, x, "/usr/bin/mysql", "-uroot", "-p"+x, "shop")
	x = s()
	one(false, x, "redis-cli", "-h", "cache", "-a", x, "ping")
	x = s()
	one(false, x, "curl", "-u", "deploy:"+x, "https://example.org/")
	x = s()
	one(false, x, "sqlplus", "-s", "scott/"+x+"@orcl")
	x = s()
	one(false, x, "aws", "configure", "set", "aws_secret_access_key", x)
	// key=value, JSON and headers.
	x = s()
	one(false, x, "env", "password="+x, "./run")
	x = s()
	one(false, x, "psql", "host=db user=app password="+x+" dbname=shop")
	x = s()
	one(false, x, "app", "Server=db;User ID=app;Password="+x+";Database=shop")
	x = s()
	one(false, x, "app", `{"db":{"password":"`+x+`"},"port":5432}`)
	x = s()
	one(false, x, "curl", "-H", "X-Api-Key: "+x, "-H", "Accept: */*")
	// URLs and HTTP authorization.
	x = s()
	one(false, x, "app", "--db=postgres://app:"+x+"@db:5432/shop")
	x = s()
	one(false, x, "curl", "https://api.example/v1?token="+x+"&page=2")
	x = s()
	one(false, x, "curl", "-H", "Authorization: Bearer "+x)
	x = base64.StdEncoding.EncodeToString([]byte("admin:" + s()))
	one(false, x, "curl", "-H", "Authorization: Basic "+x)
	// Known token formats.
	x = "AKIA" + gen(upper, 16)
	y := gen(b64, 39) + "Q"
	cases = append(cases, seeded{fields: []string{"app", "--aws", x, y, "--verbose"}, secrets: []string{x, y}})
	x = "ghp_" + gen(alnum, 36)
	one(false, x, "git", "clone", "https://"+x+"@github.com/org/repo.git")
	x = "xoxb-" + gen(upper, 12) + "-" + s()
	one(false, x, "notify", "--slack", x)
	x = "eyJ" + gen(alnum, 20) + "." + gen(alnum, 30) + "." + gen(alnum, 40)
	one(false, x, "app", "--id="+x)
	body := gen(b64, 64)
	cases = append(cases, seeded{
		fields:  []string{"app", "--tls-key-data", "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----", "--port=1"},
		secrets: []string{body},
		want:    []string{"app", "--tls-key-data", Placeholder, "--port=1"},
	})
	// Shell text.
	x = s()
	one(false, x, "/bin/sh", "-c", "cd /srv && exec ./app --password "+x+" --port 80")
	// Environments.
	x = s()
	one(true, x, "PATH=/usr/bin", "DB_PASSWORD="+x, "HOME=/root")
	x = s()
	one(true, x, "GITHUB_TOKEN="+x, "PWD=/srv")
	x = s()
	one(true, x, "JAVA_OPTS=-Xmx1g -Dspring.datasource.password="+x+" -Dfile.encoding=UTF-8")
	x = s()
	one(true, x, "DATABASE_URL=mysql://app:"+x+"@db:3306/shop", "LANG=C")
	x = gen(hex, 32)
	one(true, x, "SENTRY_DSN=https://"+x+"@o1.ingest.sentry.io/42")

	total := 0
	for _, c := range cases {
		total += len(c.secrets)
		in := []byte(strings.Join(c.fields, "\x00") + "\x00")
		var out []byte
		var hits []Hit
		if c.environ {
			out, hits = Environ(in)
		} else {
			out, hits = Cmdline(in)
		}
		for _, sec := range c.secrets {
			if bytes.Contains(out, []byte(sec)) {
				t.Errorf("secret %q survived in %q", sec, out)
			}
		}
		if len(hits) == 0 {
			t.Errorf("no hits for %q", in)
		}
		want := c.want
		if want == nil {
			want = make([]string, len(c.fields))
			for i, f := range c.fields {
				for _, sec := range c.secrets {
					f = strings.ReplaceAll(f, sec, Placeholder)
				}
				want[i] = f
			}
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(want) {
			t.Errorf("%q: got %d fields, want %d", in, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%q: field %d is %q, want %q", in, i, got[i], want[i])
			}
		}
	}
	if total < 30 {
		t.Fatalf("only %d secrets seeded", total)
	}
}
