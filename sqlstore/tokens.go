package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// RefreshTokens describes the refresh_tokens table. Scopes are stored as
// one space-separated, sorted text.
var RefreshTokens = NewTable("refresh_tokens", "rt", append(Fields[permiso.RefreshToken]([]string{"id"},
	"id", "token_hash", "user_id", "client_id", "session_id", "family_id", "parent_id", "issued_at",
	"expires_at", "used_at", "revoked_at", "revocation_reason", "client_ip", "user_agent"),
	listCol("scopes", func(t *permiso.RefreshToken) *[]string { return &t.Scopes }, scopesText),
)...)

// listCol is the column name holding the list field as one
// space-separated text, written by text (spaced: in order; scopesText:
// sorted, without repeats) and read back by fieldsCol.
func listCol[T any](name string, field func(*T) *[]string, text func([]string) string) Col[T] {
	return Col[T]{Name: name, Field: func(v *T) any { return field(v) },
		Arg:  func(_ Dialect, v *T) any { return text(*field(v)) },
		Dest: func(_ Dialect, v *T) any { return &fieldsCol{field(v)} }}
}

// spaced is the list as one text, its values separated by spaces in their
// order (redirect URIs, grant types, amr: RFC 8176 values hold no space).
func spaced(l []string) string { return strings.Join(l, " ") }

// scopesText is the set of scopes as one text: sorted, without repeats,
// separated by spaces.
func scopesText(scopes []string) string { return strings.Join(permiso.SortedUnique(scopes), " ") }

// fieldsCol scans a space-separated text column into a list.
type fieldsCol struct{ p *[]string }

func (c *fieldsCol) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*c.p = strings.Fields(v)
	case []byte:
		*c.p = strings.Fields(string(v))
	case nil:
		*c.p = nil
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a list", src)
	}
	return nil
}

// SigningKeys describes the signing_keys table.
var SigningKeys = NewTable("signing_keys", "k", append(Fields[permiso.SigningKey]([]string{"id", "created_at"},
	"id", "algorithm", "created_at", "retired_at", "expires_at"),
	Col[permiso.SigningKey]{Name: "private_key", Field: func(k *permiso.SigningKey) any { return &k.PrivateKey },
		Arg: func(_ Dialect, k *permiso.SigningKey) any { return nonNil(k.PrivateKey) }},
	Col[permiso.SigningKey]{Name: "public_key", Field: func(k *permiso.SigningKey) any { return &k.PublicKey },
		Arg: func(_ Dialect, k *permiso.SigningKey) any { return nonNil(k.PublicKey) }},
)...)

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *Store) refreshErr(op string, err error) error {
	return s.errOf(err, op, RefreshTokenMessages, false, "User, session or client not found")
}

// RefreshDefaults fills in a new token's id, family (its own id) and issue
// time when they are zero.
func RefreshDefaults(t permiso.RefreshToken) permiso.RefreshToken {
	if t.ID == uuid.Nil {
		t.ID = newID()
	}
	if t.FamilyID == uuid.Nil {
		t.FamilyID = t.ID
	}
	t.IssuedAt = orNow(t.IssuedAt)
	return t
}

// insertRefresh inserts t (defaults filled) and returns the stored row.
func (s *Store) insertRefresh(ctx context.Context, q Querier, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	t = RefreshDefaults(t)
	out, err := RefreshTokens.Scan(s.d, s.queryRow(ctx, q, RefreshTokens.Insert()+" RETURNING "+RefreshTokens.Names(),
		RefreshTokens.Args(s.d, &t)...))
	if err != nil {
		return permiso.RefreshToken{}, s.refreshErr("create refresh token", err)
	}
	return out, nil
}

// addRefresh inserts t (defaults filled) without reading it back: the
// rotation's replacement, whose stored form nobody asks for.
func (s *Store) addRefresh(ctx context.Context, q Querier, t permiso.RefreshToken) error {
	t = RefreshDefaults(t)
	_, err := s.exec(ctx, q, RefreshTokens.Insert(), RefreshTokens.Args(s.d, &t)...)
	return s.refreshErr("create refresh token", err)
}

// CreateRefreshToken stores t; an unknown user, session or client yields
// ErrNotFound, a duplicate hash ErrAlreadyExists. Scopes are stored sorted
// and de-duplicated. A zero FamilyID starts a new family (the token's id).
func (s *Store) CreateRefreshToken(ctx context.Context, t permiso.RefreshToken) (permiso.RefreshToken, error) {
	return s.insertRefresh(ctx, s.c.Pool(), t)
}

// GetRefreshTokenByHash returns the token with this hash, used or not.
func (s *Store) GetRefreshTokenByHash(ctx context.Context, hash string) (permiso.RefreshToken, error) {
	t, err := RefreshTokens.Scan(s.d, s.queryRow(ctx, s.c.Reader(), RefreshTokens.Select()+" WHERE rt.token_hash = ?", hash))
	if err != nil {
		return permiso.RefreshToken{}, s.refreshErr("get refresh token", err)
	}
	return t, nil
}

// refreshSessionSQL selects a refresh token by hash with its session (a
// token's session_id is NOT NULL and cascades, so the join finds it).
var refreshSessionSQL = "SELECT " + RefreshTokens.List() + ", " + Sessions.List() + " FROM " + RefreshTokens.From() +
	" JOIN " + Sessions.From() + " ON us.id = rt.session_id WHERE rt.token_hash = ?"

// GetRefreshTokenSession returns the token with this hash and its
// session, in one statement.
func (s *Store) GetRefreshTokenSession(ctx context.Context, hash string) (permiso.RefreshToken, permiso.Session, error) {
	var t permiso.RefreshToken
	var sess permiso.Session
	err := s.queryRow(ctx, s.c.Reader(), refreshSessionSQL, hash).Scan(RefreshTokens.Dest(s.d, &t, Sessions.Dest(s.d, &sess)...)...)
	if err != nil {
		return permiso.RefreshToken{}, permiso.Session{}, s.refreshErr("get refresh token", err)
	}
	RefreshTokens.Normalize(&t)
	Sessions.Normalize(&sess)
	return t, sess, nil
}

// TouchSessionSQL applies permiso.TouchSession in a rotation: the
// session's last activity becomes ?1 and its expiry moves forward to ?2
// (never back).
const TouchSessionSQL = `UPDATE user_sessions SET last_activity = ?,
	expires_at = CASE WHEN expires_at < ?2 THEN ?2 ELSE expires_at END WHERE id = ?3`

// UseRefreshToken marks the unused, unrevoked token with this hash used at
// now (one conditional UPDATE: of concurrent callers exactly one matches)
// and inserts replacement, in one transaction. A used or revoked token
// yields ErrConflict, an unknown one ErrNotFound; either way nothing is
// written.
func (s *Store) UseRefreshToken(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time) error {
	return s.spendRefresh(ctx, hash, replacement, now, "use refresh token", RefreshTokenSpentMessage,
		`UPDATE refresh_tokens SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL`, s.d.Time(now), hash)
}

// UseRefreshTokenGrace spends the one grace retry of a rotated token: one
// conditional UPDATE revokes it (reason permiso.RevocationGraceUsed) when it
// was used at or after usedSince, is not revoked and no replacement of it
// (a token of its session whose parent it is) has been used, and
// replacement is inserted, in one transaction. Otherwise it returns
// ErrConflict (or ErrNotFound for an unknown hash) and writes nothing.
//
// The replacements are looked up through the session (session_id is
// indexed, parent_id is not). The session row is locked first
// (spendRefresh), as by every rotation, which uses a replacement: the
// UPDATE, a statement of its own, sees any such use committed before it
// got the lock (PostgreSQL's READ COMMITTED takes a snapshot per
// statement; SQLite runs one write transaction at a time).
func (s *Store) UseRefreshTokenGrace(ctx context.Context, hash string, replacement permiso.RefreshToken, usedSince, now time.Time) error {
	return s.spendRefresh(ctx, hash, replacement, now, "use refresh token grace", GraceSpentMessage,
		`UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ?
			WHERE token_hash = ? AND used_at IS NOT NULL AND used_at >= ? AND revoked_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.session_id = refresh_tokens.session_id
					AND c.parent_id = refresh_tokens.id AND c.used_at IS NOT NULL)`,
		s.d.Time(now), permiso.RevocationGraceUsed, hash, s.d.Time(usedSince))
}

// spendRefresh is the transaction of UseRefreshToken and
// UseRefreshTokenGrace: the session touched, then update (with args), the
// conditional UPDATE that spends the token with this hash, then
// replacement inserted. When update changes no row it returns ErrConflict
// with spent (ErrNotFound for an unknown hash) and writes nothing; an
// error of update is reported as op.
func (s *Store) spendRefresh(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time, op, spent, update string, args ...any) error {
	return s.c.Write(ctx, func(q Querier) error {
		// The session row first: every transaction that locks a session
		// and its refresh tokens (revoke-all, logout) takes them in this
		// order, so a rotation cannot deadlock with them.
		if err := s.touchSession(ctx, q, replacement, now); err != nil {
			return err
		}
		n, err := s.exec(ctx, q, update, args...)
		if err != nil {
			return s.refreshErr(op, err)
		}
		if n == 0 {
			if err := s.refreshExists(ctx, q, hash); err != nil {
				return err
			}
			return permiso.Errorf(permiso.ECONFLICT, "%s", spent)
		}
		return s.addRefresh(ctx, q, replacement)
	})
}

// refreshExists returns ErrNotFound unless a token has this hash.
func (s *Store) refreshExists(ctx context.Context, q Querier, hash string) error {
	var one int
	err := s.queryRow(ctx, q, "SELECT 1 FROM refresh_tokens WHERE token_hash = ?", hash).Scan(&one)
	return s.refreshErr("use refresh token", err)
}

func (s *Store) touchSession(ctx context.Context, q Querier, replacement permiso.RefreshToken, now time.Time) error {
	_, err := s.exec(ctx, q, TouchSessionSQL, s.d.Time(now), s.d.Time(replacement.ExpiresAt), replacement.SessionID)
	return s.sessionErr("touch session", err)
}

// RevokeRefreshFamily revokes every unrevoked token of the family and
// returns how many were revoked.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID uuid.UUID, reason string, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), `UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ?
		WHERE family_id = ? AND revoked_at IS NULL`, s.d.Time(now), reason, familyID)
	return int(n), s.refreshErr("revoke refresh family", err)
}

// DeleteExpiredRefreshTokens removes tokens that expired before now.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM refresh_tokens WHERE expires_at < ?", s.d.Time(now))
	return int(n), s.refreshErr("delete expired refresh tokens", err)
}

// CreateSigningKey stores k (CreatedAt defaulting to the current time); a
// taken kid yields ErrAlreadyExists.
func (s *Store) CreateSigningKey(ctx context.Context, k permiso.SigningKey) (permiso.SigningKey, error) {
	k.CreatedAt = orNow(k.CreatedAt)
	out, err := SigningKeys.Scan(s.d, s.queryRow(ctx, s.c.Pool(), SigningKeys.Insert()+" RETURNING "+SigningKeys.Names(),
		SigningKeys.Args(s.d, &k)...))
	if err != nil {
		return permiso.SigningKey{}, s.errOf(err, "create signing key", SigningKeyMessages, false, "")
	}
	return out, nil
}

// ListSigningKeys returns the keys not expired at now, newest first.
func (s *Store) ListSigningKeys(ctx context.Context, now time.Time) ([]permiso.SigningKey, error) {
	out, err := selectAll(ctx, s, s.c.Reader(), SigningKeys, SigningKeys.Select()+
		" WHERE k.expires_at IS NULL OR k.expires_at > ? ORDER BY k.created_at DESC, k.id DESC", s.d.Time(now))
	return out, s.errOf(err, "list signing keys", Messages{}, false, "")
}

// RetireSigningKeys retires every unretired key of the algorithm except
// keepID, setting RetiredAt = now and ExpiresAt = expiresAt.
func (s *Store) RetireSigningKeys(ctx context.Context, algorithm, keepID string, now, expiresAt time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), `UPDATE signing_keys SET retired_at = ?, expires_at = ?
		WHERE algorithm = ? AND id <> ? AND retired_at IS NULL`, s.d.Time(now), s.d.Time(expiresAt), algorithm, keepID)
	return int(n), s.errOf(err, "retire signing keys", Messages{}, false, "")
}
