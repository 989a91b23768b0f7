package sqlite

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const sessionCols = `id, user_id, client_id, ip_address, user_agent, created_at,
	last_activity, expires_at, revoked_at`

func scanSession(s scanner) (permiso.Session, error) {
	var x permiso.Session
	err := s.Scan(&x.ID, &x.UserID, &x.ClientID, &x.IPAddress, &x.UserAgent,
		timeCol{&x.CreatedAt}, timeCol{&x.LastActivity}, timeCol{&x.ExpiresAt},
		nullTimeCol{&x.RevokedAt})
	return x, err
}

func sessionErr(op string, err error) error {
	return errMap{op: op, notFound: "Session not found", exists: "Session already exists",
		fk: "User or client not found", fkCode: permiso.ENOTFOUND}.wrap(err)
}

func selectSessions(ctx context.Context, c conn, query string, args ...any) ([]permiso.Session, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, sessionErr("list sessions", err)
	}
	defer rows.Close()
	var out []permiso.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, sessionErr("list sessions", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, sessionErr("list sessions", err)
	}
	return out, nil
}

// CreateSession stores s. ID is generated when zero; CreatedAt and
// LastActivity default to now.
func (db *DB) CreateSession(ctx context.Context, s permiso.Session) (permiso.Session, error) {
	id, err := insertSession(ctx, db.w(), s)
	if err != nil {
		return permiso.Session{}, err
	}
	return db.GetSession(ctx, id)
}

// CreateSessionWithToken stores s and first in one write transaction (see
// permiso.SessionStore).
func (db *DB) CreateSessionWithToken(ctx context.Context, s permiso.Session, first permiso.RefreshToken) (permiso.Session, permiso.RefreshToken, error) {
	var sess permiso.Session
	var tok permiso.RefreshToken
	err := db.inTx(ctx, func(c conn) error {
		id, err := insertSession(ctx, c, s)
		if err != nil {
			return err
		}
		first.SessionID = id
		if tok, err = insertRefresh(ctx, c, first); err != nil {
			return err
		}
		sess, err = scanSession(c.queryRow(ctx, "SELECT "+sessionCols+" FROM user_sessions WHERE id = ?", id))
		return sessionErr("create session", err)
	})
	if err != nil {
		return permiso.Session{}, permiso.RefreshToken{}, err
	}
	return sess, tok, nil
}

// insertSession stores s (ID generated when zero; CreatedAt and
// LastActivity default to now) and returns its id.
func insertSession(ctx context.Context, c conn, s permiso.Session) (uuid.UUID, error) {
	if s.ID == uuid.Nil {
		s.ID = newID()
	}
	s.CreatedAt = orNow(s.CreatedAt)
	if s.LastActivity.IsZero() {
		s.LastActivity = s.CreatedAt
	}
	_, err := c.exec(ctx, `INSERT INTO user_sessions (`+sessionCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.UserID, s.ClientID, s.IPAddress, s.UserAgent, ts(s.CreatedAt),
		ts(s.LastActivity), ts(s.ExpiresAt), tsPtr(s.RevokedAt))
	if err != nil {
		return uuid.Nil, sessionErr("create session", err)
	}
	return s.ID, nil
}

// GetSession returns the session, revoked or expired or not.
func (db *DB) GetSession(ctx context.Context, id uuid.UUID) (permiso.Session, error) {
	s, err := scanSession(db.r().queryRow(ctx, "SELECT "+sessionCols+" FROM user_sessions WHERE id = ?", id))
	return s, sessionErr("get session", err)
}

// ListSessions returns the user's sessions ordered by created_at, id; with
// activeOnly only those neither revoked nor expired at now.
func (db *DB) ListSessions(ctx context.Context, userID uuid.UUID, activeOnly bool, now time.Time) ([]permiso.Session, error) {
	q := "SELECT " + sessionCols + " FROM user_sessions WHERE user_id = ?"
	args := []any{userID}
	if activeOnly {
		q += " AND revoked_at IS NULL AND expires_at > ?"
		args = append(args, ts(now))
	}
	return selectSessions(ctx, db.r(), q+" ORDER BY created_at, id", args...)
}

// ListSessionsRevokedSince returns the sessions revoked at or after since,
// ordered by revoked_at, id.
func (db *DB) ListSessionsRevokedSince(ctx context.Context, since time.Time) ([]permiso.Session, error) {
	return selectSessions(ctx, db.r(), "SELECT "+sessionCols+
		" FROM user_sessions WHERE revoked_at IS NOT NULL AND revoked_at >= ? ORDER BY revoked_at, id", ts(since))
}

// UpdateSession applies fn to the session and writes it in one
// transaction. ID, UserID and CreatedAt are never changed.
func (db *DB) UpdateSession(ctx context.Context, id uuid.UUID, fn func(*permiso.Session) error) (permiso.Session, error) {
	var out permiso.Session
	err := db.inTx(ctx, func(c conn) error {
		s, err := scanSession(c.queryRow(ctx, "SELECT "+sessionCols+" FROM user_sessions WHERE id = ?", id))
		if err != nil {
			return sessionErr("update session", err)
		}
		if err := fn(&s); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE user_sessions SET client_id = ?, ip_address = ?,
			user_agent = ?, last_activity = ?, expires_at = ?, revoked_at = ? WHERE id = ?`,
			s.ClientID, s.IPAddress, s.UserAgent, ts(s.LastActivity), ts(s.ExpiresAt),
			tsPtr(s.RevokedAt), id); err != nil {
			return sessionErr("update session", err)
		}
		out, err = scanSession(c.queryRow(ctx, "SELECT "+sessionCols+" FROM user_sessions WHERE id = ?", id))
		return sessionErr("update session", err)
	})
	return out, err
}

// RevokeSession marks the session revoked at now and revokes its refresh
// tokens with reason, in one transaction. A revoked session is returned
// unchanged.
func (db *DB) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (permiso.Session, error) {
	var out permiso.Session
	err := db.inTx(ctx, func(c conn) error {
		s, err := scanSession(c.queryRow(ctx, "SELECT "+sessionCols+" FROM user_sessions WHERE id = ?", id))
		if err != nil {
			return sessionErr("revoke session", err)
		}
		if s.RevokedAt == nil {
			if _, err := c.exec(ctx, "UPDATE user_sessions SET revoked_at = ? WHERE id = ?", ts(now), id); err != nil {
				return sessionErr("revoke session", err)
			}
			t := now.UTC()
			s.RevokedAt = &t
		}
		// Tokens are revoked even for a session revoked earlier, in case
		// one was issued after it (the call is idempotent).
		if err := revokeSessionTokens(ctx, c, []uuid.UUID{id}, reason, now); err != nil {
			return err
		}
		out = s
		return nil
	})
	return out, err
}

// RevokeUserSessions revokes every active session of the user except the
// one given (when not nil) and their refresh tokens; it returns the revoked
// sessions ordered by created_at, id.
func (db *DB) RevokeUserSessions(ctx context.Context, userID uuid.UUID, except *uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	where := "user_id = ?"
	args := []any{userID}
	if except != nil {
		where += " AND id <> ?"
		args = append(args, *except)
	}
	return db.revokeSessionsWhere(ctx, "revoke user sessions", where, args, reason, now)
}

// RevokeClientSessions revokes every active session opened through the
// client with row id clientID and their refresh tokens; it returns the
// revoked sessions ordered by created_at, id.
func (db *DB) RevokeClientSessions(ctx context.Context, clientID uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	return db.revokeSessionsWhere(ctx, "revoke client sessions", "client_id = ?", []any{clientID}, reason, now)
}

// revokeSessionsWhere revokes, in one transaction, the sessions active at
// now that match where (with args) and their refresh tokens.
func (db *DB) revokeSessionsWhere(ctx context.Context, op, where string, args []any, reason string, now time.Time) ([]permiso.Session, error) {
	var out []permiso.Session
	err := db.inTx(ctx, func(c conn) error {
		q := "SELECT " + sessionCols + " FROM user_sessions WHERE " + where +
			" AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at, id"
		ss, err := selectSessions(ctx, c, q, append(args, ts(now))...)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			return nil
		}
		ids := make([]uuid.UUID, len(ss))
		t := now.UTC()
		for i := range ss {
			ids[i] = ss[i].ID
			ss[i].RevokedAt = &t
		}
		if _, err := c.exec(ctx, `UPDATE user_sessions SET revoked_at = ?
			WHERE id IN (SELECT value FROM json_each(?))`, ts(now), idsJSON(ids)); err != nil {
			return sessionErr(op, err)
		}
		if err := revokeSessionTokens(ctx, c, ids, reason, now); err != nil {
			return err
		}
		out = ss
		return nil
	})
	return out, err
}

// DeleteExpiredSessions removes sessions that expired before now, with
// their refresh tokens.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := db.w().execN(ctx, "DELETE FROM user_sessions WHERE expires_at < ?", ts(now))
	return n, sessionErr("delete expired sessions", err)
}

// SessionStats counts sessions at now: Active (neither revoked nor
// expired), Expired (not revoked, expired), Revoked, and CreatedSince
// (created at or after createdSince).
func (db *DB) SessionStats(ctx context.Context, now, createdSince time.Time) (permiso.SessionStats, error) {
	var s permiso.SessionStats
	err := db.r().queryRow(ctx, `SELECT
		coalesce(sum(revoked_at IS NULL AND expires_at > ?1), 0),
		coalesce(sum(revoked_at IS NULL AND expires_at <= ?1), 0),
		coalesce(sum(revoked_at IS NOT NULL), 0),
		coalesce(sum(created_at >= ?2), 0)
		FROM user_sessions`, ts(now), ts(createdSince)).
		Scan(&s.Active, &s.Expired, &s.Revoked, &s.CreatedSince)
	return s, sessionErr("session stats", err)
}
