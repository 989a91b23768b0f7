package redis

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testchange"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/internal/testwait"
)

func TestChangeWireFormat(t *testing.T) {
	id := uuid.New()
	for _, c := range []permiso.Change{
		{Kind: permiso.ChangeUser, UserID: id},
		{Kind: permiso.ChangeAllUsers},
		{Kind: permiso.ChangeAllClients},
		{Kind: permiso.ChangeAll},
	} {
		b, err := encodeChange(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeChange(string(b)); got != c {
			t.Errorf("round trip of %+v = %+v (wire %s)", c, got, b)
		}
	}
	// Anything unreadable drops everything rather than nothing.
	all := permiso.Change{Kind: permiso.ChangeAll}
	for _, payload := range []string{"", "garbage", `{"kind":"user"}`, `{"kind":"user","user_id":"nope"}`,
		`{"kind":"roles-v2"}`, `{"kind":"resync"}`} {
		if got := decodeChange(payload); got != all {
			t.Errorf("decodeChange(%q) = %+v, want ChangeAll", payload, got)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 30*time.Second, what, cond)
}

// subscribe subscribes a testchange.Log to b, stopped when t ends, and waits for
// the first resync.
func subscribe(t *testing.T, b *ChangeBus) *testchange.Log {
	t.Helper()
	var l testchange.Log
	stop, err := b.Subscribe(t.Context(), l.Add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	waitFor(t, "the subscription", func() bool { return l.Count(permiso.ChangeResync) >= 1 })
	return &l
}

func TestChangeBus(t *testing.T) {
	c1, c2 := openTestClient(t), openTestClient(t)
	prefix := "permiso-test:" + rand.Text()[:16] + ":user:"
	b1, b2 := NewChangeBus(c1, prefix), NewChangeBus(c2, prefix)
	if b1.Channel() != prefix+"changes" {
		t.Fatalf("Channel = %q", b1.Channel())
	}
	l1, l2 := subscribe(t, b1), subscribe(t, b2)
	// Another prefix is another channel.
	lOther := subscribe(t, NewChangeBus(c2, prefix+"other:"))

	c := permiso.Change{Kind: permiso.ChangeUser, UserID: uuid.New()}
	if err := b1.Publish(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both subscribers, the publisher's included", func() bool { return l1.Has(c) && l2.Has(c) })
	if lOther.Has(c) {
		t.Error("a subscriber of another prefix received the change")
	}

	// stop is idempotent and ends delivery.
	var l3 testchange.Log
	stop, err := b2.Subscribe(t.Context(), l3.Add)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third subscription", func() bool { return l3.Count(permiso.ChangeResync) == 1 })
	stop()
	stop()
	all := permiso.Change{Kind: permiso.ChangeAll}
	if err := b1.Publish(t.Context(), all); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { return l1.Has(all) })
	if l3.Has(all) {
		t.Error("a stopped subscription still delivered")
	}
}

// TestChangeBusServerRestart: when Redis goes away, Publish fails with
// EUNAVAILABLE; when it comes back, go-redis resubscribes and the
// subscriber gets ChangeResync (it may have missed messages), then changes
// again.
func TestChangeBusServerRestart(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, 0)
	c := openClient(t, "redis://"+srv.Addr, Options{DialTimeout: 200 * time.Millisecond, Timeout: 200 * time.Millisecond,
		MaxRetries: -1, DialAttempts: 1})
	b := NewChangeBus(c, "permiso-test:restart:")
	l := subscribe(t, b)

	srv.Kill()
	if err := b.Publish(t.Context(), permiso.Change{Kind: permiso.ChangeAll}); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Publish with Redis down = %v, want EUNAVAILABLE", err)
	}
	srv.Restart(t)
	waitFor(t, "the resync after the restart", func() bool { return l.Count(permiso.ChangeResync) >= 2 })
	ch := permiso.Change{Kind: permiso.ChangeAllClients}
	if err := b.Publish(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a change after the restart", func() bool { return l.Has(ch) })
}

// TestChangeBusUnreachable: subscribing to a Redis that does not answer is
// not an error (the subscription retries), and stop still returns.
func TestChangeBusUnreachable(t *testing.T) {
	c := openClient(t, "redis://127.0.0.1:1/0", Options{DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialAttempts: 1})
	b := NewChangeBus(c, "permiso-test:down:")
	var l testchange.Log
	stop, err := b.Subscribe(t.Context(), l.Add)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return")
	}
	if n := l.Count(permiso.ChangeResync); n != 0 {
		t.Errorf("got %d resyncs without a server", n)
	}
}

// TestChangeBusCluster: on Redis Cluster, PUBLISH on any node reaches a
// subscriber wherever its connection lives.
func TestChangeBusCluster(t *testing.T) {
	t.Parallel()
	addrs := startCluster(t)
	c := openClient(t, clusterURL(addrs), Options{})
	b := NewChangeBus(c, "permiso-test:cluster:")
	l := subscribe(t, b)
	// Publish on each node directly, whatever node holds the
	// subscription.
	for i, addr := range addrs {
		node := goredis.NewClient(&goredis.Options{Addr: addr})
		msg, err := encodeChange(permiso.Change{Kind: permiso.ChangeUser, UserID: uuid.UUID{byte(i + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Publish(t.Context(), b.Channel(), msg).Err(); err != nil {
			t.Fatal(err)
		}
		node.Close()
	}
	waitFor(t, "the changes published on every node", func() bool { return l.Count(permiso.ChangeUser) == len(addrs) })
	// And through the cluster client.
	if err := b.Publish(t.Context(), permiso.Change{Kind: permiso.ChangeAll}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change published through the cluster client", func() bool { return l.Has(permiso.Change{Kind: permiso.ChangeAll}) })
}
