package postgres

import "testing"

// TestBind: "?" takes the next argument, "?N" the N-th, and a plain "?"
// after "?N" continues after the highest number seen, as SQLite numbers
// them; nothing else changes.
func TestBind(t *testing.T) {
	d := &dialect{}
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x LIKE ?1 OR y LIKE ?1 AND z = ?", "x LIKE $1 OR y LIKE $1 AND z = $2"},
		{"a = ? AND (b = ?2 OR c = ?2) AND d = ?", "a = $1 AND (b = $2 OR c = $2) AND d = $3"},
		{"SET a = ?, b = CASE WHEN b < ?2 THEN ?2 ELSE b END WHERE id = ?3", "SET a = $1, b = CASE WHEN b < $2 THEN $2 ELSE b END WHERE id = $3"},
		{"v = ?12", "v = $12"},
	} {
		if got := d.Bind(tc.in); got != tc.want {
			t.Errorf("Bind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := d.Bind(tc.in); got != tc.want {
			t.Errorf("Bind(%q) from the cache = %q, want %q", tc.in, got, tc.want)
		}
	}
}
