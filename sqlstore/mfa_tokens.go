package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// MFATokens describes the mfa_tokens table (migration 6, docs/mfa.md):
// only the token's hash is stored; scopes are one space-separated,
// sorted text.
var MFATokens = NewTable("mfa_tokens", "mt", append(Fields[permiso.MFAToken]([]string{"token_hash", "created_at"},
	"token_hash", "user_id", "client_id", "enroll", "auth_time", "created_at", "expires_at", "used_at"),
	listCol("scopes", func(t *permiso.MFAToken) *[]string { return &t.Scopes }, scopesText),
)...)

// MFATokenMessages are the refusals about mfa_tokens.
var MFATokenMessages = Messages{NotFound: "MFA token not found", Exists: "MFA token already exists"}

// MFATokenSpentMessage refuses a token that was already exchanged.
const MFATokenSpentMessage = "MFA token already used"

func (s *Store) mfaTokenErr(op string, err error) error {
	return s.errOf(err, op, MFATokenMessages, false, "User or client not found")
}

// CreateMFAToken stores a new, unused mfa_token (CreatedAt defaults to
// now).
func (s *Store) CreateMFAToken(ctx context.Context, t permiso.MFAToken) error {
	t.CreatedAt = orNow(t.CreatedAt)
	t.UsedAt = nil
	_, err := s.exec(ctx, s.c.Pool(), MFATokens.Insert(), MFATokens.Args(s.d, &t)...)
	return s.mfaTokenErr("create mfa token", err)
}

// GetMFAToken returns the token with this hash, used or not.
func (s *Store) GetMFAToken(ctx context.Context, hash string) (permiso.MFAToken, error) {
	return s.getMFAToken(ctx, s.c.Reader(), hash)
}

func (s *Store) getMFAToken(ctx context.Context, q Querier, hash string) (permiso.MFAToken, error) {
	t, err := MFATokens.Scan(s.d, s.queryRow(ctx, q, MFATokens.Select()+" WHERE mt.token_hash = ?", hash))
	if err != nil {
		return permiso.MFAToken{}, s.mfaTokenErr("get mfa token", err)
	}
	return t, nil
}

// UseMFAToken marks the unused, unexpired token used, with one
// conditional UPDATE (a compare-and-swap); see permiso.MFATokenStore.
func (s *Store) UseMFAToken(ctx context.Context, hash string, now time.Time) error {
	return s.c.Write(ctx, func(q Querier) error {
		n, err := s.exec(ctx, q, `UPDATE mfa_tokens SET used_at = ?1
			WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1`, s.d.Time(now), hash)
		if err != nil {
			return s.mfaTokenErr("use mfa token", err)
		}
		if n == 1 {
			return nil
		}
		cur, err := s.getMFAToken(ctx, q, hash)
		if err != nil {
			return err
		}
		if cur.UsedAt != nil {
			return permiso.Errorf(permiso.ECONFLICT, "%s", MFATokenSpentMessage)
		}
		return notFound(MFATokenMessages.NotFound)
	})
}

// DeleteUserMFATokens removes every mfa_token of the user.
func (s *Store) DeleteUserMFATokens(ctx context.Context, userID uuid.UUID) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM mfa_tokens WHERE user_id = ?", userID)
	return int(n), s.mfaTokenErr("delete mfa tokens", err)
}

// DeleteExpiredMFATokens removes tokens that expired before before or were
// used.
func (s *Store) DeleteExpiredMFATokens(ctx context.Context, before time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM mfa_tokens WHERE expires_at < ? OR used_at IS NOT NULL", s.d.Time(before))
	return int(n), s.mfaTokenErr("delete expired mfa tokens", err)
}
