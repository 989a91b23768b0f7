package main

import (
	"fmt"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/mail"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// newMailer returns the SMTP mailer when SMTP_HOST is set (STARTTLS
// required unless SMTP_STARTTLS=false; implicit TLS on port 465; the
// system's trusted roots, or those of SSL_CERT_FILE), and otherwise the
// log mailer, with a warning: the links then appear in the log only.
func newMailer(a *app) (permiso.Mailer, error) {
	cfg := a.cfg
	if cfg.SMTPHost == "" {
		a.logger.Warn("SMTP_HOST is not set: password-reset and email-verification mail is written to the log instead of being sent")
		return mail.Log{Logger: a.logger}, nil
	}
	return mail.NewSMTP(mail.SMTPConfig{
		Host:     cfg.SMTPHost,
		Port:     cfg.SMTPPort,
		Username: cfg.SMTPUsername,
		Password: cfg.SMTPPassword,
		From:     cfg.SMTPFrom,
		StartTLS: cfg.SMTPStartTLS,
	})
}

// newIdentity wires the account service of the users, roles and scopes
// routes: the same store, password hasher (one concurrency
// bound), policy (PASSWORD_*, with the common-password list) and OAuth
// core (sessions, lockout) as the token endpoint. Close it after the HTTP
// server has stopped, so mail still being sent is delivered.
func newIdentity(a *app, auth *authParts) (*identity.Service, error) {
	mailer, err := newMailer(a)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg
	mfaDeps := identity.MFADeps{Store: auth.mfa.Store, Box: auth.mfa.Box, Once: auth.mfa.Once, Issuer: cfg.AppName}
	return identity.New(identity.Config{
		Policy:            passwordPolicy(cfg),
		PreventReuseCount: cfg.PasswordPreventReuseCount,
		LinkBaseURL:       cfg.PublicURL,
		AppName:           cfg.AppName,
		MFARequiredRoles:  cfg.MFARequiredRoles,
	}, identity.Deps{
		Store:    a.db,
		Hasher:   auth.hasher,
		Sessions: auth.service,
		Lockout:  auth.service,
		Mailer:   mailer,
		Limiter:  auth.limiter,
		Logger:   a.logger,
		// Every change is audited by the service (identity/audit.go).
		Audit:        auth.auditor,
		ClientTokens: auth.service,
		MFA:          mfaDeps,
	}), nil
}

// newMFADeps wires multi-factor authentication (docs/mfa.md), for
// enrollment (the identity service) and sign-in (the token service) alike:
// the secret box over MFA_ENCRYPTION_KEY and MFA_PREVIOUS_ENCRYPTION_KEYS
// (none without a key: enrollment then answers 503 and codes are refused),
// and ONE store of used-once codes, in Redis (under
// CACHE_RATE_LIMIT_PREFIX) or in process, so that a code accepted by one
// service is refused by the other.
func newMFADeps(cfg config.Config, db interface {
	permiso.MFAStore
	permiso.MFATokenStore
}, rdb *redis.Client) (oauth2.MFADeps, error) {
	d := oauth2.MFADeps{Store: db, Tokens: db}
	if len(cfg.MFAEncryptionKey) != 0 {
		box, err := mfa.NewBox(cfg.MFAEncryptionKey, cfg.MFAPreviousEncryptionKeys...)
		if err != nil {
			return oauth2.MFADeps{}, fmt.Errorf("MFA_ENCRYPTION_KEY: %w", err)
		}
		d.Box = box
	}
	if rdb != nil {
		d.Once = redis.NewOnce(rdb, cfg.CacheRateLimitPrefix)
	} else {
		d.Once = inprocess.NewOnce()
	}
	return d, nil
}
