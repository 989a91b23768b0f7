package main

import (
	"context"
	"fmt"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/memory"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// maxClientTokenLifetime is the longest access-token lifetime a service
// client may be given; retired signing keys stay published at least this
// long.
const maxClientTokenLifetime = 24 * time.Hour

// authParts is the token machinery shared by serve and the admin
// subcommands (keys rotate, sessions revoke-all).
type authParts struct {
	signer  *jwt.Signer
	service *oauth2.Service
	audit   *audit.Writer
	redis   *redis.Client // nil without REDIS_URL
}

// Close flushes the audit log and closes Redis.
func (p *authParts) Close() {
	p.audit.Close()
	if p.redis != nil {
		p.redis.Close()
	}
}

// newSigner builds the access-token signer from JWT_*; asymmetric keys are
// generated into the database on first use.
func newSigner(ctx context.Context, a *app) (*jwt.Signer, error) {
	cfg := a.cfg
	previous := make([][]byte, 0, len(cfg.JWTPreviousSecretKeys))
	for _, k := range cfg.JWTPreviousSecretKeys {
		previous = append(previous, []byte(k))
	}
	var secret []byte
	if cfg.IsSymmetric() {
		secret = []byte(cfg.JWTSecretKey)
	}
	signer, err := jwt.New(ctx, jwt.Options{
		Algorithm:        cfg.JWTAlgorithm,
		Secret:           secret,
		PreviousSecrets:  previous,
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

// newAuth wires the OAuth core: signer, revocation state (Redis when
// REDIS_URL is set, else in process), password hasher and audit writer.
func newAuth(ctx context.Context, a *app) (*authParts, error) {
	cfg := a.cfg
	signer, err := newSigner(ctx, a)
	if err != nil {
		return nil, err
	}
	rdb, err := openRedis(cfg)
	if err != nil {
		return nil, err
	}
	var revocations permiso.RevocationStore = memory.NewRevocations()
	if rdb != nil {
		revocations = redis.NewRevocations(rdb, cfg.CacheTokenPrefix)
	}
	aw := audit.New(a.db, audit.Options{Logger: a.logger})
	hasher := argon2id.New(argon2id.Options{Concurrency: cfg.PasswordHashConcurrency})
	service := oauth2.NewService(oauthConfig(cfg), oauth2.Deps{
		Users:       a.db,
		Clients:     a.db,
		Tokens:      a.db,
		Sessions:    a.db,
		Hasher:      hasher,
		Signer:      signer,
		Revocations: revocations,
		Audit:       aw,
		Logger:      a.logger,
	})
	return &authParts{signer: signer, service: service, audit: aw, redis: rdb}, nil
}

// oauthConfig maps the configuration onto the OAuth core's settings.
func oauthConfig(cfg config.Config) oauth2.Config {
	return oauth2.Config{
		Issuer:               cfg.Issuer(),
		Audience:             []string{cfg.Audience()},
		AccessTokenLifetime:  cfg.AccessTokenExpire,
		RefreshTokenLifetime: cfg.RefreshTokenExpire,
		ServiceTokenLifetime: cfg.ServiceTokenExpire,
		ReuseGrace:           cfg.RefreshTokenReuseGrace,
		PasswordMaxAge:       time.Duration(cfg.PasswordMaxAgeDays) * 24 * time.Hour,
		RevocationFailOpen:   cfg.RevocationFailOpen,
		PasswordPolicy:       passwordPolicy(cfg),
		PreventReuseCount:    cfg.PasswordPreventReuseCount,
	}
}
