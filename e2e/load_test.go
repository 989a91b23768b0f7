package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// loadReport is the part of permiso-load's -json output the test reads.
type loadReport struct {
	URL         string `json:"url"`
	Concurrency int    `json:"concurrency"`
	Scenarios   []struct {
		Name        string         `json:"name"`
		Requests    int64          `json:"requests"`
		RPS         float64        `json:"rps"`
		Ratio       *float64       `json:"ratio_to_baseline"`
		StatusCodes map[string]int `json:"status_codes"`
		Status      struct {
			OK          int64 `json:"2xx"`
			TooMany     int64 `json:"429"`
			Unavailable int64 `json:"503"`
			Other       int64 `json:"other"`
		} `json:"status"`
		Errors     int64  `json:"errors"`
		FirstError string `json:"first_error"`
		Latency    struct {
			P50, P90, P99 float64
		} `json:"latency_ms"`
		AuditDropped *float64 `json:"audit_events_dropped"`
		Workers      int      `json:"workers"`
		RSSBytes     *float64 `json:"rss_bytes"`
		RSSPeakBytes *float64 `json:"rss_peak_bytes"`
		Pool         *struct {
			Clients             int     `json:"clients"`
			AddedDuringRun      int     `json:"added_during_run"`
			CalibrationRequests int64   `json:"calibration_requests"`
			CalibrationRPS      float64 `json:"calibration_rps"`
		} `json:"client_pool"`
	} `json:"scenarios"`
}

// TestLoadTool builds cmd/permiso-load and runs every scenario for a
// second against a real server (rate limits off, as scripts/bench.sh runs
// it). It checks what the tool reports, never how fast anything was: each
// scenario made requests, none failed at the transport, only the expected
// statuses came back (2xx only: no 429 from a service client's own limit,
// the pool being sized from a calibration, and no 503 from the bounded
// password hashing, the password scenario running one worker per hash
// slot), every ratio to the baseline is there, the server dropped no audit
// event (permiso_audit_events_dropped_total, scraped after each scenario,
// is 0), its RSS was read after each scenario, and setup's users and
// service clients are gone afterwards.
func TestLoadTool(t *testing.T) {
	b := sqliteOnly(t)
	root := repoDir(t)
	bin := filepath.Join(t.TempDir(), "permiso-load")
	build := exec.Command("go", "build", "-o", bin, "./cmd/permiso-load")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/permiso-load: %v\n%s", err, out)
	}

	s := startServer(t, b.env(t, map[string]string{
		"RATE_LIMIT_LOGIN": "", "RATE_LIMIT_REGISTER": "", "RATE_LIMIT_API": "",
		"RATE_LIMIT_REFRESH": "", "RATE_LIMIT_SERVICE_TOKEN": "",
	}))
	const adminPassword = "Load-Test-Adm1n-Passw0rd!"
	s.createAdmin(t, "loadadmin", "loadadmin@example.com", adminPassword)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	loadTool := func(stdin string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = processEnv(nil)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("run permiso-load: %v", err)
		}
		return out.String(), errOut.String(), code
	}

	// A target that is not a loopback address is refused before anything
	// is sent: exit status 2 (usage).
	if _, stderr, code := loadTool("", "-url", "http://192.0.2.1:8000", "-scenarios", "baseline"); code != 2 || !strings.Contains(stderr, "loopback") {
		t.Errorf("non-loopback -url: exit %d, stderr %q; want 2 and a loopback message", code, stderr)
	}

	stdout, stderr, code := loadTool(adminPassword+"\n",
		"-url", s.URL, "-duration", "1s", "-concurrency", "4", "-json",
		"-admin-user", "loadadmin", "-admin-password-stdin")
	if code != 0 {
		t.Fatalf("permiso-load exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "cleanup:") {
		t.Errorf("permiso-load could not clean up:\n%s", stderr)
	}
	var rep loadReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout)
	}
	if rep.URL != s.URL || rep.Concurrency != 4 {
		t.Errorf("report header: url %q concurrency %d", rep.URL, rep.Concurrency)
	}
	var names []string
	for _, sc := range rep.Scenarios {
		names = append(names, sc.Name)
		if sc.Requests <= 0 {
			t.Errorf("%s: %d requests, want some", sc.Name, sc.Requests)
		}
		if sc.Errors != 0 {
			t.Errorf("%s: %d transport errors (first: %s)", sc.Name, sc.Errors, sc.FirstError)
		}
		allowed := []string{"200"}
		var total int64
		for code, n := range sc.StatusCodes {
			if !slices.Contains(allowed, code) {
				t.Errorf("%s: %d responses with status %s, want only %v", sc.Name, n, code, allowed)
			}
			total += int64(n)
		}
		if total != sc.Requests || sc.Status.OK+sc.Status.TooMany+sc.Status.Unavailable+sc.Status.Other != sc.Requests {
			t.Errorf("%s: status counts %v / %+v do not add up to %d requests", sc.Name, sc.StatusCodes, sc.Status, sc.Requests)
		}
		if sc.Status.OK == 0 {
			t.Errorf("%s: no successful response", sc.Name)
		}
		if sc.RSSBytes == nil || *sc.RSSBytes <= 0 || sc.RSSPeakBytes == nil || *sc.RSSPeakBytes < *sc.RSSBytes {
			t.Errorf("%s: server RSS %v, peak %v; want both, peak at least the last", sc.Name, sc.RSSBytes, sc.RSSPeakBytes)
		}
		wantWorkers := 4
		if sc.Name == "password" {
			wantWorkers = runtime.NumCPU()
		}
		if sc.Workers != wantWorkers {
			t.Errorf("%s: %d workers, want %d", sc.Name, sc.Workers, wantWorkers)
		}
		if p := sc.Pool; (p != nil) != (sc.Name == "client-credentials") ||
			p != nil && (p.Clients <= 0 || p.CalibrationRequests <= 0 || p.CalibrationRPS <= 0) {
			t.Errorf("%s: client pool %+v", sc.Name, p)
		}
		if sc.Ratio == nil || *sc.Ratio <= 0 {
			t.Errorf("%s: ratio_to_baseline %v, want present and > 0", sc.Name, sc.Ratio)
		}
		// Load slows audited requests down (bounded wait for room in the
		// audit queue); it must never erase their events.
		if sc.AuditDropped == nil || *sc.AuditDropped != 0 {
			t.Errorf("%s: permiso_audit_events_dropped_total %v, want scraped and 0", sc.Name, sc.AuditDropped)
		}
		if sc.RPS <= 0 || sc.Latency.P50 <= 0 || sc.Latency.P50 > sc.Latency.P99 {
			t.Errorf("%s: rps %v, latency %+v", sc.Name, sc.RPS, sc.Latency)
		}
	}
	want := []string{"baseline", "client-credentials", "bearer", "introspect", "refresh", "password"}
	if !slices.Equal(names, want) {
		t.Errorf("scenarios %v, want %v", names, want)
	}
	if len(rep.Scenarios) > 0 && rep.Scenarios[0].Ratio != nil && *rep.Scenarios[0].Ratio != 1 {
		t.Errorf("baseline ratio %v, want 1", *rep.Scenarios[0].Ratio)
	}
	if t.Failed() {
		t.Logf("permiso-load stderr:\n%s", stderr)
	}

	// Setup's users and service clients were removed again.
	admin := s.login(t, "loadadmin", adminPassword, "").AccessToken
	for _, c := range []struct{ path, what string }{
		{pathClients + "?search=permiso-load", "service clients permiso-load-*"},
		{apiPrefix + "/users?search=permiso_load", "users permiso_load_*"},
	} {
		r := s.get(t, c.path, admin)
		if r.Status != 200 {
			t.Fatalf("%s: want 200", r)
		}
		var list struct {
			Total *int `json:"total"`
		}
		r.Decode(t, &list)
		if list.Total == nil || *list.Total != 0 {
			t.Errorf("%s: %s left behind", r, c.what)
		}
	}
}
