package oauth2

import (
	"strings"

	"github.com/permiso/permiso"
)

// Limits of the scope parameter.
const (
	// MaxScopeLength is the longest accepted scope parameter, in bytes.
	MaxScopeLength = 2048
	// MaxScopes is the largest number of scope-tokens in one scope
	// parameter (counted before de-duplication).
	MaxScopes = 64
)

// ParseScope parses the scope parameter of RFC 6749 §3.3:
//
//	scope       = scope-token *( SP scope-token )
//	scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//
// Runs of spaces and leading or trailing spaces are tolerated (only SP
// separates tokens; any other whitespace or control character is invalid).
// The result is sorted and de-duplicated, since the order of scope-tokens
// does not matter (§3.3); an empty or all-space string gives nil. A
// parameter longer than MaxScopeLength bytes, with more than MaxScopes
// tokens, or with a character outside the grammar is an invalid_scope
// error.
func ParseScope(s string) ([]string, error) {
	if len(s) > MaxScopeLength {
		return nil, ErrInvalidScope.WithDescription("The scope parameter is too long")
	}
	var tokens []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if !ValidScopeToken(tok) {
			return nil, ErrInvalidScope.WithDescription("The scope parameter contains an invalid character")
		}
		if len(tokens) == MaxScopes {
			return nil, ErrInvalidScope.WithDescription("The scope parameter has too many scopes")
		}
		tokens = append(tokens, tok)
	}
	if len(tokens) == 0 {
		return nil, nil
	}
	return permiso.SortedUnique(tokens), nil
}

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// intersect returns the sorted elements of want that are also in have.
func intersect(want, have []string) []string {
	set := make(map[string]struct{}, len(have))
	for _, h := range have {
		set[h] = struct{}{}
	}
	var out []string
	for _, w := range want {
		if _, ok := set[w]; ok {
			out = append(out, w)
		}
	}
	return permiso.SortedUnique(out)
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	return len(intersect(a, b)) == len(permiso.SortedUnique(a))
}

// validScopes drops names that are not RFC 6749 scope-tokens (they could
// not be written into the space-separated scope claim unambiguously).
func validScopes(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if ValidScopeToken(n) {
			out = append(out, n)
		}
	}
	return out
}
