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

// read is one way of reading a stored value back: how names it in the
// failures ("read back by username").
type read[T any] struct {
	how string
	get func() (T, error)
}

// only reads the one value a list call returns.
func only[T any](h *harness, call string, list []T, err error) (T, error) {
	h.must(err, "%s", call)
	if len(list) != 1 {
		h.Fatalf("%s returned %d values, want 1", call, len(list))
	}
	return list[0], nil
}

// checkCreated stores v with create and checks that the store answers v
// exactly, and so does each read.
func checkCreated[T any](h *harness, noun string, v T, create func() (T, error), reads ...read[T]) {
	h.Helper()
	created, err := create()
	h.must(err, "create %s", noun)
	diff(h, "created "+noun, created, v)
	checkReads(h, noun, v, reads)
}

// checkUpdated replaces old by want through update's callback, which must
// be given old, and checks that the store answers want exactly, and so
// does each read.
func checkUpdated[T any](h *harness, noun string, old, want T, update func(func(*T) error) (T, error), reads ...read[T]) {
	h.Helper()
	updated, err := update(func(x *T) error {
		diff(h, noun+" given to the update callback", *x, old)
		*x = want
		return nil
	})
	h.must(err, "update %s", noun)
	diff(h, "updated "+noun, updated, want)
	checkReads(h, "updated "+noun, want, reads)
}

func checkReads[T any](h *harness, noun string, want T, reads []read[T]) {
	h.Helper()
	for _, r := range reads {
		got, err := r.get()
		h.must(err, "%s %s", noun, r.how)
		diff(h, noun+" "+r.how, got, want)
	}
}

// crud are the store calls of an entity read by its key, by a second
// unique value (by) and in a list, for roundTrip.
type crud[T any] struct {
	create     func(v T) (T, error)
	get, getBy func(v T) (T, error)
	by         string
	list       func() ([]T, error)
	update     func(v T, f func(*T) error) (T, error)
}

// roundTrip creates v and checks every read of it, then updates it to want
// (same key) and reads that back.
func roundTrip[T any](h *harness, noun string, v, want T, c crud[T]) {
	h.Helper()
	get := read[T]{"read back", func() (T, error) { return c.get(v) }}
	checkCreated(h, noun, v, func() (T, error) { return c.create(v) }, get,
		read[T]{"read back by " + c.by, func() (T, error) { return c.getBy(v) }},
		read[T]{"listed", func() (T, error) {
			list, err := c.list()
			return only(h, "list of "+noun, list, err)
		}})
	checkUpdated(h, noun, v, want, func(f func(*T) error) (T, error) { return c.update(v, f) }, get)
}

func testRoundTripClient(h *harness) {
	type client = permiso.ServiceClient
	var c, want client
	fillAll(h, &c, "created")
	c.ClientType = "confidential"
	fillAll(h, &want, "updated")
	want.ID, want.CreatedAt, want.ClientType = c.ID, c.CreatedAt, "public"
	roundTrip(h, "client", c, want, crud[client]{
		create: func(c client) (client, error) {
			return h.s.CreateServiceClient(h.ctx, c, []uuid.UUID{scopeReadProfileID})
		},
		get:   func(c client) (client, error) { return h.s.GetServiceClient(h.ctx, c.ID) },
		by:    "client_id",
		getBy: func(c client) (client, error) { return h.s.GetServiceClientByClientID(h.ctx, c.ClientID) },
		list: func() ([]client, error) {
			list, _, err := h.s.ListServiceClients(h.ctx, permiso.ClientFilter{})
			return list, err
		},
		update: func(c client, f func(*client) error) (client, error) { return h.s.UpdateServiceClient(h.ctx, c.ID, f) },
	})

	// Times left zero are stamped by the store: compared approximately.
	d := h.newClient("stamped")
	d.CreatedAt, d.UpdatedAt = time.Time{}, time.Time{}
	stamped, err := h.s.CreateServiceClient(h.ctx, d, nil)
	h.must(err, "CreateServiceClient without times")
	d.ID, d.CreatedAt, d.UpdatedAt = stamped.ID, time.Now().UTC(), time.Now().UTC()
	diff(h, "client stamped by the store", stamped, d, within(time.Minute))
}

func testRoundTripUser(h *harness) {
	type user = permiso.User
	var u, want user
	fillAll(h, &u, "created")
	u.Username, u.Email = "round-trip", "round-trip@example.com"
	fillAll(h, &want, "updated")
	want.ID, want.CreatedAt = u.ID, u.CreatedAt
	want.Username, want.Email = "round-trip-2", "round-trip-2@example.com"
	roundTrip(h, "user", u, want, crud[user]{
		create: func(u user) (user, error) { return h.s.CreateUser(h.ctx, u, []uuid.UUID{roleUserID}) },
		get:    func(u user) (user, error) { return h.s.GetUser(h.ctx, u.ID) },
		by:     "username",
		getBy:  func(u user) (user, error) { return h.s.GetUserByUsername(h.ctx, u.Username) },
		list: func() ([]user, error) {
			list, _, err := h.s.ListUsers(h.ctx, permiso.UserFilter{})
			return list, err
		},
		update: func(u user, f func(*user) error) (user, error) { return h.s.UpdateUser(h.ctx, u.ID, f) },
	})
}

func testRoundTripRoleScope(h *harness) {
	var s permiso.Scope
	fillAll(h, &s, "scope")
	s.Name = "round:trip"
	checkCreated(h, "scope", s, func() (permiso.Scope, error) { return h.s.CreateScope(h.ctx, s) },
		read[permiso.Scope]{"read back", func() (permiso.Scope, error) { return h.s.GetScope(h.ctx, s.ID) }})

	var r permiso.Role
	fillAll(h, &r, "role")
	checkCreated(h, "role", r, func() (permiso.Role, error) { return h.s.CreateRole(h.ctx, r, []uuid.UUID{s.ID}) })
	gr := h.getRole(r.ID, "GetRole")
	diff(h, "role read back", gr, r)
	if len(gr.Scopes) != 1 {
		h.Fatalf("role scopes = %d, want 1", len(gr.Scopes))
	}
	diff(h, "scope of the role", gr.Scopes[0], s)

	var wr permiso.Role
	fillAll(h, &wr, "role-updated")
	wr.ID, wr.CreatedAt = r.ID, r.CreatedAt
	checkUpdated(h, "role", r, wr, func(f func(*permiso.Role) error) (permiso.Role, error) {
		return h.s.UpdateRole(h.ctx, r.ID, f)
	})

	var ws permiso.Scope
	fillAll(h, &ws, "scope-updated")
	ws.ID, ws.CreatedAt, ws.Name = s.ID, s.CreatedAt, "round:trip2"
	checkUpdated(h, "scope", s, ws, func(f func(*permiso.Scope) error) (permiso.Scope, error) {
		return h.s.UpdateScope(h.ctx, s.ID, f)
	})
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
	checkCreated(h, "session", s, func() (permiso.Session, error) { return h.s.CreateSession(h.ctx, s) },
		read[permiso.Session]{"read back", func() (permiso.Session, error) { return h.s.GetSession(h.ctx, s.ID) }})

	var rt permiso.RefreshToken
	fillAll(h, &rt, "refresh")
	rt.UserID, rt.ClientID, rt.SessionID = u.ID, &cl.ID, s.ID
	rt.TokenHash = hashOf("round-trip")
	rt.ExpiresAt = h.at(time.Hour)
	checkCreated(h, "refresh token", rt, func() (permiso.RefreshToken, error) { return h.s.CreateRefreshToken(h.ctx, rt) },
		read[permiso.RefreshToken]{"read back", func() (permiso.RefreshToken, error) { return h.getRefresh("round-trip"), nil }})
}

func testRoundTripActionToken(h *harness) {
	u := h.user("at-owner")
	var t permiso.ActionToken
	fillAll(h, &t, "action")
	t.UserID, t.Purpose, t.TokenHash = u.ID, "password_reset", hashOf("action-rt")
	t.ExpiresAt = h.at(time.Hour)
	t.UsedAt = nil // GetActionToken answers only unused tokens
	checkCreated(h, "action token", t, func() (permiso.ActionToken, error) { return h.s.CreateActionToken(h.ctx, t) },
		read[permiso.ActionToken]{"read back", func() (permiso.ActionToken, error) {
			return h.s.GetActionToken(h.ctx, t.Purpose, t.TokenHash, h.now)
		}})
}

func testRoundTripAudit(h *harness) {
	var e permiso.AuditEvent
	fillAll(h, &e, "audit")
	e.Action = "round.trip"
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{e}), "AppendAuditEvents")
	checkReads(h, "audit event", e, []read[permiso.AuditEvent]{{"read back", func() (permiso.AuditEvent, error) {
		evs, _, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: e.Action})
		return only(h, "ListAuditEvents", evs, err)
	}}})

	// Details that are no JSON object are refused before anything is
	// written.
	bad := e
	bad.ID, bad.Action, bad.Details = uuid.Nil, "round.trip.bad", map[string]any{"f": func() {}}
	err := h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{{Action: "round.trip.bad", ActorType: "system", Result: "success"}, bad})
	if permiso.ErrorCode(err) != permiso.EINVALID {
		h.Errorf("AppendAuditEvents with details that are not JSON: %v, want an EINVALID error", err)
	}
	evs, _, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: "round.trip.bad"})
	h.must(err, "ListAuditEvents")
	if len(evs) != 0 {
		h.Errorf("a refused batch wrote %d events", len(evs))
	}
}

func testRoundTripSigningKey(h *harness) {
	var k permiso.SigningKey
	fillAll(h, &k, "key")
	k.ExpiresAt = ptr(h.at(time.Hour))
	checkCreated(h, "signing key", k, func() (permiso.SigningKey, error) { return h.s.CreateSigningKey(h.ctx, k) },
		read[permiso.SigningKey]{"read back", func() (permiso.SigningKey, error) {
			keys, err := h.s.ListSigningKeys(h.ctx, h.now)
			return only(h, "ListSigningKeys", keys, err)
		}})
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
