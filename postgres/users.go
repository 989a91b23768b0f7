package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

const userColumns = `u.id, u.username, u.email, u.password_hash, u.first_name, u.last_name,
	u.display_name, u.bio, u.is_active, u.is_verified, u.is_superuser, u.last_login,
	u.failed_login_attempts, u.locked_until, u.password_changed_at, u.tokens_revoked_before,
	u.created_at, u.updated_at`

func scanUser(row pgx.Row) (permiso.User, error) {
	var u permiso.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.FirstName, &u.LastName,
		&u.DisplayName, &u.Bio, &u.IsActive, &u.IsVerified, &u.IsSuperuser, &u.LastLogin,
		&u.FailedLoginAttempts, &u.LockedUntil, &u.PasswordChangedAt, &u.TokensRevokedBefore,
		&u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return u, err
	}
	u.LastLogin = utcp(u.LastLogin)
	u.LockedUntil = utcp(u.LockedUntil)
	u.PasswordChangedAt = utc(u.PasswordChangedAt)
	u.TokensRevokedBefore = utcp(u.TokensRevokedBefore)
	u.CreatedAt = utc(u.CreatedAt)
	u.UpdatedAt = utc(u.UpdatedAt)
	return u, nil
}

// normalizeUser fills defaults (id, times) and normalizes times for storage.
func normalizeUser(u *permiso.User) {
	if u.ID == uuid.Nil {
		u.ID = uuid.New()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = ts(u.CreatedAt)
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.UpdatedAt = ts(u.UpdatedAt)
	if u.PasswordChangedAt.IsZero() {
		u.PasswordChangedAt = u.CreatedAt
	}
	u.PasswordChangedAt = ts(u.PasswordChangedAt)
	u.LastLogin = tsp(u.LastLogin)
	u.LockedUntil = tsp(u.LockedUntil)
	u.TokensRevokedBefore = tsp(u.TokensRevokedBefore)
}

// CreateUser inserts u and links roleIDs in one transaction. An unknown role
// id yields ErrNotFound and nothing is written; a taken username or email
// yields ErrAlreadyExists.
func (db *DB) CreateUser(ctx context.Context, u permiso.User, roleIDs []uuid.UUID) (permiso.User, error) {
	normalizeUser(&u)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, username, email, password_hash, first_name,
			last_name, display_name, bio, is_active, is_verified, is_superuser, last_login,
			failed_login_attempts, locked_until, password_changed_at, tokens_revoked_before,
			created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)`,
			u.ID, u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName, u.DisplayName,
			u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser, u.LastLogin, u.FailedLoginAttempts,
			u.LockedUntil, u.PasswordChangedAt, u.TokensRevokedBefore, u.CreatedAt, u.UpdatedAt)
		if err != nil {
			return mapErr(err, "user", opWrite)
		}
		return linkUserRoles(ctx, tx, u.ID, roleIDs)
	})
	if err != nil {
		return permiso.User{}, err
	}
	return db.getUser(ctx, db.q, `u.id = $1`, u.ID)
}

// linkUserRoles links the (de-duplicated) roleIDs to the user after checking
// that every one exists.
func linkUserRoles(ctx context.Context, tx pgx.Tx, userID uuid.UUID, roleIDs []uuid.UUID) error {
	ids := uniqueIDs(roleIDs)
	if len(ids) == 0 {
		return nil
	}
	if err := checkIDs(ctx, tx, "roles", "role", ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO user_roles (user_id, role_id)
		SELECT $1, r FROM unnest($2::uuid[]) AS r`, userID, ids)
	return mapErr(err, "user role", opWrite)
}

// checkIDs returns ErrNotFound unless every id exists in table.
func checkIDs(ctx context.Context, q querier, table, what string, ids []uuid.UUID) error {
	var n int
	// table is one of a fixed set of identifiers chosen by this package.
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
		return mapErr(err, what, opRead)
	}
	if n != len(ids) {
		return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.MessagesFor(what).NotFound)
	}
	return nil
}

func uniqueIDs(ids []uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	seen := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// getUser reads one user selected by cond (with one argument) and its roles.
func (db *DB) getUser(ctx context.Context, q querier, cond string, arg any) (permiso.User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE `+cond, arg))
	if err != nil {
		return permiso.User{}, mapErr(err, "user", opRead)
	}
	users := []permiso.User{u}
	if err := loadUserRoles(ctx, q, users); err != nil {
		return permiso.User{}, err
	}
	return users[0], nil
}

// GetUser returns the user with the given id, with roles and scopes.
func (db *DB) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	return db.getUser(ctx, db.q, `u.id = $1`, id)
}

// GetUserByUsername finds a user by username, case-insensitively.
func (db *DB) GetUserByUsername(ctx context.Context, username string) (permiso.User, error) {
	return db.getUser(ctx, db.q, `lower(u.username) = lower($1)`, username)
}

// GetUserByEmail finds a user by email, case-insensitively.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (permiso.User, error) {
	return db.getUser(ctx, db.q, `lower(u.email) = lower($1)`, email)
}

// GetUserByLogin finds a user whose username or email equals login,
// case-insensitively. A username match wins over an email match.
func (db *DB) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	return db.getUser(ctx, db.q,
		`lower(u.username) = lower($1) OR lower(u.email) = lower($1)
		 ORDER BY (lower(u.username) = lower($1)) DESC LIMIT 1`, permiso.NormalizeUsername(login))
}

// UpdateUser reads the user FOR UPDATE, applies fn and writes the result in
// one transaction. UpdatedAt is written as fn leaves it (callers set it;
// a zero value becomes the current time).
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1 FOR UPDATE`, id))
		if err != nil {
			return mapErr(err, "user", opRead)
		}
		if roleIDs != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM user_roles WHERE user_id = $1`, id); err != nil {
				return mapErr(err, "user roles", opWrite)
			}
			if err := linkUserRoles(ctx, tx, id, roleIDs); err != nil {
				return err
			}
		}
		users := []permiso.User{u}
		if err := loadUserRoles(ctx, tx, users); err != nil {
			return err
		}
		u = users[0]
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		if u.UpdatedAt.IsZero() {
			u.UpdatedAt = time.Now()
		}
		normalizeUser(&u)
		_, err = tx.Exec(ctx, `UPDATE users SET username=$2, email=$3, password_hash=$4,
			first_name=$5, last_name=$6, display_name=$7, bio=$8, is_active=$9, is_verified=$10,
			is_superuser=$11, last_login=$12, failed_login_attempts=$13, locked_until=$14,
			password_changed_at=$15, tokens_revoked_before=$16, updated_at=$17
			WHERE id=$1`,
			u.ID, u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName, u.DisplayName,
			u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser, u.LastLogin, u.FailedLoginAttempts,
			u.LockedUntil, u.PasswordChangedAt, u.TokensRevokedBefore, u.UpdatedAt)
		return mapErr(err, "user", opWrite)
	})
	if err != nil {
		return permiso.User{}, err
	}
	return db.GetUser(ctx, id)
}

// DeleteUser deletes the user; sessions, tokens, role links and history
// cascade.
func (db *DB) DeleteUser(ctx context.Context, id uuid.UUID) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return mapErr(err, "user", opDelete)
	}
	if tag.RowsAffected() == 0 {
		return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.UserMessages.NotFound)
	}
	return nil
}

// ListUsers returns one page of the users matching f, ordered by
// created_at, id, and the total number of matches.
func (db *DB) ListUsers(ctx context.Context, f permiso.UserFilter) ([]permiso.User, int, error) {
	var w where
	if s := strings.TrimSpace(f.Search); s != "" {
		w.add(`(strpos(lower(u.username), lower(?1)) > 0 OR strpos(lower(u.email), lower(?1)) > 0
			OR strpos(lower(coalesce(u.first_name, '')), lower(?1)) > 0
			OR strpos(lower(coalesce(u.last_name, '')), lower(?1)) > 0
			OR strpos(lower(coalesce(u.display_name, '')), lower(?1)) > 0)`, s)
	}
	if f.IsActive != nil {
		w.add(`u.is_active = ?`, *f.IsActive)
	}
	if f.IsVerified != nil {
		w.add(`u.is_verified = ?`, *f.IsVerified)
	}
	if f.RoleID != nil {
		w.add(`EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = ?)`, *f.RoleID)
	}
	var total int
	if err := db.q.QueryRow(ctx, `SELECT count(*) FROM users u`+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err, "users", opRead)
	}
	lim, args := page(f.Offset, f.Limit, w.args)
	rows, err := db.q.Query(ctx, `SELECT `+userColumns+` FROM users u`+w.sql()+
		` ORDER BY u.created_at, u.id`+lim, args...)
	if err != nil {
		return nil, 0, mapErr(err, "users", opRead)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.User, error) { return scanUser(r) })
	if err != nil {
		return nil, 0, mapErr(err, "users", opRead)
	}
	if err := loadUserRoles(ctx, db.q, users); err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// loadUserRoles fills Roles (ordered by name, each with its scopes) of
// every user in users.
func loadUserRoles(ctx context.Context, q querier, users []permiso.User) error {
	if len(users) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(users))
	idx := make(map[uuid.UUID][]int, len(users))
	for i := range users {
		ids[i] = users[i].ID
		idx[users[i].ID] = append(idx[users[i].ID], i)
		users[i].Roles = []permiso.Role{}
	}
	rows, err := q.Query(ctx, `SELECT ur.user_id, `+roleColumns+`
		FROM user_roles ur JOIN roles r ON r.id = ur.role_id
		WHERE ur.user_id = ANY($1) ORDER BY r.name, r.id`, ids)
	if err != nil {
		return mapErr(err, "user roles", opRead)
	}
	type link struct {
		user uuid.UUID
		role permiso.Role
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (link, error) {
		var l link
		var dest []any
		dest = append(dest, &l.user)
		dest = append(dest, roleDest(&l.role)...)
		err := r.Scan(dest...)
		fixRole(&l.role)
		return l, err
	})
	if err != nil {
		return mapErr(err, "user roles", opRead)
	}
	roles := make([]permiso.Role, len(links))
	for i, l := range links {
		roles[i] = l.role
	}
	if err := loadRoleScopes(ctx, q, roles); err != nil {
		return err
	}
	for i, l := range links {
		for _, ui := range idx[l.user] {
			users[ui].Roles = append(users[ui].Roles, roles[i])
		}
	}
	return nil
}

// SetUserRoles replaces the user's roles in one transaction; an unknown
// user or role id yields ErrNotFound and nothing changes.
func (db *DB) SetUserRoles(ctx context.Context, userID uuid.UUID, roleIDs []uuid.UUID) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockRow(ctx, tx, "users", "user", userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_roles WHERE user_id = $1`, userID); err != nil {
			return mapErr(err, "user roles", opWrite)
		}
		return linkUserRoles(ctx, tx, userID, roleIDs)
	})
}

// lockRow takes a row lock on table's row id, returning ErrNotFound when
// there is none.
func lockRow(ctx context.Context, tx pgx.Tx, table, what string, id uuid.UUID) error {
	var got uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM `+table+` WHERE id = $1 FOR UPDATE`, id).Scan(&got)
	return mapErr(err, what, opRead)
}

// UserStats counts users at now; CreatedSince counts those created at or
// after createdSince.
func (db *DB) UserStats(ctx context.Context, now, createdSince time.Time) (permiso.UserStats, error) {
	var s permiso.UserStats
	err := db.q.QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE is_active),
		count(*) FILTER (WHERE is_verified),
		count(*) FILTER (WHERE locked_until IS NOT NULL AND locked_until > $1),
		count(*) FILTER (WHERE created_at >= $2)
		FROM users`, ts(now), ts(createdSince)).Scan(&s.Total, &s.Active, &s.Verified, &s.Locked, &s.CreatedSince)
	if err != nil {
		return s, mapErr(err, "user stats", opRead)
	}
	return s, nil
}

// ChangePassword stores newHash, records the previous hash in the password
// history, keeps only the newest keep entries (keep <= 0 keeps none) and
// sets PasswordChangedAt = now, in one transaction.
func (db *DB) ChangePassword(ctx context.Context, userID uuid.UUID, newHash string, now time.Time, keep int) error {
	at := ts(now)
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&old)
		if err != nil {
			return mapErr(err, "user", opRead)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO password_history (id, user_id, password_hash, created_at)
			VALUES ($1, $2, $3, $4)`, newV7(), userID, old, at); err != nil {
			return mapErr(err, "password history", opWrite)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3,
			updated_at = $3 WHERE id = $1`, userID, newHash, at); err != nil {
			return mapErr(err, "user", opWrite)
		}
		if keep < 0 {
			keep = 0
		}
		_, err = tx.Exec(ctx, `DELETE FROM password_history WHERE user_id = $1 AND id NOT IN (
			SELECT id FROM password_history WHERE user_id = $1
			ORDER BY created_at DESC, id DESC LIMIT $2)`, userID, keep)
		return mapErr(err, "password history", opWrite)
	})
}

// PasswordHistory returns up to limit previous hashes of the user, newest
// first (limit <= 0: all).
func (db *DB) PasswordHistory(ctx context.Context, userID uuid.UUID, limit int) ([]permiso.PasswordHistoryEntry, error) {
	lim, args := page(0, limit, []any{userID})
	rows, err := db.q.Query(ctx, `SELECT id, user_id, password_hash, created_at
		FROM password_history WHERE user_id = $1 ORDER BY created_at DESC, id DESC`+lim, args...)
	if err != nil {
		return nil, mapErr(err, "password history", opRead)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.PasswordHistoryEntry, error) {
		var e permiso.PasswordHistoryEntry
		err := r.Scan(&e.ID, &e.UserID, &e.PasswordHash, &e.CreatedAt)
		e.CreatedAt = utc(e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, mapErr(err, "password history", opRead)
	}
	return out, nil
}

// newV7 returns a time-ordered UUID (v7), so that rows written in the same
// microsecond still sort in insertion order by id.
func newV7() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
