package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func parse(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	var stderr bytes.Buffer
	return parseFlags(args, noEnv, strings.NewReader(""), &stderr)
}

func TestURLMustBeLoopback(t *testing.T) {
	refused := []string{
		"http://10.0.0.1:8000",
		"http://192.168.1.20",
		"http://example.com:8000",
		"http://0.0.0.0:8000",
		"http://[::]:8000",
		"http://[::ffff:10.0.0.1]:8000",
		"http://127.0.0.1.example.com",
		"ftp://127.0.0.1:8000",
		"127.0.0.1:8000",
		"http://user:pw@127.0.0.1:8000",
		"http://127.0.0.1:8000/?x=1",
		"",
	}
	for _, u := range refused {
		_, err := parse(t, "-url", u, "-scenarios", "baseline")
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-url") {
			t.Errorf("-url %q: err %v, want a usage error about -url", u, err)
		}
	}
	accepted := map[string]string{
		"http://127.0.0.1:8000":   "http://127.0.0.1:8000",
		"http://127.0.0.1:8000/":  "http://127.0.0.1:8000",
		"http://localhost:9000":   "http://127.0.0.1:9000",
		"http://LOCALHOST":        "http://127.0.0.1",
		"http://127.3.2.1:81/sub": "http://127.3.2.1:81/sub",
		"http://[::1]:8000":       "http://[::1]:8000",
		"https://127.0.0.1:8443":  "https://127.0.0.1:8443",
	}
	for in, want := range accepted {
		cfg, err := parse(t, "-url", in, "-scenarios", "baseline")
		if err != nil {
			t.Errorf("-url %q: %v", in, err)
			continue
		}
		if cfg.baseURL != want {
			t.Errorf("-url %q: base %q, want %q", in, cfg.baseURL, want)
		}
	}
}

func TestDurationBounds(t *testing.T) {
	for _, d := range []string{"0s", "-1s", "5m1s", "1h"} {
		if _, err := parse(t, "-duration", d, "-scenarios", "baseline"); err == nil || !strings.Contains(err.Error(), "-duration") {
			t.Errorf("-duration %s: err %v, want refused", d, err)
		}
	}
	for _, d := range []string{"1ms", "10s", "5m"} {
		if _, err := parse(t, "-duration", d, "-scenarios", "baseline"); err != nil {
			t.Errorf("-duration %s: %v", d, err)
		}
	}
	cfg, err := parse(t, "-scenarios", "baseline")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.duration != 10*time.Second || cfg.concurrency != defaultConcurrency || cfg.baseURL != defaultURL {
		t.Errorf("defaults: %+v", cfg)
	}
	// The password scenario runs one worker per CPU by default: the
	// server's default PASSWORD_HASH_CONCURRENCY on this machine.
	if cfg.passwordConcurrency != runtime.NumCPU() || cfg.workers(scPassword) != runtime.NumCPU() || cfg.workers(scRefresh) != defaultConcurrency {
		t.Errorf("password workers %d, refresh %d; want %d and %d", cfg.workers(scPassword), cfg.workers(scRefresh), runtime.NumCPU(), defaultConcurrency)
	}
	if cfg, err := parse(t, "-scenarios", "baseline", "-password-concurrency", "3", "-clients", "10000"); err != nil || cfg.workers(scPassword) != 3 || cfg.clients != 10000 {
		t.Errorf("-password-concurrency 3 -clients 10000: %+v, %v", cfg, err)
	}
}

func TestOtherBounds(t *testing.T) {
	for _, args := range [][]string{
		{"-concurrency", "0"},
		{"-concurrency", "100000"},
		{"-clients", "-1"},
		{"-clients", "10001"},
		{"-password-concurrency", "-1"},
		{"-password-concurrency", "1025"},
		{"-prefix", "api"},
		{"extra-argument"},
		{"-no-such-flag"},
	} {
		_, err := parse(t, append(args, "-scenarios", "baseline")...)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}

func TestScenarios(t *testing.T) {
	for _, s := range []string{"nope", "baseline,nope", "BEARER,token", ",", ""} {
		_, err := parse(t, "-scenarios", s)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "-scenarios") {
			t.Errorf("-scenarios %q: err %v, want a usage error about -scenarios", s, err)
		}
	}
	got, err := parseScenarios("refresh, Baseline,refresh")
	if err != nil || !slices.Equal(got, []string{scRefresh, scBaseline}) {
		t.Errorf("parseScenarios: %v, %v", got, err)
	}
	got, err = parseScenarios("all")
	if err != nil || !slices.Equal(got, allScenarios) {
		t.Errorf("parseScenarios(all): %v, %v", got, err)
	}
}

func TestAdminPassword(t *testing.T) {
	// Only scenarios that talk to permiso need the administrator.
	if _, err := parse(t, "-scenarios", "baseline"); err != nil {
		t.Errorf("baseline alone: %v", err)
	}
	_, err := parse(t, "-scenarios", "bearer")
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "PERMISO_LOAD_ADMIN_PASSWORD") {
		t.Errorf("no password: err %v", err)
	}

	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-admin-password-stdin", "-admin-user", "root"}, noEnv, strings.NewReader("s3cret pass\r\nignored\n"), &stderr)
	if err != nil || cfg.adminPassword != "s3cret pass" || cfg.adminUser != "root" {
		t.Errorf("stdin: %+v, %v", cfg, err)
	}
	cfg, err = parseFlags(nil, func(k string) string {
		if k == "PERMISO_LOAD_ADMIN_PASSWORD" {
			return "from-env"
		}
		return ""
	}, strings.NewReader(""), &stderr)
	if err != nil || cfg.adminPassword != "from-env" {
		t.Errorf("env: %+v, %v", cfg, err)
	}
	if _, err := parseFlags([]string{"-admin-password-stdin"}, noEnv, strings.NewReader(""), &stderr); !errors.As(err, new(usageError)) {
		t.Errorf("empty stdin: err %v", err)
	}
}

// TestRunBaseline runs the one scenario that needs no permiso through run,
// as the command line does, and checks the JSON report. No timing is
// asserted: only that requests were made and counted.
func TestRunBaseline(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-scenarios", "baseline", "-duration", "200ms", "-concurrency", "3", "-json"},
		noEnv, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("scenarios: %+v", rep.Scenarios)
	}
	r := rep.Scenarios[0]
	if r.Name != scBaseline || r.Requests <= 0 || r.Status.OK != r.Requests || r.Errors != 0 || r.RPS <= 0 {
		t.Errorf("baseline result: %+v", r)
	}
	if r.Ratio == nil || *r.Ratio != 1 {
		t.Errorf("baseline ratio: %v, want 1", r.Ratio)
	}
	if r.StatusCodes["200"] != int(r.Requests) {
		t.Errorf("status codes: %v", r.StatusCodes)
	}
	if r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P90 || r.Latency.P90 > r.Latency.P99 {
		t.Errorf("latency percentiles out of order: %+v", r.Latency)
	}
	if r.AuditDropped != nil {
		t.Errorf("baseline alone scraped the server's metrics: %v", *r.AuditDropped)
	}
	if r.Workers != 3 || r.RSSBytes != nil || r.RSSPeakBytes != nil || rep.RSSStartBytes != nil || r.Pool != nil {
		t.Errorf("baseline alone: workers %d, rss %v %v %v, pool %v", r.Workers, r.RSSBytes, r.RSSPeakBytes, rep.RSSStartBytes, r.Pool)
	}
	if rep.Concurrency != 3 || rep.DurationSeconds != 0.2 {
		t.Errorf("report header: %+v", rep)
	}

	// The table form names every column.
	stdout.Reset()
	if err := run(context.Background(), []string{"-scenarios", "baseline", "-duration", "50ms"}, noEnv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"scenario", "req/s", "x baseline", "429", "503", "p99 ms", "audit dropped", "rss MiB", "peak MiB", "workers", "baseline"} {
		if !strings.Contains(stdout.String(), col) {
			t.Errorf("table has no %q:\n%s", col, stdout.String())
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-url", "http://203.0.113.5:8000", "-scenarios", "baseline"}, noEnv, strings.NewReader(""), &stdout, &stderr)
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback: err %v", err)
	}
	if err := run(context.Background(), []string{"-h"}, noEnv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Errorf("-h: %v", err)
	}
	if !strings.Contains(stderr.String(), "client-credentials") {
		t.Errorf("-h does not list the scenarios:\n%s", stderr.String())
	}
}

func TestHistogram(t *testing.T) {
	// Every value falls inside its bucket's bounds, and buckets are
	// contiguous.
	prevHi := uint64(0)
	for i := range 64 * 40 {
		lo, hi := histBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if histBucket(lo) != i || histBucket(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: histBucket gives %d, %d", i, lo, hi, histBucket(lo), histBucket(hi))
		}
		if i >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d", i, lo, hi, histSub)
		}
		prevHi = hi
	}

	var h, other histogram
	for us := 1; us <= 1000; us++ {
		if us%2 == 0 {
			h.record(time.Duration(us) * time.Microsecond)
		} else {
			other.record(time.Duration(us) * time.Microsecond)
		}
	}
	h.merge(&other)
	for _, c := range []struct{ q, want float64 }{{0.5, 0.5}, {0.9, 0.9}, {0.99, 0.99}} {
		got := h.quantileMs(c.q)
		if got < c.want*0.98 || got > c.want*1.02 {
			t.Errorf("quantile %v = %v ms, want about %v", c.q, got, c.want)
		}
	}
	var empty histogram
	if empty.quantileMs(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}
