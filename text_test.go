package permiso_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/permiso/permiso"
)

// TestValidIdentifierAndText: ValidIdentifier refuses only invalid UTF-8
// and NUL; ValidText also refuses every other control character but tab,
// line feed and carriage return.
func TestValidIdentifierAndText(t *testing.T) {
	for _, tc := range []struct {
		in               string
		identifier, text bool
	}{
		{"client-1", true, true},
		{"Jane Doe", true, true},
		{"", true, true},
		{"line one\nline two\r\n\tindented", true, true},
		{"ünïcode – “quotes” 😀", true, true},
		{"a\x00b", false, false},
		{"\xff", false, false},
		{"\xc0\x80", false, false}, // overlong encoding of NUL
		{"bell\x07", true, false},
		{"escape\x1b[31m", true, false},
		{"del\x7f", true, false},
		{"c1\u0085", true, false},
		{"c1\u009f", true, false},
		{"\u00a0no-break space", true, true},
	} {
		if got := permiso.ValidIdentifier(tc.in); got != tc.identifier {
			t.Errorf("ValidIdentifier(%q) = %v, want %v", tc.in, got, tc.identifier)
		}
		if got := permiso.ValidText(tc.in); got != tc.text {
			t.Errorf("ValidText(%q) = %v, want %v", tc.in, got, tc.text)
		}
	}
}

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"curl/8.0", 0, "curl/8.0"},
		{"\xff", 0, "\uFFFD"},
		{"a\x00b", 0, "ab"},
		{"\xc0\x80x", 0, "\uFFFDx"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // never cuts inside a character
		{"\x00\x00", 5, ""},
	} {
		if got := permiso.CleanText(tc.in, tc.max); got != tc.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	f.Add("curl/8.0", 16)
	f.Add("\xff\x00é", 2)
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 4096
		got := permiso.CleanText(s, max)
		if !permiso.ValidIdentifier(got) {
			t.Fatalf("CleanText(%q) = %q is not storable", s, got)
		}
		if max > 0 && len(got) > max {
			t.Fatalf("CleanText(%q, %d) is %d bytes", s, max, len(got))
		}
		if utf8.ValidString(s) && !strings.Contains(s, "\x00") && (max <= 0 || len(s) <= max) && got != s {
			t.Fatalf("CleanText changed clean text %q to %q", s, got)
		}
	})
}

// FuzzValidText: ValidText implies ValidIdentifier, and it holds exactly
// when s is valid UTF-8 whose only control characters are tab, line feed
// and carriage return.
func FuzzValidText(f *testing.F) {
	for _, s := range []string{"Jane", "a\nb", "\x00", "\xff", "\xc0\x80", "\x1b", "\u0085", "\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := permiso.ValidText(s)
		if got && !permiso.ValidIdentifier(s) {
			t.Fatalf("ValidText(%q) but not ValidIdentifier", s)
		}
		want := utf8.ValidString(s)
		for _, r := range s {
			if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
				want = false
			}
		}
		if got != want {
			t.Fatalf("ValidText(%q) = %v, want %v", s, got, want)
		}
	})
}
