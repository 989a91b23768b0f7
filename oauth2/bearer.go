package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// ScopeAdminTokens lets a bearer introspect and revoke any token
// (docs/oauth.md).
const ScopeAdminTokens = "admin:tokens"

// Principal is the authenticated subject of a bearer access token: a user
// (type "access") or a service client (type "service").
type Principal struct {
	Claims permiso.AccessClaims
	// User is set for user tokens, Client for service tokens; exactly one
	// of them is non-nil.
	User   *permiso.User
	Client *permiso.ServiceClient
	// Token is the bearer token itself.
	Token string
	// MFAEnrollment marks a user authenticated by the mfa_token of an
	// mfa_enrollment_required answer (AuthenticateMFAEnrollment), which
	// only the enrollment routes admit; Claims are then empty.
	MFAEnrollment bool
}

// HasScope reports whether the principal holds the scope now: the token
// was granted it (its scope claim, RFC 9068 §2.2.3) AND the user's current
// roles, or the client's current scopes, still include it. A scope taken
// away from a role or a client therefore stops working at once, without
// waiting for the token to expire; a token never carries more than it was
// granted.
func (p Principal) HasScope(name string) bool {
	if !slices.Contains(p.Claims.Scopes, name) {
		return false
	}
	switch {
	case p.User != nil:
		return slices.Contains(p.User.ScopeNames(), name)
	case p.Client != nil:
		return slices.Contains(p.Client.ScopeNames(), name)
	}
	return false
}

// IsUser reports whether the principal is a user.
func (p Principal) IsUser() bool { return p.User != nil }

// IsClient reports whether the principal is a service client.
func (p Principal) IsClient() bool { return p.Client != nil }

// IsAdmin reports whether the principal is an administrator by the one
// definition of docs/security-model.md: a user who is a superuser or holds the role
// "admin" (checked on the current user record, not the token's claims).
// Routes that also admit a specific admin:* scope use Can.
func (p Principal) IsAdmin() bool {
	return p.User != nil && !p.MFAEnrollment && (p.User.IsSuperuser || p.User.HasRole(permiso.RoleAdmin))
}

// Can reports whether the principal is an admin or holds scope: the
// docs/security-model.md rule "is_superuser, or role admin, or the specific admin:*
// scope".
func (p Principal) Can(scope string) bool { return p.IsAdmin() || p.HasScope(scope) }

// Caller is whoever calls introspection or revocation: a bearer principal,
// or a service client authenticated by its credentials (RFC 7662 §2.1,
// RFC 7009 §2.1).
type Caller struct {
	Principal *Principal
	Client    *permiso.ServiceClient
	// Delegation is the delegation rule applied to a bearer that is an
	// administrator for admin:tokens (docs/security-model.md): it revokes
	// a token it does not own only when the rule lets it act on the
	// token's user or client. Without it, such a revocation is refused.
	Delegation Delegation
}

// Delegation decides whether an administrator may act on a user or a
// service client; identity.Delegation implements it.
type Delegation interface {
	// MayManageUser returns nil, or the EFORBIDDEN refusal.
	MayManageUser(u permiso.User) error
	// MayManageClient returns nil, or the EFORBIDDEN refusal.
	MayManageClient(c permiso.ServiceClient) error
}

// AuthenticateClient authenticates a service client by its credentials,
// as the token endpoint does (for the introspection and revocation
// endpoints, RFC 7662 §2.1 and RFC 7009 §2.1), and writes it to *c, which
// it keeps nowhere else: a caller may keep the client on its stack.
// Failures are the same invalid_client *Error as at the token endpoint;
// *c is then meaningless.
//
// The outcome (a client_auth.failure audit event, or the client's usage
// count) is recorded by calling record, which the caller does once the
// request's rate limits have admitted the request; record is never nil.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string, method ClientAuthMethod, meta RequestMeta, limits *permiso.Limits, c *permiso.ServiceClient) (record func(), err error) {
	record, err = s.authenticateClientInto(ctx, TokenRequest{ClientID: clientID, ClientSecret: secret, ClientAuth: method}, meta, limits, c)
	if err != nil {
		return record, s.oauthError(ctx, err, meta)
	}
	return record, nil
}

// Authenticate is the one bearer-token check (docs/security-model.md,
// RFC 6750). It accepts only access tokens (refresh tokens are opaque and
// can never pass the signature check):
//
//  1. the signer verifies signature, pinned algorithm, own kid, typ, exp,
//     iat, jti, iss and aud;
//  2. the revocation store is asked, in one batch with the request's
//     limit checks (limits), about the jti, the session
//     (sid), the subject's "revoke all" cutoff (the user id, or
//     permiso.ClientRevocationSubject of the client for service tokens)
//     and the global cutoff of `permiso sessions revoke-all`; a stopping
//     limit check ends the call with its error (checkBatch); when the
//     revocation lookup fails the check fails with EUNAVAILABLE unless
//     Config.RevocationFailOpen;
//  3. a user token needs an existing, active user, and was issued no
//     earlier than the user's TokensRevokedBefore; when it was issued
//     through a service client (client_id claim), that client must still
//     exist, be active and not have revoked it (liveClient); a service
//     token needs the same of its client.
//
// Issue times are compared to the millisecond (permiso.TokenIssuedAt, the
// claims' IssuedAt): a token issued before a cut-off is refused even in
// the cut-off's own second, and one issued after it is accepted.
//
// Errors are permiso EINVALIDTOKEN errors with a caller-safe message, or
// EUNAVAILABLE / internal errors from the stores.
func (s *Service) Authenticate(ctx context.Context, bearer string, limits *permiso.Limits) (Principal, error) {
	c, err := s.verify(ctx, bearer)
	if err != nil {
		return Principal{}, err
	}
	// The revocation lookups travel with the request's limit checks: one
	// round trip for all of them (docs/abuse-resistance.md).
	var lookup func() (bool, error)
	if err := s.checkBatch(ctx, limits, func(b permiso.CheckBatch) {
		lookup = queueRevoked(b, c)
	}); err != nil {
		return Principal{}, err
	}
	return s.principal(ctx, c, bearer, lookup)
}

// verify is step 1 of Authenticate: the signer's checks, no I/O.
func (s *Service) verify(ctx context.Context, bearer string) (permiso.AccessClaims, error) {
	if bearer == "" || len(bearer) > maxBearerLength {
		return permiso.AccessClaims{}, permiso.Errorf(permiso.EINVALIDTOKEN, "Invalid token")
	}
	c, err := s.deps.Signer.Verify(ctx, bearer)
	if err != nil {
		var pe *permiso.Error
		if errors.As(err, &pe) {
			return permiso.AccessClaims{}, err
		}
		return permiso.AccessClaims{}, permiso.Wrap(permiso.EINVALIDTOKEN, "Invalid token", err)
	}
	return c, nil
}

// queueRevoked queues the revocation lookups of c in b. The subject of a
// service token is its client's revocation subject, so a client_id can
// never be taken for a user id.
func queueRevoked(b permiso.CheckBatch, c permiso.AccessClaims) func() (bool, error) {
	subject := c.Subject
	if c.Type == permiso.TokenTypeService {
		subject = permiso.ClientRevocationSubject(c.Subject)
	}
	return b.IsRevoked(c.ID, c.SessionID, subject, c.IssuedAt)
}

// principal is steps 2 and 3 of Authenticate for verified claims c, with
// the answer of their revocation lookup (sent in a batch by the caller).
func (s *Service) principal(ctx context.Context, c permiso.AccessClaims, bearer string, lookup func() (bool, error)) (Principal, error) {
	revoked, err := lookup()
	if err != nil {
		if !s.cfg.RevocationFailOpen {
			return Principal{}, permiso.Wrap(permiso.EUNAVAILABLE, "Token revocation status is unavailable", err)
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "revocation check failed; continuing (REVOCATION_FAIL_OPEN)",
			slog.String("jti", c.ID), slog.String("error", err.Error()))
	} else if revoked {
		return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "Token has been revoked")
	}
	p := Principal{Claims: c, Token: bearer}
	switch c.Type {
	case permiso.TokenTypeAccess:
		id, err := uuid.Parse(c.Subject)
		if err != nil {
			return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "Invalid token")
		}
		u, err := s.deps.Users.GetUser(ctx, id)
		if err != nil {
			if errors.Is(err, permiso.ErrNotFound) {
				return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "User not found")
			}
			return Principal{}, err
		}
		if !u.IsActive {
			return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "User account is disabled")
		}
		if u.TokensRevokedBefore != nil && c.IssuedAt.Before(*u.TokensRevokedBefore) {
			return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "Token has been revoked")
		}
		// A user token obtained through a service client lives only as
		// long as that client: deleting or disabling the client ends its
		// users' access tokens at once, as it ends their sessions, and
		// enabling it again does not revive them (the client's cut-off).
		if c.ClientID != "" {
			if _, err := s.liveClient(ctx, c.ClientID, c.IssuedAt); err != nil {
				return Principal{}, err
			}
		}
		p.User = &u
	case permiso.TokenTypeService:
		cl, err := s.liveClient(ctx, c.Subject, c.IssuedAt)
		if err != nil {
			return Principal{}, err
		}
		p.Client = &cl
	default:
		return Principal{}, permiso.Errorf(permiso.EINVALIDTOKEN, "Invalid token")
	}
	return p, nil
}

// liveClient returns the client a token issued at issuedAt names (its
// subject, or the client a user token or refresh token was obtained
// through): it must exist, be active, and not have revoked the token
// (permiso.ServiceClient.IssuedTokenDead): not created again under the
// same client_id after the token was issued (a client deleted and created
// again does not bring the old client's tokens back), and not issued
// before the client's TokensRevokedBefore (set when the client is
// disabled, so enabling it again revives nothing).
func (s *Service) liveClient(ctx context.Context, clientID string, issuedAt time.Time) (permiso.ServiceClient, error) {
	cl, err := s.deps.Clients.GetServiceClientByClientID(ctx, clientID)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return cl, permiso.Errorf(permiso.EINVALIDTOKEN, "Client not found")
	case err != nil:
		return cl, err
	case !cl.IsActive:
		return cl, permiso.Errorf(permiso.EINVALIDTOKEN, "Client is disabled")
	case cl.IssuedTokenDead(issuedAt):
		return cl, permiso.Errorf(permiso.EINVALIDTOKEN, "Token has been revoked")
	}
	return cl, nil
}

// maxBearerLength bounds bearer tokens before any parsing.
const maxBearerLength = 16 << 10
