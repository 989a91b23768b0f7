package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/permiso/permiso"
)

// TestWarmVerifiedCacheStillRefuses checks that a bearer check and an
// introspection whose token is in the signer's cache of verified tokens
// (docs/security-model.md, "The cache of verified tokens") still make the
// checks of every request: a token revoked by a logout, and a token of a
// user disabled since, are refused by GET /users/me and introspected as
// inactive (RFC 7662 §2.2), on both backends.
func TestWarmVerifiedCacheStillRefuses(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			e := newServedEnv(t, nil)
			if backend == "redis" {
				e = newServedEnv(t, hotRedis(t))
			}
			warm := func(tok string) {
				t.Helper()
				for range 2 {
					if w := e.send(e.bearerMe(tok)); w.Code != http.StatusOK {
						t.Fatalf("GET /users/me: %d %s", w.Code, w.Body)
					}
					if !introspectActive(t, e.send(e.introspect(tok))) {
						t.Fatal("a valid token introspected as inactive")
					}
				}
			}
			refused := func(what, tok string) {
				t.Helper()
				if w := e.send(e.bearerMe(tok)); w.Code != http.StatusUnauthorized {
					t.Errorf("%s: GET /users/me answered %d, want 401", what, w.Code)
				}
				if introspectActive(t, e.send(e.introspect(tok))) {
					t.Errorf("%s: introspected as active", what)
				}
			}

			revoked := e.login(t).AccessToken
			warm(revoked)
			logout := httptest.NewRequest(http.MethodPost, "/api/v1/auth/logout", nil)
			logout.Header.Set("Authorization", "Bearer "+revoked)
			if w := e.send(logout); w.Code != http.StatusOK {
				t.Fatalf("logout: %d %s", w.Code, w.Body)
			}
			refused("revoked by a logout", revoked)

			disabled := e.login(t).AccessToken
			warm(disabled)
			ctx := context.Background()
			u, err := e.store.GetUserByLogin(ctx, hotUser)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.UpdateUser(ctx, u.ID, func(u *permiso.User) error {
				u.IsActive = false
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			refused("of a disabled user", disabled)
		})
	}
}

func introspectActive(t *testing.T, w *httptest.ResponseRecorder) bool {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("introspection: %d %s", w.Code, w.Body)
	}
	var m struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m.Active
}
