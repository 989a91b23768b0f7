package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// Sessions. A user works on their own sessions; an administrator for
// admin:sessions on anyone's, naming the user with ?user_id=
// (accessOwnOrAdmin), within the delegation rule of package identity: it
// ends or renews only the sessions of a user it may act on
// (identity.Delegation.MayManageUser; docs/security-model.md). Ending a
// session revokes its refresh-token family and, through the shared
// revocation store, its access tokens on every instance at once.

// Audit actions of the session routes.
const (
	actionSessionRevoke    = "session.revoke"
	actionSessionRevokeAll = "session.revoke_user"
	actionSessionRenew     = "session.renew"
	actionSessionCleanup   = "session.cleanup"
)

// scopeAdminSessions is the admin scope of the session routes.
const scopeAdminSessions = "admin:sessions"

// sessionResponse is one session (the original's shape, with user_id as a
// UUID string).
type sessionResponse struct {
	SessionID    string  `json:"session_id"`
	UserID       string  `json:"user_id"`
	Username     string  `json:"username"`
	IPAddress    string  `json:"ip_address"`
	UserAgent    *string `json:"user_agent"`
	CreatedAt    string  `json:"created_at"`
	LastActivity string  `json:"last_activity"`
	ExpiresAt    string  `json:"expires_at"`
	IsCurrent    bool    `json:"is_current"`
}

// sessionUser returns the user whose sessions the request is about: the
// one named by ?user_id= (admins, checked by the access rule), else the
// caller. A service client must name a user.
func (s *server) sessionUser(r *http.Request) (permiso.User, error) {
	var errs queryErrs
	id := readUUID(r.URL.Query(), "user_id", &errs)
	if err := errs.err(); err != nil {
		return permiso.User{}, err
	}
	p, _ := principalFrom(r.Context())
	if id == nil {
		if !p.IsUser() {
			return permiso.User{}, permiso.Invalid("Request validation failed",
				permiso.FieldError{Field: "user_id", Message: "is required for service clients"})
		}
		return *p.User, nil
	}
	if p.IsUser() && p.User.ID == *id {
		return *p.User, nil
	}
	u, err := s.store.GetUser(r.Context(), *id)
	if errors.Is(err, permiso.ErrNotFound) {
		return u, permiso.Errorf(permiso.ENOTFOUND, "User not found")
	}
	return u, err
}

// currentSID is the session id of the caller's token ("" for clients).
func currentSID(ctx context.Context) string {
	p, _ := principalFrom(ctx)
	return p.Claims.SessionID
}

func (s *server) sessionView(x permiso.Session, username, current string) sessionResponse {
	return sessionResponse{
		SessionID: x.ID.String(), UserID: x.UserID.String(), Username: username, IPAddress: x.IPAddress,
		UserAgent: x.UserAgent, CreatedAt: timestamp(x.CreatedAt), LastActivity: timestamp(x.LastActivity),
		ExpiresAt: timestamp(x.ExpiresAt), IsCurrent: current != "" && x.ID.String() == current,
	}
}

// handleSessionList answers GET /sessions: the active sessions (neither
// revoked nor expired) of the caller, or of ?user_id= for admins, ordered
// by created_at.
func (s *server) handleSessionList() http.Handler {
	type response struct {
		Sessions []sessionResponse `json:"sessions"`
		Total    int               `json:"total"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.sessionUser(r)
		if err != nil {
			return err
		}
		list, err := s.store.ListSessions(r.Context(), u.ID, true, s.now())
		if err != nil {
			return err
		}
		cur := currentSID(r.Context())
		resp := response{Sessions: make([]sessionResponse, 0, len(list)), Total: len(list)}
		for _, x := range list {
			resp.Sessions = append(resp.Sessions, s.sessionView(x, u.Username, cur))
		}
		return answer(w, http.StatusOK, resp)
	})
}

// loadSession loads the session of the {session_id} path parameter for
// the caller, who is about to change it (action names the audit event):
// 404 when unknown, 403 when it is someone else's and the caller is not an
// administrator for admin:sessions, or the delegation rule does not let
// the caller act on the session's user (audited as a failure).
func (s *server) loadSession(r *http.Request, action string) (permiso.Session, error) {
	errNotFound := permiso.Errorf(permiso.ENOTFOUND, "Session not found")
	id, err := uuid.Parse(r.PathValue("session_id"))
	if err != nil {
		return permiso.Session{}, errNotFound
	}
	x, err := s.store.GetSession(r.Context(), id)
	if errors.Is(err, permiso.ErrNotFound) {
		return x, errNotFound
	}
	if err != nil {
		return x, err
	}
	p, _ := principalFrom(r.Context())
	own := p.IsUser() && p.User.ID == x.UserID
	if own {
		return x, nil
	}
	if !actingAsAdmin(r.Context()) {
		return x, permiso.Errorf(permiso.EFORBIDDEN, "Access denied to this session")
	}
	err = s.mayActOnSessionsOf(r, x.UserID)
	if errors.Is(err, identity.ErrDelegation) {
		s.audited(r, action, auditTarget{Type: "session", ID: x.ID.String()}, err, map[string]any{"user_id": x.UserID.String()})
	}
	return x, err
}

// mayActOnSessionsOf applies the delegation rule to an administrator
// ending or renewing sessions of the user id (not the caller): only a
// superuser ends a superuser's sessions, and a delegated administrator
// only those of a user who holds nothing it lacks.
func (s *server) mayActOnSessionsOf(r *http.Request, id uuid.UUID) error {
	u, err := s.store.GetUser(permiso.WithFreshRead(r.Context()), id)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return permiso.Errorf(permiso.ENOTFOUND, "User not found")
	case err != nil:
		return err
	}
	d, err := s.delegation(r)
	if err != nil {
		return err
	}
	return d.MayManageUser(u)
}

// handleSessionDelete answers DELETE /sessions/{session_id}: the session,
// its refresh tokens and its access tokens end at once.
func (s *server) handleSessionDelete() http.Handler {
	type response struct {
		Message   string `json:"message"`
		SessionID string `json:"session_id"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		x, err := s.loadSession(r, actionSessionRevoke)
		if err != nil {
			return err
		}
		if err := s.auth.EndSession(r.Context(), x.ID, "session_deleted"); err != nil {
			return err
		}
		s.record(r, actionSessionRevoke, "success", auditTarget{Type: "session", ID: x.ID.String()},
			map[string]any{"user_id": x.UserID.String()})
		return answer(w, http.StatusOK, response{Message: "Session invalidated successfully", SessionID: x.ID.String()})
	})
}

// handleSessionDeleteAll answers DELETE /sessions: every active session
// of the caller (or of ?user_id= for admins) ends, the current one
// included.
func (s *server) handleSessionDeleteAll() http.Handler {
	type response struct {
		Message            string `json:"message"`
		SessionsTerminated int    `json:"sessions_terminated"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.sessionUser(r)
		if err != nil {
			return err
		}
		if p, _ := principalFrom(r.Context()); !p.IsUser() || p.User.ID != u.ID {
			if err := s.mayActOnSessionsOf(r, u.ID); err != nil {
				if errors.Is(err, identity.ErrDelegation) {
					s.audited(r, actionSessionRevokeAll, auditTarget{Type: "user", ID: u.ID.String()}, err, nil)
				}
				return err
			}
		}
		n, err := s.auth.EndUserSessions(r.Context(), u.ID, "sessions_deleted")
		if err != nil {
			return err
		}
		s.record(r, actionSessionRevokeAll, "success", auditTarget{Type: "user", ID: u.ID.String()},
			map[string]any{"sessions_terminated": n})
		return answer(w, http.StatusOK, response{Message: "All sessions invalidated successfully", SessionsTerminated: n})
	})
}

// handleSessionRenew answers POST /sessions/{session_id}/renew: the
// session's idle timeout starts again (expires_at = now + the refresh
// token lifetime, never earlier than before). A revoked or expired session
// is a 422.
func (s *server) handleSessionRenew() http.Handler {
	type response struct {
		Message   string `json:"message"`
		SessionID string `json:"session_id"`
		ExpiresAt string `json:"expires_at"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		x, err := s.loadSession(r, actionSessionRenew)
		if err != nil {
			return err
		}
		renewed, err := s.auth.RenewSession(r.Context(), x.ID)
		if err != nil {
			return err
		}
		s.record(r, actionSessionRenew, "success", auditTarget{Type: "session", ID: x.ID.String()},
			map[string]any{"user_id": x.UserID.String(), "expires_at": timestamp(renewed.ExpiresAt)})
		return answer(w, http.StatusOK, response{Message: "Session renewed successfully", SessionID: renewed.ID.String(),
			ExpiresAt: timestamp(renewed.ExpiresAt)})
	})
}

// handleSessionStats answers GET /sessions/stats (admin:sessions;
// reports.Service.SessionStats).
func (s *server) handleSessionStats() http.Handler {
	return s.reportsHandler(func(w http.ResponseWriter, r *http.Request) error {
		st, err := s.reports.SessionStats(r.Context())
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, st)
	})
}

// handleSessionCleanup answers POST /sessions/cleanup (admin:sessions):
// deletes the sessions that have expired (with their refresh tokens).
func (s *server) handleSessionCleanup() http.Handler {
	type response struct {
		Message         string `json:"message"`
		SessionsCleaned int    `json:"sessions_cleaned"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		n, err := s.store.DeleteExpiredSessions(r.Context(), s.now())
		if err != nil {
			return err
		}
		s.record(r, actionSessionCleanup, "success", auditTarget{}, map[string]any{"sessions_cleaned": n})
		return answer(w, http.StatusOK, response{Message: "Expired sessions cleaned up successfully", SessionsCleaned: n})
	})
}
