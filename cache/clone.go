package cache

import (
	"slices"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/mapslice"
)

// The clones below copy every pointer and slice of the cached types, so
// that neither a caller nor the cache can see the other's changes. The
// tests check by reflection that no field is shared, so a field added to
// one of these types without its copy here fails them.

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneScope(s permiso.Scope) permiso.Scope {
	s.Description = clonePtr(s.Description)
	s.Resource = clonePtr(s.Resource)
	return s
}

func cloneRole(r permiso.Role) permiso.Role {
	r.Description = clonePtr(r.Description)
	r.Scopes = mapslice.Map(r.Scopes, cloneScope)
	return r
}

func cloneUser(u permiso.User) permiso.User {
	u.FirstName = clonePtr(u.FirstName)
	u.LastName = clonePtr(u.LastName)
	u.DisplayName = clonePtr(u.DisplayName)
	u.Bio = clonePtr(u.Bio)
	u.LastLogin = clonePtr(u.LastLogin)
	u.LockedUntil = clonePtr(u.LockedUntil)
	u.TokensRevokedBefore = clonePtr(u.TokensRevokedBefore)
	u.Roles = mapslice.Map(u.Roles, cloneRole)
	return u
}

func cloneClient(c permiso.ServiceClient) permiso.ServiceClient {
	c.PreviousSecretHash = clonePtr(c.PreviousSecretHash)
	c.PreviousSecretExpiresAt = clonePtr(c.PreviousSecretExpiresAt)
	c.Description = clonePtr(c.Description)
	c.RefreshTokenLifetime = clonePtr(c.RefreshTokenLifetime)
	c.LastUsed = clonePtr(c.LastUsed)
	c.ContactEmail = clonePtr(c.ContactEmail)
	c.WebsiteURL = clonePtr(c.WebsiteURL)
	c.AllowedIPs = clonePtr(c.AllowedIPs)
	c.WebhookURL = clonePtr(c.WebhookURL)
	c.TokensRevokedBefore = clonePtr(c.TokensRevokedBefore)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = mapslice.Map(c.Scopes, cloneScope)
	return c
}
