// Package jsonappend appends JSON values to a byte slice exactly as
// encoding/json's Marshal writes them, without reflection: for the
// encoders of the hot paths (the access-token payload, the user and
// introspection answers; docs/benchmarks.md, "Where the time goes"), each
// held to json.Marshal by a test of its own.
package jsonappend

import (
	"encoding/json"
	"slices"
	"strconv"
)

// String appends s quoted. A string of printable ASCII that json.Marshal
// writes unchanged (no quote, backslash or HTML character) is copied; any
// other goes through json.Marshal, so the escaping is always
// encoding/json's own.
func String(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string: cannot fail
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Strings appends a list as json.Marshal does: null when nil.
func Strings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// StringPtr appends *s, or null when s is nil.
func StringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return String(b, *s)
}

// Bool appends true or false.
func Bool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// Int appends n in decimal.
func Int(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// StringField appends name (the member's separator, quoted name and colon,
// such as `,"sub":`) and s, or nothing when omitEmpty and s is empty (the
// omitempty option).
func StringField(b []byte, name, s string, omitEmpty bool) []byte {
	if omitEmpty && s == "" {
		return b
	}
	return String(append(b, name...), s)
}

// StringsField is StringField for a list (omitempty: an empty list).
func StringsField(b []byte, name string, list []string, omitEmpty bool) []byte {
	if omitEmpty && len(list) == 0 {
		return b
	}
	return Strings(append(b, name...), list)
}

// IntField is StringField for an integer (omitempty: zero).
func IntField(b []byte, name string, n int64, omitEmpty bool) []byte {
	if omitEmpty && n == 0 {
		return b
	}
	return Int(append(b, name...), n)
}

// Value appends v as json.Marshal writes it, for the values an audit
// event's details hold after cleaning: nil, strings, booleans, integers,
// lists of strings or of such values, and maps of them with string keys
// (sorted, as json.Marshal sorts them). ok is false, with b unchanged in
// length, for anything else (a float, a json.Number, another type), which
// the caller then gives to json.Marshal.
func Value(b []byte, v any) (out []byte, ok bool) {
	n := len(b)
	if out, ok = appendValue(b, v); !ok {
		return b[:n], false
	}
	return out, true
}

func appendValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return String(b, x), true
	case bool:
		return Bool(b, x), true
	case int:
		return Int(b, int64(x)), true
	case int64:
		return Int(b, x), true
	case int32:
		return Int(b, int64(x)), true
	case []string:
		return Strings(b, x), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, y := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, y); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(String(b, k), ':')
			var ok bool
			if b, ok = appendValue(b, x[k]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}
