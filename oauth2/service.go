package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Defaults applied by NewService to zero Config values.
const (
	DefaultAccessTokenLifetime  = 15 * time.Minute
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultServiceTokenLifetime = 15 * time.Minute
	// DefaultRefreshAbsoluteLifetime is the default absolute session
	// lifetime (Config.RefreshAbsoluteLifetime).
	DefaultRefreshAbsoluteLifetime = 90 * 24 * time.Hour
	// DefaultMaxTokenLifetime is the default of Config.MaxTokenLifetime:
	// the longest access-token lifetime a service client may be given.
	DefaultMaxTokenLifetime = 24 * time.Hour

	// revocationMargin is added to every revocation entry's lifetime: the
	// verifier accepts a token up to its clock-skew leeway after exp (at
	// most jwt.MaxLeeway, one minute), so the entry must outlive exp by as
	// much, or the token would come back to life for the leeway.
	revocationMargin = time.Minute
)

// Config is the policy of the token service.
type Config struct {
	// Issuer is the "iss" of the tokens (JWT_ISSUER), shown by
	// introspection of refresh tokens. Access tokens get it from the
	// signer.
	Issuer string
	// Audience is the "aud" of issued access tokens; empty means the
	// signer's default.
	Audience []string
	// AccessTokenLifetime is the life of user access tokens
	// (ACCESS_TOKEN_EXPIRE_MINUTES).
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is the life of a refresh token and the idle
	// timeout of a session (REFRESH_TOKEN_EXPIRE_DAYS).
	RefreshTokenLifetime time.Duration
	// ServiceTokenLifetime is the life of client-credentials tokens of a
	// client without its own lifetime (SERVICE_TOKEN_EXPIRE_MINUTES).
	ServiceTokenLifetime time.Duration
	// MaxTokenLifetime is the longest life any access token can have
	// (the signer refuses longer ones): how long the revocation store keeps
	// the cut-offs of a client-wide or global revoke-all. Zero means the
	// largest of AccessTokenLifetime, ServiceTokenLifetime and
	// DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// ReuseGrace is how long after its rotation a refresh token may be
	// presented again and get a fresh pair instead of counting as reuse
	// (REFRESH_TOKEN_REUSE_GRACE_SECONDS). Zero means no grace.
	ReuseGrace time.Duration
	// RefreshAbsoluteLifetime caps the life of a session however often it
	// is refreshed: a refresh never moves the expiry of the session or of
	// its new refresh token past session.CreatedAt + this. Zero means
	// DefaultRefreshAbsoluteLifetime.
	RefreshAbsoluteLifetime time.Duration
	// PasswordMaxAge is the password expiry (PASSWORD_MAX_AGE_DAYS); zero
	// disables expiry.
	PasswordMaxAge time.Duration
	// RevocationFailOpen lets bearer checks continue, with a warning, when
	// the revocation store is unreachable (REVOCATION_FAIL_OPEN). By
	// default they fail closed with EUNAVAILABLE.
	RevocationFailOpen bool
	// PasswordPolicy is checked by ChangeExpiredPassword.
	PasswordPolicy permiso.PasswordPolicy
	// PreventReuseCount is how many previous passwords may not be reused
	// (PASSWORD_PREVENT_REUSE_COUNT).
	PreventReuseCount int
	// OIDCIssuer is the issuer of the discovery document (a URL): the iss
	// parameter of authorization responses (RFC 9207 §2). The ID tokens'
	// iss comes from Deps.IDTokens.
	OIDCIssuer string
	// BrowserSessionLifetime is how long a sign-in on the hosted pages
	// lasts; zero means DefaultBrowserSessionLifetime.
	BrowserSessionLifetime time.Duration
	// MFARequiredRoles (MFA_REQUIRED_ROLES): a holder of one of these
	// roles must sign in with a second factor (docs/mfa.md).
	MFARequiredRoles []string
}

// Hasher hashes and verifies passwords and can run a verification against
// a dummy hash for unknown users (argon2id.Hasher).
type Hasher interface {
	permiso.PasswordHasher
	// VerifyDummy costs as much as one Verify and matches nothing.
	VerifyDummy(ctx context.Context, password string) error
}

// Deps are the parts the token service works with.
type Deps struct {
	Users       permiso.UserStore
	Clients     permiso.ClientStore
	Tokens      permiso.TokenStore
	Sessions    permiso.SessionStore
	Hasher      Hasher
	Signer      permiso.TokenSigner
	Revocations permiso.RevocationStore
	// Lockout counts failed logins per normalized username (docs/abuse-resistance.md, "Lockout"); nil
	// disables the lockout (tests of other features only: cmd/permiso
	// always sets it).
	Lockout permiso.Lockout
	// Limiter enforces the per-client rate limits of service clients
	// (rate_limit_per_minute, rate_limit_per_hour) in the client
	// credentials grant; nil disables them. The per-IP limits are the HTTP
	// layer's.
	Limiter permiso.RateLimiter
	// Audit receives audit events; nil records nothing. Metrics on logins,
	// issued tokens and reuse detections can be taken by wrapping it.
	Audit permiso.Auditor
	// Checks sends the request's rate-limit and revocation checks
	// together (one Redis round trip, docs/abuse-resistance.md); nil means
	// permiso.SequentialChecker over Limiter and Revocations. It must
	// work on the same state as Limiter and Revocations.
	Checks permiso.Checker
	// Usage counts each successful client authentication (last_used,
	// total_requests) off the request path; nil counts nothing.
	Usage UsageRecorder
	// OIDC keeps authorization codes and browser sessions; nil leaves the
	// browser flow out (the authorization_code grant answers
	// unsupported_grant_type).
	OIDC permiso.OIDCStore
	// IDTokens signs ID tokens (an asymmetric key published in the JWKS).
	IDTokens permiso.IDTokenSigner
	// MFA are the second factors that sign-in asks for (docs/mfa.md);
	// without a Store no second factor is asked.
	MFA MFADeps
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives internal errors and fail-open warnings; nil discards.
	Logger *slog.Logger
}

// RequestMeta describes the HTTP request behind a call, for sessions and
// audit events. The methods without a RequestMeta parameter (Revoke,
// Logout, RevokeAllForUser, RevokeOtherSessions, Unlock,
// CheckCurrentPassword) take it from their context
// (permiso.ContextWithRequestMeta).
type RequestMeta = permiso.RequestMeta

func metaFrom(ctx context.Context) RequestMeta { return permiso.RequestMetaFrom(ctx) }

// Service is the protocol core of the token endpoint and of the bearer
// checks. It is safe for concurrent use.
type Service struct {
	cfg    Config
	deps   Deps
	checks permiso.Checker
	now    func() time.Time
	log    *slog.Logger
	// dummySecretHash is compared against for unknown clients, so that
	// they cost the same as known ones.
	dummySecretHash string
	// rotator is the token store's checked rotation (PostgreSQL), nil
	// when it has none: the refresh grant then reads the token first.
	rotator permiso.RefreshRotator
	// settling holds the compensating revocations in flight (settle).
	settling settlements
	// resent paces the re-sending of sessions' revocations
	// (resendSessionRevocation).
	resent resends
}

// NewService returns a Service. Zero lifetimes take the Default* values.
func NewService(cfg Config, deps Deps) *Service {
	permiso.SetDefault(&cfg.AccessTokenLifetime, DefaultAccessTokenLifetime)
	permiso.SetDefault(&cfg.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
	permiso.SetDefault(&cfg.ServiceTokenLifetime, DefaultServiceTokenLifetime)
	permiso.SetDefault(&cfg.MaxTokenLifetime, DefaultMaxTokenLifetime)
	cfg.MaxTokenLifetime = max(cfg.MaxTokenLifetime, cfg.AccessTokenLifetime, cfg.ServiceTokenLifetime)
	if cfg.ReuseGrace < 0 {
		cfg.ReuseGrace = 0
	}
	permiso.SetDefault(&cfg.RefreshAbsoluteLifetime, DefaultRefreshAbsoluteLifetime)
	if cfg.PreventReuseCount < 0 {
		cfg.PreventReuseCount = 0
	}
	permiso.SetDefault(&cfg.BrowserSessionLifetime, DefaultBrowserSessionLifetime)
	s := &Service{cfg: cfg, deps: deps, checks: deps.Checks, now: deps.Now, log: deps.Logger}
	if s.checks == nil {
		s.checks = permiso.SequentialChecker(deps.Limiter, deps.Revocations)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.dummySecretHash = permiso.HashToken(permiso.NewOpaqueToken())
	s.rotator = permiso.RefreshRotatorOf(deps.Tokens)
	return s
}

// TokenResponse is the successful token response (RFC 6749 §5.1) plus
// permiso's session_id (password grant).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	// Scope is the granted scope, sorted and space-separated; omitted when
	// empty (RFC 6749 §5.1 makes it optional when equal to the request).
	Scope string `json:"scope,omitempty"`
	// RefreshToken is never issued to client_credentials (RFC 6749 §4.4.3).
	RefreshToken string `json:"refresh_token,omitempty"`
	SessionID    string `json:"session_id,omitempty"`
	// IDToken is the OpenID Connect ID token (authorization_code grant
	// with the openid scope; OpenID Connect Core 1.0 §3.1.3.3).
	IDToken string `json:"id_token,omitempty"`
	// RateLimit is the tightest per-client rate limit the request was
	// counted under (client credentials), for the RateLimit-* response
	// headers; nil when none applied. It is not part of the body.
	RateLimit *permiso.LimitResult `json:"-"`
}

// grant is what a grant step established, handed on through the fixed
// pipeline: scope policy, then issuance.
type grant struct {
	kind   string
	user   *permiso.User          // password and refresh grants
	client *permiso.ServiceClient // the authenticated client, if any
	// available are the scopes the subject holds now; ceiling bounds what
	// a refresh may request (the original grant).
	available []string
	ceiling   []string
	// refresh grant: the presented token, its hash, its session, and
	// whether it was already rotated within the grace window.
	presented  *permiso.RefreshToken
	hash       string
	session    *permiso.Session
	graceRetry bool
	// rotated is the replacement refresh token when the grant rotated the
	// presented one already (rotateRefresh), empty otherwise; rotatedID
	// is its id.
	rotated     string
	rotatedID   uuid.UUID
	grantedList []string
	// authorization_code grant: the redeemed code and the session its
	// exchange opens.
	code        *permiso.AuthCode
	codeSession uuid.UUID
	// rateLimit is the tightest per-client limit (client credentials).
	rateLimit *permiso.LimitResult
	// password grant: authTime was taken before the user was read and is
	// the iat of the access token and the IssuedAt of the session and
	// refresh token; password and needsRehash feed the rehash that follows
	// issuance (login_race.go).
	authTime    time.Time
	password    string
	needsRehash bool
	// amr are the authentication methods of a login (RFC 8176): "pwd",
	// then "otp" after a second factor (the mfa grant); empty means a
	// password alone.
	amr []string
	// secondFactor: what the password grant's user must still give
	// (docs/mfa.md, "Sign-in").
	secondFactor SecondFactorState
}

// Token runs the token endpoint (RFC 6749 §3.2) as one fixed pipeline:
// client authentication (when credentials were sent or the grant needs
// them) -> grant -> scope policy -> issuance -> response. No grant can skip
// a shared step.
//
// Every error is an *Error: store, hasher and signer failures become
// temporarily_unavailable (503, for permiso EUNAVAILABLE) or server_error
// (500, logged here with the request id and the grant type, once: the
// HTTP layer does not log it again, Error.Logged; never shown).
func (s *Service) Token(ctx context.Context, req TokenRequest, meta RequestMeta, limits *permiso.Limits) (TokenResponse, error) {
	resp, err := s.token(ctx, req, meta, limits)
	if err != nil {
		return TokenResponse{}, s.oauthError(ctx, err, meta, slog.String("grant_type", req.GrantType))
	}
	return resp, nil
}

func (s *Service) token(ctx context.Context, req TokenRequest, meta RequestMeta, limits *permiso.Limits) (TokenResponse, error) {
	// 1. Client authentication (RFC 6749 §2.3, §3.2.1).
	// Authentication itself is CPU only (the client record is cached in
	// process); what it records waits for the rate limits.
	var client *permiso.ServiceClient
	record := func() {}
	if req.ClientAuth == ClientAuthNone && req.ClientID != "" && req.ClientSecret == "" {
		// A public client sends only its client_id (RFC 6749 §4.1.3, §6;
		// ParseTokenRequest allows it for those grants only).
		c, err := s.publicClient(ctx, req.ClientID)
		if err != nil {
			if lerr := s.checkBatch(ctx, limits, nil); lerr != nil {
				return TokenResponse{}, lerr
			}
			return TokenResponse{}, err
		}
		client = c
	} else if req.ClientAuth != ClientAuthNone && req.ClientAuth != "" || req.ClientID != "" || req.ClientSecret != "" {
		c, rec, err := s.authenticateClient(ctx, req, meta, limits)
		if err != nil {
			// The request's limits decide first (429 before anything is
			// recorded), then the failure is audited.
			if lerr := s.checkBatch(ctx, limits, nil); lerr != nil {
				return TokenResponse{}, lerr
			}
			rec()
			return TokenResponse{}, err
		}
		client, record = c, rec
	}
	// The request's limit checks (limits) run before any
	// grant work (a password hash, a refresh rotation); the client
	// credentials grant sends them in one batch with the client's own
	// limits (allowClient), and records the client's use after it.
	if req.GrantType != GrantClientCredentials {
		if err := s.checkBatch(ctx, limits, nil); err != nil {
			return TokenResponse{}, err
		}
		record()
	}

	// 2. Grant.
	var (
		g   *grant
		err error
	)
	switch req.GrantType {
	case GrantPassword:
		g, err = s.passwordGrant(ctx, req, client, meta)
	case GrantRefreshToken:
		g, err = s.refreshGrant(ctx, req, client, meta)
		// A refresh abandoned by its client (permiso.ClientGone: a 499,
		// not a refusal) records no token.refresh_failure: else a
		// client that sends and hangs up, never waiting for the audit
		// queue's backpressure, writes events at the rate it sends and
		// pushes everyone else's out (docs/audit.md, "Backpressure
		// instead of dropping"). What it did is recorded by itself: a
		// reuse detection records token.reuse_detected first.
		if err != nil && !permiso.ClientGone(ctx, err) {
			s.auditRefreshFailure(ctx, meta, client, err)
		}
	case GrantClientCredentials:
		g, err = s.clientCredentialsGrant(ctx, client, record, meta, limits)
	case GrantAuthorizationCode:
		if s.deps.OIDC == nil {
			err = ErrUnsupportedGrantType.WithDescription("Unsupported grant type")
			break
		}
		g, err = s.codeGrant(ctx, req, client, meta)
	case GrantMFA:
		g, err = s.mfaGrant(ctx, req, client, meta)
	default:
		err = ErrUnsupportedGrantType.WithDescription("Unsupported grant type")
	}
	if err != nil {
		return TokenResponse{}, err
	}

	// 3. Scope policy (RFC 6749 §3.3, §6).
	granted, err := scopePolicy(req, g)
	if err != nil {
		return TokenResponse{}, err
	}
	g.grantedList = granted
	// A right password of a user who must give a second factor issues
	// nothing: the answer is mfa_required (or mfa_enrollment_required)
	// with an mfa_token for the mfa grant.
	if g.kind == GrantPassword && (g.secondFactor.Enrolled || g.secondFactor.Required) {
		return TokenResponse{}, s.secondStep(ctx, g, meta)
	}

	// 4. Issuance and 5. response.
	switch g.kind {
	case GrantPassword, GrantMFA:
		return s.issueLogin(ctx, g, meta)
	case GrantRefreshToken:
		return s.issueRefresh(ctx, req, g, meta)
	case GrantAuthorizationCode:
		return s.issueCode(ctx, g, meta)
	default:
		resp, err := s.issueService(ctx, g, meta)
		resp.RateLimit = g.rateLimit
		return resp, err
	}
}

// scopePolicy decides the granted scope. RFC 6749 §3.3 lets the server
// narrow the request and say so in the response; §6 forbids a refresh to
// ask for more than the original grant.
//
//   - refresh: a requested scope outside the original grant is
//     invalid_scope; granted = (requested, or the original grant) ∩ the
//     user's current scopes, so scopes the user lost are dropped;
//   - password and client_credentials: granted = (requested, or
//     everything) ∩ the subject's scopes; a request of which nothing can be
//     granted is invalid_scope, a partial one is narrowed.
func scopePolicy(req TokenRequest, g *grant) ([]string, error) {
	if g.kind == GrantAuthorizationCode || g.kind == GrantMFA {
		// The scope was decided at the authorization endpoint
		// (GrantedScopes; RFC 6749 §4.1.3 has no scope parameter), or
		// by the password grant the mfa_token continues.
		return g.available, nil
	}
	if g.kind == GrantRefreshToken {
		if req.ScopeGiven && !subset(req.Scope, g.ceiling) {
			return nil, ErrInvalidScope.WithDescription("The requested scope exceeds the scope originally granted")
		}
		base := g.ceiling
		if req.ScopeGiven {
			base = req.Scope
		}
		return intersect(base, g.available), nil
	}
	if !req.ScopeGiven {
		return permiso.SortedUnique(g.available), nil
	}
	granted := intersect(req.Scope, g.available)
	if len(granted) == 0 {
		return nil, ErrInvalidScope.WithDescription("None of the requested scopes can be granted")
	}
	return granted, nil
}

// errClientAuth is the one answer to every client authentication failure:
// unknown client, wrong secret, inactive client, address not allowed. It
// never says which (no client enumeration).
var errClientAuth = ErrInvalidClient.WithDescription("Client authentication failed")

// errClientAuthBasic is errClientAuth for credentials sent with HTTP
// Basic, which carries the challenge (RFC 6749 §5.2); built once, not per
// request.
var errClientAuthBasic = errClientAuth.WithBasicChallenge()

// authenticateClient checks the client's credentials (RFC 6749 §2.3.1)
// with a fast hash compared in constant time, against the current secret
// and, during a rotation overlap, the previous one (a secret imported from
// the original service is verified once with Argon2id and then replaced
// by its fast hash when record runs: imported_secret.go). It has no side
// effects of its own: record writes the outcome (the client_auth.failure
// audit event, or the client's usage count), and the caller runs it only
// once the request's rate limits have admitted the request, so that a
// flood refused with 429 neither fills the audit log nor counts as usage.
// record is never nil.
func (s *Service) authenticateClient(ctx context.Context, req TokenRequest, meta RequestMeta, limits *permiso.Limits) (c *permiso.ServiceClient, record func(), err error) {
	c = new(permiso.ServiceClient)
	if record, err = s.authenticateClientInto(ctx, req, meta, limits, c); err != nil {
		return nil, record, err
	}
	return c, record, nil
}

// authenticateClientInto is authenticateClient writing the client to
// *cl, which it keeps nowhere else (record holds copies of what it
// needs): a caller may keep the client on its stack
// (AuthenticateClient). *cl is meaningful only when err is nil.
func (s *Service) authenticateClientInto(ctx context.Context, req TokenRequest, meta RequestMeta, limits *permiso.Limits, cl *permiso.ServiceClient) (record func(), err error) {
	fail := func() error {
		if req.ClientAuth == ClientAuthBasic {
			return errClientAuthBasic
		}
		return errClientAuth
	}
	if req.ClientID == "" || req.ClientSecret == "" {
		return func() {}, fail()
	}
	now := s.now()
	// The hash of the presented secret is only compared: it stays on
	// the stack.
	var presented permiso.TokenHash
	permiso.HashTokenTo(&presented, req.ClientSecret)
	// A client_id that is not valid UTF-8 or holds a NUL names no client:
	// it is answered as an unknown one without asking the store, whose
	// backends would not agree on it (docs/security-model.md, "Untrusted
	// bytes").
	*cl, err = permiso.ServiceClient{}, permiso.ErrNotFound
	if permiso.ValidIdentifier(req.ClientID) {
		*cl, err = s.deps.Clients.GetServiceClientByClientID(ctx, req.ClientID)
	}
	if err != nil {
		if !errors.Is(err, permiso.ErrNotFound) {
			return func() {}, err
		}
		// Same work as for a known client (one hash, one constant-time
		// compare), so timing does not reveal which clients exist.
		_ = permiso.EqualTokenHash(&presented, s.dummySecretHash)
		clientID := req.ClientID
		return func() {
			s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionClientAuthFailure,
				Result: "failure", TargetType: ptr("client"), TargetID: ptr(clientID),
				Details: map[string]any{"reason": "unknown_client"}})
		}, fail()
	}
	prevActive := cl.PreviousSecretActive(now)
	if hasImportedSecret(*cl, prevActive) {
		// An imported secret costs an Argon2id verification
		// (imported_secret.go): the request's limits decide first.
		if err := s.checkBatch(ctx, limits, nil); err != nil {
			return func() {}, err
		}
	}
	ok, err := s.secretMatches(ctx, req.ClientSecret, &presented, cl.SecretHash, cl.ClientID)
	if err != nil {
		return func() {}, err
	}
	upgrade := ok && isImportedSecretHash(cl.SecretHash)
	// Both SHA-256 compares always run; an imported previous hash is
	// verified only when the current secret did not match.
	if prevActive && (!ok || !isImportedSecretHash(*cl.PreviousSecretHash)) {
		prev, err := s.secretMatches(ctx, req.ClientSecret, &presented, *cl.PreviousSecretHash, cl.ClientID)
		if err != nil {
			return func() {}, err
		}
		ok = ok || prev
	}
	reason := ""
	switch {
	case !ok:
		reason = "invalid_secret"
	case !cl.IsActive:
		reason = "inactive"
	case !ipAllowed(cl.AllowedIPs, meta.IP):
		reason = "address_not_allowed"
	}
	// The records capture copies, neither *cl nor req (both large).
	id, clientID, secretHash, secret := cl.ID, cl.ClientID, cl.SecretHash, req.ClientSecret
	if reason != "" {
		return func() {
			s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionClientAuthFailure,
				Result: "failure", TargetType: ptr("client"), TargetID: ptr(clientID),
				Details: map[string]any{"reason": reason}})
		}, fail()
	}
	return func() {
		if upgrade {
			s.upgradeImportedSecret(ctx, id, secretHash, secret)
		}
		if s.deps.Usage != nil {
			s.deps.Usage.ClientUsed(id, now)
		}
	}, nil
}

// ipAllowed reports whether ip may use a client with this allowed_ips list
// (comma-separated IPs and CIDRs). An empty list allows any address; an
// unparsable list, or an unknown address, allows none (fail closed).
func ipAllowed(list *string, ip netip.Addr) bool {
	if list == nil || strings.TrimSpace(*list) == "" {
		return true
	}
	prefixes, err := permiso.ParseAllowedIPs(*list)
	if err != nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// oauthError turns err into the *Error Token returns, logging internal
// causes once: here, with the request id, the error and attrs (the token
// endpoint adds the grant type); the *Error it returns then says so
// (Error.Logged), and the HTTP layer does not log it again.
func (s *Service) oauthError(ctx context.Context, err error, meta RequestMeta, attrs ...slog.Attr) *Error {
	e := AsError(err)
	if e.Status >= 500 {
		s.log.LogAttrs(ctx, levelFor(ctx, err, e), "token endpoint error",
			append([]slog.Attr{slog.String("request_id", meta.RequestID),
				slog.String("error", err.Error())}, attrs...)...)
		e = e.clone()
		e.logged = true
	}
	return e
}

// levelFor is the level oauthError logs e at: debug when the request's
// client went away (permiso.ClientGone: not a server error, and the HTTP
// layer records it as 499), warning for 503, error otherwise.
func levelFor(ctx context.Context, err error, e *Error) slog.Level {
	switch {
	case permiso.ClientGone(ctx, err):
		return slog.LevelDebug
	case e.Status == 503:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// signAccess signs an access token with the configured audience.
func (s *Service) signAccess(ctx context.Context, c permiso.AccessClaims) (string, error) {
	if len(s.cfg.Audience) > 0 {
		c.Audience = s.cfg.Audience
	}
	return s.deps.Signer.Sign(ctx, c)
}

func ptr[T any](v T) *T { return &v }
