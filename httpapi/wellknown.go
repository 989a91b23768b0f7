package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/permiso/permiso/oauth2"
)

// metadata is the authorization server metadata (RFC 8414 §2), served at
// both discovery paths.
type metadata struct {
	Issuer                                 string   `json:"issuer"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	JWKSURI                                string   `json:"jwks_uri"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods          []string `json:"revocation_endpoint_auth_methods_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgValuesSupported   []string `json:"access_token_signing_alg_values_supported"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	ServiceDocumentation                   string   `json:"service_documentation,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// handleMetadata serves the RFC 8414 metadata document. permiso has no
// authorization endpoint, so response_types_supported is empty; the signing
// algorithms are listed under id_token_signing_alg_values_supported too,
// because OpenID discovery clients (go-oidc, openid-client) read the
// algorithms of JWTs from there, although permiso issues no ID tokens.
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
	m := metadata{
		Issuer:                                 base,
		TokenEndpoint:                          base + api + pathToken,
		JWKSURI:                                base + pathJWKS,
		IntrospectionEndpoint:                  base + api + pathIntrospect,
		RevocationEndpoint:                     base + api + pathRevoke,
		ScopesSupported:                        scopes,
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    []string{oauth2.GrantPassword, oauth2.GrantRefreshToken, oauth2.GrantClientCredentials},
		TokenEndpointAuthMethodsSupported:      authMethods,
		IntrospectionEndpointAuthMethods:       authMethods,
		RevocationEndpointAuthMethods:          authMethods,
		IDTokenSigningAlgValuesSupported:       algs,
		AccessTokenSigningAlgValuesSupported:   algs,
		SubjectTypesSupported:                  []string{"public"},
		AuthorizationResponseIssParamSupported: false,
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
