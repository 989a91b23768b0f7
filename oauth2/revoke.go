package oauth2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Revoke implements RFC 7009 token revocation (docs/oauth.md, "Revocation").
//
//   - Unknown, malformed, expired or already revoked tokens give nil: the
//     endpoint answers 200 (RFC 7009 §2.2, "invalid tokens do not cause an
//     error response").
//   - Only the token's owner (the user, or the client the token was issued
//     to, RFC 7009 §2.1) or a bearer that is an admin or holds admin:tokens
//     may revoke it. For anyone else Revoke also gives nil and does nothing
//     but write an audit event: answering 200 does not reveal whether a
//     foreign token exists or is valid, which an error would.
//   - An administrator revokes a token it does not own only when
//     caller.Delegation lets it act on the token's user (or, for a service
//     token, its client): ending the session of a more privileged user is
//     refused with an EFORBIDDEN error (403), audited with reason
//     "delegation". An administrator may introspect any token anyway, so
//     the refusal reveals nothing it could not learn.
//   - An access token is revoked by its jti until it expires.
//   - A refresh token revokes its whole family and its session, and the
//     session's access tokens through the revocation store (RFC 7009 §2.1
//     "SHOULD also invalidate all access tokens based on the same
//     authorization grant").
//
// The hint is ignored (the format tells the kinds apart, RFC 7009 §2.1
// allows it). Store failures are returned (503 / 500), never swallowed: a
// revocation the caller was told succeeded must have happened.
func (s *Service) Revoke(ctx context.Context, caller Caller, token, hint string) error {
	if caller.none() {
		return errNoCaller
	}
	if token == "" {
		return ErrInvalidRequest.WithDescription("Missing parameter: token")
	}
	meta := metaFrom(ctx)
	actor := callerAudit(caller)
	if looksLikeJWT(token) {
		if len(token) > maxBearerLength {
			return nil
		}
		c, err := s.deps.Signer.Verify(ctx, token)
		if err != nil {
			if permiso.ErrorCode(err) == permiso.EINVALIDTOKEN {
				return nil
			}
			return err
		}
		owner := identity{clientID: c.ClientID}
		var subject uuid.UUID
		subjectClient := c.Subject
		if c.Type == permiso.TokenTypeAccess {
			owner.userID = c.Subject
			subject, _ = uuid.Parse(c.Subject)
			subjectClient = ""
		}
		if !caller.owns(owner) {
			if !caller.admin() {
				s.audit(ctx, meta, actor.event(ActionTokenRevoke, "failure", "token", c.ID, map[string]any{"reason": "not_owner"}))
				return nil
			}
			if err := s.mayRevoke(ctx, caller, subject, subjectClient); err != nil {
				if permiso.ErrorCode(err) == permiso.EFORBIDDEN {
					s.audit(ctx, meta, actor.event(ActionTokenRevoke, "failure", "token", c.ID, map[string]any{"reason": "delegation", "sub": c.Subject}))
				}
				return err
			}
		}
		if err := s.deps.Revocations.RevokeToken(ctx, c.ID, c.ExpiresAt.Add(revocationMargin)); err != nil {
			return err
		}
		s.audit(ctx, meta, actor.event(ActionTokenRevoke, "success", "token", c.ID, map[string]any{"token_type": TokenTypeHintAccess, "sub": c.Subject}))
		return nil
	}

	if len(token) > MaxTokenLength {
		return nil
	}
	t, err := s.deps.Tokens.GetRefreshTokenByHash(ctx, permiso.HashToken(token))
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return nil
		}
		return err
	}
	clientID, err := s.clientIDOf(ctx, t.ClientID)
	if err != nil {
		return err
	}
	if !caller.owns(identity{userID: t.UserID.String(), clientID: clientID}) {
		if !caller.admin() {
			s.audit(ctx, meta, actor.event(ActionTokenRevoke, "failure", "session", t.SessionID.String(), map[string]any{"reason": "not_owner"}))
			return nil
		}
		if err := s.mayRevoke(ctx, caller, t.UserID, ""); err != nil {
			if permiso.ErrorCode(err) == permiso.EFORBIDDEN {
				s.audit(ctx, meta, actor.event(ActionTokenRevoke, "failure", "session", t.SessionID.String(),
					map[string]any{"reason": "delegation", "user_id": t.UserID.String()}))
			}
			return err
		}
	}
	// endSession revokes the session and its refresh tokens (the family)
	// in one transaction.
	now := s.now()
	if err := s.endSession(ctx, t.SessionID, "revoked", now); err != nil {
		return err
	}
	s.audit(ctx, meta, actor.event(ActionTokenRevoke, "success", "session", t.SessionID.String(),
		map[string]any{"token_type": TokenTypeHintRefresh, "family_id": t.FamilyID.String(), "user_id": t.UserID.String()}))
	return nil
}

// errNoDelegation refuses an administrator's revocation of a token it does
// not own when the caller carries no delegation rule to decide it.
var errNoDelegation = permiso.Errorf(permiso.EFORBIDDEN, "Not allowed to revoke this token")

// mayRevoke applies caller.Delegation to an administrator revoking a token
// it does not own: the token's user (userID), or for a service token its
// client (clientID), must be one the caller may act on. A subject that no
// longer exists protects nothing: its tokens fail every check already.
func (s *Service) mayRevoke(ctx context.Context, caller Caller, userID uuid.UUID, clientID string) error {
	if caller.Delegation == nil {
		return errNoDelegation
	}
	if clientID != "" {
		return mayManage(ctx, s.deps.Clients.GetServiceClientByClientID, clientID, caller.Delegation.MayManageClient)
	}
	if userID == uuid.Nil {
		return nil
	}
	return mayManage(ctx, s.deps.Users.GetUser, userID, caller.Delegation.MayManageUser)
}

// mayManage reads the subject key (fresh, not from a cache) and applies
// may to it; a subject that no longer exists is nil.
func mayManage[K, T any](ctx context.Context, get func(context.Context, K) (T, error), key K, may func(T) error) error {
	v, err := get(permiso.WithFreshRead(ctx), key)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return may(v)
}

// endSession revokes the session in the store (with its refresh tokens)
// and its access tokens in the revocation store. An unknown session is
// only revoked in the revocation store.
func (s *Service) endSession(ctx context.Context, sid uuid.UUID, reason string, now time.Time) error {
	if _, err := s.deps.Sessions.RevokeSession(ctx, sid, reason, now); err != nil && !errors.Is(err, permiso.ErrNotFound) {
		return err
	}
	return s.deps.Revocations.RevokeSession(ctx, sid.String(), s.sessionRevocationExpiry(now))
}

// Logout ends the principal's current session: the session and its
// refresh tokens in the store, its access tokens (sid) and the presented
// token (jti) in the revocation store. With all, it ends every session of
// the user (RevokeAllForUser). It returns the number of sessions that were
// active and are now ended. Only user principals can log out (EFORBIDDEN
// otherwise).
func (s *Service) Logout(ctx context.Context, p Principal, all bool) (sessionsTerminated int, err error) {
	if !p.IsUser() {
		return 0, permiso.Errorf(permiso.EFORBIDDEN, "Only user tokens can log out")
	}
	now := s.now()
	if err := s.deps.Revocations.RevokeToken(ctx, p.Claims.ID, p.Claims.ExpiresAt.Add(revocationMargin)); err != nil {
		return 0, err
	}
	if all {
		return s.RevokeAllForUser(ctx, p.User.ID, "logout_all")
	}
	n := 0
	if sid, perr := uuid.Parse(p.Claims.SessionID); perr == nil {
		sess, err := s.deps.Sessions.GetSession(ctx, sid)
		switch {
		case err == nil:
			if sess.UserID != p.User.ID {
				// A forged sid cannot happen with a verified token; refuse
				// rather than end another user's session.
				return 0, permiso.Errorf(permiso.EFORBIDDEN, "Session does not belong to the user")
			}
			if sess.Active(now) {
				n = 1
			}
		case errors.Is(err, permiso.ErrNotFound):
		default:
			return 0, err
		}
		if err := s.endSession(ctx, sid, "logout", now); err != nil {
			return 0, err
		}
	}
	s.auditUser(ctx, metaFrom(ctx), *p.User, ActionLogout, "success", map[string]any{"session_id": p.Claims.SessionID, "sessions_terminated": n})
	return n, nil
}

// RevokeAllForUser ends every session of the user and invalidates every
// token issued to them so far (password change, disabling, logout-all,
// `permiso sessions revoke-all`). The cut-off is now rounded up to the
// millisecond (permiso.RevocationCutoff): every token issued before now is
// refused, even in the same second, and every token issued from the
// cut-off on is accepted.
//   - TokensRevokedBefore = cut-off on the user (checked by Authenticate
//     and by the refresh grant);
//   - every active session and its refresh tokens revoked in the store;
//   - each of those sessions, and the subject's cut-off, in the revocation
//     store, so that every instance rejects the old access tokens at once.
//
// It returns the number of sessions ended. An unknown user is ENOTFOUND.
func (s *Service) RevokeAllForUser(ctx context.Context, userID uuid.UUID, reason string) (int, error) {
	now := s.now()
	cutoff := permiso.RevocationCutoff(now).UTC()
	if _, err := s.deps.Users.UpdateUser(ctx, userID, func(u *permiso.User) error {
		if u.TokensRevokedBefore == nil || u.TokensRevokedBefore.Before(cutoff) {
			t := cutoff
			u.TokensRevokedBefore = &t
		}
		return nil
	}); err != nil {
		return 0, err
	}
	n, err := s.endSessions(ctx, userID, reason, now)
	if err != nil {
		return 0, err
	}
	exp := s.sessionRevocationExpiry(now)
	// The subject cutoff also catches access tokens of sessions that were
	// no longer active (expired), without a database read on any instance.
	if err := s.deps.Revocations.RevokeSubjectBefore(ctx, userID.String(), cutoff, exp); err != nil {
		return 0, err
	}
	s.audit(ctx, metaFrom(ctx), permiso.AuditEvent{ActorType: "system", Action: ActionRevokeAll, Result: "success",
		TargetType: ptr("user"), TargetID: ptr(userID.String()),
		Details: map[string]any{"reason": reason, "sessions_terminated": n}})
	s.passCutoff(cutoff)
	return n, nil
}

// RevokeAllForClient invalidates everything issued through the service
// client with row id id so far: its service tokens, the access tokens of
// users who logged in through it, their refresh tokens and their sessions.
// Disabling a client calls it, and so does the global RevokeAll. The
// cut-off is now rounded up to the millisecond, as in RevokeAllForUser:
//   - TokensRevokedBefore = cut-off on the client, moved forward only
//     (checked by Authenticate for service tokens and for user tokens
//     through the client, by the refresh grant and by introspection), so
//     enabling the client again revives nothing;
//   - every active session opened through the client, and its refresh
//     tokens, revoked in the store (as deleting the client removes them);
//   - each of those sessions, and the client's cut-off (subject
//     permiso.ClientRevocationSubject), in the revocation store, so that
//     every instance rejects the old access tokens at once.
//
// It returns the number of sessions ended. An unknown client is
// ENOTFOUND.
func (s *Service) RevokeAllForClient(ctx context.Context, id uuid.UUID, reason string) (int, error) {
	now := s.now()
	cutoff := permiso.RevocationCutoff(now)
	cl, err := s.deps.Clients.UpdateServiceClient(ctx, id, func(c *permiso.ServiceClient) error {
		c.RevokeTokensBefore(cutoff)
		c.UpdatedAt = now.UTC()
		return nil
	})
	if err != nil {
		return 0, err
	}
	sessions, err := s.deps.Sessions.RevokeClientSessions(ctx, id, reason, now)
	if err != nil {
		return 0, err
	}
	if err := s.revokeSessions(ctx, sessions, now); err != nil {
		return 0, err
	}
	if err := s.deps.Revocations.RevokeSubjectBefore(ctx, permiso.ClientRevocationSubject(cl.ClientID),
		*cl.TokensRevokedBefore, s.anyTokenRevocationExpiry(now)); err != nil {
		return 0, err
	}
	s.audit(ctx, metaFrom(ctx), permiso.AuditEvent{ActorType: "system", Action: ActionRevokeAll, Result: "success",
		TargetType: ptr("client"), TargetID: ptr(cl.ClientID),
		Details: map[string]any{"reason": reason, "sessions_terminated": len(sessions)}})
	s.passCutoff(*cl.TokensRevokedBefore)
	return len(sessions), nil
}

// passCutoff returns once the clock has reached cutoff. A cut-off is the
// moment of the revocation rounded up to the next millisecond
// (permiso.RevocationCutoff), so for less than a millisecond after a
// revocation a new token would be issued before its cut-off and refused
// at once: a password change followed at once by a login with the new
// password would fail. Waiting out that fraction before the revocation
// returns means that whatever starts after it returns (on this clock) is
// issued at or after the cut-off.
func (s *Service) passCutoff(cutoff time.Time) {
	if d := cutoff.Sub(s.now()); d > 0 {
		time.Sleep(min(d, time.Millisecond))
	}
}

// RevokeAllResult is what RevokeAll did.
type RevokeAllResult struct {
	// Cutoff is the global cut-off: every access token issued before it is
	// refused.
	Cutoff time.Time
	// Users and Clients are how many users and service clients had their
	// own cut-off set; Sessions how many active sessions were ended.
	Users, Clients, Sessions int
}

// RevokeAll invalidates every token issued so far, of every user and every
// service client (incident response: `permiso sessions revoke-all`
// without --user):
//
//  1. one global cut-off in the revocation store (RevokeAllBefore), which
//     every bearer check reads in the round trip it already makes: from
//     that moment every instance sharing the store (Redis) refuses every
//     access token issued before it, user or service, whatever its subject;
//  2. then every user (RevokeAllForUser) and every service client
//     (RevokeAllForClient): their cut-offs in the database end refresh
//     tokens and sessions, and reach instances that do not share the
//     revocation store (without Redis each process keeps its own, so the
//     rows are what other processes see, once their cache has expired).
//
// A failure stops the walk and is returned with what was done so far; the
// global cut-off is already in force, and running the command again
// finishes the rest (every step moves cut-offs forward only).
func (s *Service) RevokeAll(ctx context.Context, reason string) (RevokeAllResult, error) {
	now := s.now()
	res := RevokeAllResult{Cutoff: permiso.RevocationCutoff(now).UTC()}
	if err := s.deps.Revocations.RevokeAllBefore(ctx, res.Cutoff, s.anyTokenRevocationExpiry(now)); err != nil {
		return res, err
	}
	// revoked counts one subject's revocation; one deleted meanwhile has
	// nothing left to revoke.
	revoked := func(count *int, n int, err error, what string) error {
		switch {
		case errors.Is(err, permiso.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		*count++
		res.Sessions += n
		return nil
	}
	err := forEachPage(func(offset, limit int) ([]permiso.User, error) {
		users, _, err := s.deps.Users.ListUsers(ctx, permiso.UserFilter{Offset: offset, Limit: limit})
		return users, err
	}, func(u permiso.User) error {
		n, err := s.RevokeAllForUser(ctx, u.ID, reason)
		return revoked(&res.Users, n, err, "user "+u.ID.String())
	})
	if err != nil {
		return res, err
	}
	err = forEachPage(func(offset, limit int) ([]permiso.ServiceClient, error) {
		clients, _, err := s.deps.Clients.ListServiceClients(ctx, permiso.ClientFilter{Offset: offset, Limit: limit})
		return clients, err
	}, func(c permiso.ServiceClient) error {
		n, err := s.RevokeAllForClient(ctx, c.ID, reason)
		return revoked(&res.Clients, n, err, "service client "+c.ClientID)
	})
	if err != nil {
		return res, err
	}
	s.audit(ctx, metaFrom(ctx), permiso.AuditEvent{ActorType: "system", Action: ActionRevokeAll, Result: "success",
		TargetType: ptr("all"), Details: map[string]any{"reason": reason, "cutoff": res.Cutoff.Format(time.RFC3339Nano),
			"users": res.Users, "clients": res.Clients, "sessions_terminated": res.Sessions}})
	return res, nil
}

// RevokeOtherSessions ends every active session of the user except keep
// (a self-service password change keeps the session it was made from):
// each session and its refresh tokens in the store, and its access tokens
// (sid) in the revocation store, so every instance rejects them at once.
// It returns the number of sessions ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keep uuid.UUID, reason string) (int, error) {
	now := s.now()
	sessions, err := s.deps.Sessions.RevokeUserSessions(ctx, userID, &keep, reason, now)
	if err != nil {
		return 0, err
	}
	exp := s.sessionRevocationExpiry(now)
	for _, x := range sessions {
		if err := s.deps.Revocations.RevokeSession(ctx, x.ID.String(), exp); err != nil {
			return 0, err
		}
	}
	s.audit(ctx, metaFrom(ctx), permiso.AuditEvent{ActorType: "system", Action: ActionRevokeOthers, Result: "success",
		TargetType: ptr("user"), TargetID: ptr(userID.String()),
		Details: map[string]any{"reason": reason, "kept_session_id": keep.String(), "sessions_terminated": len(sessions)}})
	return len(sessions), nil
}

// callerAudit describes a caller for audit events.
type callerActor struct {
	typ string
	id  string
}

func callerAudit(c Caller) callerActor {
	id := c.identity()
	switch {
	case id.userID != "":
		return callerActor{"user", id.userID}
	case id.clientID != "":
		return callerActor{"client", id.clientID}
	}
	return callerActor{"anonymous", ""}
}

func (a callerActor) event(action, result, targetType, targetID string, details map[string]any) permiso.AuditEvent {
	return permiso.AuditEvent{ActorType: a.typ, ActorID: optional(a.id), Action: action, Result: result,
		TargetType: ptr(targetType), TargetID: optional(targetID), Details: details}
}

// forEachPage calls fn for every item list returns, a page of 500 at a
// time, until a page is short or an error stops it.
func forEachPage[T any](list func(offset, limit int) ([]T, error), fn func(T) error) error {
	const page = 500
	for offset := 0; ; offset += page {
		items, err := list(offset, page)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if len(items) < page {
			return nil
		}
	}
}
