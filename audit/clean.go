package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/mapslice"
	"github.com/permiso/permiso/internal/slab"
)

// Byte bounds of the stored fields of an audit event (docs/audit.md,
// "What is stored"). Every string passes through permiso.CleanText with
// its bound before the event is queued, so an event that reaches the
// store is storable by every backend and reads back identically on all of
// them.
const (
	MaxActorTypeBytes  = 32
	MaxActorIDBytes    = 256
	MaxActionBytes     = 128
	MaxTargetTypeBytes = 64
	MaxTargetIDBytes   = 256
	MaxResultBytes     = 32
	MaxIPAddressBytes  = 64
	MaxUserAgentBytes  = 512
	MaxRequestIDBytes  = 128
	// MaxDetailKeyBytes bounds each key of Details, at every depth.
	MaxDetailKeyBytes = 128
	// MaxDetailValueBytes bounds each string inside Details, at every
	// depth.
	MaxDetailValueBytes = 1024
	// MaxDetailsDepth bounds the nesting of maps and lists in Details;
	// a value nested deeper is replaced by DetailsTooDeep.
	MaxDetailsDepth = 8
	// MaxDetailsBytes bounds the JSON encoding of the whole Details. A
	// larger Details is replaced by {"_truncated": true, "_bytes": N,
	// "_preview": the first DetailsPreviewBytes bytes of its JSON}.
	MaxDetailsBytes = 16 << 10
	// DetailsPreviewBytes is the length of "_preview" in a truncated
	// Details.
	DetailsPreviewBytes = 4 << 10
)

// DetailsTooDeep replaces a Details value nested deeper than
// MaxDetailsDepth.
const DetailsTooDeep = "[nested too deep]"

// Clean returns e with every string made storable: each of actor type and
// id, action, target type and id, result, IP address, user agent and
// request id, and every key and string inside Details (recursively) is
// passed through permiso.CleanText with its bound (invalid UTF-8 becomes
// U+FFFD, NUL is removed, the length is cut at a character boundary).
//
// Details are also made JSON-encodable: values of other types than maps,
// lists, strings, numbers, booleans and nil are replaced by their JSON
// form decoded again (a uuid.UUID or time.Time becomes its string), and
// what cannot be encoded (a NaN, a channel, a cycle) becomes a string. Two
// keys of one map that clean to the same text are kept apart with a
// "~2", "~3", ... suffix (in the order of the original keys). Clean never
// modifies e's maps or slices; it builds new ones.
func Clean(e permiso.AuditEvent) permiso.AuditEvent {
	// The cleaned texts of the six pointers, in one allocation.
	strs := make(slab.Slab[string], 0, slab.Count(e.ActorID, e.TargetType, e.TargetID, e.IPAddress, e.UserAgent, e.RequestID))
	e.ActorType = permiso.CleanText(e.ActorType, MaxActorTypeBytes)
	e.ActorID = cleanPtr(&strs, e.ActorID, MaxActorIDBytes)
	e.Action = permiso.CleanText(e.Action, MaxActionBytes)
	e.TargetType = cleanPtr(&strs, e.TargetType, MaxTargetTypeBytes)
	e.TargetID = cleanPtr(&strs, e.TargetID, MaxTargetIDBytes)
	e.Result = permiso.CleanText(e.Result, MaxResultBytes)
	e.IPAddress = cleanPtr(&strs, e.IPAddress, MaxIPAddressBytes)
	e.UserAgent = cleanPtr(&strs, e.UserAgent, MaxUserAgentBytes)
	e.RequestID = cleanPtr(&strs, e.RequestID, MaxRequestIDBytes)
	if e.Details != nil {
		e.Details = boundDetails(cleanMap(e.Details, 1))
	}
	return e
}

// cleanPtr returns a pointer, into strs, to the cleaned *p (nil for nil).
func cleanPtr(strs *slab.Slab[string], p *string, limit int) *string {
	if p == nil {
		return nil
	}
	s := permiso.CleanText(*p, limit)
	return strs.Ptr(&s)
}

// cleanMap cleans the keys and values of m, a map at depth (the top-level
// Details is depth 1).
func cleanMap(m map[string]any, depth int) map[string]any {
	out := make(map[string]any, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Sorted, so that a collision of cleaned keys is resolved the same way
	// every time.
	slices.Sort(keys)
	for _, k := range keys {
		out[uniqueKey(out, permiso.CleanText(k, MaxDetailKeyBytes))] = cleanValue(m[k], depth+1)
	}
	return out
}

// uniqueKey returns k, or k with the first free "~N" suffix when out
// already holds k.
func uniqueKey(out map[string]any, k string) string {
	if _, taken := out[k]; !taken {
		return k
	}
	for n := 2; ; n++ {
		suffix := "~" + strconv.Itoa(n)
		c := permiso.CleanText(k, MaxDetailKeyBytes-len(suffix)) + suffix
		if _, taken := out[c]; !taken {
			return c
		}
	}
}

// cleanValue cleans one Details value found at depth.
func cleanValue(v any, depth int) any {
	if depth > MaxDetailsDepth {
		return DetailsTooDeep
	}
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float64:
		return cleanFloat(x)
	case float32:
		return cleanFloat(float64(x))
	case string:
		return permiso.CleanText(x, MaxDetailValueBytes)
	case json.Number:
		if _, err := json.Marshal(x); err != nil {
			return permiso.CleanText(string(x), MaxDetailValueBytes)
		}
		return x
	case []string:
		return mapslice.Map(x, func(s string) string { return permiso.CleanText(s, MaxDetailValueBytes) })
	case []any:
		return mapslice.Map(x, func(y any) any { return cleanValue(y, depth+1) })
	case map[string]any:
		if x == nil {
			return x
		}
		return cleanMap(x, depth)
	case map[string]string:
		if x == nil {
			return map[string]any(nil)
		}
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return cleanMap(m, depth)
	case error:
		return permiso.CleanText(errorText(x), MaxDetailValueBytes)
	}
	// Any other type: its JSON form, decoded into maps, lists, strings,
	// numbers, booleans and nil, then cleaned like those.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("[unencodable %T]", v)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var decoded any
	if err := d.Decode(&decoded); err != nil {
		return fmt.Sprintf("[unencodable %T]", v)
	}
	return cleanValue(decoded, depth)
}

// errorText is err.Error(), or the type's name when that panics (a nil
// pointer of an error type).
func errorText(err error) (s string) {
	defer func() {
		if recover() != nil {
			s = fmt.Sprintf("[%T]", err)
		}
	}()
	return err.Error()
}

// cleanFloat keeps a finite number; JSON has no NaN or infinity, so those
// become their names.
func cleanFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// boundDetails replaces d by a short summary when its JSON encoding (as
// the stores write it) is longer than MaxDetailsBytes.
//
// Details that cannot be that long are returned without encoding them
// (jsonBound): the store encodes them once more when it writes them, and
// encoding them twice was a share of every token request's CPU
// (docs/benchmarks.md, "The refresh path").
func boundDetails(d map[string]any) map[string]any {
	if n, ok := jsonBound(d); ok && n <= MaxDetailsBytes {
		return d
	}
	b, err := json.Marshal(d)
	if err != nil {
		// Not expected after cleaning; stored as a note rather than lost.
		return map[string]any{"_unencodable": permiso.CleanText(err.Error(), MaxDetailValueBytes)}
	}
	if len(b) <= MaxDetailsBytes {
		return d
	}
	return map[string]any{
		"_truncated": true,
		"_bytes":     len(b),
		"_preview":   permiso.CleanText(string(b), DetailsPreviewBytes),
	}
}

// jsonBound returns an upper bound of the length of v's JSON encoding by
// encoding/json, for the values cleanValue returns; ok is false for any
// other value. A string's bytes take at most six bytes each (\u00XX for
// control and HTML characters, \ufffd for each byte of invalid UTF-8, and
// \u2028 for three), plus its quotes.
func jsonBound(v any) (n int, ok bool) {
	switch x := v.(type) {
	case nil:
		return 4, true
	case bool:
		return 5, true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return 20, true
	case float64:
		return 32, true
	case json.Number:
		return len(x), true
	case string:
		return 2 + 6*len(x), true
	case []string:
		n = 2
		for _, s := range x {
			n += 3 + 6*len(s)
		}
		return n, true
	case []any:
		n = 2
		for _, y := range x {
			m, ok := jsonBound(y)
			if !ok {
				return 0, false
			}
			n += m + 1
		}
		return n, true
	case map[string]any:
		n = 2
		for k, y := range x {
			m, ok := jsonBound(y)
			if !ok {
				return 0, false
			}
			n += 2 + 6*len(k) + 1 + m + 1
		}
		return n, true
	}
	return 0, false
}
