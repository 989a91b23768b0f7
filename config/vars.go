package config

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/permiso/permiso/internal/mapslice"
)

// Variable describes one environment variable that Load reads.
type Variable struct {
	// Name is the variable's name, e.g. "PORT". NAME_FILE is accepted too.
	Name string
	// Default is the default as it would be written in the environment
	// (so NAME=Default behaves as leaving NAME unset). It is "" for
	// defaults that are computed or empty; Description says which.
	Default string
	// Description is one sentence or two for the README and .env.example.
	Description string
	// Secret values are never shown in error messages and should be given
	// through NAME_FILE in production.
	Secret bool
	// Guide is true for the variables that the production deployment guide
	// names; the others are permiso's own additions.
	Guide bool
	// Ignored variables are accepted for the guide's sake and have no
	// effect (a warning says so when they are set).
	Ignored bool
}

// MarkdownRow is the variable's row in README.md's configuration table:
// | `NAME` | `default` | description |.
func (v Variable) MarkdownRow() string {
	def := "(empty)"
	if v.Default != "" {
		def = v.Default
	}
	desc := v.Description
	if v.Ignored {
		desc += " (accepted and ignored)"
	}
	return "| `" + v.Name + "` | `" + def + "` | " + desc + " |"
}

// spec is a Variable plus how Load applies it.
type spec struct {
	Variable
	// keepEmpty: an empty value is a value (DOCS_URL= disables the docs),
	// not "use the default".
	keepEmpty bool
	// set parses v into c. v is the raw value (secrets are not trimmed).
	set func(c *Config, v string) error
}

// Variables lists every variable Load reads, in a stable order (the
// guide's order, with permiso's additions next to their group).
func Variables() []Variable {
	return mapslice.Map(specs, func(s spec) Variable { return s.Variable })
}

// Setter builders. Each takes an accessor for the field it fills.

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = strings.TrimSpace(v); return nil }
}

func secret(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func boolean(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		if err == nil {
			*f(c) = b
		}
		return err
	}
}

func integer(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v)
		if err == nil {
			*f(c) = n
		}
		return err
	}
}

func port(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v)
		if err != nil || n < 0 || n > 65535 {
			return bad("is not a valid port")
		}
		*f(c) = n
		return nil
	}
}

func duration(unit time.Duration, f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseDuration(v, unit)
		if err == nil {
			*f(c) = d
		}
		return err
	}
}

func list(f func(*Config) *[]string, norm func(string) string) func(*Config, string) error {
	return func(c *Config, v string) error {
		items, err := parseList(v)
		if err != nil {
			return err
		}
		if norm != nil {
			for i := range items {
				items[i] = norm(items[i])
			}
		}
		*f(c) = items
		return nil
	}
}

func rate(f func(*Config) *RateLimit) func(*Config, string) error {
	return func(c *Config, v string) error {
		r, err := ParseRateLimit(v)
		if err != nil {
			return bad("is not a rate limit: %v", err)
		}
		*f(c) = r
		return nil
	}
}

func ignored(*Config, string) error { return nil }

// specs is the single table behind Load and Variables.
var specs = []spec{
	// Application
	{Variable: Variable{Name: "APP_NAME", Default: "permiso Authentication API", Guide: true,
		Description: "Name shown by GET / and /health."},
		set: str(func(c *Config) *string { return &c.AppName })},
	{Variable: Variable{Name: "VERSION", Guide: true,
		Description: "Version shown by GET / and /health. Default: the build version."},
		set: str(func(c *Config) *string { return &c.Version })},
	{Variable: Variable{Name: "DEBUG", Default: "false", Guide: true,
		Description: "Debug mode: logs at debug level whatever LOG_LEVEL says. Forced to false (with a warning) when ENVIRONMENT=production."},
		set: boolean(func(c *Config) *bool { return &c.Debug })},
	{Variable: Variable{Name: "ENVIRONMENT", Default: EnvDevelopment, Guide: true,
		Description: "development, staging, production or test (any case). production turns on the strict checks: a strong JWT_SECRET_KEY, no SQLite, no wildcard CORS origin with credentials, one advertised issuer URL (an https JWT_ISSUER or PUBLIC_URL)."},
		set: func(c *Config, v string) error { c.Environment = strings.ToLower(strings.TrimSpace(v)); return nil }},

	// Server
	{Variable: Variable{Name: "HOST", Default: "0.0.0.0", Guide: true,
		Description: "Listen address."},
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
				v = v[1 : len(v)-1]
			}
			c.Host = v
			return nil
		}},
	{Variable: Variable{Name: "PORT", Default: "8000", Guide: true,
		Description: "Listen port (0 picks a free port)."},
		set: port(func(c *Config) *int { return &c.Port })},
	{Variable: Variable{Name: "PUBLIC_URL",
		Description: "External base URL (scheme://host[:port][/path]) used in discovery metadata and links when JWT_ISSUER is not a URL. Default: http://HOST:PORT, with 0.0.0.0 shown as localhost. In production, required (the same absolute http(s) URL on every instance) unless JWT_ISSUER is an https URL."},
		set: func(c *Config, v string) error {
			c.PublicURL = strings.TrimRight(strings.TrimSpace(v), "/")
			return nil
		}},

	// Database
	{Variable: Variable{Name: "DATABASE_URL", Default: "sqlite://permiso.db", Guide: true, Secret: true,
		Description: "postgresql://, postgres:// or postgresql+asyncpg:// (driver suffix ignored) for PostgreSQL; sqlite://PATH (relative, or absolute with sqlite:///abs/path) or sqlite://:memory: for the embedded SQLite database."},
		set: str(func(c *Config) *string { return &c.DatabaseURL })},
	{Variable: Variable{Name: "DATABASE_PASSWORD", Secret: true,
		Description: "Replaces the password in a PostgreSQL DATABASE_URL, so a Docker secret can hold just the password (DATABASE_PASSWORD_FILE=/run/secrets/db_password)."},
		set: secret(func(c *Config) *string { return &c.DatabasePassword })},
	{Variable: Variable{Name: "DATABASE_POOL_SIZE", Default: "20", Guide: true,
		Description: "Database connections kept in the pool."},
		set: integer(func(c *Config) *int { return &c.DatabasePoolSize })},
	{Variable: Variable{Name: "DATABASE_MAX_OVERFLOW", Default: "10", Guide: true,
		Description: "Extra connections allowed under load; the pool holds at most DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW."},
		set: integer(func(c *Config) *int { return &c.DatabaseMaxOverflow })},
	{Variable: Variable{Name: "DATABASE_ECHO", Default: "false", Guide: true,
		Description: "Log each SQL statement at debug level."},
		set: boolean(func(c *Config) *bool { return &c.DatabaseEcho })},
	{Variable: Variable{Name: "AUTO_MIGRATE", Default: "true",
		Description: "serve applies pending migrations at startup (under a PostgreSQL advisory lock). With false and pending migrations, serve refuses to start."},
		set: boolean(func(c *Config) *bool { return &c.AutoMigrate })},
	{Variable: Variable{Name: "ALLOW_SQLITE_IN_PRODUCTION", Default: "false",
		Description: "Allow an SQLite DATABASE_URL when ENVIRONMENT=production (single instance only)."},
		set: boolean(func(c *Config) *bool { return &c.AllowSQLiteInProduction })},

	// Redis
	{Variable: Variable{Name: "REDIS_URL", Guide: true, Secret: true,
		Description: "redis://, rediss:// (TLS) or unix:// URL of one server; redis://host1:7000,host2:7001 or redis+cluster://... for Redis Cluster; redis+sentinel://sentinel1:26379,sentinel2:26379/mastername[/db] for Sentinel. Empty: rate limits, lockouts and revocations are kept in process (one instance only)."},
		keepEmpty: true,
		set:       str(func(c *Config) *string { return &c.RedisURL })},
	{Variable: Variable{Name: "REDIS_PASSWORD", Guide: true, Secret: true,
		Description: "Redis password; overrides the one in REDIS_URL."},
		set: secret(func(c *Config) *string { return &c.RedisPassword })},
	{Variable: Variable{Name: "REDIS_DECODE_RESPONSES", Default: "true", Guide: true,
		Description: "Accepted for compatibility; no effect."},
		set: boolean(func(c *Config) *bool { return &c.RedisDecodeResponses })},

	// JWT
	{Variable: Variable{Name: "JWT_SECRET_KEY", Guide: true, Secret: true,
		Description: "HMAC key for HS* tokens, used as given; at least 32 bytes (e.g. `openssl rand -hex 32`). Required in production, where known placeholders are refused. Outside production a key is generated and stored in .permiso-dev-secret when unset."},
		set: secret(func(c *Config) *string { return &c.JWTSecretKey })},
	{Variable: Variable{Name: "JWT_PREVIOUS_SECRET_KEYS", Secret: true,
		Description: "Comma-separated (or JSON array) former JWT_SECRET_KEY values that still verify tokens during a rotation, but never sign."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.JWTPreviousSecretKeys }, nil)},
	{Variable: Variable{Name: "JWT_NEXT_SECRET_KEYS", Secret: true,
		Description: "Comma-separated (or JSON array) future JWT_SECRET_KEY values that already verify tokens but never sign: set the new key here on every instance first, then make it JWT_SECRET_KEY, so a rolling restart refuses no token (docs/deployment.md)."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.JWTNextSecretKeys }, nil)},
	// MFA
	{Variable: Variable{Name: "MFA_ENCRYPTION_KEY", Secret: true,
		Description: "AES-256-GCM key that encrypts second-factor secrets at rest: 32 bytes as 64 hex digits (`openssl rand -hex 32`). Required in production once any user has enrolled a second factor (docs/mfa.md). Outside production a key is generated and stored in .permiso-dev-mfa-key when unset."},
		set: func(c *Config, v string) error {
			k, err := parseMFAKey(v)
			if err == nil {
				c.MFAEncryptionKey = k
			}
			return err
		}},
	{Variable: Variable{Name: "MFA_PREVIOUS_ENCRYPTION_KEYS", Secret: true,
		Description: "Comma-separated (or JSON array) former MFA_ENCRYPTION_KEY values that still decrypt second-factor secrets during a rotation, but never encrypt."},
		keepEmpty: true,
		set: func(c *Config, v string) error {
			items, err := parseList(v)
			if err != nil {
				return err
			}
			keys := make([][]byte, 0, len(items))
			for i, it := range items {
				k, err := parseMFAKey(it)
				if err != nil {
					return fmt.Errorf("item %d: %w", i+1, err)
				}
				keys = append(keys, k)
			}
			c.MFAPreviousEncryptionKeys = keys
			return nil
		}},
	{Variable: Variable{Name: "MFA_REQUIRED_ROLES",
		Description: "Comma-separated (or JSON array) role names whose holders must sign in with a second factor: the password grant asks such a user without one to enroll first (docs/mfa.md). Empty: a second factor is asked only of users who enrolled one."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.MFARequiredRoles }, strings.TrimSpace)},
	{Variable: Variable{Name: "JWT_ALGORITHM", Default: "HS256", Guide: true,
		Description: "HS256, HS384, HS512, RS256, ES256 or EdDSA. Asymmetric keys are generated, stored in the database, published at the JWKS URL and rotated with `permiso keys rotate`."},
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if canon, ok := algorithms[strings.ToUpper(v)]; ok {
				v = canon
			}
			c.JWTAlgorithm = v
			return nil
		}},
	{Variable: Variable{Name: "OIDC_ID_TOKEN_ALGORITHM",
		Description: "RS256, ES256 or EdDSA: the algorithm of OpenID Connect ID tokens, whose keys are published in the JWKS (docs/oidc.md). Default: JWT_ALGORITHM when it is asymmetric, else RS256."},
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if canon, ok := algorithms[strings.ToUpper(v)]; ok {
				v = canon
			}
			c.OIDCIDTokenAlgorithm = v
			return nil
		}},
	{Variable: Variable{Name: "JWT_ISSUER", Default: "permiso-auth", Guide: true,
		Description: "The iss claim, and the default audience. An https URL is recommended (RFC 8414); otherwise discovery metadata uses PUBLIC_URL. In production it must be an https URL, or PUBLIC_URL must be set."},
		set: str(func(c *Config) *string { return &c.JWTIssuer })},
	{Variable: Variable{Name: "JWT_AUDIENCE",
		Description: "The aud claim of issued tokens and the audience required when verifying. Default: JWT_ISSUER."},
		set: str(func(c *Config) *string { return &c.JWTAudience })},
	{Variable: Variable{Name: "ACCESS_TOKEN_EXPIRE_MINUTES", Default: "15", Guide: true,
		Description: "Lifetime of user access tokens, in minutes."},
		set: duration(time.Minute, func(c *Config) *time.Duration { return &c.AccessTokenExpire })},
	{Variable: Variable{Name: "REFRESH_TOKEN_EXPIRE_DAYS", Default: "30", Guide: true,
		Description: "Lifetime of refresh tokens (and sessions), in days."},
		set: duration(24*time.Hour, func(c *Config) *time.Duration { return &c.RefreshTokenExpire })},
	{Variable: Variable{Name: "SERVICE_TOKEN_EXPIRE_MINUTES", Default: "15", Guide: true,
		Description: "Default lifetime of client-credentials tokens, in minutes (a client may set its own)."},
		set: duration(time.Minute, func(c *Config) *time.Duration { return &c.ServiceTokenExpire })},
	{Variable: Variable{Name: "REFRESH_TOKEN_REUSE_GRACE_SECONDS", Default: "10",
		Description: "A rotated refresh token presented again within this many seconds gets a fresh pair once (client retry), unless its replacement was already used; later reuse, or reuse after the replacement was used, revokes the whole token family. 0 disables the grace."},
		set: duration(time.Second, func(c *Config) *time.Duration { return &c.RefreshTokenReuseGrace })},
	{Variable: Variable{Name: "SESSION_MAX_LIFETIME_DAYS", Default: "90",
		Description: "Absolute lifetime of a login session, in days: each refresh moves the session's expiry forward by REFRESH_TOKEN_EXPIRE_DAYS, but never past its creation plus this; then the user logs in again."},
		set: duration(24*time.Hour, func(c *Config) *time.Duration { return &c.SessionMaxLifetime })},
	{Variable: Variable{Name: "REVOCATION_FAIL_OPEN", Default: "false",
		Description: "When the revocation status cannot be established (Redis unreachable; with the revocation feed, also a stale feed under REVOCATION_FEED_STALE=fail, e.g. an instance paused or cut off for longer than REVOCATION_FEED_MAX_LAG_MS), accept bearer tokens without the revocation check instead of answering 503. Tokens the instance already knows to be revoked are refused all the same."},
		set: boolean(func(c *Config) *bool { return &c.RevocationFailOpen })},
	{Variable: Variable{Name: "REVOCATION_FEED", Default: "true",
		Description: "With Redis: hold the revocation state in memory on every instance, fed by a Redis stream, so bearer checks make no network call for it (docs/architecture.md, \"Revocation feed\"). false: look revocations up in Redis on every bearer check."},
		set: boolean(func(c *Config) *bool { return &c.RevocationFeed })},
	{Variable: Variable{Name: "REVOCATION_FEED_MAX_LAG_MS", Default: "1000",
		Description: "The bound of the revocation feed, in milliseconds: a revocation is effective on every instance within it, and an instance whose feed has not been confirmed complete for longer treats it as stale (REVOCATION_FEED_STALE). 100 to 60000: the feed renews its proof about ten times within the bound, and a bound much below a second turns the feed stale whenever a loaded host delays Redis or the reader."},
		set: duration(time.Millisecond, func(c *Config) *time.Duration { return &c.RevocationFeedMaxLag })},
	{Variable: Variable{Name: "REVOCATION_FEED_STALE", Default: "fail",
		Description: "What a bearer check does while the revocation feed is stale and memory does not already say revoked: fail (503 with Retry-After, or accept with REVOCATION_FAIL_OPEN) or lookup (ask Redis for that request, as with REVOCATION_FEED=false)."},
		set: str(func(c *Config) *string { return &c.RevocationFeedStale })},

	// Password policy
	{Variable: Variable{Name: "PASSWORD_MIN_LENGTH", Default: "12", Guide: true,
		Description: "Minimum password length, in characters."},
		set: integer(func(c *Config) *int { return &c.PasswordMinLength })},
	{Variable: Variable{Name: "PASSWORD_MAX_LENGTH", Default: "128", Guide: true,
		Description: "Maximum password length, in characters (at most 4096)."},
		set: integer(func(c *Config) *int { return &c.PasswordMaxLength })},
	{Variable: Variable{Name: "PASSWORD_REQUIRE_UPPERCASE", Default: "true", Guide: true,
		Description: "Passwords need an upper-case letter."},
		set: boolean(func(c *Config) *bool { return &c.PasswordRequireUppercase })},
	{Variable: Variable{Name: "PASSWORD_REQUIRE_LOWERCASE", Default: "true", Guide: true,
		Description: "Passwords need a lower-case letter."},
		set: boolean(func(c *Config) *bool { return &c.PasswordRequireLowercase })},
	{Variable: Variable{Name: "PASSWORD_REQUIRE_DIGITS", Default: "true", Guide: true,
		Description: "Passwords need a digit."},
		set: boolean(func(c *Config) *bool { return &c.PasswordRequireDigits })},
	{Variable: Variable{Name: "PASSWORD_REQUIRE_SPECIAL", Default: "true", Guide: true,
		Description: "Passwords need a character that is neither a letter nor a digit."},
		set: boolean(func(c *Config) *bool { return &c.PasswordRequireSpecial })},
	{Variable: Variable{Name: "PASSWORD_PREVENT_REUSE_COUNT", Default: "10", Guide: true,
		Description: "A new password may not equal any of the user's last N passwords (0 disables)."},
		set: integer(func(c *Config) *int { return &c.PasswordPreventReuseCount })},
	{Variable: Variable{Name: "PASSWORD_MAX_AGE_DAYS", Default: "90", Guide: true,
		Description: "Days after which a password expires and must be changed before login succeeds (0 disables)."},
		set: integer(func(c *Config) *int { return &c.PasswordMaxAgeDays })},
	{Variable: Variable{Name: "PASSWORD_HASH_MEMORY_KIB", Default: "65536",
		Description: "Argon2id memory cost of new password hashes, in KiB (at least 19456, OWASP's minimum; at most 1048576). Peak hashing memory is about PASSWORD_HASH_CONCURRENCY times this. Hashes made with other parameters still verify and are rehashed at the user's next login (docs/security-model.md)."},
		set: integer(func(c *Config) *int { return &c.PasswordHashMemoryKiB })},
	{Variable: Variable{Name: "PASSWORD_HASH_ITERATIONS", Default: "4",
		Description: "Argon2id passes over the memory for new password hashes (at least 2, OWASP's minimum; at most 20). Logins per second fall in proportion (docs/benchmarks.md)."},
		set: integer(func(c *Config) *int { return &c.PasswordHashIterations })},
	{Variable: Variable{Name: "PASSWORD_HASH_CONCURRENCY",
		Description: "Password hashes computed at once; further logins wait briefly, then get 503. Default: the number of CPUs."},
		set: integer(func(c *Config) *int { return &c.PasswordHashConcurrency })},

	// Rate limiting
	{Variable: Variable{Name: "RATE_LIMIT_LOGIN", Default: "5/minute", Guide: true, Description: rateDesc("login attempts (POST /auth/token password grant, /auth/change-password); the same rate, counted apart, bounds confirmations of mailed reset and verification tokens")},
		keepEmpty: true, set: rate(func(c *Config) *RateLimit { return &c.RateLimitLogin })},
	{Variable: Variable{Name: "RATE_LIMIT_REGISTER", Default: "3/hour", Guide: true, Description: rateDesc("registrations; the same rate, counted apart, bounds password-reset and verification mail requests")},
		keepEmpty: true, set: rate(func(c *Config) *RateLimit { return &c.RateLimitRegister })},
	{Variable: Variable{Name: "RATE_LIMIT_API", Default: "1000/minute", Guide: true, Description: rateDesc("API requests of any kind")},
		keepEmpty: true, set: rate(func(c *Config) *RateLimit { return &c.RateLimitAPI })},
	{Variable: Variable{Name: "RATE_LIMIT_REFRESH", Default: "10/minute", Guide: true, Description: rateDesc("token refreshes")},
		keepEmpty: true, set: rate(func(c *Config) *RateLimit { return &c.RateLimitRefresh })},
	{Variable: Variable{Name: "RATE_LIMIT_SERVICE_TOKEN", Default: "50/minute", Guide: true, Description: rateDesc("client-credentials token requests")},
		keepEmpty: true, set: rate(func(c *Config) *RateLimit { return &c.RateLimitServiceToken })},

	// Account lockout
	{Variable: Variable{Name: "MAX_LOGIN_ATTEMPTS", Default: "5", Guide: true,
		Description: "Consecutive failed logins that lock a username (known or not)."},
		set: integer(func(c *Config) *int { return &c.MaxLoginAttempts })},
	{Variable: Variable{Name: "LOCKOUT_DURATION_MINUTES", Default: "30", Guide: true,
		Description: "How long a locked username stays locked, in minutes."},
		set: duration(time.Minute, func(c *Config) *time.Duration { return &c.LockoutDuration })},

	// CORS and hosts
	{Variable: Variable{Name: "ALLOWED_ORIGINS", Guide: true,
		Description: "Comma-separated CORS origins (https://app.example.com) or *. Empty: no cross-origin access. * is never combined with credentials: refused in production, credentials switched off elsewhere."},
		keepEmpty: true,
		set: func(c *Config, v string) error {
			items, err := parseList(v)
			if err != nil {
				return err
			}
			var badItems []string
			for i, o := range items {
				n, err := normalizeOrigin(o)
				if err != nil {
					badItems = append(badItems, quote(o))
				}
				items[i] = n
			}
			if badItems != nil {
				return fmt.Errorf("%s is not an origin (scheme://host[:port], no path) or *", strings.Join(badItems, ", "))
			}
			c.AllowedOrigins = items
			return nil
		}},
	{Variable: Variable{Name: "ALLOWED_METHODS", Default: "GET,POST,PUT,DELETE,OPTIONS", Guide: true,
		Description: "Comma-separated CORS methods."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.AllowedMethods }, strings.ToUpper)},
	{Variable: Variable{Name: "ALLOWED_HEADERS", Default: "*", Guide: true,
		Description: "Comma-separated CORS request headers, or * for any."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.AllowedHeaders }, nil)},
	{Variable: Variable{Name: "ALLOW_CREDENTIALS", Default: "true", Guide: true,
		Description: "Send Access-Control-Allow-Credentials to allowed origins."},
		set: boolean(func(c *Config) *bool { return &c.AllowCredentials })},
	{Variable: Variable{Name: "ALLOWED_HOSTS", Guide: true,
		Description: "Comma-separated Host header allow-list, matched on the host name without the port; *.example.com matches subdomains. Empty: any host. Other hosts get 400."},
		keepEmpty: true,
		set:       list(func(c *Config) *[]string { return &c.AllowedHosts }, strings.ToLower)},
	{Variable: Variable{Name: "TRUSTED_PROXIES", Default: "127.0.0.0/8,::1/128",
		Description: "Comma-separated CIDRs or IPs of reverse proxies whose X-Forwarded-For / X-Real-IP are believed (e.g. the Docker network 172.16.0.0/12). Empty: trust no proxy."},
		keepEmpty: true,
		set: func(c *Config, v string) error {
			p, err := parsePrefixes(v)
			if err == nil {
				c.TrustedProxies = p
			}
			return err
		}},

	// Logging
	{Variable: Variable{Name: "LOG_LEVEL", Default: "INFO", Guide: true,
		Description: "DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."},
		set: func(c *Config, v string) error {
			l, err := parseLogLevel(v)
			if err == nil {
				c.LogLevel = l
			}
			return err
		}},
	{Variable: Variable{Name: "LOG_FORMAT", Default: "json", Guide: true,
		Description: "json or text."},
		set: func(c *Config, v string) error { c.LogFormat = strings.ToLower(strings.TrimSpace(v)); return nil }},
	{Variable: Variable{Name: "LOG_FILE", Guide: true,
		Description: "Append logs to this file (reopened on SIGHUP, for logrotate). Empty: stderr."},
		keepEmpty: true,
		set:       str(func(c *Config) *string { return &c.LogFile })},

	// Monitoring
	{Variable: Variable{Name: "ENABLE_METRICS", Default: "true", Guide: true,
		Description: "Serve Prometheus metrics at METRICS_PATH."},
		set: boolean(func(c *Config) *bool { return &c.EnableMetrics })},
	{Variable: Variable{Name: "METRICS_PATH", Default: "/metrics", Guide: true,
		Description: "Path of the Prometheus metrics (restrict it at the proxy)."},
		set: str(func(c *Config) *string { return &c.MetricsPath })},

	// Cache
	{Variable: Variable{Name: "CACHE_TOKEN_PREFIX", Default: "permiso:token:", Guide: true,
		Description: "Redis key prefix for token revocation state."},
		set: str(func(c *Config) *string { return &c.CacheTokenPrefix })},
	{Variable: Variable{Name: "CACHE_SESSION_PREFIX", Default: "permiso:session:", Guide: true,
		Description: "Redis key prefix for session state: the revocations of whole sessions (logout, session deletion, reuse detection)."},
		set: str(func(c *Config) *string { return &c.CacheSessionPrefix })},
	{Variable: Variable{Name: "CACHE_RATE_LIMIT_PREFIX", Default: "permiso:rate:", Guide: true,
		Description: "Redis key prefix for rate-limit and lockout counters."},
		set: str(func(c *Config) *string { return &c.CacheRateLimitPrefix })},
	{Variable: Variable{Name: "CACHE_USER_PREFIX", Default: "permiso:user:", Guide: true,
		Description: "Redis key prefix for cached user state, and of the cache invalidation channel (PREFIX + changes)."},
		set: str(func(c *Config) *string { return &c.CacheUserPrefix })},
	{Variable: Variable{Name: "CACHE_DEFAULT_TTL", Default: "3600", Guide: true,
		Description: "Accepted from the deployment guide's .env (docs/deployment.md); bounds nothing: every Redis entry permiso writes expires with what it describes (a revocation with its token, a window with its period, a lock with its duration), and the in-process cache has CACHE_LOCAL_TTL. Another value than the default logs a warning."},
		set: duration(time.Second, func(c *Config) *time.Duration { return &c.CacheDefaultTTL })},
	{Variable: Variable{Name: "CACHE_LOCAL_TTL", Default: "30",
		Description: "Seconds for which each instance keeps user status and service-client records in process, so bearer checks and client authentication skip the database. Writes evict them at once on every instance through Redis pub/sub (channel CACHE_USER_PREFIX + changes); without REDIS_URL, writes made by another process (another instance, permiso sessions revoke-all) are seen within this time. 0 disables the cache. See docs/caching.md."},
		set: duration(time.Second, func(c *Config) *time.Duration { return &c.CacheLocalTTL })},

	// API
	{Variable: Variable{Name: "API_V1_PREFIX", Default: "/api/v1", Guide: true,
		Description: "Path prefix of the API (/ mounts it at the root)."},
		set: func(c *Config, v string) error {
			c.APIV1Prefix = strings.TrimRight(strings.TrimSpace(v), "/")
			return nil
		}},
	{Variable: Variable{Name: "DOCS_URL", Default: "/docs", Guide: true,
		Description: "Path of the API documentation page; empty disables it."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.DocsURL })},
	{Variable: Variable{Name: "REDOC_URL", Default: "/redoc", Guide: true,
		Description: "Path of the ReDoc documentation page; empty disables it."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.RedocURL })},
	{Variable: Variable{Name: "OPENAPI_URL", Default: "/openapi.json", Guide: true,
		Description: "Path of the OpenAPI 3.1 document; empty disables it."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.OpenAPIURL })},

	// Python-only tuning from the guide.
	{Variable: Variable{Name: "UVICORN_WORKERS", Guide: true, Ignored: true,
		Description: "Ignored (with a warning): permiso is one Go process that uses every CPU; run more instances to scale out."},
		keepEmpty: true, set: ignored},
	{Variable: Variable{Name: "UVICORN_MAX_REQUESTS", Guide: true, Ignored: true,
		Description: "Ignored (with a warning): Go processes need no periodic restarts."},
		keepEmpty: true, set: ignored},
	{Variable: Variable{Name: "UVICORN_MAX_REQUESTS_JITTER", Guide: true, Ignored: true,
		Description: "Ignored (with a warning), as UVICORN_MAX_REQUESTS."},
		keepEmpty: true, set: ignored},

	// Process
	{Variable: Variable{Name: "SHUTDOWN_TIMEOUT_SECONDS", Default: "20",
		Description: "On SIGTERM/SIGINT, how long to let in-flight requests finish, in seconds."},
		set: duration(time.Second, func(c *Config) *time.Duration { return &c.ShutdownTimeout })},

	// Mail
	{Variable: Variable{Name: "SMTP_HOST",
		Description: "SMTP server for password-reset and verification mail. Empty: mail is written to the log instead."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.SMTPHost })},
	{Variable: Variable{Name: "SMTP_PORT", Default: "587",
		Description: "SMTP port (465 means implicit TLS)."},
		set: port(func(c *Config) *int { return &c.SMTPPort })},
	{Variable: Variable{Name: "SMTP_USERNAME",
		Description: "SMTP user name; empty: no authentication."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.SMTPUsername })},
	{Variable: Variable{Name: "SMTP_PASSWORD", Secret: true,
		Description: "SMTP password."},
		keepEmpty: true, set: secret(func(c *Config) *string { return &c.SMTPPassword })},
	{Variable: Variable{Name: "SMTP_FROM",
		Description: "From address of outgoing mail; required when SMTP_HOST is set."},
		keepEmpty: true, set: str(func(c *Config) *string { return &c.SMTPFrom })},
	{Variable: Variable{Name: "SMTP_STARTTLS", Default: "true",
		Description: "Require STARTTLS before authenticating (ignored on port 465, which is TLS from the start)."},
		set: boolean(func(c *Config) *bool { return &c.SMTPStartTLS })},

	// Audit
	{Variable: Variable{Name: "AUDIT_RETENTION_DAYS", Default: "90",
		Description: "Audit events older than this many days are deleted by maintenance cleanup; 0 keeps them forever."},
		set: integer(func(c *Config) *int { return &c.AuditRetentionDays })},
}

func rateDesc(what string) string {
	return "Limit on " + what + " per client IP: N/second, N/minute, N/hour or N/day (also N/M minutes). Empty disables it."
}

// parseMFAKey reads a 32-byte key written as 64 hex digits. Its error
// never quotes the value.
func parseMFAKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	k, err := hex.DecodeString(v)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("must be 32 bytes written as 64 hex digits (generate one with: openssl rand -hex 32)")
	}
	return k, nil
}
