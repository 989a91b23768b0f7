package oauth2

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.5, §4.6,
// OpenID Connect Core 1.0 §3.1.3): docs/oidc.md.

// GrantAuthorizationCode is the grant_type of the code exchange.
const GrantAuthorizationCode = permiso.GrantTypeAuthorizationCode

// errBadCode is the one answer to a code that is unknown, expired, used,
// issued to another client or for another redirect URI, or whose PKCE
// verifier does not match: RFC 6749 §5.2 invalid_grant, without saying
// which.
var errBadCode = ErrInvalidGrant.WithDescription("Invalid authorization code")

// publicClient returns the public client (token_endpoint_auth_method
// none) that sent only its client_id, for the code exchange (RFC 6749
// §4.1.3: "client_id REQUIRED, if the client is not authenticating").
// Every failure is the one invalid_client answer.
func (s *Service) publicClient(ctx context.Context, clientID string) (*permiso.ServiceClient, error) {
	if len(clientID) > MaxClientIDLength || !permiso.ValidIdentifier(clientID) {
		return nil, errClientAuth
	}
	c, err := s.deps.Clients.GetServiceClientByClientID(ctx, clientID)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return nil, errClientAuth
	case err != nil:
		return nil, err
	case !c.IsActive || c.AuthMethod() != permiso.AuthMethodNone:
		return nil, errClientAuth
	}
	return &c, nil
}

// codeGrant checks the presented code (RFC 6749 §4.1.3): issued to this
// client, for this redirect_uri, unexpired, unused, and matching the PKCE
// verifier (RFC 7636 §4.6); a code issued without a challenge refuses a
// verifier (RFC 9700 §2.1.1, PKCE downgrade). It then redeems the code
// for a new session in one conditional update: of concurrent exchanges
// exactly one wins. A code presented again revokes what its first
// exchange issued (RFC 6749 §4.1.2).
func (s *Service) codeGrant(ctx context.Context, req TokenRequest, client *permiso.ServiceClient, meta RequestMeta) (*grant, error) {
	if client == nil {
		return nil, ErrInvalidClient.WithDescription("Client authentication is required for the authorization_code grant")
	}
	if !client.AllowsGrant(permiso.GrantTypeAuthorizationCode) {
		return nil, ErrUnauthorizedClient.WithDescription("This client may not use the authorization_code grant")
	}
	now := s.now()
	hash := permiso.HashToken(req.Code)
	code, err := s.deps.OIDC.GetAuthCode(ctx, hash)
	if err != nil {
		return nil, notFoundAs(err, errBadCode)
	}
	if code.UsedAt != nil {
		return nil, s.codeReused(ctx, code, meta)
	}
	switch {
	case !now.Before(code.ExpiresAt):
		return nil, errBadCode
	case code.ClientID != client.ID:
		return nil, errBadCode
	case client.IssuedTokenDead(code.CreatedAt):
		// Issued before the client was disabled (or its tokens revoked):
		// enabling it again revives nothing (docs/security-model.md).
		return nil, errBadCode
	case req.RedirectURI != code.RedirectURI:
		// RFC 6749 §4.1.3: "ensure that the redirect_uri parameter is
		// present ... and that their values are identical".
		return nil, errBadCode
	case code.CodeChallenge != "" && !permiso.VerifyPKCE(code.CodeChallenge, req.CodeVerifier):
		return nil, errBadCode
	case code.CodeChallenge == "" && req.CodeVerifier != "":
		return nil, errBadCode
	}
	u, err := s.deps.Users.GetUser(ctx, code.UserID)
	if err != nil {
		return nil, notFoundAs(err, errBadCode)
	}
	if !u.IsActive || u.TokensRevokedBefore != nil && code.AuthTime.Before(*u.TokensRevokedBefore) {
		return nil, errBadCode
	}
	// The browser session in which the user authorized the client must
	// still be there: a sign-out, revoke-all or password change in between
	// ends the code too.
	bs, err := s.deps.Sessions.GetSession(ctx, code.BrowserSessionID)
	if err != nil {
		return nil, notFoundAs(err, errBadCode)
	}
	if !bs.Active(now) {
		return nil, errBadCode
	}
	sid := uuid.New()
	if err := s.deps.OIDC.RedeemAuthCode(ctx, hash, sid, now); err != nil {
		switch {
		case errors.Is(err, permiso.ErrConflict):
			// A concurrent exchange won: this one is the second use.
			cur, gerr := s.deps.OIDC.GetAuthCode(ctx, hash)
			if gerr != nil {
				return nil, errBadCode
			}
			return nil, s.codeReused(ctx, cur, meta)
		case errors.Is(err, permiso.ErrNotFound):
			return nil, errBadCode
		}
		return nil, err
	}
	// The scopes of the code, less the permiso scopes the user or the
	// client lost since.
	available := intersect(code.Scopes, codeFlowScopes(code.Scopes, u, *client))
	return &grant{kind: GrantAuthorizationCode, user: &u, client: client, available: available,
		authTime: now, code: &code, codeSession: sid}, nil
}

// codeReused revokes the session a used code's exchange opened (its
// refresh tokens and access tokens) and answers invalid_grant (RFC 6749
// §4.1.2: "the authorization server SHOULD revoke (when possible) all
// tokens previously issued based on that authorization code").
func (s *Service) codeReused(ctx context.Context, code permiso.AuthCode, meta RequestMeta) error {
	s.log.LogAttrs(ctx, slog.LevelWarn, "authorization code presented again; revoking what it issued",
		slog.String("request_id", meta.RequestID), slog.String("user_id", code.UserID.String()))
	details := map[string]any{"client_row_id": code.ClientID.String()}
	if code.SessionID != nil {
		details["session_id"] = code.SessionID.String()
	}
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionCodeReuse, Result: "failure",
		TargetType: ptr("user"), TargetID: ptr(code.UserID.String()), Details: details})
	if code.SessionID != nil {
		// Even when the presenting client went away, once at a time per
		// session (settle).
		sid, now := *code.SessionID, s.now()
		if err := s.settle(ctx, "code_reuse:"+sid.String(), func(cctx context.Context) error {
			return s.endSession(cctx, sid, "code_reuse", now)
		}); err != nil {
			return err
		}
	}
	return errBadCode
}

// issueCode issues the tokens of a code exchange: a session opened through
// the client (listed in /sessions, ended by logout and revoke-all), an
// access token, a refresh token when offline_access was granted or the
// client registered the refresh_token grant, and an ID token when openid
// was granted (OpenID Connect Core 1.0 §3.1.3.3).
func (s *Service) issueCode(ctx context.Context, g *grant, meta RequestMeta) (TokenResponse, error) {
	now := g.authTime
	u, c, code := g.user, g.client, g.code
	sid := g.codeSession
	withRefresh := containsScope(g.grantedList, ScopeOfflineAccess) || c.AllowsGrant(GrantRefreshToken)
	expires := now.Add(s.cfg.AccessTokenLifetime)
	if withRefresh {
		expires = now.Add(min(s.refreshLifetime(c), s.cfg.RefreshAbsoluteLifetime))
	}
	amr := sessionAMR(code.AMR)
	access, err := s.signUserAccess(ctx, u, sid, g.grantedList, c, amr, now)
	if err != nil {
		return TokenResponse{}, err
	}
	var idToken string
	if containsScope(g.grantedList, ScopeOpenID) {
		if s.deps.IDTokens == nil {
			return TokenResponse{}, errors.New("oauth2: no ID token signer")
		}
		idToken, err = s.deps.IDTokens.SignIDToken(ctx, permiso.IDTokenClaims{
			Subject: u.ID.String(), Audience: []string{c.ClientID}, IssuedAt: now,
			ExpiresAt: now.Add(s.cfg.AccessTokenLifetime), AuthTime: code.AuthTime, Nonce: code.Nonce,
			AMR: amr, ACR: ACR(amr), AuthorizedParty: c.ClientID, AccessToken: access,
			SessionID: code.BrowserSessionID.String(), Claims: UserClaims(*u, g.grantedList),
		})
		if err != nil {
			return TokenResponse{}, err
		}
	}
	sess := permiso.Session{
		ID: sid, UserID: u.ID, ClientID: &c.ID, IPAddress: ipString(meta), UserAgent: optional(meta.UserAgent),
		CreatedAt: now, LastActivity: now, ExpiresAt: expires, AMR: amr,
	}
	var opaque string
	if withRefresh {
		opaque = permiso.NewOpaqueToken()
		_, _, err = s.deps.Sessions.CreateSessionWithToken(ctx, sess, permiso.RefreshToken{
			ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: u.ID, ClientID: &c.ID,
			SessionID: sid, FamilyID: uuid.New(), Scopes: g.grantedList, IssuedAt: now, ExpiresAt: expires,
			ClientIP: optional(ipString(meta)), UserAgent: optional(meta.UserAgent),
		})
	} else {
		_, err = s.deps.Sessions.CreateSession(ctx, sess)
	}
	if err != nil {
		return TokenResponse{}, err
	}
	// A password change, revoke-all or disabling that raced the exchange
	// wins, as for a login (login_race.go).
	if err := s.recheckLogin(ctx, g, sid, meta); err != nil {
		return TokenResponse{}, err
	}
	s.auditUser(ctx, meta, *u, ActionTokenIssue, "success", map[string]any{
		"grant_type": GrantAuthorizationCode, "client_id": c.ClientID, "session_id": sid.String(),
		"scopes": g.grantedList, "refresh_token": withRefresh, "id_token": idToken != ""})
	return TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: seconds(s.cfg.AccessTokenLifetime),
		Scope: scopeString(g.grantedList), RefreshToken: opaque, IDToken: idToken,
	}, nil
}

// oidcCeiling adds to the scopes a refresh may grant the OpenID Connect
// scopes of the refresh token: they are not held through roles, so the
// user's current scopes would drop them.
func oidcCeiling(available, ceiling []string) []string {
	extra := intersect(ceiling, OIDCScopes)
	if len(extra) == 0 {
		return available
	}
	return permiso.SortedUnique(append(append([]string(nil), available...), extra...))
}

// notFoundAs returns as for an ErrNotFound, any other err as it is.
func notFoundAs(err, as error) error {
	if errors.Is(err, permiso.ErrNotFound) {
		return as
	}
	return err
}
