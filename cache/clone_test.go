package cache

import (
	"reflect"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field reachable from v to a non-zero value: pointers get
// a target, slices two elements, so that a clone that forgets a field
// shares it.
func fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Array: // uuid.UUID
		for i := range v.Len() {
			fill(v.Index(i), depth+1)
		}
	case reflect.Uint8:
		v.SetUint(9)
	}
}

// shared reports the path of the first pointer, slice or map that a and b
// share, or "".
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path+".*")
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		if a.Type() == timeType {
			return "" // immutable; its *Location is shared by design
		}
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue
			}
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// checkClone fills every field of a value of type T, clones it with
// clone (named name) and checks that the clone is equal and shares no
// memory with it.
func checkClone[T any](t *testing.T, name string, clone func(T) T) {
	t.Helper()
	var v T
	fill(reflect.ValueOf(&v).Elem(), 0)
	c := clone(v)
	if !reflect.DeepEqual(v, c) {
		t.Fatalf("%s changed the value", name)
	}
	if p := shared(reflect.ValueOf(v), reflect.ValueOf(c), reflect.TypeOf(v).Name()); p != "" {
		t.Errorf("%s shares %s", name, p)
	}
}

// TestClonesShareNothing fails when a field is added to User, Role, Scope
// or ServiceClient without its deep copy in clone.go.
func TestClonesShareNothing(t *testing.T) {
	checkClone(t, "cloneUser", cloneUser)
	checkClone(t, "cloneClient", cloneClient)

	// Nil slices stay nil (callers may tell them apart).
	if got := cloneUser(permiso.User{}); got.Roles != nil {
		t.Error("cloneUser turned nil Roles into an empty slice")
	}
}

// TestCloneUserSlabs: cloneUser copies the texts, times, roles and scopes
// of a user with several roles into one slice each (slab), yet each
// role's scopes end at their length, so that appending to one role's
// scopes never writes into the next role's, and the clone's pointers are
// its own.
func TestCloneUserSlabs(t *testing.T) {
	text := func(s string) *string { return &s }
	now := time.Now()
	u := permiso.User{FirstName: text("Ada"), Bio: text("b"), LastLogin: &now, Roles: []permiso.Role{
		{Name: "a", Description: text("role a"), Scopes: []permiso.Scope{{Name: "x:1", Description: text("d1")}, {Name: "x:2", Resource: text("r2")}}},
		{Name: "empty", Scopes: []permiso.Scope{}},
		{Name: "none"},
		{Name: "b", Scopes: []permiso.Scope{{Name: "y:1", Description: text("d3"), Resource: text("r3")}}},
	}}
	c := cloneUser(u)
	if !reflect.DeepEqual(u, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", u, c)
	}
	if c.Roles[1].Scopes == nil || c.Roles[2].Scopes != nil {
		t.Errorf("empty scopes %v (nil %t), none %v (nil %t)", c.Roles[1].Scopes, c.Roles[1].Scopes == nil,
			c.Roles[2].Scopes, c.Roles[2].Scopes == nil)
	}
	c.Roles[0].Scopes = append(c.Roles[0].Scopes, permiso.Scope{Name: "appended"})
	if c.Roles[3].Scopes[0].Name != "y:1" {
		t.Errorf("appending to role a's scopes changed role b's: %+v", c.Roles[3].Scopes)
	}
	*c.FirstName, *c.Bio, *c.Roles[0].Description, *c.Roles[3].Scopes[0].Resource = "x", "x", "x", "x"
	*c.LastLogin = time.Time{}
	if *u.FirstName != "Ada" || *u.Bio != "b" || *u.Roles[0].Description != "role a" ||
		*u.Roles[3].Scopes[0].Resource != "r3" || !u.LastLogin.Equal(now) {
		t.Errorf("writing through the clone changed the original: %+v", u)
	}
}
