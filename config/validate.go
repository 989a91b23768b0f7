package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks c and reports every problem at once as an Errors value
// (nil when there is none). Each problem names its variable.
//
// Validate also applies two overrides, which Load reports as warnings:
// DEBUG is forced off in production, and outside production
// ALLOW_CREDENTIALS is switched off when ALLOWED_ORIGINS contains "*"
// (in production that combination is an error), so that a Config that
// passed Validate never pairs a wildcard origin with credentials.
func (c *Config) Validate() error {
	_, errs := c.check()
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// check is Validate plus the warnings.
func (c *Config) check() (warnings []string, errs Errors) {
	fail := func(name, format string, a ...any) { errs = append(errs, varErr(name, format, a...)) }
	warn := func(format string, a ...any) { warnings = append(warnings, fmt.Sprintf(format, a...)) }
	prod := c.IsProduction()

	// Application and server.
	if !slices.Contains(environments, c.Environment) {
		fail("ENVIRONMENT", "%s is not one of %s", quote(c.Environment), strings.Join(environments, ", "))
	}
	if prod && c.Debug {
		c.Debug = false
		warn("DEBUG=true is ignored in production; debug mode is off")
	}
	listenOK := true
	if c.Host == "" || strings.ContainsAny(c.Host, " \t\r\n/[]?#@") {
		fail("HOST", "%s is not a host name or IP address", quote(c.Host))
		listenOK = false
	} else if _, err := netip.ParseAddr(c.Host); err != nil && strings.Contains(c.Host, ":") {
		fail("HOST", "%s is not a host name or IP address (give the port in PORT)", quote(c.Host))
		listenOK = false
	}
	if c.Port < 0 || c.Port > 65535 {
		fail("PORT", "%d is not a valid port", c.Port)
		listenOK = false
	}
	// (A PUBLIC_URL derived from a bad HOST or PORT is not a second problem.)
	if u, err := url.Parse(c.PublicURL); listenOK && (err != nil || !isHTTPURL(c.PublicURL) || u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		fail("PUBLIC_URL", "%s is not an http(s) base URL", quote(c.PublicURL))
	}

	// Database.
	switch c.DatabaseDriver() {
	case DriverSQLite:
		if c.SQLitePath() == "" {
			fail("DATABASE_URL", "the SQLite URL has no file path (use sqlite://permiso.db, sqlite:///abs/path.db or sqlite://:memory:)")
		}
		if prod && !c.AllowSQLiteInProduction {
			fail("DATABASE_URL", "SQLite is refused in production: use postgresql://... (or set ALLOW_SQLITE_IN_PRODUCTION=true for a single instance)")
		}
	case DriverPostgres:
		if c.PostgresURL() == "" {
			fail("DATABASE_URL", "the PostgreSQL URL cannot be parsed (value not shown; check that special characters in the password are percent-encoded)")
		}
	default:
		fail("DATABASE_URL", "unsupported database URL scheme %s (use postgresql:// or sqlite://)", quote(scheme(c.DatabaseURL)))
	}
	if c.DatabasePoolSize < 1 || c.DatabasePoolSize > 10000 {
		fail("DATABASE_POOL_SIZE", "%d is out of range (1 to 10000)", c.DatabasePoolSize)
	}
	if c.DatabaseMaxOverflow < 0 || c.DatabaseMaxOverflow > 10000 {
		fail("DATABASE_MAX_OVERFLOW", "%d is out of range (0 to 10000)", c.DatabaseMaxOverflow)
	}

	// Redis.
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || !redisSchemes[u.Scheme] {
			fail("REDIS_URL", "is not a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL (value not shown)")
		}
	} else if prod {
		warn("REDIS_URL is not set: rate limits, lockouts and revocations are kept in this process only and are not shared with other instances")
	}

	// Tokens.
	if _, ok := algorithms[strings.ToUpper(c.JWTAlgorithm)]; !ok || algorithms[strings.ToUpper(c.JWTAlgorithm)] != c.JWTAlgorithm {
		fail("JWT_ALGORITHM", "%s is not supported (HS256, HS384, HS512, RS256, ES256, EdDSA)", quote(c.JWTAlgorithm))
	}
	if a := c.OIDCIDTokenAlgorithm; a != "" && a != "RS256" && a != "ES256" && a != "EdDSA" {
		fail("OIDC_ID_TOKEN_ALGORITHM", "%s is not supported (RS256, ES256, EdDSA: ID tokens are verified with the published keys)", quote(a))
	}
	c.checkSecrets(fail, warn)
	switch {
	case strings.TrimSpace(c.JWTIssuer) == "":
		fail("JWT_ISSUER", "must not be empty")
	case prod && c.IssuerIsURL() && !c.IssuerIsHTTPS():
		// RFC 8414 §2: the issuer identifier is a URL that uses https.
		fail("JWT_ISSUER", "%s is not an https URL; in production the issuer that tokens and discovery metadata name must be the external https URL (RFC 8414 §2), e.g. https://auth.example.com (PUBLIC_URL is not used when JWT_ISSUER is a URL)", quote(c.JWTIssuer))
	case prod && !c.IssuerIsURL() && c.PublicURLIsDefault():
		// Each instance would advertise its own http://HOST:PORT, so
		// behind a load balancer the metadata issuer would change from
		// one request to the next (RFC 8414 §3.3 wants one).
		fail("JWT_ISSUER", "%s is not a URL and PUBLIC_URL is not set, so every instance would advertise its own address (%s) as the issuer in its discovery metadata; in production set JWT_ISSUER to the external https URL (e.g. https://auth.example.com), or keep JWT_ISSUER and set PUBLIC_URL to the external URL", quote(c.JWTIssuer), c.PublicURL)
	case !c.IssuerIsURL() && (prod || c.Environment == EnvStaging):
		warn("JWT_ISSUER %s is not a URL: discovery metadata will use PUBLIC_URL (%s) as the issuer; an https URL issuer is recommended (RFC 8414)", quote(c.JWTIssuer), c.PublicURL)
	}
	minDur := func(name string, d, lower time.Duration) {
		if d < lower {
			fail(name, "must be at least %s (got %s)", fmtDur(lower), fmtDur(d))
		}
	}
	minDur("ACCESS_TOKEN_EXPIRE_MINUTES", c.AccessTokenExpire, time.Minute)
	minDur("REFRESH_TOKEN_EXPIRE_DAYS", c.RefreshTokenExpire, 24*time.Hour)
	minDur("SERVICE_TOKEN_EXPIRE_MINUTES", c.ServiceTokenExpire, time.Minute)
	minDur("REFRESH_TOKEN_REUSE_GRACE_SECONDS", c.RefreshTokenReuseGrace, 0)
	if c.SessionMaxLifetime < c.RefreshTokenExpire {
		fail("SESSION_MAX_LIFETIME_DAYS", "must be at least REFRESH_TOKEN_EXPIRE_DAYS (%s)", fmtDur(c.RefreshTokenExpire))
	}
	if c.RefreshTokenReuseGrace > 5*time.Minute {
		warn("REFRESH_TOKEN_REUSE_GRACE_SECONDS=%d is long: a stolen refresh token can be replayed for that long without revoking its family", int(c.RefreshTokenReuseGrace/time.Second))
	}
	if prod && c.RevocationFailOpen {
		warn("REVOCATION_FAIL_OPEN=true: revoked tokens are accepted while Redis is unreachable")
	}

	// Password policy.
	minInt := func(name string, v, lower int) bool {
		if v < lower {
			fail(name, "must be at least %d (got %d)", lower, v)
			return false
		}
		return true
	}
	okMin := minInt("PASSWORD_MIN_LENGTH", c.PasswordMinLength, 1)
	okMax := minInt("PASSWORD_MAX_LENGTH", c.PasswordMaxLength, 1)
	if okMax && c.PasswordMaxLength > 4096 {
		fail("PASSWORD_MAX_LENGTH", "must be at most 4096 (got %d)", c.PasswordMaxLength)
	} else if okMin && okMax && c.PasswordMinLength > c.PasswordMaxLength {
		fail("PASSWORD_MIN_LENGTH", "%d is greater than PASSWORD_MAX_LENGTH (%d)", c.PasswordMinLength, c.PasswordMaxLength)
	}
	if okMin && c.PasswordMinLength < 8 && prod {
		warn("PASSWORD_MIN_LENGTH=%d is below the NIST SP 800-63B minimum of 8", c.PasswordMinLength)
	}
	minInt("PASSWORD_PREVENT_REUSE_COUNT", c.PasswordPreventReuseCount, 0)
	minInt("PASSWORD_MAX_AGE_DAYS", c.PasswordMaxAgeDays, 0)
	if minInt("PASSWORD_HASH_CONCURRENCY", c.PasswordHashConcurrency, 1) && c.PasswordHashConcurrency > 1024 {
		fail("PASSWORD_HASH_CONCURRENCY", "must be at most 1024 (got %d)", c.PasswordHashConcurrency)
	}

	// Rate limits and lockout.
	for _, r := range []struct {
		name string
		r    RateLimit
	}{
		{"RATE_LIMIT_LOGIN", c.RateLimitLogin}, {"RATE_LIMIT_REGISTER", c.RateLimitRegister},
		{"RATE_LIMIT_API", c.RateLimitAPI}, {"RATE_LIMIT_REFRESH", c.RateLimitRefresh},
		{"RATE_LIMIT_SERVICE_TOKEN", c.RateLimitServiceToken},
	} {
		if r.r.Count < 0 || (r.r.Count > 0 && r.r.Period <= 0) {
			fail(r.name, "count and period must both be positive, or both zero to disable")
		}
	}
	minInt("MAX_LOGIN_ATTEMPTS", c.MaxLoginAttempts, 1)
	minDur("LOCKOUT_DURATION_MINUTES", c.LockoutDuration, time.Minute)

	// CORS, hosts, proxies.
	wildcard := false
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			wildcard = true
		} else if _, err := normalizeOrigin(o); err != nil {
			fail("ALLOWED_ORIGINS", "%s is not an origin (scheme://host[:port], no path) or *", quote(o))
		}
	}
	if wildcard && c.AllowCredentials {
		if prod {
			fail("ALLOWED_ORIGINS", `"*" cannot be combined with ALLOW_CREDENTIALS=true in production: list the origins, or set ALLOW_CREDENTIALS=false`)
		} else {
			c.AllowCredentials = false
			warn(`ALLOWED_ORIGINS contains "*": credentials are switched off for CORS (ALLOW_CREDENTIALS=true ignored); list the origins to allow credentials`)
		}
	}
	for _, m := range c.AllowedMethods {
		if m != "*" && !isToken(m) {
			fail("ALLOWED_METHODS", "%s is not an HTTP method", quote(m))
		}
	}
	for _, h := range c.AllowedHeaders {
		if h != "*" && !isToken(h) {
			fail("ALLOWED_HEADERS", "%s is not a header name", quote(h))
		}
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t@?#") || strings.Contains(h[1:], "*") {
			fail("ALLOWED_HOSTS", "%s is not a host name (example.com or *.example.com, without scheme or path)", quote(h))
		}
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			fail("TRUSTED_PROXIES", "contains an invalid prefix")
		} else if p.Bits() == 0 && prod {
			warn("TRUSTED_PROXIES contains %s: every client can choose the IP that rate limits and audit events see", p)
		}
	}

	// Logging and monitoring.
	if c.LogFormat != "json" && c.LogFormat != "text" {
		fail("LOG_FORMAT", "%s is not json or text", quote(c.LogFormat))
	}
	checkPath := func(name, p string, emptyOK bool) {
		if p == "" && emptyOK {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t?#") {
			fail(name, "%s is not a path starting with /", quote(p))
		}
	}
	checkPath("METRICS_PATH", c.MetricsPath, false)
	checkPath("DOCS_URL", c.DocsURL, true)
	checkPath("REDOC_URL", c.RedocURL, true)
	checkPath("OPENAPI_URL", c.OpenAPIURL, true)
	checkPath("API_V1_PREFIX", c.APIV1Prefix, true)
	if strings.HasSuffix(c.APIV1Prefix, "/") {
		fail("API_V1_PREFIX", "%s must not end with /", quote(c.APIV1Prefix))
	}

	// Cache.
	prefixes := []struct{ name, p string }{
		{"CACHE_TOKEN_PREFIX", c.CacheTokenPrefix}, {"CACHE_SESSION_PREFIX", c.CacheSessionPrefix},
		{"CACHE_RATE_LIMIT_PREFIX", c.CacheRateLimitPrefix}, {"CACHE_USER_PREFIX", c.CacheUserPrefix},
	}
	for i, a := range prefixes {
		if a.p == "" || strings.ContainsAny(a.p, " \t\r\n") {
			fail(a.name, "%s is not a Redis key prefix (non-empty, no spaces)", quote(a.p))
			continue
		}
		for _, b := range prefixes[:i] {
			if b.p != "" && (strings.HasPrefix(a.p, b.p) || strings.HasPrefix(b.p, a.p)) {
				fail(a.name, "%s overlaps %s (%s): keys of the two kinds could collide", quote(a.p), b.name, quote(b.p))
			}
		}
	}
	minDur("CACHE_DEFAULT_TTL", c.CacheDefaultTTL, time.Second)
	if c.CacheDefaultTTL > 0 && c.CacheDefaultTTL != DefaultCacheTTL {
		warn("CACHE_DEFAULT_TTL=%d has no effect: every Redis entry permiso writes expires with what it describes, and the in-process cache uses CACHE_LOCAL_TTL", int(c.CacheDefaultTTL/time.Second))
	}
	if c.CacheLocalTTL < 0 {
		fail("CACHE_LOCAL_TTL", "must not be negative (0 disables the in-process cache)")
	}

	// Process, mail, audit.
	minDur("SHUTDOWN_TIMEOUT_SECONDS", c.ShutdownTimeout, time.Second)
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		fail("SMTP_PORT", "%d is not a valid port", c.SMTPPort)
	}
	if c.SMTPHost != "" {
		if c.SMTPFrom == "" {
			fail("SMTP_FROM", "is required when SMTP_HOST is set")
		}
		if prod && c.SMTPUsername != "" && !c.SMTPStartTLS && c.SMTPPort != 465 {
			warn("SMTP_STARTTLS=false: the SMTP password is sent in clear text")
		}
	}
	if c.SMTPFrom != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			fail("SMTP_FROM", "%s is not a mail address", quote(c.SMTPFrom))
		}
	}
	minInt("AUDIT_RETENTION_DAYS", c.AuditRetentionDays, 0)
	sortErrors(errs)
	return warnings, errs
}

// checkSecrets applies the refusals of docs/deployment.md ("Production
// settings that matter") to JWT_SECRET_KEY, JWT_PREVIOUS_SECRET_KEYS and
// JWT_NEXT_SECRET_KEYS: errors in production for HS* algorithms, warnings
// otherwise.
func (c *Config) checkSecrets(fail func(string, string, ...any), warn func(string, ...any)) {
	strict := c.IsProduction() && c.IsSymmetric()
	complain := func(name, problem string) {
		if strict {
			fail(name, "%s; refusing to start in production (generate one with: openssl rand -hex 32)", problem)
		} else {
			warn("%s: %s", name, problem)
		}
	}
	switch {
	case c.JWTSecretKey == "":
		if strict {
			fail("JWT_SECRET_KEY", "is required in production for %s (set it or JWT_SECRET_KEY_FILE; generate one with: openssl rand -hex 32)", c.JWTAlgorithm)
		}
	case isPlaceholderSecret(c.JWTSecretKey):
		complain("JWT_SECRET_KEY", "is a well-known placeholder, not a secret")
	case len(c.JWTSecretKey) < MinSecretLength:
		complain("JWT_SECRET_KEY", fmt.Sprintf("is %d bytes long; at least %d are needed", len(c.JWTSecretKey), MinSecretLength))
	}
	for _, l := range []struct {
		name string
		keys []string
	}{{"JWT_PREVIOUS_SECRET_KEYS", c.JWTPreviousSecretKeys}, {"JWT_NEXT_SECRET_KEYS", c.JWTNextSecretKeys}} {
		for i, k := range l.keys {
			n := strconv.Itoa(i + 1)
			switch {
			case isPlaceholderSecret(k):
				complain(l.name, "key "+n+" is a well-known placeholder, not a secret")
			case len(k) < MinSecretLength:
				complain(l.name, fmt.Sprintf("key %s is %d bytes long; at least %d are needed", n, len(k), MinSecretLength))
			case k == c.JWTSecretKey:
				warn("%s: key %s equals JWT_SECRET_KEY", l.name, n)
			}
		}
	}
	if !c.IsSymmetric() && len(c.JWTNextSecretKeys) > 0 {
		warn("JWT_NEXT_SECRET_KEYS is ignored with JWT_ALGORITHM=%s (rotate with: permiso keys rotate)", c.JWTAlgorithm)
	}
}

// placeholderSecrets are refused as JWT keys in production: values copied
// from documentation, tutorials and framework defaults. They are compared
// after lower-casing and turning '_' and ' ' into '-'.
var placeholderSecrets = []string{
	"secret", "secret-key", "secretkey", "jwt-secret", "jwt-secret-key", "jwtsecret",
	"mysecret", "my-secret", "my-secret-key", "mysecretkey", "supersecret", "super-secret",
	"super-secret-key", "topsecret", "top-secret", "your-secret-key", "your-jwt-secret",
	"changeme", "change-me", "password", "passw0rd", "default", "test", "testing",
	"development", "dev", "key", "private", "token", "qwerty", "letmein", "admin",
	"your-super-secure-jwt-secret-key-here", "your-256-bit-secret", "your-512-bit-secret",
	"shhhhh", "keyboard-cat", "s3cr3t", "notasecret", "insecure", "xxx",
}

// placeholderMarks anywhere in a key mark it as a placeholder.
var placeholderMarks = []string{
	"changeme", "change-me", "change-this", "changethis", "replace-me", "replaceme",
	"replace-with", "replace-this", "placeholder", "example", "insecure", "dummy",
	"sample", "put-your", "insert-your", "your-secret", "your-jwt", "your-key",
	"secret-key-here", "key-here", "not-secure", "notsecure", "do-not-use",
}

// isPlaceholderSecret reports whether s is a known placeholder or an
// obviously non-random key (such as "aaaa…" or "0123…" repeated).
func isPlaceholderSecret(s string) bool {
	n := strings.NewReplacer("_", "-", " ", "-").Replace(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(placeholderSecrets, n) {
		return true
	}
	for _, m := range placeholderMarks {
		if strings.Contains(n, m) {
			return true
		}
	}
	if strings.Contains(n, "your-") && strings.Contains(n, "secret") {
		return true
	}
	// Fewer than 8 distinct bytes in a key of the required length cannot be
	// random: 32 random hex digits show about 14 of the 16.
	if len(s) >= MinSecretLength {
		seen := map[byte]bool{}
		for i := 0; i < len(s); i++ {
			seen[s[i]] = true
		}
		if len(seen) < 8 {
			return true
		}
	}
	return false
}

// normalizeOrigin returns o as browsers send it in the Origin header:
// lower-case scheme://host[:port] without a default port or trailing slash.
func normalizeOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
		strings.Contains(u.Host, "*") {
		return o, errors.New("not an origin")
	}
	host := strings.ToLower(u.Host)
	if (u.Scheme == "https" && strings.HasSuffix(host, ":443")) || (u.Scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return u.Scheme + "://" + host, nil
}

// isToken reports whether s is an RFC 9110 token (method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	return true
}

// quote shows a value in an error message, shortened when long.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// scheme is the part of a URL before ":", or "" (never the rest: it may
// hold a password).
func scheme(u string) string {
	s, _, ok := strings.Cut(u, ":")
	if !ok || strings.ContainsAny(s, "/@") {
		return ""
	}
	return s
}

// fmtDur shows a duration in the unit its variable uses.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	case d%time.Second == 0:
		return plural(int64(d/time.Second), "second")
	}
	return d.String()
}

func plural(n int64, unit string) string {
	if n == 1 || n == -1 {
		return strconv.FormatInt(n, 10) + " " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

// redisSchemes are the REDIS_URL schemes: one server (redis, rediss,
// unix), Redis Cluster (redis+cluster, or several comma-separated hosts in
// a redis:// URL) and Sentinel (redis+sentinel); docs/abuse-resistance.md.
var redisSchemes = map[string]bool{
	"redis": true, "rediss": true, "unix": true,
	"redis+cluster": true, "rediss+cluster": true,
	"redis+sentinel": true, "rediss+sentinel": true,
}
