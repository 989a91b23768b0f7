package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/permiso/permiso"
)

// The regression tests of the boundary rule for untrusted bytes
// (docs/security-model.md, "Untrusted bytes"). PostgreSQL refuses NUL and
// invalid UTF-8 in text that SQLite stores as given; each test runs on
// SQLite and, with PERMISO_TEST_DATABASE_URL, on PostgreSQL, and expects
// the same answer from both.

// send serves a request built by the caller (raw bytes anywhere).
func (e *idEnv) send(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// admin creates a superuser and returns its access token.
func (e *idEnv) adminToken() string {
	e.t.Helper()
	a := e.user("admin", true)
	return e.login(a.Username, idPassword, "").AccessToken
}

// errorOf decodes an error response and checks its status and code.
func errorOf(t *testing.T, w *httptest.ResponseRecorder, status int, code, what string) map[string]any {
	t.Helper()
	m := want(t, w, status, what)
	if m["error"] != code {
		t.Fatalf("%s: error %v, want %s: %s", what, m["error"], code, w.Body)
	}
	return m
}

// detailFields returns the field names of a validation error's details.
func detailFields(m map[string]any) []string {
	var out []string
	d, _ := m["details"].([]any)
	for _, x := range d {
		if f, ok := x.(map[string]any)["field"].(string); ok {
			out = append(out, f)
		}
	}
	return out
}

// TestUserAgentIsCleanedAtLogin: a User-Agent that is not valid UTF-8,
// holds a NUL or is very long does not keep a client from logging in or
// refreshing (password grant, refresh grant at /auth/token and at
// /auth/refresh); the session keeps it cleaned and bounded.
func TestUserAgentIsCleanedAtLogin(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		u := e.user("agent", false, "user")
		for _, ua := range []string{"\xff\xfe curl/8.0 \x00", "Mozilla/5.0 \xc0\x80" + strings.Repeat("é", 50_000)} {
			form := func(v url.Values) *http.Request {
				r := httptest.NewRequest("POST", "/api/v1/auth/token", strings.NewReader(v.Encode()))
				r.Header.Set("Content-Type", contentTypeForm)
				r.Header.Set("User-Agent", ua)
				return r
			}
			w := e.send(form(url.Values{"grant_type": {"password"}, "username": {u.Username}, "password": {idPassword}}))
			m := want(t, w, http.StatusOK, "password grant")
			w = e.send(form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}}))
			m = want(t, w, http.StatusOK, "refresh grant")
			body, _ := json.Marshal(map[string]string{"refresh_token": m["refresh_token"].(string)})
			r := httptest.NewRequest("POST", "/api/v1/auth/refresh", strings.NewReader(string(body)))
			r.Header.Set("Content-Type", contentTypeJSON)
			r.Header.Set("User-Agent", ua)
			m = want(t, e.send(r), http.StatusOK, "/auth/refresh")

			// The session holds the cleaned value.
			w = e.do("GET", "/api/v1/sessions", "/api/v1/sessions", m["access_token"].(string), nil)
			list := want(t, w, http.StatusOK, "sessions")["sessions"].([]any)
			wantUA := permiso.CleanText(ua, maxUserAgentBytes)
			found := false
			for _, x := range list {
				got, _ := x.(map[string]any)["user_agent"].(string)
				if !utf8.ValidString(got) || strings.ContainsRune(got, 0) || len(got) > maxUserAgentBytes {
					t.Errorf("stored user agent %.80q (%d bytes)", got, len(got))
				}
				found = found || got == wantUA
			}
			if !found {
				t.Errorf("no session with user agent %.80q among %d sessions", wantUA, len(list))
			}
		}
	})
}

// TestStoredTextRefusesNULAndControls: NUL or another control character
// (other than tab, line feed, carriage return) in a stored text field is
// 422 validation_error naming the field, and nothing is written.
func TestStoredTextRefusesNULAndControls(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		self := e.user("self", false, "user")
		selfTok := e.login(self.Username, idPassword, "").AccessToken
		target := e.user("target", false, "user")
		role := e.role("role-")
		scope, err := e.db.CreateScope(e.ctx, permiso.Scope{Name: "read:untrusted"})
		if err != nil {
			t.Fatal(err)
		}
		clientID := e.name("client-")
		_, hash := permiso.NewClientSecret()
		if _, err := e.db.CreateServiceClient(e.ctx, permiso.ServiceClient{ClientID: clientID, SecretHash: hash, Name: "untouched",
			ClientType: "confidential", IsActive: true}, nil); err != nil {
			t.Fatal(err)
		}
		type tc struct {
			method, route, path, token string
			base                       func() map[string]any // the valid rest of the body
			fields                     []string
		}
		newUser := func() map[string]any {
			n := e.name("new")
			return map[string]any{"username": n, "email": n + "@example.com", "password": idPassword}
		}
		empty := func() map[string]any { return map[string]any{} }
		profile := []string{"email", "first_name", "last_name", "display_name", "bio"}
		cases := []tc{
			{"POST", "/api/v1/users/register", "/api/v1/users/register", "", newUser, append([]string{"username"}, profile...)},
			{"POST", "/api/v1/users", "/api/v1/users", admin, newUser, append([]string{"username"}, profile...)},
			{"PUT", "/api/v1/users/me", "/api/v1/users/me", selfTok, empty, profile},
			{"PUT", "/api/v1/users/{user_id}", "/api/v1/users/" + target.ID.String(), admin, empty, profile},
			{"POST", "/api/v1/roles", "/api/v1/roles", admin, func() map[string]any { return map[string]any{"name": e.name("r")} },
				[]string{"name", "description"}},
			{"PUT", "/api/v1/roles/{role_id}", "/api/v1/roles/" + role.ID.String(), admin, empty, []string{"name", "description"}},
			{"POST", "/api/v1/roles/scopes", "/api/v1/roles/scopes", admin, func() map[string]any { return map[string]any{"name": "read:" + e.name("r")} },
				[]string{"name", "description"}},
			{"PUT", "/api/v1/roles/scopes/{scope_id}", "/api/v1/roles/scopes/" + scope.ID.String(), admin, empty, []string{"name", "description"}},
			{"POST", "/api/v1/service-clients", "/api/v1/service-clients", admin, func() map[string]any { return map[string]any{"name": "client"} },
				[]string{"name", "description", "contact_email", "website_url", "webhook_url", "allowed_ips", "client_id"}},
			{"PUT", "/api/v1/service-clients/{client_id}", "/api/v1/service-clients/" + clientID, admin, empty,
				[]string{"name", "description", "contact_email", "website_url", "webhook_url", "allowed_ips"}},
		}
		counts := func() [4]int {
			_, users, _ := e.db.ListUsers(e.ctx, permiso.UserFilter{Limit: 1})
			_, roles, _ := e.db.ListRoles(e.ctx, permiso.RoleFilter{Limit: 1})
			_, scopes, _ := e.db.ListScopes(e.ctx, permiso.ScopeFilter{Limit: 1})
			_, clients, _ := e.db.ListServiceClients(e.ctx, permiso.ClientFilter{Limit: 1})
			return [4]int{users, roles, scopes, clients}
		}
		before := counts()
		for _, c := range cases {
			for _, field := range c.fields {
				for _, bad := range []string{"a\x00b", "a\x1b[31mb", "\x00"} {
					body := c.base()
					body[field] = bad
					what := fmt.Sprintf("%s %s %s=%q", c.method, c.route, field, bad)
					m := errorOf(t, e.hostile().do(c.method, c.route, c.path, c.token, body), http.StatusUnprocessableEntity, "validation_error", what)
					if !slices.Contains(detailFields(m), field) {
						t.Errorf("%s: details %v do not name %s", what, m["details"], field)
					}
				}
			}
		}
		if after := counts(); after != before {
			t.Errorf("refused requests wrote rows: users, roles, scopes, clients %v, then %v", before, after)
		}
		if got, _ := e.db.GetUser(e.ctx, target.ID); got.FirstName != nil || got.Bio != nil || got.Email != target.Email {
			t.Errorf("refused updates changed the user: %+v", got)
		}
		if got, _ := e.db.GetUser(e.ctx, self.ID); got.FirstName != nil || got.Bio != nil || got.Email != self.Email {
			t.Errorf("refused updates changed the user: %+v", got)
		}
		if got, _ := e.db.GetRole(e.ctx, role.ID); got.Name != role.Name || got.Description != nil {
			t.Errorf("refused updates changed the role: %+v", got)
		}
		if got, _ := e.db.GetScope(e.ctx, scope.ID); got.Name != scope.Name || got.Description != nil {
			t.Errorf("refused updates changed the scope: %+v", got)
		}
		if got, _ := e.db.GetServiceClientByClientID(e.ctx, clientID); got.Name != "untouched" || got.Description != nil {
			t.Errorf("refused updates changed the client: %+v", got)
		}
		// Tab, line feed and carriage return are text.
		m := e.expect(e.do("PUT", "/api/v1/users/me", "/api/v1/users/me", selfTok, map[string]any{"bio": "one\r\ntwo\tthree"}), 200, "bio with line breaks")
		if m["bio"] != "one\r\ntwo\tthree" {
			t.Errorf("bio %q", m["bio"])
		}
	})
}

// unstorableValues cannot name anything stored: invalid UTF-8 (an
// overlong encoding of NUL among them) and NUL.
var unstorableValues = []string{"\xff", "\xc0\x80", "a\x00b"}

// TestFilterRefusesUnstorableValues: a list filter whose value is not
// valid UTF-8 or holds a NUL is 422 validation_error naming the
// parameter, before the store is asked.
func TestFilterRefusesUnstorableValues(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		filters := map[string][]string{
			"/api/v1/users":                 {"search"},
			"/api/v1/roles":                 {"search"},
			"/api/v1/roles/scopes":          {"search", "resource", "action"},
			"/api/v1/service-clients":       {"search"},
			"/api/v1/admin/security/events": {"event_type", "action", "user_id", "actor_id"},
			"/api/v1/admin/audit/activity":  {"event_type", "action", "user_id", "actor_id"},
		}
		for path, params := range filters {
			for _, p := range params {
				for _, v := range unstorableValues {
					what := fmt.Sprintf("GET %s?%s=%q", path, p, v)
					w := e.hostile().do("GET", path, path+"?"+p+"="+url.QueryEscape(v), admin, nil)
					m := errorOf(t, w, http.StatusUnprocessableEntity, "validation_error", what)
					if !slices.Equal(detailFields(m), []string{p}) {
						t.Errorf("%s: details %v", what, m["details"])
					}
				}
			}
		}
	})
}

// TestPathWithUnstorableIDIsNotFound: an id in a path that is not valid
// UTF-8 or holds a NUL names nothing: 404, on every route of the
// service-clients API (whose ids are strings) and on the UUID routes.
func TestPathWithUnstorableIDIsNotFound(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		routes := []struct{ method, path string }{
			{"GET", "/api/v1/service-clients/%s"}, {"PUT", "/api/v1/service-clients/%s"},
			{"DELETE", "/api/v1/service-clients/%s"}, {"POST", "/api/v1/service-clients/%s/rotate-secret"},
			{"PUT", "/api/v1/service-clients/%s/scopes"}, {"GET", "/api/v1/service-clients/%s/permissions"},
			{"GET", "/api/v1/service-clients/%s/rate-limit"},
			{"GET", "/api/v1/users/%s"}, {"GET", "/api/v1/roles/%s"}, {"GET", "/api/v1/roles/scopes/%s"},
			{"DELETE", "/api/v1/sessions/%s"}, {"GET", "/api/v1/roles/permissions/user/%s"},
		}
		for _, rt := range routes {
			for _, v := range unstorableValues {
				path := fmt.Sprintf(rt.path, url.PathEscape(v))
				var body any
				if rt.method == "PUT" || rt.method == "POST" {
					body = map[string]any{}
				}
				errorOf(t, e.do(rt.method, "", path, admin, body), http.StatusNotFound, "not_found", rt.method+" "+path)
			}
		}
	})
}

// TestUnstorableClientIDIsUnknownClient: a client_id that is not valid
// UTF-8 or holds a NUL, sent by HTTP Basic, in a form or in JSON, gets at
// every token, introspection and revocation endpoint exactly the answer
// of an unknown client: 401 invalid_client; in a form or JSON body, one
// that is not valid UTF-8 makes the body malformed: 400 invalid_request.
func TestUnstorableClientIDIsUnknownClient(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		type endpoint struct {
			path string
			form url.Values // the rest of the request
			json bool       // also accepts a JSON body
		}
		endpoints := []endpoint{
			{"/api/v1/auth/token", url.Values{"grant_type": {"client_credentials"}}, false},
			{"/api/v1/auth/service-token", url.Values{}, false},
			{"/api/v1/auth/refresh", url.Values{"refresh_token": {"unknown"}}, true},
			{"/api/v1/auth/introspect", url.Values{"token": {"unknown"}}, true},
			{"/api/v1/auth/revoke", url.Values{"token": {"unknown"}}, true},
		}
		call := func(ep endpoint, id, how string) *httptest.ResponseRecorder {
			v := url.Values{}
			for k, x := range ep.form {
				v[k] = x
			}
			var r *http.Request
			switch how {
			case "basic":
				r = httptest.NewRequest("POST", ep.path, strings.NewReader(v.Encode()))
				r.Header.Set("Content-Type", contentTypeForm)
				r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":secret")))
			case "form":
				v.Set("client_id", id)
				v.Set("client_secret", "secret")
				r = httptest.NewRequest("POST", ep.path, strings.NewReader(v.Encode()))
				r.Header.Set("Content-Type", contentTypeForm)
			case "json":
				// Raw bytes inside the JSON string: NUL escaped, invalid
				// UTF-8 as it is.
				m := map[string]string{"client_id": "@ID@", "client_secret": "secret"}
				for k := range v {
					m[k] = v.Get(k)
				}
				b, _ := json.Marshal(m)
				body := strings.Replace(string(b), "@ID@", strings.ReplaceAll(id, "\x00", `\u0000`), 1)
				r = httptest.NewRequest("POST", ep.path, strings.NewReader(body))
				r.Header.Set("Content-Type", contentTypeJSON)
			}
			return e.send(r)
		}
		for _, ep := range endpoints {
			hows := []string{"basic", "form"}
			if ep.json {
				hows = append(hows, "json")
			}
			for _, how := range hows {
				unknown := call(ep, "ghost", how)
				errorOf(t, unknown, http.StatusUnauthorized, "invalid_client", ep.path+" "+how+" unknown client")
				for _, id := range unstorableValues {
					w := call(ep, id, how)
					what := fmt.Sprintf("%s %s client_id=%q", ep.path, how, id)
					if how != "basic" && !utf8.ValidString(id) {
						// A body that is not valid UTF-8 is refused whole
						// (TestFormBodyNotUTF8Refused, TestJSONBodyNotUnicodeRefused).
						errorOf(t, w, http.StatusBadRequest, "invalid_request", what)
						continue
					}
					errorOf(t, w, http.StatusUnauthorized, "invalid_client", what)
					if w.Body.String() != unknown.Body.String() || w.Header().Get("WWW-Authenticate") != unknown.Header().Get("WWW-Authenticate") {
						t.Errorf("%s: %s %v, unknown client: %s %v", what, w.Body, w.Header(), unknown.Body, unknown.Header())
					}
				}
			}
		}
	})
}

// TestUnstorableUsernameIsUnknownUser: a username that holds a NUL gets
// from the password grant and from /auth/change-password exactly the
// answer of an unknown user: 400 invalid_grant. One that is not valid
// UTF-8 makes the form malformed: 400 invalid_request.
func TestUnstorableUsernameIsUnknownUser(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		post := func(path string, v url.Values) *httptest.ResponseRecorder {
			r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", contentTypeForm)
			return e.send(r)
		}
		login := func(name string) *httptest.ResponseRecorder {
			return post("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {name}, "password": {idPassword}})
		}
		change := func(name string) *httptest.ResponseRecorder {
			return post("/api/v1/auth/change-password", url.Values{"username": {name}, "current_password": {idPassword},
				"new_password": {"Another-Horse-9-battery!"}})
		}
		for _, f := range []struct {
			name string
			call func(string) *httptest.ResponseRecorder
		}{{"password grant", login}, {"change-password", change}} {
			unknown := f.call("ghost")
			errorOf(t, unknown, http.StatusBadRequest, "invalid_grant", f.name+" unknown user")
			errorOf(t, f.call("\xff"), http.StatusBadRequest, "invalid_request", f.name+" username not UTF-8")
			for _, v := range []string{"a\x00b"} {
				w := f.call(v)
				errorOf(t, w, http.StatusBadRequest, "invalid_grant", fmt.Sprintf("%s %q", f.name, v))
				if w.Body.String() != unknown.Body.String() {
					t.Errorf("%s %q: %s, unknown user: %s", f.name, v, w.Body, unknown.Body)
				}
			}
		}
	})
}

// TestQueryStringParsedWhole: a query string the server cannot parse
// whole (more than 10,000 parameters, a malformed escape, a ';') is
// 400, never a partly read filter: GET /users?search=zzzz&a&a... must not
// list every user. OAuth endpoints answer RFC 6749 invalid_request, and a
// form body that cannot be parsed whole is invalid_request too.
func TestQueryStringParsedWhole(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		many := func(n int) string { return "search=zzzz" + strings.Repeat("&a", n-1) }
		// Within the limit, the filter holds: nobody matches.
		m := e.expect(e.do("GET", usersPath, usersPath+"?"+many(10_000), admin, nil), http.StatusOK, "10,000 parameters")
		if m["total"] != float64(0) {
			t.Fatalf("search=zzzz with 10,000 parameters listed %v users", m["total"])
		}
		for _, q := range []string{many(10_001), "search=%zz", "search=zzzz;a=b"} {
			errorOf(t, e.do("GET", "", usersPath+"?"+q, admin, nil), http.StatusBadRequest, "bad_request", "GET /users?"+q[:min(len(q), 20)])
		}
		// OAuth endpoints: the RFC 6749 envelope.
		form := url.Values{"grant_type": {"password"}, "username": {"ghost"}, "password": {idPassword}}.Encode()
		r := httptest.NewRequest("POST", "/api/v1/auth/token?"+many(10_001), strings.NewReader(form))
		r.Header.Set("Content-Type", contentTypeForm)
		errorOf(t, e.send(r), http.StatusBadRequest, "invalid_request", "/auth/token with 10,001 query parameters")
		r = httptest.NewRequest("POST", "/api/v1/auth/token", strings.NewReader(form+strings.Repeat("&a", 10_001)))
		r.Header.Set("Content-Type", contentTypeForm)
		errorOf(t, e.send(r), http.StatusBadRequest, "invalid_request", "/auth/token with 10,001 form parameters")
	})
}

// notUnicodeStrings are JSON string literals that encoding/json would
// decode to U+FFFD, so the value stored would differ from the one sent:
// raw invalid UTF-8 (an overlong NUL, a raw surrogate half among them) and
// \u escapes of a surrogate half without its other half.
var notUnicodeStrings = []string{"\"a\xffb\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", `"\ud800"`, `"x\udc00"`, `"\ud800\u0041"`, `"\uD83D\uD83D"`}

// TestJSONBodyNotUnicodeRefused: a JSON body holding a string that is not
// valid Unicode is refused on every backend, before anything is written:
// 422 validation_error on the management API (the answer to malformed
// JSON), 400 invalid_request on the OAuth endpoints that take JSON. A
// surrogate pair, an escaped backslash before "u" and a literal U+FFFD
// are text and stored as sent (docs/security-model.md, "Untrusted bytes").
func TestJSONBodyNotUnicodeRefused(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		role := e.role("role-")
		count := func() int {
			_, n, err := e.db.ListRoles(e.ctx, permiso.RoleFilter{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		for _, bad := range notUnicodeStrings {
			for _, c := range []struct{ method, route, path, body string }{
				{"POST", "/api/v1/roles", "/api/v1/roles", `{"name":"` + e.name("r") + `","description":` + bad + `}`},
				{"PUT", "/api/v1/roles/{role_id}", "/api/v1/roles/" + role.ID.String(), `{"description":` + bad + `}`},
				{"POST", "/api/v1/users/register", "/api/v1/users/register", `{"username":` + bad + `,"email":"` + e.name("n") + `@example.com","password":"` + idPassword + `"}`},
			} {
				what := fmt.Sprintf("%s %s %s", c.method, c.route, c.body)
				m := errorOf(t, e.hostile().do(c.method, c.route, c.path, admin, json.RawMessage(c.body)), http.StatusUnprocessableEntity, "validation_error", what)
				if m["error_description"] != "Malformed JSON" || !slices.Equal(detailFields(m), []string{"body"}) {
					t.Errorf("%s: %s", what, m)
				}
			}
			for _, path := range []string{"/api/v1/auth/introspect", "/api/v1/auth/revoke", "/api/v1/auth/refresh"} {
				r := httptest.NewRequest("POST", path, strings.NewReader(`{"client_id":"c","client_secret":"s","token":`+bad+`,"refresh_token":`+bad+`}`))
				r.Header.Set("Content-Type", contentTypeJSON)
				errorOf(t, e.send(r), http.StatusBadRequest, "invalid_request", path+" "+bad)
			}
		}
		if after := count(); after != before {
			t.Errorf("refused requests wrote roles: %d, then %d", before, after)
		}
		if got, _ := e.db.GetRole(e.ctx, role.ID); got.Description != nil {
			t.Errorf("refused updates changed the role: %+v", got)
		}
		for body, stored := range map[string]string{`"\ud83d\ude00 \\ud800"`: "\U0001F600 \\ud800", `"\ufffd\uFFFD` + "\uFFFD" + `"`: "\uFFFD\uFFFD\uFFFD"} {
			m := e.expect(e.hostile().do("PUT", "/api/v1/roles/{role_id}", "/api/v1/roles/"+role.ID.String(), admin,
				json.RawMessage(`{"description":`+body+`}`)), http.StatusOK, body)
			if m["description"] != stored {
				t.Errorf("description %s stored as %q, want %q", body, m["description"], stored)
			}
		}
	})
}

// TestFormBodyNotUTF8Refused: a form body with a name or value that is
// not valid UTF-8 once unescaped is 400 invalid_request on every OAuth
// endpoint, whether the value is escaped (%FF, which url.ParseQuery
// reads) or raw (which the fast path of parseForm reads).
func TestFormBodyNotUTF8Refused(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		u := e.user("form", false, "user")
		for _, path := range []string{"/api/v1/auth/token", "/api/v1/auth/introspect", "/api/v1/auth/revoke", "/api/v1/auth/refresh"} {
			for _, body := range []string{
				"grant_type=password&username=" + u.Username + "&password=" + idPassword + "&scope=%FF",
				"grant_type=password&username=" + u.Username + "&password=" + idPassword + "&scope=\xff",
				"grant_type=password&username=" + u.Username + "&password=" + idPassword + "&%C0%80=x",
				"token=a\xed\xa0\x80&client_id=x",
			} {
				r := httptest.NewRequest("POST", path, strings.NewReader(body))
				r.Header.Set("Content-Type", contentTypeForm)
				m := errorOf(t, e.send(r), http.StatusBadRequest, "invalid_request", fmt.Sprintf("%s %q", path, body))
				if m["error_description"] != errNotUnicodeParam.Description {
					t.Errorf("%s %q: %v", path, body, m)
				}
			}
		}
		// The same form, valid, signs in.
		e.login(u.Username, idPassword, "")
	})
}
