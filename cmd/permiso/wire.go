package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/permiso/permiso"

	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/metrics"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
	clientusage "github.com/permiso/permiso/usage"
)

// maxClientTokenLifetime is the longest access-token lifetime a service
// client may be given; retired signing keys stay published at least this
// long.
const maxClientTokenLifetime = 24 * time.Hour

// authParts is the token machinery shared by serve and the admin
// subcommands (keys rotate, sessions revoke-all).
type authParts struct {
	signer *jwt.Signer
	// idSigner signs ID tokens (docs/oidc.md): the access-token signer
	// when it is asymmetric and its issuer is the metadata issuer, else a
	// signer of its own (RS256 with HS* access tokens), whose keys are
	// kept in the same table and published in the same JWKS.
	idSigner *jwt.Signer
	service  *oauth2.Service
	audit    *audit.Writer
	// auditor is what records events: the audit writer, counted by the
	// metrics when they are enabled.
	auditor permiso.Auditor
	redis   *redis.Client // nil without REDIS_URL
	// revocations is the Redis revocation store (nil without REDIS_URL);
	// serve starts its feed (REVOCATION_FEED).
	revocations *redis.Revocations
	// limiter counts the RATE_LIMIT_* and per-client limits (Redis or in
	// process, like the lockout inside service).
	limiter permiso.RateLimiter
	// usage batches service clients' last_used and total_requests.
	usage *clientusage.Counter
	// hasher is shared with the account service, so one bound
	// on concurrent hashing covers logins and password changes.
	hasher *argon2id.Hasher
	// mfa is shared with the account service too: one OnceStore, so a
	// code used for enrollment or sign-in is used everywhere.
	mfa oauth2.MFADeps
}

// Close flushes the audit log and closes Redis.
func (p *authParts) Close() {
	p.usage.Close()
	p.audit.Close()
	if p.redis != nil {
		p.redis.Close()
	}
}

// newSigner builds the access-token signer from JWT_*; asymmetric keys are
// generated into the database on first use.
func newSigner(ctx context.Context, a *app) (*jwt.Signer, error) {
	cfg := a.cfg
	keys := func(ss []string) [][]byte {
		out := make([][]byte, 0, len(ss))
		for _, k := range ss {
			out = append(out, []byte(k))
		}
		return out
	}
	var secret []byte
	if cfg.IsSymmetric() {
		secret = []byte(cfg.JWTSecretKey)
	}
	signer, err := jwt.New(ctx, jwt.Options{
		Algorithm:        cfg.JWTAlgorithm,
		Secret:           secret,
		PreviousSecrets:  keys(cfg.JWTPreviousSecretKeys),
		NextSecrets:      keys(cfg.JWTNextSecretKeys),
		Issuer:           cfg.Issuer(),
		Audience:         []string{cfg.Audience()},
		Keys:             a.db,
		MaxTokenLifetime: max(cfg.AccessTokenExpire, cfg.ServiceTokenExpire, maxClientTokenLifetime),
		Logger:           a.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("JWT_ALGORITHM %s: %w", cfg.JWTAlgorithm, err)
	}
	return signer, nil
}

// newIDSigner builds the ID-token signer (see authParts.idSigner). ID
// tokens are verified by relying parties through the JWKS, so their
// algorithm is asymmetric (config.IDTokenAlgorithm: RS256 by default, the
// algorithm every OpenID relying party supports, OpenID Connect Core 1.0
// §3.1.3.7); their iss is the discovery issuer.
func newIDSigner(ctx context.Context, a *app, access *jwt.Signer) (*jwt.Signer, error) {
	cfg := a.cfg
	alg := cfg.IDTokenAlgorithm()
	if alg == cfg.JWTAlgorithm && cfg.Issuer() == cfg.MetadataIssuer() {
		return access, nil
	}
	s, err := jwt.New(ctx, jwt.Options{
		Algorithm:        alg,
		Issuer:           cfg.MetadataIssuer(),
		Keys:             a.db,
		MaxTokenLifetime: max(cfg.AccessTokenExpire, cfg.ServiceTokenExpire, maxClientTokenLifetime),
		Logger:           a.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("ID token signer %s: %w", alg, err)
	}
	return s, nil
}

// newAuth wires the OAuth core: signer, revocation state (Redis when
// REDIS_URL is set, else in process), password hasher and audit writer.
func newAuth(ctx context.Context, a *app, m *metrics.Metrics) (*authParts, error) {
	cfg := a.cfg
	signer, err := newSigner(ctx, a)
	if err != nil {
		return nil, err
	}
	idSigner, err := newIDSigner(ctx, a, signer)
	if err != nil {
		return nil, err
	}
	rdb, err := openRedis(cfg)
	if err != nil {
		return nil, err
	}
	var revocations permiso.RevocationStore = inprocess.NewRevocations()
	limiter, lockout := newAbuseState(cfg, rdb)
	// checks sends a request's rate-limit and revocation checks together:
	// one pipeline on Redis (docs/abuse-resistance.md, "One round trip per request"), one after the other in process.
	var checks permiso.Checker
	var rrev *redis.Revocations
	if rdb != nil {
		rrev = redis.NewRevocations(rdb, cfg.CacheTokenPrefix).WithSessionPrefix(cfg.CacheSessionPrefix)
		if cfg.RevocationFeed {
			// Bearer checks answer from memory, fed by a Redis stream
			// (docs/architecture.md, "Revocation feed"); serve starts it.
			rrev.WithFeed(redis.FeedOptions{MaxLag: cfg.RevocationFeedMaxLag,
				Lookup: cfg.RevocationFeedStale == "lookup", Logger: a.logger})
		}
		revocations = rrev
		if rl, ok := limiter.(*redis.Limiter); ok {
			checks = redis.NewChecker(rl, rrev)
		}
		rdb.LogFailures(a.logger)
	}
	auditOpts := audit.Options{Logger: a.logger}
	if m != nil {
		auditOpts.Observer = m.AuditWriter()
	}
	aw := audit.New(a.db, auditOpts)
	var auditor permiso.Auditor = aw
	if m != nil {
		auditor = m.Auditor(aw)
		m.RegisterAuditQueue(func() metrics.AuditQueueStats {
			q, c, w := aw.Queued()
			return metrics.AuditQueueStats{Queued: q, Capacity: c, Waiting: w}
		})
	}
	hasher := newHasher(cfg, cfg.PasswordHashConcurrency)
	mfaDeps, err := newMFADeps(cfg, a.db, rdb)
	if err != nil {
		if rdb != nil {
			rdb.Close()
		}
		return nil, err
	}
	uc := clientusage.New(a.db, clientusage.Options{Logger: a.logger})
	service := oauth2.NewService(oauthConfig(cfg), oauth2.Deps{
		Users:       a.db,
		Clients:     a.db,
		Tokens:      a.db,
		Sessions:    a.db,
		Hasher:      hasher,
		Signer:      signer,
		Revocations: revocations,
		Lockout:     lockout,
		Limiter:     limiter,
		Checks:      checks,
		Audit:       auditor,
		Logger:      a.logger,
		Usage:       uc,
		OIDC:        a.db,
		IDTokens:    idSigner,
		MFA:         mfaDeps,
	})
	if rrev != nil {
		// Redis that comes back without its data gets the revocations of
		// ended sessions again from the database before bearer checks
		// trust it (docs/deployment.md, "Outages").
		rrev.WithRestore(service.SessionRevocations, a.logger)
		if err := rrev.EnsureState(ctx); err != nil {
			a.logger.Warn("revocation state not checked at start; bearer checks restore it when Redis answers",
				"error", err.Error())
		}
	}
	return &authParts{signer: signer, idSigner: idSigner, service: service, audit: aw, auditor: auditor, redis: rdb, revocations: rrev, usage: uc, limiter: limiter, hasher: hasher, mfa: mfaDeps}, nil
}

// newAbuseState builds the rate limiter and the login lockout (docs/abuse-resistance.md):
// in Redis, shared by every instance, when REDIS_URL is set (keys under
// CACHE_RATE_LIMIT_PREFIX); in process otherwise.
func newAbuseState(cfg config.Config, rdb *redis.Client) (permiso.RateLimiter, permiso.Lockout) {
	if rdb == nil {
		return inprocess.NewLimiter(), inprocess.NewLockout(cfg.MaxLoginAttempts, cfg.LockoutDuration)
	}
	return redis.NewLimiter(rdb, cfg.CacheRateLimitPrefix),
		redis.NewLockout(rdb, cfg.CacheRateLimitPrefix, cfg.MaxLoginAttempts, cfg.LockoutDuration)
}

// oauthConfig maps the configuration onto the OAuth core's settings.
func oauthConfig(cfg config.Config) oauth2.Config {
	return oauth2.Config{
		Issuer:                  cfg.Issuer(),
		Audience:                []string{cfg.Audience()},
		AccessTokenLifetime:     cfg.AccessTokenExpire,
		RefreshTokenLifetime:    cfg.RefreshTokenExpire,
		ServiceTokenLifetime:    cfg.ServiceTokenExpire,
		MaxTokenLifetime:        max(cfg.AccessTokenExpire, cfg.ServiceTokenExpire, maxClientTokenLifetime),
		ReuseGrace:              cfg.RefreshTokenReuseGrace,
		RefreshAbsoluteLifetime: cfg.SessionMaxLifetime,
		PasswordMaxAge:          time.Duration(cfg.PasswordMaxAgeDays) * 24 * time.Hour,
		RevocationFailOpen:      cfg.RevocationFailOpen,
		PasswordPolicy:          passwordPolicy(cfg),
		PreventReuseCount:       cfg.PasswordPreventReuseCount,
		OIDCIssuer:              cfg.MetadataIssuer(),
		MFARequiredRoles:        cfg.MFARequiredRoles,
	}
}

// registerPoolMetrics exports the PostgreSQL and Redis pool statistics.
// (The SQLite store runs one writer connection; it has no pool to watch.)
func registerPoolMetrics(m *metrics.Metrics, db store, rdb *redis.Client) {
	if pg, ok := db.(interface{ Pool() *pgxpool.Pool }); ok {
		m.RegisterPool("database", func() metrics.PoolStats {
			s := pg.Pool().Stat()
			return metrics.PoolStats{Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()), Max: int(s.MaxConns())}
		})
	}
	if cs, ok := db.(interface{ Stats() cache.Stats }); ok {
		m.RegisterCache(func() metrics.CacheStats {
			s := cs.Stats()
			return metrics.CacheStats{Hits: s.Hits, Misses: s.Misses, DroppedFills: s.DroppedFills,
				Invalidations: s.Invalidations, Resyncs: s.Resyncs, Evictions: s.Evictions,
				PublishErrors: s.PublishErrors, Users: s.Users, Clients: s.Clients}
		})
	}
	if rdb != nil {
		m.RegisterPool("redis", func() metrics.PoolStats {
			s := rdb.Universal().PoolStats()
			return metrics.PoolStats{Open: int(s.TotalConns), InUse: int(s.TotalConns - s.IdleConns), Idle: int(s.IdleConns)}
		})
	}
}

// newHasher is the password hasher for new hashes with the configured
// Argon2id costs (PASSWORD_HASH_MEMORY_KIB, PASSWORD_HASH_ITERATIONS);
// concurrency 0 means one hash per CPU.
func newHasher(cfg config.Config, concurrency int) *argon2id.Hasher {
	p := argon2id.DefaultParams()
	p.Memory, p.Time = uint32(cfg.PasswordHashMemoryKiB), uint32(cfg.PasswordHashIterations)
	return argon2id.New(argon2id.Options{Params: p, Concurrency: concurrency, ReturnMemoryAfter: returnHashMemoryAfter})
}
