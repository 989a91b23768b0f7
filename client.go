package permiso

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ServiceClient is a machine client that obtains tokens with the
// client_credentials grant (RFC 6749 §4.4).
type ServiceClient struct {
	ID       uuid.UUID
	ClientID string // public identifier, unique
	// SecretHash is a fast hash (SHA-256, hex) of the server-generated,
	// high-entropy secret; compared in constant time.
	SecretHash string
	// PreviousSecretHash still authenticates until PreviousSecretExpiresAt
	// (an overlap requested at rotation).
	PreviousSecretHash      *string
	PreviousSecretExpiresAt *time.Time
	Name                    string
	Description             *string
	ClientType              string // "confidential" or "public"
	IsActive                bool
	IsTrusted               bool
	AccessTokenLifetime     int  // seconds; 0 = SERVICE_TOKEN_EXPIRE_MINUTES
	RefreshTokenLifetime    *int // seconds
	RateLimitPerMinute      int
	RateLimitPerHour        int
	LastUsed                *time.Time
	TotalRequests           int64
	ContactEmail            *string
	WebsiteURL              *string
	AllowedIPs              *string // comma-separated IPs and CIDRs
	WebhookURL              *string
	// TokensRevokedBefore invalidates every token issued before it through
	// the client: its service tokens, the access tokens of users who
	// logged in through it and their refresh tokens. It is moved forward
	// when the client is disabled and by a client-wide or global revoke-all
	// (oauth2.Service.RevokeAllForClient), and never moved back, so
	// enabling the client again revives nothing.
	TokensRevokedBefore *time.Time
	// RedirectURIs are the registered redirection endpoints of a client of
	// the authorization code flow (RFC 6749 §3.1.2; oidc.go), compared by
	// exact string match. PostLogoutRedirectURIs are where RP-initiated
	// logout may return to. GrantTypes lists the grants the client may use
	// beyond the ones every client has (client_credentials for
	// confidential clients, password and refresh_token):
	// "authorization_code" enables the browser flow. TokenEndpointAuthMethod
	// is the RFC 7591 §2 name: client_secret_basic, client_secret_post, or
	// none for public clients (empty: client_secret_basic).
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	TokenEndpointAuthMethod string
	CreatedAt               time.Time
	UpdatedAt               time.Time

	// Scopes is filled by the stores, ordered by name.
	Scopes []Scope
}

// PreviousSecretActive reports whether the secret replaced by the last
// rotation still authenticates at now (an overlap asked for at rotation).
func (c ServiceClient) PreviousSecretActive(now time.Time) bool {
	return c.PreviousSecretHash != nil && c.PreviousSecretExpiresAt != nil && now.Before(*c.PreviousSecretExpiresAt)
}

// RevokeTokensBefore moves TokensRevokedBefore forward to cutoff (a
// RevocationCutoff); an earlier cutoff leaves it where it is.
func (c *ServiceClient) RevokeTokensBefore(cutoff time.Time) {
	if c.TokensRevokedBefore == nil || c.TokensRevokedBefore.Before(cutoff) {
		t := cutoff.UTC()
		c.TokensRevokedBefore = &t
	}
}

// IssuedTokenDead reports whether a token issued through the client at
// issuedAt (TokenIssuedAt for access tokens, the stored issue time for
// refresh tokens) no longer counts: it was issued before the client was
// created (a client deleted and created again under the same client_id
// does not inherit the old client's tokens) or before
// TokensRevokedBefore. Whether the client is active is the caller's
// other check. Issue times of access tokens are known to the millisecond
// (TokenIssuedAt), so a token of the client's creation millisecond counts
// as issued after the creation: a client used at once is not refused.
func (c ServiceClient) IssuedTokenDead(issuedAt time.Time) bool {
	return issuedAt.Before(c.IssuedTokensLiveSince())
}

// IssuedTokensLiveSince is the earliest issue time of a token of the
// client that still counts (IssuedTokenDead): the client's creation, to
// the millisecond, or its TokensRevokedBefore when that is later.
func (c ServiceClient) IssuedTokensLiveSince() time.Time {
	since := c.CreatedAt.Truncate(time.Millisecond)
	if c.TokensRevokedBefore != nil && c.TokensRevokedBefore.After(since) {
		since = *c.TokensRevokedBefore
	}
	return since
}

// ScopeNames returns the sorted names of the client's scopes.
func (c ServiceClient) ScopeNames() []string {
	names := make([]string, 0, len(c.Scopes))
	for _, s := range c.Scopes {
		names = append(names, s.Name)
	}
	return SortedUnique(names)
}

// ClientFilter selects and pages service clients, ordered by created_at, id.
type ClientFilter struct {
	Search     string
	IsActive   *bool
	IsTrusted  *bool
	ClientType string
	ScopeID    *uuid.UUID
	Offset     int
	Limit      int
}

// ClientUsage is a batch of usage to add to a client's counters.
type ClientUsage struct {
	Requests int64
	LastUsed time.Time
}

// ClientStore persists service clients and their scopes.
type ClientStore interface {
	// CreateServiceClient inserts c and links scopeIDs in one transaction;
	// unknown scope ids yield ErrNotFound, a taken client_id ErrAlreadyExists.
	CreateServiceClient(ctx context.Context, c ServiceClient, scopeIDs []uuid.UUID) (ServiceClient, error)
	GetServiceClient(ctx context.Context, id uuid.UUID) (ServiceClient, error)
	GetServiceClientByClientID(ctx context.Context, clientID string) (ServiceClient, error)
	UpdateServiceClient(ctx context.Context, id uuid.UUID, fn func(*ServiceClient) error) (ServiceClient, error)
	DeleteServiceClient(ctx context.Context, id uuid.UUID) error
	ListServiceClients(ctx context.Context, f ClientFilter) ([]ServiceClient, int, error)
	SetServiceClientScopes(ctx context.Context, id uuid.UUID, scopeIDs []uuid.UUID) error
	// UpdateServiceClientWithScopes is UpdateServiceClient that also
	// replaces the client's scopes with scopeIDs (nil: none), in the same
	// transaction: an unknown client or scope id yields ErrNotFound and
	// nothing is written.
	UpdateServiceClientWithScopes(ctx context.Context, id uuid.UUID, fn func(*ServiceClient) error, scopeIDs []uuid.UUID) (ServiceClient, error)
	// AddClientUsage adds batched request counts and moves last_used forward
	// (never backward) for each client id (the row UUID); unknown ids are
	// skipped.
	AddClientUsage(ctx context.Context, usage map[uuid.UUID]ClientUsage) error
}

// NewClientSecret returns a new service-client secret (256 random bits,
// base64url) and the hash to store (hex SHA-256). The secret is shown to
// the administrator once and never stored.
func NewClientSecret() (secret, hash string) {
	secret = NewOpaqueToken()
	return secret, HashToken(secret)
}

// ParseAllowedIPs parses a client's allowed_ips: a comma-separated list of
// IP addresses and CIDR prefixes ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32").
// Spaces around entries and empty entries are ignored. Addresses become
// single-address prefixes; IPv4-mapped IPv6 addresses are unmapped; zones
// are refused. Prefixes are masked ("10.1.2.3/8" is 10.0.0.0/8). An
// unparsable entry is an error naming it; at request time such a list
// allows no address at all (fail closed).
func ParseAllowedIPs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "%") {
			return nil, fmt.Errorf("allowed_ips: %q: zones are not allowed", entry)
		}
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("allowed_ips: %q is not an IP address or CIDR prefix", entry)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("allowed_ips: %q is not an IP address or CIDR prefix", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
