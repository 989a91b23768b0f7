package oauth2

import (
	"errors"
	"net/http"
	"time"

	"github.com/permiso/permiso"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2): an error code, a
// caller-safe description and the HTTP status to answer with, plus what the
// transport needs to add headers and fields.
//
// The package-level values (ErrInvalidRequest, ...) are templates that are
// never modified: every With* method returns a modified copy, as fosite's
// RFC6749Error does, so a handler can never change the error another
// request sees.
type Error struct {
	// Code is the RFC 6749 §5.2 "error" value (or one of permiso's
	// additional codes such as "account_locked").
	Code string
	// Description is the "error_description": human-readable and safe to
	// show (RFC 6749 §5.2 restricts it to %x20-21 / %x23-5B / %x5D-7E).
	Description string
	// Status is the HTTP status code of the response.
	Status int
	// LockedUntil is sent as "locked_until" with account_locked.
	LockedUntil *time.Time
	// MFAToken is sent as "mfa_token" with mfa_required and
	// mfa_enrollment_required (docs/mfa.md, "Sign-in").
	MFAToken string
	// RetryAfter, when positive, is sent as the Retry-After header
	// (rate_limit_exceeded, temporarily_unavailable).
	RetryAfter time.Duration
	// RateLimit, with rate_limit_exceeded, is the state of the limit that
	// refused the request, for the RateLimit-* response headers.
	RateLimit *permiso.LimitResult
	// BasicChallenge asks for "WWW-Authenticate: Basic" on the response:
	// RFC 6749 §5.2 requires it on a 401 invalid_client when the client
	// attempted to authenticate with the Authorization header.
	BasicChallenge bool

	// cause is kept for logs and errors.Is/As; it is never shown.
	cause error
	// logged is set on the copy Service.oauthError returns once it logged
	// a server error's cause (Logged).
	logged bool
}

// Logged reports whether the service already logged this error's cause
// (a 5xx, with the request id and, at the token endpoint, the grant
// type): the HTTP layer answers it without logging it a second time.
func (e *Error) Logged() bool { return e.logged }

// RFC 6749 §5.2 errors, and the additional errors of permiso's token
// endpoint (docs/oauth.md, "Error codes"). Use the With* methods to derive a specific error;
// never modify these values.
var (
	ErrInvalidRequest = &Error{Code: "invalid_request", Status: http.StatusBadRequest,
		Description: "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed"}
	ErrInvalidClient = &Error{Code: "invalid_client", Status: http.StatusUnauthorized,
		Description: "Client authentication failed"}
	ErrInvalidGrant = &Error{Code: "invalid_grant", Status: http.StatusBadRequest,
		Description: "The provided authorization grant is invalid, expired or revoked"}
	ErrUnauthorizedClient = &Error{Code: "unauthorized_client", Status: http.StatusBadRequest,
		Description: "The client is not authorized to use this grant type"}
	ErrUnsupportedGrantType = &Error{Code: "unsupported_grant_type", Status: http.StatusBadRequest,
		Description: "The authorization grant type is not supported"}
	ErrInvalidScope = &Error{Code: "invalid_scope", Status: http.StatusBadRequest,
		Description: "The requested scope is invalid, unknown or malformed"}
	ErrAccountDisabled = &Error{Code: "account_disabled", Status: http.StatusForbidden,
		Description: "User account is disabled"}
	ErrPasswordExpired = &Error{Code: "password_expired", Status: http.StatusForbidden,
		Description: "Password has expired and must be changed"}
	ErrAccountLocked = &Error{Code: "account_locked", Status: http.StatusLocked,
		Description: "Account is temporarily locked due to too many failed login attempts"}
	// ErrTooManyAttempts: as many password checks for the account are in
	// flight as MAX_LOGIN_ATTEMPTS admits; retry after them (429 with
	// Retry-After, RFC 6585 §4). Nothing was checked, counted or locked.
	ErrTooManyAttempts = &Error{Code: "too_many_attempts", Status: http.StatusTooManyRequests,
		Description: "Too many login attempts for this account are in progress; retry shortly", RetryAfter: permiso.LockoutRetryAfter}
	// ErrMFARequired: the password was right and the user has a second
	// factor; the answer carries the mfa_token to exchange with a code
	// (GrantMFA).
	ErrMFARequired = &Error{Code: "mfa_required", Status: http.StatusForbidden,
		Description: "A second factor is required: send the mfa_token with an otp or a recovery_code"}
	// ErrMFAEnrollmentRequired: the password was right, the user's roles
	// require a second factor (MFA_REQUIRED_ROLES) and none is enrolled;
	// the mfa_token lets the user enroll one, then exchange it with a code.
	ErrMFAEnrollmentRequired = &Error{Code: "mfa_enrollment_required", Status: http.StatusForbidden,
		Description: "A second factor is required and none is enrolled: enroll one with the mfa_token as bearer, then send it with an otp"}
	ErrRateLimited = &Error{Code: "rate_limit_exceeded", Status: http.StatusTooManyRequests,
		Description: "Too many requests"}
	ErrTemporarilyUnavailable = &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable,
		Description: "The server is temporarily unable to handle the request", RetryAfter: time.Second}
	ErrServerError = &Error{Code: "server_error", Status: http.StatusInternalServerError,
		Description: "An internal error occurred"}
)

// Error implements error. The cause is included for logs.
func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause given to WithCause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, ErrInvalidGrant) holds for every invalid_grant whatever
// its description.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func (e *Error) clone() *Error {
	c := *e
	return &c
}

// WithDescription returns a copy of e with the given error_description.
func (e *Error) WithDescription(description string) *Error {
	c := e.clone()
	c.Description = description
	return c
}

// WithCause returns a copy of e that wraps cause (for logs and errors.Is;
// never shown to the caller).
func (e *Error) WithCause(cause error) *Error {
	c := e.clone()
	c.cause = cause
	return c
}

// WithLockedUntil returns a copy of e carrying locked_until.
func (e *Error) WithLockedUntil(t time.Time) *Error {
	c := e.clone()
	u := t.UTC()
	c.LockedUntil = &u
	return c
}

// WithMFAToken returns a copy of e carrying mfa_token.
func (e *Error) WithMFAToken(token string) *Error {
	c := e.clone()
	c.MFAToken = token
	return c
}

// WithRetryAfter returns a copy of e with a Retry-After hint.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := e.clone()
	c.RetryAfter = d
	return c
}

// WithRateLimit returns a copy of e carrying the state of the limit that
// refused the request, and its RetryAfter as the Retry-After hint
// (rate_limit_exceeded, RFC 6585 §4).
func (e *Error) WithRateLimit(r permiso.LimitResult) *Error {
	c := e.clone()
	c.RateLimit = &r
	c.RetryAfter = r.RetryAfter
	return c
}

// WithBasicChallenge returns a copy of e that asks for a
// "WWW-Authenticate: Basic" header (RFC 6749 §5.2, invalid_client).
func (e *Error) WithBasicChallenge() *Error {
	c := e.clone()
	c.BasicChallenge = true
	return c
}

// AsError converts any error returned by this package into the *Error to
// answer with on an OAuth endpoint:
//   - an *Error in the chain is returned as is;
//   - a permiso EUNAVAILABLE error becomes temporarily_unavailable (503,
//     Retry-After 1 s), ERATELIMIT rate_limit_exceeded (429), and EINVALID,
//     EINVALIDTOKEN or EUNAUTHORIZED invalid_request with its caller-safe
//     message;
//   - anything else becomes server_error (500) with a generic description,
//     wrapping the original for logs. Internal text never reaches the
//     description.
//
// AsError(nil) is nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	var pe *permiso.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case permiso.EUNAVAILABLE:
			return ErrTemporarilyUnavailable.WithCause(err)
		case permiso.ERATELIMIT:
			return ErrRateLimited.WithCause(err)
		case permiso.EINVALID, permiso.EINVALIDTOKEN, permiso.EUNAUTHORIZED:
			return ErrInvalidRequest.WithDescription(permiso.ErrorMessage(pe)).WithCause(err)
		}
	}
	return ErrServerError.WithCause(err)
}
