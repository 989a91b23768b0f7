package identity_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// TestSessionAdministration: a user ends and renews their own sessions;
// another user may not touch them; a delegated administrator may only on
// a user the delegation rule lets it act on (each refusal audited, and
// nothing ended); every change is audited by the service with the actor
// and the request.
func TestSessionAdministration(t *testing.T) {
	e := newEnv(t)
	u := e.register("sam", "sam@example.com", goodPassword)
	other := e.register("tia", "tia@example.com", goodPassword)
	self := identity.Actor{UserID: u.ID, Request: testRequest}
	first, second := e.mustLogin("sam", goodPassword), e.mustLogin("sam", goodPassword)
	sid := uuid.MustParse(first.SessionID)

	e.clock.Advance(time.Minute)
	renewed, err := e.svc.RenewSession(e.ctx, self, sid)
	if err != nil || renewed.ID != sid || !renewed.LastActivity.Equal(e.clock.Now()) {
		t.Fatalf("renew own session: %+v, %v", renewed, err)
	}
	ev := e.auditEvents(identity.ActionSessionRenew, "success", 1)[0]
	checkRequest(t, ev, "user", u.ID.String())
	if *ev.TargetID != sid.String() || ev.Details["user_id"] != u.ID.String() || ev.Details["expires_at"] != renewed.ExpiresAt.UTC().Format(time.RFC3339Nano) {
		t.Errorf("session.renew %+v", ev)
	}

	_, err = e.svc.EndSession(e.ctx, identity.Actor{UserID: other.ID, Request: testRequest}, sid)
	wantCode(t, err, permiso.EFORBIDDEN, "another user ending a session")
	_, err = e.svc.EndSession(e.ctx, self, uuid.New())
	wantCode(t, err, permiso.ENOTFOUND, "an unknown session")

	// A delegated administrator of admin:sessions may not act on the
	// superuser's sessions; it may on a plain user's.
	root := e.mustLogin("root", goodPassword)
	delegated := identity.Actor{UserID: other.ID, Admin: true, Scopes: []string{"admin:sessions"}, Request: testRequest}
	_, err = e.svc.EndSession(e.ctx, delegated, uuid.MustParse(root.SessionID))
	wantCode(t, err, permiso.EFORBIDDEN, "a delegated administrator ending a superuser's session")
	_, err = e.svc.EndUserSessions(e.ctx, delegated, e.admin.UserID)
	wantCode(t, err, permiso.EFORBIDDEN, "a delegated administrator ending a superuser's sessions")
	if !e.alive(root.AccessToken) {
		t.Fatal("a refused request ended the superuser's session")
	}
	if ev := e.auditEvents(identity.ActionSessionRevoke, "failure", 1)[0]; ev.Details["reason"] != "delegation" || *ev.TargetID != root.SessionID {
		t.Errorf("session.revoke refusal %+v", ev)
	}
	if ev := e.auditEvents(identity.ActionSessionRevokeAll, "failure", 1)[0]; ev.Details["reason"] != "delegation" || *ev.TargetID != e.admin.UserID.String() {
		t.Errorf("session.revoke_user refusal %+v", ev)
	}

	if _, err := e.svc.EndSession(e.ctx, delegated, sid); err != nil {
		t.Fatal(err)
	}
	if e.alive(first.AccessToken) || !e.alive(second.AccessToken) {
		t.Error("ending one session ended the wrong ones")
	}
	n, err := e.svc.EndUserSessions(e.ctx, self, u.ID)
	if err != nil || n != 1 || e.alive(second.AccessToken) {
		t.Errorf("end own sessions: %d, %v", n, err)
	}
	e.auditEvents(identity.ActionSessionRevoke, "success", 1)
	if ev := e.auditEvents(identity.ActionSessionRevokeAll, "success", 1)[0]; ev.Details["sessions_terminated"] != 1.0 {
		t.Errorf("session.revoke_user %+v", ev)
	}

	// Cleanup: administrators only; expired sessions go.
	_, err = e.svc.CleanupSessions(e.ctx, self)
	wantCode(t, err, permiso.EFORBIDDEN, "cleanup by a user")
	e.clock.Advance(60 * 24 * time.Hour)
	n, err = e.svc.CleanupSessions(e.ctx, e.admin)
	if err != nil || n != 3 {
		t.Errorf("cleanup: %d, %v; want the three sessions, all expired", n, err)
	}
	if ev := e.auditEvents(identity.ActionSessionCleanup, "success", 1)[0]; ev.Details["sessions_cleaned"] != 3.0 {
		t.Errorf("session.cleanup %+v", ev)
	}
}
