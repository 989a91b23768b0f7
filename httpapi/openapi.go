package httpapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The OpenAPI 3.1 document of the whole HTTP API is httpapi/openapi.yaml,
// embedded here and served as JSON at OPENAPI_URL. Why a hand-written
// document rather than one generated from the Go types, and how the tests
// keep it and the code together, is in docs/api.md ("The OpenAPI
// document"). The file's paths are written for the default settings;
// openAPIDocument moves them to the configured ones.

//go:embed openapi.yaml
var openAPIYAML []byte

// The paths of the document as written in openapi.yaml (the defaults of
// API_V1_PREFIX, METRICS_PATH, OPENAPI_URL, DOCS_URL and REDOC_URL).
const (
	docAPIPrefix = "/api/v1"
	docMetrics   = "/metrics"
	docOpenAPI   = "/openapi.json"
	docDocs      = "/docs"
	docRedoc     = "/redoc"
)

// openAPISource is openapi.yaml converted to JSON once.
var openAPISource = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("httpapi: openapi.yaml: %w", err)
	}
	doc, err := jsonValue(doc)
	if err != nil {
		return nil, fmt.Errorf("httpapi: openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
})

// jsonValue turns a decoded YAML value into one encoding/json can write:
// mappings must have string keys. Maps and lists are converted in place
// (a map with other keys is copied); the first error stops the descent.
func jsonValue(v any) (any, error) {
	var err error
	conv := func(x any) any {
		if err == nil {
			x, err = jsonValue(x)
		}
		return x
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = conv(x)
		}
	case []any:
		for i, x := range v {
			v[i] = conv(x)
		}
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v is not a string (quote it)", k)
			}
			out[ks] = conv(x)
		}
		return out, err
	}
	return v, err
}

// openAPIDocument returns a fresh copy of the document for the server's
// options: paths moved to the configured prefix and URLs, the metrics and
// documentation paths dropped when disabled, info from APP_NAME and the
// version.
func (s *server) openAPIDocument() (map[string]any, error) {
	src, err := openAPISource()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	opts := s.opts
	info, _ := doc["info"].(map[string]any)
	if info == nil {
		return nil, fmt.Errorf("httpapi: openapi.yaml has no info")
	}
	if opts.AppName != "" {
		info["title"] = opts.AppName
	}
	info["version"] = "dev"
	if opts.Version != "" {
		info["version"] = opts.Version
	}
	paths, _ := doc["paths"].(map[string]any)
	moved := make(map[string]any, len(paths))
	for p, item := range paths {
		if np, ok := s.servedPath(p); ok {
			moved[np] = item
		}
	}
	doc["paths"] = moved
	return doc, nil
}

// servedPath maps a path of openapi.yaml to the path the server serves it
// at, or false when the server does not serve it with these options.
func (s *server) servedPath(p string) (string, bool) {
	opts := s.opts
	page := func(url, rest string) (string, bool) {
		if url == "" || opts.OpenAPIURL == "" {
			return "", false
		}
		if rest == "" {
			return url, true
		}
		return strings.TrimSuffix(url, "/") + rest, true
	}
	switch {
	case p == docMetrics:
		return opts.MetricsPath, s.metrics != nil && opts.MetricsPath != ""
	case p == docOpenAPI:
		return opts.OpenAPIURL, opts.OpenAPIURL != ""
	case p == docDocs || strings.HasPrefix(p, docDocs+"/"):
		return page(opts.DocsURL, strings.TrimPrefix(p, docDocs))
	case p == docRedoc || strings.HasPrefix(p, docRedoc+"/"):
		return page(opts.RedocURL, strings.TrimPrefix(p, docRedoc))
	case strings.HasPrefix(p, docAPIPrefix+"/"):
		return s.apiPrefix() + strings.TrimPrefix(p, docAPIPrefix), true
	}
	return p, true
}

// handleOpenAPI serves the document. It depends only on the options, so
// it is built once, at its first request: converting openapi.yaml
// allocates several MiB that an idle server need not hold or have held
// (docs/benchmarks.md, "Memory").
func (s *server) handleOpenAPI() http.Handler {
	build := sync.OnceValues(func() ([]byte, error) {
		doc, err := s.openAPIDocument()
		if err != nil {
			return nil, err
		}
		return json.Marshal(doc)
	})
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		body, err := build()
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return nil
	})
}
