package oauth2_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/oauth2"
)

// recorder is an Auditor that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []permiso.AuditEvent
}

func (r *recorder) Record(_ context.Context, e permiso.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// find returns the events with this action.
func (r *recorder) find(action string) []permiso.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []permiso.AuditEvent
	for _, e := range r.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

const (
	testSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	testIssuer   = "permiso-test"
	goodPassword = "Correct-Horse-9-battery"
)

type env struct {
	t      *testing.T
	ctx    context.Context
	db     permiso.Store
	clock  *testclock.Clock
	rev    permiso.RevocationStore
	signer *jwt.Signer
	hasher *argon2id.Hasher
	audit  *recorder
	cfg    oauth2.Config
	svc    *oauth2.Service
	roles  map[string]permiso.Role
	scopes map[string]permiso.Scope
}

type envOption func(*oauth2.Config, *oauth2.Deps)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, testdb.SQLite(t), opts...)
}

// backends runs f as a subtest on SQLite and on PostgreSQL (skipped
// without PERMISO_TEST_DATABASE_URL), each in a database of its own.
func backends(t *testing.T, f func(t *testing.T, db permiso.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, testdb.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, testdb.Postgres(t, "oauth2")) })
}

// newEnvOn is newEnv on the store db.
func newEnvOn(t *testing.T, db permiso.Store, opts ...envOption) *env {
	t.Helper()
	ctx := t.Context()
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	signer := testwire.HS256(t, testSecret, testIssuer, clk.Now)
	e := &env{
		t: t, ctx: ctx, db: db, clock: clk, signer: signer,
		rev:    inprocess.NewRevocations(inprocess.WithNow(clk.Now)),
		hasher: testwire.Hasher(),
		audit:  &recorder{},
		roles:  map[string]permiso.Role{},
		scopes: map[string]permiso.Scope{},
	}
	e.cfg = oauth2.Config{
		Issuer:               testIssuer,
		AccessTokenLifetime:  15 * time.Minute,
		RefreshTokenLifetime: 30 * 24 * time.Hour,
		ServiceTokenLifetime: 10 * time.Minute,
		ReuseGrace:           10 * time.Second,
		PasswordMaxAge:       90 * 24 * time.Hour,
		PasswordPolicy: permiso.PasswordPolicy{MinLength: 12, MaxLength: 128,
			RequireUppercase: true, RequireLowercase: true, RequireDigits: true, RequireSpecial: true},
		PreventReuseCount: 3,
	}
	deps := oauth2.Deps{
		Users: db, Clients: db, Tokens: db, Sessions: db,
		Hasher: e.hasher, Signer: signer, Revocations: e.rev, Audit: e.audit, Now: clk.Now,
	}
	for _, o := range opts {
		o(&e.cfg, &deps)
	}
	if h, ok := deps.Hasher.(*argon2id.Hasher); ok {
		e.hasher = h // an option may wrap it (TestLockoutNotSpentWhenBusy)
	}
	e.rev = deps.Revocations
	e.svc = oauth2.NewService(e.cfg, deps)

	for _, name := range []string{permiso.RoleUser, permiso.RoleAdmin} {
		r, err := db.GetRoleByName(ctx, name)
		if err != nil {
			t.Fatalf("GetRoleByName(%s): %v", name, err)
		}
		e.roles[name] = r
	}
	scopes, _, err := db.ListScopes(ctx, permiso.ScopeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scopes {
		e.scopes[s.Name] = s
	}
	// An extra scope and role, to take away from a user.
	sc, err := db.CreateScope(ctx, permiso.Scope{Name: "read:reports"})
	if err != nil {
		t.Fatal(err)
	}
	e.scopes[sc.Name] = sc
	r, err := db.CreateRole(ctx, permiso.Role{Name: "reporter"}, []uuid.UUID{sc.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.roles[r.Name] = r
	return e
}

// createUser creates an active user with goodPassword-style credentials.
// rotated signs alice (a new user) in, rotates her refresh token once and
// advances the clock by d: the login's refresh token is then a rotated
// one, inside the reuse grace window when d is short. It returns the login
// and the rotation's answer.
func (e *env) rotated(d time.Duration) (login, rotation oauth2.TokenResponse) {
	e.t.Helper()
	e.createUser("alice", goodPassword, permiso.RoleUser)
	login = e.login("alice", goodPassword, "")
	rotation, err := e.refresh(login.RefreshToken, "", "")
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(d)
	return login, rotation
}

func (e *env) createUser(username, password string, roles ...string) permiso.User {
	e.t.Helper()
	hash := testwire.Hash(e.t, e.hasher, password)
	var ids []uuid.UUID
	for _, r := range roles {
		ids = append(ids, e.roles[r].ID)
	}
	now := e.clock.Now()
	u, err := e.db.CreateUser(e.ctx, permiso.User{
		Username: username, Email: username + "@example.com", PasswordHash: hash,
		IsActive: true, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now,
	}, ids)
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// updateUser changes the stored user id with f.
func (e *env) updateUser(id uuid.UUID, f func(*permiso.User)) permiso.User {
	e.t.Helper()
	u, err := e.db.UpdateUser(e.ctx, id, func(u *permiso.User) error { f(u); return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// createClient creates an active confidential client and returns its
// secret.
func (e *env) createClient(clientID string, mutate func(*permiso.ServiceClient), scopes ...string) (permiso.ServiceClient, string) {
	e.t.Helper()
	secret, hash := permiso.NewClientSecret()
	// Created "now" on the test clock: Authenticate rejects tokens issued
	// before their client was created (a re-created client_id must not
	// inherit old tokens), and the test clock may lag the wall clock.
	now := e.clock.Now()
	c := permiso.ServiceClient{ClientID: clientID, SecretHash: hash, Name: clientID,
		ClientType: "confidential", IsActive: true, CreatedAt: now, UpdatedAt: now}
	if mutate != nil {
		mutate(&c)
	}
	var ids []uuid.UUID
	for _, s := range scopes {
		ids = append(ids, e.scopes[s].ID)
	}
	c, err := e.db.CreateServiceClient(e.ctx, c, ids)
	if err != nil {
		e.t.Fatalf("CreateServiceClient: %v", err)
	}
	return c, secret
}

var testMeta = oauth2.RequestMeta{IP: netip.MustParseAddr("192.0.2.10"), UserAgent: "test-agent", RequestID: "req-1"}

// token parses the form and runs the token endpoint.
func (e *env) token(form url.Values, authorization string) (oauth2.TokenResponse, error) {
	return e.tokenFrom(testMeta, form, authorization)
}

func (e *env) tokenFrom(meta oauth2.RequestMeta, form url.Values, authorization string) (oauth2.TokenResponse, error) {
	req, err := oauth2.ParseTokenRequest(form, authorization)
	if err != nil {
		return oauth2.TokenResponse{}, err
	}
	return e.svc.Token(e.ctx, req, meta, nil)
}

func (e *env) mustToken(form url.Values, authorization string) oauth2.TokenResponse {
	e.t.Helper()
	resp, err := e.token(form, authorization)
	if err != nil {
		e.t.Fatalf("token(%v): %v", redact(form), err)
	}
	return resp
}

func redact(form url.Values) url.Values {
	c := url.Values{}
	for k, v := range form {
		if k == "password" || k == "client_secret" {
			v = []string{"***"}
		}
		c[k] = v
	}
	return c
}

func formLogin(username, password string) url.Values {
	return url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
}

func (e *env) login(username, password, scope string) oauth2.TokenResponse {
	e.t.Helper()
	f := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.mustToken(f, "")
}

func (e *env) refresh(rt, scope, authorization string) (oauth2.TokenResponse, error) {
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.token(f, authorization)
}

func (e *env) authenticate(bearer string) (oauth2.Principal, error) {
	return e.svc.Authenticate(e.ctx, bearer, nil)
}

func (e *env) mustAuthenticate(bearer string) oauth2.Principal {
	e.t.Helper()
	p, err := e.authenticate(bearer)
	if err != nil {
		e.t.Fatalf("Authenticate: %v", err)
	}
	return p
}

// wantInvalidToken asserts that the bearer is rejected as invalid_token.
func (e *env) wantInvalidToken(bearer, why string) {
	e.t.Helper()
	_, err := e.authenticate(bearer)
	if permiso.ErrorCode(err) != permiso.EINVALIDTOKEN {
		e.t.Fatalf("%s: Authenticate err = %v, want EINVALIDTOKEN", why, err)
	}
}

// wantRefreshRefused asserts that the refresh token rt is refused
// (invalid_grant).
func (e *env) wantRefreshRefused(rt string) {
	e.t.Helper()
	_, err := e.refresh(rt, "", "")
	wantOAuth(e.t, err, "invalid_grant", 400)
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// wantOAuth asserts err is an *oauth2.Error with the code and status.
func wantOAuth(t *testing.T, err error, code string, status int) *oauth2.Error {
	t.Helper()
	var oe *oauth2.Error
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v (%T), want *oauth2.Error %s", err, err, code)
	}
	if oe.Code != code || oe.Status != status {
		t.Fatalf("err = %s (status %d), want %s (status %d)", oe.Error(), oe.Status, code, status)
	}
	return oe
}

func scopesOf(p oauth2.Principal) []string { return slices.Clone(p.Claims.Scopes) }

// rotateSecret gives client c a new secret, as a rotation with an overlap
// does: the current one stays valid as the previous secret for overlap.
// It returns the new secret.
func (e *env) rotateSecret(c permiso.ServiceClient, overlap time.Duration) string {
	e.t.Helper()
	newSecret, newHash := permiso.NewClientSecret()
	until := e.clock.Now().Add(overlap)
	if _, err := e.db.UpdateServiceClient(e.ctx, c.ID, func(x *permiso.ServiceClient) error {
		prev := x.SecretHash
		x.PreviousSecretHash, x.PreviousSecretExpiresAt, x.SecretHash = &prev, &until, newHash
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return newSecret
}
