package sqlite

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const clientCols = `c.id, c.client_id, c.secret_hash, c.previous_secret_hash,
	c.previous_secret_expires_at, c.name, c.description, c.client_type,
	c.is_active, c.is_trusted, c.access_token_lifetime, c.refresh_token_lifetime,
	c.rate_limit_per_minute, c.rate_limit_per_hour, c.last_used,
	c.total_requests, c.contact_email, c.website_url, c.allowed_ips,
	c.webhook_url, c.tokens_revoked_before, c.created_at, c.updated_at`

func scanClient(s scanner) (permiso.ServiceClient, error) {
	var c permiso.ServiceClient
	err := s.Scan(&c.ID, &c.ClientID, &c.SecretHash, &c.PreviousSecretHash,
		nullTimeCol{&c.PreviousSecretExpiresAt}, &c.Name, &c.Description,
		&c.ClientType, &c.IsActive, &c.IsTrusted, &c.AccessTokenLifetime,
		&c.RefreshTokenLifetime, &c.RateLimitPerMinute, &c.RateLimitPerHour,
		nullTimeCol{&c.LastUsed}, &c.TotalRequests, &c.ContactEmail,
		&c.WebsiteURL, &c.AllowedIPs, &c.WebhookURL, nullTimeCol{&c.TokensRevokedBefore},
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	return c, err
}

func clientErr(op string, err error) error {
	return errMap{op: op, notFound: "Service client not found", exists: "Client ID already exists",
		fk: "Scope not found", fkCode: permiso.ENOTFOUND}.wrap(err)
}

// selectClients runs a query selecting clientCols and fills each client's
// scopes, ordered by name.
func selectClients(ctx context.Context, c conn, query string, args ...any) ([]permiso.ServiceClient, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, clientErr("list service clients", err)
	}
	var out []permiso.ServiceClient
	var ids []uuid.UUID
	for rows.Next() {
		sc, err := scanClient(rows)
		if err != nil {
			rows.Close()
			return nil, clientErr("list service clients", err)
		}
		out = append(out, sc)
		ids = append(ids, sc.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, clientErr("list service clients", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	srows, err := c.query(ctx, `SELECT cs.service_client_id, `+scopeColsS+`
		FROM service_client_scopes AS cs JOIN scopes AS s ON s.id = cs.scope_id
		WHERE cs.service_client_id IN (SELECT value FROM json_each(?))
		ORDER BY s.name, s.id`, idsJSON(ids))
	if err != nil {
		return nil, clientErr("load client scopes", err)
	}
	defer srows.Close()
	scopes := map[uuid.UUID][]permiso.Scope{}
	for srows.Next() {
		var cid uuid.UUID
		var s permiso.Scope
		if err := srows.Scan(append([]any{&cid}, scopeDest(&s)...)...); err != nil {
			return nil, clientErr("load client scopes", err)
		}
		scopes[cid] = append(scopes[cid], s)
	}
	if err := srows.Err(); err != nil {
		return nil, clientErr("load client scopes", err)
	}
	for i := range out {
		out[i].Scopes = scopes[out[i].ID]
	}
	return out, nil
}

func getClient(ctx context.Context, c conn, where string, args ...any) (permiso.ServiceClient, error) {
	cs, err := selectClients(ctx, c, "SELECT "+clientCols+" FROM service_clients AS c WHERE "+where, args...)
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	if len(cs) == 0 {
		return permiso.ServiceClient{}, notFound("Service client not found")
	}
	return cs[0], nil
}

// CreateServiceClient inserts sc and links scopeIDs in one transaction. ID
// is generated when zero; ClientType defaults to "confidential".
func (db *DB) CreateServiceClient(ctx context.Context, sc permiso.ServiceClient, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	if sc.ID == uuid.Nil {
		sc.ID = newID()
	}
	if sc.ClientType == "" {
		sc.ClientType = "confidential"
	}
	sc.CreatedAt = orNow(sc.CreatedAt)
	if sc.UpdatedAt.IsZero() {
		sc.UpdatedAt = sc.CreatedAt
	}
	scopeIDs = uniqueIDs(scopeIDs)
	var out permiso.ServiceClient
	err := db.inTx(ctx, func(c conn) error {
		if err := checkAllExist(ctx, c, "scopes", scopeIDs, "Scope not found"); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO service_clients (`+strings.ReplaceAll(clientCols, "c.", "")+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sc.ID, sc.ClientID, sc.SecretHash, sc.PreviousSecretHash,
			tsPtr(sc.PreviousSecretExpiresAt), sc.Name, sc.Description, sc.ClientType,
			sc.IsActive, sc.IsTrusted, sc.AccessTokenLifetime, sc.RefreshTokenLifetime,
			sc.RateLimitPerMinute, sc.RateLimitPerHour, tsPtr(sc.LastUsed),
			sc.TotalRequests, sc.ContactEmail, sc.WebsiteURL, sc.AllowedIPs,
			sc.WebhookURL, tsPtr(sc.TokensRevokedBefore), ts(sc.CreatedAt), ts(sc.UpdatedAt))
		if err != nil {
			return clientErr("create service client", err)
		}
		if err := insertClientScopes(ctx, c, sc.ID, scopeIDs); err != nil {
			return err
		}
		out, err = getClient(ctx, c, "c.id = ?", sc.ID)
		return err
	})
	return out, err
}

func insertClientScopes(ctx context.Context, c conn, id uuid.UUID, scopeIDs []uuid.UUID) error {
	for _, sid := range scopeIDs {
		if _, err := c.exec(ctx,
			"INSERT INTO service_client_scopes (service_client_id, scope_id) VALUES (?, ?)", id, sid); err != nil {
			return clientErr("link client scope", err)
		}
	}
	return nil
}

// GetServiceClient returns the client (by row id) with its scopes.
func (db *DB) GetServiceClient(ctx context.Context, id uuid.UUID) (permiso.ServiceClient, error) {
	var out permiso.ServiceClient
	err := db.readTx(ctx, func(c conn) (err error) {
		out, err = getClient(ctx, c, "c.id = ?", id)
		return err
	})
	return out, err
}

// GetServiceClientByClientID returns the client with this public client_id.
func (db *DB) GetServiceClientByClientID(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	var out permiso.ServiceClient
	err := db.readTx(ctx, func(c conn) (err error) {
		out, err = getClient(ctx, c, "c.client_id = ?", clientID)
		return err
	})
	return out, err
}

// UpdateServiceClient applies fn to the client and writes it in one
// transaction (its scopes stay).
func (db *DB) UpdateServiceClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error) (permiso.ServiceClient, error) {
	return db.updateClient(ctx, id, fn, nil)
}

// UpdateServiceClientWithScopes applies fn to the client and replaces its
// scopes in one transaction.
func (db *DB) UpdateServiceClientWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	if scopeIDs == nil {
		scopeIDs = []uuid.UUID{}
	}
	return db.updateClient(ctx, id, fn, scopeIDs)
}

// updateClient applies fn to the client and, when scopeIDs is not nil,
// replaces its scopes, in one transaction.
func (db *DB) updateClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	var out permiso.ServiceClient
	err := db.inTx(ctx, func(c conn) error {
		if scopeIDs != nil {
			if err := replaceClientScopes(ctx, c, id, scopeIDs); err != nil {
				return err
			}
		}
		sc, err := getClient(ctx, c, "c.id = ?", id)
		if err != nil {
			return err
		}
		if err := fn(&sc); err != nil {
			return err
		}
		_, err = c.exec(ctx, `UPDATE service_clients SET client_id = ?, secret_hash = ?,
			previous_secret_hash = ?, previous_secret_expires_at = ?, name = ?,
			description = ?, client_type = ?, is_active = ?, is_trusted = ?,
			access_token_lifetime = ?, refresh_token_lifetime = ?,
			rate_limit_per_minute = ?, rate_limit_per_hour = ?, last_used = ?,
			total_requests = ?, contact_email = ?, website_url = ?, allowed_ips = ?,
			webhook_url = ?, tokens_revoked_before = ?, updated_at = ?
			WHERE id = ?`,
			sc.ClientID, sc.SecretHash, sc.PreviousSecretHash,
			tsPtr(sc.PreviousSecretExpiresAt), sc.Name, sc.Description, sc.ClientType,
			sc.IsActive, sc.IsTrusted, sc.AccessTokenLifetime, sc.RefreshTokenLifetime,
			sc.RateLimitPerMinute, sc.RateLimitPerHour, tsPtr(sc.LastUsed),
			sc.TotalRequests, sc.ContactEmail, sc.WebsiteURL, sc.AllowedIPs,
			sc.WebhookURL, tsPtr(sc.TokensRevokedBefore), ts(orNow(sc.UpdatedAt)), id)
		if err != nil {
			return clientErr("update service client", err)
		}
		out, err = getClient(ctx, c, "c.id = ?", id)
		return err
	})
	return out, err
}

// DeleteServiceClient removes the client with its scope links, sessions and
// refresh tokens.
func (db *DB) DeleteServiceClient(ctx context.Context, id uuid.UUID) error {
	n, err := db.w().execN(ctx, "DELETE FROM service_clients WHERE id = ?", id)
	if err != nil {
		return clientErr("delete service client", err)
	}
	if n == 0 {
		return notFound("Service client not found")
	}
	return nil
}

// ListServiceClients returns one page of the clients matching f, ordered by
// created_at, id, and the number of all matching clients.
func (db *DB) ListServiceClients(ctx context.Context, f permiso.ClientFilter) ([]permiso.ServiceClient, int, error) {
	var where []string
	var args []any
	if f.Search != "" {
		where = append(where, `(lower(c.client_id) LIKE ?1 ESCAPE '\' OR lower(c.name) LIKE ?1 ESCAPE '\'
			OR lower(coalesce(c.description, '')) LIKE ?1 ESCAPE '\')`)
		args = append(args, likePattern(f.Search))
	}
	if f.IsActive != nil {
		where = append(where, "c.is_active = ?")
		args = append(args, *f.IsActive)
	}
	if f.IsTrusted != nil {
		where = append(where, "c.is_trusted = ?")
		args = append(args, *f.IsTrusted)
	}
	if f.ClientType != "" {
		where = append(where, "c.client_type = ?")
		args = append(args, f.ClientType)
	}
	if f.ScopeID != nil {
		where = append(where, "c.id IN (SELECT service_client_id FROM service_client_scopes WHERE scope_id = ?)")
		args = append(args, *f.ScopeID)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var out []permiso.ServiceClient
	var total int
	err := db.readTx(ctx, func(c conn) error {
		if err := c.queryRow(ctx, "SELECT count(*) FROM service_clients AS c"+cond, args...).Scan(&total); err != nil {
			return clientErr("count service clients", err)
		}
		q, qargs := page("SELECT "+clientCols+" FROM service_clients AS c"+cond+" ORDER BY c.created_at, c.id", args, f.Offset, f.Limit)
		var err error
		out, err = selectClients(ctx, c, q, qargs...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// SetServiceClientScopes replaces the client's scopes in one transaction.
func (db *DB) SetServiceClientScopes(ctx context.Context, id uuid.UUID, scopeIDs []uuid.UUID) error {
	return db.inTx(ctx, func(c conn) error { return replaceClientScopes(ctx, c, id, scopeIDs) })
}

// replaceClientScopes replaces the client's scopes inside a transaction.
func replaceClientScopes(ctx context.Context, c conn, id uuid.UUID, scopeIDs []uuid.UUID) error {
	scopeIDs = uniqueIDs(scopeIDs)
	if err := checkExists(ctx, c, "service_clients", id, "Service client not found"); err != nil {
		return err
	}
	if err := checkAllExist(ctx, c, "scopes", scopeIDs, "Scope not found"); err != nil {
		return err
	}
	if _, err := c.exec(ctx, "DELETE FROM service_client_scopes WHERE service_client_id = ?", id); err != nil {
		return clientErr("set client scopes", err)
	}
	return insertClientScopes(ctx, c, id, scopeIDs)
}

// AddClientUsage adds the batched request counts and moves last_used
// forward (never backward), in one transaction; unknown ids are skipped.
func (db *DB) AddClientUsage(ctx context.Context, usage map[uuid.UUID]permiso.ClientUsage) error {
	if len(usage) == 0 {
		return nil
	}
	return db.inTx(ctx, func(c conn) error {
		for id, u := range usage {
			var last any
			if !u.LastUsed.IsZero() {
				last = ts(u.LastUsed)
			}
			if _, err := c.exec(ctx, `UPDATE service_clients
				SET total_requests = total_requests + ?1,
				    last_used = CASE WHEN ?2 IS NOT NULL AND (last_used IS NULL OR last_used < ?2)
				                     THEN ?2 ELSE last_used END
				WHERE id = ?3`, u.Requests, last, id); err != nil {
				return clientErr("add client usage", err)
			}
		}
		return nil
	})
}
