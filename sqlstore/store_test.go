package sqlstore

import (
	"slices"
	"testing"
)

// TestWhere: a condition's "?N" are renumbered after the arguments of the
// conditions before it, so that one value can be used several times in
// any condition of a list query.
func TestWhere(t *testing.T) {
	var w where
	w.add("a = ?", 1)
	w.add("(b LIKE ?1 OR c LIKE ?1)", "x")
	w.add("d = ? AND e = ?", 2, 3)
	w.add("(f = ?1 OR g = ?1)", "y")
	want := " WHERE a = ? AND (b LIKE ?2 OR c LIKE ?2) AND d = ? AND e = ? AND (f = ?5 OR g = ?5)"
	if got := w.sql(); got != want {
		t.Errorf("sql() = %q, want %q", got, want)
	}
	if !slices.Equal(w.args, []any{1, "x", 2, 3, "y"}) {
		t.Errorf("args = %v", w.args)
	}
	var empty where
	if empty.sql() != "" {
		t.Errorf("empty sql() = %q", empty.sql())
	}
}

// TestWhereSearchAndSet: search matches the text on any of its columns
// (one argument, used by each), and addSet adds a condition only for a
// filter field that is set; an empty search and an unset field add none.
func TestWhereSearchAndSet(t *testing.T) {
	var w where
	active, unset := true, (*bool)(nil)
	w.search("")
	addSet(&w, "x = ?", unset)
	addSet(&w, "a = ?", &active)
	w.search("50%_Off", "n", "coalesce(d, '')")
	want := ` WHERE a = ? AND (lower(n) LIKE ?2 ESCAPE '\' OR lower(coalesce(d, '')) LIKE ?2 ESCAPE '\')`
	if got := w.sql(); got != want {
		t.Errorf("sql() = %q, want %q", got, want)
	}
	if !slices.Equal(w.args, []any{true, `%50\%\_off%`}) {
		t.Errorf("args = %v", w.args)
	}
}

func TestPage(t *testing.T) {
	for _, tc := range []struct {
		offset, limit int
		want          string
		args          []any
	}{
		{0, 0, "Q", nil},
		{0, 10, "Q LIMIT ?", []any{10}},
		{5, 10, "Q LIMIT ? OFFSET ?", []any{10, 5}},
		{5, 0, "Q LIMIT ? OFFSET ?", []any{int64(1) << 62, 5}},
	} {
		q, args := page("Q", nil, tc.offset, tc.limit)
		if q != tc.want || !slices.Equal(args, tc.args) {
			t.Errorf("page(%d, %d) = %q %v, want %q %v", tc.offset, tc.limit, q, args, tc.want, tc.args)
		}
	}
}
