// Package mapslice copies a slice through a function, element by element:
// the deep copies of the cache and the cleaning of audit details.
package mapslice

// Map returns a new slice holding f of each element of s, in order; a nil
// s stays nil (callers may tell nil from empty).
func Map[T any](s []T, f func(T) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
