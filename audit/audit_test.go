package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testrace"
)

func TestCloseFlushesEverything(t *testing.T) {
	db := testdb.SQLite(t)
	w := audit.New(db, audit.Options{FlushInterval: time.Hour, BatchSize: 7})
	testrace.All(10, func(g int) error {
		for range 30 {
			w.Record(context.Background(), permiso.AuditEvent{ActorType: "system", Action: fmt.Sprintf("test.%d", g), Result: "success"})
		}
		return nil
	})
	w.Close()
	if n := stored(t, db, "test."); n != 300 {
		t.Fatalf("after Close %d events are stored, want 300", n)
	}
}

func TestFlushesOnInterval(t *testing.T) {
	db := testdb.SQLite(t)
	w := audit.New(db, audit.Options{FlushInterval: 20 * time.Millisecond})
	defer w.Close()
	w.Record(context.Background(), permiso.AuditEvent{ActorType: "system", Action: "test.tick", Result: "success"})
	var events []permiso.AuditEvent
	eventually(t, "the event written by the periodic flush", func() bool {
		var err error
		events, _, err = db.ListAuditEvents(t.Context(), permiso.AuditFilter{Action: "test.tick"})
		if err != nil {
			t.Fatal(err)
		}
		return len(events) == 1
	})
	if events[0].OccurredAt.Location() != time.UTC || events[0].ID.String() == "" {
		t.Fatalf("event not completed: %+v", events[0])
	}
}

// TestRunPrunerDeletesOldEvents: the periodic job of serve deletes what is
// older than the retention, keeps the rest, and keeps running.
func TestRunPrunerDeletesOldEvents(t *testing.T) {
	db := testdb.SQLite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	retention := 90 * 24 * time.Hour
	mk := func(age time.Duration, action string) permiso.AuditEvent {
		return permiso.AuditEvent{OccurredAt: now.Add(-age), ActorType: "system", Action: action, Result: "success"}
	}
	if err := db.AppendAuditEvents(ctx, []permiso.AuditEvent{
		mk(100*24*time.Hour, "test.old"), mk(91*24*time.Hour, "test.old"),
		mk(89*24*time.Hour, "test.recent"), mk(time.Minute, "test.recent"),
	}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunPrunerForTest(runCtx, db, retention)
	}()
	waitCount := func(action string, want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d %s events", want, action), func() bool { return stored(t, db, action) == want })
	}
	waitCount("test.old", 0)
	waitCount("test.recent", 2)
	// A later old event is pruned by a later tick.
	if err := db.AppendAuditEvents(ctx, []permiso.AuditEvent{mk(200*24*time.Hour, "test.later")}); err != nil {
		t.Fatal(err)
	}
	waitCount("test.later", 0)
	cancel()
	<-done

	// Retention 0 keeps everything.
	if n, err := audit.Prune(ctx, db, 0, now.Add(1000*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune with retention 0: %d, %v", n, err)
	}
}

func RunPrunerForTest(ctx context.Context, db permiso.AuditStore, retention time.Duration) {
	audit.RunPruner(ctx, db, retention, 10*time.Millisecond, nil, nil)
}
