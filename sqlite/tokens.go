package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const refreshCols = `id, token_hash, user_id, client_id, session_id, family_id,
	parent_id, scopes, issued_at, expires_at, used_at, revoked_at,
	revocation_reason, client_ip, user_agent`

func scanRefresh(s scanner) (permiso.RefreshToken, error) {
	var t permiso.RefreshToken
	var scopes string
	err := s.Scan(&t.ID, &t.TokenHash, &t.UserID, &t.ClientID, &t.SessionID,
		&t.FamilyID, &t.ParentID, &scopes, timeCol{&t.IssuedAt},
		timeCol{&t.ExpiresAt}, nullTimeCol{&t.UsedAt}, nullTimeCol{&t.RevokedAt},
		&t.RevocationReason, &t.ClientIP, &t.UserAgent)
	t.Scopes = strings.Fields(scopes)
	return t, err
}

func refreshErr(op string, err error) error {
	return errMap{op: op, notFound: "Refresh token not found", exists: "Refresh token already exists",
		fk: "User, session or client not found", fkCode: permiso.ENOTFOUND}.wrap(err)
}

func insertRefresh(ctx context.Context, c conn, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	if t.ID == uuid.Nil {
		t.ID = newID()
	}
	if t.FamilyID == uuid.Nil {
		t.FamilyID = t.ID
	}
	t.IssuedAt = orNow(t.IssuedAt)
	t.Scopes = permiso.SortedUnique(t.Scopes)
	_, err := c.exec(ctx, `INSERT INTO refresh_tokens (`+refreshCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.TokenHash, t.UserID, t.ClientID, t.SessionID, t.FamilyID,
		t.ParentID, strings.Join(t.Scopes, " "), ts(t.IssuedAt), ts(t.ExpiresAt),
		tsPtr(t.UsedAt), tsPtr(t.RevokedAt), t.RevocationReason, t.ClientIP, t.UserAgent)
	if err != nil {
		return permiso.RefreshToken{}, refreshErr("create refresh token", err)
	}
	return t, nil
}

// CreateRefreshToken stores t. ID is generated when zero, FamilyID defaults
// to the token's own ID and Scopes are stored sorted and de-duplicated.
func (db *DB) CreateRefreshToken(ctx context.Context, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	var out permiso.RefreshToken
	err := db.inTx(ctx, func(c conn) (err error) {
		out, err = insertRefresh(ctx, c, t)
		return err
	})
	return out, err
}

// GetRefreshTokenByHash returns the token with this hash, used or not.
func (db *DB) GetRefreshTokenByHash(ctx context.Context, hash string) (permiso.RefreshToken, error) {
	t, err := scanRefresh(db.r().queryRow(ctx, "SELECT "+refreshCols+" FROM refresh_tokens WHERE token_hash = ?", hash))
	if err != nil {
		return permiso.RefreshToken{}, refreshErr("get refresh token", err)
	}
	return t, nil
}

// UseRefreshToken marks the unused, unrevoked token with this hash used at
// now and inserts replacement, in one write transaction. A used or revoked
// token yields ErrConflict, an unknown one ErrNotFound; either way nothing
// is written.
func (db *DB) UseRefreshToken(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time) error {
	return db.inTx(ctx, func(c conn) error {
		// The session row first: every transaction that locks a session
		// and its refresh tokens (revoke-all, logout) takes them in this
		// order, so a rotation cannot deadlock with them on PostgreSQL.
		if err := touchSession(ctx, c, replacement, now); err != nil {
			return err
		}
		n, err := c.execN(ctx, `UPDATE refresh_tokens SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL`, ts(now), hash)
		if err != nil {
			return refreshErr("use refresh token", err)
		}
		if n == 0 {
			var one int
			err := c.queryRow(ctx, "SELECT 1 FROM refresh_tokens WHERE token_hash = ?", hash).Scan(&one)
			if err != nil {
				return refreshErr("use refresh token", err)
			}
			return permiso.Errorf(permiso.ECONFLICT, "Refresh token already used or revoked")
		}
		_, err = insertRefresh(ctx, c, replacement)
		return err
	})
}

// touchSession applies permiso.TouchSession in the rotation's transaction.
// Times are stored in one fixed-width UTC format, so MAX compares them.
func touchSession(ctx context.Context, c conn, replacement permiso.RefreshToken, now time.Time) error {
	_, err := c.exec(ctx, `UPDATE user_sessions SET last_activity = ?, expires_at = MAX(expires_at, ?) WHERE id = ?`,
		ts(now), ts(replacement.ExpiresAt), replacement.SessionID)
	if err != nil {
		return refreshErr("touch session", err)
	}
	return nil
}

// RevokeRefreshFamily revokes every unrevoked token of the family and
// returns how many were revoked.
func (db *DB) RevokeRefreshFamily(ctx context.Context, familyID uuid.UUID, reason string, now time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(c conn) (err error) {
		n, err = c.execN(ctx, `UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ?
			WHERE family_id = ? AND revoked_at IS NULL`, ts(now), reason, familyID)
		return refreshErr("revoke refresh family", err)
	})
	return n, err
}

// DeleteExpiredRefreshTokens removes tokens that expired before now.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error) {
	n, err := db.w().execN(ctx, "DELETE FROM refresh_tokens WHERE expires_at < ?", ts(now))
	return n, refreshErr("delete expired refresh tokens", err)
}

// revokeSessionTokens revokes the unrevoked refresh tokens of the sessions
// in ids.
func revokeSessionTokens(ctx context.Context, c conn, ids []uuid.UUID, reason string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ?
		WHERE session_id IN (SELECT value FROM json_each(?)) AND revoked_at IS NULL`,
		ts(now), reason, idsJSON(ids))
	return refreshErr("revoke session refresh tokens", err)
}

// CreateSigningKey stores k; a taken kid yields ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k permiso.SigningKey) (permiso.SigningKey, error) {
	k.CreatedAt = orNow(k.CreatedAt)
	_, err := db.w().exec(ctx, `INSERT INTO signing_keys
		(id, algorithm, private_key, public_key, created_at, retired_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, nonNilBytes(k.PrivateKey), nonNilBytes(k.PublicKey),
		ts(k.CreatedAt), tsPtr(k.RetiredAt), tsPtr(k.ExpiresAt))
	if err != nil {
		return permiso.SigningKey{}, errMap{op: "create signing key", exists: "Signing key already exists"}.wrap(err)
	}
	return k, nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ListSigningKeys returns the keys not expired at now, newest first.
func (db *DB) ListSigningKeys(ctx context.Context, now time.Time) ([]permiso.SigningKey, error) {
	rows, err := db.r().query(ctx, `SELECT id, algorithm, private_key, public_key, created_at, retired_at, expires_at
		FROM signing_keys WHERE expires_at IS NULL OR expires_at > ?
		ORDER BY created_at DESC, id DESC`, ts(now))
	if err != nil {
		return nil, errMap{op: "list signing keys"}.wrap(err)
	}
	defer rows.Close()
	var out []permiso.SigningKey
	for rows.Next() {
		var k permiso.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey,
			timeCol{&k.CreatedAt}, nullTimeCol{&k.RetiredAt}, nullTimeCol{&k.ExpiresAt}); err != nil {
			return nil, errMap{op: "list signing keys"}.wrap(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, errMap{op: "list signing keys"}.wrap(err)
	}
	return out, nil
}

// RetireSigningKeys retires every unretired key of the algorithm except
// keepID, setting RetiredAt = now and ExpiresAt = expiresAt.
func (db *DB) RetireSigningKeys(ctx context.Context, algorithm, keepID string, now, expiresAt time.Time) (int, error) {
	n, err := db.w().execN(ctx, `UPDATE signing_keys SET retired_at = ?, expires_at = ?
		WHERE algorithm = ? AND id <> ? AND retired_at IS NULL`, ts(now), ts(expiresAt), algorithm, keepID)
	return n, errMap{op: "retire signing keys"}.wrap(err)
}
