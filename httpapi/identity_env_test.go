package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/commonpw"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/smtptest"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// idEnv is the whole server on real parts for the users, roles and scopes
// routes: a real store (SQLite in memory, or PostgreSQL in a schema of its
// own), the real OAuth core with in-process revocations and lockout,
// argon2id with test parameters, the batched audit writer, the identity
// service mailing through a real SMTP server started by the test. Every
// JSON response is checked against the OpenAPI document.
type idEnv struct {
	t     *testing.T
	ctx   context.Context
	db    permiso.Store
	auth  *oauth2.Service
	ident *identity.Service
	srv   *server
	h     http.Handler
	doc   *openAPIValidator
	// hostileBytes exempts the requests of do from the OpenAPI request
	// validation (hostile).
	hostileBytes bool
	smtp         *smtptest.Server
	hash         *argon2id.Hasher
	// pwHash is a hash of idPassword, computed once.
	pwHash string
	// roles are the roles known by name; rolesMu guards them, since copies
	// made by withT share them.
	roles   map[string]permiso.Role
	rolesMu *sync.Mutex
	seq     *atomic.Int64
}

// withT returns a copy of e that reports to t (a subtest running in its
// own goroutine); the copy shares everything else with e.
func (e *idEnv) withT(t *testing.T) *idEnv {
	c := *e
	c.t = t
	return &c
}

// roleNamed returns a role known to the environment.
func (e *idEnv) roleNamed(name string) (permiso.Role, bool) {
	e.rolesMu.Lock()
	defer e.rolesMu.Unlock()
	r, ok := e.roles[name]
	return r, ok
}

const idPassword = "Tq8#vLm2!pZr-id-Kx4"

var idPolicy = permiso.PasswordPolicy{MinLength: 12, MaxLength: 128, RequireUppercase: true, RequireLowercase: true,
	RequireDigits: true, RequireSpecial: true, Common: commonpw.Contains}

// idBackend opens a migrated store.
type idBackend struct {
	name string
	open func(t *testing.T) permiso.Store
}

// idBackends is SQLite always, and PostgreSQL when
// PERMISO_TEST_DATABASE_URL is set.
func idBackends(t *testing.T) []idBackend {
	bs := []idBackend{{"sqlite", func(t *testing.T) permiso.Store { return testdb.SQLite(t) }}}
	if testdb.HasPostgres() {
		bs = append(bs, idBackend{"postgres", func(t *testing.T) permiso.Store { return testdb.Postgres(t, "httpapi") }})
	}
	return bs
}

func newIDEnv(t *testing.T, b idBackend) *idEnv {
	t.Helper()
	ctx := t.Context()
	db := b.open(t)
	smtp, mailer := testwire.Mailer(t)
	// One OnceStore for enrollment and sign-in, as cmd/permiso wires it.
	w := newWired(t, wiring{db: db, audited: true, mfaGrant: true,
		auth: oauth2.Config{PasswordPolicy: idPolicy, PreventReuseCount: 3, PasswordMaxAge: 90 * 24 * time.Hour,
			OIDCIssuer: testIssuer, MFARequiredRoles: []string{mfaRequiredRole}},
		authDeps: oauth2.Deps{Lockout: inprocess.NewLockout(3, 30*time.Minute)},
		ident: identity.Config{Policy: idPolicy, PreventReuseCount: 3, LinkBaseURL: "https://auth.example.com",
			MFARequiredRoles: []string{mfaRequiredRole}},
		identDeps: identity.Deps{Mailer: mailer},
		options:   func(opts *Options) { opts.OpenAPIURL = "/openapi.json" },
	})
	e := &idEnv{t: t, ctx: ctx, db: db, auth: w.auth, ident: w.ident, srv: w.srv, h: w.h, smtp: smtp, hash: w.hasher,
		roles: map[string]permiso.Role{}, rolesMu: &sync.Mutex{}, seq: &atomic.Int64{}}
	e.doc = newOpenAPIValidator(t, e.srv)
	roles, _, err := db.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		e.roles[r.Name] = r
	}
	return e
}

// name returns a fresh name with prefix.
func (e *idEnv) name(prefix string) string { return prefix + strconv.FormatInt(e.seq.Add(1), 10) }

// user creates an active, verified user with the roles (by name).
func (e *idEnv) user(prefix string, superuser bool, roles ...string) permiso.User {
	e.t.Helper()
	if e.pwHash == "" {
		h := testwire.Hash(e.t, e.hash, idPassword)
		e.pwHash = h
	}
	h := e.pwHash
	var rs []permiso.Role
	for _, r := range roles {
		role, _ := e.roleNamed(r)
		rs = append(rs, role)
	}
	return activeUser(e.t, e.db, e.name(prefix), h, superuser, rs...)
}

// role creates a role holding the scopes (by name).
func (e *idEnv) role(prefix string, scopes ...string) permiso.Role {
	e.t.Helper()
	r, err := e.db.CreateRole(e.ctx, permiso.Role{Name: e.name(prefix)}, e.scopeIDs(scopes...))
	if err != nil {
		e.t.Fatal(err)
	}
	e.rolesMu.Lock()
	e.roles[r.Name] = r
	e.rolesMu.Unlock()
	return r
}

// login runs the password grant through the HTTP token endpoint.
func (e *idEnv) login(username, password, scope string) oauth2.TokenResponse {
	e.t.Helper()
	return tokenResponse(e.t, e.tryLogin(username, password, scope), "login "+username)
}

func (e *idEnv) tryLogin(username, password, scope string) *httptest.ResponseRecorder {
	v := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return serve(e.h, formRequest("/api/v1/auth/token", v))
}

// scopeIDs returns the ids of the scopes named.
func (e *idEnv) scopeIDs(names ...string) []uuid.UUID {
	e.t.Helper()
	var ids []uuid.UUID
	for _, n := range names {
		sc, err := e.db.GetScopeByName(e.ctx, n)
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, sc.ID)
	}
	return ids
}

// idStrings returns the ids as strings, as request bodies carry them.
func idStrings(ids []uuid.UUID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// createClient creates a confidential client (its client_id made from
// prefix) holding the scopes, directly in the store.
func (e *idEnv) createClient(prefix string, scopes ...string) (clientID, secret string) {
	e.t.Helper()
	secret, hash := permiso.NewClientSecret()
	clientID = e.name(prefix)
	if _, err := e.db.CreateServiceClient(e.ctx, permiso.ServiceClient{ClientID: clientID, SecretHash: hash, Name: clientID,
		ClientType: "confidential", IsActive: true}, e.scopeIDs(scopes...)); err != nil {
		e.t.Fatal(err)
	}
	return clientID, secret
}

// clientToken creates a confidential client with the scopes directly in
// the store and gets a token for it through the real token endpoint.
func (e *idEnv) clientToken(scopes ...string) string {
	e.t.Helper()
	id, secret := e.createClient("client-", scopes...)
	v := url.Values{"grant_type": {"client_credentials"}}
	r := formRequest("/api/v1/auth/token", v)
	r.SetBasicAuth(id, secret)
	return tokenResponse(e.t, serve(e.h, r), "client token").AccessToken
}

// hostile returns a copy of e whose requests are not validated against
// the OpenAPI document (their responses still are): for the tests of
// hostile bytes (invalid UTF-8, NUL, control characters), which no
// schema describes (docs/security-model.md, "Untrusted bytes").
func (e *idEnv) hostile() *idEnv {
	c := *e
	c.hostileBytes = true
	return &c
}

// do sends a request (JSON body unless nil) and validates the request and
// the response against the OpenAPI document's operation for route (the
// registered pattern's path); route "" skips it.
func (e *idEnv) do(method, route, path, bearer string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	return exchangeJSON(e.t, e.h, e.doc, e.hostileBytes, method, route, path, bearer, body)
}

// expect checks the status and decodes a JSON object body.
func (e *idEnv) expect(w *httptest.ResponseRecorder, status int, what string) map[string]any {
	e.t.Helper()
	return want(e.t, w, status, what)
}

// auditEvent waits for an audit event with the action and target id.
func (e *idEnv) auditEvent(action, targetID, result string) permiso.AuditEvent {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: action, Limit: 1000})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range evs {
			if (targetID == "" || ev.TargetID != nil && *ev.TargetID == targetID) && ev.Result == result {
				return ev
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s audit event (%s) for %s", action, result, targetID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var mailTokenRE = regexp.MustCompile(`/(reset-password|verify-email)\?token=([A-Za-z0-9_.-]+)`)

// mailToken waits for a mail to addr and returns the token of its link.
func (e *idEnv) mailToken(addr, path string) string {
	e.t.Helper()
	m := e.smtp.Wait(e.t, 10*time.Second)
	if len(m.To) != 1 || m.To[0] != addr {
		e.t.Fatalf("mail to %v, want %s", m.To, addr)
	}
	match := mailTokenRE.FindStringSubmatch(m.Body())
	if match == nil || match[1] != path {
		e.t.Fatalf("no %s link in %q", path, m.Body())
	}
	return match[2]
}

// eachIDBackend runs test in a parallel subtest per backend (idBackends),
// each on a fresh idEnv.
func eachIDBackend(t *testing.T, test func(t *testing.T, e *idEnv)) {
	t.Helper()
	for _, b := range idBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, newIDEnv(t, b))
		})
	}
}
