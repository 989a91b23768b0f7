// Package e2e is a black-box test suite: it builds cmd/permiso once, runs
// real `permiso serve` processes and drives them over HTTP and through the
// CLI, as an operator and a client would. It imports nothing from this
// repository.
//
// PERMISO_E2E_BINARY=/path/to/permiso tests that binary instead of
// building one.
//
// SQLite runs always. PostgreSQL + Redis run too when both
// PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL are set: each test
// then gets a fresh database (dropped afterwards) and its own Redis key
// prefix (deleted afterwards).
//
// Tests of routes that do not exist yet skip through requireRoute, so the
// suite is green while the API is being built and turns itself on as the
// routes land.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/permiso/permiso/internal/testjwt"
	"github.com/permiso/permiso/internal/testlog"
)

// Set by TestMain.
var (
	binPath      string // the permiso binary under test
	emptyEnvFile string // passed as --env-file so no stray .env is read
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself in -short mode; do not build.
		return m.Run()
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "permiso-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	if bin := os.Getenv("PERMISO_E2E_BINARY"); bin != "" {
		// Test a prebuilt binary (a release build, say) instead.
		binPath = bin
	} else {
		// The binary is built as operators build it. The race detector
		// covers the same handlers in the package tests (httpapi, oauth2,
		// ...), which run them with real stores under -race; instrumenting
		// this binary too makes every argon2id hash take seconds.
		// PERMISO_E2E_RACE=1 builds it with -race all the same.
		args := []string{"build", "-o", binPath, "./cmd/permiso"}
		if os.Getenv("PERMISO_E2E_RACE") == "1" {
			args = []string{"build", "-race", "-o", binPath, "./cmd/permiso"}
		}
		binPath = filepath.Join(dir, "permiso")
		args[len(args)-2] = binPath
		build := exec.Command("go", args...)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
	}
	emptyEnvFile = filepath.Join(dir, "empty.env")
	if err := os.WriteFile(emptyEnvFile, nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// repoDir is repoRoot for a test, which fails when the root cannot be
// found.
func repoDir(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// repoRoot finds the module root: `go env GOMOD` from the package
// directory, or two levels up from this file.
func repoRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the repository root")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod at %s: %w", root, err)
	}
	return root, nil
}

// ---------------------------------------------------------------------------
// Backends

// backend is a storage configuration every stateful test runs against.
type backend struct {
	name string
	// provision creates fresh, empty storage for one test, registers its
	// removal with t.Cleanup and returns the variables that point at it.
	provision func(t *testing.T) map[string]string
}

// env provisions fresh storage and returns its variables merged with
// extra (extra wins).
func (b backend) env(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	env := b.provision(t)
	maps.Copy(env, extra)
	return env
}

// backends returns "sqlite" always and "postgres+redis" when
// PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL are set.
func backends(t *testing.T) []backend {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tests start real servers; skipped in -short mode")
	}
	bs := []backend{sqliteBackend()}
	pg, rd := os.Getenv("PERMISO_TEST_DATABASE_URL"), os.Getenv("PERMISO_TEST_REDIS_URL")
	if pg != "" && rd != "" {
		bs = append(bs, backend{name: "postgres+redis", provision: func(t *testing.T) map[string]string {
			return provisionPostgresRedis(t, pg, rd)
		}})
	}
	return bs
}

// eachBackend runs test in a parallel subtest per backend (backends).
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// sqliteOnly is for tests whose subject does not depend on storage (request
// validation, discovery metadata): they run once, on SQLite.
func sqliteOnly(t *testing.T) backend {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tests start real servers; skipped in -short mode")
	}
	return sqliteBackend()
}

// sharedBackend is for tests of state shared by several instances: the
// PostgreSQL and Redis backend, or a skip without them.
func sharedBackend(t *testing.T) backend {
	t.Helper()
	for _, b := range backends(t) {
		if b.name == "postgres+redis" {
			return b
		}
	}
	t.Skip("needs PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL")
	return backend{}
}

func sqliteBackend() backend {
	return backend{name: "sqlite", provision: func(t *testing.T) map[string]string {
		return map[string]string{"DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "permiso.db")}
	}}
}

// connectPostgres connects to the PostgreSQL server at dsn (what names it
// in the failure) with a context that ends after timeout; done closes the
// connection and ends the context.
func connectPostgres(t *testing.T, dsn, what string, timeout time.Duration) (ctx context.Context, conn *pgx.Conn, done func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		cancel()
		t.Fatalf("connect to %s: %v", what, err)
	}
	return ctx, conn, func() {
		conn.Close(ctx)
		cancel()
	}
}

func provisionPostgresRedis(t *testing.T, adminURL, redisURL string) map[string]string {
	t.Helper()
	id := randomHex(t, 6)
	dbName := "permiso_e2e_" + id
	ctx, conn, done := connectPostgres(t, adminURL, "PERMISO_TEST_DATABASE_URL", 30*time.Second)
	_, err := conn.Exec(ctx, "CREATE DATABASE "+dbName)
	done()
	if err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", dbName, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop test database %s: connect: %v", dbName, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", dbName, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("PERMISO_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + dbName

	prefix := "permiso-e2e-" + id + ":"
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("PERMISO_TEST_REDIS_URL: %v", err)
	}
	t.Cleanup(func() {
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := deleteRedisPrefix(ctx, rdb, prefix); err != nil {
			t.Errorf("delete Redis keys %s*: %v", prefix, err)
		}
	})
	return map[string]string{
		"DATABASE_URL":            u.String(),
		"REDIS_URL":               redisURL,
		"CACHE_TOKEN_PREFIX":      prefix + "token:",
		"CACHE_SESSION_PREFIX":    prefix + "session:",
		"CACHE_RATE_LIMIT_PREFIX": prefix + "rate:",
		"CACHE_USER_PREFIX":       prefix + "user:",
	}
}

// redisKeyPrefix returns the per-test Redis prefix of env ("" without Redis).
func redisKeyPrefix(env map[string]string) string {
	if env["REDIS_URL"] == "" {
		return ""
	}
	p := env["CACHE_TOKEN_PREFIX"]
	return strings.TrimSuffix(p, "token:")
}

// countRedisKeys counts the keys under prefix in the test Redis.
func countRedisKeys(t *testing.T, prefix string) int {
	t.Helper()
	rdb := redisClient(t, os.Getenv("PERMISO_TEST_REDIS_URL"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return n
}

// deleteRedisPrefix deletes every key that starts with prefix.
func deleteRedisPrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := rdb.Del(ctx, batch...).Err(); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

// ---------------------------------------------------------------------------
// Server processes

// Server is one running `permiso serve` process.
type Server struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	// Env is every variable the process was started with (without PATH
	// and HOME); pass it to startServer again to restart against the
	// same storage, or to the CLI helpers.
	Env map[string]string

	cmd    *exec.Cmd
	stderr *testlog.Buffer
	client *http.Client
	exited chan struct{} // closed when the process has exited
	waitEr error         // the process's exit, valid after exited
	mu     sync.Mutex
	closed bool
}

// baseEnv is what every server starts from; a test's variables override it.
// The rate limits are generous so that the tests' own logins and refreshes
// never trip them, except in the tests about rate limits.
func baseEnv(t *testing.T) map[string]string {
	return map[string]string{
		"LOG_LEVEL":                "ERROR",
		"HOST":                     "127.0.0.1",
		"JWT_SECRET_KEY":           randomHex(t, 32),
		"MFA_ENCRYPTION_KEY":       randomHex(t, 32),
		"RATE_LIMIT_LOGIN":         "1000/minute",
		"RATE_LIMIT_REFRESH":       "1000/minute",
		"RATE_LIMIT_REGISTER":      "1000/minute",
		"RATE_LIMIT_SERVICE_TOKEN": "1000/minute",
		"RATE_LIMIT_API":           "100000/minute",
		// Many servers run at once against one PostgreSQL server
		// (max_connections 100 by default): at most 10 connections each.
		"DATABASE_POOL_SIZE":    "6",
		"DATABASE_MAX_OVERFLOW": "4",
	}
}

// processEnv is the complete environment of a child process: nothing from
// the test's own environment except PATH and HOME.
func processEnv(env map[string]string) []string {
	out := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		// A -race binary sleeps 1 s at exit by default; races still make
		// it exit with status 66.
		"GORACE=atexit_sleep_ms=0",
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

var errPortInUse = errors.New("port in use")

// startServer starts `permiso serve` on a free 127.0.0.1 port with a clean
// environment (PATH, HOME, baseEnv and env, which must name DATABASE_URL),
// waits until GET /health/live answers, and stops it with SIGTERM when the
// test ends, failing the test unless it exits with status 0. Its stderr is
// shown when the test fails.
func startServer(t *testing.T, env map[string]string) *Server {
	t.Helper()
	if env["DATABASE_URL"] == "" {
		t.Fatal("startServer: env has no DATABASE_URL (use backend.env)")
	}
	full := baseEnv(t)
	maps.Copy(full, env)
	full["HOST"] = "127.0.0.1"
	for attempt := 1; ; attempt++ {
		full["PORT"] = strconv.Itoa(freePort(t))
		s, err := launch(t, full)
		if errors.Is(err, errPortInUse) && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// listening reports whether the process pid holds a listening TCP socket
// on port (Linux: its socket inodes in /proc/<pid>/fd against the LISTEN
// entries of /proc/net/tcp and tcp6).
func listening(pid int, port string) bool {
	p, err := strconv.Atoi(port)
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEXIP:HEXPORT, st 0A is LISTEN, field 9 the inode.
			if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", p)) {
				continue
			}
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func launch(t *testing.T, env map[string]string) (*Server, error) {
	t.Helper()
	s := &Server{
		URL:    "http://127.0.0.1:" + env["PORT"],
		Env:    maps.Clone(env),
		stderr: &testlog.Buffer{},
		exited: make(chan struct{}),
		client: &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	s.cmd = exec.Command(binPath, "--env-file", emptyEnvFile, "serve")
	s.cmd.Env = processEnv(env)
	s.cmd.Stdout = s.stderr // serve prints nothing on stdout; keep it anyway
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start permiso serve: %w", err)
	}
	go func() {
		s.waitEr = s.cmd.Wait()
		close(s.exited)
	}()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.exited:
			out := s.stderr.String()
			if strings.Contains(out, "address already in use") {
				return nil, errPortInUse
			}
			return nil, fmt.Errorf("permiso serve exited before it was live (%v); stderr:\n%s", s.waitEr, out)
		default:
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-s.exited
			return nil, fmt.Errorf("permiso serve was not live within 90s; stderr:\n%s", s.stderr.String())
		}
		// Only this process may answer: between freePort and the bind
		// another test's server can take the port, and while this one is
		// still starting (an RSA key takes a while under -race) its
		// /health/live would be the other's.
		if !listening(s.cmd.Process.Pid, env["PORT"]) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		resp, err := s.client.Get(s.URL + "/health/live")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("stderr of permiso serve at %s:\n%s", s.URL, s.stderr.String())
		}
	})
	return s, nil
}

// stop sends SIGTERM and checks that the process exits 0 in time. It is
// idempotent: tests call it to restart a server, and Cleanup calls it again.
func (s *Server) stop(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.client.CloseIdleConnections()
	select {
	case <-s.exited:
		t.Errorf("permiso serve at %s exited on its own: %v", s.URL, s.waitEr)
		return
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM permiso serve: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("permiso serve at %s did not exit within 30s of SIGTERM", s.URL)
		return
	}
	if s.waitEr != nil {
		t.Errorf("permiso serve at %s: exit after SIGTERM: %v (want status 0)", s.URL, s.waitEr)
	}
	if strings.Contains(s.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("permiso serve at %s reported a data race", s.URL)
	}
}

// ---------------------------------------------------------------------------
// CLI

// cliResult is the outcome of one CLI invocation.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// runCLI runs the permiso binary with env (merged over baseEnv, like a
// server) and stdin, and returns its output and exit status.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	full := baseEnv(t)
	maps.Copy(full, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"--env-file", emptyEnvFile}, args...)...)
	cmd.Env = processEnv(full)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("run permiso %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(res.Stderr, "WARNING: DATA RACE") {
		t.Errorf("permiso %s reported a data race:\n%s", strings.Join(args, " "), res.Stderr)
	}
	return res
}

// cli runs the permiso binary against this server's configuration.
func (s *Server) cli(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLI(t, s.Env, stdin, args...)
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// createAdmin creates an administrator with `permiso create-admin
// --password-stdin` and returns its user id, read from the command's
// output.
func (s *Server) createAdmin(t *testing.T, username, email, password string) string {
	t.Helper()
	r := s.cli(t, password+"\n", "create-admin", "--username", username, "--email", email, "--password-stdin")
	if r.Code != 0 {
		t.Fatalf("permiso create-admin %s: exit %d\nstdout: %s\nstderr: %s", username, r.Code, r.Stdout, r.Stderr)
	}
	id := uuidRE.FindString(r.Stdout)
	if id == "" {
		t.Fatalf("permiso create-admin printed no user id: %q", r.Stdout)
	}
	return id
}

// ---------------------------------------------------------------------------
// HTTP

// Response is a fully read HTTP response.
type Response struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r *Response) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, r.Body)
}

// JSON decodes the body as one JSON object, failing the test otherwise.
func (r *Response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v", r, err)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", r, ct)
	}
	return m
}

// Decode decodes the JSON body into v.
func (r *Response) Decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: decode into %T: %v", r, v, err)
	}
}

// request describes one HTTP request for Server.do.
type request struct {
	method, path string
	body         io.Reader
	contentType  string
	bearer       string     // Authorization: Bearer ...
	basic        *[2]string // Authorization: Basic (client_id, secret)
	header       map[string]string
}

func (s *Server) do(t *testing.T, rq request) *Response {
	t.Helper()
	req, err := http.NewRequest(rq.method, s.URL+rq.path, rq.body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", rq.method, rq.path, err)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	if rq.basic != nil {
		// RFC 6749 2.3.1: form-urlencode both parts before Base64.
		req.SetBasicAuth(url.QueryEscape(rq.basic[0]), url.QueryEscape(rq.basic[1]))
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver stderr:\n%s", rq.method, rq.path, err, s.stderr.String())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.method, rq.path, err)
	}
	r := &Response{Method: rq.method, Path: rq.path, Status: resp.StatusCode, Header: resp.Header, Body: body}
	// Every response carries X-Request-Id (docs/api.md).
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id header", r)
	}
	return r
}

// get sends GET path, with a bearer token unless bearer is "".
func (s *Server) get(t *testing.T, path, bearer string) *Response {
	t.Helper()
	return s.do(t, request{method: http.MethodGet, path: path, bearer: bearer})
}

// postForm sends an application/x-www-form-urlencoded POST, with HTTP
// Basic client authentication unless basic is nil.
func (s *Server) postForm(t *testing.T, path string, form url.Values, basic *[2]string) *Response {
	t.Helper()
	return s.do(t, request{method: http.MethodPost, path: path, body: strings.NewReader(form.Encode()),
		contentType: "application/x-www-form-urlencoded", basic: basic})
}

// postFormBearer sends a form POST with a bearer token.
func (s *Server) postFormBearer(t *testing.T, path string, form url.Values, bearer string) *Response {
	t.Helper()
	return s.do(t, request{method: http.MethodPost, path: path, body: strings.NewReader(form.Encode()),
		contentType: "application/x-www-form-urlencoded", bearer: bearer})
}

// postJSON sends body as JSON, with a bearer token unless bearer is "". A
// nil body sends an empty POST without Content-Type.
func (s *Server) postJSON(t *testing.T, path string, body any, bearer string) *Response {
	t.Helper()
	if body == nil { // no body at all, as the original's clients sent to /auth/logout
		return s.do(t, request{method: http.MethodPost, path: path, bearer: bearer})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, request{method: http.MethodPost, path: path, body: bytes.NewReader(b), contentType: "application/json", bearer: bearer})
}

// ---------------------------------------------------------------------------
// Routes that do not exist yet

var routeProbes sync.Map // "METHOD path" -> bool (exists)

// requireRoute fails the test when the server answers 404 or 405 for
// method+path, with a message naming the missing route (clearer than the
// failures the test would run into). It probes once per run (every server
// runs the same binary); a POST probe sends an empty form.
func requireRoute(t *testing.T, s *Server, method, path string) {
	t.Helper()
	key := method + " " + path
	exists, ok := routeProbes.Load(key)
	if !ok {
		rq := request{method: method, path: path}
		if method == http.MethodPost || method == http.MethodPut {
			rq.body = strings.NewReader("")
			rq.contentType = "application/x-www-form-urlencoded"
		}
		r := s.do(t, rq)
		exists = r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed
		routeProbes.Store(key, exists)
	}
	if !exists.(bool) {
		t.Fatalf("route missing: %s %s answers 404/405", method, path)
	}
}

// requireCommand fails the test when the CLI does not know the command
// (exit status 2 with "unknown command").
func requireCommand(t *testing.T, r cliResult, name string) {
	t.Helper()
	if r.Code == 2 && strings.Contains(r.Stderr, "unknown command") {
		t.Fatalf("command missing: permiso %s", name)
	}
}

// ---------------------------------------------------------------------------
// OAuth helpers

const (
	apiPrefix    = "/api/v1"
	pathToken    = apiPrefix + "/auth/token"
	pathRefresh  = apiPrefix + "/auth/refresh"
	pathService  = apiPrefix + "/auth/service-token"
	pathIntro    = apiPrefix + "/auth/introspect"
	pathRevoke   = apiPrefix + "/auth/revoke"
	pathLogout   = apiPrefix + "/auth/logout"
	pathRegister = apiPrefix + "/users/register"
	pathClients  = apiPrefix + "/service-clients"
	pathScopes   = apiPrefix + "/roles/scopes"
	pathASMeta   = "/.well-known/oauth-authorization-server"
	pathOIDCMeta = "/.well-known/openid-configuration"
	pathJWKS     = "/.well-known/jwks.json"
)

// seededScopes are the scopes the migrations seed; role admin has them all.
var seededScopes = []string{
	"admin:audit", "admin:clients", "admin:logs", "admin:permissions", "admin:security",
	"admin:sessions", "admin:system", "admin:tokens", "admin:users", "read:profile", "write:profile",
}

// tokenResponse is a successful token endpoint response (RFC 6749 5.1).
type tokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int     `json:"expires_in"`
	Scope        string  `json:"scope"`
	RefreshToken string  `json:"refresh_token"`
	SessionID    *string `json:"session_id"`
}

// tryLogin sends a password grant and returns the raw response.
func (s *Server) tryLogin(t *testing.T, username, password, scope string) *Response {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return s.postForm(t, pathToken, form, nil)
}

// login sends a password grant that must succeed.
func (s *Server) login(t *testing.T, username, password, scope string) tokenResponse {
	t.Helper()
	r := s.tryLogin(t, username, password, scope)
	return mustTokens(t, r, true)
}

// mustTokens checks a successful token response and decodes it.
func mustTokens(t *testing.T, r *Response, wantRefresh bool) tokenResponse {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	assertNoStore(t, r)
	var tr tokenResponse
	r.Decode(t, &tr)
	if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 {
		t.Fatalf("%s: want access_token, token_type Bearer, expires_in > 0", r)
	}
	if wantRefresh && tr.RefreshToken == "" {
		t.Fatalf("%s: no refresh_token", r)
	}
	return tr
}

// refresh sends the refresh_token grant to the token endpoint.
func (s *Server) refresh(t *testing.T, refreshToken, scope string) *Response {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return s.postForm(t, pathToken, form, nil)
}

// introspect asks about token with the caller's bearer token (form body).
func (s *Server) introspect(t *testing.T, callerBearer, token string) *Response {
	t.Helper()
	return s.postFormBearer(t, pathIntro, url.Values{"token": {token}}, callerBearer)
}

// assertActive checks an introspection response for an active token and
// returns it.
func assertActive(t *testing.T, r *Response) map[string]any {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	m := r.JSON(t)
	if m["active"] != true {
		t.Fatalf("%s: want active true", r)
	}
	return m
}

// assertInactive checks that an introspection response is exactly
// {"active":false} (RFC 7662 §2.2).
func assertInactive(t *testing.T, r *Response) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	m := r.JSON(t)
	if len(m) != 1 || m["active"] != false {
		t.Fatalf("%s: want exactly {\"active\":false}", r)
	}
}

// assertBearerAccepted checks that token works as a bearer token, by
// introspecting itself (a user may ask about their own token; this works for
// user and service tokens alike, unlike GET /users/me).
func (s *Server) assertBearerAccepted(t *testing.T, token string) {
	t.Helper()
	assertActive(t, s.introspect(t, token, token))
}

// assertBearerRejected checks that token is refused as a bearer token with
// 401 and WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 3.1).
func (s *Server) assertBearerRejected(t *testing.T, token string) {
	t.Helper()
	r := s.introspect(t, token, token)
	assertInvalidToken(t, r)
}

// assertSessionEnded checks that tok's access token is rejected and its
// refresh token refused (invalid_grant).
func (s *Server) assertSessionEnded(t *testing.T, tok tokenResponse) {
	t.Helper()
	s.assertBearerRejected(t, tok.AccessToken)
	assertOAuthError(t, s.refresh(t, tok.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
}

func assertInvalidToken(t *testing.T, r *Response) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: want 401 for a dead or invalid bearer token", r)
	}
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") || !strings.Contains(h, `error="invalid_token"`) {
		t.Errorf("%s: WWW-Authenticate %q, want Bearer ... error=\"invalid_token\"", r, h)
	}
	if m := r.JSON(t); m["error"] != "invalid_token" {
		t.Errorf("%s: error %v, want invalid_token", r, m["error"])
	}
}

// assertOAuthError checks an RFC 6749 5.2 error response.
func assertOAuthError(t *testing.T, r *Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: want %d %s", r, status, code)
	}
	m := r.JSON(t)
	if m["error"] != code {
		t.Fatalf("%s: error %v, want %s", r, m["error"], code)
	}
	assertNoStore(t, r)
	return m
}

// assertNoStore checks the caching headers of OAuth endpoints (RFC 6749
// §5.1).
func assertNoStore(t *testing.T, r *Response) {
	t.Helper()
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s: Cache-Control %q, want no-store", r, cc)
	}
	if p := r.Header.Get("Pragma"); p != "no-cache" {
		t.Errorf("%s: Pragma %q, want no-cache", r, p)
	}
}

// withoutRequestID returns the JSON body without its request_id, for
// comparing two error bodies.
func withoutRequestID(t *testing.T, r *Response) map[string]any {
	t.Helper()
	m := r.JSON(t)
	delete(m, "request_id")
	return m
}

// decodeJWT returns the header and claims of a compact JWS without
// verifying it (the verification tests use go-jose).
func decodeJWT(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	testjwt.Decode(t, token, testjwt.Header, &header)
	testjwt.Decode(t, token, testjwt.Payload, &claims)
	return header, claims
}

// num returns a JSON number as int64, failing when v is not an integer.
func num(t *testing.T, v any, what string) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s: %v (%T) is not a number", what, v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v is not an integer", what, v)
	}
	return i
}

// strs converts a JSON array of strings.
func strs(t *testing.T, v any, what string) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: %v (%T) is not an array", what, v, v)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%s[%d]: %v is not a string", what, i, x)
		}
		out[i] = s
	}
	return out
}

// ---------------------------------------------------------------------------
// Users and clients through the API (issues 4 and 5)

// register creates a plain user through POST /api/v1/users/register (the
// original's UserCreate body) and returns its id.
func (s *Server) register(t *testing.T, username, email, password string) string {
	t.Helper()
	r := s.postJSON(t, pathRegister, map[string]any{"username": username, "email": email, "password": password}, "")
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	m := r.JSON(t)
	id, _ := m["id"].(string)
	if !uuidRE.MatchString(id) {
		t.Fatalf("%s: no user id", r)
	}
	return id
}

// scopeIDs looks up scope ids by name through GET /api/v1/roles/scopes.
func (s *Server) scopeIDs(t *testing.T, adminBearer string, names ...string) []string {
	t.Helper()
	r := s.get(t, pathScopes+"?per_page=100", adminBearer)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	var list struct {
		Scopes []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"scopes"`
	}
	r.Decode(t, &list)
	var ids []string
	for _, n := range names {
		found := false
		for _, sc := range list.Scopes {
			if sc.Name == n {
				ids = append(ids, sc.ID)
				found = true
			}
		}
		if !found {
			t.Fatalf("scope %q not listed by %s", n, pathScopes)
		}
	}
	return ids
}

// createClient creates a confidential service client through POST
// /api/v1/service-clients (the original's ServiceClientCreate body) with
// the named scopes and returns its client_id and the secret shown once.
func (s *Server) createClient(t *testing.T, adminBearer, clientID string, lifetime int, scopes ...string) (string, string) {
	t.Helper()
	body := map[string]any{
		"name":                  "e2e " + clientID,
		"client_id":             clientID,
		"client_type":           "confidential",
		"scope_ids":             s.scopeIDs(t, adminBearer, scopes...),
		"access_token_lifetime": lifetime,
	}
	r := s.postJSON(t, pathClients, body, adminBearer)
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	var created struct {
		Client struct {
			ClientID string `json:"client_id"`
		} `json:"client"`
		ClientSecret string `json:"client_secret"`
	}
	r.Decode(t, &created)
	if created.Client.ClientID != clientID || created.ClientSecret == "" {
		t.Fatalf("%s: want client.client_id %q and a client_secret", r, clientID)
	}
	return created.Client.ClientID, created.ClientSecret
}

// ---------------------------------------------------------------------------
// Small utilities

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// strongPassword satisfies the default password policy.
const strongPassword = "Tq8#vLm2!pZr-e2e-Kx4"
