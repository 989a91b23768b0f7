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

// mfaTokenUse is mfa_tokens as a table of single-use secrets.
var mfaTokenUse = &singleUse[permiso.MFAToken]{t: MFATokens, byHash: " WHERE mt.token_hash = ?",
	usedAt: func(t permiso.MFAToken) *time.Time { return t.UsedAt }, m: MFATokenMessages,
	missing: "User or client not found", spent: MFATokenSpentMessage}

func (s *Store) mfaTokenErr(op string, err error) error {
	return mfaTokenUse.err(s, op, err)
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
	return mfaTokenUse.get(ctx, s, s.c.Reader(), "get mfa token", hash)
}

// UseMFAToken marks the unused, unexpired token used, with one
// conditional UPDATE (a compare-and-swap); see permiso.MFATokenStore.
func (s *Store) UseMFAToken(ctx context.Context, hash string, now time.Time) error {
	return mfaTokenUse.spend(ctx, s, "use mfa token", hash, `UPDATE mfa_tokens SET used_at = ?1
		WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1`, s.d.Time(now), hash)
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
