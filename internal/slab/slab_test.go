package slab

import "testing"

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
