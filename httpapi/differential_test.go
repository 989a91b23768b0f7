package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// The differential fuzz test of the boundary rule for untrusted bytes
// (docs/security-model.md, "Untrusted bytes"): one server on SQLite with
// the in-process limiter, lockout and revocations, one on PostgreSQL with
// Redis, both wired as cmd/permiso wires them (behind the in-process
// cache). Every registered route, every field it reads (path and query
// parameters, JSON and form body fields, from the OpenAPI catalogue; the
// client_id of HTTP Basic where the route authenticates clients) and the
// recorded headers (User-Agent, X-Forwarded-For, X-Real-IP, X-Request-Id,
// together) get hostile bytes, and every route gets query strings that
// cannot be parsed whole; both servers must answer each request alike and
// never with a 5xx.

// diffSeed fixes the random part of the values.
const diffSeed = 0x5eed_b17e5

// hostileValues are sent in every field: invalid UTF-8, NUL, control
// characters, overlong encodings (of NUL and '/'), a UTF-16 surrogate
// half, and a value of 100 KB.
var hostileValues = []string{
	"\xff\xfe",
	"a\x00b",
	"\x01\x1b[2J\x7f\r\n\t",
	"\xc0\x80",
	"\xe0\x80\xaf",
	"\xed\xa0\x80",
	strings.Repeat("x", 100_000),
}

// randomValues returns n short random byte strings, two thirds of their
// bytes control bytes or bytes above 0x7f (mostly invalid UTF-8).
func randomValues(rng *mrand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 1+rng.IntN(24))
		for j := range b {
			switch rng.IntN(3) {
			case 0:
				b[j] = byte(rng.IntN(0x20))
			case 1:
				b[j] = byte(0x80 + rng.IntN(0x80))
			default:
				b[j] = byte(0x20 + rng.IntN(0x5f))
			}
		}
		out[i] = string(b)
	}
	return out
}

// diffMaxAttempts is the login lockout's threshold: high, so that the
// hostile values of one field do not lock the fixture's account and hide
// the fields after it (the lockout of unstorable usernames has its own
// tests).
const diffMaxAttempts = 1000

// diffEnv is one of the two servers.
type diffEnv struct {
	name   string
	t      *testing.T
	ctx    context.Context
	db     permiso.Store
	h      http.Handler
	srv    *server
	pwHash string
	admin  string // a superuser's access token
}

// newDiffEnv wires a server on db; rc nil keeps the limiter, lockout and
// revocations in process, else they live in Redis under a key prefix of
// their own.
func newDiffEnv(t *testing.T, name string, db permiso.Store, rc *redis.Client) *diffEnv {
	t.Helper()
	ctx := t.Context()
	migrated(t, db)
	store, err := cache.New(ctx, db, cache.Options{TTL: 30 * time.Second, Bus: cache.NewLocalBus()})
	if err != nil {
		t.Fatal(err)
	}
	var (
		limiter     permiso.RateLimiter     = inprocess.NewLimiter()
		revocations permiso.RevocationStore = inprocess.NewRevocations()
		lockout     permiso.Lockout         = inprocess.NewLockout(diffMaxAttempts, 30*time.Minute)
		checks      permiso.Checker
	)
	if rc != nil {
		prefix := redisTestPrefix(t, rc, "diff")
		rl, rr := redis.NewLimiter(rc, prefix+"rate:"), redis.NewRevocations(rc, prefix+"token:")
		limiter, revocations, checks = rl, rr, redis.NewChecker(rl, rr)
		lockout = redis.NewLockout(rc, prefix+"rate:", diffMaxAttempts, 30*time.Minute)
	}
	t.Cleanup(func() { store.Close() })
	w := newWired(t, wiring{db: store, logged: true, audited: true, counted: true,
		auth: oauth2.Config{PasswordPolicy: idPolicy, PreventReuseCount: 3, PasswordMaxAge: 90 * 24 * time.Hour,
			ServiceTokenLifetime: 10 * time.Minute, OIDCIssuer: testIssuer},
		authDeps:  oauth2.Deps{Revocations: revocations, Lockout: lockout, Limiter: limiter, Checks: checks},
		ident:     identity.Config{Policy: idPolicy, PreventReuseCount: 3, LinkBaseURL: "https://auth.example.com"},
		identDeps: identity.Deps{Limiter: limiter},
		options: func(opts *Options) {
			opts.OpenAPIURL, opts.RedocURL, opts.MetricsPath = "/openapi.json", "/redoc", "/metrics"
			opts.AuditRetention = 90 * 24 * time.Hour
		},
		deps: Deps{Limiter: limiter, Checks: []HealthCheck{{Name: "database",
			Check: func(ctx context.Context) (map[string]any, error) { return nil, store.Ping(ctx) }}},
			Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })},
	})
	h := w.h
	pw := testwire.Hash(t, w.hasher, idPassword)
	e := &diffEnv{name: name, t: t, ctx: ctx, db: store, h: h, srv: h.(*server), pwHash: pw}
	e.createUser("diffadmin", true)
	e.admin = e.login("diffadmin").AccessToken
	return e
}

func (e *diffEnv) createUser(name string, superuser bool) permiso.User {
	e.t.Helper()
	return activeUser(e.t, e.db, name, e.pwHash, superuser)
}

func (e *diffEnv) resetPassword(id string) {
	e.t.Helper()
	if _, err := e.db.UpdateUser(e.ctx, uuid.MustParse(id), func(u *permiso.User) error {
		u.PasswordHash = e.pwHash
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *diffEnv) login(name string) oauth2.TokenResponse {
	e.t.Helper()
	v := url.Values{"grant_type": {"password"}, "username": {name}, "password": {idPassword}}
	return tokenResponse(e.t, serve(e.h, formRequest("/api/v1/auth/token", v)), e.name+": login "+name)
}

// diffFixture is what one route's requests act on, created afresh for
// every route (a DELETE of one route does not starve the next), by the
// same steps on both servers. Its values replace the placeholders of the
// request templates.
type diffFixture map[string]string

func (e *diffEnv) fixture(n int) diffFixture {
	e.t.Helper()
	name := "diff" + strconv.Itoa(n)
	u := e.createUser(name, false)
	sc, err := e.db.CreateScope(e.ctx, permiso.Scope{Name: "read:" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	role, err := e.db.CreateRole(e.ctx, permiso.Role{Name: name + "-role"}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	secret, hash := permiso.NewClientSecret()
	c, err := e.db.CreateServiceClient(e.ctx, permiso.ServiceClient{ClientID: name + "-client", SecretHash: hash, Name: name,
		ClientType: "confidential", IsActive: true, RateLimitPerMinute: 1000, RateLimitPerHour: 100_000}, []uuid.UUID{sc.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	tr := e.login(name)
	return diffFixture{
		"{username}": name, "{user}": u.ID.String(), "{role}": role.ID.String(), "{scope}": sc.ID.String(),
		"{client}": c.ClientID, "{secret}": secret, "{access}": tr.AccessToken, "{refresh}": tr.RefreshToken,
		"{session}": tr.SessionID, "{admin}": e.admin, "{file}": "swagger-init.js",
	}
}

// diffBodies are the valid rest of each route's body (documented path
// without the API prefix), so that a hostile field is judged on its own.
var diffBodies = map[string]map[string]any{
	"POST /auth/token":                        {"grant_type": "password", "username": "{username}", "password": idPassword},
	"POST /auth/refresh":                      {"refresh_token": "{refresh}"},
	"POST /auth/service-token":                {"client_id": "{client}", "client_secret": "{secret}"},
	"POST /auth/introspect":                   {"token": "{access}", "client_id": "{client}", "client_secret": "{secret}"},
	"POST /auth/revoke":                       {"token": "{refresh}", "client_id": "{client}", "client_secret": "{secret}"},
	"POST /auth/logout":                       {"all": false},
	"POST /auth/change-password":              {"username": "{username}", "current_password": idPassword, "new_password": "{newpw}"},
	"POST /users/register":                    {"username": "reg{uniq}", "email": "reg{uniq}@example.com", "password": idPassword},
	"POST /users/password-reset/request":      {"email": "{username}@example.com"},
	"POST /users/password-reset/confirm":      {"token": "not-a-token", "new_password": "{newpw}"},
	"POST /users/email-verification/request":  {"email": "{username}@example.com"},
	"POST /users/email-verification/confirm":  {"token": "not-a-token"},
	"PUT /users/me/password":                  {"current_password": idPassword, "new_password": "{newpw}"},
	"POST /users":                             {"username": "new{uniq}", "email": "new{uniq}@example.com", "password": idPassword},
	"PUT /users/{user_id}/password":           {"new_password": "{newpw}"},
	"PUT /users/{user_id}/roles":              {"role_ids": []any{"{role}"}},
	"POST /roles":                             {"name": "role{uniq}"},
	"PUT /roles/{role_id}/{sub}":              {"scope_ids": []any{"{scope}"}},
	"POST /roles/scopes":                      {"name": "read:res{uniq}"},
	"POST /roles/permissions/check":           {"user_id": "{user}", "resource": "profile", "action": "read"},
	"POST /roles/permissions/check-bulk":      {"user_id": "{user}", "permissions": []any{map[string]any{"resource": "profile", "action": "read"}}},
	"POST /service-clients":                   {"name": "client{uniq}"},
	"PUT /service-clients/{client_id}/scopes": {"scope_ids": []any{"{scope}"}},
}

// diffQueries are baseline query strings: DELETE /sessions acts on the
// fixture's user, never on the administrator driving the test.
var diffQueries = map[string]string{"DELETE /sessions": "user_id={user}"}

// diffAsUser are the routes called with the fixture user's token: they act
// on the caller's own account or session.
var diffAsUser = map[string]bool{"PUT /users/me": true, "PUT /users/me/password": true, "POST /auth/logout": true}

// diffFreshLogin are the routes that use up the fixture's session or
// refresh token: each of their requests gets a new login.
var diffFreshLogin = map[string]bool{"POST /auth/refresh": true, "POST /auth/logout": true}

// diffResetPassword are the routes that change the fixture user's
// password: before each of their requests it is set back to idPassword,
// so that every request is judged with the right current password.
var diffResetPassword = map[string]bool{"POST /auth/change-password": true, "PUT /users/me/password": true}

// diffHeaders are the request headers that are only recorded (sessions,
// audit events, logs), sent through a trusted proxy.
var diffHeaders = []string{"User-Agent", "X-Forwarded-For", "X-Real-Ip", "X-Request-Id"}

// diffPathValues fill the path parameters.
var diffPathValues = map[string]string{"user_id": "{user}", "role_id": "{role}", "scope_id": "{scope}",
	"client_id": "{client}", "session_id": "{session}", "file": "{file}", "sub": "scopes"}

// diffRoute is one registered route with the fields its operation
// documents.
type diffRoute struct {
	pattern string
	key     string // "METHOD /documented/path" without the API prefix
	method  string
	path    string // documented path with the API prefix, {params} inside
	public  bool
	oauth   bool
	// clientAuth: the route reads client credentials, so a client_id by
	// HTTP Basic is one of its fields.
	clientAuth bool
	query      []string
	form       []string       // form fields (OAuth endpoints)
	formJSON   bool           // the same fields may come as JSON
	json       []string       // JSON body fields ("a[].b" inside arrays of objects)
	types      map[string]any // JSON Schema type of each body field
}

// diffRoutes enumerates the server's route table and finds each route's
// operation in the OpenAPI document it serves; a route without one fails
// the test.
func diffRoutes(t *testing.T, s *server) []diffRoute {
	api := s.apiPrefix()
	doc, err := s.openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	type obj = map[string]any
	// resolve follows a $ref within the document.
	resolve := func(v obj) obj {
		for v != nil {
			ref, ok := v["$ref"].(string)
			if !ok {
				break
			}
			var cur any = doc
			for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
				m, _ := cur.(obj)
				cur = m[tok]
			}
			v, _ = cur.(obj)
		}
		return v
	}
	props := func(sc obj) obj {
		p, _ := resolve(sc)["properties"].(obj)
		return p
	}
	paths, _ := doc["paths"].(obj)
	var out []diffRoute
	for _, ri := range s.routes {
		method, p, _ := strings.Cut(ri.Pattern, " ")
		if p == "/{$}" {
			p = "/"
		}
		item, _ := paths[p].(obj)
		op, ok := item[strings.ToLower(method)].(obj)
		if !ok {
			t.Errorf("route %s has no operation in the OpenAPI document: the differential test cannot drive it", ri.Pattern)
			continue
		}
		r := diffRoute{pattern: ri.Pattern, key: method + " " + strings.TrimPrefix(p, api), method: method, path: p,
			public: ri.Access.public, types: map[string]any{}}
		if !strings.HasPrefix(p, api+"/") {
			r.key = method + " " + p
		}
		// The OAuth endpoints answer with the RFC 6749 envelope.
		responses, _ := op["responses"].(obj)
		for _, resp := range responses {
			content, _ := resolve(resp.(obj))["content"].(obj)
			js, _ := content["application/json"].(obj)
			if sc, _ := js["schema"].(obj); sc["$ref"] == "#/components/schemas/OAuthError" {
				r.oauth = true
			}
		}
		security, _ := op["security"].([]any)
		for _, req := range security {
			if _, ok := req.(obj)["clientBasic"]; ok {
				r.clientAuth = true
			}
		}
		params, _ := op["parameters"].([]any)
		for _, x := range params {
			prm := resolve(x.(obj))
			name, _ := prm["name"].(string)
			switch {
			case prm["in"] == "query":
				r.query = append(r.query, name)
			case prm["in"] == "path" && diffPathValues[name] == "":
				t.Errorf("route %s: no fixture value for the path parameter %s (diffPathValues)", ri.Pattern, name)
			}
		}
		rb, _ := op["requestBody"].(obj)
		content, _ := rb["content"].(obj)
		form, _ := content[contentTypeForm].(obj)
		js, _ := content[contentTypeJSON].(obj)
		if form != nil {
			fs, _ := form["schema"].(obj)
			for name := range props(fs) {
				r.form = append(r.form, name)
			}
			r.formJSON = js != nil
		} else if js != nil {
			bs, _ := js["schema"].(obj)
			for name, v := range props(bs) {
				fs := resolve(v.(obj))
				items, _ := fs["items"].(obj)
				if inner := props(items); items != nil && inner != nil {
					for in := range inner {
						r.json = append(r.json, name+"[]."+in)
					}
					continue
				}
				r.json = append(r.json, name)
				r.types[name] = fs["type"]
			}
		}
		if r.formJSON {
			r.json = append(r.json, r.form...)
		}
		slices.Sort(r.query)
		slices.Sort(r.form)
		slices.Sort(r.json)
		out = append(out, r)
	}
	return out
}

// diffCase is one request: a route, where the hostile value goes, and the
// value.
type diffCase struct {
	route *diffRoute
	where string // "path:x", "query:x", "form:x", "json:x", "headers", "basic", "rawquery"
	value string
}

func (c diffCase) String() string {
	v := c.value
	if len(v) > 40 {
		v = v[:20] + "…(" + strconv.Itoa(len(v)) + " bytes)"
	}
	return fmt.Sprintf("%s %s=%q", c.route.pattern, c.where, v)
}

// jsonLiteral writes s as a JSON string literal keeping its bytes: only
// '"', '\' and control bytes are escaped, invalid UTF-8 is sent as it is.
func jsonLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// request builds the case's request for one server: the placeholders of
// the templates are that server's fixture, the hostile value is sent as
// it is.
func (c diffCase) request(fx diffFixture, n int) *http.Request {
	rt := c.route
	repl := []string{"{uniq}", strconv.Itoa(n), "{newpw}", "New-Horse-9-battery-" + strconv.Itoa(n) + "!"}
	for k, v := range fx {
		repl = append(repl, k, v)
	}
	fill := strings.NewReplacer(repl...)
	kind, field, _ := strings.Cut(c.where, ":")

	path := rt.path
	for name, v := range diffPathValues {
		if kind == "path" && name == field {
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(c.value))
		} else {
			path = strings.ReplaceAll(path, "{"+name+"}", fill.Replace(v))
		}
	}

	query := fill.Replace(diffQueries[rt.key])
	switch kind {
	case "query":
		q := field + "=" + url.QueryEscape(c.value)
		if query != "" && !strings.HasPrefix(query, field+"=") {
			q = query + "&" + q
		}
		query = q
	case "rawquery":
		if query != "" {
			query += "&"
		}
		query += c.value
	}
	if query != "" {
		path += "?" + query
	}

	base := map[string]any{}
	for k, v := range diffBodies[rt.key] {
		base[k] = fillValue(fill, v)
	}
	if kind == "basic" {
		delete(base, "client_id")
		delete(base, "client_secret")
	}
	var body, contentType string
	const mark = "\ue000hostile\ue000"
	switch {
	case kind == "form" || (len(rt.form) > 0 && kind != "json"):
		v := url.Values{}
		for k, x := range base {
			v.Set(k, fmt.Sprint(x))
		}
		if kind == "form" {
			v.Set(field, c.value)
		}
		body, contentType = v.Encode(), contentTypeForm
	case kind == "json" || len(rt.json) > 0:
		if kind == "json" {
			name, inner, nested := strings.Cut(field, "[].")
			switch {
			case nested:
				item := map[string]any{}
				if items, ok := base[name].([]any); ok && len(items) > 0 {
					for k, x := range items[0].(map[string]any) {
						item[k] = x
					}
				}
				item[inner] = mark
				base[name] = []any{item}
			case rt.types[name] == "array":
				base[name] = []any{mark}
			default:
				base[name] = mark
			}
		}
		b, _ := json.Marshal(base)
		body = strings.Replace(string(b), `"`+mark+`"`, jsonLiteral(c.value), 1)
		contentType = contentTypeJSON
	}
	var r *http.Request
	if contentType != "" {
		r = httptest.NewRequest(rt.method, "http://permiso.test"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
	} else {
		r = httptest.NewRequest(rt.method, "http://permiso.test"+path, nil)
	}
	// A trusted proxy, so the forwarded headers are read.
	r.RemoteAddr = "127.0.0.1:40000"
	switch {
	case rt.public:
	case diffAsUser[rt.key]:
		r.Header.Set("Authorization", "Bearer "+fx["{access}"])
	default:
		r.Header.Set("Authorization", "Bearer "+fx["{admin}"])
	}
	switch kind {
	case "headers":
		// The recorded free text of a request, which no route may fail on
		// (docs/security-model.md): all of it at once.
		for _, h := range diffHeaders {
			r.Header[h] = []string{c.value}
		}
	case "basic":
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.value)+":"+url.QueryEscape(fx["{secret}"]))))
	}
	return r
}

func fillValue(fill *strings.Replacer, v any) any {
	switch v := v.(type) {
	case string:
		return fill.Replace(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = fillValue(fill, x)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = fillValue(fill, x)
		}
		return out
	}
	return v
}

// diffAnswer is what is compared: the status, the error code and, for a
// validation error, the fields its details name. Ids, times and messages
// differ between the backends and are left out.
type diffAnswer struct {
	status int
	code   string
	fields string
}

func answerOf(w *httptest.ResponseRecorder) diffAnswer {
	a := diffAnswer{status: w.Code}
	var body struct {
		Error   string `json:"error"`
		Details []struct {
			Field string `json:"field"`
		} `json:"details"`
	}
	if w.Code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && json.Unmarshal(w.Body.Bytes(), &body) == nil {
		a.code = body.Error
		var fs []string
		for _, d := range body.Details {
			fs = append(fs, d.Field)
		}
		slices.Sort(fs)
		a.fields = strings.Join(fs, ",")
	}
	return a
}

// TestBackendsAnswerAlike is the differential fuzz test: every route ×
// every field × hostile values (fixed ones, and a few random ones from a
// fixed seed) on SQLite and on PostgreSQL + Redis. It fails on any 5xx
// and on any request the two answer differently. It needs
// PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL and skips without.
func TestBackendsAnswerAlike(t *testing.T) {
	pgURL, redisURL := os.Getenv("PERMISO_TEST_DATABASE_URL"), os.Getenv("PERMISO_TEST_REDIS_URL")
	if pgURL == "" || redisURL == "" {
		t.Skip("PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL are needed to compare the backends")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	rc, err := redis.Open(redisURL, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	envs := [2]*diffEnv{newDiffEnv(t, "sqlite", testdb.SQLite(t), nil), newDiffEnv(t, "postgres+redis", testdb.Postgres(t, "httpapi"), rc)}

	rng := mrand.New(mrand.NewPCG(diffSeed, diffSeed))
	routes := diffRoutes(t, envs[0].srv)
	if len(routes) < 60 {
		t.Fatalf("only %d routes found", len(routes))
	}
	// Every route-specific table names routes that exist.
	keys := map[string]bool{}
	for _, rt := range routes {
		keys[rt.key] = true
	}
	var named []string
	named = slices.AppendSeq(named, maps.Keys(diffBodies))
	named = slices.AppendSeq(named, maps.Keys(diffQueries))
	named = slices.AppendSeq(named, maps.Keys(diffAsUser))
	named = slices.AppendSeq(named, maps.Keys(diffFreshLogin))
	named = slices.AppendSeq(named, maps.Keys(diffResetPassword))
	for _, k := range named {
		if !keys[k] {
			t.Errorf("%s is in a table of this test but is no route", k)
		}
	}
	rawQueries := []string{"a" + strings.Repeat("&a", 10_000), "search=%zz", "a=1;b=2"}

	// Failures are reported once per route and place, with a count, so
	// that one broken field does not hide the others.
	var (
		n, failures int
		groups      []string
		byGroup     = map[string]int{}
		first       = map[string]string{}
		fail        = func(c diffCase, format string, args ...any) {
			failures++
			g := c.route.pattern + " " + c.where
			if byGroup[g] == 0 {
				groups = append(groups, g)
				first[g] = fmt.Sprintf(format, args...)
			}
			byGroup[g]++
		}
		statuses = map[string]map[int]int{}
	)
	for i := range routes {
		rt := &routes[i]
		var fx [2]diffFixture
		for j, e := range envs {
			fx[j] = e.fixture(i)
		}
		// Fields first; then the headers, which leave the request valid
		// and so may carry out a deletion; the query strings last.
		var cases []diffCase
		values := append(slices.Clone(hostileValues), randomValues(rng, 2)...)
		var where []string
		for _, seg := range strings.Split(rt.path, "/") {
			if strings.HasPrefix(seg, "{") {
				where = append(where, "path:"+strings.Trim(seg, "{}"))
			}
		}
		for _, f := range rt.query {
			where = append(where, "query:"+f)
		}
		for _, f := range rt.form {
			where = append(where, "form:"+f)
		}
		for _, f := range rt.json {
			where = append(where, "json:"+f)
		}
		where = append(where, "headers")
		if rt.clientAuth {
			where = append(where, "basic")
		}
		for _, w := range where {
			for _, v := range values {
				cases = append(cases, diffCase{route: rt, where: w, value: v})
			}
		}
		for _, q := range rawQueries {
			cases = append(cases, diffCase{route: rt, where: "rawquery", value: q})
		}
		for _, c := range cases {
			n++
			if diffResetPassword[rt.key] {
				for j, e := range envs {
					e.resetPassword(fx[j]["{user}"])
				}
			}
			if diffFreshLogin[rt.key] {
				for j, e := range envs {
					tr := e.login(fx[j]["{username}"])
					fx[j]["{access}"], fx[j]["{refresh}"], fx[j]["{session}"] = tr.AccessToken, tr.RefreshToken, tr.SessionID
				}
			}
			var (
				got  [2]diffAnswer
				body [2]string
				wg   sync.WaitGroup
			)
			for j, e := range envs {
				wg.Go(func() {
					w := httptest.NewRecorder()
					e.h.ServeHTTP(w, c.request(fx[j], n))
					got[j] = answerOf(w)
					if w.Code >= 500 {
						body[j] = w.Body.String()
					}
				})
			}
			wg.Wait()
			for j, e := range envs {
				if got[j].status >= 500 {
					fail(c, "%s: %s answered %d: %.300s", c, e.name, got[j].status, body[j])
				}
			}
			if got[0] != got[1] {
				fail(c, "%s: %s answered %+v, %s %+v", c, envs[0].name, got[0], envs[1].name, got[1])
			}
			if c.where == "rawquery" && (got[0].status != http.StatusBadRequest || got[1].status != http.StatusBadRequest) {
				fail(c, "%s: a query string that cannot be parsed whole got %+v and %+v, want 400", c, got[0], got[1])
			}
			if statuses[rt.pattern] == nil {
				statuses[rt.pattern] = map[int]int{}
			}
			statuses[rt.pattern][got[0].status]++
		}
	}
	for _, g := range groups {
		t.Errorf("%s (%d requests like it)", first[g], byGroup[g])
	}
	if testing.Verbose() {
		for _, rt := range routes {
			t.Logf("%s: statuses %v", rt.pattern, statuses[rt.pattern])
		}
	}
	t.Logf("%d routes, %d requests per backend (seed %#x), %d failures", len(routes), n, uint64(diffSeed), failures)
}
