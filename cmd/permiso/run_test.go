package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/permiso/permiso/internal/testlog"
)

// testEnv is a fake process environment for run.
type testEnv map[string]string

func (e testEnv) get(k string) (string, bool) { v, ok := e[k]; return v, ok }

// baseEnv returns an environment for a fresh SQLite server in a temp dir.
func baseEnv(t *testing.T) testEnv {
	t.Helper()
	dir := t.TempDir()
	return testEnv{
		"DATABASE_URL":             "sqlite://" + filepath.Join(dir, "permiso.db"),
		"JWT_SECRET_KEY":           "test-secret-key-that-is-long-enough-0123456789",
		"LOG_LEVEL":                "ERROR",
		"PORT":                     "0",
		"HOST":                     "127.0.0.1",
		"SHUTDOWN_TIMEOUT_SECONDS": "5",
	}
}

// runCmd runs permiso with args and returns stdout, stderr and the error.
func runCmd(t *testing.T, env testEnv, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	// An explicit env file that does not exist would be an error, and the
	// working directory's .env must not leak into tests.
	args = append([]string{"--env-file", writeEmptyEnvFile(t)}, args...)
	err := run(context.Background(), args, env.get, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func writeEmptyEnvFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// startServer runs `permiso serve` in the background and waits until it
// answers; the returned function stops it and returns run's error.
func startServer(t *testing.T, env testEnv) (base string, stop func() error) {
	t.Helper()
	env["PORT"] = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testlog.Buffer{}
	done := make(chan error, 1)
	envFile := writeEmptyEnvFile(t)
	go func() {
		done <- run(ctx, []string{"--env-file", envFile, "serve"}, env.get, strings.NewReader(""), io.Discard, logs)
	}()
	base = "http://127.0.0.1:" + env["PORT"]
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("server exited early: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(base + "/health/live")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				result = fmt.Errorf("server did not stop")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestServeSQLiteHealthAndGracefulStop(t *testing.T) {
	env := baseEnv(t)
	base, stop := startServer(t, env)
	status, body := getJSON(t, base+"/health")
	if status != 200 || body["status"] != "healthy" {
		t.Fatalf("GET /health = %d %v", status, body)
	}
	checks, _ := body["checks"].(map[string]any)
	db, _ := checks["database"].(map[string]any)
	if db["status"] != "healthy" {
		t.Fatalf("database check = %v", checks)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(metricsText), `permiso_http_requests_total{method="GET",route="GET /health",status="200"} 1`) ||
		!strings.Contains(string(metricsText), `permiso_cache_lookups_total{result="hit"}`) {
		t.Fatalf("GET /metrics = %d (want the HTTP and the in-process cache metrics):\n%s", resp.StatusCode, metricsText)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop returned %v", err)
	}
}

func TestServeWithoutSecretPersistsDevKey(t *testing.T) {
	env := baseEnv(t)
	delete(env, "JWT_SECRET_KEY")
	_, stop := startServer(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(strings.TrimPrefix(env["DATABASE_URL"], "sqlite://"))
	key1, err := os.ReadFile(filepath.Join(dir, ".permiso-dev-secret"))
	if err != nil {
		t.Fatalf("dev secret not persisted: %v", err)
	}
	_, stop = startServer(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	key2, _ := os.ReadFile(filepath.Join(dir, ".permiso-dev-secret"))
	if len(key1) < 32 || !bytes.Equal(key1, key2) {
		t.Fatalf("dev secret changed across restarts or too short: %q vs %q", key1, key2)
	}
}

func TestCreateAdminIsIdempotent(t *testing.T) {
	env := baseEnv(t)
	out, _, err := runCmd(t, env, "Adm1n-Passw0rd!x\n", "create-admin", "--username", "Admin", "--email", "admin@example.com", "--password-stdin")
	if err != nil {
		t.Fatalf("create-admin: %v", err)
	}
	if !strings.Contains(out, "created administrator \"admin\"") {
		t.Fatalf("unexpected output %q", out)
	}
	// Idempotent: the same administrator again says it exists, exits
	// non-zero and changes nothing.
	_, _, err = runCmd(t, env, "Other-Passw0rd!x\n", "create-admin", "--username", "ADMIN", "--email", "Admin@Example.com", "--password-stdin")
	if err == nil || exitCode(err) == 0 || !strings.Contains(err.Error(), "already exists; nothing changed") {
		t.Fatalf("second create-admin of the same administrator: %v", err)
	}
	_, _, err = runCmd(t, env, "Other-Passw0rd!x\n", "create-admin", "--username", "ADMIN", "--email", "other@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "already exists and is not") {
		t.Fatalf("taken username: err = %v, want a refusal", err)
	}
	_, _, err = runCmd(t, env, "Other-Passw0rd!x\n", "create-admin", "--username", "someone", "--email", "ADMIN@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "already exists and is not") {
		t.Fatalf("same email: err = %v, want a refusal", err)
	}
}

func TestCreateAdminRejectsWeakPasswordAndArgv(t *testing.T) {
	env := baseEnv(t)
	_, _, err := runCmd(t, env, "short\n", "create-admin", "--username", "admin", "--email", "admin@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "password rejected") {
		t.Fatalf("weak password: err = %v", err)
	}
	_, _, err = runCmd(t, env, "", "create-admin", "--username", "admin", "--email", "admin@example.com", "Secret-Passw0rd!")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("password in argv must be refused as a usage error, got %v", err)
	}
	_, _, err = runCmd(t, env, "", "create-admin", "--username", "admin", "--email", "admin@example.com")
	if err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("no terminal: err = %v", err)
	}
}

func TestProductionRefusals(t *testing.T) {
	cases := map[string]struct {
		env  testEnv
		want string
	}{
		"placeholder secret": {testEnv{"ENVIRONMENT": "production", "JWT_SECRET_KEY": "your-super-secure-jwt-secret-key-here",
			"DATABASE_URL": "postgresql://permiso@127.0.0.1:1/permiso"}, "JWT_SECRET_KEY"},
		"sqlite": {testEnv{"ENVIRONMENT": "production", "JWT_SECRET_KEY": strings.Repeat("k", 48),
			"DATABASE_URL": "sqlite://permiso.db"}, "DATABASE_URL"},
		"bad port": {testEnv{"PORT": "eighty"}, "PORT"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := runCmd(t, c.env, "", "serve")
			if err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != 1 {
				t.Fatalf("err = %v (exit %d), want exit 1 naming %s", err, exitCode(err), c.want)
			}
		})
	}
}

func TestMigrateSQLite(t *testing.T) {
	testMigrate(t, baseEnv(t))
}

func testMigrate(t *testing.T, env testEnv) {
	t.Helper()
	out, _, err := runCmd(t, env, "", "migrate", "status")
	if err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("status on empty db: %v\n%s", err, out)
	}
	if out, _, err = runCmd(t, env, "", "migrate", "up"); err != nil || !strings.Contains(out, "applied 0001_schema") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if out, _, err = runCmd(t, env, "", "migrate", "status"); err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "applied") {
		t.Fatalf("status after up: %v\n%s", err, out)
	}
	// The newest migration, whichever it is, so that adding one changes
	// nothing here.
	if out, _, err = runCmd(t, env, "", "migrate", "down", "1"); err != nil || !strings.Contains(out, "reverted 0") {
		t.Fatalf("down 1: %v\n%s", err, out)
	}
	newest := strings.Fields(out[strings.Index(out, "reverted ")+len("reverted "):])[0]
	// AUTO_MIGRATE=false refuses to serve while a migration is pending.
	env["AUTO_MIGRATE"] = "false"
	if _, _, err = runCmd(t, env, "", "serve"); err == nil || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("serve with pending migrations and AUTO_MIGRATE=false: %v", err)
	}
	delete(env, "AUTO_MIGRATE")
	if out, _, err = runCmd(t, env, "", "migrate", "up"); err != nil || !strings.Contains(out, "applied "+newest) {
		t.Fatalf("up again: %v\n%s (want %s applied)", err, out, newest)
	}
	if out, _, err = runCmd(t, env, "", "migrate", "up"); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("up when current: %v\n%s", err, out)
	}
	if _, _, err = runCmd(t, env, "", "migrate", "sideways"); err == nil || exitCode(err) != 2 {
		t.Fatalf("unknown action: %v", err)
	}
}

// pgDatabase creates a fresh PostgreSQL database for one test and returns
// its URL; it is dropped when the test ends.
func pgDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if admin == "" {
		t.Skip("PERMISO_TEST_DATABASE_URL not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect %s: %v", admin, err)
	}
	name := fmt.Sprintf("permiso_cmd_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgresql://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name)
}

func TestMigrateAndServePostgres(t *testing.T) {
	env := baseEnv(t)
	env["DATABASE_URL"] = pgDatabase(t)
	testMigrate(t, env)
	if redisURL := os.Getenv("PERMISO_TEST_REDIS_URL"); redisURL != "" {
		env["REDIS_URL"] = redisURL
	}
	base, stop := startServer(t, env)
	status, body := getJSON(t, base+"/health")
	if status != 200 {
		t.Fatalf("GET /health = %d %v", status, body)
	}
	out, _, err := runCmd(t, env, "Adm1n-Passw0rd!x\n", "create-admin", "--username", "admin", "--email", "admin@example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "created") {
		t.Fatalf("create-admin on postgres: %v %s", err, out)
	}
	if out, _, err = runCmd(t, env, "", "check"); err != nil || !strings.Contains(out, "all checks passed") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	env := baseEnv(t)
	out, _, err := runCmd(t, env, "", "check")
	if err != nil || !strings.Contains(out, "database (sqlite): ok") || !strings.Contains(out, "redis: not configured") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	env["REDIS_URL"] = "redis://127.0.0.1:1/0"
	out, _, err = runCmd(t, env, "", "check")
	if err == nil || !strings.Contains(out, "redis: FAILED") {
		t.Fatalf("check with unreachable redis: %v\n%s", err, out)
	}
}

func TestBackupSQLite(t *testing.T) {
	env := baseEnv(t)
	if _, _, err := runCmd(t, env, "", "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if _, _, err := runCmd(t, env, "", "backup", "--out", out); err != nil {
		t.Fatal(err)
	}
	env["DATABASE_URL"] = "sqlite://" + out
	status, _, err := runCmd(t, env, "", "migrate", "status")
	if err != nil || strings.Contains(status, "pending") {
		t.Fatalf("backup copy is not a migrated database: %v\n%s", err, status)
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, _, err := runCmd(t, testEnv{}, "", "version")
	if err != nil || !strings.HasPrefix(out, "permiso ") || !strings.Contains(out, "databases: postgresql, sqlite)") {
		t.Fatalf("version: %v %q", err, out)
	}
	// A failing subcommand gives a one-line reason.
	if _, _, err := runCmd(t, testEnv{}, "", "frobnicate"); err == nil || exitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unknown command: %v", err)
	}
	if _, _, err := runCmd(t, testEnv{}, "", "--no-such-flag"); err == nil || exitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unknown global flag: %v", err)
	}
	// The global --env-file may follow the command too: a file that does
	// not exist is named in the error, in every spelling.
	for _, args := range [][]string{{"version", "--env-file", "/nonexistent/x.env"}, {"check", "--env-file=/nonexistent/x.env"}, {"migrate", "-env-file", "/nonexistent/x.env", "status"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, testEnv{}.get, strings.NewReader(""), &out, &errb)
		if args[0] == "version" {
			if err != nil {
				t.Errorf("%v: %v", args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.env") {
			t.Errorf("%v: %v, want the env file named", args, err)
		}
	}
	if _, _, err := runCmd(t, testEnv{}, "", "check", "--env-file"); err == nil || exitCode(err) != 2 {
		t.Errorf("--env-file without a value: %v", err)
	}
	for _, sub := range []string{"serve", "migrate", "create-admin", "check", "backup"} {
		out, _, err := runCmd(t, testEnv{}, "", sub, "--help")
		if err != nil || !strings.Contains(out, "Usage: permiso "+sub) {
			t.Fatalf("%s --help: %v %q", sub, err, out)
		}
	}
}
