package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

const refreshColumns = `id, token_hash, user_id, client_id, session_id, family_id, parent_id,
	scopes, issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent`

func scanRefresh(row pgx.Row) (permiso.RefreshToken, error) {
	var t permiso.RefreshToken
	var scopes string
	err := row.Scan(&t.ID, &t.TokenHash, &t.UserID, &t.ClientID, &t.SessionID, &t.FamilyID,
		&t.ParentID, &scopes, &t.IssuedAt, &t.ExpiresAt, &t.UsedAt, &t.RevokedAt,
		&t.RevocationReason, &t.ClientIP, &t.UserAgent)
	if err != nil {
		return t, err
	}
	t.Scopes = strings.Fields(scopes)
	t.IssuedAt = utc(t.IssuedAt)
	t.ExpiresAt = utc(t.ExpiresAt)
	t.UsedAt = utcp(t.UsedAt)
	t.RevokedAt = utcp(t.RevokedAt)
	return t, nil
}

// insertRefresh inserts t (ID generated when zero, IssuedAt defaulting to
// the current time) and returns the stored row.
func insertRefresh(ctx context.Context, q querier, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	t = refreshDefaults(t)
	out, err := scanRefresh(q.QueryRow(ctx, `INSERT INTO refresh_tokens (id, token_hash, user_id,
		client_id, session_id, family_id, parent_id, scopes, issued_at, expires_at, used_at,
		revoked_at, revocation_reason, client_ip, user_agent)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
		RETURNING `+refreshColumns,
		t.ID, t.TokenHash, t.UserID, t.ClientID, t.SessionID, t.FamilyID, t.ParentID,
		strings.Join(permiso.SortedUnique(t.Scopes), " "), ts(t.IssuedAt), ts(t.ExpiresAt),
		tsp(t.UsedAt), tsp(t.RevokedAt), t.RevocationReason, t.ClientIP, t.UserAgent))
	if err != nil {
		return permiso.RefreshToken{}, mapErr(err, "refresh token", opWrite)
	}
	return out, nil
}

// refreshDefaults fills in a new token's id, family (its own id) and issue
// time when they are zero.
func refreshDefaults(t permiso.RefreshToken) permiso.RefreshToken {
	if t.ID == uuid.Nil {
		t.ID = uuid.New()
	}
	if t.FamilyID == uuid.Nil {
		t.FamilyID = t.ID
	}
	if t.IssuedAt.IsZero() {
		t.IssuedAt = time.Now()
	}
	return t
}

// CreateRefreshToken stores t; an unknown user, session or client yields
// ErrNotFound, a duplicate hash ErrAlreadyExists. Scopes are stored sorted
// and de-duplicated. A zero FamilyID starts a new family (the token's id).
func (db *DB) CreateRefreshToken(ctx context.Context, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	return insertRefresh(ctx, db.q, t)
}

// GetRefreshTokenByHash returns the token with the given hash.
func (db *DB) GetRefreshTokenByHash(ctx context.Context, hash string) (permiso.RefreshToken, error) {
	t, err := scanRefresh(db.q.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return permiso.RefreshToken{}, mapErr(err, "refresh token", opRead)
	}
	return t, nil
}

// UseRefreshToken marks the unused, unrevoked token with the given hash as
// used at now with one conditional UPDATE (a compare-and-swap), then inserts
// replacement, in one transaction. If no row matched it returns ErrConflict
// (already used or revoked) or ErrNotFound (no such token) and writes
// nothing, so of any number of concurrent callers exactly one succeeds.
//
// A rotation whose BEGIN finds its connection lost (one the server ended
// while it sat in the pool) is sent again on another connection: nothing
// of it has run.
func (db *DB) UseRefreshToken(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time) error {
	t := refreshDefaults(replacement)
	for attempt := 0; ; attempt++ {
		beginLost, err := db.useRefreshToken(ctx, hash, t, now)
		if !beginLost || attempt >= int(db.cfg.MaxConns) || ctx.Err() != nil {
			return err
		}
	}
}

// useRefreshToken is one attempt of UseRefreshToken; beginLost reports
// that its BEGIN failed because the connection was lost.
func (db *DB) useRefreshToken(ctx context.Context, hash string, t permiso.RefreshToken, now time.Time) (beginLost bool, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr(err, "transaction", opRead)
	}
	defer conn.Release()
	// One round trip for the whole rotation (one short transaction,
	// docs/benchmarks.md), then one for COMMIT or ROLLBACK. The session row comes
	// first: every transaction that locks a session and its refresh tokens
	// (revoke-all, logout) takes them in this order, so a rotation cannot
	// deadlock with them.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(touchSessionSQL, t.SessionID, ts(now), ts(t.ExpiresAt))
	b.Queue(useRefreshSQL, t.ID, t.TokenHash, t.UserID, t.ClientID, t.SessionID, t.FamilyID, t.ParentID,
		strings.Join(permiso.SortedUnique(t.Scopes), " "), ts(t.IssuedAt), ts(t.ExpiresAt),
		tsp(t.UsedAt), tsp(t.RevokedAt), t.RevocationReason, t.ClientIP, t.UserAgent, ts(now), hash)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $1)`, hash)
	var inserted int64
	var exists bool
	br := conn.SendBatch(ctx, b)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			beginLost = connectionLost(err)
			return mapErr(err, "transaction", opWrite)
		}
		if _, err := br.Exec(); err != nil {
			return mapErr(err, "session", opWrite)
		}
		tag, err := br.Exec()
		if err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		inserted = tag.RowsAffected()
		if err := br.QueryRow().Scan(&exists); err != nil {
			return mapErr(err, "refresh token", opRead)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapErr(cerr, "refresh token", opWrite)
	}
	end := "COMMIT"
	if err != nil || inserted == 0 {
		end = "ROLLBACK" // also after an error: the transaction is aborted
	}
	if _, eerr := conn.Exec(context.WithoutCancel(ctx), end); eerr != nil && err == nil {
		err = mapErr(eerr, "transaction", opWrite)
	}
	switch {
	case err != nil:
		return beginLost, err
	case inserted == 0 && !exists:
		return false, permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RefreshTokenMessages.NotFound)
	case inserted == 0:
		return false, permiso.Errorf(permiso.ECONFLICT, "refresh token already used or revoked")
	}
	return false, nil
}

// useRefreshSQL marks the presented token ($17) used at $16 and inserts its
// replacement in one statement: the INSERT reads the UPDATE's RETURNING,
// so nothing is inserted when the token is unknown, used or revoked, and
// of concurrent rotations exactly one matches (the row lock of the UPDATE).
const useRefreshSQL = `WITH used AS (
	UPDATE refresh_tokens SET used_at = $16
	WHERE token_hash = $17 AND used_at IS NULL AND revoked_at IS NULL
	RETURNING 1)
INSERT INTO refresh_tokens (id, token_hash, user_id, client_id, session_id, family_id, parent_id,
	scopes, issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent)
SELECT $1::uuid, $2::text, $3::uuid, $4::uuid, $5::uuid, $6::uuid, $7::uuid, $8::text,
	$9::timestamptz, $10::timestamptz, $11::timestamptz, $12::timestamptz, $13::text, $14::text, $15::text
FROM used`

const touchSessionSQL = `UPDATE user_sessions SET last_activity = $2, expires_at = GREATEST(expires_at, $3) WHERE id = $1`

// touchSession applies permiso.TouchSession in the rotation's transaction.
func touchSession(ctx context.Context, tx pgx.Tx, replacement permiso.RefreshToken, now time.Time) error {
	_, err := tx.Exec(ctx, touchSessionSQL, replacement.SessionID, ts(now), ts(replacement.ExpiresAt))
	if err != nil {
		return mapErr(err, "session", opWrite)
	}
	return nil
}

// RevokeRefreshFamily revokes every unrevoked token of the family and
// returns how many were revoked.
func (db *DB) RevokeRefreshFamily(ctx context.Context, familyID uuid.UUID, reason string, now time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2, revocation_reason = $3
		WHERE family_id = $1 AND revoked_at IS NULL`, familyID, ts(now), reason)
	if err != nil {
		return 0, mapErr(err, "refresh tokens", opWrite)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredRefreshTokens removes tokens that expired before now.
func (db *DB) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, ts(now))
	if err != nil {
		return 0, mapErr(err, "refresh tokens", opDelete)
	}
	return int(tag.RowsAffected()), nil
}

const keyColumns = `id, algorithm, private_key, public_key, created_at, retired_at, expires_at`

func scanKey(row pgx.Row) (permiso.SigningKey, error) {
	var k permiso.SigningKey
	err := row.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &k.CreatedAt, &k.RetiredAt, &k.ExpiresAt)
	k.CreatedAt = utc(k.CreatedAt)
	k.RetiredAt = utcp(k.RetiredAt)
	k.ExpiresAt = utcp(k.ExpiresAt)
	return k, err
}

// CreateSigningKey stores k (CreatedAt defaulting to the current time); a
// taken kid yields ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k permiso.SigningKey) (permiso.SigningKey, error) {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	out, err := scanKey(db.q.QueryRow(ctx, `INSERT INTO signing_keys (id, algorithm, private_key,
		public_key, created_at, retired_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7)
		RETURNING `+keyColumns, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, ts(k.CreatedAt),
		tsp(k.RetiredAt), tsp(k.ExpiresAt)))
	if err != nil {
		return permiso.SigningKey{}, mapErr(err, "signing key", opWrite)
	}
	return out, nil
}

// ListSigningKeys returns keys not expired at now, newest first.
func (db *DB) ListSigningKeys(ctx context.Context, now time.Time) ([]permiso.SigningKey, error) {
	rows, err := db.q.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys
		WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at DESC, id DESC`, ts(now))
	if err != nil {
		return nil, mapErr(err, "signing keys", opRead)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.SigningKey, error) { return scanKey(r) })
	if err != nil {
		return nil, mapErr(err, "signing keys", opRead)
	}
	return keys, nil
}

// RetireSigningKeys retires every unretired key of the algorithm except
// keepID, setting RetiredAt = now and ExpiresAt = expiresAt.
func (db *DB) RetireSigningKeys(ctx context.Context, algorithm, keepID string, now, expiresAt time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `UPDATE signing_keys SET retired_at = $3, expires_at = $4
		WHERE algorithm = $1 AND id <> $2 AND retired_at IS NULL`, algorithm, keepID, ts(now), ts(expiresAt))
	if err != nil {
		return 0, mapErr(err, "signing keys", opWrite)
	}
	return int(tag.RowsAffected()), nil
}
