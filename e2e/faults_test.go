package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso/internal/testredis"
)

// Faults under load (docs/deployment.md, "Outages"): two instances on
// PostgreSQL and a private Redis serve a mixed load while every PostgreSQL
// connection of the test's database is terminated, twice (the second time
// while Redis is down), and Redis is killed and started again empty. What
// must hold:
//
//   - no 5xx but 503 with Retry-After;
//   - every kind of request succeeds again without any operator action: a
//     request of each kind sent within 10 s of the dependency being back
//     succeeds (measured by a prober per kind; its answer may take longer
//     when it waits for a password-hashing slot);
//   - no refresh token is accepted twice (REFRESH_TOKEN_REUSE_GRACE_SECONDS
//     is 0, so a second acceptance is never a grace retry);
//   - no active session without a live refresh token and no live refresh
//     token without its active session;
//   - every 2xx answer to an audited request has its audit event;
//   - a session ended before Redis lost its data stays ended.

// Request kinds of the fault load.
const (
	kindLogin   = "password login"
	kindRefresh = "refresh rotation"
	kindService = "client credentials"
	kindRead    = "bearer read"
	kindAdmin   = "admin write"
)

var faultKinds = []string{kindLogin, kindRefresh, kindService, kindRead, kindAdmin}

// faultRecoveryBound is how soon after a dependency is back every kind of
// request must succeed again.
const faultRecoveryBound = 10 * time.Second

// faultOutcome is one HTTP exchange of the load.
type faultOutcome struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (o faultOutcome) unavailable() bool {
	return o.err != nil || o.status == http.StatusServiceUnavailable
}

func (o faultOutcome) String() string {
	if o.err != nil {
		return "error: " + o.err.Error()
	}
	return fmt.Sprintf("%d %s", o.status, strings.TrimSpace(string(o.body)))
}

// faultEvent is one injected fault: the dependency is down from down to
// back (the same instant for a terminated connection).
type faultEvent struct {
	name       string
	down, back time.Time
	recovered  map[string]recovery // kind -> first success after back
}

// faultLoad is the state the load's goroutines share.
type faultLoad struct {
	servers [2]*Server
	clients [2]*http.Client
	stop    time.Time // no new work after this; retries may go on until hard
	hard    time.Time

	mu         sync.Mutex
	successes  map[string]int             // kind -> 2xx answers
	statuses   map[string]map[string]int  // endpoint -> status -> count
	latencies  map[string][]time.Duration // endpoint -> every answer's latency
	bad5xx     []string                   // 5xx other than 503 with Retry-After
	unexpected []string                   // answers the load cannot explain
	accepted   map[string]int             // refresh token -> 200s
	doubles    []string                   // refresh tokens accepted twice
	audited    map[string]string          // request id of an audited 2xx -> endpoint
	ended      []string                   // access tokens of sessions ended on purpose
	reasons    map[string]int             // endpoint and description of a 503 -> count
	replays    int
	races      int
	netErrors  atomic.Int64
}

// send runs one request on instance i and records its outcome.
func (l *faultLoad) send(i int, kind, endpoint string, build func(base string) (*http.Request, error)) faultOutcome {
	req, err := build(l.servers[i].URL)
	if err != nil {
		panic(err) // the load builds only valid requests
	}
	started := time.Now()
	resp, err := l.clients[i].Do(req)
	var o faultOutcome
	if err != nil {
		o.err = err
	} else {
		o.status, o.header = resp.StatusCode, resp.Header
		o.body, o.err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	label := "network error"
	if o.err == nil {
		label = strconv.Itoa(o.status)
	} else {
		l.netErrors.Add(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.err == nil && o.status >= 200 && o.status < 300 {
		l.successes[kind]++
	}
	if l.statuses[endpoint] == nil {
		l.statuses[endpoint] = map[string]int{}
	}
	l.statuses[endpoint][label]++
	l.latencies[endpoint] = append(l.latencies[endpoint], time.Since(started))
	if o.err == nil && o.status == http.StatusServiceUnavailable {
		var m struct {
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(o.body, &m)
		l.reasons[endpoint+": "+m.Description]++
	}
	if o.err == nil && o.status >= 500 && (o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "") {
		l.bad5xx = append(l.bad5xx, fmt.Sprintf("%s (instance %d, at %s): %d Retry-After=%q %s", endpoint, i,
			started.Format("15:04:05.000"), o.status, o.header.Get("Retry-After"), strings.TrimSpace(string(o.body))))
	}
	return o
}

// audit remembers the request id of a 2xx answer whose route writes an
// audit event.
func (l *faultLoad) audit(endpoint string, o faultOutcome) {
	id := o.header.Get("X-Request-Id")
	l.mu.Lock()
	defer l.mu.Unlock()
	if id == "" {
		l.unexpected = append(l.unexpected, endpoint+": 2xx without X-Request-Id")
		return
	}
	l.audited[id] = endpoint
}

func (l *faultLoad) unexpectedf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unexpected = append(l.unexpected, fmt.Sprintf(format, args...))
}

// accept records a 200 for refresh token tok.
func (l *faultLoad) accept(tok string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted[tok]++
	if l.accepted[tok] == 2 {
		l.doubles = append(l.doubles, tok[:8]+"...")
	}
}

// retryPause is how long the load waits after a 503 or a network error,
// shorter than Retry-After: it keeps pressing, to measure recovery.
const retryPause = 100 * time.Millisecond

// faultWorker is one user of the load: it logs in, refreshes, reads its
// profile, asks for service tokens and makes administrative writes.
type faultWorker struct {
	l                       *faultLoad
	n                       int
	userID, username        string
	adminBearer             string
	clientID, clientSecret  string
	access, refresh         string
	rotations, writes, step int
	prober                  bool // sends one kind of request after each outage
}

func formRequest(path string, form url.Values, basic *[2]string) func(string) (*http.Request, error) {
	return func(base string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic != nil {
			req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
		}
		return req, nil
	}
}

func jsonRequest(method, path string, body any, bearer string) func(string) (*http.Request, error) {
	return func(base string) (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			rd = strings.NewReader(string(b))
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		return req, nil
	}
}

func (w *faultWorker) run() {
	for time.Now().Before(w.l.stop) {
		w.step++
		i := w.step % 2
		if w.refresh == "" {
			w.login(i)
			continue
		}
		switch w.step % 8 {
		case 0, 3, 6:
			w.read(i)
		case 1, 5:
			w.rotate(i)
		case 2, 7:
			w.service(i)
		case 4:
			w.adminWrite(i)
		}
	}
}

func (w *faultWorker) login(i int) bool {
	const ep = "POST /auth/token (password)"
	o := w.l.send(i, kindLogin, ep, formRequest(pathToken, url.Values{
		"grant_type": {"password"}, "username": {w.username}, "password": {strongPassword}}, nil))
	switch {
	case o.err == nil && o.status == http.StatusOK:
		var tr tokenResponse
		if err := json.Unmarshal(o.body, &tr); err != nil || tr.RefreshToken == "" || tr.AccessToken == "" {
			w.l.unexpectedf("%s: 200 without tokens: %s", ep, o)
			return false
		}
		w.access, w.refresh = tr.AccessToken, tr.RefreshToken
		w.l.audit(ep, o)
		return true
	case o.unavailable() && !w.prober:
		// A client honours Retry-After here: logins cost a password
		// hash, and a herd of them after an outage would only keep the
		// hasher saturated (503) for everyone, the probers included.
		time.Sleep(retryAfter(o))
	case o.unavailable():
	default:
		w.l.unexpectedf("%s: %s", ep, o)
	}
	return false
}

// retryAfter is the Retry-After of o (at most 2 s), or retryPause.
func retryAfter(o faultOutcome) time.Duration {
	if o.err == nil {
		if n, err := strconv.Atoi(o.header.Get("Retry-After")); err == nil && n > 0 {
			return min(time.Duration(n)*time.Second, 2*time.Second)
		}
	}
	return retryPause
}

// present sends refresh token tok until it gets an answer other than 503
// or a network error, alternating instances: a retry after an answer that
// was lost must never be a second acceptance. It returns the last outcome
// and the tokens of a 200, and whether an earlier attempt went unanswered.
// It stops retrying after until.
func (w *faultWorker) present(i int, tok string, until time.Time) (o faultOutcome, tr tokenResponse, retried bool) {
	const ep = "POST /auth/token (refresh_token)"
	for attempt := 0; ; attempt++ {
		retried = attempt > 0
		o = w.l.send((i+attempt)%2, kindRefresh, ep, formRequest(pathToken, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tok}}, nil))
		if !o.unavailable() || time.Now().After(until) {
			break
		}
		time.Sleep(retryPause)
	}
	if o.err == nil && o.status == http.StatusOK {
		w.l.accept(tok)
		if err := json.Unmarshal(o.body, &tr); err != nil || tr.RefreshToken == "" {
			w.l.unexpectedf("%s: 200 without tokens: %s", ep, o)
		}
		w.l.audit(ep, o)
	}
	return o, tr, retried
}

// rotate refreshes the worker's token. Every seventh rotation presents the
// token to both instances at once; every sixth, when it succeeds, replays
// the spent token afterwards. Both end the family (reuse, with no grace), and
// the access token of the ended session is kept to be checked at the end.
func (w *faultWorker) rotate(i int) {
	w.rotations++
	tok := w.refresh
	if w.rotations%7 == 0 {
		w.race(tok)
		return
	}
	o, tr, retried := w.present(i, tok, w.l.hard)
	switch {
	case o.err == nil && o.status == http.StatusOK:
		w.access, w.refresh = tr.AccessToken, tr.RefreshToken
	case o.err == nil && o.status == http.StatusBadRequest && retried:
		// The family is gone: an earlier attempt of this token may have
		// been committed though its answer was lost, and this one was
		// then reuse. Log in again.
		w.access, w.refresh = "", ""
		return
	default:
		w.l.unexpectedf("refresh: %s", o)
		w.access, w.refresh = "", ""
		return
	}
	if w.rotations%6 != 0 {
		return
	}
	w.l.mu.Lock()
	w.l.replays++
	w.l.mu.Unlock()
	r, _, _ := w.present(i+1, tok, w.l.hard)
	if r.err == nil && r.status == http.StatusBadRequest {
		w.l.mu.Lock()
		w.l.ended = append(w.l.ended, w.access)
		w.l.mu.Unlock()
	}
	w.access, w.refresh = "", ""
}

// race presents tok to both instances at once.
func (w *faultWorker) race(tok string) {
	w.l.mu.Lock()
	w.l.races++
	w.l.mu.Unlock()
	var wg sync.WaitGroup
	var outs [2]faultOutcome
	var trs [2]tokenResponse
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k], trs[k], _ = w.present(k, tok, w.l.hard)
		}()
	}
	wg.Wait()
	w.access, w.refresh = "", ""
	ok := func(k int) bool { return outs[k].err == nil && outs[k].status == http.StatusOK }
	bad := func(k int) bool { return outs[k].err == nil && outs[k].status == http.StatusBadRequest }
	for k := range 2 {
		switch {
		case ok(k) && bad(1-k):
			// The other presentation was reuse: the winner's session is
			// ended with its family.
			w.l.mu.Lock()
			w.l.ended = append(w.l.ended, trs[k].AccessToken)
			w.l.mu.Unlock()
		case !ok(k) && !bad(k):
			w.l.unexpectedf("refresh (concurrent): %s", outs[k])
		}
	}
}

func (w *faultWorker) read(i int) bool {
	const ep = "GET /users/me"
	o := w.l.send(i, kindRead, ep, jsonRequest(http.MethodGet, apiPrefix+"/users/me", nil, w.access))
	return w.settled(ep, o, o.status == http.StatusOK, false)
}

// settled reports whether o succeeded (ok, and then audited when audit
// is set); a refusal for unavailability is expected under faults, and any
// other answer is unexpected.
func (w *faultWorker) settled(ep string, o faultOutcome, ok, audit bool) bool {
	switch {
	case o.err == nil && ok:
		if audit {
			w.l.audit(ep, o)
		}
		return true
	case o.unavailable():
	default:
		w.l.unexpectedf("%s: %s", ep, o)
	}
	return false
}

func (w *faultWorker) service(i int) bool {
	const ep = "POST /auth/token (client_credentials)"
	o := w.l.send(i, kindService, ep, formRequest(pathToken, url.Values{"grant_type": {"client_credentials"}},
		&[2]string{w.clientID, w.clientSecret}))
	return w.settled(ep, o, o.status == http.StatusOK, true)
}

// adminWrite updates the worker's user or creates a role, as the
// administrator.
func (w *faultWorker) adminWrite(i int) bool {
	w.writes++
	var ep string
	var build func(string) (*http.Request, error)
	if w.writes%2 == 0 {
		ep = "PUT /users/{id}"
		build = jsonRequest(http.MethodPut, apiPrefix+"/users/"+w.userID,
			map[string]any{"first_name": fmt.Sprintf("Load%d", w.writes)}, w.adminBearer)
	} else {
		ep = "POST /roles"
		build = jsonRequest(http.MethodPost, apiPrefix+"/roles",
			map[string]any{"name": fmt.Sprintf("fault-%d-%d-%d", w.n, w.writes, time.Now().UnixNano()%1e6),
				"description": "fault load"}, w.adminBearer)
	}
	o := w.l.send(i, kindAdmin, ep, build)
	return w.settled(ep, o, o.status >= 200 && o.status < 300, true)
}

// probe sends requests of one kind, every retryPause, alternating
// instances, until one succeeds or until passes. It returns when the
// successful request was sent and when it was answered.
func (w *faultWorker) probe(kind string, until time.Time) (recovery, bool) {
	for i := 0; time.Now().Before(until); i++ {
		sent := time.Now()
		if w.try(kind, i%2) {
			return recovery{sent: sent, answered: time.Now()}, true
		}
		time.Sleep(retryPause)
	}
	return recovery{}, false
}

// recovery is the first successful request of a kind after an outage.
type recovery struct{ sent, answered time.Time }

// try sends one request of kind to instance i and reports its success.
func (w *faultWorker) try(kind string, i int) bool {
	switch kind {
	case kindLogin:
		return w.login(i)
	case kindRefresh:
		if w.refresh == "" {
			w.login(i)
			return false
		}
		o, tr, _ := w.present(i, w.refresh, time.Now())
		switch {
		case o.err == nil && o.status == http.StatusOK:
			w.access, w.refresh = tr.AccessToken, tr.RefreshToken
			return true
		case !o.unavailable():
			// 400: an earlier attempt answered 503 may have been
			// committed (a COMMIT whose answer was lost), and this
			// one was reuse. Log in again.
			w.access, w.refresh = "", ""
		}
		return false
	case kindRead:
		if w.access == "" {
			w.login(i)
			return false
		}
		return w.read(i)
	case kindService:
		return w.service(i)
	default:
		return w.adminWrite(i)
	}
}

// terminateConnections ends every other PostgreSQL connection to the
// test's own database and returns how many it ended.
func terminateConnections(t *testing.T, dbURL string) int {
	t.Helper()
	ctx, conn, done := connectPostgres(t, dbURL, "the test database", 10*time.Second)
	defer done()
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended`).Scan(&n)
	if err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	return n
}

// faultDuration is the load's length: PERMISO_TEST_FAULTS_SECONDS, at least
// 24 (the default), so that every fault is followed by 10 s of load.
func faultDuration(t *testing.T) time.Duration {
	d := 24 * time.Second
	if v := os.Getenv("PERMISO_TEST_FAULTS_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PERMISO_TEST_FAULTS_SECONDS=%q: want a number of seconds", v)
		}
		d = max(d, time.Duration(n)*time.Second)
	}
	return d
}

// TestFaultsUnderLoad runs a mixed load (password logins, refresh
// rotations, client credentials, bearer reads, administrative writes)
// against two instances on PostgreSQL and a private Redis, terminates every
// PostgreSQL connection of the test's own database, then kills Redis,
// terminates the connections again while it is down and starts it again
// empty, and checks the properties listed at the top of this file, with
// one table of figures in the log.
func TestFaultsUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("e2e tests start real servers; skipped in -short mode")
	}
	pg := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if pg == "" {
		t.Skip("PERMISO_TEST_DATABASE_URL is not set")
	}
	rd := testredis.Start(t, 0)
	env := provisionPostgresRedis(t, pg, "redis://"+rd.Addr+"/0")
	extra := map[string]string{
		"REFRESH_TOKEN_REUSE_GRACE_SECONDS": "0",
		"RATE_LIMIT_LOGIN":                  "100000/minute",
		"RATE_LIMIT_REFRESH":                "100000/minute",
		"RATE_LIMIT_SERVICE_TOKEN":          "100000/minute",
		"RATE_LIMIT_REGISTER":               "100000/minute",
		"RATE_LIMIT_API":                    "1000000/minute",
		"JWT_SECRET_KEY":                    randomHex(t, 32), // one key for both instances
	}
	for k, v := range extra {
		env[k] = v
	}
	dbURL := env["DATABASE_URL"]
	a := startServer(t, env)
	b := startServer(t, env)
	requireRoute(t, a, http.MethodPost, pathToken)
	a.createAdmin(t, adminUser, adminEmail, strongPassword)
	admin := a.login(t, adminUser, strongPassword, "")
	// A service client whose own limits the load stays under.
	r := a.postJSON(t, pathClients, map[string]any{"name": "faults", "client_id": "faults-client",
		"client_type": "confidential", "scope_ids": a.scopeIDs(t, admin.AccessToken, "read:profile"),
		"rate_limit_per_minute": 1000, "rate_limit_per_hour": 100000}, admin.AccessToken)
	mustStatus(t, r, http.StatusCreated)
	var created struct {
		ClientSecret string `json:"client_secret"`
	}
	r.Decode(t, &created)
	clientID, secret := "faults-client", created.ClientSecret

	l := &faultLoad{
		servers:   [2]*Server{a, b},
		statuses:  map[string]map[string]int{},
		accepted:  map[string]int{},
		audited:   map[string]string{},
		successes: map[string]int{},
		latencies: map[string][]time.Duration{},
		reasons:   map[string]int{},
	}
	for k := range 2 {
		l.clients[k] = &http.Client{Timeout: 15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}
	}
	const workers = 4
	var ws []*faultWorker
	for n := range workers {
		name := fmt.Sprintf("fault%d", n)
		r := a.postJSON(t, apiPrefix+"/users", map[string]any{"username": name, "email": name + "@example.com",
			"password": strongPassword, "is_verified": true}, admin.AccessToken)
		mustStatus(t, r, http.StatusCreated)
		ws = append(ws, &faultWorker{l: l, n: n, userID: r.JSON(t)["id"].(string), username: name,
			adminBearer: admin.AccessToken, clientID: clientID, clientSecret: secret})
	}

	// One prober per kind of request, each with a session of its own, all
	// of one user.
	r = a.postJSON(t, apiPrefix+"/users", map[string]any{"username": "faultprobe", "email": "faultprobe@example.com",
		"password": strongPassword, "is_verified": true}, admin.AccessToken)
	mustStatus(t, r, http.StatusCreated)
	probeUser := r.JSON(t)["id"].(string)
	probers := map[string]*faultWorker{}
	for n, k := range faultKinds {
		probers[k] = &faultWorker{l: l, n: workers + n, userID: probeUser, username: "faultprobe",
			adminBearer: admin.AccessToken, clientID: clientID, clientSecret: secret, prober: true}
		if k == kindRefresh || k == kindRead { // they start with tokens
			tr := a.login(t, "faultprobe", strongPassword, "")
			probers[k].access, probers[k].refresh = tr.AccessToken, tr.RefreshToken
		}
	}

	// Two sessions ended before Redis loses its data: one by logout, one
	// by reuse detection. Their access tokens must stay refused.
	loggedOut := a.login(t, ws[0].username, strongPassword, "")
	if r := b.postJSON(t, pathLogout, nil, loggedOut.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	reused := a.login(t, ws[1].username, strongPassword, "")
	rotated := mustTokens(t, a.refresh(t, reused.RefreshToken, ""), true)
	assertOAuthError(t, b.refresh(t, reused.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
	for _, tok := range []string{loggedOut.AccessToken, reused.AccessToken, rotated.AccessToken} {
		assertInvalidToken(t, b.get(t, apiPrefix+"/users/me", tok))
	}
	l.ended = append(l.ended, loggedOut.AccessToken, reused.AccessToken, rotated.AccessToken)

	// The load, and the faults on a fixed schedule: blocks of 24 s (one by
	// default), each with two outages followed by 10 s of load: every
	// PostgreSQL connection terminated at +1 s; Redis killed at +11 s,
	// every PostgreSQL connection terminated again while it is down, Redis
	// started again empty at +14 s. After each outage a prober per kind of
	// request sends it until it succeeds, for at most 10 s.
	total := faultDuration(t)
	start := time.Now()
	l.stop = start.Add(total)
	l.hard = l.stop.Add(5 * time.Second)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.run() }()
	}
	var events []*faultEvent
	var probes sync.WaitGroup
	probe := func(e *faultEvent) {
		var mu sync.Mutex
		e.recovered = map[string]recovery{}
		for _, k := range faultKinds {
			probes.Add(1)
			go func() {
				defer probes.Done()
				if at, ok := probers[k].probe(k, e.back.Add(faultRecoveryBound)); ok {
					mu.Lock()
					e.recovered[k] = at
					mu.Unlock()
				}
			}()
		}
	}
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }
	const block = 24 * time.Second
	for b := time.Duration(0); b+block <= total; b += block {
		at(b + time.Second)
		n := terminateConnections(t, dbURL)
		now := time.Now()
		events = append(events, &faultEvent{name: fmt.Sprintf("PostgreSQL connections terminated (%d)", n), down: now, back: now})
		probe(events[len(events)-1])
		at(b + 11*time.Second)
		probes.Wait() // the probe of the last outage ends before the next
		down := time.Now()
		rd.Kill()
		at(b + 12*time.Second)
		n = terminateConnections(t, dbURL)
		at(b + 14*time.Second)
		rd.Restart(t)
		events = append(events, &faultEvent{name: fmt.Sprintf("Redis down 3 s, PG terminated (%d), Redis empty", n), down: down, back: time.Now()})
		probe(events[len(events)-1])
		probes.Wait()
	}
	wg.Wait()
	loadEnd := time.Now()

	// Sessions ended before (and during) the faults stay ended.
	l.mu.Lock()
	ended := slices.Clone(l.ended)
	l.mu.Unlock()
	revived := 0
	for _, tok := range ended {
		var r *Response
		for deadline := time.Now().Add(10 * time.Second); ; {
			r = b.get(t, apiPrefix+"/users/me", tok)
			if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r.Status == http.StatusOK {
			revived++
		} else if r.Status != http.StatusUnauthorized {
			t.Errorf("access token of an ended session: %s, want 401", r)
		}
	}

	// Stop both instances gracefully: the audit writers flush.
	a.stop(t)
	b.stop(t)

	// Figures.
	var report strings.Builder
	fmt.Fprintf(&report, "faults under load: %d workers on 2 instances for %s (load ended %s after start)\n",
		workers, total, loadEnd.Sub(start).Round(time.Millisecond))
	fmt.Fprintf(&report, "%-40s %8s %8s %8s %8s %8s %8s %9s %9s\n", "endpoint", "total", "2xx", "4xx", "503", "other5xx", "neterr", "p50 ms", "max ms")
	for _, ep := range mapKeys(l.statuses) {
		var tot, ok, c4, c503, c5, ne int
		for st, n := range l.statuses[ep] {
			tot += n
			code, _ := strconv.Atoi(st)
			switch {
			case st == "network error":
				ne += n
			case code >= 200 && code < 300:
				ok += n
			case code >= 400 && code < 500:
				c4 += n
			case code == 503:
				c503 += n
			case code >= 500:
				c5 += n
			}
		}
		lat := slices.Sorted(slices.Values(l.latencies[ep]))
		fmt.Fprintf(&report, "%-40s %8d %8d %8d %8d %8d %8d %9d %9d\n", ep, tot, ok, c4, c503, c5, ne,
			lat[len(lat)/2].Milliseconds(), lat[len(lat)-1].Milliseconds())
	}
	for _, r := range mapKeys(l.reasons) {
		fmt.Fprintf(&report, "  503 %-60s %5d\n", r, l.reasons[r])
	}
	fmt.Fprintf(&report, "refresh tokens accepted: %d; concurrent double presentations: %d; replays: %d; tokens accepted twice: %d\n",
		len(l.accepted), l.races, l.replays, len(l.doubles))
	fmt.Fprintf(&report, "%-53s", "recovery after the dependency is back (s)")
	for _, k := range faultKinds {
		fmt.Fprintf(&report, " %18s", k)
	}
	report.WriteString("\n")
	var notRecovered []string
	for _, e := range events {
		fmt.Fprintf(&report, "%-44s +%5.1fs ", e.name, e.back.Sub(start).Seconds())
		for _, k := range faultKinds {
			rec, ok := e.recovered[k]
			if !ok {
				fmt.Fprintf(&report, " %18s", "not recovered")
				notRecovered = append(notRecovered, fmt.Sprintf("%s after %q", k, e.name))
				continue
			}
			fmt.Fprintf(&report, " %18s", fmt.Sprintf("%.2f (%.2f)", rec.sent.Sub(e.back).Seconds(), rec.answered.Sub(e.back).Seconds()))
		}
		report.WriteString("\n")
	}
	report.WriteString("(from the dependency being back to when a prober sent the first request of each kind that succeeded, and\n" +
		" in parentheses to its answer; the logins' answers wait for a password-hashing slot; +time of the return since the load started)\n")
	fmt.Fprintf(&report, "ended sessions checked after the faults: %d, accepted again: %d\n", len(ended), revived)

	// The database, once both instances have stopped.
	ctx, conn, done := connectPostgres(t, dbURL, "the test database", 30*time.Second)
	defer done()
	ids := mapKeys(l.audited)
	rows, err := conn.Query(ctx, `SELECT DISTINCT request_id FROM audit_events WHERE request_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, id := range ids {
		if !slices.Contains(found, id) {
			missing = append(missing, l.audited[id]+" "+id)
		}
	}
	fmt.Fprintf(&report, "audited 2xx answers: %d, without their audit event: %d\n", len(ids), len(missing))
	orphanSessions := queryStrings(ctx, t, conn, `SELECT s.id::text FROM user_sessions s
		WHERE s.revoked_at IS NULL AND s.expires_at > now()
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id
			AND r.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > now())`)
	orphanTokens := queryStrings(ctx, t, conn, `SELECT r.id::text FROM refresh_tokens r
		LEFT JOIN user_sessions s ON s.id = r.session_id
		WHERE r.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > now()
		AND (s.id IS NULL OR s.revoked_at IS NOT NULL OR s.expires_at <= now())`)
	twoChildren := queryStrings(ctx, t, conn, `SELECT parent_id::text FROM refresh_tokens
		WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING count(*) > 1`)
	var sessions, activeSessions int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > now())
		FROM user_sessions`).Scan(&sessions, &activeSessions); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&report, "sessions: %d (%d active); active without a live refresh token: %d; live refresh tokens without an active session: %d; rotated twice: %d\n",
		sessions, activeSessions, len(orphanSessions), len(orphanTokens), len(twoChildren))
	t.Log("\n" + report.String())

	// Assertions.
	if len(events) == 0 {
		t.Fatal("no fault was injected")
	}
	for _, k := range faultKinds {
		if l.successes[k] == 0 {
			t.Errorf("%s: no request succeeded during the run", k)
		}
	}
	if len(l.bad5xx) > 0 {
		t.Errorf("%d 5xx answers other than 503 with Retry-After, first ones:\n%s", len(l.bad5xx), strings.Join(first(l.bad5xx, 10), "\n"))
	}
	if n := l.netErrors.Load(); n > 0 {
		t.Errorf("%d requests failed at the transport (an instance closed or hung a connection)", n)
	}
	if len(l.unexpected) > 0 {
		t.Errorf("%d unexpected answers, first ones:\n%s", len(l.unexpected), strings.Join(first(l.unexpected, 10), "\n"))
	}
	for _, m := range notRecovered {
		t.Errorf("not recovered within %s: %s", faultRecoveryBound, m)
	}
	if len(l.doubles) > 0 || len(twoChildren) > 0 {
		t.Errorf("refresh tokens accepted twice: %d by the load's count, %d rotated twice in the database", len(l.doubles), len(twoChildren))
	}
	if len(orphanSessions) > 0 {
		t.Errorf("active sessions without a live refresh token: %v", first(orphanSessions, 10))
	}
	if len(orphanTokens) > 0 {
		t.Errorf("live refresh tokens without an active session: %v", first(orphanTokens, 10))
	}
	if len(missing) > 0 {
		t.Errorf("%d audited 2xx answers have no audit event: %v", len(missing), first(missing, 10))
	}
	if revived > 0 {
		t.Errorf("%d access tokens of ended sessions were accepted again after the faults", revived)
	}
}

func queryStrings(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) []string {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
