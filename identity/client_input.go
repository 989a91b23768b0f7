package identity

import (
	"errors"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Ranges of a service client's fields (the original service's
// ServiceClientCreate model, docs/api.md).
const (
	ClientNameMin, ClientNameMax           = 2, 100
	ClientDescriptionMax                   = 1000
	ClientURLMax                           = 500
	ClientEmailMax                         = 255
	ClientIDMax                            = 100
	ClientLifetimeMin, ClientLifetimeMax   = 300, 86400
	ClientRefreshMin, ClientRefreshMax     = 3600, 365 * 86400
	ClientPerMinuteMin, ClientPerMinuteMax = 1, 1000
	ClientPerHourMin, ClientPerHourMax     = 60, 100000
	ClientAllowedIPsMax                    = 4000
	// MaxSecretOverlap bounds how long a rotated secret may keep working
	// (RotateClientSecret), in seconds.
	MaxSecretOverlap = 7 * 24 * 3600
	// Defaults of a new client.
	defaultPerMinute, defaultPerHour = 60, 1000
)

var clientIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ClientInput is a service client as a create (every field) or an update
// (every field but client_id, client_secret and client_type, which an
// update ignores) sends it; its JSON form is the body of
// POST /service-clients and PUT /service-clients/{client_id}. Pointers
// tell "absent or null" (unchanged, or the default) from a value; an
// empty string clears an optional text field.
type ClientInput struct {
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
	// The browser flow's client metadata (RFC 7591 §2, docs/oidc.md).
	RedirectURIs            *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs  *[]string `json:"post_logout_redirect_uris"`
	GrantTypes              *[]string `json:"grant_types"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method"`
}

// Grant types a client may register (grant_types): the authorization code
// flow and the refresh tokens it may come with; client_credentials is
// accepted for completeness (every confidential client has it).
var registrableGrants = []string{permiso.GrantTypeAuthorizationCode, "refresh_token", "client_credentials"}

// Validate checks every field present and reports every problem at once
// (422 validation_error naming each field); it normalizes the fields in
// place (text trimmed, allowed_ips in canonical form) and returns the
// parsed scope ids (nil when scope_ids is absent). create says whether the
// input creates a client: then name is required, and client_id,
// client_type and client_secret are checked (a secret is never accepted:
// the server generates it).
func (in *ClientInput) Validate(create bool) ([]uuid.UUID, error) {
	var errs problems
	add := func(field, msg string) { errs = append(errs, permiso.FieldError{Field: field, Message: msg}) }
	// Stored text is valid UTF-8 without NUL or other control characters
	// than tab, line feed and carriage return (permiso.ValidText,
	// docs/security-model.md "Untrusted bytes").
	storable := func(field, v string) {
		if !permiso.ValidText(v) {
			add(field, "must be valid UTF-8 without NUL or control characters")
		}
	}
	text := func(field string, p **string, max int) {
		if *p == nil {
			return
		}
		v := strings.TrimSpace(**p)
		if utf8.RuneCountInString(v) > max {
			add(field, "must be at most "+strconv.Itoa(max)+" characters")
		}
		storable(field, v)
		*p = &v
	}
	if in.Name == nil {
		if create {
			add("name", "is required")
		}
	} else {
		v := strings.TrimSpace(*in.Name)
		if n := utf8.RuneCountInString(v); n < ClientNameMin || n > ClientNameMax {
			add("name", "must be between 2 and 100 characters")
		}
		storable("name", v)
		in.Name = &v
	}
	text("description", &in.Description, ClientDescriptionMax)
	text("website_url", &in.WebsiteURL, ClientURLMax)
	text("webhook_url", &in.WebhookURL, ClientURLMax)
	text("contact_email", &in.ContactEmail, ClientEmailMax)
	for _, f := range []struct {
		name string
		v    *string
	}{{"website_url", in.WebsiteURL}, {"webhook_url", in.WebhookURL}} {
		if f.v != nil && *f.v != "" {
			if u, err := url.Parse(*f.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(f.name, "must be an http or https URL")
			}
		}
	}
	if in.ContactEmail != nil && *in.ContactEmail != "" {
		if a, err := mail.ParseAddress(*in.ContactEmail); err != nil || a.Address != *in.ContactEmail {
			add("contact_email", "must be an email address")
		}
	}
	if create {
		if in.ClientType != nil && *in.ClientType != "confidential" && *in.ClientType != "public" {
			add("client_type", "Client type must be one of: confidential, public")
		}
		if in.ClientID != nil {
			v := strings.TrimSpace(*in.ClientID)
			if v == "" || len(v) > ClientIDMax || !clientIDPattern.MatchString(v) {
				add("client_id", "must be 1 to 100 characters of letters, digits, '_' and '-'")
			}
			in.ClientID = &v
		}
		if in.ClientSecret != nil {
			add("client_secret", "client secrets are generated by the server and returned once")
		}
	}
	rng := func(field string, p *int, lo, hi int) {
		if p != nil && (*p < lo || *p > hi) {
			add(field, "must be between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
		}
	}
	rng("access_token_lifetime", in.AccessTokenLifetime, ClientLifetimeMin, ClientLifetimeMax)
	rng("refresh_token_lifetime", in.RefreshTokenLifetime, ClientRefreshMin, ClientRefreshMax)
	rng("rate_limit_per_minute", in.RateLimitPerMinute, ClientPerMinuteMin, ClientPerMinuteMax)
	rng("rate_limit_per_hour", in.RateLimitPerHour, ClientPerHourMin, ClientPerHourMax)
	if in.AllowedIPs != nil {
		v, err := normalizeAllowedIPs(*in.AllowedIPs)
		if err != nil {
			add("allowed_ips", err.Error())
		}
		in.AllowedIPs = &v
	}
	uris := func(field string, p *[]string) {
		if p == nil {
			return
		}
		if len(*p) > permiso.MaxRedirectURIs {
			add(field, "must have at most "+strconv.Itoa(permiso.MaxRedirectURIs)+" entries")
			return
		}
		seen := map[string]bool{}
		for _, u := range *p {
			if problem := permiso.RedirectURIProblem(u); problem != "" {
				add(field, problem)
				return
			}
			if seen[u] {
				add(field, "must not repeat an entry")
				return
			}
			seen[u] = true
		}
	}
	uris("redirect_uris", in.RedirectURIs)
	uris("post_logout_redirect_uris", in.PostLogoutRedirectURIs)
	if in.GrantTypes != nil {
		for _, g := range *in.GrantTypes {
			if !slices.Contains(registrableGrants, g) {
				add("grant_types", "must be among authorization_code, refresh_token, client_credentials")
				break
			}
		}
		*in.GrantTypes = permiso.SortedUnique(*in.GrantTypes)
	}
	if in.TokenEndpointAuthMethod != nil {
		switch *in.TokenEndpointAuthMethod {
		case permiso.AuthMethodSecretBasic, permiso.AuthMethodSecretPost, permiso.AuthMethodNone:
		default:
			add("token_endpoint_auth_method", "must be client_secret_basic, client_secret_post or none")
		}
	}
	var ids []uuid.UUID
	if in.ScopeIDs != nil {
		ids = make([]uuid.UUID, 0, len(*in.ScopeIDs))
		for _, raw := range *in.ScopeIDs {
			id, err := uuid.Parse(raw)
			if err != nil {
				add("scope_ids", "every scope id must be a UUID")
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
	if len(s) > ClientAllowedIPsMax {
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
