package identity

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Field limits (the original service's UserCreate, RoleCreate and
// ScopeCreate models).
const (
	MinUsernameLength = 3
	MaxUsernameLength = 50
	MaxEmailLength    = 254
	MaxNameLength     = 100
	MaxBioLength      = 1000
	MinRoleNameLength = 2
	MaxRoleNameLength = 50
	MaxDescription    = 500
	MaxScopeName      = 100
	MaxScopeAction    = 20
	MaxScopeResource  = 50
	// MaxIDs bounds role_ids and scope_ids lists.
	MaxIDs = 100
)

var (
	usernameRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	roleNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	actionRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	resourceRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	emailDotted = regexp.MustCompile(`^[^.\s][^\s]*\.[a-z]{2,63}$`)
)

// problems collects field errors.
type problems []permiso.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, permiso.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil or one EINVALID error listing every problem.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return permiso.Invalid("Request validation failed", p...)
}

// NormalizeUsername validates a username (3-50 characters of
// [a-zA-Z0-9_-]) and returns its stored form, lower case.
func (p *problems) username(field, s string) string {
	s = p.name(field, s, "Username", MinUsernameLength, MaxUsernameLength, usernameRE,
		"may contain only letters, digits, '_' and '-'")
	return permiso.NormalizeUsername(s)
}

// name validates s, trimmed, as the name (what) of field: required,
// minLen to maxLen characters, matching re; a mismatch is reported as
// what followed by charset. It returns s trimmed.
func (p *problems) name(field, s, what string, minLen, maxLen int, re *regexp.Regexp, charset string) string {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case s == "":
		p.add(field, "%s is required", what)
	case n < minLen || n > maxLen:
		p.add(field, "%s must be %d to %d characters long", what, minLen, maxLen)
	case !re.MatchString(s):
		p.add(field, "%s %s", what, charset)
	}
	return s
}

// email validates an address (a bare addr-spec whose domain has a dot and
// a top-level label of letters) and returns its stored form, lower case.
func (p *problems) email(field, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		p.add(field, "Email is required")
		return ""
	}
	if !validEmail(s) {
		p.add(field, "Email is not a valid address")
	}
	return permiso.NormalizeEmail(s)
}

func validEmail(s string) bool {
	if len(s) > MaxEmailLength || strings.ContainsAny(s, " \t\r\n<>\"(),;[]\\") || !permiso.ValidText(s) {
		return false
	}
	// No invisible or blank character (zero-width and other format
	// characters, line and paragraph separators, no-break spaces): an
	// address with one looks like another user's (docs/security-model.md,
	// "Untrusted bytes").
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) }) >= 0 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "..") || strings.HasSuffix(domain, ".") {
		return false
	}
	return emailDotted.MatchString(strings.ToLower(domain))
}

// text validates an optional free-text field of at most max characters:
// stored text is valid UTF-8 without NUL or other control characters than
// tab, line feed and carriage return (permiso.ValidText,
// docs/security-model.md "Untrusted bytes"), on every backend alike.
func (p *problems) text(field string, s *string, max int) {
	if s != nil && utf8.RuneCountInString(*s) > max {
		p.add(field, "Must be at most %d characters long", max)
	}
	switch {
	case s == nil:
	case !utf8.ValidString(*s):
		p.add(field, "Must be valid UTF-8")
	case !permiso.ValidText(*s):
		p.add(field, "Must not contain NUL or control characters")
	}
}

// optIDs is ids of the list raw points to, nil when none was sent (raw
// nil: the links stay as they are).
func (p *problems) optIDs(field string, raw *[]string) []uuid.UUID {
	if raw == nil {
		return nil
	}
	return p.ids(field, *raw)
}

// ids parses a list of UUID strings (role_ids, scope_ids). Malformed
// entries are reported by index; duplicates are dropped.
func (p *problems) ids(field string, raw []string) []uuid.UUID {
	if len(raw) > MaxIDs {
		p.add(field, "At most %d ids", MaxIDs)
		return nil
	}
	out := make([]uuid.UUID, 0, len(raw))
	seen := make(map[uuid.UUID]bool, len(raw))
	for i, s := range raw {
		id, err := uuid.Parse(strings.TrimSpace(s))
		if err != nil {
			p.add(fmt.Sprintf("%s[%d]", field, i), "Not a valid UUID")
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// requiredIDs validates raw, the UUID strings of a list that replaces
// another: it must be given (empty is fine) and every entry must parse.
func requiredIDs(field string, raw []string) ([]uuid.UUID, error) {
	var p problems
	if raw == nil {
		p.add(field, "Field required")
	}
	ids := p.ids(field, raw)
	return ids, p.err()
}

// roleName validates a role name: 2-50 characters, letters, digits and
// "_.-", starting with a letter or digit.
func (p *problems) roleName(field, s string) string {
	return p.name(field, s, "Name", MinRoleNameLength, MaxRoleNameLength, roleNameRE,
		"may contain only letters, digits, '_', '.' and '-', and must start with a letter or digit")
}

// SplitScopeName splits a scope name "action:resource" and reports
// whether it is valid: action 1-20 characters of [a-z0-9_-] starting with
// a letter, resource 1-50 characters of [a-z0-9_.-] starting with a letter
// or digit. Every valid name is an RFC 6749 scope-token.
func SplitScopeName(name string) (action, resource string, ok bool) {
	action, resource, found := strings.Cut(name, ":")
	if !found || len(name) > MaxScopeName ||
		len(action) > MaxScopeAction || !actionRE.MatchString(action) ||
		len(resource) > MaxScopeResource || !resourceRE.MatchString(resource) {
		return "", "", false
	}
	return action, resource, true
}

// scopeName validates a scope given by name and/or action and resource
// and returns the name. When all three are given they must agree.
func (p *problems) scopeName(name, action, resource string) string {
	name, action, resource = strings.TrimSpace(name), strings.TrimSpace(action), strings.TrimSpace(resource)
	if name == "" {
		if action == "" || resource == "" {
			p.add("name", "Name is required (or both action and resource)")
			return ""
		}
		name = action + ":" + resource
	}
	a, r, ok := SplitScopeName(name)
	if !ok {
		p.add("name", "Scope names have the form action:resource (action: lower-case letters, digits, '_' or '-', at most %d; resource: lower-case letters, digits, '_', '.' or '-', at most %d)", MaxScopeAction, MaxScopeResource)
		return name
	}
	if action != "" && action != a {
		p.add("action", "Does not match the name's action %q", a)
	}
	if resource != "" && resource != r {
		p.add("resource", "Does not match the name's resource %q", r)
	}
	return name
}
