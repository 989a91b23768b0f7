package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/permiso/permiso/metrics"
)

// TestScrapeDropped reads permiso_audit_events_dropped_total from a real
// metrics handler, before and after the audit writer counts drops, and
// reports a server without the metric or without metrics as an error.
func TestScrapeDropped(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# TYPE permiso_audit_events_dropped_total_x counter\npermiso_audit_events_dropped_total_x 3\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	api := &apiClient{hc: newHTTPClient(1), base: srv.URL}
	ctx := context.Background()

	if v, err := scrapeDropped(ctx, api, "/metrics"); err != nil || v != 0 {
		t.Errorf("fresh server: %v, %v; want 0", v, err)
	}
	m.AuditWriter().Dropped(2)
	if v, err := scrapeDropped(ctx, api, "/metrics"); err != nil || v != 2 {
		t.Errorf("after two drops: %v, %v; want 2", v, err)
	}
	if _, err := scrapeDropped(ctx, api, "/other"); err == nil || !strings.Contains(err.Error(), "not in the metrics") {
		t.Errorf("metric absent: err %v", err)
	}
	if _, err := scrapeDropped(ctx, api, "/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("no metrics endpoint: err %v", err)
	}
}

func TestMetricsPathFlag(t *testing.T) {
	for _, p := range []string{"metrics", "/metrics?x=1", "/m#f"} {
		if _, err := parse(t, "-metrics-path", p, "-scenarios", "baseline"); err == nil || !strings.Contains(err.Error(), "-metrics-path") {
			t.Errorf("-metrics-path %q: err %v, want refused", p, err)
		}
	}
	for in, want := range map[string]string{"": "", "/prom/metrics": "/prom/metrics", " /metrics ": "/metrics"} {
		cfg, err := parse(t, "-metrics-path", in, "-scenarios", "baseline")
		if err != nil || cfg.metricsPath != want {
			t.Errorf("-metrics-path %q: %+v, %v; want %q", in, cfg, err, want)
		}
	}
	if cfg, err := parse(t, "-scenarios", "baseline"); err != nil || cfg.metricsPath != "/metrics" {
		t.Errorf("default -metrics-path: %v, %v", cfg, err)
	}
}

// TestScrapeRSS reads the server's resident set size from the process
// collector of a real metrics handler, with the dropped count in the same
// scrape, and leaves a name the exposition lacks out of the result.
func TestScrapeRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process collector reports RSS on Linux")
	}
	srv := httptest.NewServer(metrics.New().Handler())
	defer srv.Close()
	api := &apiClient{hc: newHTTPClient(1), base: srv.URL}
	v, err := scrapeValues(context.Background(), api, "/", droppedMetric, rssMetric, "permiso_no_such_metric")
	if err != nil {
		t.Fatal(err)
	}
	if rss := ptrTo(v, rssMetric); rss == nil || *rss <= 0 {
		t.Errorf("%s: %v", rssMetric, rss)
	}
	if d := ptrTo(v, droppedMetric); d == nil || *d != 0 {
		t.Errorf("%s: %v", droppedMetric, d)
	}
	if _, ok := v["permiso_no_such_metric"]; ok || len(v) != 2 {
		t.Errorf("values %v", v)
	}

	// The sampler keeps the largest value it saw.
	s := sampleRSS(context.Background(), api, "/")
	s.observe(1)
	s.observe(3 << 30)
	s.observe(2)
	if peak, ok := s.stop(); !ok || peak < 3<<30 {
		t.Errorf("peak %v, %v", peak, ok)
	}
}

func TestSampleValues(t *testing.T) {
	text := []byte("# HELP a x\n# TYPE a gauge\na_total 1\na 2.5e+06 1700000000\nb{l=\"x\"} 7\nb 4\n")
	v, err := sampleValues(text, "a", "b", "c")
	if err != nil || len(v) != 2 || v["a"] != 2.5e6 || v["b"] != 4 {
		t.Errorf("sampleValues: %v, %v", v, err)
	}
	if _, err := sampleValues([]byte("a x\n"), "a"); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}
