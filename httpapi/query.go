package httpapi

import (
	"net/http"
	"net/url"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// queryProblem describes every way a query string can fail to parse,
// without echoing the caller's bytes.
const queryProblem = "Malformed query string: more than 10000 parameters, a malformed %-escape or a ';' separator"

var (
	errQuery      = permiso.Errorf(permiso.EBADREQUEST, "%s", queryProblem)
	errQueryOAuth = oauth2.ErrInvalidRequest.WithDescription(queryProblem)
)

// wholeQuery refuses a request whose query string the server cannot parse
// whole: 400 bad_request, or RFC 6749 invalid_request (§5.2) on the OAuth
// endpoints (oauth). url.URL.Query, which the handlers use, silently drops
// what it cannot parse: past the limit on the number of parameters
// (GODEBUG urlmaxqueryparams, 10000 by default) it returns no parameter at
// all, so a filter would be dropped and a list answered unfiltered. Here
// the whole query is parsed first with url.ParseQuery and any error stops
// the request before authentication, limits or the store
// (docs/security-model.md, "Untrusted bytes"). Form bodies are parsed
// whole the same way where they are read (readParams).
//
// On the hosted pages of the browser flow (page), the refusal is the
// error page, as for any other request the page cannot use (docs/oidc.md).
func (s *server) wholeQuery(oauth, page bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
				switch {
				case page:
					s.errorPage(w, r, http.StatusBadRequest, "The request is not valid.")
				case oauth:
					writeOAuth(w, r, errQueryOAuth)
				default:
					writeError(w, r, errQuery)
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
