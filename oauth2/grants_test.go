package oauth2_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testrace"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

func TestPasswordGrant(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)

	// Login by email, in another letter case.
	resp := e.mustToken(url.Values{"grant_type": {"password"}, "username": {"ALICE@Example.com"}, "password": {goodPassword}}, "")
	if resp.TokenType != "Bearer" || resp.ExpiresIn != 900 || resp.RefreshToken == "" || resp.SessionID == "" {
		t.Fatalf("response %+v", resp)
	}
	if resp.Scope != "read:profile write:profile" {
		t.Errorf("scope %q, want all of the user's scopes", resp.Scope)
	}
	p := e.mustAuthenticate(resp.AccessToken)
	c := p.Claims
	if !p.IsUser() || p.IsClient() || p.User.ID != u.ID || c.Subject != u.ID.String() || c.SessionID != resp.SessionID ||
		c.Type != permiso.TokenTypeAccess || c.Username != "alice" || c.Email != "alice@example.com" ||
		c.ClientID != "" || !reflect.DeepEqual(c.Roles, []string{"user"}) || c.IsSuperuser == nil || *c.IsSuperuser ||
		!reflect.DeepEqual(c.AMR, []string{"pwd"}) {
		t.Errorf("claims %+v", c)
	}
	if !p.HasScope("read:profile") || p.HasScope("admin:users") || p.IsAdmin() {
		t.Error("scope or admin check wrong")
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt); got != 15*time.Minute {
		t.Errorf("lifetime %s", got)
	}

	// The refresh token is opaque and stored only as its hash.
	if strings.Contains(resp.RefreshToken, ".") || len(resp.RefreshToken) < 43 {
		t.Errorf("refresh token %q is not a 256-bit opaque token", resp.RefreshToken)
	}
	rt, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(resp.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	if rt.UserID != u.ID || rt.SessionID.String() != resp.SessionID || rt.ClientID != nil ||
		!reflect.DeepEqual(rt.Scopes, []string{"read:profile", "write:profile"}) || rt.ParentID != nil {
		t.Errorf("stored refresh token %+v", rt)
	}
	if !rt.ExpiresAt.Equal(e.clock.Now().Add(30 * 24 * time.Hour)) {
		t.Errorf("refresh expiry %s", rt.ExpiresAt)
	}
	sess, err := e.db.GetSession(e.ctx, rt.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.IPAddress != "192.0.2.10" || sess.UserAgent == nil || *sess.UserAgent != "test-agent" || !sess.Active(e.clock.Now()) {
		t.Errorf("session %+v", sess)
	}
	got, _ := e.db.GetUser(e.ctx, u.ID)
	if got.LastLogin == nil || !got.LastLogin.Equal(e.clock.Now()) {
		t.Errorf("LastLogin %v", got.LastLogin)
	}
	if ev := e.audit.find(oauth2.ActionLoginSuccess); len(ev) != 1 || *ev[0].ActorID != u.ID.String() || *ev[0].RequestID != "req-1" || *ev[0].IPAddress != "192.0.2.10" {
		t.Errorf("login.success events %+v", ev)
	}

	// JSON shape: session_id present, no null fields.
	b, _ := json.Marshal(resp)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"access_token", "token_type", "expires_in", "scope", "refresh_token", "session_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("response JSON lacks %s: %s", k, b)
		}
	}
}

func TestPasswordGrantErrors(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	disabled := e.createUser("dave", goodPassword, permiso.RoleUser)
	e.updateUser(disabled.ID, func(u *permiso.User) { u.IsActive = false })
	old := e.createUser("olga", goodPassword, permiso.RoleUser)
	e.updateUser(old.ID, func(u *permiso.User) {
		u.PasswordChangedAt = e.clock.Now().Add(-91 * 24 * time.Hour)
	})
	pw := func(user, pass, scope string) error {
		f := url.Values{"username": {user}, "password": {pass}}
		if scope != "" {
			f.Set("scope", scope)
		}
		_, err := e.token(f, "")
		return err
	}

	unknown := pw("nobody", goodPassword, "")
	wrong := pw("alice", "wrong-password", "")
	wantOAuth(t, unknown, "invalid_grant", 400)
	wantOAuth(t, wrong, "invalid_grant", 400)
	// Byte-identical answers for an unknown user and a wrong password.
	bu, _ := json.Marshal(unknown)
	bw, _ := json.Marshal(wrong)
	if unknown.Error() != wrong.Error() || string(bu) != string(bw) || !reflect.DeepEqual(unknown, wrong) {
		t.Errorf("unknown user %q and wrong password %q differ", unknown, wrong)
	}
	if ev := e.audit.find(oauth2.ActionLoginFailure); len(ev) != 2 || ev[0].Details["reason"] != "unknown_user" || ev[1].Details["reason"] != "invalid_password" {
		t.Errorf("login.failure events %+v", ev)
	}

	// A disabled account is reported only after a correct password.
	wantOAuth(t, pw("dave", goodPassword, ""), "account_disabled", 403)
	if err := pw("dave", "wrong-password", ""); !reflect.DeepEqual(err, wrong) {
		t.Errorf("wrong password of a disabled user: %v", err)
	}
	// Expired password, only after a correct password.
	wantOAuth(t, pw("olga", goodPassword, ""), "password_expired", 403)
	wantOAuth(t, pw("olga", "wrong-password", ""), "invalid_grant", 400)

	// Scope: none grantable -> invalid_scope; partially -> narrowed.
	wantOAuth(t, pw("alice", goodPassword, "admin:users"), "invalid_scope", 400)
	resp := e.login("alice", goodPassword, "admin:users read:profile")
	if resp.Scope != "read:profile" {
		t.Errorf("narrowed scope %q", resp.Scope)
	}
}

func TestPasswordMaxAgeDisabled(t *testing.T) {
	e := newEnv(t, func(c *oauth2.Config, _ *oauth2.Deps) { c.PasswordMaxAge = 0 })
	u := e.createUser("olga", goodPassword, permiso.RoleUser)
	e.updateUser(u.ID, func(u *permiso.User) {
		u.PasswordChangedAt = e.clock.Now().Add(-1000 * 24 * time.Hour)
	})
	e.login("olga", goodPassword, "")
}

// TestPasswordRehash: a hash with other costs than the configured ones
// verifies and is replaced at the next login by one with the configured
// costs, stronger or weaker (docs/security-model.md, "Password hashing").
func TestPasswordRehash(t *testing.T) {
	weak, stronger := argon2id.TestParams(), argon2id.TestParams()
	stronger.Memory, stronger.Time = 2*stronger.Memory, 2
	for _, tc := range []struct {
		name            string
		stored, current argon2id.Params
		wantInNewHash   string
	}{
		{"weaker stored hash is upgraded", weak, stronger, "$m=128,t=2,p=1$"},
		{"stronger stored hash follows lower costs", stronger, weak, "$m=64,t=1,p=1$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) {
				d.Hasher = argon2id.New(argon2id.Options{Params: tc.current})
			})
			hash := testwire.Hash(t, argon2id.New(argon2id.Options{Params: tc.stored}), goodPassword)
			u := e.createUser("alice", "placeholder-Password-1", permiso.RoleUser)
			e.updateUser(u.ID, func(u *permiso.User) { u.PasswordHash = hash })
			e.login("alice", goodPassword, "")
			got, _ := e.db.GetUser(e.ctx, u.ID)
			if got.PasswordHash == hash || !strings.Contains(got.PasswordHash, tc.wantInNewHash) {
				t.Fatalf("hash not rehashed to the configured costs: %s", got.PasswordHash)
			}
			e.login("alice", goodPassword, "") // the new hash verifies
		})
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		e.createUser("alice", goodPassword, permiso.RoleUser)
		first := e.login("alice", goodPassword, "")

		e.clock.Advance(time.Minute)
		second, err := e.refresh(first.RefreshToken, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken || second.SessionID != "" {
			t.Fatalf("rotation response %+v", second)
		}
		if second.Scope != "read:profile write:profile" || second.ExpiresIn != 900 {
			t.Errorf("refresh response %+v", second)
		}
		p := e.mustAuthenticate(second.AccessToken)
		if p.Claims.SessionID != first.SessionID {
			t.Errorf("refresh changed the session: %s", p.Claims.SessionID)
		}
		// The session's authentication methods survive the refresh (RFC 8176).
		if !reflect.DeepEqual(p.Claims.AMR, []string{"pwd"}) {
			t.Errorf("refreshed amr = %v, want [pwd]", p.Claims.AMR)
		}
		newRT, _ := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(second.RefreshToken))
		oldRT, _ := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(first.RefreshToken))
		if oldRT.UsedAt == nil || newRT.FamilyID != oldRT.FamilyID || newRT.ParentID == nil || *newRT.ParentID != oldRT.ID {
			t.Fatalf("rotation bookkeeping: old %+v new %+v", oldRT, newRT)
		}
		sess, _ := e.db.GetSession(e.ctx, oldRT.SessionID)
		if !sess.LastActivity.Equal(e.clock.Now()) {
			t.Errorf("session LastActivity %s", sess.LastActivity)
		}

		if ev := e.audit.find(oauth2.ActionTokenRefresh); len(ev) != 1 || ev[0].Details["grace_retry"] != false {
			t.Errorf("token.refresh events %+v", ev)
		}

		// The newest token works.
		e.clock.Advance(time.Minute)
		third, err := e.refresh(second.RefreshToken, "", "")
		if err != nil {
			t.Fatal(err)
		}

		// Presenting the first token again, long after its rotation: reuse.
		e.clock.Advance(11 * time.Second)
		e.wantRefreshRefused(first.RefreshToken)
		if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 1 {
			t.Error("no token.reuse_detected audit event")
		}
		// The whole family is revoked, the newest refresh token included...
		e.wantRefreshRefused(third.RefreshToken)
		// ...and the session with its access tokens.
		e.wantInvalidToken(third.AccessToken, "access token of a reused family")
		e.wantInvalidToken(first.AccessToken, "first access token of a reused family")
		sess, _ = e.db.GetSession(e.ctx, oldRT.SessionID)
		if sess.RevokedAt == nil {
			t.Error("session not revoked")
		}
		// A login afterwards is unaffected.
		fresh := e.login("alice", goodPassword, "")
		e.mustAuthenticate(fresh.AccessToken)
	})
}

func TestRefreshRetryWithinGrace(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, a := e.rotated(5 * time.Second)
		b, err := e.refresh(login.RefreshToken, "", "") // a retry: the response of a was lost
		if err != nil {
			t.Fatalf("retry within grace: %v", err)
		}
		if a.RefreshToken == b.RefreshToken {
			t.Fatal("retry got the same refresh token")
		}
		if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 0 {
			t.Fatal("retry within grace counted as reuse")
		}
		// Both pairs are valid.
		for _, r := range []oauth2.TokenResponse{a, b} {
			e.mustAuthenticate(r.AccessToken)
			if _, err := e.refresh(r.RefreshToken, "", ""); err != nil {
				t.Fatalf("refresh of a grace pair: %v", err)
			}
		}
	})
}

// graceHook is a token store whose grace spends run before first.
type graceHook struct {
	permiso.TokenStore
	before *func()
}

func (h graceHook) UseRefreshTokenGrace(ctx context.Context, hash string, repl permiso.RefreshToken, usedSince, now time.Time) error {
	if f := *h.before; f != nil {
		*h.before = nil
		f()
	}
	return h.TokenStore.UseRefreshTokenGrace(ctx, hash, repl, usedSince, now)
}

// TestRefreshGraceRetryAfterRotationTakenBack: a retry within the grace
// window whose rotation is taken back before the retry's grace spend (the
// first refresh gave up before its answer: its client went away,
// docs/security-model.md "Refresh token reuse") finds the token unused
// again and rotates it as a first use: a pair, no reuse, the taken-back
// replacement gone. It used to be refused (invalid_grant), which logs a
// client out for nothing.
func TestRefreshGraceRetryAfterRotationTakenBack(t *testing.T) {
	db := testdb.Postgres(t, "oauth2")
	rot := permiso.RefreshRotatorOf(db)
	if rot == nil {
		t.Fatal("the PostgreSQL store takes rotations back (permiso.RefreshRotator)")
	}
	var before func()
	e := newEnvOn(t, db, func(_ *oauth2.Config, d *oauth2.Deps) { d.Tokens = graceHook{d.Tokens, &before} })
	login, first := e.rotated(time.Second)
	presented, err := db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(login.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	taken, err := db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(first.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	before = func() {
		if err := rot.UndoRefreshRotation(e.ctx, presented.ID, taken.ID); err != nil {
			t.Error(err)
		}
	}
	retry, err := e.refresh(login.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("retry after the rotation was taken back: %v", err)
	}
	if before != nil {
		t.Fatal("the retry did not take the grace path")
	}
	if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 0 {
		t.Fatal("retry counted as reuse")
	}
	if evs := e.audit.find(oauth2.ActionTokenRefresh); len(evs) != 2 || evs[1].Details["grace_retry"] != false {
		t.Errorf("token.refresh events %+v; want the retry's recorded as a first use (grace_retry false)", evs)
	}
	if _, err := db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(first.RefreshToken)); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("the taken-back replacement: %v, want not found", err)
	}
	e.mustAuthenticate(retry.AccessToken)
	if _, err := e.refresh(retry.RefreshToken, "", ""); err != nil {
		t.Fatalf("refresh of the retry's pair: %v", err)
	}
}

// signHook is a token signer that runs during before each signing.
type signHook struct {
	permiso.TokenSigner
	during *func()
}

func (h signHook) Sign(ctx context.Context, c permiso.AccessClaims) (string, error) {
	if f := *h.during; f != nil {
		f()
	}
	return h.TokenSigner.Sign(ctx, c)
}

// TestRefreshClientGoneTakesRotationBack: a refresh whose client goes
// away (its context cancelled) after the token was rotated, before the
// answer, takes the rotation back: the token is unused again, so the
// client's retry, even after the grace window, is a first use and not
// reuse, and no success is recorded for the answer that was never sent.
func TestRefreshClientGoneTakesRotationBack(t *testing.T) {
	db := testdb.Postgres(t, "oauth2")
	var during func()
	e := newEnvOn(t, db, func(_ *oauth2.Config, d *oauth2.Deps) { d.Signer = signHook{d.Signer, &during} })
	e.createUser("alice", goodPassword, permiso.RoleUser)
	login := e.login("alice", goodPassword, "")
	ctx, cancel := context.WithCancel(e.ctx)
	during = cancel
	req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Token(ctx, req, testMeta, nil); err == nil {
		t.Fatal("a refresh whose client went away answered a pair")
	}
	during = nil
	if tok, err := db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(login.RefreshToken)); err != nil || tok.UsedAt != nil {
		t.Fatalf("presented token %+v, %v; want it unused", tok, err)
	}
	if n := len(e.audit.find(oauth2.ActionTokenRefresh)); n != 0 {
		t.Errorf("%d token.refresh events for an answer never sent", n)
	}
	e.clock.Advance(time.Minute) // past the grace window
	if _, err := e.refresh(login.RefreshToken, "", ""); err != nil {
		t.Fatalf("the client's retry: %v", err)
	}
	if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 0 {
		t.Fatal("the retry counted as reuse")
	}
}

// TestRefreshNoGraceAtZero: with ReuseGrace 0 (REFRESH_TOKEN_REUSE_GRACE_SECONDS=0)
// a rotated refresh token is never accepted again, also when the second
// presentation's clock reads earlier than the rotation: a request that
// began before the rotation committed, or an instance whose clock lags.
// Such a presentation used to fall "within" the zero window and got a
// second pair.
func TestRefreshNoGraceAtZero(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db, func(c *oauth2.Config, _ *oauth2.Deps) { c.ReuseGrace = 0 })
		e.createUser("alice", goodPassword, permiso.RoleUser)
		login := e.login("alice", goodPassword, "")
		a, err := e.refresh(login.RefreshToken, "", "")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(-time.Second)
		_, err = e.refresh(login.RefreshToken, "", "")
		var oe *oauth2.Error
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
			t.Fatalf("second presentation of a rotated token with no grace: %v, want invalid_grant", err)
		}
		if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 1 {
			t.Fatal("second presentation with no grace not detected as reuse")
		}
		e.clock.Advance(time.Second)
		if _, err := e.refresh(a.RefreshToken, "", ""); err == nil {
			t.Fatal("the family survived the reuse")
		}
	})
}

func TestRefreshConcurrentWithinGrace(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		e.createUser("alice", goodPassword, permiso.RoleUser)
		login := e.login("alice", goodPassword, "")

		const n = 20
		results := make([]oauth2.TokenResponse, n)
		errs := testrace.All(n, func(i int) (err error) {
			results[i], err = e.refresh(login.RefreshToken, "", "")
			return err
		})
		ok := 0
		seen := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				var oe *oauth2.Error
				if !errors.As(errs[i], &oe) || oe.Code != "invalid_grant" {
					t.Fatalf("goroutine %d: %v (want success or invalid_grant, never a 5xx)", i, errs[i])
				}
				continue
			}
			ok++
			if seen[results[i].RefreshToken] {
				t.Fatal("two callers got the same refresh token")
			}
			seen[results[i].RefreshToken] = true
		}
		if ok == 0 {
			t.Fatal("no concurrent refresh succeeded")
		}
		t.Logf("%d of %d concurrent refreshes succeeded", ok, n)
		// One rotation and at most one grace retry (RFC 9700 §4.14.2): the
		// other presentations are reuse, which ends the family and the session.
		if ok > 2 {
			t.Fatalf("%d concurrent refreshes of one token succeeded, want at most 2 (rotation + one grace retry)", ok)
		}
		if len(e.audit.find(oauth2.ActionTokenReuseDetected)) == 0 {
			t.Fatal("more than one grace retry did not count as reuse")
		}
		sid, _ := uuid.Parse(login.SessionID)
		if sess, _ := e.db.GetSession(e.ctx, sid); sess.RevokedAt == nil {
			t.Fatal("session not revoked after reuse")
		}
		for i := range n {
			if errs[i] == nil {
				if _, err := e.refresh(results[i].RefreshToken, "", ""); err == nil {
					t.Fatalf("pair %d still valid after reuse", i)
				}
			}
		}
	})
}

func TestRefreshScopes(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		u := e.createUser("alice", goodPassword, permiso.RoleUser, "reporter")

		// Logged in with one of two scopes: asking for the other is invalid_scope.
		one := e.login("alice", goodPassword, "read:profile")
		if one.Scope != "read:profile" {
			t.Fatalf("scope %q", one.Scope)
		}
		_, err := e.refresh(one.RefreshToken, "write:profile", "")
		wantOAuth(t, err, "invalid_scope", 400)
		_, err = e.refresh(one.RefreshToken, "read:profile write:profile", "")
		wantOAuth(t, err, "invalid_scope", 400)
		// No refresh ever widens: without scope the original grant stays.
		r, err := e.refresh(one.RefreshToken, "", "")
		if err != nil || r.Scope != "read:profile" {
			t.Fatalf("refresh = %+v, %v", r, err)
		}

		// A narrower request narrows the access token, not the refresh token.
		all := e.login("alice", goodPassword, "")
		if all.Scope != "read:profile read:reports write:profile" {
			t.Fatalf("scope %q", all.Scope)
		}
		narrow, err := e.refresh(all.RefreshToken, "read:reports", "")
		if err != nil || narrow.Scope != "read:reports" {
			t.Fatalf("narrow refresh = %+v, %v", narrow, err)
		}
		if got := scopesOf(e.mustAuthenticate(narrow.AccessToken)); !reflect.DeepEqual(got, []string{"read:reports"}) {
			t.Errorf("narrow access token scopes %q", got)
		}
		wide, err := e.refresh(narrow.RefreshToken, "", "")
		if err != nil || wide.Scope != "read:profile read:reports write:profile" {
			t.Fatalf("refresh after a narrow one = %+v, %v", wide, err)
		}

		// The user loses the reporter role: the next refresh drops its scope.
		if err := e.db.SetUserRoles(e.ctx, u.ID, []uuid.UUID{e.roles[permiso.RoleUser].ID}); err != nil {
			t.Fatal(err)
		}
		dropped, err := e.refresh(wide.RefreshToken, "", "")
		if err != nil || dropped.Scope != "read:profile write:profile" {
			t.Fatalf("refresh after losing a role = %+v, %v", dropped, err)
		}
		if got := scopesOf(e.mustAuthenticate(dropped.AccessToken)); slices.Contains(got, "read:reports") {
			t.Errorf("lost scope still granted: %q", got)
		}
	})
}

func TestRefreshErrors(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		u := e.createUser("alice", goodPassword, permiso.RoleUser)

		_, err := e.refresh("not-a-known-token", "", "")
		wantOAuth(t, err, "invalid_grant", 400)

		// Expired.
		r := e.login("alice", goodPassword, "")
		e.clock.Advance(31 * 24 * time.Hour)
		e.wantRefreshRefused(r.RefreshToken)

		// Disabled user.
		r = e.login("alice", goodPassword, "")
		e.updateUser(u.ID, func(u *permiso.User) { u.IsActive = false })
		e.wantRefreshRefused(r.RefreshToken)
		e.updateUser(u.ID, func(u *permiso.User) { u.IsActive = true })

		// Revoked session.
		r = e.login("alice", goodPassword, "")
		sid, _ := uuid.Parse(r.SessionID)
		if _, err := e.db.UpdateSession(e.ctx, sid, func(s *permiso.Session) error { now := e.clock.Now(); s.RevokedAt = &now; return nil }); err != nil {
			t.Fatal(err)
		}
		e.wantRefreshRefused(r.RefreshToken)

		// Deleted user.
		r = e.login("alice", goodPassword, "")
		if err := e.db.DeleteUser(e.ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		e.wantRefreshRefused(r.RefreshToken)
	})
}

func TestRefreshClientBinding(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		e.createUser("alice", goodPassword, permiso.RoleUser)
		appA, secretA := e.createClient("app-a", nil)
		_, secretB := e.createClient("app-b", nil)

		f := url.Values{"username": {"alice"}, "password": {goodPassword}}
		bound := e.mustToken(f, basic("app-a", secretA))
		p := e.mustAuthenticate(bound.AccessToken)
		if p.Claims.ClientID != "app-a" {
			t.Errorf("client_id claim %q", p.Claims.ClientID)
		}
		rt, _ := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(bound.RefreshToken))
		if rt.ClientID == nil || *rt.ClientID != appA.ID {
			t.Fatalf("refresh token not bound: %+v", rt)
		}
		sess, _ := e.db.GetSession(e.ctx, rt.SessionID)
		if sess.ClientID == nil || *sess.ClientID != appA.ID {
			t.Errorf("session not bound: %+v", sess)
		}

		e.wantRefreshRefused(bound.RefreshToken)
		_, err := e.refresh(bound.RefreshToken, "", basic("app-b", secretB))
		wantOAuth(t, err, "invalid_grant", 400)
		_, err = e.refresh(bound.RefreshToken, "", basic("app-a", "wrong"))
		if oe := wantOAuth(t, err, "invalid_client", 401); !oe.BasicChallenge {
			t.Error("Basic failure without challenge")
		}
		// With form credentials: works.
		f = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}, "client_id": {"app-a"}, "client_secret": {secretA}}
		if _, err := e.token(f, ""); err != nil {
			t.Fatalf("bound client refresh: %v", err)
		}

		// A first-party token cannot be refreshed by a client.
		firstParty := e.login("alice", goodPassword, "")
		_, err = e.refresh(firstParty.RefreshToken, "", basic("app-a", secretA))
		wantOAuth(t, err, "invalid_grant", 400)
		// The failed attempts did not consume it.
		if _, err := e.refresh(firstParty.RefreshToken, "", ""); err != nil {
			t.Fatalf("first-party refresh: %v", err)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	svc, secret := e.createClient("svc", func(c *permiso.ServiceClient) { c.IsTrusted = true; c.AccessTokenLifetime = 3600 },
		"admin:tokens", "read:profile")
	_, defSecret := e.createClient("svc-default", nil, "read:profile")
	_, inactiveSecret := e.createClient("svc-off", func(c *permiso.ServiceClient) { c.IsActive = false }, "read:profile")
	_, publicSecret := e.createClient("mobile", func(c *permiso.ServiceClient) { c.ClientType = "public" }, "read:profile")

	cc := func(auth string, extra url.Values) (oauth2.TokenResponse, error) {
		f := url.Values{"grant_type": {"client_credentials"}}
		for k, v := range extra {
			f[k] = v
		}
		return e.token(f, auth)
	}

	resp, err := cc(basic("svc", secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.RefreshToken != "" || resp.SessionID != "" || resp.ExpiresIn != 3600 || resp.Scope != "admin:tokens read:profile" {
		t.Fatalf("response %+v", resp)
	}
	b, _ := json.Marshal(resp)
	if strings.Contains(string(b), "refresh_token") || strings.Contains(string(b), "session_id") {
		t.Errorf("client credentials JSON has a refresh token or session: %s", b)
	}
	p := e.mustAuthenticate(resp.AccessToken)
	if !p.IsClient() || p.IsUser() || p.Client.ID != svc.ID || p.Claims.Type != permiso.TokenTypeService ||
		p.Claims.Subject != "svc" || p.Claims.ClientID != "svc" || p.Claims.IsTrusted == nil || !*p.Claims.IsTrusted || p.IsAdmin() {
		t.Fatalf("principal %+v", p)
	}
	if ev := e.audit.find(oauth2.ActionTokenIssue); len(ev) != 1 || *ev[0].ActorID != "svc" {
		t.Errorf("token.issue events %+v", ev)
	}

	// Form authentication, default lifetime, narrowing.
	resp, err = cc("", url.Values{"client_id": {"svc-default"}, "client_secret": {defSecret}})
	if err != nil || resp.ExpiresIn != 600 || resp.Scope != "read:profile" {
		t.Fatalf("default lifetime: %+v, %v", resp, err)
	}
	resp, err = cc(basic("svc", secret), url.Values{"scope": {"read:profile admin:users"}})
	if err != nil || resp.Scope != "read:profile" {
		t.Fatalf("narrowed: %+v, %v", resp, err)
	}
	_, err = cc(basic("svc", secret), url.Values{"scope": {"admin:users"}})
	wantOAuth(t, err, "invalid_scope", 400)

	// Unknown client, wrong secret, inactive client: one identical answer.
	var fails []error
	for _, auth := range []string{basic("nobody", secret), basic("svc", "wrong"), basic("svc-off", inactiveSecret)} {
		_, err := cc(auth, nil)
		oe := wantOAuth(t, err, "invalid_client", 401)
		if !oe.BasicChallenge {
			t.Error("no Basic challenge")
		}
		fails = append(fails, err)
	}
	if !reflect.DeepEqual(fails[0], fails[1]) || !reflect.DeepEqual(fails[1], fails[2]) {
		t.Errorf("client authentication failures differ: %v / %v / %v", fails[0], fails[1], fails[2])
	}
	// Form authentication failures carry no Basic challenge.
	_, err = cc("", url.Values{"client_id": {"svc"}, "client_secret": {"wrong"}})
	if oe := wantOAuth(t, err, "invalid_client", 401); oe.BasicChallenge {
		t.Error("Basic challenge on a form authentication failure")
	}
	// No client authentication at all.
	_, err = cc("", nil)
	wantOAuth(t, err, "invalid_client", 401)
	// Public clients may not use client_credentials.
	_, err = cc(basic("mobile", publicSecret), nil)
	wantOAuth(t, err, "unauthorized_client", 400)
	// The same client authentication for the introspection and revocation
	// endpoints.
	var c permiso.ServiceClient
	if _, err := e.svc.AuthenticateClient(e.ctx, "svc", secret, oauth2.ClientAuthBasic, testMeta, nil, &c); err != nil || c.ID != svc.ID {
		t.Errorf("AuthenticateClient = %v, %v", c, err)
	}
	_, err = e.svc.AuthenticateClient(e.ctx, "svc", "wrong", oauth2.ClientAuthBasic, testMeta, nil, &c)
	if oe := wantOAuth(t, err, "invalid_client", 401); !oe.BasicChallenge {
		t.Error("AuthenticateClient Basic failure without challenge")
	}
	// Unsupported grant.
	_, err = e.token(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}}, basic("svc", secret))
	wantOAuth(t, err, "unsupported_grant_type", 400)
	if _, err := e.svc.Token(e.ctx, oauth2.TokenRequest{GrantType: "implicit"}, testMeta, nil); err == nil {
		t.Error("Token accepted an unknown grant type")
	} else {
		wantOAuth(t, err, "unsupported_grant_type", 400)
	}
}

func TestClientAllowedIPs(t *testing.T) {
	e := newEnv(t)
	_, secret := e.createClient("svc", func(c *permiso.ServiceClient) {
		c.AllowedIPs = ptr(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
	}, "read:profile")
	_, badSecret := e.createClient("svc-bad", func(c *permiso.ServiceClient) { c.AllowedIPs = ptr("10.0.0.0/8, not-an-ip") }, "read:profile")
	_, anySecret := e.createClient("svc-any", func(c *permiso.ServiceClient) { c.AllowedIPs = ptr("  ") }, "read:profile")

	form := url.Values{"grant_type": {"client_credentials"}}
	tests := []struct {
		client, secret, ip string
		ok                 bool
	}{
		{"svc", secret, "10.1.2.3", true},
		{"svc", secret, "192.0.2.7", true},
		{"svc", secret, "::ffff:192.0.2.7", true},
		{"svc", secret, "2001:db8::1", true},
		{"svc", secret, "192.0.2.8", false},
		{"svc", secret, "", false},
		{"svc-bad", badSecret, "10.1.2.3", false}, // an unparsable entry denies everything
		{"svc-any", anySecret, "203.0.113.1", true},
	}
	var denied error
	for _, tt := range tests {
		meta := testMeta
		meta.IP = netip.Addr{}
		if tt.ip != "" {
			meta.IP = netip.MustParseAddr(tt.ip)
		}
		_, err := e.tokenFrom(meta, form, basic(tt.client, tt.secret))
		if tt.ok && err != nil {
			t.Errorf("%s from %q: %v", tt.client, tt.ip, err)
		}
		if !tt.ok {
			wantOAuth(t, err, "invalid_client", 401)
			if denied != nil && !reflect.DeepEqual(err, denied) {
				t.Errorf("address denial differs from other failures: %v", err)
			}
			denied = err
		}
	}
	_, wrong := e.token(form, basic("svc", "wrong"))
	if !reflect.DeepEqual(wrong, denied) {
		t.Errorf("address denial %v differs from a wrong secret %v", denied, wrong)
	}
}

func TestClientPreviousSecretOverlap(t *testing.T) {
	e := newEnv(t)
	c, oldSecret := e.createClient("svc", nil, "read:profile")
	newSecret := e.rotateSecret(c, time.Hour)
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, s := range []string{oldSecret, newSecret} {
		if _, err := e.token(form, basic("svc", s)); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	e.clock.Advance(time.Hour)
	_, err := e.token(form, basic("svc", oldSecret))
	wantOAuth(t, err, "invalid_client", 401)
	if _, err := e.token(form, basic("svc", newSecret)); err != nil {
		t.Fatalf("new secret after the overlap: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
