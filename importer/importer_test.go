package importer_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/importer"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testhash"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// testDatabaseURL returns PERMISO_TEST_DATABASE_URL or skips the test.
func testDatabaseURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if raw == "" {
		t.Skip("PERMISO_TEST_DATABASE_URL is not set; the original database is PostgreSQL")
	}
	return raw
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// exec runs sql on a short-lived connection to dsn.
func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	testdb.Exec(t, dsn, sql, args...)
}

// original is a throw-away schema holding the original service's tables
// (testdata/original_schema.sql).
type original struct {
	t   *testing.T
	url string // with search_path set to the schema
}

func newOriginal(t *testing.T) *original {
	t.Helper()
	_, dsn := testdb.Schema(t, testDatabaseURL(t), "permiso_original_")
	o := &original{t: t, url: dsn}
	ddl, err := os.ReadFile("testdata/original_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	o.exec(string(ddl))
	return o
}

// read reads the original installation (importer.Read).
func (o *original) read() *importer.Original {
	o.t.Helper()
	orig, err := importer.Read(o.t.Context(), o.url, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	return orig
}

// eachTarget runs test in a subtest per target store, on a fresh one.
func eachTarget(t *testing.T, test func(t *testing.T, store permiso.Store)) {
	t.Helper()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) { test(t, tg.open(t)) })
	}
}

func (o *original) exec(sql string, args ...any) {
	o.t.Helper()
	exec(o.t, o.url, sql, args...)
}

// The original's default roles and scopes (never seeded by it, but what
// its deployments created by hand) with fixed ids.
var (
	origRoleUser    = uuid.MustParse("a0000000-0000-4000-8000-000000000001")
	origRoleAdmin   = uuid.MustParse("a0000000-0000-4000-8000-000000000002")
	origRoleTrader  = uuid.MustParse("a0000000-0000-4000-8000-000000000003")
	origRoleService = uuid.MustParse("a0000000-0000-4000-8000-000000000004")
	origScopes      = []string{"read:profile", "write:profile", "read:trades", "write:trades", "admin:users",
		"admin:clients", "admin:system", "service:mt5", "service:api"}
)

func origScopeID(name string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("scope:"+name))
}

// fixture is a populated original database.
type fixture struct {
	o                         *original
	alice, bob, carol         uuid.UUID
	alicePW, bobPW            string
	mt5, gateway, mobile      uuid.UUID
	mt5Secret, gatewaySecret  string
	created, updated, lastLog time.Time
}

func seedOriginal(t *testing.T) *fixture {
	t.Helper()
	o := newOriginal(t)
	f := &fixture{o: o, alice: uuid.New(), bob: uuid.New(), carol: uuid.New(),
		alicePW: "Alice-0ld-Passw0rd!", bobPW: "Bob-0ld-Passw0rd!",
		mt5: uuid.New(), gateway: uuid.New(), mobile: uuid.New(),
		mt5Secret: "mt5-original-secret-" + randomName(""), gatewaySecret: "gateway-original-secret-" + randomName(""),
		created: time.Date(2024, 3, 1, 10, 0, 0, 123456000, time.UTC),
		updated: time.Date(2024, 9, 1, 10, 0, 0, 0, time.UTC),
		lastLog: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	for _, r := range []struct {
		id         uuid.UUID
		name, desc string
	}{
		{origRoleUser, "user", "Standard user role"}, {origRoleAdmin, "admin", "Administrator role"},
		{origRoleTrader, "trader", "Trading user role"}, {origRoleService, "service", "Service client role"},
	} {
		o.exec(`INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			r.id, r.name, r.desc, f.created, f.updated)
	}
	for _, s := range origScopes {
		_, res, _ := strings.Cut(s, ":")
		o.exec(`INSERT INTO scopes (id, name, description, resource, created_at) VALUES ($1, $2, $3, $4, $5)`,
			origScopeID(s), s, "original "+s, res, f.created)
	}
	link := func(table, a, b string, from uuid.UUID, to ...string) {
		for _, s := range to {
			id := origScopeID(s)
			switch s {
			case "user":
				id = origRoleUser
			case "admin":
				id = origRoleAdmin
			case "trader":
				id = origRoleTrader
			}
			o.exec(`INSERT INTO `+table+` (`+a+`, `+b+`) VALUES ($1, $2)`, from, id)
		}
	}
	link("role_scopes", "role_id", "scope_id", origRoleUser, "read:profile", "write:profile")
	link("role_scopes", "role_id", "scope_id", origRoleAdmin, origScopes...)
	link("role_scopes", "role_id", "scope_id", origRoleTrader, "read:trades", "write:trades")
	link("role_scopes", "role_id", "scope_id", origRoleService, "service:api")

	// Usernames as the original stored them (lower-cased at creation),
	// one email in mixed case.
	o.exec(`INSERT INTO users (id, username, email, password_hash, first_name, last_name, is_active,
		is_verified, is_superuser, last_login, password_changed_at, created_at, updated_at, password_reset_token)
		VALUES ($1, 'alice', 'Alice@Example.com', $2, 'Alice', 'Admin', true, true, true, $3, $4, $4, $5, 'plain-reset-token')`,
		f.alice, testhash.Original(t, f.alicePW), f.lastLog, f.created, f.updated)
	o.exec(`INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser,
		password_changed_at, created_at, updated_at)
		VALUES ($1, 'bob', 'bob@example.com', $2, true, false, false, $3, $3, $3)`,
		f.bob, testhash.Original(t, f.bobPW), f.created)
	o.exec(`INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser,
		password_changed_at, created_at, updated_at, email_verification_token)
		VALUES ($1, 'carol', 'carol@example.com', $2, false, false, false, $3, $3, $3, 'plain-verify-token')`,
		f.carol, testhash.Original(t, "Carol-0ld-Passw0rd!"), f.created)
	link("user_roles", "user_id", "role_id", f.alice, "admin", "user")
	link("user_roles", "user_id", "role_id", f.bob, "user", "trader")
	link("user_roles", "user_id", "role_id", f.carol, "user")

	client := `INSERT INTO service_clients (id, client_id, client_secret_hash, name, client_type, is_active,
		is_trusted, access_token_lifetime, refresh_token_lifetime, rate_limit_per_minute, rate_limit_per_hour,
		total_requests, allowed_ips, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, true, $6, $7, $8, $9, $10, $11, $12, $13, $13)`
	o.exec(client, f.mt5, "mt5-service", testhash.Original(t, f.mt5Secret), "MT5 service", "confidential", true, 7200, 86400, 120, 5000, 17, "127.0.0.*, 10.0.*", f.created)
	o.exec(client, f.gateway, "api-gateway", testhash.Original(t, f.gatewaySecret), "API gateway", "confidential", true, 3600, nil, 300, 10000, 0, nil, f.created)
	o.exec(client, f.mobile, "mobile-app", testhash.Original(t, "never-used"), "Mobile app", "public", false, 1800, 604800, 60, 1000, 0, "*", f.created)
	link("service_client_scopes", "service_client_id", "scope_id", f.mt5, "service:mt5", "read:trades")
	link("service_client_scopes", "service_client_id", "scope_id", f.gateway, "service:api")

	// What is not carried: a session and two refresh tokens of alice.
	o.exec(`INSERT INTO user_sessions (id, session_id, expires_at, ip_address, is_active, user_id)
		VALUES ($1, 'sess-1', now() + interval '1 hour', '192.0.2.1', true, $2)`, uuid.New(), f.alice)
	for range 2 {
		o.exec(`INSERT INTO refresh_tokens (id, token_id, token_hash, expires_at, is_revoked, is_used, user_id)
			VALUES ($1, $2, 'argon2-of-a-jwt', now() + interval '7 days', false, false, $3)`, uuid.New(), randomName("rt"), f.alice)
	}
	return f
}

// target is a fresh, migrated permiso store of one backend.
type target struct {
	name string
	open func(t *testing.T) permiso.Store
}

func targets(t *testing.T) []target {
	t.Helper()
	return []target{
		{"sqlite", func(t *testing.T) permiso.Store { return testdb.SQLite(t) }},
		{"postgres", func(t *testing.T) permiso.Store {
			return testdb.Postgres(t, "importer_target")
		}},
	}
}

// options are the checks cmd/permiso wires: the real hasher's and the
// OAuth core's allowed_ips parser.
func options(h *argon2id.Hasher) importer.Options {
	return importer.Options{
		CheckHash:       h.Check,
		CheckAllowedIPs: func(s string) error { _, err := permiso.ParseAllowedIPs(s); return err },
		BatchSize:       2, // several transactions even for this small fixture
	}
}

// snapshot is what a store holds, for "nothing changed" checks.
func snapshot(t *testing.T, s permiso.Store) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	users, _, err := s.ListUsers(ctx, permiso.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		b.WriteString(u.ID.String() + " " + u.Username + " " + u.Email + " " + u.PasswordHash + " " + strings.Join(u.RoleNames(), ",") + "\n")
	}
	roles, _, err := s.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		var sc []string
		for _, x := range r.Scopes {
			sc = append(sc, x.Name)
		}
		b.WriteString(r.ID.String() + " " + r.Name + " " + strings.Join(sc, ",") + "\n")
	}
	scopes, _, err := s.ListScopes(ctx, permiso.ScopeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range scopes {
		b.WriteString(x.ID.String() + " " + x.Name + "\n")
	}
	clients, _, err := s.ListServiceClients(ctx, permiso.ClientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		b.WriteString(c.ID.String() + " " + c.ClientID + " " + c.SecretHash + " " + strings.Join(c.ScopeNames(), ",") + "\n")
	}
	return b.String()
}

// TestImportOriginalInstallation imports a populated original database
// into a fresh permiso store of each backend: a dry run changes nothing,
// the import carries users, roles, scopes, clients and links (matching the
// seeded roles and scopes by name), a second run changes nothing, an
// imported user logs in with the old password (and the hash is upgraded),
// and an imported client gets a token with its old secret (and its hash
// becomes permiso's).
func TestImportOriginalInstallation(t *testing.T) {
	f := seedOriginal(t)
	orig, err := importer.Read(t.Context(), strings.Replace(f.o.url, "postgresql://", "postgresql+asyncpg://", 1), nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(orig.Users) != 3 || len(orig.Roles) != 4 || len(orig.Scopes) != 9 || len(orig.Clients) != 3 ||
		orig.Sessions != 1 || orig.RefreshTokens != 2 {
		t.Fatalf("read %d users, %d roles, %d scopes, %d clients, %d sessions, %d refresh tokens",
			len(orig.Users), len(orig.Roles), len(orig.Scopes), len(orig.Clients), orig.Sessions, orig.RefreshTokens)
	}
	hasher := argon2id.New(argon2id.Options{})
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := t.Context()
			store := tg.open(t)
			before := snapshot(t, store)

			// Dry run: the plan, and nothing written.
			plan, err := importer.NewPlan(ctx, orig, store, options(hasher))
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			want := permiso.ImportCounts{Scopes: 4, Roles: 1, Users: 3, Clients: 3,
				// user: nothing new; admin: the 4 new scopes; trader: 2;
				// service: 1.
				RoleScopes: 7, UserRoles: 5, ClientScopes: 3}
			if plan.Add != want {
				t.Errorf("plan adds %+v, want %+v", plan.Add, want)
			}
			slices.Sort(plan.MatchedRoles)
			if !slices.Equal(plan.MatchedRoles, []string{"admin", "service", "user"}) {
				t.Errorf("matched roles %v", plan.MatchedRoles)
			}
			if nc := plan.NotCarried; nc != (importer.NotCarried{RefreshTokens: 2, Sessions: 1, PendingResets: 1, PendingVerifications: 1}) {
				t.Errorf("not carried %+v", nc)
			}
			if after := snapshot(t, store); after != before {
				t.Fatalf("planning changed the store:\n%s\nwas:\n%s", after, before)
			}

			written, err := plan.Apply(ctx, store, nil)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if written != want {
				t.Errorf("Apply wrote %+v, want %+v", written, want)
			}
			checkImported(t, store, f)

			// A second run plans nothing and writes nothing.
			imported := snapshot(t, store)
			again, err := importer.NewPlan(ctx, orig, store, options(hasher))
			if err != nil {
				t.Fatalf("second NewPlan: %v", err)
			}
			if again.Add.Total() != 0 {
				t.Errorf("second run plans %+v, want nothing", again.Add)
			}
			if n, err := again.Apply(ctx, store, nil); err != nil || n.Total() != 0 {
				t.Errorf("second Apply: %+v, %v", n, err)
			}
			if after := snapshot(t, store); after != imported {
				t.Errorf("the second run changed the store")
			}

			loginAndClient(t, store, hasher, f)
		})
	}
}

func checkImported(t *testing.T, store permiso.Store, f *fixture) {
	t.Helper()
	ctx := t.Context()
	alice, err := store.GetUser(ctx, f.alice)
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if alice.Username != "alice" || alice.Email != "alice@example.com" || !alice.IsSuperuser || !alice.IsVerified ||
		!alice.IsActive || alice.FirstName == nil || *alice.FirstName != "Alice" {
		t.Errorf("alice = %+v", alice)
	}
	if !alice.CreatedAt.Equal(f.created) || !alice.UpdatedAt.Equal(f.updated) || !alice.PasswordChangedAt.Equal(f.created) ||
		alice.LastLogin == nil || !alice.LastLogin.Equal(f.lastLog) {
		t.Errorf("alice's times: created %v updated %v password_changed %v last_login %v", alice.CreatedAt, alice.UpdatedAt, alice.PasswordChangedAt, alice.LastLogin)
	}
	if got := alice.RoleNames(); !slices.Equal(got, []string{"admin", "user"}) {
		t.Errorf("alice's roles %v", got)
	}
	if !slices.Contains(alice.ScopeNames(), "read:trades") || !slices.Contains(alice.ScopeNames(), "admin:tokens") {
		t.Errorf("alice's scopes %v: want the original's and permiso's admin scopes", alice.ScopeNames())
	}
	bob, err := store.GetUser(ctx, f.bob)
	if err != nil {
		t.Fatal(err)
	}
	if got := bob.ScopeNames(); !slices.Equal(got, []string{"read:profile", "read:trades", "write:profile", "write:trades"}) {
		t.Errorf("bob's scopes %v", got)
	}
	carol, err := store.GetUser(ctx, f.carol)
	if err != nil || carol.IsActive || carol.IsVerified {
		t.Errorf("carol = %+v, %v: want inactive and unverified", carol, err)
	}
	// One role per name: the original's admin is permiso's seeded admin.
	roles, _, err := store.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
		if r.Name == "trader" && r.ID != origRoleTrader {
			t.Errorf("trader imported with id %s, want the original's %s", r.ID, origRoleTrader)
		}
		if r.Name == "admin" && r.ID == origRoleAdmin {
			t.Error("admin carries the original's id: it was duplicated instead of matched")
		}
	}
	if !slices.Equal(names, []string{"admin", "service", "trader", "user"}) {
		t.Errorf("roles %v", names)
	}
	mt5, err := store.GetServiceClient(ctx, f.mt5)
	if err != nil {
		t.Fatal(err)
	}
	if mt5.ClientID != "mt5-service" || !mt5.IsTrusted || mt5.AccessTokenLifetime != 7200 || mt5.RateLimitPerMinute != 120 ||
		mt5.TotalRequests != 17 || mt5.AllowedIPs == nil || *mt5.AllowedIPs != "127.0.0.0/24,10.0.0.0/16" ||
		!slices.Equal(mt5.ScopeNames(), []string{"read:trades", "service:mt5"}) || !strings.HasPrefix(mt5.SecretHash, "$argon2id$") {
		t.Errorf("mt5-service = %+v", mt5)
	}
	mobile, err := store.GetServiceClientByClientID(ctx, "mobile-app")
	if err != nil || mobile.ClientType != "public" || mobile.AllowedIPs != nil {
		t.Errorf("mobile-app = %+v, %v", mobile, err)
	}
}

// loginAndClient uses the imported credentials through the OAuth core.
func loginAndClient(t *testing.T, store permiso.Store, hasher *argon2id.Hasher, f *fixture) {
	t.Helper()
	ctx := t.Context()
	signer := testwire.HS256(t, "an-hs256-test-secret-of-32-bytes-or-more", "permiso-test", nil)
	svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test"}, oauth2.Deps{
		Users: store, Clients: store, Tokens: store, Sessions: store, Hasher: hasher,
		Signer: signer, Revocations: inprocess.NewRevocations(),
	})
	meta := oauth2.RequestMeta{IP: netip.MustParseAddr("127.0.0.1"), RequestID: "import-test"}
	token := func(form url.Values, auth string) (oauth2.TokenResponse, error) {
		req, err := oauth2.ParseTokenRequest(form, auth)
		if err != nil {
			return oauth2.TokenResponse{}, err
		}
		return svc.Token(ctx, req, meta, nil)
	}

	before, err := store.GetUser(ctx, f.bob)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := token(url.Values{"grant_type": {"password"}, "username": {"BOB"}, "password": {f.bobPW}}, "")
	if err != nil {
		t.Fatalf("password grant with the original password: %v", err)
	}
	if resp.AccessToken == "" || resp.RefreshToken == "" || !strings.Contains(resp.Scope, "read:trades") {
		t.Errorf("token response %+v", resp)
	}
	after, err := store.GetUser(ctx, f.bob)
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash == before.PasswordHash || !strings.HasPrefix(after.PasswordHash, "$argon2id$v=19$m=65536,t=4,p=1$") {
		t.Errorf("hash after the first login = %q, want an upgrade to the current parameters", after.PasswordHash)
	}
	if ok, rehash, err := hasher.Verify(ctx, f.bobPW, after.PasswordHash); !ok || rehash || err != nil {
		t.Errorf("upgraded hash: Verify = %v, %v, %v", ok, rehash, err)
	}
	if _, err := token(url.Values{"grant_type": {"password"}, "username": {"bob@example.com"}, "password": {f.bobPW}}, ""); err != nil {
		t.Errorf("second login (by email, upgraded hash): %v", err)
	}
	if _, err := token(url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"Carol-0ld-Passw0rd!"}}, ""); err == nil {
		t.Error("the inactive user carol logged in")
	}

	cc := url.Values{"grant_type": {"client_credentials"}}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	if _, err := token(cc, basic("api-gateway", "wrong")); err == nil {
		t.Error("a wrong secret authenticated api-gateway")
	}
	resp, err = token(cc, basic("api-gateway", f.gatewaySecret))
	if err != nil {
		t.Fatalf("client credentials with the original secret: %v", err)
	}
	if resp.AccessToken == "" || resp.Scope != "service:api" {
		t.Errorf("client token response %+v", resp)
	}
	gw, err := store.GetServiceClient(ctx, f.gateway)
	if err != nil {
		t.Fatal(err)
	}
	if gw.SecretHash != permiso.HashToken(f.gatewaySecret) {
		t.Errorf("client hash after the first authentication = %q, want permiso's SHA-256 of the secret", gw.SecretHash)
	}
	if _, err := token(cc, basic("api-gateway", f.gatewaySecret)); err != nil {
		t.Errorf("second client authentication (fast hash): %v", err)
	}
	// mt5-service is limited to 127.0.0.0/24 and 10.0.0.0/16 (its
	// wildcards), which the request's 127.0.0.1 is in.
	if _, err := token(cc, basic("mt5-service", f.mt5Secret)); err != nil {
		t.Errorf("mt5-service from 127.0.0.1: %v", err)
	}
}

// TestImportRefusesUnmappableRows: every value that cannot be carried
// over is reported by table, id and column, and nothing is written.
func TestImportRefusesUnmappableRows(t *testing.T) {
	o := newOriginal(t)
	now := time.Now().UTC()
	hash := testhash.Original(t, "Some-0ld-Passw0rd!")
	spaced, ann1, ann2, bcrypt, short := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	user := `INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser, created_at)
		VALUES ($1, $2, $3, $4, true, false, false, $5)`
	o.exec(user, spaced, "john doe", "john@example.com", hash, now)
	o.exec(user, ann1, "ann", "Ann@Example.com", hash, now)
	o.exec(user, ann2, "ann2", "ann@example.com", hash, now.Add(time.Second))
	o.exec(user, bcrypt, "bcrypt-user", "b@example.com", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", now)
	o.exec(user, short, "jo", "not-an-address", hash, now)
	badScope, badRole, wildClient, longLived := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	o.exec(`INSERT INTO scopes (id, name) VALUES ($1, 'Admin')`, badScope)
	o.exec(`INSERT INTO roles (id, name) VALUES ($1, 'power user')`, badRole)
	client := `INSERT INTO service_clients (id, client_id, client_secret_hash, name, client_type, is_active,
		is_trusted, access_token_lifetime, rate_limit_per_minute, rate_limit_per_hour, allowed_ips)
		VALUES ($1, $2, $3, 'c', 'confidential', true, false, $4, 60, 1000, $5)`
	o.exec(client, wildClient, "wild", hash, 3600, "10.*.0.1")
	o.exec(client, longLived, "long-lived", hash, 7*86400, nil)

	orig := o.read()
	hasher := argon2id.New(argon2id.Options{})
	eachTarget(t, func(t *testing.T, store permiso.Store) {
		before := snapshot(t, store)
		_, err := importer.NewPlan(t.Context(), orig, store, options(hasher))
		var probs importer.Problems
		if !errors.As(err, &probs) {
			t.Fatalf("NewPlan = %v, want Problems", err)
		}
		want := []struct{ table, id, column, says string }{
			{"scopes", badScope.String(), "name", `"Admin"`},
			{"roles", badRole.String(), "name", `"power user"`},
			{"users", spaced.String(), "username", `"john doe"`},
			{"users", ann2.String(), "email", ann1.String()},
			{"users", bcrypt.String(), "password_hash", "cannot verify"},
			{"users", short.String(), "username", `"jo"`},
			{"users", short.String(), "email", `"not-an-address"`},
			{"service_clients", wildClient.String(), "allowed_ips", `"10.*.0.1"`},
			{"service_clients", longLived.String(), "access_token_lifetime", "604800"},
		}
		if len(probs) != len(want) {
			t.Errorf("%d problems, want %d:\n%v", len(probs), len(want), probs)
		}
		for _, w := range want {
			found := slices.ContainsFunc(probs, func(p importer.RowError) bool {
				return p.Table == w.table && p.ID == w.id && p.Column == w.column && strings.Contains(p.Reason, w.says)
			})
			if !found {
				t.Errorf("no problem for %s id=%s column %s mentioning %s:\n%v", w.table, w.id, w.column, w.says, probs)
			}
		}
		msg := err.Error()
		if !strings.Contains(msg, "users id="+spaced.String()+" column username: ") {
			t.Errorf("message does not name the row as table id=... column ...: %q", msg)
		}
		if strings.Contains(msg, hash) {
			t.Error("the message shows a password hash")
		}
		if after := snapshot(t, store); after != before {
			t.Error("a refused import changed the store")
		}
	})
}

// TestImportRefusesTakenNames: a user or client of the original whose
// username, email or client_id belongs to another permiso row (one the
// import did not create) is reported; nothing is merged or overwritten.
func TestImportRefusesTakenNames(t *testing.T) {
	o := newOriginal(t)
	hash := testhash.Original(t, "Some-0ld-Passw0rd!")
	u1, u2, c1 := uuid.New(), uuid.New(), uuid.New()
	user := `INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser)
		VALUES ($1, $2, $3, $4, true, false, false)`
	o.exec(user, u1, "admin", "someone@example.com", hash)
	o.exec(user, u2, "dave", "ADMIN@example.com", hash)
	o.exec(`INSERT INTO service_clients (id, client_id, client_secret_hash, name, client_type, is_active,
		is_trusted, access_token_lifetime, rate_limit_per_minute, rate_limit_per_hour)
		VALUES ($1, 'gateway', $2, 'c', 'confidential', true, false, 3600, 60, 1000)`, c1, hash)
	orig := o.read()
	hasher := argon2id.New(argon2id.Options{})
	eachTarget(t, func(t *testing.T, store permiso.Store) {
		existing, err := store.CreateUser(t.Context(), permiso.User{Username: "admin", Email: "admin@example.com",
			PasswordHash: hash, IsActive: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateServiceClient(t.Context(), permiso.ServiceClient{ClientID: "gateway",
			SecretHash: permiso.HashToken("x"), Name: "g", IsActive: true}, nil); err != nil {
			t.Fatal(err)
		}
		_, err = importer.NewPlan(t.Context(), orig, store, options(hasher))
		var probs importer.Problems
		if !errors.As(err, &probs) || len(probs) != 3 {
			t.Fatalf("NewPlan = %v, want 3 problems", err)
		}
		for i, w := range []struct{ id, column string }{{u1.String(), "username"}, {u2.String(), "email"}, {c1.String(), "client_id"}} {
			if probs[i].ID != w.id || probs[i].Column != w.column {
				t.Errorf("problem %d = %v, want id=%s column %s", i, probs[i], w.id, w.column)
			}
		}
		if !strings.Contains(probs[0].Reason, existing.ID.String()) {
			t.Errorf("problem %q does not name the permiso user holding the name", probs[0])
		}
	})
}

// TestReadRefusesOtherDatabases: a database without the original's
// tables gets a clear error, and only PostgreSQL URLs are accepted.
func TestReadRefusesOtherDatabases(t *testing.T) {
	_, dsn := testdb.Schema(t, testDatabaseURL(t), "permiso_empty_")
	_, err := importer.Read(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "not the original service's") || !strings.Contains(err.Error(), "scopes") {
		t.Errorf("Read of an empty schema: %v", err)
	}
	for _, raw := range []string{"sqlite://permiso.db", "mysql://u@h/db"} {
		if _, err := importer.Read(t.Context(), raw, nil); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
			t.Errorf("Read(%q) = %v, want a PostgreSQL-only error", raw, err)
		}
	}
}

// TestPlanRefusesUnstorableText: PostgreSQL text cannot hold NUL, but an
// original database with SQL_ASCII encoding can hand over bytes that are
// not UTF-8; neither is stored the same way by both backends, so either
// is reported by table, id and column (no value is silently altered).
func TestPlanRefusesUnstorableText(t *testing.T) {
	hasher := testwire.Hasher()
	hash := testwire.Hash(t, hasher, "x")
	now := time.Now().UTC()
	u, sc, c := uuid.New(), uuid.New(), uuid.New()
	o := &importer.Original{
		Scopes: []importer.Scope{{ID: sc, Name: "read:things", Description: ptr("bad\x00"), CreatedAt: now, UpdatedAt: now}},
		Users: []importer.User{{ID: u, Username: "ann", Email: "ann@example.com", PasswordHash: hash,
			DisplayName: ptr("Ann\x00"), Bio: ptr("caf\xe9"), IsActive: true, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}},
		Clients: []importer.Client{{ID: c, ClientID: "svc", SecretHash: hash, Name: "S\xffvc", ClientType: "confidential",
			IsActive: true, AccessTokenLifetime: 3600, CreatedAt: now, UpdatedAt: now}},
	}
	_, err := importer.NewPlan(t.Context(), o, testdb.SQLite(t), options(hasher))
	var probs importer.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("NewPlan = %v, want Problems", err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Table+"/"+p.ID+"/"+p.Column+"/"+p.Reason)
	}
	want := []string{
		"scopes/" + sc.String() + "/description/contains a NUL byte",
		"users/" + u.String() + "/display_name/contains a NUL byte",
		"users/" + u.String() + "/bio/is not valid UTF-8",
		"service_clients/" + c.String() + "/name/is not valid UTF-8",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlanBatches: rows go in batches of BatchSize, each row with its own
// links, and Apply reports progress per batch.
func TestPlanBatches(t *testing.T) {
	hasher := testwire.Hasher()
	hash := testwire.Hash(t, hasher, "x")
	now := time.Now().UTC().Truncate(time.Microsecond)
	role := uuid.New()
	o := &importer.Original{Roles: []importer.Role{{ID: role, Name: "user", CreatedAt: now, UpdatedAt: now}}}
	for i := range 5 {
		id := uuid.New()
		name := "user" + string(rune('a'+i))
		o.Users = append(o.Users, importer.User{ID: id, Username: name, Email: name + "@example.com", PasswordHash: hash,
			IsActive: true, PasswordChangedAt: now, CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now})
		o.UserRoles = append(o.UserRoles, importer.Link{From: id, To: role})
	}
	store := testdb.SQLite(t)
	opts := options(hasher)
	plan, err := importer.NewPlan(t.Context(), o, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	n, err := plan.Apply(t.Context(), store, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if n.Users != 5 || n.UserRoles != 5 || n.Roles != 0 {
		t.Errorf("wrote %+v", n)
	}
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if !slices.Equal(lines, []string{"permiso import: users 2/5 written", "permiso import: users 4/5 written", "permiso import: users 5/5 written"}) {
		t.Errorf("progress:\n%s", progress.String())
	}
	for _, u := range o.Users {
		got, err := store.GetUser(t.Context(), u.ID)
		if err != nil || !got.HasRole(permiso.RoleUser) {
			t.Errorf("user %s: %v, roles %v", u.Username, err, got.RoleNames())
		}
	}
}

func ptr[T any](v T) *T { return &v }
