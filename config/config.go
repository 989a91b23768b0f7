package config

import (
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Environments accepted in ENVIRONMENT. Only EnvProduction turns on the
// strict checks (README, "Configuration"); the others differ only in what the operator
// calls them.
const (
	EnvDevelopment = "development"
	EnvStaging     = "staging"
	EnvProduction  = "production"
	EnvTest        = "test"
)

// Database drivers returned by Config.DatabaseDriver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// LevelCritical is the slog level that LOG_LEVEL=CRITICAL maps to: above
// slog.LevelError, as Python's CRITICAL is above ERROR.
const LevelCritical = slog.LevelError + 4

// DevSecretFile is the base name of the file that EnsureDevSecret keeps a
// generated development JWT key in (see Config.DevSecretPath).
const DevSecretFile = ".permiso-dev-secret"

// MinSecretLength is the minimum length in bytes of an HMAC signing key
// (JWT_SECRET_KEY and each of JWT_PREVIOUS_SECRET_KEYS and
// JWT_NEXT_SECRET_KEYS): 256 bits, as
// RFC 7518 §3.2 requires for HS256.
const MinSecretLength = 32

// Config is permiso's whole configuration. Each field is named after its
// environment variable (see Variables for the names, defaults and meaning).
// Build one with Load, or with Defaults in tests.
type Config struct {
	// AppName (APP_NAME) is shown by GET / and /health.
	AppName string
	// Version (VERSION) is shown by GET / and /health. Empty means "the
	// build version": the caller fills it in.
	Version string
	// Debug (DEBUG). Validate forces it off in production.
	Debug bool
	// Environment (ENVIRONMENT) is one of EnvDevelopment, EnvStaging,
	// EnvProduction, EnvTest, lower case.
	Environment string

	// Host (HOST) and Port (PORT) are the listen address. Port 0 picks a
	// free port (used by tests).
	Host string
	Port int
	// PublicURL (PUBLIC_URL) is the external base URL, without a trailing
	// slash. Default http://HOST:PORT with 0.0.0.0 and :: shown as localhost.
	PublicURL string

	// DatabaseURL (DATABASE_URL): see DatabaseDriver, SQLitePath and
	// PostgresURL for the accepted forms.
	DatabaseURL string
	// DatabasePassword (DATABASE_PASSWORD), when set, replaces the password
	// in a PostgreSQL DATABASE_URL (see PostgresURL), so that the guide's
	// db_password Docker secret can be used as DATABASE_PASSWORD_FILE.
	DatabasePassword string
	// DatabasePoolSize (DATABASE_POOL_SIZE) and DatabaseMaxOverflow
	// (DATABASE_MAX_OVERFLOW): the pool holds at most PoolMax connections.
	DatabasePoolSize    int
	DatabaseMaxOverflow int
	// DatabaseEcho (DATABASE_ECHO) logs each SQL statement at debug level.
	DatabaseEcho bool
	// AutoMigrate (AUTO_MIGRATE): serve applies pending migrations.
	AutoMigrate bool
	// AllowSQLiteInProduction (ALLOW_SQLITE_IN_PRODUCTION) lifts the
	// production refusal of an SQLite DATABASE_URL.
	AllowSQLiteInProduction bool

	// RedisURL (REDIS_URL): redis://, rediss:// or unix://. Empty means
	// rate limits, lockouts and revocations live in process.
	RedisURL string
	// RedisPassword (REDIS_PASSWORD), when set, overrides the URL's password.
	RedisPassword string
	// RedisDecodeResponses (REDIS_DECODE_RESPONSES) is accepted for the
	// guide's sake and has no effect.
	RedisDecodeResponses bool

	// JWTSecretKey (JWT_SECRET_KEY) is the HMAC key for HS* tokens, used as
	// given (its bytes are the key). Empty outside production until
	// EnsureDevSecret fills it.
	JWTSecretKey string
	// JWTPreviousSecretKeys (JWT_PREVIOUS_SECRET_KEYS) still verify HS*
	// tokens but never sign.
	JWTPreviousSecretKeys []string
	// JWTNextSecretKeys (JWT_NEXT_SECRET_KEYS) already verify HS* tokens
	// but do not sign yet: the first phase of a rotation, so that every
	// instance accepts the new key before any signs with it
	// (docs/deployment.md, "Rotating the HS* secret").
	JWTNextSecretKeys []string
	// MFAEncryptionKey (MFA_ENCRYPTION_KEY) is the AES-256-GCM key that
	// seals second-factor secrets (docs/mfa.md). Empty outside production
	// until EnsureDevMFAKey fills it; in production it may stay empty until
	// the first user enrolls.
	MFAEncryptionKey []byte
	// MFAPreviousEncryptionKeys (MFA_PREVIOUS_ENCRYPTION_KEYS) still open
	// sealed secrets but never seal.
	MFAPreviousEncryptionKeys [][]byte
	// MFARequiredRoles (MFA_REQUIRED_ROLES) are the role names whose
	// holders must sign in with a second factor (docs/mfa.md).
	MFARequiredRoles []string
	// JWTAlgorithm (JWT_ALGORITHM): HS256, HS384, HS512, RS256, ES256 or
	// EdDSA, in that canonical spelling.
	JWTAlgorithm string
	// OIDCIDTokenAlgorithm (OIDC_ID_TOKEN_ALGORITHM) is the algorithm of ID
	// tokens; empty means IDTokenAlgorithm's default. Use IDTokenAlgorithm.
	OIDCIDTokenAlgorithm string
	// JWTIssuer (JWT_ISSUER) is the iss claim. See Issuer, MetadataIssuer.
	JWTIssuer string
	// JWTAudience (JWT_AUDIENCE); empty means JWTIssuer. Use Audience.
	JWTAudience string
	// AccessTokenExpire (ACCESS_TOKEN_EXPIRE_MINUTES).
	AccessTokenExpire time.Duration
	// RefreshTokenExpire (REFRESH_TOKEN_EXPIRE_DAYS).
	RefreshTokenExpire time.Duration
	// ServiceTokenExpire (SERVICE_TOKEN_EXPIRE_MINUTES) is the default
	// lifetime of client-credentials tokens.
	ServiceTokenExpire time.Duration
	// RefreshTokenReuseGrace (REFRESH_TOKEN_REUSE_GRACE_SECONDS): a rotated
	// refresh token presented again within this window gets a fresh pair
	// instead of revoking its family. Zero means no grace.
	RefreshTokenReuseGrace time.Duration
	// SessionMaxLifetime (SESSION_MAX_LIFETIME_DAYS): refreshes slide a
	// session's expiry, but never past its creation plus this.
	SessionMaxLifetime time.Duration
	// RevocationFailOpen (REVOCATION_FAIL_OPEN): when the revocation store
	// is unreachable, accept tokens instead of answering 503.
	RevocationFailOpen bool
	// RevocationFeed (REVOCATION_FEED): with Redis, hold the revocation
	// state in memory, fed by a Redis stream (docs/architecture.md,
	// "Revocation feed").
	RevocationFeed bool
	// RevocationFeedMaxLag (REVOCATION_FEED_MAX_LAG_MS) is the feed's
	// bound.
	RevocationFeedMaxLag time.Duration
	// RevocationFeedStale (REVOCATION_FEED_STALE): "fail" or "lookup".
	RevocationFeedStale string

	// Password policy (PASSWORD_*). PasswordMaxAgeDays 0 disables expiry.
	PasswordMinLength         int
	PasswordMaxLength         int
	PasswordRequireUppercase  bool
	PasswordRequireLowercase  bool
	PasswordRequireDigits     bool
	PasswordRequireSpecial    bool
	PasswordPreventReuseCount int
	PasswordMaxAgeDays        int
	// PasswordHashMemoryKiB (PASSWORD_HASH_MEMORY_KIB) and
	// PasswordHashIterations (PASSWORD_HASH_ITERATIONS) are the Argon2id
	// memory and time costs of new password hashes.
	PasswordHashMemoryKiB  int
	PasswordHashIterations int
	// PasswordHashConcurrency (PASSWORD_HASH_CONCURRENCY) bounds how many
	// password hashes run at once. Default: the number of CPUs.
	PasswordHashConcurrency int

	// Rate limits (RATE_LIMIT_*); a zero RateLimit is disabled.
	RateLimitLogin        RateLimit
	RateLimitRegister     RateLimit
	RateLimitAPI          RateLimit
	RateLimitRefresh      RateLimit
	RateLimitServiceToken RateLimit

	// MaxLoginAttempts (MAX_LOGIN_ATTEMPTS) consecutive failures lock a
	// username for LockoutDuration (LOCKOUT_DURATION_MINUTES).
	MaxLoginAttempts int
	LockoutDuration  time.Duration

	// AllowedOrigins (ALLOWED_ORIGINS) are CORS origins, normalized to
	// scheme://host[:port] without a trailing slash, or "*". Empty: no CORS.
	AllowedOrigins []string
	// AllowedMethods (ALLOWED_METHODS), upper case.
	AllowedMethods []string
	// AllowedHeaders (ALLOWED_HEADERS). ["*"] means any header; on
	// credentialed requests the CORS layer must echo the request's
	// Access-Control-Request-Headers, because browsers read a literal "*"
	// there when credentials are included.
	AllowedHeaders []string
	// AllowCredentials (ALLOW_CREDENTIALS). Validate guarantees it is never
	// true while AllowedOrigins contains "*": that is an error in
	// production and is switched off, with a warning, elsewhere.
	AllowCredentials bool
	// AllowedHosts (ALLOWED_HOSTS) is the Host header allow-list, lower
	// case, matched without the port; "*.example.com" matches subdomains.
	// Empty: any host.
	AllowedHosts []string
	// TrustedProxies (TRUSTED_PROXIES) are the networks whose
	// X-Forwarded-For / X-Real-IP headers are believed. Bare IPs become
	// /32 or /128 prefixes.
	TrustedProxies []netip.Prefix

	// LogLevel (LOG_LEVEL): DEBUG, INFO, WARNING/WARN, ERROR, CRITICAL.
	LogLevel slog.Level
	// LogFormat (LOG_FORMAT): "json" or "text".
	LogFormat string
	// LogFile (LOG_FILE); empty means stderr.
	LogFile string

	// EnableMetrics (ENABLE_METRICS) serves Prometheus metrics at
	// MetricsPath (METRICS_PATH).
	EnableMetrics bool
	MetricsPath   string

	// Redis key prefixes (CACHE_*_PREFIX); Validate ensures none is a
	// prefix of another. CacheDefaultTTL (CACHE_DEFAULT_TTL, seconds).
	CacheTokenPrefix     string
	CacheSessionPrefix   string
	CacheRateLimitPrefix string
	CacheUserPrefix      string
	CacheDefaultTTL      time.Duration
	// CacheLocalTTL (CACHE_LOCAL_TTL, seconds) is how long the in-process
	// cache of users and service clients keeps an entry; 0 disables it.
	CacheLocalTTL time.Duration

	// APIV1Prefix (API_V1_PREFIX), without a trailing slash; "" mounts the
	// API at the root (API_V1_PREFIX=/).
	APIV1Prefix string
	// DocsURL (DOCS_URL), RedocURL (REDOC_URL), OpenAPIURL (OPENAPI_URL);
	// an empty string disables each.
	DocsURL    string
	RedocURL   string
	OpenAPIURL string

	// ShutdownTimeout (SHUTDOWN_TIMEOUT_SECONDS) bounds the wait for
	// in-flight requests on SIGTERM/SIGINT.
	ShutdownTimeout time.Duration

	// Outgoing mail (SMTP_*). An empty SMTPHost means mail is written to
	// the log instead of being sent.
	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string
	SMTPStartTLS bool

	// AuditRetentionDays (AUDIT_RETENTION_DAYS): audit events older than
	// this are deleted by cleanup; 0 keeps them forever.
	AuditRetentionDays int
}

// Defaults returns the configuration used when no variable is set. Version
// is empty (the caller supplies the build version) and
// PasswordHashConcurrency is runtime.NumCPU().
func Defaults() Config {
	return Config{
		AppName:     "permiso Authentication API",
		Environment: EnvDevelopment,

		Host:      "0.0.0.0",
		Port:      8000,
		PublicURL: "http://localhost:8000",

		DatabaseURL:         "sqlite://permiso.db",
		DatabasePoolSize:    20,
		DatabaseMaxOverflow: 10,
		AutoMigrate:         true,

		RedisDecodeResponses: true,

		JWTAlgorithm:           "HS256",
		JWTIssuer:              "permiso-auth",
		AccessTokenExpire:      15 * time.Minute,
		RefreshTokenExpire:     30 * 24 * time.Hour,
		ServiceTokenExpire:     15 * time.Minute,
		RefreshTokenReuseGrace: 10 * time.Second,
		SessionMaxLifetime:     90 * 24 * time.Hour,

		PasswordMinLength:         12,
		PasswordMaxLength:         128,
		PasswordRequireUppercase:  true,
		PasswordRequireLowercase:  true,
		PasswordRequireDigits:     true,
		PasswordRequireSpecial:    true,
		PasswordPreventReuseCount: 10,
		PasswordMaxAgeDays:        90,
		PasswordHashConcurrency:   runtime.NumCPU(),
		PasswordHashMemoryKiB:     64 * 1024,
		PasswordHashIterations:    4,

		RateLimitLogin:        RateLimit{Count: 5, Period: time.Minute},
		RateLimitRegister:     RateLimit{Count: 3, Period: time.Hour},
		RateLimitAPI:          RateLimit{Count: 1000, Period: time.Minute},
		RateLimitRefresh:      RateLimit{Count: 10, Period: time.Minute},
		RateLimitServiceToken: RateLimit{Count: 50, Period: time.Minute},

		MaxLoginAttempts: 5,
		LockoutDuration:  30 * time.Minute,

		AllowedMethods:   []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"},
		AllowedHeaders:   []string{"*"},
		AllowCredentials: true,
		TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},

		LogLevel:  slog.LevelInfo,
		LogFormat: "json",

		EnableMetrics: true,
		MetricsPath:   "/metrics",

		RevocationFeed:       true,
		RevocationFeedMaxLag: time.Second,
		RevocationFeedStale:  "fail",

		CacheTokenPrefix:     "permiso:token:",
		CacheSessionPrefix:   "permiso:session:",
		CacheRateLimitPrefix: "permiso:rate:",
		CacheUserPrefix:      "permiso:user:",
		CacheDefaultTTL:      3600 * time.Second,
		CacheLocalTTL:        30 * time.Second,

		APIV1Prefix: "/api/v1",
		DocsURL:     "/docs",
		RedocURL:    "/redoc",
		OpenAPIURL:  "/openapi.json",

		ShutdownTimeout: 20 * time.Second,

		SMTPPort:     587,
		SMTPStartTLS: true,

		AuditRetentionDays: 90,
	}
}

// DefaultCacheTTL is CACHE_DEFAULT_TTL's default (the guide's 3600).
const DefaultCacheTTL = time.Hour

// IsProduction reports whether ENVIRONMENT is production.
func (c Config) IsProduction() bool { return c.Environment == EnvProduction }

// Addr is the listen address HOST:PORT, for net.Listen.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// PoolMax is the most database connections the pool may hold:
// DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW.
func (c Config) PoolMax() int { return c.DatabasePoolSize + c.DatabaseMaxOverflow }

// Issuer is the iss claim of every token (JWT_ISSUER). An http(s) URL
// loses its trailing slashes, so that the tokens, the introspection
// answers and the discovery metadata (MetadataIssuer) name one issuer
// (docs/deployment.md, "Production settings that matter"; RFC 8414 §3.3: the metadata's issuer must be identical to
// the tokens' iss).
func (c Config) Issuer() string {
	if c.IssuerIsURL() {
		return strings.TrimRight(c.JWTIssuer, "/")
	}
	return c.JWTIssuer
}

// Audience is the aud claim of every token: JWT_AUDIENCE, or the issuer
// when that is empty.
func (c Config) Audience() string {
	if c.JWTAudience != "" {
		return c.JWTAudience
	}
	return c.Issuer()
}

// IssuerIsURL reports whether JWT_ISSUER is an http(s) URL, as RFC 8414
// wants an issuer to be.
func (c Config) IssuerIsURL() bool { return isHTTPURL(c.JWTIssuer) }

// IssuerIsHTTPS reports whether JWT_ISSUER is an https URL, as RFC 8414 §2
// requires of an issuer identifier.
func (c Config) IssuerIsHTTPS() bool {
	u, err := url.Parse(c.JWTIssuer)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// PublicURLIsDefault reports whether PUBLIC_URL is the per-instance
// default http://HOST:PORT: unset, or set to that same value. Behind a
// load balancer every instance would then advertise another URL, which
// production refuses unless JWT_ISSUER is an https URL (Validate).
func (c Config) PublicURLIsDefault() bool {
	return c.PublicURL == defaultPublicURL(c.Host, c.Port)
}

// MetadataIssuer is the base URL that discovery metadata and endpoint URLs
// use (docs/oauth.md): JWT_ISSUER when it is an http(s) URL, otherwise
// PUBLIC_URL. Neither has a trailing slash.
func (c Config) MetadataIssuer() string {
	if c.IssuerIsURL() {
		return c.Issuer()
	}
	return c.PublicURL
}

// IDTokenAlgorithm is the algorithm of OpenID Connect ID tokens:
// OIDC_ID_TOKEN_ALGORITHM, else JWT_ALGORITHM when it is asymmetric, else
// RS256 (docs/oidc.md).
func (c Config) IDTokenAlgorithm() string {
	switch {
	case c.OIDCIDTokenAlgorithm != "":
		return c.OIDCIDTokenAlgorithm
	case c.IsSymmetric():
		return "RS256"
	}
	return c.JWTAlgorithm
}

// IsSymmetric reports whether JWT_ALGORITHM is an HMAC algorithm (HS*),
// signed with JWT_SECRET_KEY.
func (c Config) IsSymmetric() bool { return strings.HasPrefix(c.JWTAlgorithm, "HS") }

// DatabaseDriver is DriverSQLite or DriverPostgres according to the scheme
// of DATABASE_URL, or "" when the scheme is neither. Driver suffixes
// ("postgresql+asyncpg", "sqlite+aiosqlite") are ignored.
func (c Config) DatabaseDriver() string {
	scheme, _, ok := strings.Cut(c.DatabaseURL, ":")
	if !ok {
		return ""
	}
	base, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "sqlite", "sqlite3":
		return DriverSQLite
	case "postgres", "postgresql":
		return DriverPostgres
	}
	return ""
}

// SQLitePath is the database file of an SQLite DATABASE_URL, or "" for
// other drivers. The text after "sqlite://" is the path, relative to the
// working directory unless it starts with "/":
//
//	sqlite://permiso.db                   -> permiso.db
//	sqlite:///var/lib/permiso/permiso.db  -> /var/lib/permiso/permiso.db
//	sqlite:////var/lib/permiso/permiso.db -> /var/lib/permiso/permiso.db (SQLAlchemy)
//	sqlite:///./permiso.db                -> permiso.db (SQLAlchemy relative form)
//	sqlite://:memory:                     -> :memory:
//
// A query string is dropped; the sqlite package sets its own pragmas.
func (c Config) SQLitePath() string {
	if c.DatabaseDriver() != DriverSQLite {
		return ""
	}
	_, rest, _ := strings.Cut(c.DatabaseURL, ":")
	rest = strings.TrimPrefix(rest, "//")
	rest, _, _ = strings.Cut(rest, "?")
	if rest == "" || rest == ":memory:" {
		return rest
	}
	// "/./x" and "/../x" are never meant as absolute paths: they are
	// SQLAlchemy's sqlite:///./x, which is relative.
	if strings.HasPrefix(rest, "/./") || strings.HasPrefix(rest, "/../") {
		rest = rest[1:]
	}
	return filepath.Clean(rest)
}

// PostgresURL is a PostgreSQL DATABASE_URL in the form pgx accepts: the
// scheme becomes "postgres" (dropping "postgresql+asyncpg" style driver
// suffixes) and DATABASE_PASSWORD, when set, replaces the password. It is
// "" for other drivers or an unparsable URL.
func (c Config) PostgresURL() string {
	if c.DatabaseDriver() != DriverPostgres {
		return ""
	}
	_, rest, _ := strings.Cut(c.DatabaseURL, ":")
	u, err := url.Parse("postgres:" + rest)
	if err != nil {
		return ""
	}
	if c.DatabasePassword != "" {
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, c.DatabasePassword)
	}
	return u.String()
}

// DevMFAKeyFile is the base name of the file that EnsureDevMFAKey keeps a
// generated development MFA_ENCRYPTION_KEY in, next to DevSecretFile.
const DevMFAKeyFile = ".permiso-dev-mfa-key"

// DevMFAKeyPath is where EnsureDevMFAKey keeps a generated development
// key: DevMFAKeyFile in the directory of DevSecretPath.
func (c Config) DevMFAKeyPath() string {
	return filepath.Join(filepath.Dir(c.DevSecretPath()), DevMFAKeyFile)
}

// DevSecretPath is where EnsureDevSecret should keep a generated
// development key: DevSecretFile next to the SQLite database file, or in
// the working directory for PostgreSQL and in-memory databases.
func (c Config) DevSecretPath() string {
	if p := c.SQLitePath(); p != "" && p != ":memory:" {
		return filepath.Join(filepath.Dir(p), DevSecretFile)
	}
	return DevSecretFile
}

// defaultPublicURL is http://HOST:PORT, with unspecified addresses shown
// as localhost.
func defaultPublicURL(host string, port int) string {
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
