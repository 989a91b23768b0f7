package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
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

// check is Validate plus the warnings: each section of the configuration
// is checked by its own function, and every problem of every section is
// reported at once.
func (c *Config) check() (warnings []string, errs Errors) {
	p := &problems{prod: c.IsProduction()}
	for _, section := range []func(*problems){
		c.checkServer, c.checkDatabase, c.checkRedis, c.checkTokens, c.checkPasswords,
		c.checkAbuse, c.checkHTTP, c.checkPaths, c.checkCache, c.checkProcess, c.checkMFA,
	} {
		section(p)
	}
	sortErrors(p.errs)
	return p.warnings, p.errs
}

// problems collects what the checks find: errors, each naming its
// variable, and warnings.
type problems struct {
	prod     bool // ENVIRONMENT=production: the strict checks apply
	warnings []string
	errs     Errors
}

// fail records an error about variable name.
func (p *problems) fail(name, format string, a ...any) {
	p.errs = append(p.errs, varErr(name, format, a...))
}

// warn records a warning.
func (p *problems) warn(format string, a ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, a...))
}

// minDur fails name when d is below lower.
func (p *problems) minDur(name string, d, lower time.Duration) {
	if d < lower {
		p.fail(name, "must be at least %s (got %s)", fmtDur(lower), fmtDur(d))
	}
}

// minInt fails name when v is below lower, and reports whether it is not.
func (p *problems) minInt(name string, v, lower int) bool {
	if v < lower {
		p.fail(name, "must be at least %d (got %d)", lower, v)
		return false
	}
	return true
}

// path fails name when v is not a path starting with / (empty is allowed
// when emptyOK).
func (p *problems) path(name, v string, emptyOK bool) {
	if v == "" && emptyOK {
		return
	}
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t?#") {
		p.fail(name, "%s is not a path starting with /", quote(v))
	}
}

// checkServer checks the application and the listener: ENVIRONMENT, DEBUG, HOST, PORT, PUBLIC_URL.
func (c *Config) checkServer(p *problems) {
	if !slices.Contains(environments, c.Environment) {
		p.fail("ENVIRONMENT", "%s is not one of %s", quote(c.Environment), strings.Join(environments, ", "))
	}
	if p.prod && c.Debug {
		c.Debug = false
		p.warn("DEBUG=true is ignored in production; debug mode is off")
	}
	listenOK := true
	if c.Host == "" || strings.ContainsAny(c.Host, " \t\r\n/[]?#@") {
		p.fail("HOST", "%s is not a host name or IP address", quote(c.Host))
		listenOK = false
	} else if _, err := netip.ParseAddr(c.Host); err != nil && strings.Contains(c.Host, ":") {
		p.fail("HOST", "%s is not a host name or IP address (give the port in PORT)", quote(c.Host))
		listenOK = false
	}
	if c.Port < 0 || c.Port > 65535 {
		p.fail("PORT", "%d is not a valid port", c.Port)
		listenOK = false
	}
	// (A PUBLIC_URL derived from a bad HOST or PORT is not a second problem.)
	if u, err := url.Parse(c.PublicURL); listenOK && (err != nil || !isHTTPURL(c.PublicURL) || u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		p.fail("PUBLIC_URL", "%s is not an http(s) base URL", quote(c.PublicURL))
	}
}

// checkDatabase checks DATABASE_URL and the pool.
func (c *Config) checkDatabase(p *problems) {
	switch c.DatabaseDriver() {
	case DriverSQLite:
		if c.SQLitePath() == "" {
			p.fail("DATABASE_URL", "the SQLite URL has no file path (use sqlite://permiso.db, sqlite:///abs/path.db or sqlite://:memory:)")
		}
		if p.prod && !c.AllowSQLiteInProduction {
			p.fail("DATABASE_URL", "SQLite is refused in production: use postgresql://... (or set ALLOW_SQLITE_IN_PRODUCTION=true for a single instance)")
		}
	case DriverPostgres:
		if c.PostgresURL() == "" {
			p.fail("DATABASE_URL", "the PostgreSQL URL cannot be parsed (value not shown; check that special characters in the password are percent-encoded)")
		}
	default:
		p.fail("DATABASE_URL", "unsupported database URL scheme %s (use postgresql:// or sqlite://)", quote(scheme(c.DatabaseURL)))
	}
	if c.DatabasePoolSize < 1 || c.DatabasePoolSize > 10000 {
		p.fail("DATABASE_POOL_SIZE", "%d is out of range (1 to 10000)", c.DatabasePoolSize)
	}
	if c.DatabaseMaxOverflow < 0 || c.DatabaseMaxOverflow > 10000 {
		p.fail("DATABASE_MAX_OVERFLOW", "%d is out of range (0 to 10000)", c.DatabaseMaxOverflow)
	}
}

// checkRedis checks REDIS_URL.
func (c *Config) checkRedis(p *problems) {
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || !redisSchemes[u.Scheme] {
			p.fail("REDIS_URL", "is not a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL (value not shown)")
		}
	} else if p.prod {
		p.warn("REDIS_URL is not set: rate limits, lockouts and revocations are kept in this process only and are not shared with other instances")
	}
}

// checkTokens checks the JWT algorithm, keys and issuer and the token
// lifetimes.
func (c *Config) checkTokens(p *problems) {
	if _, ok := algorithms[strings.ToUpper(c.JWTAlgorithm)]; !ok || algorithms[strings.ToUpper(c.JWTAlgorithm)] != c.JWTAlgorithm {
		p.fail("JWT_ALGORITHM", "%s is not supported (HS256, HS384, HS512, RS256, ES256, EdDSA)", quote(c.JWTAlgorithm))
	}
	if a := c.OIDCIDTokenAlgorithm; a != "" && a != "RS256" && a != "ES256" && a != "EdDSA" {
		p.fail("OIDC_ID_TOKEN_ALGORITHM", "%s is not supported (RS256, ES256, EdDSA: ID tokens are verified with the published keys)", quote(a))
	}
	c.checkSecrets(p)
	switch {
	case strings.TrimSpace(c.JWTIssuer) == "":
		p.fail("JWT_ISSUER", "must not be empty")
	case p.prod && c.IssuerIsURL() && !c.IssuerIsHTTPS():
		// RFC 8414 §2: the issuer identifier is a URL that uses https.
		p.fail("JWT_ISSUER", "%s is not an https URL; in production the issuer that tokens and discovery metadata name must be the external https URL (RFC 8414 §2), e.g. https://auth.example.com (PUBLIC_URL is not used when JWT_ISSUER is a URL)", quote(c.JWTIssuer))
	case p.prod && !c.IssuerIsURL() && c.PublicURLIsDefault():
		// Each instance would advertise its own http://HOST:PORT, so
		// behind a load balancer the metadata issuer would change from
		// one request to the next (RFC 8414 §3.3 wants one).
		p.fail("JWT_ISSUER", "%s is not a URL and PUBLIC_URL is not set, so every instance would advertise its own address (%s) as the issuer in its discovery metadata; in production set JWT_ISSUER to the external https URL (e.g. https://auth.example.com), or keep JWT_ISSUER and set PUBLIC_URL to the external URL", quote(c.JWTIssuer), c.PublicURL)
	case !c.IssuerIsURL() && (p.prod || c.Environment == EnvStaging):
		p.warn("JWT_ISSUER %s is not a URL: discovery metadata will use PUBLIC_URL (%s) as the issuer; an https URL issuer is recommended (RFC 8414)", quote(c.JWTIssuer), c.PublicURL)
	}
	p.minDur("ACCESS_TOKEN_EXPIRE_MINUTES", c.AccessTokenExpire, time.Minute)
	p.minDur("REFRESH_TOKEN_EXPIRE_DAYS", c.RefreshTokenExpire, 24*time.Hour)
	p.minDur("SERVICE_TOKEN_EXPIRE_MINUTES", c.ServiceTokenExpire, time.Minute)
	p.minDur("REFRESH_TOKEN_REUSE_GRACE_SECONDS", c.RefreshTokenReuseGrace, 0)
	if c.SessionMaxLifetime < c.RefreshTokenExpire {
		p.fail("SESSION_MAX_LIFETIME_DAYS", "must be at least REFRESH_TOKEN_EXPIRE_DAYS (%s)", fmtDur(c.RefreshTokenExpire))
	}
	if c.RefreshTokenReuseGrace > 5*time.Minute {
		p.warn("REFRESH_TOKEN_REUSE_GRACE_SECONDS=%d is long: a stolen refresh token can be replayed for that long without revoking its family", int(c.RefreshTokenReuseGrace/time.Second))
	}
	if p.prod && c.RevocationFailOpen {
		p.warn("REVOCATION_FAIL_OPEN=true: revoked tokens are accepted while Redis is unreachable")
	}
	if c.RevocationFeedStale != "fail" && c.RevocationFeedStale != "lookup" {
		p.fail("REVOCATION_FEED_STALE", "%s is not one of fail, lookup", quote(c.RevocationFeedStale))
	}
	if c.RevocationFeedMaxLag < 100*time.Millisecond || c.RevocationFeedMaxLag > time.Minute {
		p.fail("REVOCATION_FEED_MAX_LAG_MS", "must be between 100 and 60000 (got %d)", c.RevocationFeedMaxLag.Milliseconds())
	}
}

// checkPasswords checks the password policy and hashing.
func (c *Config) checkPasswords(p *problems) {
	okMin := p.minInt("PASSWORD_MIN_LENGTH", c.PasswordMinLength, 1)
	okMax := p.minInt("PASSWORD_MAX_LENGTH", c.PasswordMaxLength, 1)
	if okMax && c.PasswordMaxLength > 4096 {
		p.fail("PASSWORD_MAX_LENGTH", "must be at most 4096 (got %d)", c.PasswordMaxLength)
	} else if okMin && okMax && c.PasswordMinLength > c.PasswordMaxLength {
		p.fail("PASSWORD_MIN_LENGTH", "%d is greater than PASSWORD_MAX_LENGTH (%d)", c.PasswordMinLength, c.PasswordMaxLength)
	}
	if okMin && c.PasswordMinLength < 8 && p.prod {
		p.warn("PASSWORD_MIN_LENGTH=%d is below the NIST SP 800-63B minimum of 8", c.PasswordMinLength)
	}
	p.minInt("PASSWORD_PREVENT_REUSE_COUNT", c.PasswordPreventReuseCount, 0)
	p.minInt("PASSWORD_MAX_AGE_DAYS", c.PasswordMaxAgeDays, 0)
	// OWASP's Password Storage Cheat Sheet: Argon2id with at least
	// m=19456 KiB and t=2 (docs/security-model.md, "Password hashing").
	if p.minInt("PASSWORD_HASH_MEMORY_KIB", c.PasswordHashMemoryKiB, MinPasswordHashMemoryKiB) && c.PasswordHashMemoryKiB > MaxPasswordHashMemoryKiB {
		p.fail("PASSWORD_HASH_MEMORY_KIB", "must be at most %d (got %d)", MaxPasswordHashMemoryKiB, c.PasswordHashMemoryKiB)
	}
	if p.minInt("PASSWORD_HASH_ITERATIONS", c.PasswordHashIterations, MinPasswordHashIterations) && c.PasswordHashIterations > MaxPasswordHashIterations {
		p.fail("PASSWORD_HASH_ITERATIONS", "must be at most %d (got %d)", MaxPasswordHashIterations, c.PasswordHashIterations)
	}
	if p.minInt("PASSWORD_HASH_CONCURRENCY", c.PasswordHashConcurrency, 1) && c.PasswordHashConcurrency > 1024 {
		p.fail("PASSWORD_HASH_CONCURRENCY", "must be at most 1024 (got %d)", c.PasswordHashConcurrency)
	}
}

// checkAbuse checks the rate limits and the login lockout.
func (c *Config) checkAbuse(p *problems) {
	for _, r := range []struct {
		name string
		r    RateLimit
	}{
		{"RATE_LIMIT_LOGIN", c.RateLimitLogin}, {"RATE_LIMIT_REGISTER", c.RateLimitRegister},
		{"RATE_LIMIT_API", c.RateLimitAPI}, {"RATE_LIMIT_REFRESH", c.RateLimitRefresh},
		{"RATE_LIMIT_SERVICE_TOKEN", c.RateLimitServiceToken},
	} {
		if r.r.Count < 0 || (r.r.Count > 0 && r.r.Period <= 0) {
			p.fail(r.name, "count and period must both be positive, or both zero to disable")
		}
	}
	p.minInt("MAX_LOGIN_ATTEMPTS", c.MaxLoginAttempts, 1)
	p.minDur("LOCKOUT_DURATION_MINUTES", c.LockoutDuration, time.Minute)
}

// mfaRoleRE is the form of a role name (the identity service's rule: 2 to
// 50 characters, letters, digits, '_', '.', '-', starting with a letter
// or a digit).
var mfaRoleRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,49}$`)

// checkMFA checks MFA_REQUIRED_ROLES: every item a role name, none twice.
// A name that no role has yet is allowed (the role may be created later).
func (c *Config) checkMFA(p *problems) {
	seen := map[string]bool{}
	for i, r := range c.MFARequiredRoles {
		switch {
		case !mfaRoleRE.MatchString(r):
			p.fail("MFA_REQUIRED_ROLES", "item %d (%s) is not a role name (2 to 50 letters, digits, '_', '.', '-')", i+1, quote(r))
		case seen[r]:
			p.fail("MFA_REQUIRED_ROLES", "lists %s twice", quote(r))
		}
		seen[r] = true
	}
}

// checkHTTP checks CORS, the Host allow-list and the trusted proxies.
func (c *Config) checkHTTP(p *problems) {
	wildcard := false
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			wildcard = true
		} else if _, err := normalizeOrigin(o); err != nil {
			p.fail("ALLOWED_ORIGINS", "%s is not an origin (scheme://host[:port], no path) or *", quote(o))
		}
	}
	if wildcard && c.AllowCredentials {
		if p.prod {
			p.fail("ALLOWED_ORIGINS", `"*" cannot be combined with ALLOW_CREDENTIALS=true in production: list the origins, or set ALLOW_CREDENTIALS=false`)
		} else {
			c.AllowCredentials = false
			p.warn(`ALLOWED_ORIGINS contains "*": credentials are switched off for CORS (ALLOW_CREDENTIALS=true ignored); list the origins to allow credentials`)
		}
	}
	for _, m := range c.AllowedMethods {
		if m != "*" && !isToken(m) {
			p.fail("ALLOWED_METHODS", "%s is not an HTTP method", quote(m))
		}
	}
	for _, h := range c.AllowedHeaders {
		if h != "*" && !isToken(h) {
			p.fail("ALLOWED_HEADERS", "%s is not a header name", quote(h))
		}
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t@?#") || strings.Contains(h[1:], "*") {
			p.fail("ALLOWED_HOSTS", "%s is not a host name (example.com or *.example.com, without scheme or path)", quote(h))
		}
	}
	for _, proxy := range c.TrustedProxies {
		if !proxy.IsValid() {
			p.fail("TRUSTED_PROXIES", "contains an invalid prefix")
		} else if proxy.Bits() == 0 && p.prod {
			p.warn("TRUSTED_PROXIES contains %s: every client can choose the IP that rate limits and audit events see", proxy)
		}
	}
}

// checkPaths checks the log format and the served paths (metrics,
// documentation, API prefix).
func (c *Config) checkPaths(p *problems) {
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.fail("LOG_FORMAT", "%s is not json or text", quote(c.LogFormat))
	}
	p.path("METRICS_PATH", c.MetricsPath, false)
	p.path("DOCS_URL", c.DocsURL, true)
	p.path("REDOC_URL", c.RedocURL, true)
	p.path("OPENAPI_URL", c.OpenAPIURL, true)
	p.path("API_V1_PREFIX", c.APIV1Prefix, true)
	if strings.HasSuffix(c.APIV1Prefix, "/") {
		p.fail("API_V1_PREFIX", "%s must not end with /", quote(c.APIV1Prefix))
	}
}

// checkCache checks the Redis key prefixes and the cache TTLs.
func (c *Config) checkCache(p *problems) {
	prefixes := []struct{ name, p string }{
		{"CACHE_TOKEN_PREFIX", c.CacheTokenPrefix}, {"CACHE_SESSION_PREFIX", c.CacheSessionPrefix},
		{"CACHE_RATE_LIMIT_PREFIX", c.CacheRateLimitPrefix}, {"CACHE_USER_PREFIX", c.CacheUserPrefix},
	}
	for i, a := range prefixes {
		if a.p == "" || strings.ContainsAny(a.p, " \t\r\n") {
			p.fail(a.name, "%s is not a Redis key prefix (non-empty, no spaces)", quote(a.p))
			continue
		}
		for _, b := range prefixes[:i] {
			if b.p != "" && (strings.HasPrefix(a.p, b.p) || strings.HasPrefix(b.p, a.p)) {
				p.fail(a.name, "%s overlaps %s (%s): keys of the two kinds could collide", quote(a.p), b.name, quote(b.p))
			}
		}
	}
	p.minDur("CACHE_DEFAULT_TTL", c.CacheDefaultTTL, time.Second)
	if c.CacheDefaultTTL > 0 && c.CacheDefaultTTL != DefaultCacheTTL {
		p.warn("CACHE_DEFAULT_TTL=%d has no effect: every Redis entry permiso writes expires with what it describes, and the in-process cache uses CACHE_LOCAL_TTL", int(c.CacheDefaultTTL/time.Second))
	}
	if c.CacheLocalTTL < 0 {
		p.fail("CACHE_LOCAL_TTL", "must not be negative (0 disables the in-process cache)")
	}
}

// checkProcess checks shutdown, mail and audit retention.
func (c *Config) checkProcess(p *problems) {
	p.minDur("SHUTDOWN_TIMEOUT_SECONDS", c.ShutdownTimeout, time.Second)
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		p.fail("SMTP_PORT", "%d is not a valid port", c.SMTPPort)
	}
	if c.SMTPHost != "" {
		if c.SMTPFrom == "" {
			p.fail("SMTP_FROM", "is required when SMTP_HOST is set")
		}
		if p.prod && c.SMTPUsername != "" && !c.SMTPStartTLS && c.SMTPPort != 465 {
			p.warn("SMTP_STARTTLS=false: the SMTP password is sent in clear text")
		}
	}
	if c.SMTPFrom != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			p.fail("SMTP_FROM", "%s is not a mail address", quote(c.SMTPFrom))
		}
	}
	p.minInt("AUDIT_RETENTION_DAYS", c.AuditRetentionDays, 0)
}

// checkSecrets applies the refusals of docs/deployment.md ("Production
// settings that matter") to JWT_SECRET_KEY, JWT_PREVIOUS_SECRET_KEYS and
// JWT_NEXT_SECRET_KEYS: errors in production for HS* algorithms, warnings
// otherwise.
func (c *Config) checkSecrets(p *problems) {
	strict := c.IsProduction() && c.IsSymmetric()
	complain := func(name, problem string) {
		if strict {
			p.fail(name, "%s; refusing to start in production (generate one with: openssl rand -hex 32)", problem)
		} else {
			p.warn("%s: %s", name, problem)
		}
	}
	switch {
	case c.JWTSecretKey == "":
		if strict {
			p.fail("JWT_SECRET_KEY", "is required in production for %s (set it or JWT_SECRET_KEY_FILE; generate one with: openssl rand -hex 32)", c.JWTAlgorithm)
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
				p.warn("%s: key %s equals JWT_SECRET_KEY", l.name, n)
			}
		}
	}
	if !c.IsSymmetric() && len(c.JWTNextSecretKeys) > 0 {
		p.warn("JWT_NEXT_SECRET_KEYS is ignored with JWT_ALGORITHM=%s (rotate with: permiso keys rotate)", c.JWTAlgorithm)
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

// The accepted Argon2id costs of new password hashes: OWASP's minimum
// (m=19456 KiB, t=2) and the hasher's own maxima (1 GiB, 20 passes).
const (
	MinPasswordHashMemoryKiB  = 19456
	MaxPasswordHashMemoryKiB  = 1 << 20
	MinPasswordHashIterations = 2
	MaxPasswordHashIterations = 20
)
