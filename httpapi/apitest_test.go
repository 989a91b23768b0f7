package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/logring"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
	"github.com/permiso/permiso/sqlite"
	"github.com/permiso/permiso/usage"
)

// apiEnv is a complete server on real parts (SQLite in memory, HS256
// signer, in-process revocations, argon2id with test parameters, the
// batched audit writer and usage counter) for the handler tests of issue
// 5. Every request sent and response received through call and form is
// validated against the OpenAPI document (openAPIValidator).
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

// testSigner is the access-token signer of the test servers: HS256 with
// apiTestSecret.
func testSigner(t testing.TB) *jwt.Signer {
	t.Helper()
	signer := testwire.HS256(t, apiTestSecret, "permiso-test", nil)
	return signer
}

// migrated applies db's migrations and returns it.
func migrated[S permiso.Store](t *testing.T, db S) S {
	t.Helper()
	if _, err := db.MigrateUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	db := testdb.SQLite(t)
	w := newWired(t, wiring{db: db, logged: true, audited: true, counted: true,
		auth:     oauth2.Config{ServiceTokenLifetime: 10 * time.Minute, OIDCIssuer: testIssuer},
		authDeps: oauth2.Deps{Limiter: inprocess.NewLimiter()},
		options: func(opts *Options) {
			opts.APIV1Prefix = "/api/v1"
			opts.DocsURL, opts.RedocURL, opts.OpenAPIURL = "/docs", "/redoc", "/openapi.json"
			opts.AuditRetention = 90 * 24 * time.Hour
		},
		deps: Deps{Checks: []HealthCheck{{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
			return map[string]any{"backend": db.Backend()}, db.Ping(ctx)
		}}}},
	})
	e := &apiEnv{t: t, ctx: t.Context(), db: db, svc: w.auth, audit: w.audit, usage: w.usage, ring: w.ring, logger: w.logger,
		srv: w.srv, h: w.h, hasher: w.hasher}
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
	hash := testwire.Hash(e.t, e.hasher, apiPassword)
	var rs []permiso.Role
	for _, r := range roles {
		role, err := e.db.GetRoleByName(e.ctx, r)
		if err != nil {
			e.t.Fatal(err)
		}
		rs = append(rs, role)
	}
	return activeUser(e.t, e.db, name, hash, superuser, rs...)
}

// login runs a password grant and returns the token response.
func (e *apiEnv) login(username string) oauth2.TokenResponse {
	e.t.Helper()
	w := e.form("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {username}, "password": {apiPassword}}, nil)
	return tokenResponse(e.t, w, "login "+username)
}

// form POSTs a form, with HTTP Basic when basic is not nil, and
// validates the exchange against the OpenAPI document (path is the
// operation's documented path: the OAuth endpoints have no parameters).
func (e *apiEnv) form(path string, v url.Values, basic *[2]string) *httptest.ResponseRecorder {
	e.t.Helper()
	body := []byte(v.Encode())
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		r.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	e.doc.exchange(e.t, path, r, body, w, false)
	return w
}

// call sends a JSON request with a bearer token and validates the
// request and the response against the OpenAPI document's operation for
// the route template (the registered pattern's path); route "" skips it.
func (e *apiEnv) call(method, route, path, bearer string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	return exchangeJSON(e.t, e.h, e.doc, false, method, route, path, bearer, body)
}

// exchangeJSON sends a request to h (a JSON body unless body is nil, a
// bearer token unless bearer is "") and validates the request and the
// response against doc's operation for route (the registered pattern's
// path; "" skips it), with hostile bytes allowed in the response when
// hostile is set.
func exchangeJSON(t *testing.T, h http.Handler, doc *openAPIValidator, hostile bool, method, route, path, bearer string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	r := httptest.NewRequest(method, path, nil)
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		r = httptest.NewRequest(method, path, bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if route != "" {
		doc.exchange(t, route, r, b, w, hostile)
	}
	return w
}

// formRequest is a POST of the form v to path.
func formRequest(path string, v url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", contentTypeForm)
	return r
}

// serve serves r from h and returns the response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// tokenResponse decodes w, the answer to what (a login, a token request),
// failing tb unless it is a 200 token response with an access token.
func tokenResponse(tb testing.TB, w *httptest.ResponseRecorder, what string) oauth2.TokenResponse {
	tb.Helper()
	var tr oauth2.TokenResponse
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tr) != nil || tr.AccessToken == "" {
		tb.Fatalf("%s: %d %s", what, w.Code, w.Body)
	}
	return tr
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

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// redisTestPrefix returns a key prefix of the test's own on rc
// ("permiso-test:<name>:<random>:"), whose keys are deleted when tb ends.
func redisTestPrefix(tb testing.TB, rc *redis.Client, name string) string {
	prefix := "permiso-test:" + name + ":" + rand.Text()[:12] + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, err := rc.Universal().Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rc.Universal().Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("cleaning up %s*: %v", prefix, err)
		}
	})
	return prefix
}
