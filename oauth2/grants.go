package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Audit actions written by the service.
const (
	ActionLoginSuccess      = "login.success"
	ActionLoginFailure      = "login.failure"
	ActionClientAuthFailure = "client.auth_failure"
	ActionTokenIssue        = "token.issue"
	ActionTokenRefresh      = "token.refresh"
	// ActionTokenRefreshFailure records a refused refresh (unknown,
	// expired, revoked or foreign token): a separate action, so that
	// reports counting token.refresh as issued tokens stay right.
	ActionTokenRefreshFailure = "token.refresh_failure"
	ActionTokenReuseDetected  = "token.reuse_detected"
	ActionTokenRevoke         = "token.revoke"
	ActionLogout              = "session.logout"
	ActionRevokeAll           = "session.revoke_all"
	ActionRevokeOthers        = "session.revoke_others"
	ActionPasswordChange      = "password.change"
	// ActionLoginLocked: a username (known or not) reached
	// MAX_LOGIN_ATTEMPTS consecutive failures and is locked (docs/abuse-resistance.md, "Lockout").
	ActionLoginLocked = "login.locked"
	// ActionLoginTooManyAttempts: a login (or current-password check) was
	// refused with too_many_attempts because as many password checks for
	// the account were in flight as the lockout admits: not a failure,
	// and nothing is counted.
	ActionLoginTooManyAttempts = "login.too_many_attempts"
	// ActionLoginUnlock: a lock was lifted (admin unlock, password reset).
	ActionLoginUnlock = "login.unlock"
	// ActionRateLimited: a service client exceeded its own rate limit.
	ActionRateLimited = "client.rate_limited"
)

// errBadCredentials is the one answer for an unknown user and for a wrong
// password (RFC 6749 §5.2 invalid_grant): the very same value, so the two
// cases cannot be told apart by the response.
var errBadCredentials = ErrInvalidGrant.WithDescription("Invalid username or password")

// errBadRefresh is the answer for a refresh token that is unknown, expired,
// revoked, reused, bound to another client or whose session ended.
var errBadRefresh = ErrInvalidGrant.WithDescription("Refresh token is invalid, expired or revoked")

// verifyPassword finds the user by login (username or email, case-
// insensitively) and checks the password, under the lockout
// (docs/abuse-resistance.md, "Lockout"):
//
//  1. the attempt asks the account's lockout key (lockoutKey) for a place
//     BEFORE any password is checked (beginAttempt). A locked key is
//     answered account_locked with locked_until; a key whose confirmed
//     failures plus attempts in flight reached MAX_LOGIN_ATTEMPTS is
//     answered too_many_attempts (429, Retry-After): in both cases no
//     password is checked. Holding places for the checks in flight,
//     rather than counting after a wrong password alone, bounds the
//     passwords ever found wrong before the lock: of N concurrent
//     guesses, on any number of instances, at most MAX_LOGIN_ATTEMPTS are
//     checked; concurrent logins with the right password are never
//     counted as failures;
//  2. an unknown user costs one dummy verification and gets the same
//     error as a wrong password; a wrong password turns the place into a
//     counted failure, which may lock the key (failedAttempt);
//  3. a correct password resets the count (succeededAttempt); an attempt
//     turned away before its check (the hasher saturated, the request
//     ended) gives its place back (abandonedAttempt);
//  4. only after a correct password is a disabled account reported
//     (account_disabled), so the account state is never revealed to
//     someone without the password.
//
// An unknown and a known username behave identically throughout: the same
// counting, the same lock, the same answers. A login that is not valid
// UTF-8 or holds a NUL names no account: it is an unknown user, found
// without asking the store (docs/security-model.md, "Untrusted bytes").
//
// For a user who must give a second factor (SecondFactor: enrolled, or
// required by a role), a right password does NOT reset the count: its
// place is given back (Lockout.Undo) and the count is reset only by the
// second factor (CheckSecondFactor). Otherwise the right password alone
// would clear the failures of wrong codes, and an attacker holding it
// could guess codes without end. sf is the user's SecondFactorState.
func (s *Service) verifyPassword(ctx context.Context, login, password string, meta RequestMeta) (u permiso.User, needsRehash bool, sf SecondFactorState, err error) {
	err = permiso.ErrNotFound
	if permiso.ValidIdentifier(login) {
		u, err = s.deps.Users.GetUserByLogin(ctx, login)
	}
	found := err == nil
	if err != nil && !errors.Is(err, permiso.ErrNotFound) {
		return permiso.User{}, false, SecondFactorState{}, err
	}
	key := lockoutKey(login, u, found)
	a, err := s.beginAttempt(ctx, key, login, u, found, meta)
	if err != nil {
		return permiso.User{}, false, SecondFactorState{}, err
	}
	if !found {
		if err := s.deps.Hasher.VerifyDummy(ctx, password); err != nil {
			s.abandonedAttempt(ctx, a)
			return permiso.User{}, false, SecondFactorState{}, err
		}
		s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginFailure,
			Result: "failure", TargetType: ptr("user"), TargetID: ptr(login),
			Details: map[string]any{"reason": "unknown_user"}})
		return permiso.User{}, false, SecondFactorState{}, s.failedAttempt(ctx, a, login, u, found, meta)
	}
	ok, needsRehash, err := s.deps.Hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
			s.abandonedAttempt(ctx, a)
			return permiso.User{}, false, SecondFactorState{}, err
		}
		// An unreadable stored hash (the hasher already spent a dummy
		// verification's time on it) answers like a wrong password: a 500
		// would single the account out. The operator learns from the log.
		s.log.LogAttrs(ctx, slog.LevelError, "unreadable password hash", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
		ok, needsRehash = false, false
	}
	if !ok {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "invalid_password"})
		return permiso.User{}, false, SecondFactorState{}, s.failedAttempt(ctx, a, login, u, found, meta)
	}
	if sf, err = s.SecondFactor(ctx, u); err != nil {
		s.abandonedAttempt(ctx, a)
		return permiso.User{}, false, SecondFactorState{}, err
	}
	if sf.Enrolled || sf.Required {
		s.abandonedAttempt(ctx, a)
	} else if err := s.succeededAttempt(ctx, a); err != nil {
		return permiso.User{}, false, SecondFactorState{}, err
	}
	if !u.IsActive {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "account_disabled"})
		return permiso.User{}, false, SecondFactorState{}, ErrAccountDisabled
	}
	return u, needsRehash, sf, nil
}

// passwordGrant is the resource owner password credentials grant
// (RFC 6749 §4.3.2).
func (s *Service) passwordGrant(ctx context.Context, req TokenRequest, client *permiso.ServiceClient, meta RequestMeta) (*grant, error) {
	// The authentication time is taken before the user is read: a password
	// change or revoke-all after it invalidates what this login issues
	// (issueLogin re-checks, login_race.go).
	authTime := s.now()
	u, needsRehash, sf, err := s.verifyPassword(ctx, req.Username, req.Password, meta)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if s.cfg.PasswordMaxAge > 0 && u.PasswordChangedAt.Add(s.cfg.PasswordMaxAge).Before(now) {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "password_expired"})
		return nil, ErrPasswordExpired
	}
	// LastLogin and the opportunistic rehash are recorded after issuance
	// (issueLogin), so that the re-check there sees the verified hash.
	available := validScopes(u.ScopeNames())
	// Through a client that has scopes, a user gets at most those: the
	// client's scopes bound what it may act for (the refresh ceiling keeps
	// the bound). A client without scopes does not narrow the grant.
	if client != nil && len(client.ScopeNames()) > 0 {
		available = intersect(available, client.ScopeNames())
	}
	return &grant{kind: GrantPassword, user: &u, client: client, available: available,
		authTime: authTime, password: req.Password, needsRehash: needsRehash, secondFactor: sf}, nil
}

// recordLogin sets LastLogin and, when the stored hash uses weaker
// parameters than the current ones, replaces it by a new hash of the
// password just verified. Both are best effort: a failure is logged and
// does not fail the login. The login it records happened (its session is
// confirmed and its count reset), so LastLogin and the lockout mirror are
// written even when the client went away meanwhile (compensating); the
// rehash is not needed for that and stops with the request (the next
// login does it), logged at debug level.
func (s *Service) recordLogin(ctx context.Context, u permiso.User, password string, needsRehash bool, now time.Time) {
	oldHash, newHash := u.PasswordHash, ""
	if needsRehash {
		h, err := s.deps.Hasher.Hash(ctx, password)
		switch {
		case err == nil:
			newHash = h
		case permiso.ClientGone(ctx, err):
			s.log.LogAttrs(ctx, slog.LevelDebug, "password rehash skipped: the client went away", slog.String("user_id", u.ID.String()))
		default:
			s.log.LogAttrs(ctx, slog.LevelWarn, "password rehash failed", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
		}
	}
	cctx, cancel := compensating(ctx)
	defer cancel()
	_, err := s.deps.Users.UpdateUser(cctx, u.ID, func(x *permiso.User) error {
		t := now.UTC()
		x.LastLogin = &t
		// The lockout mirror (lockout.go) ends with a successful login.
		x.FailedLoginAttempts, x.LockedUntil = 0, nil
		// Only replace the hash that was verified: a concurrent password
		// change wins.
		if newHash != "" && x.PasswordHash == oldHash {
			x.PasswordHash = newHash
		}
		return nil
	})
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording the login failed", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
	}
}

// refreshGrant is the refresh token grant (RFC 6749 §6) with rotation and
// reuse detection (RFC 9700 §4.14.2).
func (s *Service) refreshGrant(ctx context.Context, req TokenRequest, client *permiso.ServiceClient, meta RequestMeta) (*grant, error) {
	now := s.now()
	hash := permiso.HashToken(req.RefreshToken)
	// The common refresh (no scope asked, which could be refused) on a
	// store that checks and rotates in one statement: no read first
	// (docs/benchmarks.md, "The refresh path").
	if s.rotator != nil && !req.ScopeGiven {
		if g, err := s.rotateRefresh(ctx, client, hash, now, meta); err != nil || g != nil {
			return g, err
		}
	}
	// The token and its session in one read (one round trip): with the
	// rotation's one, a refresh makes two. On a RefreshRotator this runs
	// only when the rotation found something to refuse, lost a race, or
	// did not run to its answer (the client went away), and decides the
	// answer. It reads whatever became of the request (presentedToken): a
	// replay is detected even when its client hangs up at once.
	t, sess, err := s.presentedToken(ctx, hash)
	if err == nil {
		err = s.refusePresented(ctx, t, client, now, meta)
	}
	// Reuse is decided (and its revocation done) by now; what follows is
	// for a client that is still there. With nobody left to read the
	// answer, the request ends as its client did (permiso.ClientGone),
	// whatever the answer would have been, and records nothing beyond
	// what it changed (token.reuse_detected; docs/audit.md).
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	graceRetry := t.UsedAt != nil
	if !sess.Active(now) {
		if sess.RevokedAt != nil {
			// Re-send the idempotent session revocation, in case the one
			// sent when the session ended was lost.
			if err := s.resendSessionRevocation(ctx, t.SessionID, now); err != nil {
				return nil, err
			}
		}
		return nil, errBadRefresh
	}
	// Absolute session lifetime: sliding refresh cannot keep a family
	// alive forever.
	if !now.Before(s.sessionDeadline(sess)) {
		return nil, errBadRefresh
	}
	g, err := s.refreshUserGrant(ctx, t, sess, client)
	if err != nil {
		return nil, err
	}
	g.hash, g.graceRetry = hash, graceRetry
	return g, nil
}

// refusePresented answers why the presented token t may not be used by
// client at now, or nil when it may: expired, bound to another client (or
// to none), dead with its client's revoke-all cut-off, or revoked or
// rotated longer ago than the grace window, which is reuse where it is
// one (rejectPresented).
func (s *Service) refusePresented(ctx context.Context, t permiso.RefreshToken, client *permiso.ServiceClient, now time.Time, meta RequestMeta) error {
	if !now.Before(t.ExpiresAt) {
		return errBadRefresh
	}
	// RFC 6749 §6: a refresh token issued to a client may be used only by
	// that client, authenticated; a first-party token (issued without
	// client authentication) is not usable by a client.
	if t.ClientID != nil && (client == nil || client.ID != *t.ClientID) || t.ClientID == nil && client != nil {
		return errBadRefresh
	}
	// A refresh token obtained through a client dies with the client's
	// revoke-all cut-off, which disabling the client sets: enabling it
	// again revives nothing (docs/security-model.md).
	if client != nil && client.IssuedTokenDead(t.IssuedAt) {
		return errBadRefresh
	}
	// Revoked (its one grace retry spent included) or rotated longer ago
	// than the grace window: refused, as reuse where it is one
	// (refresh_reuse.go). A rotated token within the window takes the
	// grace path, whose store compare-and-swap also refuses it, as reuse,
	// once its replacement was used (useGrace).
	if t.RevokedAt != nil || t.UsedAt != nil && s.pastGrace(*t.UsedAt, now) {
		return s.rejectPresented(ctx, t, now, meta)
	}
	return nil
}

// rotateRefresh is the refresh grant on a permiso.RefreshRotator: the
// token is checked and rotated in one statement, with every check of
// refreshGrant on the token and its session (RotateRefreshToken lists
// them) and the user's (active, no revoke-all cut-off after the token's
// issue: refreshUserGrant checks them again, on the user it reads). It
// answers nil and no error when nothing was rotated: the token is then
// read, and the answer decided, as on any store. The replacement is
// issued by issueRefresh, which signs the access token after the
// rotation here: a signing failure takes the rotation back
// (undoRotation).
func (s *Service) rotateRefresh(ctx context.Context, client *permiso.ServiceClient, hash string, now time.Time, meta RequestMeta) (*grant, error) {
	opaque := permiso.NewOpaqueToken()
	r := permiso.RefreshRotation{Hash: hash, Now: now, SessionLifetime: s.cfg.RefreshAbsoluteLifetime,
		Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: permiso.HashToken(opaque),
			ExpiresAt: now.Add(s.refreshLifetime(client)), ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent)}}
	if client != nil {
		r.ClientID, r.IssuedSince = &client.ID, client.IssuedTokensLiveSince()
	}
	if ctx.Err() != nil {
		// Gone already: nothing to rotate, but a replay to detect
		// (refreshGrant reads the token).
		return nil, nil
	}
	t, sess, ok, err := s.rotator.RotateRefreshToken(ctx, r)
	if err != nil && ctx.Err() != nil {
		// The client went away meanwhile: the rotation was withdrawn or
		// taken back (RefreshRotator), and the token is read as above.
		return nil, nil
	}
	if err != nil || !ok {
		return nil, err
	}
	g, err := s.refreshUserGrant(ctx, t, sess, client)
	if err != nil {
		return nil, s.undoRotation(ctx, t.ID, r.Replacement.ID, err)
	}
	g.hash, g.rotated, g.rotatedID = hash, opaque, r.Replacement.ID
	return g, nil
}

// undoRotation takes back the checked rotation of the presented token
// whose answer cannot be issued (cause: the access token could not be
// signed, or the user's checks refused it after the rotation), so that a
// refused refresh leaves the token unused, as on every store
// (permiso.RefreshRotator): a retry, with fewer scopes for instance, is
// not taken for reuse after the grace window. It returns cause.
func (s *Service) undoRotation(ctx context.Context, presented, replacement uuid.UUID, cause error) error {
	cctx, cancel := compensating(ctx)
	defer cancel()
	if err := s.rotator.UndoRefreshRotation(cctx, presented, replacement); err != nil {
		s.log.ErrorContext(ctx, "refresh: could not take back a rotation whose answer failed",
			"refresh_token_id", presented.String(), "error", err)
	}
	return cause
}

// refreshUserGrant is the refresh grant of the checked token t of
// session sess: its user's checks and the scopes it may have.
func (s *Service) refreshUserGrant(ctx context.Context, t permiso.RefreshToken, sess permiso.Session, client *permiso.ServiceClient) (*grant, error) {
	u, err := s.deps.Users.GetUser(ctx, t.UserID)
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return nil, errBadRefresh
		}
		return nil, err
	}
	if !u.IsActive {
		return nil, ErrInvalidGrant.WithDescription("User account is disabled")
	}
	if u.TokensRevokedBefore != nil && t.IssuedAt.Before(*u.TokensRevokedBefore) {
		return nil, errBadRefresh
	}
	ceiling := t.Scopes
	if ceiling == nil {
		ceiling = []string{}
	}
	available := validScopes(u.ScopeNames())
	// Through a client of the browser flow, or one that has scopes, a
	// user keeps at most the client's current scopes (codeFlowScopes, the
	// password grant's bound).
	if client != nil && (len(client.ScopeNames()) > 0 || client.AllowsGrant(GrantAuthorizationCode)) {
		available = intersect(available, client.ScopeNames())
	}
	return &grant{
		kind: GrantRefreshToken, user: &u, client: client,
		available: oidcCeiling(available, ceiling), ceiling: ceiling,
		presented: &t, session: &sess,
	}, nil
}

// reuseDetected handles a refresh token presented again after its rotation
// grace window (RFC 9700 §4.14.2): either the legitimate client or an
// attacker holds a stolen copy, so the whole family, its session and the
// session's access tokens are revoked. The caller gets invalid_grant.
func (s *Service) reuseDetected(ctx context.Context, t permiso.RefreshToken, meta RequestMeta) error {
	now := s.now()
	// The detection is logged and audited first, so that a failure of one
	// of the revocations below cannot hide it. Those revocations are
	// idempotent, and a later presentation of any token of the family
	// re-sends the session revocation (rejectPresented).
	s.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse detected; revoking family and session",
		slog.String("request_id", meta.RequestID), slog.String("user_id", t.UserID.String()),
		slog.String("session_id", t.SessionID.String()), slog.String("family_id", t.FamilyID.String()))
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "user", ActorID: ptr(t.UserID.String()),
		Action: ActionTokenReuseDetected, Result: "failure",
		TargetType: ptr("session"), TargetID: ptr(t.SessionID.String()),
		Details: map[string]any{"family_id": t.FamilyID.String(), "token_id": t.ID.String()}})
	// The family is the session's (one per login): RevokeSession ends the
	// session and revokes its refresh tokens in one transaction, so a
	// failure cannot leave one without the other. Both revocations run to
	// their end even when the presenting client went away, once at a time
	// per session (settle): hanging up must not save a family whose token
	// was replayed, nor make each replay a detached write.
	if err := s.settle(ctx, "reuse:"+t.SessionID.String(), func(cctx context.Context) error {
		if _, err := s.deps.Sessions.RevokeSession(cctx, t.SessionID, permiso.RevocationReuseDetected, now); err != nil && !errors.Is(err, permiso.ErrNotFound) {
			return err
		}
		return s.deps.Revocations.RevokeSession(cctx, t.SessionID.String(), s.sessionRevocationExpiry(now))
	}); err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "family and session revoked after reuse",
		slog.String("request_id", meta.RequestID), slog.String("session_id", t.SessionID.String()))
	return errBadRefresh
}

// clientCredentialsGrant is the client credentials grant (RFC 6749 §4.4):
// confidential clients only (§4.4 "MUST only be used by confidential
// clients"), within the client's own rate limits (docs/abuse-resistance.md).
//
// record is the client authentication's record (authenticateClient), run
// once the request's limits have admitted it.
func (s *Service) clientCredentialsGrant(ctx context.Context, client *permiso.ServiceClient, record func(), meta RequestMeta, limits *permiso.Limits) (*grant, error) {
	if client == nil {
		return nil, ErrInvalidClient.WithDescription("Client authentication is required for the client_credentials grant").WithBasicChallenge()
	}
	if client.ClientType == "public" {
		return nil, ErrUnauthorizedClient.WithDescription("Public clients may not use the client_credentials grant")
	}
	rl, err := s.allowClient(ctx, client, record, meta, limits)
	if err != nil {
		return nil, err
	}
	return &grant{kind: GrantClientCredentials, client: client, available: validScopes(client.ScopeNames()), rateLimit: rl}, nil
}

// issueLogin creates the session, the first refresh token of a new family
// and an access token for a password grant.
func (s *Service) issueLogin(ctx context.Context, g *grant, meta RequestMeta) (TokenResponse, error) {
	// now is the authentication time, taken before the user was read: the
	// iat of the access token and the IssuedAt of the session and refresh
	// token (login_race.go).
	now := g.authTime
	if now.IsZero() {
		now = s.now()
	}
	u := g.user
	sid := uuid.New()
	expires := now.Add(min(s.refreshLifetime(g.client), s.cfg.RefreshAbsoluteLifetime))
	var clientRow *uuid.UUID
	if g.client != nil {
		clientRow = &g.client.ID
	}
	// Signing has no side effects, so it goes first: a signer failure
	// leaves nothing behind.
	amr := sessionAMR(g.amr)
	access, err := s.signUserAccess(ctx, u, sid, g.grantedList, g.client, amr, now)
	if err != nil {
		return TokenResponse{}, err
	}
	// The session and its first refresh token are stored together or not
	// at all: a failure between the two (the database connection lost)
	// never leaves a session without its refresh token.
	opaque := permiso.NewOpaqueToken()
	if _, _, err := s.deps.Sessions.CreateSessionWithToken(ctx, permiso.Session{
		ID: sid, UserID: u.ID, ClientID: clientRow, IPAddress: ipString(meta),
		UserAgent: optional(meta.UserAgent), CreatedAt: now, LastActivity: now, ExpiresAt: expires, AMR: amr,
	}, permiso.RefreshToken{
		ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: u.ID, ClientID: clientRow,
		SessionID: sid, FamilyID: uuid.New(), Scopes: g.grantedList, IssuedAt: now, ExpiresAt: expires,
		ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent),
	}); err != nil {
		return TokenResponse{}, err
	}
	// A password change or revoke-all that raced this login wins: what was
	// just issued is revoked again.
	if err := s.recheckLogin(ctx, g, sid, meta); err != nil {
		return TokenResponse{}, err
	}
	s.recordLogin(ctx, *u, g.password, g.needsRehash, s.now())
	details := map[string]any{"session_id": sid.String(), "scopes": g.grantedList, "amr": amr}
	if g.client != nil {
		details["client_id"] = g.client.ClientID
	}
	s.auditUser(ctx, meta, *u, ActionLoginSuccess, "success", details)
	return TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: seconds(s.cfg.AccessTokenLifetime),
		Scope: strings.Join(g.grantedList, " "), RefreshToken: opaque, SessionID: sid.String(),
	}, nil
}

// issueRefresh rotates the presented refresh token (RFC 9700 §4.14.2): it
// is marked used and replaced by a new token of the same family, in one
// store transaction. Of concurrent rotations exactly one wins; the others,
// and retries within the grace window, get a fresh pair of their own (a
// sibling in the family) while the winner's replacement is unused, and the
// winner's pair stays valid; once it is used they are reuse (useGrace).
func (s *Service) issueRefresh(ctx context.Context, _ TokenRequest, g *grant, meta RequestMeta) (TokenResponse, error) {
	now := s.now()
	t := g.presented
	// The session's authentication methods: a refresh keeps those of the
	// sign-in (docs/mfa.md).
	access, err := s.signUserAccess(ctx, g.user, t.SessionID, g.grantedList, g.client, sessionAMR(g.session.AMR), now)
	if err != nil {
		if g.rotated != "" {
			return TokenResponse{}, s.undoRotation(ctx, t.ID, g.rotatedID, err)
		}
		return TokenResponse{}, err
	}
	if g.rotated != "" {
		// Rotated already, with the grant's checks (rotateRefresh). A
		// refresh whose client has gone meanwhile (ctx done: it
		// disconnected or timed out) takes its rotation back: the answer
		// would not reach it, and its retry after the grace window would
		// be taken for reuse and end the session.
		if err := ctx.Err(); err != nil {
			return TokenResponse{}, s.undoRotation(ctx, t.ID, g.rotatedID, err)
		}
		s.auditRefresh(ctx, meta, g, false)
		return refreshResponse(access, g, g.rotated, s.cfg.AccessTokenLifetime), nil
	}
	expires := now.Add(s.refreshLifetime(g.client))
	if deadline := s.sessionDeadline(*g.session); expires.After(deadline) {
		expires = deadline
	}
	opaque := permiso.NewOpaqueToken()
	// RFC 6749 §6: the new refresh token carries the scope of the one
	// presented, whatever narrower scope this access token got.
	repl := permiso.RefreshToken{
		ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: t.UserID, ClientID: t.ClientID,
		SessionID: t.SessionID, FamilyID: t.FamilyID, ParentID: &t.ID, Scopes: t.Scopes,
		IssuedAt: now, ExpiresAt: expires, ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent),
	}
	graceRetry := g.graceRetry
	if !graceRetry {
		lost, err := spendOutcome(s.deps.Tokens.UseRefreshToken(ctx, g.hash, repl, now))
		if err != nil {
			return TokenResponse{}, err
		}
		if lost {
			// Lost a race with a concurrent rotation (or a revocation):
			// re-read and apply the grace rule.
			cur, err := s.refreshByHash(ctx, g.hash)
			switch {
			case err != nil:
				return TokenResponse{}, err
			case cur.RevokedAt != nil || cur.UsedAt != nil && s.pastGrace(*cur.UsedAt, now):
				return TokenResponse{}, s.rejectPresented(ctx, cur, now, meta)
			case cur.UsedAt == nil:
				return TokenResponse{}, errBadRefresh
			}
			graceRetry = true
		}
	}
	if graceRetry {
		// At most one grace retry per rotated token, spent atomically: a
		// second one is reuse (refresh_reuse.go).
		firstUse, err := s.useGrace(ctx, g.hash, repl, now, meta)
		if err != nil {
			return TokenResponse{}, err
		}
		graceRetry = !firstUse
	}
	// The sliding session (activity now, idle timeout forward) was
	// touched in the rotation's own transaction (permiso.TouchSession).
	s.auditRefresh(ctx, meta, g, graceRetry)
	return refreshResponse(access, g, opaque, s.cfg.AccessTokenLifetime), nil
}

// auditRefresh records a refresh that issued a pair.
func (s *Service) auditRefresh(ctx context.Context, meta RequestMeta, g *grant, graceRetry bool) {
	t := g.presented
	s.auditUser(ctx, meta, *g.user, ActionTokenRefresh, "success", map[string]any{
		"session_id": t.SessionID.String(), "family_id": t.FamilyID.String(),
		"scopes": g.grantedList, "grace_retry": graceRetry,
	})
}

// refreshResponse is the answer of a refresh: the access token and the
// replacement refresh token (opaque).
func refreshResponse(access string, g *grant, opaque string, lifetime time.Duration) TokenResponse {
	return TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: seconds(lifetime),
		Scope: strings.Join(g.grantedList, " "), RefreshToken: opaque,
	}
}

// issueService issues a client-credentials access token (RFC 6749 §4.4.3:
// no refresh token).
func (s *Service) issueService(ctx context.Context, g *grant, meta RequestMeta) (TokenResponse, error) {
	now := s.now()
	c := g.client
	lifetime := s.cfg.ServiceTokenLifetime
	if c.AccessTokenLifetime > 0 {
		lifetime = time.Duration(c.AccessTokenLifetime) * time.Second
	}
	access, err := s.signAccess(ctx, permiso.AccessClaims{
		Subject: c.ClientID, ClientID: c.ClientID, Type: permiso.TokenTypeService,
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(lifetime), ID: permiso.NewTokenID(now),
		Scopes: g.grantedList, IsTrusted: ptr(c.IsTrusted),
	})
	if err != nil {
		return TokenResponse{}, err
	}
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "client", ActorID: ptr(c.ClientID),
		Action: ActionTokenIssue, Result: "success",
		Details: map[string]any{"grant_type": GrantClientCredentials, "scopes": g.grantedList}})
	return TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: seconds(lifetime),
		Scope: strings.Join(g.grantedList, " "),
	}, nil
}

// signUserAccess signs a user's access token (docs/oauth.md, "Access
// tokens"); amr are the session's authentication methods (RFC 8176, the
// amr claim of RFC 9068 §2.2.3.1).
func (s *Service) signUserAccess(ctx context.Context, u *permiso.User, sid uuid.UUID, scopes []string, client *permiso.ServiceClient, amr []string, now time.Time) (string, error) {
	c := permiso.AccessClaims{
		Subject: u.ID.String(), Type: permiso.TokenTypeAccess, SessionID: sid.String(), AMR: amr,
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(s.cfg.AccessTokenLifetime), ID: permiso.NewTokenID(now),
		Scopes: scopes, Roles: u.RoleNames(), Username: u.Username, Email: u.Email,
		IsSuperuser: ptr(u.IsSuperuser),
	}
	if client != nil {
		c.ClientID = client.ClientID
	}
	return s.signAccess(ctx, c)
}

// refreshLifetime is the refresh token lifetime: the client's own when it
// has one, else the configured one.
func (s *Service) refreshLifetime(c *permiso.ServiceClient) time.Duration {
	if c != nil && c.RefreshTokenLifetime != nil && *c.RefreshTokenLifetime > 0 {
		return time.Duration(*c.RefreshTokenLifetime) * time.Second
	}
	return s.cfg.RefreshTokenLifetime
}

// sessionRevocationExpiry is how long a session's revocation entry must
// live: until the last access token of it can have expired.
func (s *Service) sessionRevocationExpiry(now time.Time) time.Time {
	return now.Add(s.cfg.AccessTokenLifetime + revocationMargin)
}

// anyTokenRevocationExpiry is how long a cut-off over tokens of any kind
// (a client's, or the global one) must live: until the longest-lived
// access token issued before it can have expired.
func (s *Service) anyTokenRevocationExpiry(now time.Time) time.Time {
	return now.Add(s.cfg.MaxTokenLifetime + revocationMargin)
}

func seconds(d time.Duration) int { return int(d / time.Second) }

func ipString(m RequestMeta) string {
	if !m.IP.IsValid() {
		return ""
	}
	return m.IP.String()
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// audit records e with the request's metadata; nil-safe.
func (s *Service) audit(ctx context.Context, meta RequestMeta, e permiso.AuditEvent) {
	if s.deps.Audit == nil {
		return
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = s.now().UTC()
	}
	if meta == (RequestMeta{}) {
		meta = metaFrom(ctx)
	}
	meta.Stamp(&e)
	s.deps.Audit.Record(ctx, e)
}

// auditRefreshFailure records a refused refresh grant. The token itself is
// never logged; the actor is the authenticated client, if any.
func (s *Service) auditRefreshFailure(ctx context.Context, meta RequestMeta, client *permiso.ServiceClient, err error) {
	e := permiso.AuditEvent{ActorType: "anonymous", Action: ActionTokenRefreshFailure, Result: "failure",
		Details: map[string]any{"error": AsError(err).Code, "reason": AsError(err).Description}}
	if client != nil {
		e.ActorType, e.ActorID = "client", ptr(client.ClientID)
	}
	s.audit(ctx, meta, e)
}

func (s *Service) auditUser(ctx context.Context, meta RequestMeta, u permiso.User, action, result string, details map[string]any) {
	// The user is both actor and target: one string for both (the
	// auditor keeps copies, audit.Clean).
	id := u.ID.String()
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "user", ActorID: &id,
		Action: action, Result: result, TargetType: ptr("user"), TargetID: &id,
		Details: details})
}
