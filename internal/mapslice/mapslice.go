// Package mapslice copies a slice through a function, element by element:
// the deep copies of the cache, the cleaning of audit details, the lines
// of the error lists.
package mapslice

// Map returns a new slice holding f of each element of s, in order; a nil
// s stays nil (callers may tell nil from empty).
func Map[T, U any](s []T, f func(T) U) []U {
	if s == nil {
		return nil
	}
	out := make([]U, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
