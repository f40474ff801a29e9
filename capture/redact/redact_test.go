package redact

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// R is the placeholder, short for the tables.
const R = Placeholder

func h(rule string, n int) Hit { return Hit{Rule: rule, Count: n} }

// cmdlineCases are argv vectors, their redacted form and the hits. Each
// runs through Args and through Cmdline as NUL-terminated bytes.
var cmdlineCases = []struct {
	name string
	in   []string
	want []string
	hits []Hit
}{
	// Flags whose name looks secret.
	{"flag=value", []string{"app", "--password=hunter2", "--port=5432"},
		[]string{"app", "--password=" + R, "--port=5432"}, []Hit{h(RuleSecretFlag, 1)}},
	{"flag value", []string{"app", "--password", "hunter2", "--verbose"},
		[]string{"app", "--password", R, "--verbose"}, []Hit{h(RuleSecretFlag, 1)}},
	{"flag value starting with dash", []string{"app", "--password", "-x7!k", "run"},
		[]string{"app", "--password", R, "run"}, []Hit{h(RuleSecretFlag, 1)}},
	{"flag followed by a long option", []string{"app", "--auth", "--verbose"},
		[]string{"app", "--auth", "--verbose"}, nil},
	{"flag at the end", []string{"app", "--token"}, []string{"app", "--token"}, nil},
	{"separators and case", []string{"app", "--db-password=a1", "--api_key", "k2", "--Auth-Token=t3", "--client-secret=c4", "--passwd=p5"},
		[]string{"app", "--db-password=" + R, "--api_key", R, "--Auth-Token=" + R, "--client-secret=" + R, "--passwd=" + R},
		[]Hit{h(RuleSecretFlag, 5)}},
	{"key words", []string{"app", "--private-key=pk", "--access-key=ak", "--secret-access-key=sk", "--credentials=cr", "--session-id=si", "--cookie=co", "--signature=sg", "--passphrase=pp"},
		[]string{"app", "--private-key=" + R, "--access-key=" + R, "--secret-access-key=" + R, "--credentials=" + R, "--session-id=" + R, "--cookie=" + R, "--signature=" + R, "--passphrase=" + R},
		[]Hit{h(RuleSecretFlag, 8)}},
	{"camelCase and single dash", []string{"app", "--apiKey=k1", "-token=t2", "-password", "p3"},
		[]string{"app", "--apiKey=" + R, "-token=" + R, "-password", R}, []Hit{h(RuleSecretFlag, 3)}},
	{"java system property", []string{"java", "-Djavax.net.ssl.keyStorePassword=changeit1", "-Dfile.encoding=UTF-8", "-jar", "app.jar"},
		[]string{"java", "-Djavax.net.ssl.keyStorePassword=" + R, "-Dfile.encoding=UTF-8", "-jar", "app.jar"}, []Hit{h(RuleSecretFlag, 1)}},
	{"spring property flag", []string{"java", "-jar", "a.jar", "--spring.datasource.password=sp1"},
		[]string{"java", "-jar", "a.jar", "--spring.datasource.password=" + R}, []Hit{h(RuleSecretFlag, 1)}},
	{"flag value with spaces", []string{"app", "--password=correct horse battery"},
		[]string{"app", "--password=" + R}, []Hit{h(RuleSecretFlag, 1)}},
	{"boolean values stay", []string{"kubelet", "--anonymous-auth=false", "--cookie-secure=true", "--auth", "none"},
		[]string{"kubelet", "--anonymous-auth=false", "--cookie-secure=true", "--auth", "none"}, nil},

	// Names that only look secret.
	{"references to secrets stay", []string{"app", "--config=/etc/app/secret.yaml", "--key-file=/etc/k.pem", "--password-file", "/run/p", "--token-ttl=1h", "--auth-mode=rbac", "--secret-name=db"},
		[]string{"app", "--config=/etc/app/secret.yaml", "--key-file=/etc/k.pem", "--password-file", "/run/p", "--token-ttl=1h", "--auth-mode=rbac", "--secret-name=db"}, nil},
	{"ordinary flags stay", []string{"/usr/bin/python3", "--keepalive", "--log-level=debug", "--port", "5432", "--max-tokens", "4096", "--tokenizer", "bert", "--sort-key=id", "--key", "/etc/tls.key"},
		[]string{"/usr/bin/python3", "--keepalive", "--log-level=debug", "--port", "5432", "--max-tokens", "4096", "--tokenizer", "bert", "--sort-key=id", "--key", "/etc/tls.key"}, nil},
	{"negated switch", []string{"app", "--no-password", "run", "--disable-auth", "x"},
		[]string{"app", "--no-password", "run", "--disable-auth", "x"}, nil},
	{"stdin variant", []string{"docker", "login", "--password-stdin", "reg"},
		[]string{"docker", "login", "--password-stdin", "reg"}, nil},
	{"empty values", []string{"app", "--password=", "key=", "password="},
		[]string{"app", "--password=", "key=", "password="}, nil},

	// Program-specific short options.
	{"mysql -p attached", []string{"mysql", "-uroot", "-phunter2", "-P3306", "shop"},
		[]string{"mysql", "-uroot", "-p" + R, "-P3306", "shop"}, []Hit{h(RuleSecretFlag, 1)}},
	{"mysql -p alone prompts", []string{"/usr/bin/mysql", "-u", "root", "-p", "shop"},
		[]string{"/usr/bin/mysql", "-u", "root", "-p", "shop"}, nil},
	{"-p is a port elsewhere", []string{"docker", "run", "-p", "8080:80", "nginx"},
		[]string{"docker", "run", "-p", "8080:80", "nginx"}, nil},
	{"docker login -p", []string{"docker", "login", "-u", "ci", "-p", "dckr1", "reg.example"},
		[]string{"docker", "login", "-u", "ci", "-p", R, "reg.example"}, []Hit{h(RuleSecretFlag, 1)}},
	{"redis-cli -a", []string{"redis-cli", "-h", "cache", "-a", "r3dis"},
		[]string{"redis-cli", "-h", "cache", "-a", R}, []Hit{h(RuleSecretFlag, 1)}},
	{"curl -u keeps user", []string{"curl", "-u", "bob:pw1", "-ualice:pw2", "-u", "carol", "https://x"},
		[]string{"curl", "-u", "bob:" + R, "-ualice:" + R, "-u", "carol", "https://x"}, []Hit{h(RuleSecretFlag, 2)}},
	{"smbclient user%pass", []string{"smbclient", "//srv/share", "-U", "bob%smbpw"},
		[]string{"smbclient", "//srv/share", "-U", "bob%" + R}, []Hit{h(RuleSecretFlag, 1)}},
	{"ldapsearch -w", []string{"ldapsearch", "-x", "-D", "cn=admin", "-w", "ldappw", "-b", "dc=x"},
		[]string{"ldapsearch", "-x", "-D", "cn=admin", "-w", R, "-b", "dc=x"}, []Hit{h(RuleSecretFlag, 1)}},
	{"sqlplus user/pass@db", []string{"sqlplus", "-s", "scott/tiger@orcl", "@run.sql"},
		[]string{"sqlplus", "-s", "scott/" + R + "@orcl", "@run.sql"}, []Hit{h(RuleSecretFlag, 1)}},
	{"aws configure set", []string{"aws", "configure", "set", "aws_secret_access_key", "abc/def"},
		[]string{"aws", "configure", "set", "aws_secret_access_key", R}, []Hit{h(RuleSecretFlag, 1)}},

	// key=value inside arguments.
	{"bare pair", []string{"env", "DB_PASSWORD=x1", "HOME=/root", "app"},
		[]string{"env", "DB_PASSWORD=" + R, "HOME=/root", "app"}, []Hit{h(RuleKeyValue, 1)}},
	{"libpq conninfo", []string{"psql", "host=db user=app password=s3cret dbname=shop"},
		[]string{"psql", "host=db user=app password=" + R + " dbname=shop"}, []Hit{h(RuleKeyValue, 1)}},
	{"libpq quoted value", []string{"psql", "host=db password='s3 cret' dbname=shop"},
		[]string{"psql", "host=db password=" + R + " dbname=shop"}, []Hit{h(RuleKeyValue, 1)}},
	{"ADO connection string", []string{"app", "Server=tcp:db,1433;User ID=app;Password=a;b;Database=shop;"},
		[]string{"app", "Server=tcp:db,1433;User ID=app;Password=" + R + ";Database=shop;"}, []Hit{h(RuleKeyValue, 1)}},
	{"ODBC braces", []string{"app", "Driver={ODBC 18};UID=app;PWD={p;w}"},
		[]string{"app", "Driver={ODBC 18};UID=app;PWD=" + R}, []Hit{h(RuleKeyValue, 1)}},
	{"helm set", []string{"helm", "install", "--set", "auth.rootPassword=rp1,image.tag=1.2"},
		[]string{"helm", "install", "--set", "auth.rootPassword=" + R + ",image.tag=1.2"}, []Hit{h(RuleKeyValue, 1)}},
	{"pair behind a harmless flag", []string{"kubectl", "create", "secret", "generic", "db", "--from-literal=password=k8spw"},
		[]string{"kubectl", "create", "secret", "generic", "db", "--from-literal=password=" + R}, []Hit{h(RuleKeyValue, 1)}},
	{"value with spaces when whole", []string{"env", "PASSWORD=correct horse battery", "app"},
		[]string{"env", "PASSWORD=" + R, "app"}, []Hit{h(RuleKeyValue, 1)}},
	{"JSON", []string{"app", `{"db":{"password":"jp1","user":"a"},"api_key":"jk2","port":5432}`},
		[]string{"app", `{"db":{"password":"` + R + `","user":"a"},"api_key":"` + R + `","port":5432}`}, []Hit{h(RuleKeyValue, 2)}},

	// URLs.
	{"url password", []string{"app", "--db=postgres://app:dbpw1@db.internal:5432/shop?sslmode=require"},
		[]string{"app", "--db=postgres://app:" + R + "@db.internal:5432/shop?sslmode=require"}, []Hit{h(RuleURL, 1)}},
	{"url password with @ and /", []string{"app", "mongodb+srv://u:p@ss/w@cluster0.example/db"},
		[]string{"app", "mongodb+srv://u:" + R + "@cluster0.example/db"}, []Hit{h(RuleURL, 1)}},
	{"redis empty user", []string{"app", "redis://:rpw@cache:6379/0"},
		[]string{"app", "redis://:" + R + "@cache:6379/0"}, []Hit{h(RuleURL, 1)}},
	{"url user only stays", []string{"git", "clone", "ssh://git@github.com/x/y.git", "https://registry.npmjs.org/@babel/core"},
		[]string{"git", "clone", "ssh://git@github.com/x/y.git", "https://registry.npmjs.org/@babel/core"}, nil},
	{"url token userinfo", []string{"app", "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42"},
		[]string{"app", "https://" + R + "@o1.ingest.sentry.io/42"}, []Hit{h(RuleURL, 1)}},
	{"query parameters", []string{"curl", "https://api.example/v1?token=qt1&page=2&key=AIzkey&sig=azsig"},
		[]string{"curl", "https://api.example/v1?token=" + R + "&page=2&key=" + R + "&sig=" + R}, []Hit{h(RuleKeyValue, 3)}},
	{"go mysql dsn", []string{"app", "-dsn", "root:my:pw@tcp(127.0.0.1:3306)/shop"},
		[]string{"app", "-dsn", "root:" + R + "@tcp(127.0.0.1:3306)/shop"}, []Hit{h(RuleURL, 1)}},

	// HTTP authorization.
	{"authorization header", []string{"curl", "-H", "Authorization: Bearer abc.def-ghi", "https://x"},
		[]string{"curl", "-H", "Authorization: Bearer " + R, "https://x"}, []Hit{h(RuleBearer, 1)}},
	{"bearer alone", []string{"app", "Bearer xyz"}, []string{"app", "Bearer " + R}, []Hit{h(RuleBearer, 1)}},
	{"basic", []string{"app", "--header=Authorization: Basic dXNlcjpwYXNz"},
		[]string{"app", "--header=Authorization: Basic " + R}, []Hit{h(RuleBasic, 1)}},
	{"basic prose stays", []string{"app", "--help-text", "Basic authentication only"},
		[]string{"app", "--help-text", "Basic authentication only"}, nil},
	{"header in a config value", []string{"git", "-c", "http.extraHeader=X-Api-Key: gk1", "fetch"},
		[]string{"git", "-c", "http.extraHeader=X-Api-Key: " + R, "fetch"}, []Hit{h(RuleSecretHeader, 1)}},
	{"other secret headers", []string{"curl", "-H", "X-Api-Key: k1", "-H", "Authorization: token gh1", "-H", "Cookie: sid=abc; theme=dark", "-H", "Accept: text/plain"},
		[]string{"curl", "-H", "X-Api-Key: " + R, "-H", "Authorization: token " + R, "-H", "Cookie: " + R, "-H", "Accept: text/plain"},
		[]Hit{h(RuleSecretHeader, 3)}},

	// Known token formats.
	{"aws key pair", []string{"app", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		[]string{"app", R, R}, []Hit{h(RuleAWSAccessKey, 1), h(RuleAWSSecretKey, 1)}},
	{"40 chars without an access key stay", []string{"git", "checkout", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		[]string{"git", "checkout", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "da39a3ee5e6b4b0d3255bfef95601890afd80709"}, nil},
	{"vendor tokens", []string{"app",
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
		"glpat-abcdefghij0123456789", "xoxb-1234567890-abcdefghij", "sk_live_abcdef0123456789",
		"AIzaSyA1234567890abcdefghijklmnopqrstuv", "npm_abcdefghijklmnopqrstuvwxyz0123456789",
		"hvs.CAESIabcdefghijklmnopqrstuvwxyz", "sk-proj-Abcdef0123456789XYZabcdef"},
		[]string{"app", R, R, R, R, R, R, R, R, R},
		[]Hit{h(RuleGitHubToken, 2), h(RuleGitLabToken, 1), h(RuleGoogleAPIKey, 1), h(RuleNPMToken, 1),
			h(RuleSKAPIKey, 1), h(RuleSlackToken, 1), h(RuleStripeKey, 1), h(RuleVaultToken, 1)}},
	{"jwt inside text", []string{"app", "--id-hint=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl;x=1"},
		[]string{"app", "--id-hint=" + R + ";x=1"}, []Hit{h(RuleJWT, 1)}},
	{"pem private key", []string{"app", "--tls-key-data", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n", "--port=1"},
		[]string{"app", "--tls-key-data", R, "--port=1"}, []Hit{h(RulePrivateKey, 1)}},
	{"prefix inside a word stays", []string{"app", "--task-xAKIAIOSFODNN7EXAMPLE", "disk-Abcdef0123456789XYZabcdef"},
		[]string{"app", "--task-xAKIAIOSFODNN7EXAMPLE", "disk-Abcdef0123456789XYZabcdef"}, nil},
	{"slack webhook", []string{"app", "https://hooks.slack.com/services/T000/B000/XXXXsecret"},
		[]string{"app", "https://hooks.slack.com/services/" + R}, []Hit{h(RuleWebhookSecret, 1)}},

	// Shell text and rewritten argv.
	{"sh -c script", []string{"/bin/sh", "-c", "PGPASSWORD=pg1 psql -h db --password pg2 && curl -u bob:pg3 x"},
		[]string{"/bin/sh", "-c", "PGPASSWORD=" + R + " psql -h db --password " + R + " && curl -u bob:" + R + " x"},
		[]Hit{h(RuleSecretFlag, 2), h(RuleKeyValue, 1)}},
	{"sh -c quoted", []string{"bash", "-lc", `mysql -psq1 -e 'select 1' && app --token "a b" --x`},
		[]string{"bash", "-lc", `mysql -p` + R + ` -e 'select 1' && app --token ` + R + ` --x`}, []Hit{h(RuleSecretFlag, 2)}},
	{"sh -c curl header", []string{"sh", "-c", `curl -H 'X-Auth-Token: xt1' https://x`},
		[]string{"sh", "-c", `curl -H 'X-Auth-Token: ` + R + `' https://x`}, []Hit{h(RuleSecretHeader, 1)}},
	{"sh -c header flag", []string{"sh", "-c", `wget --header='X-Api-Key: wk1' -O- https://x`},
		[]string{"sh", "-c", `wget --header='X-Api-Key: ` + R + `' -O- https://x`}, []Hit{h(RuleSecretHeader, 1)}},
	{"program name inside a value", []string{"app", "--client=/usr/bin/mysql", "-pfoo"},
		[]string{"app", "--client=/usr/bin/mysql", "-pfoo"}, nil},
	{"rewritten argv", []string{"myapp --password pw9 --port 80"},
		[]string{"myapp --password " + R + " --port 80"}, []Hit{h(RuleSecretFlag, 1)}},
	{"process titles stay", []string{"nginx: worker process"}, []string{"nginx: worker process"}, nil},
	{"postgres title stays", []string{"postgres: user db 10.0.0.1 idle"}, []string{"postgres: user db 10.0.0.1 idle"}, nil},

	// Idempotence: redacted values are left as they are.
	{"already redacted", []string{"app", "--password", R, "--token=" + R, "https://u:" + R + "@h", "Bearer " + R, "password=" + R},
		[]string{"app", "--password", R, "--token=" + R, "https://u:" + R + "@h", "Bearer " + R, "password=" + R}, nil},
}

func TestCmdline(t *testing.T) {
	for _, tc := range cmdlineCases {
		t.Run(tc.name, func(t *testing.T) {
			got, hits := Args(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Args:\n got  %q\n want %q", got, tc.want)
			}
			if !reflect.DeepEqual(hits, tc.hits) {
				t.Errorf("Args hits: got %v, want %v", hits, tc.hits)
			}
			raw := []byte(strings.Join(tc.in, "\x00") + "\x00")
			out, hits := Cmdline(raw)
			if want := strings.Join(tc.want, "\x00") + "\x00"; string(out) != want {
				t.Errorf("Cmdline:\n got  %q\n want %q", out, want)
			}
			if !reflect.DeepEqual(hits, tc.hits) {
				t.Errorf("Cmdline hits: got %v, want %v", hits, tc.hits)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
		hits []Hit
	}{
		{"secret names", []string{"DB_PASSWORD=hunter2", "GITHUB_TOKEN=abc", "AWS_SECRET_ACCESS_KEY=x/y", "PGPASSWORD=p", "MYSQL_PWD=m", "SECRET_KEY_BASE=skb", "REDISCLI_AUTH=ra", "JAVA_HOME=/usr/lib/jvm"},
			[]string{"DB_PASSWORD=" + R, "GITHUB_TOKEN=" + R, "AWS_SECRET_ACCESS_KEY=" + R, "PGPASSWORD=" + R, "MYSQL_PWD=" + R, "SECRET_KEY_BASE=" + R, "REDISCLI_AUTH=" + R, "JAVA_HOME=/usr/lib/jvm"},
			[]Hit{h(RuleSecretEnv, 7)}},
		{"whole value with spaces", []string{"APP_PASSPHRASE=correct horse battery staple"},
			[]string{"APP_PASSPHRASE=" + R}, []Hit{h(RuleSecretEnv, 1)}},
		{"look-alikes stay", []string{"PWD=/home/a", "OLDPWD=/", "SSH_AUTH_SOCK=/run/ssh.sock", "XDG_SESSION_ID=3", "XDG_SESSION_TYPE=x11", "SESSION_MANAGER=local/h:@/tmp/.ICE-unix/9", "GIT_ASKPASS=/usr/lib/ssh/askpass", "AWS_SHARED_CREDENTIALS_FILE=/c", "GOOGLE_APPLICATION_CREDENTIALS=/sa.json", "CREDENTIALS_DIRECTORY=/run/credentials/x.service", "TOKEN_TTL=60", "USE_AUTH=true", "EMPTY_TOKEN="},
			[]string{"PWD=/home/a", "OLDPWD=/", "SSH_AUTH_SOCK=/run/ssh.sock", "XDG_SESSION_ID=3", "XDG_SESSION_TYPE=x11", "SESSION_MANAGER=local/h:@/tmp/.ICE-unix/9", "GIT_ASKPASS=/usr/lib/ssh/askpass", "AWS_SHARED_CREDENTIALS_FILE=/c", "GOOGLE_APPLICATION_CREDENTIALS=/sa.json", "CREDENTIALS_DIRECTORY=/run/credentials/x.service", "TOKEN_TTL=60", "USE_AUTH=true", "EMPTY_TOKEN="},
			nil},
		{"values are scanned", []string{"DATABASE_URL=postgres://app:dbpw@db/shop", "JAVA_OPTS=-Xmx1g -Djavax.net.ssl.trustStorePassword=tsp -Dx=1", "DOCKER_AUTH_CONFIG={\"auths\":{\"r\":{\"auth\":\"YTpi\"}}}", "CURL_HDR=Authorization: Bearer bt1"},
			[]string{"DATABASE_URL=postgres://app:" + R + "@db/shop", "JAVA_OPTS=-Xmx1g -Djavax.net.ssl.trustStorePassword=" + R + " -Dx=1", "DOCKER_AUTH_CONFIG={\"auths\":{\"r\":{\"auth\":\"" + R + "\"}}}", "CURL_HDR=Authorization: Bearer " + R},
			[]Hit{h(RuleBearer, 1), h(RuleSecretFlag, 1), h(RuleKeyValue, 1), h(RuleURL, 1)}},
		{"aws pair in values", []string{"HINT=AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
			[]string{"HINT=" + R + ":" + R}, []Hit{h(RuleAWSAccessKey, 1), h(RuleAWSSecretKey, 1)}},
		{"pem value keeps the name", []string{"SSH_KEY_DATA=-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"},
			[]string{"SSH_KEY_DATA=" + R}, []Hit{h(RulePrivateKey, 1)}},
		{"yaml in a value", []string{"APP_CONFIG=db:\n  host: db\n  password: yp1\n  port: 5432\n"},
			[]string{"APP_CONFIG=db:\n  host: db\n  password: " + R + "\n  port: 5432\n"}, []Hit{h(RuleSecretHeader, 1)}},
		{"no equals sign", []string{"garbage Bearer zz9"}, []string{"garbage Bearer " + R}, []Hit{h(RuleBearer, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(strings.Join(tc.in, "\x00") + "\x00")
			out, hits := Environ(raw)
			if want := strings.Join(tc.want, "\x00") + "\x00"; string(out) != want {
				t.Errorf("Environ:\n got  %q\n want %q", out, want)
			}
			if !reflect.DeepEqual(hits, tc.hits) {
				t.Errorf("hits: got %v, want %v", hits, tc.hits)
			}
		})
	}
}

// TestLayout checks that the NUL layout of the input survives: a missing
// final NUL, empty arguments, NUL padding after a rewritten title.
func TestLayout(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"\x00", "\x00"},
		{"app\x00--token\x00t1", "app\x00--token\x00" + R},
		{"app\x00\x00--password=p\x00\x00\x00", "app\x00\x00--password=" + R + "\x00\x00\x00"},
		{"app: --token t1\x00\x00\x00\x00", "app: --token " + R + "\x00\x00\x00\x00"},
	} {
		out, _ := Cmdline([]byte(tc.in))
		if string(out) != tc.want {
			t.Errorf("Cmdline(%q) = %q, want %q", tc.in, out, tc.want)
		}
	}
}

// TestNoSecretsUnchanged feeds ordinary command lines and environments
// and expects them back byte for byte, without hits.
func TestNoSecretsUnchanged(t *testing.T) {
	cmdlines := []string{
		"/usr/sbin/nginx\x00-g\x00daemon off;\x00",
		"nginx: worker process\x00\x00\x00\x00\x00\x00",
		"postgres: user db 10.0.0.1 idle\x00",
		"postgres: checkpointer \x00",
		"/usr/bin/python3\x00-m\x00gunicorn\x00--workers=4\x00--bind=0.0.0.0:8000\x00--keep-alive=5\x00app:app\x00",
		"/usr/lib/jvm/java-17/bin/java\x00-Xmx2g\x00-XX:+UseG1GC\x00-Dfile.encoding=UTF-8\x00-Djavax.net.ssl.trustStore=/etc/pki/cacerts\x00-jar\x00/opt/app.jar\x00--spring.profiles.active=prod\x00",
		"/usr/bin/kube-apiserver\x00--authorization-mode=Node,RBAC\x00--anonymous-auth=false\x00--token-auth-file=/etc/k/tokens.csv\x00--service-account-key-file=/etc/k/sa.pub\x00--tls-private-key-file=/etc/k/apiserver.key\x00--kubelet-client-key=/etc/k/kc.key\x00--etcd-servers=https://127.0.0.1:2379\x00",
		"python3\x00-m\x00vllm.entrypoints.openai.api_server\x00--max-model-len\x008192\x00--max-num-batched-tokens\x0016384\x00--tokenizer\x00meta/llama\x00--tokenizer-mode\x00auto\x00",
		"/usr/bin/redis-server\x00*:6379\x00",
		"sshd: root@pts/0\x00",
		"/bin/bash\x00-c\x00cd /srv && exec ./run --config=/etc/app/secret.yaml --log-level=debug\x00",
		"git\x00-c\x00credential.helper=store\x00fetch\x00origin\x00da39a3ee5e6b4b0d3255bfef95601890afd80709\x00",
		"/usr/bin/containerd-shim-runc-v2\x00-namespace\x00k8s.io\x00-id\x004f1d2c3b9a8e7f6d5c4b3a29180716253443526170819a0b1c2d3e4f5a6b7c8d\x00-address\x00/run/containerd/containerd.sock\x00",
		"curl\x00-sS\x00-H\x00Accept: application/json\x00https://registry.npmjs.org/@babel/core\x00",
		"/usr/local/bin/kube-controller-manager\x00--authentication-kubeconfig=/etc/k/cm.conf\x00--authorization-kubeconfig=/etc/k/cm.conf\x00--use-service-account-credentials=true\x00--cluster-signing-key-file=/etc/k/ca.key\x00",
		"/usr/sbin/sshd\x00-D\x00-o\x00PasswordAuthentication=no\x00",
		"/usr/bin/dockerd\x00-H\x00fd://\x00--containerd=/run/containerd/containerd.sock\x00",
		"app\x00--basic-auth-file=/etc/htpasswd\x00--session-timeout=30m\x00--cookie-name=sid\x00--secret-ref=db/pw\x00",
	}
	for _, in := range cmdlines {
		out, hits := Cmdline([]byte(in))
		if !bytes.Equal(out, []byte(in)) || hits != nil {
			t.Errorf("Cmdline(%q) = %q, %v; want it unchanged", in, out, hits)
		}
	}
	environ := "PATH=/usr/local/bin:/usr/bin\x00HOME=/root\x00LANG=C.UTF-8\x00PWD=/srv\x00OLDPWD=/\x00" +
		"SSH_AUTH_SOCK=/tmp/ssh-x/agent.1\x00XDG_SESSION_ID=7\x00DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus\x00" +
		"KUBERNETES_SERVICE_HOST=10.96.0.1\x00INVOCATION_ID=4f1d2c3b9a8e7f6d5c4b3a2918071625\x00" +
		"LS_COLORS=rs=0:di=01;34:ln=01;36\x00JAVA_OPTS=-Xmx1g -Dfile.encoding=UTF-8\x00VAULT_ADDR=https://vault:8200\x00"
	out, hits := Environ([]byte(environ))
	if string(out) != environ || hits != nil {
		t.Errorf("Environ changed ordinary variables: %q, %v", out, hits)
	}
}

// TestIdempotent redacts every table case twice: the second pass must
// change nothing and report nothing.
func TestIdempotent(t *testing.T) {
	for _, tc := range cmdlineCases {
		once, _ := Args(tc.in)
		twice, hits := Args(once)
		if !reflect.DeepEqual(once, twice) || hits != nil {
			t.Errorf("%s: second pass changed %q to %q, hits %v", tc.name, once, twice, hits)
		}
	}
}

func TestArgsDoesNotModifyInput(t *testing.T) {
	in := []string{"app", "--password", "pw"}
	out, _ := Args(in)
	if in[2] != "pw" || out[2] != R {
		t.Fatalf("Args: in %q, out %q", in, out)
	}
}

// TestUnsettled drives redactFields with a scan that redacts one more
// byte per round and so never settles: after maxRounds the fields that
// still hold more than placeholders are replaced whole.
func TestUnsettled(t *testing.T) {
	oneByte := func(d *doc) {
		for f, t := range d.fields {
			i := 0
			for _, h := range d.holders[f] {
				if h.s == i {
					i = h.e
				}
			}
			if i < len(t) {
				d.add(f, i, i+1, "test")
			}
		}
	}
	got, hits := redactFields([]string{"abcdefgh", "", R, "ab"}, oneByte)
	want := []string{R, "", R, R + R}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if wantHits := []Hit{h("test", maxRounds+2), h(RuleUnsettled, 1)}; !reflect.DeepEqual(hits, wantHits) {
		t.Errorf("hits %v, want %v", hits, wantHits)
	}
}
