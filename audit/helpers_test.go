package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwait"
	"github.com/permiso/permiso/metrics"
)

// backend opens a fresh, migrated store of one kind.
type backend struct {
	name string
	open func(t *testing.T) permiso.Store
}

// backends is SQLite always and PostgreSQL when PERMISO_TEST_DATABASE_URL
// is set.
func backends(t *testing.T) []backend {
	t.Helper()
	bs := []backend{{"sqlite", sqliteStore}}
	if os.Getenv("PERMISO_TEST_DATABASE_URL") != "" {
		bs = append(bs, backend{"postgres", postgresStore})
	} else {
		t.Log("PERMISO_TEST_DATABASE_URL is not set; PostgreSQL not tested")
	}
	return bs
}

// postgresStore returns a migrated PostgreSQL store in a schema of its own,
// or skips without PERMISO_TEST_DATABASE_URL.
func sqliteStore(t *testing.T) permiso.Store { return testdb.SQLite(t) }

func postgresStore(t *testing.T) permiso.Store { return testdb.Postgres(t, "audit") }

// faultStore is a real store with faults injected in front of its audit
// writes: it refuses every batch that holds an event refuse picks (as a
// store refuses a value it cannot hold), it is unreachable (writes and
// pings fail with a connection error) while down is set, and it holds
// every write until gate is closed when gate is not nil.
type faultStore struct {
	permiso.Store
	refuse func(permiso.AuditEvent) bool
	down   atomic.Bool
	gate   chan struct{}

	mu       sync.Mutex
	attempts []int // the size of every batch the writer tried to write
}

var errConnRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (f *faultStore) AppendAuditEvents(ctx context.Context, events []permiso.AuditEvent) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.attempts = append(f.attempts, len(events))
	f.mu.Unlock()
	if f.down.Load() {
		return errConnRefused
	}
	for _, e := range events {
		if f.refuse != nil && f.refuse(e) {
			return permiso.Errorf(permiso.EINVALID, "invalid audit event")
		}
	}
	return f.Store.AppendAuditEvents(ctx, events)
}

func (f *faultStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errConnRefused
	}
	return f.Store.Ping(ctx)
}

func (f *faultStore) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.attempts...)
}

// loggedEvent checks that a log record carries every field of e as the
// attributes of group "event".
func loggedEvent(t *testing.T, r map[string]any, e permiso.AuditEvent) {
	t.Helper()
	if r["level"] != "ERROR" {
		t.Errorf("level %v, want ERROR", r["level"])
	}
	got, ok := r["event"].(map[string]any)
	if !ok {
		t.Fatalf("log record has no event group: %v", r)
	}
	opt := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	want := map[string]any{
		"id": e.ID.String(), "occurred_at": e.OccurredAt.UTC().Format(time.RFC3339Nano),
		"actor_type": e.ActorType, "actor_id": opt(e.ActorID), "action": e.Action,
		"target_type": opt(e.TargetType), "target_id": opt(e.TargetID), "result": e.Result,
		"ip_address": opt(e.IPAddress), "user_agent": opt(e.UserAgent), "request_id": opt(e.RequestID),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("logged event %s = %#v, want %#v", k, got[k], v)
		}
	}
	wantDetails, _ := json.Marshal(e.Details)
	gotDetails, _ := json.Marshal(got["details"])
	if string(gotDetails) != string(wantDetails) {
		t.Errorf("logged event details = %s, want %s", gotDetails, wantDetails)
	}
	if len(got) != len(want)+1 {
		t.Errorf("logged event has %d attributes, want %d: %v", len(got), len(want)+1, got)
	}
}

// metricValue returns the value of the sample named series (a metric
// name with its labels as the text format writes them, e.g.
// `permiso_audit_record_wait_seconds_count{outcome="queued"}`) from a
// scrape of m.
func metricValue(t *testing.T, m *metrics.Metrics, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", series, rec.Body.String())
	return 0
}

// eventually polls cond until it holds, failing after a generous bound
// (progress of a background goroutine, not a speed requirement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 20*time.Second, what, cond)
}

// stored returns how many events s holds whose action starts with action
// (all of them for "").
func stored(t *testing.T, s permiso.AuditStore, action string) int {
	t.Helper()
	_, n, err := s.ListAuditEvents(t.Context(), permiso.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }
