package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/metrics"
)

// gatedStore is a store whose refresh-token read and user lookup by
// login first run the gate, and whose login re-check (the fresh read of
// the user after the session was stored, oauth2's recheckLogin) the
// recheck gate, when one is set: the test holds a grant there, inside the
// server, while it cancels or breaks the request. On a store that rotates
// in one statement (permiso.RefreshRotator), gatedRotator holds it at the
// rotation, the refresh's first call.
type gatedStore struct {
	permiso.Store
	gate, recheck *atomic.Pointer[func(ctx context.Context) error]
}

func (s gatedStore) pass(ctx context.Context) error {
	if g := s.gate.Load(); g != nil {
		return (*g)(ctx)
	}
	return nil
}

func (s gatedStore) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	if err := s.pass(ctx); err != nil {
		return permiso.User{}, err
	}
	return s.Store.GetUserByLogin(ctx, login)
}

func (s gatedStore) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	if g := s.recheck.Load(); g != nil && permiso.FreshRead(ctx) {
		if err := (*g)(ctx); err != nil {
			return permiso.User{}, err
		}
	}
	return s.Store.GetUser(ctx, id)
}

func (s gatedStore) GetRefreshTokenSession(ctx context.Context, hash string) (permiso.RefreshToken, permiso.Session, error) {
	if err := s.pass(ctx); err != nil {
		return permiso.RefreshToken{}, permiso.Session{}, err
	}
	return s.Store.GetRefreshTokenSession(ctx, hash)
}

type gatedRotator struct {
	gatedStore
	rotator permiso.RefreshRotator
}

func (s gatedRotator) RotateRefreshToken(ctx context.Context, r permiso.RefreshRotation) (permiso.RefreshToken, permiso.Session, bool, error) {
	if err := s.pass(ctx); err != nil {
		return permiso.RefreshToken{}, permiso.Session{}, false, err
	}
	return s.rotator.RotateRefreshToken(ctx, r)
}

func (s gatedRotator) UndoRefreshRotation(ctx context.Context, presented, replacement uuid.UUID) error {
	return s.rotator.UndoRefreshRotation(ctx, presented, replacement)
}

// gated returns db gated at the refresh grant's first call, the user
// lookup by login and the login re-check (recheck).
func gated(db permiso.Store, gate, recheck *atomic.Pointer[func(ctx context.Context) error]) permiso.Store {
	if r := permiso.RefreshRotatorOf(db); r != nil {
		return gatedRotator{gatedStore{db, gate, recheck}, r}
	}
	return gatedStore{db, gate, recheck}
}

// closedEnv is a server on a gated store with its metrics and a log that
// keeps every record (debug and up).
type closedEnv struct {
	t       *testing.T
	db      permiso.Store
	user    permiso.User
	h       http.Handler
	log     *testlog.Buffer
	gate    *atomic.Pointer[func(ctx context.Context) error]
	recheck *atomic.Pointer[func(ctx context.Context) error]
	refresh string
}

func newClosedEnv(t *testing.T, db permiso.Store) *closedEnv {
	t.Helper()
	logger, log := testlog.NewLogger()
	gate, recheck := new(atomic.Pointer[func(ctx context.Context) error]), new(atomic.Pointer[func(ctx context.Context) error])
	m := metrics.New()
	w := newWired(t, wiring{db: gated(db, gate, recheck), logTo: logger.Handler(), noIdentity: true,
		options: func(opts *Options) { opts.MetricsPath = "/metrics" },
		deps:    Deps{Metrics: m.Handler(), Observe: m.ObserveHTTP}})
	u := activeUser(t, db, "gone", testwire.Hash(t, w.hasher, apiPassword), false)
	rec := serve(w.h, formRequest("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {"gone"}, "password": {apiPassword}}))
	return &closedEnv{t: t, db: db, user: u, h: withRequest(w.h), log: log, gate: gate, recheck: recheck, refresh: tokenResponse(t, rec, "login").RefreshToken}
}

// tokenRequest is a token request with the form, sent with ctx.
func (e *closedEnv) tokenRequest(ctx context.Context, base string, form url.Values) *http.Request {
	e.t.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/auth/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", contentTypeForm)
	return r
}

// requestKey carries the request's own context (withRequest), which a
// store call that runs without the request's cancellation (the read of a
// presented refresh token: oauth2 presentedToken) still sees as a value.
type requestKey struct{}

// withRequest is h with the request's context carried as a value
// (requestKey).
func withRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, r.Context())))
	})
}

// holdUntilDone is a gate that, at the first store call it sees, reports
// the request's arrival on entered, waits for the request's context to
// end, and lets the store's own call run; later calls pass at once. The
// answer is then what the store and the service make of the ended
// request.
func holdUntilDone(entered chan<- struct{}) *func(ctx context.Context) error {
	var held atomic.Bool
	g := func(ctx context.Context) error {
		if !held.CompareAndSwap(false, true) {
			return nil
		}
		entered <- struct{}{}
		if req, ok := ctx.Value(requestKey{}).(context.Context); ok {
			ctx = req
		}
		<-ctx.Done()
		return nil
	}
	return &g
}

// abandon sends the request req makes to a real server on h, with the
// gate holding it inside the server until its context ends, and gives it
// up (cancels it, as a client that goes away) once the gate holds it. It
// returns when the server has finished with the request.
func abandon(t *testing.T, h http.Handler, gate *atomic.Pointer[func(ctx context.Context) error],
	req func(ctx context.Context, srv *httptest.Server) *http.Request) {
	t.Helper()
	srv := httptest.NewServer(h)
	entered := make(chan struct{})
	gate.Store(holdUntilDone(entered))
	defer gate.Store(nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req(ctx, srv))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("answered before the gate: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	srv.Close() // waits for the handler
}

// tokenRequests returns the token endpoint's count in the metrics by status.
func (e *closedEnv) tokenRequests() map[string]string {
	e.t.Helper()
	rec := serve(e.h, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		e.t.Fatalf("metrics: %d", rec.Code)
	}
	re := regexp.MustCompile(`(?m)^permiso_http_requests_total\{method="POST",route="POST /api/v1/auth/token",status="(\d+)"\} (\d+)$`)
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(rec.Body.String(), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// records returns every log record written since mark (a length of the
// log), and the log's length now.
func (e *closedEnv) records(mark int) (recs []map[string]any, now int) {
	e.t.Helper()
	all := e.log.String()
	for line := range strings.SplitSeq(strings.TrimSpace(all[mark:]), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			e.t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		recs = append(recs, r)
	}
	return recs, len(all)
}

// levels sums up records: the access log's statuses, and every other
// record's message by level.
func levels(recs []map[string]any) (statuses []float64, byLevel map[string][]string) {
	byLevel = map[string][]string{}
	for _, r := range recs {
		if r["msg"] == "request" {
			if r["path"] != "/api/v1/auth/token" {
				continue // the metrics' scrapes
			}
			statuses = append(statuses, r["status"].(float64))
			continue
		}
		byLevel[r["level"].(string)] = append(byLevel[r["level"].(string)], r["msg"].(string))
	}
	return statuses, byLevel
}

// TestClientClosedRequest: a token request (a refresh or a password
// grant) whose client goes away while the server works on it is recorded
// as 499 in the access log and the metrics and logged at info level,
// never as a server error, and spends nothing (the grant works again); a
// real internal error, the
// store's own cancellation with the client still there, and a request
// the server cuts off (a cancellation with a cause: the shutdown's) stay
// 500, logged as errors (docs/deployment.md, "Monitoring"). On SQLite and
// PostgreSQL: the cancellation's error is each store's own. A server
// error is logged once, with the request id, the grant type and the error.
func TestClientClosedRequest(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) permiso.Store
	}{
		{"sqlite", func(t *testing.T) permiso.Store { return testdb.SQLite(t) }},
		{"postgres", func(t *testing.T) permiso.Store { return testdb.Postgres(t, "httpapi") }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newClosedEnv(t, st.open(t))
			mark := len(e.log.String())

			// A refresh grant held at its first store call, then a
			// password grant held at its user lookup: both given up.
			grants := []struct {
				name string
				form func() url.Values
			}{
				{"refresh", func() url.Values {
					return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.refresh}}
				}},
				{"password", func() url.Values {
					return url.Values{"grant_type": {"password"}, "username": {"gone"}, "password": {apiPassword}}
				}},
			}
			for i, g := range grants {
				t.Run("client gone/"+g.name, func(t *testing.T) {
					abandon(t, e.h, e.gate, func(ctx context.Context, srv *httptest.Server) *http.Request {
						return e.tokenRequest(ctx, srv.URL, g.form())
					})
					var recs []map[string]any
					recs, mark = e.records(mark)
					statuses, byLevel := levels(recs)
					if len(statuses) != 1 || statuses[0] != 499 {
						t.Logf("%v", recs)
						t.Fatalf("access log statuses %v, want [499]", statuses)
					}
					if len(byLevel["ERROR"]) != 0 || len(byLevel["WARN"]) != 0 {
						t.Fatalf("logged as a server error: %v", byLevel)
					}
					if got := strings.Join(byLevel["INFO"], ","); !strings.Contains(got, "client closed request") {
						t.Fatalf("info records %q", got)
					}
					if n := e.tokenRequests(); n["499"] != strconv.Itoa(i+1) || n["500"] != "" || n["503"] != "" {
						t.Fatalf("metrics %v", n)
					}
					// Nothing was spent: the grant works again.
					rec := serve(e.h, formRequest("/api/v1/auth/token", g.form()))
					e.refresh = tokenResponse(t, rec, g.name+" after the client left").RefreshToken
					_, mark = e.records(mark)
				})
			}

			// A password grant held at the re-check that confirms its
			// login, its session already stored: the session, whose
			// tokens are never delivered, is revoked all the same, and
			// nothing is logged as a warning.
			t.Run("client gone/password, session stored", func(t *testing.T) {
				sessions := func(activeOnly bool) int {
					ss, err := e.db.ListSessions(t.Context(), e.user.ID, activeOnly, time.Now())
					if err != nil {
						t.Fatal(err)
					}
					return len(ss)
				}
				live, all := sessions(true), sessions(false)
				abandon(t, e.h, e.recheck, func(ctx context.Context, srv *httptest.Server) *http.Request {
					return e.tokenRequest(ctx, srv.URL, grants[1].form())
				})
				var recs []map[string]any
				recs, mark = e.records(mark)
				statuses, byLevel := levels(recs)
				if len(statuses) != 1 || statuses[0] != 499 || len(byLevel["ERROR"]) != 0 || len(byLevel["WARN"]) != 0 {
					t.Fatalf("statuses %v, records %v", statuses, byLevel)
				}
				// The login stored its session (one more), then revoked it.
				if n, m := sessions(true), sessions(false); n != live || m != all+1 {
					t.Fatalf("sessions: %d live of %d after the abandoned login, %d of %d before; want its session stored and revoked", n, m, live, all)
				}
			})

			// serverError sends the refresh grant with gate set (and
			// cutOff run once it is sent) and checks that it is
			// answered with a server error, recorded as such in the
			// access log and the metrics, and logged as an error (or a
			// warning, for a 503).
			counted := map[string]int{"499": len(grants) + 1}
			serverError := func(t *testing.T, srv *httptest.Server, gate func(context.Context) error, cutOff func()) {
				t.Helper()
				e.gate.Store(&gate)
				defer e.gate.Store(nil)
				got := make(chan *http.Response, 1)
				go func() {
					resp, err := srv.Client().Do(e.tokenRequest(t.Context(), srv.URL,
						url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.refresh}}))
					if err != nil {
						t.Error(err)
					}
					got <- resp
				}()
				cutOff()
				resp := <-got
				if resp == nil {
					t.FailNow()
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				srv.Close()
				level := "ERROR"
				switch {
				case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), `"temporarily_unavailable"`):
					level = "WARN"
				case resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"server_error"`):
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				var recs []map[string]any
				recs, mark = e.records(mark)
				statuses, byLevel := levels(recs)
				if len(statuses) != 1 || int(statuses[0]) != resp.StatusCode {
					t.Logf("%v", recs)
					t.Fatalf("access log statuses %v, want [%d]", statuses, resp.StatusCode)
				}
				if len(byLevel[level]) == 0 || slices.Contains(byLevel["INFO"], "client closed request") {
					t.Fatalf("not logged as a server error (%s): %v", level, byLevel)
				}
				// Logged once, by the OAuth service, with what locates it.
				if len(byLevel["ERROR"])+len(byLevel["WARN"]) != 1 {
					t.Fatalf("a server error logged more than once: %v", byLevel)
				}
				for _, r := range recs {
					if r["level"] == level && (r["request_id"] != resp.Header.Get("X-Request-ID") || r["request_id"] == "" ||
						r["grant_type"] != "refresh_token" || r["error"] == "") {
						t.Fatalf("the server error's record lacks the request id, grant type or error: %v", r)
					}
				}
				counted[strconv.Itoa(resp.StatusCode)]++
				n := e.tokenRequests()
				for status, want := range counted {
					if n[status] != strconv.Itoa(want) {
						t.Fatalf("metrics %v, want %v", n, counted)
					}
				}
			}

			t.Run("internal error", func(t *testing.T) {
				serverError(t, httptest.NewServer(e.h), func(context.Context) error {
					return errors.New("the store is on fire")
				}, func() {})
			})

			t.Run("store's own cancellation", func(t *testing.T) {
				// context.Canceled with the request's context alive: not
				// the client's doing.
				serverError(t, httptest.NewServer(e.h), func(context.Context) error {
					return permiso.Wrap(permiso.EINTERNAL, "lookup abandoned", context.Canceled)
				}, func() {})
			})

			t.Run("cut off by the server", func(t *testing.T) {
				// As cmd/permiso cuts requests off at the end of a
				// shutdown: the base context cancelled with a cause.
				base, cutOff := context.WithCancelCause(context.Background())
				defer cutOff(nil)
				srv := httptest.NewUnstartedServer(e.h)
				srv.Config.BaseContext = func(net.Listener) context.Context { return base }
				srv.Start()
				entered := make(chan struct{})
				serverError(t, srv, *holdUntilDone(entered), func() {
					<-entered
					cutOff(errors.New("shutdown timeout reached"))
				})
			})
		})
	}
}

// TestHealthChecksOutliveTheirProber: a prober that gives up does not
// decide a health check's outcome (docs/deployment.md, "Monitoring"). A
// check that passes after the prober left is a 200; one that fails, or
// hangs until its own timeout as a stalled database does, is a 503 with
// the warning "health check failed", as when the prober waits.
func TestHealthChecksOutliveTheirProber(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		result  error // what the held check returns once the prober left
		hang    bool  // the check waits for its own timeout instead
		status  float64
		warned  bool
	}{
		{name: "passes", timeout: time.Hour, status: http.StatusOK},
		{name: "fails", timeout: time.Hour, result: errors.New("connection refused"),
			status: http.StatusServiceUnavailable, warned: true},
		{name: "hangs until its timeout", timeout: 50 * time.Millisecond, hang: true,
			status: http.StatusServiceUnavailable, warned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, log := testlog.NewLogger()
			entered, release := make(chan struct{}), make(chan error)
			opts := testOptions()
			opts.HealthCheckTimeout = tc.timeout
			h := NewServer(Deps{Logger: logger, Options: opts, Checks: []HealthCheck{
				{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
					entered <- struct{}{}
					if tc.hang {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					return nil, <-release
				}},
				StaticCheck("cache", map[string]any{"backend": "in-process"}),
			}})
			e := &closedEnv{t: t, h: h, log: log}
			srv := httptest.NewServer(h)
			ctx, cancel := context.WithCancel(t.Context())
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/health/ready", nil)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				resp, err := srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-entered
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("prober: %v", err)
			}
			if !tc.hang {
				release <- tc.result
			}
			srv.Close() // waits for the handler

			recs, _ := e.records(0)
			var statuses []float64
			warned := false
			for _, r := range recs {
				if r["msg"] == "request" {
					statuses = append(statuses, r["status"].(float64))
				}
				if r["level"] == "ERROR" {
					t.Errorf("logged as an error: %v", r)
				}
				warned = warned || r["level"] == "WARN" && r["msg"] == "health check failed"
			}
			if len(statuses) != 1 || statuses[0] != tc.status {
				t.Fatalf("access log statuses %v, want [%v]", statuses, tc.status)
			}
			if warned != tc.warned {
				t.Fatalf("warned %v, want %v: %v", warned, tc.warned, recs)
			}
		})
	}
}
