package audit_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/metrics"
)

// hostileEvent holds invalid UTF-8 and NUL in every string field and at
// every depth of its details, keys included, and values past their bounds.
func hostileEvent(at time.Time) permiso.AuditEvent {
	return permiso.AuditEvent{
		ID:         uuid.MustParse("01900000-0000-7000-8000-0000000000aa"),
		OccurredAt: at,
		ActorType:  "user\xff\x00",
		ActorID:    ptr("id\xff\x00list"),
		Action:     "login.failure\x00",
		TargetType: ptr("us\xc3er"),
		TargetID:   ptr("a\x00b,\xffc"),
		Result:     "fail\xffure",
		IPAddress:  ptr("192.0.2.1\x00"),
		UserAgent:  ptr("\xff" + strings.Repeat("é", 300)),
		RequestID:  ptr("req\x00\xff"),
		Details: map[string]any{
			"username": "ad\x00min\xff",
			"ids":      []string{"r1\x00", "\xff"},
			"k\xffey":  "v",
			"nested":   map[string]any{"deep\x00": []any{"x\xff", map[string]any{"y\x00": "z\xfe"}, 7, true, nil}},
			"long":     strings.Repeat("a", 2000),
		},
	}
}

// hostileCleaned is hostileEvent as it must be stored and read back:
// U+FFFD for each invalid sequence, no NUL, each value cut to its bound
// at a character boundary (the user agent to 512 bytes: U+FFFD is 3
// bytes, "é" 2, so 254 of them fit; a details string to 1024 bytes).
func hostileCleaned(at time.Time) permiso.AuditEvent {
	return permiso.AuditEvent{
		ID:         uuid.MustParse("01900000-0000-7000-8000-0000000000aa"),
		OccurredAt: at,
		ActorType:  "user\uFFFD",
		ActorID:    ptr("id\uFFFDlist"),
		Action:     "login.failure",
		TargetType: ptr("us\uFFFDer"),
		TargetID:   ptr("ab,\uFFFDc"),
		Result:     "fail\uFFFDure",
		IPAddress:  ptr("192.0.2.1"),
		UserAgent:  ptr("\uFFFD" + strings.Repeat("é", 254)),
		RequestID:  ptr("req\uFFFD"),
		Details: map[string]any{
			"username":  "admin\uFFFD",
			"ids":       []any{"r1", "\uFFFD"},
			"k\uFFFDey": "v",
			"nested":    map[string]any{"deep": []any{"x\uFFFD", map[string]any{"y": "z\uFFFD"}, float64(7), true, nil}},
			"long":      strings.Repeat("a", 1024),
		},
	}
}

// TestHostileBytesStoredAlikeOnBothBackends: one event with invalid UTF-8
// and NUL in every field and in nested details, queued with an ordinary
// event, is written in the same single batch on SQLite and PostgreSQL, and
// both backends read back the same cleaned event.
func TestHostileBytesStoredAlikeOnBothBackends(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	plain := permiso.AuditEvent{
		ID: uuid.MustParse("01900000-0000-7000-8000-0000000000bb"), OccurredAt: at.Add(-time.Second),
		ActorType: "user", ActorID: ptr("u-1"), Action: "login.success", Result: "success",
		IPAddress: ptr("192.0.2.2"), UserAgent: ptr("curl/8.5.0"), RequestID: ptr("req-2"),
		Details: map[string]any{"grant_type": "password"},
	}
	read := map[string][]permiso.AuditEvent{}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			fs := &faultStore{Store: b.open(t)}
			m := metrics.New()
			w := audit.New(fs, audit.Options{FlushInterval: time.Hour, Observer: m.AuditWriter()})
			w.Record(t.Context(), hostileEvent(at))
			w.Record(t.Context(), plain)
			w.Close()

			if got := fs.batchSizes(); !slices.Equal(got, []int{2}) {
				t.Errorf("store calls with batches of %v, want one batch of 2 (written whole)", got)
			}
			evs, total, err := fs.ListAuditEvents(t.Context(), permiso.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if total != 2 || len(evs) != 2 {
				t.Fatalf("%d events stored, want 2", total)
			}
			want := []permiso.AuditEvent{hostileCleaned(at), plain}
			for i := range want {
				if !reflect.DeepEqual(evs[i], want[i]) {
					t.Errorf("event %d read back as\n%s\nwant\n%s", i, show(evs[i]), show(want[i]))
				}
			}
			if v := metricValue(t, m, "permiso_audit_events_written_total"); v != 2 {
				t.Errorf("written_total %v, want 2", v)
			}
			for _, name := range []string{"permiso_audit_events_failed_total", "permiso_audit_events_dropped_total"} {
				if v := metricValue(t, m, name); v != 0 {
					t.Errorf("%s %v, want 0", name, v)
				}
			}
			read[b.name] = evs
		})
	}
	if s, p := read["sqlite"], read["postgres"]; s != nil && p != nil && !reflect.DeepEqual(s, p) {
		t.Errorf("SQLite and PostgreSQL read back different events:\n%s\n%s", show(s[0]), show(p[0]))
	}
}

func show(e permiso.AuditEvent) string {
	deref := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return strings.Join([]string{e.ID.String(), e.OccurredAt.Format(time.RFC3339Nano), e.ActorType, deref(e.ActorID),
		e.Action, deref(e.TargetType), deref(e.TargetID), e.Result, deref(e.IPAddress), deref(e.UserAgent),
		deref(e.RequestID)}, " | ") + " | " + jsonString(e.Details)
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestRefusedEventAloneIsLostAndLoggedWhole: a batch the store refuses
// because of one event is written again event by event; every other event
// of the batch is stored, and the refused one is logged whole at error
// level and counted as failed.
func TestRefusedEventAloneIsLostAndLoggedWhole(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			fs := &faultStore{Store: b.open(t), refuse: func(e permiso.AuditEvent) bool { return e.Action == "test.refused" }}
			m := metrics.New()
			logger, logs := testlog.NewLogger()
			w := audit.New(fs, audit.Options{FlushInterval: time.Hour, Observer: m.AuditWriter(), Logger: logger})
			at := time.Now().UTC().Truncate(time.Microsecond)
			var events []permiso.AuditEvent
			for i := range 5 {
				e := permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: at.Add(time.Duration(i) * time.Second),
					ActorType: "user", ActorID: ptr("u-" + string(rune('a'+i))), Action: "test.ok", Result: "success",
					Details: map[string]any{"n": i}}
				if i == 2 {
					e = permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: at.Add(2 * time.Second),
						ActorType: "client", ActorID: ptr("svc-1"), Action: "test.refused",
						TargetType: ptr("user"), TargetID: ptr("u-9"), Result: "failure",
						IPAddress: ptr("198.51.100.7"), UserAgent: ptr("agent\xff"), RequestID: ptr("req-9"),
						Details: map[string]any{"reason": "bad", "ids": []string{"x", "y"}, "nested": map[string]any{"k": "v"}}}
				}
				events = append(events, e)
				w.Record(t.Context(), e)
			}
			w.Close()

			if got := fs.batchSizes(); !slices.Equal(got, []int{5, 1, 1, 1, 1, 1}) {
				t.Errorf("store calls with batches of %v, want the batch of 5 and then each event alone", got)
			}
			evs, total, err := fs.ListAuditEvents(t.Context(), permiso.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var got []uuid.UUID
			for _, e := range evs {
				got = append(got, e.ID)
			}
			want := []uuid.UUID{events[4].ID, events[3].ID, events[1].ID, events[0].ID}
			if total != 4 || !slices.Equal(got, want) {
				t.Errorf("stored %v, want every event but the refused one: %v", got, want)
			}
			recs := logs.Records(t, "audit event refused by the store; event not written")
			if len(recs) != 1 {
				t.Fatalf("%d log records of a refused event, want 1", len(recs))
			}
			loggedEvent(t, recs[0], audit.Clean(events[2]))
			if ua := recs[0]["event"].(map[string]any)["user_agent"]; ua != "agent\uFFFD" {
				t.Errorf("logged user agent %q, want the cleaned value", ua)
			}
			for series, want := range map[string]float64{
				"permiso_audit_events_written_total": 4,
				"permiso_audit_events_failed_total":  1,
				"permiso_audit_events_dropped_total": 0,
			} {
				if v := metricValue(t, m, series); v != want {
					t.Errorf("%s = %v, want %v", series, v, want)
				}
			}
		})
	}
}

// gatedWriter returns a writer of one-event batches over a queue of one,
// whose store holds every write until the returned release is called.
// The first event recorded is taken by the writer (and held in the
// store), the second fills the queue.
func gatedWriter(t *testing.T, opts audit.Options) (w *audit.Writer, fs *faultStore, release func()) {
	t.Helper()
	fs = &faultStore{Store: testdb.SQLite(t), gate: make(chan struct{})}
	opts.QueueSize, opts.BatchSize, opts.FlushInterval = 1, 1, time.Hour
	w = audit.New(fs, opts)
	var once bool
	release = func() {
		if !once {
			once = true
			close(fs.gate)
		}
	}
	t.Cleanup(func() {
		release()
		w.Close()
	})
	w.Record(t.Context(), permiso.AuditEvent{ActorType: "system", Action: "test.first", Result: "success"})
	eventually(t, "the writer takes the first event", func() bool { q, _, _ := w.Queued(); return q == 0 })
	w.Record(t.Context(), permiso.AuditEvent{ActorType: "system", Action: "test.second", Result: "success"})
	if q, c, _ := w.Queued(); q != 1 || c != 1 {
		t.Fatalf("queue %d of %d, want full", q, c)
	}
	return w, fs, release
}

// TestFullQueueWaitsForRoom: when the queue is full, Record waits instead
// of dropping (even when the request's context is already cancelled), and
// the event is written once the writer makes room; the wait is observed.
func TestFullQueueWaitsForRoom(t *testing.T) {
	m := metrics.New()
	w, fs, release := gatedWriter(t, audit.Options{MaxWait: time.Hour, Observer: m.AuditWriter()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a client that hung up
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Record(ctx, permiso.AuditEvent{ActorType: "system", Action: "test.third", Result: "success"})
	}()
	eventually(t, "Record waits for room", func() bool { _, _, waiting := w.Queued(); return waiting == 1 })
	select {
	case <-done:
		t.Fatal("Record returned while the queue was still full")
	default:
	}
	release()
	<-done
	w.Close()

	if n := stored(t, fs, "test."); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
	for series, want := range map[string]float64{
		`permiso_audit_record_wait_seconds_count{outcome="queued"}`:  1,
		`permiso_audit_record_wait_seconds_count{outcome="dropped"}`: 0,
		"permiso_audit_events_dropped_total":                         0,
		"permiso_audit_events_written_total":                         3,
	} {
		if v := metricValue(t, m, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if v := metricValue(t, m, `permiso_audit_record_wait_seconds_sum{outcome="queued"}`); v <= 0 {
		t.Errorf("wait seconds sum %v, want the wait recorded", v)
	}
}

// TestWaitBoundDropsCountsAndLogs: when no room comes within MaxWait the
// event is dropped, counted in permiso_audit_events_dropped_total and
// logged whole; what was queued before is still written.
func TestWaitBoundDropsCountsAndLogs(t *testing.T) {
	m := metrics.New()
	logger, logs := testlog.NewLogger()
	w, fs, release := gatedWriter(t, audit.Options{MaxWait: 20 * time.Millisecond, Observer: m.AuditWriter(), Logger: logger})
	third := permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now(), ActorType: "user", ActorID: ptr("u-3"),
		Action: "test.third", TargetType: ptr("role"), TargetID: ptr("r\x00-1"), Result: "failure",
		IPAddress: ptr("203.0.113.9"), UserAgent: ptr("\xff"), RequestID: ptr("req-3"), Details: map[string]any{"ids": []string{"a", "b"}}}
	w.Record(t.Context(), third) // returns once the bounded wait is over
	if v := metricValue(t, m, "permiso_audit_events_dropped_total"); v != 1 {
		t.Errorf("dropped_total %v, want 1", v)
	}
	if v := metricValue(t, m, `permiso_audit_record_wait_seconds_count{outcome="dropped"}`); v != 1 {
		t.Errorf("drops after a wait %v, want 1", v)
	}
	recs := logs.Records(t, "audit queue full; event dropped")
	if len(recs) != 1 {
		t.Fatalf("%d log records of a dropped event, want 1", len(recs))
	}
	loggedEvent(t, recs[0], audit.Clean(third))
	release()
	w.Close()

	evs, _, err := fs.ListAuditEvents(t.Context(), permiso.AuditFilter{Action: "test."})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	slices.Sort(actions)
	if !slices.Equal(actions, []string{"test.first", "test.second"}) {
		t.Errorf("stored %v, want the two queued events", actions)
	}
	if v := metricValue(t, m, "permiso_audit_events_written_total"); v != 2 {
		t.Errorf("written_total %v, want 2", v)
	}
}

// TestUnreachableStoreKeepsTheBatch: while the store cannot be reached
// (writes and pings fail) the writer keeps its events and retries; nothing
// is written event by event, nothing is lost, and every event is stored
// once the store is back.
func TestUnreachableStoreKeepsTheBatch(t *testing.T) {
	// One batch of three, written when it is full.
	w, fs, m, logs := downWriter(t, audit.Options{FlushInterval: time.Hour, BatchSize: 3})
	defer w.Close()
	for i := range 3 {
		w.Record(t.Context(), permiso.AuditEvent{ActorType: "system", Action: "test.outage", Result: "success", Details: map[string]any{"i": i}})
	}
	eventually(t, "the writer retries", func() bool { return len(fs.batchSizes()) >= 3 })
	// During the outage every attempt was the whole batch. (Once the
	// store is back, a failure just before may be taken for a refusal and
	// the events written one by one: that loses nothing either.)
	for _, size := range fs.batchSizes() {
		if size != 3 {
			t.Errorf("batches %v during the outage: the outage was taken for a refusal (events written one by one)", fs.batchSizes())
			break
		}
	}
	fs.down.Store(false)
	eventually(t, "the events are written after the outage", func() bool { return stored(t, fs, "test.outage") == 3 })
	if v := metricValue(t, m, "permiso_audit_events_failed_total"); v != 0 {
		t.Errorf("failed_total %v, want 0", v)
	}
	if n := len(logs.Records(t, "audit store unreachable; keeping the events and retrying")); n != 1 {
		t.Errorf("%d outage log records, want 1", n)
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error records, want only the outage's", n)
	}
}

// TestCloseWhileStoreUnreachable: Close keeps retrying for CloseTimeout,
// then logs whole every event still unwritten and counts it as failed;
// a Record after Close is logged whole and counted as dropped.
func TestCloseWhileStoreUnreachable(t *testing.T) {
	w, fs, m, logs := downWriter(t, audit.Options{FlushInterval: time.Hour, BatchSize: 2, CloseTimeout: 50 * time.Millisecond})
	var events []permiso.AuditEvent
	for i := range 3 {
		e := permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now(), ActorType: "user", ActorID: ptr("u"),
			Action: "test.close", Result: "success", Details: map[string]any{"i": i}}
		events = append(events, e)
		w.Record(t.Context(), e)
	}
	w.Close() // returns: the wait is bounded
	after := permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now(), ActorType: "system", Action: "test.after", Result: "success"}
	w.Record(t.Context(), after)

	recs := logs.Records(t, "audit store unreachable at close; event not written")
	if len(recs) != 3 {
		t.Fatalf("%d events logged at close, want 3", len(recs))
	}
	byID := map[string]map[string]any{}
	for _, r := range recs {
		byID[r["event"].(map[string]any)["id"].(string)] = r
	}
	for _, e := range events {
		r, ok := byID[e.ID.String()]
		if !ok {
			t.Errorf("event %s not logged", e.ID)
			continue
		}
		loggedEvent(t, r, audit.Clean(e))
	}
	dropped := logs.Records(t, "audit writer closed; event dropped")
	if len(dropped) != 1 {
		t.Fatalf("%d records of an event after Close, want 1", len(dropped))
	}
	loggedEvent(t, dropped[0], audit.Clean(after))
	for series, want := range map[string]float64{
		"permiso_audit_events_failed_total":  3,
		"permiso_audit_events_dropped_total": 1,
		"permiso_audit_events_written_total": 0,
	} {
		if v := metricValue(t, m, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	fs.down.Store(false)
	if n := stored(t, fs, ""); n != 0 {
		t.Errorf("%d events stored after a close while unreachable, want 0", n)
	}
}

// downWriter starts a writer over a store that is down until fs.down is
// cleared, retrying every millisecond, observed by m and logging to logs;
// opts gives the rest.
func downWriter(t *testing.T, opts audit.Options) (w *audit.Writer, fs *faultStore, m *metrics.Metrics, logs *testlog.Buffer) {
	t.Helper()
	fs = &faultStore{Store: testdb.SQLite(t)}
	fs.down.Store(true)
	m = metrics.New()
	logger, logs := testlog.NewLogger()
	opts.RetryBackoff, opts.Observer, opts.Logger = time.Millisecond, m.AuditWriter(), logger
	return audit.New(fs, opts), fs, m, logs
}
