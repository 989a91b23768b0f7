package oauth2_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)

	t.Run("garbage and wrong kinds", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		for _, bad := range []string{"", "garbage", "a.b.c", r.RefreshToken, r.AccessToken + "x"} {
			e.wantInvalidToken(bad, "bad token "+bad)
		}
	})

	t.Run("expired", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		e.clock.Advance(15*time.Minute + time.Minute)
		e.wantInvalidToken(r.AccessToken, "expired")
	})

	t.Run("revoked jti", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		p := e.mustAuthenticate(r.AccessToken)
		if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &p}, r.AccessToken, ""); err != nil {
			t.Fatal(err)
		}
		_, err := e.authenticate(r.AccessToken)
		if permiso.ErrorCode(err) != permiso.EINVALIDTOKEN || permiso.ErrorMessage(err) != "Token has been revoked" {
			t.Fatalf("err = %v", err)
		}
		// The same session's other tokens are unaffected by a jti revocation.
		r2, err := e.refresh(r.RefreshToken, "", "")
		if err != nil {
			t.Fatal(err)
		}
		e.mustAuthenticate(r2.AccessToken)
	})

	t.Run("revoked sid", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		if err := e.rev.RevokeSession(e.ctx, r.SessionID, e.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(r.AccessToken, "revoked session")
	})

	t.Run("disabled user", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		setActive(t, e, u.ID, false)
		_, err := e.authenticate(r.AccessToken)
		if permiso.ErrorMessage(err) != "User account is disabled" {
			t.Fatalf("err = %v", err)
		}
		setActive(t, e, u.ID, true)
		e.mustAuthenticate(r.AccessToken)
	})

	t.Run("tokens issued before TokensRevokedBefore", func(t *testing.T) {
		r := e.login("alice", goodPassword, "")
		e.clock.Advance(1500 * time.Millisecond)
		sameSecond := e.login("alice", goodPassword, "")
		e.clock.Advance(200 * time.Millisecond)
		cutoff := e.clock.Now()
		e.updateUser(u.ID, func(x *permiso.User) { x.TokensRevokedBefore = &cutoff })
		e.wantInvalidToken(r.AccessToken, "issued before the cutoff")
		// Issue times are compared to the millisecond: a token of the
		// cutoff's own second issued before it is refused, one issued at
		// the cutoff is accepted.
		e.wantInvalidToken(sameSecond.AccessToken, "issued in the cutoff's second, before it")
		after := e.login("alice", goodPassword, "")
		e.mustAuthenticate(after.AccessToken)
	})

	t.Run("deleted user", func(t *testing.T) {
		bob := e.createUser("bob", goodPassword, permiso.RoleUser)
		r := e.login("bob", goodPassword, "")
		if err := e.db.DeleteUser(e.ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(r.AccessToken, "deleted user")
	})

	t.Run("service token of a deactivated client", func(t *testing.T) {
		c, secret := e.createClient("svc", nil, "read:profile")
		r := e.mustToken(url.Values{"grant_type": {"client_credentials"}}, basic("svc", secret))
		e.mustAuthenticate(r.AccessToken)
		if _, err := e.db.UpdateServiceClient(e.ctx, c.ID, func(x *permiso.ServiceClient) error { x.IsActive = false; return nil }); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(r.AccessToken, "deactivated client")
		if err := e.db.DeleteServiceClient(e.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(r.AccessToken, "deleted client")
	})

	t.Run("user token obtained through a client that goes away", func(t *testing.T) {
		e.createUser("dana", goodPassword, permiso.RoleUser)
		c, secret := e.createClient("app-gone", nil, "read:profile")
		login := func() string {
			return e.mustToken(url.Values{"username": {"dana"}, "password": {goodPassword}}, basic("app-gone", secret)).AccessToken
		}
		viaClient, direct := login(), e.login("dana", goodPassword, "").AccessToken
		refresh := e.mustToken(url.Values{"username": {"dana"}, "password": {goodPassword}}, basic("app-gone", secret)).RefreshToken
		e.mustAuthenticate(viaClient)
		rs, _ := e.createClient("rs-introspect", nil, "read:profile")
		active := func(tok string) bool {
			t.Helper()
			in, err := e.svc.Introspect(e.ctx, oauth2.Caller{Client: &rs}, tok, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			return in.Active
		}
		if !active(refresh) {
			t.Fatal("refresh token of an active client introspected inactive")
		}
		if _, err := e.db.UpdateServiceClient(e.ctx, c.ID, func(x *permiso.ServiceClient) error { x.IsActive = false; return nil }); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(viaClient, "user token of a deactivated client")
		if active(refresh) || active(viaClient) {
			t.Error("tokens of a deactivated client introspected active")
		}
		if _, err := e.db.UpdateServiceClient(e.ctx, c.ID, func(x *permiso.ServiceClient) error { x.IsActive = true; return nil }); err != nil {
			t.Fatal(err)
		}
		viaClient = login()
		if err := e.db.DeleteServiceClient(e.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		e.wantInvalidToken(viaClient, "user token of a deleted client")
		e.mustAuthenticate(direct) // the user's own login is not affected
	})
}

func setActive(t *testing.T, e *env, id uuid.UUID, active bool) {
	t.Helper()
	e.updateUser(id, func(x *permiso.User) { x.IsActive = active })
}

// failingRevocations is a RevocationStore whose reads fail, like an
// unreachable Redis.
type failingRevocations struct{ permiso.RevocationStore }

func (failingRevocations) IsRevoked(context.Context, string, string, string, time.Time) (bool, error) {
	return false, permiso.Wrap(permiso.EUNAVAILABLE, "revocation store unreachable", errors.New("dial tcp: connection refused"))
}

func TestAuthenticateRevocationStoreDown(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		e := newEnv(t, func(c *oauth2.Config, d *oauth2.Deps) {
			c.RevocationFailOpen = failOpen
			d.Revocations = failingRevocations{d.Revocations}
		})
		e.createUser("alice", goodPassword, permiso.RoleUser)
		r := e.login("alice", goodPassword, "")
		p, err := e.authenticate(r.AccessToken)
		if failOpen {
			if err != nil || !p.IsUser() {
				t.Fatalf("fail-open: %v", err)
			}
			continue
		}
		if permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
			t.Fatalf("fail-closed: err = %v, want EUNAVAILABLE", err)
		}
		// Introspection says so too, rather than "inactive".
		admin := e.createUser("root", goodPassword, permiso.RoleAdmin)
		_, err = e.svc.Introspect(e.ctx, oauth2.Caller{Principal: &oauth2.Principal{User: &admin}}, r.AccessToken, "", nil)
		if permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
			t.Fatalf("introspect fail-closed: err = %v", err)
		}
	}
}

func TestPrincipalAdmin(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	e.createUser("root", goodPassword, permiso.RoleAdmin)
	su := e.createUser("su", goodPassword, permiso.RoleUser)
	e.updateUser(su.ID, func(x *permiso.User) { x.IsSuperuser = true })
	for name, want := range map[string]bool{"alice": false, "root": true, "su": true} {
		p := e.mustAuthenticate(e.login(name, goodPassword, "").AccessToken)
		if p.IsAdmin() != want || p.Can("admin:tokens") != want {
			t.Errorf("%s: IsAdmin %v Can %v, want %v", name, p.IsAdmin(), p.Can("admin:tokens"), want)
		}
	}
}

func TestIntrospect(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice", goodPassword, permiso.RoleUser)
	e.createUser("bob", goodPassword, permiso.RoleUser)
	e.createUser("root", goodPassword, permiso.RoleAdmin)
	svc, secret := e.createClient("svc", nil, "read:profile")
	_, tokSecret := e.createClient("tokens-svc", nil, "admin:tokens")

	aliceLogin := e.login("alice", goodPassword, "")
	alicePrincipal := e.mustAuthenticate(aliceLogin.AccessToken)
	bobPrincipal := e.mustAuthenticate(e.login("bob", goodPassword, "").AccessToken)
	rootPrincipal := e.mustAuthenticate(e.login("root", goodPassword, "").AccessToken)
	svcToken := e.mustToken(url.Values{"grant_type": {"client_credentials"}}, basic("svc", secret)).AccessToken
	svcPrincipal := e.mustAuthenticate(svcToken)
	tokPrincipal := e.mustAuthenticate(e.mustToken(url.Values{"grant_type": {"client_credentials"}}, basic("tokens-svc", tokSecret)).AccessToken)

	revoked := e.login("alice", goodPassword, "")
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &alicePrincipal}, revoked.AccessToken, ""); err != nil {
		t.Fatal(err)
	}
	used := e.login("alice", goodPassword, "")
	if _, err := e.refresh(used.RefreshToken, "", ""); err != nil {
		t.Fatal(err)
	}
	// An expired access token: issued an hour "ago" through a second
	// service sharing the stores and signer.
	expired := func() string {
		e.clock.Advance(-time.Hour)
		defer e.clock.Advance(time.Hour)
		return e.login("alice", goodPassword, "").AccessToken
	}()

	callers := map[string]oauth2.Caller{
		"client credentials": {Client: &svc},
		"admin user":         {Principal: &rootPrincipal},
		"admin:tokens":       {Principal: &tokPrincipal},
		"owner":              {Principal: &alicePrincipal},
		"other user":         {Principal: &bobPrincipal},
		"service bearer":     {Principal: &svcPrincipal},
	}
	type row struct {
		token  string
		active map[string]bool // caller -> active; missing = inactive
		typ    string
	}
	all := map[string]bool{"client credentials": true, "admin user": true, "admin:tokens": true}
	with := func(m map[string]bool, extra ...string) map[string]bool {
		out := map[string]bool{}
		for k, v := range m {
			out[k] = v
		}
		for _, x := range extra {
			out[x] = true
		}
		return out
	}
	rows := map[string]row{
		"valid access":   {aliceLogin.AccessToken, with(all, "owner"), "access_token"},
		"valid refresh":  {aliceLogin.RefreshToken, with(all, "owner"), "refresh_token"},
		"service token":  {svcToken, with(all, "service bearer"), "service_token"},
		"expired access": {expired, nil, ""},
		"revoked access": {revoked.AccessToken, nil, ""},
		"used refresh":   {used.RefreshToken, nil, ""},
		"garbage":        {"garbage", nil, ""},
		"garbage jwt":    {"a.b.c", nil, ""},
		"empty":          {"", nil, ""},
	}
	for rname, r := range rows {
		for cname, c := range callers {
			got, err := e.svc.Introspect(e.ctx, c, r.token, "", nil)
			if err != nil {
				t.Fatalf("%s by %s: %v", rname, cname, err)
			}
			// A bearer caller's one-batch path answers exactly the same.
			if c.Principal != nil {
				viaBearer, callerErr, err := e.svc.IntrospectAsBearer(e.ctx, c.Principal.Token, r.token, "", nil)
				if callerErr != nil || err != nil || !reflect.DeepEqual(viaBearer, got) {
					t.Errorf("%s by %s: IntrospectAsBearer = %+v, %v, %v; Introspect = %+v", rname, cname, viaBearer, callerErr, err, got)
				}
			}
			if got.Active != r.active[cname] {
				t.Errorf("%s by %s: active = %v, want %v", rname, cname, got.Active, r.active[cname])
				continue
			}
			if !got.Active {
				if b, _ := json.Marshal(got); string(b) != `{"active":false}` {
					t.Errorf("%s by %s: inactive answer %s", rname, cname, b)
				}
				continue
			}
			if got.TokenType != r.typ {
				t.Errorf("%s: token_type %q, want %q", rname, got.TokenType, r.typ)
			}
		}
	}

	// Field values of an active access and refresh token.
	acc, _ := e.svc.Introspect(e.ctx, oauth2.Caller{Client: &svc}, aliceLogin.AccessToken, "access_token", nil)
	want := oauth2.Introspection{
		Active: true, Scope: "read:profile write:profile", Username: "alice", TokenType: "access_token",
		Exp: alicePrincipal.Claims.ExpiresAt.Unix(), Iat: alicePrincipal.Claims.IssuedAt.Unix(),
		Nbf: alicePrincipal.Claims.NotBefore.Unix(), Sub: alice.ID.String(), Aud: []string{testIssuer},
		Iss: testIssuer, Jti: alicePrincipal.Claims.ID, Sid: aliceLogin.SessionID,
	}
	if !reflect.DeepEqual(acc, want) {
		t.Errorf("access introspection\n got %+v\nwant %+v", acc, want)
	}
	ref, _ := e.svc.Introspect(e.ctx, oauth2.Caller{Principal: &alicePrincipal}, aliceLogin.RefreshToken, "refresh_token", nil)
	if ref.Sub != alice.ID.String() || ref.Username != "alice" || ref.Sid != aliceLogin.SessionID || ref.Iss != testIssuer ||
		ref.Scope != "read:profile write:profile" || ref.Exp != e.clock.Now().Add(30*24*time.Hour).Unix() {
		t.Errorf("refresh introspection %+v", ref)
	}
	svcIntro, _ := e.svc.Introspect(e.ctx, oauth2.Caller{Client: &svc}, svcToken, "", nil)
	if svcIntro.ClientID != "svc" || svcIntro.Sub != "svc" || svcIntro.Sid != "" {
		t.Errorf("service introspection %+v", svcIntro)
	}

	// A refresh token of a disabled user is inactive.
	setActive(t, e, alice.ID, false)
	if got, _ := e.svc.Introspect(e.ctx, oauth2.Caller{Client: &svc}, aliceLogin.RefreshToken, "", nil); got.Active {
		t.Error("refresh token of a disabled user is active")
	}
	setActive(t, e, alice.ID, true)

	// No caller at all.
	if _, err := e.svc.Introspect(e.ctx, oauth2.Caller{}, aliceLogin.AccessToken, "", nil); permiso.ErrorCode(err) != permiso.EUNAUTHORIZED {
		t.Errorf("caller-less introspection: %v", err)
	}
}

func TestRevokeOwnership(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	e.createUser("bob", goodPassword, permiso.RoleUser)
	e.createUser("root", goodPassword, permiso.RoleAdmin)
	appA, secretA := e.createClient("app-a", nil)
	appB, _ := e.createClient("app-b", nil)

	bob := e.mustAuthenticate(e.login("bob", goodPassword, "").AccessToken)
	root := e.mustAuthenticate(e.login("root", goodPassword, "").AccessToken)

	// Another user cannot revoke: 200 (nil) and nothing happens.
	a := e.login("alice", goodPassword, "")
	for _, tok := range []string{a.AccessToken, a.RefreshToken} {
		if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &bob}, tok, ""); err != nil {
			t.Fatalf("foreign revoke: %v", err)
		}
	}
	e.mustAuthenticate(a.AccessToken)
	if len(e.audit.find(oauth2.ActionTokenRevoke)) != 2 {
		t.Error("refused revocations not audited")
	}
	// A client the token was not issued to cannot either.
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{Client: &appB}, a.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	a2, err := e.refresh(a.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("refresh after refused revocations: %v", err)
	}

	// The owner revokes the refresh token: family, session and the
	// session's access tokens all end.
	alice := e.mustAuthenticate(a2.AccessToken)
	ctx := permiso.ContextWithRequestMeta(e.ctx, oauth2.RequestMeta{RequestID: "req-revoke"})
	if err := e.svc.Revoke(ctx, oauth2.Caller{Principal: &alice}, a2.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	if ev := e.audit.find(oauth2.ActionTokenRevoke); len(ev) != 4 || ev[3].Result != "success" || *ev[3].RequestID != "req-revoke" || *ev[3].ActorID != alice.User.ID.String() {
		t.Errorf("token.revoke events %+v", ev)
	}
	e.wantRefreshRefused(a2.RefreshToken)
	e.wantInvalidToken(a2.AccessToken, "access token of a revoked refresh token's session")
	e.wantInvalidToken(a.AccessToken, "older access token of the session")

	// An admin may revoke anyone's access token, within the delegation
	// rule the caller carries; without one the revocation is refused.
	b := e.login("alice", goodPassword, "")
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &root}, b.AccessToken, ""); permiso.ErrorCode(err) != permiso.EFORBIDDEN {
		t.Fatalf("admin revocation without a delegation rule: %v", err)
	}
	e.mustAuthenticate(b.AccessToken)
	rootCaller := oauth2.Caller{Principal: &root, Delegation: identity.NewDelegation(identity.Actor{UserID: root.User.ID, Admin: true, RoleAdmin: true}, nil)}
	if err := e.svc.Revoke(e.ctx, rootCaller, b.AccessToken, ""); err != nil {
		t.Fatal(err)
	}
	e.wantInvalidToken(b.AccessToken, "revoked by an admin")
	// Only a superuser ends a superuser's session: a holder of role admin
	// is refused (403), and the token keeps working.
	su := e.createUser("su", goodPassword, permiso.RoleUser)
	e.updateUser(su.ID, func(x *permiso.User) { x.IsSuperuser = true })
	suLogin := e.login("su", goodPassword, "")
	for _, tok := range []string{suLogin.AccessToken, suLogin.RefreshToken} {
		if err := e.svc.Revoke(e.ctx, rootCaller, tok, ""); permiso.ErrorCode(err) != permiso.EFORBIDDEN {
			t.Errorf("role admin revoking a superuser's token: %v", err)
		}
	}
	e.mustAuthenticate(suLogin.AccessToken)
	if ev := e.audit.find(oauth2.ActionTokenRevoke); ev[len(ev)-1].Result != "failure" || ev[len(ev)-1].Details["reason"] != "delegation" {
		t.Errorf("refused revocation audited as %+v", ev[len(ev)-1])
	}

	// The client a token was issued to may revoke it.
	c := e.mustToken(url.Values{"username": {"alice"}, "password": {goodPassword}}, basic("app-a", secretA))
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{Client: &appA}, c.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.refresh(c.RefreshToken, "", basic("app-a", secretA))
	wantOAuth(t, err, "invalid_grant", 400)
	e.wantInvalidToken(c.AccessToken, "revoked by its client")

	// Unknown, garbage and expired tokens: nil.
	d := e.login("alice", goodPassword, "")
	e.clock.Advance(time.Hour)
	for _, tok := range []string{"garbage", "x.y.z", d.AccessToken, string(make([]byte, 10000))} {
		if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &root}, tok, ""); err != nil {
			t.Errorf("revoke of %.10q: %v", tok, err)
		}
	}
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{}, d.RefreshToken, ""); permiso.ErrorCode(err) != permiso.EUNAUTHORIZED {
		t.Errorf("caller-less revoke: %v", err)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	one := e.login("alice", goodPassword, "")
	two := e.login("alice", goodPassword, "")
	three := e.login("alice", goodPassword, "")

	p := e.mustAuthenticate(one.AccessToken)
	n, err := e.svc.Logout(e.ctx, p, false)
	if err != nil || n != 1 {
		t.Fatalf("Logout = %d, %v", n, err)
	}
	e.wantInvalidToken(one.AccessToken, "logged-out token")
	e.wantRefreshRefused(one.RefreshToken)
	// Other sessions are untouched.
	e.mustAuthenticate(two.AccessToken)
	two2, err := e.refresh(two.RefreshToken, "", "")
	if err != nil {
		t.Fatal(err)
	}

	// Logging out an ended session again counts nothing.
	if n, err := e.svc.Logout(e.ctx, oauth2.Principal{Claims: p.Claims, User: p.User}, false); err != nil || n != 0 {
		t.Errorf("second logout = %d, %v", n, err)
	}

	e.clock.Advance(2 * time.Second)
	p2 := e.mustAuthenticate(two2.AccessToken)
	n, err = e.svc.Logout(e.ctx, p2, true)
	if err != nil || n != 2 {
		t.Fatalf("Logout(all) = %d, %v; want 2 sessions", n, err)
	}
	for _, tok := range []string{two.AccessToken, two2.AccessToken, three.AccessToken} {
		e.wantInvalidToken(tok, "after logout all")
	}
	for _, rt := range []string{two2.RefreshToken, three.RefreshToken} {
		e.wantRefreshRefused(rt)
	}
	got, _ := e.db.GetUser(e.ctx, u.ID)
	if got.TokensRevokedBefore == nil || !got.TokensRevokedBefore.Equal(e.clock.Now()) {
		t.Errorf("TokensRevokedBefore %v", got.TokensRevokedBefore)
	}
	// A new login right away works.
	e.mustAuthenticate(e.login("alice", goodPassword, "").AccessToken)

	// Service principals cannot log out.
	_, secret := e.createClient("svc", nil)
	sp := e.mustAuthenticate(e.mustToken(url.Values{"grant_type": {"client_credentials"}}, basic("svc", secret)).AccessToken)
	if _, err := e.svc.Logout(e.ctx, sp, false); permiso.ErrorCode(err) != permiso.EFORBIDDEN {
		t.Errorf("service logout: %v", err)
	}
}

func TestRevokeAllForUser(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	a := e.login("alice", goodPassword, "")
	b := e.login("alice", goodPassword, "")
	n, err := e.svc.RevokeAllForUser(e.ctx, u.ID, "admin_action")
	if err != nil || n != 2 {
		t.Fatalf("RevokeAllForUser = %d, %v", n, err)
	}
	for _, r := range []oauth2.TokenResponse{a, b} {
		e.wantInvalidToken(r.AccessToken, "after revoke-all")
		e.wantRefreshRefused(r.RefreshToken)
	}
	if _, err := e.svc.RevokeAllForUser(e.ctx, uuid.New(), "x"); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

// TestIntrospectAsBearerCallerErrors: a caller whose own token is invalid
// or revoked gets its error as callerErr (401), whatever it asks about.
func TestIntrospectAsBearerCallerErrors(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	good := e.login("alice", goodPassword, "").AccessToken
	revoked := e.login("alice", goodPassword, "").AccessToken
	p := e.mustAuthenticate(revoked)
	if err := e.svc.Revoke(e.ctx, oauth2.Caller{Principal: &p}, revoked, ""); err != nil {
		t.Fatal(err)
	}
	for name, caller := range map[string]string{"garbage": "a.b.c", "revoked": revoked, "empty": ""} {
		_, callerErr, err := e.svc.IntrospectAsBearer(e.ctx, caller, good, "", nil)
		if permiso.ErrorCode(callerErr) != permiso.EINVALIDTOKEN || err != nil {
			t.Errorf("%s caller: callerErr %v, err %v; want EINVALIDTOKEN", name, callerErr, err)
		}
	}
}
