package config

import (
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// strongKey is a 64-hex-digit key that passes every check.
const strongKey = "3f9a1c7e5b2d4086a1e3c5b7d9f1a3c5e7092b4d6f8a0c2e4f6a8b0d2c4e6f8a"

// load runs Load over a map environment and no .env file.
func load(t *testing.T, env map[string]string) (Config, []string, error) {
	t.Helper()
	return Load(MapEnv(env), "", false)
}

// mustLoad fails the test on any error.
func mustLoad(t *testing.T, env map[string]string) (Config, []string) {
	t.Helper()
	c, w, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, w
}

// errVars lists the variables named by err's problems.
func errVars(err error) []string {
	var es Errors
	if !errors.As(err, &es) {
		return nil
	}
	return es.Vars()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, warnings, err := Load(nil, "", false)
	if err != nil {
		t.Fatalf("Load with no configuration: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings with no configuration: %q", warnings)
	}
	if want := Defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("Load() = %+v\nwant Defaults() = %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr(), "0.0.0.0:8000"},
		{"PublicURL", c.PublicURL, "http://localhost:8000"},
		{"DatabaseDriver", c.DatabaseDriver(), "sqlite"},
		{"SQLitePath", c.SQLitePath(), "permiso.db"},
		{"PoolMax", c.PoolMax(), 30},
		{"Issuer", c.Issuer(), "permiso-auth"},
		{"Audience", c.Audience(), "permiso-auth"},
		{"IsProduction", c.IsProduction(), false},
		{"AccessTokenExpire", c.AccessTokenExpire, 15 * time.Minute},
		{"RefreshTokenExpire", c.RefreshTokenExpire, 30 * 24 * time.Hour},
		{"ServiceTokenExpire", c.ServiceTokenExpire, 15 * time.Minute},
		{"RefreshTokenReuseGrace", c.RefreshTokenReuseGrace, 10 * time.Second},
		{"LockoutDuration", c.LockoutDuration, 30 * time.Minute},
		{"CacheDefaultTTL", c.CacheDefaultTTL, time.Hour},
		{"ShutdownTimeout", c.ShutdownTimeout, 20 * time.Second},
		{"RateLimitLogin", c.RateLimitLogin, RateLimit{5, time.Minute}},
		{"RateLimitRegister", c.RateLimitRegister, RateLimit{3, time.Hour}},
		{"RateLimitAPI", c.RateLimitAPI, RateLimit{1000, time.Minute}},
		{"RateLimitRefresh", c.RateLimitRefresh, RateLimit{10, time.Minute}},
		{"RateLimitServiceToken", c.RateLimitServiceToken, RateLimit{50, time.Minute}},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"TrustedProxies", c.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{"AllowedMethods", c.AllowedMethods, []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"}},
		{"AllowedHeaders", c.AllowedHeaders, []string{"*"}},
		{"DocsURL", c.DocsURL, "/docs"},
		{"OpenAPIURL", c.OpenAPIURL, "/openapi.json"},
		{"Version", c.Version, ""},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if c.PasswordHashConcurrency < 1 {
		t.Errorf("PasswordHashConcurrency = %d", c.PasswordHashConcurrency)
	}
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Errorf("Defaults().Validate() = %v", err)
	}
}

// Writing every documented default into the environment must give the
// same configuration as setting nothing.
func TestVariablesDefaultsAreDefaults(t *testing.T) {
	env := map[string]string{}
	for _, v := range Variables() {
		if v.Default != "" {
			env[v.Name] = v.Default
		}
	}
	c, _ := mustLoad(t, env)
	if want := Defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("Load(documented defaults) = %+v\nwant %+v", c, want)
	}
}

func TestVariablesStableAndUnique(t *testing.T) {
	a, b := Variables(), Variables()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Variables() is not stable")
	}
	seen := map[string]bool{}
	for _, v := range a {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	// Brief-named settings beyond the guide.
	for _, name := range []string{"AUTO_MIGRATE", "SHUTDOWN_TIMEOUT_SECONDS", "TRUSTED_PROXIES",
		"REFRESH_TOKEN_REUSE_GRACE_SECONDS", "JWT_AUDIENCE", "REVOCATION_FAIL_OPEN",
		"ALLOW_SQLITE_IN_PRODUCTION", "PUBLIC_URL", "JWT_PREVIOUS_SECRET_KEYS", "SMTP_HOST",
		"SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS",
		"AUDIT_RETENTION_DAYS", "PASSWORD_HASH_CONCURRENCY", "PASSWORD_HASH_MEMORY_KIB",
		"PASSWORD_HASH_ITERATIONS"} {
		if !seen[name] {
			t.Errorf("%s missing from Variables()", name)
		}
	}
}

// guideVariables is every variable the production deployment guide sets
// for the permiso container (its .env block, its docker-compose app
// environment and its "Application Tuning" block), copied from the guide.
// DB_PASSWORD and POSTGRES_* in the guide belong to the compose file and
// the postgres container, not to permiso.
var guideVariables = []string{
	"APP_NAME", "VERSION", "DEBUG", "ENVIRONMENT",
	"HOST", "PORT",
	"DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW", "DATABASE_ECHO",
	"REDIS_URL", "REDIS_PASSWORD", "REDIS_DECODE_RESPONSES",
	"JWT_SECRET_KEY", "JWT_ALGORITHM", "JWT_ISSUER", "ACCESS_TOKEN_EXPIRE_MINUTES",
	"REFRESH_TOKEN_EXPIRE_DAYS", "SERVICE_TOKEN_EXPIRE_MINUTES",
	"PASSWORD_MIN_LENGTH", "PASSWORD_MAX_LENGTH", "PASSWORD_REQUIRE_UPPERCASE",
	"PASSWORD_REQUIRE_LOWERCASE", "PASSWORD_REQUIRE_DIGITS", "PASSWORD_REQUIRE_SPECIAL",
	"PASSWORD_PREVENT_REUSE_COUNT", "PASSWORD_MAX_AGE_DAYS",
	"RATE_LIMIT_LOGIN", "RATE_LIMIT_REGISTER", "RATE_LIMIT_API", "RATE_LIMIT_REFRESH",
	"RATE_LIMIT_SERVICE_TOKEN",
	"MAX_LOGIN_ATTEMPTS", "LOCKOUT_DURATION_MINUTES",
	"ALLOWED_ORIGINS", "ALLOWED_METHODS", "ALLOWED_HEADERS", "ALLOW_CREDENTIALS", "ALLOWED_HOSTS",
	"LOG_LEVEL", "LOG_FORMAT", "LOG_FILE",
	"ENABLE_METRICS", "METRICS_PATH",
	"CACHE_TOKEN_PREFIX", "CACHE_SESSION_PREFIX", "CACHE_RATE_LIMIT_PREFIX", "CACHE_USER_PREFIX",
	"CACHE_DEFAULT_TTL",
	"API_V1_PREFIX", "DOCS_URL", "REDOC_URL", "OPENAPI_URL",
	"UVICORN_WORKERS", "UVICORN_MAX_REQUESTS", "UVICORN_MAX_REQUESTS_JITTER",
}

// guideDotenv is the guide's .env block, verbatim.
const guideDotenv = `# Application
APP_NAME=permiso Authentication API
VERSION=1.0.0
DEBUG=false
ENVIRONMENT=production

# Server
HOST=0.0.0.0
PORT=8000

# Database
DATABASE_URL=postgresql+asyncpg://permiso:secure_password@db:5432/permiso_prod
DATABASE_POOL_SIZE=20
DATABASE_MAX_OVERFLOW=10
DATABASE_ECHO=false

# Redis
REDIS_URL=redis://redis:6379/0
REDIS_PASSWORD=secure_redis_password
REDIS_DECODE_RESPONSES=true

# JWT Configuration
JWT_SECRET_KEY=your-super-secure-jwt-secret-key-here
JWT_ALGORITHM=HS256
JWT_ISSUER=permiso-auth-prod
ACCESS_TOKEN_EXPIRE_MINUTES=15
REFRESH_TOKEN_EXPIRE_DAYS=30
SERVICE_TOKEN_EXPIRE_MINUTES=15

# Security
PASSWORD_MIN_LENGTH=12
PASSWORD_MAX_LENGTH=128
PASSWORD_REQUIRE_UPPERCASE=true
PASSWORD_REQUIRE_LOWERCASE=true
PASSWORD_REQUIRE_DIGITS=true
PASSWORD_REQUIRE_SPECIAL=true
PASSWORD_PREVENT_REUSE_COUNT=10
PASSWORD_MAX_AGE_DAYS=90

# Rate Limiting
RATE_LIMIT_LOGIN=5/minute
RATE_LIMIT_REGISTER=3/hour
RATE_LIMIT_API=1000/minute
RATE_LIMIT_REFRESH=10/minute
RATE_LIMIT_SERVICE_TOKEN=50/minute

# Account Lockout
MAX_LOGIN_ATTEMPTS=5
LOCKOUT_DURATION_MINUTES=30

# CORS
ALLOWED_ORIGINS=https://yourdomain.com,https://app.yourdomain.com
ALLOWED_METHODS=GET,POST,PUT,DELETE,OPTIONS
ALLOWED_HEADERS=*
ALLOW_CREDENTIALS=true
ALLOWED_HOSTS=yourdomain.com,app.yourdomain.com

# Logging
LOG_LEVEL=INFO
LOG_FORMAT=json
LOG_FILE=/var/log/permiso/app.log

# Monitoring
ENABLE_METRICS=true
METRICS_PATH=/metrics

# Cache Configuration
CACHE_TOKEN_PREFIX=permiso:token:
CACHE_SESSION_PREFIX=permiso:session:
CACHE_RATE_LIMIT_PREFIX=permiso:rate:
CACHE_USER_PREFIX=permiso:user:
CACHE_DEFAULT_TTL=3600

# API Configuration
API_V1_PREFIX=/api/v1
DOCS_URL=
REDOC_URL=
OPENAPI_URL=
`

// guideTuning is the guide's "Application Tuning" block.
const guideTuning = `UVICORN_WORKERS=4
UVICORN_MAX_REQUESTS=1000
UVICORN_MAX_REQUESTS_JITTER=100
DATABASE_POOL_SIZE=20
DATABASE_MAX_OVERFLOW=10
`

func TestGuideVariablesAreKnownAndRead(t *testing.T) {
	known := map[string]Variable{}
	for _, v := range Variables() {
		known[v.Name] = v
	}
	var looked []string
	env := func(k string) (string, bool) { looked = append(looked, k); return "", false }
	if _, _, err := Load(env, "", false); err != nil {
		t.Fatal(err)
	}
	for _, name := range guideVariables {
		v, ok := known[name]
		if !ok {
			t.Errorf("%s (from the deployment guide) is not in Variables()", name)
			continue
		}
		if !v.Guide {
			t.Errorf("%s is in the guide but Variables() says Guide=false", name)
		}
		if !slices.Contains(looked, name) || !slices.Contains(looked, name+"_FILE") {
			t.Errorf("Load does not read %s (or %s_FILE)", name, name)
		}
	}
	for name, v := range known {
		if v.Guide && !slices.Contains(guideVariables, name) {
			t.Errorf("%s has Guide=true but is not in the guide", name)
		}
	}
}

func TestGuideDotenvBlock(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, ".env", guideDotenv+"\n"+guideTuning)

	// As written, two problems: the placeholder secret, and a non-URL
	// issuer without PUBLIC_URL (every instance would advertise its own
	// address as the issuer).
	_, warnings, err := Load(nil, path, true)
	if err == nil {
		t.Fatal("the guide's placeholder JWT_SECRET_KEY was accepted in production")
	}
	if got := errVars(err); !reflect.DeepEqual(got, []string{"JWT_SECRET_KEY", "JWT_ISSUER"}) {
		t.Fatalf("problems with the guide's .env = %v (%v), want JWT_SECRET_KEY and JWT_ISSUER", got, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "placeholder") ||
		!strings.Contains(lines[1], "PUBLIC_URL") || !strings.Contains(lines[1], "permiso-auth-prod") {
		t.Errorf("error = %q, want one line about the placeholder and one naming JWT_ISSUER and PUBLIC_URL", err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "set on lines") {
			t.Errorf("warning about the guide's identical repeated settings: %q", w)
		}
	}
	uv := 0
	for _, w := range warnings {
		if strings.Contains(w, "UVICORN_") {
			uv++
			for _, n := range []string{"UVICORN_WORKERS", "UVICORN_MAX_REQUESTS", "UVICORN_MAX_REQUESTS_JITTER"} {
				if !strings.Contains(w, n) {
					t.Errorf("UVICORN warning %q does not list %s", w, n)
				}
			}
		}
	}
	if uv != 1 {
		t.Errorf("got %d UVICORN warnings, want exactly 1: %q", uv, warnings)
	}

	// With a real secret from the environment (as docker-compose passes
	// it) and the external URL, the guide's file loads with the guide's
	// meaning.
	c, warnings, err := Load(MapEnv(map[string]string{"JWT_SECRET_KEY": strongKey, "PUBLIC_URL": "https://yourdomain.com"}), path, true)
	if err != nil {
		t.Fatalf("guide .env with a real secret and PUBLIC_URL: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"AppName", c.AppName, "permiso Authentication API"},
		{"Version", c.Version, "1.0.0"},
		{"IsProduction", c.IsProduction(), true},
		{"DatabaseDriver", c.DatabaseDriver(), "postgres"},
		{"PostgresURL", c.PostgresURL(), "postgres://permiso:secure_password@db:5432/permiso_prod"},
		{"PoolMax", c.PoolMax(), 30},
		{"RedisURL", c.RedisURL, "redis://redis:6379/0"},
		{"RedisPassword", c.RedisPassword, "secure_redis_password"},
		{"JWTSecretKey", c.JWTSecretKey, strongKey},
		{"Issuer", c.Issuer(), "permiso-auth-prod"},
		{"Audience", c.Audience(), "permiso-auth-prod"},
		{"MetadataIssuer", c.MetadataIssuer(), "https://yourdomain.com"},
		{"AllowedOrigins", c.AllowedOrigins, []string{"https://yourdomain.com", "https://app.yourdomain.com"}},
		{"AllowedHosts", c.AllowedHosts, []string{"yourdomain.com", "app.yourdomain.com"}},
		{"AllowCredentials", c.AllowCredentials, true},
		{"LogFile", c.LogFile, "/var/log/permiso/app.log"},
		{"DocsURL", c.DocsURL, ""},
		{"RedocURL", c.RedocURL, ""},
		{"OpenAPIURL", c.OpenAPIURL, ""},
		{"RateLimitRegister", c.RateLimitRegister, RateLimit{3, time.Hour}},
		{"AccessTokenExpire", c.AccessTokenExpire, 15 * time.Minute},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	// Non-URL issuer with PUBLIC_URL: a warning, not an error
	// (docs/deployment.md, "Production settings that matter").
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "JWT_ISSUER") }) {
		t.Errorf("no warning about the non-URL JWT_ISSUER: %q", warnings)
	}
}

func TestParseErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // substring of the message
	}{
		{"PORT", "abc", `PORT: "abc" is not a valid port`},
		{"PORT", "70000", `PORT: "70000" is not a valid port`},
		{"SMTP_PORT", "-1", `SMTP_PORT: "-1" is not a valid port`},
		{"DEBUG", "maybe", `DEBUG: "maybe" is not a boolean`},
		{"DATABASE_POOL_SIZE", "lots", `DATABASE_POOL_SIZE: "lots" is not a whole number`},
		{"ACCESS_TOKEN_EXPIRE_MINUTES", "15m", `ACCESS_TOKEN_EXPIRE_MINUTES: "15m" is not a whole number of minutes`},
		{"REFRESH_TOKEN_EXPIRE_DAYS", "99999999999999", `REFRESH_TOKEN_EXPIRE_DAYS: "99999999999999" is too large`},
		{"CACHE_DEFAULT_TTL", "1.5", `CACHE_DEFAULT_TTL: "1.5" is not a whole number of seconds`},
		{"RATE_LIMIT_LOGIN", "fast", `RATE_LIMIT_LOGIN: "fast" is not a rate limit`},
		{"LOG_LEVEL", "LOUD", `LOG_LEVEL: "LOUD" is not a log level`},
		{"TRUSTED_PROXIES", "10.0.0.0/8, 300.1.1.1", `TRUSTED_PROXIES: "300.1.1.1" is not an IP address or CIDR`},
		{"ALLOWED_ORIGINS", "https://a.example/path", `ALLOWED_ORIGINS: "https://a.example/path" is not an origin`},
		{"ALLOWED_METHODS", `["GET"`, `ALLOWED_METHODS: "[\"GET\"" is not a JSON array of strings`},
		// Validation errors name the variable too.
		{"ENVIRONMENT", "prod", `ENVIRONMENT: "prod" is not one of development, staging, production, test`},
		{"JWT_ALGORITHM", "none", `JWT_ALGORITHM: "none" is not supported`},
		{"LOG_FORMAT", "xml", `LOG_FORMAT: "xml" is not json or text`},
		{"MAX_LOGIN_ATTEMPTS", "0", `MAX_LOGIN_ATTEMPTS: must be at least 1 (got 0)`},
		{"DATABASE_POOL_SIZE", "0", `DATABASE_POOL_SIZE: 0 is out of range`},
		{"DATABASE_MAX_OVERFLOW", "-1", `DATABASE_MAX_OVERFLOW: -1 is out of range`},
		{"ACCESS_TOKEN_EXPIRE_MINUTES", "0", `ACCESS_TOKEN_EXPIRE_MINUTES: must be at least 1 minute (got 0)`},
		{"LOCKOUT_DURATION_MINUTES", "-5", `LOCKOUT_DURATION_MINUTES: must be at least 1 minute (got -5 minutes)`},
		{"SHUTDOWN_TIMEOUT_SECONDS", "0", `SHUTDOWN_TIMEOUT_SECONDS: must be at least 1 second`},
		{"PASSWORD_MAX_LENGTH", "5000", `PASSWORD_MAX_LENGTH: must be at most 4096`},
		{"DATABASE_URL", "mysql://u:p@h/db", `DATABASE_URL: unsupported database URL scheme "mysql"`},
		{"REDIS_URL", "http://redis:6379", `REDIS_URL: is not a redis://`},
		{"METRICS_PATH", "metrics", `METRICS_PATH: "metrics" is not a path starting with /`},
		{"DOCS_URL", "docs", `DOCS_URL: "docs" is not a path starting with /`},
		{"PUBLIC_URL", "auth.example.com", `PUBLIC_URL: "auth.example.com" is not an http(s) base URL`},
		{"SMTP_FROM", "not an address", `SMTP_FROM: "not an address" is not a mail address`},
		{"ALLOWED_HOSTS", "https://example.com", `ALLOWED_HOSTS: "https://example.com" is not a host name`},
		{"CACHE_USER_PREFIX", "permiso:token:", `CACHE_USER_PREFIX: "permiso:token:" overlaps CACHE_TOKEN_PREFIX`},
		{"CACHE_LOCAL_TTL", "-1", `CACHE_LOCAL_TTL: must not be negative`},
		{"CACHE_LOCAL_TTL", "0.5", `CACHE_LOCAL_TTL: "0.5" is not a whole number of seconds`},
		{"MFA_REQUIRED_ROLES", "admin, bad role", `MFA_REQUIRED_ROLES: item 2 ("bad role") is not a role name`},
		{"MFA_REQUIRED_ROLES", "admin,admin", `MFA_REQUIRED_ROLES: lists "admin" twice`},
		{"REVOCATION_FEED_STALE", "open", `REVOCATION_FEED_STALE: "open" is not one of fail, lookup`},
		{"REVOCATION_FEED_MAX_LAG_MS", "1s", `REVOCATION_FEED_MAX_LAG_MS: "1s" is not a whole number of milliseconds`},
		{"REVOCATION_FEED_MAX_LAG_MS", "0", `REVOCATION_FEED_MAX_LAG_MS: must be between 100 and 60000 (got 0)`},
		{"REVOCATION_FEED_MAX_LAG_MS", "99", `REVOCATION_FEED_MAX_LAG_MS: must be between 100 and 60000 (got 99)`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, _, err := load(t, map[string]string{tt.name: tt.value})
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.name, tt.value)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if got := errVars(err); !reflect.DeepEqual(got, []string{tt.name}) {
				t.Errorf("problems name %v, want [%s]", got, tt.name)
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve.Var != tt.name {
				t.Errorf("errors.As(*VarError) = %v", ve)
			}
		})
	}
}

func TestSecretValuesAreNotShown(t *testing.T) {
	const pw = "hunter2-very-secret"
	for _, env := range []map[string]string{
		{"DATABASE_URL": "mysql://root:" + pw + "@db/x"},
		{"DATABASE_URL": "postgresql://root:" + pw + "@db:99999999/%zz"},
		{"REDIS_URL": "http://:" + pw + "@redis"},
		{"JWT_SECRET_KEY": pw, "ENVIRONMENT": "production", "DATABASE_URL": "postgres://db/x"},
		{"JWT_PREVIOUS_SECRET_KEYS": `["` + pw + `"`},
	} {
		_, _, err := load(t, env)
		if err == nil {
			t.Errorf("%v accepted", env)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the secret: %q", err)
		}
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, _, err := load(t, map[string]string{
		"PORT":               "abc",
		"DEBUG":              "perhaps",
		"MAX_LOGIN_ATTEMPTS": "0",
	})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), err)
	}
	want := []string{"DEBUG", "PORT", "MAX_LOGIN_ATTEMPTS"} // Variables() order
	if got := errVars(err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems name %v, want %v", got, want)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]+": ") {
			t.Errorf("line %d = %q, want it to start with %s", i, l, want[i])
		}
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Errorf("errors.As(Errors) = %v", es)
	}
}

// TestValidateReportsEverySection: each section of the configuration is
// checked by its own function, and a problem in every section is reported
// in one Errors value.
func TestValidateReportsEverySection(t *testing.T) {
	c, _ := mustLoad(t, nil)
	c.Port = 70000                          // server
	c.DatabasePoolSize = 0                  // database
	c.RedisURL = "ftp://cache.example"      // Redis
	c.AccessTokenExpire = 0                 // tokens
	c.PasswordHashConcurrency = 0           // passwords
	c.MaxLoginAttempts = 0                  // rate limits and lockout
	c.AllowedMethods = []string{"GET POST"} // CORS, hosts, proxies
	c.LogFormat = "xml"                     // logging and paths
	c.CacheLocalTTL = -time.Second          // cache
	c.SMTPPort = 0                          // process, mail, audit
	want := []string{"PORT", "DATABASE_POOL_SIZE", "REDIS_URL", "ACCESS_TOKEN_EXPIRE_MINUTES",
		"PASSWORD_HASH_CONCURRENCY", "MAX_LOGIN_ATTEMPTS", "ALLOWED_METHODS", "LOG_FORMAT",
		"CACHE_LOCAL_TTL", "SMTP_PORT"}
	got := errVars(c.Validate())
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("%s not reported; got %v", name, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reported %v, want exactly %v", got, want)
	}
}

func TestEmptyValues(t *testing.T) {
	c, _ := mustLoad(t, map[string]string{
		"PORT": "", "DEBUG": "", "ENVIRONMENT": "", "DATABASE_URL": "", "JWT_ISSUER": " ",
		"DOCS_URL": "", "REDOC_URL": "", "OPENAPI_URL": "",
		"RATE_LIMIT_API": "", "TRUSTED_PROXIES": "", "ALLOWED_HEADERS": "",
	})
	if c.Port != 8000 || c.Debug || c.Environment != EnvDevelopment || c.DatabaseURL != "sqlite://permiso.db" || c.JWTIssuer != "permiso-auth" {
		t.Errorf("empty values did not mean the default: %+v", c)
	}
	if c.DocsURL != "" || c.RedocURL != "" || c.OpenAPIURL != "" {
		t.Errorf("empty DOCS_URL/REDOC_URL/OPENAPI_URL did not disable them: %q %q %q", c.DocsURL, c.RedocURL, c.OpenAPIURL)
	}
	if !c.RateLimitAPI.Disabled() {
		t.Errorf("empty RATE_LIMIT_API = %v, want disabled", c.RateLimitAPI)
	}
	if len(c.TrustedProxies) != 0 || len(c.AllowedHeaders) != 0 {
		t.Errorf("empty lists = %v %v, want empty", c.TrustedProxies, c.AllowedHeaders)
	}
}

func TestListsAndBooleans(t *testing.T) {
	for _, v := range []string{"true", "TRUE", "1", "yes", "Yes", "on", " ON "} {
		if b, err := parseBool(v); err != nil || !b {
			t.Errorf("parseBool(%q) = %v, %v", v, b, err)
		}
	}
	for _, v := range []string{"false", "False", "0", "no", "NO", "off"} {
		if b, err := parseBool(v); err != nil || b {
			t.Errorf("parseBool(%q) = %v, %v", v, b, err)
		}
	}
	for _, v := range []string{"", "2", "y", "enabled", "truee"} {
		if _, err := parseBool(v); err == nil {
			t.Errorf("parseBool(%q) accepted", v)
		}
	}
	c, _ := mustLoad(t, map[string]string{
		"ALLOWED_ORIGINS": " https://A.example.com/ , ,http://localhost:3000,https://b.example:443",
		"ALLOWED_METHODS": "get, post",
		"ALLOWED_HOSTS":   `["API.Example.com", "*.example.com"]`,
		"TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12, ::1, fd00::1/64",
	})
	if want := []string{"https://a.example.com", "http://localhost:3000", "https://b.example"}; !reflect.DeepEqual(c.AllowedOrigins, want) {
		t.Errorf("AllowedOrigins = %q, want %q", c.AllowedOrigins, want)
	}
	if want := []string{"GET", "POST"}; !reflect.DeepEqual(c.AllowedMethods, want) {
		t.Errorf("AllowedMethods = %q", c.AllowedMethods)
	}
	if want := []string{"api.example.com", "*.example.com"}; !reflect.DeepEqual(c.AllowedHosts, want) {
		t.Errorf("AllowedHosts = %q", c.AllowedHosts)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/64"),
	}
	if !reflect.DeepEqual(c.TrustedProxies, want) {
		t.Errorf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}
}

func TestLogLevels(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"info": slog.LevelInfo, "DEBUG": slog.LevelDebug, "Warning": slog.LevelWarn,
		"WARN": slog.LevelWarn, "error": slog.LevelError, "CRITICAL": LevelCritical,
	} {
		c, _ := mustLoad(t, map[string]string{"LOG_LEVEL": in})
		if c.LogLevel != want {
			t.Errorf("LOG_LEVEL=%s -> %v, want %v", in, c.LogLevel, want)
		}
	}
}

func TestCanonicalSpellings(t *testing.T) {
	c, _ := mustLoad(t, map[string]string{
		"JWT_ALGORITHM": "eddsa", "ENVIRONMENT": "Staging", "LOG_FORMAT": "TEXT",
		"API_V1_PREFIX": "/api/v2/", "HOST": "[::]", "PORT": "9000",
	})
	if c.JWTAlgorithm != "EdDSA" || c.Environment != EnvStaging || c.LogFormat != "text" || c.APIV1Prefix != "/api/v2" {
		t.Errorf("not canonical: %q %q %q %q", c.JWTAlgorithm, c.Environment, c.LogFormat, c.APIV1Prefix)
	}
	if c.Addr() != "[::]:9000" || c.PublicURL != "http://localhost:9000" {
		t.Errorf("Addr = %q, PublicURL = %q", c.Addr(), c.PublicURL)
	}
	c, _ = mustLoad(t, map[string]string{"API_V1_PREFIX": "/", "HOST": "127.0.0.1", "PUBLIC_URL": "https://auth.example.com/"})
	if c.APIV1Prefix != "" || c.PublicURL != "https://auth.example.com" {
		t.Errorf("APIV1Prefix = %q, PublicURL = %q", c.APIV1Prefix, c.PublicURL)
	}
	if c.MetadataIssuer() != "https://auth.example.com" {
		t.Errorf("MetadataIssuer = %q", c.MetadataIssuer())
	}
	c, _ = mustLoad(t, map[string]string{"JWT_ISSUER": "https://id.example.com/", "JWT_AUDIENCE": "api"})
	// One issuer everywhere: the tokens' iss is the metadata's issuer.
	if !c.IssuerIsURL() || c.MetadataIssuer() != "https://id.example.com" || c.Audience() != "api" || c.Issuer() != "https://id.example.com" {
		t.Errorf("issuer helpers: %v %q %q %q", c.IssuerIsURL(), c.MetadataIssuer(), c.Audience(), c.Issuer())
	}
	c, _ = mustLoad(t, map[string]string{"JWT_ISSUER": "https://id.example.com//"})
	if c.Issuer() != "https://id.example.com" || c.Audience() != "https://id.example.com" {
		t.Errorf("issuer %q, audience %q", c.Issuer(), c.Audience())
	}
}

func TestDotenvPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, ".env", `
# comment
PORT=9001
APP_NAME="From Dotenv"
LOG_LEVEL=debug
export JWT_ISSUER='https://id.example.com'
`)
	c, _, err := Load(MapEnv(map[string]string{"PORT": "9002"}), path, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9002 {
		t.Errorf("PORT = %d: the environment must beat .env", c.Port)
	}
	if c.AppName != "From Dotenv" || c.LogLevel != slog.LevelDebug || c.JWTIssuer != "https://id.example.com" {
		t.Errorf(".env must beat defaults: %q %v %q", c.AppName, c.LogLevel, c.JWTIssuer)
	}
	if c.MaxLoginAttempts != 5 {
		t.Errorf("default lost: %d", c.MaxLoginAttempts)
	}

	// An empty environment value of a "default when empty" variable falls
	// through to .env; a meaningful empty value (DOCS_URL) does not.
	path = writeFile(t, dir, "b.env", "PORT=9003\nDOCS_URL=/from-dotenv\n")
	c, _, err = Load(MapEnv(map[string]string{"PORT": "", "DOCS_URL": ""}), path, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9003 || c.DocsURL != "" {
		t.Errorf("Port = %d, DocsURL = %q; want 9003 and \"\"", c.Port, c.DocsURL)
	}

	// Missing files: fine by default, an error when explicit.
	if _, _, err := Load(nil, filepath.Join(dir, "missing.env"), false); err != nil {
		t.Errorf("missing default .env: %v", err)
	}
	_, _, err = Load(nil, filepath.Join(dir, "missing.env"), true)
	if err == nil || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("missing --env-file: %v", err)
	}

	// Errors found in .env say so.
	path = writeFile(t, dir, "c.env", "PORT=eighty\n")
	_, _, err = Load(nil, path, true)
	if err == nil || !strings.Contains(err.Error(), `PORT: "eighty" is not a valid port (in `+path+")") {
		t.Errorf("error from .env = %v", err)
	}
}

func TestParseDotenv(t *testing.T) {
	src := "\ufeff# leading comment\r\n" +
		"A=plain value  \n" +
		"B=\"double # not a comment\" # comment\n" +
		"C='single $HOME \\n'\n" +
		"D=\"esc \\\"q\\\" \\\\ \\n end\"\n" +
		"E=value # trailing comment\n" +
		"F=a#b\n" +
		"G=\n" +
		"  export H = spaced\n" +
		"I=\"line1\nline2\"\n" +
		"J=$NOT_EXPANDED\n" +
		"J=$NOT_EXPANDED\n" +
		"A=second\n" +
		"not a line\n" +
		"K=\"unterminated\n"
	values, warnings, errs := parseDotenv(src, ".env")
	want := map[string]string{
		"A": "second",
		"B": "double # not a comment",
		"C": `single $HOME \n`,
		"D": "esc \"q\" \\ \n end",
		"E": "value",
		"F": "a#b",
		"G": "",
		"H": "spaced",
		"I": "line1\nline2",
		"J": "$NOT_EXPANDED",
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("values:\n got %q\nwant %q", values, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "A is set on lines 2 and 14 to different values") {
		t.Errorf("warnings = %q", warnings)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), ".env:15:") || !strings.Contains(errs[1].Error(), "K: unterminated") {
		t.Errorf("errs = %v", errs)
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	secretPath := writeFile(t, dir, "jwt_secret", strongKey+"\n")
	crlf := writeFile(t, dir, "db_password", "p@ss\r\n")
	twoNewlines := writeFile(t, dir, "two", "abc\n\n")

	c, _ := mustLoad(t, map[string]string{
		"JWT_SECRET_KEY_FILE":    secretPath,
		"DATABASE_URL":           "postgresql+asyncpg://permiso:old@db:5432/permiso_prod",
		"DATABASE_PASSWORD_FILE": crlf,
		"REDIS_PASSWORD_FILE":    twoNewlines,
		"APP_NAME_FILE":          secretPath, // any variable may use _FILE
	})
	if c.JWTSecretKey != strongKey {
		t.Errorf("JWTSecretKey = %q", c.JWTSecretKey)
	}
	if c.DatabasePassword != "p@ss" || c.PostgresURL() != "postgres://permiso:p%40ss@db:5432/permiso_prod" {
		t.Errorf("DatabasePassword = %q, PostgresURL = %q", c.DatabasePassword, c.PostgresURL())
	}
	if c.RedisPassword != "abc\n" {
		t.Errorf("REDIS_PASSWORD_FILE: exactly one newline must be trimmed, got %q", c.RedisPassword)
	}
	if c.AppName != strongKey {
		t.Errorf("APP_NAME_FILE: AppName = %q", c.AppName)
	}

	// Both NAME and NAME_FILE: an error naming the variable.
	_, _, err := load(t, map[string]string{"JWT_SECRET_KEY": strongKey, "JWT_SECRET_KEY_FILE": secretPath})
	if err == nil || !reflect.DeepEqual(errVars(err), []string{"JWT_SECRET_KEY"}) || !strings.Contains(err.Error(), "JWT_SECRET_KEY_FILE") {
		t.Errorf("conflict: %v", err)
	}
	// An unreadable file names NAME_FILE.
	_, _, err = load(t, map[string]string{"REDIS_PASSWORD_FILE": filepath.Join(dir, "nope")})
	if err == nil || !reflect.DeepEqual(errVars(err), []string{"REDIS_PASSWORD_FILE"}) {
		t.Errorf("missing secret file: %v", err)
	}
	// The environment's NAME_FILE beats .env's NAME; relative NAME_FILE in
	// .env is relative to the .env file.
	envPath := writeFile(t, dir, ".env", "JWT_SECRET_KEY=changeme\nSMTP_PASSWORD_FILE=smtp\n")
	writeFile(t, dir, "smtp", "mailpw\n")
	c, _, err = Load(MapEnv(map[string]string{"JWT_SECRET_KEY_FILE": secretPath}), envPath, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTSecretKey != strongKey || c.SMTPPassword != "mailpw" {
		t.Errorf("JWTSecretKey = %q, SMTPPassword = %q", c.JWTSecretKey, c.SMTPPassword)
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want RateLimit
	}{
		{"5/minute", RateLimit{5, time.Minute}},
		{"3/hour", RateLimit{3, time.Hour}},
		{"1000/minute", RateLimit{1000, time.Minute}},
		{"10/second", RateLimit{10, time.Second}},
		{"7/day", RateLimit{7, 24 * time.Hour}},
		{"7/days", RateLimit{7, 24 * time.Hour}},
		{"2/Minutes", RateLimit{2, time.Minute}},
		{" 5 / MINUTE ", RateLimit{5, time.Minute}},
		{"100/15 minutes", RateLimit{100, 15 * time.Minute}},
		{"100/2hours", RateLimit{100, 2 * time.Hour}},
		{"", RateLimit{}},
		{"   ", RateLimit{}},
	}
	for _, tt := range tests {
		got, err := ParseRateLimit(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRateLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if tt.in != "" && strings.TrimSpace(tt.in) != "" {
			back, err := ParseRateLimit(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %v via %q = %v, %v", got, got.String(), back, err)
			}
		}
	}
	if !(RateLimit{}).Disabled() || (RateLimit{5, time.Minute}).Disabled() {
		t.Error("Disabled wrong")
	}
	for _, in := range []string{
		"garbage", "5", "5/", "/minute", "0/minute", "-1/minute", "5/fortnight", "5/minute/x",
		"5 per minute", "5/0 minutes", "1.5/minute", "5/minute;10/hour", "99999999999/minute",
		"5/9999999 days", "5/-1 minute", "0x10/minute",
	} {
		if r, err := ParseRateLimit(in); err == nil {
			t.Errorf("ParseRateLimit(%q) = %v, want an error", in, r)
		}
	}
}

// productionEnv is a sound production environment, with JWT_ISSUER set to
// issuer unless it is empty, and extra laid over it (a key given as ""
// is set empty).
func productionEnv(issuer string, extra map[string]string) map[string]string {
	env := map[string]string{
		"ENVIRONMENT":    "production",
		"DATABASE_URL":   "postgresql://permiso:pw@db:5432/permiso",
		"REDIS_URL":      "redis://redis:6379/0",
		"JWT_SECRET_KEY": strongKey,
	}
	if issuer != "" {
		env["JWT_ISSUER"] = issuer
	}
	maps.Copy(env, extra)
	return env
}

func TestProductionRefusals(t *testing.T) {
	prod := func(extra map[string]string) map[string]string {
		return productionEnv("https://auth.example.com", extra)
	}
	if _, w, err := load(t, prod(nil)); err != nil || len(w) != 0 {
		t.Fatalf("sound production configuration: %v, warnings %q", err, w)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar []string
		want    string
	}{
		{"missing secret", map[string]string{"JWT_SECRET_KEY": ""}, []string{"JWT_SECRET_KEY"}, "required in production"},
		{"short secret", map[string]string{"JWT_SECRET_KEY": "Zx81kQ2mP9"}, []string{"JWT_SECRET_KEY"}, "at least 32"},
		{"guide placeholder", map[string]string{"JWT_SECRET_KEY": "your-super-secure-jwt-secret-key-here"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"changeme", map[string]string{"JWT_SECRET_KEY": "changeme"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"secret", map[string]string{"JWT_SECRET_KEY": "secret"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"your-secret-key", map[string]string{"JWT_SECRET_KEY": "your-secret-key"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"long change-me", map[string]string{"JWT_SECRET_KEY": "please-change-me-in-production-0123456789"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"long your_..._secret", map[string]string{"JWT_SECRET_KEY": "YOUR_VERY_LONG_JWT_SECRET_GOES_IN_THIS_SLOT"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"jwt.io default", map[string]string{"JWT_SECRET_KEY": "your-256-bit-secret"}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"repeated", map[string]string{"JWT_SECRET_KEY": strings.Repeat("ab", 32)}, []string{"JWT_SECRET_KEY"}, "placeholder"},
		{"short previous key", map[string]string{"JWT_PREVIOUS_SECRET_KEYS": strongKey[1:] + ",short"}, []string{"JWT_PREVIOUS_SECRET_KEYS"}, "key 2 is 5 bytes"},
		{"sqlite", map[string]string{"DATABASE_URL": "sqlite:///var/lib/permiso/permiso.db"}, []string{"DATABASE_URL"}, "SQLite is refused in production"},
		{"wildcard with credentials", map[string]string{"ALLOWED_ORIGINS": "*"}, []string{"ALLOWED_ORIGINS"}, "ALLOW_CREDENTIALS"},
		{"three at once", map[string]string{"JWT_SECRET_KEY": "changeme", "DATABASE_URL": "sqlite://x.db", "ALLOWED_ORIGINS": "https://a.example,*"},
			[]string{"DATABASE_URL", "JWT_SECRET_KEY", "ALLOWED_ORIGINS"}, "refusing to start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, prod(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := errVars(err); !reflect.DeepEqual(got, tt.wantVar) {
				t.Errorf("problems name %v, want %v:\n%v", got, tt.wantVar, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	// Lifted refusals.
	if _, _, err := load(t, prod(map[string]string{"DATABASE_URL": "sqlite:///data/p.db", "ALLOW_SQLITE_IN_PRODUCTION": "true"})); err != nil {
		t.Errorf("ALLOW_SQLITE_IN_PRODUCTION=true: %v", err)
	}
	if c, _, err := load(t, prod(map[string]string{"ALLOWED_ORIGINS": "*", "ALLOW_CREDENTIALS": "false"})); err != nil || c.AllowCredentials {
		t.Errorf("* without credentials: %v", err)
	}
	// Asymmetric algorithms do not need JWT_SECRET_KEY.
	if _, _, err := load(t, prod(map[string]string{"JWT_ALGORITHM": "RS256", "JWT_SECRET_KEY": ""})); err != nil {
		t.Errorf("RS256 without a secret: %v", err)
	}
	// The same weaknesses outside production are warnings.
	c, w, err := load(t, map[string]string{"JWT_SECRET_KEY": "short", "JWT_PREVIOUS_SECRET_KEYS": "changeme"})
	if err != nil {
		t.Fatalf("development with a short key: %v", err)
	}
	if c.JWTSecretKey != "short" || len(w) != 2 || !strings.Contains(w[0], "JWT_SECRET_KEY") || !strings.Contains(w[1], "JWT_PREVIOUS_SECRET_KEYS") {
		t.Errorf("warnings = %q", w)
	}
}

func TestWildcardOriginOutsideProduction(t *testing.T) {
	c, w, err := load(t, map[string]string{"ALLOWED_ORIGINS": "*"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AllowCredentials {
		t.Error(`"*" with credentials left on outside production`)
	}
	if len(w) != 1 || !strings.Contains(w[0], "ALLOWED_ORIGINS") {
		t.Errorf("warnings = %q", w)
	}
}

func TestDebugForcedOffInProduction(t *testing.T) {
	c, w, err := load(t, map[string]string{
		"ENVIRONMENT": "production", "DEBUG": "true", "JWT_SECRET_KEY": strongKey,
		"DATABASE_URL": "postgres://db/permiso", "REDIS_URL": "redis://r:6379", "JWT_ISSUER": "https://a.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Debug {
		t.Error("DEBUG stayed on in production")
	}
	if len(w) != 1 || !strings.Contains(w[0], "DEBUG") {
		t.Errorf("warnings = %q", w)
	}
	// And via Validate on a hand-made Config.
	c = Defaults()
	c.Environment, c.Debug, c.JWTSecretKey, c.DatabaseURL = EnvProduction, true, strongKey, "postgres://db/x"
	c.PublicURL = "https://auth.example.com"
	if err := c.Validate(); err != nil || c.Debug {
		t.Errorf("Validate: %v, Debug = %v", err, c.Debug)
	}
	// Outside production DEBUG is honoured.
	if c, _ := mustLoad(t, map[string]string{"DEBUG": "yes"}); !c.Debug {
		t.Error("DEBUG=yes ignored in development")
	}
}

func TestDatabaseURLForms(t *testing.T) {
	tests := []struct {
		url, driver, path, pg string
	}{
		{"sqlite://permiso.db", "sqlite", "permiso.db", ""},
		{"sqlite:///var/lib/permiso/permiso.db", "sqlite", "/var/lib/permiso/permiso.db", ""},
		{"sqlite:////var/lib/permiso/permiso.db", "sqlite", "/var/lib/permiso/permiso.db", ""},
		{"sqlite://:memory:", "sqlite", ":memory:", ""},
		{"sqlite+aiosqlite:///./data/permiso.db", "sqlite", "data/permiso.db", ""},
		{"sqlite+aiosqlite://data/permiso.db?mode=rwc", "sqlite", "data/permiso.db", ""},
		{"SQLite:permiso.db", "sqlite", "permiso.db", ""},
		{"postgresql://u:p@db:5432/permiso", "postgres", "", "postgres://u:p@db:5432/permiso"},
		{"postgres://u:p@db/permiso?sslmode=require", "postgres", "", "postgres://u:p@db/permiso?sslmode=require"},
		{"postgresql+asyncpg://permiso:secure_password@db:5432/permiso_prod", "postgres", "", "postgres://permiso:secure_password@db:5432/permiso_prod"},
		{"postgresql+psycopg2://db/permiso", "postgres", "", "postgres://db/permiso"},
		{"mysql://db/x", "", "", ""},
		{"permiso.db", "", "", ""},
	}
	for _, tt := range tests {
		c := Defaults()
		c.DatabaseURL = tt.url
		if got := c.DatabaseDriver(); got != tt.driver {
			t.Errorf("DatabaseDriver(%q) = %q, want %q", tt.url, got, tt.driver)
		}
		if got := c.SQLitePath(); got != tt.path {
			t.Errorf("SQLitePath(%q) = %q, want %q", tt.url, got, tt.path)
		}
		if got := c.PostgresURL(); got != tt.pg {
			t.Errorf("PostgresURL(%q) = %q, want %q", tt.url, got, tt.pg)
		}
	}
	// Load rejects the last two and an SQLite URL without a path.
	for _, u := range []string{"mysql://db/x", "permiso.db", "sqlite://"} {
		if _, _, err := load(t, map[string]string{"DATABASE_URL": u}); err == nil || !reflect.DeepEqual(errVars(err), []string{"DATABASE_URL"}) {
			t.Errorf("DATABASE_URL=%s: %v", u, err)
		}
	}
	// DevSecretPath follows the SQLite file.
	for url, want := range map[string]string{
		"sqlite:///var/lib/permiso/permiso.db": "/var/lib/permiso/.permiso-dev-secret",
		"sqlite://permiso.db":                  ".permiso-dev-secret",
		"sqlite://:memory:":                    ".permiso-dev-secret",
		"postgres://db/x":                      ".permiso-dev-secret",
	} {
		c := Config{DatabaseURL: url}
		if got := c.DevSecretPath(); got != want {
			t.Errorf("DevSecretPath(%s) = %q, want %q", url, got, want)
		}
	}
	// DATABASE_PASSWORD keeps the user name.
	c := Config{DatabaseURL: "postgresql+asyncpg://permiso:old@db:5432/p", DatabasePassword: "n/ew"}
	if got := c.PostgresURL(); got != "postgres://permiso:n%2Few@db:5432/p" {
		t.Errorf("PostgresURL with DATABASE_PASSWORD = %q", got)
	}
}

func TestEnsureDevSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", DevSecretFile)

	c := Defaults()
	w, err := EnsureDevSecret(&c, path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "JWT_SECRET_KEY not set; using a generated development key stored in " + path; w != want {
		t.Errorf("warning = %q, want %q", w, want)
	}
	if len(c.JWTSecretKey) != 64 {
		t.Fatalf("key %q is not 64 hex digits", c.JWTSecretKey)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := c.Validate(); err != nil {
		t.Errorf("generated key fails Validate: %v", err)
	}

	// A restart reads the same key.
	c2 := Defaults()
	if _, err := EnsureDevSecret(&c2, path); err != nil {
		t.Fatal(err)
	}
	if c2.JWTSecretKey != c.JWTSecretKey {
		t.Error("second call returned a different key: tokens would not survive a restart")
	}

	// Nothing happens with a configured key or in production.
	c3 := Defaults()
	c3.JWTSecretKey = strongKey
	if w, err := EnsureDevSecret(&c3, filepath.Join(dir, "other")); w != "" || err != nil || c3.JWTSecretKey != strongKey {
		t.Errorf("configured key: %q %v", w, err)
	}
	c4 := Defaults()
	c4.Environment = EnvProduction
	if w, err := EnsureDevSecret(&c4, filepath.Join(dir, "other")); w != "" || err != nil || c4.JWTSecretKey != "" {
		t.Errorf("production: %q %v", w, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err == nil {
		t.Error("a key file was written when none was needed")
	}

	// A corrupt file is an error, not silently replaced.
	bad := writeFile(t, dir, "bad", "not a key\n")
	c5 := Defaults()
	if _, err := EnsureDevSecret(&c5, bad); err == nil {
		t.Error("corrupt key file accepted")
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key\n" {
		t.Error("corrupt key file overwritten")
	}
}

func TestEnsureDevSecretConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), DevSecretFile)
	keys := make(chan string, 8)
	for range 8 {
		go func() {
			c := Defaults()
			if _, err := EnsureDevSecret(&c, path); err != nil {
				t.Error(err)
			}
			keys <- c.JWTSecretKey
		}()
	}
	first := <-keys
	for range 7 {
		if k := <-keys; k != first {
			t.Fatal("concurrent first starts disagree on the key")
		}
	}
}

func TestUvicornIgnoredOnce(t *testing.T) {
	c, w := mustLoad(t, map[string]string{"UVICORN_WORKERS": "4", "UVICORN_MAX_REQUESTS": "1000"})
	if len(w) != 1 || !strings.Contains(w[0], "UVICORN_WORKERS, UVICORN_MAX_REQUESTS ignored") {
		t.Errorf("warnings = %q", w)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Error("UVICORN_* changed the configuration")
	}
	// Garbage in an ignored variable is still only ignored.
	if _, _, err := load(t, map[string]string{"UVICORN_WORKERS": "many"}); err != nil {
		t.Errorf("UVICORN_WORKERS=many: %v", err)
	}
}

func TestBadHostIsOneProblem(t *testing.T) {
	_, _, err := load(t, map[string]string{"HOST": "a b"})
	if got := errVars(err); !reflect.DeepEqual(got, []string{"HOST"}) {
		t.Errorf("HOST=\"a b\": problems %v (%v)", got, err)
	}
}

func TestValidateHandMade(t *testing.T) {
	c := Defaults()
	c.Port = -1
	c.PasswordMinLength = 20
	c.PasswordMaxLength = 10
	c.JWTAlgorithm = "none"
	c.RateLimitAPI = RateLimit{Count: 5}
	err := c.Validate()
	want := []string{"PORT", "JWT_ALGORITHM", "PASSWORD_MIN_LENGTH", "RATE_LIMIT_API"}
	if got := errVars(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate problems = %v, want %v (%v)", got, want, err)
	}
}

// TestCacheDefaultTTLWarns: CACHE_DEFAULT_TTL is accepted from the guide's
// .env but bounds nothing; a value other than the default says so.
func TestCacheDefaultTTLWarns(t *testing.T) {
	_, warnings, err := load(t, map[string]string{"CACHE_DEFAULT_TTL": "60"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "CACHE_DEFAULT_TTL=60 has no effect") }) {
		t.Errorf("warnings %q lack the CACHE_DEFAULT_TTL one", warnings)
	}
	_, warnings, _ = load(t, map[string]string{"CACHE_DEFAULT_TTL": "3600"})
	if slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "CACHE_DEFAULT_TTL") }) {
		t.Errorf("the guide's default warns: %q", warnings)
	}
}

// TestPasswordHashCosts: the Argon2id costs default to m=65536 KiB, t=4
// and are refused below OWASP's minimum (m=19456 KiB, t=2) or above the
// hasher's maxima (docs/security-model.md, "Password hashing").
func TestPasswordHashCosts(t *testing.T) {
	c, _ := mustLoad(t, nil)
	if c.PasswordHashMemoryKiB != 65536 || c.PasswordHashIterations != 4 {
		t.Errorf("defaults m=%d t=%d, want 65536 and 4", c.PasswordHashMemoryKiB, c.PasswordHashIterations)
	}
	c, _ = mustLoad(t, map[string]string{"PASSWORD_HASH_MEMORY_KIB": "19456", "PASSWORD_HASH_ITERATIONS": "2"})
	if err := c.Validate(); err != nil || c.PasswordHashMemoryKiB != 19456 || c.PasswordHashIterations != 2 {
		t.Errorf("OWASP minimum: m=%d t=%d, %v", c.PasswordHashMemoryKiB, c.PasswordHashIterations, err)
	}
	for _, tc := range []struct{ memory, iterations, bad string }{
		{"19455", "2", "PASSWORD_HASH_MEMORY_KIB"},
		{"1048577", "4", "PASSWORD_HASH_MEMORY_KIB"},
		{"65536", "1", "PASSWORD_HASH_ITERATIONS"},
		{"65536", "21", "PASSWORD_HASH_ITERATIONS"},
	} {
		_, _, err := load(t, map[string]string{"PASSWORD_HASH_MEMORY_KIB": tc.memory, "PASSWORD_HASH_ITERATIONS": tc.iterations})
		if got := errVars(err); !slices.Equal(got, []string{tc.bad}) {
			t.Errorf("m=%s t=%s: problems %v, want %s", tc.memory, tc.iterations, got, tc.bad)
		}
	}
}

// TestMFARequiredRoles: MFA_REQUIRED_ROLES is a list of role names,
// trimmed, as a comma list or a JSON array; empty by default.
func TestMFARequiredRoles(t *testing.T) {
	if c, _ := mustLoad(t, nil); len(c.MFARequiredRoles) != 0 {
		t.Errorf("default %v, want none", c.MFARequiredRoles)
	}
	for _, v := range []string{"admin, ops.team", `["admin","ops.team"]`} {
		c, _ := mustLoad(t, map[string]string{"MFA_REQUIRED_ROLES": v})
		if !reflect.DeepEqual(c.MFARequiredRoles, []string{"admin", "ops.team"}) {
			t.Errorf("MFA_REQUIRED_ROLES=%s: %v", v, c.MFARequiredRoles)
		}
	}
}
