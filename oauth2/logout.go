package oauth2

import (
	"context"
	"errors"
	"net/url"
	"slices"

	"github.com/permiso/permiso"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3):
// docs/oidc.md.

// LogoutRequest is a validated end-session request.
type LogoutRequest struct {
	// Client is the client the request names (client_id, or the audience
	// of id_token_hint); nil when neither names one.
	Client *permiso.ServiceClient
	// PostLogoutRedirectURI is registered for Client (exact match); ""
	// when none was asked for.
	PostLogoutRedirectURI string
	State                 string
	// Hint is the verified id_token_hint, when one was sent.
	Hint *permiso.IDTokenHint
	// Params are the request's parameters, for the confirmation form.
	Params url.Values
}

// logoutParams are the parameters the confirmation form carries.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}

// ParseLogoutRequest validates an end-session request. Every error is an
// *AuthorizeError for the error page: a post_logout_redirect_uri is only
// ever followed when it is registered for the client that the request
// names (RP-Initiated Logout 1.0 §3), so nothing here redirects.
func (s *Service) ParseLogoutRequest(ctx context.Context, q url.Values) (LogoutRequest, error) {
	page := func(desc string) error {
		return &AuthorizeError{Err: ErrInvalidRequest.WithDescription(desc)}
	}
	if !s.OIDCEnabled() {
		return LogoutRequest{}, &AuthorizeError{Err: ErrTemporarilyUnavailable.WithDescription("The OpenID Connect provider is not configured")}
	}
	r := LogoutRequest{Params: url.Values{}}
	for _, name := range logoutParams {
		if len(q[name]) > 1 {
			return r, page("Repeated parameter: " + name)
		}
		if v := q.Get(name); v != "" {
			r.Params.Set(name, v)
		}
	}
	r.State = q.Get("state")
	if len(r.State) > MaxStateLength {
		return r, page("Parameter too long: state")
	}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		h, err := s.deps.IDTokens.VerifyIDTokenHint(ctx, hint)
		if err != nil {
			return r, page("The id_token_hint is not an ID token of this provider")
		}
		switch {
		case clientID == "" && len(h.Audience) == 1:
			clientID = h.Audience[0]
		case clientID != "" && !slices.Contains(h.Audience, clientID):
			return r, page("The id_token_hint was not issued to this client")
		}
		r.Hint = &h
	}
	if clientID != "" {
		if len(clientID) > MaxClientIDLength || !permiso.ValidIdentifier(clientID) {
			return r, page("Unknown client")
		}
		c, err := s.deps.Clients.GetServiceClientByClientID(ctx, clientID)
		switch {
		case errors.Is(err, permiso.ErrNotFound):
			return r, page("Unknown client")
		case err != nil:
			return r, &AuthorizeError{Err: s.oauthError(ctx, err, metaFrom(ctx))}
		}
		r.Client = &c
	}
	if uri := q.Get("post_logout_redirect_uri"); uri != "" {
		if r.Client == nil {
			return r, page("post_logout_redirect_uri needs client_id or id_token_hint")
		}
		if !r.Client.HasPostLogoutRedirectURI(uri) {
			return r, page("The post_logout_redirect_uri is not registered for this client")
		}
		r.PostLogoutRedirectURI = uri
	}
	return r, nil
}

// LogoutRedirect is where the browser goes after signing out: the
// registered post_logout_redirect_uri with state, or "" for the signed-out
// page.
func (s *Service) LogoutRedirect(r LogoutRequest) string {
	if r.PostLogoutRedirectURI == "" {
		return ""
	}
	u, err := url.Parse(r.PostLogoutRedirectURI)
	if err != nil {
		return ""
	}
	if r.State != "" {
		q := u.Query()
		q.Set("state", r.State)
		u.RawQuery = q.Encode()
	}
	return u.String()
}
