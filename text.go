package permiso

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The two rules for untrusted bytes (docs/security-model.md, "Untrusted
// bytes"). PostgreSQL refuses NUL and invalid UTF-8 in text columns that
// SQLite stores as given, so every value that reaches a store is first
// judged by one of them, and both backends answer alike:
//
//   - an identifier (a client_id, a username, an id in a path or filter)
//     that is not valid UTF-8 or holds a NUL cannot name anything stored:
//     ValidIdentifier is false, and the caller answers as for an unknown
//     value, without asking the store;
//   - free text that is only recorded (User-Agent, audit details) is made
//     storable by CleanText and is never a reason to fail a request.
//
// Text a client asks to store (a name, a description, a bio) is refused
// (422 naming the field) unless ValidText holds, before anything is
// written.

// ValidIdentifier reports whether s can name a stored value: valid UTF-8
// without NUL. Other control characters are left to the field's own
// syntax rules.
func ValidIdentifier(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// ValidText reports whether s may be stored as free text a client sent (a
// name, a description, a bio): valid UTF-8 without NUL (ValidIdentifier)
// and without any other control character (Unicode category Cc) than tab,
// line feed and carriage return.
func ValidText(s string) bool {
	if !ValidIdentifier(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\t', c == '\n', c == '\r':
		case c < 0x20, c == 0x7f:
			return false
		}
	}
	// C1 controls (U+0080-U+009F) are two bytes, 0xC2 0x80-0x9F.
	if strings.IndexByte(s, 0xc2) >= 0 {
		for _, r := range s {
			if r >= 0x80 && unicode.IsControl(r) {
				return false
			}
		}
	}
	return true
}

// CleanText returns s in a form every backend stores identically: each
// invalid UTF-8 sequence replaced by U+FFFD, every NUL removed, and the
// result cut to at most maxBytes bytes at a character boundary (maxBytes
// <= 0 means no bound). Valid text without NUL within the bound is
// returned unchanged.
func CleanText(s string, maxBytes int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if maxBytes > 0 && len(s) > maxBytes {
		cut := maxBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
