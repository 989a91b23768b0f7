package httpapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed" // the stylesheet
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"github.com/permiso/permiso"
)

// The hosted pages of the OpenID Connect provider (docs/oidc.md): HTML,
// not the JSON API. They live in httpapi because they are routes like the
// others (routes.go, access entries, the middleware chain, the limit
// batch). The pages are templ components (pages.templ, compiled to Go in
// pages_templ.go; docs/architecture.md, "Hosted pages"), the stylesheet is
// embedded from pages/. They use no JavaScript and no external resource,
// and every form carries a CSRF token.

//go:embed pages/style.css
var pagesCSS []byte

//go:generate go run github.com/a-h/templ/cmd/templ@v0.3.1118 generate -path .

// pageViews are the hosted pages by name (pages.templ, compiled to
// pages_templ.go by the go:generate line above).
var pageViews = map[string]func(pageData) templ.Component{
	"signin": signinView, "password": passwordView, "mfa": mfaView, "enroll": enrollView,
	"recovery": recoveryView, "consent": consentView, "signout": signoutView,
	"signedout": signedoutView, "error": errorView,
}

// sortedKeys are the names of a form's hidden parameters, in order.
func sortedKeys(v url.Values) []string { return slices.Sorted(maps.Keys(v)) }

// Cookie names. The __Host- prefix (RFC 6265bis §4.1.3.2) pins a cookie
// to this host, path / and Secure: no subdomain can set or overwrite it.
// Browsers accept it only over https, so plain-http development uses the
// same names without the prefix.
const (
	sessionCookie = "permiso_session"
	csrfCookie    = "permiso_csrf"
	csrfField     = "csrf_token"
	hostPrefix    = "__Host-"
)

// pageData is what every page template reads.
type pageData struct {
	AppName  string
	Title    string
	StyleURL string
	Error    string
	// Forms: where they post, the authorization request's parameters they
	// carry, and the CSRF token.
	Action string
	Params url.Values
	CSRF   string
	// Sign-in and consent.
	ClientName string
	Username   string
	Scopes     []string
	// Error page.
	Message string
	// Password page: what the new password breaks (the password policy).
	Problems []string
	// Enrollment page: the QR code (mfa.QRSVG) and the secret as text.
	QRSVG  string
	Secret string
	// Recovery codes page: the codes, shown once.
	Codes []string
}

// secureRequest reports whether the browser reached permiso over https
// (directly or through a trusted proxy): cookies are then Secure and
// __Host- prefixed.
func (s *server) secureRequest(r *http.Request) bool {
	return r.TLS != nil || s.forwardedHTTPS(r)
}

func (s *server) cookieName(r *http.Request, name string) string {
	if s.secureRequest(r) {
		return hostPrefix + name
	}
	return name
}

// setCookie sets a host-only cookie on path /, HttpOnly, SameSite=Lax,
// Secure over https; maxAge 0 makes a session cookie, a negative one
// deletes it.
func (s *server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge,
		Secure: s.secureRequest(r), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (s *server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(r, name))
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken returns the browser's CSRF token, setting a new one when it
// has none (double-submit: the form field must equal the cookie, which a
// cross-site page can neither read nor, with __Host-, overwrite).
func (s *server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if v := s.cookie(r, csrfCookie); len(v) == 43 {
		return v
	}
	v := permiso.NewOpaqueToken()
	s.setCookie(w, r, csrfCookie, v, 0)
	return v
}

// csrfValid reports whether the form's CSRF token equals the cookie's,
// compared in constant time.
func (s *server) csrfValid(r *http.Request, form url.Values) bool {
	c, f := s.cookie(r, csrfCookie), form.Get(csrfField)
	return len(c) == 43 && len(form[csrfField]) == 1 && subtle.ConstantTimeCompare([]byte(c), []byte(f)) == 1
}

// pageCSP is the Content-Security-Policy of the hosted pages: nothing but
// the stylesheet of this origin, forms posted to this origin (and the
// client's redirect URI origin, which a form's redirect reaches), never
// framed (clickjacking).
func pageCSP(redirectOrigin string) string {
	formAction := "'self'"
	if redirectOrigin != "" {
		formAction += " " + redirectOrigin
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

func origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// pageHeaders sets the headers of every hosted page and redirect:
// no-store (RFC 9700 §4.16 for pages carrying codes and forms), the
// page CSP.
func pageHeaders(w http.ResponseWriter, redirectOrigin string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", pageCSP(redirectOrigin))
}

// renderPage writes the named page template with status.
func (s *server) renderPage(w http.ResponseWriter, r *http.Request, status int, name, redirectOrigin string, d pageData) {
	d.AppName = s.opts.AppName
	if d.AppName == "" {
		d.AppName = "permiso"
	}
	d.StyleURL = s.apiPrefix() + pathHostedCSS
	var buf bytes.Buffer
	view, ok := pageViews[name]
	if !ok {
		panic("httpapi: no hosted page " + name)
	}
	// The page is rendered into memory whether or not the client is still
	// there: what the request is recorded as is decided by the error
	// writers alone (clientClosed), not by a render cut short.
	if err := view(d).Render(context.WithoutCancel(r.Context()), &buf); err != nil {
		s.logger.ErrorContext(r.Context(), "rendering a hosted page failed", "page", name, "error", err.Error(),
			"request_id", RequestID(r.Context()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w, redirectOrigin)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows an error that must not go back to a client (an unknown
// client or redirect URI, a CSRF failure).
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.renderPage(w, r, status, "error", "", pageData{Title: "Something went wrong", Message: message})
}

// redirectTo sends the browser to a client's redirect URI (303: the
// browser follows with GET, also after a form POST).
func redirectTo(w http.ResponseWriter, target string) {
	pageHeaders(w, origin(target))
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// handleHostedCSS serves the pages' stylesheet.
func handleHostedCSS() http.Handler {
	modified := time.Now().UTC()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeContent(w, r, "style.css", modified, bytes.NewReader(pagesCSS))
	})
}

// replyRecorder keeps what a page handler writes, so that a settling
// route (the sign-in form) writes it only once the request's limit batch
// is settled.
type replyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newReplyRecorder() *replyRecorder { return &replyRecorder{header: http.Header{}} }

func (rr *replyRecorder) Header() http.Header { return rr.header }

func (rr *replyRecorder) WriteHeader(status int) {
	if rr.status == 0 {
		rr.status = status
	}
}

func (rr *replyRecorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	return rr.body.Write(b)
}

// replay writes the recorded answer; nothing when nothing was written.
func (rr *replyRecorder) replay(w http.ResponseWriter) {
	if rr.status == 0 {
		return
	}
	h := w.Header()
	for k, vs := range rr.header {
		h[k] = vs
	}
	w.WriteHeader(rr.status)
	_, _ = w.Write(rr.body.Bytes())
}
