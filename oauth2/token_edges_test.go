package oauth2_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testrace"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/sqlite"
)

// Within the grace window a rotated token yields at most ONE
// fresh sibling; a second retry is reuse and ends the family and session.
func TestGraceRetryOnlyOnce(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, a := e.rotated(2 * time.Second)
		b, err := e.refresh(login.RefreshToken, "", "") // the one grace retry
		if err != nil {
			t.Fatalf("first retry within grace: %v", err)
		}
		e.clock.Advance(2 * time.Second)
		e.wantRefreshRefused(login.RefreshToken) // a thief forking another branch
		e.wantReuseDetected(login.SessionID, a, b)
	})
}

// wantReuseDetected asserts that one reuse was detected in the session:
// it is revoked, and so is every pair of its family (refresh token
// refused, access token invalid).
func (e *env) wantReuseDetected(sessionID string, pairs ...oauth2.TokenResponse) {
	e.t.Helper()
	if n := len(e.audit.find(oauth2.ActionTokenReuseDetected)); n != 1 {
		e.t.Fatalf("%d token.reuse_detected events, want 1", n)
	}
	for _, r := range pairs {
		e.wantRefreshRefused(r.RefreshToken)
		e.wantInvalidToken(r.AccessToken, "access token of a family revoked for reuse")
	}
	sid, _ := uuid.Parse(sessionID)
	if sess, _ := e.db.GetSession(e.ctx, sid); sess.RevokedAt == nil {
		e.t.Fatal("session not revoked")
	}
}

// A rotated token presented again within the grace window after its
// replacement was used is reuse (RFC 9700 §4.14.2): the client that
// rotated it received the replacement, so the presentation is of a copy.
// It used to get a fresh pair, leaving the family with two live branches.
// (The lost-answer retry, its replacement unused, still gets its pair:
// TestRefreshRetryWithinGrace.)
func TestGraceRefusedAfterReplacementUsed(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, a := e.rotated(time.Second)
		b, err := e.refresh(a.RefreshToken, "", "") // the client used its replacement
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second) // still within the grace window of login's token
		e.wantRefreshRefused(login.RefreshToken)
		if ev := e.audit.find(oauth2.ActionTokenRefresh); len(ev) != 2 {
			t.Fatalf("%d token.refresh events, want 2 (the replay issued nothing)", len(ev))
		}
		e.wantReuseDetected(login.SessionID, a, b)
	})
}

// A grace retry racing the first use of the replacement: the store
// serializes the two on the session row (UseRefreshTokenGrace). Replay
// first, it is granted (the replacement was unused) and the replacement
// rotates as well (the winner's pair stays valid); use first, the replay
// is reuse and revokes the family and the session. Nothing else.
func TestGraceRetryRacingReplacementUse(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, a := e.rotated(time.Second)
		presented := []string{a.RefreshToken, login.RefreshToken}
		errs := testrace.All(2, func(i int) error {
			_, err := e.refresh(presented[i], "", "")
			return err
		})
		sid, _ := uuid.Parse(login.SessionID)
		sess, err := e.db.GetSession(e.ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		reuse := len(e.audit.find(oauth2.ActionTokenReuseDetected))
		switch {
		case errs[0] == nil && errs[1] == nil:
			if reuse != 0 || sess.RevokedAt != nil {
				t.Fatal("both refreshes issued a pair, yet the family was revoked")
			}
		case errs[1] != nil:
			wantOAuth(t, errs[1], "invalid_grant", 400)
			if reuse != 1 || sess.RevokedAt == nil {
				t.Fatalf("replay refused with %d reuse detections, session revoked at %v: want reuse", reuse, sess.RevokedAt)
			}
		default:
			t.Fatalf("use of the replacement: %v", errs[0])
		}
	})
}

// Of concurrent grace retries of one rotated token exactly one
// gets a pair.
func TestConcurrentGraceRetries(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, _ := e.rotated(time.Second)
		ok := 0
		for _, err := range testrace.All(10, func(int) error {
			_, err := e.refresh(login.RefreshToken, "", "")
			return err
		}) {
			if err == nil {
				ok++
				continue
			}
			wantOAuth(t, err, "invalid_grant", 400)
		}
		if ok != 1 {
			t.Fatalf("%d concurrent grace retries succeeded, want exactly 1", ok)
		}
	})
}

// Sliding refresh cannot keep a session alive past its absolute
// lifetime.
func TestAbsoluteSessionLifetime(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db, func(c *oauth2.Config, _ *oauth2.Deps) { c.RefreshAbsoluteLifetime = 90 * 24 * time.Hour })
		e.createUser("alice", goodPassword, permiso.RoleUser)
		e.cfg.PasswordMaxAge = 0
		rt := e.login("alice", goodPassword, "").RefreshToken
		day := 24 * time.Hour
		for i := 1; i <= 4; i++ { // days 20, 40, 60, 80
			e.clock.Advance(20 * day)
			r, err := e.refresh(rt, "", "")
			if err != nil {
				t.Fatalf("refresh on day %d: %v", 20*i, err)
			}
			rt = r.RefreshToken
		}
		stored, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(rt))
		if err != nil {
			t.Fatal(err)
		}
		sid := stored.SessionID
		sess, _ := e.db.GetSession(e.ctx, sid)
		deadline := sess.CreatedAt.Add(90 * day)
		if stored.ExpiresAt.After(deadline) || sess.ExpiresAt.After(deadline) {
			t.Fatalf("expiry slid past the absolute lifetime: token %s session %s deadline %s", stored.ExpiresAt, sess.ExpiresAt, deadline)
		}
		e.clock.Advance(20 * day) // day 100
		e.wantRefreshRefused(rt)
	})
}

// racingUsers runs hook once, right after the password grant has read the
// user: a password change or revoke-all racing the login.
type racingUsers struct {
	*sqlite.DB
	mu   sync.Mutex
	hook func()
}

func (r *racingUsers) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	u, err := r.DB.GetUserByLogin(ctx, login)
	r.mu.Lock()
	h := r.hook
	r.hook = nil
	r.mu.Unlock()
	if h != nil {
		h()
	}
	return u, err
}

func newRacingEnv(t *testing.T) (*env, *racingUsers) {
	var ru *racingUsers
	e := newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) {
		ru = &racingUsers{DB: d.Users.(*sqlite.DB)}
		d.Users = ru
	})
	return e, ru
}

// A login that read the user before a revoke-all must not
// survive it.
func TestLoginRacingRevokeAll(t *testing.T) {
	e, ru := newRacingEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	ru.hook = func() {
		e.clock.Advance(time.Second)
		if _, err := e.svc.RevokeAllForUser(e.ctx, u.ID, "test"); err != nil {
			t.Error(err)
		}
	}
	resp, err := e.token(formLogin("alice", goodPassword), "")
	if err == nil {
		// Whatever was issued must be dead.
		e.wantInvalidToken(resp.AccessToken, "access token of a login that raced revoke-all")
		if _, rerr := e.refresh(resp.RefreshToken, "", ""); rerr == nil {
			t.Fatal("refresh token of a login that raced revoke-all still works")
		}
		t.Fatal("login that raced revoke-all succeeded")
	}
	wantOAuth(t, err, "invalid_grant", 400)
	active, _ := e.db.ListSessions(e.ctx, u.ID, true, e.clock.Now())
	if len(active) != 0 {
		t.Fatalf("%d active sessions after a login that raced revoke-all", len(active))
	}
}

// A login with the old password that raced a password change
// must not survive it.
func TestLoginRacingPasswordChange(t *testing.T) {
	e, ru := newRacingEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	ru.hook = func() {
		h, err := e.hasher.Hash(e.ctx, "Another-Correct-9-horse")
		if err != nil {
			t.Error(err)
			return
		}
		if err := e.db.ChangePassword(e.ctx, u.ID, h, e.clock.Now(), 3); err != nil {
			t.Error(err)
		}
	}
	resp, err := e.token(formLogin("alice", goodPassword), "")
	if err == nil {
		_, rerr := e.refresh(resp.RefreshToken, "", "")
		t.Fatalf("login with the old password that raced a password change succeeded (refresh err %v)", rerr)
	}
	wantOAuth(t, err, "invalid_grant", 400)
	active, _ := e.db.ListSessions(e.ctx, u.ID, true, e.clock.Now())
	if len(active) != 0 {
		t.Fatalf("%d active sessions after a login that raced a password change", len(active))
	}
	// A plain login afterwards with the new password works.
	e.login("alice", "Another-Correct-9-horse", "")
}

// The session and refresh token carry the authentication time,
// taken before the user is read.
func TestLoginAuthTime(t *testing.T) {
	e, ru := newRacingEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	start := e.clock.Now()
	ru.hook = func() { e.clock.Advance(3 * time.Second) }
	resp := e.mustToken(formLogin("alice", goodPassword), "")
	rt, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(resp.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := e.db.GetSession(e.ctx, rt.SessionID)
	p := e.mustAuthenticate(resp.AccessToken)
	if !rt.IssuedAt.Equal(start) || !sess.CreatedAt.Equal(start) || !p.Claims.IssuedAt.Equal(start) {
		t.Fatalf("issued at %s / session %s / iat %s, want the authentication time %s", rt.IssuedAt, sess.CreatedAt, p.Claims.IssuedAt, start)
	}
}

// ChangeExpiredPassword that verified the old password before a
// concurrent change must not overwrite that change.
func TestChangeExpiredPasswordRace(t *testing.T) {
	e, ru := newRacingEnv(t)
	u := e.createUser("olga", goodPassword, permiso.RoleUser)
	var concurrent string
	ru.hook = func() {
		h, err := e.hasher.Hash(e.ctx, "Concurrent-Good-Pass-3")
		if err != nil {
			t.Error(err)
			return
		}
		concurrent = h
		if err := e.db.ChangePassword(e.ctx, u.ID, h, e.clock.Now(), 3); err != nil {
			t.Error(err)
		}
	}
	err := e.svc.ChangeExpiredPassword(e.ctx, "olga", goodPassword, "Second-Good-Pass-2", testMeta)
	wantOAuth(t, err, "invalid_grant", 400)
	got, err := e.db.GetUser(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != concurrent {
		t.Fatal("a change that verified a stale password overwrote the concurrent change")
	}
}

// flakyRevocations fails RevokeSession while failing is set, and counts
// the session revocations sent.
type flakyRevocations struct {
	permiso.RevocationStore
	mu      sync.Mutex
	failing bool
	sent    int
}

func (f *flakyRevocations) RevokeSession(ctx context.Context, sid string, exp time.Time) error {
	f.mu.Lock()
	failing := f.failing
	f.sent++
	f.mu.Unlock()
	if failing {
		return permiso.Errorf(permiso.EUNAVAILABLE, "revocation store down")
	}
	return f.RevocationStore.RevokeSession(ctx, sid, exp)
}

func (f *flakyRevocations) sessionsSent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// rotatedPastGrace is alice's login, its refresh token rotated and the
// clock past the grace window, on a revocation store that counts (and can
// fail) session revocations.
func rotatedPastGrace(t *testing.T) (e *env, rev *flakyRevocations, login, next oauth2.TokenResponse) {
	t.Helper()
	e = newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) {
		rev = &flakyRevocations{RevocationStore: d.Revocations}
		d.Revocations = rev
	})
	e.createUser("alice", goodPassword, permiso.RoleUser)
	login = e.login("alice", goodPassword, "")
	next, err := e.refresh(login.RefreshToken, "", "")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	return e, rev, login, next
}

// A revoked family's token presented again and again re-sends its
// session's revocation at most once a second: replays do not write to the
// revocation store (nor to the revocation feed every instance reads) at
// the rate they are sent, and a revocation the store lost is still sent
// again (docs/security-model.md, "Refresh token reuse").
func TestReuseReplaysPaceRevocationResends(t *testing.T) {
	e, counted, login, next := rotatedPastGrace(t)
	e.wantRefreshRefused(login.RefreshToken) // reuse: the session is revoked
	if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 1 {
		t.Fatal("reuse not detected")
	}
	sent := counted.sessionsSent()
	if sent == 0 {
		t.Fatal("the reuse detection sent no session revocation")
	}
	for range 20 {
		e.wantRefreshRefused(login.RefreshToken)
		e.wantRefreshRefused(next.RefreshToken)
	}
	if got := counted.sessionsSent(); got != sent+1 {
		t.Fatalf("40 replays of a revoked family within a second sent %d more session revocations, want 1", got-sent)
	}
	e.clock.Advance(2 * time.Second)
	e.wantRefreshRefused(login.RefreshToken)
	if got := counted.sessionsSent(); got != sent+2 {
		t.Fatalf("a replay seconds later sent %d session revocations since the first re-send, want 1", got-sent-1)
	}
	e.wantInvalidToken(next.AccessToken, "access token of the revoked session")
}

// A failed session revocation after reuse detection neither
// hides the detection (audit) nor stays lost: presenting a token of the
// family again re-sends it.
func TestReuseDetectionRevocationRetried(t *testing.T) {
	e, flaky, login, next := rotatedPastGrace(t)
	flaky.failing = true
	if _, err := e.refresh(login.RefreshToken, "", ""); err == nil {
		t.Fatal("reuse accepted")
	}
	if len(e.audit.find(oauth2.ActionTokenReuseDetected)) != 1 {
		t.Fatal("reuse detection not audited when the session revocation failed")
	}
	// The session revocation was lost: the access token still passes.
	e.mustAuthenticate(next.AccessToken)
	flaky.mu.Lock()
	flaky.failing = false
	flaky.mu.Unlock()
	// Any token of the family presented again re-sends it.
	e.wantRefreshRefused(next.RefreshToken)
	e.wantInvalidToken(next.AccessToken, "access token after the session revocation was re-sent")
}

// Introspection reports only the scopes the subject still holds
// (the rule of Principal.HasScope), for access and refresh tokens.
func TestIntrospectScopeHeldNow(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser, "reporter")
	login := e.login("alice", goodPassword, "read:profile read:reports")
	if login.Scope != "read:profile read:reports" {
		t.Fatalf("granted %q", login.Scope)
	}
	self := e.mustAuthenticate(login.AccessToken)
	if err := e.db.SetUserRoles(e.ctx, u.ID, []uuid.UUID{e.roles[permiso.RoleUser].ID}); err != nil {
		t.Fatal(err)
	}
	caller := oauth2.Caller{Principal: &self}
	for name, tok := range map[string]string{"access": login.AccessToken, "refresh": login.RefreshToken} {
		in, err := e.svc.Introspect(e.ctx, caller, tok, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Active || in.Scope != "read:profile" {
			t.Errorf("%s token: active %v scope %q, want read:profile only", name, in.Active, in.Scope)
		}
	}
}

// An unreadable stored hash answers like a wrong password (the
// same invalid_grant), not with a 500 that singles the account out.
func TestUnreadableHashIsBadCredentials(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	e.updateUser(u.ID, func(x *permiso.User) {
		x.PasswordHash = "$2b$12$not-an-argon2id-hash"
	})
	_, got := e.token(formLogin("alice", goodPassword), "")
	_, unknown := e.token(formLogin("nobody", goodPassword), "")
	wantOAuth(t, got, "invalid_grant", 400)
	if got.Error() != unknown.Error() {
		t.Fatalf("unreadable hash %v differs from unknown user %v", got, unknown)
	}
}

// A password grant through a client with scopes grants at most
// the client's scopes; a client without scopes does not narrow it.
func TestPasswordGrantClientScopes(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser, "reporter")
	_, secret := e.createClient("narrow", nil, "read:profile")
	resp := e.mustToken(formLogin("alice", goodPassword), basic("narrow", secret))
	if resp.Scope != "read:profile" {
		t.Fatalf("scope through a client with scopes = %q, want read:profile", resp.Scope)
	}
	f := formLogin("alice", goodPassword)
	f.Set("scope", "read:reports")
	_, err := e.token(f, basic("narrow", secret))
	wantOAuth(t, err, "invalid_scope", 400)
	_, open := e.createClient("open", nil)
	all := e.mustToken(formLogin("alice", goodPassword), basic("open", open))
	if all.Scope == "read:profile" || all.Scope == "" {
		t.Fatalf("scope through a client without scopes = %q, want every scope of the user", all.Scope)
	}
}

// A refused refresh is audited under its own action, without the token.
func TestRefreshFailureAudited(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		_, err := e.refresh("not-a-refresh-token", "", "")
		wantOAuth(t, err, "invalid_grant", 400)
		events := e.audit.find(oauth2.ActionTokenRefreshFailure)
		if len(events) != 1 || events[0].Result != "failure" || events[0].Details["error"] != "invalid_grant" {
			t.Fatalf("refresh failure events = %+v", events)
		}
		if strings.Contains(fmt.Sprint(events[0].Details), "not-a-refresh-token") {
			t.Fatal("the presented token leaked into the audit log")
		}
	})
}

// TestRefreshChecks presents refresh tokens that each differ from a
// usable one in one thing the refresh grant checks (oauth2/grants.go,
// refreshGrant), on both backends: on PostgreSQL the checks are made in
// the rotation statement itself (permiso.RefreshRotator), on SQLite on
// the token read first (docs/benchmarks.md, "The refresh path"). A
// refused token is neither rotated nor its session touched; a token
// rotated within the grace window gets its grace retry, one rotated
// before it is reuse.
func TestRefreshChecks(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		const lifetime = 24 * time.Hour
		e := newEnvOn(t, db, func(c *oauth2.Config, _ *oauth2.Deps) { c.RefreshAbsoluteLifetime = lifetime })
		appA, secretA := e.createClient("app-a", nil)
		_, secretB := e.createClient("app-b", nil)
		cut, secretCut := e.createClient("app-cut", nil)
		e.clock.Advance(time.Hour)
		now := e.clock.Now()
		if _, err := e.db.UpdateServiceClient(e.ctx, cut.ID, func(x *permiso.ServiceClient) error {
			x.RevokeTokensBefore(now)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		type stored struct {
			sess permiso.Session
			tok  permiso.RefreshToken
			user func(*permiso.User)
			auth string
		}
		cases := []struct {
			name   string
			change func(*stored)
			want   string // "" granted, "grace" granted as the grace retry, else the refusal's description
		}{
			{"usable", func(*stored) {}, ""},
			{"usable through its client", func(s *stored) { s.tok.ClientID, s.sess.ClientID, s.auth = &appA.ID, &appA.ID, basic("app-a", secretA) }, ""},
			{"expired", func(s *stored) { s.tok.ExpiresAt = now }, errBad},
			{"revoked", func(s *stored) {
				s.tok.RevokedAt, s.tok.RevocationReason = ptrTo(now.Add(-time.Minute)), ptrTo("logout")
			}, errBad},
			{"used within the grace window", func(s *stored) { s.tok.UsedAt = ptrTo(now.Add(-time.Second)) }, "grace"},
			{"used before the grace window", func(s *stored) { s.tok.UsedAt = ptrTo(now.Add(-time.Minute)) }, errBad},
			{"other client", func(s *stored) { s.tok.ClientID, s.sess.ClientID, s.auth = &appA.ID, &appA.ID, basic("app-b", secretB) }, errBad},
			{"client token without the client", func(s *stored) { s.tok.ClientID, s.sess.ClientID = &appA.ID, &appA.ID }, errBad},
			{"first-party token by a client", func(s *stored) { s.auth = basic("app-a", secretA) }, errBad},
			{"issued before the client's cut-off", func(s *stored) {
				s.tok.ClientID, s.sess.ClientID, s.auth = &cut.ID, &cut.ID, basic("app-cut", secretCut)
				s.tok.IssuedAt = now.Add(-time.Second)
			}, errBad},
			{"revoked session", func(s *stored) { s.sess.RevokedAt = ptrTo(now.Add(-time.Minute)) }, errBad},
			{"expired session", func(s *stored) { s.sess.ExpiresAt = now }, errBad},
			{"session past its absolute lifetime", func(s *stored) { s.sess.CreatedAt = now.Add(-lifetime) }, errBad},
			{"disabled user", func(s *stored) { s.user = func(u *permiso.User) { u.IsActive = false } }, "User account is disabled"},
			{"issued before the user's revoke-all", func(s *stored) {
				s.tok.IssuedAt = now.Add(-time.Second)
				s.user = func(u *permiso.User) { u.TokensRevokedBefore = &now }
			}, errBad},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				u := e.createUser(fmt.Sprintf("checked%d", i), goodPassword, permiso.RoleUser)
				opaque := permiso.NewOpaqueToken()
				s := stored{
					sess: permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "192.0.2.1",
						CreatedAt: now.Add(-time.Hour), LastActivity: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), AMR: []string{"pwd"}},
					tok: permiso.RefreshToken{ID: uuid.New(), TokenHash: permiso.HashToken(opaque), UserID: u.ID,
						FamilyID: uuid.New(), Scopes: []string{"read:profile"}, IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)},
				}
				c.change(&s)
				s.tok.SessionID = s.sess.ID
				if _, _, err := e.db.CreateSessionWithToken(e.ctx, s.sess, s.tok); err != nil {
					t.Fatal(err)
				}
				if s.user != nil {
					e.updateUser(u.ID, s.user)
				}
				before, err := e.db.GetRefreshTokenByHash(e.ctx, s.tok.TokenHash)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := e.refresh(opaque, "", s.auth)
				after, gerr := e.db.GetRefreshTokenByHash(e.ctx, s.tok.TokenHash)
				if gerr != nil {
					t.Fatal(gerr)
				}
				sess, gerr := e.db.GetSession(e.ctx, s.sess.ID)
				if gerr != nil {
					t.Fatal(gerr)
				}
				switch c.want {
				case "", "grace":
					if err != nil {
						t.Fatalf("refresh: %v", err)
					}
					e.mustAuthenticate(resp.AccessToken)
					if _, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(resp.RefreshToken)); err != nil {
						t.Errorf("replacement not stored: %v", err)
					}
					grace := c.want == "grace"
					if grace && (after.RevocationReason == nil || *after.RevocationReason != permiso.RevocationGraceUsed) {
						t.Errorf("grace retry left the token %+v, want it revoked as %s", after, permiso.RevocationGraceUsed)
					}
					if !grace && (after.UsedAt == nil || !after.UsedAt.Equal(now) || after.RevokedAt != nil) {
						t.Errorf("rotation left the token %+v, want it used now", after)
					}
					if ev := e.audit.find(oauth2.ActionTokenRefresh); len(ev) == 0 || ev[len(ev)-1].Details["grace_retry"] != grace {
						t.Errorf("token.refresh event %+v, want grace_retry %v", ev, grace)
					}
					if !sess.LastActivity.Equal(now) {
						t.Errorf("session last activity %s after a refresh, want %s", sess.LastActivity, now)
					}
				default:
					if oe := wantOAuth(t, err, "invalid_grant", 400); oe.Description != c.want {
						t.Errorf("refusal %q, want %q", oe.Description, c.want)
					}
					if !reflect.DeepEqual(after.UsedAt, before.UsedAt) {
						t.Errorf("a refused token's used_at went from %v to %v", before.UsedAt, after.UsedAt)
					}
					if !sess.LastActivity.Equal(s.sess.LastActivity) {
						t.Errorf("a refused refresh touched the session: last activity %s", sess.LastActivity)
					}
				}
			})
		}
	})
}

const errBad = "Refresh token is invalid, expired or revoked"

func ptrTo[T any](v T) *T { return &v }

// TestRefreshRefusedForSizeLeavesTokenUnused: a refresh whose access token
// would be too long to sign (docs/security-model.md, "Token size") is
// refused and leaves the presented refresh token unused on every store,
// where PostgreSQL rotates before it signs (docs/benchmarks.md, "The
// refresh path"): a retry after the grace window, once the user holds
// fewer roles, is granted, not taken for reuse.
func TestRefreshRefusedForSizeLeavesTokenUnused(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		u := e.createUser("wide", goodPassword, permiso.RoleUser)
		tok := e.login("wide", goodPassword, "")
		ids := []uuid.UUID{e.roles[permiso.RoleUser].ID}
		now := e.clock.Now()
		for i := range 300 {
			r, err := e.db.CreateRole(e.ctx, permiso.Role{ID: uuid.New(), Name: fmt.Sprintf("wide-%03d-%s", i, strings.Repeat("x", 50)),
				CreatedAt: now, UpdatedAt: now}, nil)
			if err != nil {
				t.Fatalf("CreateRole: %v", err)
			}
			ids = append(ids, r.ID)
		}
		if err := e.db.SetUserRoles(e.ctx, u.ID, ids); err != nil {
			t.Fatalf("SetUserRoles: %v", err)
		}
		if _, err := e.refresh(tok.RefreshToken, "", ""); err == nil {
			t.Fatal("refresh with an access token over the size bound: granted, want refused")
		}
		stored, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(tok.RefreshToken))
		if err != nil {
			t.Fatalf("GetRefreshTokenByHash: %v", err)
		}
		if stored.UsedAt != nil || stored.RevokedAt != nil {
			t.Fatalf("refused refresh left the token used %v, revoked %v; want neither", stored.UsedAt, stored.RevokedAt)
		}
		e.clock.Advance(time.Minute)
		if err := e.db.SetUserRoles(e.ctx, u.ID, ids[:1]); err != nil {
			t.Fatalf("SetUserRoles: %v", err)
		}
		if _, err := e.refresh(tok.RefreshToken, "", ""); err != nil {
			t.Fatalf("retry after the grace window with fewer roles: %v", err)
		}
	})
}
