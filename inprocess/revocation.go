package inprocess

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// minTTL is the shortest time an entry is kept, even when the token it
// revokes has already expired (the interface contract: at least one second).
const minTTL = time.Second

// minSweep is the smallest number of writes between two sweeps of expired
// entries.
const minSweep = 1024

// sweeps paces the sweeps of a map of expiring keys: one is due after as
// many writes as keys were left by the last one (at least minSweep), so
// that a write costs amortized O(1). Its zero value is due at once.
type sweeps struct {
	writes int // writes since the last sweep
	at     int // writes that make the next sweep due
}

// due counts a write and reports whether a sweep is due.
func (p *sweeps) due() bool {
	p.writes++
	return p.writes >= p.at
}

// done starts counting again after a sweep that left left keys.
func (p *sweeps) done(left int) {
	p.writes = 0
	p.at = max(minSweep, left)
}

// sweep counts a write to m and, when a sweep is due, deletes every key of
// m that dead reports as holding nothing any more.
func sweep[V any](p *sweeps, m map[string]V, dead func(key string, v V) bool) {
	if !p.due() {
		return
	}
	for k, v := range m {
		if dead(k, v) {
			delete(m, k)
		}
	}
	p.done(len(m))
}

// Option configures NewRevocations, NewLimiter and NewLockout.
type Option func(*settings)

// settings are what the options set.
type settings struct {
	now func() time.Time
}

func applyOptions(opts []Option) settings {
	s := settings{now: time.Now}
	for _, o := range opts {
		o(&s)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// WithNow sets the time source (default time.Now). Tests pass a fake clock
// to check expiry without sleeping.
func WithNow(now func() time.Time) Option {
	return func(s *settings) { s.now = now }
}

// Revocations is an in-process permiso.RevocationStore. It is safe for
// concurrent use and needs no Close: expired entries are ignored on read
// (lazily) and removed by a sweep that runs on writes, once every max(1024,
// live entries) writes, so each write costs amortized O(1) and the map never
// holds more than about twice the live entries plus 1024, with no background
// goroutine.
type Revocations struct {
	now func() time.Time

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti -> entry deadline
	sids     map[string]time.Time // sid -> entry deadline
	subjects map[string]cutoffEntry
	all      cutoffEntry // RevokeAllBefore; zero when never set
	sweeps   sweeps
}

// cutoffEntry is a cut-off kept at full precision: tokens whose issue time
// (permiso.TokenIssuedAt) is before cutoff are revoked.
type cutoffEntry struct {
	cutoff   time.Time
	deadline time.Time
}

// merge returns the entry that keeps the later cutoff and the later
// deadline of e and a live old entry (at now).
func (e cutoffEntry) merge(old cutoffEntry, now time.Time) cutoffEntry {
	if !live(old.deadline, now) {
		return e
	}
	if old.cutoff.After(e.cutoff) {
		e.cutoff = old.cutoff
	}
	if old.deadline.After(e.deadline) {
		e.deadline = old.deadline
	}
	return e
}

// revokes reports whether the entry, live at now, revokes a token issued
// at issuedAt.
func (e cutoffEntry) revokes(issuedAt, now time.Time) bool {
	return live(e.deadline, now) && issuedAt.Before(e.cutoff)
}

var _ permiso.RevocationStore = (*Revocations)(nil)

// NewRevocations returns an empty in-process revocation store.
func NewRevocations(opts ...Option) *Revocations {
	return &Revocations{
		now:      applyOptions(opts).now,
		jtis:     make(map[string]time.Time),
		sids:     make(map[string]time.Time),
		subjects: make(map[string]cutoffEntry),
		sweeps:   sweeps{at: minSweep},
	}
}

// deadline returns when an entry written now for a token expiring at
// expiresAt may be forgotten: expiresAt, but at least minTTL from now.
func deadline(now, expiresAt time.Time) time.Time {
	if d := now.Add(minTTL); expiresAt.Before(d) {
		return d
	}
	return expiresAt
}

// live reports whether an entry with this deadline still counts at now.
func live(deadline, now time.Time) bool { return now.Before(deadline) }

func invalid(what string) error {
	return permiso.Invalid("revocation needs a " + what)
}

// RevokeToken revokes one access token by jti until expiresAt (at least one
// second from now). Revoking it again never shortens the revocation.
func (r *Revocations) RevokeToken(_ context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return invalid("jti")
	}
	r.revokeID(r.jtis, jti, expiresAt)
	return nil
}

// RevokeSession revokes every access token carrying sid until expiresAt (at
// least one second from now). Revoking it again never shortens the
// revocation.
func (r *Revocations) RevokeSession(_ context.Context, sid string, expiresAt time.Time) error {
	if sid == "" {
		return invalid("session id")
	}
	r.revokeID(r.sids, sid, expiresAt)
	return nil
}

func (r *Revocations) revokeID(m map[string]time.Time, key string, expiresAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	d := deadline(now, expiresAt)
	if old, ok := m[key]; !ok || old.Before(d) {
		m[key] = d
	}
	r.wroteLocked(now)
}

// RevokeSubjectBefore revokes every token of subject issued before cutoff
// (compared at full precision with the token's issue time), remembered
// until expiresAt (at least one second from now). The stored cutoff and
// deadline only ever move forward.
func (r *Revocations) RevokeSubjectBefore(_ context.Context, subject string, cutoff, expiresAt time.Time) error {
	if subject == "" {
		return invalid("subject")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := cutoffEntry{cutoff: cutoff, deadline: deadline(now, expiresAt)}
	if old, ok := r.subjects[subject]; ok {
		e = e.merge(old, now)
	}
	r.subjects[subject] = e
	r.wroteLocked(now)
	return nil
}

// RevokeAllBefore revokes every token issued before cutoff, whatever its
// subject, remembered until expiresAt (at least one second from now). The
// stored cutoff and deadline only ever move forward.
func (r *Revocations) RevokeAllBefore(_ context.Context, cutoff, expiresAt time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.all = cutoffEntry{cutoff: cutoff, deadline: deadline(now, expiresAt)}.merge(r.all, now)
	return nil
}

// IsRevoked reports whether the token is revoked by its jti, its sid (when
// not empty), its subject's cutoff or the global cutoff. Empty identifiers
// are skipped; with all three empty the answer is false. It never fails.
func (r *Revocations) IsRevoked(_ context.Context, jti, sid, subject string, issuedAt time.Time) (bool, error) {
	if jti == "" && sid == "" && subject == "" {
		return false, nil
	}
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.all.revokes(issuedAt, now) {
		return true, nil
	}
	if jti != "" {
		if d, ok := r.jtis[jti]; ok && live(d, now) {
			return true, nil
		}
	}
	if sid != "" {
		if d, ok := r.sids[sid]; ok && live(d, now) {
			return true, nil
		}
	}
	if subject != "" {
		if e, ok := r.subjects[subject]; ok && e.revokes(issuedAt, now) {
			return true, nil
		}
	}
	return false, nil
}

// Len returns the number of entries held, live or expired but not yet swept.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis) + len(r.sids) + len(r.subjects)
}

// Sweep removes every expired entry now and returns how many it removed.
// Writes call it on their own; a maintenance job may call it too.
func (r *Revocations) Sweep() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sweepLocked(r.now())
}

// wroteLocked counts a write and sweeps once enough writes have happened
// since the last sweep to pay for it.
func (r *Revocations) wroteLocked(now time.Time) {
	if r.sweeps.due() {
		r.sweepLocked(now)
	}
}

func (r *Revocations) sweepLocked(now time.Time) int {
	n := 0
	for k, d := range r.jtis {
		if !live(d, now) {
			delete(r.jtis, k)
			n++
		}
	}
	for k, d := range r.sids {
		if !live(d, now) {
			delete(r.sids, k)
			n++
		}
	}
	for k, e := range r.subjects {
		if !live(e.deadline, now) {
			delete(r.subjects, k)
			n++
		}
	}
	r.sweeps.done(len(r.jtis) + len(r.sids) + len(r.subjects))
	return n
}
