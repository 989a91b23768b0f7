package oauth2

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// UsageRecorder counts the use of a service client off the request path
// (usage.Counter batches the counts into ClientStore.AddClientUsage), so
// that a token request never writes to the database for last_used and
// total_requests (docs/architecture.md, "Performance by design").
type UsageRecorder interface {
	// ClientUsed counts one successful authentication of the client with
	// this row id at at. It must not block.
	ClientUsed(id uuid.UUID, at time.Time)
}

// EndSession ends one session at once, as logout and revocation do: the
// session and its refresh-token family are revoked in the store, and the
// session's access tokens (their sid) in the revocation store, which every
// instance consults on every bearer check. An unknown session is only
// revoked in the revocation store. reason is kept on the revoked refresh
// tokens.
func (s *Service) EndSession(ctx context.Context, sid uuid.UUID, reason string) error {
	return s.endSession(ctx, sid, reason, s.now())
}

// RenewSession extends an active session's idle timeout as a token
// refresh would: last_activity = now and expires_at = now + the refresh
// token lifetime (never earlier than it was). A revoked or expired session
// cannot be renewed (EINVALID); an unknown one is ENOTFOUND.
func (s *Service) RenewSession(ctx context.Context, sid uuid.UUID) (permiso.Session, error) {
	now := s.now()
	return s.deps.Sessions.UpdateSession(ctx, sid, func(x *permiso.Session) error {
		if !x.Active(now) {
			return permiso.Errorf(permiso.EINVALID, "Session is no longer active and cannot be renewed")
		}
		x.LastActivity = now.UTC()
		if exp := now.Add(s.refreshLifetime(nil)).UTC(); exp.After(x.ExpiresAt) {
			x.ExpiresAt = exp
		}
		return nil
	})
}

// RefreshTokenLifetime is the configured refresh-token lifetime, which is
// also a session's idle timeout.
func (s *Service) RefreshTokenLifetime() time.Duration { return s.cfg.RefreshTokenLifetime }

// ServiceTokenLifetime is the lifetime of client-credentials tokens of a
// client without its own (SERVICE_TOKEN_EXPIRE_MINUTES).
func (s *Service) ServiceTokenLifetime() time.Duration { return s.cfg.ServiceTokenLifetime }

// EndUserSessions ends every active session of the user at once (each
// session and its refresh tokens in the store, their access tokens in the
// revocation store) and returns how many were ended. Unlike
// RevokeAllForUser it leaves the user's later logins and any token without
// a session alone.
func (s *Service) EndUserSessions(ctx context.Context, userID uuid.UUID, reason string) (int, error) {
	return s.endSessions(ctx, userID, reason, s.now())
}

// endSessions revokes the user's active sessions (and their refresh
// tokens) in the store at now, then each session in the revocation store,
// and returns how many were ended.
func (s *Service) endSessions(ctx context.Context, userID uuid.UUID, reason string, now time.Time) (int, error) {
	sessions, err := s.deps.Sessions.RevokeUserSessions(ctx, userID, nil, reason, now)
	if err != nil {
		return 0, err
	}
	return len(sessions), s.revokeSessions(ctx, sessions, now)
}

// revokeSessions puts sessions, ended in the store at now, into the
// revocation store, so that every instance refuses their access tokens.
func (s *Service) revokeSessions(ctx context.Context, sessions []permiso.Session, now time.Time) error {
	exp := s.sessionRevocationExpiry(now)
	for _, x := range sessions {
		if err := s.deps.Revocations.RevokeSession(ctx, x.ID.String(), exp); err != nil {
			return err
		}
	}
	return nil
}

// SessionRevocations returns what the revocation store must hold about
// ended sessions: every session revoked within the last access-token
// lifetime (plus the verifier's leeway), with the time until which its
// access tokens must be refused. The store's revocations of sessions are
// rebuilt from it when Redis comes back without its data
// (docs/deployment.md, "Outages").
func (s *Service) SessionRevocations(ctx context.Context) (map[string]time.Time, error) {
	window := s.cfg.AccessTokenLifetime + revocationMargin
	sessions, err := s.deps.Sessions.ListSessionsRevokedSince(ctx, s.now().Add(-window))
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(sessions))
	for _, x := range sessions {
		if x.RevokedAt != nil {
			out[x.ID.String()] = x.RevokedAt.Add(window)
		}
	}
	return out, nil
}
