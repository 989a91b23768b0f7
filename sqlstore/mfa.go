package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The multi-factor tables (migration 5, docs/mfa.md): mfa_factors, one row
// per user and kind with the sealed secret, and mfa_recovery_codes, the
// hashes of the user's recovery codes.

// MFAFactors describes the mfa_factors table (key: user_id and kind).
var MFAFactors = NewTable("mfa_factors", "mf", Fields[permiso.MFAFactor]([]string{"user_id", "kind"},
	"user_id", "kind", "secret", "created_at", "confirmed_at")...)

// MFAMessages are the refusals about second factors.
var MFAMessages = Messages{NotFound: "MFA factor not found", Exists: "MFA factor already exists"}

// MFA refusals that are not about a missing row.
const (
	MFAConfirmedMessage    = "MFA factor already confirmed"
	RecoveryCodeMessage    = "Recovery code not found or already used"
	mfaUserMissingMessage  = "User not found"
	recoveryCodeOpMessages = "recovery codes"
)

func (s *Store) mfaErr(op string, err error) error {
	return s.errOf(err, op, MFAMessages, false, mfaUserMissingMessage)
}

// PutPendingMFAFactor upserts a pending factor: the conflict clause
// replaces a pending row only, so a confirmed one leaves the statement
// without effect (0 rows), which is ErrConflict.
func (s *Store) PutPendingMFAFactor(ctx context.Context, f permiso.MFAFactor) (permiso.MFAFactor, error) {
	f.CreatedAt = orNow(f.CreatedAt)
	f.ConfirmedAt = nil
	n, err := s.exec(ctx, s.c.Pool(), MFAFactors.Insert()+
		" ON CONFLICT (user_id, kind) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at"+
		" WHERE mfa_factors.confirmed_at IS NULL", MFAFactors.Args(s.d, &f)...)
	if err != nil {
		return permiso.MFAFactor{}, s.mfaErr("put mfa factor", err)
	}
	if n == 0 {
		return permiso.MFAFactor{}, permiso.Errorf(permiso.ECONFLICT, "%s", MFAConfirmedMessage)
	}
	return s.GetMFAFactor(ctx, f.UserID, f.Kind)
}

// GetMFAFactor returns the user's factor of this kind.
func (s *Store) GetMFAFactor(ctx context.Context, userID uuid.UUID, kind string) (permiso.MFAFactor, error) {
	return s.getMFAFactor(ctx, s.c.Reader(), userID, kind)
}

func (s *Store) getMFAFactor(ctx context.Context, q Querier, userID uuid.UUID, kind string) (permiso.MFAFactor, error) {
	f, err := MFAFactors.Scan(s.d, s.queryRow(ctx, q, MFAFactors.Select()+" WHERE mf.user_id = ? AND mf.kind = ?", userID, kind))
	if err != nil {
		return permiso.MFAFactor{}, s.mfaErr("get mfa factor", err)
	}
	return f, nil
}

// ListMFAFactors returns the user's factors by kind.
func (s *Store) ListMFAFactors(ctx context.Context, userID uuid.UUID) ([]permiso.MFAFactor, error) {
	out, err := selectAll(ctx, s, s.c.Reader(), MFAFactors, MFAFactors.Select()+" WHERE mf.user_id = ? ORDER BY mf.kind", userID)
	return out, s.mfaErr("list mfa factors", err)
}

// ConfirmMFAFactor confirms the pending factor and sets the recovery codes
// in one transaction.
func (s *Store) ConfirmMFAFactor(ctx context.Context, userID uuid.UUID, kind string, at time.Time, codeHashes []string) (permiso.MFAFactor, error) {
	var out permiso.MFAFactor
	err := s.c.Write(ctx, func(q Querier) error {
		n, err := s.exec(ctx, q, "UPDATE mfa_factors SET confirmed_at = ? WHERE user_id = ? AND kind = ? AND confirmed_at IS NULL",
			s.d.Time(at), userID, kind)
		if err != nil {
			return s.mfaErr("confirm mfa factor", err)
		}
		cur, err := s.getMFAFactor(ctx, q, userID, kind)
		if err != nil {
			return err
		}
		if n == 0 {
			return permiso.Errorf(permiso.ECONFLICT, "%s", MFAConfirmedMessage)
		}
		if err := s.replaceRecoveryCodes(ctx, q, userID, codeHashes, at); err != nil {
			return err
		}
		out = cur
		return nil
	})
	return out, err
}

// DeleteMFAFactor removes one factor, and the recovery codes with the
// last confirmed one.
func (s *Store) DeleteMFAFactor(ctx context.Context, userID uuid.UUID, kind string) error {
	return s.c.Write(ctx, func(q Querier) error {
		n, err := s.exec(ctx, q, "DELETE FROM mfa_factors WHERE user_id = ? AND kind = ?", userID, kind)
		if err != nil {
			return s.mfaErr("delete mfa factor", err)
		}
		if n == 0 {
			return notFound(MFAMessages.NotFound)
		}
		_, err = s.exec(ctx, q, "DELETE FROM mfa_recovery_codes WHERE user_id = ?1 AND NOT EXISTS"+
			" (SELECT 1 FROM mfa_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL)", userID)
		return s.mfaErr("delete mfa factor", err)
	})
}

// DeleteUserMFA removes all of the user's factors and codes.
func (s *Store) DeleteUserMFA(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int64
	err := s.c.Write(ctx, func(q Querier) error {
		var err error
		if n, err = s.exec(ctx, q, "DELETE FROM mfa_factors WHERE user_id = ?", userID); err != nil {
			return s.mfaErr("reset mfa", err)
		}
		_, err = s.exec(ctx, q, "DELETE FROM mfa_recovery_codes WHERE user_id = ?", userID)
		return s.mfaErr("reset mfa", err)
	})
	return int(n), err
}

// ReplaceRecoveryCodes swaps the user's recovery codes for new ones.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, codeHashes []string, at time.Time) error {
	return s.c.Write(ctx, func(q Querier) error { return s.replaceRecoveryCodes(ctx, q, userID, codeHashes, at) })
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, q Querier, userID uuid.UUID, codeHashes []string, at time.Time) error {
	if _, err := s.exec(ctx, q, "DELETE FROM mfa_recovery_codes WHERE user_id = ?", userID); err != nil {
		return s.mfaErr("replace "+recoveryCodeOpMessages, err)
	}
	at = orNow(at)
	for _, h := range codeHashes {
		if _, err := s.exec(ctx, q, "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
			userID, h, s.d.Time(at)); err != nil {
			return s.errOf(err, "replace "+recoveryCodeOpMessages, Messages{Exists: "Recovery code repeated"}, false, mfaUserMissingMessage)
		}
	}
	return nil
}

// UseRecoveryCode spends one unused code with a conditional UPDATE.
func (s *Store) UseRecoveryCode(ctx context.Context, userID uuid.UUID, codeHash string, at time.Time) error {
	n, err := s.exec(ctx, s.c.Pool(), "UPDATE mfa_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
		s.d.Time(orNow(at)), userID, codeHash)
	if err != nil {
		return s.mfaErr("use recovery code", err)
	}
	if n == 0 {
		return notFound(RecoveryCodeMessage)
	}
	return nil
}

// RecoveryCodeUsable reports whether the user has this unused code.
func (s *Store) RecoveryCodeUsable(ctx context.Context, userID uuid.UUID, codeHash string) (bool, error) {
	var n int
	err := s.queryRow(ctx, s.c.Reader(), "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
		userID, codeHash).Scan(&n)
	return n > 0, s.mfaErr("read "+recoveryCodeOpMessages, err)
}

// CountRecoveryCodes counts the user's unused codes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	err := s.queryRow(ctx, s.c.Reader(), "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL", userID).Scan(&n)
	return n, s.mfaErr("count "+recoveryCodeOpMessages, err)
}

// CountConfirmedMFAFactors counts confirmed factors of all users.
func (s *Store) CountConfirmedMFAFactors(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.c.Reader(), "SELECT count(*) FROM mfa_factors WHERE confirmed_at IS NOT NULL").Scan(&n)
	return n, s.mfaErr("count mfa factors", err)
}

// ListMFAFactorsAfter pages through every factor by (user_id, kind).
func (s *Store) ListMFAFactorsAfter(ctx context.Context, afterUser uuid.UUID, afterKind string, limit int) ([]permiso.MFAFactor, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := selectAll(ctx, s, s.c.Reader(), MFAFactors, MFAFactors.Select()+
		" WHERE mf.user_id > ?1 OR (mf.user_id = ?1 AND mf.kind > ?2) ORDER BY mf.user_id, mf.kind LIMIT ?3", afterUser, afterKind, limit)
	return out, s.mfaErr("list mfa factors", err)
}

// ReplaceMFASecret re-seals one factor's secret with a compare-and-swap.
func (s *Store) ReplaceMFASecret(ctx context.Context, userID uuid.UUID, kind, oldSecret, newSecret string) error {
	return s.c.Write(ctx, func(q Querier) error {
		n, err := s.exec(ctx, q, "UPDATE mfa_factors SET secret = ? WHERE user_id = ? AND kind = ? AND secret = ?", newSecret, userID, kind, oldSecret)
		if err != nil {
			return s.mfaErr("replace mfa secret", err)
		}
		if n == 1 {
			return nil
		}
		if _, err := s.getMFAFactor(ctx, q, userID, kind); err != nil {
			return err
		}
		return permiso.Errorf(permiso.ECONFLICT, "MFA factor changed meanwhile")
	})
}
