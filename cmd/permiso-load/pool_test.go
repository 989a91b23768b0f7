package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/oauth2"
)

// testPool returns a pool whose clients are numbered as they are created,
// n of them fresh to begin with.
func testPool(clock *testclock.Clock, n int) (*clientPool, *int) {
	created := 0
	var mu sync.Mutex
	mk := func() poolClient {
		mu.Lock()
		defer mu.Unlock()
		created++
		id := fmt.Sprintf("c%d", created)
		return poolClient{id: id, basic: "Basic " + id}
	}
	p := newClientPool(func(context.Context) (poolClient, error) { return mk(), nil }, clock.Now)
	for range n {
		p.add(mk())
	}
	return p, &created
}

func TestPoolSize(t *testing.T) {
	for _, c := range []struct {
		rate        float64
		d           time.Duration
		concurrency int
	}{
		{11307, 5 * time.Second, 16},
		{100, 10 * time.Second, 1},
		{150000, 5 * time.Second, 64},
		{5000, 5 * time.Minute, 16},
		{0, time.Second, 16},
	} {
		n := poolSize(c.rate, c.d, c.concurrency)
		// Enough tokens for poolMargin times the rate over the run, or over
		// reuseAfter when the run is longer, plus one request per worker.
		need := c.rate*poolMargin*min(c.d, reuseAfter).Seconds() + float64(c.concurrency)
		if float64(n-1)*clientBudget < need || n > maxPoolClients {
			t.Errorf("poolSize(%v, %v, %d) = %d: %d tokens for %.0f needed", c.rate, c.d, c.concurrency, n, (n-1)*clientBudget, need)
		}
		if n > 2 && float64(n-2)*clientBudget >= need {
			t.Errorf("poolSize(%v, %v, %d) = %d: more than needed for %.0f tokens", c.rate, c.d, c.concurrency, n, need)
		}
	}
	// Longer than reuseAfter: the clients come round again, no more needed.
	if a, b := poolSize(5000, 2*time.Minute, 16), poolSize(5000, reuseAfter, 16); a != b {
		t.Errorf("2m needs %d clients, %v %d", a, reuseAfter, b)
	}
	if n := poolSize(1e9, time.Minute, 16); n != maxPoolClients {
		t.Errorf("poolSize of an absurd rate = %d, want the cap %d", n, maxPoolClients)
	}
	// The reuse delay covers a whole window of the server's per-minute
	// limit and its extra slot (docs/abuse-resistance.md).
	if reuseAfter < clientPeriod+clientSlot || clientSlot != time.Second {
		t.Errorf("reuseAfter %v, slot %v", reuseAfter, clientSlot)
	}
}

// TestPoolStaysWithinClientLimits drives the pool against the server's own
// in-process limiter, with the keys and limits of a client-credentials
// grant (oauth2.ClientRateLimitKeys; 1000 a minute, 100,000 an hour), on a
// fake clock: sized from the rate it then runs at, and at three times
// that rate. No request is ever refused; the faster run grows the pool.
func TestPoolStaysWithinClientLimits(t *testing.T) {
	for _, c := range []struct {
		name      string
		calRate   float64 // the calibration's rate, which sizes the pool
		rate      float64 // the rate of the run
		d         time.Duration
		wantAdded bool
	}{
		{"as calibrated", 2000, 2000, 3 * time.Minute, false},
		{"three times faster", 1000, 3000, 100 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := testclock.New(time.Unix(1_800_000_000, 0))
			lim := inprocess.NewLimiter(inprocess.WithNow(clock.Now))
			p, created := testPool(clock, poolSize(c.calRate, c.d, 16))
			initial := *created
			limits := []permiso.Limit{{Count: clientBudget, Period: time.Minute}, {Count: clientPerHour, Period: time.Hour}}
			step := time.Duration(float64(time.Second) / c.rate)
			ctx := context.Background()
			requests := int(c.rate * c.d.Seconds())
			used := map[string]bool{}
			for i := range requests {
				cl, err := p.pick(ctx)
				if err != nil {
					t.Fatal(err)
				}
				used[cl.id] = true
				mk, hk := oauth2.ClientRateLimitKeys(cl.id)
				res, err := lim.AllowAll(ctx, []string{mk, hk}, limits)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res {
					if !r.Allowed {
						t.Fatalf("request %d (client %s) refused: %+v", i, cl.id, r)
					}
				}
				clock.Advance(step)
			}
			total, added := p.counts()
			if total != *created || added != *created-initial {
				t.Errorf("counts %d, %d; created %d, %d at first", total, added, *created, initial)
			}
			if (added > 0) != c.wantAdded {
				t.Errorf("%d clients added during the run (want some: %v)", added, c.wantAdded)
			}
			// Clients come round again once free: fewer than one per
			// clientBudget requests.
			if len(used) >= int(math.Ceil(float64(requests)/clientBudget)) && c.d > reuseAfter {
				t.Errorf("%d clients used for %d requests: none reused", len(used), requests)
			}
		})
	}
}

// TestPoolConcurrentPicks: workers picking at once (run with -race) get
// every client for at most clientBudget requests while the clock stands
// still, the pool growing as needed; pickWithin stops at its limit.
func TestPoolConcurrentPicks(t *testing.T) {
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	p, created := testPool(clock, 2)
	const workers, each = 8, 2000
	counts := make([]map[string]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		counts[w] = map[string]int{}
		wg.Go(func() {
			for range each {
				c, err := p.pick(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				counts[w][c.id]++
			}
		})
	}
	wg.Wait()
	perClient := map[string]int{}
	for _, m := range counts {
		for id, n := range m {
			perClient[id] += n
		}
	}
	for id, n := range perClient {
		if n > clientBudget {
			t.Errorf("client %s got %d requests within the window, more than %d", id, n, clientBudget)
		}
	}
	if want := workers * each / clientBudget; *created != want || len(perClient) != want {
		t.Errorf("%d clients created, %d used; want %d", *created, len(perClient), want)
	}
	if _, added := p.counts(); added != *created-2 {
		t.Errorf("added %d, want %d", added, *created-2)
	}

	// pickWithin: the first limit requests of the run only.
	q, _ := testPool(clock, 1)
	for i := range 10 {
		if _, err := q.pickWithin(context.Background(), 5); (err == nil) != (i < 5) {
			t.Errorf("pick %d within 5: err %v", i, err)
		}
	}
	if q.handedOut() != 10 {
		t.Errorf("handed out %d", q.handedOut())
	}
}

// TestPoolFreshBeforeReleased: fresh clients added later are used before
// a released one, which comes back only after reuseAfter.
func TestPoolFreshBeforeReleased(t *testing.T) {
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	p, _ := testPool(clock, 1)
	ctx := context.Background()
	pickN := func(n int) string {
		var c poolClient
		for range n {
			var err error
			if c, err = p.pick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return c.id
	}
	if id := pickN(clientBudget); id != "c1" {
		t.Fatalf("first position: %s", id)
	}
	p.add(poolClient{id: "fresh", basic: "x"})
	if id := pickN(clientBudget); id != "fresh" {
		t.Errorf("second position: %s, want the fresh client", id)
	}
	clock.Advance(reuseAfter - time.Second)
	if id := pickN(clientBudget); id != "c2" {
		t.Errorf("third position before c1 is free: %s, want a new client c2", id)
	}
	clock.Advance(time.Second)
	if id := pickN(clientBudget); id != "c1" {
		t.Errorf("fourth position, c1 free again: %s", id)
	}
}
