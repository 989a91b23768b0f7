package permiso

import (
	"context"
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. The HTTP layer maps each
// code to one status in a single table; storage adapters map driver errors
// to the sentinels below.
type Code string

// Error codes. They are part of the public API contract (docs/api.md).
const (
	ENOTFOUND     Code = "not_found"
	EEXISTS       Code = "already_exists"
	ECONFLICT     Code = "conflict"
	EINVALID      Code = "validation_error"
	EUNAUTHORIZED Code = "not_authenticated"
	// EINVALIDTOKEN: a bearer token was presented but is expired, revoked,
	// malformed or of the wrong kind (RFC 6750 §3.1 invalid_token).
	EINVALIDTOKEN Code = "invalid_token"
	EFORBIDDEN    Code = "forbidden"
	// EINSUFFICIENTSCOPE: the token lacks a scope the route requires
	// (RFC 6750 §3.1 insufficient_scope).
	EINSUFFICIENTSCOPE Code = "insufficient_scope"
	ERATELIMIT         Code = "rate_limit_exceeded"
	EUNAVAILABLE       Code = "unavailable"
	EINTERNAL          Code = "internal_error"

	// EBADREQUEST: the request is well-formed but cannot be carried out as
	// asked: it names roles or scopes that do not exist, or gives a wrong
	// current password (HTTP 400).
	EBADREQUEST Code = "bad_request"
	// EBADACTIONTOKEN: a mailed single-use token (password reset, email
	// verification) is unknown, used, expired or no longer matches the
	// account (HTTP 400 invalid_token, as the original service intended).
	EBADACTIONTOKEN Code = "invalid_action_token"
	// ELOCKED: the account is locked after repeated failed password
	// checks (docs/abuse-resistance.md, "Lockout"; HTTP 423 account_locked).
	ELOCKED Code = "account_locked"
	// ETOOMANYATTEMPTS: as many password checks for the account are in
	// flight as the lockout allows attempts; retry in a moment (HTTP 429
	// too_many_attempts with Retry-After, docs/abuse-resistance.md). Not
	// a failed attempt, and not a lock.
	ETOOMANYATTEMPTS Code = "too_many_attempts"
	// EINVALIDCODE: a second-factor code (a one-time password or a
	// recovery code) is wrong, expired or already used (HTTP 400
	// invalid_code, docs/mfa.md). It counts as a failed sign-in attempt.
	EINVALIDCODE Code = "invalid_code"
)

// Error is an application error with a stable code and a message that is
// safe to show to the caller. Wrapped causes are never shown.
type Error struct {
	Code    Code
	Message string
	// Details names each bad field for EINVALID errors.
	Details []FieldError
	cause   error
}

// FieldError describes one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the wrapped cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, ErrNotFound) holds for every not-found error whatever its
// message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t == e || (t.Message == "" && t.Code == e.Code)
}

// Sentinel errors. Compare with errors.Is; they match any *Error of the
// same code.
var (
	ErrNotFound      = &Error{Code: ENOTFOUND}
	ErrAlreadyExists = &Error{Code: EEXISTS}
	ErrConflict      = &Error{Code: ECONFLICT}
	ErrInvalid       = &Error{Code: EINVALID}
	ErrUnavailable   = &Error{Code: EUNAVAILABLE}
)

// Errorf returns an *Error with the given code and a formatted, caller-safe
// message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and caller-safe message that
// wraps cause. The cause is kept for logs and errors.Is, never shown.
func Wrap(code Code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, cause: cause}
}

// Invalid returns an EINVALID error listing every bad field.
func Invalid(message string, details ...FieldError) *Error {
	return &Error{Code: EINVALID, Message: message, Details: details}
}

// ErrorCode returns the code of err: the code of the first *Error in its
// chain, or EINTERNAL for any other non-nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ClientGone reports whether err is the cancellation of a request whose
// client went away: ctx, the request's context, was cancelled with no
// cause but context.Canceled (net/http cancels a request's context so
// when its connection closes or its HTTP/2 stream is reset), and err
// wraps context.Canceled. A deadline (context.DeadlineExceeded), a
// cancellation with a cause of its own (the server cutting requests off
// at the end of a shutdown, cmd/permiso), or an error that does not wrap
// the cancellation (a database that failed as the client left) is not
// the client's doing and stays a server error (docs/deployment.md,
// "Monitoring").
func ClientGone(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) && context.Cause(ctx) == context.Canceled
}

// ErrorMessage returns the caller-safe message of err. Errors that are not
// *Error produce a generic message so internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.Code == EINTERNAL {
		return "An internal error occurred"
	}
	if e.Message != "" {
		return e.Message
	}
	switch e.Code {
	case ENOTFOUND:
		return "Resource not found"
	case EEXISTS:
		return "Resource already exists"
	case ECONFLICT:
		return "Conflicting request"
	case EINVALID:
		return "Request validation failed"
	case EUNAVAILABLE:
		return "Service temporarily unavailable"
	}
	return string(e.Code)
}
