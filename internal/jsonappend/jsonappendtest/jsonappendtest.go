// Package jsonappendtest holds the hand-written JSON encoders of the hot
// paths (token and introspection answers, user answers, token claims,
// audit details; docs/benchmarks.md) to the bytes encoding/json writes for
// the same values, so that an answer encoded without reflection is the
// answer json.Marshal would have given.
package jsonappendtest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Odd is a string with what json.Marshal escapes or replaces: HTML
// characters, quotes and backslashes, U+2028, a control character, the
// replacement character, multi-byte runes and an invalid byte.
const Odd = "a<b>&c\"d\\e\u2028f\x01g\ufffdé😀\xff"

// IsMarshal checks, in a subtest per named value, that appendJSON appends
// to a prefix exactly what json.Marshal writes for the value, and leaves
// the prefix as it was.
func IsMarshal[T any](t *testing.T, values map[string]T, appendJSON func(v T, b []byte) []byte) {
	t.Helper()
	for name, v := range values {
		t.Run(name, func(t *testing.T) { Same(t, v, appendJSON) })
	}
}

// Same is IsMarshal for one value (a fuzz target's, say).
func Same[T any](t *testing.T, v T, appendJSON func(v T, b []byte) []byte) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got := appendJSON(v, prefix[:len(prefix):len(prefix)])
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("appended\n got %s\nwant prefix%s", got, want)
	}
}
