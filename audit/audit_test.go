package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/sqlite"
)

func newStore(t *testing.T) permiso.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestCloseFlushesEverything(t *testing.T) {
	db := newStore(t)
	w := audit.New(db, audit.Options{FlushInterval: time.Hour, BatchSize: 7})
	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				w.Record(context.Background(), permiso.AuditEvent{ActorType: "system", Action: fmt.Sprintf("test.%d", g), Result: "success"})
			}
		}()
	}
	wg.Wait()
	w.Close()
	_, total, err := db.ListAuditEvents(context.Background(), permiso.AuditFilter{Action: "test."})
	if err != nil {
		t.Fatal(err)
	}
	if total != 300 {
		t.Fatalf("after Close %d events are stored, want 300", total)
	}
}

func TestFlushesOnInterval(t *testing.T) {
	db := newStore(t)
	w := audit.New(db, audit.Options{FlushInterval: 20 * time.Millisecond})
	defer w.Close()
	w.Record(context.Background(), permiso.AuditEvent{ActorType: "system", Action: "test.tick", Result: "success"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		events, _, err := db.ListAuditEvents(context.Background(), permiso.AuditFilter{Action: "test.tick"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 1 {
			if events[0].OccurredAt.Location() != time.UTC || events[0].ID.String() == "" {
				t.Fatalf("event not completed: %+v", events[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("event not written by the periodic flush")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
