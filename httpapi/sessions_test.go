package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/permiso/permiso"
)

const (
	rSessions = "/api/v1/sessions"
	rSession  = "/api/v1/sessions/{session_id}"
)

// TestSessions: list (own), end one (its access token fails on the very
// next request, its refresh token too), renew, end all, and the admin
// operations on another user's sessions.
func TestSessions(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root", true)
	alice := e.user("alice", false, "user")
	e.user("bob", false, "user")
	admin := e.login("root").AccessToken
	a1, a2 := e.login("alice"), e.login("alice")
	bob := e.login("bob").AccessToken

	list := want(t, e.call("GET", rSessions, rSessions, a1.AccessToken, nil), 200, "list")
	if list["total"] != 2.0 {
		t.Fatalf("list %v", list)
	}
	for _, x := range list["sessions"].([]any) {
		s := x.(map[string]any)
		if s["user_id"] != alice.ID.String() || s["username"] != "alice" || s["ip_address"] == "" {
			t.Errorf("session %v", s)
		}
		if (s["session_id"] == a1.SessionID) != (s["is_current"] == true) {
			t.Errorf("is_current wrong in %v", s)
		}
	}

	// Another user's session: 403; unknown: 404; another user's list: 403.
	want(t, e.call("DELETE", rSession, rSessions+"/"+a2.SessionID, bob, nil), 403, "bob deletes alice's session")
	want(t, e.call("DELETE", rSession, rSessions+"/00000000-0000-4000-8000-000000000000", bob, nil), 404, "unknown session")
	want(t, e.call("DELETE", rSession, rSessions+"/not-a-uuid", bob, nil), 404, "malformed session id")
	want(t, e.call("GET", rSessions, rSessions+"?user_id="+alice.ID.String(), bob, nil), 403, "bob lists alice's sessions")
	want(t, e.call("GET", rSessions, rSessions+"?user_id=xyz", admin, nil), 422, "malformed user_id")

	// Renew.
	ren := want(t, e.call("POST", "/api/v1/sessions/{session_id}/renew", rSessions+"/"+a2.SessionID+"/renew", a1.AccessToken, nil), 200, "renew")
	if ren["session_id"] != a2.SessionID {
		t.Errorf("renew %v", ren)
	}

	// Ending a2: its access token fails on the very next request, its
	// refresh token cannot be used.
	want(t, e.call("DELETE", rSession, rSessions+"/"+a2.SessionID, a1.AccessToken, nil), 200, "delete a2")
	want(t, e.call("GET", rSessions, rSessions, a2.AccessToken, nil), 401, "a2's token after its session ended")
	if w := e.form("/api/v1/auth/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {a2.RefreshToken}}, nil); w.Code != 400 {
		t.Errorf("a2's refresh token after its session ended: %d %s", w.Code, w.Body)
	}
	want(t, e.call("POST", "/api/v1/sessions/{session_id}/renew", rSessions+"/"+a2.SessionID+"/renew", a1.AccessToken, nil), 422, "renew an ended session")

	// The admin sees and ends alice's sessions by user_id.
	al := want(t, e.call("GET", rSessions, rSessions+"?user_id="+alice.ID.String(), admin, nil), 200, "admin lists alice")
	if al["total"] != 1.0 {
		t.Errorf("admin list %v", al)
	}
	st := want(t, e.call("GET", "/api/v1/sessions/stats", "/api/v1/sessions/stats", admin, nil), 200, "stats")
	// root, a1, bob active; a2 revoked.
	if st["active_sessions"] != 3.0 || st["revoked_sessions"] != 1.0 || st["sessions_created_today"] != 4.0 || st["total_sessions"] != 4.0 {
		t.Errorf("stats %v", st)
	}
	want(t, e.call("GET", "/api/v1/sessions/stats", "/api/v1/sessions/stats", bob, nil), 403, "stats as plain user")
	all := want(t, e.call("DELETE", rSessions, rSessions+"?user_id="+alice.ID.String(), admin, nil), 200, "admin ends alice's sessions")
	if all["sessions_terminated"] != 1.0 {
		t.Errorf("delete all %v", all)
	}
	want(t, e.call("GET", rSessions, rSessions, a1.AccessToken, nil), 401, "a1 after all sessions ended")

	// A user ends all their own sessions, the current one included.
	own := want(t, e.call("DELETE", rSessions, rSessions, bob, nil), 200, "bob ends his sessions")
	if own["sessions_terminated"] != 1.0 {
		t.Errorf("own delete all %v", own)
	}
	want(t, e.call("GET", rSessions, rSessions, bob, nil), 401, "bob after ending his sessions")
	cl := want(t, e.call("POST", "/api/v1/sessions/cleanup", "/api/v1/sessions/cleanup", admin, nil), 200, "cleanup")
	if cl["sessions_cleaned"] != 0.0 {
		t.Errorf("cleanup %v (nothing expired)", cl)
	}
	_ = root
	e.flushAudit()
	for action, n := range map[string]int{"session.revoke": 1, "session.revoke_user": 2, "session.renew": 1, "session.cleanup": 1} {
		_, total, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		if total != n {
			t.Errorf("%s: %d audit events, want %d", action, total, n)
		}
	}
	_ = http.StatusOK
}

// TestSessionDeleteIsIdempotent: ending a session that has already ended,
// by its user or by an administrator, answers 200 again and records no
// second session.revoke event (docs/api.md, "Sessions"), on every backend.
func TestSessionDeleteIsIdempotent(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		u := e.user("ended", false, "user")
		first, second, marker := e.login(u.Username, idPassword, ""), e.login(u.Username, idPassword, ""), e.login(u.Username, idPassword, "")
		path := rSessions + "/" + first.SessionID
		for i, tok := range []string{second.AccessToken, second.AccessToken, admin} {
			m := e.expect(e.do("DELETE", rSession, path, tok, nil), http.StatusOK, fmt.Sprintf("delete %d", i+1))
			if m["session_id"] != first.SessionID {
				t.Errorf("delete %d: %v", i+1, m)
			}
		}
		// Events are stored in order: once the marker's is, every earlier one is.
		e.expect(e.do("DELETE", rSession, rSessions+"/"+marker.SessionID, second.AccessToken, nil), http.StatusOK, "delete marker")
		e.auditEvent("session.revoke", marker.SessionID, "success")
		evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: "session.revoke", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.TargetID != nil && *ev.TargetID == first.SessionID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d session.revoke events for the session ended three times, want 1", n)
		}
	})
}
