package audit

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestJSONBound: jsonBound is never below the length of the encoding
// encoding/json writes, for the worst cases of each kind of value Clean
// leaves in details (characters escaped as \u00XX, invalid UTF-8, U+2028,
// the longest numbers), alone and nested; boundDetails relies on it to
// skip encoding details that cannot reach MaxDetailsBytes.
func TestJSONBound(t *testing.T) {
	worst := []string{"", "plain", "<>&", "\x00\x01\x1f\"\\", "\xff\xfe\xc3", "\u2028\u2029", strings.Repeat("<", 1024),
		strings.Repeat("\xff", 1024), "界"}
	values := []any{nil, true, false, int64(math.MinInt64), uint64(math.MaxUint64), int8(-128), -1.2345678901234567e-308,
		math.MaxFloat64, -math.SmallestNonzeroFloat64, json.Number("-12345.678e+90")}
	for _, s := range worst {
		values = append(values, s)
	}
	values = append(values, worst, []any{worst, values[:5]}, map[string]any{"<k\xff>": worst, "n": values[5:9]})
	values = append(values, map[string]any{"all": values, strings.Repeat("\u2028", 40): map[string]any{"x": values}})
	for _, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := jsonBound(v)
		if !ok || n < len(b) {
			t.Errorf("jsonBound(%.60q) = %d, %v; the encoding has %d bytes", b, n, ok, len(b))
		}
	}
	if _, ok := jsonBound(struct{}{}); ok {
		t.Error("jsonBound of a struct: ok, want not known")
	}
}

// TestBoundDetailsOfEscapedValues: details whose values are short but
// grow sixfold in JSON are still summarized when the encoding passes
// MaxDetailsBytes.
func TestBoundDetailsOfEscapedValues(t *testing.T) {
	d := map[string]any{}
	for _, k := range []string{"a", "b", "c"} {
		d[k] = strings.Repeat("<", MaxDetailValueBytes)
	}
	if got := boundDetails(d); got["_truncated"] != true {
		t.Errorf("details of %d bytes of JSON kept whole", 3*6*MaxDetailValueBytes)
	}
	small := map[string]any{"session_id": "s", "scopes": []string{"read:profile"}, "grace_retry": false}
	if got := boundDetails(small); len(got) != 3 {
		t.Errorf("small details changed: %v", got)
	}
}
