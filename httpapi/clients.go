package httpapi

import (
	"net/http"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/reports"
)

// Service clients, admin:clients. The {client_id} path parameter is the
// public client_id string, not the row UUID. The lifecycle, the rules on
// the fields, the delegation rule and the audit events are the identity
// service's (identity/clients.go); the handlers parse, call it once and
// write the answer.

// scopeInfo is a scope inside a client or role response.
type scopeInfo struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	Resource    *string `json:"resource"`
}

func scopeInfos(scopes []permiso.Scope) []scopeInfo {
	out := make([]scopeInfo, 0, len(scopes))
	for _, sc := range scopes {
		out = append(out, scopeInfo{ID: sc.ID.String(), Name: sc.Name, Description: sc.Description, Resource: sc.Resource})
	}
	return out
}

// clientResponse is ServiceClientResponse (docs/api.md, "Service clients"). Optional
// fields are null, never omitted. Secrets never appear.
type clientResponse struct {
	ID                    string      `json:"id"`
	ClientID              string      `json:"client_id"`
	Name                  string      `json:"name"`
	Description           *string     `json:"description"`
	ClientType            string      `json:"client_type"`
	IsActive              bool        `json:"is_active"`
	IsTrusted             bool        `json:"is_trusted"`
	ContactEmail          *string     `json:"contact_email"`
	WebsiteURL            *string     `json:"website_url"`
	AccessTokenLifetime   int         `json:"access_token_lifetime"`
	RefreshTokenLifetime  *int        `json:"refresh_token_lifetime"`
	RateLimitPerMinute    int         `json:"rate_limit_per_minute"`
	RateLimitPerHour      int         `json:"rate_limit_per_hour"`
	AllowedIPs            *string     `json:"allowed_ips"`
	WebhookURL            *string     `json:"webhook_url"`
	LastUsed              *string     `json:"last_used"`
	TotalRequests         int64       `json:"total_requests"`
	CreatedAt             string      `json:"created_at"`
	UpdatedAt             string      `json:"updated_at"`
	Scopes                []scopeInfo `json:"scopes"`
	CanAuthenticate       bool        `json:"can_authenticate"`
	SupportsRefreshTokens bool        `json:"supports_refresh_tokens"`
	SecretRotationEndsAt  *string     `json:"previous_secret_expires_at"`
}

// clientView renders c. A client without its own access-token lifetime
// shows the server default (SERVICE_TOKEN_EXPIRE_MINUTES) it gets.
func (s *server) clientView(c permiso.ServiceClient) clientResponse {
	lifetime := c.AccessTokenLifetime
	if lifetime <= 0 {
		lifetime = int(s.auth.ServiceTokenLifetime() / time.Second)
	}
	var rotation *string
	if c.PreviousSecretActive(s.now()) {
		rotation = nullTime(c.PreviousSecretExpiresAt)
	}
	return clientResponse{
		ID: c.ID.String(), ClientID: c.ClientID, Name: c.Name, Description: c.Description,
		ClientType: c.ClientType, IsActive: c.IsActive, IsTrusted: c.IsTrusted,
		ContactEmail: c.ContactEmail, WebsiteURL: c.WebsiteURL,
		AccessTokenLifetime: lifetime, RefreshTokenLifetime: c.RefreshTokenLifetime,
		RateLimitPerMinute: c.RateLimitPerMinute, RateLimitPerHour: c.RateLimitPerHour,
		AllowedIPs: c.AllowedIPs, WebhookURL: c.WebhookURL, LastUsed: nullTime(c.LastUsed),
		TotalRequests: c.TotalRequests, CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt),
		Scopes: scopeInfos(c.Scopes), CanAuthenticate: c.IsActive,
		SupportsRefreshTokens: c.RefreshTokenLifetime != nil && *c.RefreshTokenLifetime > 0,
		SecretRotationEndsAt:  rotation,
	}
}

// withClient serves a route about the client named by the {client_id}
// path parameter: h gets it from the database (404 when there is none).
func (s *server) withClient(h func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error) http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.ident.Client(r.Context(), r.PathValue("client_id"))
		if err != nil {
			return err
		}
		return h(w, r, c)
	})
}

// handleClientList answers GET /service-clients: search (name, client_id,
// description), is_active, is_trusted, client_type, scope_id, page,
// per_page (1-100, default 20), ordered by created_at, id.
func (s *server) handleClientList() http.Handler {
	type response struct {
		Clients []clientResponse `json:"clients"`
		Total   int              `json:"total"`
		Page    int              `json:"page"`
		PerPage int              `json:"per_page"`
		Pages   int              `json:"pages"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var errs queryErrs
		pg := readPaging(q, 20, 100, &errs)
		f := permiso.ClientFilter{
			Search:    readString(q, "search", 200, &errs),
			IsActive:  readBool(q, "is_active", &errs),
			IsTrusted: readBool(q, "is_trusted", &errs),
			ScopeID:   readUUID(q, "scope_id", &errs),
			Offset:    pg.offset(), Limit: pg.PerPage,
		}
		if ct := q.Get("client_type"); ct != "" {
			if ct != "confidential" && ct != "public" {
				errs.add("client_type", "must be confidential or public")
			}
			f.ClientType = ct
		}
		if err := errs.err(); err != nil {
			return err
		}
		list, total, err := s.store.ListServiceClients(r.Context(), f)
		if err != nil {
			return err
		}
		resp := response{Clients: make([]clientResponse, 0, len(list)), Total: total, Page: pg.Page, PerPage: pg.PerPage, Pages: pg.pages(total)}
		for _, c := range list {
			resp.Clients = append(resp.Clients, s.clientView(c))
		}
		return answer(w, http.StatusOK, resp)
	})
}

// handleClientCreate answers POST /service-clients: 201 {"client",
// "client_secret"}; the secret is generated by the service and shown only
// in this response (only its hash is stored).
func (s *server) handleClientCreate() http.Handler {
	type response struct {
		Client       clientResponse `json:"client"`
		ClientSecret string         `json:"client_secret"`
	}
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var in identity.ClientInput
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		created, secret, err := s.ident.CreateClient(r.Context(), actor(r), in)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return answer(w, http.StatusCreated, response{Client: s.clientView(created), ClientSecret: secret})
	})
}

// handleClientGet answers GET /service-clients/{client_id}.
func (s *server) handleClientGet() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		return answer(w, http.StatusOK, s.clientView(c))
	})
}

// handleClientUpdate answers PUT /service-clients/{client_id}: absent or
// null fields stay; an empty string clears an optional text field;
// scope_ids replaces the scopes.
func (s *server) handleClientUpdate() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		var in identity.ClientInput
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		updated, err := s.ident.UpdateClient(r.Context(), actor(r), c, in)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, s.clientView(updated))
	})
}

// handleClientDelete answers DELETE /service-clients/{client_id}: 204.
func (s *server) handleClientDelete() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		if err := s.ident.DeleteClient(r.Context(), actor(r), c); err != nil {
			return err
		}
		return noContent(w)
	})
}

// handleClientRotateSecret answers POST /service-clients/{client_id}/
// rotate-secret with a new secret, shown once. Body (optional):
// {"current_secret": string, "overlap_seconds": int}
// (identity.SecretRotation).
func (s *server) handleClientRotateSecret() http.Handler {
	type response struct {
		Message                 string  `json:"message"`
		ClientID                string  `json:"client_id"`
		ClientSecret            string  `json:"client_secret"`
		PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		var in identity.SecretRotation
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			if err := decodeJSON(r, &in); err != nil {
				return err
			}
		}
		updated, secret, err := s.ident.RotateClientSecret(r.Context(), actor(r), c, in)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return answer(w, http.StatusOK, response{Message: "Client secret rotated successfully", ClientID: updated.ClientID,
			ClientSecret: secret, PreviousSecretExpiresAt: nullTime(updated.PreviousSecretExpiresAt)})
	})
}

// handleClientScopes answers PUT /service-clients/{client_id}/scopes
// {"scope_ids": [...]}: replaces the scopes, returns the client.
func (s *server) handleClientScopes() http.Handler {
	type request struct {
		ScopeIDs *[]string `json:"scope_ids"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		var in request
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		updated, err := s.ident.SetClientScopes(r.Context(), actor(r), c, in.ScopeIDs)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, s.clientView(updated))
	})
}

// handleClientPermissions answers GET /service-clients/{client_id}/
// permissions: the scope names, the actions per resource, and whether any
// admin:* scope is held.
func (s *server) handleClientPermissions() http.Handler {
	type response struct {
		ClientID       string              `json:"client_id"`
		Scopes         []string            `json:"scopes"`
		Resources      map[string][]string `json:"resources"`
		CanAccessAdmin bool                `json:"can_access_admin"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		resp := response{ClientID: c.ClientID, Scopes: c.ScopeNames(), Resources: map[string][]string{}}
		for _, sc := range c.Scopes {
			res := sc.ResourceName()
			if res == "" {
				res = sc.Name
			}
			resp.Resources[res] = permiso.SortedUnique(append(resp.Resources[res], sc.Action()))
			if sc.Action() == "admin" {
				resp.CanAccessAdmin = true
			}
		}
		return answer(w, http.StatusOK, resp)
	})
}

// handleClientRateLimit answers GET /service-clients/{client_id}/
// rate-limit with the live counters of the client's per-minute and
// per-hour limits, as enforced at the token endpoint (read without
// counting a request).
func (s *server) handleClientRateLimit() http.Handler {
	type response struct {
		ClientID           string `json:"client_id"`
		PerMinuteLimit     int    `json:"per_minute_limit"`
		PerMinuteRemaining int    `json:"per_minute_remaining"`
		PerMinuteReset     string `json:"per_minute_reset"`
		PerHourLimit       int    `json:"per_hour_limit"`
		PerHourRemaining   int    `json:"per_hour_remaining"`
		PerHourReset       string `json:"per_hour_reset"`
		IsRateLimited      bool   `json:"is_rate_limited"`
		RetryAfterSeconds  int    `json:"retry_after_seconds"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) error {
		minute, hour, err := s.auth.ClientRateLimits(r.Context(), c)
		if err != nil {
			return err
		}
		now := s.now()
		var retry time.Duration
		limited := false
		for _, l := range []permiso.LimitResult{minute, hour} {
			if l.Limit > 0 && l.Remaining <= 0 {
				limited = true
				retry = max(retry, l.RetryAfter, l.Reset)
			}
		}
		return answer(w, http.StatusOK, response{
			ClientID:       c.ClientID,
			PerMinuteLimit: minute.Limit, PerMinuteRemaining: minute.Remaining, PerMinuteReset: timestamp(now.Add(minute.Reset)),
			PerHourLimit: hour.Limit, PerHourRemaining: hour.Remaining, PerHourReset: timestamp(now.Add(hour.Reset)),
			IsRateLimited: limited, RetryAfterSeconds: int((retry + time.Second - 1) / time.Second),
		})
	})
}

// handleClientStats answers GET /service-clients/stats/overview
// (reports.Service.ClientStats).
func (s *server) handleClientStats() http.Handler {
	return report(s, (*reports.Service).ClientStats)
}
