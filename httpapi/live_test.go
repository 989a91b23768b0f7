package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOverRealServer runs the handler behind a real net/http server, where
// the response writer, body limit and connection handling are the real ones.
func TestOverRealServer(t *testing.T) {
	opts := testOptions()
	opts.MaxBodyBytes = 1024
	s := newTestServer(t, opts, healthyChecks(), echoRoute)
	srv := httptest.NewServer(s.h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/health/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}

	// A chunked body over the limit.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"name":"`))
		_, _ = pw.Write([]byte(strings.Repeat("x", 4096)))
		_ = pw.Close()
	}()
	resp, err = http.Post(srv.URL+"/echo", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e["error"] != "request_too_large" {
		t.Fatalf("%d %v", resp.StatusCode, e)
	}
}

func BenchmarkLive(b *testing.B) {
	h := NewServer(Deps{Options: testOptions()})
	r := httptest.NewRequest(http.MethodGet, "/health/live", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
	}
}
