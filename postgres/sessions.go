package postgres

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

const sessionColumns = `id, user_id, client_id, ip_address, user_agent, created_at,
	last_activity, expires_at, revoked_at`

func scanSession(row pgx.Row) (permiso.Session, error) {
	var s permiso.Session
	err := row.Scan(&s.ID, &s.UserID, &s.ClientID, &s.IPAddress, &s.UserAgent, &s.CreatedAt,
		&s.LastActivity, &s.ExpiresAt, &s.RevokedAt)
	s.CreatedAt = utc(s.CreatedAt)
	s.LastActivity = utc(s.LastActivity)
	s.ExpiresAt = utc(s.ExpiresAt)
	s.RevokedAt = utcp(s.RevokedAt)
	return s, err
}

func collectSessions(rows pgx.Rows) ([]permiso.Session, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.Session, error) { return scanSession(r) })
}

// CreateSession stores s (ID generated when zero, CreatedAt and
// LastActivity defaulting to the current time); an unknown user or client
// yields ErrNotFound.
func (db *DB) CreateSession(ctx context.Context, s permiso.Session) (permiso.Session, error) {
	return insertSession(ctx, db.q, s)
}

// CreateSessionWithToken stores s and first in one transaction (see
// permiso.SessionStore).
func (db *DB) CreateSessionWithToken(ctx context.Context, s permiso.Session, first permiso.RefreshToken) (permiso.Session, permiso.RefreshToken, error) {
	var sess permiso.Session
	var tok permiso.RefreshToken
	err := db.inTx(ctx, func(tx pgx.Tx) (err error) {
		if sess, err = insertSession(ctx, tx, s); err != nil {
			return err
		}
		first.SessionID = sess.ID
		tok, err = insertRefresh(ctx, tx, first)
		return err
	})
	if err != nil {
		return permiso.Session{}, permiso.RefreshToken{}, err
	}
	return sess, tok, nil
}

func insertSession(ctx context.Context, q querier, s permiso.Session) (permiso.Session, error) {
	if s.ID == uuid.Nil {
		s.ID = uuid.New()
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now()
	}
	if s.LastActivity.IsZero() {
		s.LastActivity = s.CreatedAt
	}
	out, err := scanSession(q.QueryRow(ctx, `INSERT INTO user_sessions (id, user_id, client_id,
		ip_address, user_agent, created_at, last_activity, expires_at, revoked_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING `+sessionColumns,
		s.ID, s.UserID, s.ClientID, s.IPAddress, s.UserAgent, ts(s.CreatedAt), ts(s.LastActivity),
		ts(s.ExpiresAt), tsp(s.RevokedAt)))
	if err != nil {
		return permiso.Session{}, mapErr(err, "session", opWrite)
	}
	return out, nil
}

// GetSession returns the session with the given id.
func (db *DB) GetSession(ctx context.Context, id uuid.UUID) (permiso.Session, error) {
	s, err := scanSession(db.q.QueryRow(ctx, `SELECT `+sessionColumns+` FROM user_sessions WHERE id = $1`, id))
	if err != nil {
		return permiso.Session{}, mapErr(err, "session", opRead)
	}
	return s, nil
}

// ListSessions returns the user's sessions ordered by created_at, id; with
// activeOnly, only those neither revoked nor expired at now.
func (db *DB) ListSessions(ctx context.Context, userID uuid.UUID, activeOnly bool, now time.Time) ([]permiso.Session, error) {
	q := `SELECT ` + sessionColumns + ` FROM user_sessions WHERE user_id = $1`
	args := []any{userID}
	if activeOnly {
		q += ` AND revoked_at IS NULL AND expires_at > $2`
		args = append(args, ts(now))
	}
	rows, err := db.q.Query(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, mapErr(err, "sessions", opRead)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, mapErr(err, "sessions", opRead)
	}
	return out, nil
}

// UpdateSession reads the session FOR UPDATE, applies fn and writes the
// mutable fields (client, IP address, user agent, last activity, expiry,
// revocation) in one transaction.
func (db *DB) UpdateSession(ctx context.Context, id uuid.UUID, fn func(*permiso.Session) error) (permiso.Session, error) {
	var out permiso.Session
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		s, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM user_sessions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return mapErr(err, "session", opRead)
		}
		if err := fn(&s); err != nil {
			return err
		}
		out, err = scanSession(tx.QueryRow(ctx, `UPDATE user_sessions SET client_id = $2, ip_address = $3,
			user_agent = $4, last_activity = $5, expires_at = $6, revoked_at = $7
			WHERE id = $1 RETURNING `+sessionColumns,
			id, s.ClientID, s.IPAddress, s.UserAgent, ts(s.LastActivity), ts(s.ExpiresAt), tsp(s.RevokedAt)))
		return mapErr(err, "session", opWrite)
	})
	if err != nil {
		return permiso.Session{}, err
	}
	return out, nil
}

// ListSessionsRevokedSince returns the sessions revoked at or after since,
// ordered by revoked_at, id.
func (db *DB) ListSessionsRevokedSince(ctx context.Context, since time.Time) ([]permiso.Session, error) {
	rows, err := db.q.Query(ctx, `SELECT `+sessionColumns+` FROM user_sessions
		WHERE revoked_at >= $1 ORDER BY revoked_at, id`, ts(since))
	if err != nil {
		return nil, mapErr(err, "sessions", opRead)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, mapErr(err, "sessions", opRead)
	}
	return out, nil
}

// RevokeSession marks the session revoked at now and revokes every
// unrevoked refresh token of it with reason, in one transaction. Revoking a
// revoked session keeps its revoked_at and still revokes any refresh token
// of it left unrevoked (one issued after it, as the SQLite backend does).
func (db *DB) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (permiso.Session, error) {
	var out permiso.Session
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		s, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM user_sessions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return mapErr(err, "session", opRead)
		}
		at := ts(now)
		if s.RevokedAt == nil {
			if _, err := tx.Exec(ctx, `UPDATE user_sessions SET revoked_at = $2 WHERE id = $1`, id, at); err != nil {
				return mapErr(err, "session", opWrite)
			}
			s.RevokedAt = &at
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2, revocation_reason = $3
			WHERE session_id = $1 AND revoked_at IS NULL`, id, at, reason); err != nil {
			return mapErr(err, "refresh tokens", opWrite)
		}
		out = s
		return nil
	})
	if err != nil {
		return permiso.Session{}, err
	}
	return out, nil
}

// RevokeUserSessions revokes every session of the user active at now
// (except the one given, when not nil) and their refresh tokens, in one
// transaction; it returns the revoked sessions ordered by created_at, id.
func (db *DB) RevokeUserSessions(ctx context.Context, userID uuid.UUID, except *uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	return db.revokeSessionsWhere(ctx, `user_id = $2 AND ($3::uuid IS NULL OR id <> $3::uuid)`,
		[]any{userID, except}, reason, now)
}

// RevokeClientSessions revokes every session opened through the client
// with row id clientID and active at now, and their refresh tokens, in one
// transaction; it returns the revoked sessions ordered by created_at, id.
func (db *DB) RevokeClientSessions(ctx context.Context, clientID uuid.UUID, reason string, now time.Time) ([]permiso.Session, error) {
	return db.revokeSessionsWhere(ctx, `client_id = $2`, []any{clientID}, reason, now)
}

// revokeSessionsWhere revokes, in one transaction, the sessions active at
// now that match cond (whose parameters start at $2, after the revocation
// time $1) and their refresh tokens.
func (db *DB) revokeSessionsWhere(ctx context.Context, cond string, args []any, reason string, now time.Time) ([]permiso.Session, error) {
	var out []permiso.Session
	at := ts(now)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE user_sessions SET revoked_at = $1
			WHERE `+cond+` AND revoked_at IS NULL AND expires_at > $1
			RETURNING `+sessionColumns, append([]any{at}, args...)...)
		if err != nil {
			return mapErr(err, "sessions", opWrite)
		}
		out, err = collectSessions(rows)
		if err != nil {
			return mapErr(err, "sessions", opWrite)
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]uuid.UUID, len(out))
		for i, s := range out {
			ids[i] = s.ID
		}
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2, revocation_reason = $3
			WHERE session_id = ANY($1) AND revoked_at IS NULL`, ids, at, reason)
		return mapErr(err, "refresh tokens", opWrite)
	})
	if err != nil {
		return nil, err
	}
	sortSessions(out)
	return out, nil
}

// sortSessions orders sessions by created_at, id (RETURNING has no order).
func sortSessions(ss []permiso.Session) {
	slices.SortFunc(ss, func(a, b permiso.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
}

// DeleteExpiredSessions removes sessions that expired before now (their
// refresh tokens cascade).
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM user_sessions WHERE expires_at < $1`, ts(now))
	if err != nil {
		return 0, mapErr(err, "sessions", opDelete)
	}
	return int(tag.RowsAffected()), nil
}

// SessionStats counts sessions at now: Active (neither revoked nor
// expired), Expired (not revoked, expired), Revoked, and CreatedSince
// (created at or after createdSince).
func (db *DB) SessionStats(ctx context.Context, now, createdSince time.Time) (permiso.SessionStats, error) {
	var s permiso.SessionStats
	err := db.q.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > $1),
		count(*) FILTER (WHERE revoked_at IS NULL AND expires_at <= $1),
		count(*) FILTER (WHERE revoked_at IS NOT NULL),
		count(*) FILTER (WHERE created_at >= $2)
		FROM user_sessions`, ts(now), ts(createdSince)).Scan(&s.Active, &s.Expired, &s.Revoked, &s.CreatedSince)
	if err != nil {
		return s, mapErr(err, "session stats", opRead)
	}
	return s, nil
}
