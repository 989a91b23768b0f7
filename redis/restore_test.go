package redis

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testredis"
)

// TestRevocationStateRestoredAfterDataLoss restarts a private redis-server
// without persistence under a revocation store with a restorer (the
// database's ended sessions): once Redis answers again, lookups fail
// closed (EUNAVAILABLE) until the restorer's sessions are back, and a
// session ended before the restart is never reported as not revoked.
func TestRevocationStateRestoredAfterDataLoss(t *testing.T) {
	srv := testredis.Start(t, 0)
	c := openClient(t, "redis://"+srv.Addr+"/0", Options{})
	ctx := t.Context()
	ended := uuid.NewString() // a session the database knows as ended
	var mu sync.Mutex
	restores := 0
	r := NewRevocations(c, "p:token:").WithSessionPrefix("p:session:").
		WithRestore(func(context.Context) (map[string]time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			restores++
			return map[string]time.Time{ended: time.Now().Add(time.Hour)}, nil
		}, nil)

	// At start the marker is missing: EnsureState restores at once.
	if err := r.EnsureState(ctx); err != nil {
		t.Fatal(err)
	}
	live := uuid.NewString()
	now := time.Now()
	check := func(sid string) (bool, error) {
		return r.IsRevoked(ctx, uuid.NewString(), sid, uuid.NewString(), now)
	}
	if revoked, err := check(ended); err != nil || !revoked {
		t.Fatalf("ended session after EnsureState: revoked %v, %v; want true", revoked, err)
	}
	if revoked, err := check(live); err != nil || revoked {
		t.Fatalf("live session: revoked %v, %v; want false", revoked, err)
	}
	// With the marker present, EnsureState does nothing.
	if err := r.EnsureState(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if restores != 1 {
		t.Fatalf("%d restores before the restart, want 1", restores)
	}
	mu.Unlock()

	srv.Restart(t) // empty: no persistence
	sawRestoring := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		revoked, err := check(ended)
		if err == nil && !revoked {
			t.Fatal("a session ended before Redis lost its data was reported not revoked")
		}
		if err != nil && permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
			t.Fatalf("lookup after the restart: %v, want EUNAVAILABLE or an answer", err)
		}
		if err != nil && permiso.ErrorMessage(err) == errStateLost.Message {
			sawRestoring = true
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation state not restored within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawRestoring {
		t.Error("no lookup answered that the revocation state was being restored")
	}
	if revoked, err := check(live); err != nil || revoked {
		t.Fatalf("live session after the restore: revoked %v, %v; want false", revoked, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if restores != 2 {
		t.Errorf("%d restores, want 2 (one at start, one after the restart)", restores)
	}
}

// TestFeedRestoresLostState: a feed whose Redis loses its data (here: the
// marker and the entries deleted while the connection stays up) notices
// the missing marker on its next read, restores the database's ended
// sessions into Redis and resyncs (docs/architecture.md, "Revocation
// feed").
func TestFeedRestoresLostState(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	ended := uuid.NewString()
	r := NewRevocations(c, prefix).WithRestore(func(context.Context) (map[string]time.Time, error) {
		return map[string]time.Time{ended: time.Now().Add(time.Hour)}, nil
	}, nil)
	startFeed(t, r, FeedOptions{})
	ctx := t.Context()
	resyncs := r.FeedStats().Resyncs
	if _, err := deletePrefix(ctx, c.rdb, prefix); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.FeedStats().Resyncs == resyncs || !r.FeedStats().Live {
		if time.Now().After(deadline) {
			t.Fatalf("no resync after the state was lost: %+v", r.FeedStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := c.rdb.Exists(ctx, r.stateKey(), r.sidKey(ended)).Result(); err != nil || n != 2 {
		t.Errorf("marker and ended session in Redis after the resync: %d, %v; want both", n, err)
	}
	if v, err := r.IsRevoked(ctx, uuid.NewString(), ended, "", time.Now()); err != nil || !v {
		t.Errorf("ended session: %v, %v", v, err)
	}
}
