package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

// Service clients, admin:clients. The {client_id} path parameter is the
// public client_id string, not the row UUID. Every change is also subject
// to the delegation rule of package identity (docs/security-model.md): a
// delegated administrator gives a client only scopes it holds, and changes,
// re-scopes, disables, deletes or rotates the secret of a client only when
// the client holds no scope it lacks (clientDelegation).

// Audit actions of the service-client routes.
const (
	actionClientCreate       = "client.create"
	actionClientUpdate       = "client.update"
	actionClientDelete       = "client.delete"
	actionClientRotateSecret = "client.rotate_secret"
	actionClientScopes       = "client.scopes_update"
)

// Ranges of ServiceClientCreate (ORIGINAL-API §2.5).
const (
	clientNameMin, clientNameMax           = 2, 100
	clientDescriptionMax                   = 1000
	clientURLMax                           = 500
	clientEmailMax                         = 255
	clientIDMax                            = 100
	clientLifetimeMin, clientLifetimeMax   = 300, 86400
	clientRefreshMin, clientRefreshMax     = 3600, 365 * 86400
	clientPerMinuteMin, clientPerMinuteMax = 1, 1000
	clientPerHourMin, clientPerHourMax     = 60, 100000
	clientAllowedIPsMax                    = 4000
	// maxSecretOverlap bounds how long a rotated secret may keep working.
	maxSecretOverlap = 7 * 24 * 3600
	// Defaults of a new client.
	defaultPerMinute, defaultPerHour = 60, 1000
)

var clientIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

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

// clientResponse is ServiceClientResponse (ORIGINAL-API §2.5). Optional
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

// clientInput is the body of create (all fields) and update (all but
// client_id, client_secret and client_type). Pointers tell "absent or
// null" (unchanged) from a value.
type clientInput struct {
	Name                 *string   `json:"name"`
	Description          *string   `json:"description"`
	ClientType           *string   `json:"client_type"`
	IsActive             *bool     `json:"is_active"`
	IsTrusted            *bool     `json:"is_trusted"`
	ContactEmail         *string   `json:"contact_email"`
	WebsiteURL           *string   `json:"website_url"`
	ClientID             *string   `json:"client_id"`
	ClientSecret         *string   `json:"client_secret"`
	ScopeIDs             *[]string `json:"scope_ids"`
	AccessTokenLifetime  *int      `json:"access_token_lifetime"`
	RefreshTokenLifetime *int      `json:"refresh_token_lifetime"`
	RateLimitPerMinute   *int      `json:"rate_limit_per_minute"`
	RateLimitPerHour     *int      `json:"rate_limit_per_hour"`
	AllowedIPs           *string   `json:"allowed_ips"`
	WebhookURL           *string   `json:"webhook_url"`
}

// validate checks every field present and returns the parsed scope ids
// (nil when scope_ids is absent). create says whether client_id,
// client_type and a required name apply.
func (in *clientInput) validate(create bool) ([]uuid.UUID, error) {
	var errs queryErrs
	// Stored text is valid UTF-8 without NUL or other control characters
	// than tab, line feed and carriage return (permiso.ValidText,
	// docs/security-model.md "Untrusted bytes").
	storable := func(field, v string) {
		if !permiso.ValidText(v) {
			errs.add(field, "must be valid UTF-8 without NUL or control characters")
		}
	}
	text := func(field string, p **string, max int) {
		if *p == nil {
			return
		}
		v := strings.TrimSpace(**p)
		if utf8.RuneCountInString(v) > max {
			errs.add(field, "must be at most "+strconv.Itoa(max)+" characters")
		}
		storable(field, v)
		*p = &v
	}
	if in.Name == nil {
		if create {
			errs.add("name", "is required")
		}
	} else {
		v := strings.TrimSpace(*in.Name)
		if n := utf8.RuneCountInString(v); n < clientNameMin || n > clientNameMax {
			errs.add("name", "must be between 2 and 100 characters")
		}
		storable("name", v)
		in.Name = &v
	}
	text("description", &in.Description, clientDescriptionMax)
	text("website_url", &in.WebsiteURL, clientURLMax)
	text("webhook_url", &in.WebhookURL, clientURLMax)
	text("contact_email", &in.ContactEmail, clientEmailMax)
	for _, f := range []struct {
		name string
		v    *string
	}{{"website_url", in.WebsiteURL}, {"webhook_url", in.WebhookURL}} {
		if f.v != nil && *f.v != "" {
			if u, err := url.Parse(*f.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs.add(f.name, "must be an http or https URL")
			}
		}
	}
	if in.ContactEmail != nil && *in.ContactEmail != "" {
		if a, err := mail.ParseAddress(*in.ContactEmail); err != nil || a.Address != *in.ContactEmail {
			errs.add("contact_email", "must be an email address")
		}
	}
	if create {
		if in.ClientType != nil && *in.ClientType != "confidential" && *in.ClientType != "public" {
			errs.add("client_type", "Client type must be one of: confidential, public")
		}
		if in.ClientID != nil {
			v := strings.TrimSpace(*in.ClientID)
			if v == "" || len(v) > clientIDMax || !clientIDPattern.MatchString(v) {
				errs.add("client_id", "must be 1 to 100 characters of letters, digits, '_' and '-'")
			}
			in.ClientID = &v
		}
		if in.ClientSecret != nil {
			errs.add("client_secret", "client secrets are generated by the server and returned once")
		}
	}
	rng := func(field string, p *int, lo, hi int) {
		if p != nil && (*p < lo || *p > hi) {
			errs.add(field, "must be between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
		}
	}
	rng("access_token_lifetime", in.AccessTokenLifetime, clientLifetimeMin, clientLifetimeMax)
	rng("refresh_token_lifetime", in.RefreshTokenLifetime, clientRefreshMin, clientRefreshMax)
	rng("rate_limit_per_minute", in.RateLimitPerMinute, clientPerMinuteMin, clientPerMinuteMax)
	rng("rate_limit_per_hour", in.RateLimitPerHour, clientPerHourMin, clientPerHourMax)
	if in.AllowedIPs != nil {
		v, err := normalizeAllowedIPs(*in.AllowedIPs)
		if err != nil {
			errs.add("allowed_ips", err.Error())
		}
		in.AllowedIPs = &v
	}
	var ids []uuid.UUID
	if in.ScopeIDs != nil {
		ids = make([]uuid.UUID, 0, len(*in.ScopeIDs))
		for _, raw := range *in.ScopeIDs {
			id, err := uuid.Parse(raw)
			if err != nil {
				errs.add("scope_ids", "every scope id must be a UUID")
				break
			}
			ids = append(ids, id)
		}
	}
	return ids, errs.err()
}

// normalizeAllowedIPs validates allowed_ips with permiso.ParseAllowedIPs
// (IPs and CIDRs, comma-separated). "*" alone, like an empty list, means
// any address and is stored as no restriction.
func normalizeAllowedIPs(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return "", nil
	}
	if len(s) > clientAllowedIPsMax {
		return "", errors.New("is too long")
	}
	prefixes, err := permiso.ParseAllowedIPs(s)
	if err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), "allowed_ips: "))
	}
	parts := make([]string, len(prefixes))
	for i, p := range prefixes {
		if p.Bits() == p.Addr().BitLen() {
			parts[i] = p.Addr().String()
		} else {
			parts[i] = p.String()
		}
	}
	return strings.Join(parts, ","), nil
}

// optText maps "" to nil (cleared) for optional text columns.
func optText(p *string) *string {
	if p == nil || *p == "" {
		return nil
	}
	return p
}

// scopeIDsError turns a store "unknown scope" into 400 bad_request, the
// answer the users and roles APIs give for unknown role and scope ids
// (docs/api.md).
func scopeIDsError(err error) error {
	if errors.Is(err, permiso.ErrNotFound) {
		return permiso.Errorf(permiso.EBADREQUEST, "Unknown scope ids")
	}
	return err
}

// withClient serves a route about the client named by the {client_id}
// path parameter: h gets it from the database (404 when there is none).
func (s *server) withClient(h func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.getClient(r.Context(), r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h(w, r, c)
	})
}

// getClient loads the client named by the {client_id} path parameter.
func (s *server) getClient(ctx context.Context, r *http.Request) (permiso.ServiceClient, error) {
	errNotFound := permiso.Errorf(permiso.ENOTFOUND, "Service client not found")
	id := r.PathValue("client_id")
	if !permiso.ValidIdentifier(id) {
		// It names no client; the store is not asked (docs/security-model.md,
		// "Untrusted bytes").
		return permiso.ServiceClient{}, errNotFound
	}
	// Admin reads show the database's record (last_used and
	// total_requests are not invalidated in the in-process cache).
	c, err := s.store.GetServiceClientByClientID(permiso.WithFreshRead(ctx), id)
	if errors.Is(err, permiso.ErrNotFound) {
		return c, errNotFound
	}
	return c, err
}

func clientTarget(c permiso.ServiceClient) auditTarget {
	return auditTarget{Type: "service_client", ID: c.ClientID}
}

// clientDelegation applies the delegation rule (package identity) to a
// change of a service client: the caller must be allowed to act on the
// existing client c (nil on create) and to give it the scopes of scopeIDs
// (nil when the scopes do not change). Unknown scope ids are a 400. A
// refusal (403 forbidden) is audited as a failure of action about target,
// with reason "delegation"; nothing has been changed.
func (s *server) clientDelegation(r *http.Request, action string, target auditTarget, c *permiso.ServiceClient, scopeIDs []uuid.UUID, details map[string]any) error {
	d, err := s.delegation(r)
	if err != nil {
		return err
	}
	if c != nil {
		if err := d.MayManageClient(*c); err != nil {
			s.audited(r, action, target, err, details)
			return err
		}
	}
	if scopeIDs == nil {
		return nil
	}
	scopes, err := identity.Scopes(r.Context(), s.store, scopeIDs)
	if err != nil {
		return err
	}
	if err := d.MayGrantScopes(scopes); err != nil {
		if details == nil {
			details = map[string]any{}
		}
		names := make([]string, 0, len(scopes))
		for _, sc := range scopes {
			names = append(names, sc.Name)
		}
		details["scopes"] = names
		s.audited(r, action, target, err, details)
		return err
	}
	return nil
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			writeError(w, r, err)
			return
		}
		list, total, err := s.store.ListServiceClients(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp := response{Clients: make([]clientResponse, 0, len(list)), Total: total, Page: pg.Page, PerPage: pg.PerPage, Pages: pg.pages(total)}
		for _, c := range list {
			resp.Clients = append(resp.Clients, s.clientView(c))
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// handleClientCreate answers POST /service-clients: 201 {"client",
// "client_secret"}; the secret is generated here and shown only in this
// response (only its hash is stored).
func (s *server) handleClientCreate() http.Handler {
	type response struct {
		Client       clientResponse `json:"client"`
		ClientSecret string         `json:"client_secret"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in clientInput
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, r, err)
			return
		}
		scopeIDs, err := in.validate(true)
		if err != nil {
			writeError(w, r, err)
			return
		}
		target := auditTarget{Type: "service_client"}
		if in.ClientID != nil {
			target.ID = *in.ClientID
		}
		if err := s.clientDelegation(r, actionClientCreate, target, nil, scopeIDs, map[string]any{"name": *in.Name}); err != nil {
			writeError(w, r, err)
			return
		}
		now := s.now().UTC()
		secret, hash := permiso.NewClientSecret()
		c := permiso.ServiceClient{
			ClientID: "client_" + permiso.NewOpaqueToken()[:11], SecretHash: hash, Name: *in.Name,
			Description: optText(in.Description), ClientType: "confidential", IsActive: true,
			RateLimitPerMinute: defaultPerMinute, RateLimitPerHour: defaultPerHour,
			ContactEmail: optText(in.ContactEmail), WebsiteURL: optText(in.WebsiteURL),
			AllowedIPs: optText(in.AllowedIPs), WebhookURL: optText(in.WebhookURL),
			RefreshTokenLifetime: in.RefreshTokenLifetime, CreatedAt: now, UpdatedAt: now,
		}
		if in.ClientID != nil {
			c.ClientID = *in.ClientID
		}
		if in.ClientType != nil {
			c.ClientType = *in.ClientType
		}
		if in.IsActive != nil {
			c.IsActive = *in.IsActive
		}
		if in.IsTrusted != nil {
			c.IsTrusted = *in.IsTrusted
		}
		if in.AccessTokenLifetime != nil {
			c.AccessTokenLifetime = *in.AccessTokenLifetime
		}
		if in.RateLimitPerMinute != nil {
			c.RateLimitPerMinute = *in.RateLimitPerMinute
		}
		if in.RateLimitPerHour != nil {
			c.RateLimitPerHour = *in.RateLimitPerHour
		}
		created, err := s.store.CreateServiceClient(r.Context(), c, scopeIDs)
		switch {
		case errors.Is(err, permiso.ErrAlreadyExists):
			s.record(r, actionClientCreate, "failure", auditTarget{Type: "service_client", ID: c.ClientID}, map[string]any{"reason": "exists"})
			writeError(w, r, permiso.Errorf(permiso.EEXISTS, "Client ID already exists"))
			return
		case err != nil:
			writeError(w, r, scopeIDsError(err))
			return
		}
		s.record(r, actionClientCreate, "success", clientTarget(created), map[string]any{"scopes": created.ScopeNames()})
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, response{Client: s.clientView(created), ClientSecret: secret})
	})
}

// handleClientGet answers GET /service-clients/{client_id}.
func (s *server) handleClientGet() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		writeJSON(w, http.StatusOK, s.clientView(c))
	})
}

// handleClientUpdate answers PUT /service-clients/{client_id}: absent or
// null fields stay; an empty string clears an optional text field;
// scope_ids replaces the scopes.
func (s *server) handleClientUpdate() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		var in clientInput
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, r, err)
			return
		}
		in.ClientID, in.ClientSecret, in.ClientType = nil, nil, nil
		scopeIDs, err := in.validate(false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := s.clientDelegation(r, actionClientUpdate, clientTarget(c), &c, scopeIDs, nil); err != nil {
			writeError(w, r, err)
			return
		}
		if in.ScopeIDs != nil {
			if err := s.store.SetServiceClientScopes(r.Context(), c.ID, scopeIDs); err != nil {
				writeError(w, r, scopeIDsError(err))
				return
			}
		}
		var changed []string
		updated, err := s.store.UpdateServiceClient(r.Context(), c.ID, func(x *permiso.ServiceClient) error {
			set := func(name string, apply func()) {
				changed = append(changed, name)
				apply()
			}
			if in.Name != nil {
				set("name", func() { x.Name = *in.Name })
			}
			if in.Description != nil {
				set("description", func() { x.Description = optText(in.Description) })
			}
			if in.IsActive != nil {
				set("is_active", func() {
					if !*in.IsActive {
						// Disabling revokes what the client issued: the
						// cut-off goes in the same write, so enabling it
						// again cannot revive anything (docs/security-model.md).
						x.RevokeTokensBefore(permiso.RevocationCutoff(s.now()))
					}
					x.IsActive = *in.IsActive
				})
			}
			if in.IsTrusted != nil {
				set("is_trusted", func() { x.IsTrusted = *in.IsTrusted })
			}
			if in.ContactEmail != nil {
				set("contact_email", func() { x.ContactEmail = optText(in.ContactEmail) })
			}
			if in.WebsiteURL != nil {
				set("website_url", func() { x.WebsiteURL = optText(in.WebsiteURL) })
			}
			if in.WebhookURL != nil {
				set("webhook_url", func() { x.WebhookURL = optText(in.WebhookURL) })
			}
			if in.AllowedIPs != nil {
				set("allowed_ips", func() { x.AllowedIPs = optText(in.AllowedIPs) })
			}
			if in.AccessTokenLifetime != nil {
				set("access_token_lifetime", func() { x.AccessTokenLifetime = *in.AccessTokenLifetime })
			}
			if in.RefreshTokenLifetime != nil {
				set("refresh_token_lifetime", func() { x.RefreshTokenLifetime = in.RefreshTokenLifetime })
			}
			if in.RateLimitPerMinute != nil {
				set("rate_limit_per_minute", func() { x.RateLimitPerMinute = *in.RateLimitPerMinute })
			}
			if in.RateLimitPerHour != nil {
				set("rate_limit_per_hour", func() { x.RateLimitPerHour = *in.RateLimitPerHour })
			}
			x.UpdatedAt = s.now().UTC()
			return nil
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		if in.IsActive != nil && !*in.IsActive {
			// Its sessions and refresh tokens, and the cut-off in the
			// revocation store for every instance.
			if _, err := s.auth.RevokeAllForClient(r.Context(), c.ID, "client_disabled"); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if in.ScopeIDs != nil {
			changed = append(changed, "scope_ids")
		}
		s.record(r, actionClientUpdate, "success", clientTarget(updated), map[string]any{"fields": changed})
		writeJSON(w, http.StatusOK, s.clientView(updated))
	})
}

// handleClientDelete answers DELETE /service-clients/{client_id}: 204.
// The client's tokens stop working at once: every bearer check looks the
// client up (oauth2.Service.Authenticate), and its sessions and refresh
// tokens go with it (ON DELETE CASCADE).
func (s *server) handleClientDelete() http.Handler {
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		if err := s.clientDelegation(r, actionClientDelete, clientTarget(c), &c, nil, map[string]any{"name": c.Name}); err != nil {
			writeError(w, r, err)
			return
		}
		if err := s.store.DeleteServiceClient(r.Context(), c.ID); err != nil {
			writeError(w, r, err)
			return
		}
		s.record(r, actionClientDelete, "success", clientTarget(c), map[string]any{"name": c.Name})
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleClientRotateSecret answers POST /service-clients/{client_id}/
// rotate-secret with a new secret, shown once. Body (optional):
// {"current_secret": string, "overlap_seconds": int}. When current_secret
// is given it must be the client's secret (a client rotating its own
// credential proves it); an administrator may rotate without it (a lost or
// leaked secret). The old secret stops working at once, or after
// overlap_seconds (0 to 604800) so that deployments can roll over. The new
// secret hands over the client's scopes, so the delegation rule applies
// before anything else is looked at.
func (s *server) handleClientRotateSecret() http.Handler {
	type request struct {
		CurrentSecret  *string `json:"current_secret"`
		OverlapSeconds *int    `json:"overlap_seconds"`
	}
	type response struct {
		Message                 string  `json:"message"`
		ClientID                string  `json:"client_id"`
		ClientSecret            string  `json:"client_secret"`
		PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		if err := s.clientDelegation(r, actionClientRotateSecret, clientTarget(c), &c, nil, nil); err != nil {
			writeError(w, r, err)
			return
		}
		var in request
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			if err := decodeJSON(r, &in); err != nil {
				writeError(w, r, err)
				return
			}
		}
		var errs queryErrs
		overlap := 0
		if in.OverlapSeconds != nil {
			overlap = *in.OverlapSeconds
			if overlap < 0 || overlap > maxSecretOverlap {
				errs.add("overlap_seconds", "must be between 0 and "+strconv.Itoa(maxSecretOverlap))
			}
		}
		if in.CurrentSecret != nil && !permiso.EqualHash(permiso.HashToken(*in.CurrentSecret), c.SecretHash) {
			errs.add("current_secret", "Current secret is incorrect")
		}
		if err := errs.err(); err != nil {
			s.record(r, actionClientRotateSecret, "failure", clientTarget(c), map[string]any{"reason": "invalid_request"})
			writeError(w, r, err)
			return
		}
		secret, hash := permiso.NewClientSecret()
		now := s.now().UTC()
		updated, err := s.store.UpdateServiceClient(r.Context(), c.ID, func(x *permiso.ServiceClient) error {
			if overlap > 0 {
				old, until := x.SecretHash, now.Add(time.Duration(overlap)*time.Second)
				x.PreviousSecretHash, x.PreviousSecretExpiresAt = &old, &until
			} else {
				x.PreviousSecretHash, x.PreviousSecretExpiresAt = nil, nil
			}
			x.SecretHash = hash
			x.UpdatedAt = now
			return nil
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.record(r, actionClientRotateSecret, "success", clientTarget(updated), map[string]any{"overlap_seconds": overlap})
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, response{Message: "Client secret rotated successfully", ClientID: updated.ClientID,
			ClientSecret: secret, PreviousSecretExpiresAt: nullTime(updated.PreviousSecretExpiresAt)})
	})
}

// handleClientScopes answers PUT /service-clients/{client_id}/scopes
// {"scope_ids": [...]}: replaces the scopes, returns the client.
func (s *server) handleClientScopes() http.Handler {
	type request struct {
		ScopeIDs *[]string `json:"scope_ids"`
	}
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		var in request
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, r, err)
			return
		}
		if in.ScopeIDs == nil {
			writeError(w, r, permiso.Invalid("Request validation failed", permiso.FieldError{Field: "scope_ids", Message: "is required"}))
			return
		}
		ids, err := (&clientInput{ScopeIDs: in.ScopeIDs}).validate(false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := s.clientDelegation(r, actionClientScopes, clientTarget(c), &c, ids, nil); err != nil {
			writeError(w, r, err)
			return
		}
		if err := s.store.SetServiceClientScopes(r.Context(), c.ID, ids); err != nil {
			writeError(w, r, scopeIDsError(err))
			return
		}
		updated, err := s.store.UpdateServiceClient(r.Context(), c.ID, func(x *permiso.ServiceClient) error {
			x.UpdatedAt = s.now().UTC()
			return nil
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.record(r, actionClientScopes, "success", clientTarget(updated), map[string]any{"scopes": updated.ScopeNames()})
		writeJSON(w, http.StatusOK, s.clientView(updated))
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
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
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
		writeJSON(w, http.StatusOK, resp)
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
	return s.withClient(func(w http.ResponseWriter, r *http.Request, c permiso.ServiceClient) {
		minute, hour, err := s.auth.ClientRateLimits(r.Context(), c)
		if err != nil {
			writeError(w, r, err)
			return
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
		writeJSON(w, http.StatusOK, response{
			ClientID:       c.ClientID,
			PerMinuteLimit: minute.Limit, PerMinuteRemaining: minute.Remaining, PerMinuteReset: timestamp(now.Add(minute.Reset)),
			PerHourLimit: hour.Limit, PerHourRemaining: hour.Remaining, PerHourReset: timestamp(now.Add(hour.Reset)),
			IsRateLimited: limited, RetryAfterSeconds: int((retry + time.Second - 1) / time.Second),
		})
	})
}

// handleClientStats answers GET /service-clients/stats/overview: counts
// of clients, and today's (UTC) token requests of clients from the audit
// log (client_credentials tokens issued), with the ten most active
// clients.
func (s *server) handleClientStats() http.Handler {
	type active struct {
		ClientID string `json:"client_id"`
		Requests int    `json:"requests"`
	}
	type response struct {
		TotalClients       int      `json:"total_clients"`
		ActiveClients      int      `json:"active_clients"`
		TrustedClients     int      `json:"trusted_clients"`
		TotalRequestsToday int      `json:"total_requests_today"`
		MostActiveClients  []active `json:"most_active_clients"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		count := func(f permiso.ClientFilter) (int, error) {
			f.Limit = 1
			_, n, err := s.store.ListServiceClients(ctx, f)
			return n, err
		}
		yes := true
		var resp response
		var err error
		if resp.TotalClients, err = count(permiso.ClientFilter{}); err == nil {
			if resp.ActiveClients, err = count(permiso.ClientFilter{IsActive: &yes}); err == nil {
				resp.TrustedClients, err = count(permiso.ClientFilter{IsTrusted: &yes})
			}
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		today := startOfDay(s.now())
		rows, err := s.store.CountAuditEvents(ctx, permiso.AuditFilter{Action: oauth2.ActionTokenIssue, Since: &today},
			permiso.AuditGrouping{Actor: true})
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp.MostActiveClients = []active{}
		for _, row := range rows {
			if row.ActorType != "client" {
				continue
			}
			resp.TotalRequestsToday += row.Count
			resp.MostActiveClients = append(resp.MostActiveClients, active{ClientID: row.ActorID, Requests: row.Count})
		}
		slices.SortFunc(resp.MostActiveClients, func(a, b active) int {
			if a.Requests != b.Requests {
				return b.Requests - a.Requests
			}
			return strings.Compare(a.ClientID, b.ClientID)
		})
		if len(resp.MostActiveClients) > 10 {
			resp.MostActiveClients = resp.MostActiveClients[:10]
		}
		writeJSON(w, http.StatusOK, resp)
	})
}
