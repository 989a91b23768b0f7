package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var clientTests = []test{
	{"Clients/CRUD", testClientCRUD},
	{"Clients/NotFound", testClientNotFound},
	{"Clients/UnknownScopeWritesNothing", testClientUnknownScope},
	{"Clients/DeleteCascades", testClientDeleteCascades},
	{"Clients/ListFilters", testClientList},
	{"Clients/AddUsage", testClientUsage},
	{"Clients/TokensRevokedBefore", testClientTokensRevokedBefore},
	{"Clients/UpdateWithScopes", testUpdateClientWithScopes},
}

func testClientCRUD(h *harness) {
	c := permiso.ServiceClient{
		ID:                      uuid.New(),
		ClientID:                "svc-reports",
		SecretHash:              hashOf("secret"),
		PreviousSecretHash:      ptr(hashOf("old-secret")),
		PreviousSecretExpiresAt: ptr(h.at(time.Hour)),
		Name:                    "Reports",
		Description:             ptr("Builds reports"),
		ClientType:              "confidential",
		IsActive:                true,
		IsTrusted:               true,
		AccessTokenLifetime:     600,
		RefreshTokenLifetime:    ptr(86400),
		RateLimitPerMinute:      120,
		RateLimitPerHour:        5000,
		LastUsed:                ptr(h.at(-time.Minute)),
		TotalRequests:           1 << 40,
		ContactEmail:            ptr("ops@example.com"),
		WebsiteURL:              ptr("https://reports.example.com"),
		AllowedIPs:              ptr("10.0.0.0/8,192.0.2.7"),
		WebhookURL:              ptr("https://reports.example.com/hook"),
		TokensRevokedBefore:     ptr(h.at(-30 * time.Minute)),
		CreatedAt:               h.at(-time.Hour),
		UpdatedAt:               h.at(-time.Minute),
	}
	created, err := h.s.CreateServiceClient(h.ctx, c, []uuid.UUID{scopeWriteProfileID, scopeReadProfileID})
	h.must(err, "CreateServiceClient")
	diff(h, "client", created, c)
	eqStrings(h, "created client scopes (by name)", scopeNames(created.Scopes), []string{"read:profile", "write:profile"})

	got, err := h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient")
	diff(h, "client", got, c)
	eqStrings(h, "client scopes (by name)", scopeNames(got.Scopes), []string{"read:profile", "write:profile"})
	byCID, err := h.s.GetServiceClientByClientID(h.ctx, "svc-reports")
	h.must(err, "GetServiceClientByClientID")
	diff(h, "client", byCID, c)

	dup := h.newClient("svc-reports")
	_, err = h.s.CreateServiceClient(h.ctx, dup, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateServiceClient with a taken client_id")

	other := h.client("svc-other")
	if other.ID == uuid.Nil {
		h.Error("CreateServiceClient returned a zero id")
	}
	eq(h, "scopes of a client created without any", len(other.Scopes), 0)
	eqTimePtr(h, "tokens_revoked_before of a client created without one", other.TokensRevokedBefore, nil)

	want := c
	want.SecretHash = hashOf("rotated")
	want.PreviousSecretHash, want.PreviousSecretExpiresAt = nil, nil
	want.Name, want.Description, want.ClientType = "Reports v2", nil, "public"
	want.IsActive, want.IsTrusted = false, false
	want.AccessTokenLifetime, want.RefreshTokenLifetime = 0, nil
	want.RateLimitPerMinute, want.RateLimitPerHour = 1, 2
	want.ContactEmail, want.WebsiteURL, want.AllowedIPs, want.WebhookURL = nil, nil, nil, nil
	want.TokensRevokedBefore = ptr(h.at(123 * time.Millisecond))
	want.UpdatedAt = h.now
	updated, err := h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		id, created := x.ID, x.CreatedAt
		*x = want
		x.ID, x.CreatedAt = id, created
		return nil
	})
	h.must(err, "UpdateServiceClient")
	diff(h, "client", updated, want)
	got, err = h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient after update")
	diff(h, "client", got, want)
	eqStrings(h, "scopes kept by UpdateServiceClient", scopeNames(got.Scopes), []string{"read:profile", "write:profile"})

	_, err = h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error { x.ClientID = "svc-other"; return nil })
	h.wantErr(err, permiso.ErrAlreadyExists, "UpdateServiceClient onto a taken client_id")
	_, err = h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error { x.Name = "nope"; return errCallback })
	h.wantErr(err, errCallback, "UpdateServiceClient with a failing callback")

	h.must(h.s.SetServiceClientScopes(h.ctx, c.ID, []uuid.UUID{scopeAdminUsersID, scopeAdminUsersID}), "SetServiceClientScopes")
	got, err = h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient after SetServiceClientScopes")
	eq(h, "name after refused update", got.Name, "Reports v2")
	eqStrings(h, "client scopes after SetServiceClientScopes", scopeNames(got.Scopes), []string{"admin:users"})
	eqStrings(h, "ScopeNames", got.ScopeNames(), []string{"admin:users"})
	h.wantErr(h.s.SetServiceClientScopes(h.ctx, c.ID, []uuid.UUID{uuid.New()}), permiso.ErrNotFound, "SetServiceClientScopes with an unknown scope")
	got, err = h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient")
	eqStrings(h, "client scopes after failed SetServiceClientScopes", scopeNames(got.Scopes), []string{"admin:users"})

	h.must(h.s.DeleteServiceClient(h.ctx, c.ID), "DeleteServiceClient")
	_, err = h.s.GetServiceClient(h.ctx, c.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetServiceClient after delete")
	_, err = h.s.GetServiceClientByClientID(h.ctx, "svc-reports")
	h.wantErr(err, permiso.ErrNotFound, "GetServiceClientByClientID after delete")
	// Scopes are not owned by the client.
	_, err = h.s.GetScope(h.ctx, scopeAdminUsersID)
	h.must(err, "GetScope after client delete")
}

func testClientNotFound(h *harness) {
	id := uuid.New()
	keep := func(*permiso.ServiceClient) error { return nil }
	scopes := []uuid.UUID{scopeReadProfileID}
	h.wantNotFound(map[string]error{
		"GetServiceClient":              errOf(h.s.GetServiceClient(h.ctx, id)),
		"GetServiceClientByClientID":    errOf(h.s.GetServiceClientByClientID(h.ctx, "ghost")),
		"UpdateServiceClient":           errOf(h.s.UpdateServiceClient(h.ctx, id, keep)),
		"DeleteServiceClient":           h.s.DeleteServiceClient(h.ctx, id),
		"SetServiceClientScopes":        h.s.SetServiceClientScopes(h.ctx, id, scopes),
		"UpdateServiceClientWithScopes": errOf(h.s.UpdateServiceClientWithScopes(h.ctx, id, keep, scopes)),
	})
}

func testClientUnknownScope(h *harness) {
	_, err := h.s.CreateServiceClient(h.ctx, h.newClient("svc-broken"), []uuid.UUID{scopeReadProfileID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "CreateServiceClient with an unknown scope")
	_, err = h.s.GetServiceClientByClientID(h.ctx, "svc-broken")
	h.wantErr(err, permiso.ErrNotFound, "GetServiceClientByClientID after failed create (must be transactional)")
}

func testClientDeleteCascades(h *harness) {
	c := h.client("svc-cascade", scopeReadProfileID)
	keep := h.client("svc-keep", scopeReadProfileID)
	u := h.user("nina")
	sess := h.session(u.ID, &c.ID)
	rt := h.refresh(sess, uuid.Nil, "cascade-token")
	eqPtr(h, "refresh token client id", rt.ClientID, &c.ID)
	keepSess := h.session(u.ID, &keep.ID)
	h.refresh(keepSess, uuid.Nil, "keep-token")
	plain := h.session(u.ID, nil)

	h.must(h.s.DeleteServiceClient(h.ctx, c.ID), "DeleteServiceClient")
	_, err := h.s.GetSession(h.ctx, sess.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetSession of deleted client")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("cascade-token"))
	h.wantErr(err, permiso.ErrNotFound, "GetRefreshTokenByHash of deleted client")
	rp, err := h.s.GetScope(h.ctx, scopeReadProfileID)
	h.must(err, "GetScope")
	eq(h, "scope role count unaffected", rp.RoleCount, 2)
	clients, total, err := h.s.ListServiceClients(h.ctx, permiso.ClientFilter{ScopeID: ptr(scopeReadProfileID)})
	h.must(err, "ListServiceClients(scope)")
	eq(h, "clients holding read:profile after delete", total, 1)
	if len(clients) == 1 {
		eq(h, "remaining client", clients[0].ClientID, "svc-keep")
	}
	// Other rows stay.
	_, err = h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	_, err = h.s.GetSession(h.ctx, keepSess.ID)
	h.must(err, "GetSession of another client")
	_, err = h.s.GetSession(h.ctx, plain.ID)
	h.must(err, "GetSession without client")
	h.getRefresh("keep-token")
}

func testClientList(h *harness) {
	mk := func(id string, active, trusted bool, typ string, created time.Time, scopes ...uuid.UUID) {
		c := h.newClient(id)
		c.IsActive, c.IsTrusted, c.ClientType, c.CreatedAt, c.UpdatedAt = active, trusted, typ, created, created
		c.Description = ptr("about " + id)
		_, err := h.s.CreateServiceClient(h.ctx, c, scopes)
		h.must(err, "CreateServiceClient(%s)", id)
	}
	// Created out of order: the list is ordered by created_at.
	mk("c-gamma", true, false, "public", h.at(3*time.Second))
	mk("c-alpha", true, true, "confidential", h.at(1*time.Second), scopeReadProfileID)
	mk("c-delta", false, false, "confidential", h.at(4*time.Second), scopeReadProfileID, scopeAdminUsersID)
	mk("c-beta", false, true, "confidential", h.at(2*time.Second))

	ids := func(cs []permiso.ServiceClient) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ClientID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    permiso.ClientFilter
		want []string
	}{
		{"all", permiso.ClientFilter{}, []string{"c-alpha", "c-beta", "c-gamma", "c-delta"}},
		{"active", permiso.ClientFilter{IsActive: ptr(true)}, []string{"c-alpha", "c-gamma"}},
		{"inactive", permiso.ClientFilter{IsActive: ptr(false)}, []string{"c-beta", "c-delta"}},
		{"trusted", permiso.ClientFilter{IsTrusted: ptr(true)}, []string{"c-alpha", "c-beta"}},
		{"public", permiso.ClientFilter{ClientType: "public"}, []string{"c-gamma"}},
		{"scope read:profile", permiso.ClientFilter{ScopeID: ptr(scopeReadProfileID)}, []string{"c-alpha", "c-delta"}},
		{"search DELTA", permiso.ClientFilter{Search: "DELTA"}, []string{"c-delta"}},
		{"search and inactive", permiso.ClientFilter{Search: "c-", IsActive: ptr(false)}, []string{"c-beta", "c-delta"}},
		{"page", permiso.ClientFilter{Offset: 1, Limit: 2}, []string{"c-beta", "c-gamma"}},
	} {
		cs, total, err := h.s.ListServiceClients(h.ctx, tc.f)
		h.must(err, "ListServiceClients(%s)", tc.name)
		eqStrings(h, "ListServiceClients("+tc.name+")", ids(cs), tc.want)
		if tc.name == "page" {
			eq(h, "total of a page", total, 4)
		} else {
			eq(h, "total of ListServiceClients("+tc.name+")", total, len(tc.want))
		}
	}
	cs, _, err := h.s.ListServiceClients(h.ctx, permiso.ClientFilter{Search: "c-delta"})
	h.must(err, "ListServiceClients(c-delta)")
	if len(cs) == 1 {
		eqStrings(h, "listed client scopes", scopeNames(cs[0].Scopes), []string{"admin:users", "read:profile"})
	}
}

func testClientUsage(h *harness) {
	a := h.client("svc-a")
	b := h.client("svc-b")
	t1, t0, t2 := h.at(time.Minute), h.at(-time.Minute), h.at(2*time.Minute)

	h.must(h.s.AddClientUsage(h.ctx, nil), "AddClientUsage(nil)")
	h.must(h.s.AddClientUsage(h.ctx, map[uuid.UUID]permiso.ClientUsage{
		a.ID:       {Requests: 5, LastUsed: t1},
		b.ID:       {Requests: 1, LastUsed: t0},
		uuid.New(): {Requests: 7, LastUsed: t2}, // unknown: skipped
	}), "AddClientUsage")
	h.must(h.s.AddClientUsage(h.ctx, map[uuid.UUID]permiso.ClientUsage{
		a.ID: {Requests: 3, LastUsed: t0}, // older: last_used stays t1
	}), "AddClientUsage with an older time")

	got, err := h.s.GetServiceClient(h.ctx, a.ID)
	h.must(err, "GetServiceClient(a)")
	eq(h, "a total_requests", got.TotalRequests, int64(8))
	eqTimePtr(h, "a last_used never goes backward", got.LastUsed, &t1)

	h.must(h.s.AddClientUsage(h.ctx, map[uuid.UUID]permiso.ClientUsage{
		a.ID: {Requests: 2, LastUsed: t2},
	}), "AddClientUsage with a newer time")
	got, err = h.s.GetServiceClient(h.ctx, a.ID)
	h.must(err, "GetServiceClient(a)")
	eq(h, "a total_requests", got.TotalRequests, int64(10))
	eqTimePtr(h, "a last_used moves forward", got.LastUsed, &t2)

	got, err = h.s.GetServiceClient(h.ctx, b.ID)
	h.must(err, "GetServiceClient(b)")
	eq(h, "b total_requests", got.TotalRequests, int64(1))
	eqTimePtr(h, "b last_used", got.LastUsed, &t0)
}

// testClientTokensRevokedBefore: the client's revoke-all cut-off is kept to
// the microsecond (sub-second cut-offs, docs/security-model.md), read back
// by every getter and the list, moved by UpdateServiceClient like any other
// field (RevokeTokensBefore only forward), and cleared with NULL.
func testClientTokensRevokedBefore(h *harness) {
	c := h.client("svc-cutoff")
	eqTimePtr(h, "tokens_revoked_before of a new client", c.TokensRevokedBefore, nil)
	// After the client's creation (h.now) whatever h.now's fraction of a
	// second, so that a token issued at the cut-off is not also one issued
	// before the client existed.
	cutoff := h.now.Truncate(time.Second).Add(time.Second + 987*time.Millisecond + 654*time.Microsecond)
	updated, err := h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.RevokeTokensBefore(cutoff)
		x.IsActive = false
		return nil
	})
	h.must(err, "UpdateServiceClient(cut-off)")
	eqTimePtr(h, "tokens_revoked_before after update", updated.TokensRevokedBefore, &cutoff)
	byID, err := h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient")
	eqTimePtr(h, "tokens_revoked_before by id", byID.TokensRevokedBefore, &cutoff)
	byCID, err := h.s.GetServiceClientByClientID(h.ctx, "svc-cutoff")
	h.must(err, "GetServiceClientByClientID")
	eqTimePtr(h, "tokens_revoked_before by client_id", byCID.TokensRevokedBefore, &cutoff)
	list, _, err := h.s.ListServiceClients(h.ctx, permiso.ClientFilter{Search: "svc-cutoff"})
	h.must(err, "ListServiceClients")
	if len(list) != 1 {
		h.Fatalf("ListServiceClients found %d clients, want 1", len(list))
	}
	eqTimePtr(h, "tokens_revoked_before in the list", list[0].TokensRevokedBefore, &cutoff)

	// Enabling the client again leaves the cut-off; an earlier one does
	// not move it back.
	updated, err = h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.IsActive = true
		x.RevokeTokensBefore(cutoff.Add(-time.Hour))
		return nil
	})
	h.must(err, "UpdateServiceClient(enable)")
	eq(h, "is_active after enabling", updated.IsActive, true)
	eqTimePtr(h, "tokens_revoked_before after enabling", updated.TokensRevokedBefore, &cutoff)
	if !updated.IssuedTokenDead(cutoff.Add(-time.Millisecond)) || updated.IssuedTokenDead(cutoff) {
		h.Errorf("IssuedTokenDead around the stored cut-off %v is wrong", cutoff)
	}

	updated, err = h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.TokensRevokedBefore = nil
		return nil
	})
	h.must(err, "UpdateServiceClient(clear)")
	eqTimePtr(h, "tokens_revoked_before cleared", updated.TokensRevokedBefore, nil)
}

// testUpdateClientWithScopes: the client's fields and scopes change in one
// transaction; an unknown scope id, a taken client_id or a failing
// callback writes neither.
func testUpdateClientWithScopes(h *harness) {
	c, err := h.s.CreateServiceClient(h.ctx, h.newClient("svc-both"), []uuid.UUID{scopeReadProfileID})
	h.must(err, "CreateServiceClient")
	_, err = h.s.CreateServiceClient(h.ctx, h.newClient("svc-taken"), nil)
	h.must(err, "CreateServiceClient(svc-taken)")
	desc := "nightly exports"
	got, err := h.s.UpdateServiceClientWithScopes(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.Description = &desc
		return nil
	}, []uuid.UUID{scopeAdminUsersID, scopeAdminUsersID, scopeReadProfileID})
	h.must(err, "UpdateServiceClientWithScopes")
	eqPtr(h, "description after UpdateServiceClientWithScopes", got.Description, &desc)
	eqStrings(h, "scopes after UpdateServiceClientWithScopes", scopeNames(got.Scopes), []string{"admin:users", "read:profile"})

	for _, tc := range []struct {
		name   string
		fn     func(*permiso.ServiceClient) error
		scopes []uuid.UUID
		want   error
	}{
		{"an unknown scope", func(x *permiso.ServiceClient) error { x.Name = "renamed"; return nil }, []uuid.UUID{scopeReadProfileID, uuid.New()}, permiso.ErrNotFound},
		{"a taken client_id", func(x *permiso.ServiceClient) error { x.ClientID = "svc-taken"; return nil }, []uuid.UUID{scopeReadProfileID}, permiso.ErrAlreadyExists},
		{"a failing callback", func(x *permiso.ServiceClient) error { x.Name = "renamed"; return errCallback }, []uuid.UUID{scopeReadProfileID}, errCallback},
	} {
		_, err = h.s.UpdateServiceClientWithScopes(h.ctx, c.ID, tc.fn, tc.scopes)
		h.wantErr(err, tc.want, "UpdateServiceClientWithScopes with %s", tc.name)
		got, err = h.s.GetServiceClient(h.ctx, c.ID)
		h.must(err, "GetServiceClient")
		eq(h, "client_id after a failed update with "+tc.name+" (must be transactional)", got.ClientID, "svc-both")
		eq(h, "name after a failed update with "+tc.name+" (must be transactional)", got.Name, c.Name)
		eqStrings(h, "scopes after a failed update with "+tc.name, scopeNames(got.Scopes), []string{"admin:users", "read:profile"})
	}

	// Nil scopes: the client keeps its fields' change and holds none.
	got, err = h.s.UpdateServiceClientWithScopes(h.ctx, c.ID, func(*permiso.ServiceClient) error { return nil }, nil)
	h.must(err, "UpdateServiceClientWithScopes(nil)")
	eqStrings(h, "scopes after UpdateServiceClientWithScopes(nil)", scopeNames(got.Scopes), []string{})
}
