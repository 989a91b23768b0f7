package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	URL             string  `json:"url"`
	StartedAt       string  `json:"started_at"`
	GoVersion       string  `json:"go_version"` // of permiso-load
	GOMAXPROCS      int     `json:"gomaxprocs"`
	NumCPU          int     `json:"num_cpu"`
	Concurrency     int     `json:"concurrency"`
	DurationSeconds float64 `json:"duration_seconds"`
	Clients         int     `json:"clients,omitempty"`
	// RSSStartBytes is the server's process_resident_memory_bytes after
	// setup, before the first scenario; null when not scraped.
	RSSStartBytes *float64  `json:"rss_start_bytes"`
	Scenarios     []*Result `json:"scenarios"`
}

// Service clients of the client-credentials pool get the largest own
// limits the admin API accepts (rate_limit_per_minute 1-1000,
// rate_limit_per_hour 60-100000). One client alone could not be measured
// above 1000 tokens a minute, so the scenario rotates through a pool
// (pool.go).
const (
	clientBudget  = 1000
	clientPerHour = 100000
)

// runLoad sets up, runs every chosen scenario and cleans up. It returns
// the results so far together with an error.
func runLoad(ctx context.Context, cfg *config, stderr io.Writer) (*Report, error) {
	hc := newHTTPClient(cfg.concurrency)
	defer hc.CloseIdleConnections()
	rep := &Report{
		URL:             cfg.baseURL,
		StartedAt:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:       runtime.Version(),
		GOMAXPROCS:      runtime.GOMAXPROCS(0),
		NumCPU:          runtime.NumCPU(),
		Concurrency:     cfg.concurrency,
		DurationSeconds: cfg.duration.Seconds(),
	}
	api := &apiClient{hc: hc, base: cfg.baseURL, prefix: cfg.prefix}
	var env *fixture
	if cfg.needsServer() {
		var err error
		env, err = setUp(ctx, cfg, api, stderr)
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		defer env.tearDown(stderr)
	}

	scrape := cfg.needsServer() && cfg.metricsPath != ""
	if scrape {
		if v, err := scrapeValues(ctx, api, cfg.metricsPath, rssMetric); err == nil {
			rep.RSSStartBytes = ptrTo(v, rssMetric)
		}
	}
	var runErr error
	for _, name := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "permiso-load: %-18s preparing\n", name)
		sc, err := prepare(ctx, name, cfg, api, env, stderr)
		if err != nil {
			runErr = fmt.Errorf("scenario %s: %w", name, err)
			break
		}
		var rss *rssSampler
		if scrape {
			rss = sampleRSS(ctx, api, cfg.metricsPath)
		}
		// "measuring" marks the start of the measurement for what reads
		// the progress (scripts/bench.sh reads the server's CPU time).
		fmt.Fprintf(stderr, "permiso-load: %-18s measuring\n", name)
		res := measure(ctx, name, cfg.workers(name), cfg.duration, sc.workers)
		sc.done()
		if sc.pool != nil {
			res.Pool = sc.poolInfo()
			rep.Clients = res.Pool.Clients
			res.Note = poolNote(res)
		}
		if scrape && ctx.Err() == nil {
			peak, sampled := rss.stop()
			if v, err := scrapeValues(ctx, api, cfg.metricsPath, droppedMetric, rssMetric); err != nil {
				fmt.Fprintf(stderr, "permiso-load: %-18s metrics: %v\n", name, err)
			} else {
				if res.AuditDropped = ptrTo(v, droppedMetric); res.AuditDropped == nil {
					fmt.Fprintf(stderr, "permiso-load: %-18s metrics: %s is not in the metrics (a server without the bounded audit queue?)\n", name, droppedMetric)
				}
				if res.RSSBytes = ptrTo(v, rssMetric); res.RSSBytes != nil {
					if !sampled || *res.RSSBytes > peak {
						peak = *res.RSSBytes
					}
					res.RSSPeakBytes = &peak
				}
			}
		} else if rss != nil {
			rss.stop()
		}
		rep.Scenarios = append(rep.Scenarios, res)
		fmt.Fprintf(stderr, "permiso-load: %-18s %d requests, %.0f req/s, %d errors%s\n", name, res.Requests, res.RPS, res.Errors, droppedNote(res))
	}
	if i := slices.IndexFunc(rep.Scenarios, func(r *Result) bool { return r.Name == scBaseline }); i >= 0 {
		if base := rep.Scenarios[i].RPS; base > 0 {
			for _, r := range rep.Scenarios {
				ratio := math.Round(r.RPS/base*10000) / 10000
				r.Ratio = &ratio
			}
		}
	}
	if runErr == nil {
		runErr = ctx.Err()
	}
	return rep, runErr
}

// scenario is one prepared scenario: the request functions (one per
// worker, or one shared by all), what to do when it is over, and the
// client-credentials pool.
type scenario struct {
	workers []requestFunc
	done    func()
	pool    *clientPool
	cal     *Result // the pool's calibration, nil when -clients set the size
}

// prepare returns the request functions of one scenario (one per worker,
// or one shared by all) and what to do when it is over.
func prepare(ctx context.Context, name string, cfg *config, api *apiClient, env *fixture, stderr io.Writer) (*scenario, error) {
	sc, err := prepareWorkers(ctx, name, cfg, api, env, stderr)
	if err == nil && sc.done == nil {
		sc.done = func() {}
	}
	return sc, err
}

func prepareWorkers(ctx context.Context, name string, cfg *config, api *apiClient, env *fixture, stderr io.Writer) (*scenario, error) {
	switch name {
	case scBaseline:
		return baseline(api)

	case scClientCredentials:
		return env.clientCredentials(ctx, cfg, stderr)

	case scBearer:
		access, err := env.userAccessToken(ctx)
		if err != nil {
			return nil, err
		}
		meURL, auth := api.url("/users/me"), "Bearer "+access
		if r, err := api.do(ctx, http.MethodGet, meURL, nil, "", auth); err != nil {
			return nil, err
		} else if r.status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", meURL, r)
		}
		req := func(ctx context.Context) (int, error) {
			return api.hit(ctx, http.MethodGet, meURL, nil, "", auth)
		}
		return &scenario{workers: []requestFunc{req}}, nil

	case scIntrospect:
		if err := env.ensureClients(ctx, 1); err != nil {
			return nil, err
		}
		access, err := env.userAccessToken(ctx)
		if err != nil {
			return nil, err
		}
		introURL, auth := api.url("/auth/introspect"), env.clients[0].basic
		body := []byte(url.Values{"token": {access}}.Encode())
		r, err := api.do(ctx, http.MethodPost, introURL, body, formType, auth)
		if err != nil {
			return nil, err
		}
		var got struct {
			Active bool `json:"active"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || !got.Active {
			return nil, fmt.Errorf("introspection of a fresh user token by a service client: %s (want 200, active true)", r)
		}
		req := func(ctx context.Context) (int, error) {
			return api.hit(ctx, http.MethodPost, introURL, body, formType, auth)
		}
		return &scenario{workers: []requestFunc{req}}, nil

	case scRefresh:
		// One chain per worker, from a login of the worker's own user.
		if err := env.ensureWorkerUsers(ctx, cfg.concurrency); err != nil {
			return nil, err
		}
		admin, err := env.adminToken(ctx)
		if err != nil {
			return nil, err
		}
		users := env.workerUsers[:cfg.concurrency]
		workers := make([]requestFunc, len(users))
		// Two at a time: each login is an argon2id hash.
		err = atMost(2, len(users), func(i int) error {
			t, err := env.login(ctx, users[i], admin)
			workers[i] = env.refreshWorker(users[i], t.RefreshToken, admin)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &scenario{workers: workers}, nil

	case scPassword:
		n := cfg.workers(scPassword)
		if err := env.ensureWorkerUsers(ctx, n); err != nil {
			return nil, err
		}
		admin, err := env.adminToken(ctx)
		if err != nil {
			return nil, err
		}
		workers := make([]requestFunc, n)
		for i, u := range env.workerUsers[:n] {
			workers[i] = env.passwordWorker(u, admin)
		}
		return &scenario{workers: workers}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// baseline starts a bare net/http server on 127.0.0.1:0 in this process,
// answering a tiny JSON body, and returns the request that hammers it with
// the same client as every other scenario.
func baseline(api *apiClient) (*scenario, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(`{"status":"ok"}`)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", jsonType)
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	target := "http://" + ln.Addr().String() + "/"
	req := func(ctx context.Context) (int, error) {
		return api.hit(ctx, http.MethodGet, target, nil, "", "")
	}
	return &scenario{workers: []requestFunc{req}, done: func() { _ = srv.Close() }}, nil
}

// ---------------------------------------------------------------------------
// Setup and cleanup

// fixture is what setup created on the server: it is all removed again by
// tearDown.
type fixture struct {
	api   *apiClient
	runID string

	mu          sync.Mutex
	admin       tokens // the administrator's session
	adminUser   string
	adminPass   string
	user        loadUser // the normal user of the bearer and introspect scenarios
	userChain   string   // refresh token of that user's own session
	readScope   string   // scope id given to the service clients
	workerUsers []loadUser
	users       []loadUser // every user created, to delete
	clients     []poolClient
	clientSeq   int      // service clients asked for, to number their ids
	createdIDs  []string // client_ids to delete
}

// loadUser is a normal user created for the run.
type loadUser struct {
	id, name, password string
}

type poolClient struct {
	id, basic string
}

// Logins during setup are retried this often while the server's password
// hashing is busy (503).
const loginAttempts = 20

// setUp logs in as the administrator and creates the load user. On
// failure it removes whatever it did create.
func setUp(ctx context.Context, cfg *config, api *apiClient, stderr io.Writer) (*fixture, error) {
	live, err := api.do(ctx, http.MethodGet, cfg.baseURL+"/health/live", nil, "", "")
	if err != nil {
		return nil, fmt.Errorf("is permiso running at %s? %w", cfg.baseURL, err)
	}
	if live.status != http.StatusOK {
		return nil, fmt.Errorf("GET /health/live: %s", live)
	}
	f := &fixture{api: api, runID: randomHex(4), adminUser: cfg.adminUser, adminPass: cfg.adminPassword}
	// Not more than 3 attempts: each counts towards the administrator's
	// lockout (MAX_LOGIN_ATTEMPTS, 5 by default) until one succeeds.
	f.admin, err = api.login(ctx, cfg.adminUser, cfg.adminPassword, 3, nil)
	if err != nil {
		return nil, fmt.Errorf("administrator login: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.tearDown(stderr)
		}
	}()

	// A scope for the service clients: a client-credentials request
	// without scope gets the client's scopes, and needs at least one.
	r, err := api.do(ctx, http.MethodGet, api.url("/roles/scopes?per_page=100"), nil, "", "Bearer "+f.admin.AccessToken)
	if err != nil {
		return nil, err
	}
	var scopes struct {
		Scopes []struct{ ID, Name string } `json:"scopes"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &scopes) != nil || len(scopes.Scopes) == 0 {
		return nil, fmt.Errorf("list scopes: %s", r)
	}
	f.readScope = scopes.Scopes[0].ID
	for _, sc := range scopes.Scopes {
		if sc.Name == "read:profile" {
			f.readScope = sc.ID
		}
	}

	users, err := f.createUsers(ctx, 1)
	if err != nil {
		return nil, err
	}
	f.user = users[0]
	t, err := f.login(ctx, f.user, f.admin.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("login of the load user: %w", err)
	}
	f.userChain = t.RefreshToken
	ok = true
	return f, nil
}

// createUsers creates n normal users through the admin API (not
// /users/register, which RATE_LIMIT_REGISTER limits to a few an hour),
// two at a time: each costs an argon2id hash on the server.
func (f *fixture) createUsers(ctx context.Context, n int) ([]loadUser, error) {
	admin, err := f.adminToken(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	first := len(f.users)
	f.mu.Unlock()
	out := make([]loadUser, n)
	err = atMost(2, n, func(i int) error {
		u := loadUser{
			name:     fmt.Sprintf("permiso_load_%s_%d", f.runID, first+i),
			password: "Load-" + randomHex(12) + "#9aZ",
		}
		body := map[string]any{"username": u.name, "email": fmt.Sprintf("permiso-load-%s-%d@example.com", f.runID, first+i), "password": u.password}
		deadline := time.Now().Add(time.Minute)
		for {
			r, err := f.api.postJSON(ctx, "/users", body, admin)
			if err != nil {
				return err
			}
			if r.status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
				if err := sleepCtx(ctx, retryAfter(r.header)); err != nil {
					return err
				}
				continue
			}
			var created struct {
				ID string `json:"id"`
			}
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &created) != nil || created.ID == "" {
				return fmt.Errorf("create user %s: %s", u.name, r)
			}
			u.id = created.ID
			break
		}
		f.mu.Lock()
		f.users = append(f.users, u)
		f.mu.Unlock()
		out[i] = u
		return nil
	})
	return out, err
}

// ensureWorkerUsers creates users until there is one per worker: a user
// never has two logins in flight, which would count twice towards its
// lockout before either password is checked.
func (f *fixture) ensureWorkerUsers(ctx context.Context, n int) error {
	if need := n - len(f.workerUsers); need > 0 {
		users, err := f.createUsers(ctx, need)
		if err != nil {
			return err
		}
		f.workerUsers = append(f.workerUsers, users...)
	}
	return nil
}

// login logs u in, retrying while the server is busy and lifting the
// lockout count each busy answer added (with the administrator's token
// admin).
func (f *fixture) login(ctx context.Context, u loadUser, admin string) (tokens, error) {
	return f.api.login(ctx, u.name, u.password, loginAttempts, func(ctx context.Context) error {
		return f.unlock(ctx, u, admin)
	})
}

// unlock clears u's failed-login count and lock (POST /users/{id}/unlock).
func (f *fixture) unlock(ctx context.Context, u loadUser, admin string) error {
	r, err := f.api.do(ctx, http.MethodPost, f.api.url("/users/"+url.PathEscape(u.id)+"/unlock"), nil, "", "Bearer "+admin)
	if err != nil {
		return fmt.Errorf("unlock %s: %w", u.name, err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("unlock %s: %s", u.name, r)
	}
	return nil
}

// ensureClients creates service clients until there are n.
func (f *fixture) ensureClients(ctx context.Context, n int) error {
	need := n - len(f.clients)
	if need <= 0 {
		return nil
	}
	admin, err := f.adminToken(ctx)
	if err != nil {
		return err
	}
	_, err = f.createClients(ctx, admin, need)
	return err
}

// createClients creates n service clients with the largest own limits,
// four at a time, as the administrator (access token admin).
func (f *fixture) createClients(ctx context.Context, admin string, n int) ([]poolClient, error) {
	f.mu.Lock()
	first := f.clientSeq
	f.clientSeq += n
	f.mu.Unlock()
	created := make([]poolClient, n)
	err := atMost(4, n, func(i int) error {
		id := fmt.Sprintf("permiso-load-%s-%d", f.runID, first+i)
		r, err := f.api.postJSON(ctx, "/service-clients", map[string]any{
			"name": "permiso-load " + id, "client_id": id, "client_type": "confidential",
			"scope_ids":             []string{f.readScope},
			"rate_limit_per_minute": clientBudget, "rate_limit_per_hour": clientPerHour,
		}, admin)
		if err != nil {
			return err
		}
		var body struct {
			Client struct {
				ClientID string `json:"client_id"`
			} `json:"client"`
			Secret string `json:"client_secret"`
		}
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &body) != nil || body.Secret == "" {
			return fmt.Errorf("create service client %s: %s", id, r)
		}
		f.mu.Lock()
		f.createdIDs = append(f.createdIDs, body.Client.ClientID)
		f.mu.Unlock()
		created[i] = poolClient{id: body.Client.ClientID, basic: basicAuth(body.Client.ClientID, body.Secret)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.clients = append(f.clients, created...)
	f.mu.Unlock()
	return created, nil
}

// clientCredentials prepares the client-credentials scenario: a pool of
// service clients (pool.go) sized by -clients, or else from the rate of a
// calibration that runs the scenario's own requests on the same workers
// for at most calibrationTime or calibrationClients × clientBudget tokens.
func (f *fixture) clientCredentials(ctx context.Context, cfg *config, stderr io.Writer) (*scenario, error) {
	admin, err := f.adminToken(ctx)
	if err != nil {
		return nil, err
	}
	pool := newClientPool(func(ctx context.Context) (poolClient, error) {
		cs, err := f.createClients(ctx, admin, 1)
		if err != nil {
			return poolClient{}, err
		}
		return cs[0], nil
	}, time.Now)
	first := calibrationClients
	if cfg.clients > 0 {
		first = cfg.clients
	}
	cs, err := f.createClients(ctx, admin, first)
	if err != nil {
		return nil, err
	}
	pool.add(cs...)

	api := f.api
	tokenURL, body := api.url("/auth/token"), []byte("grant_type=client_credentials")
	send := func(ctx context.Context, limit int64) (int, error) {
		c, err := pool.pickWithin(ctx, limit)
		if err != nil {
			return 0, err
		}
		return api.hit(ctx, http.MethodPost, tokenURL, body, formType, c.basic)
	}
	// One checked request first: the run must measure issued tokens.
	c, err := pool.pick(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := api.tokenRequest(ctx, url.Values{"grant_type": {"client_credentials"}}, c.basic); err != nil {
		return nil, err
	}

	sc := &scenario{pool: pool}
	if cfg.clients == 0 {
		limit := int64(calibrationClients * clientBudget)
		cal := measure(ctx, "calibration", cfg.concurrency, calibrationTime, []requestFunc{func(ctx context.Context) (int, error) {
			return send(ctx, limit)
		}})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cal.Errors > 0 || cal.Status.OK != cal.Requests || cal.Requests == 0 {
			return nil, fmt.Errorf("calibration: %d requests, statuses %v, %d errors (first: %s)", cal.Requests, cal.StatusCodes, cal.Errors, cal.FirstError)
		}
		n := poolSize(cal.RPS, cfg.duration, cfg.concurrency)
		fmt.Fprintf(stderr, "permiso-load: %-18s calibration: %d tokens in %.2f s (%.0f/s); %d more service clients for %v\n",
			scClientCredentials, cal.Requests, cal.ElapsedSeconds, cal.RPS, n, cfg.duration)
		if cs, err = f.createClients(ctx, admin, n); err != nil {
			return nil, err
		}
		pool.add(cs...)
		sc.cal = cal
	}
	sc.workers = []requestFunc{func(ctx context.Context) (int, error) {
		return send(ctx, math.MaxInt64)
	}}
	return sc, nil
}

// poolInfo describes the scenario's pool after the measurement.
func (sc *scenario) poolInfo() *PoolInfo {
	total, added := sc.pool.counts()
	info := &PoolInfo{Clients: total, AddedDuringRun: added}
	if sc.cal != nil {
		info.CalibrationRequests, info.CalibrationRPS = sc.cal.Requests, math.Round(sc.cal.RPS)
	}
	return info
}

// poolNote says how the pool of res was sized, and what its 429s were
// not.
func poolNote(res *Result) string {
	p := res.Pool
	note := fmt.Sprintf("pool of %d service clients (%d tokens a minute each, none reused within %v)", p.Clients, clientBudget, reuseAfter)
	if p.CalibrationRequests > 0 {
		note += fmt.Sprintf(", sized from a calibration of %d tokens at %.0f/s", p.CalibrationRequests, p.CalibrationRPS)
	} else {
		note += ", -clients set its size"
	}
	note += fmt.Sprintf("; %d added during the measurement", p.AddedDuringRun)
	if res.Status.TooMany > 0 {
		note += "; the 429s are not the clients' own limits: a per-IP limit of the server (RATE_LIMIT_SERVICE_TOKEN, RATE_LIMIT_API)?"
	}
	return note
}

// userAccessToken returns a fresh access token of the load user, by
// rotating the fixture's own refresh-token chain (no password hash).
func (f *fixture) userAccessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.api.refresh(ctx, f.userChain)
	if err != nil {
		return "", fmt.Errorf("refresh the load user's token: %w", err)
	}
	f.userChain = t.RefreshToken
	return t.AccessToken, nil
}

// adminToken returns a fresh administrator access token (runs can outlast
// the 15 minutes of an access token).
func (f *fixture) adminToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.api.refresh(ctx, f.admin.RefreshToken)
	if err != nil {
		t, err = f.api.login(ctx, f.adminUser, f.adminPass, 3, nil)
		if err != nil {
			return "", fmt.Errorf("administrator token: %w", err)
		}
	}
	f.admin = t
	return t.AccessToken, nil
}

// refreshWorker rotates one refresh-token chain of user u: every answer
// carries the next token, and a token is never sent twice (reuse after the
// grace period would revoke the whole family). 429 and 503 leave the token
// unspent, so it is sent again; a chain the server refuses (400) is
// replaced by a new login.
func (f *fixture) refreshWorker(u loadUser, rt, admin string) requestFunc {
	tokenURL := f.api.url("/auth/token")
	return func(ctx context.Context) (int, error) {
		if rt == "" {
			t, err := f.login(ctx, u, admin)
			if err != nil {
				return 0, fmt.Errorf("new chain after a refused refresh: %w", err)
			}
			rt = t.RefreshToken
		}
		body := []byte(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())
		r, err := f.api.do(ctx, http.MethodPost, tokenURL, body, formType, "")
		if err != nil {
			return 0, err
		}
		switch r.status {
		case http.StatusOK:
			var t tokens
			if err := json.Unmarshal(r.body, &t); err != nil || t.RefreshToken == "" {
				rt = ""
				return r.status, fmt.Errorf("refresh answered 200 without a refresh_token: %s", r)
			}
			rt = t.RefreshToken
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			rt = ""
		}
		return r.status, nil
	}
}

// passwordWorker logs u in again and again. The lockout counts every
// attempt before its password is checked, and an attempt the saturated
// hash pool answers with 503 stays counted: after MAX_LOGIN_ATTEMPTS of
// them the account would be locked (423) although every password was
// right. So after each answer but 200 the worker lifts the count (admin
// unlock): the scenario measures logins, not the lockout.
func (f *fixture) passwordWorker(u loadUser, admin string) requestFunc {
	tokenURL := f.api.url("/auth/token")
	body := []byte(url.Values{"grant_type": {"password"}, "username": {u.name}, "password": {u.password}}.Encode())
	return func(ctx context.Context) (int, error) {
		status, err := f.api.hit(ctx, http.MethodPost, tokenURL, body, formType, "")
		if err != nil || status == http.StatusOK {
			return status, err
		}
		return status, f.unlock(ctx, u, admin)
	}
}

// tearDown deletes the service clients and the users setup created and
// ends the administrator's session. Failures are reported, not fatal.
func (f *fixture) tearDown(stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	warn := func(format string, args ...any) {
		fmt.Fprintf(stderr, "permiso-load: cleanup: "+format+"\n", args...)
	}
	admin, err := f.adminToken(ctx)
	if err != nil {
		warn("%v; remove the users permiso_load_%s_* and the service clients permiso-load-%s-* by hand", err, f.runID, f.runID)
		return
	}
	auth := "Bearer " + admin
	f.mu.Lock()
	var paths []string
	for _, id := range f.createdIDs {
		paths = append(paths, "/service-clients/"+url.PathEscape(id))
	}
	for _, u := range f.users {
		paths = append(paths, "/users/"+url.PathEscape(u.id))
	}
	f.mu.Unlock()
	_ = atMost(4, len(paths), func(i int) error {
		p := paths[i]
		r, err := f.api.do(ctx, http.MethodDelete, f.api.url(p), nil, "", auth)
		if err != nil {
			warn("DELETE %s: %v", p, err)
		} else if r.status != http.StatusNoContent && r.status != http.StatusNotFound {
			warn("DELETE %s: %s", p, r)
		}
		return nil
	})
	if r, err := f.api.do(ctx, http.MethodPost, f.api.url("/auth/logout"), nil, "", auth); err != nil {
		warn("end the administrator's session: %v", err)
	} else if r.status/100 != 2 {
		warn("end the administrator's session: %s", r)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// ptrTo returns a pointer to v[name], nil when it is not there.
func ptrTo(v map[string]float64, name string) *float64 {
	x, ok := v[name]
	if !ok {
		return nil
	}
	return &x
}

// droppedNote is ", N audit events dropped" when the metric was scraped.
func droppedNote(r *Result) string {
	if r.AuditDropped == nil {
		return ""
	}
	return fmt.Sprintf(", %s %g", droppedMetric, *r.AuditDropped)
}

// atMost calls fn(0), ..., fn(n-1), at most width of them at a time, and
// returns their errors joined once all have returned.
func atMost(width, n int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
