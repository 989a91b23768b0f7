package sqlstore

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Clients describes the service_clients table: one Col per stored field
// of permiso.ServiceClient.
var Clients = NewTable("service_clients", "c", append(Fields[permiso.ServiceClient]([]string{"id", "created_at"},
	"id", "client_id", "secret_hash", "previous_secret_hash", "previous_secret_expires_at", "name",
	"description", "client_type", "is_active", "is_trusted", "access_token_lifetime",
	"refresh_token_lifetime", "rate_limit_per_minute", "rate_limit_per_hour", "last_used",
	"total_requests", "contact_email", "website_url", "allowed_ips", "webhook_url",
	"tokens_revoked_before", "created_at", "updated_at", "token_endpoint_auth_method"),
	// The browser flow's client metadata (migration 4, docs/oidc.md):
	// lists of values without spaces, stored space-separated in order.
	listCol("redirect_uris", func(c *permiso.ServiceClient) *[]string { return &c.RedirectURIs }, spaced),
	listCol("post_logout_redirect_uris", func(c *permiso.ServiceClient) *[]string { return &c.PostLogoutRedirectURIs }, spaced),
	listCol("grant_types", func(c *permiso.ServiceClient) *[]string { return &c.GrantTypes }, spaced),
)...)

func (s *Store) clientErr(op string, err error) error {
	return s.errOf(err, op, ClientMessages, false, ScopeMessages.NotFound)
}

// selectClients runs a query selecting Clients.List() and fills each
// client's scopes, ordered by name.
func (s *Store) selectClients(ctx context.Context, q Querier, query string, args ...any) ([]permiso.ServiceClient, error) {
	out, err := selectAll(ctx, s, q, Clients, query, args...)
	if err != nil {
		return nil, s.clientErr("list service clients", err)
	}
	err = linkScopes(ctx, s, q, s.qs.clientScopes, out, func(c *permiso.ServiceClient) (uuid.UUID, *[]permiso.Scope) { return c.ID, &c.Scopes })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// The lookups of one client, built once.
var (
	clientByID       = Clients.Select() + " WHERE c.id = ?"
	clientByClientID = Clients.Select() + " WHERE c.client_id = ?"
)

// getClient returns the one client that query (clientByID, ...) selects.
func (s *Store) getClient(ctx context.Context, q Querier, query string, args ...any) (permiso.ServiceClient, error) {
	cs, err := s.selectClients(ctx, q, query, args...)
	return first(cs, err, ClientMessages.NotFound)
}

// CreateServiceClient inserts c and links scopeIDs in one transaction. ID
// is generated when zero; ClientType defaults to "confidential".
func (s *Store) CreateServiceClient(ctx context.Context, c permiso.ServiceClient, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	if c.ID == uuid.Nil {
		c.ID = newID()
	}
	if c.ClientType == "" {
		c.ClientType = "confidential"
	}
	createdTimes(&c.CreatedAt, &c.UpdatedAt)
	return createLinked(ctx, s, Clients, &c, clientScopes, c.ID, scopeIDs,
		func(err error) error { return s.clientErr("create service client", err) },
		func(q Querier) (permiso.ServiceClient, error) { return s.getClient(ctx, q, clientByID, c.ID) })
}

// GetServiceClient returns the client (by row id) with its scopes.
func (s *Store) GetServiceClient(ctx context.Context, id uuid.UUID) (permiso.ServiceClient, error) {
	return readOne(ctx, s, (*Store).getClient, clientByID, id)
}

// GetServiceClientByClientID returns the client with this public client_id.
func (s *Store) GetServiceClientByClientID(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	return readOne(ctx, s, (*Store).getClient, clientByClientID, clientID)
}

// UpdateServiceClient applies fn to the client, read locked, and writes
// it in one transaction (its scopes stay). UpdatedAt is written as fn
// leaves it; a zero value becomes the current time.
func (s *Store) UpdateServiceClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error) (permiso.ServiceClient, error) {
	return s.updateClient(ctx, id, fn, nil)
}

// UpdateServiceClientWithScopes is UpdateServiceClient that also replaces
// the client's scopes, in the same transaction.
func (s *Store) UpdateServiceClientWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	return s.updateClient(ctx, id, fn, linkIDs(scopeIDs))
}

// updateClient applies fn to the client and, when scopeIDs is not nil,
// replaces its scopes, in one transaction.
func (s *Store) updateClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	locked := func(q Querier) (permiso.ServiceClient, error) {
		return s.getClient(ctx, q, clientByID+s.d.ForUpdate(), id)
	}
	return writeRead(ctx, s, func(q Querier) error {
		if err := updateRow(ctx, s, q, Clients, id, locked, fn, "update service client", s.clientErr); err != nil {
			return err
		}
		if scopeIDs == nil {
			return nil
		}
		return s.replaceLinks(ctx, q, clientScopes, id, scopeIDs, true)
	}, func(q Querier) (permiso.ServiceClient, error) { return s.getClient(ctx, q, clientByID, id) })
}

// DeleteServiceClient removes the client; its scope links, sessions and
// refresh tokens cascade.
func (s *Store) DeleteServiceClient(ctx context.Context, id uuid.UUID) error {
	return s.deleteByID(ctx, "service_clients", "delete service client", ClientMessages, id)
}

// ListServiceClients returns one page of the clients matching f, ordered by
// created_at, id, and the number of all matching clients.
func (s *Store) ListServiceClients(ctx context.Context, f permiso.ClientFilter) ([]permiso.ServiceClient, int, error) {
	var w where
	w.search(f.Search, "c.client_id", "c.name", "coalesce(c.description, '')")
	addSet(&w, "c.is_active = ?", f.IsActive)
	addSet(&w, "c.is_trusted = ?", f.IsTrusted)
	if f.ClientType != "" {
		w.add("c.client_type = ?", f.ClientType)
	}
	addSet(&w, "EXISTS (SELECT 1 FROM service_client_scopes AS cs WHERE cs.service_client_id = c.id AND cs.scope_id = ?)", f.ScopeID)
	return listPage(ctx, s, Clients.From(), Clients.Select(), w, "c.created_at, c.id", f.Offset, f.Limit,
		func(err error) error { return s.clientErr("count service clients", err) }, s.selectClients)
}

// SetServiceClientScopes replaces the client's scopes in one transaction;
// an unknown client or scope id yields ErrNotFound and nothing changes.
func (s *Store) SetServiceClientScopes(ctx context.Context, id uuid.UUID, scopeIDs []uuid.UUID) error {
	return s.c.Write(ctx, func(q Querier) error { return s.replaceLinks(ctx, q, clientScopes, id, scopeIDs, true) })
}

// AddClientUsage adds the batched request counts and moves last_used
// forward (never backward), in one transaction; unknown ids are skipped.
// Rows are updated in id order so that concurrent batches cannot deadlock.
func (s *Store) AddClientUsage(ctx context.Context, usage map[uuid.UUID]permiso.ClientUsage) error {
	if len(usage) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return s.c.Write(ctx, func(q Querier) error {
		for _, id := range ids {
			u := usage[id]
			var err error
			if u.LastUsed.IsZero() {
				_, err = s.exec(ctx, q, "UPDATE service_clients SET total_requests = total_requests + ? WHERE id = ?", u.Requests, id)
			} else {
				_, err = s.exec(ctx, q, `UPDATE service_clients SET total_requests = total_requests + ?1,
					last_used = CASE WHEN last_used IS NULL OR last_used < ?2 THEN ?2 ELSE last_used END
					WHERE id = ?3`, u.Requests, s.d.Time(u.LastUsed), id)
			}
			if err != nil {
				return s.clientErr("add client usage", err)
			}
		}
		return nil
	})
}
