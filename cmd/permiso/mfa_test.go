package main

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/sqlite"
)

// TestMFARekey: secrets sealed under a key that became previous are
// re-sealed under the current one by "permiso mfa rekey" and still open;
// a second run has nothing left to do.
func TestMFARekey(t *testing.T) {
	env := baseEnv(t)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	env["MFA_ENCRYPTION_KEY"] = hex.EncodeToString(newKey)
	env["MFA_PREVIOUS_ENCRYPTION_KEYS"] = hex.EncodeToString(oldKey)
	if _, stderr, err := runCmd(t, env, "", "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, stderr)
	}
	ctx := t.Context()
	db, err := sqlite.Open(ctx, strings.TrimPrefix(env["DATABASE_URL"], "sqlite://"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	oldBox, _ := mfa.NewBox(oldKey)
	now := time.Now().UTC()
	var users []permiso.User
	for _, name := range []string{"ada", "bob", "cyrus"} {
		u, err := db.CreateUser(ctx, permiso.User{Username: name, Email: name + "@example.com", PasswordHash: "x", IsActive: true,
			PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := oldBox.Seal([]byte("secret-"+name), mfa.AAD(u.ID.String(), mfa.KindTOTP))
		if _, err := db.PutPendingMFAFactor(ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: sealed}); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	out, stderr, err := runCmd(t, env, "", "mfa", "rekey")
	if err != nil || !strings.Contains(out, "re-sealed 3 of 3") {
		t.Fatalf("mfa rekey: %q, %v\n%s", out, err, stderr)
	}
	newBox, _ := mfa.NewBox(newKey)
	for _, u := range users {
		f, err := db.GetMFAFactor(ctx, u.ID, "totp")
		if err != nil {
			t.Fatal(err)
		}
		plain, err := newBox.Open(f.Secret, mfa.AAD(u.ID.String(), mfa.KindTOTP))
		if err != nil || string(plain) != "secret-"+u.Username {
			t.Errorf("%s after rekey: %q, %v", u.Username, plain, err)
		}
	}
	if out, _, err := runCmd(t, env, "", "mfa", "rekey"); err != nil || !strings.Contains(out, "re-sealed 0 of 3") {
		t.Errorf("second run: %q, %v", out, err)
	}
	if _, _, err := runCmd(t, env, "", "mfa", "rotate"); err == nil {
		t.Error("mfa rotate accepted")
	}
}
