package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/httpapi"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/metrics"
	"github.com/permiso/permiso/reports"
)

// errShutdownCutOff is the cause of the cancellation of the requests still
// running when SHUTDOWN_TIMEOUT_SECONDS is reached.
var errShutdownCutOff = errors.New("cut off at the shutdown timeout")

func cmdServe(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("serve", "serve", stdout)
	a, err := fs.open(ctx, args, env.open)
	if a == nil {
		return err
	}
	defer a.Close()
	warnings := a.warnings
	if w, err := a.ensureDevSecret(); err != nil {
		return err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	if w, err := a.ensureDevMFAKey(); err != nil {
		return err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	started := time.Now()
	cfg, logger, db, lf := a.cfg, a.logger, a.db, a.logFile
	for _, w := range warnings {
		logger.Warn(w)
	}
	applyMemoryLimit(cfg, logger)
	if err := applyMigrations(ctx, cfg, db); err != nil {
		return err
	}
	if err := checkMFAKey(ctx, cfg, db); err != nil {
		return err
	}

	var m *metrics.Metrics
	if cfg.EnableMetrics {
		m = metrics.New()
	}
	auth, err := newAuth(ctx, a, m)
	if err != nil {
		return err
	}
	defer auth.Close()
	// Other instances may rotate signing keys: reload them periodically.
	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go auth.signer.Run(reloadCtx, 0)
	if auth.idSigner != auth.signer {
		go auth.idSigner.Run(reloadCtx, 0)
	}
	stopJobs := startAdminJobs(reloadCtx, a)
	defer stopJobs()
	rdb := auth.redis
	if rv := auth.revocations; rv != nil && cfg.RevocationFeed {
		defer rv.StartFeed()()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := rv.WaitFeed(wctx); err != nil {
			logger.Warn("revocation feed not live yet: until it is, bearer checks fail with 503 or look up Redis (REVOCATION_FEED_STALE)")
		}
		cancel()
	}
	cacheCheck := httpapi.StaticCheck("cache", map[string]any{"backend": "in-process"})
	if rdb != nil {
		cacheCheck.Check = rdb.Health
		if rv := auth.revocations; rv != nil && cfg.RevocationFeed {
			cacheCheck.Check = func(ctx context.Context) (map[string]any, error) {
				details, err := rdb.Health(ctx)
				if err != nil {
					return nil, err
				}
				st := rv.FeedStats()
				details["revocation_feed"] = map[string]any{"live": st.Live, "lag_ms": st.Lag.Milliseconds(),
					"events": st.Events, "resyncs": st.Resyncs, "entries": st.Entries}
				return details, nil
			}
		}
		if details, err := rdb.Health(ctx); err != nil {
			logger.Error("Redis is unreachable at startup", "error", err)
		} else if w, ok := details["warning"].(string); ok {
			logger.Warn(w)
		}
	}

	ident, err := newIdentity(a, auth) // users, roles, scopes and mail flows
	if err != nil {
		return err
	}
	defer ident.Close()

	deps := httpapi.Deps{
		Logger:  logger,
		Options: httpOptions(cfg),
		Auth:    auth.service,
		Keys:    jwt.KeySets{auth.signer, auth.idSigner},
		Store:   db,
		Audit:   auth.auditor,
		Limiter: auth.limiter,
		// The error ring of /admin/logs/errors and the uptime.
		ErrorLog: a.errlog,
		Started:  started,
		Checks: []httpapi.HealthCheck{
			{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
				if err := db.Ping(ctx); err != nil {
					return nil, err
				}
				return map[string]any{"backend": db.Backend()}, nil
			}},
			cacheCheck,
		},
	}
	if m != nil {
		deps.Metrics, deps.Observe = m.Handler(), m.ObserveHTTP
		deps.RateLimited = m.RateLimited
		registerPoolMetrics(m, db, rdb)
	}
	deps.Identity = ident
	deps.Reports = reports.New(reports.Deps{Store: db, Started: started}) // admin figures
	handler := httpapi.NewServer(deps)

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	// Requests are served under base. A graceful Shutdown does not cancel
	// their contexts; the cut-off at SHUTDOWN_TIMEOUT_SECONDS does, with a
	// cause of its own, so that a request the server cuts off is not taken
	// for one whose client went away (permiso.ClientGone): it stays a
	// server error, not a 499 (docs/deployment.md, "Monitoring").
	base, cutOff := context.WithCancelCause(context.Background())
	defer cutOff(nil)
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("permiso listening", "addr", ln.Addr().String(), "version", cfg.Version,
		"environment", cfg.Environment, "database", db.Backend(), "redis", rdb != nil)
	hintFirstAdmin(ctx, db, logger)

	// SIGHUP reopens LOG_FILE (logrotate); without LOG_FILE it is
	// acknowledged and ignored, never the default "terminate at once".
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if lf == nil {
				logger.Info("SIGHUP received; no LOG_FILE to reopen")
				continue
			}
			if err := lf.Reopen(); err != nil {
				logger.Error("reopen log file", "error", err)
			} else {
				logger.Info("log file reopened")
			}
		}
	}()

	returnStartupMemory()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// A stop is a stop (docs/deployment.md, "Shutdown and logs"). Requests still running after
		// SHUTDOWN_TIMEOUT_SECONDS are cut off; the audit log is still
		// flushed and the pools closed (deferred), and the exit is 0.
		logger.Warn("requests still running at the shutdown timeout were cut off",
			"timeout", cfg.ShutdownTimeout.String(), "error", err.Error())
		cutOff(errShutdownCutOff)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// applyMigrations applies pending migrations (AUTO_MIGRATE=true, the
// default; PostgreSQL serializes instances with an advisory lock), or
// refuses to start while any are pending.
func applyMigrations(ctx context.Context, cfg config.Config, db permiso.Store) error {
	if !cfg.AutoMigrate {
		status, err := db.MigrationStatus(ctx)
		if err != nil {
			return fmt.Errorf("read migration status: %w", err)
		}
		if p := permiso.Pending(status); len(p) > 0 {
			return fmt.Errorf("%d database migration(s) pending and AUTO_MIGRATE=false: run `permiso migrate up` first", len(p))
		}
		return nil
	}
	// The backends log each migration they apply.
	if _, err := db.MigrateUp(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// hintFirstAdmin tells the operator how to create the first administrator
// when the database has no users yet.
func hintFirstAdmin(ctx context.Context, db permiso.Store, logger *slog.Logger) {
	_, total, err := db.ListUsers(ctx, permiso.UserFilter{Limit: 1})
	if err != nil || total > 0 {
		return
	}
	logger.Info("no users yet; create the first administrator with: permiso create-admin --username admin --email admin@example.com")
}

// httpOptions maps the configuration onto what the HTTP layer needs.
func httpOptions(cfg config.Config) httpapi.Options {
	return httpapi.Options{
		AppName:        cfg.AppName,
		Version:        cfg.Version,
		Environment:    cfg.Environment,
		APIV1Prefix:    cfg.APIV1Prefix,
		DocsURL:        cfg.DocsURL,
		RedocURL:       cfg.RedocURL,
		OpenAPIURL:     cfg.OpenAPIURL,
		AuditRetention: auditRetention(cfg),
		TrustedProxies: cfg.TrustedProxies,
		Issuer:         cfg.MetadataIssuer(),
		MetricsPath:    cfg.MetricsPath,
		RateLimits:     rateLimits(cfg),
		CORS:           corsOptions(cfg),
		AllowedHosts:   cfg.AllowedHosts,
		Scopes:         permiso.DefaultScopes,
	}
}

// rateLimits maps RATE_LIMIT_* onto the HTTP layer's per-IP limits.
func rateLimits(cfg config.Config) httpapi.RateLimits {
	l := func(r config.RateLimit) permiso.Limit { return permiso.Limit{Count: r.Count, Period: r.Period} }
	return httpapi.RateLimits{Login: l(cfg.RateLimitLogin), Register: l(cfg.RateLimitRegister),
		Refresh: l(cfg.RateLimitRefresh), ServiceToken: l(cfg.RateLimitServiceToken), API: l(cfg.RateLimitAPI)}
}

// corsOptions maps ALLOWED_ORIGINS, _METHODS, _HEADERS and
// ALLOW_CREDENTIALS onto the HTTP layer's CORS policy.
func corsOptions(cfg config.Config) httpapi.CORS {
	return httpapi.CORS{AllowedOrigins: cfg.AllowedOrigins, AllowedMethods: cfg.AllowedMethods,
		AllowedHeaders: cfg.AllowedHeaders, AllowCredentials: cfg.AllowCredentials}
}
