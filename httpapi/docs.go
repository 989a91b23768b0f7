package httpapi

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The documentation pages (DOCS_URL: Swagger UI, REDOC_URL: ReDoc) render
// the OpenAPI document from assets embedded in the binary (httpapi/docs,
// see its README for versions and licences): no CDN, no inline script.

//go:embed docs/*.js docs/*.css
var docsFS embed.FS

// docsCSP is the Content-Security-Policy of the documentation pages and
// their assets, replacing the API's "default-src 'none'": scripts, styles
// and the document from this server only; the UIs set inline styles, and
// ReDoc runs its search in a blob: worker. Framing stays forbidden.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

var docsPage = template.Must(template.New("docs").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
{{- range .Styles}}
<link rel="stylesheet" href="{{.}}">
{{- end}}
</head>
<body>
<div id="{{.Root}}" data-openapi-url="{{.OpenAPI}}"></div>
{{- range .Scripts}}
<script src="{{.}}"></script>
{{- end}}
</body>
</html>
`))

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

func (s *server) addDocsPage(page, title, root string, styles, scripts []string) {
	base := strings.TrimSuffix(page, "/") + "/assets/"
	data := struct {
		Title, Root, OpenAPI string
		Styles, Scripts      []string
	}{Title: title, Root: root, OpenAPI: s.opts.OpenAPIURL}
	for _, f := range styles {
		data.Styles = append(data.Styles, base+f)
	}
	for _, f := range scripts {
		data.Scripts = append(data.Scripts, base+f)
	}
	var b strings.Builder
	if err := docsPage.Execute(&b, data); err != nil {
		panic("httpapi: docs page template: " + err.Error())
	}
	html := []byte(b.String())
	s.handle("GET "+page, accessPublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(html)
	}))
	assets, _ := fs.Sub(docsFS, "docs")
	files := http.FileServerFS(assets)
	s.handle("GET "+docsAssetPath(page), accessPublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "" || strings.ContainsAny(name, `/\`) || path.Ext(name) == "" {
			writeError(w, r, errRouteNotFound)
			return
		}
		if _, err := fs.Stat(assets, name); err != nil {
			writeError(w, r, errRouteNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "public, max-age=86400")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		r2.URL.RawPath = ""
		files.ServeHTTP(w, r2)
	}))
}
