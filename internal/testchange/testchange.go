// Package testchange keeps, for tests, the cache changes a subscriber of a
// change bus receives.
package testchange

import (
	"slices"
	"sync"

	"github.com/permiso/permiso"
)

// Log is a subscriber (its Add) that keeps what it receives; it is safe
// for concurrent use.
type Log struct {
	mu  sync.Mutex
	got []permiso.Change
}

// Add keeps c.
func (l *Log) Add(c permiso.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, c)
}

// All returns a copy of the changes received, in order.
func (l *Log) All() []permiso.Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// Count returns how many changes of kind were received.
func (l *Log) Count(kind permiso.ChangeKind) int {
	n := 0
	for _, c := range l.All() {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// Has reports whether c was received.
func (l *Log) Has(c permiso.Change) bool {
	return slices.Contains(l.All(), c)
}
