package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// roundTripTests write every field of each entity, set to a non-zero value
// by reflection (fillAll), and read the whole value back: a field added
// to a domain struct that a backend does not store fails here. The
// errorMessageTests pin the caller-visible words, the same on every
// backend.
var roundTripTests = []test{
	{"RoundTrip/ServiceClient", testRoundTripClient},
	{"RoundTrip/User", testRoundTripUser},
	{"RoundTrip/RoleAndScope", testRoundTripRoleScope},
	{"RoundTrip/SessionAndRefreshToken", testRoundTripSessionToken},
	{"RoundTrip/ActionToken", testRoundTripActionToken},
	{"RoundTrip/AuditEvent", testRoundTripAudit},
	{"RoundTrip/SigningKey", testRoundTripSigningKey},
	{"Errors/SameMessages", testErrorMessages},
}

func testRoundTripClient(h *harness) {
	var c permiso.ServiceClient
	fillAll(h, &c, "created")
	c.ClientType = "confidential"
	created, err := h.s.CreateServiceClient(h.ctx, c, []uuid.UUID{scopeReadProfileID})
	h.must(err, "CreateServiceClient")
	diff(h, "created client", created, c)
	got, err := h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient")
	diff(h, "client read back", got, c)
	got, err = h.s.GetServiceClientByClientID(h.ctx, c.ClientID)
	h.must(err, "GetServiceClientByClientID")
	diff(h, "client read back by client_id", got, c)
	list, _, err := h.s.ListServiceClients(h.ctx, permiso.ClientFilter{})
	h.must(err, "ListServiceClients")
	if len(list) != 1 {
		h.Fatalf("ListServiceClients returned %d clients, want 1", len(list))
	}
	diff(h, "listed client", list[0], c)

	var want permiso.ServiceClient
	fillAll(h, &want, "updated")
	want.ID, want.CreatedAt, want.ClientType = c.ID, c.CreatedAt, "public"
	updated, err := h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		diff(h, "client given to the update callback", *x, c)
		*x = want
		return nil
	})
	h.must(err, "UpdateServiceClient")
	diff(h, "updated client", updated, want)
	got, err = h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient after update")
	diff(h, "updated client read back", got, want)

	// Times left zero are stamped by the store: compared approximately.
	d := h.newClient("stamped")
	d.CreatedAt, d.UpdatedAt = time.Time{}, time.Time{}
	stamped, err := h.s.CreateServiceClient(h.ctx, d, nil)
	h.must(err, "CreateServiceClient without times")
	d.ID, d.CreatedAt, d.UpdatedAt = stamped.ID, time.Now().UTC(), time.Now().UTC()
	diff(h, "client stamped by the store", stamped, d, within(time.Minute))
}

func testRoundTripUser(h *harness) {
	var u permiso.User
	fillAll(h, &u, "created")
	u.Username, u.Email = "round-trip", "round-trip@example.com"
	created, err := h.s.CreateUser(h.ctx, u, []uuid.UUID{roleUserID})
	h.must(err, "CreateUser")
	diff(h, "created user", created, u)
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	diff(h, "user read back", got, u)
	got, err = h.s.GetUserByUsername(h.ctx, u.Username)
	h.must(err, "GetUserByUsername")
	diff(h, "user read back by username", got, u)
	list, _, err := h.s.ListUsers(h.ctx, permiso.UserFilter{})
	h.must(err, "ListUsers")
	if len(list) != 1 {
		h.Fatalf("ListUsers returned %d users, want 1", len(list))
	}
	diff(h, "listed user", list[0], u)

	var want permiso.User
	fillAll(h, &want, "updated")
	want.ID, want.CreatedAt = u.ID, u.CreatedAt
	want.Username, want.Email = "round-trip-2", "round-trip-2@example.com"
	updated, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error {
		diff(h, "user given to the update callback", *x, u)
		*x = want
		return nil
	})
	h.must(err, "UpdateUser")
	diff(h, "updated user", updated, want)
	got, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser after update")
	diff(h, "updated user read back", got, want)
}

func testRoundTripRoleScope(h *harness) {
	var s permiso.Scope
	fillAll(h, &s, "scope")
	s.Name = "round:trip"
	cs, err := h.s.CreateScope(h.ctx, s)
	h.must(err, "CreateScope")
	diff(h, "created scope", cs, s)
	gs, err := h.s.GetScope(h.ctx, s.ID)
	h.must(err, "GetScope")
	diff(h, "scope read back", gs, s)

	var r permiso.Role
	fillAll(h, &r, "role")
	cr, err := h.s.CreateRole(h.ctx, r, []uuid.UUID{s.ID})
	h.must(err, "CreateRole")
	diff(h, "created role", cr, r)
	gr, err := h.s.GetRole(h.ctx, r.ID)
	h.must(err, "GetRole")
	diff(h, "role read back", gr, r)
	if len(gr.Scopes) != 1 {
		h.Fatalf("role scopes = %d, want 1", len(gr.Scopes))
	}
	diff(h, "scope of the role", gr.Scopes[0], s)

	var wr permiso.Role
	fillAll(h, &wr, "role-updated")
	wr.ID, wr.CreatedAt = r.ID, r.CreatedAt
	ur, err := h.s.UpdateRole(h.ctx, r.ID, func(x *permiso.Role) error {
		diff(h, "role given to the update callback", *x, r)
		*x = wr
		return nil
	})
	h.must(err, "UpdateRole")
	diff(h, "updated role", ur, wr)

	var ws permiso.Scope
	fillAll(h, &ws, "scope-updated")
	ws.ID, ws.CreatedAt, ws.Name = s.ID, s.CreatedAt, "round:trip2"
	us, err := h.s.UpdateScope(h.ctx, s.ID, func(x *permiso.Scope) error {
		diff(h, "scope given to the update callback", *x, s)
		*x = ws
		return nil
	})
	h.must(err, "UpdateScope")
	diff(h, "updated scope", us, ws)
}

func testRoundTripSessionToken(h *harness) {
	u := h.user("rt-owner")
	cl := h.client("rt-client")

	var s permiso.Session
	fillAll(h, &s, "session")
	s.UserID, s.ClientID = u.ID, &cl.ID
	s.IPAddress = "192.0.2.44"
	s.ExpiresAt = h.at(time.Hour)
	s.RevokedAt = nil // a revoked session is checked below
	created, err := h.s.CreateSession(h.ctx, s)
	h.must(err, "CreateSession")
	diff(h, "created session", created, s)
	got, err := h.s.GetSession(h.ctx, s.ID)
	h.must(err, "GetSession")
	diff(h, "session read back", got, s)

	var rt permiso.RefreshToken
	fillAll(h, &rt, "refresh")
	rt.UserID, rt.ClientID, rt.SessionID = u.ID, &cl.ID, s.ID
	rt.TokenHash = hashOf("round-trip")
	rt.ExpiresAt = h.at(time.Hour)
	ct, err := h.s.CreateRefreshToken(h.ctx, rt)
	h.must(err, "CreateRefreshToken")
	diff(h, "created refresh token", ct, rt)
	diff(h, "refresh token read back", h.getRefresh("round-trip"), rt)
}

func testRoundTripActionToken(h *harness) {
	u := h.user("at-owner")
	var t permiso.ActionToken
	fillAll(h, &t, "action")
	t.UserID, t.Purpose, t.TokenHash = u.ID, "password_reset", hashOf("action-rt")
	t.ExpiresAt = h.at(time.Hour)
	t.UsedAt = nil // GetActionToken answers only unused tokens
	created, err := h.s.CreateActionToken(h.ctx, t)
	h.must(err, "CreateActionToken")
	diff(h, "created action token", created, t)
	got, err := h.s.GetActionToken(h.ctx, t.Purpose, t.TokenHash, h.now)
	h.must(err, "GetActionToken")
	diff(h, "action token read back", got, t)
}

func testRoundTripAudit(h *harness) {
	var e permiso.AuditEvent
	fillAll(h, &e, "audit")
	e.Action = "round.trip"
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{e}), "AppendAuditEvents")
	evs, _, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: e.Action})
	h.must(err, "ListAuditEvents")
	if len(evs) != 1 {
		h.Fatalf("ListAuditEvents returned %d events, want 1", len(evs))
	}
	diff(h, "audit event read back", evs[0], e)

	// Details that are no JSON object are refused before anything is
	// written.
	bad := e
	bad.ID, bad.Action, bad.Details = uuid.Nil, "round.trip.bad", map[string]any{"f": func() {}}
	err = h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{{Action: "round.trip.bad", ActorType: "system", Result: "success"}, bad})
	if permiso.ErrorCode(err) != permiso.EINVALID {
		h.Errorf("AppendAuditEvents with details that are not JSON: %v, want an EINVALID error", err)
	}
	evs, _, err = h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: "round.trip.bad"})
	h.must(err, "ListAuditEvents")
	if len(evs) != 0 {
		h.Errorf("a refused batch wrote %d events", len(evs))
	}
}

func testRoundTripSigningKey(h *harness) {
	var k permiso.SigningKey
	fillAll(h, &k, "key")
	k.ExpiresAt = ptr(h.at(time.Hour))
	created, err := h.s.CreateSigningKey(h.ctx, k)
	h.must(err, "CreateSigningKey")
	diff(h, "created signing key", created, k)
	keys, err := h.s.ListSigningKeys(h.ctx, h.now)
	h.must(err, "ListSigningKeys")
	if len(keys) != 1 {
		h.Fatalf("ListSigningKeys returned %d keys, want 1", len(keys))
	}
	diff(h, "signing key read back", keys[0], k)
}

// testErrorMessages pins the caller-visible message of each kind of
// refusal, which the HTTP layer passes on: every backend says the same.
func testErrorMessages(h *harness) {
	unknown := uuid.New()
	u := h.user("msg-user")
	c := h.client("msg-client")
	r := h.role("msg-role")
	s := h.scope("msg:scope")

	_, err := h.s.GetUser(h.ctx, unknown)
	errMessage(h, "GetUser(unknown)", err, "User not found")
	_, err = h.s.GetRole(h.ctx, unknown)
	errMessage(h, "GetRole(unknown)", err, "Role not found")
	_, err = h.s.GetScope(h.ctx, unknown)
	errMessage(h, "GetScope(unknown)", err, "Scope not found")
	_, err = h.s.GetServiceClient(h.ctx, unknown)
	errMessage(h, "GetServiceClient(unknown)", err, "Service client not found")
	_, err = h.s.GetServiceClientByClientID(h.ctx, "nobody")
	errMessage(h, "GetServiceClientByClientID(unknown)", err, "Service client not found")
	errMessage(h, "DeleteServiceClient(unknown)", h.s.DeleteServiceClient(h.ctx, unknown), "Service client not found")
	errMessage(h, "DeleteUser(unknown)", h.s.DeleteUser(h.ctx, unknown), "User not found")
	errMessage(h, "DeleteRole(unknown)", h.s.DeleteRole(h.ctx, unknown), "Role not found")
	errMessage(h, "DeleteScope(unknown)", h.s.DeleteScope(h.ctx, unknown), "Scope not found")
	_, err = h.s.GetSession(h.ctx, unknown)
	errMessage(h, "GetSession(unknown)", err, "Session not found")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("nothing"))
	errMessage(h, "GetRefreshTokenByHash(unknown)", err, "Refresh token not found")

	taken := h.newUser("msg-user")
	taken.Email = "other@example.com"
	_, err = h.s.CreateUser(h.ctx, taken, nil)
	errMessage(h, "CreateUser(taken username)", err, "Username already exists")
	taken = h.newUser("msg-user-2")
	taken.Email = u.Email
	_, err = h.s.CreateUser(h.ctx, taken, nil)
	errMessage(h, "CreateUser(taken email)", err, "Email already exists")
	_, err = h.s.CreateServiceClient(h.ctx, h.newClient(c.ClientID), nil)
	errMessage(h, "CreateServiceClient(taken)", err, "Client ID already exists")
	_, err = h.s.CreateRole(h.ctx, permiso.Role{Name: r.Name}, nil)
	errMessage(h, "CreateRole(taken)", err, "Role name already exists")
	_, err = h.s.CreateScope(h.ctx, permiso.Scope{Name: s.Name})
	errMessage(h, "CreateScope(taken)", err, "Scope name already exists")

	_, err = h.s.CreateServiceClient(h.ctx, h.newClient(""), []uuid.UUID{unknown})
	errMessage(h, "CreateServiceClient(unknown scope)", err, "Scope not found")
	_, err = h.s.CreateUser(h.ctx, h.newUser(""), []uuid.UUID{unknown})
	errMessage(h, "CreateUser(unknown role)", err, "Role not found")
	_, err = h.s.CreateRole(h.ctx, permiso.Role{Name: "msg-role-2"}, []uuid.UUID{unknown})
	errMessage(h, "CreateRole(unknown scope)", err, "Scope not found")
	errMessage(h, "SetServiceClientScopes(unknown client)",
		h.s.SetServiceClientScopes(h.ctx, unknown, nil), "Service client not found")
	errMessage(h, "SetUserRoles(unknown user)", h.s.SetUserRoles(h.ctx, unknown, nil), "User not found")

	_, err = h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error { return nil })
	h.must(err, "UpdateUser")
	h.must(h.s.SetUserRoles(h.ctx, u.ID, []uuid.UUID{r.ID}), "SetUserRoles")
	errMessage(h, "DeleteRole(assigned)", h.s.DeleteRole(h.ctx, r.ID), "Role is assigned to users")
	h.must(h.s.SetRoleScopes(h.ctx, r.ID, []uuid.UUID{s.ID}), "SetRoleScopes")
	errMessage(h, "DeleteScope(assigned)", h.s.DeleteScope(h.ctx, s.ID), "Scope is assigned to roles")
}
