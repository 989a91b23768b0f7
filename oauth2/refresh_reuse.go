package oauth2

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// rejectPresented answers a refresh token that cannot be rotated (RFC 9700
// §4.14.2), after the client-binding checks:
//   - its one grace retry already spent (revoked as grace_used), or rotated
//     longer ago than ReuseGrace: reuse, so the family and the session are
//     revoked (reuseDetected);
//   - revoked by an earlier reuse detection: the session revocation is sent
//     again (it is idempotent) in case the one sent at detection was lost;
//   - otherwise (revoked by logout, revocation, password change ...):
//     invalid_grant.
func (s *Service) rejectPresented(ctx context.Context, t permiso.RefreshToken, now time.Time, meta RequestMeta) error {
	if t.RevokedAt != nil {
		reason := ""
		if t.RevocationReason != nil {
			reason = *t.RevocationReason
		}
		switch reason {
		case permiso.RevocationGraceUsed:
			return s.reuseDetected(ctx, t, meta)
		case permiso.RevocationReuseDetected:
			if err := s.resendSessionRevocation(ctx, t.SessionID, now); err != nil {
				return err
			}
		}
		return errBadRefresh
	}
	if t.UsedAt != nil && s.pastGrace(*t.UsedAt, now) {
		return s.reuseDetected(ctx, t, meta)
	}
	return errBadRefresh
}

// pastGrace reports whether a token rotated at usedAt and presented again
// at now is reuse rather than a grace retry. With ReuseGrace 0 there is no
// grace at all: every presentation after the rotation is reuse, also one
// that started before the rotation was committed (its now is then earlier
// than usedAt, and so are the clocks of other instances), which would
// otherwise fall "within" a zero window and be granted a second pair.
func (s *Service) pastGrace(usedAt, now time.Time) bool {
	return s.cfg.ReuseGrace <= 0 || now.Sub(usedAt) > s.cfg.ReuseGrace
}

// resendSessionRevocation revokes the session's access tokens in the
// revocation store again, in case the revocation sent when the session
// ended was lost (a failed write, or its keys gone with a Redis failover
// or eviction); it never shortens an existing entry. It is sent at most
// once per resendInterval per session and instance (resends): each send
// is a write and an event of the revocation feed that every instance
// reads, and a revoked family's token replayed again and again would
// otherwise send one each time. (Whether the store holds the revocation
// cannot be asked instead: an instance answers from its own copy of the
// feed, which keeps it after Redis lost it.)
func (s *Service) resendSessionRevocation(ctx context.Context, sid uuid.UUID, now time.Time) error {
	// Paced on the time of the check, not the request's start: replays
	// that reach it out of their order of arrival are not let through.
	if !s.resent.due(sid, s.now()) {
		return nil
	}
	return s.deps.Revocations.RevokeSession(ctx, sid.String(), s.sessionRevocationExpiry(now))
}

// resendInterval is how often a session's revocation is re-sent at most
// (resendSessionRevocation), and resendsKept how many sessions' last
// re-sends are remembered: past it, those older than resendInterval are
// forgotten, and all of them if none is (a re-send too many, never one
// too few).
const (
	resendInterval = time.Second
	resendsKept    = 4096
)

// resends remembers when each session's revocation was last re-sent.
type resends struct {
	mu   sync.Mutex
	last map[uuid.UUID]time.Time
}

// due reports whether sid's revocation may be re-sent at now, and notes
// the re-send when it may.
func (r *resends) due(sid uuid.UUID, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	recent := func(t time.Time) bool { return !now.Before(t) && now.Sub(t) < resendInterval }
	if t, ok := r.last[sid]; ok && recent(t) {
		return false
	}
	if r.last == nil {
		r.last = make(map[uuid.UUID]time.Time)
	}
	if len(r.last) >= resendsKept {
		maps.DeleteFunc(r.last, func(_ uuid.UUID, t time.Time) bool { return !recent(t) })
		if len(r.last) >= resendsKept {
			clear(r.last)
		}
	}
	r.last[sid] = now
	return true
}

// useGrace spends the one grace retry of the presented (rotated) token and
// stores repl, in one store compare-and-swap. The retry is for a client
// whose answer to the rotation was lost: it is granted only while the
// rotation's replacement is unused. When the retry was already spent, the
// window closed meanwhile, or the replacement was used (the client that
// rotated the token did receive its answer, so this presentation is of a
// copy), the presentation is reuse. firstUse reports a token found unused
// again and rotated as a first use (below), not as a grace retry.
func (s *Service) useGrace(ctx context.Context, hash string, repl permiso.RefreshToken, now time.Time, meta RequestMeta) (firstUse bool, err error) {
	if lost, err := spendOutcome(s.deps.Tokens.UseRefreshTokenGrace(ctx, hash, repl, now.Add(-s.cfg.ReuseGrace), now)); !lost {
		return false, err
	}
	cur, err := s.refreshByHash(ctx, hash)
	if err != nil {
		return false, err
	}
	switch {
	case cur.RevokedAt != nil:
	case cur.UsedAt != nil:
		// Rotated and unrevoked, yet refused: either past the window or,
		// within it, its replacement was used (UseRefreshTokenGrace).
		// Reuse either way.
		return false, s.reuseDetected(ctx, cur, meta)
	default:
		// Unused again: the rotation this retry came after was taken
		// back, its refresh having given up before its answer (the
		// client went away, docs/security-model.md "Refresh token
		// reuse"). The retry is then the token's use, as a first
		// presentation would be.
		if lost, err := spendOutcome(s.deps.Tokens.UseRefreshToken(ctx, hash, repl, now)); !lost {
			return err == nil, err
		}
		if cur, err = s.refreshByHash(ctx, hash); err != nil {
			return false, err
		}
	}
	return false, s.rejectPresented(ctx, cur, now, meta)
}

// spendOutcome reads the error of a spend of a refresh token
// (UseRefreshToken, UseRefreshTokenGrace): lost when the store refused
// the compare-and-swap (ErrConflict: a concurrent rotation or revocation
// won, so the caller re-reads the token and decides), else the grant's
// error (nil for a spend that succeeded, errBadRefresh for an unknown
// token).
func spendOutcome(err error) (lost bool, out error) {
	switch {
	case errors.Is(err, permiso.ErrConflict):
		return true, nil
	case errors.Is(err, permiso.ErrNotFound):
		return false, errBadRefresh
	}
	return false, err
}

// refreshByHash reads the refresh token with hash again after a lost
// spend; one gone meanwhile is errBadRefresh. Like presentedToken, it
// reads whatever became of the request (compensating).
func (s *Service) refreshByHash(ctx context.Context, hash string) (permiso.RefreshToken, error) {
	cctx, cancel := compensating(ctx)
	defer cancel()
	t, err := s.deps.Tokens.GetRefreshTokenByHash(cctx, hash)
	if errors.Is(err, permiso.ErrNotFound) {
		return t, errBadRefresh
	}
	return t, err
}

// presentedToken reads the presented refresh token with hash and its
// session; one unknown is errBadRefresh. The read decides whether the
// presentation is reuse, so it runs as compensating work does, without
// the request's cancellation and bounded: reuse must be detected once the
// request was read, even when its client hangs up at once, else a replay
// of a stolen token whose client resets its connection straight after
// sending it would never be detected, and could be tried again and again
// at no risk. Such a presentation costs one bounded read; the revocation
// it leads to runs once at a time per session (settle), so a flood of
// them leaves no more detached work than that.
func (s *Service) presentedToken(ctx context.Context, hash string) (permiso.RefreshToken, permiso.Session, error) {
	cctx, cancel := compensating(ctx)
	defer cancel()
	t, sess, err := s.deps.Tokens.GetRefreshTokenSession(cctx, hash)
	if errors.Is(err, permiso.ErrNotFound) {
		return t, sess, errBadRefresh
	}
	return t, sess, err
}

// sessionDeadline is the absolute end of a session: its creation plus
// RefreshAbsoluteLifetime, however often it is refreshed.
func (s *Service) sessionDeadline(sess permiso.Session) time.Time {
	return sess.CreatedAt.Add(s.cfg.RefreshAbsoluteLifetime)
}
