package slab

import (
	"slices"
	"testing"
)

// TestPtr: the copies live in the slab while it has room, one of them
// each, and past it on their own; nil stays nil; no copy is the original.
func TestPtr(t *testing.T) {
	a, b, c := "a", "b", "c"
	s := make(Slab[string], 0, Count(&a, nil, &b))
	if cap(s) != 2 {
		t.Fatalf("Count: %d, want 2", cap(s))
	}
	pa, pn, pb, pc := s.Ptr(&a), s.Ptr(nil), s.Ptr(&b), s.Ptr(&c)
	if pn != nil {
		t.Errorf("Ptr(nil) = %v", pn)
	}
	if pa == &a || pb == &b || pc == &c || *pa != "a" || *pb != "b" || *pc != "c" {
		t.Fatalf("copies %q %q %q", *pa, *pb, *pc)
	}
	if pa != &s[0] || pb != &s[1] || len(s) != 2 {
		t.Errorf("the counted copies are not the slab's")
	}
	*pa = "x"
	if a != "a" || *pb != "b" {
		t.Errorf("writing one copy changed %q, %q", a, *pb)
	}
}

// TestSlice: the copies share the slab, each ending at its length, nil
// stays nil and empty stays empty, and past the capacity a copy is
// allocated on its own.
func TestSlice(t *testing.T) {
	a, b := []string{"a1", "a2"}, []string{"b1"}
	s := make(Slab[string], 0, len(a)+len(b))
	ca, cn, ce, cb, over := s.Slice(a), s.Slice(nil), s.Slice([]string{}), s.Slice(b), s.Slice(b)
	if cn != nil || ce == nil || len(ce) != 0 {
		t.Errorf("nil copied as %#v, empty as %#v", cn, ce)
	}
	if !slices.Equal(ca, a) || !slices.Equal(cb, b) || !slices.Equal(over, b) || cap(ca) != 2 || cap(cb) != 1 {
		t.Fatalf("copies %q %q %q (capacities %d %d)", ca, cb, over, cap(ca), cap(cb))
	}
	if &ca[0] != &s[0] || &cb[0] != &s[2] || &over[0] == &cb[0] {
		t.Errorf("the counted copies are not the slab's, or the extra one is")
	}
	ca = append(ca, "x")
	ca[0] = "y"
	if cb[0] != "b1" || a[0] != "a1" {
		t.Errorf("appending to one copy changed the next (%q) or the original (%q)", cb[0], a[0])
	}
}

// TestCopy: each pointer is pointed at its copy in the one slab returned,
// nil stays nil, and the slab has room for the extra copies asked for.
func TestCopy(t *testing.T) {
	a, b := "a", "b"
	pa, pn, pb := &a, (*string)(nil), &b
	s := Copy(1, &pa, &pn, &pb)
	if pn != nil || pa == &a || pb == &b || *pa != "a" || *pb != "b" {
		t.Fatalf("copies %v %v %v", pa, pn, pb)
	}
	if len(s) != 2 || cap(s) != 3 || pa != &s[0] || pb != &s[1] {
		t.Errorf("the copies are not the slab's, or it has no room for one more: len %d cap %d", len(s), cap(s))
	}
}
