package oauth2

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend"
)

// Token type names of introspection responses (as the original service
// wrote them).
const (
	TokenTypeHintAccess  = "access_token"
	TokenTypeHintRefresh = "refresh_token"
	tokenTypeService     = "service_token"
)

// Introspection is an RFC 7662 §2.2 introspection response. An inactive
// token is exactly {"active": false}: every other member is omitted.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	Sid       string   `json:"sid,omitempty"`
}

// AppendJSON appends the bytes json.Marshal writes for in, without
// reflection: every introspection answers it
// (TestIntrospectionAppendJSONIsMarshal holds the two equal).
func (in Introspection) AppendJSON(b []byte) []byte {
	b = jsonappend.Bool(append(b, `{"active":`...), in.Active)
	b = jsonappend.StringField(b, `,"scope":`, in.Scope, true)
	b = jsonappend.StringField(b, `,"client_id":`, in.ClientID, true)
	b = jsonappend.StringField(b, `,"username":`, in.Username, true)
	b = jsonappend.StringField(b, `,"token_type":`, in.TokenType, true)
	b = jsonappend.IntField(b, `,"exp":`, in.Exp, true)
	b = jsonappend.IntField(b, `,"iat":`, in.Iat, true)
	b = jsonappend.IntField(b, `,"nbf":`, in.Nbf, true)
	b = jsonappend.StringField(b, `,"sub":`, in.Sub, true)
	b = jsonappend.StringsField(b, `,"aud":`, in.Aud, true)
	b = jsonappend.StringField(b, `,"iss":`, in.Iss, true)
	b = jsonappend.StringField(b, `,"jti":`, in.Jti, true)
	b = jsonappend.StringField(b, `,"sid":`, in.Sid, true)
	return append(b, '}')
}

// identity is who a caller is, or whom a token belongs to: a user and/or
// the public client_id of a service client.
type identity struct {
	userID   string
	clientID string
}

func (c Caller) identity() identity {
	var id identity
	if c.Principal != nil {
		if c.Principal.User != nil {
			id.userID = c.Principal.User.ID.String()
		}
		if c.Principal.Client != nil {
			id.clientID = c.Principal.Client.ClientID
		}
	}
	if c.Client != nil {
		id.clientID = c.Client.ClientID
	}
	return id
}

func (c Caller) none() bool { return c.Principal == nil && c.Client == nil }

// admin reports whether the caller may act on any token: a bearer that is
// an admin or holds admin:tokens (docs/oauth.md).
func (c Caller) admin() bool { return c.Principal != nil && c.Principal.Can(ScopeAdminTokens) }

// owns reports whether the caller is the token's owner: the same user, or
// the client the token was issued to (RFC 7009 §2.1).
func (c Caller) owns(owner identity) bool {
	me := c.identity()
	return me.userID != "" && me.userID == owner.userID ||
		me.clientID != "" && me.clientID == owner.clientID
}

// looksLikeJWT tells a compact JWS (three dot-separated parts) from an
// opaque refresh token (base64url, no dots). The token_type_hint is not
// needed: the format decides (RFC 7662 §2.1 lets the server ignore it).
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

var errNoCaller = permiso.Errorf(permiso.EUNAUTHORIZED, "Authentication required")

// Introspect answers RFC 7662 introspection (docs/oauth.md). Allowed callers:
// any service client authenticated by its credentials and any bearer that
// is an admin or holds admin:tokens (any token), or the owner of the token
// (a user asking about their own token, a client about tokens issued to
// it); for anyone else the answer is {"active": false}, so a foreign
// token's existence is not revealed.
//
// An access token is active when Authenticate accepts it (signature,
// expiry, revocation, user or client still active). A refresh token is
// active when it is unused, unrevoked, unexpired, its session is active and
// its user exists and is active. Anything else is {"active": false}. The
// hint is ignored: the token's format tells the two kinds apart.
//
// A caller-less call is EUNAUTHORIZED; store failures (EUNAVAILABLE, for
// example when revocation state cannot be read) are returned as errors
// rather than answered as inactive.
func (s *Service) Introspect(ctx context.Context, caller Caller, token, hint string, limits *permiso.Limits) (Introspection, error) {
	if caller.none() {
		return Introspection{}, errNoCaller
	}
	privileged := caller.Client != nil || caller.admin()
	if token == "" {
		return Introspection{}, nil
	}
	if looksLikeJWT(token) {
		p, err := s.Authenticate(ctx, token, limits)
		return introspectAccess(caller, privileged, p, err)
	}

	if len(token) > MaxTokenLength {
		return Introspection{}, nil
	}
	// The request's limit checks run before the lookup.
	if err := s.checkBatch(ctx, limits, nil); err != nil {
		return Introspection{}, err
	}
	now := s.now()
	t, err := s.deps.Tokens.GetRefreshTokenByHash(ctx, permiso.HashToken(token))
	if err != nil {
		return lookupFailed(err)
	}
	if t.UsedAt != nil || t.RevokedAt != nil || !now.Before(t.ExpiresAt) {
		return Introspection{}, nil
	}
	clientID, err := s.clientIDOf(ctx, t.ClientID)
	if err != nil {
		return Introspection{}, err
	}
	// A refresh token issued through a client lives only as long as that
	// client is active (as its access tokens do, liveClient).
	if clientID != "" {
		if _, err := s.liveClient(ctx, clientID, t.IssuedAt); err != nil {
			if permiso.ErrorCode(err) == permiso.EINVALIDTOKEN {
				return Introspection{}, nil
			}
			return Introspection{}, err
		}
	}
	if !privileged && !caller.owns(identity{userID: t.UserID.String(), clientID: clientID}) {
		return Introspection{}, nil
	}
	sess, err := s.deps.Sessions.GetSession(ctx, t.SessionID)
	if err != nil {
		return lookupFailed(err)
	}
	if !sess.Active(now) {
		return Introspection{}, nil
	}
	u, err := s.deps.Users.GetUser(ctx, t.UserID)
	if err != nil {
		return lookupFailed(err)
	}
	if !u.IsActive || u.TokensRevokedBefore != nil && t.IssuedAt.Before(*u.TokensRevokedBefore) {
		return Introspection{}, nil
	}
	return Introspection{
		// What a refresh would grant now: the original grant narrowed to
		// the scopes the user still holds.
		Active: true, Scope: strings.Join(intersect(t.Scopes, u.ScopeNames()), " "), ClientID: clientID,
		Username: u.Username, TokenType: TokenTypeHintRefresh,
		Exp: t.ExpiresAt.Unix(), Iat: t.IssuedAt.Unix(), Sub: t.UserID.String(),
		Iss: s.cfg.Issuer, Sid: t.SessionID.String(),
	}, nil
}

// lookupFailed answers for a refresh token when a read of it, its session
// or its user failed: a row not found (never there, or deleted since)
// makes the token inactive, any other failure is an error.
func lookupFailed(err error) (Introspection, error) {
	if errors.Is(err, permiso.ErrNotFound) {
		return Introspection{}, nil
	}
	return Introspection{}, err
}

// clientIDOf returns the public client_id of the client with row id, or ""
// for nil (or a client deleted since).
func (s *Service) clientIDOf(ctx context.Context, id *uuid.UUID) (string, error) {
	if id == nil {
		return "", nil
	}
	c, err := s.deps.Clients.GetServiceClient(ctx, *id)
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	return c.ClientID, nil
}

// heldScopes is the token's scope narrowed to what its subject holds now,
// the rule of Principal.HasScope: introspection must not report a scope
// that a resource server asking Authenticate would be refused.
func heldScopes(p Principal) []string {
	switch {
	case p.User != nil:
		return intersect(p.Claims.Scopes, p.User.ScopeNames())
	case p.Client != nil:
		return intersect(p.Claims.Scopes, p.Client.ScopeNames())
	}
	return nil
}

// introspectAccess answers for an access token whose bearer check gave p
// and err: inactive when the check refused it (EINVALIDTOKEN) or the
// caller may not see it, the claims otherwise.
func introspectAccess(caller Caller, privileged bool, p Principal, err error) (Introspection, error) {
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EINVALIDTOKEN {
			return Introspection{}, nil
		}
		return Introspection{}, err
	}
	c := p.Claims
	owner := identity{clientID: c.ClientID}
	if c.Type == permiso.TokenTypeAccess {
		owner.userID = c.Subject
	}
	if !privileged && !caller.owns(owner) {
		return Introspection{}, nil
	}
	out := Introspection{
		Active: true, Scope: strings.Join(heldScopes(p), " "), ClientID: c.ClientID,
		Username: c.Username, TokenType: TokenTypeHintAccess,
		Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Sub: c.Subject, Aud: c.Audience,
		Iss: c.Issuer, Jti: c.ID, Sid: c.SessionID,
	}
	if !c.NotBefore.IsZero() {
		out.Nbf = c.NotBefore.Unix()
	}
	if c.Type == permiso.TokenTypeService {
		out.TokenType = tokenTypeService
	}
	return out, nil
}

// IntrospectAsBearer is Introspect for a caller authenticated by a bearer
// token (RFC 7662 §2.1): the caller's token and the introspected one are
// verified first (no I/O), then their revocation lookups go in one batch
// with the request's limit checks (limits), one Redis round trip for the
// whole request (docs/abuse-resistance.md). callerErr is the caller's authentication
// failure (answered 401 invalid_token); err is what Introspect returns.
func (s *Service) IntrospectAsBearer(ctx context.Context, callerBearer, token, hint string, limits *permiso.Limits) (res Introspection, callerErr, err error) {
	cc, err := s.verify(ctx, callerBearer)
	if err != nil {
		return Introspection{}, err, nil
	}
	var tc permiso.AccessClaims
	targetJWT := looksLikeJWT(token)
	if targetJWT {
		if tc, err = s.verify(ctx, token); err != nil {
			targetJWT = false // answered inactive below, once the caller is known
		}
	}
	var callerRev, targetRev func() (bool, error)
	if err := s.checkBatch(ctx, limits, func(b permiso.CheckBatch) {
		callerRev = queueRevoked(b, cc)
		if targetJWT {
			targetRev = queueRevoked(b, tc)
		}
	}); err != nil {
		return Introspection{}, err, nil
	}
	p, err := s.principal(ctx, cc, callerBearer, callerRev)
	if err != nil {
		return Introspection{}, err, nil
	}
	caller := Caller{Principal: &p}
	switch {
	case targetJWT:
		tp, terr := s.principal(ctx, tc, token, targetRev)
		res, err = introspectAccess(caller, caller.admin(), tp, terr)
		return res, nil, err
	case looksLikeJWT(token) || token == "":
		return Introspection{}, nil, nil
	}
	res, err = s.Introspect(ctx, caller, token, hint, limits)
	return res, nil, err
}
