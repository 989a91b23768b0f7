package importer

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/internal/mapslice"
)

// RowError is a value of the original that permiso cannot carry over:
// which row (table and id), which column, and why.
type RowError struct {
	Table  string
	ID     string
	Column string
	Reason string
}

func (e RowError) Error() string {
	return fmt.Sprintf("%s id=%s column %s: %s", e.Table, e.ID, e.Column, e.Reason)
}

// Problems is every RowError found, in the order of the tables and rows.
// NewPlan returns it, and writes nothing, when it is not empty.
type Problems []RowError

// Error joins the problems with newlines.
func (p Problems) Error() string { return strings.Join(mapslice.Map(p, RowError.Error), "\n") }

// The rules below are those the API applies to the same fields
// (docs/api.md), so that an imported row is one the API could have made.

var (
	usernameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	roleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	clientIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	// emailDomainRE: a dotted domain with an alphabetic top-level label.
	emailDomainRE = regexp.MustCompile(`^[^.\s][^\s]*\.[a-z]{2,63}$`)
)

const (
	maxRoleName    = 50
	minRoleName    = 2
	maxClientID    = 100
	maxClientName  = 100
	maxEmailLength = 254
)

// textProblem says why s cannot be stored as text by every backend
// (docs/security-model.md, "Untrusted bytes"), or "".
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

func usernameProblem(s string) string {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case n < identity.MinUsernameLength || n > identity.MaxUsernameLength:
		return fmt.Sprintf("%s breaks permiso's username rule: %d to %d characters", strconv.Quote(s), identity.MinUsernameLength, identity.MaxUsernameLength)
	case !usernameRE.MatchString(s):
		return fmt.Sprintf("%s breaks permiso's username rule: only letters, digits, '_' and '-'", strconv.Quote(s))
	}
	return ""
}

func emailProblem(s string) string {
	s = strings.TrimSpace(s)
	bad := func() string { return fmt.Sprintf("%s is not an email address permiso accepts", strconv.Quote(s)) }
	if s == "" || len(s) > maxEmailLength || strings.ContainsAny(s, " \t\r\n<>\"(),;[]\\") {
		return bad()
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return bad()
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "..") || strings.HasSuffix(domain, ".") ||
		!emailDomainRE.MatchString(strings.ToLower(domain)) {
		return bad()
	}
	return ""
}

func roleNameProblem(s string) string {
	n := utf8.RuneCountInString(s)
	if n < minRoleName || n > maxRoleName || !roleNameRE.MatchString(s) {
		return fmt.Sprintf("%s breaks permiso's role name rule: %d to %d letters, digits, '_', '.' or '-', starting with a letter or digit", strconv.Quote(s), minRoleName, maxRoleName)
	}
	return ""
}

func scopeNameProblem(s string) string {
	if _, _, ok := identity.SplitScopeName(s); !ok {
		return fmt.Sprintf("%s breaks permiso's scope name rule: action:resource in lower case (action: letters, digits, '_' or '-', at most %d; resource: letters, digits, '_', '.' or '-', at most %d)", strconv.Quote(s), identity.MaxScopeAction, identity.MaxScopeResource)
	}
	return ""
}

func clientIDProblem(s string) string {
	if s == "" || len(s) > maxClientID || !clientIDRE.MatchString(s) {
		return fmt.Sprintf("%s breaks permiso's client_id rule: 1 to %d letters, digits, '_' and '-'", strconv.Quote(s), maxClientID)
	}
	return ""
}

// allowedIPs turns the original's allowed_ips (a comma list of addresses
// in which '*' stands for any run of characters, never enforced by the
// original) into permiso's list of addresses and CIDR prefixes, which
// permiso enforces. "*" alone, or nothing, allows every address (nil). A
// trailing wildcard over whole IPv4 octets becomes the prefix it means
// ("10.0.*" and "10.0.*.*" are 10.0.0.0/16); any other wildcard is
// refused.
func allowedIPs(s *string) (*string, string) {
	if s == nil {
		return nil, ""
	}
	v := strings.TrimSpace(*s)
	if v == "" || v == "*" {
		return nil, ""
	}
	var out []string
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if !strings.Contains(entry, "*") {
			out = append(out, entry)
			continue
		}
		p, ok := wildcardPrefix(entry)
		if !ok {
			return nil, fmt.Sprintf("entry %s: only a trailing '*' over whole IPv4 octets (10.0.*) can be turned into a CIDR prefix", strconv.Quote(entry))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, ""
	}
	list := strings.Join(out, ",")
	return &list, ""
}

// wildcardPrefix maps "a.b.*" (or "a.b.*.*") to "a.b.0.0/16".
func wildcardPrefix(entry string) (string, bool) {
	parts := strings.Split(entry, ".")
	if len(parts) > 4 {
		return "", false
	}
	var octets []string
	fixed := 0
	for i, p := range parts {
		if p == "*" {
			for _, rest := range parts[i:] {
				if rest != "*" {
					return "", false
				}
			}
			break
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
			return "", false
		}
		octets = append(octets, p)
		fixed++
	}
	if fixed == len(parts) { // no wildcard at all
		return "", false
	}
	for len(octets) < 4 {
		octets = append(octets, "0")
	}
	return strings.Join(octets, ".") + "/" + strconv.Itoa(8*fixed), true
}
