package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Rows of the original service's tables, as read: text exactly as stored
// (it may break permiso's rules; NewPlan judges it), times in UTC.

// Scope is a row of the original's scopes table.
type Scope struct {
	ID                   uuid.UUID
	Name                 string
	Description          *string
	Resource             *string
	CreatedAt, UpdatedAt time.Time
}

// Role is a row of the original's roles table.
type Role struct {
	ID                   uuid.UUID
	Name                 string
	Description          *string
	CreatedAt, UpdatedAt time.Time
}

// User is a row of the original's users table (the columns permiso
// carries over, and whether a reset or verification token was pending).
type User struct {
	ID                                uuid.UUID
	Username, Email, PasswordHash     string
	FirstName, LastName, DisplayName  *string
	Bio                               *string
	IsActive, IsVerified, IsSuperuser bool
	LastLogin                         *time.Time
	PasswordChangedAt                 time.Time
	CreatedAt, UpdatedAt              time.Time
	// PendingReset and PendingVerification: a mailed token was
	// outstanding (not carried over: it must be requested again).
	PendingReset, PendingVerification bool
}

// Client is a row of the original's service_clients table.
type Client struct {
	ID                                   uuid.UUID
	ClientID, SecretHash, Name           string
	Description                          *string
	ClientType                           string
	IsActive, IsTrusted                  bool
	AccessTokenLifetime                  int
	RefreshTokenLifetime                 *int
	RateLimitPerMinute, RateLimitPerHour int
	LastUsed                             *time.Time
	TotalRequests                        int64
	ContactEmail, WebsiteURL, AllowedIPs *string
	WebhookURL                           *string
	CreatedAt, UpdatedAt                 time.Time
}

// Link is a row of an association table: From is the user, role or
// service client, To the role or scope.
type Link struct{ From, To uuid.UUID }

// Original is everything permiso import reads from the original database,
// in one consistent snapshot.
type Original struct {
	Scopes       []Scope
	Roles        []Role
	Users        []User
	Clients      []Client
	RoleScopes   []Link // role_scopes: role -> scope
	UserRoles    []Link // user_roles: user -> role
	ClientScopes []Link // service_client_scopes: client -> scope
	// Not carried over, only counted: refresh_tokens and user_sessions
	// rows (users log in again).
	RefreshTokens, Sessions int
}

// NormalizeURL turns the original's DATABASE_URL into one pgx accepts: the
// SQLAlchemy driver suffix of postgresql+asyncpg:// is dropped. Only
// PostgreSQL URLs are accepted (the original ran on PostgreSQL).
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errors.New("not a URL (value not shown)")
	}
	scheme, _, _ := strings.Cut(u.Scheme, "+")
	if scheme != "postgresql" && scheme != "postgres" {
		return "", fmt.Errorf("the original service ran on PostgreSQL: want a postgresql:// URL, not %q", u.Scheme+"://")
	}
	u.Scheme = scheme
	return u.String(), nil
}

// Read connects to the original database at rawURL and reads it in one
// read-only, repeatable-read transaction. progress (nil: none) gets one
// line per table.
func Read(ctx context.Context, rawURL string, progress io.Writer) (*Original, error) {
	dsn, err := NormalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the original database: %w", redact(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read the original database: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	o := &Original{}
	say := func(table string, n int) {
		if progress != nil {
			fmt.Fprintf(progress, "permiso import: read %d rows of %s\n", n, table)
		}
	}
	steps := []struct {
		table string
		read  func() (int, error)
	}{
		{"scopes", func() (int, error) { return readScopes(ctx, tx, o) }},
		{"roles", func() (int, error) { return readRoles(ctx, tx, o) }},
		{"role_scopes", func() (int, error) {
			return readLinks(ctx, tx, &o.RoleScopes, `SELECT role_id, scope_id FROM role_scopes ORDER BY role_id, scope_id`)
		}},
		{"users", func() (int, error) { return readUsers(ctx, tx, o) }},
		{"user_roles", func() (int, error) {
			return readLinks(ctx, tx, &o.UserRoles, `SELECT user_id, role_id FROM user_roles ORDER BY user_id, role_id`)
		}},
		{"service_clients", func() (int, error) { return readClients(ctx, tx, o) }},
		{"service_client_scopes", func() (int, error) {
			return readLinks(ctx, tx, &o.ClientScopes, `SELECT service_client_id, scope_id FROM service_client_scopes ORDER BY service_client_id, scope_id`)
		}},
	}
	for _, st := range steps {
		n, err := st.read()
		if err != nil {
			return nil, tableErr(st.table, err)
		}
		say(st.table, n)
	}
	// Counted only; a database without these tables has none.
	for _, c := range []struct {
		table string
		n     *int
	}{{"refresh_tokens", &o.RefreshTokens}, {"user_sessions", &o.Sessions}} {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, c.table).Scan(&exists); err != nil {
			return nil, tableErr(c.table, err)
		}
		if !exists {
			continue
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+c.table).Scan(c.n); err != nil {
			return nil, tableErr(c.table, err)
		}
	}
	return o, nil
}

// tableErr explains a failed read of one table; a missing table means the
// database is not the original service's.
func tableErr(table string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42703") {
		return fmt.Errorf("the database given with --from is not the original service's: table %s: %s (docs/migrating.md lists the schema it reads)", table, pgErr.Message)
	}
	return fmt.Errorf("read table %s of the original database: %w", table, err)
}

// redact drops the connection string from a connection error, which may
// carry the password.
func redact(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

func utc(t time.Time) time.Time { return t.UTC() }

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func readScopes(ctx context.Context, tx pgx.Tx, o *Original) (int, error) {
	return readRows(ctx, tx, &o.Scopes, `SELECT id, name, description, resource, created_at, updated_at
		FROM scopes ORDER BY created_at, id`, func(r pgx.CollectableRow, s *Scope) error {
		err := r.Scan(&s.ID, &s.Name, &s.Description, &s.Resource, &s.CreatedAt, &s.UpdatedAt)
		s.CreatedAt, s.UpdatedAt = utc(s.CreatedAt), utc(s.UpdatedAt)
		return err
	})
}

func readRoles(ctx context.Context, tx pgx.Tx, o *Original) (int, error) {
	return readRows(ctx, tx, &o.Roles, `SELECT id, name, description, created_at, updated_at
		FROM roles ORDER BY created_at, id`, func(r pgx.CollectableRow, x *Role) error {
		err := r.Scan(&x.ID, &x.Name, &x.Description, &x.CreatedAt, &x.UpdatedAt)
		x.CreatedAt, x.UpdatedAt = utc(x.CreatedAt), utc(x.UpdatedAt)
		return err
	})
}

func readUsers(ctx context.Context, tx pgx.Tx, o *Original) (int, error) {
	return readRows(ctx, tx, &o.Users, `SELECT id, username, email, password_hash, first_name, last_name,
		display_name, bio, is_active, is_verified, is_superuser, last_login, password_changed_at,
		created_at, updated_at, password_reset_token IS NOT NULL, email_verification_token IS NOT NULL
		FROM users ORDER BY created_at, id`, func(r pgx.CollectableRow, u *User) error {
		err := r.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.FirstName, &u.LastName,
			&u.DisplayName, &u.Bio, &u.IsActive, &u.IsVerified, &u.IsSuperuser, &u.LastLogin,
			&u.PasswordChangedAt, &u.CreatedAt, &u.UpdatedAt, &u.PendingReset, &u.PendingVerification)
		u.LastLogin = utcp(u.LastLogin)
		u.PasswordChangedAt, u.CreatedAt, u.UpdatedAt = utc(u.PasswordChangedAt), utc(u.CreatedAt), utc(u.UpdatedAt)
		return err
	})
}

func readClients(ctx context.Context, tx pgx.Tx, o *Original) (int, error) {
	return readRows(ctx, tx, &o.Clients, `SELECT id, client_id, client_secret_hash, name, description, client_type,
		is_active, is_trusted, access_token_lifetime, refresh_token_lifetime, rate_limit_per_minute,
		rate_limit_per_hour, last_used, total_requests, contact_email, website_url, allowed_ips,
		webhook_url, created_at, updated_at
		FROM service_clients ORDER BY created_at, id`, func(r pgx.CollectableRow, c *Client) error {
		err := r.Scan(&c.ID, &c.ClientID, &c.SecretHash, &c.Name, &c.Description, &c.ClientType,
			&c.IsActive, &c.IsTrusted, &c.AccessTokenLifetime, &c.RefreshTokenLifetime, &c.RateLimitPerMinute,
			&c.RateLimitPerHour, &c.LastUsed, &c.TotalRequests, &c.ContactEmail, &c.WebsiteURL, &c.AllowedIPs,
			&c.WebhookURL, &c.CreatedAt, &c.UpdatedAt)
		c.LastUsed = utcp(c.LastUsed)
		c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
		return err
	})
}

func readLinks(ctx context.Context, tx pgx.Tx, dst *[]Link, query string) (int, error) {
	return readRows(ctx, tx, dst, query, func(r pgx.CollectableRow, l *Link) error { return r.Scan(&l.From, &l.To) })
}

// readRows runs query and collects its rows into *dst, each read by scan
// into a zero T; it returns how many it read.
func readRows[T any](ctx context.Context, tx pgx.Tx, dst *[]T, query string, scan func(r pgx.CollectableRow, x *T) error) (int, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return 0, err
	}
	*dst, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var x T
		err := scan(r, &x)
		return x, err
	})
	return len(*dst), err
}
