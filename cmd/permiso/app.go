package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/logring"
	"github.com/permiso/permiso/postgres"
	"github.com/permiso/permiso/redis"
)

// version is set at build time with -ldflags "-X main.version=1.2.3"; it
// falls back to the module version recorded by the Go toolchain.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// environment is what every subcommand starts from: the process environment,
// the env file and where to print warnings before logging is set up.
type environment struct {
	getenv  Getenv
	envFile string
	stderr  io.Writer
}

// loadConfig loads and validates the configuration. Every problem is
// reported at once; the error names each variable.
func (e *environment) loadConfig() (config.Config, []string, error) {
	file, explicit := ".env", false
	if e.envFile != "" {
		file, explicit = e.envFile, true
	}
	cfg, warnings, err := config.Load(config.Env(e.getenv), file, explicit)
	if err != nil {
		return cfg, warnings, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	return cfg, warnings, nil
}

// store is a permiso.Store that can also back itself up.
type store interface {
	permiso.Store
	Backup(ctx context.Context, outPath string) error
}

// openStore opens the database named by DATABASE_URL.
func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (store, error) {
	switch cfg.DatabaseDriver() {
	case "sqlite":
		return openSQLite(ctx, cfg, logger)
	case "postgres":
		db, err := postgres.Open(ctx, cfg.PostgresURL(), postgres.Options{MaxConns: cfg.PoolMax(), Logger: logger, Echo: cfg.DatabaseEcho})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("DATABASE_URL: unsupported database %q", cfg.DatabaseDriver())
}

// openRedis returns a Redis client when REDIS_URL is set, or nil.
func openRedis(cfg config.Config) (*redis.Client, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	// Fail fast: a request waiting on an unreachable Redis should get its 503
	// (or fail-open) answer in about a second, not after go-redis's default
	// retries.
	return redis.Open(cfg.RedisURL, redis.Options{
		Password:     cfg.RedisPassword,
		DialTimeout:  time.Second,
		Timeout:      time.Second,
		MaxRetries:   1,
		DialAttempts: 1,
	})
}

// app is what a subcommand that works on the database starts from: the
// validated configuration, the logger and the open store.
type app struct {
	cfg      config.Config
	warnings []string
	logger   *slog.Logger
	logFile  *logFile
	db       store
	// errlog keeps the recent error records (GET /admin/logs/errors).
	errlog *logring.Ring
}

// setup loads the configuration and builds the logger (no database yet).
func (e *environment) setup() (*app, error) {
	cfg, warnings, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	logger, lf, err := newLogger(cfg, e.stderr)
	if err != nil {
		return nil, err
	}
	logger, ring := withErrorRing(logger)
	return &app{cfg: cfg, warnings: warnings, logger: logger, logFile: lf, errlog: ring}, nil
}

// open is setup plus the database named by DATABASE_URL, behind the
// in-process cache (wire_cache.go).
func (e *environment) open(ctx context.Context) (*app, error) {
	a, err := e.setup()
	if err != nil {
		return nil, err
	}
	if a.db, err = openStore(ctx, a.cfg, a.logger); err != nil {
		a.Close()
		return nil, err
	}
	if err = a.cacheStore(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openMigrated is open followed by the pending migrations (applyMigrations:
// applied, or refused with AUTO_MIGRATE=false), for the subcommands that
// work on the current schema.
func (e *environment) openMigrated(ctx context.Context) (*app, error) {
	a, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := applyMigrations(ctx, a.cfg, a.db); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// ensureDevSecret gives a development process without JWT_SECRET_KEY the
// generated key kept next to the database (config.EnsureDevSecret), so
// that serve and the commands that issue or revoke tokens agree on it.
// It returns the warning to log, if any.
func (a *app) ensureDevSecret() (string, error) {
	w, err := config.EnsureDevSecret(&a.cfg, a.cfg.DevSecretPath())
	if err != nil {
		return "", fmt.Errorf("JWT_SECRET_KEY: %w", err)
	}
	return w, nil
}

// ensureDevMFAKey gives a development process without MFA_ENCRYPTION_KEY
// the generated key kept next to the JWT development key
// (config.EnsureDevMFAKey). It returns the warning to log, if any.
func (a *app) ensureDevMFAKey() (string, error) {
	w, err := config.EnsureDevMFAKey(&a.cfg, a.cfg.DevMFAKeyPath())
	if err != nil {
		return "", fmt.Errorf("MFA_ENCRYPTION_KEY: %w", err)
	}
	return w, nil
}

// checkMFAKey refuses to serve without MFA_ENCRYPTION_KEY once a user has
// a confirmed second factor: without the key no such user could sign in
// (docs/mfa.md). Before the first enrollment the key may be left unset.
func checkMFAKey(ctx context.Context, cfg config.Config, db permiso.Store) error {
	if len(cfg.MFAEncryptionKey) != 0 {
		return nil
	}
	n, err := db.CountConfirmedMFAFactors(ctx)
	if err != nil {
		return fmt.Errorf("MFA_ENCRYPTION_KEY: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("MFA_ENCRYPTION_KEY is required: %d second factors are enrolled and their secrets cannot be read without it (generate one with: openssl rand -hex 32)", n)
	}
	return nil
}

// Close releases the database and the log file.
func (a *app) Close() {
	if a.db != nil {
		a.db.Close()
	}
	if a.logFile != nil {
		a.logFile.Close()
	}
}
