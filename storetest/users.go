package storetest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var userTests = []test{
	{"Users/CRUD", testUserCRUD},
	{"Users/GeneratedID", testUserGeneratedID},
	{"Users/CaseInsensitiveUnique", testUserUnique},
	{"Users/NotFound", testUserNotFound},
	{"Users/UnknownRoleWritesNothing", testUserUnknownRole},
	{"Users/SetUserRoles", testSetUserRoles},
	{"Users/UpdateUserWithRoles", testUpdateUserWithRoles},
	{"Users/UpdateCallbackError", testUserUpdateCallbackError},
	{"Users/DeleteCascades", testUserDeleteCascades},
	{"Users/ListPagination", testUserPagination},
	{"Users/ListFilters", testUserFilters},
	{"Users/Stats", testUserStats},
	{"Users/PasswordHistory", testPasswordHistory},
	{"Users/ConcurrentUpdate", testUserConcurrentUpdate},
}

func testUserCRUD(h *harness) {
	u := permiso.User{
		ID:                  uuid.New(),
		Username:            "carol",
		Email:               "carol@example.com",
		PasswordHash:        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		FirstName:           ptr("Carol"),
		LastName:            ptr("Jones"),
		DisplayName:         ptr("CJ"),
		Bio:                 ptr("Hello, world"),
		IsActive:            true,
		IsVerified:          true,
		IsSuperuser:         true,
		LastLogin:           ptr(h.at(-time.Hour)),
		FailedLoginAttempts: 2,
		LockedUntil:         ptr(h.at(time.Hour)),
		PasswordChangedAt:   h.at(-48 * time.Hour),
		TokensRevokedBefore: ptr(h.at(-time.Minute)),
		CreatedAt:           h.at(-72 * time.Hour),
		UpdatedAt:           h.at(-24 * time.Hour),
	}
	created, err := h.s.CreateUser(h.ctx, u, []uuid.UUID{roleUserID})
	h.must(err, "CreateUser")
	diff(h, "user", created, u)

	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	diff(h, "user", got, u)
	eqStrings(h, "roles", roleNames(got.Roles), []string{"user"})
	eqStrings(h, "scopes via roles", got.ScopeNames(), []string{"read:profile", "write:profile"})
	if len(got.Roles) == 1 {
		eqStrings(h, "role scopes", scopeNames(got.Roles[0].Scopes), []string{"read:profile", "write:profile"})
	}

	// Update every mutable field; nil pointers clear columns.
	upd := h.at(time.Second)
	updated, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error {
		if x.Username != "carol" || len(x.Roles) != 1 {
			return fmt.Errorf("callback saw %q with %d roles, want carol with 1", x.Username, len(x.Roles))
		}
		x.Username, x.Email = "carol2", "carol2@example.com"
		x.PasswordHash = "other-hash"
		x.FirstName, x.LastName, x.DisplayName, x.Bio = nil, ptr("Smith"), nil, nil
		x.IsActive, x.IsVerified, x.IsSuperuser = false, false, false
		x.LastLogin, x.LockedUntil, x.TokensRevokedBefore = &upd, nil, nil
		x.FailedLoginAttempts = 0
		x.PasswordChangedAt = upd
		x.UpdatedAt = upd
		return nil
	})
	h.must(err, "UpdateUser")
	want := u
	want.Username, want.Email, want.PasswordHash = "carol2", "carol2@example.com", "other-hash"
	want.FirstName, want.LastName, want.DisplayName, want.Bio = nil, ptr("Smith"), nil, nil
	want.IsActive, want.IsVerified, want.IsSuperuser = false, false, false
	want.LastLogin, want.LockedUntil, want.TokensRevokedBefore = &upd, nil, nil
	want.FailedLoginAttempts = 0
	want.PasswordChangedAt, want.UpdatedAt = upd, upd
	diff(h, "user", updated, want)
	got, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser after update")
	diff(h, "user", got, want)
	eqStrings(h, "roles after update", roleNames(got.Roles), []string{"user"})

	h.must(h.s.DeleteUser(h.ctx, u.ID), "DeleteUser")
	_, err = h.s.GetUser(h.ctx, u.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetUser after delete")
	h.wantErr(h.s.DeleteUser(h.ctx, u.ID), permiso.ErrNotFound, "DeleteUser twice")
	// The name is free again.
	h.user("carol2")
}

func testUserGeneratedID(h *harness) {
	u := h.newUser("")
	u.ID = uuid.Nil
	created, err := h.s.CreateUser(h.ctx, u, nil)
	h.must(err, "CreateUser with zero ID")
	if created.ID == uuid.Nil {
		h.Fatal("CreateUser returned a zero ID")
	}
	got, err := h.s.GetUser(h.ctx, created.ID)
	h.must(err, "GetUser")
	eq(h, "username", got.Username, u.Username)
	if len(got.Roles) != 0 {
		h.Errorf("user created without roles has roles %v", roleNames(got.Roles))
	}
}

func testUserUnique(h *harness) {
	alice := h.user("alice")

	dup := h.newUser("Alice")
	dup.Email = "other@example.com"
	_, err := h.s.CreateUser(h.ctx, dup, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateUser(Alice) after alice")

	dup = h.newUser("someone")
	dup.Email = "ALICE@Example.com"
	_, err = h.s.CreateUser(h.ctx, dup, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateUser with email ALICE@Example.com after alice@example.com")

	dup = h.newUser("alice")
	dup.Email = "alice-2@example.com"
	_, err = h.s.CreateUser(h.ctx, dup, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateUser(alice) twice")

	for _, name := range []string{"alice", "ALICE", "Alice"} {
		got, err := h.s.GetUserByUsername(h.ctx, name)
		h.must(err, "GetUserByUsername(%s)", name)
		eq(h, "GetUserByUsername("+name+").ID", got.ID, alice.ID)
	}
	got, err := h.s.GetUserByEmail(h.ctx, "Alice@EXAMPLE.com")
	h.must(err, "GetUserByEmail")
	eq(h, "GetUserByEmail.ID", got.ID, alice.ID)
	for _, login := range []string{"alice", "ALICE", "alice@example.com", "ALICE@EXAMPLE.COM"} {
		got, err := h.s.GetUserByLogin(h.ctx, login)
		h.must(err, "GetUserByLogin(%s)", login)
		eq(h, "GetUserByLogin("+login+").ID", got.ID, alice.ID)
	}
	_, err = h.s.GetUserByLogin(h.ctx, "nobody")
	h.wantErr(err, permiso.ErrNotFound, "GetUserByLogin(nobody)")
	// An email is not a username and vice versa.
	_, err = h.s.GetUserByUsername(h.ctx, "alice@example.com")
	h.wantErr(err, permiso.ErrNotFound, "GetUserByUsername(email)")
	_, err = h.s.GetUserByEmail(h.ctx, "alice")
	h.wantErr(err, permiso.ErrNotFound, "GetUserByEmail(username)")

	// Renaming onto a taken name fails and changes nothing.
	bob := h.user("bob")
	_, err = h.s.UpdateUser(h.ctx, bob.ID, func(u *permiso.User) error { u.Username = "ALICE"; return nil })
	h.wantErr(err, permiso.ErrAlreadyExists, "UpdateUser(bob -> ALICE)")
	_, err = h.s.UpdateUser(h.ctx, bob.ID, func(u *permiso.User) error { u.Email = "alice@example.com"; return nil })
	h.wantErr(err, permiso.ErrAlreadyExists, "UpdateUser(bob email -> alice's)")
	got, err = h.s.GetUser(h.ctx, bob.ID)
	h.must(err, "GetUser(bob)")
	eq(h, "bob's username after failed rename", got.Username, "bob")
	eq(h, "bob's email after failed rename", got.Email, "bob@example.com")
}

func testUserNotFound(h *harness) {
	id := uuid.New()
	called := false
	h.wantNotFound(map[string]error{
		"GetUser":           errOf(h.s.GetUser(h.ctx, id)),
		"GetUserByUsername": errOf(h.s.GetUserByUsername(h.ctx, "ghost")),
		"GetUserByEmail":    errOf(h.s.GetUserByEmail(h.ctx, "ghost@example.com")),
		"UpdateUser":        errOf(h.s.UpdateUser(h.ctx, id, func(*permiso.User) error { called = true; return nil })),
		"DeleteUser":        h.s.DeleteUser(h.ctx, id),
		"SetUserRoles":      h.s.SetUserRoles(h.ctx, id, []uuid.UUID{roleUserID}),
		"ChangePassword":    h.s.ChangePassword(h.ctx, id, "x", h.now, 5),
	})
	if called {
		h.Error("UpdateUser called its callback for an unknown user")
	}
}

func testUserUnknownRole(h *harness) {
	u := h.newUser("dave")
	_, err := h.s.CreateUser(h.ctx, u, []uuid.UUID{roleUserID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "CreateUser with an unknown role")
	_, err = h.s.GetUserByUsername(h.ctx, "dave")
	h.wantErr(err, permiso.ErrNotFound, "GetUserByUsername after failed CreateUser (must be transactional)")
	_, total, err := h.s.ListUsers(h.ctx, permiso.UserFilter{})
	h.must(err, "ListUsers")
	eq(h, "users after failed CreateUser", total, 0)
	r := h.getRole(roleUserID, "GetRole(user)")
	eq(h, "role user's user count after failed CreateUser", r.UserCount, 0)

	// The same user can be created once the role list is right.
	created, err := h.s.CreateUser(h.ctx, u, []uuid.UUID{roleUserID})
	h.must(err, "CreateUser after the failed attempt")

	err = h.s.SetUserRoles(h.ctx, created.ID, []uuid.UUID{roleAdminID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "SetUserRoles with an unknown role")
	got, err := h.s.GetUser(h.ctx, created.ID)
	h.must(err, "GetUser")
	eqStrings(h, "roles after failed SetUserRoles", roleNames(got.Roles), []string{"user"})
}

func testSetUserRoles(h *harness) {
	u := h.user("erin", roleUserID)
	h.must(h.s.SetUserRoles(h.ctx, u.ID, []uuid.UUID{roleServiceID, roleAdminID, roleAdminID}), "SetUserRoles(service, admin, admin)")
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eqStrings(h, "roles ordered by name", roleNames(got.Roles), []string{"admin", "service"})
	eq(h, "scopes via admin", len(got.ScopeNames()), len(seedScopes))
	for _, c := range []struct {
		id   uuid.UUID
		want int
	}{{roleAdminID, 1}, {roleServiceID, 1}, {roleUserID, 0}} {
		r := h.getRole(c.id, "GetRole")
		eq(h, "user count of role "+r.Name, r.UserCount, c.want)
	}
	h.must(h.s.SetUserRoles(h.ctx, u.ID, nil), "SetUserRoles(nil)")
	got, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	if len(got.Roles) != 0 {
		h.Errorf("roles after SetUserRoles(nil) = %v, want none", roleNames(got.Roles))
	}
}

func testUpdateUserWithRoles(h *harness) {
	u := h.user("fern", roleUserID)
	name := "Fern"
	got, err := h.s.UpdateUserWithRoles(h.ctx, u.ID, func(x *permiso.User) error {
		x.FirstName = &name
		return nil
	}, []uuid.UUID{roleAdminID})
	h.must(err, "UpdateUserWithRoles")
	eqStrings(h, "roles after UpdateUserWithRoles", roleNames(got.Roles), []string{"admin"})
	if got.FirstName == nil || *got.FirstName != name {
		h.Errorf("first name after UpdateUserWithRoles = %v, want %q", got.FirstName, name)
	}

	// An unknown role id writes nothing: neither the fields nor the roles.
	other := "Changed"
	_, err = h.s.UpdateUserWithRoles(h.ctx, u.ID, func(x *permiso.User) error {
		x.FirstName = &other
		return nil
	}, []uuid.UUID{roleUserID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "UpdateUserWithRoles with an unknown role")
	got, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eqStrings(h, "roles after failed UpdateUserWithRoles", roleNames(got.Roles), []string{"admin"})
	if got.FirstName == nil || *got.FirstName != name {
		h.Errorf("first name after failed UpdateUserWithRoles = %v, want %q (must be transactional)", got.FirstName, name)
	}

	// A callback error writes nothing either.
	_, err = h.s.UpdateUserWithRoles(h.ctx, u.ID, func(*permiso.User) error { return permiso.ErrConflict }, nil)
	h.wantErr(err, permiso.ErrConflict, "UpdateUserWithRoles with a failing callback")
	got, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eqStrings(h, "roles after a failing callback", roleNames(got.Roles), []string{"admin"})
}

func testUserUpdateCallbackError(h *harness) {
	u := h.user("frank")
	_, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error {
		x.Username = "changed"
		x.FailedLoginAttempts = 99
		return errCallback
	})
	h.wantErr(err, errCallback, "UpdateUser with a failing callback")
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eq(h, "username after refused update", got.Username, "frank")
	eq(h, "failed_login_attempts after refused update", got.FailedLoginAttempts, 0)
}

func testUserDeleteCascades(h *harness) {
	u := h.user("gina", roleUserID, roleAdminID)
	other := h.user("harry", roleUserID)
	sess := h.session(u.ID, nil)
	h.refresh(sess, uuid.Nil, "gina-token")
	otherSess := h.session(other.ID, nil)
	h.refresh(otherSess, uuid.Nil, "harry-token")
	h.must(h.s.ChangePassword(h.ctx, u.ID, "new-hash", h.at(time.Second), 5), "ChangePassword")
	_, err := h.s.CreateActionToken(h.ctx, permiso.ActionToken{
		UserID: u.ID, Purpose: permiso.PurposePasswordReset, TokenHash: hashOf("gina-reset"),
		CreatedAt: h.now, ExpiresAt: h.at(time.Hour),
	})
	h.must(err, "CreateActionToken")

	h.must(h.s.DeleteUser(h.ctx, u.ID), "DeleteUser")

	_, err = h.s.GetSession(h.ctx, sess.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetSession of deleted user")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("gina-token"))
	h.wantErr(err, permiso.ErrNotFound, "GetRefreshTokenByHash of deleted user")
	hist, err := h.s.PasswordHistory(h.ctx, u.ID, 10)
	h.must(err, "PasswordHistory of deleted user")
	eq(h, "password history entries of deleted user", len(hist), 0)
	_, err = h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("gina-reset"), h.now)
	h.wantErr(err, permiso.ErrNotFound, "ConsumeActionToken of deleted user")
	admin := h.getRole(roleAdminID, "GetRole(admin)")
	eq(h, "admin user count after delete", admin.UserCount, 0)
	// Roles themselves stay, as do other users' rows.
	user := h.getRole(roleUserID, "GetRole(user)")
	eq(h, "user role user count after delete", user.UserCount, 1)
	_, err = h.s.GetSession(h.ctx, otherSess.ID)
	h.must(err, "GetSession of another user")
	h.getRefresh("harry-token")
}

func testUserPagination(h *harness) {
	const n = 25
	var want []permiso.User
	for i := range n {
		u := h.newUser(fmt.Sprintf("page%02d", i))
		u.ID = uuid.New()
		// Groups of three share a created_at, so the id breaks ties; the
		// insertion order is not the expected order.
		u.CreatedAt = h.at(time.Duration((n-i)/3) * time.Second)
		u.UpdatedAt = u.CreatedAt
		_, err := h.s.CreateUser(h.ctx, u, nil)
		h.must(err, "CreateUser(%s)", u.Username)
		want = append(want, u)
	}
	slices.SortFunc(want, func(a, b permiso.User) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})

	pageThrough(h, "users", "created_at, id", want, n+10,
		func(off int) ([]permiso.User, int, error) {
			return h.s.ListUsers(h.ctx, permiso.UserFilter{Offset: off, Limit: 10})
		},
		func(u permiso.User) uuid.UUID { return u.ID },
		func(u permiso.User) string { return fmt.Sprintf("%s (%v)", u.Username, u.CreatedAt) })
	all, total, err := h.s.ListUsers(h.ctx, permiso.UserFilter{})
	h.must(err, "ListUsers without limit")
	eq(h, "total without limit", total, n)
	eq(h, "users without limit", len(all), n)
}

func testUserFilters(h *harness) {
	mk := func(name string, first, last *string, active, verified bool, roles ...uuid.UUID) {
		u := h.newUser(name)
		u.FirstName, u.LastName, u.IsActive, u.IsVerified = first, last, active, verified
		_, err := h.s.CreateUser(h.ctx, u, roles)
		h.must(err, "CreateUser(%s)", name)
	}
	mk("anna", ptr("Anna"), ptr("Smith"), true, true, roleUserID)
	mk("ben", ptr("Ben"), ptr("Smithers"), false, true, roleUserID, roleAdminID)
	mk("cleo", nil, nil, true, false, roleAdminID)
	mk("dan_x", ptr("Dan"), nil, false, false)

	ids := func(us []permiso.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Username)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		f    permiso.UserFilter
		want []string
	}{
		{"search last name, any case", permiso.UserFilter{Search: "SMITH"}, []string{"anna", "ben"}},
		{"search username", permiso.UserFilter{Search: "cle"}, []string{"cleo"}},
		{"search email", permiso.UserFilter{Search: "anna@example"}, []string{"anna"}},
		{"search first name", permiso.UserFilter{Search: "dan"}, []string{"dan_x"}},
		{"search percent is literal", permiso.UserFilter{Search: "%"}, nil},
		{"search underscore is literal", permiso.UserFilter{Search: "n_x"}, []string{"dan_x"}},
		{"search underscore matches no other char", permiso.UserFilter{Search: "a_n"}, nil},
		{"active", permiso.UserFilter{IsActive: ptr(true)}, []string{"anna", "cleo"}},
		{"inactive", permiso.UserFilter{IsActive: ptr(false)}, []string{"ben", "dan_x"}},
		{"verified", permiso.UserFilter{IsVerified: ptr(true)}, []string{"anna", "ben"}},
		{"role admin", permiso.UserFilter{RoleID: ptr(roleAdminID)}, []string{"ben", "cleo"}},
		{"role user", permiso.UserFilter{RoleID: ptr(roleUserID)}, []string{"anna", "ben"}},
		{"role service", permiso.UserFilter{RoleID: ptr(roleServiceID)}, nil},
		{"search and active and role", permiso.UserFilter{Search: "smith", IsActive: ptr(true), RoleID: ptr(roleUserID)}, []string{"anna"}},
		{"role admin, inactive", permiso.UserFilter{RoleID: ptr(roleAdminID), IsActive: ptr(false)}, []string{"ben"}},
	} {
		users, total, err := h.s.ListUsers(h.ctx, tc.f)
		h.must(err, "ListUsers(%s)", tc.name)
		eqStrings(h, "ListUsers("+tc.name+")", ids(users), tc.want)
		eq(h, "total of ListUsers("+tc.name+")", total, len(tc.want))
	}
	// Listed users carry their roles and scopes.
	users, _, err := h.s.ListUsers(h.ctx, permiso.UserFilter{Search: "ben"})
	h.must(err, "ListUsers(ben)")
	if len(users) == 1 {
		eqStrings(h, "listed roles of ben", roleNames(users[0].Roles), []string{"admin", "user"})
		eq(h, "listed scopes of ben", len(users[0].ScopeNames()), len(seedScopes))
	}
	// A filtered page: total counts every match, the page holds the rest.
	users, total, err := h.s.ListUsers(h.ctx, permiso.UserFilter{IsActive: ptr(true), Offset: 1, Limit: 1})
	h.must(err, "ListUsers(active, page 2)")
	eq(h, "total of a filtered page", total, 2)
	eq(h, "size of a filtered page", len(users), 1)
}

func testUserStats(h *harness) {
	since := h.at(-time.Hour)
	mk := func(active, verified bool, lockedUntil *time.Time, created time.Time) {
		u := h.newUser("")
		u.IsActive, u.IsVerified, u.LockedUntil = active, verified, lockedUntil
		u.CreatedAt, u.UpdatedAt = created, created
		_, err := h.s.CreateUser(h.ctx, u, nil)
		h.must(err, "CreateUser")
	}
	mk(true, true, nil, h.at(-2*time.Hour))
	mk(true, false, ptr(h.at(time.Minute)), h.at(-time.Minute)) // locked
	mk(false, true, ptr(h.at(-time.Minute)), since)             // lock expired; created exactly at since
	mk(true, true, nil, h.at(-30*time.Minute))
	mk(false, false, ptr(h.at(time.Hour)), h.at(-3*time.Hour)) // locked

	st, err := h.s.UserStats(h.ctx, h.now, since)
	h.must(err, "UserStats")
	// CreatedSince includes since.
	eq(h, "UserStats", st, permiso.UserStats{Total: 5, Active: 3, Verified: 3, Locked: 2, CreatedSince: 3})
}

func testPasswordHistory(h *harness) {
	u := h.newUser("ivy")
	u.PasswordHash = "hash-0"
	u, err := h.s.CreateUser(h.ctx, u, nil)
	h.must(err, "CreateUser")
	hist, err := h.s.PasswordHistory(h.ctx, u.ID, 10)
	h.must(err, "PasswordHistory of a new user")
	eq(h, "history of a new user", len(hist), 0)

	const keep = 3
	var last time.Time
	for i := 1; i <= 5; i++ {
		last = h.at(time.Duration(i) * time.Minute)
		h.must(h.s.ChangePassword(h.ctx, u.ID, fmt.Sprintf("hash-%d", i), last, keep), "ChangePassword %d", i)
	}
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eq(h, "password_hash after changes", got.PasswordHash, "hash-5")
	eqTime(h, "password_changed_at after changes", got.PasswordChangedAt, last)

	hist, err = h.s.PasswordHistory(h.ctx, u.ID, 10)
	h.must(err, "PasswordHistory")
	var hashes []string
	for _, e := range hist {
		hashes = append(hashes, e.PasswordHash)
		eq(h, "history entry user id", e.UserID, u.ID)
		if e.ID == uuid.Nil {
			h.Error("history entry has a zero id")
		}
	}
	eqStrings(h, "history (newest first, keep 3)", hashes, []string{"hash-4", "hash-3", "hash-2"})
	if len(hist) > 0 {
		eqTime(h, "newest history entry created_at", hist[0].CreatedAt, last)
	}
	hist, err = h.s.PasswordHistory(h.ctx, u.ID, 2)
	h.must(err, "PasswordHistory(limit 2)")
	eq(h, "history entries with limit 2", len(hist), 2)
	if len(hist) == 2 {
		eq(h, "newest entry with limit 2", hist[0].PasswordHash, "hash-4")
	}
	// Lowering keep prunes further on the next change.
	h.must(h.s.ChangePassword(h.ctx, u.ID, "hash-6", h.at(time.Hour), 1), "ChangePassword keep 1")
	hist, err = h.s.PasswordHistory(h.ctx, u.ID, 10)
	h.must(err, "PasswordHistory")
	hashes = hashes[:0]
	for _, e := range hist {
		hashes = append(hashes, e.PasswordHash)
	}
	eqStrings(h, "history with keep 1", hashes, []string{"hash-5"})
}

func testUserConcurrentUpdate(h *harness) {
	u := h.user("judy")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error {
				x.FailedLoginAttempts++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.must(err, "concurrent UpdateUser")
	}
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eq(h, "failed_login_attempts after 20 concurrent increments", got.FailedLoginAttempts, n)
}
