package identity_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// checkRequest checks that an event names the actor and the request of
// testRequest.
func checkRequest(t *testing.T, ev permiso.AuditEvent, actorType, actorID string) {
	t.Helper()
	switch {
	case ev.ActorType != actorType || ev.ActorID == nil && actorID != "" || ev.ActorID != nil && *ev.ActorID != actorID:
		t.Errorf("%s: actor %s %v, want %s %s", ev.Action, ev.ActorType, ev.ActorID, actorType, actorID)
	case ev.IPAddress == nil || *ev.IPAddress != testRequest.IP.String(),
		ev.UserAgent == nil || *ev.UserAgent != testRequest.UserAgent,
		ev.RequestID == nil || *ev.RequestID != testRequest.RequestID:
		t.Errorf("%s: request %v %v %v, want %v", ev.Action, ev.IPAddress, ev.UserAgent, ev.RequestID, testRequest)
	}
}

// TestClientLifecycle: the service-clients service on a real store and
// the real OAuth core: defaults and a generated secret stored as its
// hash; an update of fields and scopes together, all or nothing;
// disabling revokes what the client issued, enabling revives nothing;
// rotation with an overlap; deletion; every change audited by the
// service with the actor and the request.
func TestClientLifecycle(t *testing.T) {
	e := newEnv(t)
	admin := e.admin.UserID.String()

	c, secret, err := e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("  Reports  "), ScopeIDs: e.scopeIDs("read:profile")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Reports" || !c.IsActive || c.ClientType != "confidential" || c.RateLimitPerMinute != 60 || c.RateLimitPerHour != 1000 ||
		len(c.ClientID) != len("client_")+11 || c.SecretHash != permiso.HashToken(secret) || len(secret) < 43 {
		t.Fatalf("created %+v with secret %q", c, secret)
	}
	ev := e.auditEvents(identity.ActionClientCreate, "success", 1)[0]
	checkRequest(t, ev, "user", admin)
	if *ev.TargetType != "service_client" || *ev.TargetID != c.ClientID || !slices.Equal(anyStrings(ev.Details["scopes"]), []string{"read:profile"}) {
		t.Errorf("client.create event %+v", ev)
	}

	// Fields and scopes in one update; an unknown scope writes neither.
	upd, err := e.svc.UpdateClient(e.ctx, e.admin, c, identity.ClientInput{Description: ptr("monthly"),
		RateLimitPerHour: ptr(500), ScopeIDs: e.scopeIDs("read:profile", "admin:audit")})
	if err != nil {
		t.Fatal(err)
	}
	if *upd.Description != "monthly" || upd.RateLimitPerHour != 500 || !slices.Equal(upd.ScopeNames(), []string{"admin:audit", "read:profile"}) {
		t.Errorf("updated %+v", upd)
	}
	unknown := []string{uuid.NewString()}
	_, err = e.svc.UpdateClient(e.ctx, e.admin, upd, identity.ClientInput{Name: ptr("Renamed"), ScopeIDs: &unknown})
	wantCode(t, err, permiso.EBADREQUEST, "update with an unknown scope")
	got, err := e.svc.Client(e.ctx, c.ClientID)
	if err != nil || got.Name != "Reports" || len(got.Scopes) != 2 {
		t.Errorf("after a refused update: %+v, %v", got, err)
	}
	ev = e.auditEvents(identity.ActionClientUpdate, "success", 1)[0]
	if !slices.Equal(anyStrings(ev.Details["fields"]), []string{"description", "rate_limit_per_hour", "scope_ids"}) {
		t.Errorf("client.update details %v", ev.Details)
	}

	// Disabling revokes the client's tokens; enabling revives none.
	tok, err := e.clientToken(c.ClientID, secret)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	off, err := e.svc.UpdateClient(e.ctx, e.admin, upd, identity.ClientInput{IsActive: ptr(false)})
	if err != nil || off.IsActive || off.TokensRevokedBefore == nil {
		t.Fatalf("disable: %+v, %v", off, err)
	}
	if _, err := e.svc.UpdateClient(e.ctx, e.admin, off, identity.ClientInput{IsActive: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if e.alive(tok.AccessToken) {
		t.Error("a token issued before the client was disabled works after it was enabled again")
	}
	e.auditEvents(identity.ActionClientUpdate, "success", 3)

	// Rotation with an overlap: both secrets work until it ends.
	rotated, newSecret, err := e.svc.RotateClientSecret(e.ctx, e.admin, off, identity.SecretRotation{CurrentSecret: &secret, OverlapSeconds: ptr(60)})
	if err != nil || rotated.PreviousSecretExpiresAt == nil || newSecret == secret {
		t.Fatalf("rotate: %+v, %v", rotated, err)
	}
	for _, s := range []string{secret, newSecret} {
		if _, err := e.clientToken(c.ClientID, s); err != nil {
			t.Errorf("a secret during the overlap: %v", err)
		}
	}
	_, _, err = e.svc.RotateClientSecret(e.ctx, e.admin, rotated, identity.SecretRotation{CurrentSecret: ptr("wrong"), OverlapSeconds: ptr(-1)})
	if f := fields(err); len(f["current_secret"]) != 1 || len(f["overlap_seconds"]) != 1 {
		t.Errorf("rotate with a wrong secret and overlap: %v", err)
	}
	if ev := e.auditEvents(identity.ActionClientRotateSecret, "failure", 1)[0]; ev.Details["reason"] != "invalid_request" {
		t.Errorf("client.rotate_secret failure %v", ev.Details)
	}
	if ev := e.auditEvents(identity.ActionClientRotateSecret, "success", 1)[0]; ev.Details["overlap_seconds"] != 60.0 {
		t.Errorf("client.rotate_secret details %v", ev.Details)
	}

	// Scopes alone, then deletion.
	scoped, err := e.svc.SetClientScopes(e.ctx, e.admin, rotated, e.scopeIDs("admin:logs"))
	if err != nil || !slices.Equal(scoped.ScopeNames(), []string{"admin:logs"}) {
		t.Fatalf("set scopes: %+v, %v", scoped, err)
	}
	_, err = e.svc.SetClientScopes(e.ctx, e.admin, scoped, nil)
	wantCode(t, err, permiso.EINVALID, "set scopes without scope_ids")
	if err := e.svc.DeleteClient(e.ctx, e.admin, scoped); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Client(e.ctx, c.ClientID)
	wantCode(t, err, permiso.ENOTFOUND, "the deleted client")
	if ev := e.auditEvents(identity.ActionClientDelete, "success", 1)[0]; ev.Details["name"] != "Reports" {
		t.Errorf("client.delete details %v", ev.Details)
	}
	e.auditEvents(identity.ActionClientScopes, "success", 1)

	// A taken client_id is a conflict, audited with reason exists.
	if _, _, err := e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("One"), ClientID: ptr("fixed")}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("Two"), ClientID: ptr("fixed")})
	wantCode(t, err, permiso.EEXISTS, "a taken client_id")
	if ev := e.auditEvents(identity.ActionClientCreate, "failure", 1)[0]; ev.Details["reason"] != "exists" || *ev.TargetID != "fixed" {
		t.Errorf("client.create failure %+v", ev)
	}
}

// TestClientInputValidate: every broken rule of a create is reported at
// once, by field; an update ignores client_id, client_secret and
// client_type; text is trimmed and allowed_ips normalized.
func TestClientInputValidate(t *testing.T) {
	bad := identity.ClientInput{Name: ptr("x"), ClientType: ptr("weird"), ClientID: ptr("bad id!"), ClientSecret: ptr("mine"),
		AccessTokenLifetime: ptr(5), RefreshTokenLifetime: ptr(10), RateLimitPerMinute: ptr(0), RateLimitPerHour: ptr(10),
		AllowedIPs: ptr("300.1.1.1"), ContactEmail: ptr("nope"), WebsiteURL: ptr("ftp://x"), WebhookURL: ptr("https://ok.example.com/\x00"),
		Description: ptr("tab\tok but bell\a"), ScopeIDs: &[]string{"not-a-uuid"}}
	_, err := bad.Validate(true)
	got := fields(err)
	for _, f := range []string{"name", "client_type", "client_id", "client_secret", "access_token_lifetime", "refresh_token_lifetime",
		"rate_limit_per_minute", "rate_limit_per_hour", "allowed_ips", "contact_email", "website_url", "webhook_url", "description", "scope_ids"} {
		if len(got[f]) == 0 {
			t.Errorf("Validate(create) does not name %s: %v", f, got)
		}
	}
	if _, err := (&identity.ClientInput{}).Validate(true); len(fields(err)["name"]) != 1 {
		t.Errorf("create without a name: %v", err)
	}

	update := identity.ClientInput{ClientType: ptr("weird"), ClientID: ptr("bad id!"), ClientSecret: ptr("mine")}
	if _, err := update.Validate(false); err != nil {
		t.Errorf("an update checks client_id, client_secret or client_type: %v", err)
	}

	ok := identity.ClientInput{Name: ptr("  Billing "), AllowedIPs: ptr(" 127.0.0.1, 192.0.2.0/24 ,10.1.2.3/8"),
		ScopeIDs: &[]string{"00000000-0000-4000-8000-000000000001"}}
	ids, err := ok.Validate(true)
	if err != nil || *ok.Name != "Billing" || *ok.AllowedIPs != "127.0.0.1,192.0.2.0/24,10.0.0.0/8" || len(ids) != 1 {
		t.Errorf("normalized %q %q %v, %v", *ok.Name, *ok.AllowedIPs, ids, err)
	}
	any := identity.ClientInput{AllowedIPs: ptr("*")}
	if _, err := any.Validate(false); err != nil || *any.AllowedIPs != "" {
		t.Errorf(`allowed_ips "*": %q, %v`, *any.AllowedIPs, err)
	}
}

// TestClientDelegation: a delegated administrator (admin:clients) gives a
// client only scopes it holds and changes only clients that hold nothing
// it lacks; each refusal is audited by the service as a failure with
// reason "delegation" and changes nothing.
func TestClientDelegation(t *testing.T) {
	e := newEnv(t)
	delegated := identity.Actor{ClientID: "manager", Admin: true, Scopes: []string{"admin:clients", "admin:logs"}, Request: testRequest}

	_, _, err := e.svc.CreateClient(e.ctx, delegated, identity.ClientInput{Name: ptr("Minted"), ClientID: ptr("minted"),
		ScopeIDs: e.scopeIDs("admin:logs", "admin:system")})
	wantCode(t, err, permiso.EFORBIDDEN, "a client holding a scope the caller lacks")
	if _, err := e.svc.Client(e.ctx, "minted"); permiso.ErrorCode(err) != permiso.ENOTFOUND {
		t.Errorf("the refused client exists: %v", err)
	}
	ev := e.auditEvents(identity.ActionClientCreate, "failure", 1)[0]
	checkRequest(t, ev, "client", "manager")
	if ev.Details["reason"] != "delegation" || ev.Details["error"] != "forbidden" || ev.Details["name"] != "Minted" ||
		!slices.Equal(anyStrings(ev.Details["scopes"]), []string{"admin:logs", "admin:system"}) {
		t.Errorf("client.create refusal %v", ev.Details)
	}

	strong, _, err := e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("Strong"), ScopeIDs: e.scopeIDs("admin:system")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UpdateClient(e.ctx, delegated, strong, identity.ClientInput{IsActive: ptr(false)})
	wantCode(t, err, permiso.EFORBIDDEN, "disabling a stronger client")
	_, _, err = e.svc.RotateClientSecret(e.ctx, delegated, strong, identity.SecretRotation{})
	wantCode(t, err, permiso.EFORBIDDEN, "rotating a stronger client's secret")
	wantCode(t, e.svc.DeleteClient(e.ctx, delegated, strong), permiso.EFORBIDDEN, "deleting a stronger client")
	if got, err := e.svc.Client(e.ctx, strong.ClientID); err != nil || !got.IsActive || got.SecretHash != strong.SecretHash {
		t.Errorf("a refused change changed the client: %+v, %v", got, err)
	}
	for _, action := range []string{identity.ActionClientUpdate, identity.ActionClientRotateSecret, identity.ActionClientDelete} {
		if ev := e.auditEvents(action, "failure", 1)[0]; ev.Details["reason"] != "delegation" || *ev.TargetID != strong.ClientID {
			t.Errorf("%s refusal %+v", action, ev)
		}
	}

	// Within what it holds, it may.
	own, _, err := e.svc.CreateClient(e.ctx, delegated, identity.ClientInput{Name: ptr("Logs"), ScopeIDs: e.scopeIDs("admin:logs")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateClient(e.ctx, delegated, own, identity.ClientInput{Description: ptr("Reads logs")}); err != nil {
		t.Error(err)
	}
}

// TestDelegatedAdminCannotConfigureBrowserClient: a delegated
// administrator (admin:clients) cannot decide where a client's browser
// flow sends codes, or skip consent: setting or clearing is_trusted,
// setting redirect_uris or post_logout_redirect_uris, giving the
// authorization_code grant (also at creation), and rotating the secret of
// a client of the browser flow are for a full administrator
// (docs/security-model.md, "Delegated administrators"). Each refusal is a
// 403 audited with reason "delegation" and changes nothing; a role admin
// may.
func TestDelegatedAdminCannotConfigureBrowserClient(t *testing.T) {
	e := newEnv(t)
	delegated := identity.Actor{ClientID: "manager", Admin: true, Scopes: []string{"admin:clients"}, Request: testRequest}
	roleAdmin := identity.Actor{ClientID: "boss", Admin: true, RoleAdmin: true, Request: testRequest}
	uris := &[]string{"https://evil.example/cb"}
	code := &[]string{permiso.GrantTypeAuthorizationCode}

	for name, in := range map[string]identity.ClientInput{
		"trusted":            {IsTrusted: ptr(true)},
		"redirect_uris":      {RedirectURIs: uris, GrantTypes: code},
		"post_logout":        {PostLogoutRedirectURIs: uris},
		"authorization_code": {GrantTypes: code, RedirectURIs: uris},
	} {
		in.Name, in.ClientID = ptr("Browser "+name), ptr("browser-"+strings.ReplaceAll(name, "_", "-"))
		_, _, err := e.svc.CreateClient(e.ctx, delegated, in)
		wantCode(t, err, permiso.EFORBIDDEN, "creating a browser client: "+name)
		if _, err := e.svc.Client(e.ctx, *in.ClientID); permiso.ErrorCode(err) != permiso.ENOTFOUND {
			t.Errorf("%s: the refused client exists: %v", name, err)
		}
	}
	if n := len(e.auditEvents(identity.ActionClientCreate, "failure", 4)); n != 4 {
		t.Errorf("%d audited refusals of creation", n)
	}
	// Sending the values a client already has changes nothing and is
	// allowed (a read-modify-write of the whole client).
	if _, _, err := e.svc.CreateClient(e.ctx, delegated, identity.ClientInput{Name: ptr("Plain"), IsTrusted: ptr(false),
		RedirectURIs: &[]string{}, GrantTypes: &[]string{"client_credentials"}}); err != nil {
		t.Errorf("a plain client with default values: %v", err)
	}

	rp, _, err := e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("First party"), ClientID: ptr("first-party"),
		RedirectURIs: &[]string{"https://app.example/cb"}, GrantTypes: code})
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := e.svc.CreateClient(e.ctx, e.admin, identity.ClientInput{Name: ptr("Machine"), ClientID: ptr("machine")})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		c  permiso.ServiceClient
		in identity.ClientInput
	}{
		"add a redirect URI": {rp, identity.ClientInput{RedirectURIs: &[]string{"https://app.example/cb", "https://evil.example/cb"}}},
		"trust":              {rp, identity.ClientInput{IsTrusted: ptr(true)}},
		"post-logout URI":    {rp, identity.ClientInput{PostLogoutRedirectURIs: uris}},
		"make it a browser":  {plain, identity.ClientInput{RedirectURIs: uris, GrantTypes: code}},
	} {
		_, err := e.svc.UpdateClient(e.ctx, delegated, tc.c, tc.in)
		wantCode(t, err, permiso.EFORBIDDEN, name)
		if got, _ := e.svc.Client(e.ctx, tc.c.ClientID); got.IsTrusted || !slices.Equal(got.RedirectURIs, tc.c.RedirectURIs) ||
			len(got.PostLogoutRedirectURIs) != 0 || !slices.Equal(got.GrantTypes, tc.c.GrantTypes) {
			t.Errorf("%s: a refused change changed the client: %+v", name, got)
		}
	}
	if _, err := e.svc.UpdateClient(e.ctx, delegated, rp, identity.ClientInput{Name: ptr("Renamed"),
		RedirectURIs: &[]string{"https://app.example/cb"}, GrantTypes: code}); err != nil {
		t.Errorf("renaming with the same redirect URIs: %v", err)
	}
	_, _, err = e.svc.RotateClientSecret(e.ctx, delegated, rp, identity.SecretRotation{})
	wantCode(t, err, permiso.EFORBIDDEN, "rotating a browser client's secret")
	if _, _, err := e.svc.RotateClientSecret(e.ctx, delegated, plain, identity.SecretRotation{}); err != nil {
		t.Errorf("rotating a machine client's secret: %v", err)
	}
	for action, n := range map[string]int{identity.ActionClientUpdate: 4, identity.ActionClientRotateSecret: 1} {
		for _, ev := range e.auditEvents(action, "failure", n) {
			if ev.Details["reason"] != "delegation" {
				t.Errorf("%s refusal %+v", action, ev)
			}
		}
	}

	// A role admin may.
	if _, err := e.svc.UpdateClient(e.ctx, roleAdmin, rp, identity.ClientInput{IsTrusted: ptr(true),
		RedirectURIs: &[]string{"https://app.example/cb", "https://app.example/cb2"}}); err != nil {
		t.Errorf("role admin: %v", err)
	}
	if _, _, err := e.svc.RotateClientSecret(e.ctx, roleAdmin, rp, identity.SecretRotation{}); err != nil {
		t.Errorf("role admin rotating: %v", err)
	}
}

// TestUserChangesAudited: the identity service records the changes of
// users, roles and scopes itself, with the actor and the request: a
// success, a failure with the error code, a refusal of the delegation
// rule with reason "delegation", and the public flows as anonymous.
func TestUserChangesAudited(t *testing.T) {
	e := newEnv(t)
	admin := e.admin.UserID.String()
	u := e.register("carol", "carol@example.com", goodPassword)
	checkRequest(t, e.auditEvents(identity.ActionUserRegister, "success", 2)[0], "anonymous", "")

	if _, err := e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{Bio: ptr("hi"), IsVerified: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	ev := e.auditEvents(identity.ActionUserUpdate, "success", 1)[0]
	checkRequest(t, ev, "user", admin)
	if *ev.TargetID != u.ID.String() || !slices.Equal(anyStrings(ev.Details["fields"]), []string{"bio", "is_verified"}) {
		t.Errorf("user.update %+v", ev)
	}

	self := identity.Actor{UserID: u.ID, Request: testRequest}
	_, err := e.svc.UpdateUser(e.ctx, self, u.ID, identity.UserUpdate{IsActive: ptr(true)})
	wantCode(t, err, permiso.EFORBIDDEN, "a user changing their own status")
	if ev := e.auditEvents(identity.ActionUserUpdate, "failure", 1)[0]; ev.Details["error"] != "forbidden" || ev.Details["reason"] != nil {
		t.Errorf("user.update failure %v", ev.Details)
	}

	delegated := identity.Actor{UserID: u.ID, Admin: true, Scopes: []string{"admin:users"}, Request: testRequest}
	_, err = e.svc.Unlock(e.ctx, delegated, e.admin.UserID)
	wantCode(t, err, permiso.EFORBIDDEN, "a delegated administrator unlocking a superuser")
	if ev := e.auditEvents(identity.ActionUserUnlock, "failure", 1)[0]; ev.Details["reason"] != "delegation" || *ev.TargetID != admin {
		t.Errorf("user.unlock refusal %+v", ev)
	}

	r, err := e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("auditors"), ScopeIDs: e.scopeIDs("admin:audit")})
	if err != nil {
		t.Fatal(err)
	}
	if ev := e.auditEvents(identity.ActionRoleCreate, "success", 1)[0]; *ev.TargetID != r.ID.String() || ev.Details["name"] != "auditors" {
		t.Errorf("role.create %+v", ev)
	}
	sc, err := e.svc.CreateScope(e.ctx, e.admin, identity.ScopeInput{Name: ptr("read:reports")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteScope(e.ctx, e.admin, sc.ID); err != nil {
		t.Fatal(err)
	}
	if ev := e.auditEvents(identity.ActionScopeDelete, "success", 1)[0]; ev.Details["name"] != "read:reports" {
		t.Errorf("scope.delete %+v", ev)
	}

	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	ev = e.auditEvents(identity.ActionPasswordResetRequest, "success", 1)[0]
	checkRequest(t, ev, "anonymous", "")
	if ev.TargetType != nil || ev.TargetID != nil {
		t.Errorf("password.reset_request names a target: %+v", ev)
	}
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, "garbage", otherPassword)
	wantCode(t, err, permiso.EBADACTIONTOKEN, "a bad reset token")
	if ev := e.auditEvents(identity.ActionPasswordReset, "failure", 1)[0]; *ev.TargetType != "user" || ev.TargetID != nil {
		t.Errorf("password.reset failure %+v", ev)
	}
}

// anyStrings converts a JSON array read back from the audit log.
func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestClientRedirectURIsRefused: a redirect URI that is not in the form
// docs/oidc.md allows (loopback only as 127.0.0.1 or [::1], a port in
// range, a lower-case scheme and host, no backslash) is a 422 naming the
// field, for redirect_uris and post_logout_redirect_uris alike.
func TestClientRedirectURIsRefused(t *testing.T) {
	for _, uri := range []string{"http://127.0.0.2/cb", "http://[::ffff:127.0.0.1]:9/cb", "https://example.com:99999/cb",
		"HTTPS://EXAMPLE.COM/cb", `https://example.com/a\b`} {
		for _, field := range []string{"redirect_uris", "post_logout_redirect_uris"} {
			in := identity.ClientInput{Name: ptr("Web")}
			if field == "redirect_uris" {
				in.RedirectURIs = &[]string{uri}
			} else {
				in.PostLogoutRedirectURIs = &[]string{uri}
			}
			_, err := in.Validate(true)
			if permiso.ErrorCode(err) != permiso.EINVALID || len(fields(err)[field]) != 1 {
				t.Errorf("%s %q: %v", field, uri, err)
			}
		}
	}
}
