package oauth2_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// newAuthorizeService is a service with the browser flow wired over db,
// holding the clients FuzzParseAuthorizeRequest names: a confidential and
// a public client of the code flow, a client-credentials-only one and an
// inactive one.
func newAuthorizeService(tb testing.TB, db permiso.Store) *oauth2.Service {
	tb.Helper()
	ctx := context.Background()
	now := func() time.Time { return time.Now().UTC() }
	signer := testwire.HS256(tb, testSecret, testIssuer, now)
	ids := testwire.ES256(tb, oidcIssuer, db, time.Hour, now)
	svc := oauth2.NewService(oauth2.Config{Issuer: testIssuer, OIDCIssuer: oidcIssuer, AccessTokenLifetime: time.Minute,
		RefreshTokenLifetime: time.Hour, ServiceTokenLifetime: time.Minute},
		oauth2.Deps{Users: db, Clients: db, Tokens: db, Sessions: db, OIDC: db, IDTokens: ids,
			Hasher: testwire.Hasher(), Signer: signer,
			Revocations: inprocess.NewRevocations(), Audit: &recorder{}, Now: now})
	for _, c := range []permiso.ServiceClient{
		{ClientID: "rp", ClientType: "confidential", IsActive: true, RedirectURIs: []string{rpRedirect},
			GrantTypes: []string{permiso.GrantTypeAuthorizationCode}},
		{ClientID: "spa", ClientType: "public", TokenEndpointAuthMethod: permiso.AuthMethodNone, IsActive: true,
			RedirectURIs: []string{rpRedirect}, GrantTypes: []string{permiso.GrantTypeAuthorizationCode}},
		{ClientID: "svc", ClientType: "confidential", IsActive: true},
		{ClientID: "off", ClientType: "confidential", RedirectURIs: []string{rpRedirect},
			GrantTypes: []string{permiso.GrantTypeAuthorizationCode}},
	} {
		_, hash := permiso.NewClientSecret()
		c.SecretHash, c.Name, c.CreatedAt, c.UpdatedAt = hash, c.ClientID, now(), now()
		if _, err := db.CreateServiceClient(ctx, c, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return svc
}

// FuzzParseAuthorizeRequest runs arbitrary authorization requests (RFC
// 6749 §4.1.1, OpenID Connect Core 1.0 §3.1.2.1) through the parser on
// SQLite and, with PERMISO_TEST_DATABASE_URL, on PostgreSQL, which
// refuses NUL and invalid UTF-8 that SQLite would look up. Both must give
// the same answer; an error is an *AuthorizeError with a 4xx (or, for a
// store that cannot answer, a non-redirected 5xx), redirected only to the
// registered redirect URI with the client's state; an accepted request
// holds only valid text.
func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, q := range []url.Values{
		authorizeQuery("rp"),
		authorizeQuery("spa", "code_challenge", ""),
		authorizeQuery("svc"),
		authorizeQuery("off"),
		authorizeQuery("rp", "prompt", "none login", "max_age", "-1"),
		authorizeQuery("rp", "state", "a\x00b"),
		authorizeQuery("rp\x00"),
		authorizeQuery("\xff"),
		authorizeQuery("rp", "redirect_uri", rpRedirect+"/"),
		authorizeQuery("rp", "response_mode", "fragment", "nonce", strings.Repeat("n", 600)),
		authorizeQuery("rp", "request", "eyJ", "scope", "openid \"x"),
	} {
		f.Add(q.Encode())
	}
	f.Add("client_id=rp&client_id=rp&redirect_uri=" + url.QueryEscape(rpRedirect))
	backends := map[string]*oauth2.Service{"sqlite": newAuthorizeService(f, testdb.SQLite(f))}
	if testdb.HasPostgres() {
		backends["postgres"] = newAuthorizeService(f, testdb.Postgres(f, "fuzzauthz"))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // the HTTP layer answers unparsable queries itself
		}
		type answer struct {
			req      oauth2.AuthorizeRequest
			code     string
			status   int
			redirect string
		}
		answers := map[string]answer{}
		for name, svc := range backends {
			r, err := svc.ParseAuthorizeRequest(context.Background(), q)
			a := answer{req: r}
			if err != nil {
				var ae *oauth2.AuthorizeError
				if !errors.As(err, &ae) {
					t.Fatalf("%s: error %T %v is not an *AuthorizeError", name, err, err)
				}
				a.code, a.status, a.redirect = ae.Err.Code, ae.Err.Status, ae.RedirectURL
				if ae.Err.Status >= 500 {
					t.Fatalf("%s: %d %s for a request: %v", name, ae.Err.Status, ae.Err.Code, ae.Err)
				}
				if ae.Err.Status < 400 {
					t.Fatalf("%s: status %d", name, ae.Err.Status)
				}
				if ae.Redirect != (ae.RedirectURL != "") {
					t.Fatalf("%s: Redirect %v with URL %q", name, ae.Redirect, ae.RedirectURL)
				}
				if ae.Redirect {
					u, err := url.Parse(ae.RedirectURL)
					if err != nil || !strings.HasPrefix(ae.RedirectURL, rpRedirect+"?") {
						t.Fatalf("%s: error redirected to %q, not the registered redirect URI", name, ae.RedirectURL)
					}
					if got := u.Query().Get("state"); got != "" && got != q.Get("state") {
						t.Fatalf("%s: state %q redirected for %q", name, got, q.Get("state"))
					}
				}
			} else {
				for _, s := range []string{r.State, r.Nonce, r.LoginHint, r.CodeChallenge, r.RedirectURI} {
					if !permiso.ValidText(s) {
						t.Fatalf("%s: accepted a request holding %q", name, s)
					}
				}
				if r.RedirectURI != rpRedirect || (r.Client.ClientID != "rp" && r.Client.ClientID != "spa") {
					t.Fatalf("%s: accepted for client %q at %q", name, r.Client.ClientID, r.RedirectURI)
				}
				if r.Client.ClientID == "spa" && r.CodeChallenge == "" {
					t.Fatalf("%s: a public client without PKCE accepted", name)
				}
			}
			answers[name] = a
		}
		if pg, ok := answers["postgres"]; ok {
			lite := answers["sqlite"]
			// The clients differ in ids and timestamps only.
			pg.req.Client, lite.req.Client = permiso.ServiceClient{ClientID: pg.req.Client.ClientID},
				permiso.ServiceClient{ClientID: lite.req.Client.ClientID}
			if !reflect.DeepEqual(pg, lite) {
				t.Fatalf("backends differ:\nsqlite   %+v\npostgres %+v", lite, pg)
			}
		}
	})
}
