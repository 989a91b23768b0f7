package cache

import (
	"slices"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/slab"
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

// cloneScopes copies scopes (nil stays nil) into the first len(scopes)
// free elements of into, their texts into strs, and returns the copy,
// whose capacity ends at its length: appending to it never reaches the
// next one.
func cloneScopes(scopes []permiso.Scope, into *[]permiso.Scope, strs *slab.Slab[string]) []permiso.Scope {
	if scopes == nil {
		return nil
	}
	start := len(*into)
	for _, sc := range scopes {
		sc.Description = strs.Ptr(sc.Description)
		sc.Resource = strs.Ptr(sc.Resource)
		*into = append(*into, sc)
	}
	return (*into)[start:len(*into):len(*into)]
}

// scopeTexts counts the texts of scopes that cloneScopes copies.
func scopeTexts(scopes []permiso.Scope) int {
	n := 0
	for _, sc := range scopes {
		n += slab.Count(sc.Description, sc.Resource)
	}
	return n
}

// cloneUser copies u, sharing nothing with it, in at most five
// allocations whatever its roles and scopes:
// the texts its pointers point to, its times, its roles, and all their
// scopes, one slice each.
func cloneUser(u permiso.User) permiso.User {
	roleStrs, nScopes := 0, 0
	for _, r := range u.Roles {
		roleStrs += slab.Count(r.Description) + scopeTexts(r.Scopes)
		nScopes += len(r.Scopes)
	}
	strs := slab.Copy(roleStrs, &u.FirstName, &u.LastName, &u.DisplayName, &u.Bio)
	slab.Copy(0, &u.LastLogin, &u.LockedUntil, &u.TokensRevokedBefore)
	if u.Roles != nil {
		roles := make([]permiso.Role, len(u.Roles))
		scopes := make([]permiso.Scope, 0, nScopes)
		for i, r := range u.Roles {
			r.Description = strs.Ptr(r.Description)
			r.Scopes = cloneScopes(r.Scopes, &scopes, &strs)
			roles[i] = r
		}
		u.Roles = roles
	}
	return u
}

// cloneClient copies c, sharing nothing with it, with its texts, times
// and scopes in one slice each (cloneUser).
func cloneClient(c permiso.ServiceClient) permiso.ServiceClient {
	strs := slab.Copy(scopeTexts(c.Scopes), &c.PreviousSecretHash, &c.Description, &c.ContactEmail, &c.WebsiteURL,
		&c.AllowedIPs, &c.WebhookURL)
	slab.Copy(0, &c.PreviousSecretExpiresAt, &c.LastUsed, &c.TokensRevokedBefore)
	c.RefreshTokenLifetime = clonePtr(c.RefreshTokenLifetime)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	if c.Scopes != nil {
		scopes := make([]permiso.Scope, 0, len(c.Scopes))
		c.Scopes = cloneScopes(c.Scopes, &scopes, &strs)
	}
	return c
}
