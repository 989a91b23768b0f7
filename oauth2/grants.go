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
	ActionLoginSuccess       = "login.success"
	ActionLoginFailure       = "login.failure"
	ActionClientAuthFailure  = "client.auth_failure"
	ActionTokenIssue         = "token.issue"
	ActionTokenRefresh       = "token.refresh"
	ActionTokenReuseDetected = "token.reuse_detected"
	ActionTokenRevoke        = "token.revoke"
	ActionLogout             = "session.logout"
	ActionRevokeAll          = "session.revoke_all"
	ActionPasswordChange     = "password.change"
)

// errBadCredentials is the one answer for an unknown user and for a wrong
// password (RFC 6749 §5.2 invalid_grant): the very same value, so the two
// cases cannot be told apart by the response.
var errBadCredentials = ErrInvalidGrant.WithDescription("Invalid username or password")

// errBadRefresh is the answer for a refresh token that is unknown, expired,
// revoked, reused, bound to another client or whose session ended.
var errBadRefresh = ErrInvalidGrant.WithDescription("Refresh token is invalid, expired or revoked")

// verifyPassword finds the user by login (username or email, case-
// insensitively) and checks the password. An unknown user costs one dummy
// verification and gets the same error as a wrong password. Only after a
// correct password is a disabled account reported (account_disabled), so
// the account state is never revealed to someone without the password.
func (s *Service) verifyPassword(ctx context.Context, login, password string, meta RequestMeta) (u permiso.User, needsRehash bool, err error) {
	u, err = s.deps.Users.GetUserByLogin(ctx, login)
	if err != nil {
		if !errors.Is(err, permiso.ErrNotFound) {
			return permiso.User{}, false, err
		}
		if err := s.deps.Hasher.VerifyDummy(ctx, password); err != nil {
			return permiso.User{}, false, err
		}
		s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginFailure,
			Result: "failure", TargetType: ptr("user"), TargetID: ptr(login),
			Details: map[string]any{"reason": "unknown_user"}})
		return permiso.User{}, false, errBadCredentials
	}
	ok, needsRehash, err := s.deps.Hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return permiso.User{}, false, err
	}
	if !ok {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "invalid_password"})
		return permiso.User{}, false, errBadCredentials
	}
	if !u.IsActive {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "account_disabled"})
		return permiso.User{}, false, ErrAccountDisabled
	}
	return u, needsRehash, nil
}

// passwordGrant is the resource owner password credentials grant
// (RFC 6749 §4.3.2).
func (s *Service) passwordGrant(ctx context.Context, req TokenRequest, client *permiso.ServiceClient, meta RequestMeta) (*grant, error) {
	u, needsRehash, err := s.verifyPassword(ctx, req.Username, req.Password, meta)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if s.cfg.PasswordMaxAge > 0 && u.PasswordChangedAt.Add(s.cfg.PasswordMaxAge).Before(now) {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "password_expired"})
		return nil, ErrPasswordExpired
	}
	s.recordLogin(ctx, u, req.Password, needsRehash, now)
	return &grant{kind: GrantPassword, user: &u, client: client, available: validScopes(u.ScopeNames())}, nil
}

// recordLogin sets LastLogin and, when the stored hash uses weaker
// parameters than the current ones, replaces it by a new hash of the
// password just verified. Both are best effort: a failure is logged and
// does not fail the login.
func (s *Service) recordLogin(ctx context.Context, u permiso.User, password string, needsRehash bool, now time.Time) {
	oldHash, newHash := u.PasswordHash, ""
	if needsRehash {
		h, err := s.deps.Hasher.Hash(ctx, password)
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "password rehash failed", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
		} else {
			newHash = h
		}
	}
	_, err := s.deps.Users.UpdateUser(ctx, u.ID, func(x *permiso.User) error {
		t := now.UTC()
		x.LastLogin = &t
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
	t, err := s.deps.Tokens.GetRefreshTokenByHash(ctx, hash)
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return nil, errBadRefresh
		}
		return nil, err
	}
	if t.RevokedAt != nil || !now.Before(t.ExpiresAt) {
		return nil, errBadRefresh
	}
	// RFC 6749 §6: a refresh token issued to a client may be used only by
	// that client, authenticated; a first-party token (issued without
	// client authentication) is not usable by a client.
	if t.ClientID != nil && (client == nil || client.ID != *t.ClientID) || t.ClientID == nil && client != nil {
		return nil, errBadRefresh
	}
	graceRetry := false
	if t.UsedAt != nil {
		if now.Sub(*t.UsedAt) > s.cfg.ReuseGrace {
			return nil, s.reuseDetected(ctx, t, meta)
		}
		graceRetry = true
	}
	sess, err := s.deps.Sessions.GetSession(ctx, t.SessionID)
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return nil, errBadRefresh
		}
		return nil, err
	}
	if !sess.Active(now) {
		return nil, errBadRefresh
	}
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
	return &grant{
		kind: GrantRefreshToken, user: &u, client: client,
		available: validScopes(u.ScopeNames()), ceiling: ceiling,
		presented: &t, hash: hash, session: &sess, graceRetry: graceRetry,
	}, nil
}

// reuseDetected handles a refresh token presented again after its rotation
// grace window (RFC 9700 §4.14.2): either the legitimate client or an
// attacker holds a stolen copy, so the whole family, its session and the
// session's access tokens are revoked. The caller gets invalid_grant.
func (s *Service) reuseDetected(ctx context.Context, t permiso.RefreshToken, meta RequestMeta) error {
	now := s.now()
	n, err := s.deps.Tokens.RevokeRefreshFamily(ctx, t.FamilyID, "reuse_detected", now)
	if err != nil {
		return err
	}
	if _, err := s.deps.Sessions.RevokeSession(ctx, t.SessionID, "reuse_detected", now); err != nil && !errors.Is(err, permiso.ErrNotFound) {
		return err
	}
	if err := s.deps.Revocations.RevokeSession(ctx, t.SessionID.String(), s.sessionRevocationExpiry(now)); err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse detected; family and session revoked",
		slog.String("request_id", meta.RequestID), slog.String("user_id", t.UserID.String()),
		slog.String("session_id", t.SessionID.String()), slog.String("family_id", t.FamilyID.String()))
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "user", ActorID: ptr(t.UserID.String()),
		Action: ActionTokenReuseDetected, Result: "failure",
		TargetType: ptr("session"), TargetID: ptr(t.SessionID.String()),
		Details: map[string]any{"family_id": t.FamilyID.String(), "token_id": t.ID.String(), "tokens_revoked": n}})
	return errBadRefresh
}

// clientCredentialsGrant is the client credentials grant (RFC 6749 §4.4):
// confidential clients only (§4.4 "MUST only be used by confidential
// clients").
func (s *Service) clientCredentialsGrant(_ context.Context, client *permiso.ServiceClient, _ TokenRequest) (*grant, error) {
	if client == nil {
		return nil, ErrInvalidClient.WithDescription("Client authentication is required for the client_credentials grant").WithBasicChallenge()
	}
	if client.ClientType == "public" {
		return nil, ErrUnauthorizedClient.WithDescription("Public clients may not use the client_credentials grant")
	}
	return &grant{kind: GrantClientCredentials, client: client, available: validScopes(client.ScopeNames())}, nil
}

// issueLogin creates the session, the first refresh token of a new family
// and an access token for a password grant.
func (s *Service) issueLogin(ctx context.Context, g *grant, meta RequestMeta) (TokenResponse, error) {
	now := s.now()
	u := g.user
	sid := uuid.New()
	expires := now.Add(s.refreshLifetime(g.client))
	var clientRow *uuid.UUID
	if g.client != nil {
		clientRow = &g.client.ID
	}
	// Signing has no side effects, so it goes first: a signer failure
	// leaves nothing behind.
	access, err := s.signUserAccess(ctx, u, sid, g.grantedList, g.client, now)
	if err != nil {
		return TokenResponse{}, err
	}
	if _, err := s.deps.Sessions.CreateSession(ctx, permiso.Session{
		ID: sid, UserID: u.ID, ClientID: clientRow, IPAddress: ipString(meta),
		UserAgent: optional(meta.UserAgent), CreatedAt: now, LastActivity: now, ExpiresAt: expires,
	}); err != nil {
		return TokenResponse{}, err
	}
	opaque := permiso.NewOpaqueToken()
	if _, err := s.deps.Tokens.CreateRefreshToken(ctx, permiso.RefreshToken{
		ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: u.ID, ClientID: clientRow,
		SessionID: sid, FamilyID: uuid.New(), Scopes: g.grantedList, IssuedAt: now, ExpiresAt: expires,
		ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent),
	}); err != nil {
		if _, rerr := s.deps.Sessions.RevokeSession(ctx, sid, "login_failed", now); rerr != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "revoking an unfinished session failed", slog.String("session_id", sid.String()), slog.String("error", rerr.Error()))
		}
		return TokenResponse{}, err
	}
	details := map[string]any{"session_id": sid.String(), "scopes": g.grantedList}
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
// sibling in the family), and the winner's pair stays valid.
func (s *Service) issueRefresh(ctx context.Context, _ TokenRequest, g *grant, meta RequestMeta) (TokenResponse, error) {
	now := s.now()
	t := g.presented
	expires := now.Add(s.refreshLifetime(g.client))
	opaque := permiso.NewOpaqueToken()
	// RFC 6749 §6: the new refresh token carries the scope of the one
	// presented, whatever narrower scope this access token got.
	repl := permiso.RefreshToken{
		ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: t.UserID, ClientID: t.ClientID,
		SessionID: t.SessionID, FamilyID: t.FamilyID, ParentID: &t.ID, Scopes: t.Scopes,
		IssuedAt: now, ExpiresAt: expires, ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent),
	}
	access, err := s.signUserAccess(ctx, g.user, t.SessionID, g.grantedList, g.client, now)
	if err != nil {
		return TokenResponse{}, err
	}
	graceRetry := g.graceRetry
	if !graceRetry {
		err := s.deps.Tokens.UseRefreshToken(ctx, g.hash, repl, now)
		switch {
		case err == nil:
		case errors.Is(err, permiso.ErrConflict):
			// Lost a race with a concurrent rotation (or a revocation):
			// re-read and apply the grace rule.
			cur, err := s.deps.Tokens.GetRefreshTokenByHash(ctx, g.hash)
			switch {
			case errors.Is(err, permiso.ErrNotFound):
				return TokenResponse{}, errBadRefresh
			case err != nil:
				return TokenResponse{}, err
			case cur.RevokedAt != nil || cur.UsedAt == nil:
				return TokenResponse{}, errBadRefresh
			case now.Sub(*cur.UsedAt) > s.cfg.ReuseGrace:
				return TokenResponse{}, s.reuseDetected(ctx, cur, meta)
			}
			graceRetry = true
		case errors.Is(err, permiso.ErrNotFound):
			return TokenResponse{}, errBadRefresh
		default:
			return TokenResponse{}, err
		}
	}
	if graceRetry {
		if _, err := s.deps.Tokens.CreateRefreshToken(ctx, repl); err != nil {
			return TokenResponse{}, err
		}
	}
	// Sliding session: activity moves the idle timeout forward. Best
	// effort; a revoked session stays revoked (fn leaves RevokedAt alone).
	if _, err := s.deps.Sessions.UpdateSession(ctx, t.SessionID, func(x *permiso.Session) error {
		x.LastActivity = now
		if expires.After(x.ExpiresAt) {
			x.ExpiresAt = expires
		}
		return nil
	}); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "updating session activity failed", slog.String("session_id", t.SessionID.String()), slog.String("error", err.Error()))
	}
	s.auditUser(ctx, meta, *g.user, ActionTokenRefresh, "success", map[string]any{
		"session_id": t.SessionID.String(), "family_id": t.FamilyID.String(),
		"scopes": g.grantedList, "grace_retry": graceRetry,
	})
	return TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: seconds(s.cfg.AccessTokenLifetime),
		Scope: strings.Join(g.grantedList, " "), RefreshToken: opaque,
	}, nil
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
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(lifetime), ID: uuid.NewString(),
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

// signUserAccess signs a user's access token (SPEC §4 claims).
func (s *Service) signUserAccess(ctx context.Context, u *permiso.User, sid uuid.UUID, scopes []string, client *permiso.ServiceClient, now time.Time) (string, error) {
	c := permiso.AccessClaims{
		Subject: u.ID.String(), Type: permiso.TokenTypeAccess, SessionID: sid.String(),
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(s.cfg.AccessTokenLifetime), ID: uuid.NewString(),
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
	if e.IPAddress == nil {
		e.IPAddress = optional(ipString(meta))
	}
	if e.UserAgent == nil {
		e.UserAgent = optional(meta.UserAgent)
	}
	if e.RequestID == nil {
		e.RequestID = optional(meta.RequestID)
	}
	s.deps.Audit.Record(ctx, e)
}

func (s *Service) auditUser(ctx context.Context, meta RequestMeta, u permiso.User, action, result string, details map[string]any) {
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "user", ActorID: ptr(u.ID.String()),
		Action: action, Result: result, TargetType: ptr("user"), TargetID: ptr(u.ID.String()),
		Details: details})
}
