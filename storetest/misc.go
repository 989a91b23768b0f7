package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var miscTests = []test{
	{"Store/PingAndBackend", testPingBackend},
	{"Store/MigrationsApplied", testMigrationsApplied},
	{"Seed/RolesAndScopes", testSeed},
	{"Time/UTCRoundTrip", testUTCRoundTrip},
}

func testPingBackend(h *harness) {
	h.must(h.s.Ping(h.ctx), "Ping")
	if b := h.s.Backend(); b != "sqlite" && b != "postgres" {
		h.Errorf("Backend() = %q, want sqlite or postgres", b)
	}
}

func testMigrationsApplied(h *harness) {
	st, err := h.s.MigrationStatus(h.ctx)
	h.must(err, "MigrationStatus")
	if len(st) < 2 {
		h.Fatalf("MigrationStatus returned %d migrations, want at least 2", len(st))
	}
	for i, m := range st {
		eq(h, "migration version", m.Version, i+1)
		if !m.Applied || m.AppliedAt == nil {
			h.Errorf("migration %d (%s) not applied: %+v", m.Version, m.Name, m)
		}
	}
	eq(h, "first migration name", st[0].Name, "schema")
	eq(h, "second migration name", st[1].Name, "seed")
	if p := permiso.Pending(st); len(p) != 0 {
		h.Errorf("pending migrations on a migrated store: %+v", p)
	}
	applied, err := h.s.MigrateUp(h.ctx)
	h.must(err, "MigrateUp on a migrated store")
	eq(h, "migrations applied by a second MigrateUp", len(applied), 0)
	// The seed is still there exactly once.
	roles, total, err := h.s.ListRoles(h.ctx, permiso.RoleFilter{})
	h.must(err, "ListRoles")
	eq(h, "roles after second MigrateUp", total, 3)
	eq(h, "roles listed", len(roles), 3)
}

func testSeed(h *harness) {
	roles, total, err := h.s.ListRoles(h.ctx, permiso.RoleFilter{})
	h.must(err, "ListRoles")
	eq(h, "seeded roles", total, 3)
	eqStrings(h, "seeded role names (ordered by name)", roleNames(roles), []string{"admin", "service", "user"})

	for _, want := range []struct {
		name string
		id   uuid.UUID
		desc string
	}{
		{permiso.RoleUser, roleUserID, "Standard user role"},
		{permiso.RoleAdmin, roleAdminID, "Administrator role"},
		{permiso.RoleService, roleServiceID, "Service client role"},
	} {
		r, err := h.s.GetRoleByName(h.ctx, want.name)
		h.must(err, "GetRoleByName(%s)", want.name)
		eq(h, "role "+want.name+" id", r.ID, want.id)
		eqPtr(h, "role "+want.name+" description", r.Description, &want.desc)
		eq(h, "role "+want.name+" user count", r.UserCount, 0)
		eqTime(h, "role "+want.name+" created_at", r.CreatedAt, r.CreatedAt)
		if r.CreatedAt.IsZero() || r.CreatedAt.After(time.Now().Add(time.Minute)) {
			h.Errorf("role %s created_at = %v, want a time at or before now", want.name, r.CreatedAt)
		}
	}

	scopes, total, err := h.s.ListScopes(h.ctx, permiso.ScopeFilter{})
	h.must(err, "ListScopes")
	eq(h, "seeded scopes", total, len(seedScopes))
	eq(h, "seeded scopes listed", len(scopes), len(seedScopes))
	for _, want := range seedScopes {
		s, err := h.s.GetScopeByName(h.ctx, want.name)
		h.must(err, "GetScopeByName(%s)", want.name)
		eq(h, "scope "+want.name+" id", s.ID, want.id)
		eq(h, "scope "+want.name+" resource", s.ResourceName(), want.name[len(s.Action())+1:])
		if s.Resource == nil || *s.Resource != s.ResourceName() {
			h.Errorf("scope %s resource column = %v, want %q", want.name, fmtPtr(s.Resource), s.ResourceName())
		}
		if s.Description == nil || *s.Description == "" {
			h.Errorf("scope %s has no description", want.name)
		}
	}
	for i := 1; i < len(scopes); i++ {
		if scopes[i-1].Name >= scopes[i].Name {
			h.Errorf("ListScopes not ordered by name: %q before %q", scopes[i-1].Name, scopes[i].Name)
		}
	}

	user := h.getRole(roleUserID, "GetRole(user)")
	eqStrings(h, "role user scopes", scopeNames(user.Scopes), []string{"read:profile", "write:profile"})
	admin := h.getRole(roleAdminID, "GetRole(admin)")
	eqStrings(h, "role admin scopes", scopeNames(admin.Scopes), permiso.SortedUnique(permiso.DefaultScopes))

	rp, err := h.s.GetScope(h.ctx, scopeReadProfileID)
	h.must(err, "GetScope(read:profile)")
	eq(h, "read:profile role count", rp.RoleCount, 2)
	au, err := h.s.GetScope(h.ctx, scopeAdminUsersID)
	h.must(err, "GetScope(admin:users)")
	eq(h, "admin:users role count", au.RoleCount, 1)

	_, total, err = h.s.ListUsers(h.ctx, permiso.UserFilter{})
	h.must(err, "ListUsers")
	eq(h, "users in a fresh store", total, 0)
}

// testUTCRoundTrip writes times in a non-UTC zone (with sub-second digits)
// and expects the same instants back, in time.UTC.
func testUTCRoundTrip(h *harness) {
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	base := time.Date(2031, 3, 4, 5, 6, 7, 123456789, zone).Truncate(time.Microsecond)
	if base.Location() == time.UTC {
		h.Fatal("test setup: base time must not be UTC")
	}
	t1, t2, t3 := base, base.Add(90*time.Minute+time.Microsecond), base.Add(48*time.Hour)

	u := h.newUser("zoned")
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = t1, t1, t1
	u.LastLogin, u.LockedUntil, u.TokensRevokedBefore = &t2, &t3, &t2
	u, err := h.s.CreateUser(h.ctx, u, nil)
	h.must(err, "CreateUser")
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")

	sess, err := h.s.CreateSession(h.ctx, permiso.Session{
		UserID: u.ID, IPAddress: "2001:db8::1", CreatedAt: t1, LastActivity: t2, ExpiresAt: t3,
	})
	h.must(err, "CreateSession")
	gs, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")

	rt := h.newRefresh(gs, uuid.New(), "zoned-token")
	rt.IssuedAt, rt.ExpiresAt = t1, t3
	_, err = h.s.CreateRefreshToken(h.ctx, rt)
	h.must(err, "CreateRefreshToken")
	grt := h.getRefresh("zoned-token")

	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{{
		OccurredAt: t2, ActorType: "system", Action: "test.zoned", Result: "success",
	}}), "AppendAuditEvents")
	evs, _, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: "test.zoned"})
	h.must(err, "ListAuditEvents")
	if len(evs) != 1 {
		h.Fatalf("ListAuditEvents returned %d events, want 1", len(evs))
	}

	k, err := h.s.CreateSigningKey(h.ctx, permiso.SigningKey{
		ID: "zoned-kid", Algorithm: "ES256", PrivateKey: []byte{1}, PublicKey: []byte{2},
		CreatedAt: t1, ExpiresAt: &t3,
	})
	h.must(err, "CreateSigningKey")
	keys, err := h.s.ListSigningKeys(h.ctx, t1)
	h.must(err, "ListSigningKeys")
	if len(keys) != 1 || keys[0].ID != k.ID {
		h.Fatalf("ListSigningKeys = %+v, want the zoned key", keys)
	}

	// Every time read back (a nil pointer where one is written fails).
	for _, c := range []struct {
		what      string
		got, want *time.Time
	}{
		{"user created_at", &got.CreatedAt, &t1},
		{"user updated_at", &got.UpdatedAt, &t1},
		{"user password_changed_at", &got.PasswordChangedAt, &t1},
		{"user last_login", got.LastLogin, &t2},
		{"user locked_until", got.LockedUntil, &t3},
		{"user tokens_revoked_before", got.TokensRevokedBefore, &t2},
		{"session created_at", &gs.CreatedAt, &t1},
		{"session last_activity", &gs.LastActivity, &t2},
		{"session expires_at", &gs.ExpiresAt, &t3},
		{"refresh issued_at", &grt.IssuedAt, &t1},
		{"refresh expires_at", &grt.ExpiresAt, &t3},
		{"audit occurred_at", &evs[0].OccurredAt, &t2},
		{"key created_at", &keys[0].CreatedAt, &t1},
		{"key expires_at", keys[0].ExpiresAt, &t3},
	} {
		eqTimePtr(h, c.what, c.got, c.want)
	}
}
