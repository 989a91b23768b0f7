package sqlstore

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Sessions describes the user_sessions table.
var Sessions = NewTable("user_sessions", "us", append(Fields[permiso.Session]([]string{"id", "user_id", "created_at"},
	"id", "user_id", "client_id", "ip_address", "user_agent", "created_at", "last_activity",
	"expires_at", "revoked_at"),
	listCol("amr", func(s *permiso.Session) *[]string { return &s.AMR }, spaced),
)...)

func (s *Store) sessionErr(op string, err error) error {
	return s.errOf(err, op, SessionMessages, false, "User or client not found")
}

// selectSessions runs a query returning Sessions.Names() (or List()).
func (s *Store) selectSessions(ctx context.Context, q Querier, op, query string, args ...any) ([]permiso.Session, error) {
	out, err := selectAll(ctx, s, q, Sessions, query, args...)
	return out, s.sessionErr(op, err)
}

// CreateSession stores sess (ID generated when zero, CreatedAt and
// LastActivity defaulting to the current time); an unknown user or client
// yields ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, sess permiso.Session) (permiso.Session, error) {
	return s.insertSession(ctx, s.c.Pool(), sess)
}

// CreateSessionWithToken stores sess and first in one transaction (see
// permiso.SessionStore).
func (s *Store) CreateSessionWithToken(ctx context.Context, sess permiso.Session, first permiso.RefreshToken) (permiso.Session, permiso.RefreshToken, error) {
	var out permiso.Session
	var tok permiso.RefreshToken
	err := s.c.Write(ctx, func(q Querier) (err error) {
		if out, err = s.insertSession(ctx, q, sess); err != nil {
			return err
		}
		first.SessionID = out.ID
		tok, err = s.insertRefresh(ctx, q, first)
		return err
	})
	if err != nil {
		return permiso.Session{}, permiso.RefreshToken{}, err
	}
	return out, tok, nil
}

func (s *Store) insertSession(ctx context.Context, q Querier, sess permiso.Session) (permiso.Session, error) {
	if sess.ID == uuid.Nil {
		sess.ID = newID()
	}
	sess.CreatedAt = orNow(sess.CreatedAt)
	if sess.LastActivity.IsZero() {
		sess.LastActivity = sess.CreatedAt
	}
	out, err := Sessions.Scan(s.d, s.queryRow(ctx, q, Sessions.Insert()+" RETURNING "+Sessions.Names(), Sessions.Args(s.d, &sess)...))
	if err != nil {
		return permiso.Session{}, s.sessionErr("create session", err)
	}
	return out, nil
}

// GetSession returns the session, revoked or expired or not.
func (s *Store) GetSession(ctx context.Context, id uuid.UUID) (permiso.Session, error) {
	x, err := Sessions.Scan(s.d, s.queryRow(ctx, s.c.Reader(), Sessions.Select()+" WHERE us.id = ?", id))
	if err != nil {
		return permiso.Session{}, s.sessionErr("get session", err)
	}
	return x, nil
}

// ListSessions returns the user's sessions ordered by created_at, id; with
// activeOnly only those neither revoked nor expired at now.
func (s *Store) ListSessions(ctx context.Context, userID uuid.UUID, activeOnly bool, now time.Time) ([]permiso.Session, error) {
	query := Sessions.Select() + " WHERE us.user_id = ?"
	args := []any{userID}
	if activeOnly {
		query += " AND us.revoked_at IS NULL AND us.expires_at > ?"
		args = append(args, s.d.Time(now))
	}
	return s.selectSessions(ctx, s.c.Reader(), "list sessions", query+" ORDER BY us.created_at, us.id", args...)
}

// ListSessionsRevokedSince returns the sessions revoked at or after since,
// ordered by revoked_at, id.
func (s *Store) ListSessionsRevokedSince(ctx context.Context, since time.Time) ([]permiso.Session, error) {
	return s.selectSessions(ctx, s.c.Reader(), "list revoked sessions", Sessions.Select()+
		" WHERE us.revoked_at IS NOT NULL AND us.revoked_at >= ? ORDER BY us.revoked_at, us.id", s.d.Time(since))
}

// UpdateSession reads the session (locked), applies fn and writes the
// mutable fields (client, IP address, user agent, last activity, expiry,
// revocation) in one transaction. ID, UserID and CreatedAt never change.
func (s *Store) UpdateSession(ctx context.Context, id uuid.UUID, fn func(*permiso.Session) error) (permiso.Session, error) {
	var out permiso.Session
	err := s.c.Write(ctx, func(q Querier) error {
		x, err := Sessions.Scan(s.d, s.queryRow(ctx, q, Sessions.Select()+" WHERE us.id = ?"+s.d.ForUpdate(), id))
		if err != nil {
			return s.sessionErr("update session", err)
		}
		if err := fn(&x); err != nil {
			return err
		}
		x.ID = id
		out, err = Sessions.Scan(s.d, s.queryRow(ctx, q, Sessions.Update()+" RETURNING "+Sessions.Names(), Sessions.UpdateArgs(s.d, &x)...))
		return s.sessionErr("update session", err)
	})
	if err != nil {
		return permiso.Session{}, err
	}
	return out, nil
}

// RevokeSession marks the session revoked at now and revokes its refresh
// tokens with reason, in one transaction. Revoking a revoked session keeps
// its revoked_at and still revokes any refresh token of it left unrevoked
// (one issued after it).
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (permiso.Session, error) {
	var out permiso.Session
	err := s.c.Write(ctx, func(q Querier) error {
		x, err := Sessions.Scan(s.d, s.queryRow(ctx, q, Sessions.Select()+" WHERE us.id = ?"+s.d.ForUpdate(), id))
		if err != nil {
			return s.sessionErr("revoke session", err)
		}
		if x.RevokedAt == nil {
			if _, err := s.exec(ctx, q, "UPDATE user_sessions SET revoked_at = ? WHERE id = ?", s.d.Time(now), id); err != nil {
				return s.sessionErr("revoke session", err)
			}
			x.RevokedAt = storedTime(s.d, now)
		}
		if err := s.revokeSessionTokens(ctx, q, []uuid.UUID{id}, reason, now); err != nil {
			return err
		}
		out = x
		return nil
	})
	return out, err
}

// storedTime is t as a store returns it once written: UTC, at the
// dialect's precision.
func storedTime(d Dialect, t time.Time) *time.Time {
	u := t.UTC()
	if tt, ok := d.Time(t).(time.Time); ok {
		u = tt.UTC()
	}
	return &u
}

// RevokeUserSessions revokes every session of the user active at now
// (except the one given, when not nil) and their refresh tokens, in one
// transaction; it returns the revoked sessions ordered by created_at, id.
func (s *Store) RevokeUserSessions(ctx context.Context, userID uuid.UUID, except *uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	cond, args := "user_id = ?", []any{userID}
	if except != nil {
		cond += " AND id <> ?"
		args = append(args, *except)
	}
	return s.revokeSessionsWhere(ctx, cond, args, reason, now)
}

// RevokeClientSessions revokes every session opened through the client
// with row id clientID and active at now, and their refresh tokens, in one
// transaction; it returns the revoked sessions ordered by created_at, id.
func (s *Store) RevokeClientSessions(ctx context.Context, clientID uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	return s.revokeSessionsWhere(ctx, "client_id = ?", []any{clientID}, reason, now)
}

// revokeAttempts bounds how often revokeSessionsWhere runs its
// transaction when the database aborts it as a deadlock victim.
const revokeAttempts = 3

// revokeSessionsWhere revokes, in one transaction, the sessions active at
// now that match cond (with args) and their refresh tokens. A transaction
// the database aborted to break a deadlock (ECONFLICT; on PostgreSQL with
// refresh rotations sent together, which lock several sessions in the
// plan's order, docs/data-model.md) wrote nothing and is run again: a
// revocation must not fail because refreshes raced it.
func (s *Store) revokeSessionsWhere(ctx context.Context, cond string, args []any, reason string, now time.Time) ([]permiso.Session, error) {
	var out []permiso.Session
	at := s.d.Time(now)
	var err error
	for attempt := 1; ; attempt++ {
		err = s.c.Write(ctx, func(q Querier) error {
			var err error
			out, err = s.selectSessions(ctx, q, "revoke sessions", "UPDATE user_sessions SET revoked_at = ? WHERE "+cond+
				" AND revoked_at IS NULL AND expires_at > ?1 RETURNING "+Sessions.Names(), append([]any{at}, args...)...)
			if err != nil || len(out) == 0 {
				return err
			}
			return s.revokeSessionTokens(ctx, q, idsOf(out, func(x *permiso.Session) uuid.UUID { return x.ID }), reason, now)
		})
		if permiso.ErrorCode(err) != permiso.ECONFLICT || attempt == revokeAttempts || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b permiso.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out, nil
}

// revokeSessionTokens revokes the unrevoked refresh tokens of the sessions
// in ids.
func (s *Store) revokeSessionTokens(ctx context.Context, q Querier, ids []uuid.UUID, reason string, now time.Time) error {
	_, err := s.exec(ctx, q, "UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ? WHERE "+
		s.d.InIDs("session_id")+" AND revoked_at IS NULL", s.d.Time(now), reason, s.d.IDs(ids))
	return s.refreshErr("revoke session refresh tokens", err)
}

// DeleteExpiredSessions removes sessions that expired before now (their
// refresh tokens cascade).
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM user_sessions WHERE expires_at < ?", s.d.Time(now))
	return int(n), s.sessionErr("delete expired sessions", err)
}

// SessionStats counts sessions at now: Active (neither revoked nor
// expired), Expired (not revoked, expired), Revoked, and CreatedSince
// (created at or after createdSince).
func (s *Store) SessionStats(ctx context.Context, now, createdSince time.Time) (permiso.SessionStats, error) {
	var st permiso.SessionStats
	err := s.queryRow(ctx, s.c.Reader(), `SELECT
		count(CASE WHEN revoked_at IS NULL AND expires_at > ?1 THEN 1 END),
		count(CASE WHEN revoked_at IS NULL AND expires_at <= ?1 THEN 1 END),
		count(CASE WHEN revoked_at IS NOT NULL THEN 1 END),
		count(CASE WHEN created_at >= ?2 THEN 1 END)
		FROM user_sessions`, s.d.Time(now), s.d.Time(createdSince)).
		Scan(&st.Active, &st.Expired, &st.Revoked, &st.CreatedSince)
	return st, s.sessionErr("session stats", err)
}
