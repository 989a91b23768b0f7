package config

import (
	"fmt"
	"strings"

	"github.com/permiso/permiso/internal/mapslice"
)

// Errors is every configuration problem found at once. Its message lists
// each problem on its own line; errors.Is and errors.As see each element.
type Errors []error

// Error joins the problems with newlines.
func (e Errors) Error() string { return strings.Join(mapslice.Map(e, error.Error), "\n") }

// Unwrap returns the problems, for errors.Is and errors.As.
func (e Errors) Unwrap() []error { return e }

// Vars returns the names of the variables that the problems are about, in
// order, once each (problems not about one variable are skipped).
func (e Errors) Vars() []string {
	var names []string
	seen := map[string]bool{}
	for _, err := range e {
		if ve, ok := err.(*VarError); ok && !seen[ve.Var] {
			seen[ve.Var] = true
			names = append(names, ve.Var)
		}
	}
	return names
}

// VarError is a problem with one variable. Its message starts with the
// variable's name: `PORT: "abc" is not a valid port`. Values of secrets
// are never shown.
type VarError struct {
	// Var is the variable's name, e.g. "PORT" or "JWT_SECRET_KEY_FILE".
	Var string
	// Err describes the problem.
	Err error
}

// Error is "VAR: problem".
func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *VarError) Unwrap() error { return e.Err }

// varErr builds a *VarError with a formatted message.
func varErr(name, format string, a ...any) error {
	return &VarError{Var: name, Err: fmt.Errorf(format, a...)}
}

// valueError is a complaint phrased to follow the offending value: Load
// reports it as `NAME: "value" <msg>`, or `NAME: the value <msg>` for a
// secret. Other errors from a setter are reported as `NAME: <msg>`.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// bad builds a valueError.
func bad(format string, a ...any) error {
	return &valueError{msg: fmt.Sprintf(format, a...)}
}
