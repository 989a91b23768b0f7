package storetest

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var sessionTests = []test{
	{"Sessions/CRUD", testSessionCRUD},
	{"Sessions/CreateWithToken", testCreateSessionWithToken},
	{"Sessions/ListRevokedSince", testListSessionsRevokedSince},
	{"Sessions/NotFound", testSessionNotFound},
	{"Sessions/RevokeSession", testRevokeSession},
	{"Sessions/RevokeUserSessions", testRevokeUserSessions},
	{"Sessions/RevokeClientSessions", testRevokeClientSessions},
	{"Sessions/DeleteExpired", testSessionDeleteExpired},
	{"Sessions/Stats", testSessionStats},
}

func testSessionCRUD(h *harness) {
	u := h.user("tara")
	c := h.client("svc-sess")
	s := permiso.Session{
		ID: uuid.New(), UserID: u.ID, ClientID: &c.ID, IPAddress: "203.0.113.9",
		UserAgent: ptr("Mozilla/5.0"), CreatedAt: h.at(-time.Hour),
		LastActivity: h.at(-time.Minute), ExpiresAt: h.at(time.Hour),
	}
	created, err := h.s.CreateSession(h.ctx, s)
	h.must(err, "CreateSession")
	eq(h, "created session id", created.ID, s.ID)
	got, err := h.s.GetSession(h.ctx, s.ID)
	h.must(err, "GetSession")
	eq(h, "user_id", got.UserID, u.ID)
	eqPtr(h, "client_id", got.ClientID, &c.ID)
	eq(h, "ip_address", got.IPAddress, "203.0.113.9")
	eqPtr(h, "user_agent", got.UserAgent, ptr("Mozilla/5.0"))
	eqTime(h, "created_at", got.CreatedAt, s.CreatedAt)
	eqTime(h, "last_activity", got.LastActivity, s.LastActivity)
	eqTime(h, "expires_at", got.ExpiresAt, s.ExpiresAt)
	eqTimePtr(h, "revoked_at", got.RevokedAt, nil)
	if !got.Active(h.now) {
		h.Error("new session is not active")
	}

	gen, err := h.s.CreateSession(h.ctx, permiso.Session{UserID: u.ID, IPAddress: "::1",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)})
	h.must(err, "CreateSession with zero id")
	if gen.ID == uuid.Nil {
		h.Error("CreateSession returned a zero id")
	}
	eqPtr(h, "client_id of a first-party session", gen.ClientID, nil)

	_, err = h.s.CreateSession(h.ctx, permiso.Session{UserID: uuid.New(), IPAddress: "::1",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)})
	h.wantErr(err, permiso.ErrNotFound, "CreateSession for an unknown user")

	updated, err := h.s.UpdateSession(h.ctx, s.ID, func(x *permiso.Session) error {
		x.LastActivity = h.now
		x.ExpiresAt = h.at(2 * time.Hour)
		x.IPAddress = "203.0.113.10"
		return nil
	})
	h.must(err, "UpdateSession")
	eqTime(h, "updated last_activity", updated.LastActivity, h.now)
	eqTime(h, "updated expires_at", updated.ExpiresAt, h.at(2*time.Hour))
	eq(h, "updated ip_address", updated.IPAddress, "203.0.113.10")
	eqTime(h, "created_at kept", updated.CreatedAt, s.CreatedAt)
	_, err = h.s.UpdateSession(h.ctx, s.ID, func(x *permiso.Session) error { x.IPAddress = "x"; return errCallback })
	h.wantErr(err, errCallback, "UpdateSession with a failing callback")
	got, err = h.s.GetSession(h.ctx, s.ID)
	h.must(err, "GetSession")
	eq(h, "ip_address after refused update", got.IPAddress, "203.0.113.10")

	// ListSessions: ordered by created_at, id; activeOnly drops revoked and
	// expired sessions.
	expired, err := h.s.CreateSession(h.ctx, permiso.Session{UserID: u.ID, IPAddress: "::1",
		CreatedAt: h.at(-3 * time.Hour), LastActivity: h.at(-3 * time.Hour), ExpiresAt: h.at(-time.Second)})
	h.must(err, "CreateSession (expired)")
	revoked := h.session(u.ID, nil)
	_, err = h.s.RevokeSession(h.ctx, revoked.ID, "logout", h.now)
	h.must(err, "RevokeSession")
	other := h.user("ursula")
	h.session(other.ID, nil)

	all, err := h.s.ListSessions(h.ctx, u.ID, false, h.now)
	h.must(err, "ListSessions")
	if len(all) != 4 {
		h.Fatalf("ListSessions returned %d sessions, want 4", len(all))
	}
	eq(h, "oldest session first", all[0].ID, expired.ID)
	eq(h, "second oldest", all[1].ID, s.ID)
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.CreatedAt.After(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID.String() > b.ID.String()) {
			h.Errorf("ListSessions not ordered by created_at, id at %d", i)
		}
	}
	active, err := h.s.ListSessions(h.ctx, u.ID, true, h.now)
	h.must(err, "ListSessions(activeOnly)")
	if len(active) != 2 {
		h.Fatalf("ListSessions(activeOnly) returned %d sessions, want 2", len(active))
	}
	for _, a := range active {
		if a.ID == expired.ID || a.ID == revoked.ID {
			h.Errorf("ListSessions(activeOnly) returned inactive session %s", a.ID)
		}
	}
	none, err := h.s.ListSessions(h.ctx, uuid.New(), false, h.now)
	h.must(err, "ListSessions(unknown user)")
	eq(h, "sessions of an unknown user", len(none), 0)
}

func testSessionNotFound(h *harness) {
	id := uuid.New()
	h.wantNotFound(map[string]error{
		"GetSession":    errOf(h.s.GetSession(h.ctx, id)),
		"UpdateSession": errOf(h.s.UpdateSession(h.ctx, id, func(*permiso.Session) error { return nil })),
		"RevokeSession": errOf(h.s.RevokeSession(h.ctx, id, "x", h.now)),
	})
}

func testRevokeSession(h *harness) {
	u := h.user("vera")
	sess := h.session(u.ID, nil)
	other := h.session(u.ID, nil)
	h.refresh(sess, uuid.Nil, "rs-a")
	h.refresh(sess, uuid.Nil, "rs-b")
	h.refresh(other, uuid.Nil, "rs-other")
	earlier := h.at(-time.Minute)
	_, err := h.s.RevokeRefreshFamily(h.ctx, h.getRefresh("rs-b").FamilyID, "rotated", earlier)
	h.must(err, "RevokeRefreshFamily")

	got, err := h.s.RevokeSession(h.ctx, sess.ID, "logout", h.now)
	h.must(err, "RevokeSession")
	eqTimePtr(h, "returned revoked_at", got.RevokedAt, &h.now)
	if got.Active(h.now) {
		h.Error("revoked session is still active")
	}
	stored, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	eqTimePtr(h, "stored revoked_at", stored.RevokedAt, &h.now)

	a := h.getRefresh("rs-a")
	eqTimePtr(h, "refresh token of the revoked session", a.RevokedAt, &h.now)
	eqPtr(h, "its revocation reason", a.RevocationReason, ptr("logout"))
	b := h.getRefresh("rs-b")
	eqTimePtr(h, "already revoked token keeps its revoked_at", b.RevokedAt, &earlier)
	eqPtr(h, "already revoked token keeps its reason", b.RevocationReason, ptr("rotated"))
	o := h.getRefresh("rs-other")
	eqTimePtr(h, "token of another session", o.RevokedAt, nil)
	h.wantErr(h.s.UseRefreshToken(h.ctx, hashOf("rs-a"), h.newRefresh(sess, uuid.New(), "rs-a2"), h.now),
		permiso.ErrConflict, "UseRefreshToken of a revoked session")

	again, err := h.s.RevokeSession(h.ctx, sess.ID, "again", h.at(time.Minute))
	h.must(err, "RevokeSession (again)")
	eqTimePtr(h, "revoking twice keeps the first revoked_at", again.RevokedAt, &h.now)
	eq(h, "revoking twice returns the session", again.ID, sess.ID)
}

func testRevokeUserSessions(h *harness) {
	u := h.user("wendy")
	other := h.user("xena")
	keep := h.session(u.ID, nil)
	s2 := h.session(u.ID, nil)
	s3 := h.session(u.ID, nil)
	expired := h.expiredSession(u.ID, nil)
	revoked := h.revokedSession(u.ID, nil)
	otherSess := h.session(other.ID, nil)
	h.refresh(keep, uuid.Nil, "ru-keep")
	h.refresh(s2, uuid.Nil, "ru-2")
	h.refresh(s3, uuid.Nil, "ru-3")
	h.refresh(otherSess, uuid.Nil, "ru-other")

	got, err := h.s.RevokeUserSessions(h.ctx, u.ID, &keep.ID, "logout_all", h.now)
	h.must(err, "RevokeUserSessions")
	revokedIDs := map[uuid.UUID]bool{}
	for _, s := range got {
		revokedIDs[s.ID] = true
		eqTimePtr(h, "revoked_at of a returned session", s.RevokedAt, &h.now)
	}
	if len(got) != 2 || !revokedIDs[s2.ID] || !revokedIDs[s3.ID] {
		h.Fatalf("RevokeUserSessions returned %d sessions %v, want exactly the two other active ones", len(got), revokedIDs)
	}
	h.wantSessions([]sessionState{{"kept", keep.ID, true}, {"s2", s2.ID, false}, {"s3", s3.ID, false},
		{"other user's", otherSess.ID, true}}, expired, revoked)

	eqTimePtr(h, "refresh token of the kept session", h.getRefresh("ru-keep").RevokedAt, nil)
	eqTimePtr(h, "refresh token of s2", h.getRefresh("ru-2").RevokedAt, &h.now)
	eqPtr(h, "reason on s2's token", h.getRefresh("ru-2").RevocationReason, ptr("logout_all"))
	eqTimePtr(h, "refresh token of s3", h.getRefresh("ru-3").RevokedAt, &h.now)
	eqTimePtr(h, "other user's refresh token", h.getRefresh("ru-other").RevokedAt, nil)

	// Without except, the kept one goes too.
	got, err = h.s.RevokeUserSessions(h.ctx, u.ID, nil, "logout_all", h.at(time.Second))
	h.must(err, "RevokeUserSessions(nil)")
	if len(got) != 1 || got[0].ID != keep.ID {
		h.Fatalf("RevokeUserSessions(nil) returned %d sessions, want only the kept one", len(got))
	}
	eqTimePtr(h, "kept session's token now revoked", h.getRefresh("ru-keep").RevokedAt, ptr(h.at(time.Second)))
	got, err = h.s.RevokeUserSessions(h.ctx, u.ID, nil, "logout_all", h.at(2*time.Second))
	h.must(err, "RevokeUserSessions (nothing left)")
	eq(h, "sessions revoked when none is active", len(got), 0)
}

// testRevokeClientSessions: the active sessions opened through one client,
// of every user, and their refresh tokens are revoked; sessions of other
// clients, first-party sessions, expired ones and earlier revocations are
// left as they are.
func testRevokeClientSessions(h *harness) {
	c := h.client("svc-sessions")
	other := h.client("svc-other-sessions")
	u, v := h.user("uma"), h.user("vic")
	s1 := h.session(u.ID, &c.ID)
	s2 := h.session(v.ID, &c.ID)
	viaOther := h.session(u.ID, &other.ID)
	direct := h.session(u.ID, nil)
	expired := h.expiredSession(u.ID, &c.ID)
	revoked := h.revokedSession(v.ID, &c.ID)
	h.refresh(s1, uuid.Nil, "rc-1")
	h.refresh(s2, uuid.Nil, "rc-2")
	h.refresh(viaOther, uuid.Nil, "rc-other")
	h.refresh(direct, uuid.Nil, "rc-direct")

	got, err := h.s.RevokeClientSessions(h.ctx, c.ID, "client_disabled", h.now)
	h.must(err, "RevokeClientSessions")
	ids := map[uuid.UUID]bool{}
	for _, s := range got {
		ids[s.ID] = true
		eqTimePtr(h, "revoked_at of a returned session", s.RevokedAt, &h.now)
		eqPtr(h, "client of a returned session", s.ClientID, &c.ID)
	}
	if len(got) != 2 || !ids[s1.ID] || !ids[s2.ID] {
		h.Fatalf("RevokeClientSessions returned %d sessions %v, want exactly the two active ones of the client", len(got), ids)
	}
	if got[0].CreatedAt.After(got[1].CreatedAt) ||
		got[0].CreatedAt.Equal(got[1].CreatedAt) && got[0].ID.String() > got[1].ID.String() {
		h.Errorf("RevokeClientSessions returned sessions out of created_at, id order")
	}
	h.wantSessions([]sessionState{{"s1", s1.ID, false}, {"s2", s2.ID, false}, {"other client's", viaOther.ID, true},
		{"first-party", direct.ID, true}}, expired, revoked)

	eqTimePtr(h, "refresh token of s1", h.getRefresh("rc-1").RevokedAt, &h.now)
	eqPtr(h, "reason on s1's token", h.getRefresh("rc-1").RevocationReason, ptr("client_disabled"))
	eqTimePtr(h, "refresh token of s2", h.getRefresh("rc-2").RevokedAt, &h.now)
	eqTimePtr(h, "other client's refresh token", h.getRefresh("rc-other").RevokedAt, nil)
	eqTimePtr(h, "first-party refresh token", h.getRefresh("rc-direct").RevokedAt, nil)

	got, err = h.s.RevokeClientSessions(h.ctx, c.ID, "client_disabled", h.at(time.Second))
	h.must(err, "RevokeClientSessions (nothing left)")
	eq(h, "sessions revoked when none is active", len(got), 0)
	got, err = h.s.RevokeClientSessions(h.ctx, uuid.New(), "client_disabled", h.now)
	h.must(err, "RevokeClientSessions (unknown client)")
	eq(h, "sessions revoked of an unknown client", len(got), 0)
}

func testSessionDeleteExpired(h *harness) {
	u := h.user("yara")
	mk := func(exp time.Duration) permiso.Session {
		s, err := h.s.CreateSession(h.ctx, permiso.Session{UserID: u.ID, IPAddress: "::1",
			CreatedAt: h.at(-3 * time.Hour), LastActivity: h.at(-3 * time.Hour), ExpiresAt: h.at(exp)})
		h.must(err, "CreateSession")
		return s
	}
	old1, old2, live := mk(-2*time.Hour), mk(-time.Second), mk(time.Hour)
	h.refresh(old1, uuid.Nil, "de-old")
	h.refresh(live, uuid.Nil, "de-live")
	n, err := h.s.DeleteExpiredSessions(h.ctx, h.now)
	h.must(err, "DeleteExpiredSessions")
	eq(h, "expired sessions deleted", n, 2)
	for _, s := range []permiso.Session{old1, old2} {
		_, err := h.s.GetSession(h.ctx, s.ID)
		h.wantErr(err, permiso.ErrNotFound, "GetSession of a deleted expired session")
	}
	_, err = h.s.GetSession(h.ctx, live.ID)
	h.must(err, "GetSession(live)")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("de-old"))
	h.wantErr(err, permiso.ErrNotFound, "refresh token of a deleted session (cascade)")
	h.getRefresh("de-live")
}

func testSessionStats(h *harness) {
	u := h.user("zoe")
	since := h.at(-time.Hour)
	mk := func(created time.Time, exp time.Duration, revoke bool) {
		s, err := h.s.CreateSession(h.ctx, permiso.Session{UserID: u.ID, IPAddress: "::1",
			CreatedAt: created, LastActivity: created, ExpiresAt: h.at(exp)})
		h.must(err, "CreateSession")
		if revoke {
			_, err := h.s.RevokeSession(h.ctx, s.ID, "test", h.at(-time.Second))
			h.must(err, "RevokeSession")
		}
	}
	mk(h.at(-2*time.Hour), time.Hour, false)   // active
	mk(h.at(-time.Minute), time.Hour, false)   // active, recent
	mk(since, time.Hour, false)                // active, created exactly at since
	mk(h.at(-3*time.Hour), -time.Hour, false)  // expired
	mk(h.at(-time.Minute), time.Hour, true)    // revoked, recent
	mk(h.at(-3*time.Hour), -time.Minute, true) // revoked and expired: counted as revoked
	st, err := h.s.SessionStats(h.ctx, h.now, since)
	h.must(err, "SessionStats")
	// Expired counts the expired sessions not revoked; CreatedSince
	// includes since.
	eq(h, "SessionStats", st, permiso.SessionStats{Active: 3, Expired: 1, Revoked: 2, CreatedSince: 3})
}

// testCreateSessionWithToken: a login's session and first refresh token are
// stored together, and when the token cannot be stored, neither is.
func testCreateSessionWithToken(h *harness) {
	u := h.user("ulla")
	c := h.client("svc-login")
	s := permiso.Session{ID: uuid.New(), UserID: u.ID, ClientID: &c.ID, IPAddress: "203.0.113.7",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)}
	rt := h.newRefresh(s, uuid.New(), "login-first")
	sess, tok, err := h.s.CreateSessionWithToken(h.ctx, s, rt)
	h.must(err, "CreateSessionWithToken")
	eq(h, "session id", sess.ID, s.ID)
	eqPtr(h, "session client_id", sess.ClientID, &c.ID)
	eq(h, "token session id", tok.SessionID, s.ID)
	got, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf("login-first"))
	h.must(err, "GetRefreshTokenByHash")
	eq(h, "stored token session", got.SessionID, s.ID)
	eq(h, "stored token family", got.FamilyID, rt.FamilyID)
	if _, err := h.s.GetSession(h.ctx, s.ID); err != nil {
		h.Errorf("GetSession after CreateSessionWithToken: %v", err)
	}

	// A token whose hash is taken: nothing is stored, not even the session.
	s2 := permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "203.0.113.8",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)}
	_, _, err = h.s.CreateSessionWithToken(h.ctx, s2, h.newRefresh(s2, uuid.New(), "login-first"))
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateSessionWithToken with a taken token hash")
	_, err = h.s.GetSession(h.ctx, s2.ID)
	h.wantErr(err, permiso.ErrNotFound, "the session of a failed CreateSessionWithToken")
	active, err := h.s.ListSessions(h.ctx, u.ID, true, h.now)
	h.must(err, "ListSessions")
	eq(h, "active sessions", len(active), 1)

	// An unknown user: ErrNotFound, nothing stored.
	s3 := permiso.Session{ID: uuid.New(), UserID: uuid.New(), IPAddress: "::1",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)}
	_, _, err = h.s.CreateSessionWithToken(h.ctx, s3, h.newRefresh(s3, uuid.New(), "login-unknown"))
	h.wantErr(err, permiso.ErrNotFound, "CreateSessionWithToken for an unknown user")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("login-unknown"))
	h.wantErr(err, permiso.ErrNotFound, "the token of a failed CreateSessionWithToken")
}

// testListSessionsRevokedSince: the sessions revoked at or after a time, in
// the order of their revocation; active ones never.
func testListSessionsRevokedSince(h *harness) {
	u := h.user("vera")
	old := h.session(u.ID, nil)
	recent := h.session(u.ID, nil)
	latest := h.session(u.ID, nil)
	h.session(u.ID, nil) // active: never listed
	_, err := h.s.RevokeSession(h.ctx, old.ID, "logout", h.at(-2*time.Hour))
	h.must(err, "RevokeSession(old)")
	_, err = h.s.RevokeSession(h.ctx, latest.ID, "logout", h.at(-time.Second))
	h.must(err, "RevokeSession(latest)")
	_, err = h.s.RevokeSession(h.ctx, recent.ID, "logout", h.at(-time.Minute))
	h.must(err, "RevokeSession(recent)")
	ids := func(since time.Time) []uuid.UUID {
		h.Helper()
		got, err := h.s.ListSessionsRevokedSince(h.ctx, since)
		h.must(err, "ListSessionsRevokedSince")
		var out []uuid.UUID
		for _, s := range got {
			if s.RevokedAt == nil {
				h.Errorf("session %s listed without revoked_at", s.ID)
			}
			out = append(out, s.ID)
		}
		return out
	}
	eq(h, "revoked in the last 10 minutes", fmt.Sprint(ids(h.at(-10*time.Minute))), fmt.Sprint([]uuid.UUID{recent.ID, latest.ID}))
	eq(h, "revoked in the last 3 hours", fmt.Sprint(ids(h.at(-3*time.Hour))), fmt.Sprint([]uuid.UUID{old.ID, recent.ID, latest.ID}))
	eq(h, "revoked at the bound", fmt.Sprint(ids(h.at(-time.Minute))), fmt.Sprint([]uuid.UUID{recent.ID, latest.ID}))
	eq(h, "revoked from now on", len(ids(h.now)), 0)
}

// expiredSession creates a session of user (through client; nil:
// first-party) that expired an hour ago.
func (h *harness) expiredSession(user uuid.UUID, client *uuid.UUID) permiso.Session {
	h.Helper()
	s, err := h.s.CreateSession(h.ctx, permiso.Session{UserID: user, ClientID: client, IPAddress: "::1",
		CreatedAt: h.at(-2 * time.Hour), LastActivity: h.at(-2 * time.Hour), ExpiresAt: h.at(-time.Hour)})
	h.must(err, "CreateSession (expired)")
	return s
}

// revokedSession creates a session of user (through client; nil:
// first-party) revoked a minute ago.
func (h *harness) revokedSession(user uuid.UUID, client *uuid.UUID) permiso.Session {
	h.Helper()
	s := h.session(user, client)
	_, err := h.s.RevokeSession(h.ctx, s.ID, "logout", h.at(-time.Minute))
	h.must(err, "RevokeSession")
	return s
}

// sessionState is whether the named session must be active.
type sessionState struct {
	name   string
	id     uuid.UUID
	active bool
}

// wantSessions checks, after a revocation of many sessions, that each
// session is active as want says, that the expired session was not
// revoked and that the revoked one kept its earlier revocation.
func (h *harness) wantSessions(want []sessionState, expired, revoked permiso.Session) {
	h.Helper()
	for _, c := range want {
		s, err := h.s.GetSession(h.ctx, c.id)
		h.must(err, "GetSession(%s)", c.name)
		eq(h, c.name+" session active", s.Active(h.now), c.active)
	}
	es, err := h.s.GetSession(h.ctx, expired.ID)
	h.must(err, "GetSession(expired)")
	eqTimePtr(h, "expired session is not revoked", es.RevokedAt, nil)
	rs, err := h.s.GetSession(h.ctx, revoked.ID)
	h.must(err, "GetSession(revoked)")
	eqTimePtr(h, "earlier revocation kept", rs.RevokedAt, ptr(h.at(-time.Minute)))
}
