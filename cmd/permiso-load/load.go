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
	"sync/atomic"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	URL             string    `json:"url"`
	StartedAt       string    `json:"started_at"`
	GoVersion       string    `json:"go_version"` // of permiso-load
	GOMAXPROCS      int       `json:"gomaxprocs"`
	NumCPU          int       `json:"num_cpu"`
	Concurrency     int       `json:"concurrency"`
	DurationSeconds float64   `json:"duration_seconds"`
	Clients         int       `json:"clients,omitempty"`
	Scenarios       []*Result `json:"scenarios"`
}

// Service clients of the client-credentials pool get the largest own
// limits the admin API accepts (rate_limit_per_minute 1-1000,
// rate_limit_per_hour 60-100000). One client alone could not be measured
// above 1000 tokens a minute, so the scenario moves to the next client of
// the pool after clientBudget tokens.
const (
	clientBudget  = 1000
	clientPerHour = 100000
	// tokensPerCPU is a generous guess of client-credentials tokens per
	// second per CPU, used only to size the pool: a pool used up within a
	// minute shows as 429s and a note, never as a silent error.
	tokensPerCPU = 5000
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

	var runErr error
	for _, name := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "permiso-load: %-18s preparing\n", name)
		workers, done, err := prepare(ctx, name, cfg, api, env)
		if err != nil {
			runErr = fmt.Errorf("scenario %s: %w", name, err)
			break
		}
		res := measure(ctx, name, cfg.concurrency, cfg.duration, workers)
		done()
		if name == scClientCredentials {
			rep.Clients = len(env.clients)
			if res.Status.TooMany > 0 {
				res.Note = fmt.Sprintf("429s: the pool of %d service clients (%d tokens a minute each) was used up; raise -clients", len(env.clients), clientBudget)
			}
		}
		if cfg.needsServer() && cfg.metricsPath != "" && ctx.Err() == nil {
			if v, err := scrapeDropped(ctx, api, cfg.metricsPath); err != nil {
				fmt.Fprintf(stderr, "permiso-load: %-18s metrics: %v\n", name, err)
			} else {
				res.AuditDropped = &v
			}
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

// prepare returns the request functions of one scenario (one per worker,
// or one shared by all) and what to do when it is over.
func prepare(ctx context.Context, name string, cfg *config, api *apiClient, env *fixture) ([]requestFunc, func(), error) {
	nop := func() {}
	switch name {
	case scBaseline:
		return baseline(api)

	case scClientCredentials:
		if err := env.ensureClients(ctx, env.poolSize(cfg)); err != nil {
			return nil, nil, err
		}
		tokenURL, body := api.url("/auth/token"), []byte("grant_type=client_credentials")
		pool := env.clients
		var n atomic.Int64
		req := func(ctx context.Context) (int, error) {
			i := n.Add(1) - 1
			c := pool[(i/clientBudget)%int64(len(pool))]
			return api.hit(ctx, http.MethodPost, tokenURL, body, formType, c.basic)
		}
		// One checked request first: the run must measure issued tokens.
		n.Add(1)
		if _, _, err := api.tokenRequest(ctx, url.Values{"grant_type": {"client_credentials"}}, pool[0].basic); err != nil {
			return nil, nil, err
		}
		return []requestFunc{req}, nop, nil

	case scBearer:
		access, err := env.userAccessToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		meURL, auth := api.url("/users/me"), "Bearer "+access
		if r, err := api.do(ctx, http.MethodGet, meURL, nil, "", auth); err != nil {
			return nil, nil, err
		} else if r.status != http.StatusOK {
			return nil, nil, fmt.Errorf("GET %s: %s", meURL, r)
		}
		req := func(ctx context.Context) (int, error) {
			return api.hit(ctx, http.MethodGet, meURL, nil, "", auth)
		}
		return []requestFunc{req}, nop, nil

	case scIntrospect:
		if err := env.ensureClients(ctx, 1); err != nil {
			return nil, nil, err
		}
		access, err := env.userAccessToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		introURL, auth := api.url("/auth/introspect"), env.clients[0].basic
		body := []byte(url.Values{"token": {access}}.Encode())
		r, err := api.do(ctx, http.MethodPost, introURL, body, formType, auth)
		if err != nil {
			return nil, nil, err
		}
		var got struct {
			Active bool `json:"active"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || !got.Active {
			return nil, nil, fmt.Errorf("introspection of a fresh user token by a service client: %s (want 200, active true)", r)
		}
		req := func(ctx context.Context) (int, error) {
			return api.hit(ctx, http.MethodPost, introURL, body, formType, auth)
		}
		return []requestFunc{req}, nop, nil

	case scRefresh:
		// One chain per worker, from a login of the worker's own user.
		if err := env.ensureWorkerUsers(ctx, cfg.concurrency); err != nil {
			return nil, nil, err
		}
		admin, err := env.adminToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		users := env.workerUsers[:cfg.concurrency]
		workers := make([]requestFunc, len(users))
		errs := make([]error, len(users))
		sem := make(chan struct{}, 2) // each login is an argon2id hash
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				t, err := env.login(ctx, u, admin)
				workers[i], errs[i] = env.refreshWorker(u, t.RefreshToken, admin), err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, nil, err
		}
		return workers, nop, nil

	case scPassword:
		if err := env.ensureWorkerUsers(ctx, cfg.concurrency); err != nil {
			return nil, nil, err
		}
		admin, err := env.adminToken(ctx)
		if err != nil {
			return nil, nil, err
		}
		workers := make([]requestFunc, cfg.concurrency)
		for i, u := range env.workerUsers[:cfg.concurrency] {
			workers[i] = env.passwordWorker(u, admin)
		}
		return workers, nop, nil
	}
	return nil, nil, fmt.Errorf("unknown scenario %q", name)
}

// baseline starts a bare net/http server on 127.0.0.1:0 in this process,
// answering a tiny JSON body, and returns the request that hammers it with
// the same client as every other scenario.
func baseline(api *apiClient) ([]requestFunc, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
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
	return []requestFunc{req}, func() { _ = srv.Close() }, nil
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
	errs := make([]error, n)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			u := loadUser{
				name:     fmt.Sprintf("permiso_load_%s_%d", f.runID, first+i),
				password: "Load-" + randomHex(12) + "#9aZ",
			}
			body := map[string]any{"username": u.name, "email": fmt.Sprintf("permiso-load-%s-%d@example.com", f.runID, first+i), "password": u.password}
			deadline := time.Now().Add(time.Minute)
			for {
				r, err := f.api.postJSON(ctx, "/users", body, admin)
				if err != nil {
					errs[i] = err
					return
				}
				if r.status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
					if errs[i] = sleepCtx(ctx, retryAfter(r.header)); errs[i] != nil {
						return
					}
					continue
				}
				var created struct {
					ID string `json:"id"`
				}
				if r.status != http.StatusCreated || json.Unmarshal(r.body, &created) != nil || created.ID == "" {
					errs[i] = fmt.Errorf("create user %s: %s", u.name, r)
					return
				}
				u.id = created.ID
				break
			}
			f.mu.Lock()
			f.users = append(f.users, u)
			f.mu.Unlock()
			out[i] = u
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
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

// poolSize is the number of service clients the client-credentials
// scenario rotates through: enough that none serves more than
// clientBudget tokens within a minute at tokensPerCPU per CPU.
func (f *fixture) poolSize(cfg *config) int {
	if cfg.clients > 0 {
		return cfg.clients
	}
	window := min(cfg.duration, time.Minute).Seconds()
	n := int(math.Ceil(window*tokensPerCPU*float64(runtime.GOMAXPROCS(0))/clientBudget)) + 1
	return min(max(n, 2), maxClients)
}

// ensureClients creates service clients until the pool holds n.
func (f *fixture) ensureClients(ctx context.Context, n int) error {
	need := n - len(f.clients)
	if need <= 0 {
		return nil
	}
	admin, err := f.adminToken(ctx)
	if err != nil {
		return err
	}
	first := len(f.clients)
	created := make([]poolClient, need)
	errs := make([]error, need)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range need {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("permiso-load-%s-%d", f.runID, first+i)
			r, err := f.api.postJSON(ctx, "/service-clients", map[string]any{
				"name": "permiso-load " + id, "client_id": id, "client_type": "confidential",
				"scope_ids":             []string{f.readScope},
				"rate_limit_per_minute": clientBudget, "rate_limit_per_hour": clientPerHour,
			}, admin)
			if err != nil {
				errs[i] = err
				return
			}
			var body struct {
				Client struct {
					ClientID string `json:"client_id"`
				} `json:"client"`
				Secret string `json:"client_secret"`
			}
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &body) != nil || body.Secret == "" {
				errs[i] = fmt.Errorf("create service client %s: %s", id, r)
				return
			}
			f.mu.Lock()
			f.createdIDs = append(f.createdIDs, body.Client.ClientID)
			f.mu.Unlock()
			created[i] = poolClient{id: body.Client.ClientID, basic: basicAuth(body.Client.ClientID, body.Secret)}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.clients = append(f.clients, created...)
	return nil
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
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := f.api.do(ctx, http.MethodDelete, f.api.url(p), nil, "", auth)
			if err != nil {
				warn("DELETE %s: %v", p, err)
			} else if r.status != http.StatusNoContent && r.status != http.StatusNotFound {
				warn("DELETE %s: %s", p, r)
			}
		})
	}
	wg.Wait()
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

// droppedNote is ", N audit events dropped" when the metric was scraped.
func droppedNote(r *Result) string {
	if r.AuditDropped == nil {
		return ""
	}
	return fmt.Sprintf(", %s %g", droppedMetric, *r.AuditDropped)
}
