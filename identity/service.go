package identity

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Default lifetimes of mailed tokens (docs/security-model.md, "Mailed tokens").
const (
	DefaultResetTokenLifetime        = time.Hour
	DefaultVerificationTokenLifetime = 48 * time.Hour
	// DefaultMaxBackgroundJobs bounds the mail jobs running at once; more
	// are dropped with a warning, so a flood of requests cannot pile up
	// goroutines.
	DefaultMaxBackgroundJobs = 32
	// backgroundTimeout bounds one background job (lookup, token, mail).
	backgroundTimeout = time.Minute
	// maxCurrentPassword bounds a presented current password before it is
	// hashed.
	maxCurrentPassword = 1024
)

// Store is the part of permiso.Store the package works with.
type Store interface {
	permiso.UserStore
	permiso.RoleStore
	permiso.ClientStore
	permiso.SessionStore
	permiso.ActionTokenStore
}

// Sessions ends and renews sessions and invalidates tokens
// (oauth2.Service).
type Sessions interface {
	// RevokeAllForUser ends every session of the user and invalidates every
	// token issued to them so far.
	RevokeAllForUser(ctx context.Context, userID uuid.UUID, reason string) (int, error)
	// RevokeOtherSessions ends every session of the user except keep.
	RevokeOtherSessions(ctx context.Context, userID, keep uuid.UUID, reason string) (int, error)
	// EndSession ends one session: it, its refresh tokens and its access
	// tokens.
	EndSession(ctx context.Context, sid uuid.UUID, reason string) error
	// EndUserSessions ends every active session of the user and returns
	// how many.
	EndUserSessions(ctx context.Context, userID uuid.UUID, reason string) (int, error)
	// RenewSession starts an active session's idle timeout again.
	RenewSession(ctx context.Context, sid uuid.UUID) (permiso.Session, error)
}

// Lockout is the failed-login lockout (docs/abuse-resistance.md) (oauth2.Service).
type Lockout interface {
	// Unlock clears the lockout of an account, named by its username.
	Unlock(ctx context.Context, username string) error
	// CheckCurrentPassword verifies a user's current password as a login
	// would, counted by the lockout: false for a wrong password, an
	// ELOCKED error while the account is locked.
	CheckCurrentPassword(ctx context.Context, u permiso.User, password string) (bool, error)
	// CheckSecondFactor runs check (a second factor's verification) as
	// one attempt of the same lockout: false counts as a failure.
	CheckSecondFactor(ctx context.Context, u permiso.User, check func() (bool, error)) (bool, error)
}

// Config is the account policy.
type Config struct {
	// Policy is checked for every new password (PASSWORD_*).
	Policy permiso.PasswordPolicy
	// PreventReuseCount previous passwords may not be reused
	// (PASSWORD_PREVENT_REUSE_COUNT); the current one never may.
	PreventReuseCount int
	// ResetTokenLifetime and VerificationTokenLifetime default to 1 hour
	// and 48 hours.
	ResetTokenLifetime        time.Duration
	VerificationTokenLifetime time.Duration
	// LinkBaseURL is the base of the links in mails (PUBLIC_URL):
	// LinkBaseURL + "/reset-password?token=..." and "/verify-email?token=...".
	LinkBaseURL string
	// AppName names the service in mails (APP_NAME).
	AppName string
	// MaxBackgroundJobs defaults to DefaultMaxBackgroundJobs.
	MaxBackgroundJobs int
	// MailLimit bounds the reset or verification mails one account gets
	// (per purpose), counted by Deps.Limiter; zero means
	// DefaultMailLimit. Further requests are answered as usual and send
	// nothing, so nobody can flood a mailbox through the public request
	// endpoints.
	MailLimit permiso.Limit
	// MFARequiredRoles (MFA_REQUIRED_ROLES): holders of these roles must
	// sign in with a second factor; GET /users/me/mfa says so
	// (permiso.MFARequiredBy, the rule the token endpoint applies).
	MFARequiredRoles []string
}

// DefaultMailLimit is 5 mails of one kind per account per hour.
var DefaultMailLimit = permiso.Limit{Count: 5, Period: time.Hour}

// Deps are the parts the service works with.
type Deps struct {
	Store    Store
	Hasher   permiso.PasswordHasher
	Sessions Sessions
	// Lockout, when set, is cleared by Unlock and by a password reset.
	Lockout Lockout
	// Mailer sends reset and verification mail; nil sends nothing (the
	// tokens are still created).
	Mailer permiso.Mailer
	// Limiter, when set, enforces Config.MailLimit (shared by every
	// instance when it is Redis).
	Limiter permiso.RateLimiter
	// Audit receives the audit events of every change the service makes
	// (audit.go); nil records nothing.
	Audit permiso.Auditor
	// ClientTokens revokes what a disabled service client issued
	// (UpdateClient); without it, disabling a client fails after the
	// client was disabled.
	ClientTokens ClientTokens
	// MFA holds what multi-factor enrollment needs (docs/mfa.md); its
	// zero value refuses enrollment as not configured.
	MFA    MFADeps
	Logger *slog.Logger
	Now    func() time.Time
}

// Service implements the account rules. It is safe for concurrent use.
// Close waits for mail still being sent.
type Service struct {
	cfg   Config
	deps  Deps
	now   func() time.Time
	log   *slog.Logger
	slots chan struct{}
	bg    sync.WaitGroup
}

// New returns a Service.
func New(cfg Config, deps Deps) *Service {
	permiso.SetDefault(&cfg.ResetTokenLifetime, DefaultResetTokenLifetime)
	permiso.SetDefault(&cfg.VerificationTokenLifetime, DefaultVerificationTokenLifetime)
	permiso.SetDefault(&cfg.MaxBackgroundJobs, DefaultMaxBackgroundJobs)
	if cfg.PreventReuseCount < 0 {
		cfg.PreventReuseCount = 0
	}
	if cfg.MailLimit.Disabled() {
		cfg.MailLimit = DefaultMailLimit
	}
	if cfg.AppName == "" {
		cfg.AppName = "permiso"
	}
	cfg.LinkBaseURL = strings.TrimRight(cfg.LinkBaseURL, "/")
	s := &Service{cfg: cfg, deps: deps, now: deps.Now, log: deps.Logger,
		slots: make(chan struct{}, cfg.MaxBackgroundJobs)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Close waits until every background job (mail) has finished.
func (s *Service) Close() { s.bg.Wait() }

// Wait is Close under the name tests read better.
func (s *Service) Wait() { s.bg.Wait() }

// background runs fn off the request path with the request's values (for
// logging) but not its cancellation, bounded in time and in number. The
// request endpoints of reset and verification do all their work here, so
// that their answer and its timing are the same whether or not the email
// belongs to an account.
func (s *Service) background(ctx context.Context, what string, fn func(ctx context.Context) error) {
	select {
	case s.slots <- struct{}{}:
	default:
		s.log.LogAttrs(ctx, slog.LevelWarn, "too many mail jobs running; request dropped", slog.String("job", what))
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer func() { <-s.slots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
		defer cancel()
		switch err := fn(ctx); {
		case errors.Is(err, errMailLimit):
			s.log.LogAttrs(ctx, slog.LevelWarn, "mail not sent: too many for this account", slog.String("job", what))
		case err != nil:
			s.log.LogAttrs(ctx, slog.LevelError, "background job failed", slog.String("job", what), slog.String("error", err.Error()))
		}
	}()
}

// Actor is who asks for a change, and the request behind it.
type Actor struct {
	// UserID is the calling user; uuid.Nil for a service client.
	UserID uuid.UUID
	// ClientID is the calling service client's client_id; "" for a user.
	ClientID string
	// Request describes the request (address, user agent, request id)
	// for the audit events of the change.
	Request permiso.RequestMeta
	// Admin: the caller was admitted as an administrator for the route
	// (superuser, role admin, or the route's admin:* scope). What an
	// administrator may then do is limited by the delegation rule
	// (Delegation), built from the three fields below.
	Admin bool
	// Superuser: the calling user is a superuser; only they grant or
	// revoke is_superuser, and only they act on another superuser.
	Superuser bool
	// RoleAdmin: the calling user holds role admin (on their current
	// record, not the token's claims).
	RoleAdmin bool
	// Scopes are the scopes the caller holds now: those of its token that
	// its current roles (or, for a service client, its current scopes)
	// still include (oauth2.Principal.HasScope).
	Scopes []string
}

// Is reports whether the actor is the user id.
func (a Actor) Is(id uuid.UUID) bool { return a.UserID != uuid.Nil && a.UserID == id }

// Errors with fixed messages.
var (
	errUserNotFound  = permiso.Errorf(permiso.ENOTFOUND, "User not found")
	errRoleNotFound  = permiso.Errorf(permiso.ENOTFOUND, "Role not found")
	errScopeNotFound = permiso.Errorf(permiso.ENOTFOUND, "Scope not found")
	errForbidden     = permiso.Errorf(permiso.EFORBIDDEN, "Access denied")
)

// notFound maps a store's ErrNotFound to the given error and passes any
// other error on.
func notFound(err, as error) error {
	if errors.Is(err, permiso.ErrNotFound) {
		return as
	}
	return err
}

// updateErr is the answer to an update's error: a 409 exists when another
// row holds a unique value sent (ErrAlreadyExists), missing when the row
// is gone (ErrNotFound), any other error as it is.
func updateErr(err error, exists string, missing error) error {
	if errors.Is(err, permiso.ErrAlreadyExists) {
		return permiso.Errorf(permiso.EEXISTS, "%s", exists)
	}
	return notFound(err, missing)
}

func (s *Service) getUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	// The account service works on the database's record, never on an
	// in-process cached copy.
	u, err := s.deps.Store.GetUser(permiso.WithFreshRead(ctx), id)
	return u, notFound(err, errUserNotFound)
}
