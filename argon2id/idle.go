package argon2id

import (
	"sync"
	"time"
)

// idleReturn gives the memory of finished hashes back to the operating
// system once the hasher has been idle for a while (Options.
// ReturnMemoryAfter). Each Argon2id hash allocates its whole memory cost
// (64 MiB by default); after a burst of logins the Go runtime keeps those
// pages and returns them only slowly, so the resident size stays at the
// burst's peak. One timer at a time: hashes during the wait push the
// return back, so a steady stream of logins never pays for it.
type idleReturn struct {
	after time.Duration
	free  func()

	mu      sync.Mutex
	pending bool
	last    time.Time
}

// hashed records that a hash ended; idle reports whether none is running.
func (r *idleReturn) hashed(idle func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = time.Now()
	if r.pending {
		return
	}
	r.pending = true
	var check func()
	check = func() {
		r.mu.Lock()
		wait := r.after - time.Since(r.last)
		if wait > 0 || !idle() {
			time.AfterFunc(max(wait, r.after/4), check)
			r.mu.Unlock()
			return
		}
		r.pending = false
		r.mu.Unlock()
		r.free()
	}
	time.AfterFunc(r.after, check)
}
