// Package redact removes secrets from the /proc files dashcam copies into
// a bundle: /proc/<pid>/cmdline (Cmdline), /proc/<pid>/environ (Environ)
// and argv vectors of exec events (Args). A bundle is attached to tickets,
// so redaction errs towards removing too much: when a rule cannot tell a
// secret from an ordinary value, the value goes.
//
// Every secret is replaced by Placeholder, "<redacted>". The NUL layout of
// the input is kept (same number of NUL-separated fields), input without
// secrets comes back byte for byte, and running a function on its own
// output changes nothing: a placeholder is never redacted again. Each call
// returns one Hit per rule with a count, for the bundle manifest; a hit
// never carries the value.
//
// # Names that look secret
//
// Many rules ask whether a name (flag, key of key=value, environment
// variable, header, JSON key) looks secret. The name is split into words
// at - _ . : and camelCase ("keyStorePassword" is key, store, password),
// case-insensitively. It looks secret when a word
//
//   - ends with password, passwd, passphrase, passcode, secret(s), token,
//     credential(s), pwd, cookie(s), signature, authorization, auth,
//     sessionid or sessid ("pgpassword", "authtoken" count);
//   - is creds, cred, bearer, jwt, psk, or an openssl/keytool password
//     option (passin, passout, storepass, keypass, …);
//   - is the last word and is pass, pw, session or sig (--pass, DB_PW,
//     Azure's sig=);
//   - is "key" after a qualifier such as api, access, secret, private,
//     signing, encryption, master, app, license (api_key, apiKey, apikey,
//     ACCESS_KEY, privateKey); or is session followed by id.
//
// It does not look secret when its last word says it refers to or
// describes a secret rather than being one: file, path, dir, url, host,
// name, type, mode, ttl, timeout, length, user, stdin, env, ref, sock,
// config and similar (--password-file, --token-ttl, --auth-mode,
// secretKeyRef, SSH_AUTH_SOCK, --password-stdin), or when its first word
// is no, skip, disable, enable, without, allow or require (--no-auth).
//
// # Rules
//
// Rule names are the Rule* constants.
//
//   - secret-flag: the value of a flag whose name looks secret, as
//     --password=x, --password x (the next argument is the value unless it
//     is a long option, "--", "-" or a shell operator; a value starting
//     with one dash is taken), Go-style -password x, and Java system
//     properties -Djavax.net.ssl.keyStorePassword=x. Also short options
//     that carry a password for one known program only: mysql -pX,
//     redis-cli -a X, sshpass -p X, mongo* -p X, ldap* -w X, sqlcmd/bcp
//     -P X, docker/podman/nerdctl login -p X, curl -u user:X and -b X,
//     smbclient -U user%X, openssl -k X, vault login X, aws configure set
//     NAME X, and Oracle tools' user/X@db.
//   - secret-key=value: key=value pairs anywhere in an argument (env
//     DB_PASSWORD=x, --from-literal=password=x, --set a.rootPassword=x),
//     libpq "host=db password=x dbname=y", ADO/JDBC ";Password=x;", ODBC
//     PWD={x}, URL query parameters (?token=x&, and ?key=, which is an API
//     key there), and JSON "password":"x". A value ends at its closing
//     quote if quoted, before ; & , or whitespace when another key=
//     follows, and at whitespace inside shell text. Only in a whole
//     argument starting with the pair may the value hold spaces
//     (PASSWORD=correct horse battery).
//   - secret-header: "Name: value" at the start of an argument or of a
//     line (curl -H, wget --header, git -c http.extraHeader=…, YAML in a
//     variable) when the name looks secret: X-Api-Key, Cookie,
//     X-Auth-Token, "password: x", and Authorization with any scheme (the
//     scheme word stays).
//   - secret-env: in Environ, the whole value of a variable whose name
//     looks secret. Other values are scanned with all the text rules,
//     since JAVA_OPTS or DATABASE_URL carry secrets too.
//   - url-credentials: scheme://user:x@host keeps user and host. The
//     password runs to the last '@' before any ? or #, so unescaped '@'
//     and '/' in passwords are covered. Userinfo without a colon is a user
//     name and stays (git@, app@), unless it looks like a token (20+ token
//     characters with letters and digits, no dot: https://ghp_…@github.com,
//     Sentry DSNs); then all of it goes. Also Go MySQL DSNs
//     user:x@tcp(host)/db.
//   - bearer-token, basic-auth: the credential after "Bearer", and after
//     "Basic" when it is base64 of user:password.
//   - private-key: an argument (or variable value) holding a PEM
//     "-----BEGIN … PRIVATE KEY-----" header is replaced whole.
//   - Known token formats anywhere: aws-access-key (AKIA/ASIA + 16),
//     aws-secret-key (40 base64 characters with upper and lower case and
//     digits, only in or within two arguments of an access key id, or in
//     the same variable), github-token (ghp_ gho_ ghu_ ghs_ ghr_
//     github_pat_), gitlab-token (glpat-), slack-token (xox[abeoprs]-),
//     stripe-key (sk_live_, rk_test_, …), google-api-key (AIza), npm-token
//     (npm_), vault-token (hvs. hvb. hvr.), sk-api-key (sk-… mixing case
//     and digits), jwt (eyJ….….…), webhook-url (the secret path of Slack
//     and Discord webhooks).
//
// Shell text is searched too: a sh -c / bash -lc script, an argv that a
// process rewrote into one string, or a variable value with spaces is
// split into words as a shell would and the flag rules run on the words.
//
// # What is left alone, on purpose
//
//   - Short options in general. -p is a port for docker, ssh and most
//     servers, -a, -k, -u, -w mean anything; only the program table above
//     knows better. mysql's -p followed by a separate argument prompts, and
//     that argument is the database.
//   - A bare "key", and client/ssl/tls keys: curl --key and --tls-key take
//     file paths, --sort-key, routing and partition keys are data.
//     "private" alone (--private-ip), "tokens" (--max-tokens 4096),
//     tokenizer, keyboard, monkey, keepalive, author: no secret words.
//   - References to secrets: --password-file=/run/secrets/db,
//     --key-file=/etc/tls.key, --config=/etc/app/secret.yaml (the name is
//     not secret; a path containing "secret" is still a path),
//     GOOGLE_APPLICATION_CREDENTIALS. The file holds the secret, the path
//     helps debugging. Conversely, a secret-named flag's value is removed
//     even when it is a path (--private-key=/etc/ssl/k.pem): a value's
//     shape cannot prove it is not key material.
//   - Empty values (key=, --password=): nothing to hide, no hit. Values
//     true, false, yes, no, none, null (--anonymous-auth=false).
//   - PWD and OLDPWD (the shell's directories, despite "pwd") and
//     XDG_SESSION_ID (a logind session number).
//   - User names and hosts in URLs, and anything of high entropy that has
//     no secret name or known format: hashes, UUIDs, container ids and git
//     commits are what incident responders search for, and a generic
//     entropy rule would destroy them.
//
// # Known gaps
//
// A password in a position no rule knows (htpasswd -b file user PASS), a
// scheme-less user:pass@host other than Go's @tcp( form, a password with
// spaces outside a whole argument, and a value that itself contains
// "&key=" or "; key=" (the value is cut there) are not caught. Passwords
// given on the command line are visible to every local user anyway; this
// package only keeps them out of tickets.
//
// # Cost
//
// The target process chooses its command line and environment, so all
// scans are linear in the input: crafted inputs of 512 KiB take well under
// a second (TestLinearTime). Replacing a value can uncover another (a
// password that unbalanced shell quotes), so redaction repeats until a
// round finds nothing; after four rounds the fields still changing are
// replaced whole and reported as RuleUnsettled.
package redact
