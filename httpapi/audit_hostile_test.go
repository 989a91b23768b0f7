package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/metrics"
	"github.com/permiso/permiso/oauth2"
)

// batchRecorder is a real store that remembers the size of every audit
// batch written to it.
type batchRecorder struct {
	permiso.Store
	mu      sync.Mutex
	batches []int
}

func (b *batchRecorder) AppendAuditEvents(ctx context.Context, events []permiso.AuditEvent) error {
	b.mu.Lock()
	b.batches = append(b.batches, len(events))
	b.mu.Unlock()
	return b.Store.AppendAuditEvents(ctx, events)
}

// countingAuditor counts the events recorded through it.
type countingAuditor struct {
	next permiso.Auditor
	n    atomic.Int64
}

func (c *countingAuditor) Record(ctx context.Context, e permiso.AuditEvent) {
	c.n.Add(1)
	c.next.Record(ctx, e)
}

// TestNonUTF8UserAgentLosesNoAuditEvents is the regression test of an
// attack on the audit log: an unauthenticated client_credentials request
// whose User-Agent is the single byte 0xff, and six wrong passwords with
// that header (which lock the account), used to make PostgreSQL refuse the
// whole batch they were written in, so every event of that flush, other
// users' logins included, was lost. Here all of them land in one batch, written as production
// wires the writer (metrics in front); every recorded event must be in
// audit_events, the hostile values cleaned, and nothing failed or dropped.
func TestNonUTF8UserAgentLosesNoAuditEvents(t *testing.T) {
	for _, b := range idBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			db := migrated(t, &batchRecorder{Store: b.open(t)})
			signer := testSigner(t)
			hasher := testwire.Hasher()
			m := metrics.New()
			// One flush for the whole test: Close writes it.
			aw := audit.New(db, audit.Options{FlushInterval: time.Hour, BatchSize: 10000, Observer: m.AuditWriter()})
			defer aw.Close()
			counted := &countingAuditor{next: m.Auditor(aw)}
			svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test"}, oauth2.Deps{
				Users: db, Clients: db, Tokens: db, Sessions: db, Hasher: hasher, Signer: signer,
				Revocations: inprocess.NewRevocations(), Lockout: inprocess.NewLockout(5, 30*time.Minute),
				Audit: counted, Limiter: inprocess.NewLimiter(),
			})
			h := NewServer(Deps{Options: testOptions(), Auth: svc, Keys: signer, Store: db, Audit: counted})

			hash := testwire.Hash(t, hasher, apiPassword)
			users := map[string]permiso.User{}
			for _, name := range []string{"alice", "bob", "carol", "victim"} {
				users[name] = activeUser(t, db, name, hash, false)
			}
			token := func(form url.Values, userAgent string) int {
				t.Helper()
				r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/token", strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("User-Agent", userAgent)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			login := func(username, password, userAgent string) int {
				return token(url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}, userAgent)
			}

			if code := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}}, "\xff"); code != http.StatusUnauthorized {
				t.Errorf("client_credentials for an unknown client: %d, want 401", code)
			}
			for _, name := range []string{"alice", "bob", "carol"} {
				if code := login(name, apiPassword, "Mozilla/5.0"); code != http.StatusOK {
					t.Fatalf("login %s: %d", name, code)
				}
			}
			if code := login("bob", "Wrong-Passw0rd!", "Mozilla/5.0"); code != http.StatusBadRequest {
				t.Errorf("wrong password of bob: %d, want 400", code)
			}
			codes := map[int]int{}
			for range 6 {
				codes[login("victim", "Wrong-Passw0rd!", "\xff")]++
			}
			if codes[http.StatusBadRequest] != 5 || codes[http.StatusLocked] != 1 {
				t.Errorf("six wrong passwords: %v, want five 400 and one 423", codes)
			}
			aw.Close()

			recorded := int(counted.n.Load())
			db.mu.Lock()
			batches := append([]int(nil), db.batches...)
			db.mu.Unlock()
			if len(batches) != 1 || batches[0] != recorded {
				t.Errorf("audit batches %v, want the %d recorded events in one", batches, recorded)
			}
			evs, total, err := db.ListAuditEvents(ctx, permiso.AuditFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			// 1 client failure, 3 logins, 1 failure of bob, 5 failures,
			// the lock and the refused sixth attempt of the victim.
			if total != recorded || recorded < 12 {
				t.Fatalf("%d audit events stored, %d recorded: every recorded event must be stored", total, recorded)
			}
			var clientFailure, locked bool
			successes := map[string]bool{}
			victimFailures := 0
			for _, e := range evs {
				ua := ""
				if e.UserAgent != nil {
					ua = *e.UserAgent
				}
				switch {
				case e.Action == oauth2.ActionClientAuthFailure && e.TargetID != nil && *e.TargetID == "x":
					clientFailure = ua == "\uFFFD"
				case e.Action == oauth2.ActionLoginSuccess && e.ActorID != nil:
					successes[*e.ActorID] = ua == "Mozilla/5.0"
				case e.Action == oauth2.ActionLoginLocked && e.TargetID != nil && *e.TargetID == users["victim"].ID.String():
					locked = ua == "\uFFFD"
				case e.Action == oauth2.ActionLoginFailure && e.TargetID != nil && *e.TargetID == users["victim"].ID.String():
					if ua == "\uFFFD" {
						victimFailures++
					}
				}
			}
			if !clientFailure {
				t.Error("no client_auth.failure event for client x with the cleaned user agent")
			}
			if !locked || victimFailures != 6 {
				t.Errorf("victim: login.locked %v, %d login.failure events with the cleaned user agent; want the lock and 6", locked, victimFailures)
			}
			for _, name := range []string{"alice", "bob", "carol"} {
				if !successes[users[name].ID.String()] {
					t.Errorf("login.success of %s missing", name)
				}
			}
			out := httptest.NewRecorder()
			m.Handler().ServeHTTP(out, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			for _, want := range []string{
				"permiso_audit_events_failed_total 0",
				"permiso_audit_events_dropped_total 0",
			} {
				if !strings.Contains(out.Body.String(), want+"\n") {
					t.Errorf("metrics lack %q", want)
				}
			}
		})
	}
}
