package identity

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Session administration (docs/api.md, "Sessions"). A user works on their
// own sessions; an administrator for admin:sessions on anyone's, within
// the delegation rule: it ends or renews only the sessions of a user it
// may act on (Delegation.MayManageUser; docs/security-model.md). Ending a
// session revokes its refresh-token family and, through the shared
// revocation store, its access tokens on every instance at once
// (Sessions, the OAuth core). Every change is audited here.

// Audit actions of the session administration.
const (
	ActionSessionRevoke    = "session.revoke"
	ActionSessionRevokeAll = "session.revoke_user"
	ActionSessionRenew     = "session.renew"
	ActionSessionCleanup   = "session.cleanup"
)

var errSessionNotFound = permiso.Errorf(permiso.ENOTFOUND, "Session not found")

func sessionTarget(x permiso.Session) target { return target{"session", x.ID.String()} }

// session returns the session id for actor, who is about to change it
// (action names the audit event): 404 when unknown, 403 when it is
// someone else's and actor is not an administrator, or when the
// delegation rule does not let actor act on the session's user (audited
// as a failure of action).
func (s *Service) session(ctx context.Context, actor Actor, id uuid.UUID, action string) (permiso.Session, error) {
	x, err := s.deps.Store.GetSession(ctx, id)
	if err != nil {
		return permiso.Session{}, notFound(err, errSessionNotFound)
	}
	if actor.Is(x.UserID) {
		return x, nil
	}
	if !actor.Admin {
		return permiso.Session{}, permiso.Errorf(permiso.EFORBIDDEN, "Access denied to this session")
	}
	err = s.mayActOnSessionsOf(ctx, actor, x.UserID)
	if errors.Is(err, ErrDelegation) {
		s.audited(ctx, actor, action, sessionTarget(x), err, map[string]any{"user_id": x.UserID.String()})
	}
	return x, err
}

// mayActOnSessionsOf applies the delegation rule to an administrator
// ending or renewing sessions of the user id (not the actor): only a
// superuser ends a superuser's sessions, and a delegated administrator
// only those of a user who holds nothing it lacks.
func (s *Service) mayActOnSessionsOf(ctx context.Context, actor Actor, id uuid.UUID) error {
	u, err := s.getUser(ctx, id)
	if err != nil {
		return err
	}
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return err
	}
	return d.MayManageUser(u)
}

// EndSession ends the session id for actor (DELETE /sessions/{id}): the
// session, its refresh tokens and its access tokens end at once. The
// outcome is audited (session.revoke, with the session's user). Ending a
// session that has already ended succeeds again (its tokens are revoked
// again, which changes nothing) without a second audit event: the request
// is idempotent (docs/api.md, "Sessions").
func (s *Service) EndSession(ctx context.Context, actor Actor, id uuid.UUID) (permiso.Session, error) {
	x, err := s.session(ctx, actor, id, ActionSessionRevoke)
	if err != nil {
		return permiso.Session{}, err
	}
	if err := s.deps.Sessions.EndSession(withRequest(ctx, actor), x.ID, "session_deleted"); err != nil {
		return permiso.Session{}, err
	}
	if x.RevokedAt == nil {
		s.record(ctx, actor, ActionSessionRevoke, "success", sessionTarget(x), map[string]any{"user_id": x.UserID.String()})
	}
	return x, nil
}

// RenewSession starts the idle timeout of the session id again for actor
// (POST /sessions/{id}/renew; Sessions.RenewSession). A revoked or
// expired session is a 422. The outcome is audited (session.renew, with
// the session's user and its new expiry).
func (s *Service) RenewSession(ctx context.Context, actor Actor, id uuid.UUID) (permiso.Session, error) {
	x, err := s.session(ctx, actor, id, ActionSessionRenew)
	if err != nil {
		return permiso.Session{}, err
	}
	renewed, err := s.deps.Sessions.RenewSession(withRequest(ctx, actor), x.ID)
	if err != nil {
		return permiso.Session{}, err
	}
	s.record(ctx, actor, ActionSessionRenew, "success", sessionTarget(x),
		map[string]any{"user_id": x.UserID.String(), "expires_at": renewed.ExpiresAt.UTC().Format(time.RFC3339Nano)})
	return renewed, nil
}

// EndUserSessions ends every active session of the user id for actor
// (DELETE /sessions, DELETE /sessions?user_id=), the current one
// included, and returns how many ended. On another user's sessions the
// delegation rule applies (a refusal is audited). The outcome is audited
// (session.revoke_user, with the number ended).
func (s *Service) EndUserSessions(ctx context.Context, actor Actor, id uuid.UUID) (int, error) {
	if !actor.Is(id) {
		if err := s.mayActOnSessionsOf(ctx, actor, id); err != nil {
			if errors.Is(err, ErrDelegation) {
				s.audited(ctx, actor, ActionSessionRevokeAll, userTarget(id), err, nil)
			}
			return 0, err
		}
	}
	n, err := s.deps.Sessions.EndUserSessions(withRequest(ctx, actor), id, "sessions_deleted")
	if err != nil {
		return 0, err
	}
	s.record(ctx, actor, ActionSessionRevokeAll, "success", userTarget(id), map[string]any{"sessions_terminated": n})
	return n, nil
}

// CleanupSessions deletes the sessions that have expired, with their
// refresh tokens (POST /sessions/cleanup), and returns how many. It is
// audited (session.cleanup, with the number).
func (s *Service) CleanupSessions(ctx context.Context, actor Actor) (int, error) {
	if !actor.Admin {
		return 0, errForbidden
	}
	n, err := s.deps.Store.DeleteExpiredSessions(ctx, s.now())
	if err != nil {
		return 0, err
	}
	s.record(ctx, actor, ActionSessionCleanup, "success", target{}, map[string]any{"sessions_cleaned": n})
	return n, nil
}
