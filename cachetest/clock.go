package cachetest

import (
	"sync"
	"time"
)

// Clock is the time source a store under test runs on. A fake clock (from
// NewClock) moves only when Advance is called, so expiry is tested without
// sleeping; a real clock (from RealClock) follows the wall clock and its
// Advance sleeps, for backends such as Redis whose TTLs expire in real time.
// A Clock is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	fake bool
	now  time.Time
}

// NewClock returns a fake clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{fake: true, now: start}
}

// RealClock returns a clock that follows time.Now; Advance sleeps.
func RealClock() *Clock {
	return &Clock{}
}

// Now returns the clock's current time. Its signature matches the Now
// options of the stores, so c.Now can be passed to them directly.
func (c *Clock) Now() time.Time {
	if !c.fake {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves a fake clock forward by d, or sleeps for d on a real clock.
func (c *Clock) Advance(d time.Duration) {
	if !c.fake {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
