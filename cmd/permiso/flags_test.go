package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/permiso/permiso/config"
)

// flagEnv is a fresh SQLite deployment whose DATABASE_URL is in an env
// file, not in the process environment: a command that ignored an
// --env-file would work on another database (in the test's empty working
// directory) and fail its check.
type flagEnv struct {
	dir, envFile string
	env          testEnv
}

func newFlagEnv(t *testing.T, extra ...string) flagEnv {
	t.Helper()
	dir := t.TempDir()
	lines := append([]string{"DATABASE_URL=sqlite://" + filepath.Join(dir, "permiso.db")}, extra...)
	f := filepath.Join(dir, "permiso.env")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(t)
	delete(env, "DATABASE_URL")
	return flagEnv{dir: dir, envFile: f, env: env}
}

// run runs permiso with exactly args (no --env-file added).
func (e flagEnv) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, e.env.get, strings.NewReader(stdin), &out, &errb)
	return out.String(), err
}

// must runs args with the env file and fails the test on an error.
func (e flagEnv) must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := e.run(t, stdin, append([]string{"--env-file", e.envFile}, args...)...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

// arrangements returns cmd with its words and flag groups (each a flag
// and, unless boolean, its value) in every position the parser must
// accept: flags before the words, after them, between the first word and
// the rest, split around the words, in reverse order, and spelled
// "--name=value" and "-name value". The key names the arrangement.
func arrangements(cmd string, words []string, groups [][]string) map[string][]string {
	cat := func(parts ...[]string) []string {
		out := []string{cmd}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	flat := slices.Concat(groups...)
	var reversed, equals, single []string
	for i := range groups {
		reversed = append(reversed, groups[len(groups)-1-i]...)
		g := groups[i]
		if len(g) == 2 {
			equals = append(equals, g[0]+"="+g[1])
		} else {
			equals = append(equals, g...)
		}
		single = append(single, strings.TrimPrefix(g[0], "-"))
		single = append(single, g[1:]...)
	}
	all := map[string][]string{
		"flags first":  cat(flat, words),
		"flags last":   cat(words, flat),
		"name=value":   cat(words, equals),
		"single dash":  cat(single, words),
		"reverse":      cat(words, reversed),
		"first/others": cat(groups[0], words, slices.Concat(groups[1:]...)),
	}
	if len(words) > 1 {
		all["between words"] = cat(words[:1], flat, words[1:])
	}
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		args := all[name]
		if k := strings.Join(args, "\x00"); !seen[k] {
			seen[k] = true
			out[name] = args
		}
	}
	return out
}

// createdID returns the user id create-admin printed.
var createdID = regexp.MustCompile(`created administrator "[^"]+" \(([0-9a-f-]{36})\)`)

func createAdmin(t *testing.T, e flagEnv, username string) string {
	t.Helper()
	out := e.must(t, "Adm1n-Passw0rd!x\n", "create-admin", "--username", username, "--email", username+"@example.com", "--password-stdin")
	m := createdID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create-admin printed no id: %q", out)
	}
	return m[1]
}

// TestFlagsAnywhere: every subcommand takes its flags before, between and
// after its positional words, in any order and spelling, and the flags
// take effect wherever they stand (the command does what they say).
func TestFlagsAnywhere(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./.env; a command that lost --env-file works here
	type command struct {
		name   string
		extra  []string // env file lines besides DATABASE_URL
		words  []string
		groups func(e flagEnv, n int) [][]string
		stdin  string
		// global: pass --env-file before the command (commands whose
		// flags under test do not include it).
		global bool
		before func(t *testing.T, e flagEnv, n int)
		check  func(t *testing.T, e flagEnv, n int, out string)
	}
	var adminID string
	commands := []command{
		{name: "migrate", words: []string{"down", "2"},
			groups: func(e flagEnv, _ int) [][]string { return [][]string{{"--env-file", e.envFile}} },
			before: func(t *testing.T, e flagEnv, _ int) { e.must(t, "", "migrate", "up") },
			check: func(t *testing.T, _ flagEnv, _ int, out string) {
				// "down 2" reverts the two newest migrations, whatever they are.
				if n := strings.Count(out, "reverted "); n != 2 {
					t.Errorf("want two migrations reverted, got %q", out)
				}
			}},
		{name: "create-admin", global: true, stdin: "Adm1n-Passw0rd!x\n",
			groups: func(_ flagEnv, n int) [][]string {
				u := fmt.Sprintf("admin%d", n)
				return [][]string{{"--username", u}, {"--email", u + "@example.com"}, {"--password-stdin"}}
			},
			check: func(t *testing.T, _ flagEnv, n int, out string) {
				if !strings.Contains(out, fmt.Sprintf(`created administrator "admin%d"`, n)) {
					t.Errorf("got %q", out)
				}
			}},
		{name: "check",
			groups: func(e flagEnv, _ int) [][]string { return [][]string{{"--env-file", e.envFile}} },
			check: func(t *testing.T, e flagEnv, _ int, out string) {
				if !strings.Contains(out, "database (sqlite): ok") {
					t.Errorf("got %q", out)
				}
			}},
		{name: "keys", extra: []string{"JWT_ALGORITHM=EdDSA"}, words: []string{"rotate"},
			groups: func(e flagEnv, _ int) [][]string { return [][]string{{"--env-file", e.envFile}} },
			check: func(t *testing.T, _ flagEnv, _ int, out string) {
				if !strings.Contains(out, "new EdDSA signing key") {
					t.Errorf("got %q", out)
				}
			}},
		{name: "sessions", global: true, words: []string{"revoke-all"},
			before: func(t *testing.T, e flagEnv, n int) {
				if adminID == "" {
					adminID = createAdmin(t, e, "root")
				}
			},
			groups: func(flagEnv, int) [][]string { return [][]string{{"--user", adminID}} },
			check: func(t *testing.T, _ flagEnv, _ int, out string) {
				if !strings.Contains(out, "of 1 user(s)") {
					t.Errorf("want one user's sessions revoked, got %q", out)
				}
			}},
		{name: "backup", global: true,
			groups: func(e flagEnv, n int) [][]string {
				return [][]string{{"--out", filepath.Join(e.dir, fmt.Sprintf("copy%d.db", n))}}
			},
			before: func(t *testing.T, e flagEnv, _ int) { e.must(t, "", "migrate", "up") },
			check: func(t *testing.T, e flagEnv, n int, out string) {
				if _, err := os.Stat(filepath.Join(e.dir, fmt.Sprintf("copy%d.db", n))); err != nil || !strings.Contains(out, "backup written") {
					t.Errorf("backup: %v, %q", err, out)
				}
			}},
		{name: "version",
			groups: func(e flagEnv, _ int) [][]string { return [][]string{{"--env-file", e.envFile}} },
			check: func(t *testing.T, _ flagEnv, _ int, out string) {
				if !strings.HasPrefix(out, "permiso ") {
					t.Errorf("got %q", out)
				}
			}},
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			e := newFlagEnv(t, c.extra...)
			// The arrangements of one command share its database; n
			// keeps their names and files apart.
			names := slices.Sorted(maps.Keys(arrangements(c.name, c.words, c.groups(e, 0))))
			for n, name := range names {
				t.Run(name, func(t *testing.T) {
					if c.before != nil {
						c.before(t, e, n)
					}
					args, ok := arrangements(c.name, c.words, c.groups(e, n))[name]
					if !ok {
						t.Fatalf("no arrangement %q", name)
					}
					if c.global {
						args = append([]string{"--env-file", e.envFile}, args...)
					}
					out, err := e.run(t, c.stdin, args...)
					if err != nil {
						t.Fatalf("%q: %v\n%s", args, err, out)
					}
					c.check(t, e, n, out)
				})
			}
		})
	}
}

// TestFlagsUsage: "--" ends the flags, --help works in every position of
// every subcommand, and every mistake is a one-line usage error (exit 2).
func TestFlagsUsage(t *testing.T) {
	e := newFlagEnv(t)
	help := [][]string{
		{"serve", "--help"}, {"migrate", "--help"}, {"migrate", "down", "-h"}, {"migrate", "down", "2", "--help"},
		{"create-admin", "--username", "u", "--help"}, {"check", "-help"}, {"keys", "rotate", "--help"},
		{"keys", "--help", "rotate"}, {"sessions", "revoke-all", "--help"}, {"sessions", "--help"},
		{"sessions", "revoke-all", "--user", "x", "--help"}, {"backup", "--help"}, {"version", "--help"},
	}
	for _, args := range help {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := e.run(t, "", append([]string{"--env-file", e.envFile}, args...)...)
			if err != nil || !strings.HasPrefix(out, "Usage: permiso "+args[0]) {
				t.Fatalf("err %v, output %q; want the usage of %s", err, out, args[0])
			}
		})
	}
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "--", "revoke-all", "--user", "x"}, "want \"sessions revoke-all"},
		{[]string{"sessions", "revoke-all", "--user"}, "flag needs an argument"},
		{[]string{"sessions", "revoke-all", "--user", "not-an-id"}, "is not a user id"},
		{[]string{"sessions", "revoke-all", "extra", "--user", "x"}, "want \"sessions revoke-all"},
		{[]string{"sessions", "revoke-all", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"migrate", "down", "2", "--bogus"}, "flag provided but not defined"},
		{[]string{"migrate", "down", "--", "-2"}, "not a positive number"},
		{[]string{"migrate", "down", "2", "3"}, "at most one argument"},
		{[]string{"create-admin", "--username", "u", "--email", "u@example.com", "--", "--password-stdin"}, "never taken from arguments"},
		{[]string{"create-admin", "--username", "u", "Secret-Passw0rd!", "--email", "u@example.com"}, "never taken from arguments"},
		{[]string{"create-admin", "--password-stdin=maybe"}, "invalid boolean value"},
		{[]string{"keys", "rotate", "now"}, "want \"keys rotate\""},
		{[]string{"keys"}, "want \"keys rotate\""},
		{[]string{"backup", "extra", "--out", "x.db"}, "takes no arguments"},
		{[]string{"backup"}, "--out FILE is required"},
		{[]string{"check", "extra"}, "check takes no arguments"},
		{[]string{"version", "extra"}, "version takes no arguments"},
		{[]string{"serve", "extra"}, "serve takes no arguments"},
	}
	for _, c := range usage {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := e.run(t, "", append([]string{"--env-file", e.envFile}, c.args...)...)
			if err == nil || exitCode(err) != 2 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v (exit %d), want a one-line usage error (exit 2) containing %q", err, exitCode(err), c.want)
			}
		})
	}
}

// TestSplitFlags pins how arguments are told apart: a flag's value is the
// next argument whatever it looks like, boolean flags take none, "-"
// alone is a word, and "--" makes the rest words.
func TestSplitFlags(t *testing.T) {
	fs := newFlagSet("x", "x", &bytes.Buffer{})
	fs.String("out", "", "")
	fs.Bool("yes", false, "")
	for _, c := range []struct {
		args, flags, words []string
		dangling           bool
	}{
		{[]string{"a", "--out", "f", "b"}, []string{"--out", "f"}, []string{"a", "b"}, false},
		{[]string{"--out", "--", "a"}, []string{"--out", "--"}, []string{"a"}, false},
		{[]string{"--out", "-x", "-"}, []string{"--out", "-x"}, []string{"-"}, false},
		{[]string{"--yes", "a", "-out=f"}, []string{"--yes", "-out=f"}, []string{"a"}, false},
		{[]string{"a", "--", "--out", "f"}, nil, []string{"a", "--out", "f"}, false},
		{[]string{"--nope", "a"}, []string{"--nope"}, []string{"a"}, false},
		{[]string{"a", "--out"}, []string{"--out"}, []string{"a"}, true},
	} {
		flags, words, dangling := splitFlags(fs.FlagSet, c.args)
		if !slices.Equal(flags, c.flags) || !slices.Equal(words, c.words) || dangling != c.dangling {
			t.Errorf("splitFlags(%q) = %q, %q, %v; want %q, %q, %v", c.args, flags, words, dangling, c.flags, c.words, c.dangling)
		}
	}
}

// TestSessionsRevokeAllUserAfterWord is the documented form "permiso
// sessions revoke-all --user ID" (README's commands table): the flag after
// the word must select that user, whose sessions end (the refresh token
// stops working), while another user's sessions go on.
func TestSessionsRevokeAllUserAfterWord(t *testing.T) {
	e := newFlagEnv(t)
	e.must(t, "", "migrate", "up")
	alice := createAdmin(t, e, "alice")
	createAdmin(t, e, "bob")
	env := e.env
	env["DATABASE_URL"] = "sqlite://" + filepath.Join(e.dir, "permiso.db")
	base, stop := startServer(t, env)
	defer stop()
	login := func(user string) string {
		t.Helper()
		resp, err := http.PostForm(base+"/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {"Adm1n-Passw0rd!x"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
			t.Fatalf("login %s: %d %v %v", user, resp.StatusCode, body, err)
		}
		return body["refresh_token"].(string)
	}
	refresh := func(token string) int {
		t.Helper()
		resp, err := http.PostForm(base+"/api/v1/auth/refresh", url.Values{"refresh_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	aliceRefresh, bobRefresh := login("alice"), login("bob")

	out := e.must(t, "", "sessions", "revoke-all", "--user", alice)
	if !strings.Contains(out, "revoked 1 session(s) of 1 user(s)") {
		t.Fatalf("sessions revoke-all --user: %q, want alice's one session revoked", out)
	}
	if code := refresh(aliceRefresh); code != http.StatusBadRequest {
		t.Errorf("alice's refresh token after revoke-all --user alice: %d, want 400", code)
	}
	if code := refresh(bobRefresh); code != http.StatusOK {
		t.Errorf("bob's refresh token after revoke-all --user alice: %d, want 200 (untouched)", code)
	}
}

// TestSessionsRevokeAllWithDevelopmentKey: in the zero-configuration setup
// (no JWT_SECRET_KEY, a generated development key next to the database)
// the incident-response command runs, on the key serve uses.
func TestSessionsRevokeAllWithDevelopmentKey(t *testing.T) {
	env := baseEnv(t)
	delete(env, "JWT_SECRET_KEY")
	if _, stderr, err := runCmd(t, env, "", "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, stderr)
	}
	out, stderr, err := runCmd(t, env, "", "sessions", "revoke-all")
	if err != nil {
		t.Fatalf("sessions revoke-all without JWT_SECRET_KEY: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "revoked 0 session(s)") {
		t.Errorf("sessions revoke-all: %q", out)
	}
	dbPath := strings.TrimPrefix(env["DATABASE_URL"], "sqlite://")
	key, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), ".permiso-dev-secret"))
	if err != nil || len(strings.TrimSpace(string(key))) != 64 {
		t.Errorf("development key next to the database: %q, %v", key, err)
	}
}

// TestNewHasherUsesConfiguredCosts: new password hashes get
// PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_ITERATIONS
// (docs/security-model.md, "Password hashing").
func TestNewHasherUsesConfiguredCosts(t *testing.T) {
	cfg := config.Defaults()
	cfg.PasswordHashMemoryKiB, cfg.PasswordHashIterations = 19456, 2
	h := newHasher(cfg, 1)
	if p := h.Params(); p.Memory != 19456 || p.Time != 2 || p.Parallelism != 1 {
		t.Fatalf("params %+v", p)
	}
	hash, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil || !strings.Contains(hash, "$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q, %v", hash, err)
	}
}
