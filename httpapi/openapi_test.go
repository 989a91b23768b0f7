package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/permiso/permiso/identity"
)

// documentedRoutes returns "METHOD /path" for every operation of the
// document s serves.
func documentedRoutes(t *testing.T, s *server) []string {
	t.Helper()
	doc, err := s.openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v, want 3.1.0", doc["openapi"])
	}
	var out []string
	for p, item := range doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	slices.Sort(out)
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

// pointerEscape escapes a JSON-pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
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
		{"no metrics", func(o *Options) { o.MetricsPath = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := e.srv.opts
			opts.MetricsPath = "/metrics"
			tc.edit(&opts)
			s := NewServer(Deps{Options: opts, Auth: e.svc, Store: e.db, Metrics: http.NotFoundHandler()}).(*server)
			reg, doc := registeredRoutes(s), documentedRoutes(t, s)
			for _, d := range doc {
				if !slices.Contains(reg, d) {
					t.Errorf("the OpenAPI document lists %s, which is not a registered route", d)
				}
			}
			for _, r := range reg {
				if !slices.Contains(doc, r) {
					t.Errorf("registered route %s is missing from the OpenAPI document", r)
				}
			}
			if len(reg) < 30 {
				t.Errorf("only %d routes registered; the test is not seeing the API", len(reg))
			}
		})
	}
}

// TestOpenAPIDocument: the served document is valid OpenAPI 3.1
// (kin-openapi's validation), carries the configured title and version,
// has no jsonSchemaDialect (Swagger UI refuses to render a non-default
// one), and every schema compiles as JSON Schema 2020-12.
// TestOpenAPIYAMLValues: jsonValue converts mappings and lists at any
// depth and refuses a mapping key that is not a string, however deep.
func TestOpenAPIYAMLValues(t *testing.T) {
	decode := func(src string) (any, error) {
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		return jsonValue(v)
	}
	v, err := decode("a: [1, {b: {c: x}}, [y]]\nd: {e: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != `{"a":[1,{"b":{"c":"x"}},["y"]],"d":{"e":true}}` {
		t.Errorf("converted to %s (%v)", b, err)
	}
	if _, err := decode("a: [1, {b: [{2: x}]}]\n"); err == nil || !strings.Contains(err.Error(), "mapping key 2 is not a string") {
		t.Errorf("a number as a mapping key: %v", err)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	e := newAPIEnv(t)
	w := e.call(http.MethodGet, "/openapi.json", "/openapi.json", "", nil)
	doc := want(t, w, http.StatusOK, "GET /openapi.json")
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	info := doc["info"].(map[string]any)
	if info["title"] != e.srv.opts.AppName || info["version"] != e.srv.opts.Version {
		t.Errorf("info %v, want title %q, version %q", info, e.srv.opts.AppName, e.srv.opts.Version)
	}
	if _, ok := doc["jsonSchemaDialect"]; ok {
		t.Error("the document sets jsonSchemaDialect; Swagger UI shows an error for a non-default dialect")
	}
	loadOpenAPI(t, e.srv) // fails unless it is valid OpenAPI 3.1
	comps := doc["components"].(map[string]any)
	sec := comps["securitySchemes"].(map[string]any)
	if sec["bearerAuth"].(map[string]any)["scheme"] != "bearer" || sec["clientBasic"].(map[string]any)["scheme"] != "basic" {
		t.Errorf("security schemes %v", sec)
	}
	c := jsonschema.NewCompiler()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("mem://doc.json", inst); err != nil {
		t.Fatal(err)
	}
	schemas := comps["schemas"].(map[string]any)
	for _, name := range []string{"Error", "OAuthError"} {
		if schemas[name] == nil {
			t.Errorf("no %s envelope", name)
		}
	}
	for name := range schemas {
		if _, err := c.Compile("mem://doc.json#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

// docWalker walks the served document and reports what lacks a
// description or an example, and every example that does not match its
// schema.
type docWalker struct {
	t    *testing.T
	doc  map[string]any
	c    *jsonschema.Compiler
	seen map[string]bool // schema pointers already walked
	n    map[string]int  // what was checked, by kind
}

// at returns the value at a JSON pointer ("#/a/b") of the document.
func (d *docWalker) at(ptr string) any {
	var v any = d.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// resolve follows a $ref (to components) and returns the target and its
// pointer.
func (d *docWalker) resolve(v map[string]any, ptr string) (map[string]any, string) {
	for {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v, ptr
		}
		next, _ := d.at(ref).(map[string]any)
		if next == nil {
			d.t.Errorf("%s: $ref %s resolves to nothing", ptr, ref)
			return map[string]any{}, ref
		}
		v, ptr = next, ref
	}
}

func text(v map[string]any, key string) string {
	s, _ := v[key].(string)
	return strings.TrimSpace(s)
}

// validate checks value against the schema at ptr.
func (d *docWalker) validate(ptr string, value any, what string) {
	d.n["examples"]++
	sch, err := d.c.Compile("mem://doc.json" + ptr)
	if err != nil {
		d.t.Errorf("%s: compile %s: %v", what, ptr, err)
		return
	}
	// Round-trip through JSON so numbers are what the validator expects.
	b, _ := json.Marshal(value)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		d.t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		d.t.Errorf("%s: the example %s does not match its schema: %v", what, b, err)
	}
}

// container reports whether a property's value is described by its own
// properties (an object, a $ref to one, or an array of such): its example
// is made of theirs.
func (d *docWalker) container(s map[string]any) bool {
	r, _ := d.resolve(s, "")
	if _, ok := r["properties"]; ok {
		return true
	}
	if items, ok := r["items"].(map[string]any); ok {
		ri, _ := d.resolve(items, "")
		_, ok := ri["properties"]
		return ok
	}
	return false
}

// schema walks a schema: every property needs a description, and an
// example unless it is a container; examples must match.
func (d *docWalker) schema(s map[string]any, ptr, what string) {
	s, ptr = d.resolve(s, ptr)
	if d.seen[ptr] {
		return
	}
	d.seen[ptr] = true
	if exs, ok := s["examples"].([]any); ok {
		for _, x := range exs {
			d.validate(ptr, x, what)
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			p := props[name].(map[string]any)
			pptr := ptr + "/properties/" + pointerEscape(name)
			pwhat := what + "." + name
			d.n["properties"]++
			if text(p, "description") == "" {
				d.t.Errorf("%s: property without a description", pwhat)
			}
			if exs, _ := p["examples"].([]any); len(exs) == 0 && !d.container(p) {
				d.t.Errorf("%s: property without an example (examples)", pwhat)
			}
			d.schema(p, pptr, pwhat)
		}
	}
	for _, key := range []string{"items", "additionalProperties"} {
		if sub, ok := s[key].(map[string]any); ok {
			d.schema(sub, ptr+"/"+key, what+"[]")
		}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if subs, ok := s[key].([]any); ok {
			for i, sub := range subs {
				d.schema(sub.(map[string]any), fmt.Sprintf("%s/%s/%d", ptr, key, i), what)
			}
		}
	}
}

// errorCodeRE finds the error codes a response's description names.
var errorCodeRE = regexp.MustCompile("`([a-z_]+)`")

// media walks the media types of a request body or response.
func (d *docWalker) media(content map[string]any, ptr, what string, isError bool, desc string) {
	for ct, m := range content {
		mt := m.(map[string]any)
		mptr := ptr + "/content/" + pointerEscape(ct)
		sch, ok := mt["schema"].(map[string]any)
		if !ok {
			d.t.Errorf("%s %s: no schema", what, ct)
			continue
		}
		d.schema(sch, mptr+"/schema", what)
		if ex, ok := mt["example"]; ok {
			d.validate(mptr+"/schema", ex, what+" example")
		}
		named, _ := mt["examples"].(map[string]any)
		for name, x := range named {
			xv, _ := x.(map[string]any)
			d.validate(mptr+"/schema", xv["value"], what+" example "+name)
		}
		if isError && ct != "text/html" {
			// Every error response shows each code it carries, and its
			// description explains each (the hosted pages' HTML error
			// pages carry no code).
			if len(named) == 0 {
				d.t.Errorf("%s: error response without examples", what)
			}
			described := map[string]bool{}
			for _, m := range errorCodeRE.FindAllStringSubmatch(desc, -1) {
				described[m[1]] = true
			}
			for name, x := range named {
				v, _ := x.(map[string]any)["value"].(map[string]any)
				if code, _ := v["error"].(string); !described[code] {
					d.t.Errorf("%s: example %s has error %q, which the description does not explain: %s", what, name, code, desc)
				}
			}
		}
	}
}

// TestOpenAPIDescribesEverything walks the document: every operation has
// a summary and a description, every parameter a description and an
// example, every request body and response a description, every property
// of every schema (recursively) a description and an example (properties
// whose value has properties of its own are exemplified by them), every
// error response named examples of the codes it carries, each explained
// in its description; every example matches its schema.
func TestOpenAPIDescribesEverything(t *testing.T) {
	e := newAPIEnv(t)
	opts := e.srv.opts
	opts.MetricsPath = "/metrics"
	s := NewServer(Deps{Options: opts, Auth: e.svc, Store: e.db, Metrics: http.NotFoundHandler()}).(*server)
	doc, err := s.openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(doc)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem://doc.json", inst); err != nil {
		t.Fatal(err)
	}
	d := &docWalker{t: t, doc: doc, c: c, seen: map[string]bool{}, n: map[string]int{}}
	for _, tag := range doc["tags"].([]any) {
		if text(tag.(map[string]any), "description") == "" {
			t.Errorf("tag %v without a description", tag)
		}
	}
	for p, item := range doc["paths"].(map[string]any) {
		for m, o := range item.(map[string]any) {
			op := o.(map[string]any)
			what := strings.ToUpper(m) + " " + p
			ptr := "#/paths/" + pointerEscape(p) + "/" + m
			d.n["operations"]++
			if text(op, "summary") == "" || text(op, "description") == "" {
				t.Errorf("%s: operation without a summary or a description", what)
			}
			if text(op, "operationId") == "" || op["tags"] == nil || op["security"] == nil {
				t.Errorf("%s: operation without operationId, tags or security", what)
			}
			params, _ := op["parameters"].([]any)
			for i, x := range params {
				prm, pptr := d.resolve(x.(map[string]any), fmt.Sprintf("%s/parameters/%d", ptr, i))
				pwhat := what + " parameter " + text(prm, "name")
				d.n["parameters"]++
				if text(prm, "description") == "" {
					t.Errorf("%s: no description", pwhat)
				}
				ex, ok := prm["example"]
				if !ok {
					t.Errorf("%s: no example", pwhat)
				} else {
					d.validate(pptr+"/schema", ex, pwhat)
				}
				if sch, ok := prm["schema"].(map[string]any); ok {
					d.schema(sch, pptr+"/schema", pwhat)
				}
			}
			if rb, ok := op["requestBody"].(map[string]any); ok {
				if text(rb, "description") == "" {
					t.Errorf("%s: request body without a description", what)
				}
				content, _ := rb["content"].(map[string]any)
				d.media(content, ptr+"/requestBody", what+" request", false, "")
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", what)
			}
			for code, x := range responses {
				r, rptr := d.resolve(x.(map[string]any), ptr+"/responses/"+code)
				rwhat := what + " " + code
				d.n["responses"]++
				desc := text(r, "description")
				if desc == "" {
					t.Errorf("%s: response without a description", rwhat)
				}
				headers, _ := r["headers"].(map[string]any)
				for name, h := range headers {
					hv, hptr := d.resolve(h.(map[string]any), rptr+"/headers/"+pointerEscape(name))
					if text(hv, "description") == "" {
						t.Errorf("%s header %s: no description", rwhat, name)
					}
					if ex, ok := hv["example"]; !ok {
						t.Errorf("%s header %s: no example", rwhat, name)
					} else {
						d.validate(hptr+"/schema", ex, rwhat+" header "+name)
					}
				}
				content, _ := r["content"].(map[string]any)
				if code[0] == '4' || code[0] == '5' {
					if len(content) == 0 {
						t.Errorf("%s: error response without a body", rwhat)
					}
				}
				d.media(content, rptr, rwhat, code[0] == '4' || code[0] == '5', desc)
			}
		}
	}
	for name, x := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if text(x.(map[string]any), "description") == "" {
			t.Errorf("component schema %s without a description", name)
		}
		d.schema(x.(map[string]any), "#/components/schemas/"+name, name)
	}
	if d.n["operations"] < 70 || d.n["properties"] < 300 || d.n["examples"] < 400 {
		t.Errorf("walked too little of the document: %v", d.n)
	}
	t.Logf("checked %v", d.n)
}

// TestOpenAPICitesTheRepository: the document's texts cite this
// repository's docs/ or RFCs, and every docs/ file it names exists.
func TestOpenAPICitesTheRepository(t *testing.T) {
	text := string(openAPIYAML)
	if bad := regexp.MustCompile(`S[P]EC|§|ORIGINAL[-]API|\.\./share[d]|[Ii]ssu[e] \d|Findin[g] \d`).FindString(text); bad != "" {
		t.Errorf("openapi.yaml mentions %q; cite docs/ or an RFC", bad)
	}
	cited := regexp.MustCompile(`docs/[a-z0-9-]+\.md`).FindAllString(text, -1)
	if len(cited) < 20 {
		t.Errorf("openapi.yaml cites docs/ only %d times", len(cited))
	}
	for _, f := range cited {
		if _, err := os.Stat("../" + f); err != nil {
			t.Errorf("openapi.yaml cites %s: %v", f, err)
		}
	}
}

// TestOpenAPILimitsMatchCode: the bounds the document states are the
// ones the handlers enforce.
func TestOpenAPILimitsMatchCode(t *testing.T) {
	e := newAPIEnv(t)
	doc, err := e.srv.openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	d := &docWalker{t: t, doc: doc}
	num := func(ptr, key string) int {
		t.Helper()
		v, _ := d.at(ptr).(map[string]any)
		f, ok := v[key].(float64)
		if !ok {
			t.Fatalf("%s has no %s", ptr, key)
		}
		return int(f)
	}
	create := "#/components/schemas/ServiceClientCreate/properties/"
	for _, c := range []struct {
		ptr, key string
		want     int
	}{
		{create + "name", "minLength", identity.ClientNameMin}, {create + "name", "maxLength", identity.ClientNameMax},
		{create + "client_id", "maxLength", identity.ClientIDMax},
		{create + "access_token_lifetime", "minimum", identity.ClientLifetimeMin}, {create + "access_token_lifetime", "maximum", identity.ClientLifetimeMax},
		{create + "rate_limit_per_minute", "minimum", identity.ClientPerMinuteMin}, {create + "rate_limit_per_minute", "maximum", identity.ClientPerMinuteMax},
		{create + "rate_limit_per_hour", "minimum", identity.ClientPerHourMin}, {create + "rate_limit_per_hour", "maximum", identity.ClientPerHourMax},
		{"#/paths/~1api~1v1~1service-clients~1{client_id}~1rotate-secret/post/requestBody/content/application~1json/schema/properties/overlap_seconds", "maximum", identity.MaxSecretOverlap},
		{"#/paths/~1api~1v1~1users/get/parameters/0/schema", "maxLength", maxSearchLength},
		{"#/components/parameters/PerPage/schema", "maximum", 100},
	} {
		if got := num(c.ptr, c.key); got != c.want {
			t.Errorf("%s %s = %d in openapi.yaml, %d in the code", c.ptr, c.key, got, c.want)
		}
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
		w := e.call(http.MethodGet, tc.page, tc.page, "", nil)
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
		w = e.call(http.MethodGet, strings.TrimSuffix(tc.page, "/")+"/assets/{file}", tc.script, "", nil)
		if w.Code != 200 || w.Body.Len() < 100000 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Errorf("%s: %d %q %d bytes", tc.script, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
	}
	// The same asset, compressed for a client that accepts gzip: the bytes
	// decompress to what a client without gzip receives.
	plain := httptest.NewRecorder()
	e.h.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, "/docs/assets/swagger-ui.css", nil))
	req := httptest.NewRequest(http.MethodGet, "/docs/assets/swagger-ui.css", nil)
	req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
	zipped := httptest.NewRecorder()
	e.h.ServeHTTP(zipped, req)
	if zipped.Header().Get("Content-Encoding") != "gzip" || plain.Header().Get("Content-Encoding") != "" ||
		zipped.Header().Get("Vary") != "Accept-Encoding" || !strings.HasPrefix(plain.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("headers: gzip %v, plain %v", zipped.Header(), plain.Header())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain.Body.Bytes()) || zipped.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzip body: %v, %d bytes unzipped vs %d plain, %d zipped", err, len(unzipped), plain.Body.Len(), zipped.Body.Len())
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

// TestAcceptsGzip: content-coding negotiation for the documentation
// assets (RFC 9110 §12.5.3).
func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"br, identity", false},
		{"x-gzip", true},
	} {
		if got := acceptsGzip([]string{tc.header}); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
