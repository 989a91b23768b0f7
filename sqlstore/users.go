package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Users describes the users table: one Col per stored field of
// permiso.User.
var Users = NewTable("users", "u", Fields[permiso.User]([]string{"id", "created_at"},
	"id", "username", "email", "password_hash", "first_name", "last_name", "display_name", "bio",
	"is_active", "is_verified", "is_superuser", "last_login", "failed_login_attempts", "locked_until",
	"password_changed_at", "tokens_revoked_before", "created_at", "updated_at")...)

func (s *Store) userErr(op string, err error) error {
	return s.errOf(err, op, UserMessages, false, RoleMessages.NotFound)
}

// userDefaults fills a new user's id and zero times.
func userDefaults(u *permiso.User) {
	if u.ID == uuid.Nil {
		u.ID = newID()
	}
	createdTimes(&u.CreatedAt, &u.UpdatedAt)
	if u.PasswordChangedAt.IsZero() {
		u.PasswordChangedAt = u.CreatedAt
	}
}

// CreateUser inserts u and links roleIDs in one transaction. ID is
// generated when zero; CreatedAt, UpdatedAt and PasswordChangedAt default
// to now when zero. An unknown role id yields ErrNotFound and nothing is
// written; a taken username or email ErrAlreadyExists.
func (s *Store) CreateUser(ctx context.Context, u permiso.User, roleIDs []uuid.UUID) (permiso.User, error) {
	userDefaults(&u)
	return createLinked(ctx, s, Users, &u, userRoles, u.ID, roleIDs,
		func(err error) error { return s.userErr("create user", err) },
		func(q Querier) (permiso.User, error) { return s.getUser(ctx, q, userByID, u.ID) })
}

// The lookups of one user, built once.
var (
	userByID       = Users.Select() + " WHERE u.id = ?"
	userByUsername = Users.Select() + " WHERE lower(u.username) = ?"
	userByEmail    = Users.Select() + " WHERE lower(u.email) = ?"
	userByLogin    = Users.Select() + ` WHERE u.id = (SELECT id FROM users WHERE lower(username) = ?1 OR lower(email) = ?1
		ORDER BY lower(username) = ?1 DESC LIMIT 1)`
)

// userRolesSQL selects Roles.List() and the user id of the roles of a list
// of users, ordered by name; its one argument is Dialect.IDs of the users.
func userRolesSQL(d Dialect) string {
	return "SELECT " + Roles.List() + ", l.user_id FROM user_roles AS l JOIN roles AS r ON r.id = l.role_id WHERE " +
		d.InIDs("l.user_id") + " ORDER BY r.name, r.id"
}

// getUser reads the one user that query (userByID, ...) selects, with its
// roles and their scopes.
func (s *Store) getUser(ctx context.Context, q Querier, query string, args ...any) (permiso.User, error) {
	u, err := Users.Scan(s.d, s.queryRow(ctx, q, query, args...))
	if err != nil {
		return permiso.User{}, s.userErr("get user", err)
	}
	roles, err := s.userRoles(ctx, q, []uuid.UUID{u.ID})
	if err != nil {
		return permiso.User{}, err
	}
	u.Roles = roles[u.ID]
	return u, nil
}

// userRoles returns the roles (with scopes, ordered by name) of each user
// in ids.
func (s *Store) userRoles(ctx context.Context, q Querier, ids []uuid.UUID) (map[uuid.UUID][]permiso.Role, error) {
	out := make(map[uuid.UUID][]permiso.Role, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	type link struct {
		user uuid.UUID
		role permiso.Role
	}
	links, err := scanAll(ctx, s, q, func(r Row) (link, error) {
		var l link
		var err error
		l.role, err = Roles.Scan(s.d, r, &l.user)
		return l, err
	}, s.qs.userRoles, s.d.IDs(uniqueIDs(ids)))
	if err != nil {
		return nil, s.errOf(err, "load user roles", Messages{}, false, "")
	}
	err = linkScopes(ctx, s, q, s.qs.roleScopes, links, func(l *link) (uuid.UUID, *[]permiso.Scope) { return l.role.ID, &l.role.Scopes })
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		out[l.user] = append(out[l.user], l.role)
	}
	return out, nil
}

// GetUser returns the user with its roles and their scopes.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	return readOne(ctx, s, (*Store).getUser, userByID, id)
}

// GetUserByUsername finds a user by username, case-insensitively.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (permiso.User, error) {
	return readOne(ctx, s, (*Store).getUser, userByUsername, permiso.NormalizeUsername(username))
}

// GetUserByEmail finds a user by email, case-insensitively.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (permiso.User, error) {
	return readOne(ctx, s, (*Store).getUser, userByEmail, permiso.NormalizeEmail(email))
}

// GetUserByLogin finds a user whose username or email equals login,
// case-insensitively; a username match wins over an email match.
func (s *Store) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	return readOne(ctx, s, (*Store).getUser, userByLogin, permiso.NormalizeUsername(login))
}

// UpdateUser reads the user (locked), applies fn and writes the result in
// one transaction. ID and CreatedAt are never changed; UpdatedAt is
// written as fn leaves it (zero: the current time).
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error) (permiso.User, error) {
	return s.updateUser(ctx, id, fn, nil)
}

// UpdateUserWithRoles updates the user and replaces its roles in one
// transaction.
func (s *Store) UpdateUserWithRoles(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error, roleIDs []uuid.UUID) (permiso.User, error) {
	return s.updateUser(ctx, id, fn, linkIDs(roleIDs))
}

// updateUser applies fn and, when roleIDs is not nil, replaces the roles
// (before fn, which sees them), in one transaction.
func (s *Store) updateUser(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error, roleIDs []uuid.UUID) (permiso.User, error) {
	return writeRead(ctx, s, func(q Querier) error {
		lock := s.d.ForUpdate()
		if roleIDs != nil {
			if err := s.replaceLinks(ctx, q, userRoles, id, roleIDs, true); err != nil {
				return err
			}
			lock = ""
		}
		read := func(q Querier) (permiso.User, error) { return s.getUser(ctx, q, userByID+lock, id) }
		return updateRow(ctx, s, q, Users, id, read, fn, "update user", s.userErr)
	}, func(q Querier) (permiso.User, error) { return s.getUser(ctx, q, userByID, id) })
}

// DeleteUser removes the user; its sessions, refresh tokens, password
// history, action tokens and role links go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID) error {
	return s.deleteByID(ctx, "users", "delete user", UserMessages, id)
}

// ListUsers returns one page of the users matching f, ordered by
// created_at, id, and the number of all matching users.
func (s *Store) ListUsers(ctx context.Context, f permiso.UserFilter) ([]permiso.User, int, error) {
	var w where
	w.search(strings.TrimSpace(f.Search), "u.username", "u.email", "coalesce(u.first_name, '')",
		"coalesce(u.last_name, '')", "coalesce(u.display_name, '')")
	addSet(&w, "u.is_active = ?", f.IsActive)
	addSet(&w, "u.is_verified = ?", f.IsVerified)
	addSet(&w, "EXISTS (SELECT 1 FROM user_roles AS ur WHERE ur.user_id = u.id AND ur.role_id = ?)", f.RoleID)
	return listPage(ctx, s, Users.From(), Users.Select(), w, "u.created_at, u.id", f.Offset, f.Limit,
		func(err error) error { return s.userErr("count users", err) },
		func(ctx context.Context, q Querier, query string, args ...any) ([]permiso.User, error) {
			users, err := selectAll(ctx, s, q, Users, query, args...)
			if err != nil {
				return nil, s.userErr("list users", err)
			}
			roles, err := s.userRoles(ctx, q, idsOf(users, func(u *permiso.User) uuid.UUID { return u.ID }))
			if err != nil {
				return nil, err
			}
			for i := range users {
				users[i].Roles = roles[users[i].ID]
			}
			return users, nil
		})
}

// SetUserRoles replaces the user's roles in one transaction; an unknown
// user or role id yields ErrNotFound and nothing changes.
func (s *Store) SetUserRoles(ctx context.Context, userID uuid.UUID, roleIDs []uuid.UUID) error {
	return s.c.Write(ctx, func(q Querier) error { return s.replaceLinks(ctx, q, userRoles, userID, roleIDs, true) })
}

// UserStats counts users at now; CreatedSince counts those created at or
// after createdSince.
func (s *Store) UserStats(ctx context.Context, now, createdSince time.Time) (permiso.UserStats, error) {
	var st permiso.UserStats
	err := s.queryRow(ctx, s.c.Reader(), `SELECT count(*),
		count(CASE WHEN is_active THEN 1 END),
		count(CASE WHEN is_verified THEN 1 END),
		count(CASE WHEN locked_until IS NOT NULL AND locked_until > ?1 THEN 1 END),
		count(CASE WHEN created_at >= ?2 THEN 1 END)
		FROM users`, s.d.Time(now), s.d.Time(createdSince)).
		Scan(&st.Total, &st.Active, &st.Verified, &st.Locked, &st.CreatedSince)
	if err != nil {
		return st, s.userErr("user stats", err)
	}
	return st, nil
}

// ChangePassword stores newHash, records the old hash in the history,
// keeps only the newest keep entries (keep <= 0 keeps none) and sets
// PasswordChangedAt = now, in one transaction.
func (s *Store) ChangePassword(ctx context.Context, userID uuid.UUID, newHash string, now time.Time, keep int) error {
	return s.c.Write(ctx, func(q Querier) error {
		var old string
		err := s.queryRow(ctx, q, "SELECT password_hash FROM users WHERE id = ?"+s.d.ForUpdate(), userID).Scan(&old)
		if err != nil {
			return s.userErr("change password", err)
		}
		return s.replacePassword(ctx, q, userID, old, newHash, now, keep)
	})
}

// replacePassword writes newHash in place of old (read, locked, by the
// caller's transaction), records old in the history and prunes it.
func (s *Store) replacePassword(ctx context.Context, q Querier, userID uuid.UUID, old, newHash string, now time.Time, keep int) error {
	at := s.d.Time(now)
	if _, err := s.exec(ctx, q, "INSERT INTO password_history (id, user_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
		newID(), userID, old, at); err != nil {
		return s.userErr("change password", err)
	}
	if _, err := s.exec(ctx, q, "UPDATE users SET password_hash = ?, password_changed_at = ?2, updated_at = ?2 WHERE id = ?3",
		newHash, at, userID); err != nil {
		return s.userErr("change password", err)
	}
	if _, err := s.exec(ctx, q, `DELETE FROM password_history WHERE user_id = ?1 AND id NOT IN (
			SELECT id FROM password_history WHERE user_id = ?1
			ORDER BY created_at DESC, id DESC LIMIT ?2)`, userID, max(keep, 0)); err != nil {
		return s.userErr("prune password history", err)
	}
	return nil
}

// ChangePasswordIfCurrent is ChangePassword as a compare-and-swap: it
// writes only while the stored hash is still expectedOldHash, and returns
// ErrConflict otherwise, changing nothing.
func (s *Store) ChangePasswordIfCurrent(ctx context.Context, userID uuid.UUID, expectedOldHash, newHash string, now time.Time, keep int) error {
	return s.c.Write(ctx, func(q Querier) error {
		var old string
		err := s.queryRow(ctx, q, "SELECT password_hash FROM users WHERE id = ?"+s.d.ForUpdate(), userID).Scan(&old)
		if err != nil {
			return s.userErr("change password", err)
		}
		if old != expectedOldHash {
			return permiso.Errorf(permiso.ECONFLICT, "%s", PasswordChangedMessage)
		}
		return s.replacePassword(ctx, q, userID, old, newHash, now, keep)
	})
}

// PasswordHistory returns up to limit previous hashes of the user, newest
// first; limit 0 means all of them.
func (s *Store) PasswordHistory(ctx context.Context, userID uuid.UUID, limit int) ([]permiso.PasswordHistoryEntry, error) {
	query, args := page(`SELECT id, user_id, password_hash, created_at FROM password_history
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, []any{userID}, 0, limit)
	out, err := scanAll(ctx, s, s.c.Reader(), func(r Row) (permiso.PasswordHistoryEntry, error) {
		var e permiso.PasswordHistoryEntry
		err := r.Scan(&e.ID, &e.UserID, &e.PasswordHash, s.d.ScanTime(&e.CreatedAt))
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	}, query, args...)
	return out, s.userErr("password history", err)
}
