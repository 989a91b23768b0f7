package audit_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
)

// TestCleanLeavesOrdinaryEventsAlone: an event of valid text within its
// bounds comes out equal, and Clean does not modify the caller's maps.
func TestCleanLeavesOrdinaryEventsAlone(t *testing.T) {
	details := map[string]any{"grant_type": "client_credentials", "scopes": []string{"read:users"},
		"n": 3, "ok": true, "nested": map[string]any{"k": []any{"v", 1.5, nil}}, "none": nil}
	e := permiso.AuditEvent{ID: uuid.New(), OccurredAt: time.Now().UTC(), ActorType: "client", ActorID: ptr("svc"),
		Action: "token.issue", TargetType: ptr("service_client"), TargetID: ptr("svc"), Result: "success",
		IPAddress: ptr("2001:db8::1"), UserAgent: ptr("Mozilla/5.0 (X11; Linux x86_64) ünïcödé"), RequestID: ptr("r-1"),
		Details: details}
	got := audit.Clean(e)
	if !reflect.DeepEqual(got, e) {
		t.Errorf("Clean changed an ordinary event:\n%#v\n%#v", got, e)
	}
	e2 := audit.Clean(permiso.AuditEvent{Details: map[string]any{"k\x00": "v\xff"}})
	if _, ok := e2.Details["k"]; !ok {
		t.Errorf("cleaned key missing: %v", e2.Details)
	}
	if details["n"] != 3 || len(details) != 6 {
		t.Errorf("Clean modified the caller's details: %v", details)
	}
	if audit.Clean(permiso.AuditEvent{}).Details != nil {
		t.Error("nil details became non-nil")
	}
}

type stamp struct {
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

// TestCleanDetailsValues: values of every kind inside details are made
// storable: other types through their JSON form, NaN and infinities as
// their names, what JSON cannot encode as a note, depth and size bounded,
// colliding cleaned keys kept apart.
func TestCleanDetailsValues(t *testing.T) {
	id := uuid.MustParse("0190aaaa-0000-7000-8000-000000000001")
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	deep := map[string]any{"v": "bottom"}
	for range 12 {
		deep = map[string]any{"d": deep}
	}
	got := audit.Clean(permiso.AuditEvent{Details: map[string]any{
		"uuid":     id,
		"struct":   stamp{At: at, Note: "n\x00ote\xff"},
		"ints":     []int{1, 2},
		"strmap":   map[string]string{"a\x00": "b\xff"},
		"nan":      math.NaN(),
		"inf":      math.Inf(-1),
		"chan":     make(chan int),
		"error":    errors.New("bad\x00 thing\xff"),
		"deep":     deep,
		"a\x00":    "first",
		"a":        "second",
		"long\xff": strings.Repeat("k", 3000),
	}}).Details
	want := map[string]any{
		"uuid":   id.String(),
		"struct": map[string]any{"at": "2025-01-02T03:04:05Z", "note": "note\uFFFD"},
		"ints":   []any{json.Number("1"), json.Number("2")},
		"strmap": map[string]any{"a": "b\uFFFD"},
		"nan":    "NaN",
		"inf":    "-Inf",
		"chan":   "[unencodable chan int]",
		"error":  "bad thing\uFFFD",
		// "a" sorts before "a\x00": it keeps its name, the other gets "~2".
		"a":   "second",
		"a~2": "first",
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("details[%q] = %#v, want %#v", k, got[k], v)
		}
	}
	if long, _ := got["long\uFFFD"].(string); long != strings.Repeat("k", audit.MaxDetailValueBytes) {
		t.Errorf("long value: %d bytes, want %d", len(long), audit.MaxDetailValueBytes)
	}
	// Depth: the top-level map is level 1; a value below level
	// MaxDetailsDepth is replaced.
	var v any = got["deep"]
	levels := 1
	for {
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		levels++
		v = m["d"]
	}
	if v != audit.DetailsTooDeep || levels != audit.MaxDetailsDepth {
		t.Errorf("deep details end at level %d with %#v, want %q at level %d", levels+1, v, audit.DetailsTooDeep, audit.MaxDetailsDepth+1)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("cleaned details do not encode: %v", err)
	}
}

// TestCleanBoundsEveryField: each string field is cut to its bound at a
// character boundary, and the whole details to MaxDetailsBytes of JSON.
func TestCleanBoundsEveryField(t *testing.T) {
	long := strings.Repeat("界", 1000) // 3 bytes each
	var many []string
	for range 40 {
		many = append(many, strings.Repeat("x", 1000))
	}
	e := audit.Clean(permiso.AuditEvent{ActorType: long, ActorID: &long, Action: long, TargetType: &long, TargetID: &long,
		Result: long, IPAddress: &long, UserAgent: &long, RequestID: &long, Details: map[string]any{"ids": many}})
	for _, f := range []struct {
		name  string
		value string
		bound int
	}{
		{"actor_type", e.ActorType, audit.MaxActorTypeBytes},
		{"actor_id", *e.ActorID, audit.MaxActorIDBytes},
		{"action", e.Action, audit.MaxActionBytes},
		{"target_type", *e.TargetType, audit.MaxTargetTypeBytes},
		{"target_id", *e.TargetID, audit.MaxTargetIDBytes},
		{"result", e.Result, audit.MaxResultBytes},
		{"ip_address", *e.IPAddress, audit.MaxIPAddressBytes},
		{"user_agent", *e.UserAgent, audit.MaxUserAgentBytes},
		{"request_id", *e.RequestID, audit.MaxRequestIDBytes},
	} {
		if want := strings.Repeat("界", f.bound/3); f.value != want {
			t.Errorf("%s: %d bytes (valid %v), want %d", f.name, len(f.value), utf8.ValidString(f.value), len(want))
		}
	}
	d := e.Details
	if d["_truncated"] != true || d["_bytes"] != len(`{"ids":[]}`)+40*1003-1 {
		t.Errorf("oversized details: %v %v, want the summary", d["_truncated"], d["_bytes"])
	}
	if p, _ := d["_preview"].(string); len(p) != audit.DetailsPreviewBytes || !strings.HasPrefix(p, `{"ids":["xxx`) {
		t.Errorf("preview of %d bytes: %.40q", len(p), p)
	}
	if long != strings.Repeat("界", 1000) {
		t.Error("Clean modified the caller's string")
	}
}
