package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/permiso/permiso/internal/testtool"
)

// relyingParty is a small web application that signs its users in with
// permiso, as a real one would: /login starts the authorization code flow
// (PKCE, state, nonce kept in memory), /callback exchanges the code,
// verifies the ID token with go-oidc and greets the user; /frame embeds
// permiso's sign-in page in an iframe (which permiso must refuse).
type relyingParty struct {
	srv      *httptest.Server
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	authURL  string

	mu      sync.Mutex
	pending map[string][2]string // state -> PKCE verifier, nonce
}

func startRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	rp := &relyingParty{pending: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, nonce, verifier := oauth2.GenerateVerifier()[:20], oauth2.GenerateVerifier()[:20], oauth2.GenerateVerifier()
		rp.mu.Lock()
		rp.pending[state] = [2]string{verifier, nonce}
		rp.mu.Unlock()
		http.Redirect(w, r, rp.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		fail := func(format string, args ...any) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>RP</title><p id="error">%s</p>`, html.EscapeString(fmt.Sprintf(format, args...)))
		}
		q := r.URL.Query()
		rp.mu.Lock()
		p, ok := rp.pending[q.Get("state")]
		delete(rp.pending, q.Get("state"))
		rp.mu.Unlock()
		switch {
		case q.Get("error") != "":
			fail("authorization error %s", q.Get("error"))
			return
		case !ok:
			fail("unknown state")
			return
		}
		tok, err := rp.config.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p[0]))
		if err != nil {
			fail("exchange: %v", err)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(r.Context(), raw)
		if err != nil || idt.Nonce != p[1] {
			fail("ID token: %v (nonce %q)", err, idt)
			return
		}
		var claims struct {
			Email string   `json:"email"`
			AMR   []string `json:"amr"`
			ACR   string   `json:"acr"`
		}
		_ = idt.Claims(&claims)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>RP</title><p id="hello">Hello %s</p><p id="amr">%s</p><p id="acr">%s</p>`,
			html.EscapeString(claims.Email), html.EscapeString(strings.Join(claims.AMR, " ")), html.EscapeString(claims.ACR))
	})
	mux.HandleFunc("GET /frame", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>frame</title><iframe id="victim" src="%s" width="600" height="400"></iframe>`, html.EscapeString(rp.authURL))
	})
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	return rp
}

// requireChromium returns the path of chromium, or skips (fails on CI).
func requireChromium(t *testing.T) string {
	t.Helper()
	return testtool.Require(t, "chromium", "apt-get install -y chromium", "CI")
}

// startChromium starts headless Chromium (the binary at chromium) with a
// window of width by height pixels and returns the browser's context and
// what stops it. The first call on the context starts the browser and
// opens the tab: make it without a timeout, which would stop the browser.
func startChromium(ctx context.Context, chromium string, width, height int) (context.Context, func()) {
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(width, height))...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	return bctx, func() {
		cancelBrowser()
		cancelAlloc()
	}
}

// register registers the relying party as a client of s (admin's token)
// for the authorization code flow, with the scopes openid and scopes, and
// configures it from the discovery document.
func (rp *relyingParty) register(t *testing.T, s *Server, admin, clientID string, trusted bool, scopes ...string) {
	t.Helper()
	r := s.postJSON(t, pathClients, map[string]any{
		"name": "Example Dashboard", "client_id": clientID, "client_type": "confidential", "is_trusted": trusted,
		"redirect_uris": []string{rp.srv.URL + "/callback"}, "grant_types": []string{"authorization_code"},
	}, admin)
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: want 201", r)
	}
	var created struct {
		Secret string `json:"client_secret"`
	}
	r.Decode(t, &created)
	provider, err := oidc.NewProvider(t.Context(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp.config = oauth2.Config{ClientID: clientID, ClientSecret: created.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: rp.srv.URL + "/callback", Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
	rp.verifier = provider.Verifier(&oidc.Config{ClientID: clientID})
}

// screenshots returns a function that, with PERMISO_SCREENSHOTS=1, writes
// the browser's page to docs/images/name; otherwise it does nothing.
func screenshots(t *testing.T, tctx context.Context) func(name string) {
	return func(name string) {
		t.Helper()
		if os.Getenv("PERMISO_SCREENSHOTS") == "" {
			return
		}
		buf, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		root := repoDir(t)
		if err := os.WriteFile(filepath.Join(root, "docs", "images", name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOIDCInChromium: headless Chromium signs in on the hosted page with
// the keyboard only (autofocus, Tab, Enter) in a flow started by a real
// relying party, gives consent, and lands on the relying party, which has
// exchanged the code and verified the ID token. On the way it checks the
// form's CSRF token, the cookies' attributes, and that the sign-in page
// refuses to be framed (clickjacking). With PERMISO_SCREENSHOTS=1 it
// writes the sign-in and consent pages to docs/images/.
func TestOIDCInChromium(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	chromium := requireChromium(t)
	s, _ := adminServer(t, b, map[string]string{"APP_NAME": "Example Corp Sign-in"}, get(pathAuthorize))
	admin := s.login(t, adminUser, strongPassword, "").AccessToken

	rp := startRelyingParty(t)
	rp.register(t, s, admin, "rp-chromium", false, "profile", "email")
	rp.authURL = rp.config.AuthCodeURL("framed", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	bctx, stop := startChromium(t.Context(), chromium, 900, 760)
	defer stop()
	// The Log domain reports the Content-Security-Policy refusals.
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var (
		consoleMu sync.Mutex
		console   []string
	)
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*log.EventEntryAdded); ok && e.Entry != nil {
			consoleMu.Lock()
			console = append(console, e.Entry.Text)
			consoleMu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	tctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	defer cancelTimeout()

	shot := screenshots(t, tctx)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			consoleMu.Lock()
			defer consoleMu.Unlock()
			t.Fatalf("%s: %v (browser log: %v)", what, err, console)
		}
	}

	must("open the relying party", chromedp.Do(tctx,
		chromedp.Navigate(rp.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	))
	shot("oidc-sign-in.png")
	// Keyboard only: the username field has the focus, Tab reaches the
	// password, Enter submits.
	active, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.activeElement.id`))
	must("focus", err)
	csrf, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('input[name=csrf_token]').value`))
	must("CSRF field", err)
	must("sign in with the keyboard", chromedp.Do(tctx,
		chromedp.KeyEvent(adminUser),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent(strongPassword),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)),
	))
	consentText, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("main")))
	must("consent page", err)
	shot("oidc-consent.png")
	must("allow", chromedp.Do(tctx,
		chromedp.Click(chromedp.CSS(`button[value=allow]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hello, #error`)),
	))
	hello, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("body")))
	must("relying party page", err)
	if active != "username" {
		t.Errorf("focused element %q, want the username field", active)
	}
	if len(csrf) != 43 {
		t.Errorf("CSRF token %q in the sign-in form", csrf)
	}
	if !strings.Contains(consentText, "Example Dashboard") || !strings.Contains(consentText, "See your email address") {
		t.Errorf("consent page text %q lacks the client's name or the scopes in words", consentText)
	}
	if !strings.Contains(hello, "Hello "+adminEmail) {
		t.Fatalf("relying party page %q, want the greeting of a verified sign-in", hello)
	}

	// Cookie attributes as the browser stored them.
	res, err := chromedp.Call(tctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL + "/"}})
	must("cookies", err)
	cookies := res.Cookies
	found := map[string]bool{}
	for _, c := range cookies {
		found[c.Name] = true
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != "127.0.0.1" {
			t.Errorf("cookie %s: HttpOnly %v SameSite %q Path %q Domain %q; want HttpOnly, Lax, /, host-only",
				c.Name, c.HTTPOnly, c.SameSite, c.Path, c.Domain)
		}
	}
	if !found["permiso_session"] || !found["permiso_csrf"] {
		t.Errorf("cookies %v, want permiso_session and permiso_csrf (plain http: no __Host- prefix)", found)
	}

	// Clickjacking: the sign-in page refuses to render in a frame of
	// another origin (frame-ancestors 'none').
	must("frame the sign-in page", chromedp.Do(tctx,
		chromedp.Navigate(rp.srv.URL+"/frame"),
		chromedp.WaitReady(chromedp.CSS("#victim")),
		chromedp.Sleep(time.Second),
	))
	framed, err := chromedp.Run(tctx, chromedp.Evaluate[string](`(() => { try { const d = document.getElementById('victim').contentDocument; return d ? d.body.innerText : 'cross-origin'; } catch (e) { return 'cross-origin'; } })()`))
	must("read the frame", err)
	consoleMu.Lock()
	refused := false
	for _, m := range console {
		if strings.Contains(m, "frame-ancestors") {
			refused = true
		}
	}
	consoleMu.Unlock()
	if !refused {
		t.Errorf("no frame-ancestors refusal reported by Chromium (console: %v, frame: %q)", console, framed)
	}
}
