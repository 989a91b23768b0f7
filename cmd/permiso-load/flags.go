package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Bounds of the flags.
const (
	defaultURL         = "http://127.0.0.1:8000"
	defaultDuration    = 10 * time.Second
	maxDuration        = 5 * time.Minute
	defaultConcurrency = 16
	maxConcurrency     = 1024
)

// Scenario names, in the order "all" runs them: the cheap paths first, the
// argon2id-bound login last, so its CPU load does not linger into another
// scenario's measurement.
const (
	scBaseline          = "baseline"
	scClientCredentials = "client-credentials"
	scBearer            = "bearer"
	scIntrospect        = "introspect"
	scRefresh           = "refresh"
	scPassword          = "password"
)

var allScenarios = []string{scBaseline, scClientCredentials, scBearer, scIntrospect, scRefresh, scPassword}

// config is the parsed command line.
type config struct {
	baseURL       string // scheme://host:port[/path], no trailing slash, loopback only
	prefix        string // API prefix, "" or "/api/v1"
	duration      time.Duration
	concurrency   int
	scenarios     []string
	adminUser     string
	adminPassword string
	clients       int // service-client pool size; 0: automatic
	// passwordConcurrency is the password scenario's workers.
	passwordConcurrency int
	json                bool
	// metricsPath is the server's METRICS_PATH, scraped after each
	// scenario; "" skips it.
	metricsPath string
}

// workers returns the workers of scenario name.
func (c *config) workers(name string) int {
	if name == scPassword {
		return c.passwordConcurrency
	}
	return c.concurrency
}

// needsServer reports whether any chosen scenario talks to permiso.
func (c *config) needsServer() bool {
	return slices.ContainsFunc(c.scenarios, func(s string) bool { return s != scBaseline })
}

const usageText = `permiso-load - load generator for a permiso server on this machine

Usage:
  permiso-load [flags]

Scenarios (-scenarios, comma-separated, default all):
  baseline            a bare net/http server in this process: the ceiling of this run
  client-credentials  POST {prefix}/auth/token grant_type=client_credentials, HTTP Basic
  bearer              GET {prefix}/users/me with a user access token
  introspect          POST {prefix}/auth/introspect of a user access token, as a service client
  refresh             refresh_token grant; every worker rotates its own token chain
  password            password grant (argon2id-bound), on -password-concurrency workers

client-credentials first calibrates (at most 1 s) and sizes its pool of
service clients from that rate, so that no client is sent more than its
1000 tokens a minute; the pool grows during the run if the rate outruns
the calibration. password runs one worker per hash the server computes at
once (PASSWORD_HASH_CONCURRENCY, by default one per CPU): more would wait
for a slot and get 503 after the server's bounded wait.

After each scenario the server's METRICS_PATH (-metrics-path) is scraped
and permiso_audit_events_dropped_total printed (column "audit dropped",
JSON "audit_events_dropped"): audit events the server dropped because its
audit queue stayed full. A load run should leave it at 0. The server's
process_resident_memory_bytes is sampled every 250 ms during each scenario
and read after it (columns "rss MiB" and "peak MiB", JSON "rss_bytes" and
"rss_peak_bytes").

Setup needs an administrator: -admin-user and its password on stdin
(-admin-password-stdin) or in PERMISO_LOAD_ADMIN_PASSWORD. The users and
service clients it creates are deleted at the end.

Flags:
`

// parseFlags parses and validates args. Every problem is a usageError.
func parseFlags(args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("permiso-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	rawURL := fs.String("url", defaultURL, "base URL of the permiso server; loopback addresses only")
	prefix := fs.String("prefix", "/api/v1", "API prefix of the server (API_V1_PREFIX)")
	duration := fs.Duration("duration", defaultDuration, "measuring time per scenario (at most 5m)")
	concurrency := fs.Int("concurrency", defaultConcurrency, "concurrent workers (connections) per scenario")
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios to run, or all")
	adminUser := fs.String("admin-user", "admin", "administrator used for setup")
	pwStdin := fs.Bool("admin-password-stdin", false, "read the administrator's password from the first line of stdin")
	clients := fs.Int("clients", 0, "service clients in the client-credentials pool (0: sized from a calibration of the rate)")
	pwConcurrency := fs.Int("password-concurrency", 0, "workers of the password scenario (0: one per CPU, the server's default PASSWORD_HASH_CONCURRENCY)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	metricsPath := fs.String("metrics-path", "/metrics", "the server's METRICS_PATH, scraped after each scenario for "+droppedMetric+` ("" to skip)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}

	cfg := &config{duration: *duration, concurrency: *concurrency, adminUser: *adminUser, clients: *clients, json: *asJSON,
		metricsPath: strings.TrimSpace(*metricsPath), passwordConcurrency: *pwConcurrency}
	if cfg.passwordConcurrency == 0 {
		cfg.passwordConcurrency = runtime.NumCPU()
	}
	var problems []string
	base, err := loopbackURL(*rawURL)
	if err != nil {
		problems = append(problems, "-url: "+err.Error())
	}
	cfg.baseURL = base
	cfg.prefix = strings.TrimRight(strings.TrimSpace(*prefix), "/")
	if cfg.prefix != "" && !strings.HasPrefix(cfg.prefix, "/") {
		problems = append(problems, fmt.Sprintf("-prefix %q must start with /", *prefix))
	}
	if cfg.duration <= 0 || cfg.duration > maxDuration {
		problems = append(problems, fmt.Sprintf("-duration %v: must be more than 0 and at most %v", cfg.duration, maxDuration))
	}
	if cfg.concurrency < 1 || cfg.concurrency > maxConcurrency {
		problems = append(problems, fmt.Sprintf("-concurrency %d: must be between 1 and %d", cfg.concurrency, maxConcurrency))
	}
	if cfg.metricsPath != "" && (!strings.HasPrefix(cfg.metricsPath, "/") || strings.ContainsAny(cfg.metricsPath, "?#")) {
		problems = append(problems, fmt.Sprintf("-metrics-path %q must be a path starting with /", *metricsPath))
	}
	if cfg.clients < 0 || cfg.clients > maxPoolClients {
		problems = append(problems, fmt.Sprintf("-clients %d: must be between 0 (automatic) and %d", cfg.clients, maxPoolClients))
	}
	if cfg.passwordConcurrency < 1 || cfg.passwordConcurrency > maxConcurrency {
		problems = append(problems, fmt.Sprintf("-password-concurrency %d: must be between 0 (one per CPU) and %d", *pwConcurrency, maxConcurrency))
	}
	cfg.scenarios, err = parseScenarios(*scenarios)
	if err != nil {
		problems = append(problems, "-scenarios: "+err.Error())
	}
	if len(problems) > 0 {
		return nil, usageError{strings.Join(problems, "; ")}
	}

	if cfg.needsServer() {
		if strings.TrimSpace(cfg.adminUser) == "" {
			return nil, usageError{"-admin-user must not be empty"}
		}
		if *pwStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !(errors.Is(err, io.EOF) && line != "") {
				return nil, usageError{"-admin-password-stdin: no password on stdin"}
			}
			cfg.adminPassword = strings.TrimRight(line, "\r\n")
		} else {
			cfg.adminPassword = getenv("PERMISO_LOAD_ADMIN_PASSWORD")
		}
		if cfg.adminPassword == "" {
			return nil, usageError{"the administrator's password is required for setup: -admin-password-stdin or PERMISO_LOAD_ADMIN_PASSWORD"}
		}
	}
	return cfg, nil
}

// loopbackURL validates raw as an http(s) URL whose host is a loopback IP
// address (or "localhost", taken as 127.0.0.1, so that the name cannot
// resolve anywhere else) and returns it without a trailing slash.
func loopbackURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: want an http:// or https:// URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: no user info, query or fragment, please", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q: refusing a host that is not a loopback address (load runs target 127.0.0.1 only)", raw)
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(host, p)
	} else if ip.To4() == nil {
		u.Host = "[" + host + "]"
	} else {
		u.Host = host
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// parseScenarios parses a comma-separated list of scenario names ("all"
// for every one), keeping the order given and dropping repeats.
func parseScenarios(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch {
		case name == "":
			continue
		case name == "all":
			for _, n := range allScenarios {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		case slices.Contains(allScenarios, name):
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q (known: %s, all)", name, strings.Join(allScenarios, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario given")
	}
	return out, nil
}
