package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/reports"
)

// Sessions. A user works on their own sessions; an administrator for
// admin:sessions on anyone's, naming the user with ?user_id=
// (accessOwnOrAdmin). Ending and renewing sessions, the delegation rule on
// them and their audit events are the identity service's
// (identity/sessions.go).

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
	// Kind is "browser" for a sign-in on the hosted pages (docs/oidc.md),
	// "token" for a session of the token endpoint; set by the list.
	Kind string `json:"kind,omitempty"`
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
		browser, err := s.store.BrowserSessionIDs(r.Context(), u.ID)
		if err != nil {
			return err
		}
		cur := currentSID(r.Context())
		resp := response{Sessions: make([]sessionResponse, 0, len(list)), Total: len(list)}
		for _, x := range list {
			v := s.sessionView(x, u.Username, cur)
			v.Kind = "token"
			if slices.Contains(browser, x.ID) {
				v.Kind = "browser"
			}
			resp.Sessions = append(resp.Sessions, v)
		}
		return answer(w, http.StatusOK, resp)
	})
}

// handleSessionDelete answers DELETE /sessions/{session_id}: the session,
// its refresh tokens and its access tokens end at once.
func (s *server) handleSessionDelete() http.Handler {
	type response struct {
		Message   string `json:"message"`
		SessionID string `json:"session_id"`
	}
	return actByID(s, "session_id", "Session", s.ident.EndSession, func(x permiso.Session) response {
		return response{Message: "Session invalidated successfully", SessionID: x.ID.String()}
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
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.sessionUser(r)
		if err != nil {
			return err
		}
		n, err := s.ident.EndUserSessions(r.Context(), actor(r), u.ID)
		if err != nil {
			return err
		}
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
	return actByID(s, "session_id", "Session", s.ident.RenewSession, func(renewed permiso.Session) response {
		return response{Message: "Session renewed successfully", SessionID: renewed.ID.String(),
			ExpiresAt: timestamp(renewed.ExpiresAt)}
	})
}

// handleSessionStats answers GET /sessions/stats (admin:sessions;
// reports.Service.SessionStats).
func (s *server) handleSessionStats() http.Handler {
	return report(s, (*reports.Service).SessionStats)
}

// handleSessionCleanup answers POST /sessions/cleanup (admin:sessions):
// deletes the sessions that have expired (with their refresh tokens).
func (s *server) handleSessionCleanup() http.Handler {
	type response struct {
		Message         string `json:"message"`
		SessionsCleaned int    `json:"sessions_cleaned"`
	}
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		n, err := s.ident.CleanupSessions(r.Context(), actor(r))
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, response{Message: "Expired sessions cleaned up successfully", SessionsCleaned: n})
	})
}
