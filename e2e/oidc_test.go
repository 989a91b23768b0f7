package e2e

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The OpenID Connect provider (docs/oidc.md) driven by a real relying
// party library: go-oidc for discovery and ID-token verification,
// golang.org/x/oauth2 for the authorization request with PKCE, the code
// exchange and the refresh. The browser is an http.Client with a cookie
// jar that submits the hosted forms as a user would.

const (
	pathAuthorize = apiPrefix + "/oauth2/authorize"
	pathUserinfo  = apiPrefix + "/oauth2/userinfo"
	// rpCallback is the relying party's redirect URI: http on a loopback
	// address (RFC 8252 §7.3). Nothing listens there; the browser stops
	// when it is sent there and hands the URL to the test.
	rpCallback  = "http://127.0.0.1:9/callback"
	rpSignedOut = "http://127.0.0.1:9/signed-out"
)

// browser is a user agent with a cookie jar that does not follow
// redirects to the relying party.
type browser struct {
	t      *testing.T
	client *http.Client
	jar    *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, jar: jar, client: &http.Client{
		Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response read whole.
type page struct {
	status int
	header http.Header
	body   string
	url    string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body), url: req.URL.String()}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// form returns the action and the hidden fields of the page's form.
func (p page) form(t *testing.T) (string, url.Values) {
	t.Helper()
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form on the page %s (%d):\n%.2000s", p.url, p.status, p.body)
	}
	fields := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		fields.Add(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), fields
}

// hostedPageHeaders checks the headers every hosted page carries:
// clickjacking protection, no caching, no external resources.
func hostedPageHeaders(t *testing.T, p page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("%s: Content-Security-Policy %q", p.url, csp)
	}
	if p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: X-Frame-Options %q", p.url, p.header.Get("X-Frame-Options"))
	}
	if cc := p.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s: Cache-Control %q", p.url, cc)
	}
	if ct := p.header.Get("Content-Type"); p.status != http.StatusSeeOther && !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q", p.url, ct)
	}
}

// redirect returns the query of a 303 to the relying party's callback.
func (p page) redirect(t *testing.T) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("%s: status %d, want 303 to the client; body:\n%.1500s", p.url, p.status, p.body)
	}
	loc, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), rpCallback+"?") {
		t.Fatalf("%s: redirected to %q, want %s", p.url, loc, rpCallback)
	}
	return loc.Query()
}

// signIn submits the sign-in page p with the credentials.
func (b *browser) signIn(base string, p page, username, password string) page {
	b.t.Helper()
	action, fields := p.form(b.t)
	fields.Set("username", username)
	fields.Set("password", password)
	return b.post(base+action, fields)
}

// registerRP creates a client of the browser flow through the admin API.
func registerRP(t *testing.T, s *Server, admin, clientID string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{
		"name": "RP " + clientID, "client_id": clientID, "client_type": "confidential", "is_trusted": true,
		"redirect_uris": []string{rpCallback}, "grant_types": []string{"authorization_code", "refresh_token"},
		"post_logout_redirect_uris": []string{rpSignedOut},
	}
	for k, v := range extra {
		body[k] = v
	}
	r := s.postJSON(t, pathClients, body, admin)
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	var created struct {
		Client struct {
			RedirectURIs []string `json:"redirect_uris"`
			AuthMethod   string   `json:"token_endpoint_auth_method"`
		} `json:"client"`
		ClientSecret string `json:"client_secret"`
	}
	r.Decode(t, &created)
	if !slices.Equal(created.Client.RedirectURIs, []string{rpCallback}) {
		t.Fatalf("%s: redirect_uris not stored", r)
	}
	return created.ClientSecret
}

// rp is a relying party configured from discovery.
type rp struct {
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRP(t *testing.T, ctx context.Context, issuer, clientID, secret string, scopes ...string) *rp {
	t.Helper()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery at %s: %v", issuer, err)
	}
	cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: rpCallback, Scopes: scopes}
	if secret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &rp{provider: provider, config: cfg, verifier: provider.Verifier(&oidc.Config{ClientID: clientID})}
}

// authorization is one run of the front channel.
type authorization struct {
	url, state, nonce, verifier string
}

func (r *rp) start(opts ...oauth2.AuthCodeOption) authorization {
	a := authorization{state: oauth2.GenerateVerifier()[:16], nonce: oauth2.GenerateVerifier()[:20], verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oidc.Nonce(a.nonce), oauth2.S256ChallengeOption(a.verifier)}, opts...)
	a.url = r.config.AuthCodeURL(a.state, opts...)
	return a
}

// code checks the redirect back to the client (code, state, iss) and
// returns the code.
func (a authorization) code(t *testing.T, q url.Values, issuer string) string {
	t.Helper()
	if q.Get("error") != "" {
		t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		t.Errorf("state %q, want %q", q.Get("state"), a.state)
	}
	if q.Get("iss") != issuer {
		t.Errorf("iss %q, want %q (RFC 9207)", q.Get("iss"), issuer)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %v", q)
	}
	return q.Get("code")
}

// TestOIDCRelyingParty: go-oidc and x/oauth2 complete the whole flow
// (discovery, authorization with PKCE and nonce on the hosted sign-in
// page, code exchange, ID-token verification with at_hash, userinfo,
// refresh, SSO with prompt=none) on each backend. On PostgreSQL + Redis
// two instances share the work: the sign-in on one, the code exchange and
// userinfo on the other.
func TestOIDCRelyingParty(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, _ := adminServer(t, b, nil, get(pathAuthorize))
			admin := a.login(t, adminUser, strongPassword, "").AccessToken
			secret := registerRP(t, a, admin, "rp-web", nil)
			issuer := a.URL

			// The second instance: the same database, Redis and issuer.
			back := a
			if b.name != "sqlite" {
				env := maps2(a.Env, map[string]string{"PUBLIC_URL": a.URL})
				back = startServer(t, env)
			}

			web := newRP(t, ctx, issuer, "rp-web", secret, oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess)
			tokenRP := *web
			tokenRP.config.Endpoint.TokenURL = back.URL + strings.TrimPrefix(web.config.Endpoint.TokenURL, a.URL)
			userinfoURL := back.URL + pathUserinfo

			br := newBrowser(t)
			auth := web.start()
			signInPage := br.get(auth.url)
			if signInPage.status != http.StatusOK || !strings.Contains(signInPage.body, `<label for="username">`) {
				t.Fatalf("GET %s: %d, want the sign-in page:\n%.1500s", auth.url, signInPage.status, signInPage.body)
			}
			hostedPageHeaders(t, signInPage)
			landed := br.signIn(a.URL, signInPage, adminUser, strongPassword)
			hostedPageHeaders(t, landed)
			code := auth.code(t, landed.redirect(t), issuer)
			// The browser session cookie: HttpOnly, SameSite=Lax; over plain
			// http without the __Host- prefix and Secure (docs/oidc.md).
			for _, c := range strings.Split(strings.Join(landed.header.Values("Set-Cookie"), "\n"), "\n") {
				if strings.HasPrefix(c, "permiso_session=") {
					if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") || !strings.Contains(c, "Path=/") {
						t.Errorf("session cookie %q", c)
					}
				}
			}

			tok, err := tokenRP.config.Exchange(ctx, code, oauth2.VerifierOption(auth.verifier))
			if err != nil {
				t.Fatalf("code exchange at %s: %v", tokenRP.config.Endpoint.TokenURL, err)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token with offline_access")
			}
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := web.verifier.Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("ID token verification: %v", err)
			}
			if idt.Nonce != auth.nonce {
				t.Errorf("nonce %q, want %q", idt.Nonce, auth.nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var claims struct {
				AuthTime int64    `json:"auth_time"`
				SID      string   `json:"sid"`
				AMR      []string `json:"amr"`
				AZP      string   `json:"azp"`
				Email    string   `json:"email"`
				Name     string   `json:"name"`
				Username string   `json:"preferred_username"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.AuthTime == 0 || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute || claims.SID == "" ||
				!slices.Equal(claims.AMR, []string{"pwd"}) || claims.AZP != "rp-web" || claims.Email != adminEmail ||
				claims.Username != adminUser || claims.Name == "" {
				t.Errorf("ID token claims %+v", claims)
			}

			// Userinfo, at the other instance.
			ui := newRPAt(t, ctx, web, userinfoURL)
			info, err := ui.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if info.Subject != idt.Subject || info.Email != adminEmail || !info.EmailVerified {
				t.Errorf("userinfo %+v, ID token sub %s", info, idt.Subject)
			}

			// Refresh (rotated), then userinfo with the new access token.
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			fresh, err := tokenRP.config.TokenSource(ctx, &expired).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
				t.Error("refresh did not rotate the tokens")
			}
			if _, err := ui.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err != nil {
				t.Errorf("userinfo after refresh: %v", err)
			}

			// Single sign-on: another client, prompt=none, the same
			// browser: a code without a sign-in.
			secret2 := registerRP(t, a, admin, "rp-other", nil)
			other := newRP(t, ctx, issuer, "rp-other", secret2, oidc.ScopeOpenID)
			auth2 := other.start(oauth2.SetAuthURLParam("prompt", "none"))
			sso := br.get(auth2.url)
			code2 := auth2.code(t, sso.redirect(t), issuer)
			tok2, err := other.config.Exchange(ctx, code2, oauth2.VerifierOption(auth2.verifier))
			if err != nil {
				t.Fatalf("SSO code exchange: %v", err)
			}
			idt2, err := other.verifier.Verify(ctx, tok2.Extra("id_token").(string))
			if err != nil {
				t.Fatal(err)
			}
			var claims2 struct {
				AuthTime int64  `json:"auth_time"`
				SID      string `json:"sid"`
			}
			_ = idt2.Claims(&claims2)
			if claims2.SID != claims.SID || claims2.AuthTime != claims.AuthTime || idt2.Subject != idt.Subject {
				t.Errorf("SSO ID token sid %s auth_time %d, want the first sign-in's %s %d", claims2.SID, claims2.AuthTime, claims.SID, claims.AuthTime)
			}
			if tok2.RefreshToken == "" {
				// rp-other registered the refresh_token grant: its codes
				// come with a refresh token even without offline_access.
				t.Error("no refresh token for a client registered with refresh_token")
			}

			// Without a session, prompt=none is login_required.
			q := newBrowser(t).get(other.start(oauth2.SetAuthURLParam("prompt", "none")).url).redirect(t)
			if q.Get("error") != "login_required" || q.Get("iss") != issuer {
				t.Errorf("prompt=none without a session: %v, want login_required with iss", q)
			}

			// The browser session is one of the user's sessions.
			if r := a.get(t, pathSessions, admin); r.Status != http.StatusOK || !strings.Contains(string(r.Body), claims.SID) ||
				!strings.Contains(string(r.Body), `"kind":"browser"`) || !strings.Contains(string(r.Body), `"kind":"token"`) {
				t.Errorf("%s: the browser session %s is not listed as one", r, claims.SID)
			}

			// RP-initiated logout: discovery names the endpoint; an
			// unregistered post_logout_redirect_uri is an error page; the
			// user confirms, the session ends, the browser returns with state.
			var meta struct {
				EndSession string `json:"end_session_endpoint"`
			}
			if err := web.provider.Claims(&meta); err != nil || meta.EndSession == "" {
				t.Fatalf("no end_session_endpoint in discovery: %v", err)
			}
			bad := br.get(meta.EndSession + "?" + url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://evil.example.com/"}}.Encode())
			if bad.status != http.StatusBadRequest || bad.header.Get("Location") != "" {
				t.Errorf("unregistered post_logout_redirect_uri: %d Location %q, want the error page", bad.status, bad.header.Get("Location"))
			}
			confirm := br.get(meta.EndSession + "?" + url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {rpSignedOut}, "state": {"bye"}}.Encode())
			hostedPageHeaders(t, confirm)
			action, fields := confirm.form(t)
			out := br.post(a.URL+action, fields)
			if loc := out.header.Get("Location"); out.status != http.StatusSeeOther || loc != rpSignedOut+"?state=bye" {
				t.Errorf("sign-out: %d to %q, want 303 to %s?state=bye", out.status, loc, rpSignedOut)
			}
			q = br.get(other.start(oauth2.SetAuthURLParam("prompt", "none")).url).redirect(t)
			if q.Get("error") != "login_required" {
				t.Errorf("prompt=none after the sign-out: %v, want login_required", q)
			}
			if r := a.get(t, pathSessions, admin); strings.Contains(string(r.Body), claims.SID) {
				t.Errorf("the ended browser session %s is still listed: %s", claims.SID, r)
			}
		})
	}
}

// newRPAt is a provider whose userinfo endpoint is at userinfoURL (the
// other instance).
func newRPAt(t *testing.T, ctx context.Context, r *rp, userinfoURL string) *oidc.Provider {
	t.Helper()
	var claims struct {
		Issuer string   `json:"issuer"`
		JWKS   string   `json:"jwks_uri"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.provider.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return (&oidc.ProviderConfig{IssuerURL: claims.Issuer, AuthURL: r.config.Endpoint.AuthURL, TokenURL: r.config.Endpoint.TokenURL,
		UserInfoURL: userinfoURL, JWKSURL: claims.JWKS, Algorithms: claims.Algs}).NewProvider(ctx)
}

// TestOIDCNegative: what a browser and a relying party must never get
// (docs/oidc.md): no redirect to an unregistered URI, no form accepted
// without its CSRF token, the same answer for an unknown user and a wrong
// password, no session fixation, consent asked of an untrusted client and
// its refusal, and the code exchange's refusals (PKCE, reuse, wrong
// client, prompt=none without a session).
func TestOIDCNegative(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	ctx := t.Context()
	s, _ := adminServer(t, b, nil, get(pathAuthorize))
	admin := s.login(t, adminUser, strongPassword, "").AccessToken
	secret := registerRP(t, s, admin, "rp-neg", nil)
	otherSecret := registerRP(t, s, admin, "rp-neg2", nil)
	untrustedSecret := registerRP(t, s, admin, "rp-untrusted", map[string]any{"is_trusted": false})
	web := newRP(t, ctx, s.URL, "rp-neg", secret, oidc.ScopeOpenID, "email")

	t.Run("redirect_uri mismatch is an error page", func(t *testing.T) {
		for name, u := range map[string]string{
			"unregistered":   strings.Replace(web.start().url, url.QueryEscape(rpCallback), url.QueryEscape("https://evil.example.com/cb"), 1),
			"prefix":         strings.Replace(web.start().url, url.QueryEscape(rpCallback), url.QueryEscape(rpCallback+"/more"), 1),
			"unknown client": strings.Replace(web.start().url, "client_id=rp-neg", "client_id=nobody", 1),
		} {
			p := newBrowser(t).get(u)
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, "Something went wrong") {
				t.Errorf("%s: %d Location %q, want the 400 error page and no redirect", name, p.status, p.header.Get("Location"))
			}
			hostedPageHeaders(t, p)
		}
	})

	t.Run("sign-in form without or with a wrong CSRF token", func(t *testing.T) {
		br := newBrowser(t)
		p := br.get(web.start().url)
		action, fields := p.form(t)
		fields.Set("username", adminUser)
		fields.Set("password", strongPassword)
		missing := url.Values{}
		for k, v := range fields {
			if k != "csrf_token" {
				missing[k] = v
			}
		}
		if r := br.post(s.URL+action, missing); r.status != http.StatusForbidden || r.header.Get("Location") != "" {
			t.Errorf("without CSRF token: %d, want 403 and no redirect", r.status)
		}
		// A token of the same length that differs in its first character
		// (which may itself be an x).
		tok := fields.Get("csrf_token")
		first := "x"
		if strings.HasPrefix(tok, first) {
			first = "y"
		}
		wrong := maps2url(fields, "csrf_token", first+tok[1:])
		if r := br.post(s.URL+action, wrong); r.status != http.StatusForbidden {
			t.Errorf("with a wrong CSRF token: %d, want 403", r.status)
		}
		// Another browser's token does not work either (the cookie is this
		// browser's).
		if r := newBrowser(t).post(s.URL+action, fields); r.status != http.StatusForbidden {
			t.Errorf("with a token but not its cookie: %d, want 403", r.status)
		}
	})

	t.Run("unknown user and wrong password get the same page", func(t *testing.T) {
		br := newBrowser(t)
		unknown := br.signIn(s.URL, br.get(web.start().url), "nobody-here", strongPassword)
		wrong := br.signIn(s.URL, br.get(web.start().url), adminUser, "Wrong-Password-123!")
		for _, p := range []page{unknown, wrong} {
			if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Invalid username or password.") {
				t.Errorf("%d, want 401 with the sign-in page and its one message:\n%.800s", p.status, p.body)
			}
		}
	})

	t.Run("the session cookie is replaced at sign-in", func(t *testing.T) {
		br := newBrowser(t)
		u, _ := url.Parse(s.URL)
		br.jar.SetCookies(u, []*http.Cookie{{Name: "permiso_session", Value: "planted-by-an-attacker", Path: "/"}})
		landed := br.signIn(s.URL, br.get(web.start().url), adminUser, strongPassword)
		landed.redirect(t)
		for _, c := range br.jar.Cookies(u) {
			if c.Name == "permiso_session" && c.Value == "planted-by-an-attacker" {
				t.Error("the planted session cookie survived the sign-in")
			}
		}
	})

	t.Run("consent: deny, then allow", func(t *testing.T) {
		untrusted := newRP(t, ctx, s.URL, "rp-untrusted", untrustedSecret, oidc.ScopeOpenID, "profile")
		br := newBrowser(t)
		auth := untrusted.start()
		consent := br.signIn(s.URL, br.get(auth.url), adminUser, strongPassword)
		if consent.status != http.StatusOK || !strings.Contains(consent.body, "RP rp-untrusted") ||
			!strings.Contains(consent.body, "See your name and username") {
			t.Fatalf("after sign-in: %d, want the consent page naming the client and the scopes:\n%.1500s", consent.status, consent.body)
		}
		hostedPageHeaders(t, consent)
		action, fields := consent.form(t)
		fields.Set("decision", "deny")
		q := br.post(s.URL+action, fields).redirect(t)
		if q.Get("error") != "access_denied" || q.Get("state") != auth.state || q.Get("iss") != s.URL {
			t.Errorf("deny: %v, want access_denied with state and iss", q)
		}
		// prompt=none cannot give consent.
		q = br.get(untrusted.start(oauth2.SetAuthURLParam("prompt", "none")).url).redirect(t)
		if q.Get("error") != "consent_required" {
			t.Errorf("prompt=none for an untrusted client: %v, want consent_required", q)
		}
		auth = untrusted.start()
		consent = br.get(auth.url)
		action, fields = consent.form(t)
		fields.Set("decision", "allow")
		code := auth.code(t, br.post(s.URL+action, fields).redirect(t), s.URL)
		if _, err := untrusted.config.Exchange(ctx, code, oauth2.VerifierOption(auth.verifier)); err != nil {
			t.Errorf("exchange after consent: %v", err)
		}
	})

	// One signed-in browser for the exchange refusals.
	br := newBrowser(t)
	br.signIn(s.URL, br.get(web.start().url), adminUser, strongPassword).redirect(t)
	codeFor := func(r *rp) (authorization, string) {
		a := r.start()
		return a, a.code(t, br.get(a.url).redirect(t), s.URL)
	}
	wantInvalidGrant := func(t *testing.T, err error) {
		t.Helper()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("err = %v, want invalid_grant", err)
		}
	}

	t.Run("missing PKCE verifier", func(t *testing.T) {
		_, code := codeFor(web)
		_, err := web.config.Exchange(ctx, code)
		wantInvalidGrant(t, err)
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		_, code := codeFor(web)
		_, err := web.config.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantInvalidGrant(t, err)
	})
	t.Run("code reuse revokes the first exchange's tokens", func(t *testing.T) {
		a, code := codeFor(web)
		tok, err := web.config.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := web.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo before the reuse: %v", err)
		}
		_, err = web.config.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
		wantInvalidGrant(t, err)
		if _, err := web.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Error("the access token of a reused code still works at userinfo")
		}
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		if _, err := web.config.TokenSource(ctx, &expired).Token(); err == nil {
			t.Error("the refresh token of a reused code still works")
		}
	})
	t.Run("wrong client", func(t *testing.T) {
		a, code := codeFor(web)
		other := newRP(t, ctx, s.URL, "rp-neg2", otherSecret, oidc.ScopeOpenID)
		_, err := other.config.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
		wantInvalidGrant(t, err)
	})
	t.Run("prompt=none without a session", func(t *testing.T) {
		q := newBrowser(t).get(web.start(oauth2.SetAuthURLParam("prompt", "none")).url).redirect(t)
		if q.Get("error") != "login_required" {
			t.Errorf("%v, want login_required", q)
		}
	})
	t.Run("plain PKCE is refused", func(t *testing.T) {
		u := web.config.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		q := br.get(u).redirect(t)
		if q.Get("error") != "invalid_request" || q.Get("state") != "st" {
			t.Errorf("%v, want invalid_request", q)
		}
	})
	t.Run("public client: PKCE, no secret, refresh", func(t *testing.T) {
		registerRP(t, s, admin, "rp-public", map[string]any{"client_type": "public"})
		spa := newRP(t, ctx, s.URL, "rp-public", "", oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
		a, code := codeFor(spa)
		tok, err := spa.config.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
		if err != nil {
			t.Fatalf("public client exchange: %v", err)
		}
		if _, err := spa.verifier.Verify(ctx, tok.Extra("id_token").(string)); err != nil {
			t.Error(err)
		}
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		if _, err := spa.config.TokenSource(ctx, &expired).Token(); err != nil {
			t.Errorf("public client refresh: %v", err)
		}
		// Without PKCE the request is refused.
		q := br.get(spa.config.AuthCodeURL("st")).redirect(t)
		if q.Get("error") != "invalid_request" {
			t.Errorf("public client without PKCE: %v", q)
		}
	})
	t.Run("authorization request by POST", func(t *testing.T) {
		a := web.start()
		u, _ := url.Parse(a.url)
		p := br.post(s.URL+pathAuthorize, u.Query())
		a.code(t, p.redirect(t), s.URL)
		// Without a session: the sign-in page, as for GET.
		if p := newBrowser(t).post(s.URL+pathAuthorize, u.Query()); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("POST without a session: %d, want the sign-in page", p.status)
		}
	})
	// The expired code (60 s) is TestAuthorizationCodeGrant/expired_code in
	// oauth2, on a test clock.
}

// maps2url returns a copy of v with name set to value.
func maps2url(v url.Values, name, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(name, value)
	return out
}

// TestOIDCIDTokenAlgorithms: ID tokens in the other asymmetric algorithms
// verify with go-oidc through the JWKS: ES256 shared with ES256 access
// tokens, and EdDSA chosen by OIDC_ID_TOKEN_ALGORITHM beside HS256 access
// tokens (at_hash with SHA-512 for EdDSA).
func TestOIDCIDTokenAlgorithms(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		alg  string
	}{
		{"ES256 access and ID tokens", map[string]string{"JWT_ALGORITHM": "ES256"}, "ES256"},
		{"EdDSA ID tokens beside HS256", map[string]string{"OIDC_ID_TOKEN_ALGORITHM": "EdDSA"}, "EdDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, _ := adminServer(t, b, tc.env)
			requireRoute(t, s, http.MethodGet, pathAuthorize)
			admin := s.login(t, adminUser, strongPassword, "").AccessToken
			web := newRP(t, ctx, s.URL, "rp-alg", registerRP(t, s, admin, "rp-alg", nil), oidc.ScopeOpenID)
			var meta struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := web.provider.Claims(&meta); err != nil || !slices.Equal(meta.Algs, []string{tc.alg}) {
				t.Fatalf("id_token_signing_alg_values_supported %v (%v), want [%s]", meta.Algs, err, tc.alg)
			}
			br := newBrowser(t)
			a := web.start()
			code := a.code(t, br.signIn(s.URL, br.get(a.url), adminUser, strongPassword).redirect(t), s.URL)
			tok, err := web.config.Exchange(ctx, code, oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			idt, err := web.verifier.Verify(ctx, tok.Extra("id_token").(string))
			if err != nil {
				t.Fatalf("verify %s ID token: %v", tc.alg, err)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			if h, _ := decodeJWT(t, tok.Extra("id_token").(string)); h["alg"] != tc.alg || h["typ"] != "JWT" {
				t.Errorf("ID token header %v", h)
			}
		})
	}
}
