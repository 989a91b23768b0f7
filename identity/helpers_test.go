package identity_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/commonpw"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/smtptest"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/sqlite"
)

const (
	goodPassword  = "Correct-Horse-9-battery"
	otherPassword = "Another-Good-7-passphrase"
	thirdPassword = "Third-Strong-5-sentence"
)

var policy = permiso.PasswordPolicy{MinLength: 12, MaxLength: 128, RequireUppercase: true, RequireLowercase: true,
	RequireDigits: true, RequireSpecial: true, Common: commonpw.Contains}

// env is the identity service over a real SQLite store, the real OAuth
// core (sessions, revocation, lockout) and a real SMTP server.
type env struct {
	t      *testing.T
	ctx    context.Context
	db     *sqlite.DB
	clock  *testclock.Clock
	auth   *oauth2.Service
	svc    *identity.Service
	smtp   *smtptest.Server
	mailer permiso.Mailer
	roles  map[string]permiso.Role
	admin  identity.Actor
	// audit is the real audit writer on db (flushed every 5 ms).
	audit *audit.Writer
}

func newEnv(t *testing.T, opts ...func(*identity.Config)) *env {
	t.Helper()
	ctx := t.Context()
	db := testdb.SQLite(t)
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	signer := testwire.HS256(t, "0123456789abcdef0123456789abcdef-identity", "permiso-test", clk.Now)
	hasher := testwire.Hasher()
	box, once := testwire.Box(t, 0x42), inprocess.NewOnce(inprocess.WithNow(clk.Now))
	// As cmd/permiso wires them: sign-in and the enrollment API share the
	// factors, the key and the used-codes store.
	auth := oauth2.NewService(oauth2.Config{Issuer: "permiso-test", PasswordPolicy: policy, PreventReuseCount: 3, PasswordMaxAge: 90 * 24 * time.Hour}, oauth2.Deps{
		Users: db, Clients: db, Tokens: db, Sessions: db, Hasher: hasher, Signer: signer,
		MFA:         oauth2.MFADeps{Store: db, Box: box, Once: once, Tokens: db},
		Revocations: inprocess.NewRevocations(inprocess.WithNow(clk.Now)),
		Lockout:     inprocess.NewLockout(3, 30*time.Minute, inprocess.WithNow(clk.Now)),
		Now:         clk.Now,
	})
	srv, mailer := testwire.Mailer(t)
	aw := audit.New(db, audit.Options{FlushInterval: 5 * time.Millisecond})
	t.Cleanup(func() { aw.Close() })
	cfg := identity.Config{Policy: policy, PreventReuseCount: 3, LinkBaseURL: "https://auth.example.com/", AppName: "permiso"}
	for _, o := range opts {
		o(&cfg)
	}
	svc := identity.New(cfg,
		identity.Deps{Store: db, Hasher: hasher, Sessions: auth, Lockout: auth, Mailer: mailer, Audit: aw, ClientTokens: auth, Now: clk.Now,
			MFA: identity.MFADeps{Store: db, Box: box, Once: once, Issuer: "permiso"}})
	t.Cleanup(svc.Close)
	e := &env{t: t, ctx: ctx, db: db, clock: clk, auth: auth, svc: svc, smtp: srv, mailer: mailer, roles: map[string]permiso.Role{}, audit: aw}
	roles, _, err := db.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		e.roles[r.Name] = r
	}
	adm := e.register("root", "root@example.com", goodPassword)
	adm = e.mustUser(e.db.UpdateUser(ctx, adm.ID, func(u *permiso.User) error { u.IsSuperuser = true; return nil }))
	e.mailTo(adm.Email) // its verification mail
	e.admin = identity.Actor{UserID: adm.ID, Admin: true, Superuser: true, Request: testRequest}
	return e
}

func (e *env) mustUser(u permiso.User, err error) permiso.User {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// register creates a user through Register and returns it.
func (e *env) register(username, email, password string) permiso.User {
	e.t.Helper()
	u, err := e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: username, Email: email, Password: password})
	if err != nil {
		e.t.Fatalf("Register(%s): %v", username, err)
	}
	return u
}

// mailTo waits for the next mail and checks its recipient.
func (e *env) mailTo(to string) smtptest.Message {
	e.t.Helper()
	m := e.smtp.Wait(e.t, 10*time.Second)
	if len(m.To) != 1 || m.To[0] != to {
		e.t.Fatalf("mail to %v, want %s", m.To, to)
	}
	return m
}

var linkRE = regexp.MustCompile(`https://auth\.example\.com/(reset-password|verify-email)\?token=([A-Za-z0-9_.-]+)`)

// tokenIn returns the token of the link in a mail, checking the link's
// path.
func (e *env) tokenIn(m smtptest.Message, path string) string {
	e.t.Helper()
	match := linkRE.FindStringSubmatch(m.Body())
	if match == nil || match[1] != path {
		e.t.Fatalf("no %s link in mail %q", path, m.Body())
	}
	tok, err := url.QueryUnescape(match[2])
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) login(username, password string) (oauth2.TokenResponse, error) {
	req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}, "")
	if err != nil {
		return oauth2.TokenResponse{}, err
	}
	return e.auth.Token(e.ctx, req, oauth2.RequestMeta{}, nil)
}

func (e *env) mustLogin(username, password string) oauth2.TokenResponse {
	e.t.Helper()
	tr, err := e.login(username, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", username, err)
	}
	return tr
}

// mustLoginMFA signs in a user with a confirmed TOTP factor: the password
// grant answers mfa_required with an mfa_token, the mfa grant with the
// app's current code issues the tokens (docs/mfa.md, "Sign-in").
func (e *env) mustLoginMFA(username, password, secret string) oauth2.TokenResponse {
	e.t.Helper()
	_, err := e.login(username, password)
	oe, _ := errors.AsType[*oauth2.Error](err)
	if oe == nil || oe.MFAToken == "" {
		e.t.Fatalf("login %s: %v, want mfa_required with an mfa_token", username, err)
	}
	// The next time step: a code is accepted once (the enrollment may have
	// spent the current one).
	e.clock.Advance(30 * time.Second)
	req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {oauth2.GrantMFA}, "mfa_token": {oe.MFAToken}, "otp": {e.totpCode(secret)}}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	tr, err := e.auth.Token(e.ctx, req, oauth2.RequestMeta{}, nil)
	if err != nil {
		e.t.Fatalf("mfa grant for %s: %v", username, err)
	}
	return tr
}

func (e *env) refresh(rt string) error {
	req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "")
	if err != nil {
		return err
	}
	_, err = e.auth.Token(e.ctx, req, oauth2.RequestMeta{}, nil)
	return err
}

func (e *env) alive(token string) bool {
	_, err := e.auth.Authenticate(e.ctx, token, nil)
	return err == nil
}

func (e *env) get(id uuid.UUID) permiso.User {
	e.t.Helper()
	u, err := e.db.GetUser(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// wantCode checks the *permiso.Error code of err.
func wantCode(t *testing.T, err error, code permiso.Code, what string) *permiso.Error {
	t.Helper()
	if permiso.ErrorCode(err) != code {
		t.Fatalf("%s: err = %v, want %s", what, err, code)
	}
	var pe *permiso.Error
	errors.As(err, &pe)
	return pe
}

// wantConflict fails t unless err is a 409 conflict with message.
func wantConflict(t *testing.T, err error, what, message string) {
	t.Helper()
	if pe := wantCode(t, err, permiso.ECONFLICT, what); pe.Message != message {
		t.Errorf("%s: message %q", what, pe.Message)
	}
}

// wantHeldThenDeleted checks that del is refused as a conflict with
// message while the row is in use, and succeeds once release has let go
// of it.
func wantHeldThenDeleted(t *testing.T, what, message string, del, release func() error) {
	t.Helper()
	wantConflict(t, del(), what, message)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := del(); err != nil {
		t.Fatal(err)
	}
}

// fields returns the fields named by a validation error.
func fields(err error) map[string][]string {
	out := map[string][]string{}
	var pe *permiso.Error
	if errors.As(err, &pe) {
		for _, d := range pe.Details {
			out[d.Field] = append(out[d.Field], d.Message)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

var oauthMeta = oauth2.RequestMeta{}

// testRequest is the request behind the service calls of the tests, as
// the audit events must show it.
var testRequest = permiso.RequestMeta{IP: netip.MustParseAddr("192.0.2.44"), UserAgent: "identity-test", RequestID: "req-identity-test"}

// scope returns the scope named name.
func (e *env) scope(name string) permiso.Scope {
	e.t.Helper()
	sc, err := e.db.GetScopeByName(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return sc
}

// scopeIDs returns the ids of the named scopes as the API sends them.
func (e *env) scopeIDs(names ...string) *[]string {
	e.t.Helper()
	out := []string{}
	for _, n := range names {
		out = append(out, e.scope(n).ID.String())
	}
	return &out
}

// clientToken runs the client-credentials grant for the client.
func (e *env) clientToken(clientID, secret string) (oauth2.TokenResponse, error) {
	req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"client_credentials"},
		"client_id": {clientID}, "client_secret": {secret}}, "")
	if err != nil {
		return oauth2.TokenResponse{}, err
	}
	return e.auth.Token(e.ctx, req, oauthMeta, nil)
}

// auditEvents waits until the audit log holds n events of action with
// result, and returns them (newest first).
func (e *env) auditEvents(action, result string, n int) []permiso.AuditEvent {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: action, Result: result})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			if len(evs) != n {
				e.t.Fatalf("%s (%s): %d audit events, want %d", action, result, len(evs), n)
			}
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}
