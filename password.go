package permiso

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PasswordPolicy is the rule set of the PASSWORD_* settings.
type PasswordPolicy struct {
	MinLength        int
	MaxLength        int
	RequireUppercase bool
	RequireLowercase bool
	RequireDigits    bool
	RequireSpecial   bool
	// Common, when set, reports whether a password is a well-known one.
	Common func(password string) bool
}

// Check returns every rule that password breaks (empty when it is
// acceptable). Length counts Unicode code points. username, when not empty,
// must not appear in the password (case-insensitively).
func (p PasswordPolicy) Check(password, username string) []FieldError {
	var errs []FieldError
	add := func(format string, args ...any) {
		errs = append(errs, FieldError{Field: "password", Message: fmt.Sprintf(format, args...)})
	}
	n := utf8.RuneCountInString(password)
	if p.MinLength > 0 && n < p.MinLength {
		add("Password must be at least %d characters long", p.MinLength)
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		add("Password must be at most %d characters long", p.MaxLength)
	}
	var upper, lower, digit, special bool
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || r == ' ':
			special = true
		}
	}
	if p.RequireUppercase && !upper {
		add("Password must contain at least one uppercase letter")
	}
	if p.RequireLowercase && !lower {
		add("Password must contain at least one lowercase letter")
	}
	if p.RequireDigits && !digit {
		add("Password must contain at least one digit")
	}
	if p.RequireSpecial && !special {
		add("Password must contain at least one special character")
	}
	if u := strings.ToLower(strings.TrimSpace(username)); len(u) >= 3 && strings.Contains(strings.ToLower(password), u) {
		add("Password must not contain the username")
	}
	if p.Common != nil && p.Common(password) {
		add("Password is too common")
	}
	return errs
}
