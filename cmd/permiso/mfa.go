package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
)

// rekeyPage is how many factors one page of the rekey walk reads.
const rekeyPage = 200

// cmdMFA is "mfa rekey": it re-seals every second-factor secret that is
// not sealed under the current MFA_ENCRYPTION_KEY (docs/mfa.md, "Secrets
// at rest"), so that the keys in MFA_PREVIOUS_ENCRYPTION_KEYS can be
// dropped afterwards. Servers may keep running: each secret is swapped
// with a compare-and-swap, and one changed meanwhile is left to the next
// run.
func cmdMFA(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("mfa", "mfa rekey", stdout)
	a, err := fs.open(ctx, args, env.openMigrated, "rekey")
	if a == nil {
		return err
	}
	defer a.Close()
	if _, err := a.ensureDevMFAKey(); err != nil {
		return err
	}
	if len(a.cfg.MFAEncryptionKey) == 0 {
		return errors.New("mfa rekey: MFA_ENCRYPTION_KEY is not set")
	}
	box, err := mfa.NewBox(a.cfg.MFAEncryptionKey, a.cfg.MFAPreviousEncryptionKeys...)
	if err != nil {
		return fmt.Errorf("mfa rekey: %w", err)
	}
	n, err := rekey(ctx, a.db, box)
	if err != nil {
		return fmt.Errorf("mfa rekey: %w", err)
	}
	fmt.Fprintf(stdout, "re-sealed %d of %d second-factor secrets under the current key (%d changed meanwhile; run again)\n", n.resealed, n.total, n.changed)
	return nil
}

type rekeyCount struct{ total, resealed, changed int }

// rekey walks every factor and re-seals those not under box's current
// key. A secret that no configured key opens is an error naming the user
// (never the secret).
func rekey(ctx context.Context, db permiso.MFAStore, box *mfa.Box) (rekeyCount, error) {
	var n rekeyCount
	var after uuid.UUID
	var afterKind string
	for {
		page, err := db.ListMFAFactorsAfter(ctx, after, afterKind, rekeyPage)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, f := range page {
			n.total++
			if box.Current(f.Secret) {
				continue
			}
			aad := mfa.AAD(f.UserID.String(), mfa.Kind(f.Kind))
			plain, err := box.Open(f.Secret, aad)
			if err != nil {
				return n, fmt.Errorf("the %s secret of user %s: %w", f.Kind, f.UserID, err)
			}
			sealed, err := box.Seal(plain, aad)
			if err != nil {
				return n, err
			}
			switch err := db.ReplaceMFASecret(ctx, f.UserID, f.Kind, f.Secret, sealed); {
			case err == nil:
				n.resealed++
			case errors.Is(err, permiso.ErrConflict), errors.Is(err, permiso.ErrNotFound):
				n.changed++
			default:
				return n, err
			}
		}
		last := page[len(page)-1]
		after, afterKind = last.UserID, last.Kind
	}
}
