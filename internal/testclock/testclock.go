// Package testclock is the clock the tests run on: a fake one that moves
// only when told, so expiry is tested without sleeping, or a real one whose
// Advance sleeps, for backends such as Redis whose TTLs expire in real time.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time source for code under test; its Now has the signature of
// the Now options of the services, stores and signers, so c.Now can be
// passed to them directly. A Clock is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	fake bool
	now  time.Time
}

// New returns a fake clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	return &Clock{fake: true, now: start}
}

// Real returns a clock that follows time.Now; its Advance sleeps.
func Real() *Clock {
	return &Clock{}
}

// Now returns the clock's current time.
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
