package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testhash"
)

// originalDatabase creates a schema holding the original service's tables
// (importer/testdata/original_schema.sql) in PERMISO_TEST_DATABASE_URL,
// dropped when the test ends, and returns a URL whose search_path is that
// schema, spelled as the original's DATABASE_URL was
// (postgresql+asyncpg://).
func originalDatabase(t *testing.T) (dsn string, exec func(sql string, args ...any)) {
	t.Helper()
	base := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("needs PERMISO_TEST_DATABASE_URL: the original service's database is PostgreSQL")
	}
	root := repoDir(t)
	ddl, err := os.ReadFile(filepath.Join(root, "importer", "testdata", "original_schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	_, pgURL := testdb.Schema(t, base, "permiso_e2e_original_")
	testdb.Exec(t, pgURL, string(ddl))
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "postgresql+asyncpg"
	return u.String(), func(sql string, args ...any) { t.Helper(); testdb.Exec(t, pgURL, sql, args...) }
}

// TestImportFromOriginalThenServe moves an installation of the original
// service into permiso with the real binary: `permiso import --dry-run`
// changes nothing, `permiso import` carries the users and clients over
// (saying that sessions are not), a second run changes nothing, and then
// `permiso serve` lets the imported user log in with the old password and
// the imported client get a token with its old secret. A row that breaks
// permiso's rules makes the import exit 1 naming it.
func TestImportFromOriginalThenServe(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			from, original := originalDatabase(t)
			const password, secret = "Legacy-Passw0rd!-e2e", "legacy-client-secret-0123456789"
			userID, roleID, scopeID, clientID := newUUID(t), newUUID(t), newUUID(t), newUUID(t)
			original(`INSERT INTO roles (id, name, description) VALUES ($1, 'trader', 'Trading user role')`, roleID)
			original(`INSERT INTO scopes (id, name, resource) VALUES ($1, 'read:trades', 'trades')`, scopeID)
			original(`INSERT INTO role_scopes (role_id, scope_id) VALUES ($1, $2)`, roleID, scopeID)
			original(`INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser)
				VALUES ($1, 'legacy', 'Legacy@Example.com', $2, true, true, false)`, userID, testhash.Original(t, password))
			original(`INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)`, userID, roleID)
			original(`INSERT INTO service_clients (id, client_id, client_secret_hash, name, client_type, is_active,
				is_trusted, access_token_lifetime, rate_limit_per_minute, rate_limit_per_hour)
				VALUES ($1, 'mt5-service', $2, 'MT5', 'confidential', true, true, 7200, 120, 5000)`, clientID, testhash.Original(t, secret))
			original(`INSERT INTO service_client_scopes (service_client_id, scope_id) VALUES ($1, $2)`, clientID, scopeID)
			original(`INSERT INTO user_sessions (id, session_id, expires_at, ip_address, is_active, user_id)
				VALUES ($1, 's1', now() + interval '1 hour', '192.0.2.1', true, $2)`, newUUID(t), userID)

			env := b.env(t, nil)
			// A dry run writes nothing, not even the migrations of a new
			// database: it says to apply them first.
			dry := runCLI(t, env, "", "import", "--from", from, "--dry-run")
			requireCommand(t, dry, "import")
			if dry.Code != 1 || !strings.Contains(dry.Stderr, "permiso migrate up") {
				t.Fatalf("import --dry-run before migrate up: exit %d\nstderr:\n%s", dry.Code, dry.Stderr)
			}
			if m := runCLI(t, env, "", "migrate", "up"); m.Code != 0 {
				t.Fatalf("migrate up: exit %d\n%s", m.Code, m.Stderr)
			}
			dry = runCLI(t, env, "", "import", "--from", from, "--dry-run")
			if dry.Code != 0 || !strings.Contains(dry.Stdout, "Dry run: nothing was written.") ||
				!strings.Contains(dry.Stdout, "would add") {
				t.Fatalf("import --dry-run: exit %d\nstdout:\n%s\nstderr:\n%s", dry.Code, dry.Stdout, dry.Stderr)
			}

			s := startServer(t, env)
			r := s.tryLogin(t, "legacy", password, "")
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
				t.Fatalf("after a dry run the user exists: %s", r)
			}

			imp := runCLI(t, env, "", "import", "--from", from)
			if imp.Code != 0 || !strings.Contains(imp.Stdout, "Imported") ||
				!strings.Contains(imp.Stdout, "Not carried over: 1 sessions") ||
				!strings.Contains(imp.Stderr, "permiso import: users 1/1 written") {
				t.Fatalf("import: exit %d\nstdout:\n%s\nstderr:\n%s", imp.Code, imp.Stdout, imp.Stderr)
			}
			again := runCLI(t, env, "", "import", "--from", from)
			if again.Code != 0 || !strings.Contains(again.Stdout, "Nothing to import") || strings.Contains(again.Stderr, "written") {
				t.Fatalf("second import: exit %d\nstdout:\n%s\nstderr:\n%s", again.Code, again.Stdout, again.Stderr)
			}

			// The server that was running sees the imported rows.
			tok := s.login(t, "legacy@example.com", password, "")
			if !strings.Contains(tok.Scope, "read:trades") {
				t.Errorf("imported user's scope %q, want the original role's read:trades", tok.Scope)
			}
			me := expect(t, s.get(t, apiPrefix+"/users/me", tok.AccessToken), http.StatusOK)
			if me["id"] != userID || me["username"] != "legacy" {
				t.Errorf("GET /users/me = %v", me)
			}
			for range 2 { // the second one on permiso's own hash
				cc := expect(t, s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}},
					&[2]string{"mt5-service", secret}), http.StatusOK)
				if cc["scope"] != "read:trades" {
					t.Errorf("client token scope %v", cc["scope"])
				}
			}
			r = s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}}, &[2]string{"mt5-service", "wrong"})
			assertOAuthError(t, r, http.StatusUnauthorized, "invalid_client")

			// A row permiso cannot carry: exit 1, the row named, nothing written.
			bad := newUUID(t)
			original(`INSERT INTO users (id, username, email, password_hash, is_active, is_verified, is_superuser)
				VALUES ($1, 'john doe', 'john@example.com', $2, true, false, false)`, bad, testhash.Original(t, password))
			refused := runCLI(t, env, "", "import", "--from", from)
			if refused.Code != 1 || !strings.Contains(refused.Stderr, "users id="+bad+" column username:") ||
				!strings.Contains(refused.Stderr, "nothing was written") {
				t.Fatalf("import of an unmappable row: exit %d\nstdout:\n%s\nstderr:\n%s", refused.Code, refused.Stdout, refused.Stderr)
			}
		})
	}
}

func newUUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
