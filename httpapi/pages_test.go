package httpapi

import (
	"bytes"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostedPagesEscapeEveryValue renders every hosted page with values an
// attacker may choose (a client name, a username, request parameters, an
// error) and checks that none breaks out of its text or attribute:
// templ escapes by context (docs/architecture.md, "Hosted pages").
func TestHostedPagesEscapeEveryValue(t *testing.T) {
	const evil = `"><script>alert(1)</script><x y='`
	d := pageData{AppName: evil, Title: evil, StyleURL: "/s.css", Error: evil, Action: "javascript:alert(1)",
		Params: url.Values{evil: {evil}}, CSRF: evil, ClientName: evil, Username: evil, Scopes: []string{evil},
		Message: evil, Problems: []string{evil}, Secret: evil, Codes: []string{evil}}
	for name, view := range pageViews {
		var b bytes.Buffer
		if err := view(d).Render(t.Context(), &b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		if strings.Contains(out, "<script") || strings.Contains(out, "<x ") || strings.Contains(out, `y='`) {
			t.Errorf("%s: a value broke out of its context:\n%s", name, out)
		}
		if strings.Contains(out, "javascript:") {
			t.Errorf("%s: a javascript: URL was written into a link or form", name)
		}
		if !strings.HasPrefix(out, "<!doctype html>") || !strings.Contains(out, "</html>") {
			t.Errorf("%s: not a whole page:\n%s", name, out)
		}
	}
}

// TestNoTextTemplateInTheServer: no package of the server imports
// text/template or html/template. A binary that can execute a template
// keeps every exported method of every type, about 8 MB of the image
// (docs/deployment.md, "The image"); the hosted pages are templ components.
func TestNoTextTemplateInTheServer(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); p == "text/template" || p == "html/template" {
				t.Errorf("%s imports %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
