// Package slab copies the values that a deep copy's pointers point to
// into one slice, so that a copy with many pointers costs one allocation
// for all of them rather than one each (the cached users and clients
// copied on every read, the audit events cleaned on every token).
package slab

// Slab holds the copies. Make it with the capacity Count gives for the
// pointers it will copy, before the first Ptr: append then never moves
// it, so the pointers handed out stay valid.
type Slab[T any] []T

// Count returns how many of ps are not nil.
func Count[T any](ps ...*T) int {
	n := 0
	for _, p := range ps {
		if p != nil {
			n++
		}
	}
	return n
}

// Copy points each of ps at a copy of what it points to (nil stays nil),
// all the copies in one new slab, and returns the slab with room for extra
// more copies after them (Ptr or Slice): a deep copy names its pointers
// once, for both the count and the copy.
func Copy[T any](extra int, ps ...**T) Slab[T] {
	n := extra
	for _, p := range ps {
		if *p != nil {
			n++
		}
	}
	s := make(Slab[T], 0, n)
	for _, p := range ps {
		*p = s.Ptr(*p)
	}
	return s
}

// Ptr returns a pointer to a copy of *p in s, or nil for nil. Past the
// capacity counted, the copy is allocated on its own: still a copy.
func (s *Slab[T]) Ptr(p *T) *T {
	if p == nil {
		return nil
	}
	if len(*s) == cap(*s) {
		v := *p
		return &v
	}
	*s = append(*s, *p)
	return &(*s)[len(*s)-1]
}

// Slice returns a copy of src in s (nil for nil, empty for empty), whose
// capacity ends at its length: appending to it never writes into the
// next copy. Count src's length into s's capacity before the first call.
func (s *Slab[T]) Slice(src []T) []T {
	if src == nil {
		return nil
	}
	if len(*s)+len(src) > cap(*s) {
		return append(make([]T, 0, len(src)), src...)
	}
	start := len(*s)
	*s = append(*s, src...)
	return (*s)[start:len(*s):len(*s)]
}
