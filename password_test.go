package permiso

import "testing"

func TestPasswordPolicy(t *testing.T) {
	p := PasswordPolicy{MinLength: 12, MaxLength: 20, RequireUppercase: true, RequireLowercase: true, RequireDigits: true, RequireSpecial: true,
		Common: func(s string) bool { return s == "Password123!" }}
	cases := []struct {
		pw, user string
		want     int
	}{
		{"Correct-Horse-42", "alice", 0},
		{"short", "", 4},                   // length, upper, digit, special
		{"alllowercase-letters", "", 2},    // upper, digit
		{"ALICE-in-chains-99", "alice", 1}, // contains username
		{"Password123!", "", 1},            // common (12 chars)
		{"Aa1!Aa1!Aa1!Aa1!Aa1!x", "", 1},   // too long
		{"Ünïcödé-Pässwörd-7", "", 0},      // unicode letters count
	}
	for _, c := range cases {
		got := p.Check(c.pw, c.user)
		if len(got) != c.want {
			t.Errorf("Check(%q, %q) = %v, want %d problems", c.pw, c.user, got, c.want)
		}
	}
}
