package jsonappend

import (
	"encoding/json"
	"testing"

	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestValueIsMarshal holds Value, the encoder of audit details
// (sqlstore's detailsJSON; docs/benchmarks.md, "Client credentials: the
// audit insert"), to the bytes json.Marshal writes for the values cleaned
// details hold: keys sorted, strings json.Marshal escapes (HTML
// characters, U+2028, invalid UTF-8), nil maps and lists, nesting. Values
// it does not encode (floats, json.Number, other types) answer ok false
// and leave b as it was.
func TestValueIsMarshal(t *testing.T) {
	odd := jsonappendtest.Odd
	jsonappendtest.IsMarshal(t, map[string]any{
		"client credentials": map[string]any{"grant_type": "client_credentials", "scopes": []string{"read:users", "write:users"}},
		"scopes as []any":    map[string]any{"scopes": []any{"a", "b"}, "grant_type": "refresh_token"},
		"empty":              map[string]any{},
		"nil map":            map[string]any(nil),
		"nil lists":          map[string]any{"s": []string(nil), "a": []any(nil), "m": map[string]any(nil)},
		"empty lists":        map[string]any{"s": []string{}, "a": []any{}},
		"scalars":            map[string]any{"t": true, "f": false, "n": nil, "i": -42, "i64": int64(1) << 62, "i32": int32(-7)},
		"odd":                map[string]any{odd: odd, "z" + odd: []string{odd, ""}, "<": []any{odd, map[string]any{odd: 1}}},
		"nested":             map[string]any{"b": map[string]any{"d": []any{map[string]any{"x": "y"}, nil, true}, "c": "e"}, "a": 1},
		"key order":          map[string]any{"b": 1, "B": 2, "a": 3, "é": 4, "~2": 5, "": 6},
	}, func(v any, b []byte) []byte {
		got, ok := Value(b, v)
		if !ok {
			t.Errorf("Value of %#v: not encoded", v)
		}
		return got
	})
	for name, v := range map[string]any{
		"float":       map[string]any{"a": "x", "f": 1.5},
		"json.Number": []any{"x", json.Number("12")},
		"uint":        map[string]any{"u": uint(3)},
		"other type":  struct{ A int }{1},
	} {
		t.Run("not encoded: "+name, func(t *testing.T) {
			if got, ok := Value([]byte("prefix"), v); ok || string(got) != "prefix" {
				t.Fatalf("Value = %q, %v; want prefix, false", got, ok)
			}
		})
	}
}
