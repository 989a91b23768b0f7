package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

const hijackRedirect = "https://app.example.com/cb"

// codeExchange runs the authorization_code grant through the token
// endpoint.
func (e *idEnv) codeExchange(clientID, secret, code, verifier string) *httptest.ResponseRecorder {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {hijackRedirect}, "code_verifier": {verifier}}
	r := formRequest("/api/v1/auth/token", form)
	r.SetBasicAuth(clientID, secret)
	return e.send(r)
}

// browserCode signs username in and runs an authorization of clientID
// for scope with prompt=none; it returns the code, or "" and the error.
func (e *idEnv) browserCode(username, clientID, scope, verifier string) (string, error) {
	e.t.Helper()
	_, b, u, err := e.auth.SignIn(e.ctx, username, idPassword, oauth2.RequestMeta{}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ar, err := e.auth.ParseAuthorizeRequest(e.ctx, url.Values{"client_id": {clientID}, "redirect_uri": {hijackRedirect},
		"response_type": {"code"}, "scope": {scope}, "state": {"s"}, "prompt": {"none"},
		"code_challenge": {permiso.S256Challenge(verifier)}, "code_challenge_method": {"S256"}})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.auth.NextStep(ar, &b, false, false); err != nil {
		return "", err
	}
	target, err := e.auth.IssueCode(e.ctx, ar, b, u, oauth2.RequestMeta{})
	if err != nil {
		e.t.Fatal(err)
	}
	loc, _ := url.Parse(target)
	return loc.Query().Get("code"), nil
}

// TestClientsAdminCannotHijackBrowserFlow: a holder of admin:clients
// alone cannot take over an administrator through the browser flow
// (docs/security-model.md, "Delegated administrators"; docs/oidc.md): it
// cannot register a trusted or browser client, add its redirect URI to a
// first-party client, trust a client or rotate a browser client's secret
// (403, audited with reason "delegation"); and a browser client holding no
// scope gets none of a signed-in administrator's admin:* scopes, while a
// trusted client holding one must ask for consent (prompt=none:
// consent_required). On both backends.
func TestClientsAdminCannotHijackBrowserFlow(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		_, _, tok := e.delegatedUser("integrator", "admin:clients")
		cp := "/api/v1/service-clients"

		evil := e.name("evil-")
		w := e.do("POST", cp, cp, tok, map[string]any{"name": "Evil", "client_id": evil, "is_trusted": true,
			"redirect_uris": []string{"https://evil.example/cb"}, "grant_types": []string{"authorization_code"}})
		e.refusedAsDelegation(w, identity.ActionClientCreate, evil, "creating a trusted browser client")

		register := func(trusted bool, scopes ...string) (string, string) {
			id := e.name("app-")
			w := e.do("POST", cp, cp, admin, map[string]any{"name": "App " + id, "client_id": id, "is_trusted": trusted,
				"redirect_uris": []string{hijackRedirect}, "grant_types": []string{"authorization_code"},
				"scope_ids": idStrings(e.scopeIDs(scopes...))})
			var created struct {
				Secret string `json:"client_secret"`
			}
			if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &created) != nil {
				t.Fatalf("registering %s: %d %s", id, w.Code, w.Body)
			}
			return id, created.Secret
		}
		app, appSecret := register(true)
		route := cp + "/{client_id}"
		for what, body := range map[string]map[string]any{
			"adding a redirect URI": {"redirect_uris": []string{hijackRedirect, "https://evil.example/cb"}},
			"clearing is_trusted":   {"is_trusted": false},
		} {
			e.refusedAsDelegation(e.do("PUT", route, cp+"/"+app, tok, body), identity.ActionClientUpdate, app, what)
		}
		e.refusedAsDelegation(e.do("POST", route+"/rotate-secret", cp+"/"+app+"/rotate-secret", tok, map[string]any{}),
			identity.ActionClientRotateSecret, app, "rotating a browser client's secret")

		root := e.user("root", false, permiso.RoleAdmin)
		verifier := strings.Repeat("v", 43)
		const asked = "openid admin:users admin:system admin:clients"
		code, err := e.browserCode(root.Username, app, asked, verifier)
		if err != nil {
			t.Fatalf("a trusted client asking scopes it does not hold: %v", err)
		}
		m := e.expect(e.codeExchange(app, appSecret, code, verifier), http.StatusOK, "code exchange")
		if m["scope"] != "openid" {
			t.Errorf("a client holding no scope got %v", m["scope"])
		}

		held, _ := register(true, "admin:users")
		_, err = e.browserCode(root.Username, held, asked, verifier)
		var ae *oauth2.AuthorizeError
		if !errors.As(err, &ae) || ae.Err.Code != "consent_required" {
			t.Errorf("prompt=none for admin:users from a trusted client: %v, want consent_required", err)
		}
	})
}

// TestCodeOfReenabledClientRefusedOnBothBackends: a code issued before its
// client was disabled is refused after the client is enabled again
// (docs/security-model.md: enabling it again revives nothing), with the
// timestamps as each backend stores them.
func TestCodeOfReenabledClientRefusedOnBothBackends(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		cp := "/api/v1/service-clients"
		id := e.name("app-")
		w := e.do("POST", cp, cp, admin, map[string]any{"name": "App " + id, "client_id": id, "is_trusted": true,
			"redirect_uris": []string{hijackRedirect}, "grant_types": []string{"authorization_code"}})
		var created struct {
			Secret string `json:"client_secret"`
		}
		if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &created) != nil {
			t.Fatalf("registering: %d %s", w.Code, w.Body)
		}
		u := e.user("dana", false, permiso.RoleUser)
		verifier := strings.Repeat("w", 43)
		code, err := e.browserCode(u.Username, id, "openid", verifier)
		if err != nil {
			t.Fatal(err)
		}
		route := cp + "/{client_id}"
		e.expect(e.do("PUT", route, cp+"/"+id, admin, map[string]any{"is_active": false}), http.StatusOK, "disable")
		e.expect(e.do("PUT", route, cp+"/"+id, admin, map[string]any{"is_active": true}), http.StatusOK, "enable")
		if m := e.expect(e.codeExchange(id, created.Secret, code, verifier), http.StatusBadRequest, "old code"); m["error"] != "invalid_grant" {
			t.Errorf("old code: %v", m)
		}
		code, err = e.browserCode(u.Username, id, "openid", verifier)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(e.codeExchange(id, created.Secret, code, verifier), http.StatusOK, "new code")
	})
}
