package permiso_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
)

// failingLimiter is a limiter that cannot be reached.
type failingLimiter struct{ permiso.RateLimiter }

var errUnreachable = errors.New("limiter unreachable")

func (failingLimiter) Allow(context.Context, string, permiso.Limit) (permiso.LimitResult, error) {
	return permiso.LimitResult{}, errUnreachable
}

// send sends what limits holds through a batch of c, as a service does.
func send(t *testing.T, limits *permiso.Limits, c permiso.Checker) {
	t.Helper()
	b := c.Batch()
	record := limits.Queue(b)
	b.Exec(t.Context())
	if record != nil {
		record()
	}
}

// TestLimitsBatch: a request's limit batch sends each check once, in the
// first batch that carries it; a check added later rides in the next one;
// the verdict is the refusal with the longest wait, or else the first
// fail-closed check that could not be made; a fail-open check never
// stops the request.
func TestLimitsBatch(t *testing.T) {
	lim := inprocess.NewLimiter()
	checker := permiso.SequentialChecker(lim, nil)
	var none *permiso.Limits
	if none.Pending() || none.Checks() != nil || none.Queue(checker.Batch()) != nil {
		t.Error("a nil Limits holds something")
	}
	if _, stops := none.Verdict(); stops {
		t.Error("a nil Limits stops the request")
	}

	limits := &permiso.Limits{}
	limits.Add(permiso.LimitCheck{Name: "api", Key: "ip:api:192.0.2.1", Limit: permiso.Limit{Count: 5, Period: time.Minute}, FailOpen: true})
	if !limits.Pending() {
		t.Fatal("an added check is not pending")
	}
	send(t, limits, checker)
	limits.Add(permiso.LimitCheck{Name: "login", Key: "ip:login:192.0.2.1", Limit: permiso.Limit{Count: 1, Period: time.Minute}})
	send(t, limits, checker)
	if limits.Pending() {
		t.Fatal("checks still pending after two batches")
	}
	got := limits.Checks()
	if len(got) != 2 || !got[0].Ran || got[0].Result.Remaining != 4 || !got[1].Ran || got[1].Result.Remaining != 0 {
		t.Fatalf("after two batches: %+v (each check counted once)", got)
	}
	if _, stops := limits.Verdict(); stops {
		t.Fatal("allowed checks stop the request")
	}

	// Over the login limit: the refusal decides.
	again := &permiso.Limits{}
	again.Add(permiso.LimitCheck{Name: "api", Key: "ip:api:192.0.2.1", Limit: permiso.Limit{Count: 5, Period: time.Minute}, FailOpen: true})
	again.Add(permiso.LimitCheck{Name: "login", Key: "ip:login:192.0.2.1", Limit: permiso.Limit{Count: 1, Period: time.Minute}})
	send(t, again, checker)
	if c, stops := again.Verdict(); !stops || c.Name != "login" || c.Result.Allowed || c.Result.RetryAfter <= 0 {
		t.Errorf("verdict over the login limit: %+v, %v", c, stops)
	}

	// An unreachable limiter: the fail-open check lets the request go on,
	// the fail-closed one stops it.
	down := permiso.SequentialChecker(failingLimiter{lim}, nil)
	open := &permiso.Limits{}
	open.Add(permiso.LimitCheck{Name: "api", Key: "k", Limit: permiso.Limit{Count: 5, Period: time.Minute}, FailOpen: true})
	send(t, open, down)
	if _, stops := open.Verdict(); stops || !errors.Is(open.Checks()[0].Err, errUnreachable) {
		t.Errorf("fail-open check of an unreachable limiter: %+v", open.Checks())
	}
	open.Add(permiso.LimitCheck{Name: "login", Key: "k2", Limit: permiso.Limit{Count: 5, Period: time.Minute}})
	send(t, open, down)
	if c, stops := open.Verdict(); !stops || c.Name != "login" || !errors.Is(c.Err, errUnreachable) {
		t.Errorf("fail-closed check of an unreachable limiter: %+v, %v", c, stops)
	}
}
