package oauth2_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// disableClient disables the client as PUT /service-clients/{client_id}
// with "is_active": false does (httpapi/clients.go): the cut-off goes in
// the same write as is_active, then RevokeAllForClient ends its sessions
// and refresh tokens and tells the revocation store.
func disableClient(t *testing.T, e *env, id uuid.UUID) {
	t.Helper()
	cutoff := permiso.RevocationCutoff(e.clock.Now())
	if _, err := e.db.UpdateServiceClient(e.ctx, id, func(x *permiso.ServiceClient) error {
		x.RevokeTokensBefore(cutoff)
		x.IsActive = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeAllForClient(e.ctx, id, "client_disabled"); err != nil {
		t.Fatalf("RevokeAllForClient: %v", err)
	}
}

func enableClient(t *testing.T, e *env, id uuid.UUID) {
	t.Helper()
	if _, err := e.db.UpdateServiceClient(e.ctx, id, func(x *permiso.ServiceClient) error { x.IsActive = true; return nil }); err != nil {
		t.Fatal(err)
	}
}

// introspectActive asks as the resource-server client rs whether tok is
// active.
func introspectActive(t *testing.T, e *env, rs permiso.ServiceClient, tok string) bool {
	t.Helper()
	in, err := e.svc.Introspect(e.ctx, oauth2.Caller{Client: &rs}, tok, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return in.Active
}

// TestDisabledClientReenabledRevivesNothing: disabling a service client
// revokes what was issued through it (its service token, a user's access
// token obtained through it, that user's refresh token and session), and
// enabling it again revives none of them, even for tokens issued in the
// same second as the disable; tokens issued after the re-enable work.
func TestDisabledClientReenabledRevivesNothing(t *testing.T) {
	e := newEnv(t)
	e.createUser("dana", goodPassword, permiso.RoleUser)
	c, secret := e.createClient("app", nil, "read:profile")
	rs, _ := e.createClient("rs", nil)
	auth := basic("app", secret)
	serviceToken := func() string {
		return e.mustToken(url.Values{"grant_type": {"client_credentials"}}, auth).AccessToken
	}
	loginViaClient := func() oauth2.TokenResponse {
		return e.mustToken(url.Values{"username": {"dana"}, "password": {goodPassword}}, auth)
	}
	direct := e.login("dana", goodPassword, "")

	e.clock.Advance(100 * time.Millisecond)
	svc := serviceToken()
	user := loginViaClient()
	e.clock.Advance(300 * time.Millisecond) // the same second as the disable
	for _, tok := range []string{svc, user.AccessToken} {
		e.mustAuthenticate(tok)
	}

	disableClient(t, e, c.ID)
	e.wantInvalidToken(svc, "service token of a disabled client")
	e.wantInvalidToken(user.AccessToken, "user token through a disabled client")
	sess, err := e.db.GetSession(e.ctx, uuid.MustParse(user.SessionID))
	if err != nil || sess.RevokedAt == nil {
		t.Fatalf("session through the disabled client: %+v, %v; want revoked", sess, err)
	}
	rt, err := e.db.GetRefreshTokenByHash(e.ctx, permiso.HashToken(user.RefreshToken))
	if err != nil || rt.RevokedAt == nil || rt.RevocationReason == nil || *rt.RevocationReason != "client_disabled" {
		t.Fatalf("refresh token through the disabled client: %+v, %v; want revoked (client_disabled)", rt, err)
	}
	// The cut-off is in the revocation store too, for every instance.
	if revoked, err := e.rev.IsRevoked(e.ctx, uuid.NewString(), "", permiso.ClientRevocationSubject("app"), e.clock.Now().Add(-time.Millisecond)); err != nil || !revoked {
		t.Errorf("revocation store: service tokens of the disabled client not revoked (%v, %v)", revoked, err)
	}

	e.clock.Advance(50 * time.Millisecond)
	enableClient(t, e, c.ID)
	e.wantInvalidToken(svc, "old service token after re-enable")
	e.wantInvalidToken(user.AccessToken, "old user token through the client after re-enable")
	_, err = e.refresh(user.RefreshToken, "", auth)
	wantOAuth(t, err, "invalid_grant", 400)
	for name, tok := range map[string]string{"service token": svc, "user token": user.AccessToken, "refresh token": user.RefreshToken} {
		if introspectActive(t, e, rs, tok) {
			t.Errorf("old %s introspected active after re-enable", name)
		}
	}
	// The user's own first-party login is not the client's.
	e.mustAuthenticate(direct.AccessToken)

	// What is issued after the re-enable works.
	svc2 := serviceToken()
	user2 := loginViaClient()
	e.mustAuthenticate(svc2)
	e.mustAuthenticate(user2.AccessToken)
	if !introspectActive(t, e, rs, user2.RefreshToken) {
		t.Error("new refresh token introspected inactive")
	}
	r2, err := e.refresh(user2.RefreshToken, "", auth)
	if err != nil {
		t.Fatalf("refresh of a token issued after the re-enable: %v", err)
	}
	e.mustAuthenticate(r2.AccessToken)
}

// TestRefreshTokenOfReenabledClientStaysDead: even when only the client's
// row holds the cut-off (its sessions were not revoked, as when the
// revocation after the disable failed half-way), a refresh token issued
// through the client before the cut-off is refused after the client is
// enabled again.
func TestRefreshTokenOfReenabledClientStaysDead(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		e.createUser("erin", goodPassword, permiso.RoleUser)
		c, secret := e.createClient("app", nil, "read:profile")
		auth := basic("app", secret)
		old := e.mustToken(url.Values{"username": {"erin"}, "password": {goodPassword}}, auth)
		e.clock.Advance(time.Millisecond)
		cutoff := permiso.RevocationCutoff(e.clock.Now())
		if _, err := e.db.UpdateServiceClient(e.ctx, c.ID, func(x *permiso.ServiceClient) error {
			x.RevokeTokensBefore(cutoff)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_, err := e.refresh(old.RefreshToken, "", auth)
		wantOAuth(t, err, "invalid_grant", 400)
		e.wantInvalidToken(old.AccessToken, "user token issued before the client's cut-off")
		fresh := e.mustToken(url.Values{"username": {"erin"}, "password": {goodPassword}}, auth)
		if _, err := e.refresh(fresh.RefreshToken, "", auth); err != nil {
			t.Fatalf("refresh of a token issued at the cut-off: %v", err)
		}
	})
}

// TestRevokeAllCoversServiceTokens: the global revoke-all (`permiso
// sessions revoke-all` without --user) refuses every token issued before
// it: users' tokens, service clients' tokens and user tokens through a
// client, refresh tokens included, also those issued in the cut-off's own
// second; tokens issued after it work.
func TestRevokeAllCoversServiceTokens(t *testing.T) {
	e := newEnv(t)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	e.createUser("bob", goodPassword, permiso.RoleUser)
	_, secret := e.createClient("svc", nil, "read:profile")
	_, appSecret := e.createClient("app", nil, "read:profile")
	svcToken := func() string {
		return e.mustToken(url.Values{"grant_type": {"client_credentials"}}, basic("svc", secret)).AccessToken
	}
	viaApp := func() oauth2.TokenResponse {
		return e.mustToken(url.Values{"username": {"bob"}, "password": {goodPassword}}, basic("app", appSecret))
	}

	e.clock.Advance(200 * time.Millisecond)
	alice := e.login("alice", goodPassword, "")
	service := svcToken()
	bob := viaApp()
	e.clock.Advance(300 * time.Millisecond) // revoke-all in the same second
	res, err := e.svc.RevokeAll(e.ctx, "revoke-all command")
	if err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if res.Users != 2 || res.Clients != 2 || res.Sessions != 2 || !res.Cutoff.Equal(e.clock.Now()) {
		t.Errorf("RevokeAll = %+v; want 2 users, 2 clients, 2 sessions, cut-off %v", res, e.clock.Now())
	}
	for name, tok := range map[string]string{"user token": alice.AccessToken, "service token": service, "user token through a client": bob.AccessToken} {
		e.wantInvalidToken(tok, name+" issued before the global revoke-all")
	}
	e.wantRefreshRefused(alice.RefreshToken)
	_, err = e.refresh(bob.RefreshToken, "", basic("app", appSecret))
	wantOAuth(t, err, "invalid_grant", 400)
	// One global entry covers any subject, even one the walk never saw.
	if revoked, err := e.rev.IsRevoked(e.ctx, uuid.NewString(), "", permiso.ClientRevocationSubject("never-seen"), res.Cutoff.Add(-time.Millisecond)); err != nil || !revoked {
		t.Errorf("global cut-off: a token of an unknown subject issued before it is not revoked (%v, %v)", revoked, err)
	}
	if events := e.audit.find(oauth2.ActionRevokeAll); len(events) != 2+2+1 {
		t.Errorf("%d %s audit events, want one per user, one per client and one for the whole", len(events), oauth2.ActionRevokeAll)
	}

	// Issued at the cut-off or after: accepted.
	e.mustAuthenticate(svcToken())
	e.mustAuthenticate(e.login("alice", goodPassword, "").AccessToken)
	again := viaApp()
	e.mustAuthenticate(again.AccessToken)
	if _, err := e.refresh(again.RefreshToken, "", basic("app", appSecret)); err != nil {
		t.Fatalf("refresh after revoke-all: %v", err)
	}
}

// TestRevokeAllForUserSameSecond: a user's revoke-all refuses a token the
// user got earlier in the same second (the cut-off is exact to the
// millisecond, not the whole second of iat), and a login at the cut-off
// works.
func TestRevokeAllForUserSameSecond(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	e.clock.Advance(250 * time.Millisecond)
	early := e.login("alice", goodPassword, "")
	e.clock.Advance(499*time.Millisecond + 700*time.Microsecond)
	if _, err := e.svc.RevokeAllForUser(e.ctx, u.ID, "password_change"); err != nil {
		t.Fatal(err)
	}
	got, err := e.db.GetUser(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The cut-off is the revocation's moment rounded up to a millisecond.
	if want := e.clock.Now().Truncate(time.Millisecond).Add(time.Millisecond); got.TokensRevokedBefore == nil || !got.TokensRevokedBefore.Equal(want) {
		t.Fatalf("TokensRevokedBefore = %v, want %v", got.TokensRevokedBefore, want)
	}
	if early.AccessToken == "" || e.clock.Now().Truncate(time.Second) != got.TokensRevokedBefore.Truncate(time.Second) {
		t.Fatal("the test must revoke in the second of the early token")
	}
	e.wantInvalidToken(early.AccessToken, "token issued earlier in the cut-off's second")
	e.clock.Advance(300 * time.Microsecond) // at the cut-off
	e.mustAuthenticate(e.login("alice", goodPassword, "").AccessToken)
}

func TestRevokeAllForClientUnknown(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.RevokeAllForClient(e.ctx, uuid.New(), "x"); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("RevokeAllForClient(unknown) = %v, want ErrNotFound", err)
	}
}

// TestCodeOfReenabledClientStaysDead: an authorization code issued before
// its client was disabled is refused at the exchange after the client is
// enabled again within the code's lifetime, as the client's tokens are
// (docs/security-model.md: enabling it again revives nothing).
func TestCodeOfReenabledClientStaysDead(t *testing.T) {
	e := newOIDCEnv(t)
	c, secret := e.rpClient("rp", false)
	e.createUser("dana", goodPassword, permiso.RoleUser)
	b, u := e.signedIn("dana", goodPassword)
	e.clock.Advance(100 * time.Millisecond)
	code := e.issue("rp", b, u)
	e.clock.Advance(300 * time.Millisecond) // the same second as the disable
	disableClient(t, e, c.ID)
	e.clock.Advance(time.Second)
	enableClient(t, e, c.ID)
	_, err := e.token(exchange(code, rfcVerifier), basic("rp", secret))
	wantOAuth(t, err, "invalid_grant", 400)
	// A code issued after the enabling works.
	e.mustToken(exchange(e.issue("rp", b, u), rfcVerifier), basic("rp", secret))
}
