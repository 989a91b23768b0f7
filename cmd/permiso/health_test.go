package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthCommand: `permiso health` exits 0 only on a 2xx answer, and
// probes /health/live on PORT by default.
func TestHealthCommand(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"alive"}`))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	getenv := func(k string) (string, bool) {
		if k == "PORT" {
			return port, true
		}
		return "", false
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"health"}, getenv, nil, &out, &out); err != nil {
		t.Fatalf("health against a live server: %v", err)
	}
	if len(paths) != 1 || paths[0] != "/health/live" {
		t.Errorf("probed %v, want /health/live", paths)
	}
	if err := run(context.Background(), []string{"health", "--url", srv.URL + "/down"}, getenv, nil, &out, &out); err == nil || exitCode(err) != 1 {
		t.Errorf("health against a 503: %v, want exit 1", err)
	}
	if err := run(context.Background(), []string{"health", "--url", "http://127.0.0.1:1/health/live"}, getenv, nil, &out, &out); err == nil {
		t.Error("health against a closed port succeeded")
	}
}
