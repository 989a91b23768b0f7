package oauth2_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// TestPendingSignIn: a pending sign-in (docs/oidc.md, "Second factor")
// opens only with its binding, until it expires, for an active user whose
// password did not change; it is spent once; acr follows amr.
func TestPendingSignIn(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) { pendingSignIn(t, db) })
}

func pendingSignIn(t *testing.T, db permiso.Store) {
	box := testwire.Box(t, 0x24)
	e := newEnvOn(t, db, func(_ *oauth2.Config, deps *oauth2.Deps) {
		deps.OIDC = db
		deps.MFA = oauth2.MFADeps{Store: db, Box: box, Once: inprocess.NewOnce(inprocess.WithNow(deps.Now))}
	})
	u := e.createUser("pia", goodPassword, permiso.RoleUser)
	cookie, err := e.svc.BeginSecondStep(&oauth2.SecondStepRequired{User: u, AuthTime: e.clock.Now()}, "bind-1", uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.PendingSignIn(e.ctx, cookie, "bind-2"); err != oauth2.ErrPendingSignInGone {
		t.Errorf("another binding: %v", err)
	}
	if _, _, err := e.svc.PendingSignIn(e.ctx, cookie[:len(cookie)-2]+"AA", "bind-1"); err != oauth2.ErrPendingSignInGone {
		t.Errorf("an altered cookie: %v", err)
	}
	p, got, err := e.svc.PendingSignIn(e.ctx, cookie, "bind-1")
	if err != nil || got.ID != u.ID || p.Enroll {
		t.Fatalf("the pending sign-in: %+v %v", p, err)
	}
	cookieB, b, err := e.svc.CompleteSignIn(e.ctx, p, got, "", testMeta)
	if err != nil || cookieB == "" || len(b.AMR) != 2 || b.AMR[1] != oauth2.AuthMethodOTP {
		t.Fatalf("completed: %+v %v", b, err)
	}
	if _, _, err := e.svc.CompleteSignIn(e.ctx, p, got, "", testMeta); err != oauth2.ErrPendingSignInGone {
		t.Errorf("completed twice: %v", err)
	}
	if oauth2.ACR(b.AMR) != oauth2.ACRMFA || oauth2.ACR([]string{"pwd"}) != oauth2.ACRPassword {
		t.Error("acr of amr")
	}

	// Expiry, and a password change.
	cookie, _ = e.svc.BeginSecondStep(&oauth2.SecondStepRequired{User: u, AuthTime: e.clock.Now()}, "bind-1", uuid.Nil)
	e.clock.Advance(oauth2.PendingSignInLifetime)
	if _, _, err := e.svc.PendingSignIn(e.ctx, cookie, "bind-1"); err != oauth2.ErrPendingSignInGone {
		t.Errorf("expired: %v", err)
	}
	cookie, _ = e.svc.BeginSecondStep(&oauth2.SecondStepRequired{User: u, AuthTime: e.clock.Now()}, "bind-1", uuid.Nil)
	if err := e.db.ChangePassword(e.ctx, u.ID, u.PasswordHash+"x", e.clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.PendingSignIn(e.ctx, cookie, "bind-1"); err != oauth2.ErrPendingSignInGone {
		t.Errorf("after a password change: %v", err)
	}
}

// FuzzPendingSignIn: whatever a browser sends as the pending sign-in's
// cookie, PendingSignIn answers ErrPendingSignInGone (never a panic, never
// a user) unless it is a value the server sealed.
func FuzzPendingSignIn(f *testing.F) {
	for _, seed := range []string{"", "v1.", "v1.00000000.AAAA", "v1.abcdef12." + "A", "{}", "\x00\xff", "v1.%%%.%%%"} {
		f.Add(seed)
	}
	box := testwire.Box(f, 0x24)
	// Only the box: a cookie that opens is checked against its binding
	// before any store is read, and the sealed seeds carry another one.
	svc := oauth2.NewService(oauth2.Config{}, oauth2.Deps{MFA: oauth2.MFADeps{Box: box}})
	sealed, err := svc.BeginSecondStep(&oauth2.SecondStepRequired{User: permiso.User{ID: uuid.New()}, AuthTime: time.Now()}, "other", uuid.Nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:len(sealed)/2])
	f.Fuzz(func(t *testing.T, cookie string) {
		_, got, err := svc.PendingSignIn(t.Context(), cookie, "b")
		if err != oauth2.ErrPendingSignInGone || got.ID != uuid.Nil {
			t.Fatalf("cookie %q: user %v, error %v", cookie, got.ID, err)
		}
	})
}
