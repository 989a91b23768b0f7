package storetest

import (
	"fmt"
	"reflect"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// sameTime compares times as the stores must return them: the same
// instant (within margin) and both in time.UTC. A zero margin asks for the
// exact instant; the suite writes times truncated to microseconds, so
// every backend can keep them exactly.
func sameTime(margin time.Duration) cmp.Option {
	return cmp.Comparer(func(a, b time.Time) bool {
		d := a.Sub(b)
		if d < 0 {
			d = -d
		}
		return d <= margin && a.Location() == b.Location()
	})
}

// diff reports (as a test error) any difference between got and want,
// comparing the whole values: every field, so a column a backend forgets
// shows up. Times compare exactly and must be in UTC unless opts carries
// another time option; derived fields (relations filled by the store,
// counts) are ignored by ignoreDerived and compared where a test means to.
func diff[T any](h *harness, what string, got, want T, opts ...cmp.Option) {
	h.Helper()
	all := cmp.Options{ignoreDerived, cmpopts.EquateEmpty()}
	timed := false
	for _, o := range opts {
		if t, ok := o.(timeOpt); ok {
			o, timed = t.Option, true
		}
		all = append(all, o)
	}
	if !timed {
		all = append(all, sameTime(0))
	}
	if d := cmp.Diff(want, got, all...); d != "" {
		h.Errorf("%s differs (-want +got):\n%s", what, d)
	}
}

// timeOpt marks an option as the time comparison, replacing the default.
type timeOpt struct{ cmp.Option }

// within compares times within d (in UTC), in place of the exact default:
// the approximate-time option, for times the store stamps itself.
func within(d time.Duration) cmp.Option { return timeOpt{sameTime(d)} }

// ignoreDerived leaves out the fields a store fills from other tables
// (relations and counts); the tests that mean to check them do so.
var ignoreDerived = cmp.Options{
	cmpopts.IgnoreFields(permiso.ServiceClient{}, "Scopes"),
	cmpopts.IgnoreFields(permiso.User{}, "Roles"),
	cmpopts.IgnoreFields(permiso.Role{}, "Scopes", "UserCount"),
	cmpopts.IgnoreFields(permiso.Scope{}, "RoleCount"),
}

// derivedFields names, per type, the fields fillAll leaves zero: they are
// not columns of the entity's table.
var derivedFields = map[reflect.Type]map[string]bool{
	reflect.TypeFor[permiso.ServiceClient](): {"Scopes": true},
	reflect.TypeFor[permiso.User]():          {"Roles": true},
	reflect.TypeFor[permiso.Role]():          {"Scopes": true, "UserCount": true},
	reflect.TypeFor[permiso.Scope]():         {"RoleCount": true},
}

// fillAll sets every field of *v (a domain struct) that is a column to a
// non-zero value of its type, by reflection, so that a field added to the
// struct without a column in a backend comes back zero and fails the
// round trip. Strings become "<Field>-<tag>", numbers distinct small
// values, times distinct instants around h.now (microseconds), pointers
// point at such values. Callers then fix the fields a constraint limits.
// A field of a type fillAll does not know fails the test, so the
// round-trip tests cannot silently skip a new field.
func fillAll[T any](h *harness, v *T, tag string) {
	h.Helper()
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	skip := derivedFields[rt]
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || skip[f.Name] {
			continue
		}
		if !fillValue(h, rv.Field(i), f.Name+"-"+tag, i+1) {
			h.Fatalf("fillAll: %s.%s has type %s, which fillAll cannot fill; teach it", rt.Name(), f.Name, f.Type)
		}
	}
}

func fillValue(h *harness, v reflect.Value, s string, n int) bool {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(h.at(-time.Duration(n) * (time.Minute + time.Microsecond))))
		return true
	case reflect.TypeFor[uuid.UUID]():
		v.Set(reflect.ValueOf(uuid.New()))
		return true
	case reflect.TypeFor[map[string]any]():
		v.Set(reflect.ValueOf(map[string]any{"field": s, "n": float64(n)}))
		return true
	case reflect.TypeFor[[]string]():
		v.Set(reflect.ValueOf([]string{s + "-a", s + "-b"}))
		return true
	case reflect.TypeFor[[]byte]():
		v.Set(reflect.ValueOf([]byte(s)))
		return true
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(100 + n))
	case reflect.Float64:
		v.SetFloat(float64(n) + 0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if !fillValue(h, p.Elem(), s, n) {
			return false
		}
		v.Set(p)
	default:
		return false
	}
	return true
}

// errMessage reports (as a test error) a caller-visible message other than
// want: every backend answers with the same words.
func errMessage(h *harness, what string, err error, want string) {
	h.Helper()
	if got := permiso.ErrorMessage(err); got != want {
		h.Errorf("%s: message = %q, want %q", what, got, fmt.Sprint(want))
	}
}
