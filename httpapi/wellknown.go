package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// metadata is the authorization server metadata (RFC 8414 §2), served at
// both discovery paths.
type metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	UserinfoEndpoint                       string   `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint                     string   `json:"end_session_endpoint,omitempty"`
	JWKSURI                                string   `json:"jwks_uri"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods          []string `json:"revocation_endpoint_auth_methods_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgValuesSupported   []string `json:"access_token_signing_alg_values_supported"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	ClaimsSupported                        []string `json:"claims_supported,omitempty"`
	ACRValuesSupported                     []string `json:"acr_values_supported,omitempty"`
	ClaimsParameterSupported               bool     `json:"claims_parameter_supported"`
	RequestParameterSupported              bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported           bool     `json:"request_uri_parameter_supported"`
	ServiceDocumentation                   string   `json:"service_documentation,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// handleMetadata serves the RFC 8414 metadata document, which is also the
// OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3) when the
// browser flow is wired: authorization and userinfo endpoints,
// response_types_supported ["code"], PKCE S256, the ID-token algorithm
// and the claims the scopes release (docs/oidc.md). Without it
// response_types_supported is empty and the access-token algorithms are
// listed as ID-token algorithms, as before.
func (s *server) handleMetadata() http.Handler {
	var (
		once sync.Once
		doc  metadata
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { doc = s.metadata() })
		w.Header().Set("Cache-Control", "public, max-age=3600")
		writeJSON(w, http.StatusOK, doc)
	})
}

func (s *server) metadata() metadata {
	base := strings.TrimSuffix(s.opts.Issuer, "/")
	api := strings.TrimSuffix(s.opts.APIV1Prefix, "/")
	authMethods := []string{string(oauth2.ClientAuthBasic), string(oauth2.ClientAuthPost)}
	algs := []string{}
	if s.keys != nil {
		algs = s.keys.Algorithms()
	}
	scopes := s.opts.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	grants := []string{oauth2.GrantPassword, oauth2.GrantRefreshToken, oauth2.GrantClientCredentials, oauth2.GrantMFA}
	m := metadata{
		Issuer:                                 base,
		TokenEndpoint:                          base + api + pathToken,
		JWKSURI:                                base + pathJWKS,
		IntrospectionEndpoint:                  base + api + pathIntrospect,
		RevocationEndpoint:                     base + api + pathRevoke,
		ScopesSupported:                        scopes,
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    grants,
		TokenEndpointAuthMethodsSupported:      authMethods,
		IntrospectionEndpointAuthMethods:       authMethods,
		RevocationEndpointAuthMethods:          authMethods,
		IDTokenSigningAlgValuesSupported:       algs,
		AccessTokenSigningAlgValuesSupported:   algs,
		SubjectTypesSupported:                  []string{"public"},
		AuthorizationResponseIssParamSupported: false,
	}
	if s.auth != nil && s.auth.OIDCEnabled() {
		m.AuthorizationEndpoint = base + api + pathAuthorize
		m.UserinfoEndpoint = base + api + pathUserinfo
		m.EndSessionEndpoint = base + api + pathEndSession
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
		m.GrantTypesSupported = append([]string{oauth2.GrantAuthorizationCode}, grants...)
		m.TokenEndpointAuthMethodsSupported = append(slices.Clone(authMethods), string(oauth2.ClientAuthNone))
		m.CodeChallengeMethodsSupported = []string{"S256"}
		m.IDTokenSigningAlgValuesSupported = []string{s.auth.IDTokenAlgorithm()}
		m.ScopesSupported = permiso.SortedUnique(append(slices.Clone(scopes), oauth2.OIDCScopes...))
		m.ClaimsSupported = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "at_hash", "sid",
			"name", "given_name", "family_name", "preferred_username", "updated_at", "email", "email_verified"}
		m.ACRValuesSupported = oauth2.ACRValuesSupported
		m.AuthorizationResponseIssParamSupported = true
	}
	if s.opts.DocsURL != "" {
		m.ServiceDocumentation = base + s.opts.DocsURL
	}
	return m
}

// handleJWKS serves the public signing keys (RFC 7517 §5); an empty set
// for HS* algorithms, whose key is a shared secret.
func (s *server) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := []byte(`{"keys":[]}`)
		if s.keys != nil {
			body = s.keys.JWKS()
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		// Short: after a rotation, verifiers must see the new key soon.
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}
