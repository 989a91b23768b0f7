package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/internal/testtool"
)

// The deployment files of deploy/ and scripts/, checked without Docker.
// scripts/compose_e2e.sh runs the same stack for real (.ci/run).

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	root := repoDir(t)
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// composeFile is the part of deploy/docker-compose.prod.yml the tests read.
type composeFile struct {
	Services map[string]struct {
		Build *struct {
			Context    string            `yaml:"context"`
			Dockerfile string            `yaml:"dockerfile"`
			Args       map[string]string `yaml:"args"`
		} `yaml:"build"`
		Image       string   `yaml:"image"`
		EnvFile     string   `yaml:"env_file"`
		Environment []string `yaml:"environment"`
		Secrets     []string `yaml:"secrets"`
		Ports       []string `yaml:"ports"`
		Networks    []string `yaml:"networks"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func loadCompose(t *testing.T) (composeFile, map[string]any) {
	t.Helper()
	src := readRepoFile(t, "deploy/docker-compose.prod.yml")
	var c composeFile
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := yaml.Unmarshal([]byte(src), &top); err != nil {
		t.Fatal(err)
	}
	return c, top
}

// TestComposeFileWorksWithComposeV1 holds the compose file to what
// Debian's docker-compose 1.29 (the guide's command) accepts, and to the
// build passing the version.
func TestComposeFileWorksWithComposeV1(t *testing.T) {
	t.Parallel()
	c, top := loadCompose(t)
	for k := range top {
		// Compose v1 rejects any other top-level key (a `name:` above all).
		if !slices.Contains([]string{"version", "services", "volumes", "networks", "secrets", "configs"}, k) {
			t.Errorf("top-level key %q: docker-compose 1.29 rejects the file", k)
		}
	}
	app := c.Services["app"]
	if app.Build == nil || app.Build.Args["VERSION"] == "" {
		t.Errorf("the app's build passes no VERSION build argument: /health would say dev")
	}
	if len(app.Ports) != 0 {
		t.Errorf("app publishes ports %v: nginx must be the only way in (and a second instance could not start)", app.Ports)
	}
	if !slices.Contains(app.Environment, "VERSION=") {
		t.Errorf("app environment must blank VERSION so the image's own version is shown, not .env's")
	}
}

// TestComposeSecretsWinOverGuideDotenv: the guide's .env (which sets
// JWT_SECRET_KEY and REDIS_PASSWORD) given to the app as Compose does it
// (env_file, then the service's environment on top) loads without the
// "both NAME and NAME_FILE are set" start-up error, and the secrets come
// from the secret files.
func TestComposeSecretsWinOverGuideDotenv(t *testing.T) {
	t.Parallel()
	c, _ := loadCompose(t)
	app := c.Services["app"]
	if app.EnvFile == "" {
		t.Fatal("the app has no env_file: the operator's .env would not reach it")
	}
	env := map[string]string{}
	for _, line := range strings.Split(readRepoFile(t, "e2e/testdata/guide.env"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			env[k] = v
		}
	}
	env["PUBLIC_URL"] = "https://yourdomain.com"
	if env["JWT_SECRET_KEY"] == "" || env["REDIS_PASSWORD"] == "" {
		t.Fatal("testdata/guide.env lost the guide's JWT_SECRET_KEY or REDIS_PASSWORD")
	}
	// The secret files, where the compose file mounts them.
	dir := t.TempDir()
	secrets := map[string]string{
		"jwt_secret":     randomHex(t, 32),
		"db_password":    "db-secret",
		"redis_password": "redis-secret",
	}
	for _, name := range app.Secrets {
		if _, ok := c.Secrets[name]; !ok {
			t.Errorf("app uses secret %q that is not declared", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secrets[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range app.Environment {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = strings.ReplaceAll(v, "/run/secrets", dir)
	}
	cfg, _, err := config.Load(config.MapEnv(env), "", false)
	if err != nil {
		t.Fatalf("the app would not start with the guide's .env:\n%v", err)
	}
	if cfg.JWTSecretKey != secrets["jwt_secret"] || cfg.RedisPassword != "redis-secret" {
		t.Errorf("secrets not taken from the files: JWT %q, Redis %q", cfg.JWTSecretKey, cfg.RedisPassword)
	}
	if !strings.Contains(cfg.DatabaseURL, "@db:5432/permiso_prod") {
		t.Errorf("DATABASE_URL = %q", cfg.DatabaseURL)
	}
	if cfg.MetadataIssuer() != "https://yourdomain.com" {
		t.Errorf("advertised issuer %q, want PUBLIC_URL", cfg.MetadataIssuer())
	}
	// Without PUBLIC_URL the guide's non-URL issuer is a start-up error,
	// not an issuer that changes with the instance behind nginx.
	delete(env, "PUBLIC_URL")
	if _, _, err := config.Load(config.MapEnv(env), "", false); err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") {
		t.Errorf("the guide's .env without PUBLIC_URL: err = %v, want a start-up error naming PUBLIC_URL", err)
	}
}

// TestDockerfileNeedsNoBuildKitNorPackages: the classic builder can build
// it offline, and the runtime stage holds only the binary and its files.
func TestDockerfileNeedsNoBuildKitNorPackages(t *testing.T) {
	t.Parallel()
	src := readRepoFile(t, "deploy/Dockerfile")
	for _, bad := range []string{"# syntax=", "--mount=", "COPY --link", "<<EOF", "--chmod="} {
		if strings.Contains(src, bad) {
			t.Errorf("Dockerfile uses %q (BuildKit only)", bad)
		}
	}
	stages := regexp.MustCompile(`(?m)^FROM `).Split(src, -1)
	runtime := stages[len(stages)-1]
	if !strings.HasPrefix(runtime, "scratch") {
		t.Errorf("runtime stage is FROM %s, want scratch", strings.SplitN(runtime, "\n", 2)[0])
	}
	if regexp.MustCompile(`(?m)^RUN `).MatchString(runtime) {
		t.Error("the runtime stage runs commands: it must need nothing from a package manager")
	}
	if !strings.Contains(runtime, `HEALTHCHECK`) || !strings.Contains(runtime, `"health"`) {
		t.Error("the runtime HEALTHCHECK must be `permiso health` (no curl or wget in the image)")
	}
	ignore := strings.Split(readRepoFile(t, ".dockerignore"), "\n")
	for _, want := range [][]string{{".git"}, {"**/.env"}, {"deploy", "deploy/secrets"}} {
		if !slices.ContainsFunc(want, func(w string) bool { return slices.Contains(ignore, w) }) {
			t.Errorf(".dockerignore does not list %s", want[0])
		}
	}
}

// TestBackupScript: scripts/backup_db.sh never guesses a database (cron
// has no .env), fails on a database without permiso's tables, and leaves
// no file that looks like a backup when it fails.
func TestBackupScript(t *testing.T) {
	t.Parallel()
	root := repoDir(t)
	script := filepath.Join(root, "scripts", "backup_db.sh")
	run := func(env ...string) (string, error) {
		cmd := exec.Command("bash", script)
		work := t.TempDir() // cron's working directory: no .env
		cmd.Dir = work
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "PERMISO_BIN=" + binPath}, env...)
		out, err := cmd.CombinedOutput()
		if _, statErr := os.Stat(filepath.Join(work, "permiso.db")); statErr == nil {
			t.Errorf("the script created permiso.db in its working directory")
		}
		return string(out), err
	}
	backups := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*"))
		h, _ := filepath.Glob(filepath.Join(dir, ".*"))
		return append(m, h...)
	}

	dir := t.TempDir()
	out, err := run("BACKUP_DIR=" + dir)
	if err == nil || !strings.Contains(out, "DATABASE_URL") {
		t.Errorf("without a database: err=%v, output %q; want a refusal naming DATABASE_URL", err, out)
	}
	if f := backups(dir); len(f) > 0 {
		t.Errorf("refused backup left %v", f)
	}

	// A database without permiso's tables: a failed backup.
	empty := filepath.Join(t.TempDir(), "empty.db")
	out, err = run("BACKUP_DIR="+dir, "DATABASE_URL=sqlite:///"+empty)
	if err == nil || strings.Contains(out, "Backup completed") {
		t.Errorf("empty database: err=%v, output %q; want a failure", err, out)
	}
	if f := backups(dir); len(f) > 0 {
		t.Errorf("failed backup left %v", f)
	}

	// A real one, named by an env file.
	dbPath := filepath.Join(t.TempDir(), "real.db")
	envFile := filepath.Join(t.TempDir(), "prod.env")
	if err := os.WriteFile(envFile, []byte("DATABASE_URL=sqlite:///"+dbPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, map[string]string{"DATABASE_URL": "sqlite:///" + dbPath}, "", "migrate", "up"); r.Code != 0 {
		t.Fatalf("migrate up: exit %d\n%s", r.Code, r.Stderr)
	}
	out, err = run("BACKUP_DIR="+dir, "PERMISO_ENV_FILE="+envFile)
	if err != nil || !strings.Contains(out, "Backup completed") {
		t.Fatalf("backup of a migrated database: %v\n%s", err, out)
	}
	f := backups(dir)
	if len(f) != 1 || !strings.HasSuffix(f[0], ".sql.gz") {
		t.Fatalf("backup files %v, want one .sql.gz", f)
	}
	gz, err := os.Open(f[0])
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(b, []byte("CREATE TABLE")) {
		t.Errorf("backup is not a readable copy with tables (%v)", err)
	}
}

// TestLogrotateOnPlainHost: deploy/logrotate/permiso is valid on a host
// without user 10001 and names real paths, and rotates a log it does not
// own without changing the owner.
func TestLogrotateOnPlainHost(t *testing.T) {
	t.Parallel()
	lr := testtool.Require(t, "logrotate", "apt-get install -y logrotate", "CI", "PERMISO_TEST_REQUIRE_REDIS_SERVER")
	conf := readRepoFile(t, "deploy/logrotate/permiso")
	if strings.Contains(conf, "/path/to") {
		t.Error("deploy/logrotate/permiso holds /path/to placeholders")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	root := repoDir(t)
	out, err := exec.Command(lr, "-d", "-s", state, filepath.Join(root, "deploy/logrotate/permiso")).CombinedOutput()
	if err != nil || strings.Contains(string(out), "error:") {
		t.Fatalf("logrotate -d: %v\n%s", err, out)
	}
	// A real rotation of a copy pointed at a temporary log directory.
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logs, "app.log"), []byte("line\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	copyConf := filepath.Join(dir, "permiso.conf")
	// The postrotate script needs Docker; the rotation itself is tested here.
	body := strings.ReplaceAll(conf, "/var/log/permiso", logs)
	body = regexp.MustCompile(`(?s)postrotate.*endscript`).ReplaceAllString(body, "")
	if err := os.WriteFile(copyConf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lr, "-f", "-s", state, copyConf).CombinedOutput(); err != nil {
		t.Fatalf("logrotate -f: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(logs, "app.log.1")); err != nil {
		t.Errorf("app.log not rotated: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logs, "app.log")); err != nil {
		t.Errorf("no new app.log created: %v", err)
	}
}

// TestNginxConfig: nginx leaves the per-grant limits to permiso, answers
// its own errors in the API's JSON envelope with Retry-After, serves
// ECDSA and RSA certificates, finds restarted instances, and keeps
// /metrics inside.
func TestNginxConfig(t *testing.T) {
	t.Parallel()
	conf := readRepoFile(t, "deploy/nginx/nginx.conf")
	zones := regexp.MustCompile(`limit_req_zone\s+\S+\s+zone=(\w+):\S+\s+rate=(\d+)r/(s|m);`).FindAllStringSubmatch(conf, -1)
	if len(zones) != 1 {
		t.Errorf("limit_req zones %v: want one per-address ceiling (per-grant limits are permiso's)", zones)
	}
	for _, z := range zones {
		if rate, _ := strconv.Atoi(z[2]); z[3] != "s" || rate < 10 {
			t.Errorf("zone %s: %s r/%s is not a generous ceiling", z[1], z[2], z[3])
		}
	}
	for _, code := range []string{"429", "502", "503"} {
		if !regexp.MustCompile(`error_page[^;]*\b` + code + `\b`).MatchString(conf) {
			t.Errorf("no error_page for nginx's own %s", code)
		}
		if !regexp.MustCompile(`return ` + code + ` '\{"error":"\w+","error_description":"[^"]+","request_id":"\$permiso_request_id"\}`).MatchString(conf) {
			t.Errorf("nginx's %s is not in the JSON error envelope", code)
		}
	}
	if strings.Count(conf, "add_header Retry-After") < 3 {
		t.Error("nginx's 429/502/503 must carry Retry-After")
	}
	m := regexp.MustCompile(`ssl_ciphers\s+([^;]+);`).FindStringSubmatch(conf)
	if m == nil || !strings.Contains(m[1], "ECDHE-ECDSA-") || !strings.Contains(m[1], "ECDHE-RSA-") {
		t.Errorf("ssl_ciphers %v must serve both ECDSA and RSA certificates over TLS 1.2", m)
	}
	if strings.Contains(conf, "GCM-SHA512") {
		t.Error("ssl_ciphers names suites that do not exist (…-GCM-SHA512)")
	}
	metrics := regexp.MustCompile(`(?s)location /metrics \{(.*?)\}`).FindStringSubmatch(conf)
	if metrics == nil || strings.Contains(metrics[1], "proxy_pass") {
		t.Error("nginx must not pass /metrics on; Prometheus scrapes on the monitoring network")
	}
	if !strings.Contains(conf, "resolver 127.0.0.11") {
		t.Error("nginx must look the app instances up again (resolver), or a restarted instance is lost")
	}
	c, _ := loadCompose(t)
	if !slices.Contains(c.Services["app"].Networks, "monitoring") || slices.Contains(c.Services["nginx"].Networks, "monitoring") {
		t.Error("the app must be on the monitoring network, nginx not")
	}
}

// TestAlertsUseExportedMetrics: every alert rule reads a metric something
// in the stack exports (permiso, Go runtime, process, Prometheus's up).
func TestAlertsUseExportedMetrics(t *testing.T) {
	t.Parallel()
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "deploy/monitoring/alerts.yml")), &doc); err != nil {
		t.Fatal(err)
	}
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords := map[string]bool{"sum": true, "rate": true, "increase": true, "clamp_min": true, "time": true,
		"by": true, "without": true, "and": true, "or": true, "unless": true, "max": true, "min": true, "avg": true}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			// Drop label matchers and range selectors, keep names.
			expr := regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`).ReplaceAllString(r.Expr, " ")
			for _, name := range ident.FindAllString(expr, -1) {
				if keywords[name] || regexp.MustCompile(`^\d`).MatchString(name) || name == "e9" {
					continue
				}
				if !regexp.MustCompile(`^(permiso_|process_|go_|up$)`).MatchString(name) {
					t.Errorf("alert %s reads %s, which nothing in the stack exports", r.Alert, name)
				}
			}
		}
	}
}

// TestSmokeTestsCatchAWanderingIssuer: behind a load balancer whose
// instances advertise different issuers, scripts/smoke_tests.sh fails.
func TestSmokeTestsCatchAWanderingIssuer(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "python3", "apt-get install -y python3", "CI")
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			fmt.Fprint(w, `{"status":"healthy"}`)
		case "/.well-known/oauth-authorization-server":
			port := 8000 + n.Add(1)%2
			fmt.Fprintf(w, `{"issuer":"http://localhost:%d"}`, port)
		case "/.well-known/jwks.json":
			fmt.Fprint(w, `{"keys":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	root := repoDir(t)
	// The balancer's public name, not 127.0.0.1, as an operator types it.
	base := strings.Replace(srv.URL, "127.0.0.1", "lb.test", 1)
	host := strings.TrimPrefix(base, "http://")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "smoke_tests.sh"))
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "CURL_ARGS=--resolve "+host+":127.0.0.1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "issuer") {
		t.Fatalf("smoke_tests.sh passed with instances advertising their own addresses:\n%s", out)
	}
}

// TestContainerBuildHasNoSQLite builds permiso as deploy/Dockerfile does
// (-tags nosqlite, docs/deployment.md, "The image"): it says which
// databases it supports, and a SQLite DATABASE_URL is a clear start-up
// error, not a silent fallback.
func TestContainerBuildHasNoSQLite(t *testing.T) {
	t.Parallel()
	root := repoDir(t)
	builds := 0
	for _, line := range strings.Split(readRepoFile(t, "deploy/Dockerfile"), "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			builds++
			if !strings.Contains(line, "-tags nosqlite") {
				t.Errorf("deploy/Dockerfile builds without -tags nosqlite: %s", line)
			}
		}
	}
	if builds != 2 {
		t.Errorf("deploy/Dockerfile has %d go build lines, want 2", builds)
	}
	bin := filepath.Join(t.TempDir(), "permiso")
	build := exec.Command("go", "build", "-tags", "nosqlite", "-o", bin, "./cmd/permiso")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nosqlite: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "databases: postgresql)") {
		t.Errorf("version: %v %q", err, out)
	}
	dir := t.TempDir()
	serve := exec.Command(bin, "--env-file", emptyEnvFile, "serve")
	serve.Dir = dir
	serve.Env = []string{"DATABASE_URL=sqlite:///" + filepath.Join(dir, "p.db"), "PORT=0", "PATH=" + os.Getenv("PATH")}
	out, err = serve.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "this build of permiso has no SQLite backend") {
		t.Errorf("serve with SQLite: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "p.db")); err == nil {
		t.Error("a database file was created")
	}
}
