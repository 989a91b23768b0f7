package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// documentedRoutes returns "METHOD /path" for every operation of the
// document, mapped to the registered route that serves it ("METHOD
// /path", or the x-served-by pattern when one ServeMux pattern serves
// several documented paths).
func documentedRoutes(t *testing.T, s *server) map[string]string {
	t.Helper()
	b, err := json.Marshal(s.openAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	out := map[string]string{}
	for p, item := range doc.Paths {
		for m, op := range item {
			served := p
			if by, ok := op["x-served-by"].(string); ok {
				served = by
			}
			out[strings.ToUpper(m)+" "+p] = strings.ToUpper(m) + " " + served
		}
	}
	return out
}

// registeredRoutes returns "METHOD /path" for every route of s.routes.
func registeredRoutes(s *server) []string {
	var out []string
	for _, r := range s.routes {
		method, path, _ := strings.Cut(r.Pattern, " ")
		if path == "/{$}" {
			path = "/"
		}
		out = append(out, method+" "+path)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPICoversRoutes: every registered route is documented and every
// documented route is registered, for the default paths, for other paths
// (prefix, docs URLs), and with the documentation disabled.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newAPIEnv(t)
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"defaults", func(*Options) {}},
		{"other paths", func(o *Options) {
			o.APIV1Prefix, o.DocsURL, o.RedocURL, o.OpenAPIURL, o.MetricsPath = "/v2", "/api-docs", "/reference", "/spec.json", "/internal/metrics"
		}},
		{"root prefix", func(o *Options) { o.APIV1Prefix = "/" }},
		{"docs pages disabled", func(o *Options) { o.DocsURL, o.RedocURL = "", "" }},
		{"everything disabled", func(o *Options) { o.DocsURL, o.RedocURL, o.OpenAPIURL = "", "", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := e.srv.opts
			opts.MetricsPath = "/metrics"
			tc.edit(&opts)
			s := NewServer(Deps{Options: opts, Auth: e.svc, Store: e.db, Metrics: http.NotFoundHandler()}).(*server)
			reg, doc := registeredRoutes(s), documentedRoutes(t, s)
			served := map[string]bool{}
			for d, by := range doc {
				served[by] = true
				if !slices.Contains(reg, by) {
					t.Errorf("the OpenAPI document lists %s, which is not a registered route", d)
				}
			}
			for _, r := range reg {
				if !served[r] {
					t.Errorf("registered route %s is missing from the OpenAPI document", r)
				}
			}
			if len(reg) < 30 {
				t.Errorf("only %d routes registered; the test is not seeing the API", len(reg))
			}
		})
	}
}

// TestOpenAPIDocument: the served document, its schemas compile, every
// operation has responses, security schemes and both error envelopes.
func TestOpenAPIDocument(t *testing.T) {
	e := newAPIEnv(t)
	w := e.call(http.MethodGet, "/openapi.json", "/openapi.json", "", nil)
	doc := want(t, w, http.StatusOK, "GET /openapi.json")
	info := doc["info"].(map[string]any)
	if info["title"] != e.srv.opts.AppName || info["version"] == "" {
		t.Errorf("info %v", info)
	}
	comps := doc["components"].(map[string]any)
	sec := comps["securitySchemes"].(map[string]any)
	if sec["bearerAuth"].(map[string]any)["scheme"] != "bearer" || sec["clientBasic"].(map[string]any)["scheme"] != "basic" {
		t.Errorf("security schemes %v", sec)
	}
	schemas := comps["schemas"].(map[string]any)
	for _, name := range []string{"Error", "OAuthError"} {
		if schemas[name] == nil {
			t.Errorf("no %s envelope", name)
		}
	}
	// Every schema in the document compiles (JSON Schema 2020-12).
	c := jsonschema.NewCompiler()
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(w.Body.String()))
	if err := c.AddResource("mem://doc.json", inst); err != nil {
		t.Fatal(err)
	}
	for name := range schemas {
		if _, err := c.Compile("mem://doc.json#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	for p, item := range doc["paths"].(map[string]any) {
		for m, o := range item.(map[string]any) {
			op := o.(map[string]any)
			if op["responses"] == nil || op["summary"] == "" || op["security"] == nil {
				t.Errorf("%s %s: incomplete operation %v", m, p, op)
			}
			for code, r := range op["responses"].(map[string]any) {
				content, _ := r.(map[string]any)["content"].(map[string]any)
				if js, ok := content["application/json"].(map[string]any); ok {
					loc := "mem://doc.json#/paths/" + pointerEscape(p) + "/" + m + "/responses/" + code + "/content/application~1json/schema"
					if _, err := c.Compile(loc); err != nil {
						t.Errorf("%s %s %s: %v (%v)", m, p, code, err, js)
					}
				}
			}
		}
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
}

// TestDocsPages: the pages and their embedded assets, with their own CSP;
// every other response keeps the strict JSON one.
func TestDocsPages(t *testing.T) {
	e := newAPIEnv(t)
	for _, tc := range []struct{ page, script string }{
		{"/docs", "/docs/assets/swagger-ui-bundle.js"},
		{"/redoc", "/redoc/assets/redoc.standalone.js"},
	} {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.page, nil))
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", tc.page, w.Code, w.Header())
		}
		csp := w.Header().Get("Content-Security-Policy")
		if csp != docsCSP || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q", tc.page, csp)
		}
		body := w.Body.String()
		if !strings.Contains(body, tc.script) || !strings.Contains(body, `data-openapi-url="/openapi.json"`) ||
			strings.Contains(body, "<script>") || strings.Contains(body, "https://") {
			t.Errorf("%s: page %s", tc.page, body)
		}
		w = httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.script, nil))
		if w.Code != 200 || w.Body.Len() < 100000 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Errorf("%s: %d %q %d bytes", tc.script, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
	}
	for _, p := range []string{"/docs/assets/nope.js", "/docs/assets/..%2fdocs.go", "/docs/assets/README.md"} {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
	if w.Header().Get("Content-Security-Policy") != APIContentSecurityPolicy {
		t.Errorf("/health CSP %q", w.Header().Get("Content-Security-Policy"))
	}
}
