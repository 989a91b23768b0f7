package permiso

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// User is a person who logs in with a username (or email) and password.
type User struct {
	ID           uuid.UUID
	Username     string // normalized: lower case
	Email        string // normalized: lower case
	PasswordHash string // argon2id PHC string; never leaves the server
	FirstName    *string
	LastName     *string
	DisplayName  *string
	Bio          *string
	IsActive     bool
	IsVerified   bool
	IsSuperuser  bool
	LastLogin    *time.Time
	// FailedLoginAttempts and LockedUntil mirror the lockout state for
	// reporting; the authoritative counters live in the Limiter/Lockout
	// adapters so they can be shared across instances.
	FailedLoginAttempts int
	LockedUntil         *time.Time
	PasswordChangedAt   time.Time
	// TokensRevokedBefore invalidates every access token of the user issued
	// before it (password change, disable, logout-all, sessions revoke-all).
	TokensRevokedBefore *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time

	// Roles is filled by Get/List calls of the UserStore, with each role's
	// scopes, ordered by role name.
	Roles []Role
}

// FullName follows the original service: "first last" when both are set,
// else the display name, else the username.
func (u User) FullName() string {
	if u.FirstName != nil && u.LastName != nil && *u.FirstName != "" && *u.LastName != "" {
		return *u.FirstName + " " + *u.LastName
	}
	if u.DisplayName != nil && *u.DisplayName != "" {
		return *u.DisplayName
	}
	return u.Username
}

// ScopeNames returns the sorted, de-duplicated union of the scopes of the
// user's roles.
func (u User) ScopeNames() []string {
	var names []string
	for _, r := range u.Roles {
		for _, s := range r.Scopes {
			names = append(names, s.Name)
		}
	}
	return SortedUnique(names)
}

// RoleNames returns the names of the user's roles.
func (u User) RoleNames() []string {
	names := make([]string, 0, len(u.Roles))
	for _, r := range u.Roles {
		names = append(names, r.Name)
	}
	return SortedUnique(names)
}

// HasRole reports whether the user holds the role with the given name.
func (u User) HasRole(name string) bool {
	for _, r := range u.Roles {
		if r.Name == name {
			return true
		}
	}
	return false
}

// IsLocked reports whether the account is locked at now.
func (u User) IsLocked(now time.Time) bool {
	return u.LockedUntil != nil && now.Before(*u.LockedUntil)
}

// NormalizeUsername returns the canonical form in which usernames are stored
// and compared: trimmed and lower case.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormalizeEmail returns the canonical form in which emails are stored and
// compared: trimmed and lower case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// UserFilter selects and pages users. Results are ordered by created_at, id.
type UserFilter struct {
	// Search matches (case-insensitively) a substring of username, email,
	// first, last or display name.
	Search     string
	IsActive   *bool
	IsVerified *bool
	RoleID     *uuid.UUID
	Offset     int
	Limit      int // 0 means no limit
}

// UserStats are counts over all users at a point in time.
type UserStats struct {
	Total    int
	Active   int
	Verified int
	Locked   int
	// CreatedSince counts users created at or after the time given.
	CreatedSince int
}

// PasswordHistoryEntry is a previous password hash of a user.
type PasswordHistoryEntry struct {
	ID           uuid.UUID
	UserID       uuid.UUID
	PasswordHash string
	CreatedAt    time.Time
}

// UserStore persists users, their roles and their password history.
//
// Every method takes a context first and returns ErrNotFound, ErrAlreadyExists
// or ErrConflict (matched with errors.Is) for the corresponding conditions.
// Username and email are unique case-insensitively and looked up that way.
type UserStore interface {
	// CreateUser inserts u (u.ID is generated when zero) and links roleIDs in
	// one transaction. An unknown role id yields ErrNotFound and nothing is
	// written; a taken username or email yields ErrAlreadyExists.
	CreateUser(ctx context.Context, u User, roleIDs []uuid.UUID) (User, error)
	GetUser(ctx context.Context, id uuid.UUID) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// GetUserByLogin finds a user whose username or email equals login
	// (case-insensitively).
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// UpdateUser reads the user, applies fn and writes the result, all in
	// one transaction, so concurrent updates of one row never lose writes.
	// fn must not change ID or CreatedAt. If fn returns an error nothing is
	// written and that error is returned.
	UpdateUser(ctx context.Context, id uuid.UUID, fn func(*User) error) (User, error)
	// UpdateUserWithRoles is UpdateUser that also replaces the user's roles
	// with roleIDs in the same transaction: an unknown role id yields
	// ErrNotFound and nothing at all is written.
	UpdateUserWithRoles(ctx context.Context, id uuid.UUID, fn func(*User) error, roleIDs []uuid.UUID) (User, error)
	DeleteUser(ctx context.Context, id uuid.UUID) error
	ListUsers(ctx context.Context, f UserFilter) ([]User, int, error)
	// SetUserRoles replaces the user's roles in one transaction; an unknown
	// role id yields ErrNotFound and nothing changes.
	SetUserRoles(ctx context.Context, userID uuid.UUID, roleIDs []uuid.UUID) error
	UserStats(ctx context.Context, now, createdSince time.Time) (UserStats, error)

	// ChangePassword stores newHash as the user's password, records the old
	// hash in the password history, keeps only the newest keep history
	// entries, and sets PasswordChangedAt = now; one transaction.
	ChangePassword(ctx context.Context, userID uuid.UUID, newHash string, now time.Time, keep int) error
	// ChangePasswordIfCurrent is ChangePassword as a compare-and-swap: it
	// changes the password only while the stored hash is still
	// expectedOldHash (the one the caller verified the current password
	// against). Otherwise it returns ErrConflict and writes nothing, so a
	// request that verified the old password cannot overwrite a concurrent
	// change.
	ChangePasswordIfCurrent(ctx context.Context, userID uuid.UUID, expectedOldHash, newHash string, now time.Time, keep int) error
	// PasswordHistory returns up to limit previous hashes, newest first.
	PasswordHistory(ctx context.Context, userID uuid.UUID, limit int) ([]PasswordHistoryEntry, error)
}
