package identity

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Service clients (docs/api.md, "Service clients"): their lifecycle, the
// rules on their fields (ClientInput.Validate) and the delegation rule on
// every change (Delegation.MayManageClient, MayGrantScopes: a delegated
// administrator gives a client only scopes it holds, and changes,
// re-scopes, disables, deletes or rotates the secret of a client only
// when the client holds no scope it lacks). Every change is audited here
// (client.*); a refusal of the delegation rule as a failure with reason
// "delegation", before anything is changed.

// Audit actions of the service-client lifecycle.
const (
	ActionClientCreate       = "client.create"
	ActionClientUpdate       = "client.update"
	ActionClientDelete       = "client.delete"
	ActionClientRotateSecret = "client.rotate_secret"
	ActionClientScopes       = "client.scopes_update"
)

// ClientTokens ends what a service client issued (oauth2.Service).
type ClientTokens interface {
	// RevokeAllForClient moves the client's cut-off forward, ends the
	// sessions and refresh tokens issued through it and tells every
	// instance, so that no token it issued so far works again.
	RevokeAllForClient(ctx context.Context, id uuid.UUID, reason string) (int, error)
}

var (
	errClientNotFound = permiso.Errorf(permiso.ENOTFOUND, "Service client not found")
	errClientExists   = permiso.Errorf(permiso.EEXISTS, "Client ID already exists")
	// errUnknownScopes is the answer the users and roles APIs give for
	// unknown role and scope ids too.
	errUnknownScopes = permiso.Errorf(permiso.EBADREQUEST, "Unknown scope ids")
)

func clientTarget(c permiso.ServiceClient) target { return target{"service_client", c.ClientID} }

// Client returns the service client named by its public client_id, as
// the database has it (not an in-process cached copy: last_used and
// total_requests are not invalidated there); 404 when there is none. A
// client_id that is not valid UTF-8 or holds a NUL names no client and is
// not looked up (docs/security-model.md, "Untrusted bytes").
func (s *Service) Client(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	if !permiso.ValidIdentifier(clientID) {
		return permiso.ServiceClient{}, errClientNotFound
	}
	c, err := s.deps.Store.GetServiceClientByClientID(permiso.WithFreshRead(ctx), clientID)
	return c, notFound(err, errClientNotFound)
}

// mayChangeClient applies the delegation rule to a change of a service
// client by actor: it must be allowed to act on the existing client c
// (nil on create) and to give it the scopes of scopeIDs (nil when the
// scopes do not change). Unknown scope ids are a 400. A refusal (403
// forbidden) is audited as a failure of action about tgt, with details
// and, for a refusal of the scopes, their names; nothing has been changed.
func (s *Service) mayChangeClient(ctx context.Context, actor Actor, action string, tgt target, c *permiso.ServiceClient, scopeIDs []uuid.UUID, details map[string]any) error {
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return err
	}
	if c != nil {
		if err := d.MayManageClient(*c); err != nil {
			s.audited(ctx, actor, action, tgt, err, details)
			return err
		}
	}
	if scopeIDs == nil {
		return nil
	}
	scopes, err := s.scopes(ctx, scopeIDs)
	if err != nil {
		return err
	}
	if err := d.MayGrantScopes(scopes); err != nil {
		if details == nil {
			details = map[string]any{}
		}
		details["scopes"] = scopeNames(scopes)
		s.audited(ctx, actor, action, tgt, err, details)
		return err
	}
	return nil
}

// browserChange reports whether in changes what the delegation rule keeps
// for full administrators on the client c (nil on create):
// Delegation.MayConfigureBrowserClient. A field sent with the value the
// client already has changes nothing and is not counted.
func browserChange(c *permiso.ServiceClient, in ClientInput) bool {
	var cur permiso.ServiceClient
	if c != nil {
		cur = *c
	}
	switch {
	case in.IsTrusted != nil && *in.IsTrusted != cur.IsTrusted:
		return true
	case in.RedirectURIs != nil && !slices.Equal(*in.RedirectURIs, cur.RedirectURIs):
		return true
	case in.PostLogoutRedirectURIs != nil && !slices.Equal(*in.PostLogoutRedirectURIs, cur.PostLogoutRedirectURIs):
		return true
	case in.GrantTypes != nil && slices.Contains(*in.GrantTypes, permiso.GrantTypeAuthorizationCode) &&
		!cur.AllowsGrant(permiso.GrantTypeAuthorizationCode):
		return true
	}
	return false
}

// mayConfigureBrowser applies Delegation.MayConfigureBrowserClient when in
// changes the browser flow of c (nil on create); a refusal is audited as
// a failure of action about tgt, with details.
func (s *Service) mayConfigureBrowser(ctx context.Context, actor Actor, action string, tgt target, c *permiso.ServiceClient, in ClientInput, details map[string]any) error {
	if !browserChange(c, in) {
		return nil
	}
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return err
	}
	if err := d.MayConfigureBrowserClient(); err != nil {
		s.audited(ctx, actor, action, tgt, err, details)
		return err
	}
	return nil
}

// CreateClient creates a service client (POST /service-clients) and
// returns it with its secret, generated here and shown only once: only
// its hash is stored. Defaults: a generated client_id ("client_" and 11
// random characters), confidential, active, 60 requests per minute and
// 1000 per hour, the server's access-token lifetime. Order: the fields
// (422), the scopes (unknown 400, beyond the delegation rule 403), the
// client_id (409). The outcome is audited (client.create), except a
// refusal of the fields or the scope ids.
func (s *Service) CreateClient(ctx context.Context, actor Actor, in ClientInput) (permiso.ServiceClient, string, error) {
	tgt := target{typ: "service_client"}
	scopeIDs, err := in.Validate(true)
	if err != nil {
		// Refused creations are audited like the others (the client_id
		// is not recorded: it failed validation and may be any bytes).
		s.audited(ctx, actor, ActionClientCreate, tgt, err, map[string]any{"name": deref2(in.Name)})
		return permiso.ServiceClient{}, "", err
	}
	if in.ClientID != nil {
		tgt.id = *in.ClientID
	}
	if err := s.mayChangeClient(ctx, actor, ActionClientCreate, tgt, nil, scopeIDs, map[string]any{"name": *in.Name}); err != nil {
		return permiso.ServiceClient{}, "", err
	}
	if err := s.mayConfigureBrowser(ctx, actor, ActionClientCreate, tgt, nil, in, map[string]any{"name": *in.Name}); err != nil {
		return permiso.ServiceClient{}, "", err
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
	assign(&c.ClientID, in.ClientID)
	assign(&c.ClientType, in.ClientType)
	assign(&c.IsActive, in.IsActive)
	assign(&c.IsTrusted, in.IsTrusted)
	assign(&c.AccessTokenLifetime, in.AccessTokenLifetime)
	assign(&c.RateLimitPerMinute, in.RateLimitPerMinute)
	assign(&c.RateLimitPerHour, in.RateLimitPerHour)
	if c.ClientType == "public" {
		c.TokenEndpointAuthMethod = permiso.AuthMethodNone
	}
	if err := applyBrowserFields(&c, in, true); err != nil {
		s.audited(ctx, actor, ActionClientCreate, tgt, err, map[string]any{"name": *in.Name})
		return permiso.ServiceClient{}, "", err
	}
	created, err := s.deps.Store.CreateServiceClient(ctx, c, scopeIDs)
	switch {
	case errors.Is(err, permiso.ErrAlreadyExists):
		s.record(ctx, actor, ActionClientCreate, "failure", clientTarget(c), map[string]any{"reason": "exists"})
		return permiso.ServiceClient{}, "", errClientExists
	case errors.Is(err, permiso.ErrNotFound):
		// A scope was deleted since it was checked.
		return permiso.ServiceClient{}, "", errUnknownScopes
	case err != nil:
		return permiso.ServiceClient{}, "", err
	}
	s.record(ctx, actor, ActionClientCreate, "success", clientTarget(created), map[string]any{"scopes": created.ScopeNames()})
	return created, secret, nil
}

// UpdateClient changes the service client c (PUT /service-clients/
// {client_id}): absent fields stay, an empty string clears an optional
// text field, scope_ids replaces the scopes; client_id, client_secret and
// client_type are ignored. The fields and the scopes are written in one
// transaction. Disabling the client revokes what it issued: the cut-off
// goes in the same write, so enabling it again revives nothing, then its
// sessions and refresh tokens end and every instance is told
// (docs/security-model.md). The outcome is audited (client.update, with
// the names of the fields changed), except a refusal of the fields or the
// scope ids.
func (s *Service) UpdateClient(ctx context.Context, actor Actor, c permiso.ServiceClient, in ClientInput) (permiso.ServiceClient, error) {
	in.ClientID, in.ClientSecret, in.ClientType = nil, nil, nil
	scopeIDs, err := in.Validate(false)
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	if err := s.mayChangeClient(ctx, actor, ActionClientUpdate, clientTarget(c), &c, scopeIDs, nil); err != nil {
		return permiso.ServiceClient{}, err
	}
	if err := s.mayConfigureBrowser(ctx, actor, ActionClientUpdate, clientTarget(c), &c, in, nil); err != nil {
		return permiso.ServiceClient{}, err
	}
	now := s.now()
	var changed []string
	apply := func(x *permiso.ServiceClient) error {
		changed = changed[:0]
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
					x.RevokeTokensBefore(permiso.RevocationCutoff(now))
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
		for name, given := range map[string]bool{"redirect_uris": in.RedirectURIs != nil,
			"post_logout_redirect_uris": in.PostLogoutRedirectURIs != nil, "grant_types": in.GrantTypes != nil,
			"token_endpoint_auth_method": in.TokenEndpointAuthMethod != nil} {
			if given {
				changed = append(changed, name)
			}
		}
		if err := applyBrowserFields(x, in, false); err != nil {
			return err
		}
		x.UpdatedAt = now.UTC()
		return nil
	}
	updated, err := s.writeClient(ctx, c.ID, apply, scopeIDs)
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	if in.IsActive != nil && !*in.IsActive {
		// Its sessions and refresh tokens, and the cut-off in the
		// revocation store for every instance.
		if s.deps.ClientTokens == nil {
			return permiso.ServiceClient{}, errors.New("identity: no ClientTokens to revoke what a disabled client issued")
		}
		if _, err := s.deps.ClientTokens.RevokeAllForClient(withRequest(ctx, actor), c.ID, "client_disabled"); err != nil {
			return permiso.ServiceClient{}, err
		}
	}
	if scopeIDs != nil {
		changed = append(changed, "scope_ids")
	}
	s.record(ctx, actor, ActionClientUpdate, "success", clientTarget(updated), map[string]any{"fields": changed})
	return updated, nil
}

// applyBrowserFields sets the browser flow's metadata of c from in and
// checks them together (422 otherwise): a public client authenticates
// with none and a confidential one with a secret (RFC 7591 §2); the
// authorization_code grant needs a redirect URI.
func applyBrowserFields(c *permiso.ServiceClient, in ClientInput, create bool) error {
	if in.RedirectURIs != nil {
		c.RedirectURIs = slices.Clone(*in.RedirectURIs)
	}
	if in.PostLogoutRedirectURIs != nil {
		c.PostLogoutRedirectURIs = slices.Clone(*in.PostLogoutRedirectURIs)
	}
	if in.GrantTypes != nil {
		c.GrantTypes = slices.Clone(*in.GrantTypes)
	}
	if in.TokenEndpointAuthMethod != nil {
		c.TokenEndpointAuthMethod = *in.TokenEndpointAuthMethod
	}
	var errs problems
	if (create || in.TokenEndpointAuthMethod != nil) && (c.ClientType == "public") != (c.AuthMethod() == permiso.AuthMethodNone) {
		errs = append(errs, permiso.FieldError{Field: "token_endpoint_auth_method",
			Message: "must be none for a public client, and a secret method for a confidential one"})
	}
	if c.AllowsGrant(permiso.GrantTypeAuthorizationCode) && len(c.RedirectURIs) == 0 {
		errs = append(errs, permiso.FieldError{Field: "redirect_uris", Message: "the authorization_code grant needs at least one redirect URI"})
	}
	return errs.err()
}

// writeClient applies fn to the client id and, when scopeIDs is not nil,
// replaces its scopes, in one transaction. A scope deleted since it was
// checked is a 400; a client deleted since it was read, a 404.
func (s *Service) writeClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	c, err := updateLinked(ctx, id, fn, scopeIDs != nil, scopeIDs, "scope",
		s.deps.Store.UpdateServiceClient, s.deps.Store.UpdateServiceClientWithScopes, s.deps.Store.GetServiceClient)
	return c, notFound(err, errClientNotFound)
}

// SetClientScopes replaces the scopes of the service client c (PUT
// /service-clients/{client_id}/scopes); scopeIDs is required. The outcome
// is audited (client.scopes_update, with the new scopes' names), except a
// refusal of the scope ids.
func (s *Service) SetClientScopes(ctx context.Context, actor Actor, c permiso.ServiceClient, scopeIDs *[]string) (permiso.ServiceClient, error) {
	if scopeIDs == nil {
		return permiso.ServiceClient{}, permiso.Invalid("Request validation failed", permiso.FieldError{Field: "scope_ids", Message: "is required"})
	}
	ids, err := (&ClientInput{ScopeIDs: scopeIDs}).Validate(false)
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	if err := s.mayChangeClient(ctx, actor, ActionClientScopes, clientTarget(c), &c, ids, nil); err != nil {
		return permiso.ServiceClient{}, err
	}
	now := s.now().UTC()
	updated, err := s.writeClient(ctx, c.ID, func(x *permiso.ServiceClient) error {
		x.UpdatedAt = now
		return nil
	}, ids)
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	s.record(ctx, actor, ActionClientScopes, "success", clientTarget(updated), map[string]any{"scopes": updated.ScopeNames()})
	return updated, nil
}

// SecretRotation is a rotation of a client's secret: CurrentSecret, when
// given, must be the client's secret (a client rotating its own
// credential proves it; an administrator may rotate without it, for a
// lost or leaked secret); OverlapSeconds (0 to MaxSecretOverlap) keeps the
// old secret working that long, so that deployments can roll over.
type SecretRotation struct {
	CurrentSecret  *string `json:"current_secret"`
	OverlapSeconds *int    `json:"overlap_seconds"`
}

// RotateClientSecret gives the service client c a new secret, returned
// once (only its hash is stored). The new secret hands over the client's
// scopes, so the delegation rule applies before anything else is looked
// at. The old secret stops working at once, or after the overlap. The
// outcome is audited (client.rotate_secret, with the overlap): a refusal
// of the delegation rule, or a bad overlap or current secret (reason
// invalid_request), as a failure.
func (s *Service) RotateClientSecret(ctx context.Context, actor Actor, c permiso.ServiceClient, in SecretRotation) (permiso.ServiceClient, string, error) {
	if err := s.mayChangeClient(ctx, actor, ActionClientRotateSecret, clientTarget(c), &c, nil, nil); err != nil {
		return permiso.ServiceClient{}, "", err
	}
	if d, err := s.Delegation(ctx, actor); err != nil {
		return permiso.ServiceClient{}, "", err
	} else if err := d.MayRotateBrowserClientSecret(c); err != nil {
		s.audited(ctx, actor, ActionClientRotateSecret, clientTarget(c), err, nil)
		return permiso.ServiceClient{}, "", err
	}
	var errs problems
	overlap := 0
	if in.OverlapSeconds != nil {
		overlap = *in.OverlapSeconds
		if overlap < 0 || overlap > MaxSecretOverlap {
			errs.add("overlap_seconds", "must be between 0 and %d", MaxSecretOverlap)
		}
	}
	if in.CurrentSecret != nil && !permiso.EqualHash(permiso.HashToken(*in.CurrentSecret), c.SecretHash) {
		errs.add("current_secret", "Current secret is incorrect")
	}
	if err := errs.err(); err != nil {
		s.record(ctx, actor, ActionClientRotateSecret, "failure", clientTarget(c), map[string]any{"reason": "invalid_request"})
		return permiso.ServiceClient{}, "", err
	}
	secret, hash := permiso.NewClientSecret()
	now := s.now().UTC()
	updated, err := s.writeClient(ctx, c.ID, func(x *permiso.ServiceClient) error {
		if overlap > 0 {
			old, until := x.SecretHash, now.Add(time.Duration(overlap)*time.Second)
			x.PreviousSecretHash, x.PreviousSecretExpiresAt = &old, &until
		} else {
			x.PreviousSecretHash, x.PreviousSecretExpiresAt = nil, nil
		}
		x.SecretHash = hash
		x.UpdatedAt = now
		return nil
	}, nil)
	if err != nil {
		return permiso.ServiceClient{}, "", err
	}
	s.record(ctx, actor, ActionClientRotateSecret, "success", clientTarget(updated), map[string]any{"overlap_seconds": overlap})
	return updated, secret, nil
}

// DeleteClient deletes the service client c (DELETE /service-clients/
// {client_id}). Its tokens stop working at once: every bearer check looks
// the client up (oauth2.Service.Authenticate), and its sessions and
// refresh tokens go with it (ON DELETE CASCADE). The outcome is audited
// (client.delete, with the client's name).
func (s *Service) DeleteClient(ctx context.Context, actor Actor, c permiso.ServiceClient) error {
	details := func() map[string]any { return map[string]any{"name": c.Name} }
	if err := s.mayChangeClient(ctx, actor, ActionClientDelete, clientTarget(c), &c, nil, details()); err != nil {
		return err
	}
	if err := s.deps.Store.DeleteServiceClient(ctx, c.ID); err != nil {
		return notFound(err, errClientNotFound)
	}
	s.record(ctx, actor, ActionClientDelete, "success", clientTarget(c), details())
	return nil
}
