package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// openAPIValidator holds the httpapi tests to the served OpenAPI document
// (httpapi/openapi.yaml, docs/api.md "The OpenAPI document"): every
// request a test sends through it and every response it gets back.
//
// Requests: the path, query and header parameters, the security
// requirement and the body (JSON or form) are validated against the
// operation. Tests also send invalid requests on purpose, so a request
// the document rejects is not an error by itself; it is one when the
// server accepts it (a 2xx or 3xx): then the server and the document
// disagree about what is valid. Tests of hostile bytes (invalid UTF-8, NUL,
// control characters), which no schema describes, are exempt: they send
// through a copy of their environment made by hostile().
//
// Responses: the status must be documented for the operation, the body
// must match the schema of its Content-Type, documented headers must
// match their schemas, and Retry-After and WWW-Authenticate, when sent,
// must be documented for that status.
type openAPIValidator struct {
	doc *openapi3.T
	mu  sync.Mutex
	// checked records "METHOD route status" validated at least once.
	checked map[string]bool
}

// checkedHeaders are the response headers that must be documented where
// they are sent.
var checkedHeaders = []string{"Retry-After", "WWW-Authenticate"}

// anyUUID accepts every UUID version (RFC 9562), as uuid.Parse does.
const anyUUID = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// openAPIOptions are the validation options: the formats the document
// uses are asserted (date and date-time are kin-openapi's own).
func openAPIOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		MultiError:            true,
		IncludeResponseStatus: true,
		AuthenticationFunc:    checkCredentialsSent,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(anyUUID)),
			openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
		},
	}
}

// checkCredentialsSent checks that a request carries the credentials of
// a security scheme the operation lists: a Bearer or a Basic
// Authorization header, or client credentials in the body for the
// clientBasic scheme (client_secret_post, RFC 6749 section 2.3.1). It
// does not check the credentials themselves: the server does.
func checkCredentialsSent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	auth := r.Header.Get("Authorization")
	switch in.SecurityScheme.Scheme {
	case "bearer":
		if strings.HasPrefix(auth, "Bearer ") {
			return nil
		}
	case "basic":
		if strings.HasPrefix(auth, "Basic ") {
			return nil
		}
		if r.Body != nil {
			// The body was copied for this check (validateRequest).
			if b, ok := r.Body.(*bodyCopy); ok && bytes.Contains(b.data, []byte("client_id")) {
				return nil
			}
		}
	}
	return fmt.Errorf("no %s credentials", in.SecuritySchemeName)
}

// bodyCopy is a request body that checkCredentialsSent can look into.
type bodyCopy struct {
	*bytes.Reader
	data []byte
}

func (*bodyCopy) Close() error { return nil }

func newOpenAPIValidator(t *testing.T, s *server) *openAPIValidator {
	t.Helper()
	doc := loadOpenAPI(t, s)
	return &openAPIValidator{doc: doc, checked: map[string]bool{}}
}

// loadOpenAPI loads the document s serves with kin-openapi and validates
// it as an OpenAPI 3.1 document.
func loadOpenAPI(t *testing.T, s *server) *openapi3.T {
	t.Helper()
	m, err := s.openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("OpenAPI: load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI: the document is not valid OpenAPI 3.1: %v", err)
	}
	return doc
}

// route returns the operation of method on the documented path route.
func (v *openAPIValidator) route(method, route string) (*routers.Route, error) {
	item := v.doc.Paths.Value(route)
	if item == nil {
		return nil, fmt.Errorf("%s is not a documented path", route)
	}
	op := item.GetOperation(method)
	if op == nil {
		return nil, fmt.Errorf("%s %s is not documented", method, route)
	}
	return &routers.Route{Spec: v.doc, Path: route, PathItem: item, Method: method, Operation: op}, nil
}

// pathParams matches the request path to the route template and returns
// the values of its {parameters}, unescaped.
func pathParams(route string, u *url.URL) (map[string]string, error) {
	tpl := strings.Split(route, "/")
	got := strings.Split(u.EscapedPath(), "/")
	if len(tpl) != len(got) {
		return nil, fmt.Errorf("path %s does not match %s", u.EscapedPath(), route)
	}
	out := map[string]string{}
	for i, seg := range tpl {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			val, err := url.PathUnescape(got[i])
			if err != nil {
				return nil, err
			}
			out[strings.Trim(seg, "{}")] = val
			continue
		}
		if seg != got[i] {
			return nil, fmt.Errorf("path %s does not match %s", u.EscapedPath(), route)
		}
	}
	return out, nil
}

// exchange validates one request (r with its body, already sent) and the
// response w against the operation of method on route. hostile skips the
// request's validation.
func (v *openAPIValidator) exchange(t *testing.T, route string, r *http.Request, body []byte, w *httptest.ResponseRecorder, hostile bool) {
	t.Helper()
	rt, err := v.route(r.Method, route)
	if err != nil {
		t.Errorf("OpenAPI: %v", err)
		return
	}
	params, err := pathParams(route, r.URL)
	if err != nil {
		t.Errorf("OpenAPI: %v", err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r.Clone(context.Background()), PathParams: params, Route: rt, Options: openAPIOptions()}
	in.Request.Body = &bodyCopy{bytes.NewReader(body), body}
	in.Request.ContentLength = int64(len(body))
	if !hostile {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && w.Code < 400 {
			t.Errorf("OpenAPI: %s %s: the document rejects this request, yet the server answered %d:\n%v\nrequest body: %.500s",
				r.Method, r.URL, w.Code, err, body)
		}
	}
	v.response(t, in, w)
}

// response validates w against the operation of in.
func (v *openAPIValidator) response(t *testing.T, in *openapi3filter.RequestValidationInput, w *httptest.ResponseRecorder) {
	t.Helper()
	op, route := in.Route.Operation, in.Route.Method+" "+in.Route.Path
	v.mu.Lock()
	v.checked[fmt.Sprintf("%s %d", route, w.Code)] = true
	v.mu.Unlock()
	ref := op.Responses.Status(w.Code)
	if ref == nil || ref.Value == nil {
		t.Errorf("OpenAPI: %s does not document status %d (body %.500s)", route, w.Code, w.Body)
		return
	}
	resp := ref.Value
	for _, h := range checkedHeaders {
		if w.Header().Get(h) != "" && resp.Headers[h] == nil {
			t.Errorf("OpenAPI: %s %d sends %s: %q, which the document does not list", route, w.Code, h, w.Header().Get(h))
		}
	}
	if len(resp.Content) == 0 {
		if w.Body.Len() > 0 {
			t.Errorf("OpenAPI: %s %d documents no body, got %.500s", route, w.Code, w.Body)
		}
		return
	}
	ct := w.Header().Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	opts := openAPIOptions()
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		// Pages, assets and metrics: the type is checked, not the bytes.
		opts.ExcludeResponseBody = true
		if resp.Content.Get(ct) == nil && resp.Content.Get("application/octet-stream") == nil {
			t.Errorf("OpenAPI: %s %d: Content-Type %q is not documented", route, w.Code, ct)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(), Options: opts}
	out.SetBodyBytes(w.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		var me openapi3.MultiError
		if errors.As(err, &me) {
			err = errors.Join(me...)
		}
		t.Errorf("OpenAPI: %s %d: the response does not match the document: %v\nbody: %.1000s", route, w.Code, err, w.Body)
	}
}
