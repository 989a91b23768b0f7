package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var importTests = []test{
	{"Import/KeepsRowsAsGiven", testImportKeepsRows},
	{"Import/OnlyAdds", testImportOnlyAdds},
	{"Import/CollisionWritesNothing", testImportCollision},
	{"Import/UnknownLinkWritesNothing", testImportUnknownLink},
	{"Import/MissingID", testImportMissingID},
}

// importFixture is a batch of one of each row, linked to each other and
// to the seeded role "user" and scope "read:profile".
func (h *harness) importFixture() permiso.ImportBatch {
	created, updated, login := h.at(-48*time.Hour), h.at(-24*time.Hour), h.at(-time.Hour)
	scope := permiso.Scope{ID: uuid.New(), Name: h.uniq("read:trades"), Description: ptr("Read trades"),
		Resource: ptr("trades"), CreatedAt: created, UpdatedAt: updated}
	role := permiso.Role{ID: uuid.New(), Name: h.uniq("trader"), Description: ptr("Trading user role"),
		CreatedAt: created, UpdatedAt: updated}
	user := permiso.User{
		ID: uuid.New(), Username: h.uniq("imported"), Email: h.uniq("imported") + "@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		FirstName:    ptr("Ann"), Bio: ptr("imported"), IsActive: true, IsVerified: true,
		LastLogin: &login, PasswordChangedAt: created, CreatedAt: created, UpdatedAt: updated,
	}
	client := permiso.ServiceClient{
		ID: uuid.New(), ClientID: h.uniq("mt5-service"),
		SecretHash: "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		Name:       "MT5", ClientType: "confidential", IsActive: true, IsTrusted: true,
		AccessTokenLifetime: 7200, RefreshTokenLifetime: ptr(86400), RateLimitPerMinute: 120,
		RateLimitPerHour: 5000, LastUsed: &login, TotalRequests: 42, AllowedIPs: ptr("10.0.0.0/8"),
		CreatedAt: created, UpdatedAt: updated,
	}
	return permiso.ImportBatch{
		Scopes:  []permiso.Scope{scope},
		Roles:   []permiso.Role{role},
		Users:   []permiso.User{user},
		Clients: []permiso.ServiceClient{client},
		RoleScopes: []permiso.ImportLink{
			{From: role.ID, To: scope.ID}, {From: role.ID, To: scopeReadProfileID},
			{From: roleUserID, To: scope.ID},
		},
		UserRoles:    []permiso.ImportLink{{From: user.ID, To: role.ID}, {From: user.ID, To: roleUserID}},
		ClientScopes: []permiso.ImportLink{{From: client.ID, To: scope.ID}},
	}
}

func testImportKeepsRows(h *harness) {
	b := h.importFixture()
	n, err := h.s.Import(h.ctx, b)
	h.must(err, "Import")
	want := permiso.ImportCounts{Scopes: 1, Roles: 1, Users: 1, Clients: 1, RoleScopes: 3, UserRoles: 2, ClientScopes: 1}
	eq(h, "counts", n, want)

	u, err := h.s.GetUser(h.ctx, b.Users[0].ID)
	h.must(err, "GetUser")
	diff(h, "user", u, b.Users[0])
	eqStrings(h, "user roles", roleNames(u.Roles), permiso.SortedUnique([]string{b.Roles[0].Name, permiso.RoleUser}))

	r := h.getRole(b.Roles[0].ID, "GetRole")
	eq(h, "role name", r.Name, b.Roles[0].Name)
	eqPtr(h, "role description", r.Description, b.Roles[0].Description)
	eqTime(h, "role created_at", r.CreatedAt, b.Roles[0].CreatedAt)
	eqTime(h, "role updated_at", r.UpdatedAt, b.Roles[0].UpdatedAt)
	eqStrings(h, "role scopes", scopeNames(r.Scopes), permiso.SortedUnique([]string{b.Scopes[0].Name, "read:profile"}))

	sc, err := h.s.GetScope(h.ctx, b.Scopes[0].ID)
	h.must(err, "GetScope")
	eq(h, "scope name", sc.Name, b.Scopes[0].Name)
	eqPtr(h, "scope resource", sc.Resource, b.Scopes[0].Resource)
	eqTime(h, "scope created_at", sc.CreatedAt, b.Scopes[0].CreatedAt)

	c, err := h.s.GetServiceClient(h.ctx, b.Clients[0].ID)
	h.must(err, "GetServiceClient")
	want0 := b.Clients[0]
	eq(h, "client_id", c.ClientID, want0.ClientID)
	eq(h, "secret_hash", c.SecretHash, want0.SecretHash)
	eq(h, "is_trusted", c.IsTrusted, true)
	eq(h, "access_token_lifetime", c.AccessTokenLifetime, 7200)
	eqPtr(h, "refresh_token_lifetime", c.RefreshTokenLifetime, want0.RefreshTokenLifetime)
	eq(h, "rate_limit_per_minute", c.RateLimitPerMinute, 120)
	eq(h, "rate_limit_per_hour", c.RateLimitPerHour, 5000)
	eq(h, "total_requests", c.TotalRequests, int64(42))
	eqTimePtr(h, "last_used", c.LastUsed, want0.LastUsed)
	eqPtr(h, "allowed_ips", c.AllowedIPs, want0.AllowedIPs)
	eqTime(h, "client created_at", c.CreatedAt, want0.CreatedAt)
	eqStrings(h, "client scopes", scopeNames(c.Scopes), []string{b.Scopes[0].Name})

	// The seeded role "user" gained the imported scope and kept its own.
	ur := h.getRole(roleUserID, "GetRole(user)")
	eqStrings(h, "role user scopes", scopeNames(ur.Scopes), permiso.SortedUnique([]string{b.Scopes[0].Name, "read:profile", "write:profile"}))
}

func testImportOnlyAdds(h *harness) {
	b := h.importFixture()
	_, err := h.s.Import(h.ctx, b)
	h.must(err, "first Import")
	// Changed in permiso since: the imported user's password and roles.
	u := b.Users[0]
	h.must(h.s.ChangePassword(h.ctx, u.ID, "$argon2id$v=19$m=65536,t=4,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ld2g", h.now, 5), "ChangePassword")

	// The same batch again changes nothing: rows whose id is stored are
	// left as they are, existing links are not added twice.
	again := b
	again.Users = []permiso.User{b.Users[0]}
	again.Clients = []permiso.ServiceClient{b.Clients[0]}
	again.Users[0].PasswordHash = "$argon2id$v=19$m=65536,t=3,p=1$b3RoZXJvdGhlcm90aGVy$b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Ro"
	again.Clients[0].Name = "renamed in the source"
	n, err := h.s.Import(h.ctx, again)
	h.must(err, "second Import")
	eq(h, "counts of a repeated import", n, permiso.ImportCounts{})
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eq(h, "password_hash after a repeated import", got.PasswordHash, "$argon2id$v=19$m=65536,t=4,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ld2g")
	c, err := h.s.GetServiceClient(h.ctx, b.Clients[0].ID)
	h.must(err, "GetServiceClient")
	eq(h, "client name after a repeated import", c.Name, "MT5")

	// An empty batch is fine.
	n, err = h.s.Import(h.ctx, permiso.ImportBatch{})
	h.must(err, "empty Import")
	eq(h, "counts of an empty import", n, permiso.ImportCounts{})
}

func testImportCollision(h *harness) {
	taken := h.user("taken")
	for _, tc := range []struct {
		name   string
		mutate func(b *permiso.ImportBatch)
	}{
		{"username (other case)", func(b *permiso.ImportBatch) { b.Users[0].Username = "TAKEN" }},
		{"email", func(b *permiso.ImportBatch) { b.Users[0].Email = taken.Email }},
		{"role name", func(b *permiso.ImportBatch) { b.Roles[0].Name = permiso.RoleAdmin }},
		{"scope name", func(b *permiso.ImportBatch) { b.Scopes[0].Name = "read:profile" }},
	} {
		b := h.importFixture()
		tc.mutate(&b)
		_, err := h.s.Import(h.ctx, b)
		h.wantErr(err, permiso.ErrAlreadyExists, "Import with a taken %s", tc.name)
		h.importedNothing(b)
	}
	// client_id: with a client stored.
	existing := h.client("")
	b := h.importFixture()
	b.Clients[0].ClientID = existing.ClientID
	_, err := h.s.Import(h.ctx, b)
	h.wantErr(err, permiso.ErrAlreadyExists, "Import with a taken client_id")
	h.importedNothing(b)
}

func testImportUnknownLink(h *harness) {
	for _, tc := range []struct {
		name   string
		mutate func(b *permiso.ImportBatch)
	}{
		{"user role", func(b *permiso.ImportBatch) {
			b.UserRoles = append(b.UserRoles, permiso.ImportLink{From: b.Users[0].ID, To: uuid.New()})
		}},
		{"role scope", func(b *permiso.ImportBatch) {
			b.RoleScopes = append(b.RoleScopes, permiso.ImportLink{From: uuid.New(), To: b.Scopes[0].ID})
		}},
		{"client scope", func(b *permiso.ImportBatch) {
			b.ClientScopes = append(b.ClientScopes, permiso.ImportLink{From: b.Clients[0].ID, To: uuid.New()})
		}},
	} {
		b := h.importFixture()
		tc.mutate(&b)
		_, err := h.s.Import(h.ctx, b)
		h.wantErr(err, permiso.ErrNotFound, "Import with an unknown %s", tc.name)
		h.importedNothing(b)
	}
}

func testImportMissingID(h *harness) {
	b := h.importFixture()
	b.Users[0].ID = uuid.Nil
	_, err := h.s.Import(h.ctx, b)
	if permiso.ErrorCode(err) != permiso.EINVALID {
		h.Fatalf("Import of a user without id: %v, want EINVALID", err)
	}
	b.Users[0].ID = uuid.New()
	h.importedNothing(b)
}

// importedNothing checks that no row of b was written and that the seeded
// role "user" has only its own scopes.
func (h *harness) importedNothing(b permiso.ImportBatch) {
	h.Helper()
	if _, err := h.s.GetScope(h.ctx, b.Scopes[0].ID); err == nil {
		h.Errorf("scope %s written by a failed import", b.Scopes[0].Name)
	}
	if _, err := h.s.GetRole(h.ctx, b.Roles[0].ID); err == nil {
		h.Errorf("role %s written by a failed import", b.Roles[0].Name)
	}
	if _, err := h.s.GetUser(h.ctx, b.Users[0].ID); err == nil {
		h.Errorf("user %s written by a failed import", b.Users[0].Username)
	}
	if _, err := h.s.GetServiceClient(h.ctx, b.Clients[0].ID); err == nil {
		h.Errorf("client %s written by a failed import", b.Clients[0].ClientID)
	}
	ur := h.getRole(roleUserID, "GetRole(user)")
	eqStrings(h, "role user scopes after a failed import", scopeNames(ur.Scopes), []string{"read:profile", "write:profile"})
}
