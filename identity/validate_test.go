package identity

import "testing"

// TestEmailRefusesInvisibleCharacters: an address with an invisible or
// blank character would look like another user's (docs/security-model.md,
// "Untrusted bytes"); a plain or accented one is accepted.
func TestEmailRefusesInvisibleCharacters(t *testing.T) {
	for _, s := range []string{
		"ro\u200bot@example.com", // zero-width space
		"\ufeffroot@example.com", // byte order mark
		"root@exa\u2028mple.com", // line separator
		"root\u2029@example.com", // paragraph separator
		"ro\u00a0ot@example.com", // no-break space
		"root\u200d@example.com", // zero-width joiner
		"ro\u202eot@example.com", // right-to-left override
	} {
		if validEmail(s) {
			t.Errorf("validEmail(%q) = true, want false", s)
		}
	}
	for _, s := range []string{"root@example.com", "zoë@example.com", "a.b+c@sub.example.org"} {
		if !validEmail(s) {
			t.Errorf("validEmail(%q) = false, want true", s)
		}
	}
}
