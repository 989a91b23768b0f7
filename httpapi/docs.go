package httpapi

import (
	"bytes"
	"compress/gzip"
	"embed"
	"html"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// The documentation pages (DOCS_URL: Swagger UI, REDOC_URL: ReDoc) render
// the OpenAPI document from assets embedded in the binary (httpapi/docs,
// see its README for versions and licences): no CDN, no inline script.

//go:embed docs/*.js docs/*.js.gz docs/*.css.gz
var docsFS embed.FS

// docsCSP is the Content-Security-Policy of the documentation pages and
// their assets, replacing the API's "default-src 'none'": scripts, styles
// and the document from this server only; the UIs set inline styles, and
// ReDoc runs its search in a blob: worker. Framing stays forbidden.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// docsPageHTML is a documentation page: the UI's root element, its
// styles and scripts. Written without html/template: every value is
// escaped with html.EscapeString and stands in a quoted attribute or in
// text, the only two contexts used here (the pages hold no inline script).
// Keeping text/template out of the binary also lets the linker drop the
// unused methods of every type, about a quarter of its size
// (docs/deployment.md, "The image").
func docsPageHTML(title, root, openAPI string, styles, scripts []string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title>\n")
	for _, href := range styles {
		b.WriteString(`<link rel="stylesheet" href="` + html.EscapeString(href) + "\">\n")
	}
	b.WriteString("</head>\n<body>\n")
	b.WriteString(`<div id="` + html.EscapeString(root) + `" data-openapi-url="` + html.EscapeString(openAPI) + "\"></div>\n")
	for _, src := range scripts {
		b.WriteString(`<script src="` + html.EscapeString(src) + "\"></script>\n")
	}
	b.WriteString("</body>\n</html>\n")
	return b.String()
}

// docsAssetPath is the route of a page's assets.
func docsAssetPath(page string) string {
	return strings.TrimSuffix(page, "/") + "/assets/{file}"
}

// addDocsRoutes registers OPENAPI_URL, DOCS_URL and REDOC_URL (each
// skipped when empty; the pages also need OPENAPI_URL).
func (s *server) addDocsRoutes() {
	opts := s.opts
	if opts.OpenAPIURL == "" {
		return
	}
	s.handle("GET "+opts.OpenAPIURL, accessPublic, s.handleOpenAPI())
	title := opts.AppName
	if title == "" {
		title = "permiso Authentication API"
	}
	if opts.DocsURL != "" {
		s.addDocsPage(opts.DocsURL, title+" - Swagger UI", "swagger-ui",
			[]string{"swagger-ui.css"}, []string{"swagger-ui-bundle.js", "swagger-init.js"})
	}
	if opts.RedocURL != "" {
		s.addDocsPage(opts.RedocURL, title+" - ReDoc", "redoc", nil, []string{"redoc.standalone.js", "redoc-init.js"})
	}
}

func (s *server) addDocsPage(route, title, root string, styles, scripts []string) {
	base := strings.TrimSuffix(route, "/") + "/assets/"
	var styleURLs, scriptURLs []string
	for _, f := range styles {
		styleURLs = append(styleURLs, base+f)
	}
	for _, f := range scripts {
		scriptURLs = append(scriptURLs, base+f)
	}
	page := []byte(docsPageHTML(title, root, s.opts.OpenAPIURL, styleURLs, scriptURLs))
	s.handle("GET "+route, accessPublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(page)
	}))
	s.handle("GET "+docsAssetPath(route), accessPublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := docsAssets()[r.PathValue("file")]
		if !ok {
			writeError(w, r, errRouteNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "public, max-age=86400")
		h.Set("Content-Type", a.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		a.serve(w, r)
	}))
}

// docsAsset is one embedded file of the documentation pages. The
// third-party bundles are stored gzip-compressed (name.gz): most browsers
// take them as they are (Content-Encoding: gzip), and for a client that
// does not accept gzip they are decompressed on the fly.
type docsAsset struct {
	contentType string
	data        []byte
	gzipped     bool
}

func (a docsAsset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Vary", "Accept-Encoding")
	if !a.gzipped {
		h.Set("Content-Length", strconv.Itoa(len(a.data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.data)
		return
	}
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(a.data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.data)
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.data))
	if err != nil { // checked at start-up by loadDocsAssets
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, zr)
}

// acceptsGzip reports whether Accept-Encoding admits gzip (RFC 9110
// §12.5.3): gzip listed with a weight other than 0, or, when gzip is not
// listed, "*" with such a weight.
func acceptsGzip(values []string) bool {
	gzipOK, starOK, listed := false, false, false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			q, given := qValue(params)
			ok := !given || q > 0
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipOK, listed = ok, true
			case "*":
				starOK = ok
			}
		}
	}
	if listed {
		return gzipOK
	}
	return starOK
}

// qValue is the weight of a content coding's parameters ("q=0.5"), and
// whether one was given (RFC 9110 §12.4.2).
func qValue(params string) (float64, bool) {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return q, err == nil
		}
	}
	return 1, false
}

// docsAssets maps an asset's name to its file, read from docsFS at the
// first request for an asset, not at start-up: the other commands of the
// binary (`permiso health` every few seconds, for one) never copy the
// 800 KB of assets.
var docsAssets = sync.OnceValue(loadDocsAssets)

func loadDocsAssets() map[string]docsAsset {
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	assets := map[string]docsAsset{}
	entries, err := fs.ReadDir(docsFS, "docs")
	if err != nil {
		panic("httpapi: documentation assets: " + err.Error())
	}
	for _, e := range entries {
		data, err := fs.ReadFile(docsFS, "docs/"+e.Name())
		if err != nil {
			panic("httpapi: documentation assets: " + err.Error())
		}
		name, gzipped := strings.CutSuffix(e.Name(), ".gz")
		if gzipped {
			if _, err := gzip.NewReader(bytes.NewReader(data)); err != nil {
				panic("httpapi: documentation asset " + e.Name() + ": " + err.Error())
			}
		}
		assets[name] = docsAsset{contentType: types[path.Ext(name)], data: data, gzipped: gzipped}
	}
	return assets
}
