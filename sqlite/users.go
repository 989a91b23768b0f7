package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const userCols = `id, username, email, password_hash, first_name, last_name,
	display_name, bio, is_active, is_verified, is_superuser, last_login,
	failed_login_attempts, locked_until, password_changed_at,
	tokens_revoked_before, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(s scanner) (permiso.User, error) {
	var u permiso.User
	err := s.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.FirstName,
		&u.LastName, &u.DisplayName, &u.Bio, &u.IsActive, &u.IsVerified,
		&u.IsSuperuser, nullTimeCol{&u.LastLogin}, &u.FailedLoginAttempts,
		nullTimeCol{&u.LockedUntil}, timeCol{&u.PasswordChangedAt},
		nullTimeCol{&u.TokensRevokedBefore}, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

// userErr maps a unique violation on users to a message naming the
// column, so the API can say which one is taken.
func userErr(op string, err error) error {
	m := errMap{op: op, notFound: "User not found", exists: "Username or email already exists",
		fk: "Role not found", fkCode: permiso.ENOTFOUND}
	if isUnique(err) {
		switch msg := err.Error(); {
		case strings.Contains(msg, "idx_users_username") || strings.Contains(msg, "users.username"):
			m.exists = "Username already exists"
		case strings.Contains(msg, "idx_users_email") || strings.Contains(msg, "users.email"):
			m.exists = "Email already exists"
		}
	}
	return m.wrap(err)
}

// CreateUser inserts u and links roleIDs in one transaction. ID is
// generated when zero; CreatedAt, UpdatedAt and PasswordChangedAt default
// to now when zero.
func (db *DB) CreateUser(ctx context.Context, u permiso.User, roleIDs []uuid.UUID) (permiso.User, error) {
	if u.ID == uuid.Nil {
		u.ID = newID()
	}
	u.CreatedAt = orNow(u.CreatedAt)
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	if u.PasswordChangedAt.IsZero() {
		u.PasswordChangedAt = u.CreatedAt
	}
	roleIDs = uniqueIDs(roleIDs)
	var out permiso.User
	err := db.inTx(ctx, func(c conn) error {
		if err := checkAllExist(ctx, c, "roles", roleIDs, "Role not found"); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO users (`+userCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName,
			u.DisplayName, u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser,
			tsPtr(u.LastLogin), u.FailedLoginAttempts, tsPtr(u.LockedUntil),
			ts(u.PasswordChangedAt), tsPtr(u.TokensRevokedBefore),
			ts(u.CreatedAt), ts(u.UpdatedAt))
		if err != nil {
			return userErr("create user", err)
		}
		if err := insertUserRoles(ctx, c, u.ID, roleIDs); err != nil {
			return err
		}
		out, err = getUser(ctx, c, "id = ?", u.ID)
		return err
	})
	return out, err
}

func insertUserRoles(ctx context.Context, c conn, userID uuid.UUID, roleIDs []uuid.UUID) error {
	for _, rid := range roleIDs {
		if _, err := c.exec(ctx, "INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)", userID, rid); err != nil {
			return userErr("link user role", err)
		}
	}
	return nil
}

// getUser reads one user matching where (with its roles and their scopes).
func getUser(ctx context.Context, c conn, where string, args ...any) (permiso.User, error) {
	u, err := scanUser(c.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE "+where, args...))
	if err != nil {
		return permiso.User{}, userErr("get user", err)
	}
	roles, err := loadUserRoles(ctx, c, []uuid.UUID{u.ID})
	if err != nil {
		return permiso.User{}, err
	}
	u.Roles = roles[u.ID]
	return u, nil
}

// loadUserRoles returns the roles (with scopes, ordered by name) of each
// user in ids.
func loadUserRoles(ctx context.Context, c conn, ids []uuid.UUID) (map[uuid.UUID][]permiso.Role, error) {
	out := make(map[uuid.UUID][]permiso.Role, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := c.query(ctx, `SELECT ur.user_id, `+roleColsR+`
		FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id
		WHERE ur.user_id IN (SELECT value FROM json_each(?))
		ORDER BY r.name, r.id`, idsJSON(ids))
	if err != nil {
		return nil, errMap{op: "load user roles"}.wrap(err)
	}
	type link struct {
		user uuid.UUID
		role permiso.Role
	}
	var links []link
	var roleIDs []uuid.UUID
	for rows.Next() {
		var l link
		if err := rows.Scan(append([]any{&l.user}, roleDest(&l.role)...)...); err != nil {
			rows.Close()
			return nil, errMap{op: "load user roles"}.wrap(err)
		}
		links = append(links, l)
		roleIDs = append(roleIDs, l.role.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errMap{op: "load user roles"}.wrap(err)
	}
	scopes, err := loadRoleScopes(ctx, c, uniqueIDs(roleIDs))
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		l.role.Scopes = scopes[l.role.ID]
		out[l.user] = append(out[l.user], l.role)
	}
	return out, nil
}

// GetUser returns the user with its roles and their scopes.
func (db *DB) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	return db.getUserTx(ctx, "id = ?", id)
}

// GetUserByUsername finds a user by username, case-insensitively.
func (db *DB) GetUserByUsername(ctx context.Context, username string) (permiso.User, error) {
	return db.getUserTx(ctx, "lower(username) = ?", permiso.NormalizeUsername(username))
}

// GetUserByEmail finds a user by email, case-insensitively.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (permiso.User, error) {
	return db.getUserTx(ctx, "lower(email) = ?", permiso.NormalizeEmail(email))
}

// GetUserByLogin finds a user whose username or email equals login,
// case-insensitively; a username match wins over an email match.
func (db *DB) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	l := permiso.NormalizeUsername(login)
	return db.getUserTx(ctx,
		"id = (SELECT id FROM users WHERE lower(username) = ?1 OR lower(email) = ?1 ORDER BY lower(username) = ?1 DESC LIMIT 1)", l)
}

func (db *DB) getUserTx(ctx context.Context, where string, args ...any) (permiso.User, error) {
	var u permiso.User
	err := db.readTx(ctx, func(c conn) error {
		var err error
		u, err = getUser(ctx, c, where, args...)
		return err
	})
	return u, err
}

// UpdateUser reads the user, applies fn and writes the result in one
// write transaction. ID and CreatedAt are never changed.
func (db *DB) UpdateUser(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error) (permiso.User, error) {
	return db.updateUser(ctx, id, fn, nil)
}

// UpdateUserWithRoles updates the user and replaces its roles in one
// transaction.
func (db *DB) UpdateUserWithRoles(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error, roleIDs []uuid.UUID) (permiso.User, error) {
	if roleIDs == nil {
		roleIDs = []uuid.UUID{}
	}
	return db.updateUser(ctx, id, fn, roleIDs)
}

// updateUser applies fn and, when roleIDs is not nil, replaces the roles,
// in one transaction.
func (db *DB) updateUser(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error, roleIDs []uuid.UUID) (permiso.User, error) {
	var out permiso.User
	err := db.inTx(ctx, func(c conn) error {
		if roleIDs != nil {
			if err := replaceUserRoles(ctx, c, id, roleIDs); err != nil {
				return err
			}
		}
		u, err := getUser(ctx, c, "id = ?", id)
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE users SET username = ?, email = ?,
			password_hash = ?, first_name = ?, last_name = ?, display_name = ?,
			bio = ?, is_active = ?, is_verified = ?, is_superuser = ?,
			last_login = ?, failed_login_attempts = ?, locked_until = ?,
			password_changed_at = ?, tokens_revoked_before = ?, updated_at = ?
			WHERE id = ?`,
			u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName,
			u.DisplayName, u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser,
			tsPtr(u.LastLogin), u.FailedLoginAttempts, tsPtr(u.LockedUntil),
			ts(u.PasswordChangedAt), tsPtr(u.TokensRevokedBefore),
			ts(orNow(u.UpdatedAt)), id)
		if err != nil {
			return userErr("update user", err)
		}
		out, err = getUser(ctx, c, "id = ?", id)
		return err
	})
	return out, err
}

// DeleteUser removes the user; its sessions, refresh tokens, password
// history, action tokens and role links go with it (ON DELETE CASCADE).
func (db *DB) DeleteUser(ctx context.Context, id uuid.UUID) error {
	n, err := db.w().execN(ctx, "DELETE FROM users WHERE id = ?", id)
	if err != nil {
		return userErr("delete user", err)
	}
	if n == 0 {
		return notFound("User not found")
	}
	return nil
}

// ListUsers returns one page of the users matching f, ordered by
// created_at, id, and the number of all matching users.
func (db *DB) ListUsers(ctx context.Context, f permiso.UserFilter) ([]permiso.User, int, error) {
	var where []string
	var args []any
	if f.Search != "" {
		where = append(where, `(lower(username) LIKE ?1 ESCAPE '\' OR lower(email) LIKE ?1 ESCAPE '\'
			OR lower(coalesce(first_name, '')) LIKE ?1 ESCAPE '\'
			OR lower(coalesce(last_name, '')) LIKE ?1 ESCAPE '\'
			OR lower(coalesce(display_name, '')) LIKE ?1 ESCAPE '\')`)
		args = append(args, likePattern(f.Search))
	}
	// Numbered parameters after ?1 keep their positions: SQLite numbers a
	// plain "?" one past the largest number used so far.
	if f.IsActive != nil {
		where = append(where, "is_active = ?")
		args = append(args, *f.IsActive)
	}
	if f.IsVerified != nil {
		where = append(where, "is_verified = ?")
		args = append(args, *f.IsVerified)
	}
	if f.RoleID != nil {
		where = append(where, "id IN (SELECT user_id FROM user_roles WHERE role_id = ?)")
		args = append(args, *f.RoleID)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var users []permiso.User
	var total int
	err := db.readTx(ctx, func(c conn) error {
		if err := c.queryRow(ctx, "SELECT count(*) FROM users"+cond, args...).Scan(&total); err != nil {
			return errMap{op: "count users"}.wrap(err)
		}
		q, qargs := page("SELECT "+userCols+" FROM users"+cond+" ORDER BY created_at, id", args, f.Offset, f.Limit)
		rows, err := c.query(ctx, q, qargs...)
		if err != nil {
			return errMap{op: "list users"}.wrap(err)
		}
		var ids []uuid.UUID
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				rows.Close()
				return errMap{op: "list users"}.wrap(err)
			}
			users = append(users, u)
			ids = append(ids, u.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return errMap{op: "list users"}.wrap(err)
		}
		roles, err := loadUserRoles(ctx, c, ids)
		if err != nil {
			return err
		}
		for i := range users {
			users[i].Roles = roles[users[i].ID]
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// SetUserRoles replaces the user's roles in one transaction.
func (db *DB) SetUserRoles(ctx context.Context, userID uuid.UUID, roleIDs []uuid.UUID) error {
	return db.inTx(ctx, func(c conn) error { return replaceUserRoles(ctx, c, userID, roleIDs) })
}

// replaceUserRoles replaces the user's roles inside a transaction.
func replaceUserRoles(ctx context.Context, c conn, userID uuid.UUID, roleIDs []uuid.UUID) error {
	roleIDs = uniqueIDs(roleIDs)
	if err := checkExists(ctx, c, "users", userID, "User not found"); err != nil {
		return err
	}
	if err := checkAllExist(ctx, c, "roles", roleIDs, "Role not found"); err != nil {
		return err
	}
	if _, err := c.exec(ctx, "DELETE FROM user_roles WHERE user_id = ?", userID); err != nil {
		return userErr("set user roles", err)
	}
	return insertUserRoles(ctx, c, userID, roleIDs)
}

// UserStats counts users at now; CreatedSince counts those created at or
// after createdSince.
func (db *DB) UserStats(ctx context.Context, now, createdSince time.Time) (permiso.UserStats, error) {
	var s permiso.UserStats
	err := db.r().queryRow(ctx, `SELECT count(*),
		coalesce(sum(is_active), 0),
		coalesce(sum(is_verified), 0),
		coalesce(sum(locked_until IS NOT NULL AND locked_until > ?1), 0),
		coalesce(sum(created_at >= ?2), 0)
		FROM users`, ts(now), ts(createdSince)).
		Scan(&s.Total, &s.Active, &s.Verified, &s.Locked, &s.CreatedSince)
	if err != nil {
		return s, errMap{op: "user stats"}.wrap(err)
	}
	return s, nil
}

// ChangePassword stores newHash, records the old hash in the history,
// prunes the history to the newest keep entries and sets
// PasswordChangedAt = now, in one transaction.
func (db *DB) ChangePassword(ctx context.Context, userID uuid.UUID, newHash string, now time.Time, keep int) error {
	return db.inTx(ctx, func(c conn) error {
		var old string
		err := c.queryRow(ctx, "SELECT password_hash FROM users WHERE id = ?", userID).Scan(&old)
		if err != nil {
			return userErr("change password", err)
		}
		if _, err := c.exec(ctx,
			"INSERT INTO password_history (id, user_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
			newID(), userID, old, ts(now)); err != nil {
			return userErr("change password", err)
		}
		if _, err := c.exec(ctx,
			"UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?",
			newHash, ts(now), ts(now), userID); err != nil {
			return userErr("change password", err)
		}
		if _, err := c.exec(ctx, `DELETE FROM password_history WHERE user_id = ?1 AND id NOT IN (
				SELECT id FROM password_history WHERE user_id = ?1
				ORDER BY created_at DESC, id DESC LIMIT ?2)`, userID, max(keep, 0)); err != nil {
			return userErr("prune password history", err)
		}
		return nil
	})
}

// PasswordHistory returns up to limit previous hashes of the user, newest
// first; limit 0 means all of them.
func (db *DB) PasswordHistory(ctx context.Context, userID uuid.UUID, limit int) ([]permiso.PasswordHistoryEntry, error) {
	q, args := page(`SELECT id, user_id, password_hash, created_at FROM password_history
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, []any{userID}, 0, limit)
	rows, err := db.r().query(ctx, q, args...)
	if err != nil {
		return nil, errMap{op: "password history"}.wrap(err)
	}
	defer rows.Close()
	var out []permiso.PasswordHistoryEntry
	for rows.Next() {
		var e permiso.PasswordHistoryEntry
		if err := rows.Scan(&e.ID, &e.UserID, &e.PasswordHash, timeCol{&e.CreatedAt}); err != nil {
			return nil, errMap{op: "password history"}.wrap(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, errMap{op: "password history"}.wrap(err)
	}
	return out, nil
}
