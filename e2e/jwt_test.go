package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestDiscovery: RFC 8414 metadata at both well-known paths. Without a URL
// issuer the metadata uses PUBLIC_URL (default http://HOST:PORT).
func TestDiscovery(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	cases := []struct {
		name       string
		env        map[string]string
		wantIssuer func(s *Server) string
		wantBase   func(s *Server) string // base of the endpoint URLs; "" = not checked
	}{
		{"default", nil, func(s *Server) string { return s.URL }, func(s *Server) string { return s.URL }},
		{"PUBLIC_URL", map[string]string{"PUBLIC_URL": "https://public.e2e.example/auth"},
			func(*Server) string { return "https://public.e2e.example/auth" },
			func(*Server) string { return "https://public.e2e.example/auth" }},
		{"URL issuer", map[string]string{"JWT_ISSUER": "https://issuer.e2e.example"},
			func(*Server) string { return "https://issuer.e2e.example" }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, b.env(t, c.env))
			requireRoute(t, s, http.MethodGet, pathASMeta)
			requireRoute(t, s, http.MethodGet, pathOIDCMeta)
			var docs []map[string]any
			for _, path := range []string{pathASMeta, pathOIDCMeta} {
				r := s.get(t, path, "")
				mustStatus(t, r, http.StatusOK)
				m := r.JSON(t)
				docs = append(docs, m)
				if got := strings.TrimSuffix(strOf(m["issuer"]), "/"); got != c.wantIssuer(s) {
					t.Errorf("%s: issuer %q, want %q", path, m["issuer"], c.wantIssuer(s))
				}
				endpoints := map[string]string{
					"token_endpoint":         pathToken,
					"jwks_uri":               pathJWKS,
					"introspection_endpoint": pathIntro,
					"revocation_endpoint":    pathRevoke,
				}
				for field, p := range endpoints {
					got := strOf(m[field])
					if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") {
						t.Errorf("%s: %s %q is not an absolute URL", path, field, got)
					}
					if c.wantBase != nil && got != c.wantBase(s)+p {
						t.Errorf("%s: %s %q, want %q", path, field, got, c.wantBase(s)+p)
					}
				}
				if m["grant_types_supported"] == nil {
					t.Fatalf("%s: no grant_types_supported", path)
				}
				grants := strs(t, m["grant_types_supported"], "grant_types_supported")
				for _, g := range []string{"password", "refresh_token", "client_credentials"} {
					if !slices.Contains(grants, g) {
						t.Errorf("%s: grant_types_supported %v lacks %s", path, grants, g)
					}
				}
				if m["token_endpoint_auth_methods_supported"] == nil {
					t.Fatalf("%s: no token_endpoint_auth_methods_supported", path)
				}
				methods := strs(t, m["token_endpoint_auth_methods_supported"], "token_endpoint_auth_methods_supported")
				for _, am := range []string{"client_secret_basic", "client_secret_post"} {
					if !slices.Contains(methods, am) {
						t.Errorf("%s: token_endpoint_auth_methods_supported %v lacks %s", path, methods, am)
					}
				}
			}
			for _, k := range []string{"issuer", "token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"} {
				if docs[0][k] != docs[1][k] {
					t.Errorf("%s differs between the two metadata documents: %v vs %v", k, docs[0][k], docs[1][k])
				}
			}
			if c.name == "default" {
				// The advertised JWKS URL is served here.
				if r := fetchURL(t, s, strOf(docs[0]["jwks_uri"])); r.Status != http.StatusOK {
					t.Errorf("%s: want 200", r)
				}
			}
		})
	}
}

// fetchURL GETs an absolute URL that points at s.
func fetchURL(t *testing.T, s *Server, u string) *Response {
	t.Helper()
	if !strings.HasPrefix(u, s.URL+"/") {
		t.Fatalf("URL %q does not point at the server %s", u, s.URL)
	}
	return s.get(t, strings.TrimPrefix(u, s.URL), "")
}

// jwks fetches and decodes the key set from the jwks_uri of the metadata.
func jwks(t *testing.T, s *Server) jose.JSONWebKeySet {
	t.Helper()
	r := s.get(t, pathASMeta, "")
	mustStatus(t, r, http.StatusOK)
	r = fetchURL(t, s, strOf(r.JSON(t)["jwks_uri"]))
	mustStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Errorf("%s: Content-Type %q", r, ct)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("%s: not a JWK set: %v", r, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("JWKS key %q is not a valid public key", k.KeyID)
		}
		if k.KeyID == "" {
			t.Errorf("JWKS key without kid")
		}
		if k.Use != "" && k.Use != "sig" {
			t.Errorf("JWKS key %q has use %q", k.KeyID, k.Use)
		}
	}
	return set
}

// verifyWithJWKS verifies an access token against the published keys, as
// a resource server would, and returns its kid.
func verifyWithJWKS(t *testing.T, set jose.JSONWebKeySet, token string, alg jose.SignatureAlgorithm) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse access token as %s JWS: %v", alg, err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
		t.Errorf("JWS typ %v, want at+jwt", h.ExtraHeaders[jose.HeaderType])
	}
	if h.KeyID == "" {
		t.Fatalf("JWS has no kid")
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS (kids %v), want 1", h.KeyID, len(keys), kids(set))
	}
	if keys[0].Algorithm != "" && keys[0].Algorithm != string(alg) {
		t.Errorf("JWKS key %q has alg %q, want %s", h.KeyID, keys[0].Algorithm, alg)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("access token does not verify with JWKS key %q: %v", h.KeyID, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims["iss"] != "permiso-auth" {
		t.Errorf("verified payload %s: want iss permiso-auth", payload)
	}
	return h.KeyID
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// TestJWKS: HS* publishes no symmetric key (only the RS256 key of ID
// tokens, docs/oidc.md), and resource servers that share JWT_SECRET_KEY
// verify tokens with it unchanged; RS256, ES256 and EdDSA tokens verify
// against the published public keys.
func TestJWKS(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.RS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			s, _ := adminServer(t, b, map[string]string{"JWT_ALGORITHM": string(alg)}, get(pathASMeta), get(pathJWKS))
			tok := s.login(t, adminUser, strongPassword, "")
			if h, _ := decodeJWT(t, tok.AccessToken); h["alg"] != string(alg) {
				t.Errorf("token alg %v, want %s", h["alg"], alg)
			}
			set := jwks(t, s)
			if alg == jose.HS256 {
				for _, k := range set.Keys {
					if k.Algorithm != string(jose.RS256) || !k.IsPublic() || k.Use != "sig" {
						t.Errorf("HS256 JWKS publishes %s key %q (use %q); want only the public RS256 keys of ID tokens", k.Algorithm, k.KeyID, k.Use)
					}
				}
				jws, err := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.HS256})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jws.Verify([]byte(s.Env["JWT_SECRET_KEY"])); err != nil {
					t.Errorf("HS256 token does not verify with JWT_SECRET_KEY used as given: %v", err)
				}
				return
			}
			if len(set.Keys) == 0 {
				t.Fatalf("%s: empty JWKS", alg)
			}
			verifyWithJWKS(t, set, tok.AccessToken, alg)
		})
	}
}

// TestKeyRotation: `permiso keys rotate` with ES256 on a shared database.
// An instance started after the rotation signs with the new key and still
// accepts tokens of the old one; the instance that was running learns the
// new key when it meets its kid.
func TestKeyRotation(t *testing.T) {
	eachAdminServer(t, map[string]string{"JWT_ALGORITHM": "ES256"}, []route{get(pathASMeta), post(pathIntro)}, func(t *testing.T, a *Server, _ string) {

		old := a.login(t, adminUser, strongPassword, "")
		oldKid := verifyWithJWKS(t, jwks(t, a), old.AccessToken, jose.ES256)

		res := a.cli(t, "", "keys", "rotate")
		requireCommand(t, res, "keys rotate")
		if res.Code != 0 {
			t.Fatalf("permiso keys rotate: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
		}

		// A second instance on the same storage, started after the rotation.
		bsrv := startServer(t, a.Env)
		fresh := bsrv.login(t, adminUser, strongPassword, "")
		set := jwks(t, bsrv)
		newKid := verifyWithJWKS(t, set, fresh.AccessToken, jose.ES256)
		if newKid == oldKid {
			t.Fatalf("after keys rotate the new token still has kid %q", oldKid)
		}
		verifyWithJWKS(t, set, old.AccessToken, jose.ES256) // the retired key is still published
		if got := kids(set); !slices.Contains(got, oldKid) || !slices.Contains(got, newKid) {
			t.Errorf("JWKS kids %v, want both %q and %q", got, oldKid, newKid)
		}
		assertActive(t, bsrv.introspect(t, fresh.AccessToken, old.AccessToken))
		bsrv.assertBearerAccepted(t, old.AccessToken)

		// The first instance meets the new kid: it reloads and accepts it.
		assertActive(t, a.introspect(t, old.AccessToken, fresh.AccessToken))
		a.assertBearerAccepted(t, fresh.AccessToken)
	})
}

// TestHMACSecretRotation: after JWT_SECRET_KEY changes, tokens signed with
// the former key verify while it is listed in JWT_PREVIOUS_SECRET_KEYS, and
// not once it is dropped.
func TestHMACSecretRotation(t *testing.T) {
	t.Parallel()
	s1, _ := adminServer(t, sqliteOnly(t), nil)
	requireRoute(t, s1, http.MethodPost, pathIntro)
	oldKey := s1.Env["JWT_SECRET_KEY"]
	old := s1.login(t, adminUser, strongPassword, "")
	s1.stop(t)

	env := maps2(s1.Env, map[string]string{"JWT_SECRET_KEY": randomHex(t, 32), "JWT_PREVIOUS_SECRET_KEYS": oldKey})
	s2 := startServer(t, env)
	fresh := s2.login(t, adminUser, strongPassword, "")
	jws, err := jose.ParseSignedCompact(fresh.AccessToken, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify([]byte(env["JWT_SECRET_KEY"])); err != nil {
		t.Errorf("new tokens are not signed with the new JWT_SECRET_KEY: %v", err)
	}
	assertActive(t, s2.introspect(t, fresh.AccessToken, old.AccessToken))
	s2.assertBearerAccepted(t, old.AccessToken)
	s2.stop(t)

	delete(env, "JWT_PREVIOUS_SECRET_KEYS")
	s3 := startServer(t, env)
	assertInactive(t, s3.introspect(t, fresh.AccessToken, old.AccessToken))
	s3.assertBearerRejected(t, old.AccessToken)
	s3.assertBearerAccepted(t, fresh.AccessToken)
}

// ---------------------------------------------------------------------------
// Forged tokens

// signHS256 signs claims as an at+jwt with key, under the forger's kid.
func signHS256(t *testing.T, key []byte, claims map[string]any) string {
	t.Helper()
	return signHS256Kid(t, key, "e2e-forged", claims)
}

// signHS256Kid signs claims as an at+jwt with key and kid.
func signHS256Kid(t *testing.T, key []byte, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(mustMarshal(claims)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forgeHS256 re-signs a real token's claims with another key.
func forgeHS256(t *testing.T, token string, key []byte) string {
	t.Helper()
	_, claims := decodeJWT(t, token)
	return signHS256(t, key, claims)
}

// tamperClaims changes one claim of a real token and keeps its signature.
func tamperClaims(t *testing.T, token, claim string, value any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	_, claims := decodeJWT(t, token)
	claims[claim] = value
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(mustMarshal(claims)))
	return strings.Join(parts, ".")
}

// algNone rewrites a real token as an unsigned alg "none" JWT.
func algNone(t *testing.T, token string) string {
	t.Helper()
	header, _ := decodeJWT(t, token)
	header["alg"] = "none"
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(mustMarshal(header))) + "." + parts[1] + "."
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// maps2 returns a copy of a with b's entries added.
func maps2(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// resignHS256 re-signs a real token with the server's own HS256 secret and
// kid after mutate has changed its claims: a token the server itself could
// have issued, for states a black-box test cannot wait for (expiry).
func resignHS256(t *testing.T, token string, secret []byte, mutate func(claims map[string]any)) string {
	t.Helper()
	header, claims := decodeJWT(t, token)
	mutate(claims)
	kid, _ := header["kid"].(string)
	return signHS256Kid(t, secret, kid, claims)
}
