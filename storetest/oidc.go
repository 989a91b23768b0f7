package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var oidcTests = []test{
	{"OIDC/ClientMetadata", testOIDCClientMetadata},
	{"OIDC/AuthCodeRoundTrip", testAuthCodeRoundTrip},
	{"OIDC/AuthCodeRedeemOnce", testAuthCodeRedeemOnce},
	{"OIDC/AuthCodeExpired", testAuthCodeExpired},
	{"OIDC/BrowserSession", testBrowserSession},
	{"RoundTrip/AuthCode", testRoundTripAuthCode},
	{"OIDC/BrowserSessionAMR", testBrowserSessionAMR},
}

// testRoundTripAuthCode: every field of an authorization code, filled by
// reflection, is stored and read back (the used ones by RedeemAuthCode).
func testRoundTripAuthCode(h *harness) {
	code, _ := oidcFixture(h)
	var c permiso.AuthCode
	fillAll(h, &c, "created")
	c.ClientID, c.UserID, c.BrowserSessionID = code.ClientID, code.UserID, code.BrowserSessionID
	c.Scopes = permiso.SortedUnique(c.Scopes)
	used, sid := c.UsedAt, c.SessionID
	c.UsedAt, c.SessionID = nil, nil
	c.ExpiresAt = h.at(time.Hour)
	h.must(h.s.CreateAuthCode(h.ctx, c), "CreateAuthCode")
	got, err := h.s.GetAuthCode(h.ctx, c.CodeHash)
	h.must(err, "GetAuthCode")
	diff(h, "authorization code read back", got, c)
	h.must(h.s.RedeemAuthCode(h.ctx, c.CodeHash, *sid, *used), "RedeemAuthCode")
	c.UsedAt, c.SessionID = used, sid
	got, err = h.s.GetAuthCode(h.ctx, c.CodeHash)
	h.must(err, "GetAuthCode after redemption")
	diff(h, "redeemed authorization code", got, c)
}

// testOIDCClientMetadata: the browser-flow fields of a client round-trip
// through create and update; a client created without them has none.
func testOIDCClientMetadata(h *harness) {
	plain := h.client("svc-plain")
	eqStrings(h, "plain RedirectURIs", plain.RedirectURIs, nil)
	eqStrings(h, "plain GrantTypes", plain.GrantTypes, nil)
	eq(h, "plain TokenEndpointAuthMethod", plain.TokenEndpointAuthMethod, "")

	in := h.newClient("svc-rp")
	in.RedirectURIs = []string{"https://rp.example.com/cb", "http://127.0.0.1:8080/cb?x=1"}
	in.PostLogoutRedirectURIs = []string{"https://rp.example.com/bye"}
	in.GrantTypes = []string{permiso.GrantTypeAuthorizationCode, "refresh_token"}
	in.TokenEndpointAuthMethod = permiso.AuthMethodSecretPost
	c, err := h.s.CreateServiceClient(h.ctx, in, nil)
	h.must(err, "CreateServiceClient")
	eqStrings(h, "RedirectURIs", c.RedirectURIs, in.RedirectURIs)
	eqStrings(h, "PostLogoutRedirectURIs", c.PostLogoutRedirectURIs, in.PostLogoutRedirectURIs)
	eqStrings(h, "GrantTypes", c.GrantTypes, in.GrantTypes)
	eq(h, "TokenEndpointAuthMethod", c.TokenEndpointAuthMethod, permiso.AuthMethodSecretPost)
	got, err := h.s.GetServiceClientByClientID(h.ctx, "svc-rp")
	h.must(err, "GetServiceClientByClientID")
	eqStrings(h, "read RedirectURIs", got.RedirectURIs, in.RedirectURIs)

	up, err := h.s.UpdateServiceClient(h.ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.RedirectURIs = []string{"https://rp.example.com/other"}
		x.PostLogoutRedirectURIs = nil
		x.TokenEndpointAuthMethod = permiso.AuthMethodNone
		return nil
	})
	h.must(err, "UpdateServiceClient")
	eqStrings(h, "updated RedirectURIs", up.RedirectURIs, []string{"https://rp.example.com/other"})
	eqStrings(h, "updated PostLogoutRedirectURIs", up.PostLogoutRedirectURIs, nil)
	eq(h, "updated TokenEndpointAuthMethod", up.TokenEndpointAuthMethod, permiso.AuthMethodNone)
}

// oidcFixture creates a user, a client and a browser session, and returns
// an unused code bound to them that expires in a minute.
func oidcFixture(h *harness) (permiso.AuthCode, permiso.BrowserSession) {
	h.Helper()
	u := h.user("")
	c := h.client("")
	b, err := h.s.CreateBrowserSession(h.ctx, permiso.Session{
		ID: uuid.New(), UserID: u.ID, IPAddress: "192.0.2.1",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour),
	}, permiso.BrowserSession{TokenHash: hashOf(h.uniq("cookie")), AuthTime: h.now})
	h.must(err, "CreateBrowserSession")
	code := permiso.AuthCode{
		CodeHash: hashOf(h.uniq("code")), ClientID: c.ID, UserID: u.ID, BrowserSessionID: b.ID,
		RedirectURI: "https://rp.example.com/cb", Scopes: []string{"profile", "openid"},
		Nonce: "n-0S6_WzA2Mj", CodeChallenge: permiso.S256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
		AuthTime: h.at(-time.Minute), CreatedAt: h.now, ExpiresAt: h.at(permiso.AuthCodeLifetime),
	}
	h.must(h.s.CreateAuthCode(h.ctx, code), "CreateAuthCode")
	return code, b
}

func testAuthCodeRoundTrip(h *harness) {
	code, _ := oidcFixture(h)
	got, err := h.s.GetAuthCode(h.ctx, code.CodeHash)
	h.must(err, "GetAuthCode")
	// Every field back as written, the scopes sorted; unused, so no
	// UsedAt and no SessionID.
	want := code
	want.Scopes = []string{"openid", "profile"}
	diff(h, "authorization code", got, want)
	h.wantErr(h.s.CreateAuthCode(h.ctx, code), permiso.ErrAlreadyExists, "CreateAuthCode with a taken hash")
	_, err = h.s.GetAuthCode(h.ctx, hashOf("unknown"))
	h.wantErr(err, permiso.ErrNotFound, "GetAuthCode(unknown)")
	bad := code
	bad.CodeHash, bad.UserID = hashOf("other"), uuid.New()
	h.wantErr(h.s.CreateAuthCode(h.ctx, bad), permiso.ErrNotFound, "CreateAuthCode for an unknown user")
}

// testAuthCodeRedeemOnce: of concurrent redemptions exactly one wins; the
// others, and any later one, are ErrConflict, and the code remembers the
// winner's session.
func testAuthCodeRedeemOnce(h *harness) {
	code, _ := oidcFixture(h)
	sids := make([]uuid.UUID, 8)
	for i := range sids {
		sids[i] = uuid.New()
	}
	winner := exactlyOne(h, len(sids), permiso.ErrConflict, "RedeemAuthCode", func(i int) error {
		return h.s.RedeemAuthCode(h.ctx, code.CodeHash, sids[i], h.now)
	})
	got, err := h.s.GetAuthCode(h.ctx, code.CodeHash)
	h.must(err, "GetAuthCode")
	eqTimePtr(h, "UsedAt", got.UsedAt, &h.now)
	if got.SessionID == nil || *got.SessionID != sids[winner] {
		h.Errorf("SessionID = %v, want the winner's %v", got.SessionID, sids[winner])
	}
	h.wantErr(h.s.RedeemAuthCode(h.ctx, code.CodeHash, uuid.New(), h.at(time.Second)), permiso.ErrConflict, "second RedeemAuthCode")
	h.wantErr(h.s.RedeemAuthCode(h.ctx, hashOf("unknown"), uuid.New(), h.now), permiso.ErrNotFound, "RedeemAuthCode(unknown)")
}

// testAuthCodeExpired: a code at or after its expiry cannot be redeemed
// (ErrNotFound, nothing written) and is removed by DeleteExpiredAuthCodes.
func testAuthCodeExpired(h *harness) {
	code, _ := oidcFixture(h)
	h.wantErr(h.s.RedeemAuthCode(h.ctx, code.CodeHash, uuid.New(), code.ExpiresAt), permiso.ErrNotFound, "RedeemAuthCode at expiry")
	got, err := h.s.GetAuthCode(h.ctx, code.CodeHash)
	h.must(err, "GetAuthCode")
	eqTimePtr(h, "UsedAt after a refused redemption", got.UsedAt, nil)
	n, err := h.s.DeleteExpiredAuthCodes(h.ctx, code.ExpiresAt)
	h.must(err, "DeleteExpiredAuthCodes at expiry")
	eq(h, "deleted at expiry", n, 0)
	n, err = h.s.DeleteExpiredAuthCodes(h.ctx, code.ExpiresAt.Add(time.Second))
	h.must(err, "DeleteExpiredAuthCodes")
	eq(h, "deleted", n, 1)
	_, err = h.s.GetAuthCode(h.ctx, code.CodeHash)
	h.wantErr(err, permiso.ErrNotFound, "GetAuthCode after delete")
}

// testBrowserSession: a browser session is a session (listed, revoked with
// the user's sessions) found by its cookie hash.
// testBrowserSessionAMR: a browser session keeps the authentication
// methods of its sign-in in their order (RFC 8176 §2; migration 6), and an
// update of its session raises them (a second factor after the password).
func testBrowserSessionAMR(h *harness) {
	u := h.user("")
	b, err := h.s.CreateBrowserSession(h.ctx, permiso.Session{
		ID: uuid.New(), UserID: u.ID, CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour),
		AMR: []string{permiso.AMRPassword},
	}, permiso.BrowserSession{TokenHash: hashOf(h.uniq("cookie")), AuthTime: h.now})
	h.must(err, "CreateBrowserSession")
	eqStrings(h, "created AMR", b.AMR, []string{permiso.AMRPassword})
	_, err = h.s.UpdateSession(h.ctx, b.ID, func(s *permiso.Session) error {
		s.AMR = append(s.AMR, permiso.AMROTP)
		return nil
	})
	h.must(err, "UpdateSession")
	got, err := h.s.GetBrowserSession(h.ctx, b.TokenHash)
	h.must(err, "GetBrowserSession")
	eqStrings(h, "raised AMR, in order", got.AMR, []string{permiso.AMRPassword, permiso.AMROTP})
}

func testBrowserSession(h *harness) {
	_, b := oidcFixture(h)
	got, err := h.s.GetBrowserSession(h.ctx, b.TokenHash)
	h.must(err, "GetBrowserSession")
	eq(h, "ID", got.ID, b.ID)
	eq(h, "UserID", got.UserID, b.UserID)
	eqTime(h, "AuthTime", got.AuthTime, h.now)
	if !got.Active(h.now) {
		h.Errorf("new browser session is not active")
	}
	list, err := h.s.ListSessions(h.ctx, b.UserID, true, h.now)
	h.must(err, "ListSessions")
	if len(list) != 1 || list[0].ID != b.ID {
		h.Errorf("ListSessions = %+v, want the browser session", list)
	}
	other := h.session(b.UserID, nil) // a session of the token endpoint
	ids, err := h.s.BrowserSessionIDs(h.ctx, b.UserID)
	h.must(err, "BrowserSessionIDs")
	if len(ids) != 1 || ids[0] != b.ID || ids[0] == other.ID {
		h.Errorf("BrowserSessionIDs = %v, want only the browser session %v", ids, b.ID)
	}
	if ids, err := h.s.BrowserSessionIDs(h.ctx, uuid.New()); err != nil || len(ids) != 0 {
		h.Errorf("BrowserSessionIDs of an unknown user = %v, %v; want none", ids, err)
	}
	_, err = h.s.RevokeUserSessions(h.ctx, b.UserID, nil, "logout_all", h.now)
	h.must(err, "RevokeUserSessions")
	got, err = h.s.GetBrowserSession(h.ctx, b.TokenHash)
	h.must(err, "GetBrowserSession after revoke-all")
	if got.Active(h.now) {
		h.Errorf("browser session still active after RevokeUserSessions")
	}
	_, err = h.s.GetBrowserSession(h.ctx, hashOf("unknown"))
	h.wantErr(err, permiso.ErrNotFound, "GetBrowserSession(unknown)")
	_, err = h.s.CreateBrowserSession(h.ctx, permiso.Session{
		ID: uuid.New(), UserID: b.UserID, IPAddress: "192.0.2.1", CreatedAt: h.now, ExpiresAt: h.at(time.Hour),
	}, permiso.BrowserSession{TokenHash: b.TokenHash, AuthTime: h.now})
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateBrowserSession with a taken cookie hash")
}
