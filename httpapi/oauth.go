package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

// Content types of OAuth requests.
const (
	contentTypeForm = "application/x-www-form-urlencoded"
	contentTypeJSON = "application/json"
)

var (
	errFormRequired    = oauth2.ErrInvalidRequest.WithDescription("Content-Type must be " + contentTypeForm)
	errFormOrJSON      = oauth2.ErrInvalidRequest.WithDescription("Content-Type must be " + contentTypeForm + " or " + contentTypeJSON)
	errMalformed       = oauth2.ErrInvalidRequest.WithDescription("Malformed request body")
	errNotUnicodeParam = oauth2.ErrInvalidRequest.WithDescription("Request body holds a parameter that is not valid UTF-8")
	errBodyTooLarge    = &oauth2.Error{Code: "invalid_request", Description: "Request body too large", Status: http.StatusRequestEntityTooLarge}
	errNoCaller        = oauth2.ErrInvalidClient.WithDescription("Client authentication or a bearer token is required")
	// errNoCallerChallenge is the one answer to a request with neither
	// client credentials nor a bearer token. writeCallerError recognises it
	// by identity: errors.Is would match every invalid_client, since
	// oauth2.Error.Is compares codes.
	errNoCallerChallenge = errNoCaller.WithBasicChallenge()
)

// readParams reads the parameters of an OAuth request from its body: an
// application/x-www-form-urlencoded form (RFC 6749 §3.2), or, where
// allowJSON (the original service's JSON endpoints), a flat JSON object.
// Repeated parameters are kept as repeated values so the OAuth layer can
// reject them (RFC 6749 §3.2); the query string is never read, so
// credentials cannot come from a URL.
func readParams(r *http.Request, allowJSON bool) (url.Values, error) {
	return readParamsIn(r, allowJSON, nil)
}

// readParamsIn is readParams parsing a form into sc (parseFormIn) when sc
// is not nil: the handler then gives sc back (formScratch.release) once
// nothing it returns holds a parameter any longer.
func readParamsIn(r *http.Request, allowJSON bool, sc *formScratch) (url.Values, error) {
	mediaType := requestMediaType(r)
	switch {
	case mediaType == contentTypeForm:
	case mediaType == contentTypeJSON && allowJSON:
		return readJSONParams(r)
	case allowJSON:
		return nil, errFormOrJSON
	default:
		return nil, errFormRequired
	}
	buf := formBuffers.Get().(*[]byte)
	body, err := readBody(r, *buf)
	form := string(body)
	clear(body)
	if cap(body) <= maxPooledForm {
		*buf = body[:0]
		formBuffers.Put(buf)
	}
	if err != nil {
		return nil, readError(err)
	}
	return readFormIn(form, sc)
}

// readForm parses a form body (parseForm) and refuses it, invalid_request,
// when a name or value is not valid UTF-8 once unescaped: a value is
// either taken as sent or not at all (docs/security-model.md, "Untrusted
// bytes"), never stored or echoed with bytes no backend agrees on.
func readForm(form string) (url.Values, error) { return readFormIn(form, nil) }

// readFormIn is readForm parsing into sc (parseFormIn).
func readFormIn(form string, sc *formScratch) (url.Values, error) {
	values, err := parseFormIn(form, sc)
	if err != nil {
		return nil, errMalformed
	}
	// Without an escape, every name and value is a piece of the form cut
	// at ASCII bytes: they are all valid when the form is.
	if strings.IndexByte(form, '%') < 0 && utf8.ValidString(form) {
		return values, nil
	}
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return nil, errNotUnicodeParam
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, errNotUnicodeParam
			}
		}
	}
	return values, nil
}

// formBuffers holds the buffers readParams reads form bodies into
// (*[]byte, 2 KiB to start: an introspection's form is about one). The
// form is parsed from a copy, so a buffer is free again at once; it is
// cleared before it goes back, so that no request's token or secret
// stays in it, and one grown past maxPooledForm is left to the collector.
var formBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

const maxPooledForm = 64 << 10

// maxPlainFormParams bounds the parameters parseForm reads itself; a
// form with more goes to url.ParseQuery, which enforces its own limit.
const maxPlainFormParams = 64

// parseForm is url.ParseQuery(form) (TestParseFormIsParseQuery). A form
// with nothing to unescape (no '%', no '+'), no ';' and a few parameters,
// as an introspection's or a token request's is, is split where it
// stands: url.ParseQuery unescapes each key and value byte by byte, and
// an introspected token alone is most of a kilobyte.
func parseForm(form string) (url.Values, error) { return parseFormIn(form, nil) }

// parseFormIn is parseForm putting a form of at most maxScratchParams
// pairs that it splits itself into sc's map and array, when sc is not
// nil, instead of new ones.
func parseFormIn(form string, sc *formScratch) (url.Values, error) {
	if strings.IndexByte(form, '%') >= 0 || strings.IndexByte(form, '+') >= 0 ||
		strings.IndexByte(form, ';') >= 0 || strings.Count(form, "&") >= maxPlainFormParams {
		return url.ParseQuery(form)
	}
	// The first value of every key in one array, each key's slice capped
	// at its one value: a repeated key's append copies instead of writing
	// over the next key's.
	var values url.Values
	var firsts []string
	if n := strings.Count(form, "&") + 1; sc != nil && n <= len(sc.firsts) {
		values, firsts = sc.values, sc.firsts[:0]
	} else {
		values, firsts = url.Values{}, make([]string, 0, n)
	}
	for form != "" {
		var pair string
		pair, form, _ = strings.Cut(form, "&")
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if vs, ok := values[key]; ok {
			values[key] = append(vs, value)
			continue
		}
		firsts = append(firsts, value)
		values[key] = firsts[len(firsts)-1 : len(firsts) : len(firsts)]
	}
	return values, nil
}

// formScratch is a map and an array that parseFormIn parses a small form
// into, so that a handler that keeps no parameter past its own return
// (the introspection) makes neither: the map (with its first group of
// eight entries) and the array of first values were three allocations of
// every such request. A handler takes one from formScratches and gives it
// back with release once nothing it returns holds a parameter; release
// clears both first, so that no request's token or secret stays in them
// and no request sees another's parameters.
type formScratch struct {
	values url.Values
	firsts [maxScratchParams]string
}

// maxScratchParams is the pairs a formScratch holds: as many as a map's
// first group, so that its map never grows.
const maxScratchParams = 8

var formScratches = sync.Pool{New: func() any {
	return &formScratch{values: make(url.Values, maxScratchParams)}
}}

// getFormScratch takes a cleared formScratch from formScratches.
func getFormScratch() *formScratch { return formScratches.Get().(*formScratch) }

// release clears sc and gives it back to formScratches.
func (sc *formScratch) release() {
	clear(sc.values)
	clear(sc.firsts[:])
	formScratches.Put(sc)
}

// requestMediaType is the media type of the request's Content-Type as
// mime.ParseMediaType gives it (lower case, without parameters; "" when
// it cannot be parsed). The two that OAuth requests use, sent exactly so
// (as clients send them), are recognised without parsing: parsing makes a
// map of parameters on every request (TestRequestMediaType).
func requestMediaType(r *http.Request) string {
	ct := headerValue(r.Header, "Content-Type")
	if ct == contentTypeForm || ct == contentTypeJSON {
		return ct
	}
	mediaType, _, _ := mime.ParseMediaType(ct)
	return mediaType
}

// readBody reads the whole body into b's array (from its start), or a
// larger one: one of the declared Content-Length when there is one, else
// growing as io.ReadAll does (from 512 bytes). The body reader already
// refuses a body longer or shorter than declared, and limitBody caps it.
func readBody(r *http.Request, b []byte) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > DefaultMaxBodyBytes {
		n = 511
	}
	b = slices.Grow(b[:0], int(n)+1) // +1: the read that sees io.EOF needs room
	for {
		m, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than declared: let it grow
		}
	}
}

// readJSONParams reads a JSON object whose members are strings, booleans
// or numbers into url.Values. A member named twice becomes a repeated
// value (and is then rejected like a repeated form parameter); null
// members are absent; nested values are invalid_request, and so is a
// string that is not valid Unicode (jsonUnicode).
func readJSONParams(r *http.Request) (url.Values, error) {
	body, err := readBody(r, nil)
	if err != nil {
		return nil, readError(err)
	}
	if !jsonUnicode(body) {
		return nil, errNotUnicodeParam
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, jsonReadError(err)
	}
	values := url.Values{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, jsonReadError(err)
		}
		name, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, jsonReadError(err)
		}
		switch v := v.(type) {
		case nil:
		case string:
			values.Add(name, v)
		case bool:
			values.Add(name, strconv.FormatBool(v))
		case json.Number:
			values.Add(name, v.String())
		default:
			return nil, oauth2.ErrInvalidRequest.WithDescription("Parameters must be strings")
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonReadError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errMalformed
	}
	return values, nil
}

func jsonReadError(err error) error {
	if err == nil {
		return errMalformed
	}
	return readError(err)
}

func readError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return errBodyTooLarge
	}
	return errMalformed
}

// meta is the request metadata the OAuth core records. Every value is
// storable: the client address is parsed (netip), the request id is
// validated (validRequestID) and the User-Agent cleaned (cleanUserAgent).
func meta(r *http.Request) oauth2.RequestMeta {
	return oauth2.RequestMeta{
		IP:        ClientIP(r.Context()),
		UserAgent: userAgent(r),
		RequestID: RequestID(r.Context()),
	}
}

// oauthErrorBody is the RFC 6749 §5.2 error response, with locked_until
// for account_locked (docs/oauth.md).
type oauthErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	LockedUntil      string `json:"locked_until,omitempty"`
	MFAToken         string `json:"mfa_token,omitempty"`
}

// writeOAuth writes err as an RFC 6749 §5.2 error with the headers it
// calls for: Cache-Control: no-store and Pragma: no-cache (§5.1),
// WWW-Authenticate: Basic after a failed Basic authentication (§5.2),
// Retry-After for 429 and 503. Server errors are logged once (here,
// unless the OAuth service logged them already: oauth2.Error.Logged) and
// never shown.
func writeOAuth(w http.ResponseWriter, r *http.Request, err error) {
	if clientClosed(w, r, err) {
		return
	}
	e := oauth2.AsError(err)
	body := oauthErrorBody{Error: e.Code, ErrorDescription: e.Description}
	if e.Status >= 500 && !e.Logged() {
		level := slog.LevelError
		if e.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		loggerFrom(r.Context()).LogAttrs(r.Context(), level, "oauth endpoint failed",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("path", r.URL.Path),
			slog.String("error", errString(err)))
	}
	if e.Status == http.StatusInternalServerError {
		body.ErrorDescription = internalDescription
	}
	h := w.Header()
	if e.BasicChallenge {
		h.Add("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1_000_000_000)))
	}
	if e.LockedUntil != nil {
		body.LockedUntil = timestamp(*e.LockedUntil)
	}
	body.MFAToken = e.MFAToken
	writeNoStore(w, e.Status, body)
}

// writeNoStore writes a JSON response that caches must not keep (RFC 6749
// §5.1: token responses and errors carry credentials).
func writeNoStore(w http.ResponseWriter, status int, v any) {
	setNoStore(w.Header())
	writeJSON(w, status, v)
}

// setNoStore sets the headers of writeNoStore: Cache-Control: no-store
// and Pragma: no-cache (RFC 6749 §5.1).
func setNoStore(h http.Header) {
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
}

// handleToken serves the token endpoint (RFC 6749 §3.2) and its two
// compatibility aliases: /auth/refresh (grant refresh_token; JSON
// {"refresh_token"} as the original, or a form) and /auth/service-token
// (grant client_credentials). grant is the grant an alias serves, or ""
// for /auth/token. Every path runs the same pipeline: parse once, then
// client authentication, grant, scope policy, response. Errors before the
// pipeline still count under RATE_LIMIT_API (the route settles the batch
// before any reply).
func (s *server) handleToken(grant string) settlingHandler {
	return func(r *http.Request, limits *permiso.Limits) reply {
		params, err := readParams(r, grant == oauth2.GrantRefreshToken)
		if err != nil {
			return oauthReply(r, err)
		}
		if grant != "" {
			switch given := params["grant_type"]; {
			case len(given) == 0 || (len(given) == 1 && given[0] == ""):
				params.Set("grant_type", grant)
			case len(given) == 1 && given[0] != grant:
				return oauthReply(r, oauth2.ErrUnsupportedGrantType.WithDescription("This endpoint serves grant_type="+grant))
			}
		}
		req, err := oauth2.ParseTokenRequest(params, r.Header.Get("Authorization"))
		if err != nil {
			return oauthReply(r, err)
		}
		// The per-IP limit depends on the grant; the pipeline counts it
		// with RATE_LIMIT_API before any grant work, and for client
		// credentials with the client's own limits, in one batch.
		s.addLimit(limits, r, grantLimit(req.GrantType))
		resp, err := s.auth.Token(r.Context(), req, meta(r), limits)
		return func(w http.ResponseWriter) {
			tokenRateLimitHeaders(w, resp, err)
			if err != nil {
				writeOAuth(w, r, err)
				return
			}
			writeNoStore(w, http.StatusOK, resp)
		}
	}
}

// caller authenticates the caller of the introspection or revocation
// endpoint: a bearer token (RFC 7662 §2.1 allows one), or client
// credentials by HTTP Basic or in the body (RFC 7009 §2.1), with the
// request's limit checks not sent yet (limits). record writes what a
// client authentication records (audit event or usage count); the handler
// calls it once the request's limits have admitted the request. It is
// never nil. A client authenticated by its credentials is written to *cl
// (oauth2.Service.AuthenticateClient), which c then points to.
func (s *server) caller(r *http.Request, params url.Values, limits *permiso.Limits, cl *permiso.ServiceClient) (c oauth2.Caller, record func(), err error) {
	record = func() {}
	if token, ok := bearerToken(r); ok {
		p, err := s.auth.Authenticate(r.Context(), token, limits)
		if err != nil {
			return oauth2.Caller{}, record, err
		}
		return oauth2.Caller{Principal: &p}, record, nil
	}
	id, secret, method, err := oauth2.ParseClientCredentials(params, headerValue(r.Header, "Authorization"))
	if err != nil {
		return oauth2.Caller{}, record, err
	}
	if method == oauth2.ClientAuthNone {
		return oauth2.Caller{}, record, errNoCallerChallenge
	}
	record, err = s.auth.AuthenticateClient(r.Context(), id, secret, method, meta(r), limits, cl)
	if err != nil {
		return oauth2.Caller{}, record, err
	}
	return oauth2.Caller{Client: cl}, record, nil
}

// writeCallerError answers a failed caller authentication: a bad bearer
// token is 401 invalid_token with its RFC 6750 §3 challenge; client
// failures are RFC 6749 §5.2 invalid_client; a missing caller gets both
// challenges.
func writeCallerError(w http.ResponseWriter, r *http.Request, err error) {
	switch permiso.ErrorCode(err) {
	case permiso.EINVALIDTOKEN, permiso.EUNAUTHORIZED:
		desc := permiso.ErrorMessage(err)
		w.Header().Set("WWW-Authenticate", bearerChallenge(permiso.EINVALIDTOKEN, desc))
		writeOAuth(w, r, &oauth2.Error{Code: "invalid_token", Description: desc, Status: http.StatusUnauthorized})
		return
	}
	if oe, ok := errors.AsType[*oauth2.Error](err); ok && oe == errNoCallerChallenge {
		w.Header().Add("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	}
	writeOAuth(w, r, err)
}

// tokenParam returns the single "token" parameter of an introspection or
// revocation request.
func tokenParam(params url.Values) (string, error) {
	switch t := params["token"]; {
	case len(t) > 1:
		return "", oauth2.ErrInvalidRequest.WithDescription("Parameter token was sent more than once")
	case len(t) == 0 || t[0] == "":
		return "", oauth2.ErrInvalidRequest.WithDescription("Missing parameter: token")
	default:
		return t[0], nil
	}
}

// handleIntrospect serves token introspection (RFC 7662). Inactive,
// unknown and foreign tokens all answer exactly {"active": false}. The
// request's per-IP limits travel with the revocation lookups of the
// introspected token (and of a bearer caller's own): one batch, settled
// before any reply.
func (s *server) handleIntrospect() settlingHandler {
	return func(r *http.Request, limits *permiso.Limits) reply {
		// Nothing the handler returns holds a parameter: the reply holds
		// the answer's encoding, and the record copies of what it needs.
		sc := getFormScratch()
		defer sc.release()
		params, err := readParamsIn(r, true, sc)
		if err != nil {
			return oauthReply(r, err)
		}
		hint := params.Get("token_type_hint")
		if bearer, ok := bearerToken(r); ok {
			if token, terr := tokenParam(params); terr == nil {
				res, callerErr, err := s.auth.IntrospectAsBearer(r.Context(), bearer, token, hint, limits)
				if callerErr != nil {
					return callerErrorReply(r, recordNothing, callerErr)
				}
				return introspectionReply(r, recordNothing, res, err)
			}
		}
		// The client caller lives on this stack: the introspection keeps
		// no pointer to it.
		var cl permiso.ServiceClient
		caller, record, err := s.caller(r, params, limits, &cl)
		if err != nil {
			return callerErrorReply(r, record, err)
		}
		token, err := tokenParam(params)
		if err != nil {
			return oauthReply(r, err)
		}
		res, err := s.auth.Introspect(r.Context(), caller, token, hint, limits)
		return introspectionReply(r, record, res, err)
	}
}

// recordNothing is the record of a caller whose authentication records
// nothing (a bearer).
func recordNothing() {}

// callerErrorReply answers a failed caller authentication
// (writeCallerError) once record has run.
func callerErrorReply(r *http.Request, record func(), err error) reply {
	return func(w http.ResponseWriter) {
		record()
		writeCallerError(w, r, err)
	}
}

// introspectionReply answers an introspection, res or err, once record
// has run. res is encoded now, as writeNoStore would encode it, so that
// the reply holds only the encoding: the answer is neither copied to the
// heap nor converted to an interface.
func introspectionReply(r *http.Request, record func(), res oauth2.Introspection, err error) reply {
	if err != nil {
		return func(w http.ResponseWriter) {
			record()
			writeOAuth(w, r, err)
		}
	}
	buf, b := appendJSON(res.AppendJSON)
	return func(w http.ResponseWriter) {
		record()
		setNoStore(w.Header())
		writeEncoded(w, http.StatusOK, buf, b)
	}
}

// handleRevoke serves token revocation (RFC 7009 §2.2: 200 for unknown
// tokens too).
func (s *server) handleRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params, err := readParams(r, true)
		if err != nil {
			writeOAuth(w, r, err)
			return
		}
		// The request's limits were settled before this handler
		// (handle), so what the authentication records is recorded now.
		caller, record, err := s.caller(r, params, nil, new(permiso.ServiceClient))
		record()
		if err != nil {
			writeCallerError(w, r, err)
			return
		}
		token, err := tokenParam(params)
		if err != nil {
			writeOAuth(w, r, err)
			return
		}
		// An administrator for admin:tokens revokes other users' and
		// clients' tokens within the delegation rule (package identity,
		// docs/security-model.md).
		if p := caller.Principal; p != nil && p.Can(oauth2.ScopeAdminTokens) {
			d, err := identity.DelegationFor(r.Context(), s.store, principalActor(*p, true))
			if err != nil {
				writeOAuth(w, r, err)
				return
			}
			caller.Delegation = d
		}
		ctx := permiso.ContextWithRequestMeta(r.Context(), meta(r))
		if err := s.auth.Revoke(ctx, caller, token, params.Get("token_type_hint")); err != nil {
			if permiso.ErrorCode(err) == permiso.EFORBIDDEN {
				// A refusal of the delegation rule: 403 forbidden, as
				// the management API answers it.
				w.Header().Set("Cache-Control", "no-store")
				writeError(w, r, err)
				return
			}
			writeOAuth(w, r, err)
			return
		}
		writeNoStore(w, http.StatusOK, map[string]string{"message": "Token revoked successfully"})
	})
}

// handleLogout ends the caller's current session, or with {"all": true}
// every session of the user (docs/oauth.md). The body is optional.
func (s *server) handleLogout() http.Handler {
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		all := false
		if r.ContentLength != 0 {
			params, err := readParams(r, true)
			if err != nil {
				return permiso.Invalid(oauth2.AsError(err).Description)
			}
			if v := params.Get("all"); v != "" {
				b, perr := strconv.ParseBool(strings.ToLower(v))
				if perr != nil || len(params["all"]) > 1 {
					return permiso.Invalid("Request validation failed",
						permiso.FieldError{Field: "all", Message: "must be a boolean"})
				}
				all = b
			}
		}
		p, _ := principalFrom(r.Context())
		ctx := permiso.ContextWithRequestMeta(r.Context(), meta(r))
		n, err := s.auth.Logout(ctx, p, all)
		if err != nil {
			return err
		}
		writeNoStore(w, http.StatusOK, map[string]any{
			"message":             "Logged out successfully",
			"sessions_terminated": n,
		})
		return nil
	})
}

// handleChangePassword lets a user whose password expired set a new one
// with their current credentials (docs/oauth.md). Wrong credentials are the
// token endpoint's invalid_grant; a new password that breaks the policy or
// the history is 422 validation_error naming each broken rule.
func (s *server) handleChangePassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params, err := readParams(r, true)
		if err != nil {
			writeOAuth(w, r, err)
			return
		}
		var missing []permiso.FieldError
		get := func(name string) string {
			v := params[name]
			if len(v) != 1 || v[0] == "" {
				missing = append(missing, permiso.FieldError{Field: name, Message: "is required (exactly once)"})
				return ""
			}
			return v[0]
		}
		username, current, next := get("username"), get("current_password"), get("new_password")
		if len(missing) > 0 {
			writeError(w, r, permiso.Invalid("Request validation failed", missing...))
			return
		}
		err = s.auth.ChangeExpiredPassword(r.Context(), username, current, next, meta(r))
		var oe *oauth2.Error
		switch {
		case errors.As(err, &oe):
			writeOAuth(w, r, err)
		case err != nil:
			writeError(w, r, err)
		default:
			writeNoStore(w, http.StatusOK, map[string]string{"message": "Password changed successfully"})
		}
	})
}
