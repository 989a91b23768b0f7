package postgres

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

const clientColumns = `c.id, c.client_id, c.secret_hash, c.previous_secret_hash,
	c.previous_secret_expires_at, c.name, c.description, c.client_type, c.is_active,
	c.is_trusted, c.access_token_lifetime, c.refresh_token_lifetime, c.rate_limit_per_minute,
	c.rate_limit_per_hour, c.last_used, c.total_requests, c.contact_email, c.website_url,
	c.allowed_ips, c.webhook_url, c.tokens_revoked_before, c.created_at, c.updated_at`

func scanClient(row pgx.Row) (permiso.ServiceClient, error) {
	var c permiso.ServiceClient
	err := row.Scan(&c.ID, &c.ClientID, &c.SecretHash, &c.PreviousSecretHash,
		&c.PreviousSecretExpiresAt, &c.Name, &c.Description, &c.ClientType, &c.IsActive,
		&c.IsTrusted, &c.AccessTokenLifetime, &c.RefreshTokenLifetime, &c.RateLimitPerMinute,
		&c.RateLimitPerHour, &c.LastUsed, &c.TotalRequests, &c.ContactEmail, &c.WebsiteURL,
		&c.AllowedIPs, &c.WebhookURL, &c.TokensRevokedBefore, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return c, err
	}
	c.PreviousSecretExpiresAt = utcp(c.PreviousSecretExpiresAt)
	c.LastUsed = utcp(c.LastUsed)
	c.TokensRevokedBefore = utcp(c.TokensRevokedBefore)
	c.CreatedAt = utc(c.CreatedAt)
	c.UpdatedAt = utc(c.UpdatedAt)
	return c, nil
}

// normalizeClient fills defaults and normalizes times for storage.
func normalizeClient(c *permiso.ServiceClient) {
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	if c.ClientType == "" {
		c.ClientType = "confidential"
	}
	createdTimes(&c.CreatedAt, &c.UpdatedAt)
	c.PreviousSecretExpiresAt = tsp(c.PreviousSecretExpiresAt)
	c.LastUsed = tsp(c.LastUsed)
	c.TokensRevokedBefore = tsp(c.TokensRevokedBefore)
}

// CreateServiceClient inserts c and links scopeIDs in one transaction;
// unknown scope ids yield ErrNotFound, a taken client_id ErrAlreadyExists.
func (db *DB) CreateServiceClient(ctx context.Context, c permiso.ServiceClient, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	normalizeClient(&c)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO service_clients (id, client_id, secret_hash,
			previous_secret_hash, previous_secret_expires_at, name, description, client_type,
			is_active, is_trusted, access_token_lifetime, refresh_token_lifetime,
			rate_limit_per_minute, rate_limit_per_hour, last_used, total_requests, contact_email,
			website_url, allowed_ips, webhook_url, tokens_revoked_before, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)`,
			c.ID, c.ClientID, c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt, c.Name,
			c.Description, c.ClientType, c.IsActive, c.IsTrusted, c.AccessTokenLifetime,
			c.RefreshTokenLifetime, c.RateLimitPerMinute, c.RateLimitPerHour, c.LastUsed,
			c.TotalRequests, c.ContactEmail, c.WebsiteURL, c.AllowedIPs, c.WebhookURL,
			c.TokensRevokedBefore, c.CreatedAt, c.UpdatedAt)
		if err != nil {
			return mapErr(err, "service client", opWrite)
		}
		return linkClientScopes(ctx, tx, c.ID, scopeIDs)
	})
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	return db.GetServiceClient(ctx, c.ID)
}

func linkClientScopes(ctx context.Context, tx pgx.Tx, id uuid.UUID, scopeIDs []uuid.UUID) error {
	ids := uniqueIDs(scopeIDs)
	if len(ids) == 0 {
		return nil
	}
	if err := checkIDs(ctx, tx, "scopes", "scope", ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO service_client_scopes (service_client_id, scope_id)
		SELECT $1, s FROM unnest($2::uuid[]) AS s`, id, ids)
	return mapErr(err, "service client scope", opWrite)
}

func (db *DB) getClient(ctx context.Context, q querier, cond string, arg any) (permiso.ServiceClient, error) {
	c, err := scanClient(q.QueryRow(ctx, `SELECT `+clientColumns+` FROM service_clients c WHERE `+cond, arg))
	if err != nil {
		return permiso.ServiceClient{}, mapErr(err, "service client", opRead)
	}
	cs := []permiso.ServiceClient{c}
	if err := loadClientScopes(ctx, q, cs); err != nil {
		return permiso.ServiceClient{}, err
	}
	return cs[0], nil
}

// loadClientScopes fills Scopes (ordered by name) of every client in cs.
func loadClientScopes(ctx context.Context, q querier, cs []permiso.ServiceClient) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(cs))
	for i := range cs {
		ids[i] = cs[i].ID
		cs[i].Scopes = []permiso.Scope{}
	}
	rows, err := q.Query(ctx, `SELECT cs.service_client_id, `+scopeColumns+`
		FROM service_client_scopes cs JOIN scopes s ON s.id = cs.scope_id
		WHERE cs.service_client_id = ANY($1) ORDER BY s.name, s.id`, uniqueIDs(ids))
	if err != nil {
		return mapErr(err, "service client scopes", opRead)
	}
	byClient := map[uuid.UUID][]permiso.Scope{}
	var cid uuid.UUID
	var s permiso.Scope
	_, err = pgx.ForEachRow(rows, append([]any{&cid}, scopeDest(&s)...), func() error {
		fixScope(&s)
		byClient[cid] = append(byClient[cid], s)
		return nil
	})
	if err != nil {
		return mapErr(err, "service client scopes", opRead)
	}
	for i := range cs {
		if ss := byClient[cs[i].ID]; ss != nil {
			cs[i].Scopes = append([]permiso.Scope{}, ss...)
		}
	}
	return nil
}

// GetServiceClient returns the client with the given row id and its scopes.
func (db *DB) GetServiceClient(ctx context.Context, id uuid.UUID) (permiso.ServiceClient, error) {
	return db.getClient(ctx, db.q, `c.id = $1`, id)
}

// GetServiceClientByClientID returns the client with the given public
// client_id.
func (db *DB) GetServiceClientByClientID(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	return db.getClient(ctx, db.q, `c.client_id = $1`, clientID)
}

// UpdateServiceClient reads the client FOR UPDATE, applies fn and writes the
// result in one transaction (its scopes stay).
// UpdatedAt is written as fn leaves it (callers set it; a zero value
// becomes the current time).
func (db *DB) UpdateServiceClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error) (permiso.ServiceClient, error) {
	return db.updateClient(ctx, id, fn, nil)
}

// UpdateServiceClientWithScopes is UpdateServiceClient that also replaces
// the client's scopes, in the same transaction.
func (db *DB) UpdateServiceClientWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	if scopeIDs == nil {
		scopeIDs = []uuid.UUID{}
	}
	return db.updateClient(ctx, id, fn, scopeIDs)
}

// updateClient applies fn to the client and, when scopeIDs is not nil,
// replaces its scopes, in one transaction.
func (db *DB) updateClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		c, err := db.getClient(ctx, tx, `c.id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id
		if c.UpdatedAt.IsZero() {
			c.UpdatedAt = time.Now()
		}
		normalizeClient(&c)
		_, err = tx.Exec(ctx, `UPDATE service_clients SET client_id=$2, secret_hash=$3,
			previous_secret_hash=$4, previous_secret_expires_at=$5, name=$6, description=$7,
			client_type=$8, is_active=$9, is_trusted=$10, access_token_lifetime=$11,
			refresh_token_lifetime=$12, rate_limit_per_minute=$13, rate_limit_per_hour=$14,
			last_used=$15, total_requests=$16, contact_email=$17, website_url=$18,
			allowed_ips=$19, webhook_url=$20, updated_at=$21, tokens_revoked_before=$22
			WHERE id=$1`,
			c.ID, c.ClientID, c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt, c.Name,
			c.Description, c.ClientType, c.IsActive, c.IsTrusted, c.AccessTokenLifetime,
			c.RefreshTokenLifetime, c.RateLimitPerMinute, c.RateLimitPerHour, c.LastUsed,
			c.TotalRequests, c.ContactEmail, c.WebsiteURL, c.AllowedIPs, c.WebhookURL, c.UpdatedAt,
			c.TokensRevokedBefore)
		if err != nil || scopeIDs == nil {
			return mapErr(err, "service client", opWrite)
		}
		return replaceClientScopes(ctx, tx, id, scopeIDs)
	})
	if err != nil {
		return permiso.ServiceClient{}, err
	}
	return db.GetServiceClient(ctx, id)
}

// DeleteServiceClient deletes the client; its scope links, sessions and
// refresh tokens cascade.
func (db *DB) DeleteServiceClient(ctx context.Context, id uuid.UUID) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM service_clients WHERE id = $1`, id)
	if err != nil {
		return mapErr(err, "service client", opDelete)
	}
	if tag.RowsAffected() == 0 {
		return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.ClientMessages.NotFound)
	}
	return nil
}

// ListServiceClients returns one page of the clients matching f, ordered by
// created_at, id, and the total number of matches.
func (db *DB) ListServiceClients(ctx context.Context, f permiso.ClientFilter) ([]permiso.ServiceClient, int, error) {
	var w where
	if s := strings.TrimSpace(f.Search); s != "" {
		w.add(`(strpos(lower(c.name), lower(?1)) > 0 OR strpos(lower(c.client_id), lower(?1)) > 0
			OR strpos(lower(coalesce(c.description, '')), lower(?1)) > 0)`, s)
	}
	if f.IsActive != nil {
		w.add(`c.is_active = ?`, *f.IsActive)
	}
	if f.IsTrusted != nil {
		w.add(`c.is_trusted = ?`, *f.IsTrusted)
	}
	if f.ClientType != "" {
		w.add(`c.client_type = ?`, f.ClientType)
	}
	if f.ScopeID != nil {
		w.add(`EXISTS (SELECT 1 FROM service_client_scopes cs WHERE cs.service_client_id = c.id AND cs.scope_id = ?)`, *f.ScopeID)
	}
	var total int
	if err := db.q.QueryRow(ctx, `SELECT count(*) FROM service_clients c`+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err, "service clients", opRead)
	}
	lim, args := page(f.Offset, f.Limit, w.args)
	rows, err := db.q.Query(ctx, `SELECT `+clientColumns+` FROM service_clients c`+w.sql()+
		` ORDER BY c.created_at, c.id`+lim, args...)
	if err != nil {
		return nil, 0, mapErr(err, "service clients", opRead)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.ServiceClient, error) { return scanClient(r) })
	if err != nil {
		return nil, 0, mapErr(err, "service clients", opRead)
	}
	if err := loadClientScopes(ctx, db.q, cs); err != nil {
		return nil, 0, err
	}
	return cs, total, nil
}

// SetServiceClientScopes replaces the client's scopes in one transaction;
// an unknown client or scope id yields ErrNotFound and nothing changes.
func (db *DB) SetServiceClientScopes(ctx context.Context, id uuid.UUID, scopeIDs []uuid.UUID) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockRow(ctx, tx, "service_clients", "service client", id); err != nil {
			return err
		}
		return replaceClientScopes(ctx, tx, id, scopeIDs)
	})
}

// replaceClientScopes replaces the scopes of the client (locked by the
// caller) inside a transaction.
func replaceClientScopes(ctx context.Context, tx pgx.Tx, id uuid.UUID, scopeIDs []uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM service_client_scopes WHERE service_client_id = $1`, id); err != nil {
		return mapErr(err, "service client scopes", opWrite)
	}
	return linkClientScopes(ctx, tx, id, scopeIDs)
}

// AddClientUsage adds batched request counts and moves last_used forward
// (never backward) for each client row id, in one transaction; unknown ids
// are skipped. Rows are updated in id order so that concurrent batches
// cannot deadlock.
func (db *DB) AddClientUsage(ctx context.Context, usage map[uuid.UUID]permiso.ClientUsage) error {
	if len(usage) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return db.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, id := range ids {
			u := usage[id]
			var last *time.Time
			if !u.LastUsed.IsZero() {
				v := ts(u.LastUsed)
				last = &v
			}
			b.Queue(`UPDATE service_clients SET total_requests = total_requests + $2,
				last_used = CASE WHEN $3::timestamptz IS NULL THEN last_used
					ELSE GREATEST(last_used, $3::timestamptz) END
				WHERE id = $1`, id, u.Requests, last)
		}
		return mapErr(tx.SendBatch(ctx, b).Close(), "service client usage", opWrite)
	})
}
