package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testhash"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// TestConcurrentLoginsRightPassword: twelve concurrent logins with the
// right password for one account, MAX_LOGIN_ATTEMPTS 5, all five admitted
// password checks still in flight when the other seven arrive. Nothing is
// locked and nothing is a failure: no 423, no login.failure or
// login.locked event; the five get tokens and the seven get 429
// too_many_attempts with Retry-After in the RFC 6749 envelope (the
// in-flight bound of docs/abuse-resistance.md, "Lockout"), and nothing is
// left in the lockout afterwards. Real SQLite, a real argon2id hasher and
// the real audit writer; the lockout in process and, with
// PERMISO_TEST_REDIS_URL, in Redis.
func TestConcurrentLoginsRightPassword(t *testing.T) {
	const maxAttempts, n = 5, 12
	lockouts := map[string]func(t *testing.T) permiso.Lockout{
		"memory": func(*testing.T) permiso.Lockout { return inprocess.NewLockout(maxAttempts, 30*time.Minute) },
		"redis": func(t *testing.T) permiso.Lockout {
			rc, err := redis.Open(testdb.RedisURL(t), redis.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rc.Close() }) // after the keys are deleted
			prefix := redisTestPrefix(t, rc, "login")
			return redis.NewLockout(rc, prefix, maxAttempts, 30*time.Minute)
		},
	}
	for name, newLockout := range lockouts {
		t.Run(name, func(t *testing.T) {
			lockout := newLockout(t)
			ctx := t.Context()
			db := testdb.SQLite(t)
			signer := testwire.HS256(t, "0123456789abcdef0123456789abcdef-login", "permiso-test", nil)
			real := testwire.Hasher()
			gate := testhash.NewGated(real)
			const password = "Right-Passw0rd!x"
			activeUser(t, db, "grace", testwire.Hash(t, real, password), false)
			aw := audit.New(db, audit.Options{FlushInterval: 10 * time.Millisecond})
			svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test"}, oauth2.Deps{
				Users: db, Clients: db, Tokens: db, Sessions: db, Hasher: gate, Signer: signer,
				Revocations: inprocess.NewRevocations(), Lockout: lockout, Audit: aw,
			})
			h := NewServer(Deps{Options: testOptions(), Auth: svc, Keys: signer, Store: db, Audit: aw, Limiter: inprocess.NewLimiter()})

			results := make(chan *httptest.ResponseRecorder, n)
			for range n {
				go func() {
					results <- postForm(h, "/api/v1/auth/token", url.Values{"grant_type": {"password"},
						"username": {"grace"}, "password": {password}}, "")
				}()
			}
			// Hold the admitted checks until every request is either at
			// the gate or answered: then all twelve were concurrent.
			var got []*httptest.ResponseRecorder
			for entered := 0; entered+len(got) < n; {
				select {
				case <-gate.Entered:
					entered++
				case w := <-results:
					got = append(got, w)
				}
			}
			close(gate.Release)
			for len(got) < n {
				got = append(got, <-results)
			}

			codes := map[int]int{}
			for _, w := range got {
				codes[w.Code]++
				switch w.Code {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					m := decodeBody(t, w)
					if m["error"] != "too_many_attempts" || m["request_id"] != nil || m["locked_until"] != nil {
						t.Errorf("429 body %v, want too_many_attempts in the RFC 6749 envelope", m)
					}
					if ra := w.Header().Get("Retry-After"); ra != "2" {
						t.Errorf("429 Retry-After %q, want 2", ra)
					}
					if w.Header().Get("Cache-Control") != "no-store" {
						t.Errorf("429 Cache-Control %q", w.Header().Get("Cache-Control"))
					}
				default:
					t.Errorf("login answered %d %s; want 200 or 429 too_many_attempts", w.Code, w.Body)
				}
			}
			if codes[http.StatusOK] != maxAttempts || codes[http.StatusTooManyRequests] != n-maxAttempts {
				t.Errorf("answers %v, want %d × 200 and %d × 429", codes, maxAttempts, n-maxAttempts)
			}

			aw.Close()
			events, _, err := db.ListAuditEvents(ctx, permiso.AuditFilter{Action: "login.", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			actions := map[string]int{}
			for _, e := range events {
				actions[e.Action]++
			}
			if actions[oauth2.ActionLoginFailure] != 0 || actions[oauth2.ActionLoginLocked] != 0 {
				t.Errorf("audit %v: a login with the right password was recorded as a failure or a lock", actions)
			}
			if actions[oauth2.ActionLoginSuccess] != maxAttempts || actions[oauth2.ActionLoginTooManyAttempts] != n-maxAttempts {
				t.Errorf("audit %v, want %d login.success and %d login.too_many_attempts", actions, maxAttempts, n-maxAttempts)
			}
			if st, err := svc.LockoutStatus(ctx, "grace"); err != nil || st != (permiso.LockoutState{}) {
				t.Errorf("lockout after the logins: %+v, %v; want nothing left", st, err)
			}
		})
	}
}
