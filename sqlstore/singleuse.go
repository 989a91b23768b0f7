package sqlstore

import (
	"context"
	"time"

	"github.com/permiso/permiso"
)

// singleUse describes a table of single-use secrets (authorization codes,
// mfa_tokens): a row is keyed by the secret's hash and marked used once.
type singleUse[T any] struct {
	t      *Table[T]
	byHash string // the WHERE clause that selects a row by its hash
	usedAt func(T) *time.Time
	m      Messages
	// missing refuses a row whose user, client or session is missing
	// (Store.errOf).
	missing string
	// spent refuses a row that was already used.
	spent string
}

// err is the error of op on u's table (Store.errOf).
func (u *singleUse[T]) err(s *Store, op string, err error) error {
	return s.errOf(err, op, u.m, false, u.missing)
}

// get returns the row with this hash, used or not.
func (u *singleUse[T]) get(ctx context.Context, s *Store, q Querier, op, hash string) (T, error) {
	v, err := u.t.Scan(s.d, s.queryRow(ctx, q, u.t.Select()+u.byHash, hash))
	if err != nil {
		var zero T
		return zero, u.err(s, op, err)
	}
	return v, nil
}

// spend marks the unused, unexpired row with this hash used by update, one
// conditional UPDATE (a compare-and-swap) with args, in a write
// transaction. When update changes no row, the row is read again in the
// same transaction: one already used is a conflict (spent), one unknown or
// expired ErrNotFound. A database error is named op.
func (u *singleUse[T]) spend(ctx context.Context, s *Store, op, hash, update string, args ...any) error {
	return s.c.Write(ctx, func(q Querier) error {
		n, err := s.exec(ctx, q, update, args...)
		if err != nil {
			return u.err(s, op, err)
		}
		if n == 1 {
			return nil
		}
		cur, err := u.get(ctx, s, q, op, hash)
		if err != nil {
			return err
		}
		if u.usedAt(cur) != nil {
			return &permiso.Error{Code: permiso.ECONFLICT, Message: u.spent}
		}
		return notFound(u.m.NotFound)
	})
}
