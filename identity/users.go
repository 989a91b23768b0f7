package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// NewUser is a registration (Register) or an administrator's creation
// (CreateUser): the original service's UserCreate body.
type NewUser struct {
	Username    string
	Email       string
	Password    string
	FirstName   *string
	LastName    *string
	DisplayName *string
	Bio         *string
	// The fields below are honoured by CreateUser only; Register ignores
	// them (a new account is active, unverified, has role user).
	IsActive    *bool
	IsVerified  *bool
	IsSuperuser *bool
	// RoleIDs, when not nil, are the roles of the new user (UUID strings);
	// nil means role user.
	RoleIDs []string
}

// Register creates an account for anyone (POST /users/register): active,
// unverified, role user. Every field is validated first and every problem
// reported at once; a taken username or email is a conflict. A
// verification mail is sent in the background. A new account is audited
// (user.register); a refused registration is not.
func (s *Service) Register(ctx context.Context, req permiso.RequestMeta, in NewUser) (permiso.User, error) {
	in.IsActive, in.IsVerified, in.IsSuperuser, in.RoleIDs = nil, nil, nil, nil
	u, err := s.create(ctx, in, nil)
	if err != nil {
		// Refused registrations are audited too (a taken username or
		// email, a weak password): probing leaves a trace.
		s.audited(ctx, anonymous(req), ActionUserRegister, target{typ: "user"}, err,
			map[string]any{"username": permiso.NormalizeUsername(in.Username)})
		return permiso.User{}, err
	}
	s.record(ctx, anonymous(req), ActionUserRegister, "success", userTarget(u.ID), map[string]any{"username": u.Username})
	s.sendVerification(ctx, u)
	return u, nil
}

// CreateUser is an administrator's creation of a user (POST /users).
// Everything is validated before anything is written: fields and
// password (422), role ids (malformed 422, unknown 400), the delegation
// rule (403: creating a superuser needs a superuser; every role given,
// role user by default included, passes Delegation.MayGrantRole),
// username and email (409); the user and their roles are then written in
// one transaction. The outcome is audited (user.create).
func (s *Service) CreateUser(ctx context.Context, actor Actor, in NewUser) (permiso.User, error) {
	u, err := s.createUser(ctx, actor, in)
	s.audited(ctx, actor, ActionUserCreate, createdTarget("user", u.ID, err), err,
		map[string]any{"username": permiso.NormalizeUsername(in.Username)})
	return u, err
}

func (s *Service) createUser(ctx context.Context, actor Actor, in NewUser) (permiso.User, error) {
	if !actor.Admin {
		return permiso.User{}, errForbidden
	}
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return permiso.User{}, err
	}
	if in.IsSuperuser != nil && *in.IsSuperuser {
		if err := d.MaySetSuperuser(); err != nil {
			return permiso.User{}, err
		}
	}
	u, err := s.create(ctx, in, func(roles []permiso.Role) error { return d.MaySetRoles(nil, roles) })
	if err != nil {
		return permiso.User{}, err
	}
	if !u.IsVerified && u.IsActive {
		s.sendVerification(ctx, u)
	}
	return u, nil
}

// create validates and writes a new user. mayGrant, when set, is asked
// about the roles the user would get before anything is written.
func (s *Service) create(ctx context.Context, in NewUser, mayGrant func([]permiso.Role) error) (permiso.User, error) {
	var p problems
	username := p.username("username", in.Username)
	email := p.email("email", in.Email)
	p.text("first_name", in.FirstName, MaxNameLength)
	p.text("last_name", in.LastName, MaxNameLength)
	p.text("display_name", in.DisplayName, MaxNameLength)
	p.text("bio", in.Bio, MaxBioLength)
	if in.Password == "" {
		p.add("password", "Password is required")
	} else {
		p = append(p, s.cfg.Policy.Check(in.Password, username)...)
	}
	var roleIDs []uuid.UUID
	if in.RoleIDs != nil {
		roleIDs = p.ids("role_ids", in.RoleIDs)
	}
	if err := p.err(); err != nil {
		return permiso.User{}, err
	}
	var roles []permiso.Role
	if in.RoleIDs == nil {
		r, err := s.deps.Store.GetRoleByName(ctx, permiso.RoleUser)
		if err != nil {
			return permiso.User{}, fmt.Errorf("default role %q: %w", permiso.RoleUser, err)
		}
		roles, roleIDs = []permiso.Role{r}, []uuid.UUID{r.ID}
	} else {
		var err error
		if roles, err = s.roles(ctx, roleIDs); err != nil {
			return permiso.User{}, err
		}
	}
	if mayGrant != nil {
		if err := mayGrant(roles); err != nil {
			return permiso.User{}, err
		}
	}
	if err := s.available(ctx, uuid.Nil, username, email); err != nil {
		return permiso.User{}, err
	}
	hash, err := s.deps.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return permiso.User{}, err
	}
	now := s.now().UTC()
	u := permiso.User{
		Username: username, Email: email, PasswordHash: hash,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName, Bio: in.Bio,
		IsActive: deref(in.IsActive, true), IsVerified: deref(in.IsVerified, false), IsSuperuser: deref(in.IsSuperuser, false),
		PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now,
	}
	created, err := s.deps.Store.CreateUser(ctx, u, roleIDs)
	switch {
	case errors.Is(err, permiso.ErrAlreadyExists):
		// Lost a race with another registration.
		return permiso.User{}, permiso.Errorf(permiso.EEXISTS, "Username or email already exists")
	case errors.Is(err, permiso.ErrNotFound):
		// A role was deleted since it was checked.
		return permiso.User{}, permiso.Errorf(permiso.EBADREQUEST, "Unknown role ids")
	case err != nil:
		return permiso.User{}, err
	}
	return created, nil
}

// available returns a conflict when the username or email belongs to a
// user other than self.
func (s *Service) available(ctx context.Context, self uuid.UUID, username, email string) error {
	if username != "" {
		u, err := s.deps.Store.GetUserByUsername(ctx, username)
		if err == nil && u.ID != self {
			return permiso.Errorf(permiso.EEXISTS, "Username already exists")
		}
		if err != nil && !errors.Is(err, permiso.ErrNotFound) {
			return err
		}
	}
	if email != "" {
		u, err := s.deps.Store.GetUserByEmail(ctx, email)
		if err == nil && u.ID != self {
			return permiso.Errorf(permiso.EEXISTS, "Email already exists")
		}
		if err != nil && !errors.Is(err, permiso.ErrNotFound) {
			return err
		}
	}
	return nil
}

// roles returns the roles of the ids (with their scopes), or a 400 naming
// every id that is not a role.
func (s *Service) roles(ctx context.Context, ids []uuid.UUID) ([]permiso.Role, error) {
	return byIDs(ctx, ids, s.deps.Store.GetRole, "role")
}

// delegation returns the delegation rule of an actor acting as an
// administrator on the user u, after checking that it may act on u at all
// (Delegation.MayManageUser), unless u is the actor themselves.
func (s *Service) delegation(ctx context.Context, actor Actor, u permiso.User) (Delegation, error) {
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return Delegation{}, err
	}
	if !actor.Is(u.ID) {
		if err := d.MayManageUser(u); err != nil {
			return Delegation{}, err
		}
	}
	return d, nil
}

// UserUpdate is a change of a user (PUT /users/me, PUT /users/{id}).
// Nil fields are left unchanged.
type UserUpdate struct {
	Email       *string
	FirstName   *string
	LastName    *string
	DisplayName *string
	Bio         *string
	// Administrative fields: only an administrator may send them.
	IsActive    *bool
	IsVerified  *bool
	IsSuperuser *bool
	RoleIDs     *[]string
}

// Fields returns the sorted names of the fields that are set (the details
// of the user.update audit event).
func (u UserUpdate) Fields() []string {
	f := u.Privileged()
	for name, set := range map[string]bool{"email": u.Email != nil, "first_name": u.FirstName != nil,
		"last_name": u.LastName != nil, "display_name": u.DisplayName != nil, "bio": u.Bio != nil} {
		if set {
			f = append(f, name)
		}
	}
	slices.Sort(f)
	return f
}

// Privileged returns the names of the administrative fields that are set.
func (u UserUpdate) Privileged() []string {
	var f []string
	if u.RoleIDs != nil {
		f = append(f, "role_ids")
	}
	if u.IsActive != nil {
		f = append(f, "is_active")
	}
	if u.IsVerified != nil {
		f = append(f, "is_verified")
	}
	if u.IsSuperuser != nil {
		f = append(f, "is_superuser")
	}
	return f
}

// UpdateUser changes a user.
//
// A caller who is not acting as an administrator may change their own
// profile fields only (email, first_name, last_name, display_name, bio):
// sending any of role_ids, is_active, is_verified, is_superuser is refused
// with 403 and nothing changes, whatever the values. An administrator may
// change everything except: is_superuser (only a superuser changes its
// value), and their own is_active (an administrator cannot disable
// themselves); and the delegation rule (Delegation): an administrator
// changes another user only when MayManageUser allows it, and every role
// given or taken away must pass MayGrantRole.
//
// A changed email must be free; it makes the account unverified (unless an
// administrator sets is_verified true in the same request) and a
// verification mail goes to the new address. Disabling a user ends every
// session and invalidates every token of theirs. The outcome is audited
// (user.update, with the names of the fields sent).
func (s *Service) UpdateUser(ctx context.Context, actor Actor, id uuid.UUID, in UserUpdate) (permiso.User, error) {
	u, err := s.updateUser(withRequest(ctx, actor), actor, id, in)
	s.audited(ctx, actor, ActionUserUpdate, userTarget(id), err, map[string]any{"fields": in.Fields()})
	return u, err
}

func (s *Service) updateUser(ctx context.Context, actor Actor, id uuid.UUID, in UserUpdate) (permiso.User, error) {
	if !actor.Admin && !actor.Is(id) {
		return permiso.User{}, errForbidden
	}
	if f := in.Privileged(); len(f) > 0 && !actor.Admin {
		return permiso.User{}, permiso.Errorf(permiso.EFORBIDDEN,
			"Not allowed to change %s: only administrators change roles and account status (PUT /users/{user_id})", strings.Join(f, ", "))
	}
	if in.IsActive != nil && !*in.IsActive && actor.Is(id) {
		return permiso.User{}, permiso.Errorf(permiso.EFORBIDDEN, "Cannot deactivate your own account")
	}

	var p problems
	var email string
	if in.Email != nil {
		email = p.email("email", *in.Email)
	}
	p.text("first_name", in.FirstName, MaxNameLength)
	p.text("last_name", in.LastName, MaxNameLength)
	p.text("display_name", in.DisplayName, MaxNameLength)
	p.text("bio", in.Bio, MaxBioLength)
	roleIDs := p.optIDs("role_ids", in.RoleIDs)
	if err := p.err(); err != nil {
		return permiso.User{}, err
	}
	before, err := s.getUser(ctx, id)
	if err != nil {
		return permiso.User{}, err
	}
	var d Delegation
	if actor.Admin {
		if d, err = s.delegation(ctx, actor, before); err != nil {
			return permiso.User{}, err
		}
	}
	// Only administrators get here with privileged fields (above).
	if in.IsSuperuser != nil && *in.IsSuperuser != before.IsSuperuser {
		if err := d.MaySetSuperuser(); err != nil {
			return permiso.User{}, err
		}
	}
	if in.RoleIDs != nil {
		roles, err := s.roles(ctx, roleIDs)
		if err != nil {
			return permiso.User{}, err
		}
		if err := d.MaySetRoles(before.Roles, roles); err != nil {
			return permiso.User{}, err
		}
	}
	emailChanged := in.Email != nil && email != before.Email
	if emailChanged {
		if err := s.available(ctx, id, "", email); err != nil {
			return permiso.User{}, err
		}
	}
	now := s.now().UTC()
	apply := func(u *permiso.User) error {
		if emailChanged {
			u.Email = email
			u.IsVerified = false
		}
		setIf(&u.FirstName, in.FirstName)
		setIf(&u.LastName, in.LastName)
		setIf(&u.DisplayName, in.DisplayName)
		setIf(&u.Bio, in.Bio)
		assign(&u.IsActive, in.IsActive)
		assign(&u.IsVerified, in.IsVerified)
		assign(&u.IsSuperuser, in.IsSuperuser)
		u.UpdatedAt = now
		return nil
	}
	// The fields and the roles change in one transaction: a role deleted
	// since the check above fails the whole update, never half of it.
	after, err := updateLinked(ctx, id, apply, in.RoleIDs != nil, roleIDs, "role",
		s.deps.Store.UpdateUser, s.deps.Store.UpdateUserWithRoles, s.deps.Store.GetUser)
	if err != nil {
		return permiso.User{}, updateErr(err, "Email already exists", errUserNotFound)
	}
	if before.IsActive && !after.IsActive {
		if _, err := s.deps.Sessions.RevokeAllForUser(ctx, id, "account_disabled"); err != nil {
			return permiso.User{}, err
		}
	}
	if emailChanged && !after.IsVerified && after.IsActive {
		s.sendVerification(ctx, after)
	}
	return s.getUser(ctx, id)
}

// DeleteUser deletes a user and everything of theirs (sessions, tokens,
// roles links), after invalidating their tokens. A user may delete their
// own account, except an administrator (who would lock themselves out;
// another administrator can, when the delegation rule lets it act on
// them). The outcome is audited (user.delete).
func (s *Service) DeleteUser(ctx context.Context, actor Actor, id uuid.UUID) (permiso.User, error) {
	u, err := s.deleteUser(withRequest(ctx, actor), actor, id)
	s.audited(ctx, actor, ActionUserDelete, userTarget(id), err, map[string]any{"username": u.Username})
	return u, err
}

// deleteUser deletes the user; on a refusal of the delegation rule it
// returns the user too (for the audit event).
func (s *Service) deleteUser(ctx context.Context, actor Actor, id uuid.UUID) (permiso.User, error) {
	switch {
	case actor.Admin && actor.Is(id):
		return permiso.User{}, permiso.Errorf(permiso.EFORBIDDEN, "Cannot delete your own account")
	case !actor.Admin && !actor.Is(id):
		return permiso.User{}, errForbidden
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return permiso.User{}, err
	}
	if actor.Admin {
		if _, err := s.delegation(ctx, actor, u); err != nil {
			return u, err
		}
	}
	if _, err := s.deps.Sessions.RevokeAllForUser(ctx, id, "account_deleted"); err != nil {
		return permiso.User{}, notFound(err, errUserNotFound)
	}
	if err := s.deps.Store.DeleteUser(ctx, id); err != nil {
		return permiso.User{}, notFound(err, errUserNotFound)
	}
	return u, nil
}

// SetRoles replaces the user's roles (PUT /users/{id}/roles), within the
// delegation rule: the administrator may act on the user, and every role
// given or taken away passes Delegation.MayGrantRole. The outcome is
// audited (user.roles, with the role ids as sent).
func (s *Service) SetRoles(ctx context.Context, actor Actor, id uuid.UUID, raw []string) (permiso.User, error) {
	u, err := setLinks(ctx, actor, id, raw, "role", s.getUser,
		func(u permiso.User) (func([]permiso.Role) error, error) {
			d, err := s.delegation(ctx, actor, u)
			return func(roles []permiso.Role) error { return d.MaySetRoles(u.Roles, roles) }, err
		}, s.roles, s.deps.Store.SetUserRoles)
	s.audited(ctx, actor, ActionUserRoles, userTarget(id), err, map[string]any{"role_ids": raw})
	return u, err
}

// Unlock clears the user's failed-login lockout (POST
// /users/{id}/unlock): the shared lockout counter of the account, and its
// mirror on the user row. The actor must be an administrator that the
// delegation rule lets act on the user. The outcome is audited
// (user.unlock).
func (s *Service) Unlock(ctx context.Context, actor Actor, id uuid.UUID) (permiso.User, error) {
	u, err := s.unlock(withRequest(ctx, actor), actor, id)
	s.audited(ctx, actor, ActionUserUnlock, userTarget(id), err, nil)
	return u, err
}

func (s *Service) unlock(ctx context.Context, actor Actor, id uuid.UUID) (permiso.User, error) {
	if !actor.Admin {
		return permiso.User{}, errForbidden
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return permiso.User{}, err
	}
	if _, err := s.delegation(ctx, actor, u); err != nil {
		return permiso.User{}, err
	}
	if err := s.clearLockout(ctx, u); err != nil {
		return permiso.User{}, err
	}
	return s.getUser(ctx, id)
}

func (s *Service) clearLockout(ctx context.Context, u permiso.User) error {
	if s.deps.Lockout != nil {
		// One key per account, whether logins use the username or the
		// email (oauth2 lockoutKey).
		if err := s.deps.Lockout.Unlock(ctx, u.Username); err != nil {
			return err
		}
	}
	if u.FailedLoginAttempts == 0 && u.LockedUntil == nil {
		return nil
	}
	now := s.now().UTC()
	_, err := s.deps.Store.UpdateUser(ctx, u.ID, func(x *permiso.User) error {
		x.FailedLoginAttempts = 0
		x.LockedUntil = nil
		x.UpdatedAt = now
		return nil
	})
	return notFound(err, errUserNotFound)
}

func deref(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// assign sets *dst to *v when v is not nil (a field that was sent).
func assign[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// setIf sets *dst to a copy of *v when v is not nil (an optional text
// field that was sent), so that dst never shares v's string.
func setIf(dst **string, v *string) {
	if v != nil {
		c := *v
		*dst = &c
	}
}
