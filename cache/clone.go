package cache

import (
	"slices"
	"time"

	"github.com/permiso/permiso"
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

// slab holds the copies of the values that one clone's pointers point to,
// in one allocation: a cached user or client is copied on every read (a
// bearer check's user, an introspecting client), and a pointer copied
// alone costs an allocation of its own. slab's capacity is counted
// (count) before anything is appended, so append never moves it.
type slab[T any] []T

// count returns how many of ps are not nil.
func count[T any](ps ...*T) int {
	n := 0
	for _, p := range ps {
		if p != nil {
			n++
		}
	}
	return n
}

// ptr returns a pointer to a copy of *p in s (nil for nil).
func (s *slab[T]) ptr(p *T) *T {
	if p == nil {
		return nil
	}
	if len(*s) == cap(*s) {
		return clonePtr(p) // not counted: never so, but still a copy
	}
	*s = append(*s, *p)
	return &(*s)[len(*s)-1]
}

// cloneScopes copies scopes (nil stays nil) into the first len(scopes)
// free elements of into, their texts into strs, and returns the copy,
// whose capacity ends at its length: appending to it never reaches the
// next one.
func cloneScopes(scopes []permiso.Scope, into *[]permiso.Scope, strs *slab[string]) []permiso.Scope {
	if scopes == nil {
		return nil
	}
	start := len(*into)
	for _, sc := range scopes {
		sc.Description = strs.ptr(sc.Description)
		sc.Resource = strs.ptr(sc.Resource)
		*into = append(*into, sc)
	}
	return (*into)[start:len(*into):len(*into)]
}

// scopeTexts counts the texts of scopes that cloneScopes copies.
func scopeTexts(scopes []permiso.Scope) int {
	n := 0
	for _, sc := range scopes {
		n += count(sc.Description, sc.Resource)
	}
	return n
}

// cloneUser copies u, sharing nothing with it, in at most five
// allocations whatever its roles and scopes:
// the texts its pointers point to, its times, its roles, and all their
// scopes, one slice each.
func cloneUser(u permiso.User) permiso.User {
	nStrs, nScopes := count(u.FirstName, u.LastName, u.DisplayName, u.Bio), 0
	for _, r := range u.Roles {
		nStrs += count(r.Description) + scopeTexts(r.Scopes)
		nScopes += len(r.Scopes)
	}
	strs := make(slab[string], 0, nStrs)
	times := make(slab[time.Time], 0, count(u.LastLogin, u.LockedUntil, u.TokensRevokedBefore))
	u.FirstName = strs.ptr(u.FirstName)
	u.LastName = strs.ptr(u.LastName)
	u.DisplayName = strs.ptr(u.DisplayName)
	u.Bio = strs.ptr(u.Bio)
	u.LastLogin = times.ptr(u.LastLogin)
	u.LockedUntil = times.ptr(u.LockedUntil)
	u.TokensRevokedBefore = times.ptr(u.TokensRevokedBefore)
	if u.Roles != nil {
		roles := make([]permiso.Role, len(u.Roles))
		scopes := make([]permiso.Scope, 0, nScopes)
		for i, r := range u.Roles {
			r.Description = strs.ptr(r.Description)
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
	strs := make(slab[string], 0, count(c.PreviousSecretHash, c.Description, c.ContactEmail, c.WebsiteURL,
		c.AllowedIPs, c.WebhookURL)+scopeTexts(c.Scopes))
	times := make(slab[time.Time], 0, count(c.PreviousSecretExpiresAt, c.LastUsed, c.TokensRevokedBefore))
	c.PreviousSecretHash = strs.ptr(c.PreviousSecretHash)
	c.PreviousSecretExpiresAt = times.ptr(c.PreviousSecretExpiresAt)
	c.Description = strs.ptr(c.Description)
	c.RefreshTokenLifetime = clonePtr(c.RefreshTokenLifetime)
	c.LastUsed = times.ptr(c.LastUsed)
	c.ContactEmail = strs.ptr(c.ContactEmail)
	c.WebsiteURL = strs.ptr(c.WebsiteURL)
	c.AllowedIPs = strs.ptr(c.AllowedIPs)
	c.WebhookURL = strs.ptr(c.WebhookURL)
	c.TokensRevokedBefore = times.ptr(c.TokensRevokedBefore)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	if c.Scopes != nil {
		scopes := make([]permiso.Scope, 0, len(c.Scopes))
		c.Scopes = cloneScopes(c.Scopes, &scopes, &strs)
	}
	return c
}
