package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/logring"
	"github.com/permiso/permiso/memory"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
	"github.com/permiso/permiso/sqlite"
	"github.com/permiso/permiso/usage"
)

// apiEnv is a complete server on real parts (SQLite in memory, HS256
// signer, in-process revocations, argon2id with test parameters, the
// batched audit writer and usage counter) for the handler tests of issue
// 5. Every JSON response it sees is validated against the OpenAPI
// document (validateResponse).
type apiEnv struct {
	t      *testing.T
	ctx    context.Context
	db     *sqlite.DB
	svc    *oauth2.Service
	audit  *audit.Writer
	usage  *usage.Counter
	ring   *logring.Ring
	logger *slog.Logger
	srv    *server
	h      http.Handler
	doc    *openAPIValidator
	hasher *argon2id.Hasher
}

const apiTestSecret = "0123456789abcdef0123456789abcdef-api-test-secret"

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	signer, err := jwt.New(ctx, jwt.Options{Algorithm: jwt.HS256, Secret: []byte(apiTestSecret), Issuer: "permiso-test"})
	if err != nil {
		t.Fatal(err)
	}
	ring := logring.New(100, slog.LevelError)
	logger := slog.New(ring.Wrap(slog.DiscardHandler))
	aw := audit.New(db, audit.Options{FlushInterval: 10 * time.Millisecond})
	uc := usage.New(db, usage.Options{FlushInterval: time.Hour})
	hasher := argon2id.New(argon2id.Options{Params: argon2id.TestParams()})
	svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test", ServiceTokenLifetime: 10 * time.Minute}, oauth2.Deps{
		Users: db, Clients: db, Tokens: db, Sessions: db, Hasher: hasher, Signer: signer,
		Revocations: memory.NewRevocations(), Audit: aw, Usage: uc, Logger: logger, Limiter: memory.NewLimiter(),
	})
	// The account service of the users, roles, scopes and service-clients
	// routes.
	ident := identity.New(identity.Config{}, identity.Deps{Store: db, Hasher: hasher, Sessions: svc, Lockout: svc,
		Audit: aw, ClientTokens: svc, Logger: logger})
	t.Cleanup(func() {
		ident.Close()
		uc.Close()
		aw.Close()
		db.Close()
	})
	opts := testOptions()
	opts.APIV1Prefix = "/api/v1"
	opts.DocsURL, opts.RedocURL, opts.OpenAPIURL = "/docs", "/redoc", "/openapi.json"
	opts.AuditRetention = 90 * 24 * time.Hour
	h := NewServer(Deps{Logger: logger, Options: opts, Auth: svc, Keys: signer, Store: db, Audit: aw, Identity: ident,
		Reports: reports.New(reports.Deps{Store: db}), ErrorLog: ring, Checks: []HealthCheck{{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
			return map[string]any{"backend": db.Backend()}, db.Ping(ctx)
		}}}})
	e := &apiEnv{t: t, ctx: ctx, db: db, svc: svc, audit: aw, usage: uc, ring: ring, logger: logger,
		srv: h.(*server), h: h, hasher: hasher}
	e.doc = newOpenAPIValidator(t, e.srv)
	return e
}

// flushAudit waits until the audit writer has written what was recorded.
func (e *apiEnv) flushAudit() {
	e.t.Helper()
	// The writer flushes every 10 ms; give it a few rounds.
	time.Sleep(60 * time.Millisecond)
}

const apiPassword = "Tq8#vLm2!pZr-api-Kx4"

// user creates an active user with the given roles (by name).
func (e *apiEnv) user(name string, superuser bool, roles ...string) permiso.User {
	e.t.Helper()
	hash, err := e.hasher.Hash(e.ctx, apiPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []uuid.UUID
	for _, r := range roles {
		role, err := e.db.GetRoleByName(e.ctx, r)
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, role.ID)
	}
	now := time.Now().UTC()
	u, err := e.db.CreateUser(e.ctx, permiso.User{Username: name, Email: name + "@example.com", PasswordHash: hash,
		IsActive: true, IsVerified: true, IsSuperuser: superuser, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}, ids)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// login runs a password grant and returns the token response.
func (e *apiEnv) login(username string) oauth2.TokenResponse {
	e.t.Helper()
	w := e.form("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {username}, "password": {apiPassword}}, nil)
	if w.Code != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", username, w.Code, w.Body)
	}
	var tr oauth2.TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		e.t.Fatal(err)
	}
	return tr
}

// form POSTs a form, with HTTP Basic when basic is not nil.
func (e *apiEnv) form(path string, v url.Values, basic *[2]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		r.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// call sends a JSON request with a bearer token and validates the
// response against the document's schema for the route template (the
// registered pattern's path) and status.
func (e *apiEnv) call(method, route, path, bearer string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	var r *http.Request
	if rd != nil {
		r = httptest.NewRequest(method, path, rd)
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if route != "" {
		e.doc.validate(e.t, method, route, w)
	}
	return w
}

// want checks the status and decodes the body.
func want(t *testing.T, w *httptest.ResponseRecorder, status int, what string) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d: %s", what, w.Code, status, w.Body)
	}
	m := map[string]any{}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: body is not a JSON object: %v: %s", what, err, w.Body)
		}
	}
	return m
}

func jnum(t *testing.T, v any, what string) int {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%s: %v (%T) is not a number", what, v, v)
	}
	return int(f)
}

// openAPIValidator validates responses against the served document.
type openAPIValidator struct {
	mu      sync.Mutex
	doc     map[string]any
	c       *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema
	checked map[string]bool // "METHOD route status" validated at least once
}

func newOpenAPIValidator(t *testing.T, s *server) *openAPIValidator {
	t.Helper()
	raw, err := json.Marshal(s.openAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem://openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	m, _ := doc.(map[string]any)
	return &openAPIValidator{doc: m, c: c, schemas: map[string]*jsonschema.Schema{}, checked: map[string]bool{}}
}

// pointerEscape escapes a JSON-pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// validate checks w against the schema of route's operation for w's
// status: the status must be documented, the body must match.
func (v *openAPIValidator) validate(t *testing.T, method, route string, w *httptest.ResponseRecorder) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	paths, _ := v.doc["paths"].(map[string]any)
	item, _ := paths[route].(map[string]any)
	opObj, _ := item[strings.ToLower(method)].(map[string]any)
	if opObj == nil {
		t.Errorf("OpenAPI: %s %s is not documented", method, route)
		return
	}
	status := fmt.Sprint(w.Code)
	resps, _ := opObj["responses"].(map[string]any)
	resp, _ := resps[status].(map[string]any)
	if resp == nil {
		t.Errorf("OpenAPI: %s %s does not document status %s (body %s)", method, route, status, w.Body)
		return
	}
	v.checked[method+" "+route+" "+status] = true
	content, _ := resp["content"].(map[string]any)
	if content == nil {
		if w.Body.Len() > 0 {
			t.Errorf("OpenAPI: %s %s %s documents no body, got %s", method, route, status, w.Body)
		}
		return
	}
	if _, ok := content["application/json"]; !ok {
		return
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("OpenAPI: %s %s %s: Content-Type %q, want application/json", method, route, status, ct)
		return
	}
	loc := "mem://openapi.json#/paths/" + pointerEscape(route) + "/" + strings.ToLower(method) +
		"/responses/" + status + "/content/application~1json/schema"
	sch := v.schemas[loc]
	if sch == nil {
		var err error
		if sch, err = v.c.Compile(loc); err != nil {
			t.Fatalf("OpenAPI: compile %s: %v", loc, err)
		}
		v.schemas[loc] = sch
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Errorf("OpenAPI: %s %s %s: body is not JSON: %v", method, route, status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("OpenAPI: %s %s %s: response does not match the documented schema: %v\nbody: %s", method, route, status, err, w.Body)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
