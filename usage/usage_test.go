package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testrace"
	"github.com/permiso/permiso/usage"
)

func newClient(t *testing.T) (permiso.Store, permiso.ServiceClient) {
	t.Helper()
	ctx := context.Background()
	db := testdb.SQLite(t)
	c, err := db.CreateServiceClient(ctx, permiso.ServiceClient{ClientID: "usage-test", SecretHash: permiso.HashToken("x"),
		Name: "usage", ClientType: "confidential", IsActive: true, RateLimitPerMinute: 60, RateLimitPerHour: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db, c
}

// TestBatchedAndFlushedOnClose: many concurrent uses become one write
// with the exact count and the latest time, and Close writes what is
// pending.
func TestBatchedAndFlushedOnClose(t *testing.T) {
	db, c := newClient(t)
	counter := usage.New(db, usage.Options{FlushInterval: time.Hour})
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testrace.All(8, func(g int) error {
		for i := range 50 {
			counter.ClientUsed(c.ID, base.Add(time.Duration(g*50+i)*time.Second))
		}
		return nil
	})
	got, err := db.GetServiceClient(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalRequests != 0 || got.LastUsed != nil {
		t.Fatalf("usage written before a flush: %d, %v", got.TotalRequests, got.LastUsed)
	}
	if p, ok := counter.Pending(c.ID); !ok || p.Requests != 400 {
		t.Fatalf("pending %+v, want 400 requests", p)
	}
	counter.Close()
	got, err = db.GetServiceClient(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalRequests != 400 || got.LastUsed == nil || !got.LastUsed.Equal(base.Add(399*time.Second)) {
		t.Fatalf("after Close: total %d, last_used %v; want 400, %v", got.TotalRequests, got.LastUsed, base.Add(399*time.Second))
	}
}

// TestPeriodicFlush: tallies reach the database on the interval, and add
// up across flushes; unknown client ids are skipped.
func TestPeriodicFlush(t *testing.T) {
	db, c := newClient(t)
	counter := usage.New(db, usage.Options{FlushInterval: 10 * time.Millisecond})
	defer counter.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	counter.ClientUsed(c.ID, now)
	counter.ClientUsed(uuid.New(), now)
	waitTotal(t, db, c.ID, 1)
	counter.ClientUsed(c.ID, now.Add(time.Second))
	counter.ClientUsed(c.ID, now.Add(time.Second))
	waitTotal(t, db, c.ID, 3)
}

func waitTotal(t *testing.T, db permiso.Store, id uuid.UUID, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := db.GetServiceClient(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.TotalRequests == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("total_requests %d, want %d", got.TotalRequests, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
